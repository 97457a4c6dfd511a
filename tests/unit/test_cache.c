// SPDX-License-Identifier: Apache-2.0
/* The plaintext chunk cache: budget, hits and misses, pinning, and
 * S3-FIFO's scan resistance. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "banned.h"

static size_t freed;

static void free_mem(void *arg, uint8_t *mem, size_t cap)
{
	(void)arg;
	freed += cap;
	free(mem);
}

static void key_of(unsigned n, uint8_t k[CACHE_KEY_LEN])
{
	memset(k, 0, CACHE_KEY_LEN);
	k[7] = 1;
	for (int i = 0; i < 4; i++)
		k[8 + i] = (uint8_t)(n >> (8 * i));
	/* spread the hash like a real chunk id would */
	for (int i = 12; i < CACHE_KEY_LEN; i++)
		k[i] = (uint8_t)(n * 131 + (unsigned)i * 7);
}

static int put(struct cache *c, unsigned n, size_t len)
{
	uint8_t k[CACHE_KEY_LEN], *m = malloc(len);
	int rc;

	key_of(n, k);
	memset(m, (int)(n & 0xff), len);
	rc = cache_insert(c, k, m, len, m, len);
	if (!rc)
		free(m);
	return rc;
}

static int hit(struct cache *c, unsigned n)
{
	uint8_t k[CACHE_KEY_LEN];
	struct cache_entry *e;

	key_of(n, k);
	e = cache_get(c, k);
	if (!e)
		return 0;
	ck_assert_uint_eq(e->data[0], n & 0xff);
	cache_release(e);
	return 1;
}

START_TEST(budget_hits_misses)
{
	struct cache *c = cache_new(100 * 1000, free_mem, NULL);
	struct cache_stats st;

	freed = 0;
	for (unsigned i = 0; i < 50; i++)
		ck_assert_int_eq(put(c, i, 1000), 1);
	ck_assert_int_eq(put(c, 3, 1000), 0);		/* already there */
	ck_assert_int_eq(put(c, 999, 60000), 0);	/* over half the budget */
	ck_assert(hit(c, 10));
	ck_assert(!hit(c, 777));
	for (unsigned i = 50; i < 400; i++)
		put(c, i, 1000);
	cache_get_stats(c, &st);
	ck_assert_uint_le(st.bytes, 100 * 1000);
	ck_assert_uint_eq(st.hits, 1);
	ck_assert_uint_eq(st.misses, 1);
	ck_assert_uint_gt(st.evictions, 0);
	ck_assert_uint_eq(freed, st.evictions * 1000);
	cache_free(c);
}
END_TEST

/* Small chunks (inline objects of a few bytes) count their bookkeeping:
 * what the entries really hold, struct and bytes, stays in the budget
 * (it was 100,000 entries of 8 bytes, 14 MB, in a 1 MB budget). */
START_TEST(small_entries_count_their_bookkeeping)
{
	const size_t budget = 1u << 20;
	struct cache *c = cache_new(budget, free_mem, NULL);
	struct cache_stats st;

	for (unsigned i = 0; i < 100000; i++)
		put(c, i, 8);
	cache_get_stats(c, &st);
	ck_assert_uint_gt(st.entries, 1000);
	ck_assert_uint_le(st.entries * (sizeof(struct cache_entry) + 8),
			  budget);
	ck_assert_uint_le(st.bytes, budget);
	cache_free(c);
}
END_TEST

START_TEST(disabled)
{
	struct cache *c = cache_new(0, free_mem, NULL);

	ck_assert_int_eq(put(c, 1, 10), 0);
	ck_assert(!hit(c, 1));
	cache_free(c);
}
END_TEST

START_TEST(pinned_entry_survives_eviction)
{
	struct cache *c = cache_new(10 * 1000, free_mem, NULL);
	uint8_t k[CACHE_KEY_LEN];
	struct cache_entry *e;

	freed = 0;
	ck_assert_int_eq(put(c, 1, 1000), 1);
	key_of(1, k);
	e = cache_get(c, k);
	ck_assert_ptr_nonnull(e);
	for (unsigned i = 2; i < 200; i++)
		put(c, i, 1000);
	/* Evicted or not, the pinned bytes are still readable. */
	ck_assert_uint_eq(e->data[0], 1);
	ck_assert_uint_eq(e->data[999], 1);
	cache_release(e);
	cache_free(c);
}
END_TEST

START_TEST(scan_resistant)
{
	/* A working set of 20 chunks read over and over, then one pass over
	 * a dataset four times the cache: the working set stays. */
	struct cache *c = cache_new(100 * 1000, free_mem, NULL);
	unsigned kept = 0;

	for (int round = 0; round < 3; round++)
		for (unsigned i = 0; i < 20; i++)
			if (!hit(c, i))
				put(c, i, 1000);
	for (unsigned i = 1000; i < 1400; i++) {
		if (!hit(c, i))
			put(c, i, 1000);
	}
	for (unsigned i = 0; i < 20; i++)
		kept += hit(c, i);
	ck_assert_uint_ge(kept, 18);
	cache_free(c);
}
END_TEST

START_TEST(ghost_readmits_to_main)
{
	struct cache *c = cache_new(20 * 1000, free_mem, NULL);
	struct cache_stats st;

	put(c, 1, 1000);
	for (unsigned i = 2; i < 60; i++)
		put(c, i, 1000);	/* 1 falls out of small, unread */
	ck_assert(!hit(c, 1));
	ck_assert_int_eq(put(c, 1, 1000), 1);	/* a ghost: goes to main */
	for (unsigned i = 100; i < 130; i++)
		put(c, i, 1000);
	ck_assert(hit(c, 1));
	cache_get_stats(c, &st);
	ck_assert_uint_le(st.bytes, 20 * 1000);
	cache_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, budget_hits_misses);
	tcase_add_test(tc, small_entries_count_their_bookkeeping);
	tcase_add_test(tc, disabled);
	tcase_add_test(tc, pinned_entry_survives_eviction);
	tcase_add_test(tc, scan_resistant);
	tcase_add_test(tc, ghost_readmits_to_main);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
