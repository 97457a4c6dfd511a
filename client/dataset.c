// SPDX-License-Identifier: Apache-2.0
/*
 * libstrata datasets: a bucket + prefix listed once, per-epoch plans (the
 * shuffle and the split by rank and loader worker), an epoch iterator that
 * prefetches pieces in parallel, and prestaging hints (HINT, PROTOCOL.md
 * §5.14).
 *
 * The iterator.  The plan is a list of pieces (a whole shard, or a byte range
 * of one when piece_size cuts it).  Fetch threads take pieces strictly in
 * plan order (next_fetch); the consumer hands them over strictly in plan
 * order (consumed).  Piece i lives in slot i % nslots, and is started only
 * while i < consumed + nslots, so its slot is free by then; the bytes of
 * pieces reserved but not handed over (ahead) stay within prefetch_bytes,
 * except that one piece may always be reserved when nothing else is (so a
 * piece larger than the budget still moves).  Until the first piece is
 * READY only one fetch runs: the consumer's first piece then gets the
 * connection's (and the node's) whole speed instead of a share, so the
 * first sample comes sooner; parallel fetches start right after.  (With
 * many loaders starting at once, as DataLoader workers do, every worker
 * would otherwise wait for its whole prefetch window to arrive.)  A slot's
 * life:
 *
 *   EMPTY --[fetcher: reserve under the lock]--> FETCHING
 *   FETCHING --[fetch_piece done, ok or error]--> READY
 *   READY --[strata_epoch_next: hand over]--> EMPTY
 *
 * Retries: a fetch that fails with a transport error is tried again after a
 * backoff, from the first byte it does not have yet; every attempt must see
 * the etag the listing saw (a changed object is -ESTALE, never a mixture
 * of two versions).  The client's pool replaces connections the node closed
 * when it went away.
 *
 * Locking: one mutex per iterator guards slots, counters and stats; the
 * fetches themselves (network, copies into the buffer) run unlocked.
 *
 * Stopping: strata_epoch_free() sets stop (no new piece, no new attempt,
 * backoffs end) and fires the iterator's cancel (client_int.h), which the
 * fetch threads joined: a request they have in flight on a node that hangs
 * fails at once with -ECANCELED instead of after the client's timeout_ms.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "client_int.h"
#include "banned.h"

#define DEFAULT_PREFETCH 2
#define DEFAULT_PREFETCH_BYTES (256ull << 20)
#define DEFAULT_RETRIES 10
#define DEFAULT_BACKOFF_MS 100
#define MAX_BACKOFF_MS 2000
#define DEFAULT_HINT_WINDOW 256
/* Keys list bytes per HINT, as for BATCH_GET (objects.c). */
#define HINT_LIST_MAX 65000u

#define GOLDEN 0x9e3779b97f4a7c15ull

/* With pieces (piece_size > RAMP_PIECE), the plan's first shard is read in
 * growing pieces, RAMP_PIECE, twice that, ..., up to piece_size: a tar
 * parser then starts on the first MiB instead of waiting for a whole
 * first piece, while the window behind it fills (a PyTorch DataLoader's
 * first batch of 4 KiB samples from 32 MiB shards came at 140-230 ms, at
 * 50-60 ms with the ramp, on 2 shared cores).  The ramp adds at most
 * RAMP_STEPS pieces (sizes doubling from 1 MiB pass any uint64_t
 * piece_size within 44 steps). */
#define RAMP_PIECE (1ull << 20)
#define RAMP_STEPS 44

#define HUGE_PAGE ((size_t)2 << 20)

/* ---- Datasets ----------------------------------------------------------- */

struct ds_shard {
	char *key;
	uint64_t size;
	uint8_t etag[STRATA_ETAG_LEN];
};

struct strata_dataset {
	char *bucket;
	struct ds_shard *shards;
	size_t n;
};

static int shard_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ds_shard *)a)->key,
		      ((const struct ds_shard *)b)->key);
}

