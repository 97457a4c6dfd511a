// SPDX-License-Identifier: Apache-2.0
/*
 * engine_bench: the store engine alone (no network, no TLS), with the
 * production options (4 MiB chunks, zstd level 1, 256 MiB segments,
 * default windows and GC period), driven through its asynchronous API on
 * one loop as the daemon drives it.
 *
 *   1. put large objects of random bytes, a few in flight at once, each
 *      streamed in 1 MiB writes that wait for the drain callback;
 *   2. the same with compressible, log-like JSON lines;
 *   3. get every large object, 1 and then 2 at a time, after an untimed
 *      pass that checks every byte and warms the page cache; whole passes
 *      are repeated for at least --get-seconds;
 *   4. 4 KiB puts of distinct bytes, C in flight (each completion starts
 *      the next), until N ops or the time limit;
 *   5. 4 KiB gets of random keys from step 4, C in flight, likewise.
 *
 * Every large object and every 4 KiB put has distinct content, so no chunk
 * is deduplicated (checked against the store's dedup counter).  Process
 * CPU time (getrusage: every thread, the libuv pool and RocksDB's included)
 * is reported beside wall time: cpu_s / wall_s is the number of cores used.
 * MB is 10^6 bytes throughout.
 *
 * A phase that does not finish within the watchdog aborts the process, so
 * a hang leaves a core file and a backtrace instead of a stuck run.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storeutil.h"
#include "testutil.h"
#include "strata/error.h"
#include "banned.h"

#define MIB (1u << 20)
#define PIECE MIB			/* bytes per store_put_write */
#define STAMP_LEN 32			/* per-piece stamp: no two pieces alike */
#define MAX_CONC 256
#define SMALL_LEN 4096u
#define BUCKET "bench"

struct opts {
	const char *dir;
	const char *json_file;
	size_t obj_size;
	unsigned count;
	unsigned big_conc;
	unsigned small_ops;
	unsigned small_gets;
	unsigned conc;
	double seconds;
	double get_seconds;
	unsigned watchdog_s;
	bool json;
	bool keep;
};

struct result {
	const char *name;		/* JSON key prefix */
	char label[64];
	bool ran;
	uint64_t ops, bytes;
	double wall_s, cpu_s;
	bool has_lat;
	double p50_us, p99_us;
};

enum {
	R_PUT_RAND, R_PUT_TEXT,
	R_GET_RAND_1, R_GET_RAND_2, R_GET_TEXT_1, R_GET_TEXT_2,
	R_PUT_4K, R_GET_4K,
	NRESULTS
};

struct bench {
	struct opts o;
	struct tenv e;
	uint8_t *src[2];		/* 0: random, 1: text-like */
	struct result r[NRESULTS];
	double ratio[2];		/* stored / raw bytes per data kind */
	unsigned small_keys;		/* 4 KiB objects that were put */
};

/* ---- timing ---- */

struct mark {
	uint64_t ns;
	double cpu_s;
};

static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static struct mark mark_now(void)
{
	return (struct mark){ .ns = tu_now_ns(), .cpu_s = cpu_now() };
}

static void mark_end(struct result *r, struct mark m)
{
	r->wall_s = (double)(tu_now_ns() - m.ns) / 1e9;
	r->cpu_s = cpu_now() - m.cpu_s;
	r->ran = true;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void set_latency(struct result *r, uint32_t *lat_us, size_t n)
{
	if (!n)
		return;
	qsort(lat_us, n, sizeof(*lat_us), cmp_u32);
	r->has_lat = true;
	r->p50_us = lat_us[n / 2];
	r->p99_us = lat_us[n * 99 / 100];
}

/* ---- the loop, with a watchdog ---- */

static void watchdog(int sig)
{
	static const char msg[] = "engine_bench: watchdog: a phase did not "
				  "finish in time; aborting\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	abort();
}

static void run_until(struct bench *b, const int *flag)
{
	alarm(b->o.watchdog_s);
	while (!*flag)
		uv_run(&b->e.loop, UV_RUN_ONCE);
	alarm(0);
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "engine_bench: %s: %s (%d)\n", what,
		strata_strerror(rc), rc);
	exit(1);
}

