// SPDX-License-Identifier: Apache-2.0
/*
 * tls: blocking TLS 1.3 client connections over OpenSSL (see tls.h).
 *
 * The socket is wrapped in a BIO of our own rather than OpenSSL's socket
 * BIO for two reasons: send() with MSG_NOSIGNAL (a library must not make
 * its caller handle SIGPIPE), and the errno of the failing recv()/send()
 * kept in the connection, where OpenSSL's error paths cannot clobber it
 * before we map it (EAGAIN from SO_RCVTIMEO means -ETIMEDOUT).
 *
 * OpenSSL's error queue is per thread; each call clears it first and drops
 * it after mapping the failure to an errno value, so no stale entry leaks
 * into the caller's or another library's use of OpenSSL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "proto.h"
#include "client_int.h"
#include "tls.h"
#include "strata/error.h"
#include "banned.h"

/* Large TLS reads: measured ~40% faster bulk GETs (shared/LIMITS.md). */
#define TLS_READ_BUFFER (256u * 1024)

struct tls_ctx {
	SSL_CTX *ssl_ctx;
	BIO_METHOD *bio_meth;
};

struct tls_conn {
	int fd;
	SSL *ssl;
	int io_errno;	/* errno of the last failed recv/send, 0 if none */
	bool eof;	/* recv saw the peer's FIN */
	bool nonblock;	/* tls_conn_nonblock(): EAGAIN means "try again" */
	unsigned timeout_ms;	/* SO_RCVTIMEO / SO_SNDTIMEO */
};

static int64_t now_ms(void);

/* ---- The socket BIO ---------------------------------------------------- */

/*
 * A recv() or send() that a signal interrupted (EINTR): unless the
 * thread's interrupt hook ends the call (client_int.h), wait for the
 * socket with poll() until the deadline the first interruption set, the
 * socket's timeout from then.  Calling recv()/send() again would restart
 * SO_RCVTIMEO / SO_SNDTIMEO: signals more frequent than the timeout (a
 * profiler's, an interval timer's) would make a node that hangs be waited
 * for forever.  0: the socket is ready, try again; -1 with errno EAGAIN
 * (timed out: read as -ETIMEDOUT), ECANCELED or poll's.
 */
