// SPDX-License-Identifier: Apache-2.0
/* Unit tests for fault.c: skip/count semantics, spec parsing, threads. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "fault.h"
#include "testutil.h"
#include "banned.h"

START_TEST(t_unarmed)
{
	struct fault f;

	fault_init(&f);
	for (int p = 0; p < FAULT__COUNT; p++) {
		for (int i = 0; i < 1000; i++)
			ck_assert_int_eq(fault_hit(&f, (enum fault_point)p), 0);
		ck_assert_uint_eq(fault_hits(&f, (enum fault_point)p), 0);
	}
	ck_assert_int_eq(atomic_load(&f.armed), 0);
	fault_release(&f);
}
END_TEST

START_TEST(t_skip_count)
{
	struct fault f;

	fault_init(&f);
	fault_arm(&f, FAULT_SEG_WRITE, 3, 2, -ENOSPC);
	ck_assert_int_ne(atomic_load(&f.armed), 0);
	/* Other points are untouched. */
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_READ), 0);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_FSYNC), 0);

	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_WRITE), 0);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_WRITE), 0);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_WRITE), 0);
	ck_assert_uint_eq(fault_hits(&f, FAULT_SEG_WRITE), 0);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_WRITE), -ENOSPC);
	ck_assert_uint_eq(fault_hits(&f, FAULT_SEG_WRITE), 1);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_WRITE), -ENOSPC);
	ck_assert_uint_eq(fault_hits(&f, FAULT_SEG_WRITE), 2);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(fault_hit(&f, FAULT_SEG_WRITE), 0);
	ck_assert_uint_eq(fault_hits(&f, FAULT_SEG_WRITE), 2);
	/* Exhausted: the fast path is back. */
	ck_assert_int_eq(atomic_load(&f.armed), 0);
	fault_release(&f);
}
END_TEST

START_TEST(t_skip_zero)
{
	struct fault f;

	fault_init(&f);
	fault_arm(&f, FAULT_SEG_FSYNC, 0, 1, -EIO);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_FSYNC), -EIO);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_FSYNC), 0);
	ck_assert_uint_eq(fault_hits(&f, FAULT_SEG_FSYNC), 1);
	fault_release(&f);
}
END_TEST

START_TEST(t_disarm_and_rearm)
{
	struct fault f;

	fault_init(&f);
	fault_arm(&f, FAULT_INDEX_READ, 0, 5, -EIO);
	ck_assert_int_eq(fault_hit(&f, FAULT_INDEX_READ), -EIO);
	fault_arm(&f, FAULT_INDEX_READ, 0, 0, 0);	/* count 0 disarms */
	ck_assert_int_eq(atomic_load(&f.armed), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(fault_hit(&f, FAULT_INDEX_READ), 0);

	/* Re-arming replaces the old setting; hits keep counting. */
	fault_arm(&f, FAULT_INDEX_READ, 1, 1, -EROFS);
	ck_assert_int_eq(fault_hit(&f, FAULT_INDEX_READ), 0);
	ck_assert_int_eq(fault_hit(&f, FAULT_INDEX_READ), -EROFS);
	ck_assert_int_eq(fault_hit(&f, FAULT_INDEX_READ), 0);
	ck_assert_uint_eq(fault_hits(&f, FAULT_INDEX_READ), 2);

	/* armed stays set while any one point is armed. */
	fault_arm(&f, FAULT_SEG_CREATE, 0, 1, -EACCES);
	fault_arm(&f, FAULT_INDEX_WRITE, 0, 1, -EDQUOT);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_CREATE), -EACCES);
	ck_assert_int_ne(atomic_load(&f.armed), 0);
	ck_assert_int_eq(fault_hit(&f, FAULT_INDEX_WRITE), -EDQUOT);
	ck_assert_int_eq(atomic_load(&f.armed), 0);
	fault_release(&f);
}
END_TEST

