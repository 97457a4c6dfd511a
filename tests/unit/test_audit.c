// SPDX-License-Identifier: Apache-2.0
/*
 * audit: the record format (exact bytes, JSON escaping, cuts, valid JSON
 * by jansson), the chain checker (every one-byte change of a chain, lines
 * removed, swapped, repeated, forged; torn tails; line length bounds; the
 * file reader across its 64 KiB pieces agreeing with the buffer one), and
 * the writer on a real loop (records flushed by the loop, reopen goes on,
 * a torn tail cut, a foreign last line refused and left alone, the sync
 * timer, write errors leaving a visible gap and no torn line).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <openssl/sha.h>

#include "audit.h"
#include "audit_format.h"
#include "strata/error.h"
#include "testutil.h"
#include "banned.h"

#define T0 INT64_C(1764304800123)	/* 2025-11-28T04:40:00.123Z */

static char *dir, *path;
static const uint8_t zeros[AUDIT_HASH_LEN];

static void setup(void)
{
	dir = tu_tmpdir("audit");
	ck_assert_int_ge(asprintf(&path, "%s/audit.log", dir), 0);
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dir);
	free(path);
	dir = path = NULL;
}

/* ---- helpers ------------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const void *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		ck_assert_ptr_nonnull(b->p);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

/* Record i of a test chain (keybuf: its key's storage). */
static struct audit_record rec(uint64_t i, char *keybuf, size_t cap)
{
	struct audit_record r = {
		.time_ms = T0 + (int64_t)i,
		.principal = "AKTEST0001",
		.peer = "127.0.0.1:40312",
		.op = i % 3 ? "GET" : "PUT",
		.bucket = "b",
		.status = i % 7 ? 0 : -2,
		.in = i * 10,
		.out = i * 100,
	};

	snprintf(keybuf, cap, "dir/obj-%llu", (unsigned long long)i);
	r.key = keybuf;
	r.keylen = strlen(keybuf);
	return r;
}

/* Append record seq chained to *head (updated) to b. */
static void add_rec(struct sbuf *b, uint64_t seq, uint8_t head[AUDIT_HASH_LEN],
		    const struct audit_record *r)
{
	char *line;
	size_t n;

	ck_assert_int_eq(audit_format(seq, head, r, &line, &n, head), 0);
	ck_assert_uint_le(n, AUDIT_LINE_MAX);
	ck_assert_int_eq(line[n - 1], '\n');
	ck_assert_int_eq(line[n], 0);
	sb_add(b, line, n);
	free(line);
}

/* Records first..last of the standard test chain, after head. */
static void add_chain(struct sbuf *b, uint64_t first, uint64_t last,
		      uint8_t head[AUDIT_HASH_LEN])
{
	char key[64];

	for (uint64_t i = first; i <= last; i++) {
		struct audit_record r = rec(i, key, sizeof(key));

		add_rec(b, i, head, &r);
	}
}

static struct sbuf chain(uint64_t n, uint8_t head[AUDIT_HASH_LEN])
{
	struct sbuf b = { 0 };
	uint8_t h[AUDIT_HASH_LEN] = { 0 };

	sb_add(&b, "", 0);
	add_chain(&b, 1, n, h);
	if (head)
		memcpy(head, h, sizeof(h));
	return b;
}

/* Offset of line k (1-based) of b, and its length with its '\n'. */
static size_t line_at(const struct sbuf *b, uint64_t k, size_t *len)
{
	size_t off = 0;

	while (--k) {
		char *nl = memchr(b->p + off, '\n', b->len - off);

		ck_assert_ptr_nonnull(nl);
		off = (size_t)(nl - b->p) + 1;
	}
	*len = (size_t)((char *)memchr(b->p + off, '\n', b->len - off) -
			(b->p + off)) + 1;
	return off;
}

