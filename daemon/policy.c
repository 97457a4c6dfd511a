// SPDX-License-Identifier: Apache-2.0
/*
 * policy: access policy documents (strata-policy(7)), compiled once and
 * evaluated for every request.
 *
 * policy_parse() checks a JSON document with jansson and compiles it into
 * plain data: action bit masks, resource patterns split into segments
 * (literal bytes, '*', ${principal.id}, ${principal.NAME}), CIDRs as bytes
 * and a prefix length, times as Unix milliseconds.  Nothing of jansson
 * survives the parse.  Everything lives in one arena owned by the policy,
 * so a half-built policy is freed like a whole one.
 *
 * Invariants of a parsed policy:
 *   - every statement has a non-zero action mask, at least one resource,
 *     and each resource at least one segment; no two stars are adjacent;
 *   - CIDR addresses have their host bits cleared;
 *   - not_before < not_after when both are set.
 *
 * policy_eval() allocates nothing: the request's "bucket/key" is never
 * built, patterns are matched against the pieces (bucket, "/", key), and
 * variables are looked up in the principal as the matcher reaches them,
 * through a small per-call cache.  The glob matcher is iterative and
 * backtracks only to the last star, so a pattern costs at most
 * O(pattern * subject) however many stars it holds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "strata/error.h"
#include "policy.h"
#include "banned.h"

#define ALL_BUCKET (POLICY_BUCKET_CREATE | POLICY_BUCKET_DELETE | \
		    POLICY_BUCKET_LIST | POLICY_BUCKET_LIFECYCLE)
#define ALL_OBJECT (POLICY_OBJECT_PUT | POLICY_OBJECT_GET | \
		    POLICY_OBJECT_STAT | POLICY_OBJECT_DELETE | \
		    POLICY_OBJECT_LIST)
#define ALL_ACTIONS (ALL_BUCKET | ALL_OBJECT)

/* Distinct attribute variables that get a slot in policy_eval()'s cache;
 * any beyond are looked up each time the matcher needs them. */
#define VAR_SLOTS 32
#define VAR_NONE 0xffu

enum seg_kind { SEG_LIT, SEG_STAR, SEG_ID, SEG_ATTR };

/* SEG_LIT: the bytes; SEG_ATTR: the attribute's name (not NUL-terminated). */
struct seg {
	const char *s;
	uint32_t len;
	uint8_t kind;
	uint8_t slot;		/* SEG_ATTR: cache slot or VAR_NONE */
};

struct pattern {
	struct seg *segs;
	uint32_t n;
	bool vars;		/* holds a variable */
	bool star;		/* exactly "*" */
	bool ends_star;
};

struct cidr {
	uint8_t af;		/* 4 or 6 */
	uint8_t prefix;
	uint8_t addr[16];
};

/* A principal condition: the id or attribute `name` is one of values[]. */
struct pcond {
	const char *name;
	bool is_id;		/* "id": the access key id */
	const char **values;
	uint32_t n;
};

struct stmt {
	bool deny;
	bool conds;		/* any condition at all */
	uint32_t actions;
	struct pattern *res;
	uint32_t n_res;
	struct cidr *cidrs;	/* source_ip; n_cidrs 0: none */
	uint32_t n_cidrs;
	struct pcond *pconds;
	uint32_t n_pconds;
	struct pcond *tconds;	/* object_tags: tag `name` is one of values */
	uint32_t n_tconds;
	bool has_nb, has_na;
	int64_t nb, na;		/* now >= nb, now < na */
};

struct block {
	struct block *next;
	size_t used, cap;
	max_align_t data[];
};

struct policy {
	struct block *arena;
	struct stmt *stmts;
	uint32_t n;
	uint32_t allow_all;	/* actions of unconditional allow "*" */
	uint32_t denied;	/* actions of any deny statement */
	uint32_t tag_actions;	/* actions of statements with object_tags */
	uint32_t n_vars;
	struct { const char *s; uint32_t len; } vars[VAR_SLOTS];
};

/* ---- arena ---------------------------------------------------------- */

#define BLOCK_SIZE 8192u

static void *pa_alloc(struct policy *p, size_t n)
{
	struct block *b = p->arena;
	size_t a = sizeof(max_align_t);

	n = (n + a - 1) / a * a;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > BLOCK_SIZE ? n : BLOCK_SIZE;

		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = p->arena;
		b->used = 0;
		b->cap = cap;
		p->arena = b;
	}
	b->used += n;
	return (char *)b->data + b->used - n;
}

static void *pa_zalloc(struct policy *p, size_t n)
{
	void *v = pa_alloc(p, n);

	if (v)
		memset(v, 0, n);
	return v;
}

