// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for index.c: open/reopen/lock, point reads and synced writes,
 * batches (read-your-own-writes, savepoints, atomic commit), column family
 * isolation, bounded iterators over the database and over a batch, fault
 * points and flush.  Each test owns a fresh RocksDB directory.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "index.h"
#include "strata/error.h"
#include "testutil.h"
#include "banned.h"

/* Small block cache: the tests hold a few hundred bytes. */
#define CACHE (1u << 20)

/* RocksDB's names for the families, as index.c creates them. */
static const char *const cf_names[INDEX_CF__COUNT] = {
	[INDEX_CF_META] = "default",
	[INDEX_CF_BUCKETS] = "buckets",
	[INDEX_CF_OBJECTS] = "objects",
	[INDEX_CF_CHUNKS] = "chunks",
	[INDEX_CF_SEGMENTS] = "segments",
	[INDEX_CF_SEGCHUNKS] = "segchunks",
	[INDEX_CF_KEYS] = "keys",
};

static char *dir;	/* the test's scratch directory */
static char *dbpath;	/* dir/db: absent until the first index_open */

static char *path_in(const char *base, const char *name)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/%s", base, name), 0);
	return p;
}

static void setup(void)
{
	dir = tu_tmpdir("index");
	dbpath = path_in(dir, "db");
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dbpath);
	free(dir);
	dbpath = NULL;
	dir = NULL;
}

static struct index *open_ix(struct fault *f)
{
	struct index *ix = NULL;

	ck_assert_int_eq(index_open(dbpath, f, CACHE, 0, &ix), 0);
	ck_assert_ptr_nonnull(ix);
	return ix;
}

static struct index *reopen(struct index *ix, struct fault *f)
{
	index_close(ix);
	return open_ix(f);
}

/* String keys and values (without the NUL) keep the tests readable. */
static void put(struct index *ix, enum index_cf cf, const char *k,
		const char *v)
{
	ck_assert_int_eq(index_put_sync(ix, cf, k, strlen(k), v, strlen(v)), 0);
}

static void bput(struct index_batch *b, enum index_cf cf, const char *k,
		 const char *v)
{
	index_batch_put(b, cf, k, strlen(k), v, strlen(v));
}

static void bdel(struct index_batch *b, enum index_cf cf, const char *k)
{
	index_batch_delete(b, cf, k, strlen(k));
}

static void check_val(int rc, uint8_t *val, size_t len, const char *want)
{
	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_nonnull(val);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert(memcmp(val, want, len) == 0);
	free(val);
}

static void expect(struct index *ix, enum index_cf cf, const char *k,
		   const char *want)
{
	uint8_t *val = NULL;
	size_t len = SIZE_MAX;
	int rc = index_get(ix, cf, k, strlen(k), &val, &len);

	check_val(rc, val, len, want);
}

static void expect_missing(struct index *ix, enum index_cf cf, const char *k)
{
	uint8_t *val = (uint8_t *)"untouched";
	size_t len = 12345;

	ck_assert_int_eq(index_get(ix, cf, k, strlen(k), &val, &len), -ENOENT);
	ck_assert_str_eq((const char *)val, "untouched");
	ck_assert_uint_eq(len, 12345);
}

static void bexpect(struct index_batch *b, enum index_cf cf, const char *k,
		    const char *want)
{
	uint8_t *val = NULL;
	size_t len = SIZE_MAX;
	int rc = index_batch_get(b, cf, k, strlen(k), &val, &len);

	check_val(rc, val, len, want);
}

static void bexpect_missing(struct index_batch *b, enum index_cf cf,
			    const char *k)
{
	uint8_t *val = NULL;
	size_t len = 12345;

	ck_assert_int_eq(index_batch_get(b, cf, k, strlen(k), &val, &len),
			 -ENOENT);
	ck_assert_ptr_null(val);
}

/*
 * Drain an iterator into "key=value,key=value" with keys and values in hex,
 * so a test states the whole scan, order included, in one assertion.
 * Stops early at `stop` (exclusive, may be NULL): a batch iterator may run
 * past its upper bound with the batch's own keys.
 */
static char *scan_until(struct index_iter *it, const void *stop,
			size_t stoplen)
{
	size_t cap = 4096, n = 0;
	char *out = tu_xmalloc(cap);

	out[0] = '\0';
	for (; index_iter_valid(it); index_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = index_iter_key(it, &klen);
		const uint8_t *v = index_iter_value(it, &vlen);

		if (stop) {
			size_t m = klen < stoplen ? klen : stoplen;
			int c = memcmp(k, stop, m);

			if (c > 0 || (c == 0 && klen >= stoplen))
				break;
		}
		ck_assert_uint_lt(n + 2 * (klen + vlen) + 3, cap);
		if (n)
			out[n++] = ',';
		for (size_t i = 0; i < klen; i++)
			n += (size_t)snprintf(out + n, cap - n, "%02x", k[i]);
		out[n++] = '=';
		for (size_t i = 0; i < vlen; i++)
			n += (size_t)snprintf(out + n, cap - n, "%02x", v[i]);
		out[n] = '\0';
	}
	ck_assert_int_eq(index_iter_status(it), 0);
	return out;
}

static void expect_scan(struct index_iter *it, const char *want)
{
	char *got = scan_until(it, NULL, 0);

	ck_assert_str_eq(got, want);
	free(got);
}

