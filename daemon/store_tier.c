// SPDX-License-Identifier: Apache-2.0
/*
 * store_tier: placement and movement between the hot and the cold tier
 * (see store_int.h, ARCHITECTURE.md "Tiers").
 *
 *   placement  new records go hot; cold when hot is at its capacity
 *              (spill); ENOSPC only when cold is full too
 *   demotion   above the high watermark, the mover takes the coldest sealed
 *              hot segment (least recently read; never-read segments by
 *              age) and moves its live records cold, one segment at a time,
 *              until usage is under the low watermark
 *   promotion  a chunk read from cold promote_reads times within
 *              promote_window (or read by a prestaging plan) is queued and
 *              moved hot while hot stays under the low watermark
 *   prestaging a hint is a plan of objects; the node reads up to
 *              prestage_ahead objects (and half the cache budget) ahead of
 *              the reader into the chunk cache, queueing cold chunks for
 *              promotion; a plan goes when the reader passes its end or
 *              leaves it idle for PLAN_IDLE_MS
 *   emulation  a test knob: a tier's reads may get a fixed added latency
 *              and a bandwidth cap, so a slow "HDD" can be emulated anywhere
 *
 * Moves run one job at a time through store_move.c (copy, sync, switch
 * the index entry atomically, then free), paced to mover_rate bytes/s.
 * Heat lives in memory: after a restart, segment ids order the hot tier
 * (older is colder) and promotion counts start over.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "log.h"
#include "meta.h"
#include "segment.h"
#include "store.h"
#include "store_int.h"
#include "uring.h"
#include "strata/error.h"
#include "banned.h"

#define HEAT_SLOTS 4096u		/* cold-read counters (power of 2) */
#define HEAT_PROBE 4
#define PROMO_MAX 1024			/* queued promotions */
#define PROMO_JOB_MAX 256		/* chunks per promotion job */
#define PLAN_MAX 64			/* live prestaging plans */
#define PLAN_BYTES_MAX (16u << 20)	/* key bytes held by all plans */
#define PLAN_IDLE_MS 60000
#define PRESTAGE_INFLIGHT 32		/* objects being prestaged at once */
#define PRESTAGE_SCAN 64		/* how far past the cursor a read may
					 * land and still count as progress */

struct heat_ent {
	uint8_t ckey[META_CHUNKKEY_LEN];
	uint32_t count;			/* 0: free slot */
	uint64_t first_ms;
};

struct plan_item {
	char *key;
	size_t keylen;
	uint64_t size;			/* known once issued */
};

struct plan {
	struct plan *next;
	struct tiers *t;
	char bucket[META_BUCKET_MAX + 1];
	uint64_t bid;
	struct plan_item *items;
	size_t n, cursor, issued;
	uint64_t ahead_bytes;		/* sizes of [cursor, issued) */
	uint64_t touched_ms;
	size_t bytes;			/* key bytes held */
	unsigned inflight;
	bool dead;
};

struct prestage_get {
	struct plan *p;
};

struct emu_read {
	uv_timer_t timer;
	struct store *s;
	struct uring_req req;
	struct uring_req *orig;
	uring_cb cb;
	ssize_t res;
	uint64_t ready_ns;
};

enum mover_state { MOVER_IDLE, MOVER_DEMOTE, MOVER_PROMOTE, MOVER_LIFECYCLE };

struct tiers {
	struct store *s;
	uv_timer_t tick;
	struct deferred kick;
	bool kick_pending;
	uint64_t capacity[STORE_TIERS];
	uint64_t fs_free[STORE_TIERS];	/* free on its file systems */
	bool demoting;			/* between high and low watermark */
	bool cold_full;			/* no room for moves to cold (logged) */
	uint64_t cold_free;		/* ... with this much free then */
	enum mover_state state;
	struct move_job job;
	uint64_t demote_src_id;		/* while state is MOVER_DEMOTE */
	uint64_t emu_busy_ns[STORE_TIERS];
	unsigned emu_open;
	struct heat_ent *heat;
	uint8_t (*promo)[META_CHUNKKEY_LEN];	/* chunks to go hot */
	size_t npromo;
	uint8_t (*lcq)[META_CHUNKKEY_LEN];	/* chunks to go cold (rules) */
	size_t nlcq;
	struct plan *plans;
	unsigned nplans;
	size_t plan_bytes;
	unsigned prestage_inflight;
	unsigned handles;
	uint64_t last_lifecycle_ms;
};

