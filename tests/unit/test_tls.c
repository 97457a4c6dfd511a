// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for tls.c, without sockets: two tls_conns (or one and a raw
 * OpenSSL peer) pass bytes to each other in memory.  Certificates come from
 * a throwaway CA made here with the OpenSSL API.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "strata/error.h"
#include "pkiutil.h"
#include "testutil.h"
#include "banned.h"

static struct pki pki;

static void setup(void)
{
	pki_make(&pki);
}

static void teardown(void)
{
	tu_rmrf(pki.dir);
	free(pki.dir);
}

/* ---- moving bytes between two connections ------------------------------ */

/* Move a's output into b, drive b with `step`, then end the borrow. */
static void xfer_begin(struct tls_conn *a, struct tls_conn *b, uint8_t **buf)
{
	size_t n;

	tls_conn_take_out(a, buf, &n);
	ck_assert_int_eq(tls_conn_feed(b, *buf, n), 0);
}

static void xfer_end(struct tls_conn *b, uint8_t *buf)
{
	tls_conn_feed_release(b);
	/* Scribble over the borrowed bytes: what b kept must be a copy. */
	if (buf)
		memset(buf, 0xA5, 1);
	free(buf);
}

static void handshake(struct tls_conn *cli, struct tls_conn *srv, int *rc,
		      int *rs)
{
	uint8_t *buf;

	*rc = *rs = -EAGAIN;
	for (int i = 0; i < 10 && (*rc == -EAGAIN || *rs == -EAGAIN); i++) {
		if (*rc == -EAGAIN)
			*rc = tls_conn_handshake(cli);
		xfer_begin(cli, srv, &buf);
		if (*rs == -EAGAIN)
			*rs = tls_conn_handshake(srv);
		xfer_end(srv, buf);
		xfer_begin(srv, cli, &buf);
		if (*rc == -EAGAIN)
			*rc = tls_conn_handshake(cli);
		xfer_end(cli, buf);
	}
}

struct pair {
	struct tls_ctx *sctx, *cctx;
	struct tls_conn *srv, *cli;
};

static void pair_open(struct pair *p, const char *client_ca,
		      const char *ca, const char *crt, const char *key,
		      const char *name)
{
	ck_assert_int_eq(tls_ctx_new_server(pki.srv_crt, pki.srv_key,
					    client_ca, &p->sctx), 0);
	ck_assert_int_eq(tls_ctx_new_client(ca, crt, key, &p->cctx), 0);
	ck_assert_int_eq(tls_conn_new(p->sctx, &p->srv), 0);
	ck_assert_int_eq(tls_conn_new(p->cctx, &p->cli), 0);
	if (name)
		ck_assert_int_eq(tls_conn_set_peer_name(p->cli, name), 0);
}

static void pair_close(struct pair *p)
{
	tls_conn_free(p->srv);
	tls_conn_free(p->cli);
	tls_ctx_free(p->sctx);
	tls_ctx_free(p->cctx);
}

