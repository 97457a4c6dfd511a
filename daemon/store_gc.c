// SPDX-License-Identifier: Apache-2.0
/*
 * store_gc: garbage (see store_int.h).
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
#include "store_int.h"
#include "uring.h"
#include "strata/error.h"
#include "banned.h"

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

		if (!seg || !store__seg_may_drop(s, seg))
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
		rc = store__round_doom(s->committing, seg);
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
		rc = store__seg_account(s, ib, mv->dst->id, mc.rec_len, 1);
		if (!rc)
			rc = store__seg_account(s, ib, j->src->id,
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
			store__seg_unpin(s, j->moves[i].dst);
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
	rc = store__active_segment(s, j->src->tier, mv->rec_len, &dst);
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
	store__seg_unpin(s, j->src);
	j->mut.kind = MUT_MOVE;
	j->mut.build = build_move;
	j->mut.done = move_done;
	store__mutation_queue(s, &j->mut);
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
		/* The length comes off the disk: a record never holds more
		 * than its plaintext, so this bounds the buffer below. */
		if (mc.rec_len < RECORD_HDR_LEN ||
		    mc.rec_len > record_bound(mc.raw_len)) {
			s->st.corrupt++;
			log_err("store", "compaction: bad record length in a chunk entry of segment %" PRIx64,
				src->id);
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
	store__maybe_closed(s);
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

	if (sc->err || !store__seg_may_drop(s, seg))
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
	store__mutation_queue(s, &j->mut);
	return 0;
}

void store__gc_timer_cb(uv_timer_t *t)
{
	struct store *s = t->data;

	if (!s->gc_running && !s->closing)
		store_compact(s, s->o.gc_dead_pct, NULL, NULL);
}
