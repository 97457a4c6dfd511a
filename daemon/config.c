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
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "net.h"
#include "strata/error.h"
#include "banned.h"

struct parse {
	struct config *c;
	const char *path;
	char *err;		/* every problem, one per line */
	size_t errlen, errused;
	int failed;		/* problems found */
	int line;		/* the line inih is on (reader counts) */
	FILE *f;
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

/* "host:port"; with may_off, "off" or "" leave host empty (disabled). */
static int set_addr(char *host, size_t cap, int *port, const char *v,
		    bool may_off)
{
	const char *colon = strrchr(v, ':');
	uint64_t n;

	if (may_off && (!*v || strcmp(v, "off") == 0)) {
		host[0] = 0;
		*port = 0;
		return 0;
	}
	if (!colon || colon == v || (size_t)(colon - v) >= cap)
		return -1;
	if (parse_u64(colon + 1, &n, 0) || n > 65535)
		return -1;
	memcpy(host, v, (size_t)(colon - v));
	host[colon - v] = 0;
	*port = (int)n;
	return 0;
}

static int set_bool(bool *dst, const char *v)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcmp(v, yes[i]) == 0 || strcmp(v, no[i]) == 0) {
			*dst = strcmp(v, yes[i]) == 0;
			return 0;
		}
	}
	return -1;
}

enum kind { K_STR, K_U32, K_SIZE, K_INT, K_DIRS, K_LISTEN, K_LEVEL, K_BOOL,
	    K_ADMIN };

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
	{ "node", "max_output_buffer", K_SIZE, OFF(max_output_buffer), 8, 0, 1ll << 40, 0 },
	/* min -1: "auto" is allowed (one per core) */
	{ "node", "io_threads", K_INT, OFF(io_threads), 0, -1, NET_MAX_THREADS, 0 },
	{ "tls", "cert", K_STR, OFF(tls_cert), CAP(tls_cert), 0, 0, 0 },
	{ "tls", "key", K_STR, OFF(tls_key), CAP(tls_key), 0, 0, 0 },
	{ "tls", "client_ca", K_STR, OFF(tls_client_ca), CAP(tls_client_ca), 0, 0, 0 },
	{ "keys", "master_key", K_STR, OFF(master_key), CAP(master_key), 0, 0, 0 },
	{ "tiers", "hot", K_DIRS, 0, 0, 0, 0, STORE_TIER_HOT },
	{ "tiers", "cold", K_DIRS, 0, 0, 0, 0, STORE_TIER_COLD },
	{ "tiers", "hot_capacity", K_SIZE, OFF(tier_capacity[STORE_TIER_HOT]), 8, 0, 1ll << 60, 0 },
	{ "tiers", "cold_capacity", K_SIZE, OFF(tier_capacity[STORE_TIER_COLD]), 8, 0, 1ll << 60, 0 },
	{ "tiers", "hot_high_watermark", K_U32, OFF(hot_high_pct), 0, 1, 100, 0 },
	{ "tiers", "hot_low_watermark", K_U32, OFF(hot_low_pct), 0, 1, 100, 0 },
	{ "tiers", "mover_rate", K_SIZE, OFF(mover_rate), 8, 0, 1ll << 40, 0 },
	{ "tiers", "promote_reads", K_U32, OFF(promote_reads), 0, 1, 1000, 0 },
	{ "tiers", "promote_window", K_U32, OFF(promote_window_s), 0, 1, 86400 * 30, 0 },
	{ "tiers", "prestage_ahead", K_U32, OFF(prestage_ahead), 0, 1, 1024, 0 },
	{ "tiers", "lifecycle_interval", K_U32, OFF(lifecycle_interval_s), 0, 1, 86400 * 7, 0 },
	{ "tiers", "hot_read_delay_us", K_U32, OFF(tier_read_delay_us[STORE_TIER_HOT]), 0, 0, 10000000, 0 },
	{ "tiers", "cold_read_delay_us", K_U32, OFF(tier_read_delay_us[STORE_TIER_COLD]), 0, 0, 10000000, 0 },
	{ "tiers", "hot_read_bandwidth", K_SIZE, OFF(tier_read_bw[STORE_TIER_HOT]), 8, 0, 1ll << 40, 0 },
	{ "tiers", "cold_read_bandwidth", K_SIZE, OFF(tier_read_bw[STORE_TIER_COLD]), 8, 0, 1ll << 40, 0 },
	{ "store", "chunk_size", K_SIZE, OFF(chunk_size), 4, STORE_MIN_CHUNK, STORE_MAX_CHUNK, 0 },
	{ "store", "zstd_level", K_INT, OFF(zstd_level), 0, 0, 19, 0 },
	{ "store", "inline_max", K_SIZE, OFF(inline_max), 4, 0, META_INLINE_MAX, 0 },
	{ "store", "segment_size", K_SIZE, OFF(segment_size), 8, 1u << 20, 1ll << 40, 0 },
	/* min -1: "auto" is allowed (config_auto_cache) */
	{ "store", "cache_size", K_SIZE, OFF(cache_size), 8, -1, 1ll << 42, 0 },
	{ "log", "level", K_LEVEL, 0, 0, 0, 0, 0 },
	{ "log", "access", K_BOOL, OFF(log_access), 0, 0, 0, 0 },
	{ "admin", "listen", K_ADMIN, 0, 0, 0, 0, 0 },
	{ "admin", "max_connections", K_U32, OFF(admin_max_connections), 0, 1, 1024, 0 },
	{ "admin", "timeout_ms", K_U32, OFF(admin_timeout_ms), 0, 100, 600000, 0 },
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

