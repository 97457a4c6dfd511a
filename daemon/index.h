// SPDX-License-Identifier: Apache-2.0
/*
 * index: the engine's RocksDB, behind a small API.  The only file that
 * includes rocksdb/c.h; RocksDB's error strings become STRATA_EINDEX here,
 * logged once.
 *
 * Column families (keys and values are encoded by meta.c):
 *
 *   meta       "format", "master-check", counters        engine metadata
 *   buckets    bucket name            -> struct meta_bucket
 *   objects    bucket id BE || key    -> struct meta_object (newest version)
 *   chunks     bucket id BE || chunk id -> struct meta_chunk
 *   segments   segment id BE          -> struct meta_segment
 *   segchunks  segment id BE || off BE -> chunk key   (compaction's map)
 *   keys       access key id          -> sealed secret (server, later)
 *
 * Object keys are bucket-id-prefixed and compared bytewise, so a prefix
 * listing is one ordered scan bounded by [prefix, prefix+1).
 *
 * Writes go through a batch with read-your-own-writes (RocksDB's
 * WriteBatchWithIndex): the store builds one batch per group-commit round on
 * the loop thread, reading through it, and commits it with a synced WAL on a
 * worker thread.  Point reads may run on the loop thread.
 */
#ifndef STRATA_INDEX_H
#define STRATA_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fault;
struct index;
struct index_batch;
struct index_iter;

enum index_cf {
	INDEX_CF_META,
	INDEX_CF_BUCKETS,
	INDEX_CF_OBJECTS,
	INDEX_CF_CHUNKS,
	INDEX_CF_SEGMENTS,
	INDEX_CF_SEGCHUNKS,
	INDEX_CF_KEYS,
	INDEX_CF__COUNT
};

/* Write-ahead log kept at most (about): past it, the column families
 * holding the oldest log are flushed, so that it can go. */
#define INDEX_WAL_MAX ((uint64_t)128 << 20)

/*
 * Open (creating if missing) the index in directory `path`.
 *   [in] fault  fault points (FAULT_INDEX_READ/WRITE); may be NULL
 *   [in] cache_bytes  block cache budget; 0 picks a default (64 MiB)
 *   [in] write_buffer_bytes  memtables of all column families together
 *        (RocksDB's db_write_buffer_size: past it the largest family's
 *        is flushed); 0: RocksDB's per-family limits only
 * Returns 0, STRATA_EINDEX (text logged: e.g. the LOCK is held by another
 * process), -ENOMEM.
 */
int index_open(const char *path, struct fault *fault, size_t cache_bytes,
	       size_t write_buffer_bytes, struct index **out);
void index_close(struct index *ix);
/*
 * Whether writes are refused now: its file system is under the reserve
 * (checked now; writes resume by themselves; a batch that frees space may
 * still commit), or a write RocksDB refused stopped them until a restart.
 */
bool index_writes_refused(struct index *ix);
/* Memory RocksDB holds now: the memtables of all column families
 * (flushing ones included), and what the block cache holds. */
void index_memory(struct index *ix, uint64_t *memtables, uint64_t *cache);
/* The same as a code: 0, -ENOSPC (under the reserve) or STRATA_EINDEX. */
int index_write_room(struct index *ix);

/*
 * Point read.  *val is malloc'd (free with free()), *vallen its length.
 * Returns 0, -ENOENT, STRATA_EINDEX, or an injected fault.
 */
int index_get(struct index *ix, enum index_cf cf, const void *key,
	      size_t keylen, uint8_t **val, size_t *vallen);

/* Write one key with a synced WAL, outside any batch (setup paths). */
int index_put_sync(struct index *ix, enum index_cf cf, const void *key,
		   size_t keylen, const void *val, size_t vallen);

/* Batches.  index_batch_new() returns NULL only on allocation failure. */
struct index_batch *index_batch_new(struct index *ix);
void index_batch_free(struct index_batch *b);
/* Read through the batch, then the database. Same returns as index_get(). */
int index_batch_get(struct index_batch *b, enum index_cf cf, const void *key,
		    size_t keylen, uint8_t **val, size_t *vallen);
void index_batch_put(struct index_batch *b, enum index_cf cf, const void *key,
		     size_t keylen, const void *val, size_t vallen);
void index_batch_delete(struct index_batch *b, enum index_cf cf,
			const void *key, size_t keylen);
/* Mark a point to undo back to (one mutation's changes). */
void index_batch_savepoint(struct index_batch *b);
/* Undo everything since the last savepoint.  Returns 0 or STRATA_EINDEX. */
int index_batch_rollback(struct index_batch *b);
/*
 * The batch only gives space back (deletes, compaction): under the
 * reserve it may still commit, down to half of it.
 */
void index_batch_frees(struct index_batch *b);
/* Number of updates in the batch. */
int index_batch_count(struct index_batch *b);
/*
 * Commit atomically with a synced WAL.  Blocks for the sync: call it off the
 * loop thread.  Returns 0, STRATA_EINDEX, or an injected fault; on failure
 * nothing of the batch is applied.
 */
int index_batch_commit(struct index_batch *b);

/*
 * Iterators over [lower, upper) of one column family, in key order.
 * upper may be NULL (to the end of the family).  The bounds are copied.
 * Returns NULL on allocation failure.
 */
struct index_iter *index_iter_new(struct index *ix, enum index_cf cf,
				  const void *lower, size_t lowerlen,
				  const void *upper, size_t upperlen);
void index_iter_free(struct index_iter *it);
/*
 * An iterator over the batch's updates merged with the database (what the
 * family will hold once the batch commits).  The batch must outlive it.
 * Keys outside [lower, upper) written by the batch itself may show up:
 * callers check.
 */
struct index_iter *index_batch_iter_new(struct index_batch *b,
					enum index_cf cf, const void *lower,
					size_t lowerlen, const void *upper,
					size_t upperlen);
/* Position at the first key >= key (within the bounds). */
void index_iter_seek(struct index_iter *it, const void *key, size_t keylen);
int index_iter_valid(struct index_iter *it);
void index_iter_next(struct index_iter *it);
/* Valid until the iterator moves. */
const uint8_t *index_iter_key(struct index_iter *it, size_t *len);
const uint8_t *index_iter_value(struct index_iter *it, size_t *len);
/* 0, or STRATA_EINDEX if the scan stopped on an error. */
int index_iter_status(struct index_iter *it);

/* Force memtables to SST files (tests, shutdown). */
int index_flush(struct index *ix);

/* The database directory (for tests that damage it). */
const char *index_path(const struct index *ix);

#endif
