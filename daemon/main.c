// SPDX-License-Identifier: Apache-2.0
/*
 * stratad: read the config, open the store, listen with TLS, serve.
 *
 *   start: config -> tier dirs writable -> TLS context -> store_open
 *          -> admin key (first start) -> net_listen -> admin port
 *          -> READY=1 (systemd) -> serve
 *   SIGTERM/SIGINT: STOPPING=1, stop accepting, close connections
 *          gracefully (puts not yet committed are aborted, nothing
 *          half-visible), close the store (waits for in-flight commits),
 *          exit 0
 *   SIGHUP: RELOADING=1, re-read the config file and apply what can change
 *          live (log level, access log, connection limit, mover rate, TLS
 *          certificate and key), name what needs a restart, READY=1
 *
 * Credentials: relative key and certificate paths resolve against
 * $CREDENTIALS_DIRECTORY (systemd LoadCredential=) when it is set, else
 * against the config file's directory (resolve_paths).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "admin.h"
#include "anscache.h"
#include "audit.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "meta.h"
#include "metrics.h"
#include "net.h"
#include "notify.h"
#include "proto.h"
#include "server.h"
#include "store.h"
#include "tls.h"
#include "strata/error.h"
#include "banned.h"

#define STRATAD_VERSION "0.1.0"
/* glibc's ceiling for M_MMAP_THRESHOLD on 64-bit (half a heap). */
#define MALLOC_MMAP_MAX_BYTES (32 << 20)
/* Free heap memory past this goes back to the kernel (M_TRIM_THRESHOLD at
 * the top, trim_tick everywhere else). */
#define MALLOC_KEEP_FREE_BYTES (2 * MALLOC_MMAP_MAX_BYTES)
/* How often trim_tick looks at the heap. */
#define TRIM_TICK_MS 10000
/* io_threads = auto: one I/O loop per core, at most this many. */
#define IO_THREADS_AUTO_MAX 16

struct app {
	uv_loop_t *loop;
	struct config cfg;
	const char *config_path;
	struct store *store;
	struct server *srv;
	struct anscache *ans;		/* I/O loops' small GETs; may be NULL */
	struct audit *audit;		/* [audit] path; may be NULL */
	struct net_server *net;
	struct tls_ctx *tls;
	struct admin *admin;
	struct metrics metrics;
	struct notify notify;
	uint64_t start_time_s;
	unsigned long long fds_base;	/* descriptors the store held at start */
	unsigned conns_cap;		/* max_connections, or fewer (conn_cap) */
	uv_signal_t sig[3];
	uv_timer_t drain_timer;		/* SIGTERM: requests finishing */
	uv_timer_t trim_timer;		/* trim_tick */
	uint64_t drain_until;		/* uv_now() when the grace ends */
	bool ready;			/* store open and serving (/readyz) */
	bool stopping;
	int exit_code;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: stratad [-c FILE] [--check-config | --new-admin-key] [--version]\n"
		"  -c, --config FILE   configuration (default /etc/strata/stratad.conf)\n"
		"      --check-config  check the configuration and exit (0: valid)\n"
		"      --new-admin-key with the node stopped: add an admin key, write\n"
		"                      it to STATE_DIR/admin.key and exit\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          this text\n"
		"See stratad(8) and stratad.conf(5).\n");
}

/*
 * First start: no access key exists, so make an admin key and leave it in
 * a 0600 file in the state directory for the operator to pick up.  With
 * force (stratad --new-admin-key), make one whatever keys exist.
 *
 * The file is made whole first (a temporary name, fsync, rename, fsync of
 * the directory) and only then is the key stored: a crash at any point
 * leaves either no key in the store, so that the next start makes a new
 * one and replaces whatever file there is, or the key and its complete
 * file; never a key that nobody can read.
 */
