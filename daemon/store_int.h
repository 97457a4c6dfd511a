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
	struct cache *cache;		/* plaintext chunks (cache.h) */
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