/* Send len bytes a -> b in writes of varied sizes and check them. */
static void transfer(struct tls_conn *a, struct tls_conn *b, size_t len,
		     uint64_t seed)
{
	uint8_t *src = tu_xmalloc(len), *dst = tu_xmalloc(len);
	size_t sent = 0, got = 0, step = 1;

	tu_fill(src, len, seed);
	while (got < len) {
		uint8_t *buf;
		ssize_t r;

		if (sent < len) {
			size_t n = step < len - sent ? step : len - sent;

			ck_assert_int_eq(tls_conn_write(a, src + sent, n), 0);
			sent += n;
			step = step * 7 + 13;
			if (step > 300000)
				step = 1;
		}
		xfer_begin(a, b, &buf);
		while ((r = tls_conn_read(b, dst + got, len - got)) > 0)
			got += (size_t)r;
		ck_assert_int_eq(r, -EAGAIN);
		xfer_end(b, buf);
	}
	ck_assert_mem_eq(src, dst, len);
	free(src);
	free(dst);
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(test_handshake_data_exporter)
{
	struct pair p, q;
	uint8_t ec[32], es[32], e2[32];
	char subj[256];
	int rc, rs;

	pair_open(&p, NULL, pki.ca, NULL, NULL, "localhost");
	ck_assert_int_eq(tls_conn_read(p.srv, subj, 1), -ENOTCONN);
	ck_assert_int_eq(tls_conn_write(p.cli, "x", 1), -ENOTCONN);
	ck_assert_int_eq(tls_conn_export(p.cli, TLS_EXPORTER_AUTH, ec, 32),
			 -ENOTCONN);
	ck_assert_str_eq(tls_conn_cipher(p.cli), "none");
	handshake(p.cli, p.srv, &rc, &rs);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(rs, 0);
	ck_assert(tls_conn_handshake_done(p.srv));
	ck_assert_str_eq(tls_conn_cipher(p.srv), "TLS_AES_256_GCM_SHA384");

	transfer(p.cli, p.srv, 1 << 20, 1);
	transfer(p.srv, p.cli, 3 << 20, 2);

	ck_assert_int_eq(tls_conn_export(p.cli, TLS_EXPORTER_AUTH, ec, 32), 0);
	ck_assert_int_eq(tls_conn_export(p.srv, TLS_EXPORTER_AUTH, es, 32), 0);
	ck_assert_mem_eq(ec, es, 32);
	ck_assert_int_eq(tls_conn_export(p.srv, "EXPORTER-other", e2, 32), 0);
	ck_assert_mem_ne(es, e2, 32);

	/* Server certificate as the client sees it; no client certificate. */
	ck_assert_int_eq(tls_conn_peer_subject(p.cli, subj, sizeof(subj)), 0);
	ck_assert_str_eq(subj, "CN=strata-test-server,O=strata-test");
	ck_assert_int_eq(tls_conn_peer_subject(p.cli, subj, 5), -ERANGE);
	ck_assert_int_eq(tls_conn_peer_subject(p.srv, subj, sizeof(subj)),
			 -ENOENT);

	/* Another connection: another exporter value. */
	pair_open(&q, NULL, pki.ca, NULL, NULL, "127.0.0.1");
	handshake(q.cli, q.srv, &rc, &rs);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(rs, 0);
	ck_assert_int_eq(tls_conn_export(q.srv, TLS_EXPORTER_AUTH, e2, 32), 0);
	ck_assert_mem_ne(es, e2, 32);
	pair_close(&q);
	pair_close(&p);
}
END_TEST

START_TEST(test_untrusted_ca)
{
	struct pair p;
	int rc, rs;

	/* The client trusts only the other CA. */
	pair_open(&p, NULL, pki.ca2, NULL, NULL, "localhost");
	handshake(p.cli, p.srv, &rc, &rs);
	ck_assert_int_eq(rc, -EKEYREJECTED);
	ck_assert_ptr_nonnull(strstr(tls_conn_error(p.cli), "verify"));
	/* The server hears the client's alert. */
	ck_assert_int_eq(rs, -EPROTO);
	ck_assert_str_ne(tls_conn_error(p.srv), "");
	ck_assert_int_eq(tls_conn_handshake(p.cli), -EPIPE);
	ck_assert(!tls_conn_handshake_done(p.cli));
	pair_close(&p);
}
END_TEST

START_TEST(test_wrong_name)
{
	struct pair p;
	int rc, rs;

	pair_open(&p, NULL, pki.ca, NULL, NULL, "other.example");
	handshake(p.cli, p.srv, &rc, &rs);
	ck_assert_int_eq(rc, -EKEYREJECTED);
	ck_assert_int_ne(rs, 0);
	pair_close(&p);

	pair_open(&p, NULL, pki.ca, NULL, NULL, "10.1.2.3");
	handshake(p.cli, p.srv, &rc, &rs);
	ck_assert_int_eq(rc, -EKEYREJECTED);
	pair_close(&p);
}
END_TEST

START_TEST(test_mutual_tls)
{
	struct pair p;
	char subj[256];
	int rc, rs;

	/* A node certificate from the cluster CA: accepted and named. */
	pair_open(&p, pki.ca, pki.ca, pki.node_crt, pki.node_key, "localhost");
	handshake(p.cli, p.srv, &rc, &rs);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(rs, 0);
	ck_assert_int_eq(tls_conn_peer_subject(p.srv, subj, sizeof(subj)), 0);
	ck_assert_str_eq(subj, "CN=node-2,O=strata-test");
	pair_close(&p);

	/* No certificate: allowed (a user client), but nameless. */
	pair_open(&p, pki.ca, pki.ca, NULL, NULL, "localhost");
	handshake(p.cli, p.srv, &rc, &rs);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(rs, 0);
	ck_assert_int_eq(tls_conn_peer_subject(p.srv, subj, sizeof(subj)),
			 -ENOENT);
	pair_close(&p);

	/* Same name, wrong CA: the server refuses it. */
	pair_open(&p, pki.ca, pki.ca, pki.evil_crt, pki.evil_key, "localhost");
	handshake(p.cli, p.srv, &rc, &rs);
	/* (The client may have finished first: in TLS 1.3 it is done when
	 * it sends its certificate.) */
	ck_assert_int_eq(rs, -EKEYREJECTED);
	pair_close(&p);
}
END_TEST

START_TEST(test_garbage)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tls_ctx *ctx;
	struct tls_conn *c;

	ck_assert_int_eq(tls_ctx_new_server(pki.srv_crt, pki.srv_key, NULL,
					    &ctx), 0);
	ck_assert_int_eq(tls_conn_new(ctx, &c), 0);
	ck_assert_int_eq(tls_conn_feed(c, http, 3), 0);
	ck_assert_int_eq(tls_conn_handshake(c), -EAGAIN);
	ck_assert_int_eq(tls_conn_feed(c, http + 3, sizeof(http) - 4), 0);
	ck_assert_int_eq(tls_conn_handshake(c), -EPROTO);
	tls_conn_feed_release(c);
	ck_assert_str_ne(tls_conn_error(c), "");
	ck_assert_int_eq(tls_conn_handshake(c), -EPIPE);
	ck_assert(!tls_conn_has_input(c));
	tls_conn_free(c);
	tls_ctx_free(ctx);
}
END_TEST

