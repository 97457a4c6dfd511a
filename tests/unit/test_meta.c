// SPDX-License-Identifier: Apache-2.0
/*
 * meta: every value type round-trips bit-exactly (edge values, limits), the
 * layouts are pinned by golden bytes, every decoder refuses truncation,
 * trailing bytes, unknown versions and out-of-limit counts with the exact
 * code, composite keys sort numerically, and user names are validated.
 *
 * Encodings under test live in buffers of exactly their length (malloc'd),
 * so ASan catches any read past the end.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strata/error.h"
#include "meta.h"
#include "testutil.h"
#include "banned.h"

/* ---- helpers ---- */

static uint8_t *dup_bytes(const void *src, size_t len)
{
	uint8_t *p = tu_xmalloc(len ? len : 1);

	if (len)
		memcpy(p, src, len);
	return p;
}

static uint8_t *obj_enc(const struct meta_object *o, size_t *len)
{
	size_t n = meta_object_size(o);
	uint8_t *buf = tu_xmalloc(n);

	ck_assert_uint_eq(meta_object_encode(o, buf), n);
	*len = n;
	return buf;
}

static void kvs_eq(const struct meta_kv *a, const struct meta_kv *b,
		   uint16_t n)
{
	for (uint16_t i = 0; i < n; i++) {
		ck_assert_uint_eq(a[i].keylen, b[i].keylen);
		ck_assert_uint_eq(a[i].vallen, b[i].vallen);
		if (a[i].keylen)
			ck_assert_mem_eq(a[i].key, b[i].key, a[i].keylen);
		if (a[i].vallen)
			ck_assert_mem_eq(a[i].val, b[i].val, a[i].vallen);
	}
}

static void obj_eq(const struct meta_object *a, const struct meta_object *b)
{
	ck_assert_uint_eq(a->flags, b->flags);
	ck_assert_uint_eq(a->size, b->size);
	ck_assert_uint_eq(a->hlc, b->hlc);
	ck_assert_uint_eq(a->writer, b->writer);
	ck_assert_uint_eq(a->mtime_ms, b->mtime_ms);
	ck_assert_uint_eq(a->chunk_size, b->chunk_size);
	ck_assert_mem_eq(a->etag, b->etag, sizeof(a->etag));
	ck_assert_uint_eq(a->ctypelen, b->ctypelen);
	if (a->ctypelen)
		ck_assert_mem_eq(a->ctype, b->ctype, a->ctypelen);
	ck_assert_uint_eq(a->nmeta, b->nmeta);
	kvs_eq(a->meta, b->meta, a->nmeta);
	ck_assert_uint_eq(a->ntags, b->ntags);
	kvs_eq(a->tags, b->tags, a->ntags);
	ck_assert_uint_eq(a->nchunks, b->nchunks);
	/* No ck_assert per chunk: in fork mode each passing one writes to a
	 * pipe, which makes a million-chunk comparison take minutes. */
	for (uint32_t i = 0; i < a->nchunks; i++) {
		if (memcmp(a->chunks[i].id, b->chunks[i].id, RECORD_ID_LEN) ||
		    a->chunks[i].raw_len != b->chunks[i].raw_len)
			ck_abort_msg("chunk %u of %u differs", i, a->nchunks);
	}
}

static int in_buf(const void *p, const uint8_t *buf, size_t len)
{
	const uint8_t *q = p;

	return q >= buf && q <= buf + len;
}

/* Encode, decode, compare fields, re-encode and compare bytes. */
static void obj_roundtrip(const struct meta_object *o)
{
	struct meta_object *d = NULL;
	uint8_t *buf, *again;
	size_t len;

	buf = obj_enc(o, &len);
	ck_assert_int_eq(meta_object_decode(buf, len, &d), 0);
	ck_assert_ptr_nonnull(d);
	obj_eq(o, d);
	/* Strings are not copied: they point into the caller's buffer. */
	ck_assert(in_buf(d->ctype, buf, len));
	for (uint16_t i = 0; i < d->nmeta; i++)
		ck_assert(in_buf(d->meta[i].key, buf, len) &&
			  in_buf(d->meta[i].val, buf, len));
	for (uint16_t i = 0; i < d->ntags; i++)
		ck_assert(in_buf(d->tags[i].key, buf, len) &&
			  in_buf(d->tags[i].val, buf, len));
	if (d->nmeta == 0)
		ck_assert_ptr_null(d->meta);
	if (d->ntags == 0)
		ck_assert_ptr_null(d->tags);
	if (d->nchunks == 0)
		ck_assert_ptr_null(d->chunks);
	ck_assert_uint_eq(meta_object_size(d), len);
	again = tu_xmalloc(len);
	ck_assert_uint_eq(meta_object_encode(d, again), len);
	ck_assert_mem_eq(again, buf, len);
	free(again);
	meta_object_free(d);
	free(buf);
}

/* Decoders behind one signature, for the table-driven checks. */
typedef int (*decode_fn)(const uint8_t *buf, size_t len);

static int dec_object(const uint8_t *buf, size_t len)
{
	struct meta_object sentinel;
	struct meta_object *o = &sentinel;
	int rc = meta_object_decode(buf, len, &o);

	if (rc == 0) {
		ck_assert_ptr_nonnull(o);
		meta_object_free(o);
	} else {
		ck_assert_ptr_null(o);
	}
	return rc;
}

static int dec_bucket(const uint8_t *buf, size_t len)
{
	struct meta_bucket b;

	return meta_bucket_decode(buf, len, &b);
}

static int dec_chunk(const uint8_t *buf, size_t len)
{
	struct meta_chunk c;

	return meta_chunk_decode(buf, len, &c);
}

static int dec_segment(const uint8_t *buf, size_t len)
{
	struct meta_segment s;

	return meta_segment_decode(buf, len, &s);
}

static int dec_copy(decode_fn dec, const uint8_t *src, size_t len)
{
	uint8_t *p = dup_bytes(src, len);
	int rc = dec(p, len);

	free(p);
	return rc;
}

/* Every proper prefix of enc (which must decode) is STRATA_ECORRUPT.
 * step > 1 samples the prefixes, always including the last 64. */
static void check_prefixes(decode_fn dec, const uint8_t *enc, size_t len,
			   size_t step)
{
	ck_assert_int_eq(dec_copy(dec, enc, len), 0);
	for (size_t i = 0; i < len; i++) {
		if (i % step && i + 64 < len)
			continue;
		ck_assert_msg(dec_copy(dec, enc, i) == STRATA_ECORRUPT,
			      "prefix %zu of %zu not refused", i, len);
	}
}

