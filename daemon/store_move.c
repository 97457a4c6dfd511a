// SPDX-License-Identifier: Apache-2.0
/*
 * store_move: copy chunk records to another segment and switch the index
 * over (see store_int.h).  Compaction, demotion and promotion are all this:
 *
 *   COPY   [per item: read the record (uring, through the tier's read
 *           path), check its header, append it to the active segment of
 *           the destination tier; a window of MOVE_WINDOW, paced by the
 *           mover's rate when the job is throttled]
 *   SWITCH [MOVE mutation: repoint every chunk whose entry still names the
 *           old place; move the live accounting; an emptied source segment
 *           is doomed in the same batch]
 *   DONE   [job->done]
 *
 * The group-commit round that carries the MOVE mutation syncs the
 * destination segments before it commits the batch, so the index never
 * names bytes that are not durable.  A crash anywhere leaves either the old
 * or the new location in the index; the copy that is not referenced is
 * garbage for compaction.  Records are copied whole, never re-encrypted
 * (the AAD binds the chunk id, not its place).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "index.h"
#include "log.h"
#include "meta.h"
#include "record.h"
#include "segment.h"
#include "store.h"
#include "store_int.h"
#include "uring.h"
#include "strata/error.h"
#include "banned.h"

#define MOVE_WINDOW 2

static void move_more(struct move_job *j);

static int build_move(struct store *s, struct mutation *m,
		      struct index_batch *ib)
{
	struct move_job *j = container_of(m, struct move_job, mut);

	for (size_t i = 0; i < j->n; i++) {
		struct move_item *mv = &j->items[i];
		uint8_t v[META_CHUNK_LEN], skey[META_SEGCHUNKKEY_LEN], *val;
		struct meta_chunk mc;
		size_t vlen;
		int rc;

		if (mv->status || !mv->dst)
			continue;
		rc = index_batch_get(ib, INDEX_CF_CHUNKS, mv->ckey,
				     sizeof(mv->ckey), &val, &vlen);
		if (rc == -ENOENT) {
			mv->status = -ENOENT;
			continue;	/* died meanwhile: the copy is garbage */
		}
		if (rc)
			return rc;
		rc = meta_chunk_decode(val, vlen, &mc);
		free(val);
		if (rc)
			return rc;
		if (mc.seg != mv->src_id || mc.off != mv->off ||
		    mc.rec_len != mv->rec_len) {
			mv->status = -ESTALE;
			continue;	/* moved or replaced meanwhile */
		}
		mc.seg = mv->dst->id;
		mc.off = mv->dst_off;
		mc.tier = mv->dst->tier;
		meta_chunk_encode(&mc, v);
		index_batch_put(ib, INDEX_CF_CHUNKS, mv->ckey, sizeof(mv->ckey),
				v, sizeof(v));
		meta_segchunkkey(mv->src_id, mv->off, skey);
		index_batch_delete(ib, INDEX_CF_SEGCHUNKS, skey, sizeof(skey));
		meta_segchunkkey(mv->dst->id, mv->dst_off, skey);
		index_batch_put(ib, INDEX_CF_SEGCHUNKS, skey, sizeof(skey),
				mv->ckey, sizeof(mv->ckey));
		rc = store__seg_account(s, ib, mv->dst->id, mc.rec_len, 1);
		if (!rc)
			rc = store__seg_account(s, ib, mv->src_id,
						-(int64_t)mc.rec_len, -1);
		if (rc)
			return rc;
	}
	return 0;
}

static void move_switched(struct store *s, struct mutation *m)
{
	struct move_job *j = container_of(m, struct move_job, mut);

	j->moved_bytes = 0;
	j->moved = 0;
	j->failed = 0;
	j->error = 0;
	for (size_t i = 0; i < j->n; i++) {
		struct move_item *mv = &j->items[i];

		if (!m->status && !mv->status && mv->dst) {
			j->moved_bytes += mv->rec_len;
			j->moved++;
		}
		/* Gone or moved meanwhile, or given up at close, is no
		 * failure; a copy that could not be read or written is. */
		if (mv->status && mv->status != -ENOENT &&
		    mv->status != -ESTALE && mv->status != STRATA_ECLOSING) {
			if (!j->failed++)
				j->error = mv->status;
		}
		if (mv->dst)
			store__seg_unpin(s, mv->dst);
		mv->dst = NULL;
	}
	j->done(j, m->status);
}