/* The newest OPTIONS-NNNNNN file RocksDB wrote, whole. */
static char *read_newest_options(void)
{
	DIR *d = opendir(dbpath);
	char best[256] = "";
	struct dirent *de;
	char *p, *buf;
	FILE *fp;
	long sz;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "OPTIONS-", 8) != 0)
			continue;
		/* Same width, zero-padded: string order is number order. */
		if (strcmp(de->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	closedir(d);
	ck_assert_msg(best[0], "no OPTIONS file in %s", dbpath);
	p = path_in(dbpath, best);
	fp = fopen(p, "rb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
	sz = ftell(fp);
	ck_assert_int_gt(sz, 0);
	rewind(fp);
	buf = tu_xmalloc((size_t)sz + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
	buf[sz] = '\0';
	fclose(fp);
	free(p);
	return buf;
}

static int count_files_with_suffix(const char *suffix)
{
	DIR *d = opendir(dbpath);
	size_t sl = strlen(suffix);
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

START_TEST(t_open_creates)
{
	struct index *ix = NULL;
	struct stat st;
	char *current, *opts;

	/* The directory does not exist yet: open makes it. */
	ck_assert_int_eq(stat(dbpath, &st), -1);
	ck_assert_int_eq(index_open(dbpath, NULL, 0, 0, &ix), 0);
	ck_assert_ptr_nonnull(ix);
	ck_assert_int_eq(stat(dbpath, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	current = path_in(dbpath, "CURRENT");
	ck_assert_int_eq(stat(current, &st), 0);
	free(current);

	/* index_path returns a copy of the path it was given. */
	ck_assert_str_eq(index_path(ix), dbpath);
	ck_assert_ptr_ne(index_path(ix), dbpath);

	/* Every family is in the database's persisted options... */
	opts = read_newest_options();
	for (int cf = 0; cf < INDEX_CF__COUNT; cf++) {
		char sect[64];

		snprintf(sect, sizeof(sect), "[CFOptions \"%s\"]",
			 cf_names[cf]);
		ck_assert_msg(strstr(opts, sect), "no %s in OPTIONS", sect);
	}
	free(opts);

	/* ...starts empty and takes writes. */
	for (int cf = 0; cf < INDEX_CF__COUNT; cf++) {
		struct index_iter *it = index_iter_new(ix, (enum index_cf)cf,
						       NULL, 0, NULL, 0);

		ck_assert_ptr_nonnull(it);
		ck_assert_int_eq(index_iter_valid(it), 0);
		ck_assert_int_eq(index_iter_status(it), 0);
		index_iter_free(it);
		expect_missing(ix, (enum index_cf)cf, "k");
		put(ix, (enum index_cf)cf, "k", cf_names[cf]);
		expect(ix, (enum index_cf)cf, "k", cf_names[cf]);
	}
	index_close(ix);
	index_close(NULL);	/* a no-op */
}
END_TEST

START_TEST(t_reopen_keeps_data)
{
	struct index *ix = open_ix(NULL);
	struct index_batch *b;

	for (int cf = 0; cf < INDEX_CF__COUNT; cf++)
		put(ix, (enum index_cf)cf, "synced", cf_names[cf]);
	b = index_batch_new(ix);
	ck_assert_ptr_nonnull(b);
	bput(b, INDEX_CF_OBJECTS, "batched", "v1");
	bput(b, INDEX_CF_SEGMENTS, "batched", "v2");
	bdel(b, INDEX_CF_KEYS, "synced");
	ck_assert_int_eq(index_batch_commit(b), 0);
	index_batch_free(b);

	/* No flush: the synced WAL alone carries it over. */
	ix = reopen(ix, NULL);
	for (int cf = 0; cf < INDEX_CF__COUNT; cf++) {
		if (cf == INDEX_CF_KEYS)
			expect_missing(ix, INDEX_CF_KEYS, "synced");
		else
			expect(ix, (enum index_cf)cf, "synced", cf_names[cf]);
	}
	expect(ix, INDEX_CF_OBJECTS, "batched", "v1");
	expect(ix, INDEX_CF_SEGMENTS, "batched", "v2");
	expect_missing(ix, INDEX_CF_CHUNKS, "batched");

	/* And again, after writing on top of the recovered state. */
	put(ix, INDEX_CF_OBJECTS, "batched", "v3");
	ix = reopen(ix, NULL);
	expect(ix, INDEX_CF_OBJECTS, "batched", "v3");
	expect(ix, INDEX_CF_BUCKETS, "synced", "buckets");
	index_close(ix);
}
END_TEST

START_TEST(t_second_open_locked)
{
	struct index *ix = open_ix(NULL);
	struct index *other = NULL;

	put(ix, INDEX_CF_META, "format", "1");
	ck_assert_int_eq(index_open(dbpath, NULL, CACHE, 0, &other),
			 STRATA_EINDEX);
	ck_assert_ptr_null(other);
	/* The first handle is unharmed by the failed open. */
	expect(ix, INDEX_CF_META, "format", "1");
	put(ix, INDEX_CF_META, "after", "2");
	index_close(ix);

	/* Once closed, the LOCK is free again. */
	ck_assert_int_eq(index_open(dbpath, NULL, CACHE, 0, &other), 0);
	expect(other, INDEX_CF_META, "format", "1");
	expect(other, INDEX_CF_META, "after", "2");
	index_close(other);
}
END_TEST

/*
 * Write 32 MiB of 64 KiB values round-robin into three column families
 * through an index opened with write_buffer_bytes = cap; return the most
 * the memtables held (index_memory) after any write.
 */
static uint64_t memtables_peak(size_t cap)
{
	static const enum index_cf cfs[] = {
		INDEX_CF_OBJECTS, INDEX_CF_CHUNKS, INDEX_CF_SEGMENTS,
	};
	struct index *ix = NULL;
	uint64_t mem, cache, peak = 0;
	uint8_t *v = malloc(64 << 10);
	char key[32];

	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(index_open(dbpath, NULL, CACHE, cap, &ix), 0);
	for (int i = 0; i < 512; i++) {
		tu_fill(v, 64 << 10, (unsigned)i);
		snprintf(key, sizeof(key), "k%05d", i);
		ck_assert_int_eq(index_put_sync(ix, cfs[i % 3], key,
						strlen(key), v, 64 << 10), 0);
		index_memory(ix, &mem, &cache);
		if (mem > peak)
			peak = mem;
		ck_assert_uint_le(cache, CACHE + (64 << 10));
	}
	/* Every value is still there, flushed or not. */
	for (int i = 0; i < 512; i += 37) {
		uint8_t *got = NULL;
		size_t len = 0;

		tu_fill(v, 64 << 10, (unsigned)i);
		snprintf(key, sizeof(key), "k%05d", i);
		ck_assert_int_eq(index_get(ix, cfs[i % 3], key, strlen(key),
					   &got, &len), 0);
		ck_assert_uint_eq(len, 64 << 10);
		ck_assert(memcmp(got, v, len) == 0);
		free(got);
	}
	index_close(ix);
	free(v);
	tu_rmrf(dbpath);
	return peak;
}

/* [store] index_write_buffer_size: the memtables of all families together
 * stay near the cap; without one, RocksDB's per-family 64 MB lets them
 * hold all 32 MiB. */
START_TEST(t_write_buffer_cap)
{
	uint64_t capped, uncapped;

	uncapped = memtables_peak(0);
	capped = memtables_peak(4u << 20);
	ck_assert_uint_ge(uncapped, 30u << 20);
	ck_assert_uint_le(capped, 12u << 20);
}
END_TEST

START_TEST(t_get_missing)
{
	struct index *ix = open_ix(NULL);

	expect_missing(ix, INDEX_CF_OBJECTS, "nothing");
	put(ix, INDEX_CF_OBJECTS, "abc", "v");
	/* Neither a prefix nor an extension of a stored key matches. */
	expect_missing(ix, INDEX_CF_OBJECTS, "ab");
	expect_missing(ix, INDEX_CF_OBJECTS, "abcd");
	expect(ix, INDEX_CF_OBJECTS, "abc", "v");
	index_close(ix);
}
END_TEST

START_TEST(t_put_get)
{
	struct index *ix = open_ix(NULL);
	uint8_t key[17], v1[3000], v2[5];
	uint8_t *val;
	size_t len;

	/* Binary keys and values, NULs included. */
	tu_fill(key, sizeof(key), 1);
	key[3] = 0;
	tu_fill(v1, sizeof(v1), 2);
	v1[0] = 0;
	ck_assert_int_eq(index_put_sync(ix, INDEX_CF_CHUNKS, key, sizeof(key),
					v1, sizeof(v1)), 0);
	ck_assert_int_eq(index_get(ix, INDEX_CF_CHUNKS, key, sizeof(key), &val,
				   &len), 0);
	ck_assert_uint_eq(len, sizeof(v1));
	ck_assert(memcmp(val, v1, len) == 0);
	free(val);

	/* Overwrite replaces, shorter value included. */
	tu_fill(v2, sizeof(v2), 3);
	ck_assert_int_eq(index_put_sync(ix, INDEX_CF_CHUNKS, key, sizeof(key),
					v2, sizeof(v2)), 0);
	ck_assert_int_eq(index_get(ix, INDEX_CF_CHUNKS, key, sizeof(key), &val,
				   &len), 0);
	ck_assert_uint_eq(len, sizeof(v2));
	ck_assert(memcmp(val, v2, len) == 0);
	free(val);
	index_close(ix);
}
END_TEST

START_TEST(t_empty_value)
{
	struct index *ix = open_ix(NULL);
	struct index_batch *b;
	struct index_iter *it;
	uint8_t *val = NULL;
	size_t len = SIZE_MAX;

	ck_assert_int_eq(index_put_sync(ix, INDEX_CF_SEGCHUNKS, "e", 1, "", 0),
			 0);
	ck_assert_int_eq(index_put_sync(ix, INDEX_CF_SEGCHUNKS, "n", 1, NULL,
					0), 0);

	/* Present with length 0 and a pointer to free: not "absent". */
	ck_assert_int_eq(index_get(ix, INDEX_CF_SEGCHUNKS, "e", 1, &val, &len),
			 0);
	ck_assert_ptr_nonnull(val);
	ck_assert_uint_eq(len, 0);
	free(val);
	val = NULL;
	len = SIZE_MAX;
	ck_assert_int_eq(index_get(ix, INDEX_CF_SEGCHUNKS, "n", 1, &val, &len),
			 0);
	ck_assert_ptr_nonnull(val);
	ck_assert_uint_eq(len, 0);
	free(val);

	b = index_batch_new(ix);
	ck_assert_ptr_nonnull(b);
	/* From the database, through the batch. */
	val = NULL;
	len = SIZE_MAX;
	ck_assert_int_eq(index_batch_get(b, INDEX_CF_SEGCHUNKS, "e", 1, &val,
					 &len), 0);
	ck_assert_ptr_nonnull(val);
	ck_assert_uint_eq(len, 0);
	free(val);
	/* From the batch itself, over a non-empty database value. */
	put(ix, INDEX_CF_SEGCHUNKS, "x", "full");
	index_batch_put(b, INDEX_CF_SEGCHUNKS, "x", 1, "", 0);
	val = NULL;
	len = SIZE_MAX;
	ck_assert_int_eq(index_batch_get(b, INDEX_CF_SEGCHUNKS, "x", 1, &val,
					 &len), 0);
	ck_assert_ptr_nonnull(val);
	ck_assert_uint_eq(len, 0);
	free(val);
	ck_assert_int_eq(index_batch_commit(b), 0);
	index_batch_free(b);

	ix = reopen(ix, NULL);
	val = NULL;
	len = SIZE_MAX;
	ck_assert_int_eq(index_get(ix, INDEX_CF_SEGCHUNKS, "x", 1, &val, &len),
			 0);
	ck_assert_ptr_nonnull(val);
	ck_assert_uint_eq(len, 0);
	free(val);
	it = index_iter_new(ix, INDEX_CF_SEGCHUNKS, NULL, 0, NULL, 0);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "65=,6e=,78=");
	index_iter_free(it);
	index_close(ix);
}
END_TEST

START_TEST(t_batch_ryow)
{
	struct index *ix = open_ix(NULL);
	struct index_batch *b;

	put(ix, INDEX_CF_OBJECTS, "a", "db-a");
	put(ix, INDEX_CF_OBJECTS, "b", "db-b");
	put(ix, INDEX_CF_OBJECTS, "e", "db-e");
	b = index_batch_new(ix);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(index_batch_count(b), 0);

	bput(b, INDEX_CF_OBJECTS, "a", "batch-a");
	bput(b, INDEX_CF_OBJECTS, "c", "batch-c");
	bdel(b, INDEX_CF_OBJECTS, "b");
	bexpect(b, INDEX_CF_OBJECTS, "a", "batch-a");
	bexpect(b, INDEX_CF_OBJECTS, "c", "batch-c");
	/* A delete in the batch hides the database's value. */
	bexpect_missing(b, INDEX_CF_OBJECTS, "b");
	/* Untouched keys fall through to the database. */
	bexpect(b, INDEX_CF_OBJECTS, "e", "db-e");
	bexpect_missing(b, INDEX_CF_OBJECTS, "d");

	/* The newest update of a key wins. */
	bput(b, INDEX_CF_OBJECTS, "a", "batch-a2");
	bexpect(b, INDEX_CF_OBJECTS, "a", "batch-a2");
	bdel(b, INDEX_CF_OBJECTS, "c");
	bexpect_missing(b, INDEX_CF_OBJECTS, "c");
	bput(b, INDEX_CF_OBJECTS, "b", "batch-b");
	bexpect(b, INDEX_CF_OBJECTS, "b", "batch-b");

	/* The database does not see any of it before commit. */
	expect(ix, INDEX_CF_OBJECTS, "a", "db-a");
	expect(ix, INDEX_CF_OBJECTS, "b", "db-b");
	expect_missing(ix, INDEX_CF_OBJECTS, "c");

	ck_assert_int_eq(index_batch_commit(b), 0);
	index_batch_free(b);
	expect(ix, INDEX_CF_OBJECTS, "a", "batch-a2");
	expect(ix, INDEX_CF_OBJECTS, "b", "batch-b");
	expect_missing(ix, INDEX_CF_OBJECTS, "c");
	expect(ix, INDEX_CF_OBJECTS, "e", "db-e");
	index_close(ix);
}
END_TEST

START_TEST(t_batch_savepoint)
{
	struct index *ix = open_ix(NULL);
	struct index_batch *b;

	put(ix, INDEX_CF_OBJECTS, "c", "db-c");
	b = index_batch_new(ix);
	ck_assert_ptr_nonnull(b);

	bput(b, INDEX_CF_OBJECTS, "a", "1");
	ck_assert_int_eq(index_batch_count(b), 1);
	index_batch_savepoint(b);
	bput(b, INDEX_CF_OBJECTS, "b", "2");
	bput(b, INDEX_CF_OBJECTS, "a", "3");
	bdel(b, INDEX_CF_OBJECTS, "c");
	bput(b, INDEX_CF_CHUNKS, "z", "4");
	ck_assert_int_eq(index_batch_count(b), 5);
	bexpect(b, INDEX_CF_OBJECTS, "a", "3");
	bexpect(b, INDEX_CF_OBJECTS, "b", "2");
	bexpect_missing(b, INDEX_CF_OBJECTS, "c");
	bexpect(b, INDEX_CF_CHUNKS, "z", "4");

	/* Only what came after the savepoint is undone. */
	ck_assert_int_eq(index_batch_rollback(b), 0);
	ck_assert_int_eq(index_batch_count(b), 1);
	bexpect(b, INDEX_CF_OBJECTS, "a", "1");
	bexpect_missing(b, INDEX_CF_OBJECTS, "b");
	bexpect(b, INDEX_CF_OBJECTS, "c", "db-c");
	bexpect_missing(b, INDEX_CF_CHUNKS, "z");

	/* Nested savepoints unwind one at a time. */
	index_batch_savepoint(b);
	bput(b, INDEX_CF_OBJECTS, "d", "5");
	index_batch_savepoint(b);
	bput(b, INDEX_CF_OBJECTS, "e", "6");
	ck_assert_int_eq(index_batch_count(b), 3);
	ck_assert_int_eq(index_batch_rollback(b), 0);
	ck_assert_int_eq(index_batch_count(b), 2);
	bexpect(b, INDEX_CF_OBJECTS, "d", "5");
	bexpect_missing(b, INDEX_CF_OBJECTS, "e");
	ck_assert_int_eq(index_batch_rollback(b), 0);
	ck_assert_int_eq(index_batch_count(b), 1);
	bexpect_missing(b, INDEX_CF_OBJECTS, "d");
	/* No savepoint left: an error, and the batch is unchanged. */
	ck_assert_int_eq(index_batch_rollback(b), STRATA_EINDEX);
	ck_assert_int_eq(index_batch_count(b), 1);
	bexpect(b, INDEX_CF_OBJECTS, "a", "1");

	ck_assert_int_eq(index_batch_commit(b), 0);
	index_batch_free(b);
	expect(ix, INDEX_CF_OBJECTS, "a", "1");
	expect_missing(ix, INDEX_CF_OBJECTS, "b");
	expect(ix, INDEX_CF_OBJECTS, "c", "db-c");
	expect_missing(ix, INDEX_CF_OBJECTS, "d");
	expect_missing(ix, INDEX_CF_OBJECTS, "e");
	expect_missing(ix, INDEX_CF_CHUNKS, "z");
	index_close(ix);
}
END_TEST

START_TEST(t_batch_count_commit)
{
	struct index *ix = open_ix(NULL);
	struct index_batch *b = index_batch_new(ix);

	ck_assert_ptr_nonnull(b);
	put(ix, INDEX_CF_BUCKETS, "old", "x");
	ck_assert_int_eq(index_batch_count(b), 0);
	bput(b, INDEX_CF_BUCKETS, "k1", "v1");
	ck_assert_int_eq(index_batch_count(b), 1);
	bput(b, INDEX_CF_CHUNKS, "k2", "v2");
	ck_assert_int_eq(index_batch_count(b), 2);
	bdel(b, INDEX_CF_BUCKETS, "old");
	ck_assert_int_eq(index_batch_count(b), 3);
	/* A delete of an absent key is still an update. */
	bdel(b, INDEX_CF_BUCKETS, "never");
	ck_assert_int_eq(index_batch_count(b), 4);

	ck_assert_int_eq(index_batch_commit(b), 0);
	expect(ix, INDEX_CF_BUCKETS, "k1", "v1");
	expect(ix, INDEX_CF_CHUNKS, "k2", "v2");
	expect_missing(ix, INDEX_CF_BUCKETS, "old");
	expect_missing(ix, INDEX_CF_BUCKETS, "never");
	index_batch_free(b);

	ix = reopen(ix, NULL);
	expect(ix, INDEX_CF_BUCKETS, "k1", "v1");
	expect(ix, INDEX_CF_CHUNKS, "k2", "v2");
	expect_missing(ix, INDEX_CF_BUCKETS, "old");
	index_close(ix);
}
END_TEST

START_TEST(t_batch_uncommitted)
{
	struct index *ix = open_ix(NULL);
	struct index_batch *b = index_batch_new(ix);

	ck_assert_ptr_nonnull(b);
	put(ix, INDEX_CF_OBJECTS, "keep", "db");
	bput(b, INDEX_CF_OBJECTS, "new", "batch");
	bput(b, INDEX_CF_OBJECTS, "keep", "batch");
	bput(b, INDEX_CF_META, "m", "batch");
	ck_assert_int_eq(index_batch_count(b), 3);
	index_batch_free(b);
	index_batch_free(NULL);	/* a no-op */

	expect_missing(ix, INDEX_CF_OBJECTS, "new");
	expect(ix, INDEX_CF_OBJECTS, "keep", "db");
	expect_missing(ix, INDEX_CF_META, "m");
	ix = reopen(ix, NULL);
	expect_missing(ix, INDEX_CF_OBJECTS, "new");
	expect(ix, INDEX_CF_OBJECTS, "keep", "db");
	expect_missing(ix, INDEX_CF_META, "m");
	index_close(ix);
}
END_TEST

START_TEST(t_batch_empty_commit)
{
	struct index *ix = open_ix(NULL);
	struct index_batch *b = index_batch_new(ix);
	struct index_iter *it;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(index_batch_commit(b), 0);
	/* Emptied by a rollback: also nothing to write. */
	index_batch_savepoint(b);
	bput(b, INDEX_CF_OBJECTS, "gone", "x");
	ck_assert_int_eq(index_batch_rollback(b), 0);
	ck_assert_int_eq(index_batch_count(b), 0);
	ck_assert_int_eq(index_batch_commit(b), 0);
	index_batch_free(b);

	expect_missing(ix, INDEX_CF_OBJECTS, "gone");
	for (int cf = 0; cf < INDEX_CF__COUNT; cf++) {
		it = index_iter_new(ix, (enum index_cf)cf, NULL, 0, NULL, 0);
		ck_assert_ptr_nonnull(it);
		expect_scan(it, "");
		index_iter_free(it);
	}
	index_close(ix);
}
END_TEST

/* Bytes of write-ahead log files (*.log) in the index directory. */
static uint64_t wal_bytes(void)
{
	DIR *d = opendir(dbpath);
	struct dirent *de;
	uint64_t n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct stat st;
		char *p;

		if (len < 4 || strcmp(de->d_name + len - 4, ".log") != 0)
			continue;
		p = path_in(dbpath, de->d_name);
		if (stat(p, &st) == 0)
			n += (uint64_t)st.st_size;
		free(p);
	}
	closedir(d);
	return n;
}

/*
 * A family written once and then left alone must not keep every log since:
 * its memtable would hold the oldest log, and with it all the later ones,
 * until the next start (measured: 6.5 GB of logs for a 135 MB index after
 * 90 s of small puts and deletes).  384 MiB written to one family leave at
 * most the cap's worth of logs (and the memtable being filled).
 */
START_TEST(t_wal_bounded)
{
	const size_t V = 1u << 20;
	struct index *ix = open_ix(NULL);
	char *v = malloc(V);
	uint64_t most = 0;

	ck_assert_ptr_nonnull(v);
	memset(v, 'w', V);
	put(ix, INDEX_CF_BUCKETS, "quiet", "b");
	for (unsigned i = 0; i < 384; i += 8) {
		struct index_batch *b = index_batch_new(ix);
		char k[16];

		ck_assert_ptr_nonnull(b);
		for (unsigned j = i; j < i + 8; j++) {
			snprintf(k, sizeof(k), "k%06u", j);
			index_batch_put(b, INDEX_CF_OBJECTS, k, strlen(k), v, V);
		}
		ck_assert_int_eq(index_batch_commit(b), 0);
		index_batch_free(b);
		if (wal_bytes() > most)
			most = wal_bytes();
	}
	/* Obsolete logs go in the background, after their flush. */
	for (int t = 0; t < 100 && wal_bytes() > INDEX_WAL_MAX + (128u << 20); t++)
		usleep(50000);
	ck_assert_uint_le(wal_bytes(), INDEX_WAL_MAX + (128u << 20));
	expect(ix, INDEX_CF_BUCKETS, "quiet", "b");
	free(v);
	index_close(ix);
}
END_TEST

START_TEST(t_cf_independent)
{
	struct index *ix = open_ix(NULL);
	struct index_batch *b;

	for (int cf = 0; cf < INDEX_CF__COUNT; cf++)
		put(ix, (enum index_cf)cf, "same", cf_names[cf]);
	put(ix, INDEX_CF_OBJECTS, "only-objects", "o");
	for (int cf = 0; cf < INDEX_CF__COUNT; cf++) {
		expect(ix, (enum index_cf)cf, "same", cf_names[cf]);
		if (cf != INDEX_CF_OBJECTS)
			expect_missing(ix, (enum index_cf)cf, "only-objects");
	}

	/* A batch delete in one family leaves the others alone. */
	b = index_batch_new(ix);
	ck_assert_ptr_nonnull(b);
	bdel(b, INDEX_CF_CHUNKS, "same");
	bput(b, INDEX_CF_SEGMENTS, "same", "changed");
	bexpect_missing(b, INDEX_CF_CHUNKS, "same");
	bexpect(b, INDEX_CF_SEGMENTS, "same", "changed");
	bexpect(b, INDEX_CF_SEGCHUNKS, "same", "segchunks");
	ck_assert_int_eq(index_batch_commit(b), 0);
	index_batch_free(b);

	for (int cf = 0; cf < INDEX_CF__COUNT; cf++) {
		if (cf == INDEX_CF_CHUNKS)
			expect_missing(ix, INDEX_CF_CHUNKS, "same");
		else if (cf == INDEX_CF_SEGMENTS)
			expect(ix, INDEX_CF_SEGMENTS, "same", "changed");
		else
			expect(ix, (enum index_cf)cf, "same", cf_names[cf]);
	}

	/* A scan of one family sees only that family's keys. */
	{
		struct index_iter *it = index_iter_new(ix, INDEX_CF_KEYS,
						       NULL, 0, NULL, 0);

		ck_assert_ptr_nonnull(it);
		/* "same" = "keys" */
		expect_scan(it, "73616d65=6b657973");
		index_iter_free(it);
	}
	index_close(ix);
}
END_TEST

/* Bytewise order: unsigned bytes, a prefix before its extensions. */
static const struct {
	uint8_t k[3];
	size_t len;
} order_keys[] = {
	{ { 0xff, 0x00 }, 2 },
	{ { 0x80 }, 1 },
	{ { 'a', 'b' }, 2 },
	{ { 0x00 }, 1 },
	{ { 0x7f }, 1 },
	{ { 0xff }, 1 },
	{ { 0x00, 0x00 }, 2 },
	{ { 'b' }, 1 },
	{ { 0x01 }, 1 },
	{ { 'a' }, 1 },
	{ { 0x00, 0xff, 0xff }, 3 },
};

START_TEST(t_iter_order)
{
	struct index *ix = open_ix(NULL);
	struct index_iter *it;

	/* Written out of order, some through a batch and one flushed. */
	for (size_t i = 0; i < 6; i++)
		ck_assert_int_eq(index_put_sync(ix, INDEX_CF_OBJECTS,
						order_keys[i].k,
						order_keys[i].len, "v", 1), 0);
	ck_assert_int_eq(index_flush(ix), 0);
	{
		struct index_batch *b = index_batch_new(ix);

		ck_assert_ptr_nonnull(b);
		for (size_t i = 6; i < sizeof(order_keys) /
				       sizeof(order_keys[0]); i++)
			index_batch_put(b, INDEX_CF_OBJECTS, order_keys[i].k,
					order_keys[i].len, "w", 1);
		ck_assert_int_eq(index_batch_commit(b), 0);
		index_batch_free(b);
	}

	it = index_iter_new(ix, INDEX_CF_OBJECTS, NULL, 0, NULL, 0);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "00=76,0000=77,00ffff=77,01=77,61=77,6162=76,62=77,"
			"7f=76,80=76,ff=76,ff00=76");
	index_iter_free(it);
	index_close(ix);
}
END_TEST

START_TEST(t_iter_bounds)
{
	struct index *ix = open_ix(NULL);
	const char *keys[] = { "a", "b", "bb", "c", "d", "e" };
	struct index_iter *it;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		put(ix, INDEX_CF_OBJECTS, keys[i], keys[i]);
		/* Same keys in a neighbouring family: never in the scans. */
		put(ix, INDEX_CF_CHUNKS, keys[i], "other");
	}

	/* [b, d): lower included, upper excluded. */
	it = index_iter_new(ix, INDEX_CF_OBJECTS, "b", 1, "d", 1);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "62=62,6262=6262,63=63");
	index_iter_free(it);

	/* Bounds that fall between keys. */
	it = index_iter_new(ix, INDEX_CF_OBJECTS, "ba", 2, "bc", 2);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "6262=6262");
	index_iter_free(it);

	/* NULL upper: to the end of the family. */
	it = index_iter_new(ix, INDEX_CF_OBJECTS, "c", 1, NULL, 0);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "63=63,64=64,65=65");
	index_iter_free(it);

	/* NULL lower: from the start. */
	it = index_iter_new(ix, INDEX_CF_OBJECTS, NULL, 0, "b", 1);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "61=61");
	index_iter_free(it);

	/* Empty ranges. */
	it = index_iter_new(ix, INDEX_CF_OBJECTS, "c", 1, "c", 1);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "");
	index_iter_free(it);
	it = index_iter_new(ix, INDEX_CF_OBJECTS, "f", 1, NULL, 0);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "");
	index_iter_free(it);
	index_close(ix);
}
END_TEST

