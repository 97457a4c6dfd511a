// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for keys.c's readers of bytes from disk: the master key
 * file's contents (keys_parse_master(), what keys_load_master() read) and
 * wrapped keys as the index holds them (keys_unwrap()).  Each input is:
 *
 *  1. a key file: it parses exactly when it is 32 bytes (the key, as is)
 *     or 64 hex digits with an optional newline (the key those digits
 *     spell, checked against a decoder written here);
 *  2. a wrapped key under a fixed master key: a forged or damaged one
 *     must fail with STRATA_EMASTERKEY (or -EINVAL when shorter than the
 *     nonce and tag), and leave its output wiped;
 *  3. a plaintext: wrapped then unwrapped, it comes back whole, and with
 *     one input-chosen bit of the wrapped bytes flipped it does not.
 *
 * Output buffers are exactly their size, so ASan sees any overrun.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "strata/error.h"
#include "banned.h"

#define PLAIN_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t master[KEYS_MASTER_LEN] = {
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a,
	0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25,
	0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
};
static const uint8_t aad[] = "fuzz-keys-aad";

static void check(int ok)
{
	if (!ok)
		abort();
}

static int nibble(uint8_t c)
{
	static const char digits[] = "0123456789abcdef0123456789ABCDEF";
	const char *p = c ? memchr(digits, c, sizeof(digits) - 1) : NULL;

	return p ? (int)((p - digits) & 15) : -1;
}

static void fuzz_keyfile(const uint8_t *data, size_t size)
{
	uint8_t key[KEYS_MASTER_LEN], want[KEYS_MASTER_LEN];
	uint8_t *buf = malloc(size ? size : 1);
	int ok = size == KEYS_MASTER_LEN, rc;

	check(buf != NULL);
	memcpy(buf, data, size);
	if (ok) {
		memcpy(want, data, size);
	} else if (size == 64 || (size == 65 && data[64] == '\n')) {
		ok = 1;
		for (size_t i = 0; i < KEYS_MASTER_LEN; i++) {
			int hi = nibble(data[2 * i]), lo = nibble(data[2 * i + 1]);

			if (hi < 0 || lo < 0)
				ok = 0;
			else
				want[i] = (uint8_t)(hi << 4 | lo);
		}
	}
	memset(key, 0x5a, sizeof(key));
	rc = keys_parse_master(buf, size, key);
	check(rc == 0 || rc == STRATA_EKEYFILE);
	check((rc == 0) == ok);
	if (ok)
		check(memcmp(key, want, sizeof(key)) == 0);
	free(buf);
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void fuzz_unwrap(const uint8_t *data, size_t size)
{
	size_t len = size >= KEYS_WRAP_OVERHEAD ? size - KEYS_WRAP_OVERHEAD : 0;
	uint8_t *in = malloc(size ? size : 1), *plain = malloc(len ? len : 1);
	int rc;

	check(in && plain);
	memcpy(in, data, size);
	memset(plain, 0x5a, len);
	rc = keys_unwrap(master, aad, sizeof(aad), in, size, plain);
	if (size < KEYS_WRAP_OVERHEAD) {
		check(rc == -EINVAL);
	} else {
		/* A forgery that verifies is a 2^-128 event: not this one. */
		check(rc == STRATA_EMASTERKEY);
		check(all_zero(plain, len));
	}
	free(plain);
	free(in);
}

static void fuzz_roundtrip(const uint8_t *data, size_t size)
{
	size_t wlen = size + KEYS_WRAP_OVERHEAD, bit;
	uint8_t *w, *plain;

	if (size > PLAIN_MAX)
		return;
	w = malloc(wlen);
	plain = malloc(size ? size : 1);
	check(w && plain);
	check(keys_wrap(master, aad, sizeof(aad), data, size, w) == 0);
	check(keys_unwrap(master, aad, sizeof(aad), w, wlen, plain) == 0);
	check(size == 0 || memcmp(plain, data, size) == 0);
	bit = size ? (data[0] | (size_t)data[size - 1] << 8) % (wlen * 8) :
		     wlen * 4;
	w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	check(keys_unwrap(master, aad, sizeof(aad), w, wlen, plain) ==
	      STRATA_EMASTERKEY);
	check(all_zero(plain, size));
	free(plain);
	free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_keyfile(data, size);
	fuzz_unwrap(data, size);
	fuzz_roundtrip(data, size);
	return 0;
}