int strata_dataset_open(strata_client *c, const char *bucket,
			const char *prefix, strata_dataset **out)
{
	return strata_dataset_open_suffix(c, bucket, prefix, NULL, out);
}

/* Whether key ends with suffix (NULL or "": every key does). */
static bool has_suffix(const char *key, const char *suffix, size_t slen)
{
	size_t klen = strlen(key);

	return !slen || (klen >= slen &&
			 memcmp(key + klen - slen, suffix, slen) == 0);
}

int strata_dataset_open_suffix(strata_client *c, const char *bucket,
			       const char *prefix, const char *suffix,
			       strata_dataset **out)
{
	struct strata_list_opts lo = { .prefix = prefix };
	const struct strata_list_entry *le;
	strata_list *it = NULL;
	strata_dataset *ds;
	size_t cap = 0, i, slen = suffix ? strlen(suffix) : 0;
	bool sorted = true;
	int rc;

	if (out)
		*out = NULL;
	if (!c || !bucket || !out || slen > PROTO_MAX_KEY_LEN)
		return -EINVAL;
	ds = calloc(1, sizeof(*ds));
	if (!ds)
		return -ENOMEM;
	ds->bucket = strdup(bucket);
	rc = ds->bucket ? strata_list_new(c, bucket, &lo, &it) : -ENOMEM;
	while (!rc && (rc = strata_list_next(it, &le)) == 1) {
		struct ds_shard *s;

		rc = 0;
		if (!le->key || !has_suffix(le->key, suffix, slen))
			continue;
		if (ds->n == cap) {
			size_t ncap = cap ? 2 * cap : 256;

			s = realloc(ds->shards, ncap * sizeof(*s));
			if (!s) {
				rc = -ENOMEM;
				break;
			}
			ds->shards = s;
			cap = ncap;
		}
		s = &ds->shards[ds->n];
		s->key = strdup(le->key);
		if (!s->key) {
			rc = -ENOMEM;
			break;
		}
		s->size = le->size;
		memcpy(s->etag, le->etag, STRATA_ETAG_LEN);
		if (ds->n && strcmp(ds->shards[ds->n - 1].key, s->key) >= 0)
			sorted = false;
		ds->n++;
	}
	strata_list_free(it);
	if (rc) {
		strata_dataset_free(ds);
		return rc;
	}
	/* The server lists in key order; a plan must not depend on it. */
	if (!sorted) {
		qsort(ds->shards, ds->n, sizeof(*ds->shards), shard_cmp);
		for (i = 1; i < ds->n; i++)
			if (!strcmp(ds->shards[i - 1].key, ds->shards[i].key)) {
				strata_dataset_free(ds);
				return STRATA_EPROTO;
			}
	}
	*out = ds;
	return 0;
}

size_t strata_dataset_count(const strata_dataset *ds)
{
	return ds ? ds->n : 0;
}

const char *strata_dataset_key(const strata_dataset *ds, size_t i,
			       uint64_t *size)
{
	if (!ds || i >= ds->n)
		return NULL;
	if (size)
		*size = ds->shards[i].size;
	return ds->shards[i].key;
}

const uint8_t *strata_dataset_etag(const strata_dataset *ds, size_t i)
{
	if (!ds || i >= ds->n)
		return NULL;
	return ds->shards[i].etag;
}

void strata_dataset_free(strata_dataset *ds)
{
	if (!ds)
		return;
	for (size_t i = 0; i < ds->n; i++)
		free(ds->shards[i].key);
	free(ds->shards);
	free(ds->bucket);
	free(ds);
}

/* ---- Plans -------------------------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* splitmix64: the next word of the stream in *x. */
static uint64_t next64(uint64_t *x)
{
	*x += GOLDEN;
	return mix64(*x);
}

/* Uniform in [0, bound), bound > 0, without modulo bias. */
static uint64_t below(uint64_t *x, uint64_t bound)
{
	uint64_t limit = UINT64_MAX - UINT64_MAX % bound, r;

	do
		r = next64(x);
	while (r >= limit);
	return r % bound;
}