START_TEST(t_iter_bounds_copied)
{
	struct index *ix = open_ix(NULL);
	char lower[2] = "b", upper[2] = "d";
	struct index_iter *it;

	put(ix, INDEX_CF_OBJECTS, "a", "1");
	put(ix, INDEX_CF_OBJECTS, "b", "2");
	put(ix, INDEX_CF_OBJECTS, "c", "3");
	put(ix, INDEX_CF_OBJECTS, "d", "4");
	it = index_iter_new(ix, INDEX_CF_OBJECTS, lower, 1, upper, 1);
	ck_assert_ptr_nonnull(it);
	/* The caller's buffers may change once the iterator exists. */
	lower[0] = 'a';
	upper[0] = 'z';
	expect_scan(it, "62=32,63=33");
	index_iter_free(it);
	index_close(ix);
}
END_TEST

START_TEST(t_iter_prefix)
{
	struct index *ix = open_ix(NULL);
	/* Bucket-id-prefixed keys, as meta.c lays out objects. */
	const uint8_t p1[2] = { 0x00, 0x01 }, p2[2] = { 0x00, 0x02 };
	const uint8_t k0[3] = { 0x00, 0x00, 'z' }, k1[3] = { 0x00, 0x01, 'a' };
	const uint8_t k2[4] = { 0x00, 0x01, 0xff, 0xff };
	const uint8_t k3[2] = { 0x00, 0x02 }, k4[3] = { 0x00, 0x02, 'a' };
	const enum index_cf O = INDEX_CF_OBJECTS;
	struct index_iter *it;

	ck_assert_int_eq(index_put_sync(ix, O, k0, 3, "0", 1), 0);
	ck_assert_int_eq(index_put_sync(ix, O, k1, 3, "1", 1), 0);
	ck_assert_int_eq(index_put_sync(ix, O, k2, 4, "2", 1), 0);
	ck_assert_int_eq(index_put_sync(ix, O, k3, 2, "3", 1), 0);
	ck_assert_int_eq(index_put_sync(ix, O, k4, 3, "4", 1), 0);
	ck_assert_int_eq(index_put_sync(ix, O, p1, 2, "p", 1), 0);

	it = index_iter_new(ix, O, p1, 2, p2, 2);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "0001=70,000161=31,0001ffff=32");
	index_iter_free(it);
	index_close(ix);
}
END_TEST

