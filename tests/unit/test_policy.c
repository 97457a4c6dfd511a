// SPDX-License-Identifier: Apache-2.0
/*
 * policy: parsing (good documents and every refusal, with its message),
 * the glob matcher, variables, each condition, the decision rules, and
 * the listing helpers policy_may_allow_prefix() and policy_allows_all().
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "strata/error.h"
#include "testutil.h"
#include "banned.h"

#define T2026 1767225600000LL	/* 2026-01-01T00:00:00Z */
#define T2027 1798761600000LL	/* 2027-01-01T00:00:00Z */

static struct policy *parse_ok(const char *doc)
{
	struct policy *p = NULL;
	char err[256] = "";
	int rc = policy_parse(doc, strlen(doc), &p, err, sizeof(err));

	ck_assert_msg(rc == 0, "%s: rc %d: %s", doc, rc, err);
	ck_assert_ptr_nonnull(p);
	return p;
}

/* Parse a document that must be refused with exactly `want`. */
static void refused(const char *doc, const char *want)
{
	struct policy *p = (struct policy *)1;
	char err[256];

	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(policy_parse(doc, strlen(doc), &p, err, sizeof(err)),
			 STRATA_EBADPOLICY);
	ck_assert_ptr_null(p);
	ck_assert_msg(!strcmp(err, want), "%s:\n got  %s\n want %s", doc, err,
		      want);
}

/* One statement's document, from its members (without the braces). */
static char *one(const char *members)
{
	char *doc;

	ck_assert_int_ge(asprintf(&doc, "{\"version\":1,\"statements\":[{%s}]}",
				  members), 0);
	return doc;
}

static void refused1(const char *members, const char *want)
{
	char *doc = one(members);

	refused(doc, want);
	free(doc);
}

static const struct policy_attr alice_attrs[] = {
	{ "team", "vision" },
	{ "site", "par*s" },
	{ "empty", "" },
	{ "dept", "research" },
};
static const struct policy_principal alice = {
	.id = "AKALICE", .attrs = alice_attrs, .n_attrs = 4,
};
static const struct policy_principal bob = { .id = "AKBOB" };

static struct sockaddr_in sin4(const char *addr)
{
	struct sockaddr_in s = { .sin_family = AF_INET };

	ck_assert_int_eq(inet_pton(AF_INET, addr, &s.sin_addr), 1);
	return s;
}

static struct sockaddr_in6 sin6(const char *addr)
{
	struct sockaddr_in6 s = { .sin6_family = AF_INET6 };

	ck_assert_int_eq(inet_pton(AF_INET6, addr, &s.sin6_addr), 1);
	return s;
}

static struct policy_request req(uint32_t action, const char *bucket,
				 const char *key)
{
	struct policy_request r = {
		.who = &alice, .action = action, .bucket = bucket, .key = key,
		.keylen = key ? strlen(key) : 0, .now_ms = T2026,
	};
	return r;
}

static enum policy_decision eval_get(const struct policy *p,
				     const char *bucket, const char *key)
{
	struct policy_request r = req(POLICY_OBJECT_GET, bucket, key);

	return policy_eval(p, &r);
}

/* A one-statement allow policy over `resources` for object:get. */
static struct policy *allow_get(const char *resources)
{
	char *doc, *m;
	struct policy *p;

	ck_assert_int_ge(asprintf(&m, "\"effect\":\"allow\",\"actions\":"
				  "[\"object:get\"],\"resources\":[%s]",
				  resources), 0);
	doc = one(m);
	p = parse_ok(doc);
	free(doc);
	free(m);
	return p;
}

static bool get_ok(const char *resources, const char *bucket,
		   const char *key)
{
	struct policy *p = allow_get(resources);
	enum policy_decision d = eval_get(p, bucket, key);

	policy_free(p);
	return d == POLICY_ALLOW;
}

/* ---- parsing -------------------------------------------------------- */

START_TEST(parse_good)
{
	static const char *const docs[] = {
		"{\"version\":1,\"statements\":[{\"effect\":\"allow\","
		"\"actions\":[\"*\"],\"resources\":[\"*\"]}]}",
		/* Every action, wildcards, white space, several statements. */
		" {\n \"statements\": [ {\"effect\":\"deny\",\"actions\":"
		"[\"bucket:create\",\"bucket:delete\",\"bucket:list\","
		"\"bucket:lifecycle\",\"object:put\",\"object:get\","
		"\"object:stat\",\"object:delete\",\"object:list\"],"
		"\"resources\":[\"a\"]}, {\"effect\":\"allow\",\"actions\":"
		"[\"bucket:*\",\"object:*\"],\"resources\":[\"x/${principal.id}"
		"/*\",\"${principal.team.sub-1_x}\",\"$x}{$\"],"
		"\"conditions\":{}} ], \"version\": 1 }\n",
		/* Every condition, single-string forms, fractions. */
		"{\"version\":1,\"statements\":[{\"effect\":\"allow\","
		"\"actions\":[\"object:get\"],\"resources\":[\"b/*\"],"
		"\"conditions\":{\"source_ip\":[\"10.0.0.0/8\",\"::1/128\","
		"\"192.168.1.7\",\"::\",\"0.0.0.0/0\",\"::/0\"],"
		"\"principal\":{\"team\":[\"vision\",\"nlp\"],\"dept\":\"r\","
		"\"id\":[\"AK1\"]},"
		"\"not_before\":\"2026-01-01T00:00:00.5Z\","
		"\"not_after\":\"2027-01-01T00:00:00.123456789Z\"}}]}",
		"{\"version\":1,\"statements\":[{\"effect\":\"allow\","
		"\"actions\":[\"object:get\"],\"resources\":[\"b\"],"
		"\"conditions\":{\"source_ip\":\"fe80::/10\","
		"\"not_after\":\"2000-02-29T23:59:59Z\"}}]}",
	};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		policy_free(parse_ok(docs[i]));
	policy_free(NULL);
}
END_TEST

