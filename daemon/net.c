// SPDX-License-Identifier: Apache-2.0
/*
 * net: libuv TCP server, TLS on every connection (see net.h for the API).
 *
 * Connection state machine (function behind each arrow):
 *
 *            accept [on_connection]
 *                 |
 *                 v
 *   +-------- HANDSHAKE ---- TLS done [process_input: on_open] ----> OPEN
 *   |             |                                                   |
 *   |             | not TLS, bad cert, handshake  net_conn_close,     |
 *   |             | timeout [process_input,       server close, idle, |
 *   |             |  on_timer: alert, no notify]  peer close_notify   |
 *   |             v                               [conn_shutdown:     |
 *   |          SHUTTING <------------------------- close_notify] -----+
 *   |             |  (queued output, then FIN: uv_shutdown; input
 *   |             |   is read and dropped)
 *   |             | FIN sent [on_shutdown]
 *   |             v
 *   |           LINGER  (read and drop until the peer's FIN, so that
 *   |             |      closing with unread input does not turn our FIN
 *   |             |      into a RST that destroys the data we just sent)
 *   |             | peer EOF [on_read], linger over [on_timer]
 *   |             v
 *   +---------> CLOSING  (uv_close on socket and timer)
 *   reset, EOF,   | both handles closed [on_conn_handle_close:
 *   abort, write  |   on_close if on_open ran, then free]
 *   error, close  v
 *   timeout     (freed)
 *
 * Invariants:
 *   - a conn is on s->conns, counted in s->nconns, from accept until its
 *     last handle's close callback, where (and only where) it is freed;
 *     write and shutdown requests complete (UV_ECANCELED at worst) before
 *     that, so their callbacks always find the conn;
 *   - on_close runs exactly once iff on_open ran;
 *   - the conn is on s->work iff c->in_work; s->prepare is active iff
 *     s->work is non-empty; the prepare callback flushes each listed conn
 *     (one uv_write of everything it wrote this iteration) and delivers
 *     input left buffered by a pause (c->want_input);
 *   - s->rbuf (ciphertext) and s->pbuf (plaintext) are shared by all the
 *     server's conns: a read is fed to TLS, decrypted and delivered before
 *     the read callback returns, and tls_conn_feed_release() then copies
 *     anything left unread, so neither buffer is live across callbacks.
 *     Nothing delivers input from inside on_data (resume only schedules),
 *     so their use never nests;
 *   - once SHUTTING, no more plaintext goes in or out;
 *   - s->out_total is the sum over conns of out_queued plus tls_counted
 *     (what net_conn_write put into TLS and conn_flush has not taken out
 *     yet); it only falls in conn_flush and on_write, and both then check
 *     whether on_server_drain is owed (server_check_drain).
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "net.h"
#include "tls.h"
#include "log.h"
#include "banned.h"

/* Socket reads this large feed OpenSSL's read-ahead whole records by the
 * dozen: one syscall per 256 KiB, not per record (LIMITS.md: ~40%). */
#define NET_READ_BUF (256u << 10)
#define NET_PLAIN_BUF (256u << 10)
#define NET_BACKLOG 1024
#define NET_KEEPALIVE_S 60
/* How long LINGER waits for the peer's FIN after ours. */
#define NET_LINGER_MS 1000u

enum conn_state {
	NC_HANDSHAKE,
	NC_OPEN,
	NC_SHUTTING,
	NC_LINGER,
	NC_CLOSING,
};

