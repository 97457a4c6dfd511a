// SPDX-License-Identifier: Apache-2.0
/*
 * config: stratad.conf parsing and checks: the line length inih's buffer
 * allows, the forms and errors inih reads, a key set twice, listen
 * addresses (what --check-config passes must be what starts), one
 * directory twice, files that are not text, the [audit] keys, and the
 * start-time directory checks.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "strata/error.h"
#include "testutil.h"
#include "banned.h"

/* A valid config but for what a test adds. */
#define BASE "[tls]\ncert = a.pem\nkey = a.key\n"

static char *dir, *conf;
static struct config cfg;
static char err[16384];

static void setup(void)
{
	dir = tu_tmpdir("config");
	ck_assert_int_ge(asprintf(&conf, "%s/stratad.conf", dir), 0);
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dir);
	free(conf);
	dir = conf = NULL;
}

static char *path_in(const char *name)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

/* Write len bytes as the config file and load it. */
static int load_bytes(const char *text, size_t len)
{
	ck_assert_int_eq(tu_write_file(conf, text, len, 0644), 0);
	config_defaults(&cfg);
	return config_load(&cfg, conf, err, sizeof(err));
}

static int load(const char *text)
{
	return load_bytes(text, strlen(text));
}

/* err holds exactly this one line, FILE: prefixed. */
static void want_only(const char *line)
{
	char *want;

	ck_assert_int_ge(asprintf(&want, "%s%s", conf, line), 0);
	ck_assert_str_eq(err, want);
	free(want);
}

/* err has a line that starts with FILE then this. */
static void want_line(const char *line)
{
	char *want;

	ck_assert_int_ge(asprintf(&want, "%s%s", conf, line), 0);
	ck_assert_msg(strstr(err, want), "want \"%s\" in:\n%s", want, err);
	free(want);
}

static char *repeat(char ch, size_t n)
{
	char *s = tu_xmalloc(n + 1);

	memset(s, ch, n);
	s[n] = 0;
	return s;
}

/* [store] index_cache_size and index_write_buffer_size: 64M and 256M
 * unless set; the cap is 0 (none) or at least 4M. */
START_TEST(index_memory_keys)
{
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n"), 0);
	ck_assert_uint_eq(cfg.index_cache_size, 64u << 20);
	ck_assert_uint_eq(cfg.index_write_buffer_size, 256u << 20);
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[store]\n"
			      "index_cache_size = 8M\n"
			      "index_write_buffer_size = 0\n"), 0);
	ck_assert_uint_eq(cfg.index_cache_size, 8u << 20);
	ck_assert_uint_eq(cfg.index_write_buffer_size, 0);
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[store]\n"
			      "index_write_buffer_size = 64K\n"),
			 STRATA_ECONFIG);
	ck_assert(strstr(err, "[store] index_write_buffer_size (65536) is "
			 "under 4M (0 turns the cap off)"));
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[store]\n"
			      "index_cache_size = 0\n"), STRATA_ECONFIG);
	want_line(":7: [store] index_cache_size: invalid or out-of-range number");
}
END_TEST

START_TEST(base_is_valid)
{
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n"), 0);
	ck_assert_str_eq(err, "");
}
END_TEST

/* [node] auth_timeout_ms: 10 s unless set, from 100 ms to an hour. */
START_TEST(auth_timeout)
{
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n"), 0);
	ck_assert_uint_eq(cfg.auth_timeout_ms, 10000);
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[node]\n"
			      "auth_timeout_ms = 2000\n"), 0);
	ck_assert_uint_eq(cfg.auth_timeout_ms, 2000);
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[node]\n"
			      "auth_timeout_ms = 50\n"), STRATA_ECONFIG);
	want_line(":7: [node] auth_timeout_ms: invalid or out-of-range number");
}
END_TEST

/* [audit]: off (no path) and 1 s unless set; the interval from 10 ms to
 * an hour. */