/* ---- data ---- */

static uint64_t xs_next(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545F4914F6CDD1Dull;
}

/* Log-like JSON lines from a small vocabulary with varying numbers, the
 * kind of data that zstd level 1 shrinks several times. */
static void fill_text(uint8_t *buf, size_t len, uint64_t seed)
{
	static const char *const hosts[] = { "web-01", "web-02", "web-03",
		"api-07", "api-11", "batch-2", "edge-fra", "edge-iad" };
	static const char *const levels[] = { "info", "info", "info", "debug",
		"warn", "info", "error", "info" };
	static const char *const paths[] = { "/api/v1/items/", "/api/v1/users/",
		"/static/img/", "/api/v2/orders/", "/health?probe=",
		"/login?next=/cart/", "/api/v1/search?q=", "/metrics/" };
	static const char *const msgs[] = { "request served", "cache hit",
		"cache miss, fetched from origin", "slow upstream",
		"token refreshed", "rate limited", "redirected", "not modified" };
	static const int status[] = { 200, 200, 200, 304, 200, 404, 500, 201 };
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1, ts = 1700000000000ull;
	size_t pos = 0;

	while (pos < len) {
		char line[320];
		uint64_t r = xs_next(&x), r2 = xs_next(&x);
		int n;

		ts += r2 % 97;
		n = snprintf(line, sizeof(line),
			     "{\"ts\":%" PRIu64 ",\"host\":\"%s\",\"level\":\"%s\","
			     "\"user\":%u,\"path\":\"%s%u\",\"status\":%d,"
			     "\"ms\":%u.%u,\"bytes\":%u,\"trace\":\"%016" PRIx64 "\","
			     "\"msg\":\"%s\"}\n",
			     ts, hosts[r & 7], levels[(r >> 3) & 7],
			     (unsigned)((r >> 8) % 100000), paths[(r >> 24) & 7],
			     (unsigned)((r >> 27) % 100000), status[(r >> 37) & 7],
			     (unsigned)((r2 >> 16) % 300),
			     (unsigned)((r2 >> 32) % 10),
			     (unsigned)((r2 >> 40) % 65536),
			     xs_next(&x), msgs[(r >> 40) & 7]);
		if (n <= 0)
			break;
		if ((size_t)n > len - pos)
			n = (int)(len - pos);
		memcpy(buf + pos, line, (size_t)n);
		pos += (size_t)n;
	}
}

/* The first STAMP_LEN bytes of each PIECE of a large object are a stamp
 * naming the object and the offset: distinct chunks everywhere from one
 * shared source buffer. */
static void stamp(char out[STAMP_LEN], unsigned kind, unsigned idx,
		  uint64_t off)
{
	char tmp[STAMP_LEN + 32];
	size_t n;

	n = (size_t)snprintf(tmp, sizeof(tmp), "{\"obj\":\"%u-%u@%" PRIx64 "\"}",
			     kind, idx, off);
	memset(out, ' ', STAMP_LEN);
	memcpy(out, tmp, n < STAMP_LEN ? n : STAMP_LEN);
	out[STAMP_LEN - 1] = '\n';
}

static size_t stamp_len(size_t piece)
{
	return piece < STAMP_LEN ? 0 : STAMP_LEN;
}

static void big_key(char *key, size_t n, unsigned kind, unsigned idx)
{
	snprintf(key, n, "big/%s/%06u", kind ? "text" : "rand", idx);
}

/* ---- large puts ---- */

struct bigjob;

struct bigput {
	struct bigjob *j;
	struct store_put *p;
	unsigned idx;
	uint64_t off;
};

struct bigjob {
	struct bench *b;
	unsigned kind;
	unsigned next, active;
	int done;
	struct bigput slot[MAX_CONC];
};

static void bigput_commit_cb(void *arg, int status,
			     const struct store_object_info *info);

