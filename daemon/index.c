// SPDX-License-Identifier: Apache-2.0
/*
 * index: RocksDB through its C API.  See index.h for the column families.
 *
 * Invariants:
 * - Every write that must survive a crash goes through a synced WAL
 *   (index_batch_commit, index_put_sync); the store acknowledges nothing
 *   before that returns.
 * - RocksDB's error strings stop here: logged once, returned as STRATA_EINDEX.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <rocksdb/c.h>

#include "fault.h"
#include "index.h"
#include "log.h"
#include "strata/error.h"
#include "banned.h"

static const char *const cf_names[INDEX_CF__COUNT] = {
	[INDEX_CF_META] = "default",
	[INDEX_CF_BUCKETS] = "buckets",
	[INDEX_CF_OBJECTS] = "objects",
	[INDEX_CF_CHUNKS] = "chunks",
	[INDEX_CF_SEGMENTS] = "segments",
	[INDEX_CF_SEGCHUNKS] = "segchunks",
	[INDEX_CF_KEYS] = "keys",
};

struct index {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_cache_t *cache;
	rocksdb_block_based_table_options_t *topts;
	rocksdb_column_family_handle_t *cf[INDEX_CF__COUNT];
	rocksdb_readoptions_t *ropts;
	rocksdb_writeoptions_t *wopts_sync;
	struct fault *fault;
	char *path;
	atomic_bool wstopped;		/* a write failed: no more (write_err) */
	atomic_bool space_low;		/* under the reserve (space_check) */
};

struct index_batch {
	struct index *ix;
	rocksdb_writebatch_wi_t *wb;
	bool frees;			/* index_batch_frees() */
};

struct index_iter {
	rocksdb_iterator_t *it;
	rocksdb_readoptions_t *ropts;
	char *lower, *upper;
};

/* Turn a RocksDB error string into a code, logging it once. */
static int index_err(const char *what, char *err)
{
	log_err("index", "%s: %s", what, err);
	rocksdb_free(err);
	return STRATA_EINDEX;
}

/*
 * A write RocksDB refused (a full disk, an I/O error).  RocksDB then takes
 * no more writes until it is opened again (this version has no resume
 * call), and Debian's build asserts (aborts the process) on a sync after a
 * failed append: send it no more writes at all, and say what to do.
 */
static int write_err(struct index *ix, const char *what, char *err)
{
	if (!atomic_exchange(&ix->wstopped, true))
		log_err("index", "%s: %s; the index takes no more writes until stratad is restarted: fix the cause (e.g. free space under the state directory), then restart; reads go on",
			what, err);
	else
		log_err("index", "%s: %s", what, err);
	rocksdb_free(err);
	return STRATA_EINDEX;
}

/*
 * Room for the index to write: RocksDB must never meet a full disk (see
 * write_err), and a memtable flush writes up to its size at once.  Below
 * the reserve, min(128 MiB, a quarter of the file system), writes are
 * refused with -ENOSPC; logged when it starts and when it ends.  A batch
 * that only gives space back (index_batch_frees: deletes, compaction) may
 * still commit down to half the reserve: on a file system the tiers share,
 * deleting is how the room comes back, and it must not be refused with
 * the puts.
 */
#define INDEX_RESERVE ((uint64_t)128 << 20)

static int space_check(struct index *ix, bool frees)
{
	struct statvfs sv;
	uint64_t avail, size, reserve;
	bool low;

	if (statvfs(ix->path, &sv) != 0)
		return 0;	/* cannot tell: let RocksDB try */
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	size = (uint64_t)sv.f_blocks * sv.f_frsize;
	reserve = size / 4 < INDEX_RESERVE ? size / 4 : INDEX_RESERVE;
	low = avail < reserve;
	if (low != atomic_exchange(&ix->space_low, low)) {
		if (low)
			log_err("index", "%s: %llu KiB free, under the %llu KiB the index keeps in reserve: writes are refused (No space left on device) until there is room again; deletes go on",
				ix->path, (unsigned long long)(avail >> 10),
				(unsigned long long)(reserve >> 10));
		else
			log_info("index", "%s: room again (%llu KiB free): writes resume",
				 ix->path, (unsigned long long)(avail >> 10));
	}
	if (frees)
		return avail < reserve / 2 ? -ENOSPC : 0;
	return low ? -ENOSPC : 0;
}

/* Writes after write_err(), or without room: refused without asking
 * RocksDB. */
static int write_stopped(struct index *ix, bool frees)
{
	if (atomic_load(&ix->wstopped))
		return STRATA_EINDEX;
	return space_check(ix, frees);
}

