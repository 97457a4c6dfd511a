// SPDX-License-Identifier: Apache-2.0
/*
 * store: the chunk engine (see store.h for the contract).
 *
 * Invariants
 * - The index is the truth.  A chunk record in a segment is live iff a
 *   chunks entry points at it; an object version is visible iff its objects
 *   entry is committed.  Everything else on disk is garbage that
 *   compaction (or, for whole orphan files, open) reclaims.
 * - Every index change goes through a group-commit round:
 *
 *     QUEUED --[round_start]--> SYNCING (fdatasync dirty segments and new
 *       segments' directories via io_uring)
 *     SYNCING --[round_try_build, once the previous round committed]-->
 *       COMMITTING (one WriteBatchWithIndex built on the loop, each mutation
 *       inside a savepoint; committed with a synced WAL on a worker thread)
 *     COMMITTING --[round_commit_done]--> DONE (callbacks)
 *
 *   At most one round syncs and one commits at a time, so a round's
 *   segment syncs overlap the previous round's WAL sync.  A mutation joins
 *   a round only after all its chunk writes completed, so the round's
 *   syncs cover its bytes: nothing is acknowledged before its data and its
 *   index entry are durable.  Builds are serial, each after the previous
 *   round committed, so a build reads the effects of every earlier round
 *   (and, through the batch, of earlier mutations in the same round):
 *   refcounts need no locks.
 * - A segment is never freed while pinned: reads in flight, chunks written
 *   or deduplicated by puts not yet committed, and compaction copies pin
 *   their segments.  A segment whose last live chunk goes away is doomed in
 *   the same batch and unlinked once unpinned.
 *
 * This file: open/close, buckets, rounds, refcounts and segment accounting,
 * deletes, stats.  store_int.h says where the rest lives.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "fault.h"
#include "index.h"
#include "keys.h"
#include "le.h"
#include "log.h"
#include "meta.h"
#include "proto.h"
#include "record.h"
#include "segment.h"
#include "store.h"
#include "store_int.h"
#include "uring.h"
#include "strata/error.h"
#include "banned.h"

static const char META_FORMAT[] = "format";
static const char META_MASTER_CHECK[] = "master-check";
static const char META_NEXT_BUCKET[] = "next-bucket";
static const char META_NEXT_SEG[] = "next-segment";
static const char META_STORE_ID[] = "store-id";

uint64_t store__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* HLC: 48 bits of wall-clock milliseconds, 16 bits of logical counter;
 * never goes backwards, even if the wall clock does. */
uint64_t store__hlc_next(struct store *s, uint64_t at_least)
{
	uint64_t t = store__now_ms() << 16;

	if (t <= s->hlc_last)
		t = s->hlc_last + 1;
	if (t <= at_least)
		t = at_least + 1;
	s->hlc_last = t;
	return t;
}

/* ---- deferred callbacks: never call a callback from inside the call ---- */

/*
 * Run what was deferred.  What those calls defer in turn runs in the same
 * pass while that stays quick: a batch get's next item is deferred by the
 * one before it, and a loop iteration per 4 KiB item was a third of the
 * batch's CPU.  Bounded in rounds and time, so that I/O waits no longer
 * than one round of work anyway (a lifecycle scan step, say) plus the
 * budget.
 */
#define DEFER_ROUNDS 64
#define DEFER_BUDGET_NS 200000ull

static void idle_cb(uv_idle_t *h)
{
	struct store *s = h->data;
	uint64_t t0 = uv_hrtime();
	unsigned rounds = 0;

	do {
		struct deferred *d = s->defer_head;

		s->defer_head = NULL;
		s->defer_tail = &s->defer_head;
		while (d) {
			struct deferred *next = d->next;

			d->fn(d->arg);	/* may free d's owner */
			d = next;
		}
	} while (s->defer_head && ++rounds < DEFER_ROUNDS &&
		 uv_hrtime() - t0 < DEFER_BUDGET_NS);
	if (!s->defer_head)
		uv_idle_stop(&s->idle);
}

/* Run fn(arg) on the next loop iteration; d is the caller's (intrusive, so
 * this cannot fail) and must stay valid until then. */
void store__defer(struct store *s, struct deferred *d, void (*fn)(void *arg),
		  void *arg)
{
	d->fn = fn;
	d->arg = arg;
	d->next = NULL;
	*s->defer_tail = d;
	s->defer_tail = &d->next;
	uv_idle_start(&s->idle, idle_cb);
}

/* ---- codec pool ---- */

struct record_codec *store__codec_get(struct store *s)
{
	struct record_codec *c = NULL;

	pthread_mutex_lock(&s->pool_lock);
	if (s->npool)
		c = s->pool[--s->npool];
	pthread_mutex_unlock(&s->pool_lock);
	return c ? c : record_codec_new();
}

void store__codec_put(struct store *s, struct record_codec *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&s->pool_lock);
	if (s->npool < CODEC_POOL_MAX) {
		s->pool[s->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&s->pool_lock);
	record_codec_free(c);
}

/* ---- buffers ---- */

static bool buf_is_big(const struct store *s, size_t len)
{
	return len > s->bigsize / 2 && len <= s->bigsize;
}

/* A buffer of at least len bytes; *cap is what to pass to store__buf_free(). */
uint8_t *store__buf_alloc(struct store *s, size_t len, size_t *cap)
{
	if (buf_is_big(s, len)) {
		*cap = s->bigsize;
		void *p = NULL;

		if (s->nbig) {
			if (--s->nbig < s->nbig_low)
				s->nbig_low = s->nbig;
			return s->bigpool[s->nbig];
		}
		/* Aligned for O_DIRECT appends (segment.h). */
		if (posix_memalign(&p, SEGMENT_DIO_ALIGN, s->bigsize))
			return NULL;
		return p;
	}
	*cap = len;
	return malloc(len ? len : 1);
}

void store__buf_free(struct store *s, uint8_t *p, size_t cap)
{
	if (p && cap == s->bigsize && s->nbig < BIGPOOL_MAX) {
		s->bigpool[s->nbig++] = p;
		return;
	}
	free(p);
}

/* ---- the transfer budget (store_int.h: struct xfer_wait) ---- */

static void xfer_unlink(struct store *s, struct xfer_wait *w)
{
	if (s->xw_low == w)
		s->xw_low = w->next;	/* (low ones are last) */
	if (w->prev)
		w->prev->next = w->next;
	else
		s->xw_head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		s->xw_tail = w->prev;
	w->prev = w->next = NULL;
	w->queued = false;
}

/* Wake waiters in order while there is room; one that still cannot go
 * (it needs more than has come back) stays first, and stops the round. */
static void xfer_run(void *arg)
{
	struct store *s = arg;

	s->xw_scheduled = false;
	while (s->xw_head && s->xfer_used < s->o.transfer_bytes) {
		struct xfer_wait *w = s->xw_head;

		xfer_unlink(s, w);
		s->xw_waking = w;
		s->xw_requeued = false;
		w->wake(w);		/* may end (and free) the transfer */
		s->xw_waking = NULL;
		if (s->xw_requeued)
			break;
	}
	/* The close waits for the defer list: this may have been its last
	 * item (the waiters it was for gone meanwhile). */
	store__maybe_closed(s);
}

static void xfer_released(struct store *s)
{
	if (s->xw_head && !s->xw_scheduled &&
	    s->xfer_used < s->o.transfer_bytes) {
		s->xw_scheduled = true;
		store__defer(s, &s->xw_d, xfer_run, s);
	}
}

uint8_t *store__xbuf_alloc(struct store *s, size_t len, size_t *cap)
{
	uint8_t *p = store__buf_alloc(s, len, cap);

	if (p)
		s->xfer_used += *cap;
	return p;
}

void store__xbuf_free(struct store *s, uint8_t *p, size_t cap)
{
	if (!p)
		return;
	store__buf_free(s, p, cap);
	store__xbuf_forget(s, cap);
}

void store__xbuf_forget(struct store *s, size_t cap)
{
	s->xfer_used -= cap <= s->xfer_used ? cap : s->xfer_used;
	xfer_released(s);
}

bool store__xfer_admit(struct store *s, struct xfer_wait *w, size_t need)
{
	if (!need)
		return true;
	/* Others were first (prestaging reads come after clients'). */
	if (s->xw_head && s->xw_waking != w &&
	    (w->low || !s->xw_head->low))
		return false;
	/* Room, or little counted: small chunks (which never wait) could
	 * otherwise keep one that needs most of the budget, or more than
	 * all of it, waiting for as long as they keep coming. */
	return s->xfer_used + need <= s->o.transfer_bytes ||
	       s->xfer_used <= s->o.transfer_bytes / 4;
}

/* Put w in line before at (NULL: last). */
static void xfer_link_before(struct store *s, struct xfer_wait *w,
			     struct xfer_wait *at)
{
	w->next = at;
	w->prev = at ? at->prev : s->xw_tail;
	if (w->prev)
		w->prev->next = w;
	else
		s->xw_head = w;
	if (at)
		at->prev = w;
	else
		s->xw_tail = w;
	w->queued = true;
}

