// SPDX-License-Identifier: Apache-2.0
/*
 * libstrata: the C client of the Strata object store.
 *
 * One strata_client talks to one stratad endpoint over TLS 1.3.  It keeps a
 * pool of up to pool_size connections, opened lazily (the first at
 * strata_client_new()) and each authenticated once (HELLO + AUTH: an
 * HMAC-SHA256 proof of the secret over a server nonce and the TLS exporter;
 * the secret never crosses the wire).  Every call below borrows one
 * connection for one request and gives it back, so:
 *
 * Thread-safety: every function taking a strata_client may be called from
 * any number of threads at once; a call waits for a free connection when
 * pool_size are busy.  A strata_list iterator belongs to one thread at a
 * time.  strata_client_free() must not race with any other call.
 *
 * Errors: every int-returning function returns 0 (or a documented positive
 * value), a negative errno value, or a STRATA_E* code (strata/error.h);
 * strata_strerror() names them all.  Besides the errors listed per
 * function, any request can fail with the transport errors:
 *   -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH  connecting failed
 *   -ETIMEDOUT     no progress for timeout_ms (connect, send or receive;
 *                  signals handled meanwhile do not start the count
 *                  again: a wait they interrupt ends at most timeout_ms
 *                  after the first of them)
 *   -ECONNRESET, -EPIPE  the connection broke and the request could not
 *                  safely be retried
 *   STRATA_ECERT   the server's certificate did not verify against ca_file
 *                  and the endpoint's host name (unknown CA, expired or
 *                  not yet valid, or not for that host)
 *   STRATA_EAUTH   unknown access key or wrong secret
 *   -EPROTO        TLS failed for another reason (the text of OpenSSL's
 *                  error queue is dropped)
 *   STRATA_EPROTO, STRATA_EPROTOVERSION  the server broke the protocol
 *   -ENOMEM
 *   -EINTR         a signal cut the call short (strata_interrupt_set())
 * and with whatever code the server answers (-EACCES for a denied
 * request, -EOPNOTSUPP, STRATA_ECLOSING, STRATA_ECORRUPT, ...).
 *
 * Retries: when a pooled connection turns out to be broken, it is dropped and
 * the request is sent once more on a fresh connection, but only while that
 * is safe: no byte of a caller's stream has been consumed (puts) or
 * delivered (gets).  Buffer and regular-file sources can always be replayed.
 *
 * Strings: bucket names and keys are NUL-terminated UTF-8.  Buckets are 3-63
 * characters of a-z, 0-9, '.', '-', starting and ending with a letter or
 * digit, without "..", not shaped like an IPv4 address; keys 1-1024 bytes
 * (STRATA_EBADBUCKET, STRATA_EBADKEY otherwise).  Keys, and bucket names
 * over 63 bytes, are checked before anything is sent; the other bucket
 * rules are the node's, which answers with the same code.
 */
#ifndef STRATA_STRATA_H
#define STRATA_STRATA_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "strata/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_VERSION_STRING "0.1.0"

/* Bytes in an etag (raw SHA-256). */
#define STRATA_ETAG_LEN 32
/* A GET length meaning "to the end of the object". */
#define STRATA_TO_END UINT64_MAX

typedef struct strata_client strata_client;
typedef struct strata_list strata_list;

/* ---- Configuration ----------------------------------------------------- */

struct strata_config {
	const char *endpoint;	/* "host:port", "[v6addr]:port" */
	const char *access_key;	/* access key id */
	const char *secret_key;	/* its secret (the HMAC key, as given) */
	const char *ca_file;	/* PEM CA bundle; NULL: the system's */
	unsigned pool_size;	/* connections at most; 0: 4 */
	unsigned timeout_ms;	/* connect/send/receive; 0: 30000 */
};

/*
 * Complete a configuration from the environment and the config file.
 *   [in,out] cfg     fields already set win; each NULL string field is
 *                    taken from STRATA_ENDPOINT, STRATA_ACCESS_KEY,
 *                    STRATA_SECRET_KEY, STRATA_CA, else from the config
 *                    file's endpoint, access_key, secret_key, ca keys; a
 *                    zero pool_size / timeout_ms from its pool_size /
 *                    timeout_ms keys.
 *   [out]    errbuf  on error, a message for people (may be NULL)
 *   [in]     errlen  its size
 * The config file is $STRATA_CONFIG if set, else
 * $XDG_CONFIG_HOME/strata/config, else ~/.config/strata/config; a missing
 * file is not an error, one that is not a regular file (FIFO, device,
 * directory) is.  Its lines are "key = value"; blank lines and lines
 * starting with '#' or ';' are skipped, as are "[section]" lines.
 * Afterwards every non-NULL string field is a heap copy owned by cfg (the
 * caller's own strings were copied too); free them with
 * strata_config_release().  Overwriting such a field leaks its copy.
 * Returns 0 (even if some fields are still NULL: strata_client_new()
 * judges), STRATA_ECONFIG (unreadable line or bad number in the file, or
 * a file that is not a regular file),
 * -ENOMEM, -EINVAL (cfg NULL), or the negative errno of opening or reading
 * the file.  On error
 * cfg is as it was on entry.
 */
int strata_config_from_env(struct strata_config *cfg, char *errbuf,
			   size_t errlen);