START_TEST(t_iter_seek)
{
	struct index *ix = open_ix(NULL);
	const char *keys[] = { "a", "b", "c", "d", "e" };
	struct index_iter *it;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		put(ix, INDEX_CF_SEGMENTS, keys[i], keys[i]);
	it = index_iter_new(ix, INDEX_CF_SEGMENTS, "b", 1, "e", 1);
	ck_assert_ptr_nonnull(it);

	index_iter_seek(it, "c", 1);
	expect_scan(it, "63=63,64=64");
	/* Between keys: the next one up. */
	index_iter_seek(it, "bz", 2);
	expect_scan(it, "63=63,64=64");
	/* Below the lower bound: at the lower bound. */
	index_iter_seek(it, "a", 1);
	expect_scan(it, "62=62,63=63,64=64");
	/* At or past the upper bound: nothing. */
	index_iter_seek(it, "e", 1);
	expect_scan(it, "");
	index_iter_seek(it, "zz", 2);
	expect_scan(it, "");
	index_iter_free(it);

	/* Unbounded: seek past everything, then back. */
	it = index_iter_new(ix, INDEX_CF_SEGMENTS, NULL, 0, NULL, 0);
	ck_assert_ptr_nonnull(it);
	index_iter_seek(it, "d", 1);
	expect_scan(it, "64=64,65=65");
	index_iter_seek(it, "f", 1);
	expect_scan(it, "");
	index_iter_seek(it, "", 0);
	expect_scan(it, "61=61,62=62,63=63,64=64,65=65");
	index_iter_free(it);
	index_close(ix);
}
END_TEST

