// SPDX-License-Identifier: Apache-2.0
/*
 * strata-bench: a load generator for stratad, in the spirit of MinIO's warp
 * and AIStore's aisloader.  Everything goes through the public libstrata
 * API, as an application would.
 *
 *   main: parse, create the bucket --> start C workers
 *   worker: own client (or the shared one) --> prepare (get, mixed, batch:
 *           upload the objects that are missing) --[barrier]--> main takes
 *           t0 --[barrier]--> timed phase until --duration or --ops -->
 *           count open sockets --[join]--> main merges and reports
 *
 * Object bytes are a pure function of the key (a counter-mode stream of
 * splitmix64 words seeded by FNV-1a of the key), so any byte range can be
 * regenerated without storing what was uploaded.  The first GET of every
 * object in a run (and, for batch, the first delivery of every object) is
 * compared byte for byte with that stream; a mismatch is an error and the
 * exit status is 1.  A benchmark that silently reads garbage is useless.
 *
 * Concurrency: --clients per-thread (the default) gives every worker its own
 * strata_client with pool_size 1, so C workers hold exactly C connections;
 * --clients shared makes one client with pool_size C, whose connections are
 * opened lazily (fewer may exist when requests are short).  Measured on
 * 2 shared cores, median of 3: 4 KiB GETs at 64 workers 39.8k (per-thread)
 * vs 39.7k (shared) req/s; 64 MiB GETs at 2 workers 565 vs 590 MB/s, both
 * within the run-to-run noise.  Per-thread is the default because it
 * guarantees C connections and takes no pool lock.  "connections" in the
 * report counts the process's open sockets at the end of the timed phase.
 *
 * Units: MB is 10^6 bytes; --size takes K/M/G/T suffixes in powers of 1024.
 * Latencies are per request (a batch request for --workload batch), of the
 * requests that succeeded; throughput counts the bytes they moved over the
 * timed phase's wall time (from the start to the last request's end).
 *
 * Exit status: 0 success; 1 an operation failed, a verification
 * mismatched or (--samples tar) a shard's tar was damaged; 2 usage or
 * configuration error.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "strata/strata.h"
#include "tarcount.h"
#include "banned.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define MAX_CONCURRENCY 4096
#define MAX_PREFIX 900			/* keys stay under 1024 bytes */
#define BUF_GET_MAX (256ull << 20)	/* larger objects are streamed */
#define VERIFY_CHUNK (64u * 1024)
#define MAX_ERROR_LINES 10
/* --size at most: the node takes objects of up to 2^20 chunks (4 TiB at
 * its default 4 MiB chunk_size), and one object of more than 1 TiB is a
 * typo, not a benchmark: it would stream for an hour per operation. */
#define MAX_SIZE (1ull << 40)

enum workload { W_PUT, W_GET, W_MIXED, W_SMALL, W_BATCH, W_DATASET };
enum op_type { OP_PUT, OP_GET, OP_STAT, OP_DELETE, OP_BATCH, OP_SHARD,
	       OP_N };
enum client_mode { CM_PER_THREAD, CM_SHARED };
enum io_mode { IO_THREADS, IO_EVENT };

static const char *const workload_names[] = {
	"put", "get", "mixed", "small", "batch", "dataset-epoch",
};
static const char *const op_names[OP_N] = {
	"put", "get", "stat", "delete", "batch", "shard",
};

struct opts {
	const char *endpoint, *access_key, *secret_key, *ca;
	enum workload workload;
	enum client_mode clients;
	enum io_mode io;
	unsigned threads;		/* --io event: 0 = one per core */
	const char *bucket;
	const char *prefix;
	uint64_t size;
	bool has_size;
	uint32_t count;
	unsigned concurrency;
	double duration;
	bool has_duration;
	uint64_t ops;			/* 0: no limit */
	unsigned batch_keys;
	bool json;
	/* dataset-epoch */
	unsigned epochs;
	uint64_t seed;
	unsigned rank, world_size;
	unsigned prefetch;		/* 0: libstrata's default */
	uint64_t prefetch_bytes, piece_size;
	bool tar_samples, no_hint, no_shuffle;
};

static const char usage_text[] =
"usage: strata-bench [options] --workload put|get|mixed|small|batch|"
"dataset-epoch\n"
"                    --bucket B\n"
"\n"
"Workloads (objects are PREFIX + obj-NNNNNNNN, bytes derived from the key):\n"
"  put    put objects 0..count-1 round robin (overwrites)\n"
"  get    upload missing objects, then get them round robin; the first\n"
"         get of each object is compared byte for byte\n"
"  mixed  as get, then 60% get, 30% put (same bytes), 10% stat\n"
"  small  per op: put a fresh key, get it back (compared), delete it\n"
"         (--size defaults to 4K)\n"
"  batch  upload missing objects, then batch-get windows of --batch-keys\n"
"         consecutive objects; latency per batch request, rate per object\n"
"  dataset-epoch  read the dataset under --prefix with libstrata's\n"
"         dataset reader, --epochs times; C workers are C loader workers\n"
"         (each reads its share of each epoch); when the prefix holds\n"
"         nothing, --count objects of --size are uploaded first; latency\n"
"         is per shard (piece) fetch, rates per shard and per sample\n"
"\n"
"Options:\n"
"  --endpoint HOST:PORT   server (STRATA_ENDPOINT, config: endpoint)\n"
"  --access-key ID        (STRATA_ACCESS_KEY)\n"
"  --secret-key SECRET    (STRATA_SECRET_KEY)\n"
"  --ca FILE              CA bundle (STRATA_CA)\n"
"  --bucket B             bucket (created when missing)\n"
"  --size BYTES           object size, K/M/G/T suffixes, at most 1T\n"
"                         (default 1M; 4K for small and batch)\n"
"  --count N              objects (default 100)\n"
"  --concurrency C        worker threads, one request each (default 8)\n"
"  --duration SECONDS     timed phase length (default 10 unless --ops)\n"
"  --ops N                stop after N requests (all workers together)\n"
"  --batch-keys K         keys per batch get (default 100)\n"
"  --prefix P             key prefix (default strata-bench/)\n"
"  --clients per-thread|shared  one client per worker with one\n"
"                         connection (default), or one client whose pool\n"
"                         holds C connections\n"
"  --io threads|event     get: one blocking worker thread per connection\n"
"                         (default), or C connections driven by --threads\n"
"                         event-loop threads with libstrata's\n"
"                         strata_conn_* calls (one get in flight each)\n"
"  --threads T            --io event: threads (default: one per core)\n"
"  --epochs N             dataset-epoch: epochs to read (default 1)\n"
"  --seed N               dataset-epoch: shuffle seed (default 0)\n"
"  --rank R --world-size W  dataset-epoch: read rank R's share of W\n"
"  --prefetch N           dataset-epoch: pieces ahead per worker\n"
"  --prefetch-bytes BYTES dataset-epoch: bytes ahead per worker\n"
"  --piece-size BYTES     dataset-epoch: read shards in ranges of BYTES\n"
"  --samples shards|tar   dataset-epoch: count whole shards (default) or\n"
"                         WebDataset samples (tar members by basename);\n"
"                         a damaged or truncated tar is an error\n"
"  --no-hint              dataset-epoch: send no prestaging hints\n"
"  --no-shuffle           dataset-epoch: read in key order\n"
"  --json                 print one JSON object on standard output\n"
"  -h, --help             this text\n"
"\n"
"MB is 10^6 bytes.  Exit status: 0 success, 1 an operation failed, read\n"
"bytes differed from what was uploaded or a tar shard was damaged, 2 usage\n"
"or configuration error.\n";