bool index_writes_refused(struct index *ix)
{
	return write_stopped(ix, false) != 0;
}

int index_write_room(struct index *ix)
{
	return write_stopped(ix, false);
}

void index_memory(struct index *ix, uint64_t *memtables, uint64_t *cache)
{
	uint64_t sum = 0, v;

	for (int i = 0; i < INDEX_CF__COUNT; i++)
		if (rocksdb_property_int_cf(ix->db, ix->cf[i],
					    "rocksdb.cur-size-all-mem-tables",
					    &v) == 0)
			sum += v;
	*memtables = sum;
	*cache = rocksdb_cache_get_usage(ix->cache);
}

int index_open(const char *path, struct fault *fault, size_t cache_bytes,
	       size_t write_buffer_bytes, struct index **out)
{
	const char *names[INDEX_CF__COUNT];
	const rocksdb_options_t *cfopts[INDEX_CF__COUNT];
	struct index *ix;
	char *err = NULL;
	int rc;

	ix = calloc(1, sizeof(*ix));
	if (!ix)
		return -ENOMEM;
	atomic_init(&ix->wstopped, false);
	atomic_init(&ix->space_low, false);
	ix->fault = fault;
	ix->path = strdup(path);
	if (!ix->path) {
		free(ix);
		return -ENOMEM;
	}
	ix->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(ix->opts, 1);
	rocksdb_options_set_create_missing_column_families(ix->opts, 1);
	/* Small values, point reads and short scans: a bloom filter per
	 * block-based table and a bounded block cache. */
	ix->cache = rocksdb_cache_create_lru(cache_bytes ? cache_bytes
							 : 64u << 20);
	ix->topts = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(ix->topts, ix->cache);
	rocksdb_block_based_options_set_filter_policy(ix->topts,
		rocksdb_filterpolicy_create_bloom(10));
	rocksdb_options_set_block_based_table_factory(ix->opts, ix->topts);
	rocksdb_options_increase_parallelism(ix->opts, 2);
	rocksdb_options_set_max_background_jobs(ix->opts, 2);
	/* A family written seldom (buckets, keys, the store's metadata)
	 * holds the oldest write-ahead log in its memtable, and with it
	 * every later one: the default cap, four times all the families'
	 * write buffers (3.5 GiB here), let 6.5 GB of logs pile up for a
	 * 135 MB index, each replayed at the next start.  Past this cap the
	 * families in the oldest log are flushed and it goes. */
	rocksdb_options_set_max_total_wal_size(ix->opts, INDEX_WAL_MAX);
	/* Memtables: each family's is 64 MB at most (two while one is
	 * flushed), seven families; this caps them together. */
	if (write_buffer_bytes)
		rocksdb_options_set_db_write_buffer_size(ix->opts,
							 write_buffer_bytes);
	/* Keep RocksDB's own log small: it is for debugging RocksDB. */
	rocksdb_options_set_keep_log_file_num(ix->opts, 3);
	rocksdb_options_set_max_log_file_size(ix->opts, 4u << 20);
	/* After a crash, drop an incomplete record at the log's end (a write
	 * the crash cut short, never acknowledged: acknowledged writes were
	 * synced whole), but refuse to open over damage anywhere else:
	 * point-in-time recovery would silently stop replaying there and
	 * forget every acknowledged write after it. */
	rocksdb_options_set_wal_recovery_mode(ix->opts,
		rocksdb_tolerate_corrupted_tail_records_recovery);

	for (int i = 0; i < INDEX_CF__COUNT; i++) {
		names[i] = cf_names[i];
		cfopts[i] = ix->opts;
	}
	ix->db = rocksdb_open_column_families(ix->opts, path, INDEX_CF__COUNT,
					      names, cfopts, ix->cf, &err);
	if (err) {
		/* RocksDB's words for a LOCK file another process holds. */
		if (strstr(err, "lock file") &&
		    strstr(err, "Resource temporarily unavailable"))
			log_err("index", "%s is in use: is another stratad "
				"running with this state_dir? Stop it first",
				path);
		rc = index_err("open", err);
		goto fail;
	}
	ix->ropts = rocksdb_readoptions_create();
	ix->wopts_sync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(ix->wopts_sync, 1);
	*out = ix;
	return 0;
fail:
	rocksdb_block_based_options_destroy(ix->topts);
	rocksdb_cache_destroy(ix->cache);
	rocksdb_options_destroy(ix->opts);
	free(ix->path);
	free(ix);
	return rc;
}