static void item_end(struct move_item *mv, int status)
{
	struct move_job *j = mv->job;

	if (status)
		mv->status = status;
	free(mv->buf);
	mv->buf = NULL;
	j->inflight--;
	move_more(j);
}

static void move_write_cb(struct uring_req *req, ssize_t res)
{
	struct move_item *mv = req->data;
	struct store *s = mv->job->s;

	segment_write_done(mv->dst);
	if (res < 0 || (size_t)res != mv->rec_len) {
		/* A failed append: never append to that segment again. */
		segment_seal(mv->dst);
		if (s->active[mv->dst->tier] == mv->dst)
			s->active[mv->dst->tier] = NULL;
		if (!mv->job->write_err)
			mv->job->write_err = res < 0 ? (int)res : -EIO;
		item_end(mv, res < 0 ? (int)res : -EIO);
		return;
	}
	mv->dst->dirty = true;
	item_end(mv, 0);
}

static void move_read_cb(struct uring_req *req, ssize_t res)
{
	struct move_item *mv = req->data;
	struct move_job *j = mv->job;
	struct store *s = j->s;
	struct record_hdr h;
	struct segment *dst;
	int rc;

	store__seg_unpin(s, mv->src);
	mv->src = NULL;
	if (res != (ssize_t)mv->rec_len) {
		rc = res < 0 ? (int)res : STRATA_ECORRUPT;
		goto fail;
	}
	/* Never spread a damaged record. */
	rc = record_parse_header(mv->buf, &h);
	if (!rc && (size_t)RECORD_HDR_LEN + h.stored_len != mv->rec_len)
		rc = STRATA_ECORRUPT;
	if (rc)
		goto fail;
	rc = store__active_segment(s, j->dst_tier, mv->rec_len, &dst);
	if (rc) {
		if (!j->write_err)
			j->write_err = rc;
		goto fail;
	}
	mv->dst = dst;
	dst->pins++;
	mv->dst_off = dst->size;
	segment_grow(&s->segs, dst, mv->rec_len);
	dst->writes++;
	mv->req.inject = fault_hit(s->o.fault, FAULT_SEG_WRITE);
	rc = uring_write(s->ring, &mv->req, dst->fd, mv->buf, mv->rec_len,
			 mv->dst_off, move_write_cb);
	if (rc) {
		segment_write_done(dst);
		if (!j->write_err)
			j->write_err = rc;
		goto fail;
	}
	return;
fail:
	if (rc == STRATA_ECORRUPT) {
		s->st.corrupt++;
		log_err("store", "move: corrupt record in segment %" PRIx64
			" at %" PRIu64 "; left in place", mv->src_id, mv->off);
	}
	item_end(mv, rc);
}

/* Pace throttled jobs to the mover's rate: 0 to go now, or the delay. */
static uint64_t pace_ms(struct store *s, uint32_t len)
{
	uint64_t now = uv_hrtime();

	if (!s->o.mover_rate)
		return 0;
	if (s->mv_next_ns > now)
		return (s->mv_next_ns - now + 999999) / 1000000;
	s->mv_next_ns = now + (uint64_t)len * 1000000000ull / s->o.mover_rate;
	return 0;
}

static void pace_cb(uv_timer_t *t)
{
	struct store *s = t->data;
	struct move_job *j = s->mv_waiting;

	s->mv_waiting = NULL;
	if (j)
		move_more(j);
}

