// SPDX-License-Identifier: Apache-2.0
/*
 * store: the chunk engine.  Buckets, objects and their chunks on tiered,
 * append-only segment files, indexed in RocksDB (index.c), encoded by
 * record.c, with all segment I/O through io_uring (uring.c) completed on
 * one libuv loop.
 *
 * Threading: every store_* function is called on the loop thread that
 * store_open() was given, and every callback runs there.  CPU-heavy chunk
 * work (hashing, zstd, AES-GCM) and the synced index commits run on libuv's
 * thread pool; the loop never waits for a disk sync.
 *
 * Asynchronous calls return 0 when they have accepted the work (the
 * callback will run exactly once, never from inside the call) or a negative
 * code for an error found at once (the callback will not run).
 *
 * Durability: a put, delete or bucket change is reported done only after
 * its chunk bytes are fdatasync'd and its index batch is committed with a
 * synced WAL.  Concurrent changes share those syncs (group commit).
 */
#ifndef STRATA_STORE_H
#define STRATA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "meta.h"

struct fault;
struct statvfs;
struct store;
struct store_put;
struct store_get;

enum store_tier { STORE_TIER_HOT, STORE_TIER_COLD, STORE_TIERS };
/* Reported by stat for a small object kept inline in the index. */
#define STORE_TIER_INDEX 0xff

#define STORE_DEFAULT_CHUNK (4u << 20)
#define STORE_MIN_CHUNK (64u << 10)
#define STORE_MAX_CHUNK (64u << 20)
#define STORE_MAX_TIER_DIRS 16
#define STORE_DEFAULT_INLINE (16u << 10)

/* A tier's place in the hierarchy (store_tier.c). */
struct store_tier_opts {
	/* Bytes this tier may hold; 0: what its file systems hold (the
	 * store's segment files plus their free space). */
	uint64_t capacity;
	/* Demote when usage passes high_pct of capacity, down to low_pct
	 * (hot tier; 0: 90 and 75).  Promotions keep hot under low_pct. */
	unsigned high_pct, low_pct;
	/* Test knobs, to emulate a slow device on any machine: latency
	 * added to every read (overlapping), and a read bandwidth cap
	 * (bytes/s, one shared pipe).  0: off. */
	uint32_t read_delay_us;
	uint64_t read_bw;
};

struct store_opts {
	const char *index_dir;		/* RocksDB directory (created) */
	const char *master_key_path;	/* 0600 key file ... */
	const uint8_t *master_key;	/* ... or 32 key bytes (wins if set) */
	/* Tier directories: must exist (a missing mount is an error, not a
	 * reason to fill the root file system). The hot tier needs >= 1. */
	const char *const *tier_dirs[STORE_TIERS];
	unsigned ntier_dirs[STORE_TIERS];
	uint32_t chunk_size;		/* 0: 4 MiB; 64 KiB .. 64 MiB */
	int zstd_level;			/* -1: default (1); 0: off */
	uint64_t segment_size;		/* 0: 256 MiB; roll over past this */
	unsigned put_window;		/* chunks in flight per put; 0: 4 */
	unsigned get_window;		/* chunks read ahead per get; 0: 3 */
	uint32_t node_id;		/* writer id in object versions */
	size_t index_cache_bytes;	/* 0: 64 MiB */
	/* The index's memtables, all column families together (RocksDB's
	 * db_write_buffer_size: past it the largest is flushed); 0: no cap
	 * beyond RocksDB's own (64 MB per family, two each at most). */
	size_t index_write_buffer_bytes;
	unsigned gc_dead_pct;		/* compact at this % dead; 0: 50 */
	unsigned gc_interval_ms;	/* background GC period; 0: 10 s */
	/* Objects up to this size live inline in the index (one synced
	 * write per put instead of two); 0: 16 KiB, < 0: never. */
	int32_t inline_max;
	/* Plaintext chunk cache (cache.h) budget in bytes; 0: 512 MiB,
	 * < 0: no cache. */
	int64_t cache_bytes;
	/* Node-wide budget for chunk buffers of gets and puts in progress
	 * (read-ahead, chunks being encoded and written): past it, transfers
	 * wait their turn and paused gets give back their read-ahead.
	 * 0: 1 GiB. */
	uint64_t transfer_bytes;
	struct store_tier_opts tier[STORE_TIERS];
	uint64_t mover_rate;		/* demotion/promotion bytes/s; 0: no cap */
	unsigned mover_interval_ms;	/* mover check period; 0: 1 s */
	/* A chunk read from cold promote_reads times within
	 * promote_window_ms is promoted; 0: 3 reads, 10 minutes. */
	unsigned promote_reads;
	uint32_t promote_window_ms;
	unsigned prestage_ahead;	/* objects ahead of a reader; 0: 32 */
	/* Lifecycle rules are applied this often; 0: hourly. */
	uint32_t lifecycle_interval_ms;
	/* A tier directory whose segment files are all missing (a lost
	 * disk), or that the index knows and the options no longer list,
	 * stops the open (STRATA_ECONFIG) unless this is set: then its
	 * chunks read as corrupt, as a single lost file's do. */
	bool accept_missing_dirs;
	/* Wall clock (ms since the epoch) for lifecycle ages; NULL: the
	 * real one.  Tests inject theirs. */
	uint64_t (*clock_ms)(void *arg);
	void *clock_arg;
	/* fstatvfs() of a tier directory, for the space of tiers without a
	 * configured capacity; NULL: the real one.  Tests emulate a small
	 * file system with theirs. */
	int (*statvfs)(void *arg, int dirfd, struct statvfs *sv);
	void *statvfs_arg;
	struct fault *fault;		/* fault points; may be NULL */
};

