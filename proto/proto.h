// SPDX-License-Identifier: Apache-2.0
/*
 * The Strata wire protocol: the one encoder and decoder of frames, typed
 * fields, per-opcode messages and the structured bodies (list records,
 * BATCH_GET items).  proto/PROTOCOL.md is the normative specification; this
 * header is its C face.  No I/O, no allocation: decoders fill caller structs
 * whose pointers point into the caller's input buffer.
 *
 * Lifetimes: every struct proto_str, proto_bytes and proto_list a decoder
 * fills points into the buffer it was given and is valid while that buffer
 * is.  Strings are NOT NUL-terminated; use the length.
 *
 * Errors: STRATA_EPROTO for malformed input, STRATA_EPROTOVERSION for a
 * frame of another protocol version, STRATA_EBADBUCKET / STRATA_EBADKEY /
 * STRATA_EBADMETA for a bucket name, key or metadata over the wire limits,
 * -EAGAIN when a header needs more bytes, -ENOSPC when an encoder's buffer is
 * too small, -EINVAL when a caller asks an encoder for a message the decoder
 * would refuse (missing required field, header breaking a frame rule).
 *
 * Thread-safety: all functions are reentrant; no state outside the structs
 * passed in.
 */
#ifndef STRATA_PROTO_H
#define STRATA_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Frames ------------------------------------------------------------ */

#define PROTO_MAGIC "STRP"
#define PROTO_VERSION 1
#define PROTO_HEADER_LEN 32
/* TLS ALPN protocol id of version 1. */
#define PROTO_ALPN "strata/1"

/* Limits a receiver enforces before it uses any length (PROTOCOL.md §3). */
#define PROTO_MAX_FIELDS_LEN (64u * 1024)	/* typed-field bytes per frame */
#define PROTO_MAX_BODY_LEN (1u << 20)		/* body bytes per frame */
#define PROTO_MAX_FIELDS 256			/* fields per message */
#define PROTO_MAX_RECORD_LEN 0xffffu		/* one body record's fields */
#define PROTO_MAX_BUCKET_LEN 63
#define PROTO_MAX_KEY_LEN 1024
#define PROTO_MAX_CTYPE_LEN 255
#define PROTO_MAX_KV 64				/* metadata pairs, tag pairs */
#define PROTO_MAX_KV_NAME_LEN 128
#define PROTO_MAX_KV_VALUE_LEN 1024
#define PROTO_MAX_DELIMITER_LEN 16
#define PROTO_MAX_TEXT_LEN 1024			/* error messages */
#define PROTO_MAX_NAME_LEN 255			/* agent, server, principal */
#define PROTO_MAX_ACCESS_KEY_ID_LEN 128
#define PROTO_MAX_BATCH_KEYS 1024		/* BATCH_GET and HINT keys */
#define PROTO_MAX_LIST_LIMIT 10000		/* LIST / BUCKET_LIST limit */
#define PROTO_ETAG_LEN 32
#define PROTO_NONCE_LEN 32
#define PROTO_EXPORTER_LEN 32
#define PROTO_PROOF_LEN 32
/* RFC 8446 §7.5 exporter label for AUTH (empty context). */
#define PROTO_EXPORTER_LABEL "EXPORTER-strata-auth"

