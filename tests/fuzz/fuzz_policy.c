// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for policy.c: the input is a policy document.
 *
 *  1. policy_parse() returns 0, STRATA_EBADPOLICY or -ENOMEM; on failure
 *     *out is NULL and the message is one NUL-terminated line inside an
 *     error buffer of an input-chosen size (heap-allocated to the byte, so
 *     ASan sees any overrun).
 *  2. A parsed policy decides requests built from the input: actions,
 *     subjects made from the document's own resource patterns (stars
 *     replaced by input bytes, 0xff and '/' among them) or from raw bytes,
 *     principals with attributes, IPv4 / IPv6 / mapped / no peers, times.
 *     For each: the decision is one of the three and the same twice; a
 *     policy_allows_all() action is allowed; moving the bucket / key split
 *     of an object request along the same "bucket/key" changes nothing; an
 *     allowed object request's key prefixes pass policy_may_allow_prefix();
 *     and for a document without conditions or variables, the decision
 *     equals a reference evaluation written here (a DP glob).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy.h"
#include "strata/error.h"
#include "banned.h"

#define SUBJ_MAX 512
#define REQUESTS 12

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

struct rng {
	uint64_t s;
	const uint8_t *data;
	size_t size;
};

static uint32_t next(struct rng *g)
{
	g->s ^= g->s << 13;
	g->s ^= g->s >> 7;
	g->s ^= g->s << 17;
	return (uint32_t)(g->s >> 16);
}

static const uint32_t all_actions[] = {
	POLICY_BUCKET_CREATE, POLICY_BUCKET_DELETE, POLICY_BUCKET_LIST,
	POLICY_BUCKET_LIFECYCLE, POLICY_OBJECT_PUT, POLICY_OBJECT_GET,
	POLICY_OBJECT_STAT, POLICY_OBJECT_DELETE, POLICY_OBJECT_LIST,
};
#define N_ACTIONS (sizeof(all_actions) / sizeof(all_actions[0]))

/* ---- a reference evaluation (no conditions, no variables) ------------ */

static uint32_t ref_mask(const char *name)
{
	uint32_t all = 0, m = policy_action_parse(name);

	for (size_t i = 0; i < N_ACTIONS; i++)
		all |= all_actions[i];
	if (!strcmp(name, "*"))
		return all;
	if (!strcmp(name, "bucket:*"))
		return all & POLICY_BUCKET_ACTIONS;
	if (!strcmp(name, "object:*"))
		return all & POLICY_OBJECT_ACTIONS;
	return m;
}

/* Whether pat (only '*' special) matches s: row DP over s. */
static bool ref_glob(const char *pat, size_t plen, const uint8_t *s,
		     size_t slen)
{
	bool *row = calloc(slen + 1, 1), ok;

	check(row != NULL);
	row[0] = true;
	for (size_t i = 0; i < plen; i++) {
		if (pat[i] == '*') {
			for (size_t j = 1; j <= slen; j++)
				row[j] = row[j] || row[j - 1];
			continue;
		}
		for (size_t j = slen; j > 0; j--)
			row[j] = row[j - 1] && s[j - 1] == (uint8_t)pat[i];
		row[0] = false;
	}
	ok = row[slen];
	free(row);
	return ok;
}

/* -1: the document has conditions or variables (no reference answer). */
static int ref_decide(json_t *doc, uint32_t action, const uint8_t *s,
		      size_t slen)
{
	json_t *sts = json_object_get(doc, "statements"), *st;
	size_t i, j;
	int d = POLICY_DENY;

	json_array_foreach(sts, i, st) {
		json_t *acts = json_object_get(st, "actions");
		json_t *res = json_object_get(st, "resources"), *v;
		uint32_t mask = 0;
		bool hit = false;

		if (json_object_get(st, "conditions"))
			return -1;
		json_array_foreach(acts, j, v)
			mask |= ref_mask(json_string_value(v));
		json_array_foreach(res, j, v) {
			const char *pat = json_string_value(v);
			size_t plen = json_string_length(v);

			if (memmem(pat, plen, "${", 2) ||
			    (uint64_t)plen * slen > (1u << 22))
				return -1;
			hit = hit || ref_glob(pat, plen, s, slen);
		}
		if (!(mask & action) || !hit)
			continue;
		if (!strcmp(json_string_value(json_object_get(st, "effect")),
			    "deny"))
			return POLICY_DENY_EXPLICIT;
		d = POLICY_ALLOW;
	}
	return d;
}

