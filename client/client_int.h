// SPDX-License-Identifier: Apache-2.0
/*
 * What libstrata.c (client, pool, connections, frames) and objects.c (the
 * requests) share.  Nothing outside libstrata includes it.
 *
 * A connection carries one request at a time (the pool gives concurrency),
 * so its life is a loop of:
 *
 *   IDLE --[conn_begin]--> SENDING --[frame_send(END)]--> AWAITING
 *   AWAITING --[resp_start]--> READING --[resp_read/resp_frame: END]--> IDLE
 *   SENDING --[conn_cancel(true)]--> AWAITING     (a put given up)
 *   SENDING --[resp_early: ERROR, conn_cancel(false)]--> IDLE
 *                                                 (a put refused early)
 *   READING --[conn_cancel(false), resp_drain]--> IDLE  (a get given up)
 *
 * Any transport or protocol failure marks it broken; a connection handed
 * back to the pool anywhere but IDLE (a request abandoned half sent or half
 * read) is broken too, and freed instead of kept.
 */
#ifndef STRATA_CLIENT_INT_H
#define STRATA_CLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "strata/strata.h"

struct conn {
	struct tls_conn *tls;
	struct conn *next;		/* idle list */
	uint64_t id;			/* request id in flight */
	uint32_t max_body;		/* body bytes per frame we may send */
	bool broken;			/* never reuse */
	bool sending;			/* request not yet sent whole */
	bool reading;			/* response not yet read whole */
	/* Request header + fields, written as one TLS record. */
	uint8_t out[PROTO_HEADER_LEN + PROTO_MAX_FIELDS_LEN];
	/* The response's fields; decoded messages point in here. */
	uint8_t fields[PROTO_MAX_FIELDS_LEN];
};

/* The state of one response being read. */
struct resp {
	uint8_t op;
	uint32_t fields_len;
	uint32_t body_left;		/* in the current frame */
	bool end;			/* the current frame is the last */
};

/* One attempt of a request on a connection.  It sets *unsafe once a retry
 * would repeat something the caller can see (a consumed stream, delivered
 * bytes). */
typedef int (*call_fn)(struct conn *cn, void *arg, bool *unsafe);

/* Run fn on a pooled connection; once more on a fresh one if the
 * connection broke and *unsafe is still false. */
int client_call(strata_client *c, call_fn fn, void *arg);

/* Start a request: a new id, state SENDING. */
void conn_begin(struct conn *cn);

/*
 * Send one frame of the current request.  frame has PROTO_HEADER_LEN bytes
 * of room for the header, then fields_len field bytes and body_len body
 * bytes.  flags: PROTO_F_END, PROTO_F_CONT.
 */
int frame_send(struct conn *cn, uint8_t op, uint16_t flags, uint8_t *frame,
	       uint32_t fields_len, uint32_t body_len);

/* Encode-and-send helper for the first frame: the fields are already in
 * cn->out + PROTO_HEADER_LEN. */
int req_send(struct conn *cn, uint8_t op, size_t fields_len, bool end);

/* A request of fields only (already at cn->out + PROTO_HEADER_LEN), sent
 * whole, and the first frame of its response: conn_begin(), req_send(),
 * resp_start(). */
int req_call(struct conn *cn, uint8_t op, size_t fields_len, struct resp *r);

/* Read the first frame of the response: 0 with cn->fields holding
 * r->fields_len bytes, or the server's error code, or a transport error. */
int resp_start(struct conn *cn, uint8_t op, struct resp *r);

/* As resp_start() while the request is still being sent (a put's body):
 * returns 1 when what the server had sent was only GOAWAY. */
int resp_early(struct conn *cn, uint8_t op, struct resp *r);

/* Read up to cap body bytes: 0 with *got > 0, or *got == 0 at the end. */
int resp_read(struct conn *cn, struct resp *r, void *buf, size_t cap,
	      size_t *got);

/* Read the rest of the current frame's body (at most PROTO_MAX_BODY_LEN)
 * into buf: 1 with *len set (possibly 0), 0 at the end, or an error. */
int resp_frame(struct conn *cn, struct resp *r, uint8_t *buf, size_t *len);

/* Read a whole response body made of records (LIST, STAT, BUCKET_LIST)
 * into *buf (realloc'd; *len bytes), at most max bytes. */
int resp_records(struct conn *cn, struct resp *r, uint8_t **buf,
		 size_t *len, size_t max);

/* True when the server has already sent something (an early error). */
bool conn_answered(struct conn *cn);

/* End the current request with CANCEL (PROTOCOL.md §8): it stops sending;
 * with expect_response, the response (ERROR STRATA_EABORTED, usually) is
 * still to be read.  The connection stays usable once that is read. */
