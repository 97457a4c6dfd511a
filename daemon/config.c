// SPDX-License-Identifier: Apache-2.0
/*
 * config: parse stratad.conf with inih, into struct config.
 *
 * inih parses; our reader feeds it.  The reader hands inih one whole line
 * of the file per call, so that line numbers stay right: with fgets(), a
 * line longer than inih's buffer (fixed when the library is built:
 * INI_MAX_LINE, 200 bytes in Debian's) came back as two, its rest taken
 * as the next line.  Such a line, or one with a NUL byte, is reported on
 * its own line number and reaches inih empty.  Indentation is dropped
 * before inih sees a line: inih would take an indented line after a key
 * as more of that key's value, and here a value is one line.  inih does
 * the rest: [sections], "key = value" or "key: value", comment lines
 * ('#', ';'), inline " ;" comments, a UTF-8 byte order mark.
 * A key set twice is an error, in one [section] or in one that reopens.
 *
 * Sizes accept K, M, G suffixes (powers of 1024).  Every key is in the
 * table below; the table is what stratad.conf(5) documents.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "net.h"
#include "strata/error.h"
#include "banned.h"

/* config.h promises the line length inih's buffer holds, less "\n" and
 * the NUL that the reader adds. */
_Static_assert(CONFIG_LINE_MAX == INI_MAX_LINE - 2,
	       "CONFIG_LINE_MAX must follow inih's INI_MAX_LINE");

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

/*
 * "a, b ,c" -> up to STORE_MAX_TIER_DIRS trimmed entries.
 * Returns NULL or why not.
 */
static const char *set_dirs(struct config *c, int tier, const char *v)
{
	char buf[CONFIG_LINE_MAX + 1];
	char *p, *save = NULL;

	if (set_str(buf, sizeof(buf), v))
		return "value too long";
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
		if (*p != '/')
			return "want absolute paths (a relative one would "
			       "depend on the working directory)";
		if (c->ntier_dirs[tier] == STORE_MAX_TIER_DIRS)
			return "too many directories (16 at most)";
		if (set_str(c->tier_dirs[tier][c->ntier_dirs[tier]],
			    CONFIG_PATH_MAX, p))
			return "a directory name is too long (1023 bytes at most)";
		c->ntier_dirs[tier]++;
	}
	return NULL;
}

/*
 * "ADDR:PORT" into an IP address literal without brackets and a port:
 * what net_listen and admin_listen take (uv_ip4_addr, uv_ip6_addr), so
 * that --check-config passes exactly what starts.  ADDR is IPv4, or IPv6
 * in brackets ([::1]:7480); without them the port is after the last colon.
 * Host names are refused: nothing resolves them.
 * Returns NULL or why not (syntax: the message for a malformed value).
 */
