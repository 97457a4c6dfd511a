// SPDX-License-Identifier: Apache-2.0
/* The chunk engine: buckets, objects, ranges, listing, dedup, garbage,
 * durability across reopen, corruption, encryption and every fault point. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index.h"
#include "meta.h"
#include "record.h"
#include "store_int.h"
#include "storeutil.h"
#include "testutil.h"
#include "strata/error.h"
#include "banned.h"

static struct tenv E;

static void setup(void)
{
	tenv_init(&E, NULL);
	ck_assert_int_eq(tenv_open(&E), 0);
	ck_assert_int_eq(tenv_mb(&E, "data"), 0);
}

static void teardown(void)
{
	tenv_release(&E, 1);
}

static void reopen(void)
{
	tenv_close(&E);
	ck_assert_int_eq(tenv_open(&E), 0);
}

static void check_object(const char *key, const uint8_t *want, size_t len)
{
	uint8_t *got;
	size_t glen;

	ck_assert_int_eq(tenv_get(&E, "data", key, 0, UINT64_MAX, &got, &glen), 0);
	ck_assert_uint_eq(glen, len);
	ck_assert(memcmp(got, want, len) == 0);
	free(got);
}

START_TEST(roundtrip_sizes)
{
	const size_t C = 64 << 10;
	const size_t sizes[] = { 0, 1, C - 1, C, C + 1, 3 * C + 17, 10 * C };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char key[32];
		uint8_t *buf = tu_xmalloc(sizes[i]);
		struct store_object_info info;

		snprintf(key, sizeof(key), "obj/%zu", sizes[i]);
		tu_fill(buf, sizes[i], i);
		ck_assert_int_eq(tenv_put(&E, "data", key, buf, sizes[i], &info), 0);
		ck_assert_uint_eq(info.size, sizes[i]);
		ck_assert_uint_eq(info.nchunks, (sizes[i] + C - 1) / C);
		check_object(key, buf, sizes[i]);
		free(buf);
	}
	/* Still there after a reopen. */
	reopen();
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char key[32];
		uint8_t *buf = tu_xmalloc(sizes[i]);

		snprintf(key, sizeof(key), "obj/%zu", sizes[i]);
		tu_fill(buf, sizes[i], i);
		check_object(key, buf, sizes[i]);
		free(buf);
	}
}
END_TEST

START_TEST(etag_single_chunk_is_sha256)
{
	struct store_object_info info;

	ck_assert_int_eq(tenv_put(&E, "data", "abc", "abc", 3, &info), 0);
	ck_assert_str_eq(info.etag_hex,
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert_int_eq(tenv_put(&E, "data", "empty", "", 0, &info), 0);
	ck_assert_str_eq(info.etag_hex,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(ranges_at_chunk_boundaries)
{
	const size_t C = 64 << 10, N = 4 * C + 100;
	uint8_t *buf = tu_xmalloc(N), *got;
	size_t glen;
	const uint64_t offs[] = { 0, 1, C - 1, C, C + 1, 2 * C, N - 1, N };
	const uint64_t lens[] = { 0, 1, C - 1, C, C + 1, 3 * C, UINT64_MAX };

	tu_fill(buf, N, 42);
	ck_assert_int_eq(tenv_put(&E, "data", "r", buf, N, NULL), 0);
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			uint64_t want = lens[j] > N - offs[i] ? N - offs[i] : lens[j];

			ck_assert_int_eq(tenv_get(&E, "data", "r", offs[i], lens[j],
						  &got, &glen), 0);
			ck_assert_uint_eq(glen, want);
			ck_assert(memcmp(got, buf + offs[i], want) == 0);
			free(got);
		}
	}
	ck_assert_int_eq(tenv_get(&E, "data", "r", N + 1, 1, &got, &glen),
			 STRATA_ERANGE);
	free(buf);
}
END_TEST

START_TEST(bucket_rules)
{
	struct store_bucket_info *v;
	size_t n;

	ck_assert_int_eq(tenv_mb(&E, "data"), STRATA_EBUCKETEXISTS);
	ck_assert_int_eq(store_bucket_create(E.s, "Bad_Name", NULL, 0, NULL, NULL),
			 STRATA_EBADBUCKET);
	ck_assert_int_eq(tenv_mb(&E, "other"), 0);
	ck_assert_int_eq(store_bucket_list(E.s, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].name, "data");
	ck_assert_str_eq(v[1].name, "other");
	free(v);
	ck_assert_int_eq(tenv_put(&E, "other", "k", "x", 1, NULL), 0);
	ck_assert_int_eq(tenv_rb(&E, "other"), STRATA_EBUCKETNOTEMPTY);
	ck_assert_int_eq(tenv_rm(&E, "other", "k"), 0);
	ck_assert_int_eq(tenv_rb(&E, "other"), 0);
	ck_assert_int_eq(tenv_rb(&E, "other"), STRATA_ENOBUCKET);
	ck_assert_int_eq(tenv_put(&E, "other", "k", "x", 1, NULL), STRATA_ENOBUCKET);
	/* Same name again: a new, empty bucket (the tombstone went too). */
	ck_assert_int_eq(tenv_mb(&E, "other"), 0);
	{
		struct store_list_opts lo = { 0 };
		struct store_list_result *r;

		ck_assert_int_eq(store_list(E.s, "other", &lo, &r), 0);
		ck_assert_uint_eq(r->n, 0);
		store_list_result_free(r);
	}
}
END_TEST

START_TEST(bad_keys)
{
	char big[1026];
	struct store_put *p;

	memset(big, 'a', sizeof(big));
	big[1025] = 0;
	ck_assert_int_eq(store_put_begin(E.s, "data", big, 1025, NULL, &p),
			 STRATA_EBADKEY);
	ck_assert_int_eq(store_put_begin(E.s, "data", "", 0, NULL, &p),
			 STRATA_EBADKEY);
	ck_assert_int_eq(store_put_begin(E.s, "data", "\xc0\xaf", 2, NULL, &p),
			 STRATA_EBADKEY);
	ck_assert_int_eq(store_put_begin(E.s, "nope", "k", 1, NULL, &p),
			 STRATA_ENOBUCKET);
	ck_assert_int_eq(tenv_put(&E, "data", big + 1, big, 1024, NULL), 0);
}
END_TEST

START_TEST(overwrite_and_delete)
{
	uint8_t a[1000], b[200000], *got;
	size_t glen;
	struct store_object_info i1, i2;

	tu_fill(a, sizeof(a), 1);
	tu_fill(b, sizeof(b), 2);
	ck_assert_int_eq(tenv_put(&E, "data", "k", a, sizeof(a), &i1), 0);
	ck_assert_int_eq(tenv_put(&E, "data", "k", b, sizeof(b), &i2), 0);
	ck_assert(i2.hlc > i1.hlc);
	check_object("k", b, sizeof(b));
	ck_assert_int_eq(tenv_rm(&E, "data", "k"), 0);
	ck_assert_int_eq(tenv_get(&E, "data", "k", 0, UINT64_MAX, &got, &glen),
			 STRATA_ENOOBJECT);
	ck_assert_int_eq(tenv_rm(&E, "data", "k"), STRATA_ENOOBJECT);
	reopen();
	ck_assert_int_eq(tenv_get(&E, "data", "k", 0, UINT64_MAX, &got, &glen),
			 STRATA_ENOOBJECT);
}
END_TEST

static void list_keys(const char *prefix, const char *after,
		      const char *delim, size_t limit, char *out, size_t outlen,
		      int *truncated)
{
	struct store_list_opts lo = {
		.prefix = prefix, .prefixlen = prefix ? strlen(prefix) : 0,
		.start_after = after, .start_after_len = after ? strlen(after) : 0,
		.delim = delim, .delimlen = delim ? strlen(delim) : 0,
		.limit = limit,
	};
	struct store_list_result *r;

	ck_assert_int_eq(store_list(E.s, "data", &lo, &r), 0);
	out[0] = 0;
	for (size_t i = 0; i < r->n; i++) {
		size_t l = strlen(out);
		snprintf(out + l, outlen - l, "%s%s", i ? "," : "", r->e[i].key);
	}
	if (truncated)
		*truncated = r->truncated;
	store_list_result_free(r);
}

START_TEST(listing)
{
	const char *keys[] = { "a", "b/1", "b/2", "b/c/3", "c", "d/4", "d0" };
	char out[512];
	int trunc;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ck_assert_int_eq(tenv_put(&E, "data", keys[i], "x", 1, NULL), 0);
	ck_assert_int_eq(tenv_rm(&E, "data", "c"), 0);
	list_keys(NULL, NULL, NULL, 0, out, sizeof(out), &trunc);
	ck_assert_str_eq(out, "a,b/1,b/2,b/c/3,d/4,d0");
	ck_assert_int_eq(trunc, 0);
	list_keys(NULL, NULL, "/", 0, out, sizeof(out), NULL);
	ck_assert_str_eq(out, "a,b/,d/,d0");
	list_keys("b/", NULL, "/", 0, out, sizeof(out), NULL);
	ck_assert_str_eq(out, "b/1,b/2,b/c/");
	list_keys("b", NULL, NULL, 0, out, sizeof(out), NULL);
	ck_assert_str_eq(out, "b/1,b/2,b/c/3");
	list_keys(NULL, "b/1", NULL, 2, out, sizeof(out), &trunc);
	ck_assert_str_eq(out, "b/2,b/c/3");
	ck_assert_int_eq(trunc, 1);
	/* Paging with a delimiter never repeats a prefix. */
	list_keys(NULL, NULL, "/", 2, out, sizeof(out), &trunc);
	ck_assert_str_eq(out, "a,b/");
	ck_assert_int_eq(trunc, 1);
	list_keys(NULL, "b/", "/", 2, out, sizeof(out), &trunc);
	ck_assert_str_eq(out, "d/,d0");
	list_keys("zzz", NULL, NULL, 0, out, sizeof(out), NULL);
	ck_assert_str_eq(out, "");
	/* A delimiter of several bytes (PROTOCOL.md: 1 to 16). */
	ck_assert_int_eq(tenv_put(&E, "data", "e::f::g", "x", 1, NULL), 0);
	ck_assert_int_eq(tenv_put(&E, "data", "e:h", "x", 1, NULL), 0);
	list_keys("e", NULL, "::", 0, out, sizeof(out), NULL);
	ck_assert_str_eq(out, "e::,e:h");
	list_keys("e::", NULL, "::", 0, out, sizeof(out), NULL);
	ck_assert_str_eq(out, "e::f::");
	list_keys(NULL, "e::", "::", 0, out, sizeof(out), NULL);
	ck_assert_str_eq(out, "e:h");
}
END_TEST

START_TEST(concurrent_puts_group_commit)
{
	enum { N = 64 };
	struct store_put *p[N];
	int done = 0, status[N];
	uint8_t buf[4096];
	struct store_stats st;

	for (int i = 0; i < N; i++) {
		char key[16];

		snprintf(key, sizeof(key), "c%02d", i);
		tu_fill(buf, sizeof(buf), (uint64_t)i);
		ck_assert_int_eq(store_put_begin(E.s, "data", key, strlen(key),
						 NULL, &p[i]), 0);
		ck_assert_int_eq(store_put_write(p[i], buf, sizeof(buf)), 0);
		status[i] = 1;
	}
	for (int i = 0; i < N; i++) {
		void commit_one(void *arg, int st, const struct store_object_info *info);
		store_put_commit(p[i], commit_one, &status[i]);
	}
	for (;;) {
		done = 1;
		for (int i = 0; i < N; i++)
			done &= status[i] <= 0;
		if (done)
			break;
		uv_run(&E.loop, UV_RUN_ONCE);
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(status[i], 0);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	/* 64 commits shared far fewer rounds. */
	ck_assert_uint_ge(st.commits, N);
	ck_assert_uint_lt(st.commit_rounds, N / 2);
	for (int i = 0; i < N; i++) {
		char key[16];

		snprintf(key, sizeof(key), "c%02d", i);
		tu_fill(buf, sizeof(buf), (uint64_t)i);
		check_object(key, buf, sizeof(buf));
	}
}
END_TEST

void commit_one(void *arg, int st, const struct store_object_info *info);
void commit_one(void *arg, int st, const struct store_object_info *info)
{
	(void)info;
	*(int *)arg = st < 0 ? st : 0;
	if (st < 0)
		*(int *)arg = st;
}


static uint64_t total_live(void)
{
	struct store_stats st;

	ck_assert_int_eq(store_stats(E.s, &st), 0);
	return st.live_bytes[0] + st.live_bytes[1];
}

/* Every byte in segment files is a header or a live record. */
static void assert_no_garbage(void)
{
	struct store_stats st;

	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_eq(tenv_disk_bytes(&E),
			  st.live_bytes[0] + st.live_bytes[1] + 64 * st.segments);
}

START_TEST(dedup_32mib)
{
	const size_t N = 32u << 20;
	uint8_t *buf = tu_xmalloc(N);
	uint64_t one, two;

	tu_fill(buf, N, 7);
	ck_assert_int_eq(tenv_put(&E, "data", "first", buf, N, NULL), 0);
	one = tenv_disk_bytes(&E);
	ck_assert_uint_ge(one, N);
	ck_assert_int_eq(tenv_put(&E, "data", "second", buf, N, NULL), 0);
	two = tenv_disk_bytes(&E);
	/* The second copy costs nothing but index entries. */
	ck_assert_uint_eq(two, one);
	ck_assert_uint_lt(total_live(), N + N / 50);
	ck_assert_int_eq(tenv_rm(&E, "data", "first"), 0);
	check_object("second", buf, N);
	reopen();
	check_object("second", buf, N);
	ck_assert_int_eq(tenv_rm(&E, "data", "second"), 0);
	ck_assert_uint_eq(total_live(), 0);
	/* Dead sealed segments went with their last chunk. */
	ck_assert_uint_le(tenv_disk_bytes(&E), 64);
	free(buf);
}
END_TEST

START_TEST(compaction_reclaims)
{
	uint8_t buf[300000];
	char key[32];

	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "k%02d", i);
		tu_fill(buf, sizeof(buf), (uint64_t)i);
		ck_assert_int_eq(tenv_put(&E, "data", key, buf, sizeof(buf), NULL), 0);
	}
	for (int i = 0; i < 40; i += 2) {
		snprintf(key, sizeof(key), "k%02d", i);
		ck_assert_int_eq(tenv_rm(&E, "data", key), 0);
	}
	reopen();	/* seals the active segment */
	ck_assert_uint_gt(tenv_disk_bytes(&E), total_live() * 3 / 2);
	ck_assert_int_eq(tenv_compact(&E, 0), 0);
	assert_no_garbage();
	for (int i = 0; i < 40; i++) {
		uint8_t *got;
		size_t glen;

		snprintf(key, sizeof(key), "k%02d", i);
		if (i % 2 == 0) {
			ck_assert_int_eq(tenv_get(&E, "data", key, 0, UINT64_MAX,
						  &got, &glen), STRATA_ENOOBJECT);
			continue;
		}
		tu_fill(buf, sizeof(buf), (uint64_t)i);
		check_object(key, buf, sizeof(buf));
	}
	reopen();
	assert_no_garbage();
	tu_fill(buf, sizeof(buf), 39);
	check_object("k39", buf, sizeof(buf));
}
END_TEST

