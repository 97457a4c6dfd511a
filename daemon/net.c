// SPDX-License-Identifier: Apache-2.0
/*
 * net: libuv TCP server, TLS on every connection (see net.h for the API).
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
 * Loops and threads.  A connection's socket, TLS state and timer live on
 * one I/O loop (struct net_io); the consumer's callbacks always run on the
 * loop given to net_listen (the "main" loop), so the consumer (request
 * dispatch and the store behind it) stays single-threaded.  By default the
 * one I/O loop is the main loop itself ("inline": callbacks are plain
 * calls).  After net_server_set_threads(s, n) there are n I/O loops, each
 * on its own thread, and the two sides talk through FIFO message queues
 * (struct net_queue: a list under a mutex, and a uv_async_t to wake the
 * reader):
 *
 *   main -> I/O  commands: ACCEPT (a socket and its TLS state), WRITE
 *                (what the consumer wrote to a connection during one
 *                main-loop iteration, one buffer), PAUSE, RESUME,
 *                RESUME_IN, CLOSE, ABORT, FREE, LIMITS, SHUTDOWN;
 *   I/O -> main  events: OPEN, DATA (decrypted bytes), DRAIN, CLOSED,
 *                SERVER_DRAIN, IO_DONE.
 *
 * A connection's commands and its events each keep their order.  Its I/O
 * loop frees it on FREE, which the main loop sends once it has handled
 * CLOSED, so neither side can see it freed.  The main loop accepts (and
 * refuses over the limit), then hands the socket round-robin to an I/O
 * loop.  Output accounting is shared and atomic (c->pend, s->out_total):
 * net_conn_write adds plaintext bytes, the I/O loop turns them into
 * ciphertext bytes and subtracts what the socket took.  A drain flag
 * (c->above_high, s->drain_owed) is set by the producer's side and
 * cleared by whichever side first sees the level low, which then calls
 * (or sends) the drain callback: so one is never lost.  Input is bounded
 * the same way: DATA not yet consumed on the main loop (c->in_bytes)
 * above NET_IN_HIGH stops the I/O loop reading that socket ("throttled")
 * until the main loop has consumed it down to NET_IN_LOW (RESUME_IN).
 *
 * Invariants (per I/O loop unless said):
 *   - a conn is on io->conns, counted in io->nconns, from accept until its
 *     last handle's close callback; write and shutdown requests complete
 *     (UV_ECANCELED at worst) before that, so their callbacks always find
 *     the conn; s->nconns counts it from accept until CLOSED is handled;
 *   - on_close runs exactly once iff on_open ran;
 *   - the conn is on io->work iff c->in_work; io->prepare is active iff
 *     io->work is non-empty; the prepare callback flushes each listed
 *     conn (one uv_write of everything it wrote this iteration) and
 *     delivers input left buffered by a pause (c->want_input);
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
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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
/* Threaded: decrypted input the main loop has not consumed yet, per
 * connection, before its I/O loop stops reading the socket, and where it
 * starts again. */
#define NET_IN_HIGH ((size_t)1 << 20)
#define NET_IN_LOW ((size_t)256 << 10)
/* Threaded: what net_conn_export serves (the handshake's value is taken
 * on the I/O loop at open). */
#define NET_EXPORT_LEN 32
#define NET_SUBJECT_MAX 1024
/* Threaded: a write buffer's first size (it doubles from there), and
 * writes from which on a write travels as a buffer of its own. */
#define NET_OUT_MIN ((size_t)16 << 10)
#define NET_OUT_BIG ((size_t)64 << 10)
/* Threaded: big buffers (output copies, input messages) kept for reuse: a
 * fresh 1 MiB malloc() is an mmap() and 256 page faults, and it showed as
 * a third of the engine loop's time serving 64 MiB GETs. */
#define NET_POOL_MAX 64u

enum conn_state {
	NC_HANDSHAKE,
	NC_OPEN,
	NC_SHUTTING,
	NC_LINGER,
	NC_CLOSING,
};

/* The main loop's view of a connection (threaded). */
enum main_state { M_NEW, M_OPEN, M_CLOSING, M_GONE };

enum msg_type {
	CMD_ACCEPT, CMD_WRITE, CMD_PAUSE, CMD_RESUME, CMD_RESUME_IN,
	CMD_CLOSE, CMD_ABORT, CMD_FREE, CMD_LIMITS, CMD_SHUTDOWN,
	EV_OPEN, EV_DATA, EV_DRAIN, EV_CLOSED, EV_SERVER_DRAIN, EV_IO_DONE,
};

struct net_msg {
	struct net_msg *next;
	enum msg_type type;
	struct net_conn *c;
	int arg;		/* ACCEPT: the socket; CLOSED: the reason */
	bool opened;		/* CLOSED: on_open ran */
	uint8_t *buf;		/* WRITE: owned by the message */
	size_t len;		/* WRITE, DATA */
	size_t cap;		/* WRITE: buf's size when from the pool; DATA:
				 * the message's own, when from the pool */
	struct net_limits lim;	/* LIMITS */
	uint8_t data[];		/* DATA */
};

struct net_queue {
	uv_mutex_t mu;
	uv_async_t async;
	struct net_msg *head, *tail;
};

struct net_io;

