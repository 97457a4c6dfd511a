// SPDX-License-Identifier: Apache-2.0
/*
 * The Strata wire protocol codec (proto/PROTOCOL.md is the specification).
 *
 * Invariants:
 *  - Every length read off the wire is compared with the bytes that remain
 *    before anything is read through it, and with its PROTO_MAX_* limit
 *    before it sizes anything.  Decoders read only [buf, buf + len).
 *  - Decoders never allocate and never copy payload: strings, bytes and
 *    lists point into the input.  Encoders write only [buf, buf + cap).
 *  - Fields ascend strictly by tag.  That refuses duplicates in O(1) and
 *    gives every message exactly one encoding, so decode then encode
 *    reproduces the input (minus unknown fields): the fuzzer checks it.
 *  - Encoders refuse what decoders refuse (same tables, same bounds), so a
 *    Strata peer never sends a message that another Strata peer rejects.
 *  - assert() guards only this file's own tables, never input.
 *
 * Messages are described by tables (struct fdesc) and coded by one generic
 * decoder and one generic encoder: a new field is one table line, and the
 * bounds a decoder enforces cannot drift from the ones an encoder checks.
 *
 * crc32c convention (same as daemon/record.c): crc32c(seed, buf, len) is the
 * standard CRC-32C (Castagnoli, reflected, init and final xor 0xFFFFFFFF)
 * with seed 0, e.g. "123456789" -> 0xE3069283.  ISA-L's crc32_iscsi() does
 * neither inversion itself, so we add both.  proto/ may not depend on
 * daemon/, hence this file's own copy of the three lines.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <isa-l/crc.h>

#include "le.h"
#include "proto.h"
#include "strata/error.h"
#include "banned.h"

/* Header field offsets (PROTOCOL.md §2.1). */
#define OFF_MAGIC 0
#define OFF_VERSION 4
#define OFF_OPCODE 5
#define OFF_FLAGS 6
#define OFF_ID 8
#define OFF_FIELDS_LEN 16
#define OFF_BODY_LEN 20
#define OFF_RESERVED 24
#define OFF_CRC 28

/* tag u16, type u8, length u16 */
#define FIELD_HDR_LEN 5
#define FIELD_MAX_VALUE 0xffffu

_Static_assert(OFF_CRC + 4 == PROTO_HEADER_LEN, "header layout");
_Static_assert(PROTO_MAX_BODY_LEN <= INT_MAX, "crc32_iscsi takes an int");
_Static_assert(PROTO_MAX_BATCH_KEYS % 64 == 0, "batch bitmap words");

/* Only ever called on a 32-byte header, far below crc32_iscsi's int. */
static uint32_t crc32c(uint32_t seed, const uint8_t *buf, size_t len)
{
	/* ISA-L's prototype lacks const; it only reads. */
	return ~crc32_iscsi((unsigned char *)buf, (int)len, ~seed);
}

/* RFC 3629 UTF-8: no overlongs, no surrogates, nothing past U+10FFFF; and
 * no NUL, so a string can never be cut short by a C API downstream. */
static bool utf8_ok(const uint8_t *s, size_t n);

bool proto_utf8_ok(const void *s, size_t n)
{
	return utf8_ok(s, n);
}

