// SPDX-License-Identifier: Apache-2.0
/*
 * Strata error codes.
 *
 * Every Strata function returns 0 on success or a negative number: either a
 * negated errno value (-ENOENT, -EIO, -ENOSPC, ...) or one of the STRATA_E*
 * codes below, which live in a reserved range far from any errno value
 * (as LMDB does).  strata_strerror() names both kinds.
 */
#ifndef STRATA_ERROR_H
#define STRATA_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* The reserved range: [STRATA_E_LAST, STRATA_E_FIRST]. */
#define STRATA_E_FIRST (-30000)

enum strata_error {
	/* Stored bytes failed a check (crc32c, GCM tag, header, length). */
	STRATA_ECORRUPT = STRATA_E_FIRST,
	/* The bucket does not exist. */
	STRATA_ENOBUCKET = STRATA_E_FIRST - 1,
	/* The object (key) does not exist, or its newest version is a delete. */
	STRATA_ENOOBJECT = STRATA_E_FIRST - 2,
	/* A bucket of that name already exists. */
	STRATA_EBUCKETEXISTS = STRATA_E_FIRST - 3,
	/* The bucket still holds objects. */
	STRATA_EBUCKETNOTEMPTY = STRATA_E_FIRST - 4,
	/* A bucket name that breaks the naming rules. */
	STRATA_EBADBUCKET = STRATA_E_FIRST - 5,
	/* An object key that is empty, longer than 1024 bytes or not UTF-8. */
	STRATA_EBADKEY = STRATA_E_FIRST - 6,
	/* The master key does not open this store (wrong key file). */
	STRATA_EMASTERKEY = STRATA_E_FIRST - 7,
	/* A key file with bad contents or unsafe permissions. */
	STRATA_EKEYFILE = STRATA_E_FIRST - 8,
	/* A byte range outside the object. */
	STRATA_ERANGE = STRATA_E_FIRST - 9,
	/* The index (RocksDB) reported an error; the text is in the log. */
	STRATA_EINDEX = STRATA_E_FIRST - 10,
	/* The store is closing and takes no new work. */
	STRATA_ECLOSING = STRATA_E_FIRST - 11,
	/* The operation was aborted by the caller. */
	STRATA_EABORTED = STRATA_E_FIRST - 12,
	/* On-disk data written by a newer, unknown format version. */
	STRATA_EFORMAT = STRATA_E_FIRST - 13,
	/* A bad configuration value or option. */
	STRATA_ECONFIG = STRATA_E_FIRST - 14,
	/* Bad metadata: too many or too large user metadata entries or tags. */
	STRATA_EBADMETA = STRATA_E_FIRST - 15,
	/* A wire frame or message that breaks proto/PROTOCOL.md. */
	STRATA_EPROTO = STRATA_E_FIRST - 16,
	/* A peer speaking a protocol version this build does not. */
	STRATA_EPROTOVERSION = STRATA_E_FIRST - 17,
	/* Unknown access key or wrong secret (one answer for both). */
	STRATA_EAUTH = STRATA_E_FIRST - 18,
	/* The peer's TLS certificate did not verify: unknown CA, expired or
	 * not yet valid, or not for this host name. */
	STRATA_ECERT = STRATA_E_FIRST - 19,
	/* The object was overwritten or deleted while a GET of more than
	 * 256 chunks was streaming it; read it again. */
	STRATA_ECHANGED = STRATA_E_FIRST - 20,
	/* An access policy document that does not parse or check
	 * (strata-policy(7)); the node's message says where. */
	STRATA_EBADPOLICY = STRATA_E_FIRST - 21,

	STRATA_E_LAST = STRATA_E_FIRST - 21
};

/*
 * Describe an error code.
 *   [in] err  0, a negative errno value or a STRATA_E* code.
 * Returns a static string, valid for the life of the program; never NULL.
 */
const char *strata_strerror(int err);

/*
 * The node's own words about the last error it returned to this thread's
 * latest libstrata call ("an admin access key is required"), for people;
 * for strata_client_new(), also the library's own reason where it has one
 * (a malformed endpoint, a host name that did not resolve, a CA file that
 * cannot be read or holds no certificate); "" when that
 * call failed without one (or did not fail).  Valid until the thread's
 * next libstrata call.
 */
const char *strata_error_message(void);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_ERROR_H */