static struct tiers *T(struct store *s)
{
	return s->tiers;
}

uint64_t store__clock_ms(struct store *s)
{
	if (s->o.clock_ms)
		return s->o.clock_ms(s->o.clock_arg);
	return store__now_ms();
}

/* Monotonic ms for heat and plan idleness. */
static uint64_t mono_ms(struct store *s)
{
	return uv_now(s->loop) + 1;	/* 0 means "found at open" */
}

/* ---- capacity ---- */

/* What a tier directory's file system says: the test hook or fstatvfs. */
static int tier_statvfs(struct store *s, int dirfd, struct statvfs *sv)
{
	if (s->o.statvfs)
		return s->o.statvfs(s->o.statvfs_arg, dirfd, sv);
	return fstatvfs(dirfd, sv) < 0 ? -errno : 0;
}

/*
 * A tier's capacity: the configured one, or the bytes its segments use plus
 * what its file systems have free beyond a reserve of one segment each.
 * Puts stop at the capacity, so the reserve stays free for compaction: it
 * must copy a sparse segment's live records out before the segment can be
 * freed, and without room for that copy a tier that puts filled to the
 * last byte could not get its space back after deletes.  fs_free is the
 * free space itself, reserve included (what compaction may use).
 */
static void refresh_capacity(struct tiers *t)
{
	struct store *s = t->s;

	for (int k = 0; k < STORE_TIERS; k++) {
		uint64_t freeb = 0, avail = 0;
		unsigned long seen[STORE_MAX_TIER_DIRS];
		unsigned nseen = 0;

		/* Each file system counted once. */
		for (unsigned d = 0; d < s->segs.ndirs[k]; d++) {
			struct statvfs sv;
			uint64_t f;
			bool dup = false;

			if (tier_statvfs(s, s->segs.dirfds[k][d], &sv))
				continue;
			for (unsigned i = 0; i < nseen; i++)
				dup |= seen[i] == sv.f_fsid;
			if (dup)
				continue;
			seen[nseen++] = sv.f_fsid;
			f = (uint64_t)sv.f_bavail * sv.f_frsize;
			freeb += f;
			avail += f > s->o.segment_size ?
				 f - s->o.segment_size : 0;
		}
		t->fs_free[k] = freeb;
		if (s->o.tier[k].capacity)
			t->capacity[k] = s->o.tier[k].capacity;
		else
			t->capacity[k] = s->segs.ndirs[k] ?
					 s->segs.used[k] + avail : 0;
	}
}

/*
 * Segments of a tier without a configured capacity are capped at an eighth
 * of its smallest file system (as a configured capacity caps them), so that
 * the reserve of one segment stays a small part of a small disk.
 */
static void cap_segment_size(struct tiers *t)
{
	struct store *s = t->s;

	for (int k = 0; k < STORE_TIERS; k++) {
		if (s->o.tier[k].capacity)
			continue;
		for (unsigned d = 0; d < s->segs.ndirs[k]; d++) {
			struct statvfs sv;
			uint64_t eighth;

			if (tier_statvfs(s, s->segs.dirfds[k][d], &sv))
				continue;
			eighth = (uint64_t)sv.f_blocks * sv.f_frsize / 8;
			if (eighth < (1u << 20))
				eighth = 1u << 20;
			if (s->o.segment_size > eighth)
				s->o.segment_size = eighth;
		}
	}
}

bool store__tier_room(struct store *s, uint8_t tier, uint64_t bytes)
{
	struct tiers *t = T(s);
	/* Records of 1 MiB and more are padded to 4 KiB on disk; a new
	 * segment costs its header. */
	uint64_t need = bytes + bytes / 64 + SEGMENT_HDR_LEN + (64u << 10);

	refresh_capacity(t);
	return need <= t->fs_free[tier];
}

static bool over_pct(struct store *s, int tier, uint64_t used, unsigned pct)
{
	return used * 100 > T(s)->capacity[tier] * pct;
}

static void tier_kick(struct store *s);

