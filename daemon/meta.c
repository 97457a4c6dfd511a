// SPDX-License-Identifier: Apache-2.0
/*
 * meta: the one encoder/decoder of index values and composite keys (see
 * meta.h for the contract).
 *
 * Value layouts.  Integers are little-endian; "s16"/"s32" is a u16/u32 byte
 * count followed by that many bytes.
 *
 *   object   ver(1) flags(1) size(8) hlc(8) writer(4) mtime_ms(8)
 *            chunk_size(4) etag(32) ctype:s16
 *            nmeta(2) { key:s16 val:s16 } x nmeta
 *            ntags(2) { key:s16 val:s16 } x ntags
 *            nchunks(4) { id(32) raw_len(4) } x nchunks
 *            [inline:s32]   only with META_OBJ_INLINE: one chunk's record
 *   bucket   ver(1) id(8) ctime_ms(8) wrapped:s16 attrs:s32
 *   chunk    ver(1) seg(8) off(8) rec_len(4) raw_len(4) refs(4) tier(1)
 *            atime_ms(8)                                    = 38 bytes
 *   segment  ver(1) tier(1) dir(2) live_bytes(8) live_count(8) = 20 bytes
 *
 * Composite keys are big-endian so that bytewise order is numeric order.
 *
 * Invariants every successful decode guarantees:
 *   - the value is exactly the buffer: truncation or trailing bytes are
 *     STRATA_ECORRUPT, a first byte other than META_VERSION STRATA_EFORMAT;
 *   - every count and length is within its META_* limit, and a chunk's raw
 *     length within RECORD_MAX_RAW (readers size buffers from it);
 *   - object flags hold only known bits (a new flag means a new version);
 *     a tombstone has size 0 and no chunks, any other object has
 *     size == the sum of its chunks' raw_len; an inline object has one
 *     chunk of at most META_INLINE_MAX bytes and a record of header plus
 *     at most raw_len payload bytes.
 * Together these make the encoding canonical: re-encoding a decoded value
 * gives back the input bytes, which tests/fuzz/fuzz_meta.c checks.
 */
#include <assert.h>
#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "strata/error.h"
#include "meta.h"
#include "proto.h"
#include "banned.h"

/* Object bytes before the content type's bytes: ver..etag plus ctype len. */
#define OBJ_HEAD_LEN (1 + 1 + 8 + 8 + 4 + 8 + 4 + 32 + 2)
/* Object bytes of the three counts (nmeta, ntags, nchunks). */
#define OBJ_COUNTS_LEN (2 + 2 + 4)
#define OBJ_CHUNKREF_LEN (RECORD_ID_LEN + 4)
/* Bucket bytes besides the two strings. */
#define BUCKET_FIXED_LEN (1 + 8 + 8 + 2 + 4)

/* ---- little-endian / big-endian writers ---- */

static uint8_t *put_u8(uint8_t *p, uint8_t v)
{
	*p = v;
	return p + 1;
}

static uint8_t *put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	return p + 2;
}

static uint8_t *put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 4;
}

static uint8_t *put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 8;
}

static uint8_t *put_bytes(uint8_t *p, const void *src, size_t n)
{
	/* memcpy(p, NULL, 0) is undefined, and empty strings may be NULL. */
	if (n)
		memcpy(p, src, n);
	return p + n;
}

void meta_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

uint64_t meta_get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* ---- bounds-checked reader over untrusted bytes ---- */

/*
 * Every read checks `left` first and fails without moving on a short
 * buffer, so no path can read past the end whatever the counts say.
 */
struct rd {
	const uint8_t *p;
	size_t left;
};

static bool rd_take(struct rd *r, size_t n, const uint8_t **out)
{
	if (r->left < n)
		return false;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return true;
}

static bool rd_u8(struct rd *r, uint8_t *v)
{
	const uint8_t *p;

	if (!rd_take(r, 1, &p))
		return false;
	*v = p[0];
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	const uint8_t *p;

	if (!rd_take(r, 2, &p))
		return false;
	*v = (uint16_t)(p[0] | (uint16_t)p[1] << 8);
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	const uint8_t *p;

	if (!rd_take(r, 4, &p))
		return false;
	*v = 0;
	for (int i = 3; i >= 0; i--)
		*v = (*v << 8) | p[i];
	return true;
}

static bool rd_u64(struct rd *r, uint64_t *v)
{
	const uint8_t *p;

	if (!rd_take(r, 8, &p))
		return false;
	*v = 0;
	for (int i = 7; i >= 0; i--)
		*v = (*v << 8) | p[i];
	return true;
}