static void hex(const uint8_t h[AUDIT_HASH_LEN], char out[65])
{
	for (int i = 0; i < AUDIT_HASH_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/*
 * A record line built by hand: the frame, a "pad" member filling it to
 * total bytes (no '\n' counted), the right hash; '\n' appended.
 */
static void add_padded(struct sbuf *b, uint64_t seq,
		       uint8_t head[AUDIT_HASH_LEN], size_t total)
{
	char pre[160], hx[65];
	size_t plen, k;
	char *body;

	hex(head, hx);
	plen = (size_t)snprintf(pre, sizeof(pre),
				"{\"seq\":%llu,\"prev\":\"%s\",\"pad\":\"",
				(unsigned long long)seq, hx);
	k = total - 75 - plen - 1;
	body = tu_xmalloc(plen + k + 1);
	memcpy(body, pre, plen);
	memset(body + plen, 'a', k);
	body[plen + k] = '"';
	SHA256((const unsigned char *)body, plen + k + 1, head);
	hex(head, hx);
	sb_add(b, body, plen + k + 1);
	sb_add(b, ",\"hash\":\"", 9);
	sb_add(b, hx, 64);
	sb_add(b, "\"}\n", 3);
	free(body);
}

static int verify(const struct sbuf *b, struct audit_verify *v)
{
	return audit_verify_buf((const uint8_t *)b->p, b->len, v);
}

/* verify_file on b's bytes says what verify_buf says; that answer. */
static int verify_both(const struct sbuf *b, struct audit_verify *v)
{
	struct audit_verify f;
	int rc = verify(b, v), frc;

	ck_assert_int_eq(tu_write_file(path, b->p, b->len, 0600), 0);
	memset(&f, 0x5a, sizeof(f));
	frc = audit_verify_file(path, &f);
	ck_assert_int_eq(frc, rc);
	ck_assert_uint_eq(f.records, v->records);
	ck_assert_uint_eq(f.last_seq, v->last_seq);
	ck_assert_mem_eq(f.head, v->head, AUDIT_HASH_LEN);
	ck_assert_uint_eq(f.bad_line, v->bad_line);
	ck_assert_int_eq(f.torn_tail, v->torn_tail);
	ck_assert_str_eq(f.why, v->why);
	return rc;
}

static void want_intact(int rc, const struct audit_verify *v, uint64_t n,
			bool torn)
{
	ck_assert_msg(rc == 0, "rc %d: %s", rc, v->why);
	ck_assert_uint_eq(v->records, n);
	ck_assert_uint_eq(v->last_seq, n);
	ck_assert_uint_eq(v->bad_line, 0);
	ck_assert_int_eq(v->torn_tail, torn);
	ck_assert_str_eq(v->why, "");
}

static void want_fault(int rc, const struct audit_verify *v, uint64_t line,
		       const char *why)
{
	ck_assert_int_eq(rc, STRATA_ECORRUPT);
	ck_assert_uint_eq(v->bad_line, line);
	ck_assert_uint_eq(v->records, line - 1);
	ck_assert_uint_eq(v->last_seq, line - 1);
	ck_assert_msg(strstr(v->why, why), "want \"%s\" in \"%s\"", why,
		      v->why);
}

/* The line as JSON (jansson is strict: UTF-8, escapes, no trailing
 * bytes); the caller json_decref()s it. */
static json_t *as_json(const char *line, size_t len)
{
	json_error_t e;
	json_t *j = json_loadb(line, len, 0, &e);

	ck_assert_msg(j != NULL, "not JSON: %s at %d: %.*s", e.text,
		      e.position, len > 300 ? 300 : (int)len, line);
	ck_assert(json_is_object(j));
	return j;
}

static const char *jstr(json_t *j, const char *name)
{
	json_t *m = json_object_get(j, name);

	ck_assert_msg(json_is_string(m), "%s", name);
	return json_string_value(m);
}

/* ---- format -------------------------------------------------------------- */

/* The exact bytes, the hash over what precedes ,"hash":, and back. */
START_TEST(format_exact)
{
	struct audit_record r = {
		.time_ms = T0, .principal = "AKID", .peer = "127.0.0.1:40312",
		.op = "GET", .bucket = "b", .key = "k", .keylen = 1,
		.status = -2, .in = 0, .out = 4096,
	};
	uint8_t prev[AUDIT_HASH_LEN], hash[AUDIT_HASH_LEN], want[AUDIT_HASH_LEN];
	uint8_t got[AUDIT_HASH_LEN];
	char ph[65], hh[65], *line, *exp;
	const char *body;
	size_t n, blen;
	uint64_t seq;

	memset(prev, 0xab, sizeof(prev));
	ck_assert_int_eq(audit_format(7, prev, &r, &line, &n, hash), 0);
	body = "{\"seq\":7,\"prev\":\"abababababababababababababababab"
	       "abababababababababababababababab\",\"time\":"
	       "\"2025-11-28T04:40:00.123Z\",\"principal\":\"AKID\",\"peer\":"
	       "\"127.0.0.1:40312\",\"op\":\"GET\",\"bucket\":\"b\",\"key\":"
	       "\"k\",\"status\":-2,\"in\":0,\"out\":4096";
	blen = strlen(body);
	SHA256((const unsigned char *)body, blen, want);
	ck_assert_mem_eq(hash, want, AUDIT_HASH_LEN);
	hex(prev, ph);
	hex(hash, hh);
	ck_assert_int_ge(asprintf(&exp, "%s,\"hash\":\"%s\"}\n", body, hh), 0);
	ck_assert_str_eq(line, exp);
	ck_assert_uint_eq(n, strlen(exp));
	ck_assert_int_eq(audit_parse_line(line, n - 1, &seq, got), 0);
	ck_assert_uint_eq(seq, 7);
	ck_assert_mem_eq(got, hash, AUDIT_HASH_LEN);
	free(exp);
	free(line);

	/* No key: no "key" member. */
	r.key = NULL;
	ck_assert_int_eq(audit_format(1, zeros, &r, &line, &n, hash), 0);
	ck_assert_ptr_null(strstr(line, "\"key\""));
	ck_assert_ptr_nonnull(strstr(line, "\"bucket\":\"b\",\"status\":-2,"));
	free(line);
}
END_TEST

START_TEST(format_time)
{
	static const struct { int64_t ms; const char *want; } t[] = {
		{ 0, "1970-01-01T00:00:00.000Z" },
		{ -5, "1970-01-01T00:00:00.000Z" },
		{ 999, "1970-01-01T00:00:00.999Z" },
		{ INT64_C(951782400001), "2000-02-29T00:00:00.001Z" },
		{ INT64_MAX, "9999-12-31T23:59:59.999Z" },
	};
	struct audit_record r = { .op = "GET" };
	uint8_t hash[AUDIT_HASH_LEN];
	char want[64], *line;
	size_t n;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		r.time_ms = t[i].ms;
		ck_assert_int_eq(audit_format(1, zeros, &r, &line, &n, hash), 0);
		snprintf(want, sizeof(want), "\"time\":\"%s\"", t[i].want);
		ck_assert_msg(strstr(line, want), "%s in %s", want, line);
		free(line);
	}
}
END_TEST

/* Quotes, backslashes, control bytes, DEL, bytes that are not UTF-8 and
 * UTF-8 that is: exact escapes, and jansson reads back what they mean. */
START_TEST(format_escapes)
{
	static const char key[] = "a\"b\\c\n\x01\x7f\xff "
				  "\xc3\xa9"		/* é: as is */
				  "\xc0\x80"		/* overlong NUL */
				  "\xed\xa0\x80"	/* a surrogate */
				  "\xf0\x9f\x98\x80"	/* U+1F600: as is */
				  "\xf4\x90\x80\x80"	/* past U+10FFFF */
				  "\xe2\x82";		/* cut short */
	static const char want[] = "\"key\":\"a\\\"b\\\\c\\u000a\\u0001"
		"\\u007f\\u00ff \xc3\xa9\\u00c0\\u0080\\u00ed\\u00a0\\u0080"
		"\xf0\x9f\x98\x80\\u00f4\\u0090\\u0080\\u0080\\u00e2\\u0082\"";
	/* What a JSON reader makes of it: each escaped byte as U+00XX. */
	static const char decoded[] = "a\"b\\c\n\x01\x7f\xc3\xbf \xc3\xa9"
		"\xc3\x80\xc2\x80\xc3\xad\xc2\xa0\xc2\x80\xf0\x9f\x98\x80"
		"\xc3\xb4\xc2\x90\xc2\x80\xc2\x80\xc3\xa2\xc2\x82";
	struct audit_record r = {
		.time_ms = T0, .principal = "p\"q\\", .peer = "\t\x1b[31m",
		.op = "PUT", .bucket = "\xff\xfe", .key = key,
		.keylen = sizeof(key) - 1,
	};
	uint8_t hash[AUDIT_HASH_LEN];
	struct audit_verify v;
	char *line;
	size_t n;
	json_t *j;

	ck_assert_int_eq(audit_format(1, zeros, &r, &line, &n, hash), 0);
	ck_assert_msg(strstr(line, want), "%s", line);
	ck_assert_ptr_nonnull(strstr(line, "\"principal\":\"p\\\"q\\\\\""));
	ck_assert_ptr_nonnull(strstr(line, "\"peer\":\"\\u0009\\u001b[31m\""));
	ck_assert_ptr_nonnull(strstr(line, "\"bucket\":\"\\u00ff\\u00fe\""));
	j = as_json(line, n);
	ck_assert_str_eq(jstr(j, "key"), decoded);
	ck_assert_str_eq(jstr(j, "principal"), "p\"q\\");
	ck_assert_str_eq(jstr(j, "peer"), "\t\x1b[31m");
	ck_assert_str_eq(jstr(j, "op"), "PUT");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 1);
	json_decref(j);
	ck_assert_int_eq(audit_verify_buf((uint8_t *)line, n, &v), 0);
	ck_assert_uint_eq(v.records, 1);
	free(line);

	/* A NUL inside the key (keys carry a length) is escaped too. */
	r.key = "a\0b";
	r.keylen = 3;
	ck_assert_int_eq(audit_format(1, zeros, &r, &line, &n, hash), 0);
	ck_assert_ptr_nonnull(strstr(line, "\"key\":\"a\\u0000b\""));
	ck_assert_int_eq(audit_verify_buf((uint8_t *)line, n, &v), 0);
	free(line);
}
END_TEST