/* Write while the put is writable, else wait for drain; commit at the end. */
static void bigput_pump(void *arg)
{
	struct bigput *bp = arg;
	struct bigjob *j = bp->j;
	size_t size = j->b->o.obj_size;
	const uint8_t *src = j->b->src[j->kind];

	while (bp->off < size) {
		size_t n = size - bp->off < PIECE ? size - bp->off : PIECE;
		size_t head = stamp_len(n);
		char st[STAMP_LEN];
		int rc = 0;

		if (!store_put_writable(bp->p)) {
			store_put_on_drain(bp->p, bigput_pump, bp);
			return;
		}
		stamp(st, j->kind, bp->idx, bp->off);
		if (head)
			rc = store_put_write(bp->p, st, head);
		if (!rc)
			rc = store_put_write(bp->p, src + bp->off + head,
					     n - head);
		if (rc)
			die("store_put_write", rc);
		bp->off += n;
	}
	store_put_commit(bp->p, bigput_commit_cb, bp);
	bp->p = NULL;
}

static void bigput_start(struct bigput *bp)
{
	struct bigjob *j = bp->j;
	char key[64];
	int rc;

	bp->idx = j->next++;
	bp->off = 0;
	big_key(key, sizeof(key), j->kind, bp->idx);
	rc = store_put_begin(j->b->e.s, BUCKET, key, strlen(key), NULL, &bp->p);
	if (rc)
		die("store_put_begin", rc);
	j->active++;
	bigput_pump(bp);
}

static void bigput_commit_cb(void *arg, int status,
			     const struct store_object_info *info)
{
	struct bigput *bp = arg;
	struct bigjob *j = bp->j;

	if (status)
		die("large put commit", status);
	if (info->size != j->b->o.obj_size) {
		fprintf(stderr, "engine_bench: committed size %" PRIu64
			" != %zu\n", info->size, j->b->o.obj_size);
		exit(1);
	}
	j->active--;
	if (j->next < j->b->o.count)
		bigput_start(bp);
	else if (!j->active)
		j->done = 1;
}

static void bench_big_put(struct bench *b, unsigned kind, struct result *r)
{
	struct bigjob *j = calloc(1, sizeof(*j));
	struct mark m;

	if (!j)
		die("calloc", -ENOMEM);
	j->b = b;
	j->kind = kind;
	m = mark_now();
	for (unsigned i = 0; i < b->o.big_conc && j->next < b->o.count; i++) {
		j->slot[i].j = j;
		bigput_start(&j->slot[i]);
	}
	run_until(b, &j->done);
	mark_end(r, m);
	r->ops = b->o.count;
	r->bytes = (uint64_t)b->o.count * b->o.obj_size;
	free(j);
}

/* Stored bytes (records on disk) over raw bytes, for one kind's objects. */
static double stored_ratio(struct bench *b, unsigned kind)
{
	uint64_t stored = 0, raw = 0;

	for (unsigned i = 0; i < b->o.count; i++) {
		struct store_object_info info;
		struct store_chunk_info *ch;
		char key[64];
		int rc;

		big_key(key, sizeof(key), kind, i);
		rc = store_stat(b->e.s, BUCKET, key, strlen(key), &info, &ch,
				NULL, NULL);
		if (rc)
			die("store_stat", rc);
		for (uint32_t c = 0; c < info.nchunks; c++)
			stored += ch[c].stored_len;
		raw += info.size;
		free(ch);
	}
	return raw ? (double)stored / (double)raw : 0;
}

/* ---- large gets ---- */

struct getjob;

struct bigget {
	struct getjob *j;
	unsigned idx;
	uint64_t pos;
};

struct getjob {
	struct bench *b;
	unsigned kind;
	bool verify;
	unsigned next, active;
	int done;
	uint64_t bytes;
	struct bigget slot[MAX_CONC];
};

static bool verify(struct bench *b, unsigned kind, unsigned idx, uint64_t pos,
		   const uint8_t *buf, size_t len)
{
	const uint8_t *src = b->src[kind];

	while (len) {
		uint64_t ps = pos - pos % PIECE, in = pos - ps;
		size_t plen = b->o.obj_size - ps < PIECE ? b->o.obj_size - ps
							 : PIECE;
		size_t head = stamp_len(plen), n;
		char st[STAMP_LEN];

		if (ps >= b->o.obj_size)
			return false;		/* more bytes than the object */
		if (in < head) {
			n = head - in < len ? head - in : len;
			stamp(st, kind, idx, ps);
			if (memcmp(buf, st + in, n))
				return false;
		} else {
			n = plen - in < len ? plen - in : len;
			if (memcmp(buf, src + pos, n))
				return false;
		}
		buf += n;
		pos += n;
		len -= n;
	}
	return true;
}

