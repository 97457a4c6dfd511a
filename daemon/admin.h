// SPDX-License-Identifier: Apache-2.0
/*
 * admin: the admin HTTP port ([admin] listen): GET or HEAD of /metrics
 * (Prometheus text 0.0.4), /healthz (the loop answers: the process is alive
 * and its loop turns) and /readyz (the store is open and serving).
 *
 * Plain HTTP/1.1 on the daemon's own loop, bounded so that a scraper, a
 * probe or a stranger cannot hurt the node:
 *   - at most limits.max_conns connections (more are accepted and closed);
 *   - a request head of at most HTTP_MAX_HEADER bytes (431 beyond), read
 *     into a fixed per-connection buffer;
 *   - limits.timeout_ms from accept to the end of the response (408 if the
 *     request is not complete by then);
 *   - one request per connection (Connection: close); GET and HEAD only
 *     (405), known paths only (404), malformed heads 400.
 * It should listen on loopback or a management network: it has no TLS and
 * no authentication (the metrics carry no keys, names or secrets).
 *
 *   accept -> READING --[whole head: answer]--> ANSWERED (read and drop,
 *             until EOF or the timer) -> closed
 *             READING --[timer: 408]--> ANSWERED
 */
#ifndef STRATA_ADMIN_H
#define STRATA_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct admin;
struct metrics;

struct admin_handlers {
	/* The /metrics body, malloc'd (the admin port frees it); 0 or a
	 * negative errno (answered 500). */
	int (*metrics)(void *arg, char **body, size_t *len);
	/* /readyz: true when serving. */
	bool (*ready)(void *arg);
};

struct admin_limits {
	unsigned max_conns;
	unsigned timeout_ms;
};

/*
 * Listen on addr:port (an IPv4 or IPv6 literal; port 0: ephemeral).  h is
 * copied; arg goes to the handlers; m (may be NULL) counts admin requests.
 * Returns 0, -EINVAL, -ENOMEM or the negative errno of bind/listen.
 */
int admin_listen(uv_loop_t *loop, const char *addr, int port,
		 const struct admin_limits *l, const struct admin_handlers *h,
		 void *arg, struct metrics *m, struct admin **out);

/* The bound port, or a negative errno. */
int admin_port(const struct admin *a);

/* Stop listening, close every connection, free a, then cb(arg) (may be
 * NULL).  Call once. */
void admin_close(struct admin *a, void (*cb)(void *arg), void *arg);

#endif