START_TEST(parse_top_refusals)
{
	char *big = tu_xmalloc(POLICY_MAX_LEN + 2);
	struct policy *p = (struct policy *)1;
	char err[128];

	refused("", "JSON: line 1 column 0: '[' or '{' expected near end of "
		"file");
	refused("{\"version\":1,", "JSON: line 1 column 13: string or '}' "
		"expected near end of file");
	refused("{\"version\":1,\"version\":1}",
		"JSON: line 1 column 22: duplicate object key near "
		"'\"version\"'");
	refused("{\"version\":1} x", "JSON: line 1 column 15: end of file "
		"expected near 'x'");
	refused("[1]", "not a JSON object");
	refused("{\"version\":1,\"statements\":[],\"Version\":1}",
		"unknown member \"Version\"");
	refused("{\"version\":1,\"x\\n\":1}", "unknown member \"x\\x0a\"");
	refused("{\"statements\":[]}", "version: missing");
	refused("{\"version\":2,\"statements\":[]}", "version: must be 1");
	refused("{\"version\":\"1\",\"statements\":[]}", "version: must be 1");
	refused("{\"version\":1.0,\"statements\":[]}", "version: must be 1");
	refused("{\"version\":1}", "statements: missing");
	refused("{\"version\":1,\"statements\":{}}",
		"statements: not an array");
	refused("{\"version\":1,\"statements\":[]}", "statements: empty");
	refused("{\"version\":1,\"statements\":[1]}",
		"statement 1: not an object");

	/* Over the size limit, even when it is valid JSON. */
	memset(big, ' ', POLICY_MAX_LEN + 1);
	big[0] = '{';
	big[POLICY_MAX_LEN] = '}';
	big[POLICY_MAX_LEN + 1] = '\0';
	ck_assert_int_eq(policy_parse(big, POLICY_MAX_LEN + 1, &p, err,
				      sizeof(err)), STRATA_EBADPOLICY);
	ck_assert_ptr_null(p);
	ck_assert_str_eq(err, "document is 65537 bytes, over the limit of "
			 "65536");
	/* At the limit it is read (and refused for what it says). */
	big[POLICY_MAX_LEN - 1] = '}';
	ck_assert_int_eq(policy_parse(big, POLICY_MAX_LEN, &p, err,
				      sizeof(err)), STRATA_EBADPOLICY);
	ck_assert_str_eq(err, "version: missing");
	free(big);
}
END_TEST

START_TEST(parse_too_many)
{
	size_t cap = 64 << 10, o = 0;
	char *doc = tu_xmalloc(cap);
	unsigned i;

	/* 257 statements. */
	o = (size_t)snprintf(doc, cap, "{\"version\":1,\"statements\":[");
	for (i = 0; i < POLICY_MAX_STATEMENTS + 1; i++)
		o += (size_t)snprintf(doc + o, cap - o, "%s{}", i ? "," : "");
	snprintf(doc + o, cap - o, "]}");
	refused(doc, "statements: more than 256");

	/* 257 actions, then 257 resources. */
	o = (size_t)snprintf(doc, cap, "{\"version\":1,\"statements\":[{"
			     "\"effect\":\"allow\",\"resources\":[\"*\"],"
			     "\"actions\":[");
	for (i = 0; i < POLICY_MAX_ITEMS + 1; i++)
		o += (size_t)snprintf(doc + o, cap - o, "%s\"*\"",
				      i ? "," : "");
	snprintf(doc + o, cap - o, "]}]}");
	refused(doc, "statement 1: actions: more than 256 items");
	o = (size_t)snprintf(doc, cap, "{\"version\":1,\"statements\":[{"
			     "\"effect\":\"allow\",\"actions\":[\"*\"],"
			     "\"resources\":[");
	for (i = 0; i < POLICY_MAX_ITEMS; i++)
		o += (size_t)snprintf(doc + o, cap - o, "%s\"*\"",
				      i ? "," : "");
	snprintf(doc + o, cap - o, "]}]}");
	policy_free(parse_ok(doc));	/* exactly the limit */
	snprintf(doc + o, cap - o, ",\"x\"]}]}");
	refused(doc, "statement 1: resources: more than 256 items");
	free(doc);
}
END_TEST

#define ACT "\"actions\":[\"object:get\"]"
#define RES "\"resources\":[\"b/*\"]"
#define AR "\"effect\":\"allow\"," ACT "," RES

START_TEST(parse_statement_refusals)
{
	refused1("\"effect\":\"allow\"," ACT "," RES ",\"sid\":1",
		 "statement 1: unknown member \"sid\"");
	refused1(ACT "," RES, "statement 1: effect: missing");
	refused1("\"effect\":\"Allow\"," ACT "," RES,
		 "statement 1: effect: must be \"allow\" or \"deny\"");
	refused1("\"effect\":true," ACT "," RES,
		 "statement 1: effect: must be \"allow\" or \"deny\"");
	refused1("\"effect\":\"allow\"," RES, "statement 1: actions: missing");
	refused1("\"effect\":\"allow\",\"actions\":[]," RES,
		 "statement 1: actions: empty");
	refused1("\"effect\":\"allow\",\"actions\":\"object:get\"," RES,
		 "statement 1: actions: not an array of strings");
	refused1("\"effect\":\"allow\",\"actions\":[\"object:get\",2]," RES,
		 "statement 1: actions: item 2 is not a string");
	refused1("\"effect\":\"allow\",\"actions\":[\"object:Get\"]," RES,
		 "statement 1: unknown action \"object:Get\"");
	refused1("\"effect\":\"allow\",\"actions\":[\"object:\"]," RES,
		 "statement 1: unknown action \"object:\"");
	refused1("\"effect\":\"allow\",\"actions\":[\"\\u0001\"]," RES,
		 "statement 1: unknown action \"\\x01\"");
	refused1("\"effect\":\"allow\"," ACT,
		 "statement 1: resources: missing");
	refused1("\"effect\":\"allow\"," ACT ",\"resources\":[]",
		 "statement 1: resources: empty");
	refused1("\"effect\":\"allow\"," ACT ",\"resources\":{}",
		 "statement 1: resources: not an array of strings");
	refused1("\"effect\":\"allow\"," ACT ",\"resources\":[null]",
		 "statement 1: resources: item 1 is not a string");
	refused1("\"effect\":\"allow\"," ACT ",\"resources\":[\"a\",\"\"]",
		 "statement 1: resource 2: empty pattern");
	refused1("\"effect\":\"allow\"," ACT ",\"resources\":[\"a/${principal."
		 "id\"]", "statement 1: resource 1: unterminated \"${\"");
	refused1("\"effect\":\"allow\"," ACT ",\"resources\":[\"a/${\"]",
		 "statement 1: resource 1: unterminated \"${\"");
	refused1("\"effect\":\"allow\"," ACT ",\"resources\":[\"${user}\"]",
		 "statement 1: resource 1: unknown variable \"${user}\"");
	refused1("\"effect\":\"allow\"," ACT ",\"resources\":[\"${}\"]",
		 "statement 1: resource 1: unknown variable \"${}\"");
	refused1("\"effect\":\"allow\"," ACT ",\"resources\":"
		 "[\"${principal.}\"]",
		 "statement 1: resource 1: unknown variable \"${principal.}\"");
	refused1("\"effect\":\"allow\"," ACT ",\"resources\":"
		 "[\"${principal.a b}\"]",
		 "statement 1: resource 1: unknown variable "
		 "\"${principal.a b}\"");
	refused1("\"effect\":\"allow\"," ACT ",\"resources\":"
		 "[\"${Principal.id}\"]",
		 "statement 1: resource 1: unknown variable "
		 "\"${Principal.id}\"");
	/* The statement is numbered from 1. */
	refused("{\"version\":1,\"statements\":[{" AR "},{\"effect\":\"allow\","
		"\"actions\":[\"object:Get\"]," RES "}]}",
		"statement 2: unknown action \"object:Get\"");
}
END_TEST

