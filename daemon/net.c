// SPDX-License-Identifier: Apache-2.0
/*
 * net: libuv TCP server, TLS on every connection (see net.h for the API):
 * connections on their I/O loop, the server, and the API.  The I/O threads
 * and the messages between loops are net_thread.c's.
 *
 * Connection state machine (function behind each arrow):
 *
 *            accept [on_connection -> io_conn_start]
 *                 |
 *                 v
 *   +-------- HANDSHAKE ---- TLS done [process_input: on_open] ----> OPEN
 *   |             |                                                   |
 *   |             | not TLS, bad cert, handshake  net_conn_close,     |
 *   |             | timeout [process_input,       server close, idle, |
 *   |             |  on_timer: alert, no notify]  peer close_notify   |
 *   |             v                               [conn_shutdown:     |
 *   |          SHUTTING <------------------------- close_notify] -----+
 *   |             |  (queued output, then FIN: uv_shutdown, once
 *   |             |   the ring's sends are done; input is read and
 *   |             |   dropped)
 *   |             | FIN sent [on_shutdown]
 *   |             v
 *   |           LINGER  (read and drop until the peer's FIN, so that
 *   |             |      closing with unread input does not turn our FIN
 *   |             |      into a RST that destroys the data we just sent)
 *   |             | peer EOF [on_read], linger over [on_timer]
 *   |             v
 *   +---------> CLOSING  (uv_close on socket and timer; with a send in the
 *                 |       kernel: shutdown(2), and the socket's uv_close
 *                 |       when that send completes)
 *   reset, EOF,   | both handles closed [on_conn_handle_close:
 *   abort, write  |   on_close if on_open ran, then free]
 *   error, close  v
 *   timeout     (freed)
 *
 * Invariants (per I/O loop unless said):
 *   - a conn is on io->conns, counted in io->nconns, from accept until its
 *     last handle's close callback; write and shutdown requests complete
 *     (UV_ECANCELED at worst) before that, and so do sends (the socket's
 *     close waits for them), so their callbacks always find the conn;
 *     s->nconns counts it from accept until CLOSED is handled;
 *   - on_close runs exactly once iff on_open ran;
 *   - the conn is on io->work iff c->in_work; io->prepare is active iff
 *     io->work is non-empty; the prepare callback flushes each listed
 *     conn (one send, or uv_write, of everything it wrote this
 *     iteration) and
 *     delivers input left buffered by a pause (c->want_input);
 *   - with a ring (io->ring, made with the loop's first output unless
 *     net_server_set_uring is off): c's ciphertext buffers wait on
 *     c->sq_head..sq_tail in order and only the head is in the kernel
 *     (c->sending), so the socket gets them in order; out_queued is what
 *     they hold that the socket has not taken; c->tcp is not closed while
 *     c->sending (the kernel could otherwise send to a reused fd number);
 *     the prepare pass submits all of the loop's sends in one
 *     uring_submit; without a ring, libuv's write requests, as before;
 *   - io->rbuf (ciphertext) and io->pbuf (plaintext) are shared by the
 *     loop's conns: a read is fed to TLS, decrypted and delivered before
 *     the read callback returns, and tls_conn_feed_release() then copies
 *     anything left unread, so neither buffer is live across callbacks.
 *     Nothing delivers input from inside on_data (resume only schedules),
 *     so their use never nests;
 *   - once SHUTTING, no more plaintext goes in or out;
 *   - s->out_total is the sum over conns of pend: plaintext written and
 *     not yet encrypted, tls_counted (what encryption of it put into TLS
 *     and conn_flush has not taken out yet) and out_queued.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "net_int.h"
#include "tls.h"
#include "log.h"
#include "banned.h"

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void deliver(struct net_conn *c);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_write(uv_write_t *req, int status);
static void on_send(struct uring_req *req, ssize_t res);
static void conn_fin(struct net_conn *c);
static void on_timer(uv_timer_t *t);

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

/* After c's pending output fell: on_drain if it is owed and low enough. */
static void io_check_drain(struct net_conn *c)
{
	if (c->state == NC_OPEN && atomic_load(&c->above_high) &&
	    atomic_load(&c->pend) <= conn_drain_level(c) &&
	    atomic_exchange(&c->above_high, false)) {
		atomic_store(&c->drain_low, false);
		net__emit_drain(c);
	}
}

/* on_server_drain, once out_total is down to half the cap after a
 * producer saw it over. */
static void io_check_server_drain(struct net_io *io)
{
	struct net_server *s = io->s;

	if (!atomic_load(&s->drain_owed) || io->stopping ||
	    atomic_load(&s->out_total) > io->lim.out_total_cap / 2 ||
	    !atomic_exchange(&s->drain_owed, false))
		return;
	if (!io->threaded) {
		if (s->cbs.on_server_drain)
			s->cbs.on_server_drain(s->arg);
		return;
	}
	net__io_emit(io, net__msg_new(EV_SERVER_DRAIN, NULL));
}

/* ---- lists -------------------------------------------------------------- */

static void conns_add(struct net_io *io, struct net_conn *c)
{
	c->prev = NULL;
	c->next = io->conns;
	if (io->conns)
		io->conns->prev = c;
	io->conns = c;
	io->nconns++;
}

static void conns_remove(struct net_io *io, struct net_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		io->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	io->nconns--;
}

