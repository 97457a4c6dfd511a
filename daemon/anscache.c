// SPDX-License-Identifier: Apache-2.0
/*
 * anscache: answers to small GETs on the I/O loops (see anscache.h).
 *
 * Invariants
 * - An entry is sent only if its generation is its bucket's
 *   store_answer_gen() as read after the request frame arrived
 *   (anscache.h: writes are acknowledged only after the generation moved
 *   past what they replaced).
 * - The I/O loop's frame cutter sees every byte of the connection, in
 *   order, from the first; what it does not answer it forwards, in order,
 *   unchanged.  It never buffers more than ANSCACHE_MAX_REQUEST bytes per
 *   connection, and only a frame that may be a GET it can answer.
 * - Slots are guarded by stripe locks; an entry is immutable once in a
 *   slot and freed only by whoever took it out, under the lock.  No
 *   thread holds two stripe locks at once.
 * - Full, a put first frees entries at a clock hand that sweeps the
 *   slots (about as many bytes as it needs, at most EVICT_STEPS slots):
 *   old answers make room for new ones, whatever their slots.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "anscache.h"
#include "proto.h"
#include "banned.h"

#define STRIPES 64u
#define EVICT_STEPS 64u

struct entry {
	uint64_t bid;			/* its bucket's id ... */
	uint64_t gen;			/* ... and answer generation */
	size_t size;			/* counted against the budget */
	uint8_t blen_bucket;
	uint16_t keylen;
	uint16_t flen;
	uint32_t blen;
	uint8_t data[];			/* bucket, key, fields, body */
};

struct anscache {
	struct store *s;
	size_t budget;
	struct entry **slots;
	size_t nslots;			/* a power of two */
	pthread_mutex_t locks[STRIPES];
	atomic_bool on;
	size_t hand;			/* eviction's next slot (puts only) */
	atomic_size_t bytes, entries;
	atomic_uint_fast64_t hits, misses, fills;
	/* the GETs answered here, for metrics (anscache_fold) */
	atomic_uint_fast64_t bytes_out, proto_out, sum_ns;
	atomic_uint_fast64_t hist[METRICS_BUCKETS + 1];
};

/* What a failed allocation leaves: a cutter that forwards everything
 * (never written, never freed). */
static struct anscache_cutter pass_all = { .pass = true };

int anscache_new(size_t budget, struct store *s, struct anscache **out)
{
	struct anscache *a = calloc(1, sizeof(*a));
	size_t n = 64;

	if (!a)
		return -ENOMEM;
	/* About one slot per 4 KiB of budget: few collisions for small
	 * objects, without a slot array larger than what it indexes. */
	while (n < budget / 4096 && n < ((size_t)1 << 22))
		n *= 2;
	a->slots = calloc(n, sizeof(*a->slots));
	if (!a->slots) {
		free(a);
		return -ENOMEM;
	}
	a->nslots = n;
	a->budget = budget;
	a->s = s;
	for (unsigned i = 0; i < STRIPES; i++)
		pthread_mutex_init(&a->locks[i], NULL);
	atomic_store(&a->on, true);
	*out = a;
	return 0;
}

void anscache_free(struct anscache *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nslots; i++)
		free(a->slots[i]);
	for (unsigned i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&a->locks[i]);
	free(a->slots);
	free(a);
}

void anscache_set_enabled(struct anscache *a, bool on)
{
	atomic_store(&a->on, on);
}

static size_t slot_of(const struct anscache *a, const char *bucket,
		      size_t blen, const char *key, size_t keylen)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < blen; i++)
		h = (h ^ (uint8_t)bucket[i]) * 0x100000001b3ull;
	h = (h ^ 0xff) * 0x100000001b3ull;	/* no byte of a name */
	for (size_t i = 0; i < keylen; i++)
		h = (h ^ (uint8_t)key[i]) * 0x100000001b3ull;
	return (size_t)(h ^ (h >> 29)) & (a->nslots - 1);
}

static pthread_mutex_t *lock_of(struct anscache *a, size_t slot)
{
	return &a->locks[slot & (STRIPES - 1)];
}

