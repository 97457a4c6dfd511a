// SPDX-License-Identifier: Apache-2.0
/*
 * tls: TLS 1.3 over caller-supplied buffers (see tls.h for the API).
 *
 * OpenSSL reads and writes through one BIO of our own, instead of a pair of
 * memory BIOs, to save a copy in each direction:
 *   - in:  tls_conn_feed() only records where the caller's ciphertext is
 *          (the "window"); OpenSSL's reads copy straight from it into its
 *          record buffer.  Bytes still unread when the window is released
 *          are copied to c->spill, which reads drain first, so the stream
 *          order is spill, then window.  The spill is normally empty: the
 *          owner reads until -EAGAIN, and with read-ahead OpenSSL pulls
 *          whole windows; it fills only when the owner pauses mid-window.
 *   - out: OpenSSL's writes append to c->out, a malloc()ed buffer that
 *          tls_conn_take_out() hands over whole, to be sent as is.
 *
 * Invariants:
 *   - c->spill_off <= c->spill_len <= c->spill_cap; c->win_off <= c->win_len;
 *   - c->win is non-NULL only between tls_conn_feed() and the next feed,
 *     release or free (the borrow);
 *   - unread ciphertext (spill + window) <= TLS_MAX_UNREAD after a feed;
 *   - every OpenSSL call on a connection is preceded by ERR_clear_error(),
 *     so SSL_get_error() and the error text see only that call's errors, and
 *     the queue is empty again when we return (nothing leaks to another
 *     connection on the same thread);
 *   - c->failed is sticky: after an error no OpenSSL call is made again.
 *
 * Choices:
 *   - TLS 1.3 only, AES-256-GCM and ChaCha20-Poly1305; the server's order
 *     wins (AES first: AES-NI and VAES beat ChaCha20 on our nodes) except
 *     that a client preferring ChaCha20 gets it (no AES hardware there).
 *   - Session tickets off: connections are long-lived and pipelined, so a
 *     resumption would save one ECDHE per hour, not per request; tickets
 *     would add ticket-key management across nodes and reloads, and their
 *     post-handshake messages would add a write to every new connection.
 *   - Read-ahead with a 64 KiB record buffer: OpenSSL pulls several records
 *     per BIO read instead of a 5-byte header and then a body.  The large
 *     reads that made read-ahead worth ~40% in LIMITS.md are the socket
 *     reads, done by net.c into 256 KiB buffers; a bigger record buffer
 *     here would cost memory per idle connection and buy nothing.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "log.h"
#include "proto.h"
#include "strata/error.h"
#include "banned.h"

#define TLS_CIPHERSUITES "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256"
#define TLS_READ_BUF (64u << 10)
/* Largest TLS 1.3 record payload, and the bytes a record adds around it:
 * 5 header + 1 inner content type + 16 AEAD tag. */
#define TLS_RECORD (16u << 10)
#define TLS_RECORD_OVERHEAD 22u
#define TLS_OUT_MIN (TLS_RECORD + 256u)

struct tls_ctx {
	SSL_CTX *ssl;
	BIO_METHOD *bio_method;	/* our buffer BIO; lives with the ctx */
	atomic_uint refs;
	bool server;
};

struct tls_conn {
	struct tls_ctx *ctx;	/* one reference */
	SSL *ssl;

	const uint8_t *win;	/* borrowed ciphertext, see tls_conn_feed */
	size_t win_len;
	size_t win_off;
	uint8_t *spill;		/* owned unread ciphertext */
	size_t spill_off;
	size_t spill_len;
	size_t spill_cap;

	uint8_t *out;		/* ciphertext to send */
	size_t out_len;
	size_t out_cap;

	bool handshake_done;
	bool peer_closed;	/* close_notify received */
	bool shut;		/* close_notify queued */
	bool failed;
	char err[200];
};

/* ---- error queue -> codes ---------------------------------------------- */

/* Map one queued error to a code; dflt when it says nothing specific. */
static int err_code(unsigned long e, int dflt)
{
	if (!e)
		return dflt;
	if (ERR_SYSTEM_ERROR(e)) {
		int sys = ERR_GET_REASON(e);

		return sys > 0 ? -sys : -EIO;
	}
	if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
		return -ENOMEM;
	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
		return -EKEYREJECTED;
	return dflt;
}

