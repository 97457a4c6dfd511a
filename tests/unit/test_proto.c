// SPDX-License-Identifier: Apache-2.0
/*
 * proto: frame headers (golden bytes from PROTOCOL.md, every rejection),
 * typed fields (order, types, UTF-8, limits), every message codec (round
 * trips, canonical re-encoding, required fields, unknown and critical tags,
 * wire limits), body records and the BATCH_GET item stream.  Malformed
 * inputs are built by hand, byte by byte, so the decoder is checked against
 * the written format and not only against its own encoder.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "strata/error.h"
#include "testutil.h"
#include "banned.h"

#define BUF 70000

/* An independent bitwise CRC-32C, to check the spec, not the codec. */
static uint32_t ref_crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ ((c & 1) ? 0x82f63b78u : 0);
	}
	return ~c;
}

static void le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A header built from the spec's table, crc included. */
static void raw_header(uint8_t h[PROTO_HEADER_LEN], uint8_t version,
		       uint8_t op, uint16_t flags, uint64_t id,
		       uint32_t fields_len, uint32_t body_len,
		       uint32_t reserved)
{
	memcpy(h, "STRP", 4);
	h[4] = version;
	h[5] = op;
	le16(h + 6, flags);
	le64(h + 8, id);
	le32(h + 16, fields_len);
	le32(h + 20, body_len);
	le32(h + 24, reserved);
	le32(h + 28, 0);
	le32(h + 28, ref_crc32c(h, PROTO_HEADER_LEN));
}

static int decode_raw(uint8_t op, uint16_t flags, uint64_t id,
		      uint32_t fields_len, uint32_t body_len)
{
	uint8_t h[PROTO_HEADER_LEN];
	struct proto_header d;

	raw_header(h, 1, op, flags, id, fields_len, body_len, 0);
	return proto_header_decode(h, sizeof(h), &d);
}

/* Append one raw field (any tag order, any type, any length). */
static size_t raw_field(uint8_t *p, uint16_t tag, uint8_t type,
			const void *v, uint16_t len)
{
	le16(p, tag);
	p[2] = type;
	le16(p + 3, len);
	if (len)
		memcpy(p + 5, v, len);
	return 5 + (size_t)len;
}

/* Decode from an exact-size heap copy, so ASan sees any over-read. */
typedef int (*decode_fn)(const uint8_t *buf, size_t len, void *m);

static int decode_exact(decode_fn fn, const uint8_t *buf, size_t len,
			void *m)
{
	uint8_t *copy = tu_xmalloc(len ? len : 1);
	int rc;

	memcpy(copy, buf, len);
	rc = fn(copy, len, m);
	free(copy);
	return rc;
}

/* Each decoder as a decode_fn (no calls through mismatched types). */
#define WRAP(name)							\
	static int dec_##name(const uint8_t *b, size_t l, void *m)	\
	{								\
		return proto_##name##_decode(b, l, m);			\
	}
WRAP(hello_req)
WRAP(hello_resp)
WRAP(auth_req)
WRAP(auth_resp)
WRAP(error)
WRAP(bucket_req)
WRAP(bucket_list_req)
WRAP(bucket_list_resp)
WRAP(put_req)
WRAP(put_resp)
WRAP(object_req)
WRAP(get_req)
WRAP(get_resp)
WRAP(stat_resp)
WRAP(delete_resp)
WRAP(list_req)
WRAP(list_resp)
WRAP(keys_req)
WRAP(batch_resp)
WRAP(list_entry)

#define STR(lit) ((struct proto_str){ .s = (lit), .len = sizeof(lit) - 1 })

/* ---- Headers ----------------------------------------------------------- */

START_TEST(header_golden)
{
	/* PROTOCOL.md §2.2: GET request, END, id 0x0123456789abcdef, 64
	 * bytes of fields, no body. */
	static const uint8_t golden[PROTO_HEADER_LEN] = {
		0x53, 0x54, 0x52, 0x50, 0x01, 0x21, 0x02, 0x00,
		0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
		0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x3e, 0xaf, 0xf1, 0x83,
	};
	struct proto_header h = {
		.opcode = PROTO_OP_GET, .flags = PROTO_F_END,
		.id = 0x0123456789abcdefull, .fields_len = 64, .body_len = 0,
	};
	uint8_t out[PROTO_HEADER_LEN], zeroed[PROTO_HEADER_LEN];
	struct proto_header d;

	/* The crc convention: standard CRC-32C, check value. */
	ck_assert_uint_eq(ref_crc32c((const uint8_t *)"123456789", 9),
			  0xe3069283u);
	memcpy(zeroed, golden, sizeof(zeroed));
	memset(zeroed + 28, 0, 4);
	ck_assert_uint_eq(ref_crc32c(zeroed, 32), 0x83f1af3eu);

	ck_assert_int_eq(proto_header_encode(&h, out), 0);
	ck_assert_mem_eq(out, golden, sizeof(golden));
	ck_assert_int_eq(proto_header_decode(golden, sizeof(golden), &d), 0);
	ck_assert_uint_eq(d.opcode, PROTO_OP_GET);
	ck_assert_uint_eq(d.flags, PROTO_F_END);
	ck_assert_uint_eq(d.id, 0x0123456789abcdefull);
	ck_assert_uint_eq(d.fields_len, 64);
	ck_assert_uint_eq(d.body_len, 0);
}
END_TEST

START_TEST(header_roundtrip)
{
	static const struct proto_header cases[] = {
		{ PROTO_OP_HELLO, PROTO_F_END, 1, 10, 0 },
		{ PROTO_OP_PUT, 0, 7, PROTO_MAX_FIELDS_LEN,
		  PROTO_MAX_BODY_LEN },
		{ PROTO_OP_PUT, PROTO_F_CONT, 7, 0, 1 },
		{ PROTO_OP_PUT, PROTO_F_CONT | PROTO_F_END, 7, 0, 0 },
		{ PROTO_OP_GET, PROTO_F_RESPONSE, UINT64_MAX, 100, 5 },
		{ PROTO_OP_GET, PROTO_F_RESPONSE | PROTO_F_CONT |
		  PROTO_F_END | PROTO_F_ERROR, 9, 12, 0 },
		{ PROTO_OP_PUT, PROTO_F_RESPONSE | PROTO_F_END |
		  PROTO_F_ERROR, 9, 12, 0 },
		{ PROTO_OP_CANCEL, PROTO_F_END, 3, 0, 0 },
		{ PROTO_OP_GOAWAY, PROTO_F_RESPONSE | PROTO_F_END, 0, 6, 0 },
		{ PROTO_OP_BATCH_GET, PROTO_F_RESPONSE | PROTO_F_END, 4, 7,
		  300 },
		/* An opcode this build lacks passes: framing is intact. */
		{ 0x7f, 0, 5, 3, 9 },
		{ 0xff, PROTO_F_RESPONSE | PROTO_F_END, 5, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t out[PROTO_HEADER_LEN];
		struct proto_header d;

		ck_assert_int_eq(proto_header_encode(&cases[i], out), 0);
		ck_assert_int_eq(proto_header_decode(out, sizeof(out), &d), 0);
		ck_assert_uint_eq(d.opcode, cases[i].opcode);
		ck_assert_uint_eq(d.flags, cases[i].flags);
		ck_assert_uint_eq(d.id, cases[i].id);
		ck_assert_uint_eq(d.fields_len, cases[i].fields_len);
		ck_assert_uint_eq(d.body_len, cases[i].body_len);
	}
}
END_TEST

START_TEST(header_reject)
{
	uint8_t h[PROTO_HEADER_LEN];
	struct proto_header d, keep = { .opcode = 0x42, .id = 99 };

	/* Too short: ask for more. */
	raw_header(h, 1, PROTO_OP_PING, PROTO_F_END, 1, 0, 0, 0);
	ck_assert_int_eq(proto_header_decode(h, 31, &d), -EAGAIN);
	ck_assert_int_eq(proto_header_decode(h, 0, &d), -EAGAIN);
	ck_assert_int_eq(proto_header_decode(h, 32, &d), 0);

	/* Magic. */
	raw_header(h, 1, PROTO_OP_PING, PROTO_F_END, 1, 0, 0, 0);
	h[3] = 'Q';
	ck_assert_int_eq(proto_header_decode(h, 32, &d), STRATA_EPROTO);
	/* Version, before the crc: a v2 header may have another layout. */
	raw_header(h, 2, PROTO_OP_PING, PROTO_F_END, 1, 0, 0, 0);
	ck_assert_int_eq(proto_header_decode(h, 32, &d),
			 STRATA_EPROTOVERSION);
	raw_header(h, 0, PROTO_OP_PING, PROTO_F_END, 1, 0, 0, 0);
	ck_assert_int_eq(proto_header_decode(h, 32, &d),
			 STRATA_EPROTOVERSION);
	/* Reserved bytes must be zero even with a good crc. */
	raw_header(h, 1, PROTO_OP_PING, PROTO_F_END, 1, 0, 0, 1);
	ck_assert_int_eq(proto_header_decode(h, 32, &d), STRATA_EPROTO);

	/* Every single-bit flip is caught, and *h is left alone. */
	for (int bit = 0; bit < 8 * PROTO_HEADER_LEN; bit++) {
		int rc;

		raw_header(h, 1, PROTO_OP_PING, PROTO_F_END, 1, 0, 0, 0);
		h[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		d = keep;
		rc = proto_header_decode(h, 32, &d);
		if (bit / 8 == 4)
			ck_assert_int_eq(rc, STRATA_EPROTOVERSION);
		else
			ck_assert_int_eq(rc, STRATA_EPROTO);
		ck_assert_uint_eq(d.opcode, 0x42);
		ck_assert_uint_eq(d.id, 99);
	}

	/* Per-frame rules, each with a valid crc. */
	ck_assert_int_eq(decode_raw(0, PROTO_F_END, 1, 0, 0), STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_PING, PROTO_F_END | 0x10, 1, 0,
				    0), STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_PING, PROTO_F_END | 0x8000, 1,
				    0, 0), STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_PUT, 0, 1,
				    PROTO_MAX_FIELDS_LEN + 1, 0),
			 STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_PUT, 0, 1, 10,
				    PROTO_MAX_BODY_LEN + 1), STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_PUT, 0, 1, UINT32_MAX,
				    UINT32_MAX), STRATA_EPROTO);
	/* Id 0 is GOAWAY's alone. */
	ck_assert_int_eq(decode_raw(PROTO_OP_PING, PROTO_F_END, 0, 0, 0),
			 STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_PING, PROTO_F_RESPONSE |
				    PROTO_F_END, 0, 0, 0), STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_GOAWAY, PROTO_F_RESPONSE |
				    PROTO_F_END, 5, 6, 0), STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_GOAWAY, PROTO_F_END, 0, 6, 0),
			 STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_GOAWAY, PROTO_F_RESPONSE |
				    PROTO_F_END, 0, 0, 0), STRATA_EPROTO);
	/* ERROR: a response, last frame, fields, no body. */
	ck_assert_int_eq(decode_raw(PROTO_OP_GET, PROTO_F_ERROR | PROTO_F_END,
				    1, 6, 0), STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_GET, PROTO_F_ERROR |
				    PROTO_F_RESPONSE, 1, 6, 0), STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_GET, PROTO_F_ERROR |
				    PROTO_F_RESPONSE | PROTO_F_END, 1, 6, 1),
			 STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_GET, PROTO_F_ERROR |
				    PROTO_F_RESPONSE | PROTO_F_END, 1, 0, 0),
			 STRATA_EPROTO);
	/* Continuations carry no fields, and move forward unless last. */
	ck_assert_int_eq(decode_raw(PROTO_OP_PUT, PROTO_F_CONT, 1, 4, 4),
			 STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_PUT, PROTO_F_CONT, 1, 0, 0),
			 STRATA_EPROTO);
	/* Bodies only where the opcode has one, in that direction. */
	ck_assert_int_eq(decode_raw(PROTO_OP_GET, PROTO_F_END, 1, 4, 1),
			 STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_PUT, PROTO_F_RESPONSE |
				    PROTO_F_END, 1, 4, 1), STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_HINT, PROTO_F_END, 1, 4, 8),
			 STRATA_EPROTO);
	/* A message without a body is one frame. */
	ck_assert_int_eq(decode_raw(PROTO_OP_HELLO, 0, 1, 4, 0),
			 STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_HELLO, PROTO_F_CONT | PROTO_F_END,
				    1, 0, 0), STRATA_EPROTO);
	/* CANCEL: a bare request frame, never a response. */
	ck_assert_int_eq(decode_raw(PROTO_OP_CANCEL, PROTO_F_END, 1, 5, 0),
			 STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_CANCEL, PROTO_F_RESPONSE |
				    PROTO_F_END, 1, 0, 0), STRATA_EPROTO);
	ck_assert_int_eq(decode_raw(PROTO_OP_CANCEL, PROTO_F_END, 1, 0, 0), 0);
}
END_TEST