int store__put_tier(struct store *s, size_t len, uint8_t *tier)
{
	struct tiers *t = T(s);
	uint64_t hot = s->segs.used[STORE_TIER_HOT] + len;
	uint64_t cold = s->segs.used[STORE_TIER_COLD] + len;

	if (over_pct(s, STORE_TIER_HOT, hot, s->o.tier[STORE_TIER_HOT].high_pct))
		tier_kick(s);
	if (hot <= t->capacity[STORE_TIER_HOT]) {
		*tier = STORE_TIER_HOT;
		return 0;
	}
	if (s->segs.ndirs[STORE_TIER_COLD] &&
	    cold <= t->capacity[STORE_TIER_COLD]) {
		*tier = STORE_TIER_COLD;
		s->st.spilled_bytes += len;
		return 0;
	}
	if (!s->st.enospc++)
		log_err("store", "no space: hot tier %" PRIu64 "/%" PRIu64
			" bytes, cold tier %" PRIu64 "/%" PRIu64 " bytes",
			s->segs.used[STORE_TIER_HOT],
			t->capacity[STORE_TIER_HOT],
			s->segs.used[STORE_TIER_COLD],
			t->capacity[STORE_TIER_COLD]);
	return -ENOSPC;
}

/* ---- emulated slow reads (test knob) ---- */

static void emu_closed(uv_handle_t *h)
{
	struct emu_read *e = h->data;
	struct tiers *t = T(e->s);

	t->emu_open--;
	free(e);
	store__maybe_closed(t->s);
}

static void emu_deliver(struct emu_read *e)
{
	e->cb(e->orig, e->res);
	uv_close((uv_handle_t *)&e->timer, emu_closed);
}

static void emu_timer_cb(uv_timer_t *h)
{
	emu_deliver(h->data);
}

static void emu_read_cb(struct uring_req *req, ssize_t res)
{
	struct emu_read *e = req->data;
	uint64_t now = uv_hrtime();

	e->res = res;
	if (now >= e->ready_ns) {
		emu_deliver(e);
		return;
	}
	uv_timer_start(&e->timer, emu_timer_cb,
		       (e->ready_ns - now + 999999) / 1000000, 0);
}

int store__tier_read(struct store *s, struct segment *seg,
		     struct uring_req *req, void *buf, size_t len,
		     uint64_t off, uring_cb cb)
{
	const struct store_tier_opts *to = &s->o.tier[seg->tier];
	struct tiers *t = T(s);
	struct emu_read *e;
	uint64_t now, start, ready;
	int rc;

	if (!to->read_delay_us && !to->read_bw)
		return uring_read(s->ring, req, seg->fd, buf, len, off, cb);
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	/* Latency overlaps between reads; bandwidth is one shared pipe. */
	now = uv_hrtime();
	ready = now + (uint64_t)to->read_delay_us * 1000;
	if (to->read_bw) {
		start = t->emu_busy_ns[seg->tier] > now ?
			t->emu_busy_ns[seg->tier] : now;
		t->emu_busy_ns[seg->tier] = start +
			(uint64_t)len * 1000000000ull / to->read_bw;
		if (t->emu_busy_ns[seg->tier] > ready)
			ready = t->emu_busy_ns[seg->tier];
	}
	e->s = s;
	e->orig = req;
	e->cb = cb;
	e->ready_ns = ready;
	e->req.data = e;
	e->req.inject = req->inject;
	e->req.async = req->async;
	uv_timer_init(s->loop, &e->timer);
	e->timer.data = e;
	t->emu_open++;
	rc = uring_read(s->ring, &e->req, seg->fd, buf, len, off, emu_read_cb);
	if (rc)
		uv_close((uv_handle_t *)&e->timer, emu_closed);
	return rc;
}

/* ---- heat and promotion candidates ---- */

/* Queue a chunk once; false when the queue is full. */
static bool queue_push(struct tiers *t, uint8_t (*q)[META_CHUNKKEY_LEN],
		       size_t *n, const uint8_t ckey[META_CHUNKKEY_LEN])
{
	for (size_t i = 0; i < *n; i++)
		if (!memcmp(q[i], ckey, META_CHUNKKEY_LEN))
			return true;
	if (*n == PROMO_MAX)
		return false;	/* asked again later (reads, the pass) */
	memcpy(q[(*n)++], ckey, META_CHUNKKEY_LEN);
	tier_kick(t->s);
	return true;
}

static void promo_push(struct tiers *t, const uint8_t ckey[META_CHUNKKEY_LEN])
{
	(void)queue_push(t, t->promo, &t->npromo, ckey);
}

bool store__lifecycle_queue_cold(struct store *s,
				 const uint8_t ckey[META_CHUNKKEY_LEN])
{
	struct tiers *t = T(s);

	if (!s->segs.ndirs[STORE_TIER_COLD] || t->cold_full)
		return true;	/* nowhere to go: nothing to wait for */
	return queue_push(t, t->lcq, &t->nlcq, ckey);
}

