// SPDX-License-Identifier: Apache-2.0
/*
 * admin: the admin HTTP port (see admin.h for the states and the bounds).
 *
 * Invariants:
 *   - a conn is on a->conns from accept until both its handles' close
 *     callbacks ran, and is freed only there;
 *   - at most one response per conn (c->answered), written with one
 *     uv_write from one malloc'd buffer freed in the write callback, which
 *     always runs before the handle's close callback;
 *   - c->len <= HTTP_MAX_HEADER: the read buffer is fixed, and a full one
 *     without a complete head is answered 431.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "admin.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "banned.h"

struct aconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wr;
	struct admin *a;
	struct aconn *prev, *next;
	int handles;
	bool answered, closing, peer_eof, counted;
	char *resp;			/* the response being written */
	size_t len;
	char buf[HTTP_MAX_HEADER];
	char drop[512];			/* input after the answer */
};

struct admin {
	uv_loop_t *loop;
	uv_tcp_t listener;
	struct admin_limits lim;
	struct admin_handlers h;
	void *arg;
	struct metrics *m;
	struct aconn *conns;
	unsigned nconns, nrefused;
	bool closing, listener_open;
	void (*close_cb)(void *arg);
	void *close_arg;
};

static void maybe_free(struct admin *a)
{
	void (*cb)(void *);
	void *arg;

	if (!a->closing || a->listener_open || a->nconns || a->nrefused)
		return;
	cb = a->close_cb;
	arg = a->close_arg;
	free(a);
	if (cb)
		cb(arg);
}

static void on_conn_handle_close(uv_handle_t *h)
{
	struct aconn *c = h->data;
	struct admin *a = c->a;

	if (--c->handles)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->nconns--;
	free(c);
	maybe_free(a);
}

static void conn_close(struct aconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, on_conn_handle_close);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_close);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	free(req);
}

static void on_written(uv_write_t *req, int status)
{
	struct aconn *c = req->data;
	uv_shutdown_t *sd;

	free(c->resp);
	c->resp = NULL;
	if (status < 0) {
		conn_close(c);
		return;
	}
	if (c->peer_eof) {
		conn_close(c);
		return;
	}
	/* Our FIN now; then read and drop until the peer's (or the timer),
	 * so that unread input does not turn the close into a reset. */
	sd = malloc(sizeof(*sd));
	if (!sd || uv_shutdown(sd, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
		free(sd);
		conn_close(c);
	}
}

/* strata_admin_requests_total: once per connection, before a /metrics
 * body is rendered, so that a scrape counts itself. */
static void count_request(struct aconn *c)
{
	if (!c->counted && c->a->m)
		c->a->m->admin_requests++;
	c->counted = true;
}

static void respond(struct aconn *c, int status, bool head_only,
		    const char *ctype, const char *body, size_t blen,
		    const char *extra)
{
	char hdr[512];
	int n;
	uv_buf_t b;

	c->answered = true;
	count_request(c);
	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "Cache-Control: no-store\r\n"
		     "%s"
		     "Connection: close\r\n\r\n",
		     status, http_reason(status), ctype, blen, extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(hdr)) {
		conn_close(c);
		return;
	}
	if (head_only)
		blen = 0;
	c->resp = malloc((size_t)n + blen);
	if (!c->resp) {
		conn_close(c);
		return;
	}
	memcpy(c->resp, hdr, (size_t)n);
	if (blen)
		memcpy(c->resp + n, body, blen);
	b = uv_buf_init(c->resp, (unsigned)((size_t)n + blen));
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
		free(c->resp);
		c->resp = NULL;
		conn_close(c);
	}
}

static void respond_text(struct aconn *c, int status, bool head_only,
			 const char *text, const char *extra)
{
	respond(c, status, head_only, "text/plain; charset=utf-8", text,
		strlen(text), extra);
}

static bool path_is(const struct http_request *r, const char *p)
{
	return r->pathlen == strlen(p) && memcmp(r->path, p, r->pathlen) == 0;
}