enum proto_op {
	PROTO_OP_HELLO = 0x01,
	PROTO_OP_AUTH = 0x02,
	PROTO_OP_PING = 0x03,
	PROTO_OP_CANCEL = 0x04,
	PROTO_OP_GOAWAY = 0x05,
	PROTO_OP_BUCKET_CREATE = 0x10,
	PROTO_OP_BUCKET_DELETE = 0x11,
	PROTO_OP_BUCKET_LIST = 0x12,
	PROTO_OP_LIFECYCLE_SET = 0x13,
	PROTO_OP_LIFECYCLE_GET = 0x14,
	PROTO_OP_PUT = 0x20,
	PROTO_OP_GET = 0x21,
	PROTO_OP_STAT = 0x22,
	PROTO_OP_DELETE = 0x23,
	PROTO_OP_LIST = 0x24,
	PROTO_OP_BATCH_GET = 0x25,
	PROTO_OP_HINT = 0x26,
	PROTO_OP_KEY_CREATE = 0x80,	/* administration: admin keys only */
	PROTO_OP_KEY_LIST = 0x81,
	PROTO_OP_KEY_DELETE = 0x82,
	PROTO_OP_NODE_STATS = 0x83,
	PROTO_OP_KEY_SET = 0x84,	/* admin keys only */
	PROTO_OP_KEY_INFO = 0x85,	/* admin keys, or a key about itself */
};

enum proto_flags {
	PROTO_F_RESPONSE = 1 << 0,	/* server to client */
	PROTO_F_END = 1 << 1,		/* last frame of this message */
	PROTO_F_CONT = 1 << 2,		/* continues a message (no fields) */
	PROTO_F_ERROR = 1 << 3,		/* response is an error (fields: ERROR) */
};
#define PROTO_F_KNOWN (PROTO_F_RESPONSE | PROTO_F_END | PROTO_F_CONT | \
		       PROTO_F_ERROR)

/* Feature bits negotiated in HELLO (none defined in version 1). */
#define PROTO_FEATURES_KNOWN 0ull

struct proto_header {
	uint8_t opcode;		/* enum proto_op, or one this build lacks */
	uint16_t flags;		/* enum proto_flags */
	uint64_t id;		/* request id; 0 only for GOAWAY */
	uint32_t fields_len;	/* typed-field bytes after the header */
	uint32_t body_len;	/* body bytes after the fields */
};

/*
 * Decode and check one frame header.
 *   [in]  buf  at least PROTO_HEADER_LEN bytes; only those are read
 *   [in]  len  bytes available at buf
 *   [out] h    the header (untouched on error)
 * Checks, in order: magic, version, crc32c, then flags, reserved bytes,
 * lengths against PROTO_MAX_*, and the per-frame rules of PROTOCOL.md §2.3.
 * An opcode this build does not know passes (the peer answers it with
 * -EOPNOTSUPP; framing is intact).
 * Returns 0; -EAGAIN if len < PROTO_HEADER_LEN; STRATA_EPROTOVERSION for a
 * version other than PROTO_VERSION; STRATA_EPROTO for anything else wrong.
 */
/* Whether n bytes at s are the UTF-8 every string on the wire must be
 * (RFC 3629, no NUL). */
bool proto_utf8_ok(const void *s, size_t n);

int proto_header_decode(const uint8_t *buf, size_t len,
			struct proto_header *h);

/*
 * Encode a frame header, crc32c included.
 *   [in]  h    the header; must pass every check proto_header_decode makes
 *   [out] out  PROTO_HEADER_LEN bytes
 * Returns 0, or -EINVAL (out untouched) for a header the peer would refuse.
 */
int proto_header_encode(const struct proto_header *h,
			uint8_t out[PROTO_HEADER_LEN]);

/* True when messages of this opcode in this direction may carry a body. */
bool proto_op_has_body(uint8_t opcode, bool response);
/* The opcode's name ("PUT"), or NULL for one this build does not know. */
const char *proto_op_name(uint8_t opcode);

/* ---- Typed fields ------------------------------------------------------ */

enum proto_type {
	PROTO_T_U8 = 1,
	PROTO_T_BOOL = 2,	/* one byte, 0 or 1 */
	PROTO_T_U32 = 3,
	PROTO_T_I32 = 4,
	PROTO_T_U64 = 5,
	PROTO_T_BYTES = 6,
	PROTO_T_STR = 7,	/* UTF-8, no NUL */
	PROTO_T_STRLIST = 8,	/* repeated { u16 len, UTF-8 bytes } */
};