/* The key's text between "key":" and its closing quote. */
static size_t key_text(const char *line, const char **start)
{
	const char *s = strstr(line, "\"key\":\""), *e;

	ck_assert_ptr_nonnull(s);
	s += 7;
	e = strstr(s, "\",\"status\":");
	ck_assert_ptr_nonnull(e);
	*start = s;
	return (size_t)(e - s);
}

/* Keys and fields too long for a line are cut at a character, end in
 * "...", and the line stays valid JSON within AUDIT_LINE_MAX; a key as long
 * as the protocol allows, all escapes, is whole. */
START_TEST(format_long)
{
	size_t big = 40000, n, kl;
	char *key = tu_xmalloc(big), *line, *longp;
	uint8_t hash[AUDIT_HASH_LEN];
	struct audit_record r = { .time_ms = T0, .op = "PUT", .bucket = "b" };
	struct audit_verify v;
	const char *ks;
	json_t *j;

	/* 1024 bytes that each take 6: whole. */
	memset(key, 0xff, 1024);
	r.key = key;
	r.keylen = 1024;
	ck_assert_int_eq(audit_format(1, zeros, &r, &line, &n, hash), 0);
	ck_assert_uint_eq(key_text(line, &ks), 6 * 1024);
	free(line);

	/* Cut: all escapes, then "..." */
	memset(key, 0xff, big);
	r.keylen = big;
	ck_assert_int_eq(audit_format(1, zeros, &r, &line, &n, hash), 0);
	ck_assert_uint_le(n, AUDIT_LINE_MAX);
	ck_assert_uint_ge(n, AUDIT_LINE_MAX - 200);
	kl = key_text(line, &ks);
	ck_assert_int_eq(memcmp(ks + kl - 3, "...", 3), 0);
	ck_assert_uint_eq((kl - 3) % 6, 0);
	for (size_t i = 0; i < kl - 3; i += 6)
		ck_assert_int_eq(memcmp(ks + i, "\\u00ff", 6), 0);
	j = as_json(line, n);
	json_decref(j);
	ck_assert_int_eq(audit_verify_buf((uint8_t *)line, n, &v), 0);
	free(line);

	/* Cut between 4-byte characters, never inside one. */
	for (size_t i = 0; i + 4 <= big; i += 4)
		memcpy(key + i, "\xf0\x9f\x98\x80", 4);
	ck_assert_int_eq(audit_format(1, zeros, &r, &line, &n, hash), 0);
	ck_assert_uint_le(n, AUDIT_LINE_MAX);
	kl = key_text(line, &ks);
	ck_assert_uint_eq((kl - 3) % 4, 0);
	j = as_json(line, n);
	json_decref(j);
	free(line);

	/* Plain bytes: cut where the room ends (room kept for the
	 * longest numbers after the key). */
	memset(key, 'k', big);
	ck_assert_int_eq(audit_format(1, zeros, &r, &line, &n, hash), 0);
	ck_assert_uint_le(n, AUDIT_LINE_MAX);
	ck_assert_uint_ge(n, AUDIT_LINE_MAX - 160);
	kl = key_text(line, &ks);
	ck_assert_int_eq(memcmp(ks + kl - 4, "k...", 4), 0);
	free(line);
	r.status = INT32_MIN;
	r.in = r.out = UINT64_MAX;
	ck_assert_int_eq(audit_format(UINT64_MAX, zeros, &r, &line, &n, hash), 0);
	ck_assert_uint_eq(n, AUDIT_LINE_MAX);
	ck_assert_int_eq(audit_verify_buf((uint8_t *)line, n, &v),
			 STRATA_ECORRUPT);	/* seq 2^64-1 is not 1 */
	ck_assert_str_eq(v.why, "line 1: seq 18446744073709551615, not 1 "
			 "(the log does not begin with its first record)");
	free(line);
	r.status = 0;
	r.in = r.out = 0;	/* jansson's integers are signed */

	/* Other fields: 512 bytes at most, escaped; the line still fits
	 * with a long key. */
	longp = tu_xmalloc(3000);
	memset(longp, '"', 2999);
	longp[2999] = 0;
	r.principal = r.peer = r.op = r.bucket = longp;
	ck_assert_int_eq(audit_format(1, zeros, &r, &line, &n, hash), 0);
	ck_assert_uint_le(n, AUDIT_LINE_MAX);
	j = as_json(line, n);
	ck_assert_uint_eq(strlen(jstr(j, "principal")), 254 + 3);
	ck_assert_str_eq(jstr(j, "principal") + 254, "...");
	ck_assert_str_eq(jstr(j, "bucket"), jstr(j, "peer"));
	json_decref(j);
	ck_assert_int_eq(audit_verify_buf((uint8_t *)line, n, &v), 0);
	free(line);

	/* NULL strings are empty ones. */
	r.principal = r.peer = r.op = r.bucket = NULL;
	r.key = NULL;
	ck_assert_int_eq(audit_format(1, zeros, &r, &line, &n, hash), 0);
	ck_assert_ptr_nonnull(strstr(line, "\"principal\":\"\",\"peer\":\"\","
				     "\"op\":\"\",\"bucket\":\"\",\"status\""));
	free(line);
	free(longp);
	free(key);
}
END_TEST