/*
 * Open a store: check the master key against the index, reconcile segment
 * files with the index (orphan files from a crash are removed), start a
 * fresh active segment per tier when first needed.  Blocking (startup).
 * Errors: STRATA_EMASTERKEY, STRATA_EKEYFILE, STRATA_ECONFIG (bad option or
 * missing tier directory, logged), STRATA_EINDEX, STRATA_EFORMAT, -errno.
 */
int store_open(uv_loop_t *loop, const struct store_opts *opts,
	       struct store **out);

/*
 * Close: refuse new work (STRATA_ECLOSING), wait for in-flight work, close
 * the index and the ring, free the store, then call cb (may be NULL).  Puts
 * that were begun and not committed must be aborted by their owners first.
 */
void store_close(struct store *s, void (*cb)(void *arg), void *arg);

typedef void (*store_done_cb)(void *arg, int status);

/* ---- buckets ---- */

struct store_bucket_info {
	char name[META_BUCKET_MAX + 1];
	uint64_t id;
	uint64_t ctime_ms;
};

/* Errors via cb: STRATA_EBUCKETEXISTS; at once: STRATA_EBADBUCKET,
 * STRATA_EBADMETA (attrs over META_ATTRS_MAX), STRATA_ECLOSING. */
int store_bucket_create(struct store *s, const char *name, const void *attrs,
			size_t attrslen, store_done_cb cb, void *arg);
/* Errors via cb: STRATA_ENOBUCKET, STRATA_EBUCKETNOTEMPTY. */
int store_bucket_delete(struct store *s, const char *name, store_done_cb cb,
			void *arg);
/* 0 when the bucket exists; STRATA_ENOBUCKET, STRATA_EBADBUCKET. */
int store_bucket_exists(struct store *s, const char *name);
/* All buckets by name; *out is malloc'd (free()). */
int store_bucket_list(struct store *s, struct store_bucket_info **out,
		      size_t *n);

/* ---- objects ---- */

struct store_put_opts {
	const char *ctype;		/* content type, may be NULL */
	const struct meta_kv *meta;	/* user metadata */
	uint16_t nmeta;
	const struct meta_kv *tags;
	uint16_t ntags;
};