static void die_usage(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("strata-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'strata-bench --help'.\n", stderr);
	exit(EXIT_USAGE);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p) {
		fputs("strata-bench: out of memory\n", stderr);
		exit(EXIT_FAILED);
	}
	return p;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- Object bytes ------------------------------------------------------- */

#define GOLDEN 0x9e3779b97f4a7c15ull

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t key_seed(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 0x100000001b3ull;
	return mix64(h);
}

/* Bytes [off, off + len) of the object seeded by seed: word i (bytes 8i to
 * 8i + 7, little endian) is mix64(seed + i * GOLDEN).  Incompressible, and
 * seekable so that streams can be checked piece by piece. */
static void fill_bytes(uint64_t seed, uint64_t off, uint8_t *p, size_t len)
{
	uint64_t i = off / 8, w;
	size_t skip = off % 8, n;

	if (skip && len) {
		w = htole64(mix64(seed + i * GOLDEN));
		n = 8 - skip < len ? 8 - skip : len;
		memcpy(p, (uint8_t *)&w + skip, n);
		p += n;
		len -= n;
		i++;
	}
	for (; len >= 8; p += 8, len -= 8, i++) {
		w = htole64(mix64(seed + i * GOLDEN));
		memcpy(p, &w, 8);
	}
	if (len) {
		w = htole64(mix64(seed + i * GOLDEN));
		memcpy(p, &w, len);
	}
}

/* The offset of the first byte of p[0..len) that differs from the object's
 * bytes at off, or -1 if they all match.  scratch holds VERIFY_CHUNK. */
static int64_t check_bytes(uint64_t seed, uint64_t off, const uint8_t *p,
			   size_t len, uint8_t *scratch)
{
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < VERIFY_CHUNK ? len - done :
			   VERIFY_CHUNK;

		fill_bytes(seed, off + done, scratch, n);
		if (memcmp(scratch, p + done, n)) {
			for (size_t i = 0; i < n; i++)
				if (scratch[i] != p[done + i])
					return (int64_t)(off + done + i);
		}
		done += n;
	}
	return -1;
}

struct gen_src {
	uint64_t seed;
	uint64_t off;
	uint64_t size;
};

static ssize_t gen_read(void *arg, void *buf, size_t cap)
{
	struct gen_src *g = arg;
	uint64_t left = g->size - g->off;
	size_t n = left < cap ? (size_t)left : cap;

	fill_bytes(g->seed, g->off, buf, n);
	g->off += n;
	return (ssize_t)n;
}

/* ---- Latencies ---------------------------------------------------------- */

struct lat_vec {
	uint64_t *v;			/* nanoseconds */
	size_t n, cap;
};

static void lat_add(struct lat_vec *l, uint64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1024;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return;		/* a sample lost beats a crash */
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = ns;
}

