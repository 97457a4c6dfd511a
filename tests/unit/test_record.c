// SPDX-License-Identifier: Apache-2.0
/*
 * record: round trips over sizes and data kinds, chunk ids, the crc32c
 * convention, and every way a stored record can be damaged or misplaced.
 * Some tests build records by hand from the layout in record.h, so the
 * decoder is checked against the documented format, not only against the
 * encoder.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "record.h"
#include "strata/error.h"
#include "testutil.h"
#include "banned.h"

#define MiB (1u << 20)

static void make_keys(struct record_keys *k, uint64_t seed)
{
	tu_fill(k->id_key, sizeof(k->id_key), seed * 2 + 1);
	tu_fill(k->data_key, sizeof(k->data_key), seed * 2 + 2);
	k->bucket_id = 1000 + seed;
}

static struct record_codec *codec(void)
{
	struct record_codec *c = record_codec_new();

	ck_assert_ptr_nonnull(c);
	return c;
}

/* Text-like data zstd shrinks a lot, but not a single repeated byte. */
static void fill_text(uint8_t *p, size_t len, uint64_t seed)
{
	static const char *const words[] = {
		"object ", "storage ", "chunk ", "segment ", "bucket ",
		"index ", "record ", "daemon ", "the ", "of ", "and ", "\n",
	};
	uint64_t x = seed | 1;
	size_t i = 0;

	while (i < len) {
		const char *w;
		size_t n;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w = words[x % (sizeof(words) / sizeof(words[0]))];
		n = strlen(w);
		if (n > len - i)
			n = len - i;
		memcpy(p + i, w, n);
		i += n;
	}
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void set_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Re-seal the header crc after a deliberate edit. */
static void fix_hdr_crc(uint8_t *rec)
{
	set_le32(rec + 92, record_crc32c(0, rec, 92));
}

static void fix_payload_crc(uint8_t *rec, size_t reclen)
{
	set_le32(rec + 76, record_crc32c(0, rec + RECORD_HDR_LEN,
					 reclen - RECORD_HDR_LEN));
	fix_hdr_crc(rec);
}

/*
 * Encode, check the header, decode into a buffer of exactly raw_len bytes,
 * compare.  Returns the header flags.
 */
static int roundtrip(struct record_codec *c, const struct record_keys *k,
		     const uint8_t *data, size_t len, int zlevel)
{
	uint8_t id[RECORD_ID_LEN];
	size_t bound = record_bound(len), outlen = 0, plainlen = 0;
	uint8_t *rec = tu_xmalloc(bound);
	uint8_t *back = tu_xmalloc(len ? len : 1);
	struct record_hdr h;
	int flags;

	ck_assert_int_eq(record_chunk_id(c, k, data, len, NULL, id), 0);
	ck_assert_int_eq(record_encode(c, k, id, data, len, zlevel, rec,
				       &outlen),
			 0);
	ck_assert_uint_le(outlen, bound);
	ck_assert_uint_ge(outlen, RECORD_HDR_LEN);
	ck_assert_int_eq(record_parse_header(rec, &h), 0);
	ck_assert_uint_eq(h.version, RECORD_VERSION);
	ck_assert_uint_eq(h.raw_len, len);
	ck_assert_uint_eq(h.stored_len, outlen - RECORD_HDR_LEN);
	ck_assert_mem_eq(h.id, id, RECORD_ID_LEN);
	ck_assert(h.flags & RECORD_AEAD);
	flags = h.flags;
	if (flags & RECORD_ZSTD)
		ck_assert_uint_le(h.stored_len, len - len / 16);
	else
		ck_assert_uint_eq(h.stored_len, len);

	ck_assert_int_eq(record_decode(c, k, id, rec, outlen, back, len,
				       &plainlen),
			 0);
	ck_assert_uint_eq(plainlen, len);
	ck_assert(len == 0 || memcmp(back, data, len) == 0);
	free(rec);
	free(back);
	return flags;
}

static const size_t sizes[] = { 0, 1, 4095, 4096, MiB, 4 * MiB };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

START_TEST(roundtrip_incompressible)
{
	struct record_codec *c = codec();
	struct record_keys k;
	size_t len = sizes[_i];
	uint8_t *data = tu_xmalloc(len ? len : 1);

	make_keys(&k, 1);
	tu_fill(data, len, 42 + len);
	/* Random bytes never compress by 1/16: always raw. */
	ck_assert_int_eq(roundtrip(c, &k, data, len, 3), RECORD_AEAD);
	ck_assert_int_eq(roundtrip(c, &k, data, len, 19), RECORD_AEAD);
	ck_assert_int_eq(roundtrip(c, &k, data, len, 0), RECORD_AEAD);
	free(data);
	record_codec_free(c);
}
END_TEST

START_TEST(roundtrip_compressible)
{
	struct record_codec *c = codec();
	struct record_keys k;
	size_t len = sizes[_i];
	uint8_t *data = tu_xmalloc(len ? len : 1);
	int want = len >= 4095 ? RECORD_AEAD | RECORD_ZSTD : RECORD_AEAD;

	make_keys(&k, 2);
	fill_text(data, len, 7 + len);
	ck_assert_int_eq(roundtrip(c, &k, data, len, 1), want);
	ck_assert_int_eq(roundtrip(c, &k, data, len, 3), want);
	ck_assert_int_eq(roundtrip(c, &k, data, len, -5), want);
	/* Level 0 disables compression whatever the data. */
	ck_assert_int_eq(roundtrip(c, &k, data, len, 0), RECORD_AEAD);
	/* All zeroes: the extreme ratio. */
	memset(data, 0, len);
	ck_assert_int_eq(roundtrip(c, &k, data, len, 3), want);
	free(data);
	record_codec_free(c);
}
END_TEST

START_TEST(compressed_is_smaller)
{
	struct record_codec *c = codec();
	struct record_keys k;
	size_t len = MiB, outlen;
	uint8_t *data = tu_xmalloc(len), *rec = tu_xmalloc(record_bound(len));
	uint8_t id[RECORD_ID_LEN];
	struct record_hdr h;

	make_keys(&k, 3);
	fill_text(data, len, 99);
	ck_assert_int_eq(record_chunk_id(c, &k, data, len, NULL, id), 0);
	ck_assert_int_eq(record_encode(c, &k, id, data, len, 3, rec, &outlen),
			 0);
	ck_assert_int_eq(record_parse_header(rec, &h), 0);
	ck_assert_uint_eq(h.flags, RECORD_ZSTD | RECORD_AEAD);
	ck_assert_uint_lt(h.stored_len, len / 2);
	ck_assert_uint_eq(outlen, RECORD_HDR_LEN + h.stored_len);
	free(data);
	free(rec);
	record_codec_free(c);
}
END_TEST

/* Half random, half text: compresses, but by less than 1/16? Check both. */
START_TEST(threshold)
{
	struct record_codec *c = codec();
	struct record_keys k;
	size_t len = 64 * 1024;
	uint8_t *data = tu_xmalloc(len);

	make_keys(&k, 4);
	/* 1/32 compressible: saves < 1/16, must be stored raw. */
	tu_fill(data, len, 5);
	memset(data, 0, len / 32);
	ck_assert_int_eq(roundtrip(c, &k, data, len, 3), RECORD_AEAD);
	/* 1/4 compressible: saves > 1/16, must be compressed. */
	memset(data, 0, len / 4);
	ck_assert_int_eq(roundtrip(c, &k, data, len, 3),
			 RECORD_AEAD | RECORD_ZSTD);
	free(data);
	record_codec_free(c);
}
END_TEST

START_TEST(bound)
{
	ck_assert_uint_eq(record_bound(0), RECORD_HDR_LEN);
	ck_assert_uint_ge(record_bound(MiB), RECORD_HDR_LEN + MiB);
	ck_assert_uint_ge(record_bound(RECORD_MAX_RAW),
			  RECORD_HDR_LEN + RECORD_MAX_RAW);
	/* Saturates rather than wrapping. */
	ck_assert_uint_eq(record_bound(SIZE_MAX), SIZE_MAX);
}
END_TEST

START_TEST(encode_too_large)
{
	struct record_codec *c = codec();
	struct record_keys k;
	uint8_t id[RECORD_ID_LEN] = { 0 }, small[RECORD_HDR_LEN];
	size_t outlen = 12345;

	make_keys(&k, 5);
	/* Refused before plain or out are touched. */
	ck_assert_int_eq(record_encode(c, &k, id, small, RECORD_MAX_RAW + 1, 3,
				       small, &outlen),
			 -EINVAL);
	ck_assert_uint_eq(outlen, 12345);
	record_codec_free(c);
}
END_TEST

START_TEST(encode_max)
{
	struct record_codec *c = codec();
	struct record_keys k;
	uint8_t *data = tu_xmalloc(RECORD_MAX_RAW);

	make_keys(&k, 6);
	tu_fill(data, RECORD_MAX_RAW, 6);
	ck_assert_int_eq(roundtrip(c, &k, data, RECORD_MAX_RAW, 1),
			 RECORD_AEAD);
	free(data);
	record_codec_free(c);
}
END_TEST

START_TEST(chunk_id)
{
	static const uint8_t sha_abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
		0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
		0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	/* HMAC-SHA256(key 00..1f, SHA-256("abc")), computed independently. */
	static const uint8_t id_abc[32] = {
		0x91, 0x0e, 0xc3, 0x38, 0xf6, 0x48, 0x92, 0xdf,
		0xc0, 0x28, 0x8e, 0x34, 0x31, 0x62, 0xe9, 0x96,
		0xb7, 0x1c, 0x39, 0xc6, 0x7d, 0xd1, 0xca, 0xd1,
		0x39, 0x23, 0xf2, 0xd6, 0x7a, 0x79, 0xcf, 0xf6,
	};
	static const uint8_t id_empty[32] = {
		0xd4, 0x3a, 0xb2, 0x68, 0xac, 0xe8, 0x48, 0x97,
		0xc7, 0xc3, 0x8d, 0xb8, 0x98, 0xce, 0xba, 0x84,
		0x60, 0xc3, 0x0c, 0x06, 0x1f, 0x52, 0xa2, 0xea,
		0x4c, 0x51, 0x43, 0x67, 0xed, 0x85, 0xf6, 0xfa,
	};
	struct record_keys k, k2;
	uint8_t hash[32], id[32], hash2[32], id2[32];
	struct record_codec *c = codec();

	for (int i = 0; i < 32; i++)
		k.id_key[i] = (uint8_t)i;
	memset(k.data_key, 0, sizeof(k.data_key));
	k.bucket_id = 1;

	ck_assert_int_eq(record_chunk_id(c, &k, "abc", 3, hash, id), 0);
	ck_assert_mem_eq(hash, sha_abc, 32);
	ck_assert_mem_eq(id, id_abc, 32);
	ck_assert_int_eq(record_chunk_id(c, &k, NULL, 0, NULL, id), 0);
	ck_assert_mem_eq(id, id_empty, 32);

	/* Either output may be NULL; the other is unchanged by that. */
	memset(hash2, 0, 32);
	ck_assert_int_eq(record_chunk_id(c, &k, "abc", 3, hash2, NULL), 0);
	ck_assert_mem_eq(hash2, sha_abc, 32);
	memset(id2, 0, 32);
	ck_assert_int_eq(record_chunk_id(c, &k, "abc", 3, NULL, id2), 0);
	ck_assert_mem_eq(id2, id_abc, 32);
	ck_assert_int_eq(record_chunk_id(c, &k, "abc", 3, NULL, NULL), 0);

	/* Another bucket (another id key): same hash, different id. */
	k2 = k;
	k2.id_key[0] ^= 1;
	k2.bucket_id = 2;
	ck_assert_int_eq(record_chunk_id(c, &k2, "abc", 3, hash2, id2), 0);
	ck_assert_mem_eq(hash2, hash, 32);
	ck_assert_mem_ne(id2, id_abc, 32);
	/* The id key alone decides the id, not the data key or bucket. */
	k2 = k;
	k2.data_key[0] ^= 1;
	k2.bucket_id = 77;
	ck_assert_int_eq(record_chunk_id(c, &k2, "abc", 3, NULL, id2), 0);
	ck_assert_mem_eq(id2, id_abc, 32);
	/* Different data, different id. */
	ck_assert_int_eq(record_chunk_id(c, &k, "abd", 3, NULL, id2), 0);
	ck_assert_mem_ne(id2, id_abc, 32);
	record_codec_free(c);
}
END_TEST

START_TEST(chunk_id_large)
{
	struct record_codec *c = codec();
	struct record_keys k;
	size_t len = 4 * MiB;
	uint8_t *data = tu_xmalloc(len);
	uint8_t a[32], b[32];

	make_keys(&k, 8);
	tu_fill(data, len, 8);
	ck_assert_int_eq(record_chunk_id(c, &k, data, len, NULL, a), 0);
	ck_assert_int_eq(record_chunk_id(c, &k, data, len, NULL, b), 0);
	ck_assert_mem_eq(a, b, 32);
	data[len - 1] ^= 1;
	ck_assert_int_eq(record_chunk_id(c, &k, data, len, NULL, b), 0);
	ck_assert_mem_ne(a, b, 32);
	free(data);
	record_codec_free(c);
}
END_TEST

START_TEST(crc32c)
{
	static const char v[] = "123456789";

	ck_assert_uint_eq(record_crc32c(0, v, 9), 0xE3069283u);
	ck_assert_uint_eq(record_crc32c(0, NULL, 0), 0);
	ck_assert_uint_eq(record_crc32c(0x12345678u, v, 0), 0x12345678u);
	/* Chains like zlib's crc32(). */
	ck_assert_uint_eq(record_crc32c(record_crc32c(0, v, 4), v + 4, 5),
			  0xE3069283u);
	/* 32 zero bytes: RFC 3720 B.4. */
	{
		uint8_t z[32] = { 0 };
		uint8_t f[32];

		memset(f, 0xff, sizeof(f));
		ck_assert_uint_eq(record_crc32c(0, z, 32), 0x8A9136AAu);
		ck_assert_uint_eq(record_crc32c(0, f, 32), 0x62A8AB43u);
	}
}
END_TEST

/* A fixture of sorts: one encoded record to damage in many ways. */
struct fx {
	struct record_codec *c;
	struct record_keys k;
	uint8_t id[RECORD_ID_LEN];
	uint8_t *data;
	size_t len;
	uint8_t *rec;	/* pristine */
	uint8_t *work;	/* damaged copy */
	size_t reclen;
	uint8_t *plain;
};

static void fx_init(struct fx *f, size_t len, int text, int zlevel)
{
	f->c = codec();
	make_keys(&f->k, 9);
	f->len = len;
	f->data = tu_xmalloc(len);
	if (text)
		fill_text(f->data, len, 9);
	else
		tu_fill(f->data, len, 9);
	f->rec = tu_xmalloc(record_bound(len));
	/* Slack, so tests may claim a reclen past the record. */
	f->work = tu_xmalloc(record_bound(len) + 64);
	f->plain = tu_xmalloc(len);
	ck_assert_int_eq(record_chunk_id(f->c, &f->k, f->data, len, NULL, f->id), 0);
	ck_assert_int_eq(record_encode(f->c, &f->k, f->id, f->data, len,
				       zlevel, f->rec, &f->reclen),
			 0);
}

static void fx_release(struct fx *f)
{
	record_codec_free(f->c);
	free(f->data);
	free(f->rec);
	free(f->work);
	free(f->plain);
}

static void fx_reset(struct fx *f)
{
	memcpy(f->work, f->rec, f->reclen);
	memset(f->plain, 0xa5, f->len);
}

/* The caller's buffer holds nothing of the plaintext: untouched or wiped. */
static void assert_no_plain(const struct fx *f)
{
	int untouched = 1, zero = 1;

	for (size_t i = 0; i < f->len; i++) {
		untouched &= f->plain[i] == 0xa5;
		zero &= f->plain[i] == 0;
	}
	ck_assert_msg(untouched || zero, "decode failed but left data");
}

static int fx_decode(struct fx *f, const struct record_keys *k,
		     const uint8_t *id, size_t reclen, size_t cap)
{
	size_t plainlen = 0xdead;
	int rc = record_decode(f->c, k, id, f->work, reclen, f->plain, cap,
			       &plainlen);

	if (rc == 0) {
		ck_assert_uint_eq(plainlen, f->len);
		ck_assert_mem_eq(f->plain, f->data, f->len);
	} else {
		ck_assert_uint_eq(plainlen, 0xdead);
		assert_no_plain(f);
	}
	return rc;
}

/* Header byte ranges: every field. */
static const struct {
	const char *name;
	size_t off, len;
} fields[] = {
	{ "magic", 0, 4 },	     { "version", 4, 1 },
	{ "flags", 5, 1 },	     { "reserved1", 6, 2 },
	{ "raw_len", 8, 4 },	     { "stored_len", 12, 4 },
	{ "id", 16, 32 },	     { "nonce", 48, 12 },
	{ "tag", 60, 16 },	     { "payload_crc", 76, 4 },
	{ "reserved2", 80, 12 },     { "hdr_crc", 92, 4 },
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static void flip_each(int text, int zlevel)
{
	struct fx f;

	fx_init(&f, 64 * 1024, text, zlevel);
	fx_reset(&f);
	ck_assert_int_eq(fx_decode(&f, &f.k, f.id, f.reclen, f.len), 0);

	/* Any header bit flipped, as the disk would: the header crc. */
	for (size_t i = 0; i < RECORD_HDR_LEN; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			fx_reset(&f);
			f.work[i] ^= (uint8_t)(1u << bit);
			ck_assert_msg(fx_decode(&f, &f.k, f.id, f.reclen,
						f.len) == STRATA_ECORRUPT,
				      "header byte %zu bit %d", i, bit);
		}
	}

	/*
	 * The same edits with the header crc re-sealed, as an attacker
	 * would: field checks, the id check or the GCM tag catch them.
	 * The version is left out (that is EFORMAT, tested apart).
	 */
	for (size_t j = 0; j < NFIELDS; j++) {
		if (fields[j].off == 4 || fields[j].off == 92)
			continue;
		for (size_t i = 0; i < fields[j].len; i++) {
			int rc;

			fx_reset(&f);
			f.work[fields[j].off + i] ^= 0x01;
			fix_hdr_crc(f.work);
			rc = fx_decode(&f, &f.k, f.id, f.reclen, f.len);
			/* A bigger raw_len may need more room first. */
			if (fields[j].off == 8 && rc == -ENOSPC)
				continue;
			ck_assert_msg(rc == STRATA_ECORRUPT,
				      "sealed %s byte %zu: rc %d",
				      fields[j].name, i, rc);
		}
	}
	/* ... and with the id check passed too: the AAD binds the id. */
	for (size_t i = 0; i < RECORD_ID_LEN; i++) {
		uint8_t id[RECORD_ID_LEN];

		fx_reset(&f);
		f.work[16 + i] ^= 0x80;
		fix_hdr_crc(f.work);
		memcpy(id, f.work + 16, RECORD_ID_LEN);
		ck_assert_int_eq(fx_decode(&f, &f.k, id, f.reclen, f.len),
				 STRATA_ECORRUPT);
	}

	/* Payload bytes: the payload crc, then (re-sealed) the GCM tag. */
	for (size_t i = RECORD_HDR_LEN; i < f.reclen;
	     i += 1 + (f.reclen - RECORD_HDR_LEN) / 97) {
		fx_reset(&f);
		f.work[i] ^= 0x10;
		ck_assert_int_eq(fx_decode(&f, &f.k, f.id, f.reclen, f.len),
				 STRATA_ECORRUPT);
		fx_reset(&f);
		f.work[i] ^= 0x10;
		fix_payload_crc(f.work, f.reclen);
		ck_assert_int_eq(fx_decode(&f, &f.k, f.id, f.reclen, f.len),
				 STRATA_ECORRUPT);
	}
	fx_reset(&f);
	f.work[f.reclen - 1] ^= 0x01;
	fix_payload_crc(f.work, f.reclen);
	ck_assert_int_eq(fx_decode(&f, &f.k, f.id, f.reclen, f.len),
			 STRATA_ECORRUPT);

	/* Untouched, it still decodes (the loops above did not lie). */
	fx_reset(&f);
	ck_assert_int_eq(fx_decode(&f, &f.k, f.id, f.reclen, f.len), 0);
	fx_release(&f);
}

START_TEST(flip_raw)
{
	flip_each(0, 3);
}
END_TEST

START_TEST(flip_zstd)
{
	struct record_hdr h;
	struct fx f;

	fx_init(&f, 64 * 1024, 1, 3);
	ck_assert_int_eq(record_parse_header(f.rec, &h), 0);
	ck_assert_uint_eq(h.flags, RECORD_ZSTD | RECORD_AEAD);
	fx_release(&f);
	flip_each(1, 3);
}
END_TEST

START_TEST(wrong_keys)
{
	struct fx f;
	struct record_keys k;
	uint8_t id[RECORD_ID_LEN];

	for (int text = 0; text < 2; text++) {
		fx_init(&f, 10000, text, 3);

		k = f.k;
		k.bucket_id ^= 1;
		fx_reset(&f);
		ck_assert_int_eq(fx_decode(&f, &k, f.id, f.reclen, f.len),
				 STRATA_ECORRUPT);
		k = f.k;
		k.bucket_id ^= 1ull << 63;
		fx_reset(&f);
		ck_assert_int_eq(fx_decode(&f, &k, f.id, f.reclen, f.len),
				 STRATA_ECORRUPT);
		k = f.k;
		k.data_key[31] ^= 1;
		fx_reset(&f);
		ck_assert_int_eq(fx_decode(&f, &k, f.id, f.reclen, f.len),
				 STRATA_ECORRUPT);

		memcpy(id, f.id, sizeof(id));
		id[0] ^= 1;
		fx_reset(&f);
		ck_assert_int_eq(fx_decode(&f, &f.k, id, f.reclen, f.len),
				 STRATA_ECORRUPT);

		fx_reset(&f);
		ck_assert_int_eq(fx_decode(&f, &f.k, f.id, f.reclen, f.len),
				 0);
		fx_release(&f);
	}
}
END_TEST

START_TEST(bad_lengths)
{
	struct fx f;

	for (int text = 0; text < 2; text++) {
		fx_init(&f, 5000, text, 3);
		static const size_t cut[] = { 1, 2, 17 };

		for (size_t i = 0; i < 3; i++) {
			fx_reset(&f);
			ck_assert_int_eq(fx_decode(&f, &f.k, f.id,
						   f.reclen - cut[i], f.len),
					 STRATA_ECORRUPT);
		}
		fx_reset(&f);
		ck_assert_int_eq(fx_decode(&f, &f.k, f.id, f.reclen + 1, f.len),
				 STRATA_ECORRUPT);
		fx_reset(&f);
		ck_assert_int_eq(fx_decode(&f, &f.k, f.id, RECORD_HDR_LEN,
					   f.len),
				 STRATA_ECORRUPT);
		fx_reset(&f);
		ck_assert_int_eq(fx_decode(&f, &f.k, f.id, RECORD_HDR_LEN - 1,
					   f.len),
				 STRATA_ECORRUPT);
		fx_reset(&f);
		ck_assert_int_eq(fx_decode(&f, &f.k, f.id, 0, f.len),
				 STRATA_ECORRUPT);

		/* Too little room: -ENOSPC, and nothing written. */
		fx_reset(&f);
		ck_assert_int_eq(fx_decode(&f, &f.k, f.id, f.reclen,
					   f.len - 1),
				 -ENOSPC);
		for (size_t i = 0; i < f.len; i++)
			ck_assert_uint_eq(f.plain[i], 0xa5);
		fx_reset(&f);
		ck_assert_int_eq(fx_decode(&f, &f.k, f.id, f.reclen, 0),
				 -ENOSPC);
		/* Exactly enough, or more, is fine. */
		fx_reset(&f);
		ck_assert_int_eq(fx_decode(&f, &f.k, f.id, f.reclen, f.len),
				 0);
		fx_release(&f);
	}
}
END_TEST

/* A decode into a buffer bigger than raw_len writes only raw_len bytes. */
START_TEST(cap_respected)
{
	struct record_codec *c = codec();
	struct record_keys k;
	uint8_t data[3000], rec[RECORD_HDR_LEN + 3000], out[4000];
	uint8_t id[RECORD_ID_LEN];
	size_t reclen, n;

	make_keys(&k, 10);
	for (int z = 0; z < 2; z++) {
		if (z)
			fill_text(data, sizeof(data), 3);
		else
			tu_fill(data, sizeof(data), 3);
		ck_assert_int_eq(record_chunk_id(c, &k, data, sizeof(data), NULL, id), 0);
		ck_assert_int_eq(record_encode(c, &k, id, data, sizeof(data),
					       3, rec, &reclen),
				 0);
		memset(out, 0xee, sizeof(out));
		ck_assert_int_eq(record_decode(c, &k, id, rec, reclen, out,
					       sizeof(out), &n),
				 0);
		ck_assert_uint_eq(n, sizeof(data));
		ck_assert_mem_eq(out, data, sizeof(data));
		for (size_t i = sizeof(data); i < sizeof(out); i++)
			ck_assert_uint_eq(out[i], 0xee);
	}
	record_codec_free(c);
}
END_TEST

START_TEST(version_and_flags)
{
	struct record_hdr h;
	struct fx f;

	fx_init(&f, 2000, 0, 3);

	/* A newer version with an intact header: EFORMAT, not corrupt. */
	for (int v = 0; v < 256; v++) {
		if (v == RECORD_VERSION)
			continue;
		fx_reset(&f);
		f.work[4] = (uint8_t)v;
		fix_hdr_crc(f.work);
		ck_assert_int_eq(record_parse_header(f.work, &h),
				 STRATA_EFORMAT);
		ck_assert_int_eq(fx_decode(&f, &f.k, f.id, f.reclen, f.len),
				 STRATA_EFORMAT);
	}
	/* raw_len past RECORD_MAX_RAW, sealed. */
	fx_reset(&f);
	set_le32(f.work + 8, RECORD_MAX_RAW + 1);
	set_le32(f.work + 12, RECORD_MAX_RAW + 1);
	fix_hdr_crc(f.work);
	ck_assert_int_eq(record_parse_header(f.work, &h), STRATA_ECORRUPT);
	ck_assert_int_eq(fx_decode(&f, &f.k, f.id, RECORD_HDR_LEN + 2000,
				   f.len),
			 STRATA_ECORRUPT);
	fx_reset(&f);
	set_le32(f.work + 8, 0xffffffffu);
	set_le32(f.work + 12, 10);
	f.work[5] |= RECORD_ZSTD;
	fix_hdr_crc(f.work);
	ck_assert_int_eq(record_parse_header(f.work, &h), STRATA_ECORRUPT);
	/* A zstd payload no smaller than raw_len. */
	fx_reset(&f);
	f.work[5] |= RECORD_ZSTD;
	fix_hdr_crc(f.work);
	ck_assert_int_eq(record_parse_header(f.work, &h), STRATA_ECORRUPT);
	/* Raw with stored != raw. */
	fx_reset(&f);
	set_le32(f.work + 12, 1999);
	fix_hdr_crc(f.work);
	ck_assert_int_eq(record_parse_header(f.work, &h), STRATA_ECORRUPT);
	/* Unencrypted, or unknown flags: refused even with a good crc. */
	for (int fl = 0; fl < 256; fl++) {
		if (fl == RECORD_AEAD)
			continue;
		fx_reset(&f);
		f.work[5] = (uint8_t)fl;
		fix_hdr_crc(f.work);
		ck_assert_msg(record_parse_header(f.work, &h) ==
				      STRATA_ECORRUPT,
			      "flags %#x", fl);
	}
	/* The pristine header parses to what was encoded. */
	ck_assert_int_eq(record_parse_header(f.rec, &h), 0);
	ck_assert_uint_eq(h.version, 1);
	ck_assert_uint_eq(h.flags, RECORD_AEAD);
	ck_assert_uint_eq(h.raw_len, 2000);
	ck_assert_uint_eq(h.stored_len, 2000);
	ck_assert_mem_eq(h.id, f.id, RECORD_ID_LEN);
	ck_assert_mem_eq(h.nonce, f.rec + 48, 12);
	ck_assert_mem_eq(h.tag, f.rec + 60, 16);
	ck_assert_uint_eq(h.payload_crc,
			  record_crc32c(0, f.rec + RECORD_HDR_LEN, 2000));
	ck_assert_uint_eq(le32(f.rec), RECORD_MAGIC);
	ck_assert_mem_eq(f.rec, "STRK", 4);
	fx_release(&f);
}
END_TEST

START_TEST(nonce_fresh)
{
	struct record_codec *c = codec();
	struct record_keys k;
	uint8_t data[512], r1[RECORD_HDR_LEN + 512], r2[RECORD_HDR_LEN + 512];
	uint8_t id[RECORD_ID_LEN], back[512];
	size_t l1, l2, n;

	make_keys(&k, 11);
	tu_fill(data, sizeof(data), 11);
	ck_assert_int_eq(record_chunk_id(c, &k, data, sizeof(data), NULL, id), 0);
	ck_assert_int_eq(record_encode(c, &k, id, data, sizeof(data), 0, r1,
				       &l1),
			 0);
	ck_assert_int_eq(record_encode(c, &k, id, data, sizeof(data), 0, r2,
				       &l2),
			 0);
	ck_assert_uint_eq(l1, l2);
	ck_assert_mem_ne(r1 + 48, r2 + 48, 12);
	ck_assert_mem_ne(r1 + RECORD_HDR_LEN, r2 + RECORD_HDR_LEN, 512);
	/* Swapping the nonces between two valid records breaks both. */
	memcpy(r1 + 48, r2 + 48, 12);
	fix_hdr_crc(r1);
	ck_assert_int_eq(record_decode(c, &k, id, r1, l1, back, sizeof(back),
				       &n),
			 STRATA_ECORRUPT);
	ck_assert_int_eq(record_decode(c, &k, id, r2, l2, back, sizeof(back),
				       &n),
			 0);
	ck_assert_mem_eq(back, data, sizeof(data));
	record_codec_free(c);
}
END_TEST

START_TEST(marker)
{
	static const char m[] = "STRATA-MARKER";
	struct record_codec *c = codec();
	struct record_keys k;
	size_t len = MiB, reclen;
	uint8_t *data = tu_xmalloc(len), *rec = tu_xmalloc(record_bound(len));
	uint8_t id[RECORD_ID_LEN];
	static const int levels[] = { 0, 1, 3 };

	make_keys(&k, 12);
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)m[i % (sizeof(m) - 1)];
	ck_assert_int_eq(record_chunk_id(c, &k, data, len, NULL, id), 0);
	for (size_t l = 0; l < 3; l++) {
		ck_assert_int_eq(record_encode(c, &k, id, data, len, levels[l],
					       rec, &reclen),
				 0);
		ck_assert_ptr_null(memmem(rec, reclen, m, sizeof(m) - 1));
		/* Not even a fragment of it. */
		ck_assert_ptr_null(memmem(rec, reclen, "MARKER", 6));
	}
	free(data);
	free(rec);
	record_codec_free(c);
}
END_TEST