/* Every line of a chain is JSON that says what was recorded. */
START_TEST(format_json_fields)
{
	struct sbuf b = chain(20, NULL);
	size_t off = 0, n;

	for (uint64_t i = 1; i <= 20; i++) {
		char key[64], hx[65];
		json_t *j;

		off = line_at(&b, i, &n);
		j = as_json(b.p + off, n);
		ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")),
				 (json_int_t)i);
		snprintf(key, sizeof(key), "dir/obj-%llu", (unsigned long long)i);
		ck_assert_str_eq(jstr(j, "key"), key);
		ck_assert_str_eq(jstr(j, "op"), i % 3 ? "GET" : "PUT");
		ck_assert_int_eq(json_integer_value(json_object_get(j, "out")),
				 (json_int_t)i * 100);
		ck_assert_int_eq(json_integer_value(json_object_get(j, "status")),
				 i % 7 ? 0 : -2);
		ck_assert_uint_eq(strlen(jstr(j, "hash")), 64);
		if (i == 1) {
			hex(zeros, hx);
			ck_assert_str_eq(jstr(j, "prev"), hx);
		}
		json_decref(j);
	}
	free(b.p);
}
END_TEST

START_TEST(parse_line_forms)
{
	static const char *const bad[] = {
		"",
		"{}",
		"{\"seq\":007,",		/* leading zero */
		"{\"seq\":0,",			/* no seq 0 */
		"{\"seq\":99999999999999999999,",	/* past 2^64 */
		"{\"seq\": 1,",
		"{\"SEQ\":1,",
	};
	struct sbuf b = chain(3, NULL);
	uint8_t h[AUDIT_HASH_LEN], want[AUDIT_HASH_LEN];
	size_t off, n;
	uint64_t seq;
	char *l;

	off = line_at(&b, 3, &n);
	ck_assert_int_eq(audit_parse_line(b.p + off, n - 1, &seq, h), 0);
	ck_assert_uint_eq(seq, 3);
	SHA256((const unsigned char *)b.p + off, n - 1 - 75, want);
	ck_assert_mem_eq(h, want, AUDIT_HASH_LEN);
	/* With its newline it is not a line. */
	ck_assert_int_eq(audit_parse_line(b.p + off, n, &seq, h),
			 STRATA_ECORRUPT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* The prefix replaced, the rest of a real line kept. */
		const char *rest = strstr(b.p + off, ",\"prev\"");

		ck_assert_int_ge(asprintf(&l, "%s%.*s", bad[i],
					  (int)(b.p + off + n - 1 - rest - 1),
					  rest + 1), 0);
		ck_assert_msg(audit_parse_line(l, strlen(l), &seq, h) ==
			      STRATA_ECORRUPT, "%s", l);
		free(l);
	}
	/* Uppercase hex in the hash: the same value, another spelling. */
	l = strndup(b.p + off, n - 1);
	for (char *p = l + n - 1 - 66; *p != '"'; p++)
		if (*p >= 'a' && *p <= 'f') {
			*p = (char)(*p - 'a' + 'A');
			break;
		}
	ck_assert_int_eq(audit_parse_line(l, n - 1, &seq, h), STRATA_ECORRUPT);
	free(l);
	free(b.p);
}
END_TEST

/* ---- verify -------------------------------------------------------------- */

START_TEST(verify_intact)
{
	uint8_t head[AUDIT_HASH_LEN];
	struct sbuf b = chain(100, head);
	struct audit_verify v;

	want_intact(verify_both(&b, &v), &v, 100, false);
	ck_assert_mem_eq(v.head, head, AUDIT_HASH_LEN);
	free(b.p);
}
END_TEST

START_TEST(verify_empty)
{
	struct sbuf b = { .p = (char *)"", .len = 0 };
	struct audit_verify v;

	want_intact(verify_both(&b, &v), &v, 0, false);
	ck_assert_mem_eq(v.head, zeros, AUDIT_HASH_LEN);
}
END_TEST

/*
 * Every byte of a 3-record chain set to each of its 255 other values: a
 * fault on the line that byte belongs to (a newline changed: the line it
 * ends), except the final newline, whose loss is a torn tail over 2
 * intact records.
 */
START_TEST(verify_every_byte)
{
	struct sbuf b = chain(3, NULL);
	uint8_t *m = tu_xmalloc(b.len);
	struct audit_verify v;
	uint64_t line = 1;

	for (size_t i = 0; i < b.len; i++) {
		for (int x = 1; x < 256; x++) {
			int rc;

			memcpy(m, b.p, b.len);
			m[i] ^= (uint8_t)x;
			rc = audit_verify_buf(m, b.len, &v);
			if (i == b.len - 1) {
				ck_assert_msg(rc == 0 && v.torn_tail &&
					      v.records == 2 && !v.bad_line,
					      "byte %zu ^ %d: rc %d", i, x, rc);
				continue;
			}
			ck_assert_msg(rc == STRATA_ECORRUPT && v.bad_line == line
				      && v.records == line - 1 && v.why[0],
				      "byte %zu ^ %d: rc %d line %llu: %s", i,
				      x, rc, (unsigned long long)v.bad_line,
				      v.why);
		}
		if (b.p[i] == '\n')
			line++;
	}
	free(m);
	free(b.p);
}
END_TEST

/* Remove line k (1-based) of b. */
static struct sbuf without(const struct sbuf *b, uint64_t k)
{
	struct sbuf o = { 0 };
	size_t n, off = line_at(b, k, &n);

	sb_add(&o, b->p, off);
	sb_add(&o, b->p + off + n, b->len - off - n);
	return o;
}

