// SPDX-License-Identifier: Apache-2.0
/*
 * keys: master key files (formats, permissions, symlinks, creation) and
 * key wrapping (round trip, wrong key, wrong AAD, every damaged byte).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "strata/error.h"
#include "testutil.h"
#include "banned.h"

static char *dir;

static void setup(void)
{
	dir = tu_tmpdir("keys");
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dir);
	dir = NULL;
}

static char *path_in(const char *name)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

/* Write a key file and force its mode past the umask. */
static char *write_key(const char *name, const void *data, size_t len,
		       unsigned mode)
{
	char *p = path_in(name);

	ck_assert_int_eq(tu_write_file(p, data, len, mode), 0);
	ck_assert_int_eq(chmod(p, mode), 0);
	return p;
}

static const uint8_t want[KEYS_MASTER_LEN] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
	0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
	0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
};
#define WANT_HEX \
	"00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210"

static int load(const char *name, const void *data, size_t len,
		unsigned mode, uint8_t key[KEYS_MASTER_LEN])
{
	char *p = write_key(name, data, len, mode);
	int rc;

	memset(key, 0x5a, KEYS_MASTER_LEN);
	rc = keys_load_master(p, key);
	free(p);
	return rc;
}

START_TEST(load_raw)
{
	uint8_t key[KEYS_MASTER_LEN];

	ck_assert_int_eq(load("k", want, sizeof(want), 0600, key), 0);
	ck_assert_mem_eq(key, want, sizeof(want));
	/* Stricter than 0600 is fine too. */
	ck_assert_int_eq(load("k2", want, sizeof(want), 0400, key), 0);
	ck_assert_mem_eq(key, want, sizeof(want));
}
END_TEST

START_TEST(load_hex)
{
	uint8_t key[KEYS_MASTER_LEN];
	char upper[] = WANT_HEX;

	ck_assert_int_eq(load("k", WANT_HEX, 64, 0600, key), 0);
	ck_assert_mem_eq(key, want, sizeof(want));
	ck_assert_int_eq(load("k2", WANT_HEX "\n", 65, 0600, key), 0);
	ck_assert_mem_eq(key, want, sizeof(want));
	for (char *c = upper; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	ck_assert_int_eq(load("k3", upper, 64, 0600, key), 0);
	ck_assert_mem_eq(key, want, sizeof(want));
}
END_TEST

START_TEST(load_wrong_length)
{
	uint8_t key[KEYS_MASTER_LEN], big[4096];
	static const size_t lens[] = { 0, 1, 31, 33, 63, 66, 100, 199, 200,
				       201, 4096 };

	tu_fill(big, sizeof(big), 7);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char name[32];

		snprintf(name, sizeof(name), "k%zu", i);
		ck_assert_msg(load(name, big, lens[i], 0600, key) ==
				      STRATA_EKEYFILE,
			      "length %zu accepted", lens[i]);
	}
	/* Hex with anything but exactly one trailing '\n'. */
	ck_assert_int_eq(load("h1", WANT_HEX "\n\n", 66, 0600, key),
			 STRATA_EKEYFILE);
	ck_assert_int_eq(load("h2", WANT_HEX "\r\n", 66, 0600, key),
			 STRATA_EKEYFILE);
	ck_assert_int_eq(load("h3", WANT_HEX " ", 65, 0600, key),
			 STRATA_EKEYFILE);
	ck_assert_int_eq(load("h4", WANT_HEX "0", 65, 0600, key),
			 STRATA_EKEYFILE);
	ck_assert_int_eq(load("h5", "0" WANT_HEX "\n", 66, 0600, key),
			 STRATA_EKEYFILE);
}
END_TEST

START_TEST(load_not_hex)
{
	uint8_t key[KEYS_MASTER_LEN];
	char bad[] = WANT_HEX "\n";
	static const size_t where[] = { 0, 1, 31, 62, 63 };
	static const char junk[] = { 'g', 'G', ' ', 'x', '\0' };

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		char name[32];
		char c = bad[where[i]];

		bad[where[i]] = junk[i];
		snprintf(name, sizeof(name), "k%zu", i);
		ck_assert_int_eq(load(name, bad, 65, 0600, key),
				 STRATA_EKEYFILE);
		bad[where[i]] = c;
	}
	/* Sanity: the restored text still loads. */
	ck_assert_int_eq(load("ok", bad, 65, 0600, key), 0);
	ck_assert_mem_eq(key, want, sizeof(want));
}
END_TEST