static void bigget_start(struct bigget *bg);

static int bigget_data(void *arg, const void *buf, size_t len)
{
	struct bigget *bg = arg;
	struct getjob *j = bg->j;

	if (j->verify && !verify(j->b, j->kind, bg->idx, bg->pos, buf, len)) {
		fprintf(stderr, "engine_bench: object %u/%u: wrong bytes in "
			"[%" PRIu64 ", +%zu)\n", j->kind, bg->idx, bg->pos, len);
		exit(1);
	}
	bg->pos += len;
	j->bytes += len;
	return 0;
}

static void bigget_done(void *arg, int status)
{
	struct bigget *bg = arg;
	struct getjob *j = bg->j;

	if (status)
		die("large get", status);
	if (bg->pos != j->b->o.obj_size) {
		fprintf(stderr, "engine_bench: get delivered %" PRIu64
			" bytes of %zu\n", bg->pos, j->b->o.obj_size);
		exit(1);
	}
	j->active--;
	if (j->next < j->b->o.count)
		bigget_start(bg);
	else if (!j->active)
		j->done = 1;
}

static void bigget_start(struct bigget *bg)
{
	struct getjob *j = bg->j;
	char key[64];
	int rc;

	bg->idx = j->next++;
	bg->pos = 0;
	big_key(key, sizeof(key), j->kind, bg->idx);
	rc = store_get(j->b->e.s, BUCKET, key, strlen(key), 0, UINT64_MAX,
		       NULL, bigget_data, bigget_done, bg, NULL);
	if (rc)
		die("store_get", rc);
	j->active++;
}

/* One pass over a kind's objects, conc at a time; returns bytes read. */
static uint64_t big_get_pass(struct bench *b, unsigned kind, unsigned conc,
			     bool verify_bytes)
{
	struct getjob *j = calloc(1, sizeof(*j));
	uint64_t bytes;

	if (!j)
		die("calloc", -ENOMEM);
	j->b = b;
	j->kind = kind;
	j->verify = verify_bytes;
	for (unsigned i = 0; i < conc && j->next < b->o.count; i++) {
		j->slot[i].j = j;
		bigget_start(&j->slot[i]);
	}
	run_until(b, &j->done);
	bytes = j->bytes;
	free(j);
	return bytes;
}

/* Whole passes until --get-seconds have gone by: one pass of a few
 * objects is too short to measure on a noisy machine. */
static void bench_big_get(struct bench *b, unsigned kind, unsigned conc,
			  struct result *r)
{
	struct mark m = mark_now();

	do {
		r->bytes += big_get_pass(b, kind, conc, false);
		r->ops += b->o.count;
	} while (tu_now_ns() - m.ns < (uint64_t)(b->o.get_seconds * 1e9));
	mark_end(r, m);
}

/* ---- 4 KiB puts and gets ---- */

struct smalljob;

struct smallop {
	struct smalljob *j;
	uint64_t t0;
	size_t got;
};

struct smalljob {
	struct bench *b;
	bool get;
	unsigned target;
	uint64_t deadline_ns;
	unsigned started, completed, active;
	uint32_t *lat_us;
	uint64_t rng;
	int done;
	uint8_t buf[SMALL_LEN];
	struct smallop slot[MAX_CONC];
};

static void small_key(char *key, size_t n, unsigned idx)
{
	snprintf(key, n, "small/%08u", idx);
}

static bool small_start(struct smallop *op);