START_TEST(header_encode_refuses)
{
	static const struct proto_header bad[] = {
		{ 0, PROTO_F_END, 1, 0, 0 },
		{ PROTO_OP_PING, PROTO_F_END | 0x100, 1, 0, 0 },
		{ PROTO_OP_PING, PROTO_F_END, 0, 0, 0 },
		{ PROTO_OP_PUT, 0, 1, PROTO_MAX_FIELDS_LEN + 1, 0 },
		{ PROTO_OP_PUT, 0, 1, 0, PROTO_MAX_BODY_LEN + 1 },
		{ PROTO_OP_GET, PROTO_F_END, 1, 0, 10 },
		{ PROTO_OP_GET, PROTO_F_ERROR | PROTO_F_END, 1, 5, 0 },
	};
	uint8_t out[PROTO_HEADER_LEN], before[PROTO_HEADER_LEN];

	memset(out, 0xa5, sizeof(out));
	memcpy(before, out, sizeof(out));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(proto_header_encode(&bad[i], out), -EINVAL);
		ck_assert_mem_eq(out, before, sizeof(out));
	}
}
END_TEST

START_TEST(op_names)
{
	ck_assert_str_eq(proto_op_name(PROTO_OP_BATCH_GET), "BATCH_GET");
	ck_assert_str_eq(proto_op_name(PROTO_OP_HELLO), "HELLO");
	ck_assert_ptr_null(proto_op_name(0x7e));
	ck_assert(proto_op_has_body(PROTO_OP_PUT, false));
	ck_assert(!proto_op_has_body(PROTO_OP_PUT, true));
	ck_assert(proto_op_has_body(PROTO_OP_LIST, true));
	ck_assert(!proto_op_has_body(PROTO_OP_PING, false));
	ck_assert_str_eq(strata_strerror(STRATA_EPROTO),
			 "malformed protocol frame");
	ck_assert_str_eq(strata_strerror(STRATA_EPROTOVERSION),
			 "unsupported protocol version");
	ck_assert_int_le(STRATA_E_LAST, STRATA_EPROTOVERSION);
	/* Every rule of meta_check_bucket_name is named: "1.2.3.4" and
	 * "a..b" are refused, and the text must say why. */
	ck_assert_ptr_nonnull(strstr(strata_strerror(STRATA_EBADBUCKET),
				     "no '..'"));
	ck_assert_ptr_nonnull(strstr(strata_strerror(STRATA_EBADBUCKET),
				     "not an IPv4 address"));
}
END_TEST

/* ---- Fields ------------------------------------------------------------ */

START_TEST(fields_roundtrip)
{
	uint8_t buf[256];
	struct proto_writer w;
	struct proto_reader r;
	struct proto_field f;
	struct proto_str s;
	uint64_t u64;
	uint32_t u32;
	int32_t i32;
	size_t len;

	proto_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(proto_write_u8(&w, 1, 7), 0);
	ck_assert_int_eq(proto_write_bool(&w, 2, true), 0);
	ck_assert_int_eq(proto_write_u32(&w, 3, 0xdeadbeef), 0);
	ck_assert_int_eq(proto_write_i32(&w, 4, -30016), 0);
	ck_assert_int_eq(proto_write_u64(&w, 5, 0x1122334455667788ull), 0);
	ck_assert_int_eq(proto_write_bytes(&w, 6, "\0\1\2", 3), 0);
	ck_assert_int_eq(proto_write_str(&w, 7, "h\xc3\xa9llo", 6), 0);
	ck_assert_int_eq(proto_write_str(&w, 0x8001, "", 0), 0);
	ck_assert_int_eq(proto_writer_finish(&w, &len), 0);
	ck_assert_uint_eq(len, 8 * 5 + 1 + 1 + 4 + 4 + 8 + 3 + 6 + 0);

	/* Wire layout of the first field: tag, type, length, value. */
	ck_assert_mem_eq(buf, "\x01\x00\x01\x01\x00\x07", 6);

	proto_reader_init(&r, buf, len);
	ck_assert_int_eq(proto_fields_next(&r, &f), 1);
	ck_assert_uint_eq(f.tag, 1);
	ck_assert_uint_eq(f.val[0], 7);
	ck_assert_int_eq(proto_fields_next(&r, &f), 1);
	ck_assert_uint_eq(f.type, PROTO_T_BOOL);
	ck_assert_int_eq(proto_fields_next(&r, &f), 1);
	ck_assert_int_eq(proto_field_u32(&f, &u32), 0);
	ck_assert_uint_eq(u32, 0xdeadbeef);
	ck_assert_int_eq(proto_field_u64(&f, &u64), STRATA_EPROTO);
	ck_assert_int_eq(proto_fields_next(&r, &f), 1);
	ck_assert_int_eq(proto_field_i32(&f, &i32), 0);
	ck_assert_int_eq(i32, -30016);
	ck_assert_int_eq(proto_fields_next(&r, &f), 1);
	ck_assert_int_eq(proto_field_u64(&f, &u64), 0);
	ck_assert_uint_eq(u64, 0x1122334455667788ull);
	ck_assert_int_eq(proto_fields_next(&r, &f), 1);
	ck_assert_uint_eq(f.len, 3);
	ck_assert_int_eq(proto_field_str(&f, &s), STRATA_EPROTO);
	ck_assert_int_eq(proto_fields_next(&r, &f), 1);
	ck_assert_int_eq(proto_field_str(&f, &s), 0);
	ck_assert_uint_eq(s.len, 6);
	ck_assert_mem_eq(s.s, "h\xc3\xa9llo", 6);
	ck_assert_int_eq(proto_fields_next(&r, &f), 1);
	ck_assert_uint_eq(f.tag, 0x8001);
	ck_assert_uint_eq(f.len, 0);
	ck_assert_int_eq(proto_fields_next(&r, &f), 0);
	ck_assert_int_eq(proto_fields_next(&r, &f), 0);
}
END_TEST

