// SPDX-License-Identifier: Apache-2.0
/*
 * Chunk records: the one encoder and decoder of the bytes a chunk occupies in
 * a segment file (layout and AAD in record.h).
 *
 * Invariants:
 *  - Every record written is encrypted and authenticated (RECORD_AEAD); the
 *    decoder refuses a record without that flag, so nobody able to write the
 *    disk can plant plaintext that reads back as a chunk.
 *  - A zstd payload is strictly shorter than the plaintext and saves at least
 *    1/16 of it; otherwise the chunk is stored raw.  So the payload never
 *    exceeds the plaintext, and record_bound(len) is RECORD_HDR_LEN + len.
 *  - Every length read off disk is checked against RECORD_MAX_RAW, the
 *    record length and the caller's cap before it sizes any copy; the decoder
 *    never writes more than min(cap, raw length) bytes into the caller's
 *    buffer, and wipes what it wrote when the record then fails a check, so
 *    unauthenticated plaintext is never handed back.
 *  - Checks run cheapest first: header crc, lengths, chunk id, payload crc,
 *    then the GCM tag, then zstd.  A crc mismatch (disk damage) is caught
 *    before any key is touched; the tag is what stops a deliberate edit.
 *
 * crc32c convention: record_crc32c(seed, buf, len) is the standard CRC-32C
 * (Castagnoli, reflected, init and final xor 0xFFFFFFFF) with seed 0, e.g.
 * "123456789" -> 0xE3069283, and chains like zlib's crc32():
 * record_crc32c(record_crc32c(0, a), b) == record_crc32c(0, a || b).
 * ISA-L's crc32_iscsi() does neither inversion itself, so we add both.
 *
 * Nonces are 96 random bits per record.  Under one bucket data key that keeps
 * the chance of a repeat below 2^-32 up to 2^32 records (NIST SP 800-38D),
 * far beyond what one bucket stores between key rotations.
 *
 * Data path copies: encode compresses straight into the output record and
 * encrypts there in place, or encrypts the caller's plaintext straight into
 * the record; decode decrypts a raw payload straight into the caller's
 * buffer, or a zstd payload in place and decompresses into the caller's
 * buffer.  The codec holds contexts only, no data buffers, so the hot path
 * allocates nothing once zstd has sized its workspace.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/crc.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zstd.h>

#include "le.h"
#include "record.h"
#include "log.h"
#include "strata/error.h"
#include "banned.h"

#define NONCE_LEN 12
#define TAG_LEN 16

/* Header field offsets (record.h). */
#define OFF_MAGIC 0
#define OFF_VERSION 4
#define OFF_FLAGS 5
#define OFF_RSVD1 6
#define OFF_RAW_LEN 8
#define OFF_STORED_LEN 12
#define OFF_ID 16
#define OFF_NONCE 48
#define OFF_TAG 60
#define OFF_PAYLOAD_CRC 76
#define OFF_RSVD2 80
#define OFF_HDR_CRC 92
#define RSVD1_LEN 2
#define RSVD2_LEN 12

#define AAD_PREFIX "strata-chunk-v1"
#define AAD_PREFIX_LEN (sizeof(AAD_PREFIX) - 1)
#define AAD_LEN (AAD_PREFIX_LEN + 8 + RECORD_ID_LEN + 1 + 4)

#define KNOWN_FLAGS (RECORD_ZSTD | RECORD_AEAD)

/* crc32_iscsi() takes an int length. */
#define CRC_STEP (1u << 30)

_Static_assert(RECORD_MAX_RAW <= INT_MAX,
	       "EVP and zstd lengths below are ints and size_ts of raw_len");
_Static_assert(OFF_HDR_CRC + 4 == RECORD_HDR_LEN, "header layout");

struct record_codec {
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
	EVP_CIPHER *aes;	/* fetched once: no per-call implicit fetch */
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
	EVP_MD *sha256;		/* fetched once, like aes */
	EVP_MD_CTX *md;
	EVP_MAC *hmac;
	EVP_MAC_CTX *mac;	/* HMAC-SHA256; only the key changes per call */
};

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static int all_zero(const uint8_t *p, size_t len)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < len; i++)
		acc |= p[i];
	return acc == 0;
}

/* Log and clear OpenSSL's error queue once, here, then report -EIO. */
static int ossl_fail(const char *what)
{
	unsigned long e;
	char msg[256];
	int logged = 0;

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, msg, sizeof(msg));
		log_err("record", "%s: %s", what, msg);
		logged = 1;
	}
	if (!logged)
		log_err("record", "%s failed", what);
	return -EIO;
}

