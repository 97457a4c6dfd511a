// SPDX-License-Identifier: Apache-2.0
/*
 * server: requests from the wire to the store (see server.h for the state
 * machines).
 *
 * Invariants
 * - Every length off the wire is bounded by proto_header_decode() before a
 *   byte is buffered: the input buffer never grows past one frame
 *   (PROTO_HEADER_LEN + PROTO_MAX_FIELDS_LEN + PROTO_MAX_BODY_LEN).
 * - Nothing but HELLO, AUTH and PING is served before AUTH succeeds, nor
 *   after the connection's access key was deleted (KEY_DELETE).
 * - A request id is live at most once per connection; a duplicate is a
 *   protocol error.
 * - A small frame is gathered into one buffer and written at once (one
 *   TLS record); a large body is written from where it lies, after its
 *   header, so bulk data is not copied once more on its way out.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "anscache.h"
#include "audit.h"
#include "keys.h"
#include "log.h"
#include "meta.h"
#include "metrics.h"
#include "net.h"
#include "policy.h"
#include "proto.h"
#include "server.h"
#include "store.h"
#include "strata/error.h"
#include "banned.h"

#define FRAME_MAX (PROTO_HEADER_LEN + PROTO_MAX_FIELDS_LEN + PROTO_MAX_BODY_LEN)
#define SERVER_NAME "stratad/0.1.0"

struct server {
	uv_loop_t *loop;
	struct store *s;
	struct server_opts o;
	struct sconn *conns;
	unsigned nconns;
	uv_timer_t auth_timer;		/* closes who never authenticates */
	bool shutting;			/* server_shutdown_begin() ran */
};

/* Uploads with a body under way per connection: each holds up to a chunk
 * of the body in memory until its chunk fills or it ends. */
#define OPEN_PUTS_MAX 4u
/* GETs and BATCH_GETs reading per connection: each may put up to a chunk
 * into the output before it sees the output full and pauses, so those
 * past this wait their turn (a client that does not read then costs the
 * node a few chunks, not max_requests of them). */
#define READS_MAX 8u

#define AUTH_TIMEOUT_MS 10000u
#define AUTH_SWEEP_MS 100u
/* A failed AUTH is answered this long after it arrived (or a sweep
 * later): its answer's timing must not tell an unknown key id (no lookup
 * hit, no unseal, no MAC) from a wrong proof. */
#define AUTH_FAIL_DELAY_MS 50u

/* SC_AUTH_FAILED: the answer waits for auth_sweep(); input is dropped. */
enum sconn_state { SC_HELLO, SC_AUTH, SC_AUTH_FAILED, SC_READY, SC_CLOSING };

enum sreq_kind { RQ_PUT, RQ_GET, RQ_BATCH, RQ_DISCARD };

struct sconn;

/* A request's account, for metrics and the access log: kept in its sreq,
 * or in the sconn while a request that has none is being answered. */
struct meter {
	uint64_t start_ns;		/* uv_hrtime() at its first frame */
	uint64_t in, out;		/* body bytes */
	int status;			/* the error sent, 0 */
	bool done;			/* its last response frame went out */
	/* "bucket/key" escaped (access log), then at target + raw the
	 * bucket and, if has_key, the key's keylen bytes, each
	 * NUL-terminated (audit log); one block, NULL when neither log is
	 * on. */
	char *target;
	size_t raw, keylen;
	bool has_key;
};

struct sreq {
	struct sreq *next;
	struct sconn *c;
	uint64_t id;
	uint8_t op;
	enum sreq_kind kind;
	bool cancelled;
	bool body_open;			/* the request's message has not ended:
					 * CONT frames for it are due */
	struct meter m;
	/* PUT */
	struct store_put *put;
	bool committing;
	bool has_size;			/* the request gave the body's size */
	uint64_t size, got;		/* ... and the body bytes so far */
	/* GET and BATCH_GET: an accumulated body, flushed as frames */
	struct store_get *get;
	bool queued;			/* waits for a read slot (READS_MAX) */
	bool resume_due;		/* server_conn_drain's to resume */
	uint64_t want;			/* GET: the length asked for */
	bool paused;
	bool fields_sent;
	uint8_t *acc;
	size_t acclen;
	uint64_t sent, total;		/* GET: body bytes out / expected */
	/* GET: the rest of a cached chunk not yet written (the output filled
	 * up in the middle of it), kept valid by rest_hold; the get stays
	 * paused until it is out (get_write_rest). */
	const uint8_t *rest;
	size_t rest_len;
	void *rest_hold;
	char *ans_key;			/* GET of a whole object: its key, for
					 * the answer cache (bucket in
					 * ->bucket) */
	size_t ans_keylen;
	struct store_object_info info;
	uint64_t off;
	/* BATCH_GET */
	char bucket[META_BUCKET_MAX + 1];
	char **keys;
	size_t *keylens;
	uint32_t nkeys, bnext;
	bool item_open;
};

struct sconn {
	struct server *srv;
	struct net_conn *nc;		/* NULL once the network closed it */
	struct sconn *next, **pprev;
	enum sconn_state st;
	uint8_t nonce[PROTO_NONCE_LEN];
	char principal[META_AKEY_ID_MAX + 1];
	bool admin;			/* the principal may manage keys */
	bool revoked;			/* its access key was deleted */
	/* Not admin: its access policy (NULL: none, every request is
	 * refused) and attributes, loaded at AUTH and again when KEY_SET
	 * changes them (conn_load_grant). */
	struct policy *pol;
	struct policy_attr *attrs;	/* one block: strings follow */
	struct policy_principal who;
	char deny[PROTO_MAX_TEXT_LEN];	/* why the last -EACCES (may()) */
	uint8_t *rbuf;
	size_t rlen, rcap;
	bool rpaused;			/* a put is not writable */
	bool opaused;			/* output above its mark: no more
					 * requests until it drains */
	uint64_t opened_ms;		/* uv_now() at open (auth deadline) */
	uint64_t in_ms;			/* uv_now() at the last input, or when
					 * reading resumed (body timeout) */
	uint64_t fail_ms;		/* SC_AUTH_FAILED: answer from then */
	uint64_t fail_id;		/* ... to this AUTH request */
	struct meter fail_m;		/* ... whose account waits too */
	bool in_data;			/* re-entrancy guard for input */
	unsigned holds;			/* a caller still uses c: not freed */
	struct sreq *reqs;
	unsigned nreqs;
	uint8_t *wbuf;
	size_t wcap;
	struct meter cur;		/* the frame being handled ... */
	uint64_t cur_id;		/* ... and its request id */
	bool cur_set;
};

static void conn_maybe_free(struct sconn *c);
static void input_process(struct sconn *c);
static struct sreq *req_find(struct sconn *c, uint64_t id);

/* ---- metering ---- */

static struct meter *meter_of(struct sconn *c, uint64_t id)
{
	struct sreq *r = req_find(c, id);

	if (r)
		return &r->m;
	if (c->cur_set && c->cur_id == id)
		return &c->cur;
	return c->st == SC_AUTH_FAILED && c->fail_id == id ? &c->fail_m : NULL;
}

/* Name a request's target for the access and audit logs (bucket, and key
 * if any). */
static void meter_target(struct sconn *c, uint64_t id, const char *bucket,
			 const char *key, size_t keylen)
{
	struct meter *m;
	size_t blen = strlen(bucket), cap, n;
	char *t;

	if ((!c->srv->o.access_log && !c->srv->o.audit) ||
	    !(m = meter_of(c, id)) || m->target)
		return;
	/* Key bytes are anything: escape what would break the line. */
	cap = blen + 2 + 4 * (keylen > 256 ? 256 : keylen) + 4;
	t = malloc(cap + blen + 1 + keylen + 1);
	if (!t)
		return;
	/* The raw names after the escaped ones. */
	m->raw = cap;
	memcpy(t + cap, bucket, blen + 1);
	if (key)
		memcpy(t + cap + blen + 1, key, keylen);
	t[cap + blen + 1 + (key ? keylen : 0)] = 0;
	m->has_key = key != NULL;
	m->keylen = key ? keylen : 0;
	n = (size_t)snprintf(t, cap, "%s%s", bucket, key ? "/" : "");
	for (size_t i = 0; key && i < keylen && i < 256; i++) {
		unsigned char ch = (unsigned char)key[i];

		if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\' || ch == ' ')
			n += (size_t)snprintf(t + n, cap - n, "\\x%02x", ch);
		else
			t[n++] = (char)ch;
	}
	if (key && keylen > 256)
		n += (size_t)snprintf(t + n, cap - n, "...");
	t[n] = 0;
	m->target = t;
}

/* The last frame of a response went out: count it, log it. */
static void meter_done(struct sconn *c, uint8_t op, struct meter *m)
{
	struct server *srv = c->srv;
	uint64_t ns = m ? uv_hrtime() - m->start_ns : 0;

	if (m && m->done)
		return;
	if (srv->o.metrics)
		metrics_request(srv->o.metrics, op, !m || !m->status, ns,
				m ? m->in : 0, m ? m->out : 0);
	if (!m)
		return;
	m->done = true;
	if (srv->o.audit && op != PROTO_OP_HELLO && op != PROTO_OP_PING) {
		const char *name = proto_op_name(op);
		const char *b = m->target ? m->target + m->raw : "";
		struct audit_record ar = {
			.principal = c->principal[0] ? c->principal : "-",
			.peer = c->nc ? net_conn_peer(c->nc) : "-",
			.op = name ? name : "unknown",
			.bucket = b,
			.key = m->has_key ? b + strlen(b) + 1 : NULL,
			.keylen = m->keylen,
			.status = m->status,
			.in = m->in,
			.out = m->out,
		};
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ar.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		audit_append(srv->o.audit, &ar);
	}
	if (srv->o.access_log) {
		const char *name = proto_op_name(op);

		/* status: 0, or the error code sent (strata_strerror()). */
		log_info("access", "%s key=%s op=%s target=\"%s\" status=%d "
			 "in=%" PRIu64 " out=%" PRIu64 " ms=%.3f",
			 c->nc ? net_conn_peer(c->nc) : "-",
			 c->principal[0] ? c->principal : "-",
			 name ? name : "unknown", m->target ? m->target : "",
			 m->status, m->in, m->out, (double)ns / 1e6);
	}
}

/* ---- output ---- */

/*
 * Write one frame.  With hold set (store_get_hold), a body too large to
 * gather is sent from where it is, without a copy, and the hold released
 * once it is encrypted; the hold is released on every path.
 */
static int conn_write_frame_held(struct sconn *c, uint8_t op, uint16_t flags,
				 uint64_t id, const uint8_t *fields,
				 size_t flen, const uint8_t *body, size_t blen,
				 void *hold)
{
	struct proto_header h = {
		.opcode = op, .flags = flags, .id = id,
		.fields_len = (uint32_t)flen, .body_len = (uint32_t)blen,
	};
	/* A large body goes to TLS from where it is (it is cut into 16 KiB
	 * records anyway); only a small frame is gathered into one buffer,
	 * so that it leaves as one record. */
	bool gather = blen < 16384;
	size_t n = PROTO_HEADER_LEN + flen + (gather ? blen : 0);
	int rc;

	if (!c->nc) {
		rc = -ENOTCONN;
		goto out;
	}
	if (n > c->wcap) {
		uint8_t *w = realloc(c->wbuf, n);

		if (!w) {
			rc = -ENOMEM;
			goto out;
		}
		c->wbuf = w;
		c->wcap = n;
	}
	rc = proto_header_encode(&h, c->wbuf);
	if (rc) {
		log_err("server", "refusing to send a bad frame (op %u flags %#x)",
			op, flags);
		goto out;
	}
	if (flen)
		memcpy(c->wbuf + PROTO_HEADER_LEN, fields, flen);
	if (blen && gather)
		memcpy(c->wbuf + PROTO_HEADER_LEN + flen, body, blen);
	rc = net_conn_write(c->nc, c->wbuf, n);
	if (!rc && !gather && hold) {
		rc = net_conn_write_borrowed(c->nc, body, blen,
					     store_hold_release, hold);
		hold = NULL;	/* released by net */
	} else if (!rc && !gather) {
		rc = net_conn_write(c->nc, body, blen);
	}
	if (!rc && c->srv->o.metrics)
		c->srv->o.metrics->bytes_sent += PROTO_HEADER_LEN + flen + blen;
	if ((flags & PROTO_F_RESPONSE) && op != PROTO_OP_GOAWAY) {
		struct meter *m = meter_of(c, id);

		if (m)
			m->out += blen;
		if (flags & PROTO_F_END)
			meter_done(c, op, m);
	}
out:
	if (hold)
		store_hold_release(hold);
	return rc;
}

static int conn_write_frame(struct sconn *c, uint8_t op, uint16_t flags,
			    uint64_t id, const uint8_t *fields, size_t flen,
			    const uint8_t *body, size_t blen)
{
	return conn_write_frame_held(c, op, flags, id, fields, flen, body,
				     blen, NULL);
}

/* An ERROR response; cont when part of the response already went out. */
static void send_error(struct sconn *c, uint8_t op, uint64_t id, int code,
		       const char *msg, bool cont)
{
	struct proto_error e = { .code = code };
	uint8_t f[PROTO_MAX_TEXT_LEN + 64];
	size_t flen;
	int rc;

	struct meter *m = meter_of(c, id);

	if (m && !m->status)
		m->status = code ? code : -EIO;
	if (!msg && code == -EACCES && c->deny[0])
		msg = c->deny;
	if (!msg)
		msg = strata_strerror(code);
	e.message.s = msg;
	e.message.len = strlen(msg);
	if (e.message.len > PROTO_MAX_TEXT_LEN)
		e.message.len = PROTO_MAX_TEXT_LEN;
	rc = proto_error_encode(&e, f, sizeof(f), &flen);
	if (rc && msg != strata_strerror(code)) {
		/* A message the wire refuses (not UTF-8): the code alone,
		 * but an answer always. */
		msg = strata_strerror(code);
		e.message.s = msg;
		e.message.len = strlen(msg);
		rc = proto_error_encode(&e, f, sizeof(f), &flen);
	}
	c->deny[0] = 0;		/* said once */
	if (rc)
		return;
	conn_write_frame(c, op, PROTO_F_RESPONSE | PROTO_F_END |
			 PROTO_F_ERROR | (cont ? PROTO_F_CONT : 0), id, f, flen,
			 NULL, 0);
}

