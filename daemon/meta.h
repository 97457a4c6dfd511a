// SPDX-License-Identifier: Apache-2.0
/*
 * meta: the one encoder/decoder of every value (and composite key) the
 * engine keeps in the index.  Pure functions, no I/O.  Index values are read
 * back from disk, so decoders treat their input as untrusted: every count and
 * length is bounded before use, and a bad value is STRATA_ECORRUPT (or
 * STRATA_EFORMAT for an unknown version), never a crash.  Fuzzed by
 * tests/fuzz/fuzz_meta.c.
 *
 * Encoding: a version byte, then fixed-width little-endian integers and
 * length-prefixed byte strings (u16 or u32 length).  Composite keys are
 * big-endian so that RocksDB's bytewise order is numeric order.
 */
#ifndef STRATA_META_H
#define STRATA_META_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

#define META_VERSION 1
#define META_KEY_MAX 1024		/* object key bytes */
#define META_BUCKET_MAX 63		/* bucket name bytes */
#define META_CTYPE_MAX 255		/* content type bytes */
#define META_KV_MAX 64			/* user metadata entries, and tags */
#define META_KV_KEY_MAX 128
#define META_KV_VAL_MAX 1024
#define META_WRAPPED_MAX 256
#define META_ATTRS_MAX 8192		/* bucket attributes blob */
/* A 64 GiB object at the smallest chunk size (64 KiB) has 1 Mi chunks. */
#define META_CHUNKS_MAX (1u << 20)

/* A key/value pair of user metadata or a tag; points into the decoded
 * buffer or the caller's memory. */
struct meta_kv {
	const char *key;
	uint16_t keylen;
	const char *val;
	uint16_t vallen;
};

struct meta_chunkref {
	uint8_t id[RECORD_ID_LEN];
	uint32_t raw_len;
};

enum meta_object_flags {
	META_OBJ_TOMBSTONE = 1 << 0,	/* a delete: no data, hidden */
	META_OBJ_INLINE = 1 << 1,	/* one chunk, its record in the value */
};

/* The largest object kept inline in the index (its record rides in the
 * object's value: no segment write, no segment sync). */
#define META_INLINE_MAX (64u << 10)

/* One object version (the value under objects/<bucket id><key>). */
struct meta_object {
	uint8_t flags;
	uint64_t size;
	uint64_t hlc;			/* hybrid logical clock timestamp */
	uint32_t writer;		/* node id of the writer */
	uint64_t mtime_ms;		/* wall clock at commit, for people */
	uint32_t chunk_size;		/* the cut size used (all but the last) */
	uint8_t etag[32];		/* see ARCHITECTURE.md "etag" */
	const char *ctype;
	uint16_t ctypelen;
	uint16_t nmeta;
	struct meta_kv *meta;
	uint16_t ntags;
	struct meta_kv *tags;
	uint32_t nchunks;
	struct meta_chunkref *chunks;
	/* META_OBJ_INLINE: the chunk record (record.h), into the buffer */
	const uint8_t *inl;
	uint32_t inlen;
};

/* A bucket (the value under buckets/<name>). */
struct meta_bucket {
	uint64_t id;
	uint64_t ctime_ms;
	uint16_t wrappedlen;
	uint8_t wrapped[META_WRAPPED_MAX]; /* keys_wrap() of id_key||data_key */
	uint32_t attrslen;
	const char *attrs;		/* opaque attribute blob (JSON later) */
};

/* Where a chunk lives (the value under chunks/<bucket id><chunk id>). */
struct meta_chunk {
	uint64_t seg;			/* segment id */
	uint64_t off;			/* record offset in the segment */
	uint32_t rec_len;		/* header + payload bytes */
	uint32_t raw_len;
	uint32_t refs;			/* object versions referring to it */
	uint8_t tier;
	uint64_t atime_ms;		/* last read, coarse (for the mover) */
};