/* Have the prepare callback flush c (and deliver input if want_input). */
static void conn_schedule(struct net_conn *c)
{
	struct net_io *io = c->io;

	if (c->in_work || c->state >= NC_SHUTTING || io->stopping)
		return;
	c->in_work = true;
	c->wnext = NULL;
	c->wprev = io->work_tail;
	if (io->work_tail)
		io->work_tail->wnext = c;
	else
		io->work_head = c;
	io->work_tail = c;
	if (io->work_head == c)
		uv_prepare_start(&io->prepare, net__on_prepare);
}

static void conn_unschedule(struct net_conn *c)
{
	struct net_io *io = c->io;

	if (!c->in_work)
		return;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		io->work_head = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	else
		io->work_tail = c->wprev;
	c->in_work = false;
	c->wprev = c->wnext = NULL;
	if (!io->work_head && !io->ev_head && !io->stopping)
		uv_prepare_stop(&io->prepare);
}

/* ---- server teardown ---------------------------------------------------- */

void net__io_free(struct net_io *io)
{
	if (io->threaded)
		uv_mutex_destroy(&io->cmds.mu);
	free(io);
}

static void on_inline_ring_close(void *arg)
{
	struct net_server *s = arg;

	s->handles--;
	net__server_maybe_free(s);
}

/* Free the server once nothing refers to it (from a close callback). */
void net__server_maybe_free(struct net_server *s)
{
	void (*cb)(void *arg);
	void *arg;

	if (!s->closing || s->nconns || s->nrefused || s->io_done < s->nio)
		return;
	if (s->inl->ring) {
		/* No connection is left to send through it. */
		struct uring *r = s->inl->ring;

		s->inl->ring = NULL;
		s->handles++;
		uring_close(r, on_inline_ring_close, s);
		return;
	}
	if (s->handles)
		return;
	cb = s->close_cb;
	arg = s->arg;
	for (unsigned i = 0; i < s->nio; i++)
		net__io_free(s->io[i]);
	free(s->io);
	if (s->nio) {
		uv_mutex_destroy(&s->evs.mu);
		net__pool_free_all(s);
	}
	net__io_free(s->inl);
	tls_ctx_free(s->tls);
	free(s);
	if (cb)
		cb(arg);
}

void net__on_server_handle_close(uv_handle_t *h)
{
	struct net_server *s = h->data;

	s->handles--;
	net__server_maybe_free(s);
}

/* ---- closing a connection ----------------------------------------------- */

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
	struct net_io *io = c->io;

	if (--c->handles)
		return;
	conns_remove(io, c);
	if (c->opened)
		log_debug("net", "%s: closed (%s)", c->peer,
			  c->reason ? uv_strerror(c->reason) : "ok");
	tls_conn_free(c->tls);
	c->tls = NULL;
	/* Its unflushed output left out_total in conn_close_now. */
	io_check_server_drain(io);
	net__emit_closed(c);	/* inline: may free the server */
}

/* Drop the sends waiting behind the one in the kernel (if any). */
static void sends_drop(struct net_conn *c)
{
	struct net_send *w, *next, *keep = c->sending ? c->sq_head : NULL;

	for (w = keep ? keep->next : c->sq_head; w; w = next) {
		next = w->next;
		c->out_queued -= w->len - w->off;
		count_sub(c, w->len - w->off);
		free(w->buf);
		free(w);
	}
	if (keep)
		keep->next = NULL;
	c->sq_head = c->sq_tail = keep;
}

/* -> CLOSING: queued output is dropped. */
void net__conn_close_now(struct net_conn *c, int reason)
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
	count_sub(c, c->tls_counted);
	c->tls_counted = 0;
	sends_drop(c);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_close);
	if (c->sending) {
		/*
		 * A send is in the kernel, perhaps waiting for a peer that
		 * reads nothing: the socket stays open (its number must not
		 * be reused under the send) until the send is over, which
		 * shutdown() makes it now (-EPIPE at worst).
		 */
		uv_os_fd_t fd;

		net__conn_read_stop(c);
		if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
			shutdown(fd, SHUT_RDWR);
		c->close_due = true;
		return;
	}
	uv_close((uv_handle_t *)&c->tcp, on_conn_handle_close);
}

/*
 * The send timeout (limits.send_timeout_ms): output queued to a socket
 * whose buffer is full must move within send_ms.  Progress is the peer
 * taking bytes, which is not the same as libuv writing (the kernel wakes
 * it only once a good part of the socket's buffer is free, which a slow
 * reader may take long to make): of all bytes handed to the socket and
 * to libuv, those neither in libuv's write queue nor unacknowledged in
 * the socket's (SIOCOUTQ, as TIOCOUTQ).  A write completing is progress
 * too.
 */
static uint64_t sock_acked(struct net_conn *c)
{
	/* Bytes not yet handed to the socket: libuv's queue, or what the
	 * ring's sends have not sent yet. */
	size_t q = c->io->ring ? c->out_queued :
		   uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
	uv_os_fd_t fd;
	int outq = 0;

	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) ||
	    ioctl(fd, TIOCOUTQ, &outq) || outq < 0)
		outq = 0;
	return c->wtotal - q - (uint64_t)outq;
}

/* Output waits for the socket: the send timeout starts from here. */
static void send_watch_start(struct net_conn *c)
{
	c->wprogress = uv_now(c->io->loop);
	c->acked_last = sock_acked(c);
	if (c->state == NC_OPEN &&
	    (!uv_is_active((uv_handle_t *)&c->timer) ||
	     uv_timer_get_due_in(&c->timer) > c->send_ms))
		uv_timer_start(&c->timer, on_timer, c->send_ms, 0);
}