static void move_more(struct move_job *j)
{
	struct store *s = j->s;

	while (j->next < j->n && j->inflight < MOVE_WINDOW) {
		struct move_item *mv = &j->items[j->next];
		uint64_t wait;

		if (s->closing || j->write_err) {
			/* Give up the rest; nothing switches for them.  (A
			 * destination that failed a write, full or failing,
			 * would fail them too: no point reading them.) */
			for (; j->next < j->n; j->next++) {
				mv = &j->items[j->next];
				mv->status = s->closing ? STRATA_ECLOSING :
					     j->write_err;
				store__seg_unpin(s, mv->src);
				mv->src = NULL;
			}
			break;
		}
		if (j->throttle && (wait = pace_ms(s, mv->rec_len))) {
			if (!j->inflight) {
				s->mv_waiting = j;
				uv_timer_start(&s->mv_timer, pace_cb, wait, 0);
			}
			return;
		}
		j->next++;
		mv->job = j;
		mv->req.data = mv;
		mv->buf = malloc(mv->rec_len);
		if (!mv->buf) {
			mv->status = -ENOMEM;
			store__seg_unpin(s, mv->src);
			mv->src = NULL;
			continue;
		}
		mv->req.inject = fault_hit(s->o.fault, FAULT_SEG_READ);
		j->inflight++;
		if (store__tier_read(s, mv->src, &mv->req, mv->buf, mv->rec_len,
				     mv->off, move_read_cb)) {
			j->inflight--;
			mv->status = -ECANCELED;
			free(mv->buf);
			mv->buf = NULL;
			store__seg_unpin(s, mv->src);
			mv->src = NULL;
		}
	}
	if (j->inflight || j->next < j->n)
		return;
	/* Every copy is written (or failed): switch the index over.  The
	 * marked source may be doomed by this very batch once empty. */
	if (j->mark) {
		j->mark->compacting = false;
		store__seg_unpin(s, j->mark);
		j->mark = NULL;
	}
	j->mut.kind = MUT_MOVE;
	j->mut.status = 0;
	j->mut.build = build_move;
	j->mut.done = move_switched;
	store__mutation_queue(s, &j->mut);
}

void store__move_start(struct move_job *j)
{
	j->next = 0;
	j->inflight = 0;
	j->write_err = 0;
	for (size_t i = 0; i < j->n; i++) {
		j->items[i].src_id = j->items[i].src->id;
		j->items[i].src->pins++;
		j->items[i].dst = NULL;
		j->items[i].status = 0;
	}
	if (j->mark) {
		j->mark->compacting = true;
		j->mark->pins++;
	}
	move_more(j);
}

int store__move_add(struct move_job *j, struct segment *src, uint64_t off,
		    uint32_t rec_len, const uint8_t ckey[META_CHUNKKEY_LEN])
{
	struct move_item *mv;

	if (j->n == j->cap) {
		size_t n = j->cap ? j->cap * 2 : 64;

		mv = realloc(j->items, n * sizeof(*mv));
		if (!mv)
			return -ENOMEM;
		j->items = mv;
		j->cap = n;
	}
	mv = &j->items[j->n++];
	memset(mv, 0, sizeof(*mv));
	mv->src = src;
	mv->off = off;
	mv->rec_len = rec_len;
	memcpy(mv->ckey, ckey, META_CHUNKKEY_LEN);
	return 0;
}

void store__move_reset(struct move_job *j)
{
	free(j->items);
	j->items = NULL;
	j->n = j->cap = 0;
}

/* Add every live record of seg (per the index) to the job. */
int store__move_add_segment(struct move_job *j, struct segment *src)
{
	struct store *s = j->s;
	uint8_t lo[META_SEGKEY_LEN], hi[META_SEGKEY_LEN];
	struct index_iter *it;
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
		 * than its plaintext, so this bounds the buffer a move
		 * allocates. */
		if (mc.rec_len < RECORD_HDR_LEN ||
		    mc.rec_len > record_bound(mc.raw_len)) {
			s->st.corrupt++;
			log_err("store", "bad record length in a chunk entry of segment %" PRIx64,
				src->id);
			continue;
		}
		rc = store__move_add(j, src, mc.off, mc.rec_len, v);
		if (rc)
			break;
	}
	if (!rc)
		rc = index_iter_status(it);
	index_iter_free(it);
	return rc;
}

void store__move_resume(struct move_job *j)
{
	move_more(j);
}