int conn_cancel(struct conn *cn, bool expect_response);

/* Read and discard the rest of a response; its error code, or 0. */
int resp_drain(struct conn *cn, struct resp *r);

/*
 * strata_object_get_buf() for the dataset reader: *got is set on error too,
 * to the bytes of the range that landed in buf before the failure, in
 * order from its start (they are the version in *res, when res->etag was
 * filled), so that a retry can resume after them.
 */
/* Decode a GET response's fields and check them against the request
 * (an etag, the offset asked for, no more than the length asked for);
 * fills *res.  Returns 0, a decode error or STRATA_EPROTO. */
int get_resp_parse(const uint8_t *fields, size_t len, uint64_t offset,
		   uint64_t length, struct strata_get_result *res);

int client_get_into(strata_client *c, const char *bucket, const char *key,
		    uint64_t offset, uint64_t length, void *buf, size_t cap,
		    size_t *got, struct strata_get_result *res);

/* Mark the connection unusable (a caller gave up mid-request). */
/* A new authenticated connection outside the pool (blocking). */
int conn_open(strata_client *c, struct conn **out);

void conn_free(struct conn *cn);

/* The code of an ERROR frame whose fields are in cn->fields (its message
 * kept for strata_error_message()). */
int conn_error_code(struct conn *cn, const struct proto_header *h);
/* Say why a call failed locally (a bad endpoint, a name that did not
 * resolve), for strata_error_message(), as the node's words would be. */
void client_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Cutting short, from another thread, the requests some threads make (the
 * dataset iterator's fetch threads, when strata_epoch_free() must not wait
 * for a node that hangs).  A thread joins a struct cancel for the time it
 * works for it.  While it does, the socket it connects, or sends and reads
 * one request on, is watched: cancel_fire() shuts it down (shutdown(2), so
 * that the recv() or send() blocked on it returns at once, as every later
 * one does), and every later request of those threads fails with
 * -ECANCELED before it blocks: no new connection, no wait for a pool slot.
 * A connection watched when the cancel came is broken (never pooled again:
 * its response may be cut anywhere).  A socket is unwatched before it is
 * closed, under the lock cancel_fire() shuts sockets down under, so a
 * shutdown never reaches a descriptor number reused meanwhile.  Threads
 * that joined nothing are unaffected.
 */
struct cancel_member {
	struct cancel *k;
	struct cancel_member *next;
	int fd;				/* watched socket, or -1 */
};

struct cancel {
	pthread_mutex_t lock;
	atomic_bool fired;
	struct cancel_member *members;
};

void cancel_init(struct cancel *k);
void cancel_release(struct cancel *k);

/* The calling thread joins k until cancel_leave(); m (its own, e.g. on its
 * stack) stays in k's list until then. */
void cancel_join(struct cancel *k, struct cancel_member *m);
void cancel_leave(void);

/* Cut the requests of k's threads short, for good; c's threads waiting
 * for a pool slot are woken to see it. */
void cancel_fire(strata_client *c, struct cancel *k);

/* True when the calling thread's cancel has fired, or its call was
 * interrupted (strata_interrupt_set()). */
bool cancel_fired(void);

/*
 * A signal interrupted one of the calling thread's waits (EINTR): ask its
 * interrupt hook, if any, whether to give up; true when the call is to end
 * (the hook said so, now or earlier in the call, or the thread's cancel
 * fired), after which cancel_fired() is true until the thread's next call
 * begins, so that the call ends as a cancelled one does (its connections
 * closed, no retry, no new connection) and returns -EINTR.
 */
bool client_interrupted(void);

/* A call of the thread begins: forget an interrupt of an earlier one.
 * client_call() does it; so do the calls that open connections outside
 * it. */
void client_call_begin(void);

/* What a call that began with client_call_begin() returns: -EINTR when it
 * was interrupted, else rc. */
int client_call_end(int rc);

/* Watch fd for the calling thread (at most one at a time): 0, or
 * -ECANCELED (fired: fd not watched, nothing done to it). */
int cancel_watch(int fd);

/* Stop watching fd (nothing when the thread does not watch it); true when
 * the cancel fired while it was watched, so that it may be shut down. */
bool cancel_unwatch(int fd);

/* An endpoint, "host:port" or "[v6]:port", into two heap strings (the
 * host without brackets).  Returns 0, STRATA_ECONFIG or -ENOMEM. */
int client_split_endpoint(const char *ep, char **host, char **port);

static inline void conn_break(struct conn *cn)
{
	cn->broken = true;
}

#endif