static void refused_cond(const char *conds, const char *want)
{
	char *m;

	ck_assert_int_ge(asprintf(&m, AR ",\"conditions\":%s", conds), 0);
	refused1(m, want);
	free(m);
}

START_TEST(parse_condition_refusals)
{
	static const char *const bad_ip[] = {
		"10.0.0.0/33", "::/129", "1.2.3", "10.0.0.0/", "10.0.0.0/-1",
		"10.0.0.0/+8", "10.0.0.0/0008", "fe80::1%eth0",
		"10.0.0.0/8/8", "", "/8", "10.0.0.256", ":::1", "10.0.0.0 /8",
		"10.0.0.0/8 ", "1::2::3",
	};
	static const char *const bad_time[] = {
		"2026-01-01T00:00:00", "2026-01-01T00:00:00+01:00",
		"2026-01-01 00:00:00Z", "2026-01-01t00:00:00Z",
		"2026-01-01T00:00:00z", "2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z", "2026-02-30T00:00:00Z",
		"2025-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
		"2026-01-00T00:00:00Z", "2026-04-31T00:00:00Z",
		"2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z",
		"2026-01-01T00:00:60Z", "2026-01-01T00:00:00.Z",
		"2026-01-01T00:00:00.1234567890Z", "26-01-01T00:00:00Z",
		"2026-1-01T00:00:00Z", "+026-01-01T00:00:00Z",
		"2026-01-01T00:00:00.5", "", "2026-01-01T0a:00:00Z",
	};
	char conds[160], want[256];

	refused_cond("[]", "statement 1: conditions: not an object");
	refused_cond("{\"source_ip\":[\"::1\"],\"tls\":true}",
		     "statement 1: unknown condition \"tls\"");
	refused_cond("{\"source_ip\":[]}", "statement 1: source_ip: empty");
	refused_cond("{\"source_ip\":7}",
		     "statement 1: source_ip: not an array of strings");
	for (size_t i = 0; i < sizeof(bad_ip) / sizeof(bad_ip[0]); i++) {
		snprintf(conds, sizeof(conds),
			 "{\"source_ip\":[\"::1\",\"%s\"]}", bad_ip[i]);
		snprintf(want, sizeof(want), "statement 1: source_ip: bad "
			 "address or CIDR \"%s\"", bad_ip[i]);
		refused_cond(conds, want);
	}
	for (size_t i = 0; i < sizeof(bad_time) / sizeof(bad_time[0]); i++) {
		snprintf(conds, sizeof(conds), "{\"not_before\":\"%s\"}",
			 bad_time[i]);
		snprintf(want, sizeof(want), "statement 1: not_before: not an "
			 "RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ): \"%s\"",
			 bad_time[i]);
		refused_cond(conds, want);
	}
	refused_cond("{\"not_after\":1767225600}",
		     "statement 1: not_after: not a string");
	refused_cond("{\"not_before\":\"2027-01-01T00:00:00Z\","
		     "\"not_after\":\"2027-01-01T00:00:00Z\"}",
		     "statement 1: not_before is not before not_after");
	refused_cond("{\"principal\":[\"team\"]}",
		     "statement 1: principal: not an object");
	refused_cond("{\"principal\":{}}", "statement 1: principal: empty");
	refused_cond("{\"principal\":{\"te am\":\"x\"}}",
		     "statement 1: principal: bad attribute name \"te am\"");
	refused_cond("{\"principal\":{\"\":\"x\"}}",
		     "statement 1: principal: bad attribute name \"\"");
	refused_cond("{\"principal\":{\"team\":1}}",
		     "statement 1: principal \"team\": not a string or an "
		     "array of strings");
	refused_cond("{\"principal\":{\"team\":{}}}",
		     "statement 1: principal \"team\": not a string or an "
		     "array of strings");
	refused_cond("{\"principal\":{\"team\":[]}}",
		     "statement 1: principal \"team\": empty");
	refused_cond("{\"principal\":{\"team\":[\"a\",null]}}",
		     "statement 1: principal \"team\": item 2 is not a string");
}
END_TEST

/* Small or odd error buffers: never overrun, always NUL-terminated. */
START_TEST(parse_error_buffer)
{
	static const char doc[] = "{\"version\":2,\"statements\":[]}";
	static const char doc2[] = "{\"version\":1,\"statements\":[{\"effect"
				   "\":\"x\"}]}";
	char err[32];
	struct policy *p = (struct policy *)1;

	for (size_t n = 1; n < 24; n++) {
		memset(err, 'x', sizeof(err));
		ck_assert_int_eq(policy_parse(doc, sizeof(doc) - 1, &p, err, n),
				 STRATA_EBADPOLICY);
		ck_assert_ptr_null(p);
		ck_assert_uint_eq(strlen(err), n - 1 < 18 ? n - 1 : 18);
		ck_assert_int_eq(err[n], 'x');
		ck_assert_int_eq(strncmp(err, "version: must be 1", n - 1), 0);

		memset(err, 'x', sizeof(err));
		ck_assert_int_eq(policy_parse(doc2, sizeof(doc2) - 1, &p, err,
					      n), STRATA_EBADPOLICY);
		ck_assert_uint_eq(strlen(err), n - 1);
		ck_assert_int_eq(err[n], 'x');
	}
	/* No buffer at all. */
	ck_assert_int_eq(policy_parse(doc, sizeof(doc) - 1, &p, NULL, 0),
			 STRATA_EBADPOLICY);
	ck_assert_ptr_null(p);
	/* A very long action name is cut short, still one line. */
	{
		char name[600], *m, e[512];

		memset(name, 'a', sizeof(name) - 1);
		name[sizeof(name) - 1] = '\0';
		ck_assert_int_ge(asprintf(&m, "{\"version\":1,\"statements\":"
					  "[{\"effect\":\"allow\",\"actions\":"
					  "[\"%s\"]," RES "}]}", name), 0);
		ck_assert_int_eq(policy_parse(m, strlen(m), &p, e, sizeof(e)),
				 STRATA_EBADPOLICY);
		ck_assert_uint_le(strlen(e), 128);
		ck_assert_ptr_nonnull(strstr(e, "aaa...\""));
		free(m);
	}
}
END_TEST

/* The document need not be NUL-terminated: only len bytes are read. */
START_TEST(parse_not_terminated)
{
	static const char doc[] = "{\"version\":1,\"statements\":[{" AR "}]}";
	char *buf = tu_xmalloc(sizeof(doc) - 1);
	struct policy *p;
	char err[64];

	memcpy(buf, doc, sizeof(doc) - 1);
	ck_assert_int_eq(policy_parse(buf, sizeof(doc) - 1, &p, err,
				      sizeof(err)), 0);
	ck_assert_int_eq(eval_get(p, "b", "k"), POLICY_ALLOW);
	policy_free(p);
	/* One byte short: the closing brace is missing. */
	ck_assert_int_eq(policy_parse(buf, sizeof(doc) - 2, &p, err,
				      sizeof(err)), STRATA_EBADPOLICY);
	free(buf);
}
END_TEST

