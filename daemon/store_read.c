// SPDX-License-Identifier: Apache-2.0
/*
 * store_read: gets, stat and listing (see store_int.h).
 *
 *   get: lookup -> [chunk: read (uring) -> decode (pool or inline)] in a
 *   window of get_window chunks, delivered in order; raw records are
 *   decrypted in place in the read buffer, which the slot keeps.
 *
 * A large record is first fetched from the page cache on the worker that
 * decodes it (slot_fetch: preadv2 with RWF_NOWAIT, piece by piece, each
 * piece checked and decrypted while still in that core's cache, where a
 * copy by io_uring's worker and a decode on another thread met in L3):
 *
 *   get_issue --[large, plain tier]--> FETCH (worker: copy + decode) --> done
 *       |          [slot_fetch]            | a byte not in the page cache,
 *       |                                  | RWF_NOWAIT refused, any error
 *       |                                  v            [slot_fetch_done]
 *       +--[otherwise]--------------> READ (io_uring) --> DECODE --> done
 *
 * RWF_NOWAIT never waits for the device, so a worker never blocks on a
 * disk: whatever must come from the device comes through io_uring as
 * before, and the fallback read reports any I/O error (an injected
 * FAULT_SEG_READ always takes that road).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
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
#include "store_int.h"
#include "uring.h"
#include "strata/error.h"
#include "cache.h"
#include "banned.h"

/* ---- object lookups ---- */

/*
 * Object index values read lately, so that a repeated GET (a training
 * epoch's shards, a batch of small objects) skips RocksDB's point lookup
 * (~1 us of a cached 4 KiB GET's ~10).  A direct-mapped table on the
 * engine's loop, keyed by the object's index key.  An entry holds while
 * s->objgen is the generation it was read in; every commit round bumps
 * objgen (round_commit_done), so nothing committed after a read is ever
 * answered from before it: puts, deletes, lifecycle expiry and bucket
 * deletion all commit through rounds.  A lookup runs on the loop between
 * rounds' completions, so the generation it reads in cannot change under
 * it.  Writes make the table useless until reads fill it again, never
 * wrong.
 */
#define OBJMETA_SLOTS 4096u			/* a power of two */
#define OBJMETA_MAX_VALUE (20u << 10)		/* inline objects fit */
#define OBJMETA_BUDGET (32u << 20)		/* keys + values */

struct objmeta_slot {
	uint64_t gen;
	uint8_t *key;				/* NULL: empty */
	size_t keylen;
	uint8_t *val;
	size_t vlen;
};

static struct objmeta_slot *objmeta_slot(struct store *s, const uint8_t *k,
					 size_t klen)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < klen; i++)
		h = (h ^ k[i]) * 0x100000001b3ull;
	return &s->objmeta[(h ^ (h >> 29)) & (OBJMETA_SLOTS - 1)];
}

static void objmeta_clear(struct store *s, struct objmeta_slot *e)
{
	if (!e->key)
		return;
	s->objmeta_bytes -= e->keylen + e->vlen;
	free(e->key);
	free(e->val);
	e->key = e->val = NULL;
}

void store__objmeta_free(struct store *s)
{
	if (!s->objmeta)
		return;
	for (unsigned i = 0; i < OBJMETA_SLOTS; i++)
		objmeta_clear(s, &s->objmeta[i]);
	free(s->objmeta);
	s->objmeta = NULL;
}

/* The value under okey read in this generation, as a copy the caller
 * frees; -ENOENT when there is none. */
static int objmeta_get(struct store *s, const uint8_t *okey, size_t oklen,
		       uint8_t **val, size_t *vlen)
{
	struct objmeta_slot *e;

	if (!s->objmeta)
		return -ENOENT;
	e = objmeta_slot(s, okey, oklen);
	if (!e->key || e->gen != s->objgen || e->keylen != oklen ||
	    memcmp(e->key, okey, oklen) != 0)
		return -ENOENT;
	*val = malloc(e->vlen ? e->vlen : 1);
	if (!*val)
		return -ENOMEM;
	memcpy(*val, e->val, e->vlen);
	*vlen = e->vlen;
	s->objmeta_hits++;
	return 0;
}