START_TEST(load_bad_mode)
{
	uint8_t key[KEYS_MASTER_LEN];
	static const unsigned modes[] = { 0644, 0640, 0604, 0610, 0601, 0620,
					  0602, 0666, 0777 };

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char name[32];

		snprintf(name, sizeof(name), "k%zu", i);
		ck_assert_msg(load(name, WANT_HEX "\n", 65, modes[i], key) ==
				      STRATA_EKEYFILE,
			      "mode %o accepted", modes[i]);
	}
}
END_TEST

START_TEST(load_missing)
{
	uint8_t key[KEYS_MASTER_LEN];
	char *p = path_in("nope");

	ck_assert_int_eq(keys_load_master(p, key), -ENOENT);
	free(p);
}
END_TEST

START_TEST(load_symlink)
{
	uint8_t key[KEYS_MASTER_LEN];
	char *target = write_key("real", WANT_HEX "\n", 65, 0600);
	char *link = path_in("link");

	ck_assert_int_eq(symlink(target, link), 0);
	ck_assert_int_eq(keys_load_master(link, key), -ELOOP);
	ck_assert_int_eq(keys_load_master(target, key), 0);
	free(target);
	free(link);
}
END_TEST

START_TEST(load_not_regular)
{
	uint8_t key[KEYS_MASTER_LEN];
	char *sub = path_in("sub");
	char *fifo = path_in("fifo");

	ck_assert_int_eq(mkdir(sub, 0700), 0);
	ck_assert_int_eq(keys_load_master(sub, key), STRATA_EKEYFILE);
	/* A FIFO must be refused, not block waiting for a writer. */
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(keys_load_master(fifo, key), STRATA_EKEYFILE);
	free(sub);
	free(fifo);
}
END_TEST

START_TEST(load_unreadable)
{
	uint8_t key[KEYS_MASTER_LEN];
	char *p;

	if (geteuid() == 0)
		return; /* root reads mode 000 files */
	p = write_key("k", WANT_HEX, 64, 0000);
	ck_assert_int_eq(keys_load_master(p, key), -EACCES);
	free(p);
}
END_TEST