/*
 * Build a record by hand from record.h's layout: encrypt `packed` under the
 * documented AAD.  Lets the tests check the decoder against the format and
 * reach the zstd error paths behind a valid tag.
 */
static size_t seal(const struct record_keys *k, const uint8_t id[32],
		   uint8_t flags, uint32_t raw_len, const uint8_t *packed,
		   size_t plen, uint8_t *rec)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t aad[15 + 8 + 32 + 1 + 4];
	int n;

	ck_assert_ptr_nonnull(ctx);
	memset(rec, 0, RECORD_HDR_LEN);
	memcpy(rec, "STRK", 4);
	rec[4] = 1;
	rec[5] = flags;
	set_le32(rec + 8, raw_len);
	set_le32(rec + 12, (uint32_t)plen);
	memcpy(rec + 16, id, 32);
	tu_fill(rec + 48, 12, raw_len + plen);

	memcpy(aad, "strata-chunk-v1", 15);
	for (int i = 0; i < 8; i++)
		aad[15 + i] = (uint8_t)(k->bucket_id >> (56 - 8 * i));
	memcpy(aad + 23, id, 32);
	aad[55] = flags;
	set_le32(aad + 56, raw_len);

	ck_assert_int_eq(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL,
					    k->data_key, rec + 48),
			 1);
	ck_assert_int_eq(EVP_EncryptUpdate(ctx, NULL, &n, aad, sizeof(aad)), 1);
	if (plen)
		ck_assert_int_eq(EVP_EncryptUpdate(ctx, rec + RECORD_HDR_LEN,
						   &n, packed, (int)plen),
				 1);
	ck_assert_int_eq(EVP_EncryptFinal_ex(ctx, rec + 60, &n), 1);
	ck_assert_int_eq(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16,
					     rec + 60),
			 1);
	EVP_CIPHER_CTX_free(ctx);
	fix_payload_crc(rec, RECORD_HDR_LEN + plen);
	return RECORD_HDR_LEN + plen;
}