/* Called before output is queued: start watching when it is the first. */
static void send_watch(struct net_conn *c)
{
	if (!c->send_ms || c->out_queued)
		return;
	send_watch_start(c);
}

/* The loop's ring for socket sends, made with its first output; NULL:
 * libuv's writes (net_server_set_uring off, or no io_uring here).  Either
 * way every connection of the loop uses the same one. */
static struct uring *io_ring(struct net_io *io)
{
	int r;

	if (io->ring_tried)
		return io->ring;
	io->ring_tried = true;
	if (!io->s->use_uring)
		return NULL;
	r = uring_new(io->loop, NET_URING_ENTRIES, &io->ring);
	if (r == 0 && !uring_can_send(io->ring)) {
		uring_close(io->ring, NULL, NULL);
		r = -EOPNOTSUPP;
	}
	if (r < 0) {
		io->ring = NULL;
		log_warn("net", "io_uring for socket sends: %s; sending with "
			 "write(2) instead", strerror(-r));
	}
	return io->ring;
}

/* Send the head of c's queue. */
static void send_head(struct net_conn *c)
{
	struct net_send *w = c->sq_head;
	uv_os_fd_t fd;
	int r;

	r = uv_fileno((uv_handle_t *)&c->tcp, &fd);
	if (r == 0)
		r = uring_send(c->io->ring, &w->req, fd, w->buf + w->off,
			       w->len - w->off, on_send);
	if (r < 0) {
		net__conn_close_now(c, r);	/* drops the queue */
		return;
	}
	c->sending = true;
}

/* Queue len bytes of ciphertext (counted of them in tls_counted until
 * now) for the ring; one send per connection is in the kernel at a time,
 * so they go out in order. */
static void conn_send(struct net_conn *c, uint8_t *buf, size_t len,
		      size_t counted)
{
	struct net_send *w = malloc(sizeof(*w));

	if (!w) {
		free(buf);
		count_sub(c, counted);
		net__conn_close_now(c, -ENOMEM);
		return;
	}
	memset(&w->req, 0, sizeof(w->req));
	w->req.data = w;
	/* What the socket takes leaves the counts at once, as with libuv's
	 * partial writes: pending output is what waits for the socket. */
	w->req.partial = true;
	w->c = c;
	w->buf = buf;
	w->len = len;
	w->off = 0;
	w->next = NULL;
	/* Whether the socket takes it at once is known only once the
	 * prepare pass has submitted it (libuv's write says at once): the
	 * pass then starts the watch of what is still in the kernel (and
	 * empties its list before any conn can be freed).  Outside the pass
	 * (a close's last output) the watch starts now. */
	if (c->io->in_pass) {
		if (c->send_ms && !c->out_queued && !c->watch_listed) {
			c->watch_listed = true;
			c->watch_next = c->io->watch;
			c->io->watch = c;
		}
	} else {
		send_watch(c);
	}
	c->wtotal += len;
	c->out_queued += len;
	count_add(c, len - counted);	/* counted <= len */
	if (c->sq_tail)
		c->sq_tail->next = w;
	else
		c->sq_head = w;
	c->sq_tail = w;
	if (!c->sending)
		send_head(c);
}

static void on_send(struct uring_req *req, ssize_t res)
{
	struct net_send *w = req->data;
	struct net_conn *c = w->c;
	struct net_io *io = c->io;

	c->sending = false;
	if (res > 0) {
		c->out_queued -= (size_t)res;
		count_sub(c, (size_t)res);
		w->off += (size_t)res;
	}
	if (w->off == w->len || res <= 0 || c->state == NC_CLOSING) {
		c->out_queued -= w->len - w->off;
		count_sub(c, w->len - w->off);
		c->sq_head = w->next;
		if (!c->sq_head)
			c->sq_tail = NULL;
		free(w->buf);
		free(w);
	}
	/* The connection's own next step first: the drain callbacks below
	 * may write to it (or close it). */
	if (c->state == NC_CLOSING) {
		/* close_now dropped the rest and left the socket to us. */
		if (c->close_due) {
			c->close_due = false;
			uv_close((uv_handle_t *)&c->tcp, on_conn_handle_close);
		}
	} else if (res < 0) {
		log_debug("net", "%s: send: %s", c->peer, uv_strerror((int)res));
		net__conn_close_now(c, (int)res);
	} else {
		c->last_active = uv_now(io->loop);
		c->wprogress = c->last_active;
		if (c->sq_head) {
			/* The rest of a short send waits in the kernel for
			 * all of it (the socket is full: as libuv's queued
			 * write); a new buffer first takes what fits. */
			c->sq_head->req.partial = c->sq_head->off == 0;
			send_head(c);
		} else if (c->fin_due) {
			c->fin_due = false;
			conn_fin(c);
		}
	}
	io_check_server_drain(io);
	io_check_drain(c);	/* OPEN only */
}