/* ---- requests -------------------------------------------------------- */

/* A run of input bytes, or a few chosen ones. */
static size_t fragment(struct rng *g, uint8_t *out, size_t room)
{
	static const uint8_t odd[] = { 0xff, '/', '*', 0x01, 0x80, '$' };
	size_t n = next(g) % 6, k;

	if (n > room)
		n = room;
	if (next(g) % 3 == 0) {
		for (k = 0; k < n; k++)
			out[k] = odd[next(g) % sizeof(odd)];
		return n;
	}
	for (k = 0; k < n && g->size; k++)
		out[k] = g->data[(next(g) + k) % g->size];
	return k;
}

/* A subject: one of the document's patterns with its stars filled. */
static size_t subject(struct rng *g, json_t *doc, uint8_t *out)
{
	json_t *sts = json_object_get(doc, "statements"), *res;
	const char *pat;
	size_t plen, o = 0;

	res = json_array_get(sts, next(g) % json_array_size(sts));
	res = json_object_get(res, "resources");
	res = json_array_get(res, next(g) % json_array_size(res));
	pat = json_string_value(res);
	plen = json_string_length(res);
	if (next(g) % 8 == 0)
		return fragment(g, out, SUBJ_MAX);
	for (size_t i = 0; i < plen && o < SUBJ_MAX; i++) {
		if (pat[i] == '*')
			o += fragment(g, out + o, SUBJ_MAX - o);
		else
			out[o++] = (uint8_t)pat[i];
		if (next(g) % 64 == 0 && o < SUBJ_MAX)	/* a near miss */
			out[o++] = (uint8_t)next(g);
	}
	return o;
}

static struct sockaddr_storage peer(struct rng *g, bool *none)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	uint32_t w[4] = { next(g), next(g), next(g), next(g) };

	memset(&ss, 0, sizeof(ss));
	*none = false;
	switch (next(g) % 5) {
	case 0:
		*none = true;
		break;
	case 1:
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, w, 4);
		if (next(g) % 2)
			in->sin_addr.s_addr = htonl(0x0a000000u |
						    (w[1] & 0xffff));
		break;
	case 2:
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, w, 16);
		break;
	case 3:
		in6->sin6_family = AF_INET6;
		in6->sin6_addr.s6_addr[10] = 0xff;
		in6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(in6->sin6_addr.s6_addr + 12, w, 4);
		break;
	default:
		in6->sin6_family = AF_INET6;
		in6->sin6_addr.s6_addr[15] = (uint8_t)(w[0] & 3);
		break;
	}
	return ss;
}

static int64_t when(struct rng *g)
{
	static const int64_t t[] = { 0, 1767225600000LL, 1798761600000LL,
		INT64_MIN, INT64_MAX, -1 };
	int64_t base = t[next(g) % 6], delta, out;

	if (next(g) % 2)
		return base;
	delta = (int64_t)(next(g) % 2001) - 1000;
	if (next(g) % 2)
		delta *= 86400000;	/* days */
	if (__builtin_add_overflow(base, delta, &out))
		return base;
	return out;
}

/* One decision, asked twice; the copy of the key is sized to the byte. */
static enum policy_decision decide(const struct policy *p,
				   struct policy_request *r,
				   const uint8_t *key, size_t keylen)
{
	uint8_t *k = malloc(keylen ? keylen : 1);
	enum policy_decision d, d2;

	check(k != NULL);
	memcpy(k, key, keylen);
	r->key = (const char *)k;
	r->keylen = keylen;
	d = policy_eval(p, r);
	check(d == POLICY_DENY || d == POLICY_DENY_EXPLICIT ||
	      d == POLICY_ALLOW);
	d2 = policy_eval(p, r);
	check(d == d2);
	free(k);
	r->key = NULL;
	return d;
}

/* An allowed object request: each prefix of its key may be listed (an
 * allow matched the whole; a deny covering a prefix would have matched
 * the whole too). */
static void check_prefixes(const struct policy *p, struct policy_request r,
			   const uint8_t *key, size_t keylen)
{
	size_t cuts[] = { 0, keylen / 2, keylen };

	for (size_t i = 0; i < 3; i++) {
		r.key = (const char *)key;
		r.keylen = cuts[i];
		check(policy_may_allow_prefix(p, &r));
	}
}

