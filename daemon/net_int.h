// SPDX-License-Identifier: Apache-2.0
/*
 * net_int.h: what net.c (connections on their I/O loop, the server, the
 * API) and net_thread.c (I/O threads, messages between the loops, the
 * listen loop's side) share.  Nothing else includes it.
 */
#ifndef STRATA_NET_INT_H
#define STRATA_NET_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <uv.h>

#include "net.h"
#include "uring.h"

/* Each I/O loop's ring: sends in the kernel at once (one per connection
 * at most; more wait on the ring's queue). */
#define NET_URING_ENTRIES 256u
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
	EV_RELEASE,
};

struct net_msg {
	struct net_msg *next;
	enum msg_type type;
	struct net_conn *c;
	int arg;		/* ACCEPT: the socket; CLOSED: the reason */
	bool opened;		/* CLOSED: on_open ran */
	uint8_t *buf;		/* WRITE: owned by the message */
	size_t len;		/* WRITE, DATA */
	/* WRITE of a borrowed buffer, RELEASE: give it back (on the main
	 * loop) with release(rarg); buf is then not the message's. */
	void (*release)(void *rarg);
	void *rarg;
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
	unsigned send_ms;	/* limits.send_timeout_ms at accept */
	uint64_t wprogress;	/* uv_now() when queued output last moved */
	uint64_t acked_last;	/* bytes the peer had taken then */
	uint64_t wtotal;	/* bytes ever handed to the socket or libuv */
	size_t out_queued;	/* bytes in uv_write requests, or not yet
				 * taken by the socket from the ring's sends */
	/* With the loop's ring (io->ring): ciphertext buffers to send, in
	 * order; the head is in the kernel while `sending`. */
	struct net_send *sq_head, *sq_tail;
	bool sending;
	bool fin_due;		/* SHUTTING: uv_shutdown once sent */
	bool close_due;		/* CLOSING: uv_close(tcp) once sent */
	bool watch_listed;	/* on io->watch */
	struct net_conn *watch_next;
	size_t tls_counted;	/* TLS output of net_conn_write, not flushed */
	struct net_conn *prev, *next;		/* io->conns */
	struct net_conn *wprev, *wnext;		/* io->work */
	void *io_state;		/* cbs.io_input's (net_conn_io_set_state) */

	/* ---- shared ---- */
	atomic_size_t pend;	/* net_conn_write_pending() */
	atomic_bool above_high;	/* on_drain is owed */
	atomic_bool drain_low;	/* ... at out_low_water (the node is over
				 * its output cap: net_server_out_congested) */
	atomic_size_t in_bytes;	/* threaded: DATA not yet consumed */
	atomic_bool starved;	/* threaded: RESUME_IN is owed */
	atomic_bool io_ok;	/* net_conn_set_io_ok */

	/* ---- set before on_open, read-only after ---- */
	char peer[INET6_ADDRSTRLEN + 8];
	struct sockaddr_storage peer_addr;	/* AF_UNSPEC: unknown */
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

/* One ciphertext buffer sent through the loop's ring. */
struct net_send {
	struct uring_req req;	/* first: the completion finds the rest */
	struct net_conn *c;
	uint8_t *buf;
	size_t len;
	size_t off;		/* sent so far (short sends complete) */
	struct net_send *next;
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
	/* Socket sends go through this ring, made with the loop's first
	 * output (ring_tried); NULL: through libuv's writes. */
	struct uring *ring;
	bool ring_tried;
	/* Conns whose first queued send the prepare pass submits: those it
	 * leaves in the kernel start their send timeout. */
	struct net_conn *watch;
	bool in_pass;			/* in net__on_prepare */
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
	uint64_t refused_total;		/* refused over max_conns, ever */
	bool closing;
	bool use_uring;			/* net_server_set_uring */
	bool accept_stopped;	/* the listener is closed (or closing) */
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
		unsigned low;		/* fewest pooled since the trim */
	} pool;
	uint8_t drop[4096];		/* refused connections' input */
};