static void check_trailing(decode_fn dec, const uint8_t *enc, size_t len)
{
	static const size_t extra[] = { 1, 2, 7, 4096 };

	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		for (int fill = 0; fill < 2; fill++) {
			uint8_t *p = tu_xmalloc(len + extra[i]);

			memcpy(p, enc, len);
			memset(p + len, fill ? 0xff : 0, extra[i]);
			ck_assert_int_eq(dec(p, len + extra[i]),
					 STRATA_ECORRUPT);
			free(p);
		}
	}
}

static void check_versions(decode_fn dec, const uint8_t *enc, size_t len)
{
	static const uint8_t bad[] = { 0, 2, 0x7f, 0x80, 0xff };

	for (size_t i = 0; i < sizeof(bad); i++) {
		uint8_t *p = dup_bytes(enc, len);

		p[0] = bad[i];
		ck_assert_int_eq(dec(p, len), STRATA_EFORMAT);
		/* A newer version may be any length: still EFORMAT. */
		ck_assert_int_eq(dec(p, 1), STRATA_EFORMAT);
		ck_assert_int_eq(dec(p, len > 3 ? len - 3 : 1), STRATA_EFORMAT);
		free(p);
	}
}

static void check_all_rejects(decode_fn dec, const uint8_t *enc, size_t len)
{
	check_prefixes(dec, enc, len, 1);
	check_trailing(dec, enc, len);
	check_versions(dec, enc, len);
}

/* ---- a sample object ---- */

struct sample {
	struct meta_object o;
	struct meta_kv meta[2];
	struct meta_kv tags[1];
	struct meta_chunkref chunks[3];
};

static void sample_init(struct sample *s)
{
	memset(s, 0, sizeof(*s));
	s->meta[0] = (struct meta_kv){ "color", 5, "blue", 4 };
	s->meta[1] = (struct meta_kv){ "empty", 5, "", 0 };
	s->tags[0] = (struct meta_kv){ "env", 3, "prod", 4 };
	for (int i = 0; i < 3; i++)
		tu_fill(s->chunks[i].id, RECORD_ID_LEN, 100 + (uint64_t)i);
	s->chunks[0].raw_len = 65536;
	s->chunks[1].raw_len = 65536;
	s->chunks[2].raw_len = 17;
	s->o.flags = 0;
	s->o.size = 65536 * 2 + 17;
	s->o.hlc = 0x0123456789abcdefull;
	s->o.writer = 3;
	s->o.mtime_ms = 1700000000000ull;
	s->o.chunk_size = 65536;
	tu_fill(s->o.etag, sizeof(s->o.etag), 7);
	s->o.ctype = "text/plain";
	s->o.ctypelen = 10;
	s->o.nmeta = 2;
	s->o.meta = s->meta;
	s->o.ntags = 1;
	s->o.tags = s->tags;
	s->o.nchunks = 3;
	s->o.chunks = s->chunks;
}

static int obj_decode_rc(const struct meta_object *o)
{
	size_t len;
	uint8_t *buf = obj_enc(o, &len);
	int rc = dec_object(buf, len);

	free(buf);
	return rc;
}

/* ---- object tests ---- */

START_TEST(test_object_roundtrip_sample)
{
	struct sample s;

	sample_init(&s);
	obj_roundtrip(&s.o);
}
END_TEST

START_TEST(test_object_roundtrip_empty)
{
	struct meta_object o;

	/* An empty object: no chunks, no strings at all. */
	memset(&o, 0, sizeof(o));
	obj_roundtrip(&o);
	ck_assert_uint_eq(meta_object_size(&o), 76);
}
END_TEST

START_TEST(test_object_roundtrip_tombstone)
{
	struct meta_object o;

	memset(&o, 0, sizeof(o));
	o.flags = META_OBJ_TOMBSTONE;
	o.hlc = UINT64_MAX;
	o.writer = UINT32_MAX;
	o.mtime_ms = UINT64_MAX;
	obj_roundtrip(&o);
}
END_TEST

START_TEST(test_object_roundtrip_extremes)
{
	struct meta_chunkref ck[2];
	struct meta_object o;

	memset(&o, 0, sizeof(o));
	memset(ck, 0xff, sizeof(ck));
	ck[0].raw_len = RECORD_MAX_RAW;
	ck[1].raw_len = 0;
	o.size = RECORD_MAX_RAW;
	o.hlc = UINT64_MAX;
	o.writer = UINT32_MAX;
	o.mtime_ms = UINT64_MAX;
	o.chunk_size = UINT32_MAX;
	memset(o.etag, 0xff, sizeof(o.etag));
	o.nchunks = 2;
	o.chunks = ck;
	obj_roundtrip(&o);
}
END_TEST

/* Every string and count at its limit. */
START_TEST(test_object_roundtrip_max)
{
	static char keys[META_KV_MAX][META_KV_KEY_MAX];
	static char vals[META_KV_MAX][META_KV_VAL_MAX];
	static char ctype[META_CTYPE_MAX];
	struct meta_kv meta[META_KV_MAX], tags[META_KV_MAX];
	struct meta_object o;
	uint8_t *buf;
	size_t len;

	tu_fill(keys, sizeof(keys), 1);
	tu_fill(vals, sizeof(vals), 2);
	memset(ctype, 'x', sizeof(ctype));
	for (int i = 0; i < META_KV_MAX; i++) {
		meta[i] = (struct meta_kv){ keys[i], META_KV_KEY_MAX,
					    vals[i], META_KV_VAL_MAX };
		tags[i] = (struct meta_kv){ vals[i], META_KV_KEY_MAX,
					    keys[i], META_KV_KEY_MAX };
	}
	memset(&o, 0, sizeof(o));
	o.ctype = ctype;
	o.ctypelen = META_CTYPE_MAX;
	o.nmeta = META_KV_MAX;
	o.meta = meta;
	o.ntags = META_KV_MAX;
	o.tags = tags;
	obj_roundtrip(&o);

	buf = obj_enc(&o, &len);
	check_prefixes(dec_object, buf, len, 97);
	check_trailing(dec_object, buf, len);
	free(buf);
}
END_TEST

