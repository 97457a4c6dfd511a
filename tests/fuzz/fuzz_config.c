// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for config.c, the reader of stratad.conf: the input is
 * the file, handed to config_load() through a memfd (by its
 * /proc/self/fd/N name, so the real open, stat and read run), with an
 * error buffer of an input-chosen size allocated to exactly that size.
 *
 * Properties checked (abort() on violation, so libFuzzer keeps the input):
 *   - no read or write outside a buffer, no leak (ASan), no UB (UBSan);
 *   - the result is 0 or STRATA_ECONFIG (-ENOMEM aside);
 *   - the error text is NUL-terminated inside its buffer, empty on 0 and
 *     not empty on STRATA_ECONFIG (in a roomy buffer: a tight one drops
 *     lines that do not fit whole), and holds only
 *     printable ASCII and newlines: bytes of the file are shown as \xNN;
 *   - on 0, every value is one the table allows: at least one hot tier
 *     directory, every directory absolute, trimmed, without a comma;
 *     TLS cert and key named; watermarks ordered; numbers in range;
 *     listen addresses IP literals that libuv takes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "net.h"
#include "strata/error.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static void check_str(const char *s, size_t cap)
{
	check(memchr(s, 0, cap) != NULL);
}

static void check_ip(const char *host, int port)
{
	struct sockaddr_in6 sa6;
	struct sockaddr_in sa4;

	check_str(host, 256);
	check(uv_ip4_addr(host, 0, &sa4) == 0 || uv_ip6_addr(host, 0, &sa6) == 0);
	check(port >= 0 && port <= 65535);
}

static void check_dirs(const struct config *c, int t)
{
	check(c->ntier_dirs[t] <= STORE_MAX_TIER_DIRS);
	for (unsigned d = 0; d < c->ntier_dirs[t]; d++) {
		const char *s = c->tier_dirs[t][d];
		size_t n;

		check_str(s, CONFIG_PATH_MAX);
		n = strlen(s);
		check(n > 0 && s[0] == '/' && !strchr(s, ','));
		check(s[n - 1] != ' ' && s[n - 1] != '\t');
	}
}

static void check_config(const struct config *c)
{
	check(c->ntier_dirs[STORE_TIER_HOT] >= 1);
	check_dirs(c, STORE_TIER_HOT);
	check_dirs(c, STORE_TIER_COLD);
	check_str(c->state_dir, sizeof(c->state_dir));
	check(c->state_dir[0] == '/');
	check_str(c->tls_cert, sizeof(c->tls_cert));
	check_str(c->tls_key, sizeof(c->tls_key));
	check_str(c->tls_client_ca, sizeof(c->tls_client_ca));
	check_str(c->master_key, sizeof(c->master_key));
	check(c->tls_cert[0] && c->tls_key[0]);
	check(c->hot_low_pct >= 1 && c->hot_low_pct <= c->hot_high_pct &&
	      c->hot_high_pct <= 100);
	check(c->max_connections >= 1 && c->max_connections <= 1000000);
	check(c->io_threads == -1 ||
	      (c->io_threads >= 0 && c->io_threads <= (int)NET_MAX_THREADS));
	check(c->chunk_size >= STORE_MIN_CHUNK &&
	      c->chunk_size <= STORE_MAX_CHUNK);
	check(c->zstd_level >= 0 && c->zstd_level <= 19);
	check(c->inline_max >= 0);
	check(c->segment_size >= (1u << 20));
	check(c->promote_reads >= 1 && c->promote_window_s >= 1 &&
	      c->prestage_ahead >= 1 && c->lifecycle_interval_s >= 1);
	check(c->log_level >= LOG_ERR && c->log_level <= LOG_DEBUG);
	check(c->admin_max_connections >= 1 &&
	      c->admin_max_connections <= 1024);
	check(c->admin_timeout_ms >= 100 && c->admin_timeout_ms <= 600000);
	check_ip(c->listen_host, c->listen_port);
	if (c->admin_host[0])
		check_ip(c->admin_host, c->admin_port);
	else
		check(c->admin_port == 0);
}

/*
 * The defaults, made once: config_defaults() reads the cgroup's and the
 * machine's memory (cache_size = auto), which would cost more than the
 * parse.  It stays reachable, so it is not reported as a leak; each input
 * starts from a copy.
 */
static const struct config *defaults(void)
{
	static struct config *d;

	if (!d) {
		d = malloc(sizeof(*d));
		check(d != NULL);
		config_defaults(d);
	}
	return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c;
	char path[64], *err;
	size_t errlen = 1, used;
	int fd, rc;

	/* The error buffer's size: mostly roomy, now and then tight. */
	for (size_t i = 0; i < size; i++)
		errlen += data[i];
	errlen = errlen % 5 ? 8192 : 1 + errlen % 300;

	fd = memfd_create("stratad.conf", MFD_CLOEXEC);
	check(fd >= 0);
	check(write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	c = malloc(sizeof(*c));
	err = malloc(errlen);
	check(c && err);
	memcpy(c, defaults(), sizeof(*c));
	memset(err, 0x55, errlen);

	rc = config_load(c, path, err, errlen);
	check(rc == 0 || rc == STRATA_ECONFIG || rc == -ENOMEM);
	check_str(err, errlen);
	used = strlen(err);
	for (size_t i = 0; i < used; i++)
		check(err[i] == '\n' ||
		      (err[i] >= 0x20 && (unsigned char)err[i] < 0x7f));
	if (rc == 0) {
		check(used == 0);
		check_config(c);
	} else if (rc == STRATA_ECONFIG && errlen == 8192) {
		check(used > 0);
	}
	free(err);
	free(c);
	close(fd);
	return 0;
}