/* GOAWAY: the connection is over (a frame we cannot parse, shutdown). */
static void send_goaway(struct sconn *c, int code, const char *msg)
{
	struct proto_error e = { .code = code };
	uint8_t f[PROTO_MAX_TEXT_LEN + 64];
	size_t flen;

	e.message.s = msg;
	e.message.len = strlen(msg);
	if (proto_error_encode(&e, f, sizeof(f), &flen) == 0)
		conn_write_frame(c, PROTO_OP_GOAWAY,
				 PROTO_F_RESPONSE | PROTO_F_END, 0, f, flen,
				 NULL, 0);
}

/* Close after what is queued has gone out (errors before auth, protocol
 * violations). */
static void conn_fail(struct sconn *c, const char *why)
{
	if (c->st == SC_CLOSING)
		return;
	log_info("server", "closing connection from %s: %s",
		 c->nc ? net_conn_peer(c->nc) : "?", why);
	c->st = SC_CLOSING;
	if (c->nc) {
		net_conn_set_io_ok(c->nc, false);
		net_conn_close(c->nc);
	}
}

/* ---- requests ---- */

static struct sreq *req_find(struct sconn *c, uint64_t id)
{
	for (struct sreq *r = c->reqs; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static struct sreq *req_new(struct sconn *c, uint64_t id, uint8_t op,
			    enum sreq_kind kind)
{
	struct sreq *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->c = c;
	r->id = id;
	r->op = op;
	r->kind = kind;
	if (c->cur_set && c->cur_id == id) {
		/* The request outlives its first frame: its account moves. */
		r->m = c->cur;
		c->cur.target = NULL;
		c->cur.done = true;
	} else {
		r->m.start_ns = uv_hrtime();
	}
	r->next = c->reqs;
	c->reqs = r;
	c->nreqs++;
	return r;
}

static void reads_resume(struct sconn *c);

static bool is_read(const struct sreq *r)
{
	return r->kind == RQ_GET || r->kind == RQ_BATCH;
}

static void req_free(struct sreq *r)
{
	struct sconn *c = r->c;
	bool slot = is_read(r) && !r->queued;

	for (struct sreq **pp = &c->reqs; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	c->nreqs--;
	if (slot)
		reads_resume(c);
	for (uint32_t i = 0; i < r->nkeys; i++)
		free(r->keys[i]);
	free(r->keys);
	free(r->keylens);
	free(r->acc);
	free(r->m.target);
	free(r->ans_key);
	if (r->rest_hold)
		store_hold_release(r->rest_hold);
	free(r);
	conn_maybe_free(c);
}

/* Copy a wire string into a NUL-terminated buffer. */
static int wire_str(const struct proto_str *s, char *out, size_t cap)
{
	if (!s->s || s->len >= cap)
		return -EINVAL;
	memcpy(out, s->s, s->len);
	out[s->len] = 0;
	return 0;
}

/* ---- HELLO, AUTH, PING ---- */

/* ---- access policies ---- */

/* Load (again) the principal's policy and attributes: at AUTH, and when
 * KEY_SET changes them.  A policy that does not parse (it was checked
 * when stored) is no policy: every request is refused. */
static void conn_load_grant(struct sconn *c)
{
	struct store_grant g;
	struct proto_list l;
	struct proto_list_iter it;
	struct proto_str k, v;
	struct policy *pol = NULL;
	struct policy_attr *a = NULL;
	char err[200], *p;
	size_t n = 0;
	int rc;

	rc = store_access_key_grant_get(c->srv->s, c->principal, &g);
	if (rc)
		log_err("server", "reading the policy of key %s: %s",
			c->principal, strata_strerror(rc));
	if (!rc && g.policy &&
	    policy_parse(g.policy, g.policylen, &pol, err, sizeof(err)))
		log_err("server", "the stored policy of key %s does not "
			"parse (%s): its requests are refused", c->principal,
			err);
	if (!rc && g.nattrs) {
		/* The array, then each name and value NUL-terminated (the
		 * list's bytes hold less than that). */
		a = malloc(g.nattrs * sizeof(*a) + g.attrslen + 2 * g.nattrs);
		l.p = g.attrs;
		l.len = g.attrslen;
		l.count = 2 * g.nattrs;
		proto_list_iter_init(&it, &l);
		p = a ? (char *)(a + g.nattrs) : NULL;
		while (a && n < g.nattrs && proto_list_next(&it, &k) == 1 &&
		       proto_list_next(&it, &v) == 1) {
			a[n].name = p;
			memcpy(p, k.s, k.len);
			p[k.len] = 0;
			p += k.len + 1;
			a[n].value = p;
			memcpy(p, v.s, v.len);
			p[v.len] = 0;
			p += v.len + 1;
			n++;
		}
	}
	store_grant_free(&g);
	policy_free(c->pol);
	free(c->attrs);
	c->pol = pol;
	c->attrs = a;
	c->who.id = c->principal;
	c->who.attrs = a;
	c->who.n_attrs = a ? n : 0;
	/* The I/O loops answer GETs without asking: only for principals
	 * whose every GET would be allowed. */
	if (c->nc && c->st == SC_READY && !c->revoked)
		net_conn_set_io_ok(c->nc, c->admin ||
				   policy_allows_all(c->pol, POLICY_OBJECT_GET));
}

static void conn_drop_grant(struct sconn *c)
{
	policy_free(c->pol);
	free(c->attrs);
	c->pol = NULL;
	c->attrs = NULL;
	c->who.attrs = NULL;
	c->who.n_attrs = 0;
}

/* The policy's action for a request's opcode (0: none checked here). */
static uint32_t op_action(uint8_t op)
{
	switch (op) {
	case PROTO_OP_PUT: return POLICY_OBJECT_PUT;
	case PROTO_OP_GET: return POLICY_OBJECT_GET;
	case PROTO_OP_BATCH_GET: return POLICY_OBJECT_GET;
	case PROTO_OP_STAT: return POLICY_OBJECT_STAT;
	case PROTO_OP_DELETE: return POLICY_OBJECT_DELETE;
	case PROTO_OP_LIST: return POLICY_OBJECT_LIST;
	case PROTO_OP_BUCKET_CREATE: return POLICY_BUCKET_CREATE;
	case PROTO_OP_BUCKET_DELETE: return POLICY_BUCKET_DELETE;
	case PROTO_OP_BUCKET_LIST: return POLICY_BUCKET_LIST;
	case PROTO_OP_LIFECYCLE_SET:
	case PROTO_OP_LIFECYCLE_GET: return POLICY_BUCKET_LIFECYCLE;
	default: return 0;
	}
}

static void policy_req_init(struct sconn *c, struct policy_request *pr,
			    uint32_t action, const char *bucket,
			    const char *key, size_t keylen)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	*pr = (struct policy_request){
		.who = &c->who,
		.action = action,
		.bucket = bucket,
		.key = (action & POLICY_OBJECT_ACTIONS) ? (key ? key : "") : NULL,
		.keylen = (action & POLICY_OBJECT_ACTIONS) ? keylen : 0,
		.peer = c->nc ? net_conn_peer_addr(c->nc) : NULL,
		.now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
	};
}

/* Tags as the policy takes them (NUL-terminated names and values), in
 * one block: free() it.  NULL with n 0 for none; NULL with n > 0 is out
 * of memory. */
static struct policy_attr *tags_copy(const struct meta_kv *kv, size_t n)
{
	struct policy_attr *a;
	size_t bytes = 0;
	char *p;

	if (!n)
		return NULL;
	for (size_t i = 0; i < n; i++)
		bytes += kv[i].keylen + 1u + kv[i].vallen + 1u;
	a = malloc(n * sizeof(*a) + bytes);
	if (!a)
		return NULL;
	p = (char *)(a + n);
	for (size_t i = 0; i < n; i++) {
		a[i].name = p;
		memcpy(p, kv[i].key, kv[i].keylen);
		p[kv[i].keylen] = 0;
		p += kv[i].keylen + 1;
		a[i].value = p;
		memcpy(p, kv[i].val, kv[i].vallen);
		p[kv[i].vallen] = 0;
		p += kv[i].vallen + 1;
	}
	return a;
}

/* An object's current tags for its policy's object_tags conditions (an
 * index lookup, made only for such policies): *tags_known false when
 * they cannot be had (out of memory, the index failing); none when the
 * object does not exist. */
static struct policy_attr *object_tags(struct sconn *c, const char *bucket,
				       const char *key, size_t keylen,
				       size_t *n, bool *tags_known)
{
	struct store_object_info info;
	struct meta_object *mo = NULL;
	struct policy_attr *a = NULL;
	uint8_t *mbuf = NULL;
	int rc;

	*n = 0;
	*tags_known = false;
	rc = store_stat(c->srv->s, bucket, key, keylen, &info, NULL, &mo,
			&mbuf);
	if (rc == STRATA_ENOOBJECT || rc == STRATA_ENOBUCKET) {
		*tags_known = true;
		return NULL;
	}
	if (rc)
		return NULL;
	a = tags_copy(mo->tags, mo->ntags);
	if (a || !mo->ntags) {
		*n = mo->ntags;
		*tags_known = true;
	}
	meta_object_free(mo);
	free(mbuf);
	return a;
}

/* Whether c may do action on bucket (and key): admin keys may do
 * everything; others as their policy says.  prefix: key is a listed
 * prefix (may some object under it be allowed?).  tags: what a PUT
 * writes (put_tags set); for the other object actions the object's are
 * looked up when the policy has object_tags conditions for the action.
 * A refusal leaves its reason in c->deny for send_error's -EACCES. */
static bool may_tags(struct sconn *c, uint32_t action, const char *bucket,
		     const char *key, size_t keylen, bool prefix,
		     bool put_tags, const struct meta_kv *tags, size_t ntags)
{
	struct policy_request pr;
	enum policy_decision d;
	const char *name = policy_action_name(action);
	size_t shown = keylen > 200 ? 200 : keylen;
	struct policy_attr *ta = NULL;

	if (c->admin || !action)
		return true;
	policy_req_init(c, &pr, action, bucket, key, keylen);
	if (put_tags) {
		ta = tags_copy(tags, ntags);
		pr.tags = ta;
		pr.n_tags = ntags;
		pr.tags_known = ta || !ntags;
	} else if (!prefix && (action & POLICY_OBJECT_ACTIONS) &&
		   action != POLICY_OBJECT_LIST &&
		   policy_uses_tags(c->pol, action)) {
		ta = object_tags(c, bucket, key ? key : "", keylen, &pr.n_tags,
				 &pr.tags_known);
		pr.tags = ta;
	}
	if (prefix)
		d = policy_may_allow_prefix(c->pol, &pr) ? POLICY_ALLOW
							  : POLICY_DENY;
	else
		d = policy_eval(c->pol, &pr);
	free(ta);
	if (d == POLICY_ALLOW)
		return true;
	/* A long key is cut between characters: the message is a wire
	 * string (UTF-8). */
	while (key && shown < keylen && shown && (key[shown] & 0xc0) == 0x80)
		shown--;
	snprintf(c->deny, sizeof(c->deny), "access denied: %s on %s%s%.*s%s "
		 "(%s)", name ? name : "?", bucket,
		 (action & POLICY_OBJECT_ACTIONS) ? "/" : "",
		 (int)shown, key ? key : "", shown < keylen ? "..." : "",
		 !c->pol ? "the access key has no policy" :
		 d == POLICY_DENY_EXPLICIT ? "denied by a policy statement" :
		 "no policy statement allows it");
	return false;
}

static bool may(struct sconn *c, uint32_t action, const char *bucket,
		const char *key, size_t keylen, bool prefix)
{
	return may_tags(c, action, bucket, key, keylen, prefix, false, NULL,
			0);
}

/* The request's bucket copied out of the frame, its target named for the
 * access log, and its access checked (op_action(h->opcode) on bucket and
 * key; LIST: on the prefix, each entry is filtered later); rc (the
 * decode's result) passes through, or becomes STRATA_EBADBUCKET or
 * -EACCES. */
static int req_bucket(struct sconn *c, const struct proto_header *h, int rc,
		      const struct proto_str *b, const struct proto_str *key,
		      char bucket[META_BUCKET_MAX + 1])
{
	if (!rc && wire_str(b, bucket, META_BUCKET_MAX + 1))
		rc = STRATA_EBADBUCKET;
	if (!rc)
		meter_target(c, h->id, bucket,
			     key ? (key->s ? key->s : "") : NULL,
			     key ? key->len : 0);
	/* (A PUT whose policy tests the tags it writes: on_put checks it
	 * once they are read.) */
	if (!rc && !(h->opcode == PROTO_OP_PUT && !c->admin &&
		     policy_uses_tags(c->pol, POLICY_OBJECT_PUT)) &&
	    !may(c, op_action(h->opcode), bucket, key ? key->s : NULL,
		 key ? key->len : 0, h->opcode == PROTO_OP_LIST))
		rc = -EACCES;
	return rc;
}

static void on_hello(struct sconn *c, const struct proto_header *h,
		     const uint8_t *f)
{
	struct proto_hello_req req;
	struct proto_hello_resp resp = { 0 };
	uint8_t out[512];
	size_t n;
	int rc;

	rc = proto_hello_req_decode(f, h->fields_len, &req);
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		conn_fail(c, "bad HELLO");
		return;
	}
	if (c->st != SC_HELLO) {
		send_error(c, h->opcode, h->id, STRATA_EPROTO,
			   "HELLO sent twice", false);
		conn_fail(c, "HELLO twice");
		return;
	}
	if (keys_random(c->nonce, sizeof(c->nonce))) {
		conn_fail(c, "no randomness");
		return;
	}
	resp.version = PROTO_VERSION;
	resp.features = 0;
	resp.nonce.p = c->nonce;
	resp.nonce.len = sizeof(c->nonce);
	resp.server.s = SERVER_NAME;
	resp.server.len = strlen(SERVER_NAME);
	resp.has_node_id = true;
	resp.node_id = c->srv->o.node_id;
	resp.max_requests = c->srv->o.max_requests;
	resp.max_inflight = c->srv->o.out_high;
	resp.max_body = PROTO_MAX_BODY_LEN;
	rc = proto_hello_resp_encode(&resp, out, sizeof(out), &n);
	if (rc) {
		conn_fail(c, "cannot encode HELLO");
		return;
	}
	c->st = SC_AUTH;
	conn_write_frame(c, h->opcode, PROTO_F_RESPONSE | PROTO_F_END, h->id,
			 out, n, NULL, 0);
}

static void on_auth(struct sconn *c, const struct proto_header *h,
		    const uint8_t *f)
{
	uint8_t secret[META_AKEY_SECRET_MAX], exporter[PROTO_EXPORTER_LEN];
	uint8_t transcript[PROTO_AUTH_TRANSCRIPT_MAX], mac[32], out[256];
	struct proto_auth_req req;
	struct proto_auth_resp resp = { 0 };
	char id[META_AKEY_ID_MAX + 1];
	size_t slen = 0, tlen, mlen = 0, n;
	uint32_t kflags = 0;
	bool known = true;
	int rc;

	if (c->st != SC_AUTH) {
		send_error(c, h->opcode, h->id, STRATA_EPROTO,
			   c->st == SC_HELLO ? "HELLO first" : "already authenticated",
			   false);
		conn_fail(c, "AUTH out of order");
		return;
	}
	rc = proto_auth_req_decode(f, h->fields_len, &req);
	if (!rc && (wire_str(&req.access_key_id, id, sizeof(id)) ||
		    req.proof.len != PROTO_PROOF_LEN))
		rc = STRATA_EPROTO;
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		conn_fail(c, "bad AUTH");
		return;
	}
	rc = net_conn_export(c->nc, PROTO_EXPORTER_LABEL, exporter,
			     sizeof(exporter));
	if (!rc) {
		rc = store_access_key_get(c->srv->s, id, secret, &slen,
					  &kflags);
		known = rc != -ENOENT;
	}
	if (!rc)
		rc = proto_auth_transcript(c->nonce, exporter, id, strlen(id),
					   transcript, sizeof(transcript),
					   &tlen);
	if (!rc && !EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, slen,
			      transcript, tlen, mac, sizeof(mac), &mlen))
		rc = -EIO;
	OPENSSL_cleanse(secret, sizeof(secret));
	/* The audit log names the key tried (not an unknown id: it may be
	 * a secret pasted in the wrong place). */
	meter_target(c, h->id, "", known ? id : "(unknown key id)",
		     known ? strlen(id) : strlen("(unknown key id)"));
	/* One answer for an unknown key and a wrong proof, at one time
	 * (auth_sweep()): no key probing. */
	if (rc || mlen != sizeof(mac) ||
	    CRYPTO_memcmp(mac, req.proof.p, sizeof(mac)) != 0) {
		/* An unknown id may be a secret pasted in the wrong place:
		 * only its start goes to the log. */
		if (known)
			log_info("server", "authentication failed for key %s "
				 "from %s", id, net_conn_peer(c->nc));
		else
			log_info("server", "authentication failed for an "
				 "unknown key id (%.4s..., %zu bytes) from %s",
				 id, strlen(id), net_conn_peer(c->nc));
		c->st = SC_AUTH_FAILED;
		c->fail_ms = uv_now(c->srv->loop);
		c->fail_id = h->id;
		c->fail_m = c->cur;
		c->cur.target = NULL;
		return;
	}
	memcpy(c->principal, id, strlen(id) + 1);
	c->admin = kflags & META_AKEY_ADMIN;
	c->st = SC_READY;
	/* From here the I/O loop may answer its GETs (anscache.h), if its
	 * policy allows every GET. */
	if (c->admin)
		net_conn_set_io_ok(c->nc, true);
	else
		conn_load_grant(c);
	resp.principal.s = c->principal;
	resp.principal.len = strlen(c->principal);
	if (proto_auth_resp_encode(&resp, out, sizeof(out), &n) == 0)
		conn_write_frame(c, h->opcode, PROTO_F_RESPONSE | PROTO_F_END,
				 h->id, out, n, NULL, 0);
}

