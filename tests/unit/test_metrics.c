// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for metrics.c: request accounting lands in the right bucket,
 * the exposition text is well formed (every sample under a # TYPE, one
 * family declared once, histogram buckets cumulative and +Inf equal to
 * _count), and store_stats fields show up with their tier labels.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "proto.h"
#include "banned.h"

static char *render(const struct metrics *m, const struct metrics_view *v)
{
	char *text;
	size_t len;

	ck_assert_int_eq(metrics_render(m, v, &text, &len), 0);
	ck_assert_uint_eq(strlen(text), len);	/* no NUL inside */
	ck_assert(len > 0 && text[len - 1] == '\n');
	return text;
}

/* The value of the sample whose line starts with `series ` (exact). */
static int sample(const char *text, const char *series, double *out)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ') {
			*out = strtod(p + n + 1, NULL);
			return 0;
		}
	}
	return -ENOENT;
}

static double must(const char *text, const char *series)
{
	double v = -1;

	ck_assert_msg(sample(text, series, &v) == 0, "no sample %s", series);
	return v;
}

START_TEST(t_request_buckets)
{
	struct metrics m;
	struct metrics_view v = { .version = "9.9.9" };
	char *t;

	metrics_init(&m);
	metrics_request(&m, PROTO_OP_PUT, true, 40000, 100, 0);	/* 40 us */
	metrics_request(&m, PROTO_OP_PUT, true, 3000000, 200, 0);	/* 3 ms */
	metrics_request(&m, PROTO_OP_PUT, false, 20000000000ull, 0, 0); /* 20 s */
	metrics_request(&m, PROTO_OP_GET, true, 1000000, 0, 4096);	/* 1 ms: le */
	metrics_request(&m, 0x7e, false, 1, 0, 0);			/* unknown op */
	t = render(&m, &v);
	ck_assert_double_eq(must(t, "strata_requests_total{op=\"put\",result=\"ok\"}"), 2);
	ck_assert_double_eq(must(t, "strata_requests_total{op=\"put\",result=\"error\"}"), 1);
	ck_assert_double_eq(must(t, "strata_requests_total{op=\"unknown\",result=\"error\"}"), 1);
	ck_assert_double_eq(must(t, "strata_request_body_bytes_total{op=\"put\",direction=\"in\"}"), 300);
	ck_assert_double_eq(must(t, "strata_request_body_bytes_total{op=\"get\",direction=\"out\"}"), 4096);
	ck_assert_double_eq(must(t, "strata_request_duration_seconds_bucket{op=\"put\",le=\"5e-05\"}"), 1);
	ck_assert_double_eq(must(t, "strata_request_duration_seconds_bucket{op=\"put\",le=\"0.0025\"}"), 1);
	ck_assert_double_eq(must(t, "strata_request_duration_seconds_bucket{op=\"put\",le=\"0.005\"}"), 2);
	ck_assert_double_eq(must(t, "strata_request_duration_seconds_bucket{op=\"put\",le=\"10\"}"), 2);
	ck_assert_double_eq(must(t, "strata_request_duration_seconds_bucket{op=\"put\",le=\"+Inf\"}"), 3);
	ck_assert_double_eq(must(t, "strata_request_duration_seconds_count{op=\"put\"}"), 3);
	ck_assert_double_eq_tol(must(t, "strata_request_duration_seconds_sum{op=\"put\"}"),
				20.00304, 1e-9);
	/* A bound is inclusive: 1 ms is in le="0.001". */
	ck_assert_double_eq(must(t, "strata_request_duration_seconds_bucket{op=\"get\",le=\"0.001\"}"), 1);
	ck_assert_double_eq(must(t, "strata_request_duration_seconds_bucket{op=\"get\",le=\"0.0005\"}"), 0);
	/* Operations never seen have counters but no histogram lines. */
	ck_assert_double_eq(must(t, "strata_requests_total{op=\"stat\",result=\"ok\"}"), 0);
	ck_assert(strstr(t, "strata_request_duration_seconds_count{op=\"stat\"}") == NULL);
	ck_assert_double_eq(must(t, "strata_build_info{version=\"9.9.9\"}"), 1);
	/* No store: no store lines. */
	ck_assert(strstr(t, "strata_store_puts_total") == NULL);
	free(t);
}
END_TEST

