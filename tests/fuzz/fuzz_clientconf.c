// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for libstrata's configuration: the client config file
 * (~/.config/strata/config, read by strata_config_from_env()) and the
 * endpoint parser (host:port or [v6]:port, which strata_client_new() runs
 * before it connects).  Each input is used twice:
 *
 *  1. as the config file, through a memfd named by $STRATA_CONFIG (the
 *     STRATA_* variables that would override it unset, $HOME fixed), with
 *     an error buffer of exactly an input-chosen size; the endpoint it
 *     names, if any, then goes to the endpoint parser;
 *  2. as an endpoint string itself (up to its first NUL).
 *
 * Properties checked (abort() on violation, so libFuzzer keeps the input):
 *   - no read or write outside a buffer, no leak (ASan), no UB (UBSan);
 *   - strata_config_from_env() returns 0, STRATA_ECONFIG or -ENOMEM; on
 *     an error it sets no field; the error text ends inside its buffer;
 *     every value is one line, and "~/" in ca is expanded from $HOME;
 *   - the endpoint parser returns 0 or STRATA_ECONFIG (-ENOMEM aside);
 *     on 0 the host is not empty, the port is 1 to 5 digits up to 65535,
 *     and host and port put back together ("[host]:port" when the input
 *     had brackets) give the input again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client_int.h"
#include "strata/error.h"
#include "banned.h"

#define HOME "/home/fuzz"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

static void fuzz_endpoint(const char *ep)
{
	char *host = NULL, *port = NULL, *again = NULL;
	int rc = client_split_endpoint(ep, &host, &port);
	size_t pl;

	check(rc == 0 || rc == STRATA_ECONFIG || rc == -ENOMEM);
	if (rc)
		return;
	pl = strlen(port);
	check(*host && pl >= 1 && pl <= 5 &&
	      strspn(port, "0123456789") == pl && strtoul(port, NULL, 10) <=
	      65535);
	check(asprintf(&again, ep[0] == '[' ? "[%s]:%s" : "%s:%s", host,
		       port) > 0);
	check(strcmp(again, ep) == 0);
	free(again);
	free(host);
	free(port);
}

static void check_value(const char *v)
{
	if (v)
		check(!strchr(v, '\n'));
}

static void fuzz_file(const uint8_t *data, size_t size)
{
	struct strata_config cfg = { 0 };
	char path[64], *err;
	size_t errlen = 1;
	int fd, rc;

	for (size_t i = 0; i < size; i++)
		errlen += data[i];
	errlen = errlen % 5 ? 1024 : 1 + errlen % 64;

	fd = memfd_create("strata-config", MFD_CLOEXEC);
	check(fd >= 0);
	check(write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	check(setenv("STRATA_CONFIG", path, 1) == 0);
	check(setenv("HOME", HOME, 1) == 0);
	unsetenv("STRATA_ENDPOINT");
	unsetenv("STRATA_ACCESS_KEY");
	unsetenv("STRATA_SECRET_KEY");
	unsetenv("STRATA_CA");
	err = malloc(errlen);
	check(err != NULL);
	memset(err, 0x55, errlen);
	err[0] = 0;

	rc = strata_config_from_env(&cfg, err, errlen);
	check(rc == 0 || rc == STRATA_ECONFIG || rc == -ENOMEM);
	check(memchr(err, 0, errlen) != NULL);
	if (rc) {
		check(!cfg.endpoint && !cfg.access_key && !cfg.secret_key &&
		      !cfg.ca_file && !cfg.pool_size && !cfg.timeout_ms);
	} else {
		check_value(cfg.endpoint);
		check_value(cfg.access_key);
		check_value(cfg.secret_key);
		check_value(cfg.ca_file);
		if (cfg.ca_file)
			check(strncmp(cfg.ca_file, "~/", 2) != 0);
		if (cfg.endpoint)
			fuzz_endpoint(cfg.endpoint);
	}
	strata_config_release(&cfg);
	free(err);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *ep = malloc(size + 1);

	check(ep != NULL);
	memcpy(ep, data, size);
	ep[size] = 0;
	fuzz_endpoint(ep);
	free(ep);
	fuzz_file(data, size);
	return 0;
}