START_TEST(fields_reject)
{
	static const char *const bad_utf8[] = {
		"\xc0\xaf",		/* overlong '/' */
		"\xe0\x80\xaf",		/* overlong */
		"\xed\xa0\x80",		/* surrogate */
		"\xf4\x90\x80\x80",	/* past U+10FFFF */
		"\xc3",			/* truncated */
		"a\xff",
		"\x80",			/* lone continuation */
		"\xf8\x88\x80\x80\x80",	/* 5-byte form */
	};
	uint8_t buf[64];
	struct proto_reader r;
	struct proto_field f;
	size_t n;

	/* Tags must ascend strictly: a duplicate and a descent. */
	n = raw_field(buf, 5, PROTO_T_U8, "\1", 1);
	n += raw_field(buf + n, 5, PROTO_T_U8, "\1", 1);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), 1);
	ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);
	n = raw_field(buf, 5, PROTO_T_U8, "\1", 1);
	n += raw_field(buf + n, 4, PROTO_T_U8, "\1", 1);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), 1);
	ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);
	/* Tag 0 is never valid. */
	n = raw_field(buf, 0, PROTO_T_U8, "\1", 1);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);

	/* Truncated field header and value. */
	n = raw_field(buf, 1, PROTO_T_U64, "12345678", 8);
	for (size_t cut = 1; cut < n; cut++) {
		proto_reader_init(&r, buf, cut);
		ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);
	}
	/* Fixed-size types with the wrong length; bool not 0/1. */
	n = raw_field(buf, 1, PROTO_T_U64, "1234567", 7);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);
	n = raw_field(buf, 1, PROTO_T_U32, "12345", 5);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);
	n = raw_field(buf, 1, PROTO_T_I32, "", 0);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);
	n = raw_field(buf, 1, PROTO_T_U8, "12", 2);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);
	n = raw_field(buf, 1, PROTO_T_BOOL, "\2", 1);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);

	/* Strings: UTF-8, no NUL. */
	n = raw_field(buf, 1, PROTO_T_STR, "a\0b", 3);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		n = raw_field(buf, 1, PROTO_T_STR, bad_utf8[i],
			      (uint16_t)strlen(bad_utf8[i]));
		proto_reader_init(&r, buf, n);
		ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);
	}
	n = raw_field(buf, 1, PROTO_T_STR, "\xf0\x9f\x98\x80\xe2\x82\xac", 7);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), 1);

	/* String lists: elements within the value, each UTF-8. */
	n = raw_field(buf, 1, PROTO_T_STRLIST, "\x02\x00" "ab" "\x05\x00" "c",
		      7);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);
	n = raw_field(buf, 1, PROTO_T_STRLIST, "\x02\x00" "ab" "\x01", 5);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);
	n = raw_field(buf, 1, PROTO_T_STRLIST, "\x01\x00" "\xff", 3);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), STRATA_EPROTO);

	/* A type of a later revision passes, unchecked. */
	n = raw_field(buf, 1, 200, "\xff\xff\xff", 3);
	proto_reader_init(&r, buf, n);
	ck_assert_int_eq(proto_fields_next(&r, &f), 1);
	ck_assert_uint_eq(f.type, 200);
}
END_TEST

START_TEST(fields_count_limit)
{
	uint8_t *buf = tu_xmalloc(BUF);
	struct proto_writer w;
	struct proto_reader r;
	struct proto_field f;
	size_t len, n = 0;
	int rc, got = 0;

	proto_writer_init(&w, buf, BUF);
	for (uint16_t t = 1; t <= PROTO_MAX_FIELDS; t++)
		ck_assert_int_eq(proto_write_u8(&w, t, 1), 0);
	ck_assert_int_eq(proto_write_u8(&w, 1000, 1), -ENOSPC);
	ck_assert_int_eq(proto_writer_finish(&w, &len), -ENOSPC);

	/* By hand: one field over the limit. */
	for (uint16_t t = 1; t <= PROTO_MAX_FIELDS + 1; t++)
		n += raw_field(buf + n, t, PROTO_T_U8, "\1", 1);
	proto_reader_init(&r, buf, n);
	while ((rc = proto_fields_next(&r, &f)) == 1)
		got++;
	ck_assert_int_eq(rc, STRATA_EPROTO);
	ck_assert_int_eq(got, PROTO_MAX_FIELDS);
	free(buf);
}
END_TEST

START_TEST(writer_errors)
{
	uint8_t buf[16];
	uint8_t *big = tu_xmalloc(BUF), *src = tu_xmalloc(BUF);
	struct proto_writer w;
	size_t len;

	memset(src, 'v', BUF);
	/* Out of order: sticky -EINVAL. */
	proto_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(proto_write_u8(&w, 2, 1), 0);
	ck_assert_int_eq(proto_write_u8(&w, 2, 1), -EINVAL);
	ck_assert_int_eq(proto_write_u8(&w, 3, 1), -EINVAL);
	ck_assert_int_eq(proto_writer_finish(&w, &len), -EINVAL);
	proto_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(proto_write_u8(&w, 0, 1), -EINVAL);

	/* Full: sticky -ENOSPC, nothing past cap. */
	memset(buf, 0xee, sizeof(buf));
	proto_writer_init(&w, buf, 14);
	ck_assert_int_eq(proto_write_u32(&w, 1, 1), 0);
	ck_assert_int_eq(proto_write_u32(&w, 2, 1), -ENOSPC);
	ck_assert_int_eq(proto_write_u8(&w, 3, 1), -ENOSPC);
	ck_assert_uint_eq(buf[14], 0xee);
	ck_assert_uint_eq(buf[15], 0xee);

	/* Bad strings. */
	proto_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(proto_write_str(&w, 1, "a\0", 2), -EINVAL);
	proto_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(proto_write_str(&w, 1, "\xc0\x80", 2), -EINVAL);

	/* Capacity is clipped to PROTO_MAX_FIELDS_LEN. */
	proto_writer_init(&w, big, BUF);
	ck_assert_uint_eq(w.cap, PROTO_MAX_FIELDS_LEN);
	ck_assert_int_eq(proto_write_bytes(&w, 1, src,
					   PROTO_MAX_FIELDS_LEN - 5), 0);
	ck_assert_int_eq(proto_write_bytes(&w, 2, src, 0), -ENOSPC);
	proto_writer_init(&w, big, BUF);
	ck_assert_int_eq(proto_write_bytes(&w, 1, src, 0x10000), -EINVAL);
	free(src);
	free(big);
}
END_TEST

START_TEST(lists)
{
	const struct proto_str elems[] = { STR("a"), STR(""), STR("xyz") };
	uint8_t buf[32];
	struct proto_list l;
	struct proto_list_iter it;
	struct proto_str e;

	ck_assert_int_eq(proto_list_build(buf, sizeof(buf), elems, 3, &l), 0);
	ck_assert_uint_eq(l.count, 3);
	ck_assert_uint_eq(l.len, 2 + 1 + 2 + 0 + 2 + 3);
	ck_assert_mem_eq(buf, "\x01\x00" "a" "\x00\x00" "\x03\x00" "xyz", 10);
	proto_list_iter_init(&it, &l);
	ck_assert_int_eq(proto_list_next(&it, &e), 1);
	ck_assert_mem_eq(e.s, "a", 1);
	ck_assert_int_eq(proto_list_next(&it, &e), 1);
	ck_assert_uint_eq(e.len, 0);
	ck_assert_int_eq(proto_list_next(&it, &e), 1);
	ck_assert_mem_eq(e.s, "xyz", 3);
	ck_assert_int_eq(proto_list_next(&it, &e), 0);

	ck_assert_int_eq(proto_list_build(buf, 9, elems, 3, &l), -ENOSPC);
	e = (struct proto_str){ "\xff", 1 };
	ck_assert_int_eq(proto_list_build(buf, sizeof(buf), &e, 1, &l),
			 -EINVAL);
	/* A hand-made list with a lying element length. */
	l = (struct proto_list){ (const uint8_t *)"\x09\x00" "ab", 4, 1 };
	proto_list_iter_init(&it, &l);
	ck_assert_int_eq(proto_list_next(&it, &e), STRATA_EPROTO);
}
END_TEST

/* ---- Messages ---------------------------------------------------------- */

/*
 * Encode, decode, and re-encode: the same bytes (canonical encoding).  The
 * decoded out points into rt, a uint8_t[BUF] the test declares.
 */