/*
 * Free the strings strata_config_from_env() copied and set them to NULL.
 *   [in,out] cfg  a configuration filled by strata_config_from_env()
 */
void strata_config_release(struct strata_config *cfg);

/* ---- Client ------------------------------------------------------------ */

/*
 * Create a client and open its first connection (so that a wrong endpoint,
 * certificate or secret shows here, not at the first request).
 *   [in]  cfg  copied; the caller may free it afterwards
 *   [out] out  the client, to be freed with strata_client_free()
 * Returns 0; STRATA_ECONFIG (endpoint, access_key or secret_key missing,
 * endpoint not "host:port", access key over 128 bytes); -EINVAL (cfg or
 * out NULL); -ENOENT, -EACCES (ca_file unreadable), -EPROTO (ca_file not
 * PEM); -EHOSTUNREACH (the host name did not resolve); STRATA_EAUTH; any
 * transport error (see the top of this file).
 */
int strata_client_new(const struct strata_config *cfg, strata_client **out);

/*
 * Close every connection and free the client.  NULL is ignored.  No call
 * on c may be running or follow.
 */
void strata_client_free(strata_client *c);

/*
 * Let a signal cut short the calls the calling thread makes (Ctrl-C on a
 * node that hangs), rather than let them wait out the client's timeout_ms.
 * fn, set for the calling thread only (NULL: unset, the default), is
 * called on that thread, without locks held, each time a signal handler
 * interrupted one of the waits of a call it makes (connecting, the TLS
 * handshake, sending, receiving, reading or writing the caller's file
 * descriptor), and every 100 ms while such a call waits for a free
 * connection of the pool.
 * fn returning non-zero ends the call at once: it returns -EINTR, and
 * every connection it was using is closed, never pooled again (a put or
 * delete may have been carried out or not).  Zero: the wait goes on.
 * Typically fn reads a flag that the program's SIGINT handler sets.  The
 * library's own waits are interrupted whatever the handler's flags; the
 * reads and writes of a caller's file descriptor only when it was
 * installed without SA_RESTART.  Only a host name lookup under way
 * (getaddrinfo) is not cut short.  A signal that arrives while the thread
 * runs, rather than waits, reaches no wait: the call goes on until the
 * next signal or its end.  Calls made on other threads, including the
 * fetch threads of strata_epoch_new(), are not affected.
 */
typedef int (*strata_interrupt_fn)(void);
void strata_interrupt_set(strata_interrupt_fn fn);

/* ---- Buckets ----------------------------------------------------------- */

/*
 * Create a bucket.
 *   [in] c, bucket
 * Returns 0, STRATA_EBADBUCKET, STRATA_EBUCKETEXISTS.
 */
int strata_bucket_create(strata_client *c, const char *bucket);

/*
 * Delete an empty bucket.
 *   [in] c, bucket
 * Returns 0, STRATA_EBADBUCKET, STRATA_ENOBUCKET, STRATA_EBUCKETNOTEMPTY.
 */
int strata_bucket_delete(strata_client *c, const char *bucket);

/*
 * Called once per bucket, in name order.  bucket is valid during the call.
 * Return 0 to go on; anything else stops the listing and is returned by
 * strata_bucket_list().
 */
typedef int (*strata_bucket_fn)(void *arg, const char *bucket,
				uint64_t ctime_ms);

/*
 * List all buckets, fetching pages as needed.
 *   [in] c
 *   [in] fn, arg  called for each bucket
 * Returns 0, fn's non-zero return value, or a transport/server error (the
 * buckets of the pages before it have been passed to fn).
 */
int strata_bucket_list(strata_client *c, strata_bucket_fn fn, void *arg);

/* ---- Objects: put ------------------------------------------------------ */

struct strata_kv {
	const char *name;
	const char *value;
};

/* Optional put parameters; a NULL pointer means all defaults. */
struct strata_put_opts {
	const char *content_type;	/* NULL: none */
	const struct strata_kv *meta;	/* user metadata, nmeta pairs */
	size_t nmeta;
	const struct strata_kv *tags;	/* tags, ntags pairs */
	size_t ntags;
	bool has_size;			/* size is known up front: the stream */
	uint64_t size;			/* must give exactly size bytes */
};

struct strata_put_result {
	uint64_t size;
	uint8_t etag[STRATA_ETAG_LEN];	/* see strata_stat's etag */
	uint64_t version;		/* hybrid-logical-clock timestamp */
	uint32_t writer;		/* node id that wrote it */
};

/*
 * Fill buf with up to cap bytes of the object being put.  Return the
 * number of bytes (> 0), 0 at the end of the stream, or a negative errno
 * (or STRATA_E*) to abort the put, which then returns that value.
 */
typedef ssize_t (*strata_read_fn)(void *arg, void *buf, size_t cap);

/*
 * Put an object, streaming its bytes from fn.  The object is sent in
 * frames of at most 1 MiB as fn produces it: it is never held in memory
 * whole.  The new version replaces the old one only once the server has
 * acknowledged it durable; an aborted or failed put leaves the old one.
 *   [in]  c, bucket, key
 *   [in]  opts     NULL for defaults
 *   [in]  fn, arg  the byte source; fn may be called with any cap > 0
 *   [out] res      the new version (may be NULL)
 * A put that fn aborts, or that the server refuses before its body ends,
 * is ended with CANCEL (PROTOCOL.md §8); the server stores nothing.
 * Returns 0; STRATA_EBADBUCKET, STRATA_EBADKEY, STRATA_EBADMETA (too many,
 * too long or malformed metadata, tags or content type); -EINVAL (fn gave
 * a byte count other than opts->size, or more than cap); fn's error;
 * STRATA_ENOBUCKET; -ENOSPC (server full); STRATA_ECLOSING.
 */
