// SPDX-License-Identifier: Apache-2.0
/*
 * store_int: what the store's files share, and nothing else includes.
 *
 * The store is one module behind store.h, in four files:
 *   store.c       open/close, buckets, the group-commit rounds, refcounts and
 *                 segment accounting, deletes, stats
 *   store_put.c   streamed puts: chunking, encoding, dedup, appends
 *   store_read.c  gets, stat, listing
 *   store_gc.c    dropping empty segments, compacting sparse ones
 * Internal functions shared between them are store__*; everything runs on
 * the store's loop thread unless a comment says otherwise.
 */
#ifndef STRATA_STORE_INT_H
#define STRATA_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cache.h"
#include "index.h"
#include "keys.h"
#include "meta.h"
#include "record.h"
#include "segment.h"
#include "store.h"
#include "uring.h"

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Chunks at most this big are encoded and decoded on the loop thread: a
 * thread-pool hop costs more than the work. */
#define INLINE_CODEC_MAX (64u << 10)
#define CODEC_POOL_MAX 8
#define BIGPOOL_MAX 8
#define GET_WINDOW_MAX 8
#define FORMAT_VERSION 1


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
	/* MUT_PUT, MUT_DELETE: the bucket whose objects it changes (its
	 * answer generation moves, store_answer_gen) */
	uint64_t bid;
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

/* ---- moving records between segments (store_move.c) ---- */

struct move_job;

struct move_item {
	struct segment *src;		/* pinned until its record is read */
	uint64_t src_id;
	uint64_t off;
	uint32_t rec_len;
	uint8_t ckey[META_CHUNKKEY_LEN];
	/* private */
	struct segment *dst;		/* pinned until the switch commits */
	uint64_t dst_off;
	uint8_t *buf;
	int status;			/* nonzero: not moved */
	struct uring_req req;
	struct move_job *job;
};

struct move_job {
	struct mutation mut;
	struct store *s;
	uint8_t dst_tier;
	bool throttle;			/* paced to opts.mover_rate */
	/* Held (compacting, pinned) for the copy, released before the
	 * switch so that the switch may free it once empty; may be NULL. */
	struct segment *mark;
	struct move_item *items;
	size_t n, cap, next, inflight;
	size_t moved;			/* out: records switched over */
	uint64_t moved_bytes;
	size_t failed;			/* out: records not copied (I/O) */
	int error;			/* ... the first one's error */
	int write_err;			/* a copy failed to land: stop */
	void (*done)(struct move_job *j, int status);
};

int store__move_add(struct move_job *j, struct segment *src, uint64_t off,
		    uint32_t rec_len, const uint8_t ckey[META_CHUNKKEY_LEN]);
int store__move_add_segment(struct move_job *j, struct segment *src);
/* Copy, then switch; done(j, status) runs once, on the loop. */
void store__move_start(struct move_job *j);
void store__move_reset(struct move_job *j);
/* Go on with a job that was waiting for its pace. */
void store__move_resume(struct move_job *j);

/* ---- tiers (store_tier.c) ---- */

/* Read from a segment through its tier's read path (which may add the
 * emulated latency and bandwidth of a slow device). */
int store__tier_read(struct store *s, struct segment *seg,
		     struct uring_req *req, void *buf, size_t len,
		     uint64_t off, uring_cb cb);
/* The tier a new record of len bytes goes to: hot, or cold when hot is
 * full.  STRATA_ENOSPC when neither has room. */
int store__put_tier(struct store *s, size_t len, uint8_t *tier);
/* Whether the tier's file systems have room for bytes of copied records
 * (compaction's check: puts leave it a reserve, see refresh_capacity). */
bool store__tier_room(struct store *s, uint8_t tier, uint64_t bytes);
/* A chunk is being read from seg (heat; promotion, at once when the read
 * is prestaging). */
void store__tier_note_read(struct store *s, struct segment *seg,
			   const uint8_t ckey[META_CHUNKKEY_LEN], bool prestage);
/* An object was read: advance prestaging plans that expected it. */
void store__tier_note_get(struct store *s, uint64_t bid, const char *key,
			  size_t keylen);
int store__tier_init(struct store *s);
void store__tier_close(struct store *s);
void store__tier_free(struct store *s);
bool store__tier_busy(struct store *s);
void store__tier_stats(struct store *s, struct store_stats *st);
uint64_t store__clock_ms(struct store *s);
/* store_get(), and for prestaging: no progress notes, no get counted. */
int store__get(struct store *s, const char *bucket, const char *key,
	       size_t keylen, uint64_t off, uint64_t len,
	       struct store_object_info *info, store_data_cb data_cb,
	       store_done_cb done_cb, void *arg, struct store_get **out,
	       bool prestage);