/* A u16-length-prefixed string of at most max bytes. */
static bool rd_s16(struct rd *r, size_t max, const char **s, uint16_t *len)
{
	const uint8_t *p;

	if (!rd_u16(r, len) || *len > max || !rd_take(r, *len, &p))
		return false;
	*s = (const char *)p;
	return true;
}

/*
 * The version byte comes first so that a value from a newer Strata (which
 * may be any length) is reported as STRATA_EFORMAT, not as corrupt.
 */
static int rd_start(struct rd *r, const uint8_t *buf, size_t len)
{
	if (!buf || len == 0)
		return STRATA_ECORRUPT;
	if (buf[0] != META_VERSION)
		return STRATA_EFORMAT;
	r->p = buf + 1;
	r->left = len - 1;
	return 0;
}

/* ---- object ---- */

size_t meta_object_size(const struct meta_object *o)
{
	size_t n = OBJ_HEAD_LEN + o->ctypelen + OBJ_COUNTS_LEN;

	for (uint16_t i = 0; i < o->nmeta; i++)
		n += 4 + (size_t)o->meta[i].keylen + o->meta[i].vallen;
	for (uint16_t i = 0; i < o->ntags; i++)
		n += 4 + (size_t)o->tags[i].keylen + o->tags[i].vallen;
	n += (size_t)o->nchunks * OBJ_CHUNKREF_LEN;
	if (o->flags & META_OBJ_INLINE)
		n += 4 + (size_t)o->inlen;
	return n;
}

static uint8_t *put_kvs(uint8_t *p, const struct meta_kv *kv, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++) {
		p = put_le16(p, kv[i].keylen);
		p = put_bytes(p, kv[i].key, kv[i].keylen);
		p = put_le16(p, kv[i].vallen);
		p = put_bytes(p, kv[i].val, kv[i].vallen);
	}
	return p;
}

size_t meta_object_encode(const struct meta_object *o, uint8_t *out)
{
	uint8_t *p = out;

	p = put_u8(p, META_VERSION);
	p = put_u8(p, o->flags);
	p = put_le64(p, o->size);
	p = put_le64(p, o->hlc);
	p = put_le32(p, o->writer);
	p = put_le64(p, o->mtime_ms);
	p = put_le32(p, o->chunk_size);
	p = put_bytes(p, o->etag, sizeof(o->etag));
	p = put_le16(p, o->ctypelen);
	p = put_bytes(p, o->ctype, o->ctypelen);
	p = put_le16(p, o->nmeta);
	p = put_kvs(p, o->meta, o->nmeta);
	p = put_le16(p, o->ntags);
	p = put_kvs(p, o->tags, o->ntags);
	p = put_le32(p, o->nchunks);
	for (uint32_t i = 0; i < o->nchunks; i++) {
		p = put_bytes(p, o->chunks[i].id, RECORD_ID_LEN);
		p = put_le32(p, o->chunks[i].raw_len);
	}
	if (o->flags & META_OBJ_INLINE) {
		p = put_le32(p, o->inlen);
		p = put_bytes(p, o->inl, o->inlen);
	}
	assert((size_t)(p - out) == meta_object_size(o));
	return (size_t)(p - out);
}

/*
 * Read n key/value pairs into out, or only check them when out is NULL
 * (the sizing pass, run before anything is allocated).
 */
static bool rd_kvs(struct rd *r, uint16_t n, struct meta_kv *out)
{
	for (uint16_t i = 0; i < n; i++) {
		struct meta_kv kv;

		if (!rd_s16(r, META_KV_KEY_MAX, &kv.key, &kv.keylen) ||
		    !rd_s16(r, META_KV_VAL_MAX, &kv.val, &kv.vallen))
			return false;
		if (out)
			out[i] = kv;
	}
	return true;
}

/* As rd_kvs(), for chunk references; also sums their raw lengths. */
static bool rd_chunkrefs(struct rd *r, uint32_t n, struct meta_chunkref *out,
			 uint64_t *sum)
{
	*sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *id;
		uint32_t raw_len;

		if (!rd_take(r, RECORD_ID_LEN, &id) || !rd_u32(r, &raw_len) ||
		    raw_len > RECORD_MAX_RAW)
			return false;
		/* Cannot wrap: at most 2^20 chunks of at most 2^32 bytes. */
		*sum += raw_len;
		if (out) {
			memcpy(out[i].id, id, RECORD_ID_LEN);
			out[i].raw_len = raw_len;
		}
	}
	return true;
}