START_TEST(verify_removed)
{
	struct sbuf b = chain(10, NULL), o;
	struct audit_verify v;

	o = without(&b, 4);
	want_fault(verify_both(&o, &v), &v, 4,
		   "line 4: seq 5 follows 3 (records removed)");
	free(o.p);
	o = without(&b, 1);
	want_fault(verify_both(&o, &v), &v, 1,
		   "line 1: seq 2, not 1 (the log does not begin with its "
		   "first record)");
	free(o.p);
	/* The last record removed: what is left is a whole chain.  Only a
	 * copy of the head (seq, hash) kept elsewhere shows that. */
	o = without(&b, 10);
	want_intact(verify_both(&o, &v), &v, 9, false);
	free(o.p);
	free(b.p);
}
END_TEST

START_TEST(verify_swapped_and_repeated)
{
	struct sbuf b = chain(10, NULL), o = { 0 };
	struct audit_verify v;
	size_t o4, n4, o5, n5;

	o4 = line_at(&b, 4, &n4);
	o5 = line_at(&b, 5, &n5);
	sb_add(&o, b.p, o4);
	sb_add(&o, b.p + o5, n5);
	sb_add(&o, b.p + o4, n4);
	sb_add(&o, b.p + o5 + n5, b.len - o5 - n5);
	ck_assert_uint_eq(o.len, b.len);
	want_fault(verify_both(&o, &v), &v, 4, "line 4: seq 5 follows 3");
	free(o.p);

	o = (struct sbuf){ 0 };
	sb_add(&o, b.p, o5);
	sb_add(&o, b.p + o4, b.len - o4);	/* line 4 again, and on */
	want_fault(verify_both(&o, &v), &v, 5,
		   "line 5: seq 4 follows 4 (records repeated or out of order)");
	free(o.p);
	free(b.p);
}
END_TEST

/* Records that are well formed, with the right seq, but not this chain's:
 * prev gives them away. */
START_TEST(verify_forged)
{
	uint8_t head[AUDIT_HASH_LEN], other[AUDIT_HASH_LEN];
	struct audit_record r;
	struct sbuf b = { 0 }, o = { 0 };
	struct audit_verify v;
	char key[64];

	/* Record 5 rewritten with a fresh hash: line 6's prev. */
	memset(head, 0, sizeof(head));
	sb_add(&b, "", 0);
	add_chain(&b, 1, 4, head);
	memcpy(other, head, sizeof(head));
	r = rec(5, key, sizeof(key));
	r.out = 1;			/* the edit */
	add_rec(&b, 5, other, &r);
	/* Records 6.. as they were, after the real record 5. */
	{
		struct sbuf real5 = { 0 };

		r = rec(5, key, sizeof(key));
		add_rec(&real5, 5, head, &r);
		free(real5.p);
	}
	add_chain(&b, 6, 8, head);
	want_fault(verify_both(&b, &v), &v, 6,
		   "line 6: prev does not match the hash of line 5 (a record "
		   "before it was removed, inserted or edited)");
	free(b.p);

	/* A first record with a prev: the start of the log was cut. */
	memset(head, 7, sizeof(head));
	sb_add(&o, "", 0);
	add_chain(&o, 1, 3, head);
	want_fault(verify_both(&o, &v), &v, 1, "line 1: prev is not zeros");
	free(o.p);
}
END_TEST

START_TEST(verify_torn)
{
	uint8_t head[AUDIT_HASH_LEN];
	struct sbuf b = chain(5, head), full;
	struct audit_verify v;
	size_t off, n;

	full = chain(6, NULL);
	off = line_at(&full, 6, &n);
	ck_assert_uint_eq(off, b.len);
	/* Any cut of record 6 short of its newline. */
	for (size_t cut = 1; cut < n; cut++) {
		struct sbuf t = { .p = full.p, .len = off + cut };

		want_intact(verify(&t, &v), &v, 5, true);
		ck_assert_mem_eq(v.head, head, AUDIT_HASH_LEN);
	}
	{
		struct sbuf t = { .p = full.p, .len = off + n / 2 };

		want_intact(verify_both(&t, &v), &v, 5, true);
	}
	/* A torn line alone. */
	{
		struct sbuf t = { .p = full.p, .len = 10 };

		want_intact(verify_both(&t, &v), &v, 0, true);
	}
	free(full.p);
	free(b.p);
}
END_TEST

/* AUDIT_LINE_MAX bytes (newline not counted) is a line; one more is not,
 * torn or whole; a NUL byte is a fault. */
START_TEST(verify_bounds)
{
	uint8_t head[AUDIT_HASH_LEN];
	struct sbuf b = chain(2, head), o = { 0 };
	struct audit_verify v;
	char *junk;

	sb_add(&o, b.p, b.len);
	add_padded(&o, 3, head, AUDIT_LINE_MAX);
	add_chain(&o, 4, 5, head);
	want_intact(verify_both(&o, &v), &v, 5, false);
	free(o.p);

	o = (struct sbuf){ 0 };
	memcpy(head, zeros, sizeof(head));
	sb_add(&o, "", 0);
	add_chain(&o, 1, 2, head);
	add_padded(&o, 3, head, AUDIT_LINE_MAX + 1);
	want_fault(verify_both(&o, &v), &v, 3,
		   "line 3: longer than 16384 bytes");
	free(o.p);

	junk = tu_xmalloc(AUDIT_LINE_MAX + 1);
	memset(junk, 'x', AUDIT_LINE_MAX + 1);
	o = (struct sbuf){ 0 };
	sb_add(&o, b.p, b.len);
	sb_add(&o, junk, AUDIT_LINE_MAX);
	want_intact(verify_both(&o, &v), &v, 2, true);
	sb_add(&o, "x", 1);
	want_fault(verify_both(&o, &v), &v, 3, "longer than");
	free(o.p);
	free(junk);

	o = (struct sbuf){ 0 };
	sb_add(&o, b.p, b.len);
	o.p[30] = 0;
	want_fault(verify_both(&o, &v), &v, 1, "NUL byte");
	free(o.p);

	/* An empty line, and one that is not a record. */
	o = (struct sbuf){ 0 };
	sb_add(&o, b.p, b.len);
	sb_add(&o, "\n", 1);
	want_fault(verify_both(&o, &v), &v, 3, "line 3: not an audit record");
	free(o.p);
	free(b.p);
}
END_TEST