struct net_conn {
	/* ---- the I/O loop's ---- */
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdown;
	struct net_server *s;
	struct net_io *io;
	struct tls_conn *tls;
	enum conn_state state;
	int handles;		/* open uv handles: 2, then 0 */
	int reason;		/* for on_close: the first cause */
	bool reason_set;
	bool opened;		/* on_open ran: on_close is owed */
	bool paused;		/* net_conn_pause_read */
	bool throttled;		/* threaded: the main loop is behind */
	bool reading;		/* uv_read_start is in effect */
	bool peer_eof;
	bool peer_notify;	/* the peer's close_notify came */
	bool want_input;	/* buffered input to deliver from prepare */
	bool in_work;
	unsigned idle_ms;
	uint64_t last_active;	/* uv_now() of the last byte moved */
	size_t out_queued;	/* bytes in uv_write requests */
	size_t tls_counted;	/* TLS output of net_conn_write, not flushed */
	struct net_conn *prev, *next;		/* io->conns */
	struct net_conn *wprev, *wnext;		/* io->work */

	/* ---- shared ---- */
	atomic_size_t pend;	/* net_conn_write_pending() */
	atomic_bool above_high;	/* on_drain is owed */
	atomic_size_t in_bytes;	/* threaded: DATA not yet consumed */
	atomic_bool starved;	/* threaded: RESUME_IN is owed */

	/* ---- set before on_open, read-only after ---- */
	char peer[INET6_ADDRSTRLEN + 8];
	int export_rc;		/* threaded */
	uint8_t exporter[NET_EXPORT_LEN];
	int subject_rc;
	char *subject;

	/* ---- the main loop's (threaded) ---- */
	enum main_state mstate;
	bool m_paused;
	bool m_want_input;	/* held input to deliver from mprep */
	bool m_drain_due;	/* on_drain to call from mprep */
	bool m_dirty;		/* on s->dirty */
	uint8_t *m_out;		/* written this iteration */
	size_t m_len, m_cap;
	struct net_msg *held_head, *held_tail;	/* DATA while paused */
	struct net_conn *dprev, *dnext;		/* s->dirty */
	void *data;
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

/* One loop running connections. */
struct net_io {
	struct net_server *s;
	uv_loop_t *loop;
	bool threaded;
	uv_loop_t own;			/* threaded: the thread's loop */
	uv_thread_t thread;
	uv_prepare_t prepare;
	struct net_queue cmds;		/* threaded */
	struct net_conn *conns;
	unsigned nconns;
	unsigned nzombies;		/* threaded: CLOSED sent, no FREE yet */
	struct net_conn *work_head, *work_tail;
	bool delivering;		/* pbuf in use (never nests) */
	bool stopping;			/* server closing */
	bool finished;			/* handles closed */
	struct net_limits lim;		/* this loop's copy */
	/* threaded: events of this iteration, sent together by the prepare
	 * pass (one lock and at most one wake-up of the main loop) */
	struct net_msg *ev_head, *ev_tail;
	/* threaded, the main loop's: WRITE commands of its iteration */
	struct net_msg *out_head, *out_tail;
	uint8_t rbuf[NET_READ_BUF];
	uint8_t pbuf[NET_PLAIN_BUF];
};

struct net_server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	int handles;			/* main-loop handles not yet closed */
	struct tls_ctx *tls;		/* one reference */
	struct net_callbacks cbs;
	struct net_limits lim;
	void *arg;
	unsigned nconns;		/* accepted, CLOSED not yet handled */
	unsigned nrefused;		/* refused sockets not yet closed */
	bool closing;
	bool at_limit;			/* "limit reached" logged */
	atomic_bool drain_owed;		/* out_total passed out_total_cap */
	atomic_size_t out_total;	/* see the invariants */
	void (*close_cb)(void *arg);
	struct net_io *inl;		/* the inline I/O loop (nio == 0) */
	/* threaded */
	struct net_io **io;
	unsigned nio, next_io, io_done;
	uv_prepare_t mprep;		/* flush writes, deliver held input */
	struct net_queue evs;
	struct net_conn *dirty_head, *dirty_tail;
	bool sdrain_due;		/* on_server_drain to call from mprep */
	struct net_pool {		/* big buffers, for reuse */
		uv_mutex_t mu;
		void *p[NET_POOL_MAX];
		size_t cap[NET_POOL_MAX];
		unsigned n;
	} pool;
	uint8_t drop[4096];		/* refused connections' input */
};

static void conn_close_now(struct net_conn *c, int reason);
static void conn_read_stop(struct net_conn *c);
static void io_check_server_drain(struct net_io *io);

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

static bool threaded(const struct net_server *s)
{
	return s->nio > 0;
}

/* ---- messages ---------------------------------------------------------- */

/* Control messages are small and few; without memory for one the process
 * cannot keep its connections consistent, so it stops. */
static struct net_msg *msg_new(enum msg_type type, struct net_conn *c)
{
	struct net_msg *m = calloc(1, sizeof(*m));

	if (!m) {
		log_err("net", "out of memory for a connection message");
		abort();
	}
	m->type = type;
	m->c = c;
	return m;
}

/* Append the list head..tail (linked, tail->next NULL) and wake the
 * reader. */
static void queue_push_list(struct net_queue *q, struct net_msg *head,
			    struct net_msg *tail)
{
	uv_mutex_lock(&q->mu);
	if (q->tail)
		q->tail->next = head;
	else
		q->head = head;
	q->tail = tail;
	uv_mutex_unlock(&q->mu);
	uv_async_send(&q->async);
}

static void queue_push(struct net_queue *q, struct net_msg *m)
{
	m->next = NULL;
	queue_push_list(q, m, m);
}

static void list_add(struct net_msg **head, struct net_msg **tail,
		     struct net_msg *m)
{
	m->next = NULL;
	if (*tail)
		(*tail)->next = m;
	else
		*head = m;
	*tail = m;
}