static char *pa_strdup(struct policy *p, const char *s, size_t len)
{
	char *d = pa_alloc(p, len + 1);

	if (d) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

void policy_free(struct policy *p)
{
	struct block *b, *next;

	if (!p)
		return;
	for (b = p->arena; b; b = next) {
		next = b->next;
		free(b);
	}
	free(p);
}

/* ---- actions -------------------------------------------------------- */

static const struct {
	const char *name;
	uint32_t bits;
} actions[] = {
	{ "bucket:create", POLICY_BUCKET_CREATE },
	{ "bucket:delete", POLICY_BUCKET_DELETE },
	{ "bucket:list", POLICY_BUCKET_LIST },
	{ "bucket:lifecycle", POLICY_BUCKET_LIFECYCLE },
	{ "object:put", POLICY_OBJECT_PUT },
	{ "object:get", POLICY_OBJECT_GET },
	{ "object:stat", POLICY_OBJECT_STAT },
	{ "object:delete", POLICY_OBJECT_DELETE },
	{ "object:list", POLICY_OBJECT_LIST },
	/* Wildcards: policy_parse() only. */
	{ "*", ALL_ACTIONS },
	{ "bucket:*", ALL_BUCKET },
	{ "object:*", ALL_OBJECT },
};
#define N_SINGLE 9

const char *policy_action_name(uint32_t action)
{
	for (size_t i = 0; i < N_SINGLE; i++)
		if (actions[i].bits == action)
			return actions[i].name;
	return NULL;
}

uint32_t policy_action_parse(const char *name)
{
	for (size_t i = 0; name && i < N_SINGLE; i++)
		if (!strcmp(actions[i].name, name))
			return actions[i].bits;
	return 0;
}

static uint32_t action_mask(const char *name)
{
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (!strcmp(actions[i].name, name))
			return actions[i].bits;
	return 0;
}

static bool one_action(uint32_t a)
{
	return a && !(a & (a - 1)) && (a & ALL_ACTIONS);
}

/* ---- parse errors --------------------------------------------------- */

struct parser {
	struct policy *p;
	char *err;
	size_t errlen;
	unsigned stmt;		/* 1-based; 0: the top level */
};

/*
 * Quote a string of the document for a message: control bytes, '"' and
 * '\' escaped so the message stays one line, and cut short when long --
 * between characters, never inside one (the message travels as a wire
 * string, which must be UTF-8; jansson gave us valid UTF-8).  A cut
 * waits for at most 3 continuation bytes, which the 8 bytes kept back
 * hold along with "...", the quote and the NUL.
 */
static const char *quote(char *buf, size_t size, const char *s, size_t len)
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (o + 8 >= size && (c & 0xc0) != 0x80)
			break;

		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	if (i < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

#define QBUF 96

__attribute__((format(printf, 2, 3)))
static int fail(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!ps->err || !ps->errlen)
		return STRATA_EBADPOLICY;
	if (ps->stmt)
		n = snprintf(ps->err, ps->errlen, "statement %u: ", ps->stmt);
	if (n >= 0 && (size_t)n < ps->errlen) {
		va_start(ap, fmt);
		vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	ps->err[ps->errlen - 1] = '\0';
	/* jansson's messages quote the document too: keep it one line. */
	for (char *c = ps->err; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return STRATA_EBADPOLICY;
}

/* Check that `v` is a non-empty array of at most POLICY_MAX_ITEMS strings. */
static int string_array(struct parser *ps, const json_t *v, const char *what)
{
	size_t i, n;

	if (!v)
		return fail(ps, "%s: missing", what);
	if (!json_is_array(v))
		return fail(ps, "%s: not an array of strings", what);
	n = json_array_size(v);
	if (!n)
		return fail(ps, "%s: empty", what);
	if (n > POLICY_MAX_ITEMS)
		return fail(ps, "%s: more than %u items", what,
			    POLICY_MAX_ITEMS);
	for (i = 0; i < n; i++)
		if (!json_is_string(json_array_get(v, i)))
			return fail(ps, "%s: item %zu is not a string", what,
				    i + 1);
	return 0;
}

/* Whether an object holds only the members in `known` (NULL-terminated). */
static int known_members(struct parser *ps, json_t *obj,
			 const char *const *known, const char *what)
{
	const char *k;
	json_t *v;
	char q[QBUF];

	json_object_foreach(obj, k, v) {
		size_t i;

		for (i = 0; known[i] && strcmp(known[i], k); i++)
			;
		if (!known[i])
			return fail(ps, "unknown %s %s", what,
				    quote(q, sizeof(q), k, strlen(k)));
	}
	return 0;
}

/* ---- patterns ------------------------------------------------------- */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static bool good_name(const char *s, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char(s[i]))
			return false;
	return true;
}

static uint8_t var_slot(struct policy *p, const char *s, uint32_t len)
{
	uint32_t i;

	for (i = 0; i < p->n_vars; i++)
		if (p->vars[i].len == len && !memcmp(p->vars[i].s, s, len))
			return (uint8_t)i;
	if (i == VAR_SLOTS)
		return VAR_NONE;
	p->vars[i].s = s;
	p->vars[i].len = len;
	p->n_vars++;
	return (uint8_t)i;
}

static void emit(struct seg *out, uint32_t *n, enum seg_kind kind,
		 const char *s, size_t len)
{
	if (out) {
		out[*n].kind = (uint8_t)kind;
		out[*n].s = s;
		out[*n].len = (uint32_t)len;
		out[*n].slot = VAR_NONE;
	}
	(*n)++;
}

/*
 * Split s into segments, into out[] (NULL: only count them, in *n).
 * Literal runs are one segment; runs of stars are one.
 */
static int pattern_scan(struct parser *ps, unsigned idx, const char *s,
			size_t len, struct seg *out, uint32_t *n)
{
	size_t i = 0, lit = 0;
	char q[QBUF];

	*n = 0;
	while (i < len) {
		if (s[i] == '*') {
			if (i > lit)
				emit(out, n, SEG_LIT, s + lit, i - lit);
			while (i < len && s[i] == '*')
				i++;
			emit(out, n, SEG_STAR, NULL, 0);
			lit = i;
		} else if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
			const char *v = s + i + 2, *end;
			size_t vlen;

			end = memchr(v, '}', len - i - 2);
			if (!end)
				return fail(ps, "resource %u: unterminated "
					    "\"${\"", idx);
			vlen = (size_t)(end - v);
			if (i > lit)
				emit(out, n, SEG_LIT, s + lit, i - lit);
			if (vlen == 12 && !memcmp(v, "principal.id", 12))
				emit(out, n, SEG_ID, NULL, 0);
			else if (vlen > 10 && !memcmp(v, "principal.", 10) &&
				 good_name(v + 10, vlen - 10))
				emit(out, n, SEG_ATTR, v + 10, vlen - 10);
			else
				return fail(ps, "resource %u: unknown "
					    "variable %s", idx,
					    quote(q, sizeof(q), v - 2,
						  vlen + 3));
			i += vlen + 3;
			lit = i;
		} else {
			i++;
		}
	}
	if (len > lit)
		emit(out, n, SEG_LIT, s + lit, len - lit);
	return 0;
}

static int pattern_compile(struct parser *ps, unsigned idx, const json_t *v,
			   struct pattern *pt)
{
	const char *src = json_string_value(v), *s;
	size_t len = json_string_length(v);
	uint32_t n;
	int rc;

	if (!len)
		return fail(ps, "resource %u: empty pattern", idx);
	rc = pattern_scan(ps, idx, src, len, NULL, &n);
	if (rc)
		return rc;
	s = pa_strdup(ps->p, src, len);
	pt->segs = pa_zalloc(ps->p, n * sizeof(*pt->segs));
	if (!s || !pt->segs)
		return -ENOMEM;
	pattern_scan(ps, idx, s, len, pt->segs, &pt->n);
	for (uint32_t i = 0; i < n; i++) {
		struct seg *g = &pt->segs[i];

		if (g->kind == SEG_ID || g->kind == SEG_ATTR)
			pt->vars = true;
		if (g->kind == SEG_ATTR)
			g->slot = var_slot(ps->p, g->s, g->len);
	}
	pt->star = n == 1 && pt->segs[0].kind == SEG_STAR;
	pt->ends_star = pt->segs[n - 1].kind == SEG_STAR;
	return 0;
}

/* ---- conditions ----------------------------------------------------- */

static bool parse_prefix(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i == 3)
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (!i || v > max)
		return false;
	*out = v;
	return true;
}