static int bootstrap_admin_key(struct app *a, bool force)
{
	char path[CONFIG_PATH_MAX + 32], tmp[CONFIG_PATH_MAX + 32], text[256];
	char id[STORE_AKEY_ID_LEN + 1], secret[STORE_AKEY_SECRET_LEN + 1];
	char **ids;
	size_t n;
	bool had;
	int fd, dfd, len, rc;

	rc = store_access_key_list(a->store, &ids, NULL, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	if (n && !force)
		return 0;
	snprintf(path, sizeof(path), "%s/admin.key", a->cfg.state_dir);
	snprintf(tmp, sizeof(tmp), "%s/admin.key.tmp", a->cfg.state_dir);
	rc = store_access_key_make(id, secret);
	if (rc)
		return rc;
	len = snprintf(text, sizeof(text),
		       "# stratad admin access key; keep this file 0600\n"
		       "access_key = %s\nsecret_key = %s\n", id, secret);
	errno = 0;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 || fchmod(fd, 0600) < 0 ||
	    write(fd, text, (size_t)len) != len || fsync(fd) < 0) {
		rc = errno ? -errno : -EIO;
		log_err("main", "cannot write %s: %s", tmp, strerror(-rc));
		goto fail;
	}
	close(fd);
	fd = -1;
	had = access(path, F_OK) == 0;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		log_err("main", "cannot rename %s to %s: %s", tmp, path,
			strerror(-rc));
		goto fail;
	}
	dfd = open(a->cfg.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		rc = -errno;
		if (dfd >= 0)
			close(dfd);
		log_err("main", "cannot sync %s: %s", a->cfg.state_dir,
			strerror(-rc));
		goto fail_file;
	}
	close(dfd);
	if (had && !force)
		log_warn("main", "replaced %s: the store has no access key, so "
			 "the key it held (if any) was not this store's", path);
	rc = store_access_key_put(a->store, id, secret, STORE_AKEY_SECRET_LEN,
				  META_AKEY_ADMIN);
	if (rc) {
		log_err("main", "cannot store the admin access key: %s",
			strata_strerror(rc));
		goto fail_file;
	}
	keys_wipe(secret, sizeof(secret));
	keys_wipe(text, sizeof(text));
	log_info("main", "created the admin access key %s; its secret is in %s",
		 id, path);
	if (force)
		log_info("main", "the %zu access key(s) there were before still "
			 "work (strata admin key list|delete)%s", n,
			 had ? "; admin.key was replaced" : "");
	return 0;
fail_file:
	/* Its key is not (surely) stored: the file would mislead. */
	unlink(path);
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	keys_wipe(secret, sizeof(secret));
	keys_wipe(text, sizeof(text));
	return rc;
}

static void store_closed(void *arg)
{
	struct app *a = arg;

	a->store = NULL;
	/* Only now: the store's last callbacks (puts whose commit was in
	 * flight when their connection closed) still reach the server's
	 * connection records, which count themselves out of it. */
	if (a->srv)
		server_free(a->srv);
	a->srv = NULL;
	/* The I/O threads are gone with the net server. */
	anscache_free(a->ans);
	a->ans = NULL;
	/* No request is left to record: the log's tail goes to disk. */
	if (a->audit) {
		audit_close(a->audit, NULL, NULL);
		a->audit = NULL;
	}
	for (int i = 0; i < 3; i++)
		uv_close((uv_handle_t *)&a->sig[i], NULL);
	uv_close((uv_handle_t *)&a->drain_timer, NULL);
	uv_close((uv_handle_t *)&a->trim_timer, NULL);
	notify_release(&a->notify);
}

/* net_server_close's callback: arg is net_listen's, the server. */
static void net_closed(void *arg)
{
	struct app *a = server_owner(arg);

	a->net = NULL;
	log_info("main", "connections closed; syncing the store");
	if (a->store)
		store_close(a->store, store_closed, a);
	else
		store_closed(a);
}

/*
 * glibc gives free memory back only from the top of a heap: one block
 * still in use above a hole keeps the hole resident for good.  Closed
 * connections, finished slow readers and burst uploads left hundreds of
 * MiB resident that no request would use again (measured: 2,000 idle
 * connections opened and closed, 22 -> 90 MiB, and more each time).  So
 * every TRIM_TICK_MS, when more than MALLOC_KEEP_FREE_BYTES of the heaps
 * is free, hand the free pages back (malloc_trim walks every arena).
 */
static void trim_tick(uv_timer_t *t)
{
	struct app *a = t->data;
	struct mallinfo2 mi;

	/* Buffers pooled for reuse that sat a whole tick unused first. */
	if (a->store)
		store_trim(a->store);
	if (a->net)
		net_server_trim(a->net);
	mi = mallinfo2();
	if (mi.fordblks > MALLOC_KEEP_FREE_BYTES)
		malloc_trim(0);
}