/* store_delete() of the version with HLC if_hlc only (0: any):
 * STRATA_ECHANGED when the object was written again meanwhile. */
int store__delete_if(struct store *s, const char *bucket, const char *key,
		     size_t keylen, uint64_t if_hlc, store_done_cb cb,
		     void *arg);
/* Apply every bucket's lifecycle rules as of now (store_lifecycle.c). */
void store__lifecycle_run(struct store *s, uint64_t now_ms);
/* The meta-family key of a bucket's lifecycle rules (store_lifecycle.c). */
#define STORE_LC_KEY_LEN 10
void store__lc_key(uint64_t bid, uint8_t key[STORE_LC_KEY_LEN]);
/* A bucket's rules as the meta family holds them (malloc'd, *len bytes;
 * NULL: no memory), and back: 0, STRATA_ECORRUPT (any length or rule
 * that does not check, bytes left over) or -ENOMEM.  Fuzzed. */
uint8_t *store__lc_encode(const struct store_lc_rule *rules, size_t n,
			  size_t *len);
int store__lc_decode(const uint8_t *v, size_t len, struct store_lc_rule **out,
		     size_t *n);
/* Go on with a pass that stopped early (store_lifecycle.c). */
void store__lifecycle_resume(struct store *s);
/* Queue a chunk to go cold; false when the queue is full. */
bool store__lifecycle_queue_cold(struct store *s,
				 const uint8_t ckey[META_CHUNKKEY_LEN]);

struct deferred {
	struct deferred *next;
	void (*fn)(void *arg);
	void *arg;
};

struct objmeta_slot;
void store__objmeta_free(struct store *s);

/*
 * The node-wide budget for chunk buffers of transfers in progress
 * (store_opts.transfer_bytes): read-ahead of gets, chunks of puts being
 * encoded and written.  A get or put that finds it spent waits in line
 * (FIFO) and is woken as buffers come back; gets paused for a slow
 * reader give back what they read ahead while anyone waits.  What it
 * counts is always either on its way back by itself (reads, encodes,
 * writes in flight; chunks delivered at once) or handed back on demand
 * (paused gets), so waiting never deadlocks.  Loop thread only.
 */
/* Chunks up to this size never wait for the budget (still counted): small
 * objects' latency does not depend on large transfers. */
#define XFER_SMALL (32u << 10)

struct xfer_wait {
	struct xfer_wait *prev, *next;
	bool queued;
	/* A prestaging read (store_tier.c): in line after every client's
	 * transfer, which never waits for it. */
	bool low;
	void (*wake)(struct xfer_wait *w);
};

/* Buffers counted against the budget (store__buf_alloc/free plus the
 * count). */
uint8_t *store__xbuf_alloc(struct store *s, size_t len, size_t *cap);
void store__xbuf_free(struct store *s, uint8_t *p, size_t cap);
/* A counted buffer handed elsewhere (the chunk cache): no longer counted. */
void store__xbuf_forget(struct store *s, size_t cap);
/* Whether w may take need more bytes now: nobody ahead of it in line (a
 * client's transfer counts no prestaging read as ahead) and
 * room left, or no more than a quarter of the budget counted (a chunk
 * larger than the rest, or than the whole budget, still goes; at most one
 * such at a time).  need 0 always may. */
bool store__xfer_admit(struct store *s, struct xfer_wait *w, size_t need);
/* Queue w (once; a woken waiter that still cannot go keeps its place at
 * the front) and ask paused gets to give their read-ahead back. */