/* Drain the queue into buf as "what: reason; reason"; returns the code. */
static int drain_errors(char *buf, size_t len, const char *what, int dflt)
{
	unsigned long e;
	int code = dflt;
	size_t n;
	int w;

	w = snprintf(buf, len, "%s", what);
	n = w < 0 ? 0 : (size_t)w < len ? (size_t)w : len - 1;
	while ((e = ERR_get_error()) != 0) {
		const char *r = ERR_SYSTEM_ERROR(e)
					? strerror(ERR_GET_REASON(e))
					: ERR_reason_error_string(e);
		char num[32];

		/* The first error we can classify is the root cause (a
		 * system error comes before the BIO and SSL errors it causes). */
		if (code == dflt)
			code = err_code(e, dflt);
		if (!r) {
			snprintf(num, sizeof(num), "error %lx", e);
			r = num;
		}
		w = snprintf(buf + n, len - n, "%s%s", n ? ": " : "", r);
		if (w > 0)
			n += (size_t)w < len - n ? (size_t)w : len - n - 1;
	}
	return code;
}

/* Context-level failure: log once, here, and return the code. */
static int ctx_error(const char *what, const char *path, int dflt)
{
	char head[256], text[768];
	int ret;

	snprintf(head, sizeof(head), "%s%s%s", what, path ? " " : "",
		 path ? path : "");
	ret = drain_errors(text, sizeof(text), head, dflt);
	log_err("tls", "%s (%s)", text, strata_strerror(ret));
	return ret;
}

/* ---- the buffer BIO ---------------------------------------------------- */

static int bio_read(BIO *b, char *buf, int len)
{
	struct tls_conn *c = BIO_get_data(b);
	size_t want = len > 0 ? (size_t)len : 0, n = 0;

	BIO_clear_retry_flags(b);
	if (c->spill_off < c->spill_len) {
		size_t k = c->spill_len - c->spill_off;

		k = k < want ? k : want;
		memcpy(buf, c->spill + c->spill_off, k);
		c->spill_off += k;
		n += k;
		if (c->spill_off == c->spill_len)
			c->spill_off = c->spill_len = 0;
	}
	if (n < want && c->win && c->win_off < c->win_len) {
		size_t k = c->win_len - c->win_off;

		k = k < want - n ? k : want - n;
		memcpy(buf + n, c->win + c->win_off, k);
		c->win_off += k;
		n += k;
	}
	if (!n) {
		/* Not an EOF: the socket's end is the owner's business. */
		BIO_set_retry_read(b);
		return -1;
	}
	return (int)n;
}