#define ROUNDTRIP(name, in, out)					\
	do {								\
		uint8_t *b1_ = tu_xmalloc(BUF), *b2_ = tu_xmalloc(BUF);	\
		size_t l1_, l2_;					\
		ck_assert_int_eq(proto_##name##_encode(&(in), b1_, BUF, &l1_), \
				 0);					\
		ck_assert_int_eq(decode_exact(dec_##name, b1_, l1_, &(out)), \
				 0);					\
		ck_assert_int_eq(proto_##name##_decode(b1_, l1_, &(out)), 0); \
		ck_assert_int_eq(proto_##name##_encode(&(out), b2_, BUF, &l2_), \
				 0);					\
		ck_assert_uint_eq(l1_, l2_);				\
		ck_assert_mem_eq(b1_, b2_, l1_);			\
		/* Every shorter buffer: -ENOSPC, never an overrun. */	\
		for (size_t c_ = 0; c_ < l1_; c_ += 1 + c_ / 8)	\
			ck_assert_int_eq(proto_##name##_encode(&(in), b2_, c_, \
							       &l2_), -ENOSPC); \
		/* Every truncation: an error, never an over-read. */	\
		for (size_t c_ = 0; c_ < l1_; c_++)			\
			decode_exact(dec_##name, b1_, c_, &(out));	\
		memcpy(rt, b1_, l1_);					\
		ck_assert_int_eq(proto_##name##_decode(rt, l1_, &(out)), 0); \
		free(b2_);						\
		free(b1_);						\
	} while (0)

static void str_eq(struct proto_str a, const char *s)
{
	ck_assert_ptr_nonnull(a.s);
	ck_assert_uint_eq(a.len, strlen(s));
	ck_assert_mem_eq(a.s, s, a.len);
}

START_TEST(msg_hello_auth)
{
	uint8_t rt[BUF];
	uint8_t nonce[PROTO_NONCE_LEN], proof[PROTO_PROOF_LEN];
	struct proto_hello_req hq = { .version = 1, .has_features = true,
				      .features = 5, .agent = STR("t/1") }, hq2;
	struct proto_hello_resp hr = {
		.version = 1, .features = 4, .server = STR("stratad/0.1"),
		.has_node_id = true, .node_id = 3, .has_map_version = true,
		.map_version = 77, .max_requests = 128,
		.max_inflight = 64u << 20, .max_body = PROTO_MAX_BODY_LEN,
	}, hr2;
	struct proto_auth_req aq, aq2;
	struct proto_auth_resp ar = { .principal = STR("alice") }, ar2;

	tu_fill(nonce, sizeof(nonce), 1);
	tu_fill(proof, sizeof(proof), 2);
	hr.nonce = (struct proto_bytes){ nonce, sizeof(nonce) };
	aq = (struct proto_auth_req){ .access_key_id = STR("AKID123"),
				      .proof = { proof, sizeof(proof) } };

	ROUNDTRIP(hello_req, hq, hq2);
	ck_assert_uint_eq(hq2.version, 1);
	ck_assert(hq2.has_features);
	ck_assert_uint_eq(hq2.features, 5);
	str_eq(hq2.agent, "t/1");
	hq = (struct proto_hello_req){ .version = 1 };
	ROUNDTRIP(hello_req, hq, hq2);
	ck_assert(!hq2.has_features);
	ck_assert_ptr_null(hq2.agent.s);

	ROUNDTRIP(hello_resp, hr, hr2);
	ck_assert_mem_eq(hr2.nonce.p, nonce, sizeof(nonce));
	ck_assert_uint_eq(hr2.max_inflight, 64u << 20);
	ck_assert_uint_eq(hr2.map_version, 77);
	ck_assert_uint_eq(hr2.node_id, 3);
	str_eq(hr2.server, "stratad/0.1");

	ROUNDTRIP(auth_req, aq, aq2);
	str_eq(aq2.access_key_id, "AKID123");
	ck_assert_mem_eq(aq2.proof.p, proof, sizeof(proof));
	ROUNDTRIP(auth_resp, ar, ar2);
	str_eq(ar2.principal, "alice");

	/* Bounds refused on both sides. */
	{
		uint8_t buf[512];
		size_t len;

		hr.nonce.len = 31;
		ck_assert_int_eq(proto_hello_resp_encode(&hr, buf, sizeof(buf),
							 &len), -EINVAL);
		hr.nonce.len = 32;
		hr.max_body = 100;
		ck_assert_int_eq(proto_hello_resp_encode(&hr, buf, sizeof(buf),
							 &len), -EINVAL);
		hq.version = 0;
		ck_assert_int_eq(proto_hello_req_encode(&hq, buf, sizeof(buf),
							&len), -EINVAL);
		aq.proof.p = NULL;
		ck_assert_int_eq(proto_auth_req_encode(&aq, buf, sizeof(buf),
						       &len), -EINVAL);
	}
}
END_TEST

START_TEST(auth_transcript)
{
	uint8_t nonce[32], exp[32], out[PROTO_AUTH_TRANSCRIPT_MAX];
	char key[PROTO_MAX_ACCESS_KEY_ID_LEN + 1];
	size_t len;

	memset(nonce, 0x11, sizeof(nonce));
	memset(exp, 0x22, sizeof(exp));
	ck_assert_int_eq(proto_auth_transcript(nonce, exp, "AK", 2, out,
					       sizeof(out), &len), 0);
	ck_assert_uint_eq(len, 14 + 32 + 32 + 2);
	ck_assert_mem_eq(out, "strata-auth-v1", 14);
	ck_assert_mem_eq(out + 14, nonce, 32);
	ck_assert_mem_eq(out + 46, exp, 32);
	ck_assert_mem_eq(out + 78, "AK", 2);
	ck_assert_int_eq(proto_auth_transcript(nonce, exp, "AK", 2, out, 79,
					       &len), -ENOSPC);
	ck_assert_int_eq(proto_auth_transcript(nonce, exp, "", 0, out,
					       sizeof(out), &len), -EINVAL);
	memset(key, 'k', sizeof(key));
	ck_assert_int_eq(proto_auth_transcript(nonce, exp, key,
					       PROTO_MAX_ACCESS_KEY_ID_LEN,
					       out, sizeof(out), &len), 0);
	ck_assert_uint_eq(len, PROTO_AUTH_TRANSCRIPT_MAX);
	ck_assert_int_eq(proto_auth_transcript(nonce, exp, key, sizeof(key),
					       out, sizeof(out), &len),
			 -EINVAL);
}
END_TEST

START_TEST(msg_error)
{
	uint8_t rt[BUF];
	struct proto_error e = { .code = STRATA_ENOOBJECT,
				 .message = STR("no such object") }, e2;
	uint8_t buf[64];
	size_t n, len;

	ROUNDTRIP(error, e, e2);
	ck_assert_int_eq(e2.code, STRATA_ENOOBJECT);
	str_eq(e2.message, "no such object");
	e = (struct proto_error){ .code = -EACCES };
	ROUNDTRIP(error, e, e2);
	ck_assert_int_eq(e2.code, -EACCES);
	ck_assert_ptr_null(e2.message.s);

	/* A code must be negative. */
	e.code = 0;
	ck_assert_int_eq(proto_error_encode(&e, buf, sizeof(buf), &len),
			 -EINVAL);
	n = raw_field(buf, PROTO_TAG_CODE, PROTO_T_I32, "\0\0\0\0", 4);
	ck_assert_int_eq(proto_error_decode(buf, n, &e2), STRATA_EPROTO);
	n = raw_field(buf, PROTO_TAG_CODE, PROTO_T_I32, "\5\0\0\0", 4);
	ck_assert_int_eq(proto_error_decode(buf, n, &e2), STRATA_EPROTO);
	/* Missing code, wrong type. */
	n = raw_field(buf, PROTO_TAG_MESSAGE, PROTO_T_STR, "x", 1);
	ck_assert_int_eq(proto_error_decode(buf, n, &e2), STRATA_EPROTO);
	n = raw_field(buf, PROTO_TAG_CODE, PROTO_T_U32, "\xff\xff\xff\xff", 4);
	ck_assert_int_eq(proto_error_decode(buf, n, &e2), STRATA_EPROTO);
}
END_TEST

static void make_meta(uint8_t *buf, size_t cap, struct proto_list *l,
		      size_t pairs, size_t name_len, size_t value_len)
{
	static char names[PROTO_MAX_KV * 2 + 2][PROTO_MAX_KV_VALUE_LEN + 2];
	struct proto_str e[PROTO_MAX_KV * 2 + 2];

	ck_assert_uint_le(pairs, PROTO_MAX_KV + 1);
	for (size_t i = 0; i < 2 * pairs; i++) {
		size_t n = i & 1 ? value_len : name_len;

		memset(names[i], 'a' + (int)(i % 26), n);
		e[i] = (struct proto_str){ names[i], n };
	}
	ck_assert_int_eq(proto_list_build(buf, cap, e, 2 * pairs, l), 0);
}

START_TEST(msg_put)
{
	uint8_t rt[BUF];
	uint8_t mbuf[4096], tbuf[256], etag[PROTO_ETAG_LEN];
	struct proto_put_req q = {
		.bucket = STR("photos"), .key = STR("2024/a b/\xc3\xa9.jpg"),
		.has_size = true, .size = 1ull << 40,
		.content_type = STR("image/jpeg"),
	}, q2;
	struct proto_put_resp r, r2;
	struct proto_list_iter it;
	struct proto_str e;

	make_meta(mbuf, sizeof(mbuf), &q.meta, 3, 5, 10);
	make_meta(tbuf, sizeof(tbuf), &q.tags, 1, 3, 0);
	ROUNDTRIP(put_req, q, q2);
	str_eq(q2.bucket, "photos");
	str_eq(q2.key, "2024/a b/\xc3\xa9.jpg");
	ck_assert(q2.has_size);
	ck_assert_uint_eq(q2.size, 1ull << 40);
	str_eq(q2.content_type, "image/jpeg");
	ck_assert_uint_eq(q2.meta.count, 6);
	ck_assert_uint_eq(q2.tags.count, 2);
	proto_list_iter_init(&it, &q2.tags);
	ck_assert_int_eq(proto_list_next(&it, &e), 1);
	str_eq(e, "aaa");
	ck_assert_int_eq(proto_list_next(&it, &e), 1);
	ck_assert_uint_eq(e.len, 0);

	/* Minimal: bucket and key only. */
	q = (struct proto_put_req){ .bucket = STR("b12"), .key = STR("k") };
	ROUNDTRIP(put_req, q, q2);
	ck_assert(!q2.has_size);
	ck_assert_ptr_null(q2.meta.p);
	ck_assert_ptr_null(q2.content_type.s);

	tu_fill(etag, sizeof(etag), 3);
	r = (struct proto_put_resp){ .size = 12, .etag = { etag, 32 },
				     .version = 99, .writer = 2 };
	ROUNDTRIP(put_resp, r, r2);
	ck_assert_uint_eq(r2.size, 12);
	ck_assert_mem_eq(r2.etag.p, etag, 32);
	ck_assert_uint_eq(r2.version, 99);
	ck_assert_uint_eq(r2.writer, 2);
}
END_TEST

START_TEST(msg_limits)
{
	static char longkey[PROTO_MAX_KEY_LEN + 1];
	uint8_t *buf = tu_xmalloc(BUF), *mbuf = tu_xmalloc(BUF);
	struct proto_put_req q = { .bucket = STR("bkt"), .key = STR("k") }, q2;
	struct proto_writer w;
	size_t len;

	memset(longkey, 'k', sizeof(longkey));

	/* Bucket 1..63 bytes; key 1..1024 bytes: encoder and decoder. */
	q.bucket = (struct proto_str){ longkey, PROTO_MAX_BUCKET_LEN };
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len), 0);
	q.bucket.len++;
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADBUCKET);
	q.bucket.len = 0;
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADBUCKET);
	q.bucket = STR("bkt");
	q.key = (struct proto_str){ longkey, PROTO_MAX_KEY_LEN };
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len), 0);
	q.key.len++;
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADKEY);
	q.key.len = 0;
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADKEY);

	/* The same bounds by hand on the decode side. */
	proto_writer_init(&w, buf, BUF);
	proto_write_str(&w, PROTO_TAG_BUCKET, longkey, 64);
	proto_write_str(&w, PROTO_TAG_KEY, "k", 1);
	ck_assert_int_eq(proto_writer_finish(&w, &len), 0);
	ck_assert_int_eq(proto_put_req_decode(buf, len, &q2),
			 STRATA_EBADBUCKET);
	proto_writer_init(&w, buf, BUF);
	proto_write_str(&w, PROTO_TAG_BUCKET, "b", 1);
	proto_write_str(&w, PROTO_TAG_KEY, longkey, sizeof(longkey));
	ck_assert_int_eq(proto_writer_finish(&w, &len), 0);
	ck_assert_int_eq(proto_put_req_decode(buf, len, &q2),
			 STRATA_EBADKEY);
	proto_writer_init(&w, buf, BUF);
	proto_write_str(&w, PROTO_TAG_BUCKET, "b", 1);
	proto_write_str(&w, PROTO_TAG_KEY, "", 0);
	ck_assert_int_eq(proto_writer_finish(&w, &len), 0);
	ck_assert_int_eq(proto_put_req_decode(buf, len, &q2),
			 STRATA_EBADKEY);

	/* Metadata: 64 pairs, names 1..128, values 0..1024. */
	q.key = STR("k");
	make_meta(mbuf, BUF, &q.meta, PROTO_MAX_KV, 1, 0);
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len), 0);
	ck_assert_int_eq(proto_put_req_decode(buf, len, &q2), 0);
	make_meta(mbuf, BUF, &q.meta, PROTO_MAX_KV + 1, 1, 0);
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADMETA);
	make_meta(mbuf, BUF, &q.meta, 1, PROTO_MAX_KV_NAME_LEN, 1);
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len), 0);
	make_meta(mbuf, BUF, &q.meta, 1, PROTO_MAX_KV_NAME_LEN + 1, 1);
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADMETA);
	make_meta(mbuf, BUF, &q.meta, 1, 0, 1);
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADMETA);
	make_meta(mbuf, BUF, &q.meta, 1, 4, PROTO_MAX_KV_VALUE_LEN + 1);
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADMETA);
	/* An odd element count is not a list of pairs. */
	make_meta(mbuf, BUF, &q.meta, 2, 4, 4);
	q.meta.count = 3;
	q.meta.len = 6 + 6 + 6;
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADMETA);
	proto_writer_init(&w, buf, BUF);
	proto_write_str(&w, PROTO_TAG_BUCKET, "b", 1);
	proto_write_str(&w, PROTO_TAG_KEY, "k", 1);
	proto_write_list(&w, PROTO_TAG_META, &q.meta);
	ck_assert_int_eq(proto_writer_finish(&w, &len), 0);
	ck_assert_int_eq(proto_put_req_decode(buf, len, &q2),
			 STRATA_EBADMETA);
	/* A list whose count lies is the caller's bug. */
	make_meta(mbuf, BUF, &q.meta, 2, 4, 4);
	q.meta.count = 2;
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len), -EINVAL);
	/* Content type over 255 bytes. */
	q.meta.p = NULL;
	q.content_type = (struct proto_str){ longkey, 256 };
	ck_assert_int_eq(proto_put_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADMETA);
	free(mbuf);
	free(buf);
}
END_TEST