static bool utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		uint32_t cp, min;
		size_t need;

		if (c < 0x80) {
			if (c == 0)
				return false;
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			need = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (n - i - 1 < need)
			return false;
		for (size_t k = 1; k <= need; k++) {
			uint8_t b = s[i + k];

			if ((b & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (b & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

/* ---- Frames ------------------------------------------------------------ */

bool proto_op_has_body(uint8_t opcode, bool response)
{
	switch (opcode) {
	case PROTO_OP_PUT:
		return !response;
	case PROTO_OP_GET:
	case PROTO_OP_STAT:
	case PROTO_OP_LIST:
	case PROTO_OP_BUCKET_LIST:
	case PROTO_OP_BATCH_GET:
	case PROTO_OP_KEY_LIST:
		return response;
	case PROTO_OP_HELLO:
	case PROTO_OP_AUTH:
	case PROTO_OP_PING:
	case PROTO_OP_CANCEL:
	case PROTO_OP_GOAWAY:
	case PROTO_OP_BUCKET_CREATE:
	case PROTO_OP_BUCKET_DELETE:
	case PROTO_OP_DELETE:
	case PROTO_OP_HINT:
	case PROTO_OP_KEY_CREATE:
	case PROTO_OP_KEY_DELETE:
	case PROTO_OP_LIFECYCLE_SET:
	case PROTO_OP_LIFECYCLE_GET:
	case PROTO_OP_NODE_STATS:
	case PROTO_OP_KEY_SET:
	case PROTO_OP_KEY_INFO:
		return false;
	default:
		/* Not ours to judge: the peer answers -EOPNOTSUPP. */
		return true;
	}
}

const char *proto_op_name(uint8_t opcode)
{
	switch (opcode) {
	case PROTO_OP_HELLO: return "HELLO";
	case PROTO_OP_AUTH: return "AUTH";
	case PROTO_OP_PING: return "PING";
	case PROTO_OP_CANCEL: return "CANCEL";
	case PROTO_OP_GOAWAY: return "GOAWAY";
	case PROTO_OP_BUCKET_CREATE: return "BUCKET_CREATE";
	case PROTO_OP_BUCKET_DELETE: return "BUCKET_DELETE";
	case PROTO_OP_BUCKET_LIST: return "BUCKET_LIST";
	case PROTO_OP_PUT: return "PUT";
	case PROTO_OP_GET: return "GET";
	case PROTO_OP_STAT: return "STAT";
	case PROTO_OP_DELETE: return "DELETE";
	case PROTO_OP_LIST: return "LIST";
	case PROTO_OP_BATCH_GET: return "BATCH_GET";
	case PROTO_OP_HINT: return "HINT";
	case PROTO_OP_KEY_CREATE: return "KEY_CREATE";
	case PROTO_OP_KEY_LIST: return "KEY_LIST";
	case PROTO_OP_KEY_DELETE: return "KEY_DELETE";
	case PROTO_OP_LIFECYCLE_SET: return "LIFECYCLE_SET";
	case PROTO_OP_LIFECYCLE_GET: return "LIFECYCLE_GET";
	case PROTO_OP_NODE_STATS: return "NODE_STATS";
	case PROTO_OP_KEY_SET: return "KEY_SET";
	case PROTO_OP_KEY_INFO: return "KEY_INFO";
	default: return NULL;
	}
}

/* The per-frame rules of PROTOCOL.md §2.3; true when h keeps them. */
static bool frame_ok(const struct proto_header *h)
{
	bool resp = h->flags & PROTO_F_RESPONSE;
	bool end = h->flags & PROTO_F_END;
	bool cont = h->flags & PROTO_F_CONT;
	bool error = h->flags & PROTO_F_ERROR;

	if (h->opcode == 0 || (h->flags & ~PROTO_F_KNOWN))
		return false;
	if (h->fields_len > PROTO_MAX_FIELDS_LEN ||
	    h->body_len > PROTO_MAX_BODY_LEN)
		return false;
	/* Id 0 is the connection's own: GOAWAY and nothing else. */
	if ((h->id == 0) != (h->opcode == PROTO_OP_GOAWAY))
		return false;
	if (error && (!resp || !end || h->body_len || !h->fields_len))
		return false;
	/* Fields come first in a message; an ERROR may end a stream. */
	if (cont && !error && h->fields_len)
		return false;
	/* A continuation that does not end must move the stream forward. */
	if (cont && !end && !h->body_len)
		return false;
	if (h->body_len && !proto_op_has_body(h->opcode, resp))
		return false;
	/* A known message without a body is one frame. */
	if (!proto_op_has_body(h->opcode, resp) && (!end || cont))
		return false;
	switch (h->opcode) {
	case PROTO_OP_GOAWAY:
		return resp && !error && h->fields_len;
	case PROTO_OP_CANCEL:
		return !resp && !h->fields_len;
	default:
		return true;
	}
}

int proto_header_decode(const uint8_t *buf, size_t len,
			struct proto_header *h)
{
	struct proto_header t;
	uint8_t tmp[PROTO_HEADER_LEN];

	if (len < PROTO_HEADER_LEN)
		return -EAGAIN;
	if (memcmp(buf + OFF_MAGIC, PROTO_MAGIC, 4) != 0)
		return STRATA_EPROTO;
	/* Before the crc: another version may lay the rest out differently. */
	if (buf[OFF_VERSION] != PROTO_VERSION)
		return STRATA_EPROTOVERSION;
	memcpy(tmp, buf, PROTO_HEADER_LEN);
	memset(tmp + OFF_CRC, 0, 4);
	if (crc32c(0, tmp, PROTO_HEADER_LEN) != get_le32(buf + OFF_CRC))
		return STRATA_EPROTO;
	if (get_le32(buf + OFF_RESERVED) != 0)
		return STRATA_EPROTO;
	t.opcode = buf[OFF_OPCODE];
	t.flags = get_le16(buf + OFF_FLAGS);
	t.id = get_le64(buf + OFF_ID);
	t.fields_len = get_le32(buf + OFF_FIELDS_LEN);
	t.body_len = get_le32(buf + OFF_BODY_LEN);
	if (!frame_ok(&t))
		return STRATA_EPROTO;
	*h = t;
	return 0;
}

int proto_header_encode(const struct proto_header *h,
			uint8_t out[PROTO_HEADER_LEN])
{
	if (!frame_ok(h))
		return -EINVAL;
	memcpy(out + OFF_MAGIC, PROTO_MAGIC, 4);
	out[OFF_VERSION] = PROTO_VERSION;
	out[OFF_OPCODE] = h->opcode;
	put_le16(out + OFF_FLAGS, h->flags);
	put_le64(out + OFF_ID, h->id);
	put_le32(out + OFF_FIELDS_LEN, h->fields_len);
	put_le32(out + OFF_BODY_LEN, h->body_len);
	memset(out + OFF_RESERVED, 0, 8);	/* reserved, crc while summed */
	put_le32(out + OFF_CRC, crc32c(0, out, PROTO_HEADER_LEN));
	return 0;
}

/* ---- String lists ------------------------------------------------------ */

/* Walk an encoded list: every element within bounds and well-formed. */
static bool list_walk(const uint8_t *p, size_t len, uint32_t *count)
{
	uint32_t n = 0;

	while (len) {
		size_t e;

		if (len < 2)
			return false;
		e = get_le16(p);
		if (e > len - 2 || !utf8_ok(p + 2, e))
			return false;
		p += 2 + e;
		len -= 2 + e;
		n++;
	}
	*count = n;
	return true;
}

void proto_list_iter_init(struct proto_list_iter *it,
			  const struct proto_list *l)
{
	it->p = l->p;
	it->left = l->p ? l->len : 0;
}

int proto_list_next(struct proto_list_iter *it, struct proto_str *e)
{
	size_t n;

	if (it->left == 0)
		return 0;
	if (it->left < 2)
		return STRATA_EPROTO;
	n = get_le16(it->p);
	if (n > it->left - 2)
		return STRATA_EPROTO;
	e->s = (const char *)it->p + 2;
	e->len = n;
	it->p += 2 + n;
	it->left -= 2 + n;
	return 1;
}

int proto_list_build(uint8_t *buf, size_t cap, const struct proto_str *elems,
		     size_t n, struct proto_list *out)
{
	size_t len = 0;

	if (n > UINT32_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const struct proto_str *e = &elems[i];

		if (e->len > FIELD_MAX_VALUE || (e->len && !e->s) ||
		    !utf8_ok((const uint8_t *)e->s, e->len))
			return -EINVAL;
		if (cap - len < 2 + e->len)
			return -ENOSPC;
		put_le16(buf + len, (uint16_t)e->len);
		if (e->len)
			memcpy(buf + len + 2, e->s, e->len);
		len += 2 + e->len;
	}
	out->p = buf;
	out->len = len;
	out->count = (uint32_t)n;
	return 0;
}

/* ---- Field reader ------------------------------------------------------ */

void proto_reader_init(struct proto_reader *r, const uint8_t *buf,
		       size_t len)
{
	r->p = buf;
	r->left = buf ? len : 0;
	r->tag = 0;
	r->nfields = 0;
}

int proto_fields_next(struct proto_reader *r, struct proto_field *f)
{
	const uint8_t *v;
	uint32_t count;
	uint16_t tag, len;
	uint8_t type;
	bool ok;

	if (r->left == 0)
		return 0;
	if (r->left < FIELD_HDR_LEN)
		return STRATA_EPROTO;
	tag = get_le16(r->p);
	type = r->p[2];
	len = get_le16(r->p + 3);
	v = r->p + FIELD_HDR_LEN;
	if (tag <= r->tag || len > r->left - FIELD_HDR_LEN ||
	    r->nfields >= PROTO_MAX_FIELDS)
		return STRATA_EPROTO;
	switch (type) {
	case PROTO_T_U8:
		ok = len == 1;
		break;
	case PROTO_T_BOOL:
		ok = len == 1 && v[0] <= 1;
		break;
	case PROTO_T_U32:
	case PROTO_T_I32:
		ok = len == 4;
		break;
	case PROTO_T_U64:
		ok = len == 8;
		break;
	case PROTO_T_STR:
		ok = utf8_ok(v, len);
		break;
	case PROTO_T_STRLIST:
		ok = list_walk(v, len, &count);
		break;
	default:
		/* PROTO_T_BYTES, or a type of a later revision. */
		ok = true;
		break;
	}
	if (!ok)
		return STRATA_EPROTO;
	f->tag = tag;
	f->type = type;
	f->len = len;
	f->val = v;
	r->tag = tag;
	r->nfields++;
	r->p += FIELD_HDR_LEN + len;
	r->left -= FIELD_HDR_LEN + len;
	return 1;
}

int proto_field_u64(const struct proto_field *f, uint64_t *v)
{
	if (f->type != PROTO_T_U64 || f->len != 8)
		return STRATA_EPROTO;
	*v = get_le64(f->val);
	return 0;
}

int proto_field_u32(const struct proto_field *f, uint32_t *v)
{
	if (f->type != PROTO_T_U32 || f->len != 4)
		return STRATA_EPROTO;
	*v = get_le32(f->val);
	return 0;
}

int proto_field_i32(const struct proto_field *f, int32_t *v)
{
	if (f->type != PROTO_T_I32 || f->len != 4)
		return STRATA_EPROTO;
	*v = (int32_t)get_le32(f->val);
	return 0;
}

int proto_field_str(const struct proto_field *f, struct proto_str *v)
{
	if (f->type != PROTO_T_STR)
		return STRATA_EPROTO;
	v->s = (const char *)f->val;
	v->len = f->len;
	return 0;
}

/* ---- Field writer ------------------------------------------------------ */

void proto_writer_init(struct proto_writer *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap < PROTO_MAX_FIELDS_LEN ? cap : PROTO_MAX_FIELDS_LEN;
	w->len = 0;
	w->tag = 0;
	w->nfields = 0;
	w->err = 0;
}

int proto_writer_finish(const struct proto_writer *w, size_t *len)
{
	if (w->err)
		return w->err;
	*len = w->len;
	return 0;
}

/* Reserve a field of len value bytes; NULL (and w->err set) on error. */
static uint8_t *field_begin(struct proto_writer *w, uint16_t tag,
			    uint8_t type, size_t len)
{
	uint8_t *p;

	if (w->err)
		return NULL;
	if (tag <= w->tag || len > FIELD_MAX_VALUE) {
		w->err = -EINVAL;
		return NULL;
	}
	if (w->nfields >= PROTO_MAX_FIELDS ||
	    w->cap - w->len < FIELD_HDR_LEN + len) {
		w->err = -ENOSPC;
		return NULL;
	}
	p = w->buf + w->len;
	put_le16(p, tag);
	p[2] = type;
	put_le16(p + 3, (uint16_t)len);
	w->len += FIELD_HDR_LEN + len;
	w->tag = tag;
	w->nfields++;
	return p + FIELD_HDR_LEN;
}

int proto_write_u8(struct proto_writer *w, uint16_t tag, uint8_t v)
{
	uint8_t *p = field_begin(w, tag, PROTO_T_U8, 1);

	if (!p)
		return w->err;
	p[0] = v;
	return 0;
}

int proto_write_bool(struct proto_writer *w, uint16_t tag, bool v)
{
	uint8_t *p = field_begin(w, tag, PROTO_T_BOOL, 1);

	if (!p)
		return w->err;
	p[0] = v ? 1 : 0;
	return 0;
}

int proto_write_u32(struct proto_writer *w, uint16_t tag, uint32_t v)
{
	uint8_t *p = field_begin(w, tag, PROTO_T_U32, 4);

	if (!p)
		return w->err;
	put_le32(p, v);
	return 0;
}

int proto_write_i32(struct proto_writer *w, uint16_t tag, int32_t v)
{
	uint8_t *p = field_begin(w, tag, PROTO_T_I32, 4);

	if (!p)
		return w->err;
	put_le32(p, (uint32_t)v);
	return 0;
}

int proto_write_u64(struct proto_writer *w, uint16_t tag, uint64_t v)
{
	uint8_t *p = field_begin(w, tag, PROTO_T_U64, 8);

	if (!p)
		return w->err;
	put_le64(p, v);
	return 0;
}

int proto_write_bytes(struct proto_writer *w, uint16_t tag, const void *v,
		      size_t len)
{
	uint8_t *p = field_begin(w, tag, PROTO_T_BYTES, len);

	if (!p)
		return w->err;
	if (len)
		memcpy(p, v, len);
	return 0;
}

int proto_write_str(struct proto_writer *w, uint16_t tag, const char *s,
		    size_t len)
{
	uint8_t *p;

	if (!w->err && ((len && !s) || !utf8_ok((const uint8_t *)s, len)))
		w->err = -EINVAL;
	p = field_begin(w, tag, PROTO_T_STR, len);
	if (!p)
		return w->err;
	if (len)
		memcpy(p, s, len);
	return 0;
}

int proto_write_list(struct proto_writer *w, uint16_t tag,
		     const struct proto_list *l)
{
	uint32_t count;
	uint8_t *p;

	if (!w->err && (!l->p || !list_walk(l->p, l->len, &count) ||
			count != l->count))
		w->err = -EINVAL;
	p = field_begin(w, tag, PROTO_T_STRLIST, l->len);
	if (!p)
		return w->err;
	if (l->len)
		memcpy(p, l->p, l->len);
	return 0;
}

/* ---- Message tables ---------------------------------------------------- */

enum fdesc_flags {
	F_REQ = 1 << 0,		/* required */
	F_RANGE = 1 << 1,	/* numeric value within [min, max] */
	F_PAIRS = 1 << 2,	/* list of name, value pairs */
	F_NEG = 1 << 3,		/* i32 below zero (error codes) */
};

/*
 * One field of a message struct.  For STR and BYTES, [min, max] bounds the
 * length; for STRLIST, the element count, with [emin, emax] bounding each
 * element (each name, for F_PAIRS, whose values are bounded by vmax).  err
 * is the code for a value outside its bounds (0: malformed, so
 * STRATA_EPROTO on decode and -EINVAL on encode).  has is the offset of the
 * bool saying an optional scalar is present, or -1.
 */
struct fdesc {
	uint16_t tag;
	uint8_t type;
	uint8_t flags;
	uint16_t off;
	int16_t has;
	uint64_t min, max;
	uint16_t emin, emax, vmax;
	int err;
};

struct mdesc {
	const struct fdesc *f;
	size_t n;
	size_t size;		/* sizeof the message struct */
};

#define FREQ(T, tag_, type_, mem)					\
	{ .tag = tag_, .type = type_, .flags = F_REQ,			\
	  .off = offsetof(T, mem), .has = -1 }
#define FOPT(T, tag_, type_, mem, hasmem)				\
	{ .tag = tag_, .type = type_, .off = offsetof(T, mem),		\
	  .has = offsetof(T, hasmem) }
/* A required numeric field bounded to [lo, hi]. */
#define FRNG(T, tag_, type_, mem, lo, hi)				\
	{ .tag = tag_, .type = type_, .flags = F_REQ | F_RANGE,	\
	  .off = offsetof(T, mem), .has = -1, .min = lo, .max = hi }
#define FOPTRNG(T, tag_, type_, mem, hasmem, lo, hi)			\
	{ .tag = tag_, .type = type_, .flags = F_RANGE,			\
	  .off = offsetof(T, mem), .has = offsetof(T, hasmem),		\
	  .min = lo, .max = hi }
/* A string or bytes of [lo, hi] bytes; fl is F_REQ or 0. */
#define FSTR(T, tag_, type_, fl, mem, lo, hi, err_)			\
	{ .tag = tag_, .type = type_, .flags = fl,			\
	  .off = offsetof(T, mem), .has = -1, .min = lo, .max = hi,	\
	  .err = err_ }
#define FPAIRS(T, tag_, mem)						\
	{ .tag = tag_, .type = PROTO_T_STRLIST, .flags = F_PAIRS,	\
	  .off = offsetof(T, mem), .has = -1, .min = 0,		\
	  .max = 2 * PROTO_MAX_KV, .emin = 1,				\
	  .emax = PROTO_MAX_KV_NAME_LEN,				\
	  .vmax = PROTO_MAX_KV_VALUE_LEN, .err = STRATA_EBADMETA }
#define FKEYS(T, tag_, mem)						\
	{ .tag = tag_, .type = PROTO_T_STRLIST, .flags = F_REQ,	\
	  .off = offsetof(T, mem), .has = -1, .min = 1,		\
	  .max = PROTO_MAX_BATCH_KEYS, .emin = 1,			\
	  .emax = PROTO_MAX_KEY_LEN, .err = STRATA_EBADKEY }
#define FBUCKET(T, mem) FSTR(T, PROTO_TAG_BUCKET, PROTO_T_STR, F_REQ, mem, \
			     1, PROTO_MAX_BUCKET_LEN, STRATA_EBADBUCKET)
#define FKEY(T, mem) FSTR(T, PROTO_TAG_KEY, PROTO_T_STR, F_REQ, mem,	\
			  1, PROTO_MAX_KEY_LEN, STRATA_EBADKEY)
#define FETAG(T, mem) FSTR(T, PROTO_TAG_ETAG, PROTO_T_BYTES, F_REQ, mem, \
			   PROTO_ETAG_LEN, PROTO_ETAG_LEN, 0)

#define MDESC(name, T) \
	static const struct mdesc name = { name##_f, \
		sizeof(name##_f) / sizeof(name##_f[0]), sizeof(T) }

static const struct fdesc hello_req_d_f[] = {
	FRNG(struct proto_hello_req, PROTO_TAG_PROTO_VERSION, PROTO_T_U32,
	     version, 1, UINT32_MAX),
	FOPT(struct proto_hello_req, PROTO_TAG_FEATURES, PROTO_T_U64,
	     features, has_features),
	FSTR(struct proto_hello_req, PROTO_TAG_AGENT, PROTO_T_STR, 0, agent,
	     0, PROTO_MAX_NAME_LEN, 0),
};
MDESC(hello_req_d, struct proto_hello_req);

static const struct fdesc hello_resp_d_f[] = {
	FRNG(struct proto_hello_resp, PROTO_TAG_PROTO_VERSION, PROTO_T_U32,
	     version, 1, UINT32_MAX),
	FREQ(struct proto_hello_resp, PROTO_TAG_FEATURES, PROTO_T_U64,
	     features),
	FSTR(struct proto_hello_resp, PROTO_TAG_NONCE, PROTO_T_BYTES, F_REQ,
	     nonce, PROTO_NONCE_LEN, PROTO_NONCE_LEN, 0),
	FSTR(struct proto_hello_resp, PROTO_TAG_SERVER, PROTO_T_STR, 0,
	     server, 0, PROTO_MAX_NAME_LEN, 0),
	FOPT(struct proto_hello_resp, PROTO_TAG_NODE_ID, PROTO_T_U32,
	     node_id, has_node_id),
	FOPT(struct proto_hello_resp, PROTO_TAG_MAP_VERSION, PROTO_T_U64,
	     map_version, has_map_version),
	FRNG(struct proto_hello_resp, PROTO_TAG_MAX_REQUESTS, PROTO_T_U32,
	     max_requests, 1, UINT32_MAX),
	FRNG(struct proto_hello_resp, PROTO_TAG_MAX_INFLIGHT, PROTO_T_U64,
	     max_inflight, PROTO_MAX_BODY_LEN, UINT64_MAX),
	FRNG(struct proto_hello_resp, PROTO_TAG_MAX_BODY, PROTO_T_U32,
	     max_body, 4096, PROTO_MAX_BODY_LEN),
};
MDESC(hello_resp_d, struct proto_hello_resp);

static const struct fdesc auth_req_d_f[] = {
	FSTR(struct proto_auth_req, PROTO_TAG_ACCESS_KEY_ID, PROTO_T_STR,
	     F_REQ, access_key_id, 1, PROTO_MAX_ACCESS_KEY_ID_LEN, 0),
	FSTR(struct proto_auth_req, PROTO_TAG_PROOF, PROTO_T_BYTES, F_REQ,
	     proof, PROTO_PROOF_LEN, PROTO_PROOF_LEN, 0),
};
MDESC(auth_req_d, struct proto_auth_req);

static const struct fdesc auth_resp_d_f[] = {
	FSTR(struct proto_auth_resp, PROTO_TAG_PRINCIPAL, PROTO_T_STR, 0,
	     principal, 0, PROTO_MAX_NAME_LEN, 0),
};
MDESC(auth_resp_d, struct proto_auth_resp);

static const struct fdesc error_d_f[] = {
	{ .tag = PROTO_TAG_CODE, .type = PROTO_T_I32, .flags = F_REQ | F_NEG,
	  .off = offsetof(struct proto_error, code), .has = -1 },
	FSTR(struct proto_error, PROTO_TAG_MESSAGE, PROTO_T_STR, 0, message,
	     0, PROTO_MAX_TEXT_LEN, 0),
};
MDESC(error_d, struct proto_error);

static const struct fdesc bucket_req_d_f[] = {
	FBUCKET(struct proto_bucket_req, bucket),
};
MDESC(bucket_req_d, struct proto_bucket_req);

static const struct fdesc bucket_list_req_d_f[] = {
	FSTR(struct proto_bucket_list_req, PROTO_TAG_START_AFTER, PROTO_T_STR,
	     0, start_after, 0, PROTO_MAX_BUCKET_LEN, STRATA_EBADBUCKET),
	FOPTRNG(struct proto_bucket_list_req, PROTO_TAG_LIMIT, PROTO_T_U32,
		limit, has_limit, 1, PROTO_MAX_LIST_LIMIT),
};
MDESC(bucket_list_req_d, struct proto_bucket_list_req);

static const struct fdesc bucket_list_resp_d_f[] = {
	FREQ(struct proto_bucket_list_resp, PROTO_TAG_TRUNCATED, PROTO_T_BOOL,
	     truncated),
	FRNG(struct proto_bucket_list_resp, PROTO_TAG_COUNT, PROTO_T_U32,
	     count, 0, PROTO_MAX_LIST_LIMIT),
};
MDESC(bucket_list_resp_d, struct proto_bucket_list_resp);

static const struct fdesc put_req_d_f[] = {
	FBUCKET(struct proto_put_req, bucket),
	FKEY(struct proto_put_req, key),
	FOPT(struct proto_put_req, PROTO_TAG_SIZE, PROTO_T_U64, size,
	     has_size),
	FSTR(struct proto_put_req, PROTO_TAG_CONTENT_TYPE, PROTO_T_STR, 0,
	     content_type, 0, PROTO_MAX_CTYPE_LEN, STRATA_EBADMETA),
	FPAIRS(struct proto_put_req, PROTO_TAG_META, meta),
	FPAIRS(struct proto_put_req, PROTO_TAG_TAGS, tags),
};
MDESC(put_req_d, struct proto_put_req);

static const struct fdesc put_resp_d_f[] = {
	FREQ(struct proto_put_resp, PROTO_TAG_SIZE, PROTO_T_U64, size),
	FETAG(struct proto_put_resp, etag),
	FREQ(struct proto_put_resp, PROTO_TAG_VERSION, PROTO_T_U64, version),
	FREQ(struct proto_put_resp, PROTO_TAG_WRITER, PROTO_T_U32, writer),
};
MDESC(put_resp_d, struct proto_put_resp);

static const struct fdesc object_req_d_f[] = {
	FBUCKET(struct proto_object_req, bucket),
	FKEY(struct proto_object_req, key),
};
MDESC(object_req_d, struct proto_object_req);

static const struct fdesc get_req_d_f[] = {
	FBUCKET(struct proto_get_req, bucket),
	FKEY(struct proto_get_req, key),
	FOPT(struct proto_get_req, PROTO_TAG_OFFSET, PROTO_T_U64, offset,
	     has_offset),
	FOPT(struct proto_get_req, PROTO_TAG_LENGTH, PROTO_T_U64, length,
	     has_length),
};
MDESC(get_req_d, struct proto_get_req);

/* struct proto_object_info's fields inside a response struct T. */
#define INFO_FIELDS(T)							\
	FREQ(T, PROTO_TAG_SIZE, PROTO_T_U64, info.size),		\
	FSTR(T, PROTO_TAG_CONTENT_TYPE, PROTO_T_STR, 0,			\
	     info.content_type, 0, PROTO_MAX_CTYPE_LEN, STRATA_EBADMETA), \
	FPAIRS(T, PROTO_TAG_META, info.meta),				\
	FPAIRS(T, PROTO_TAG_TAGS, info.tags),				\
	FETAG(T, info.etag),						\
	FREQ(T, PROTO_TAG_VERSION, PROTO_T_U64, info.version),		\
	FREQ(T, PROTO_TAG_WRITER, PROTO_T_U32, info.writer),		\
	FOPT(T, PROTO_TAG_MTIME, PROTO_T_U64, info.mtime_ms, info.has_mtime)

static const struct fdesc get_resp_d_f[] = {
	INFO_FIELDS(struct proto_get_resp),
	FREQ(struct proto_get_resp, PROTO_TAG_OFFSET, PROTO_T_U64, offset),
	FREQ(struct proto_get_resp, PROTO_TAG_LENGTH, PROTO_T_U64, length),
};
MDESC(get_resp_d, struct proto_get_resp);

static const struct fdesc stat_resp_d_f[] = {
	INFO_FIELDS(struct proto_stat_resp),
	FREQ(struct proto_stat_resp, PROTO_TAG_COUNT, PROTO_T_U32, count),
	FREQ(struct proto_stat_resp, PROTO_TAG_CHUNK_SIZE, PROTO_T_U32,
	     chunk_size),
};
MDESC(stat_resp_d, struct proto_stat_resp);

static const struct fdesc delete_resp_d_f[] = {
	FOPT(struct proto_delete_resp, PROTO_TAG_VERSION, PROTO_T_U64,
	     version, has_version),
	{ .tag = PROTO_TAG_WRITER, .type = PROTO_T_U32,
	  .off = offsetof(struct proto_delete_resp, writer),
	  .has = offsetof(struct proto_delete_resp, has_version) },
};
MDESC(delete_resp_d, struct proto_delete_resp);

static const struct fdesc list_req_d_f[] = {
	FBUCKET(struct proto_list_req, bucket),
	FSTR(struct proto_list_req, PROTO_TAG_PREFIX, PROTO_T_STR, 0, prefix,
	     0, PROTO_MAX_KEY_LEN, STRATA_EBADKEY),
	FSTR(struct proto_list_req, PROTO_TAG_DELIMITER, PROTO_T_STR, 0,
	     delimiter, 1, PROTO_MAX_DELIMITER_LEN, 0),
	FSTR(struct proto_list_req, PROTO_TAG_START_AFTER, PROTO_T_STR, 0,
	     start_after, 0, PROTO_MAX_KEY_LEN, STRATA_EBADKEY),
	FOPTRNG(struct proto_list_req, PROTO_TAG_LIMIT, PROTO_T_U32, limit,
		has_limit, 1, PROTO_MAX_LIST_LIMIT),
};
MDESC(list_req_d, struct proto_list_req);

static const struct fdesc list_resp_d_f[] = {
	FREQ(struct proto_list_resp, PROTO_TAG_TRUNCATED, PROTO_T_BOOL,
	     truncated),
	FSTR(struct proto_list_resp, PROTO_TAG_NEXT_START_AFTER, PROTO_T_STR,
	     0, next_start_after, 1, PROTO_MAX_KEY_LEN, 0),
	FRNG(struct proto_list_resp, PROTO_TAG_COUNT, PROTO_T_U32, count, 0,
	     PROTO_MAX_LIST_LIMIT),
};
MDESC(list_resp_d, struct proto_list_resp);

static const struct fdesc keys_req_d_f[] = {
	FBUCKET(struct proto_keys_req, bucket),
	FKEYS(struct proto_keys_req, PROTO_TAG_KEYS, keys),
};
MDESC(keys_req_d, struct proto_keys_req);

static const struct fdesc batch_resp_d_f[] = {
	FRNG(struct proto_batch_resp, PROTO_TAG_COUNT, PROTO_T_U32, count, 1,
	     PROTO_MAX_BATCH_KEYS),
};
MDESC(batch_resp_d, struct proto_batch_resp);

/* Records.  A LIST entry is an object or a common prefix: two encodings,
 * decoded through one table with everything optional, then checked. */
static const struct fdesc list_object_d_f[] = {
	FKEY(struct proto_list_entry, key),
	FREQ(struct proto_list_entry, PROTO_TAG_SIZE, PROTO_T_U64, size),
	FETAG(struct proto_list_entry, etag),
	FREQ(struct proto_list_entry, PROTO_TAG_VERSION, PROTO_T_U64,
	     version),
	FREQ(struct proto_list_entry, PROTO_TAG_MTIME, PROTO_T_U64,
	     mtime_ms),
};
MDESC(list_object_d, struct proto_list_entry);

static const struct fdesc list_prefix_d_f[] = {
	FSTR(struct proto_list_entry, PROTO_TAG_PREFIX, PROTO_T_STR, F_REQ,
	     prefix, 1, PROTO_MAX_KEY_LEN, STRATA_EBADKEY),
};
MDESC(list_prefix_d, struct proto_list_entry);

#define LE_KEY 0
#define LE_PREFIX 5
#define LE_OBJECT_ALL 0x1full
static const struct fdesc list_any_d_f[] = {
	FSTR(struct proto_list_entry, PROTO_TAG_KEY, PROTO_T_STR, 0, key,
	     1, PROTO_MAX_KEY_LEN, STRATA_EBADKEY),
	{ .tag = PROTO_TAG_SIZE, .type = PROTO_T_U64,
	  .off = offsetof(struct proto_list_entry, size), .has = -1 },
	FSTR(struct proto_list_entry, PROTO_TAG_ETAG, PROTO_T_BYTES, 0, etag,
	     PROTO_ETAG_LEN, PROTO_ETAG_LEN, 0),
	{ .tag = PROTO_TAG_VERSION, .type = PROTO_T_U64,
	  .off = offsetof(struct proto_list_entry, version), .has = -1 },
	{ .tag = PROTO_TAG_MTIME, .type = PROTO_T_U64,
	  .off = offsetof(struct proto_list_entry, mtime_ms), .has = -1 },
	FSTR(struct proto_list_entry, PROTO_TAG_PREFIX, PROTO_T_STR, 0,
	     prefix, 1, PROTO_MAX_KEY_LEN, STRATA_EBADKEY),
};
MDESC(list_any_d, struct proto_list_entry);

static const struct fdesc bucket_entry_d_f[] = {
	FBUCKET(struct proto_bucket_entry, bucket),
	FREQ(struct proto_bucket_entry, PROTO_TAG_CTIME, PROTO_T_U64,
	     ctime_ms),
};
MDESC(bucket_entry_d, struct proto_bucket_entry);

static const struct fdesc chunk_entry_d_f[] = {
	FREQ(struct proto_chunk_entry, PROTO_TAG_TIER, PROTO_T_U8, tier),
	FREQ(struct proto_chunk_entry, PROTO_TAG_RAW_LEN, PROTO_T_U32,
	     raw_len),
	FREQ(struct proto_chunk_entry, PROTO_TAG_STORED_LEN, PROTO_T_U32,
	     stored_len),
};
MDESC(chunk_entry_d, struct proto_chunk_entry);

#define FPOLICY(T, mem)							\
	FSTR(T, PROTO_TAG_POLICY, PROTO_T_STR, 0, mem, 0,		\
	     PROTO_MAX_POLICY_LEN, STRATA_EBADPOLICY)

static const struct fdesc key_create_req_d_f[] = {
	FOPT(struct proto_key_create_req, PROTO_TAG_ADMIN, PROTO_T_BOOL,
	     admin, has_admin),
	FPOLICY(struct proto_key_create_req, policy),
	FPAIRS(struct proto_key_create_req, PROTO_TAG_ATTRS, attrs),
};
MDESC(key_create_req_d, struct proto_key_create_req);

static const struct fdesc key_create_resp_d_f[] = {
	FSTR(struct proto_key_create_resp, PROTO_TAG_ACCESS_KEY_ID,
	     PROTO_T_STR, F_REQ, access_key_id, 1,
	     PROTO_MAX_ACCESS_KEY_ID_LEN, 0),
	FSTR(struct proto_key_create_resp, PROTO_TAG_SECRET, PROTO_T_STR,
	     F_REQ, secret, 1, PROTO_MAX_SECRET_LEN, 0),
	FREQ(struct proto_key_create_resp, PROTO_TAG_ADMIN, PROTO_T_BOOL,
	     admin),
};
MDESC(key_create_resp_d, struct proto_key_create_resp);

static const struct fdesc key_req_d_f[] = {
	FSTR(struct proto_key_req, PROTO_TAG_ACCESS_KEY_ID, PROTO_T_STR,
	     F_REQ, access_key_id, 1, PROTO_MAX_ACCESS_KEY_ID_LEN, 0),
};
MDESC(key_req_d, struct proto_key_req);

static const struct fdesc key_set_req_d_f[] = {
	FSTR(struct proto_key_set_req, PROTO_TAG_ACCESS_KEY_ID, PROTO_T_STR,
	     F_REQ, access_key_id, 1, PROTO_MAX_ACCESS_KEY_ID_LEN, 0),
	FPOLICY(struct proto_key_set_req, policy),
	{ .tag = PROTO_TAG_ATTRS, .type = PROTO_T_STRLIST, .flags = F_PAIRS,
	  .off = offsetof(struct proto_key_set_req, attrs),
	  .has = offsetof(struct proto_key_set_req, has_attrs), .min = 0,
	  .max = 2 * PROTO_MAX_KV, .emin = 1, .emax = PROTO_MAX_KV_NAME_LEN,
	  .vmax = PROTO_MAX_KV_VALUE_LEN, .err = STRATA_EBADMETA },
};
MDESC(key_set_req_d, struct proto_key_set_req);

static const struct fdesc key_info_resp_d_f[] = {
	FREQ(struct proto_key_info_resp, PROTO_TAG_CTIME, PROTO_T_U64,
	     ctime_ms),
	FSTR(struct proto_key_info_resp, PROTO_TAG_ACCESS_KEY_ID,
	     PROTO_T_STR, F_REQ, access_key_id, 1,
	     PROTO_MAX_ACCESS_KEY_ID_LEN, 0),
	FREQ(struct proto_key_info_resp, PROTO_TAG_ADMIN, PROTO_T_BOOL,
	     admin),
	FPOLICY(struct proto_key_info_resp, policy),
	FPAIRS(struct proto_key_info_resp, PROTO_TAG_ATTRS, attrs),
};
MDESC(key_info_resp_d, struct proto_key_info_resp);

static const struct fdesc key_list_resp_d_f[] = {
	FRNG(struct proto_key_list_resp, PROTO_TAG_COUNT, PROTO_T_U32,
	     count, 0, UINT32_MAX),
};
MDESC(key_list_resp_d, struct proto_key_list_resp);

static const struct fdesc key_entry_d_f[] = {
	FSTR(struct proto_key_entry, PROTO_TAG_ACCESS_KEY_ID, PROTO_T_STR,
	     F_REQ, access_key_id, 1, PROTO_MAX_ACCESS_KEY_ID_LEN, 0),
	FREQ(struct proto_key_entry, PROTO_TAG_ADMIN, PROTO_T_BOOL, admin),
};
MDESC(key_entry_d, struct proto_key_entry);

#define FRULES(T, fl, mem)						\
	{ .tag = PROTO_TAG_RULES, .type = PROTO_T_STRLIST, .flags = fl,	\
	  .off = offsetof(T, mem), .has = -1, .min = 0,		\
	  .max = PROTO_MAX_RULES, .emin = 1,				\
	  .emax = PROTO_MAX_RULE_LEN, .err = STRATA_EPROTO }

static const struct fdesc lifecycle_req_d_f[] = {
	FBUCKET(struct proto_lifecycle_req, bucket),
	FRULES(struct proto_lifecycle_req, 0, rules),
};
MDESC(lifecycle_req_d, struct proto_lifecycle_req);

static const struct fdesc lifecycle_resp_d_f[] = {
	FRULES(struct proto_lifecycle_resp, F_REQ, rules),
};
MDESC(lifecycle_resp_d, struct proto_lifecycle_resp);

static const struct fdesc stats_resp_d_f[] = {
	{ .tag = PROTO_TAG_STATS, .type = PROTO_T_STRLIST, .flags = F_REQ,
	  .off = offsetof(struct proto_stats_resp, stats), .has = -1,
	  .min = 0, .max = PROTO_MAX_STATS, .emin = 3,
	  .emax = PROTO_MAX_STAT_LEN, .err = STRATA_EPROTO },
};
MDESC(stats_resp_d, struct proto_stats_resp);

static const struct fdesc empty_d_f[1];
static const struct mdesc empty_d = { empty_d_f, 0, 0 };

/* ---- Generic message codec --------------------------------------------- */

/* Bounds of a list value beyond well-formedness (checked by list_walk). */
static bool list_bounds(const struct fdesc *d, const uint8_t *p, size_t len,
			uint32_t count)
{
	size_t i = 0;

	if (count < d->min || count > d->max)
		return false;
	if ((d->flags & F_PAIRS) && (count & 1))
		return false;
	while (len) {
		size_t e = get_le16(p);
		bool value = (d->flags & F_PAIRS) && (i & 1);

		if (value ? e > d->vmax : (e < d->emin || e > d->emax))
			return false;
		p += 2 + e;
		len -= 2 + e;
		i++;
	}
	return true;
}

static int decode_fields_raw(const struct mdesc *md, const uint8_t *buf,
			     size_t len, void *m, uint64_t *seenp)
{
	struct proto_reader r;
	struct proto_field f;
	uint64_t seen = 0;
	size_t j = 0;
	int rc;

	assert(md->n <= 64);
	memset(m, 0, md->size);
	if (len > PROTO_MAX_FIELDS_LEN)
		return STRATA_EPROTO;
	proto_reader_init(&r, buf, len);
	while ((rc = proto_fields_next(&r, &f)) > 0) {
		const struct fdesc *d;
		char *dst;
		uint64_t v = 0;
		uint32_t count;

		while (j < md->n && md->f[j].tag < f.tag)
			j++;
		if (j == md->n || md->f[j].tag != f.tag) {
			/* Forward compatibility: later revisions add tags. */
			if (f.tag & PROTO_TAG_CRITICAL)
				return STRATA_EPROTO;
			continue;
		}
		d = &md->f[j];
		dst = (char *)m + d->off;
		if (f.type != d->type)
			return STRATA_EPROTO;
		switch (d->type) {
		case PROTO_T_U8:
			v = f.val[0];
			*(uint8_t *)dst = (uint8_t)v;
			break;
		case PROTO_T_BOOL:
			*(bool *)dst = f.val[0];
			break;
		case PROTO_T_U32:
			v = get_le32(f.val);
			*(uint32_t *)dst = (uint32_t)v;
			break;
		case PROTO_T_I32:
			*(int32_t *)dst = (int32_t)get_le32(f.val);
			if ((d->flags & F_NEG) && *(int32_t *)dst >= 0)
				return STRATA_EPROTO;
			break;
		case PROTO_T_U64:
			v = get_le64(f.val);
			*(uint64_t *)dst = v;
			break;
		case PROTO_T_BYTES:
		case PROTO_T_STR:
			if (f.len < d->min || f.len > d->max)
				return d->err ? d->err : STRATA_EPROTO;
			if (d->type == PROTO_T_STR) {
				((struct proto_str *)dst)->s =
					(const char *)f.val;
				((struct proto_str *)dst)->len = f.len;
			} else {
				((struct proto_bytes *)dst)->p = f.val;
				((struct proto_bytes *)dst)->len = f.len;
			}
			break;
		case PROTO_T_STRLIST:
			/* proto_fields_next has walked it; this cannot fail. */
			if (!list_walk(f.val, f.len, &count))
				return STRATA_EPROTO;
			if (!list_bounds(d, f.val, f.len, count))
				return d->err ? d->err : STRATA_EPROTO;
			((struct proto_list *)dst)->p = f.val;
			((struct proto_list *)dst)->len = f.len;
			((struct proto_list *)dst)->count = count;
			break;
		default:
			return STRATA_EPROTO;
		}
		if ((d->flags & F_RANGE) && (v < d->min || v > d->max))
			return STRATA_EPROTO;
		if (d->has >= 0)
			*(bool *)((char *)m + d->has) = true;
		seen |= 1ull << j;
		j++;
	}
	if (rc < 0)
		return rc;
	for (j = 0; j < md->n; j++)
		if ((md->f[j].flags & F_REQ) && !(seen & 1ull << j))
			return STRATA_EPROTO;
	if (seenp)
		*seenp = seen;
	return 0;
}

/* On error *m is zeroed: no half-decoded message escapes. */
static int decode_fields(const struct mdesc *md, const uint8_t *buf,
			 size_t len, void *m, uint64_t *seenp)
{
	int rc = decode_fields_raw(md, buf, len, m, seenp);

	if (rc)
		memset(m, 0, md->size);
	return rc;
}

static int encode_field(const struct fdesc *d, const void *m,
			struct proto_writer *w)
{
	const char *src = (const char *)m + d->off;
	const struct proto_bytes *b;
	const struct proto_str *str;
	const struct proto_list *l;
	uint64_t v = 0;
	uint32_t count;

	if (d->has >= 0 && !*(const bool *)((const char *)m + d->has))
		return 0;
	switch (d->type) {
	case PROTO_T_U8:
		v = *(const uint8_t *)src;
		break;
	case PROTO_T_U32:
		v = *(const uint32_t *)src;
		break;
	case PROTO_T_U64:
		v = *(const uint64_t *)src;
		break;
	case PROTO_T_I32:
		if ((d->flags & F_NEG) && *(const int32_t *)src >= 0)
			return -EINVAL;
		return proto_write_i32(w, d->tag, *(const int32_t *)src);
	case PROTO_T_BOOL:
		return proto_write_bool(w, d->tag, *(const bool *)src);
	case PROTO_T_BYTES:
		b = (const struct proto_bytes *)src;
		if (!b->p)
			return (d->flags & F_REQ) ? -EINVAL : 0;
		if (b->len < d->min || b->len > d->max)
			return d->err ? d->err : -EINVAL;
		return proto_write_bytes(w, d->tag, b->p, b->len);
	case PROTO_T_STR:
		str = (const struct proto_str *)src;
		if (!str->s)
			return (d->flags & F_REQ) ? -EINVAL : 0;
		if (str->len < d->min || str->len > d->max)
			return d->err ? d->err : -EINVAL;
		return proto_write_str(w, d->tag, str->s, str->len);
	case PROTO_T_STRLIST:
		l = (const struct proto_list *)src;
		if (!l->p)
			return (d->flags & F_REQ) ? -EINVAL : 0;
		if (!list_walk(l->p, l->len, &count) || count != l->count)
			return -EINVAL;
		if (!list_bounds(d, l->p, l->len, count))
			return d->err ? d->err : -EINVAL;
		return proto_write_list(w, d->tag, l);
	default:
		return -EINVAL;
	}
	if ((d->flags & F_RANGE) && (v < d->min || v > d->max))
		return -EINVAL;
	if (d->type == PROTO_T_U8)
		return proto_write_u8(w, d->tag, (uint8_t)v);
	if (d->type == PROTO_T_U32)
		return proto_write_u32(w, d->tag, (uint32_t)v);
	return proto_write_u64(w, d->tag, v);
}

static int encode_into(const struct mdesc *md, const void *m,
		       struct proto_writer *w)
{
	for (size_t j = 0; j < md->n; j++) {
		int rc = encode_field(&md->f[j], m, w);

		if (rc)
			return rc;
	}
	return 0;
}

static int encode_msg(const struct mdesc *md, const void *m, uint8_t *buf,
		      size_t cap, size_t *len)
{
	struct proto_writer w;
	int rc;

	proto_writer_init(&w, buf, cap);
	rc = encode_into(md, m, &w);
	return rc ? rc : proto_writer_finish(&w, len);
}

#define MSG_CODEC(name)							\
	int proto_##name##_encode(const struct proto_##name *m,		\
				  uint8_t *buf, size_t cap, size_t *len)	\
	{								\
		return encode_msg(&name##_d, m, buf, cap, len);		\
	}								\
	int proto_##name##_decode(const uint8_t *buf, size_t len,	\
				  struct proto_##name *m)		\
	{								\
		return decode_fields(&name##_d, buf, len, m, NULL);	\
	}

MSG_CODEC(hello_req)
MSG_CODEC(hello_resp)
MSG_CODEC(auth_req)
MSG_CODEC(auth_resp)
MSG_CODEC(error)
MSG_CODEC(bucket_req)
MSG_CODEC(bucket_list_req)
MSG_CODEC(bucket_list_resp)
MSG_CODEC(put_req)
MSG_CODEC(put_resp)
MSG_CODEC(object_req)
MSG_CODEC(get_req)
MSG_CODEC(get_resp)
MSG_CODEC(stat_resp)
MSG_CODEC(list_req)
MSG_CODEC(keys_req)
MSG_CODEC(batch_resp)
MSG_CODEC(key_create_req)
MSG_CODEC(key_create_resp)
MSG_CODEC(key_req)
MSG_CODEC(key_set_req)
MSG_CODEC(key_info_resp)
MSG_CODEC(key_list_resp)
MSG_CODEC(lifecycle_req)
MSG_CODEC(lifecycle_resp)
MSG_CODEC(stats_resp)

/* DELETE: the tombstone's version and writer come together or not at all. */
int proto_delete_resp_encode(const struct proto_delete_resp *m, uint8_t *buf,
			     size_t cap, size_t *len)
{
	return encode_msg(&delete_resp_d, m, buf, cap, len);
}

int proto_delete_resp_decode(const uint8_t *buf, size_t len,
			     struct proto_delete_resp *m)
{
	uint64_t seen;
	int rc = decode_fields(&delete_resp_d, buf, len, m, &seen);

	if (rc)
		return rc;
	if (seen != 0 && seen != 3) {
		memset(m, 0, sizeof(*m));
		return STRATA_EPROTO;
	}
	return 0;
}

/* LIST: a truncated listing says where to go on, and only then. */
int proto_list_resp_encode(const struct proto_list_resp *m, uint8_t *buf,
			   size_t cap, size_t *len)
{
	if (m->truncated != (m->next_start_after.s != NULL))
		return -EINVAL;
	return encode_msg(&list_resp_d, m, buf, cap, len);
}

int proto_list_resp_decode(const uint8_t *buf, size_t len,
			   struct proto_list_resp *m)
{
	int rc = decode_fields(&list_resp_d, buf, len, m, NULL);

	if (rc)
		return rc;
	if (m->truncated != (m->next_start_after.s != NULL)) {
		memset(m, 0, sizeof(*m));
		return STRATA_EPROTO;
	}
	return 0;
}

int proto_empty_decode(const uint8_t *buf, size_t len)
{
	char none;

	return decode_fields(&empty_d, buf, len, &none, NULL);
}

int proto_auth_transcript(const uint8_t nonce[PROTO_NONCE_LEN],
			  const uint8_t exporter[PROTO_EXPORTER_LEN],
			  const char *key_id, size_t key_id_len,
			  uint8_t *out, size_t cap, size_t *len)
{
	const size_t label = sizeof(PROTO_AUTH_LABEL) - 1;
	size_t n = label + PROTO_NONCE_LEN + PROTO_EXPORTER_LEN + key_id_len;

	if (key_id_len == 0 || key_id_len > PROTO_MAX_ACCESS_KEY_ID_LEN ||
	    !key_id || !utf8_ok((const uint8_t *)key_id, key_id_len))
		return -EINVAL;
	if (cap < n)
		return -ENOSPC;
	memcpy(out, PROTO_AUTH_LABEL, label);
	memcpy(out + label, nonce, PROTO_NONCE_LEN);
	memcpy(out + label + PROTO_NONCE_LEN, exporter, PROTO_EXPORTER_LEN);
	memcpy(out + label + PROTO_NONCE_LEN + PROTO_EXPORTER_LEN, key_id,
	       key_id_len);
	*len = n;
	return 0;
}

/* ---- Records ----------------------------------------------------------- */

void proto_records_init(struct proto_records *it, const uint8_t *body,
			size_t len)
{
	it->p = body;
	it->left = body ? len : 0;
}

int proto_records_next(struct proto_records *it, struct proto_bytes *rec)
{
	size_t n;

	if (it->left == 0)
		return 0;
	if (it->left < 2)
		return STRATA_EPROTO;
	n = get_le16(it->p);
	if (n > it->left - 2)
		return STRATA_EPROTO;
	rec->p = it->p + 2;
	rec->len = n;
	it->p += 2 + n;
	it->left -= 2 + n;
	return 1;
}

static int encode_record(const struct mdesc *md, const void *m, uint8_t *buf,
			 size_t cap, size_t *len)
{
	size_t n;
	int rc;

	if (cap < 2)
		return -ENOSPC;
	cap -= 2;
	if (cap > PROTO_MAX_RECORD_LEN)
		cap = PROTO_MAX_RECORD_LEN;
	rc = encode_msg(md, m, buf + 2, cap, &n);
	if (rc)
		return rc;
	put_le16(buf, (uint16_t)n);
	*len = n + 2;
	return 0;
}

int proto_list_entry_encode(const struct proto_list_entry *e, uint8_t *buf,
			    size_t cap, size_t *len)
{
	if ((e->key.s != NULL) == (e->prefix.s != NULL))
		return -EINVAL;
	return encode_record(e->key.s ? &list_object_d : &list_prefix_d, e,
			     buf, cap, len);
}

int proto_list_entry_decode(const uint8_t *rec, size_t len,
			    struct proto_list_entry *e)
{
	uint64_t seen;
	int rc = decode_fields(&list_any_d, rec, len, e, &seen);

	if (!rc && len > PROTO_MAX_RECORD_LEN)
		rc = STRATA_EPROTO;
	if (rc) {
		memset(e, 0, sizeof(*e));
		return rc;
	}
	if (seen == LE_OBJECT_ALL || seen == 1ull << LE_PREFIX)
		return 0;
	memset(e, 0, sizeof(*e));
	return STRATA_EPROTO;
}

int proto_bucket_entry_encode(const struct proto_bucket_entry *e,
			      uint8_t *buf, size_t cap, size_t *len)
{
	return encode_record(&bucket_entry_d, e, buf, cap, len);
}

static int decode_record(const struct mdesc *md, const uint8_t *rec,
			 size_t len, void *m)
{
	int rc = decode_fields(md, rec, len, m, NULL);

	if (!rc && len > PROTO_MAX_RECORD_LEN) {
		memset(m, 0, md->size);
		rc = STRATA_EPROTO;
	}
	return rc;
}

int proto_bucket_entry_decode(const uint8_t *rec, size_t len,
			      struct proto_bucket_entry *e)
{
	return decode_record(&bucket_entry_d, rec, len, e);
}

int proto_key_entry_encode(const struct proto_key_entry *e, uint8_t *buf,
			   size_t cap, size_t *len)
{
	return encode_record(&key_entry_d, e, buf, cap, len);
}

int proto_key_entry_decode(const uint8_t *rec, size_t len,
			   struct proto_key_entry *e)
{
	return decode_record(&key_entry_d, rec, len, e);
}

int proto_chunk_entry_encode(const struct proto_chunk_entry *e, uint8_t *buf,
			     size_t cap, size_t *len)
{
	return encode_record(&chunk_entry_d, e, buf, cap, len);
}

int proto_chunk_entry_decode(const uint8_t *rec, size_t len,
			     struct proto_chunk_entry *e)
{
	return decode_record(&chunk_entry_d, rec, len, e);
}

/* ---- BATCH_GET items --------------------------------------------------- */

int proto_batch_item_encode(const struct proto_batch_item *it,
			    uint8_t out[PROTO_BATCH_ITEM_LEN])
{
	if (it->status > 0 || (it->status && it->size))
		return -EINVAL;
	put_le32(out, it->index);
	put_le32(out + 4, (uint32_t)it->status);
	put_le64(out + 8, it->size);
	return 0;
}

int proto_batch_item_decode(const uint8_t *buf, size_t len,
			    struct proto_batch_item *it)
{
	struct proto_batch_item t;

	if (len < PROTO_BATCH_ITEM_LEN)
		return -EAGAIN;
	t.index = get_le32(buf);
	t.status = (int32_t)get_le32(buf + 4);
	t.size = get_le64(buf + 8);
	if (t.status > 0 || (t.status && t.size))
		return STRATA_EPROTO;
	*it = t;
	return 0;
}

int proto_batch_reader_init(struct proto_batch_reader *r, uint32_t count)
{
	if (count == 0 || count > PROTO_MAX_BATCH_KEYS)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->count = count;
	return 0;
}

int proto_batch_next(struct proto_batch_reader *r, const uint8_t **body,
		     size_t *len, struct proto_batch_event *ev)
{
	struct proto_batch_item it;
	uint64_t bit;

	if (*len == 0)
		return 0;
	if (r->left) {
		size_t n = *len < r->left ? *len : (size_t)r->left;

		ev->kind = PROTO_BATCH_DATA;
		ev->item.index = r->index;
		ev->item.status = 0;
		ev->item.size = r->left;	/* bytes still to come */
		ev->data.p = *body;
		ev->data.len = n;
		r->left -= n;
		*body += n;
		*len -= n;
		return 1;
	}
	/* A sub-header never spans frames (PROTOCOL.md §6.3). */
	if (proto_batch_item_decode(*body, *len, &it) != 0)
		return STRATA_EPROTO;
	if (it.index >= r->count)
		return STRATA_EPROTO;
	bit = 1ull << (it.index % 64);
	if (r->bits[it.index / 64] & bit)
		return STRATA_EPROTO;
	r->bits[it.index / 64] |= bit;
	r->seen++;
	r->index = it.index;
	r->left = it.size;
	ev->kind = PROTO_BATCH_ITEM;
	ev->item = it;
	ev->data.p = NULL;
	ev->data.len = 0;
	*body += PROTO_BATCH_ITEM_LEN;
	*len -= PROTO_BATCH_ITEM_LEN;
	return 1;
}

int proto_batch_finish(const struct proto_batch_reader *r)
{
	return r->seen == r->count && r->left == 0 ? 0 : STRATA_EPROTO;
}

/* ---- Lifecycle rule strings ("ACTION AGE_SECONDS PREFIX") ------------- */

int proto_rule_parse(const struct proto_str *s, struct proto_rule *out)
{
	const char *p = s->s, *end = s->s + s->len;
	uint64_t age = 0;
	size_t alen;

	if (!p || s->len > PROTO_MAX_RULE_LEN)
		return -EINVAL;
	for (alen = 0; p + alen < end && p[alen] != ' '; alen++)
		;
	if (alen == 4 && memcmp(p, "cold", 4) == 0)
		out->action = PROTO_RULE_COLD;
	else if (alen == 6 && memcmp(p, "delete", 6) == 0)
		out->action = PROTO_RULE_DELETE;
	else
		return -EINVAL;
	p += alen;
	if (p == end || *p++ != ' ' || p == end || *p < '0' || *p > '9')
		return -EINVAL;
	while (p < end && *p >= '0' && *p <= '9') {
		age = age * 10 + (uint64_t)(*p++ - '0');
		if (age > PROTO_MAX_RULE_AGE)
			return -EINVAL;
	}
	if (p == end || *p++ != ' ')
		return -EINVAL;
	if ((size_t)(end - p) > PROTO_MAX_KEY_LEN ||
	    !utf8_ok((const uint8_t *)p, (size_t)(end - p)))
		return -EINVAL;
	out->age_s = age;
	out->prefix.s = p;
	out->prefix.len = (size_t)(end - p);
	return 0;
}

int proto_rule_format(const struct proto_rule *r, char *buf, size_t cap)
{
	const char *a = r->action == PROTO_RULE_COLD ? "cold" :
			r->action == PROTO_RULE_DELETE ? "delete" : NULL;
	int n;

	if (!a || r->age_s > PROTO_MAX_RULE_AGE ||
	    r->prefix.len > PROTO_MAX_KEY_LEN)
		return -EINVAL;
	n = snprintf(buf, cap, "%s %llu %.*s", a,
		     (unsigned long long)r->age_s, (int)r->prefix.len,
		     r->prefix.s ? r->prefix.s : "");
	return n < 0 || (size_t)n >= cap ? -EINVAL : n;
}