void store__xfer_wait(struct store *s, struct xfer_wait *w);
/* Take w out of the line (a get or put that ends while waiting). */
void store__xfer_cancel(struct store *s, struct xfer_wait *w);
/* Give back what paused gets hold (store_read.c). */
void store__get_reclaim_paused(struct store *s);

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
	unsigned nbig_low;		/* fewest pooled since store_trim */
	size_t bigsize;
	/* transfer budget (struct xfer_wait) */
	uint64_t xfer_used;
	struct xfer_wait *xw_head, *xw_tail;
	struct xfer_wait *xw_low;	/* the first low one (they are last) */
	struct xfer_wait *xw_waking;	/* being woken by xfer_run */
	bool xw_requeued;		/* ... and queued itself again */
	bool xw_scheduled;
	struct deferred xw_d;
	uint64_t xfer_waits;		/* times a transfer waited */
	uint64_t xfer_given_back;	/* read-ahead dropped by get_reclaim */
	struct store_get *paused_head;	/* paused gets holding buffers */
	struct cache *cache;		/* plaintext chunks (cache.h) */
	/* Object index values read lately (store_read.c, "object lookups"):
	 * valid while objgen is what it was when they were read; every
	 * commit round bumps it. */
	struct objmeta_slot *objmeta;
	size_t objmeta_bytes;
	uint64_t objgen;
	/* store_answer_gen: bumped by commit rounds, read by any thread.
	 * A put or delete moves its bucket's slot; a bucket change (or
	 * anything else that may change what a GET answers) moves all. */
	_Atomic uint64_t ans_all;
	_Atomic uint64_t ans_bucket[STORE_ANSWER_SLOTS];
	uint64_t objmeta_hits;
	/* The segments' file system refused RWF_NOWAIT reads: gets read
	 * through io_uring only (store_read.c; loop thread only). */
	bool no_nowait;
	/* hybrid logical clock */
	uint64_t hlc_last;
	/* deferred callbacks */
	uv_idle_t idle;
	struct deferred *defer_head, **defer_tail;
	struct deferred kick, close_d;
	bool kick_pending;
	uv_timer_t gc_timer;
	bool gc_running;
	bool gc_room_said;		/* last gc run logged a skip for room */
	/* tiers (store_tier.c) and the mover's pace (store_move.c) */
	struct tiers *tiers;
	uv_timer_t mv_timer;
	uint64_t mv_next_ns;
	struct move_job *mv_waiting;
	struct deferred mv_wake;
	/* lifecycle passes (store_lifecycle.c) */
	struct {
		bool more;		/* a pass stopped early: go on */
		int stop;		/* ... why (enum lc_stop) */
		uint64_t now;		/* the pass's clock */
		uint64_t bid;		/* ... in this bucket's rules */
		size_t rule;		/* ... at this rule */
		uint8_t key[META_OBJKEY_MAX];	/* ... at this object */
		size_t klen;
		unsigned deleting;	/* expiry deletes in flight */
		struct deferred kick;
		bool kick_pending;
	} lc;
	unsigned ops;			/* puts, gets, compactions in flight */
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
	unsigned handles_open;
	struct store_stats st;
};

/* Where a put's chunk was written (or found, for a dedup hit). */
struct chunk_loc {
	uint64_t seg;
	uint64_t off;
	uint32_t rec_len;
	uint32_t raw_len;
	uint8_t tier;
};

int store__active_segment(struct store *s, uint8_t tier, size_t len,
			  struct segment **out);
int store__bucket_check(struct index_batch *ib, const struct bucket *b);
int store__bucket_get(struct store *s, const char *name, struct bucket **out);
void store__bucket_unref(struct store *s, struct bucket *b);
uint8_t *store__buf_alloc(struct store *s, size_t len, size_t *cap);
void store__buf_free(struct store *s, uint8_t *p, size_t cap);
int store__chunk_ref(struct store *s, struct index_batch *ib, uint64_t bid,
		     const uint8_t id[RECORD_ID_LEN], const struct chunk_loc *loc);
int store__chunk_unref(struct store *s, struct index_batch *ib, uint64_t bid,
		       const uint8_t id[RECORD_ID_LEN]);
struct record_codec *store__codec_get(struct store *s);
void store__codec_put(struct store *s, struct record_codec *c);
void store__etag_hex(const uint8_t etag[32], uint32_t nchunks, char out[72]);
void store__fill_info(struct store_object_info *info,
		      const struct meta_object *o);
void store__gc_timer_cb(uv_timer_t *t);
uint64_t store__hlc_next(struct store *s, uint64_t at_least);
void store__maybe_closed(struct store *s);
void store__mutation_queue(struct store *s, struct mutation *m);
uint64_t store__now_ms(void);
int store__object_get_batch(struct index_batch *ib, const uint8_t *okey,
			    size_t oklen, uint8_t **buf,
			    struct meta_object **obj);
int store__round_doom(struct round *r, struct segment *seg);
int store__seg_account(struct store *s, struct index_batch *ib, uint64_t id,
		       int64_t dbytes, int64_t dcount);
bool store__seg_may_drop(struct store *s, const struct segment *seg);
void store__seg_unpin(struct store *s, struct segment *seg);
void store__defer(struct store *s, struct deferred *d, void (*fn)(void *arg),
		  void *arg);

#endif
