// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for net.c: a real libuv TLS server on 127.0.0.1 (ephemeral
 * port) against real blocking OpenSSL clients running in threads.  The
 * clients report back through a uv_async_t; every wait is bounded.
 * (The throwaway-PKI helpers are the same as test_tls.c's.)
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "net.h"
#include "tls.h"
#include "pkiutil.h"
#include "testutil.h"
#include "banned.h"

static struct pki pki;

/* ---- fixture: loop, server, observations ------------------------------- */

#define MAXC 16
#define BULK ((size_t)8 << 20)
#define UPLOAD ((size_t)32 << 20)
#define PAUSE_MS 500

enum mode { M_ECHO, M_BULK, M_PAUSE };

struct fx {
	uv_loop_t loop;
	uv_async_t async;
	uv_timer_t tick;	/* wakes the loop so waits can time out */
	uv_timer_t resume;
	struct tls_ctx *tls;
	struct net_server *srv;
	struct net_limits lim;
	int port;
	SSL_CTX *cctx;		/* clients: trust pki.ca */

	/* server side, loop thread only */
	enum mode mode;
	int opens, closes, server_closed;
	int reasons[MAXC];
	uint8_t exp[MAXC][32];
	int subj_rc[MAXC];
	char subj[MAXC][128];
	size_t max_pending;
	size_t max_total;	/* net_server_out_pending() seen */
	int drains, enobufs, server_drains;
	int borrowed, released;	/* net_conn_write_borrowed and releases */
	struct net_conn *bulk[MAXC];	/* open M_BULK conns */
	uint8_t *pattern;	/* BULK or UPLOAD bytes */
	struct net_conn *paused_conn;
	int paused, pause_done, data_while_paused, mismatches;
	uint64_t t_resume;
	size_t got;

	/* from client threads */
	atomic_int ready, done;
};

static struct fx F;

struct sconn {
	enum mode mode;
	size_t sent;
};

static void on_async(uv_async_t *h)
{
	(void)h;	/* waking up is the point: predicates read the atomics */
}

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

static void fx_listen(void);

/* I/O threads for the server under test: 0 (connections on the test's
 * loop) or 2 (each test runs again in the "threaded" case). */
static unsigned net_threads;
/* Sends through libuv's write(2) instead of the loop's io_uring (the
 * "inline-write" case: what a node without io_uring does). */
static bool net_no_uring;

static void setup(void)
{
	memset(&F, 0, sizeof(F));
	/* As stratad does: libuv writes with write(2), and a peer that
	 * closed early must be an error code, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	pki_make(&pki);
	ck_assert_int_eq(uv_loop_init(&F.loop), 0);
	ck_assert_int_eq(uv_async_init(&F.loop, &F.async, on_async), 0);
	uv_timer_init(&F.loop, &F.tick);
	uv_timer_start(&F.tick, on_tick, 20, 20);
	uv_timer_init(&F.loop, &F.resume);
	ck_assert_int_eq(tls_ctx_new_server(pki.srv_crt, pki.srv_key, NULL,
					    &F.tls), 0);
	F.cctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(F.cctx);
	ck_assert_int_eq(SSL_CTX_load_verify_locations(F.cctx, pki.ca, NULL), 1);
	SSL_CTX_set_verify(F.cctx, SSL_VERIFY_PEER, NULL);
	net_limits_default(&F.lim);
	fx_listen();
}

static void on_server_closed(void *arg)
{
	ck_assert_ptr_eq(arg, &F);
	F.server_closed++;
}

static void run_until(bool (*pred)(void), unsigned ms)
{
	uint64_t deadline = tu_now_ns() + (uint64_t)ms * 1000000u;

	while (!pred()) {
		uv_run(&F.loop, UV_RUN_ONCE);
		if (tu_now_ns() > deadline)
			ck_abort_msg("timed out after %u ms", ms);
	}
}

static int want;
static bool p_done(void) { return atomic_load(&F.done) >= want; }
static bool p_ready(void) { return atomic_load(&F.ready) >= want; }
static bool p_closes(void) { return F.closes >= want; }
static bool p_paused(void) { return F.paused; }
static bool p_srv_closed(void) { return F.server_closed; }
static bool p_no_conns(void) { return net_server_conns(F.srv) == 0; }

/* Close everything; uv_run must then return by itself. */
static void teardown(void)
{
	if (F.srv) {
		net_server_close(F.srv, on_server_closed);
		F.srv = NULL;
		run_until(p_srv_closed, 10000);
	}
	uv_close((uv_handle_t *)&F.async, NULL);
	uv_close((uv_handle_t *)&F.tick, NULL);
	uv_close((uv_handle_t *)&F.resume, NULL);
	ck_assert_int_eq(uv_run(&F.loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(uv_loop_close(&F.loop), 0);
	/* Whatever happened to the connections, every lent buffer is back
	 * once the server is closed. */
	ck_assert_int_eq(F.released, F.borrowed);
	tls_ctx_free(F.tls);
	SSL_CTX_free(F.cctx);
	free(F.pattern);
	tu_rmrf(pki.dir);
	free(pki.dir);
}

/* ---- server callbacks -------------------------------------------------- */

static void on_release(void *arg)
{
	ck_assert_ptr_eq(arg, &F);
	F.released++;
}

static void bulk_produce(struct net_conn *c)
{
	struct sconn *sc = net_conn_data(c);

	while (sc->sent < BULK &&
	       net_conn_write_pending(c) <= F.lim.out_high_water &&
	       !net_server_out_congested(c)) {
		size_t n = BULK - sc->sent < 100000 ? BULK - sc->sent : 100000;
		size_t p;

		/* Every other piece is lent rather than copied. */
		if (sc->sent / 100000 % 2) {
			F.borrowed++;
			ck_assert_int_eq(net_conn_write_borrowed(c,
					 F.pattern + sc->sent, n, on_release,
					 &F), 0);
		} else {
			ck_assert_int_eq(net_conn_write(c, F.pattern + sc->sent,
							n), 0);
		}
		sc->sent += n;
		p = net_conn_write_pending(c);
		if (p > F.max_pending)
			F.max_pending = p;
		p = net_server_out_pending(F.srv);
		if (p > F.max_total)
			F.max_total = p;
	}
	/* A graceful close must still deliver everything queued. */
	if (sc->sent == BULK)
		net_conn_close(c);
}

static void s_open(struct net_conn *c)
{
	struct sconn *sc = calloc(1, sizeof(*sc));
	int i = F.opens++;

	ck_assert_ptr_eq(net_conn_arg(c), &F);
	ck_assert_ptr_nonnull(sc);
	ck_assert_int_lt(i, MAXC);
	ck_assert_int_eq(strncmp(net_conn_peer(c), "127.0.0.1:", 10), 0);
	sc->mode = F.mode == M_PAUSE && i > 0 ? M_ECHO : F.mode;
	net_conn_set_data(c, sc);
	ck_assert_int_eq(net_conn_export(c, TLS_EXPORTER_AUTH, F.exp[i], 32), 0);
	F.subj_rc[i] = net_conn_peer_subject(c, F.subj[i], sizeof(F.subj[i]));
	if (sc->mode == M_BULK) {
		F.bulk[i] = c;
		/* Past the cap: refused whole, nothing queued.  (The
		 * handshake's last flight may still be pending.) */
		size_t before = net_conn_write_pending(c);

		if (net_conn_write(c, F.pattern, F.lim.out_cap + 1) == -ENOBUFS)
			F.enobufs++;
		ck_assert_uint_eq(net_conn_write_pending(c), before);
		bulk_produce(c);
	}
}

static void on_resume(uv_timer_t *t)
{
	(void)t;
	F.paused = 0;
	F.t_resume = tu_now_ns();
	net_conn_resume_read(F.paused_conn);
}

static void s_data(struct net_conn *c, const uint8_t *p, size_t len)
{
	struct sconn *sc = net_conn_data(c);

	switch (sc->mode) {
	case M_ECHO:
		ck_assert_int_eq(net_conn_write(c, p, len), 0);
		break;
	case M_BULK:
		ck_abort_msg("bulk client sent data");
		break;
	case M_PAUSE:
		if (F.paused)
			F.data_while_paused++;
		if (F.got + len > UPLOAD ||
		    memcmp(p, F.pattern + F.got, len) != 0)
			F.mismatches++;
		F.got += len;
		if (!F.pause_done) {
			F.pause_done = F.paused = 1;
			F.paused_conn = c;
			net_conn_pause_read(c);
			uv_timer_start(&F.resume, on_resume, PAUSE_MS, 0);
		}
		if (F.got == UPLOAD)
			ck_assert_int_eq(net_conn_write(c, "k", 1), 0);
		break;
	}
}

static void s_drain(struct net_conn *c)
{
	F.drains++;
	/* Threaded, the drain comes at half the high-water mark (the refill
	 * takes a hop), and other producers may have written since the I/O
	 * loop saw the level low (s_server_drain writes to every bulk
	 * conn, when there is a node-wide cap). */
	if (!net_threads) {
		ck_assert_uint_le(net_conn_write_pending(c),
				  F.lim.out_low_water);
	} else if (!F.lim.out_total_cap) {
		size_t level = F.lim.out_high_water / 2;

		if (level < F.lim.out_low_water)
			level = F.lim.out_low_water;
		ck_assert_uint_le(net_conn_write_pending(c), level);
	}
	bulk_produce(c);
}

static void s_close(struct net_conn *c, int reason)
{
	ck_assert_int_lt(F.closes, MAXC);
	F.reasons[F.closes++] = reason;
	for (int i = 0; i < MAXC; i++)
		if (F.bulk[i] == c)
			F.bulk[i] = NULL;
	free(net_conn_data(c));
	net_conn_set_data(c, NULL);
}

/* The server's total output fell back: every bulk producer goes on. */
static void s_server_drain(void *arg)
{
	ck_assert_ptr_eq(arg, &F);
	F.server_drains++;
	if (!net_threads)
		ck_assert_uint_le(net_server_out_pending(F.srv),
				  F.lim.out_total_cap / 2);
	for (int i = 0; i < MAXC; i++)
		if (F.bulk[i])
			bulk_produce(F.bulk[i]);
}

static const struct net_callbacks cbs = {
	.on_open = s_open, .on_data = s_data, .on_drain = s_drain,
	.on_close = s_close, .on_server_drain = s_server_drain,
};

static void fx_listen(void)
{
	ck_assert_int_eq(net_listen(&F.loop, "127.0.0.1", 0, F.tls, &cbs, &F,
				    &F.srv), 0);
	F.port = net_server_port(F.srv);
	ck_assert_int_gt(F.port, 0);
	if (net_no_uring)
		net_server_set_uring(F.srv, false);
	ck_assert_int_eq(net_server_set_threads(F.srv, net_threads), 0);
	ck_assert_uint_eq(net_server_threads(F.srv), net_threads);
}

static void fx_limits(void)
{
	ck_assert_int_eq(net_server_set_limits(F.srv, &F.lim), 0);
}

/* ---- blocking clients (threads) ---------------------------------------- */

struct client {
	pthread_t th;
	void (*fn)(struct client *cl);
	SSL_CTX *ctx;		/* F.cctx unless set */
	int ok;			/* the body's own checks passed */
	int step;		/* how far it got, for failure messages */
	uint8_t exp[2][32];
	char peer_cn[128];
	uint64_t t_start, t_end;
	int res;
};

static void *client_main(void *arg)
{
	struct client *cl = arg;

	cl->fn(cl);
	atomic_fetch_add(&F.done, 1);
	uv_async_send(&F.async);
	return NULL;
}

static void client_start(struct client *cl, void (*fn)(struct client *))
{
	cl->fn = fn;
	if (!cl->ctx)
		cl->ctx = F.cctx;
	ck_assert_int_eq(pthread_create(&cl->th, NULL, client_main, cl), 0);
}

static void client_join(struct client *cl)
{
	ck_assert_int_eq(pthread_join(cl->th, NULL), 0);
}

static void signal_ready(void)
{
	atomic_fetch_add(&F.ready, 1);
	uv_async_send(&F.async);
}

static int tcp_connect(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	a.sin_port = htons((uint16_t)F.port);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct tcli {
	SSL *ssl;
	int fd;
};

/* A TLS connection verified against the CA and 127.0.0.1; 0 or -1. */
static int tls_connect(SSL_CTX *ctx, struct tcli *t)
{
	t->fd = tcp_connect();
	t->ssl = NULL;
	if (t->fd < 0)
		return -1;
	t->ssl = SSL_new(ctx);
	if (!t->ssl)
		return -1;
	X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), "127.0.0.1");
	SSL_set_fd(t->ssl, t->fd);
	if (SSL_connect(t->ssl) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

static void tls_disconnect(struct tcli *t)
{
	if (t->ssl) {
		SSL_shutdown(t->ssl);
		SSL_free(t->ssl);
	}
	if (t->fd >= 0)
		close(t->fd);
	t->ssl = NULL;
	t->fd = -1;
	ERR_clear_error();
}

static int write_all(SSL *ssl, const uint8_t *p, size_t len)
{
	while (len) {
		size_t n = 0;

		if (SSL_write_ex(ssl, p, len < (256 << 10) ? len : 256 << 10,
				 &n) != 1)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static int read_all(SSL *ssl, uint8_t *p, size_t len, size_t chunk,
		    unsigned sleep_us)
{
	while (len) {
		size_t n = 0;

		if (SSL_read_ex(ssl, p, len < chunk ? len : chunk, &n) != 1)
			return -1;
		p += n;
		len -= n;
		if (sleep_us)
			usleep(sleep_us);
	}
	return 0;
}

/* After the server's close_notify: SSL_read reports a clean end. */
static int read_eof(SSL *ssl)
{
	uint8_t b;
	size_t n;
	int r = SSL_read_ex(ssl, &b, 1, &n);

	return r != 1 && SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

/* Echo len pseudo-random bytes; 0 if they came back intact. */
static int echo(SSL *ssl, size_t len, uint64_t seed)
{
	uint8_t *a = tu_xmalloc(len), *b = tu_xmalloc(len);
	int r;

	tu_fill(a, len, seed);
	r = write_all(ssl, a, len) == 0 &&
	    read_all(ssl, b, len, 1 << 20, 0) == 0 &&
	    memcmp(a, b, len) == 0 ? 0 : -1;
	free(a);
	free(b);
	return r;
}

/* ---- tests ------------------------------------------------------------- */

static void cl_echo_twice(struct client *cl)
{
	static const char *label = TLS_EXPORTER_AUTH;

	cl->ok = 1;
	for (int i = 0; i < 2; i++) {
		struct tcli t;

		cl->step = i * 10 + 1;
		if (tls_connect(cl->ctx, &t) < 0) {
			cl->ok = 0;
			tls_disconnect(&t);
			return;
		}
		cl->step++;
		if (SSL_export_keying_material(t.ssl, cl->exp[i], 32, label,
					       strlen(label), NULL, 0, 0) != 1)
			cl->ok = 0;
		if (strcmp(SSL_get_cipher_name(t.ssl), "TLS_AES_256_GCM_SHA384"))
			cl->ok = 0;
		cl->step++;
		if (echo(t.ssl, 1 << 20, (uint64_t)i + 1) < 0)
			cl->ok = 0;
		tls_disconnect(&t);
	}
}

START_TEST(test_echo_exporter)
{
	struct client cl = { 0 };

	client_start(&cl, cl_echo_twice);
	want = 1;
	run_until(p_done, 20000);
	client_join(&cl);
	ck_assert_msg(cl.ok, "client failed at step %d", cl.step);
	want = 2;
	run_until(p_closes, 5000);
	ck_assert_int_eq(F.opens, 2);
	/* Each side of a connection derives the same value; connections
	 * differ. */
	ck_assert_mem_eq(cl.exp[0], F.exp[0], 32);
	ck_assert_mem_eq(cl.exp[1], F.exp[1], 32);
	ck_assert_mem_ne(F.exp[0], F.exp[1], 32);
	ck_assert_int_eq(F.subj_rc[0], -ENOENT);
	/* Sent through the loop's io_uring, unless the case set it off
	 * (inline, the ring is made with the first output: a kernel without
	 * io_uring would show here). */
	ck_assert(net_server_uring(F.srv) == !net_no_uring);
	/* The clients ended with close_notify. */
	ck_assert_int_eq(F.reasons[0], 0);
	ck_assert_int_eq(F.reasons[1], 0);
}
END_TEST

static void cl_garbage(struct client *cl)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	char buf[512];
	struct tcli t;
	int fd = tcp_connect();
	ssize_t n;

	cl->t_start = tu_now_ns();
	if (fd < 0 || write(fd, http, sizeof(http) - 1) < 0)
		return;
	/* Whatever comes (an alert), then the end: EOF or a reset. */
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	cl->res = n < 0 ? -errno : 0;
	cl->t_end = tu_now_ns();
	close(fd);
	/* The server still serves. */
	if (tls_connect(cl->ctx, &t) == 0 && echo(t.ssl, 4096, 5) == 0)
		cl->ok = 1;
	tls_disconnect(&t);
}

START_TEST(test_garbage_then_tls)
{
	struct client cl = { 0 };

	client_start(&cl, cl_garbage);
	want = 1;
	run_until(p_done, 10000);
	client_join(&cl);
	ck_assert_msg(cl.res == 0 || cl.res == -ECONNRESET, "read: %s",
		      strerror(-cl.res));
	ck_assert_uint_gt(cl.t_end, 0);
	/* Closed for being garbage, long before the 10 s handshake timeout. */
	ck_assert_uint_lt(cl.t_end - cl.t_start, 2000000000ull);
	ck_assert(cl.ok);
	ck_assert_int_eq(F.opens, 1);
}
END_TEST

static void cl_silent(struct client *cl)
{
	char b;
	int fd = tcp_connect();
	ssize_t n;

	if (fd < 0)
		return;
	cl->t_start = tu_now_ns();
	n = read(fd, &b, 1);	/* SO_RCVTIMEO: 5 s */
	cl->t_end = tu_now_ns();
	cl->res = n < 0 ? -errno : (int)n;
	close(fd);
	cl->ok = 1;
}

START_TEST(test_silent_client_timeout)
{
	struct client cl = { 0 };
	uint64_t ms;

	F.lim.handshake_timeout_ms = 300;
	fx_limits();
	client_start(&cl, cl_silent);
	want = 1;
	run_until(p_done, 10000);
	client_join(&cl);
	ck_assert(cl.ok);
	ck_assert_msg(cl.res == 0 || cl.res == -ECONNRESET, "read: %d",
		      cl.res);
	ms = (cl.t_end - cl.t_start) / 1000000u;
	ck_assert_msg(ms >= 250 && ms < 3000, "closed after %llu ms",
		      (unsigned long long)ms);
	ck_assert_int_eq(F.opens, 0);
	ck_assert_int_eq(F.closes, 0);	/* never opened: no on_close */
	/* Threaded, the I/O loop's word that it closed may still be on its
	 * way to the listen loop. */
	run_until(p_no_conns, 5000);
	ck_assert_int_eq(F.closes, 0);
}
END_TEST

static void cl_untrusted(struct client *cl)
{
	struct tcli t;

	cl->res = tls_connect(cl->ctx, &t);
	cl->step = t.ssl ? (int)SSL_get_verify_result(t.ssl) : -1;
	tls_disconnect(&t);
	cl->ok = tls_connect(F.cctx, &t) == 0 && echo(t.ssl, 100, 6) == 0;
	tls_disconnect(&t);
}

START_TEST(test_untrusted_ca)
{
	struct client cl = { 0 };

	cl.ctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(cl.ctx);
	ck_assert_int_eq(SSL_CTX_load_verify_locations(cl.ctx, pki.ca2, NULL), 1);
	SSL_CTX_set_verify(cl.ctx, SSL_VERIFY_PEER, NULL);
	client_start(&cl, cl_untrusted);
	want = 1;
	run_until(p_done, 10000);
	client_join(&cl);
	SSL_CTX_free(cl.ctx);
	ck_assert_int_eq(cl.res, -1);
	ck_assert_int_eq(cl.step, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	ck_assert(cl.ok);
	ck_assert_int_eq(F.opens, 1);	/* only the trusting client */
}
END_TEST

static void cl_peer_cn(struct client *cl)
{
	struct tcli t;

	cl->ok = 0;
	if (tls_connect(cl->ctx, &t) == 0) {
		X509 *x = SSL_get0_peer_certificate(t.ssl);

		X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					  NID_commonName, cl->peer_cn,
					  sizeof(cl->peer_cn));
		cl->ok = echo(t.ssl, 1000, 7) == 0;
	}
	tls_disconnect(&t);
}

/* Reload: a new context (new certificate, client CA) for new connections. */
START_TEST(test_reload_mutual_tls)
{
	struct client a = { 0 }, b = { 0 };
	struct tls_ctx *t2;

	client_start(&a, cl_peer_cn);
	want = 1;
	run_until(p_done, 10000);
	client_join(&a);
	ck_assert(a.ok);
	ck_assert_str_eq(a.peer_cn, "strata-test-server");
	ck_assert_int_eq(F.subj_rc[0], -ENOENT);

	ck_assert_int_eq(tls_ctx_new_server(pki.srv2_crt, pki.srv2_key, pki.ca,
					    &t2), 0);
	net_server_set_tls(F.srv, t2);
	tls_ctx_free(t2);	/* the server holds its own reference */
	b.ctx = SSL_CTX_new(TLS_client_method());
	ck_assert_int_eq(SSL_CTX_load_verify_locations(b.ctx, pki.ca, NULL), 1);
	SSL_CTX_set_verify(b.ctx, SSL_VERIFY_PEER, NULL);
	ck_assert_int_eq(SSL_CTX_use_certificate_file(b.ctx, pki.node_crt,
						      SSL_FILETYPE_PEM), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(b.ctx, pki.node_key,
						     SSL_FILETYPE_PEM), 1);
	client_start(&b, cl_peer_cn);
	want = 2;
	run_until(p_done, 10000);
	client_join(&b);
	SSL_CTX_free(b.ctx);
	ck_assert(b.ok);
	ck_assert_str_eq(b.peer_cn, "strata-test-server-2");
	ck_assert_int_eq(F.subj_rc[1], 0);
	ck_assert_str_eq(F.subj[1], "CN=node-2,O=strata-test");
}
END_TEST

static void cl_slow_reader(struct client *cl)
{
	uint8_t *buf = tu_xmalloc(BULK);
	struct tcli t;

	if (tls_connect(cl->ctx, &t) == 0) {
		/* Slow for the first MiB, then full speed. */
		cl->ok = read_all(t.ssl, buf, 1 << 20, 16 << 10, 2000) == 0 &&
			 read_all(t.ssl, buf + (1 << 20), BULK - (1 << 20),
				  1 << 20, 0) == 0 &&
			 memcmp(buf, F.pattern, BULK) == 0;
		cl->res = read_eof(t.ssl);
	}
	tls_disconnect(&t);
	free(buf);
}

START_TEST(test_write_backpressure)
{
	struct client cl = { 0 };

	F.mode = M_BULK;
	F.lim.out_high_water = 1 << 20;
	F.lim.out_low_water = 256 << 10;
	F.lim.out_cap = 4 << 20;
	fx_limits();
	F.pattern = tu_xmalloc(BULK);
	tu_fill(F.pattern, BULK, 11);
	client_start(&cl, cl_slow_reader);
	want = 1;
	run_until(p_done, 30000);
	client_join(&cl);
	ck_assert(cl.ok);
	ck_assert_int_eq(cl.res, 0);	/* close_notify after all the data */
	ck_assert_int_eq(F.enobufs, 1);
	ck_assert_uint_gt(F.max_pending, F.lim.out_high_water);
	ck_assert_uint_le(F.max_pending, F.lim.out_cap);
	ck_assert_int_ge(F.drains, 1);
	want = 1;
	run_until(p_closes, 5000);
	ck_assert_int_eq(F.reasons[0], 0);
	/* Every lent buffer came back, once, before its connection closed. */
	ck_assert_int_gt(F.borrowed, 0);
	ck_assert_int_eq(F.released, F.borrowed);
	/* The big buffers the I/O threads kept for reuse go back once a
	 * trim finds them untaken since the one before. */
	if (net_threads) {
		ck_assert_uint_gt(net_server_pooled(F.srv), 0);
		net_server_trim(F.srv);
		net_server_trim(F.srv);
		ck_assert_uint_eq(net_server_pooled(F.srv), 0);
	}
}
END_TEST

/*
 * The node-wide cap: four slow readers at once, each allowed 4 MiB of its
 * own, all of them together 2 MiB.  The total never passes the cap by more
 * than one write, producers resume on on_server_drain, and every byte
 * arrives.
 */
START_TEST(test_total_cap)
{
	struct client cl[4] = { 0 };

	F.mode = M_BULK;
	F.lim.out_high_water = 4 << 20;
	F.lim.out_low_water = 256 << 10;
	F.lim.out_cap = 16 << 20;
	F.lim.out_total_cap = 2 << 20;
	fx_limits();
	F.pattern = tu_xmalloc(BULK);
	tu_fill(F.pattern, BULK, 12);
	for (int i = 0; i < 4; i++)
		client_start(&cl[i], cl_slow_reader);
	want = 4;
	run_until(p_done, 60000);
	for (int i = 0; i < 4; i++) {
		client_join(&cl[i]);
		ck_assert_msg(cl[i].ok, "client %d got wrong or short data", i);
		ck_assert_int_eq(cl[i].res, 0);
	}
	ck_assert_int_eq(F.enobufs, 4);
	ck_assert_int_ge(F.server_drains, 1);
	/* Past the cap, each producer holding no more than out_low_water
	 * may write once more: 4 x (256 KiB + one 100000-byte write, plus
	 * record overhead) at most. */
	ck_assert_uint_gt(F.max_total, F.lim.out_total_cap / 2);
	ck_assert_uint_le(F.max_total, F.lim.out_total_cap +
			  4 * (F.lim.out_low_water + (128u << 10)));
	want = 4;
	run_until(p_closes, 5000);
	ck_assert_uint_eq(net_server_out_pending(F.srv), 0);
	ck_assert_int_gt(F.borrowed, 0);
	ck_assert_int_eq(F.released, F.borrowed);
}
END_TEST

/* Readers of the bulk data: released by stall_release. */
static atomic_bool stall_release;

/*
 * Wait for stall_release (at most stall_ms), then read the BULK bytes in
 * pieces of piece bytes, pause_us apart.  True when they all came, intact;
 * cl->res: whether the server's clean end followed.
 */
static bool read_bulk(struct client *cl, unsigned stall_ms, size_t piece,
		      unsigned pause_us)
{
	uint8_t *buf = tu_xmalloc(BULK);
	struct tcli t;
	bool whole = false;

	if (tls_connect(cl->ctx, &t) == 0) {
		for (unsigned i = 0; i < stall_ms &&
		     !atomic_load(&stall_release); i++)
			usleep(1000);
		whole = read_all(t.ssl, buf, BULK, piece, pause_us) == 0 &&
			memcmp(buf, F.pattern, BULK) == 0;
		cl->res = whole ? read_eof(t.ssl) : -1;
	}
	tls_disconnect(&t);
	free(buf);
	return whole;
}

/* Reads nothing until told (or 30 s), then everything. */
static void cl_stalled_reader(struct client *cl)
{
	cl->ok = read_bulk(cl, 30000, 1 << 20, 0);
}

static void cl_fast_reader(struct client *cl)
{
	cl->ok = read_bulk(cl, 0, 1 << 20, 0);
}

/* Reads nothing until told (or 10 s); then the connection must be gone
 * before all the data came. */
static void cl_never_reads(struct client *cl)
{
	cl->ok = !read_bulk(cl, 10000, 1 << 20, 0);
}

/* Reads everything, a record (at most 16 KiB) every 5 ms: ~3 MB/s, far
 * slower than the server writes, but never stopped for long. */
static void cl_trickle_reader(struct client *cl)
{
	cl->ok = read_bulk(cl, 0, 64 << 10, 5000);
}

static void tick(uv_timer_t *t)
{
	(void)t;
}

static bool tick_closed;

static void tick_close_cb(uv_handle_t *h)
{
	(void)h;
	tick_closed = true;
}

static bool p_tick_closed(void)
{
	return tick_closed;
}

static bool p_over_cap(void)
{
	return net_server_out_pending(F.srv) > F.lim.out_total_cap;
}

/*
 * A reader that stopped holds the node over its cap: another reader still
 * gets everything (only connections holding more than out_low_water of the
 * node's output wait), and the stalled one too once it reads.
 */
START_TEST(test_total_cap_stalled_reader)
{
	struct client a = { 0 }, b = { 0 };
	static uv_timer_t tm;

	F.mode = M_BULK;
	F.lim.out_high_water = 4 << 20;
	F.lim.out_low_water = 256 << 10;
	F.lim.out_cap = 16 << 20;
	F.lim.out_total_cap = 1 << 20;
	fx_limits();
	F.pattern = tu_xmalloc(BULK);
	tu_fill(F.pattern, BULK, 13);
	atomic_store(&stall_release, false);
	ck_assert_int_eq(uv_timer_init(&F.loop, &tm), 0);
	ck_assert_int_eq(uv_timer_start(&tm, tick, 10, 10), 0);
	client_start(&a, cl_stalled_reader);
	run_until(p_over_cap, 10000);
	client_start(&b, cl_fast_reader);
	want = 1;
	run_until(p_done, 20000);
	client_join(&b);
	ck_assert_msg(b.ok, "the reader that reads got wrong or short data");
	ck_assert_int_eq(b.res, 0);
	/* (It held the node over its cap the whole time: the cap was 1 MiB
	 * and the stalled reader's own output more than half of it.) */
	ck_assert_uint_gt(net_server_out_pending(F.srv),
			  F.lim.out_total_cap / 2);
	atomic_store(&stall_release, true);
	want = 2;
	run_until(p_done, 30000);
	client_join(&a);
	ck_assert_msg(a.ok, "the stalled reader got wrong or short data");
	ck_assert_int_eq(a.res, 0);
	tick_closed = false;
	uv_close((uv_handle_t *)&tm, tick_close_cb);
	run_until(p_tick_closed, 5000);
	want = 2;
	run_until(p_closes, 5000);
	ck_assert_uint_eq(net_server_out_pending(F.srv), 0);
}
END_TEST

/*
 * The send timeout: a peer that reads nothing while output waits for its
 * socket is cut off (-ETIMEDOUT) after send_timeout_ms, freeing what it
 * held; one that reads slowly but steadily (2.6 s for its 8 MiB, against
 * a 400 ms timeout) gets everything.
 */
START_TEST(test_send_timeout)
{
	struct client a = { 0 }, b = { 0 };
	uint64_t t0;

	F.mode = M_BULK;
	F.lim.out_high_water = 1 << 20;
	F.lim.out_low_water = 256 << 10;
	F.lim.out_cap = 16 << 20;
	F.lim.send_timeout_ms = 400;
	fx_limits();
	F.pattern = tu_xmalloc(BULK);
	tu_fill(F.pattern, BULK, 14);
	atomic_store(&stall_release, false);
	t0 = tu_now_ns();
	client_start(&a, cl_never_reads);
	client_start(&b, cl_trickle_reader);
	want = 1;
	run_until(p_closes, 5000);
	ck_assert_int_eq(F.reasons[0], -ETIMEDOUT);
	/* Within one to two timeouts of the socket filling up. */
	ck_assert_uint_lt(tu_now_ns() - t0, 2000000000ull);
	atomic_store(&stall_release, true);
	want = 2;
	run_until(p_done, 30000);
	client_join(&a);
	client_join(&b);
	ck_assert_msg(a.ok, "the reader that read nothing got everything");
	ck_assert_msg(b.ok, "the slow reader got wrong or short data");
	ck_assert_int_eq(b.res, 0);
	want = 2;
	run_until(p_closes, 5000);
	ck_assert_int_eq(F.reasons[1], 0);
	ck_assert_uint_eq(net_server_out_pending(F.srv), 0);
}
END_TEST

static void cl_uploader(struct client *cl)
{
	struct tcli t;
	uint8_t k;

	if (tls_connect(cl->ctx, &t) == 0) {
		cl->ok = write_all(t.ssl, F.pattern, UPLOAD) == 0;
		cl->t_end = tu_now_ns();
		cl->ok = cl->ok && read_all(t.ssl, &k, 1, 1, 0) == 0 && k == 'k';
	}
	tls_disconnect(&t);
}

static void cl_quick_echo(struct client *cl)
{
	struct tcli t;

	cl->ok = tls_connect(cl->ctx, &t) == 0 && echo(t.ssl, 65536, 8) == 0;
	cl->t_end = tu_now_ns();
	tls_disconnect(&t);
}

START_TEST(test_read_backpressure)
{
	struct client up = { 0 }, other = { 0 };

	F.mode = M_PAUSE;
	F.pattern = tu_xmalloc(UPLOAD);
	tu_fill(F.pattern, UPLOAD, 12);
	client_start(&up, cl_uploader);
	run_until(p_paused, 10000);
	/* While one connection is paused, another is served. */
	client_start(&other, cl_quick_echo);
	want = 2;
	run_until(p_done, 30000);
	client_join(&up);
	client_join(&other);
	ck_assert(up.ok);
	ck_assert(other.ok);
	ck_assert_int_eq(F.data_while_paused, 0);
	ck_assert_int_eq(F.mismatches, 0);
	ck_assert_uint_eq(F.got, UPLOAD);
	ck_assert_uint_gt(F.t_resume, 0);
	ck_assert_msg(other.t_end < F.t_resume, "other client waited");
	/* The uploader was held back by the pause: its last write could
	 * not complete before the server read again. */
	ck_assert_msg(up.t_end > F.t_resume, "upload finished %lld ms before "
		      "the resume", (long long)(F.t_resume - up.t_end) / 1000000);
}
END_TEST

static void cl_max_conns(struct client *cl)
{
	struct tcli a, b, c, d = { .fd = -1 };
	int i;

	cl->step = 1;
	if (tls_connect(cl->ctx, &a) < 0 || echo(a.ssl, 10, 1) < 0)
		return;
	cl->step = 2;
	if (tls_connect(cl->ctx, &b) < 0 || echo(b.ssl, 10, 2) < 0)
		return;
	cl->step = 3;
	/* Over the limit: the handshake cannot complete. */
	if (tls_connect(cl->ctx, &c) == 0 && echo(c.ssl, 10, 3) == 0)
		return;
	tls_disconnect(&c);
	cl->step = 4;
	tls_disconnect(&a);
	/* Once a slot is free again (the server notices A's close), a new
	 * connection gets in. */
	for (i = 0; i < 200; i++) {
		if (tls_connect(cl->ctx, &d) == 0 && echo(d.ssl, 10, 4) == 0)
			break;
		tls_disconnect(&d);
		usleep(20000);
	}
	cl->step = 5;
	cl->ok = i < 200;
	tls_disconnect(&b);
	tls_disconnect(&d);
}

START_TEST(test_max_conns)
{
	struct client cl = { 0 };

	F.lim.max_conns = 2;
	fx_limits();
	client_start(&cl, cl_max_conns);
	want = 1;
	run_until(p_done, 20000);
	client_join(&cl);
	ck_assert_msg(cl.ok, "client failed at step %d", cl.step);
	ck_assert_int_eq(F.opens, 3);
	ck_assert_uint_ge(net_server_refused(F.srv), 1);
	want = 3;
	run_until(p_closes, 5000);
}
END_TEST

static void cl_wait_close(struct client *cl)
{
	struct tcli t;

	if (tls_connect(cl->ctx, &t) == 0 && echo(t.ssl, 100, 9) == 0) {
		cl->t_start = tu_now_ns();
		signal_ready();
		cl->ok = read_eof(t.ssl) == 0;	/* the server's close_notify */
		cl->t_end = tu_now_ns();
	} else {
		signal_ready();
	}
	tls_disconnect(&t);
}

START_TEST(test_server_close_live)
{
	struct client a = { 0 }, b = { 0 };

	client_start(&a, cl_wait_close);
	client_start(&b, cl_wait_close);
	want = 2;
	run_until(p_ready, 10000);
	ck_assert_uint_eq(net_server_conns(F.srv), 2);
	net_server_close(F.srv, on_server_closed);
	F.srv = NULL;
	run_until(p_done, 10000);
	client_join(&a);
	client_join(&b);
	ck_assert(a.ok);
	ck_assert(b.ok);
	/* Nothing else holds the loop: uv_run returns. */
	uv_close((uv_handle_t *)&F.tick, NULL);
	uv_close((uv_handle_t *)&F.resume, NULL);
	uv_close((uv_handle_t *)&F.async, NULL);
	ck_assert_int_eq(uv_run(&F.loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(F.server_closed, 1);
	ck_assert_int_eq(F.closes, 2);
	ck_assert_int_eq(F.reasons[0], -ESHUTDOWN);
	ck_assert_int_eq(F.reasons[1], -ESHUTDOWN);
	/* The handles are closed already; teardown must not close them
	 * again. */
	ck_assert_int_eq(uv_loop_close(&F.loop), 0);
	ck_assert_int_eq(uv_loop_init(&F.loop), 0);
	ck_assert_int_eq(uv_async_init(&F.loop, &F.async, on_async), 0);
	uv_timer_init(&F.loop, &F.tick);
	uv_timer_init(&F.loop, &F.resume);
}
END_TEST

START_TEST(test_idle_timeout)
{
	struct client cl = { 0 };
	uint64_t ms;

	F.lim.idle_timeout_ms = 200;
	fx_limits();
	client_start(&cl, cl_wait_close);
	want = 1;
	run_until(p_done, 10000);
	client_join(&cl);
	ck_assert(cl.ok);
	ms = (cl.t_end - cl.t_start) / 1000000u;
	ck_assert_msg(ms >= 150 && ms < 3000, "idle close after %llu ms",
		      (unsigned long long)ms);
	want = 1;
	run_until(p_closes, 5000);
	ck_assert_int_eq(F.reasons[0], -ETIMEDOUT);
}
END_TEST

static void cl_stuck_reader(struct client *cl)
{
	struct tcli t;
	uint8_t b;

	/* Take one byte to be sure the connection is open, then stop
	 * reading with megabytes still queued for us. */
	if (tls_connect(cl->ctx, &t) == 0 && read_all(t.ssl, &b, 1, 1, 0) == 0)
		cl->ok = 1;
	usleep(1500 * 1000);
	close(t.fd);
	t.fd = -1;
	SSL_free(t.ssl);
	t.ssl = NULL;
	tls_disconnect(&t);
}

/* A graceful close that cannot finish (the peer stops reading) is cut off
 * at close_timeout_ms and reported as such. */
START_TEST(test_close_timeout)
{
	struct client cl = { 0 };
	uint64_t t0;

	F.mode = M_BULK;
	F.lim.close_timeout_ms = 300;
	F.lim.out_high_water = F.lim.out_cap = 16 << 20;
	fx_limits();
	F.pattern = tu_xmalloc(BULK);
	tu_fill(F.pattern, BULK, 13);
	t0 = tu_now_ns();
	client_start(&cl, cl_stuck_reader);
	want = 1;
	run_until(p_closes, 5000);
	ck_assert_int_eq(F.reasons[0], -ECONNABORTED);
	ck_assert_uint_lt(tu_now_ns() - t0, 1400000000ull);
	run_until(p_done, 5000);
	client_join(&cl);
	ck_assert(cl.ok);
}
END_TEST

START_TEST(test_listen_errors)
{
	struct net_server *s = (struct net_server *)1;
	struct net_callbacks none = { 0 };
	struct net_limits l = F.lim;

	ck_assert_int_eq(net_listen(&F.loop, "not-an-ip", 0, F.tls, &cbs, &F,
				    &s), -EINVAL);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(net_listen(&F.loop, "127.0.0.1", 70000, F.tls, &cbs,
				    &F, &s), -EINVAL);
	ck_assert_int_eq(net_listen(&F.loop, "127.0.0.1", 0, F.tls, &none, &F,
				    &s), -EINVAL);
	/* The port is taken (by F.srv): the half-made server is closed on
	 * the loop, which teardown runs. */
	ck_assert_int_eq(net_listen(&F.loop, "127.0.0.1", F.port, F.tls, &cbs,
				    NULL, &s), -EADDRINUSE);
	ck_assert_ptr_null(s);
	l.out_low_water = l.out_high_water + 1;
	ck_assert_int_eq(net_server_set_limits(F.srv, &l), -EINVAL);
	l = F.lim;
	l.max_conns = 0;
	ck_assert_int_eq(net_server_set_limits(F.srv, &l), -EINVAL);
	/* Threads are set once, and never beyond the cap. */
	ck_assert_int_eq(net_server_set_threads(F.srv, NET_MAX_THREADS + 1),
			 -EINVAL);
	if (net_threads)
		ck_assert_int_eq(net_server_set_threads(F.srv, 1), -EINVAL);
}
END_TEST

static void setup_threaded(void)
{
	net_threads = 2;
	setup();
}

static void teardown_threaded(void)
{
	teardown();
	net_threads = 0;
}

static void setup_write(void)
{
	net_no_uring = true;
	setup();
}

static void teardown_write(void)
{
	if (F.srv)
		ck_assert(!net_server_uring(F.srv));
	teardown();
	net_no_uring = false;
}

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, test_echo_exporter);
	tcase_add_test(tc, test_garbage_then_tls);
	tcase_add_test(tc, test_silent_client_timeout);
	tcase_add_test(tc, test_untrusted_ca);
	tcase_add_test(tc, test_reload_mutual_tls);
	tcase_add_test(tc, test_write_backpressure);
	tcase_add_test(tc, test_total_cap);
	tcase_add_test(tc, test_total_cap_stalled_reader);
	tcase_add_test(tc, test_send_timeout);
	tcase_add_test(tc, test_read_backpressure);
	tcase_add_test(tc, test_max_conns);
	tcase_add_test(tc, test_server_close_live);
	tcase_add_test(tc, test_idle_timeout);
	tcase_add_test(tc, test_close_timeout);
	tcase_add_test(tc, test_listen_errors);
}

int main(void)
{
	Suite *s = suite_create("net");
	TCase *tc = tcase_create("inline");
	TCase *tt = tcase_create("threaded");
	TCase *tw = tcase_create("inline-write");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	add_tests(tc);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tt, setup_threaded, teardown_threaded);
	tcase_set_timeout(tt, 60);
	add_tests(tt);
	suite_add_tcase(s, tt);
	tcase_add_checked_fixture(tw, setup_write, teardown_write);
	tcase_set_timeout(tw, 60);
	add_tests(tw);
	suite_add_tcase(s, tw);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