/* Keep a value just read and decoded (best effort). */
static void objmeta_put(struct store *s, const uint8_t *okey, size_t oklen,
			const uint8_t *val, size_t vlen)
{
	struct objmeta_slot *e;

	if (vlen > OBJMETA_MAX_VALUE)
		return;
	if (!s->objmeta &&
	    !(s->objmeta = calloc(OBJMETA_SLOTS, sizeof(*s->objmeta))))
		return;
	e = objmeta_slot(s, okey, oklen);
	objmeta_clear(s, e);
	if (s->objmeta_bytes + oklen + vlen > OBJMETA_BUDGET)
		return;
	e->key = malloc(oklen);
	e->val = malloc(vlen ? vlen : 1);
	if (!e->key || !e->val) {
		free(e->key);
		free(e->val);
		e->key = e->val = NULL;
		return;
	}
	memcpy(e->key, okey, oklen);
	memcpy(e->val, val, vlen);
	e->keylen = oklen;
	e->vlen = vlen;
	e->gen = s->objgen;
	s->objmeta_bytes += oklen + vlen;
}

/* Find the visible version of bucket/key.  *buf backs *obj.  fresh: from
 * the index itself, past the lookup table (which may still hold what a
 * commit round in flight replaced). */
static int object_lookup_at(struct store *s, const char *bucket,
			    const char *key, size_t keylen, bool fresh,
			    struct bucket **bout, uint8_t **buf,
			    struct meta_object **obj)
{
	uint8_t okey[META_OBJKEY_MAX];
	struct bucket *b;
	size_t vlen, oklen;
	bool hit;
	int rc;

	rc = meta_check_key(key, keylen);
	if (rc)
		return rc;
	rc = store__bucket_get(s, bucket, &b);
	if (rc)
		return rc;
	oklen = meta_objkey(b->id, key, keylen, okey);
	rc = fresh ? -ENOENT : objmeta_get(s, okey, oklen, buf, &vlen);
	hit = !rc;
	if (rc == -ENOENT)
		rc = index_get(s->ix, INDEX_CF_OBJECTS, okey, oklen, buf,
			       &vlen);
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
	if (!hit)
		objmeta_put(s, okey, oklen, *buf, vlen);
	*bout = b;
	return 0;
fail:
	*obj = NULL;
	*buf = NULL;
	store__bucket_unref(s, b);
	return rc;
}

