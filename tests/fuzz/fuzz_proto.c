// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for proto/, the one decoder of bytes off the network.
 * Each input is used as:
 *
 *  1. a frame header: a header that decodes must re-encode to the same 32
 *     bytes (the encoding is canonical: reserved zero, crc over the rest);
 *  2. typed fields: iteration must end cleanly or in STRATA_EPROTO, every
 *     field inside the input, tags strictly ascending;
 *  3. the fields of every message and body record: what decodes must
 *     re-encode to the input minus unknown fields (so never longer, and
 *     equal bytes when as long), and that re-encoding must decode and
 *     re-encode to itself;
 *  4. a BATCH_GET response body cut into frames at input-chosen points.
 *
 * Any failure other than a clean error code aborts.  libFuzzer hands over a
 * heap copy of exactly the input's size, so ASan sees any over-read.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "strata/error.h"
#include "banned.h"

#define OUT_CAP (PROTO_MAX_FIELDS_LEN + 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static int decode_error(int rc)
{
	return rc == STRATA_EPROTO || rc == STRATA_EBADBUCKET ||
	       rc == STRATA_EBADKEY || rc == STRATA_EBADMETA;
}

static void fuzz_header(const uint8_t *data, size_t size)
{
	struct proto_header h;
	uint8_t out[PROTO_HEADER_LEN];
	int rc = proto_header_decode(data, size, &h);

	if (size < PROTO_HEADER_LEN) {
		check(rc == -EAGAIN);
		return;
	}
	check(rc == 0 || rc == STRATA_EPROTO || rc == STRATA_EPROTOVERSION);
	if (rc)
		return;
	check(h.fields_len <= PROTO_MAX_FIELDS_LEN);
	check(h.body_len <= PROTO_MAX_BODY_LEN);
	check(proto_header_encode(&h, out) == 0);
	check(memcmp(out, data, PROTO_HEADER_LEN) == 0);
}

static void fuzz_fields(const uint8_t *data, size_t size)
{
	struct proto_reader r;
	struct proto_field f;
	uint32_t last = 0, n = 0;
	int rc;

	proto_reader_init(&r, data, size);
	while ((rc = proto_fields_next(&r, &f)) == 1) {
		check(f.tag > last);
		check(f.val >= data && f.val + f.len <= data + size);
		last = f.tag;
		n++;
		if (f.type == PROTO_T_STRLIST) {
			struct proto_list l = { f.val, f.len, 0 };
			struct proto_list_iter it;
			struct proto_str e;
			int lr;

			proto_list_iter_init(&it, &l);
			while ((lr = proto_list_next(&it, &e)) == 1)
				check((const uint8_t *)e.s >= f.val &&
				      (const uint8_t *)e.s + e.len <=
				      f.val + f.len);
			check(lr == 0);
		}
	}
	check(rc == 0 || rc == STRATA_EPROTO);
	check(n <= PROTO_MAX_FIELDS);
}

/*
 * Decode; on success encode, and check the canonical-encoding property
 * described at the top.  out2 holds the second decode's input, which m2
 * points into.
 */
