// SPDX-License-Identifier: Apache-2.0
/*
 * net: the daemon's TCP listener, with TLS 1.3 on every connection, on a
 * libuv loop.  The consumer (request dispatch) sees decrypted bytes in and
 * writes plaintext out; framing is its business.
 *
 * Connection states (net.c draws the full machine):
 *
 *   accept -> HANDSHAKE -> OPEN [on_open] -> CLOSING -> freed [on_close]
 *                  \______________________________^
 *                   (timeout, not TLS, bad certificate: no on_open/on_close)
 *
 * Back-pressure, both ways, per connection, so one slow peer slows only
 * itself:
 *   - output: net_conn_write_pending() counts ciphertext not yet written to
 *     the socket.  Producers stop when it passes limits.out_high_water and
 *     resume on on_drain, which fires once it falls to out_low_water;
 *     net_conn_write refuses (-ENOBUFS) to go past limits.out_cap.
 *   - input: net_conn_pause_read() stops reading the socket (the kernel's
 *     window then closes on the peer) and stops on_data, even for bytes
 *     already read; net_conn_resume_read() restarts both.
 * And for the whole server, so that many connections cannot add up to more
 * memory than the node has: net_server_out_congested() says when all
 * connections' pending output together passes limits.out_total_cap;
 * then the connections that hold more than their drain level of it stop
 * and resume on on_drain (theirs drained) or on_server_drain (the total
 * fell to half the cap), whichever comes first.  A connection whose
 * reader keeps up goes on: readers that stopped, holding the node's
 * output, cannot stall the others.
 *
 * Writes made during one loop iteration go out together, just before the
 * loop blocks: one send per connection, all of them submitted to the
 * loop's io_uring at once (net_server_set_uring; or one write(2) per
 * connection through libuv).
 *
 * The process must ignore SIGPIPE (libuv writes with write(2); the ring's
 * sends use MSG_NOSIGNAL), so that a peer gone mid-write is an error code,
 * not a signal.
 *
 * Threads: by default connections run on the loop given to net_listen.
 * With net_server_set_threads(s, n) their sockets, TLS and timers run on n
 * I/O threads, each with its own loop, so that encryption and socket
 * system calls use n cores; the callbacks below still run on the listen
 * loop, in the same order and with the same guarantees, so the consumer
 * needs no locks.  (Input is then bounded per connection: an I/O loop
 * stops reading a socket while 1 MiB of its input waits for the consumer.)
 *
 * All functions are called on the listen loop's thread; the conn and
 * server pointers stay valid until on_close returns and until the close
 * callback runs, respectively.  Functions return 0 or a negative errno.
 */
#ifndef STRATA_NET_H
#define STRATA_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct tls_ctx;
struct net_server;
struct net_conn;

struct net_callbacks {
	/* The TLS handshake is done; the connection is the consumer's until
	 * on_close.  Required. */
	void (*on_open)(struct net_conn *c);
	/* Decrypted application bytes, in order; valid only during the call
	 * (copy what a partial frame needs).  Not called while paused or
	 * closing.  Required. */
	void (*on_data)(struct net_conn *c, const uint8_t *plain, size_t len);
	/* Pending output fell to out_low_water after exceeding
	 * out_high_water (threaded: to the larger of out_low_water and half
	 * of out_high_water, since the refill takes a hop; and it did on the
	 * I/O loop: writes made since may have raised it again).  May be
	 * NULL. */
	void (*on_drain)(struct net_conn *c);
	/* The connection is gone (called once, only after on_open); free the
	 * user data here.  reason: 0 (closed by net_conn_close, or by the peer
	 * with close_notify), -ESHUTDOWN (net_server_close), -ETIMEDOUT (idle
	 * timeout), -ECONNABORTED (net_conn_abort, or a graceful close that
	 * ran past close_timeout_ms), -ECONNRESET (reset, or TCP closed
	 * without close_notify), -EPROTO (TLS error), or another negative
	 * errno from the socket (also when a net_conn_close fails before
	 * its data is out).  Non-zero means queued output may be lost.
	 * Required. */
	void (*on_close)(struct net_conn *c, int reason);
	/* All connections' pending output fell to half of out_total_cap after
	 * net_server_out_congested() said it was over (threaded: as for
	 * on_drain, writes since may have raised it).  arg: net_listen's.
	 * May be NULL. */
	void (*on_server_drain)(void *arg);
	/* Optional: the connection's decrypted input, on its I/O loop (any
	 * thread; inline, the listen loop), before on_data sees any of it.
	 * It hands on, in order, whatever the consumer's loop should see
	 * with net_conn_io_forward() and may answer the rest itself with
	 * net_conn_io_write().  NULL: all of it goes to on_data. */
	void (*io_input)(struct net_conn *c, const uint8_t *plain, size_t len);
	/* Frees what io_input kept with net_conn_io_set_state, when the
	 * connection is freed (any thread).  Required with io_input. */
	void (*io_state_free)(void *state);
};

