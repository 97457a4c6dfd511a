// SPDX-License-Identifier: Apache-2.0
/*
 * audit_format: one encoder of audit records and one checker of chains of
 * them (audit_format.h), shared by stratad and the strata CLI.
 *
 * The checker reads no JSON: a record is a fixed prefix
 * ({"seq":N,"prev":"<64 hex>",), bytes it does not interpret, and a fixed
 * suffix (,"hash":"<64 hex>"}); the hash covers everything before the
 * suffix, so whatever lies between cannot change unseen.  That keeps the
 * checker small enough to trust and to fuzz, and lets it take any line a
 * future version writes as long as the frame stays.
 *
 * Strings are JSON strings: '"' and '\' escaped, bytes < 0x20, 0x7f and
 * bytes that are not part of a valid UTF-8 sequence written as \u00XX (XX
 * the byte).  Valid UTF-8 is copied as is, so in the line's text \u0080 to
 * \u00ff always stand for raw bytes of a name that is not UTF-8.  A string
 * longer than its room ends in "..." (see audit_format.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "strata/error.h"
#include "audit_format.h"
#include "banned.h"

#define HEX_LEN (2 * AUDIT_HASH_LEN)
#define LIT(s) (sizeof(s) - 1)

static const char pfx_seq[] = "{\"seq\":";
static const char pfx_prev[] = ",\"prev\":\"";
static const char sfx_hash[] = ",\"hash\":\"";
/* ,"hash":"<64 hex>"} : the bytes after the hashed part (no newline) */
#define SUFFIX_LEN (LIT(sfx_hash) + HEX_LEN + 2)
/* Room for each string but the key, escaped, marker included: far more
 * than an access key id, an address, an op or a bucket name need. */
#define FIELD_CAP 512
/* The most that follows the key's text: its closing quote, status, in,
 * out, the hash and "}\n". */
#define TAIL_MAX (LIT("\",\"status\":") + 11 + LIT(",\"in\":") + 20 + \
		  LIT(",\"out\":") + 20 + SUFFIX_LEN + 1)
/* Unix milliseconds of 9999-12-31T23:59:59.999Z: a four-digit year. */
#define TIME_MAX_MS INT64_C(253402300799999)

/* ---- encoding ------------------------------------------------------------ */

struct out {
	char *p;
	size_t len, cap;
};

/* Callers size every piece against AUDIT_LINE_MAX first; the check is a
 * backstop, never reached. */
static void put(struct out *o, const void *s, size_t n)
{
	if (n > o->cap - o->len)
		n = o->cap - o->len;
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

__attribute__((format(printf, 2, 3)))
static void putf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len + 1, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n > o->cap - o->len ? o->cap - o->len :
			  (size_t)n;
}

static void put_hex(struct out *o, const uint8_t h[AUDIT_HASH_LEN])
{
	static const char digits[] = "0123456789abcdef";
	char hex[HEX_LEN];

	for (size_t i = 0; i < AUDIT_HASH_LEN; i++) {
		hex[2 * i] = digits[h[i] >> 4];
		hex[2 * i + 1] = digits[h[i] & 15];
	}
	put(o, hex, sizeof(hex));
}

/* Bytes of the valid UTF-8 sequence (2 to 4 bytes, no overlong form, no
 * surrogate, at most U+10FFFF) at s, or 0. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (c < 0xc2 || c > 0xf4)
		return 0;
	need = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

/* The escaped form of the unit at s: its text in t (up to 6 bytes), its
 * length; *in: bytes of s it stands for. */
static size_t esc_unit(const uint8_t *s, size_t n, char t[6], size_t *in)
{
	static const char digits[] = "0123456789abcdef";
	uint8_t c = s[0];
	size_t u;

	*in = 1;
	if (c == '"' || c == '\\') {
		t[0] = '\\';
		t[1] = (char)c;
		return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		t[0] = (char)c;
		return 1;
	}
	if (c >= 0x80 && (u = utf8_seq(s, n)) != 0) {
		memcpy(t, s, u);
		*in = u;
		return u;
	}
	memcpy(t, "\\u00", 4);
	t[4] = digits[c >> 4];
	t[5] = digits[c & 15];
	return 6;
}

/* s (n bytes) as a JSON string's contents, at most cap (>= 3) bytes: when
 * the whole does not fit, the whole units that fit in cap - 3, then "...". */
static void put_str(struct out *o, const char *str, size_t n, size_t cap)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t total = 0, used = 0, in, tl;
	char t[6];

	for (size_t i = 0; i < n && total <= cap; i += in)
		total += esc_unit(s + i, n - i, t, &in);
	for (size_t i = 0; i < n; i += in) {
		tl = esc_unit(s + i, n - i, t, &in);
		if (total > cap && used + tl > cap - 3) {
			put(o, "...", 3);
			return;
		}
		put(o, t, tl);
		used += tl;
	}
}

static void put_field(struct out *o, const char *name, const char *s)
{
	putf(o, ",\"%s\":\"", name);
	s = s ? s : "";
	put_str(o, s, strlen(s), FIELD_CAP);
	put(o, "\"", 1);
}

