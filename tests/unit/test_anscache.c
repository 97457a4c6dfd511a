// SPDX-License-Identifier: Apache-2.0
/*
 * The I/O loops' answer cache (daemon/anscache.h): its frame cutter over
 * streams cut anywhere (tests/cutcheck.h's property, on random streams),
 * and its table against a real store's generation.  (The connection side,
 * answers over TLS to real clients, is test_e2e's.)
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "anscache.h"
#include "cutcheck.h"
#include "proto.h"
#include "storeutil.h"
#include "testutil.h"
#include "banned.h"

START_TEST(cut_random_streams)
{
	uint8_t desc[6000];
	uint64_t r = 0x9e3779b97f4a7c15ull;

	for (int round = 0; round < 400; round++) {
		size_t n = 16 + (size_t)(r % (sizeof(desc) - 16));

		for (size_t i = 0; i < n; i++) {
			r ^= r << 13;
			r ^= r >> 7;
			r ^= r << 17;
			desc[i] = (uint8_t)r;
		}
		cut_check(desc, n);
	}
}
END_TEST

/* The same stream whole, then a byte at a time: the same result. */
START_TEST(cut_one_piece_and_bytes)
{
	uint8_t desc[800];

	tu_fill(desc, sizeof(desc), 5);
	/* a first quarter of zeros: pieces of one byte */
	memset(desc, 0, sizeof(desc) / 4);
	cut_check(desc, sizeof(desc));
	/* of 255 * 5 + 1 bytes */
	memset(desc, 0xff, sizeof(desc) / 4);
	cut_check(desc, sizeof(desc));
}
END_TEST

static struct tenv E;

static void env_up(void)
{
	tenv_init(&E, NULL);
	ck_assert_int_eq(tenv_open(&E), 0);
	ck_assert_int_eq(tenv_mb(&E, "bkt"), 0);
}

static void env_down(void)
{
	tenv_release(&E, 1);
}

/* The answer frame in out: id, fields and body as put. */
static void check_answer(const uint8_t *out, size_t len, uint64_t id,
			 const uint8_t *fields, size_t flen,
			 const uint8_t *body, size_t blen)
{
	struct proto_header h;

	ck_assert_uint_eq(len, PROTO_HEADER_LEN + flen + blen);
	ck_assert_int_eq(proto_header_decode(out, len, &h), 0);
	ck_assert_uint_eq(h.id, id);
	ck_assert_int_eq(h.opcode, PROTO_OP_GET);
	ck_assert_uint_eq(h.flags, PROTO_F_RESPONSE | PROTO_F_END);
	ck_assert_uint_eq(h.fields_len, flen);
	ck_assert_uint_eq(h.body_len, blen);
	ck_assert(memcmp(out + PROTO_HEADER_LEN, fields, flen) == 0);
	ck_assert(memcmp(out + PROTO_HEADER_LEN + flen, body, blen) == 0);
}

/* An answer is served while its bucket's answer generation is the one
 * it was read at: a write to that bucket, or a bucket change, makes it
 * stale; a write to another bucket does not. */
