// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the index's values and the names read from disk:
 * the same bytes go to every value decoder (meta's objects, buckets,
 * chunks, segments and access keys, and a bucket's lifecycle rules, which
 * store_lifecycle.c keeps) and the name checks (keys, bucket names, and
 * segment file names, which segment.c reads from the tier directories).
 *
 * Properties checked (abort() on violation, so libFuzzer keeps the input):
 *   - no decoder reads out of bounds or leaks (ASan), and each returns 0,
 *     STRATA_ECORRUPT or STRATA_EFORMAT (objects and rules also -ENOMEM);
 *   - the encoding is canonical: whatever decodes re-encodes to exactly the
 *     input bytes, since the decoders refuse trailing bytes, unknown flags
 *     and out-of-limit lengths;
 *   - a decoded object keeps the documented invariants (limits, size ==
 *     sum of chunk lengths, empty tombstones);
 *   - meta_check_key() agrees with a reference UTF-8 check written the
 *     other way round (decode the code point, then judge it);
 *   - meta_check_bucket_name() accepts only names that obey each rule;
 *   - segment_parse_name() accepts only what the store writes: the id it
 *     gives back (1 to SEGMENT_ID_MAX), formatted, is the name again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/error.h"
#include "meta.h"
#include "segment.h"
#include "store_int.h"
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

static void fuzz_akey(const uint8_t *data, size_t size)
{
	struct meta_akey k;
	uint8_t again[META_AKEY_MAXLEN];
	size_t n;
	int rc = meta_akey_decode(data, size, &k);

	check_rc(rc);
	if (rc)
		return;
	if (k.wrappedlen > META_WRAPPED_MAX || (k.flags & ~META_AKEY_ADMIN))
		abort();
	n = meta_akey_encode(&k, again);
	same_bytes(again, n, data, size);
}

/* Lifecycle rules: what decodes keeps the rules' limits (prefix, action,
 * age) and re-encodes to the input. */
static void fuzz_lifecycle(const uint8_t *data, size_t size)
{
	struct store_lc_rule *r = NULL;
	uint8_t *again;
	size_t n = 0, alen = 0;
	int rc = store__lc_decode(data, size, &r, &n);

	check_rc(rc);
	if (rc) {
		if (r)
			abort();
		return;
	}
	if (n > STORE_LC_MAX_RULES)
		abort();
	for (size_t i = 0; i < n; i++) {
		size_t plen = strnlen(r[i].prefix, sizeof(r[i].prefix));

		if (plen == sizeof(r[i].prefix) ||
		    r[i].age_ms > STORE_LC_MAX_AGE_MS ||
		    (r[i].action != STORE_LC_COLD &&
		     r[i].action != STORE_LC_DELETE) ||
		    (plen && meta_check_key(r[i].prefix, plen)))
			abort();
	}
	again = store__lc_encode(r, n, &alen);
	if (!again)
		abort();
	same_bytes(again, alen, data, size);
	free(again);
	free(r);
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

/* A segment file name: the input up to its first NUL, as readdir gives. */
static void fuzz_segment_name(const uint8_t *data, size_t size)
{
	size_t n = strnlen((const char *)data, size);
	char *name = malloc(n + 1), again[32];
	uint64_t id = 0;

	if (!name)
		abort();
	memcpy(name, data, n);
	name[n] = 0;
	if (segment_parse_name(name, &id) == 0) {
		snprintf(again, sizeof(again), "seg-%016" PRIx64 ".dat", id);
		if (id == 0 || id > SEGMENT_ID_MAX || strcmp(again, name) != 0)
			abort();
	}
	free(name);
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
	fuzz_akey(data, size);
	fuzz_lifecycle(data, size);
	fuzz_names(data, size);
	fuzz_segment_name(data, size);
	return 0;
}