struct net_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdown;
	struct net_server *s;
	struct tls_conn *tls;
	enum conn_state state;
	int handles;		/* open uv handles: 2, then 0 */
	int reason;		/* for on_close: the first cause */
	bool reason_set;
	bool opened;		/* on_open ran: on_close is owed */
	bool paused;		/* net_conn_pause_read */
	bool reading;		/* uv_read_start is in effect */
	bool peer_eof;
	bool peer_notify;	/* the peer's close_notify came */
	bool above_high;	/* on_drain is owed */
	bool want_input;	/* buffered input to deliver from prepare */
	bool in_work;
	unsigned idle_ms;
	uint64_t last_active;	/* uv_now() of the last byte moved */
	size_t out_queued;	/* bytes in uv_write requests */
	size_t tls_counted;	/* TLS output of net_conn_write, not flushed */
	struct net_conn *prev, *next;		/* s->conns */
	struct net_conn *wprev, *wnext;		/* s->work */
	void *data;
	char peer[INET6_ADDRSTRLEN + 8];
};

struct net_write {
	uv_write_t req;
	struct net_conn *c;
	uint8_t *buf;
	size_t len;
};

/* A connection over the limit: read, FIN, close; no TLS. */
struct net_refused {
	uv_tcp_t tcp;
	uv_shutdown_t shutdown;
	struct net_server *s;
};

struct net_server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_prepare_t prepare;
	int handles;
	struct tls_ctx *tls;		/* one reference */
	struct net_callbacks cbs;
	struct net_limits lim;
	void *arg;
	struct net_conn *conns;
	unsigned nconns;
	unsigned nrefused;		/* refused sockets not yet closed */
	struct net_conn *work_head, *work_tail;
	bool closing;
	bool at_limit;			/* "limit reached" logged */
	bool delivering;		/* pbuf in use (never nests) */
	bool drain_owed;		/* out_total passed out_total_cap */
	size_t out_total;		/* see the invariants */
	void (*close_cb)(void *arg);
	uint8_t rbuf[NET_READ_BUF];
	uint8_t pbuf[NET_PLAIN_BUF];
};

static void conn_close_now(struct net_conn *c, int reason);
static void server_check_drain(struct net_server *s);

void net_limits_default(struct net_limits *l)
{
	l->max_conns = NET_DEFAULT_MAX_CONNS;
	l->handshake_timeout_ms = NET_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	l->idle_timeout_ms = 0;
	l->close_timeout_ms = NET_DEFAULT_CLOSE_TIMEOUT_MS;
	l->out_low_water = NET_DEFAULT_OUT_LOW_WATER;
	l->out_high_water = NET_DEFAULT_OUT_HIGH_WATER;
	l->out_cap = NET_DEFAULT_OUT_CAP;
	l->out_total_cap = 0;
}

/* ---- lists ------------------------------------------------------------- */

static void conns_add(struct net_server *s, struct net_conn *c)
{
	c->prev = NULL;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
}

static void conns_remove(struct net_server *s, struct net_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
}

static void on_prepare(uv_prepare_t *h);

/* Have the prepare callback flush c (and deliver input if want_input). */
static void conn_schedule(struct net_conn *c)
{
	struct net_server *s = c->s;

	if (c->in_work || c->state >= NC_SHUTTING || s->closing)
		return;
	c->in_work = true;
	c->wnext = NULL;
	c->wprev = s->work_tail;
	if (s->work_tail)
		s->work_tail->wnext = c;
	else
		s->work_head = c;
	s->work_tail = c;
	if (s->work_head == c)
		uv_prepare_start(&s->prepare, on_prepare);
}

static void conn_unschedule(struct net_conn *c)
{
	struct net_server *s = c->s;

	if (!c->in_work)
		return;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		s->work_head = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	else
		s->work_tail = c->wprev;
	c->in_work = false;
	c->wprev = c->wnext = NULL;
	if (!s->work_head && !s->closing)
		uv_prepare_stop(&s->prepare);
}

/* ---- server teardown --------------------------------------------------- */

/* Free the server once nothing refers to it (from a close callback). */
static void server_maybe_free(struct net_server *s)
{
	void (*cb)(void *arg);
	void *arg;

	if (!s->closing || s->handles || s->nconns || s->nrefused)
		return;
	cb = s->close_cb;
	arg = s->arg;
	tls_ctx_free(s->tls);
	free(s);
	if (cb)
		cb(arg);
}

