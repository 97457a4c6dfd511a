// SPDX-License-Identifier: Apache-2.0
/*
 * metrics: the daemon's counters and their rendering in the Prometheus text
 * format (version 0.0.4) for the admin port's /metrics.
 *
 * The request counters (struct metrics) are bumped by server.c as responses
 * end; the rest (store, cache, compaction, connections) is read when a
 * scrape comes, from struct store_stats and friends (struct metrics_view).
 * Everything runs on the loop thread: plain integers, no atomics.
 *
 * Adding a line: a field of struct store_stats is one row of store_rows[]
 * in metrics.c (name, type, help, offsetof); a per-tier array is one row of
 * tier_rows[].
 */
#ifndef STRATA_METRICS_H
#define STRATA_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Latency histogram bucket bounds, seconds (then +Inf). */
#define METRICS_BUCKETS 16

struct metrics_op {
	uint64_t ok, err;			/* responses by result */
	uint64_t bytes_in, bytes_out;		/* body bytes */
	uint64_t hist[METRICS_BUCKETS + 1];	/* not cumulative; +Inf last */
	uint64_t sum_ns;
};

struct metrics {
	struct metrics_op op[256];		/* by wire opcode */
	uint64_t conns_opened, conns_closed;	/* authenticated or not */
	uint64_t bytes_received, bytes_sent;	/* protocol bytes, plaintext */
	uint64_t admin_requests, admin_refused;
};

/* What a scrape reads besides struct metrics; filled by the caller. */
struct metrics_view {
	const char *version;
	uint64_t start_time_s;		/* Unix time the process started */
	bool ready;			/* store open and serving */
	bool have_store;		/* st is valid */
	struct store_stats st;
	unsigned conns;			/* TLS connections held now */
	unsigned conns_max;
	uint64_t conns_refused;		/* refused at conns_max, ever */
	uint64_t out_pending;		/* output queued on all connections */
	uint64_t out_cap;		/* [node] max_output_buffer; 0: none */
	bool have_ans;			/* the answer cache's (anscache.h): */
	uint64_t ans_budget, ans_bytes, ans_entries;
	uint64_t ans_hits, ans_misses, ans_fills;
	bool have_audit;		/* the audit log's (audit.h): */
	uint64_t audit_records, audit_bytes, audit_errors, audit_dropped;
	uint64_t audit_seq;
};

void metrics_init(struct metrics *m);

/* One response ended: op, ok or not, how long since the request came,
 * body bytes in (upload) and out. */
void metrics_request(struct metrics *m, uint8_t op, bool ok, uint64_t ns,
		     uint64_t bytes_in, uint64_t bytes_out);

/* The histogram bucket of a duration (METRICS_BUCKETS: +Inf). */
unsigned metrics_bucket(uint64_t ns);

/*
 * The whole exposition text.  *out is malloc'd (free()), *len its length.
 * Returns 0 or -ENOMEM.
 */
int metrics_render(const struct metrics *m, const struct metrics_view *v,
		   char **out, size_t *len);

#endif