void store__xfer_wait(struct store *s, struct xfer_wait *w)
{
	if (w == s->xw_waking) {
		/* Woken but still short: first of its kind in line again. */
		s->xw_requeued = true;
		xfer_link_before(s, w, w->low ? s->xw_low : s->xw_head);
		if (w->low)
			s->xw_low = w;
	} else if (!w->queued) {
		/* Clients' transfers go before prestaging reads. */
		s->xfer_waits++;
		xfer_link_before(s, w, w->low ? NULL : s->xw_low);
		if (w->low && !s->xw_low)
			s->xw_low = w;
	}
	/* (What this gives back wakes the line.) */
	store__get_reclaim_paused(s);
}

void store__xfer_cancel(struct store *s, struct xfer_wait *w)
{
	if (w->queued)
		xfer_unlink(s, w);
	if (s->xw_waking == w)
		s->xw_waking = NULL;
	xfer_released(s);
}

void store_set_transfer_budget(struct store *s, uint64_t bytes)
{
	s->o.transfer_bytes = bytes ? bytes : 1ull << 30;
	xfer_released(s);
}

void store_trim(struct store *s)
{
	/* The fewest pooled since the last call were never taken. */
	for (unsigned n = s->nbig_low; n; n--)
		free(s->bigpool[--s->nbig]);
	s->nbig_low = s->nbig;
}

/* ---- buckets ---- */

static void bucket_aad(uint64_t id, uint8_t aad[24])
{
	memcpy(aad, "strata-bucket-v1", 16);
	meta_put_be64(aad + 16, id);
}

void store__bucket_unref(struct store *s, struct bucket *b)
{
	if (!b || --b->refs)
		return;
	for (struct bucket **pp = &s->buckets; *pp; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	}
	keys_wipe(&b->keys, sizeof(b->keys));
	free(b);
}

/* Find a bucket (cache, then index) and take a reference. */
int store__bucket_get(struct store *s, const char *name, struct bucket **out)
{
	struct meta_bucket mb;
	struct bucket *b;
	uint8_t *val = NULL, aad[24], keys[64];
	size_t vlen, nlen = strlen(name);
	int rc;

	rc = meta_check_bucket_name(name, nlen);
	if (rc)
		return rc;
	for (b = s->buckets; b; b = b->next) {
		if (!b->gone && strcmp(b->name, name) == 0) {
			b->refs++;
			*out = b;
			return 0;
		}
	}
	rc = index_get(s->ix, INDEX_CF_BUCKETS, name, nlen, &val, &vlen);
	if (rc == -ENOENT)
		return STRATA_ENOBUCKET;
	if (rc)
		return rc;
	rc = meta_bucket_decode(val, vlen, &mb);
	if (rc)
		goto out;
	bucket_aad(mb.id, aad);
	if (mb.wrappedlen != KEYS_WRAP_OVERHEAD + 64) {
		rc = STRATA_ECORRUPT;
		goto out;
	}
	rc = keys_unwrap(s->master, aad, sizeof(aad), mb.wrapped,
			 mb.wrappedlen, keys);
	if (rc)
		goto out;
	b = calloc(1, sizeof(*b));
	if (!b) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(b->name, name, nlen + 1);
	b->id = mb.id;
	b->ctime_ms = mb.ctime_ms;
	b->keys.bucket_id = mb.id;
	memcpy(b->keys.id_key, keys, 32);
	memcpy(b->keys.data_key, keys + 32, 32);
	b->refs = 2;			/* the cache's and the caller's */
	b->next = s->buckets;
	s->buckets = b;
	*out = b;
out:
	keys_wipe(keys, sizeof(keys));
	free(val);
	if (rc == STRATA_ECORRUPT)
		log_err("store", "bucket %s: damaged index entry", name);
	return rc;
}

/* Drop a bucket from the cache (after its deletion commits). */
static void bucket_forget(struct store *s, const char *name)
{
	for (struct bucket *b = s->buckets; b; b = b->next) {
		if (!b->gone && strcmp(b->name, name) == 0) {
			b->gone = true;
			store__bucket_unref(s, b);
			return;
		}
	}
}

/* In a round: is the bucket still the one we hold? */
int store__bucket_check(struct index_batch *ib, const struct bucket *b)
{
	struct meta_bucket mb;
	uint8_t *val;
	size_t vlen;
	int rc;

	rc = index_batch_get(ib, INDEX_CF_BUCKETS, b->name, strlen(b->name),
			     &val, &vlen);
	if (rc == -ENOENT)
		return STRATA_ENOBUCKET;
	if (rc)
		return rc;
	rc = meta_bucket_decode(val, vlen, &mb);
	if (!rc && mb.id != b->id)
		rc = STRATA_ENOBUCKET;	/* deleted and created again */
	free(val);
	return rc;
}

/* ---- segment accounting inside a round ---- */

int store__round_doom(struct round *r, struct segment *seg)
{
	if (r->ndoomed == r->capdoomed) {
		size_t n = r->capdoomed ? r->capdoomed * 2 : 8;
		struct segment **d = realloc(r->doomed, n * sizeof(*d));

		if (!d)
			return -ENOMEM;
		r->doomed = d;
		r->capdoomed = n;
	}
	seg->doomed = true;
	seg->doom_pending = true;
	r->doomed[r->ndoomed++] = seg;
	return 0;
}

/* Drop a pin; the last pin on a doomed segment frees it. */
void store__seg_unpin(struct store *s, struct segment *seg)
{
	if (--seg->pins == 0 && seg->doomed && !seg->doom_pending)
		segtab_drop(&s->segs, seg);
}

/* A segment may go once no chunk lives in it and nothing can add one. */
bool store__seg_may_drop(struct store *s, const struct segment *seg)
{
	return seg->sealed && !seg->pins && !seg->writes && !seg->doomed &&
	       !seg->compacting && s->active[seg->tier] != seg;
}

/*
 * Add (or remove) live bytes to a segment's entry.  When the last live
 * chunk leaves a segment that may go, the entry is deleted and the segment
 * doomed: no more pins, unlinked after the commit.
 */
int store__seg_account(struct store *s, struct index_batch *ib, uint64_t id,
		       int64_t dbytes, int64_t dcount)
{
	struct segment *seg = segtab_find(&s->segs, id);
	struct meta_segment ms = { 0 };
	uint8_t key[META_SEGKEY_LEN], v[META_SEGMENT_LEN], *val;
	size_t vlen;
	int rc;

	meta_segkey(id, key);
	rc = index_batch_get(ib, INDEX_CF_SEGMENTS, key, sizeof(key), &val,
			     &vlen);
	if (rc == 0) {
		rc = meta_segment_decode(val, vlen, &ms);
		free(val);
		if (rc)
			return rc;
	} else if (rc == -ENOENT) {
		if (!seg)
			return STRATA_ECORRUPT;
		ms.tier = seg->tier;
		ms.dir = seg->dir;
	} else {
		return rc;
	}
	if ((dbytes < 0 && ms.live_bytes < (uint64_t)-dbytes) ||
	    (dcount < 0 && ms.live_count < (uint64_t)-dcount)) {
		log_err("store", "segment %" PRIx64 ": live accounting underflow",
			id);
		return STRATA_ECORRUPT;
	}
	ms.live_bytes += (uint64_t)dbytes;
	ms.live_count += (uint64_t)dcount;
	if (ms.live_count == 0 && seg && store__seg_may_drop(s, seg)) {
		index_batch_delete(ib, INDEX_CF_SEGMENTS, key, sizeof(key));
		return store__round_doom(s->committing, seg);
	}
	meta_segment_encode(&ms, v);
	index_batch_put(ib, INDEX_CF_SEGMENTS, key, sizeof(key), v, sizeof(v));
	return 0;
}