static void route(struct aconn *c, const struct http_request *r)
{
	struct admin *a = c->a;
	bool head_only = r->method == HTTP_HEAD;

	count_request(c);
	if (r->method == HTTP_OTHER) {
		respond_text(c, 405, false, "only GET and HEAD\n",
			     "Allow: GET, HEAD\r\n");
	} else if (path_is(r, "/metrics")) {
		char *body = NULL;
		size_t len = 0;
		int rc = a->h.metrics ? a->h.metrics(a->arg, &body, &len)
				      : -ENOSYS;

		if (rc) {
			log_warn("admin", "rendering /metrics: %s", strerror(-rc));
			respond_text(c, 500, head_only, "cannot render metrics\n",
				     NULL);
		} else {
			respond(c, 200, head_only,
				"text/plain; version=0.0.4; charset=utf-8",
				body, len, NULL);
		}
		free(body);
	} else if (path_is(r, "/healthz")) {
		/* Answered from the loop: it turns. */
		respond_text(c, 200, head_only, "ok\n", NULL);
	} else if (path_is(r, "/readyz")) {
		if (a->h.ready && a->h.ready(a->arg))
			respond_text(c, 200, head_only, "ready\n", NULL);
		else
			respond_text(c, 503, head_only, "not ready\n", NULL);
	} else {
		respond_text(c, 404, head_only,
			     "not found; try /metrics, /healthz or /readyz\n",
			     NULL);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct aconn *c = h->data;

	(void)suggested;
	if (c->answered || c->len == sizeof(c->buf))
		*buf = uv_buf_init(c->drop, sizeof(c->drop));
	else
		*buf = uv_buf_init(c->buf + c->len,
				   (unsigned)(sizeof(c->buf) - c->len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct aconn *c = st->data;
	struct http_request req;
	size_t used;
	int rc;

	(void)buf;
	if (c->closing || nread == 0)
		return;
	if (nread < 0) {
		/* EOF or error: nothing more will come; a half-sent request
		 * gets no answer; an answer being written finishes first. */
		c->peer_eof = true;
		uv_read_stop(st);
		if (!c->answered || !c->resp)
			conn_close(c);
		return;
	}
	if (c->answered)
		return;			/* dropped (after the answer) */
	c->len += (size_t)nread;
	rc = http_request_parse(c->buf, c->len, &req, &used);
	if (rc == -EAGAIN)
		return;
	if (rc) {
		log_debug("admin", "bad request: answering %d", rc);
		respond_text(c, rc, false, http_reason(rc), NULL);
		return;
	}
	route(c, &req);
}

static void on_timer(uv_timer_t *t)
{
	struct aconn *c = t->data;

	if (!c->answered)
		respond_text(c, 408, false, "request timeout\n", NULL);
	else
		conn_close(c);
	/* Give the 408 a moment to leave; then close regardless. */
	if (!c->closing)
		uv_timer_start(&c->timer, on_timer, 1000, 0);
}

static void on_refused_close(uv_handle_t *h)
{
	struct admin *a = h->data;

	free(h);
	a->nrefused--;
	maybe_free(a);
}

static void on_connection(uv_stream_t *l, int status)
{
	struct admin *a = l->data;
	struct aconn *c;

	if (status < 0 || a->closing)
		return;
	if (a->nconns >= a->lim.max_conns) {
		uv_tcp_t *t = malloc(sizeof(*t));

		if (a->m)
			a->m->admin_refused++;
		if (!t)
			return;
		uv_tcp_init(a->loop, t);
		t->data = a;
		a->nrefused++;
		uv_accept(l, (uv_stream_t *)t);
		uv_close((uv_handle_t *)t, on_refused_close);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->a = a;
	c->tcp.data = c;
	c->timer.data = c;
	uv_tcp_init(a->loop, &c->tcp);
	uv_timer_init(a->loop, &c->timer);
	c->handles = 2;
	c->next = a->conns;
	if (a->conns)
		a->conns->prev = c;
	a->conns = c;
	a->nconns++;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timer, a->lim.timeout_ms, 0);
}

static void on_listener_close(uv_handle_t *h)
{
	struct admin *a = h->data;

	a->listener_open = false;
	maybe_free(a);
}

int admin_listen(uv_loop_t *loop, const char *addr, int port,
		 const struct admin_limits *l, const struct admin_handlers *h,
		 void *arg, struct metrics *m, struct admin **out)
{
	struct sockaddr_storage ss;
	struct admin *a;
	int r;

	*out = NULL;
	if (!l->max_conns || !l->timeout_ms || port < 0 || port > 65535)
		return -EINVAL;
	if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) != 0)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->lim = *l;
	a->h = *h;
	a->arg = arg;
	a->m = m;
	a->listener.data = a;
	uv_tcp_init(loop, &a->listener);
	a->listener_open = true;
	r = uv_tcp_bind(&a->listener, (struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&a->listener, 64, on_connection);
	if (r < 0) {
		admin_close(a, NULL, NULL);
		return r;
	}
	*out = a;
	return 0;
}

int admin_port(const struct admin *a)
{
	return net_tcp_port(&a->listener);
}

void admin_close(struct admin *a, void (*cb)(void *arg), void *arg)
{
	struct aconn *c, *next;

	if (a->closing)
		return;
	a->closing = true;
	a->close_cb = cb;
	a->close_arg = arg;
	uv_close((uv_handle_t *)&a->listener, on_listener_close);
	for (c = a->conns; c; c = next) {
		next = c->next;
		conn_close(c);
	}
}
