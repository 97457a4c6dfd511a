// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for client/tarcount.c, strata-bench's reader of tar
 * shards as they arrive from a node (--samples tar).  The input is a
 * shard, read twice: in one piece, then cut into pieces of input-chosen
 * sizes (as --piece-size cuts it anywhere, a header included).
 *
 * Properties checked (abort() on violation, so libFuzzer keeps the input):
 *   - no read or write outside a buffer (ASan; the shard is a heap copy
 *     of exactly its size, each piece read in place), no UB (UBSan);
 *   - the count does not depend on the cut: samples, the error, where
 *     reading stopped are the same both times;
 *   - there are at most as many samples as 512-byte headers in the shard;
 *   - the error text, which strata-bench prints, ends inside its buffer
 *     and holds no control byte (a member's name comes from the shard:
 *     its bytes must not reach the terminal as escape sequences).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tarcount.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_err(const struct tar_count *t)
{
	size_t n = strnlen(t->err, sizeof(t->err));

	check(n < sizeof(t->err));
	for (size_t i = 0; i < n; i++)
		check((unsigned char)t->err[i] >= 0x20 && t->err[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tar_count *whole = malloc(sizeof(*whole));
	struct tar_count *cut = malloc(sizeof(*cut));
	uint8_t *shard = malloc(size ? size : 1);
	uint64_t samples = 0;
	size_t at = 0, k = 0;

	check(whole && cut && shard);
	memcpy(shard, data, size);

	tar_start(whole, 0);
	tar_feed(whole, shard, size);
	tar_finish(whole);
	check_err(whole);
	check(whole->samples <= size / 512);

	/* Piece sizes from the shard's own bytes, 1 to 1024. */
	tar_start(cut, 0);
	while (at < size) {
		size_t n = 1 + ((size_t)shard[k % size] << 2 |
				shard[(k + 1) % size] >> 6);

		if (n > size - at)
			n = size - at;
		tar_feed(cut, shard + at, n);
		samples += cut->samples;
		cut->samples = 0;
		at += n;
		k += 2;
	}
	tar_finish(cut);
	samples += cut->samples;
	check_err(cut);
	check(samples == whole->samples);
	check(strcmp(cut->err, whole->err) == 0);
	check(cut->end == whole->end && cut->at == whole->at);

	free(shard);
	free(cut);
	free(whole);
	return 0;
}
