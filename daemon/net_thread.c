// SPDX-License-Identifier: Apache-2.0
/*
 * net_thread: the I/O threads of net (see net.h), the messages between
 * them and the listen loop, and the listen loop's side of a threaded
 * connection.
 *
 * A connection's socket, TLS state and timer live on one I/O loop (struct
 * net_io); the consumer's callbacks always run on the loop given to
 * net_listen (the "main" loop), so the consumer (request dispatch and the
 * store behind it) stays single-threaded.  By default the
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
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net_int.h"
#include "tls.h"
#include "log.h"
#include "banned.h"

/* ---- messages ----------------------------------------------------------- */

/* Control messages are small and few; without memory for one the process
 * cannot keep its connections consistent, so it stops. */
struct net_msg *net__msg_new(enum msg_type type, struct net_conn *c)
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

void net__queue_push(struct net_queue *q, struct net_msg *m)
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
void net__io_push_out(struct net_io *io)
{
	if (!io->out_head)
		return;
	queue_push_list(&io->cmds, io->out_head, io->out_tail);
	io->out_head = io->out_tail = NULL;
}

/* I/O loop: queue an event for the prepare pass (which runs before the
 * loop next waits, whatever phase this is). */
void net__io_emit(struct net_io *io, struct net_msg *m)
{
	list_add(&io->ev_head, &io->ev_tail, m);
	uv_prepare_start(&io->prepare, net__on_prepare);
}

void net__io_flush_events(struct net_io *io)
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

void net__send_cmd(struct net_conn *c, enum msg_type type)
{
	net__io_push_out(c->io);	/* keep c's order: its writes go first */
	net__queue_push(&c->io->cmds, net__msg_new(type, c));
}

/* ---- big buffers -------------------------------------------------------- */

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
			if (pl->n < pl->low)
				pl->low = pl->n;
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

void net_server_trim(struct net_server *s)
{
	struct net_pool *pl = &s->pool;
	void *p[NET_POOL_MAX];
	unsigned n = 0;

	if (!s->nio)
		return;		/* no pool without I/O threads */
	uv_mutex_lock(&pl->mu);
	/* The fewest pooled since the last call were never taken. */
	for (; pl->low; pl->low--)
		p[n++] = pl->p[--pl->n];
	pl->low = pl->n;
	uv_mutex_unlock(&pl->mu);
	while (n)
		free(p[--n]);
}

size_t net_server_pooled(struct net_server *s)
{
	size_t bytes = 0;

	if (!s->nio)
		return 0;
	uv_mutex_lock(&s->pool.mu);
	for (unsigned i = 0; i < s->pool.n; i++)
		bytes += s->pool.cap[i];
	uv_mutex_unlock(&s->pool.mu);
	return bytes;
}

void net__pool_free_all(struct net_server *s)
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

/* ---- events to the consumer (I/O loop side) ----------------------------- */

void net__emit_open(struct net_conn *c)
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
	net__io_emit(c->io, net__msg_new(EV_OPEN, c));
}

void net__emit_data(struct net_conn *c, const uint8_t *p, size_t n)
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
		net__conn_close_now(c, -ENOMEM);
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
	net__io_emit(c->io, m);
	if (over && !(atomic_load(&c->in_bytes) <= NET_IN_LOW &&
		      atomic_exchange(&c->starved, false))) {
		c->throttled = true;
		net__conn_read_stop(c);
	}
}

void net__emit_drain(struct net_conn *c)
{
	struct net_server *s = c->s;

	if (!c->io->threaded) {
		if (s->cbs.on_drain)
			s->cbs.on_drain(c);
		return;
	}
	net__io_emit(c->io, net__msg_new(EV_DRAIN, c));
}

/* The conn is closed on its I/O loop: tell the consumer, free (inline) or
 * wait for FREE (threaded). */