static const char *set_addr(char *host, size_t cap, int *port, const char *v,
			    const char *syntax)
{
	const char *colon = strrchr(v, ':'), *h = v;
	struct sockaddr_in6 sa6;
	struct sockaddr_in sa4;
	char a[256];
	size_t len;
	uint64_t n;

	if (!colon || colon == v || parse_u64(colon + 1, &n, 0) || n > 65535)
		return syntax;
	len = (size_t)(colon - v);
	if (*v == '[') {
		if (len < 3 || colon[-1] != ']')
			return syntax;
		h = v + 1;
		len -= 2;
	}
	if (len >= sizeof(a) || len >= cap)
		return syntax;
	memcpy(a, h, len);
	a[len] = 0;
	if (h != v && uv_ip6_addr(a, 0, &sa6))
		return "only an IPv6 address goes in brackets";
	if (h == v && uv_ip4_addr(a, 0, &sa4) && uv_ip6_addr(a, 0, &sa6))
		return "an IP address is required, not a host name";
	memcpy(host, a, len + 1);
	*port = (int)n;
	return NULL;
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
	{ "node", "shutdown_grace_ms", K_U32, OFF(shutdown_grace_ms), 0, 0, 3600000, 0 },
	{ "node", "send_timeout_ms", K_U32, OFF(send_timeout_ms), 0, 0, 86400000, 0 },
	{ "node", "body_timeout_ms", K_U32, OFF(body_timeout_ms), 0, 0, 86400000, 0 },
	{ "node", "auth_timeout_ms", K_U32, OFF(auth_timeout_ms), 0, 100, 3600000, 0 },
	{ "node", "answer_cache_size", K_SIZE, OFF(answer_cache_size), 8, 0, 1ll << 40, 0 },
	{ "node", "io_uring_sends", K_BOOL, OFF(io_uring_sends), 0, 0, 0, 0 },
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
	{ "tiers", "accept_missing_dirs", K_BOOL, OFF(accept_missing_dirs), 0, 0, 0, 0 },
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
	{ "store", "transfer_memory", K_SIZE, OFF(transfer_memory), 8, 1 << 20, 1ll << 42, 0 },
	{ "store", "index_cache_size", K_SIZE, OFF(index_cache_size), 8, 1 << 20, 1ll << 40, 0 },
	{ "store", "index_write_buffer_size", K_SIZE, OFF(index_write_buffer_size), 8, 0, 1ll << 40, 0 },
	{ "log", "level", K_LEVEL, 0, 0, 0, 0, 0 },
	{ "log", "access", K_BOOL, OFF(log_access), 0, 0, 0, 0 },
	{ "admin", "listen", K_ADMIN, 0, 0, 0, 0, 0 },
	{ "admin", "max_connections", K_U32, OFF(admin_max_connections), 0, 1, 1024, 0 },
	{ "admin", "timeout_ms", K_U32, OFF(admin_timeout_ms), 0, 100, 600000, 0 },
	{ "audit", "path", K_STR, OFF(audit_path), CAP(audit_path), 0, 0, 0 },
	/* 10 ms: more often would be an fdatasync per request or two */
	{ "audit", "sync_interval_ms", K_U32, OFF(audit_sync_ms), 0, 10, 3600000, 0 },
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

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct parse {
	struct config *c;
	const char *path;
	char *err;		/* every problem, one per line */
	size_t errlen, errused;
	int failed;		/* problems found */
	int line;		/* the line read last, from 1 (the reader counts) */
	FILE *f;
	int read_errno;		/* reading f failed: why */
	size_t bytes;		/* read from f so far */
	int set_at[NKEYS];	/* the line each key was set on; 0: not yet */
	char why[96];		/* set_value's message, when it has numbers */
};

const char *config_esc(char *buf, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		bool plain = ch >= 0x20 && ch < 0x7f;

		if (n + (plain ? 1 : 4) + 4 > cap) {
			memcpy(buf + n, "...", 4);
			return buf;
		}
		if (plain) {
			buf[n++] = (char)ch;
			continue;
		}
		buf[n++] = '\\';
		buf[n++] = 'x';
		buf[n++] = hex[ch >> 4];
		buf[n++] = hex[ch & 15];
	}
	buf[n] = 0;
	return buf;
}

/* Append one problem line to p->err; past its end, the line is dropped
 * and the last line says so. */