static void count_cold_read(struct tiers *t, const uint8_t ckey[META_CHUNKKEY_LEN])
{
	struct store *s = t->s;
	uint64_t now = mono_ms(s);
	uint32_t h = (uint32_t)meta_get_be64(ckey + 8); /* ids are hashes */
	struct heat_ent *victim = NULL;

	for (unsigned i = 0; i < HEAT_PROBE; i++) {
		struct heat_ent *e = &t->heat[(h + i) & (HEAT_SLOTS - 1)];

		if (e->count && !memcmp(e->ckey, ckey, META_CHUNKKEY_LEN)) {
			if (now - e->first_ms > s->o.promote_window_ms) {
				e->count = 0;
				e->first_ms = now;
			}
			if (++e->count >= s->o.promote_reads) {
				e->count = 0;
				promo_push(t, ckey);
			}
			return;
		}
		if (!victim || !e->count ||
		    (victim->count && e->first_ms < victim->first_ms))
			victim = e;
	}
	memcpy(victim->ckey, ckey, META_CHUNKKEY_LEN);
	victim->count = 1;
	victim->first_ms = now;
	if (s->o.promote_reads <= 1) {
		victim->count = 0;
		promo_push(t, ckey);
	}
}

/* A chunk is being read from seg: the segment is warm again; a read from
 * cold counts towards promotion, or, for prestaging, promotes at once. */
void store__tier_note_read(struct store *s, struct segment *seg,
			   const uint8_t ckey[META_CHUNKKEY_LEN], bool prestage)
{
	seg->atime_ms = mono_ms(s);
	if (seg->tier != STORE_TIER_COLD)
		return;
	if (prestage)
		promo_push(T(s), ckey);
	else
		count_cold_read(T(s), ckey);
}

/* ---- the mover ---- */

struct pick {
	struct store *s;
	struct segment *best;
};

static void pick_coldest(void *arg, struct segment *seg)
{
	struct pick *p = arg;
	struct store *s = p->s;

	if (seg->tier != STORE_TIER_HOT || !seg->sealed || seg->doomed ||
	    seg->compacting || seg->writes || s->active[seg->tier] == seg)
		return;
	if (!p->best || seg->atime_ms < p->best->atime_ms ||
	    (seg->atime_ms == p->best->atime_ms && seg->id < p->best->id))
		p->best = seg;
}

static uint64_t cold_free(struct tiers *t)
{
	uint64_t used = t->s->segs.used[STORE_TIER_COLD];

	return t->capacity[STORE_TIER_COLD] > used ?
	       t->capacity[STORE_TIER_COLD] - used : 0;
}

/* Nothing more fits in cold: say so once, until cold has more room. */
static void cold_full(struct tiers *t)
{
	struct store *s = t->s;

	if (!t->cold_full)
		log_err("store", "tier mover: the cold tier is full (%" PRIu64
			"/%" PRIu64 " bytes): nothing more goes cold until"
			" space is freed", s->segs.used[STORE_TIER_COLD],
			t->capacity[STORE_TIER_COLD]);
	t->cold_full = true;
	t->cold_free = cold_free(t);
}

static void mover_done(struct move_job *j, int status)
{
	struct tiers *t = container_of(j, struct tiers, job);
	struct store *s = t->s;
	bool failed = j->failed;

	if (failed) {
		log_warn("store", "tier mover: %zu of %zu chunks not moved: %s",
			 j->failed, j->n, strata_strerror(j->error));
	}
	if (status) {
		log_warn("store", "tier mover: %s", strata_strerror(status));
	} else if (t->state == MOVER_DEMOTE) {
		s->st.demoted_chunks += j->moved;
		s->st.demoted_bytes += j->moved_bytes;
	} else if (t->state == MOVER_LIFECYCLE) {
		s->st.lifecycle_cold += j->moved;
		s->st.demoted_chunks += j->moved;
		s->st.demoted_bytes += j->moved_bytes;
	} else {
		s->st.promoted_chunks += j->moved;
		s->st.promoted_bytes += j->moved_bytes;
	}
	/* A segment with nothing live left but not freed (it was never
	 * switched because nothing moved) must not be picked again and
	 * again: stamp it, and let compaction drop it. */
	if (t->state == MOVER_DEMOTE) {
		struct segment *seg = segtab_find(&s->segs, t->demote_src_id);

		if (seg && !seg->doomed) {
			seg->atime_ms = mono_ms(s);
			if (!s->gc_running && !s->closing)
				store_compact(s, s->o.gc_dead_pct, NULL, NULL);
		}
	}
	store__move_reset(j);
	/* A lifecycle pass waiting for room in the queue goes on. */
	if (t->state == MOVER_LIFECYCLE && !t->nlcq)
		store__lifecycle_resume(s);
	t->state = MOVER_IDLE;
	s->ops--;
	if (s->closing) {
		store__maybe_closed(s);
		return;
	}
	/* Go on at once after progress; after failures (a full or
	 * failing disk), at the next tick, not in a tight loop. */
	if (status == 0 && !failed)
		tier_kick(s);
}