static void small_end(struct smallop *op)
{
	struct smalljob *j = op->j;
	uint64_t us = (tu_now_ns() - op->t0) / 1000;

	j->lat_us[j->completed++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	j->active--;
	if (!small_start(op) && !j->active)
		j->done = 1;
}

static void small_put_cb(void *arg, int status,
			 const struct store_object_info *info)
{
	(void)info;
	if (status)
		die("4 KiB put commit", status);
	small_end(arg);
}

static int small_data(void *arg, const void *buf, size_t len)
{
	struct smallop *op = arg;

	(void)buf;
	op->got += len;
	return 0;
}

static void small_get_cb(void *arg, int status)
{
	struct smallop *op = arg;

	if (status)
		die("4 KiB get", status);
	if (op->got != SMALL_LEN) {
		fprintf(stderr, "engine_bench: 4 KiB get delivered %zu bytes\n",
			op->got);
		exit(1);
	}
	small_end(op);
}

static bool small_start(struct smallop *op)
{
	struct smalljob *j = op->j;
	struct store *s = j->b->e.s;
	char key[32];
	int rc;

	if (j->started >= j->target || tu_now_ns() >= j->deadline_ns)
		return false;
	op->t0 = tu_now_ns();
	op->got = 0;
	if (j->get) {
		small_key(key, sizeof(key),
			  (unsigned)(xs_next(&j->rng) % j->b->small_keys));
		rc = store_get(s, BUCKET, key, strlen(key), 0, UINT64_MAX, NULL,
			       small_data, small_get_cb, op, NULL);
		if (rc)
			die("store_get", rc);
	} else {
		struct store_put *p;
		unsigned idx = j->started;

		small_key(key, sizeof(key), idx);
		/* distinct bytes per op: no dedup */
		tu_fill(j->buf, SMALL_LEN, 0x5A11000000ull + idx);
		rc = store_put_begin(s, BUCKET, key, strlen(key), NULL, &p);
		if (rc)
			die("store_put_begin", rc);
		rc = store_put_write(p, j->buf, SMALL_LEN);
		if (rc)
			die("store_put_write", rc);
		store_put_commit(p, small_put_cb, op);
	}
	j->started++;
	j->active++;
	return true;
}

static void bench_small(struct bench *b, bool get, unsigned target,
			struct result *r)
{
	struct smalljob *j = calloc(1, sizeof(*j));
	struct mark m;

	if (!j)
		die("calloc", -ENOMEM);
	j->b = b;
	j->get = get;
	j->target = target;
	j->rng = 0x9E3779B97F4A7C15ull;
	j->lat_us = calloc(target ? target : 1, sizeof(*j->lat_us));
	if (!j->lat_us)
		die("calloc", -ENOMEM);
	m = mark_now();
	j->deadline_ns = m.ns + (uint64_t)(b->o.seconds * 1e9);
	for (unsigned i = 0; i < b->o.conc; i++) {
		j->slot[i].j = j;
		if (!small_start(&j->slot[i]))
			break;
	}
	if (!j->active)
		j->done = 1;
	run_until(b, &j->done);
	mark_end(r, m);
	r->ops = j->completed;
	r->bytes = (uint64_t)j->completed * SMALL_LEN;
	set_latency(r, j->lat_us, j->completed);
	if (!get)
		b->small_keys = j->completed;
	free(j->lat_us);
	free(j);
}

/* ---- report ---- */

static double mb_s(const struct result *r)
{
	return r->wall_s > 0 ? (double)r->bytes / 1e6 / r->wall_s : 0;
}

static double ops_s(const struct result *r)
{
	return r->wall_s > 0 ? (double)r->ops / r->wall_s : 0;
}

static double cores(const struct result *r)
{
	return r->wall_s > 0 ? r->cpu_s / r->wall_s : 0;
}

static void report_human(const struct bench *b, const struct store_stats *st,
			 unsigned pool)
{
	printf("engine_bench: %u x %zu MiB objects (%u in flight), 4 KiB ops at "
	       "%u in flight; chunk %u MiB, zstd %d, segment %" PRIu64 " MiB, "
	       "libuv pool %u; MB = 10^6 bytes\n",
	       b->o.count, b->o.obj_size / MIB, b->o.big_conc, b->o.conc,
	       b->e.o.chunk_size / MIB, b->e.o.zstd_level < 0 ? 1 :
	       b->e.o.zstd_level, b->e.o.segment_size / MIB, pool);
	printf("%-34s %8s %9s %7s %9s %9s %7s %6s %9s %8s %8s\n", "phase",
	       "ops", "MB", "wall_s", "MB/s", "ops/s", "cpu_s", "cores",
	       "MB/s/core", "p50_us", "p99_us");
	for (int i = 0; i < NRESULTS; i++) {
		const struct result *r = &b->r[i];
		double c = cores(r);

		if (!r->ran)
			continue;
		printf("%-34s %8" PRIu64 " %9.1f %7.3f %9.1f %9.1f %7.3f %6.2f "
		       "%9.1f", r->label, r->ops, (double)r->bytes / 1e6,
		       r->wall_s, mb_s(r), ops_s(r), r->cpu_s, c,
		       c > 0 ? mb_s(r) / c : 0);
		if (r->has_lat)
			printf(" %8.0f %8.0f\n", r->p50_us, r->p99_us);
		else
			printf(" %8s %8s\n", "-", "-");
	}
	printf("stored/raw bytes: random %.3f, text %.3f (compression %.2fx); "
	       "commit rounds %" PRIu64 ", commits %" PRIu64 " (%.1f per "
	       "round); chunks written %" PRIu64 ", dedup hits %" PRIu64
	       ", segments %" PRIu64 "\n", b->ratio[0], b->ratio[1],
	       b->ratio[1] > 0 ? 1 / b->ratio[1] : 0, st->commit_rounds,
	       st->commits, st->commit_rounds ?
	       (double)st->commits / (double)st->commit_rounds : 0,
	       st->chunks_written, st->dedup_hits, st->segments);
}

static void report_json(FILE *f, const struct bench *b,
			const struct store_stats *st, unsigned pool)
{
	fprintf(f, "{\"object_bytes\":%zu,\"objects\":%u,\"big_concurrency\":%u,"
	       "\"small_concurrency\":%u,\"chunk_bytes\":%u,\"zstd_level\":%d,"
	       "\"segment_bytes\":%" PRIu64 ",\"threadpool\":%u",
	       b->o.obj_size, b->o.count, b->o.big_conc, b->o.conc,
	       b->e.o.chunk_size, b->e.o.zstd_level < 0 ? 1 :
	       b->e.o.zstd_level, b->e.o.segment_size, pool);
	for (int i = 0; i < NRESULTS; i++) {
		const struct result *r = &b->r[i];
		const char *n = r->name;

		if (!r->ran)
			continue;
		fprintf(f, ",\"%s_ops\":%" PRIu64 ",\"%s_bytes\":%" PRIu64
		       ",\"%s_wall_s\":%.6f,\"%s_cpu_s\":%.6f,\"%s_cores\":%.4f"
		       ",\"%s_mb_s\":%.3f,\"%s_ops_s\":%.3f,"
		       "\"%s_mb_s_per_core\":%.3f", n, r->ops, n, r->bytes, n,
		       r->wall_s, n, r->cpu_s, n, cores(r), n, mb_s(r), n,
		       ops_s(r), n, cores(r) > 0 ? mb_s(r) / cores(r) : 0);
		if (r->has_lat)
			fprintf(f, ",\"%s_p50_us\":%.1f,\"%s_p99_us\":%.1f", n,
			       r->p50_us, n, r->p99_us);
	}
	fprintf(f, ",\"stored_ratio_rand\":%.4f,\"stored_ratio_text\":%.4f,"
	       "\"commit_rounds\":%" PRIu64 ",\"commits\":%" PRIu64
	       ",\"chunks_written\":%" PRIu64 ",\"dedup_hits\":%" PRIu64
	       ",\"segments\":%" PRIu64 "}\n", b->ratio[0], b->ratio[1],
	       st->commit_rounds, st->commits, st->chunks_written,
	       st->dedup_hits, st->segments);
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: engine_bench [--dir D] [--size-mib N] [--count N]\n"
		"         [--big-concurrency N] [--small-ops N] [--small-gets N]\n"
		"         [--concurrency N] [--seconds S] [--get-seconds S]\n"
		"         [--watchdog S] [--json]\n"
		"         [--json-file F] [--keep]\n"
		"  --dir D            make the store in a fresh directory under D\n"
		"                     (default: under $TMPDIR or /tmp)\n"
		"  --size-mib N       large object size (64)\n"
		"  --count N          large objects per data kind (8)\n"
		"  --big-concurrency  large puts in flight (2)\n"
		"  --small-ops N      4 KiB puts (20000)\n"
		"  --small-gets N     4 KiB gets (100000)\n"
		"  --concurrency N    4 KiB ops in flight (16)\n"
		"  --seconds S        time limit of each 4 KiB phase (5)\n"
		"  --get-seconds S    repeat each large-get phase for at least\n"
		"                     S seconds, in whole passes (1)\n"
		"  --watchdog S       abort a phase that runs longer (300)\n"
		"  --json             one JSON object instead of the table\n"
		"  --json-file F      the table, and the JSON object into F\n"
		"  --keep             keep the store directory\n");
}