/* Append one problem line to p->err; past its end, the line is dropped
 * and the last line says so. */
__attribute__((format(printf, 2, 3)))
static void problem(struct parse *p, const char *fmt, ...)
{
	char line[768];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	p->failed++;
	if (n < 0 || !p->errlen)
		return;
	if (p->errused + (size_t)n + 2 > p->errlen) {
		const char *more = "(more problems not shown)";

		if (p->errused + strlen(more) + 2 <= p->errlen)
			p->errused += (size_t)snprintf(p->err + p->errused,
				p->errlen - p->errused, "%s%s",
				p->errused ? "\n" : "", more);
		p->errlen = p->errused;	/* nothing more fits */
		return;
	}
	p->errused += (size_t)snprintf(p->err + p->errused,
				       p->errlen - p->errused, "%s%s",
				       p->errused ? "\n" : "", line);
}

/* One problem with a key: "FILE:LINE: [section] key: what", and a hint.
 * Returns 1 so that inih goes on: every problem is reported at once. */
static int fail(struct parse *p, const char *section, const char *name,
		const char *what, const char *hint)
{
	if (hint)
		problem(p, "%s:%d: [%s] %s: %s (did you mean [%s?)", p->path,
			p->line, section, name, what, hint);
	else
		problem(p, "%s:%d: [%s] %s: %s", p->path, p->line, section,
			name, what);
	return 1;
}

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct parse *p = user;
	struct config *c = p->c;
	const struct key *best = NULL;
	size_t bestd = 99;
	char hint[160];

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
			if (k->min < 0 && strcmp(value, "auto") == 0) {
				/* Only cache_size takes "auto" (min -1). */
				*(uint64_t *)(void *)base = config_auto_cache();
				return 1;
			}
			if (parse_u64(value, &u, k->kind == K_SIZE) ||
			    (k->min > 0 && u < (uint64_t)k->min) ||
			    u > (uint64_t)k->max)
				return fail(p, section, name, "invalid or out-of-range number", NULL);
			if (k->kind == K_U32 || k->cap == 4)
				*(uint32_t *)(void *)base = (uint32_t)u;
			else
				*(uint64_t *)(void *)base = u;
			return 1;
		case K_INT:
			if (k->min < 0 && strcmp(value, "auto") == 0) {
				*(int *)(void *)base = -1;	/* auto */
				return 1;
			}
			if (parse_u64(value, &u, 0) || u > (uint64_t)k->max)
				return fail(p, section, name, "invalid or out-of-range number", NULL);
			*(int *)(void *)base = (int)u;
			return 1;
		case K_DIRS:
			if (set_dirs(c, k->tier, value))
				return fail(p, section, name, "too many or too long directories", NULL);
			return 1;
		case K_LISTEN:
			if (set_addr(c->listen_host, sizeof(c->listen_host),
				     &c->listen_port, value, false))
				return fail(p, section, name, "want host:port", NULL);
			return 1;
		case K_ADMIN:
			if (set_addr(c->admin_host, sizeof(c->admin_host),
				     &c->admin_port, value, true))
				return fail(p, section, name, "want host:port or off", NULL);
			return 1;
		case K_BOOL:
			if (set_bool((bool *)(void *)base, value))
				return fail(p, section, name, "want true or false", NULL);
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