/* Main loop: send the WRITE commands gathered for io, ahead of anything
 * sent after them. */
static void io_push_out(struct net_io *io)
{
	if (!io->out_head)
		return;
	queue_push_list(&io->cmds, io->out_head, io->out_tail);
	io->out_head = io->out_tail = NULL;
}

static void on_prepare(uv_prepare_t *h);

/* I/O loop: queue an event for the prepare pass (which runs before the
 * loop next waits, whatever phase this is). */
static void io_emit(struct net_io *io, struct net_msg *m)
{
	list_add(&io->ev_head, &io->ev_tail, m);
	uv_prepare_start(&io->prepare, on_prepare);
}

static void io_flush_events(struct net_io *io)
{
	if (!io->ev_head)
		return;
	queue_push_list(&io->s->evs, io->ev_head, io->ev_tail);
	io->ev_head = io->ev_tail = NULL;
}

static struct net_msg *queue_take(struct net_queue *q)
{
	struct net_msg *m;

	uv_mutex_lock(&q->mu);
	m = q->head;
	q->head = q->tail = NULL;
	uv_mutex_unlock(&q->mu);
	return m;
}

static void send_cmd(struct net_conn *c, enum msg_type type)
{
	io_push_out(c->io);	/* keep c's order: its writes go first */
	queue_push(&c->io->cmds, msg_new(type, c));
}

/* ---- output accounting ------------------------------------------------- */

static void count_add(struct net_conn *c, size_t n)
{
	atomic_fetch_add(&c->pend, n);
	atomic_fetch_add(&c->s->out_total, n);
}

static void count_sub(struct net_conn *c, size_t n)
{
	atomic_fetch_sub(&c->pend, n);
	atomic_fetch_sub(&c->s->out_total, n);
}

/* ---- big buffers (threaded) -------------------------------------------- */

/* A buffer of at least len bytes (len >= NET_OUT_BIG); *cap its size. */
static void *pool_get(struct net_server *s, size_t len, size_t *cap)
{
	struct net_pool *pl = &s->pool;
	void *p = NULL;

	uv_mutex_lock(&pl->mu);
	for (unsigned i = pl->n; i-- > 0;) {
		if (pl->cap[i] >= len && pl->cap[i] / 2 <= len) {
			p = pl->p[i];
			*cap = pl->cap[i];
			pl->p[i] = pl->p[--pl->n];
			pl->cap[i] = pl->cap[pl->n];
			break;
		}
	}
	uv_mutex_unlock(&pl->mu);
	if (p)
		return p;
	/* Round up, so that slightly different sizes share buffers. */
	*cap = (len + NET_OUT_BIG - 1) / NET_OUT_BIG * NET_OUT_BIG;
	return malloc(*cap);
}

static void pool_put(struct net_server *s, void *p, size_t cap)
{
	struct net_pool *pl = &s->pool;

	uv_mutex_lock(&pl->mu);
	if (pl->n < NET_POOL_MAX) {
		pl->p[pl->n] = p;
		pl->cap[pl->n++] = cap;
		p = NULL;
	}
	uv_mutex_unlock(&pl->mu);
	free(p);
}

static void pool_free_all(struct net_server *s)
{
	while (s->pool.n--)
		free(s->pool.p[s->pool.n]);
	uv_mutex_destroy(&s->pool.mu);
}

/* A message and its cap (a DATA message may come from the pool). */
static void msg_free(struct net_server *s, struct net_msg *m)
{
	if (m->buf) {
		if (m->cap)
			pool_put(s, m->buf, m->cap);
		else
			free(m->buf);
	}
	if (m->type == EV_DATA && m->cap)
		pool_put(s, m, m->cap);
	else
		free(m);
}

/* ---- events to the consumer (I/O loop side) ---------------------------- */

static void emit_open(struct net_conn *c)
{
	struct net_server *s = c->s;
	char subj[NET_SUBJECT_MAX];

	if (!c->io->threaded) {
		s->cbs.on_open(c);
		return;
	}
	/* The main loop must not touch the TLS state: take what it may ask
	 * for now. */
	c->export_rc = tls_conn_export(c->tls, TLS_EXPORTER_AUTH, c->exporter,
				       sizeof(c->exporter));
	c->subject_rc = tls_conn_peer_subject(c->tls, subj, sizeof(subj));
	if (c->subject_rc == 0) {
		c->subject = strdup(subj);
		if (!c->subject)
			c->subject_rc = -ENOMEM;
	}
	io_emit(c->io, msg_new(EV_OPEN, c));
}

static void emit_data(struct net_conn *c, const uint8_t *p, size_t n)
{
	struct net_server *s = c->s;
	struct net_msg *m;
	bool over;

	if (!c->io->threaded) {
		s->cbs.on_data(c, p, n);
		return;
	}
	if (sizeof(*m) + n >= NET_OUT_BIG) {
		size_t cap;

		m = pool_get(s, sizeof(*m) + n, &cap);
		if (m) {
			memset(m, 0, sizeof(*m));
			m->cap = cap;
		}
	} else {
		m = malloc(sizeof(*m) + n);
		if (m)
			memset(m, 0, sizeof(*m));
	}
	if (!m) {
		log_err("net", "%s: out of memory for input", c->peer);
		conn_close_now(c, -ENOMEM);
		return;
	}
	m->type = EV_DATA;
	m->c = c;
	m->len = n;
	memcpy(m->data, p, n);
	/* Too far ahead of the main loop: raise the flag, then look again,
	 * so that either the main loop's RESUME_IN finds it or we see that
	 * it caught up meanwhile (see the header). */
	over = atomic_fetch_add(&c->in_bytes, n) + n > NET_IN_HIGH;
	if (over)
		atomic_store(&c->starved, true);
	io_emit(c->io, m);
	if (over && !(atomic_load(&c->in_bytes) <= NET_IN_LOW &&
		      atomic_exchange(&c->starved, false))) {
		c->throttled = true;
		conn_read_stop(c);
	}
}