void index_close(struct index *ix)
{
	if (!ix)
		return;
	for (int i = 0; i < INDEX_CF__COUNT; i++)
		rocksdb_column_family_handle_destroy(ix->cf[i]);
	rocksdb_close(ix->db);
	rocksdb_readoptions_destroy(ix->ropts);
	rocksdb_writeoptions_destroy(ix->wopts_sync);
	rocksdb_block_based_options_destroy(ix->topts);
	rocksdb_cache_destroy(ix->cache);
	rocksdb_options_destroy(ix->opts);
	free(ix->path);
	free(ix);
}

/* RocksDB hands back malloc'd values; an empty value may come back as NULL
 * with length 0, which callers should not confuse with "absent". */
static int take_value(char *v, size_t vlen, uint8_t **val, size_t *vallen)
{
	if (!v) {
		v = malloc(1);
		if (!v)
			return -ENOMEM;
	}
	*val = (uint8_t *)v;
	*vallen = vlen;
	return 0;
}

int index_get(struct index *ix, enum index_cf cf, const void *key,
	      size_t keylen, uint8_t **val, size_t *vallen)
{
	rocksdb_pinnableslice_t *ps;
	char *err = NULL;
	const char *v;
	size_t vlen;
	char *copy;
	int rc;

	rc = fault_hit(ix->fault, FAULT_INDEX_READ);
	if (rc)
		return rc;
	ps = rocksdb_get_pinned_cf(ix->db, ix->ropts, ix->cf[cf], key, keylen,
				   &err);
	if (err)
		return index_err("get", err);
	if (!ps)
		return -ENOENT;
	v = rocksdb_pinnableslice_value(ps, &vlen);
	copy = malloc(vlen ? vlen : 1);
	if (!copy) {
		rocksdb_pinnableslice_destroy(ps);
		return -ENOMEM;
	}
	memcpy(copy, v, vlen);
	rocksdb_pinnableslice_destroy(ps);
	*val = (uint8_t *)copy;
	*vallen = vlen;
	return 0;
}

int index_put_sync(struct index *ix, enum index_cf cf, const void *key,
		   size_t keylen, const void *val, size_t vallen)
{
	char *err = NULL;
	int rc;

	rc = fault_hit(ix->fault, FAULT_INDEX_WRITE);
	if (!rc)
		rc = write_stopped(ix, false);
	if (rc)
		return rc;
	rocksdb_put_cf(ix->db, ix->wopts_sync, ix->cf[cf], key, keylen, val,
		       vallen, &err);
	if (err)
		return write_err(ix, "put", err);
	return 0;
}

struct index_batch *index_batch_new(struct index *ix)
{
	struct index_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->ix = ix;
	/* overwrite_key=1: a later update of a key in the batch replaces the
	 * earlier one, which is what read-your-own-writes needs. */
	b->wb = rocksdb_writebatch_wi_create(0, 1);
	return b;
}

void index_batch_free(struct index_batch *b)
{
	if (!b)
		return;
	rocksdb_writebatch_wi_destroy(b->wb);
	free(b);
}

int index_batch_get(struct index_batch *b, enum index_cf cf, const void *key,
		    size_t keylen, uint8_t **val, size_t *vallen)
{
	char *err = NULL;
	size_t vlen = 0;
	char *v;
	int rc;

	rc = fault_hit(b->ix->fault, FAULT_INDEX_READ);
	if (rc)
		return rc;
	v = rocksdb_writebatch_wi_get_from_batch_and_db_cf(b->wb, b->ix->db,
		b->ix->ropts, b->ix->cf[cf], key, keylen, &vlen, &err);
	if (err)
		return index_err("batch get", err);
	if (!v)
		return -ENOENT;
	return take_value(v, vlen, val, vallen);
}

void index_batch_put(struct index_batch *b, enum index_cf cf, const void *key,
		     size_t keylen, const void *val, size_t vallen)
{
	rocksdb_writebatch_wi_put_cf(b->wb, b->ix->cf[cf], key, keylen, val,
				     vallen);
}

void index_batch_delete(struct index_batch *b, enum index_cf cf,
			const void *key, size_t keylen)
{
	rocksdb_writebatch_wi_delete_cf(b->wb, b->ix->cf[cf], key, keylen);
}

void index_batch_savepoint(struct index_batch *b)
{
	rocksdb_writebatch_wi_set_save_point(b->wb);
}

int index_batch_rollback(struct index_batch *b)
{
	char *err = NULL;

	rocksdb_writebatch_wi_rollback_to_save_point(b->wb, &err);
	if (err)
		return index_err("batch rollback", err);
	return 0;
}

void index_batch_frees(struct index_batch *b)
{
	b->frees = true;
}