START_TEST(test_shutdown)
{
	struct pair p;
	uint8_t *buf, b[16];
	int rc, rs;

	pair_open(&p, NULL, pki.ca, NULL, NULL, "localhost");
	handshake(p.cli, p.srv, &rc, &rs);
	ck_assert_int_eq(rc | rs, 0);
	ck_assert_int_eq(tls_conn_write(p.cli, "last", 4), 0);
	ck_assert_int_eq(tls_conn_shutdown(p.cli), 0);
	ck_assert_int_eq(tls_conn_write(p.cli, "more", 4), -EPIPE);
	xfer_begin(p.cli, p.srv, &buf);
	ck_assert_int_eq(tls_conn_read(p.srv, b, sizeof(b)), 4);
	ck_assert_mem_eq(b, "last", 4);
	ck_assert_int_eq(tls_conn_read(p.srv, b, sizeof(b)), 0);
	ck_assert_int_eq(tls_conn_read(p.srv, b, sizeof(b)), 0);
	xfer_end(p.srv, buf);
	/* TLS 1.3 half-close: the server may still answer. */
	ck_assert_int_eq(tls_conn_write(p.srv, "bye", 3), 0);
	ck_assert_int_eq(tls_conn_shutdown(p.srv), 0);
	xfer_begin(p.srv, p.cli, &buf);
	ck_assert_int_eq(tls_conn_read(p.cli, b, sizeof(b)), 3);
	ck_assert_int_eq(tls_conn_read(p.cli, b, sizeof(b)), 0);
	xfer_end(p.cli, buf);
	pair_close(&p);
}
END_TEST

/* Input left unread across feeds survives, in order, as a copy. */
START_TEST(test_feed_spill)
{
	struct pair p;
	uint8_t src[100000], dst[100000], *ct, *copy;
	size_t n, got = 0;
	ssize_t r;
	int rc, rs;

	pair_open(&p, NULL, pki.ca, NULL, NULL, "localhost");
	handshake(p.cli, p.srv, &rc, &rs);
	ck_assert_int_eq(rc | rs, 0);
	tu_fill(src, sizeof(src), 9);
	ck_assert_int_eq(tls_conn_write(p.cli, src, sizeof(src)), 0);
	ck_assert_uint_gt(tls_conn_pending_out(p.cli), sizeof(src));
	tls_conn_take_out(p.cli, &ct, &n);
	ck_assert_uint_eq(tls_conn_pending_out(p.cli), 0);
	/* Feed it in odd pieces, reading only a little after each. */
	copy = tu_xmalloc(n);
	memcpy(copy, ct, n);
	for (size_t off = 0; off < n;) {
		size_t k = n - off < 7777 ? n - off : 7777;

		ck_assert_int_eq(tls_conn_feed(p.srv, ct + off, k), 0);
		r = tls_conn_read(p.srv, dst + got, 1000);
		if (r > 0)
			got += (size_t)r;
		tls_conn_feed_release(p.srv);
		memset(ct + off, 0, k);	/* the borrow is over */
		off += k;
	}
	ck_assert(tls_conn_has_input(p.srv));
	while ((r = tls_conn_read(p.srv, dst + got, sizeof(dst) - got)) > 0)
		got += (size_t)r;
	ck_assert_int_eq(r, -EAGAIN);
	ck_assert_uint_eq(got, sizeof(src));
	ck_assert_mem_eq(src, dst, sizeof(src));
	ck_assert(!tls_conn_has_input(p.srv));
	free(ct);
	free(copy);
	pair_close(&p);
}
END_TEST