/* A chunk's entry; -ENOENT (quietly) when there is none. */
static int chunk_entry(struct store *s, uint64_t bid,
		       const uint8_t id[RECORD_ID_LEN], struct meta_chunk *mc)
{
	uint8_t key[META_CHUNKKEY_LEN], *val;
	size_t vlen;
	int rc;

	meta_chunkkey(bid, id, key);
	rc = index_get(s->ix, INDEX_CF_CHUNKS, key, sizeof(key), &val, &vlen);
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

/* stat_at()'s "a chunk entry is missing": the version it read was being
 * replaced (or the index lost it). */
#define STAT_AGAIN 1
/* Fresh reads before a missing chunk entry counts as corruption. */
#define STAT_TRIES 4

static int stat_at(struct store *s, const char *bucket, const char *key,
		   size_t keylen, bool fresh, struct store_object_info *info,
		   struct store_chunk_info **chunks, struct meta_object **meta,
		   uint8_t **metabuf)
{
	struct meta_object *o;
	struct bucket *b;
	uint8_t *buf;
	int rc;

	rc = object_lookup_at(s, bucket, key, keylen, fresh, &b, &buf, &o);
	if (rc)
		return rc;
	store__fill_info(info, o);
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
			rc = chunk_entry(s, b->id, o->chunks[i].id, &mc);
			if (rc) {
				free(v);
				if (rc == -ENOENT)
					rc = STAT_AGAIN;
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
	if (!rc && meta) {
		/* The caller's now, content type, metadata and tags too. */
		*meta = o;
		*metabuf = buf;
		o = NULL;
		buf = NULL;
	}
	meta_object_free(o);
	free(buf);
	store__bucket_unref(s, b);
	return rc;
}

int store_stat(struct store *s, const char *bucket, const char *key,
	       size_t keylen, struct store_object_info *info,
	       struct store_chunk_info **chunks, struct meta_object **meta,
	       uint8_t **metabuf)
{
	/* A chunk entry missing: the lookup table may still hold a version
	 * that a commit round in flight replaced and whose chunks it freed,
	 * or an overwrite landed between the reads.  Read again from the
	 * index itself: an object being replaced is not corruption. */
	for (int i = 0; i < STAT_TRIES; i++) {
		int rc = stat_at(s, bucket, key, keylen, i > 0, info, chunks,
				 meta, metabuf);

		if (rc != STAT_AGAIN)
			return rc;
	}
	log_err("store", "chunk entry missing for a live object");
	s->st.corrupt++;
	return STRATA_ECORRUPT;
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
	struct cache_entry *centry;	/* a cache hit, pinned till delivered */
	int status;
	bool busy, ready;
	/* fetch (worker): the segment's fd, bytes of rec read so far, and
	 * whether to read through io_uring instead (and why) */
	int fd;
	size_t have;
	bool fetch_zstd, fetch_again, fetch_refused;
	uv_work_t work;
	struct uring_req req;
};


/* Where a chunk of the get's version is, found when the get started (or
 * reached its batch), its segment pinned by the get: a PUT or DELETE that
 * commits meanwhile drops the chunk's entry, but the record stays readable
 * until the get lets go. */
struct get_loc {
	struct segment *seg;
	struct meta_chunk mc;
};

#define RESOLVE_BATCH 256u

struct store_get {
	struct store *s;
	struct bucket *b;
	uint8_t *objbuf;
	struct meta_object *o;
	struct get_loc *locs;		/* chunks [loc_first, loc_end) */
	uint32_t loc_first, loc_end;
	/* For a get of more than a batch: to look the object up again */
	char *bucket_name, *key;
	size_t keylen;
	uint64_t *starts;		/* object offset of each chunk */
	uint64_t off, end;
	uint32_t next_issue, next_deliver, last;
	unsigned inflight;
	int error;
	bool paused, busy, again, finished;
	bool prestage;			/* a prestaging read (store_tier.c) */
	struct get_slot *delivering;	/* in data_cb: store_get_hold() */
	/* The first kick is queued: the get may not finish (and be freed)
	 * before it has run, even when its reads complete first (a get
	 * started from a deferred callback). */
	bool kick_pending;
	store_data_cb data_cb;
	store_done_cb done_cb;
	void *arg;
	struct deferred fin;
	struct xfer_wait xw;		/* waiting for the transfer budget */
	struct store_get *pprev, *pnext;	/* s->paused_head (paused_link) */
	bool on_paused;
	struct get_slot slots[GET_WINDOW_MAX];
};

static void get_progress(struct store_get *g);

static void get_wake(struct xfer_wait *w)
{
	get_progress(container_of(w, struct store_get, xw));
}

/* s->paused_head lists the paused gets that may hold counted buffers:
 * linked when a get pauses or issues a read while paused, unlinked once
 * it holds nothing (get_reclaim) or resumes. */
static void paused_link(struct store_get *g)
{
	struct store *s = g->s;

	if (g->on_paused)
		return;
	g->pnext = s->paused_head;
	g->pprev = NULL;
	if (s->paused_head)
		s->paused_head->pprev = g;
	s->paused_head = g;
	g->on_paused = true;
}

static void paused_unlink(struct store_get *g)
{
	struct store *s = g->s;

	if (!g->on_paused)
		return;
	if (g->pprev)
		g->pprev->pnext = g->pnext;
	else
		s->paused_head = g->pnext;
	if (g->pnext)
		g->pnext->pprev = g->pprev;
	g->pprev = g->pnext = NULL;
	g->on_paused = false;
}

static void slot_free_bufs(struct store *s, struct get_slot *sl)
{
	store__xbuf_free(s, sl->rec, sl->reccap);
	store__xbuf_free(s, sl->plain, sl->plaincap);
	sl->rec = sl->plain = NULL;
	sl->reccap = sl->plaincap = 0;
}

/*
 * A paused get gives back what it holds while others wait for the
 * transfer budget: the chunks it read ahead and has not delivered (from
 * the last one down; they are read again on resume), failed reads among
 * them (their error comes again, or not), and the buffers of idle slots.
 * A read in flight keeps its slot (and the ones before it); when it
 * completes, get_progress comes back here.
 */
static void get_reclaim(struct store_get *g)
{
	struct store *s = g->s;
	bool holds;

	if (g->busy || g->finished)
		return;
	while (g->next_issue > g->next_deliver) {
		struct get_slot *sl =
			&g->slots[(g->next_issue - 1) % s->o.get_window];

		if (!sl->busy || !sl->ready || sl->idx != g->next_issue - 1)
			break;
		s->xfer_given_back += sl->plainlen;
		cache_release(sl->centry);
		sl->centry = NULL;
		sl->out = NULL;
		sl->busy = sl->ready = false;
		g->next_issue--;
	}
	holds = false;
	for (unsigned i = 0; i < s->o.get_window; i++) {
		if (g->slots[i].busy)
			holds = true;	/* a read in flight, or an error */
		else
			slot_free_bufs(s, &g->slots[i]);
	}
	/* Holding nothing, it need not be asked again (a walk over every
	 * paused get each time a transfer waits is what the list saves). */
	if (!holds)
		paused_unlink(g);
}

void store__get_reclaim_paused(struct store *s)
{
	struct store_get *g = s->paused_head, *next;

	for (; g; g = next) {
		next = g->pnext;
		get_reclaim(g);
	}
}

static void get_unpin_locs(struct store_get *g)
{
	for (uint32_t i = g->loc_first; i < g->loc_end; i++)
		if (g->locs[i - g->loc_first].seg)
			store__seg_unpin(g->s, g->locs[i - g->loc_first].seg);
	g->loc_first = g->loc_end = 0;
}

/*
 * Find and pin the places of chunks [from, from + RESOLVE_BATCH) of the
 * get's range.  -ENOENT: a chunk has no entry (the object changed since
 * it was looked up); else 0 or an error (logged).
 */
static void cache_key(const struct store_get *g, uint32_t idx,
		      uint8_t out[CACHE_KEY_LEN]);

/* Where chunk idx of the get's version is (its entry and segment), checked
 * against the object: -ENOENT (quietly) when it has no entry. */
static int chunk_place(struct store_get *g, uint32_t idx,
		       struct meta_chunk *mc, struct segment **seg)
{
	struct store *s = g->s;
	int rc = chunk_entry(s, g->b->id, g->o->chunks[idx].id, mc);

	if (rc)
		return rc;
	*seg = segtab_find(&s->segs, mc->seg);
	/* The payload never exceeds the plaintext: this also bounds the
	 * record buffer by what the index can claim. */
	if (!*seg || mc->rec_len < RECORD_HDR_LEN ||
	    mc->rec_len > record_bound(mc->raw_len) ||
	    mc->raw_len != g->o->chunks[idx].raw_len) {
		log_err("store", "chunk points at %s segment %" PRIx64,
			*seg ? "a bad place in" : "missing", mc->seg);
		s->st.corrupt++;
		return STRATA_ECORRUPT;
	}
	return 0;
}

static int get_resolve(struct store_get *g, uint32_t from)
{
	struct store *s = g->s;
	uint32_t to = g->last - from >= RESOLVE_BATCH ? from + RESOLVE_BATCH :
		      g->last + 1;
	int rc = 0;

	get_unpin_locs(g);
	if (!g->locs) {
		g->locs = malloc(RESOLVE_BATCH * sizeof(*g->locs));
		if (!g->locs)
			return -ENOMEM;
	}
	g->loc_first = g->loc_end = from;
	for (uint32_t i = from; i < to; i++) {
		struct get_loc *l = &g->locs[i - from];
		uint8_t ck[CACHE_KEY_LEN];

		/* A chunk in the cache now is most likely read from it (and
		 * then needs no place); looked up at issue if it went. */
		cache_key(g, i, ck);
		if (cache_has(s->cache, ck)) {
			l->seg = NULL;
			g->loc_end = i + 1;
			continue;
		}
		rc = chunk_place(g, i, &l->mc, &l->seg);
		if (rc)
			break;
		l->seg->pins++;
		g->loc_end = i + 1;
	}
	return rc;
}

/* Whether bucket/key still has the get's version: 0 yes, 1 no (another
 * version or none), or an error. */
static int get_version_gone(struct store_get *g, const char *bucket,
			    const char *key, size_t keylen)
{
	struct meta_object *o;
	struct bucket *b;
	uint8_t *buf;
	int rc, gone;

	rc = object_lookup_at(g->s, bucket, key, keylen, true, &b, &buf, &o);
	if (rc == STRATA_ENOOBJECT || rc == STRATA_ENOBUCKET)
		return 1;
	if (rc)
		return rc;
	gone = b != g->b || o->hlc != g->o->hlc || o->writer != g->o->writer;
	meta_object_free(o);
	free(buf);
	store__bucket_unref(g->s, b);
	return gone;
}

/* A chunk entry missing past the first batch: the object changed (an
 * error of its own, not corruption), or the index lost it. */
static int get_changed(struct store_get *g)
{
	int rc = get_version_gone(g, g->bucket_name, g->key, g->keylen);

	if (rc == 1)
		return STRATA_ECHANGED;
	if (rc == 0) {
		log_err("store", "chunk entry missing for a live object");
		g->s->st.corrupt++;
		return STRATA_ECORRUPT;
	}
	return rc;
}

static void get_free(struct store_get *g)
{
	struct store *s = g->s;

	free(g->key);
	free(g->bucket_name);
	get_unpin_locs(g);
	free(g->locs);
	store__xfer_cancel(s, &g->xw);
	paused_unlink(g);

	for (int i = 0; i < GET_WINDOW_MAX; i++) {
		cache_release(g->slots[i].centry);
		slot_free_bufs(s, &g->slots[i]);
	}
	meta_object_free(g->o);
	free(g->objbuf);
	free(g->starts);
	store__bucket_unref(s, g->b);
	free(g);
	s->ops--;
	store__maybe_closed(s);
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
	struct record_codec *codec = store__codec_get(s);

	if (!codec) {
		sl->status = -ENOMEM;
		return;
	}
	slot_decode(s, sl, codec);
	store__codec_put(s, codec);
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
		store__xbuf_free(s, sl->plain, sl->plaincap);
		sl->plain = store__xbuf_alloc(s, sl->mc.raw_len, &sl->plaincap);
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
	store__seg_unpin(s, seg);
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

/* ---- fetch: page-cache copy and decode on one worker ---- */

/* Bytes per page-cache copy: a few decode strides, well inside L2. */
#define FETCH_PIECE (256u << 10)

/* record_fill_fn: copy rec up to at least upto from the page cache, a
 * piece at a time; -EAGAIN when a byte is not there (or anything else
 * goes wrong: the io_uring read then tells what). */
static int fetch_fill(void *arg, size_t upto)
{
	struct get_slot *sl = arg;
	size_t want = sl->have + FETCH_PIECE;

	if (want < upto)
		want = upto;
	if (want > sl->mc.rec_len)
		want = sl->mc.rec_len;
	while (sl->have < upto) {
		struct iovec iov = { sl->rec + sl->have, want - sl->have };
		ssize_t n = preadv2(sl->fd, &iov, 1,
				    (off_t)(sl->mc.off + sl->have), RWF_NOWAIT);

		if (n <= 0) {
			if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL))
				sl->fetch_refused = true;
			return -EAGAIN;
		}
		sl->have += (size_t)n;
	}
	return 0;
}

static void slot_fetch_work(uv_work_t *w)
{
	struct get_slot *sl = container_of(w, struct get_slot, work);
	struct store_get *g = sl->g;
	struct record_codec *codec;
	struct record_hdr h;

	sl->have = 0;
	/* The output was placed by what the index says (raw or not): a
	 * header that disagrees goes the long way, which decides by it. */
	if (fetch_fill(sl, RECORD_HDR_LEN) ||
	    (record_parse_header(sl->rec, &h) == 0 &&
	     !(h.flags & RECORD_ZSTD) != !sl->fetch_zstd)) {
		sl->fetch_again = true;
		return;
	}
	codec = store__codec_get(g->s);
	if (!codec) {
		sl->status = -ENOMEM;
		return;
	}
	sl->status = record_decode_fill(codec, &g->b->keys,
					g->o->chunks[sl->idx].id, sl->rec,
					sl->mc.rec_len, sl->out, sl->mc.raw_len,
					&sl->plainlen, fetch_fill, sl);
	store__codec_put(g->s, codec);
	if (sl->status == -EAGAIN) {
		sl->status = 0;
		sl->fetch_again = true;
	} else if (!sl->status &&
		   sl->plainlen != g->o->chunks[sl->idx].raw_len) {
		sl->status = STRATA_ECORRUPT;
	}
}

static void slot_read_cb(struct uring_req *req, ssize_t res);

static void slot_fetch_done(uv_work_t *w, int status)
{
	struct get_slot *sl = container_of(w, struct get_slot, work);
	struct store *s = sl->g->s;
	int rc;

	if (status && !sl->status)
		sl->status = status;
	if (sl->fetch_refused && !s->no_nowait) {
		log_info("store", "segment reads: RWF_NOWAIT refused; reading "
			 "through io_uring only");
		s->no_nowait = true;
	}
	if (sl->fetch_again && !sl->status && !sl->g->error) {
		/* Not (all) in the page cache: the usual read, whole. */
		rc = store__tier_read(s, sl->seg, &sl->req, sl->rec,
				      sl->mc.rec_len, sl->mc.off, slot_read_cb);
		if (!rc)
			return;
		sl->status = rc;
	}
	store__seg_unpin(s, sl->seg);
	sl->seg = NULL;
	slot_decoded(sl);
}

/*
 * Start a fetch if this read may try the page cache first: a record large
 * enough for a worker, a tier without emulated slowness, no injected fault.
 * Returns false to read through io_uring instead.
 */
static bool slot_fetch(struct store *s, struct get_slot *sl,
		       const struct segment *seg)
{
	const struct store_tier_opts *to = &s->o.tier[seg->tier];

	if (!sl->req.async || sl->req.inject || s->no_nowait ||
	    to->read_delay_us || to->read_bw)
		return false;
	/* Raw records (stored length = raw length) decrypt in place. */
	sl->fetch_zstd = sl->mc.rec_len != RECORD_HDR_LEN + sl->mc.raw_len;
	if (!sl->fetch_zstd) {
		sl->out = sl->rec + RECORD_HDR_LEN;
	} else {
		if (sl->plaincap < sl->mc.raw_len) {
			store__xbuf_free(s, sl->plain, sl->plaincap);
			sl->plain = store__xbuf_alloc(s, sl->mc.raw_len,
						      &sl->plaincap);
			if (!sl->plain) {
				sl->plaincap = 0;
				return false;
			}
		}
		sl->out = sl->plain;
	}
	sl->fd = seg->fd;
	sl->fetch_again = false;
	sl->fetch_refused = false;
	return uv_queue_work(s->loop, &sl->work, slot_fetch_work,
			     slot_fetch_done) == 0;
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
		store__xbuf_free(s, sl->rec, sl->reccap);
		sl->rec = store__xbuf_alloc(s, g->o->inlen, &sl->reccap);
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

static void cache_key(const struct store_get *g, uint32_t idx,
		      uint8_t key[CACHE_KEY_LEN])
{
	meta_put_be64(key, g->b->id);
	memcpy(key + 8, g->o->chunks[idx].id, RECORD_ID_LEN);
}

void *store_get_hold(struct store_get *g)
{
	struct cache_entry *e = g->delivering ? g->delivering->centry : NULL;

	if (e)
		cache_ref(e);
	return e;
}

void *store_hold_dup(void *hold)
{
	cache_ref(hold);
	return hold;
}

void store_hold_release(void *hold)
{
	cache_release(hold);
}

/*
 * After delivery: let go of a cache hit, or hand a freshly decoded chunk to
 * the cache (the buffer holding it becomes the cache's; the slot gets a new
 * one next time).
 */
static void slot_cache(struct store_get *g, struct get_slot *sl)
{
	struct store *s = g->s;
	uint8_t key[CACHE_KEY_LEN];

	if (sl->centry) {
		cache_release(sl->centry);
		sl->centry = NULL;
		return;
	}
	/* Keyed by the chunk id, which the plaintext determines: an inline
	 * object's single chunk has one too. */
	if (sl->status || sl->plainlen != g->o->chunks[sl->idx].raw_len)
		return;
	cache_key(g, sl->idx, key);
	if (sl->out == sl->plain) {
		if (cache_insert(s->cache, key, sl->plain, sl->plaincap,
				 sl->out, sl->plainlen)) {
			store__xbuf_forget(s, sl->plaincap);
			sl->plain = NULL;
			sl->plaincap = 0;
		}
	} else if (sl->out == sl->rec + RECORD_HDR_LEN) {
		if (cache_insert(s->cache, key, sl->rec, sl->reccap, sl->out,
				 sl->plainlen)) {
			store__xbuf_forget(s, sl->reccap);
			sl->rec = NULL;
			sl->reccap = 0;
		}
	}
}

/* What reading the chunk into sl takes beyond the buffers it has. */
static size_t slot_need(const struct get_slot *sl)
{
	size_t need = 0;

	if (sl->reccap < sl->mc.rec_len)
		need += sl->mc.rec_len;
	if (sl->mc.rec_len != RECORD_HDR_LEN + sl->mc.raw_len &&
	    sl->plaincap < sl->mc.raw_len)
		need += sl->mc.raw_len;		/* zstd: a plaintext buffer */
	return need;
}

/*
 * Start reading chunk idx into a free slot.  Returns false, the slot idle
 * (its buffers given back), when the read must wait for the transfer
 * budget (the get is then in line, and woken).
 */
static bool get_issue(struct store_get *g, struct get_slot *sl, uint32_t idx)
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
	sl->centry = NULL;
	sl->status = 0;
	sl->ready = false;
	memset(&sl->req, 0, sizeof(sl->req));
	sl->busy = true;
	g->inflight++;
	/* A chunk read before: no segment read, no decode.  Small objects
	 * inline in the index too: their record needs no read, but its
	 * decryption and checks cost more than the lookup (a 4 KiB GET
	 * spent ~1 us of its ~12 on them). */
	{
		uint8_t ck[CACHE_KEY_LEN];

		cache_key(g, idx, ck);
		sl->centry = cache_get(s->cache, ck);
		if (sl->centry) {
			if (sl->centry->len != g->o->chunks[idx].raw_len) {
				cache_release(sl->centry);
				sl->centry = NULL;
			} else {
				sl->out = (uint8_t *)sl->centry->data;
				sl->plainlen = sl->centry->len;
				sl->ready = true;
				g->inflight--;
				/* Ready at once: have the progress loop look
				 * again (it may be running right now). */
				g->again = true;
				return true;
			}
		}
	}
	if (g->o->flags & META_OBJ_INLINE) {
		get_issue_inline(g, sl);
		return true;
	}
	/* (Below the batch: read ahead past its end, then given back.) */
	if (idx >= g->loc_end || idx < g->loc_first) {
		rc = get_resolve(g, idx);
		if (rc == -ENOENT)
			rc = get_changed(g);
		if (rc)
			goto fail;
	}
	seg = g->locs[idx - g->loc_first].seg;
	if (seg) {
		sl->mc = g->locs[idx - g->loc_first].mc;
	} else {
		/* Was in the cache at the start, evicted since. */
		rc = chunk_place(g, idx, &sl->mc, &seg);
		if (rc == -ENOENT)
			rc = get_changed(g);
		if (rc)
			goto fail;
	}
	if (sl->mc.raw_len > XFER_SMALL &&
	    !store__xfer_admit(s, &g->xw, slot_need(sl))) {
		/* Idle buffers of the get go back first, this slot's too:
		 * counted while it waits, they could keep it waiting for
		 * itself (nothing else in flight to give bytes back). */
		for (unsigned i = 0; i < s->o.get_window; i++)
			if (!g->slots[i].busy || &g->slots[i] == sl)
				slot_free_bufs(s, &g->slots[i]);
		if (!store__xfer_admit(s, &g->xw, slot_need(sl))) {
			sl->busy = false;
			g->inflight--;
			store__xfer_wait(s, &g->xw);
			return false;
		}
	}
	if (sl->reccap < sl->mc.rec_len) {
		store__xbuf_free(s, sl->rec, sl->reccap);
		sl->rec = store__xbuf_alloc(s, sl->mc.rec_len, &sl->reccap);
		if (!sl->rec) {
			sl->reccap = 0;
			rc = -ENOMEM;
			goto fail;
		}
	}
	{
		uint8_t ckey[META_CHUNKKEY_LEN];

		meta_chunkkey(g->b->id, g->o->chunks[idx].id, ckey);
		store__tier_note_read(s, seg, ckey, g->prestage);
	}
	seg->pins++;
	sl->seg = seg;
	sl->req.data = sl;
	sl->req.async = sl->mc.rec_len > INLINE_CODEC_MAX;
	sl->req.inject = fault_hit(s->o.fault, FAULT_SEG_READ);
	if (slot_fetch(s, sl, seg))
		return true;
	rc = store__tier_read(s, seg, &sl->req, sl->rec, sl->mc.rec_len,
			      sl->mc.off, slot_read_cb);
	if (rc) {
		seg->pins--;
		sl->seg = NULL;
		goto fail;
	}
	return true;
fail:
	sl->status = rc;
	sl->ready = true;
	g->inflight--;
	g->again = true;
	return true;
}

/* Keep the window full: issue reads up to get_window chunks ahead of the
 * one to deliver next.  A paused get stops while others wait for the
 * budget. */
static void get_fill(struct store_get *g)
{
	struct store *s = g->s;

	while (!g->error && g->next_issue <= g->last &&
	       g->next_issue < g->next_deliver + s->o.get_window) {
		struct get_slot *sl = &g->slots[g->next_issue % s->o.get_window];

		if (sl->busy || (g->paused && s->xw_head))
			break;
		if (!get_issue(g, sl, g->next_issue))
			break;
		g->next_issue++;
		if (g->paused)
			paused_link(g);		/* it holds buffers again */
	}
}

static void get_finish(void *arg)
{
	struct store_get *g = arg;

	if (!g->error && !g->prestage) {
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
			g->delivering = sl;
			if (g->data_cb(g->arg, sl->out + from, to - from))
				g->error = STRATA_EABORTED;
			g->delivering = NULL;
			slot_cache(g, sl);
			sl->busy = false;
			g->next_deliver++;
			/* Others wait: its buffers are better used there. */
			if (s->xw_head)
				slot_free_bufs(s, sl);
		}
		get_fill(g);
	} while (g->again);
	g->busy = false;
	if (g->paused && s->xw_head)
		get_reclaim(g);
	if (!g->finished && !g->inflight && !g->kick_pending &&
	    (g->error || g->next_deliver > g->last)) {
		g->finished = true;
		get_finish(g);
	}
}