struct net_limits {
	unsigned max_conns;		/* beyond: accepted and closed at once */
	unsigned handshake_timeout_ms;	/* TCP accept to TLS done */
	unsigned idle_timeout_ms;	/* no bytes either way; 0 = none */
	/* Output waiting for the socket (its buffer full: the peer reads
	 * nothing) and not a byte of it written for this long: the
	 * connection is aborted (-ETIMEDOUT), freeing what it held.  0 =
	 * none.  Noticed between one and two times this after the last
	 * byte went out. */
	unsigned send_timeout_ms;
	unsigned close_timeout_ms;	/* graceful close before it aborts */
	size_t out_low_water;		/* on_drain at or below this */
	size_t out_high_water;		/* producers stop above this */
	size_t out_cap;			/* net_conn_write refuses beyond */
	size_t out_total_cap;		/* all connections together; 0: none */
};

#define NET_DEFAULT_MAX_CONNS 1024u
#define NET_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u
#define NET_DEFAULT_CLOSE_TIMEOUT_MS 5000u
#define NET_DEFAULT_OUT_LOW_WATER ((size_t)256 << 10)
#define NET_DEFAULT_OUT_HIGH_WATER ((size_t)4 << 20)
#define NET_DEFAULT_OUT_CAP ((size_t)64 << 20)

/* Fill *l with the defaults above (idle and send timeouts 0: none). */
void net_limits_default(struct net_limits *l);

/*
 * Listen for TLS connections.
 *   [in]  loop  the loop to run on; outlives the server
 *   [in]  addr  an IPv4 or IPv6 address literal ("0.0.0.0", "::1", ...)
 *   [in]  port  0 picks an ephemeral port (see net_server_port)
 *   [in]  tls   a server context; the server takes its own reference
 *   [in]  cbs   callbacks, copied
 *   [in]  arg   for the callbacks (net_conn_arg) and the close callback
 *   [out] out   the server; live until net_server_close's callback
 * Limits start as net_limits_default(); change them with
 * net_server_set_limits before the loop runs.
 * Returns 0, -EINVAL (bad address, port or callbacks), -ENOMEM, or the
 * negative errno of bind/listen (-EADDRINUSE, -EACCES, ...).
 */
int net_listen(uv_loop_t *loop, const char *addr, int port,
	       struct tls_ctx *tls, const struct net_callbacks *cbs, void *arg,
	       struct net_server **out);

/*
 * Run connections on n I/O threads (1..NET_MAX_THREADS), each with its own
 * loop; 0 keeps them on the listen loop.  Call once, before the listen
 * loop runs.  Returns 0 (fewer threads than asked, logged, if some could
 * not start), -EINVAL (called twice, after a connection, or n too large),
 * -ENOMEM, -EAGAIN (no thread could start: connections stay on the listen
 * loop).  Threaded, net_conn_export serves only TLS_EXPORTER_AUTH with 32
 * bytes (-EINVAL otherwise): it is taken when the handshake completes.
 */
#define NET_MAX_THREADS 64u
int net_server_set_threads(struct net_server *s, unsigned n);
/* I/O threads running (0: connections run on the listen loop). */
unsigned net_server_threads(const struct net_server *s);

/*
 * Send through io_uring (on: the default) or with write(2) through libuv.
 * On, each I/O loop (the listen loop too, inline) makes its own ring with
 * its first output, and the sends of one loop iteration, all its
 * connections', go to the kernel in one io_uring_enter, where libuv
 * writes each connection's with a system call of its own.  Where a loop
 * cannot make a ring (io_uring disabled), it logs that and writes with
 * libuv.  Call before the loop runs (and before net_server_set_threads).
 * net_server_uring(): on, and no loop found it unavailable so far (an
 * I/O thread's failure shows only in the log).
 */
void net_server_set_uring(struct net_server *s, bool on);
bool net_server_uring(const struct net_server *s);

/*
 * Replace the limits (config reload).  max_conns and the output marks apply
 * at once, timeouts to connections accepted from now on.
 * Returns 0, or -EINVAL if max_conns, a timeout other than the idle one, or
 * out_cap is 0, or out_low_water > out_high_water > out_cap.
 */
int net_server_set_limits(struct net_server *s, const struct net_limits *l);

/*
 * Use a new TLS context for connections accepted from now on (certificate
 * reload); live connections keep theirs.  The server takes a reference to
 * tls and drops its reference to the old one; the caller keeps its own.
 */
void net_server_set_tls(struct net_server *s, struct tls_ctx *tls);

/* The bound port (useful after port 0), or a negative errno. */
int net_server_port(const struct net_server *s);
/* The local port a bound libuv TCP handle listens on, or a negative
 * errno (shared with the admin port). */
int net_tcp_port(const uv_tcp_t *h);

/* Connections held, counting those being closed. */
unsigned net_server_conns(const struct net_server *s);

/* Connections refused (accepted and closed at once) because max_conns
 * were held, since the server was made. */
uint64_t net_server_refused(const struct net_server *s);

/* Output pending on all connections together: ciphertext not yet written
 * to the sockets, counting what application writes put into TLS. */
size_t net_server_out_pending(const struct net_server *s);