START_TEST(hand_built)
{
	struct record_codec *c = codec();
	struct record_keys k;
	uint8_t data[4096], packed[8192], rec[RECORD_HDR_LEN + 8192];
	uint8_t out[8192], id[RECORD_ID_LEN];
	size_t plen, reclen, n;
	ZSTD_CCtx *z = ZSTD_createCCtx();

	make_keys(&k, 13);
	fill_text(data, sizeof(data), 13);
	ck_assert_int_eq(record_chunk_id(c, &k, data, sizeof(data), NULL, id), 0);

	/* A raw record exactly as documented decodes. */
	reclen = seal(&k, id, RECORD_AEAD, sizeof(data), data, sizeof(data),
		      rec);
	ck_assert_int_eq(record_decode(c, &k, id, rec, reclen, out,
				       sizeof(out), &n),
			 0);
	ck_assert_uint_eq(n, sizeof(data));
	ck_assert_mem_eq(out, data, sizeof(data));

	/* So does a zstd one. */
	plen = ZSTD_compress(packed, sizeof(packed), data, sizeof(data), 3);
	ck_assert(!ZSTD_isError(plen));
	ck_assert_uint_lt(plen, sizeof(data));
	reclen = seal(&k, id, RECORD_AEAD | RECORD_ZSTD, sizeof(data), packed,
		      plen, rec);
	ck_assert_int_eq(record_decode(c, &k, id, rec, reclen, out,
				       sizeof(out), &n),
			 0);
	ck_assert_uint_eq(n, sizeof(data));
	ck_assert_mem_eq(out, data, sizeof(data));

	/* Authentic, but the frame says another size: corrupt. */
	reclen = seal(&k, id, RECORD_AEAD | RECORD_ZSTD, sizeof(data) - 1,
		      packed, plen, rec);
	memset(out, 0xa5, sizeof(out));
	ck_assert_int_eq(record_decode(c, &k, id, rec, reclen, out,
				       sizeof(data) - 1, &n),
			 STRATA_ECORRUPT);
	ck_assert_uint_eq(out[sizeof(data) - 1], 0xa5);

	/* Authentic, but not zstd at all. */
	tu_fill(packed, 1000, 14);
	reclen = seal(&k, id, RECORD_AEAD | RECORD_ZSTD, sizeof(data), packed,
		      1000, rec);
	ck_assert_int_eq(record_decode(c, &k, id, rec, reclen, out,
				       sizeof(out), &n),
			 STRATA_ECORRUPT);

	/* Authentic, no content size in the frame. */
	ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(
		z, ZSTD_c_contentSizeFlag, 0)));
	plen = ZSTD_compress2(z, packed, sizeof(packed), data, sizeof(data));
	ck_assert(!ZSTD_isError(plen));
	reclen = seal(&k, id, RECORD_AEAD | RECORD_ZSTD, sizeof(data), packed,
		      plen, rec);
	ck_assert_int_eq(record_decode(c, &k, id, rec, reclen, out,
				       sizeof(out), &n),
			 STRATA_ECORRUPT);

	/* Authentic, frame truncated: content size right, data short. */
	plen = ZSTD_compress(packed, sizeof(packed), data, sizeof(data), 3);
	reclen = seal(&k, id, RECORD_AEAD | RECORD_ZSTD, sizeof(data), packed,
		      plen - 3, rec);
	memset(out, 0xa5, sizeof(out));
	ck_assert_int_eq(record_decode(c, &k, id, rec, reclen, out,
				       sizeof(out), &n),
			 STRATA_ECORRUPT);
	for (size_t i = 0; i < sizeof(data); i++)
		ck_assert(out[i] == 0xa5 || out[i] == 0);

	/* Authentic, two frames: more than raw_len once decompressed. */
	{
		size_t a = ZSTD_compress(packed, sizeof(packed), data,
					 sizeof(data) / 2, 3);
		size_t b = ZSTD_compress(packed + a, sizeof(packed) - a, data,
					 sizeof(data) / 2, 3);

		reclen = seal(&k, id, RECORD_AEAD | RECORD_ZSTD,
			      sizeof(data) / 2, packed, a + b, rec);
		memset(out, 0xa5, sizeof(out));
		ck_assert_int_eq(record_decode(c, &k, id, rec, reclen, out,
					       sizeof(out), &n),
				 STRATA_ECORRUPT);
		/* The first frame decoded in full, then was wiped. */
		for (size_t i = 0; i < sizeof(out); i++)
			ck_assert(out[i] == 0xa5 || out[i] == 0);
	}

	/* Authentic but without RECORD_AEAD in the header: refused. */
	reclen = seal(&k, id, 0, sizeof(data), data, sizeof(data), rec);
	ck_assert_int_eq(record_decode(c, &k, id, rec, reclen, out,
				       sizeof(out), &n),
			 STRATA_ECORRUPT);
	ZSTD_freeCCtx(z);
	record_codec_free(c);
}
END_TEST