START_TEST(test_object_limits)
{
	static char big[META_KV_VAL_MAX + 1];
	struct meta_kv kv[META_KV_MAX + 1];
	struct meta_object o;

	memset(big, 'b', sizeof(big));
	memset(&o, 0, sizeof(o));
	o.ctype = big;
	o.ctypelen = META_CTYPE_MAX + 1;
	ck_assert_int_eq(obj_decode_rc(&o), STRATA_ECORRUPT);
	o.ctypelen = META_CTYPE_MAX;
	ck_assert_int_eq(obj_decode_rc(&o), 0);

	for (int i = 0; i <= META_KV_MAX; i++)
		kv[i] = (struct meta_kv){ big, 1, big, 1 };
	o.meta = kv;
	o.nmeta = META_KV_MAX + 1;
	ck_assert_int_eq(obj_decode_rc(&o), STRATA_ECORRUPT);
	o.nmeta = META_KV_MAX;
	ck_assert_int_eq(obj_decode_rc(&o), 0);
	o.tags = kv;
	o.ntags = META_KV_MAX + 1;
	ck_assert_int_eq(obj_decode_rc(&o), STRATA_ECORRUPT);
	o.ntags = META_KV_MAX;
	ck_assert_int_eq(obj_decode_rc(&o), 0);

	/* Entry lengths, in metadata and in tags. */
	for (int t = 0; t < 2; t++) {
		struct meta_kv *e = &kv[5];

		o.nmeta = t == 0 ? 6 : 0;
		o.ntags = t == 1 ? 6 : 0;
		e->keylen = META_KV_KEY_MAX + 1;
		ck_assert_int_eq(obj_decode_rc(&o), STRATA_ECORRUPT);
		e->keylen = META_KV_KEY_MAX;
		ck_assert_int_eq(obj_decode_rc(&o), 0);
		e->vallen = META_KV_VAL_MAX + 1;
		ck_assert_int_eq(obj_decode_rc(&o), STRATA_ECORRUPT);
		e->vallen = META_KV_VAL_MAX;
		ck_assert_int_eq(obj_decode_rc(&o), 0);
		e->keylen = 0;
		e->vallen = 0;
		ck_assert_int_eq(obj_decode_rc(&o), 0);
	}
}
END_TEST

START_TEST(test_object_chunk_rules)
{
	struct sample s;

	sample_init(&s);
	s.o.size++;
	ck_assert_int_eq(obj_decode_rc(&s.o), STRATA_ECORRUPT);
	s.o.size -= 2;
	ck_assert_int_eq(obj_decode_rc(&s.o), STRATA_ECORRUPT);
	s.o.size = 0;
	ck_assert_int_eq(obj_decode_rc(&s.o), STRATA_ECORRUPT);
	s.o.size = 65536 * 2 + 17;
	ck_assert_int_eq(obj_decode_rc(&s.o), 0);

	/* A chunk larger than a record can hold. */
	s.chunks[2].raw_len = RECORD_MAX_RAW + 1;
	s.o.size = 65536 * 2 + (uint64_t)RECORD_MAX_RAW + 1;
	ck_assert_int_eq(obj_decode_rc(&s.o), STRATA_ECORRUPT);
	s.chunks[2].raw_len = RECORD_MAX_RAW;
	s.o.size--;
	ck_assert_int_eq(obj_decode_rc(&s.o), 0);

	/* Tombstones carry nothing: not chunks (even with a consistent
	 * size), not a size. */
	s.o.flags = META_OBJ_TOMBSTONE;
	ck_assert_int_eq(obj_decode_rc(&s.o), STRATA_ECORRUPT);
	s.o.size = 0;
	ck_assert_int_eq(obj_decode_rc(&s.o), STRATA_ECORRUPT);
	s.chunks[0].raw_len = 0;
	s.o.nchunks = 1;
	ck_assert_int_eq(obj_decode_rc(&s.o), STRATA_ECORRUPT);
	s.o.nchunks = 0;
	s.o.size = 5;
	ck_assert_int_eq(obj_decode_rc(&s.o), STRATA_ECORRUPT);
	s.o.size = 0;
	ck_assert_int_eq(obj_decode_rc(&s.o), 0);

	/* Unknown flag bits. */
	s.o.flags = 0x04;
	ck_assert_int_eq(obj_decode_rc(&s.o), STRATA_ECORRUPT);
	s.o.flags = 0x80 | META_OBJ_TOMBSTONE;
	ck_assert_int_eq(obj_decode_rc(&s.o), STRATA_ECORRUPT);
}
END_TEST

START_TEST(test_object_inline)
{
	uint8_t rec[RECORD_HDR_LEN + 101], *buf;	/* one spare byte */
	struct meta_chunkref ref = { .raw_len = 100 };
	struct meta_object o = { 0 }, *d;
	size_t len;

	for (size_t i = 0; i < sizeof(rec); i++)
		rec[i] = (uint8_t)(i * 13);
	memset(ref.id, 7, sizeof(ref.id));
	o.flags = META_OBJ_INLINE;
	o.size = 100;
	o.nchunks = 1;
	o.chunks = &ref;
	o.inl = rec;
	o.inlen = RECORD_HDR_LEN + 100;
	buf = obj_enc(&o, &len);
	ck_assert_int_eq(meta_object_decode(buf, len, &d), 0);
	ck_assert_uint_eq(d->inlen, RECORD_HDR_LEN + 100);
	ck_assert(d->inl >= buf && d->inl + d->inlen == buf + len);
	ck_assert_mem_eq(d->inl, rec, RECORD_HDR_LEN + 100);
	meta_object_free(d);
	check_all_rejects(dec_object, buf, len);
	free(buf);

	/* A record shorter than its header, or with more payload than
	 * plaintext, is not a record. */
	o.inlen = RECORD_HDR_LEN - 1;
	ck_assert_int_eq(obj_decode_rc(&o), STRATA_ECORRUPT);
	o.inlen = RECORD_HDR_LEN;
	ck_assert_int_eq(obj_decode_rc(&o), 0);
	o.inlen = RECORD_HDR_LEN + 101;
	ck_assert_int_eq(obj_decode_rc(&o), STRATA_ECORRUPT);
	o.inlen = RECORD_HDR_LEN + 100;
	/* Exactly one chunk, small enough; never a tombstone. */
	o.nchunks = 0;
	o.size = 0;
	ck_assert_int_eq(obj_decode_rc(&o), STRATA_ECORRUPT);
	o.nchunks = 1;
	o.size = 100;
	o.flags = META_OBJ_INLINE | META_OBJ_TOMBSTONE;
	ck_assert_int_eq(obj_decode_rc(&o), STRATA_ECORRUPT);
	o.flags = META_OBJ_INLINE;
	ref.raw_len = META_INLINE_MAX + 1;
	o.size = META_INLINE_MAX + 1;
	ck_assert_int_eq(obj_decode_rc(&o), STRATA_ECORRUPT);
}
END_TEST

