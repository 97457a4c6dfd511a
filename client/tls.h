// SPDX-License-Identifier: Apache-2.0
/*
 * tls: the client's blocking TLS 1.3 connections.  The only client file that
 * includes OpenSSL's SSL headers; everything above it sees byte streams and
 * negative errno values.
 *
 * A connection is a blocking TCP socket with SO_RCVTIMEO / SO_SNDTIMEO set
 * to the client's timeout, so every read and write returns within it
 * (-ETIMEDOUT).  Writes use send(MSG_NOSIGNAL) through a small BIO, so a
 * peer that went away gives -EPIPE instead of killing the process with
 * SIGPIPE.  A new socket is watched for the calling thread's cancel
 * (client_int.h) until tls_conn_free() or the pool takes the connection
 * back: a cancel fails its connect, handshake, reads and writes at once.
 */
#ifndef STRATA_CLIENT_TLS_H
#define STRATA_CLIENT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tls_ctx;
struct tls_conn;

/*
 * A context: the trust store and settings every connection shares.
 *   [in]  ca_file  PEM CA bundle, or NULL for the system's default paths
 * Returns 0, -ENOENT / -EACCES (ca_file unreadable), -EPROTO (not PEM),
 * -ENOMEM.
 */
int tls_ctx_new(const char *ca_file, struct tls_ctx **out);
void tls_ctx_free(struct tls_ctx *ctx);

/*
 * Connect to host:port, trying each address, and do the TLS handshake,
 * verifying the server's certificate chain and that it names host (a DNS
 * name, or an IP address literal matched against IP SANs).
 * Returns 0, -ETIMEDOUT, -ECONNREFUSED and other connect() errors,
 * -EHOSTUNREACH (name did not resolve), -EACCES (certificate refused),
 * -EPROTO (handshake failed otherwise, or the server chose another ALPN
 * protocol), -ENOMEM.
 */
int tls_conn_open(struct tls_ctx *ctx, const char *host, const char *port,
		  unsigned timeout_ms, struct tls_conn **out);
void tls_conn_free(struct tls_conn *conn);

/* Write all len bytes.  Returns 0, -ETIMEDOUT, -EPIPE, -ECONNRESET,
 * -EPROTO. */
int tls_conn_write(struct tls_conn *conn, const void *buf, size_t len);

/* Read exactly len bytes.  Returns 0, -ECONNRESET (the peer closed before
 * len bytes came), -ETIMEDOUT, -EPROTO. */
int tls_conn_read(struct tls_conn *conn, void *buf, size_t len);

/* The RFC 8446 exporter value for label, without context.
 * Returns 0 or -EPROTO. */
int tls_conn_export(struct tls_conn *conn, const char *label, uint8_t *out,
		    size_t len);

/* True when the peer has sent something not yet read (or closed): an idle
 * connection is then unfit for a new request, and a put still sending its
 * body has an early answer (an error) waiting. */
bool tls_conn_readable(struct tls_conn *conn);

/* Switch an open connection to non-blocking mode, for an event loop
 * (strata_conn_*); the blocking read/write calls above no longer apply. */
int tls_conn_nonblock(struct tls_conn *conn);

/* The connection's socket, to wait on. */
int tls_conn_fd(const struct tls_conn *conn);

/*
 * Non-blocking transfers (after tls_conn_nonblock()).  Return 0 with *n
 * bytes moved (at least one), -EAGAIN with *events set to POLLIN or POLLOUT
 * when nothing could move until the socket is ready for that (TLS may need
 * to write to read, or read to write), or another negative errno value.  A
 * write that returned -EAGAIN must be repeated with the same buffer and
 * length (OpenSSL's rule for retried writes).
 */
int tls_conn_read_some(struct tls_conn *conn, void *buf, size_t len,
		       size_t *n, short *events);
int tls_conn_write_some(struct tls_conn *conn, const void *buf, size_t len,
			size_t *n, short *events);

#endif