static void on_server_handle_close(uv_handle_t *h)
{
	struct net_server *s = h->data;

	s->handles--;
	server_maybe_free(s);
}

/* ---- closing a connection ---------------------------------------------- */

static void set_reason(struct net_conn *c, int reason)
{
	if (!c->reason_set) {
		c->reason = reason;
		c->reason_set = true;
	}
}

static void on_conn_handle_close(uv_handle_t *h)
{
	struct net_conn *c = h->data;
	struct net_server *s = c->s;

	if (--c->handles)
		return;
	conns_remove(s, c);
	if (c->opened) {
		log_debug("net", "%s: closed (%s)", c->peer,
			  c->reason ? uv_strerror(c->reason) : "ok");
		s->cbs.on_close(c, c->reason);
	}
	tls_conn_free(c->tls);
	free(c);
	/* Its unflushed output left out_total in conn_close_now. */
	server_check_drain(s);
	if (s->at_limit && s->nconns < s->lim.max_conns) {
		s->at_limit = false;
		log_info("net", "below the connection limit (%u) again",
			 s->lim.max_conns);
	}
	server_maybe_free(s);
}

/* -> CLOSING: queued output is dropped. */
static void conn_close_now(struct net_conn *c, int reason)
{
	if (c->state == NC_CLOSING)
		return;
	/* A close we started (reason 0) that fails before our data is out
	 * did lose data: say so.  One the peer started is its own doing. */
	if (c->state == NC_SHUTTING && c->reason_set && c->reason == 0 &&
	    reason < 0 && !c->peer_notify)
		c->reason = reason;
	set_reason(c, reason);
	conn_unschedule(c);
	c->state = NC_CLOSING;
	/* TLS output never flushed now never will be. */
	c->s->out_total -= c->tls_counted;
	c->tls_counted = 0;
	uv_close((uv_handle_t *)&c->tcp, on_conn_handle_close);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_close);
}

static void on_write(uv_write_t *req, int status);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_timer(uv_timer_t *t);

/* Hand everything TLS has produced to the socket, as one write. */
static void conn_flush(struct net_conn *c)
{
	struct net_write *w;
	uv_buf_t b;
	uint8_t *buf;
	size_t len;
	int r;

	tls_conn_take_out(c->tls, &buf, &len);
	if (!len)
		return;
	/* The bytes leave TLS (tls_counted); what the socket does not take
	 * at once joins out_queued below. */
	{
		size_t counted = len < c->tls_counted ? len : c->tls_counted;

		c->tls_counted -= counted;
		c->s->out_total -= counted;
	}
	/* Nothing queued: try the socket directly.  Most responses fit the
	 * socket buffer, and a write that completes here costs no write
	 * request, no callback and no epoll re-arm. */
	if (!c->out_queued) {
		b = uv_buf_init((char *)buf, 0);
		b.len = len;
		r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (r > 0 && (size_t)r == len) {
			free(buf);
			server_check_drain(c->s);
			c->last_active = uv_now(c->s->loop);
			/* What on_write would have said. */
			if (c->state == NC_OPEN && c->above_high &&
			    net_conn_write_pending(c) <= c->s->lim.out_low_water) {
				c->above_high = false;
				if (c->s->cbs.on_drain)
					c->s->cbs.on_drain(c);
			}
			return;
		}
		if (r < 0 && r != UV_EAGAIN) {
			free(buf);
			conn_close_now(c, r);
			return;
		}
		if (r > 0) {
			/* Queue the rest; keep buf whole for free(). */
			memmove(buf, buf + r, len - (size_t)r);
			len -= (size_t)r;
		}
	}
	w = malloc(sizeof(*w));
	if (!w) {
		free(buf);
		conn_close_now(c, -ENOMEM);
		return;
	}
	w->c = c;
	w->buf = buf;
	w->len = len;
	b = uv_buf_init((char *)buf, 0);
	b.len = len;	/* size_t on Unix; uv_buf_init takes unsigned */
	c->out_queued += len;
	c->s->out_total += len;
	r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (r < 0) {
		c->out_queued -= len;
		c->s->out_total -= len;
		free(buf);
		free(w);
		conn_close_now(c, r);
		return;
	}
	server_check_drain(c->s);	/* a partial write may have lowered it */
}