START_TEST(audit_keys)
{
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n"), 0);
	ck_assert_str_eq(cfg.audit_path, "");
	ck_assert_uint_eq(cfg.audit_sync_ms, 1000);
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[audit]\n"
			      "path = /var/log/strata/audit.log\n"
			      "sync_interval_ms = 10\n"), 0);
	ck_assert_str_eq(cfg.audit_path, "/var/log/strata/audit.log");
	ck_assert_uint_eq(cfg.audit_sync_ms, 10);
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[audit]\n"
			      "path =\nsync_interval_ms = 3600000\n"), 0);
	ck_assert_str_eq(cfg.audit_path, "");
	ck_assert_uint_eq(cfg.audit_sync_ms, 3600000);
	ck_assert_str_eq(err, "");
}
END_TEST

/* Each bad [audit] value on its own line, all at once. */
START_TEST(audit_keys_bad)
{
	static const char *const bad_ms[] = { "9", "3600001", "0", "-1",
					      "1s", "1000 ms", "" };

	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[audit]\n"
			      "path = audit.log\n"), STRATA_ECONFIG);
	want_only(":7: [audit] path: want an absolute path, or nothing for "
		  "no audit log (a relative one would depend on the working "
		  "directory)");
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[audit]\n"
			      "path = /var/log/strata/\n"), STRATA_ECONFIG);
	want_only(":7: [audit] path: want a file name, not a directory");
	for (size_t i = 0; i < sizeof(bad_ms) / sizeof(bad_ms[0]); i++) {
		char text[256];

		snprintf(text, sizeof(text), BASE "[tiers]\nhot = /h\n"
			 "[audit]\nsync_interval_ms = %s\n", bad_ms[i]);
		ck_assert_msg(load(text) == STRATA_ECONFIG, "%s", bad_ms[i]);
		want_only(":7: [audit] sync_interval_ms: invalid or "
			  "out-of-range number");
	}
	/* The unit is in the name, as in every other key. */
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[audit]\n"
			      "sync_interval = 1s\n"), STRATA_ECONFIG);
	want_only(":7: [audit] sync_interval: unknown key (did you mean "
		  "[audit] sync_interval_ms?)");
}
END_TEST

/* Directories that would move with the working directory (systemd's is
 * /, a shell's anywhere): refused, each with its line. */
START_TEST(relative_dirs_refused)
{
	ck_assert_int_eq(load(BASE "[node]\nstate_dir = state\n"
			      "[tiers]\nhot = /h, hot2\ncold = ./c\n"),
			 STRATA_ECONFIG);
	want_line(":5: [node] state_dir: want an absolute path");
	want_line(":7: [tiers] hot: want absolute paths");
	want_line(":8: [tiers] cold: want absolute paths");
	ck_assert_int_eq(load(BASE "[node]\nstate_dir = /s\n"
			      "[tiers]\nhot = /h, /h2\ncold = /c/\n"), 0);
}
END_TEST

/* A file that never ends (or is not a config at all) is read only so far:
 * one line says so.  Up to CONFIG_FILE_MAX bytes is a config. */
START_TEST(file_size_bounded)
{
	size_t n = CONFIG_FILE_MAX, base = strlen(BASE "[tiers]\nhot = /h\n");
	char *text = tu_xmalloc(n + 2);

	config_defaults(&cfg);
	ck_assert_int_eq(config_load(&cfg, "/dev/zero", err, sizeof(err)),
			 STRATA_ECONFIG);
	ck_assert_str_eq(err, "/dev/zero: over 1024 KiB: not a configuration file");
	/* Comment lines of 100 bytes after a valid config, to exactly the
	 * limit; then one byte more. */
	memcpy(text, BASE "[tiers]\nhot = /h\n", base);
	for (size_t i = base; i < n + 2; i++)
		text[i] = (i - base) % 101 == 100 ? '\n' : '#';
	ck_assert_int_eq(load_bytes(text, n), 0);
	ck_assert_int_eq(load_bytes(text, n + 1), STRATA_ECONFIG);
	want_only(": over 1024 KiB: not a configuration file");
	free(text);
}
END_TEST

