// SPDX-License-Identifier: Apache-2.0
/*
 * stratad: read the config, open the store, listen with TLS, serve.
 *
 *   start: config -> store_open -> admin key (first start) -> TLS context
 *          -> net_listen -> serve
 *   SIGTERM/SIGINT: stop accepting, close connections gracefully (puts
 *          not yet committed are aborted, nothing half-visible), close the
 *          store (waits for in-flight commits), exit 0
 *   SIGHUP: reload the TLS certificate and key for new connections
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "keys.h"
#include "log.h"
#include "meta.h"
#include "net.h"
#include "server.h"
#include "store.h"
#include "tls.h"
#include "strata/error.h"
#include "banned.h"

#define STRATAD_VERSION "0.1.0"

struct app {
	uv_loop_t *loop;
	struct config cfg;
	const char *config_path;
	struct store *store;
	struct server *srv;
	struct net_server *net;
	struct tls_ctx *tls;
	uv_signal_t sig[3];
	bool stopping;
	int exit_code;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: stratad [-c FILE] [--check-config] [--version]\n"
		"  -c, --config FILE   configuration (default /etc/strata/stratad.conf)\n"
		"      --check-config  check the configuration and exit (0: valid)\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          this text\n"
		"See stratad(8) and stratad.conf(5).\n");
}

/*
 * First start: no access key exists, so make an admin key and leave it in
 * a 0600 file in the state directory for the operator to pick up.
 */
static int bootstrap_admin_key(struct app *a)
{
	char path[CONFIG_PATH_MAX + 32], text[256];
	char id[STORE_AKEY_ID_LEN + 1], secret[STORE_AKEY_SECRET_LEN + 1];
	char **ids;
	size_t n;
	int fd, len, rc;

	rc = store_access_key_list(a->store, &ids, NULL, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	if (n)
		return 0;
	snprintf(path, sizeof(path), "%s/admin.key", a->cfg.state_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		log_err("main", "cannot create %s: %s", path, strerror(-rc));
		return rc;
	}
	rc = store_access_key_generate(a->store, META_AKEY_ADMIN, id, secret);
	if (rc) {
		close(fd);
		unlink(path);
		return rc;
	}
	len = snprintf(text, sizeof(text),
		       "# stratad admin access key; keep this file 0600\n"
		       "access_key = %s\nsecret_key = %s\n", id, secret);
	keys_wipe(secret, sizeof(secret));
	if (write(fd, text, (size_t)len) != len || fsync(fd) < 0) {
		rc = -errno;
		close(fd);
		unlink(path);
		/* Without its file nobody can use the key: take it back. */
		store_access_key_delete(a->store, id);
		log_err("main", "cannot write %s: %s", path, strerror(-rc));
		return rc;
	}
	keys_wipe(text, sizeof(text));
	close(fd);
	log_info("main", "created the admin access key %s; its secret is in %s",
		 id, path);
	return 0;
}

static void store_closed(void *arg)
{
	struct app *a = arg;

	a->store = NULL;
	for (int i = 0; i < 3; i++)
		uv_close((uv_handle_t *)&a->sig[i], NULL);
}

/* net_server_close's callback: arg is net_listen's, the server. */
static void net_closed(void *arg)
{
	struct app *a = server_owner(arg);

	a->net = NULL;
	log_info("main", "connections closed; syncing the store");
	if (a->srv)
		server_free(a->srv);
	a->srv = NULL;
	if (a->store)
		store_close(a->store, store_closed, a);
	else
		store_closed(a);
}

static void stop(struct app *a, const char *why)
{
	if (a->stopping)
		return;
	a->stopping = true;
	log_info("main", "%s: stopping (no new connections; draining)", why);
	if (a->net) {
		net_server_close(a->net, net_closed);
		return;
	}
	if (a->srv)
		server_free(a->srv);
	a->srv = NULL;
	if (a->store)
		store_close(a->store, store_closed, a);
	else
		store_closed(a);
}

static void reload_tls(struct app *a)
{
	struct tls_ctx *t;
	const char *ca = a->cfg.tls_client_ca[0] ? a->cfg.tls_client_ca : NULL;
	int rc;

	rc = tls_ctx_new_server(a->cfg.tls_cert, a->cfg.tls_key, ca, &t);
	if (rc) {
		log_err("main", "SIGHUP: keeping the old TLS certificate: %s",
			strata_strerror(rc));
		return;
	}
	net_server_set_tls(a->net, t);
	tls_ctx_free(a->tls);
	a->tls = t;
	log_info("main", "SIGHUP: reloaded the TLS certificate and key");
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct app *a = h->data;

	if (signum == SIGHUP && !a->stopping && a->net)
		reload_tls(a);
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

static int start(struct app *a)
{
	const char *dirs[STORE_TIERS][STORE_MAX_TIER_DIRS];
	const char *const *dirp[STORE_TIERS];
	char index_dir[CONFIG_PATH_MAX + 16];
	struct store_opts so;
	struct server_opts sv = { 0 };
	struct net_callbacks cbs = { 0 };
	struct net_limits lim;
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
	if (rc) {
		log_err("main", "cannot open the store: %s", strata_strerror(rc));
		return rc;
	}
	rc = bootstrap_admin_key(a);
	if (rc)
		return rc;
	rc = tls_ctx_new_server(a->cfg.tls_cert, a->cfg.tls_key,
				a->cfg.tls_client_ca[0] ? a->cfg.tls_client_ca
							: NULL, &a->tls);
	if (rc) {
		log_err("main", "TLS: %s", strata_strerror(rc));
		return rc;
	}
	sv.node_id = a->cfg.node_id;
	sv.owner = a;
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
	lim.max_conns = a->cfg.max_connections;
	net_server_set_limits(a->net, &lim);
	log_info("main", "stratad %s serving on %s:%d (node %u)",
		 STRATAD_VERSION, a->cfg.listen_host, net_server_port(a->net),
		 a->cfg.node_id);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct app a = { .config_path = "/etc/strata/stratad.conf" };
	bool check = false;
	char err[1024];
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': a.config_path = optarg; break;
		case 'C': check = true; break;
		case 'V': printf("stratad %s\n", STRATAD_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	config_defaults(&a.cfg);
	rc = config_load(&a.cfg, a.config_path, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "stratad: %s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", a.config_path);
		return 0;
	}
	log_set_level(a.cfg.log_level);
	a.loop = uv_default_loop();
	for (int i = 0; i < 3; i++) {
		static const int sigs[3] = { SIGTERM, SIGINT, SIGHUP };

		uv_signal_init(a.loop, &a.sig[i]);
		a.sig[i].data = &a;
		uv_signal_start(&a.sig[i], on_signal, sigs[i]);
	}
	signal(SIGPIPE, SIG_IGN);
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
