// SPDX-License-Identifier: Apache-2.0
/*
 * store_lifecycle: per-bucket rules "objects under prefix P older than D:
 * go cold | expire" (see store.h).
 *
 * Rules live in the meta column family under "lc" + bucket id (big
 * endian), as one value:
 *   version(1)=1 count(2) { action(1) age_ms(8) prefixlen(2) prefix }*
 * (little endian).  They are read back with every length bounded.
 *
 * A pass (every lifecycle_interval_ms, on the mover's tick, or
 * store_lifecycle_run()) walks each rule's prefix in key order: expired
 * objects are deleted (a tombstone version, as a client's delete, of the
 * version the pass saw only: one written meanwhile stays), and the
 * hot chunks of objects due to go cold are queued for the mover.  Objects
 * kept inline in the index have no chunk to move.  A pass goes in steps
 * (see "applying the rules") so that the loop never stalls on a large
 * bucket and the mover's bounded queue is never a limit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "log.h"
#include "meta.h"
#include "store.h"
#include "store_int.h"
#include "strata/error.h"
#include "banned.h"

#define LC_VERSION 1
#define LC_DELETES_MAX 1000		/* expiry deletes in flight */

void store__lc_key(uint64_t bid, uint8_t key[STORE_LC_KEY_LEN])
{
	key[0] = 'l';
	key[1] = 'c';
	meta_put_be64(key + 2, bid);
}

static int check_rule(const struct store_lc_rule *r)
{
	size_t plen = strnlen(r->prefix, sizeof(r->prefix));

	if (plen == sizeof(r->prefix))
		return -EINVAL;
	if (r->action != STORE_LC_COLD && r->action != STORE_LC_DELETE)
		return -EINVAL;
	if (r->age_ms > STORE_LC_MAX_AGE_MS)
		return -EINVAL;
	if (plen && meta_check_key(r->prefix, plen))
		return -EINVAL;
	return 0;
}

uint8_t *store__lc_encode(const struct store_lc_rule *rules, size_t n,
			  size_t *len)
{
	size_t cap = 3, off = 0;
	uint8_t *v;

	for (size_t i = 0; i < n; i++)
		cap += 11 + strlen(rules[i].prefix);
	v = malloc(cap);
	if (!v)
		return NULL;
	v[off++] = LC_VERSION;
	v[off++] = (uint8_t)n;
	v[off++] = (uint8_t)(n >> 8);
	for (size_t i = 0; i < n; i++) {
		size_t plen = strlen(rules[i].prefix);

		v[off++] = (uint8_t)rules[i].action;
		for (int b = 0; b < 8; b++)
			v[off++] = (uint8_t)(rules[i].age_ms >> (8 * b));
		v[off++] = (uint8_t)plen;
		v[off++] = (uint8_t)(plen >> 8);
		memcpy(v + off, rules[i].prefix, plen);
		off += plen;
	}
	*len = off;
	return v;
}

/* Decode a stored value; every length is checked against what is left. */
int store__lc_decode(const uint8_t *v, size_t len, struct store_lc_rule **out,
		     size_t *n)
{
	struct store_lc_rule *r;
	size_t off = 3, cnt;

	if (len < 3 || v[0] != LC_VERSION)
		return STRATA_ECORRUPT;
	cnt = (size_t)v[1] | (size_t)v[2] << 8;
	if (cnt > STORE_LC_MAX_RULES)
		return STRATA_ECORRUPT;
	r = calloc(cnt ? cnt : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		size_t plen;

		if (len - off < 11)
			goto bad;
		r[i].action = (enum store_lc_action)v[off++];
		r[i].age_ms = 0;
		for (int b = 0; b < 8; b++)
			r[i].age_ms |= (uint64_t)v[off++] << (8 * b);
		plen = (size_t)v[off] | (size_t)v[off + 1] << 8;
		off += 2;
		/* A NUL would cut the prefix short: "a\0" is not "a". */
		if (plen > META_KEY_MAX || len - off < plen ||
		    memchr(v + off, 0, plen))
			goto bad;
		memcpy(r[i].prefix, v + off, plen);
		r[i].prefix[plen] = 0;
		off += plen;
		if (check_rule(&r[i]))
			goto bad;
	}
	if (off != len)
		goto bad;
	*out = r;
	*n = cnt;
	return 0;
bad:
	free(r);
	return STRATA_ECORRUPT;
}