/* ---- line length ------------------------------------------------------ */

/* A line of exactly CONFIG_LINE_MAX bytes (inih's buffer), its \r\n not
 * counted. */
START_TEST(line_max_accepted)
{
	char *pad = repeat('#', CONFIG_LINE_MAX), *text;
	char *d = repeat('d', CONFIG_LINE_MAX - 7);	/* after "hot = /" */

	ck_assert_int_ge(asprintf(&text, "%s\r\n" BASE "[tiers]\nhot = /%s\r\n"
				  "cold = /c\n", pad, d), 0);
	ck_assert_int_eq(load(text), 0);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(cfg.ntier_dirs[STORE_TIER_HOT], 1);
	ck_assert_str_eq(cfg.tier_dirs[STORE_TIER_HOT][0] + 1, d);
	ck_assert_str_eq(cfg.tier_dirs[STORE_TIER_COLD][0], "/c");
	free(pad);
	free(d);
	free(text);
}
END_TEST

/* One byte more: one problem, on its own line number, none from its
 * cut-off rest; the lines after it are read as before. */
START_TEST(line_too_long)
{
	char *pad = repeat('x', CONFIG_LINE_MAX - 7 - 8), *text, *want;
	char *big = repeat('y', 10000);

	/* "cold = /" + pad + ", id = 3" is CONFIG_LINE_MAX + 1 bytes */
	ck_assert_int_ge(asprintf(&text, BASE "[tiers]\ncold = /%s, id = 3\n"
				  "hot = /h\n", pad), 0);
	ck_assert_int_eq(load(text), STRATA_ECONFIG);
	ck_assert_int_ge(asprintf(&want, ":5: line too long (%d bytes at most)",
				  CONFIG_LINE_MAX), 0);
	want_only(want);
	ck_assert_uint_eq(cfg.ntier_dirs[STORE_TIER_COLD], 0);
	ck_assert_str_eq(cfg.tier_dirs[STORE_TIER_HOT][0], "/h");
	free(text);
	free(want);

	/* Far longer, with a key where fgets() into inih's buffer would
	 * have begun a second line. */
	memcpy(big + CONFIG_LINE_MAX, "id = 9 ; ", 9);
	ck_assert_int_ge(asprintf(&text, BASE "[tiers]\n#%s\nhot = /h\n"
				  "[node]\nid = 3\nlisten = x\n", big), 0);
	ck_assert_int_eq(load(text), STRATA_ECONFIG);
	ck_assert_int_ge(asprintf(&want, ":5: line too long (%d bytes at most)",
				  CONFIG_LINE_MAX), 0);
	want_line(want);
	want_line(":9: [node] listen: want host:port");
	ck_assert_ptr_null(strstr(err, ":6:"));
	ck_assert_ptr_null(strstr(err, ":8:"));
	ck_assert_uint_eq(cfg.node_id, 3);
	free(pad);
	free(big);
	free(text);
	free(want);
}
END_TEST

/* What inih takes: a byte order mark, "key: value", inline " ;"
 * comments, CRLF, indented keys.  Indentation is dropped before inih
 * sees a line, so an indented line after a key is a key of its own, not
 * more of the value above (inih's continuation lines). */
START_TEST(file_forms)
{
	ck_assert_int_eq(load("\xef\xbb\xbf[node]\r\n  id = 7 ; seven\r\n"
			      "\tlisten: 127.0.0.1:80\n; c\n# c\n\n"
			      "[tls] ; the keys\ncert = a;b\nkey = k\n"
			      "[tiers]\nhot = /h\n   \t cold = /c\n"), 0);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(cfg.node_id, 7);
	ck_assert_str_eq(cfg.listen_host, "127.0.0.1");
	ck_assert_int_eq(cfg.listen_port, 80);
	ck_assert_str_eq(cfg.tls_cert, "a;b");
	ck_assert_str_eq(cfg.tier_dirs[STORE_TIER_HOT][0], "/h");
	ck_assert_str_eq(cfg.tier_dirs[STORE_TIER_COLD][0], "/c");
}
END_TEST

