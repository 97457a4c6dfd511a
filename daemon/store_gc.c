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
 *            -> for each sparse segment: a move job (store_move.c) copies
 *               its live records to the tier's active segment and
 *               switches the index over; the old segment, empty then, is
 *               doomed in the same batch
 *            -> DONE [cb]
 */

struct sparse {
	uint64_t id, live;
};

struct gc_job {
	struct mutation mut;
	struct store *s;
	unsigned dead_pct;
	uint64_t *drop;
	struct sparse *sparse;
	size_t ndrop, nsparse, isparse;
	unsigned skipped;		/* sparse segments without room */
	struct move_job move;
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

static void compacted(struct move_job *mj, int status)
{
	struct gc_job *j = container_of(mj, struct gc_job, move);
	struct store *s = j->s;

	if (status) {
		j->error = status;
	} else {
		s->st.compacted_segments++;
		s->st.compacted_bytes += mj->moved_bytes;
	}
	store__move_reset(mj);
	gc_next(j);
}

/* Copy the live records of one segment within its tier, then free it. */
static int gc_compact_one(struct gc_job *j, struct segment *src)
{
	struct move_job *mj = &j->move;
	int rc;

	mj->s = j->s;
	mj->dst_tier = src->tier;
	mj->throttle = false;
	mj->mark = src;
	mj->done = compacted;
	rc = store__move_add_segment(mj, src);
	if (rc) {
		store__move_reset(mj);
		return rc;
	}
	store__move_start(mj);
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
		struct sparse *sp = &j->sparse[j->isparse++];
		struct segment *seg = segtab_find(&s->segs, sp->id);

		if (!seg || seg->doomed || !seg->sealed || seg->compacting ||
		    s->active[seg->tier] == seg)
			continue;
		/* A copy that cannot finish would only add garbage. */
		if (!store__tier_room(s, seg->tier, sp->live)) {
			if (!j->skipped++ && !s->gc_room_said)
				log_err("store", "compaction: segment %" PRIx64
					" has %" PRIu64 " live bytes and its "
					"tier not that much free space; "
					"skipped until there is",
					seg->id, sp->live);
			continue;
		}
		j->error = gc_compact_one(j, seg);
		if (!j->error)
			return;		/* continues in move_done */
	}
	s->gc_room_said = j->skipped > 0;
	gc_finish(j);
}

struct gc_scan {
	struct store *s;
	struct gc_job *j;
	size_t capdrop, capsparse;
	int err;
};

static int push_sparse(struct sparse **v, size_t *n, size_t *cap,
		       uint64_t id, uint64_t live)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct sparse *p = realloc(*v, nc * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = nc;
	}
	(*v)[(*n)++] = (struct sparse){ id, live };
	return 0;
}

/* Fewest live bytes first: the most space back for the least copying. */
static int by_live(const void *a, const void *b)
{
	const struct sparse *x = a, *y = b;

	return (x->live > y->live) - (x->live < y->live);
}

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
		sc->err = push_sparse(&sc->j->sparse, &sc->j->nsparse,
				      &sc->capsparse, seg->id, ms.live_bytes);
}

/*
 * Compaction takes sealed segments only; the active segment of a tier is
 * sealed here when its dead share is past dead_pct, so that a store whose
 * writes stopped after deletes gets that space back too (else it would
 * keep it until the segment fills up, or a restart).  No append may be
 * in flight into it; puts not yet committed pin it, which keeps it from
 * being dropped until they are.
 */
static void seal_dead_active(struct store *s, unsigned dead_pct)
{
	for (int t = 0; t < STORE_TIERS; t++) {
		struct segment *a = s->active[t];
		struct meta_segment ms = { 0 };
		uint8_t key[META_SEGKEY_LEN], *val;
		uint64_t body, dead;
		size_t vlen;
		int rc;

		if (!a || a->writes || a->size <= SEGMENT_HDR_LEN)
			continue;
		meta_segkey(a->id, key);
		rc = index_get(s->ix, INDEX_CF_SEGMENTS, key, sizeof(key), &val,
			       &vlen);
		if (rc == 0) {
			rc = meta_segment_decode(val, vlen, &ms);
			free(val);
		} else if (rc == -ENOENT) {
			/* Nothing committed to it: all dead, unless puts
			 * in flight (they pin it) are about to. */
			rc = a->pins ? -EBUSY : 0;
		}
		if (rc)
			continue;
		body = a->size - SEGMENT_HDR_LEN;
		dead = body > ms.live_bytes ? body - ms.live_bytes : 0;
		if (dead && dead * 100 >= (uint64_t)dead_pct * body) {
			segment_seal(a);
			s->active[t] = NULL;
		}
	}
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
	seal_dead_active(s, dead_pct);
	segtab_foreach(&s->segs, gc_scan_one, &sc);
	if (sc.err) {
		free(j->drop);
		free(j->sparse);
		free(j);
		return sc.err;
	}
	if (j->nsparse > 1)
		qsort(j->sparse, j->nsparse, sizeof(*j->sparse), by_live);
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