static void emit_drain(struct net_conn *c)
{
	struct net_server *s = c->s;

	if (!c->io->threaded) {
		if (s->cbs.on_drain)
			s->cbs.on_drain(c);
		return;
	}
	io_emit(c->io, msg_new(EV_DRAIN, c));
}

static void server_maybe_free(struct net_server *s);

/* The conn is closed on its I/O loop: tell the consumer, free (inline) or
 * wait for FREE (threaded). */
static void emit_closed(struct net_conn *c)
{
	struct net_server *s = c->s;
	struct net_msg *m;

	if (c->io->threaded) {
		m = msg_new(EV_CLOSED, c);
		m->arg = c->reason;
		m->opened = c->opened;
		c->io->nzombies++;
		io_emit(c->io, m);
		return;
	}
	if (c->opened)
		s->cbs.on_close(c, c->reason);
	free(c->subject);
	free(c);
	s->nconns--;
	if (s->at_limit && s->nconns < s->lim.max_conns) {
		s->at_limit = false;
		log_info("net", "below the connection limit (%u) again",
			 s->lim.max_conns);
	}
	server_maybe_free(s);
}

/* Where on_drain is due.  Threaded, the refill that on_drain starts takes
 * a hop to the main loop and back (and its encryption): drained down to
 * out_low_water the socket would idle meanwhile, so the drain comes at
 * half of out_high_water when that is more. */
static size_t drain_level(const struct net_io *io)
{
	size_t half = io->lim.out_high_water / 2;

	if (io->threaded && half > io->lim.out_low_water)
		return half;
	return io->lim.out_low_water;
}

/* After c's pending output fell: on_drain if it is owed and low enough. */
static void io_check_drain(struct net_conn *c)
{
	if (c->state == NC_OPEN && atomic_load(&c->above_high) &&
	    atomic_load(&c->pend) <= drain_level(c->io) &&
	    atomic_exchange(&c->above_high, false))
		emit_drain(c);
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
	io_emit(io, msg_new(EV_SERVER_DRAIN, NULL));
}

/* ---- lists ------------------------------------------------------------- */

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
		uv_prepare_start(&io->prepare, on_prepare);
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

/* ---- server teardown --------------------------------------------------- */

static void io_free(struct net_io *io)
{
	if (io->threaded)
		uv_mutex_destroy(&io->cmds.mu);
	free(io);
}

/* Free the server once nothing refers to it (from a close callback). */
static void server_maybe_free(struct net_server *s)
{
	void (*cb)(void *arg);
	void *arg;

	if (!s->closing || s->handles || s->nconns || s->nrefused ||
	    s->io_done < s->nio)
		return;
	cb = s->close_cb;
	arg = s->arg;
	for (unsigned i = 0; i < s->nio; i++)
		io_free(s->io[i]);
	free(s->io);
	if (s->nio) {
		uv_mutex_destroy(&s->evs.mu);
		pool_free_all(s);
	}
	io_free(s->inl);
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

static void io_maybe_finish(struct net_io *io);

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
	emit_closed(c);	/* inline: may free the server */
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
	count_sub(c, c->tls_counted);
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
	struct net_io *io = c->io;
	struct net_write *w;
	uv_buf_t b;
	uint8_t *buf;
	size_t len, counted;
	int r;

	tls_conn_take_out(c->tls, &buf, &len);
	if (!len)
		return;
	/* The bytes leave TLS (tls_counted) for the socket; what it does
	 * not take at once is out_queued below. */
	counted = len < c->tls_counted ? len : c->tls_counted;
	c->tls_counted -= counted;
	/* Nothing queued: try the socket directly.  Most responses fit the
	 * socket buffer, and a write that completes here costs no write
	 * request, no callback and no epoll re-arm. */
	if (!c->out_queued) {
		b = uv_buf_init((char *)buf, 0);
		b.len = len;
		r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
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
		count_sub(c, counted);
		conn_close_now(c, -ENOMEM);
		return;
	}
	w->c = c;
	w->buf = buf;
	w->len = len;
	b = uv_buf_init((char *)buf, 0);
	b.len = len;	/* size_t on Unix; uv_buf_init takes unsigned */
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
		conn_close_now(c, r);
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
	uv_timer_start(&c->timer, on_timer, c->io->lim.close_timeout_ms, 0);
}

/* ---- reading ----------------------------------------------------------- */

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
		if (n)
			emit_data(c, io->pbuf, n);
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
	io->delivering = false;
}

static void process_input(struct net_conn *c)
{
	struct net_io *io = c->io;
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
		c->last_active = uv_now(io->loop);
		if (c->idle_ms)
			uv_timer_start(&c->timer, on_timer, c->idle_ms, 0);
		else
			uv_timer_stop(&c->timer);
		log_debug("net", "%s: open (%s)", c->peer,
			  tls_conn_cipher(c->tls));
		emit_open(c);
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
	c->last_active = uv_now(c->io->loop);
	if (c->state >= NC_SHUTTING)
		return;	/* closing: input is dropped */
	r = tls_conn_feed(c->tls, buf->base, (size_t)nread);
	if (r < 0) {
		conn_close_now(c, r);
		return;
	}
	process_input(c);
	/* buf is io->rbuf: keep what is unread before the next read reuses
	 * it. */
	if (c->tls)
		tls_conn_feed_release(c->tls);
}