/* The in-place zstd path clobbers rec; a fresh copy decodes again. */
START_TEST(codec_reuse)
{
	struct record_codec *c = codec();
	struct record_keys k[2];
	size_t len = 100000;
	uint8_t *data = tu_xmalloc(len), *back = tu_xmalloc(len);
	uint8_t *rec = tu_xmalloc(record_bound(len));
	uint8_t id[RECORD_ID_LEN];
	size_t reclen, n;

	make_keys(&k[0], 14);
	make_keys(&k[1], 15);
	for (int round = 0; round < 20; round++) {
		const struct record_keys *kk = &k[round & 1];

		if (round % 3)
			fill_text(data, len, (uint64_t)round);
		else
			tu_fill(data, len, (uint64_t)round);
		ck_assert_int_eq(record_chunk_id(c, kk, data, len, NULL, id), 0);
		ck_assert_int_eq(record_encode(c, kk, id, data, len, round % 4,
					       rec, &reclen),
				 0);
		ck_assert_int_eq(record_decode(c, kk, id, rec, reclen, back,
					       len, &n),
				 0);
		ck_assert_mem_eq(back, data, len);
	}
	free(data);
	free(back);
	free(rec);
	record_codec_free(c);
	record_codec_free(NULL);
}
END_TEST

/*
 * record_decode_fill: the record arrives as the decoder asks for it.  Bytes
 * not yet filled are poison, so a decoder that looked past what it asked
 * for would fail the crc; the fill stops with -EAGAIN after fail_at bytes.
 */