START_TEST(action_names)
{
	static const char *const names[] = {
		"bucket:create", "bucket:delete", "bucket:list",
		"bucket:lifecycle", "object:put", "object:get", "object:stat",
		"object:delete", "object:list",
	};
	uint32_t seen = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint32_t a = policy_action_parse(names[i]);

		ck_assert_msg(a && !(a & (a - 1)), "%s", names[i]);
		ck_assert_uint_eq(seen & a, 0);
		seen |= a;
		ck_assert_str_eq(policy_action_name(a), names[i]);
	}
	ck_assert_uint_eq(seen, (POLICY_BUCKET_CREATE | POLICY_BUCKET_DELETE |
				 POLICY_BUCKET_LIST | POLICY_BUCKET_LIFECYCLE |
				 POLICY_OBJECT_PUT | POLICY_OBJECT_GET |
				 POLICY_OBJECT_STAT | POLICY_OBJECT_DELETE |
				 POLICY_OBJECT_LIST));
	ck_assert_uint_eq(policy_action_parse("*"), 0);
	ck_assert_uint_eq(policy_action_parse("object:*"), 0);
	ck_assert_uint_eq(policy_action_parse("Object:get"), 0);
	ck_assert_uint_eq(policy_action_parse(""), 0);
	ck_assert_ptr_null(policy_action_name(0));
	ck_assert_ptr_null(policy_action_name(POLICY_OBJECT_GET |
					      POLICY_OBJECT_PUT));
	ck_assert_ptr_null(policy_action_name(1u << 20));
}
END_TEST

/* ---- matching ------------------------------------------------------- */

START_TEST(glob_basics)
{
	ck_assert(get_ok("\"*\"", "b", "k"));
	ck_assert(get_ok("\"*\"", "b", ""));
	ck_assert(get_ok("\"b/k\"", "b", "k"));
	ck_assert(!get_ok("\"b/k\"", "b", "kk"));
	ck_assert(!get_ok("\"b/k\"", "b", ""));
	ck_assert(!get_ok("\"b/kk\"", "b", "k"));
	ck_assert(!get_ok("\"b/k\"", "bb", "k"));
	ck_assert(get_ok("\"b/\"", "b", ""));		/* empty key */
	ck_assert(get_ok("\"b/*\"", "b", ""));
	ck_assert(!get_ok("\"b/*\"", "bb", "k"));
	ck_assert(!get_ok("\"b/*\"", "c", "b/k"));
	/* '*' crosses '/'. */
	ck_assert(get_ok("\"b/*\"", "b", "x/y/z"));
	ck_assert(get_ok("\"*/z\"", "b", "x/y/z"));
	ck_assert(get_ok("\"b*z\"", "b", "x/y/z"));
	ck_assert(get_ok("\"*\"", "b", "/"));
	/* Stars at both ends and inside, runs of stars. */
	ck_assert(get_ok("\"*x*\"", "b", "axb"));
	ck_assert(get_ok("\"*x*\"", "x", ""));
	ck_assert(!get_ok("\"*x*\"", "b", "ayb"));
	ck_assert(get_ok("\"**b/***k**\"", "b", "k"));
	ck_assert(get_ok("\"b/*.tar\"", "b", "s.tar.tar"));
	ck_assert(!get_ok("\"b/*.tar\"", "b", "s.tar.gz"));
	ck_assert(get_ok("\"b/a*b*c\"", "b", "aXbYbZc"));
	ck_assert(!get_ok("\"b/a*b*c\"", "b", "aXbYbZcd"));
	ck_assert(get_ok("\"b/*ab\"", "b", "aab"));	/* backtracking */
	ck_assert(get_ok("\"b/*aab*aab\"", "b", "aaabaaab"));
	/* Nothing but '*' is special. */
	ck_assert(get_ok("\"b/?[a]\\\\$x}\"", "b", "?[a]\\$x}"));
	ck_assert(!get_ok("\"b/?\"", "b", "x"));
	ck_assert(!get_ok("\"b/[ab]\"", "b", "a"));
	ck_assert(!get_ok("\"B/k\"", "b", "k"));	/* case matters */
	/* Any resource of the list. */
	ck_assert(get_ok("\"x\",\"y/*\",\"b/k\"", "b", "k"));
	ck_assert(!get_ok("\"x\",\"y/*\"", "b", "k"));
}
END_TEST

/* Keys hold any byte but NUL; only keylen bytes count. */
START_TEST(glob_key_bytes)
{
	struct policy *p = allow_get("\"b/a\\u00ff*\",\"b/x/y\"");
	struct policy_request r = req(POLICY_OBJECT_GET, "b", NULL);
	char key[8] = { 'a', (char)0xc3, (char)0xbf, (char)0xff, '/', 0x01 };

	r.key = key;
	r.keylen = 6;		/* "a" U+00FF in UTF-8, 0xff '/' 0x01 */
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.keylen = 1;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	key[1] = (char)0xff;	/* Latin-1 is not the pattern's UTF-8 */
	r.keylen = 6;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	/* Not NUL-terminated: "x/y" followed by junk. */
	memcpy(key, "x/yZZZZ", 8);
	r.keylen = 3;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.keylen = 4;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	/* The key's '/' is an ordinary byte: "b/x" + "/y" is not "b/x/y"
	 * split elsewhere, but the same string, so the same answer. */
	r.bucket = "b/x";
	memcpy(key, "y", 2);
	r.keylen = 1;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	policy_free(p);
}
END_TEST

/* "*a*a*...*b" against a long run of a's must not take exponential time. */
START_TEST(glob_pathological)
{
	size_t plen = 60 * 2 + 16, klen = 8192;
	char *pat = tu_xmalloc(plen), *key = tu_xmalloc(klen);
	struct policy *p;
	struct policy_request r = req(POLICY_OBJECT_GET, "b", NULL);
	uint64_t t0;
	size_t o;

	o = (size_t)snprintf(pat, plen, "\"");
	for (int i = 0; i < 60; i++)
		o += (size_t)snprintf(pat + o, plen - o, "*a");
	snprintf(pat + o, plen - o, "*b\"");
	p = allow_get(pat);
	memset(key, 'a', klen);
	r.key = key;
	r.keylen = klen;
	t0 = tu_now_ns();
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	key[klen - 1] = 'b';
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	/* Generous for sanitizers; the exponential matcher takes ages. */
	ck_assert_uint_lt(tu_now_ns() - t0, 2000000000ull);
	policy_free(p);
	free(key);
	free(pat);
}
END_TEST