static bool start_demotion(struct tiers *t)
{
	struct store *s = t->s;
	struct pick p = { .s = s };
	uint64_t planned = 0;
	bool full = false;
	int rc;

	if (t->cold_full)
		return false;	/* until cold has more room */
	segtab_foreach(&s->segs, pick_coldest, &p);
	if (!p.best) {
		/* Everything hot is in the active segment: seal it so that
		 * it can go next time. */
		struct segment *a = s->active[STORE_TIER_HOT];

		if (a && !a->writes && a->size > SEGMENT_HDR_LEN) {
			segment_seal(a);
			s->active[STORE_TIER_HOT] = NULL;
			tier_kick(s);
		}
		return false;
	}
	memset(&t->job, 0, sizeof(t->job));
	t->job.s = s;
	t->job.dst_tier = STORE_TIER_COLD;
	t->job.throttle = true;
	t->job.mark = p.best;
	t->job.done = mover_done;
	rc = store__move_add_segment(&t->job, p.best);
	if (rc) {
		store__move_reset(&t->job);
		log_warn("store", "tier mover: %s", strata_strerror(rc));
		return false;
	}
	/* Cold has its capacity too: demote only what fits (a new
	 * segment's header included), or nothing.  (A segment with
	 * nothing live still goes through: the job frees it.) */
	for (size_t i = 0; i < t->job.n; i++) {
		planned += t->job.items[i].rec_len;
		if (s->segs.used[STORE_TIER_COLD] + SEGMENT_HDR_LEN + planned >
		    t->capacity[STORE_TIER_COLD]) {
			full = true;
			t->job.n = i;
			break;
		}
	}
	if (full && !t->job.n) {
		store__move_reset(&t->job);
		cold_full(t);
		return false;
	}
	t->demote_src_id = p.best->id;
	t->state = MOVER_DEMOTE;
	s->ops++;
	store__move_start(&t->job);
	return true;
}

/*
 * Move queued chunks to dst (promotion: hot, while hot stays under its low
 * watermark; lifecycle: cold, while cold has room).  Chunks no longer in
 * the source tier are dropped from the queue.
 */
static bool start_queue_job(struct tiers *t, uint8_t (*q)[META_CHUNKKEY_LEN],
			    size_t *nq, uint8_t dst, enum mover_state state)
{
	struct store *s = t->s;
	uint8_t src = dst == STORE_TIER_HOT ? STORE_TIER_COLD : STORE_TIER_HOT;
	uint64_t room, planned = 0;
	size_t i;
	int rc = 0;

	if (!*nq)
		return false;
	room = dst == STORE_TIER_HOT ?
	       t->capacity[dst] * s->o.tier[dst].low_pct / 100 :
	       t->capacity[dst];
	memset(&t->job, 0, sizeof(t->job));
	t->job.s = s;
	t->job.dst_tier = dst;
	t->job.throttle = true;
	t->job.done = mover_done;
	for (i = 0; i < *nq && t->job.n < PROMO_JOB_MAX; i++) {
		struct meta_chunk mc;
		struct segment *seg;
		uint8_t *val;
		size_t vlen;

		if (index_get(s->ix, INDEX_CF_CHUNKS, q[i], META_CHUNKKEY_LEN,
			      &val, &vlen))
			continue;
		rc = meta_chunk_decode(val, vlen, &mc);
		free(val);
		if (rc) {
			rc = 0;
			continue;
		}
		seg = segtab_find(&s->segs, mc.seg);
		if (!seg || seg->tier != src || seg->doomed ||
		    mc.rec_len < RECORD_HDR_LEN ||
		    mc.rec_len > record_bound(mc.raw_len))
			continue;
		if (s->segs.used[dst] + planned + mc.rec_len > room)
			break;		/* no room: keep the rest queued */
		rc = store__move_add(&t->job, seg, mc.off, mc.rec_len, q[i]);
		if (rc)
			break;
		planned += mc.rec_len;
	}
	if (!rc && !t->job.n && i < *nq && dst == STORE_TIER_COLD) {
		/* Not one more chunk fits in cold: the lifecycle pass that
		 * waits for room in this queue would wait for ever, and the
		 * rules after it (expiry among them) with it.  Drop the
		 * queue; the next pass finds those chunks hot again. */
		cold_full(t);
		i = *nq;
		store__lifecycle_resume(s);
	}
	memmove(q, q + i, (*nq - i) * sizeof(*q));
	*nq -= i;
	if (rc || !t->job.n) {
		store__move_reset(&t->job);
		return false;
	}
	t->state = state;
	s->ops++;
	store__move_start(&t->job);
	return true;
}