__attribute__((format(printf, 2, 3)))
static void problem(struct parse *p, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	p->failed++;
	if (n < 0 || !p->errlen)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
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

/* One problem with a key: "FILE:LINE: [section] key: what", and a hint. */
static void fail(struct parse *p, const char *section, const char *name,
		 const char *what, const char *hint)
{
	char s[128], n[128];

	config_esc(s, sizeof(s), section);
	config_esc(n, sizeof(n), name);
	if (hint)
		problem(p, "%s:%d: [%s] %s: %s (did you mean [%s?)", p->path,
			p->line, s, n, what, hint);
	else
		problem(p, "%s:%d: [%s] %s: %s", p->path, p->line, s, n, what);
}

/* "unknown key", with the closest known one when it is close. */
static void unknown_key(struct parse *p, const char *section, const char *name)
{
	const struct key *best = NULL;
	size_t bestd = 99;
	char full[160], want[160];

	/* distance() gives up past 63 bytes anyway */
	snprintf(full, sizeof(full), "%.63s] %.63s", section, name);
	for (size_t i = 0; i < NKEYS; i++) {
		size_t d;

		snprintf(want, sizeof(want), "%s] %s", keys[i].section,
			 keys[i].name);
		d = distance(full, want);
		if (d < bestd) {
			bestd = d;
			best = &keys[i];
		}
	}
	if (best && bestd <= 3) {
		snprintf(want, sizeof(want), "%s] %s", best->section, best->name);
		fail(p, section, name, "unknown key", want);
	} else {
		fail(p, section, name, "unknown key", NULL);
	}
}

/* Store one value.  Returns NULL or why not. */
static const char *set_value(struct parse *p, const struct key *k,
			     const char *value)
{
	struct config *c = p->c;
	char *base = (char *)c + k->off;
	uint64_t u;

	switch (k->kind) {
	case K_STR:
		if (set_str(base, k->cap, value)) {
			snprintf(p->why, sizeof(p->why),
				 "value too long (%zu bytes at most)", k->cap - 1);
			return p->why;
		}
		/* Key and certificate names resolve against the credentials
		 * or the config's directory; state_dir against nothing. */
		if (k->off == OFF(state_dir) && value[0] != '/')
			return "want an absolute path (a relative one would "
			       "depend on the working directory)";
		/* The audit log: empty is off. */
		if (k->off == OFF(audit_path) && value[0] && value[0] != '/')
			return "want an absolute path, or nothing for no audit "
			       "log (a relative one would depend on the "
			       "working directory)";
		if (k->off == OFF(audit_path) && value[0] &&
		    value[strlen(value) - 1] == '/')
			return "want a file name, not a directory";
		return NULL;
	case K_U32:
	case K_SIZE:
		if (k->min < 0 && strcmp(value, "auto") == 0) {
			/* Only cache_size takes "auto" (min -1). */
			*(uint64_t *)(void *)base = config_auto_cache();
			return NULL;
		}
		if (parse_u64(value, &u, k->kind == K_SIZE) ||
		    (k->min > 0 && u < (uint64_t)k->min) ||
		    u > (uint64_t)k->max)
			return "invalid or out-of-range number";
		if (k->kind == K_U32 || k->cap == 4)
			*(uint32_t *)(void *)base = (uint32_t)u;
		else
			*(uint64_t *)(void *)base = u;
		return NULL;
	case K_INT:
		if (k->min < 0 && strcmp(value, "auto") == 0) {
			*(int *)(void *)base = -1;	/* auto */
			return NULL;
		}
		if (parse_u64(value, &u, 0) || u > (uint64_t)k->max)
			return "invalid or out-of-range number";
		*(int *)(void *)base = (int)u;
		return NULL;
	case K_DIRS:
		return set_dirs(c, k->tier, value);
	case K_LISTEN:
		return set_addr(c->listen_host, sizeof(c->listen_host),
				&c->listen_port, value, "want host:port");
	case K_ADMIN:
		if (!*value || strcmp(value, "off") == 0) {
			c->admin_host[0] = 0;
			c->admin_port = 0;
			return NULL;
		}
		return set_addr(c->admin_host, sizeof(c->admin_host),
				&c->admin_port, value, "want host:port or off");
	case K_BOOL:
		if (set_bool((bool *)(void *)base, value))
			return "want true or false";
		return NULL;
	case K_LEVEL:
		if (log_parse_level(value, &c->log_level))
			return "want error, warn, info or debug";
		return NULL;
	}
	return "unknown kind of key";
}

/* A value given again is checked too (every problem at once), into a
 * scratch config: the first one stays. */
static const char *check_value(struct parse *p, const struct key *k,
			       const char *value)
{
	struct config *keep = p->c;
	const char *why;

	p->c = calloc(1, sizeof(*p->c));
	if (!p->c) {
		p->c = keep;
		return NULL;
	}
	why = set_value(p, k, value);
	free(p->c);
	p->c = keep;
	return why;
}

/* A key = value line.  No key may be set twice: the second would win
 * without a word, and which one the operator meant is anyone's guess. */
static void set_key(struct parse *p, const char *section, const char *name,
		    const char *value)
{
	const char *why;
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].section, section) &&
		    !strcmp(keys[i].name, name))
			break;
	if (i == NKEYS) {
		unknown_key(p, section, name);
		return;
	}
	if (p->set_at[i]) {
		snprintf(p->why, sizeof(p->why), "already set at line %d",
			 p->set_at[i]);
		fail(p, section, name, p->why, NULL);
		why = check_value(p, &keys[i], value);
	} else {
		p->set_at[i] = p->line;
		why = set_value(p, &keys[i], value);
	}
	if (why)
		fail(p, section, name, why, NULL);
}

