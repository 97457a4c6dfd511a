// SPDX-License-Identifier: Apache-2.0
/*
 * Dataset plans (strata_dataset_plan): the per-epoch shuffle and the split
 * by rank and loader worker.  No server: the plan is a pure function, and
 * the reader that follows it is exercised end to end by
 * tests/integration/dataset.sh.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strata/strata.h"
#include "banned.h"

/* Every (rank, worker) plan of one epoch, counted per shard. */
struct tally {
	unsigned *hits;			/* per shard */
	size_t *per_rank;		/* shards each rank reads */
	size_t total;
};

static void tally_epoch(size_t n, unsigned world, unsigned workers,
			enum strata_uneven uneven, uint64_t seed,
			uint64_t epoch, struct tally *t)
{
	size_t *idx = malloc((n + world) * sizeof(*idx) + 1);

	ck_assert_ptr_nonnull(idx);
	t->hits = calloc(n + 1, sizeof(*t->hits));
	t->per_rank = calloc(world, sizeof(*t->per_rank));
	t->total = 0;
	for (unsigned r = 0; r < world; r++) {
		for (unsigned k = 0; k < workers; k++) {
			struct strata_epoch_opts o = {
				.seed = seed, .epoch = epoch, .rank = r,
				.world_size = world, .worker = k,
				.num_workers = workers, .uneven = uneven,
			};
			size_t got = 99;

			ck_assert_int_eq(strata_dataset_plan(n, &o, idx,
							     n + world, &got),
					 0);
			for (size_t i = 0; i < got; i++) {
				ck_assert_uint_lt(idx[i], n);
				t->hits[idx[i]]++;
			}
			t->per_rank[r] += got;
			t->total += got;
		}
	}
	free(idx);
}

static void tally_free(struct tally *t)
{
	free(t->hits);
	free(t->per_rank);
}

START_TEST(test_exactly_once)
{
	static const size_t ns[] = { 0, 1, 5, 63, 64, 65, 100 };
	static const unsigned worlds[] = { 1, 2, 3, 4, 7 };

	for (size_t a = 0; a < sizeof(ns) / sizeof(*ns); a++)
		for (size_t b = 0; b < sizeof(worlds) / sizeof(*worlds); b++)
			for (unsigned k = 1; k <= 3; k++) {
				size_t n = ns[a];
				unsigned w = worlds[b];
				struct tally t;

				tally_epoch(n, w, k, STRATA_UNEVEN_SHARE, 7, 3,
					    &t);
				ck_assert_uint_eq(t.total, n);
				for (size_t i = 0; i < n; i++)
					ck_assert_uint_eq(t.hits[i], 1);
				for (unsigned r = 0; r < w; r++) {
					/* The first n % w ranks take one
					 * more. */
					size_t want = n / w + (r < n % w);

					ck_assert_uint_eq(t.per_rank[r], want);
				}
				tally_free(&t);
			}
}
END_TEST

START_TEST(test_drop_last)
{
	bool differ = false;
	unsigned *first = NULL;

	for (uint64_t epoch = 0; epoch < 4; epoch++) {
		struct tally t;
		size_t dropped = 0;

		tally_epoch(65, 4, 2, STRATA_UNEVEN_DROP, 11, epoch, &t);
		ck_assert_uint_eq(t.total, 64);
		for (unsigned r = 0; r < 4; r++)
			ck_assert_uint_eq(t.per_rank[r], 16);
		for (size_t i = 0; i < 65; i++) {
			ck_assert_uint_le(t.hits[i], 1);
			dropped += !t.hits[i];
		}
		ck_assert_uint_eq(dropped, 1);
		/* The shard left out is a different one in some epoch. */
		if (first && memcmp(first, t.hits, 65 * sizeof(*first)))
			differ = true;
		if (!first) {
			first = t.hits;
			t.hits = NULL;
		}
		tally_free(&t);
	}
	ck_assert(differ);
	free(first);

	/* Fewer shards than ranks: nobody reads anything. */
	struct tally t;

	tally_epoch(3, 4, 1, STRATA_UNEVEN_DROP, 1, 0, &t);
	ck_assert_uint_eq(t.total, 0);
	tally_free(&t);
}
END_TEST