START_TEST(test_object_rejects)
{
	struct sample s;
	uint8_t *buf;
	size_t len;

	sample_init(&s);
	buf = obj_enc(&s.o, &len);
	check_all_rejects(dec_object, buf, len);
	free(buf);

	s.o.flags = META_OBJ_TOMBSTONE;
	s.o.size = 0;
	s.o.nchunks = 0;
	buf = obj_enc(&s.o, &len);
	check_all_rejects(dec_object, buf, len);
	free(buf);
}
END_TEST

/* Counts that promise more than the bytes hold are refused without
 * allocating for them (ASan would report a huge allocation or a leak). */
START_TEST(test_object_count_overstated)
{
	static const uint32_t counts[] = { 4, 1000, META_CHUNKS_MAX,
					   META_CHUNKS_MAX + 1, UINT32_MAX };
	struct sample s;
	uint8_t *buf;
	size_t len, at;

	sample_init(&s);
	buf = obj_enc(&s.o, &len);
	at = len - 3 * (RECORD_ID_LEN + 4) - 4;	/* the nchunks field */
	ck_assert_uint_eq(buf[at], 3);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		uint8_t *p = dup_bytes(buf, len);

		p[at] = (uint8_t)counts[i];
		p[at + 1] = (uint8_t)(counts[i] >> 8);
		p[at + 2] = (uint8_t)(counts[i] >> 16);
		p[at + 3] = (uint8_t)(counts[i] >> 24);
		ck_assert_int_eq(dec_object(p, len), STRATA_ECORRUPT);
		free(p);
	}
	/* Understated: the last chunk becomes trailing bytes. */
	buf[at] = 2;
	ck_assert_int_eq(dec_object(buf, len), STRATA_ECORRUPT);
	buf[at] = 3;
	ck_assert_int_eq(dec_object(buf, len), 0);

	/* nmeta, right after the 10-byte content type: overstated (3 of 2)
	 * and understated (1 of 2). */
	at = 1 + 1 + 8 + 8 + 4 + 8 + 4 + 32 + 2 + 10;
	ck_assert_uint_eq(buf[at], 2);
	buf[at] = 3;
	ck_assert_int_eq(dec_object(buf, len), STRATA_ECORRUPT);
	buf[at] = 1;
	ck_assert_int_eq(dec_object(buf, len), STRATA_ECORRUPT);
	buf[at + 1] = 0xff;	/* 65281 entries */
	ck_assert_int_eq(dec_object(buf, len), STRATA_ECORRUPT);
	free(buf);
}
END_TEST

/*
 * Any one-byte change either is refused with a corruption/format code or
 * decodes to something that re-encodes to exactly the changed bytes
 * (the encoding is canonical).
 */
START_TEST(test_object_mutations)
{
	static const uint8_t xors[] = { 0x01, 0x80, 0xff };
	struct sample s;
	uint8_t *buf;
	size_t len;
	unsigned ok = 0;

	sample_init(&s);
	buf = obj_enc(&s.o, &len);
	for (size_t i = 0; i < len; i++) {
		for (size_t x = 0; x < sizeof(xors); x++) {
			struct meta_object *d = NULL;
			uint8_t *p = dup_bytes(buf, len);
			int rc;

			p[i] ^= xors[x];
			rc = meta_object_decode(p, len, &d);
			if (rc == 0) {
				uint8_t *again = tu_xmalloc(len);

				ck_assert_uint_eq(meta_object_size(d), len);
				meta_object_encode(d, again);
				ck_assert_mem_eq(again, p, len);
				free(again);
				meta_object_free(d);
				ok++;
			} else {
				ck_assert_msg(rc == STRATA_ECORRUPT ||
					      (i == 0 && rc == STRATA_EFORMAT),
					      "byte %zu: rc %d", i, rc);
			}
			free(p);
		}
	}
	/* Most bytes (ids, etag, strings, clocks) are free-form. */
	ck_assert_uint_gt(ok, len);
	free(buf);
}
END_TEST

START_TEST(test_object_golden)
{
	struct meta_chunkref ck;
	struct meta_kv kv = { "k", 1, "v", 1 };
	struct meta_object o, *d = NULL;
	uint8_t want[128], got[128];
	size_t n = 0;

#define PUT(...) do { \
		static const uint8_t b_[] = { __VA_ARGS__ }; \
		memcpy(want + n, b_, sizeof(b_)); \
		n += sizeof(b_); \
	} while (0)
	PUT(0x01, 0x00);					/* ver, flags */
	PUT(0x05, 0, 0, 0, 0, 0, 0, 0);				/* size */
	PUT(0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01);	/* hlc */
	PUT(0x07, 0, 0, 0);					/* writer */
	PUT(0x09, 0x01, 0, 0, 0, 0, 0, 0);			/* mtime */
	PUT(0x00, 0x00, 0x01, 0x00);				/* chunk_size */
	memset(want + n, 0xee, 32);				/* etag */
	n += 32;
	PUT(0x01, 0x00, 'a');					/* ctype */
	PUT(0x01, 0x00, 0x01, 0x00, 'k', 0x01, 0x00, 'v');	/* meta */
	PUT(0x00, 0x00);					/* tags */
	PUT(0x01, 0x00, 0x00, 0x00);				/* nchunks */
	memset(want + n, 0x11, 32);				/* id */
	n += 32;
	PUT(0x05, 0x00, 0x00, 0x00);				/* raw_len */
#undef PUT

	memset(&o, 0, sizeof(o));
	memset(&ck, 0x11, sizeof(ck));
	ck.raw_len = 5;
	o.size = 5;
	o.hlc = 0x0102030405060708ull;
	o.writer = 7;
	o.mtime_ms = 0x109;
	o.chunk_size = 0x10000;
	memset(o.etag, 0xee, sizeof(o.etag));
	o.ctype = "a";
	o.ctypelen = 1;
	o.nmeta = 1;
	o.meta = &kv;
	o.nchunks = 1;
	o.chunks = &ck;
	ck_assert_uint_eq(meta_object_size(&o), n);
	ck_assert_uint_eq(meta_object_encode(&o, got), n);
	ck_assert_mem_eq(got, want, n);
	ck_assert_int_eq(meta_object_decode(want, n, &d), 0);
	obj_eq(&o, d);
	meta_object_free(d);
}
END_TEST

static void many_chunks(uint32_t n, int want)
{
	struct meta_chunkref *ck = tu_xmalloc((size_t)n * sizeof(*ck));
	struct meta_object o;

	for (uint32_t i = 0; i < n; i++) {
		memset(ck[i].id, 0, RECORD_ID_LEN);
		memcpy(ck[i].id, &i, sizeof(i));
		ck[i].raw_len = 1 + (i & 1);
	}
	memset(&o, 0, sizeof(o));
	o.size = n + n / 2;
	o.nchunks = n;
	o.chunks = ck;
	if (want == 0)
		obj_roundtrip(&o);
	else
		ck_assert_int_eq(obj_decode_rc(&o), want);
	free(ck);
}