START_TEST(bucket_vs_object)
{
	struct policy *p = parse_ok("{\"version\":1,\"statements\":["
		"{\"effect\":\"allow\",\"actions\":[\"bucket:*\"],"
		"\"resources\":[\"data\"]},"
		"{\"effect\":\"allow\",\"actions\":[\"object:*\"],"
		"\"resources\":[\"data/*\"]}]}");
	struct policy_request r = req(POLICY_BUCKET_CREATE, "data", NULL);

	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.action = POLICY_BUCKET_LIFECYCLE;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	/* A bucket action ignores any key given. */
	r.key = "x";
	r.keylen = 1;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.bucket = "data2";
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	/* Object actions see "bucket/key": "data" alone does not match. */
	r = req(POLICY_OBJECT_PUT, "data", "k");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.bucket = "other";
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);

	/* A pattern with a key is no bucket resource, and a bucket alone
	 * no object resource. */
	p = parse_ok("{\"version\":1,\"statements\":[{\"effect\":\"allow\","
		     "\"actions\":[\"*\"],\"resources\":[\"data/*\"]}]}");
	r = req(POLICY_BUCKET_DELETE, "data", NULL);
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);
	p = parse_ok("{\"version\":1,\"statements\":[{\"effect\":\"allow\","
		     "\"actions\":[\"*\"],\"resources\":[\"data\"]}]}");
	r = req(POLICY_OBJECT_GET, "data", "");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.key = NULL;		/* no key: "data/" */
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);
}
END_TEST

START_TEST(actions_select)
{
	struct policy *p = parse_ok("{\"version\":1,\"statements\":[{"
		"\"effect\":\"allow\",\"actions\":[\"object:get\","
		"\"object:list\"],\"resources\":[\"*\"]}]}");
	struct policy_request r = req(POLICY_OBJECT_GET, "b", "k");

	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.action = POLICY_OBJECT_LIST;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.action = POLICY_OBJECT_PUT;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.action = POLICY_BUCKET_LIST;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	/* Not one action: nothing matches. */
	r.action = POLICY_OBJECT_GET | POLICY_OBJECT_LIST;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.action = 0;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.action = 1u << 7;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);
}
END_TEST

START_TEST(decisions)
{
	struct policy *p = parse_ok("{\"version\":1,\"statements\":["
		"{\"effect\":\"allow\",\"actions\":[\"object:*\"],"
		"\"resources\":[\"b/*\"]},"
		"{\"effect\":\"deny\",\"actions\":[\"object:delete\"],"
		"\"resources\":[\"*\"]},"
		"{\"effect\":\"deny\",\"actions\":[\"*\"],"
		"\"resources\":[\"b/secret/*\"]}]}");
	struct policy_request r = req(POLICY_OBJECT_GET, "b", "k");

	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.action = POLICY_OBJECT_DELETE;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY_EXPLICIT);
	r = req(POLICY_OBJECT_GET, "b", "secret/x");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY_EXPLICIT);
	r = req(POLICY_OBJECT_GET, "c", "k");	/* default deny */
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.action = POLICY_OBJECT_DELETE;	/* deny without any allow */
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY_EXPLICIT);
	/* No policy, no request details. */
	r = req(POLICY_OBJECT_GET, "b", "k");
	ck_assert_int_eq(policy_eval(NULL, &r), POLICY_DENY);
	ck_assert_int_eq(policy_eval(p, NULL), POLICY_DENY);
	r.bucket = NULL;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	/* No principal: fine for patterns without variables. */
	r = req(POLICY_OBJECT_GET, "b", "k");
	r.who = NULL;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	policy_free(p);

	/* The deny wins wherever it stands. */
	p = parse_ok("{\"version\":1,\"statements\":["
		"{\"effect\":\"deny\",\"actions\":[\"object:get\"],"
		"\"resources\":[\"b/k\"]},"
		"{\"effect\":\"allow\",\"actions\":[\"*\"],"
		"\"resources\":[\"*\"]}]}");
	r = req(POLICY_OBJECT_GET, "b", "k");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY_EXPLICIT);
	r.keylen = 0;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	policy_free(p);
}
END_TEST

START_TEST(variables)
{
	struct policy *p = allow_get("\"home/${principal.id}/*\","
				     "\"teams/${principal.team}/*\","
				     "\"site/${principal.site}\","
				     "\"e/${principal.empty}/x\","
				     "\"m/${principal.missing}/*\","
				     "\"two/${principal.id}-"
				     "${principal.dept}\"");
	struct policy_request r = req(POLICY_OBJECT_GET, "home", "AKALICE/x");

	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r = req(POLICY_OBJECT_GET, "home", "AKBOB/x");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.who = &bob;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r = req(POLICY_OBJECT_GET, "home", "AKALICE");	/* no '/' after */
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r = req(POLICY_OBJECT_GET, "teams", "vision/a/b");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.who = &bob;		/* no team attribute: matches nothing */
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.who = NULL;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	/* A '*' in a value is a literal byte. */
	r = req(POLICY_OBJECT_GET, "site", "par*s");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r = req(POLICY_OBJECT_GET, "site", "paris");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	/* An empty value is present, and empty. */
	r = req(POLICY_OBJECT_GET, "e", "/x");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r = req(POLICY_OBJECT_GET, "m", "x");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r = req(POLICY_OBJECT_GET, "m", "/x");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r = req(POLICY_OBJECT_GET, "two", "AKALICE-research");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r = req(POLICY_OBJECT_GET, "two", "AKALICE-researcher");
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);
}
END_TEST

/* A missing attribute in a deny's resource: that deny matches nothing. */
START_TEST(variables_deny)
{
	struct policy *p = parse_ok("{\"version\":1,\"statements\":["
		"{\"effect\":\"allow\",\"actions\":[\"*\"],"
		"\"resources\":[\"*\"]},"
		"{\"effect\":\"deny\",\"actions\":[\"*\"],"
		"\"resources\":[\"*${principal.blocked}*\"]}]}");
	struct policy_request r = req(POLICY_OBJECT_GET, "b", "k");
	static const struct policy_attr blocked[] = { { "blocked", "" } };
	const struct policy_principal carol = { .id = "C", .attrs = blocked,
						.n_attrs = 1 };

	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.who = &carol;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY_EXPLICIT);
	policy_free(p);
}
END_TEST

/* More distinct attribute variables than the evaluator caches. */
START_TEST(variables_many)
{
	struct policy_attr attrs[40];
	char names[40][8], values[40][8], *res;
	struct policy_principal who = { .id = "id", .attrs = attrs,
					.n_attrs = 40 };
	struct policy_request r;
	struct policy *p;
	size_t o = 0, cap = 4096;

	res = tu_xmalloc(cap);
	res[0] = '\0';
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "a%d", i);
		snprintf(values[i], sizeof(values[i]), "v%d", i);
		attrs[i].name = names[i];
		attrs[i].value = values[i];
		o += (size_t)snprintf(res + o, cap - o, "%s\"b/${principal.a%d}"
				      "/${principal.a%d}\"", i ? "," : "",
				      i, i);
	}
	p = allow_get(res);
	for (int i = 0; i < 40; i++) {
		char key[32];

		snprintf(key, sizeof(key), "v%d/v%d", i, i);
		r = req(POLICY_OBJECT_GET, "b", key);
		r.who = &who;
		ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
		snprintf(key, sizeof(key), "v%d/v%d", i, (i + 1) % 40);
		r.keylen = strlen(key);
		ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	}
	who.n_attrs = 35;	/* a35..a39 gone */
	r = req(POLICY_OBJECT_GET, "b", "v36/v36");
	r.who = &who;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);
	free(res);
}
END_TEST