START_TEST(t_store_rows)
{
	struct metrics m;
	struct metrics_view v = { .version = "1", .ready = true, .have_store = true,
				  .conns = 7, .conns_refused = 9, .out_pending = 5, .out_cap = 1024 };
	char *t;

	metrics_init(&m);
	v.st.puts = 11;
	v.st.corrupt = 2;
	v.st.commit_rounds = 3;
	v.st.cache_hits = 5;
	v.st.objmeta_hits = 7;
	v.st.seg_bytes[STORE_TIER_HOT] = 1000;
	v.st.seg_bytes[STORE_TIER_COLD] = 2000;
	v.st.live_bytes[STORE_TIER_COLD] = 1500;
	v.st.tier_high_pct[STORE_TIER_HOT] = 90;
	v.st.tier_low_pct[STORE_TIER_COLD] = 33;
	v.st.tier_dirs[STORE_TIER_COLD] = 4;
	t = render(&m, &v);
	ck_assert_double_eq(must(t, "strata_store_puts_total"), 11);
	ck_assert_double_eq(must(t, "strata_store_corrupt_total"), 2);
	ck_assert_double_eq(must(t, "strata_store_commit_rounds_total"), 3);
	ck_assert_double_eq(must(t, "strata_cache_hits_total"), 5);
	ck_assert_double_eq(must(t, "strata_lookup_hits_total"), 7);
	ck_assert_double_eq(must(t, "strata_tier_segment_bytes{tier=\"hot\"}"), 1000);
	ck_assert_double_eq(must(t, "strata_tier_segment_bytes{tier=\"cold\"}"), 2000);
	ck_assert_double_eq(must(t, "strata_tier_live_bytes{tier=\"cold\"}"), 1500);
	ck_assert_double_eq(must(t, "strata_tier_high_watermark_percent{tier=\"hot\"}"), 90);
	ck_assert_double_eq(must(t, "strata_tier_high_watermark_percent{tier=\"cold\"}"), 0);
	ck_assert_double_eq(must(t, "strata_tier_low_watermark_percent{tier=\"cold\"}"), 33);
	ck_assert_double_eq(must(t, "strata_tier_directories{tier=\"cold\"}"), 4);
	ck_assert_double_eq(must(t, "strata_ready"), 1);
	ck_assert_double_eq(must(t, "strata_connections"), 7);
	ck_assert_double_eq(must(t, "strata_connections_refused_total"), 9);
	ck_assert_double_eq(must(t, "strata_output_pending_bytes"), 5);
	ck_assert_double_eq(must(t, "strata_output_cap_bytes"), 1024);
	free(t);
}
END_TEST

/* Every sample line belongs to a family declared once with # TYPE. */
START_TEST(t_format)
{
	struct metrics m;
	struct metrics_view v = { .version = "1", .have_store = true };
	char *t, *save = NULL, *line;
	char types[256][96];
	int ntypes = 0, samples = 0;

	metrics_init(&m);
	for (unsigned op = 0; op < 256; op++)
		metrics_request(&m, (uint8_t)op, op & 1, op * 1000000ull, op, op);
	t = render(&m, &v);
	for (line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[96];
		size_t n;
		int found = 0;

		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (strncmp(line, "# TYPE ", 7) == 0) {
			ck_assert_int_eq(sscanf(line + 7, "%95s", name), 1);
			for (int i = 0; i < ntypes; i++)
				ck_assert_msg(strcmp(types[i], name) != 0,
					      "%s declared twice", name);
			ck_assert_int_lt(ntypes, 256);
			snprintf(types[ntypes++], sizeof(types[0]), "%s", name);
			continue;
		}
		ck_assert_msg(line[0] != '#', "stray comment: %s", line);
		n = strcspn(line, "{ ");
		ck_assert(n > 0 && n < sizeof(name));
		memcpy(name, line, n);
		name[n] = 0;
		for (int i = 0; i < ntypes && !found; i++) {
			size_t tl = strlen(types[i]);

			found = strcmp(types[i], name) == 0 ||
				(strncmp(types[i], name, tl) == 0 &&
				 (strcmp(name + tl, "_bucket") == 0 ||
				  strcmp(name + tl, "_sum") == 0 ||
				  strcmp(name + tl, "_count") == 0));
		}
		ck_assert_msg(found, "sample without # TYPE: %s", line);
		ck_assert_msg(strchr(line, ' ') && strchr(line, ' ')[1],
			      "no value: %s", line);
		samples++;
	}
	ck_assert_int_gt(samples, 100);
	free(t);
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, t_request_buckets);
	tcase_add_test(tc, t_store_rows);
	tcase_add_test(tc, t_format);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