START_TEST(test_object_many_chunks)
{
	many_chunks(1, 0);
	many_chunks(1000, 0);
	many_chunks(META_CHUNKS_MAX, 0);
	many_chunks(META_CHUNKS_MAX + 1, STRATA_ECORRUPT);
}
END_TEST

START_TEST(test_object_null_free)
{
	meta_object_free(NULL);
}
END_TEST

/* ---- bucket ---- */

static uint8_t *bucket_enc(const struct meta_bucket *b, size_t *len)
{
	size_t n = meta_bucket_size(b);
	uint8_t *buf = tu_xmalloc(n);

	ck_assert_uint_eq(meta_bucket_encode(b, buf), n);
	*len = n;
	return buf;
}

static void bucket_roundtrip(const struct meta_bucket *b)
{
	struct meta_bucket d;
	uint8_t *buf, *again;
	size_t len;

	buf = bucket_enc(b, &len);
	memset(&d, 0xa5, sizeof(d));
	ck_assert_int_eq(meta_bucket_decode(buf, len, &d), 0);
	ck_assert_uint_eq(d.id, b->id);
	ck_assert_uint_eq(d.ctime_ms, b->ctime_ms);
	ck_assert_uint_eq(d.wrappedlen, b->wrappedlen);
	if (b->wrappedlen)
		ck_assert_mem_eq(d.wrapped, b->wrapped, b->wrappedlen);
	ck_assert_uint_eq(d.attrslen, b->attrslen);
	if (b->attrslen)
		ck_assert_mem_eq(d.attrs, b->attrs, b->attrslen);
	ck_assert(in_buf(d.attrs, buf, len));
	again = tu_xmalloc(len);
	ck_assert_uint_eq(meta_bucket_encode(&d, again), len);
	ck_assert_mem_eq(again, buf, len);
	free(again);
	free(buf);
}

START_TEST(test_bucket_roundtrip)
{
	static char attrs[META_ATTRS_MAX];
	struct meta_bucket b;

	memset(&b, 0, sizeof(b));
	bucket_roundtrip(&b);
	ck_assert_uint_eq(meta_bucket_size(&b), 23);

	b.id = UINT64_MAX;
	b.ctime_ms = UINT64_MAX;
	b.wrappedlen = META_WRAPPED_MAX;
	tu_fill(b.wrapped, sizeof(b.wrapped), 9);
	tu_fill(attrs, sizeof(attrs), 10);
	b.attrs = attrs;
	b.attrslen = META_ATTRS_MAX;
	bucket_roundtrip(&b);

	b.id = 1;
	b.wrappedlen = 80;
	b.attrs = "{\"versioning\":true}";
	b.attrslen = 19;
	bucket_roundtrip(&b);
}
END_TEST

/* Bucket bytes built by hand, so lengths past the limits (which the
 * encoder's struct cannot hold) can be written; also pins the layout. */
static uint8_t *bucket_raw(uint16_t wlen, uint32_t alen, size_t *len)
{
	size_t n = 1 + 8 + 8 + 2 + wlen + 4 + alen, o = 0;
	uint8_t *p = tu_xmalloc(n);

	p[o++] = META_VERSION;
	for (int i = 0; i < 8; i++)
		p[o++] = (uint8_t)(0x1122334455667788ull >> (8 * i));
	for (int i = 0; i < 8; i++)
		p[o++] = (uint8_t)(0x99ull >> (8 * i));
	p[o++] = (uint8_t)wlen;
	p[o++] = (uint8_t)(wlen >> 8);
	memset(p + o, 0x5a, wlen);
	o += wlen;
	for (int i = 0; i < 4; i++)
		p[o++] = (uint8_t)(alen >> (8 * i));
	memset(p + o, 'a', alen);
	*len = n;
	return p;
}

START_TEST(test_bucket_golden_and_limits)
{
	static char attrs[META_ATTRS_MAX];
	struct meta_bucket b, d;
	uint8_t *raw, *enc;
	size_t rlen, elen;

	memset(&b, 0, sizeof(b));
	b.id = 0x1122334455667788ull;
	b.ctime_ms = 0x99;
	b.wrappedlen = META_WRAPPED_MAX;
	memset(b.wrapped, 0x5a, sizeof(b.wrapped));
	memset(attrs, 'a', sizeof(attrs));
	b.attrs = attrs;
	b.attrslen = META_ATTRS_MAX;
	raw = bucket_raw(META_WRAPPED_MAX, META_ATTRS_MAX, &rlen);
	enc = bucket_enc(&b, &elen);
	ck_assert_uint_eq(rlen, elen);
	ck_assert_mem_eq(raw, enc, rlen);
	ck_assert_int_eq(meta_bucket_decode(raw, rlen, &d), 0);
	free(raw);
	free(enc);

	raw = bucket_raw(META_WRAPPED_MAX + 1, 0, &rlen);
	ck_assert_int_eq(dec_bucket(raw, rlen), STRATA_ECORRUPT);
	free(raw);
	raw = bucket_raw(UINT16_MAX, 0, &rlen);
	ck_assert_int_eq(dec_bucket(raw, rlen), STRATA_ECORRUPT);
	free(raw);
	raw = bucket_raw(0, META_ATTRS_MAX + 1, &rlen);
	ck_assert_int_eq(dec_bucket(raw, rlen), STRATA_ECORRUPT);
	free(raw);
	/* A huge attrs length over a short buffer. */
	raw = bucket_raw(0, 0, &rlen);
	memset(raw + rlen - 4, 0xff, 4);
	ck_assert_int_eq(dec_bucket(raw, rlen), STRATA_ECORRUPT);
	free(raw);
}
END_TEST

START_TEST(test_bucket_rejects)
{
	struct meta_bucket b;
	uint8_t *buf;
	size_t len;

	memset(&b, 0, sizeof(b));
	b.id = 42;
	b.wrappedlen = 40;
	tu_fill(b.wrapped, b.wrappedlen, 3);
	b.attrs = "{}";
	b.attrslen = 2;
	buf = bucket_enc(&b, &len);
	check_all_rejects(dec_bucket, buf, len);
	free(buf);

	memset(&b, 0, sizeof(b));
	buf = bucket_enc(&b, &len);
	check_all_rejects(dec_bucket, buf, len);
	free(buf);
}
END_TEST

/* ---- chunk and segment ---- */

