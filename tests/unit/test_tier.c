// SPDX-License-Identifier: Apache-2.0
/*
 * Tiers: demotion under watermarks, promotion of repeatedly read cold
 * chunks, lifecycle rules on an injected clock, spilling and ENOSPC,
 * prestaging hints, and the slow-device emulation knob.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "store.h"
#include "store_int.h"
#include "storeutil.h"
#include "strata/error.h"
#include "banned.h"

#define MiB (1u << 20)

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static struct store_stats stats(struct tenv *e)
{
	struct store_stats st;

	ck_assert_int_eq(store_stats(e->s, &st), 0);
	return st;
}

/* Run the loop (the mover's timers) until pred holds or ms pass. */
struct until {
	struct tenv *e;
	int (*pred)(struct tenv *e, void *arg);
	void *arg;
	int ok;
	uint64_t deadline;
};

static void until_cb(uv_timer_t *t)
{
	struct until *u = t->data;

	if (u->pred(u->e, u->arg)) {
		u->ok = 1;
		uv_timer_stop(t);
	} else if (uv_now(t->loop) > u->deadline) {
		uv_timer_stop(t);
	}
}

static int run_until(struct tenv *e, int (*pred)(struct tenv *, void *),
		     void *arg, unsigned ms)
{
	struct until u = { .e = e, .pred = pred, .arg = arg };
	uv_timer_t t;

	if (pred(e, arg))
		return 1;
	uv_update_time(&e->loop);
	u.deadline = uv_now(&e->loop) + ms;
	uv_timer_init(&e->loop, &t);
	t.data = &u;
	uv_timer_start(&t, until_cb, 5, 5);
	while (uv_is_active((uv_handle_t *)&t))
		uv_run(&e->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	return u.ok;
}

static int chunks_tier(struct tenv *e, const char *bucket, const char *key,
		       int tier)
{
	struct store_object_info info;
	struct store_chunk_info *ci;
	int all = 1;

	ck_assert_int_eq(store_stat(e->s, bucket, key, strlen(key), &info, &ci,
				    NULL, NULL), 0);
	for (uint32_t i = 0; i < info.nchunks; i++)
		all &= ci[i].tier == tier;
	free(ci);
	return all;
}

static void check_object(struct tenv *e, const char *key, size_t len,
			 uint64_t seed)
{
	uint8_t *want = malloc(len), *got;
	size_t glen;

	fill(want, len, seed);
	ck_assert_int_eq(tenv_get(e, "bkt", key, 0, UINT64_MAX, &got, &glen), 0);
	ck_assert_uint_eq(glen, len);
	ck_assert(memcmp(got, want, len) == 0);
	free(got);
	free(want);
}

static void setup_env(struct tenv *e, uint64_t hot_cap)
{
	tenv_init(e, NULL);
	e->o.chunk_size = MiB;
	e->o.zstd_level = 0;
	e->o.cache_bytes = -1;		/* reads go to the segments */
	e->o.tier[STORE_TIER_HOT].capacity = hot_cap;
	e->o.mover_interval_ms = 20;
	e->o.mover_rate = 0;
}

static int hot_settled(struct tenv *e, void *arg)
{
	struct store_stats st = stats(e);

	(void)arg;
	return st.tier_used[STORE_TIER_HOT] * 100 <=
	       st.tier_capacity[STORE_TIER_HOT] * st.tier_high_pct[STORE_TIER_HOT];
}

START_TEST(demotion_keeps_hot_under_watermark)
{
	const unsigned n = 128;
	const size_t len = 4 * MiB;
	uint64_t maxhot = 0;
	struct tenv e;
	struct store_stats st;
	uint8_t *buf = malloc(len);
	char key[32];

	setup_env(&e, 64ull * MiB);
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (unsigned i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "o/%04u", i);
		fill(buf, len, i);
		ck_assert_int_eq(tenv_put(&e, "bkt", key, buf, len, NULL), 0);
		st = stats(&e);
		if (st.tier_used[STORE_TIER_HOT] > maxhot)
			maxhot = st.tier_used[STORE_TIER_HOT];
	}
	/* Never past the capacity (writes spill instead), and under the
	 * high watermark once the mover has caught up. */
	ck_assert_uint_le(maxhot, 64ull * MiB);
	ck_assert(run_until(&e, hot_settled, NULL, 30000));
	st = stats(&e);
	ck_assert_uint_gt(st.demoted_bytes, 256ull * MiB);
	/* Every byte reads back. */
	for (unsigned i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "o/%04u", i);
		check_object(&e, key, len, i);
	}
	/* The coldest (oldest, never read) data is what went cold; the
	 * newest stayed hot unless a write had to spill. */
	for (unsigned i = 0; i < n / 2; i++) {
		snprintf(key, sizeof(key), "o/%04u", i);
		ck_assert_msg(chunks_tier(&e, "bkt", key, STORE_TIER_COLD),
			      "%s is not cold", key);
	}
	if (st.spilled_bytes == 0)
		ck_assert(chunks_tier(&e, "bkt", "o/0127", STORE_TIER_HOT));
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

static int lc_cold_done(struct tenv *e, void *arg)
{
	return stats(e).lifecycle_cold >= *(uint64_t *)arg;
}

static int promoted(struct tenv *e, void *arg)
{
	return stats(e).promoted_chunks >= *(uint64_t *)arg;
}