static void conn_read_start(struct net_conn *c)
{
	int r;

	if (c->reading || c->state == NC_CLOSING)
		return;
	r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (r < 0) {
		conn_close_now(c, r);
		return;
	}
	c->reading = true;
}

static void conn_read_stop(struct net_conn *c)
{
	if (!c->reading)
		return;
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = false;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct net_conn *c = req->data;

	if (c->state == NC_CLOSING)
		return;
	if (status < 0 || c->peer_eof) {
		conn_close_now(c, status);
		return;
	}
	c->state = NC_LINGER;
	uv_timer_start(&c->timer, on_timer, NET_LINGER_MS, 0);
}

/*
 * -> SHUTTING: send what is queued (with close_notify if `notify` and the
 * handshake is done; a failed handshake's alert otherwise), then FIN.
 */
static void conn_shutdown(struct net_conn *c, int reason, bool notify)
{
	int r;

	if (c->state >= NC_SHUTTING)
		return;
	set_reason(c, reason);
	if (notify && c->state == NC_OPEN) {
		r = tls_conn_shutdown(c->tls);
		if (r < 0)
			log_debug("net", "%s: close_notify: %s", c->peer,
				  tls_conn_error(c->tls));
	}
	c->state = NC_SHUTTING;
	conn_flush(c);
	if (c->state == NC_CLOSING)
		return;
	conn_unschedule(c);
	/* Keep reading (and dropping) to see the peer's FIN or reset. */
	conn_read_start(c);
	if (c->state == NC_CLOSING)
		return;
	c->shutdown.data = c;
	r = uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown);
	if (r < 0) {
		conn_close_now(c, r);
		return;
	}
	uv_timer_start(&c->timer, on_timer, c->s->lim.close_timeout_ms, 0);
}

/* ---- reading ----------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct net_conn *c = h->data;

	(void)suggested;
	buf->base = (char *)c->s->rbuf;
	buf->len = sizeof(c->s->rbuf);
}

/* Decrypt and deliver what TLS holds, until it needs more, the consumer
 * pauses, or the connection leaves OPEN. */
static void deliver(struct net_conn *c)
{
	struct net_server *s = c->s;
	ssize_t r = -EAGAIN;

	assert(!s->delivering);
	s->delivering = true;
	while (c->state == NC_OPEN && !c->paused) {
		size_t n = 0;

		while (n < sizeof(s->pbuf)) {
			r = tls_conn_read(c->tls, s->pbuf + n, sizeof(s->pbuf) - n);
			if (r <= 0)
				break;
			n += (size_t)r;
		}
		if (n)
			s->cbs.on_data(c, s->pbuf, n);
		if (r > 0)
			continue;	/* pbuf was full: there may be more */
		if (r == -EAGAIN || c->state != NC_OPEN)
			break;
		if (r == 0) {
			c->peer_notify = true;
			log_debug("net", "%s: peer sent close_notify", c->peer);
			conn_shutdown(c, 0, true);
		} else {
			log_info("net", "%s: TLS error: %s", c->peer,
				 tls_conn_error(c->tls));
			conn_shutdown(c, (int)r, false);
		}
		break;
	}
	s->delivering = false;
}