int store_lifecycle_set(struct store *s, const char *bucket,
			const struct store_lc_rule *rules, size_t n)
{
	uint8_t key[STORE_LC_KEY_LEN], *v = NULL;
	struct index_batch *ib;
	struct bucket *b;
	size_t vlen = 0;
	int rc;

	if (n > STORE_LC_MAX_RULES)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (check_rule(&rules[i]))
			return -EINVAL;
	rc = store__bucket_get(s, bucket, &b);
	if (rc)
		return rc;
	store__lc_key(b->id, key);
	store__bucket_unref(s, b);
	if (n && !(v = store__lc_encode(rules, n, &vlen)))
		return -ENOMEM;
	/* Rare and small: one synced write, as access keys are. */
	ib = index_batch_new(s->ix);
	if (!ib) {
		free(v);
		return -ENOMEM;
	}
	if (n)
		index_batch_put(ib, INDEX_CF_META, key, sizeof(key), v, vlen);
	else
		index_batch_delete(ib, INDEX_CF_META, key, sizeof(key));
	rc = index_batch_commit(ib);
	index_batch_free(ib);
	free(v);
	return rc;
}

int store_lifecycle_get(struct store *s, const char *bucket,
			struct store_lc_rule **rules, size_t *n)
{
	uint8_t key[STORE_LC_KEY_LEN], *v;
	struct bucket *b;
	size_t vlen;
	int rc;

	*rules = NULL;
	*n = 0;
	rc = store__bucket_get(s, bucket, &b);
	if (rc)
		return rc;
	store__lc_key(b->id, key);
	store__bucket_unref(s, b);
	rc = index_get(s->ix, INDEX_CF_META, key, sizeof(key), &v, &vlen);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	rc = store__lc_decode(v, vlen, rules, n);
	free(v);
	if (rc == STRATA_ECORRUPT)
		log_err("store", "bucket %s: damaged lifecycle rules", bucket);
	return rc;
}

/* ---- applying the rules ---- */

/*
 * A pass may stop early, with its place kept in s->lc, for three reasons:
 * LC_SCAN_MAX objects looked at in one loop turn (it goes on at the next
 * turn), the mover's queue full (it goes on when the mover has drained
 * it), or LC_DELETES_MAX expiry deletes in flight (it goes on when they
 * are done).  It resumes with the same "now", at the object it stopped on.
 */
#define LC_SCAN_MAX 10000

enum lc_stop { LC_DONE, LC_SCANNED, LC_QUEUE_FULL, LC_DELETES };

static void lc_kick_cb(void *arg)
{
	struct store *s = arg;

	s->lc.kick_pending = false;
	if (s->lc.more && !s->closing)
		store__lifecycle_run(s, s->lc.now);
}

void store__lifecycle_resume(struct store *s)
{
	if (!s->lc.more || s->lc.kick_pending || s->closing)
		return;
	s->lc.kick_pending = true;
	store__defer(s, &s->lc.kick, lc_kick_cb, s);
}

static void lc_deleted(void *arg, int status)
{
	struct store *s = arg;

	if (status == 0)
		s->st.lifecycle_expired++;
	else if (status != STRATA_ENOOBJECT && status != STRATA_ECHANGED)
		log_warn("store", "lifecycle expiry: %s",
			 strata_strerror(status));
	if (--s->lc.deleting == 0 && s->lc.stop == LC_DELETES)
		store__lifecycle_resume(s);
}

/* Queue the hot chunks of one object version for the cold tier; false
 * when the mover's queue is full. */
static bool lc_object_cold(struct store *s, uint64_t bid,
			   const struct meta_object *o)
{
	if (o->flags & META_OBJ_INLINE)
		return true;
	for (uint32_t i = 0; i < o->nchunks; i++) {
		uint8_t ckey[META_CHUNKKEY_LEN], *val;
		struct meta_chunk mc;
		size_t vlen;
		bool hot;

		meta_chunkkey(bid, o->chunks[i].id, ckey);
		if (index_get(s->ix, INDEX_CF_CHUNKS, ckey, sizeof(ckey), &val,
			      &vlen))
			continue;
		hot = meta_chunk_decode(val, vlen, &mc) == 0 &&
		      mc.tier == STORE_TIER_HOT;
		free(val);
		if (hot && !store__lifecycle_queue_cold(s, ckey))
			return false;
	}
	return true;
}

/* Apply one rule from *from (inclusive; the prefix's start when klen is
 * 0).  On an early stop, the key to go on from is left in s->lc. */