static void get_kick(void *arg)
{
	struct store_get *g = arg;

	g->kick_pending = false;
	get_progress(g);
}

int store_get(struct store *s, const char *bucket, const char *key,
	      size_t keylen, uint64_t off, uint64_t len,
	      struct store_object_info *info, store_data_cb data_cb,
	      store_done_cb done_cb, void *arg, struct store_get **out)
{
	return store__get(s, bucket, key, keylen, off, len, info, data_cb,
			  done_cb, arg, out, false);
}

/* Drop what get_start() set up, to start again. */
static void get_reset(struct store_get *g)
{
	get_unpin_locs(g);
	meta_object_free(g->o);
	free(g->objbuf);
	free(g->starts);
	store__bucket_unref(g->s, g->b);
	g->o = NULL;
	g->objbuf = NULL;
	g->starts = NULL;
	g->b = NULL;
}

/* Look the object up, work out the chunks of the range, and pin the
 * first batch of their places.  -ENOENT: a chunk has no entry. */
static int get_start(struct store_get *g, const char *bucket,
		     const char *key, size_t keylen, uint64_t off,
		     uint64_t len, bool fresh)
{
	struct store *s = g->s;
	uint64_t pos = 0;
	int rc;

	rc = object_lookup_at(s, bucket, key, keylen, fresh, &g->b,
			      &g->objbuf, &g->o);
	if (rc)
		return rc;
	if (off > g->o->size)
		return STRATA_ERANGE;
	g->off = off;
	g->end = len > g->o->size - off ? g->o->size : off + len;
	g->starts = malloc((g->o->nchunks + 1) * sizeof(*g->starts));
	if (!g->starts)
		return -ENOMEM;
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
		return 0;
	}
	if (g->o->flags & META_OBJ_INLINE)
		return 0;
	if (!g->key) {
		g->bucket_name = strdup(bucket);
		g->key = malloc(keylen ? keylen : 1);
		if (!g->bucket_name || !g->key)
			return -ENOMEM;
		memcpy(g->key, key, keylen);
		g->keylen = keylen;
	}
	return get_resolve(g, g->next_issue);
}

