// SPDX-License-Identifier: Apache-2.0
/*
 * metrics: Prometheus text exposition (format 0.0.4) of stratad's state.
 *
 * Names follow Prometheus' conventions: a strata_ prefix, base units
 * (seconds, bytes), _total on counters.  Label values are bounded sets
 * (operation names, ok/error, tier names): no key, bucket or peer ever
 * becomes a label, so a scrape's size does not grow with traffic.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "proto.h"
#include "banned.h"

/* Upper bounds of the latency buckets, in nanoseconds and as printed. */
static const uint64_t bucket_ns[METRICS_BUCKETS] = {
	50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
	25000000, 50000000, 100000000, 250000000, 500000000, 1000000000,
	2500000000ull, 10000000000ull,
};
static const char *const bucket_le[METRICS_BUCKETS] = {
	"5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
	"0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "10",
};

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
}

unsigned metrics_bucket(uint64_t ns)
{
	unsigned b = 0;

	while (b < METRICS_BUCKETS && ns > bucket_ns[b])
		b++;
	return b;
}

void metrics_request(struct metrics *m, uint8_t op, bool ok, uint64_t ns,
		     uint64_t bytes_in, uint64_t bytes_out)
{
	struct metrics_op *o;
	unsigned b;

	if (!proto_op_name(op))
		op = 0;			/* "unknown" */
	o = &m->op[op];

	if (ok)
		o->ok++;
	else
		o->err++;
	o->bytes_in += bytes_in;
	o->bytes_out += bytes_out;
	b = metrics_bucket(ns);
	o->hist[b]++;
	o->sum_ns += ns;
}

/* ---- an append-only text buffer ---- */

struct out {
	char *p;
	size_t len, cap;
	int err;
};

__attribute__((format(printf, 2, 3)))
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->err = -EINVAL;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		char *q = realloc(o->p, o->cap * 2 + (size_t)n);

		if (!q) {
			o->err = -ENOMEM;
			return;
		}
		o->p = q;
		o->cap = o->cap * 2 + (size_t)n;
	}
}

static void head(struct out *o, const char *name, const char *type,
		 const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void lower(char *dst, size_t cap, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < cap; i++)
		dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] + 32
							     : src[i]);
	dst[i] = 0;
}

/* ---- the store's counters: one row per line ---- */

/* A row's field: ST for uint64_t, ST4 for unsigned. */
#define ST(f) offsetof(struct store_stats, f), 8
#define ST4(f) offsetof(struct store_stats, f), W4

#define W4 4