/* Tags are one registry for all messages (PROTOCOL.md §4.3).  A tag with
 * PROTO_TAG_CRITICAL set must be understood: an unknown one is refused. */
#define PROTO_TAG_CRITICAL 0x8000u

enum proto_tag {
	PROTO_TAG_BUCKET = 1,
	PROTO_TAG_KEY = 2,
	PROTO_TAG_SIZE = 3,
	PROTO_TAG_CONTENT_TYPE = 4,
	PROTO_TAG_META = 5,
	PROTO_TAG_TAGS = 6,
	PROTO_TAG_ETAG = 7,
	PROTO_TAG_VERSION = 8,
	PROTO_TAG_WRITER = 9,
	PROTO_TAG_MTIME = 10,
	PROTO_TAG_OFFSET = 11,
	PROTO_TAG_LENGTH = 12,
	PROTO_TAG_PREFIX = 13,
	PROTO_TAG_DELIMITER = 14,
	PROTO_TAG_START_AFTER = 15,
	PROTO_TAG_LIMIT = 16,
	PROTO_TAG_TRUNCATED = 17,
	PROTO_TAG_NEXT_START_AFTER = 18,
	PROTO_TAG_COUNT = 19,
	PROTO_TAG_KEYS = 20,
	PROTO_TAG_CHUNK_SIZE = 21,
	PROTO_TAG_TIER = 22,
	PROTO_TAG_RAW_LEN = 23,
	PROTO_TAG_STORED_LEN = 24,
	PROTO_TAG_CTIME = 25,
	PROTO_TAG_CODE = 32,
	PROTO_TAG_MESSAGE = 33,
	PROTO_TAG_PROTO_VERSION = 40,
	PROTO_TAG_FEATURES = 41,
	PROTO_TAG_AGENT = 42,
	PROTO_TAG_NONCE = 43,
	PROTO_TAG_SERVER = 44,
	PROTO_TAG_NODE_ID = 45,
	PROTO_TAG_MAP_VERSION = 46,
	PROTO_TAG_MAX_REQUESTS = 47,
	PROTO_TAG_MAX_INFLIGHT = 48,
	PROTO_TAG_MAX_BODY = 49,
	PROTO_TAG_ACCESS_KEY_ID = 50,
	PROTO_TAG_PROOF = 51,
	PROTO_TAG_PRINCIPAL = 52,
	PROTO_TAG_SECRET = 53,
	PROTO_TAG_ADMIN = 54,
	PROTO_TAG_RULES = 55,
	PROTO_TAG_STATS = 56,
	PROTO_TAG_POLICY = 57,
	PROTO_TAG_ATTRS = 58,
};

/* A string off the wire or into an encoder; s == NULL means absent. */
struct proto_str {
	const char *s;
	size_t len;
};

struct proto_bytes {
	const uint8_t *p;	/* NULL means absent */
	size_t len;
};

/* An encoded string list (PROTO_T_STRLIST value); p == NULL means absent. */
struct proto_list {
	const uint8_t *p;
	size_t len;		/* encoded bytes */
	uint32_t count;		/* elements */
};

/* One field as read; val points into the reader's buffer. */
struct proto_field {
	uint16_t tag;
	uint8_t type;
	uint16_t len;
	const uint8_t *val;
};

struct proto_reader {
	const uint8_t *p;
	size_t left;
	uint32_t tag;		/* last tag read (tags strictly ascend) */
	uint32_t nfields;
};

/* Read the fields in buf[0..len) (a message's field bytes). */
void proto_reader_init(struct proto_reader *r, const uint8_t *buf,
		       size_t len);

/*
 * The next field.  Fixed-size types are checked for their exact length,
 * BOOL for 0/1, STR and STRLIST for well-formed UTF-8 without NUL, tags for
 * strict ascent (so duplicates are refused) and the count against
 * PROTO_MAX_FIELDS.  A type this build does not know passes unchecked (its
 * tag will be unknown too, and skipped).
 * Returns 1 with *f filled, 0 at the end, STRATA_EPROTO.
 */