/* A large file read in 64 KiB pieces: records across the pieces' edges,
 * damage just before, on and after an edge, a torn tail across one, a
 * longest line across one; verify_file agrees with verify_buf each time. */
START_TEST(verify_file_large)
{
	uint8_t head[AUDIT_HASH_LEN];
	struct sbuf b = { 0 }, o;
	struct audit_verify v, ref;
	struct audit_record r;
	char *key = tu_xmalloc(400);
	uint64_t n = 3000;

	memset(head, 0, sizeof(head));
	sb_add(&b, "", 0);
	for (uint64_t i = 1; i <= n; i++) {
		r = rec(i, key, 400);
		/* keys of varied length, so that lines fall on the edges
		 * at varied places */
		memset(key + r.keylen, 'x', i % 331);
		r.keylen += i % 331;
		add_rec(&b, i, head, &r);
	}
	ck_assert_uint_gt(b.len, 10 * 65536);
	want_intact(verify_both(&b, &v), &v, n, false);
	ck_assert_mem_eq(v.head, head, AUDIT_HASH_LEN);
	for (size_t edge = 1; edge <= 8; edge += 7) {
		for (size_t d = 0; d < 5; d++) {
			size_t pos = edge * 65536 + d - 2;

			o = (struct sbuf){ 0 };
			sb_add(&o, b.p, b.len);
			o.p[pos] ^= 0x20;
			ck_assert_int_eq(verify(&o, &ref), STRATA_ECORRUPT);
			ck_assert_int_eq(verify_both(&o, &v), STRATA_ECORRUPT);
			free(o.p);
		}
	}
	/* Torn across the first edge. */
	for (size_t cut = 65536 - 40; cut < 65536 + 40; cut += 13) {
		o = (struct sbuf){ .p = b.p, .len = cut };
		verify_both(&o, &v);
		ck_assert_int_eq(v.torn_tail || o.p[cut - 1] == '\n', 1);
	}
	free(b.p);

	/* A longest line across an edge. */
	b = (struct sbuf){ 0 };
	memset(head, 0, sizeof(head));
	sb_add(&b, "", 0);
	add_chain(&b, 1, 200, head);
	ck_assert_uint_lt(b.len, 65536);
	ck_assert_uint_gt(b.len + AUDIT_LINE_MAX, 65536);
	add_padded(&b, 201, head, AUDIT_LINE_MAX);
	add_chain(&b, 202, 300, head);
	want_intact(verify_both(&b, &v), &v, 300, false);
	free(b.p);
	free(key);
}
END_TEST

START_TEST(verify_file_errors)
{
	struct audit_verify v;

	ck_assert_int_eq(audit_verify_file(path, &v), -ENOENT);
	ck_assert_int_eq(audit_verify_file(dir, &v), -EISDIR);
}
END_TEST

/* ---- the writer ---------------------------------------------------------- */

struct drive {
	uv_loop_t loop;
	uv_idle_t idle;
	struct audit *a;
	uint64_t next, last, per_pass;	/* records to append */
	int checks;			/* passes that saw the file whole */
	uint64_t base;			/* the file's size once opened */
	int closed;
};

static void on_closed(void *arg)
{
	*(int *)arg = 1;
}

/*
 * Each pass of the loop: what earlier passes appended is in the file
 * already (the loop flushed it, not audit_close), then per_pass more.
 */
static void on_idle(uv_idle_t *h)
{
	struct drive *d = h->data;
	struct audit_stats st;
	struct audit_verify v;
	struct stat fs;
	char key[64];

	audit_stats(d->a, &st);
	ck_assert_int_eq(stat(path, &fs), 0);
	ck_assert_uint_eq((uint64_t)fs.st_size, d->base + st.bytes);
	if (d->checks < 20) {
		ck_assert_int_eq(audit_verify_file(path, &v), 0);
		ck_assert_uint_eq(v.last_seq, d->next - 1);
		ck_assert(!v.torn_tail);
		d->checks++;
	}
	for (uint64_t k = 0; k < d->per_pass && d->next <= d->last; k++) {
		struct audit_record r = rec(d->next++, key, sizeof(key));

		audit_append(d->a, &r);
	}
	if (d->next > d->last) {
		uv_idle_stop(h);
		uv_close((uv_handle_t *)h, NULL);
		audit_close(d->a, on_closed, &d->closed);
	}
}

/* Append first..last on a loop, per_pass records a pass, and close. */
static void drive(uint64_t first, uint64_t last, uint64_t per_pass,
		  uint32_t sync_ms)
{
	struct drive d = { .next = first, .last = last, .per_pass = per_pass };
	struct audit_stats st;
	struct stat fs;

	ck_assert_int_eq(uv_loop_init(&d.loop), 0);
	ck_assert_int_eq(audit_open(&d.loop, path, sync_ms, &d.a), 0);
	ck_assert_int_eq(stat(path, &fs), 0);
	d.base = (uint64_t)fs.st_size;
	audit_stats(d.a, &st);
	ck_assert_uint_eq(st.seq, first - 1);
	ck_assert_uint_eq(st.records, 0);
	uv_idle_init(&d.loop, &d.idle);
	d.idle.data = &d;
	uv_idle_start(&d.idle, on_idle);
	tu_run_until(&d.loop, &d.closed, 60000);
	ck_assert_int_eq(uv_run(&d.loop, UV_RUN_DEFAULT), 0);
	/* Every handle closed: the loop closes. */
	ck_assert_int_eq(uv_loop_close(&d.loop), 0);
	ck_assert_int_ge(d.checks, 1);
}

START_TEST(writer_appends)
{
	struct audit_verify v;
	struct stat fs;

	drive(1, 1000, 10, 50);
	ck_assert_int_eq(audit_verify_file(path, &v), 0);
	want_intact(0, &v, 1000, false);
	ck_assert_int_eq(stat(path, &fs), 0);
	ck_assert_uint_eq(fs.st_mode & 0777, 0600);

	/* Reopened: the chain goes on; the whole file verifies. */
	drive(1001, 1500, 7, 50);
	ck_assert_int_eq(audit_verify_file(path, &v), 0);
	want_intact(0, &v, 1500, false);
}
END_TEST