START_TEST(repeated_cold_reads_promote)
{
	struct store_lc_rule rule = { .prefix = "p/", .age_ms = 0,
				      .action = STORE_LC_COLD };
	uint8_t *buf = malloc(MiB);
	uint64_t want = 8, one = 1;
	struct tenv e;
	char key[32];

	setup_env(&e, 256ull * MiB);
	e.o.promote_reads = 3;
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (unsigned i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "p/%u", i);
		fill(buf, MiB, 100 + i);
		ck_assert_int_eq(tenv_put(&e, "bkt", key, buf, MiB, NULL), 0);
	}
	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", &rule, 1), 0);
	store_lifecycle_run(e.s);
	ck_assert(run_until(&e, lc_cold_done, &want, 10000));
	ck_assert(chunks_tier(&e, "bkt", "p/3", STORE_TIER_COLD));
	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", NULL, 0), 0);
	/* Two reads are not enough; the third promotes. */
	check_object(&e, "p/3", MiB, 103);
	check_object(&e, "p/3", MiB, 103);
	ck_assert(!run_until(&e, promoted, &one, 200));
	check_object(&e, "p/3", MiB, 103);
	ck_assert(run_until(&e, promoted, &one, 10000));
	ck_assert(chunks_tier(&e, "bkt", "p/3", STORE_TIER_HOT));
	ck_assert(chunks_tier(&e, "bkt", "p/4", STORE_TIER_COLD));
	check_object(&e, "p/3", MiB, 103);
	/* Survives a reopen where it is. */
	tenv_close(&e);
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert(chunks_tier(&e, "bkt", "p/3", STORE_TIER_HOT));
	check_object(&e, "p/3", MiB, 103);
	check_object(&e, "p/4", MiB, 104);
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

static uint64_t fake_now;

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

static int expired(struct tenv *e, void *arg)
{
	return stats(e).lifecycle_expired >= *(uint64_t *)arg;
}

#define DAY (86400ull * 1000)