/* Make room for `more` bytes of output; grows to at least a full record. */
static int out_reserve(struct tls_conn *c, size_t more)
{
	size_t need = c->out_len + more, cap;
	uint8_t *p;

	if (need <= c->out_cap)
		return 0;
	if (need < c->out_len)
		return -ENOMEM;
	cap = c->out_cap ? c->out_cap * 2 : TLS_OUT_MIN;
	if (cap < need)
		cap = need;
	p = realloc(c->out, cap);
	if (!p)
		return -ENOMEM;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

static int bio_write(BIO *b, const char *buf, int len)
{
	struct tls_conn *c = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (out_reserve(c, (size_t)len) < 0)
		return -1;	/* OpenSSL fails the call: -ENOMEM upstream */
	memcpy(c->out + c->out_len, buf, (size_t)len);
	c->out_len += (size_t)len;
	return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_conn *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_PENDING: {
		size_t n = c->spill_len - c->spill_off;

		if (c->win)
			n += c->win_len - c->win_off;
		return n > LONG_MAX ? LONG_MAX : (long)n;
	}
	case BIO_CTRL_WPENDING:
		return c->out_len > LONG_MAX ? LONG_MAX : (long)c->out_len;
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static int bio_destroy(BIO *b)
{
	(void)b;
	return 1;
}

static BIO_METHOD *bio_method_new(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				     "strata-buffer");

	if (!m)
		return NULL;
	if (!BIO_meth_set_read(m, bio_read) ||
	    !BIO_meth_set_write(m, bio_write) ||
	    !BIO_meth_set_ctrl(m, bio_ctrl) ||
	    !BIO_meth_set_create(m, bio_create) ||
	    !BIO_meth_set_destroy(m, bio_destroy)) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

/* ---- contexts ---------------------------------------------------------- */

/* Settings shared by both roles. */
static int ctx_common(SSL_CTX *ssl)
{
	if (!SSL_CTX_set_min_proto_version(ssl, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ssl, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ssl, TLS_CIPHERSUITES) ||
	    !SSL_CTX_set1_groups_list(ssl, TLS_GROUPS))
		return -1;
	SSL_CTX_set_options(ssl, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_read_ahead(ssl, 1);
	SSL_CTX_set_default_read_buffer_len(ssl, TLS_READ_BUF);
	return 0;
}

static int ctx_load_identity(SSL_CTX *ssl, const char *cert, const char *key)
{
	struct stat st;

	/* Group access is common (Debian's ssl-cert group); anyone's is a
	 * key to impersonate the node with. */
	if (stat(key, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 007))
		log_warn("tls", "%s is mode %04o: every user may read the "
			 "node's private key (chmod o-rwx %s)", key,
			 (unsigned)(st.st_mode & 07777), key);
	if (SSL_CTX_use_certificate_chain_file(ssl, cert) != 1)
		return ctx_error("loading certificate chain", cert, STRATA_ECONFIG);
	if (SSL_CTX_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM) != 1)
		return ctx_error("loading private key", key, STRATA_ECONFIG);
	if (SSL_CTX_check_private_key(ssl) != 1)
		return ctx_error("private key does not match certificate", key,
				 STRATA_ECONFIG);
	return 0;
}

static int ctx_new(bool server, struct tls_ctx **out)
{
	struct tls_ctx *ctx = calloc(1, sizeof(*ctx));

	*out = NULL;
	if (!ctx)
		return -ENOMEM;
	ERR_clear_error();
	ctx->server = server;
	atomic_init(&ctx->refs, 1);
	ctx->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	ctx->bio_method = bio_method_new();
	if (!ctx->ssl || !ctx->bio_method) {
		int ret = ctx_error("creating context", NULL, -ENOMEM);

		tls_ctx_free(ctx);
		return ret;
	}
	if (ctx_common(ctx->ssl) < 0) {
		int ret = ctx_error("configuring TLS 1.3", NULL, STRATA_ECONFIG);

		tls_ctx_free(ctx);
		return ret;
	}
	*out = ctx;
	return 0;
}

/* ALPN (PROTOCOL.md §1): strata/1 when the client offers it; a client
 * that offers ALPN without it means another protocol (or another version
 * of ours) and is refused with no_application_protocol.  A client that
 * offers no ALPN is not asked. */
static int alpn_select(SSL *ssl, const unsigned char **out,
		       unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x08" PROTO_ALPN;

	(void)ssl;
	(void)arg;
	_Static_assert(sizeof(PROTO_ALPN) - 1 == 8, "ALPN length prefix");
	if (SSL_select_next_proto((unsigned char **)out, outlen, ours,
				  sizeof(ours) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

int tls_ctx_new_server(const char *cert_pem, const char *key_pem,
		       const char *client_ca_pem, struct tls_ctx **out)
{
	struct tls_ctx *ctx;
	int ret;

	*out = NULL;
	if (!cert_pem || !key_pem)
		return -EINVAL;
	ret = ctx_new(true, &ctx);
	if (ret < 0)
		return ret;
	/* Our order, not the client's; but honour a client that puts ChaCha20
	 * first (it has no AES hardware). */
	SSL_CTX_set_options(ctx->ssl, SSL_OP_CIPHER_SERVER_PREFERENCE |
				      SSL_OP_PRIORITIZE_CHACHA);
	/* Tickets are off (see the module comment): send none. */
	SSL_CTX_set_num_tickets(ctx->ssl, 0);
	SSL_CTX_set_alpn_select_cb(ctx->ssl, alpn_select, NULL);
	ret = ctx_load_identity(ctx->ssl, cert_pem, key_pem);
	if (ret < 0)
		goto fail;
	if (client_ca_pem) {
		STACK_OF(X509_NAME) *names;

		if (SSL_CTX_load_verify_locations(ctx->ssl, client_ca_pem,
						  NULL) != 1) {
			ret = ctx_error("loading client CA", client_ca_pem,
					STRATA_ECONFIG);
			goto fail;
		}
		names = SSL_load_client_CA_file(client_ca_pem);
		if (!names) {
			ret = ctx_error("reading client CA names", client_ca_pem,
					STRATA_ECONFIG);
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx->ssl, names);
		/* Requested, not required: user clients have no certificate
		 * (they prove an access key); a node's must verify. */
		SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
	}
	*out = ctx;
	return 0;
fail:
	tls_ctx_free(ctx);
	return ret;
}

int tls_ctx_new_client(const char *ca_pem, const char *cert_pem,
		       const char *key_pem, struct tls_ctx **out)
{
	struct tls_ctx *ctx;
	int ret;

	*out = NULL;
	if (!ca_pem || !cert_pem != !key_pem)
		return -EINVAL;
	ret = ctx_new(false, &ctx);
	if (ret < 0)
		return ret;
	if (SSL_CTX_load_verify_locations(ctx->ssl, ca_pem, NULL) != 1) {
		ret = ctx_error("loading CA", ca_pem, STRATA_ECONFIG);
		goto fail;
	}
	SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
	if (cert_pem) {
		ret = ctx_load_identity(ctx->ssl, cert_pem, key_pem);
		if (ret < 0)
			goto fail;
	}
	*out = ctx;
	return 0;
fail:
	tls_ctx_free(ctx);
	return ret;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx)
{
	atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
	return ctx;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
		return;
	SSL_CTX_free(ctx->ssl);
	if (ctx->bio_method)
		BIO_meth_free(ctx->bio_method);
	free(ctx);
}

/* ---- connections ------------------------------------------------------- */

/* A connection-level failure: keep the text for the owner, return the code. */
static int conn_fail(struct tls_conn *c, const char *what, int dflt)
{
	int ret = drain_errors(c->err, sizeof(c->err), what, dflt);

	if (ret == -EKEYREJECTED) {
		long v = SSL_get_verify_result(c->ssl);
		size_t n = strlen(c->err);

		if (v != X509_V_OK)
			snprintf(c->err + n, sizeof(c->err) - n, " (%s)",
				 X509_verify_cert_error_string(v));
	}
	c->failed = true;
	return ret;
}

int tls_conn_new(struct tls_ctx *ctx, struct tls_conn **out)
{
	struct tls_conn *c = calloc(1, sizeof(*c));
	BIO *bio;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	ERR_clear_error();
	c->ssl = SSL_new(ctx->ssl);
	bio = c->ssl ? BIO_new(ctx->bio_method) : NULL;
	if (!bio) {
		SSL_free(c->ssl);
		free(c);
		ERR_clear_error();
		return -ENOMEM;
	}
	BIO_set_data(bio, c);
	SSL_set_bio(c->ssl, bio, bio);	/* one reference, for both ends */
	if (ctx->server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	c->ctx = tls_ctx_ref(ctx);
	*out = c;
	return 0;
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);	/* frees the BIO before its method goes */
	tls_ctx_free(c->ctx);
	free(c->spill);
	free(c->out);
	free(c);
}

static bool is_ip_literal(const char *name)
{
	unsigned char a[16];

	return inet_pton(AF_INET, name, a) == 1 ||
	       inet_pton(AF_INET6, name, a) == 1;
}

int tls_conn_set_peer_name(struct tls_conn *c, const char *name)
{
	int ok;

	if (c->ctx->server || !name || !*name)
		return -EINVAL;
	ERR_clear_error();
	if (is_ip_literal(name)) {
		/* SNI carries host names only (RFC 6066). */
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name);
	} else {
		ok = SSL_set_tlsext_host_name(c->ssl, name) == 1 &&
		     SSL_set1_host(c->ssl, name) == 1;
	}
	ERR_clear_error();
	return ok ? 0 : -EINVAL;
}

/* Copy the unread part of the window into the spill and end the borrow. */
static int spill_window(struct tls_conn *c)
{
	size_t rest = c->win ? c->win_len - c->win_off : 0;

	if (rest) {
		size_t live = c->spill_len - c->spill_off;

		if (c->spill_off) {	/* compact first */
			memmove(c->spill, c->spill + c->spill_off, live);
			c->spill_off = 0;
			c->spill_len = live;
		}
		if (live + rest > c->spill_cap) {
			size_t cap = live + rest;
			uint8_t *p;

			if (cap < TLS_OUT_MIN)
				cap = TLS_OUT_MIN;
			p = realloc(c->spill, cap);
			if (!p)
				return -ENOMEM;
			c->spill = p;
			c->spill_cap = cap;
		}
		memcpy(c->spill + c->spill_len, c->win + c->win_off, rest);
		c->spill_len += rest;
	}
	c->win = NULL;
	c->win_len = c->win_off = 0;
	return 0;
}

int tls_conn_feed(struct tls_conn *c, const void *data, size_t len)
{
	int ret = spill_window(c);

	if (ret < 0)
		return ret;
	if (c->spill_len - c->spill_off + len > TLS_MAX_UNREAD)
		return -ENOBUFS;
	if (len) {
		c->win = data;
		c->win_len = len;
		c->win_off = 0;
	}
	return 0;
}

void tls_conn_feed_release(struct tls_conn *c)
{
	if (spill_window(c) < 0) {
		/* Dropping ciphertext would desynchronise the stream: fail the
		 * connection instead, visibly. */
		snprintf(c->err, sizeof(c->err), "out of memory saving input");
		c->failed = true;
		c->win = NULL;
		c->win_len = c->win_off = 0;
	}
}

bool tls_conn_has_input(const struct tls_conn *c)
{
	if (c->failed)
		return false;
	if (c->spill_off < c->spill_len || (c->win && c->win_off < c->win_len))
		return true;
	return SSL_has_pending(c->ssl) == 1;
}

int tls_conn_handshake(struct tls_conn *c)
{
	int r;

	if (c->handshake_done)
		return 0;
	if (c->failed)
		return -EPIPE;
	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->handshake_done = true;
		return 0;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return conn_fail(c, "handshake: peer closed", -EPROTO);
	default:
		return conn_fail(c, "handshake", -EPROTO);
	}
}

bool tls_conn_handshake_done(const struct tls_conn *c)
{
	return c->handshake_done;
}

ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len)
{
	size_t n = 0;
	int r;

	if (!c->handshake_done)
		return -ENOTCONN;
	if (c->peer_closed)
		return 0;
	if (c->failed)
		return -EPIPE;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	ERR_clear_error();
	r = SSL_read_ex(c->ssl, buf, len, &n);
	if (r == 1)
		return (ssize_t)n;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		c->peer_closed = true;
		return 0;
	default:
		return conn_fail(c, "read", -EPROTO);
	}
}

int tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
	size_t done = 0, records;
	int r;

	if (!c->handshake_done)
		return -ENOTCONN;
	if (c->failed || c->shut)
		return -EPIPE;
	if (!len)
		return 0;
	/* Reserve the whole ciphertext up front: one allocation, not a
	 * realloc per doubling while OpenSSL appends record by record. */
	records = len / TLS_RECORD + 1;
	if (out_reserve(c, len + records * TLS_RECORD_OVERHEAD) < 0)
		return -ENOMEM;
	ERR_clear_error();
	r = SSL_write_ex(c->ssl, buf, len, &done);
	if (r == 1 && done == len)
		return 0;
	return conn_fail(c, "write", -EPROTO);
}