int proto_fields_next(struct proto_reader *r, struct proto_field *f);

/* Typed views of a field; STRATA_EPROTO when the type differs. */
int proto_field_u64(const struct proto_field *f, uint64_t *v);
int proto_field_u32(const struct proto_field *f, uint32_t *v);
int proto_field_i32(const struct proto_field *f, int32_t *v);
int proto_field_str(const struct proto_field *f, struct proto_str *v);

/* Walk a string list.  Returns 1 with *e filled, 0 at the end,
 * STRATA_EPROTO (only for a list not produced by a decoder). */
struct proto_list_iter {
	const uint8_t *p;
	size_t left;
};
void proto_list_iter_init(struct proto_list_iter *it,
			  const struct proto_list *l);
int proto_list_next(struct proto_list_iter *it, struct proto_str *e);

/*
 * Build a string list into buf (elements in order; metadata and tags are
 * name, value, name, value, ...).  *out points into buf.
 * Returns 0, -ENOSPC, -EINVAL (element over 65535 bytes, NUL or bad UTF-8).
 */
int proto_list_build(uint8_t *buf, size_t cap, const struct proto_str *elems,
		     size_t n, struct proto_list *out);

/*
 * A field writer over a caller buffer, for fields in ascending tag order.
 * Errors are sticky: after the first, every call returns it again, so a
 * sequence of writes can be checked once at proto_writer_finish().
 */
struct proto_writer {
	uint8_t *buf;
	size_t cap;		/* min(caller capacity, PROTO_MAX_FIELDS_LEN) */
	size_t len;
	uint32_t tag;		/* last tag written */
	uint32_t nfields;
	int err;
};

void proto_writer_init(struct proto_writer *w, uint8_t *buf, size_t cap);
/* Returns 0 and the bytes written, or the first error. */
int proto_writer_finish(const struct proto_writer *w, size_t *len);
/* Each returns 0, -ENOSPC (full, or over PROTO_MAX_FIELDS), -EINVAL (tag 0
 * or not above the previous one; value over 65535 bytes; a STR with NUL or
 * bad UTF-8; a malformed list). */
int proto_write_u8(struct proto_writer *w, uint16_t tag, uint8_t v);
int proto_write_bool(struct proto_writer *w, uint16_t tag, bool v);
int proto_write_u32(struct proto_writer *w, uint16_t tag, uint32_t v);
int proto_write_i32(struct proto_writer *w, uint16_t tag, int32_t v);
int proto_write_u64(struct proto_writer *w, uint16_t tag, uint64_t v);
int proto_write_bytes(struct proto_writer *w, uint16_t tag, const void *p,
		      size_t len);
int proto_write_str(struct proto_writer *w, uint16_t tag, const char *s,
		    size_t len);
int proto_write_list(struct proto_writer *w, uint16_t tag,
		     const struct proto_list *l);

/* ---- Messages ---------------------------------------------------------- */
/*
 * Each message has
 *   int proto_<msg>_encode(const struct proto_<msg> *m, uint8_t *buf,
 *                          size_t cap, size_t *len);
 *   int proto_<msg>_decode(const uint8_t *buf, size_t len,
 *                          struct proto_<msg> *m);
 * over the message's field bytes (what follows the header of the first
 * frame, fields_len long).  Optional scalars have a has_* flag; optional
 * strings, bytes and lists are absent when their pointer is NULL.
 * encode: 0, -ENOSPC, -EINVAL (a required field absent, or a value the
 *   decoder would refuse; bucket/key/metadata limits give STRATA_EBADBUCKET,
 *   STRATA_EBADKEY, STRATA_EBADMETA as decode does).
 * decode: 0, STRATA_EPROTO (malformed, wrong type, missing required field,
 *   unknown critical tag, len over PROTO_MAX_FIELDS_LEN),
 *   STRATA_EBADBUCKET, STRATA_EBADKEY, STRATA_EBADMETA.  Unknown tags are
 *   skipped.  On error *m is all zero.
 * Encoding is canonical: decode then encode gives back the input minus any
 * unknown fields.
 */