/* An indented line that is not a key is not taken as a value either. */
START_TEST(indented_not_a_value)
{
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n   /more\n"),
			 STRATA_ECONFIG);
	want_only(":6: not a [section] or key = value line");
	ck_assert_uint_eq(cfg.ntier_dirs[STORE_TIER_HOT], 1);
}
END_TEST

/* inih names the first line it cannot parse, and only that one; a line
 * with no key before its '=' is reported by the handler. */
START_TEST(not_a_line)
{
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\nnot ini\n[node\n"),
			 STRATA_ECONFIG);
	want_only(":6: not a [section] or key = value line");
	/* Without its ']', no section opens: id stays in [tiers]. */
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[node\nid = 4\n"),
			 STRATA_ECONFIG);
	want_line(":6: not a [section] or key = value line");
	want_line(":7: [tiers] id: unknown key");
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n= 3\n[node]\nid = 4\n"),
			 STRATA_ECONFIG);
	want_only(":6: not a [section] or key = value line");
	ck_assert_uint_eq(cfg.node_id, 4);
	/* inih ignores what follows a section's ']'. */
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[node] x\nid = 4\n"), 0);
	ck_assert_uint_eq(cfg.node_id, 4);
}
END_TEST

/* ---- a key set twice -------------------------------------------------- */

START_TEST(duplicate_key)
{
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[node]\nid = 1\n"
			      "listen = 127.0.0.1:1\nid = 2\n"), STRATA_ECONFIG);
	want_only(":9: [node] id: already set at line 7");
	ck_assert_uint_eq(cfg.node_id, 1);
}
END_TEST

/* The second value is checked too, and does not replace the first. */
START_TEST(duplicate_key_bad_value)
{
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /a\n[log]\nlevel = debug\n"
			      "level = loud\n"), STRATA_ECONFIG);
	want_line(":8: [log] level: already set at line 7\n");
	want_line(":8: [log] level: want error, warn, info or debug");
	ck_assert_int_eq(cfg.log_level, LOG_DEBUG);
}
END_TEST

/* A section opened again is the same section. */
START_TEST(duplicate_key_reopened)
{
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /a\n[node]\nid = 1\n"
			      "[tiers]\nhot = /b\n"), STRATA_ECONFIG);
	want_only(":9: [tiers] hot: already set at line 5");
}
END_TEST

/* The same name in two sections is two keys. */
START_TEST(same_name_two_sections)
{
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[node]\n"
			      "listen = 127.0.0.1:1\nmax_connections = 5\n"
			      "[admin]\nlisten = 127.0.0.1:2\n"
			      "max_connections = 6\n"), 0);
	ck_assert_uint_eq(cfg.max_connections, 5);
	ck_assert_uint_eq(cfg.admin_max_connections, 6);
}
END_TEST

/* ---- listen addresses ------------------------------------------------- */

/* What net_listen and admin_listen accept (net.c, admin.c). */
static bool listenable(const char *host, int port)
{
	struct sockaddr_in6 sa6;
	struct sockaddr_in sa4;

	return uv_ip4_addr(host, port, &sa4) == 0 ||
	       uv_ip6_addr(host, port, &sa6) == 0;
}

static int load_listen(const char *node, const char *admin)
{
	char *text;
	int rc;

	ck_assert_int_ge(asprintf(&text, BASE "[tiers]\nhot = /h\n[node]\n"
				  "listen = %s\n[admin]\nlisten = %s\n",
				  node, admin), 0);
	rc = load(text);
	free(text);
	return rc;
}