static void plans_expire(struct tiers *t);
static void lifecycle_maybe_run(struct tiers *t);

static void mover_step(struct tiers *t)
{
	struct store *s = t->s;
	uint64_t hot;

	if (s->closing)
		return;
	plans_expire(t);
	lifecycle_maybe_run(t);
	if (t->state != MOVER_IDLE)
		return;
	refresh_capacity(t);
	if (t->cold_full && cold_free(t) > t->cold_free)
		t->cold_full = false;	/* space was freed: try again */
	hot = s->segs.used[STORE_TIER_HOT];
	if (s->segs.ndirs[STORE_TIER_COLD]) {
		if (over_pct(s, STORE_TIER_HOT, hot,
			     s->o.tier[STORE_TIER_HOT].high_pct))
			t->demoting = true;
		else if (!over_pct(s, STORE_TIER_HOT, hot,
				   s->o.tier[STORE_TIER_HOT].low_pct))
			t->demoting = false;
	} else {
		t->demoting = false;
	}
	if (t->demoting && start_demotion(t))
		return;
	if (start_queue_job(t, t->lcq, &t->nlcq, STORE_TIER_COLD,
			    MOVER_LIFECYCLE))
		return;
	if (!t->demoting)
		start_queue_job(t, t->promo, &t->npromo, STORE_TIER_HOT,
				MOVER_PROMOTE);
}

static void tick_cb(uv_timer_t *h)
{
	mover_step(h->data);
}

static void kick_cb(void *arg)
{
	struct tiers *t = arg;

	t->kick_pending = false;
	mover_step(t);
}

static void tier_kick(struct store *s)
{
	struct tiers *t = T(s);

	if (!t || t->kick_pending || s->closing)
		return;
	t->kick_pending = true;
	store__defer(s, &t->kick, kick_cb, t);
}

/* ---- prestaging ---- */

static void plan_free(struct tiers *t, struct plan *p)
{
	struct plan **pp;

	for (pp = &t->plans; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			t->nplans--;
			break;
		}
	}
	for (size_t i = 0; i < p->n; i++)
		free(p->items[i].key);
	t->plan_bytes -= p->bytes;
	free(p->items);
	free(p);
}

/* Drop a plan now, or once its reads in flight are back. */
static void plan_kill(struct tiers *t, struct plan *p)
{
	p->dead = true;
	if (!p->inflight)
		plan_free(t, p);
}

static void prestage_pump(struct tiers *t);

static int prestage_sink(void *arg, const void *buf, size_t len)
{
	(void)arg;
	(void)buf;
	(void)len;
	return 0;		/* the chunk cache keeps what was read */
}

static void prestage_done(void *arg, int status)
{
	struct prestage_get *pg = arg;
	struct plan *p = pg->p;
	struct tiers *t = p->t;

	if (status == 0)
		t->s->st.prestaged_objects++;
	t->prestage_inflight--;
	p->inflight--;
	free(pg);
	if (p->dead && !p->inflight)
		plan_free(t, p);
	prestage_pump(t);
}

