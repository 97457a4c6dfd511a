// SPDX-License-Identifier: Apache-2.0
/*
 * tls: TLS 1.3 (OpenSSL) without sockets.  tls.c is the only file in the
 * daemon that includes OpenSSL's SSL headers; everything above it sees
 * opaque contexts, byte buffers and Strata error codes.
 *
 * A connection is a pure state machine over bytes: the caller feeds the
 * ciphertext it read from the network (tls_conn_feed), pulls plaintext out
 * (tls_conn_read), pushes plaintext in (tls_conn_write) and takes the
 * ciphertext to send (tls_conn_take_out).  OpenSSL never touches a file
 * descriptor, so the event loop (net.c) owns all I/O and every call here
 * returns without blocking.
 *
 *   conn states:  HANDSHAKE -> OPEN [tls_conn_handshake returns 0]
 *                 HANDSHAKE -> FAILED [tls_conn_handshake error]
 *                 OPEN -> PEER_CLOSED [tls_conn_read returns 0: close_notify]
 *                 OPEN -> FAILED [tls_conn_read/write error]
 *                 OPEN/PEER_CLOSED -> SHUT [tls_conn_shutdown: close_notify out]
 *
 * Error codes: 0, -EAGAIN (needs more input), -ENOMEM, -EPROTO (the peer
 * broke the protocol, sent an alert, or sent bytes that are not TLS),
 * -EKEYREJECTED (a certificate failed verification), -ENOTCONN (the call
 * needs a finished handshake), -EPIPE (the connection failed or was shut
 * down earlier), STRATA_ECONFIG (unusable certificate, key or CA file), or a
 * negative errno from the file system.  OpenSSL's error queue is converted
 * here: context errors are logged (once, here); a connection's error text is
 * kept on the connection (tls_conn_error) for its owner to log once, with
 * the peer's address, at the level it chooses (a port scanner's garbage is
 * not an operator's error).
 *
 * Threads: a tls_ctx may be shared by connections on several loop threads
 * (reference counts are atomic, SSL_CTX is thread safe for that use); one
 * tls_conn belongs to one thread at a time.
 */
#ifndef STRATA_TLS_H
#define STRATA_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tls_ctx;
struct tls_conn;

/* The exporter label the auth handshake binds its HMAC to (32 bytes, empty
 * context), so a proof cannot be replayed on another TLS connection. */
#define TLS_EXPORTER_AUTH "EXPORTER-strata-auth"

/*
 * Create a server context: TLS 1.3 only, TLS_AES_256_GCM_SHA384 and
 * TLS_CHACHA20_POLY1305_SHA256 (AES preferred, ChaCha20 when the client
 * prefers it, i.e. has no AES hardware), session tickets off.
 *   [in]  cert_pem       path of a PEM file: the certificate, then any
 *                        intermediate certificates
 *   [in]  key_pem        path of the PEM private key matching cert_pem
 *   [in]  client_ca_pem  path of a PEM file of CA certificates whose client
 *                        certificates are accepted (mutual TLS between nodes),
 *                        or NULL to request no client certificate.  A client
 *                        certificate is requested, not required: clients
 *                        authenticate with their access key; a certificate
 *                        that is presented must verify, or the handshake fails
 *   [out] out            the context, with one reference held by the caller
 * Returns 0, -ENOMEM, a negative errno for an unreadable file, or
 * STRATA_ECONFIG for bad PEM contents or a key that does not match.
 */
int tls_ctx_new_server(const char *cert_pem, const char *key_pem,
		       const char *client_ca_pem, struct tls_ctx **out);

/*
 * Create a client context (node to node).  The peer's certificate must
 * verify against ca_pem; name the peer with tls_conn_set_peer_name().
 *   [in]  ca_pem    path of a PEM file of trusted CA certificates
 *   [in]  cert_pem  our certificate chain (PEM path), or NULL for none
 *   [in]  key_pem   its private key (PEM path); NULL iff cert_pem is NULL
 *   [out] out       the context, with one reference held by the caller
 * Returns as tls_ctx_new_server(), and -EINVAL if only one of cert_pem and
 * key_pem is given.
 */
int tls_ctx_new_client(const char *ca_pem, const char *cert_pem,
		       const char *key_pem, struct tls_ctx **out);

/*
 * Take one more reference to ctx (for a second owner, e.g. a listener).
 * Returns ctx.
 */
struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx);

/*
 * Drop the caller's reference; the context is freed with the last one.
 * Connections hold their own reference, so a reload may free the old
 * context while connections made from it carry on.  NULL is a no-op.
 */
void tls_ctx_free(struct tls_ctx *ctx);

/*
 * Create a connection in the context's role (server: waits for a
 * ClientHello; client: its first tls_conn_handshake() call produces one).
 *   [in]  ctx  the context; the connection takes its own reference
 *   [out] out  the connection, owned by the caller until tls_conn_free()
 * Returns 0 or -ENOMEM.
 */