static const struct row {
	const char *name, *type, *help;
	size_t off;
	int width;
} store_rows[] = {
	{ "strata_store_puts_total", "counter", "Objects written (committed puts).", ST(puts) },
	{ "strata_uring_inflight", "gauge", "io_uring operations in flight.", ST(uring_inflight) },
	{ "strata_index_writes_refused", "gauge", "1 while the index refuses writes: its file system is under the reserve (until there is room), or a write failed (until restart).", ST(index_refusing) },
	{ "strata_index_memtable_bytes", "gauge", "Memory in the index's write buffers (RocksDB memtables, all column families; [store] index_write_buffer_size caps them).", ST(index_memtable_bytes) },
	{ "strata_index_block_cache_bytes", "gauge", "Memory in the index's block cache ([store] index_cache_size).", ST(index_cache_bytes) },
	{ "strata_store_gets_total", "counter", "Object reads started.", ST(gets) },
	{ "strata_store_deletes_total", "counter", "Objects deleted.", ST(deletes) },
	{ "strata_store_bytes_in_total", "counter", "Object bytes written (before compression).", ST(bytes_in) },
	{ "strata_store_bytes_out_total", "counter", "Object bytes read.", ST(bytes_out) },
	{ "strata_store_chunks_written_total", "counter", "Chunk records appended to segments.", ST(chunks_written) },
	{ "strata_store_dedup_hits_total", "counter", "Chunks not written because the bucket already had them.", ST(dedup_hits) },
	{ "strata_store_corrupt_total", "counter", "Corrupt chunk records detected (crc or GCM tag mismatch).", ST(corrupt) },
	{ "strata_store_commit_rounds_total", "counter", "Group-commit rounds (one synced index write each).", ST(commit_rounds) },
	{ "strata_store_commits_total", "counter", "Mutations committed by group-commit rounds.", ST(commits) },
	{ "strata_store_segments", "gauge", "Segment files.", ST(segments) },
	{ "strata_compaction_segments_total", "counter", "Segments compacted (live records copied out, file freed).", ST(compacted_segments) },
	{ "strata_compaction_bytes_total", "counter", "Bytes copied by compaction.", ST(compacted_bytes) },
	{ "strata_cache_hits_total", "counter", "Chunk cache hits.", ST(cache_hits) },
	{ "strata_lookup_hits_total", "counter", "Object lookups answered from memory (no index read since the last commit).", ST(objmeta_hits) },
	{ "strata_cache_misses_total", "counter", "Chunk cache misses.", ST(cache_misses) },
	{ "strata_cache_evictions_total", "counter", "Chunks evicted from the cache.", ST(cache_evictions) },
	{ "strata_cache_bytes", "gauge", "Bytes held by the chunk cache: decrypted chunks and their bookkeeping.", ST(cache_bytes) },
	{ "strata_cache_budget_bytes", "gauge", "The cache's byte budget ([store] cache_size).", ST(cache_budget) },
	{ "strata_transfer_bytes", "gauge", "Chunk buffers held by gets and puts in progress (read-ahead, chunks being encoded and written).", ST(transfer_bytes) },
	{ "strata_transfer_budget_bytes", "gauge", "Their node-wide budget ([store] transfer_memory).", ST(transfer_budget) },
	{ "strata_transfer_waits_total", "counter", "Times a get or put waited for that budget.", ST(transfer_waits) },
	{ "strata_transfer_given_back_bytes_total", "counter", "Chunk bytes that gets paused for slow readers had read ahead and gave back to the budget (read again when the reader comes back).", ST(transfer_given_back) },
	{ "strata_tier_demoted_chunks_total", "counter", "Chunks moved hot to cold by the mover.", ST(demoted_chunks) },
	{ "strata_tier_demoted_bytes_total", "counter", "Bytes moved hot to cold by the mover.", ST(demoted_bytes) },
	{ "strata_tier_promoted_chunks_total", "counter", "Chunks moved cold to hot (read often, or prestaged).", ST(promoted_chunks) },
	{ "strata_tier_promoted_bytes_total", "counter", "Bytes moved cold to hot.", ST(promoted_bytes) },
	{ "strata_tier_spilled_bytes_total", "counter", "Bytes written to cold because hot was full.", ST(spilled_bytes) },
	{ "strata_store_enospc_total", "counter", "Writes refused because every tier was full.", ST(enospc) },
	{ "strata_hints_total", "counter", "Prestaging hints received.", ST(hints) },
	{ "strata_prestaged_objects_total", "counter", "Objects prestaged to the hot tier.", ST(prestaged_objects) },
	{ "strata_prestage_plans", "gauge", "Prestaging plans in progress.", ST(prestage_plans) },
	{ "strata_promote_queue", "gauge", "Chunks waiting for promotion.", ST(promote_queue) },
	{ "strata_lifecycle_cold_total", "counter", "Chunks moved to cold by lifecycle rules.", ST(lifecycle_cold) },
	{ "strata_lifecycle_expired_total", "counter", "Objects expired by lifecycle rules.", ST(lifecycle_expired) },
	{ "strata_mover_rate_bytes_per_second", "gauge", "[tiers] mover_rate (0: no cap).", ST(mover_rate) },
};

/* Per-tier arrays: one sample per tier, labelled tier="hot"|"cold". */
static const struct row tier_rows[] = {
	{ "strata_tier_segment_bytes", "gauge", "Bytes in segment files, per tier.", ST(seg_bytes) },
	{ "strata_tier_live_bytes", "gauge", "Bytes of live chunk records, per tier.", ST(live_bytes) },
	{ "strata_tier_used_bytes", "gauge", "Bytes the tier uses (segment files).", ST(tier_used) },
	{ "strata_tier_capacity_bytes", "gauge", "The tier's capacity ([tiers] *_capacity, or its file systems' less a segment each kept for compaction).", ST(tier_capacity) },
	{ "strata_tier_high_watermark_percent", "gauge", "Usage that starts demotion.", ST4(tier_high_pct) },
	{ "strata_tier_low_watermark_percent", "gauge", "Usage demotion goes down to.", ST4(tier_low_pct) },
	{ "strata_tier_directories", "gauge", "Directories (mount points) of the tier.", ST4(tier_dirs) },
};

static const char *const tier_names[STORE_TIERS] = { "hot", "cold" };

/* The answer cache's (anscache.h), from the view. */
#define AV(f) offsetof(struct metrics_view, f), 8