static void lat_merge(struct lat_vec *dst, const struct lat_vec *src)
{
	for (size_t i = 0; i < src->n; i++)
		lat_add(dst, src->v[i]);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct lat_summary {
	double p50, p90, p99, max;	/* milliseconds */
};

/* Nearest-rank percentiles; sorts l. */
static struct lat_summary lat_summarize(struct lat_vec *l)
{
	struct lat_summary s = { 0 };

	if (!l->n)
		return s;
	qsort(l->v, l->n, sizeof(*l->v), cmp_u64);
#define RANK(q) (l->v[(size_t)((q) * (double)l->n + 0.999999) - 1] / 1e6)
	s.p50 = RANK(0.50);
	s.p90 = RANK(0.90);
	s.p99 = RANK(0.99);
#undef RANK
	s.max = l->v[l->n - 1] / 1e6;
	return s;
}

/* ---- Shared state ------------------------------------------------------- */

struct op_stats {
	uint64_t ops;			/* succeeded */
	uint64_t bytes;
	uint64_t errors;
	struct lat_vec lat;
};

struct bench;

struct worker {
	struct bench *b;
	unsigned id;
	pthread_t th;
	strata_client *client;
	uint8_t *buf;			/* GET destination (size bytes) */
	uint8_t *scratch;		/* VERIFY_CHUNK */
	char *key;			/* small: this op's key */
	struct op_stats st[OP_N];
	struct evconn *ev;		/* --io event: this thread's connections */
	unsigned nev;
	uint64_t objects;		/* batch: objects delivered whole */
	uint64_t object_errors;		/* batch: items that failed */
	uint64_t verified, mismatches;
	uint64_t uploaded, present;	/* prepare */
	uint64_t small_seq;
	uint64_t shards, samples, retries, hints, wait_ns;	/* dataset */
	double t_end;
	int setup_rc;
};

struct bench {
	struct opts o;
	struct strata_config cfg;
	strata_client *shared;
	char **keys;			/* count keys, then the same again:
					 * a batch window never wraps */
	uint64_t *seeds;
	atomic_uchar *checked;		/* per object: first get claimed */
	struct worker *w;
	unsigned nworkers;		/* threads: concurrency, or --threads */
	pthread_barrier_t ready, go;
	atomic_bool abort;
	atomic_uint_fast64_t seq;	/* requests started */
	atomic_uint error_lines;
	double t0, deadline;
	int connections;
	strata_dataset *ds;		/* dataset-epoch */
	bool generate;			/* the prefix was empty: upload */
};

static void report_error(struct bench *b, const char *what, const char *key,
			 int rc)
{
	unsigned n = atomic_fetch_add(&b->error_lines, 1);

	char k[512];

	if (n < MAX_ERROR_LINES)
		fprintf(stderr, "strata-bench: %s %s: %s\n", what,
			args_escape(key, k, sizeof(k)), strata_strerror(rc));
	else if (n == MAX_ERROR_LINES)
		fputs("strata-bench: (more errors not shown)\n", stderr);
}

static void report_mismatch(struct bench *b, const char *key, int64_t at)
{
	unsigned n = atomic_fetch_add(&b->error_lines, 1);
	char k[512];

	if (n < MAX_ERROR_LINES)
		fprintf(stderr, "strata-bench: %s: byte %" PRId64 " differs "
			"from what was uploaded\n",
			args_escape(key, k, sizeof(k)), at);
}

static int client_open(struct bench *b, unsigned pool, strata_client **out)
{
	struct strata_config cfg = b->cfg;

	cfg.pool_size = pool;
	return strata_client_new(&cfg, out);
}

/* ---- Requests ----------------------------------------------------------- */

static void record(struct worker *w, enum op_type t, int rc, uint64_t bytes,
		   uint64_t t_start)
{
	struct op_stats *s = &w->st[t];

	if (rc) {
		s->errors++;
		return;
	}
	s->ops++;
	s->bytes += bytes;
	lat_add(&s->lat, now_ns() - t_start);
}

static int put_object(struct worker *w, const char *key, uint64_t seed)
{
	struct gen_src g = { seed, 0, w->b->o.size };
	struct strata_put_opts po = { .has_size = true, .size = w->b->o.size };

	return strata_object_put(w->client, w->b->o.bucket, key, &po,
				 gen_read, &g, NULL);
}

struct stream_check {
	struct worker *w;
	uint64_t seed;
	uint64_t off;
	bool verify;
	int64_t bad;			/* first differing byte, or -1 */
};

static int stream_sink(void *arg, const void *buf, size_t len)
{
	struct stream_check *sc = arg;

	if (sc->verify && sc->bad < 0)
		sc->bad = check_bytes(sc->seed, sc->off, buf, len,
				      sc->w->scratch);
	sc->off += len;
	return 0;
}

/* GET a whole object; verify it when verify is set.  Returns 0 or an error
 * (a short object is STRATA_EPROTO); *bad is the first differing byte. */
static int get_object(struct worker *w, const char *key, uint64_t seed,
		      bool verify, uint64_t *bytes, int64_t *bad,
		      uint64_t *ns)
{
	struct bench *b = w->b;
	uint64_t t = now_ns();
	size_t got = 0;
	int rc;

	*bad = -1;
	if (w->buf) {
		rc = strata_object_get_buf(w->client, b->o.bucket, key, 0,
					   STRATA_TO_END, w->buf, b->o.size,
					   &got, NULL);
		*ns = now_ns() - t;
		if (!rc && got != b->o.size)
			rc = STRATA_EPROTO;
		if (!rc && verify)
			*bad = check_bytes(seed, 0, w->buf, got, w->scratch);
	} else {
		struct stream_check sc = { w, seed, 0, verify, -1 };

		rc = strata_object_get(w->client, b->o.bucket, key, 0,
				       STRATA_TO_END, stream_sink, &sc, NULL);
		*ns = now_ns() - t;
		got = (size_t)sc.off;
		if (!rc && sc.off != b->o.size)
			rc = STRATA_EPROTO;
		*bad = sc.bad;
	}
	*bytes = got;
	return rc;
}

static void op_get(struct worker *w, uint32_t idx)
{
	struct bench *b = w->b;
	unsigned char expect = 0;
	bool verify = atomic_compare_exchange_strong(&b->checked[idx], &expect,
						     1);
	uint64_t bytes, ns;
	int64_t bad;
	int rc = get_object(w, b->keys[idx], b->seeds[idx], verify, &bytes,
			    &bad, &ns);

	if (rc) {
		w->st[OP_GET].errors++;
		report_error(b, "get", b->keys[idx], rc);
		return;
	}
	if (verify) {
		w->verified++;
		if (bad >= 0) {
			w->mismatches++;
			w->st[OP_GET].errors++;
			report_mismatch(b, b->keys[idx], bad);
			return;
		}
	}
	w->st[OP_GET].ops++;
	w->st[OP_GET].bytes += bytes;
	lat_add(&w->st[OP_GET].lat, ns);
}

static void op_put(struct worker *w, uint32_t idx)
{
	uint64_t t = now_ns();
	int rc = put_object(w, w->b->keys[idx], w->b->seeds[idx]);

	if (rc)
		report_error(w->b, "put", w->b->keys[idx], rc);
	record(w, OP_PUT, rc, w->b->o.size, t);
}

static void op_stat(struct worker *w, uint32_t idx)
{
	struct strata_stat *st = NULL;
	uint64_t t = now_ns();
	int rc = strata_object_stat(w->client, w->b->o.bucket,
				    w->b->keys[idx], &st);

	if (!rc && st->size != w->b->o.size)
		rc = STRATA_EPROTO;
	strata_stat_free(st);
	if (rc)
		report_error(w->b, "stat", w->b->keys[idx], rc);
	record(w, OP_STAT, rc, 0, t);
}

/* small: put a fresh key, get it back (compared), delete it. */
static void op_small(struct worker *w)
{
	struct bench *b = w->b;
	uint64_t seed, t, bytes, ns;
	int64_t bad;
	int rc;

	snprintf(w->key, MAX_PREFIX + 64, "%ssmall-%ld-%u-%" PRIu64,
		 b->o.prefix, (long)getpid(), w->id, w->small_seq++);
	seed = key_seed(w->key);
	t = now_ns();
	rc = put_object(w, w->key, seed);
	record(w, OP_PUT, rc, b->o.size, t);
	if (rc) {
		report_error(b, "put", w->key, rc);
		return;
	}
	rc = get_object(w, w->key, seed, true, &bytes, &bad, &ns);
	if (!rc) {
		w->verified++;
		if (bad >= 0) {
			w->mismatches++;
			w->st[OP_GET].errors++;
			report_mismatch(b, w->key, bad);
		} else {
			w->st[OP_GET].ops++;
			w->st[OP_GET].bytes += bytes;
			lat_add(&w->st[OP_GET].lat, ns);
		}
	} else {
		w->st[OP_GET].errors++;
		report_error(b, "get", w->key, rc);
	}
	t = now_ns();
	rc = strata_object_delete(w->client, b->o.bucket, w->key, NULL);
	record(w, OP_DELETE, rc, 0, t);
	if (rc)
		report_error(b, "delete", w->key, rc);
}

struct batch_state {
	struct worker *w;
	uint32_t first;			/* object index of keys[0] */
	bool verify;			/* the current item is checked */
	int64_t bad;
	uint64_t bytes;
	uint64_t objects;
	uint64_t failed;
};

static int batch_sink(void *arg, const struct strata_batch_piece *p)
{
	struct batch_state *bs = arg;
	struct worker *w = bs->w;
	struct bench *b = w->b;
	uint32_t idx = (uint32_t)((bs->first + p->index) % b->o.count);

	if (p->status < 0) {
		bs->failed++;
		report_error(b, "batch item", b->keys[idx], p->status);
		return 0;
	}
	if (p->offset == 0) {
		unsigned char expect = 0;

		bs->verify = atomic_compare_exchange_strong(&b->checked[idx],
							    &expect, 1);
		bs->bad = -1;
		if (bs->verify)
			w->verified++;
		if (p->size != b->o.size) {
			bs->failed++;
			report_error(b, "batch item (size)", b->keys[idx],
				     STRATA_EPROTO);
		}
	}
	if (bs->verify && bs->bad < 0 && p->len)
		bs->bad = check_bytes(b->seeds[idx], p->offset, p->data,
				      p->len, w->scratch);
	bs->bytes += p->len;
	if (p->last) {
		if (bs->verify && bs->bad >= 0) {
			w->mismatches++;
			bs->failed++;
			report_mismatch(b, b->keys[idx], bs->bad);
		} else if (p->size == b->o.size &&
			   p->offset + p->len == p->size) {
			bs->objects++;
		}
	}
	return 0;
}

static void op_batch(struct worker *w, uint64_t seq)
{
	struct bench *b = w->b;
	uint32_t first = (uint32_t)((seq * b->o.batch_keys) % b->o.count);
	struct batch_state bs = { .w = w, .first = first, .bad = -1 };
	uint64_t t = now_ns();
	int rc = strata_batch_get(w->client, b->o.bucket,
				  (const char *const *)b->keys + first,
				  b->o.batch_keys, batch_sink, &bs);

	if (rc)
		report_error(b, "batch get from", b->keys[first], rc);
	record(w, OP_BATCH, rc, bs.bytes, t);
	w->objects += bs.objects;
	w->object_errors += bs.failed;
}

/* ---- Dataset epochs ----------------------------------------------------- */

static void report_tar(struct bench *b, const char *key, const char *err)
{
	unsigned n = atomic_fetch_add(&b->error_lines, 1);

	char k[512];

	if (n < MAX_ERROR_LINES)
		fprintf(stderr, "strata-bench: shard %s: tar: %s\n",
			args_escape(key, k, sizeof(k)), err);
	else if (n == MAX_ERROR_LINES)
		fputs("strata-bench: (more errors not shown)\n", stderr);
}

/* Count the samples of one piece (sh NULL: a piece of shard index failed,
 * already counted as an error: the rest of that shard is not counted). */
static void count_tar(struct worker *w, struct tar_count *t,
		      const struct strata_shard *sh, size_t index)
{
	bool had_err;

	if (!sh || sh->offset == 0 || t->index != index)
		tar_start(t, index);
	if (!sh || sh->offset != t->at)
		t->lost = true;
	if (t->lost)
		return;
	had_err = *t->err;
	tar_feed(t, sh->data, (size_t)sh->length);
	if (sh->last)
		tar_finish(t);
	w->samples += t->samples;
	t->samples = 0;
	if (*t->err && !had_err) {
		w->st[OP_SHARD].errors++;
		report_tar(w->b, sh->key, t->err);
	}
}

/* The object index of a strata-bench key (PREFIX obj-NNNNNNNN), or -1. */
static int64_t bench_index(const struct bench *b, const char *key)
{
	size_t pl = strlen(b->o.prefix);
	char *end;
	unsigned long long v;

	if (strncmp(key, b->o.prefix, pl) || strncmp(key + pl, "obj-", 4) ||
	    strlen(key + pl + 4) != 8)
		return -1;
	v = strtoull(key + pl + 4, &end, 10);
	return *end || v >= b->o.count ? -1 : (int64_t)v;
}

static void run_dataset(struct worker *w)
{
	struct bench *b = w->b;
	const struct opts *o = &b->o;

	for (unsigned ep = 0; ep < o->epochs && !atomic_load(&b->abort);
	     ep++) {
		struct strata_epoch_opts eo = {
			.seed = o->seed, .epoch = ep, .rank = o->rank,
			.world_size = o->world_size, .worker = w->id,
			.num_workers = o->concurrency,
			.no_shuffle = o->no_shuffle, .prefetch = o->prefetch,
			.prefetch_bytes = o->prefetch_bytes,
			.piece_size = o->piece_size, .no_hint = o->no_hint,
		};
		struct strata_epoch_stats es;
		struct strata_shard sh;
		struct tar_count tc;
		strata_epoch *e;
		int rc = strata_epoch_new(w->client, b->ds, &eo, &e);

		if (rc) {
			w->st[OP_SHARD].errors++;
			report_error(b, "epoch of", o->prefix, rc);
			atomic_store(&b->abort, true);
			break;
		}
		tar_start(&tc, SIZE_MAX);
		while ((rc = strata_epoch_next(e, &sh)) != 0) {
			int64_t idx = -1, bad = -1;
			unsigned char expect = 0;

			if (rc < 0) {
				w->st[OP_SHARD].errors++;
				report_error(b, "shard", sh.key, rc);
				if (o->tar_samples)
					count_tar(w, &tc, NULL, sh.index);
				continue;
			}
			/* strata-bench's own objects (PREFIX obj-N of
			 * --size bytes) are checked once each. */
			if (sh.length && sh.size == o->size)
				idx = bench_index(b, sh.key);
			if (idx >= 0 && atomic_compare_exchange_strong(
				    &b->checked[idx], &expect, 1)) {
				w->verified++;
				bad = check_bytes(b->seeds[idx], sh.offset,
						  sh.data, (size_t)sh.length,
						  w->scratch);
			}
			if (bad >= 0) {
				w->mismatches++;
				w->st[OP_SHARD].errors++;
				report_mismatch(b, sh.key, bad);
				if (o->tar_samples)
					count_tar(w, &tc, NULL, sh.index);
			} else {
				w->st[OP_SHARD].ops++;
				w->st[OP_SHARD].bytes += sh.length;
				lat_add(&w->st[OP_SHARD].lat, sh.fetch_ns);
				w->shards += sh.last;
				if (o->tar_samples)
					count_tar(w, &tc, &sh, sh.index);
				else
					w->samples += sh.last;
			}
			strata_epoch_buf_free(e, sh.data, (size_t)sh.length);
		}
		strata_epoch_stats(e, &es);
		w->retries += es.retries;
		w->hints += es.hints;
		w->wait_ns += es.wait_ns;
		strata_epoch_free(e);
	}
	w->t_end = now_s();
}

/* ---- Event-driven gets (--io event) -------------------------------------- */

/*
 * Each thread drives its share of the connections with epoll and
 * libstrata's strata_conn_* calls, one get in flight per connection, the
 * way wrk drives HTTP: a thread handles whichever responses are ready
 * instead of one blocked thread per connection being woken for each.
 */
struct evconn {
	strata_conn *conn;
	uint8_t *buf;			/* size bytes */
	uint32_t idx;			/* object of the get in flight */
	bool verify, busy;
	short want;			/* events registered */
	uint64_t t;			/* get started (ns) */
};

#define EV_STALL_S 30			/* no progress at all: give up */

static int ev_open(struct worker *w)
{
	struct bench *b = w->b;
	unsigned n = 0;

	for (unsigned k = w->id; k < b->o.concurrency; k += b->nworkers)
		n++;
	w->ev = xcalloc(n ? n : 1, sizeof(*w->ev));
	for (unsigned i = 0; i < n; i++) {
		int rc = strata_conn_open(w->client, &w->ev[i].conn);

		if (rc) {
			fprintf(stderr, "strata-bench: worker %u: connecting: "
				"%s\n", w->id, strata_strerror(rc));
			return rc;
		}
		w->nev++;
		w->ev[i].buf = malloc(b->o.size ? b->o.size : 1);
		if (!w->ev[i].buf) {
			fputs("strata-bench: out of memory\n", stderr);
			exit(EXIT_FAILED);
		}
	}
	return 0;
}

/* Start the next get on e; false when the run is over for it. */
static bool ev_start(struct worker *w, struct evconn *e)
{
	struct bench *b = w->b;
	const struct opts *o = &b->o;
	unsigned char expect = 0;
	uint64_t seq;
	int rc;

	if (atomic_load(&b->abort) ||
	    (o->has_duration && now_s() >= b->deadline))
		return false;
	seq = atomic_fetch_add(&b->seq, 1);
	if (o->ops && seq >= o->ops)
		return false;
	e->idx = (uint32_t)(seq % o->count);
	e->verify = atomic_compare_exchange_strong(&b->checked[e->idx],
						   &expect, 1);
	e->t = now_ns();
	rc = strata_conn_get_start(e->conn, o->bucket, b->keys[e->idx], 0,
				   STRATA_TO_END, e->buf, o->size);
	if (rc) {
		w->st[OP_GET].errors++;
		report_error(b, "get", b->keys[e->idx], rc);
		return false;
	}
	return true;
}

/* A get is over: count it (and check the bytes of an object's first). */
static void ev_done(struct worker *w, struct evconn *e, int rc, size_t got)
{
	struct bench *b = w->b;
	uint64_t ns = now_ns() - e->t;

	if (!rc && got != b->o.size)
		rc = STRATA_EPROTO;
	if (rc) {
		w->st[OP_GET].errors++;
		report_error(b, "get", b->keys[e->idx], rc);
		return;
	}
	if (e->verify) {
		int64_t bad = check_bytes(b->seeds[e->idx], 0, e->buf, got,
					  w->scratch);

		w->verified++;
		if (bad >= 0) {
			w->mismatches++;
			w->st[OP_GET].errors++;
			report_mismatch(b, b->keys[e->idx], bad);
			return;
		}
	}
	w->st[OP_GET].ops++;
	w->st[OP_GET].bytes += got;
	lat_add(&w->st[OP_GET].lat, ns);
}

/* Move e on as far as its socket allows, starting gets as others end;
 * returns false when e has nothing more to do (its fd is deregistered). */
static bool ev_drive(struct worker *w, int epfd, struct evconn *e)
{
	for (;;) {
		short want = 0;
		size_t got = 0;
		int rc = strata_conn_get_step(e->conn, &want, &got, NULL);

		if (rc == -EAGAIN) {
			if (want != e->want) {
				struct epoll_event ev = {
					.events = want & POLLOUT ? EPOLLOUT :
						  EPOLLIN,
					.data.ptr = e,
				};

				epoll_ctl(epfd, e->want ? EPOLL_CTL_MOD :
					  EPOLL_CTL_ADD,
					  strata_conn_fd(e->conn), &ev);
				e->want = want;
			}
			return true;
		}
		ev_done(w, e, rc, got);
		if (rc || !ev_start(w, e))
			break;
	}
	e->busy = false;
	if (e->want)
		epoll_ctl(epfd, EPOLL_CTL_DEL, strata_conn_fd(e->conn), NULL);
	e->want = 0;
	return false;
}

static void run_event(struct worker *w)
{
	struct epoll_event evs[64];
	unsigned busy = 0;
	double last = now_s();
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	if (epfd < 0) {
		perror("strata-bench: epoll_create1");
		exit(EXIT_FAILED);
	}
	for (unsigned i = 0; i < w->nev; i++) {
		struct evconn *e = &w->ev[i];

		if (ev_start(w, e)) {
			e->busy = true;
			busy += ev_drive(w, epfd, e);
		}
	}
	while (busy) {
		int n = epoll_wait(epfd, evs, 64, 1000);

		if (n < 0 && errno != EINTR) {
			perror("strata-bench: epoll_wait");
			exit(EXIT_FAILED);
		}
		if (n <= 0) {
			if (now_s() - last < EV_STALL_S)
				continue;
			/* The server stopped answering: the gets in flight
			 * failed. */
			for (unsigned i = 0; i < w->nev; i++)
				if (w->ev[i].busy) {
					w->st[OP_GET].errors++;
					report_error(w->b, "get",
						     w->b->keys[w->ev[i].idx],
						     -ETIMEDOUT);
				}
			break;
		}
		last = now_s();
		for (int i = 0; i < n; i++) {
			struct evconn *e = evs[i].data.ptr;

			if (e->busy && !ev_drive(w, epfd, e))
				busy--;
		}
	}
	close(epfd);
	w->t_end = now_s();
}

/* ---- Workers ------------------------------------------------------------ */

/* Upload this worker's share of the objects that are missing or of
 * another size. */
static int prepare(struct worker *w)
{
	struct bench *b = w->b;

	for (uint32_t i = w->id; i < b->o.count && !atomic_load(&b->abort);
	     i += b->nworkers) {
		struct strata_stat *st = NULL;
		int rc = strata_object_stat(w->client, b->o.bucket, b->keys[i],
					    &st);

		if (!rc && st->size == b->o.size) {
			strata_stat_free(st);
			w->present++;
			continue;
		}
		strata_stat_free(st);
		if (rc && rc != STRATA_ENOOBJECT) {
			report_error(b, "stat (prepare)", b->keys[i], rc);
			return rc;
		}
		rc = put_object(w, b->keys[i], b->seeds[i]);
		if (rc) {
			report_error(b, "put (prepare)", b->keys[i], rc);
			return rc;
		}
		w->uploaded++;
	}
	return 0;
}

static bool needs_objects(const struct bench *b)
{
	enum workload wl = b->o.workload;

	return wl == W_GET || wl == W_MIXED || wl == W_BATCH ||
	       (wl == W_DATASET && b->generate);
}

static void run_ops(struct worker *w)
{
	struct bench *b = w->b;
	const struct opts *o = &b->o;

	if (o->workload == W_DATASET) {
		run_dataset(w);
		return;
	}
	if (o->io == IO_EVENT) {
		run_event(w);
		return;
	}
	for (;;) {
		uint64_t seq;
		uint32_t idx;

		if (o->has_duration && now_s() >= b->deadline)
			break;
		seq = atomic_fetch_add(&b->seq, 1);
		if (o->ops && seq >= o->ops)
			break;
		idx = (uint32_t)(seq % o->count);
		switch (o->workload) {
		case W_PUT:
			op_put(w, idx);
			break;
		case W_GET:
			op_get(w, idx);
			break;
		case W_MIXED: {
			unsigned r = (unsigned)(mix64(seq) % 100);

			if (r < 60)
				op_get(w, idx);
			else if (r < 90)
				op_put(w, idx);
			else
				op_stat(w, idx);
			break;
		}
		case W_SMALL:
			op_small(w);
			break;
		case W_BATCH:
			op_batch(w, seq);
			break;
		case W_DATASET:
			break;
		}
	}
	w->t_end = now_s();
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	int rc = 0;

	if (b->shared)
		w->client = b->shared;
	else
		rc = client_open(b, b->cfg.pool_size, &w->client);
	if (rc)
		fprintf(stderr, "strata-bench: worker %u: connecting: %s\n",
			w->id, strata_strerror(rc));
	if (!rc && needs_objects(b))
		rc = prepare(w);
	if (!rc && b->o.io == IO_EVENT)
		rc = ev_open(w);
	w->setup_rc = rc;
	if (rc)
		atomic_store(&b->abort, true);
	pthread_barrier_wait(&b->ready);
	pthread_barrier_wait(&b->go);
	if (!atomic_load(&b->abort))
		run_ops(w);
	return NULL;
}

/* The process's open sockets: every worker's connections. */
static int count_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char target[64];
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		len = readlinkat(dirfd(d), e->d_name, target,
				 sizeof(target) - 1);
		if (len > 0) {
			target[len] = '\0';
			n += !strncmp(target, "socket:", 7);
		}
	}
	closedir(d);
	return n;
}