static void mask_bits(uint8_t *a, unsigned nbytes, unsigned prefix)
{
	for (unsigned i = 0; i < nbytes; i++) {
		unsigned keep = prefix > i * 8 ? prefix - i * 8 : 0;

		if (keep < 8)
			a[i] &= (uint8_t)(0xff00u >> keep);
	}
}

/* "a.b.c.d[/n]" or "x:y::z[/n]"; no prefix means the one address. */
static bool parse_cidr(const char *s, size_t len, struct cidr *c)
{
	char buf[64], *slash;
	unsigned prefix;

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->addr) == 1)
		c->af = 4;
	else if (inet_pton(AF_INET6, buf, c->addr) == 1)
		c->af = 6;
	else
		return false;
	prefix = c->af == 4 ? 32 : 128;
	if (slash && !parse_prefix(slash + 1, prefix, &prefix))
		return false;
	c->prefix = (uint8_t)prefix;
	mask_bits(c->addr, c->af == 4 ? 4 : 16, prefix);
	return true;
}

/* A list of strings, or one string. */
static int strings_or_one(struct parser *ps, const json_t *v, const char *what)
{
	return json_is_string(v) ? 0 : string_array(ps, v, what);
}

static const json_t *item(const json_t *v, size_t i)
{
	return json_is_string(v) ? v : json_array_get(v, i);
}

