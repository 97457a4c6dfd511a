// SPDX-License-Identifier: Apache-2.0
/*
 * Keys: loading and creating the master key file, and wrapping per-bucket
 * keys under the master key with AES-256-GCM.
 *
 * Invariants:
 *  - A master key file is trusted only when it is a regular file, reached
 *    without following a symlink in its last component, with no group or
 *    other permission bits.  Anything else is refused before a byte is read.
 *  - Key material read from disk or produced here is wiped (OPENSSL_cleanse)
 *    from every intermediate buffer before return, on every path.
 *  - keys_unwrap() never hands back unauthenticated bytes: when the tag does
 *    not verify the output buffer is wiped.
 *  - OpenSSL's error queue is drained and logged here, at the module edge, so
 *    a stale entry never surfaces later in an unrelated TLS call.
 *
 * Only libcrypto is used here; tls.c alone includes the SSL headers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keys.h"
#include "log.h"
#include "strata/error.h"
#include "banned.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define HEX_LEN (2 * KEYS_MASTER_LEN)

/*
 * A valid key file is at most 65 bytes; reading a little more than that is
 * enough to tell "too long" apart, and a bounded read means a key path
 * pointing at a huge file costs nothing.
 */
#define KEYFILE_READ_MAX 200

/* EVP lengths are ints; feed larger buffers in pieces. */
#define EVP_STEP (1 << 30)

/* Log and clear OpenSSL's error queue once, here, then report -EIO. */
static int ossl_fail(const char *what)
{
	unsigned long e;
	char msg[256];
	int logged = 0;

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, msg, sizeof(msg));
		log_err("keys", "%s: %s", what, msg);
		logged = 1;
	}
	if (!logged)
		log_err("keys", "%s failed", what);
	return -EIO;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Read up to cap bytes, stopping early only at end of file. */
static ssize_t read_bounded(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* The length of a hex key file: 64 digits, maybe a newline. */
static bool hex_len(const uint8_t *buf, size_t n)
{
	return n == HEX_LEN || (n == HEX_LEN + 1 && buf[HEX_LEN] == '\n');
}

int keys_parse_master(const uint8_t *buf, size_t n,
		      uint8_t key[KEYS_MASTER_LEN])
{
	if (n == KEYS_MASTER_LEN) {
		memcpy(key, buf, KEYS_MASTER_LEN);
		return 0;
	}
	if (!hex_len(buf, n))
		return STRATA_EKEYFILE;
	for (size_t i = 0; i < KEYS_MASTER_LEN; i++) {
		int hi = hexval(buf[2 * i]);
		int lo = hexval(buf[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			OPENSSL_cleanse(key, KEYS_MASTER_LEN);
			return STRATA_EKEYFILE;
		}
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int keys_load_master(const char *path, uint8_t key[KEYS_MASTER_LEN])
{
	uint8_t buf[KEYFILE_READ_MAX];
	struct stat st;
	ssize_t n;
	int fd, rc;

	/*
	 * O_NOFOLLOW: a symlink could point the daemon at a key file whose
	 * permissions were never checked by the operator.  O_NONBLOCK: a FIFO
	 * planted at the path must not hang startup; fstat below refuses it,
	 * and the flag changes nothing for regular files.
	 */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ELOOP)
			log_err("keys", "%s is a symbolic link, which is not "
				"followed: name the key file itself", path);
		return rc;
	}

	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		if (!S_ISREG(st.st_mode))
			log_err("keys", "%s is not a regular file", path);
		else
			log_err("keys", "%s is mode %04o: others than its "
				"owner may read it (chmod 600 %s)", path,
				(unsigned)(st.st_mode & 07777), path);
		rc = STRATA_EKEYFILE;
		goto out;
	}

	n = read_bounded(fd, buf, sizeof(buf));
	if (n < 0) {
		rc = (int)n;
		goto out;
	}

	rc = keys_parse_master(buf, (size_t)n, key);
	if (rc && hex_len(buf, (size_t)n))
		log_err("keys", "%s: %d bytes, but not all hex digits",
			path, (int)n);
	else if (rc)
		log_err("keys", "%s holds %s%d bytes: want %d raw bytes or %d "
			"hex digits (and a newline)", path,
			n == (ssize_t)sizeof(buf) ? "at least " : "", (int)n,
			KEYS_MASTER_LEN, HEX_LEN);

out:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return rc;
}

/* Write all of buf, retrying short writes and EINTR. */
static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * fsync the directory holding path, so the new name survives a crash: a
 * store initialised with a key whose file then vanishes is unreadable.
 */
int keys_fsync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, rc = 0;

	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return -ENOMEM;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
out:
	free(dir);
	return rc;
}