/* Hand everything TLS has produced to the socket, as one write. */
static void conn_flush(struct net_conn *c)
{
	struct net_io *io = c->io;
	struct net_write *w;
	uv_buf_t b;
	uint8_t *buf;
	size_t len, counted, off = 0;
	int r;

	tls_conn_take_out(c->tls, &buf, &len);
	if (!len)
		return;
	/* The bytes leave TLS (tls_counted) for the socket; what it does
	 * not take at once is out_queued below. */
	counted = len < c->tls_counted ? len : c->tls_counted;
	c->tls_counted -= counted;
	if (io_ring(io)) {
		conn_send(c, buf, len, counted);
		return;
	}
	/* Nothing queued: try the socket directly.  Most responses fit the
	 * socket buffer, and a write that completes here costs no write
	 * request, no callback and no epoll re-arm. */
	if (!c->out_queued) {
		b = uv_buf_init((char *)buf, 0);
		b.len = len;
		r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (r > 0)
			c->wtotal += (size_t)r;
		if (r > 0 && (size_t)r == len) {
			free(buf);
			count_sub(c, counted);
			io_check_server_drain(io);
			c->last_active = uv_now(io->loop);
			io_check_drain(c);
			return;
		}
		if (r < 0 && r != UV_EAGAIN) {
			free(buf);
			count_sub(c, counted);
			net__conn_close_now(c, r);
			return;
		}
		if (r > 0) {
			/* Queue the rest from where the socket stopped (no
			 * move: a full socket buffer takes a part of a big
			 * write each time); buf stays whole for free(). */
			off = (size_t)r;
			len -= off;
		}
	}
	w = malloc(sizeof(*w));
	if (!w) {
		free(buf);
		count_sub(c, counted);
		net__conn_close_now(c, -ENOMEM);
		return;
	}
	w->c = c;
	w->buf = buf;
	w->len = len;
	b = uv_buf_init((char *)buf + off, 0);
	b.len = len;	/* size_t on Unix; uv_buf_init takes unsigned */
	send_watch(c);
	c->wtotal += len;
	c->out_queued += len;
	/* out_queued is counted whole: replace the TLS share with it. */
	if (len >= counted)
		count_add(c, len - counted);
	else
		count_sub(c, counted - len);
	r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (r < 0) {
		c->out_queued -= len;
		count_sub(c, len);
		free(buf);
		free(w);
		net__conn_close_now(c, r);
		return;
	}
	io_check_server_drain(io);	/* a partial write may have lowered it */
}

static bool conn_blocked(const struct net_conn *c)
{
	return c->paused || c->throttled;
}

static void conn_read_start(struct net_conn *c)
{
	int r;

	if (c->reading || c->state == NC_CLOSING)
		return;
	r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (r < 0) {
		net__conn_close_now(c, r);
		return;
	}
	c->reading = true;
}

void net__conn_read_stop(struct net_conn *c)
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
		net__conn_close_now(c, status);
		return;
	}
	c->state = NC_LINGER;
	uv_timer_start(&c->timer, on_timer, NET_LINGER_MS, 0);
}

/* SHUTTING, all output handed to the socket (libuv's shutdown request
 * waits for libuv's own queue; the ring's is empty): FIN. */
static void conn_fin(struct net_conn *c)
{
	int r;

	c->shutdown.data = c;
	r = uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown);
	if (r < 0)
		net__conn_close_now(c, r);
}

/*
 * -> SHUTTING: send what is queued (with close_notify if `notify` and the
 * handshake is done; a failed handshake's alert otherwise), then FIN.
 */
void net__conn_shutdown(struct net_conn *c, int reason, bool notify)
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
	if (c->sq_head)
		c->fin_due = true;	/* on_send, once the ring sent it all */
	else
		conn_fin(c);
	if (c->state == NC_CLOSING)
		return;
	uv_timer_start(&c->timer, on_timer, c->io->lim.close_timeout_ms, 0);
}

/* ---- reading ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct net_conn *c = h->data;

	(void)suggested;
	buf->base = (char *)c->io->rbuf;
	buf->len = sizeof(c->io->rbuf);
}

/* Decrypt and deliver what TLS holds, until it needs more, the consumer
 * pauses (or, threaded, falls behind), or the connection leaves OPEN. */
static void deliver(struct net_conn *c)
{
	struct net_io *io = c->io;
	ssize_t r = -EAGAIN;

	assert(!io->delivering);
	io->delivering = true;
	while (c->state == NC_OPEN && !conn_blocked(c)) {
		size_t n = 0;

		while (n < sizeof(io->pbuf)) {
			r = tls_conn_read(c->tls, io->pbuf + n,
					  sizeof(io->pbuf) - n);
			if (r <= 0)
				break;
			n += (size_t)r;
		}
		if (n && c->s->cbs.io_input)
			c->s->cbs.io_input(c, io->pbuf, n);
		else if (n)
			net__emit_data(c, io->pbuf, n);
		if (r > 0)
			continue;	/* pbuf was full: there may be more */
		if (r == -EAGAIN || c->state != NC_OPEN)
			break;
		if (r == 0) {
			c->peer_notify = true;
			log_debug("net", "%s: peer sent close_notify", c->peer);
			net__conn_shutdown(c, 0, true);
		} else {
			log_info("net", "%s: TLS error: %s", c->peer,
				 tls_conn_error(c->tls));
			net__conn_shutdown(c, (int)r, false);
		}
		break;
	}
	io->delivering = false;
}