#define FUZZ_MSG(name)							\
	static void fuzz_##name(const uint8_t *data, size_t size,	\
				uint8_t *out1, uint8_t *out2)		\
	{								\
		struct proto_##name m1, m2;				\
		size_t l1, l2;						\
		int rc = proto_##name##_decode(data, size, &m1);	\
									\
		check(rc == 0 || decode_error(rc));			\
		if (rc)							\
			return;						\
		check(proto_##name##_encode(&m1, out1, OUT_CAP, &l1) == 0); \
		check(l1 <= size);					\
		check(l1 < size || memcmp(out1, data, size) == 0);	\
		check(proto_##name##_decode(out1, l1, &m2) == 0);	\
		check(proto_##name##_encode(&m2, out2, OUT_CAP, &l2) == 0); \
		check(l2 == l1 && memcmp(out1, out2, l1) == 0);	\
	}

FUZZ_MSG(hello_req)
FUZZ_MSG(hello_resp)
FUZZ_MSG(auth_req)
FUZZ_MSG(auth_resp)
FUZZ_MSG(error)
FUZZ_MSG(bucket_req)
FUZZ_MSG(bucket_list_req)
FUZZ_MSG(bucket_list_resp)
FUZZ_MSG(put_req)
FUZZ_MSG(put_resp)
FUZZ_MSG(object_req)
FUZZ_MSG(get_req)
FUZZ_MSG(get_resp)
FUZZ_MSG(lifecycle_req)
FUZZ_MSG(lifecycle_resp)
FUZZ_MSG(stats_resp)
FUZZ_MSG(stat_resp)
FUZZ_MSG(delete_resp)
FUZZ_MSG(list_req)
FUZZ_MSG(list_resp)
FUZZ_MSG(keys_req)
FUZZ_MSG(batch_resp)
FUZZ_MSG(key_create_req)
FUZZ_MSG(key_create_resp)
FUZZ_MSG(key_req)
FUZZ_MSG(key_set_req)
FUZZ_MSG(key_info_resp)
FUZZ_MSG(key_list_resp)

/* Records: entry encoders write u16 length || fields. */
#define FUZZ_ENTRY(name)						\
	static void fuzz_##name(const uint8_t *rec, size_t len,	\
				uint8_t *out1, uint8_t *out2)		\
	{								\
		struct proto_##name m1, m2;				\
		size_t l1, l2;						\
		int rc = proto_##name##_decode(rec, len, &m1);		\
									\
		check(rc == 0 || decode_error(rc));			\
		if (rc)							\
			return;						\
		check(proto_##name##_encode(&m1, out1, OUT_CAP, &l1) == 0); \
		check(l1 >= 2 && l1 - 2 <= len);			\
		check((size_t)(out1[0] | out1[1] << 8) == l1 - 2);	\
		check(l1 - 2 < len || memcmp(out1 + 2, rec, len) == 0); \
		check(proto_##name##_decode(out1 + 2, l1 - 2, &m2) == 0); \
		check(proto_##name##_encode(&m2, out2, OUT_CAP, &l2) == 0); \
		check(l2 == l1 && memcmp(out1, out2, l1) == 0);	\
	}

FUZZ_ENTRY(list_entry)
FUZZ_ENTRY(bucket_entry)
FUZZ_ENTRY(key_entry)
FUZZ_ENTRY(chunk_entry)

static void fuzz_records(const uint8_t *data, size_t size, uint8_t *out1,
			 uint8_t *out2)
{
	struct proto_records it;
	struct proto_bytes rec;
	int rc;

	proto_records_init(&it, data, size);
	while ((rc = proto_records_next(&it, &rec)) == 1) {
		check(rec.p >= data && rec.p + rec.len <= data + size);
		fuzz_list_entry(rec.p, rec.len, out1, out2);
		fuzz_bucket_entry(rec.p, rec.len, out1, out2);
		fuzz_key_entry(rec.p, rec.len, out1, out2);
		fuzz_chunk_entry(rec.p, rec.len, out1, out2);
	}
	check(rc == 0 || rc == STRATA_EPROTO);
}

/* data[0] picks the item count, data[1] the frame size; the rest is body. */
static void fuzz_batch(const uint8_t *data, size_t size)
{
	struct proto_batch_reader r;
	struct proto_batch_event ev;
	uint64_t data_bytes = 0, promised = 0;
	uint32_t count, items = 0;
	size_t frame;
	int rc = 0;

	if (size < 2)
		return;
	count = (uint32_t)data[0] % 16 + 1;
	frame = (size_t)data[1] % 64 + 1;
	data += 2;
	size -= 2;
	check(proto_batch_reader_init(&r, count) == 0);
	while (size && rc == 0) {
		const uint8_t *p = data;
		size_t len = size < frame ? size : frame;
		size_t fed = len;

		while ((rc = proto_batch_next(&r, &p, &len, &ev)) == 1) {
			check(ev.item.index < count);
			if (ev.kind == PROTO_BATCH_ITEM) {
				items++;
				/* Saturate: a hostile size may be 2^64-1. */
				promised = ev.item.size > UINT64_MAX - promised ?
					   UINT64_MAX : promised + ev.item.size;
				check(ev.item.status <= 0);
				check(ev.item.status == 0 || ev.item.size == 0);
			} else {
				check(ev.kind == PROTO_BATCH_DATA);
				check(ev.data.len > 0);
				check(ev.data.p >= data &&
				      ev.data.p + ev.data.len <= data + fed);
				data_bytes += ev.data.len;
			}
		}
		check(rc == 0 || rc == STRATA_EPROTO);
		check(rc != 0 || len == 0);
		data += fed;
		size -= fed;
	}
	check(items <= count && data_bytes <= promised);
	if (rc == 0 && proto_batch_finish(&r) == 0)
		check(items == count && data_bytes == promised);
}

/* A lifecycle rule string: what parses formats to a string that parses
 * to the same rule. */
static void fuzz_rule(const uint8_t *data, size_t size)
{
	struct proto_str in = { (const char *)data, size }, again;
	char out[PROTO_MAX_RULE_LEN + 1];
	struct proto_rule r, r2;
	int n;

	if (proto_rule_parse(&in, &r))
		return;
	n = proto_rule_format(&r, out, sizeof(out));	/* no NUL: UTF-8 check */
	check(n > 0);
	again = (struct proto_str){ out, (size_t)n };
	check(proto_rule_parse(&again, &r2) == 0);
	check(r2.action == r.action && r2.age_s == r.age_s &&
	      r2.prefix.len == r.prefix.len &&
	      memcmp(r2.prefix.s, r.prefix.s, r.prefix.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t out1[OUT_CAP], out2[OUT_CAP];	/* on the stack: no globals */

	fuzz_header(data, size);
	fuzz_fields(data, size);
	fuzz_hello_req(data, size, out1, out2);
	fuzz_hello_resp(data, size, out1, out2);
	fuzz_auth_req(data, size, out1, out2);
	fuzz_auth_resp(data, size, out1, out2);
	fuzz_error(data, size, out1, out2);
	fuzz_bucket_req(data, size, out1, out2);
	fuzz_bucket_list_req(data, size, out1, out2);
	fuzz_bucket_list_resp(data, size, out1, out2);
	fuzz_put_req(data, size, out1, out2);
	fuzz_put_resp(data, size, out1, out2);
	fuzz_object_req(data, size, out1, out2);
	fuzz_get_req(data, size, out1, out2);
	fuzz_get_resp(data, size, out1, out2);
	fuzz_stat_resp(data, size, out1, out2);
	fuzz_delete_resp(data, size, out1, out2);
	fuzz_list_req(data, size, out1, out2);
	fuzz_list_resp(data, size, out1, out2);
	fuzz_keys_req(data, size, out1, out2);
	fuzz_batch_resp(data, size, out1, out2);
	fuzz_key_create_req(data, size, out1, out2);
	fuzz_key_create_resp(data, size, out1, out2);
	fuzz_key_req(data, size, out1, out2);
	fuzz_key_set_req(data, size, out1, out2);
	fuzz_key_info_resp(data, size, out1, out2);
	fuzz_key_list_resp(data, size, out1, out2);
	fuzz_lifecycle_req(data, size, out1, out2);
	fuzz_lifecycle_resp(data, size, out1, out2);
	fuzz_stats_resp(data, size, out1, out2);
	fuzz_rule(data, size);
	check(proto_empty_decode(data, size) == 0 ||
	      proto_empty_decode(data, size) == STRATA_EPROTO);
	fuzz_records(data, size, out1, out2);
	fuzz_list_entry(data, size, out1, out2);
	fuzz_batch(data, size);
	return 0;
}