/* ---- buckets ---- */

struct op_ctx {
	struct sconn *c;
	uint8_t op;
	uint64_t id;
	struct sreq *r;			/* holds the connection alive */
};

static struct op_ctx *op_ctx_new(struct sconn *c, const struct proto_header *h)
{
	struct op_ctx *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->c = c;
	x->op = h->opcode;
	x->id = h->id;
	/* A placeholder request keeps the id live and the conn allocated. */
	x->r = req_new(c, h->id, h->opcode, RQ_DISCARD);
	if (!x->r) {
		free(x);
		return NULL;
	}
	return x;
}

static void op_done(void *arg, int status)
{
	struct op_ctx *x = arg;

	if (status)
		send_error(x->c, x->op, x->id, status, NULL, false);
	else
		conn_write_frame(x->c, x->op, PROTO_F_RESPONSE | PROTO_F_END,
				 x->id, NULL, 0, NULL, 0);
	req_free(x->r);
	free(x);
}

static void on_bucket_change(struct sconn *c, const struct proto_header *h,
			     const uint8_t *f)
{
	struct proto_bucket_req req;
	char name[META_BUCKET_MAX + 1];
	struct op_ctx *x;
	int rc;

	rc = req_bucket(c, h, proto_bucket_req_decode(f, h->fields_len, &req),
			&req.bucket, NULL, name);
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		return;
	}
	x = op_ctx_new(c, h);
	if (!x) {
		send_error(c, h->opcode, h->id, -ENOMEM, NULL, false);
		return;
	}
	if (h->opcode == PROTO_OP_BUCKET_CREATE)
		rc = store_bucket_create(c->srv->s, name, NULL, 0, op_done, x);
	else
		rc = store_bucket_delete(c->srv->s, name, op_done, x);
	if (rc)
		op_done(x, rc);
}

/* Cut a sequence of encoded records into response frames: fields on the
 * first, END on the last, no record split across two frames. */
struct rec_out {
	struct sconn *c;
	uint8_t op;
	uint64_t id;
	const uint8_t *fields;
	size_t flen;
	uint8_t *body;
	size_t blen;
	bool first;
	int err;
};

static void rec_flush(struct rec_out *o, bool end)
{
	uint16_t flags = PROTO_F_RESPONSE | (o->first ? 0 : PROTO_F_CONT) |
			 (end ? PROTO_F_END : 0);

	if (!o->first && !end && !o->blen)
		return;
	o->err = conn_write_frame(o->c, o->op, flags, o->id,
				  o->first ? o->fields : NULL,
				  o->first ? o->flen : 0, o->body, o->blen);
	o->first = false;
	o->blen = 0;
}

static int rec_add(struct rec_out *o, const uint8_t *rec, size_t len)
{
	if (o->blen + len > PROTO_MAX_BODY_LEN)
		rec_flush(o, false);
	memcpy(o->body + o->blen, rec, len);
	o->blen += len;
	return o->err;
}

static void on_bucket_list(struct sconn *c, const struct proto_header *h,
			   const uint8_t *f)
{
	struct proto_bucket_list_req req;
	struct proto_bucket_list_resp resp = { 0 };
	struct store_bucket_info *v = NULL;
	struct rec_out o = { .c = c, .op = h->opcode, .id = h->id,
			     .first = true };
	uint8_t fields[64], rec[512];
	size_t n = 0, from = 0, upto, rlen;
	int rc;

	rc = proto_bucket_list_req_decode(f, h->fields_len, &req);
	if (!rc)
		rc = store_bucket_list(c->srv->s, &v, &n);
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		return;
	}
	if (req.start_after.s)
		while (from < n &&
		       (strlen(v[from].name) < req.start_after.len
				? memcmp(v[from].name, req.start_after.s,
					 strlen(v[from].name)) <= 0
				: memcmp(v[from].name, req.start_after.s,
					 req.start_after.len) <= 0 &&
				  (strlen(v[from].name) == req.start_after.len ||
				   memcmp(v[from].name, req.start_after.s,
					  req.start_after.len) < 0)))
			from++;
	/* Only the buckets the policy lets it list (moved to the front:
	 * the page's limit counts what is shown). */
	if (!c->admin) {
		size_t k = from;

		for (size_t i = from; i < n; i++)
			if (may(c, POLICY_BUCKET_LIST, v[i].name, NULL, 0,
				false))
				v[k++] = v[i];
		n = k;
		c->deny[0] = 0;
	}
	upto = n;
	if (req.has_limit && req.limit && upto - from > req.limit) {
		upto = from + req.limit;
		resp.truncated = true;
	}
	resp.count = (uint32_t)(upto - from);
	o.body = malloc(PROTO_MAX_BODY_LEN);
	if (!o.body ||
	    proto_bucket_list_resp_encode(&resp, fields, sizeof(fields), &o.flen)) {
		send_error(c, h->opcode, h->id, -ENOMEM, NULL, false);
		goto out;
	}
	o.fields = fields;
	for (size_t i = from; i < upto && !o.err; i++) {
		struct proto_bucket_entry e = {
			.bucket = { v[i].name, strlen(v[i].name) },
			.ctime_ms = v[i].ctime_ms,
		};

		if (proto_bucket_entry_encode(&e, rec, sizeof(rec), &rlen) == 0)
			rec_add(&o, rec, rlen);
	}
	rec_flush(&o, true);
out:
	free(o.body);
	free(v);
}

/* ---- PUT ---- */

static void put_resume_input(void *arg)
{
	struct sreq *r = arg;
	struct sconn *c = r->c;

	if (!c->rpaused)
		return;
	c->rpaused = false;
	c->in_ms = uv_now(c->srv->loop);
	if (c->nc && !c->opaused)
		net_conn_resume_read(c->nc);
	input_process(c);
}

static void put_committed(void *arg, int status,
			  const struct store_object_info *info)
{
	struct sreq *r = arg;
	struct sconn *c = r->c;

	r->put = NULL;
	if (status) {
		send_error(c, r->op, r->id, status, NULL, false);
	} else {
		struct proto_put_resp resp = {
			.size = info->size,
			.etag = { info->etag, PROTO_ETAG_LEN },
			.version = info->hlc,
			.writer = info->writer,
		};
		uint8_t out[256];
		size_t n;

		if (proto_put_resp_encode(&resp, out, sizeof(out), &n) == 0)
			conn_write_frame(c, r->op, PROTO_F_RESPONSE | PROTO_F_END,
					 r->id, out, n, NULL, 0);
	}
	req_free(r);
}

/* Body bytes of a put; end commits it. */
static void put_body(struct sreq *r, const uint8_t *body, size_t len,
		     bool end)
{
	struct sconn *c = r->c;
	int rc = 0;

	r->m.in += len;
	r->got += len;
	/* With a size, the body is exactly that long (PROTOCOL.md §5.8). */
	if (r->has_size && (r->got > r->size || (end && r->got != r->size)))
		rc = STRATA_EPROTO;
	else if (len)
		rc = store_put_write(r->put, body, len);
	if (rc) {
		store_put_abort(r->put);
		r->put = NULL;
		send_error(c, r->op, r->id, rc, rc == STRATA_EPROTO ?
			   "the body's length differs from the PUT's size" :
			   NULL, false);
		/* Swallow the rest of the body. */
		r->kind = RQ_DISCARD;
		if (end)
			req_free(r);
		return;
	}
	if (end) {
		r->committing = true;
		store_put_commit(r->put, put_committed, r);
		return;
	}
	if (!store_put_writable(r->put)) {
		/* Stop reading this connection until the store catches up:
		 * a fast uploader slows itself, nobody else. */
		c->rpaused = true;
		if (c->nc)
			net_conn_pause_read(c->nc);
		store_put_on_drain(r->put, put_resume_input, r);
	}
}

static void on_put(struct sconn *c, const struct proto_header *h,
		   const uint8_t *f, const uint8_t *body)
{
	struct proto_put_req req;
	struct store_put_opts po = { 0 };
	struct meta_kv kvs[2 * PROTO_MAX_KV];
	char bucket[META_BUCKET_MAX + 1], ctype[PROTO_MAX_CTYPE_LEN + 1];
	struct sreq *r;
	int rc;

	r = req_new(c, h->id, h->opcode, RQ_PUT);
	if (!r) {
		send_error(c, h->opcode, h->id, -ENOMEM, NULL, false);
		return;
	}
	r->body_open = !(h->flags & PROTO_F_END);
	rc = req_bucket(c, h, proto_put_req_decode(f, h->fields_len, &req),
			&req.bucket, &req.key, bucket);
	if (!rc && req.content_type.s) {
		if (wire_str(&req.content_type, ctype, sizeof(ctype)))
			rc = STRATA_EBADMETA;
		po.ctype = ctype;
	}
	/* Metadata and tags arrive as name, value, name, value lists. */
	for (int which = 0; !rc && which < 2; which++) {
		const struct proto_list *l = which ? &req.tags : &req.meta;
		struct meta_kv *base = kvs + (which ? PROTO_MAX_KV : 0);
		struct proto_list_iter it;
		struct proto_str k, v;
		uint16_t n = 0;

		if (!l->p)
			continue;
		proto_list_iter_init(&it, l);
		while (proto_list_next(&it, &k) == 1) {
			if (proto_list_next(&it, &v) != 1 || n >= PROTO_MAX_KV) {
				rc = STRATA_EBADMETA;
				break;
			}
			base[n++] = (struct meta_kv){
				k.s, (uint16_t)k.len, v.s, (uint16_t)v.len
			};
		}
		if (which) {
			po.tags = base;
			po.ntags = n;
		} else {
			po.meta = base;
			po.nmeta = n;
		}
	}
	r->has_size = req.has_size;
	r->size = req.size;
	if (!rc && !c->admin && policy_uses_tags(c->pol, POLICY_OBJECT_PUT) &&
	    !may_tags(c, POLICY_OBJECT_PUT, bucket, req.key.s, req.key.len,
		      false, true, po.tags, po.ntags))
		rc = -EACCES;
	if (!rc)
		rc = store_put_begin(c->srv->s, bucket, req.key.s, req.key.len,
				     &po, &r->put);
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		r->kind = RQ_DISCARD;
		if (h->flags & PROTO_F_END)
			req_free(r);
		return;
	}
	put_body(r, body, h->body_len, h->flags & PROTO_F_END);
}