uint32_t record_crc32c(uint32_t seed, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = ~seed;

	while (len) {
		unsigned n = len > CRC_STEP ? CRC_STEP : (unsigned)len;

		/* ISA-L's prototype lacks const; it only reads. */
		crc = crc32_iscsi((unsigned char *)p, (int)n, crc);
		p += n;
		len -= n;
	}
	return ~crc;
}

struct record_codec *record_codec_new(void)
{
	struct record_codec *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->zc = ZSTD_createCCtx();
	c->zd = ZSTD_createDCtx();
	c->aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	c->enc = EVP_CIPHER_CTX_new();
	c->dec = EVP_CIPHER_CTX_new();
	c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	c->md = EVP_MD_CTX_new();
	c->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	c->mac = c->hmac ? EVP_MAC_CTX_new(c->hmac) : NULL;
	if (!c->zc || !c->zd || !c->aes || !c->enc || !c->dec ||
	    !c->sha256 || !c->md || !c->mac)
		goto fail;
	{
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string("digest",
							 (char *)"SHA256", 0),
			OSSL_PARAM_construct_end(),
		};

		if (EVP_MAC_CTX_set_params(c->mac, params) != 1)
			goto fail;
	}
	/* Bind the cipher now; each record then only sets key and nonce. */
	if (EVP_EncryptInit_ex(c->enc, c->aes, NULL, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex(c->dec, c->aes, NULL, NULL, NULL) != 1)
		goto fail;
	return c;

fail:
	ossl_fail("record_codec_new");
	record_codec_free(c);
	return NULL;
}

void record_codec_free(struct record_codec *c)
{
	if (!c)
		return;
	EVP_MAC_CTX_free(c->mac);
	EVP_MAC_free(c->hmac);
	EVP_MD_CTX_free(c->md);
	EVP_MD_free(c->sha256);
	/* EVP_CIPHER_CTX_free cleanses the last key schedule. */
	EVP_CIPHER_CTX_free(c->dec);
	EVP_CIPHER_CTX_free(c->enc);
	EVP_CIPHER_free(c->aes);
	ZSTD_freeDCtx(c->zd);
	ZSTD_freeCCtx(c->zc);
	free(c);
}

size_t record_bound(size_t len)
{
	/* The payload never exceeds the plaintext (see the invariants). */
	if (len > SIZE_MAX - RECORD_HDR_LEN)
		return SIZE_MAX;
	return RECORD_HDR_LEN + len;
}