START_TEST(t_batch_iter)
{
	struct index *ix = open_ix(NULL);
	struct index_batch *b;
	struct index_iter *it;
	char *got;

	put(ix, INDEX_CF_OBJECTS, "a", "db-a");
	put(ix, INDEX_CF_OBJECTS, "b", "db-b");
	put(ix, INDEX_CF_OBJECTS, "c", "db-c");
	put(ix, INDEX_CF_OBJECTS, "d", "db-d");
	put(ix, INDEX_CF_OBJECTS, "f", "db-f");
	b = index_batch_new(ix);
	ck_assert_ptr_nonnull(b);
	bput(b, INDEX_CF_OBJECTS, "bb", "B");	/* new, between db keys */
	bput(b, INDEX_CF_OBJECTS, "c", "C");	/* overwrites a db key */
	bdel(b, INDEX_CF_OBJECTS, "b");		/* hides a db key */
	bput(b, INDEX_CF_OBJECTS, "e", "E");	/* new */
	bput(b, INDEX_CF_OBJECTS, "0", "Z");	/* new, before everything */
	bdel(b, INDEX_CF_OBJECTS, "zz");	/* absent everywhere */
	bput(b, INDEX_CF_OBJECTS, "g", "G");
	bdel(b, INDEX_CF_OBJECTS, "g");	/* put then delete: gone */
	bdel(b, INDEX_CF_OBJECTS, "f");
	bput(b, INDEX_CF_OBJECTS, "f", "F");	/* delete then put: back */
	bput(b, INDEX_CF_CHUNKS, "cc", "X");	/* another family */

	/* Everything: what the family holds once the batch commits. */
	it = index_batch_iter_new(b, INDEX_CF_OBJECTS, NULL, 0, NULL, 0);
	ck_assert_ptr_nonnull(it);
	/* 0=Z a=db-a bb=B c=C d=db-d e=E f=F */
	expect_scan(it, "30=5a,61=64622d61,6262=42,63=43,64=64622d64,65=45,"
			"66=46");
	/* Seek within the merged view. */
	index_iter_seek(it, "bc", 2);
	expect_scan(it, "63=43,64=64622d64,65=45,66=46");
	index_iter_seek(it, "b", 1);
	got = scan_until(it, "c", 1);
	ck_assert_str_eq(got, "6262=42");
	free(got);
	index_iter_free(it);

	/* Bounded: [b, e).  Batch keys past upper may show: stop there. */
	it = index_batch_iter_new(b, INDEX_CF_OBJECTS, "b", 1, "e", 1);
	ck_assert_ptr_nonnull(it);
	got = scan_until(it, "e", 1);
	ck_assert_str_eq(got, "6262=42,63=43,64=64622d64");
	free(got);
	index_iter_free(it);

	/* Another family sees only its own batch updates. */
	it = index_batch_iter_new(b, INDEX_CF_CHUNKS, NULL, 0, NULL, 0);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "6363=58");
	index_iter_free(it);

	/* A plain iterator does not see the batch. */
	it = index_iter_new(ix, INDEX_CF_OBJECTS, NULL, 0, NULL, 0);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "61=64622d61,62=64622d62,63=64622d63,64=64622d64,"
			"66=64622d66");
	index_iter_free(it);

	/* After commit, the database holds what the batch iterator showed. */
	ck_assert_int_eq(index_batch_commit(b), 0);
	index_batch_free(b);
	it = index_iter_new(ix, INDEX_CF_OBJECTS, NULL, 0, NULL, 0);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "30=5a,61=64622d61,6262=42,63=43,64=64622d64,65=45,"
			"66=46");
	index_iter_free(it);
	index_close(ix);
}
END_TEST

