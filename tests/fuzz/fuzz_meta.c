// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for meta: the same bytes go to all four value decoders
 * and both name checks.
 *
 * Properties checked (abort() on violation, so libFuzzer keeps the input):
 *   - no decoder reads out of bounds or leaks (ASan), and each returns 0,
 *     STRATA_ECORRUPT or STRATA_EFORMAT (objects also -ENOMEM);
 *   - the encoding is canonical: whatever decodes re-encodes to exactly the
 *     input bytes, since the decoders refuse trailing bytes, unknown flags
 *     and out-of-limit lengths;
 *   - a decoded object keeps the documented invariants (limits, size ==
 *     sum of chunk lengths, empty tombstones);
 *   - meta_check_key() agrees with a reference UTF-8 check written the
 *     other way round (decode the code point, then judge it);
 *   - meta_check_bucket_name() accepts only names that obey each rule.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strata/error.h"
#include "meta.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rc(int rc)
{
	if (rc != 0 && rc != STRATA_ECORRUPT && rc != STRATA_EFORMAT &&
	    rc != -ENOMEM)
		abort();
}

static void same_bytes(const uint8_t *a, size_t alen, const uint8_t *b,
		       size_t blen)
{
	if (alen != blen || (alen && memcmp(a, b, alen) != 0))
		abort();
}

static void fuzz_object(const uint8_t *data, size_t size)
{
	struct meta_object *o = NULL;
	uint64_t sum = 0;
	uint8_t *again;
	size_t n;
	int rc;

	rc = meta_object_decode(data, size, &o);
	check_rc(rc);
	if (rc) {
		if (o)
			abort();
		return;
	}
	if (o->ctypelen > META_CTYPE_MAX || o->nmeta > META_KV_MAX ||
	    o->ntags > META_KV_MAX || o->nchunks > META_CHUNKS_MAX ||
	    (o->flags & ~(META_OBJ_TOMBSTONE | META_OBJ_INLINE)))
		abort();
	if ((o->flags & META_OBJ_INLINE) &&
	    (o->nchunks != 1 || o->inlen < RECORD_HDR_LEN ||
	     o->inlen > RECORD_HDR_LEN + o->size ||
	     o->size > META_INLINE_MAX || o->inl < data ||
	     o->inl + o->inlen > data + size))
		abort();
	for (uint16_t i = 0; i < o->nmeta; i++)
		if (o->meta[i].keylen > META_KV_KEY_MAX ||
		    o->meta[i].vallen > META_KV_VAL_MAX)
			abort();
	for (uint16_t i = 0; i < o->ntags; i++)
		if (o->tags[i].keylen > META_KV_KEY_MAX ||
		    o->tags[i].vallen > META_KV_VAL_MAX)
			abort();
	for (uint32_t i = 0; i < o->nchunks; i++)
		sum += o->chunks[i].raw_len;
	if (o->flags & META_OBJ_TOMBSTONE) {
		if (o->nchunks || o->size)
			abort();
	} else if (sum != o->size) {
		abort();
	}

	n = meta_object_size(o);
	again = malloc(n);
	if (!again)
		abort();
	if (meta_object_encode(o, again) != n)
		abort();
	same_bytes(again, n, data, size);
	free(again);
	meta_object_free(o);
}

static void fuzz_bucket(const uint8_t *data, size_t size)
{
	struct meta_bucket b;
	uint8_t *again;
	size_t n;
	int rc;

	rc = meta_bucket_decode(data, size, &b);
	check_rc(rc);
	if (rc)
		return;
	if (b.wrappedlen > META_WRAPPED_MAX || b.attrslen > META_ATTRS_MAX)
		abort();
	n = meta_bucket_size(&b);
	again = malloc(n);
	if (!again)
		abort();
	if (meta_bucket_encode(&b, again) != n)
		abort();
	same_bytes(again, n, data, size);
	free(again);
}

static void fuzz_fixed(const uint8_t *data, size_t size)
{
	struct meta_chunk c;
	struct meta_segment s;
	uint8_t cbuf[META_CHUNK_LEN], sbuf[META_SEGMENT_LEN];
	int rc;

	rc = meta_chunk_decode(data, size, &c);
	check_rc(rc);
	if (rc == 0) {
		if (meta_chunk_encode(&c, cbuf) != META_CHUNK_LEN)
			abort();
		same_bytes(cbuf, sizeof(cbuf), data, size);
	}
	rc = meta_segment_decode(data, size, &s);
	check_rc(rc);
	if (rc == 0) {
		if (meta_segment_encode(&s, sbuf) != META_SEGMENT_LEN)
			abort();
		same_bytes(sbuf, sizeof(sbuf), data, size);
	}
}

/*
 * Reference UTF-8 check: take the sequence length from the lead byte's
 * bit pattern, assemble the code point, then refuse overlong forms,
 * surrogates, values past U+10FFFF and NUL.
 */
static bool ref_key_ok(const uint8_t *s, size_t len)
{
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t i = 0;

	if (len == 0 || len > META_KEY_MAX)
		return false;
	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp;

		if ((c & 0x80) == 0) {
			n = 1;
			cp = c;
		} else if ((c & 0xe0) == 0xc0) {
			n = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i < n)
			return false;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min[n] || cp == 0 || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n;
	}
	return true;
}

static bool lower_or_digit(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static void fuzz_names(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	unsigned dots = 0;
	bool all_digits_dots = true;
	int rc;

	rc = meta_check_key(s, size);
	if (rc != 0 && rc != STRATA_EBADKEY)
		abort();
	if ((rc == 0) != ref_key_ok(data, size))
		abort();

	rc = meta_check_bucket_name(s, size);
	if (rc == STRATA_EBADBUCKET)
		return;
	if (rc != 0 || size < 3 || size > META_BUCKET_MAX ||
	    !lower_or_digit(s[0]) || !lower_or_digit(s[size - 1]))
		abort();
	for (size_t i = 0; i < size; i++) {
		if (!lower_or_digit(s[i]) && s[i] != '.' && s[i] != '-')
			abort();
		if (s[i] == '.' && s[i - 1] == '.')
			abort();
		if (s[i] == '.')
			dots++;
		else if (s[i] < '0' || s[i] > '9')
			all_digits_dots = false;
	}
	/* d.d.d.d with groups of 1-3 digits must have been refused. */
	if (all_digits_dots && dots == 3 && size <= 15) {
		size_t run = 0;
		bool short_groups = true;

		for (size_t i = 0; i < size; i++) {
			run = s[i] == '.' ? 0 : run + 1;
			if (run > 3)
				short_groups = false;
		}
		if (short_groups)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_object(data, size);
	fuzz_bucket(data, size);
	fuzz_fixed(data, size);
	fuzz_names(data, size);
	return 0;
}