/* Past 64 KiB buffered, a record is written at once, loop or not. */
START_TEST(writer_flushes_when_full)
{
	struct audit_stats st;
	struct audit_record r;
	struct audit_verify v;
	char *key = tu_xmalloc(10000);
	uv_loop_t loop;
	struct audit *a;
	int closed = 0;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(audit_open(&loop, path, 1000, &a), 0);
	r = rec(1, key, 64);
	memset(key, 'k', 10000);
	r.keylen = 10000;
	for (int i = 0; i < 6; i++)
		audit_append(a, &r);
	audit_stats(a, &st);
	ck_assert_uint_eq(st.records, 6);
	ck_assert_uint_eq(st.bytes, 0);
	audit_append(a, &r);
	audit_stats(a, &st);
	ck_assert_uint_gt(st.bytes, 64 << 10);
	ck_assert_int_eq(audit_verify_file(path, &v), 0);
	ck_assert_uint_eq(v.records, 7);
	audit_append(a, &r);
	audit_flush(a);
	audit_stats(a, &st);
	ck_assert_int_eq(audit_verify_file(path, &v), 0);
	ck_assert_uint_eq(v.records, 8);
	ck_assert_uint_eq(st.errors, 0);
	audit_close(a, on_closed, &closed);
	ck_assert_int_eq(closed, 0);	/* after the handles' callbacks */
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(closed, 1);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	free(key);
}
END_TEST

static int file_bytes(struct sbuf *b)
{
	FILE *f = fopen(path, "rb");
	char tmp[4096];
	size_t n;

	if (!f)
		return -errno;
	*b = (struct sbuf){ 0 };
	sb_add(b, "", 0);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		sb_add(b, tmp, n);
	fclose(f);
	return 0;
}

/* A crash's torn last line: cut at the next open, with the chain going on
 * from the line before; a torn line alone leaves an empty log. */
START_TEST(writer_cuts_torn_tail)
{
	struct sbuf full = chain(11, NULL), now;
	struct audit_verify v;
	size_t off, n;

	off = line_at(&full, 11, &n);
	ck_assert_int_eq(tu_write_file(path, full.p, off + n - 1, 0600), 0);
	drive(11, 15, 2, 50);
	ck_assert_int_eq(audit_verify_file(path, &v), 0);
	want_intact(0, &v, 15, false);
	/* Records 11..15 are this writer's: record 11 as before. */
	ck_assert_int_eq(file_bytes(&now), 0);
	ck_assert_int_eq(memcmp(now.p, full.p, off + n), 0);
	free(now.p);

	ck_assert_int_eq(tu_write_file(path, full.p, 40, 0600), 0);
	drive(1, 3, 1, 50);
	ck_assert_int_eq(audit_verify_file(path, &v), 0);
	want_intact(0, &v, 3, false);
	ck_assert_int_eq(file_bytes(&now), 0);
	off = line_at(&full, 3, &n);
	ck_assert_uint_eq(now.len, off + n);
	ck_assert_int_eq(memcmp(now.p, full.p, off + n), 0);
	free(now.p);
	free(full.p);
}
END_TEST

/* A last line that is not a record: refused, the file left as it was
 * (a torn tail after it not cut either). */
START_TEST(writer_refuses_foreign)
{
	static const char *const tails[] = {
		"hello\n", "hello\n{\"seq\":11,\"pr", "\n",
		"{\"seq\":11,\"prev\":\"00\"}\n",
	};
	struct sbuf b = chain(10, NULL), now;
	uv_loop_t loop;
	struct audit *a;
	char *big;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		struct sbuf f = { 0 };

		sb_add(&f, b.p, b.len);
		sb_add(&f, tails[i], strlen(tails[i]));
		ck_assert_int_eq(tu_write_file(path, f.p, f.len, 0600), 0);
		a = (struct audit *)&loop;
		ck_assert_int_eq(audit_open(&loop, path, 1000, &a),
				 STRATA_ECORRUPT);
		ck_assert_ptr_null(a);
		ck_assert_int_eq(file_bytes(&now), 0);
		ck_assert_uint_eq(now.len, f.len);
		ck_assert_int_eq(memcmp(now.p, f.p, f.len), 0);
		free(now.p);
		free(f.p);
	}
	/* A record's last line edited. */
	b.p[b.len - 10] ^= 1;
	ck_assert_int_eq(tu_write_file(path, b.p, b.len, 0600), 0);
	ck_assert_int_eq(audit_open(&loop, path, 1000, &a), STRATA_ECORRUPT);
	/* More than a line's worth without a newline: not torn, foreign. */
	big = tu_xmalloc(AUDIT_LINE_MAX + 1);
	memset(big, 'x', AUDIT_LINE_MAX + 1);
	ck_assert_int_eq(tu_write_file(path, big, AUDIT_LINE_MAX + 1, 0600), 0);
	ck_assert_int_eq(audit_open(&loop, path, 1000, &a), STRATA_ECORRUPT);
	ck_assert_int_eq(tu_write_file(path, big, AUDIT_LINE_MAX, 0600), 0);
	ck_assert_int_eq(audit_open(&loop, path, 1000, &a), 0);	/* torn */
	audit_close(a, NULL, NULL);
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	ck_assert_int_eq(file_bytes(&now), 0);
	ck_assert_uint_eq(now.len, 0);
	free(now.p);
	free(big);
	free(b.p);
}
END_TEST

START_TEST(writer_open_errors)
{
	char *link, *fifo;
	uv_loop_t loop;
	struct audit *a;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(audit_open(&loop, "", 1000, &a), -EINVAL);
	ck_assert_int_eq(audit_open(&loop, path, 0, &a), -EINVAL);
	ck_assert_int_eq(audit_open(&loop, dir, 1000, &a), -EISDIR);
	ck_assert_int_ge(asprintf(&link, "%s/link.log", dir), 0);
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_int_eq(audit_open(&loop, link, 1000, &a), -ELOOP);
	ck_assert_ptr_null(a);
	ck_assert_int_eq(access(path, F_OK), -1);	/* not made through it */
	ck_assert_int_ge(asprintf(&fifo, "%s/fifo", dir), 0);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(audit_open(&loop, fifo, 1000, &a), -EINVAL);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	/* No writer, no handles: cb at once. */
	{
		int closed = 0;

		audit_close(NULL, on_closed, &closed);
		ck_assert_int_eq(closed, 1);
	}
	free(fifo);
	free(link);
}
END_TEST