static size_t align_up(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

/*
 * Two passes: the first walks and checks the whole value without storing
 * anything, so the single allocation is sized from counts that the bytes
 * actually present have already backed (a 20-byte value cannot ask for a
 * million chunks' worth of memory).  The second fills the block.
 */
int meta_object_decode(const uint8_t *buf, size_t len, struct meta_object **out)
{
	struct meta_object h;
	struct meta_object *o;
	struct rd r, meta_at, tags_at, chunks_at;
	size_t kv_off, ck_off, total;
	uint64_t sum;
	int rc;

	*out = NULL;
	rc = rd_start(&r, buf, len);
	if (rc)
		return rc;
	memset(&h, 0, sizeof(h));
	if (!rd_u8(&r, &h.flags) || !rd_u64(&r, &h.size) ||
	    !rd_u64(&r, &h.hlc) || !rd_u32(&r, &h.writer) ||
	    !rd_u64(&r, &h.mtime_ms) || !rd_u32(&r, &h.chunk_size))
		return STRATA_ECORRUPT;
	{
		const uint8_t *etag;

		if (!rd_take(&r, sizeof(h.etag), &etag))
			return STRATA_ECORRUPT;
		memcpy(h.etag, etag, sizeof(h.etag));
	}
	if (h.flags & ~(META_OBJ_TOMBSTONE | META_OBJ_INLINE) ||
	    (h.flags & META_OBJ_TOMBSTONE && h.flags & META_OBJ_INLINE))
		return STRATA_ECORRUPT;
	if (!rd_s16(&r, META_CTYPE_MAX, &h.ctype, &h.ctypelen))
		return STRATA_ECORRUPT;

	if (!rd_u16(&r, &h.nmeta) || h.nmeta > META_KV_MAX)
		return STRATA_ECORRUPT;
	meta_at = r;
	if (!rd_kvs(&r, h.nmeta, NULL))
		return STRATA_ECORRUPT;
	if (!rd_u16(&r, &h.ntags) || h.ntags > META_KV_MAX)
		return STRATA_ECORRUPT;
	tags_at = r;
	if (!rd_kvs(&r, h.ntags, NULL))
		return STRATA_ECORRUPT;
	if (!rd_u32(&r, &h.nchunks) || h.nchunks > META_CHUNKS_MAX)
		return STRATA_ECORRUPT;
	chunks_at = r;
	if (!rd_chunkrefs(&r, h.nchunks, NULL, &sum))
		return STRATA_ECORRUPT;
	if (h.flags & META_OBJ_INLINE) {
		if (h.nchunks != 1 || sum > META_INLINE_MAX ||
		    !rd_u32(&r, &h.inlen) || h.inlen < RECORD_HDR_LEN ||
		    h.inlen > RECORD_HDR_LEN + sum ||
		    !rd_take(&r, h.inlen, &h.inl))
			return STRATA_ECORRUPT;
	}
	if (r.left != 0)
		return STRATA_ECORRUPT;

	if (h.flags & META_OBJ_TOMBSTONE) {
		if (h.nchunks != 0 || h.size != 0)
			return STRATA_ECORRUPT;
	} else if (sum != h.size) {
		return STRATA_ECORRUPT;
	}

	kv_off = align_up(sizeof(*o), alignof(struct meta_kv));
	ck_off = align_up(kv_off + ((size_t)h.nmeta + h.ntags) *
			  sizeof(struct meta_kv), alignof(struct meta_chunkref));
	total = ck_off + (size_t)h.nchunks * sizeof(struct meta_chunkref);
	o = malloc(total);
	if (!o)
		return -ENOMEM;
	*o = h;
	/* Empty arrays are NULL, so a stray index faults instead of reading
	 * the next array. */
	o->meta = h.nmeta ? (struct meta_kv *)((char *)o + kv_off) : NULL;
	o->tags = h.ntags ?
		(struct meta_kv *)((char *)o + kv_off) + h.nmeta : NULL;
	o->chunks = h.nchunks ?
		(struct meta_chunkref *)((char *)o + ck_off) : NULL;

	/* Already checked; these cannot fail. */
	(void)rd_kvs(&meta_at, h.nmeta, o->meta);
	(void)rd_kvs(&tags_at, h.ntags, o->tags);
	(void)rd_chunkrefs(&chunks_at, h.nchunks, o->chunks, &sum);
	*out = o;
	return 0;
}

void meta_object_free(struct meta_object *o)
{
	free(o);
}

/* ---- bucket ---- */

size_t meta_bucket_size(const struct meta_bucket *b)
{
	return BUCKET_FIXED_LEN + (size_t)b->wrappedlen + b->attrslen;
}

size_t meta_bucket_encode(const struct meta_bucket *b, uint8_t *out)
{
	uint8_t *p = out;

	assert(b->wrappedlen <= META_WRAPPED_MAX);
	p = put_u8(p, META_VERSION);
	p = put_le64(p, b->id);
	p = put_le64(p, b->ctime_ms);
	p = put_le16(p, b->wrappedlen);
	p = put_bytes(p, b->wrapped, b->wrappedlen);
	p = put_le32(p, b->attrslen);
	p = put_bytes(p, b->attrs, b->attrslen);
	return (size_t)(p - out);
}

int meta_bucket_decode(const uint8_t *buf, size_t len, struct meta_bucket *out)
{
	struct meta_bucket b;
	const uint8_t *p;
	struct rd r;
	int rc;

	rc = rd_start(&r, buf, len);
	if (rc)
		return rc;
	memset(&b, 0, sizeof(b));
	if (!rd_u64(&r, &b.id) || !rd_u64(&r, &b.ctime_ms) ||
	    !rd_u16(&r, &b.wrappedlen) || b.wrappedlen > META_WRAPPED_MAX ||
	    !rd_take(&r, b.wrappedlen, &p))
		return STRATA_ECORRUPT;
	memcpy(b.wrapped, p, b.wrappedlen);
	if (!rd_u32(&r, &b.attrslen) || b.attrslen > META_ATTRS_MAX ||
	    !rd_take(&r, b.attrslen, &p) || r.left != 0)
		return STRATA_ECORRUPT;
	b.attrs = (const char *)p;
	*out = b;
	return 0;
}

/* ---- chunk and segment ---- */

size_t meta_chunk_encode(const struct meta_chunk *c,
			 uint8_t out[META_CHUNK_LEN])
{
	uint8_t *p = out;

	p = put_u8(p, META_VERSION);
	p = put_le64(p, c->seg);
	p = put_le64(p, c->off);
	p = put_le32(p, c->rec_len);
	p = put_le32(p, c->raw_len);
	p = put_le32(p, c->refs);
	p = put_u8(p, c->tier);
	p = put_le64(p, c->atime_ms);
	assert(p - out == META_CHUNK_LEN);
	return META_CHUNK_LEN;
}

int meta_chunk_decode(const uint8_t *buf, size_t len, struct meta_chunk *out)
{
	struct meta_chunk c;
	struct rd r;
	int rc;

	rc = rd_start(&r, buf, len);
	if (rc)
		return rc;
	if (!rd_u64(&r, &c.seg) || !rd_u64(&r, &c.off) ||
	    !rd_u32(&r, &c.rec_len) || !rd_u32(&r, &c.raw_len) ||
	    !rd_u32(&r, &c.refs) || !rd_u8(&r, &c.tier) ||
	    !rd_u64(&r, &c.atime_ms) || r.left != 0)
		return STRATA_ECORRUPT;
	if (c.raw_len > RECORD_MAX_RAW)
		return STRATA_ECORRUPT;
	*out = c;
	return 0;
}

size_t meta_segment_encode(const struct meta_segment *s,
			   uint8_t out[META_SEGMENT_LEN])
{
	uint8_t *p = out;

	p = put_u8(p, META_VERSION);
	p = put_u8(p, s->tier);
	p = put_le16(p, s->dir);
	p = put_le64(p, s->live_bytes);
	p = put_le64(p, s->live_count);
	assert(p - out == META_SEGMENT_LEN);
	return META_SEGMENT_LEN;
}

int meta_segment_decode(const uint8_t *buf, size_t len,
			struct meta_segment *out)
{
	struct meta_segment s;
	struct rd r;
	int rc;

	rc = rd_start(&r, buf, len);
	if (rc)
		return rc;
	if (!rd_u8(&r, &s.tier) || !rd_u16(&r, &s.dir) ||
	    !rd_u64(&r, &s.live_bytes) || !rd_u64(&r, &s.live_count) ||
	    r.left != 0)
		return STRATA_ECORRUPT;
	*out = s;
	return 0;
}

/* ---- access key ---- */

size_t meta_akey_encode(const struct meta_akey *k,
			uint8_t out[META_AKEY_MAXLEN])
{
	uint8_t *p = out;

	assert(k->wrappedlen <= META_WRAPPED_MAX);
	p = put_u8(p, META_VERSION);
	p = put_le32(p, k->flags);
	p = put_le64(p, k->ctime_ms);
	p = put_le16(p, k->wrappedlen);
	p = put_bytes(p, k->wrapped, k->wrappedlen);
	return (size_t)(p - out);
}

int meta_akey_decode(const uint8_t *buf, size_t len, struct meta_akey *out)
{
	struct meta_akey k;
	const uint8_t *w;
	struct rd r;
	int rc;

	rc = rd_start(&r, buf, len);
	if (rc)
		return rc;
	if (!rd_u32(&r, &k.flags) || !rd_u64(&r, &k.ctime_ms) ||
	    !rd_u16(&r, &k.wrappedlen) || k.wrappedlen > META_WRAPPED_MAX ||
	    !rd_take(&r, k.wrappedlen, &w) || r.left != 0 ||
	    (k.flags & ~(uint32_t)META_AKEY_ADMIN))
		return STRATA_ECORRUPT;
	memcpy(k.wrapped, w, k.wrappedlen);
	*out = k;
	return 0;
}

/* ---- composite keys ---- */

size_t meta_objkey(uint64_t bucket_id, const char *key, size_t keylen,
		   uint8_t *out)
{
	assert(keylen <= META_KEY_MAX);
	meta_put_be64(out, bucket_id);
	put_bytes(out + 8, key, keylen);
	return 8 + keylen;
}

void meta_chunkkey(uint64_t bucket_id, const uint8_t id[RECORD_ID_LEN],
		   uint8_t out[META_CHUNKKEY_LEN])
{
	meta_put_be64(out, bucket_id);
	memcpy(out + 8, id, RECORD_ID_LEN);
}

void meta_segkey(uint64_t seg, uint8_t out[META_SEGKEY_LEN])
{
	meta_put_be64(out, seg);
}

void meta_segchunkkey(uint64_t seg, uint64_t off,
		      uint8_t out[META_SEGCHUNKKEY_LEN])
{
	meta_put_be64(out, seg);
	meta_put_be64(out + 8, off);
}

/* ---- names from users ---- */

static bool is_lower_or_digit(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/*
 * S3's rule: a name "formatted as an IP address" is refused, because
 * virtual-host style requests (<bucket>.host) would read it as an address.
 * We take that to mean four dot-separated groups of one to three digits,
 * whatever their values ("999.1.1.1" too): it still looks like one.
 */
static bool looks_like_ipv4(const char *s, size_t len)
{
	unsigned groups = 1, digits = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (digits == 0)
				return false;
			groups++;
			digits = 0;
		} else if (s[i] >= '0' && s[i] <= '9') {
			if (++digits > 3)
				return false;
		} else {
			return false;
		}
	}
	return groups == 4 && digits > 0;
}

