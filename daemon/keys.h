// SPDX-License-Identifier: Apache-2.0
/*
 * Keys: the master key and the wrapping of per-bucket keys.
 *
 * The master key (32 bytes) comes from a file that only its owner may read
 * (mode 0600 or stricter; 32 raw bytes, or 64 hex digits and an optional
 * newline).  It never encrypts data itself: it wraps per-bucket keys with
 * AES-256-GCM, so rotating it re-wraps a few hundred bytes per bucket and
 * rewrites no data.
 *
 * Wrapped format: nonce (12) || ciphertext (len) || tag (16); the caller's AAD
 * binds a wrapped key to its purpose and owner (e.g. "bucket" + bucket id), so
 * a wrapped key copied elsewhere in the index fails to unwrap.
 */
#ifndef STRATA_KEYS_H
#define STRATA_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define KEYS_MASTER_LEN 32
#define KEYS_WRAP_OVERHEAD (12 + 16)

/*
 * Load a master key file.
 *   [in]  path
 *   [out] key   32 bytes
 * Errors: -errno from open/read (e.g. -ENOENT, -EACCES), STRATA_EKEYFILE for
 * group/other permission bits set, a wrong length or non-hex contents.
 */
int keys_load_master(const char *path, uint8_t key[KEYS_MASTER_LEN]);

/*
 * The contents of a master key file (what keys_load_master() read, n
 * bytes): 32 raw bytes, or 64 hex digits and an optional newline.
 * Returns 0 or STRATA_EKEYFILE (then key is wiped).
 */
int keys_parse_master(const uint8_t *buf, size_t n,
		      uint8_t key[KEYS_MASTER_LEN]);

/*
 * Create a new master key file with fresh random bytes (64 hex digits and a
 * newline), mode 0600, failing with -EEXIST if it exists.  fsyncs the file.
 */
int keys_create_master(const char *path);

/*
 * fsync the directory holding path, so that a file just created there
 * keeps its name through a crash (the master key file, the audit log).
 * Returns 0 or -errno.
 */
int keys_fsync_parent(const char *path);

/* Fill buf with len cryptographically random bytes.  Returns 0 or -EIO. */
int keys_random(void *buf, size_t len);

/*
 * Wrap `len` bytes of key material.
 *   [out] out  KEYS_WRAP_OVERHEAD + len bytes
 * Returns 0 or -EIO (OpenSSL failure).
 */
int keys_wrap(const uint8_t master[KEYS_MASTER_LEN], const void *aad,
	      size_t aadlen, const void *plain, size_t len, uint8_t *out);

/*
 * Unwrap what keys_wrap() produced.
 *   [in]  in, inlen   the wrapped bytes (inlen >= KEYS_WRAP_OVERHEAD)
 *   [out] plain       inlen - KEYS_WRAP_OVERHEAD bytes
 * Returns 0, STRATA_EMASTERKEY when the tag does not verify (wrong master key
 * or damaged bytes), -EINVAL for a too-short input.
 */
int keys_unwrap(const uint8_t master[KEYS_MASTER_LEN], const void *aad,
		size_t aadlen, const uint8_t *in, size_t inlen, void *plain);

/* Overwrite key material so it does not linger in freed memory. */
void keys_wipe(void *p, size_t len);

#endif
