// SPDX-License-Identifier: Apache-2.0
/*
 * server: the protocol on top of the network layer.  Each TLS connection
 * (net.c) feeds decrypted bytes here; server.c cuts them into frames
 * (proto.c), checks the connection's state, and runs requests against the
 * store, streaming bodies both ways with back-pressure:
 *
 *   conn:  HELLO_WAIT --[HELLO]--> AUTH_WAIT --[AUTH ok]--> READY
 *          any --[protocol error, auth failure]--> CLOSING (flush, close)
 *
 *   PUT:  first frame (fields [+ body]) -> store_put_begin -> body frames ->
 *         store_put_write (reading pauses while the put is not writable)
 *         -> END -> store_put_commit -> response
 *   GET:  store_get -> data slices cut into frames; the first carries the
 *         response fields; the store pauses while the connection's output
 *         is above its high watermark and resumes on drain
 *
 * A connection that goes away aborts its uncommitted puts (nothing becomes
 * visible) and stops its gets; the structure lives until the last store
 * callback that refers to it has run.
 */
#ifndef STRATA_SERVER_H
#define STRATA_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct metrics;
struct net_callbacks;
struct net_conn;
struct store;
struct server;

struct server_opts {
	uint32_t node_id;
	uint32_t max_requests;		/* per connection; 0: 64 */
	size_t out_high;		/* output bytes that pause a get; 0: net's
					 * high-water mark */
	void *owner;			/* for the caller: server_owner() */
	struct metrics *metrics;	/* request counters; may be NULL */
	bool access_log;		/* a log line per request */
	uint32_t auth_timeout_ms;	/* TLS done to AUTH accepted, else the
					 * connection is closed; 0: 10 s */
	/* A request message under way (an upload's body) whose next bytes
	 * do not come for this long, while the server reads, closes the
	 * connection; 0: never. */
	uint32_t body_timeout_ms;
	/* Answers to small GETs for the I/O loops (anscache.h); may be
	 * NULL.  The server fills it and switches it off while the access
	 * log is on and once shutdown begins. */
	struct anscache *ans;
	/* The audit log (audit.h); may be NULL.  While it is set the
	 * answer cache is off too: every request goes through here and is
	 * recorded. */
	struct audit *audit;
};

int server_new(uv_loop_t *loop, struct store *s, const struct server_opts *o,
	       struct server **out);
/* Abort every request; the server must have no connections left.  The
 * memory goes once the loop has closed the server's timer. */
void server_free(struct server *srv);

/* The network callbacks that feed the server; pass srv as net_listen's
 * arg. */
void server_net_callbacks(struct net_callbacks *cbs);
void server_conn_open(struct net_conn *nc);
void server_conn_data(struct net_conn *nc, const uint8_t *buf, size_t len);
void server_conn_drain(struct net_conn *nc);
void server_conn_closed(struct net_conn *nc, int reason);

/* The owner pointer from the options (net_server_close's callback gets the
 * server, as net_listen's arg). */
void *server_owner(const struct server *srv);

/* Turn the access log on or off (config reload). */
void server_set_access_log(struct server *srv, bool on);
/* server_opts.body_timeout_ms, from now on. */
void server_set_body_timeout(struct server *srv, uint32_t ms);

/*
 * Shutdown, first part (SIGTERM), after net_server_stop_accepting():
 * every authenticated connection gets GOAWAY (STRATA_ECLOSING, PROTOCOL.md
 * §5.5); requests already received run to their end, new ones are
 * answered STRATA_ECLOSING, and each connection is closed gracefully as
 * soon as none of its requests is left in flight (connections not yet
 * authenticated at once).  The caller polls server_shutdown_poll() until
 * it returns 0 or its grace period ends, then net_server_close()s what is
 * left.
 */
void server_shutdown_begin(struct server *srv);

/* Close the connections that have nothing left in flight (above); returns
 * how many still have requests running.  With force (the grace period is
 * over) those are aborted too, and counted. */
unsigned server_shutdown_poll(struct server *srv, bool force);

/* Connections open now (for tests and metrics). */
unsigned server_conn_count(const struct server *srv);

#endif