static enum lc_stop lc_rule_run(struct store *s, const char *bucket,
				uint64_t bid, const struct store_lc_rule *r,
				uint64_t now, size_t *scanned)
{
	uint8_t lo[META_OBJKEY_MAX + 1], hi[META_OBJKEY_MAX + 1];
	size_t plen = strlen(r->prefix), lolen, hilen;
	enum lc_stop stop = LC_DONE;
	struct index_iter *it;

	lolen = meta_objkey(bid, r->prefix, plen, lo);
	/* Upper bound: the prefix's successor (bucket id < 2^64-1). */
	memcpy(hi, lo, lolen);
	hilen = lolen;
	while (hilen && hi[hilen - 1] == 0xff)
		hilen--;
	hi[hilen - 1]++;
	it = index_iter_new(s->ix, INDEX_CF_OBJECTS, lo, lolen, hi, hilen);
	if (!it)
		return LC_DONE;
	if (s->lc.klen)
		index_iter_seek(it, s->lc.key, s->lc.klen);
	s->lc.klen = 0;
	for (; index_iter_valid(it); index_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = index_iter_key(it, &klen);
		const uint8_t *v = index_iter_value(it, &vlen);
		struct meta_object *o;
		bool ok = true;

		if (klen > sizeof(s->lc.key))
			continue;
		if (*scanned >= LC_SCAN_MAX)
			stop = LC_SCANNED;
		else if (s->lc.deleting >= LC_DELETES_MAX)
			stop = LC_DELETES;
		if (stop) {
			memcpy(s->lc.key, k, klen);
			s->lc.klen = klen;
			break;
		}
		(*scanned)++;
		if (klen <= 8 || meta_object_decode(v, vlen, &o))
			continue;
		/* Not mtime + age <= now: that sum wraps for a damaged
		 * mtime, and would expire the object. */
		if (!(o->flags & META_OBJ_TOMBSTONE) && o->mtime_ms <= now &&
		    now - o->mtime_ms >= r->age_ms) {
			if (r->action == STORE_LC_COLD) {
				ok = lc_object_cold(s, bid, o);
			} else if (!store__delete_if(s, bucket,
						     (const char *)k + 8,
						     klen - 8, o->hlc,
						     lc_deleted, s)) {
				s->lc.deleting++;
			}
		}
		meta_object_free(o);
		if (!ok) {
			/* This object again next time: its chunks queued
			 * so far are found cold or queued then. */
			memcpy(s->lc.key, k, klen);
			s->lc.klen = klen;
			stop = LC_QUEUE_FULL;
			break;
		}
	}
	index_iter_free(it);
	return stop;
}

void store__lifecycle_run(struct store *s, uint64_t now)
{
	uint8_t lo[STORE_LC_KEY_LEN], hi[2] = { 'l', 'd' };	/* "lc"+id */
	struct store_bucket_info *bl = NULL;
	enum lc_stop stop = LC_DONE;
	struct index_iter *it;
	size_t nb = 0, scanned = 0, first_rule = 0;

	if (s->closing)
		return;
	if (!s->lc.more) {		/* a new pass */
		s->lc.now = now;
		s->lc.bid = 0;
		s->lc.rule = 0;
		s->lc.klen = 0;
	}
	now = s->lc.now;
	store__lc_key(s->lc.bid, lo);
	it = index_iter_new(s->ix, INDEX_CF_META, lo, sizeof(lo), hi,
			    sizeof(hi));
	if (!it)
		return;
	if (store_bucket_list(s, &bl, &nb)) {
		index_iter_free(it);
		return;
	}
	first_rule = s->lc.more ? s->lc.rule : 0;
	for (; !stop && index_iter_valid(it); index_iter_next(it)) {
		size_t klen, vlen, n = 0;
		const uint8_t *k = index_iter_key(it, &klen);
		const uint8_t *v = index_iter_value(it, &vlen);
		struct store_lc_rule *rules;
		const char *bucket = NULL;
		uint64_t bid;

		if (klen != STORE_LC_KEY_LEN)
			continue;
		bid = meta_get_be64(k + 2);
		if (bid != s->lc.bid) {	/* past the bucket we resumed in */
			first_rule = 0;
			s->lc.klen = 0;
		}
		for (size_t i = 0; i < nb; i++)
			if (bl[i].id == bid)
				bucket = bl[i].name;
		if (!bucket || store__lc_decode(v, vlen, &rules, &n))
			continue;	/* a deleted bucket's leftovers */
		for (size_t i = first_rule; !stop && i < n; i++) {
			stop = lc_rule_run(s, bucket, bid, &rules[i], now,
					   &scanned);
			if (stop) {
				s->lc.bid = bid;
				s->lc.rule = i;
			}
		}
		free(rules);
		first_rule = 0;
	}
	index_iter_free(it);
	free(bl);
	s->lc.more = stop != LC_DONE;
	s->lc.stop = stop;
	if (stop == LC_SCANNED)
		store__lifecycle_resume(s);
	/* LC_QUEUE_FULL: the mover resumes it; LC_DELETES: lc_deleted. */
}
void store_lifecycle_run(struct store *s)
{
	store__lifecycle_run(s, store__clock_ms(s));
}