static void process_input(struct net_conn *c)
{
	struct net_server *s = c->s;
	int r;

	if (c->state == NC_HANDSHAKE) {
		r = tls_conn_handshake(c->tls);
		if (r == -EAGAIN)
			goto out;
		if (r < 0) {
			/* Scanners and plain-TCP clients land here: info,
			 * not an operator's error. */
			log_info("net", "%s: TLS handshake failed: %s", c->peer,
				 tls_conn_error(c->tls));
			conn_shutdown(c, r, false);
			return;
		}
		c->state = NC_OPEN;
		c->opened = true;
		c->last_active = uv_now(s->loop);
		if (c->idle_ms)
			uv_timer_start(&c->timer, on_timer, c->idle_ms, 0);
		else
			uv_timer_stop(&c->timer);
		log_debug("net", "%s: open (%s)", c->peer,
			  tls_conn_cipher(c->tls));
		s->cbs.on_open(c);
	}
	deliver(c);
out:
	if (tls_conn_pending_out(c->tls))
		conn_schedule(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct net_conn *c = stream->data;
	int r;

	if (nread == 0 || c->state == NC_CLOSING)
		return;
	if (nread < 0) {
		conn_read_stop(c);
		if (nread != UV_EOF) {
			log_debug("net", "%s: read: %s", c->peer,
				  uv_strerror((int)nread));
			conn_close_now(c, (int)nread);
			return;
		}
		c->peer_eof = true;
		switch (c->state) {
		case NC_HANDSHAKE:
			log_debug("net", "%s: closed during the handshake",
				  c->peer);
			conn_close_now(c, -ECONNRESET);
			break;
		case NC_OPEN:
			/* TCP closed without close_notify: truncation. */
			log_debug("net", "%s: EOF without close_notify",
				  c->peer);
			conn_close_now(c, -ECONNRESET);
			break;
		case NC_SHUTTING:
			break;	/* on_shutdown closes once our FIN is out */
		default:
			conn_close_now(c, 0);
			break;
		}
		return;
	}
	c->last_active = uv_now(c->s->loop);
	if (c->state >= NC_SHUTTING)
		return;	/* closing: input is dropped */
	r = tls_conn_feed(c->tls, buf->base, (size_t)nread);
	if (r < 0) {
		conn_close_now(c, r);
		return;
	}
	process_input(c);
	/* buf is s->rbuf: keep what is unread before the next read reuses it. */
	tls_conn_feed_release(c->tls);
}

/* ---- writing ----------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
	struct net_write *w = (struct net_write *)req;
	struct net_conn *c = w->c;

	c->out_queued -= w->len;
	c->s->out_total -= w->len;
	free(w->buf);
	free(w);
	server_check_drain(c->s);
	if (c->state == NC_CLOSING)
		return;
	if (status < 0) {
		log_debug("net", "%s: write: %s", c->peer, uv_strerror(status));
		conn_close_now(c, status);
		return;
	}
	c->last_active = uv_now(c->s->loop);
	if (c->state == NC_OPEN && c->above_high &&
	    net_conn_write_pending(c) <= c->s->lim.out_low_water) {
		c->above_high = false;
		if (c->s->cbs.on_drain)
			c->s->cbs.on_drain(c);
	}
}

int net_conn_write(struct net_conn *c, const void *buf, size_t len)
{
	size_t pending = net_conn_write_pending(c), cap = c->s->lim.out_cap;
	size_t before;
	int r;

	if (c->state != NC_OPEN)
		return -EPIPE;
	if (len > cap || pending > cap - len)
		return -ENOBUFS;
	before = tls_conn_pending_out(c->tls);
	r = tls_conn_write(c->tls, buf, len);
	if (r >= 0 && tls_conn_pending_out(c->tls) > before) {
		size_t added = tls_conn_pending_out(c->tls) - before;

		c->tls_counted += added;
		c->s->out_total += added;
	}
	if (r < 0) {
		if (r != -ENOMEM) {
			log_info("net", "%s: TLS write: %s", c->peer,
				 tls_conn_error(c->tls));
			conn_close_now(c, r);
		}
		return r;
	}
	if (net_conn_write_pending(c) > c->s->lim.out_high_water)
		c->above_high = true;
	conn_schedule(c);
	return 0;
}

size_t net_conn_write_pending(const struct net_conn *c)
{
	return c->out_queued + tls_conn_pending_out(c->tls);
}

/* on_server_drain, once out_total is down to half the cap after a producer
 * saw it over. */
static void server_check_drain(struct net_server *s)
{
	if (!s->drain_owed || s->out_total > s->lim.out_total_cap / 2 ||
	    s->closing)
		return;
	s->drain_owed = false;
	if (s->cbs.on_server_drain)
		s->cbs.on_server_drain(s->arg);
}

bool net_server_out_congested(struct net_conn *c)
{
	struct net_server *s = c->s;

	if (!s->lim.out_total_cap || s->out_total <= s->lim.out_total_cap)
		return false;
	s->drain_owed = true;
	return true;
}

size_t net_server_out_pending(const struct net_server *s)
{
	return s->out_total;
}

/* ---- the prepare pass -------------------------------------------------- */

static void on_prepare(uv_prepare_t *h)
{
	struct net_server *s = h->data;
	struct net_conn *c;

	/* Conns may be re-added while we go (on_data writing): the list is
	 * drained, not walked. */
	while ((c = s->work_head) != NULL) {
		conn_unschedule(c);
		if (c->want_input) {
			c->want_input = false;
			process_input(c);
			conn_unschedule(c);	/* flushed just below */
		}
		if (c->state < NC_SHUTTING)
			conn_flush(c);
	}
}

/* ---- timers ------------------------------------------------------------ */

static void on_timer(uv_timer_t *t)
{
	struct net_conn *c = t->data;
	uint64_t idle;

	switch (c->state) {
	case NC_HANDSHAKE:
		log_info("net", "%s: no TLS handshake within %u ms, closing",
			 c->peer, c->s->lim.handshake_timeout_ms);
		conn_shutdown(c, -ETIMEDOUT, false);
		break;
	case NC_OPEN:
		if (!c->idle_ms)
			break;
		idle = uv_now(c->s->loop) - c->last_active;
		if (c->paused) {
			/* Our consumer is the slow one, not the peer. */
			uv_timer_start(t, on_timer, c->idle_ms, 0);
		} else if (idle < c->idle_ms) {
			uv_timer_start(t, on_timer, c->idle_ms - idle, 0);
		} else {
			log_info("net", "%s: idle for %u ms, closing", c->peer,
				 c->idle_ms);
			conn_shutdown(c, -ETIMEDOUT, true);
		}
		break;
	case NC_SHUTTING:
		log_info("net", "%s: graceful close took over %u ms, aborting",
			 c->peer, c->s->lim.close_timeout_ms);
		c->reason = -ECONNABORTED;	/* whatever started the close */
		conn_close_now(c, -ECONNABORTED);
		break;
	case NC_LINGER:
		conn_close_now(c, 0);
		break;
	case NC_CLOSING:
		break;
	}
}

/* ---- accepting --------------------------------------------------------- */

static void format_peer(struct net_conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;

			uv_ip4_name(a, ip, sizeof(ip));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

			uv_ip6_name(a, ip, sizeof(ip));
			port = ntohs(a->sin6_port);
			snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip, port);
			return;
		}
	}
	snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, port);
}