int store__get(struct store *s, const char *bucket, const char *key,
	       size_t keylen, uint64_t off, uint64_t len,
	       struct store_object_info *info, store_data_cb data_cb,
	       store_done_cb done_cb, void *arg, struct store_get **out,
	       bool prestage)
{
	struct store_get *g;
	int rc;

	if (s->closing)
		return STRATA_ECLOSING;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->s = s;
	g->prestage = prestage;
	g->xw.wake = get_wake;
	g->xw.low = prestage;
	s->ops++;
	/* Look the object up and pin where its first chunks are.  A chunk
	 * entry missing means a commit round replaced or deleted the object
	 * after the lookup (the lookup table serves what the index had until
	 * the round completes): look it up again in the index. */
	for (int attempt = 0;; attempt++) {
		rc = get_start(g, bucket, key, keylen, off, len,
			       attempt > 0);
		if (rc == -ENOENT)
			rc = get_changed(g);
		if (rc != STRATA_ECHANGED || attempt == 2)
			break;
		get_reset(g);
	}
	if (rc)
		goto fail;
	if (!prestage && s->tiers)
		store__tier_note_get(s, g->b->id, key, keylen);
	g->next_deliver = g->next_issue;
	g->data_cb = data_cb;
	g->done_cb = done_cb;
	g->arg = arg;
	if (info) {
		store__fill_info(info, g->o);
		info->bucket_id = g->b->id;
		info->gen = store_answer_gen(s, g->b->id);
	}
	if (out)
		*out = g;
	if (g->end == g->off) {
		g->finished = true;
		store__defer(s, &g->fin, get_finish, g);
		return 0;
	}
	/* Issue from the loop: errors found now still arrive via done_cb. */
	g->busy = true;
	get_fill(g);
	g->busy = false;
	g->kick_pending = true;
	store__defer(s, &g->fin, get_kick, g);
	return 0;
fail:
	get_free(g);
	return rc;
}