int strata_object_put(strata_client *c, const char *bucket, const char *key,
		      const struct strata_put_opts *opts, strata_read_fn fn,
		      void *arg, struct strata_put_result *res);

/*
 * Put an object from a buffer.  As strata_object_put(), with the size
 * known (opts->has_size and opts->size are ignored).
 *   [in] buf, len  the object's bytes; only read during the call
 */
int strata_object_put_buf(strata_client *c, const char *bucket,
			  const char *key, const struct strata_put_opts *opts,
			  const void *buf, size_t len,
			  struct strata_put_result *res);

/*
 * Put an object from a file descriptor, read from its current offset to
 * its end.  For a regular file the size is taken from fstat() (and a
 * broken connection can be retried from the start offset); a pipe or
 * socket is streamed (opts->has_size / opts->size apply to those only).
 * As strata_object_put(), plus -errno of read(), -EINVAL if a regular file
 * shrank during the put (one that grows is sent at its fstat() size).
 *   [in] fd  not closed; its offset is left after the bytes read
 */
int strata_object_put_fd(strata_client *c, const char *bucket,
			 const char *key, const struct strata_put_opts *opts,
			 int fd, struct strata_put_result *res);

/* ---- Objects: get ------------------------------------------------------ */

/* What a GET says about the version it read from. */
struct strata_get_result {
	uint64_t size;			/* whole object */
	uint8_t etag[STRATA_ETAG_LEN];
	uint64_t version;
	uint32_t writer;
	uint64_t mtime_ms;		/* 0 if the server sent none */
	uint64_t offset;		/* the range returned */
	uint64_t length;
};

/*
 * Take len bytes of the object (the next bytes of the range, in order).
 * Return 0 to go on; anything else stops the get (the request is
 * cancelled, and the connection kept when the server agrees) and is
 * returned by it.
 */
typedef int (*strata_write_fn)(void *arg, const void *buf, size_t len);

/*
 * Get a byte range of an object into a callback.
 *   [in]  c, bucket, key
 *   [in]  offset  first byte
 *   [in]  length  bytes wanted, or STRATA_TO_END; a range running past the
 *                 end is cut at the end; offset == size gives 0 bytes
 *   [in]  fn, arg the byte sink
 *   [out] res     the version and range served (may be NULL); filled
 *                 before the first call of fn
 * On any error the caller must discard what fn received (PROTOCOL.md
 * §5.9: a server failing part way ends the response with an error).  When
 * fn stops the get, the request is cancelled and the connection kept.
 * Returns 0; STRATA_EBADBUCKET, STRATA_EBADKEY, STRATA_ENOBUCKET,
 * STRATA_ENOOBJECT, STRATA_ERANGE (offset past the end), STRATA_ECORRUPT
 * (no intact replica), fn's non-zero return value, STRATA_EPROTO (the
 * server sent more or fewer bytes than it announced).
 */
int strata_object_get(strata_client *c, const char *bucket, const char *key,
		      uint64_t offset, uint64_t length, strata_write_fn fn,
		      void *arg, struct strata_get_result *res);

/*
 * Get a byte range of an object into a caller buffer.
 *   [in]  buf, cap  where to put it
 *   [out] got       bytes stored (may be NULL; res->length says it too)
 * As strata_object_get(), plus -ENOBUFS when the range served is longer
 * than cap (then res->length, if res is given, tells how long it was and
 * nothing useful is in buf).
 */
int strata_object_get_buf(strata_client *c, const char *bucket,
			  const char *key, uint64_t offset, uint64_t length,
			  void *buf, size_t cap, size_t *got,
			  struct strata_get_result *res);

/*
 * Get a byte range of an object into a buffer of its own size, allocated
 * (malloc) once the node has said how long the range is: for a caller
 * that knows no size beforehand and must not run code of its own in the
 * middle of the transfer (the Python binding: a callback of an
 * interpreter may raise there).
 *   [out] data  the range's res->length bytes, to be freed with free();
 *               NULL on error (an empty range gives a 1-byte buffer)
 *   [out] res   required
 * As strata_object_get(), plus -EINVAL (data or res NULL) and -ENOMEM
 * when the range does not fit in memory.
 */
int strata_object_get_alloc(strata_client *c, const char *bucket,
			    const char *key, uint64_t offset, uint64_t length,
			    void **data, struct strata_get_result *res);

/*
 * Get a byte range of an object into a file descriptor, written at its
 * current offset.  As strata_object_get(), plus -errno of write().
 *   [in] fd  not closed
 */
int strata_object_get_fd(strata_client *c, const char *bucket,
			 const char *key, uint64_t offset, uint64_t length,
			 int fd, struct strata_get_result *res);

/* ---- Objects: gets from an event loop ----------------------------------- */