/* One more reference to a chunk; creates its entry if it has none. */
int store__chunk_ref(struct store *s, struct index_batch *ib, uint64_t bid,
		     const uint8_t id[RECORD_ID_LEN], const struct chunk_loc *loc)
{
	uint8_t key[META_CHUNKKEY_LEN], v[META_CHUNK_LEN];
	uint8_t skey[META_SEGCHUNKKEY_LEN];
	struct meta_chunk c;
	uint8_t *val;
	size_t vlen;
	int rc;

	meta_chunkkey(bid, id, key);
	rc = index_batch_get(ib, INDEX_CF_CHUNKS, key, sizeof(key), &val, &vlen);
	if (rc == 0) {
		rc = meta_chunk_decode(val, vlen, &c);
		free(val);
		if (rc)
			return rc;
		if (c.refs == UINT32_MAX)
			return -EOVERFLOW;
		c.refs++;
		meta_chunk_encode(&c, v);
		index_batch_put(ib, INDEX_CF_CHUNKS, key, sizeof(key), v,
				sizeof(v));
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	c = (struct meta_chunk){
		.seg = loc->seg, .off = loc->off, .rec_len = loc->rec_len,
		.raw_len = loc->raw_len, .refs = 1, .tier = loc->tier,
		.atime_ms = store__now_ms(),
	};
	meta_chunk_encode(&c, v);
	index_batch_put(ib, INDEX_CF_CHUNKS, key, sizeof(key), v, sizeof(v));
	meta_segchunkkey(loc->seg, loc->off, skey);
	index_batch_put(ib, INDEX_CF_SEGCHUNKS, skey, sizeof(skey), key,
			sizeof(key));
	return store__seg_account(s, ib, loc->seg, loc->rec_len, 1);
}

/* One reference fewer; the last one removes the chunk. */
int store__chunk_unref(struct store *s, struct index_batch *ib, uint64_t bid,
		       const uint8_t id[RECORD_ID_LEN])
{
	uint8_t key[META_CHUNKKEY_LEN], v[META_CHUNK_LEN];
	uint8_t skey[META_SEGCHUNKKEY_LEN];
	struct meta_chunk c;
	uint8_t *val;
	size_t vlen;
	int rc;

	meta_chunkkey(bid, id, key);
	rc = index_batch_get(ib, INDEX_CF_CHUNKS, key, sizeof(key), &val, &vlen);
	if (rc == -ENOENT) {
		log_err("store", "object refers to a missing chunk entry");
		return STRATA_ECORRUPT;
	}
	if (rc)
		return rc;
	rc = meta_chunk_decode(val, vlen, &c);
	free(val);
	if (rc)
		return rc;
	if (c.refs > 1) {
		c.refs--;
		meta_chunk_encode(&c, v);
		index_batch_put(ib, INDEX_CF_CHUNKS, key, sizeof(key), v,
				sizeof(v));
		return 0;
	}
	index_batch_delete(ib, INDEX_CF_CHUNKS, key, sizeof(key));
	meta_segchunkkey(c.seg, c.off, skey);
	index_batch_delete(ib, INDEX_CF_SEGCHUNKS, skey, sizeof(skey));
	return store__seg_account(s, ib, c.seg, -(int64_t)c.rec_len, -1);
}

/* Read the current version of an object in a round (NULL if none). */
int store__object_get_batch(struct index_batch *ib, const uint8_t *okey,
			    size_t oklen, uint8_t **buf,
			    struct meta_object **obj)
{
	size_t vlen;
	int rc;

	*buf = NULL;
	*obj = NULL;
	rc = index_batch_get(ib, INDEX_CF_OBJECTS, okey, oklen, buf, &vlen);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	rc = meta_object_decode(*buf, vlen, obj);
	if (rc) {
		free(*buf);
		*buf = NULL;
	}
	return rc;
}

/* ---- group commit ---- */

static void round_start(struct store *s);
static void round_try_build(struct store *s);


/*
 * Move the answer generation of what the round's writes change (the
 * buckets it puts or deletes objects in; all, for bucket changes; moves
 * and segment drops change no object's bytes): once before the batch
 * reaches the index and once after it did, before any write is answered.
 * Between the two, GETs go to the engine, whose reads of the index may
 * already see the new versions: no answer kept by the I/O loops (of the
 * old ones) is served after the engine has sent a new one.
 */
static void round_move_answers(struct store *s, struct round *r)
{
	for (struct mutation *m = r->head; m; m = m->next) {
		if (m->kind == MUT_PUT || m->kind == MUT_DELETE)
			atomic_fetch_add(&s->ans_bucket[m->bid %
							STORE_ANSWER_SLOTS], 1);
		else if (m->kind != MUT_MOVE && m->kind != MUT_SEGDROP)
			atomic_fetch_add(&s->ans_all, 1);
	}
}

static void round_commit_work(uv_work_t *w)
{
	struct round *r = container_of(w, struct round, work);

	r->commit_rc = index_batch_commit(r->batch);
}

static void round_commit_done(uv_work_t *w, int status)
{
	struct round *r = container_of(w, struct round, work);
	struct store *s = r->s;
	struct mutation *m, *next;

	(void)status;
	if (r->commit_rc) {
		log_err("store", "index commit failed: %s",
			strata_strerror(r->commit_rc));
		for (size_t i = 0; i < r->ndoomed; i++)
			r->doomed[i]->doomed = r->doomed[i]->doom_pending = false;
	} else {
		for (size_t i = 0; i < r->ndoomed; i++) {
			r->doomed[i]->doom_pending = false;
			if (!r->doomed[i]->pins)
				segtab_drop(&s->segs, r->doomed[i]);
		}
	}
	s->st.commit_rounds++;
	/* Whatever it changed, object lookups read from now on see it: the
	 * values read before are stale. */
	s->objgen++;
	/* And the answers the I/O loops keep (those read while the batch
	 * was on its way), before any write here is answered. */
	round_move_answers(s, r);
	s->committing = NULL;
	for (m = r->head; m; m = next) {
		next = m->next;
		if (!m->status)
			m->status = r->commit_rc;
		if (!m->status)
			s->st.commits++;
		m->done(s, m);
	}
	index_batch_free(r->batch);
	free(r->reqs);
	free(r->syncsegs);
	free(r->doomed);
	free(r);
	round_try_build(s);
	round_start(s);
	store__maybe_closed(s);
}

static void round_build(struct round *r)
{
	struct store *s = r->s;
	struct mutation *m;
	int rc;
	/* The index's file system under its reserve: puts and new buckets
	 * are refused, what gives space back (deletes, compaction, moves)
	 * still commits, or a full disk could never be emptied. */
	int low = index_write_room(s->ix);

	r->batch = index_batch_new(s->ix);
	if (!r->batch)
		r->sync_err = -ENOMEM;
	else if (low)
		index_batch_frees(r->batch);
	for (m = r->head; m; m = m->next) {
		if (r->sync_err) {
			m->status = r->sync_err;
			continue;
		}
		if (low && (m->kind == MUT_PUT ||
			    m->kind == MUT_BUCKET_CREATE)) {
			m->status = low;
			continue;
		}
		index_batch_savepoint(r->batch);
		size_t nd = r->ndoomed;
		rc = m->build(s, m, r->batch);
		if (rc) {
			m->status = rc;
			/* Undo this mutation's updates and its dooms. */
			for (size_t i = nd; i < r->ndoomed; i++)
				r->doomed[i]->doomed =
					r->doomed[i]->doom_pending = false;
			r->ndoomed = nd;
			if (index_batch_rollback(r->batch))
				r->sync_err = STRATA_EINDEX;
		}
	}
	if (!r->sync_err && s->segs.next_id > s->persisted_next_seg) {
		uint8_t v[8];

		put_le64(v, s->segs.next_id);
		index_batch_put(r->batch, INDEX_CF_META, META_NEXT_SEG,
				strlen(META_NEXT_SEG), v, sizeof(v));
		s->persisted_next_seg = s->segs.next_id;
	}
	if (r->sync_err) {
		r->commit_rc = r->sync_err;
		round_commit_done(&r->work, 0);
		return;
	}
	round_move_answers(s, r);
	rc = uv_queue_work(s->loop, &r->work, round_commit_work,
			   round_commit_done);
	if (rc) {
		r->commit_rc = rc;
		round_commit_done(&r->work, 0);
	}
}

/*
 * A round's bytes are durable.  It may build once the round before it has
 * committed (its build must read that round's effects); the next round may
 * start syncing as soon as this one leaves the syncing slot.
 */
static void round_try_build(struct store *s)
{
	struct round *r = s->syncing;

	if (s->committing || !r || !r->synced)
		return;
	s->syncing = NULL;
	s->committing = r;
	round_build(r);
	round_start(s);
}

static void round_synced(struct round *r)
{
	r->synced = true;
	round_try_build(r->s);
}

static void round_sync_cb(struct uring_req *req, ssize_t res)
{
	struct round *r = req->data;
	struct segment *seg = r->syncsegs[req - r->reqs];

	/* A segment file removed from under us (an rm -rf of a tier
	 * directory) takes the synced bytes with it at the next start: that
	 * is no durable write to acknowledge. */
	if (res >= 0 && seg && segment_unlinked(seg)) {
		log_err("store", "segment %016" PRIx64 " in tier %s was removed "
			"from its directory while in use: its data is lost once "
			"stratad stops; failing the writes to it", seg->id,
			seg->tier == STORE_TIER_HOT ? "hot" : "cold");
		res = -EIO;
	}
	if (res < 0) {
		log_err("store", "fdatasync: %s", strerror((int)-res));
		r->sync_err = (int)res;
		/* After a failed sync the page cache may have dropped the
		 * bytes: append nothing more to that file. */
		if (seg) {
			segment_seal(seg);
			if (r->s->active[seg->tier] == seg)
				r->s->active[seg->tier] = NULL;
		}
	}
	/* Unpinned as everywhere else: a segment doomed meanwhile (its last
	 * live chunk deleted while an aborted put's write made it dirty) is
	 * freed by its last unpin, this one (round_commit_done saw the pin);
	 * a bare pins-- kept its file and descriptor until the restart. */
	if (seg)
		store__seg_unpin(r->s, seg);
	if (--r->syncs == 0)
		round_synced(r);
}

struct sync_collect {
	struct store *s;
	struct segment **segs;
	size_t n, cap;
	int dirs[STORE_TIERS * STORE_MAX_TIER_DIRS];
	size_t ndirs;
	int err;
};

static void collect_dirty(void *arg, struct segment *seg)
{
	struct sync_collect *c = arg;

	if (seg->dir_dirty) {
		int fd = segtab_dirfd(&c->s->segs, seg);
		bool have = false;

		for (size_t i = 0; i < c->ndirs; i++)
			have |= c->dirs[i] == fd;
		if (!have)
			c->dirs[c->ndirs++] = fd;
		seg->dir_dirty = false;
	}
	if (!seg->dirty)
		return;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 8;
		struct segment **p = realloc(c->segs, ncap * sizeof(*p));

		if (!p) {
			c->err = -ENOMEM;
			return;
		}
		c->segs = p;
		c->cap = ncap;
	}
	seg->dirty = false;
	seg->pins++;
	c->segs[c->n++] = seg;
}