/* Garbage in the segment still being appended to comes back too, without
 * a restart: a store whose writes stopped after deletes (here every record
 * of the active segment but one dead) must not keep the space for ever. */
START_TEST(compaction_reclaims_active_segment)
{
	uint8_t buf[300000];
	char key[32];

	reopen();		/* a fresh active segment for what follows */
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "a%02d", i);
		tu_fill(buf, sizeof(buf), 100 + (uint64_t)i);
		ck_assert_int_eq(tenv_put(&E, "data", key, buf, sizeof(buf), NULL), 0);
	}
	for (int i = 0; i < 9; i++) {
		snprintf(key, sizeof(key), "a%02d", i);
		ck_assert_int_eq(tenv_rm(&E, "data", key), 0);
	}
	ck_assert_int_eq(tenv_compact(&E, 50), 0);
	assert_no_garbage();
	tu_fill(buf, sizeof(buf), 109);
	check_object("a09", buf, sizeof(buf));
	/* Writes go on in a new segment. */
	tu_fill(buf, sizeof(buf), 110);
	ck_assert_int_eq(tenv_put(&E, "data", "a10", buf, sizeof(buf), NULL), 0);
	check_object("a10", buf, sizeof(buf));
	ck_assert_int_eq(tenv_rm(&E, "data", "a09"), 0);
	ck_assert_int_eq(tenv_rm(&E, "data", "a10"), 0);
	ck_assert_int_eq(tenv_compact(&E, 50), 0);
	assert_no_garbage();
}
END_TEST

static char *seg_path(uint64_t seg)
{
	char *p;

	ck_assert(asprintf(&p, "%s/seg-%016lx.dat", E.hot, (unsigned long)seg) > 0);
	return p;
}

static void flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x5a;
	ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

START_TEST(corruption_detected)
{
	uint8_t a[200000], b[5000], *got;
	size_t glen;
	struct store_object_info info;
	struct store_chunk_info *ci;
	struct store_stats st;
	char *path;

	tu_fill(a, sizeof(a), 1);
	tu_fill(b, sizeof(b), 2);
	ck_assert_int_eq(tenv_put(&E, "data", "victim", a, sizeof(a), NULL), 0);
	ck_assert_int_eq(tenv_put(&E, "data", "bystander", b, sizeof(b), NULL), 0);
	ck_assert_int_eq(store_stat(E.s, "data", "victim", 6, &info, &ci, NULL, NULL), 0);
	ck_assert_uint_eq(info.nchunks, 4);
	path = seg_path(ci[1].seg);
	/* A payload byte of chunk 1, a header byte of chunk 2. */
	flip_byte(path, ci[1].off + RECORD_HDR_LEN + 1000);
	flip_byte(path, ci[2].off + 9);
	free(path);
	ck_assert_int_eq(tenv_get(&E, "data", "victim", 0, UINT64_MAX, &got, &glen),
			 STRATA_ECORRUPT);
	ck_assert_int_eq(tenv_get(&E, "data", "victim", 2 * 65536, 10, &got, &glen),
			 STRATA_ECORRUPT);
	/* Chunks 0 and 3 are intact and still serve ranges. */
	ck_assert_int_eq(tenv_get(&E, "data", "victim", 0, 65536, &got, &glen), 0);
	ck_assert(glen == 65536 && memcmp(got, a, glen) == 0);
	free(got);
	ck_assert_int_eq(tenv_get(&E, "data", "victim", 3 * 65536, UINT64_MAX,
				  &got, &glen), 0);
	ck_assert(glen == sizeof(a) - 3 * 65536 &&
		  memcmp(got, a + 3 * 65536, glen) == 0);
	free(got);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_ge(st.corrupt, 2);
	check_object("bystander", b, sizeof(b));
	ck_assert_int_eq(tenv_put(&E, "data", "after", b, sizeof(b), NULL), 0);
	check_object("after", b, sizeof(b));
	free(ci);
}
END_TEST