/*
 * A connection of its own for an event loop (epoll, libuv, ...) that keeps
 * many gets in flight from one thread, as a load generator or an
 * asynchronous loader does, where a blocking call per thread would pay a
 * thread wake-up per request.  One get at a time per connection; a
 * strata_conn is used by one thread at a time (different ones may run in
 * different threads).  It is not part of c's pool: pool_size does not
 * count it, and it lives until strata_conn_close() (before
 * strata_client_free(c)).
 */
typedef struct strata_conn strata_conn;

/*
 * Open, authenticate (blocking, within c's timeout) and switch the socket
 * to non-blocking mode.
 * Returns 0; the errors of strata_client_new() (STRATA_ECERT, STRATA_EAUTH,
 * -ECONNREFUSED, ...).
 */
int strata_conn_open(strata_client *c, strata_conn **out);

/* The socket to wait on, with the events strata_conn_get_step() asks for. */
int strata_conn_fd(const strata_conn *conn);

/*
 * Start a get of a byte range into a caller buffer (as
 * strata_object_get_buf()), then call strata_conn_get_step() until it
 * returns something other than -EAGAIN.  bucket and key are copied; buf
 * must stay valid until the get is over.
 * Returns 0; -EINVAL; -EBUSY (a get is under way); STRATA_EBADBUCKET,
 * STRATA_EBADKEY; STRATA_ECLOSING (the server is closing this connection:
 * open another); -ENOTCONN (an earlier failure broke it: close it).
 */
int strata_conn_get_start(strata_conn *conn, const char *bucket,
			  const char *key, uint64_t offset, uint64_t length,
			  void *buf, size_t cap);

/*
 * Move the get on as far as the socket allows without blocking.
 *   [out] events  on -EAGAIN: POLLIN or POLLOUT, what to wait for on
 *                 strata_conn_fd() before the next call
 *   [out] got     on 0: bytes stored in buf (may be NULL)
 *   [out] res     on 0 and -ENOBUFS: the version and range served (may be
 *                 NULL)
 * Returns 0 (the get is over and the connection ready for the next);
 * -EAGAIN; the errors of strata_object_get_buf() (a server's error, such as
 * STRATA_ENOOBJECT, ends the get and leaves the connection usable; -ENOBUFS,
 * STRATA_EPROTO and transport errors break it: close it); -EINVAL (no get
 * under way).
 */
int strata_conn_get_step(strata_conn *conn, short *events, size_t *got,
			 struct strata_get_result *res);

/* Close the connection (a get under way is abandoned). */
void strata_conn_close(strata_conn *conn);

/* ---- Objects: stat, delete --------------------------------------------- */

struct strata_chunk {
	unsigned tier;			/* tier index in the node's config */
	uint32_t raw_len;		/* plaintext bytes */
	uint32_t stored_len;		/* bytes on disk (compressed, sealed) */
};

/*
 * An object version, as strata_object_stat() returns it: one allocation,
 * every pointer inside it valid until strata_stat_free().
 */
struct strata_stat {
	uint64_t size;
	/* One chunk: SHA-256 of the object.  Several: SHA-256 of the chunks'
	 * SHA-256s, shown in hex with a "-<nchunks>" suffix (etag_hex). */
	uint8_t etag[STRATA_ETAG_LEN];
	char etag_hex[2 * STRATA_ETAG_LEN + 12];
	uint64_t version;
	uint32_t writer;
	uint64_t mtime_ms;		/* 0 if unknown */
	const char *content_type;	/* NULL if none */
	const struct strata_kv *meta;	/* nmeta user metadata pairs */
	size_t nmeta;
	const struct strata_kv *tags;	/* ntags tag pairs */
	size_t ntags;
	uint32_t chunk_size;		/* cut size of all but the last chunk */
	const struct strata_chunk *chunks;	/* nchunks, in object order */
	size_t nchunks;
};

/*
 * Describe an object's newest version, chunk by chunk.
 *   [in]  c, bucket, key
 *   [out] out  free with strata_stat_free()
 * Returns 0, STRATA_EBADBUCKET, STRATA_EBADKEY, STRATA_ENOBUCKET,
 * STRATA_ENOOBJECT.
 */
int strata_object_stat(strata_client *c, const char *bucket, const char *key,
		       struct strata_stat **out);

/* Free what strata_object_stat() returned; NULL is ignored. */
void strata_stat_free(struct strata_stat *st);

struct strata_delete_result {
	bool has_version;	/* the server named the tombstone */
	uint64_t version;	/* its HLC timestamp */
	uint32_t writer;
};

/*
 * Delete an object (write a tombstone version).
 *   [in]  c, bucket, key
 *   [out] res  may be NULL
 * Returns 0, STRATA_EBADBUCKET, STRATA_EBADKEY, STRATA_ENOBUCKET,
 * STRATA_ENOOBJECT (no live version: callers that want idempotent deletes
 * treat it as success, PROTOCOL.md §5.11).
 */
int strata_object_delete(strata_client *c, const char *bucket,
			 const char *key, struct strata_delete_result *res);

/* ---- Listing ----------------------------------------------------------- */

struct strata_list_opts {
	const char *prefix;	/* only keys starting with it; NULL: all */
	const char *delimiter;	/* roll keys up to common prefixes at the
				 * first delimiter after prefix; NULL: none */
	const char *start_after;	/* keys strictly after it; NULL: from
					 * the first */
	unsigned page_size;	/* entries per request; 0: 1000; at most
				 * 10000 */
};