static int plan_check(const struct strata_epoch_opts *o, unsigned *w,
		      unsigned *k)
{
	*w = o->world_size ? o->world_size : 1;
	*k = o->num_workers ? o->num_workers : 1;
	if (o->rank >= *w || o->worker >= *k ||
	    (o->uneven != STRATA_UNEVEN_SHARE &&
	     o->uneven != STRATA_UNEVEN_DROP &&
	     o->uneven != STRATA_UNEVEN_PAD))
		return -EINVAL;
	return 0;
}

int strata_dataset_plan(size_t nshards, const struct strata_epoch_opts *o,
			size_t *idx, size_t cap, size_t *n)
{
	size_t *perm = NULL, m, j, count = 0;
	unsigned w, k;
	int rc;

	if (!o || !n || (cap && !idx))
		return -EINVAL;
	rc = plan_check(o, &w, &k);
	if (rc)
		return rc;
	*n = 0;
	if (!nshards)
		return 0;
	perm = malloc(nshards * sizeof(*perm));
	if (!perm)
		return -ENOMEM;
	for (j = 0; j < nshards; j++)
		perm[j] = j;
	if (!o->no_shuffle) {
		/* Fisher-Yates, driven by splitmix64 from (seed, epoch). */
		uint64_t x = o->seed ^ mix64(o->epoch + GOLDEN);

		for (j = nshards - 1; j > 0; j--) {
			size_t r = (size_t)below(&x, (uint64_t)j + 1), t;

			t = perm[j];
			perm[j] = perm[r];
			perm[r] = t;
		}
	}
	switch (o->uneven) {
	case STRATA_UNEVEN_DROP:
		m = nshards - nshards % w;
		break;
	case STRATA_UNEVEN_PAD:
		m = (nshards + w - 1) / w * w;
		break;
	default:
		m = nshards;
		break;
	}
	/* Rank r takes positions r, r + w, ...; its worker q takes every
	 * k-th of those, from its q-th.  Padding wraps around the order. */
	for (j = o->rank; j < m; j += w) {
		if (((j - o->rank) / w) % k != o->worker)
			continue;
		if (count < cap)
			idx[count] = perm[j % nshards];
		count++;
	}
	free(perm);
	*n = count;
	return count > cap ? -ENOBUFS : 0;
}

/* ---- Hints -------------------------------------------------------------- */

struct hint_call {
	const char *bucket;
	struct proto_list keys;
};

static int hint_fn(struct conn *cn, void *arg, bool *unsafe)
{
	struct hint_call *hc = arg;
	struct proto_keys_req m = {
		.bucket = { hc->bucket, strlen(hc->bucket) },
		.keys = hc->keys,
	};
	struct resp r;
	size_t len;
	int rc;

	(void)unsafe;
	rc = proto_keys_req_encode(&m, cn->out + PROTO_HEADER_LEN,
				   PROTO_MAX_FIELDS_LEN, &len);
	if (rc)
		return rc == -EINVAL ? STRATA_EBADBUCKET : rc;
	rc = req_call(cn, PROTO_OP_HINT, len, &r);
	if (!rc && (rc = proto_empty_decode(cn->fields, r.fields_len)) != 0)
		conn_break(cn);
	/* A node that answers with a body (a later revision) is read to the
	 * end, so the connection stays usable. */
	if (!rc && cn->reading)
		rc = resp_drain(cn, &r);
	return rc;
}