START_TEST(msg_required_and_types)
{
	uint8_t buf[256] = { 0 };
	struct proto_put_req q;
	struct proto_get_req g;
	size_t n;

	/* Required fields missing. */
	ck_assert_int_eq(proto_put_req_decode(buf, 0, &q), STRATA_EPROTO);
	n = raw_field(buf, PROTO_TAG_BUCKET, PROTO_T_STR, "bkt", 3);
	ck_assert_int_eq(proto_put_req_decode(buf, n, &q), STRATA_EPROTO);
	n = raw_field(buf, PROTO_TAG_KEY, PROTO_T_STR, "k", 1);
	ck_assert_int_eq(proto_put_req_decode(buf, n, &q), STRATA_EPROTO);
	/* Known tag, wrong type. */
	n = raw_field(buf, PROTO_TAG_BUCKET, PROTO_T_STR, "bkt", 3);
	n += raw_field(buf + n, PROTO_TAG_KEY, PROTO_T_BYTES, "k", 1);
	ck_assert_int_eq(proto_put_req_decode(buf, n, &q), STRATA_EPROTO);
	n = raw_field(buf, PROTO_TAG_BUCKET, PROTO_T_STR, "bkt", 3);
	n += raw_field(buf + n, PROTO_TAG_KEY, PROTO_T_STR, "k", 1);
	n += raw_field(buf + n, PROTO_TAG_SIZE, PROTO_T_U32, "\1\0\0\0", 4);
	ck_assert_int_eq(proto_put_req_decode(buf, n, &q), STRATA_EPROTO);

	/* Duplicate known field. */
	n = raw_field(buf, PROTO_TAG_BUCKET, PROTO_T_STR, "bkt", 3);
	n += raw_field(buf + n, PROTO_TAG_KEY, PROTO_T_STR, "k", 1);
	n += raw_field(buf + n, PROTO_TAG_KEY, PROTO_T_STR, "j", 1);
	ck_assert_int_eq(proto_put_req_decode(buf, n, &q), STRATA_EPROTO);

	/* Unknown tags skipped: before, between and after known ones. */
	n = raw_field(buf, PROTO_TAG_BUCKET, PROTO_T_STR, "bkt", 3);
	n += raw_field(buf + n, PROTO_TAG_KEY, PROTO_T_STR, "k", 1);
	/* Tag 3 (SIZE) is not a GET request field. */
	n += raw_field(buf + n, 3, PROTO_T_BYTES, "zz", 2);
	ck_assert_int_eq(proto_get_req_decode(buf, n, &g), 0);
	str_eq(g.key, "k");
	ck_assert(!g.has_offset);
	n = raw_field(buf, PROTO_TAG_BUCKET, PROTO_T_STR, "bkt", 3);
	n += raw_field(buf + n, PROTO_TAG_KEY, PROTO_T_STR, "k", 1);
	n += raw_field(buf + n, 10, 99, "future", 6);
	n += raw_field(buf + n, PROTO_TAG_OFFSET, PROTO_T_U64,
		       "\x10\0\0\0\0\0\0\0", 8);
	n += raw_field(buf + n, 0x7fff, PROTO_T_STR, "later", 5);
	ck_assert_int_eq(proto_get_req_decode(buf, n, &g), 0);
	ck_assert(g.has_offset);
	ck_assert_uint_eq(g.offset, 16);
	ck_assert(!g.has_length);

	/* More field bytes than a frame may carry, however well-formed. */
	{
		uint8_t *big = tu_xmalloc(2 * PROTO_MAX_FIELDS_LEN);
		struct proto_get_req g3;
		size_t m;

		memset(big, 'x', 2 * PROTO_MAX_FIELDS_LEN);
		m = raw_field(big, PROTO_TAG_BUCKET, PROTO_T_STR, "bkt", 3);
		m += raw_field(big + m, PROTO_TAG_KEY, PROTO_T_STR, "k", 1);
		le16(big + m, 100);
		big[m + 2] = PROTO_T_BYTES;
		le16(big + m + 3, 0xffff);
		m += 5 + 0xffff;
		ck_assert_uint_gt(m, PROTO_MAX_FIELDS_LEN);
		ck_assert_int_eq(proto_get_req_decode(big, PROTO_MAX_FIELDS_LEN,
						      &g3), STRATA_EPROTO);
		ck_assert_int_eq(proto_get_req_decode(big, m, &g3),
				 STRATA_EPROTO);
		ck_assert_ptr_null(g3.bucket.s);
		free(big);
	}

	/* An unknown critical tag is refused. */
	n += raw_field(buf + n, PROTO_TAG_CRITICAL | 1, PROTO_T_U8, "\1", 1);
	ck_assert_int_eq(proto_get_req_decode(buf, n, &g), STRATA_EPROTO);

	/* Messages with no fields of their own. */
	ck_assert_int_eq(proto_empty_decode(buf, 0), 0);
	n = raw_field(buf, 7, PROTO_T_STR, "x", 1);
	ck_assert_int_eq(proto_empty_decode(buf, n), 0);
	n = raw_field(buf, PROTO_TAG_CRITICAL | 7, PROTO_T_STR, "x", 1);
	ck_assert_int_eq(proto_empty_decode(buf, n), STRATA_EPROTO);
	n = raw_field(buf, 7, PROTO_T_STR, "x", 1) - 1;
	ck_assert_int_eq(proto_empty_decode(buf, n), STRATA_EPROTO);
}
END_TEST

