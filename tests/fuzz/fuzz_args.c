// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for client/args.c, the values of the strata and
 * strata-bench command lines.  The input, up to its first NUL (an argument
 * holds none), goes to every parser, and each answer is checked against a
 * reference written here the other way round (the grammar spelt out, the
 * number accumulated with an overflow check, instead of strtoull()):
 *
 *   URL      strata://BUCKET[/KEY], BUCKET not empty and without '/':
 *            the parts put back together give the input;
 *   age      DIGITS[s|m|h|d], at most ARGS_MAX_AGE_S seconds (-ERANGE);
 *   range    DIGITS-[DIGITS], START <= END, both under 2^64;
 *   count    DIGITS, in [min, max];
 *   size     DIGITS[K|M|G|T[i]][B] under 2^64 bytes, at most max (-ERANGE);
 *   seconds  over 0 and up to 1e6, a finite number.
 *
 * Anything else aborts, so libFuzzer keeps the input; ASan and UBSan
 * watch the reads (the string is a heap copy of exactly its size).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "strata/strata.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

/*
 * Decimal digits at *p, at least one: the value in *v and *p moved past
 * them.  Returns -1 (no digit), 0, or 1 (over 2^64 - 1: *v is then
 * UINT64_MAX).
 */
static int ref_digits(const char **p, uint64_t *v)
{
	const char *s = *p;
	int over = 0;

	*v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		uint64_t d = (uint64_t)(*s - '0');

		if (over || *v > (UINT64_MAX - d) / 10) {
			over = 1;
			*v = UINT64_MAX;
		} else {
			*v = *v * 10 + d;
		}
	}
	*p = s;
	return over;
}

static void fuzz_url(const char *s)
{
	char *bucket = (char *)1, *key = (char *)1, *again;
	int rc = args_url(s, &bucket, &key);
	bool slash;

	check(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc) {
		check(!bucket && !key);
		return;
	}
	check(*bucket && !strchr(bucket, '/'));
	slash = strchr(s + strlen("strata://"), '/') != NULL;
	check(slash || !*key);
	check(asprintf(&again, "strata://%s%s%s", bucket, slash ? "/" : "",
		       key) > 0);
	check(strcmp(again, s) == 0);
	free(again);
	free(bucket);
	free(key);
}

static void fuzz_age(const char *s)
{
	const char *p = s;
	uint64_t n, mul = 1, out = 0;
	int over = ref_digits(&p, &n), want, rc;

	switch (*p) {
	case 's': p++; break;
	case 'm': mul = 60; p++; break;
	case 'h': mul = 3600; p++; break;
	case 'd': mul = 86400; p++; break;
	default: break;
	}
	if (over < 0 || *p)
		want = -EINVAL;
	else if (over || n > ARGS_MAX_AGE_S / mul)
		want = -ERANGE;
	else
		want = 0;
	rc = args_age(s, &out);
	check(rc == want);
	if (rc == 0)
		check(out == n * mul && out <= ARGS_MAX_AGE_S);
}

static void fuzz_range(const char *s)
{
	const char *p = s;
	uint64_t a, b = 0, off = 1, len = 1;
	int oa = ref_digits(&p, &a), ob = 0, want = 0, rc;
	bool has_end = false;

	if (oa || *p != '-') {
		want = -EINVAL;
	} else {
		p++;
		has_end = *p != 0;
		if (has_end) {
			ob = ref_digits(&p, &b);
			if (ob || *p || b < a)
				want = -EINVAL;
		}
	}
	rc = args_range(s, &off, &len);
	check(rc == want);
	if (rc)
		return;
	check(off == a);
	if (!has_end || (a == 0 && b == UINT64_MAX))
		check(len == STRATA_TO_END);
	else
		check(len == b - a + 1);
}

static void fuzz_u64(const char *s, uint64_t min, uint64_t max)
{
	const char *p = s;
	uint64_t v, out = 0;
	int over = ref_digits(&p, &v);
	bool ok = !over && !*p && v >= min && v <= max;
	int rc = args_u64(s, min, max, &out);

	check(rc == 0 || rc == -EINVAL);
	check((rc == 0) == ok);
	if (ok)
		check(out == v);
}

static void fuzz_size(const char *s, uint64_t max)
{
	const char *p = s;
	uint64_t v, mul = 1, out = 0;
	int over = ref_digits(&p, &v), want, rc;

	switch (*p) {
	case 'k': case 'K': mul = 1ull << 10; p++; break;
	case 'm': case 'M': mul = 1ull << 20; p++; break;
	case 'g': case 'G': mul = 1ull << 30; p++; break;
	case 't': case 'T': mul = 1ull << 40; p++; break;
	default: break;
	}
	if (mul > 1 && *p == 'i')
		p++;
	if (*p == 'B' || *p == 'b')
		p++;
	if (over || *p || v > UINT64_MAX / mul)
		want = -EINVAL;
	else if (v * mul > max)
		want = -ERANGE;
	else
		want = 0;
	rc = args_size(s, max, &out);
	check(rc == want);
	if (rc == 0)
		check(out == v * mul && out <= max);
}

static void fuzz_seconds(const char *s)
{
	double d = -1;
	int rc = args_seconds(s, &d);

	check(rc == 0 || rc == -EINVAL);
	if (rc == 0)
		check(isfinite(d) && d > 0 && d <= 1e6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = strnlen((const char *)data, size);
	char *s = malloc(n + 1);
	uint64_t max;

	check(s != NULL);
	memcpy(s, data, n);
	s[n] = 0;
	/* A bound from the input's length: small ones are reachable. */
	max = n % 3 == 0 ? UINT64_MAX : n % 3 == 1 ? 256 : 1ull << 40;
	fuzz_url(s);
	fuzz_age(s);
	fuzz_range(s);
	fuzz_u64(s, 1, max);
	fuzz_u64(s, 0, UINT64_MAX);
	fuzz_size(s, max);
	fuzz_seconds(s);
	free(s);
	return 0;
}