/* Every DRAIN_TICK_MS of the grace period, connections with nothing left
 * in flight are closed; at its end, or once none is left, the rest. */
#define DRAIN_TICK_MS 20

static void drain_tick(uv_timer_t *t)
{
	struct app *a = t->data;
	bool over = uv_now(a->loop) >= a->drain_until;
	unsigned left = server_shutdown_poll(a->srv, over);

	if (left && !over)
		return;
	uv_timer_stop(t);
	if (left)
		log_info("main", "%u connection(s) still had requests in flight after %u ms (shutdown_grace_ms): aborted",
			 left, a->cfg.shutdown_grace_ms);
	net_server_close(a->net, net_closed);
}

static void stop(struct app *a, const char *why)
{
	if (a->stopping) {
		/* A second SIGTERM or SIGINT: no more grace. */
		if (a->net && uv_is_active((uv_handle_t *)&a->drain_timer)) {
			log_info("main", "%s again: closing connections now", why);
			uv_timer_stop(&a->drain_timer);
			server_shutdown_poll(a->srv, true);
			net_server_close(a->net, net_closed);
		}
		return;
	}
	a->stopping = true;
	a->ready = false;
	log_info("main", "%s: stopping (no new connections; draining)", why);
	notify_stopping("stopping: draining connections");
	if (a->admin)
		admin_close(a->admin, NULL, NULL);
	a->admin = NULL;
	if (a->net && a->srv && a->cfg.shutdown_grace_ms) {
		/* Refuse new connections, GOAWAY to the open ones, and let
		 * the requests they sent finish (PROTOCOL.md §5.5). */
		log_info("main", "closing connections as their requests finish (up to %u ms)",
			 a->cfg.shutdown_grace_ms);
		net_server_stop_accepting(a->net);
		server_shutdown_begin(a->srv);
		a->drain_until = uv_now(a->loop) + a->cfg.shutdown_grace_ms;
		uv_timer_start(&a->drain_timer, drain_tick, 0, DRAIN_TICK_MS);
		return;
	}
	if (a->net) {
		net_server_close(a->net, net_closed);
		return;
	}
	if (a->store)
		store_close(a->store, store_closed, a);
	else
		store_closed(a);
}

/*
 * Make a relative credential path absolute: against $CREDENTIALS_DIRECTORY
 * when systemd set it (LoadCredential=), else against the config file's
 * directory.  Returns 0 or -ENAMETOOLONG.
 */
static int resolve_path(char *p, size_t cap, const char *config_path)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	const char *slash = strrchr(config_path, '/');
	char buf[CONFIG_PATH_MAX];
	int n;

	if (!p[0] || p[0] == '/')
		return 0;
	if (creds && *creds)
		n = snprintf(buf, sizeof(buf), "%s/%s", creds, p);
	else if (slash)
		n = snprintf(buf, sizeof(buf), "%.*s/%s",
			     (int)(slash - config_path), config_path, p);
	else
		return 0;	/* the config is in the working directory */
	if (n < 0 || (size_t)n >= sizeof(buf) || (size_t)n >= cap)
		return -ENAMETOOLONG;
	memcpy(p, buf, (size_t)n + 1);
	return 0;
}

/* Read and check the config file; every problem is reported, one line
 * each, to the log (reload) or stderr (start, --check-config). */
static int load_config(struct config *c, const char *path, bool to_log)
{
	char *const paths[] = { c->tls_cert, c->tls_key, c->tls_client_ca,
				c->master_key };
	char err[16384];
	int rc;

	config_defaults(c);
	rc = config_load(c, path, err, sizeof(err));
	for (size_t i = 0; !rc && i < sizeof(paths) / sizeof(paths[0]); i++) {
		char e[4 * CONFIG_PATH_MAX];

		rc = resolve_path(paths[i], CONFIG_PATH_MAX, path);
		if (rc)
			snprintf(err, sizeof(err), "%s: %s is too long once "
				 "resolved against the credentials directory",
				 path, config_esc(e, sizeof(e), paths[i]));
	}
	if (!rc)
		return 0;
	for (char *line = err, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = 0;
		if (to_log)
			log_err("config", "%s", line);
		else
			fprintf(stderr, "stratad: %s\n", line);
	}
	return rc;
}

/* Descriptors kept free for the store beyond those it holds at start:
 * new segments, RocksDB's files as it compacts, the admin port. */
#define FD_RESERVE 256