/* ---- writing ----------------------------------------------------------- */

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
		conn_close_now(c, status);
		return;
	}
	c->last_active = uv_now(c->io->loop);
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
			conn_close_now(c, r);
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
static void io_write(struct net_conn *c, const uint8_t *buf, size_t len)
{
	if (c->state != NC_OPEN) {
		count_sub(c, len);	/* closing: dropped */
		io_check_server_drain(c->io);
	} else if (io_encrypt(c, buf, len) == -ENOMEM) {
		log_err("net", "%s: out of memory encrypting output", c->peer);
		conn_close_now(c, -ENOMEM);
	}
}

static void dirty_add(struct net_conn *c);
static void on_mprep(uv_prepare_t *h);

/* Threaded: append to this iteration's output (flushed by on_mprep). */
static void main_flush(struct net_conn *c);

static int main_write(struct net_conn *c, const void *buf, size_t len)
{
	struct net_server *s = c->s;

	if (len >= NET_OUT_BIG) {
		/* A big write travels as its own buffer, after what this
		 * iteration wrote before it: copied once, never moved. */
		struct net_msg *m;
		size_t cap;
		uint8_t *p = pool_get(s, len, &cap);

		if (!p)
			return -ENOMEM;
		memcpy(p, buf, len);
		main_flush(c);
		m = msg_new(CMD_WRITE, c);
		m->buf = p;
		m->len = len;
		m->cap = cap;
		list_add(&c->io->out_head, &c->io->out_tail, m);
	} else {
		if (c->m_len + len > c->m_cap) {
			/* Doubling: appending stays linear. */
			size_t cap = c->m_cap ? c->m_cap * 2 : NET_OUT_MIN;
			uint8_t *p;

			while (cap < c->m_len + len)
				cap *= 2;
			p = realloc(c->m_out, cap);
			if (!p)
				return -ENOMEM;
			c->m_out = p;
			c->m_cap = cap;
		}
		memcpy(c->m_out + c->m_len, buf, len);
		c->m_len += len;
	}
	count_add(c, len);
	dirty_add(c);
	if (atomic_load(&c->pend) > s->lim.out_high_water) {
		atomic_store(&c->above_high, true);
		/* The I/O loop may have emptied it just before the flag was
		 * up; then the drain is ours to call. */
		if (atomic_load(&c->pend) <= drain_level(c->io) &&
		    atomic_exchange(&c->above_high, false))
			c->m_drain_due = true;
	}
	return 0;
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
		return main_write(c, buf, len);
	count_add(c, len);
	r = io_encrypt(c, buf, len);
	if (r == 0 && atomic_load(&c->pend) > s->lim.out_high_water)
		atomic_store(&c->above_high, true);
	return r;
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
		uv_prepare_start(&s->mprep, on_mprep);
	}
	return true;
}

size_t net_server_out_pending(const struct net_server *s)
{
	return atomic_load(&s->out_total);
}

/* ---- the prepare pass -------------------------------------------------- */