START_TEST(msg_objects)
{
	uint8_t rt[BUF];
	uint8_t mbuf[256], etag[PROTO_ETAG_LEN];
	struct proto_get_req g = { .bucket = STR("bkt"), .key = STR("a/b"),
				   .has_offset = true, .offset = 4096,
				   .has_length = true, .length = 100 }, g2;
	struct proto_object_req o = { .bucket = STR("bkt"), .key = STR("x") },
		o2;
	struct proto_get_resp gr, gr2;
	struct proto_stat_resp sr, sr2;
	struct proto_delete_resp d = { .has_version = true, .version = 5,
				       .writer = 9 }, d2;
	struct proto_bucket_req b = { .bucket = STR("my-bucket") }, b2;
	uint8_t buf[64];
	size_t n;

	ROUNDTRIP(get_req, g, g2);
	ck_assert_uint_eq(g2.offset, 4096);
	ck_assert_uint_eq(g2.length, 100);
	ROUNDTRIP(object_req, o, o2);
	str_eq(o2.key, "x");
	ROUNDTRIP(bucket_req, b, b2);
	str_eq(b2.bucket, "my-bucket");

	tu_fill(etag, sizeof(etag), 4);
	make_meta(mbuf, sizeof(mbuf), &gr.info.meta, 2, 3, 3);
	gr = (struct proto_get_resp){
		.info = { .size = 1 << 20, .content_type = STR("text/plain"),
			  .meta = gr.info.meta, .etag = { etag, 32 },
			  .version = 1234, .writer = 7, .has_mtime = true,
			  .mtime_ms = 1700000000000ull },
		.offset = 4096, .length = 100,
	};
	ROUNDTRIP(get_resp, gr, gr2);
	ck_assert_uint_eq(gr2.info.size, 1 << 20);
	ck_assert_uint_eq(gr2.info.meta.count, 4);
	ck_assert_ptr_null(gr2.info.tags.p);
	ck_assert_uint_eq(gr2.info.mtime_ms, 1700000000000ull);
	ck_assert_uint_eq(gr2.length, 100);

	sr = (struct proto_stat_resp){ .info = gr.info, .count = 3,
				       .chunk_size = 4 << 20 };
	sr.info.has_mtime = false;
	ROUNDTRIP(stat_resp, sr, sr2);
	ck_assert_uint_eq(sr2.count, 3);
	ck_assert_uint_eq(sr2.chunk_size, 4 << 20);
	ck_assert(!sr2.info.has_mtime);
	str_eq(sr2.info.content_type, "text/plain");

	ROUNDTRIP(delete_resp, d, d2);
	ck_assert(d2.has_version);
	ck_assert_uint_eq(d2.writer, 9);
	d = (struct proto_delete_resp){ 0 };
	ROUNDTRIP(delete_resp, d, d2);
	ck_assert(!d2.has_version);
	/* Version without writer. */
	n = raw_field(buf, PROTO_TAG_VERSION, PROTO_T_U64, "12345678", 8);
	ck_assert_int_eq(proto_delete_resp_decode(buf, n, &d2), STRATA_EPROTO);
}
END_TEST

START_TEST(msg_list)
{
	uint8_t rt[BUF];
	static char longkey[PROTO_MAX_KEY_LEN];
	struct proto_list_req q = {
		.bucket = STR("bkt"), .prefix = STR("train/"),
		.delimiter = STR("/"), .start_after = STR("train/0001"),
		.has_limit = true, .limit = 1000,
	}, q2;
	struct proto_list_resp r = { .truncated = true,
				     .next_start_after = STR("train/0999"),
				     .count = 1000 }, r2;
	struct proto_bucket_list_req bq = { .start_after = STR("a"),
					    .has_limit = true, .limit = 10 },
		bq2;
	struct proto_bucket_list_resp br = { .truncated = false, .count = 2 },
		br2;
	uint8_t buf[128];
	size_t len;

	memset(longkey, 'p', sizeof(longkey));
	ROUNDTRIP(list_req, q, q2);
	str_eq(q2.prefix, "train/");
	str_eq(q2.delimiter, "/");
	str_eq(q2.start_after, "train/0001");
	ck_assert_uint_eq(q2.limit, 1000);
	q = (struct proto_list_req){ .bucket = STR("bkt") };
	ROUNDTRIP(list_req, q, q2);
	ck_assert_ptr_null(q2.prefix.s);
	ck_assert(!q2.has_limit);
	/* An empty prefix is present, and distinct from none. */
	q.prefix = (struct proto_str){ "", 0 };
	ROUNDTRIP(list_req, q, q2);
	ck_assert_ptr_nonnull(q2.prefix.s);
	ck_assert_uint_eq(q2.prefix.len, 0);

	q.has_limit = true;
	q.limit = 0;
	ck_assert_int_eq(proto_list_req_encode(&q, buf, sizeof(buf), &len),
			 -EINVAL);
	q.limit = PROTO_MAX_LIST_LIMIT + 1;
	ck_assert_int_eq(proto_list_req_encode(&q, buf, sizeof(buf), &len),
			 -EINVAL);
	q.limit = 1;
	q.delimiter = (struct proto_str){ "", 0 };
	ck_assert_int_eq(proto_list_req_encode(&q, buf, sizeof(buf), &len),
			 -EINVAL);
	q.delimiter = (struct proto_str){ longkey, 17 };
	ck_assert_int_eq(proto_list_req_encode(&q, buf, sizeof(buf), &len),
			 -EINVAL);

	ROUNDTRIP(list_resp, r, r2);
	ck_assert(r2.truncated);
	str_eq(r2.next_start_after, "train/0999");
	ck_assert_uint_eq(r2.count, 1000);
	r = (struct proto_list_resp){ .count = 0 };
	ROUNDTRIP(list_resp, r, r2);
	ck_assert(!r2.truncated);
	/* Truncated iff a next start is given. */
	r.truncated = true;
	ck_assert_int_eq(proto_list_resp_encode(&r, buf, sizeof(buf), &len),
			 -EINVAL);
	{
		struct proto_writer w;

		proto_writer_init(&w, buf, sizeof(buf));
		proto_write_bool(&w, PROTO_TAG_TRUNCATED, true);
		proto_write_u32(&w, PROTO_TAG_COUNT, 0);
		ck_assert_int_eq(proto_writer_finish(&w, &len), 0);
		ck_assert_int_eq(proto_list_resp_decode(buf, len, &r2),
				 STRATA_EPROTO);
	}

	ROUNDTRIP(bucket_list_req, bq, bq2);
	str_eq(bq2.start_after, "a");
	ck_assert_uint_eq(bq2.limit, 10);
	ROUNDTRIP(bucket_list_resp, br, br2);
	ck_assert_uint_eq(br2.count, 2);
}
END_TEST

START_TEST(records)
{
	uint8_t body[1024], etag[32];
	struct proto_list_entry obj = { .key = STR("train/0001.tar"),
					.size = 1 << 30, .version = 42,
					.mtime_ms = 17 }, pre = {
		.prefix = STR("train/sub/") }, e;
	struct proto_bucket_entry be = { .bucket = STR("bkt"),
					 .ctime_ms = 5 }, be2;
	struct proto_chunk_entry ce = { .tier = 1, .raw_len = 4 << 20,
					.stored_len = 3 << 20 }, ce2;
	struct proto_records it;
	struct proto_bytes rec;
	size_t off = 0, n;

	tu_fill(etag, sizeof(etag), 5);
	obj.etag = (struct proto_bytes){ etag, 32 };
	ck_assert_int_eq(proto_list_entry_encode(&obj, body + off,
						 sizeof(body) - off, &n), 0);
	off += n;
	ck_assert_int_eq(proto_list_entry_encode(&pre, body + off,
						 sizeof(body) - off, &n), 0);
	off += n;
	ck_assert_int_eq(proto_bucket_entry_encode(&be, body + off,
						   sizeof(body) - off, &n), 0);
	off += n;
	ck_assert_int_eq(proto_chunk_entry_encode(&ce, body + off,
						  sizeof(body) - off, &n), 0);
	off += n;

	proto_records_init(&it, body, off);
	ck_assert_int_eq(proto_records_next(&it, &rec), 1);
	ck_assert_int_eq(proto_list_entry_decode(rec.p, rec.len, &e), 0);
	str_eq(e.key, "train/0001.tar");
	ck_assert_uint_eq(e.size, 1 << 30);
	ck_assert_mem_eq(e.etag.p, etag, 32);
	ck_assert_ptr_null(e.prefix.s);
	ck_assert_int_eq(proto_records_next(&it, &rec), 1);
	ck_assert_int_eq(proto_list_entry_decode(rec.p, rec.len, &e), 0);
	str_eq(e.prefix, "train/sub/");
	ck_assert_ptr_null(e.key.s);
	ck_assert_int_eq(proto_records_next(&it, &rec), 1);
	ck_assert_int_eq(proto_bucket_entry_decode(rec.p, rec.len, &be2), 0);
	str_eq(be2.bucket, "bkt");
	ck_assert_uint_eq(be2.ctime_ms, 5);
	ck_assert_int_eq(proto_records_next(&it, &rec), 1);
	ck_assert_int_eq(proto_chunk_entry_decode(rec.p, rec.len, &ce2), 0);
	ck_assert_uint_eq(ce2.tier, 1);
	ck_assert_uint_eq(ce2.raw_len, 4 << 20);
	ck_assert_uint_eq(ce2.stored_len, 3 << 20);
	ck_assert_int_eq(proto_records_next(&it, &rec), 0);

	/* A record longer than the body, or a torn length. */
	proto_records_init(&it, body, off - 1);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(proto_records_next(&it, &rec), 1);
	ck_assert_int_eq(proto_records_next(&it, &rec), STRATA_EPROTO);
	proto_records_init(&it, body, 1);
	ck_assert_int_eq(proto_records_next(&it, &rec), STRATA_EPROTO);

	/* An entry is an object or a prefix, never both nor half. */
	obj.prefix = STR("p/");
	ck_assert_int_eq(proto_list_entry_encode(&obj, body, sizeof(body), &n),
			 -EINVAL);
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(proto_list_entry_encode(&e, body, sizeof(body), &n),
			 -EINVAL);
	{
		struct proto_writer w;
		size_t len;

		proto_writer_init(&w, body, sizeof(body));
		proto_write_str(&w, PROTO_TAG_KEY, "k", 1);
		proto_write_u64(&w, PROTO_TAG_SIZE, 1);
		ck_assert_int_eq(proto_writer_finish(&w, &len), 0);
		ck_assert_int_eq(proto_list_entry_decode(body, len, &e),
				 STRATA_EPROTO);
		proto_writer_init(&w, body, sizeof(body));
		proto_write_u64(&w, PROTO_TAG_SIZE, 1);
		proto_write_str(&w, PROTO_TAG_PREFIX, "p", 1);
		ck_assert_int_eq(proto_writer_finish(&w, &len), 0);
		ck_assert_int_eq(proto_list_entry_decode(body, len, &e),
				 STRATA_EPROTO);
	}
	/* No room. */
	ck_assert_int_eq(proto_chunk_entry_encode(&ce, body, 1, &n), -ENOSPC);
	ck_assert_int_eq(proto_chunk_entry_encode(&ce, body, 10, &n), -ENOSPC);
}
END_TEST

