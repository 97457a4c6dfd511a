// SPDX-License-Identifier: Apache-2.0
/*
 * conn_nb: gets from an event loop (strata_conn_*, include/strata/strata.h).
 *
 * A strata_conn is one authenticated connection, opened the blocking way
 * and then switched to non-blocking mode.  A get is a small state machine
 * that moves as far as the socket allows on each strata_conn_get_step():
 *
 *   SEND (the request, one TLS record) --> HEAD (32-byte frame header)
 *     --> FIELDS (a GOAWAY's: back to HEAD; an ERROR's: done, with its
 *         code; the first frame's: the GET response, checked and kept)
 *     --> BODY (into the caller's buffer) --> HEAD for the next frame,
 *         or done after the END frame
 *
 * The checks are those of the blocking get (objects.c get_fn): the
 * response's id and opcode, CONT on every frame but the first, an etag,
 * the offset asked for, no more bytes than announced and all of them.
 * Anything else breaks the connection: the caller closes it.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "proto.h"
#include "strata/strata.h"
#include "tls.h"
#include "banned.h"

enum nb_state { NB_IDLE, NB_SEND, NB_HEAD, NB_FIELDS, NB_BODY };

struct strata_conn {
	struct conn *cn;
	enum nb_state st;
	bool goaway;			/* the server said it is closing */
	bool first;			/* the next frame is the response's first */
	size_t out_len;			/* request bytes in cn->out */
	size_t have;			/* of the header or fields under way */
	uint8_t hb[PROTO_HEADER_LEN];
	struct proto_header h;		/* the frame being read */
	uint32_t body_left;		/* of this frame */
	uint8_t *buf;
	size_t cap;
	uint64_t offset, length;	/* asked for */
	uint64_t total;			/* body bytes stored */
	struct strata_get_result res;
};

static int nb_fail(struct strata_conn *a, int rc)
{
	conn_break(a->cn);
	a->st = NB_IDLE;
	return rc;
}

int strata_conn_open(strata_client *c, strata_conn **out)
{
	struct strata_conn *a;
	int rc;

	if (!c || !out)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	client_call_begin();
	rc = conn_open(c, &a->cn);
	if (!rc)
		rc = tls_conn_nonblock(a->cn->tls);
	if (rc) {
		conn_free(a->cn);
		free(a);
		return client_call_end(rc);
	}
	*out = a;
	return 0;
}

int strata_conn_fd(const strata_conn *a)
{
	return a ? tls_conn_fd(a->cn->tls) : -EINVAL;
}

void strata_conn_close(strata_conn *a)
{
	if (!a)
		return;
	conn_free(a->cn);
	free(a);
}

int strata_conn_get_start(strata_conn *a, const char *bucket,
			  const char *key, uint64_t offset, uint64_t length,
			  void *buf, size_t cap)
{
	struct proto_get_req m = {
		.bucket = { bucket, bucket ? strlen(bucket) : 0 },
		.key = { key, key ? strlen(key) : 0 },
		.has_offset = offset != 0,
		.offset = offset,
		.has_length = length != STRATA_TO_END,
		.length = length,
	};
	struct proto_header h = { .opcode = PROTO_OP_GET,
				  .flags = PROTO_F_END };
	struct conn *cn;
	size_t len;
	int rc;

	if (!a || !bucket || !key || (!buf && cap))
		return -EINVAL;
	cn = a->cn;
	if (a->st != NB_IDLE)
		return -EBUSY;
	if (a->goaway)
		return STRATA_ECLOSING;
	if (cn->broken)
		return -ENOTCONN;
	rc = proto_get_req_encode(&m, cn->out + PROTO_HEADER_LEN,
				  PROTO_MAX_FIELDS_LEN, &len);
	if (rc)
		return rc;
	conn_begin(cn);
	h.id = cn->id;
	h.fields_len = (uint32_t)len;
	rc = proto_header_encode(&h, cn->out);
	if (rc)
		return nb_fail(a, rc);
	a->out_len = PROTO_HEADER_LEN + len;
	a->buf = buf;
	a->cap = cap;
	a->offset = offset;
	a->length = length;
	a->total = 0;
	a->first = true;
	a->st = NB_SEND;
	return 0;
}