static void round_start(struct store *s)
{
	struct sync_collect c = { .s = s };
	struct round *r;
	size_t n;

	if (s->syncing || !s->queue)
		return;
	r = calloc(1, sizeof(*r));
	if (!r)
		return;		/* retried when the next mutation queues */
	r->s = s;
	r->head = s->queue;
	s->queue = NULL;
	s->qtail = &s->queue;
	s->syncing = r;

	segtab_foreach(&s->segs, collect_dirty, &c);
	n = c.n + c.ndirs;
	if (n) {
		r->reqs = calloc(n, sizeof(*r->reqs));
		r->syncsegs = calloc(n, sizeof(*r->syncsegs));
	}
	if (c.err || (n && (!r->reqs || !r->syncsegs))) {
		r->sync_err = -ENOMEM;
		for (size_t i = 0; i < c.n; i++) {
			c.segs[i]->dirty = true;
			store__seg_unpin(s, c.segs[i]);
		}
		free(c.segs);
		round_synced(r);
		return;
	}
	r->syncs = (unsigned)n + 1;	/* +1: held until all are queued */
	for (size_t i = 0; i < n; i++) {
		struct uring_req *req = &r->reqs[i];
		int fd;

		req->data = r;
		if (i < c.n) {
			r->syncsegs[i] = c.segs[i];
			fd = c.segs[i]->fd;
		} else {
			fd = c.dirs[i - c.n];
		}
		req->inject = fault_hit(s->o.fault, FAULT_SEG_FSYNC);
		if (uring_fdatasync(s->ring, req, fd, round_sync_cb)) {
			/* The ring is closing; count it as failed. */
			r->sync_err = -ECANCELED;
			if (i < c.n)
				store__seg_unpin(s, c.segs[i]);
			r->syncs--;
		}
	}
	free(c.segs);
	if (--r->syncs == 0)
		round_synced(r);
}

static void round_kick(void *arg)
{
	struct store *s = arg;

	s->kick_pending = false;
	round_start(s);
}

/* Queue a mutation for the next round.  The round starts from the loop, so
 * everything queued in this iteration shares it and no callback runs
 * inside the caller's call. */
void store__mutation_queue(struct store *s, struct mutation *m)
{
	m->next = NULL;
	m->status = 0;
	*s->qtail = m;
	s->qtail = &m->next;
	if (!s->syncing && !s->kick_pending) {
		s->kick_pending = true;
		store__defer(s, &s->kick, round_kick, s);
	}
}

/* ---- bucket changes ---- */

struct bucket_op {
	struct mutation mut;
	char name[META_BUCKET_MAX + 1];
	uint8_t *attrs;
	size_t attrslen;
	store_done_cb cb;
	void *arg;
};

static int build_bucket_create(struct store *s, struct mutation *m,
			       struct index_batch *ib)
{
	struct bucket_op *op = container_of(m, struct bucket_op, mut);
	uint8_t keys[64], aad[24], v8[8], *val, *enc;
	struct meta_bucket mb = { 0 };
	uint64_t id = 1;
	size_t vlen;
	int rc;

	rc = index_batch_get(ib, INDEX_CF_BUCKETS, op->name, strlen(op->name),
			     &val, &vlen);
	if (rc == 0) {
		free(val);
		return STRATA_EBUCKETEXISTS;
	}
	if (rc != -ENOENT)
		return rc;
	rc = index_batch_get(ib, INDEX_CF_META, META_NEXT_BUCKET,
			     strlen(META_NEXT_BUCKET), &val, &vlen);
	if (rc == 0) {
		if (vlen == 8)
			id = get_le64(val);
		free(val);
		if (vlen != 8)
			return STRATA_ECORRUPT;
	} else if (rc != -ENOENT) {
		return rc;
	}
	put_le64(v8, id + 1);
	index_batch_put(ib, INDEX_CF_META, META_NEXT_BUCKET,
			strlen(META_NEXT_BUCKET), v8, sizeof(v8));

	rc = keys_random(keys, sizeof(keys));
	if (rc)
		return rc;
	bucket_aad(id, aad);
	mb.id = id;
	mb.ctime_ms = store__now_ms();
	mb.wrappedlen = KEYS_WRAP_OVERHEAD + sizeof(keys);
	rc = keys_wrap(s->master, aad, sizeof(aad), keys, sizeof(keys),
		       mb.wrapped);
	keys_wipe(keys, sizeof(keys));
	if (rc)
		return rc;
	mb.attrs = (const char *)op->attrs;
	mb.attrslen = (uint32_t)op->attrslen;
	enc = malloc(meta_bucket_size(&mb));
	if (!enc)
		return -ENOMEM;
	vlen = meta_bucket_encode(&mb, enc);
	index_batch_put(ib, INDEX_CF_BUCKETS, op->name, strlen(op->name), enc,
			vlen);
	free(enc);
	return 0;
}

/* The key range of one bucket's objects: [id, id+1). */
static void bucket_range(uint64_t id, uint8_t lo[8], uint8_t hi[8])
{
	meta_put_be64(lo, id);
	meta_put_be64(hi, id + 1);
}

static int build_bucket_delete(struct store *s, struct mutation *m,
			       struct index_batch *ib)
{
	struct bucket_op *op = container_of(m, struct bucket_op, mut);
	struct meta_bucket mb;
	struct index_iter *it;
	uint8_t lo[8], hi[8], *val;
	size_t vlen;
	int rc;

	(void)s;
	rc = index_batch_get(ib, INDEX_CF_BUCKETS, op->name, strlen(op->name),
			     &val, &vlen);
	if (rc == -ENOENT)
		return STRATA_ENOBUCKET;
	if (rc)
		return rc;
	rc = meta_bucket_decode(val, vlen, &mb);
	free(val);
	if (rc)
		return rc;
	bucket_range(mb.id, lo, hi);
	it = index_batch_iter_new(ib, INDEX_CF_OBJECTS, lo, 8, hi, 8);
	if (!it)
		return -ENOMEM;
	/* Only tombstones may remain; they go with the bucket. */
	for (; index_iter_valid(it); index_iter_next(it)) {
		size_t klen;
		const uint8_t *k = index_iter_key(it, &klen);
		const uint8_t *v = index_iter_value(it, &vlen);

		if (klen < 8 || memcmp(k, hi, 8) >= 0)
			break;
		if (vlen < 2 || !(v[1] & META_OBJ_TOMBSTONE)) {
			rc = STRATA_EBUCKETNOTEMPTY;
			break;
		}
		index_batch_delete(ib, INDEX_CF_OBJECTS, k, klen);
	}
	if (!rc)
		rc = index_iter_status(it);
	index_iter_free(it);
	if (rc)
		return rc;
	index_batch_delete(ib, INDEX_CF_BUCKETS, op->name, strlen(op->name));
	/* Its lifecycle rules go with it. */
	{
		uint8_t lc[STORE_LC_KEY_LEN];

		store__lc_key(mb.id, lc);
		index_batch_delete(ib, INDEX_CF_META, lc, sizeof(lc));
	}
	return 0;
}

static void bucket_op_done(struct store *s, struct mutation *m)
{
	struct bucket_op *op = container_of(m, struct bucket_op, mut);

	if (m->kind == MUT_BUCKET_DELETE && !m->status)
		bucket_forget(s, op->name);
	op->cb(op->arg, m->status);
	free(op->attrs);
	free(op);
	s->ops--;
	store__maybe_closed(s);
}

static int bucket_op_new(struct store *s, enum mut_kind kind, const char *name,
			 const void *attrs, size_t attrslen, store_done_cb cb,
			 void *arg)
{
	struct bucket_op *op;
	size_t nlen = strlen(name);
	int rc;

	if (s->closing)
		return STRATA_ECLOSING;
	rc = meta_check_bucket_name(name, nlen);
	if (rc)
		return rc;
	if (attrslen > META_ATTRS_MAX)
		return STRATA_EBADMETA;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	memcpy(op->name, name, nlen + 1);
	if (attrslen) {
		op->attrs = malloc(attrslen);
		if (!op->attrs) {
			free(op);
			return -ENOMEM;
		}
		memcpy(op->attrs, attrs, attrslen);
		op->attrslen = attrslen;
	}
	op->cb = cb;
	op->arg = arg;
	op->mut.kind = kind;
	op->mut.build = kind == MUT_BUCKET_CREATE ? build_bucket_create
						  : build_bucket_delete;
	op->mut.done = bucket_op_done;
	s->ops++;
	store__mutation_queue(s, &op->mut);
	return 0;
}

int store_bucket_create(struct store *s, const char *name, const void *attrs,
			size_t attrslen, store_done_cb cb, void *arg)
{
	return bucket_op_new(s, MUT_BUCKET_CREATE, name, attrs, attrslen, cb,
			     arg);
}