START_TEST(test_pad)
{
	struct tally t;
	size_t twice = 0;

	tally_epoch(65, 4, 3, STRATA_UNEVEN_PAD, 5, 2, &t);
	ck_assert_uint_eq(t.total, 68);
	for (unsigned r = 0; r < 4; r++)
		ck_assert_uint_eq(t.per_rank[r], 17);
	for (size_t i = 0; i < 65; i++) {
		ck_assert_uint_ge(t.hits[i], 1);
		ck_assert_uint_le(t.hits[i], 2);
		twice += t.hits[i] == 2;
	}
	ck_assert_uint_eq(twice, 3);
	tally_free(&t);

	/* More ranks than shards: the order wraps around, still equal. */
	tally_epoch(2, 5, 1, STRATA_UNEVEN_PAD, 5, 2, &t);
	ck_assert_uint_eq(t.total, 5);
	for (unsigned r = 0; r < 5; r++)
		ck_assert_uint_eq(t.per_rank[r], 1);
	ck_assert_uint_ge(t.hits[0], 2);
	ck_assert_uint_ge(t.hits[1], 2);
	tally_free(&t);

	/* Even division pads nothing. */
	tally_epoch(64, 4, 2, STRATA_UNEVEN_PAD, 5, 2, &t);
	ck_assert_uint_eq(t.total, 64);
	for (size_t i = 0; i < 64; i++)
		ck_assert_uint_eq(t.hits[i], 1);
	tally_free(&t);
}
END_TEST

static void plan(size_t n, uint64_t seed, uint64_t epoch, unsigned rank,
		 unsigned world, size_t *idx, size_t *got)
{
	struct strata_epoch_opts o = {
		.seed = seed, .epoch = epoch, .rank = rank,
		.world_size = world,
	};

	ck_assert_int_eq(strata_dataset_plan(n, &o, idx, n, got), 0);
}

START_TEST(test_deterministic)
{
	size_t a[64], b[64], na, nb;

	plan(64, 42, 0, 1, 4, a, &na);
	plan(64, 42, 0, 1, 4, b, &nb);
	ck_assert_uint_eq(na, 16);
	ck_assert_uint_eq(na, nb);
	ck_assert_mem_eq(a, b, na * sizeof(*a));
	/* Another epoch, another order (and another share). */
	plan(64, 42, 1, 1, 4, b, &nb);
	ck_assert_uint_eq(nb, 16);
	ck_assert(memcmp(a, b, na * sizeof(*a)) != 0);
	/* Another seed, another order. */
	plan(64, 43, 0, 1, 4, b, &nb);
	ck_assert(memcmp(a, b, na * sizeof(*a)) != 0);

	/* Pinned: the shuffle is part of the format (a job restarted with a
	 * newer libstrata must read the same order).  seed 42, epoch 0. */
	{
		static const size_t want[10] = {
			9, 4, 2, 8, 1, 3, 0, 6, 5, 7,
		};
		size_t p[10], n;

		plan(10, 42, 0, 0, 1, p, &n);
		ck_assert_uint_eq(n, 10);
		ck_assert_mem_eq(p, want, sizeof(want));
	}
}
END_TEST

START_TEST(test_epochs_are_permutations)
{
	size_t a[100], b[100], na, nb;
	unsigned seen[100];

	plan(100, 9, 0, 0, 1, a, &na);
	plan(100, 9, 1, 0, 1, b, &nb);
	ck_assert_uint_eq(na, 100);
	ck_assert_uint_eq(nb, 100);
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	memset(seen, 0, sizeof(seen));
	for (size_t i = 0; i < 100; i++)
		seen[b[i]]++;
	for (size_t i = 0; i < 100; i++)
		ck_assert_uint_eq(seen[i], 1);
}
END_TEST

