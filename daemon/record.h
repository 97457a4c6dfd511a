// SPDX-License-Identifier: Apache-2.0
/*
 * Chunk records: the one encoder/decoder of the bytes a chunk occupies in a
 * segment file.
 *
 * Pipeline (DESIGN.md "Chunks"):
 *
 *   plaintext --SHA-256--> hash --HMAC(bucket id key)--> chunk id
 *   plaintext --zstd(level)--> packed   (kept raw if it saves < 1/16)
 *   packed --AES-256-GCM(bucket data key, random nonce, AAD)--> payload
 *   record = header || payload ; header carries crc32c(payload) and its own crc
 *
 * Record layout, little-endian, RECORD_HDR_LEN (96) bytes of header:
 *
 *   off len  field
 *     0   4  magic "STRK"
 *     4   1  format version (1)
 *     5   1  flags: RECORD_ZSTD (payload decompresses to the plaintext),
 *               RECORD_AEAD (payload is AES-256-GCM ciphertext)
 *     6   2  reserved, zero
 *     8   4  raw length (plaintext bytes)
 *    12   4  stored length (payload bytes following the header)
 *    16  32  chunk id
 *    48  12  GCM nonce
 *    60  16  GCM tag
 *    76   4  crc32c of the payload
 *    80  12  reserved, zero
 *    92   4  crc32c of header bytes 0..91
 *
 * AAD = "strata-chunk-v1" || bucket id (8, BE) || chunk id || flags ||
 * raw length (4, LE): a record cannot be moved to another bucket or chunk id,
 * nor its flags or length edited, without failing the GCM tag.
 *
 * Thread-safety: the functions are reentrant; a struct record_codec holds
 * per-thread scratch (zstd and cipher contexts) and must be used by one
 * thread at a time (the store keeps a small pool of them).
 */
#ifndef STRATA_RECORD_H
#define STRATA_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define RECORD_MAGIC 0x4b525453u /* "STRK" little-endian */
#define RECORD_VERSION 1
#define RECORD_HDR_LEN 96
#define RECORD_ID_LEN 32
/* The largest chunk a record may carry; bounds every length read off disk. */
#define RECORD_MAX_RAW (64u << 20)

enum record_flags {
	RECORD_ZSTD = 1 << 0,
	RECORD_AEAD = 1 << 1,
};

/* The two per-bucket keys, unwrapped. */
struct record_keys {
	uint8_t id_key[32];	/* HMAC key for chunk ids */
	uint8_t data_key[32];	/* AES-256-GCM key for payloads */
	uint64_t bucket_id;
};

struct record_hdr {
	uint8_t version;
	uint8_t flags;
	uint32_t raw_len;
	uint32_t stored_len;
	uint8_t id[RECORD_ID_LEN];
	uint8_t nonce[12];
	uint8_t tag[16];
	uint32_t payload_crc;
};

struct record_codec;

/* Returns NULL on allocation failure. */
struct record_codec *record_codec_new(void);
void record_codec_free(struct record_codec *c);

/* The largest record that record_encode() may produce for len bytes. */
size_t record_bound(size_t len);

/*
 * Hash a plaintext chunk: hash = SHA-256(plain); id = HMAC-SHA256(id_key,
 * hash).  Either output may be NULL.  Returns 0 or -EIO (an OpenSSL
 * failure, logged; in practice only an allocation failure).
 */
int record_chunk_id(struct record_codec *c, const struct record_keys *k,
		    const void *plain, size_t len, uint8_t hash[32],
		    uint8_t id[RECORD_ID_LEN]);

/*
 * Encode one chunk.
 *   [in]  plain, len   the plaintext, len <= RECORD_MAX_RAW
 *   [in]  id           its chunk id (from record_chunk_id())
 *   [in]  zlevel       zstd level; 0 disables compression
 *   [out] out          at least record_bound(len) bytes
 *   [out] outlen       bytes of out used (header + payload)
 * Returns 0, -EINVAL (len too large), -ENOMEM or -EIO (library failure).
 */
int record_encode(struct record_codec *c, const struct record_keys *k,
		  const uint8_t id[RECORD_ID_LEN], const void *plain,
		  size_t len, int zlevel, void *out, size_t *outlen);

/*
 * Parse and check a header (magic, version, header crc, lengths within
 * RECORD_MAX_RAW and zstd's bound).  buf holds at least RECORD_HDR_LEN bytes.
 * Returns 0, STRATA_ECORRUPT, or STRATA_EFORMAT for an unknown version.
 */
int record_parse_header(const void *buf, struct record_hdr *h);

/*
 * Decode a whole record into its plaintext.
 *   [in]  rec, reclen  header + payload as read from the segment; the
 *                      payload bytes are decrypted in place (clobbered)
 *   [in]  expect_id    the chunk id the index says lives here
 *   [out] plain        room for raw_len bytes (cap)
 *   [out] plainlen     raw length
 * Returns 0; STRATA_ECORRUPT for any mismatch (header, reclen != header +
 * stored length, id, crc32c, GCM tag, zstd error or wrong decompressed
 * length); STRATA_EFORMAT; -ENOSPC when cap < raw length.  Never writes more
 * than cap bytes, whatever the record says.
 */
int record_decode(struct record_codec *c, const struct record_keys *k,
		  const uint8_t expect_id[RECORD_ID_LEN], void *rec,
		  size_t reclen, void *plain, size_t cap, size_t *plainlen);

/*
 * Makes bytes [0, upto) of the record being decoded valid (it may fill
 * more); returns 0 or a negative errno.  upto never exceeds reclen.
 */
typedef int (*record_fill_fn)(void *arg, size_t upto);

/*
 * record_decode() over a record that arrives as it is decoded, so that each
 * piece is checked and decrypted while it is still in cache: fill(arg, n)
 * is called before any byte of rec at or past n - 1 is looked at (the
 * header first, then stride by stride).  Returns what record_decode()
 * returns, or fill's error as it came (after wiping what was written to
 * plain, as on any failure).
 */
int record_decode_fill(struct record_codec *c, const struct record_keys *k,
		       const uint8_t expect_id[RECORD_ID_LEN], void *rec,
		       size_t reclen, void *plain, size_t cap,
		       size_t *plainlen, record_fill_fn fill, void *arg);

/* crc32c (Castagnoli) through ISA-L; exposed for other on-disk formats. */
uint32_t record_crc32c(uint32_t seed, const void *buf, size_t len);

#endif