static void commit_flag(void *arg, int status,
			const struct store_object_info *info)
{
	(void)info;
	*(int *)arg = status ? status : 1;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A STAT while an overwrite's commit round is between its index commit
 * (done on a worker thread: the old version's chunk entries are gone) and
 * its completion on the loop (the lookup table still holds the old
 * version): that is an object being replaced, not a corrupt one.  The
 * test stats in a tight loop with the event loop not running, so the
 * completion cannot come between. */
START_TEST(stat_during_overwrite)
{
	uint8_t a[150000], b[150000];
	struct store_object_info info, old;
	struct store_chunk_info *ci;
	struct store_stats st;
	struct store_put *p;
	uint64_t corrupt0, until;
	int done = 0, rc, newer = 0;

	tu_fill(a, sizeof(a), 41);
	tu_fill(b, sizeof(b), 42);
	ck_assert_int_eq(tenv_put(&E, "data", "ow", a, sizeof(a), NULL), 0);
	/* Read once: the lookup table keeps it. */
	ck_assert_int_eq(store_stat(E.s, "data", "ow", 2, &old, &ci, NULL, NULL), 0);
	free(ci);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	corrupt0 = st.corrupt;
	ck_assert_int_eq(store_put_begin(E.s, "data", "ow", 2, NULL, &p), 0);
	ck_assert_int_eq(store_put_write(p, b, sizeof(b)), 0);
	store_put_commit(p, commit_flag, &done);
	until = mono_ms() + 10000;
	while (!done && mono_ms() < until) {
		uint64_t spin = mono_ms() + 20;

		uv_run(&E.loop, UV_RUN_NOWAIT);
		while (!done && mono_ms() < spin) {
			rc = store_stat(E.s, "data", "ow", 2, &info, &ci, NULL,
					NULL);
			ck_assert_msg(rc == 0, "stat during an overwrite: %s",
				      strata_strerror(rc));
			free(ci);
			if (memcmp(info.etag, old.etag, sizeof(old.etag)))
				newer++;
		}
	}
	ck_assert_int_eq(done, 1);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_eq(st.corrupt, corrupt0);
	check_object("ow", b, sizeof(b));
	/* The window was seen: stats answered the new version before the
	 * commit's completion ran (when the worker got there first). */
	if (!newer)
		fprintf(stderr, "stat_during_overwrite: the commit landed outside the spins\n");
}
END_TEST

START_TEST(truncated_segment)
{
	uint8_t a[200000], *got;
	size_t glen;
	struct store_object_info info;
	struct store_chunk_info *ci;
	char *path;

	tu_fill(a, sizeof(a), 3);
	ck_assert_int_eq(tenv_put(&E, "data", "t", a, sizeof(a), NULL), 0);
	ck_assert_int_eq(store_stat(E.s, "data", "t", 1, &info, &ci, NULL, NULL), 0);
	path = seg_path(ci[0].seg);
	tenv_close(&E);
	ck_assert_int_eq(truncate(path, (off_t)(ci[2].off + 10)), 0);
	ck_assert_int_eq(tenv_open(&E), 0);
	ck_assert_int_eq(tenv_get(&E, "data", "t", 0, 2 * 65536, &got, &glen), 0);
	ck_assert(glen == 2 * 65536 && memcmp(got, a, glen) == 0);
	free(got);
	ck_assert_int_eq(tenv_get(&E, "data", "t", 0, UINT64_MAX, &got, &glen),
			 STRATA_ECORRUPT);
	free(path);
	free(ci);
}
END_TEST

START_TEST(damaged_index_value)
{
	uint8_t b[5000], *got;
	size_t glen;
	struct index *ix;
	uint8_t okey[META_OBJKEY_MAX];
	char out[256];

	tu_fill(b, sizeof(b), 2);
	ck_assert_int_eq(tenv_put(&E, "data", "good", b, sizeof(b), NULL), 0);
	ck_assert_int_eq(tenv_put(&E, "data", "bad", b, sizeof(b), NULL), 0);
	tenv_close(&E);
	ck_assert_int_eq(index_open(E.idx, NULL, 0, 0, &ix), 0);
	/* Bucket "data" is id 1. */
	ck_assert_int_eq(index_put_sync(ix, INDEX_CF_OBJECTS, okey,
					meta_objkey(1, "bad", 3, okey),
					"\x01garbage", 8), 0);
	index_close(ix);
	ck_assert_int_eq(tenv_open(&E), 0);
	ck_assert_int_eq(tenv_get(&E, "data", "bad", 0, UINT64_MAX, &got, &glen),
			 STRATA_ECORRUPT);
	check_object("good", b, sizeof(b));
	list_keys(NULL, NULL, NULL, 0, out, sizeof(out), NULL);
	ck_assert_str_eq(out, "good");
}
END_TEST

static int file_has(const char *path, const void *needle, size_t nlen)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;
	int found;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = tu_xmalloc((size_t)n);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	found = memmem(buf, (size_t)n, needle, nlen) != NULL;
	free(buf);
	return found;
}

START_TEST(encrypted_at_rest)
{
	static const char marker[] = "STRATA-PLAINTEXT-MARKER";
	const size_t N = 1u << 20;
	uint8_t *buf = tu_xmalloc(N);
	struct dirent *de;
	DIR *d;
	int files = 0;

	for (size_t i = 0; i < N; i++)
		buf[i] = (uint8_t)marker[i % (sizeof(marker) - 1)];
	ck_assert_int_eq(tenv_put(&E, "data", "m1", buf, N, NULL), 0);
	ck_assert_int_eq(tenv_put(&E, "data", "m2", buf, 100, NULL), 0);
	tenv_close(&E);
	E.o.zstd_level = 0;	/* uncompressed records too */
	ck_assert_int_eq(tenv_open(&E), 0);
	buf[0] ^= 1;		/* a new chunk id: a new record */
	ck_assert_int_eq(tenv_put(&E, "data", "m3", buf, N, NULL), 0);
	tenv_close(&E);
	d = opendir(E.hot);
	while ((de = readdir(d))) {
		char path[1024];

		if (strncmp(de->d_name, "seg-", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", E.hot, de->d_name);
		ck_assert_msg(!file_has(path, "STRATA-PLAINTEXT", 16),
			      "plaintext marker found in %s", path);
		files++;
	}
	closedir(d);
	ck_assert_int_ge(files, 2);
	/* Small objects live inline in the index: its files hold no
	 * plaintext either (WAL and tables). */
	d = opendir(E.idx);
	while ((de = readdir(d))) {
		char path[1024];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", E.idx, de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		ck_assert_msg(!file_has(path, "STRATA-PLAINTEXT", 16),
			      "plaintext marker found in %s", path);
	}
	closedir(d);
	/* The wrong master key fails cleanly, and the right one still works. */
	E.master[0] ^= 1;
	ck_assert_int_eq(tenv_open(&E), STRATA_EMASTERKEY);
	E.master[0] ^= 1;
	ck_assert_int_eq(tenv_open(&E), 0);
	free(buf);
}
END_TEST

START_TEST(master_key_file)
{
	static const char hex[] =
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	struct tenv e2;

	tenv_init(&e2, NULL);
	ck_assert_int_eq(tu_write_file(e2.keyfile, hex, sizeof(hex) - 1, 0600), 0);
	e2.o.master_key = NULL;
	e2.o.master_key_path = e2.keyfile;
	ck_assert_int_eq(tenv_open(&e2), 0);
	tenv_close(&e2);
	ck_assert_int_eq(chmod(e2.keyfile, 0644), 0);
	ck_assert_int_eq(tenv_open(&e2), STRATA_EKEYFILE);
	e2.o.master_key_path = "/nonexistent/key";
	ck_assert_int_eq(tenv_open(&e2), -ENOENT);
	tenv_release(&e2, 1);
}
END_TEST

START_TEST(missing_tier_dir)
{
	struct tenv e2;

	tenv_init(&e2, NULL);
	ck_assert_int_eq(rmdir(e2.cold), 0);
	ck_assert_int_eq(tenv_open(&e2), STRATA_ECONFIG);
	tenv_release(&e2, 1);
}
END_TEST

/* A tier directory that holds data but is gone from the configuration,
 * or is an empty directory where the disk should be mounted: the store
 * refuses to start (it would serve those objects as corrupt), removes
 * nothing, and opens whole once the directory is back; with
 * accept_missing_dirs (a disk lost for good) it starts without it. */
START_TEST(tier_dir_with_data_gone)
{
	uint8_t buf[200000];
	char moved[600], key[16];
	struct store_stats st;
	uint64_t bytes;
	struct tenv e2;
	uint8_t *got;
	size_t glen;

	tenv_init(&e2, NULL);
	/* A hot tier of 1 MiB: most of the objects spill to cold. */
	e2.o.tier[STORE_TIER_HOT].capacity = 1 << 20;
	ck_assert_int_eq(tenv_open(&e2), 0);
	ck_assert_int_eq(tenv_mb(&e2, "data"), 0);
	for (unsigned i = 0; i < 12; i++) {
		tu_fill(buf, sizeof(buf), i + 1);
		snprintf(key, sizeof(key), "k%u", i);
		ck_assert_int_eq(tenv_put(&e2, "data", key, buf, sizeof(buf),
					  NULL), 0);
	}
	ck_assert_int_eq(store_stats(e2.s, &st), 0);
	ck_assert_uint_gt(st.live_bytes[STORE_TIER_COLD], 0);
	tenv_close(&e2);
	bytes = tenv_disk_bytes(&e2);

	/* Dropped from the configuration. */
	e2.o.ntier_dirs[STORE_TIER_COLD] = 0;
	ck_assert_int_eq(tenv_open(&e2), STRATA_ECONFIG);
	e2.o.ntier_dirs[STORE_TIER_COLD] = 1;
	ck_assert_uint_eq(tenv_disk_bytes(&e2), bytes);

	/* An empty directory where the disk was (not mounted). */
	snprintf(moved, sizeof(moved), "%s.unmounted", e2.cold);
	ck_assert_int_eq(rename(e2.cold, moved), 0);
	ck_assert_int_eq(mkdir(e2.cold, 0700), 0);
	ck_assert_int_eq(tenv_open(&e2), STRATA_ECONFIG);
	ck_assert_int_eq(rmdir(e2.cold), 0);
	ck_assert_int_eq(rename(moved, e2.cold), 0);
	ck_assert_uint_eq(tenv_disk_bytes(&e2), bytes);

	/* A disk lost for good: the operator says so, and the store starts
	 * without it; what it held reads as corrupt, the rest reads. */
	ck_assert_int_eq(rename(e2.cold, moved), 0);
	ck_assert_int_eq(mkdir(e2.cold, 0700), 0);
	e2.o.accept_missing_dirs = true;
	ck_assert_int_eq(tenv_open(&e2), 0);
	ck_assert_int_eq(tenv_get(&e2, "data", "k11", 0, UINT64_MAX, &got,
				  &glen), STRATA_ECORRUPT);
	tu_fill(buf, sizeof(buf), 1);
	ck_assert_int_eq(tenv_get(&e2, "data", "k0", 0, UINT64_MAX, &got,
				  &glen), 0);
	ck_assert(glen == sizeof(buf) && !memcmp(got, buf, glen));
	free(got);
	tenv_close(&e2);
	e2.o.accept_missing_dirs = false;
	ck_assert_int_eq(rmdir(e2.cold), 0);
	ck_assert_int_eq(rename(moved, e2.cold), 0);

	/* Back: every object reads. */
	ck_assert_int_eq(tenv_open(&e2), 0);
	for (unsigned i = 0; i < 12; i++) {
		tu_fill(buf, sizeof(buf), i + 1);
		snprintf(key, sizeof(key), "k%u", i);
		ck_assert_int_eq(tenv_get(&e2, "data", key, 0, UINT64_MAX,
					  &got, &glen), 0);
		ck_assert(glen == sizeof(buf) && !memcmp(got, buf, glen));
		free(got);
	}
	tenv_release(&e2, 1);
}
END_TEST

/* Put a few objects into a fresh store, close it; returns the segment
 * bytes on disk. */
static uint64_t scan_setup(struct tenv *e2)
{
	uint8_t buf[200000];

	tenv_init(e2, NULL);
	ck_assert_int_eq(tenv_open(e2), 0);
	ck_assert_int_eq(tenv_mb(e2, "data"), 0);
	for (unsigned i = 0; i < 3; i++) {
		char key[16];

		tu_fill(buf, sizeof(buf), i + 1);
		snprintf(key, sizeof(key), "k%u", i);
		ck_assert_int_eq(tenv_put(e2, "data", key, buf, sizeof(buf),
					  NULL), 0);
	}
	tenv_close(e2);
	return tenv_disk_bytes(e2);
}

/* Write a segment file `id` into dir with a checking header for store id
 * `sid` (NULL: all zero), or `len` bytes of junk when junk is set. */
static void fake_segment(const char *dir, uint64_t id, const uint8_t *sid,
			 size_t len, bool junk)
{
	uint8_t hdr[4096] = { 0 };
	char path[600];
	uint32_t crc;

	ck_assert_uint_le(len, sizeof(hdr));
	snprintf(path, sizeof(path), "%s/seg-%016llx.dat", dir,
		 (unsigned long long)id);
	if (junk) {
		tu_fill(hdr, len, id);
	} else {
		memcpy(hdr, "STRSEG01", 8);
		hdr[8] = 1;
		for (int i = 0; i < 8; i++)
			hdr[16 + i] = (uint8_t)(id >> (8 * i));
		if (sid)
			memcpy(hdr + 24, sid, 16);
		crc = record_crc32c(0, hdr, 60);
		for (int i = 0; i < 4; i++)
			hdr[60 + i] = (uint8_t)(crc >> (8 * i));
	}
	ck_assert_int_eq(tu_write_file(path, hdr, len, 0600), 0);
}

static bool seg_exists(const char *dir, uint64_t id)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/seg-%016llx.dat", dir,
		 (unsigned long long)id);
	return access(path, F_OK) == 0;
}

/* A lost or emptied index must never make the segments orphans. */
START_TEST(new_index_keeps_segments)
{
	struct tenv e2;
	uint64_t bytes = scan_setup(&e2);
	char cmd[1200];
	uint8_t *got;
	size_t glen;

	ck_assert_uint_gt(bytes, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir '%s'", e2.idx,
		 e2.idx);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(tenv_open(&e2), STRATA_ECONFIG);
	ck_assert_int_eq(tenv_open(&e2), STRATA_ECONFIG);	/* still */
	ck_assert_uint_eq(tenv_disk_bytes(&e2), bytes);
	tenv_release(&e2, 1);

	/* An index read that fails while the segments are scanned: refuse,
	 * remove nothing (4 reads of the meta family come first). */
	bytes = scan_setup(&e2);
	fault_arm(&e2.fault, FAULT_INDEX_READ, 4, 1, -EIO);
	ck_assert_int_eq(tenv_open(&e2), -EIO);
	fault_arm(&e2.fault, FAULT_INDEX_READ, 0, 0, 0);
	ck_assert_uint_eq(tenv_disk_bytes(&e2), bytes);
	ck_assert_int_eq(tenv_open(&e2), 0);
	ck_assert_int_eq(tenv_get(&e2, "data", "k2", 0, UINT64_MAX, &got,
				  &glen), 0);
	ck_assert_uint_eq(glen, 200000);
	free(got);
	tenv_release(&e2, 1);
}
END_TEST

/* Damage inside the index's write-ahead log stops the open (and takes
 * nothing away); the undamaged log opens with every object. */
START_TEST(damaged_index_log_refused)
{
	struct tenv e2;
	char path[1200] = "", best[1200] = "";
	off_t bestsz = 0;
	struct dirent *de;
	struct stat st;
	uint8_t byte;
	uint8_t *got;
	size_t glen;
	DIR *d;
	int fd;

	scan_setup(&e2);
	d = opendir(e2.idx);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (n < 5 || strcmp(de->d_name + n - 4, ".log") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", e2.idx, de->d_name);
		if (stat(path, &st) == 0 && st.st_size > bestsz) {
			bestsz = st.st_size;
			snprintf(best, sizeof(best), "%s", path);
		}
	}
	closedir(d);
	ck_assert_int_gt(bestsz, 1024);
	fd = open(best, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &byte, 1, bestsz / 2), 1);
	byte ^= 0x5a;
	ck_assert_int_eq(pwrite(fd, &byte, 1, bestsz / 2), 1);
	ck_assert_int_ne(tenv_open(&e2), 0);
	byte ^= 0x5a;
	ck_assert_int_eq(pwrite(fd, &byte, 1, bestsz / 2), 1);
	close(fd);
	ck_assert_int_eq(tenv_open(&e2), 0);
	for (unsigned i = 0; i < 3; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%u", i);
		ck_assert_int_eq(tenv_get(&e2, "data", key, 0, UINT64_MAX,
					  &got, &glen), 0);
		ck_assert_uint_eq(glen, 200000);
		free(got);
	}
	tenv_release(&e2, 1);
}
END_TEST