START_TEST(test_chunk_roundtrip_golden)
{
	static const uint8_t want[META_CHUNK_LEN] = {
		0x01,						/* ver */
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,	/* seg */
		0x10, 0x00, 0, 0, 0, 0, 0, 0,			/* off */
		0x60, 0x01, 0x00, 0x00,				/* rec_len */
		0x00, 0x01, 0x00, 0x00,				/* raw_len */
		0x02, 0x00, 0x00, 0x00,				/* refs */
		0x01,						/* tier */
		0xff, 0xee, 0, 0, 0, 0, 0, 0,			/* atime */
	};
	struct meta_chunk c = {
		.seg = 0x0102030405060708ull, .off = 0x10, .rec_len = 0x160,
		.raw_len = 0x100, .refs = 2, .tier = 1, .atime_ms = 0xeeff,
	};
	struct meta_chunk d, m;
	uint8_t got[META_CHUNK_LEN];

	ck_assert_uint_eq(meta_chunk_encode(&c, got), META_CHUNK_LEN);
	ck_assert_mem_eq(got, want, META_CHUNK_LEN);
	ck_assert_int_eq(meta_chunk_decode(want, META_CHUNK_LEN, &d), 0);
	ck_assert(d.seg == c.seg && d.off == c.off && d.rec_len == c.rec_len &&
		  d.raw_len == c.raw_len && d.refs == c.refs &&
		  d.tier == c.tier && d.atime_ms == c.atime_ms);

	m = (struct meta_chunk){ UINT64_MAX, UINT64_MAX, UINT32_MAX,
				 RECORD_MAX_RAW, UINT32_MAX, UINT8_MAX,
				 UINT64_MAX };
	ck_assert_uint_eq(meta_chunk_encode(&m, got), META_CHUNK_LEN);
	ck_assert_int_eq(meta_chunk_decode(got, META_CHUNK_LEN, &d), 0);
	ck_assert(d.seg == m.seg && d.off == m.off && d.rec_len == m.rec_len &&
		  d.raw_len == m.raw_len && d.refs == m.refs &&
		  d.tier == m.tier && d.atime_ms == m.atime_ms);
	memset(&m, 0, sizeof(m));
	ck_assert_uint_eq(meta_chunk_encode(&m, got), META_CHUNK_LEN);
	memset(&d, 0xa5, sizeof(d));
	ck_assert_int_eq(meta_chunk_decode(got, META_CHUNK_LEN, &d), 0);
	ck_assert(d.seg == 0 && d.off == 0 && d.rec_len == 0 &&
		  d.raw_len == 0 && d.refs == 0 && d.tier == 0 &&
		  d.atime_ms == 0);
}
END_TEST

START_TEST(test_chunk_rejects)
{
	struct meta_chunk c = { 1, 2, 3, 4, 5, 6, 7 };
	uint8_t buf[META_CHUNK_LEN];

	meta_chunk_encode(&c, buf);
	check_all_rejects(dec_chunk, buf, sizeof(buf));
	c.raw_len = RECORD_MAX_RAW + 1;
	meta_chunk_encode(&c, buf);
	ck_assert_int_eq(dec_copy(dec_chunk, buf, sizeof(buf)),
			 STRATA_ECORRUPT);
}
END_TEST

START_TEST(test_segment_roundtrip_golden)
{
	static const uint8_t want[META_SEGMENT_LEN] = {
		0x01, 0x02, 0x34, 0x12,				/* ver tier dir */
		0x00, 0x10, 0, 0, 0, 0, 0, 0,			/* live_bytes */
		0x03, 0, 0, 0, 0, 0, 0, 0x80,			/* live_count */
	};
	struct meta_segment s = { .tier = 2, .dir = 0x1234,
				  .live_bytes = 0x1000,
				  .live_count = 0x8000000000000003ull };
	struct meta_segment d, m;
	uint8_t got[META_SEGMENT_LEN];

	ck_assert_uint_eq(meta_segment_encode(&s, got), META_SEGMENT_LEN);
	ck_assert_mem_eq(got, want, META_SEGMENT_LEN);
	ck_assert_int_eq(meta_segment_decode(want, META_SEGMENT_LEN, &d), 0);
	ck_assert(d.tier == s.tier && d.dir == s.dir &&
		  d.live_bytes == s.live_bytes && d.live_count == s.live_count);

	m = (struct meta_segment){ UINT8_MAX, UINT16_MAX, UINT64_MAX,
				   UINT64_MAX };
	meta_segment_encode(&m, got);
	ck_assert_int_eq(meta_segment_decode(got, META_SEGMENT_LEN, &d), 0);
	ck_assert(d.tier == m.tier && d.dir == m.dir &&
		  d.live_bytes == m.live_bytes && d.live_count == m.live_count);
	memset(&m, 0, sizeof(m));
	meta_segment_encode(&m, got);
	memset(&d, 0xa5, sizeof(d));
	ck_assert_int_eq(meta_segment_decode(got, META_SEGMENT_LEN, &d), 0);
	ck_assert(d.tier == 0 && d.dir == 0 && d.live_bytes == 0 &&
		  d.live_count == 0);
}
END_TEST

START_TEST(test_segment_rejects)
{
	struct meta_segment s = { 1, 2, 3, 4 };
	uint8_t buf[META_SEGMENT_LEN];

	meta_segment_encode(&s, buf);
	check_all_rejects(dec_segment, buf, sizeof(buf));
}
END_TEST

/* ---- composite keys ---- */

/* RocksDB's default comparator: memcmp, then the shorter first. */
static int bytewise(const uint8_t *a, size_t alen, const uint8_t *b,
		    size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

START_TEST(test_be64)
{
	static const uint8_t want[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const uint64_t vals[] = { 0, 1, 0xff, 0x100, 0xffffffffull,
					 0x100000000ull, UINT64_MAX - 1,
					 UINT64_MAX };
	uint8_t b[8], prev[8];

	meta_put_be64(b, 0x0102030405060708ull);
	ck_assert_mem_eq(b, want, 8);
	ck_assert_uint_eq(meta_get_be64(want), 0x0102030405060708ull);
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		meta_put_be64(b, vals[i]);
		ck_assert_uint_eq(meta_get_be64(b), vals[i]);
		if (i)
			ck_assert_int_lt(memcmp(prev, b, 8), 0);
		memcpy(prev, b, 8);
	}
}
END_TEST

START_TEST(test_objkey_order)
{
	static const struct {
		uint64_t bucket;
		const char *key;
	} order[] = {
		{ 1, "a" }, { 1, "ab" }, { 1, "b" }, { 1, "\xc3\xa9" },
		{ 2, "a" }, { 0xff, "zzz" }, { 0x100, "a" },
		{ UINT64_MAX, "a" },
	};
	uint8_t prev[META_OBJKEY_MAX], cur[META_OBJKEY_MAX];
	size_t plen = 0, clen;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		size_t kl = strlen(order[i].key);

		clen = meta_objkey(order[i].bucket, order[i].key, kl, cur);
		ck_assert_uint_eq(clen, 8 + kl);
		ck_assert_uint_eq(meta_get_be64(cur), order[i].bucket);
		ck_assert_mem_eq(cur + 8, order[i].key, kl);
		if (i)
			ck_assert_msg(bytewise(prev, plen, cur, clen) < 0,
				      "key %zu not after key %zu", i, i - 1);
		memcpy(prev, cur, clen);
		plen = clen;
	}
}
END_TEST

