// SPDX-License-Identifier: Apache-2.0
/*
 * args: the values of the strata and strata-bench command lines (URLs,
 * ages, byte ranges, sizes, counts, seconds), parsed without exiting so
 * that tests and the fuzzer (tests/fuzz/fuzz_args.c) can call them; the
 * programs turn an error into their usage message.  Each takes a whole
 * argument: anything after what it reads is an error.
 */
#ifndef STRATA_ARGS_H
#define STRATA_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* The protocol's longest rule age (PROTO_MAX_RULE_AGE, proto/proto.h):
 * 100 years of 365 days.  A longer one is refused by the node. */
#define ARGS_MAX_AGE_S (36500ull * 86400)

/* "strata://BUCKET[/KEY]" -> two heap strings (key "" when there is
 * none).  Returns 0, -EINVAL (not such a URL) or -ENOMEM. */
int args_url(const char *s, char **bucket, char **key);

/* "90d", "12h", "30m", "45s" or "3600" -> seconds.  Returns 0, -EINVAL
 * (not such a number) or -ERANGE (over ARGS_MAX_AGE_S). */
int args_age(const char *s, uint64_t *out);

/* "START-[END]" (bytes, END included) -> the offset, and the length or
 * STRATA_TO_END.  Returns 0 or -EINVAL. */
int args_range(const char *s, uint64_t *off, uint64_t *len);

/* Decimal digits only, from min to max.  Returns 0, -EINVAL. */
int args_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* "N[K|M|G|T][i][B]" (powers of 1024) -> bytes.  Returns 0, -EINVAL (not
 * a size) or -ERANGE (over max). */
int args_size(const char *s, uint64_t max, uint64_t *out);

/* Seconds, a decimal number over 0 and up to 1e6.  Returns 0 or -EINVAL. */
int args_seconds(const char *s, double *out);

/* s escaped for a message line (control bytes as \n, \t, \xNN; '\\'
 * doubled) into out (cap > 0 bytes), cut where it is full; returns out. */
const char *args_escape(const char *s, char *out, size_t cap);

#endif