/* ---- Options ------------------------------------------------------------ */

static uint64_t parse_size(const char *name, const char *s, uint64_t max)
{
	uint64_t v;
	int rc = args_size(s, max, &v);

	if (rc == -ERANGE)
		die_usage("--%s: %s is more than %" PRIu64 " bytes", name, s,
			  max);
	if (rc)
		die_usage("--%s: not a size: %s", name, s);
	return v;
}

static uint64_t parse_u64(const char *name, const char *s, uint64_t min,
			  uint64_t max)
{
	uint64_t v;

	if (*s < '0' || *s > '9')
		die_usage("--%s wants a number: %s", name, s);
	if (args_u64(s, min, max, &v))
		die_usage("--%s wants a number from %" PRIu64 " to %" PRIu64
			  ": %s", name, min, max, s);
	return v;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	enum { O_ENDPOINT = 256, O_ACCESS, O_SECRET, O_CA, O_WORKLOAD,
	       O_BUCKET, O_SIZE, O_COUNT, O_CONC, O_DURATION, O_OPS,
	       O_BATCH, O_PREFIX, O_CLIENTS, O_JSON, O_EPOCHS, O_SEED,
	       O_RANK, O_WORLD, O_PREFETCH, O_PREFETCH_BYTES, O_PIECE,
	       O_SAMPLES, O_NO_HINT, O_NO_SHUFFLE, O_IO, O_THREADS };
	static const struct option longs[] = {
		{ "endpoint", required_argument, NULL, O_ENDPOINT },
		{ "access-key", required_argument, NULL, O_ACCESS },
		{ "secret-key", required_argument, NULL, O_SECRET },
		{ "ca", required_argument, NULL, O_CA },
		{ "workload", required_argument, NULL, O_WORKLOAD },
		{ "bucket", required_argument, NULL, O_BUCKET },
		{ "size", required_argument, NULL, O_SIZE },
		{ "count", required_argument, NULL, O_COUNT },
		{ "concurrency", required_argument, NULL, O_CONC },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "ops", required_argument, NULL, O_OPS },
		{ "batch-keys", required_argument, NULL, O_BATCH },
		{ "prefix", required_argument, NULL, O_PREFIX },
		{ "clients", required_argument, NULL, O_CLIENTS },
		{ "io", required_argument, NULL, O_IO },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "json", no_argument, NULL, O_JSON },
		{ "epochs", required_argument, NULL, O_EPOCHS },
		{ "seed", required_argument, NULL, O_SEED },
		{ "rank", required_argument, NULL, O_RANK },
		{ "world-size", required_argument, NULL, O_WORLD },
		{ "prefetch", required_argument, NULL, O_PREFETCH },
		{ "prefetch-bytes", required_argument, NULL, O_PREFETCH_BYTES },
		{ "piece-size", required_argument, NULL, O_PIECE },
		{ "samples", required_argument, NULL, O_SAMPLES },
		{ "no-hint", no_argument, NULL, O_NO_HINT },
		{ "no-shuffle", no_argument, NULL, O_NO_SHUFFLE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool has_workload = false;
	int c;

	*o = (struct opts){
		.prefix = "strata-bench/", .count = 100, .concurrency = 8,
		.batch_keys = 100, .clients = CM_PER_THREAD, .epochs = 1,
		.world_size = 1,
	};
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case O_ENDPOINT: o->endpoint = optarg; break;
		case O_ACCESS: o->access_key = optarg; break;
		case O_SECRET: o->secret_key = optarg; break;
		case O_CA: o->ca = optarg; break;
		case O_WORKLOAD: {
			size_t i;

			for (i = 0; i < sizeof(workload_names) /
			     sizeof(*workload_names); i++)
				if (!strcmp(optarg, workload_names[i]))
					break;
			if (i == sizeof(workload_names) /
			    sizeof(*workload_names))
				die_usage("unknown workload %s", optarg);
			o->workload = (enum workload)i;
			has_workload = true;
			break;
		}
		case O_BUCKET: o->bucket = optarg; break;
		case O_SIZE:
			o->size = parse_size("size", optarg, MAX_SIZE);
			o->has_size = true;
			break;
		case O_COUNT:
			o->count = (uint32_t)parse_u64("count", optarg, 1,
						       UINT32_MAX / 2);
			break;
		case O_CONC:
			o->concurrency = (unsigned)parse_u64("concurrency",
							     optarg, 1,
							     MAX_CONCURRENCY);
			break;
		case O_DURATION:
			if (args_seconds(optarg, &o->duration))
				die_usage("--duration wants seconds > 0: %s",
					  optarg);
			o->has_duration = true;
			break;
		case O_OPS:
			o->ops = parse_u64("ops", optarg, 1, UINT64_MAX / 2);
			break;
		case O_BATCH:
			o->batch_keys = (unsigned)parse_u64("batch-keys",
							    optarg, 1,
							    1000000);
			break;
		case O_PREFIX: o->prefix = optarg; break;
		case O_CLIENTS:
			if (!strcmp(optarg, "per-thread"))
				o->clients = CM_PER_THREAD;
			else if (!strcmp(optarg, "shared"))
				o->clients = CM_SHARED;
			else
				die_usage("--clients: per-thread or shared");
			break;
		case O_IO:
			if (!strcmp(optarg, "threads"))
				o->io = IO_THREADS;
			else if (!strcmp(optarg, "event"))
				o->io = IO_EVENT;
			else
				die_usage("--io: threads or event");
			break;
		case O_THREADS:
			o->threads = (unsigned)parse_u64("threads", optarg, 1,
							 MAX_CONCURRENCY);
			break;
		case O_JSON: o->json = true; break;
		case O_EPOCHS:
			o->epochs = (unsigned)parse_u64("epochs", optarg, 1,
							1000000);
			break;
		case O_SEED:
			o->seed = parse_u64("seed", optarg, 0, UINT64_MAX);
			break;
		case O_RANK:
			o->rank = (unsigned)parse_u64("rank", optarg, 0,
						      1000000);
			break;
		case O_WORLD:
			o->world_size = (unsigned)parse_u64("world-size",
							    optarg, 1,
							    1000000);
			break;
		case O_PREFETCH:
			o->prefetch = (unsigned)parse_u64("prefetch", optarg,
							  1, 1024);
			break;
		case O_PREFETCH_BYTES:
			o->prefetch_bytes = parse_size("prefetch-bytes", optarg,
						       UINT64_MAX);
			break;
		case O_PIECE:
			o->piece_size = parse_size("piece-size", optarg,
						   UINT64_MAX);
			break;
		case O_SAMPLES:
			if (!strcmp(optarg, "tar"))
				o->tar_samples = true;
			else if (strcmp(optarg, "shards"))
				die_usage("--samples: shards or tar");
			break;
		case O_NO_HINT: o->no_hint = true; break;
		case O_NO_SHUFFLE: o->no_shuffle = true; break;
		case 'h':
			fputs(usage_text, stdout);
			exit(EXIT_OK);
		default:
			die_usage("bad option");
		}
	}
	if (optind < argc)
		die_usage("unexpected argument %s", argv[optind]);
	if (!has_workload)
		die_usage("--workload is required");
	if (!o->bucket)
		die_usage("--bucket is required");
	if (strlen(o->prefix) > MAX_PREFIX)
		die_usage("--prefix is longer than %d bytes", MAX_PREFIX);
	if (!o->has_size)
		o->size = o->workload == W_SMALL || o->workload == W_BATCH ?
			  4096 : 1u << 20;
	if (!o->has_duration && !o->ops) {
		o->duration = 10;
		o->has_duration = true;
	}
	if (o->rank >= o->world_size)
		die_usage("--rank (%u) must be below --world-size (%u)",
			  o->rank, o->world_size);
	if (o->io == IO_EVENT && o->workload != W_GET)
		die_usage("--io event runs --workload get only");
	if (o->io == IO_EVENT && o->size > BUF_GET_MAX)
		die_usage("--io event: --size is at most 256M (a buffer per "
			  "connection)");
	if (o->threads && o->io != IO_EVENT)
		die_usage("--threads goes with --io event");
	if (o->workload == W_BATCH && o->batch_keys > o->count)
		die_usage("--batch-keys (%u) is more than --count (%" PRIu32
			  ")", o->batch_keys, o->count);
}