size_t tls_conn_pending_out(const struct tls_conn *c)
{
	return c->out_len;
}

void tls_conn_take_out(struct tls_conn *c, uint8_t **buf, size_t *len)
{
	if (!c->out_len) {
		*buf = NULL;
		*len = 0;
		return;
	}
	*buf = c->out;
	*len = c->out_len;
	c->out = NULL;
	c->out_len = c->out_cap = 0;
}

int tls_conn_shutdown(struct tls_conn *c)
{
	int r;

	if (!c->handshake_done)
		return -ENOTCONN;
	if (c->failed)
		return -EPIPE;
	if (c->shut)
		return 0;
	ERR_clear_error();
	r = SSL_shutdown(c->ssl);
	if (r < 0)
		return conn_fail(c, "shutdown", -EPROTO);
	c->shut = true;
	return 0;
}

int tls_conn_export(const struct tls_conn *c, const char *label,
		    uint8_t *out, size_t len)
{
	int r;

	if (!c->handshake_done)
		return -ENOTCONN;
	ERR_clear_error();
	/* No context: in TLS 1.3 that is the empty context (RFC 8446 7.5). */
	r = SSL_export_keying_material(c->ssl, out, len, label, strlen(label),
				       NULL, 0, 0);
	ERR_clear_error();
	return r == 1 ? 0 : -EPROTO;
}