#define PROTO_MSG(name)							\
	int proto_##name##_encode(const struct proto_##name *m,		\
				  uint8_t *buf, size_t cap, size_t *len);	\
	int proto_##name##_decode(const uint8_t *buf, size_t len,	\
				  struct proto_##name *m)

struct proto_hello_req {
	uint32_t version;		/* highest protocol revision spoken */
	bool has_features;
	uint64_t features;
	struct proto_str agent;		/* optional, e.g. "libstrata/0.1.0" */
};
PROTO_MSG(hello_req);

struct proto_hello_resp {
	uint32_t version;		/* revision chosen */
	uint64_t features;		/* subset of the client's */
	struct proto_bytes nonce;	/* PROTO_NONCE_LEN bytes */
	struct proto_str server;	/* optional, e.g. "stratad/0.1.0" */
	bool has_node_id;
	uint32_t node_id;
	bool has_map_version;
	uint64_t map_version;
	uint32_t max_requests;		/* requests in flight per connection */
	uint64_t max_inflight;		/* request body bytes buffered */
	uint32_t max_body;		/* body bytes per frame accepted */
};
PROTO_MSG(hello_resp);

struct proto_auth_req {
	struct proto_str access_key_id;
	struct proto_bytes proof;	/* PROTO_PROOF_LEN bytes */
};
PROTO_MSG(auth_req);

struct proto_auth_resp {
	struct proto_str principal;	/* optional */
};
PROTO_MSG(auth_resp);

/*
 * The bytes AUTH's proof is the HMAC-SHA256 of (PROTOCOL.md §5.2):
 * "strata-auth-v1" || nonce || exporter || access key id.  Both sides build
 * it here so they cannot disagree.
 * Returns 0 and *len, -ENOSPC, -EINVAL (key id empty or over the limit).
 */
#define PROTO_AUTH_LABEL "strata-auth-v1"
#define PROTO_AUTH_TRANSCRIPT_MAX (sizeof(PROTO_AUTH_LABEL) - 1 + \
	PROTO_NONCE_LEN + PROTO_EXPORTER_LEN + PROTO_MAX_ACCESS_KEY_ID_LEN)
int proto_auth_transcript(const uint8_t nonce[PROTO_NONCE_LEN],
			  const uint8_t exporter[PROTO_EXPORTER_LEN],
			  const char *key_id, size_t key_id_len,
			  uint8_t *out, size_t cap, size_t *len);

/* ERROR (any response with PROTO_F_ERROR) and GOAWAY. */
struct proto_error {
	int32_t code;			/* < 0: -errno or STRATA_E* */
	struct proto_str message;	/* optional, for people */
};
PROTO_MSG(error);

/* BUCKET_CREATE, BUCKET_DELETE requests. */
struct proto_bucket_req {
	struct proto_str bucket;
};
PROTO_MSG(bucket_req);

struct proto_bucket_list_req {
	struct proto_str start_after;	/* optional */
	bool has_limit;
	uint32_t limit;
};
PROTO_MSG(bucket_list_req);

/* BUCKET_LIST response fields; the body holds count bucket records. */
struct proto_bucket_list_resp {
	bool truncated;
	uint32_t count;
};
PROTO_MSG(bucket_list_resp);

struct proto_bucket_entry {
	struct proto_str bucket;
	uint64_t ctime_ms;
};

struct proto_put_req {
	struct proto_str bucket;
	struct proto_str key;
	bool has_size;
	uint64_t size;			/* body bytes, when known up front */
	struct proto_str content_type;	/* optional */
	struct proto_list meta;		/* optional: name, value, ... */
	struct proto_list tags;		/* optional: name, value, ... */
};
PROTO_MSG(put_req);