START_TEST(create_load)
{
	uint8_t k1[KEYS_MASTER_LEN], k2[KEYS_MASTER_LEN];
	char *p1 = path_in("m1"), *p2 = path_in("m2");
	char text[128];
	struct stat st;
	ssize_t n;
	int fd;

	ck_assert_int_eq(keys_create_master(p1), 0);
	ck_assert_int_eq(stat(p1, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(st.st_size, 65);

	fd = open(p1, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	n = read(fd, text, sizeof(text));
	close(fd);
	ck_assert_int_eq(n, 65);
	text[n] = '\0';
	ck_assert_int_eq(text[64], '\n');
	for (int i = 0; i < 64; i++)
		ck_assert_ptr_nonnull(strchr("0123456789abcdef", text[i]));

	ck_assert_int_eq(keys_load_master(p1, k1), 0);
	ck_assert_int_eq(keys_create_master(p2), 0);
	ck_assert_int_eq(keys_load_master(p2, k2), 0);
	ck_assert_mem_ne(k1, k2, sizeof(k1));

	/* The loaded key is the one written as text. */
	for (int i = 0; i < KEYS_MASTER_LEN; i++) {
		char byte[3] = { text[2 * i], text[2 * i + 1], '\0' };

		ck_assert_uint_eq(k1[i], strtoul(byte, NULL, 16));
	}
	free(p1);
	free(p2);
}
END_TEST

START_TEST(create_exists)
{
	uint8_t key[KEYS_MASTER_LEN];
	char *p = write_key("k", want, sizeof(want), 0600);
	char *link = path_in("link"), *dangling = path_in("dangling");
	char *target = path_in("target");
	char *nodir = path_in("nodir/k");

	ck_assert_int_eq(keys_create_master(p), -EEXIST);
	/* The existing key is untouched. */
	ck_assert_int_eq(keys_load_master(p, key), 0);
	ck_assert_mem_eq(key, want, sizeof(want));

	ck_assert_int_eq(symlink(p, link), 0);
	ck_assert_int_eq(keys_create_master(link), -EEXIST);
	/* Nor is a key created through a dangling symlink. */
	ck_assert_int_eq(symlink(target, dangling), 0);
	ck_assert_int_eq(keys_create_master(dangling), -EEXIST);
	ck_assert_int_eq(access(target, F_OK), -1);

	ck_assert_int_eq(keys_create_master(nodir), -ENOENT);
	free(p);
	free(link);
	free(dangling);
	free(target);
	free(nodir);
}
END_TEST

START_TEST(random_bytes)
{
	uint8_t a[64], b[64], zero[64] = { 0 };

	ck_assert_int_eq(keys_random(a, sizeof(a)), 0);
	ck_assert_int_eq(keys_random(b, sizeof(b)), 0);
	ck_assert_mem_ne(a, b, sizeof(a));
	ck_assert_mem_ne(a, zero, sizeof(a));
	ck_assert_int_eq(keys_random(NULL, 0), 0);
}
END_TEST

static const char aad[] = "bucket\x00\x00\x00\x00\x00\x00\x00\x2a";
#define AADLEN (sizeof(aad) - 1)

START_TEST(wrap_roundtrip)
{
	static const size_t lens[] = { 0, 1, 16, 32, 64, 100 };
	uint8_t secret[100], back[100], w1[100 + KEYS_WRAP_OVERHEAD],
		w2[100 + KEYS_WRAP_OVERHEAD];

	tu_fill(secret, sizeof(secret), 1);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = lens[i];

		ck_assert_int_eq(keys_wrap(want, aad, AADLEN, secret, len, w1),
				 0);
		memset(back, 0, sizeof(back));
		ck_assert_int_eq(keys_unwrap(want, aad, AADLEN, w1,
					     len + KEYS_WRAP_OVERHEAD, back),
				 0);
		ck_assert_mem_eq(back, secret, len);
		/* Fresh nonce each time: equal inputs, different outputs. */
		ck_assert_int_eq(keys_wrap(want, aad, AADLEN, secret, len, w2),
				 0);
		ck_assert_mem_ne(w1, w2, len + KEYS_WRAP_OVERHEAD);
		if (len >= 16)
			ck_assert_ptr_null(memmem(w1, len + KEYS_WRAP_OVERHEAD,
						  secret, 16));
	}
	/* Empty AAD works too, and is not the same as some AAD. */
	ck_assert_int_eq(keys_wrap(want, NULL, 0, secret, 32, w1), 0);
	ck_assert_int_eq(keys_unwrap(want, NULL, 0, w1, 32 + KEYS_WRAP_OVERHEAD,
				     back),
			 0);
	ck_assert_mem_eq(back, secret, 32);
	ck_assert_int_eq(keys_unwrap(want, aad, AADLEN, w1,
				     32 + KEYS_WRAP_OVERHEAD, back),
			 STRATA_EMASTERKEY);
}
END_TEST

START_TEST(wrap_wrong_master)
{
	uint8_t secret[32], back[32], w[32 + KEYS_WRAP_OVERHEAD];
	uint8_t other[KEYS_MASTER_LEN], zero[32] = { 0 };

	tu_fill(secret, sizeof(secret), 2);
	memcpy(other, want, sizeof(other));
	other[31] ^= 1;
	ck_assert_int_eq(keys_wrap(want, aad, AADLEN, secret, 32, w), 0);
	memset(back, 0x77, sizeof(back));
	ck_assert_int_eq(keys_unwrap(other, aad, AADLEN, w, sizeof(w), back),
			 STRATA_EMASTERKEY);
	/* Nothing unauthenticated is left in the output. */
	ck_assert_mem_eq(back, zero, sizeof(back));
}
END_TEST

START_TEST(wrap_wrong_aad)
{
	uint8_t secret[32], back[32], w[32 + KEYS_WRAP_OVERHEAD];
	char other[sizeof(aad)];

	tu_fill(secret, sizeof(secret), 3);
	ck_assert_int_eq(keys_wrap(want, aad, AADLEN, secret, 32, w), 0);
	memcpy(other, aad, sizeof(other));
	other[AADLEN - 1] ^= 1; /* another bucket id */
	ck_assert_int_eq(keys_unwrap(want, other, AADLEN, w, sizeof(w), back),
			 STRATA_EMASTERKEY);
	ck_assert_int_eq(keys_unwrap(want, aad, AADLEN - 1, w, sizeof(w),
				     back),
			 STRATA_EMASTERKEY);
	ck_assert_int_eq(keys_unwrap(want, aad, AADLEN, w, sizeof(w), back), 0);
	ck_assert_mem_eq(back, secret, sizeof(back));
}
END_TEST

START_TEST(wrap_flipped_byte)
{
	uint8_t secret[32], back[32], w[32 + KEYS_WRAP_OVERHEAD];

	tu_fill(secret, sizeof(secret), 4);
	ck_assert_int_eq(keys_wrap(want, aad, AADLEN, secret, 32, w), 0);
	/* Every byte: nonce, ciphertext and tag. */
	for (size_t i = 0; i < sizeof(w); i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			w[i] ^= (uint8_t)(1u << bit);
			ck_assert_msg(keys_unwrap(want, aad, AADLEN, w,
						  sizeof(w), back) ==
					      STRATA_EMASTERKEY,
				      "flip at %zu bit %d accepted", i, bit);
			w[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Dropping the last byte shifts the tag: also refused. */
	ck_assert_int_eq(keys_unwrap(want, aad, AADLEN, w, sizeof(w) - 1,
				     back),
			 STRATA_EMASTERKEY);
	ck_assert_int_eq(keys_unwrap(want, aad, AADLEN, w, sizeof(w), back), 0);
	ck_assert_mem_eq(back, secret, sizeof(back));
}
END_TEST

START_TEST(wrap_too_short)
{
	uint8_t w[KEYS_WRAP_OVERHEAD], back[1];

	ck_assert_int_eq(keys_wrap(want, aad, AADLEN, NULL, 0, w), 0);
	ck_assert_int_eq(keys_unwrap(want, aad, AADLEN, w,
				     KEYS_WRAP_OVERHEAD - 1, back),
			 -EINVAL);
	ck_assert_int_eq(keys_unwrap(want, aad, AADLEN, w, 0, back), -EINVAL);
	/* Exactly the overhead: an empty secret, which verifies. */
	ck_assert_int_eq(keys_unwrap(want, aad, AADLEN, w, KEYS_WRAP_OVERHEAD,
				     back),
			 0);
}
END_TEST

START_TEST(wipe)
{
	uint8_t buf[48], zero[48] = { 0 };

	tu_fill(buf, sizeof(buf), 5);
	keys_wipe(buf, sizeof(buf));
	ck_assert_mem_eq(buf, zero, sizeof(buf));
	keys_wipe(NULL, 0);
}
END_TEST

static Suite *keys_suite(void)
{
	Suite *s = suite_create("keys");
	TCase *tc = tcase_create("file");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, load_raw);
	tcase_add_test(tc, load_hex);
	tcase_add_test(tc, load_wrong_length);
	tcase_add_test(tc, load_not_hex);
	tcase_add_test(tc, load_bad_mode);
	tcase_add_test(tc, load_missing);
	tcase_add_test(tc, load_symlink);
	tcase_add_test(tc, load_not_regular);
	tcase_add_test(tc, load_unreadable);
	tcase_add_test(tc, create_load);
	tcase_add_test(tc, create_exists);
	suite_add_tcase(s, tc);

	tc = tcase_create("wrap");
	tcase_add_test(tc, random_bytes);
	tcase_add_test(tc, wrap_roundtrip);
	tcase_add_test(tc, wrap_wrong_master);
	tcase_add_test(tc, wrap_wrong_aad);
	tcase_add_test(tc, wrap_flipped_byte);
	tcase_add_test(tc, wrap_too_short);
	tcase_add_test(tc, wipe);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(keys_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