static void on_prepare(uv_prepare_t *h)
{
	struct net_io *io = h->data;
	struct net_conn *c;

	/* Conns may be re-added while we go (on_data writing): the list is
	 * drained, not walked. */
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
	if (io->threaded) {
		io_flush_events(io);
		if (!io->finished)
			uv_prepare_stop(h);
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
			 c->peer, c->io->lim.handshake_timeout_ms);
		conn_shutdown(c, -ETIMEDOUT, false);
		break;
	case NC_OPEN:
		if (!c->idle_ms)
			break;
		idle = uv_now(c->io->loop) - c->last_active;
		if (conn_blocked(c)) {
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
			 c->peer, c->io->lim.close_timeout_ms);
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

/* ---- I/O-loop controls (commands, or plain calls inline) --------------- */

static void io_pause(struct net_conn *c)
{
	c->paused = true;
	if (c->state == NC_OPEN)
		conn_read_stop(c);
}

/* Reading may start again: after a resume, or when the main loop caught
 * up (RESUME_IN). */
static void io_unblock(struct net_conn *c)
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

static void io_resume(struct net_conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	io_unblock(c);
}

static void io_abort(struct net_conn *c)
{
	log_debug("net", "%s: aborted", c->peer);
	conn_close_now(c, -ECONNABORTED);
}

static void io_shutdown(struct net_io *io)
{
	struct net_conn *c, *next;

	io->stopping = true;
	/* Every conn now leaves for SHUTTING or CLOSING, neither of which
	 * schedules work: the prepare handle is not needed any more. */
	for (c = io->conns; c; c = next) {
		next = c->next;
		conn_unschedule(c);
		if (c->state == NC_OPEN || c->state == NC_HANDSHAKE)
			conn_shutdown(c, -ESHUTDOWN, true);
	}
	if (!io->ev_head)
		uv_prepare_stop(&io->prepare);
	if (io->nconns)
		log_info("net", "closing %u connection(s)", io->nconns);
}

/* ---- accepting --------------------------------------------------------- */

static void format_peer(uv_tcp_t *tcp, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0) {
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
	server_maybe_free(s);
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
	c->last_active = uv_now(io->loop);
	uv_timer_start(&c->timer, on_timer, io->lim.handshake_timeout_ms, 0);
	conn_read_start(c);
	log_debug("net", "%s: accepted", c->peer);
	if (io->stopping)
		conn_shutdown(c, -ESHUTDOWN, false);
}

/* An ACCEPT command: the socket is ours from here. */
static void io_accept(struct net_conn *c, int fd)
{
	int r;

	io_conn_init(c);
	r = uv_tcp_open(&c->tcp, fd);
	if (r < 0) {
		close(fd);
		log_warn("net", "%s: taking over the socket: %s", c->peer,
			 uv_strerror(r));
		conn_close_now(c, r);
		return;
	}
	io_conn_start(c);
}

static void on_free_handle(uv_handle_t *h)
{
	free(h);
}

/* Threaded: accept on the main loop, then hand the socket (a duplicate:
 * closing the main loop's handle closes its own descriptor) to an I/O
 * loop, round-robin. */
static void accept_threaded(struct net_server *s, struct net_conn *c)
{
	uv_tcp_t *tmp = malloc(sizeof(*tmp));
	uv_os_fd_t fd;
	struct net_msg *m;
	int r, nfd = -1;

	if (!tmp) {
		log_err("net", "out of memory accepting a connection");
		free(c);
		refuse(s);
		return;
	}
	uv_tcp_init(s->loop, tmp);
	r = uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)tmp);
	if (r == 0) {
		format_peer(tmp, c->peer, sizeof(c->peer));
		r = uv_fileno((uv_handle_t *)tmp, &fd);
		if (r == 0) {
			nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
			if (nfd < 0)
				r = -errno;
		}
	}
	uv_close((uv_handle_t *)tmp, on_free_handle);
	if (r == 0) {
		r = tls_conn_new(s->tls, &c->tls);
		if (r < 0)
			close(nfd);
	}
	if (r < 0) {
		log_warn("net", "accept: %s", uv_strerror(r));
		free(c);
		return;
	}
	c->io = s->io[s->next_io++ % s->nio];
	s->nconns++;
	m = msg_new(CMD_ACCEPT, c);
	m->arg = nfd;
	queue_push(&c->io->cmds, m);
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
	if (threaded(s)) {
		accept_threaded(s, c);
		return;
	}
	c->io = s->inl;
	io_conn_init(c);
	s->nconns++;
	/* From here every failure goes through conn_close_now, which frees
	 * c in the close callbacks. */
	r = uv_accept(listener, (uv_stream_t *)&c->tcp);
	if (r < 0) {
		log_warn("net", "accept: %s", uv_strerror(r));
		conn_close_now(c, r);
		return;
	}
	format_peer(&c->tcp, c->peer, sizeof(c->peer));
	r = tls_conn_new(s->tls, &c->tls);
	if (r < 0) {
		log_err("net", "%s: creating TLS state: %s", c->peer,
			uv_strerror(r));
		conn_close_now(c, r);
		return;
	}
	io_conn_start(c);
}

/* ---- I/O threads ------------------------------------------------------- */

static void io_maybe_finish(struct net_io *io)
{
	if (!io->threaded || !io->stopping || io->finished || io->nconns ||
	    io->nzombies)
		return;
	io->finished = true;
	io_flush_events(io);
	uv_close((uv_handle_t *)&io->prepare, NULL);
	uv_close((uv_handle_t *)&io->cmds.async, NULL);
}

static void io_command(struct net_io *io, struct net_msg *m)
{
	struct net_conn *c = m->c;

	switch (m->type) {
	case CMD_ACCEPT:
		io_accept(c, m->arg);
		break;
	case CMD_WRITE:
		io_write(c, m->buf, m->len);
		break;
	case CMD_PAUSE:
		io_pause(c);
		break;
	case CMD_RESUME:
		io_resume(c);
		break;
	case CMD_RESUME_IN:
		c->throttled = false;
		io_unblock(c);
		break;
	case CMD_CLOSE:
		if (c->state == NC_OPEN)
			conn_shutdown(c, 0, true);
		break;
	case CMD_ABORT:
		io_abort(c);
		break;
	case CMD_FREE:
		free(c->subject);
		free(c);
		io->nzombies--;
		io_maybe_finish(io);
		break;
	case CMD_LIMITS:
		io->lim = m->lim;
		break;
	case CMD_SHUTDOWN:
		io_shutdown(io);
		io_maybe_finish(io);
		break;
	default:
		assert(!"not a command");
		break;
	}
	msg_free(io->s, m);
}

static void on_cmds(uv_async_t *h)
{
	struct net_io *io = h->data;
	struct net_msg *m, *next;

	for (m = queue_take(&io->cmds); m; m = next) {
		next = m->next;
		io_command(io, m);
	}
}

static void io_thread(void *arg)
{
	struct net_io *io = arg;
	struct net_server *s = io->s;

	uv_run(io->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(io->loop) != 0)
		log_err("net", "an I/O loop closed with live handles");
	/* The last thing this thread does with the server. */
	queue_push(&s->evs, msg_new(EV_IO_DONE, NULL));
}

static struct net_io *io_new(struct net_server *s, uv_loop_t *loop)
{
	struct net_io *io = calloc(1, sizeof(*io));

	if (!io)
		return NULL;
	io->s = s;
	io->lim = s->lim;
	if (!loop) {
		io->threaded = true;
		if (uv_loop_init(&io->own) != 0) {
			free(io);
			return NULL;
		}
		io->loop = &io->own;
		uv_mutex_init(&io->cmds.mu);
		uv_async_init(io->loop, &io->cmds.async, on_cmds);
		io->cmds.async.data = io;
	} else {
		io->loop = loop;
	}
	uv_prepare_init(io->loop, &io->prepare);
	io->prepare.data = io;
	return io;
}