START_TEST(test_objkey_max)
{
	static char key[META_KEY_MAX];
	uint8_t *out = tu_xmalloc(META_OBJKEY_MAX);

	memset(key, 'k', sizeof(key));
	ck_assert_uint_eq(meta_objkey(7, key, sizeof(key), out),
			  META_OBJKEY_MAX);
	ck_assert_mem_eq(out + 8, key, sizeof(key));
	free(out);
}
END_TEST

START_TEST(test_chunkkey_segkey)
{
	static const uint8_t seg_want[8] = { 0, 0, 0, 0, 0, 0, 0x01, 0x02 };
	uint8_t id[RECORD_ID_LEN], ck[META_CHUNKKEY_LEN], sk[META_SEGKEY_LEN];
	uint8_t a[META_CHUNKKEY_LEN];

	tu_fill(id, sizeof(id), 5);
	meta_chunkkey(0x0102, id, ck);
	ck_assert_uint_eq(meta_get_be64(ck), 0x0102);
	ck_assert_mem_eq(ck, seg_want, 8);
	ck_assert_mem_eq(ck + 8, id, RECORD_ID_LEN);
	/* Bucket id first: every chunk of bucket 1 sorts before bucket 2. */
	memset(id, 0xff, sizeof(id));
	meta_chunkkey(1, id, a);
	memset(id, 0, sizeof(id));
	meta_chunkkey(2, id, ck);
	ck_assert_int_lt(memcmp(a, ck, META_CHUNKKEY_LEN), 0);

	meta_segkey(0x0102, sk);
	ck_assert_mem_eq(sk, seg_want, 8);
}
END_TEST

START_TEST(test_segchunkkey_order)
{
	static const uint64_t order[][2] = {
		{ 0, 0 }, { 1, 0 }, { 1, 5 }, { 1, 255 }, { 1, 256 },
		{ 1, 1ull << 32 }, { 1, UINT64_MAX }, { 2, 0 },
		{ 256, 1 }, { UINT64_MAX, UINT64_MAX },
	};
	uint8_t prev[META_SEGCHUNKKEY_LEN], cur[META_SEGCHUNKKEY_LEN];

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		meta_segchunkkey(order[i][0], order[i][1], cur);
		ck_assert_uint_eq(meta_get_be64(cur), order[i][0]);
		ck_assert_uint_eq(meta_get_be64(cur + 8), order[i][1]);
		if (i)
			ck_assert_msg(memcmp(prev, cur, sizeof(cur)) < 0,
				      "segchunkkey %zu out of order", i);
		memcpy(prev, cur, sizeof(cur));
	}
}
END_TEST

/* ---- names ---- */

static int bucket_rc(const char *name)
{
	size_t len = strlen(name);
	uint8_t *p = dup_bytes(name, len);
	int rc = meta_check_bucket_name((const char *)p, len);

	free(p);
	return rc;
}