static uint64_t usable_memory(void)
{
	uint64_t mem = uv_get_constrained_memory();	/* cgroup; 0: none */
	uint64_t total = uv_get_total_memory();

	if (!mem || (total && mem > total))
		mem = total;
	return mem;
}

uint64_t config_auto_cache(void)
{
	uint64_t mem = usable_memory() / 4;

	return mem < CONFIG_CACHE_MIN ? CONFIG_CACHE_MIN : mem;
}

uint64_t config_auto_transfer(void)
{
	uint64_t mem = usable_memory() / 8;

	if (mem > (1ull << 30))
		mem = 1ull << 30;
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
	c->answer_cache_size = 64u << 20;
	c->io_uring_sends = true;
	set_str(c->master_key, sizeof(c->master_key), "/etc/strata/master.key");
	c->chunk_size = STORE_DEFAULT_CHUNK;
	c->zstd_level = 1;
	c->inline_max = STORE_DEFAULT_INLINE;
	c->segment_size = 256u << 20;
	c->cache_size = config_auto_cache();
	c->transfer_memory = config_auto_transfer();
	c->index_cache_size = 64u << 20;
	c->index_write_buffer_size = 256u << 20;
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
	c->shutdown_grace_ms = 10000;
	c->send_timeout_ms = 300000;
	c->body_timeout_ms = 300000;
	c->auth_timeout_ms = 10000;
	c->audit_sync_ms = 1000;
}

/*
 * inih's reader (fgets-like): the next whole line of the file, however
 * long, into str (num bytes), as "line\n" without its indentation or a
 * \r before the newline; empty ("\n") when the line is too long for
 * str or holds a NUL byte, problems reported here on its own line
 * number.  NULL at the end of the file or on a read error.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	size_t max = CONFIG_LINE_MAX, len = 0, n = 0;
	bool nul = false;
	int ch, last = 0;

	if (num < 2)
		return NULL;
	if ((size_t)num - 2 < max)	/* never past inih's buffer */
		max = (size_t)num - 2;
	while ((ch = getc(p->f)) != EOF) {
		if (++p->bytes > CONFIG_FILE_MAX) {
			/* /dev/zero, a log, a disk image: never ends well. */
			p->read_errno = EFBIG;
			return NULL;
		}
		if (ch == '\n')
			break;
		len++;
		last = ch;
		nul |= !ch;
		if (!n && isspace(ch))
			continue;	/* indentation: see the top */
		if (n <= max)		/* max + 1: room for a final \r */
			str[n++] = (char)ch;
	}
	if (ch == EOF && ferror(p->f)) {
		p->read_errno = errno ? errno : EIO;
		return NULL;
	}
	if (ch == EOF && !len)
		return NULL;
	p->line++;
	if (last == '\r') {
		len--;
		if (n && str[n - 1] == '\r')
			n--;
	}
	if (len > max) {
		problem(p, "%s:%d: line too long (%zu bytes at most)", p->path,
			p->line, max);
		n = 0;
	} else if (nul) {
		problem(p, "%s:%d: NUL byte", p->path, p->line);
		n = 0;
	}
	str[n++] = '\n';
	str[n] = 0;
	return str;
}

static void not_a_line(struct parse *p, int line)
{
	problem(p, "%s:%d: not a [section] or key = value line", p->path,
		line);
}

/* Each key = value inih found.  Returns 1: inih goes on, and every
 * problem is reported at once. */
static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct parse *p = user;

	if (!*name)			/* "= value" */
		not_a_line(p, p->line);
	else
		set_key(p, section, name, value);
	return 1;
}

/* The line a tier's directories were set on. */
static int tier_line(const struct parse *p, int tier)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].kind == K_DIRS && keys[i].tier == tier)
			return p->set_at[i];
	return 0;
}

static const char *tier_name(int tier)
{
	return tier == STORE_TIER_HOT ? "hot" : "cold";
}

/* Where a directory really is: realpath() when it exists, else its name
 * without "//", "." components and a trailing "/" (out: PATH_MAX). */