static unsigned parse_uint(const char *s, const char *what, unsigned lo,
			   unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "engine_bench: %s: want %u..%u, got '%s'\n", what,
			lo, hi, s);
		exit(2);
	}
	return (unsigned)v;
}

static void parse_args(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "size-mib", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "big-concurrency", required_argument, NULL, 'B' },
		{ "small-ops", required_argument, NULL, 'o' },
		{ "small-gets", required_argument, NULL, 'g' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 't' },
		{ "get-seconds", required_argument, NULL, 'G' },
		{ "watchdog", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "json-file", required_argument, NULL, 'J' },
		{ "keep", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){
		.obj_size = 64u * MIB, .count = 8, .big_conc = 2,
		.small_ops = 20000, .small_gets = 100000, .conc = 16,
		.seconds = 5, .get_seconds = 1, .watchdog_s = 300,
	};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': o->dir = optarg; break;
		case 's':
			o->obj_size = (size_t)parse_uint(optarg, "--size-mib", 1,
							 4096) * MIB;
			break;
		case 'n': o->count = parse_uint(optarg, "--count", 1, 100000); break;
		case 'B':
			o->big_conc = parse_uint(optarg, "--big-concurrency", 1,
						 MAX_CONC);
			break;
		case 'o':
			o->small_ops = parse_uint(optarg, "--small-ops", 1,
						  100000000);
			break;
		case 'g':
			o->small_gets = parse_uint(optarg, "--small-gets", 1,
						   100000000);
			break;
		case 'c':
			o->conc = parse_uint(optarg, "--concurrency", 1, MAX_CONC);
			break;
		case 't':
			o->seconds = parse_uint(optarg, "--seconds", 1, 3600);
			break;
		case 'G':
			o->get_seconds = parse_uint(optarg, "--get-seconds", 0,
						    3600);
			break;
		case 'w':
			o->watchdog_s = parse_uint(optarg, "--watchdog", 1, 86400);
			break;
		case 'j': o->json = true; break;
		case 'J': o->json_file = optarg; break;
		case 'k': o->keep = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr);
		exit(2);
	}
}

