// SPDX-License-Identifier: Apache-2.0
/*
 * store: the chunk engine (see store.h for the contract).
 *
 * Invariants
 * - The index is the truth.  A chunk record in a segment is live iff a
 *   chunks entry points at it; an object version is visible iff its objects
 *   entry is committed.  Everything else on disk is garbage that
 *   compaction (or, for whole orphan files, open) reclaims.
 * - Every index change goes through one group-commit round at a time:
 *
 *     QUEUED --[round_start]--> SYNCING (fdatasync dirty segments and new
 *       segments' directories via io_uring)
 *     SYNCING --[round_build]--> COMMITTING (one WriteBatchWithIndex built on
 *       the loop, each mutation inside a savepoint; committed with a synced
 *       WAL on a worker thread)
 *     COMMITTING --[round_done]--> DONE (callbacks; next round starts)
 *
 *   A mutation joins a round only after all its chunk writes completed, so
 *   the round's syncs cover its bytes: nothing is acknowledged before its
 *   data and its index entry are durable.  Rounds are serial, so a round's
 *   build reads the effects of every earlier round (and, through the batch,
 *   of earlier mutations in the same round): refcounts need no locks.
 * - A segment is never freed while pinned: reads in flight, chunks written
 *   or deduplicated by puts not yet committed, and compaction copies pin
 *   their segments.  A segment whose last live chunk goes away is doomed in
 *   the same batch and unlinked once unpinned.
 *
 *   put:  begin -> write* -> [chunk: encode (pool) -> dedup lookup ->
 *         append (uring)] -> commit -> round -> cb
 *   get:  lookup -> [chunk: read (uring) -> decode (pool or inline)] in a
 *         window, delivered in order
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
#include "log.h"
#include "meta.h"
#include "record.h"
#include "segment.h"
#include "store.h"
#include "uring.h"
#include "strata/error.h"
#include "banned.h"

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Chunks at most this big are encoded and decoded on the loop thread: a
 * thread-pool hop costs more than the work. */
#define INLINE_CODEC_MAX (64u << 10)
#define CODEC_POOL_MAX 8
#define BIGPOOL_MAX 8
#define FORMAT_VERSION 1

static const char META_FORMAT[] = "format";
static const char META_MASTER_CHECK[] = "master-check";
static const char META_NEXT_BUCKET[] = "next-bucket";
static const char META_NEXT_SEG[] = "next-segment";

struct bucket {
	struct bucket *next;
	char name[META_BUCKET_MAX + 1];
	uint64_t id;
	uint64_t ctime_ms;
	struct record_keys keys;
	unsigned refs;
	bool gone;
};

enum mut_kind {
	MUT_PUT, MUT_DELETE, MUT_BUCKET_CREATE, MUT_BUCKET_DELETE, MUT_MOVE,
	MUT_SEGDROP
};

struct mutation {
	struct mutation *next;
	enum mut_kind kind;
	int status;
	int (*build)(struct store *s, struct mutation *m, struct index_batch *b);
	void (*done)(struct store *s, struct mutation *m);
};

struct round {
	struct store *s;
	struct mutation *head;
	struct index_batch *batch;
	unsigned syncs;
	bool synced;
	int sync_err;
	struct uring_req *reqs;
	struct segment **syncsegs;	/* per req: the segment, or NULL (dir) */
	struct segment **doomed;	/* doomed by this round's build */
	size_t ndoomed, capdoomed;
	uv_work_t work;
	int commit_rc;
};

struct deferred {
	struct deferred *next;
	void (*fn)(void *arg);
	void *arg;
};

struct store {
	uv_loop_t *loop;
	struct store_opts o;
	struct index *ix;
	struct uring *ring;
	struct segtab segs;
	struct segment *active[STORE_TIERS];
	struct bucket *buckets;
	uint8_t master[KEYS_MASTER_LEN];
	/* group commit */
	struct mutation *queue, **qtail;
	/* Two rounds overlap: one syncing segments while the one before it
	 * builds and commits its batch. */
	struct round *syncing, *committing;
	uint64_t persisted_next_seg;
	/* codecs for worker threads */
	pthread_mutex_t pool_lock;
	struct record_codec *pool[CODEC_POOL_MAX];
	unsigned npool;
	struct record_codec *loop_codec;
	/* chunk-sized buffers, reused: a fresh 4 MiB malloc is an mmap and
	 * a thousand page faults (loop thread only) */
	uint8_t *bigpool[BIGPOOL_MAX];
	unsigned nbig;
	size_t bigsize;
	/* hybrid logical clock */
	uint64_t hlc_last;
	/* deferred callbacks */
	uv_idle_t idle;
	struct deferred *defer_head, **defer_tail;
	struct deferred kick, close_d;
	bool kick_pending;
	uv_timer_t gc_timer;
	bool gc_running;
	unsigned ops;			/* puts, gets, compactions in flight */
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
	unsigned handles_open;
	struct store_stats st;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* HLC: 48 bits of wall-clock milliseconds, 16 bits of logical counter;
 * never goes backwards, even if the wall clock does. */
static uint64_t hlc_next(struct store *s, uint64_t at_least)
{
	uint64_t t = now_ms() << 16;

	if (t <= s->hlc_last)
		t = s->hlc_last + 1;
	if (t <= at_least)
		t = at_least + 1;
	s->hlc_last = t;
	return t;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- deferred callbacks: never call a callback from inside the call ---- */

static void idle_cb(uv_idle_t *h)
{
	struct store *s = h->data;
	struct deferred *d = s->defer_head;

	s->defer_head = NULL;
	s->defer_tail = &s->defer_head;
	uv_idle_stop(&s->idle);
	while (d) {
		struct deferred *next = d->next;

		d->fn(d->arg);		/* may free d's owner */
		d = next;
	}
}

/* Run fn(arg) on the next loop iteration; d is the caller's (intrusive, so
 * this cannot fail) and must stay valid until then. */
static void defer(struct store *s, struct deferred *d, void (*fn)(void *arg),
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

static struct record_codec *codec_get(struct store *s)
{
	struct record_codec *c = NULL;

	pthread_mutex_lock(&s->pool_lock);
	if (s->npool)
		c = s->pool[--s->npool];
	pthread_mutex_unlock(&s->pool_lock);
	return c ? c : record_codec_new();
}

static void codec_put(struct store *s, struct record_codec *c)
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

/* A buffer of at least len bytes; *cap is what to pass to buf_free(). */
static uint8_t *buf_alloc(struct store *s, size_t len, size_t *cap)
{
	if (buf_is_big(s, len)) {
		*cap = s->bigsize;
		if (s->nbig)
			return s->bigpool[--s->nbig];
		return malloc(s->bigsize);
	}
	*cap = len;
	return malloc(len ? len : 1);
}

static void buf_free(struct store *s, uint8_t *p, size_t cap)
{
	if (p && cap == s->bigsize && s->nbig < BIGPOOL_MAX) {
		s->bigpool[s->nbig++] = p;
		return;
	}
	free(p);
}

/* ---- buckets ---- */

static void bucket_aad(uint64_t id, uint8_t aad[24])
{
	memcpy(aad, "strata-bucket-v1", 16);
	meta_put_be64(aad + 16, id);
}

static void bucket_unref(struct store *s, struct bucket *b)
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
static int bucket_get(struct store *s, const char *name, struct bucket **out)
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
			bucket_unref(s, b);
			return;
		}
	}
}

/* In a round: is the bucket still the one we hold? */
static int bucket_check(struct index_batch *ib, const struct bucket *b)
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

static int round_doom(struct round *r, struct segment *seg)
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
static void seg_unpin(struct store *s, struct segment *seg)
{
	if (--seg->pins == 0 && seg->doomed && !seg->doom_pending)
		segtab_drop(&s->segs, seg);
}

/* A segment may go once no chunk lives in it and nothing can add one. */
static bool seg_may_drop(struct store *s, const struct segment *seg)
{
	return seg->sealed && !seg->pins && !seg->writes && !seg->doomed &&
	       !seg->compacting && s->active[seg->tier] != seg;
}

/*
 * Add (or remove) live bytes to a segment's entry.  When the last live
 * chunk leaves a segment that may go, the entry is deleted and the segment
 * doomed: no more pins, unlinked after the commit.
 */
static int seg_account(struct store *s, struct index_batch *ib, uint64_t id,
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
	if (ms.live_count == 0 && seg && seg_may_drop(s, seg)) {
		index_batch_delete(ib, INDEX_CF_SEGMENTS, key, sizeof(key));
		return round_doom(s->committing, seg);
	}
	meta_segment_encode(&ms, v);
	index_batch_put(ib, INDEX_CF_SEGMENTS, key, sizeof(key), v, sizeof(v));
	return 0;
}

/* Where a put's chunk was written (or found, for a dedup hit). */
struct chunk_loc {
	uint64_t seg;
	uint64_t off;
	uint32_t rec_len;
	uint32_t raw_len;
	uint8_t tier;
};