START_TEST(msg_keys)
{
	uint8_t rt[BUF];
	static char keyspace[PROTO_MAX_BATCH_KEYS + 1][8];
	struct proto_str keys[PROTO_MAX_BATCH_KEYS + 1];
	uint8_t *lbuf = tu_xmalloc(BUF), *buf = tu_xmalloc(BUF);
	struct proto_keys_req q = { .bucket = STR("bkt") }, q2;
	struct proto_batch_resp r = { .count = 3 }, r2;
	struct proto_list_iter it;
	struct proto_str e;
	size_t len;

	for (int i = 0; i <= PROTO_MAX_BATCH_KEYS; i++) {
		size_t n = (size_t)snprintf(keyspace[i], sizeof(keyspace[i]),
					    "k%d", i);

		keys[i] = (struct proto_str){ keyspace[i], n };
	}
	ck_assert_int_eq(proto_list_build(lbuf, BUF, keys, 3, &q.keys), 0);
	ROUNDTRIP(keys_req, q, q2);
	ck_assert_uint_eq(q2.keys.count, 3);
	proto_list_iter_init(&it, &q2.keys);
	ck_assert_int_eq(proto_list_next(&it, &e), 1);
	str_eq(e, "k0");
	ROUNDTRIP(batch_resp, r, r2);
	ck_assert_uint_eq(r2.count, 3);

	ck_assert_int_eq(proto_list_build(lbuf, BUF, keys,
					  PROTO_MAX_BATCH_KEYS, &q.keys), 0);
	ck_assert_int_eq(proto_keys_req_encode(&q, buf, BUF, &len), 0);
	ck_assert_int_eq(proto_keys_req_decode(buf, len, &q2), 0);
	ck_assert_uint_eq(q2.keys.count, PROTO_MAX_BATCH_KEYS);
	ck_assert_int_eq(proto_list_build(lbuf, BUF, keys,
					  PROTO_MAX_BATCH_KEYS + 1, &q.keys),
			 0);
	ck_assert_int_eq(proto_keys_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADKEY);
	ck_assert_int_eq(proto_list_build(lbuf, BUF, keys, 0, &q.keys), 0);
	ck_assert_int_eq(proto_keys_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADKEY);
	/* An empty key in the list. */
	keys[1].len = 0;
	ck_assert_int_eq(proto_list_build(lbuf, BUF, keys, 2, &q.keys), 0);
	ck_assert_int_eq(proto_keys_req_encode(&q, buf, BUF, &len),
			 STRATA_EBADKEY);
	r.count = 0;
	ck_assert_int_eq(proto_batch_resp_encode(&r, buf, BUF, &len), -EINVAL);
	free(buf);
	free(lbuf);
}
END_TEST

/* ---- BATCH_GET items --------------------------------------------------- */

START_TEST(msg_access_keys)
{
	struct proto_key_create_req cq = { .has_admin = true, .admin = true }, cq2;
	struct proto_key_create_resp cr = {
		.access_key_id = { "AKX", 3 }, .secret = { "s3cr3t", 6 },
		.admin = true,
	}, cr2;
	struct proto_key_req kq = { .access_key_id = { "AKX", 3 } }, kq2;
	struct proto_key_list_resp lr = { .count = 2 }, lr2;
	struct proto_key_entry ke = { .access_key_id = { "AKY", 3 } }, ke2;
	uint8_t buf[512];
	size_t n;

	ck_assert_int_eq(proto_key_create_req_encode(&cq, buf, sizeof(buf), &n), 0);
	ck_assert_int_eq(proto_key_create_req_decode(buf, n, &cq2), 0);
	ck_assert(cq2.has_admin && cq2.admin);
	ck_assert_int_eq(proto_key_create_req_decode(buf, 0, &cq2), 0);
	ck_assert(!cq2.has_admin);
	ck_assert_int_eq(proto_key_create_resp_encode(&cr, buf, sizeof(buf), &n), 0);
	ck_assert_int_eq(proto_key_create_resp_decode(buf, n, &cr2), 0);
	ck_assert_uint_eq(cr2.secret.len, 6);
	ck_assert(memcmp(cr2.secret.s, "s3cr3t", 6) == 0 && cr2.admin);
	/* The secret is required. */
	cr.secret.s = NULL;
	ck_assert_int_eq(proto_key_create_resp_encode(&cr, buf, sizeof(buf), &n),
			 -EINVAL);
	ck_assert_int_eq(proto_key_req_encode(&kq, buf, sizeof(buf), &n), 0);
	ck_assert_int_eq(proto_key_req_decode(buf, n, &kq2), 0);
	ck_assert_uint_eq(kq2.access_key_id.len, 3);
	ck_assert_int_eq(proto_key_req_decode(buf, 0, &kq2), STRATA_EPROTO);
	ck_assert_int_eq(proto_key_list_resp_encode(&lr, buf, sizeof(buf), &n), 0);
	ck_assert_int_eq(proto_key_list_resp_decode(buf, n, &lr2), 0);
	ck_assert_uint_eq(lr2.count, 2);
	ck_assert_int_eq(proto_key_entry_encode(&ke, buf, sizeof(buf), &n), 0);
	{
		struct proto_records it;
		struct proto_bytes rec;

		proto_records_init(&it, buf, n);
		ck_assert_int_eq(proto_records_next(&it, &rec), 1);
		ck_assert_int_eq(proto_key_entry_decode(rec.p, rec.len, &ke2), 0);
		ck_assert(!ke2.admin && ke2.access_key_id.len == 3);
	}
	ck_assert_str_eq(proto_op_name(PROTO_OP_KEY_LIST), "KEY_LIST");
	ck_assert(proto_op_has_body(PROTO_OP_KEY_LIST, true));
	ck_assert(!proto_op_has_body(PROTO_OP_KEY_CREATE, false));
}
END_TEST

/* Policies and attributes: KEY_CREATE's optional fields, KEY_SET's
 * "absent leaves it, empty removes it", KEY_INFO's answer. */
START_TEST(msg_key_grants)
{
	static const char pol[] = "{\"version\": 1}";
	const struct proto_str av[] = { { "team", 4 }, { "vision", 6 } };
	struct proto_key_create_req cq = { 0 }, cq2;
	struct proto_key_set_req sq = { 0 }, sq2;
	struct proto_key_info_resp ir = { 0 }, ir2;
	struct proto_list_iter it;
	struct proto_str e;
	uint8_t lb[64], empty[1], *buf = malloc(PROTO_MAX_FIELDS_LEN);
	char *big = malloc(PROTO_MAX_POLICY_LEN + 2);
	size_t n;

	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(proto_list_build(lb, sizeof(lb), av, 2, &cq.attrs), 0);
	cq.policy.s = pol;
	cq.policy.len = strlen(pol);
	ck_assert_int_eq(proto_key_create_req_encode(&cq, buf, 1024, &n), 0);
	ck_assert_int_eq(proto_key_create_req_decode(buf, n, &cq2), 0);
	ck_assert(!cq2.has_admin);
	ck_assert_uint_eq(cq2.policy.len, strlen(pol));
	ck_assert_uint_eq(cq2.attrs.count, 2);
	proto_list_iter_init(&it, &cq2.attrs);
	ck_assert_int_eq(proto_list_next(&it, &e), 1);
	ck_assert(e.len == 4 && !memcmp(e.s, "team", 4));
	/* A policy over the limit is refused both ways. */
	memset(big, 'x', PROTO_MAX_POLICY_LEN + 1);
	cq.policy.s = big;
	cq.policy.len = PROTO_MAX_POLICY_LEN + 1;
	ck_assert_int_eq(proto_key_create_req_encode(&cq, buf,
						     PROTO_MAX_FIELDS_LEN, &n),
			 STRATA_EBADPOLICY);
	/* KEY_SET: only the id; then an empty policy and an empty list. */
	sq.access_key_id.s = "AKX";
	sq.access_key_id.len = 3;
	ck_assert_int_eq(proto_key_set_req_encode(&sq, buf, 1024, &n), 0);
	ck_assert_int_eq(proto_key_set_req_decode(buf, n, &sq2), 0);
	ck_assert(!sq2.policy.s && !sq2.has_attrs);
	sq.policy.s = "";
	sq.has_attrs = true;
	sq.attrs.p = empty;
	ck_assert_int_eq(proto_key_set_req_encode(&sq, buf, 1024, &n), 0);
	ck_assert_int_eq(proto_key_set_req_decode(buf, n, &sq2), 0);
	ck_assert(sq2.policy.s && sq2.policy.len == 0);
	ck_assert(sq2.has_attrs && sq2.attrs.count == 0);
	ck_assert_int_eq(proto_key_set_req_decode(buf, 0, &sq2), STRATA_EPROTO);
	/* KEY_INFO: ctime and the id required, the rest optional. */
	ir.access_key_id.s = "AKX";
	ir.access_key_id.len = 3;
	ir.ctime_ms = 1234;
	ir.admin = true;
	ck_assert_int_eq(proto_key_info_resp_encode(&ir, buf, 1024, &n), 0);
	ck_assert_int_eq(proto_key_info_resp_decode(buf, n, &ir2), 0);
	ck_assert(ir2.admin && ir2.ctime_ms == 1234 && !ir2.policy.s &&
		  !ir2.attrs.p);
	ck_assert_str_eq(proto_op_name(PROTO_OP_KEY_SET), "KEY_SET");
	ck_assert_str_eq(proto_op_name(PROTO_OP_KEY_INFO), "KEY_INFO");
	ck_assert(!proto_op_has_body(PROTO_OP_KEY_INFO, true));
	free(big);
	free(buf);
}
END_TEST