void net__emit_closed(struct net_conn *c)
{
	struct net_server *s = c->s;
	struct net_msg *m;

	if (c->io->threaded) {
		m = net__msg_new(EV_CLOSED, c);
		m->arg = c->reason;
		m->opened = c->opened;
		c->io->nzombies++;
		net__io_emit(c->io, m);
		return;
	}
	if (c->opened)
		s->cbs.on_close(c, c->reason);
	net__conn_free_mem(c);
	s->nconns--;
	if (s->at_limit && s->nconns < s->lim.max_conns) {
		s->at_limit = false;
		log_info("net", "below the connection limit (%u) again",
			 s->lim.max_conns);
	}
	net__server_maybe_free(s);
}

/* len more bytes are on their way: count them, have mprep flush them, and
 * owe a drain if that takes c over its high-water mark. */
static void main_written(struct net_conn *c, size_t len)
{
	count_add(c, len);
	net__dirty_add(c);
	if (atomic_load(&c->pend) > c->s->lim.out_high_water) {
		atomic_store(&c->above_high, true);
		/* The I/O loop may have emptied it just before the flag was
		 * up; then the drain is ours to call. */
		if (atomic_load(&c->pend) <= conn_drain_level(c) &&
		    atomic_exchange(&c->above_high, false)) {
			atomic_store(&c->drain_low, false);
			c->m_drain_due = true;
		}
	}
}

int net__main_write(struct net_conn *c, const void *buf, size_t len)
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
		net__main_flush(c);
		m = net__msg_new(CMD_WRITE, c);
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
	main_written(c, len);
	return 0;
}

/* The I/O loop encrypts straight from buf, then sends RELEASE back. */
void net__main_write_borrowed(struct net_conn *c, const void *buf,
			      size_t len, void (*release)(void *arg),
			      void *arg)
{
	struct net_msg *m;

	net__main_flush(c);	/* what was written before goes first */
	m = net__msg_new(CMD_WRITE, c);
	m->buf = (uint8_t *)buf;
	m->len = len;
	m->release = release;
	m->rarg = arg;
	list_add(&c->io->out_head, &c->io->out_tail, m);
	main_written(c, len);
}

static void on_free_handle(uv_handle_t *h)
{
	free(h);
}

/* ---- accepting (threaded) ----------------------------------------------- */

/* Threaded: accept on the main loop, then hand the socket (a duplicate:
 * closing the main loop's handle closes its own descriptor) to an I/O
 * loop, round-robin. */
void net__accept_threaded(struct net_server *s, struct net_conn *c)
{
	uv_tcp_t *tmp = malloc(sizeof(*tmp));
	uv_os_fd_t fd;
	struct net_msg *m;
	int r, nfd = -1;

	if (!tmp) {
		log_err("net", "out of memory accepting a connection");
		free(c);
		net__refuse(s);
		return;
	}
	uv_tcp_init(s->loop, tmp);
	r = uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)tmp);
	if (r == 0) {
		net__format_peer(tmp, c->peer, sizeof(c->peer),
				 &c->peer_addr);
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
	m = net__msg_new(CMD_ACCEPT, c);
	m->arg = nfd;
	net__queue_push(&c->io->cmds, m);
}

/* ---- I/O threads -------------------------------------------------------- */

static void io_maybe_finish(struct net_io *io)
{
	if (!io->threaded || !io->stopping || io->finished || io->nconns ||
	    io->nzombies)
		return;
	io->finished = true;
	net__io_flush_events(io);
	if (io->ring) {
		uring_close(io->ring, NULL, NULL);	/* nothing in flight */
		io->ring = NULL;
	}
	uv_close((uv_handle_t *)&io->prepare, NULL);
	uv_close((uv_handle_t *)&io->cmds.async, NULL);
}

