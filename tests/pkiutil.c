// SPDX-License-Identifier: Apache-2.0
/* See pkiutil.h. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "pkiutil.h"
#include "testutil.h"
#include "banned.h"

/* ---- a throwaway PKI --------------------------------------------------- */


static void add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *val)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, val);

	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A certificate for key, signed by issuer (self-signed if NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
		       EVP_PKEY *issuer_key, int ca, const char *san)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX v3;

	ck_assert_ptr_nonnull(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
				   (const unsigned char *)"strata-test", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	add_ext(x, &v3, NID_basic_constraints,
		ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_ext(x, &v3, NID_key_usage, ca ? "critical,keyCertSign,cRLSign"
					  : "critical,digitalSignature");
	add_ext(x, &v3, NID_subject_key_identifier, "hash");
	if (!ca)
		add_ext(x, &v3, NID_ext_key_usage, "serverAuth,clientAuth");
	if (san)
		add_ext(x, &v3, NID_subject_alt_name, san);
	ck_assert_int_gt(X509_sign(x, issuer_key ? issuer_key : key,
				   EVP_sha256()), 0);
	return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	if (x)
		ck_assert_int_eq(PEM_write_X509(f, x), 1);
	if (k)
		ck_assert_int_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL,
						      NULL), 1);
	ck_assert_int_eq(fclose(f), 0);
	/* Private keys as an operator keeps them (stratad warns otherwise). */
	if (k)
		ck_assert_int_eq(chmod(path, 0600), 0);
}

static EVP_PKEY *gen_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	ck_assert_ptr_nonnull(k);
	return k;
}

/* A leaf certificate and key signed by ca, written to crt and key. */
static void make_leaf(const char *crt, const char *key, const char *cn,
		      X509 *ca, EVP_PKEY *ca_key, const char *san)
{
	EVP_PKEY *k = gen_key();
	X509 *x = make_cert(k, cn, ca, ca_key, 0, san);

	write_pem(crt, x, NULL);
	write_pem(key, NULL, k);
	X509_free(x);
	EVP_PKEY_free(k);
}

void pki_make(struct pki *p)
{
	EVP_PKEY *cak = gen_key(), *ca2k = gen_key();
	X509 *ca = make_cert(cak, "strata-test-ca", NULL, NULL, 1, NULL);
	X509 *ca2 = make_cert(ca2k, "untrusted-ca", NULL, NULL, 1, NULL);
	const char *san = "IP:127.0.0.1,DNS:localhost";

	p->dir = tu_tmpdir("tls");
#define P(f, name) snprintf(p->f, sizeof(p->f), "%s/" name, p->dir)
	P(ca, "ca.pem");
	P(ca2, "ca2.pem");
	P(srv_crt, "server.pem");
	P(srv_key, "server.key");
	P(srv2_crt, "server2.pem");
	P(srv2_key, "server2.key");
	P(node_crt, "node.pem");
	P(node_key, "node.key");
	P(evil_crt, "evil.pem");
	P(evil_key, "evil.key");
#undef P
	write_pem(p->ca, ca, NULL);
	write_pem(p->ca2, ca2, NULL);
	make_leaf(p->srv_crt, p->srv_key, "strata-test-server", ca, cak, san);
	make_leaf(p->srv2_crt, p->srv2_key, "strata-test-server-2", ca, cak, san);
	make_leaf(p->node_crt, p->node_key, "node-2", ca, cak, NULL);
	make_leaf(p->evil_crt, p->evil_key, "node-2", ca2, ca2k, san);
	X509_free(ca);
	X509_free(ca2);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(ca2k);
}