/* Unknown segment files: ours are orphans (removed), another store's
 * stop the start, and ones whose header does not check are left alone. */
START_TEST(unknown_segments)
{
	static const uint8_t other[16] = { 1, 2, 3, 4, 5, 6, 7, 8,
					   9, 10, 11, 12, 13, 14, 15, 16 };
	struct tenv e2;
	uint64_t bytes = scan_setup(&e2);

	fake_segment(e2.hot, 0x100, NULL, 64, false);	/* legacy header */
	fake_segment(e2.hot, 0x101, NULL, 10, false);	/* cut-short create */
	fake_segment(e2.cold, 0x102, NULL, 100, true);	/* junk */
	ck_assert_int_eq(tenv_open(&e2), 0);
	ck_assert(!seg_exists(e2.hot, 0x100));
	ck_assert(!seg_exists(e2.hot, 0x101));
	ck_assert(seg_exists(e2.cold, 0x102));
	tenv_close(&e2);
	ck_assert_uint_eq(tenv_disk_bytes(&e2), bytes + 100);

	fake_segment(e2.hot, 0x103, other, 64, false);
	ck_assert_int_eq(tenv_open(&e2), STRATA_ECONFIG);
	ck_assert(seg_exists(e2.hot, 0x103));
	ck_assert_uint_eq(tenv_disk_bytes(&e2), bytes + 164);
	tenv_release(&e2, 1);
}
END_TEST

/* Files with segment-like names that seg-%016x never writes ("seg-" then
 * a sign, "0x", blanks or capitals, or an id so large that the next one
 * wraps) are not segments: left alone, and the ids of new segments stay
 * small, so every object is found after a restart. */
START_TEST(stray_segment_names)
{
	static const char *const names[] = {
		"seg--000000000000002.dat", "seg-0x00000000000001.dat",
		"seg- 000000000000001.dat", "seg-000000000000000A.dat",
		"seg-ffffffffffffffff.dat",
	};
	uint8_t buf[300000], *got;
	struct tenv e2;
	char path[700];
	size_t glen;

	scan_setup(&e2);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", e2.hot, names[i]);
		ck_assert_int_eq(tu_write_file(path, "junk", 4, 0600), 0);
	}
	for (unsigned round = 0; round < 3; round++) {
		char key[16];

		ck_assert_int_eq(tenv_open(&e2), 0);
		tu_fill(buf, sizeof(buf), 100 + round);
		snprintf(key, sizeof(key), "late%u", round);
		ck_assert_int_eq(tenv_put(&e2, "data", key, buf, sizeof(buf),
					  NULL), 0);
		tenv_close(&e2);	/* seals: the next put opens a segment */
	}
	ck_assert_int_eq(tenv_open(&e2), 0);
	for (unsigned round = 0; round < 3; round++) {
		char key[16];

		tu_fill(buf, sizeof(buf), 100 + round);
		snprintf(key, sizeof(key), "late%u", round);
		ck_assert_int_eq(tenv_get(&e2, "data", key, 0, UINT64_MAX,
					  &got, &glen), 0);
		ck_assert(glen == sizeof(buf) && !memcmp(got, buf, glen));
		free(got);
	}
	ck_assert(!seg_exists(e2.hot, 0) && !seg_exists(e2.cold, 0));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", e2.hot, names[i]);
		ck_assert_msg(access(path, F_OK) == 0, "%s was removed",
			      names[i]);
	}
	tenv_release(&e2, 1);
}
END_TEST

/* Arm a fault, check the put fails with it and leaves nothing visible,
 * then check the store still works and stays consistent. */
static void fault_put(enum fault_point p, int err, size_t len)
{
	uint8_t *buf = tu_xmalloc(len), *got;
	size_t glen;

	tu_fill(buf, len, len);
	ck_assert_int_eq(tenv_put(&E, "data", "before", buf, len, NULL), 0);
	buf[1] ^= 1;		/* new content: no dedup */
	fault_arm(&E.fault, p, 0, 1, err);
	ck_assert_int_eq(tenv_put(&E, "data", "victim", buf, len, NULL), err);
	buf[1] ^= 1;
	ck_assert_uint_eq(fault_hits(&E.fault, p), 1);
	ck_assert_int_eq(tenv_get(&E, "data", "victim", 0, UINT64_MAX, &got, &glen),
			 STRATA_ENOOBJECT);
	buf[0] ^= 1;
	ck_assert_int_eq(tenv_put(&E, "data", "after", buf, len, NULL), 0);
	check_object("after", buf, len);
	buf[0] ^= 1;
	check_object("before", buf, len);
	reopen();
	ck_assert_int_eq(tenv_get(&E, "data", "victim", 0, UINT64_MAX, &got, &glen),
			 STRATA_ENOOBJECT);
	check_object("before", buf, len);
	ck_assert_int_eq(tenv_compact(&E, 0), 0);
	assert_no_garbage();
	free(buf);
}

START_TEST(fault_seg_write) { fault_put(FAULT_SEG_WRITE, -EIO, 300000); }
END_TEST
START_TEST(fault_seg_write_enospc) { fault_put(FAULT_SEG_WRITE, -ENOSPC, 100000); }
END_TEST
START_TEST(fault_seg_fsync) { fault_put(FAULT_SEG_FSYNC, -EIO, 300000); }
END_TEST
START_TEST(fault_index_write) { fault_put(FAULT_INDEX_WRITE, -EIO, 300000); }
END_TEST
/* Segment files removed from under the store (rm -rf of a tier
 * directory's contents): a write into one is never acknowledged, since the
 * bytes go with the file at the next start; the next one goes into a new
 * segment. */
START_TEST(segment_removed_while_in_use)
{
	const size_t len = 200000;
	uint8_t *buf = tu_xmalloc(len), *got;
	char path[sizeof(E.hot) + 260];
	size_t glen;
	DIR *d;
	struct dirent *de;
	unsigned removed = 0;

	tu_fill(buf, len, 77);
	ck_assert_int_eq(tenv_put(&E, "data", "first", buf, len, NULL), 0);
	d = opendir(E.hot);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "seg-", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", E.hot, de->d_name);
		ck_assert_int_eq(unlink(path), 0);
		removed++;
	}
	closedir(d);
	ck_assert_uint_ge(removed, 1);
	/* New bytes into the removed file: not acknowledged. */
	tu_fill(buf, len, 78);
	ck_assert_int_eq(tenv_put(&E, "data", "lost", buf, len, NULL), -EIO);
	ck_assert_int_eq(tenv_get(&E, "data", "lost", 0, UINT64_MAX, &got, &glen),
			 STRATA_ENOOBJECT);
	/* Bytes that would share a chunk kept only in the removed file: not
	 * acknowledged either. */
	tu_fill(buf, len, 77);
	ck_assert_int_eq(tenv_put(&E, "data", "shared", buf, len, NULL), -EIO);
	/* New bytes go into a new segment, and last. */
	tu_fill(buf, len, 79);
	ck_assert_int_eq(tenv_put(&E, "data", "kept", buf, len, NULL), 0);
	check_object("kept", buf, len);
	reopen();
	check_object("kept", buf, len);
	free(buf);
}
END_TEST

START_TEST(fault_seg_create)
{
	/* A new store has no active segment: the first put creates one. */
	static uint8_t buf[100000];

	reopen();
	fault_arm(&E.fault, FAULT_SEG_CREATE, 0, 1, -ENOSPC);
	ck_assert_int_eq(tenv_put(&E, "data", "x", buf, sizeof(buf), NULL), -ENOSPC);
	ck_assert_int_eq(tenv_put(&E, "data", "x", buf, sizeof(buf), NULL), 0);
}
END_TEST

START_TEST(fault_reads)
{
	uint8_t buf[200000], *got;
	size_t glen;

	tu_fill(buf, sizeof(buf), 9);
	ck_assert_int_eq(tenv_put(&E, "data", "r", buf, sizeof(buf), NULL), 0);
	fault_arm(&E.fault, FAULT_SEG_READ, 1, 1, -EIO);
	ck_assert_int_eq(tenv_get(&E, "data", "r", 0, UINT64_MAX, &got, &glen), -EIO);
	check_object("r", buf, sizeof(buf));
	/* "r" was just read: its lookup is answered from memory, no index
	 * read to fail... */
	fault_arm(&E.fault, FAULT_INDEX_READ, 0, 1, -EIO);
	check_object("r", buf, sizeof(buf));
	fault_arm(&E.fault, FAULT_INDEX_READ, 0, 0, 0);	/* disarm */
	/* ...until a commit (any) makes it read the index again. */
	ck_assert_int_eq(tenv_put(&E, "data", "other", buf, 10, NULL), 0);
	fault_arm(&E.fault, FAULT_INDEX_READ, 0, 1, -EIO);
	ck_assert_int_eq(tenv_get(&E, "data", "r", 0, UINT64_MAX, &got, &glen), -EIO);
	check_object("r", buf, sizeof(buf));
}
END_TEST


START_TEST(inline_small_objects)
{
	uint8_t small[3000], big[100000], *got;
	size_t glen;
	struct store_object_info info;
	struct store_chunk_info *ci;
	struct store_stats st;
	uint64_t disk;

	tu_fill(small, sizeof(small), 5);
	tu_fill(big, sizeof(big), 6);
	ck_assert_int_eq(tenv_put(&E, "data", "s", small, sizeof(small), &info), 0);
	ck_assert_int_eq(store_stat(E.s, "data", "s", 1, &info, &ci, NULL, NULL), 0);
	ck_assert_uint_eq(info.nchunks, 1);
	ck_assert_uint_eq(ci[0].tier, STORE_TIER_INDEX);
	free(ci);
	/* No segment byte was written for it. */
	ck_assert_uint_eq(tenv_disk_bytes(&E), 0);
	check_object("s", small, sizeof(small));
	ck_assert_int_eq(tenv_get(&E, "data", "s", 100, 50, &got, &glen), 0);
	ck_assert(glen == 50 && memcmp(got, small + 100, 50) == 0);
	free(got);
	/* inline -> chunked -> inline -> deleted: refcounts stay right. */
	ck_assert_int_eq(tenv_put(&E, "data", "s", big, sizeof(big), NULL), 0);
	check_object("s", big, sizeof(big));
	disk = tenv_disk_bytes(&E);
	ck_assert_uint_gt(disk, sizeof(big));
	ck_assert_int_eq(tenv_put(&E, "data", "s", small, sizeof(small), NULL), 0);
	check_object("s", small, sizeof(small));
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_eq(st.live_bytes[0], 0);
	reopen();
	check_object("s", small, sizeof(small));
	ck_assert_int_eq(tenv_rm(&E, "data", "s"), 0);
	ck_assert_int_eq(tenv_get(&E, "data", "s", 0, UINT64_MAX, &got, &glen),
			 STRATA_ENOOBJECT);
	/* Turned off, the same object goes to a segment. */
	tenv_close(&E);
	E.o.inline_max = -1;
	ck_assert_int_eq(tenv_open(&E), 0);
	ck_assert_int_eq(tenv_put(&E, "data", "s2", small, sizeof(small), NULL), 0);
	ck_assert_int_eq(store_stat(E.s, "data", "s2", 2, &info, &ci, NULL, NULL), 0);
	ck_assert_uint_eq(ci[0].tier, STORE_TIER_HOT);
	free(ci);
	check_object("s2", small, sizeof(small));
}
END_TEST