/* An object (key != NULL) or a common prefix (prefix != NULL). */
struct strata_list_entry {
	const char *key;
	const char *prefix;
	uint64_t size;
	uint8_t etag[STRATA_ETAG_LEN];
	uint64_t version;
	uint64_t mtime_ms;
};

/*
 * Start listing a bucket, in key order.  Nothing is sent until the first
 * strata_list_next().
 *   [in]  c, bucket
 *   [in]  opts  NULL for defaults; copied
 *   [out] out   free with strata_list_free(); NULL on error
 * Returns 0, STRATA_EBADBUCKET, -EINVAL (page_size over 10000, delimiter
 * longer than 16 bytes, prefix or start_after longer than 1024), -ENOMEM.
 */
int strata_list_new(strata_client *c, const char *bucket,
		    const struct strata_list_opts *opts, strata_list **out);

/*
 * The next entry, fetching the next page when the current one is used up.
 *   [in]  it
 *   [out] e  valid until the next call on it
 * Returns 1 with *e set, 0 at the end, STRATA_ENOBUCKET, or a transport /
 * server error (after which it may be called again to retry that page).
 */
int strata_list_next(strata_list *it, const struct strata_list_entry **e);

/* Free an iterator; NULL is ignored. */
void strata_list_free(strata_list *it);

/* ---- Batch get --------------------------------------------------------- */

/*
 * A piece of one item of a batch get.  For each key, the callback sees
 * either one piece with status < 0 (-errno / STRATA_E*, e.g.
 * STRATA_ENOOBJECT; len 0) or pieces with status 0 carrying the object's
 * bytes in order (offset counts them; one piece with len 0 for an empty
 * object).  last is set on an item's final piece.  Items come in the
 * server's order, not the keys' order, but an item's pieces are never
 * interleaved with another's.
 */
struct strata_batch_piece {
	size_t index;		/* into the keys array */
	int status;
	uint64_t size;		/* object bytes in all */
	uint64_t offset;	/* of data within the object */
	const void *data;	/* valid during the call */
	size_t len;
	bool last;
};

/* Return 0 to go on; anything else stops the batch and is returned. */
typedef int (*strata_batch_fn)(void *arg, const struct strata_batch_piece *p);

/*
 * Get many whole objects of one bucket, pipelined in as few requests as the
 * protocol allows (up to 1024 keys each).
 *   [in] c, bucket
 *   [in] keys, nkeys  the keys; only read during the call
 *   [in] fn, arg      called for every piece of every item
 * Returns 0 when every item was delivered (items that failed are reported
 * through fn, not here); STRATA_EBADBUCKET; STRATA_EBADKEY (a bad key: no
 * item is fetched); STRATA_ENOBUCKET; fn's non-zero value; a transport or
 * server error (items of earlier requests have been delivered).
 */
int strata_batch_get(strata_client *c, const char *bucket,
		     const char *const *keys, size_t nkeys, strata_batch_fn fn,
		     void *arg);

/* ---- Access keys (needs an admin key) ------------------------------------ */

/*
 * Create an access key.  The secret is returned this once: the server keeps
 * it sealed under its master key and never shows it again.
 *   [in]  c
 *   [in]  admin        whether the new key may manage keys
 *   [out] id, idcap    the new key id, NUL-terminated (129 bytes suffice)
 *   [out] secret, seccap  its secret, NUL-terminated (129 bytes suffice)
 * Returns 0; -EACCES (the client's key is not an admin key); -ENOBUFS (a
 * buffer too small); -EINVAL; a transport error.
 */
int strata_admin_key_create(strata_client *c, bool admin, char *id,
			    size_t idcap, char *secret, size_t seccap);

/*
 * An access key's grant: its access policy (a JSON document,
 * strata-policy(7)) and attributes (which policies' conditions and
 * "${principal.NAME}" patterns read).  Keys that are not admin keys may do
 * nothing their policy does not allow; a key with no policy may do
 * nothing but ask about itself (strata_admin_key_info).
 */
struct strata_key_grant {
	const char *policy;		/* create: NULL for none; set: NULL
					 * leaves it, "" removes it */
	const char *const *attrs;	/* name, value, name, value, ... */
	size_t nattrs;			/* pairs (at most 64) */
	bool set_attrs;			/* set: replace the attributes with
					 * attrs (none when nattrs is 0) */
};

/*
 * Create an access key with a policy and attributes (grant may be NULL:
 * as strata_admin_key_create).  The node checks the policy first: a bad
 * one creates no key.
 * Returns as strata_admin_key_create, and STRATA_EBADPOLICY (the node's
 * reason in strata_last_error_message()); STRATA_EBADMETA (a bad attribute
 * name: letters, digits, '_', '.', '-'); -E2BIG (policy over 32 KiB).
 */
int strata_admin_key_create_ex(strata_client *c, bool admin,
			       const struct strata_key_grant *grant, char *id,
			       size_t idcap, char *secret, size_t seccap);

/*
 * Replace a key's policy and/or attributes.  Connections authenticated
 * with the key use them from their next request.
 * Returns 0; -ENOENT (no such key); STRATA_EBADPOLICY; STRATA_EBADMETA;
 * -EACCES; -EINVAL (nothing to set); a transport error.
 */