static void process_input(struct net_conn *c)
{
	struct net_io *io = c->io;
	unsigned first;
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
			net__conn_shutdown(c, r, false);
			return;
		}
		c->state = NC_OPEN;
		c->opened = true;
		c->last_active = c->wprogress = uv_now(io->loop);
		first = c->idle_ms;
		if (c->send_ms && c->out_queued &&
		    (!first || c->send_ms < first))
			first = c->send_ms;
		if (first)
			uv_timer_start(&c->timer, on_timer, first, 0);
		else
			uv_timer_stop(&c->timer);
		log_debug("net", "%s: open (%s)", c->peer,
			  tls_conn_cipher(c->tls));
		net__emit_open(c);
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
		net__conn_read_stop(c);
		if (nread != UV_EOF) {
			log_debug("net", "%s: read: %s", c->peer,
				  uv_strerror((int)nread));
			net__conn_close_now(c, (int)nread);
			return;
		}
		c->peer_eof = true;
		switch (c->state) {
		case NC_HANDSHAKE:
			log_debug("net", "%s: closed during the handshake",
				  c->peer);
			net__conn_close_now(c, -ECONNRESET);
			break;
		case NC_OPEN:
			/* TCP closed without close_notify: truncation. */
			log_debug("net", "%s: EOF without close_notify",
				  c->peer);
			net__conn_close_now(c, -ECONNRESET);
			break;
		case NC_SHUTTING:
			break;	/* on_shutdown closes once our FIN is out */
		default:
			net__conn_close_now(c, 0);
			break;
		}
		return;
	}
	c->last_active = uv_now(c->io->loop);
	if (c->state >= NC_SHUTTING)
		return;	/* closing: input is dropped */
	r = tls_conn_feed(c->tls, buf->base, (size_t)nread);
	if (r < 0) {
		net__conn_close_now(c, r);
		return;
	}
	process_input(c);
	/* buf is io->rbuf: keep what is unread before the next read reuses
	 * it. */
	if (c->tls)
		tls_conn_feed_release(c->tls);
}

/* ---- writing ------------------------------------------------------------ */

static void on_write(uv_write_t *req, int status)
{
	struct net_write *w = (struct net_write *)req;
	struct net_conn *c = w->c;

	c->out_queued -= w->len;
	count_sub(c, w->len);
	free(w->buf);
	free(w);
	io_check_server_drain(c->io);
	if (c->state == NC_CLOSING)
		return;
	if (status < 0) {
		log_debug("net", "%s: write: %s", c->peer, uv_strerror(status));
		net__conn_close_now(c, status);
		return;
	}
	c->last_active = uv_now(c->io->loop);
	c->wprogress = c->last_active;
	io_check_drain(c);
}

/*
 * Encrypt len bytes of application output, already counted in pend, into
 * TLS; the prepare pass flushes them.  Errors other than -ENOMEM close the
 * connection.
 */
static int io_encrypt(struct net_conn *c, const void *buf, size_t len)
{
	size_t before = tls_conn_pending_out(c->tls), after;
	int r;

	r = tls_conn_write(c->tls, buf, len);
	if (r < 0) {
		count_sub(c, len);
		if (r != -ENOMEM) {
			log_info("net", "%s: TLS write: %s", c->peer,
				 tls_conn_error(c->tls));
			net__conn_close_now(c, r);
		}
		return r;
	}
	after = tls_conn_pending_out(c->tls);
	if (after > before) {
		size_t added = after - before;

		c->tls_counted += added;
		if (added >= len)
			count_add(c, added - len);
		else
			count_sub(c, len - added);
	} else {
		count_sub(c, len);
	}
	conn_schedule(c);
	return 0;
}

/* A WRITE command: the main loop's plaintext for c. */
void net__io_write(struct net_conn *c, const uint8_t *buf, size_t len)
{
	if (c->state != NC_OPEN) {
		count_sub(c, len);	/* closing: dropped */
		io_check_server_drain(c->io);
	} else if (io_encrypt(c, buf, len) == -ENOMEM) {
		log_err("net", "%s: out of memory encrypting output", c->peer);
		net__conn_close_now(c, -ENOMEM);
	}
}

int net_conn_write(struct net_conn *c, const void *buf, size_t len)
{
	struct net_server *s = c->s;
	size_t pending = atomic_load(&c->pend), cap = s->lim.out_cap;
	int r;

	if (threaded(s) ? c->mstate != M_OPEN : c->state != NC_OPEN)
		return -EPIPE;
	if (len > cap || pending > cap - len)
		return -ENOBUFS;
	if (threaded(s))
		return net__main_write(c, buf, len);
	count_add(c, len);
	r = io_encrypt(c, buf, len);
	if (r == 0 && atomic_load(&c->pend) > s->lim.out_high_water)
		atomic_store(&c->above_high, true);
	return r;
}

int net_conn_write_borrowed(struct net_conn *c, const void *buf, size_t len,
			    void (*release)(void *arg), void *arg)
{
	struct net_server *s = c->s;
	size_t pending = atomic_load(&c->pend), cap = s->lim.out_cap;
	int r;

	if (!threaded(s) || c->mstate != M_OPEN || len > cap ||
	    pending > cap - len) {
		/* Inline TLS copies it at once; errors are net_conn_write's. */
		r = net_conn_write(c, buf, len);
		release(arg);
		return r;
	}
	net__main_write_borrowed(c, buf, len, release, arg);
	return 0;
}

/* ---- io_input's side ---------------------------------------------------- */

void net_conn_io_forward(struct net_conn *c, const uint8_t *p, size_t n)
{
	if (n && c->state == NC_OPEN)
		net__emit_data(c, p, n);
}

int net_conn_io_write(struct net_conn *c, const void *buf, size_t len)
{
	if (c->state != NC_OPEN)
		return -EPIPE;
	count_add(c, len);
	return io_encrypt(c, buf, len);
}