void anscache_put(struct anscache *a, const char *bucket, const char *key,
		  size_t keylen, uint64_t bid, uint64_t gen,
		  const uint8_t *fields,
		  size_t flen, const uint8_t *body, size_t blen)
{
	size_t bl = strlen(bucket), size, slot;
	struct entry *e, *old;
	uint8_t *p;

	if (!a || blen > ANSCACHE_MAX_BODY || flen > ANSCACHE_MAX_FIELDS ||
	    bl > 255 || keylen > UINT16_MAX || !atomic_load(&a->on))
		return;
	size = sizeof(*e) + bl + keylen + flen + blen;
	e = malloc(size);
	if (!e)
		return;
	e->bid = bid;
	e->gen = gen;
	e->size = size;
	e->blen_bucket = (uint8_t)bl;
	e->keylen = (uint16_t)keylen;
	e->flen = (uint16_t)flen;
	e->blen = (uint32_t)blen;
	p = e->data;
	memcpy(p, bucket, bl);
	p += bl;
	if (keylen)
		memcpy(p, key, keylen);
	p += keylen;
	if (flen)
		memcpy(p, fields, flen);
	p += flen;
	if (blen)
		memcpy(p, body, blen);
	slot = slot_of(a, bucket, bl, key, keylen);
	/* Full: free what the hand passes until there is room. */
	for (unsigned i = 0; i < EVICT_STEPS &&
	     atomic_load(&a->bytes) + size > a->budget; i++) {
		size_t at = a->hand++ & (a->nslots - 1);
		struct entry *gone;

		pthread_mutex_lock(lock_of(a, at));
		gone = a->slots[at];
		a->slots[at] = NULL;
		if (gone) {
			atomic_fetch_sub(&a->bytes, gone->size);
			atomic_fetch_sub(&a->entries, 1);
		}
		pthread_mutex_unlock(lock_of(a, at));
		free(gone);
	}
	pthread_mutex_lock(lock_of(a, slot));
	old = a->slots[slot];
	a->slots[slot] = NULL;
	if (old) {
		atomic_fetch_sub(&a->bytes, old->size);
		atomic_fetch_sub(&a->entries, 1);
	}
	if (atomic_load(&a->bytes) + size <= a->budget) {
		a->slots[slot] = e;
		atomic_fetch_add(&a->bytes, size);
		atomic_fetch_add(&a->entries, 1);
		atomic_fetch_add(&a->fills, 1);
		e = NULL;
	}
	pthread_mutex_unlock(lock_of(a, slot));
	free(old);
	free(e);
}

void anscache_stats(struct anscache *a, struct anscache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!a)
		return;
	st->budget = a->budget;
	st->bytes = atomic_load(&a->bytes);
	st->entries = atomic_load(&a->entries);
	st->hits = atomic_load(&a->hits);
	st->misses = atomic_load(&a->misses);
	st->fills = atomic_load(&a->fills);
}

void anscache_fold(struct anscache *a, struct metrics_op *get,
		   uint64_t *sent)
{
	if (!a)
		return;
	get->ok += atomic_load(&a->hits);
	get->bytes_out += atomic_load(&a->bytes_out);
	get->sum_ns += atomic_load(&a->sum_ns);
	for (unsigned b = 0; b <= METRICS_BUCKETS; b++)
		get->hist[b] += atomic_load(&a->hist[b]);
	*sent += atomic_load(&a->proto_out);
}

/* ---- the I/O loops' side ---- */