int strata_hint(strata_client *c, const char *bucket, const char *const *keys,
		size_t nkeys)
{
	struct hint_call hc = { .bucket = bucket };
	struct proto_str *elems;
	uint8_t *enc = NULL;
	size_t i, start, need = 0;
	int rc = 0;

	if (!c || !bucket || (!keys && nkeys))
		return -EINVAL;
	if (strlen(bucket) < 3 || strlen(bucket) > PROTO_MAX_BUCKET_LEN)
		return STRATA_EBADBUCKET;
	if (!nkeys)
		return 0;
	elems = malloc(nkeys * sizeof(*elems));
	if (!elems)
		return -ENOMEM;
	for (i = 0; i < nkeys; i++) {
		size_t l = keys[i] ? strlen(keys[i]) : 0;

		if (!l || l > PROTO_MAX_KEY_LEN) {
			rc = STRATA_EBADKEY;
			goto out;
		}
		elems[i].s = keys[i];
		elems[i].len = l;
		need = need > 2 + l ? need : 2 + l;
	}
	enc = malloc(HINT_LIST_MAX > need ? HINT_LIST_MAX : need);
	if (!enc) {
		rc = -ENOMEM;
		goto out;
	}
	for (start = 0; start < nkeys && !rc; start = i) {
		size_t bytes = 0;

		for (i = start; i < nkeys && i - start < PROTO_MAX_BATCH_KEYS &&
		     (i == start || bytes + 2 + elems[i].len <= HINT_LIST_MAX);
		     i++)
			bytes += 2 + elems[i].len;
		rc = proto_list_build(enc, bytes, elems + start, i - start,
				      &hc.keys);
		if (rc) {
			rc = STRATA_EBADKEY;
			break;
		}
		rc = client_call(c, hint_fn, &hc);
	}
out:
	free(enc);
	free(elems);
	return rc;
}

/* ---- Epoch iterator ----------------------------------------------------- */

struct piece {
	size_t shard;
	uint64_t off, len;
	bool last;
};

enum slot_state { SLOT_EMPTY, SLOT_FETCHING, SLOT_READY };

struct slot {
	enum slot_state st;
	void *buf;
	uint64_t len;
	int rc;
	unsigned retries;
	uint64_t fetch_ns;
};

struct strata_epoch {
	strata_client *c;
	const strata_dataset *ds;
	struct strata_epoch_opts o;
	struct piece *plan;
	size_t n;

	pthread_mutex_t lock;
	pthread_cond_t fetch_cond;	/* fetchers: room, or stop */
	pthread_cond_t ready_cond;	/* consumer: a slot became READY */
	struct slot *slots;
	unsigned nslots;
	size_t next_fetch;
	size_t consumed;
	unsigned fetching;		/* slots FETCHING */
	bool first_ready;		/* a piece was READY: fetch in parallel */
	uint64_t ahead;			/* bytes reserved, not handed over */
	bool stop;
	struct cancel cancel;		/* the fetch threads' requests */

	size_t hint_upto;		/* pieces [0, hint_upto) hinted */
	bool hint_busy, hint_off;

	pthread_t *threads;
	unsigned nthreads;
	struct strata_epoch_stats stats;

	/* Buffers given back through strata_epoch_buf_free(), kept for the
	 * next pieces (default allocator only): a fresh 64 MiB malloc() is
	 * an mmap() and 16,384 page faults, every shard. */
	struct spare { void *p; size_t cap; } *spare;
	unsigned nspare, spare_max;
};

/* A transport failure that a later attempt may not meet: the node went
 * away, restarted or stalled. */
static bool retryable(int rc)
{
	switch (rc) {
	case -ECONNREFUSED: case -ECONNRESET: case -ECONNABORTED:
	case -EPIPE: case -ETIMEDOUT: case -EHOSTUNREACH: case -ENETUNREACH:
	case -ENOTCONN: case -EAGAIN: case -EPROTO: case STRATA_ECLOSING:
		return true;
	default:
		return false;
	}
}

/* Send the hint for the next window when piece i comes within half a
 * window of its end.  Errors only turn hints off (-EOPNOTSUPP) or are
 * dropped: a hint is never worth failing a read. */