static void io_command(struct net_io *io, struct net_msg *m)
{
	struct net_conn *c = m->c;

	switch (m->type) {
	case CMD_ACCEPT:
		net__io_accept(c, m->arg);
		break;
	case CMD_WRITE:
		net__io_write(c, m->buf, m->len);
		break;
	case CMD_PAUSE:
		net__io_pause(c);
		break;
	case CMD_RESUME:
		net__io_resume(c);
		break;
	case CMD_RESUME_IN:
		c->throttled = false;
		net__io_unblock(c);
		break;
	case CMD_CLOSE:
		if (c->state == NC_OPEN)
			net__conn_shutdown(c, 0, true);
		break;
	case CMD_ABORT:
		net__io_abort(c);
		break;
	case CMD_FREE:
		net__conn_free_mem(c);
		io->nzombies--;
		io_maybe_finish(io);
		break;
	case CMD_LIMITS:
		io->lim = m->lim;
		break;
	case CMD_SHUTDOWN:
		net__io_shutdown(io);
		io_maybe_finish(io);
		break;
	default:
		assert(!"not a command");
		break;
	}
	if (m->release) {
		/* A borrowed buffer: encrypted (or dropped); back it goes. */
		m->type = EV_RELEASE;
		m->buf = NULL;
		net__io_emit(io, m);
		return;
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
	net__queue_push(&s->evs, net__msg_new(EV_IO_DONE, NULL));
}

struct net_io *net__io_new(struct net_server *s, uv_loop_t *loop)
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
	net__io_free(io);
}

/* ---- the main loop's side ----------------------------------------------- */

void net__dirty_add(struct net_conn *c)
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
	uv_prepare_start(&s->mprep, net__on_mprep);
}

void net__dirty_remove(struct net_conn *c)
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
void net__main_flush(struct net_conn *c)
{
	struct net_msg *m;

	if (!c->m_len)
		return;
	m = net__msg_new(CMD_WRITE, c);
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
		net__send_cmd(c, CMD_RESUME_IN);
}

void net__held_drop(struct net_conn *c)
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
		net__held_drop(c);
}

void net__on_mprep(uv_prepare_t *h)
{
	struct net_server *s = h->data;
	struct net_conn *c;

	while ((c = s->dirty_head) != NULL) {
		net__dirty_remove(c);
		if (c->m_want_input) {
			c->m_want_input = false;
			main_deliver_held(c);
			net__dirty_remove(c);	/* flushed just below */
		}
		if (c->m_drain_due) {
			c->m_drain_due = false;
			if (c->mstate == M_OPEN && s->cbs.on_drain)
				s->cbs.on_drain(c);
			net__dirty_remove(c);
		}
		net__main_flush(c);
	}
	if (s->sdrain_due) {
		s->sdrain_due = false;
		if (!s->closing && s->cbs.on_server_drain)
			s->cbs.on_server_drain(s->arg);
	}
	/* One message list, one lock, one wake-up per I/O loop. */
	for (unsigned i = 0; i < s->nio; i++)
		net__io_push_out(s->io[i]);
	if (!s->dirty_head && !s->sdrain_due)
		uv_prepare_stop(h);
}

static void main_all_done(struct net_server *s)
{
	for (unsigned i = 0; i < s->nio; i++)
		uv_thread_join(&s->io[i]->thread);
	uv_close((uv_handle_t *)&s->mprep, net__on_server_handle_close);
	uv_close((uv_handle_t *)&s->evs.async, net__on_server_handle_close);
}

static void main_conn_gone(struct net_conn *c, int reason, bool opened)
{
	struct net_server *s = c->s;

	net__dirty_remove(c);
	if (c->m_len)
		count_sub(c, c->m_len);
	free(c->m_out);
	c->m_out = NULL;
	c->m_len = c->m_cap = 0;
	c->mstate = M_GONE;
	net__held_drop(c);
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
		uv_prepare_start(&s->mprep, net__on_mprep);
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
		net__io_push_out(c->io);
		net__queue_push(&c->io->cmds, m);
		return;
	case EV_IO_DONE:
		if (++s->io_done == s->nio)
			main_all_done(s);
		break;
	case EV_RELEASE:
		m->release(m->rarg);
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
		struct net_io *io = net__io_new(s, NULL);

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
		uv_close((uv_handle_t *)&s->mprep, net__on_server_handle_close);
		uv_close((uv_handle_t *)&s->evs.async, net__on_server_handle_close);
		/* evs.mu is destroyed with the server only when nio > 0. */
		uv_mutex_destroy(&s->evs.mu);
		net__pool_free_all(s);
		return -EAGAIN;
	}
	log_info("net", "serving connections on %u I/O thread(s)", started);
	return 0;
}

unsigned net_server_threads(const struct net_server *s)
{
	return s->nio;
}