START_TEST(listen_ipv6_bracketed)
{
	ck_assert_int_eq(load_listen("[::1]:7480", "[::1]:9464"), 0);
	ck_assert_str_eq(cfg.listen_host, "::1");
	ck_assert_int_eq(cfg.listen_port, 7480);
	ck_assert_str_eq(cfg.admin_host, "::1");
	ck_assert_int_eq(cfg.admin_port, 9464);
	ck_assert(listenable(cfg.listen_host, cfg.listen_port));
	ck_assert(listenable(cfg.admin_host, cfg.admin_port));
	ck_assert_int_eq(load_listen("[::]:1", "[fe80::1:2]:2"), 0);
	ck_assert_str_eq(cfg.listen_host, "::");
	ck_assert_str_eq(cfg.admin_host, "fe80::1:2");
	/* Without brackets, the port is after the last colon. */
	ck_assert_int_eq(load_listen("::1:7480", "0.0.0.0:0"), 0);
	ck_assert_str_eq(cfg.listen_host, "::1");
	ck_assert_int_eq(cfg.listen_port, 7480);
	ck_assert_str_eq(cfg.admin_host, "0.0.0.0");
}
END_TEST

START_TEST(listen_host_name)
{
	ck_assert_int_eq(load_listen("localhost:7480", "example.com:9464"),
			 STRATA_ECONFIG);
	want_line(":7: [node] listen: an IP address is required, not a host name");
	want_line(":9: [admin] listen: an IP address is required, not a host name");
	ck_assert_int_eq(load_listen("[127.0.0.1]:1", "[localhost]:2"),
			 STRATA_ECONFIG);
	want_line(":7: [node] listen: only an IPv6 address goes in brackets");
	want_line(":9: [admin] listen: only an IPv6 address goes in brackets");
}
END_TEST

/* --check-config passes a value if and only if the daemon can listen on
 * what it makes of it. */
START_TEST(listen_check_agrees_with_start)
{
	static const char *const values[] = {
		"127.0.0.1:0", "0.0.0.0:65535", "[::1]:1", "[::]:80", "::1:80",
		"[::ffff:127.0.0.1]:80", "localhost:80", "host:1", "1.2.3:4",
		"1.2.3.256:80", "[::1]", "[::1]:", "::1", "[::1]x:80", "[]:80",
		"[:80", "]:80", ":80", "127.0.0.1:65536", "127.0.0.1:-1",
		"127.0.0.1", "[1.2.3.4]:80", "[[::1]]:80",
	};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		int rc = load_listen(values[i], "off");

		ck_assert_msg(rc == 0 || rc == STRATA_ECONFIG, "%s: rc %d",
			      values[i], rc);
		if (rc == 0)
			ck_assert_msg(listenable(cfg.listen_host,
						 cfg.listen_port),
				      "%s passes the check as %s, which "
				      "net_listen refuses", values[i],
				      cfg.listen_host);
		else
			ck_assert_msg(strstr(err, "[node] listen: "),
				      "%s: %s", values[i], err);
	}
	ck_assert_int_eq(load_listen("[::1]:1", "off"), 0);
	ck_assert_int_eq(load_listen("localhost:1", "off"), STRATA_ECONFIG);
}
END_TEST

START_TEST(listen_same_as_admin)
{
	ck_assert_int_eq(load_listen("[::1]:7480", "::1:7480"), STRATA_ECONFIG);
	want_line(": [admin] listen and [node] listen are the same address");
}
END_TEST

/* ---- one directory twice ---------------------------------------------- */

static int load_tiers(const char *hot, const char *cold)
{
	char *text;
	int rc;

	ck_assert_int_ge(asprintf(&text, BASE "[tiers]\nhot = %s\ncold = %s\n",
				  hot, cold), 0);
	rc = load(text);
	free(text);
	return rc;
}