/* A thread that could not start: undo io_new. */
static void io_discard(struct net_io *io)
{
	uv_close((uv_handle_t *)&io->prepare, NULL);
	uv_close((uv_handle_t *)&io->cmds.async, NULL);
	uv_run(io->loop, UV_RUN_DEFAULT);
	uv_loop_close(io->loop);
	io_free(io);
}

/* ---- the main loop's side (threaded) ----------------------------------- */

static void dirty_add(struct net_conn *c)
{
	struct net_server *s = c->s;

	if (c->m_dirty)
		return;
	c->m_dirty = true;
	c->dnext = NULL;
	c->dprev = s->dirty_tail;
	if (s->dirty_tail)
		s->dirty_tail->dnext = c;
	else
		s->dirty_head = c;
	s->dirty_tail = c;
	uv_prepare_start(&s->mprep, on_mprep);
}

static void dirty_remove(struct net_conn *c)
{
	struct net_server *s = c->s;

	if (!c->m_dirty)
		return;
	if (c->dprev)
		c->dprev->dnext = c->dnext;
	else
		s->dirty_head = c->dnext;
	if (c->dnext)
		c->dnext->dprev = c->dprev;
	else
		s->dirty_tail = c->dprev;
	c->m_dirty = false;
	c->dprev = c->dnext = NULL;
}

/* Send this iteration's output to the I/O loop. */
static void main_flush(struct net_conn *c)
{
	struct net_msg *m;

	if (!c->m_len)
		return;
	m = msg_new(CMD_WRITE, c);
	m->buf = c->m_out;
	m->len = c->m_len;
	c->m_out = NULL;
	c->m_len = c->m_cap = 0;
	list_add(&c->io->out_head, &c->io->out_tail, m);
}

/* The main loop consumed a DATA event: maybe let the I/O loop read on. */
static void main_consumed(struct net_conn *c, struct net_msg *m)
{
	size_t left = atomic_fetch_sub(&c->in_bytes, m->len) - m->len;

	msg_free(c->s, m);
	if (left <= NET_IN_LOW && c->mstate != M_GONE &&
	    atomic_load(&c->starved) && atomic_exchange(&c->starved, false))
		send_cmd(c, CMD_RESUME_IN);
}

static void held_drop(struct net_conn *c)
{
	struct net_msg *m;

	while ((m = c->held_head) != NULL) {
		c->held_head = m->next;
		main_consumed(c, m);
	}
	c->held_tail = NULL;
}

static void main_deliver_held(struct net_conn *c)
{
	struct net_msg *m;

	while ((m = c->held_head) != NULL && !c->m_paused &&
	       c->mstate == M_OPEN) {
		c->held_head = m->next;
		if (!c->held_head)
			c->held_tail = NULL;
		c->s->cbs.on_data(c, m->data, m->len);
		main_consumed(c, m);
	}
	if (c->mstate != M_OPEN)
		held_drop(c);
}

static void on_mprep(uv_prepare_t *h)
{
	struct net_server *s = h->data;
	struct net_conn *c;

	while ((c = s->dirty_head) != NULL) {
		dirty_remove(c);
		if (c->m_want_input) {
			c->m_want_input = false;
			main_deliver_held(c);
			dirty_remove(c);	/* flushed just below */
		}
		if (c->m_drain_due) {
			c->m_drain_due = false;
			if (c->mstate == M_OPEN && s->cbs.on_drain)
				s->cbs.on_drain(c);
			dirty_remove(c);
		}
		main_flush(c);
	}
	if (s->sdrain_due) {
		s->sdrain_due = false;
		if (!s->closing && s->cbs.on_server_drain)
			s->cbs.on_server_drain(s->arg);
	}
	/* One message list, one lock, one wake-up per I/O loop. */
	for (unsigned i = 0; i < s->nio; i++)
		io_push_out(s->io[i]);
	if (!s->dirty_head && !s->sdrain_due)
		uv_prepare_stop(h);
}

static void main_all_done(struct net_server *s)
{
	for (unsigned i = 0; i < s->nio; i++)
		uv_thread_join(&s->io[i]->thread);
	uv_close((uv_handle_t *)&s->mprep, on_server_handle_close);
	uv_close((uv_handle_t *)&s->evs.async, on_server_handle_close);
}

static void main_conn_gone(struct net_conn *c, int reason, bool opened)
{
	struct net_server *s = c->s;

	dirty_remove(c);
	if (c->m_len)
		count_sub(c, c->m_len);
	free(c->m_out);
	c->m_out = NULL;
	c->m_len = c->m_cap = 0;
	c->mstate = M_GONE;
	held_drop(c);
	if (opened)
		s->cbs.on_close(c, reason);
	s->nconns--;
	if (s->at_limit && s->nconns < s->lim.max_conns) {
		s->at_limit = false;
		log_info("net", "below the connection limit (%u) again",
			 s->lim.max_conns);
	}
	if (atomic_load(&s->drain_owed) && !s->closing &&
	    atomic_load(&s->out_total) <= s->lim.out_total_cap / 2 &&
	    atomic_exchange(&s->drain_owed, false)) {
		s->sdrain_due = true;
		uv_prepare_start(&s->mprep, on_mprep);
	}
}