/*
 * Every connection holds a descriptor, and so does every segment file and
 * RocksDB's: when connections take the last ones the index can fail a
 * write and then stop taking writes.  At start the soft limit is raised to
 * the hard one (a shell's is often 1024) before the store opens; then
 * conn_cap() keeps connections to what is left.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_debug("main", "open files: soft limit raised to %llu",
			  (unsigned long long)rl.rlim_cur);
}

/* Descriptors open now (the store's, before any connection). */
static unsigned long long fds_open(void)
{
	unsigned long long n = 0;
	struct dirent *d;
	DIR *dir = opendir("/proc/self/fd");

	if (!dir)
		return 0;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n > 0 ? n - 1 : 0;	/* less opendir's own */
}

/* max_connections, or fewer when the descriptors left (the limit, less
 * those the store held at start and FD_RESERVE) are fewer; then a warning
 * says so. */
static unsigned conn_cap(const struct app *a, unsigned want)
{
	struct rlimit rl;
	unsigned long long room;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return want;
	room = rl.rlim_cur > a->fds_base + FD_RESERVE + 16 ?
	       rl.rlim_cur - a->fds_base - FD_RESERVE : 16;
	if (want <= room)
		return want;
	log_warn("main", "serving at most %llu connections, not [node] "
		 "max_connections (%u): open files are limited to %llu and "
		 "the store holds %llu; raise the limit (LimitNOFILE=, "
		 "ulimit -n) to serve more", room, want,
		 (unsigned long long)rl.rlim_cur, a->fds_base);
	return (unsigned)room;
}

/* Append ", what" to a one-line summary. */
static void note(char *buf, size_t cap, const char *what)
{
	size_t n = strlen(buf);

	snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", what);
}

/* SIGHUP: a store setting that applies live: set it when it changed, and
 * name it with its value among what was done. */
static void reload_store_u64(struct app *a, char *done, size_t cap,
			     const char *name, uint64_t *cur, uint64_t next,
			     void (*set)(struct store *s, uint64_t v))
{
	char what[96];

	if (next != *cur) {
		set(a->store, next);
		*cur = next;
	}
	snprintf(what, sizeof(what), "%s %llu", name,
		 (unsigned long long)*cur);
	note(done, cap, what);
}

/*
 * SIGHUP: re-read the config file.  What can change live is applied; what
 * cannot is named (restart to apply) and keeps its running value.  One log
 * line says which.
 */