/* ---- GET (and the body accumulator BATCH_GET shares) ---- */

static int acc_flush(struct sreq *r, bool end)
{
	uint16_t flags = PROTO_F_RESPONSE | PROTO_F_CONT |
			 (end ? PROTO_F_END : 0);
	int rc;

	if (!r->acclen && !end)
		return 0;
	rc = conn_write_frame(r->c, r->op, flags, r->id, NULL, 0, r->acc,
			      r->acclen);
	r->acclen = 0;
	return rc;
}

static int acc_add(struct sreq *r, const uint8_t *p, size_t len)
{
	while (len) {
		size_t n = PROTO_MAX_BODY_LEN - r->acclen;

		if (n > len)
			n = len;
		memcpy(r->acc + r->acclen, p, n);
		r->acclen += n;
		p += n;
		len -= n;
		if (r->acclen == PROTO_MAX_BODY_LEN) {
			int rc = acc_flush(r, false);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Stop producing: this connection's output is above its mark (resumed by
 * server_conn_drain), or every connection's together is above the node's
 * (resumed by server_drain). */
static bool conn_congested(struct sconn *c)
{
	return c->nc && (net_conn_write_pending(c->nc) > c->srv->o.out_high ||
			 net_server_out_congested(c->nc));
}

static int get_send_fields(struct sreq *r, const uint8_t *body, size_t blen,
			   bool end)
{
	struct proto_get_resp resp = { 0 };
	uint8_t fields[512];
	size_t flen;

	resp.info.size = r->info.size;
	resp.info.etag.p = r->info.etag;
	resp.info.etag.len = PROTO_ETAG_LEN;
	resp.info.version = r->info.hlc;
	resp.info.writer = r->info.writer;
	resp.info.has_mtime = true;
	resp.info.mtime_ms = r->info.mtime_ms;
	resp.offset = r->off;
	resp.length = r->total;
	if (proto_get_resp_encode(&resp, fields, sizeof(fields), &flen))
		return -EINVAL;
	r->fields_sent = true;
	/* The whole of an inline object: the I/O loops may answer the next
	 * GET of it themselves. */
	if (r->ans_key && end && r->info.inline_obj && blen == r->info.size)
		anscache_put(r->c->srv->o.ans, r->bucket, r->ans_key,
			     r->ans_keylen, r->info.bucket_id, r->info.gen,
			     fields, flen, body, blen);
	return conn_write_frame(r->c, r->op, PROTO_F_RESPONSE |
				(end ? PROTO_F_END : 0), r->id, fields, flen,
				body, blen);
}

/*
 * Write r->rest (rest_len bytes) as frames of the response, the one that
 * completes it with END.  With r->rest_hold (the bytes are the chunk
 * cache's) each frame is sent from where it is, and with may_stop the
 * writing stops when the output fills up, the rest left in r->rest; the
 * hold goes back once all is out.  Returns 0, or -1 when a write failed.
 */
static int get_write_rest(struct sreq *r, bool may_stop)
{
	while (r->rest_len) {
		size_t n = r->rest_len > PROTO_MAX_BODY_LEN ?
			   PROTO_MAX_BODY_LEN : r->rest_len;
		bool end = r->sent + n == r->total;

		if (may_stop && conn_congested(r->c))
			return 0;
		if (conn_write_frame_held(r->c, r->op, PROTO_F_RESPONSE |
					  PROTO_F_CONT | (end ? PROTO_F_END : 0),
					  r->id, NULL, 0, r->rest, n,
					  r->rest_hold ?
					  store_hold_dup(r->rest_hold) : NULL))
			return -1;
		r->sent += n;
		r->rest += n;
		r->rest_len -= n;
	}
	if (r->rest_hold)
		store_hold_release(r->rest_hold);
	r->rest_hold = NULL;
	r->rest = NULL;
	return 0;
}

static int get_data(void *arg, const void *buf, size_t len)
{
	struct sreq *r = arg;
	const uint8_t *p = buf;

	if (r->cancelled || !r->c->nc)
		return 1;
	/* The first frame carries the fields and as much data as fits, and
	 * ends the response when that is all: a small GET is one frame. */
	if (!r->fields_sent) {
		size_t n = len > PROTO_MAX_BODY_LEN ? PROTO_MAX_BODY_LEN : len;

		if (get_send_fields(r, p, n, r->sent + n == r->total))
			return 1;
		r->sent += n;
		p += n;
		len -= n;
	}
	/* From the chunk cache the body goes out without a copy.  When the
	 * output fills up in the middle of such a chunk (not the get's last),
	 * the rest waits, held, for the drain (server_conn_drain), instead of
	 * going over the output's marks by up to a chunk.  A chunk the get
	 * decoded itself is not the cache's yet, and the last one ends the
	 * get: those go out whole. */
	r->rest = p;
	r->rest_len = len;
	r->rest_hold = r->get ? store_get_hold(r->get) : NULL;
	if (get_write_rest(r, r->rest_hold && r->sent + len < r->total))
		return 1;
	if (r->rest_len || conn_congested(r->c)) {
		r->paused = true;
		store_get_pause(r->get);
	}
	return 0;
}

static void get_done(void *arg, int status)
{
	struct sreq *r = arg;
	struct sconn *c = r->c;

	r->get = NULL;
	if (c->nc && !r->cancelled) {
		if (status)
			send_error(c, r->op, r->id, status, NULL, r->fields_sent);
		else if (!r->fields_sent)	/* an empty range */
			get_send_fields(r, NULL, 0, true);
		else if (r->sent != r->total)
			send_error(c, r->op, r->id, -EIO, "short read", true);
	}
	req_free(r);
}

/* GETs and BATCH_GETs of the connection holding a read slot. */
static unsigned reads_active(const struct sconn *c)
{
	unsigned n = 0;

	for (const struct sreq *r = c->reqs; r; r = r->next)
		n += is_read(r) && !r->queued;
	return n;
}

static void get_start(struct sreq *r, const char *bucket, const char *key,
		      size_t keylen)
{
	struct sconn *c = r->c;
	int rc;

	rc = store_get(c->srv->s, bucket, key, keylen, r->off, r->want,
		       &r->info, get_data, get_done, r, &r->get);
	if (rc) {
		send_error(c, r->op, r->id, rc, NULL, false);
		req_free(r);
		return;
	}
	r->total = r->want > r->info.size - r->off ? r->info.size - r->off
						   : r->want;
}

static void on_get(struct sconn *c, const struct proto_header *h,
		   const uint8_t *f)
{
	struct proto_get_req req;
	char bucket[META_BUCKET_MAX + 1];
	struct sreq *r;
	int rc;

	rc = req_bucket(c, h, proto_get_req_decode(f, h->fields_len, &req),
			&req.bucket, &req.key, bucket);
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		return;
	}
	r = req_new(c, h->id, h->opcode, RQ_GET);
	if (!r) {
		send_error(c, h->opcode, h->id, -ENOMEM, NULL, false);
		return;
	}
	r->off = req.has_offset ? req.offset : 0;
	r->want = req.has_length ? req.length : UINT64_MAX;
	if (c->srv->o.ans && !r->off && !req.has_length &&
	    req.key.len <= ANSCACHE_MAX_REQUEST) {
		r->ans_key = malloc(req.key.len ? req.key.len : 1);
		if (r->ans_key) {
			memcpy(r->ans_key, req.key.s, req.key.len);
			r->ans_keylen = req.key.len;
			memcpy(r->bucket, bucket, sizeof(r->bucket));
		}
	}
	r->queued = true;		/* no read slot yet */
	if (reads_active(c) < READS_MAX && !conn_congested(c)) {
		r->queued = false;
		get_start(r, bucket, req.key.s, req.key.len);
		return;
	}
	/* Wait for a slot: keep what the frame's buffer held. */
	memcpy(r->bucket, bucket, sizeof(r->bucket));
	r->keys = calloc(1, sizeof(*r->keys));
	r->keylens = calloc(1, sizeof(*r->keylens));
	if (r->keys)
		r->keys[0] = strndup(req.key.s, req.key.len);
	if (!r->keys || !r->keylens || !r->keys[0]) {
		send_error(c, h->opcode, h->id, -ENOMEM, NULL, false);
		req_free(r);
		return;
	}
	r->nkeys = 1;
	r->keylens[0] = req.key.len;
}

/* ---- STAT, DELETE ---- */

static void on_stat(struct sconn *c, const struct proto_header *h,
		    const uint8_t *f)
{
	struct proto_object_req req;
	struct proto_stat_resp resp = { 0 };
	struct store_object_info info;
	struct store_chunk_info *ci = NULL;
	struct rec_out o = { .c = c, .op = h->opcode, .id = h->id,
			     .first = true };
	char bucket[META_BUCKET_MAX + 1];
	uint8_t fields[PROTO_MAX_FIELDS_LEN], rec[64];
	uint8_t *lbuf = NULL;		/* two list buffers */
	struct meta_object *mo = NULL;
	uint8_t *mbuf = NULL;
	size_t rlen;
	int rc;

	rc = req_bucket(c, h, proto_object_req_decode(f, h->fields_len, &req),
			&req.bucket, &req.key, bucket);
	if (!rc)
		rc = store_stat(c->srv->s, bucket, req.key.s, req.key.len, &info,
				&ci, &mo, &mbuf);
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		return;
	}
	resp.info.size = info.size;
	resp.info.etag.p = info.etag;
	resp.info.etag.len = PROTO_ETAG_LEN;
	resp.info.version = info.hlc;
	resp.info.writer = info.writer;
	resp.info.has_mtime = true;
	resp.info.mtime_ms = info.mtime_ms;
	resp.count = info.nchunks;
	resp.chunk_size = info.chunk_size;
	/* Content type, user metadata and tags, as stored. */
	lbuf = malloc(2 * PROTO_MAX_FIELDS_LEN);
	if (lbuf) {
		if (mo->ctypelen) {
			resp.info.content_type.s = mo->ctype;
			resp.info.content_type.len = mo->ctypelen;
		}
		for (int which = 0; which < 2; which++) {
			const struct meta_kv *kv = which ? mo->tags : mo->meta;
			uint16_t n = which ? mo->ntags : mo->nmeta;
			struct proto_str el[2 * PROTO_MAX_KV];

			if (!n || n > PROTO_MAX_KV)
				continue;
			for (uint16_t i = 0; i < n; i++) {
				el[2 * i] = (struct proto_str){ kv[i].key, kv[i].keylen };
				el[2 * i + 1] = (struct proto_str){ kv[i].val, kv[i].vallen };
			}
			/* A list that does not fit is left out, not an error. */
			proto_list_build(lbuf + (which ? PROTO_MAX_FIELDS_LEN : 0),
					 PROTO_MAX_FIELDS_LEN, el, 2u * n,
					 which ? &resp.info.tags : &resp.info.meta);
		}
	}
	o.body = malloc(PROTO_MAX_BODY_LEN);
	rc = o.body ? proto_stat_resp_encode(&resp, fields, sizeof(fields),
					     &o.flen) : -ENOMEM;
	if (rc == -ENOSPC) {
		/* Everything at its limit does not fit one frame's fields:
		 * answer without the metadata rather than not at all. */
		resp.info.meta = (struct proto_list){ 0 };
		resp.info.tags = (struct proto_list){ 0 };
		rc = proto_stat_resp_encode(&resp, fields, sizeof(fields),
					    &o.flen);
	}
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		goto out;
	}
	o.fields = fields;
	for (uint32_t i = 0; i < info.nchunks && !o.err; i++) {
		struct proto_chunk_entry e = {
			.tier = ci[i].tier, .raw_len = ci[i].raw_len,
			.stored_len = ci[i].stored_len,
		};

		if (proto_chunk_entry_encode(&e, rec, sizeof(rec), &rlen) == 0)
			rec_add(&o, rec, rlen);
	}
	rec_flush(&o, true);
out:
	free(o.body);
	free(ci);
	meta_object_free(mo);
	free(mbuf);
	free(lbuf);
}

static void on_delete(struct sconn *c, const struct proto_header *h,
		      const uint8_t *f)
{
	struct proto_object_req req;
	char bucket[META_BUCKET_MAX + 1];
	struct op_ctx *x;
	int rc;

	rc = req_bucket(c, h, proto_object_req_decode(f, h->fields_len, &req),
			&req.bucket, &req.key, bucket);
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		return;
	}
	x = op_ctx_new(c, h);
	if (!x) {
		send_error(c, h->opcode, h->id, -ENOMEM, NULL, false);
		return;
	}
	rc = store_delete(c->srv->s, bucket, req.key.s, req.key.len, op_done, x);
	if (rc)
		op_done(x, rc);
}

/* ---- LIST ---- */

