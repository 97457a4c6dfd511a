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
 *   -ETIMEDOUT     no progress for timeout_ms (connect, send or receive)
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
 * and with whatever code the server answers (-EACCES for a denied
 * request, -EOPNOTSUPP, STRATA_ECLOSING, STRATA_ECORRUPT, ...).
 *
 * Retries: when a pooled connection turns out to be broken, it is dropped and
 * the request is sent once more on a fresh connection, but only while that
 * is safe: no byte of a caller's stream has been consumed (puts) or
 * delivered (gets).  Buffer and regular-file sources can always be replayed.
 *
 * Strings: bucket names and keys are NUL-terminated UTF-8.  Buckets are 3-63
 * characters of a-z, 0-9, '.', '-'; keys 1-1024 bytes (STRATA_EBADBUCKET,
 * STRATA_EBADKEY otherwise, checked before anything is sent).
 */
#ifndef STRATA_STRATA_H
#define STRATA_STRATA_H

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
 * file is not an error.  Its lines are "key = value"; blank lines and lines
 * starting with '#' or ';' are skipped, as are "[section]" lines.
 * Afterwards every non-NULL string field is a heap copy owned by cfg (the
 * caller's own strings were copied too); free them with
 * strata_config_release().  Overwriting such a field leaks its copy.
 * Returns 0 (even if some fields are still NULL: strata_client_new()
 * judges), STRATA_ECONFIG (unreadable line or bad number in the file),
 * -ENOMEM, or the negative errno of opening or reading the file.  On error
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
 * Get a byte range of an object into a file descriptor, written at its
 * current offset.  As strata_object_get(), plus -errno of write().
 *   [in] fd  not closed
 */
int strata_object_get_fd(strata_client *c, const char *bucket,
			 const char *key, uint64_t offset, uint64_t length,
			 int fd, struct strata_get_result *res);

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
 *   [out] out   free with strata_list_free()
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

#ifdef __cplusplus
}
#endif
#endif /* STRATA_STRATA_H */