uint64_t config_auto_cache(void)
{
	uint64_t mem = uv_get_constrained_memory();	/* cgroup; 0: none */
	uint64_t total = uv_get_total_memory();

	if (!mem || (total && mem > total))
		mem = total;
	mem /= 4;
	return mem < CONFIG_CACHE_MIN ? CONFIG_CACHE_MIN : mem;
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->node_id = 1;
	set_str(c->state_dir, sizeof(c->state_dir), "/var/lib/strata");
	set_str(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
	c->listen_port = 7480;
	c->max_connections = 4096;
	c->max_output_buffer = 1ull << 30;
	c->io_threads = -1;
	set_str(c->master_key, sizeof(c->master_key), "/etc/strata/master.key");
	c->chunk_size = STORE_DEFAULT_CHUNK;
	c->zstd_level = 1;
	c->inline_max = STORE_DEFAULT_INLINE;
	c->segment_size = 256u << 20;
	c->cache_size = config_auto_cache();
	c->hot_high_pct = 90;
	c->hot_low_pct = 75;
	c->mover_rate = 128u << 20;
	c->promote_reads = 3;
	c->promote_window_s = 600;
	c->prestage_ahead = 32;
	c->lifecycle_interval_s = 3600;
	c->log_level = LOG_INFO;
	c->admin_max_connections = 16;
	c->admin_timeout_ms = 5000;
}

/*
 * inih's line reader, counting lines so that every problem names its line,
 * and catching lines inih would skip as malformed (it reports only the
 * first one).
 */
static char *read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	char *s = fgets(str, num, p->f);
	const char *t;

	if (!s)
		return NULL;
	p->line++;
	for (t = s; *t == ' ' || *t == '\t'; t++)
		;
	if (*t && *t != '\n' && *t != '\r' && *t != '#' && *t != ';' &&
	    !(*t == '[' && strchr(t, ']')) && !strchr(t, '=') && !strchr(t, ':'))
		problem(p, "%s:%d: not a [section] or key = value line",
			p->path, p->line);
	return s;
}

int config_load(struct config *c, const char *path, char *errbuf,
		size_t errlen)
{
	struct parse p = { .c = c, .path = path, .err = errbuf,
			   .errlen = errlen };
	int rc;

	if (errlen)
		errbuf[0] = 0;
	p.f = fopen(path, "r");
	if (!p.f) {
		rc = -errno;
		snprintf(errbuf, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = ini_parse_stream(read_line, &p, handler, &p);
	fclose(p.f);
	if (rc > 0 && !p.failed)	/* a line inih refused that we let by */
		problem(&p, "%s:%d: not a [section] or key = value line", path,
			rc);
	else if (rc < 0)
		problem(&p, "%s: cannot parse (out of memory)", path);
	if (!c->ntier_dirs[STORE_TIER_HOT])
		problem(&p, "%s: [tiers] hot is required", path);
	if (!c->tls_cert[0] || !c->tls_key[0])
		problem(&p, "%s: [tls] cert and key are required", path);
	if (c->hot_low_pct > c->hot_high_pct)
		problem(&p, "%s: [tiers] hot_low_watermark (%u) is above "
			"hot_high_watermark (%u)", path, c->hot_low_pct,
			c->hot_high_pct);
	if (c->admin_host[0] && strcmp(c->admin_host, c->listen_host) == 0 &&
	    c->admin_port == c->listen_port && c->admin_port)
		problem(&p, "%s: [admin] listen and [node] listen are the same "
			"address", path);
	return p.failed ? STRATA_ECONFIG : 0;
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
	for (int t = 0; t < STORE_TIERS; t++) {
		o->tier[t].capacity = c->tier_capacity[t];
		o->tier[t].read_delay_us = c->tier_read_delay_us[t];
		o->tier[t].read_bw = c->tier_read_bw[t];
	}
	o->tier[STORE_TIER_HOT].high_pct = c->hot_high_pct;
	o->tier[STORE_TIER_HOT].low_pct = c->hot_low_pct;
	o->mover_rate = c->mover_rate;
	o->promote_reads = c->promote_reads;
	o->promote_window_ms = c->promote_window_s * 1000;
	o->prestage_ahead = c->prestage_ahead;
	o->lifecycle_interval_ms = c->lifecycle_interval_s * 1000;
}