static void on_list(struct sconn *c, const struct proto_header *h,
		    const uint8_t *f)
{
	struct proto_list_req req;
	struct proto_list_resp resp = { 0 };
	struct store_list_opts lo = { 0 };
	struct store_list_result *res = NULL;
	struct rec_out o = { .c = c, .op = h->opcode, .id = h->id,
			     .first = true };
	char bucket[META_BUCKET_MAX + 1];
	uint8_t fields[PROTO_MAX_KEY_LEN + 128], rec[PROTO_MAX_KEY_LEN + 128];
	size_t rlen, kept = 0;
	bool *keep = NULL;
	int rc;

	rc = req_bucket(c, h, proto_list_req_decode(f, h->fields_len, &req),
			&req.bucket, &req.prefix, bucket);
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		return;
	}
	lo.prefix = req.prefix.s;
	lo.prefixlen = req.prefix.len;
	lo.start_after = req.start_after.s;
	lo.start_after_len = req.start_after.len;
	lo.delim = req.delimiter.s;
	lo.delimlen = req.delimiter.s ? req.delimiter.len : 0;
	lo.limit = req.has_limit ? req.limit : 1000;
	rc = store_list(c->srv->s, bucket, &lo, &res);
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		return;
	}
	/* The listing shows what the policy lets it list: each object by
	 * its key, each common prefix if something under it may be.  The
	 * page's end (next_start_after) is the store's, kept or not. */
	keep = calloc(res->n ? res->n : 1, sizeof(*keep));
	if (!keep) {
		send_error(c, h->opcode, h->id, -ENOMEM, NULL, false);
		goto out;
	}
	for (size_t i = 0; i < res->n; i++) {
		struct store_list_entry *se = &res->e[i];

		keep[i] = may(c, POLICY_OBJECT_LIST, bucket, se->key,
			      se->keylen, se->is_prefix);
		kept += keep[i];
	}
	c->deny[0] = 0;
	resp.count = (uint32_t)kept;
	resp.truncated = res->truncated && res->n;
	if (resp.truncated) {
		resp.next_start_after.s = res->e[res->n - 1].key;
		resp.next_start_after.len = res->e[res->n - 1].keylen;
	}
	o.body = malloc(PROTO_MAX_BODY_LEN);
	if (!o.body || proto_list_resp_encode(&resp, fields, sizeof(fields),
					      &o.flen)) {
		send_error(c, h->opcode, h->id, -ENOMEM, NULL, false);
		goto out;
	}
	o.fields = fields;
	for (size_t i = 0; i < res->n && !o.err; i++) {
		struct store_list_entry *se = &res->e[i];
		struct proto_list_entry e = { 0 };

		if (!keep[i])
			continue;

		if (se->is_prefix) {
			e.prefix.s = se->key;
			e.prefix.len = se->keylen;
		} else {
			e.key.s = se->key;
			e.key.len = se->keylen;
			e.size = se->size;
			e.mtime_ms = se->mtime_ms;
			e.version = se->hlc;
			e.etag.p = se->etag;
			e.etag.len = PROTO_ETAG_LEN;
		}
		if (proto_list_entry_encode(&e, rec, sizeof(rec), &rlen) == 0)
			rec_add(&o, rec, rlen);
	}
	rec_flush(&o, true);
out:
	free(keep);
	free(o.body);
	store_list_result_free(res);
}

/* ---- BATCH_GET: items one after another into one streamed body ---- */

static void batch_next(struct sreq *r);
static void batch_start(struct sreq *r);

static int batch_data(void *arg, const void *buf, size_t len)
{
	struct sreq *r = arg;

	if (r->cancelled || !r->c->nc)
		return 1;
	if (acc_add(r, buf, len))
		return 1;
	if (conn_congested(r->c)) {
		r->paused = true;
		store_get_pause(r->get);
	}
	return 0;
}

static int batch_item(struct sreq *r, uint32_t index, int status,
		      uint64_t size)
{
	struct proto_batch_item it = { .index = index, .status = status,
				       .size = size };
	uint8_t sub[PROTO_BATCH_ITEM_LEN];

	if (proto_batch_item_encode(&it, sub))
		return -EINVAL;
	/* A sub-header never spans frames. */
	if (r->acclen + PROTO_BATCH_ITEM_LEN > PROTO_MAX_BODY_LEN) {
		int rc = acc_flush(r, false);
		if (rc)
			return rc;
	}
	return acc_add(r, sub, sizeof(sub));
}

static void batch_get_done(void *arg, int status)
{
	struct sreq *r = arg;

	r->get = NULL;
	if (status) {
		/* The item header promised data that did not all come: the
		 * stream cannot be repaired, so the response ends in error. */
		if (r->c->nc && !r->cancelled) {
			acc_flush(r, false);
			send_error(r->c, r->op, r->id, status, NULL, true);
		}
		req_free(r);
		return;
	}
	/* The item is out (in the output): with the output full, the next
	 * waits for it to drain (server_conn_drain), as a get's next chunk
	 * does. */
	if (!r->cancelled && r->c->nc && conn_congested(r->c)) {
		r->paused = true;
		return;
	}
	batch_next(r);
}

static void batch_next(struct sreq *r)
{
	struct sconn *c = r->c;

	while (r->bnext < r->nkeys) {
		struct store_object_info info;
		uint32_t i = r->bnext++;
		int rc;

		if (r->cancelled || !c->nc)
			break;
		/* A key the policy does not let it read is that item's
		 * -EACCES (its reason stays unsaid: items carry codes). */
		if (!may(c, POLICY_OBJECT_GET, r->bucket, r->keys[i],
			 r->keylens[i], false)) {
			c->deny[0] = 0;
			rc = -EACCES;
		} else {
			rc = store_get(c->srv->s, r->bucket, r->keys[i],
				       r->keylens[i], 0, UINT64_MAX, &info,
				       batch_data, batch_get_done, r, &r->get);
		}
		if (rc) {
			/* A missing or unreadable object is that item's
			 * status; the batch goes on. */
			if (batch_item(r, i, rc, 0))
				break;
			continue;
		}
		if (batch_item(r, i, 0, info.size)) {
			r->cancelled = true;	/* get_done will free */
			return;
		}
		return;			/* continues in batch_get_done */
	}
	if (c->nc && !r->cancelled)
		acc_flush(r, true);
	req_free(r);
}

static void on_batch_get(struct sconn *c, const struct proto_header *h,
			 const uint8_t *f)
{
	struct proto_keys_req req;
	struct proto_list_iter it;
	struct proto_str k;
	struct sreq *r;
	int rc;

	rc = proto_keys_req_decode(f, h->fields_len, &req);
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		return;
	}
	r = req_new(c, h->id, h->opcode, RQ_BATCH);
	if (!r) {
		send_error(c, h->opcode, h->id, -ENOMEM, NULL, false);
		return;
	}
	r->queued = true;		/* no read slot yet */
	rc = wire_str(&req.bucket, r->bucket, sizeof(r->bucket))
		? STRATA_EBADBUCKET : 0;
	/* A key that may read nothing in the bucket learns nothing of it
	 * (not even whether it exists); others are checked per item. */
	if (!rc && !may(c, POLICY_OBJECT_GET, r->bucket, "", 0, true))
		rc = -EACCES;
	/* No bucket fails the whole request, not each item (§5.13). */
	if (!rc)
		rc = store_bucket_exists(c->srv->s, r->bucket);
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		req_free(r);
		return;
	}
	meter_target(c, h->id, r->bucket, NULL, 0);
	r->keys = calloc(req.keys.count, sizeof(*r->keys));
	r->keylens = calloc(req.keys.count, sizeof(*r->keylens));
	r->acc = malloc(PROTO_MAX_BODY_LEN);
	if (!r->keys || !r->keylens || !r->acc) {
		send_error(c, h->opcode, h->id, -ENOMEM, NULL, false);
		req_free(r);
		return;
	}
	proto_list_iter_init(&it, &req.keys);
	while (r->nkeys < req.keys.count && proto_list_next(&it, &k) == 1) {
		r->keys[r->nkeys] = strndup(k.s, k.len);
		if (!r->keys[r->nkeys])
			break;
		r->keylens[r->nkeys++] = k.len;
	}
	if (r->nkeys != req.keys.count) {
		send_error(c, h->opcode, h->id, -ENOMEM, NULL, false);
		req_free(r);
		return;
	}
	if (reads_active(c) < READS_MAX && !conn_congested(c)) {
		r->queued = false;
		batch_start(r);
	}
}

/* The response's first frame (the count), then the items. */
static void batch_start(struct sreq *r)
{
	struct proto_batch_resp resp = { .count = r->nkeys };
	uint8_t fields[64];
	size_t flen;

	if (proto_batch_resp_encode(&resp, fields, sizeof(fields), &flen)) {
		send_error(r->c, r->op, r->id, -EINVAL, NULL, false);
		req_free(r);
		return;
	}
	conn_write_frame(r->c, r->op, PROTO_F_RESPONSE, r->id, fields, flen,
			 NULL, 0);
	batch_next(r);
}

/*
 * Start waiting reads, oldest first (the list is newest first), while a
 * slot is free and the connection's output is not full: a read that ends
 * at once (a small object) leaves its bytes in the output, so a client
 * that does not read stops the next ones here, as it pauses those under
 * way (server_conn_drain comes back here).
 */
static void reads_resume(struct sconn *c)
{
	while (c->nc && c->st != SC_CLOSING && !conn_congested(c) &&
	       reads_active(c) < READS_MAX) {
		struct sreq *w = NULL;

		for (struct sreq *q = c->reqs; q; q = q->next)
			if (q->queued)
				w = q;
		if (!w)
			return;
		w->queued = false;
		if (w->kind == RQ_BATCH)
			batch_start(w);
		else
			get_start(w, w->bucket, w->keys[0], w->keylens[0]);
	}
}

/* A prestaging plan: handed to the store's tier module (store_hint). */
static void on_hint(struct sconn *c, const struct proto_header *h,
		    const uint8_t *f)
{
	const char *keys[PROTO_MAX_BATCH_KEYS];
	size_t lens[PROTO_MAX_BATCH_KEYS], n = 0;
	char bucket[PROTO_MAX_BUCKET_LEN + 1];
	struct proto_keys_req req;
	struct proto_list_iter it;
	struct proto_str k;
	int rc;

	rc = req_bucket(c, h, proto_keys_req_decode(f, h->fields_len, &req),
			&req.bucket, NULL, bucket);
	if (!rc) {
		proto_list_iter_init(&it, &req.keys);
		while (n < req.keys.count && n < PROTO_MAX_BATCH_KEYS &&
		       proto_list_next(&it, &k) == 1) {
			/* A hint names what will be read: keys the policy
			 * does not let it read are left out of it. */
			if (!may(c, POLICY_OBJECT_GET, bucket, k.s, k.len,
				 false)) {
				c->deny[0] = 0;
				continue;
			}
			keys[n] = k.s;	/* not NUL-terminated: lens[] */
			lens[n++] = k.len;
		}
		rc = store_hint(c->srv->s, bucket, keys, lens, n);
	}
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		return;
	}
	conn_write_frame(c, h->opcode, PROTO_F_RESPONSE | PROTO_F_END, h->id,
			 NULL, 0, NULL, 0);
}

/* Every age the protocol carries is one the store takes, and back. */
_Static_assert(STORE_LC_MAX_AGE_MS == PROTO_MAX_RULE_AGE * 1000,
	       "the store's rule ages must be the protocol's");

/* Bucket lifecycle rules: every authenticated key for now (access
 * policies will narrow it). */
static void on_lifecycle(struct sconn *c, const struct proto_header *h,
			 const uint8_t *f)
{
	struct store_lc_rule *rules = NULL;
	char bucket[PROTO_MAX_BUCKET_LEN + 1];
	struct proto_lifecycle_req req;
	struct proto_list_iter it;
	struct proto_str e;
	size_t n = 0;
	int rc;

	rc = req_bucket(c, h, proto_lifecycle_req_decode(f, h->fields_len, &req),
			&req.bucket, NULL, bucket);
	if (rc)
		goto out;
	if (h->opcode == PROTO_OP_LIFECYCLE_SET) {
		rules = calloc(req.rules.count ? req.rules.count : 1,
			       sizeof(*rules));
		if (!rules) {
			rc = -ENOMEM;
			goto out;
		}
		proto_list_iter_init(&it, &req.rules);
		while (n < req.rules.count && proto_list_next(&it, &e) == 1) {
			struct proto_rule pr;

			if (proto_rule_parse(&e, &pr) ||
			    pr.prefix.len >= sizeof(rules[n].prefix)) {
				rc = -EINVAL;
				goto out;
			}
			memcpy(rules[n].prefix, pr.prefix.s, pr.prefix.len);
			rules[n].prefix[pr.prefix.len] = 0;
			rules[n].age_ms = pr.age_s * 1000;
			rules[n].action = pr.action == PROTO_RULE_COLD ?
					  STORE_LC_COLD : STORE_LC_DELETE;
			n++;
		}
		rc = store_lifecycle_set(c->srv->s, bucket, rules, n);
		if (!rc)
			log_info("server", "%s set %zu lifecycle rule%s on %s",
				 c->principal, n, n == 1 ? "" : "s", bucket);
		if (!rc)
			conn_write_frame(c, h->opcode,
					 PROTO_F_RESPONSE | PROTO_F_END, h->id,
					 NULL, 0, NULL, 0);
	} else {
		struct proto_lifecycle_resp resp = { 0 };
		struct proto_str *el = NULL;
		uint8_t *fields = NULL, *lbuf = NULL;
		char *text = NULL;
		size_t flen;

		rc = store_lifecycle_get(c->srv->s, bucket, &rules, &n);
		if (rc)
			goto out;
		el = calloc(n ? n : 1, sizeof(*el));
		text = malloc((n ? n : 1) * (PROTO_MAX_RULE_LEN + 1));
		lbuf = malloc(PROTO_MAX_FIELDS_LEN);
		fields = malloc(PROTO_MAX_FIELDS_LEN);
		rc = el && text && lbuf && fields ? 0 : -ENOMEM;
		for (size_t i = 0; !rc && i < n; i++) {
			struct proto_rule pr = {
				.action = rules[i].action == STORE_LC_COLD ?
					  PROTO_RULE_COLD : PROTO_RULE_DELETE,
				.age_s = rules[i].age_ms / 1000,
				.prefix = { rules[i].prefix,
					    strlen(rules[i].prefix) },
			};
			char *t = text + i * (PROTO_MAX_RULE_LEN + 1);
			int len = proto_rule_format(&pr, t,
						    PROTO_MAX_RULE_LEN + 1);

			if (len < 0)
				rc = STRATA_ECORRUPT;
			el[i] = (struct proto_str){ t, (size_t)(len > 0 ? len : 0) };
		}
		if (!rc)
			rc = proto_list_build(lbuf, PROTO_MAX_FIELDS_LEN, el, n,
					      &resp.rules);
		if (!rc)
			rc = proto_lifecycle_resp_encode(&resp, fields,
							 PROTO_MAX_FIELDS_LEN,
							 &flen);
		if (!rc)
			conn_write_frame(c, h->opcode,
					 PROTO_F_RESPONSE | PROTO_F_END, h->id,
					 fields, flen, NULL, 0);
		free(el);
		free(text);
		free(lbuf);
		free(fields);
	}
out:
	free(rules);
	if (rc)
		send_error(c, h->opcode, h->id, rc,
			   rc == -EINVAL ? "bad lifecycle rule" : NULL, false);
}

