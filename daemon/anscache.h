// SPDX-License-Identifier: Apache-2.0
/*
 * anscache: answers to GETs of small objects, kept where the I/O loops can
 * send them without a hop to the engine's loop.
 *
 * The engine (store and server.c) runs on one loop; with many cores that
 * loop is what limits small GETs (measured on 16 cores: 117k GETs/s of 4
 * KiB, the main loop busy, the I/O loops not).  So the I/O loops cut the
 * frames of their connections' input themselves (anscache_io_input, net's
 * io_input): a whole-object GET whose answer is in this table is answered
 * on the I/O loop; every other frame goes on to server.c as before, in
 * order.
 *
 * What is kept: the response fields and body of a whole-object GET of an
 * object kept inline in the index (at most ANSCACHE_MAX_BODY bytes), put
 * by server.c when it answers one (anscache_put), tagged with its
 * bucket's answer generation read at the lookup (store_answer_gen).  A
 * commit round moves the generation of every bucket it puts or deletes
 * objects in (of all, for a bucket change) before its batch reaches the
 * index and again before any write it holds is acknowledged, and an entry
 * is served only while its generation is the current one: a GET that
 * comes after a put's or delete's answer never sees what it replaced,
 * nor one that comes after another client read the new version.  (A
 * write to a bucket makes every entry of that bucket, and of the few
 * buckets sharing its slot, stale until server.c answers those GETs
 * again.)
 *
 * Inline objects have no chunks in segments, so answering them here skips
 * nothing of tiering (no heat, no prestaging, no reads).  The table is
 * direct-mapped (one entry per slot, a newer answer replaces what its slot
 * held) under 64 striped mutexes, bounded by a byte budget; when it is
 * full a clock hand frees entries to make room for new answers.
 *
 * Threads: anscache_put on the engine's loop only (one writer: the clock
 * hand is its own); _set_enabled, _stats, _fold on the engine's loop;
 * anscache_lookup and anscache_io_input on any thread.
 */
#ifndef STRATA_ANSCACHE_H
#define STRATA_ANSCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "net.h"
#include "proto.h"
#include "store.h"

/* Body bytes of an answer kept (inline objects default to 16 KiB). */
#define ANSCACHE_MAX_BODY (16u << 10)
/* Response fields kept (a GET's are under 200 bytes). */
#define ANSCACHE_MAX_FIELDS 512u
/* A GET frame (header and fields) the I/O loop gathers to look at. */
#define ANSCACHE_MAX_REQUEST 2048u
/* A whole answer frame. */
#define ANSCACHE_MAX_ANSWER \
	(PROTO_HEADER_LEN + ANSCACHE_MAX_FIELDS + ANSCACHE_MAX_BODY)

struct anscache;

struct anscache_stats {
	uint64_t budget, bytes, entries;
	uint64_t hits;		/* GETs answered on an I/O loop */
	uint64_t misses;	/* whole-object GETs passed on to the engine */
	uint64_t fills;		/* answers kept */
};

/* budget: bytes of entries (keys, fields, bodies); s: whose generation. */
int anscache_new(size_t budget, struct store *s, struct anscache **out);
void anscache_free(struct anscache *a);

/* Off: every frame goes to the engine (the access log wants each request,
 * shutdown answers ECLOSING).  Starts on. */
void anscache_set_enabled(struct anscache *a, bool on);

/* Keep the answer to a whole-object GET of bucket/key (bucket id bid),
 * read at answer generation gen (store_object_info.bucket_id and .gen).
 * Best effort: too large, over the budget or out of memory, nothing is
 * kept. */
void anscache_put(struct anscache *a, const char *bucket, const char *key,
		  size_t keylen, uint64_t bid, uint64_t gen,
		  const uint8_t *fields, size_t flen, const uint8_t *body,
		  size_t blen);

void anscache_stats(struct anscache *a, struct anscache_stats *st);

/* Add the GETs answered on I/O loops to the engine's counters: their
 * count, bytes and latency to *get, their protocol bytes to *sent. */
void anscache_fold(struct anscache *a, struct metrics_op *get,
		   uint64_t *sent);

/*
 * The answer frame to a whole-object GET of bucket/key with request id
 * id, into out, if the table holds it at the current generation: its
 * length (and *body, the body bytes in it), else 0.  Any thread.
 */
size_t anscache_lookup(struct anscache *a, uint64_t id, const char *bucket,
		       size_t blen, const char *key, size_t keylen,
		       uint8_t out[ANSCACHE_MAX_ANSWER], size_t *body);

/*
 * The frame cutter, apart from any connection (the fuzz target and the
 * unit tests drive it alone).  It sees a byte stream in pieces cut
 * anywhere and hands it on unchanged, in order, through forward, except
 * the frames answer takes: whole request frames of GET (no body, END, at
 * most ANSCACHE_MAX_REQUEST bytes) at frame boundaries, given to answer
 * as a valid header and its fields; those answer returns true for are
 * not forwarded.  A header that does not decode makes it forward
 * everything from there on.  It keeps at most ANSCACHE_MAX_REQUEST bytes.
 */
struct anscache_cutter {
	uint64_t skip;			/* bytes of the current frame still to
					 * forward as they come */
	size_t hlen;			/* bytes gathered in hold */
	bool pass;			/* out of step: forward everything */
	uint8_t hold[ANSCACHE_MAX_REQUEST];
};

struct anscache_cut_ops {
	void (*forward)(void *arg, const uint8_t *p, size_t n);
	bool (*answer)(void *arg, const struct proto_header *h,
		       const uint8_t *fields);
};

void anscache_cutter_init(struct anscache_cutter *k);
void anscache_cut(struct anscache_cutter *k, const uint8_t *p, size_t n,
		  const struct anscache_cut_ops *ops, void *arg);

/*
 * net's io_input for a connection whose net_conn_arg leads to a (see
 * server.c): cuts frames, answers what it can when net_conn_io_ok(c) (set
 * once the connection is authenticated), forwards the rest.  A frame
 * header it cannot decode makes it forward everything from there on (the
 * engine answers GOAWAY).  anscache_io_state_free is io_state_free.
 */
void anscache_io_input(struct anscache *a, struct net_conn *c,
		       const uint8_t *p, size_t n);
void anscache_io_state_free(void *state);

#endif