static void main_event(struct net_server *s, struct net_msg *m)
{
	struct net_conn *c = m->c;

	switch (m->type) {
	case EV_OPEN:
		c->mstate = M_OPEN;
		s->cbs.on_open(c);
		break;
	case EV_DATA:
		if (c->mstate != M_OPEN) {
			main_consumed(c, m);
			return;
		}
		if (c->m_paused || c->held_head) {
			m->next = NULL;
			if (c->held_tail)
				c->held_tail->next = m;
			else
				c->held_head = m;
			c->held_tail = m;
			return;
		}
		s->cbs.on_data(c, m->data, m->len);
		main_consumed(c, m);
		return;
	case EV_DRAIN:
		if (c->mstate == M_OPEN && s->cbs.on_drain)
			s->cbs.on_drain(c);
		break;
	case EV_SERVER_DRAIN:
		if (!s->closing && s->cbs.on_server_drain)
			s->cbs.on_server_drain(s->arg);
		break;
	case EV_CLOSED:
		main_conn_gone(c, m->arg, m->opened);
		/* Nothing on this loop refers to c any more. */
		m->type = CMD_FREE;
		io_push_out(c->io);
		queue_push(&c->io->cmds, m);
		return;
	case EV_IO_DONE:
		if (++s->io_done == s->nio)
			main_all_done(s);
		break;
	default:
		assert(!"not an event");
		break;
	}
	free(m);
}

static void on_events(uv_async_t *h)
{
	struct net_server *s = h->data;
	struct net_msg *m, *next;

	for (m = queue_take(&s->evs); m; m = next) {
		next = m->next;
		main_event(s, m);
	}
}

int net_server_set_threads(struct net_server *s, unsigned n)
{
	unsigned started = 0;

	if (s->nio || s->nconns || s->closing || n > NET_MAX_THREADS)
		return -EINVAL;
	if (!n)
		return 0;
	s->io = calloc(n, sizeof(*s->io));
	if (!s->io)
		return -ENOMEM;
	uv_mutex_init(&s->evs.mu);
	uv_mutex_init(&s->pool.mu);
	uv_async_init(s->loop, &s->evs.async, on_events);
	s->evs.async.data = s;
	uv_prepare_init(s->loop, &s->mprep);
	s->mprep.data = s;
	s->handles += 2;
	for (unsigned i = 0; i < n; i++) {
		struct net_io *io = io_new(s, NULL);

		if (!io)
			break;
		if (uv_thread_create(&io->thread, io_thread, io) != 0) {
			io_discard(io);
			break;
		}
		s->io[started++] = io;
	}
	s->nio = started;
	if (started < n)
		log_warn("net", "started %u of %u I/O threads", started, n);
	if (!started) {
		free(s->io);
		s->io = NULL;
		uv_close((uv_handle_t *)&s->mprep, on_server_handle_close);
		uv_close((uv_handle_t *)&s->evs.async, on_server_handle_close);
		/* evs.mu is destroyed with the server only when nio > 0. */
		uv_mutex_destroy(&s->evs.mu);
		pool_free_all(s);
		return -EAGAIN;
	}
	log_info("net", "serving connections on %u I/O thread(s)", started);
	return 0;
}

unsigned net_server_threads(const struct net_server *s)
{
	return s->nio;
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
	net_limits_default(&s->lim);
	s->inl = io_new(s, loop);
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
		struct net_msg *m = msg_new(CMD_LIMITS, NULL);

		m->lim = *l;
		queue_push(&s->io[i]->cmds, m);
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

unsigned net_server_conns(const struct net_server *s)
{
	return s->nconns;
}

static void on_inline_prepare_close(uv_handle_t *h)
{
	struct net_server *s = ((struct net_io *)h->data)->s;

	s->handles--;
	server_maybe_free(s);
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
	uv_close((uv_handle_t *)&s->listener, on_server_handle_close);
	if (!threaded(s)) {
		io_shutdown(s->inl);
		return;
	}
	/* What the consumer wrote goes out before the close_notify. */
	while ((c = s->dirty_head) != NULL) {
		dirty_remove(c);
		main_flush(c);
	}
	for (unsigned i = 0; i < s->nio; i++) {
		io_push_out(s->io[i]);
		queue_push(&s->io[i]->cmds, msg_new(CMD_SHUTDOWN, NULL));
	}
}

/* ---- connection accessors and controls --------------------------------- */

void net_conn_pause_read(struct net_conn *c)
{
	if (!threaded(c->s)) {
		io_pause(c);
		return;
	}
	if (c->m_paused)
		return;
	c->m_paused = true;
	if (c->mstate == M_OPEN)
		send_cmd(c, CMD_PAUSE);
}

void net_conn_resume_read(struct net_conn *c)
{
	if (!threaded(c->s)) {
		io_resume(c);
		return;
	}
	if (!c->m_paused)
		return;
	c->m_paused = false;
	if (c->mstate != M_OPEN)
		return;
	send_cmd(c, CMD_RESUME);
	/* Held input goes from the prepare pass, never from here (this may
	 * run inside another conn's on_data). */
	if (c->held_head) {
		c->m_want_input = true;
		dirty_add(c);
	}
}

void net_conn_close(struct net_conn *c)
{
	if (!threaded(c->s)) {
		if (c->state == NC_OPEN)
			conn_shutdown(c, 0, true);
		return;
	}
	if (c->mstate != M_OPEN)
		return;
	c->mstate = M_CLOSING;
	held_drop(c);
	dirty_remove(c);
	main_flush(c);
	send_cmd(c, CMD_CLOSE);
}

void net_conn_abort(struct net_conn *c)
{
	if (!threaded(c->s)) {
		io_abort(c);
		return;
	}
	if (c->mstate == M_GONE || c->mstate == M_CLOSING)
		return;
	c->mstate = M_CLOSING;
	held_drop(c);
	dirty_remove(c);
	if (c->m_len)
		count_sub(c, c->m_len);
	c->m_len = 0;
	send_cmd(c, CMD_ABORT);
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
