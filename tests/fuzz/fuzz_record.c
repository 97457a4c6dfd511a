// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the chunk record decoder, the one reader of chunk
 * bytes from disk.  Each input is used three ways:
 *
 *  1. as a record read off disk: record_parse_header() and record_decode(),
 *     expecting the id the header claims (so the id check does not stop the
 *     fuzzer before the crc and GCM checks);
 *  2. as the payload of an authentic zstd record sealed here under the test
 *     key, so the decompression path behind a valid GCM tag sees arbitrary
 *     bytes too (no forged tag is needed to reach it); seed the corpus with
 *     a few .zst files to start it on real frames;
 *  3. when shorter than 64 KiB, as plaintext: encode then decode must give
 *     back identical bytes.
 *
 * Any failure other than a clean error code aborts.  Inputs are copied into
 * buffers of exactly their size, so ASan sees any read past the record.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "record.h"
#include "strata/error.h"
#include "banned.h"

#define PLAIN_CAP (1u << 20)
#define ROUNDTRIP_MAX (64u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct record_keys test_keys = {
	.id_key = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
		    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
		    31, 32 },
	.data_key = { 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7,
		      0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
		      0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
		      0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef },
	.bucket_id = 0x0123456789abcdefull,
};

static void check(int ok)
{
	if (!ok)
		abort();
}

static int clean_error(int rc)
{
	return rc == STRATA_ECORRUPT || rc == STRATA_EFORMAT || rc == -ENOSPC;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/*
 * libFuzzer gives no context pointer; one codec for the process keeps each
 * run from paying for fresh zstd contexts.  It stays reachable, so it is not
 * reported as a leak.
 */
static struct record_codec *the_codec(void)
{
	static struct record_codec *c;

	if (!c) {
		c = record_codec_new();
		check(c != NULL);
	}
	return c;
}

static void decode_as_is(struct record_codec *c, const uint8_t *data,
			 size_t size)
{
	uint8_t id[RECORD_ID_LEN] = { 0 };
	struct record_hdr h;
	uint8_t *rec, *plain;
	size_t plainlen = 0;
	int rc;

	if (size >= RECORD_HDR_LEN) {
		rc = record_parse_header(data, &h);
		check(rc == 0 || rc == STRATA_ECORRUPT || rc == STRATA_EFORMAT);
		if (rc == 0)
			check(h.raw_len <= RECORD_MAX_RAW &&
			      h.stored_len <= RECORD_MAX_RAW);
		memcpy(id, data + 16, RECORD_ID_LEN);
	}

	rec = malloc(size ? size : 1);
	plain = malloc(PLAIN_CAP);
	check(rec && plain);
	memcpy(rec, data, size);
	rc = record_decode(c, &test_keys, id, rec, size, plain, PLAIN_CAP,
			   &plainlen);
	check(rc == 0 || clean_error(rc));
	if (rc == 0)
		check(plainlen <= PLAIN_CAP);
	free(plain);
	free(rec);
}

/* An authentic record with flags ZSTD|AEAD around arbitrary payload bytes. */
static void decode_sealed(struct record_codec *c, const uint8_t *data,
			  size_t size)
{
	uint8_t aad[15 + 8 + RECORD_ID_LEN + 1 + 4];
	uint8_t id[RECORD_ID_LEN];
	uint8_t flags = RECORD_ZSTD | RECORD_AEAD;
	EVP_CIPHER_CTX *ctx;
	unsigned long long fcs;
	uint32_t raw_len;
	size_t plainlen = 0, cap;
	uint8_t *rec, *plain;
	int n, rc;

	if (size == 0 || size >= PLAIN_CAP)
		return;
	/*
	 * raw_len > stored_len, as the header check demands.  When the input
	 * is a zstd frame, take its content size so the decompressor runs to
	 * the end; otherwise something near the input's size.
	 */
	fcs = ZSTD_getFrameContentSize(data, size);
	if (fcs > size && fcs <= RECORD_MAX_RAW)
		raw_len = (uint32_t)fcs;
	else
		raw_len = (uint32_t)size + 1 +
			  (data[0] | (uint32_t)data[size - 1] << 8);
	cap = raw_len <= PLAIN_CAP ? raw_len : PLAIN_CAP;
	memset(id, data[0], sizeof(id));

	rec = malloc(RECORD_HDR_LEN + size);
	plain = malloc(cap);
	ctx = EVP_CIPHER_CTX_new();
	check(rec && plain && ctx);

	memset(rec, 0, RECORD_HDR_LEN);
	memcpy(rec, "STRK", 4);
	rec[4] = RECORD_VERSION;
	rec[5] = flags;
	put_le32(rec + 8, raw_len);
	put_le32(rec + 12, (uint32_t)size);
	memcpy(rec + 16, id, RECORD_ID_LEN);
	memset(rec + 48, 0x5a, 12);

	memcpy(aad, "strata-chunk-v1", 15);
	for (int i = 0; i < 8; i++)
		aad[15 + i] = (uint8_t)(test_keys.bucket_id >> (56 - 8 * i));
	memcpy(aad + 23, id, RECORD_ID_LEN);
	aad[55] = flags;
	put_le32(aad + 56, raw_len);

	check(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL,
				 test_keys.data_key, rec + 48) == 1);
	check(EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)sizeof(aad)) == 1);
	check(EVP_EncryptUpdate(ctx, rec + RECORD_HDR_LEN, &n, data,
				(int)size) == 1);
	check(EVP_EncryptFinal_ex(ctx, rec + 60, &n) == 1);
	check(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, rec + 60) ==
	      1);
	EVP_CIPHER_CTX_free(ctx);
	put_le32(rec + 76, record_crc32c(0, rec + RECORD_HDR_LEN, size));
	put_le32(rec + 92, record_crc32c(0, rec, 92));

	rc = record_decode(c, &test_keys, id, rec, RECORD_HDR_LEN + size,
			   plain, cap, &plainlen);
	check(rc == 0 || rc == STRATA_ECORRUPT || rc == -ENOSPC);
	check(rc != -ENOSPC || raw_len > cap);
	if (rc == 0)
		check(plainlen == raw_len);
	free(plain);
	free(rec);
}

static void roundtrip(struct record_codec *c, const uint8_t *data,
		      size_t size)
{
	uint8_t id[RECORD_ID_LEN];
	size_t reclen = 0, plainlen = 0;
	int zlevel = size ? data[0] % 5 - 1 : 0;	/* -1 .. 3 */
	uint8_t *rec, *plain;

	if (size >= ROUNDTRIP_MAX)
		return;
	rec = malloc(record_bound(size));
	plain = malloc(size ? size : 1);
	check(rec && plain);
	check(record_chunk_id(c, &test_keys, data, size, NULL, id) == 0);
	check(record_encode(c, &test_keys, id, data, size, zlevel, rec,
			    &reclen) == 0);
	check(reclen >= RECORD_HDR_LEN && reclen <= record_bound(size));
	check(record_decode(c, &test_keys, id, rec, reclen, plain, size,
			    &plainlen) == 0);
	check(plainlen == size);
	check(size == 0 || memcmp(plain, data, size) == 0);
	free(plain);
	free(rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct record_codec *c = the_codec();

	decode_as_is(c, data, size);
	decode_sealed(c, data, size);
	roundtrip(c, data, size);
	return 0;
}