START_TEST(t_batch_iter_empty_batch)
{
	struct index *ix = open_ix(NULL);
	struct index_batch *b;
	struct index_iter *it;

	put(ix, INDEX_CF_BUCKETS, "x", "1");
	put(ix, INDEX_CF_BUCKETS, "y", "2");
	b = index_batch_new(ix);
	ck_assert_ptr_nonnull(b);
	/* Nothing in the batch: the database alone, bounds honoured. */
	it = index_batch_iter_new(b, INDEX_CF_BUCKETS, "y", 1, NULL, 0);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "79=32");
	index_iter_free(it);
	/* Everything deleted in the batch: nothing. */
	bdel(b, INDEX_CF_BUCKETS, "x");
	bdel(b, INDEX_CF_BUCKETS, "y");
	it = index_batch_iter_new(b, INDEX_CF_BUCKETS, NULL, 0, NULL, 0);
	ck_assert_ptr_nonnull(it);
	expect_scan(it, "");
	index_iter_free(it);
	index_batch_free(b);
	index_close(ix);
}
END_TEST

START_TEST(t_fault_read)
{
	struct fault f;
	struct index *ix;
	struct index_batch *b;
	uint8_t *val = NULL;
	size_t len = 777;

	fault_init(&f);
	ix = open_ix(&f);
	put(ix, INDEX_CF_OBJECTS, "k", "v");

	/* index_get: the armed errno, outputs untouched, once. */
	fault_arm(&f, FAULT_INDEX_READ, 0, 1, -EIO);
	ck_assert_int_eq(index_get(ix, INDEX_CF_OBJECTS, "k", 1, &val, &len),
			 -EIO);
	ck_assert_ptr_null(val);
	ck_assert_uint_eq(len, 777);
	ck_assert_uint_eq(fault_hits(&f, FAULT_INDEX_READ), 1);
	expect(ix, INDEX_CF_OBJECTS, "k", "v");
	/* A missing key under the fault still reports the fault. */
	fault_arm(&f, FAULT_INDEX_READ, 0, 1, -EACCES);
	ck_assert_int_eq(index_get(ix, INDEX_CF_OBJECTS, "no", 2, &val, &len),
			 -EACCES);
	ck_assert_uint_eq(fault_hits(&f, FAULT_INDEX_READ), 2);

	/* index_batch_get, for a batch value and a database value. */
	b = index_batch_new(ix);
	ck_assert_ptr_nonnull(b);
	bput(b, INDEX_CF_OBJECTS, "bk", "bv");
	fault_arm(&f, FAULT_INDEX_READ, 0, 2, -ENOSPC);
	ck_assert_int_eq(index_batch_get(b, INDEX_CF_OBJECTS, "bk", 2, &val,
					 &len), -ENOSPC);
	ck_assert_int_eq(index_batch_get(b, INDEX_CF_OBJECTS, "k", 1, &val,
					 &len), -ENOSPC);
	ck_assert_ptr_null(val);
	ck_assert_uint_eq(len, 777);
	ck_assert_uint_eq(fault_hits(&f, FAULT_INDEX_READ), 4);
	bexpect(b, INDEX_CF_OBJECTS, "bk", "bv");
	bexpect(b, INDEX_CF_OBJECTS, "k", "v");

	/* Skip counts both kinds of read against the one point. */
	fault_arm(&f, FAULT_INDEX_READ, 1, 1, -EROFS);
	expect(ix, INDEX_CF_OBJECTS, "k", "v");
	ck_assert_int_eq(index_batch_get(b, INDEX_CF_OBJECTS, "k", 1, &val,
					 &len), -EROFS);
	bexpect(b, INDEX_CF_OBJECTS, "k", "v");
	ck_assert_uint_eq(fault_hits(&f, FAULT_INDEX_READ), 5);

	/* The read point does not touch writes, nor the write point reads. */
	fault_arm(&f, FAULT_INDEX_READ, 0, 100, -EIO);
	put(ix, INDEX_CF_OBJECTS, "w", "1");
	ck_assert_int_eq(index_batch_commit(b), 0);
	fault_arm(&f, FAULT_INDEX_READ, 0, 0, 0);
	fault_arm(&f, FAULT_INDEX_WRITE, 0, 100, -EIO);
	expect(ix, INDEX_CF_OBJECTS, "w", "1");
	expect(ix, INDEX_CF_OBJECTS, "bk", "bv");
	fault_arm(&f, FAULT_INDEX_WRITE, 0, 0, 0);
	ck_assert_uint_eq(fault_hits(&f, FAULT_INDEX_WRITE), 0);

	index_batch_free(b);
	index_close(ix);
	fault_release(&f);
}
END_TEST