static void one_request(const struct policy *p, json_t *doc, struct rng *g,
			const struct policy_principal *who)
{
	uint8_t s[SUBJ_MAX + 1];
	char bucket[SUBJ_MAX + 1];
	size_t slen = subject(g, doc, s), blen, i;
	uint32_t action = all_actions[next(g) % N_ACTIONS];
	struct policy_request r = { .who = who, .action = action };
	bool none;
	struct sockaddr_storage ss = peer(g, &none);
	enum policy_decision d;
	int ref;
	uint8_t *slash;

	if (next(g) % 32 == 0)
		r.action = next(g);	/* maybe not one action */
	for (i = 0; i < slen; i++)	/* bucket names are C strings */
		if (!s[i])
			s[i] = 1;
	r.peer = none ? NULL : (const struct sockaddr *)&ss;
	r.now_ms = when(g);
	slash = r.action & POLICY_OBJECT_ACTIONS ? memchr(s, '/', slen) : NULL;
	blen = slash ? (size_t)(slash - s) : slen;
	memcpy(bucket, s, blen);
	bucket[blen] = '\0';
	r.bucket = bucket;
	d = decide(p, &r, slash ? slash + 1 : s, slash ? slen - blen - 1 : 0);
	if (policy_allows_all(p, r.action))
		check(d == POLICY_ALLOW);
	/* With no conditions the reference must agree (object requests
	 * without a '/' see "s/", not s: no reference for them). */
	if (r.action == action &&
	    (slash || !(action & POLICY_OBJECT_ACTIONS))) {
		ref = ref_decide(doc, action, s, slen);
		check(ref < 0 || ref == (int)d);
	}
	if (!(r.action & POLICY_OBJECT_ACTIONS) || !slash)
		return;
	if (d == POLICY_ALLOW)
		check_prefixes(p, r, s + blen + 1, slen - blen - 1);
	/* The same "bucket/key", split at a later '/': the same answer. */
	if ((slash = memchr(slash + 1, '/', slen - blen - 1))) {
		size_t b2 = (size_t)(slash - s);

		memcpy(bucket, s, b2);
		bucket[b2] = '\0';
		check(decide(p, &r, slash + 1, slen - b2 - 1) == d);
	}
}

static void evaluate(const struct policy *p, const uint8_t *data,
		     size_t size, struct rng *g)
{
	json_t *doc = json_loadb((const char *)data, size,
				 JSON_REJECT_DUPLICATES, NULL);
	char id[8], vals[4][8];
	struct policy_attr attrs[4] = {
		{ "team", vals[0] }, { "site", vals[1] }, { "dept", vals[2] },
		{ "id", vals[3] },
	};
	struct policy_principal who = { .id = id, .attrs = attrs };

	check(doc != NULL);
	for (int i = 0; i < REQUESTS; i++) {
		uint8_t f[8];
		size_t n;

		for (size_t j = 0; j < 4; j++) {
			n = fragment(g, f, sizeof(vals[j]) - 1);
			memcpy(vals[j], f, n);
			vals[j][n] = '\0';
			for (size_t k = 0; k < n; k++)
				if (!vals[j][k])
					vals[j][k] = '*';
		}
		n = fragment(g, f, sizeof(id) - 1);
		memcpy(id, f, n);
		id[n] = '\0';
		for (size_t k = 0; k < n; k++)
			if (!id[k])
				id[k] = 'A';
		who.n_attrs = next(g) % 5;
		one_request(p, doc, g, next(g) % 8 ? &who : NULL);
	}
	json_decref(doc);
	check(policy_eval(NULL, &(struct policy_request){ .bucket = "b" }) ==
	      POLICY_DENY);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t errlen = size ? 1 + data[size - 1] % 96 : 1;
	char *err = malloc(errlen);
	struct policy *p = (struct policy *)&errlen;
	struct rng g = { .s = 0x9e3779b97f4a7c15ull, .data = data,
			 .size = size };
	int rc;

	check(err != NULL);
	for (size_t i = 0; i < size; i++)
		g.s = (g.s ^ data[i]) * 0x100000001b3ull;
	g.s |= 1;
	memset(err, 'x', errlen);
	rc = policy_parse((const char *)data, size, &p, err, errlen);
	check(rc == 0 || rc == STRATA_EBADPOLICY || rc == -ENOMEM);
	if (rc) {
		check(p == NULL);
		check(memchr(err, '\0', errlen) != NULL);
		for (const char *c = err; *c; c++)
			check((unsigned char)*c >= 0x20 && *c != 0x7f);
	} else {
		check(p != NULL);
		evaluate(p, data, size, &g);
		policy_free(p);
	}
	free(err);
	return 0;
}