static size_t items(const json_t *v)
{
	return json_is_string(v) ? 1 : json_array_size(v);
}

static int cond_source_ip(struct parser *ps, const json_t *v, struct stmt *st)
{
	char q[QBUF];
	int rc = strings_or_one(ps, v, "source_ip");

	if (rc)
		return rc;
	st->n_cidrs = (uint32_t)items(v);
	st->cidrs = pa_alloc(ps->p, st->n_cidrs * sizeof(*st->cidrs));
	if (!st->cidrs)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->n_cidrs; i++) {
		const json_t *s = item(v, i);
		const char *str = json_string_value(s);
		size_t len = json_string_length(s);

		if (!parse_cidr(str, len, &st->cidrs[i]))
			return fail(ps, "source_ip: bad address or CIDR %s",
				    quote(q, sizeof(q), str, len));
	}
	return 0;
}

static int pcond_values(struct parser *ps, const char *cond,
			const char *name, const json_t *v, struct pcond *pc)
{
	char q[QBUF];
	char what[QBUF + 16];

	snprintf(what, sizeof(what), "%s %s", cond,
		 quote(q, sizeof(q), name, strlen(name)));
	if (!json_is_string(v) && !json_is_array(v))
		return fail(ps, "%s: not a string or an array of strings",
			    what);
	if (strings_or_one(ps, v, what))
		return STRATA_EBADPOLICY;
	pc->n = (uint32_t)items(v);
	pc->values = pa_alloc(ps->p, pc->n * sizeof(*pc->values));
	if (!pc->values)
		return -ENOMEM;
	for (uint32_t i = 0; i < pc->n; i++) {
		const json_t *s = item(v, i);

		pc->values[i] = pa_strdup(ps->p, json_string_value(s),
					  json_string_length(s));
		if (!pc->values[i])
			return -ENOMEM;
	}
	return 0;
}

static int cond_principal(struct parser *ps, json_t *v, struct stmt *st)
{
	const char *name;
	json_t *vals;
	char q[QBUF];
	int rc;

	if (!json_is_object(v))
		return fail(ps, "principal: not an object");
	if (!json_object_size(v))
		return fail(ps, "principal: empty");
	if (json_object_size(v) > POLICY_MAX_ITEMS)
		return fail(ps, "principal: more than %u attributes",
			    POLICY_MAX_ITEMS);
	st->pconds = pa_zalloc(ps->p, json_object_size(v) *
				      sizeof(*st->pconds));
	if (!st->pconds)
		return -ENOMEM;
	json_object_foreach(v, name, vals) {
		struct pcond *pc = &st->pconds[st->n_pconds];

		if (!good_name(name, strlen(name)))
			return fail(ps, "principal: bad attribute name %s",
				    quote(q, sizeof(q), name, strlen(name)));
		pc->name = pa_strdup(ps->p, name, strlen(name));
		if (!pc->name)
			return -ENOMEM;
		pc->is_id = !strcmp(name, "id");
		rc = pcond_values(ps, "principal", name, vals, pc);
		if (rc)
			return rc;
		st->n_pconds++;
	}
	return 0;
}

/* object_tags: {"name": ["value", ...], ...}; tag names are any
 * non-empty string of at most 128 bytes (what the protocol carries). */
static int cond_object_tags(struct parser *ps, json_t *v, struct stmt *st)
{
	const char *name;
	json_t *vals;
	char q[QBUF];
	int rc;

	if (!json_is_object(v))
		return fail(ps, "object_tags: not an object");
	if (!json_object_size(v))
		return fail(ps, "object_tags: empty");
	if (json_object_size(v) > POLICY_MAX_ITEMS)
		return fail(ps, "object_tags: more than %u tags",
			    POLICY_MAX_ITEMS);
	st->tconds = pa_zalloc(ps->p, json_object_size(v) *
				      sizeof(*st->tconds));
	if (!st->tconds)
		return -ENOMEM;
	json_object_foreach(v, name, vals) {
		struct pcond *pc = &st->tconds[st->n_tconds];

		if (!*name || strlen(name) > 128)
			return fail(ps, "object_tags: bad tag name %s",
				    quote(q, sizeof(q), name, strlen(name)));
		pc->name = pa_strdup(ps->p, name, strlen(name));
		if (!pc->name)
			return -ENOMEM;
		rc = pcond_values(ps, "object_tags", name, vals, pc);
		if (rc)
			return rc;
		st->n_tconds++;
	}
	return 0;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, unsigned *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return true;
}