bool net_conn_io_congested(const struct net_conn *c)
{
	const struct net_limits *l = &c->io->lim;

	return atomic_load(&c->pend) > l->out_high_water ||
	       (l->out_total_cap &&
		atomic_load(&c->s->out_total) > l->out_total_cap);
}

void *net_conn_io_state(const struct net_conn *c)
{
	return c->io_state;
}

void net_conn_io_set_state(struct net_conn *c, void *state)
{
	c->io_state = state;
}

void net_conn_set_io_ok(struct net_conn *c, bool ok)
{
	atomic_store(&c->io_ok, ok);
}

bool net_conn_io_ok(const struct net_conn *c)
{
	return atomic_load(&c->io_ok);
}

size_t net_conn_write_pending(const struct net_conn *c)
{
	return atomic_load(&c->pend);
}

bool net_server_out_congested(struct net_conn *c)
{
	struct net_server *s = c->s;

	if (!s->lim.out_total_cap ||
	    atomic_load(&s->out_total) <= s->lim.out_total_cap)
		return false;
	atomic_store(&s->drain_owed, true);
	if (threaded(s) &&
	    atomic_load(&s->out_total) <= s->lim.out_total_cap / 2 &&
	    atomic_exchange(&s->drain_owed, false)) {
		s->sdrain_due = true;
		uv_prepare_start(&s->mprep, net__on_mprep);
	}
	/* Only those holding more than out_low_water wait, each owed its
	 * own on_drain there too (net.h). */
	if (atomic_load(&c->pend) <= s->lim.out_low_water)
		return false;
	atomic_store(&c->drain_low, true);
	atomic_store(&c->above_high, true);
	/* The I/O loop may have drained it just before the flags were up:
	 * then the drain is ours to call (threaded; on one loop nothing
	 * runs in between). */
	if (atomic_load(&c->pend) <= s->lim.out_low_water &&
	    atomic_exchange(&c->above_high, false)) {
		atomic_store(&c->drain_low, false);
		if (!threaded(s))
			return false;
		c->m_drain_due = true;
		net__dirty_add(c);
	}
	return true;
}

size_t net_server_out_pending(const struct net_server *s)
{
	return atomic_load(&s->out_total);
}

/* ---- the prepare pass --------------------------------------------------- */

void net__on_prepare(uv_prepare_t *h)
{
	struct net_io *io = h->data;
	struct net_conn *c;

	/* Conns may be re-added while we go (on_data writing): the list is
	 * drained, not walked. */
	io->in_pass = true;
	do {
		while ((c = io->work_head) != NULL) {
			conn_unschedule(c);
			if (c->want_input) {
				c->want_input = false;
				process_input(c);
				conn_unschedule(c);	/* flushed just below */
			}
			if (c->state < NC_SHUTTING)
				conn_flush(c);
		}
		/* All of this iteration's sends in one system call; what
		 * completes at once may bring more work (a drain). */
	} while (io->ring && uring_submit(io->ring) && io->work_head);
	while ((c = io->watch) != NULL) {
		io->watch = c->watch_next;
		c->watch_listed = false;
		if (c->sending && c->state == NC_OPEN)
			send_watch_start(c);
	}
	io->in_pass = false;
	if (io->threaded) {
		net__io_flush_events(io);
		if (!io->finished)
			uv_prepare_stop(h);
	}
}

/* ---- timers ------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
	struct net_conn *c = t->data;
	uint64_t idle;

	switch (c->state) {
	case NC_HANDSHAKE:
		log_info("net", "%s: no TLS handshake within %u ms, closing",
			 c->peer, c->io->lim.handshake_timeout_ms);
		net__conn_shutdown(c, -ETIMEDOUT, false);
		break;
	case NC_OPEN: {
		uint64_t now = uv_now(c->io->loop), next = UINT64_MAX;

		if (c->send_ms && c->out_queued) {
			uint64_t acked = sock_acked(c);

			if (acked != c->acked_last) {	/* it moved */
				c->wprogress = now;
				c->acked_last = acked;
			}
			if (now - c->wprogress >= c->send_ms) {
				/* Not a graceful close: that would wait for
				 * the same reader. */
				log_info("net", "%s: peer read nothing of %zu "
					 "queued bytes for %u ms, closing",
					 c->peer, c->out_queued, c->send_ms);
				net__conn_close_now(c, -ETIMEDOUT);
				break;
			}
			next = c->send_ms - (now - c->wprogress);
		}
		if (c->idle_ms) {
			idle = now - c->last_active;
			if (conn_blocked(c)) {
				/* Our consumer is the slow one, not the
				 * peer. */
				idle = 0;
			} else if (idle >= c->idle_ms) {
				log_info("net", "%s: idle for %u ms, closing",
					 c->peer, c->idle_ms);
				net__conn_shutdown(c, -ETIMEDOUT, true);
				break;
			}
			if (c->idle_ms - idle < next)
				next = c->idle_ms - idle;
		}
		if (next != UINT64_MAX)
			uv_timer_start(t, on_timer, next, 0);
		break;
	}
	case NC_SHUTTING:
		log_info("net", "%s: graceful close took over %u ms, aborting",
			 c->peer, c->io->lim.close_timeout_ms);
		c->reason = -ECONNABORTED;	/* whatever started the close */
		net__conn_close_now(c, -ECONNABORTED);
		break;
	case NC_LINGER:
		net__conn_close_now(c, 0);
		break;
	case NC_CLOSING:
		break;
	}
}

/* ---- I/O-loop controls (commands, or plain calls inline) ---------------- */