/* ---- conditions ----------------------------------------------------- */

static struct policy *allow_if(const char *conds)
{
	char *m, *doc;
	struct policy *p;

	ck_assert_int_ge(asprintf(&m, AR ",\"conditions\":%s", conds), 0);
	doc = one(m);
	p = parse_ok(doc);
	free(doc);
	free(m);
	return p;
}

static enum policy_decision from(const struct policy *p,
				 const struct sockaddr *sa)
{
	struct policy_request r = req(POLICY_OBJECT_GET, "b", "k");

	r.peer = sa;
	return policy_eval(p, &r);
}

static bool from4(const struct policy *p, const char *addr)
{
	struct sockaddr_in s = sin4(addr);

	return from(p, (struct sockaddr *)&s) == POLICY_ALLOW;
}

static bool from6(const struct policy *p, const char *addr)
{
	struct sockaddr_in6 s = sin6(addr);

	return from(p, (struct sockaddr *)&s) == POLICY_ALLOW;
}

START_TEST(cond_ipv4)
{
	struct policy *p = allow_if("{\"source_ip\":[\"10.1.2.0/23\","
				    "\"192.168.7.9/32\",\"172.16.99.1/12\"]}");
	struct { sa_family_t f; char path[108]; } un = { AF_UNIX, "x" };

	ck_assert(from4(p, "10.1.2.0"));
	ck_assert(from4(p, "10.1.3.255"));
	ck_assert(!from4(p, "10.1.4.0"));
	ck_assert(!from4(p, "10.1.1.255"));
	ck_assert(from4(p, "192.168.7.9"));
	ck_assert(!from4(p, "192.168.7.8"));
	ck_assert(!from4(p, "192.168.7.10"));
	/* Host bits of the CIDR are ignored: 172.16.0.0/12. */
	ck_assert(from4(p, "172.16.0.0"));
	ck_assert(from4(p, "172.31.255.255"));
	ck_assert(!from4(p, "172.32.0.0"));
	/* An IPv4 client on a dual-stack socket. */
	ck_assert(from6(p, "::ffff:10.1.3.4"));
	ck_assert(!from6(p, "::ffff:10.1.4.4"));
	/* Not mapped: ::10.1.3.4 is an IPv6 address. */
	ck_assert(!from6(p, "::10.1.3.4"));
	ck_assert(!from6(p, "::1"));
	/* No peer, or one that is neither family. */
	ck_assert_int_eq(from(p, NULL), POLICY_DENY);
	ck_assert_int_eq(from(p, (struct sockaddr *)&un), POLICY_DENY);
	policy_free(p);

	p = allow_if("{\"source_ip\":\"0.0.0.0/0\"}");
	ck_assert(from4(p, "0.0.0.0"));
	ck_assert(from4(p, "255.255.255.255"));
	ck_assert(from6(p, "::ffff:1.2.3.4"));
	ck_assert(!from6(p, "2001:db8::1"));
	ck_assert_int_eq(from(p, NULL), POLICY_DENY);
	policy_free(p);

	/* One address. */
	p = allow_if("{\"source_ip\":[\"127.0.0.1\"]}");
	ck_assert(from4(p, "127.0.0.1"));
	ck_assert(!from4(p, "127.0.0.2"));
	policy_free(p);

	p = allow_if("{\"source_ip\":[\"10.0.0.1/31\"]}");
	ck_assert(from4(p, "10.0.0.0"));
	ck_assert(from4(p, "10.0.0.1"));
	ck_assert(!from4(p, "10.0.0.2"));
	policy_free(p);
}
END_TEST

START_TEST(cond_ipv6)
{
	struct policy *p = allow_if("{\"source_ip\":[\"2001:db8:a::/48\","
				    "\"::1/128\",\"fe80::/10\","
				    "\"2001:db8:ff::7/127\"]}");

	ck_assert(from6(p, "2001:db8:a::"));
	ck_assert(from6(p, "2001:db8:a:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!from6(p, "2001:db8:b::"));
	ck_assert(!from6(p, "2001:db8:9:ffff::1"));
	ck_assert(from6(p, "::1"));
	ck_assert(!from6(p, "::2"));
	ck_assert(!from6(p, "::"));
	ck_assert(from6(p, "fe80::1"));
	ck_assert(from6(p, "febf:ffff::1"));
	ck_assert(!from6(p, "fec0::1"));
	ck_assert(from6(p, "2001:db8:ff::6"));
	ck_assert(from6(p, "2001:db8:ff::7"));
	ck_assert(!from6(p, "2001:db8:ff::8"));
	/* An IPv4 peer never matches an IPv6 CIDR. */
	ck_assert(!from4(p, "127.0.0.1"));
	ck_assert(!from4(p, "0.0.0.1"));
	policy_free(p);

	p = allow_if("{\"source_ip\":[\"::/0\"]}");
	ck_assert(from6(p, "::"));
	ck_assert(from6(p, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!from4(p, "1.2.3.4"));
	ck_assert(!from6(p, "::ffff:1.2.3.4"));	/* that is IPv4 */
	policy_free(p);
}
END_TEST

START_TEST(cond_time)
{
	struct policy *p = allow_if("{\"not_before\":\"2026-01-01T00:00:00Z\","
				    "\"not_after\":\"2027-01-01T00:00:00Z\"}");
	struct policy_request r = req(POLICY_OBJECT_GET, "b", "k");

	/* [not_before, not_after): the first inclusive, the second not. */
	r.now_ms = T2026;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.now_ms = T2026 - 1;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.now_ms = T2027 - 1;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.now_ms = T2027;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.now_ms = INT64_MIN;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.now_ms = INT64_MAX;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);

	/* Fractions to the millisecond; leap days; far years. */
	p = allow_if("{\"not_before\":\"2000-02-29T23:59:59.25Z\","
		     "\"not_after\":\"9999-12-31T23:59:59.999999Z\"}");
	r.now_ms = 951868799250LL;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.now_ms--;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.now_ms = 253402300799998LL;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.now_ms++;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);

	p = allow_if("{\"not_after\":\"1970-01-01T00:00:00.001Z\"}");
	r.now_ms = 0;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.now_ms = 1;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.now_ms = -62162035200000LL;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	policy_free(p);

	p = allow_if("{\"not_before\":\"0000-03-01T00:00:00Z\"}");
	r.now_ms = -62162035200000LL;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.now_ms--;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);
}
END_TEST