struct proto_put_resp {
	uint64_t size;
	struct proto_bytes etag;	/* PROTO_ETAG_LEN bytes */
	uint64_t version;		/* HLC timestamp of the new version */
	uint32_t writer;		/* node id that wrote it */
};
PROTO_MSG(put_resp);

/* STAT and DELETE requests. */
struct proto_object_req {
	struct proto_str bucket;
	struct proto_str key;
};
PROTO_MSG(object_req);

struct proto_get_req {
	struct proto_str bucket;
	struct proto_str key;
	bool has_offset;
	uint64_t offset;
	bool has_length;
	uint64_t length;		/* absent: to the end */
};
PROTO_MSG(get_req);

/* What GET and STAT responses say about an object version. */
struct proto_object_info {
	uint64_t size;
	struct proto_str content_type;	/* optional */
	struct proto_list meta;		/* optional */
	struct proto_list tags;		/* optional */
	struct proto_bytes etag;	/* PROTO_ETAG_LEN bytes */
	uint64_t version;
	uint32_t writer;
	bool has_mtime;
	uint64_t mtime_ms;
};

/* GET response fields; the body is exactly length bytes of the object
 * starting at offset. */
struct proto_get_resp {
	struct proto_object_info info;
	uint64_t offset;
	uint64_t length;
};
PROTO_MSG(get_resp);

/* STAT response fields; the body holds count chunk records. */
struct proto_stat_resp {
	struct proto_object_info info;
	uint32_t count;			/* chunks */
	uint32_t chunk_size;		/* cut size of all chunks but the last */
};
PROTO_MSG(stat_resp);

struct proto_chunk_entry {
	uint8_t tier;			/* tier index in the node's config */
	uint32_t raw_len;		/* plaintext bytes */
	uint32_t stored_len;		/* record bytes on disk */
};

struct proto_delete_resp {
	bool has_version;		/* absent when there was nothing */
	uint64_t version;		/* HLC of the tombstone */
	uint32_t writer;
};
PROTO_MSG(delete_resp);

struct proto_list_req {
	struct proto_str bucket;
	struct proto_str prefix;	/* optional */
	struct proto_str delimiter;	/* optional */
	struct proto_str start_after;	/* optional */
	bool has_limit;
	uint32_t limit;			/* 1..PROTO_MAX_LIST_LIMIT */
};
PROTO_MSG(list_req);

/* LIST response fields; the body holds count entry records. */
struct proto_list_resp {
	bool truncated;
	struct proto_str next_start_after;	/* present iff truncated */
	uint32_t count;
};
PROTO_MSG(list_resp);

/* One LIST entry: an object (key set) or a common prefix (prefix set). */
struct proto_list_entry {
	struct proto_str key;
	uint64_t size;
	struct proto_bytes etag;
	uint64_t version;
	uint64_t mtime_ms;
	struct proto_str prefix;
};

/* BATCH_GET and HINT requests. */
struct proto_keys_req {
	struct proto_str bucket;
	struct proto_list keys;		/* 1..PROTO_MAX_BATCH_KEYS keys */
};
PROTO_MSG(keys_req);

/* BATCH_GET response fields; the body holds count items. */
struct proto_batch_resp {
	uint32_t count;
};
PROTO_MSG(batch_resp);

/*
 * KEY_CREATE request: a new access key, an admin one when admin is set,
 * with an access policy (a JSON document, strata-policy(7)) and attributes
 * (name, value pairs) when given.  A key without a policy may do nothing
 * but ask about itself (KEY_INFO); admin keys need none.
 */
#define PROTO_MAX_POLICY_LEN (32u << 10)
struct proto_key_create_req {
	bool has_admin;
	bool admin;
	struct proto_str policy;	/* optional */
	struct proto_list attrs;	/* optional: name, value, ... */
};
PROTO_MSG(key_create_req);