int strata_admin_key_set(strata_client *c, const char *id,
			 const struct strata_key_grant *grant);

/* What strata_admin_key_info() tells. */
struct strata_key_info {
	char id[129];
	bool admin;
	uint64_t ctime_ms;		/* creation, Unix ms */
	char *policy;			/* NULL: none */
	char **attrs;			/* name, value, ... (2 * nattrs) */
	size_t nattrs;
};

/*
 * A key's flags, policy and attributes: an admin key may ask about any
 * key, any key about itself.  Free with strata_key_info_free().
 * Returns 0; -ENOENT; -EACCES; a transport error.
 */
int strata_admin_key_info(strata_client *c, const char *id,
			  struct strata_key_info *out);
void strata_key_info_free(struct strata_key_info *ki);

/* Called once per key; id is valid during the call.  Return 0 to go on. */
typedef int (*strata_key_fn)(void *arg, const char *id, bool admin);

/*
 * List the access keys, in id order.
 * Returns 0; -EACCES; fn's non-zero value; a transport error.
 */
int strata_admin_key_list(strata_client *c, strata_key_fn fn, void *arg);

/*
 * Delete an access key: connections already authenticated with it keep
 * working until they close; new ones are refused.
 * Returns 0; -ENOENT (no such key); -EBUSY (it is the last admin key);
 * -EACCES; a transport error.
 */
int strata_admin_key_delete(strata_client *c, const char *id);

/* ---- Lifecycle rules and node counters --------------------------------- */

enum strata_lifecycle_action {
	STRATA_LC_COLD = 1,		/* move the object's chunks cold */
	STRATA_LC_DELETE = 2,		/* expire: delete the object */
};

/* "Objects of the bucket under prefix, older than age_s seconds (by
 * their last write): action." */
struct strata_lifecycle_rule {
	char prefix[1025];		/* NUL-terminated; "" matches all */
	uint64_t age_s;
	enum strata_lifecycle_action action;
};

/*
 * Replace the lifecycle rules of bucket with rules[0..n) (n 0 removes
 * them).  The node applies them periodically ([tiers] lifecycle_interval
 * in stratad.conf(5)).  At most 32 rules.
 * Returns 0; -EINVAL (a bad rule); -E2BIG; STRATA_ENOBUCKET;
 * STRATA_EBADBUCKET; -EACCES; a transport error.
 */
int strata_lifecycle_set(strata_client *c, const char *bucket,
			 const struct strata_lifecycle_rule *rules, size_t n);
/*
 * The rules of bucket: *rules (free with strata_lifecycle_free()) and *n
 * (0 and NULL when it has none).  Same errors as strata_lifecycle_set().
 */
int strata_lifecycle_get(strata_client *c, const char *bucket,
			 struct strata_lifecycle_rule **rules, size_t *n);
void strata_lifecycle_free(struct strata_lifecycle_rule *rules);

/* Called once per counter: name ("tier.hot.used_bytes") and its value as
 * text; non-zero stops and is returned. */
typedef int (*strata_node_stat_fn)(void *arg, const char *name,
				   const char *value);
/*
 * The node's counters (tiers, mover, lifecycle, prestaging, cache,
 * compaction; strata(1) "admin tiers" shows them).  Admin keys only.
 * Returns 0; -EACCES; -EOPNOTSUPP (an older node); a transport error; or
 * fn's non-zero value.
 */
int strata_node_stats(strata_client *c, strata_node_stat_fn fn, void *arg);

/* ---- Datasets ---------------------------------------------------------- */

/*
 * A dataset is a bucket and a key prefix: its shards are the objects under
 * the prefix, listed once by strata_dataset_open() and kept sorted by key.
 * An epoch iterator (strata_epoch) reads one participant's share of one
 * epoch, fetching a bounded number of shards ahead in parallel.
 *
 * The plan.  For (seed, epoch) the shard indices 0..n-1 are shuffled with a
 * Fisher-Yates shuffle driven by splitmix64 seeded from seed and epoch (so
 * the order is the same on every machine for the same seed, and changes
 * with the epoch), then dealt round robin to the world_size ranks (rank r
 * takes positions r, r + world_size, ...), then within a rank round robin to
 * its num_workers loader workers.  Across all ranks and workers every shard
 * is read exactly once per epoch.  When world_size does not divide n, by
 * default (STRATA_UNEVEN_SHARE) the first n % world_size ranks get one shard
 * more: nothing is read twice or skipped, but ranks see different counts,
 * which hangs a DistributedDataParallel job at its last collective.  As
 * PyTorch's DistributedSampler does, STRATA_UNEVEN_DROP drops the last
 * n % world_size shards of the shuffled order (a different few each epoch)
 * and STRATA_UNEVEN_PAD repeats the first ones until every rank has
 * ceil(n / world_size); both give every rank the same count.  Workers of a
 * rank may differ by one shard: the loader merges them.
 *
 * Threads: a dataset is read-only once open, and any number of iterators
 * and threads may read it.  An iterator belongs to one consumer thread at
 * a time; its fetch threads are its own.
 */
typedef struct strata_dataset strata_dataset;
typedef struct strata_epoch strata_epoch;

enum strata_uneven {
	STRATA_UNEVEN_SHARE = 0,	/* exactly once; counts differ by 1 */
	STRATA_UNEVEN_DROP = 1,		/* equal counts; a few not read */
	STRATA_UNEVEN_PAD = 2,		/* equal counts; a few read twice */
};