/* What a committed put, a stat or a get reports about a version. */
struct store_object_info {
	uint64_t size;
	uint64_t hlc;
	uint64_t mtime_ms;
	uint32_t writer;
	uint32_t nchunks;
	uint32_t chunk_size;		/* the cut size (all but the last) */
	uint8_t etag[32];
	char etag_hex[72];		/* hex, "-N" suffix for N > 1 chunks */
	bool inline_obj;		/* kept inline in the index */
	uint64_t bucket_id;		/* store_get: its bucket's id ... */
	uint64_t gen;			/* ... and store_answer_gen() at lookup */
};

typedef void (*store_commit_cb)(void *arg, int status,
				const struct store_object_info *info);

/*
 * Begin a streamed put of bucket/key.  Nothing is visible until commit.
 * Errors: STRATA_EBADBUCKET, STRATA_EBADKEY, STRATA_EBADMETA,
 * STRATA_ENOBUCKET, STRATA_EMASTERKEY, STRATA_ECLOSING, -ENOMEM, -ENOSPC or
 * STRATA_EINDEX (the index refuses writes: index_write_room).
 */
int store_put_begin(struct store *s, const char *bucket, const char *key,
		    size_t keylen, const struct store_put_opts *opts,
		    struct store_put **out);
/*
 * Append bytes (copied; buf is the caller's again on return).  Full chunks
 * start on their way at once.  Returns 0 or the error that already failed
 * this put (then only abort is left).  Writing while !store_put_writable()
 * is allowed but grows memory: stream producers should wait for drain.
 */
int store_put_write(struct store_put *p, const void *buf, size_t len);
/* 1 while fewer than put_window chunks are in flight. */
int store_put_writable(const struct store_put *p);
/* Call cb once when the put becomes writable again. */
void store_put_on_drain(struct store_put *p, void (*cb)(void *arg), void *arg);
/*
 * Finish: the put is the store's from here; cb runs once the version is
 * durable (status 0) or failed (nothing visible), then the put is freed.
 */
void store_put_commit(struct store_put *p, store_commit_cb cb, void *arg);
/* Drop the put: nothing becomes visible; its written chunks are garbage
 * that compaction reclaims.  The handle is invalid on return. */
void store_put_abort(struct store_put *p);

typedef int (*store_data_cb)(void *arg, const void *buf, size_t len);

/*
 * Read bytes [off, off+len) of an object (len UINT64_MAX: to the end),
 * delivered in order to data_cb, then done_cb(arg, status).  data_cb may
 * return non-zero to stop (done_cb then gets STRATA_EABORTED).  info, if
 * not NULL, is filled at once.  A corrupt chunk ends the read with
 * STRATA_ECORRUPT and is counted; no byte of it is delivered.
 * Errors at once: STRATA_ENOBUCKET, STRATA_ENOOBJECT, STRATA_ERANGE (off
 * beyond the size), STRATA_EBADKEY, STRATA_ECORRUPT (bad index value).
 */
int store_get(struct store *s, const char *bucket, const char *key,
	      size_t keylen, uint64_t off, uint64_t len,
	      struct store_object_info *info, store_data_cb data_cb,
	      store_done_cb done_cb, void *arg, struct store_get **out);
/*
 * From inside data_cb only: keep the bytes being delivered valid past the
 * callback, when they come from the chunk cache, so that they can be sent
 * without a copy.  Returns a hold to give to store_hold_release() (on the
 * store's loop, before store_close), or NULL when the bytes are not the
 * cache's (copy them then).
 */
void *store_get_hold(struct store_get *g);
/* Another hold on what hold keeps (each is given back on its own). */
void *store_hold_dup(void *hold);
void store_hold_release(void *hold);

/* Flow control: a paused get delivers nothing until resumed. */
void store_get_pause(struct store_get *g);
void store_get_resume(struct store_get *g);
/* End g now (its request cancelled, its connection gone): no more data
 * callbacks and no more reads, and out of the transfer budget's line;
 * done_cb comes with STRATA_EABORTED (or the error it had) once the reads
 * in flight are back, maybe inside this call. */
void store_get_abort(struct store_get *g);

