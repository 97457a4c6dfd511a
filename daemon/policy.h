// SPDX-License-Identifier: Apache-2.0
/*
 * policy: attribute-based access policies (JSON documents) and their
 * evaluation.  The document format is strata-policy(7); a summary:
 *
 *   {
 *     "version": 1,
 *     "statements": [
 *       { "effect": "allow",                    (or "deny")
 *         "actions": ["object:get", "object:list"],
 *         "resources": ["datasets/imagenet/ *", "home/${principal.id}/ *"],
 *         "conditions": {                       (optional; all must hold)
 *           "source_ip": ["127.0.0.0/8", "::1/128"],
 *           "principal": { "team": ["vision", "nlp"] },
 *           "object_tags": { "license": ["cc-by", "cc0"] },
 *           "not_before": "2026-01-01T00:00:00Z",
 *           "not_after":  "2027-01-01T00:00:00Z" } } ] }
 *
 * Actions: bucket:create, bucket:delete, bucket:list, bucket:lifecycle,
 * object:put, object:get, object:stat, object:delete, object:list, and the
 * wildcards "*", "bucket:*", "object:*".
 *
 * Resources: glob patterns over "bucket" (bucket actions) or "bucket/key"
 * (object actions); '*' matches any run of bytes, '/' included; no other
 * character is special.  "${principal.id}" (the access key id) and
 * "${principal.NAME}" (the key's attribute NAME) are replaced at evaluation
 * time; a statement naming an attribute the principal lacks matches
 * nothing.  A substituted value is literal (a '*' in it is no wildcard).
 *
 * Conditions: source_ip is a CIDR list (or one; a bare address is /32 or
 * /128; an IPv4-mapped IPv6 peer is its IPv4 address; no peer matches
 * none); principal maps attribute names to allowed values ("id" is the
 * access key id); object_tags maps tag names to allowed values (the
 * object's tags, or those a put writes: r->tags); the statement holds for
 * not_before <= now < not_after.
 *
 * (The examples' " *" is "*": a C comment cannot hold slash-star.)
 *
 * Evaluation: default deny; a matching deny statement wins over any
 * matching allow.  A statement matches when one of its actions, one of its
 * resources and every condition match.
 *
 * Threads: a parsed policy is immutable; evaluate it from any thread.
 */
#ifndef STRATA_POLICY_H
#define STRATA_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Largest policy document accepted (bytes of JSON). */
#define POLICY_MAX_LEN (64u << 10)
/* Most statements in one document, resources or actions in one statement. */
#define POLICY_MAX_STATEMENTS 256u
#define POLICY_MAX_ITEMS 256u

enum policy_action {
	POLICY_BUCKET_CREATE = 1u << 0,
	POLICY_BUCKET_DELETE = 1u << 1,
	POLICY_BUCKET_LIST = 1u << 2,
	POLICY_BUCKET_LIFECYCLE = 1u << 3,
	POLICY_OBJECT_PUT = 1u << 8,
	POLICY_OBJECT_GET = 1u << 9,
	POLICY_OBJECT_STAT = 1u << 10,
	POLICY_OBJECT_DELETE = 1u << 11,
	POLICY_OBJECT_LIST = 1u << 12,
};
#define POLICY_BUCKET_ACTIONS 0x00ffu
#define POLICY_OBJECT_ACTIONS 0xff00u

enum policy_decision {
	POLICY_DENY = 0,		/* no allow statement matched */
	POLICY_DENY_EXPLICIT = 1,	/* a deny statement matched */
	POLICY_ALLOW = 2,
};

/* One attribute of the principal (an access key's attributes). */
struct policy_attr {
	const char *name;
	const char *value;
};

/* Who asks, from where, when. */
struct policy_principal {
	const char *id;				/* access key id */
	const struct policy_attr *attrs;	/* sorted or not; n_attrs */
	size_t n_attrs;
};

struct policy_request {
	const struct policy_principal *who;
	uint32_t action;		/* one enum policy_action bit */
	const char *bucket;		/* NUL-terminated */
	const char *key;		/* object actions: the key or, for
					 * object:list, the listed prefix
					 * (may be empty); NULL otherwise */
	size_t keylen;			/* key bytes (keys may hold any byte
					 * but NUL) */
	const struct sockaddr *peer;	/* AF_INET or AF_INET6; NULL: no
					 * source_ip condition matches */
	int64_t now_ms;			/* Unix time, milliseconds */
	/* The object's tags, for object_tags conditions: object:put the
	 * tags it writes, the other object actions the object's current
	 * ones (none when it does not exist).  tags_known false (a listing,
	 * a bucket action, tags not looked up): no object_tags condition
	 * holds, so such a statement matches nothing. */
	const struct policy_attr *tags;
	size_t n_tags;
	bool tags_known;
};

struct policy;

/*
 * Parse and check a policy document.
 *   [in]  json, len   the document (need not be NUL-terminated)
 *   [out] out         the parsed policy, owned by the caller until
 *                     policy_free(); NULL on failure
 *   [out] err, errlen a one-line reason on failure ("statement 2: unknown
 *                     action \"object:Get\""), always NUL-terminated,
 *                     cut short to fit (err may be NULL when errlen is 0)
 * Unknown top-level or statement members, a wrong version, empty actions
 * or resources, an empty pattern, an unknown action, condition or
 * variable, a bad CIDR or time, a pattern with an unterminated "${", and
 * documents over POLICY_MAX_LEN are refused.  The result holds nothing of
 * jansson's.  Returns 0, STRATA_EBADPOLICY, -ENOMEM.
 */
int policy_parse(const char *json, size_t len, struct policy **out,
		 char *err, size_t errlen);
/* p may be NULL. */
void policy_free(struct policy *p);

/*
 * Decide one request.  POLICY_DENY for a NULL p (no policy), a NULL r or
 * r->bucket, or an action that is not one known bit.  An object request's
 * key may be NULL (the empty key).  Allocates nothing.
 */
enum policy_decision policy_eval(const struct policy *p,
				 const struct policy_request *r);

/*
 * For listings: whether some object whose "bucket/key" starts with
 * "bucket/<r->key>" (r->key is the listed prefix) could be allowed
 * r->action, i.e. an allow statement's action and conditions match and one
 * of its resources can match a string with that start, and no deny
 * statement matches every such string (its resource pattern ends in '*'
 * and matches "bucket/<prefix>").  The listing then filters each entry
 * with policy_eval().  For a bucket action the start is r->bucket alone.
 * Whenever policy_eval() allows an object request, this holds for every
 * prefix of its key.
 */
bool policy_may_allow_prefix(const struct policy *p,
			     const struct policy_request *r);

/*
 * Whether the policy allows r->action on every bucket and key with no
 * condition at all (e.g. {"effect":"allow","actions":["*"],
 * "resources":["*"]} and no deny statement): such principals' requests
 * need no per-request check of that action (the I/O loops' answers).
 */
bool policy_allows_all(const struct policy *p, uint32_t action);

/*
 * Whether a statement for action has an object_tags condition: only then
 * need the caller look the object's tags up (r->tags_known).  False for
 * a NULL policy.
 */
bool policy_uses_tags(const struct policy *p, uint32_t action);

/* Action name <-> bit ("object:get" <-> POLICY_OBJECT_GET); NULL / 0 for
 * an unknown one. */
const char *policy_action_name(uint32_t action);
uint32_t policy_action_parse(const char *name);

#endif