int tls_conn_peer_subject(const struct tls_conn *c, char *buf, size_t len)
{
	X509 *cert;
	BIO *mem;
	char *p;
	long n;
	int ret = 0;

	if (!c->handshake_done)
		return -ENOTCONN;
	cert = SSL_get0_peer_certificate(c->ssl);
	if (!cert)
		return -ENOENT;
	/* The handshake fails on a bad certificate; this is belt and braces
	 * for a caller that trusts the name. */
	if (SSL_get_verify_result(c->ssl) != X509_V_OK)
		return -EKEYREJECTED;
	ERR_clear_error();
	mem = BIO_new(BIO_s_mem());
	if (!mem)
		return -ENOMEM;
	if (X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0,
			       XN_FLAG_RFC2253) < 0) {
		ret = -ENOMEM;
		goto out;
	}
	n = BIO_get_mem_data(mem, &p);
	if (n < 0 || (size_t)n >= len) {
		ret = -ERANGE;
		goto out;
	}
	memcpy(buf, p, (size_t)n);
	buf[n] = '\0';
out:
	BIO_free(mem);
	ERR_clear_error();
	return ret;
}

const char *tls_conn_cipher(const struct tls_conn *c)
{
	const SSL_CIPHER *ciph = SSL_get_current_cipher(c->ssl);

	return ciph ? SSL_CIPHER_get_name(ciph) : "none";
}

const char *tls_conn_error(const struct tls_conn *c)
{
	return c->err;
}