/* "YYYY-MM-DDTHH:MM:SS[.f...]Z": 1 to 9 fraction digits, kept to the ms. */
static bool parse_time(const char *s, size_t len, int64_t *ms)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31,
					  30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, sec, frac = 0, nf = 0;

	if (len < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[len - 1] != 'Z')
		return false;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) ||
	    !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
	    !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
		return false;
	if (len > 20) {
		nf = (unsigned)(len - 21);
		if (s[19] != '.' || nf < 1 || nf > 9 ||
		    !digits(s + 20, nf, &frac))
			return false;
		for (; nf > 3; nf--)
			frac /= 10;
		for (; nf < 3; nf++)
			frac *= 10;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 ||
	    mi > 59 || sec > 59)
		return false;
	if (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400)))
		return false;
	*ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
	*ms = *ms * 1000 + frac;
	return true;
}

static int cond_time(struct parser *ps, const json_t *v, const char *what,
		     int64_t *ms)
{
	char q[QBUF];

	if (!json_is_string(v))
		return fail(ps, "%s: not a string", what);
	if (!parse_time(json_string_value(v), json_string_length(v), ms))
		return fail(ps, "%s: not an RFC 3339 UTC time "
			    "(YYYY-MM-DDTHH:MM:SSZ): %s", what,
			    quote(q, sizeof(q), json_string_value(v),
				  json_string_length(v)));
	return 0;
}

static int conditions(struct parser *ps, json_t *c, struct stmt *st)
{
	static const char *const known[] = { "source_ip", "principal",
		"object_tags", "not_before", "not_after", NULL };
	json_t *v;
	int rc;

	if (!json_is_object(c))
		return fail(ps, "conditions: not an object");
	rc = known_members(ps, c, known, "condition");
	if (rc)
		return rc;
	st->conds = json_object_size(c) > 0;
	if ((v = json_object_get(c, "source_ip")) &&
	    (rc = cond_source_ip(ps, v, st)))
		return rc;
	if ((v = json_object_get(c, "principal")) &&
	    (rc = cond_principal(ps, v, st)))
		return rc;
	if ((v = json_object_get(c, "object_tags")) &&
	    (rc = cond_object_tags(ps, v, st)))
		return rc;
	if ((v = json_object_get(c, "not_before"))) {
		st->has_nb = true;
		if ((rc = cond_time(ps, v, "not_before", &st->nb)))
			return rc;
	}
	if ((v = json_object_get(c, "not_after"))) {
		st->has_na = true;
		if ((rc = cond_time(ps, v, "not_after", &st->na)))
			return rc;
	}
	if (st->has_nb && st->has_na && st->nb >= st->na)
		return fail(ps, "not_before is not before not_after");
	return 0;
}

/* ---- statements ----------------------------------------------------- */

static int stmt_actions(struct parser *ps, const json_t *v, struct stmt *st)
{
	char q[QBUF];
	int rc = string_array(ps, v, "actions");

	if (rc)
		return rc;
	for (size_t i = 0; i < json_array_size(v); i++) {
		const json_t *a = json_array_get(v, i);
		uint32_t bits = action_mask(json_string_value(a));

		if (!bits)
			return fail(ps, "unknown action %s",
				    quote(q, sizeof(q), json_string_value(a),
					  json_string_length(a)));
		st->actions |= bits;
	}
	return 0;
}