static void on_refused_close(uv_handle_t *h)
{
	struct net_refused *r = h->data;
	struct net_server *s = r->s;

	s->nrefused--;
	free(r);
	server_maybe_free(s);
}

static void on_refused_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct net_refused *r = h->data;

	(void)suggested;
	buf->base = (char *)r->s->rbuf;
	buf->len = sizeof(r->s->rbuf);
}

static void on_refused_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	(void)b;
	/* Dropped: reading what the client sent before closing keeps our FIN
	 * from becoming a RST. */
	if (nread < 0 && !uv_is_closing((uv_handle_t *)st))
		uv_close((uv_handle_t *)st, on_refused_close);
}

static void on_refused_shutdown(uv_shutdown_t *req, int status)
{
	struct net_refused *r = req->data;

	(void)status;
	if (!uv_is_closing((uv_handle_t *)&r->tcp))
		uv_close((uv_handle_t *)&r->tcp, on_refused_close);
}

/* Over the limit: accept (or the listener stalls) and close with a FIN,
 * before any TLS work, so a flood costs us as little as it can. */
static void refuse(struct net_server *s)
{
	struct net_refused *r = malloc(sizeof(*r));

	if (!r) {
		log_err("net", "out of memory refusing a connection");
		return;
	}
	r->s = s;
	r->tcp.data = r;
	r->shutdown.data = r;
	uv_tcp_init(s->loop, &r->tcp);
	s->nrefused++;
	if (!s->at_limit) {
		s->at_limit = true;
		log_warn("net", "connection limit (%u) reached, refusing new "
			 "connections", s->lim.max_conns);
	}
	if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&r->tcp) < 0 ||
	    uv_read_start((uv_stream_t *)&r->tcp, on_refused_alloc,
			  on_refused_read) < 0 ||
	    uv_shutdown(&r->shutdown, (uv_stream_t *)&r->tcp,
			on_refused_shutdown) < 0)
		uv_close((uv_handle_t *)&r->tcp, on_refused_close);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct net_server *s = listener->data;
	struct net_conn *c;
	int r;

	if (status < 0) {
		log_warn("net", "accept: %s", uv_strerror(status));
		return;
	}
	if (s->closing)
		return;
	if (s->nconns >= s->lim.max_conns) {
		refuse(s);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		log_err("net", "out of memory accepting a connection");
		refuse(s);
		return;
	}
	c->s = s;
	c->tcp.data = c;
	c->timer.data = c;
	c->idle_ms = s->lim.idle_timeout_ms;
	uv_tcp_init(s->loop, &c->tcp);
	uv_timer_init(s->loop, &c->timer);
	c->handles = 2;
	conns_add(s, c);
	/* From here every failure goes through conn_close_now, which frees
	 * c in the close callbacks. */
	r = uv_accept(listener, (uv_stream_t *)&c->tcp);
	if (r < 0) {
		log_warn("net", "accept: %s", uv_strerror(r));
		conn_close_now(c, r);
		return;
	}
	format_peer(c);
	r = tls_conn_new(s->tls, &c->tls);
	if (r < 0) {
		log_err("net", "%s: creating TLS state: %s", c->peer,
			uv_strerror(r));
		conn_close_now(c, r);
		return;
	}
	/* Our writes are batched per loop iteration already; Nagle would only
	 * add latency to the last segment. */
	uv_tcp_nodelay(&c->tcp, 1);
	uv_tcp_keepalive(&c->tcp, 1, NET_KEEPALIVE_S);
	c->last_active = uv_now(s->loop);
	uv_timer_start(&c->timer, on_timer, s->lim.handshake_timeout_ms, 0);
	conn_read_start(c);
	log_debug("net", "%s: accepted", c->peer);
}