static bool prestage_one(struct tiers *t, struct plan *p)
{
	struct store *s = t->s;
	struct plan_item *it = &p->items[p->issued];
	struct store_object_info info;
	struct prestage_get *pg;
	int rc;

	pg = malloc(sizeof(*pg));
	if (!pg)
		return false;
	pg->p = p;
	rc = store__get(s, p->bucket, it->key, it->keylen, 0, UINT64_MAX,
			&info, prestage_sink, prestage_done, pg, NULL, true);
	p->issued++;
	if (rc) {
		free(pg);	/* gone meanwhile: nothing to stage */
		return true;
	}
	it->size = info.size;
	p->ahead_bytes += info.size;
	p->inflight++;
	t->prestage_inflight++;
	return true;
}

static void prestage_pump(struct tiers *t)
{
	struct store *s = t->s;
	struct cache_stats cs;
	uint64_t budget;
	bool progress = true;

	cache_get_stats(s->cache, &cs);
	budget = cs.budget / 2;

	if (s->closing || !budget)
		return;
	/* Round-robin over the plans, one object each per pass. */
	while (progress && t->prestage_inflight < PRESTAGE_INFLIGHT) {
		progress = false;
		for (struct plan *p = t->plans; p &&
		     t->prestage_inflight < PRESTAGE_INFLIGHT; p = p->next) {
			if (p->dead || p->issued >= p->n ||
			    p->issued >= p->cursor + s->o.prestage_ahead ||
			    p->ahead_bytes >= budget)
				continue;
			if (prestage_one(t, p))
				progress = true;
		}
	}
}

static void plans_expire(struct tiers *t)
{
	uint64_t now = mono_ms(t->s);
	struct plan *p, *next;

	for (p = t->plans; p; p = next) {
		next = p->next;
		if (!p->dead && now - p->touched_ms > PLAN_IDLE_MS)
			plan_kill(t, p);
	}
}

void store__tier_note_get(struct store *s, uint64_t bid, const char *key,
			  size_t keylen)
{
	struct tiers *t = T(s);
	struct plan *p, *next;
	bool moved = false;

	for (p = t->plans; p; p = next) {
		size_t end;

		next = p->next;
		if (p->dead || p->bid != bid)
			continue;
		end = p->cursor + PRESTAGE_SCAN + s->o.prestage_ahead;
		if (end > p->n)
			end = p->n;
		for (size_t i = p->cursor; i < end; i++) {
			struct plan_item *it = &p->items[i];

			if (it->keylen != keylen || memcmp(it->key, key, keylen))
				continue;
			/* The reader is at i: everything before is done. */
			for (size_t k = p->cursor; k <= i; k++)
				if (k < p->issued)
					p->ahead_bytes -= p->items[k].size;
			p->cursor = i + 1;
			if (p->issued < p->cursor)
				p->issued = p->cursor;
			p->touched_ms = mono_ms(s);
			moved = true;
			break;
		}
		if (p->cursor >= p->n)
			plan_kill(t, p);
	}
	if (moved)
		prestage_pump(t);
}

int store_hint(struct store *s, const char *bucket, const char *const *keys,
	       const size_t *lens, size_t n)
{
	struct tiers *t = T(s);
	struct bucket *b;
	struct plan *p;
	int rc;

	if (s->closing)
		return STRATA_ECLOSING;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		rc = meta_check_key(keys[i], lens[i]);
		if (rc)
			return rc;
	}
	rc = store__bucket_get(s, bucket, &b);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->items = calloc(n, sizeof(*p->items)))) {
		free(p);
		store__bucket_unref(s, b);
		return -ENOMEM;
	}
	p->t = t;
	p->bid = b->id;
	snprintf(p->bucket, sizeof(p->bucket), "%s", b->name);
	store__bucket_unref(s, b);
	for (size_t i = 0; i < n; i++) {
		p->items[i].key = malloc(lens[i] ? lens[i] : 1);
		if (!p->items[i].key) {
			p->n = i;
			t->plan_bytes += p->bytes;	/* plan_free takes it */
			plan_free(t, p);	/* not linked yet: just frees */
			return -ENOMEM;
		}
		memcpy(p->items[i].key, keys[i], lens[i]);
		p->items[i].keylen = lens[i];
		p->bytes += lens[i];
	}
	p->n = n;
	p->touched_ms = mono_ms(s);
	t->plan_bytes += p->bytes;
	/* The least recently used plans make room for the new one: at most
	 * PLAN_MAX plans and PLAN_BYTES_MAX bytes of keys. */
	while (t->plans && (t->nplans >= PLAN_MAX ||
			    t->plan_bytes > PLAN_BYTES_MAX)) {
		struct plan *old = NULL, *q;

		for (q = t->plans; q; q = q->next)
			if (!q->dead && (!old || q->touched_ms < old->touched_ms))
				old = q;
		if (!old)
			break;		/* only dying plans: they go soon */
		plan_kill(t, old);
	}
	p->next = t->plans;
	t->plans = p;
	t->nplans++;
	s->st.hints++;
	prestage_pump(t);
	return 0;
}