static void put_time(struct out *o, int64_t ms)
{
	struct tm tm;
	time_t t;

	if (ms < 0)
		ms = 0;
	if (ms > TIME_MAX_MS)
		ms = TIME_MAX_MS;
	t = (time_t)(ms / 1000);
	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof(tm));
	putf(o, ",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
	     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	     tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int audit_format(uint64_t seq, const uint8_t prev[AUDIT_HASH_LEN],
		 const struct audit_record *r, char **line, size_t *len,
		 uint8_t hash[AUDIT_HASH_LEN])
{
	struct out o = { .cap = AUDIT_LINE_MAX };
	size_t room;
	char *shrunk;

	o.p = malloc(AUDIT_LINE_MAX + 1);
	if (!o.p)
		return -ENOMEM;
	putf(&o, "%s%" PRIu64 "%s", pfx_seq, seq, pfx_prev);
	put_hex(&o, prev);
	put(&o, "\"", 1);
	put_time(&o, r->time_ms);
	put_field(&o, "principal", r->principal);
	put_field(&o, "peer", r->peer);
	put_field(&o, "op", r->op);
	put_field(&o, "bucket", r->bucket);
	if (r->key) {
		put(&o, ",\"key\":\"", LIT(",\"key\":\""));
		/* At least 3 bytes are left: FIELD_CAP bounds what came
		 * before far below AUDIT_LINE_MAX - TAIL_MAX. */
		room = AUDIT_LINE_MAX - TAIL_MAX - o.len;
		put_str(&o, r->key, r->keylen, room);
		put(&o, "\"", 1);
	}
	putf(&o, ",\"status\":%d,\"in\":%" PRIu64 ",\"out\":%" PRIu64,
	     r->status, r->in, r->out);
	SHA256((const unsigned char *)o.p, o.len, hash);
	put(&o, sfx_hash, LIT(sfx_hash));
	put_hex(&o, hash);
	put(&o, "\"}\n", 3);
	o.p[o.len] = 0;
	shrunk = realloc(o.p, o.len + 1);
	*line = shrunk ? shrunk : o.p;
	*len = o.len;
	return 0;
}

/* ---- checking ------------------------------------------------------------ */

static int unhex(const char *s, uint8_t out[AUDIT_HASH_LEN])
{
	for (size_t i = 0; i < HEX_LEN; i++) {
		char c = s[i];
		int d;

		/* Lowercase only: one spelling per hash, so that an edit of
		 * a digit's case is an edit. */
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -1;
		if (i & 1)
			out[i / 2] = (uint8_t)(out[i / 2] | d);
		else
			out[i / 2] = (uint8_t)(d << 4);
	}
	return 0;
}

/*
 * One line (no '\n'): its frame, then its hash.  Returns 0 with seq, prev
 * and hash, or -1 with *why (a phrase for people).
 */
static int parse(const char *l, size_t len, uint64_t *seq,
		 uint8_t prev[AUDIT_HASH_LEN], uint8_t hash[AUDIT_HASH_LEN],
		 const char **why)
{
	uint8_t want[AUDIT_HASH_LEN];
	size_t p = LIT(pfx_seq), d0;
	uint64_t n = 0;

	*why = "not an audit record: it does not start with "
	       "{\"seq\":N,\"prev\":\"<64 hex digits>\",";
	if (len > AUDIT_LINE_MAX) {
		*why = "longer than any audit record";
		return -1;
	}
	if (memchr(l, 0, len)) {
		*why = "not an audit record: it holds a NUL byte";
		return -1;
	}
	if (len < p || memcmp(l, pfx_seq, p))
		return -1;
	for (d0 = p; p < len && l[p] >= '0' && l[p] <= '9'; p++) {
		unsigned dig = (unsigned)(l[p] - '0');

		if (n > (UINT64_MAX - dig) / 10)
			return -1;
		n = n * 10 + dig;
	}
	/* One spelling per number: no leading zero, no seq 0. */
	if (p == d0 || l[d0] == '0')
		return -1;
	if (len - p < LIT(pfx_prev) + HEX_LEN + 2 ||
	    memcmp(l + p, pfx_prev, LIT(pfx_prev)))
		return -1;
	p += LIT(pfx_prev);
	if (unhex(l + p, prev) || l[p + HEX_LEN] != '"' ||
	    l[p + HEX_LEN + 1] != ',')
		return -1;
	p += HEX_LEN + 2;
	*why = "not an audit record: it does not end with "
	       ",\"hash\":\"<64 hex digits>\"}";
	if (len - p < SUFFIX_LEN)
		return -1;
	len -= SUFFIX_LEN;
	if (memcmp(l + len, sfx_hash, LIT(sfx_hash)) ||
	    unhex(l + len + LIT(sfx_hash), hash) ||
	    memcmp(l + len + LIT(sfx_hash) + HEX_LEN, "\"}", 2))
		return -1;
	SHA256((const unsigned char *)l, len, want);
	if (memcmp(want, hash, AUDIT_HASH_LEN)) {
		*why = "hash does not match its contents (the record was "
		       "edited)";
		return -1;
	}
	*seq = n;
	return 0;
}

int audit_parse_line(const char *line, size_t len, uint64_t *seq,
		     uint8_t hash[AUDIT_HASH_LEN])
{
	uint8_t prev[AUDIT_HASH_LEN], h[AUDIT_HASH_LEN];
	const char *why;
	uint64_t s;

	if (parse(line, len, &s, prev, h, &why))
		return STRATA_ECORRUPT;
	*seq = s;
	memcpy(hash, h, AUDIT_HASH_LEN);
	return 0;
}

__attribute__((format(printf, 2, 3)))
static int fault(struct audit_verify *v, const char *fmt, ...)
{
	va_list ap;

	v->bad_line = v->records + 1;	/* every line before was intact */
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
	return STRATA_ECORRUPT;
}

static const uint8_t zeros[AUDIT_HASH_LEN];

/* One complete line: the next link of v's chain?  0 or STRATA_ECORRUPT. */
static int check_line(struct audit_verify *v, const char *l, size_t len)
{
	uint8_t prev[AUDIT_HASH_LEN], hash[AUDIT_HASH_LEN];
	uint64_t line = v->records + 1, seq;
	const char *why;

	if (parse(l, len, &seq, prev, hash, &why))
		return fault(v, "line %" PRIu64 ": %s", line, why);
	/* seq first: a removed or repeated record says so plainly, where
	 * prev alone could only say that something changed. */
	if (!v->records && seq != 1)
		return fault(v, "line 1: seq %" PRIu64 ", not 1 (the log does "
			     "not begin with its first record)", seq);
	if (v->records && seq > v->last_seq + 1)
		return fault(v, "line %" PRIu64 ": seq %" PRIu64 " follows %"
			     PRIu64 " (records removed)", line, seq,
			     v->last_seq);
	if (v->records && seq != v->last_seq + 1)
		return fault(v, "line %" PRIu64 ": seq %" PRIu64 " follows %"
			     PRIu64 " (records repeated or out of order)",
			     line, seq, v->last_seq);
	if (!v->records && memcmp(prev, zeros, AUDIT_HASH_LEN))
		return fault(v, "line 1: prev is not zeros (the first record "
			     "was edited, or records before it removed)");
	if (v->records && memcmp(prev, v->head, AUDIT_HASH_LEN))
		return fault(v, "line %" PRIu64 ": prev does not match the "
			     "hash of line %" PRIu64 " (a record before it "
			     "was removed, inserted or edited)", line,
			     line - 1);
	v->records++;
	v->last_seq = seq;
	memcpy(v->head, hash, AUDIT_HASH_LEN);
	return 0;
}

static int too_long(struct audit_verify *v)
{
	return fault(v, "line %" PRIu64 ": longer than %u bytes (not an "
		     "audit record)", v->records + 1, AUDIT_LINE_MAX);
}

int audit_verify_buf(const uint8_t *buf, size_t len, struct audit_verify *v)
{
	size_t pos = 0;
	int rc;

	memset(v, 0, sizeof(*v));
	while (pos < len) {
		const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - buf) - pos : len - pos;

		if (n > AUDIT_LINE_MAX)
			return too_long(v);
		if (!nl) {
			v->torn_tail = true;
			return 0;
		}
		rc = check_line(v, (const char *)buf + pos, n);
		if (rc)
			return rc;
		pos += n + 1;
	}
	return 0;
}