int store_bucket_delete(struct store *s, const char *name, store_done_cb cb,
			void *arg)
{
	return bucket_op_new(s, MUT_BUCKET_DELETE, name, NULL, 0, cb, arg);
}

int store_bucket_exists(struct store *s, const char *name)
{
	struct bucket *b;
	int rc = store__bucket_get(s, name, &b);

	if (!rc)
		store__bucket_unref(s, b);
	return rc;
}

int store_bucket_list(struct store *s, struct store_bucket_info **out,
		      size_t *n)
{
	struct store_bucket_info *v = NULL;
	struct index_iter *it;
	size_t cnt = 0, cap = 0;
	int rc = 0;

	it = index_iter_new(s->ix, INDEX_CF_BUCKETS, NULL, 0, NULL, 0);
	if (!it)
		return -ENOMEM;
	for (; index_iter_valid(it); index_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = index_iter_key(it, &klen);
		const uint8_t *val = index_iter_value(it, &vlen);
		struct meta_bucket mb;

		if (klen > META_BUCKET_MAX ||
		    meta_bucket_decode(val, vlen, &mb)) {
			log_err("store", "skipping a damaged bucket entry");
			s->st.corrupt++;
			continue;
		}
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct store_bucket_info *nv =
				realloc(v, ncap * sizeof(*nv));

			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		memcpy(v[cnt].name, k, klen);
		v[cnt].name[klen] = 0;
		v[cnt].id = mb.id;
		v[cnt].ctime_ms = mb.ctime_ms;
		cnt++;
	}
	if (!rc)
		rc = index_iter_status(it);
	index_iter_free(it);
	if (rc) {
		free(v);
		return rc;
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* ---- deletes ---- */

struct delete_op {
	struct mutation mut;
	struct bucket *b;
	uint64_t if_hlc;		/* nonzero: only this version */
	size_t keylen;
	store_done_cb cb;
	void *arg;
	char key[];
};

static int build_delete(struct store *s, struct mutation *m,
			struct index_batch *ib)
{
	struct delete_op *op = container_of(m, struct delete_op, mut);
	uint8_t okey[META_OBJKEY_MAX], *prevbuf, *enc = NULL;
	struct meta_object *prev, o = { 0 };
	size_t oklen;
	int rc;

	rc = store__bucket_check(ib, op->b);
	if (rc)
		return rc;
	oklen = meta_objkey(op->b->id, op->key, op->keylen, okey);
	rc = store__object_get_batch(ib, okey, oklen, &prevbuf, &prev);
	if (rc)
		return rc;
	if (!prev || (prev->flags & META_OBJ_TOMBSTONE)) {
		rc = STRATA_ENOOBJECT;
		goto out;
	}
	if (op->if_hlc && prev->hlc != op->if_hlc) {
		rc = STRATA_ECHANGED;	/* written again meanwhile */
		goto out;
	}
	for (uint32_t i = 0; i < prev->nchunks &&
			    !(prev->flags & META_OBJ_INLINE); i++) {
		rc = store__chunk_unref(s, ib, op->b->id, prev->chunks[i].id);
		if (rc)
			goto out;
	}
	/* The tombstone is a version too, so replicas converge on it. */
	o.flags = META_OBJ_TOMBSTONE;
	o.hlc = store__hlc_next(s, prev->hlc);
	o.writer = s->o.node_id;
	o.mtime_ms = store__now_ms();
	enc = malloc(meta_object_size(&o));
	if (!enc) {
		rc = -ENOMEM;
		goto out;
	}
	index_batch_put(ib, INDEX_CF_OBJECTS, okey, oklen, enc,
			meta_object_encode(&o, enc));
out:
	free(enc);
	meta_object_free(prev);
	free(prevbuf);
	return rc;
}

static void delete_done(struct store *s, struct mutation *m)
{
	struct delete_op *op = container_of(m, struct delete_op, mut);

	if (!m->status)
		s->st.deletes++;
	op->cb(op->arg, m->status);
	store__bucket_unref(s, op->b);
	free(op);
	s->ops--;
	store__maybe_closed(s);
}

int store_delete(struct store *s, const char *bucket, const char *key,
		 size_t keylen, store_done_cb cb, void *arg)
{
	return store__delete_if(s, bucket, key, keylen, 0, cb, arg);
}

int store__delete_if(struct store *s, const char *bucket, const char *key,
		     size_t keylen, uint64_t if_hlc, store_done_cb cb,
		     void *arg)
{
	struct delete_op *op;
	int rc;

	if (s->closing)
		return STRATA_ECLOSING;
	rc = meta_check_key(key, keylen);
	if (rc)
		return rc;
	op = calloc(1, sizeof(*op) + keylen + 1);
	if (!op)
		return -ENOMEM;
	rc = store__bucket_get(s, bucket, &op->b);
	if (rc) {
		free(op);
		return rc;
	}
	memcpy(op->key, key, keylen);
	op->keylen = keylen;
	op->if_hlc = if_hlc;
	op->cb = cb;
	op->arg = arg;
	op->mut.kind = MUT_DELETE;
	op->mut.bid = op->b->id;
	op->mut.build = build_delete;
	op->mut.done = delete_done;
	s->ops++;
	store__mutation_queue(s, &op->mut);
	return 0;
}

/* ---- access keys ---- */

static int akey_check_id(const char *id, size_t *len)
{
	size_t n = strlen(id);

	if (n == 0 || n > META_AKEY_ID_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (id[i] <= ' ' || id[i] > '~')
			return -EINVAL;
	*len = n;
	return 0;
}

/* AAD binds a sealed secret to its key id: a value copied to another id
 * does not open. */
static size_t akey_aad(const char *id, size_t idlen, uint8_t *aad)
{
	memcpy(aad, "strata-akey-v1", 14);
	memcpy(aad + 14, id, idlen);
	return 14 + idlen;
}

int store_access_key_put(struct store *s, const char *id, const void *secret,
			 size_t secretlen, uint32_t flags)
{
	uint8_t aad[14 + META_AKEY_ID_MAX], v[META_AKEY_MAXLEN], *old;
	struct meta_akey k = { 0 };
	size_t idlen, vlen;
	int rc;

	rc = akey_check_id(id, &idlen);
	if (rc)
		return rc;
	if (!secretlen || secretlen > META_AKEY_SECRET_MAX)
		return -EINVAL;
	rc = index_get(s->ix, INDEX_CF_KEYS, id, idlen, &old, &vlen);
	if (rc == 0) {
		free(old);
		return -EEXIST;
	}
	if (rc != -ENOENT)
		return rc;
	k.flags = flags;
	k.ctime_ms = store__now_ms();
	k.wrappedlen = (uint16_t)(KEYS_WRAP_OVERHEAD + secretlen);
	rc = keys_wrap(s->master, aad, akey_aad(id, idlen, aad), secret,
		       secretlen, k.wrapped);
	if (rc)
		return rc;
	vlen = meta_akey_encode(&k, v);
	return index_put_sync(s->ix, INDEX_CF_KEYS, id, idlen, v, vlen);
}

int store_access_key_get(struct store *s, const char *id, uint8_t *secret,
			 size_t *secretlen, uint32_t *flags)
{
	uint8_t aad[14 + META_AKEY_ID_MAX], *val;
	struct meta_akey k;
	size_t idlen, vlen;
	int rc;

	rc = akey_check_id(id, &idlen);
	if (rc)
		return -ENOENT;
	rc = index_get(s->ix, INDEX_CF_KEYS, id, idlen, &val, &vlen);
	if (rc)
		return rc;
	rc = meta_akey_decode(val, vlen, &k);
	free(val);
	if (rc)
		return rc;
	if (k.wrappedlen <= KEYS_WRAP_OVERHEAD ||
	    k.wrappedlen - KEYS_WRAP_OVERHEAD > META_AKEY_SECRET_MAX)
		return STRATA_ECORRUPT;
	rc = keys_unwrap(s->master, aad, akey_aad(id, idlen, aad), k.wrapped,
			 k.wrappedlen, secret);
	if (rc)
		return rc;
	*secretlen = k.wrappedlen - KEYS_WRAP_OVERHEAD;
	if (flags)
		*flags = k.flags;
	return 0;
}

static void hex_into(const uint8_t *in, size_t n, char *out, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

int store_access_key_make(char id[STORE_AKEY_ID_LEN + 1],
			  char secret[STORE_AKEY_SECRET_LEN + 1])
{
	uint8_t rnd[(STORE_AKEY_ID_LEN - 2) / 2 + STORE_AKEY_SECRET_LEN / 2];
	int rc;

	rc = keys_random(rnd, sizeof(rnd));
	if (rc)
		return rc;
	id[0] = 'A';
	id[1] = 'K';
	hex_into(rnd, (STORE_AKEY_ID_LEN - 2) / 2, id + 2, true);
	hex_into(rnd + (STORE_AKEY_ID_LEN - 2) / 2, STORE_AKEY_SECRET_LEN / 2,
		 secret, false);
	keys_wipe(rnd, sizeof(rnd));
	return 0;
}

int store_access_key_generate(struct store *s, uint32_t flags,
			      char id[STORE_AKEY_ID_LEN + 1],
			      char secret[STORE_AKEY_SECRET_LEN + 1])
{
	int rc = store_access_key_make(id, secret);

	if (rc)
		return rc;
	return store_access_key_put(s, id, secret, STORE_AKEY_SECRET_LEN,
				    flags);
}

/*
 * Under INDEX_CF_META "grant/<id>": u8 version (1) || le32 policy length
 * || policy (JSON, not NUL-terminated) || le32 attrs length || attrs (a
 * proto string list: name, value, ...).  A key with neither has no
 * record.
 */
#define GRANT_PREFIX "grant/"
#define GRANT_VERSION 1

static size_t grant_key(const char *id, size_t idlen, uint8_t *out)
{
	memcpy(out, GRANT_PREFIX, strlen(GRANT_PREFIX));
	memcpy(out + strlen(GRANT_PREFIX), id, idlen);
	return strlen(GRANT_PREFIX) + idlen;
}

int store_access_key_delete(struct store *s, const char *id)
{
	uint8_t *val;
	size_t idlen, vlen;
	int rc;

	rc = akey_check_id(id, &idlen);
	if (rc)
		return -ENOENT;
	rc = index_get(s->ix, INDEX_CF_KEYS, id, idlen, &val, &vlen);
	if (rc)
		return rc;
	free(val);
	/* A tombstone write through RocksDB: a put of nothing is not it;
	 * use a one-key batch. */
	{
		struct index_batch *b = index_batch_new(s->ix);

		if (!b)
			return -ENOMEM;
		uint8_t k[sizeof(GRANT_PREFIX) + META_AKEY_ID_MAX];

		index_batch_delete(b, INDEX_CF_KEYS, id, idlen);
		index_batch_delete(b, INDEX_CF_META, k, grant_key(id, idlen, k));
		rc = index_batch_commit(b);
		index_batch_free(b);
	}
	return rc;
}

int store_access_key_list(struct store *s, char ***ids, uint32_t **flags,
			  size_t *n)
{
	struct index_iter *it;
	char **v = NULL;
	uint32_t *f = NULL;
	size_t cnt = 0, cap = 0;
	int rc = 0;

	it = index_iter_new(s->ix, INDEX_CF_KEYS, NULL, 0, NULL, 0);
	if (!it)
		return -ENOMEM;
	for (; index_iter_valid(it); index_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = index_iter_key(it, &klen);
		const uint8_t *val = index_iter_value(it, &vlen);
		struct meta_akey ak;

		if (klen > META_AKEY_ID_MAX || meta_akey_decode(val, vlen, &ak))
			continue;
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 8;
			char **nv = realloc(v, nc * sizeof(*nv));
			uint32_t *nf = nv ? realloc(f, nc * sizeof(*nf)) : NULL;

			if (nv)
				v = nv;
			if (!nv || !nf) {
				rc = -ENOMEM;
				break;
			}
			f = nf;
			cap = nc;
		}
		v[cnt] = strndup((const char *)k, klen);
		if (!v[cnt]) {
			rc = -ENOMEM;
			break;
		}
		f[cnt++] = ak.flags;
	}
	if (!rc)
		rc = index_iter_status(it);
	index_iter_free(it);
	if (rc) {
		for (size_t i = 0; i < cnt; i++)
			free(v[i]);
		free(v);
		free(f);
		return rc;
	}
	*ids = v;
	if (flags)
		*flags = f;
	else
		free(f);
	*n = cnt;
	return 0;
}

/* ---- access keys' grants (policy and attributes) ---- */

void store_grant_free(struct store_grant *g)
{
	free(g->policy);
	free(g->attrs);
	memset(g, 0, sizeof(*g));
}

static int grant_decode(const uint8_t *v, size_t n, struct store_grant *g)
{
	struct proto_list l;
	struct proto_list_iter it;
	struct proto_str e;
	uint32_t plen, alen, count = 0;
	int rc;

	if (n < 9 || v[0] != GRANT_VERSION)
		return STRATA_ECORRUPT;
	plen = get_le32(v + 1);
	if (plen > n - 9)
		return STRATA_ECORRUPT;
	alen = get_le32(v + 5 + plen);
	if (alen != n - 9 - plen)
		return STRATA_ECORRUPT;
	l.p = v + 9 + plen;
	l.len = alen;
	proto_list_iter_init(&it, &l);
	while ((rc = proto_list_next(&it, &e)) == 1)
		count++;
	if (rc < 0 || (count & 1))
		return STRATA_ECORRUPT;
	if (plen) {
		g->policy = malloc(plen + 1);
		if (!g->policy)
			return -ENOMEM;
		memcpy(g->policy, v + 5, plen);
		g->policy[plen] = 0;
		g->policylen = plen;
	}
	if (alen) {
		g->attrs = malloc(alen);
		if (!g->attrs) {
			store_grant_free(g);
			return -ENOMEM;
		}
		memcpy(g->attrs, v + 9 + plen, alen);
		g->attrslen = alen;
		g->nattrs = count / 2;
	}
	return 0;
}

int store_access_key_grant_get(struct store *s, const char *id,
			       struct store_grant *g)
{
	uint8_t k[sizeof(GRANT_PREFIX) + META_AKEY_ID_MAX], *v;
	size_t idlen, vlen;
	int rc;

	memset(g, 0, sizeof(*g));
	rc = akey_check_id(id, &idlen);
	if (rc)
		return -ENOENT;
	rc = index_get(s->ix, INDEX_CF_META, k, grant_key(id, idlen, k), &v,
		       &vlen);
	if (rc == -ENOENT)
		return 0;		/* neither policy nor attributes */
	if (rc)
		return rc;
	rc = grant_decode(v, vlen, g);
	free(v);
	return rc;
}

int store_access_key_grant_put(struct store *s, const char *id,
			       const struct store_grant *g)
{
	uint8_t k[sizeof(GRANT_PREFIX) + META_AKEY_ID_MAX], *v, *old;
	size_t idlen, klen, vlen, n;
	struct index_batch *b;
	int rc;

	rc = akey_check_id(id, &idlen);
	if (rc)
		return -ENOENT;
	/* The key must exist: a grant never outlives it. */
	rc = index_get(s->ix, INDEX_CF_KEYS, id, idlen, &old, &n);
	if (rc)
		return rc;
	free(old);
	if (g->policylen > UINT32_MAX - 9 || g->attrslen > UINT32_MAX - 9 -
	    g->policylen)
		return -EINVAL;
	klen = grant_key(id, idlen, k);
	if (!g->policylen && !g->attrslen) {
		b = index_batch_new(s->ix);
		if (!b)
			return -ENOMEM;
		index_batch_delete(b, INDEX_CF_META, k, klen);
		rc = index_batch_commit(b);
		index_batch_free(b);
		return rc;
	}
	vlen = 9 + g->policylen + g->attrslen;
	v = malloc(vlen);
	if (!v)
		return -ENOMEM;
	v[0] = GRANT_VERSION;
	put_le32(v + 1, (uint32_t)g->policylen);
	if (g->policylen)
		memcpy(v + 5, g->policy, g->policylen);
	put_le32(v + 5 + g->policylen, (uint32_t)g->attrslen);
	if (g->attrslen)
		memcpy(v + 9 + g->policylen, g->attrs, g->attrslen);
	rc = index_put_sync(s->ix, INDEX_CF_META, k, klen, v, vlen);
	free(v);
	return rc;
}

int store_access_key_info(struct store *s, const char *id, uint32_t *flags,
			  uint64_t *ctime_ms)
{
	struct meta_akey ak;
	uint8_t *v;
	size_t idlen, vlen;
	int rc;

	rc = akey_check_id(id, &idlen);
	if (rc)
		return -ENOENT;
	rc = index_get(s->ix, INDEX_CF_KEYS, id, idlen, &v, &vlen);
	if (rc)
		return rc;
	rc = meta_akey_decode(v, vlen, &ak);
	free(v);
	if (rc)
		return rc;
	*flags = ak.flags;
	*ctime_ms = ak.ctime_ms;
	return 0;
}

/* ---- stats ---- */

static void stats_seg(void *arg, struct segment *seg)
{
	struct store_stats *st = arg;

	st->segments++;
	st->seg_bytes[seg->tier] += seg->size;
}

uint64_t store_answer_gen(struct store *s, uint64_t bid)
{
	/* Both only grow: their sum moves whenever either does. */
	return atomic_load(&s->ans_all) +
	       atomic_load(&s->ans_bucket[bid % STORE_ANSWER_SLOTS]);
}

int store_stats(struct store *s, struct store_stats *st)
{
	struct index_iter *it;
	int rc;

	*st = s->st;
	{
		struct cache_stats cs;

		cache_get_stats(s->cache, &cs);
		st->cache_hits = cs.hits;
		st->cache_misses = cs.misses;
		st->cache_evictions = cs.evictions;
		st->cache_bytes = cs.bytes;
		st->cache_budget = cs.budget;
		st->objmeta_hits = s->objmeta_hits;
	}
	store__tier_stats(s, st);
	st->uring_inflight = s->ring ? uring_inflight(s->ring) : 0;
	st->pooled_bytes = (uint64_t)s->nbig * s->bigsize;
	st->transfer_bytes = s->xfer_used;
	st->transfer_budget = s->o.transfer_bytes;
	st->transfer_waits = s->xfer_waits;
	st->transfer_given_back = s->xfer_given_back;
	st->index_refusing = index_writes_refused(s->ix);
	index_memory(s->ix, &st->index_memtable_bytes, &st->index_cache_bytes);
	st->segments = 0;
	memset(st->seg_bytes, 0, sizeof(st->seg_bytes));
	memset(st->live_bytes, 0, sizeof(st->live_bytes));
	segtab_foreach(&s->segs, stats_seg, st);
	it = index_iter_new(s->ix, INDEX_CF_SEGMENTS, NULL, 0, NULL, 0);
	if (!it)
		return -ENOMEM;
	for (; index_iter_valid(it); index_iter_next(it)) {
		size_t vlen;
		const uint8_t *v = index_iter_value(it, &vlen);
		struct meta_segment ms;

		if (!meta_segment_decode(v, vlen, &ms) && ms.tier < STORE_TIERS)
			st->live_bytes[ms.tier] += ms.live_bytes;
	}
	rc = index_iter_status(it);
	index_iter_free(it);
	return rc;
}

/* ---- open and close ---- */

static const uint8_t master_check_aad[] = "strata-master-check-v1";

/* First open: stamp the format and a value only this master key opens. */
/* The store's id (META_STORE_ID), made on first need: stores made before
 * ids get one at their next open. */
static int store_load_id(struct store *s)
{
	uint8_t *val;
	size_t vlen;
	int rc;

	rc = index_get(s->ix, INDEX_CF_META, META_STORE_ID,
		       strlen(META_STORE_ID), &val, &vlen);
	if (rc == 0) {
		if (vlen != SEGMENT_STORE_ID_LEN) {
			free(val);
			return STRATA_ECORRUPT;
		}
		memcpy(s->segs.store_id, val, vlen);
		free(val);
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	rc = keys_random(s->segs.store_id, SEGMENT_STORE_ID_LEN);
	if (rc)
		return rc;
	return index_put_sync(s->ix, INDEX_CF_META, META_STORE_ID,
			      strlen(META_STORE_ID), s->segs.store_id,
			      SEGMENT_STORE_ID_LEN);
}

/*
 * A new index: refuse it when the tier directories already hold segment
 * files, whose index it is not (a lost or damaged index, a wrong
 * state_dir): taking them for orphans would remove every object.
 */
static int store_init_meta(struct store *s)
{
	uint8_t zero[32] = { 0 }, wrapped[KEYS_WRAP_OVERHEAD + 32], v[4];
	long n;
	int rc;

	n = segtab_count_files(&s->segs);
	if (n < 0)
		return (int)n;
	if (n > 0) {
		log_err("store", "the index in %s is new (or lost its contents) but the tier directories hold %ld segment file%s: refusing to start rather than remove them as orphans; restore the index (or point state_dir at it), or move the segment files away to start an empty store",
			s->o.index_dir, n, n == 1 ? "" : "s");
		return STRATA_ECONFIG;
	}
	rc = keys_wrap(s->master, master_check_aad, sizeof(master_check_aad),
		       zero, sizeof(zero), wrapped);
	if (rc)
		return rc;
	rc = index_put_sync(s->ix, INDEX_CF_META, META_MASTER_CHECK,
			    strlen(META_MASTER_CHECK), wrapped, sizeof(wrapped));
	if (rc)
		return rc;
	v[0] = FORMAT_VERSION;
	v[1] = v[2] = v[3] = 0;
	return index_put_sync(s->ix, INDEX_CF_META, META_FORMAT,
			      strlen(META_FORMAT), v, sizeof(v));
}

static int store_check_meta(struct store *s)
{
	uint8_t *val = NULL, zero[32];
	size_t vlen;
	uint32_t fmt;
	int rc;

	rc = index_get(s->ix, INDEX_CF_META, META_FORMAT, strlen(META_FORMAT),
		       &val, &vlen);
	if (rc == -ENOENT)
		return store_init_meta(s);
	if (rc)
		return rc;
	if (vlen != 4) {
		free(val);
		return STRATA_ECORRUPT;
	}
	fmt = (uint32_t)val[0] | (uint32_t)val[1] << 8 |
	      (uint32_t)val[2] << 16 | (uint32_t)val[3] << 24;
	free(val);
	if (fmt > FORMAT_VERSION) {
		log_err("store", "index format %u is newer than this build (%u)",
			fmt, FORMAT_VERSION);
		return STRATA_EFORMAT;
	}
	rc = index_get(s->ix, INDEX_CF_META, META_MASTER_CHECK,
		       strlen(META_MASTER_CHECK), &val, &vlen);
	if (rc == -ENOENT)
		return STRATA_ECORRUPT;
	if (rc)
		return rc;
	if (vlen != KEYS_WRAP_OVERHEAD + 32)
		rc = STRATA_ECORRUPT;
	else
		rc = keys_unwrap(s->master, master_check_aad,
				 sizeof(master_check_aad), val, vlen, zero);
	free(val);
	if (rc == STRATA_EMASTERKEY)
		log_err("store", "the master key does not open this store (wrong key file?)");
	if (rc)
		return rc;
	rc = index_get(s->ix, INDEX_CF_META, META_NEXT_SEG,
		       strlen(META_NEXT_SEG), &val, &vlen);
	if (rc == 0) {
		if (vlen == 8)
			s->persisted_next_seg = get_le64(val);
		free(val);
	} else if (rc != -ENOENT) {
		return rc;
	}
	return 0;
}

/* 1: the index has segment id; 0: it has not; < 0: it could not say
 * (then nothing may be taken for an orphan). */
static int seg_known(void *arg, uint64_t id)
{
	struct store *s = arg;
	uint8_t key[META_SEGKEY_LEN], *val;
	size_t vlen;
	int rc;

	meta_segkey(id, key);
	rc = index_get(s->ix, INDEX_CF_SEGMENTS, key, sizeof(key), &val,
		       &vlen);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	free(val);
	return 1;
}

/*
 * Entries whose file is gone: their chunks will read as corrupt; say so
 * once, loudly, at start.  But when none of the files that the index
 * places in one tier directory are there, or the index places files in a
 * directory the configuration no longer lists, the directory is what is
 * missing (a disk not mounted, a path edited or dropped from [tiers]):
 * refuse to start rather than serve its objects as corrupt and write
 * new data where the disk should be.
 */
static int check_missing_segments(struct store *s)
{
	uint32_t found[STORE_TIERS][STORE_MAX_TIER_DIRS] = { { 0 } };
	uint32_t missing[STORE_TIERS][STORE_MAX_TIER_DIRS] = { { 0 } };
	struct index_iter *it;
	int rc = 0;

	it = index_iter_new(s->ix, INDEX_CF_SEGMENTS, NULL, 0, NULL, 0);
	if (!it)
		return -ENOMEM;
	for (; index_iter_valid(it); index_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = index_iter_key(it, &klen);
		const uint8_t *v = index_iter_value(it, &vlen);
		struct meta_segment ms;
		bool here;

		if (klen != META_SEGKEY_LEN)
			continue;
		here = segtab_find(&s->segs, meta_get_be64(k)) != NULL;
		if (!here) {
			log_err("store", "segment %016" PRIx64 " is in the index but its file is missing",
				meta_get_be64(k));
			s->st.corrupt++;
		}
		if (meta_segment_decode(v, vlen, &ms) ||
		    ms.tier >= STORE_TIERS || ms.dir >= STORE_MAX_TIER_DIRS)
			continue;
		if (here)
			found[ms.tier][ms.dir]++;
		else
			missing[ms.tier][ms.dir]++;
	}
	index_iter_free(it);
	for (int t = 0; t < STORE_TIERS; t++) {
		for (unsigned d = 0; d < STORE_MAX_TIER_DIRS; d++) {
			if (!missing[t][d] || found[t][d])
				continue;
			if (s->o.accept_missing_dirs) {
				log_err("store", "%s tier directory #%u: none of the %" PRIu32 " segment files the index places there are found; starting anyway (accept_missing_dirs): their chunks read as corrupt",
					t == STORE_TIER_HOT ? "hot" : "cold",
					d + 1, missing[t][d]);
				continue;
			}
			if (d < s->segs.ndirs[t])
				log_err("store", "%s tier directory %s holds none of the %" PRIu32 " segment files the index places there: is its disk mounted? (if it is lost, set accept_missing_dirs) refusing to start",
					t == STORE_TIER_HOT ? "hot" : "cold",
					s->segs.dirs[t][d], missing[t][d]);
			else
				log_err("store", "the index places %" PRIu32 " segment files in %s tier directory #%u, which [tiers] %s no longer lists: put it back (or, if its disk is lost, set accept_missing_dirs); refusing to start",
					missing[t][d],
					t == STORE_TIER_HOT ? "hot" : "cold",
					d + 1, t == STORE_TIER_HOT ? "hot" : "cold");
			rc = STRATA_ECONFIG;
		}
	}
	return rc;
}

static int check_opts(struct store_opts *o)
{
	if (!o->index_dir || (!o->master_key && !o->master_key_path)) {
		log_err("store", "index directory and master key are required");
		return STRATA_ECONFIG;
	}
	if (!o->chunk_size)
		o->chunk_size = STORE_DEFAULT_CHUNK;
	if (o->chunk_size < STORE_MIN_CHUNK || o->chunk_size > STORE_MAX_CHUNK) {
		log_err("store", "chunk size %u outside %u..%u", o->chunk_size,
			STORE_MIN_CHUNK, STORE_MAX_CHUNK);
		return STRATA_ECONFIG;
	}
	if (o->zstd_level < 0)
		o->zstd_level = 1;
	if (o->zstd_level > 19) {
		log_err("store", "zstd level %d above 19", o->zstd_level);
		return STRATA_ECONFIG;
	}
	if (!o->segment_size)
		o->segment_size = 256u << 20;
	if (o->segment_size < (1u << 20)) {
		log_err("store", "segment size below 1 MiB");
		return STRATA_ECONFIG;
	}
	if (!o->put_window)
		o->put_window = 4;
	if (!o->get_window)
		o->get_window = 3;
	if (o->get_window > GET_WINDOW_MAX)
		o->get_window = GET_WINDOW_MAX;
	if (!o->gc_dead_pct)
		o->gc_dead_pct = 50;
	if (o->gc_dead_pct > 100)
		o->gc_dead_pct = 100;
	if (!o->gc_interval_ms)
		o->gc_interval_ms = 10000;
	if (!o->transfer_bytes)
		o->transfer_bytes = 1ull << 30;
	if (o->cache_bytes == 0)
		o->cache_bytes = 512ll << 20;
	else if (o->cache_bytes < 0)
		o->cache_bytes = 0;
	for (int t = 0; t < STORE_TIERS; t++) {
		struct store_tier_opts *to = &o->tier[t];

		if (!to->high_pct)
			to->high_pct = 90;
		if (!to->low_pct)
			to->low_pct = to->high_pct > 15 ? to->high_pct - 15 : 1;
		if (to->high_pct > 100 || to->low_pct > to->high_pct) {
			log_err("store", "tier watermarks: need low <= high <= 100%%");
			return STRATA_ECONFIG;
		}
		/* The mover moves whole segments: keep them a small part of
		 * a tier so that it has something to pick. */
		if (to->capacity && o->segment_size > to->capacity / 8)
			o->segment_size = to->capacity / 8 > (1u << 20) ?
					  to->capacity / 8 : (1u << 20);
	}
	if (!o->mover_interval_ms)
		o->mover_interval_ms = 1000;
	if (!o->promote_reads)
		o->promote_reads = 3;
	if (!o->promote_window_ms)
		o->promote_window_ms = 600000;
	if (!o->prestage_ahead)
		o->prestage_ahead = 32;
	if (!o->lifecycle_interval_ms)
		o->lifecycle_interval_ms = 3600000;
	if (o->inline_max == 0)
		o->inline_max = STORE_DEFAULT_INLINE;
	else if (o->inline_max < 0)
		o->inline_max = 0;
	if (o->inline_max > (int32_t)META_INLINE_MAX ||
	    (uint32_t)o->inline_max > o->chunk_size) {
		log_err("store", "inline limit %d above %u or the chunk size",
			o->inline_max, META_INLINE_MAX);
		return STRATA_ECONFIG;
	}
	return 0;
}

static void cache_free_mem(void *arg, uint8_t *mem, size_t cap)
{
	store__buf_free(arg, mem, cap);
}

int store_open(uv_loop_t *loop, const struct store_opts *opts,
	       struct store **out)
{
	struct store *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->o = *opts;
	s->qtail = &s->queue;
	s->defer_tail = &s->defer_head;
	pthread_mutex_init(&s->pool_lock, NULL);
	rc = check_opts(&s->o);
	if (rc)
		goto fail;
	if (s->o.master_key)
		memcpy(s->master, s->o.master_key, KEYS_MASTER_LEN);
	else if ((rc = keys_load_master(s->o.master_key_path, s->master))) {
		log_err("store", "master key %s: %s", s->o.master_key_path,
			strata_strerror(rc));
		goto fail;
	}
	s->o.master_key = NULL;
	s->o.master_key_path = NULL;
	/* Room for a whole record padded to the O_DIRECT alignment. */
	s->bigsize = (record_bound(s->o.chunk_size) + SEGMENT_DIO_ALIGN - 1) &
		     ~(size_t)(SEGMENT_DIO_ALIGN - 1);
	s->cache = cache_new((size_t)s->o.cache_bytes, cache_free_mem, s);
	s->loop_codec = record_codec_new();
	if (!s->loop_codec || !s->cache) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = index_open(s->o.index_dir, s->o.fault, s->o.index_cache_bytes,
			s->o.index_write_buffer_bytes,
			&s->ix);
	if (rc)
		goto fail;
	rc = segtab_init(&s->segs, &s->o);
	if (rc)
		goto fail;
	s->o.tier_dirs[0] = s->o.tier_dirs[1] = NULL;	/* not ours */
	rc = store_check_meta(s);
	if (!rc)
		rc = store_load_id(s);
	if (rc)
		goto fail_segs;
	rc = segtab_scan(&s->segs, seg_known, s);
	if (rc)
		goto fail_segs;
	if (s->persisted_next_seg > s->segs.next_id)
		s->segs.next_id = s->persisted_next_seg;
	rc = check_missing_segments(s);
	if (rc)
		goto fail_segs;
	rc = uring_new(loop, 256, &s->ring);
	if (rc) {
		log_err("store", "io_uring: %s", strerror(-rc));
		goto fail_segs;
	}
	uv_idle_init(loop, &s->idle);
	s->idle.data = s;
	uv_timer_init(loop, &s->gc_timer);
	s->gc_timer.data = s;
	uv_timer_start(&s->gc_timer, store__gc_timer_cb, s->o.gc_interval_ms,
		       s->o.gc_interval_ms);
	uv_unref((uv_handle_t *)&s->gc_timer);
	uv_timer_init(loop, &s->mv_timer);
	s->mv_timer.data = s;
	uv_unref((uv_handle_t *)&s->mv_timer);
	s->handles_open = 3;
	rc = store__tier_init(s);
	if (rc) {
		/* Handles are live now: close as a store would. */
		s->closing = true;
		store__maybe_closed(s);
		*out = NULL;
		return rc;
	}
	*out = s;
	return 0;
fail_segs:
	segtab_release(&s->segs);
fail:
	index_close(s->ix);
	cache_free(s->cache);
	record_codec_free(s->loop_codec);
	keys_wipe(s->master, sizeof(s->master));
	pthread_mutex_destroy(&s->pool_lock);
	free(s);
	return rc;
}

static void store_free(struct store *s)
{
	void (*cb)(void *) = s->close_cb;
	void *arg = s->close_arg;

	while (s->buckets) {
		struct bucket *b = s->buckets;

		s->buckets = b->next;
		keys_wipe(&b->keys, sizeof(b->keys));
		free(b);
	}
	store__tier_free(s);
	index_close(s->ix);
	segtab_release(&s->segs);
	for (unsigned i = 0; i < s->npool; i++)
		record_codec_free(s->pool[i]);
	record_codec_free(s->loop_codec);
	cache_free(s->cache);
	store__objmeta_free(s);
	while (s->nbig)
		free(s->bigpool[--s->nbig]);
	pthread_mutex_destroy(&s->pool_lock);
	keys_wipe(s->master, sizeof(s->master));
	free(s);
	if (cb)
		cb(arg);
}

static void handle_closed(uv_handle_t *h)
{
	struct store *s = h->data;

	if (--s->handles_open == 0)
		store_free(s);
}

static void ring_closed(void *arg)
{
	struct store *s = arg;

	uv_close((uv_handle_t *)&s->idle, handle_closed);
	uv_close((uv_handle_t *)&s->gc_timer, handle_closed);
	uv_close((uv_handle_t *)&s->mv_timer, handle_closed);
}

static bool close_started(struct store *s)
{
	return s->ring == NULL;
}

void store__maybe_closed(struct store *s)
{
	struct uring *ring;

	if (!s->closing || close_started(s) || s->ops || s->syncing ||
	    s->committing ||
	    s->queue || s->kick_pending || s->defer_head ||
	    store__tier_busy(s))
		return;
	ring = s->ring;
	s->ring = NULL;
	uring_close(ring, ring_closed, s);
}

static void close_kick(void *arg)
{
	store__maybe_closed(arg);
}

static void mv_wake_cb(void *arg)
{
	store__move_resume(arg);
}

void store_close(struct store *s, void (*cb)(void *arg), void *arg)
{
	s->closing = true;
	s->close_cb = cb;
	s->close_arg = arg;
	uv_timer_stop(&s->gc_timer);
	uv_timer_stop(&s->mv_timer);
	if (s->mv_waiting) {
		/* A paced move waits: let it give up its items now. */
		struct move_job *j = s->mv_waiting;

		s->mv_waiting = NULL;
		store__defer(s, &s->mv_wake, mv_wake_cb, j);
	}
	store__tier_close(s);
	/* From the loop, so that a close inside a callback is safe. */
	store__defer(s, &s->close_d, close_kick, s);
}