/* ---- lifecycle (store_lifecycle.c has the rules) ---- */

static void lifecycle_maybe_run(struct tiers *t)
{
	struct store *s = t->s;
	uint64_t now = store__clock_ms(s);

	if (!s->o.lifecycle_interval_ms ||
	    now - t->last_lifecycle_ms < s->o.lifecycle_interval_ms)
		return;
	t->last_lifecycle_ms = now;
	store__lifecycle_run(s, now);
}

/* ---- stats, setup ---- */

void store__tier_stats(struct store *s, struct store_stats *st)
{
	struct tiers *t = T(s);

	refresh_capacity(t);
	for (int k = 0; k < STORE_TIERS; k++) {
		st->tier_used[k] = s->segs.used[k];
		st->tier_capacity[k] = t->capacity[k];
		st->tier_high_pct[k] = s->o.tier[k].high_pct;
		st->tier_low_pct[k] = s->o.tier[k].low_pct;
		st->tier_dirs[k] = s->segs.ndirs[k];
	}
	st->prestage_plans = t->nplans;
	st->promote_queue = t->npromo;
	st->mover_rate = s->o.mover_rate;
}

void store_set_mover_rate(struct store *s, uint64_t bytes_per_s)
{
	s->o.mover_rate = bytes_per_s;
	/* The pace owed at the old rate goes too: a move waiting it out
	 * (hours, after a rate of a few KiB/s) goes on at the new one. */
	s->mv_next_ns = 0;
	if (s->mv_waiting && !s->closing) {
		struct move_job *j = s->mv_waiting;

		uv_timer_stop(&s->mv_timer);
		s->mv_waiting = NULL;
		store__move_resume(j);
	}
}

void store_set_cache_budget(struct store *s, uint64_t bytes)
{
	s->o.cache_bytes = (int64_t)bytes;
	cache_set_budget(s->cache, (size_t)bytes);
}

void store_tier_kick(struct store *s)
{
	tier_kick(s);
}

bool store__tier_busy(struct store *s)
{
	struct tiers *t = T(s);

	return t && (t->emu_open || t->handles || t->prestage_inflight);
}

static void tier_handle_closed(uv_handle_t *h)
{
	struct tiers *t = h->data;

	t->handles--;
	store__maybe_closed(t->s);
}

int store__tier_init(struct store *s)
{
	struct tiers *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->heat = calloc(HEAT_SLOTS, sizeof(*t->heat));
	t->promo = calloc(PROMO_MAX, sizeof(*t->promo));
	t->lcq = calloc(PROMO_MAX, sizeof(*t->lcq));
	if (!t->heat || !t->promo || !t->lcq) {
		free(t->heat);
		free(t->promo);
		free(t->lcq);
		free(t);
		return -ENOMEM;
	}
	t->s = s;
	t->last_lifecycle_ms = store__clock_ms(s);
	s->tiers = t;
	cap_segment_size(t);
	refresh_capacity(t);
	uv_timer_init(s->loop, &t->tick);
	t->tick.data = t;
	uv_timer_start(&t->tick, tick_cb, s->o.mover_interval_ms,
		       s->o.mover_interval_ms);
	uv_unref((uv_handle_t *)&t->tick);
	t->handles = 1;
	return 0;
}

/* Stop the mover's timer; plans are dropped (reads in flight finish). */
void store__tier_close(struct store *s)
{
	struct tiers *t = T(s);
	struct plan *p, *next;

	if (!t)
		return;
	for (p = t->plans; p; p = next) {
		next = p->next;
		plan_kill(t, p);
	}
	if (t->handles && !uv_is_closing((uv_handle_t *)&t->tick)) {
		uv_timer_stop(&t->tick);
		uv_close((uv_handle_t *)&t->tick, tier_handle_closed);
	}
}

void store__tier_free(struct store *s)
{
	struct tiers *t = T(s);

	if (!t)
		return;
	while (t->plans)
		plan_free(t, t->plans);
	free(t->heat);
	free(t->promo);
	free(t->lcq);
	free(t);
	s->tiers = NULL;
}
