// SPDX-License-Identifier: Apache-2.0
/*
 * config: parse stratad.conf with inih, into struct config.
 *
 * Sizes accept K, M, G suffixes (powers of 1024).  Every key is in the
 * table below; the table is what stratad.conf(5) documents.
 */
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "strata/error.h"
#include "banned.h"

struct parse {
	struct config *c;
	char *err;
	size_t errlen;
	int failed;
};

static int parse_u64(const char *v, uint64_t *out, int sizes)
{
	char *end;
	unsigned long long n;

	if (!*v || *v == '-')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v)
		return -1;
	if (sizes && *end) {
		unsigned shift = 0;

		switch (*end) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: return -1;
		}
		end++;
		if (n > (ULLONG_MAX >> shift))
			return -1;
		n <<= shift;
	}
	if (*end)
		return -1;
	*out = n;
	return 0;
}

static int set_str(char *dst, size_t cap, const char *v)
{
	int n = snprintf(dst, cap, "%s", v);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* "a, b ,c" -> up to STORE_MAX_TIER_DIRS trimmed entries. */
static int set_dirs(struct config *c, int tier, const char *v)
{
	char buf[STORE_MAX_TIER_DIRS * CONFIG_PATH_MAX];
	char *p, *save = NULL;

	if (set_str(buf, sizeof(buf), v))
		return -1;
	c->ntier_dirs[tier] = 0;
	for (p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		char *e;

		while (*p == ' ' || *p == '\t')
			p++;
		e = p + strlen(p);
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = 0;
		if (!*p)
			continue;
		if (c->ntier_dirs[tier] == STORE_MAX_TIER_DIRS ||
		    set_str(c->tier_dirs[tier][c->ntier_dirs[tier]],
			    CONFIG_PATH_MAX, p))
			return -1;
		c->ntier_dirs[tier]++;
	}
	return 0;
}

static int set_listen(struct config *c, const char *v)
{
	const char *colon = strrchr(v, ':');
	uint64_t port;

	if (!colon || colon == v || (size_t)(colon - v) >= sizeof(c->listen_host))
		return -1;
	if (parse_u64(colon + 1, &port, 0) || port > 65535)
		return -1;
	memcpy(c->listen_host, v, (size_t)(colon - v));
	c->listen_host[colon - v] = 0;
	c->listen_port = (int)port;
	return 0;
}

enum kind { K_STR, K_U32, K_SIZE, K_INT, K_DIRS, K_LISTEN, K_LEVEL };

struct key {
	const char *section, *name;
	enum kind kind;
	size_t off;
	size_t cap;
	int64_t min, max;
	int tier;
};

#define OFF(f) offsetof(struct config, f)
#define CAP(f) sizeof(((struct config *)0)->f)

static const struct key keys[] = {
	{ "node", "id", K_U32, OFF(node_id), 0, 0, UINT32_MAX, 0 },
	{ "node", "state_dir", K_STR, OFF(state_dir), CAP(state_dir), 0, 0, 0 },
	{ "node", "listen", K_LISTEN, 0, 0, 0, 0, 0 },
	{ "node", "max_connections", K_U32, OFF(max_connections), 0, 1, 1000000, 0 },
	{ "tls", "cert", K_STR, OFF(tls_cert), CAP(tls_cert), 0, 0, 0 },
	{ "tls", "key", K_STR, OFF(tls_key), CAP(tls_key), 0, 0, 0 },
	{ "tls", "client_ca", K_STR, OFF(tls_client_ca), CAP(tls_client_ca), 0, 0, 0 },
	{ "keys", "master_key", K_STR, OFF(master_key), CAP(master_key), 0, 0, 0 },
	{ "tiers", "hot", K_DIRS, 0, 0, 0, 0, STORE_TIER_HOT },
	{ "tiers", "cold", K_DIRS, 0, 0, 0, 0, STORE_TIER_COLD },
	{ "store", "chunk_size", K_SIZE, OFF(chunk_size), 4, STORE_MIN_CHUNK, STORE_MAX_CHUNK, 0 },
	{ "store", "zstd_level", K_INT, OFF(zstd_level), 0, 0, 19, 0 },
	{ "store", "inline_max", K_SIZE, OFF(inline_max), 4, 0, META_INLINE_MAX, 0 },
	{ "store", "segment_size", K_SIZE, OFF(segment_size), 8, 1u << 20, 1ll << 40, 0 },
	{ "store", "cache_size", K_SIZE, OFF(cache_size), 8, 0, 1ll << 42, 0 },
	{ "log", "level", K_LEVEL, 0, 0, 0, 0, 0 },
};

/* Levenshtein distance, for "did you mean". */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 64 || lb >= 64)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t d = prev[j - 1] + (a[i - 1] != b[j - 1]);

			if (prev[j] + 1 < d)
				d = prev[j] + 1;
			if (cur[j - 1] + 1 < d)
				d = cur[j - 1] + 1;
			cur[j] = d;
		}
		memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
	}
	return prev[lb];
}