static int stmt_resources(struct parser *ps, const json_t *v, struct stmt *st)
{
	int rc = string_array(ps, v, "resources");

	if (rc)
		return rc;
	st->n_res = (uint32_t)json_array_size(v);
	st->res = pa_zalloc(ps->p, st->n_res * sizeof(*st->res));
	if (!st->res)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->n_res; i++) {
		rc = pattern_compile(ps, i + 1, json_array_get(v, i),
				     &st->res[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static int stmt_parse(struct parser *ps, json_t *o, struct stmt *st)
{
	static const char *const known[] = { "effect", "actions", "resources",
		"conditions", NULL };
	const json_t *eff;
	json_t *c;
	int rc;

	if (!json_is_object(o))
		return fail(ps, "not an object");
	rc = known_members(ps, o, known, "member");
	if (rc)
		return rc;
	eff = json_object_get(o, "effect");
	if (!eff)
		return fail(ps, "effect: missing");
	if (json_is_string(eff) && !strcmp(json_string_value(eff), "deny"))
		st->deny = true;
	else if (!json_is_string(eff) ||
		 strcmp(json_string_value(eff), "allow"))
		return fail(ps, "effect: must be \"allow\" or \"deny\"");
	if ((rc = stmt_actions(ps, json_object_get(o, "actions"), st)) ||
	    (rc = stmt_resources(ps, json_object_get(o, "resources"), st)))
		return rc;
	c = json_object_get(o, "conditions");
	return c ? conditions(ps, c, st) : 0;
}

static void summarize(struct policy *p)
{
	for (uint32_t i = 0; i < p->n; i++) {
		const struct stmt *st = &p->stmts[i];

		if (st->n_tconds)
			p->tag_actions |= st->actions;
		if (st->deny) {
			p->denied |= st->actions;
			continue;
		}
		for (uint32_t j = 0; j < st->n_res && !st->conds; j++)
			if (st->res[j].star)
				p->allow_all |= st->actions;
	}
}

static int top_parse(struct parser *ps, json_t *doc)
{
	static const char *const known[] = { "version", "statements", NULL };
	const json_t *ver;
	json_t *sts;
	int rc;

	if (!json_is_object(doc))
		return fail(ps, "not a JSON object");
	rc = known_members(ps, doc, known, "member");
	if (rc)
		return rc;
	ver = json_object_get(doc, "version");
	if (!ver)
		return fail(ps, "version: missing");
	if (!json_is_integer(ver) || json_integer_value(ver) != 1)
		return fail(ps, "version: must be 1");
	sts = json_object_get(doc, "statements");
	if (!sts)
		return fail(ps, "statements: missing");
	if (!json_is_array(sts))
		return fail(ps, "statements: not an array");
	if (!json_array_size(sts))
		return fail(ps, "statements: empty");
	if (json_array_size(sts) > POLICY_MAX_STATEMENTS)
		return fail(ps, "statements: more than %u",
			    POLICY_MAX_STATEMENTS);
	ps->p->n = (uint32_t)json_array_size(sts);
	ps->p->stmts = pa_zalloc(ps->p, ps->p->n * sizeof(*ps->p->stmts));
	if (!ps->p->stmts)
		return -ENOMEM;
	for (uint32_t i = 0; i < ps->p->n; i++) {
		ps->stmt = i + 1;
		rc = stmt_parse(ps, json_array_get(sts, i), &ps->p->stmts[i]);
		if (rc)
			return rc;
	}
	ps->stmt = 0;
	summarize(ps->p);
	return 0;
}

int policy_parse(const char *json, size_t len, struct policy **out,
		 char *err, size_t errlen)
{
	struct parser ps = { .err = err, .errlen = errlen };
	json_error_t je;
	json_t *doc;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (len > POLICY_MAX_LEN)
		return fail(&ps, "document is %zu bytes, over the limit of %u",
			    len, POLICY_MAX_LEN);
	doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		return fail(&ps, "JSON: line %d column %d: %s", je.line,
			    je.column, je.text);
	ps.p = calloc(1, sizeof(*ps.p));
	rc = ps.p ? top_parse(&ps, doc) : -ENOMEM;
	json_decref(doc);
	if (rc == -ENOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	if (rc) {
		policy_free(ps.p);
		return rc;
	}
	*out = ps.p;
	return 0;
}

/* ---- evaluation ----------------------------------------------------- */

struct piece {
	const char *s;
	size_t len;
};

/* One request as the matcher sees it. */
struct ctx {
	const struct policy *p;
	const struct policy_request *r;
	struct piece sub[3];	/* "bucket" or "bucket", "/", key */
	int nsub;
	size_t slen;
	const char *id;		/* NULL: no id */
	size_t idlen;
	uint32_t var_known;	/* bits of the slots looked up */
	uint32_t var_found;	/* and of those found */
	struct piece vars[VAR_SLOTS];
	int peer_af;		/* 0: none; 4, 6 */
	uint8_t peer[16];
};

static const char *attr_get(const struct policy_principal *who,
			    const char *name, size_t len)
{
	for (size_t i = 0; who && i < who->n_attrs; i++) {
		const struct policy_attr *a = &who->attrs[i];

		if (a->name && a->value && strlen(a->name) == len &&
		    !memcmp(a->name, name, len))
			return a->value;
	}
	return NULL;
}

/* A segment's bytes for this request; false for a missing variable. */
static bool seg_bytes(struct ctx *c, const struct seg *g, struct piece *out)
{
	const char *v;

	switch (g->kind) {
	case SEG_STAR:
		out->s = "";
		out->len = 0;
		return true;
	case SEG_LIT:
		out->s = g->s;
		out->len = g->len;
		return true;
	case SEG_ID:
		out->s = c->id;
		out->len = c->idlen;
		return c->id != NULL;
	case SEG_ATTR:
		if (g->slot != VAR_NONE &&
		    (c->var_known & (1u << g->slot))) {
			*out = c->vars[g->slot];
			return c->var_found & (1u << g->slot);
		}
		v = attr_get(c->r->who, g->s, g->len);
		out->s = v;
		out->len = v ? strlen(v) : 0;
		if (g->slot != VAR_NONE) {
			c->var_known |= 1u << g->slot;
			c->var_found |= v ? 1u << g->slot : 0;
			c->vars[g->slot] = *out;
		}
		return v != NULL;
	}
	return false;
}

/* Whether subject bytes [at, at + n) equal lit; at + n <= c->slen. */
static bool sub_eq(const struct ctx *c, size_t at, const char *lit, size_t n)
{
	for (int i = 0; i < c->nsub && n; i++) {
		const struct piece *pc = &c->sub[i];
		size_t k;

		if (at >= pc->len) {
			at -= pc->len;
			continue;
		}
		k = pc->len - at < n ? pc->len - at : n;
		if (memcmp(pc->s + at, lit, k))
			return false;
		lit += k;
		n -= k;
		at = 0;
	}
	return n == 0;
}

static bool vars_present(struct ctx *c, const struct pattern *pt)
{
	struct piece b;

	for (uint32_t i = 0; pt->vars && i < pt->n; i++)
		if (!seg_bytes(c, &pt->segs[i], &b))
			return false;
	return true;
}

/*
 * Glob match of the whole subject.  On a mismatch, go back to the last
 * star and let it swallow one more byte: earlier stars never need to
 * change, since whatever a later star's match needs, an earlier star can
 * leave to it.
 */
static bool glob(struct ctx *c, const struct pattern *pt)
{
	uint32_t pi = 0, star_pi = UINT32_MAX;
	size_t si = 0, star_si = 0;
	struct piece b;

	if (!vars_present(c, pt))
		return false;
	for (;;) {
		if (pi < pt->n) {
			const struct seg *g = &pt->segs[pi];

			if (g->kind == SEG_STAR) {
				if (pi + 1 == pt->n)
					return true;
				star_pi = ++pi;
				star_si = si;
				continue;
			}
			seg_bytes(c, g, &b);
			if (b.len <= c->slen - si &&
			    sub_eq(c, si, b.s, b.len)) {
				si += b.len;
				pi++;
				continue;
			}
		} else if (si == c->slen) {
			return true;
		}
		if (star_pi == UINT32_MAX || star_si == c->slen)
			return false;
		si = ++star_si;
		pi = star_pi;
	}
}

/*
 * Whether some string that starts with the subject can match: the bytes
 * before the pattern's first star and the subject agree as far as both
 * go, and with no star at all the subject is no longer than the pattern.
 */
static bool glob_prefix(struct ctx *c, const struct pattern *pt)
{
	size_t si = 0;
	struct piece b;

	if (!vars_present(c, pt))
		return false;
	for (uint32_t pi = 0; pi < pt->n; pi++) {
		const struct seg *g = &pt->segs[pi];
		size_t n;

		if (g->kind == SEG_STAR)
			return true;
		seg_bytes(c, g, &b);
		n = b.len < c->slen - si ? b.len : c->slen - si;
		if (!sub_eq(c, si, b.s, n))
			return false;
		si += n;
		if (si == c->slen)
			return true;
	}
	return si == c->slen;
}

static bool cidr_match(const struct ctx *c, const struct cidr *cd)
{
	unsigned full = cd->prefix / 8, rest = cd->prefix % 8;

	if (c->peer_af != cd->af || memcmp(c->peer, cd->addr, full))
		return false;
	return !rest ||
	       !((c->peer[full] ^ cd->addr[full]) & (0xff00u >> rest));
}

static bool ip_ok(const struct ctx *c, const struct stmt *st)
{
	for (uint32_t i = 0; i < st->n_cidrs; i++)
		if (cidr_match(c, &st->cidrs[i]))
			return true;
	return false;
}

static bool principal_ok(const struct ctx *c, const struct stmt *st)
{
	for (uint32_t i = 0; i < st->n_pconds; i++) {
		const struct pcond *pc = &st->pconds[i];
		const char *v = pc->is_id ? c->id :
			attr_get(c->r->who, pc->name, strlen(pc->name));
		uint32_t j;

		for (j = 0; v && j < pc->n && strcmp(v, pc->values[j]); j++)
			;
		if (!v || j == pc->n)
			return false;
	}
	return true;
}

/* Every object_tags condition: the tag is there with one of the values
 * (a request whose tags are not known matches none). */
static bool tags_ok(const struct ctx *c, const struct stmt *st)
{
	const struct policy_request *r = c->r;

	if (!r->tags_known)
		return false;
	for (uint32_t i = 0; i < st->n_tconds; i++) {
		const struct pcond *pc = &st->tconds[i];
		const char *v = NULL;
		uint32_t j;

		for (size_t k = 0; !v && k < r->n_tags; k++)
			if (r->tags[k].name && r->tags[k].value &&
			    !strcmp(r->tags[k].name, pc->name))
				v = r->tags[k].value;
		for (j = 0; v && j < pc->n && strcmp(v, pc->values[j]); j++)
			;
		if (!v || j == pc->n)
			return false;
	}
	return true;
}

static bool conds_ok(const struct ctx *c, const struct stmt *st)
{
	if (!st->conds)
		return true;
	if (st->n_tconds && !tags_ok(c, st))
		return false;
	if (st->has_nb && c->r->now_ms < st->nb)
		return false;
	if (st->has_na && c->r->now_ms >= st->na)
		return false;
	if (st->n_cidrs && !ip_ok(c, st))
		return false;
	return principal_ok(c, st);
}

static bool stmt_match(struct ctx *c, const struct stmt *st)
{
	if (!(st->actions & c->r->action) || !conds_ok(c, st))
		return false;
	for (uint32_t i = 0; i < st->n_res; i++)
		if (glob(c, &st->res[i]))
			return true;
	return false;
}

static void peer_init(struct ctx *c, const struct sockaddr *sa)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	c->peer_af = 0;
	if (sa && sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		memcpy(c->peer, &sin.sin_addr, 4);
		c->peer_af = 4;
	} else if (sa && sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
			/* ::ffff:a.b.c.d is an IPv4 client on a v6 socket. */
			memcpy(c->peer, sin6.sin6_addr.s6_addr + 12, 4);
			c->peer_af = 4;
		} else {
			memcpy(c->peer, sin6.sin6_addr.s6_addr, 16);
			c->peer_af = 6;
		}
	}
}

/* False for a request that can match nothing (no bucket, not one action). */
static bool ctx_init(struct ctx *c, const struct policy *p,
		     const struct policy_request *r)
{
	if (!p || !r || !r->bucket || !one_action(r->action))
		return false;
	c->p = p;
	c->r = r;
	c->sub[0].s = r->bucket;
	c->sub[0].len = strlen(r->bucket);
	c->nsub = 1;
	if (r->action & ALL_OBJECT) {
		c->sub[1].s = "/";
		c->sub[1].len = 1;
		c->sub[2].s = r->key ? r->key : "";
		c->sub[2].len = r->key ? r->keylen : 0;
		c->nsub = 3;
	}
	c->slen = 0;
	for (int i = 0; i < c->nsub; i++)
		c->slen += c->sub[i].len;
	c->id = r->who ? r->who->id : NULL;
	c->idlen = c->id ? strlen(c->id) : 0;
	c->var_known = c->var_found = 0;
	peer_init(c, r->peer);
	return true;
}

enum policy_decision policy_eval(const struct policy *p,
				 const struct policy_request *r)
{
	struct ctx c;
	bool allow = false;

	if (!ctx_init(&c, p, r))
		return POLICY_DENY;
	for (uint32_t i = 0; i < p->n; i++) {
		const struct stmt *st = &p->stmts[i];

		/* Once allowed, only a deny can change the answer. */
		if ((st->deny || !allow) && stmt_match(&c, st)) {
			if (st->deny)
				return POLICY_DENY_EXPLICIT;
			allow = true;
		}
	}
	return allow ? POLICY_ALLOW : POLICY_DENY;
}

static bool stmt_match_prefix(struct ctx *c, const struct stmt *st)
{
	if (!(st->actions & c->r->action) || !conds_ok(c, st))
		return false;
	for (uint32_t i = 0; i < st->n_res; i++) {
		const struct pattern *pt = &st->res[i];

		/* A deny must cover every string under the prefix. */
		if (st->deny ? pt->ends_star && glob(c, pt) :
			       glob_prefix(c, pt))
			return true;
	}
	return false;
}

bool policy_may_allow_prefix(const struct policy *p,
			     const struct policy_request *r)
{
	struct ctx c;
	bool may = false;

	if (!ctx_init(&c, p, r))
		return false;
	for (uint32_t i = 0; i < p->n; i++) {
		const struct stmt *st = &p->stmts[i];

		if ((st->deny || !may) && stmt_match_prefix(&c, st)) {
			if (st->deny)
				return false;
			may = true;
		}
	}
	return may;
}

bool policy_uses_tags(const struct policy *p, uint32_t action)
{
	return p && (p->tag_actions & action);
}

bool policy_allows_all(const struct policy *p, uint32_t action)
{
	return p && one_action(action) && (p->allow_all & action) &&
	       !(p->denied & action);
}