static void on_timer(uv_timer_t *t)
{
	*(int *)t->data = 1;
}

/* Run the loop ms milliseconds (a referenced timer keeps it alive). */
static void run_for(uv_loop_t *loop, uint64_t ms)
{
	uv_timer_t t;
	int done = 0;

	uv_timer_init(loop, &t);
	t.data = &done;
	uv_timer_start(&t, on_timer, ms, 0);
	tu_run_until(loop, &done, (unsigned)ms + 10000);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

/* One fdatasync sync_ms after writes, none while idle, none before. */
START_TEST(writer_syncs)
{
	struct audit_stats st;
	struct audit_record r;
	uv_loop_t loop;
	struct audit *a;
	char key[64];

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(audit_open(&loop, path, 20, &a), 0);
	r = rec(1, key, sizeof(key));
	audit_append(a, &r);
	r = rec(2, key, sizeof(key));
	audit_append(a, &r);
	run_for(&loop, 5);
	audit_stats(a, &st);
	ck_assert_uint_gt(st.bytes, 0);
	run_for(&loop, 150);
	audit_stats(a, &st);
	ck_assert_uint_eq(st.syncs, 1);
	run_for(&loop, 100);
	audit_stats(a, &st);
	ck_assert_uint_eq(st.syncs, 1);		/* idle: no more */
	ck_assert_uint_eq(st.errors, 0);
	audit_close(a, NULL, NULL);
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);

	/* An hour's interval: written, not synced yet. */
	ck_assert_int_eq(audit_open(&loop, path, 3600000, &a), 0);
	audit_stats(a, &st);
	ck_assert_uint_eq(st.seq, 2);
	r = rec(3, key, sizeof(key));
	audit_append(a, &r);
	run_for(&loop, 50);
	audit_stats(a, &st);
	ck_assert_uint_gt(st.bytes, 0);
	ck_assert_uint_eq(st.syncs, 0);
	audit_close(a, NULL, NULL);
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);

	/* Closed while syncs run in the thread pool (1 ms interval, many
	 * rounds: some close with one in flight, which close waits for):
	 * every record is in the file, whole. */
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(audit_open(&loop, path, 1, &a), 0);
		r = rec((uint64_t)(4 + i), key, sizeof(key));
		audit_append(a, &r);
		run_for(&loop, 2);
		r = rec((uint64_t)(100 + i), key, sizeof(key));
		audit_append(a, &r);
		audit_flush(a);
		run_for(&loop, 1);
		audit_close(a, NULL, NULL);
		ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	}
	{
		struct audit_verify v;

		ck_assert_int_eq(audit_verify_file(path, &v), 0);
		ck_assert_uint_eq(v.records, 3 + 2 * 20);
		ck_assert(!v.torn_tail);
	}
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/*
 * A write that fails half way (RLIMIT_FSIZE: EFBIG past it): the complete
 * lines it wrote stay, the torn one is cut, the rest is counted lost, and
 * the chain shows the gap once writes work again.
 */
START_TEST(writer_write_error)
{
	struct audit_stats st;
	struct audit_record r;
	struct audit_verify v;
	struct rlimit old, lim;
	struct sbuf now;
	uv_loop_t loop;
	struct audit *a;
	uint64_t kept;
	char key[64], why[160];
	struct stat fs;

	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(audit_open(&loop, path, 1000, &a), 0);
	for (uint64_t i = 1; i <= 10; i++) {
		r = rec(i, key, sizeof(key));
		audit_append(a, &r);
	}
	audit_flush(a);
	ck_assert_int_eq(stat(path, &fs), 0);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)fs.st_size + 1000;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (uint64_t i = 11; i <= 30; i++) {
		r = rec(i, key, sizeof(key));
		audit_append(a, &r);
	}
	audit_flush(a);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	audit_stats(a, &st);
	ck_assert_uint_eq(st.errors, 1);
	ck_assert_uint_gt(st.dropped, 0);
	ck_assert_uint_lt(st.dropped, 20);
	kept = 20 - st.dropped;
	ck_assert_uint_eq(st.seq, 30);
	/* The file ends with a complete line: no torn record inside. */
	ck_assert_int_eq(file_bytes(&now), 0);
	ck_assert_uint_eq(now.len, st.bytes);
	ck_assert_int_eq(now.p[now.len - 1], '\n');
	free(now.p);
	for (uint64_t i = 31; i <= 35; i++) {
		r = rec(i, key, sizeof(key));
		audit_append(a, &r);
	}
	audit_close(a, NULL, NULL);
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	snprintf(why, sizeof(why), "line %llu: seq 31 follows %llu (records "
		 "removed)", (unsigned long long)(11 + kept),
		 (unsigned long long)(10 + kept));
	ck_assert_int_eq(audit_verify_file(path, &v), STRATA_ECORRUPT);
	want_fault(STRATA_ECORRUPT, &v, 11 + kept, why);
}
END_TEST

static Suite *audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *tc;

	tc = tcase_create("format");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, format_exact);
	tcase_add_test(tc, format_time);
	tcase_add_test(tc, format_escapes);
	tcase_add_test(tc, format_long);
	tcase_add_test(tc, format_json_fields);
	tcase_add_test(tc, parse_line_forms);
	suite_add_tcase(s, tc);

	tc = tcase_create("verify");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, verify_intact);
	tcase_add_test(tc, verify_empty);
	tcase_add_test(tc, verify_every_byte);
	tcase_add_test(tc, verify_removed);
	tcase_add_test(tc, verify_swapped_and_repeated);
	tcase_add_test(tc, verify_forged);
	tcase_add_test(tc, verify_torn);
	tcase_add_test(tc, verify_bounds);
	tcase_add_test(tc, verify_file_large);
	tcase_add_test(tc, verify_file_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("writer");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, writer_appends);
	tcase_add_test(tc, writer_flushes_when_full);
	tcase_add_test(tc, writer_cuts_torn_tail);
	tcase_add_test(tc, writer_refuses_foreign);
	tcase_add_test(tc, writer_open_errors);
	tcase_add_test(tc, writer_syncs);
	tcase_add_test(tc, writer_write_error);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(audit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