START_TEST(inline_corrupt)
{
	uint8_t small[3000], *got, *val, okey[META_OBJKEY_MAX];
	size_t glen, vlen, oklen;
	struct index *ix;
	struct store_stats st;

	tu_fill(small, sizeof(small), 5);
	ck_assert_int_eq(tenv_put(&E, "data", "s", small, sizeof(small), NULL), 0);
	ck_assert_int_eq(tenv_put(&E, "data", "t", small, 10, NULL), 0);
	tenv_close(&E);
	ck_assert_int_eq(index_open(E.idx, NULL, 0, 0, &ix), 0);
	oklen = meta_objkey(1, "s", 1, okey);
	ck_assert_int_eq(index_get(ix, INDEX_CF_OBJECTS, okey, oklen, &val, &vlen), 0);
	val[vlen - 10] ^= 0x40;	/* inside the inline record's payload */
	ck_assert_int_eq(index_put_sync(ix, INDEX_CF_OBJECTS, okey, oklen, val, vlen), 0);
	free(val);
	index_close(ix);
	ck_assert_int_eq(tenv_open(&E), 0);
	ck_assert_int_eq(tenv_get(&E, "data", "s", 0, UINT64_MAX, &got, &glen),
			 STRATA_ECORRUPT);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_ge(st.corrupt, 1);
	check_object("t", small, 10);
}
END_TEST


START_TEST(access_keys)
{
	uint8_t sec[META_AKEY_SECRET_MAX];
	size_t slen, n;
	uint32_t flags, *fl;
	char **ids;

	ck_assert_int_eq(store_access_key_put(E.s, "AKADMIN", "s3cret", 6,
					      META_AKEY_ADMIN), 0);
	ck_assert_int_eq(store_access_key_put(E.s, "AKUSER", "other", 5, 0), 0);
	ck_assert_int_eq(store_access_key_put(E.s, "AKUSER", "x", 1, 0), -EEXIST);
	ck_assert_int_eq(store_access_key_put(E.s, "bad id", "x", 1, 0), -EINVAL);
	ck_assert_int_eq(store_access_key_put(E.s, "AKX", "", 0, 0), -EINVAL);
	reopen();
	ck_assert_int_eq(store_access_key_get(E.s, "AKADMIN", sec, &slen, &flags), 0);
	ck_assert_uint_eq(slen, 6);
	ck_assert(memcmp(sec, "s3cret", 6) == 0);
	ck_assert_uint_eq(flags, META_AKEY_ADMIN);
	ck_assert_int_eq(store_access_key_get(E.s, "AKNONE", sec, &slen, NULL), -ENOENT);
	ck_assert_int_eq(store_access_key_list(E.s, &ids, &fl, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(ids[0], "AKADMIN");
	ck_assert_str_eq(ids[1], "AKUSER");
	ck_assert_uint_eq(fl[1], 0);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	free(fl);
	{
		char id[STORE_AKEY_ID_LEN + 1], sec2[STORE_AKEY_SECRET_LEN + 1];
		uint8_t back[META_AKEY_SECRET_MAX];
		size_t blen;

		ck_assert_int_eq(store_access_key_generate(E.s, 0, id, sec2), 0);
		ck_assert_uint_eq(strlen(id), STORE_AKEY_ID_LEN);
		ck_assert(id[0] == 'A' && id[1] == 'K');
		ck_assert_uint_eq(strlen(sec2), STORE_AKEY_SECRET_LEN);
		ck_assert_int_eq(store_access_key_get(E.s, id, back, &blen,
						      &flags), 0);
		ck_assert(blen == STORE_AKEY_SECRET_LEN &&
			  memcmp(back, sec2, blen) == 0 && flags == 0);
		ck_assert_int_eq(store_access_key_delete(E.s, id), 0);
	}
	ck_assert_int_eq(store_access_key_delete(E.s, "AKUSER"), 0);
	ck_assert_int_eq(store_access_key_delete(E.s, "AKUSER"), -ENOENT);
	ck_assert_int_eq(store_access_key_get(E.s, "AKUSER", sec, &slen, NULL), -ENOENT);
	/* The secret is sealed: no plaintext in the index files. */
	tenv_close(&E);
	{
		struct dirent *de;
		DIR *d = opendir(E.idx);

		while ((de = readdir(d))) {
			char path[1024];
			struct stat st;

			snprintf(path, sizeof(path), "%s/%s", E.idx, de->d_name);
			if (stat(path, &st) || !S_ISREG(st.st_mode))
				continue;
			ck_assert(!file_has(path, "s3cret", 6));
		}
		closedir(d);
	}
	ck_assert_int_eq(tenv_open(&E), 0);
}
END_TEST


START_TEST(large_chunks_direct_io)
{
	const size_t N = 5u << 20;
	uint8_t *buf = tu_xmalloc(N);
	char key[16];

	/* Chunks of 2 MiB make records large enough to go around the page
	 * cache (O_DIRECT, padded, aligned); everything must still hold. */
	tenv_close(&E);
	E.o.chunk_size = 2u << 20;
	E.o.segment_size = 16u << 20;
	ck_assert_int_eq(tenv_open(&E), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "big%d", i);
		tu_fill(buf, N, (uint64_t)i + 100);
		ck_assert_int_eq(tenv_put(&E, "data", key, buf, N, NULL), 0);
		check_object(key, buf, N);
	}
	ck_assert_int_eq(tenv_rm(&E, "data", "big1"), 0);
	reopen();
	ck_assert_int_eq(tenv_compact(&E, 0), 0);
	assert_no_garbage();
	for (int i = 0; i < 4; i++) {
		if (i == 1)
			continue;
		snprintf(key, sizeof(key), "big%d", i);
		tu_fill(buf, N, (uint64_t)i + 100);
		check_object(key, buf, N);
	}
	free(buf);
}
END_TEST


/* Descriptors of this process open on segment files. */
static unsigned seg_fds(void)
{
	char link[300], target[512];
	struct dirent *de;
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	ssize_t len;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = 0;
		if (strstr(target, "/seg-"))
			n++;
	}
	closedir(d);
	return n;
}

/*
 * A segment written with O_DIRECT appends has a second descriptor for
 * them; once it is full and sealed, only the one reads use may remain
 * (each segment written since the start held two, halving how much a
 * node's open-files limit lets it store).
 */
START_TEST(sealed_segments_keep_one_fd)
{
	const size_t N = 6u << 20;
	uint8_t *buf = tu_xmalloc(N);
	struct store_stats st;
	char key[16];

	tenv_close(&E);
	E.o.chunk_size = 2u << 20;
	E.o.segment_size = 4u << 20;
	ck_assert_int_eq(tenv_open(&E), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "big%d", i);
		tu_fill(buf, N, (uint64_t)i + 7);
		ck_assert_int_eq(tenv_put(&E, "data", key, buf, N, NULL), 0);
	}
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_ge(st.segments, 6);
	/* One each, and the active segment's second one. */
	ck_assert_uint_le(seg_fds(), st.segments + 1);
	free(buf);
}
END_TEST

/* Chunk buffers pooled for reuse go back once a store_trim() finds them
 * untaken since the one before; the store works on without them. */
START_TEST(trim_frees_pooled_buffers)
{
	const size_t N = 3u << 20;
	uint8_t *buf = tu_xmalloc(N);
	struct store_stats st;

	tenv_close(&E);
	E.o.chunk_size = 1u << 20;
	ck_assert_int_eq(tenv_open(&E), 0);
	tu_fill(buf, N, 5);
	ck_assert_int_eq(tenv_put(&E, "data", "big", buf, N, NULL), 0);
	check_object("big", buf, N);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_gt(st.pooled_bytes, 0);
	store_trim(E.s);
	store_trim(E.s);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_eq(st.pooled_bytes, 0);
	check_object("big", buf, N);
	free(buf);
}
END_TEST

/*
 * Gets copy a large record from the page cache on the worker that decodes
 * it, and read it through io_uring when it is not (all) there: out of the
 * page cache, partly in it, or damaged there, every get is right.
 */
START_TEST(gets_around_page_cache)
{
	const size_t N = 600000;
	uint8_t *buf = tu_xmalloc(N), *got;
	struct store_object_info info;
	struct store_chunk_info *ci;
	size_t glen;
	char *path;
	int fd;

	tenv_close(&E);
	E.o.cache_bytes = -1;		/* every get reads the segment */
	ck_assert_int_eq(tenv_open(&E), 0);
	tu_fill(buf, N, 41);
	ck_assert_int_eq(tenv_put(&E, "data", "pc", buf, N, NULL), 0);
	ck_assert_int_eq(store_stat(E.s, "data", "pc", 2, &info, &ci, NULL, NULL),
			 0);
	ck_assert_uint_eq(info.nchunks, 10);
	check_object("pc", buf, N);
	path = seg_path(ci[0].seg);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	for (int round = 0; round < 3; round++) {
		/* The segment was synced: its pages are clean and go. */
		ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
		if (round == 1) {
			/* Only the first page of chunk 3, where a range get
			 * starts: a short copy, then the rest through io_uring. */
			uint8_t page[4096];

			ck_assert_int_eq(pread(fd, page, sizeof(page),
					       (off_t)(ci[3].off & ~4095ull)),
					 (ssize_t)sizeof(page));
			ck_assert_int_eq(tenv_get(&E, "data", "pc", 3 * 65536,
						  UINT64_MAX, &got, &glen), 0);
			ck_assert(glen == N - 3 * 65536 &&
				  memcmp(got, buf + 3 * 65536, glen) == 0);
			free(got);
			ck_assert_int_eq(posix_fadvise(fd, 0, 0,
						       POSIX_FADV_DONTNEED), 0);
		}
		if (round == 2) {
			/* Damage in the page cache is caught either way. */
			close(fd);
			flip_byte(path, ci[5].off + RECORD_HDR_LEN + 777);
			fd = open(path, O_RDONLY);
			ck_assert_int_ge(fd, 0);
			ck_assert_int_eq(tenv_get(&E, "data", "pc", 0, UINT64_MAX,
						  &got, &glen), STRATA_ECORRUPT);
			ck_assert_int_eq(posix_fadvise(fd, 0, 0,
						       POSIX_FADV_DONTNEED), 0);
			ck_assert_int_eq(tenv_get(&E, "data", "pc", 0, UINT64_MAX,
						  &got, &glen), STRATA_ECORRUPT);
			ck_assert_int_eq(tenv_get(&E, "data", "pc", 0, 5 * 65536,
						  &got, &glen), 0);
			ck_assert(glen == 5 * 65536 && memcmp(got, buf, glen) == 0);
			free(got);
			break;
		}
		check_object("pc", buf, N);
		/* And again, from the page cache the read left. */
		check_object("pc", buf, N);
	}
	close(fd);
	free(path);
	free(ci);
	free(buf);
}
END_TEST

/* store_get_hold: a chunk delivered from the cache stays valid (and
 * pinned) after its callback, until released; bytes from a segment read
 * are not held. */
struct holder {
	struct store_get *g;
	void *hold[8];
	const uint8_t *p[8];
	size_t len[8];
	int n, done, status, unheld;
};

static int holder_data(void *arg, const void *buf, size_t len)
{
	struct holder *h = arg;
	void *hold = store_get_hold(h->g);

	if (!hold) {
		h->unheld++;
		return 0;
	}
	ck_assert_int_lt(h->n, 8);
	h->hold[h->n] = hold;
	h->p[h->n] = buf;
	h->len[h->n++] = len;
	return 0;
}

static void holder_done(void *arg, int status)
{
	struct holder *h = arg;

	h->status = status;
	h->done = 1;
}