/* Where one chunk of an object lives, for stat. */
struct store_chunk_info {
	uint32_t raw_len;
	uint32_t stored_len;		/* record bytes on disk */
	uint8_t tier;
	uint64_t seg;			/* segment id */
	uint64_t off;			/* record offset in the segment */
};

/*
 * Stat an object.  chunks may be NULL; else *chunks is a malloc'd array of
 * info->nchunks entries (free()).  meta may be NULL; else *meta is the
 * decoded version (content type, user metadata, tags) pointing into
 * *metabuf: free with meta_object_free(*meta) and free(*metabuf).  Returns 0, STRATA_ENOBUCKET,
 * STRATA_ENOOBJECT, STRATA_ECORRUPT, STRATA_EINDEX.
 */
int store_stat(struct store *s, const char *bucket, const char *key,
	       size_t keylen, struct store_object_info *info,
	       struct store_chunk_info **chunks, struct meta_object **meta,
	       uint8_t **metabuf);

/* Delete (writes a tombstone version).  Errors via cb: STRATA_ENOOBJECT,
 * STRATA_ENOBUCKET. */
int store_delete(struct store *s, const char *bucket, const char *key,
		 size_t keylen, store_done_cb cb, void *arg);

struct store_list_entry {
	char *key;			/* NUL-terminated; into the result */
	size_t keylen;
	int is_prefix;			/* a common prefix (delimiter) */
	uint64_t size;
	uint64_t mtime_ms;
	uint64_t hlc;			/* version */
	uint8_t etag[32];
	uint32_t nchunks;		/* for the "-N" of etag_hex */
	char etag_hex[72];
};

struct store_list_result {
	size_t n;
	struct store_list_entry *e;
	int truncated;			/* more follow: list again with
					 * start_after = last key */
};

struct store_list_opts {
	const char *prefix;
	size_t prefixlen;
	const char *start_after;	/* exclusive; may be NULL */
	size_t start_after_len;
	const char *delim;		/* 1-16 bytes (delimlen); NULL: none */
	size_t delimlen;
	size_t limit;			/* 0: 1000; at most 10000 */
};

/* One ordered scan.  *out freed with store_list_result_free(). */
int store_list(struct store *s, const char *bucket,
	       const struct store_list_opts *o, struct store_list_result **out);
void store_list_result_free(struct store_list_result *r);

/* ---- access keys (for the server's authentication) ---- */

/*
 * Store an access key: its secret sealed with the master key (bound to the
 * key id), durably (a synced index write; key changes are rare).
 *   [in] id      1..META_AKEY_ID_MAX printable ASCII bytes
 *   [in] secret  1..META_AKEY_SECRET_MAX bytes
 *   [in] flags   enum meta_akey_flags
 * Errors: -EINVAL (bad id or secret), -EEXIST, STRATA_EINDEX, -EIO.
 */
int store_access_key_put(struct store *s, const char *id, const void *secret,
			 size_t secretlen, uint32_t flags);
/*
 * Unseal an access key's secret.
 *   [out] secret  at least META_AKEY_SECRET_MAX bytes; *secretlen set
 *   [out] flags   may be NULL
 * Errors: -ENOENT (no such key), STRATA_ECORRUPT, STRATA_EMASTERKEY.
 */
int store_access_key_get(struct store *s, const char *id, uint8_t *secret,
			 size_t *secretlen, uint32_t *flags);
/*
 * Make a new access key: id "AK" + 18 upper-case hex digits, secret 64
 * lower-case hex digits from the CSPRNG, stored as store_access_key_put().
 *   [out] id      STORE_AKEY_ID_LEN + 1 bytes, NUL-terminated
 *   [out] secret  STORE_AKEY_SECRET_LEN + 1 bytes; the caller shows it once
 *                 and wipes it
 */
#define STORE_AKEY_ID_LEN 20
#define STORE_AKEY_SECRET_LEN 64
int store_access_key_generate(struct store *s, uint32_t flags,
			      char id[STORE_AKEY_ID_LEN + 1],
			      char secret[STORE_AKEY_SECRET_LEN + 1]);