START_TEST(dup_dir_in_one_tier)
{
	char *a = path_in("a"), *b = path_in("b"), *v;

	ck_assert_int_eq(mkdir(a, 0755), 0);
	ck_assert_int_eq(mkdir(b, 0755), 0);
	ck_assert_int_ge(asprintf(&v, "%s, %s, %s/", a, b, a), 0);
	ck_assert_int_eq(load_tiers(v, ""), STRATA_ECONFIG);
	free(v);
	ck_assert_int_ge(asprintf(&v, ":5: [tiers] hot: %s/ is the same "
				  "directory as %s in [tiers] hot (line 5)",
				  a, a), 0);
	want_only(v);
	free(v);
	/* Names only (no such directories): "//", "." and a final "/". */
	ck_assert_int_eq(load_tiers("/no/such/./x/, /no//such/x", ""),
			 STRATA_ECONFIG);
	want_line(":5: [tiers] hot: /no//such/x is the same directory as "
		  "/no/such/./x/ in [tiers] hot (line 5)");
	ck_assert_int_eq(load_tiers("./x, x", ""), STRATA_ECONFIG);
	ck_assert_int_eq(load_tiers("/no/x, /no/x/y", "/no/y"), 0);
	free(a);
	free(b);
}
END_TEST

START_TEST(dup_dir_across_tiers)
{
	char *a = path_in("a"), *link = path_in("link"), *v;

	ck_assert_int_eq(mkdir(a, 0755), 0);
	ck_assert_int_eq(symlink(a, link), 0);
	ck_assert_int_eq(load_tiers(a, a), STRATA_ECONFIG);
	ck_assert_int_ge(asprintf(&v, ":6: [tiers] cold: %s is the same "
				  "directory as %s in [tiers] hot (line 5)",
				  a, a), 0);
	want_only(v);
	free(v);
	/* Through a symbolic link: the same directory under two names. */
	ck_assert_int_eq(load_tiers(a, link), STRATA_ECONFIG);
	want_line(":6: [tiers] cold: ");
	ck_assert_int_eq(load_tiers(link, "/elsewhere"), 0);
	free(a);
	free(link);
}
END_TEST

/* ---- files that are not text ------------------------------------------ */

START_TEST(config_is_a_directory)
{
	config_defaults(&cfg);
	ck_assert_int_eq(config_load(&cfg, dir, err, sizeof(err)), -EISDIR);
	ck_assert_msg(strstr(err, "Is a directory"), "%s", err);
	ck_assert_ptr_null(strstr(err, "required"));
}
END_TEST

/* A FIFO would block the start (or a reload) until something wrote to it. */
START_TEST(config_is_a_fifo)
{
	char *fifo;

	ck_assert_int_ge(asprintf(&fifo, "%s/conf.fifo", dir), 0);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	config_defaults(&cfg);
	ck_assert_int_eq(config_load(&cfg, fifo, err, sizeof(err)),
			 STRATA_ECONFIG);
	ck_assert_msg(strstr(err, "a FIFO or socket, not a configuration file"),
		      "%s", err);
	unlink(fifo);
	free(fifo);
}
END_TEST

START_TEST(config_missing)
{
	config_defaults(&cfg);
	ck_assert_int_eq(config_load(&cfg, conf, err, sizeof(err)), -ENOENT);
	want_only(": No such file or directory");
}
END_TEST

START_TEST(nul_byte)
{
	static const char text[] = BASE "[tiers]\nhot = /h\n"
				   "cold = /c\0/rest\n[node]\nid = 5\n";

	ck_assert_int_eq(load_bytes(text, sizeof(text) - 1), STRATA_ECONFIG);
	want_only(":6: NUL byte");
	ck_assert_uint_eq(cfg.ntier_dirs[STORE_TIER_COLD], 0);
	ck_assert_uint_eq(cfg.node_id, 5);
}
END_TEST

/* Bytes of the file that reach a message are escaped. */
START_TEST(junk_escaped)
{
	ck_assert_int_eq(load(BASE "[tiers]\nhot = /h\n[no\x1b[2Jde]\n"
			      "i\x07\xff = 1\n"), STRATA_ECONFIG);
	want_only(":7: [no\\x1b[2Jde] i\\x07\\xff: unknown key");
	for (const char *s = err; *s; s++)
		ck_assert_msg(*s >= 0x20 && *s < 0x7f, "raw byte 0x%02x",
			      (unsigned char)*s);
}
END_TEST