static void hint_maybe(strata_epoch *e, size_t i)
{
	const char **keys;
	size_t from, to, nk = 0, j, win = e->o.hint_window;
	int rc;

	pthread_mutex_lock(&e->lock);
	if (e->hint_off || e->hint_busy || e->hint_upto >= e->n ||
	    i + win / 2 < e->hint_upto) {
		pthread_mutex_unlock(&e->lock);
		return;
	}
	e->hint_busy = true;
	from = e->hint_upto;
	pthread_mutex_unlock(&e->lock);

	keys = malloc(win * sizeof(*keys));
	for (j = from; keys && j < e->n && nk < win; j++) {
		if (j > from && e->plan[j].shard == e->plan[j - 1].shard)
			continue;
		keys[nk++] = e->ds->shards[e->plan[j].shard].key;
	}
	to = j;
	rc = keys ? strata_hint(e->c, e->ds->bucket, keys, nk) : -ENOMEM;
	free(keys);

	pthread_mutex_lock(&e->lock);
	e->hint_busy = false;
	e->hint_upto = to;
	if (!rc) {
		e->stats.hints++;
		e->stats.hint_keys += nk;
	} else if (rc == -EOPNOTSUPP) {
		e->hint_off = true;
	}
	pthread_mutex_unlock(&e->lock);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* *ts = ms from now on CLOCK_REALTIME (pthread_cond_timedwait's clock). */
static void deadline_in(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Sleep ms unless the iterator stops first; true when it stopped. */
static bool backoff(strata_epoch *e, unsigned ms)
{
	struct timespec ts;
	bool stop;

	deadline_in(&ts, ms);
	pthread_mutex_lock(&e->lock);
	while (!e->stop &&
	       pthread_cond_timedwait(&e->fetch_cond, &e->lock, &ts) == 0)
		;
	stop = e->stop;
	pthread_mutex_unlock(&e->lock);
	return stop;
}

static bool stopping(strata_epoch *e)
{
	bool stop;

	pthread_mutex_lock(&e->lock);
	stop = e->stop;
	pthread_mutex_unlock(&e->lock);
	return stop;
}

/* A new piece buffer, for free() as the API promises.  One of 2 MiB or
 * more is aligned to 2 MiB and asked to be backed by transparent huge
 * pages: its first fill then takes one page fault per 2 MiB instead of one
 * per 4 KiB (strata-bench --workload dataset-epoch, 2 workers, three
 * epochs of 16 x 32 MiB: ~150,000 page faults and 2.6-3.0 CPU-s in the
 * client before, ~8,000 and 2.3-2.6 with huge pages). */
static void *piece_alloc(size_t len)
{
	void *p;

	if (len < HUGE_PAGE)
		return malloc(len);
	if (posix_memalign(&p, HUGE_PAGE, len))
		return NULL;
	(void)madvise(p, len & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
	return p;
}

/* A spare buffer of at least len bytes (the smallest), else a new one. */
static void *spare_take(strata_epoch *e, size_t len)
{
	unsigned i, best = UINT_MAX;
	void *p = NULL;

	pthread_mutex_lock(&e->lock);
	for (i = 0; i < e->nspare; i++)
		if (e->spare[i].cap >= len &&
		    (best == UINT_MAX || e->spare[i].cap < e->spare[best].cap))
			best = i;
	if (best != UINT_MAX) {
		p = e->spare[best].p;
		e->spare[best] = e->spare[--e->nspare];
	}
	pthread_mutex_unlock(&e->lock);
	return p ? p : piece_alloc(len);
}

static void fetch_piece(strata_epoch *e, const struct piece *pc,
			struct slot *sl)
{
	const struct ds_shard *sh = &e->ds->shards[pc->shard];
	unsigned attempt = 0, delay = e->o.backoff_ms;
	uint64_t t0 = now_ns(), have = 0;
	uint8_t *buf = NULL;
	int rc;

	sl->buf = NULL;
	sl->retries = 0;
	if (pc->len) {
		buf = e->o.alloc_fn ?
		      e->o.alloc_fn(e->o.alloc_arg, (size_t)pc->len) :
		      spare_take(e, (size_t)pc->len);
		if (!buf) {
			sl->rc = -ENOMEM;
			sl->fetch_ns = now_ns() - t0;
			return;
		}
	}
	for (;;) {
		struct strata_get_result res;
		size_t got = 0;

		/* An iterator being freed starts no request (the hint before
		 * this fetch may have taken a timeout to fail). */
		if (stopping(e)) {
			rc = -ECANCELED;
			break;
		}
		/* Straight into the piece's buffer, no bounce copy. */
		memset(&res, 0, sizeof(res));
		rc = client_get_into(e->c, e->ds->bucket, sh->key,
				     pc->off + have, pc->len - have,
				     buf ? buf + have : NULL,
				     (size_t)(pc->len - have), &got, &res);
		/* Bytes of a version other than the listed one are never
		 * kept, nor mixed with the listed one's. */
		if ((got || !rc) &&
		    memcmp(res.etag, sh->etag, STRATA_ETAG_LEN)) {
			rc = -ESTALE;
			got = 0;
		}
		have += got;
		if (!rc && (have != pc->len || res.size != sh->size))
			rc = -ESTALE;
		if (rc == -ENOBUFS)	/* longer than listed */
			rc = -ESTALE;
		if (!rc || !retryable(rc) || attempt >= e->o.retries)
			break;
		attempt++;
		sl->retries++;
		if (backoff(e, delay)) {
			rc = -ECANCELED;
			break;
		}
		delay = delay * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : delay * 2;
	}
	if (rc && buf) {
		if (e->o.alloc_fn)
			e->o.free_fn(e->o.alloc_arg, buf, (size_t)pc->len);
		else
			free(buf);
		buf = NULL;
	}
	sl->buf = buf;
	sl->len = pc->len;
	sl->rc = rc;
	sl->fetch_ns = now_ns() - t0;
}

static void fetch_loop(strata_epoch *e)
{
	for (;;) {
		struct slot *sl;
		size_t i;

		pthread_mutex_lock(&e->lock);
		for (;;) {
			if (e->stop || e->next_fetch >= e->n) {
				pthread_mutex_unlock(&e->lock);
				return;
			}
			i = e->next_fetch;
			if (i < e->consumed + e->nslots &&
			    (!e->ahead || e->ahead + e->plan[i].len <=
			     e->o.prefetch_bytes) &&
			    (e->first_ready || !e->fetching))
				break;
			pthread_cond_wait(&e->fetch_cond, &e->lock);
		}
		e->next_fetch++;
		e->ahead += e->plan[i].len;
		e->fetching++;
		sl = &e->slots[i % e->nslots];
		sl->st = SLOT_FETCHING;
		pthread_mutex_unlock(&e->lock);

		if (!e->o.no_hint)
			hint_maybe(e, i);
		fetch_piece(e, &e->plan[i], sl);

		pthread_mutex_lock(&e->lock);
		sl->st = SLOT_READY;
		e->fetching--;
		e->stats.retries += sl->retries;
		pthread_cond_broadcast(&e->ready_cond);
		if (!e->first_ready) {
			e->first_ready = true;
			pthread_cond_broadcast(&e->fetch_cond);
		}
		pthread_mutex_unlock(&e->lock);
	}
}

static void *fetch_main(void *arg)
{
	strata_epoch *e = arg;
	struct cancel_member me;

	/* Every request of this thread (hints, gets, the connections they
	 * open) can be cut short by strata_epoch_free(). */
	cancel_join(&e->cancel, &me);
	fetch_loop(e);
	cancel_leave();
	return NULL;
}

static int plan_pieces(strata_epoch *e)
{
	size_t ns = 0, i, np = 0, *idx;
	uint64_t piece = e->o.piece_size;
	int rc;

	rc = strata_dataset_plan(e->ds->n, &e->o, NULL, 0, &ns);
	if (rc && rc != -ENOBUFS)
		return rc;
	idx = malloc((ns ? ns : 1) * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	rc = strata_dataset_plan(e->ds->n, &e->o, idx, ns, &ns);
	/* The plan's first shard, cut into growing pieces: see RAMP_PIECE. */
	for (i = 0; !rc && i < ns; i++) {
		uint64_t sz = e->ds->shards[idx[i]].size;

		np += piece && sz > piece ? (size_t)((sz + piece - 1) / piece) :
		      1;
		if (i == 0 && piece > RAMP_PIECE && sz > RAMP_PIECE)
			np += RAMP_STEPS;
	}
	e->plan = rc ? NULL : malloc((np ? np : 1) * sizeof(*e->plan));
	if (!rc && !e->plan)
		rc = -ENOMEM;
	for (i = 0; !rc && i < ns; i++) {
		uint64_t sz = e->ds->shards[idx[i]].size, off = 0;
		uint64_t step = i == 0 && piece > RAMP_PIECE ? RAMP_PIECE :
				piece;

		do {
			struct piece *p = &e->plan[e->n++];
			uint64_t len = step && sz - off > step ? step :
				       sz - off;

			if (step && step < piece)
				step = step < piece / 2 ? step * 2 : piece;

			p->shard = idx[i];
			p->off = off;
			p->len = len;
			off += len;
			p->last = off == sz;
		} while (off < sz);
	}
	free(idx);
	return rc;
}

int strata_epoch_new(strata_client *c, const strata_dataset *ds,
		     const struct strata_epoch_opts *o, strata_epoch **out)
{
	struct strata_epoch_opts d = { 0 };
	strata_epoch *e;
	unsigned w, k, i;
	int rc;

	if (!c || !ds || !out)
		return -EINVAL;
	if (o)
		d = *o;
	rc = plan_check(&d, &w, &k);
	if (rc || (d.alloc_fn && !d.free_fn) ||
	    d.hint_window > PROTO_MAX_BATCH_KEYS)
		return -EINVAL;
	if (!d.prefetch)
		d.prefetch = DEFAULT_PREFETCH;
	if (!d.prefetch_bytes)
		d.prefetch_bytes = DEFAULT_PREFETCH_BYTES;
	if (!d.retries)
		d.retries = DEFAULT_RETRIES;
	else if (d.retries == STRATA_NO_RETRY)
		d.retries = 0;
	if (!d.backoff_ms)
		d.backoff_ms = DEFAULT_BACKOFF_MS;
	if (!d.hint_window)
		d.hint_window = DEFAULT_HINT_WINDOW;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->c = c;
	e->ds = ds;
	e->o = d;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->fetch_cond, NULL);
	pthread_cond_init(&e->ready_cond, NULL);
	cancel_init(&e->cancel);
	rc = plan_pieces(e);
	if (rc)
		goto fail;
	e->nslots = d.prefetch;
	e->slots = calloc(e->nslots, sizeof(*e->slots));
	e->threads = calloc(e->nslots, sizeof(*e->threads));
	e->spare_max = d.alloc_fn ? 0 : e->nslots + 1;
	e->spare = calloc(e->spare_max + 1, sizeof(*e->spare));
	if (!e->slots || !e->threads || !e->spare) {
		rc = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < e->nslots && i < e->n; i++) {
		if (pthread_create(&e->threads[i], NULL, fetch_main, e) != 0)
			break;
		e->nthreads++;
	}
	if (e->n && !e->nthreads) {
		rc = -EAGAIN;
		goto fail;
	}
	*out = e;
	return 0;
fail:
	strata_epoch_free(e);
	return rc;
}

int strata_epoch_wait(strata_epoch *e, unsigned timeout_ms)
{
	struct timespec ts;
	uint64_t t0;
	int ready;

	if (!e)
		return -EINVAL;
	deadline_in(&ts, timeout_ms);
	t0 = now_ns();
	pthread_mutex_lock(&e->lock);
	for (;;) {
		ready = e->consumed >= e->n ||
			e->slots[e->consumed % e->nslots].st == SLOT_READY;
		if (ready || pthread_cond_timedwait(&e->ready_cond, &e->lock,
						    &ts) != 0)
			break;
	}
	/* Waited here rather than in strata_epoch_next(): counted alike. */
	e->stats.wait_ns += now_ns() - t0;
	ready = e->consumed >= e->n ||
		e->slots[e->consumed % e->nslots].st == SLOT_READY;
	pthread_mutex_unlock(&e->lock);
	return ready;
}

int strata_epoch_next(strata_epoch *e, struct strata_shard *sh)
{
	const struct piece *pc;
	struct slot *sl;
	int rc;

	if (!e || !sh)
		return -EINVAL;
	memset(sh, 0, sizeof(*sh));
	pthread_mutex_lock(&e->lock);
	if (e->consumed >= e->n) {
		pthread_mutex_unlock(&e->lock);
		return 0;
	}
	pc = &e->plan[e->consumed];
	sl = &e->slots[e->consumed % e->nslots];
	if (sl->st != SLOT_READY) {
		uint64_t t0 = now_ns();

		while (sl->st != SLOT_READY)
			pthread_cond_wait(&e->ready_cond, &e->lock);
		e->stats.wait_ns += now_ns() - t0;
	}
	sh->index = pc->shard;
	sh->seq = e->consumed;
	sh->key = e->ds->shards[pc->shard].key;
	sh->size = e->ds->shards[pc->shard].size;
	sh->offset = pc->off;
	sh->last = pc->last;
	sh->retries = sl->retries;
	sh->fetch_ns = sl->fetch_ns;
	rc = sl->rc;
	if (!rc) {
		sh->data = sl->buf;
		sh->length = sl->len;
		e->stats.pieces++;
		e->stats.bytes += sl->len;
	} else {
		e->stats.failed++;
	}
	sl->buf = NULL;
	sl->st = SLOT_EMPTY;
	e->ahead -= pc->len;
	e->consumed++;
	pthread_cond_broadcast(&e->fetch_cond);
	pthread_mutex_unlock(&e->lock);
	return rc ? rc : 1;
}

void strata_epoch_buf_free(strata_epoch *e, void *data, size_t length)
{
	if (!data)
		return;
	if (e && e->o.alloc_fn) {
		e->o.free_fn(e->o.alloc_arg, data, length);
		return;
	}
	if (e) {
		/* What the buffer holds, not what this piece used: a spare
		 * may have served a smaller piece. */
		size_t cap = malloc_usable_size(data);
		unsigned i, small = 0;

		/* Keep the largest: the ramp's pieces (RAMP_PIECE) come first
		 * and are smaller than the rest. */
		pthread_mutex_lock(&e->lock);
		if (e->nspare < e->spare_max) {
			e->spare[e->nspare].p = data;
			e->spare[e->nspare].cap = cap;
			e->nspare++;
			data = NULL;
		} else if (e->nspare) {
			for (i = 1; i < e->nspare; i++)
				if (e->spare[i].cap < e->spare[small].cap)
					small = i;
			if (e->spare[small].cap < cap) {
				void *p = e->spare[small].p;

				e->spare[small].p = data;
				e->spare[small].cap = cap;
				data = p;
			}
		}
		pthread_mutex_unlock(&e->lock);
	}
	free(data);
}

void strata_epoch_stats(strata_epoch *e, struct strata_epoch_stats *st)
{
	if (!e || !st)
		return;
	pthread_mutex_lock(&e->lock);
	*st = e->stats;
	pthread_mutex_unlock(&e->lock);
}

void strata_epoch_free(strata_epoch *e)
{
	unsigned i;

	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->stop = true;
	pthread_cond_broadcast(&e->fetch_cond);
	pthread_mutex_unlock(&e->lock);
	/* A request in flight would take up to the client's timeout_ms from
	 * a node that hangs, and retries may follow: cut them short. */
	cancel_fire(e->c, &e->cancel);
	for (i = 0; i < e->nthreads; i++)
		pthread_join(e->threads[i], NULL);
	for (i = 0; e->slots && i < e->nslots; i++)
		if (e->slots[i].buf)
			strata_epoch_buf_free(e, e->slots[i].buf,
					      (size_t)e->slots[i].len);
	for (i = 0; i < e->nspare; i++)
		free(e->spare[i].p);
	free(e->spare);
	free(e->threads);
	free(e->slots);
	free(e->plan);
	cancel_release(&e->cancel);
	pthread_cond_destroy(&e->ready_cond);
	pthread_cond_destroy(&e->fetch_cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
}