START_TEST(test_ctx_errors)
{
	char bad[300];
	struct tls_ctx *ctx = (struct tls_ctx *)1;

	snprintf(bad, sizeof(bad), "%s/missing.pem", pki.dir);
	ck_assert_int_eq(tls_ctx_new_server(bad, pki.srv_key, NULL, &ctx),
			 -ENOENT);
	ck_assert_ptr_null(ctx);
	snprintf(bad, sizeof(bad), "%s/garbage.pem", pki.dir);
	ck_assert_int_eq(tu_write_file(bad, "not a pem\n", 10, 0600), 0);
	ck_assert_int_eq(tls_ctx_new_server(bad, pki.srv_key, NULL, &ctx),
			 STRATA_ECONFIG);
	ck_assert_int_eq(tls_ctx_new_server(pki.srv_crt, bad, NULL, &ctx),
			 STRATA_ECONFIG);
	/* A key from another certificate. */
	ck_assert_int_eq(tls_ctx_new_server(pki.srv_crt, pki.node_key, NULL,
					    &ctx), STRATA_ECONFIG);
	ck_assert_int_eq(tls_ctx_new_server(pki.srv_crt, pki.srv_key, bad,
					    &ctx), STRATA_ECONFIG);
	ck_assert_int_eq(tls_ctx_new_client(pki.ca, pki.node_crt, NULL, &ctx),
			 -EINVAL);
	ck_assert_int_eq(tls_ctx_new_client(bad, NULL, NULL, &ctx),
			 STRATA_ECONFIG);
	ck_assert_int_eq(ERR_peek_error(), 0);	/* the queue is left empty */
}
END_TEST

/* A reload frees the old context while its connections carry on. */
START_TEST(test_ctx_outlived)
{
	struct pair p;
	int rc, rs;

	pair_open(&p, NULL, pki.ca, NULL, NULL, "localhost");
	tls_ctx_free(p.sctx);
	tls_ctx_free(p.cctx);
	p.sctx = p.cctx = NULL;
	handshake(p.cli, p.srv, &rc, &rs);
	ck_assert_int_eq(rc | rs, 0);
	transfer(p.srv, p.cli, 100000, 3);
	pair_close(&p);
}
END_TEST

/* A raw OpenSSL client over memory BIOs, for what tls_ctx won't offer. */
static int raw_client_alpn(int max_version, const char *suites,
			   const char *alpn, char *cipher, size_t cipher_len,
			   char *chosen, size_t chosen_len)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	struct tls_ctx *sctx;
	struct tls_conn *srv;
	BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
	SSL *ssl;
	int rs = -EAGAIN, rc = -1;

	ck_assert_ptr_nonnull(cctx);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
	if (max_version)
		SSL_CTX_set_max_proto_version(cctx, max_version);
	if (suites)
		ck_assert_int_eq(SSL_CTX_set_ciphersuites(cctx, suites), 1);
	if (alpn)	/* wire format: length-prefixed names */
		ck_assert_int_eq(SSL_CTX_set_alpn_protos(cctx,
			(const unsigned char *)alpn, (unsigned)strlen(alpn)), 0);
	ssl = SSL_new(cctx);
	SSL_set_bio(ssl, in, out);
	SSL_set_connect_state(ssl);
	ck_assert_int_eq(tls_ctx_new_server(pki.srv_crt, pki.srv_key, NULL,
					    &sctx), 0);
	ck_assert_int_eq(tls_conn_new(sctx, &srv), 0);
	for (int i = 0; i < 10 && rs == -EAGAIN; i++) {
		char buf[65536];
		uint8_t *ct;
		size_t n;
		int k;

		rc = SSL_do_handshake(ssl);
		while ((k = BIO_read(out, buf, sizeof(buf))) > 0)
			ck_assert_int_eq(tls_conn_feed(srv, buf, (size_t)k), 0);
		rs = tls_conn_handshake(srv);
		tls_conn_feed_release(srv);
		tls_conn_take_out(srv, &ct, &n);
		if (n)
			BIO_write(in, ct, (int)n);
		free(ct);
		rc = SSL_do_handshake(ssl);
	}
	if (rc == 1)
		snprintf(cipher, cipher_len, "%s", SSL_get_cipher_name(ssl));
	if (rc == 1 && chosen) {
		const unsigned char *sel;
		unsigned int sel_len;

		SSL_get0_alpn_selected(ssl, &sel, &sel_len);
		snprintf(chosen, chosen_len, "%.*s", (int)sel_len, sel);
	}
	ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(cctx);
	tls_conn_free(srv);
	tls_ctx_free(sctx);
	return rs;
}