static int io_interrupted(struct tls_conn *c, short events, int64_t *deadline)
{
	struct pollfd p = { .fd = c->fd, .events = events };
	int64_t left;
	int n;

	for (;;) {
		if (client_interrupted()) {
			errno = ECANCELED;
			return -1;
		}
		if (!*deadline)
			*deadline = now_ms() + c->timeout_ms;
		left = *deadline - now_ms();
		if (left <= 0) {
			errno = EAGAIN;
			return -1;
		}
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n == 0) {
			errno = EAGAIN;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

static int bio_write_ex(BIO *b, const char *data, size_t len, size_t *done)
{
	struct tls_conn *c = BIO_get_data(b);
	int64_t deadline = 0;
	ssize_t n;

	BIO_clear_retry_flags(b);
	while ((n = send(c->fd, data, len, MSG_NOSIGNAL)) < 0 &&
	       errno == EINTR && !io_interrupted(c, POLLOUT, &deadline))
		;
	if (n < 0) {
		c->io_errno = errno;
		if (c->nonblock && (errno == EAGAIN || errno == EWOULDBLOCK))
			BIO_set_retry_write(b);
		*done = 0;
		return 0;
	}
	*done = (size_t)n;
	return 1;
}

static int bio_read_ex(BIO *b, char *data, size_t len, size_t *done)
{
	struct tls_conn *c = BIO_get_data(b);
	int64_t deadline = 0;
	ssize_t n;

	BIO_clear_retry_flags(b);
	while ((n = recv(c->fd, data, len, 0)) < 0 && errno == EINTR &&
	       !io_interrupted(c, POLLIN, &deadline))
		;
	*done = 0;
	if (n < 0) {
		c->io_errno = errno;
		if (c->nonblock && (errno == EAGAIN || errno == EWOULDBLOCK))
			BIO_set_retry_read(b);
		return 0;
	}
	if (n == 0) {
		c->eof = true;
		return 0;
	}
	*done = (size_t)n;
	return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_conn *c = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return c && c->eof;
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/* ---- Context ----------------------------------------------------------- */

/*
 * The CA file can be read and is a regular file: OpenSSL would block on a
 * FIFO until someone writes to it, read /dev/urandom forever, and say only
 * "no certificate" of a directory.  0, -errno (-EISDIR for a directory) or
 * STRATA_ECONFIG for another kind of file.
 */
static int ca_file_check(const char *path)
{
	struct stat st;
	int fd, rc = 0;

	/* O_NONBLOCK: opening a FIFO does not wait for a writer. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0)
		rc = -errno;
	else if (S_ISDIR(st.st_mode))
		rc = -EISDIR;
	else if (!S_ISREG(st.st_mode))
		rc = STRATA_ECONFIG;
	close(fd);
	return rc;
}

int tls_ctx_new(const char *ca_file, struct tls_ctx **out)
{
	struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
	int rc = -ENOMEM;

	if (!ctx)
		return -ENOMEM;
	ERR_clear_error();
	ctx->ssl_ctx = SSL_CTX_new(TLS_client_method());
	ctx->bio_meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				     "strata-socket");
	if (!ctx->ssl_ctx || !ctx->bio_meth)
		goto fail;
	if (!BIO_meth_set_write_ex(ctx->bio_meth, bio_write_ex) ||
	    !BIO_meth_set_read_ex(ctx->bio_meth, bio_read_ex) ||
	    !BIO_meth_set_ctrl(ctx->bio_meth, bio_ctrl) ||
	    !BIO_meth_set_create(ctx->bio_meth, bio_create))
		goto fail;
	if (!SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_3_VERSION))
		goto fail;
	SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_read_ahead(ctx->ssl_ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx->ssl_ctx, TLS_READ_BUFFER);
	/* We never resume.  (Tickets the server sends anyway arrive right
	 * after the handshake and are read with the HELLO response, before a
	 * connection first idles, so tls_conn_readable() does not see them.) */
	SSL_CTX_set_session_cache_mode(ctx->ssl_ctx, SSL_SESS_CACHE_OFF);
	if (ca_file) {
		rc = ca_file_check(ca_file);
		if (rc)
			goto fail;
		if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file,
						  NULL) != 1) {
			rc = -EPROTO;
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx->ssl_ctx) != 1) {
		rc = -EPROTO;
		goto fail;
	}
	ERR_clear_error();
	*out = ctx;
	return 0;
fail:
	ERR_clear_error();
	tls_ctx_free(ctx);
	return rc;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	BIO_meth_free(ctx->bio_meth);
	free(ctx);
}

/* ---- Connections ------------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connect one address within the deadline; returns the fd or -errno. */
static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
			SOCK_NONBLOCK, ai->ai_protocol);
	int err = 0;
	socklen_t elen = sizeof(err);

	if (fd < 0)
		return -errno;
	/* From here a cancel (client_int.h) shuts the socket down: a
	 * connect in progress fails at once, and so does every read or
	 * write after it. */
	if (cancel_watch(fd)) {
		close(fd);
		return -ECANCELED;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int n;

		if (errno != EINPROGRESS) {
			err = errno;
			goto fail;
		}
		do {
			int64_t left = deadline - now_ms();

			/* poll() takes an int: a timeout_ms over 2^31
			 * (24 days) would wrap to "wait forever". */
			n = poll(&p, 1, left <= 0 ? 0 : left > INT_MAX ?
					INT_MAX : (int)left);
		} while (n < 0 && errno == EINTR && !client_interrupted());
		if (n < 0 && errno == EINTR)
			errno = ECANCELED;
		if (n == 0) {
			err = ETIMEDOUT;
			goto fail;
		}
		if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
					&elen) != 0) {
			err = errno;
			goto fail;
		}
		if (err)
			goto fail;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
		err = errno;
		goto fail;
	}
	return fd;
fail:
	if (cancel_unwatch(fd))
		err = ECANCELED;
	close(fd);
	return -err;
}