/* KEY_CREATE response: the new key; the secret is shown this once. */
#define PROTO_MAX_SECRET_LEN 128
struct proto_key_create_resp {
	struct proto_str access_key_id;
	struct proto_str secret;
	bool admin;
};
PROTO_MSG(key_create_resp);

/* KEY_DELETE request. */
struct proto_key_req {
	struct proto_str access_key_id;
};
PROTO_MSG(key_req);

/*
 * KEY_SET request: replace a key's policy and/or attributes (a field
 * absent leaves that part as it is; an empty POLICY removes the policy,
 * an empty ATTRS list removes every attribute).
 */
struct proto_key_set_req {
	struct proto_str access_key_id;
	struct proto_str policy;	/* optional */
	bool has_attrs;
	struct proto_list attrs;	/* optional: name, value, ... */
};
PROTO_MSG(key_set_req);

/* KEY_INFO response (the request is a proto_key_req). */
struct proto_key_info_resp {
	struct proto_str access_key_id;
	bool admin;
	uint64_t ctime_ms;
	struct proto_str policy;	/* absent: no policy */
	struct proto_list attrs;	/* absent: none */
};
PROTO_MSG(key_info_resp);

/* KEY_LIST response fields; the body holds count key records. */
struct proto_key_list_resp {
	uint32_t count;
};
PROTO_MSG(key_list_resp);

/*
 * LIFECYCLE_SET and LIFECYCLE_GET requests, LIFECYCLE_GET response: the
 * rules of a bucket, each "ACTION AGE_SECONDS PREFIX" (ACTION "cold" or
 * "delete"; the prefix is everything after the second space, maybe
 * nothing).  SET with no rules removes them.
 */
#define PROTO_MAX_RULES 32
#define PROTO_MAX_RULE_LEN (32 + PROTO_MAX_KEY_LEN)
struct proto_lifecycle_req {
	struct proto_str bucket;
	struct proto_list rules;	/* SET: 0..PROTO_MAX_RULES */
};
PROTO_MSG(lifecycle_req);
struct proto_lifecycle_resp {
	struct proto_list rules;
};
PROTO_MSG(lifecycle_resp);

enum proto_rule_action { PROTO_RULE_COLD = 1, PROTO_RULE_DELETE = 2 };

struct proto_rule {
	enum proto_rule_action action;
	uint64_t age_s;			/* 0 .. PROTO_MAX_RULE_AGE */
	struct proto_str prefix;	/* into the parsed string; may be "" */
};
#define PROTO_MAX_RULE_AGE (100ull * 365 * 86400)

/* Parse one rule string.  Returns 0 or -EINVAL. */
int proto_rule_parse(const struct proto_str *s, struct proto_rule *out);
/* Format one: into buf (at least PROTO_MAX_RULE_LEN + 1 bytes), NUL
 * terminated; returns the length, or -EINVAL. */
int proto_rule_format(const struct proto_rule *r, char *buf, size_t cap);

/* NODE_STATS response: "name=value" lines (PROTOCOL.md §5.18). */
#define PROTO_MAX_STATS 512
#define PROTO_MAX_STAT_LEN 200
struct proto_stats_resp {
	struct proto_list stats;
};
PROTO_MSG(stats_resp);

#undef PROTO_MSG

/* Fields of a message that has none in this revision (PING, CANCEL,
 * BUCKET_CREATE/DELETE and HINT responses, ...): unknown fields are
 * skipped, a critical one refused.  Returns 0 or STRATA_EPROTO. */
int proto_empty_decode(const uint8_t *buf, size_t len);

/* ---- Bodies ------------------------------------------------------------ */
/*
 * Records (LIST, BUCKET_LIST, STAT bodies): u16 length || typed fields;
 * a record never spans frames.  *_entry_encode writes a whole record;
 * proto_records_next yields one record's field bytes for *_entry_decode.
 */