int tls_conn_new(struct tls_ctx *ctx, struct tls_conn **out);

/* Free a connection (no close_notify: call tls_conn_shutdown first for a
 * graceful close).  NULL is a no-op. */
void tls_conn_free(struct tls_conn *c);

/*
 * Client connections: the name the peer's certificate must carry (a DNS
 * name, also sent as SNI, or an IP address literal).  Call before the first
 * tls_conn_handshake().  Returns 0, -EINVAL (server connection or a name
 * OpenSSL refuses) or -ENOMEM.
 */
int tls_conn_set_peer_name(struct tls_conn *c, const char *name);

/*
 * Hand over ciphertext received from the peer.  The bytes are read in
 * place, without a copy, by the calls that follow; they are borrowed until
 * the next tls_conn_feed(), tls_conn_feed_release() or tls_conn_free(),
 * which copies whatever is still unread, so the caller may then reuse its
 * buffer.
 *   [in] data, len  ciphertext; len may be 0
 * Returns 0, -ENOMEM, or -ENOBUFS when more than TLS_MAX_UNREAD bytes would
 * wait unread (the caller keeps feeding without reading).
 */
int tls_conn_feed(struct tls_conn *c, const void *data, size_t len);
void tls_conn_feed_release(struct tls_conn *c);

/* Most ciphertext bytes a connection keeps unread (see tls_conn_feed). */
#define TLS_MAX_UNREAD ((size_t)16 << 20)

/* Whether fed ciphertext or decrypted plaintext is still waiting to be
 * read: after a pause, the reader must call tls_conn_read() again even
 * though no new bytes arrive. */
bool tls_conn_has_input(const struct tls_conn *c);

/*
 * Drive the handshake with the input fed so far.  Output (our flight, or an
 * alert on failure) may be pending afterwards in every case: send it.
 * Returns 0 when the handshake is complete (also on later calls), -EAGAIN
 * when it needs more input, or an error code (see the module comment).
 */
int tls_conn_handshake(struct tls_conn *c);
bool tls_conn_handshake_done(const struct tls_conn *c);

/*
 * Decrypt application data.
 *   [out] buf, len  where to put it
 * Returns the number of bytes (> 0; at most one TLS record, 16 KiB, per
 * call), 0 once the peer has sent close_notify (clean end of stream, also
 * on later calls), -EAGAIN when more ciphertext is needed, -ENOTCONN
 * before the handshake is done, or an error code.  May leave output pending
 * (e.g. a KeyUpdate reply).
 */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len);

/*
 * Encrypt application data; the ciphertext is appended to the pending
 * output.  The data is copied (encrypted) before the call returns.
 * Returns 0, -ENOTCONN before the handshake is done, -EPIPE after a failure
 * or tls_conn_shutdown(), -ENOMEM, or an error code.
 */
int tls_conn_write(struct tls_conn *c, const void *buf, size_t len);

/* Bytes of ciphertext waiting to be taken. */
size_t tls_conn_pending_out(const struct tls_conn *c);

/*
 * Take the pending ciphertext.
 *   [out] buf  a malloc()ed buffer that the caller now owns and free()s, or
 *              NULL when nothing is pending
 *   [out] len  its length, 0 when nothing is pending
 */
void tls_conn_take_out(struct tls_conn *c, uint8_t **buf, size_t *len);

/*
 * Queue a close_notify alert (graceful close; TLS 1.3 closes each
 * direction on its own, so we do not wait for the peer's).  No writes are
 * allowed afterwards.  Returns 0, -ENOTCONN during the handshake (there is
 * nothing to close gracefully: just drop the connection), -EPIPE after a
 * failure, or -ENOMEM.
 */
int tls_conn_shutdown(struct tls_conn *c);

/*
 * RFC 8446 exporter (SSL_export_keying_material) with an empty context:
 * both ends of one connection get the same bytes, and no other connection
 * does.
 *   [in]  label  e.g. TLS_EXPORTER_AUTH
 *   [out] out, len
 * Returns 0, -ENOTCONN before the handshake is done, or -EPROTO.
 */
int tls_conn_export(const struct tls_conn *c, const char *label,
		    uint8_t *out, size_t len);

/*
 * The subject of the peer's verified certificate, RFC 2253 form
 * ("CN=node-2,O=strata").
 *   [out] buf, len  NUL-terminated on success
 * Returns 0, -ENOENT (no certificate: a plain client), -ENOTCONN before the
 * handshake is done, -ERANGE if buf is too small, or -ENOMEM.
 */
int tls_conn_peer_subject(const struct tls_conn *c, char *buf, size_t len);

/* The negotiated cipher suite's name ("TLS_AES_256_GCM_SHA384"), or "none"
 * before the handshake; a static string. */
const char *tls_conn_cipher(const struct tls_conn *c);

/* Text of the connection's last error ("" if none); valid until the next
 * call on c. */
const char *tls_conn_error(const struct tls_conn *c);

#endif