void store_get_pause(struct store_get *g)
{
	struct store *s = g->s;

	if (g->paused)
		return;
	g->paused = true;
	/* On the list of gets that give back on demand; when others wait
	 * already, get_progress (which is delivering now) does at once. */
	paused_link(g);
	if (s->xw_head)
		get_reclaim(g);		/* (does nothing while delivering) */
}

void store_get_resume(struct store_get *g)
{
	if (!g->paused)
		return;
	g->paused = false;
	paused_unlink(g);
	get_progress(g);
}

void store_get_abort(struct store_get *g)
{
	if (!g->error)
		g->error = STRATA_EABORTED;
	store__xfer_cancel(g->s, &g->xw);
	g->paused = false;
	paused_unlink(g);
	get_progress(g);	/* delivers and issues nothing now; may end g */
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
		e->hlc = o->hlc;
		memcpy(e->etag, o->etag, sizeof(e->etag));
		e->nchunks = o->nchunks;
		store__etag_hex(o->etag, o->nchunks, e->etag_hex);
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
	rc = store__bucket_get(s, bucket, &b);
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
		d = o->delimlen ? memmem(key + o->prefixlen,
					 keylen - o->prefixlen, o->delim,
					 o->delimlen) : NULL;
		if (a.r->n == limit) {
			a.r->truncated = 1;
			break;
		}
		if (d) {
			size_t cplen = (size_t)(d - key) + o->delimlen;

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
	store__bucket_unref(s, b);
	if (rc) {
		store_list_result_free(a.r);
		return rc;
	}
	*out = a.r;
	return 0;
}