START_TEST(table_follows_generation)
{
	static uint8_t out[ANSCACHE_MAX_ANSWER];
	const uint8_t fields[] = { 1, 2, 3, 4, 5 };
	struct store_object_info info, other;
	uint8_t body[4096];
	struct anscache *a;
	size_t body_len = 0;

	env_up();
	ck_assert_int_eq(tenv_mb(&E, "bkt2"), 0);
	tu_fill(body, sizeof(body), 3);
	ck_assert_int_eq(tenv_put(&E, "bkt", "k", body, sizeof(body), NULL), 0);
	ck_assert_int_eq(tenv_put(&E, "bkt2", "k", "x", 1, NULL), 0);
	ck_assert_int_eq(tenv_info(&E, "bkt", "k", &info), 0);
	ck_assert_int_eq(tenv_info(&E, "bkt2", "k", &other), 0);
	ck_assert(info.inline_obj);
	ck_assert_uint_ne(info.bucket_id, other.bucket_id);
	ck_assert_uint_ne(info.bucket_id % STORE_ANSWER_SLOTS,
			  other.bucket_id % STORE_ANSWER_SLOTS);
	ck_assert_uint_eq(info.gen, store_answer_gen(E.s, info.bucket_id));
	ck_assert_int_eq(anscache_new(1 << 20, E.s, &a), 0);
	ck_assert_uint_eq(anscache_lookup(a, 7, "bkt", 3, "k", 1, out,
					  &body_len), 0);
	anscache_put(a, "bkt", "k", 1, info.bucket_id, info.gen, fields,
		     sizeof(fields), body, sizeof(body));
	check_answer(out, anscache_lookup(a, 7, "bkt", 3, "k", 1, out,
					  &body_len), 7, fields,
		     sizeof(fields), body, sizeof(body));
	ck_assert_uint_eq(body_len, sizeof(body));
	/* Another id, the same answer; other names miss. */
	check_answer(out, anscache_lookup(a, 1ull << 40, "bkt", 3, "k", 1, out,
					  &body_len), 1ull << 40, fields,
		     sizeof(fields), body, sizeof(body));
	ck_assert_uint_eq(anscache_lookup(a, 7, "bkt", 3, "kk", 2, out,
					  &body_len), 0);
	ck_assert_uint_eq(anscache_lookup(a, 7, "bk", 2, "k", 1, out,
					  &body_len), 0);
	/* A write to another bucket leaves it current ... */
	ck_assert_int_eq(tenv_put(&E, "bkt2", "k", "y", 1, NULL), 0);
	ck_assert_int_eq(tenv_rm(&E, "bkt2", "k"), 0);
	ck_assert_uint_eq(anscache_lookup(a, 8, "bkt", 3, "k", 1, out,
					  &body_len), PROTO_HEADER_LEN +
			  sizeof(fields) + sizeof(body));
	/* ... one to its own bucket, any object, does not. */
	ck_assert_int_eq(tenv_put(&E, "bkt", "other", "x", 1, NULL), 0);
	ck_assert_uint_gt(store_answer_gen(E.s, info.bucket_id), info.gen);
	ck_assert_uint_eq(anscache_lookup(a, 7, "bkt", 3, "k", 1, out,
					  &body_len), 0);
	/* Read again: served again, until a delete in the bucket. */
	ck_assert_int_eq(tenv_info(&E, "bkt", "k", &info), 0);
	anscache_put(a, "bkt", "k", 1, info.bucket_id, info.gen, fields,
		     sizeof(fields), body, 10);
	check_answer(out, anscache_lookup(a, 9, "bkt", 3, "k", 1, out,
					  &body_len), 9, fields,
		     sizeof(fields), body, 10);
	ck_assert_int_eq(tenv_rm(&E, "bkt", "other"), 0);
	ck_assert_uint_eq(anscache_lookup(a, 9, "bkt", 3, "k", 1, out,
					  &body_len), 0);
	/* And a bucket change makes every answer stale. */
	ck_assert_int_eq(tenv_info(&E, "bkt", "k", &info), 0);
	anscache_put(a, "bkt", "k", 1, info.bucket_id, info.gen, fields,
		     sizeof(fields), body, 10);
	ck_assert_uint_ne(anscache_lookup(a, 9, "bkt", 3, "k", 1, out,
					  &body_len), 0);
	ck_assert_int_eq(tenv_mb(&E, "bkt3"), 0);
	ck_assert_uint_eq(anscache_lookup(a, 9, "bkt", 3, "k", 1, out,
					  &body_len), 0);
	anscache_free(a);
	env_down();
}
END_TEST

START_TEST(table_bounds)
{
	static uint8_t out[ANSCACHE_MAX_ANSWER];
	static uint8_t big[ANSCACHE_MAX_BODY + 1];
	struct anscache_stats st;
	struct anscache *a;
	size_t body_len;
	uint64_t gen;
	char key[32];

	env_up();
	gen = store_answer_gen(E.s, 1);
	/* A budget of about three 4 KiB answers. */
	ck_assert_int_eq(anscache_new(3 * 4200, E.s, &a), 0);
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		anscache_put(a, "bkt", key, strlen(key), 1, gen, NULL, 0, big,
			     4096);
	}
	anscache_stats(a, &st);
	ck_assert_uint_le(st.bytes, 3 * 4200);
	ck_assert_uint_ge(st.entries, 1);
	ck_assert_uint_le(st.entries, 3);
	/* Old answers made room for the newest. */
	ck_assert_uint_eq(anscache_lookup(a, 1, "bkt", 3, "k49", 3, out,
					  &body_len), PROTO_HEADER_LEN + 4096);
	ck_assert_uint_eq(st.fills, 50);
	/* Too large a body, or fields: not kept. */
	anscache_put(a, "bkt", "big", 3, 1, gen, NULL, 0, big, sizeof(big));
	ck_assert_uint_eq(anscache_lookup(a, 1, "bkt", 3, "big", 3, out,
					  &body_len), 0);
	anscache_put(a, "bkt", "fl", 2, 1, gen, big, ANSCACHE_MAX_FIELDS + 1,
		     NULL, 0);
	ck_assert_uint_eq(anscache_lookup(a, 1, "bkt", 3, "fl", 2, out,
					  &body_len), 0);
	/* Switched off: nothing more is kept. */
	anscache_free(a);
	ck_assert_int_eq(anscache_new(1 << 20, E.s, &a), 0);
	anscache_set_enabled(a, false);
	anscache_put(a, "bkt", "off", 3, 1, gen, NULL, 0, big, 10);
	ck_assert_uint_eq(anscache_lookup(a, 1, "bkt", 3, "off", 3, out,
					  &body_len), 0);
	anscache_stats(a, &st);
	ck_assert_uint_eq(st.entries, 0);
	anscache_free(a);
	env_down();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("anscache");
	TCase *tc = tcase_create("anscache");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, cut_random_streams);
	tcase_add_test(tc, cut_one_piece_and_bytes);
	tcase_add_test(tc, table_follows_generation);
	tcase_add_test(tc, table_bounds);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