static inline bool threaded(const struct net_server *s)
{
	return s->nio > 0;
}

/* Free a connection's memory (its handles are closed), on any thread. */
static inline void net__conn_free_mem(struct net_conn *c)
{
	if (c->io_state)
		c->s->cbs.io_state_free(c->io_state);
	free(c->subject);
	free(c);
}

static inline void count_add(struct net_conn *c, size_t n)
{
	atomic_fetch_add(&c->pend, n);
	atomic_fetch_add(&c->s->out_total, n);
}

static inline void count_sub(struct net_conn *c, size_t n)
{
	atomic_fetch_sub(&c->pend, n);
	atomic_fetch_sub(&c->s->out_total, n);
}

/* Where on_drain is due.  Threaded, the refill that on_drain starts takes
 * a hop to the main loop and back (and its encryption): drained down to
 * out_low_water the socket would idle meanwhile, so the drain comes at
 * half of out_high_water when that is more. */
static inline size_t drain_level(const struct net_io *io)
{
	size_t half = io->lim.out_high_water / 2;

	if (io->threaded && half > io->lim.out_low_water)
		return half;
	return io->lim.out_low_water;
}

/* Where c's owed on_drain comes. */
static inline size_t conn_drain_level(struct net_conn *c)
{
	return atomic_load(&c->drain_low) ? c->io->lim.out_low_water
					  : drain_level(c->io);
}

/* net.c: a connection on its I/O loop, and the server's teardown. */
void net__conn_close_now(struct net_conn *c, int reason);
void net__conn_read_stop(struct net_conn *c);
void net__conn_shutdown(struct net_conn *c, int reason, bool notify);
void net__format_peer(uv_tcp_t *tcp, char *out, size_t outlen,
		       struct sockaddr_storage *addr);
void net__io_abort(struct net_conn *c);
void net__io_accept(struct net_conn *c, int fd);
void net__io_free(struct net_io *io);
void net__io_pause(struct net_conn *c);
void net__io_resume(struct net_conn *c);
void net__io_shutdown(struct net_io *io);
void net__io_unblock(struct net_conn *c);
void net__io_write(struct net_conn *c, const uint8_t *buf, size_t len);
void net__on_prepare(uv_prepare_t *h);
void net__on_server_handle_close(uv_handle_t *h);
void net__refuse(struct net_server *s);
void net__server_maybe_free(struct net_server *s);

/* net_thread.c: messages, the consumer's events (inline calls or
 * messages), I/O threads, and the listen loop's side. */
void net__accept_threaded(struct net_server *s, struct net_conn *c);
void net__dirty_add(struct net_conn *c);
void net__dirty_remove(struct net_conn *c);
void net__emit_closed(struct net_conn *c);
void net__emit_data(struct net_conn *c, const uint8_t *p, size_t n);
void net__emit_drain(struct net_conn *c);
void net__emit_open(struct net_conn *c);
void net__held_drop(struct net_conn *c);
void net__io_emit(struct net_io *io, struct net_msg *m);
void net__io_flush_events(struct net_io *io);
struct net_io *net__io_new(struct net_server *s, uv_loop_t *loop);
void net__io_push_out(struct net_io *io);
void net__main_flush(struct net_conn *c);
int net__main_write(struct net_conn *c, const void *buf, size_t len);
void net__main_write_borrowed(struct net_conn *c, const void *buf,
			      size_t len, void (*release)(void *arg),
			      void *arg);
struct net_msg *net__msg_new(enum msg_type type, struct net_conn *c);
void net__on_mprep(uv_prepare_t *h);
void net__pool_free_all(struct net_server *s);
void net__queue_push(struct net_queue *q, struct net_msg *m);
void net__send_cmd(struct net_conn *c, enum msg_type type);

#endif
