// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the audit log's checker and encoder
 * (proto/audit_format.h), which `strata admin audit verify` runs over
 * files anyone may have written.  Each input is:
 *
 *  1. a log: audit_verify_buf() answers 0 or STRATA_ECORRUPT, never reads
 *     past the input (ASan), leaves why NUL-terminated, and its answer
 *     hangs together (a fault names the line after the intact records);
 *  2. one line: audit_parse_line() answers 0 or STRATA_ECORRUPT, and a
 *     line it takes is, with its newline, a log that fails only on seq or
 *     prev (its frame and hash are right);
 *  3. records built from the input's bytes (any bytes in every string,
 *     keys long enough to be cut), formatted into a chain: each line is
 *     one line within AUDIT_LINE_MAX, the chain verifies whole, and with
 *     one input-chosen byte changed it fails on that byte's line (or is a
 *     torn tail when that byte was the final newline).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_format.h"
#include "strata/error.h"
#include "banned.h"

#define MAX_RECORDS 8
#define FIELD_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static const uint8_t zeros[AUDIT_HASH_LEN];

static void check_answer(int rc, const struct audit_verify *v)
{
	check(rc == 0 || rc == STRATA_ECORRUPT);
	check(memchr(v->why, 0, sizeof(v->why)) != NULL);
	if (rc == 0) {
		check(v->bad_line == 0 && v->why[0] == 0);
		check(v->last_seq == v->records);
	} else {
		check(v->bad_line == v->records + 1 && v->why[0] != 0);
		check(!v->torn_tail);
	}
	if (!v->records)
		check(memcmp(v->head, zeros, AUDIT_HASH_LEN) == 0);
}

static void fuzz_verify(const uint8_t *data, size_t size)
{
	struct audit_verify v;
	size_t lines = 0;

	memset(&v, 0x5a, sizeof(v));
	check_answer(audit_verify_buf(data, size, &v), &v);
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	check(v.records <= lines);
}

static void fuzz_parse(const uint8_t *data, size_t size)
{
	uint8_t hash[AUDIT_HASH_LEN];
	struct audit_verify v;
	uint64_t seq = 0;
	uint8_t *l;
	int rc;

	/* An exact-size copy: ASan sees a read past the line. */
	l = malloc(size + 1);
	check(l != NULL);
	memcpy(l, data, size);
	rc = audit_parse_line((const char *)l, size, &seq, hash);
	check(rc == 0 || rc == STRATA_ECORRUPT);
	if (rc == 0) {
		check(seq >= 1 && size <= AUDIT_LINE_MAX);
		check(!memchr(l, '\n', size) && !memchr(l, 0, size));
		l[size] = '\n';
		rc = audit_verify_buf(l, size + 1, &v);
		check_answer(rc, &v);
		if (rc == 0)
			check(v.records == 1 && v.last_seq == 1 &&
			      memcmp(v.head, hash, AUDIT_HASH_LEN) == 0);
		else
			check(!strstr(v.why, "hash") &&
			      !strstr(v.why, "not an audit record"));
	}
	free(l);
}

/* The next n bytes of the input (fewer at its end). */
struct cursor {
	const uint8_t *p;
	size_t left;
};

static size_t take(struct cursor *c, void *out, size_t n)
{
	if (n > c->left)
		n = c->left;
	memcpy(out, c->p, n);
	c->p += n;
	c->left -= n;
	return n;
}

static uint8_t byte(struct cursor *c)
{
	uint8_t b = 0;

	take(c, &b, 1);
	return b;
}

static void str(struct cursor *c, char out[FIELD_MAX + 1])
{
	size_t n = take(c, out, byte(c) % (FIELD_MAX + 1));

	out[n] = 0;
}

static void fuzz_chain(const uint8_t *data, size_t size)
{
	struct cursor c = { data, size };
	char fields[4][FIELD_MAX + 1];
	uint8_t head[AUDIT_HASH_LEN], h[AUDIT_HASH_LEN];
	size_t nrec = 1 + byte(&c) % MAX_RECORDS, len = 0, cap = 0, pos;
	size_t starts[MAX_RECORDS + 1], line;
	uint8_t *chain = NULL, *m;
	struct audit_verify v;
	uint32_t pick = 0;
	uint64_t seq;
	int rc;

	memset(head, 0, sizeof(head));
	for (size_t i = 0; i < nrec; i++) {
		struct audit_record r = { 0 };
		size_t keylen = (size_t)byte(&c) * 96;	/* up to 24 KiB */
		char *key = malloc(keylen ? keylen : 1), *out;
		uint8_t kind = byte(&c);
		size_t n;

		check(key != NULL);
		for (int f = 0; f < 4; f++)
			str(&c, fields[f]);
		/* The key: bytes of the input, repeated to its length. */
		for (size_t k = 0; k < keylen; k++)
			key[k] = (char)(c.left ? c.p[k % c.left] : (uint8_t)k);
		take(&c, &r.time_ms, sizeof(r.time_ms));
		take(&c, &r.status, sizeof(r.status));
		take(&c, &r.in, sizeof(r.in));
		take(&c, &r.out, sizeof(r.out));
		r.principal = fields[0];
		r.peer = kind & 1 ? fields[1] : NULL;
		r.op = fields[2];
		r.bucket = fields[3];
		r.key = kind & 2 ? NULL : key;
		r.keylen = keylen;
		check(audit_format(i + 1, head, &r, &out, &n, h) == 0);
		free(key);
		/* One line, '\n' the last byte and the only one; no NUL. */
		check(n > 0 && n <= AUDIT_LINE_MAX && out[n] == 0);
		check(memchr(out, '\n', n) == out + n - 1);
		check(!memchr(out, 0, n));
		check(audit_parse_line(out, n - 1, &seq, head) == 0);
		check(seq == i + 1 && memcmp(head, h, AUDIT_HASH_LEN) == 0);
		if (len + n > cap) {
			cap = 2 * (len + n);
			chain = realloc(chain, cap);
			check(chain != NULL);
		}
		starts[i] = len;
		memcpy(chain + len, out, n);
		len += n;
		free(out);
	}
	starts[nrec] = len;
	rc = audit_verify_buf(chain, len, &v);
	check(rc == 0 && v.records == nrec && v.last_seq == nrec &&
	      !v.torn_tail && memcmp(v.head, head, AUDIT_HASH_LEN) == 0);

	/* One byte changed, where and how the input's last bytes say. */
	take(&c, &pick, sizeof(pick));
	pos = pick % len;
	m = malloc(len);
	check(m != NULL);
	memcpy(m, chain, len);
	m[pos] ^= (uint8_t)((pick >> 24) | 1);
	for (line = 1; starts[line] <= pos; line++)
		;
	rc = audit_verify_buf(m, len, &v);
	check_answer(rc, &v);
	if (pos == len - 1)
		check(rc == 0 && v.torn_tail && v.records == nrec - 1);
	else
		check(rc == STRATA_ECORRUPT && v.bad_line == line);
	free(m);
	free(chain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_verify(data, size);
	fuzz_parse(data, size);
	fuzz_chain(data, size);
	return 0;
}