static const struct row ans_rows[] = {
	{ "strata_answer_cache_hits_total", "counter", "GETs answered on an I/O loop from the answer cache (also in strata_requests_total).", AV(ans_hits) },
	{ "strata_answer_cache_misses_total", "counter", "Whole-object GETs the I/O loops passed on to the engine's loop.", AV(ans_misses) },
	{ "strata_answer_cache_fills_total", "counter", "Answers the engine's loop put in the answer cache.", AV(ans_fills) },
	{ "strata_answer_cache_bytes", "gauge", "Bytes held by the answer cache (keys, fields, bodies).", AV(ans_bytes) },
	{ "strata_answer_cache_budget_bytes", "gauge", "[node] answer_cache_size.", AV(ans_budget) },
	{ "strata_answer_cache_entries", "gauge", "Answers held by the answer cache.", AV(ans_entries) },
};

static const struct row audit_rows[] = {
	{ "strata_audit_records_total", "counter", "Records appended to the audit log since the start.", AV(audit_records) },
	{ "strata_audit_bytes_total", "counter", "Bytes written to the audit log since the start.", AV(audit_bytes) },
	{ "strata_audit_errors_total", "counter", "Failed writes or syncs of the audit log (see the log).", AV(audit_errors) },
	{ "strata_audit_dropped_total", "counter", "Audit records lost to failed writes (verify reports the gap).", AV(audit_dropped) },
	{ "strata_audit_seq", "gauge", "Sequence number of the audit log's last record.", AV(audit_seq) },
};

static uint64_t field(const void *base, size_t off, int width)
{
	uint64_t v;
	unsigned u;

	if (width == W4) {
		memcpy(&u, (const char *)base + off, sizeof(u));
		return u;
	}
	memcpy(&v, (const char *)base + off, sizeof(v));
	return v;
}

/* One line per row, each field read from base. */
static void render_rows(struct out *o, const struct row *rows, size_t n,
			const void *base)
{
	for (size_t i = 0; i < n; i++) {
		head(o, rows[i].name, rows[i].type, rows[i].help);
		put(o, "%s %" PRIu64 "\n", rows[i].name,
		    field(base, rows[i].off, rows[i].width));
	}
}

static void render_store(struct out *o, const struct store_stats *st)
{
	render_rows(o, store_rows, sizeof(store_rows) / sizeof(store_rows[0]),
		    st);
	for (size_t i = 0; i < sizeof(tier_rows) / sizeof(tier_rows[0]); i++) {
		const struct row *r = &tier_rows[i];

		head(o, r->name, r->type, r->help);
		for (int t = 0; t < STORE_TIERS; t++)
			put(o, "%s{tier=\"%s\"} %" PRIu64 "\n", r->name,
			    tier_names[t],
			    field(st, r->off + (size_t)t * (r->width == W4 ?
				  sizeof(unsigned) : sizeof(uint64_t)), r->width));
	}
}

/* ---- requests ---- */

static void render_requests(struct out *o, const struct metrics *m)
{
	char name[32];

	head(o, "strata_requests_total", "counter",
	     "Requests answered, by operation and result.");
	for (unsigned op = 0; op < 256; op++) {
		const char *n = proto_op_name((uint8_t)op);

		if (!n)
			continue;
		lower(name, sizeof(name), n);
		put(o, "strata_requests_total{op=\"%s\",result=\"ok\"} %" PRIu64
		    "\nstrata_requests_total{op=\"%s\",result=\"error\"} %" PRIu64
		    "\n", name, m->op[op].ok, name, m->op[op].err);
	}
	put(o, "strata_requests_total{op=\"unknown\",result=\"error\"} %" PRIu64
	    "\n", m->op[0].err);
	head(o, "strata_request_body_bytes_total", "counter",
	     "Object bytes carried in request bodies (in) and response bodies (out).");
	for (unsigned op = 0; op < 256; op++) {
		const char *n = proto_op_name((uint8_t)op);

		if (!n || (!m->op[op].bytes_in && !m->op[op].bytes_out &&
			   op != PROTO_OP_PUT && op != PROTO_OP_GET))
			continue;
		lower(name, sizeof(name), n);
		put(o, "strata_request_body_bytes_total{op=\"%s\",direction=\"in\"} %"
		    PRIu64 "\nstrata_request_body_bytes_total{op=\"%s\",direction=\"out\"} %"
		    PRIu64 "\n", name, m->op[op].bytes_in, name,
		    m->op[op].bytes_out);
	}
	head(o, "strata_request_duration_seconds", "histogram",
	     "Time from a request's first frame to its last response frame.");
	for (unsigned op = 0; op < 256; op++) {
		const struct metrics_op *x = &m->op[op];
		const char *n = proto_op_name((uint8_t)op);
		uint64_t cum = 0;

		/* Only operations seen: 19 lines per operation add up. */
		if (!n || !(x->ok + x->err))
			continue;
		lower(name, sizeof(name), n);
		for (unsigned b = 0; b < METRICS_BUCKETS; b++) {
			cum += x->hist[b];
			put(o, "strata_request_duration_seconds_bucket{op=\"%s\",le=\"%s\"} %"
			    PRIu64 "\n", name, bucket_le[b], cum);
		}
		cum += x->hist[METRICS_BUCKETS];
		put(o, "strata_request_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %"
		    PRIu64 "\nstrata_request_duration_seconds_sum{op=\"%s\"} %"
		    PRIu64 ".%09" PRIu64 "\nstrata_request_duration_seconds_count{op=\"%s\"} %"
		    PRIu64 "\n", name, cum, name, x->sum_ns / 1000000000u,
		    x->sum_ns % 1000000000u, name, cum);
	}
}