/* ---- start-time directory checks -------------------------------------- */

static void tiers_at(const char *hot, const char *cold)
{
	config_defaults(&cfg);
	snprintf(cfg.tier_dirs[STORE_TIER_HOT][0], CONFIG_PATH_MAX, "%s", hot);
	cfg.ntier_dirs[STORE_TIER_HOT] = 1;
	snprintf(cfg.tier_dirs[STORE_TIER_COLD][0], CONFIG_PATH_MAX, "%s", cold);
	cfg.ntier_dirs[STORE_TIER_COLD] = 1;
	snprintf(cfg.state_dir, CONFIG_PATH_MAX, "%s/state", dir);
}

START_TEST(check_dirs_ok)
{
	char *h = path_in("h"), *c = path_in("c");

	ck_assert_int_eq(mkdir(h, 0755), 0);
	ck_assert_int_eq(mkdir(c, 0755), 0);
	tiers_at(h, c);		/* state_dir is missing: made at start */
	ck_assert_int_eq(config_check_dirs(&cfg, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "");
	free(h);
	free(c);
}
END_TEST

START_TEST(check_dirs_missing)
{
	char *h = path_in("h"), *c = path_in("c"), *want;

	ck_assert_int_eq(tu_write_file(h, "x", 1, 0644), 0);
	tiers_at(h, c);
	ck_assert_int_eq(config_check_dirs(&cfg, err, sizeof(err)),
			 STRATA_ECONFIG);
	ck_assert_int_ge(asprintf(&want, "hot tier dir %s: Not a directory\n"
				  "cold tier dir %s: No such file or directory "
				  "(create it, or mount the disk, first)",
				  h, c), 0);
	ck_assert_str_eq(err, want);
	free(want);
	free(h);
	free(c);
}
END_TEST

/* [audit] path at start: a directory that exists (or is state_dir, made
 * at start), and a regular file there if anything. */
START_TEST(check_dirs_audit)
{
	char *h = path_in("h"), *c = path_in("c"), *want, *p;

	ck_assert_int_eq(mkdir(h, 0755), 0);
	ck_assert_int_eq(mkdir(c, 0755), 0);
	tiers_at(h, c);
	/* In state_dir, which is missing: fine. */
	snprintf(cfg.audit_path, CONFIG_PATH_MAX, "%s/state/audit.log", dir);
	ck_assert_int_eq(config_check_dirs(&cfg, err, sizeof(err)), 0);
	/* Where it exists already, or may be created. */
	snprintf(cfg.audit_path, CONFIG_PATH_MAX, "%s/h/audit.log", dir);
	ck_assert_int_eq(config_check_dirs(&cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(tu_write_file(cfg.audit_path, "", 0, 0600), 0);
	ck_assert_int_eq(config_check_dirs(&cfg, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "");
	/* Elsewhere in a missing directory. */
	snprintf(cfg.audit_path, CONFIG_PATH_MAX, "%s/nodir/audit.log", dir);
	ck_assert_int_eq(config_check_dirs(&cfg, err, sizeof(err)),
			 STRATA_ECONFIG);
	ck_assert_int_ge(asprintf(&want, "[audit] path's directory %s/nodir: "
				  "No such file or directory (create it, or "
				  "mount the disk, first)", dir), 0);
	ck_assert_str_eq(err, want);
	free(want);
	/* A directory, and a symbolic link. */
	snprintf(cfg.audit_path, CONFIG_PATH_MAX, "%s", c);
	ck_assert_int_eq(config_check_dirs(&cfg, err, sizeof(err)),
			 STRATA_ECONFIG);
	ck_assert_int_ge(asprintf(&want, "[audit] path %s: not a regular "
				  "file", c), 0);
	ck_assert_str_eq(err, want);
	free(want);
	p = path_in("h/link.log");
	ck_assert_int_eq(symlink("audit.log", p), 0);
	snprintf(cfg.audit_path, CONFIG_PATH_MAX, "%s", p);
	ck_assert_int_eq(config_check_dirs(&cfg, err, sizeof(err)),
			 STRATA_ECONFIG);
	ck_assert_int_ge(asprintf(&want, "[audit] path %s: a symbolic link, "
				  "which is not followed: name the log file "
				  "itself", p), 0);
	ck_assert_str_eq(err, want);
	free(want);
	free(p);
	free(h);
	free(c);
}
END_TEST

/*
 * As root, access() says yes to a mode 0555 directory, and rightly: root
 * can write there.  So the check runs in a child that drops to nobody
 * (65534); the verdict comes back through a pipe.
 */
START_TEST(check_dirs_not_writable)
{
	char *h = path_in("h"), *c = path_in("c"), *st = path_in("state");
	char *want, got[4096];
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(chmod(dir, 0755), 0);
	ck_assert_int_eq(mkdir(h, 0555), 0);
	ck_assert_int_eq(mkdir(c, 0777), 0);
	ck_assert_int_eq(mkdir(st, 0555), 0);
	ck_assert_int_eq(chmod(h, 0555), 0);
	ck_assert_int_eq(chmod(c, 0777), 0);
	ck_assert_int_eq(chmod(st, 0555), 0);
	tiers_at(h, c);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int rc;

		close(fds[0]);
		if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
			_exit(77);
		if (access(h, F_OK) || !access(h, W_OK))
			_exit(77);	/* nobody cannot reach it, or is root */
		rc = config_check_dirs(&cfg, err, sizeof(err));
		if (write(fds[1], err, strlen(err)) < 0)
			_exit(2);
		_exit(rc == STRATA_ECONFIG ? 0 : 1);
	}
	close(fds[1]);
	n = read(fds[0], got, sizeof(got) - 1);
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		fprintf(stderr, "check_dirs_not_writable: skipped: cannot "
			"drop to uid 65534 or it can reach or write %s\n", h);
		goto out;
	}
	ck_assert_int_ge(n, 0);
	got[n] = 0;
	ck_assert_msg(WEXITSTATUS(status) == 0, "rc: %s", got);
	ck_assert_int_ge(asprintf(&want, "hot tier dir %s: not writable: "
				  "Permission denied\nstate_dir %s: not "
				  "writable: Permission denied", h, st), 0);
	ck_assert_str_eq(got, want);
	free(want);
out:
	free(h);
	free(c);
	free(st);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("lines");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, base_is_valid);
	tcase_add_test(tc, auth_timeout);
	tcase_add_test(tc, index_memory_keys);
	tcase_add_test(tc, line_max_accepted);
	tcase_add_test(tc, line_too_long);
	tcase_add_test(tc, file_forms);
	tcase_add_test(tc, indented_not_a_value);
	tcase_add_test(tc, not_a_line);
	tcase_add_test(tc, nul_byte);
	tcase_add_test(tc, junk_escaped);
	tcase_add_test(tc, config_is_a_directory);
	tcase_add_test(tc, config_missing);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, duplicate_key);
	tcase_add_test(tc, duplicate_key_bad_value);
	tcase_add_test(tc, duplicate_key_reopened);
	tcase_add_test(tc, same_name_two_sections);
	tcase_add_test(tc, listen_ipv6_bracketed);
	tcase_add_test(tc, listen_host_name);
	tcase_add_test(tc, listen_check_agrees_with_start);
	tcase_add_test(tc, listen_same_as_admin);
	tcase_add_test(tc, audit_keys);
	tcase_add_test(tc, audit_keys_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("dirs");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, dup_dir_in_one_tier);
	tcase_add_test(tc, dup_dir_across_tiers);
	tcase_add_test(tc, relative_dirs_refused);
	tcase_add_test(tc, file_size_bounded);
	tcase_add_test(tc, config_is_a_fifo);
	tcase_add_test(tc, check_dirs_ok);
	tcase_add_test(tc, check_dirs_missing);
	tcase_add_test(tc, check_dirs_not_writable);
	tcase_add_test(tc, check_dirs_audit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
