// SPDX-License-Identifier: Apache-2.0
/* The chunk engine: buckets, objects, ranges, listing, dedup, garbage,
 * durability across reopen, corruption, encryption and every fault point. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index.h"
#include "meta.h"
#include "record.h"
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

static void list_keys(const char *prefix, const char *after, char delim,
		      size_t limit, char *out, size_t outlen, int *truncated)
{
	struct store_list_opts lo = {
		.prefix = prefix, .prefixlen = prefix ? strlen(prefix) : 0,
		.start_after = after, .start_after_len = after ? strlen(after) : 0,
		.delim = delim, .limit = limit,
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
	list_keys(NULL, NULL, 0, 0, out, sizeof(out), &trunc);
	ck_assert_str_eq(out, "a,b/1,b/2,b/c/3,d/4,d0");
	ck_assert_int_eq(trunc, 0);
	list_keys(NULL, NULL, '/', 0, out, sizeof(out), NULL);
	ck_assert_str_eq(out, "a,b/,d/,d0");
	list_keys("b/", NULL, '/', 0, out, sizeof(out), NULL);
	ck_assert_str_eq(out, "b/1,b/2,b/c/");
	list_keys("b", NULL, 0, 0, out, sizeof(out), NULL);
	ck_assert_str_eq(out, "b/1,b/2,b/c/3");
	list_keys(NULL, "b/1", 0, 2, out, sizeof(out), &trunc);
	ck_assert_str_eq(out, "b/2,b/c/3");
	ck_assert_int_eq(trunc, 1);
	/* Paging with a delimiter never repeats a prefix. */
	list_keys(NULL, NULL, '/', 2, out, sizeof(out), &trunc);
	ck_assert_str_eq(out, "a,b/");
	ck_assert_int_eq(trunc, 1);
	list_keys(NULL, "b/", '/', 2, out, sizeof(out), &trunc);
	ck_assert_str_eq(out, "d/,d0");
	list_keys("zzz", NULL, 0, 0, out, sizeof(out), NULL);
	ck_assert_str_eq(out, "");
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

static Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, roundtrip_sizes);
	tcase_add_test(tc, etag_single_chunk_is_sha256);
	tcase_add_test(tc, ranges_at_chunk_boundaries);
	tcase_add_test(tc, bucket_rules);
	tcase_add_test(tc, bad_keys);
	tcase_add_test(tc, overwrite_and_delete);
	tcase_add_test(tc, listing);
	tcase_add_test(tc, concurrent_puts_group_commit);
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