/* Node counters for `strata admin tiers` (admin keys only). */
static void on_node_stats(struct sconn *c, const struct proto_header *h)
{
	static const char *const tn[STORE_TIERS] = { "hot", "cold" };
	struct proto_stats_resp resp = { 0 };
	struct proto_str el[64];
	char text[64][PROTO_MAX_STAT_LEN];
	uint8_t *lbuf = NULL, *fields = NULL;
	struct store_stats st;
	size_t n = 0, flen;
	int rc;

	if (!c->admin) {
		send_error(c, h->opcode, h->id, -EACCES,
			   "an admin access key is required", false);
		return;
	}
	rc = store_stats(c->srv->s, &st);
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		return;
	}
#define STAT(...) do {							\
		int len_ = snprintf(text[n], sizeof(text[n]), __VA_ARGS__); \
		if (n < 64 && len_ > 0 && (size_t)len_ < sizeof(text[n])) { \
			el[n] = (struct proto_str){ text[n], (size_t)len_ }; \
			n++;						\
		}							\
	} while (0)
	for (int t = 0; t < STORE_TIERS; t++) {
		STAT("tier.%s.dirs=%u", tn[t], st.tier_dirs[t]);
		STAT("tier.%s.used_bytes=%" PRIu64, tn[t], st.tier_used[t]);
		STAT("tier.%s.live_bytes=%" PRIu64, tn[t], st.live_bytes[t]);
		STAT("tier.%s.capacity_bytes=%" PRIu64, tn[t],
		     st.tier_capacity[t]);
	}
	STAT("tier.hot.high_watermark_pct=%u", st.tier_high_pct[0]);
	STAT("tier.hot.low_watermark_pct=%u", st.tier_low_pct[0]);
	STAT("mover.rate_bytes_per_s=%" PRIu64, st.mover_rate);
	STAT("mover.demoted_chunks=%" PRIu64, st.demoted_chunks);
	STAT("mover.demoted_bytes=%" PRIu64, st.demoted_bytes);
	STAT("mover.promoted_chunks=%" PRIu64, st.promoted_chunks);
	STAT("mover.promoted_bytes=%" PRIu64, st.promoted_bytes);
	STAT("mover.promote_queue=%" PRIu64, st.promote_queue);
	STAT("mover.spilled_bytes=%" PRIu64, st.spilled_bytes);
	STAT("mover.enospc=%" PRIu64, st.enospc);
	STAT("lifecycle.cold_chunks=%" PRIu64, st.lifecycle_cold);
	STAT("lifecycle.expired_objects=%" PRIu64, st.lifecycle_expired);
	STAT("prestage.hints=%" PRIu64, st.hints);
	STAT("prestage.plans=%" PRIu64, st.prestage_plans);
	STAT("prestage.objects=%" PRIu64, st.prestaged_objects);
	STAT("cache.hits=%" PRIu64, st.cache_hits);
	STAT("lookup.hits=%" PRIu64, st.objmeta_hits);
	STAT("cache.misses=%" PRIu64, st.cache_misses);
	STAT("cache.evictions=%" PRIu64, st.cache_evictions);
	STAT("cache.bytes=%" PRIu64, st.cache_bytes);
	STAT("cache.budget_bytes=%" PRIu64, st.cache_budget);
	STAT("transfer.bytes=%" PRIu64, st.transfer_bytes);
	STAT("transfer.budget_bytes=%" PRIu64, st.transfer_budget);
	STAT("transfer.waits=%" PRIu64, st.transfer_waits);
	STAT("transfer.given_back_bytes=%" PRIu64, st.transfer_given_back);
	STAT("compaction.segments=%" PRIu64, st.compacted_segments);
	STAT("compaction.bytes=%" PRIu64, st.compacted_bytes);
	STAT("store.segments=%" PRIu64, st.segments);
	STAT("store.corrupt=%" PRIu64, st.corrupt);
	/* Client connections held, closed ones included until their last
	 * request lets go. */
	STAT("server.connections=%u", c->srv->nconns);
	if (c->srv->o.ans) {
		struct anscache_stats as;

		anscache_stats(c->srv->o.ans, &as);
		STAT("answers.hits=%" PRIu64, as.hits);
		STAT("answers.misses=%" PRIu64, as.misses);
		STAT("answers.entries=%" PRIu64, as.entries);
		STAT("answers.bytes=%" PRIu64, as.bytes);
	}
	{
		uint64_t pend = 0;

		for (const struct sconn *o = c->srv->conns; o; o = o->next)
			if (o->nc)
				pend += net_conn_write_pending(o->nc);
		/* Response bytes waiting for their clients to read them. */
		STAT("server.unsent_bytes=%" PRIu64, pend);
	}
#undef STAT
	lbuf = malloc(PROTO_MAX_FIELDS_LEN);
	fields = malloc(PROTO_MAX_FIELDS_LEN);
	rc = lbuf && fields ? 0 : -ENOMEM;
	if (!rc)
		rc = proto_list_build(lbuf, PROTO_MAX_FIELDS_LEN, el, n,
				      &resp.stats);
	if (!rc)
		rc = proto_stats_resp_encode(&resp, fields,
					     PROTO_MAX_FIELDS_LEN, &flen);
	if (rc)
		send_error(c, h->opcode, h->id, rc, NULL, false);
	else
		conn_write_frame(c, h->opcode, PROTO_F_RESPONSE | PROTO_F_END,
				 h->id, fields, flen, NULL, 0);
	free(lbuf);
	free(fields);
}

/* ---- access keys (admin principals only) ---- */

/* How many admin keys exist (deleting the last one would lock everybody
 * out of key management). */
static int count_admins(struct store *s, size_t *admins)
{
	char **ids;
	uint32_t *fl;
	size_t n;
	int rc = store_access_key_list(s, &ids, &fl, &n);

	if (rc)
		return rc;
	*admins = 0;
	for (size_t i = 0; i < n; i++) {
		*admins += (fl[i] & META_AKEY_ADMIN) != 0;
		free(ids[i]);
	}
	free(ids);
	free(fl);
	return 0;
}

/* A deleted key's connections take no new requests (frame()); those
 * under way finish. */
static void revoke_key(struct server *srv, const char *id)
{
	for (struct sconn *o = srv->conns; o; o = o->next)
		if (o->st == SC_READY && !strcmp(o->principal, id)) {
			o->revoked = true;
			if (o->nc)
				net_conn_set_io_ok(o->nc, false);
		}
}

/* A key's connections take its new policy and attributes for their next
 * requests. */
static void regrant_key(struct server *srv, const char *id)
{
	for (struct sconn *o = srv->conns; o; o = o->next)
		if (o->st == SC_READY && !o->admin &&
		    !strcmp(o->principal, id))
			conn_load_grant(o);
}

/* Check a grant's new parts before they are stored: the policy parses,
 * attribute names are what "${principal.NAME}" can name.  On refusal the
 * reason is sent and a non-zero code returned. */
static int grant_check(struct sconn *c, const struct proto_header *h,
		       const struct proto_str *policy,
		       const struct proto_list *attrs)
{
	char err[PROTO_MAX_TEXT_LEN - 32], msg[PROTO_MAX_TEXT_LEN];
	struct proto_list_iter it;
	struct proto_str e;
	struct policy *p;
	uint32_t i = 0;
	int rc;

	if (policy->s && policy->len) {
		rc = policy_parse(policy->s, policy->len, &p, err, sizeof(err));
		if (rc) {
			snprintf(msg, sizeof(msg), "bad policy: %s", err);
			send_error(c, h->opcode, h->id, rc,
				   rc == -ENOMEM ? NULL : msg, false);
			return rc;
		}
		policy_free(p);
	}
	if (!attrs->p)
		return 0;
	proto_list_iter_init(&it, attrs);
	for (; proto_list_next(&it, &e) == 1; i++) {
		/* "id" is the key's id in policies: no attribute hides it. */
		bool ok = e.len > 0 && !(e.len == 2 && !memcmp(e.s, "id", 2));

		for (size_t j = 0; (i & 1) == 0 && j < e.len; j++)
			ok = ok && (isalnum((unsigned char)e.s[j]) ||
				    strchr("_.-", e.s[j]));
		if (!(i & 1) && !ok) {
			snprintf(msg, sizeof(msg), "bad attribute name "
				 "\"%.*s\": use letters, digits, '_', '.', "
				 "'-' (\"id\" is the key's id)",
				 (int)(e.len > 64 ? 64 : e.len), e.s);
			send_error(c, h->opcode, h->id, STRATA_EBADMETA, msg,
				   false);
			return STRATA_EBADMETA;
		}
	}
	return 0;
}

/* KEY_INFO: an admin about any key, any key about itself. */
static void on_key_info(struct sconn *c, const struct proto_header *h,
			const uint8_t *f)
{
	struct proto_key_req req;
	struct proto_key_info_resp resp = { 0 };
	struct store_grant g = { 0 };
	char id[META_AKEY_ID_MAX + 1];
	uint8_t *out = NULL;
	uint32_t fl = 0;
	size_t n;
	int rc;

	rc = proto_key_req_decode(f, h->fields_len, &req);
	if (!rc && wire_str(&req.access_key_id, id, sizeof(id)))
		rc = -EINVAL;
	if (!rc)
		meter_target(c, h->id, "", id, strlen(id));
	if (!rc && !c->admin && strcmp(id, c->principal)) {
		send_error(c, h->opcode, h->id, -EACCES, "an admin access key "
			   "is required (a key may ask only about itself)",
			   false);
		return;
	}
	if (!rc)
		rc = store_access_key_info(c->srv->s, id, &fl, &resp.ctime_ms);
	if (rc == -ENOENT) {
		send_error(c, h->opcode, h->id, rc, "no such access key", false);
		return;
	}
	if (!rc)
		rc = store_access_key_grant_get(c->srv->s, id, &g);
	if (!rc && !(out = malloc(PROTO_MAX_FIELDS_LEN)))
		rc = -ENOMEM;
	if (!rc) {
		resp.access_key_id.s = id;
		resp.access_key_id.len = strlen(id);
		resp.admin = fl & META_AKEY_ADMIN;
		resp.policy.s = g.policy;
		resp.policy.len = g.policylen;
		resp.attrs.p = g.attrs;
		resp.attrs.len = g.attrslen;
		resp.attrs.count = 2 * g.nattrs;
		rc = proto_key_info_resp_encode(&resp, out, PROTO_MAX_FIELDS_LEN,
						&n);
	}
	if (!rc)
		conn_write_frame(c, h->opcode, PROTO_F_RESPONSE | PROTO_F_END,
				 h->id, out, n, NULL, 0);
	else
		send_error(c, h->opcode, h->id, rc, NULL, false);
	free(out);
	store_grant_free(&g);
}

/* KEY_SET: replace a key's policy and/or attributes. */
static void on_key_set(struct sconn *c, const struct proto_header *h,
		       const uint8_t *f)
{
	struct proto_key_set_req req;
	struct store_grant g = { 0 };
	char id[META_AKEY_ID_MAX + 1];
	int rc;

	rc = proto_key_set_req_decode(f, h->fields_len, &req);
	if (!rc && wire_str(&req.access_key_id, id, sizeof(id)))
		rc = -EINVAL;
	if (!rc)
		meter_target(c, h->id, "", id, strlen(id));
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		return;
	}
	if (grant_check(c, h, &req.policy, &req.attrs))
		return;
	rc = store_access_key_grant_get(c->srv->s, id, &g);
	if (!rc && req.policy.s) {
		free(g.policy);
		g.policy = NULL;
		g.policylen = 0;
		if (req.policy.len && !(g.policy = strndup(req.policy.s,
							   req.policy.len)))
			rc = -ENOMEM;
		else
			g.policylen = req.policy.len;
	}
	if (!rc && req.has_attrs) {
		free(g.attrs);
		g.attrs = NULL;
		g.attrslen = 0;
		g.nattrs = 0;
		if (req.attrs.len && !(g.attrs = malloc(req.attrs.len))) {
			rc = -ENOMEM;
		} else if (req.attrs.len) {
			memcpy(g.attrs, req.attrs.p, req.attrs.len);
			g.attrslen = req.attrs.len;
			g.nattrs = req.attrs.count / 2;
		}
	}
	if (!rc)
		rc = store_access_key_grant_put(c->srv->s, id, &g);
	store_grant_free(&g);
	if (rc == -ENOENT) {
		send_error(c, h->opcode, h->id, rc, "no such access key", false);
		return;
	}
	if (rc) {
		send_error(c, h->opcode, h->id, rc, NULL, false);
		return;
	}
	log_info("server", "%s set the %s%s%s of access key %s", c->principal,
		 req.policy.s ? "policy" : "", req.policy.s && req.has_attrs ?
		 " and " : "", req.has_attrs ? "attributes" : "", id);
	regrant_key(c->srv, id);
	conn_write_frame(c, h->opcode, PROTO_F_RESPONSE | PROTO_F_END, h->id,
			 NULL, 0, NULL, 0);
}