/*
 * S3's current rules, less the reserved prefixes and suffixes ("xn--",
 * "-s3alias", ...), which only matter to AWS.  Names end up in DNS labels
 * and paths, so the alphabet is kept that small.
 */
int meta_check_bucket_name(const char *name, size_t len)
{
	if (!name || len < 3 || len > META_BUCKET_MAX)
		return STRATA_EBADBUCKET;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!is_lower_or_digit(c) && c != '.' && c != '-')
			return STRATA_EBADBUCKET;
		if (c == '.' && i > 0 && name[i - 1] == '.')
			return STRATA_EBADBUCKET;
	}
	if (!is_lower_or_digit((unsigned char)name[0]) ||
	    !is_lower_or_digit((unsigned char)name[len - 1]))
		return STRATA_EBADBUCKET;
	if (looks_like_ipv4(name, len))
		return STRATA_EBADBUCKET;
	return 0;
}

/*
 * A key is 1 to META_KEY_MAX bytes of strict UTF-8 without NUL: the wire's
 * rule for every string (proto_utf8_ok: no overlong forms, surrogates or
 * code points above U+10FFFF).  Keys are compared and listed as bytes, so
 * two spellings of one character must not both be accepted; NUL is refused
 * because keys travel through C strings in tools and logs.  Other control
 * characters are allowed, as S3 allows them: refusing them would make some
 * existing S3 data impossible to copy in.
 */
int meta_check_key(const char *key, size_t len)
{
	if (!key || len == 0 || len > META_KEY_MAX || !proto_utf8_ok(key, len))
		return STRATA_EBADKEY;
	return 0;
}