/* Draw a new key id and secret as store_access_key_generate() does, without
 * storing them (store_access_key_put() them once they are safe elsewhere). */
int store_access_key_make(char id[STORE_AKEY_ID_LEN + 1],
			  char secret[STORE_AKEY_SECRET_LEN + 1]);
/* Errors: -ENOENT, STRATA_EINDEX. */
int store_access_key_delete(struct store *s, const char *id);
/* Every key id, sorted; *ids and each string malloc'd (free both). */
int store_access_key_list(struct store *s, char ***ids, uint32_t **flags,
			  size_t *n);
/* A key's flags and creation time.  Errors: -ENOENT, STRATA_ECORRUPT. */
int store_access_key_info(struct store *s, const char *id, uint32_t *flags,
			  uint64_t *ctime_ms);

/*
 * A key's grant: its access policy (a JSON document, strata-policy(7);
 * checked by the caller, stored as given) and attributes (a proto string
 * list: name, value, ...).  Deleting the key deletes its grant.
 */
struct store_grant {
	char *policy;			/* NUL-terminated; NULL: none */
	size_t policylen;
	uint8_t *attrs;			/* NULL: none */
	size_t attrslen;
	uint32_t nattrs;		/* pairs */
};
/* Read a key's grant (all NULL when it has none).  Errors: -ENOENT (bad
 * id), STRATA_ECORRUPT, STRATA_EINDEX, -ENOMEM. */
int store_access_key_grant_get(struct store *s, const char *id,
			       struct store_grant *g);
/* Replace it, durably; an empty grant removes the record.  Errors:
 * -ENOENT (no such key), -EINVAL, STRATA_EINDEX, -ENOMEM. */
int store_access_key_grant_put(struct store *s, const char *id,
			       const struct store_grant *g);
void store_grant_free(struct store_grant *g);

/* ---- space ---- */

/*
 * Compact now: every sealed segment with at least dead_pct percent garbage
 * (0: any garbage) has its live chunks copied out and is freed; segments
 * with no live chunk are freed at once.  cb runs when done.  Background
 * compaction runs the same code at gc_dead_pct every gc_interval_ms.
 */
int store_compact(struct store *s, unsigned dead_pct, store_done_cb cb,
		  void *arg);

struct store_stats {
	uint64_t puts, gets, deletes;
	uint64_t bytes_in, bytes_out;
	uint64_t chunks_written, dedup_hits;
	uint64_t corrupt;		/* corruption events detected */
	uint64_t commit_rounds, commits;/* group commit: commits per round */
	uint64_t segments;		/* segment files */
	uint64_t seg_bytes[STORE_TIERS];/* bytes in segment files */
	uint64_t live_bytes[STORE_TIERS];/* bytes of live chunk records */
	uint64_t compacted_segments, compacted_bytes;
	uint64_t cache_hits, cache_misses, cache_evictions;
	uint64_t cache_bytes, cache_budget;
	uint64_t objmeta_hits;		/* object lookups answered from memory */
	/* tiers */
	uint64_t tier_used[STORE_TIERS];	/* segment file bytes */
	uint64_t tier_capacity[STORE_TIERS];
	unsigned tier_high_pct[STORE_TIERS], tier_low_pct[STORE_TIERS];
	unsigned tier_dirs[STORE_TIERS];
	uint64_t demoted_chunks, demoted_bytes;
	uint64_t promoted_chunks, promoted_bytes;
	uint64_t spilled_bytes;		/* written cold because hot was full */
	uint64_t enospc;		/* writes refused: every tier full */
	uint64_t hints, prestaged_objects;
	uint64_t prestage_plans, promote_queue;
	uint64_t lifecycle_cold, lifecycle_expired;
	uint64_t mover_rate;
	uint64_t uring_inflight;	/* io_uring operations in flight */
	uint64_t pooled_bytes;		/* chunk buffers kept for reuse */
	uint64_t transfer_bytes, transfer_budget; /* transfer_bytes budget */
	uint64_t transfer_waits;	/* times a get or put waited for it */
	uint64_t transfer_given_back;	/* read-ahead bytes paused gets gave
					 * back (to be read again) */
	uint64_t index_refusing;	/* 1: the index refuses writes now */
	uint64_t index_memtable_bytes;	/* index_memory() */
	uint64_t index_cache_bytes;
};