/* One more reference to a chunk; creates its entry if it has none. */
static int chunk_ref(struct store *s, struct index_batch *ib, uint64_t bid,
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
		.atime_ms = now_ms(),
	};
	meta_chunk_encode(&c, v);
	index_batch_put(ib, INDEX_CF_CHUNKS, key, sizeof(key), v, sizeof(v));
	meta_segchunkkey(loc->seg, loc->off, skey);
	index_batch_put(ib, INDEX_CF_SEGCHUNKS, skey, sizeof(skey), key,
			sizeof(key));
	return seg_account(s, ib, loc->seg, loc->rec_len, 1);
}

/* One reference fewer; the last one removes the chunk. */
static int chunk_unref(struct store *s, struct index_batch *ib, uint64_t bid,
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
	return seg_account(s, ib, c.seg, -(int64_t)c.rec_len, -1);
}

/* Read the current version of an object in a round (NULL if none). */
static int object_get_batch(struct index_batch *ib, const uint8_t *okey,
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

static void maybe_closed(struct store *s);

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
	maybe_closed(s);
}

static void round_build(struct round *r)
{
	struct store *s = r->s;
	struct mutation *m;
	int rc;

	r->batch = index_batch_new(s->ix);
	if (!r->batch)
		r->sync_err = -ENOMEM;
	for (m = r->head; m; m = m->next) {
		if (r->sync_err) {
			m->status = r->sync_err;
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

	if (res < 0) {
		log_err("store", "fdatasync: %s", strerror((int)-res));
		r->sync_err = (int)res;
		/* After a failed sync the page cache may have dropped the
		 * bytes: append nothing more to that file. */
		if (seg) {
			seg->sealed = true;
			if (r->s->active[seg->tier] == seg)
				r->s->active[seg->tier] = NULL;
		}
	}
	if (seg)
		seg->pins--;
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
			c.segs[i]->pins--;
			c.segs[i]->dirty = true;
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
				c.segs[i]->pins--;
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
static void mutation_queue(struct store *s, struct mutation *m)
{
	m->next = NULL;
	m->status = 0;
	*s->qtail = m;
	s->qtail = &m->next;
	if (!s->syncing && !s->kick_pending) {
		s->kick_pending = true;
		defer(s, &s->kick, round_kick, s);
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
	mb.ctime_ms = now_ms();
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
	maybe_closed(s);
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
	mutation_queue(s, &op->mut);
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

/* ---- puts ---- */

struct put_chunk {
	struct store_put *p;
	struct put_chunk *next;		/* pending queue */
	uint8_t *plain;
	size_t len, plaincap;
	uint8_t *rec;
	size_t reclen, reccap;
	uint8_t id[RECORD_ID_LEN];
	uint8_t hash[32];
	struct chunk_loc loc;
	struct segment *seg;		/* pinned until the put ends */
	bool inl;			/* record goes into the index value */
	int status;
	uv_work_t work;
	struct uring_req req;
};

struct store_put {
	struct mutation mut;
	struct store *s;
	struct bucket *b;
	char *key;
	size_t keylen;
	char *ctype;
	size_t ctypelen;
	struct meta_kv *kvs;		/* nmeta user metadata, then ntags */
	uint16_t nmeta, ntags;
	uint8_t *kvbuf;
	uint8_t *cur;
	size_t curlen, curcap;
	struct put_chunk **chunks;
	uint32_t nchunks, capchunks;
	struct put_chunk *pend, **pend_tail;
	unsigned inflight;
	uint64_t size;
	int error;
	bool committing, aborted;
	bool busy, again;		/* put_progress re-entrancy guard */
	struct deferred fin;
	store_commit_cb cb;
	void *arg;
	void (*drain_cb)(void *arg);
	void *drain_arg;
	struct store_object_info info;
};

static void put_progress(struct store_put *p);

static void put_free(struct store_put *p)
{
	struct store *s = p->s;

	for (uint32_t i = 0; i < p->nchunks; i++) {
		struct put_chunk *c = p->chunks[i];

		if (c->seg)
			seg_unpin(s, c->seg);
		buf_free(s, c->plain, c->plaincap);
		buf_free(s, c->rec, c->reccap);
		free(c);
	}
	bucket_unref(s, p->b);
	free(p->chunks);
	buf_free(s, p->cur, p->curcap);
	free(p->key);
	free(p->ctype);
	free(p->kvs);
	free(p->kvbuf);
	free(p);
	s->ops--;
	/* A dropped pin may free a doomed segment; the next GC pass does. */
	maybe_closed(s);
}

static void etag_hex(const uint8_t etag[32], uint32_t nchunks, char out[72])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[etag[i] >> 4];
		out[2 * i + 1] = hex[etag[i] & 15];
	}
	out[64] = 0;
	if (nchunks > 1) {
		char num[12];
		int n = 0;

		/* nchunks <= META_CHUNKS_MAX: at most 7 digits */
		while (nchunks && n < 7) {
			num[n++] = (char)('0' + nchunks % 10);
			nchunks /= 10;
		}
		out[64] = '-';
		for (int i = 0; i < n; i++)
			out[65 + i] = num[n - 1 - i];
		out[65 + n] = 0;
	}
}

static void fill_info(struct store_object_info *info,
		      const struct meta_object *o)
{
	info->size = o->size;
	info->hlc = o->hlc;
	info->mtime_ms = o->mtime_ms;
	info->writer = o->writer;
	info->nchunks = o->nchunks;
	memcpy(info->etag, o->etag, 32);
	etag_hex(o->etag, o->nchunks, info->etag_hex);
}

static int build_put(struct store *s, struct mutation *m,
		     struct index_batch *ib)
{
	struct store_put *p = container_of(m, struct store_put, mut);
	uint8_t okey[META_OBJKEY_MAX], *prevbuf = NULL, *enc = NULL;
	struct meta_object *prev = NULL, o = { 0 };
	struct meta_chunkref *refs = NULL;
	size_t oklen;
	int rc;

	rc = bucket_check(ib, p->b);
	if (rc)
		return rc;
	oklen = meta_objkey(p->b->id, p->key, p->keylen, okey);
	rc = object_get_batch(ib, okey, oklen, &prevbuf, &prev);
	if (rc)
		goto out;
	refs = malloc((p->nchunks ? p->nchunks : 1) * sizeof(*refs));
	if (!refs) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < p->nchunks; i++) {
		struct put_chunk *c = p->chunks[i];

		if (!c->inl) {
			rc = chunk_ref(s, ib, p->b->id, c->id, &c->loc);
			if (rc)
				goto out;
		}
		memcpy(refs[i].id, c->id, RECORD_ID_LEN);
		refs[i].raw_len = (uint32_t)c->len;
	}
	if (prev && !(prev->flags & (META_OBJ_TOMBSTONE | META_OBJ_INLINE))) {
		for (uint32_t i = 0; i < prev->nchunks; i++) {
			rc = chunk_unref(s, ib, p->b->id, prev->chunks[i].id);
			if (rc)
				goto out;
		}
	}
	o.size = p->size;
	o.hlc = hlc_next(s, prev ? prev->hlc : 0);
	o.writer = s->o.node_id;
	o.mtime_ms = now_ms();
	o.chunk_size = s->o.chunk_size;
	memcpy(o.etag, p->info.etag, 32);
	o.ctype = p->ctype;
	o.ctypelen = (uint16_t)p->ctypelen;
	o.nmeta = p->nmeta;
	o.meta = p->kvs;
	o.ntags = p->ntags;
	o.tags = p->kvs ? p->kvs + p->nmeta : NULL;
	o.nchunks = p->nchunks;
	o.chunks = refs;
	if (p->nchunks == 1 && p->chunks[0]->inl) {
		o.flags = META_OBJ_INLINE;
		o.inl = p->chunks[0]->rec;
		o.inlen = (uint32_t)p->chunks[0]->reclen;
	}
	enc = malloc(meta_object_size(&o));
	if (!enc) {
		rc = -ENOMEM;
		goto out;
	}
	index_batch_put(ib, INDEX_CF_OBJECTS, okey, oklen, enc,
			meta_object_encode(&o, enc));
	fill_info(&p->info, &o);
out:
	free(enc);
	free(refs);
	meta_object_free(prev);
	free(prevbuf);
	return rc;
}

static void put_done(struct store *s, struct mutation *m)
{
	struct store_put *p = container_of(m, struct store_put, mut);

	if (!m->status) {
		s->st.puts++;
		s->st.bytes_in += p->size;
	}
	p->cb(p->arg, m->status, m->status ? NULL : &p->info);
	put_free(p);
}

/* All chunks are durable-bound: compute the etag and join a round. */
static void put_finish(struct store_put *p)
{
	struct store *s = p->s;
	int rc = p->error;

	if (!rc && p->aborted)
		rc = STRATA_EABORTED;
	if (rc) {
		if (p->cb)
			p->cb(p->arg, rc, NULL);
		put_free(p);
		return;
	}
	/* etag: one chunk -> SHA-256 of the object; several -> SHA-256 of
	 * the chunks' SHA-256s (S3-multipart style, "-N" in hex form). */
	if (p->nchunks == 1) {
		memcpy(p->info.etag, p->chunks[0]->hash, 32);
	} else {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned int olen = 32;

		if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
			EVP_MD_CTX_free(md);
			p->cb(p->arg, -ENOMEM, NULL);
			put_free(p);
			return;
		}
		for (uint32_t i = 0; i < p->nchunks; i++)
			EVP_DigestUpdate(md, p->chunks[i]->hash, 32);
		EVP_DigestFinal_ex(md, p->info.etag, &olen);
		EVP_MD_CTX_free(md);
	}
	p->mut.kind = MUT_PUT;
	p->mut.build = build_put;
	p->mut.done = put_done;
	mutation_queue(s, &p->mut);
}

static void chunk_end(struct put_chunk *c)
{
	struct store_put *p = c->p;

	buf_free(p->s, c->plain, c->plaincap);
	c->plain = NULL;
	if (!c->inl || c->status) {
		buf_free(p->s, c->rec, c->reccap);
		c->rec = NULL;
	}
	if (c->status && !p->error)
		p->error = c->status;
	p->inflight--;
	put_progress(p);
}

static void chunk_write_cb(struct uring_req *req, ssize_t res)
{
	struct put_chunk *c = req->data;
	struct store *s = c->p->s;

	c->seg->writes--;
	if (res < 0) {
		log_err("store", "segment %" PRIx64 " write: %s", c->seg->id,
			strerror((int)-res));
		c->status = (int)res;
		/* Append nothing more after a failed write. */
		c->seg->sealed = true;
		if (s->active[c->seg->tier] == c->seg)
			s->active[c->seg->tier] = NULL;
	} else {
		c->seg->dirty = true;
		s->st.chunks_written++;
	}
	chunk_end(c);
}

/* The active segment of a tier with room for len more bytes. */
static int active_segment(struct store *s, uint8_t tier, size_t len,
			  struct segment **out)
{
	struct segment *seg = s->active[tier];
	int rc;

	if (seg && seg->size + len > s->o.segment_size &&
	    seg->size > SEGMENT_HDR_LEN) {
		seg->sealed = true;
		s->active[tier] = seg = NULL;
	}
	if (!seg) {
		rc = segtab_create(&s->segs, tier, &seg);
		if (rc)
			return rc;
		s->active[tier] = seg;
	}
	*out = seg;
	return 0;
}

/* On the loop, after encoding: reuse an existing copy, or append. */
static void chunk_store(struct put_chunk *c)
{
	struct store_put *p = c->p;
	struct store *s = p->s;
	uint8_t key[META_CHUNKKEY_LEN], *val;
	struct meta_chunk mc;
	struct segment *seg;
	size_t vlen;
	int rc;

	if (c->status || p->error || p->aborted || c->inl)
		goto end;
	meta_chunkkey(p->b->id, c->id, key);
	rc = index_get(s->ix, INDEX_CF_CHUNKS, key, sizeof(key), &val, &vlen);
	if (rc == 0) {
		rc = meta_chunk_decode(val, vlen, &mc);
		free(val);
		seg = rc ? NULL : segtab_find(&s->segs, mc.seg);
		if (seg && !seg->doomed && mc.raw_len == c->len) {
			/* Dedup: the pin keeps those bytes until commit. */
			seg->pins++;
			c->seg = seg;
			c->loc = (struct chunk_loc){
				.seg = mc.seg, .off = mc.off,
				.rec_len = mc.rec_len, .raw_len = mc.raw_len,
				.tier = mc.tier,
			};
			s->st.dedup_hits++;
			goto end;
		}
	} else if (rc != -ENOENT) {
		c->status = rc;
		goto end;
	}
	rc = active_segment(s, STORE_TIER_HOT, c->reclen, &seg);
	if (rc) {
		c->status = rc;
		goto end;
	}
	c->seg = seg;
	seg->pins++;
	c->loc = (struct chunk_loc){
		.seg = seg->id, .off = seg->size, .rec_len = (uint32_t)c->reclen,
		.raw_len = (uint32_t)c->len, .tier = seg->tier,
	};
	seg->size += c->reclen;
	seg->writes++;
	c->req.data = c;
	c->req.async = c->reclen > INLINE_CODEC_MAX;
	c->req.inject = fault_hit(s->o.fault, FAULT_SEG_WRITE);
	rc = uring_write(s->ring, &c->req, seg->fd, c->rec, c->reclen,
			 c->loc.off, chunk_write_cb);
	if (rc) {
		seg->writes--;
		c->status = rc;
		goto end;
	}
	return;
end:
	chunk_end(c);
}

static void chunk_encode(struct store *s, struct put_chunk *c,
			 struct record_codec *codec)
{
	const struct record_keys *k = &c->p->b->keys;

	(void)s;
	c->status = record_chunk_id(codec, k, c->plain, c->len, c->hash, c->id);
	if (c->status)
		return;
	c->status = record_encode(codec, k, c->id, c->plain, c->len,
				  s->o.zstd_level, c->rec, &c->reclen);
}

static void chunk_encode_work(uv_work_t *w)
{
	struct put_chunk *c = container_of(w, struct put_chunk, work);
	struct store *s = c->p->s;
	struct record_codec *codec = codec_get(s);

	if (!codec) {
		c->status = -ENOMEM;
		return;
	}
	chunk_encode(s, c, codec);
	codec_put(s, codec);
}

static void chunk_encode_done(uv_work_t *w, int status)
{
	struct put_chunk *c = container_of(w, struct put_chunk, work);

	if (status && !c->status)
		c->status = status;
	chunk_store(c);
}

static void put_dispatch(struct store_put *p)
{
	struct store *s = p->s;

	while (p->pend && p->inflight < s->o.put_window) {
		struct put_chunk *c = p->pend;

		p->pend = c->next;
		if (!p->pend)
			p->pend_tail = &p->pend;
		p->inflight++;
		if (p->error || p->aborted) {
			chunk_end(c);
			continue;
		}
		c->rec = buf_alloc(s, record_bound(c->len), &c->reccap);
		if (!c->rec) {
			c->status = -ENOMEM;
			chunk_end(c);
			continue;
		}
		if (c->len <= INLINE_CODEC_MAX) {
			chunk_encode(s, c, s->loop_codec);
			chunk_store(c);
		} else if (uv_queue_work(s->loop, &c->work, chunk_encode_work,
					 chunk_encode_done)) {
			c->status = -ENOMEM;
			chunk_end(c);
		}
	}
}

/*
 * Move a put along after any change: start pending chunks, then finish or
 * tell the producer it may write again.  Inline chunks complete inside
 * put_dispatch and call back here; the guard turns that recursion into
 * another turn of the loop below.  Finishing may free p, so it is last.
 */
static void put_progress(struct store_put *p)
{
	if (p->busy) {
		p->again = true;
		return;
	}
	p->busy = true;
	do {
		p->again = false;
		put_dispatch(p);
	} while (p->again);
	p->busy = false;
	if ((p->committing || p->aborted) && !p->inflight && !p->pend) {
		put_finish(p);
		return;
	}
	if (p->drain_cb && store_put_writable(p)) {
		void (*cb)(void *) = p->drain_cb;

		p->drain_cb = NULL;
		cb(p->drain_arg);
	}
}

/* Cut the current buffer into a chunk and queue it. */
static int put_emit(struct store_put *p, bool inl)
{
	struct put_chunk *c;

	if (p->nchunks == p->capchunks) {
		uint32_t n = p->capchunks ? p->capchunks * 2 : 16;
		struct put_chunk **v;

		if (n > META_CHUNKS_MAX)
			return -EFBIG;
		v = realloc(p->chunks, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->chunks = v;
		p->capchunks = n;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->p = p;
	c->inl = inl;
	c->plain = p->cur;
	c->plaincap = p->curcap;
	c->len = p->curlen;
	p->cur = NULL;
	p->curlen = p->curcap = 0;
	p->chunks[p->nchunks++] = c;
	*p->pend_tail = c;
	p->pend_tail = &c->next;
	put_progress(p);
	return 0;
}

static int copy_kvs(struct store_put *p, const struct store_put_opts *o)
{
	size_t total = 0, n = (size_t)o->nmeta + o->ntags;
	uint8_t *w;

	if (o->nmeta > META_KV_MAX || o->ntags > META_KV_MAX)
		return STRATA_EBADMETA;
	for (size_t i = 0; i < n; i++) {
		const struct meta_kv *kv = i < o->nmeta ? &o->meta[i]
							: &o->tags[i - o->nmeta];

		if (!kv->keylen || kv->keylen > META_KV_KEY_MAX ||
		    kv->vallen > META_KV_VAL_MAX)
			return STRATA_EBADMETA;
		total += (size_t)kv->keylen + kv->vallen;
	}
	if (!n)
		return 0;
	p->kvs = calloc(n, sizeof(*p->kvs));
	p->kvbuf = malloc(total ? total : 1);
	if (!p->kvs || !p->kvbuf)
		return -ENOMEM;
	w = p->kvbuf;
	for (size_t i = 0; i < n; i++) {
		const struct meta_kv *kv = i < o->nmeta ? &o->meta[i]
							: &o->tags[i - o->nmeta];

		memcpy(w, kv->key, kv->keylen);
		p->kvs[i].key = (const char *)w;
		p->kvs[i].keylen = kv->keylen;
		w += kv->keylen;
		memcpy(w, kv->val, kv->vallen);
		p->kvs[i].val = (const char *)w;
		p->kvs[i].vallen = kv->vallen;
		w += kv->vallen;
	}
	p->nmeta = o->nmeta;
	p->ntags = o->ntags;
	return 0;
}

int store_put_begin(struct store *s, const char *bucket, const char *key,
		    size_t keylen, const struct store_put_opts *opts,
		    struct store_put **out)
{
	struct store_put *p;
	int rc;

	if (s->closing)
		return STRATA_ECLOSING;
	rc = meta_check_key(key, keylen);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->s = s;
	p->pend_tail = &p->pend;
	s->ops++;
	rc = bucket_get(s, bucket, &p->b);
	if (rc)
		goto fail;
	p->key = malloc(keylen + 1);
	if (!p->key) {
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(p->key, key, keylen);
	p->key[keylen] = 0;
	p->keylen = keylen;
	if (opts && opts->ctype) {
		p->ctypelen = strlen(opts->ctype);
		if (p->ctypelen > META_CTYPE_MAX) {
			rc = STRATA_EBADMETA;
			goto fail;
		}
		p->ctype = strdup(opts->ctype);
		if (!p->ctype) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	if (opts) {
		rc = copy_kvs(p, opts);
		if (rc)
			goto fail;
	}
	*out = p;
	return 0;
fail:
	put_free(p);
	return rc;
}

int store_put_write(struct store_put *p, const void *buf, size_t len)
{
	const uint8_t *src = buf;
	size_t csz = p->s->o.chunk_size;

	if (p->error)
		return p->error;
	while (len) {
		size_t n;

		n = csz - p->curlen;
		if (n > len)
			n = len;
		if (p->curlen + n > p->curcap) {
			/* Grow geometrically; a small object never pays for a
			 * whole chunk buffer, a streamed one goes big early. */
			size_t cap = p->curcap * 2, ncap;
			uint8_t *nb;

			if (cap < (p->curlen + n) * 4)
				cap = (p->curlen + n) * 4;
			if (cap < 16384)
				cap = 16384;
			if (cap > csz)
				cap = csz;
			nb = buf_alloc(p->s, cap, &ncap);
			if (!nb)
				return p->error = -ENOMEM;
			if (p->curlen)
				memcpy(nb, p->cur, p->curlen);
			buf_free(p->s, p->cur, p->curcap);
			p->cur = nb;
			p->curcap = ncap;
		}
		memcpy(p->cur + p->curlen, src, n);
		p->curlen += n;
		p->size += n;
		src += n;
		len -= n;
		if (p->curlen == csz) {
			int rc = put_emit(p, false);
			if (rc)
				return p->error = rc;
		}
	}
	return 0;
}

int store_put_writable(const struct store_put *p)
{
	return !p->pend && p->inflight < p->s->o.put_window;
}

void store_put_on_drain(struct store_put *p, void (*cb)(void *arg), void *arg)
{
	p->drain_cb = cb;
	p->drain_arg = arg;
}

static void put_finish_deferred(void *arg)
{
	put_finish(arg);
}

void store_put_commit(struct store_put *p, store_commit_cb cb, void *arg)
{
	p->cb = cb;
	p->arg = arg;
	p->drain_cb = NULL;
	if (p->curlen && !p->error) {
		/* A small object is one chunk whose record rides in the index
		 * value: one synced write (the WAL) instead of two. */
		bool inl = !p->nchunks &&
			   p->curlen <= (size_t)p->s->o.inline_max;
		int rc = put_emit(p, inl);

		if (rc)
			p->error = rc;
	}
	/* Set only now, so that put_emit's inline work cannot finish the put
	 * (and call cb) inside this call. */
	p->committing = true;
	if (!p->inflight && !p->pend)
		defer(p->s, &p->fin, put_finish_deferred, p);
	/* else: the last chunk to complete finishes it. */
}

void store_put_abort(struct store_put *p)
{
	p->aborted = true;
	p->cb = NULL;
	p->drain_cb = NULL;
	if (!p->inflight && !p->pend)
		put_free(p);
	/* else: the last chunk to finish frees it (put_finish). */
}

/* ---- object lookups ---- */

/* Find the visible version of bucket/key.  *buf backs *obj. */
static int object_lookup(struct store *s, const char *bucket, const char *key,
			 size_t keylen, struct bucket **bout, uint8_t **buf,
			 struct meta_object **obj)
{
	uint8_t okey[META_OBJKEY_MAX];
	struct bucket *b;
	size_t vlen;
	int rc;

	rc = meta_check_key(key, keylen);
	if (rc)
		return rc;
	rc = bucket_get(s, bucket, &b);
	if (rc)
		return rc;
	rc = index_get(s->ix, INDEX_CF_OBJECTS, okey,
		       meta_objkey(b->id, key, keylen, okey), buf, &vlen);
	if (rc == -ENOENT)
		rc = STRATA_ENOOBJECT;
	if (rc)
		goto fail;
	rc = meta_object_decode(*buf, vlen, obj);
	if (rc) {
		log_err("store", "object %s/%.*s: damaged index entry", bucket,
			(int)(keylen > 200 ? 200 : keylen), key);
		s->st.corrupt++;
		free(*buf);
		goto fail;
	}
	if ((*obj)->flags & META_OBJ_TOMBSTONE) {
		meta_object_free(*obj);
		free(*buf);
		rc = STRATA_ENOOBJECT;
		goto fail;
	}
	*bout = b;
	return 0;
fail:
	*obj = NULL;
	*buf = NULL;
	bucket_unref(s, b);
	return rc;
}

static int chunk_lookup(struct store *s, uint64_t bid,
			const uint8_t id[RECORD_ID_LEN], struct meta_chunk *mc)
{
	uint8_t key[META_CHUNKKEY_LEN], *val;
	size_t vlen;
	int rc;

	meta_chunkkey(bid, id, key);
	rc = index_get(s->ix, INDEX_CF_CHUNKS, key, sizeof(key), &val, &vlen);
	if (rc == -ENOENT) {
		log_err("store", "chunk entry missing for a live object");
		s->st.corrupt++;
		return STRATA_ECORRUPT;
	}
	if (rc)
		return rc;
	rc = meta_chunk_decode(val, vlen, mc);
	free(val);
	if (rc) {
		log_err("store", "damaged chunk entry");
		s->st.corrupt++;
	}
	return rc;
}

int store_stat(struct store *s, const char *bucket, const char *key,
	       size_t keylen, struct store_object_info *info,
	       struct store_chunk_info **chunks)
{
	struct meta_object *o;
	struct bucket *b;
	uint8_t *buf;
	int rc;

	rc = object_lookup(s, bucket, key, keylen, &b, &buf, &o);
	if (rc)
		return rc;
	fill_info(info, o);
	if (chunks) {
		struct store_chunk_info *v;

		v = calloc(o->nchunks ? o->nchunks : 1, sizeof(*v));
		if (!v) {
			rc = -ENOMEM;
			goto out;
		}
		for (uint32_t i = 0; i < o->nchunks; i++) {
			struct meta_chunk mc;

			if (o->flags & META_OBJ_INLINE) {
				v[i].raw_len = o->chunks[i].raw_len;
				v[i].stored_len = o->inlen;
				v[i].tier = STORE_TIER_INDEX;
				continue;
			}
			rc = chunk_lookup(s, b->id, o->chunks[i].id, &mc);
			if (rc) {
				free(v);
				goto out;
			}
			v[i].raw_len = mc.raw_len;
			v[i].stored_len = mc.rec_len;
			v[i].tier = mc.tier;
			v[i].seg = mc.seg;
			v[i].off = mc.off;
		}
		*chunks = v;
	}
out:
	meta_object_free(o);
	free(buf);
	bucket_unref(s, b);
	return rc;
}

/* ---- gets ---- */

struct get_slot {
	struct store_get *g;
	uint32_t idx;			/* chunk number */
	struct segment *seg;		/* pinned while reading */
	struct meta_chunk mc;
	/* Buffers stay with the slot for the whole get.  Raw (uncompressed)
	 * records are decrypted in place: out points into rec. */
	uint8_t *rec, *plain, *out;
	size_t reccap, plaincap, plainlen;
	int status;
	bool busy, ready;
	uv_work_t work;
	struct uring_req req;
};

#define GET_WINDOW_MAX 8

struct store_get {
	struct store *s;
	struct bucket *b;
	uint8_t *objbuf;
	struct meta_object *o;
	uint64_t *starts;		/* object offset of each chunk */
	uint64_t off, end;
	uint32_t next_issue, next_deliver, last;
	unsigned inflight;
	int error;
	bool paused, busy, again, finished;
	store_data_cb data_cb;
	store_done_cb done_cb;
	void *arg;
	struct deferred fin;
	struct get_slot slots[GET_WINDOW_MAX];
};

static void get_progress(struct store_get *g);

static void get_free(struct store_get *g)
{
	struct store *s = g->s;

	for (int i = 0; i < GET_WINDOW_MAX; i++) {
		buf_free(s, g->slots[i].rec, g->slots[i].reccap);
		buf_free(s, g->slots[i].plain, g->slots[i].plaincap);
	}
	meta_object_free(g->o);
	free(g->objbuf);
	free(g->starts);
	bucket_unref(s, g->b);
	free(g);
	s->ops--;
	maybe_closed(s);
}

static void slot_decoded(struct get_slot *sl)
{
	struct store_get *g = sl->g;

	if (sl->status == STRATA_ECORRUPT) {
		g->s->st.corrupt++;
		log_err("store", "corrupt chunk in segment %" PRIx64 " at %" PRIu64
			" (bucket %s)", sl->mc.seg, sl->mc.off, g->b->name);
	}
	sl->ready = true;
	g->inflight--;
	get_progress(g);
}

static void slot_decode(struct store *s, struct get_slot *sl,
			struct record_codec *codec)
{
	struct store_get *g = sl->g;

	(void)s;
	sl->status = record_decode(codec, &g->b->keys,
				   g->o->chunks[sl->idx].id, sl->rec,
				   sl->mc.rec_len, sl->out, sl->mc.raw_len,
				   &sl->plainlen);
	if (!sl->status && sl->plainlen != g->o->chunks[sl->idx].raw_len)
		sl->status = STRATA_ECORRUPT;
}

static void slot_decode_work(uv_work_t *w)
{
	struct get_slot *sl = container_of(w, struct get_slot, work);
	struct store *s = sl->g->s;
	struct record_codec *codec = codec_get(s);

	if (!codec) {
		sl->status = -ENOMEM;
		return;
	}
	slot_decode(s, sl, codec);
	codec_put(s, codec);
}

static void slot_decode_done(uv_work_t *w, int status)
{
	struct get_slot *sl = container_of(w, struct get_slot, work);

	if (status && !sl->status)
		sl->status = status;
	slot_decoded(sl);
}

/* Where the plaintext goes: in place for raw records (no second 4 MiB
 * buffer, no second pass through memory), a plaintext buffer for zstd. */
static int slot_prepare_out(struct store *s, struct get_slot *sl)
{
	struct record_hdr h;

	if (record_parse_header(sl->rec, &h) == 0 && !(h.flags & RECORD_ZSTD)) {
		sl->out = sl->rec + RECORD_HDR_LEN;
		return 0;
	}
	/* (A bad header fails in record_decode, which says why.) */
	if (sl->plaincap < sl->mc.raw_len) {
		buf_free(s, sl->plain, sl->plaincap);
		sl->plain = buf_alloc(s, sl->mc.raw_len, &sl->plaincap);
		if (!sl->plain) {
			sl->plaincap = 0;
			return -ENOMEM;
		}
	}
	sl->out = sl->plain;
	return 0;
}

static void slot_read_cb(struct uring_req *req, ssize_t res)
{
	struct get_slot *sl = req->data;
	struct store *s = sl->g->s;
	struct segment *seg = sl->seg;

	sl->seg = NULL;
	seg_unpin(s, seg);
	if (res < 0) {
		log_err("store", "segment read: %s", strerror((int)-res));
		sl->status = (int)res;
	} else if ((size_t)res != sl->mc.rec_len) {
		/* The index says the record is there: a truncated file. */
		sl->status = STRATA_ECORRUPT;
	}
	if (sl->status || sl->g->error) {
		slot_decoded(sl);
		return;
	}
	sl->status = slot_prepare_out(s, sl);
	if (sl->status) {
		slot_decoded(sl);
		return;
	}
	if (sl->mc.raw_len <= INLINE_CODEC_MAX) {
		slot_decode(s, sl, s->loop_codec);
		slot_decoded(sl);
	} else if (uv_queue_work(s->loop, &sl->work, slot_decode_work,
				 slot_decode_done)) {
		sl->status = -ENOMEM;
		slot_decoded(sl);
	}
}

/* An inline object's record came with the object: decode it now (it is
 * small), on a copy, since decoding works in place. */
static void get_issue_inline(struct store_get *g, struct get_slot *sl)
{
	struct store *s = g->s;

	memset(&sl->mc, 0, sizeof(sl->mc));
	sl->mc.rec_len = g->o->inlen;
	sl->mc.raw_len = g->o->chunks[0].raw_len;
	if (sl->reccap < g->o->inlen) {
		buf_free(s, sl->rec, sl->reccap);
		sl->rec = buf_alloc(s, g->o->inlen, &sl->reccap);
		if (!sl->rec) {
			sl->reccap = 0;
			sl->status = -ENOMEM;
			slot_decoded(sl);
			return;
		}
	}
	memcpy(sl->rec, g->o->inl, g->o->inlen);
	sl->status = slot_prepare_out(s, sl);
	if (!sl->status)
		slot_decode(s, sl, s->loop_codec);
	slot_decoded(sl);
}

/* Start reading chunk idx into a free slot. */
static void get_issue(struct store_get *g, struct get_slot *sl, uint32_t idx)
{
	struct store *s = g->s;
	struct segment *seg;
	int rc;

	/* The buffers survive; the rest starts afresh. */
	sl->g = g;
	sl->idx = idx;
	sl->seg = NULL;
	sl->out = NULL;
	sl->plainlen = 0;
	sl->status = 0;
	sl->ready = false;
	memset(&sl->req, 0, sizeof(sl->req));
	sl->busy = true;
	g->inflight++;
	if (g->o->flags & META_OBJ_INLINE) {
		get_issue_inline(g, sl);
		return;
	}
	rc = chunk_lookup(s, g->b->id, g->o->chunks[idx].id, &sl->mc);
	if (rc)
		goto fail;
	seg = segtab_find(&s->segs, sl->mc.seg);
	/* The payload never exceeds the plaintext: this also bounds the
	 * allocation below by what the index can claim. */
	if (!seg || sl->mc.rec_len < RECORD_HDR_LEN ||
	    sl->mc.rec_len > record_bound(sl->mc.raw_len) ||
	    sl->mc.raw_len != g->o->chunks[idx].raw_len) {
		log_err("store", "chunk points at %s segment %" PRIx64,
			seg ? "a bad place in" : "missing", sl->mc.seg);
		s->st.corrupt++;
		rc = STRATA_ECORRUPT;
		goto fail;
	}
	if (sl->reccap < sl->mc.rec_len) {
		buf_free(s, sl->rec, sl->reccap);
		sl->rec = buf_alloc(s, sl->mc.rec_len, &sl->reccap);
		if (!sl->rec) {
			sl->reccap = 0;
			rc = -ENOMEM;
			goto fail;
		}
	}
	seg->pins++;
	sl->seg = seg;
	sl->req.data = sl;
	sl->req.async = sl->mc.rec_len > INLINE_CODEC_MAX;
	sl->req.inject = fault_hit(s->o.fault, FAULT_SEG_READ);
	rc = uring_read(s->ring, &sl->req, seg->fd, sl->rec, sl->mc.rec_len,
			sl->mc.off, slot_read_cb);
	if (rc) {
		seg->pins--;
		sl->seg = NULL;
		goto fail;
	}
	return;
fail:
	sl->status = rc;
	sl->ready = true;
	g->inflight--;
}

static void get_finish(void *arg)
{
	struct store_get *g = arg;

	if (!g->error) {
		g->s->st.gets++;
		g->s->st.bytes_out += g->end - g->off;
	}
	g->done_cb(g->arg, g->error);
	get_free(g);
}

/*
 * Deliver ready chunks in order, keep the window full, finish when the
 * last byte is out (or on error, once nothing is in flight).
 */
static void get_progress(struct store_get *g)
{
	struct store *s = g->s;

	if (g->busy) {
		g->again = true;
		return;
	}
	g->busy = true;
	do {
		g->again = false;
		while (!g->error && !g->paused && g->next_deliver <= g->last) {
			struct get_slot *sl =
				&g->slots[g->next_deliver % s->o.get_window];
			uint64_t cs, ce, from, to;

			if (!sl->busy || !sl->ready || sl->idx != g->next_deliver)
				break;
			if (sl->status) {
				g->error = sl->status;
				break;
			}
			cs = g->starts[sl->idx];
			ce = cs + sl->plainlen;
			from = g->off > cs ? g->off - cs : 0;
			to = (g->end < ce ? g->end : ce) - cs;
			if (g->data_cb(g->arg, sl->out + from, to - from))
				g->error = STRATA_EABORTED;
			sl->busy = false;
			g->next_deliver++;
		}
		while (!g->error && g->next_issue <= g->last &&
		       g->next_issue < g->next_deliver + s->o.get_window) {
			struct get_slot *sl =
				&g->slots[g->next_issue % s->o.get_window];

			if (sl->busy)
				break;
			get_issue(g, sl, g->next_issue++);
		}
	} while (g->again);
	g->busy = false;
	if (!g->finished && !g->inflight &&
	    (g->error || g->next_deliver > g->last)) {
		g->finished = true;
		get_finish(g);
	}
}

static void get_kick(void *arg)
{
	get_progress(arg);
}

int store_get(struct store *s, const char *bucket, const char *key,
	      size_t keylen, uint64_t off, uint64_t len,
	      struct store_object_info *info, store_data_cb data_cb,
	      store_done_cb done_cb, void *arg, struct store_get **out)
{
	struct store_get *g;
	uint64_t pos = 0;
	int rc;

	if (s->closing)
		return STRATA_ECLOSING;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->s = s;
	s->ops++;
	rc = object_lookup(s, bucket, key, keylen, &g->b, &g->objbuf, &g->o);
	if (rc)
		goto fail;
	if (off > g->o->size) {
		rc = STRATA_ERANGE;
		goto fail;
	}
	g->off = off;
	g->end = len > g->o->size - off ? g->o->size : off + len;
	g->starts = malloc((g->o->nchunks + 1) * sizeof(*g->starts));
	if (!g->starts) {
		rc = -ENOMEM;
		goto fail;
	}
	g->next_issue = UINT32_MAX;
	for (uint32_t i = 0; i < g->o->nchunks; i++) {
		g->starts[i] = pos;
		pos += g->o->chunks[i].raw_len;
		if (g->next_issue == UINT32_MAX && pos > g->off)
			g->next_issue = i;
		if (pos >= g->end && g->end > g->off) {
			g->last = i;
			break;
		}
	}
	if (g->end == g->off) {		/* nothing to read */
		g->next_issue = 1;
		g->last = 0;
	}
	g->next_deliver = g->next_issue;
	g->data_cb = data_cb;
	g->done_cb = done_cb;
	g->arg = arg;
	if (info)
		fill_info(info, g->o);
	if (out)
		*out = g;
	if (g->end == g->off) {
		g->finished = true;
		defer(s, &g->fin, get_finish, g);
		return 0;
	}
	/* Issue from the loop: errors found now still arrive via done_cb. */
	g->busy = true;
	for (uint32_t i = g->next_issue;
	     i <= g->last && i < g->next_issue + s->o.get_window; i++)
		get_issue(g, &g->slots[i % s->o.get_window], i);
	g->next_issue = g->last + 1 < g->next_issue + s->o.get_window
		? g->last + 1 : g->next_issue + s->o.get_window;
	g->busy = false;
	defer(s, &g->fin, get_kick, g);
	return 0;
fail:
	get_free(g);
	return rc;
}

void store_get_pause(struct store_get *g)
{
	g->paused = true;
}

void store_get_resume(struct store_get *g)
{
	if (!g->paused)
		return;
	g->paused = false;
	get_progress(g);
}

/* ---- deletes ---- */

struct delete_op {
	struct mutation mut;
	struct bucket *b;
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

	rc = bucket_check(ib, op->b);
	if (rc)
		return rc;
	oklen = meta_objkey(op->b->id, op->key, op->keylen, okey);
	rc = object_get_batch(ib, okey, oklen, &prevbuf, &prev);
	if (rc)
		return rc;
	if (!prev || (prev->flags & META_OBJ_TOMBSTONE)) {
		rc = STRATA_ENOOBJECT;
		goto out;
	}
	for (uint32_t i = 0; i < prev->nchunks &&
			    !(prev->flags & META_OBJ_INLINE); i++) {
		rc = chunk_unref(s, ib, op->b->id, prev->chunks[i].id);
		if (rc)
			goto out;
	}
	/* The tombstone is a version too, so replicas converge on it. */
	o.flags = META_OBJ_TOMBSTONE;
	o.hlc = hlc_next(s, prev->hlc);
	o.writer = s->o.node_id;
	o.mtime_ms = now_ms();
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
	bucket_unref(s, op->b);
	free(op);
	s->ops--;
	maybe_closed(s);
}

int store_delete(struct store *s, const char *bucket, const char *key,
		 size_t keylen, store_done_cb cb, void *arg)
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
	rc = bucket_get(s, bucket, &op->b);
	if (rc) {
		free(op);
		return rc;
	}
	memcpy(op->key, key, keylen);
	op->keylen = keylen;
	op->cb = cb;
	op->arg = arg;
	op->mut.kind = MUT_DELETE;
	op->mut.build = build_delete;
	op->mut.done = delete_done;
	s->ops++;
	mutation_queue(s, &op->mut);
	return 0;
}

/* ---- listing ---- */

/* The smallest key greater than every key starting with p[0..len).  Returns
 * the new length, 0 if there is none (p was all 0xff). */
static size_t prefix_successor(uint8_t *p, size_t len)
{
	while (len) {
		if (p[len - 1] != 0xff) {
			p[len - 1]++;
			return len;
		}
		len--;
	}
	return 0;
}

struct list_acc {
	struct store_list_result *r;
	size_t cap;
	char *arena;
	size_t arena_len, arena_cap;
};

static int list_add(struct list_acc *a, const uint8_t *key, size_t keylen,
		    int is_prefix, const struct meta_object *o)
{
	struct store_list_result *r = a->r;
	struct store_list_entry *e;

	if (r->n == a->cap) {
		size_t n = a->cap ? a->cap * 2 : 64;
		struct store_list_entry *v = realloc(r->e, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->e = v;
		a->cap = n;
	}
	e = &r->e[r->n];
	memset(e, 0, sizeof(*e));
	e->key = malloc(keylen + 1);
	if (!e->key)
		return -ENOMEM;
	memcpy(e->key, key, keylen);
	e->key[keylen] = 0;
	e->keylen = keylen;
	e->is_prefix = is_prefix;
	if (o) {
		e->size = o->size;
		e->mtime_ms = o->mtime_ms;
		etag_hex(o->etag, o->nchunks, e->etag_hex);
	}
	r->n++;
	return 0;
}

void store_list_result_free(struct store_list_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->e[i].key);
	free(r->e);
	free(r);
}

int store_list(struct store *s, const char *bucket,
	       const struct store_list_opts *o, struct store_list_result **out)
{
	uint8_t lo[META_OBJKEY_MAX + 1], hi[META_OBJKEY_MAX], seek[META_OBJKEY_MAX + 1];
	struct list_acc a = { 0 };
	struct index_iter *it = NULL;
	size_t limit = o->limit ? o->limit : 1000, lolen, hilen, slen;
	struct bucket *b;
	int rc;

	if (limit > 10000)
		limit = 10000;
	if (o->prefixlen > META_KEY_MAX || o->start_after_len > META_KEY_MAX)
		return STRATA_EBADKEY;
	rc = bucket_get(s, bucket, &b);
	if (rc)
		return rc;
	a.r = calloc(1, sizeof(*a.r));
	if (!a.r) {
		rc = -ENOMEM;
		goto out;
	}
	lolen = meta_objkey(b->id, o->prefix ? o->prefix : "", o->prefixlen, lo);
	memcpy(hi, lo, lolen);
	hilen = prefix_successor(hi, lolen);	/* > 0: the id is < 2^64-1 */
	it = index_iter_new(s->ix, INDEX_CF_OBJECTS, lo, lolen, hi, hilen);
	if (!it) {
		rc = -ENOMEM;
		goto out;
	}
	if (o->start_after && o->start_after_len) {
		slen = meta_objkey(b->id, o->start_after, o->start_after_len, seek);
		seek[slen++] = 0;	/* the first key after start_after */
		if (memcmp(seek, lo, slen < lolen ? slen : lolen) >= 0)
			index_iter_seek(it, seek, slen);
	}
	while (index_iter_valid(it)) {
		size_t klen, vlen;
		const uint8_t *k = index_iter_key(it, &klen);
		const uint8_t *v = index_iter_value(it, &vlen);
		const uint8_t *key = k + 8, *d;
		size_t keylen = klen - 8;
		struct meta_object *obj;

		if (klen < 8 + o->prefixlen ||
		    (vlen >= 2 && (v[1] & META_OBJ_TOMBSTONE))) {
			index_iter_next(it);
			continue;
		}
		d = o->delim ? memchr(key + o->prefixlen, o->delim,
				      keylen - o->prefixlen) : NULL;
		if (a.r->n == limit) {
			a.r->truncated = 1;
			break;
		}
		if (d) {
			size_t cplen = (size_t)(d - key) + 1;

			/* Paging: a prefix already returned is skipped. */
			if (!(o->start_after && o->start_after_len >= cplen &&
			      memcmp(o->start_after, key, cplen) == 0)) {
				rc = list_add(&a, key, cplen, 1, NULL);
				if (rc)
					goto out;
			}
			/* Jump past every key under this common prefix. */
			memcpy(seek, k, 8 + cplen);
			slen = prefix_successor(seek, 8 + cplen);
			index_iter_seek(it, seek, slen);
			continue;
		}
		rc = meta_object_decode(v, vlen, &obj);
		if (rc) {
			log_err("store", "listing %s: skipping a damaged object entry",
				bucket);
			s->st.corrupt++;
			rc = 0;
			index_iter_next(it);
			continue;
		}
		rc = list_add(&a, key, keylen, 0, obj);
		meta_object_free(obj);
		if (rc)
			goto out;
		index_iter_next(it);
	}
	if (!rc)
		rc = index_iter_status(it);
out:
	index_iter_free(it);
	bucket_unref(s, b);
	if (rc) {
		store_list_result_free(a.r);
		return rc;
	}
	*out = a.r;
	return 0;
}

/* ---- garbage: dropping empty segments and compacting sparse ones ---- */

/*
 *   gc job:  SCAN [gc_start: pick droppable and sparse sealed segments]
 *            -> DROP [one SEGDROP mutation for the empty ones]
 *            -> for each sparse segment:
 *                 COPY [read live records (uring), check headers, append to
 *                       the tier's active segment]
 *                 -> SWITCH [MOVE mutation: repoint chunks whose entry
 *                       still names the old place; the old segment, empty
 *                       now, is doomed in the same batch]
 *            -> DONE [cb]
 * A crash anywhere leaves either the old or the new location in the index;
 * the copy that is not referenced is garbage for the next pass.
 */

#define GC_WINDOW 2

struct gc_move {
	struct gc_job *job;
	uint64_t off;
	uint32_t rec_len;
	uint8_t ckey[META_CHUNKKEY_LEN];
	struct segment *dst;
	uint64_t dst_off;
	uint8_t *buf;
	int status;
	struct uring_req req;
};

struct gc_job {
	struct mutation mut;
	struct store *s;
	unsigned dead_pct;
	uint64_t *drop, *sparse;
	size_t ndrop, nsparse, isparse;
	struct segment *src;
	struct gc_move *moves;
	size_t nmoves, next, inflight;
	int error;
	store_done_cb cb;
	void *arg;
};

static void gc_next(struct gc_job *j);

static int build_segdrop(struct store *s, struct mutation *m,
			 struct index_batch *ib)
{
	struct gc_job *j = container_of(m, struct gc_job, mut);

	for (size_t i = 0; i < j->ndrop; i++) {
		struct segment *seg = segtab_find(&s->segs, j->drop[i]);
		struct meta_segment ms;
		uint8_t key[META_SEGKEY_LEN], *val;
		size_t vlen;
		int rc;

		if (!seg || !seg_may_drop(s, seg))
			continue;
		meta_segkey(seg->id, key);
		rc = index_batch_get(ib, INDEX_CF_SEGMENTS, key, sizeof(key),
				     &val, &vlen);
		if (rc == 0) {
			rc = meta_segment_decode(val, vlen, &ms);
			free(val);
			if (rc || ms.live_count)
				continue;
			index_batch_delete(ib, INDEX_CF_SEGMENTS, key,
					   sizeof(key));
		} else if (rc != -ENOENT) {
			return rc;
		}
		rc = round_doom(s->committing, seg);
		if (rc)
			return rc;
	}
	return 0;
}

static void segdrop_done(struct store *s, struct mutation *m)
{
	struct gc_job *j = container_of(m, struct gc_job, mut);

	(void)s;
	if (m->status)
		j->error = m->status;
	gc_next(j);
}

static int build_move(struct store *s, struct mutation *m,
		      struct index_batch *ib)
{
	struct gc_job *j = container_of(m, struct gc_job, mut);

	for (size_t i = 0; i < j->nmoves; i++) {
		struct gc_move *mv = &j->moves[i];
		uint8_t v[META_CHUNK_LEN], skey[META_SEGCHUNKKEY_LEN], *val;
		struct meta_chunk mc;
		size_t vlen;
		int rc;

		if (mv->status || !mv->dst)
			continue;
		rc = index_batch_get(ib, INDEX_CF_CHUNKS, mv->ckey,
				     sizeof(mv->ckey), &val, &vlen);
		if (rc == -ENOENT)
			continue;	/* died meanwhile: the copy is garbage */
		if (rc)
			return rc;
		rc = meta_chunk_decode(val, vlen, &mc);
		free(val);
		if (rc)
			return rc;
		if (mc.seg != j->src->id || mc.off != mv->off)
			continue;
		mc.seg = mv->dst->id;
		mc.off = mv->dst_off;
		mc.tier = mv->dst->tier;
		meta_chunk_encode(&mc, v);
		index_batch_put(ib, INDEX_CF_CHUNKS, mv->ckey, sizeof(mv->ckey),
				v, sizeof(v));
		meta_segchunkkey(j->src->id, mv->off, skey);
		index_batch_delete(ib, INDEX_CF_SEGCHUNKS, skey, sizeof(skey));
		meta_segchunkkey(mv->dst->id, mv->dst_off, skey);
		index_batch_put(ib, INDEX_CF_SEGCHUNKS, skey, sizeof(skey),
				mv->ckey, sizeof(mv->ckey));
		rc = seg_account(s, ib, mv->dst->id, mc.rec_len, 1);
		if (!rc)
			rc = seg_account(s, ib, j->src->id,
					 -(int64_t)mc.rec_len, -1);
		if (rc)
			return rc;
	}
	return 0;
}

static void move_done(struct store *s, struct mutation *m)
{
	struct gc_job *j = container_of(m, struct gc_job, mut);

	if (m->status) {
		j->error = m->status;
	} else {
		s->st.compacted_segments++;
		for (size_t i = 0; i < j->nmoves; i++)
			if (!j->moves[i].status && j->moves[i].dst)
				s->st.compacted_bytes += j->moves[i].rec_len;
	}
	for (size_t i = 0; i < j->nmoves; i++)
		if (j->moves[i].dst)
			seg_unpin(s, j->moves[i].dst);
	free(j->moves);
	j->moves = NULL;
	j->nmoves = 0;
	j->src = NULL;
	gc_next(j);
}

static void gc_copy_more(struct gc_job *j);

static void gc_write_cb(struct uring_req *req, ssize_t res)
{
	struct gc_move *mv = req->data;
	struct gc_job *j = mv->job;

	mv->dst->writes--;
	if (res < 0) {
		mv->status = (int)res;
		mv->dst->sealed = true;
		if (j->s->active[mv->dst->tier] == mv->dst)
			j->s->active[mv->dst->tier] = NULL;
	} else {
		mv->dst->dirty = true;
	}
	free(mv->buf);
	mv->buf = NULL;
	j->inflight--;
	gc_copy_more(j);
}

static void gc_read_cb(struct uring_req *req, ssize_t res)
{
	struct gc_move *mv = req->data;
	struct gc_job *j = mv->job;
	struct store *s = j->s;
	struct record_hdr h;
	struct segment *dst;
	int rc;

	if (res != (ssize_t)mv->rec_len) {
		rc = res < 0 ? (int)res : STRATA_ECORRUPT;
		goto fail;
	}
	/* Copy records whole (no re-encryption: the AAD does not bind the
	 * location), but never spread a damaged one. */
	rc = record_parse_header(mv->buf, &h);
	if (!rc && (size_t)RECORD_HDR_LEN + h.stored_len != mv->rec_len)
		rc = STRATA_ECORRUPT;
	if (rc)
		goto fail;
	rc = active_segment(s, j->src->tier, mv->rec_len, &dst);
	if (rc)
		goto fail;
	mv->dst = dst;
	dst->pins++;
	mv->dst_off = dst->size;
	dst->size += mv->rec_len;
	dst->writes++;
	mv->req.inject = fault_hit(s->o.fault, FAULT_SEG_WRITE);
	rc = uring_write(s->ring, &mv->req, dst->fd, mv->buf, mv->rec_len,
			 mv->dst_off, gc_write_cb);
	if (rc) {
		dst->writes--;
		goto fail;
	}
	return;
fail:
	if (rc == STRATA_ECORRUPT) {
		s->st.corrupt++;
		log_err("store", "compaction: corrupt record in segment %" PRIx64
			" at %" PRIu64 "; left in place", j->src->id, mv->off);
	}
	mv->status = rc;
	free(mv->buf);
	mv->buf = NULL;
	j->inflight--;
	gc_copy_more(j);
}

static void gc_copy_more(struct gc_job *j)
{
	struct store *s = j->s;

	while (j->next < j->nmoves && j->inflight < GC_WINDOW) {
		struct gc_move *mv = &j->moves[j->next++];

		mv->job = j;
		mv->req.data = mv;
		mv->buf = malloc(mv->rec_len);
		if (!mv->buf) {
			mv->status = -ENOMEM;
			continue;
		}
		mv->req.inject = fault_hit(s->o.fault, FAULT_SEG_READ);
		j->inflight++;
		if (uring_read(s->ring, &mv->req, j->src->fd, mv->buf,
			       mv->rec_len, mv->off, gc_read_cb)) {
			j->inflight--;
			mv->status = -ECANCELED;
			free(mv->buf);
			mv->buf = NULL;
		}
	}
	if (j->inflight || j->next < j->nmoves)
		return;
	/* All copies are written: switch the index over. */
	j->src->compacting = false;
	seg_unpin(s, j->src);
	j->mut.kind = MUT_MOVE;
	j->mut.build = build_move;
	j->mut.done = move_done;
	mutation_queue(s, &j->mut);
}

/* Gather the live records of one segment, then copy them. */
static int gc_compact_one(struct gc_job *j, struct segment *src)
{
	struct store *s = j->s;
	uint8_t lo[META_SEGKEY_LEN], hi[META_SEGKEY_LEN];
	struct index_iter *it;
	size_t cap = 0;
	int rc = 0;

	meta_segkey(src->id, lo);
	meta_segkey(src->id + 1, hi);
	it = index_iter_new(s->ix, INDEX_CF_SEGCHUNKS, lo, sizeof(lo), hi,
			    sizeof(hi));
	if (!it)
		return -ENOMEM;
	for (; index_iter_valid(it); index_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = index_iter_key(it, &klen);
		const uint8_t *v = index_iter_value(it, &vlen);
		struct meta_chunk mc;
		uint8_t *val;
		size_t cvlen;

		if (klen != META_SEGCHUNKKEY_LEN || vlen != META_CHUNKKEY_LEN)
			continue;
		if (index_get(s->ix, INDEX_CF_CHUNKS, v, vlen, &val, &cvlen))
			continue;
		rc = meta_chunk_decode(val, cvlen, &mc);
		free(val);
		if (rc || mc.seg != src->id ||
		    mc.off != meta_get_be64(k + 8)) {
			rc = 0;
			continue;
		}
		if (j->nmoves == cap) {
			size_t n = cap ? cap * 2 : 64;
			struct gc_move *mv = realloc(j->moves, n * sizeof(*mv));

			if (!mv) {
				rc = -ENOMEM;
				break;
			}
			j->moves = mv;
			cap = n;
		}
		memset(&j->moves[j->nmoves], 0, sizeof(j->moves[0]));
		j->moves[j->nmoves].off = mc.off;
		j->moves[j->nmoves].rec_len = mc.rec_len;
		memcpy(j->moves[j->nmoves].ckey, v, META_CHUNKKEY_LEN);
		j->nmoves++;
	}
	if (!rc)
		rc = index_iter_status(it);
	index_iter_free(it);
	if (rc)
		return rc;
	j->src = src;
	j->next = 0;
	src->compacting = true;
	src->pins++;
	gc_copy_more(j);
	return 0;
}

static void gc_finish(struct gc_job *j)
{
	struct store *s = j->s;

	s->gc_running = false;
	if (j->cb)
		j->cb(j->arg, j->error);
	free(j->drop);
	free(j->sparse);
	free(j);
	s->ops--;
	maybe_closed(s);
}

static void gc_next(struct gc_job *j)
{
	struct store *s = j->s;

	while (!j->error && !s->closing && j->isparse < j->nsparse) {
		struct segment *seg = segtab_find(&s->segs,
						  j->sparse[j->isparse++]);

		if (!seg || seg->doomed || !seg->sealed ||
		    s->active[seg->tier] == seg)
			continue;
		j->error = gc_compact_one(j, seg);
		if (!j->error)
			return;		/* continues in move_done */
	}
	gc_finish(j);
}

struct gc_scan {
	struct store *s;
	struct gc_job *j;
	size_t capdrop, capsparse;
	int err;
};

static int push_id(uint64_t **v, size_t *n, size_t *cap, uint64_t id)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		uint64_t *p = realloc(*v, nc * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = nc;
	}
	(*v)[(*n)++] = id;
	return 0;
}

static void gc_scan_one(void *arg, struct segment *seg)
{
	struct gc_scan *sc = arg;
	struct store *s = sc->s;
	struct meta_segment ms;
	uint8_t key[META_SEGKEY_LEN], *val;
	uint64_t dead, body;
	size_t vlen;
	int rc;

	if (sc->err || !seg_may_drop(s, seg))
		return;
	meta_segkey(seg->id, key);
	rc = index_get(s->ix, INDEX_CF_SEGMENTS, key, sizeof(key), &val, &vlen);
	if (rc == -ENOENT) {
		sc->err = push_id(&sc->j->drop, &sc->j->ndrop, &sc->capdrop,
				  seg->id);
		return;
	}
	if (rc)
		return;
	rc = meta_segment_decode(val, vlen, &ms);
	free(val);
	if (rc)
		return;
	if (ms.live_count == 0) {
		sc->err = push_id(&sc->j->drop, &sc->j->ndrop, &sc->capdrop,
				  seg->id);
		return;
	}
	body = seg->size > SEGMENT_HDR_LEN ? seg->size - SEGMENT_HDR_LEN : 0;
	dead = body > ms.live_bytes ? body - ms.live_bytes : 0;
	if (dead && dead * 100 >= (uint64_t)sc->j->dead_pct * body)
		sc->err = push_id(&sc->j->sparse, &sc->j->nsparse,
				  &sc->capsparse, seg->id);
}

int store_compact(struct store *s, unsigned dead_pct, store_done_cb cb,
		  void *arg)
{
	struct gc_scan sc = { .s = s };
	struct gc_job *j;

	if (s->closing)
		return STRATA_ECLOSING;
	if (s->gc_running)
		return -EBUSY;
	if (dead_pct > 100)
		return -EINVAL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->s = s;
	j->dead_pct = dead_pct;
	j->cb = cb;
	j->arg = arg;
	sc.j = j;
	segtab_foreach(&s->segs, gc_scan_one, &sc);
	if (sc.err) {
		free(j->drop);
		free(j->sparse);
		free(j);
		return sc.err;
	}
	s->gc_running = true;
	s->ops++;
	/* Drops first (cheap, frees whole files), then compactions. */
	j->mut.kind = MUT_SEGDROP;
	j->mut.build = build_segdrop;
	j->mut.done = segdrop_done;
	mutation_queue(s, &j->mut);
	return 0;
}

static void gc_timer_cb(uv_timer_t *t)
{
	struct store *s = t->data;

	if (!s->gc_running && !s->closing)
		store_compact(s, s->o.gc_dead_pct, NULL, NULL);
}

/* ---- stats ---- */

static void stats_seg(void *arg, struct segment *seg)
{
	struct store_stats *st = arg;

	st->segments++;
	st->seg_bytes[seg->tier] += seg->size;
}

int store_stats(struct store *s, struct store_stats *st)
{
	struct index_iter *it;
	int rc;

	*st = s->st;
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
static int store_init_meta(struct store *s)
{
	uint8_t zero[32] = { 0 }, wrapped[KEYS_WRAP_OVERHEAD + 32], v[4];
	int rc;

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

static bool seg_known(void *arg, uint64_t id)
{
	struct store *s = arg;
	uint8_t key[META_SEGKEY_LEN], *val;
	size_t vlen;

	meta_segkey(id, key);
	if (index_get(s->ix, INDEX_CF_SEGMENTS, key, sizeof(key), &val, &vlen))
		return false;
	free(val);
	return true;
}

/* Entries whose file is gone: their chunks will read as corrupt; say so
 * once, loudly, at start. */
static void check_missing_segments(struct store *s)
{
	struct index_iter *it;

	it = index_iter_new(s->ix, INDEX_CF_SEGMENTS, NULL, 0, NULL, 0);
	if (!it)
		return;
	for (; index_iter_valid(it); index_iter_next(it)) {
		size_t klen;
		const uint8_t *k = index_iter_key(it, &klen);

		if (klen == META_SEGKEY_LEN &&
		    !segtab_find(&s->segs, meta_get_be64(k))) {
			log_err("store", "segment %016" PRIx64 " is in the index but its file is missing",
				meta_get_be64(k));
			s->st.corrupt++;
		}
	}
	index_iter_free(it);
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
	s->bigsize = record_bound(s->o.chunk_size);
	s->loop_codec = record_codec_new();
	if (!s->loop_codec) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = index_open(s->o.index_dir, s->o.fault, s->o.index_cache_bytes,
			&s->ix);
	if (rc)
		goto fail;
	rc = store_check_meta(s);
	if (rc)
		goto fail;
	rc = segtab_init(&s->segs, &s->o);
	if (rc)
		goto fail;
	s->o.tier_dirs[0] = s->o.tier_dirs[1] = NULL;	/* not ours */
	rc = segtab_scan(&s->segs, seg_known, s);
	if (rc)
		goto fail_segs;
	if (s->persisted_next_seg > s->segs.next_id)
		s->segs.next_id = s->persisted_next_seg;
	check_missing_segments(s);
	rc = uring_new(loop, 256, &s->ring);
	if (rc) {
		log_err("store", "io_uring: %s", strerror(-rc));
		goto fail_segs;
	}
	uv_idle_init(loop, &s->idle);
	s->idle.data = s;
	uv_timer_init(loop, &s->gc_timer);
	s->gc_timer.data = s;
	uv_timer_start(&s->gc_timer, gc_timer_cb, s->o.gc_interval_ms,
		       s->o.gc_interval_ms);
	uv_unref((uv_handle_t *)&s->gc_timer);
	s->handles_open = 2;
	*out = s;
	return 0;
fail_segs:
	segtab_release(&s->segs);
fail:
	index_close(s->ix);
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
	index_close(s->ix);
	segtab_release(&s->segs);
	for (unsigned i = 0; i < s->npool; i++)
		record_codec_free(s->pool[i]);
	record_codec_free(s->loop_codec);
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
}

static bool close_started(struct store *s)
{
	return s->ring == NULL;
}

static void maybe_closed(struct store *s)
{
	struct uring *ring;

	if (!s->closing || close_started(s) || s->ops || s->syncing ||
	    s->committing ||
	    s->queue || s->kick_pending || s->defer_head)
		return;
	ring = s->ring;
	s->ring = NULL;
	uring_close(ring, ring_closed, s);
}

static void close_kick(void *arg)
{
	maybe_closed(arg);
}

void store_close(struct store *s, void (*cb)(void *arg), void *arg)
{
	s->closing = true;
	s->close_cb = cb;
	s->close_arg = arg;
	uv_timer_stop(&s->gc_timer);
	/* From the loop, so that a close inside a callback is safe. */
	defer(s, &s->close_d, close_kick, s);
}