START_TEST(t_fault_commit)
{
	struct fault f;
	struct index *ix;
	struct index_batch *b;

	fault_init(&f);
	ix = open_ix(&f);
	put(ix, INDEX_CF_OBJECTS, "keep", "old");
	put(ix, INDEX_CF_OBJECTS, "gone", "x");

	b = index_batch_new(ix);
	ck_assert_ptr_nonnull(b);
	bput(b, INDEX_CF_OBJECTS, "keep", "new");
	bdel(b, INDEX_CF_OBJECTS, "gone");
	bput(b, INDEX_CF_OBJECTS, "fresh", "f");
	bput(b, INDEX_CF_CHUNKS, "c", "c");
	fault_arm(&f, FAULT_INDEX_WRITE, 0, 1, -ENOSPC);
	ck_assert_int_eq(index_batch_commit(b), -ENOSPC);
	ck_assert_uint_eq(fault_hits(&f, FAULT_INDEX_WRITE), 1);

	/* Nothing of it applied; the batch itself is intact. */
	expect(ix, INDEX_CF_OBJECTS, "keep", "old");
	expect(ix, INDEX_CF_OBJECTS, "gone", "x");
	expect_missing(ix, INDEX_CF_OBJECTS, "fresh");
	expect_missing(ix, INDEX_CF_CHUNKS, "c");
	ck_assert_int_eq(index_batch_count(b), 4);
	bexpect(b, INDEX_CF_OBJECTS, "keep", "new");
	index_batch_free(b);
	/* Nor after recovery: nothing reached the WAL. */
	ix = reopen(ix, &f);
	expect(ix, INDEX_CF_OBJECTS, "keep", "old");
	expect(ix, INDEX_CF_OBJECTS, "gone", "x");
	expect_missing(ix, INDEX_CF_OBJECTS, "fresh");
	expect_missing(ix, INDEX_CF_CHUNKS, "c");

	/* A failed commit can be retried with the same batch. */
	b = index_batch_new(ix);
	ck_assert_ptr_nonnull(b);
	bput(b, INDEX_CF_OBJECTS, "keep", "new");
	bdel(b, INDEX_CF_OBJECTS, "gone");
	fault_arm(&f, FAULT_INDEX_WRITE, 1, 1, -EIO);
	put(ix, INDEX_CF_META, "skipped", "1");	/* the skipped write */
	ck_assert_int_eq(index_batch_commit(b), -EIO);
	expect(ix, INDEX_CF_OBJECTS, "keep", "old");
	ck_assert_int_eq(index_batch_commit(b), 0);
	ck_assert_uint_eq(fault_hits(&f, FAULT_INDEX_WRITE), 2);
	index_batch_free(b);
	expect(ix, INDEX_CF_OBJECTS, "keep", "new");
	expect_missing(ix, INDEX_CF_OBJECTS, "gone");
	expect(ix, INDEX_CF_META, "skipped", "1");
	index_close(ix);
	fault_release(&f);
}
END_TEST