/* ---- Report ------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_lat(FILE *f, const struct lat_summary *s)
{
	fprintf(f, "{\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"max\":%.4f}",
		s->p50, s->p90, s->p99, s->max);
}

struct totals {
	struct op_stats st[OP_N];
	struct op_stats all;
	uint64_t objects, object_errors, verified, mismatches;
	uint64_t uploaded, present;
	uint64_t shards, samples, retries, hints;	/* dataset-epoch */
	double wait_s;
	double elapsed, prepare_s, cpu_s;
};

static void report(struct bench *b, struct totals *t)
{
	const struct opts *o = &b->o;
	struct lat_summary all = lat_summarize(&t->all.lat);
	double el = t->elapsed > 0 ? t->elapsed : 1e-9;
	uint64_t errors = t->all.errors + t->object_errors;
	FILE *f = stdout;

	if (o->json) {
		fputs("{\"workload\":", f);
		json_str(f, workload_names[o->workload]);
		fputs(",\"endpoint\":", f);
		json_str(f, b->cfg.endpoint);
		fputs(",\"bucket\":", f);
		json_str(f, o->bucket);
		fprintf(f, ",\"size\":%" PRIu64 ",\"count\":%" PRIu32
			",\"concurrency\":%u,\"clients\":\"%s\""
			",\"io\":\"%s\",\"threads\":%u,\"connections\":%d",
			o->size, o->count, o->concurrency,
			o->clients == CM_SHARED ? "shared" : "per-thread",
			o->io == IO_EVENT ? "event" : "threads", b->nworkers,
			b->connections);
		if (o->workload == W_BATCH)
			fprintf(f, ",\"batch_keys\":%u", o->batch_keys);
		fprintf(f, ",\"elapsed_s\":%.6f,\"ops\":%" PRIu64
			",\"ops_per_s\":%.2f,\"bytes\":%" PRIu64
			",\"mb_per_s\":%.2f,\"errors\":%" PRIu64
			",\"verified\":%" PRIu64 ",\"verify_failures\":%"
			PRIu64 ",\"latency_ms\":",
			t->elapsed, t->all.ops, t->all.ops / el,
			t->all.bytes, t->all.bytes / el / 1e6, errors,
			t->verified, t->mismatches);
		json_lat(f, &all);
		if (o->workload == W_BATCH)
			fprintf(f, ",\"objects\":%" PRIu64
				",\"objects_per_s\":%.2f", t->objects,
				t->objects / el);
		if (o->workload == W_DATASET)
			fprintf(f, ",\"dataset_shards\":%zu,\"epochs\":%u"
				",\"shards\":%" PRIu64 ",\"shards_per_s\":%.2f"
				",\"samples\":%" PRIu64
				",\"samples_per_s\":%.2f,\"retries\":%" PRIu64
				",\"hints\":%" PRIu64 ",\"wait_s\":%.3f",
				strata_dataset_count(b->ds), o->epochs,
				t->shards, t->shards / el, t->samples,
				t->samples / el, t->retries, t->hints,
				t->wait_s);
		fprintf(f, ",\"prepare\":{\"uploaded\":%" PRIu64
			",\"present\":%" PRIu64 ",\"seconds\":%.3f}"
			",\"client_cpu_s\":%.3f,\"by_op\":{",
			t->uploaded, t->present, t->prepare_s, t->cpu_s);
		for (int i = 0, first = 1; i < OP_N; i++) {
			struct op_stats *s = &t->st[i];
			struct lat_summary ls;

			if (!s->ops && !s->errors)
				continue;
			ls = lat_summarize(&s->lat);
			fprintf(f, "%s\"%s\":{\"ops\":%" PRIu64
				",\"ops_per_s\":%.2f,\"mb_per_s\":%.2f"
				",\"errors\":%" PRIu64 ",\"latency_ms\":",
				first ? "" : ",", op_names[i], s->ops,
				s->ops / el, s->bytes / el / 1e6, s->errors);
			json_lat(f, &ls);
			fputc('}', f);
			first = 0;
		}
		fputs("}}\n", f);
		return;
	}
	if (o->workload == W_DATASET && !b->generate)
		/* A dataset found under the prefix: --size and --count are
		 * not what is read. */
		fprintf(f, "workload %s on %s, bucket %s: %zu shards under "
			"%s, ", workload_names[o->workload], b->cfg.endpoint,
			o->bucket, strata_dataset_count(b->ds), o->prefix);
	else
		fprintf(f, "workload %s on %s, bucket %s: %" PRIu64
			" B objects x %" PRIu32 ", ",
			workload_names[o->workload], b->cfg.endpoint,
			o->bucket, o->size, o->count);
	if (o->io == IO_EVENT)
		fprintf(f, "concurrency %u on %u event thread%s", o->concurrency,
			b->nworkers, b->nworkers == 1 ? "" : "s");
	else
		fprintf(f, "%u worker%s", o->concurrency,
			o->concurrency == 1 ? "" : "s");
	fprintf(f, " (%s clients, %d connections)\n",
		o->clients == CM_SHARED ? "shared" : "per-thread",
		b->connections);
	if (needs_objects(b))
		fprintf(f, "prepare: %" PRIu64 " uploaded, %" PRIu64
			" present, %.2f s\n", t->uploaded, t->present,
			t->prepare_s);
	fprintf(f, "%-7s %10s %10s %10s %9s %9s %9s %9s %7s\n", "op", "ops",
		"ops/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
		"errors");
	for (int i = 0; i < OP_N; i++) {
		struct op_stats *s = &t->st[i];
		struct lat_summary ls;

		if (!s->ops && !s->errors)
			continue;
		ls = lat_summarize(&s->lat);
		fprintf(f, "%-7s %10" PRIu64 " %10.1f %10.2f %9.3f %9.3f %9.3f"
			" %9.3f %7" PRIu64 "\n", op_names[i], s->ops,
			s->ops / el, s->bytes / el / 1e6, ls.p50, ls.p90,
			ls.p99, ls.max, s->errors);
	}
	fprintf(f, "%-7s %10" PRIu64 " %10.1f %10.2f %9.3f %9.3f %9.3f %9.3f"
		" %7" PRIu64 "\n", "total", t->all.ops, t->all.ops / el,
		t->all.bytes / el / 1e6, all.p50, all.p90, all.p99, all.max,
		errors);
	if (o->workload == W_BATCH)
		fprintf(f, "objects: %" PRIu64 " in %.3f s = %.1f objects/s "
			"(%u keys per batch)\n", t->objects, t->elapsed,
			t->objects / el, o->batch_keys);
	if (o->workload == W_DATASET)
		fprintf(f, "dataset: %zu shards, %u epoch(s): %" PRIu64
			" shards = %.1f shards/s, %" PRIu64 " %s = %.1f/s, "
			"%.2f MB/s; workers waited %.3f s; %" PRIu64
			" retries, %" PRIu64 " hints\n",
			strata_dataset_count(b->ds), o->epochs, t->shards,
			t->shards / el, t->samples,
			o->tar_samples ? "samples" : "shards (as samples)",
			t->samples / el, t->all.bytes / el / 1e6, t->wait_s,
			t->retries, t->hints);
	fprintf(f, "elapsed %.3f s; verified %" PRIu64 " objects, %" PRIu64
		" mismatched; client CPU %.2f s\n", t->elapsed, t->verified,
		t->mismatches, t->cpu_s);
}