/* Record the first error: "[section] key: what" and a hint. */
static int fail(struct parse *p, const char *section, const char *name,
		const char *what, const char *hint)
{
	if (hint)
		snprintf(p->err, p->errlen, "[%s] %s: %s (did you mean [%s?)",
			 section, name, what, hint);
	else
		snprintf(p->err, p->errlen, "[%s] %s: %s", section, name, what);
	p->failed = 1;
	return 0;
}

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct parse *p = user;
	struct config *c = p->c;
	const struct key *best = NULL;
	size_t bestd = 99;
	char hint[160];

	if (p->failed)
		return 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];
		uint64_t u;
		char *base = (char *)c + k->off;
		size_t d;

		if (strcmp(k->section, section) || strcmp(k->name, name)) {
			char full[160], want[160];

			snprintf(full, sizeof(full), "%s] %s", section, name);
			snprintf(want, sizeof(want), "%s] %s", k->section, k->name);
			d = distance(full, want);
			if (d < bestd) {
				bestd = d;
				best = k;
			}
			continue;
		}
		switch (k->kind) {
		case K_STR:
			if (set_str(base, k->cap, value))
				return fail(p, section, name, "value too long", NULL);
			return 1;
		case K_U32:
		case K_SIZE:
			if (parse_u64(value, &u, k->kind == K_SIZE) ||
			    u < (uint64_t)k->min || u > (uint64_t)k->max)
				return fail(p, section, name, "invalid or out-of-range number", NULL);
			if (k->kind == K_U32 || k->cap == 4)
				*(uint32_t *)(void *)base = (uint32_t)u;
			else
				*(uint64_t *)(void *)base = u;
			return 1;
		case K_INT:
			if (parse_u64(value, &u, 0) || u > (uint64_t)k->max)
				return fail(p, section, name, "invalid or out-of-range number", NULL);
			*(int *)(void *)base = (int)u;
			return 1;
		case K_DIRS:
			if (set_dirs(c, k->tier, value))
				return fail(p, section, name, "too many or too long directories", NULL);
			return 1;
		case K_LISTEN:
			if (set_listen(c, value))
				return fail(p, section, name, "want host:port", NULL);
			return 1;
		case K_LEVEL:
			if (log_parse_level(value, &c->log_level))
				return fail(p, section, name, "want error, warn, info or debug", NULL);
			return 1;
		}
	}
	if (best && bestd <= 3) {
		snprintf(hint, sizeof(hint), "%s] %s", best->section, best->name);
		return fail(p, section, name, "unknown key", hint);
	}
	return fail(p, section, name, "unknown key", NULL);
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->node_id = 1;
	set_str(c->state_dir, sizeof(c->state_dir), "/var/lib/strata");
	set_str(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
	c->listen_port = 7480;
	c->max_connections = 4096;
	set_str(c->master_key, sizeof(c->master_key), "/etc/strata/master.key");
	c->chunk_size = STORE_DEFAULT_CHUNK;
	c->zstd_level = 1;
	c->inline_max = STORE_DEFAULT_INLINE;
	c->segment_size = 256u << 20;
	c->cache_size = 512u << 20;
	c->log_level = LOG_INFO;
}

int config_load(struct config *c, const char *path, char *errbuf,
		size_t errlen)
{
	struct parse p = { .c = c, .err = errbuf, .errlen = errlen };
	FILE *f = fopen(path, "r");
	int rc;

	if (!f) {
		rc = -errno;
		snprintf(errbuf, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = ini_parse_file(f, handler, &p);
	fclose(f);
	if (p.failed) {
		char tmp[512];

		snprintf(tmp, sizeof(tmp), "%s: %s", path, errbuf);
		snprintf(errbuf, errlen, "%s", tmp);
		return STRATA_ECONFIG;
	}
	if (rc) {
		snprintf(errbuf, errlen, "%s: line %d: not a [section] or key = value line",
			 path, rc);
		return STRATA_ECONFIG;
	}
	if (!c->ntier_dirs[STORE_TIER_HOT]) {
		snprintf(errbuf, errlen, "%s: [tiers] hot is required", path);
		return STRATA_ECONFIG;
	}
	if (!c->tls_cert[0] || !c->tls_key[0]) {
		snprintf(errbuf, errlen, "%s: [tls] cert and key are required", path);
		return STRATA_ECONFIG;
	}
	return 0;
}

void config_store_opts(const struct config *c, struct store_opts *o,
		       const char *index_dir, const char *const *dirs[STORE_TIERS])
{
	memset(o, 0, sizeof(*o));
	o->index_dir = index_dir;
	o->master_key_path = c->master_key;
	for (int t = 0; t < STORE_TIERS; t++) {
		o->tier_dirs[t] = dirs[t];
		o->ntier_dirs[t] = c->ntier_dirs[t];
	}
	o->chunk_size = c->chunk_size;
	o->zstd_level = c->zstd_level;
	o->inline_max = c->inline_max ? c->inline_max : -1;
	o->segment_size = c->segment_size;
	o->cache_bytes = c->cache_size ? (int64_t)c->cache_size : -1;
	o->node_id = c->node_id;
}