/* The first frame's fields: the GET response. */
static int nb_response(struct strata_conn *a)
{
	int rc = get_resp_parse(a->cn->fields, a->h.fields_len, a->offset,
				a->length, &a->res);

	if (!rc && a->res.length > a->cap)
		rc = -ENOBUFS;
	return rc;
}

/* A frame header has arrived whole. */
static int nb_header(struct strata_conn *a)
{
	struct proto_header *h = &a->h;
	int rc = proto_header_decode(a->hb, sizeof(a->hb), h);

	if (rc)
		return rc;
	if (h->opcode == PROTO_OP_GOAWAY)
		return 0;		/* read its fields, then go on */
	if (!(h->flags & PROTO_F_RESPONSE) || h->id != a->cn->id ||
	    h->opcode != PROTO_OP_GET)
		return STRATA_EPROTO;
	if (a->first == !!(h->flags & PROTO_F_CONT))
		return STRATA_EPROTO;
	return 0;
}

int strata_conn_get_step(strata_conn *a, short *events, size_t *got,
			 struct strata_get_result *res)
{
	struct conn *cn;
	size_t n;
	int rc;

	if (!a || !events || a->st == NB_IDLE)
		return -EINVAL;
	cn = a->cn;
	for (;;) {
		switch (a->st) {
		case NB_IDLE:
			return -EINVAL;
		case NB_SEND:
			rc = tls_conn_write_some(cn->tls, cn->out, a->out_len,
						 &n, events);
			if (rc == -EAGAIN)
				return rc;
			if (rc)
				return nb_fail(a, rc);
			cn->sending = false;
			cn->reading = true;
			a->have = 0;
			a->st = NB_HEAD;
			break;
		case NB_HEAD:
			rc = tls_conn_read_some(cn->tls, a->hb + a->have,
						sizeof(a->hb) - a->have, &n,
						events);
			if (rc == -EAGAIN)
				return rc;
			if (rc)
				return nb_fail(a, rc);
			a->have += n;
			if (a->have < sizeof(a->hb))
				break;
			rc = nb_header(a);
			if (rc)
				return nb_fail(a, rc);
			a->have = 0;
			a->st = NB_FIELDS;
			break;
		case NB_FIELDS:
			/* fields_len <= PROTO_MAX_FIELDS_LEN (header check). */
			if (a->have < a->h.fields_len) {
				rc = tls_conn_read_some(cn->tls,
							cn->fields + a->have,
							a->h.fields_len -
							a->have, &n, events);
				if (rc == -EAGAIN)
					return rc;
				if (rc)
					return nb_fail(a, rc);
				a->have += n;
				break;
			}
			a->have = 0;
			if (a->h.opcode == PROTO_OP_GOAWAY) {
				/* Finish this get; take no other here. */
				a->goaway = true;
				conn_break(cn);
				a->st = NB_HEAD;
				break;
			}
			if (a->h.flags & PROTO_F_ERROR) {
				if (a->h.body_len)
					return nb_fail(a, STRATA_EPROTO);
				a->st = NB_IDLE;
				return conn_error_code(cn, &a->h);
			}
			if (a->first) {
				rc = nb_response(a);
				if (rc == -ENOBUFS && res)
					*res = a->res;	/* how long it is */
				if (rc)
					return nb_fail(a, rc);
				a->first = false;
			}
			a->body_left = a->h.body_len;
			if (a->total + a->body_left > a->res.length)
				return nb_fail(a, STRATA_EPROTO);
			a->st = NB_BODY;
			break;
		case NB_BODY:
			if (!a->body_left) {
				if (!(a->h.flags & PROTO_F_END)) {
					a->st = NB_HEAD;
					break;
				}
				if (a->total != a->res.length)
					return nb_fail(a, STRATA_EPROTO);
				cn->reading = false;
				a->st = NB_IDLE;
				if (got)
					*got = (size_t)a->total;
				if (res)
					*res = a->res;
				return 0;
			}
			rc = tls_conn_read_some(cn->tls, a->buf + a->total,
						a->body_left, &n, events);
			if (rc == -EAGAIN)
				return rc;
			if (rc)
				return nb_fail(a, rc);
			a->total += n;
			a->body_left -= (uint32_t)n;
			break;
		}
	}
}