size_t anscache_lookup(struct anscache *a, uint64_t id, const char *bucket,
		       size_t blen, const char *key, size_t keylen,
		       uint8_t out[ANSCACHE_MAX_ANSWER], size_t *body)
{
	struct proto_header rh = {
		.opcode = PROTO_OP_GET,
		.flags = PROTO_F_RESPONSE | PROTO_F_END,
		.id = id,
	};
	const struct entry *e;
	size_t slot, len = 0;
	pthread_mutex_t *mu;

	slot = slot_of(a, bucket, blen, key, keylen);
	mu = lock_of(a, slot);
	pthread_mutex_lock(mu);
	/* Read now, after the request came: any write answered before it
	 * was sent has moved it. */
	e = a->slots[slot];
	if (e && e->gen == store_answer_gen(a->s, e->bid) &&
	    e->blen_bucket == blen &&
	    e->keylen == keylen && !memcmp(e->data, bucket, blen) &&
	    !memcmp(e->data + e->blen_bucket, key, keylen)) {
		rh.fields_len = e->flen;
		rh.body_len = e->blen;
		len = PROTO_HEADER_LEN + e->flen + e->blen;
		memcpy(out + PROTO_HEADER_LEN,
		       e->data + e->blen_bucket + e->keylen, e->flen + e->blen);
	}
	pthread_mutex_unlock(mu);
	if (!len || proto_header_encode(&rh, out))
		return 0;
	*body = rh.body_len;
	return len;
}

/*
 * Answer the GET in frame (h, its fields) from the table.  Returns true
 * when it was answered (or the connection is closing and nothing can be),
 * false when the engine must see it.
 */
static bool answer(struct anscache *a, struct net_conn *c,
		   const struct proto_header *h, const uint8_t *fields)
{
	uint8_t out[ANSCACHE_MAX_ANSWER];
	struct proto_get_req req;
	uint64_t t0 = uv_hrtime(), ns;
	size_t len, body = 0;

	if (!atomic_load(&a->on) || !net_conn_io_ok(c) ||
	    net_conn_io_congested(c))
		return false;
	if (proto_get_req_decode(fields, h->fields_len, &req) ||
	    (req.has_offset && req.offset) || req.has_length)
		return false;	/* the engine answers (errors, ranges) */
	len = anscache_lookup(a, h->id, req.bucket.s, req.bucket.len,
			      req.key.s, req.key.len, out, &body);
	if (!len) {
		atomic_fetch_add_explicit(&a->misses, 1, memory_order_relaxed);
		return false;
	}
	/* An error here means the connection is closing: nothing more can
	 * be sent on it, by us or by the engine. */
	(void)net_conn_io_write(c, out, len);
	ns = uv_hrtime() - t0;
	atomic_fetch_add_explicit(&a->hits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&a->bytes_out, body, memory_order_relaxed);
	atomic_fetch_add_explicit(&a->proto_out, len, memory_order_relaxed);
	atomic_fetch_add_explicit(&a->sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&a->hist[metrics_bucket(ns)], 1,
				  memory_order_relaxed);
	return true;
}

/* A frame the table may answer: a whole GET request in one frame. */
static bool candidate(const struct proto_header *h)
{
	return h->opcode == PROTO_OP_GET && h->flags == PROTO_F_END &&
	       h->body_len == 0 &&
	       PROTO_HEADER_LEN + (size_t)h->fields_len <= ANSCACHE_MAX_REQUEST;
}

static size_t frame_len(const struct proto_header *h)
{
	return PROTO_HEADER_LEN + (size_t)h->fields_len + h->body_len;
}

/* Forwarding gathers contiguous runs of the input into one call. */
struct fwd {
	const struct anscache_cut_ops *ops;
	void *arg;
	const uint8_t *p;
	size_t n;
};

static void fwd_flush(struct fwd *f)
{
	if (f->n)
		f->ops->forward(f->arg, f->p, f->n);
	f->n = 0;
}

static void fwd_add(struct fwd *f, const uint8_t *p, size_t n)
{
	if (f->n && f->p + f->n == p) {
		f->n += n;
		return;
	}
	fwd_flush(f);
	f->p = p;
	f->n = n;
}

/* What k->hold gathered is settled: a header that is not a candidate's,
 * or a candidate's whole frame.  Answer it or pass it on. */
static void held_frame(struct anscache_cutter *k, struct fwd *f)
{
	struct proto_header h;

	fwd_flush(f);
	if (proto_header_decode(k->hold, k->hlen, &h)) {
		k->pass = true;
		f->ops->forward(f->arg, k->hold, k->hlen);
	} else if (!candidate(&h)) {
		f->ops->forward(f->arg, k->hold, k->hlen);
		k->skip = frame_len(&h) - k->hlen;
	} else if (!f->ops->answer(f->arg, &h, k->hold + PROTO_HEADER_LEN)) {
		f->ops->forward(f->arg, k->hold, k->hlen);
	}
	k->hlen = 0;
}