/* A segment's accounting (the value under segments/<segment id>). */
struct meta_segment {
	uint8_t tier;
	uint16_t dir;			/* index into the tier's directory list */
	uint64_t live_bytes;		/* sum of rec_len of live chunks */
	uint64_t live_count;
};

/* An access key (the value under keys/<access key id>). */
#define META_AKEY_ID_MAX 128
#define META_AKEY_SECRET_MAX 128
enum meta_akey_flags {
	META_AKEY_ADMIN = 1 << 0,	/* may manage keys */
};
struct meta_akey {
	uint32_t flags;
	uint64_t ctime_ms;
	uint16_t wrappedlen;
	uint8_t wrapped[META_WRAPPED_MAX]; /* keys_wrap() of the secret */
};

/*
 * Encoders write into a caller buffer sized by the matching *_size()
 * function and return the bytes written.  They trust their input (it comes
 * from the engine, which validated it).
 */
size_t meta_object_size(const struct meta_object *o);
size_t meta_object_encode(const struct meta_object *o, uint8_t *out);
size_t meta_bucket_size(const struct meta_bucket *b);
size_t meta_bucket_encode(const struct meta_bucket *b, uint8_t *out);
#define META_CHUNK_LEN 38
size_t meta_chunk_encode(const struct meta_chunk *c, uint8_t out[META_CHUNK_LEN]);
#define META_SEGMENT_LEN 20
size_t meta_segment_encode(const struct meta_segment *s, uint8_t out[META_SEGMENT_LEN]);

/*
 * Decoders.  meta_object_decode() allocates one block holding the meta,
 * tags and chunks arrays; *out points into it and into `buf` (strings are
 * not copied), so `buf` must outlive the result.  Free with
 * meta_object_free().  Returns 0, STRATA_ECORRUPT, STRATA_EFORMAT, -ENOMEM.
 */
int meta_object_decode(const uint8_t *buf, size_t len, struct meta_object **out);
void meta_object_free(struct meta_object *o);
/* attrs points into buf. */
int meta_bucket_decode(const uint8_t *buf, size_t len, struct meta_bucket *out);
int meta_chunk_decode(const uint8_t *buf, size_t len, struct meta_chunk *out);
int meta_segment_decode(const uint8_t *buf, size_t len, struct meta_segment *out);
#define META_AKEY_MAXLEN (1 + 4 + 8 + 2 + META_WRAPPED_MAX)
size_t meta_akey_encode(const struct meta_akey *k, uint8_t out[META_AKEY_MAXLEN]);
int meta_akey_decode(const uint8_t *buf, size_t len, struct meta_akey *out);

/* Composite keys. */
#define META_OBJKEY_MAX (8 + META_KEY_MAX)
/* bucket id (BE) || key; returns length */
size_t meta_objkey(uint64_t bucket_id, const char *key, size_t keylen, uint8_t *out);
#define META_CHUNKKEY_LEN (8 + RECORD_ID_LEN)
void meta_chunkkey(uint64_t bucket_id, const uint8_t id[RECORD_ID_LEN],
		   uint8_t out[META_CHUNKKEY_LEN]);
#define META_SEGKEY_LEN 8
void meta_segkey(uint64_t seg, uint8_t out[META_SEGKEY_LEN]);
/* segment id (BE) || offset (BE) -> value: chunk key */
#define META_SEGCHUNKKEY_LEN 16
void meta_segchunkkey(uint64_t seg, uint64_t off, uint8_t out[META_SEGCHUNKKEY_LEN]);

uint64_t meta_get_be64(const uint8_t *p);
void meta_put_be64(uint8_t *p, uint64_t v);

/*
 * Validation of names from users.
 *   bucket: 3..63 bytes of [a-z0-9.-], first and last a letter or digit.
 *   key: 1..1024 bytes of valid UTF-8 (no overlongs, no surrogates), no NUL.
 * Return 0 or STRATA_EBADBUCKET / STRATA_EBADKEY.
 */
int meta_check_bucket_name(const char *name, size_t len);
int meta_check_key(const char *key, size_t len);

#endif