static void reload(struct app *a)
{
	struct config nc;
	struct tls_ctx *t;
	struct net_limits lim;
	char done[512] = "", later[512] = "", what[192];
	int rc;

	notify_reloading();
	if (load_config(&nc, a->config_path, true)) {
		log_err("main", "SIGHUP: %s has errors; nothing reloaded",
			a->config_path);
		notify_ready("serving; the last reload failed (see the log)");
		return;
	}
	log_set_level(nc.log_level);
	a->cfg.log_level = nc.log_level;
	snprintf(what, sizeof(what), "log level %s", log_level_name(nc.log_level));
	note(done, sizeof(done), what);
	a->cfg.log_access = nc.log_access;
	server_set_access_log(a->srv, nc.log_access);
	note(done, sizeof(done), nc.log_access ? "access log on" : "access log off");
	net_limits_default(&lim);
	lim.out_total_cap = (size_t)nc.max_output_buffer;
	lim.send_timeout_ms = nc.send_timeout_ms;
	lim.max_conns = nc.max_connections == a->cfg.max_connections ?
			a->conns_cap : conn_cap(a, nc.max_connections);
	if (net_server_set_limits(a->net, &lim) == 0) {
		a->cfg.max_connections = nc.max_connections;
		a->conns_cap = lim.max_conns;
		a->cfg.max_output_buffer = nc.max_output_buffer;
		a->cfg.send_timeout_ms = nc.send_timeout_ms;
		a->cfg.body_timeout_ms = nc.body_timeout_ms;
		server_set_body_timeout(a->srv, nc.body_timeout_ms);
		snprintf(what, sizeof(what), "max_connections %u, "
			 "max_output_buffer %llu, send_timeout_ms %u (new "
			 "connections), body_timeout_ms %u", nc.max_connections,
			 (unsigned long long)nc.max_output_buffer,
			 nc.send_timeout_ms, nc.body_timeout_ms);
		note(done, sizeof(done), what);
	}
	reload_store_u64(a, done, sizeof(done), "mover_rate",
			 &a->cfg.mover_rate, nc.mover_rate,
			 store_set_mover_rate);
	reload_store_u64(a, done, sizeof(done), "cache_size",
			 &a->cfg.cache_size, nc.cache_size,
			 store_set_cache_budget);
	reload_store_u64(a, done, sizeof(done), "transfer_memory",
			 &a->cfg.transfer_memory, nc.transfer_memory,
			 store_set_transfer_budget);
	a->cfg.shutdown_grace_ms = nc.shutdown_grace_ms;
	snprintf(what, sizeof(what), "shutdown_grace_ms %u",
		 a->cfg.shutdown_grace_ms);
	note(done, sizeof(done), what);
	rc = tls_ctx_new_server(nc.tls_cert, nc.tls_key,
				nc.tls_client_ca[0] ? nc.tls_client_ca : NULL, &t);
	if (rc) {
		log_err("main", "SIGHUP: keeping the old TLS certificate: %s",
			strata_strerror(rc));
	} else {
		net_server_set_tls(a->net, t);
		tls_ctx_free(a->tls);
		a->tls = t;
		memcpy(a->cfg.tls_cert, nc.tls_cert, sizeof(nc.tls_cert));
		memcpy(a->cfg.tls_key, nc.tls_key, sizeof(nc.tls_key));
		memcpy(a->cfg.tls_client_ca, nc.tls_client_ca,
		       sizeof(nc.tls_client_ca));
		note(done, sizeof(done), "TLS certificate and key");
	}
	/* The rest is fixed at start. */
	if (strcmp(nc.listen_host, a->cfg.listen_host) ||
	    nc.listen_port != a->cfg.listen_port)
		note(later, sizeof(later), "[node] listen");
	if (strcmp(nc.state_dir, a->cfg.state_dir) || nc.node_id != a->cfg.node_id)
		note(later, sizeof(later), "[node] id, state_dir");
	if (nc.io_threads != a->cfg.io_threads)
		note(later, sizeof(later), "[node] io_threads");
	if (nc.answer_cache_size != a->cfg.answer_cache_size)
		note(later, sizeof(later), "[node] answer_cache_size");
	if (nc.io_uring_sends != a->cfg.io_uring_sends)
		note(later, sizeof(later), "[node] io_uring_sends");
	if (nc.auth_timeout_ms != a->cfg.auth_timeout_ms)
		note(later, sizeof(later), "[node] auth_timeout_ms");
	if (memcmp(nc.tier_dirs, a->cfg.tier_dirs, sizeof(nc.tier_dirs)) ||
	    memcmp(nc.ntier_dirs, a->cfg.ntier_dirs, sizeof(nc.ntier_dirs)))
		note(later, sizeof(later), "[tiers] hot, cold");
	if (memcmp(nc.tier_capacity, a->cfg.tier_capacity, sizeof(nc.tier_capacity)) ||
	    nc.hot_high_pct != a->cfg.hot_high_pct ||
	    nc.hot_low_pct != a->cfg.hot_low_pct ||
	    nc.promote_reads != a->cfg.promote_reads ||
	    nc.promote_window_s != a->cfg.promote_window_s ||
	    nc.prestage_ahead != a->cfg.prestage_ahead ||
	    nc.lifecycle_interval_s != a->cfg.lifecycle_interval_s ||
	    memcmp(nc.tier_read_delay_us, a->cfg.tier_read_delay_us,
		   sizeof(nc.tier_read_delay_us)) ||
	    memcmp(nc.tier_read_bw, a->cfg.tier_read_bw, sizeof(nc.tier_read_bw)))
		note(later, sizeof(later), "[tiers] capacities, watermarks, promotion, prestaging, lifecycle");
	if (strcmp(nc.master_key, a->cfg.master_key))
		note(later, sizeof(later), "[keys] master_key");
	if (nc.chunk_size != a->cfg.chunk_size ||
	    nc.zstd_level != a->cfg.zstd_level ||
	    nc.inline_max != a->cfg.inline_max ||
	    nc.segment_size != a->cfg.segment_size)
		note(later, sizeof(later), "[store] chunk_size, zstd_level, inline_max, segment_size");
	if (strcmp(nc.audit_path, a->cfg.audit_path) ||
	    nc.audit_sync_ms != a->cfg.audit_sync_ms)
		note(later, sizeof(later), "[audit] path, sync_interval_ms");
	if (nc.index_cache_size != a->cfg.index_cache_size ||
	    nc.index_write_buffer_size != a->cfg.index_write_buffer_size)
		note(later, sizeof(later), "[store] index_cache_size, index_write_buffer_size");
	if (strcmp(nc.admin_host, a->cfg.admin_host) ||
	    nc.admin_port != a->cfg.admin_port ||
	    nc.admin_max_connections != a->cfg.admin_max_connections ||
	    nc.admin_timeout_ms != a->cfg.admin_timeout_ms)
		note(later, sizeof(later), "[admin]");
	log_info("main", "SIGHUP: reloaded %s: %s%s%s", a->config_path, done,
		 later[0] ? "; restart to apply: " : "", later);
	notify_ready("serving (reloaded)");
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct app *a = h->data;

	if (signum == SIGHUP && !a->stopping && a->net)
		reload(a);
	else if (signum != SIGHUP)
		stop(a, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int mkdir_p(const char *path)
{
	char buf[CONFIG_PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* /metrics: the request counters plus what the store and net report now. */
static int admin_metrics(void *arg, char **body, size_t *len)
{
	struct app *a = arg;
	struct metrics_view v = {
		.version = STRATAD_VERSION,
		.start_time_s = a->start_time_s,
		.ready = a->ready,
		.conns = a->net ? net_server_conns(a->net) : 0,
		.conns_max = a->conns_cap,
		.conns_refused = a->net ? net_server_refused(a->net) : 0,
		.out_pending = a->net ? net_server_out_pending(a->net) : 0,
		.out_cap = a->cfg.max_output_buffer,
	};

	struct metrics *m;
	struct anscache_stats as;
	struct audit_stats aus;
	int rc;

	if (a->store && !a->stopping && store_stats(a->store, &v.st) == 0)
		v.have_store = true;
	if (a->audit) {
		audit_stats(a->audit, &aus);
		v.have_audit = true;
		v.audit_records = aus.records;
		v.audit_bytes = aus.bytes;
		v.audit_errors = aus.errors;
		v.audit_dropped = aus.dropped;
		v.audit_seq = aus.seq;
	}
	if (!a->ans)
		return metrics_render(&a->metrics, &v, body, len);
	/* The GETs answered on the I/O loops count as GETs. */
	m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	*m = a->metrics;
	anscache_fold(a->ans, &m->op[PROTO_OP_GET], &m->bytes_sent);
	anscache_stats(a->ans, &as);
	v.have_ans = true;
	v.ans_budget = as.budget;
	v.ans_bytes = as.bytes;
	v.ans_entries = as.entries;
	v.ans_hits = as.hits;
	v.ans_misses = as.misses;
	v.ans_fills = as.fills;
	rc = metrics_render(m, &v, body, len);
	free(m);
	return rc;
}

static bool admin_ready(void *arg)
{
	struct app *a = arg;

	return a->ready && a->store && a->net && !a->stopping;
}

/* The state and tier directories are usable (each problem logged). */
static int check_dirs(struct app *a)
{
	char err[4096];
	int rc = config_check_dirs(&a->cfg, err, sizeof(err));

	for (char *line = err, *nl; rc && line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = 0;
		log_err("config", "%s", line);
	}
	return rc;
}

static int open_store(struct app *a)
{
	const char *dirs[STORE_TIERS][STORE_MAX_TIER_DIRS];
	const char *const *dirp[STORE_TIERS];
	char index_dir[CONFIG_PATH_MAX + 16];
	struct store_opts so;
	int rc;

	rc = mkdir_p(a->cfg.state_dir);
	if (rc) {
		log_err("main", "state directory %s: %s", a->cfg.state_dir,
			strerror(-rc));
		return rc;
	}
	snprintf(index_dir, sizeof(index_dir), "%s/index", a->cfg.state_dir);
	for (int t = 0; t < STORE_TIERS; t++) {
		for (unsigned d = 0; d < a->cfg.ntier_dirs[t]; d++)
			dirs[t][d] = a->cfg.tier_dirs[t][d];
		dirp[t] = dirs[t];
	}
	config_store_opts(&a->cfg, &so, index_dir, dirp);
	rc = store_open(a->loop, &so, &a->store);
	if (rc)
		log_err("main", "cannot open the store: %s", strata_strerror(rc));
	return rc;
}

static void key_store_closed(void *arg)
{
	struct app *a = arg;

	a->store = NULL;
}

/*
 * stratad --new-admin-key: for an operator who lost the only admin key's
 * file.  The node must be stopped (the index is locked while it runs);
 * the new key goes into the store and STATE_DIR/admin.key, as at a first
 * start.  Exit status 0 or 1.
 */
static int new_admin_key(struct app *a)
{
	int rc;

	log_set_level(a->cfg.log_level);
	a->loop = uv_default_loop();
	rc = check_dirs(a);
	if (!rc)
		rc = open_store(a);
	if (!rc)
		rc = bootstrap_admin_key(a, true);
	if (a->store) {
		store_close(a->store, key_store_closed, a);
		uv_run(a->loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(a->loop);
	return rc ? 1 : 0;
}

static int start(struct app *a)
{
	struct server_opts sv = { 0 };
	struct net_callbacks cbs = { 0 };
	struct net_limits lim;
	int threads;
	int rc;

	/* Everything that can be checked is, before anything is written:
	 * the directories, then the certificate and key. */
	rc = check_dirs(a);
	if (rc)
		return rc;
	rc = tls_ctx_new_server(a->cfg.tls_cert, a->cfg.tls_key,
				a->cfg.tls_client_ca[0] ? a->cfg.tls_client_ca
							: NULL, &a->tls);
	if (rc) {
		log_err("main", "TLS: %s", strata_strerror(rc));
		return rc;
	}
	raise_nofile();
	rc = open_store(a);
	if (rc)
		return rc;
	rc = bootstrap_admin_key(a, false);
	if (rc)
		return rc;
	a->fds_base = fds_open();
	sv.node_id = a->cfg.node_id;
	sv.owner = a;
	sv.metrics = &a->metrics;
	sv.access_log = a->cfg.log_access;
	sv.body_timeout_ms = a->cfg.body_timeout_ms;
	sv.auth_timeout_ms = a->cfg.auth_timeout_ms;
	/* With an audit log every request goes through the engine's loop
	 * and is recorded: no answers from the I/O loops. */
	if (a->cfg.answer_cache_size && !a->cfg.audit_path[0]) {
		rc = anscache_new((size_t)a->cfg.answer_cache_size, a->store,
				  &a->ans);
		if (rc)
			return rc;
	}
	sv.ans = a->ans;
	if (a->cfg.audit_path[0]) {
		/* audit_open says why it fails, and where the chain goes
		 * on. */
		rc = audit_open(a->loop, a->cfg.audit_path, a->cfg.audit_sync_ms,
				&a->audit);
		if (rc)
			return rc;
	}
	sv.audit = a->audit;
	rc = server_new(a->loop, a->store, &sv, &a->srv);
	if (rc)
		return rc;
	server_net_callbacks(&cbs);
	rc = net_listen(a->loop, a->cfg.listen_host, a->cfg.listen_port,
			a->tls, &cbs, a->srv, &a->net);
	if (rc) {
		log_err("main", "cannot listen on %s:%d: %s", a->cfg.listen_host,
			a->cfg.listen_port, strerror(-rc));
		return rc;
	}
	net_limits_default(&lim);
	a->conns_cap = lim.max_conns = conn_cap(a, a->cfg.max_connections);
	lim.out_total_cap = (size_t)a->cfg.max_output_buffer;
	lim.send_timeout_ms = a->cfg.send_timeout_ms;
	net_server_set_limits(a->net, &lim);
	/* Sockets and TLS on one I/O loop per core; the store and request
	 * dispatch stay on this loop. */
	threads = a->cfg.io_threads;
	if (threads < 0) {
		/* On one or two cores the hop between loops (a wake-up
		 * each way per request) costs more than the second core
		 * gives: measured with the client on the same 2 cores, 4 KiB
		 * GETs 77k req/s with 2 threads vs 84k with none, 64 MiB
		 * GETs 1.75 vs 1.72 GB/s (README, Serving). */
		threads = (int)uv_available_parallelism();
		if (threads <= 2)
			threads = 0;
		if (threads > IO_THREADS_AUTO_MAX)
			threads = IO_THREADS_AUTO_MAX;
	}
	/* Each loop's sends go out in one io_uring_enter per iteration. */
	net_server_set_uring(a->net, a->cfg.io_uring_sends);
	rc = net_server_set_threads(a->net, (unsigned)threads);
	if (rc && rc != -EAGAIN) {
		log_err("main", "starting I/O threads: %s", strerror(-rc));
		return rc;
	}
	if (a->cfg.admin_host[0]) {
		struct admin_limits al = {
			.max_conns = a->cfg.admin_max_connections,
			.timeout_ms = a->cfg.admin_timeout_ms,
		};
		struct admin_handlers ah = { .metrics = admin_metrics,
					     .ready = admin_ready };

		rc = admin_listen(a->loop, a->cfg.admin_host, a->cfg.admin_port,
				  &al, &ah, a, &a->metrics, &a->admin);
		if (rc) {
			log_err("main", "cannot listen on %s:%d (admin): %s",
				a->cfg.admin_host, a->cfg.admin_port,
				strerror(-rc));
			return rc;
		}
		log_info("main", "admin port (metrics, health) on %s:%d",
			 a->cfg.admin_host, admin_port(a->admin));
	}
	log_info("main", "stratad %s serving on %s:%d (node %u)",
		 STRATAD_VERSION, a->cfg.listen_host, net_server_port(a->net),
		 a->cfg.node_id);
	a->ready = true;
	notify_ready("serving");
	notify_status("serving on %s:%d", a->cfg.listen_host,
		      net_server_port(a->net));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "new-admin-key", no_argument, NULL, 'K' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct app a = { .config_path = "/etc/strata/stratad.conf" };
	bool check = false, version = false, help = false, new_key = false;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': a.config_path = optarg; break;
		case 'C': check = true; break;
		case 'K': new_key = true; break;
		case 'V': version = true; break;
		case 'h': help = true; break;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "stratad: unexpected argument '%s' (the "
			"configuration file goes after -c)\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (help) {
		usage(stdout);
		return 0;
	}
	if (version) {
		printf("stratad %s\n", STRATAD_VERSION);
		return 0;
	}
	if (!*a.config_path) {
		fputs("stratad: -c wants a file name\n", stderr);
		return 2;
	}
	if (check && new_key) {
		fputs("stratad: --check-config and --new-admin-key exclude "
		      "each other\n", stderr);
		return 2;
	}
	if (load_config(&a.cfg, a.config_path, false))
		return 1;
	if (new_key)
		return new_admin_key(&a);
	if (check) {
		printf("%s: ok\n", a.config_path);
		return 0;
	}
	log_set_level(a.cfg.log_level);
	metrics_init(&a.metrics);
	a.start_time_s = (uint64_t)time(NULL);
	a.loop = uv_default_loop();
	if (notify_init(&a.notify, a.loop))
		return 1;
	for (int i = 0; i < 3; i++) {
		static const int sigs[3] = { SIGTERM, SIGINT, SIGHUP };

		uv_signal_init(a.loop, &a.sig[i]);
		a.sig[i].data = &a;
		uv_signal_start(&a.sig[i], on_signal, sigs[i]);
	}
	uv_timer_init(a.loop, &a.drain_timer);
	a.drain_timer.data = &a;
	signal(SIGPIPE, SIG_IGN);
	/* Chunk and TLS buffers of 1-16 MiB come and go by the thousand: as
	 * mmap()s (glibc's default from 128 KiB) each one costs page faults
	 * and zeroing on first touch, a tenth of the CPU of serving cached
	 * data.  Keep them in the heap, reused, and give memory back only
	 * past 64 MiB free at its top. */
	mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_MAX_BYTES);
	mallopt(M_TRIM_THRESHOLD, MALLOC_KEEP_FREE_BYTES);
	uv_timer_init(a.loop, &a.trim_timer);
	a.trim_timer.data = &a;
	uv_timer_start(&a.trim_timer, trim_tick, TRIM_TICK_MS, TRIM_TICK_MS);
	uv_unref((uv_handle_t *)&a.trim_timer);
	rc = start(&a);
	if (rc) {
		a.exit_code = 1;
		stop(&a, "start-up failed");
	}
	uv_run(a.loop, UV_RUN_DEFAULT);
	if (a.tls)
		tls_ctx_free(a.tls);
	uv_loop_close(a.loop);
	if (!a.exit_code)
		log_info("main", "stopped cleanly");
	return a.exit_code;
}