static void holder_get(struct holder *h, const char *key)
{
	memset(h, 0, sizeof(*h));
	ck_assert_int_eq(store_get(E.s, "data", key, strlen(key), 0,
				   UINT64_MAX, NULL, holder_data, holder_done,
				   h, &h->g), 0);
	tu_run_until(&E.loop, &h->done, 60000);
	ck_assert_int_eq(h->status, 0);
}

/* A get that pauses after its first piece, for the test to change the
 * object meanwhile. */
struct slow_get {
	struct store_get *g;
	uint8_t *buf;
	size_t len, cap;
	int paused, done, status;
};

static int slow_data(void *arg, const void *p, size_t n)
{
	struct slow_get *sg = arg;

	ck_assert_uint_le(sg->len + n, sg->cap);
	memcpy(sg->buf + sg->len, p, n);
	sg->len += n;
	if (!sg->paused) {
		sg->paused = 1;
		store_get_pause(sg->g);
	}
	return 0;
}

static void slow_done(void *arg, int status)
{
	struct slow_get *sg = arg;

	sg->status = status;
	sg->done = 1;
}

static void slow_start(struct slow_get *sg, const char *key, size_t cap)
{
	memset(sg, 0, sizeof(*sg));
	sg->cap = cap;
	sg->buf = tu_xmalloc(cap);
	ck_assert_int_eq(store_get(E.s, "data", key, strlen(key), 0, UINT64_MAX,
				   NULL, slow_data, slow_done, sg, &sg->g), 0);
	tu_run_until(&E.loop, &sg->paused, 60000);
}

/* A get streams the version it started with, whole, while that object is
 * deleted, its segments compacted away and the key written again; past
 * the first 256 chunks the node may say STRATA_ECHANGED instead, and
 * neither case counts as corruption.  The get's pins go with it. */
START_TEST(get_sees_one_version)
{
	const size_t small = 16 * 65536, big = 300 * 65536;
	uint8_t *a = tu_xmalloc(big), *b = tu_xmalloc(big);
	struct store_object_info info;
	struct store_chunk_info *ci;
	struct store_stats st0, st1;
	struct slow_get sg;
	char *path;

	tenv_close(&E);
	E.o.cache_bytes = -1;		/* every chunk from its segment */
	ck_assert_int_eq(tenv_open(&E), 0);
	tu_fill(a, big, 41);
	tu_fill(b, big, 42);
	ck_assert_int_eq(store_stats(E.s, &st0), 0);

	/* "v" in a segment that the filler seals. */
	ck_assert_int_eq(tenv_put(&E, "data", "v", a, small, &info), 0);
	ck_assert_int_eq(store_stat(E.s, "data", "v", 1, &info, &ci, NULL,
				    NULL), 0);
	path = seg_path(ci[0].seg);
	free(ci);
	ck_assert_int_eq(tenv_put(&E, "data", "filler", b, 5u << 20, NULL), 0);
	slow_start(&sg, "v", small);
	/* Deleted, its segment compacted (the filler's records copied out,
	 * the segment left empty), the key written again: the get goes on
	 * reading the first version from the segment it holds. */
	ck_assert_int_eq(tenv_rm(&E, "data", "v"), 0);
	ck_assert_int_eq(tenv_compact(&E, 0), 0);
	ck_assert_int_eq(tenv_put(&E, "data", "v", b, small, NULL), 0);
	ck_assert_int_eq(access(path, F_OK), 0);
	store_get_resume(sg.g);
	tu_run_until(&E.loop, &sg.done, 60000);
	ck_assert_int_eq(sg.status, 0);
	ck_assert_uint_eq(sg.len, small);
	ck_assert_mem_eq(sg.buf, a, small);
	free(sg.buf);
	check_object("v", b, small);
	/* Let go: the next collection removes the empty segment. */
	ck_assert_int_eq(tenv_compact(&E, 0), 0);
	ck_assert_int_ne(access(path, F_OK), 0);
	free(path);

	/* Overwritten while a get of 300 chunks is on its first batch. */
	ck_assert_int_eq(tenv_put(&E, "data", "w", a, big, NULL), 0);
	slow_start(&sg, "w", big);
	ck_assert_int_eq(tenv_put(&E, "data", "w", b, big, NULL), 0);
	store_get_resume(sg.g);
	tu_run_until(&E.loop, &sg.done, 60000);
	ck_assert_int_eq(sg.status, STRATA_ECHANGED);
	ck_assert_uint_ge(sg.len, 256 * 65536);
	ck_assert_mem_eq(sg.buf, a, sg.len);
	free(sg.buf);
	check_object("w", b, big);

	ck_assert_int_eq(store_stats(E.s, &st1), 0);
	ck_assert_uint_eq(st1.corrupt, st0.corrupt);
	free(a);
	free(b);
}
END_TEST

START_TEST(get_hold_keeps_cached_bytes)
{
	uint8_t buf[300000];
	struct holder h;
	size_t off = 0;

	tu_fill(buf, sizeof(buf), 37);
	ck_assert_int_eq(tenv_put(&E, "data", "h", buf, sizeof(buf), NULL), 0);
	/* Maybe from the segments (then not held), and into the cache. */
	holder_get(&h, "h");
	for (int i = 0; i < h.n; i++)
		store_hold_release(h.hold[i]);
	/* From the cache: every chunk held, intact after the get is over
	 * and after other reads went through the cache. */
	holder_get(&h, "h");
	ck_assert_int_eq(h.unheld, 0);
	ck_assert_int_eq(h.n, 5);
	check_object("h", buf, sizeof(buf));
	for (int i = 0; i < h.n; i++) {
		ck_assert_mem_eq(h.p[i], buf + off, h.len[i]);
		off += h.len[i];
		store_hold_release(h.hold[i]);
	}
	ck_assert_uint_eq(off, sizeof(buf));
	/* Without a cache nothing is held. */
	tenv_close(&E);
	E.o.cache_bytes = -1;
	ck_assert_int_eq(tenv_open(&E), 0);
	holder_get(&h, "h");
	ck_assert_int_eq(h.n, 0);
	ck_assert_int_eq(h.unheld, 5);
}
END_TEST

/* ---- the transfer budget ---- */

struct pget {
	struct store_get *g;
	uint8_t *buf;
	size_t len;
	int done, status;
};

static uint64_t xfer_peak;

static void xfer_sample(void)
{
	struct store_stats st;

	ck_assert_int_eq(store_stats(E.s, &st), 0);
	if (st.transfer_bytes > xfer_peak)
		xfer_peak = st.transfer_bytes;
}

/* A reader that takes one chunk and stops (as a slow client does). */
static int pget_data(void *arg, const void *b, size_t n)
{
	struct pget *x = arg;

	memcpy(x->buf + x->len, b, n);
	x->len += n;
	xfer_sample();
	store_get_pause(x->g);
	return 0;
}

static void pget_done(void *arg, int status)
{
	struct pget *x = arg;

	x->status = status;
	x->done = 1;
}

static void run_a_while(int ms)
{
	for (int i = 0; i < ms; i++) {
		uv_run(&E.loop, UV_RUN_NOWAIT);
		xfer_sample();
		usleep(1000);
	}
}

/* Run the loop until x's get is over (5 s at most): it must have read
 * want[0, len) whole. */
static void pget_run_whole(struct pget *x, const uint8_t *want, size_t len)
{
	for (int ms = 0; !x->done && ms < 5000; ms++)
		run_a_while(1);
	ck_assert_msg(x->done, "the get never finished (%zu bytes)", x->len);
	ck_assert_int_eq(x->status, 0);
	ck_assert_uint_eq(x->len, len);
	ck_assert(memcmp(x->buf, want, len) == 0);
}

/* Many gets paused for slow readers hold no more than the node-wide
 * budget between them (each used to keep get_window chunks), every get
 * still finishes with the right bytes, and nothing stays counted. */
START_TEST(transfer_budget_bounds_paused_gets)
{
	enum { N = 16, SZ = 1 << 20 };
	const uint64_t budget = 256 << 10;	/* ~3 chunk records */
	static uint8_t data[N][SZ];
	struct pget x[N];
	struct store_stats st;
	int left = N;

	tenv_close(&E);
	E.o.cache_bytes = -1;		/* every chunk from the segments */
	E.o.transfer_bytes = budget;
	ck_assert_int_eq(tenv_open(&E), 0);
	for (int i = 0; i < N; i++) {
		char key[16];

		snprintf(key, sizeof(key), "o%d", i);
		tu_fill(data[i], SZ, 900 + i);
		ck_assert_int_eq(tenv_put(&E, "data", key, data[i], SZ, NULL),
				 0);
	}
	xfer_peak = 0;
	memset(x, 0, sizeof(x));
	for (int i = 0; i < N; i++) {
		char key[16];

		snprintf(key, sizeof(key), "o%d", i);
		x[i].buf = tu_xmalloc(SZ);
		ck_assert_int_eq(store_get(E.s, "data", key, strlen(key), 0,
					   UINT64_MAX, NULL, pget_data,
					   pget_done, &x[i], &x[i].g), 0);
	}
	run_a_while(200);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_gt(st.transfer_waits, 0);
	ck_assert_uint_gt(st.transfer_given_back, 0);
	ck_assert_uint_eq(st.transfer_budget, budget);
	/* The readers come back, a chunk at a time, in turn. */
	for (int round = 0; left && round < 2000; round++) {
		for (int i = 0; i < N; i++)
			if (!x[i].done)
				store_get_resume(x[i].g);
		run_a_while(2);
		left = 0;
		for (int i = 0; i < N; i++)
			left += !x[i].done;
	}
	ck_assert_int_eq(left, 0);
	ck_assert_uint_le(xfer_peak, budget);
	ck_assert_uint_gt(xfer_peak, 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(x[i].status, 0);
		ck_assert_uint_eq(x[i].len, SZ);
		ck_assert(memcmp(x[i].buf, data[i], SZ) == 0);
		free(x[i].buf);
	}
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_eq(st.transfer_bytes, 0);
}
END_TEST

/* The same over an object of more chunks than a get pins at once (256):
 * read-ahead given back across that boundary is found again. */
START_TEST(transfer_budget_long_object)
{
	enum { N = 6, SZ = 300 << 16 };
	const uint64_t budget = 256 << 10;
	uint8_t *data = tu_xmalloc(SZ);
	struct pget x[N];
	int left = N;

	tenv_close(&E);
	E.o.cache_bytes = -1;
	E.o.transfer_bytes = budget;
	ck_assert_int_eq(tenv_open(&E), 0);
	tu_fill(data, SZ, 77);
	ck_assert_int_eq(tenv_put(&E, "data", "long", data, SZ, NULL), 0);
	xfer_peak = 0;
	memset(x, 0, sizeof(x));
	for (int i = 0; i < N; i++) {
		x[i].buf = tu_xmalloc(SZ);
		ck_assert_int_eq(store_get(E.s, "data", "long", 4, 0,
					   UINT64_MAX, NULL, pget_data,
					   pget_done, &x[i], &x[i].g), 0);
	}
	for (int round = 0; left && round < 5000; round++) {
		run_a_while(1);
		for (int i = 0; i < N; i++)
			if (!x[i].done)
				store_get_resume(x[i].g);
		left = 0;
		for (int i = 0; i < N; i++)
			left += !x[i].done;
	}
	ck_assert_int_eq(left, 0);
	ck_assert_uint_le(xfer_peak, budget);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(x[i].status, 0);
		ck_assert_uint_eq(x[i].len, SZ);
		ck_assert(memcmp(x[i].buf, data, SZ) == 0);
		free(x[i].buf);
	}
	free(data);
}
END_TEST

/* Collects a whole get without pausing. */
static int cget_data(void *arg, const void *b, size_t n)
{
	struct pget *x = arg;

	memcpy(x->buf + x->len, b, n);
	x->len += n;
	return 0;
}