/* Allocate size bytes for a shard (e.g. pinned memory); NULL fails the
 * shard with -ENOMEM.  Called from the iterator's fetch threads. */
typedef void *(*strata_alloc_fn)(void *arg, size_t size);
/* Give back a buffer that alloc_fn returned and that was never handed to
 * the caller (an iterator freed before the end, a failed fetch). */
typedef void (*strata_free_fn)(void *arg, void *p, size_t size);

struct strata_epoch_opts {
	uint64_t seed;
	uint64_t epoch;
	unsigned rank;			/* 0..world_size-1 */
	unsigned world_size;		/* 0: 1 */
	unsigned worker;		/* 0..num_workers-1 */
	unsigned num_workers;		/* 0: 1 */
	bool no_shuffle;		/* keep key order (then seed and epoch
					 * do not matter) */
	enum strata_uneven uneven;
	/* Prefetch: pieces fetched or waiting ahead of the consumer, at most
	 * prefetch of them (0: 2) and prefetch_bytes bytes (0: 256 MiB; one
	 * piece is always allowed, however large).  Fetches run in parallel
	 * on up to prefetch threads, each borrowing one connection of the
	 * client's pool, so pool_size bounds the parallelism too (the
	 * first piece is fetched alone, so it arrives soonest).  More is
	 * not faster when the node shares the loader's cores: 4 x 64 MiB
	 * ahead per loader worker read 30% slower than 2 on 2 cores
	 * (tests/bench/dataset.sh). */
	unsigned prefetch;
	uint64_t prefetch_bytes;
	/* Shards longer than piece_size are read as consecutive byte ranges
	 * of that size, each delivered on its own (0: whole shards).  With
	 * piece_size over 1 MiB, the plan's first shard comes in growing
	 * pieces, 1 MiB, 2 MiB, ... up to piece_size, so that its first
	 * bytes arrive soonest. */
	uint64_t piece_size;
	/* A fetch that fails with a transport error (the node restarted,
	 * the connection broke) is retried up to retries times (0: 10; use
	 * STRATA_NO_RETRY for none) with backoff doubling from backoff_ms
	 * (0: 100) up to 2 s, resuming after the bytes it already has. */
	unsigned retries;
	unsigned backoff_ms;
	/* Prestaging hints: the next hint_window keys of the plan are sent
	 * with strata_hint() ahead of the fetches (0: 256, at most 1024);
	 * no_hint sends none.  A node that does not support HINT is asked
	 * once. */
	unsigned hint_window;
	bool no_hint;
	/* Where shard bytes go: NULL alloc_fn: malloc(). */
	strata_alloc_fn alloc_fn;
	strata_free_fn free_fn;		/* required with alloc_fn */
	void *alloc_arg;
};

#define STRATA_NO_RETRY UINT_MAX

/* One piece of a shard, as strata_epoch_next() hands it over. */
struct strata_shard {
	size_t index;		/* the shard's position in the dataset */
	size_t seq;		/* the piece's position in this plan */
	const char *key;	/* valid until strata_dataset_free() */
	uint64_t size;		/* of the whole object, as read */
	uint64_t offset;	/* of this piece within the object */
	uint64_t length;	/* bytes in data */
	bool last;		/* the shard's last piece */
	void *data;		/* the caller's now (see strata_epoch_next) */
	unsigned retries;	/* retried fetches this piece needed */
	uint64_t fetch_ns;	/* its fetch took, retries and backoff
				 * included */
};

struct strata_epoch_stats {
	uint64_t pieces;	/* delivered */
	uint64_t bytes;		/* delivered */
	uint64_t retries;	/* fetch attempts repeated */
	uint64_t failed;	/* pieces delivered as errors */
	uint64_t hints;		/* HINT requests the node accepted */
	uint64_t hint_keys;	/* keys in them */
	uint64_t wait_ns;	/* consumer time blocked in next() */
};

/*
 * List a dataset: every object of bucket whose key starts with prefix, in
 * key order.  The listing is kept (keys and sizes); later changes to the
 * bucket are not seen until the dataset is opened again.  The dataset does
 * not keep c: it may outlive it, and any client may read it.
 *   [in]  c, bucket
 *   [in]  prefix  NULL or "" for the whole bucket
 *   [out] out     free with strata_dataset_free()
 * Returns 0 (also for an empty dataset), STRATA_EBADBUCKET, -EINVAL (prefix
 * over 1024 bytes), STRATA_ENOBUCKET, -ENOMEM, a transport error.
 */
int strata_dataset_open(strata_client *c, const char *bucket,
			const char *prefix, strata_dataset **out);

/*
 * As strata_dataset_open(), keeping only the objects whose key ends with
 * suffix (e.g. ".tar", so that an index or README beside the shards is
 * not taken for one); NULL or "" keeps every object.  -EINVAL also for a
 * suffix over 1024 bytes.
 */
int strata_dataset_open_suffix(strata_client *c, const char *bucket,
			       const char *prefix, const char *suffix,
			       strata_dataset **out);

/* Shards in the dataset. */
size_t strata_dataset_count(const strata_dataset *ds);