START_TEST(cond_principal)
{
	struct policy *p = allow_if("{\"principal\":{\"team\":[\"nlp\","
				    "\"vision\"],\"dept\":\"research\"}}");
	struct policy_request r = req(POLICY_OBJECT_GET, "b", "k");
	struct policy_attr attrs[] = { { "dept", "research" },
				       { "team", "Vision" } };
	struct policy_principal who = { .id = "X", .attrs = attrs,
					.n_attrs = 2 };

	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);	/* alice */
	r.who = &who;		/* values compare exactly */
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	attrs[1].value = "nlp";
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	attrs[0].value = "research ";
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	attrs[0].value = "research";
	who.n_attrs = 1;	/* no team */
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.who = &bob;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.who = NULL;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);

	/* "id" is the access key id. */
	p = allow_if("{\"principal\":{\"id\":[\"AKBOB\",\"AKCAROL\"]}}");
	r.who = &bob;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.who = &alice;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);
}
END_TEST

/* object_tags: the request's tags (a put's, or the object's) decide;
 * unknown tags (a listing) match no such statement, allow or deny. */
START_TEST(cond_object_tags)
{
	struct policy *p = allow_if("{\"object_tags\":{\"license\":[\"cc-by\","
				    "\"cc0\"],\"stage\":\"final\"}}");
	struct policy_request r = req(POLICY_OBJECT_GET, "b", "k");
	struct policy_attr tags[] = { { "stage", "final" },
				      { "license", "cc0" } };

	ck_assert(policy_uses_tags(p, POLICY_OBJECT_GET));
	ck_assert(!policy_uses_tags(p, POLICY_OBJECT_PUT));
	ck_assert(!policy_uses_tags(NULL, POLICY_OBJECT_GET));
	ck_assert(!policy_allows_all(p, POLICY_OBJECT_GET));
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);	/* unknown */
	r.tags_known = true;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);	/* none */
	r.tags = tags;
	r.n_tags = 2;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	tags[1].value = "CC0";		/* values compare exactly */
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	tags[1].value = "cc-by";
	r.n_tags = 1;			/* no license tag */
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.n_tags = 2;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.tags_known = false;		/* a listing: tags not known */
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);

	/* A deny on tags: only where the tags are known and match. */
	p = parse_ok("{\"version\":1,\"statements\":["
		     "{\"effect\":\"allow\",\"actions\":[\"*\"],"
		     "\"resources\":[\"*\"]},"
		     "{\"effect\":\"deny\",\"actions\":[\"object:get\"],"
		     "\"resources\":[\"*\"],\"conditions\":{\"object_tags\":"
		     "{\"secret\":\"yes\"}}}]}");
	r = req(POLICY_OBJECT_GET, "b", "k");
	tags[0] = (struct policy_attr){ "secret", "yes" };
	ck_assert(!policy_allows_all(p, POLICY_OBJECT_GET));
	ck_assert(policy_allows_all(p, POLICY_OBJECT_PUT));
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.tags = tags;
	r.n_tags = 1;
	r.tags_known = true;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY_EXPLICIT);
	policy_free(p);

	refused_cond("{\"object_tags\":[]}",
		     "statement 1: object_tags: not an object");
	refused_cond("{\"object_tags\":{}}", "statement 1: object_tags: empty");
	refused_cond("{\"object_tags\":{\"\":\"x\"}}",
		     "statement 1: object_tags: bad tag name \"\"");
	refused_cond("{\"object_tags\":{\"a\":[]}}",
		     "statement 1: object_tags \"a\": empty");
}
END_TEST

/* Every condition must hold; a deny's conditions limit the deny. */
START_TEST(cond_all)
{
	struct policy *p = parse_ok("{\"version\":1,\"statements\":["
		"{\"effect\":\"allow\",\"actions\":[\"*\"],"
		"\"resources\":[\"*\"],\"conditions\":{"
		"\"source_ip\":[\"10.0.0.0/8\"],"
		"\"principal\":{\"team\":\"vision\"},"
		"\"not_before\":\"2026-01-01T00:00:00Z\"}},"
		"{\"effect\":\"deny\",\"actions\":[\"*\"],"
		"\"resources\":[\"*\"],\"conditions\":{"
		"\"source_ip\":[\"10.9.0.0/16\"]}}]}");
	struct sockaddr_in a = sin4("10.1.1.1"), b = sin4("11.1.1.1"),
			   c = sin4("10.9.1.1");
	struct policy_request r = req(POLICY_OBJECT_GET, "b", "k");

	r.peer = (struct sockaddr *)&a;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_ALLOW);
	r.now_ms = T2026 - 1;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.now_ms = T2026;
	r.who = &bob;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.who = &alice;
	r.peer = (struct sockaddr *)&b;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	r.peer = (struct sockaddr *)&c;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY_EXPLICIT);
	r.peer = NULL;
	ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY);
	policy_free(p);
}
END_TEST

/* ---- listings ------------------------------------------------------- */

static bool may_list(const struct policy *p, const char *bucket,
		     const char *prefix)
{
	struct policy_request r = req(POLICY_OBJECT_LIST, bucket, prefix);

	return policy_may_allow_prefix(p, &r);
}

static struct policy *list_policy(const char *allow, const char *deny)
{
	char *doc;
	struct policy *p;

	ck_assert_int_ge(asprintf(&doc, "{\"version\":1,\"statements\":["
				  "{\"effect\":\"allow\",\"actions\":"
				  "[\"object:list\"],\"resources\":[%s]}"
				  "%s%s%s]}",
				  allow, deny ? ",{\"effect\":\"deny\","
				  "\"actions\":[\"object:*\"],\"resources\":[" :
				  "", deny ? deny : "", deny ? "]}" : ""), 0);
	p = parse_ok(doc);
	free(doc);
	return p;
}

START_TEST(prefix_allow)
{
	struct policy *p = list_policy("\"b/x/*\"", NULL);

	ck_assert(may_list(p, "b", ""));	/* "b/" can grow into it */
	ck_assert(may_list(p, "b", "x"));
	ck_assert(may_list(p, "b", "x/"));
	ck_assert(may_list(p, "b", "x/deep/er"));
	ck_assert(!may_list(p, "b", "y"));
	ck_assert(!may_list(p, "b", "xy"));
	ck_assert(!may_list(p, "c", ""));
	ck_assert(!may_list(p, "bb", ""));
	policy_free(p);

	/* Without a star, the prefix may not run past the pattern. */
	p = list_policy("\"b/file.txt\"", NULL);
	ck_assert(may_list(p, "b", ""));
	ck_assert(may_list(p, "b", "file"));
	ck_assert(may_list(p, "b", "file.txt"));
	ck_assert(!may_list(p, "b", "file.txt2"));
	ck_assert(!may_list(p, "b", "g"));
	policy_free(p);

	/* A star in the middle: the literal start decides. */
	p = list_policy("\"b/logs/*/today\"", NULL);
	ck_assert(may_list(p, "b", "lo"));
	ck_assert(may_list(p, "b", "logs/2026/x"));
	ck_assert(!may_list(p, "b", "logz"));
	policy_free(p);

	/* Variables resolve; a missing one matches nothing. */
	p = list_policy("\"home/${principal.id}/*\",\"t/${principal.nope}*\"",
			NULL);
	ck_assert(may_list(p, "home", ""));
	ck_assert(may_list(p, "home", "AKAL"));
	ck_assert(may_list(p, "home", "AKALICE/docs"));
	ck_assert(!may_list(p, "home", "AKB"));
	ck_assert(!may_list(p, "t", ""));
	policy_free(p);
	ck_assert(!policy_may_allow_prefix(NULL, NULL));
}
END_TEST