/*
 * A get whose next chunk needs bigger buffers than the idle slot it goes
 * into has (a compressible chunk after a more compressible one) and finds
 * no room waits for the budget: the slot's own buffers, counted, were
 * never given back, so with nothing else in flight the get waited for
 * itself for ever.  Here the budget is below one chunk (a chunk goes only
 * when nothing is counted) and the chunks between come from the cache, so
 * nothing else of the get ever gives bytes back.
 */
START_TEST(transfer_budget_waiter_gives_back_own_slot)
{
	enum { CH = 64 << 10, SZ = 4 * CH };
	uint8_t *data = tu_xmalloc(SZ), *part;
	struct pget x = { 0 };
	struct store_stats st;
	size_t plen;

	tenv_close(&E);
	E.o.transfer_bytes = 48 << 10;
	ck_assert_int_eq(tenv_open(&E), 0);
	memset(data, 0, SZ);			/* chunk 0: compresses to little */
	tu_fill(data + CH, 2 * CH, 31);		/* chunks 1, 2 */
	tu_fill(data + 3 * CH, CH / 2, 32);	/* chunk 3: half compresses */
	ck_assert_int_eq(tenv_put(&E, "data", "grow", data, SZ, NULL), 0);
	/* Chunks 1 and 2 into the cache. */
	ck_assert_int_eq(tenv_get(&E, "data", "grow", CH, 2 * CH, &part,
				  &plen), 0);
	ck_assert_uint_eq(plen, 2 * CH);
	free(part);
	x.buf = tu_xmalloc(SZ);
	ck_assert_int_eq(store_get(E.s, "data", "grow", 4, 0, UINT64_MAX, NULL,
				   cget_data, pget_done, &x, &x.g), 0);
	pget_run_whole(&x, data, SZ);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_eq(st.transfer_bytes, 0);
	free(x.buf);
	free(data);
}
END_TEST

/*
 * A chunk that needs (nearly) the whole budget is not kept waiting by
 * small transfers: chunks of 32 KiB or less never wait but are counted,
 * and while small puts and gets kept coming some were always in flight,
 * so a chunk larger than the budget (which went only when nothing at all
 * was counted) waited for as long as they came (a 16 MiB get took 1.8 s
 * instead of 0.1 on a node with transfer_memory 1M beside 16 clients of
 * small objects).  Here 8 KiB stay counted as a small chunk in flight
 * would.
 */
START_TEST(transfer_budget_large_chunk_beside_small)
{
	enum { CH = 64 << 10, SZ = 4 * CH };
	uint8_t *data = tu_xmalloc(SZ), *small;
	struct pget x = { 0 };
	struct store_stats st;
	size_t smallcap;

	tenv_close(&E);
	E.o.cache_bytes = -1;
	E.o.transfer_bytes = 48 << 10;		/* below one chunk */
	ck_assert_int_eq(tenv_open(&E), 0);
	tu_fill(data, SZ, 41);
	ck_assert_int_eq(tenv_put(&E, "data", "big", data, SZ, NULL), 0);
	small = store__xbuf_alloc(E.s, 8 << 10, &smallcap);
	ck_assert_ptr_nonnull(small);
	x.buf = tu_xmalloc(SZ);
	ck_assert_int_eq(store_get(E.s, "data", "big", 3, 0, UINT64_MAX, NULL,
				   cget_data, pget_done, &x, &x.g), 0);
	pget_run_whole(&x, data, SZ);		/* not kept waiting */
	store__xbuf_free(E.s, small, smallcap);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_eq(st.transfer_bytes, 0);
	free(x.buf);
	free(data);
}
END_TEST

/*
 * A paused get whose read-ahead failed (a read error, found only when
 * delivered) gives that chunk back too when others wait: it kept it and
 * every chunk below it, counted, for as long as its reader stayed away.
 * Read again on resume (here the error was passing: the get succeeds).
 */
START_TEST(transfer_budget_paused_get_failed_readahead)
{
	enum { CH = 64 << 10, SZ = 4 * CH };
	uint8_t *a = tu_xmalloc(SZ), *b = tu_xmalloc(SZ);
	struct pget x = { 0 }, y = { 0 };
	struct store_stats st;

	tenv_close(&E);
	E.o.cache_bytes = -1;
	E.o.transfer_bytes = 256 << 10;		/* a window of 3, not 4 */
	ck_assert_int_eq(tenv_open(&E), 0);
	tu_fill(a, SZ, 51);
	tu_fill(b, SZ, 52);
	ck_assert_int_eq(tenv_put(&E, "data", "a", a, SZ, NULL), 0);
	ck_assert_int_eq(tenv_put(&E, "data", "b", b, SZ, NULL), 0);
	/* The get of a reads chunks 0 to 2 ahead; chunk 2's read fails. */
	fault_arm(&E.fault, FAULT_SEG_READ, 2, 1, -EIO);
	x.buf = tu_xmalloc(SZ);
	ck_assert_int_eq(store_get(E.s, "data", "a", 1, 0, UINT64_MAX, NULL,
				   pget_data, pget_done, &x, &x.g), 0);
	run_a_while(200);
	ck_assert_uint_eq(x.len, CH);		/* paused after chunk 0 */
	/* Another get waits for room: the paused one gives back. */
	y.buf = tu_xmalloc(SZ);
	ck_assert_int_eq(store_get(E.s, "data", "b", 1, 0, UINT64_MAX, NULL,
				   cget_data, pget_done, &y, &y.g), 0);
	pget_run_whole(&y, b, SZ);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_gt(st.transfer_waits, 0);
	ck_assert_msg(st.transfer_bytes == 0, "the paused get still holds %"
		      PRIu64 " bytes", st.transfer_bytes);
	for (int round = 0; !x.done && round < 2000; round++) {
		store_get_resume(x.g);
		run_a_while(2);
	}
	ck_assert(x.done);
	ck_assert_int_eq(x.status, 0);
	ck_assert(x.len == SZ && memcmp(x.buf, a, SZ) == 0);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_eq(st.transfer_bytes, 0);
	free(x.buf);
	free(y.buf);
	free(a);
	free(b);
}
END_TEST

static int staged_done;

static int stage_sink(void *arg, const void *b, size_t n)
{
	(void)arg;
	(void)b;
	(void)n;
	return 0;
}

static void stage_done(void *arg, int status)
{
	(void)arg;
	ck_assert_int_eq(status, 0);
	staged_done++;
}

/*
 * Prestaging reads (store_tier.c, for a reader's hints: up to 32 objects
 * at once) do not hold up clients' downloads: a client's get used to join
 * the end of the line behind them for each chunk, so their reads (from a
 * slow cold tier, say) came before its own (with a 64 MiB budget and a
 * hinted dataset being read, another client's 16 MiB get took 0.17 to
 * 0.21 s instead of 0.08 to 0.11).  Here six prestaging gets of four
 * chunks wait for a budget of two chunks: a client's get of four chunks
 * goes first, and finishes before any of them.
 */
START_TEST(transfer_budget_clients_before_prestaging)
{
	enum { CH = 64 << 10, SZ = 4 * CH, NP = 6 };
	uint8_t *data = tu_xmalloc(SZ);
	struct pget x = { 0 };
	struct store_stats st;

	tenv_close(&E);
	E.o.cache_bytes = -1;
	E.o.transfer_bytes = 150 << 10;
	ck_assert_int_eq(tenv_open(&E), 0);
	for (int i = 0; i <= NP; i++) {
		char key[16];

		snprintf(key, sizeof(key), "p%d", i);
		tu_fill(data, SZ, 60 + i);
		ck_assert_int_eq(tenv_put(&E, "data", key, data, SZ, NULL), 0);
	}
	staged_done = 0;
	for (int i = 0; i < NP; i++) {
		char key[16];

		snprintf(key, sizeof(key), "p%d", i);
		ck_assert_int_eq(store__get(E.s, "data", key, strlen(key), 0,
					    UINT64_MAX, NULL, stage_sink,
					    stage_done, NULL, NULL, true), 0);
	}
	x.buf = tu_xmalloc(SZ);
	ck_assert_int_eq(store_get(E.s, "data", "p6", 2, 0, UINT64_MAX, NULL,
				   cget_data, pget_done, &x, &x.g), 0);
	pget_run_whole(&x, data, SZ);
	ck_assert_msg(staged_done == 0, "%d prestaging gets went first",
		      staged_done);
	for (int ms = 0; staged_done < NP && ms < 5000; ms++)
		run_a_while(1);
	ck_assert_int_eq(staged_done, NP);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_gt(st.transfer_waits, 0);
	ck_assert_uint_eq(st.transfer_bytes, 0);
	free(x.buf);
	free(data);
}
END_TEST

/* store_get_abort(): a get paused after its first chunk, and one aborted
 * before its first read, end with STRATA_EABORTED, deliver nothing more,
 * and leave nothing counted. */
START_TEST(get_abort)
{
	enum { SZ = 1 << 20 };
	uint8_t *data = tu_xmalloc(SZ);
	struct pget x[2];
	struct store_stats st;

	tenv_close(&E);
	E.o.cache_bytes = -1;
	E.o.transfer_bytes = 256 << 10;
	ck_assert_int_eq(tenv_open(&E), 0);
	tu_fill(data, SZ, 91);
	ck_assert_int_eq(tenv_put(&E, "data", "ab", data, SZ, NULL), 0);
	memset(x, 0, sizeof(x));
	for (int i = 0; i < 2; i++) {
		x[i].buf = tu_xmalloc(SZ);
		ck_assert_int_eq(store_get(E.s, "data", "ab", 2, 0, UINT64_MAX,
					   NULL, pget_data, pget_done, &x[i],
					   &x[i].g), 0);
	}
	store_get_abort(x[1].g);	/* before anything was read */
	run_a_while(100);
	ck_assert_int_eq(x[0].done, 0);		/* paused after a chunk */
	ck_assert_uint_eq(x[0].len, 64 << 10);
	ck_assert_int_eq(x[1].done, 1);
	ck_assert_int_eq(x[1].status, STRATA_EABORTED);
	ck_assert_uint_eq(x[1].len, 0);
	store_get_abort(x[0].g);
	run_a_while(100);
	ck_assert_int_eq(x[0].done, 1);
	ck_assert_int_eq(x[0].status, STRATA_EABORTED);
	ck_assert_uint_eq(x[0].len, 64 << 10);
	ck_assert(memcmp(x[0].buf, data, 64 << 10) == 0);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_eq(st.transfer_bytes, 0);
	for (int i = 0; i < 2; i++)
		free(x[i].buf);
	free(data);
}
END_TEST

struct pput {
	int done, status;
};

static void pput_done(void *arg, int status,
		      const struct store_object_info *info)
{
	struct pput *x = arg;

	(void)info;
	x->status = status;
	x->done = 1;
}

/* Uploads wait their turn for the budget too, and all land whole; an
 * upload aborted while it waits lets go. */
START_TEST(transfer_budget_bounds_puts)
{
	enum { N = 8, SZ = 1 << 20 };
	const uint64_t budget = 400 << 10;
	static uint8_t data[N][SZ];
	struct store_put *p[N + 1];
	struct pput x[N];
	struct store_stats st;
	int left = N;

	tenv_close(&E);
	E.o.transfer_bytes = budget;
	ck_assert_int_eq(tenv_open(&E), 0);
	xfer_peak = 0;
	memset(x, 0, sizeof(x));
	for (int i = 0; i <= N; i++) {
		char key[16];

		snprintf(key, sizeof(key), "u%d", i);
		ck_assert_int_eq(store_put_begin(E.s, "data", key, strlen(key),
						 NULL, &p[i]), 0);
	}
	/* Every byte at once: the chunks queue inside each put. */
	for (int i = 0; i <= N; i++) {
		tu_fill(data[i % N], SZ, 700 + i % N);
		ck_assert_int_eq(store_put_write(p[i], data[i % N], SZ), 0);
		xfer_sample();
	}
	store_put_abort(p[N]);
	for (int i = 0; i < N; i++)
		store_put_commit(p[i], pput_done, &x[i]);
	for (int ms = 0; left && ms < 60000; ms++) {
		run_a_while(1);
		left = 0;
		for (int i = 0; i < N; i++)
			left += !x[i].done;
	}
	ck_assert_int_eq(left, 0);
	ck_assert_uint_le(xfer_peak, budget);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_gt(st.transfer_waits, 0);
	ck_assert_uint_eq(st.transfer_bytes, 0);
	for (int i = 0; i < N; i++) {
		char key[16];

		ck_assert_int_eq(x[i].status, 0);
		snprintf(key, sizeof(key), "u%d", i);
		check_object(key, data[i], SZ);
	}
	{
		uint8_t *got;
		size_t glen;

		ck_assert_int_eq(tenv_get(&E, "data", "u8", 0, UINT64_MAX,
					  &got, &glen), STRATA_ENOOBJECT);
	}
}
END_TEST