int index_batch_count(struct index_batch *b)
{
	return rocksdb_writebatch_wi_count(b->wb);
}

int index_batch_commit(struct index_batch *b)
{
	char *err = NULL;
	int rc;

	rc = fault_hit(b->ix->fault, FAULT_INDEX_WRITE);
	if (!rc)
		rc = write_stopped(b->ix, b->frees);
	if (rc)
		return rc;
	if (rocksdb_writebatch_wi_count(b->wb) == 0)
		return 0;
	rocksdb_write_writebatch_wi(b->ix->db, b->ix->wopts_sync, b->wb, &err);
	if (err)
		return write_err(b->ix, "commit", err);
	return 0;
}

static char *dup_bytes(const void *p, size_t n)
{
	char *c = malloc(n ? n : 1);

	if (c && n)
		memcpy(c, p, n);
	return c;
}

static struct index_iter *iter_new(struct index *ix, struct index_batch *b,
				   enum index_cf cf, const void *lower,
				   size_t lowerlen, const void *upper,
				   size_t upperlen)
{
	struct index_iter *it = calloc(1, sizeof(*it));

	if (!it)
		return NULL;
	it->ropts = rocksdb_readoptions_create();
	/* The bounds must outlive the iterator: RocksDB keeps the pointers. */
	if (lower) {
		it->lower = dup_bytes(lower, lowerlen);
		if (!it->lower)
			goto fail;
		rocksdb_readoptions_set_iterate_lower_bound(it->ropts,
							    it->lower, lowerlen);
	}
	if (upper) {
		it->upper = dup_bytes(upper, upperlen);
		if (!it->upper)
			goto fail;
		rocksdb_readoptions_set_iterate_upper_bound(it->ropts,
							    it->upper, upperlen);
	}
	it->it = rocksdb_create_iterator_cf(ix->db, it->ropts, ix->cf[cf]);
	/* The merged iterator takes over the base one. */
	if (b)
		it->it = rocksdb_writebatch_wi_create_iterator_with_base_cf(
			b->wb, it->it, ix->cf[cf]);
	if (lower)
		rocksdb_iter_seek(it->it, lower, lowerlen);
	else
		rocksdb_iter_seek_to_first(it->it);
	return it;
fail:
	rocksdb_readoptions_destroy(it->ropts);
	free(it->lower);
	free(it);
	return NULL;
}

struct index_iter *index_iter_new(struct index *ix, enum index_cf cf,
				  const void *lower, size_t lowerlen,
				  const void *upper, size_t upperlen)
{
	return iter_new(ix, NULL, cf, lower, lowerlen, upper, upperlen);
}

struct index_iter *index_batch_iter_new(struct index_batch *b,
					enum index_cf cf, const void *lower,
					size_t lowerlen, const void *upper,
					size_t upperlen)
{
	return iter_new(b->ix, b, cf, lower, lowerlen, upper, upperlen);
}

void index_iter_free(struct index_iter *it)
{
	if (!it)
		return;
	rocksdb_iter_destroy(it->it);
	rocksdb_readoptions_destroy(it->ropts);
	free(it->lower);
	free(it->upper);
	free(it);
}

void index_iter_seek(struct index_iter *it, const void *key, size_t keylen)
{
	rocksdb_iter_seek(it->it, key, keylen);
}

int index_iter_valid(struct index_iter *it)
{
	return rocksdb_iter_valid(it->it);
}

void index_iter_next(struct index_iter *it)
{
	rocksdb_iter_next(it->it);
}

const uint8_t *index_iter_key(struct index_iter *it, size_t *len)
{
	return (const uint8_t *)rocksdb_iter_key(it->it, len);
}

const uint8_t *index_iter_value(struct index_iter *it, size_t *len)
{
	return (const uint8_t *)rocksdb_iter_value(it->it, len);
}

int index_iter_status(struct index_iter *it)
{
	char *err = NULL;

	rocksdb_iter_get_error(it->it, &err);
	if (err)
		return index_err("scan", err);
	return 0;
}

int index_flush(struct index *ix)
{
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	char *err = NULL;
	int rc = 0;

	rc = write_stopped(ix, false);
	rocksdb_flushoptions_set_wait(fo, 1);
	for (int i = 0; i < INDEX_CF__COUNT && !rc; i++) {
		rocksdb_flush_cf(ix->db, fo, ix->cf[i], &err);
		if (err)
			rc = write_err(ix, "flush", err);
	}
	rocksdb_flushoptions_destroy(fo);
	return rc;
}

const char *index_path(const struct index *ix)
{
	return ix->path;
}