START_TEST(prefix_deny)
{
	struct policy *p = list_policy("\"*\"", "\"b/*\"");

	/* Everything under "b/" is denied: nothing to list there. */
	ck_assert(!may_list(p, "b", ""));
	ck_assert(!may_list(p, "b", "x/"));
	ck_assert(may_list(p, "c", ""));
	policy_free(p);

	/* A deny that covers only part of the prefix leaves the listing to
	 * per-entry checks. */
	p = list_policy("\"*\"", "\"b/secret/*\",\"b/x\"");
	ck_assert(may_list(p, "b", ""));
	ck_assert(may_list(p, "b", "sec"));
	ck_assert(!may_list(p, "b", "secret/"));
	ck_assert(!may_list(p, "b", "secret/a"));
	ck_assert(may_list(p, "b", "x"));	/* "b/x" no star: only one */
	policy_free(p);

	/* Per entry, the deny still applies. */
	p = list_policy("\"*\"", "\"b/secret/*\"");
	{
		struct policy_request r = req(POLICY_OBJECT_LIST, "b",
					      "secret/a");

		ck_assert_int_eq(policy_eval(p, &r), POLICY_DENY_EXPLICIT);
	}
	policy_free(p);
}
END_TEST

START_TEST(allows_all)
{
	struct policy *p = parse_ok("{\"version\":1,\"statements\":["
		"{\"effect\":\"allow\",\"actions\":[\"object:*\"],"
		"\"resources\":[\"b/*\",\"*\"]},"
		"{\"effect\":\"allow\",\"actions\":[\"bucket:create\"],"
		"\"resources\":[\"*\"],\"conditions\":"
		"{\"source_ip\":\"::/0\"}},"
		"{\"effect\":\"allow\",\"actions\":[\"bucket:list\"],"
		"\"resources\":[\"**\"]},"
		"{\"effect\":\"allow\",\"actions\":[\"bucket:delete\"],"
		"\"resources\":[\"${principal.id}\"]},"
		"{\"effect\":\"deny\",\"actions\":[\"object:delete\"],"
		"\"resources\":[\"nothing-at-all\"]}]}");

	ck_assert(policy_allows_all(p, POLICY_OBJECT_GET));
	ck_assert(policy_allows_all(p, POLICY_OBJECT_PUT));
	ck_assert(policy_allows_all(p, POLICY_OBJECT_LIST));
	/* Denied somewhere; allowed with a condition; "**" is "*". */
	ck_assert(!policy_allows_all(p, POLICY_OBJECT_DELETE));
	ck_assert(!policy_allows_all(p, POLICY_BUCKET_CREATE));
	ck_assert(policy_allows_all(p, POLICY_BUCKET_LIST));
	ck_assert(!policy_allows_all(p, POLICY_BUCKET_DELETE));
	ck_assert(!policy_allows_all(p, POLICY_BUCKET_LIFECYCLE));
	ck_assert(!policy_allows_all(p, POLICY_OBJECT_GET | POLICY_OBJECT_PUT));
	ck_assert(!policy_allows_all(p, 0));
	ck_assert(!policy_allows_all(NULL, POLICY_OBJECT_GET));
	policy_free(p);
}
END_TEST

/* A small policy decides in about a microsecond (far less unsanitized). */
START_TEST(eval_speed)
{
	struct policy *p = parse_ok("{\"version\":1,\"statements\":["
		"{\"effect\":\"allow\",\"actions\":[\"object:get\","
		"\"object:list\"],\"resources\":[\"datasets/imagenet/*\","
		"\"home/${principal.id}/*\"],\"conditions\":{\"source_ip\":"
		"[\"10.0.0.0/8\",\"::1/128\"],\"principal\":{\"team\":"
		"[\"vision\",\"nlp\"]}}},"
		"{\"effect\":\"deny\",\"actions\":[\"object:delete\"],"
		"\"resources\":[\"*\"]}]}");
	struct sockaddr_in a = sin4("10.2.3.4");
	struct policy_request r = req(POLICY_OBJECT_GET, "home",
				      "AKALICE/train/shard-000123.tar");
	const int n = 200000;
	uint64_t t0, ns;
	int allowed = 0;

	r.peer = (struct sockaddr *)&a;
	t0 = tu_now_ns();
	for (int i = 0; i < n; i++)
		allowed += policy_eval(p, &r) == POLICY_ALLOW;
	ns = (tu_now_ns() - t0) / (uint64_t)n;
	ck_assert_int_eq(allowed, n);
	/* Printed for people, not asserted: speed goals live in
	 * benchmarks, not in unit tests. */
	printf("policy_eval: %llu ns per request\n", (unsigned long long)ns);
	policy_free(p);
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, parse_good);
	tcase_add_test(tc, parse_top_refusals);
	tcase_add_test(tc, parse_too_many);
	tcase_add_test(tc, parse_statement_refusals);
	tcase_add_test(tc, parse_condition_refusals);
	tcase_add_test(tc, parse_error_buffer);
	tcase_add_test(tc, parse_not_terminated);
	tcase_add_test(tc, action_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("match");
	tcase_add_test(tc, glob_basics);
	tcase_add_test(tc, glob_key_bytes);
	tcase_add_test(tc, glob_pathological);
	tcase_add_test(tc, bucket_vs_object);
	tcase_add_test(tc, actions_select);
	tcase_add_test(tc, decisions);
	tcase_add_test(tc, variables);
	tcase_add_test(tc, variables_deny);
	tcase_add_test(tc, variables_many);
	suite_add_tcase(s, tc);

	tc = tcase_create("conditions");
	tcase_add_test(tc, cond_ipv4);
	tcase_add_test(tc, cond_ipv6);
	tcase_add_test(tc, cond_time);
	tcase_add_test(tc, cond_principal);
	tcase_add_test(tc, cond_object_tags);
	tcase_add_test(tc, cond_all);
	suite_add_tcase(s, tc);

	tc = tcase_create("listing");
	tcase_add_test(tc, prefix_allow);
	tcase_add_test(tc, prefix_deny);
	tcase_add_test(tc, allows_all);
	tcase_add_test(tc, eval_speed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