/*
 * Shard i (0 <= i < count) as listed: its key (valid until
 * strata_dataset_free(); NULL when i is out of range) and size in bytes.
 */
const char *strata_dataset_key(const strata_dataset *ds, size_t i,
			       uint64_t *size);

/*
 * Shard i's etag as listed: STRATA_ETAG_LEN bytes, valid until
 * strata_dataset_free(); NULL when i is out of range.  Every read of the
 * shard must find this version (else -ESTALE), so two listings read the
 * same bytes when their keys, sizes and etags agree.
 */
const uint8_t *strata_dataset_etag(const strata_dataset *ds, size_t i);

/* Free a dataset; NULL is ignored.  No iterator over it may still run. */
void strata_dataset_free(strata_dataset *ds);

/*
 * Compute the plan of one participant without reading anything: the
 * shard indices it reads this epoch, in order (see "The plan" above).
 *   [in]  nshards  shards in the dataset
 *   [in]  o        seed, epoch, rank, world_size, worker, num_workers,
 *                  no_shuffle, uneven (the rest is ignored)
 *   [out] idx, cap where to put the indices (may be NULL when cap is 0)
 *   [out] n        how many there are (also when cap is too small)
 * Returns 0; -EINVAL (o or n NULL, rank >= world_size, worker >=
 * num_workers, uneven unknown); -ENOBUFS (cap < *n: nothing useful in
 * idx).
 */
int strata_dataset_plan(size_t nshards, const struct strata_epoch_opts *o,
			size_t *idx, size_t cap, size_t *n);

/*
 * Start reading one epoch: compute the plan and start the fetch threads
 * (the first of which sends the first prestaging hint before it fetches).
 *   [in]  c     used by the fetch threads until strata_epoch_free()
 *   [in]  ds    must outlive the iterator
 *   [in]  o     NULL for defaults; copied
 *   [out] out   free with strata_epoch_free()
 * Returns 0; -EINVAL (as strata_dataset_plan, alloc_fn without free_fn,
 * hint_window over 1024); -ENOMEM; -EAGAIN (no thread could be started).
 */
int strata_epoch_new(strata_client *c, const strata_dataset *ds,
		     const struct strata_epoch_opts *o, strata_epoch **out);

/*
 * The next piece of the plan, in plan order, waiting for its fetch.
 *   [in]  e
 *   [out] sh  filled on 1 and on a piece error (index, seq, key then say
 *             which piece failed; data NULL)
 * On 1 sh->data holds sh->length bytes and belongs to the caller: free it
 * with strata_epoch_buf_free() (or, when it came from alloc_fn, in the
 * caller's own way); it stays valid after strata_epoch_free().  An empty
 * piece may have data NULL.
 * Returns 1; 0 at the end of the plan; the piece's error after its retries
 * ran out (-ESTALE: the object changed since the dataset was listed;
 * STRATA_ENOOBJECT: it was deleted; any error of strata_object_get()), after
 * which the next call goes on with the next piece; -EINVAL.
 */
int strata_epoch_next(strata_epoch *e, struct strata_shard *sh);

/*
 * Wait at most timeout_ms (0: not at all) for the next piece, without
 * taking it: for a caller that must do something else while it waits
 * (an interpreter that runs its signal handlers, as the Python binding
 * does for Ctrl-C, when a node hangs).
 * Returns 1 when strata_epoch_next() will not wait (the piece is in, or
 * the plan is over), 0 when the time ran out first, -EINVAL.
 */
int strata_epoch_wait(strata_epoch *e, unsigned timeout_ms);

/* Free a buffer strata_epoch_next() handed over: with e's free_fn when e
 * has an alloc_fn, else with free() (e may then be NULL, or already
 * freed: pass NULL).  NULL data is ignored. */
void strata_epoch_buf_free(strata_epoch *e, void *data, size_t length);

/* Counters so far.  [out] st */
void strata_epoch_stats(strata_epoch *e, struct strata_epoch_stats *st);

/*
 * Stop the fetches, wait for the threads, free pieces fetched but not
 * handed over, and free the iterator.  NULL is ignored.  Buffers already
 * handed over stay the caller's.  Returns promptly however the node
 * behaves (one that hangs included), without waiting for the client's
 * timeout_ms: the fetch threads' requests in flight (a hint, a get, a
 * connection being opened, a wait for a free connection of c's pool) are
 * cut short, their connections closed rather than pooled again, and
 * backoffs end; only a host name lookup under way (getaddrinfo) is waited
 * for.  c stays usable for other threads and later iterators.
 */
void strata_epoch_free(strata_epoch *e);

/*
 * Tell the node which keys of bucket will be read soon, in that order, so
 * it can prestage them (promote from cold, warm its cache); PROTOCOL.md
 * §5.14.  Sent in requests of at most 1024 keys.  Only a hint: the node
 * answers once it has accepted it, not once the keys are staged.
 *   [in] c, bucket
 *   [in] keys, nkeys  only read during the call
 * Returns 0; STRATA_EBADBUCKET; STRATA_EBADKEY (a bad key: nothing sent);
 * -EINVAL; -EOPNOTSUPP (the node does not take hints); STRATA_ENOBUCKET;
 * -EACCES; a transport error (requests before it were sent).
 */
int strata_hint(strata_client *c, const char *bucket, const char *const *keys,
		size_t nkeys);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_STRATA_H */