/* Free the pooled big buffers (I/O threads' output copies and input) that
 * none took since the last call: an idle node gives back what a burst
 * left (main.c, every 10 s).  net_server_pooled(): their bytes now. */
void net_server_trim(struct net_server *s);
size_t net_server_pooled(struct net_server *s);

/* True when net_server_out_pending() of c's server is above
 * limits.out_total_cap (never when that is 0) and c's own pending output
 * is above its drain level (out_low_water; threaded: as for on_drain);
 * on_server_drain and c's on_drain are then owed.  Producers call it as
 * they call net_conn_write_pending(). */
bool net_server_out_congested(struct net_conn *c);

/*
 * Stop accepting new connections (the listening socket is closed: clients
 * are refused, and may go to another node) and leave the open ones
 * serving, for a shutdown that lets their requests finish first.
 * net_server_close() still follows.  Idempotent.
 */
void net_server_stop_accepting(struct net_server *s);

/*
 * Stop accepting and close every connection: open ones gracefully (flush,
 * close_notify; on_close reason -ESHUTDOWN), half-open ones at once.  When
 * the last handle is closed the server is freed and cb(arg) runs (cb may be
 * NULL); keep the loop running until then.  Each connection's close takes
 * at most limits.close_timeout_ms.  Call once.
 */
void net_server_close(struct net_server *s, void (*cb)(void *arg));

/*
 * Encrypt and queue application bytes (copied: buf is free on return).
 * Returns 0, -EPIPE (closing or closed), -ENOBUFS (would pass out_cap;
 * nothing was queued), -ENOMEM, or a TLS error code (the connection is then
 * being closed).
 */
int net_conn_write(struct net_conn *c, const void *buf, size_t len);

/*
 * net_conn_write without the copy: buf stays the caller's, unchanged, until
 * release(arg) runs on the listen loop (at once when connections run on
 * it; after the I/O thread has encrypted or dropped the bytes otherwise).
 * release runs exactly once, also when this returns an error.
 */
int net_conn_write_borrowed(struct net_conn *c, const void *buf, size_t len,
			    void (*release)(void *arg), void *arg);

/* Ciphertext bytes queued and not yet written to the socket. */
size_t net_conn_write_pending(const struct net_conn *c);

/* Stop / restart reading and on_data (see back-pressure above).  Calls do
 * not nest: one resume undoes any number of pauses.  Either may be called
 * from on_data. */
void net_conn_pause_read(struct net_conn *c);
void net_conn_resume_read(struct net_conn *c);

/*
 * Close gracefully: stop on_data, send what is queued, then close_notify,
 * then FIN; on_close(c, 0) follows once the socket is closed (at most
 * limits.close_timeout_ms later).  Later writes return -EPIPE.  Calling it
 * again, or on a closing connection, does nothing.
 */
void net_conn_close(struct net_conn *c);

/* Close now, dropping queued output; on_close(c, -ECONNABORTED) follows
 * from the loop (never from inside this call). */
void net_conn_abort(struct net_conn *c);

/* tls_conn_export on the connection (auth: TLS_EXPORTER_AUTH, 32 bytes). */
int net_conn_export(const struct net_conn *c, const char *label,
		    uint8_t *out, size_t len);

/* tls_conn_peer_subject on the connection (mutual TLS between nodes):
 * 0, -ENOENT (no client certificate), -ERANGE, -ENOMEM. */
int net_conn_peer_subject(const struct net_conn *c, char *buf, size_t len);

/* "203.0.113.5:41234" or "[2001:db8::1]:41234"; valid for the conn's life. */
const char *net_conn_peer(const struct net_conn *c);
/* The peer's address (for access policies' source_ip), NULL if unknown. */
const struct sockaddr *net_conn_peer_addr(const struct net_conn *c);

/* The consumer's pointer (NULL until set). */
void net_conn_set_data(struct net_conn *c, void *data);
void *net_conn_data(const struct net_conn *c);

/* The arg given to net_listen. */
void *net_conn_arg(const struct net_conn *c);

/*
 * For io_input only, on the connection's I/O loop:
 *   net_conn_io_forward  pass bytes on to on_data (in the order given);
 *   net_conn_io_write    write plaintext from the I/O loop itself,
 *                        counted in net_conn_write_pending like any
 *                        other; -EPIPE once the connection is closing;
 *   net_conn_io_congested  its output is above out_high_water, or the
 *                        node's above out_total_cap: forward instead of
 *                        answering (the consumer then pauses it);
 *   net_conn_io_state/_set_state  one pointer of io_input's own, freed
 *                        with io_state_free.
 */
void net_conn_io_forward(struct net_conn *c, const uint8_t *p, size_t n);
int net_conn_io_write(struct net_conn *c, const void *buf, size_t len);
bool net_conn_io_congested(const struct net_conn *c);
void *net_conn_io_state(const struct net_conn *c);
void net_conn_io_set_state(struct net_conn *c, void *state);
/* A flag the consumer sets (any thread) and io_input reads: e.g. "this
 * connection is authenticated".  Starts false. */
void net_conn_set_io_ok(struct net_conn *c, bool ok);
bool net_conn_io_ok(const struct net_conn *c);

#endif