START_TEST(lifecycle_rules_on_injected_clock)
{
	struct store_lc_rule rules[2] = {
		{ .prefix = "logs/", .age_ms = 3 * DAY,
		  .action = STORE_LC_DELETE },
		{ .prefix = "data/", .age_ms = 1 * DAY,
		  .action = STORE_LC_COLD },
	}, bad = { .prefix = "x", .action = 9 }, *got;
	/* mtime + age wraps past 2^64: it must not be "due" at once. */
	struct store_lc_rule far = { .prefix = "keep/",
				     .age_ms = UINT64_MAX - DAY,
				     .action = STORE_LC_DELETE };
	const size_t len = 100 << 10;	/* not inline */
	uint8_t *buf = malloc(len), *out;
	uint64_t one = 1;
	struct tenv e;
	size_t n, olen;

	fake_now = 1700000000000ull;
	setup_env(&e, 0);
	e.o.clock_ms = fake_clock;
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	/* Different bytes each: a shared (deduplicated) chunk would move
	 * with any of its objects. */
	fill(buf, len, 1);
	ck_assert_int_eq(tenv_put(&e, "bkt", "logs/a", buf, len, NULL), 0);
	fill(buf, len, 2);
	ck_assert_int_eq(tenv_put(&e, "bkt", "data/x", buf, len, NULL), 0);
	fill(buf, len, 3);
	ck_assert_int_eq(tenv_put(&e, "bkt", "keep/y", buf, len, NULL), 0);
	fill(buf, len, 4);
	ck_assert_int_eq(tenv_put(&e, "bkt", "logsx", buf, len, NULL), 0);
	fake_now += 2 * DAY;
	fill(buf, len, 5);
	ck_assert_int_eq(tenv_put(&e, "bkt", "logs/b", buf, len, NULL), 0);

	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", &bad, 1), -EINVAL);
	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", &far, 1), -EINVAL);
	far.age_ms = STORE_LC_MAX_AGE_MS + 1;
	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", &far, 1), -EINVAL);
	far.age_ms = STORE_LC_MAX_AGE_MS;	/* the longest is fine */
	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", &far, 1), 0);
	ck_assert_int_eq(store_lifecycle_set(e.s, "nope", rules, 2),
			 STRATA_ENOBUCKET);
	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", rules, 2), 0);
	ck_assert_int_eq(store_lifecycle_get(e.s, "bkt", &got, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(got[0].prefix, "logs/");
	ck_assert_uint_eq(got[0].age_ms, 3 * DAY);
	ck_assert_int_eq(got[1].action, STORE_LC_COLD);
	free(got);

	/* Day 2: data/x is a day past its rule; nothing is old enough to
	 * expire. */
	store_lifecycle_run(e.s);
	ck_assert(run_until(&e, lc_cold_done, &one, 10000));
	ck_assert(chunks_tier(&e, "bkt", "data/x", STORE_TIER_COLD));
	ck_assert(chunks_tier(&e, "bkt", "keep/y", STORE_TIER_HOT));
	ck_assert(chunks_tier(&e, "bkt", "logs/a", STORE_TIER_HOT));
	ck_assert_uint_eq(stats(&e).lifecycle_expired, 0);

	/* Day 4: logs/a (4 days) expires; logs/b (2 days) stays; logsx is
	 * not under "logs/". */
	fake_now += 2 * DAY;
	store_lifecycle_run(e.s);
	ck_assert(run_until(&e, expired, &one, 10000));
	ck_assert_int_eq(tenv_get(&e, "bkt", "logs/a", 0, UINT64_MAX, &out,
				  &olen), STRATA_ENOOBJECT);
	ck_assert_int_eq(tenv_get(&e, "bkt", "logs/b", 0, UINT64_MAX, &out,
				  &olen), 0);
	free(out);
	ck_assert_int_eq(tenv_get(&e, "bkt", "logsx", 0, UINT64_MAX, &out,
				  &olen), 0);
	free(out);
	ck_assert_int_eq(tenv_get(&e, "bkt", "keep/y", 0, UINT64_MAX, &out,
				  &olen), 0);
	free(out);
	check_object(&e, "data/x", len, 2);
	ck_assert_uint_eq(stats(&e).lifecycle_expired, 1);

	/* Rules are removed with n = 0. */
	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", NULL, 0), 0);
	ck_assert_int_eq(store_lifecycle_get(e.s, "bkt", &got, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(got);
	/* ... and go with their bucket: a new bucket of the same name starts
	 * without any. */
	ck_assert_int_eq(tenv_mb(&e, "lcb"), 0);
	ck_assert_int_eq(store_lifecycle_set(e.s, "lcb", rules, 2), 0);
	ck_assert_int_eq(tenv_rb(&e, "lcb"), 0);
	ck_assert_int_eq(store_lifecycle_get(e.s, "lcb", &got, &n),
			 STRATA_ENOBUCKET);
	ck_assert_int_eq(tenv_mb(&e, "lcb"), 0);
	ck_assert_int_eq(store_lifecycle_get(e.s, "lcb", &got, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(got);
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

/* Stored rules are read back exactly as written, or not at all: a prefix
 * with a NUL in it or an age past the limit is a damaged value. */
START_TEST(lifecycle_stored_rules_checked)
{
	/* version 1, 1 rule: delete, 5000 ms, prefix "ab" */
	uint8_t v[] = { 1, 1, 0, STORE_LC_DELETE, 0x88, 0x13, 0, 0, 0, 0, 0, 0,
			2, 0, 'a', 'b' };
	struct store_lc_rule *r = NULL;
	size_t n = 0;

	ck_assert_int_eq(store__lc_decode(v, sizeof(v), &r, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(r[0].prefix, "ab");
	ck_assert_uint_eq(r[0].age_ms, 5000);
	free(r);
	r = NULL;

	v[15] = 0;			/* "a\0": read as "a" before */
	ck_assert_int_eq(store__lc_decode(v, sizeof(v), &r, &n),
			 STRATA_ECORRUPT);
	ck_assert_ptr_null(r);
	v[15] = 'b';
	v[11] = 0x80;			/* an age of 2^63 ms and more */
	ck_assert_int_eq(store__lc_decode(v, sizeof(v), &r, &n),
			 STRATA_ECORRUPT);
	ck_assert_ptr_null(r);
}
END_TEST

static void count_commit(void *arg, int status,
			 const struct store_object_info *info)
{
	(void)info;
	ck_assert_int_eq(status, 0);
	(*(unsigned *)arg)++;
}

static int reached(struct tenv *e, void *arg)
{
	(void)e;
	return *(unsigned *)arg >= 200;
}

static int never(struct tenv *e, void *arg)
{
	(void)e;
	(void)arg;
	return 0;
}

/* An expiry decided on one version never deletes a newer one written
 * meanwhile: here new versions are on their way to the index while the
 * pass reads the old ones. */
START_TEST(lifecycle_expiry_spares_newer_version)
{
	struct store_lc_rule rule = { .prefix = "d/", .age_ms = DAY,
				      .action = STORE_LC_DELETE };
	const unsigned n = 200;
	uint8_t buf[100], *out;
	unsigned committed = 0;
	struct tenv e;
	char key[32];
	size_t olen;

	fake_now = 1700000000000ull;
	setup_env(&e, 0);
	e.o.clock_ms = fake_clock;
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (unsigned i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "d/%03u", i);
		fill(buf, sizeof(buf), i);
		ck_assert_int_eq(tenv_put(&e, "bkt", key, buf, sizeof(buf),
					  NULL), 0);
	}
	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", &rule, 1), 0);
	fake_now += 2 * DAY;
	for (unsigned i = 0; i < n; i++) {
		struct store_put *p;

		snprintf(key, sizeof(key), "d/%03u", i);
		fill(buf, sizeof(buf), 1000 + i);
		ck_assert_int_eq(store_put_begin(e.s, "bkt", key, strlen(key),
						 NULL, &p), 0);
		ck_assert_int_eq(store_put_write(p, buf, sizeof(buf)), 0);
		store_put_commit(p, count_commit, &committed);
	}
	/* The puts are queued (not yet committed) when the pass looks. */
	uv_run(&e.loop, UV_RUN_NOWAIT);
	store_lifecycle_run(e.s);
	ck_assert(run_until(&e, reached, &committed, 10000));
	run_until(&e, never, NULL, 300);	/* the deletes settle */
	for (unsigned i = 0; i < n; i++) {
		uint8_t want[100];

		snprintf(key, sizeof(key), "d/%03u", i);
		fill(want, sizeof(want), 1000 + i);
		ck_assert_msg(tenv_get(&e, "bkt", key, 0, UINT64_MAX, &out,
				       &olen) == 0, "%s: the new version was deleted",
			      key);
		ck_assert(olen == sizeof(want) && !memcmp(out, want, olen));
		free(out);
	}
	tenv_release(&e, 1);
}
END_TEST

/* More due objects than the mover's queue (1024 chunks) and the deletes
 * in flight (1000) hold: the pass goes on in steps until all are done. */
START_TEST(lifecycle_pass_larger_than_its_queues)
{
	struct store_lc_rule rules[2] = {
		{ .prefix = "c/", .age_ms = 0, .action = STORE_LC_COLD },
		{ .prefix = "d/", .age_ms = 0, .action = STORE_LC_DELETE },
	};
	const size_t len = 20 << 10;	/* one chunk, not inline */
	uint64_t ncold = 1500, ndel = 1200;
	uint8_t *buf = malloc(len), *out;
	struct tenv e;
	char key[32];
	size_t olen;

	setup_env(&e, 0);
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (unsigned i = 0; i < ncold + ndel; i++) {
		snprintf(key, sizeof(key), i < ncold ? "c/%05u" : "d/%05u", i);
		fill(buf, len, 7000 + i);
		ck_assert_int_eq(tenv_put(&e, "bkt", key, buf, len, NULL), 0);
	}
	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", rules, 2), 0);
	store_lifecycle_run(e.s);
	ck_assert(run_until(&e, lc_cold_done, &ncold, 60000));
	ck_assert(run_until(&e, expired, &ndel, 60000));
	ck_assert(chunks_tier(&e, "bkt", "c/00000", STORE_TIER_COLD));
	ck_assert(chunks_tier(&e, "bkt", "c/01499", STORE_TIER_COLD));
	check_object(&e, "c/01499", len, 7000 + 1499);
	ck_assert_int_eq(tenv_get(&e, "bkt", "d/02699", 0, UINT64_MAX, &out,
				  &olen), STRATA_ENOOBJECT);
	ck_assert_uint_eq(stats(&e).lifecycle_expired, ndel);
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

/* Rules to go cold that cold has no room for do not stall the pass:
 * the rules after them (here expiry, which frees space) still run. */
START_TEST(lifecycle_cold_full_does_not_stall)
{
	struct store_lc_rule rules[2] = {
		{ .prefix = "c/", .age_ms = 0, .action = STORE_LC_COLD },
		{ .prefix = "d/", .age_ms = 0, .action = STORE_LC_DELETE },
	};
	const size_t len = 20 << 10;	/* one chunk, not inline */
	uint64_t ncold = 1100, ndel = 50;
	uint8_t *buf = malloc(len), *out;
	struct store_stats st;
	struct tenv e;
	char key[32];
	size_t olen;

	setup_env(&e, 0);
	e.o.tier[STORE_TIER_COLD].capacity = 4ull * MiB;
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (unsigned i = 0; i < ncold + ndel; i++) {
		snprintf(key, sizeof(key), i < ncold ? "c/%05u" : "d/%05u", i);
		fill(buf, len, 9000 + i);
		ck_assert_int_eq(tenv_put(&e, "bkt", key, buf, len, NULL), 0);
	}
	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", rules, 2), 0);
	store_lifecycle_run(e.s);
	ck_assert(run_until(&e, expired, &ndel, 20000));
	st = stats(&e);
	ck_assert_uint_gt(st.lifecycle_cold, 0);
	ck_assert_uint_le(st.tier_used[STORE_TIER_COLD], 4ull * MiB);
	ck_assert_int_eq(tenv_get(&e, "bkt", "d/01149", 0, UINT64_MAX, &out,
				  &olen), STRATA_ENOOBJECT);
	check_object(&e, "c/00000", len, 9000);
	check_object(&e, "c/01099", len, 9000 + 1099);
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

static int demoted_some(struct tenv *e, void *arg)
{
	(void)arg;
	return stats(e).demoted_bytes > 0;
}

/* Moves whose writes fail (a failing or full cold disk) are tried again
 * at the mover's next tick, not at once in a loop that spins a core and
 * floods the log; and a job gives up at its first failed write rather
 * than read every record of its segment to fail them all. */
static void mover_write_failures(int err)
{
	/* A job (one segment of 64 KiB records here) per tick at most, and
	 * a job stops at its first failed write (MOVE_WINDOW copies were
	 * on their way): 10 ticks in 1 s. */
	unsigned long max = 30, hits;
	uint8_t *buf = malloc(MiB);
	struct tenv e;
	char key[32];

	setup_env(&e, 64ull * MiB);
	e.o.chunk_size = 64 << 10;
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (unsigned i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "w/%u", i);
		fill(buf, MiB, 800 + i);
		ck_assert_int_eq(tenv_put(&e, "bkt", key, buf, MiB, NULL), 0);
	}
	tenv_close(&e);
	/* Reopened over a hot tier too small for what it holds, with every
	 * segment write failing. */
	e.o.tier[STORE_TIER_HOT].capacity = 8ull * MiB;
	e.o.tier[STORE_TIER_HOT].high_pct = 50;
	e.o.tier[STORE_TIER_HOT].low_pct = 25;
	e.o.mover_interval_ms = 100;
	fault_arm(&e.fault, FAULT_SEG_WRITE, 0, 1000000, err);
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert(!run_until(&e, demoted_some, NULL, 1000));
	hits = fault_hits(&e.fault, FAULT_SEG_WRITE);
	ck_assert_uint_gt(hits, 0);
	ck_assert_uint_le(hits, max);
	/* The disk works again (or has room again): demotion goes on. */
	fault_arm(&e.fault, FAULT_SEG_WRITE, 0, 0, 0);
	ck_assert(run_until(&e, demoted_some, NULL, 10000));
	for (unsigned i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "w/%u", i);
		check_object(&e, key, MiB, 800 + i);
	}
	tenv_release(&e, 1);
	free(buf);
}

START_TEST(mover_write_eio_backs_off)
{
	mover_write_failures(-EIO);
}
END_TEST

START_TEST(mover_write_enospc_backs_off)
{
	mover_write_failures(-ENOSPC);
}
END_TEST

START_TEST(spill_then_enospc)
{
	uint8_t *buf = malloc(MiB);
	struct store_stats st;
	unsigned ok = 0;
	struct tenv e;
	char key[32];
	int rc = 0;

	setup_env(&e, 8ull * MiB);
	e.o.tier[STORE_TIER_COLD].capacity = 16ull * MiB;
	/* No demotion: hot can only fill up. */
	e.o.tier[STORE_TIER_HOT].high_pct = 100;
	e.o.tier[STORE_TIER_HOT].low_pct = 100;
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (unsigned i = 0; i < 64; i++) {
		snprintf(key, sizeof(key), "s/%u", i);
		fill(buf, MiB, 500 + i);
		rc = tenv_put(&e, "bkt", key, buf, MiB, NULL);
		if (rc)
			break;
		ok++;
	}
	ck_assert_int_eq(rc, -ENOSPC);
	st = stats(&e);
	ck_assert_uint_gt(st.spilled_bytes, 0);
	ck_assert_uint_gt(st.enospc, 0);
	ck_assert_uint_le(st.tier_used[STORE_TIER_HOT], 8ull * MiB);
	ck_assert_uint_le(st.tier_used[STORE_TIER_COLD], 16ull * MiB);
	ck_assert_uint_ge(ok, 16);
	for (unsigned i = 0; i < ok; i++) {
		snprintf(key, sizeof(key), "s/%u", i);
		check_object(&e, key, MiB, 500 + i);
	}
	/* Space comes back: delete and compact, then writes go in again. */
	for (unsigned i = 0; i < ok; i++) {
		snprintf(key, sizeof(key), "s/%u", i);
		ck_assert_int_eq(tenv_rm(&e, "bkt", key), 0);
	}
	ck_assert_int_eq(tenv_compact(&e, 0), 0);
	fill(buf, MiB, 7);
	ck_assert_int_eq(tenv_put(&e, "bkt", "again", buf, MiB, NULL), 0);
	check_object(&e, "again", MiB, 7);
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

/*
 * An emulated file system of `size` bytes under the hot tier (which has no
 * configured capacity): what it has free is size less the files in the
 * tier directory.  peak is the most the directory held when asked.
 */
struct small_fs {
	uint64_t size, peak;
};

static uint64_t dir_bytes(int dirfd)
{
	DIR *d = fdopendir(openat(dirfd, ".", O_RDONLY | O_DIRECTORY));
	struct dirent *de;
	uint64_t sum = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		struct stat st;

		if (fstatat(dirfd, de->d_name, &st, 0) == 0 &&
		    S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
	}
	closedir(d);
	return sum;
}

static int small_statvfs(void *arg, int dirfd, struct statvfs *sv)
{
	struct small_fs *fs = arg;
	uint64_t used = dir_bytes(dirfd);

	if (used > fs->peak)
		fs->peak = used;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = 4096;
	sv->f_blocks = fs->size / 4096;
	sv->f_bfree = sv->f_bavail = used < fs->size ?
				     (fs->size - used) / 4096 : 0;
	sv->f_fsid = 42;
	return 0;
}

START_TEST(full_disk_compacts_back)
{
	const size_t len = 256 << 10;
	uint8_t *buf = malloc(len);
	struct small_fs fs = { .size = 48ull * MiB };
	struct store_stats st;
	unsigned ok = 0, more = 0;
	struct tenv e;
	char key[32];
	int hotfd, rc = 0;

	setup_env(&e, 0);		/* the file system's capacity */
	e.o.ntier_dirs[STORE_TIER_COLD] = 0;
	e.o.statvfs = small_statvfs;
	e.o.statvfs_arg = &fs;
	e.o.segment_size = 4ull * MiB;	/* the reserve: one segment */
	ck_assert_int_eq(tenv_open(&e), 0);
	hotfd = open(e.hot, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(hotfd, 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	/* Fill it: puts stop with a segment's worth still free. */
	for (unsigned i = 0; i < 400; i++) {
		snprintf(key, sizeof(key), "f/%u", i);
		fill(buf, len, 900 + i);
		rc = tenv_put(&e, "bkt", key, buf, len, NULL);
		if (rc)
			break;
		ok++;
	}
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_uint_ge(ok, 150);
	ck_assert_uint_le(dir_bytes(hotfd) + 3 * MiB, fs.size);
	/* Delete three objects of four: every segment is sparse, none
	 * empty, so space comes back only by copying. */
	for (unsigned i = 0; i < ok; i++) {
		if (i % 4 == 0)
			continue;
		snprintf(key, sizeof(key), "f/%u", i);
		ck_assert_int_eq(tenv_rm(&e, "bkt", key), 0);
	}
	/* With the file system shrunk to what is used, no copy can finish:
	 * compaction starts none (it would only add garbage). */
	fs.size = dir_bytes(hotfd) + 256 * 1024;
	ck_assert_int_eq(tenv_compact(&e, 50), 0);
	st = stats(&e);
	ck_assert_uint_eq(st.compacted_segments, 0);
	ck_assert_uint_le(dir_bytes(hotfd), fs.size);
	/* With the reserve back, it compacts every sparse segment within
	 * the file system, and the space is there for puts again. */
	fs.size = 48ull * MiB;
	fs.peak = 0;
	ck_assert_int_eq(tenv_compact(&e, 50), 0);
	st = stats(&e);
	ck_assert_uint_ge(st.compacted_segments, 8);
	ck_assert_uint_le(fs.peak, fs.size);
	ck_assert_uint_le(dir_bytes(hotfd), fs.size * 2 / 5);
	for (unsigned i = 0; i < ok; i += 4) {
		snprintf(key, sizeof(key), "f/%u", i);
		check_object(&e, key, len, 900 + i);
	}
	for (unsigned i = 0; i < 400; i++) {
		snprintf(key, sizeof(key), "g/%u", i);
		fill(buf, len, 5000 + i);
		if (tenv_put(&e, "bkt", key, buf, len, NULL))
			break;
		more++;
	}
	ck_assert_uint_ge(more, ok / 2);
	ck_assert_uint_le(dir_bytes(hotfd) + 3 * MiB, fs.size);
	close(hotfd);
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

static int prestaged(struct tenv *e, void *arg)
{
	return stats(e).prestaged_objects >= *(uint64_t *)arg;
}

static int no_plans(struct tenv *e, void *arg)
{
	(void)arg;
	return stats(e).prestage_plans == 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

START_TEST(prestage_warms_cache_and_promotes)
{
	struct store_lc_rule rule = { .prefix = "", .age_ms = 0,
				      .action = STORE_LC_COLD };
	const size_t len = 256 << 10;
	uint8_t *buf = malloc(len);
	const char *keys[16];
	size_t lens[16];
	uint64_t n16 = 16, one = 1;
	struct store_stats st0, st1;
	struct tenv e;
	char names[16][16];
	double t0;

	setup_env(&e, 256ull * MiB);
	e.o.cache_bytes = 64ll * MiB;
	e.o.tier[STORE_TIER_COLD].read_delay_us = 40000;
	e.o.promote_reads = 1000;	/* only prestaging promotes here */
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (unsigned i = 0; i < 16; i++) {
		snprintf(names[i], sizeof(names[i]), "d/%02u", i);
		keys[i] = names[i];
		lens[i] = strlen(names[i]);
		fill(buf, len, 900 + i);
		ck_assert_int_eq(tenv_put(&e, "bkt", names[i], buf, len, NULL), 0);
	}
	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", &rule, 1), 0);
	store_lifecycle_run(e.s);
	ck_assert(run_until(&e, lc_cold_done, &n16, 10000));
	ck_assert_int_eq(store_lifecycle_set(e.s, "bkt", NULL, 0), 0);
	ck_assert(chunks_tier(&e, "bkt", "d/00", STORE_TIER_COLD));

	/* The emulated device: a cold read takes at least its latency. */
	t0 = now_s();
	check_object(&e, "d/15", len, 915);
	ck_assert(now_s() - t0 >= 0.040);

	ck_assert_int_eq(store_hint(e.s, "nope", keys, lens, 16),
			 STRATA_ENOBUCKET);
	ck_assert_int_eq(store_hint(e.s, "bkt", keys, lens, 16), 0);
	ck_assert(run_until(&e, prestaged, &n16, 10000));
	st0 = stats(&e);
	for (unsigned i = 0; i < 16; i++)
		check_object(&e, names[i], len, 900 + i);
	st1 = stats(&e);
	/* Every chunk the reader asked for was already in the cache. */
	ck_assert_uint_ge(st1.cache_hits - st0.cache_hits, 16);
	/* The reader passed the end of the plan: it is forgotten. */
	ck_assert(run_until(&e, no_plans, NULL, 1000));
	/* And the cold chunks it read were promoted. */
	ck_assert(run_until(&e, promoted, &one, 10000));
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

/* Through the store: a working set read again and again stays cached
 * while one sequential pass over 4x the cache goes by. */
START_TEST(scan_leaves_working_set_cached)
{
	const size_t len = MiB;
	uint8_t *buf = malloc(len);
	struct store_stats st0, st1;
	struct tenv e;
	char key[32];

	setup_env(&e, 0);
	e.o.cache_bytes = 16ll * MiB;
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (unsigned i = 0; i < 4 + 64; i++) {
		snprintf(key, sizeof(key), i < 4 ? "ws/%u" : "scan/%u", i);
		fill(buf, len, 2000 + i);
		ck_assert_int_eq(tenv_put(&e, "bkt", key, buf, len, NULL), 0);
	}
	/* The working set, read a few times. */
	for (unsigned r = 0; r < 3; r++)
		for (unsigned i = 0; i < 4; i++) {
			snprintf(key, sizeof(key), "ws/%u", i);
			check_object(&e, key, len, 2000 + i);
		}
	/* One pass over 64 MiB: four times the cache. */
	for (unsigned i = 4; i < 4 + 64; i++) {
		snprintf(key, sizeof(key), "scan/%u", i);
		check_object(&e, key, len, 2000 + i);
	}
	st0 = stats(&e);
	ck_assert_uint_gt(st0.cache_evictions, 0);
	for (unsigned i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "ws/%u", i);
		check_object(&e, key, len, 2000 + i);
	}
	st1 = stats(&e);
	ck_assert_uint_eq(st1.cache_hits - st0.cache_hits, 4);
	ck_assert_uint_eq(st1.cache_misses, st0.cache_misses);
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

static int demoting(struct tenv *e, void *arg)
{
	(void)arg;
	return stats(e).demoted_chunks > 0;
}

/* A slow (paced) mover in the middle of a segment does not hold up a
 * close, and what it left half done is neither lost nor doubled. */
START_TEST(close_during_paced_moves)
{
	uint8_t *buf = malloc(MiB);
	struct store_stats st;
	struct tenv e;
	char key[32];
	double t0;

	setup_env(&e, 16ull * MiB);
	e.o.mover_rate = 2 * MiB;	/* a 2 MiB segment takes a second */
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (unsigned i = 0; i < 24; i++) {
		snprintf(key, sizeof(key), "c/%u", i);
		fill(buf, MiB, 3000 + i);
		ck_assert_int_eq(tenv_put(&e, "bkt", key, buf, MiB, NULL), 0);
	}
	ck_assert(run_until(&e, demoting, NULL, 20000));
	t0 = now_s();
	tenv_close(&e);
	ck_assert(now_s() - t0 < 5.0);
	/* Reopen without the pressure, so that no move is running while
	 * the space is counted below. */
	e.o.tier[STORE_TIER_HOT].capacity = 0;
	ck_assert_int_eq(tenv_open(&e), 0);
	for (unsigned i = 0; i < 24; i++) {
		snprintf(key, sizeof(key), "c/%u", i);
		check_object(&e, key, MiB, 3000 + i);
	}
	/* Orphan copies are garbage that compaction takes back: then the
	 * files hold exactly the live records. */
	ck_assert_int_eq(tenv_compact(&e, 0), 0);
	st = stats(&e);
	ck_assert_uint_eq(tenv_disk_bytes(&e),
			  st.live_bytes[0] + st.live_bytes[1] +
			  64 * st.segments);
	/* One copy of each chunk is live: not two. */
	ck_assert_uint_ge(st.live_bytes[0] + st.live_bytes[1], 24ull * MiB);
	ck_assert_uint_lt(st.live_bytes[0] + st.live_bytes[1],
			  24ull * (MiB + 4096));
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

static int demoted_8m(struct tenv *e, void *arg)
{
	(void)arg;
	return stats(e).demoted_bytes >= 8ull * MiB;
}

/* The mover keeps to its rate: 8 MiB demoted at 8 MiB/s take about a
 * second (a lower bound only: the machine may be slower, never faster). */
START_TEST(mover_keeps_its_rate)
{
	uint8_t *buf = malloc(MiB);
	struct tenv e;
	char key[32];
	double t0, dt;

	setup_env(&e, 16ull * MiB);
	e.o.mover_rate = 8 * MiB;
	e.o.tier[STORE_TIER_HOT].low_pct = 10;	/* plenty to demote */
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	t0 = now_s();
	for (unsigned i = 0; i < 15; i++) {
		snprintf(key, sizeof(key), "r/%u", i);
		fill(buf, MiB, 4000 + i);
		ck_assert_int_eq(tenv_put(&e, "bkt", key, buf, MiB, NULL), 0);
	}
	ck_assert(run_until(&e, demoted_8m, NULL, 30000));
	dt = now_s() - t0;
	/* One record may go at once (the pace starts full); the other
	 * 7 MiB wait for it. */
	ck_assert_msg(dt >= 0.8, "8 MiB demoted in %.2f s at 8 MiB/s", dt);
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

/* Demotion fills cold up to its capacity, not past it: then writes fail
 * with ENOSPC once hot is full too, and every acknowledged object reads
 * back. */
START_TEST(demotion_respects_cold_capacity)
{
	uint8_t *buf = malloc(MiB);
	struct store_stats st;
	unsigned ok = 0, refused = 0;
	struct tenv e;
	char key[32];

	setup_env(&e, 16ull * MiB);
	e.o.tier[STORE_TIER_COLD].capacity = 8ull * MiB;
	e.o.tier[STORE_TIER_HOT].high_pct = 50;
	e.o.tier[STORE_TIER_HOT].low_pct = 25;
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (unsigned i = 0; i < 40; i++) {
		int rc;

		snprintf(key, sizeof(key), "s/%u", i);
		fill(buf, MiB, 500 + i);
		rc = tenv_put(&e, "bkt", key, buf, MiB, NULL);
		if (rc) {
			ck_assert_int_eq(rc, -ENOSPC);
			refused++;
			continue;
		}
		ok++;
		/* Let the mover work between writes. */
		run_until(&e, hot_settled, NULL, 100);
	}
	st = stats(&e);
	ck_assert_uint_le(st.tier_used[STORE_TIER_COLD], 8ull * MiB);
	ck_assert_uint_le(st.tier_used[STORE_TIER_HOT], 16ull * MiB);
	ck_assert_uint_gt(st.demoted_bytes, 0);
	ck_assert_uint_gt(refused, 0);
	for (unsigned i = 0; i < 40; i++) {
		uint8_t *got;
		size_t glen;

		snprintf(key, sizeof(key), "s/%u", i);
		if (tenv_get(&e, "bkt", key, 0, UINT64_MAX, &got, &glen) == 0) {
			free(got);
			check_object(&e, key, MiB, 500 + i);
		}
	}
	tenv_release(&e, 1);
	free(buf);
}
END_TEST
static int demoted_2m(struct tenv *e, void *arg)
{
	(void)arg;
	return stats(e).demoted_bytes >= 2 * MiB;
}

/* A new rate (SIGHUP) applies at once, also to a move waiting out the
 * pace of the old one: at 64 KiB/s the second 1 MiB record would wait
 * 16 s; raised to no cap, it goes now. */
START_TEST(mover_rate_change_applies_at_once)
{
	uint8_t *buf = malloc(MiB);
	struct tenv e;
	char key[32];

	setup_env(&e, 16ull * MiB);
	e.o.mover_rate = 64 << 10;
	e.o.tier[STORE_TIER_HOT].low_pct = 10;
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (unsigned i = 0; i < 15; i++) {
		snprintf(key, sizeof(key), "r/%u", i);
		fill(buf, MiB, 4100 + i);
		ck_assert_int_eq(tenv_put(&e, "bkt", key, buf, MiB, NULL), 0);
	}
	ck_assert(run_until(&e, demoted_some, NULL, 5000));
	ck_assert(!run_until(&e, demoted_2m, NULL, 300));
	store_set_mover_rate(e.s, 0);
	ck_assert(run_until(&e, demoted_2m, NULL, 3000));
	for (unsigned i = 0; i < 15; i++) {
		snprintf(key, sizeof(key), "r/%u", i);
		check_object(&e, key, MiB, 4100 + i);
	}
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

START_TEST(bad_options_refused)
{
	struct tenv e;

	tenv_init(&e, NULL);
	e.o.tier[STORE_TIER_HOT].high_pct = 50;
	e.o.tier[STORE_TIER_HOT].low_pct = 60;
	ck_assert_int_eq(tenv_open(&e), STRATA_ECONFIG);
	e.o.tier[STORE_TIER_HOT].low_pct = 10;
	e.o.tier[STORE_TIER_HOT].high_pct = 101;
	ck_assert_int_eq(tenv_open(&e), STRATA_ECONFIG);
	tenv_release(&e, 1);
}
END_TEST

/* Overwrites, deletes and reads of objects that share chunks (five
 * streams), while the mover demotes and promotes and compaction runs all
 * the time: every read returns the current version, and once everything
 * is deleted no byte of segment space is left, without a restart. */
START_TEST(churn_with_moves_and_dedup)
{
	const size_t ch = 64 << 10;
	uint8_t *buf = malloc(6 * ch);
	uint64_t rng = 12345;
	struct store_stats st;
	size_t curlen[16];
	int cur[16];
	struct tenv e;
	char key[32];

	setup_env(&e, 4ull * MiB);
	e.o.chunk_size = ch;
	e.o.tier[STORE_TIER_HOT].high_pct = 50;
	e.o.tier[STORE_TIER_HOT].low_pct = 25;
	e.o.mover_interval_ms = 2;
	e.o.promote_reads = 1;
	e.o.gc_interval_ms = 7;
	e.o.gc_dead_pct = 10;
	ck_assert_int_eq(tenv_open(&e), 0);
	ck_assert_int_eq(tenv_mb(&e, "bkt"), 0);
	for (int i = 0; i < 16; i++)
		cur[i] = -1;
	for (unsigned op = 0; op < 2000; op++) {
		unsigned k, r;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		k = (unsigned)(rng % 16);
		r = (unsigned)((rng >> 8) % 10);
		snprintf(key, sizeof(key), "k/%u", k);
		if (r < 4) {
			int seed = (int)((rng >> 16) % 5);
			size_t len = ch * (1 + (rng >> 24) % 5) +
				     (rng >> 32) % 1000;

			fill(buf, len, (uint64_t)seed);
			ck_assert_int_eq(tenv_put(&e, "bkt", key, buf, len,
						  NULL), 0);
			cur[k] = seed;
			curlen[k] = len;
		} else if (r < 5) {
			ck_assert_int_eq(tenv_rm(&e, "bkt", key),
					 cur[k] < 0 ? STRATA_ENOOBJECT : 0);
			cur[k] = -1;
		} else if (r < 6) {
			int rc = tenv_compact(&e, (unsigned)(rng >> 40) % 60);

			ck_assert(rc == 0 || rc == -EBUSY);
		} else if (cur[k] < 0) {
			uint8_t *got;
			size_t glen;

			ck_assert_int_eq(tenv_get(&e, "bkt", key, 0, UINT64_MAX,
						  &got, &glen), STRATA_ENOOBJECT);
		} else {
			check_object(&e, key, curlen[k], (uint64_t)cur[k]);
		}
	}
	st = stats(&e);
	ck_assert_uint_gt(st.demoted_chunks, 0);
	ck_assert_uint_gt(st.promoted_chunks, 0);
	ck_assert_uint_gt(st.dedup_hits, 0);
	for (int k = 0; k < 16; k++) {
		snprintf(key, sizeof(key), "k/%u", k);
		if (cur[k] >= 0)
			ck_assert_int_eq(tenv_rm(&e, "bkt", key), 0);
	}
	while (tenv_compact(&e, 0) == -EBUSY)
		uv_run(&e.loop, UV_RUN_ONCE);
	st = stats(&e);
	ck_assert_uint_eq(st.live_bytes[0] + st.live_bytes[1], 0);
	ck_assert_uint_eq(tenv_disk_bytes(&e), 64 * st.segments);
	tenv_release(&e, 1);
	free(buf);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("tier");
	TCase *tc = tcase_create("tier");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, demotion_keeps_hot_under_watermark);
	tcase_add_test(tc, repeated_cold_reads_promote);
	tcase_add_test(tc, lifecycle_rules_on_injected_clock);
	tcase_add_test(tc, lifecycle_stored_rules_checked);
	tcase_add_test(tc, lifecycle_pass_larger_than_its_queues);
	tcase_add_test(tc, lifecycle_expiry_spares_newer_version);
	tcase_add_test(tc, lifecycle_cold_full_does_not_stall);
	tcase_add_test(tc, mover_write_eio_backs_off);
	tcase_add_test(tc, mover_write_enospc_backs_off);
	tcase_add_test(tc, spill_then_enospc);
	tcase_add_test(tc, full_disk_compacts_back);
	tcase_add_test(tc, prestage_warms_cache_and_promotes);
	tcase_add_test(tc, scan_leaves_working_set_cached);
	tcase_add_test(tc, close_during_paced_moves);
	tcase_add_test(tc, mover_keeps_its_rate);
	tcase_add_test(tc, mover_rate_change_applies_at_once);
	tcase_add_test(tc, bad_options_refused);
	tcase_add_test(tc, churn_with_moves_and_dedup);
	tcase_add_test(tc, demotion_respects_cold_capacity);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