START_TEST(t_spec_good)
{
	struct fault f;

	fault_init(&f);
	ck_assert_int_eq(fault_arm_spec(&f, "seg_write:3:1:ENOSPC"), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(fault_hit(&f, FAULT_SEG_WRITE), 0);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_WRITE), -ENOSPC);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_WRITE), 0);

	ck_assert_int_eq(fault_arm_spec(&f,
		"seg_create:0:1:EACCES,seg_fsync:0:2:EIO,seg_read:1:1:EROFS,"
		"index_read:0:1:EDQUOT,index_write:0:1:28"), 0);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_CREATE), -EACCES);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_FSYNC), -EIO);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_FSYNC), -EIO);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_FSYNC), 0);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_READ), 0);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_READ), -EROFS);
	ck_assert_int_eq(fault_hit(&f, FAULT_INDEX_READ), -EDQUOT);
	ck_assert_int_eq(fault_hit(&f, FAULT_INDEX_WRITE), -28);
	ck_assert_int_eq(atomic_load(&f.armed), 0);

	/* Named twice: the later item wins. */
	ck_assert_int_eq(fault_arm_spec(&f,
		"seg_read:0:1:EIO,seg_read:0:1:ENOSPC"), 0);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_READ), -ENOSPC);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_READ), 0);

	/* count 0 disarms; an empty spec arms nothing. */
	ck_assert_int_eq(fault_arm_spec(&f, "seg_read:0:5:EIO"), 0);
	ck_assert_int_eq(fault_arm_spec(&f, "seg_read:0:0:EIO"), 0);
	ck_assert_int_eq(fault_hit(&f, FAULT_SEG_READ), 0);
	ck_assert_int_eq(fault_arm_spec(&f, ""), 0);
	ck_assert_int_eq(atomic_load(&f.armed), 0);
	fault_release(&f);
}
END_TEST

static const char *const bad_specs[] = {
	"bogus:0:1:EIO",
	"seg_write",
	"seg_write:0:1",
	"seg_write:0:1:",
	"seg_write:0:1:EIO:7",
	"seg_write::1:EIO",
	"seg_write:0::EIO",
	":0:1:EIO",
	"seg_write:x:1:EIO",
	"seg_write:-1:1:EIO",
	"seg_write:+1:1:EIO",
	"seg_write: 1:1:EIO",
	"seg_write:0:1:EFOO",
	"seg_write:0:1:eio",
	"seg_write:0:1:0",
	"seg_write:0:1:-5",
	"seg_write:0:1:4096",
	"seg_write:0:1:5x",
	"seg_write:99999999999999999999999999:1:EIO",
	"Seg_write:0:1:EIO",
	"seg_write :0:1:EIO",
	"seg_write:0:1:EIO,",
	",seg_write:0:1:EIO",
	"seg_write:0:1:EIO,,seg_read:0:1:EIO",
	/* A bad item anywhere arms nothing, not even the good ones. */
	"seg_read:0:1:EIO,seg_write:0:1:EFOO",
	"seg_read:0:1:EIO,index_read:0:1:EIO,nope:0:1:EIO",
};

START_TEST(t_spec_bad)
{
	struct fault f;
	const char *spec = bad_specs[_i];

	fault_init(&f);
	ck_assert_msg(fault_arm_spec(&f, spec) == -EINVAL, "accepted \"%s\"",
		      spec);
	ck_assert_int_eq(atomic_load(&f.armed), 0);
	for (int p = 0; p < FAULT__COUNT; p++)
		ck_assert_int_eq(fault_hit(&f, (enum fault_point)p), 0);
	fault_release(&f);
}
END_TEST

enum { HAMMER_CALLS = 200000, HAMMER_SKIP = 1000, HAMMER_COUNT = 5000 };

struct hammer {
	struct fault *f;
	pthread_t tid;
	unsigned long fails;
	unsigned long other;	/* results that are neither 0 nor -EIO */
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;

	for (int i = 0; i < HAMMER_CALLS; i++) {
		int r = fault_hit(h->f, FAULT_SEG_WRITE);

		if (r == -EIO)
			h->fails++;
		else if (r != 0)
			h->other++;
	}
	return NULL;
}

START_TEST(t_threads)
{
	struct fault f;
	struct hammer h[2] = { { .f = &f }, { .f = &f } };

	fault_init(&f);
	fault_arm(&f, FAULT_SEG_WRITE, HAMMER_SKIP, HAMMER_COUNT, -EIO);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&h[i].tid, NULL, hammer_main,
						&h[i]), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_join(h[i].tid, NULL), 0);

	ck_assert_uint_eq(h[0].fails + h[1].fails, HAMMER_COUNT);
	ck_assert_uint_eq(h[0].other + h[1].other, 0);
	ck_assert_uint_eq(fault_hits(&f, FAULT_SEG_WRITE), HAMMER_COUNT);
	ck_assert_int_eq(atomic_load(&f.armed), 0);
	fault_release(&f);
}
END_TEST

static Suite *fault_suite(void)
{
	Suite *s = suite_create("fault");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, t_unarmed);
	tcase_add_test(tc, t_skip_count);
	tcase_add_test(tc, t_skip_zero);
	tcase_add_test(tc, t_disarm_and_rearm);
	tcase_add_test(tc, t_spec_good);
	tcase_add_loop_test(tc, t_spec_bad, 0,
			    (int)(sizeof(bad_specs) / sizeof(bad_specs[0])));
	tcase_add_test(tc, t_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fault_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