static void dir_key(const char *dir, char *out)
{
	char *o = out;
	const char *s = dir;

	if (realpath(dir, out))
		return;
	while (*s) {
		if (*s == '/') {
			if (o == out || o[-1] != '/')
				*o++ = '/';
			s++;
		} else if (s[0] == '.' && (s[1] == '/' || !s[1]) &&
			   (o == out || o[-1] == '/')) {
			s += s[1] ? 2 : 1;
		} else {
			*o++ = *s++;
		}
	}
	if (o > out + 1 && o[-1] == '/')
		o--;
	*o = 0;
}

/* One directory twice, in one tier or both: every start would find its
 * segments twice.  Reported on the second one's line. */
static void check_dup_dirs(struct parse *p)
{
	const struct config *c = p->c;
	char (*real)[PATH_MAX];
	char a[CONFIG_PATH_MAX], b[CONFIG_PATH_MAX];

	real = calloc(STORE_TIERS * STORE_MAX_TIER_DIRS, PATH_MAX);
	if (!real) {
		problem(p, "%s: out of memory", p->path);
		return;
	}
	for (int t = 0; t < STORE_TIERS; t++) {
		for (unsigned d = 0; d < c->ntier_dirs[t]; d++) {
			int i = t * STORE_MAX_TIER_DIRS + (int)d, j;

			dir_key(c->tier_dirs[t][d], real[i]);
			for (j = 0; j < i; j++)
				if (real[j][0] && !strcmp(real[i], real[j]))
					break;
			if (j == i)
				continue;
			problem(p, "%s:%d: [tiers] %s: %s is the same directory "
				"as %s in [tiers] %s (line %d)", p->path,
				tier_line(p, t), tier_name(t),
				config_esc(a, sizeof(a), c->tier_dirs[t][d]),
				config_esc(b, sizeof(b),
					   c->tier_dirs[j / STORE_MAX_TIER_DIRS]
						       [j % STORE_MAX_TIER_DIRS]),
				tier_name(j / STORE_MAX_TIER_DIRS),
				tier_line(p, j / STORE_MAX_TIER_DIRS));
		}
	}
	free(real);
}

/* Every line of p->f; -errno when it cannot be read to its end. */
static int parse_file(struct parse *p)
{
	struct stat st;
	int rc;

	/* fopen() opens a directory; reading it fails, and looked like an
	 * empty file. */
	if (fstat(fileno(p->f), &st) == 0 && S_ISDIR(st.st_mode))
		return -EISDIR;
	rc = ini_parse_stream(read_line, p, handler, p);
	if (p->read_errno)
		return -p->read_errno;
	if (rc < 0)		/* -2: inih could not allocate its buffer */
		return -ENOMEM;
	/*
	 * The first line inih could not parse ("[section" without its ']',
	 * no '=' or ':'); inih names only that one.  Never a line with a
	 * problem already: the handler always returns 1, and the reader
	 * hands inih such lines empty.
	 */
	if (rc > 0)
		not_a_line(p, rc);
	return 0;
}

static void check_all(struct parse *p)
{
	const struct config *c = p->c;
	const char *path = p->path;

	if (!c->ntier_dirs[STORE_TIER_HOT])
		problem(p, "%s: [tiers] hot is required", path);
	if (!c->tls_cert[0] || !c->tls_key[0])
		problem(p, "%s: [tls] cert and key are required", path);
	if (c->hot_low_pct > c->hot_high_pct)
		problem(p, "%s: [tiers] hot_low_watermark (%u) is above "
			"hot_high_watermark (%u)", path, c->hot_low_pct,
			c->hot_high_pct);
	/* A cap of a few KB would flush a memtable at every write. */
	if (c->index_write_buffer_size &&
	    c->index_write_buffer_size < INDEX_WRITE_BUFFER_MIN)
		problem(p, "%s: [store] index_write_buffer_size (%" PRIu64
			") is under 4M (0 turns the cap off)", path,
			c->index_write_buffer_size);
	if (c->admin_host[0] && strcmp(c->admin_host, c->listen_host) == 0 &&
	    c->admin_port == c->listen_port && c->admin_port)
		problem(p, "%s: [admin] listen and [node] listen are the same "
			"address", path);
	check_dup_dirs(p);
}

/* fopen(path, "r"), except that a FIFO (which would block the start, or
 * a reload, until something writes to it) or a socket is -ENOTSUP. */