START_TEST(test_no_shuffle)
{
	struct strata_epoch_opts o = {
		.seed = 5, .epoch = 9, .no_shuffle = true, .rank = 1,
		.world_size = 2, .worker = 1, .num_workers = 2,
	};
	size_t idx[8], n;

	/* Rank 1 of 2 reads 1 3 5 7 9; its worker 1 of 2 reads 3 7. */
	ck_assert_int_eq(strata_dataset_plan(10, &o, idx, 8, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(idx[0], 3);
	ck_assert_uint_eq(idx[1], 7);
}
END_TEST

/* The shuffle is not biased: over many seeds shard 0 lands in each of 8
 * places about equally often. */
START_TEST(test_uniform)
{
	unsigned at[8] = { 0 };

	for (uint64_t seed = 0; seed < 8000; seed++) {
		size_t p[8], n;

		plan(8, seed, 0, 0, 1, p, &n);
		for (size_t i = 0; i < 8; i++)
			if (p[i] == 0)
				at[i]++;
	}
	for (size_t i = 0; i < 8; i++) {
		ck_assert_uint_gt(at[i], 850);
		ck_assert_uint_lt(at[i], 1150);
	}
}
END_TEST

START_TEST(test_bad_input)
{
	struct strata_epoch_opts o = { .rank = 2, .world_size = 2 };
	size_t idx[4], n = 77;

	ck_assert_int_eq(strata_dataset_plan(4, &o, idx, 4, &n), -EINVAL);
	o.rank = 0;
	o.worker = 1;			/* num_workers 0 means 1 */
	ck_assert_int_eq(strata_dataset_plan(4, &o, idx, 4, &n), -EINVAL);
	o.worker = 0;
	o.uneven = (enum strata_uneven)7;
	ck_assert_int_eq(strata_dataset_plan(4, &o, idx, 4, &n), -EINVAL);
	o.uneven = STRATA_UNEVEN_SHARE;
	ck_assert_int_eq(strata_dataset_plan(4, NULL, idx, 4, &n), -EINVAL);
	ck_assert_int_eq(strata_dataset_plan(4, &o, idx, 4, NULL), -EINVAL);
	ck_assert_int_eq(strata_dataset_plan(4, &o, NULL, 4, &n), -EINVAL);
	/* Too small: the count is still told (rank 0 of 2: 10 of 20). */
	ck_assert_int_eq(strata_dataset_plan(20, &o, idx, 4, &n), -ENOBUFS);
	ck_assert_uint_eq(n, 10);
	ck_assert_int_eq(strata_dataset_plan(20, &o, NULL, 0, &n), -ENOBUFS);
	ck_assert_uint_eq(n, 10);

	/* NULL handles are harmless or refused, never a crash. */
	ck_assert_uint_eq(strata_dataset_count(NULL), 0);
	ck_assert_ptr_null(strata_dataset_key(NULL, 0, NULL));
	ck_assert_ptr_null(strata_dataset_etag(NULL, 0));
	strata_dataset_free(NULL);
	strata_epoch_free(NULL);
	strata_epoch_buf_free(NULL, NULL, 0);
	ck_assert_int_eq(strata_epoch_next(NULL, NULL), -EINVAL);
	ck_assert_int_eq(strata_epoch_new(NULL, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(strata_dataset_open(NULL, "b", NULL, NULL), -EINVAL);
	ck_assert_int_eq(strata_hint(NULL, "bucket", NULL, 0), -EINVAL);
}
END_TEST

static Suite *dataset_suite(void)
{
	Suite *s = suite_create("dataset");
	TCase *tc = tcase_create("plan");

	tcase_add_test(tc, test_exactly_once);
	tcase_add_test(tc, test_drop_last);
	tcase_add_test(tc, test_pad);
	tcase_add_test(tc, test_deterministic);
	tcase_add_test(tc, test_epochs_are_permutations);
	tcase_add_test(tc, test_no_shuffle);
	tcase_add_test(tc, test_uniform);
	tcase_add_test(tc, test_bad_input);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(dataset_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
