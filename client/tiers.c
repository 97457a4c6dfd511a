// SPDX-License-Identifier: Apache-2.0
/*
 * libstrata: bucket lifecycle rules and node counters (LIFECYCLE_SET,
 * LIFECYCLE_GET, NODE_STATS; PROTOCOL.md §5.16-5.18).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "proto.h"
#include "strata/error.h"
#include "strata/strata.h"
#include "banned.h"

struct lc_call {
	uint8_t op;
	const char *bucket;
	struct proto_list rules;	/* SET: encoded rules */
	struct strata_lifecycle_rule *out;	/* GET */
	size_t nout;
};

static int lc_fn(struct conn *cn, void *arg, bool *unsafe)
{
	struct lc_call *lc = arg;
	uint8_t *fields = cn->out + PROTO_HEADER_LEN;
	struct proto_lifecycle_req m = {
		.bucket = { lc->bucket, strlen(lc->bucket) },
		.rules = lc->rules,
	};
	struct resp r;
	size_t len = 0;
	int rc;

	(void)unsafe;		/* setting rules twice is the same */
	rc = proto_lifecycle_req_encode(&m, fields, PROTO_MAX_FIELDS_LEN, &len);
	if (rc)
		return rc;
	rc = req_call(cn, lc->op, len, &r);
	if (rc)
		return rc;
	if (lc->op == PROTO_OP_LIFECYCLE_SET) {
		rc = proto_empty_decode(cn->fields, r.fields_len);
	} else {
		struct proto_lifecycle_resp resp;
		struct proto_list_iter it;
		struct proto_str e;
		size_t n = 0;

		rc = proto_lifecycle_resp_decode(cn->fields, r.fields_len,
						 &resp);
		if (!rc) {
			free(lc->out);
			lc->out = calloc(resp.rules.count ? resp.rules.count : 1,
					 sizeof(*lc->out));
			if (!lc->out)
				rc = -ENOMEM;
		}
		proto_list_iter_init(&it, &resp.rules);
		while (!rc && n < resp.rules.count &&
		       proto_list_next(&it, &e) == 1) {
			struct proto_rule pr;

			if (proto_rule_parse(&e, &pr) ||
			    pr.prefix.len >= sizeof(lc->out[n].prefix)) {
				rc = STRATA_EPROTO;
				break;
			}
			lc->out[n].action = pr.action == PROTO_RULE_COLD ?
					    STRATA_LC_COLD : STRATA_LC_DELETE;
			lc->out[n].age_s = pr.age_s;
			memcpy(lc->out[n].prefix, pr.prefix.s, pr.prefix.len);
			lc->out[n].prefix[pr.prefix.len] = '\0';
			n++;
		}
		if (!rc && n != resp.rules.count)
			rc = STRATA_EPROTO;
		lc->nout = n;
	}
	if (rc)
		conn_break(cn);
	return rc;
}

int strata_lifecycle_set(strata_client *c, const char *bucket,
			 const struct strata_lifecycle_rule *rules, size_t n)
{
	struct lc_call lc = { .op = PROTO_OP_LIFECYCLE_SET, .bucket = bucket };
	struct proto_str *el = NULL;
	char *text = NULL;
	uint8_t *enc = NULL;
	int rc = 0;

	if (!c || !bucket || (n && !rules))
		return -EINVAL;
	if (n > PROTO_MAX_RULES)
		return -E2BIG;
	if (n) {
		el = calloc(n, sizeof(*el));
		text = malloc(n * (PROTO_MAX_RULE_LEN + 1));
		enc = malloc(PROTO_MAX_FIELDS_LEN);
		if (!el || !text || !enc)
			rc = -ENOMEM;
		for (size_t i = 0; !rc && i < n; i++) {
			struct proto_rule pr = {
				.action = rules[i].action == STRATA_LC_COLD ?
					  PROTO_RULE_COLD :
					  rules[i].action == STRATA_LC_DELETE ?
					  PROTO_RULE_DELETE : 0,
				.age_s = rules[i].age_s,
				.prefix = { rules[i].prefix,
					    strnlen(rules[i].prefix,
						    sizeof(rules[i].prefix)) },
			};
			char *t = text + i * (PROTO_MAX_RULE_LEN + 1);
			int len = pr.prefix.len < sizeof(rules[i].prefix) ?
				  proto_rule_format(&pr, t,
						    PROTO_MAX_RULE_LEN + 1) :
				  -EINVAL;

			if (len < 0)
				rc = -EINVAL;
			else
				el[i] = (struct proto_str){ t, (size_t)len };
		}
		if (!rc)
			rc = proto_list_build(enc, PROTO_MAX_FIELDS_LEN, el, n,
					      &lc.rules);
	}
	if (!rc)
		rc = client_call(c, lc_fn, &lc);
	free(el);
	free(text);
	free(enc);
	return rc;
}

int strata_lifecycle_get(strata_client *c, const char *bucket,
			 struct strata_lifecycle_rule **rules, size_t *n)
{
	struct lc_call lc = { .op = PROTO_OP_LIFECYCLE_GET, .bucket = bucket };
	int rc;

	if (!c || !bucket || !rules || !n)
		return -EINVAL;
	*rules = NULL;
	*n = 0;
	rc = client_call(c, lc_fn, &lc);
	if (rc) {
		free(lc.out);
		return rc;
	}
	*rules = lc.out;
	*n = lc.nout;
	return 0;
}

void strata_lifecycle_free(struct strata_lifecycle_rule *rules)
{
	free(rules);
}

/* ---- node counters ---- */

struct stats_call {
	strata_node_stat_fn fn;
	void *arg;
	int cb_rc;
};

static int stats_fn(struct conn *cn, void *arg, bool *unsafe)
{
	struct stats_call *sc = arg;
	struct proto_stats_resp m;
	struct proto_list_iter it;
	struct proto_str e;
	struct resp r;
	int rc;

	(void)unsafe;
	rc = req_call(cn, PROTO_OP_NODE_STATS, 0, &r);
	if (rc)
		return rc;
	rc = proto_stats_resp_decode(cn->fields, r.fields_len, &m);
	if (rc) {
		conn_break(cn);
		return rc;
	}
	/* The response is read whole: callbacks may take their time. */
	proto_list_iter_init(&it, &m.stats);
	while (proto_list_next(&it, &e) == 1) {
		char name[PROTO_MAX_STAT_LEN + 1];
		const char *eq = memchr(e.s, '=', e.len);
		size_t nlen;

		if (!eq || eq == e.s)
			continue;	/* not name=value: skipped */
		nlen = (size_t)(eq - e.s);
		memcpy(name, e.s, e.len);
		name[e.len] = '\0';
		name[nlen] = '\0';
		sc->cb_rc = sc->fn(sc->arg, name, name + nlen + 1);
		if (sc->cb_rc)
			break;
	}
	return 0;
}

int strata_node_stats(strata_client *c, strata_node_stat_fn fn, void *arg)
{
	struct stats_call sc = { .fn = fn, .arg = arg };
	int rc;

	if (!c || !fn)
		return -EINVAL;
	rc = client_call(c, stats_fn, &sc);
	return rc ? rc : sc.cb_rc;
}