struct fill_src {
	const uint8_t *src;		/* the whole record */
	uint8_t *rec;			/* what the decoder sees */
	size_t reclen, have, calls, fail_at;
};

static int fill_exact(void *arg, size_t upto)
{
	struct fill_src *f = arg;

	ck_assert_uint_le(upto, f->reclen);
	if (f->calls++ == 0)
		ck_assert_uint_eq(upto, RECORD_HDR_LEN);
	if (upto <= f->have)
		return 0;
	if (upto > f->fail_at) {
		memcpy(f->rec + f->have, f->src + f->have, f->fail_at - f->have);
		f->have = f->fail_at;
		return -EAGAIN;
	}
	memcpy(f->rec + f->have, f->src + f->have, upto - f->have);
	f->have = upto;
	return 0;
}

static void fill_case(int zlevel, bool text, bool in_place)
{
	struct record_codec *c = codec();
	struct record_keys k;
	size_t len = 4 * MiB + 12345, reclen, n = 0;
	uint8_t *data = tu_xmalloc(len), *src = tu_xmalloc(record_bound(len));
	uint8_t *rec = tu_xmalloc(record_bound(len)), *back = NULL, *out;
	uint8_t id[RECORD_ID_LEN];
	struct fill_src f = { 0 };
	struct record_hdr h;

	make_keys(&k, 21);
	if (text)
		fill_text(data, len, 5);
	else
		tu_fill(data, len, 5);
	ck_assert_int_eq(record_chunk_id(c, &k, data, len, NULL, id), 0);
	ck_assert_int_eq(record_encode(c, &k, id, data, len, zlevel, src,
				       &reclen), 0);
	ck_assert_int_eq(record_parse_header(src, &h), 0);
	ck_assert_int_eq(!!(h.flags & RECORD_ZSTD), text);
	if (!in_place)
		back = tu_xmalloc(len);
	out = in_place ? rec + RECORD_HDR_LEN : back;

	/* Whole: every byte filled, in order, nothing past what was asked. */
	memset(rec, 0xa5, reclen);
	f = (struct fill_src){ src, rec, reclen, 0, 0, SIZE_MAX };
	ck_assert_int_eq(record_decode_fill(c, &k, id, rec, reclen, out, len,
					    &n, fill_exact, &f), 0);
	ck_assert_uint_eq(n, len);
	ck_assert_uint_eq(f.have, reclen);
	ck_assert_uint_gt(f.calls, 2);
	ck_assert(memcmp(out, data, len) == 0);

	/* Cut off in the header, in the first stride and half way: fill's
	 * error comes back and the output holds no plaintext. */
	{
		const size_t cuts[] = { 10, RECORD_HDR_LEN + 1000, reclen / 2 };

		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			memset(rec, 0xa5, reclen);
			if (back)
				memset(back, 0xa5, len);
			f = (struct fill_src){ src, rec, reclen, 0, 0, cuts[i] };
			ck_assert_int_eq(record_decode_fill(c, &k, id, rec,
							    reclen, out, len,
							    &n, fill_exact, &f),
					 -EAGAIN);
			if (!in_place) {
				/* Untouched, or wiped. */
				for (size_t j = 0; j < len; j++)
					if (back[j] != 0xa5)
						ck_assert_uint_eq(back[j], 0);
			} else if (cuts[i] > RECORD_HDR_LEN) {
				/* Wiped up to where decryption got. */
				for (size_t j = RECORD_HDR_LEN; j < cuts[i] -
				     cuts[i] % (128u << 10); j++)
					if (rec[j] != 0)
						ck_abort_msg("plaintext left at %zu", j);
			}
		}
	}
	/* A damaged byte in a late piece is still caught. */
	{
		uint8_t *bad = tu_xmalloc(reclen);

		memcpy(bad, src, reclen);
		bad[reclen - 5] ^= 1;
		memset(rec, 0xa5, reclen);
		f = (struct fill_src){ bad, rec, reclen, 0, 0, SIZE_MAX };
		ck_assert_int_eq(record_decode_fill(c, &k, id, rec, reclen, out,
						    len, &n, fill_exact, &f),
				 STRATA_ECORRUPT);
		free(bad);
	}
	free(data);
	free(src);
	free(rec);
	free(back);
	record_codec_free(c);
}