/* ---- server ------------------------------------------------------------ */

static bool limits_ok(const struct net_limits *l)
{
	return l->max_conns && l->handshake_timeout_ms &&
	       l->close_timeout_ms && l->out_cap &&
	       l->out_low_water <= l->out_high_water &&
	       l->out_high_water <= l->out_cap;
}

int net_listen(uv_loop_t *loop, const char *addr, int port,
	       struct tls_ctx *tls, const struct net_callbacks *cbs, void *arg,
	       struct net_server **out)
{
	struct sockaddr_storage ss;
	struct net_server *s;
	int r;

	*out = NULL;
	if (!loop || !addr || !tls || !cbs || !cbs->on_open || !cbs->on_data ||
	    !cbs->on_close || port < 0 || port > 65535)
		return -EINVAL;
	if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) != 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->cbs = *cbs;
	s->arg = arg;
	s->tls = tls_ctx_ref(tls);
	net_limits_default(&s->lim);
	s->listener.data = s;
	s->prepare.data = s;
	uv_tcp_init(loop, &s->listener);
	uv_prepare_init(loop, &s->prepare);
	s->handles = 2;
	r = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&s->listener, NET_BACKLOG,
			      on_connection);
	if (r < 0) {
		log_err("net", "listening on %s port %d: %s", addr, port,
			uv_strerror(r));
		/* Handles are freed in close callbacks: the caller's loop
		 * finishes this (run it before uv_loop_close). */
		net_server_close(s, NULL);
		return r;
	}
	log_info("net", "listening on %s port %d", addr, net_server_port(s));
	*out = s;
	return 0;
}