void net__io_pause(struct net_conn *c)
{
	c->paused = true;
	if (c->state == NC_OPEN)
		net__conn_read_stop(c);
}

/* Reading may start again: after a resume, or when the main loop caught
 * up (RESUME_IN). */
void net__io_unblock(struct net_conn *c)
{
	if (c->state != NC_OPEN || conn_blocked(c))
		return;
	conn_read_start(c);
	/* Bytes read before the pause wait in TLS; no socket event will come
	 * for them, so the prepare pass delivers them (never from here: this
	 * may run inside another conn's on_data, which owns io->pbuf). */
	if (c->state == NC_OPEN && tls_conn_has_input(c->tls)) {
		c->want_input = true;
		conn_schedule(c);
	}
}

void net__io_resume(struct net_conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	net__io_unblock(c);
}

void net__io_abort(struct net_conn *c)
{
	log_debug("net", "%s: aborted", c->peer);
	net__conn_close_now(c, -ECONNABORTED);
}

void net__io_shutdown(struct net_io *io)
{
	struct net_conn *c, *next;

	io->stopping = true;
	/* Every conn now leaves for SHUTTING or CLOSING, neither of which
	 * schedules work: the prepare handle is not needed any more. */
	for (c = io->conns; c; c = next) {
		next = c->next;
		conn_unschedule(c);
		if (c->state == NC_OPEN || c->state == NC_HANDSHAKE)
			net__conn_shutdown(c, -ESHUTDOWN, true);
	}
	if (!io->ev_head)
		uv_prepare_stop(&io->prepare);
	if (io->nconns)
		log_info("net", "closing %u connection(s)", io->nconns);
}

/* ---- accepting ---------------------------------------------------------- */

void net__format_peer(uv_tcp_t *tcp, char *out, size_t outlen,
		       struct sockaddr_storage *addr)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	memset(addr, 0, sizeof(*addr));	/* AF_UNSPEC until known */
	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0) {
		*addr = ss;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;

			uv_ip4_name(a, ip, sizeof(ip));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

			uv_ip6_name(a, ip, sizeof(ip));
			port = ntohs(a->sin6_port);
			snprintf(out, outlen, "[%s]:%u", ip, port);
			return;
		}
	}
	snprintf(out, outlen, "%s:%u", ip, port);
}

static void on_refused_close(uv_handle_t *h)
{
	struct net_refused *r = h->data;
	struct net_server *s = r->s;

	s->nrefused--;
	free(r);
	net__server_maybe_free(s);
}

static void on_refused_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct net_refused *r = h->data;

	(void)suggested;
	buf->base = (char *)r->s->drop;
	buf->len = sizeof(r->s->drop);
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
void net__refuse(struct net_server *s)
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
	s->refused_total++;
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

/* On c's I/O loop: its handles are set up and on io->conns. */
static void io_conn_init(struct net_conn *c)
{
	struct net_io *io = c->io;

	c->tcp.data = c;
	c->timer.data = c;
	uv_tcp_init(io->loop, &c->tcp);
	uv_timer_init(io->loop, &c->timer);
	c->handles = 2;
	conns_add(io, c);
}

/* On c's I/O loop, with the socket connected: start the handshake. */
static void io_conn_start(struct net_conn *c)
{
	struct net_io *io = c->io;

	/* Our writes are batched per loop iteration already; Nagle would only
	 * add latency to the last segment. */
	uv_tcp_nodelay(&c->tcp, 1);
	uv_tcp_keepalive(&c->tcp, 1, NET_KEEPALIVE_S);
	c->idle_ms = io->lim.idle_timeout_ms;
	c->send_ms = io->lim.send_timeout_ms;
	c->last_active = uv_now(io->loop);
	uv_timer_start(&c->timer, on_timer, io->lim.handshake_timeout_ms, 0);
	conn_read_start(c);
	log_debug("net", "%s: accepted", c->peer);
	if (io->stopping)
		net__conn_shutdown(c, -ESHUTDOWN, false);
}

/* An ACCEPT command: the socket is ours from here. */
void net__io_accept(struct net_conn *c, int fd)
{
	int r;

	io_conn_init(c);
	r = uv_tcp_open(&c->tcp, fd);
	if (r < 0) {
		close(fd);
		log_warn("net", "%s: taking over the socket: %s", c->peer,
			 uv_strerror(r));
		net__conn_close_now(c, r);
		return;
	}
	io_conn_start(c);
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
		net__refuse(s);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		log_err("net", "out of memory accepting a connection");
		net__refuse(s);
		return;
	}
	c->s = s;
	if (threaded(s)) {
		net__accept_threaded(s, c);
		return;
	}
	c->io = s->inl;
	io_conn_init(c);
	s->nconns++;
	/* From here every failure goes through net__conn_close_now, which frees
	 * c in the close callbacks. */
	r = uv_accept(listener, (uv_stream_t *)&c->tcp);
	if (r < 0) {
		log_warn("net", "accept: %s", uv_strerror(r));
		net__conn_close_now(c, r);
		return;
	}
	net__format_peer(&c->tcp, c->peer, sizeof(c->peer), &c->peer_addr);
	r = tls_conn_new(s->tls, &c->tls);
	if (r < 0) {
		log_err("net", "%s: creating TLS state: %s", c->peer,
			uv_strerror(r));
		net__conn_close_now(c, r);
		return;
	}
	io_conn_start(c);
}