/* ---- Main --------------------------------------------------------------- */

static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void make_keys(struct bench *b)
{
	uint32_t n = b->o.count;

	b->keys = xcalloc(2 * (size_t)n, sizeof(*b->keys));
	b->seeds = xcalloc(n, sizeof(*b->seeds));
	b->checked = xcalloc(n, sizeof(*b->checked));
	for (uint32_t i = 0; i < n; i++) {
		if (asprintf(&b->keys[i], "%sobj-%08" PRIu32, b->o.prefix,
			     i) < 0) {
			fputs("strata-bench: out of memory\n", stderr);
			exit(EXIT_FAILED);
		}
		b->keys[n + i] = b->keys[i];
		b->seeds[i] = key_seed(b->keys[i]);
		atomic_init(&b->checked[i], 0);
	}
}

/* Overwrite the --secret-key argument once libstrata holds its copy:
 * anyone on the host reads command lines (ps(1), /proc/PID/cmdline). */
static void scrub_secret_arg(const char *arg)
{
	if (arg)
		memset((char *)arg, 'x', strlen(arg));
}

int main(int argc, char **argv)
{
	struct bench *b = xcalloc(1, sizeof(*b));
	struct opts *o = &b->o;
	struct totals t = { 0 };
	strata_client *setup = NULL;
	char err[256] = "";
	double t_prep;
	unsigned i, per;
	int rc, status = EXIT_OK;

	parse_opts(argc, argv, o);
	b->cfg.endpoint = o->endpoint;
	b->cfg.access_key = o->access_key;
	b->cfg.secret_key = o->secret_key;
	b->cfg.ca_file = o->ca;
	/* dataset-epoch: one connection per prefetching thread, one for
	 * hints. */
	per = o->workload == W_DATASET ? (o->prefetch ? o->prefetch : 2) + 1 :
	      1;
	b->cfg.pool_size = o->clients == CM_SHARED ? o->concurrency * per :
			   per;
	rc = strata_config_from_env(&b->cfg, err, sizeof(err));
	scrub_secret_arg(o->secret_key);
	if (rc) {
		fprintf(stderr, "strata-bench: %s\n", *err ? err :
			strata_strerror(rc));
		free(b);
		return EXIT_USAGE;
	}
	if (!b->cfg.endpoint || !b->cfg.access_key || !b->cfg.secret_key) {
		fprintf(stderr, "strata-bench: no %s: give --%s or set "
			"STRATA_%s\n",
			!b->cfg.endpoint ? "endpoint" : "credentials",
			!b->cfg.endpoint ? "endpoint" : "access-key/--secret-key",
			!b->cfg.endpoint ? "ENDPOINT" : "ACCESS_KEY/_SECRET_KEY");
		strata_config_release(&b->cfg);
		free(b);
		return EXIT_USAGE;
	}
	rc = client_open(b, b->cfg.pool_size, &setup);
	if (rc) {
		fprintf(stderr, "strata-bench: connecting to %s: %s\n",
			b->cfg.endpoint, strata_strerror(rc));
		strata_config_release(&b->cfg);
		free(b);
		return rc == STRATA_ECONFIG ? EXIT_USAGE : EXIT_FAILED;
	}
	rc = strata_bucket_create(setup, o->bucket);
	if (rc && rc != STRATA_EBUCKETEXISTS) {
		fprintf(stderr, "strata-bench: creating bucket %s: %s\n",
			o->bucket, strata_strerror(rc));
		strata_client_free(setup);
		strata_config_release(&b->cfg);
		free(b);
		return rc == STRATA_EBADBUCKET ? EXIT_USAGE : EXIT_FAILED;
	}
	if (o->workload == W_DATASET) {
		rc = strata_dataset_open(setup, o->bucket, o->prefix, &b->ds);
		if (rc) {
			fprintf(stderr, "strata-bench: listing %s/%s: %s\n",
				o->bucket, o->prefix, strata_strerror(rc));
			strata_client_free(setup);
			strata_config_release(&b->cfg);
			free(b);
			return EXIT_FAILED;
		}
		if (!strata_dataset_count(b->ds)) {
			/* Nothing there: upload --count objects first. */
			b->generate = true;
			strata_dataset_free(b->ds);
			b->ds = NULL;
		}
	}
	if (o->clients == CM_SHARED) {
		b->shared = setup;
	} else {
		strata_client_free(setup);
		setup = NULL;
	}
	make_keys(b);

	b->nworkers = o->concurrency;
	if (o->io == IO_EVENT) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		b->nworkers = o->threads ? o->threads :
			      cpus > 0 ? (unsigned)cpus : 1;
		if (b->nworkers > o->concurrency)
			b->nworkers = o->concurrency;
	}
	b->w = xcalloc(b->nworkers, sizeof(*b->w));
	pthread_barrier_init(&b->ready, NULL, b->nworkers + 1);
	pthread_barrier_init(&b->go, NULL, b->nworkers + 1);
	t_prep = now_s();
	for (i = 0; i < b->nworkers; i++) {
		struct worker *w = &b->w[i];

		w->b = b;
		w->id = i;
		w->scratch = xcalloc(1, VERIFY_CHUNK);
		w->key = xcalloc(1, MAX_PREFIX + 64);
		if (o->workload != W_PUT && o->workload != W_BATCH &&
		    o->io != IO_EVENT && o->size <= BUF_GET_MAX)
			w->buf = xcalloc(1, o->size);
		if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
			fprintf(stderr, "strata-bench: cannot start a thread\n");
			exit(EXIT_FAILED);
		}
	}
	pthread_barrier_wait(&b->ready);
	if (o->workload == W_DATASET && !b->ds && !atomic_load(&b->abort)) {
		strata_client *lc = b->shared;

		rc = lc ? 0 : client_open(b, 1, &lc);
		if (!rc)
			rc = strata_dataset_open(lc, o->bucket, o->prefix,
						 &b->ds);
		if (lc != b->shared)
			strata_client_free(lc);
		if (rc) {
			fprintf(stderr, "strata-bench: listing %s/%s: %s\n",
				o->bucket, o->prefix, strata_strerror(rc));
			atomic_store(&b->abort, true);
			status = EXIT_FAILED;
		}
	}
	t.prepare_s = now_s() - t_prep;
	t.cpu_s = cpu_seconds();
	b->t0 = now_s();
	b->deadline = b->t0 + o->duration;
	pthread_barrier_wait(&b->go);
	for (i = 0; i < b->nworkers; i++)
		pthread_join(b->w[i].th, NULL);
	/* Every worker is done, its client still open: count sockets now. */
	b->connections = count_sockets();
	t.cpu_s = cpu_seconds() - t.cpu_s;

	for (i = 0; i < b->nworkers; i++) {
		struct worker *w = &b->w[i];

		if (w->setup_rc && status == EXIT_OK)
			status = EXIT_FAILED;
		if (w->t_end - b->t0 > t.elapsed)
			t.elapsed = w->t_end - b->t0;
		for (int k = 0; k < OP_N; k++) {
			t.st[k].ops += w->st[k].ops;
			t.st[k].bytes += w->st[k].bytes;
			t.st[k].errors += w->st[k].errors;
			lat_merge(&t.st[k].lat, &w->st[k].lat);
			t.all.ops += w->st[k].ops;
			t.all.bytes += w->st[k].bytes;
			t.all.errors += w->st[k].errors;
			lat_merge(&t.all.lat, &w->st[k].lat);
			free(w->st[k].lat.v);
		}
		t.objects += w->objects;
		t.object_errors += w->object_errors;
		t.verified += w->verified;
		t.mismatches += w->mismatches;
		t.uploaded += w->uploaded;
		t.present += w->present;
		t.shards += w->shards;
		t.samples += w->samples;
		t.retries += w->retries;
		t.hints += w->hints;
		t.wait_s += w->wait_ns / 1e9;
		for (unsigned k = 0; k < w->nev; k++) {
			strata_conn_close(w->ev[k].conn);
			free(w->ev[k].buf);
		}
		free(w->ev);
		if (!b->shared)
			strata_client_free(w->client);
		free(w->buf);
		free(w->scratch);
		free(w->key);
	}
	if (status != EXIT_OK) {
		fputs("strata-bench: setup failed; nothing measured\n", stderr);
	} else {
		report(b, &t);
		if (t.all.errors || t.object_errors || t.mismatches)
			status = EXIT_FAILED;
		if (t.verified == 0 && o->workload != W_PUT &&
		    (o->workload != W_DATASET || b->generate))
			fputs("strata-bench: warning: no object was verified\n",
			      stderr);
	}
	for (int k = 0; k < OP_N; k++)
		free(t.st[k].lat.v);
	free(t.all.lat.v);
	strata_client_free(b->shared);
	strata_dataset_free(b->ds);
	for (uint32_t k = 0; k < o->count; k++)
		free(b->keys[k]);
	free(b->keys);
	free(b->seeds);
	free((void *)b->checked);
	free(b->w);
	pthread_barrier_destroy(&b->ready);
	pthread_barrier_destroy(&b->go);
	strata_config_release(&b->cfg);
	free(b);
	return status;
}