static int open_config(const char *path, FILE **out)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) ||
				    S_ISSOCK(st.st_mode))) {
		close(fd);
		return -ENOTSUP;
	}
	if (fcntl(fd, F_SETFL, 0) < 0 || !(*out = fdopen(fd, "r"))) {
		int e = errno;

		close(fd);
		return -e;
	}
	return 0;
}

int config_load(struct config *c, const char *path, char *errbuf,
		size_t errlen)
{
	struct parse p = { .c = c, .path = path, .err = errbuf,
			   .errlen = errlen };
	int rc;

	if (errlen)
		errbuf[0] = 0;
	rc = open_config(path, &p.f);
	if (rc == -ENOTSUP) {
		snprintf(errbuf, errlen, "%s: a FIFO or socket, not a "
			 "configuration file", path);
		return STRATA_ECONFIG;
	}
	if (!rc) {
		rc = parse_file(&p);
		fclose(p.f);
	}
	if (rc == -EFBIG) {
		/* Only this: what was read of it says nothing useful. */
		snprintf(errbuf, errlen, "%s: over %d KiB: not a configuration "
			 "file", path, CONFIG_FILE_MAX >> 10);
		return STRATA_ECONFIG;
	}
	if (rc) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	check_all(&p);
	return p.failed ? STRATA_ECONFIG : 0;
}

/* A directory the daemon writes: it exists (unless may_be_missing: the
 * daemon creates it) and this process may create files in it. */
static void check_dir(struct parse *p, const char *what, const char *dir,
		      bool may_be_missing)
{
	char e[CONFIG_PATH_MAX];
	struct stat st;

	config_esc(e, sizeof(e), dir);
	if (stat(dir, &st) < 0) {
		if (errno != ENOENT)
			problem(p, "%s %s: %s", what, e, strerror(errno));
		else if (!may_be_missing)
			problem(p, "%s %s: %s (create it, or mount the disk, "
				"first)", what, e, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode))
		problem(p, "%s %s: %s", what, e, strerror(ENOTDIR));
	else if (access(dir, W_OK | X_OK) < 0)
		problem(p, "%s %s: not writable: %s", what, e, strerror(errno));
}

/* [audit] path: where audit_open can create or append to it.  Its
 * directory may be missing only when it is state_dir, which the daemon
 * makes before it opens the log. */
static void check_audit(struct parse *p, const struct config *c)
{
	char dir[CONFIG_PATH_MAX], e[CONFIG_PATH_MAX];
	const char *slash = strrchr(c->audit_path, '/');
	struct stat st;
	size_t n = slash > c->audit_path ? (size_t)(slash - c->audit_path) : 1;
	char a[PATH_MAX], b[PATH_MAX];

	memcpy(dir, c->audit_path, n);
	dir[n] = 0;
	dir_key(dir, a);
	dir_key(c->state_dir, b);
	check_dir(p, "[audit] path's directory", dir, strcmp(a, b) == 0);
	config_esc(e, sizeof(e), c->audit_path);
	if (lstat(c->audit_path, &st) < 0) {
		if (errno != ENOENT)
			problem(p, "[audit] path %s: %s", e, strerror(errno));
	} else if (S_ISLNK(st.st_mode)) {
		problem(p, "[audit] path %s: a symbolic link, which is not "
			"followed: name the log file itself", e);
	} else if (!S_ISREG(st.st_mode)) {
		problem(p, "[audit] path %s: not a regular file", e);
	}
}

int config_check_dirs(const struct config *c, char *errbuf, size_t errlen)
{
	struct parse p = { .err = errbuf, .errlen = errlen };
	char what[32];

	if (errlen)
		errbuf[0] = 0;
	for (int t = 0; t < STORE_TIERS; t++) {
		snprintf(what, sizeof(what), "%s tier dir", tier_name(t));
		for (unsigned d = 0; d < c->ntier_dirs[t]; d++)
			check_dir(&p, what, c->tier_dirs[t][d], false);
	}
	check_dir(&p, "state_dir", c->state_dir, true);
	if (c->audit_path[0])
		check_audit(&p, c);
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
	o->transfer_bytes = c->transfer_memory;
	o->index_cache_bytes = c->index_cache_size;
	o->index_write_buffer_bytes = c->index_write_buffer_size;
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
	o->accept_missing_dirs = c->accept_missing_dirs;
}