int net_server_set_limits(struct net_server *s, const struct net_limits *l)
{
	if (!limits_ok(l))
		return -EINVAL;
	s->lim = *l;
	return 0;
}

void net_server_set_tls(struct net_server *s, struct tls_ctx *tls)
{
	struct tls_ctx *old = s->tls;

	s->tls = tls_ctx_ref(tls);
	tls_ctx_free(old);
}

int net_server_port(const struct net_server *s)
{
	return net_tcp_port(&s->listener);
}

int net_tcp_port(const uv_tcp_t *h)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	int r = uv_tcp_getsockname(h, (struct sockaddr *)&ss, &len);

	if (r < 0)
		return r;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

unsigned net_server_conns(const struct net_server *s)
{
	return s->nconns;
}

void net_server_close(struct net_server *s, void (*cb)(void *arg))
{
	struct net_conn *c, *next;

	if (s->closing)
		return;
	s->closing = true;
	s->close_cb = cb;
	uv_close((uv_handle_t *)&s->listener, on_server_handle_close);
	uv_close((uv_handle_t *)&s->prepare, on_server_handle_close);
	/* Every conn now leaves for SHUTTING or CLOSING, neither of which
	 * schedules work: the prepare handle is not needed any more. */
	for (c = s->conns; c; c = next) {
		next = c->next;
		conn_unschedule(c);
		if (c->state == NC_OPEN || c->state == NC_HANDSHAKE)
			conn_shutdown(c, -ESHUTDOWN, true);
	}
	if (s->nconns)
		log_info("net", "closing %u connection(s)", s->nconns);
}

/* ---- connection accessors and controls --------------------------------- */

void net_conn_pause_read(struct net_conn *c)
{
	c->paused = true;
	if (c->state == NC_OPEN)
		conn_read_stop(c);
}

void net_conn_resume_read(struct net_conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	if (c->state != NC_OPEN)
		return;
	conn_read_start(c);
	/* Bytes read before the pause wait in TLS; no socket event will come
	 * for them, so the prepare pass delivers them (never from here: this
	 * may run inside another conn's on_data, which owns s->pbuf). */
	if (c->state == NC_OPEN && tls_conn_has_input(c->tls)) {
		c->want_input = true;
		conn_schedule(c);
	}
}

void net_conn_close(struct net_conn *c)
{
	if (c->state == NC_OPEN)
		conn_shutdown(c, 0, true);
}

void net_conn_abort(struct net_conn *c)
{
	log_debug("net", "%s: aborted", c->peer);
	conn_close_now(c, -ECONNABORTED);
}

int net_conn_export(const struct net_conn *c, const char *label,
		    uint8_t *out, size_t len)
{
	return tls_conn_export(c->tls, label, out, len);
}

int net_conn_peer_subject(const struct net_conn *c, char *buf, size_t len)
{
	return tls_conn_peer_subject(c->tls, buf, len);
}

const char *net_conn_peer(const struct net_conn *c)
{
	return c->peer;
}

void net_conn_set_data(struct net_conn *c, void *data)
{
	c->data = data;
}

void *net_conn_data(const struct net_conn *c)
{
	return c->data;
}

void *net_conn_arg(const struct net_conn *c)
{
	return c->s->arg;
}