START_TEST(batch_items)
{
	struct proto_batch_item it = { .index = 7, .status = 0,
				       .size = 0x0102030405ull }, it2;
	uint8_t b[PROTO_BATCH_ITEM_LEN];

	ck_assert_int_eq(proto_batch_item_encode(&it, b), 0);
	ck_assert_mem_eq(b, "\x07\0\0\0" "\0\0\0\0" "\x05\x04\x03\x02\x01\0\0\0",
			 16);
	ck_assert_int_eq(proto_batch_item_decode(b, 16, &it2), 0);
	ck_assert_uint_eq(it2.index, 7);
	ck_assert_uint_eq(it2.size, 0x0102030405ull);
	ck_assert_int_eq(proto_batch_item_decode(b, 15, &it2), -EAGAIN);

	it = (struct proto_batch_item){ .index = 1, .status = STRATA_ENOOBJECT };
	ck_assert_int_eq(proto_batch_item_encode(&it, b), 0);
	ck_assert_int_eq(proto_batch_item_decode(b, 16, &it2), 0);
	ck_assert_int_eq(it2.status, STRATA_ENOOBJECT);
	/* An error carries no data; a status is never positive. */
	it.size = 1;
	ck_assert_int_eq(proto_batch_item_encode(&it, b), -EINVAL);
	le32(b + 8, 1);
	ck_assert_int_eq(proto_batch_item_decode(b, 16, &it2), STRATA_EPROTO);
	it = (struct proto_batch_item){ .index = 1, .status = 1 };
	ck_assert_int_eq(proto_batch_item_encode(&it, b), -EINVAL);
	le32(b + 4, 1);
	le32(b + 8, 0);
	ck_assert_int_eq(proto_batch_item_decode(b, 16, &it2), STRATA_EPROTO);
}
END_TEST

static size_t put_item(uint8_t *p, uint32_t index, int32_t status,
		       uint64_t size)
{
	struct proto_batch_item it = { index, status, size };

	ck_assert_int_eq(proto_batch_item_encode(&it, p), 0);
	return PROTO_BATCH_ITEM_LEN;
}

START_TEST(batch_stream)
{
	/* Three items over two frames: item 2 (5 bytes), item 0 (error),
	 * item 1 (10 bytes, split across the frames). */
	uint8_t f1[128], f2[128], got[3][16];
	size_t n1 = 0, n2 = 0, have[3] = { 0 };
	int32_t status[3] = { 1, 1, 1 };
	struct proto_batch_reader r;
	struct proto_batch_event ev;
	const uint8_t *p;
	size_t len;
	int rc;

	n1 += put_item(f1 + n1, 2, 0, 5);
	memcpy(f1 + n1, "hello", 5);
	n1 += 5;
	n1 += put_item(f1 + n1, 0, STRATA_ENOOBJECT, 0);
	n1 += put_item(f1 + n1, 1, 0, 10);
	memcpy(f1 + n1, "0123", 4);
	n1 += 4;
	memcpy(f2, "456789", 6);
	n2 = 6;

	ck_assert_int_eq(proto_batch_reader_init(&r, 0), -EINVAL);
	ck_assert_int_eq(proto_batch_reader_init(&r, PROTO_MAX_BATCH_KEYS + 1),
			 -EINVAL);
	ck_assert_int_eq(proto_batch_reader_init(&r, 3), 0);
	for (int frame = 0; frame < 2; frame++) {
		p = frame ? f2 : f1;
		len = frame ? n2 : n1;
		while ((rc = proto_batch_next(&r, &p, &len, &ev)) == 1) {
			uint32_t i = ev.item.index;

			ck_assert_uint_lt(i, 3);
			if (ev.kind == PROTO_BATCH_ITEM) {
				status[i] = ev.item.status;
				continue;
			}
			ck_assert_int_eq(ev.kind, PROTO_BATCH_DATA);
			ck_assert_uint_le(have[i] + ev.data.len, 16);
			memcpy(got[i] + have[i], ev.data.p, ev.data.len);
			have[i] += ev.data.len;
		}
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_eq(len, 0);
		if (frame == 0)
			ck_assert_int_eq(proto_batch_finish(&r), STRATA_EPROTO);
	}
	ck_assert_int_eq(proto_batch_finish(&r), 0);
	ck_assert_int_eq(status[0], STRATA_ENOOBJECT);
	ck_assert_int_eq(status[1], 0);
	ck_assert_int_eq(status[2], 0);
	ck_assert_uint_eq(have[0], 0);
	ck_assert_uint_eq(have[1], 10);
	ck_assert_mem_eq(got[1], "0123456789", 10);
	ck_assert_uint_eq(have[2], 5);
	ck_assert_mem_eq(got[2], "hello", 5);
}
END_TEST

START_TEST(batch_reject)
{
	uint8_t f[64];
	struct proto_batch_reader r;
	struct proto_batch_event ev;
	const uint8_t *p;
	size_t len, n;

	/* Index out of range. */
	n = put_item(f, 3, 0, 0);
	proto_batch_reader_init(&r, 3);
	p = f;
	len = n;
	ck_assert_int_eq(proto_batch_next(&r, &p, &len, &ev), STRATA_EPROTO);
	/* The same index twice. */
	n = put_item(f, 1, 0, 0);
	n += put_item(f + n, 1, 0, 0);
	proto_batch_reader_init(&r, 3);
	p = f;
	len = n;
	ck_assert_int_eq(proto_batch_next(&r, &p, &len, &ev), 1);
	ck_assert_int_eq(proto_batch_next(&r, &p, &len, &ev), STRATA_EPROTO);
	/* A sub-header split across frames. */
	n = put_item(f, 0, 0, 0);
	proto_batch_reader_init(&r, 1);
	p = f;
	len = n - 1;
	ck_assert_int_eq(proto_batch_next(&r, &p, &len, &ev), STRATA_EPROTO);
	/* Data promised but not sent. */
	n = put_item(f, 0, 0, 9);
	memcpy(f + n, "1234", 4);
	proto_batch_reader_init(&r, 1);
	p = f;
	len = n + 4;
	while (proto_batch_next(&r, &p, &len, &ev) == 1)
		;
	ck_assert_int_eq(proto_batch_finish(&r), STRATA_EPROTO);
	/* An item missing. */
	n = put_item(f, 0, 0, 0);
	proto_batch_reader_init(&r, 2);
	p = f;
	len = n;
	ck_assert_int_eq(proto_batch_next(&r, &p, &len, &ev), 1);
	ck_assert_int_eq(proto_batch_next(&r, &p, &len, &ev), 0);
	ck_assert_int_eq(proto_batch_finish(&r), STRATA_EPROTO);
	/* The highest index the bitmap holds. */
	n = put_item(f, PROTO_MAX_BATCH_KEYS - 1, 0, 0);
	proto_batch_reader_init(&r, PROTO_MAX_BATCH_KEYS);
	p = f;
	len = n;
	ck_assert_int_eq(proto_batch_next(&r, &p, &len, &ev), 1);
	ck_assert_uint_eq(ev.item.index, PROTO_MAX_BATCH_KEYS - 1);
}
END_TEST

/* Random bytes into every decoder: errors, never a crash (ASan run). */
START_TEST(garbage)
{
	uint8_t *buf = tu_xmalloc(4096);
	union {
		struct proto_hello_resp hr;
		struct proto_put_req pq;
		struct proto_get_resp gr;
		struct proto_stat_resp sr;
		struct proto_list_entry le;
		struct proto_error er;
	} m;
	struct proto_header h;

	for (uint64_t seed = 1; seed <= 2000; seed++) {
		size_t len = (size_t)(seed * 7919 % 600);

		tu_fill(buf, len, seed);
		/* Half the time, a plausible field header up front. */
		if (len >= 5 && seed % 2) {
			le16(buf, (uint16_t)(seed % 30 + 1));
			buf[2] = (uint8_t)(seed % 9);
			le16(buf + 3, (uint16_t)(seed % (len - 4)));
		}
		decode_exact(dec_hello_resp, buf, len, &m);
		decode_exact(dec_put_req, buf, len, &m);
		decode_exact(dec_get_resp, buf, len, &m);
		decode_exact(dec_stat_resp, buf, len, &m);
		decode_exact(dec_list_entry, buf, len, &m);
		decode_exact(dec_error, buf, len, &m);
		if (len >= PROTO_HEADER_LEN)
			ck_assert_int_ne(proto_header_decode(buf, len, &h), 0);
	}
	free(buf);
}
END_TEST

static Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc;

	tc = tcase_create("frames");
	tcase_add_test(tc, header_golden);
	tcase_add_test(tc, header_roundtrip);
	tcase_add_test(tc, header_reject);
	tcase_add_test(tc, header_encode_refuses);
	tcase_add_test(tc, op_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("fields");
	tcase_add_test(tc, fields_roundtrip);
	tcase_add_test(tc, fields_reject);
	tcase_add_test(tc, fields_count_limit);
	tcase_add_test(tc, writer_errors);
	tcase_add_test(tc, lists);
	suite_add_tcase(s, tc);

	tc = tcase_create("messages");
	tcase_add_test(tc, msg_hello_auth);
	tcase_add_test(tc, auth_transcript);
	tcase_add_test(tc, msg_error);
	tcase_add_test(tc, msg_put);
	tcase_add_test(tc, msg_limits);
	tcase_add_test(tc, msg_required_and_types);
	tcase_add_test(tc, msg_objects);
	tcase_add_test(tc, msg_list);
	tcase_add_test(tc, records);
	tcase_add_test(tc, msg_keys);
	suite_add_tcase(s, tc);

	tc = tcase_create("bodies");
	tcase_add_test(tc, batch_items);
	tcase_add_test(tc, batch_stream);
	tcase_add_test(tc, batch_reject);
	tcase_add_test(tc, garbage);
	tcase_add_test(tc, msg_access_keys);
	tcase_add_test(tc, msg_key_grants);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