void anscache_cutter_init(struct anscache_cutter *k)
{
	k->skip = 0;
	k->hlen = 0;
	k->pass = false;
}

void anscache_cut(struct anscache_cutter *k, const uint8_t *p, size_t n,
		  const struct anscache_cut_ops *ops, void *arg)
{
	struct fwd f = { .ops = ops, .arg = arg };

	while (n) {
		struct proto_header h;
		size_t take;
		int rc;

		if (k->pass) {
			fwd_add(&f, p, n);
			break;
		}
		if (k->skip) {
			take = k->skip < n ? (size_t)k->skip : n;
			fwd_add(&f, p, take);
			k->skip -= take;
			p += take;
			n -= take;
			continue;
		}
		if (k->hlen) {
			/* Gathering: first the header, then, a candidate's,
			 * the rest of its frame (what hold keeps past the
			 * header is always a candidate's). */
			size_t want = PROTO_HEADER_LEN;

			if (k->hlen >= PROTO_HEADER_LEN &&
			    !proto_header_decode(k->hold, k->hlen, &h))
				want = frame_len(&h);
			take = want - k->hlen < n ? want - k->hlen : n;
			memcpy(k->hold + k->hlen, p, take);
			k->hlen += take;
			p += take;
			n -= take;
			if (k->hlen < want)
				continue;	/* n is 0 */
			if (want == PROTO_HEADER_LEN &&
			    !proto_header_decode(k->hold, k->hlen, &h) &&
			    candidate(&h) && frame_len(&h) > k->hlen)
				continue;	/* its fields are to come */
			held_frame(k, &f);
			continue;
		}
		rc = proto_header_decode(p, n, &h);
		if (rc == -EAGAIN || (!rc && candidate(&h) &&
				      n < frame_len(&h))) {
			/* A header, or a candidate's frame, cut by the
			 * read: gather it (it fits: ANSCACHE_MAX_REQUEST). */
			fwd_flush(&f);
			memcpy(k->hold, p, n);
			k->hlen = n;
			break;
		}
		if (rc) {
			k->pass = true;
			continue;
		}
		take = frame_len(&h);
		if (candidate(&h)) {
			fwd_flush(&f);
			if (!ops->answer(arg, &h, p + PROTO_HEADER_LEN))
				fwd_add(&f, p, take);
			p += take;
			n -= take;
			continue;
		}
		if (take > n) {
			k->skip = take - n;
			take = n;
		}
		fwd_add(&f, p, take);
		p += take;
		n -= take;
	}
	fwd_flush(&f);
}

/* The connection's side of the cutter's operations. */
struct io_arg {
	struct anscache *a;
	struct net_conn *c;
};

static void io_forward(void *arg, const uint8_t *p, size_t n)
{
	struct io_arg *x = arg;

	net_conn_io_forward(x->c, p, n);
}

static bool io_answer(void *arg, const struct proto_header *h,
		      const uint8_t *fields)
{
	struct io_arg *x = arg;

	return answer(x->a, x->c, h, fields);
}

void anscache_io_input(struct anscache *a, struct net_conn *c,
		       const uint8_t *p, size_t n)
{
	static const struct anscache_cut_ops ops = {
		.forward = io_forward,
		.answer = io_answer,
	};
	struct anscache_cutter *k = net_conn_io_state(c);
	struct io_arg x = { .a = a, .c = c };

	if (!a) {
		net_conn_io_forward(c, p, n);
		return;
	}
	if (!k) {
		k = malloc(sizeof(*k));
		if (k)
			anscache_cutter_init(k);
		else
			k = &pass_all;
		net_conn_io_set_state(c, k);
	}
	anscache_cut(k, p, n, &ops, &x);
}

void anscache_io_state_free(void *state)
{
	if (state != &pass_all)
		free(state);
}