struct proto_records {
	const uint8_t *p;
	size_t left;
};
void proto_records_init(struct proto_records *it, const uint8_t *body,
			size_t len);
/* Returns 1 with *rec (field bytes) filled, 0 at the end, STRATA_EPROTO. */
int proto_records_next(struct proto_records *it, struct proto_bytes *rec);

int proto_list_entry_encode(const struct proto_list_entry *e, uint8_t *buf,
			    size_t cap, size_t *len);
int proto_list_entry_decode(const uint8_t *rec, size_t len,
			    struct proto_list_entry *e);
int proto_bucket_entry_encode(const struct proto_bucket_entry *e,
			      uint8_t *buf, size_t cap, size_t *len);
int proto_bucket_entry_decode(const uint8_t *rec, size_t len,
			      struct proto_bucket_entry *e);
int proto_chunk_entry_encode(const struct proto_chunk_entry *e, uint8_t *buf,
			     size_t cap, size_t *len);
/* One KEY_LIST record. */
struct proto_key_entry {
	struct proto_str access_key_id;
	bool admin;
};
int proto_key_entry_encode(const struct proto_key_entry *e, uint8_t *buf,
			   size_t cap, size_t *len);
int proto_key_entry_decode(const uint8_t *rec, size_t len,
			   struct proto_key_entry *e);
int proto_chunk_entry_decode(const uint8_t *rec, size_t len,
			     struct proto_chunk_entry *e);

/* BATCH_GET items: a 16-byte sub-header, then size bytes of object data. */
#define PROTO_BATCH_ITEM_LEN 16
struct proto_batch_item {
	uint32_t index;		/* into the request's keys */
	int32_t status;		/* 0, or -errno / STRATA_E*: then size is 0 */
	uint64_t size;		/* data bytes that follow */
};

/* Returns 0 or -EINVAL (status > 0, or an error with data). */
int proto_batch_item_encode(const struct proto_batch_item *it,
			    uint8_t out[PROTO_BATCH_ITEM_LEN]);
/* Returns 0, -EAGAIN (len < PROTO_BATCH_ITEM_LEN), STRATA_EPROTO. */
int proto_batch_item_decode(const uint8_t *buf, size_t len,
			    struct proto_batch_item *it);

/*
 * Reads a BATCH_GET response body frame by frame, yielding item headers and
 * data slices.  Checks every index is below count and seen once, that
 * sub-headers do not span frames, and (at finish) that all count items and
 * all their data came.  No allocation: the bitmap is in the struct.
 */
struct proto_batch_reader {
	uint32_t count;
	uint32_t seen;
	uint32_t index;		/* item whose data is being read */
	uint64_t left;		/* its data bytes still to come */
	uint64_t bits[PROTO_MAX_BATCH_KEYS / 64];
};

enum proto_batch_event_kind {
	PROTO_BATCH_ITEM = 1,	/* ev->item holds a sub-header */
	PROTO_BATCH_DATA = 2,	/* ev->data: bytes of item ev->item.index */
};

struct proto_batch_event {
	int kind;
	struct proto_batch_item item;
	struct proto_bytes data;
};

/* Returns 0 or -EINVAL (count 0 or over PROTO_MAX_BATCH_KEYS). */
int proto_batch_reader_init(struct proto_batch_reader *r, uint32_t count);
/*
 * Feed one frame's body: call with the frame's body pointer and length, and
 * again with the updated *body / *len while it returns 1.
 * Returns 1 with *ev filled, 0 when the frame's body is used up,
 * STRATA_EPROTO.
 */
int proto_batch_next(struct proto_batch_reader *r, const uint8_t **body,
		     size_t *len, struct proto_batch_event *ev);
/* At the response's END: 0, or STRATA_EPROTO if anything is missing. */
int proto_batch_finish(const struct proto_batch_reader *r);

#endif /* STRATA_PROTO_H */