int keys_create_master(const char *path)
{
	static const char digits[] = "0123456789abcdef";
	uint8_t key[KEYS_MASTER_LEN];
	char text[HEX_LEN + 1];
	int fd, rc;

	rc = keys_random(key, sizeof(key));
	if (rc)
		return rc;
	for (size_t i = 0; i < KEYS_MASTER_LEN; i++) {
		text[2 * i] = digits[key[i] >> 4];
		text[2 * i + 1] = digits[key[i] & 15];
	}
	text[HEX_LEN] = '\n';

	/* O_EXCL: never overwrite a key that may already encrypt a store. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}

	rc = write_all(fd, text, sizeof(text));
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	/*
	 * A half-written key file would later fail to load with a confusing
	 * STRATA_EKEYFILE; remove it so a retry starts clean.
	 */
	if (rc) {
		unlink(path);
		goto out;
	}
	rc = keys_fsync_parent(path);

out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

int keys_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		int n = len > EVP_STEP ? EVP_STEP : (int)len;

		if (RAND_bytes(p, n) != 1)
			return ossl_fail("RAND_bytes");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Feed AAD (out == NULL) or data through an initialised GCM context. */
static int gcm_update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in,
		      size_t len)
{
	while (len) {
		int n = len > EVP_STEP ? EVP_STEP : (int)len;
		int outl;

		if (EVP_CipherUpdate(ctx, out, &outl, in, n) != 1)
			return -1;
		in += n;
		if (out)
			out += n;
		len -= (size_t)n;
	}
	return 0;
}

int keys_wrap(const uint8_t master[KEYS_MASTER_LEN], const void *aad,
	      size_t aadlen, const void *plain, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx;
	int outl, rc = -EIO;

	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return ossl_fail("EVP_CIPHER_CTX_new");

	if (keys_random(out, NONCE_LEN))
		goto out;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, master, out) != 1)
		goto fail;
	if (gcm_update(ctx, NULL, aad, aadlen) ||
	    gcm_update(ctx, out + NONCE_LEN, plain, len))
		goto fail;
	if (EVP_EncryptFinal_ex(ctx, out + NONCE_LEN + len, &outl) != 1)
		goto fail;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
				out + NONCE_LEN + len) != 1)
		goto fail;
	rc = 0;
	goto out;

fail:
	rc = ossl_fail("keys_wrap");
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int keys_unwrap(const uint8_t master[KEYS_MASTER_LEN], const void *aad,
		size_t aadlen, const uint8_t *in, size_t inlen, void *plain)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t tag[TAG_LEN], fin[TAG_LEN];
	size_t len;
	int outl, rc = -EIO;

	if (inlen < KEYS_WRAP_OVERHEAD)
		return -EINVAL;
	len = inlen - KEYS_WRAP_OVERHEAD;

	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return ossl_fail("EVP_CIPHER_CTX_new");

	/* The ctrl wants a mutable buffer; the caller's input is const. */
	memcpy(tag, in + NONCE_LEN + len, TAG_LEN);
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, master, in) != 1)
		goto fail;
	if (gcm_update(ctx, NULL, aad, aadlen) ||
	    gcm_update(ctx, plain, in + NONCE_LEN, len))
		goto fail;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
		goto fail;
	/* GCM's final step writes no bytes; fin keeps plain (maybe NULL) out. */
	if (EVP_DecryptFinal_ex(ctx, fin, &outl) != 1) {
		/* Wrong master key or damaged bytes: hand back nothing. */
		keys_wipe(plain, len);
		ERR_clear_error();
		rc = STRATA_EMASTERKEY;
		goto out;
	}
	rc = 0;
	goto out;

fail:
	keys_wipe(plain, len);
	rc = ossl_fail("keys_unwrap");
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

void keys_wipe(void *p, size_t len)
{
	if (p && len)
		OPENSSL_cleanse(p, len);
}