/*
 * The answer generation of bucket id bid: a commit round that puts or
 * deletes an object of the bucket, or changes buckets, moves it before
 * its batch reaches the index and again before the callbacks of its
 * writes run (so before any of them is answered).  What a GET read while
 * it was g is current as long as it is still g, and nothing read before
 * a write reached the index is current after.
 * Buckets share STORE_ANSWER_SLOTS slots (a write may also move a few
 * other buckets').  Any thread may call it (the I/O loops' answer cache,
 * anscache.h); store_get reports it with each object (info->gen).
 */
#define STORE_ANSWER_SLOTS 256u
uint64_t store_answer_gen(struct store *s, uint64_t bid);

/* Counters and space.  Reads the segment table from the index. */
int store_stats(struct store *s, struct store_stats *st);

/* Free the pooled chunk buffers that no get or put took since the last
 * call (main.c calls it every 10 s): an idle node gives back what a burst
 * left, up to 8 buffers of a chunk each. */
void store_trim(struct store *s);

/* ---- tiers ---- */

/*
 * Prestaging hint: the caller expects to read these objects of bucket, in
 * this order, soon.  The store reads ahead of the reader (as its gets of
 * these keys show where it is) into the chunk cache and queues cold chunks
 * for promotion.  Keys need not exist.  Returns 0, STRATA_ENOBUCKET,
 * STRATA_EBADBUCKET, STRATA_EBADKEY, STRATA_ECLOSING, -ENOMEM.
 */
int store_hint(struct store *s, const char *bucket, const char *const *keys,
	       const size_t *lens, size_t n);
/* Change the mover's bandwidth cap (bytes/s, 0: none), e.g. on SIGHUP;
 * it applies at once, to a move waiting out the old pace too. */
void store_set_mover_rate(struct store *s, uint64_t bytes_per_s);
/* Change the chunk cache's budget (bytes, 0: off), e.g. on SIGHUP: a
 * smaller one evicts at once (entries being read go when released). */
void store_set_cache_budget(struct store *s, uint64_t bytes);
/* Change store_opts.transfer_bytes (0: the default). */
void store_set_transfer_budget(struct store *s, uint64_t bytes);
/* Have the mover look at the tiers now rather than at its next tick. */
void store_tier_kick(struct store *s);

enum store_lc_action { STORE_LC_COLD = 1, STORE_LC_DELETE = 2 };

#define STORE_LC_MAX_RULES 32
/* The longest age: the protocol's (PROTO_MAX_RULE_AGE, 100 years of 365
 * days) in milliseconds. */
#define STORE_LC_MAX_AGE_MS (100ull * 365 * 86400 * 1000)

/* "Objects under prefix older than age_ms: action". */
struct store_lc_rule {
	char prefix[META_KEY_MAX + 1];
	uint64_t age_ms;
	enum store_lc_action action;
};

/*
 * Lifecycle rules of a bucket: replace them all (n 0: remove them),
 * durably.  Errors: STRATA_ENOBUCKET, STRATA_EBADBUCKET, -EINVAL (bad rule:
 * action, prefix, an age over STORE_LC_MAX_AGE_MS; more than
 * STORE_LC_MAX_RULES), STRATA_EINDEX.
 */
int store_lifecycle_set(struct store *s, const char *bucket,
			const struct store_lc_rule *rules, size_t n);
/* *rules malloc'd (free()); *n 0 when the bucket has none. */
int store_lifecycle_get(struct store *s, const char *bucket,
			struct store_lc_rule **rules, size_t *n);
/* Apply every bucket's rules as of the store's clock now (the mover does
 * this every lifecycle_interval_ms). */
void store_lifecycle_run(struct store *s);

#endif