static int raw_client_vs_server(int max_version, const char *suites,
				char *cipher, size_t cipher_len)
{
	return raw_client_alpn(max_version, suites, NULL, cipher, cipher_len,
			       NULL, 0);
}

/* ALPN (PROTOCOL.md §1): strata/1 is chosen when offered, among others
 * too; a client offering ALPN without it is refused; one offering none is
 * served.  (The server ignored ALPN: it chose nothing and took an h2
 * client.) */
START_TEST(test_alpn)
{
	char cipher[64], chosen[32];

	chosen[0] = 0;
	ck_assert_int_eq(raw_client_alpn(0, NULL, "\x08strata/1", cipher,
					 sizeof(cipher), chosen,
					 sizeof(chosen)), 0);
	ck_assert_str_eq(chosen, "strata/1");
	chosen[0] = 0;
	ck_assert_int_eq(raw_client_alpn(0, NULL, "\x08strata/2\x08strata/1",
					 cipher, sizeof(cipher), chosen,
					 sizeof(chosen)), 0);
	ck_assert_str_eq(chosen, "strata/1");
	ck_assert_int_eq(raw_client_alpn(0, NULL, "\x02h2\x08http/1.1", cipher,
					 sizeof(cipher), chosen,
					 sizeof(chosen)), -EPROTO);
	ck_assert_int_eq(raw_client_alpn(0, NULL, "\x08strata/2", cipher,
					 sizeof(cipher), chosen,
					 sizeof(chosen)), -EPROTO);
	chosen[0] = 'x';
	ck_assert_int_eq(raw_client_alpn(0, NULL, NULL, cipher, sizeof(cipher),
					 chosen, sizeof(chosen)), 0);
	ck_assert_str_eq(chosen, "");
}
END_TEST

START_TEST(test_versions_and_suites)
{
	char cipher[64] = "";

	/* TLS 1.2 and below are refused. */
	ck_assert_int_eq(raw_client_vs_server(TLS1_2_VERSION, NULL, cipher,
					      sizeof(cipher)), -EPROTO);
	/* A client offering only AES-128 finds no common suite. */
	ck_assert_int_eq(raw_client_vs_server(0, "TLS_AES_128_GCM_SHA256",
					      cipher, sizeof(cipher)), -EPROTO);
	/* A ChaCha20-first client (no AES hardware) gets ChaCha20. */
	ck_assert_int_eq(raw_client_vs_server(0, "TLS_CHACHA20_POLY1305_SHA256:"
					      "TLS_AES_256_GCM_SHA384", cipher,
					      sizeof(cipher)), 0);
	ck_assert_str_eq(cipher, "TLS_CHACHA20_POLY1305_SHA256");
	/* Otherwise AES-256-GCM, whatever the client's order. */
	ck_assert_int_eq(raw_client_vs_server(0, "TLS_AES_128_GCM_SHA256:"
					      "TLS_AES_256_GCM_SHA384:"
					      "TLS_CHACHA20_POLY1305_SHA256",
					      cipher, sizeof(cipher)), 0);
	ck_assert_str_eq(cipher, "TLS_AES_256_GCM_SHA384");
}
END_TEST

START_TEST(test_peer_name_rules)
{
	struct tls_ctx *sctx;
	struct tls_conn *c;

	ck_assert_int_eq(tls_ctx_new_server(pki.srv_crt, pki.srv_key, NULL,
					    &sctx), 0);
	ck_assert_int_eq(tls_conn_new(sctx, &c), 0);
	ck_assert_int_eq(tls_conn_set_peer_name(c, "localhost"), -EINVAL);
	tls_conn_free(c);
	tls_ctx_free(sctx);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("tls");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_handshake_data_exporter);
	tcase_add_test(tc, test_untrusted_ca);
	tcase_add_test(tc, test_wrong_name);
	tcase_add_test(tc, test_mutual_tls);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_shutdown);
	tcase_add_test(tc, test_feed_spill);
	tcase_add_test(tc, test_ctx_errors);
	tcase_add_test(tc, test_ctx_outlived);
	tcase_add_test(tc, test_versions_and_suites);
	tcase_add_test(tc, test_alpn);
	tcase_add_test(tc, test_peer_name_rules);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
