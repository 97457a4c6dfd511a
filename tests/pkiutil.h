// SPDX-License-Identifier: Apache-2.0
/* A throwaway PKI for the TLS and network suites, made with the OpenSSL
 * API (no openssl CLI): two CAs, server and node certificates. */
#ifndef STRATA_PKIUTIL_H
#define STRATA_PKIUTIL_H

struct pki {
	char *dir;
	char ca[256], ca2[256];
	char srv_crt[256], srv_key[256];
	char srv2_crt[256], srv2_key[256];
	char node_crt[256], node_key[256];
	char evil_crt[256], evil_key[256];
};

/* Make the keys and certificates as PEM files in a fresh temp dir
 * (p->dir; remove with tu_rmrf and free). Aborts the test on failure. */
void pki_make(struct pki *p);

#endif
