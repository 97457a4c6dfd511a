// SPDX-License-Identifier: Apache-2.0
/* Small helpers shared by the test suites. */
#ifndef STRATA_TESTUTIL_H
#define STRATA_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* A fresh directory under $TMPDIR (or /tmp); caller frees the string and
 * removes the tree with tu_rmrf(). Aborts the test on failure. */
char *tu_tmpdir(const char *tag);
/* rm -rf; ignores errors. */
void tu_rmrf(const char *path);
/* Deterministic pseudo-random bytes from a seed (xorshift64*). */
void tu_fill(void *buf, size_t len, uint64_t seed);
/* Write a whole file with the given mode; returns 0 or -errno. */
int tu_write_file(const char *path, const void *data, size_t len, unsigned mode);
/* Run the loop until *flag becomes non-zero, failing the test after
 * timeout_ms. */
void tu_run_until(uv_loop_t *loop, const int *flag, unsigned timeout_ms);
/* Monotonic clock in nanoseconds. */
uint64_t tu_now_ns(void);
/* Allocate or die. */
void *tu_xmalloc(size_t n);

#endif