static void on_key_op(struct sconn *c, const struct proto_header *h,
		      const uint8_t *f)
{
	struct store *s = c->srv->s;
	uint8_t out[1024];
	size_t n;
	int rc = 0;

	if (h->opcode == PROTO_OP_KEY_INFO) {
		on_key_info(c, h, f);
		return;
	}
	if (!c->admin) {
		send_error(c, h->opcode, h->id, -EACCES,
			   "an admin access key is required", false);
		return;
	}
	if (h->opcode == PROTO_OP_KEY_SET) {
		on_key_set(c, h, f);
		return;
	}
	if (h->opcode == PROTO_OP_KEY_CREATE) {
		struct proto_key_create_req req;
		struct proto_key_create_resp resp = { 0 };
		char id[STORE_AKEY_ID_LEN + 1], secret[STORE_AKEY_SECRET_LEN + 1];

		rc = proto_key_create_req_decode(f, h->fields_len, &req);
		if (rc) {
			send_error(c, h->opcode, h->id, rc, NULL, false);
			return;
		}
		if (grant_check(c, h, &req.policy, &req.attrs))
			return;
		rc = store_access_key_generate(s,
			req.admin ? META_AKEY_ADMIN : 0, id, secret);
		if (!rc)
			meter_target(c, h->id, "", id, strlen(id));
		if (!rc && ((req.policy.s && req.policy.len) || req.attrs.len)) {
			/* The key exists from here: a grant that cannot be
			 * stored takes it away again (never a key with less
			 * than it was asked for, or more). */
			struct store_grant g = {
				.policy = (char *)req.policy.s,
				.policylen = req.policy.s ? req.policy.len : 0,
				.attrs = (uint8_t *)req.attrs.p,
				.attrslen = req.attrs.p ? req.attrs.len : 0,
				.nattrs = req.attrs.count / 2,
			};

			rc = store_access_key_grant_put(s, id, &g);
			if (rc)
				store_access_key_delete(s, id);
		}
		if (!rc) {
			resp.access_key_id.s = id;
			resp.access_key_id.len = strlen(id);
			resp.secret.s = secret;
			resp.secret.len = strlen(secret);
			resp.admin = req.admin;
			rc = proto_key_create_resp_encode(&resp, out, sizeof(out),
							  &n);
		}
		OPENSSL_cleanse(secret, sizeof(secret));
		if (!rc) {
			log_info("server", "%s created access key %s%s",
				 c->principal, id, req.admin ? " (admin)" : "");
			conn_write_frame(c, h->opcode,
					 PROTO_F_RESPONSE | PROTO_F_END, h->id,
					 out, n, NULL, 0);
			OPENSSL_cleanse(out, sizeof(out));
			return;
		}
	} else if (h->opcode == PROTO_OP_KEY_DELETE) {
		struct proto_key_req req;
		char id[META_AKEY_ID_MAX + 1];
		uint8_t sec[META_AKEY_SECRET_MAX];
		size_t slen, admins = 0;
		uint32_t fl = 0;

		rc = proto_key_req_decode(f, h->fields_len, &req);
		if (!rc && wire_str(&req.access_key_id, id, sizeof(id)))
			rc = -EINVAL;
		if (!rc)
			meter_target(c, h->id, "", id, strlen(id));
		if (!rc)
			rc = store_access_key_get(s, id, sec, &slen, &fl);
		OPENSSL_cleanse(sec, sizeof(sec));
		if (!rc && (fl & META_AKEY_ADMIN))
			rc = count_admins(s, &admins);
		if (!rc && (fl & META_AKEY_ADMIN) && admins <= 1) {
			send_error(c, h->opcode, h->id, -EBUSY,
				   "refusing to delete the last admin key",
				   false);
			return;
		}
		if (!rc)
			rc = store_access_key_delete(s, id);
		if (rc == -ENOENT) {
			send_error(c, h->opcode, h->id, rc, "no such access key",
				   false);
			return;
		}
		if (!rc) {
			log_info("server", "%s deleted access key %s",
				 c->principal, id);
			revoke_key(c->srv, id);
			conn_write_frame(c, h->opcode,
					 PROTO_F_RESPONSE | PROTO_F_END, h->id,
					 NULL, 0, NULL, 0);
			return;
		}
	} else {
		struct proto_key_list_resp resp = { 0 };
		struct rec_out o = { .c = c, .op = h->opcode, .id = h->id,
				     .first = true };
		uint8_t fields[64], rec[256];
		char **ids = NULL;
		uint32_t *fl = NULL;
		size_t cnt = 0, rlen;

		rc = store_access_key_list(s, &ids, &fl, &cnt);
		if (!rc) {
			resp.count = (uint32_t)cnt;
			o.body = malloc(PROTO_MAX_BODY_LEN);
			if (!o.body || proto_key_list_resp_encode(&resp, fields,
						sizeof(fields), &o.flen))
				rc = -ENOMEM;
		}
		if (!rc) {
			o.fields = fields;
			for (size_t i = 0; i < cnt && !o.err; i++) {
				struct proto_key_entry e = {
					.access_key_id = { ids[i], strlen(ids[i]) },
					.admin = fl[i] & META_AKEY_ADMIN,
				};

				if (proto_key_entry_encode(&e, rec, sizeof(rec),
							   &rlen) == 0)
					rec_add(&o, rec, rlen);
			}
			rec_flush(&o, true);
		}
		for (size_t i = 0; i < cnt; i++)
			free(ids[i]);
		free(ids);
		free(fl);
		free(o.body);
		if (!rc)
			return;
	}
	send_error(c, h->opcode, h->id, rc, NULL, false);
}

/* ---- frames ---- */

static void on_cancel(struct sconn *c, const struct proto_header *h)
{
	struct sreq *r = req_find(c, h->id);

	if (!r || r->cancelled)
		return;			/* finished already: nothing to do */
	r->cancelled = true;
	if (r->body_open) {
		/* CANCEL ends the request's message (PROTOCOL.md §8): an
		 * upload under way is abandoned and answered here; one
		 * already answered (refused early, its tail being
		 * discarded) was answered before.  Either way the id is
		 * free again. */
		if (r->kind == RQ_PUT && r->put) {
			store_put_abort(r->put);
			r->put = NULL;
			send_error(c, r->op, r->id, STRATA_EABORTED, NULL,
				   false);
		}
		req_free(r);
		return;
	}
	if (r->kind != RQ_GET && r->kind != RQ_BATCH)
		return;
	if (r->queued) {		/* never started: nothing was sent */
		send_error(c, r->op, r->id, STRATA_EABORTED, NULL, false);
		req_free(r);
		return;
	}
	/* The response ends here (PROTOCOL.md §8): the client reads up to
	 * this END.  The get writes nothing more, stops at its next data
	 * callback and frees itself; a paused one is resumed to get there
	 * (which may free r). */
	send_error(c, r->op, r->id, STRATA_EABORTED, NULL,
		   r->kind == RQ_BATCH || r->fields_sent);
	if (r->get) {
		/* No more reads for it, even one waiting for the transfer
		 * budget: it ends once those in flight are back. */
		r->paused = false;
		store_get_abort(r->get);	/* may free r */
	} else if (r->paused) {
		r->paused = false;
		batch_next(r);		/* between items: ends, frees r */
	}
}

/* Uploads whose body is still coming, each buffering part of a chunk. */
static unsigned open_puts(const struct sconn *c)
{
	unsigned n = 0;

	for (const struct sreq *r = c->reqs; r; r = r->next)
		n += r->kind == RQ_PUT && r->body_open;
	return n;
}

static void frame(struct sconn *c, const struct proto_header *h,
		  const uint8_t *f, const uint8_t *body)
{
	struct sreq *r;

	if (h->flags & PROTO_F_RESPONSE) {
		conn_fail(c, "a client sent a response frame");
		return;
	}
	if (h->opcode == PROTO_OP_CANCEL) {
		on_cancel(c, h);
		return;
	}
	if (h->flags & PROTO_F_CONT) {
		/* Only request bodies continue: PUT, and the messages of
		 * opcodes we do not know, which are skipped. */
		r = req_find(c, h->id);
		if (!r)
			return;		/* the request failed; its tail */
		/* A request whose message ended (a PUT committing, a GET)
		 * takes no more frames (PROTOCOL.md §2.4). */
		if (!r->body_open || h->opcode != r->op ||
		    (r->kind != RQ_PUT && r->kind != RQ_DISCARD)) {
			conn_fail(c, "continuation of a request whose message ended");
			return;
		}
		if (h->flags & PROTO_F_END)
			r->body_open = false;
		if (r->kind == RQ_DISCARD) {
			if (h->flags & PROTO_F_END)
				req_free(r);
			return;
		}
		put_body(r, body, h->body_len, h->flags & PROTO_F_END);
		return;
	}
	if (req_find(c, h->id)) {
		conn_fail(c, "request id already in use");
		return;
	}
	switch (h->opcode) {
	case PROTO_OP_HELLO:
		on_hello(c, h, f);
		return;
	case PROTO_OP_AUTH:
		on_auth(c, h, f);
		return;
	case PROTO_OP_PING:
		conn_write_frame(c, h->opcode, PROTO_F_RESPONSE | PROTO_F_END,
				 h->id, NULL, 0, NULL, 0);
		return;
	default:
		break;
	}
	if (c->st != SC_READY) {
		send_error(c, h->opcode, h->id, STRATA_EAUTH,
			   "authenticate first (HELLO, AUTH)", false);
		conn_fail(c, "request before authentication");
		return;
	}
	if (c->revoked) {
		send_error(c, h->opcode, h->id, STRATA_EAUTH,
			   "the access key of this connection was deleted",
			   false);
		conn_fail(c, "its access key was deleted");
		return;
	}
	if (c->srv->shutting) {
		/* After our GOAWAY: the client retries it elsewhere.  Its
		 * body's tail, if any, is dropped as below. */
		send_error(c, h->opcode, h->id, STRATA_ECLOSING,
			   "the node is shutting down", false);
		return;
	}
	if (c->nreqs >= c->srv->o.max_requests) {
		/* No request is kept for it, or a client could grow the list
		 * without bound: the rest of its body is dropped as the tail
		 * of an id not in flight. */
		send_error(c, h->opcode, h->id, -EBUSY,
			   "too many requests in flight on this connection",
			   false);
		return;
	}
	if (h->opcode == PROTO_OP_PUT && !(h->flags & PROTO_F_END) &&
	    open_puts(c) >= OPEN_PUTS_MAX) {
		/* Not kept either (above): its tail is dropped. */
		send_error(c, h->opcode, h->id, -EBUSY,
			   "too many uploads under way on this connection",
			   false);
		return;
	}
	switch (h->opcode) {
	case PROTO_OP_BUCKET_CREATE:
	case PROTO_OP_BUCKET_DELETE:
		on_bucket_change(c, h, f);
		break;
	case PROTO_OP_BUCKET_LIST:
		on_bucket_list(c, h, f);
		break;
	case PROTO_OP_PUT:
		on_put(c, h, f, body);
		break;
	case PROTO_OP_GET:
		on_get(c, h, f);
		break;
	case PROTO_OP_STAT:
		on_stat(c, h, f);
		break;
	case PROTO_OP_DELETE:
		on_delete(c, h, f);
		break;
	case PROTO_OP_LIST:
		on_list(c, h, f);
		break;
	case PROTO_OP_BATCH_GET:
		on_batch_get(c, h, f);
		break;
	case PROTO_OP_KEY_CREATE:
	case PROTO_OP_KEY_LIST:
	case PROTO_OP_KEY_DELETE:
	case PROTO_OP_KEY_SET:
	case PROTO_OP_KEY_INFO:
		on_key_op(c, h, f);
		break;
	case PROTO_OP_HINT:
		on_hint(c, h, f);
		break;
	case PROTO_OP_LIFECYCLE_SET:
	case PROTO_OP_LIFECYCLE_GET:
		on_lifecycle(c, h, f);
		break;
	case PROTO_OP_NODE_STATS:
		on_node_stats(c, h);
		break;
	default:
		send_error(c, h->opcode, h->id, -EOPNOTSUPP,
			   "operation not supported", false);
		if (proto_op_has_body(h->opcode, false) &&
		    !(h->flags & PROTO_F_END)) {
			/* Its frames are skipped up to its END. */
			r = req_new(c, h->id, h->opcode, RQ_DISCARD);
			if (!r)
				conn_fail(c, "out of memory");
			else
				r->body_open = true;
		}
		break;
	}
}

/* A request's first frame opens its account (c->cur) while it is handled;
 * a request that lives on takes the account into its sreq (req_new). */
static void frame_metered(struct sconn *c, const struct proto_header *h,
			  const uint8_t *f, const uint8_t *body)
{
	bool first = !(h->flags & (PROTO_F_RESPONSE | PROTO_F_CONT)) &&
		     h->opcode != PROTO_OP_CANCEL && !req_find(c, h->id);

	if (first) {
		c->cur = (struct meter){ .start_ns = uv_hrtime() };
		c->cur_id = h->id;
		c->cur_set = true;
	}
	frame(c, h, f, body);
	if (first) {
		free(c->cur.target);
		c->cur.target = NULL;
		c->cur_set = false;
	}
}

/* Cut whole frames off the input buffer and run them. */
/*
 * A client that sends requests and does not read the answers: before
 * AUTH (PING needs no key) it is closed once PREAUTH_OUT_MAX bytes of
 * answers wait; after, it is not read until its answers drain under the
 * high-water mark.  What one connection makes the node buffer stays
 * bounded either way.  (The node-wide cap pauses GET data, not requests:
 * a few slow readers must not stop everyone's small requests.)  Returns
 * true: take no more frames now.
 */