#define READ_SIZE (64u << 10)

int audit_verify_file(const char *path, struct audit_verify *v)
{
	char *chunk = NULL, *line = NULL;
	size_t have = 0;		/* bytes of a line begun in line[] */
	ssize_t got;
	int fd, rc = 0;

	memset(v, 0, sizeof(*v));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	chunk = malloc(READ_SIZE);
	line = malloc(AUDIT_LINE_MAX);
	if (!chunk || !line) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		size_t pos = 0;

		got = read(fd, chunk, READ_SIZE);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			goto out;
		}
		if (!got)
			break;
		while (pos < (size_t)got) {
			char *nl = memchr(chunk + pos, '\n', (size_t)got - pos);
			size_t n = nl ? (size_t)(nl - chunk) - pos :
					(size_t)got - pos;

			if (n > AUDIT_LINE_MAX - have) {
				rc = too_long(v);
				goto out;
			}
			if (nl && !have) {
				/* Whole in this chunk: no copy. */
				rc = check_line(v, chunk + pos, n);
			} else {
				memcpy(line + have, chunk + pos, n);
				have += n;
				if (nl) {
					rc = check_line(v, line, have);
					have = 0;
				}
			}
			if (rc)
				goto out;
			pos += n + (nl != NULL);
		}
	}
	v->torn_tail = have > 0;
out:
	free(line);
	free(chunk);
	close(fd);
	return rc;
}