int record_chunk_id(struct record_codec *c, const struct record_keys *k,
		    const void *plain, size_t len, uint8_t hash[32],
		    uint8_t id[RECORD_ID_LEN])
{
	uint8_t h[32];
	unsigned int hlen = 0;
	size_t idlen = 0;

	if (!hash && !id)
		return 0;
	/* "" keeps a NULL plain (len 0) away from OpenSSL. */
	if (EVP_DigestInit_ex(c->md, c->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(c->md, len ? plain : "", len) != 1 ||
	    EVP_DigestFinal_ex(c->md, h, &hlen) != 1 || hlen != sizeof(h)) {
		ossl_fail("SHA-256");
		return -EIO;
	}
	if (id && (EVP_MAC_init(c->mac, k->id_key, sizeof(k->id_key),
				NULL) != 1 ||
		   EVP_MAC_update(c->mac, h, sizeof(h)) != 1 ||
		   EVP_MAC_final(c->mac, id, &idlen, RECORD_ID_LEN) != 1 ||
		   idlen != RECORD_ID_LEN)) {
		ossl_fail("HMAC-SHA256");
		return -EIO;
	}
	if (hash)
		memcpy(hash, h, sizeof(h));
	return 0;
}

static void build_aad(uint8_t aad[AAD_LEN], const struct record_keys *k,
		      const uint8_t id[RECORD_ID_LEN], uint8_t flags,
		      uint32_t raw_len)
{
	uint8_t *p = aad;

	memcpy(p, AAD_PREFIX, AAD_PREFIX_LEN);
	p += AAD_PREFIX_LEN;
	put_be64(p, k->bucket_id);
	p += 8;
	memcpy(p, id, RECORD_ID_LEN);
	p += RECORD_ID_LEN;
	*p++ = flags;
	put_le32(p, raw_len);
}

/*
 * Try to compress into dst, which has room for exactly the largest payload
 * worth keeping.  Returns the compressed size, or 0 when the chunk should be
 * stored raw (it did not fit, so it saved too little).
 */
static size_t try_compress(struct record_codec *c, uint8_t *dst,
			   const void *plain, size_t len, int zlevel)
{
	size_t cap, n;

	if (zlevel == 0 || len < 2)
		return 0;
	/* Keep it only if it saves >= len/16 and at least one byte. */
	cap = len - (len / 16 ? len / 16 : 1);
	/*
	 * Compressing straight into the record, capped at the break-even
	 * size, needs no scratch buffer: zstd stops with dstSize_tooSmall
	 * once the output would not be worth keeping.
	 */
	n = ZSTD_compressCCtx(c->zc, dst, cap, plain, len, zlevel);
	if (ZSTD_isError(n))
		return 0;
	return n;
}

int record_encode(struct record_codec *c, const struct record_keys *k,
		  const uint8_t id[RECORD_ID_LEN], const void *plain,
		  size_t len, int zlevel, void *out, size_t *outlen)
{
	uint8_t *hdr = out, *payload = hdr + RECORD_HDR_LEN;
	uint8_t aad[AAD_LEN];
	uint8_t flags = RECORD_AEAD;
	size_t stored;
	int n;

	if (len > RECORD_MAX_RAW)
		return -EINVAL;

	stored = try_compress(c, payload, plain, len, zlevel);
	if (stored)
		flags |= RECORD_ZSTD;
	else
		stored = len;

	memset(hdr, 0, RECORD_HDR_LEN);
	put_le32(hdr + OFF_MAGIC, RECORD_MAGIC);
	hdr[OFF_VERSION] = RECORD_VERSION;
	hdr[OFF_FLAGS] = flags;
	put_le32(hdr + OFF_RAW_LEN, (uint32_t)len);
	put_le32(hdr + OFF_STORED_LEN, (uint32_t)stored);
	memcpy(hdr + OFF_ID, id, RECORD_ID_LEN);
	if (RAND_bytes(hdr + OFF_NONCE, NONCE_LEN) != 1)
		return ossl_fail("RAND_bytes");

	build_aad(aad, k, id, flags, (uint32_t)len);
	if (EVP_EncryptInit_ex(c->enc, NULL, NULL, k->data_key,
			       hdr + OFF_NONCE) != 1 ||
	    EVP_EncryptUpdate(c->enc, NULL, &n, aad, (int)sizeof(aad)) != 1)
		goto fail;
	/* Compressed: in place in the record.  Raw: plaintext -> record. */
	if (stored &&
	    EVP_EncryptUpdate(c->enc, payload, &n,
			      (flags & RECORD_ZSTD) ? payload : plain,
			      (int)stored) != 1)
		goto fail;
	if (EVP_EncryptFinal_ex(c->enc, hdr + OFF_TAG, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c->enc, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
				hdr + OFF_TAG) != 1)
		goto fail;

	put_le32(hdr + OFF_PAYLOAD_CRC, record_crc32c(0, payload, stored));
	put_le32(hdr + OFF_HDR_CRC, record_crc32c(0, hdr, OFF_HDR_CRC));
	*outlen = RECORD_HDR_LEN + stored;
	return 0;

fail:
	return ossl_fail("record_encode");
}

int record_parse_header(const void *buf, struct record_hdr *h)
{
	const uint8_t *p = buf;
	uint32_t raw, stored;
	uint8_t flags;

	if (get_le32(p + OFF_MAGIC) != RECORD_MAGIC)
		return STRATA_ECORRUPT;
	if (record_crc32c(0, p, OFF_HDR_CRC) != get_le32(p + OFF_HDR_CRC))
		return STRATA_ECORRUPT;
	/*
	 * Version after the crc: a damaged version byte is corruption, and
	 * only an intact header from a newer writer says EFORMAT.
	 */
	if (p[OFF_VERSION] != RECORD_VERSION)
		return STRATA_EFORMAT;

	flags = p[OFF_FLAGS];
	raw = get_le32(p + OFF_RAW_LEN);
	stored = get_le32(p + OFF_STORED_LEN);
	if ((flags & ~KNOWN_FLAGS) || !(flags & RECORD_AEAD))
		return STRATA_ECORRUPT;
	if (!all_zero(p + OFF_RSVD1, RSVD1_LEN) ||
	    !all_zero(p + OFF_RSVD2, RSVD2_LEN))
		return STRATA_ECORRUPT;
	if (raw > RECORD_MAX_RAW)
		return STRATA_ECORRUPT;
	/* What the encoder writes: zstd strictly smaller, raw the same. */
	if (flags & RECORD_ZSTD) {
		if (stored == 0 || stored >= raw)
			return STRATA_ECORRUPT;
	} else if (stored != raw) {
		return STRATA_ECORRUPT;
	}

	h->version = p[OFF_VERSION];
	h->flags = flags;
	h->raw_len = raw;
	h->stored_len = stored;
	memcpy(h->id, p + OFF_ID, RECORD_ID_LEN);
	memcpy(h->nonce, p + OFF_NONCE, NONCE_LEN);
	memcpy(h->tag, p + OFF_TAG, TAG_LEN);
	h->payload_crc = get_le32(p + OFF_PAYLOAD_CRC);
	return 0;
}

/* Bytes per crc32c + decrypt step: well inside a 1 MiB L2. */
#define DECODE_STRIDE (128u << 10)

int record_decode(struct record_codec *c, const struct record_keys *k,
		  const uint8_t expect_id[RECORD_ID_LEN], void *rec,
		  size_t reclen, void *plain, size_t cap, size_t *plainlen)
{
	return record_decode_fill(c, k, expect_id, rec, reclen, plain, cap,
				  plainlen, NULL, NULL);
}

int record_decode_fill(struct record_codec *c, const struct record_keys *k,
		       const uint8_t expect_id[RECORD_ID_LEN], void *rec,
		       size_t reclen, void *plain, size_t cap,
		       size_t *plainlen, record_fill_fn fill, void *arg)
{
	uint8_t *payload = (uint8_t *)rec + RECORD_HDR_LEN;
	uint8_t aad[AAD_LEN], fin[TAG_LEN];
	struct record_hdr h;
	size_t zn, dirty = 0;	/* bytes of plain written so far */
	uint8_t *dst;
	int n, rc;

	if (reclen < RECORD_HDR_LEN)
		return STRATA_ECORRUPT;
	if (fill && (rc = fill(arg, RECORD_HDR_LEN)) != 0)
		return rc;
	rc = record_parse_header(rec, &h);
	if (rc)
		return rc;
	if (reclen - RECORD_HDR_LEN != h.stored_len)
		return STRATA_ECORRUPT;
	if (memcmp(h.id, expect_id, RECORD_ID_LEN) != 0)
		return STRATA_ECORRUPT;
	if (cap < h.raw_len)
		return -ENOSPC;

	build_aad(aad, k, h.id, h.flags, h.raw_len);
	rc = EVP_DecryptInit_ex(c->dec, NULL, NULL, k->data_key, h.nonce);
	if (rc != 1 ||
	    EVP_DecryptUpdate(c->dec, NULL, &n, aad, (int)sizeof(aad)) != 1)
		return ossl_fail("record_decode");
	/*
	 * Raw: ciphertext -> caller's buffer, no copy.  zstd: in place in the
	 * record, since the caller's buffer is for the decompressed bytes.
	 */
	dst = h.flags & RECORD_ZSTD ? payload : plain;
	/*
	 * crc32c and decryption in one pass of L2-sized strides: the stride
	 * is still in cache for the second kernel, instead of two trips
	 * through memory per 4 MiB.  With fill, each stride is read just
	 * before, so the page-cache copy leaves it in cache too.  Nothing is
	 * handed out before both the crc and the tag have been checked below.
	 */
	{
		uint32_t crc = 0;

		for (size_t off = 0; off < h.stored_len; off += DECODE_STRIDE) {
			size_t m = h.stored_len - off;

			if (m > DECODE_STRIDE)
				m = DECODE_STRIDE;
			if (fill &&
			    (rc = fill(arg, RECORD_HDR_LEN + off + m)) != 0)
				goto wipe;
			crc = record_crc32c(crc, payload + off, m);
			if (dst == plain)
				dirty = off + m;
			if (EVP_DecryptUpdate(c->dec, dst + off, &n,
					      payload + off, (int)m) != 1) {
				rc = ossl_fail("record_decode");
				goto wipe;
			}
		}
		if (crc != h.payload_crc) {
			rc = STRATA_ECORRUPT;
			goto wipe;
		}
	}
	rc = EVP_CIPHER_CTX_ctrl(c->dec, EVP_CTRL_GCM_SET_TAG, TAG_LEN, h.tag);
	if (rc != 1) {
		rc = ossl_fail("record_decode");
		goto wipe;
	}
	/* GCM's final step writes no bytes; fin keeps plain (maybe NULL) out. */
	if (EVP_DecryptFinal_ex(c->dec, fin, &n) != 1) {
		/* Wrong key, bucket, id, flags, length or edited bytes. */
		ERR_clear_error();
		rc = STRATA_ECORRUPT;
		goto wipe;
	}

	if (h.flags & RECORD_ZSTD) {
		unsigned long long fcs =
			ZSTD_getFrameContentSize(payload, h.stored_len);

		if (fcs != h.raw_len)
			return STRATA_ECORRUPT;
		/* dstCapacity raw_len <= cap: zstd cannot write past either. */
		dirty = h.raw_len;
		zn = ZSTD_decompressDCtx(c->zd, plain, h.raw_len, payload,
					 h.stored_len);
		if (ZSTD_isError(zn) || zn != h.raw_len) {
			rc = STRATA_ECORRUPT;
			goto wipe;
		}
	}
	*plainlen = h.raw_len;
	return 0;

wipe:
	/* Never leave unauthenticated or half-decoded bytes with the caller. */
	if (dirty)
		memset(plain, 0, dirty);
	return rc;
}