static int tcp_connect(const char *host, const char *port, unsigned timeout_ms)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV,
	};
	struct addrinfo *res, *ai;
	int64_t deadline = now_ms() + timeout_ms;
	int fd = -EHOSTUNREACH;
	int one = 1, gai;
	struct timeval tv = {
		.tv_sec = timeout_ms / 1000,
		.tv_usec = (timeout_ms % 1000) * 1000,
	};

	/* The lookup itself cannot be cut short; at least none starts once
	 * the thread's cancel fired. */
	if (cancel_fired())
		return -ECANCELED;
	gai = getaddrinfo(host, port, &hints, &res);
	if (gai) {
		client_message("cannot resolve %s: %s", host,
			       gai == EAI_SYSTEM ? strerror(errno) :
			       gai_strerror(gai));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = connect_one(ai, deadline);
		if (fd >= 0 || fd == -ETIMEDOUT || fd == -ECANCELED)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return fd;
	/* Requests are written whole (header + fields + body in one write);
	 * Nagle would only delay the small ones. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
		int err = -errno;

		cancel_unwatch(fd);
		close(fd);
		return err;
	}
	return fd;
}

/* Map a failed SSL_* call to a negative errno; drops the error queue. */
static int ssl_failure(struct tls_conn *c, int ret)
{
	int e = SSL_get_error(c->ssl, ret);
	int io = c->io_errno;

	ERR_clear_error();
	switch (e) {
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET;
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -ETIMEDOUT;
	default:
		if (io == EAGAIN || io == EWOULDBLOCK)
			return -ETIMEDOUT;
		if (io)
			return -io;
		if (c->eof)
			return -ECONNRESET;
		return -EPROTO;
	}
}

static void io_reset(struct tls_conn *c)
{
	c->io_errno = 0;
	ERR_clear_error();
}

int tls_conn_open(struct tls_ctx *ctx, const char *host, const char *port,
		  unsigned timeout_ms, struct tls_conn **out)
{
	static const unsigned char alpn[] = "\x08" PROTO_ALPN;
	struct tls_conn *c = calloc(1, sizeof(*c));
	unsigned char ip[16];
	const unsigned char *sel;
	unsigned int sel_len;
	BIO *bio;
	int rc, r;

	_Static_assert(sizeof(PROTO_ALPN) - 1 == 8, "ALPN length prefix");
	if (!c)
		return -ENOMEM;
	c->timeout_ms = timeout_ms;
	c->fd = tcp_connect(host, port, timeout_ms);
	if (c->fd < 0) {
		rc = c->fd;
		free(c);
		return rc;
	}
	rc = -ENOMEM;
	ERR_clear_error();
	c->ssl = SSL_new(ctx->ssl_ctx);
	if (!c->ssl)
		goto fail;
	bio = BIO_new(ctx->bio_meth);
	if (!bio)
		goto fail;
	BIO_set_data(bio, c);
	SSL_set_bio(c->ssl, bio, bio);
	if (inet_pton(AF_INET, host, ip) == 1 ||
	    inet_pton(AF_INET6, host, ip) == 1) {
		if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
						   host))
			goto fail;
	} else if (!SSL_set1_host(c->ssl, host) ||
		   !SSL_set_tlsext_host_name(c->ssl, host)) {
		goto fail;
	}
	if (SSL_set_alpn_protos(c->ssl, alpn, sizeof(alpn) - 1) != 0)
		goto fail;
	io_reset(c);
	r = SSL_connect(c->ssl);
	if (r != 1) {
		if (SSL_get_verify_result(c->ssl) != X509_V_OK)
			rc = STRATA_ECERT;
		else
			rc = ssl_failure(c, r);
		goto fail;
	}
	SSL_get0_alpn_selected(c->ssl, &sel, &sel_len);
	if (sel_len && (sel_len != sizeof(alpn) - 2 ||
			memcmp(sel, alpn + 1, sel_len) != 0)) {
		rc = -EPROTO;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	ERR_clear_error();
	tls_conn_free(c);
	return rc;
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	if (c->ssl) {
		/* No close_notify: the peer may be gone, and a blocking
		 * shutdown could wait a whole timeout for nothing. */
		SSL_free(c->ssl);
	}
	ERR_clear_error();
	cancel_unwatch(c->fd);
	close(c->fd);
	free(c);
}

int tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		size_t n;
		int r;

		io_reset(c);
		r = SSL_write_ex(c->ssl, p, len, &n);
		if (r != 1)
			return ssl_failure(c, r);
		p += n;
		len -= n;
	}
	return 0;
}

int tls_conn_read(struct tls_conn *c, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		size_t n;
		int r;

		io_reset(c);
		r = SSL_read_ex(c->ssl, p, len, &n);
		if (r != 1)
			return ssl_failure(c, r);
		p += n;
		len -= n;
	}
	return 0;
}

int tls_conn_export(struct tls_conn *c, const char *label, uint8_t *out,
		    size_t len)
{
	int r;

	ERR_clear_error();
	r = SSL_export_keying_material(c->ssl, out, len, label, strlen(label),
				       NULL, 0, 0);
	ERR_clear_error();
	return r == 1 ? 0 : -EPROTO;
}

int tls_conn_nonblock(struct tls_conn *c)
{
	int fl = fcntl(c->fd, F_GETFL);

	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0)
		return -errno;
	c->nonblock = true;
	return 0;
}

int tls_conn_fd(const struct tls_conn *c)
{
	return c->fd;
}

/* A non-blocking SSL_read_ex/SSL_write_ex that did nothing: -EAGAIN with
 * *events set to what the socket must become, else the mapped failure. */
static int nb_failure(struct tls_conn *c, int ret, short *events)
{
	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		ERR_clear_error();
		*events = POLLIN;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		ERR_clear_error();
		*events = POLLOUT;
		return -EAGAIN;
	default:
		return ssl_failure(c, ret);
	}
}

int tls_conn_read_some(struct tls_conn *c, void *buf, size_t len,
		       size_t *got, short *events)
{
	int r;

	*got = 0;
	io_reset(c);
	r = SSL_read_ex(c->ssl, buf, len, got);
	return r == 1 ? 0 : nb_failure(c, r, events);
}

int tls_conn_write_some(struct tls_conn *c, const void *buf, size_t len,
			size_t *done, short *events)
{
	int r;

	*done = 0;
	io_reset(c);
	r = SSL_write_ex(c->ssl, buf, len, done);
	return r == 1 ? 0 : nb_failure(c, r, events);
}

bool tls_conn_readable(struct tls_conn *c)
{
	char b;
	ssize_t n;

	if (SSL_has_pending(c->ssl))
		return true;
	n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}