START_TEST(t_fault_put_sync)
{
	struct fault f;
	struct index *ix;

	fault_init(&f);
	ix = open_ix(&f);
	put(ix, INDEX_CF_META, "format", "1");

	fault_arm(&f, FAULT_INDEX_WRITE, 0, 2, -EDQUOT);
	ck_assert_int_eq(index_put_sync(ix, INDEX_CF_META, "new", 3, "v", 1),
			 -EDQUOT);
	ck_assert_int_eq(index_put_sync(ix, INDEX_CF_META, "format", 6, "2",
					1), -EDQUOT);
	ck_assert_uint_eq(fault_hits(&f, FAULT_INDEX_WRITE), 2);
	expect_missing(ix, INDEX_CF_META, "new");
	expect(ix, INDEX_CF_META, "format", "1");

	/* Spent: writes go through again. */
	put(ix, INDEX_CF_META, "new", "v");
	expect(ix, INDEX_CF_META, "new", "v");
	ix = reopen(ix, &f);
	expect(ix, INDEX_CF_META, "new", "v");
	expect(ix, INDEX_CF_META, "format", "1");
	index_close(ix);
	fault_release(&f);
}
END_TEST

START_TEST(t_flush)
{
	struct index *ix = open_ix(NULL);
	uint8_t val[200];

	ck_assert_int_eq(count_files_with_suffix(".sst"), 0);
	/* Flushing empty families is fine too. */
	ck_assert_int_eq(index_flush(ix), 0);
	ck_assert_int_eq(count_files_with_suffix(".sst"), 0);

	for (int i = 0; i < 100; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%03d", i);
		tu_fill(val, sizeof(val), (uint64_t)i);
		ck_assert_int_eq(index_put_sync(ix, INDEX_CF_CHUNKS, key,
						strlen(key), val, sizeof(val)),
				 0);
	}
	put(ix, INDEX_CF_META, "format", "1");
	ck_assert_int_eq(index_flush(ix), 0);
	/* One table per family that held data. */
	ck_assert_int_eq(count_files_with_suffix(".sst"), 2);

	ix = reopen(ix, NULL);
	for (int i = 0; i < 100; i++) {
		char key[16];
		uint8_t *got;
		size_t len;

		snprintf(key, sizeof(key), "k%03d", i);
		tu_fill(val, sizeof(val), (uint64_t)i);
		ck_assert_int_eq(index_get(ix, INDEX_CF_CHUNKS, key,
					   strlen(key), &got, &len), 0);
		ck_assert_uint_eq(len, sizeof(val));
		ck_assert(memcmp(got, val, len) == 0);
		free(got);
	}
	expect(ix, INDEX_CF_META, "format", "1");
	/* Reads through a batch reach the flushed tables as well. */
	{
		struct index_batch *b = index_batch_new(ix);

		ck_assert_ptr_nonnull(b);
		bexpect(b, INDEX_CF_META, "format", "1");
		index_batch_free(b);
	}
	index_close(ix);
}
END_TEST

static Suite *index_suite(void)
{
	Suite *s = suite_create("index");
	TCase *tc = tcase_create("core"), *tw;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_open_creates);
	tcase_add_test(tc, t_reopen_keeps_data);
	tcase_add_test(tc, t_second_open_locked);
	tcase_add_test(tc, t_get_missing);
	tcase_add_test(tc, t_put_get);
	tcase_add_test(tc, t_empty_value);
	tcase_add_test(tc, t_batch_ryow);
	tcase_add_test(tc, t_batch_savepoint);
	tcase_add_test(tc, t_batch_count_commit);
	tcase_add_test(tc, t_batch_uncommitted);
	tcase_add_test(tc, t_batch_empty_commit);
	tcase_add_test(tc, t_cf_independent);
	tcase_add_test(tc, t_iter_order);
	tcase_add_test(tc, t_iter_bounds);
	tcase_add_test(tc, t_iter_bounds_copied);
	tcase_add_test(tc, t_iter_prefix);
	tcase_add_test(tc, t_iter_seek);
	tcase_add_test(tc, t_batch_iter);
	tcase_add_test(tc, t_batch_iter_empty_batch);
	tcase_add_test(tc, t_fault_read);
	tcase_add_test(tc, t_fault_commit);
	tcase_add_test(tc, t_fault_put_sync);
	tcase_add_test(tc, t_flush);
	tcase_add_test(tc, t_write_buffer_cap);
	suite_add_tcase(s, tc);
	/* Writes a few hundred MiB: its own time limit. */
	tw = tcase_create("wal");
	tcase_add_checked_fixture(tw, setup, teardown);
	tcase_set_timeout(tw, 60);
	tcase_add_test(tw, t_wal_bounded);
	suite_add_tcase(s, tw);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(index_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