/* ---- server ------------------------------------------------------------- */

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
	s->use_uring = true;
	net_limits_default(&s->lim);
	s->inl = net__io_new(s, loop);
	if (!s->inl) {
		free(s);
		return -ENOMEM;
	}
	s->tls = tls_ctx_ref(tls);
	s->listener.data = s;
	uv_tcp_init(loop, &s->listener);
	s->handles = 1;
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
	s->inl->lim = *l;
	for (unsigned i = 0; i < s->nio && !s->closing; i++) {
		struct net_msg *m = net__msg_new(CMD_LIMITS, NULL);

		m->lim = *l;
		net__queue_push(&s->io[i]->cmds, m);
	}
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

void net_server_set_uring(struct net_server *s, bool on)
{
	s->use_uring = on;
}

bool net_server_uring(const struct net_server *s)
{
	if (!s->use_uring)
		return false;
	if (!threaded(s))
		return !s->inl->ring_tried || s->inl->ring;
	return true;
}

unsigned net_server_conns(const struct net_server *s)
{
	return s->nconns;
}

uint64_t net_server_refused(const struct net_server *s)
{
	return s->refused_total;
}

static void on_inline_prepare_close(uv_handle_t *h)
{
	struct net_server *s = ((struct net_io *)h->data)->s;

	s->handles--;
	net__server_maybe_free(s);
}

void net_server_stop_accepting(struct net_server *s)
{
	if (s->accept_stopped || s->closing)
		return;
	s->accept_stopped = true;
	uv_close((uv_handle_t *)&s->listener, net__on_server_handle_close);
}

void net_server_close(struct net_server *s, void (*cb)(void *arg))
{
	struct net_conn *c;

	if (s->closing)
		return;
	s->closing = true;
	s->close_cb = cb;
	/* The inline loop's prepare handle is the server's to close. */
	s->handles++;
	uv_close((uv_handle_t *)&s->inl->prepare, on_inline_prepare_close);
	if (!s->accept_stopped) {
		s->accept_stopped = true;
		uv_close((uv_handle_t *)&s->listener,
			 net__on_server_handle_close);
	}
	if (!threaded(s)) {
		net__io_shutdown(s->inl);
		return;
	}
	/* What the consumer wrote goes out before the close_notify. */
	while ((c = s->dirty_head) != NULL) {
		net__dirty_remove(c);
		net__main_flush(c);
	}
	for (unsigned i = 0; i < s->nio; i++) {
		net__io_push_out(s->io[i]);
		net__queue_push(&s->io[i]->cmds, net__msg_new(CMD_SHUTDOWN, NULL));
	}
}

/* ---- connection accessors and controls ---------------------------------- */

void net_conn_pause_read(struct net_conn *c)
{
	if (!threaded(c->s)) {
		net__io_pause(c);
		return;
	}
	if (c->m_paused)
		return;
	c->m_paused = true;
	if (c->mstate == M_OPEN)
		net__send_cmd(c, CMD_PAUSE);
}

void net_conn_resume_read(struct net_conn *c)
{
	if (!threaded(c->s)) {
		net__io_resume(c);
		return;
	}
	if (!c->m_paused)
		return;
	c->m_paused = false;
	if (c->mstate != M_OPEN)
		return;
	net__send_cmd(c, CMD_RESUME);
	/* Held input goes from the prepare pass, never from here (this may
	 * run inside another conn's on_data). */
	if (c->held_head) {
		c->m_want_input = true;
		net__dirty_add(c);
	}
}

void net_conn_close(struct net_conn *c)
{
	if (!threaded(c->s)) {
		if (c->state == NC_OPEN)
			net__conn_shutdown(c, 0, true);
		return;
	}
	if (c->mstate != M_OPEN)
		return;
	c->mstate = M_CLOSING;
	net__held_drop(c);
	net__dirty_remove(c);
	net__main_flush(c);
	net__send_cmd(c, CMD_CLOSE);
}

void net_conn_abort(struct net_conn *c)
{
	if (!threaded(c->s)) {
		net__io_abort(c);
		return;
	}
	if (c->mstate == M_GONE || c->mstate == M_CLOSING)
		return;
	c->mstate = M_CLOSING;
	net__held_drop(c);
	net__dirty_remove(c);
	if (c->m_len)
		count_sub(c, c->m_len);
	c->m_len = 0;
	net__send_cmd(c, CMD_ABORT);
}

int net_conn_export(const struct net_conn *c, const char *label,
		    uint8_t *out, size_t len)
{
	if (!threaded(c->s))
		return tls_conn_export(c->tls, label, out, len);
	if (strcmp(label, TLS_EXPORTER_AUTH) != 0 || len != NET_EXPORT_LEN)
		return -EINVAL;
	if (c->export_rc < 0)
		return c->export_rc;
	memcpy(out, c->exporter, len);
	return 0;
}

int net_conn_peer_subject(const struct net_conn *c, char *buf, size_t len)
{
	if (!threaded(c->s))
		return tls_conn_peer_subject(c->tls, buf, len);
	if (c->subject_rc < 0)
		return c->subject_rc;
	if (strlen(c->subject) >= len)
		return -ERANGE;
	memcpy(buf, c->subject, strlen(c->subject) + 1);
	return 0;
}

const char *net_conn_peer(const struct net_conn *c)
{
	return c->peer;
}

const struct sockaddr *net_conn_peer_addr(const struct net_conn *c)
{
	return c->peer_addr.ss_family == AF_UNSPEC ?
	       NULL : (const struct sockaddr *)&c->peer_addr;
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