#define PREAUTH_OUT_MAX ((size_t)64 << 10)

static bool input_gate(struct sconn *c)
{
	size_t pend = net_conn_write_pending(c->nc);

	if (c->st != SC_READY) {
		if (pend <= PREAUTH_OUT_MAX)
			return false;
		/* Not a graceful close: it would wait for the client to read
		 * what it does not, reading (and dropping) its input. */
		log_info("server", "closing connection from %s: answers piling up unread before authentication",
			 net_conn_peer(c->nc));
		c->st = SC_CLOSING;
		net_conn_abort(c->nc);
		return true;
	}
	if (pend <= c->srv->o.out_high)
		return false;
	c->opaused = true;
	net_conn_pause_read(c->nc);
	return true;
}

static void input_process(struct sconn *c)
{
	size_t pos = 0;

	if (c->in_data)
		return;
	c->in_data = true;
	while (c->nc && c->st != SC_CLOSING && c->st != SC_AUTH_FAILED &&
	       !c->rpaused && !c->opaused) {
		struct proto_header h;
		size_t total;
		int rc;

		rc = proto_header_decode(c->rbuf + pos, c->rlen - pos, &h);
		if (rc == -EAGAIN)
			break;
		if (input_gate(c))
			break;
		if (rc) {
			const char *why = rc == STRATA_EPROTOVERSION
				? "unsupported protocol version"
				: "malformed frame";

			send_goaway(c, rc, why);
			conn_fail(c, why);
			break;
		}
		total = PROTO_HEADER_LEN + h.fields_len + h.body_len;
		if (c->rlen - pos < total)
			break;
		frame_metered(c, &h, c->rbuf + pos + PROTO_HEADER_LEN,
			      c->rbuf + pos + PROTO_HEADER_LEN + h.fields_len);
		pos += total;
	}
	if (pos) {
		memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
		c->rlen -= pos;
	}
	c->in_data = false;
	conn_maybe_free(c);
}

/* ---- connections ---- */

void server_conn_open(struct net_conn *nc)
{
	struct server *srv = net_conn_arg(nc);
	struct sconn *c = calloc(1, sizeof(*c));

	if (!c) {
		net_conn_abort(nc);
		return;
	}
	c->srv = srv;
	c->nc = nc;
	c->st = SC_HELLO;
	c->opened_ms = uv_now(srv->loop);
	c->in_ms = c->opened_ms;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->pprev = &c->next;
	c->pprev = &srv->conns;
	srv->conns = c;
	srv->nconns++;
	if (srv->o.metrics)
		srv->o.metrics->conns_opened++;
	net_conn_set_data(nc, c);
}

void server_conn_data(struct net_conn *nc, const uint8_t *buf, size_t len)
{
	struct sconn *c = net_conn_data(nc);

	if (!c || c->st == SC_CLOSING || c->st == SC_AUTH_FAILED)
		return;
	c->in_ms = uv_now(c->srv->loop);
	if (c->rlen + len > c->rcap) {
		size_t cap = c->rcap ? c->rcap : 64 * 1024;
		uint8_t *b;

		while (cap < c->rlen + len)
			cap *= 2;
		/* Never more than a frame plus one read: lengths were not
		 * checked yet for what is buffered past the frame. */
		if (cap > 2 * FRAME_MAX)
			cap = 2 * FRAME_MAX;
		if (c->rlen + len > cap) {
			conn_fail(c, "input over the frame limit");
			return;
		}
		b = realloc(c->rbuf, cap);
		if (!b) {
			conn_fail(c, "out of memory");
			return;
		}
		c->rbuf = b;
		c->rcap = cap;
	}
	memcpy(c->rbuf + c->rlen, buf, len);
	c->rlen += len;
	if (c->srv->o.metrics)
		c->srv->o.metrics->bytes_received += len;
	input_process(c);
}

/* The node's output fell back under its cap: resume every paused get
 * (each pauses again at once if its own connection is still full). */
static void server_drain(void *arg)
{
	struct server *srv = arg;
	struct sconn *c, *next;

	for (c = srv->conns; c; c = next) {
		next = c->next;
		if (c->nc)
			server_conn_drain(c->nc);
	}
}

void server_conn_drain(struct net_conn *nc)
{
	struct sconn *c = net_conn_data(nc);

	if (!c)
		return;
	/*
	 * Input first, while the output is down at its drain level: requests
	 * that wait behind paused responses (a CANCEL of one above all) must
	 * not wait for them to end, which they would if the responses,
	 * resumed first, filled the output back over its mark every time.
	 */
	if (c->opaused && net_conn_write_pending(nc) <= c->srv->o.out_high) {
		c->opaused = false;
		c->in_ms = uv_now(c->srv->loop);
		if (!c->rpaused)
			net_conn_resume_read(nc);
		c->holds++;
		input_process(c);
		c->holds--;
		if (!c->nc) {
			conn_maybe_free(c);
			return;
		}
	}
	/* A resume may end its request, and the slot it frees start or end
	 * others (reads that waited): mark the paused ones, then take them
	 * one at a time, looking afresh each time. */
	for (struct sreq *r = c->reqs; r; r = r->next)
		r->resume_due = r->paused;
	for (;;) {
		struct sreq *r = c->reqs;

		while (r && !r->resume_due)
			r = r->next;
		if (!r)
			break;
		r->resume_due = false;
		r->paused = false;
		if (r->get && r->rest_len) {
			/* A held chunk's rest first (get_data). */
			if (get_write_rest(r, true)) {
				store_get_abort(r->get);	/* may free r */
				continue;
			}
			if (r->rest_len) {
				r->paused = true;	/* full again */
				continue;
			}
		}
		if (r->get)
			store_get_resume(r->get);	/* may free r */
		else
			batch_next(r);		/* between items; may free r */
	}
	reads_resume(c);
	if (c->opaused && c->nc &&
	    net_conn_write_pending(c->nc) <= c->srv->o.out_high) {
		c->opaused = false;
		c->in_ms = uv_now(c->srv->loop);
		if (!c->rpaused)
			net_conn_resume_read(c->nc);
		input_process(c);
	}
}

void server_conn_closed(struct net_conn *nc, int reason)
{
	struct sconn *c = net_conn_data(nc);

	if (!c)
		return;
	if (reason && reason != -ESHUTDOWN)
		log_debug("server", "connection from %s closed: %s",
			  net_conn_peer(nc), strerror(-reason));
	c->nc = NULL;
	net_conn_set_data(nc, NULL);
	if (c->srv->o.metrics)
		c->srv->o.metrics->conns_closed++;
	/* Hold the connection while its requests let go of it. */
	c->in_data = true;
	for (struct sreq *r = c->reqs, *next; r; r = next) {
		next = r->next;
		r->cancelled = true;
		/* An upload cut short never becomes visible. */
		if (r->kind == RQ_PUT && r->put && !r->committing) {
			store_put_abort(r->put);
			r->put = NULL;
			req_free(r);
			continue;
		}
		/* A request whose frames were being skipped (a refused
		 * upload, an unknown opcode), or a read that never started,
		 * waits for nothing more. */
		if ((r->kind == RQ_DISCARD && r->body_open) || r->queued)
			req_free(r);
		else if (r->get) {
			r->paused = false;
			store_get_abort(r->get);	/* may free r */
		} else if (r->paused) {
			r->paused = false;
			batch_next(r);	/* between items: frees r */
		}
	}
	c->in_data = false;
	conn_maybe_free(c);
}

/* The last reference: the network side closed and no store callback is
 * still due. */
static void conn_maybe_free(struct sconn *c)
{
	if (c->nc || c->reqs || c->in_data || c->holds)
		return;
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	c->srv->nconns--;
	free(c->fail_m.target);
	conn_drop_grant(c);
	free(c->rbuf);
	free(c->wbuf);
	free(c);
}

/* Whether a request message of c has not ended (an upload's body is
 * under way): the client owes bytes. */
static bool body_owed(const struct sconn *c)
{
	for (const struct sreq *r = c->reqs; r; r = r->next)
		if (r->body_open && !r->cancelled)
			return true;
	return false;
}

/* Answer failed AUTHs once AUTH_FAIL_DELAY_MS passed, and close
 * connections that did not authenticate in time: an open TLS session
 * costs the node memory and a connection slot, and only a client that
 * proved a key may keep one as long as it likes.  And close those whose
 * upload stopped: a body under way holds up to two chunks of the node's
 * memory, and one that sends nothing more for body_timeout_ms (while the
 * server reads) is stuck or hostile. */
static void auth_sweep(uv_timer_t *t)
{
	struct server *srv = t->data;
	uint64_t now = uv_now(srv->loop);

	for (struct sconn *c = srv->conns, *next; c; c = next) {
		char msg[96];

		next = c->next;	/* closing may free c */
		if (c->nc && c->st == SC_READY && srv->o.body_timeout_ms &&
		    !c->rpaused && !c->opaused &&
		    now - c->in_ms >= srv->o.body_timeout_ms && body_owed(c)) {
			snprintf(msg, sizeof(msg), "a request's body stopped "
				 "coming for %u ms", srv->o.body_timeout_ms);
			send_goaway(c, -ETIMEDOUT, msg);
			conn_fail(c, msg);
			continue;
		}
		if (c->nc && c->st == SC_AUTH_FAILED) {
			if (now - c->fail_ms < AUTH_FAIL_DELAY_MS)
				continue;
			send_error(c, PROTO_OP_AUTH, c->fail_id, STRATA_EAUTH,
				   NULL, false);
			free(c->fail_m.target);
			c->fail_m.target = NULL;
			conn_fail(c, "authentication failed");
			continue;
		}
		if (!c->nc || c->st == SC_READY || c->st == SC_CLOSING ||
		    now - c->opened_ms < srv->o.auth_timeout_ms)
			continue;
		snprintf(msg, sizeof(msg), "no authentication within %u ms",
			 srv->o.auth_timeout_ms);
		send_goaway(c, -ETIMEDOUT, msg);
		conn_fail(c, msg);
	}
}

void server_shutdown_begin(struct server *srv)
{
	if (srv->shutting)
		return;
	srv->shutting = true;
	if (srv->o.ans)
		anscache_set_enabled(srv->o.ans, false);
	for (struct sconn *c = srv->conns; c; c = c->next)
		if (c->nc && c->st == SC_READY)
			send_goaway(c, STRATA_ECLOSING,
				    "the node is shutting down");
	server_shutdown_poll(srv, false);
}

unsigned server_shutdown_poll(struct server *srv, bool force)
{
	unsigned left = 0;

	for (struct sconn *c = srv->conns, *next; c; c = next) {
		next = c->next;	/* closing may free c */
		if (!c->nc)
			continue;
		/* Not yet authenticated, or nothing left in flight: closed
		 * now (gracefully: what is queued goes out first). */
		if (c->st == SC_CLOSING)
			continue;
		if (c->st != SC_READY || !c->nreqs) {
			c->st = SC_CLOSING;	/* one log line for all: main.c */
			net_conn_close(c->nc);
		} else if (force) {
			/* Its time is up: what it has not read yet would
			 * only hold the close up for the linger time. */
			c->st = SC_CLOSING;
			net_conn_abort(c->nc);
			left++;
		} else {
			left++;
		}
	}
	return left;
}

int server_new(uv_loop_t *loop, struct store *s, const struct server_opts *o,
	       struct server **out)
{
	struct server *srv = calloc(1, sizeof(*srv));
	unsigned sweep;

	if (!srv)
		return -ENOMEM;
	srv->loop = loop;
	srv->s = s;
	srv->o = *o;
	if (!srv->o.max_requests)
		srv->o.max_requests = 64;
	if (!srv->o.out_high)
		srv->o.out_high = NET_DEFAULT_OUT_HIGH_WATER;
	if (!srv->o.auth_timeout_ms)
		srv->o.auth_timeout_ms = AUTH_TIMEOUT_MS;
	if (srv->o.ans)
		anscache_set_enabled(srv->o.ans, !srv->o.access_log &&
				     !srv->o.audit);
	sweep = srv->o.auth_timeout_ms / 4;
	sweep = sweep < AUTH_SWEEP_MS ? (sweep ? sweep : 1) : AUTH_SWEEP_MS;
	uv_timer_init(loop, &srv->auth_timer);
	srv->auth_timer.data = srv;
	uv_timer_start(&srv->auth_timer, auth_sweep, sweep, sweep);
	uv_unref((uv_handle_t *)&srv->auth_timer);
	*out = srv;
	return 0;
}

static void server_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void server_free(struct server *srv)
{
	uv_close((uv_handle_t *)&srv->auth_timer, server_timer_closed);
}

/* On a connection's I/O loop: its answer cache cuts the frames. */
static void server_io_input(struct net_conn *nc, const uint8_t *p, size_t n)
{
	struct server *srv = net_conn_arg(nc);

	anscache_io_input(srv->o.ans, nc, p, n);
}

void server_net_callbacks(struct net_callbacks *cbs)
{
	cbs->on_open = server_conn_open;
	cbs->on_data = server_conn_data;
	cbs->on_drain = server_conn_drain;
	cbs->on_close = server_conn_closed;
	cbs->on_server_drain = server_drain;
	cbs->io_input = server_io_input;
	cbs->io_state_free = anscache_io_state_free;
}

void server_set_body_timeout(struct server *srv, uint32_t ms)
{
	srv->o.body_timeout_ms = ms;
}

void server_set_access_log(struct server *srv, bool on)
{
	srv->o.access_log = on;
	/* The access log wants a line per request: all go to this loop. */
	if (srv->o.ans)
		anscache_set_enabled(srv->o.ans, !on && !srv->o.audit &&
				     !srv->shutting);
}

void *server_owner(const struct server *srv)
{
	return srv->o.owner;
}

unsigned server_conn_count(const struct server *srv)
{
	return srv->nconns;
}