START_TEST(test_bucket_names)
{
	static const char *const good[] = {
		"abc", "my-bucket", "my.bucket.name", "a1b", "123", "1-2",
		"0.0.0", "1.2.3.4.5", "1.2.3.a", "1234.1.1.1", "a.b-c.d",
		"a-.-b",
	};
	static const char *const bad[] = {
		"", "a", "ab", "ABC", "Abc", "abC", "my_bucket", "-abc",
		"abc-", ".abc", "abc.", "a..b", "192.168.1.1", "1.2.3.4",
		"0.0.0.0", "999.999.999.999", "my bucket", "ab/c", "ab\xc3\xa9",
		"abc\n",
	};
	char max[META_BUCKET_MAX + 2];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(bucket_rc(good[i]) == 0, "refused \"%s\"",
			      good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(bucket_rc(bad[i]) == STRATA_EBADBUCKET,
			      "accepted \"%s\"", bad[i]);

	memset(max, 'a', sizeof(max));
	max[META_BUCKET_MAX] = '\0';
	ck_assert_int_eq(bucket_rc(max), 0);
	max[META_BUCKET_MAX] = 'a';
	max[META_BUCKET_MAX + 1] = '\0';
	ck_assert_int_eq(bucket_rc(max), STRATA_EBADBUCKET);
	/* Embedded NUL, and the length is what counts, not strlen(). */
	ck_assert_int_eq(meta_check_bucket_name("ab\0cd", 5),
			 STRATA_EBADBUCKET);
	ck_assert_int_eq(meta_check_bucket_name("abcdef", 3), 0);
	ck_assert_int_eq(meta_check_bucket_name("abc-ef", 4),
			 STRATA_EBADBUCKET);
	ck_assert_int_eq(meta_check_bucket_name(NULL, 0), STRATA_EBADBUCKET);
}
END_TEST

static int key_rc(const char *key, size_t len)
{
	uint8_t *p = dup_bytes(key, len);
	int rc = meta_check_key((const char *)p, len);

	free(p);
	return rc;
}

#define KEY_RC(lit) key_rc(lit, sizeof(lit) - 1)

START_TEST(test_keys)
{
	char *k = tu_xmalloc(META_KEY_MAX + 1);

	ck_assert_int_eq(KEY_RC(""), STRATA_EBADKEY);
	ck_assert_int_eq(meta_check_key(NULL, 0), STRATA_EBADKEY);
	memset(k, 'k', META_KEY_MAX + 1);
	ck_assert_int_eq(key_rc(k, META_KEY_MAX), 0);
	ck_assert_int_eq(key_rc(k, META_KEY_MAX + 1), STRATA_EBADKEY);
	/* The limit is bytes: 341 three-byte characters + 1 = 1024. */
	for (int i = 0; i < 341; i++)
		memcpy(k + 3 * i, "\xe4\xb8\xad", 3);
	k[1023] = 'x';
	ck_assert_int_eq(key_rc(k, 1024), 0);
	k[1024] = 'y';
	ck_assert_int_eq(key_rc(k, 1025), STRATA_EBADKEY);
	/* A 2-byte character straddling the limit. */
	memcpy(k + 1023, "\xc3\xa9", 2);
	ck_assert_int_eq(key_rc(k, 1024), STRATA_EBADKEY);
	free(k);

	ck_assert_int_eq(KEY_RC("a"), 0);
	ck_assert_int_eq(KEY_RC("photos/2024/01/img.jpg"), 0);
	ck_assert_int_eq(KEY_RC("caf\xc3\xa9"), 0);		/* é */
	ck_assert_int_eq(KEY_RC("\xe4\xb8\xad\xe6\x96\x87"), 0);	/* 中文 */
	ck_assert_int_eq(KEY_RC("\xf0\x9f\x98\x80.png"), 0);	/* 😀 */
	ck_assert_int_eq(KEY_RC("\x7f"), 0);
	ck_assert_int_eq(KEY_RC("\xc2\x80"), 0);		/* U+0080 */
	ck_assert_int_eq(KEY_RC("\xdf\xbf"), 0);		/* U+07FF */
	ck_assert_int_eq(KEY_RC("\xe0\xa0\x80"), 0);		/* U+0800 */
	ck_assert_int_eq(KEY_RC("\xed\x9f\xbf"), 0);		/* U+D7FF */
	ck_assert_int_eq(KEY_RC("\xee\x80\x80"), 0);		/* U+E000 */
	ck_assert_int_eq(KEY_RC("\xef\xbf\xbf"), 0);		/* U+FFFF */
	ck_assert_int_eq(KEY_RC("\xf0\x90\x80\x80"), 0);	/* U+10000 */
	ck_assert_int_eq(KEY_RC("\xf4\x8f\xbf\xbf"), 0);	/* U+10FFFF */
	/* Control characters other than NUL are allowed, as in S3. */
	ck_assert_int_eq(KEY_RC("a\tb\nc\x01"), 0);

	/* Overlong forms. */
	ck_assert_int_eq(KEY_RC("\xc0\xaf"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xc1\xbf"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xc0\x80"), STRATA_EBADKEY);	/* NUL */
	ck_assert_int_eq(KEY_RC("\xe0\x80\xaf"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xe0\x9f\xbf"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xf0\x80\x80\xaf"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xf0\x8f\xbf\xbf"), STRATA_EBADKEY);
	/* Surrogates. */
	ck_assert_int_eq(KEY_RC("\xed\xa0\x80"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xed\xbf\xbf"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xed\xa0\xbd\xed\xb8\x80"), STRATA_EBADKEY);
	/* Beyond U+10FFFF. */
	ck_assert_int_eq(KEY_RC("\xf4\x90\x80\x80"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xf5\x80\x80\x80"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xf8\x88\x80\x80\x80"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xff"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xfe"), STRATA_EBADKEY);
	/* Truncated sequences, at the end and in the middle. */
	ck_assert_int_eq(KEY_RC("\xe4\xb8"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("ab\xe4\xb8"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xe4\xb8x"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xc3"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xf0\x9f\x98"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xf0\x9f\x98x"), STRATA_EBADKEY);
	/* Stray continuation bytes. */
	ck_assert_int_eq(KEY_RC("\x80"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("a\xbf"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\xc3\xa9\xa9"), STRATA_EBADKEY);
	/* NUL anywhere. */
	ck_assert_int_eq(KEY_RC("a\0b"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("\0"), STRATA_EBADKEY);
	ck_assert_int_eq(KEY_RC("ab\0"), STRATA_EBADKEY);
}
END_TEST

/* Every 1- and 2-byte sequence, against the definition by code point. */
START_TEST(test_keys_exhaustive_short)
{
	for (unsigned a = 0; a < 256; a++) {
		unsigned char k1[1] = { (unsigned char)a };
		int want1 = (a >= 0x01 && a <= 0x7f) ? 0 : STRATA_EBADKEY;

		ck_assert_int_eq(key_rc((const char *)k1, 1), want1);
		for (unsigned b = 0; b < 256; b++) {
			unsigned char k2[2] = { (unsigned char)a,
						(unsigned char)b };
			int want;

			if (a >= 0xc2 && a <= 0xdf)
				want = (b >= 0x80 && b <= 0xbf) ? 0 :
					STRATA_EBADKEY;
			else
				want = (want1 == 0 && b >= 1 && b <= 0x7f) ?
					0 : STRATA_EBADKEY;
			if (key_rc((const char *)k2, 2) != want)
				ck_abort_msg("%02x %02x: want %d", a, b, want);
		}
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("meta");
	TCase *obj = tcase_create("object");
	TCase *bkt = tcase_create("bucket");
	TCase *fix = tcase_create("chunk_segment");
	TCase *keys = tcase_create("keys");
	TCase *names = tcase_create("names");
	SRunner *sr;
	int failed;

	tcase_add_test(obj, test_object_roundtrip_sample);
	tcase_add_test(obj, test_object_roundtrip_empty);
	tcase_add_test(obj, test_object_roundtrip_tombstone);
	tcase_add_test(obj, test_object_roundtrip_extremes);
	tcase_add_test(obj, test_object_roundtrip_max);
	tcase_add_test(obj, test_object_limits);
	tcase_add_test(obj, test_object_chunk_rules);
	tcase_add_test(obj, test_object_rejects);
	tcase_add_test(obj, test_object_inline);
	tcase_add_test(obj, test_object_count_overstated);
	tcase_add_test(obj, test_object_mutations);
	tcase_add_test(obj, test_object_golden);
	tcase_add_test(obj, test_object_many_chunks);
	tcase_add_test(obj, test_object_null_free);
	suite_add_tcase(s, obj);

	tcase_add_test(bkt, test_bucket_roundtrip);
	tcase_add_test(bkt, test_bucket_golden_and_limits);
	tcase_add_test(bkt, test_bucket_rejects);
	suite_add_tcase(s, bkt);

	tcase_add_test(fix, test_chunk_roundtrip_golden);
	tcase_add_test(fix, test_chunk_rejects);
	tcase_add_test(fix, test_segment_roundtrip_golden);
	tcase_add_test(fix, test_segment_rejects);
	suite_add_tcase(s, fix);

	tcase_add_test(keys, test_be64);
	tcase_add_test(keys, test_objkey_order);
	tcase_add_test(keys, test_objkey_max);
	tcase_add_test(keys, test_chunkkey_segkey);
	tcase_add_test(keys, test_segchunkkey_order);
	suite_add_tcase(s, keys);

	tcase_add_test(names, test_bucket_names);
	tcase_add_test(names, test_keys);
	tcase_add_test(names, test_keys_exhaustive_short);
	suite_add_tcase(s, names);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