int metrics_render(const struct metrics *m, const struct metrics_view *v,
		   char **out, size_t *len)
{
	struct out o = { .cap = 64 << 10 };

	*out = NULL;
	*len = 0;
	o.p = malloc(o.cap);
	if (!o.p)
		return -ENOMEM;
	head(&o, "strata_build_info", "gauge", "The running stratad's version.");
	put(&o, "strata_build_info{version=\"%s\"} 1\n", v->version);
	head(&o, "strata_start_time_seconds", "gauge",
	     "When the process started, Unix time.");
	put(&o, "strata_start_time_seconds %" PRIu64 "\n", v->start_time_s);
	head(&o, "strata_ready", "gauge", "1 when the store is open and serving (/readyz).");
	put(&o, "strata_ready %d\n", v->ready ? 1 : 0);
	head(&o, "strata_connections", "gauge",
	     "Client connections held now (TCP, handshakes under way included).");
	put(&o, "strata_connections %u\n", v->conns);
	head(&o, "strata_connections_max", "gauge", "[node] max_connections (fewer when open files are limited).");
	put(&o, "strata_connections_max %u\n", v->conns_max);
	head(&o, "strata_connections_refused_total", "counter",
	     "Connections closed at once because strata_connections_max were held.");
	put(&o, "strata_connections_refused_total %" PRIu64 "\n",
	    v->conns_refused);
	head(&o, "strata_output_pending_bytes", "gauge",
	     "Response bytes queued on all connections, not yet sent.");
	put(&o, "strata_output_pending_bytes %" PRIu64 "\n", v->out_pending);
	head(&o, "strata_output_cap_bytes", "gauge",
	     "[node] max_output_buffer: above it every response pauses (0: no cap).");
	put(&o, "strata_output_cap_bytes %" PRIu64 "\n", v->out_cap);
	head(&o, "strata_connections_opened_total", "counter",
	     "TLS connections established (handshake done).");
	put(&o, "strata_connections_opened_total %" PRIu64 "\n", m->conns_opened);
	head(&o, "strata_connections_closed_total", "counter",
	     "TLS connections closed.");
	put(&o, "strata_connections_closed_total %" PRIu64 "\n", m->conns_closed);
	head(&o, "strata_protocol_bytes_total", "counter",
	     "Protocol bytes (decrypted) received and sent.");
	put(&o, "strata_protocol_bytes_total{direction=\"in\"} %" PRIu64 "\n"
	    "strata_protocol_bytes_total{direction=\"out\"} %" PRIu64 "\n",
	    m->bytes_received, m->bytes_sent);
	render_requests(&o, m);
	if (v->have_audit)
		render_rows(&o, audit_rows,
			    sizeof(audit_rows) / sizeof(audit_rows[0]), v);
	if (v->have_ans)
		render_rows(&o, ans_rows, sizeof(ans_rows) / sizeof(ans_rows[0]),
			    v);
	if (v->have_store)
		render_store(&o, &v->st);
	head(&o, "strata_admin_requests_total", "counter",
	     "HTTP requests to the admin port (this one included).");
	put(&o, "strata_admin_requests_total %" PRIu64 "\n", m->admin_requests);
	head(&o, "strata_admin_refused_total", "counter",
	     "Admin connections refused over [admin] max_connections.");
	put(&o, "strata_admin_refused_total %" PRIu64 "\n", m->admin_refused);
	if (o.err) {
		free(o.p);
		return o.err;
	}
	*out = o.p;
	*len = o.len;
	return 0;
}