static char *make_root(const char *dir)
{
	char *path;

	if (!dir)
		return tu_tmpdir("bench");
	if (asprintf(&path, "%s/strata-bench-XXXXXX", dir) < 0)
		die("asprintf", -ENOMEM);
	if (!mkdtemp(path)) {
		fprintf(stderr, "engine_bench: mkdtemp %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
	return path;
}

int main(int argc, char **argv)
{
	struct bench *b = calloc(1, sizeof(*b));
	struct store_stats st;
	const char *env = getenv("UV_THREADPOOL_SIZE");
	unsigned pool = env && *env ? (unsigned)strtoul(env, NULL, 10) : 4;
	unsigned mib;
	char *root;
	int rc, ret = 0;

	if (!b)
		return 1;
	parse_args(&b->o, argc, argv);
	signal(SIGALRM, watchdog);
	mib = (unsigned)(b->o.obj_size / MIB);
	for (unsigned k = 0; k < 2; k++) {
		const char *kn = k ? "text" : "random";
		struct result *r = &b->r[k ? R_PUT_TEXT : R_PUT_RAND];

		r->name = k ? "put_text" : "put_rand";
		snprintf(r->label, sizeof(r->label), "put %u MiB %s, %u in flight",
			 mib, kn, b->o.big_conc);
		for (unsigned c = 1; c <= 2; c++) {
			static const char *const names[2][2] = {
				{ "get_rand_c1", "get_rand_c2" },
				{ "get_text_c1", "get_text_c2" } };

			r = &b->r[k ? R_GET_TEXT_1 + c - 1 : R_GET_RAND_1 + c - 1];
			r->name = names[k][c - 1];
			snprintf(r->label, sizeof(r->label),
				 "get %u MiB %s, %u at a time", mib, kn, c);
		}
	}
	b->r[R_PUT_4K].name = "put_4k";
	snprintf(b->r[R_PUT_4K].label, sizeof(b->r[R_PUT_4K].label),
		 "put 4 KiB, %u in flight", b->o.conc);
	b->r[R_GET_4K].name = "get_4k";
	snprintf(b->r[R_GET_4K].label, sizeof(b->r[R_GET_4K].label),
		 "get 4 KiB, %u in flight", b->o.conc);

	b->src[0] = malloc(b->o.obj_size);
	b->src[1] = malloc(b->o.obj_size);
	if (!b->src[0] || !b->src[1])
		die("malloc", -ENOMEM);
	tu_fill(b->src[0], b->o.obj_size, 0xB16B00B5ull);
	fill_text(b->src[1], b->o.obj_size, 42);

	root = make_root(b->o.dir);
	tenv_init(&b->e, root);
	free(root);
	/* The production defaults, not tenv's small test options. */
	b->e.o.chunk_size = STORE_DEFAULT_CHUNK;
	b->e.o.segment_size = 256u << 20;
	/* Measure the read path itself (segment read, crc, decryption): the
	 * chunk cache would hand back pointers and measure nothing. */
	b->e.o.cache_bytes = -1;
	b->e.o.zstd_level = -1;		/* level 1 */
	b->e.o.gc_interval_ms = 0;	/* 10 s */
	b->e.o.fault = NULL;
	rc = tenv_open(&b->e);
	if (rc)
		die("store_open", rc);
	rc = tenv_mb(&b->e, BUCKET);
	if (rc)
		die("bucket create", rc);

	bench_big_put(b, 0, &b->r[R_PUT_RAND]);
	bench_big_put(b, 1, &b->r[R_PUT_TEXT]);
	b->ratio[0] = stored_ratio(b, 0);
	b->ratio[1] = stored_ratio(b, 1);
	for (unsigned kind = 0; kind < 2; kind++) {
		/* untimed: check every byte, warm the page cache */
		big_get_pass(b, kind, 2, true);
		bench_big_get(b, kind, 1,
			      &b->r[kind ? R_GET_TEXT_1 : R_GET_RAND_1]);
		bench_big_get(b, kind, 2,
			      &b->r[kind ? R_GET_TEXT_2 : R_GET_RAND_2]);
	}
	bench_small(b, false, b->o.small_ops, &b->r[R_PUT_4K]);
	if (b->small_keys)
		bench_small(b, true, b->o.small_gets, &b->r[R_GET_4K]);

	rc = store_stats(b->e.s, &st);
	if (rc)
		die("store_stats", rc);
	if (st.dedup_hits)
		fprintf(stderr, "engine_bench: warning: %" PRIu64 " dedup hits: "
			"some writes were not written\n", st.dedup_hits);
	if (b->o.json)
		report_json(stdout, b, &st, pool);
	else
		report_human(b, &st, pool);
	if (b->o.json_file) {
		FILE *f = fopen(b->o.json_file, "w");

		if (f)
			report_json(f, b, &st, pool);
		if (!f || fclose(f)) {
			fprintf(stderr, "engine_bench: %s: %s\n", b->o.json_file,
				strerror(errno));
			ret = 1;
		}
	}

	tenv_release(&b->e, !b->o.keep);
	free(b->src[0]);
	free(b->src[1]);
	free(b);
	return ret;
}