START_TEST(fill_raw_in_place) { fill_case(3, false, true); }
END_TEST
START_TEST(fill_raw) { fill_case(3, false, false); }
END_TEST
START_TEST(fill_zstd) { fill_case(3, true, false); }
END_TEST

static Suite *record_suite(void)
{
	Suite *s = suite_create("record");
	TCase *tc = tcase_create("roundtrip");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, roundtrip_incompressible, 0, NSIZES);
	tcase_add_loop_test(tc, roundtrip_compressible, 0, NSIZES);
	tcase_add_test(tc, compressed_is_smaller);
	tcase_add_test(tc, threshold);
	tcase_add_test(tc, bound);
	tcase_add_test(tc, encode_too_large);
	tcase_add_test(tc, encode_max);
	tcase_add_test(tc, codec_reuse);
	tcase_add_test(tc, fill_raw_in_place);
	tcase_add_test(tc, fill_raw);
	tcase_add_test(tc, fill_zstd);
	suite_add_tcase(s, tc);

	tc = tcase_create("id");
	tcase_add_test(tc, chunk_id);
	tcase_add_test(tc, chunk_id_large);
	tcase_add_test(tc, crc32c);
	suite_add_tcase(s, tc);

	tc = tcase_create("damage");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, flip_raw);
	tcase_add_test(tc, flip_zstd);
	tcase_add_test(tc, wrong_keys);
	tcase_add_test(tc, bad_lengths);
	tcase_add_test(tc, cap_respected);
	tcase_add_test(tc, version_and_flags);
	tcase_add_test(tc, nonce_fresh);
	tcase_add_test(tc, marker);
	tcase_add_test(tc, hand_built);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(record_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