static void closed_flag(void *arg)
{
	*(int *)arg = 1;
}

/*
 * The store closes (SIGTERM) after an upload that waited for the budget
 * was aborted: its last write gave its buffers back while it was still in
 * line, which queued a wake-up of the line for later; the put then ended,
 * and the close, seeing that wake-up pending, left it to finish the
 * close, which it never did: stratad hung in its shutdown.
 */
START_TEST(transfer_budget_close_after_waiting_put)
{
	enum { CH = 64 << 10 };
	uint8_t *data = tu_xmalloc(3 * CH);
	struct store_put *p;
	struct store_stats st;
	int closed = 0;

	tenv_close(&E);
	E.o.transfer_bytes = 150 << 10;		/* one chunk at a time */
	ck_assert_int_eq(tenv_open(&E), 0);
	tu_fill(data, 3 * CH, 70);
	ck_assert_int_eq(store_put_begin(E.s, "data", "w", 1, NULL, &p), 0);
	ck_assert_int_eq(store_put_write(p, data, 3 * CH), 0);
	ck_assert_int_eq(store_stats(E.s, &st), 0);
	ck_assert_uint_eq(st.transfer_waits, 1);	/* chunk 1 waits */
	store_put_abort(p);				/* chunk 0 in flight */
	store_close(E.s, closed_flag, &closed);
	for (int ms = 0; !closed && ms < 5000; ms++) {
		uv_run(&E.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	ck_assert_msg(closed, "the store never finished closing");
	E.s = NULL;
	free(data);
}
END_TEST

START_TEST(chunk_cache_serves_repeats)
{
	uint8_t buf[300000];
	struct store_stats a, b;

	tu_fill(buf, sizeof(buf), 31);
	ck_assert_int_eq(tenv_put(&E, "data", "c", buf, sizeof(buf), NULL), 0);
	check_object("c", buf, sizeof(buf));
	ck_assert_int_eq(store_stats(E.s, &a), 0);
	check_object("c", buf, sizeof(buf));
	ck_assert_int_eq(store_stats(E.s, &b), 0);
	/* 5 chunks of 64 KiB: the second read is all hits, no segment read. */
	ck_assert_uint_eq(b.cache_hits - a.cache_hits, 5);
	ck_assert_uint_eq(b.cache_misses, a.cache_misses);
	ck_assert_uint_gt(b.cache_bytes, 0);
	/* A range inside a cached chunk. */
	{
		uint8_t *got;
		size_t glen;

		ck_assert_int_eq(tenv_get(&E, "data", "c", 70000, 1000, &got, &glen), 0);
		ck_assert(glen == 1000 && memcmp(got, buf + 70000, 1000) == 0);
		free(got);
	}
	/* Turned off: nothing cached, still correct. */
	tenv_close(&E);
	E.o.cache_bytes = -1;
	ck_assert_int_eq(tenv_open(&E), 0);
	check_object("c", buf, sizeof(buf));
	check_object("c", buf, sizeof(buf));
	ck_assert_int_eq(store_stats(E.s, &b), 0);
	ck_assert_uint_eq(b.cache_hits, 0);
	ck_assert_uint_eq(b.cache_bytes, 0);
}
END_TEST

/* Small objects inline in the index go through the chunk cache too, keyed
 * by their chunk id: repeats are hits, different bytes never share an
 * entry, and an overwrite is read back new. */
START_TEST(inline_objects_cached)
{
	uint8_t x[3000], y[3000], z[3000];
	struct store_stats a, b;

	tu_fill(x, sizeof(x), 41);
	tu_fill(y, sizeof(y), 42);
	tu_fill(z, sizeof(z), 43);
	ck_assert_int_eq(tenv_put(&E, "data", "x", x, sizeof(x), NULL), 0);
	ck_assert_int_eq(tenv_put(&E, "data", "y", y, sizeof(y), NULL), 0);
	check_object("x", x, sizeof(x));
	check_object("y", y, sizeof(y));
	ck_assert_int_eq(store_stats(E.s, &a), 0);
	check_object("x", x, sizeof(x));
	check_object("y", y, sizeof(y));
	check_object("x", x, sizeof(x));
	ck_assert_int_eq(store_stats(E.s, &b), 0);
	ck_assert_uint_eq(b.cache_hits - a.cache_hits, 3);
	/* Overwritten: the new bytes, then hits on them. */
	ck_assert_int_eq(tenv_put(&E, "data", "x", z, sizeof(z), NULL), 0);
	check_object("x", z, sizeof(z));
	check_object("x", z, sizeof(z));
	check_object("y", y, sizeof(y));
	/* The same bytes under another key share the entry, rightly. */
	ck_assert_int_eq(tenv_put(&E, "data", "w", y, sizeof(y), NULL), 0);
	check_object("w", y, sizeof(y));
	/* A range of a cached inline object. */
	{
		uint8_t *got;
		size_t glen;

		ck_assert_int_eq(store_stats(E.s, &a), 0);
		ck_assert_int_eq(tenv_get(&E, "data", "y", 1000, 777, &got,
					  &glen), 0);
		ck_assert(glen == 777 && memcmp(got, y + 1000, 777) == 0);
		free(got);
		ck_assert_int_eq(store_stats(E.s, &b), 0);
		ck_assert_uint_eq(b.cache_hits - a.cache_hits, 1);
	}
}
END_TEST

/* Object lookups answered from memory: only until the next commit, so an
 * overwrite, a delete or a bucket's removal is seen at once. */
START_TEST(object_lookups_cached)
{
	uint8_t v1[5000], v2[200000];
	struct store_stats a, b;
	uint8_t *got;
	size_t glen;

	tu_fill(v1, sizeof(v1), 51);
	tu_fill(v2, sizeof(v2), 52);
	ck_assert_int_eq(tenv_put(&E, "data", "m", v1, sizeof(v1), NULL), 0);
	check_object("m", v1, sizeof(v1));
	ck_assert_int_eq(store_stats(E.s, &a), 0);
	check_object("m", v1, sizeof(v1));
	check_object("m", v1, sizeof(v1));
	ck_assert_int_eq(store_stats(E.s, &b), 0);
	ck_assert_uint_eq(b.objmeta_hits - a.objmeta_hits, 2);
	/* Overwritten (inline -> chunked), read back new at once. */
	ck_assert_int_eq(tenv_put(&E, "data", "m", v2, sizeof(v2), NULL), 0);
	check_object("m", v2, sizeof(v2));
	check_object("m", v2, sizeof(v2));
	/* Another object's commit: the next lookup reads the index. */
	ck_assert_int_eq(store_stats(E.s, &a), 0);
	ck_assert_int_eq(tenv_put(&E, "data", "n", v1, 10, NULL), 0);
	check_object("m", v2, sizeof(v2));
	ck_assert_int_eq(store_stats(E.s, &b), 0);
	ck_assert_uint_eq(b.objmeta_hits, a.objmeta_hits);
	/* Deleted: gone at once, however often it was read. */
	check_object("m", v2, sizeof(v2));
	ck_assert_int_eq(tenv_rm(&E, "data", "m"), 0);
	ck_assert_int_eq(tenv_get(&E, "data", "m", 0, UINT64_MAX, &got,
				  &glen), STRATA_ENOOBJECT);
	/* A bucket removed and made again: none of its old objects. */
	ck_assert_int_eq(tenv_mb(&E, "scratch"), 0);
	ck_assert_int_eq(tenv_put(&E, "scratch", "k", v1, sizeof(v1), NULL), 0);
	ck_assert_int_eq(tenv_get(&E, "scratch", "k", 0, UINT64_MAX, &got,
				  &glen), 0);
	free(got);
	ck_assert_int_eq(tenv_rm(&E, "scratch", "k"), 0);
	ck_assert_int_eq(tenv_rb(&E, "scratch"), 0);
	ck_assert_int_eq(tenv_mb(&E, "scratch"), 0);
	ck_assert_int_eq(tenv_get(&E, "scratch", "k", 0, UINT64_MAX, &got,
				  &glen), STRATA_ENOOBJECT);
}
END_TEST

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, roundtrip_sizes);
	tcase_add_test(tc, stat_during_overwrite);
	tcase_add_test(tc, etag_single_chunk_is_sha256);
	tcase_add_test(tc, ranges_at_chunk_boundaries);
	tcase_add_test(tc, bucket_rules);
	tcase_add_test(tc, bad_keys);
	tcase_add_test(tc, overwrite_and_delete);
	tcase_add_test(tc, listing);
	tcase_add_test(tc, concurrent_puts_group_commit);
	tcase_add_test(tc, dedup_32mib);
	tcase_add_test(tc, compaction_reclaims);
	tcase_add_test(tc, compaction_reclaims_active_segment);
	tcase_add_test(tc, corruption_detected);
	tcase_add_test(tc, truncated_segment);
	tcase_add_test(tc, damaged_index_value);
	tcase_add_test(tc, encrypted_at_rest);
	tcase_add_test(tc, master_key_file);
	tcase_add_test(tc, missing_tier_dir);
	tcase_add_test(tc, tier_dir_with_data_gone);
	tcase_add_test(tc, new_index_keeps_segments);
	tcase_add_test(tc, unknown_segments);
	tcase_add_test(tc, stray_segment_names);
	tcase_add_test(tc, damaged_index_log_refused);
	tcase_add_test(tc, fault_seg_write);
	tcase_add_test(tc, fault_seg_write_enospc);
	tcase_add_test(tc, fault_seg_fsync);
	tcase_add_test(tc, fault_index_write);
	tcase_add_test(tc, fault_seg_create);
	tcase_add_test(tc, segment_removed_while_in_use);
	tcase_add_test(tc, fault_reads);
	tcase_add_test(tc, inline_small_objects);
	tcase_add_test(tc, inline_corrupt);
	tcase_add_test(tc, access_keys);
	tcase_add_test(tc, large_chunks_direct_io);
	tcase_add_test(tc, sealed_segments_keep_one_fd);
	tcase_add_test(tc, trim_frees_pooled_buffers);
	tcase_add_test(tc, chunk_cache_serves_repeats);
	tcase_add_test(tc, inline_objects_cached);
	tcase_add_test(tc, object_lookups_cached);
	tcase_add_test(tc, get_hold_keeps_cached_bytes);
	tcase_add_test(tc, get_sees_one_version);
	tcase_add_test(tc, gets_around_page_cache);
	tcase_add_test(tc, transfer_budget_bounds_paused_gets);
	tcase_add_test(tc, transfer_budget_bounds_puts);
	tcase_add_test(tc, transfer_budget_long_object);
	tcase_add_test(tc, get_abort);
	tcase_add_test(tc, transfer_budget_waiter_gives_back_own_slot);
	tcase_add_test(tc, transfer_budget_large_chunk_beside_small);
	tcase_add_test(tc, transfer_budget_paused_get_failed_readahead);
	tcase_add_test(tc, transfer_budget_clients_before_prestaging);
	tcase_add_test(tc, transfer_budget_close_after_waiting_put);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
