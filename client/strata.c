// SPDX-License-Identifier: Apache-2.0
/*
 * strata: the command-line client (mb, rb, ls, cp, sync, rm, cat, stat).
 *
 * Everything goes through the public libstrata API; transfers run on
 * --jobs worker threads that share one strata_client (its pool holds
 * 2 x jobs connections, as a remote-to-remote copy uses two at once).
 *
 * Exit status: 0 success; 1 an operation failed (any file of a transfer);
 * 2 usage or configuration error (bad arguments or URL, no endpoint or
 * key, an unreadable CA file).
 *
 * sync compares, for every file that exists on both sides with the same
 * size, the object's etag with one computed from the local file the way
 * the engine computes it: SHA-256 of the bytes for a one-chunk object,
 * SHA-256 of the chunks' SHA-256s for several (chunk size from STAT).
 * That is exact (no clock skew, no trust in mtimes) at the cost of
 * reading each same-size local file once.  sync copies; it never deletes.
 *
 * Downloads are written to a temporary file beside the target and renamed
 * over it when whole, so an interrupted copy never leaves a torn file; the
 * temporary files of downloads in progress are unlinked on SIGINT, SIGTERM
 * and SIGHUP (live_tmp[], the one mutable global: a signal handler has no
 * other way to them), and tree uploads skip such names.  A target that is
 * not a regular file (/dev/null, a FIFO) is written in place.
 *
 * Standard input, output and error are always open (main() puts /dev/null
 * on a closed one), so no socket ever becomes one of them.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "args.h"
#include "audit_format.h"
#include "strata/strata.h"
#include "banned.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define MAX_JOBS 256
#define MIN_CHUNK (64u * 1024)	/* smaller objects are always one chunk */

struct opts {
	const char *endpoint, *access_key, *secret_key, *ca;
	bool quiet, json, recursive, help, admin;
	unsigned jobs;
	/* admin key create/set: --policy FILE, --no-policy, --attr N=V...,
	 * --no-attrs */
	const char *policy_file;
	bool no_policy, no_attrs;
	const char *attrs[2 * 64];
	size_t nattrs;
	const char *content_type;
	const char *range;
	bool version;
	/* Closed when we started: reading or writing them is an error. */
	bool stdin_closed, stdout_closed;
	mode_t umask;		/* the process's, for new files */
};

/* ---- Help --------------------------------------------------------------- */

static const char usage_text[] =
"usage: strata [options] <command> [command options] [arguments]\n"
"\n"
"Commands:\n"
"  mb strata://BUCKET               make a bucket\n"
"  rb strata://BUCKET               remove an empty bucket\n"
"  ls [strata://BUCKET[/PREFIX]]    list buckets, or the objects and\n"
"                                   prefixes under PREFIX\n"
"  cp SRC DST                       copy local->remote, remote->local or\n"
"                                   remote->remote\n"
"  sync SRC DST                     copy only what differs (size or etag)\n"
"  rm strata://BUCKET/KEY           delete an object (-r: every object\n"
"                                   under a prefix)\n"
"  cat strata://BUCKET/KEY          write an object to standard output\n"
"  stat strata://BUCKET/KEY         show an object's version and chunks\n"
"  lifecycle set|get|rm strata://BUCKET[/PREFIX] ...\n"
"                                   rules that move or expire old objects\n"
"  admin key create|list|delete|set|show\n"
"                                   manage access keys and their policies\n"
"  admin tiers                      tier usage, mover and cache counters\n"
"  admin audit verify FILE          check an audit log's hash chain\n"
"\n"
"Options (anywhere on the line; they override the environment and the\n"
"config file):\n"
"  --endpoint HOST:PORT   server (STRATA_ENDPOINT, config: endpoint)\n"
"  --access-key ID        access key id (STRATA_ACCESS_KEY, access_key)\n"
"  --secret-key SECRET    its secret (STRATA_SECRET_KEY, secret_key)\n"
"  --ca FILE              CA bundle to verify the server (STRATA_CA, ca)\n"
"  -q, --quiet            no progress bar or summary\n"
"  --json                 machine-readable output (ls, stat, cp/sync/rm\n"
"                         summaries): one JSON object per line\n"
"  -h, --help             this text; 'strata COMMAND --help' for one\n"
"  --version              print the version\n"
"\n"
"The config file is $STRATA_CONFIG, else $XDG_CONFIG_HOME/strata/config,\n"
"else ~/.config/strata/config, with lines 'key = value'.  A progress bar\n"
"with rate and ETA is drawn on standard error when it is a terminal.\n"
"\n"
"Exit status: 0 success, 1 an operation failed, 2 usage or configuration\n"
"error.\n";

struct cmd_help {
	const char *name;
	const char *text;
};

static const struct cmd_help cmd_helps[] = {
	{ "mb", "usage: strata mb strata://BUCKET\n"
		"Create a bucket (3-63 characters of a-z, 0-9, '.', '-').\n" },
	{ "rb", "usage: strata rb strata://BUCKET\n"
		"Delete a bucket; it must be empty (see 'strata rm -r').\n" },
	{ "ls", "usage: strata ls [-r] [--json] [strata://BUCKET[/PREFIX]]\n"
		"Without an argument, list buckets.  Otherwise list the keys\n"
		"starting with PREFIX, rolled up at the next '/' into\n"
		"prefixes (shown as PRE), or every key with -r.\n" },
	{ "cp", "usage: strata cp [-r] [--jobs N] [--content-type T] [--json]"
		" SRC DST\n"
		"  local file -> strata://B/KEY (KEY ending in '/' or empty:\n"
		"      the file's name is appended); '-' reads standard input\n"
		"      (then KEY is required)\n"
		"  strata://B/KEY -> local file or directory; '-' is stdout;\n"
		"      a device or FIFO is written in place, a symlink's\n"
		"      target file replaced\n"
		"  strata://B/KEY -> strata://B2/KEY2\n"
		"  -r: copy a tree: a local directory to the prefix DST (keys\n"
		"      are DST + the path below SRC; names ending in\n"
		"      .strata-XXXXXX, partial downloads, are skipped), or\n"
		"      every key under a prefix to a directory or another\n"
		"      prefix\n"
		"  --jobs N: N transfers at once (default 4)\n" },
	{ "sync", "usage: strata sync [--jobs N] [--json] SRC DST\n"
		"Copy the files of a local directory to a prefix (or the\n"
		"objects under a prefix to a directory) that are missing on\n"
		"the other side or differ in size or etag.  The local etag is\n"
		"computed as the server does: SHA-256 of the file for a\n"
		"one-chunk object, SHA-256 of the chunks' SHA-256s for a\n"
		"larger one (chunk size from STAT).  Nothing is deleted.\n" },
	{ "rm", "usage: strata rm [-r] [--jobs N] strata://BUCKET/KEY\n"
		"Delete an object; with -r every object under the prefix.\n"
		"Deleting a key that does not exist is an error (exit 1).\n" },
	{ "cat", "usage: strata cat [--range START-[END]] strata://BUCKET/KEY\n"
		"Write an object, or bytes START..END (inclusive) of it, to\n"
		"standard output.  A START at or past the end of a non-empty\n"
		"object is an error (exit 1).\n" },
	{ "stat", "usage: strata stat [--json] strata://BUCKET/KEY\n"
		"Show size, etag, version, metadata, tags and every chunk's\n"
		"tier and raw/stored size.\n" },
	{ "lifecycle", "usage: strata lifecycle set strata://BUCKET/[PREFIX] cold|delete AGE\n"
		"       strata lifecycle get [--json] strata://BUCKET\n"
		"       strata lifecycle rm strata://BUCKET[/PREFIX]\n"
		"Objects under PREFIX whose last write is older than AGE\n"
		"(a number with s, m, h or d; seconds without) go to the cold\n"
		"tier (cold) or are deleted (delete).  set adds the rule, or\n"
		"replaces the one with the same prefix and action; rm removes\n"
		"the rules for PREFIX, or all of them.  The node applies rules\n"
		"every [tiers] lifecycle_interval.\n" },
	{ "admin", "usage: strata admin key create [--admin] [--policy FILE] [--attr NAME=VALUE]...\n"
		"       strata admin key set ACCESS_KEY_ID [--policy FILE | --no-policy]\n"
		"                            [--attr NAME=VALUE... | --no-attrs]\n"
		"       strata admin key show [--json] [ACCESS_KEY_ID]\n"
		"       strata admin key list\n"
		"       strata admin key delete ACCESS_KEY_ID\n"
		"       strata admin tiers [--json]\n"
		"       strata admin audit verify FILE\n"
		"Manage access keys; the caller's key must be an admin key.\n"
		"create prints the new key as config-file lines (access_key =,\n"
		"secret_key =): the secret is shown only this once.  --admin\n"
		"makes a key that may manage keys and do everything.  Other\n"
		"keys may do only what their access policy allows (a JSON\n"
		"document, see strata-policy(7); FILE - reads it from standard\n"
		"input); a key with no policy may do nothing.  --attr gives the\n"
		"key attributes that policies' conditions can test.  set\n"
		"replaces a key's policy and/or attributes (every --attr\n"
		"together replace them all); show prints a key's policy and\n"
		"attributes (your own key's without an admin key).  The last\n"
		"admin key cannot be deleted.\n"
		"tiers shows each tier's usage, capacity and watermarks, the\n"
		"bytes the mover moved, prestaging and the cache hit ratio.\n"
		"audit verify reads a node's audit log file ([audit] path) and\n"
		"checks every record's hash and its chain to the one before:\n"
		"an edited, removed or inserted record is reported with its\n"
		"line (needs no node and no key).\n" },
};

static void die_usage(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("strata: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'strata --help'.\n", stderr);
	exit(EXIT_USAGE);
}

/* ---- Small helpers ------------------------------------------------------ */

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p) {
		fputs("strata: out of memory\n", stderr);
		exit(EXIT_FAILED);
	}
	return p;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fputs("strata: out of memory\n", stderr);
		exit(EXIT_FAILED);
	}
	return s;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void human(uint64_t n, char *out, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
					     "PiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%" PRIu64 " B", n);
	else
		snprintf(out, len, "%.1f %s", v, units[u]);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/*
 * A name or key from the node for people: control bytes as \n, \t or \xNN
 * and '\\' doubled (as ls -b does), so that a key cannot split a line or
 * reach the terminal as an escape sequence.  UTF-8 passes through.
 */
static void text_out(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\\')
			fputs("\\\\", f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void fmt_time(uint64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!ms || !localtime_r(&t, &tm))
		snprintf(out, len, "-");
	else
		strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* A "strata://bucket/key" URL; key may be empty. */
struct url {
	char *bucket;
	char *key;
};

static bool is_remote(const char *s)
{
	return !strncmp(s, "strata://", 9);
}

static void parse_url(const char *s, struct url *u)
{
	int rc = args_url(s, &u->bucket, &u->key);

	if (rc == -EINVAL)
		die_usage("not a strata://BUCKET[/KEY] URL: %s", s);
	if (rc) {
		fputs("strata: out of memory\n", stderr);
		exit(EXIT_FAILED);
	}
	/* A bucket name the node refuses comes back as STRATA_EBADBUCKET,
	 * a usage error (fail()): the rule lives in one place. */
}

/* The key of a URL that must name an object. */
static void parse_object_url(const char *s, struct url *u)
{
	parse_url(s, u);
	if (!*u->key)
		die_usage("no key in %s (strata://BUCKET/KEY)", s);
}

static void url_free(struct url *u)
{
	free(u->bucket);
	free(u->key);
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static bool is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p of path's parent directories. */
static int make_parents(const char *path)
{
	char *p = xstrdup(path);
	int rc = 0;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0777) != 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = '/';
	}
	free(p);
	return rc;
}

/* A key's path below a prefix is safe to create locally: relative, no
 * "." or ".." component, no empty component. */
static bool safe_relpath(const char *rel)
{
	const char *p = rel;

	if (!*rel || *rel == '/')
		return false;
	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);

		if (!n || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p = *e ? e + 1 : e;
	}
	return true;
}

/* mkostemp()'s template for a download's temporary file. */
#define TMP_SUFFIX ".strata-XXXXXX"

/* A name made from TMP_SUFFIX: a download in progress, never uploaded. */
static bool is_tmp_name(const char *name)
{
	size_t n = strlen(name), sl = sizeof(TMP_SUFFIX) - 1;
	const char *x = name + n - 6;

	if (n <= sl || strncmp(name + n - sl, TMP_SUFFIX, sl - 6))
		return false;
	for (int i = 0; i < 6; i++)
		if (!isalnum((unsigned char)x[i]))
			return false;
	return true;
}

/*
 * The temporary files of downloads in progress, one slot per worker at
 * most, for on_fatal_signal() to unlink.  A worker fills a slot after
 * mkostemp() and empties it once the file is renamed or unlinked; the
 * strings are freed only after every worker has been joined, so the
 * handler never reads freed memory (an emptied slot it read late names a
 * file that is gone: unlink() fails, harmlessly).
 */
static _Atomic(const char *) live_tmp[MAX_JOBS];

static void tmp_track(const char *path, bool on)
{
	for (size_t i = 0; i < MAX_JOBS; i++) {
		const char *want = on ? NULL : path;

		if (atomic_compare_exchange_strong(&live_tmp[i], &want,
						   on ? path : NULL))
			return;
	}
}

/* SIGINT, SIGTERM, SIGHUP: remove partial downloads, then die of sig
 * (SA_RESETHAND restored the default action; raise() delivers it when
 * the handler returns), so the parent sees how we ended. */
static void on_fatal_signal(int sig)
{
	int saved = errno;

	for (size_t i = 0; i < MAX_JOBS; i++) {
		const char *p = atomic_load(&live_tmp[i]);

		if (p)
			unlink(p);
	}
	raise(sig);
	errno = saved;
}

static void catch_fatal_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = on_fatal_signal,
				.sa_flags = SA_RESETHAND };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&sa.sa_mask, sigs[i]);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old;

		/* A signal ignored by whoever started us (nohup, a
		 * background job) stays ignored. */
		if (sigaction(sigs[i], NULL, &old) == 0 &&
		    old.sa_handler != SIG_IGN)
			sigaction(sigs[i], &sa, NULL);
	}
}

/* ---- Progress ----------------------------------------------------------- */

struct progress {
	bool on;
	atomic_uint_fast64_t bytes;
	uint64_t total;
	atomic_uint files;
	unsigned nfiles;
	double start;
	atomic_bool stop;
	pthread_t thr;
};

static void progress_draw(struct progress *p, bool final)
{
	uint64_t b = atomic_load(&p->bytes);
	double el = now_s() - p->start;
	double rate = el > 0 ? b / el : 0;
	char done[32], tot[32], rs[32], eta[32] = "--:--";

	human(b, done, sizeof(done));
	human(p->total, tot, sizeof(tot));
	human((uint64_t)rate, rs, sizeof(rs));
	if (rate > 0 && p->total > b) {
		unsigned s = (unsigned)((double)(p->total - b) / rate);

		snprintf(eta, sizeof(eta), "%u:%02u", s / 60, s % 60);
	} else if (p->total <= b) {
		snprintf(eta, sizeof(eta), "0:00");
	}
	fprintf(stderr, "\r\033[K%s / %s (%3u%%)  %s/s  ETA %s  [%u/%u files]",
		done, tot, p->total ? (unsigned)(100 * b / p->total) : 100,
		rs, eta, atomic_load(&p->files), p->nfiles);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
}

static void *progress_main(void *arg)
{
	struct progress *p = arg;

	while (!atomic_load(&p->stop)) {
		struct timespec ts = { 0, 250 * 1000 * 1000 };

		progress_draw(p, false);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void progress_start(struct progress *p, const struct opts *o,
			   uint64_t total, unsigned nfiles)
{
	p->on = !o->quiet && isatty(STDERR_FILENO);
	p->total = total;
	p->nfiles = nfiles;
	p->start = now_s();
	if (p->on && pthread_create(&p->thr, NULL, progress_main, p) != 0)
		p->on = false;
}

static void progress_end(struct progress *p)
{
	if (!p->on)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->thr, NULL);
	progress_draw(p, true);
}

/* ---- Transfers ----------------------------------------------------------- */

enum task_kind { T_UP, T_DOWN, T_COPY, T_DELETE };

struct task {
	enum task_kind kind;
	char *local;		/* T_UP source, T_DOWN target */
	char *bucket, *key;	/* the object (T_COPY: the source) */
	char *dbucket, *dkey;	/* T_COPY target */
	char *tmp;		/* T_DOWN: its temporary file (live_tmp) */
	uint64_t size;
	int rc;
	const char *why;	/* static; said after rc's text, or NULL */
	char msg[256];		/* the node's words on rc, or "" */
	bool msg_only;		/* msg says it all, without rc's text */
};

struct xfer {
	strata_client *c;
	const struct opts *o;
	struct task *t;
	size_t n, cap;
	atomic_size_t next;
	struct progress prog;
	pthread_mutex_t out_lock;	/* error lines from workers */
	unsigned plan_failed;	/* local files that could not be planned */
};

static struct task *task_add(struct xfer *x, enum task_kind kind)
{
	if (x->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 64;
		x->t = realloc(x->t, x->cap * sizeof(*x->t));
		if (!x->t)
			exit(EXIT_FAILED);
	}
	memset(&x->t[x->n], 0, sizeof(x->t[0]));
	x->t[x->n].kind = kind;
	return &x->t[x->n++];
}

struct up_src {
	int fd;
	struct progress *p;
	uint64_t n;		/* bytes read so far */
	/* A regular file sent at its size: what fstat() said when the
	 * upload began (else NULL), the bytes from where it is read to that
	 * size, and what fstat() says now if the file is no longer that. */
	const struct stat *was;
	uint64_t len;
	struct stat now;
	bool changed;		/* resized or written meanwhile */
	bool unsized;		/* ended early, yet unchanged: /sys */
};

/* A regular file changed since fstat() gave u->was: resized, or written
 * (a new mtime) even at the same size. */
static bool up_changed(struct up_src *u)
{
	if (fstat(u->fd, &u->now) != 0) {
		u->now = *u->was;
		return false;
	}
	return u->now.st_size != u->was->st_size ||
	       u->now.st_mtim.tv_sec != u->was->st_mtim.tv_sec ||
	       u->now.st_mtim.tv_nsec != u->was->st_mtim.tv_nsec;
}

/*
 * The put is declared at a regular file's size, and libstrata asks for no
 * more.  A file that shrank (an early end) or changed otherwise by the
 * time its last byte is read fails the put before its end is sent, so the
 * node stores nothing: what is stored is the file as it was, never a mix
 * of two states cut at the size first seen.
 */
static ssize_t up_read(void *arg, void *buf, size_t cap)
{
	struct up_src *u = arg;
	ssize_t n;

	do
		n = read(u->fd, buf, cap);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	atomic_fetch_add(&u->p->bytes, (uint64_t)n);
	u->n += (uint64_t)n;
	if (!u->was || (n && u->n < u->len))
		return n;
	/* Its end, or the end of what it was: is it still that? */
	if (up_changed(u)) {
		u->changed = true;
		return -ESTALE;
	}
	if (!n) {
		u->unsized = true;
		return -ESTALE;
	}
	return n;
}

struct down_dst {
	int fd;
	struct progress *p;
};

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int down_write(void *arg, const void *buf, size_t len)
{
	struct down_dst *d = arg;
	int rc = write_all(d->fd, buf, len);

	if (!rc)
		atomic_fetch_add(&d->p->bytes, len);
	return rc;
}

static bool retryable(int rc)
{
	return rc == -ECONNRESET || rc == -EPIPE || rc == -ETIMEDOUT;
}

/* A libstrata call's rc, with the node's words on it kept for task_fail()
 * (they last only until this thread's next call). */
static int lib_rc(struct task *t, int rc)
{
	if (rc)
		snprintf(t->msg, sizeof(t->msg), "%s", strata_error_message());
	return rc;
}

static int do_upload(struct xfer *x, struct task *t)
{
	struct strata_put_opts po = { .content_type = x->o->content_type };
	struct up_src u = { .fd = -1, .p = &x->prog };
	bool retried = false;
	struct stat st;
	off_t start = 0;
	int rc = 0;

	u.fd = strcmp(t->local, "-") ? open(t->local, O_RDONLY | O_CLOEXEC) :
	       STDIN_FILENO;
	if (u.fd < 0)
		return -errno;
	/* A regular file is sent at its size from where it is read (standard
	 * input may be part read); one whose size is 0 (/proc) is streamed,
	 * as it may well have bytes. */
	if (fstat(u.fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (start = lseek(u.fd, 0, SEEK_CUR)) >= 0 && st.st_size > start) {
		po.has_size = true;
		po.size = (uint64_t)(st.st_size - start);
		u.was = &st;
		u.len = po.size;
	}
	/* The library retries a broken connection itself only while nothing
	 * of a stream was read; a regular file we can rewind and send once
	 * more. */
	for (;;) {
		rc = lib_rc(t, strata_object_put(x->c, t->bucket, t->key, &po,
						 up_read, &u, NULL));
		if (rc == -ESTALE && u.unsized) {
			/* A /sys file: a page's size, fewer bytes.  Sent
			 * again as the stream it is. */
			po.has_size = false;
			u.was = NULL;
		} else if (!rc || !po.has_size || !retryable(rc) || retried) {
			break;
		} else {
			retried = true;
		}
		if (start < 0 || lseek(u.fd, start, SEEK_SET) != start)
			break;
		atomic_fetch_sub(&x->prog.bytes, u.n);
		u.n = 0;
	}
	if (rc && u.changed) {
		intmax_t was = (intmax_t)st.st_size;
		intmax_t now = (intmax_t)u.now.st_size;
		char how[96];

		if (now != was)
			snprintf(how, sizeof(how), "it %s from %jd to %jd "
				 "bytes", now < was ? "shrank" : "grew", was,
				 now);
		else
			snprintf(how, sizeof(how), "modified, still %jd bytes",
				 was);
		snprintf(t->msg, sizeof(t->msg), "the file changed while it "
			 "was being uploaded (%s); nothing was stored (the "
			 "object, if it existed, is as it was)", how);
		t->msg_only = true;
	}
	if (u.fd != STDIN_FILENO)
		close(u.fd);
	return rc;
}

/*
 * Write an object where it does not go through a temporary file: into a
 * device, FIFO or socket (or a link to one), or into standard output's own
 * file (/dev/stdout, /dev/fd/1) through standard output.  Such targets
 * cannot be rewound, so there is no retry.
 */
static int download_in_place(struct xfer *x, struct task *t, int fd)
{
	struct down_dst d = { fd, &x->prog };
	int rc;

	rc = lib_rc(t, strata_object_get(x->c, t->bucket, t->key, 0,
					 STRATA_TO_END, down_write, &d, NULL));
	if (fd != STDOUT_FILENO && close(fd) != 0 && !rc)
		rc = -errno;
	return rc;
}

/*
 * Where a download goes, by what t->local is now:
 *   missing or a regular file  a temporary file beside it, renamed over it
 *   a symlink to a regular     the same beside the link's target, which it
 *     file                     replaces (the link stays)
 *   a dangling symlink         refused: its target's name is not ours to
 *                              pick
 *   standard output's file     written through standard output
 *   anything else (/dev/null,  opened and written in place: renaming over
 *     a FIFO, a socket)        it would replace the device or FIFO
 */
static int do_download(struct xfer *x, struct task *t)
{
	struct down_dst d = { STDOUT_FILENO, &x->prog };
	struct stat st, lst, out;
	/* A new file's mode as open(2) would give it; a file replaced keeps
	 * its own. */
	mode_t mode = 0666 & ~x->o->umask;
	char *target = NULL;
	int rc;

	if (!strcmp(t->local, "-"))
		return lib_rc(t, strata_object_get(x->c, t->bucket, t->key, 0,
						   STRATA_TO_END, down_write,
						   &d, NULL));
	if (stat(t->local, &st) == 0) {
		if (!x->o->stdout_closed && fstat(STDOUT_FILENO, &out) == 0 &&
		    st.st_dev == out.st_dev && st.st_ino == out.st_ino)
			return download_in_place(x, t, STDOUT_FILENO);
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
			int fd = open(t->local, O_WRONLY | O_CLOEXEC);

			return fd < 0 ? -errno : download_in_place(x, t, fd);
		}
		if (S_ISREG(st.st_mode))
			mode = st.st_mode & 0777;
		if (lstat(t->local, &lst) == 0 && S_ISLNK(lst.st_mode)) {
			target = realpath(t->local, NULL);
			if (!target)
				return -errno;
		}
	} else if (errno == ENOENT && lstat(t->local, &lst) == 0) {
		t->why = "dangling symlink";
		return -ENOENT;
	}
	if (!target) {
		rc = make_parents(t->local);
		if (rc)
			return rc;
	}
	t->tmp = xasprintf("%s" TMP_SUFFIX, target ? target : t->local);
	d.fd = mkostemp(t->tmp, O_CLOEXEC);
	if (d.fd < 0) {
		rc = -errno;
		free(target);
		return rc;
	}
	tmp_track(t->tmp, true);
	for (int attempt = 0; attempt < 2; attempt++) {
		uint64_t before = atomic_load(&x->prog.bytes);

		rc = lib_rc(t, strata_object_get(x->c, t->bucket, t->key, 0,
						 STRATA_TO_END, down_write, &d,
						 NULL));
		if (!rc || !retryable(rc) || ftruncate(d.fd, 0) != 0 ||
		    lseek(d.fd, 0, SEEK_SET) != 0)
			break;
		atomic_store(&x->prog.bytes, before);
	}
	if (!rc && fchmod(d.fd, mode) != 0)
		rc = -errno;
	if (close(d.fd) != 0 && !rc)
		rc = -errno;
	if (!rc && rename(t->tmp, target ? target : t->local) != 0)
		rc = -errno;
	if (rc)
		unlink(t->tmp);
	tmp_track(t->tmp, false);
	free(target);
	return rc;
}

struct pipe_get {
	struct xfer *x;
	struct task *t;
	int fd;
	/* The version the put's metadata came from, and the one served. */
	uint64_t version;
	uint32_t writer;
	struct strata_get_result res;
	atomic_int rc;		/* set before fd is closed */
	char msg[256];		/* the node's words on rc */
};

static bool pipe_get_other(const struct pipe_get *g)
{
	return g->res.version != g->version || g->res.writer != g->writer;
}

/* res is filled before the first call: a get of another version than
 * the one stat()ed stops before a byte of it reaches the put. */
static int pipe_write(void *arg, const void *buf, size_t len)
{
	struct pipe_get *g = arg;

	return pipe_get_other(g) ? STRATA_ECHANGED :
	       write_all(g->fd, buf, len);
}

static void *copy_reader(void *arg)
{
	struct pipe_get *g = arg;
	int rc = strata_object_get(g->x->c, g->t->bucket, g->t->key, 0,
				   STRATA_TO_END, pipe_write, g, &g->res);

	/* An empty object has no bytes to check it on. */
	if (!rc && pipe_get_other(g))
		rc = STRATA_ECHANGED;
	if (rc && rc != STRATA_ECHANGED)
		snprintf(g->msg, sizeof(g->msg), "%s", strata_error_message());
	atomic_store(&g->rc, rc);
	close(g->fd);
	return NULL;
}

struct copy_src {
	struct up_src u;
	struct pipe_get *g;
};

/* The put's side of the pipe.  Its end is the get's end: a get that
 * failed fails the put instead of letting it store what came so far. */
static ssize_t copy_read(void *arg, void *buf, size_t cap)
{
	struct copy_src *s = arg;
	ssize_t n = up_read(&s->u, buf, cap);

	if (n == 0 && atomic_load(&s->g->rc))
		return atomic_load(&s->g->rc);
	return n;
}

/*
 * Remote to remote: a get into a pipe, a put out of it; both stream, so
 * nothing is held whole.  The put takes what the get gives, to its end:
 * the object may have been replaced by one of another size since the
 * stat, and a put of the stat's size would store a cut of the new one.
 * A get of another version than st's (whose metadata the put carries) is
 * STRATA_ECHANGED, and the put stores nothing.
 */
static int copy_stream(struct xfer *x, struct task *t,
		       const struct strata_put_opts *po,
		       const struct strata_stat *st)
{
	struct pipe_get g = { .x = x, .t = t, .fd = -1,
			      .version = st->version, .writer = st->writer };
	struct copy_src s = { { .fd = -1, .p = &x->prog }, &g };
	pthread_t thr;
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	s.u.fd = p[0];
	g.fd = p[1];
	if (pthread_create(&thr, NULL, copy_reader, &g) != 0) {
		close(p[0]);
		close(p[1]);
		return -EAGAIN;
	}
	rc = lib_rc(t, strata_object_put(x->c, t->dbucket, t->dkey, po,
					 copy_read, &s, NULL));
	/* A failed put leaves the reader blocked on a full pipe: closing
	 * our end gives it EPIPE (SIGPIPE is ignored). */
	close(p[0]);
	pthread_join(thr, NULL);
	if (atomic_load(&g.rc) && atomic_load(&g.rc) != -EPIPE) {
		memcpy(t->msg, g.msg, sizeof(t->msg));
		rc = atomic_load(&g.rc);
	}
	if (rc == STRATA_ECHANGED)
		atomic_fetch_sub(&x->prog.bytes, s.u.n);
	return rc;
}

/* Copies of a source replaced between its stat and its get, at most. */
#define COPY_TRIES 3

/*
 * The copy keeps the source's content type (unless --content-type says
 * otherwise), user metadata and tags: those of the version stat() saw,
 * which copy_stream() copies the bytes of or none.  A source replaced in
 * between is stat()ed and copied again.
 */
static int do_copy(struct xfer *x, struct task *t)
{
	int rc = 0;

	for (int attempt = 0; attempt < COPY_TRIES; attempt++) {
		struct strata_put_opts po = { 0 };
		struct strata_stat *st = NULL;

		rc = lib_rc(t, strata_object_stat(x->c, t->bucket, t->key,
						  &st));
		if (rc)
			return rc;
		po.content_type = x->o->content_type ? x->o->content_type
						     : st->content_type;
		po.meta = st->meta;
		po.nmeta = st->nmeta;
		po.tags = st->tags;
		po.ntags = st->ntags;
		rc = copy_stream(x, t, &po, st);
		strata_stat_free(st);
		if (rc != STRATA_ECHANGED)
			return rc;
	}
	t->why = "replaced again at each try; nothing was stored";
	return rc;
}

static int do_delete(struct xfer *x, struct task *t)
{
	return lib_rc(t, strata_object_delete(x->c, t->bucket, t->key, NULL));
}

/*
 * rc for people: the node's own words when it gave some, after rc's text
 * only when that says something else ("Permission denied (an admin access
 * key is required)", but "no such bucket" once).
 */
static void err_text(int rc, const char *msg, char *out, size_t len)
{
	const char *e = strata_strerror(rc);

	if (!*msg || !strcmp(msg, e))
		snprintf(out, len, "%s", *msg ? msg : e);
	else
		snprintf(out, len, "%s (%s)", e, msg);
}

static void task_fail(struct xfer *x, const struct task *t)
{
	char e[512];

	if (t->msg_only)
		snprintf(e, sizeof(e), "%s", t->msg);
	else
		err_text(t->rc, t->msg, e, sizeof(e));
	pthread_mutex_lock(&x->out_lock);
	if (x->prog.on)
		fputs("\r\033[K", stderr);
	/* Keys (and the local paths made of them) come from a listing:
	 * escaped, as ls shows them. */
	fputs(t->kind == T_DELETE ? "strata: rm " : "strata: ", stderr);
	if (t->kind == T_UP) {
		text_out(stderr, t->local);
		fputs(" -> ", stderr);
	}
	fprintf(stderr, "strata://%s/", t->bucket);
	text_out(stderr, t->key);
	if (t->kind == T_DOWN) {
		fputs(" -> ", stderr);
		text_out(stderr, t->local);
	} else if (t->kind == T_COPY) {
		fprintf(stderr, " -> strata://%s/", t->dbucket);
		text_out(stderr, t->dkey);
	}
	fprintf(stderr, ": %s", e);
	if (t->why)
		fprintf(stderr, " (%s)", t->why);
	fputc('\n', stderr);
	pthread_mutex_unlock(&x->out_lock);
}

static void *worker(void *arg)
{
	struct xfer *x = arg;
	size_t i;

	while ((i = atomic_fetch_add(&x->next, 1)) < x->n) {
		struct task *t = &x->t[i];

		switch (t->kind) {
		case T_UP:
			t->rc = do_upload(x, t);
			break;
		case T_DOWN:
			t->rc = do_download(x, t);
			break;
		case T_COPY:
			t->rc = do_copy(x, t);
			break;
		case T_DELETE:
			t->rc = do_delete(x, t);
			break;
		}
		if (t->rc)
			task_fail(x, t);
		atomic_fetch_add(&x->prog.files, 1);
	}
	return NULL;
}

/* Run every task on the worker threads; print the summary. */
static int xfer_run(struct xfer *x, const char *verb)
{
	unsigned jobs = x->o->jobs, failed = x->plan_failed;
	pthread_t thr[MAX_JOBS];
	uint64_t total = 0;
	double el;

	for (size_t i = 0; i < x->n; i++)
		total += x->t[i].size;
	if (jobs > x->n)
		jobs = x->n ? (unsigned)x->n : 1;
	progress_start(&x->prog, x->o, total, (unsigned)x->n);
	for (unsigned j = 0; j < jobs; j++)
		if (pthread_create(&thr[j], NULL, worker, x) != 0)
			jobs = j;
	if (!jobs)
		worker(x);
	for (unsigned j = 0; j < jobs; j++)
		pthread_join(thr[j], NULL);
	progress_end(&x->prog);
	el = now_s() - x->prog.start;
	for (size_t i = 0; i < x->n; i++)
		failed += x->t[i].rc != 0;
	if (x->o->json) {
		printf("{\"op\":\"%s\",\"files\":%zu,\"failed\":%u,"
		       "\"bytes\":%" PRIu64 ",\"seconds\":%.3f}\n", verb,
		       x->n + x->plan_failed, failed,
		       (uint64_t)atomic_load(&x->prog.bytes), el);
	} else if (!x->o->quiet && isatty(STDERR_FILENO)) {
		char b[32];

		human(atomic_load(&x->prog.bytes), b, sizeof(b));
		fprintf(stderr, "%s: %zu ok, %u failed, %s in %.1f s\n", verb,
			x->n + x->plan_failed - failed, failed, b, el);
	}
	for (size_t i = 0; i < x->n; i++) {
		free(x->t[i].local);
		free(x->t[i].bucket);
		free(x->t[i].key);
		free(x->t[i].dbucket);
		free(x->t[i].dkey);
		free(x->t[i].tmp);
	}
	free(x->t);
	return failed ? EXIT_FAILED : EXIT_OK;
}

/* ---- Planning ------------------------------------------------------------ */

/* A local path that stat() refused with err: say so, naming the path, and
 * tell a dangling symlink from a missing file. */
static void local_fail(const char *path, int err)
{
	struct stat st;
	bool dangling = err == ENOENT && lstat(path, &st) == 0 &&
			S_ISLNK(st.st_mode);

	fprintf(stderr, "strata: %s: %s%s\n", path, strerror(err),
		dangling ? " (dangling symlink)" : "");
}

/*
 * Every regular file under dir (recursively, following symlinks), paths
 * relative to it.  A file or directory that cannot be read is reported
 * (by its local path) and counted in failed, and the walk goes on; names
 * of downloads in progress (TMP_SUFFIX) are skipped.  A directory that is
 * one of its own ancestors (reached again through a symlink: a loop) is
 * reported and counted in failed instead of walked forever.
 */
struct files {
	char **rel;
	uint64_t *size;
	size_t n, cap;
	unsigned failed;
};

/* The directories walk() is in, innermost first. */
struct dir_chain {
	dev_t dev;
	ino_t ino;
	const struct dir_chain *up;
};

static void walk(const char *root, const char *rel, struct files *f,
		 const struct dir_chain *up)
{
	char *path = *rel ? xasprintf("%s/%s", root, rel) : xstrdup(root);
	DIR *d = opendir(path);
	struct dir_chain here = { .up = up };
	struct dirent *e;
	struct stat dst;

	if (!d) {
		fprintf(stderr, "strata: %s: %s\n", path, strerror(errno));
		f->failed++;
		free(path);
		return;
	}
	if (fstat(dirfd(d), &dst) == 0) {
		here.dev = dst.st_dev;
		here.ino = dst.st_ino;
	}
	for (const struct dir_chain *a = up; a; a = a->up) {
		if (a->dev != here.dev || a->ino != here.ino)
			continue;
		fprintf(stderr, "strata: %s: symbolic link loop (a directory "
			"inside itself), skipped\n", path);
		f->failed++;
		closedir(d);
		free(path);
		return;
	}
	while ((e = readdir(d))) {
		char *r, *full;
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    is_tmp_name(e->d_name))
			continue;
		r = *rel ? xasprintf("%s/%s", rel, e->d_name) :
		    xstrdup(e->d_name);
		full = xasprintf("%s/%s", root, r);
		if (stat(full, &st) != 0) {
			local_fail(full, errno);
			f->failed++;
		} else if (S_ISDIR(st.st_mode)) {
			walk(root, r, f, &here);
		} else if (S_ISREG(st.st_mode)) {
			if (f->n == f->cap) {
				f->cap = f->cap ? 2 * f->cap : 64;
				f->rel = realloc(f->rel, f->cap * sizeof(char *));
				f->size = realloc(f->size, f->cap * 8);
				if (!f->rel || !f->size)
					exit(EXIT_FAILED);
			}
			f->rel[f->n] = r;
			f->size[f->n++] = (uint64_t)st.st_size;
			r = NULL;
		}
		free(r);
		free(full);
	}
	closedir(d);
	free(path);
}

static void files_free(struct files *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->rel[i]);
	free(f->rel);
	free(f->size);
}

/* "p" -> "p/" unless empty or already so: a tree goes below it. */
static char *dir_prefix(const char *p)
{
	size_t n = strlen(p);

	return n && p[n - 1] != '/' ? xasprintf("%s/", p) : xstrdup(p);
}

struct remote {
	char *key;
	uint64_t size;
	uint8_t etag[STRATA_ETAG_LEN];
};

struct remotes {
	struct remote *r;
	size_t n, cap;
};

static int list_all(strata_client *c, const char *bucket, const char *prefix,
		    struct remotes *out)
{
	struct strata_list_opts lo = { .prefix = prefix };
	const struct strata_list_entry *e;
	strata_list *it = NULL;
	int rc = strata_list_new(c, bucket, &lo, &it);

	while (!rc && (rc = strata_list_next(it, &e)) == 1) {
		if (!e->key)
			continue;
		if (out->n == out->cap) {
			out->cap = out->cap ? 2 * out->cap : 256;
			out->r = realloc(out->r, out->cap * sizeof(*out->r));
			if (!out->r)
				exit(EXIT_FAILED);
		}
		out->r[out->n].key = xstrdup(e->key);
		out->r[out->n].size = e->size;
		memcpy(out->r[out->n].etag, e->etag, STRATA_ETAG_LEN);
		out->n++;
		rc = 0;
	}
	strata_list_free(it);
	return rc;
}

static void remotes_free(struct remotes *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->r[i].key);
	free(r->r);
}

static int cmp_remote(const void *a, const void *b)
{
	return strcmp(((const struct remote *)a)->key,
		      ((const struct remote *)b)->key);
}

static struct remote *remote_find(struct remotes *r, const char *key)
{
	struct remote k = { .key = (char *)key };

	return r->n ? bsearch(&k, r->r, r->n, sizeof(*r->r), cmp_remote) :
		      NULL;
}

/* The engine's etag of a local file cut into chunk_size chunks. */
static int etag_file(const char *path, uint32_t chunk_size, size_t nchunks,
		     uint8_t out[32])
{
	EVP_MD_CTX *all = EVP_MD_CTX_new(), *one = EVP_MD_CTX_new();
	size_t bufsz = 1 << 20, in_chunk = 0;
	uint8_t *buf = malloc(bufsz), h[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	bool multi = nchunks > 1;
	ssize_t n;

	if (fd < 0 || !buf || !all || !one) {
		rc = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	EVP_DigestInit_ex(all, EVP_sha256(), NULL);
	EVP_DigestInit_ex(one, EVP_sha256(), NULL);
	while ((n = read(fd, buf, bufsz)) > 0) {
		size_t off = 0;

		while (off < (size_t)n) {
			size_t take = (size_t)n - off;

			if (multi && take > chunk_size - in_chunk)
				take = chunk_size - in_chunk;
			EVP_DigestUpdate(one, buf + off, take);
			off += take;
			in_chunk += take;
			if (multi && in_chunk == chunk_size) {
				EVP_DigestFinal_ex(one, h, NULL);
				EVP_DigestUpdate(all, h, 32);
				EVP_DigestInit_ex(one, EVP_sha256(), NULL);
				in_chunk = 0;
			}
		}
	}
	if (n < 0) {
		rc = -errno;
		goto out;
	}
	if (!multi) {
		EVP_DigestFinal_ex(one, out, NULL);
	} else {
		if (in_chunk) {
			EVP_DigestFinal_ex(one, h, NULL);
			EVP_DigestUpdate(all, h, 32);
		}
		EVP_DigestFinal_ex(all, out, NULL);
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	EVP_MD_CTX_free(all);
	EVP_MD_CTX_free(one);
	return rc;
}

/* Same size on both sides: do the bytes match?  Errors count as "no". */
static bool same_content(strata_client *c, const char *bucket,
			 const struct remote *r, const char *path)
{
	struct strata_stat *st = NULL;
	uint32_t chunk = 0;
	size_t nchunks = 1;
	uint8_t etag[32];

	if (r->size > MIN_CHUNK) {
		if (strata_object_stat(c, bucket, r->key, &st) != 0)
			return false;
		chunk = st->chunk_size;
		nchunks = st->nchunks;
		strata_stat_free(st);
		if (nchunks > 1 && !chunk)
			return false;
	}
	return etag_file(path, chunk, nchunks, etag) == 0 &&
	       !memcmp(etag, r->etag, 32);
}

/* ---- Commands ------------------------------------------------------------ */

/* Report a failed libstrata call (this thread's latest).  A bucket name or
 * key the node refuses is a malformed URL: a usage error, as parse_url()'s. */
static int fail(const char *what, int rc)
{
	char e[512];

	err_text(rc, strata_error_message(), e, sizeof(e));
	fprintf(stderr, "strata: %s: %s\n", what, e);
	return rc == STRATA_EBADBUCKET || rc == STRATA_EBADKEY ? EXIT_USAGE :
	       EXIT_FAILED;
}

static int key_line(void *arg, const char *id, bool admin)
{
	const struct opts *o = arg;

	if (o->json)
		printf("{\"access_key\":\"%s\",\"admin\":%s}\n", id,
		       admin ? "true" : "false");
	else
		printf("%-24s %s\n", id, admin ? "admin" : "user");
	return 0;
}

/* ---- admin tiers ---- */

#define MAX_COUNTERS 128

struct counters {
	char name[MAX_COUNTERS][64];
	char value[MAX_COUNTERS][32];
	size_t n;
};

static int counter_add(void *arg, const char *name, const char *value)
{
	struct counters *cs = arg;

	if (cs->n < MAX_COUNTERS) {
		snprintf(cs->name[cs->n], sizeof(cs->name[0]), "%s", name);
		snprintf(cs->value[cs->n], sizeof(cs->value[0]), "%s", value);
		cs->n++;
	}
	return 0;
}

static uint64_t counter(const struct counters *cs, const char *name)
{
	for (size_t i = 0; i < cs->n; i++)
		if (!strcmp(cs->name[i], name))
			return strtoull(cs->value[i], NULL, 10);
	return 0;
}

static int cmd_admin_tiers(strata_client *c, const struct opts *o)
{
	static const char *const tiers[] = { "hot", "cold" };
	struct counters *cs = calloc(1, sizeof(*cs));
	uint64_t hits, misses;
	char a[32], b[32];
	int rc;

	if (!cs)
		return fail("admin tiers", -ENOMEM);
	rc = strata_node_stats(c, counter_add, cs);
	if (rc) {
		free(cs);
		return fail("admin tiers", rc);
	}
	if (o->json) {
		printf("{");
		for (size_t i = 0; i < cs->n; i++)
			printf("%s\"%s\":%s", i ? "," : "", cs->name[i],
			       cs->value[i]);
		printf("}\n");
		free(cs);
		return EXIT_OK;
	}
	printf("%-5s %12s %12s %12s %6s  %s\n", "tier", "used", "live",
	       "capacity", "use%", "watermarks");
	for (int t = 0; t < 2; t++) {
		char name[64], c2[32];
		uint64_t used, live, cap;

		snprintf(name, sizeof(name), "tier.%s.dirs", tiers[t]);
		if (!counter(cs, name))
			continue;	/* no such tier configured */
		snprintf(name, sizeof(name), "tier.%s.used_bytes", tiers[t]);
		used = counter(cs, name);
		snprintf(name, sizeof(name), "tier.%s.live_bytes", tiers[t]);
		live = counter(cs, name);
		snprintf(name, sizeof(name), "tier.%s.capacity_bytes",
			 tiers[t]);
		cap = counter(cs, name);
		human(used, a, sizeof(a));
		human(live, b, sizeof(b));
		human(cap, c2, sizeof(c2));
		printf("%-5s %12s %12s %12s %5.1f%%", tiers[t], a, b, c2,
		       cap ? 100.0 * (double)used / (double)cap : 0.0);
		if (t == 0)
			printf("  high %" PRIu64 "%%, low %" PRIu64 "%%",
			       counter(cs, "tier.hot.high_watermark_pct"),
			       counter(cs, "tier.hot.low_watermark_pct"));
		printf("\n");
	}
	human(counter(cs, "mover.demoted_bytes"), a, sizeof(a));
	human(counter(cs, "mover.promoted_bytes"), b, sizeof(b));
	printf("moved: %s demoted (%" PRIu64 " chunks), %s promoted (%" PRIu64
	       " chunks), %" PRIu64 " queued\n", a,
	       counter(cs, "mover.demoted_chunks"), b,
	       counter(cs, "mover.promoted_chunks"),
	       counter(cs, "mover.promote_queue"));
	human(counter(cs, "mover.rate_bytes_per_s"), a, sizeof(a));
	human(counter(cs, "mover.spilled_bytes"), b, sizeof(b));
	printf("mover rate cap: %s/s; spilled to cold: %s\n",
	       counter(cs, "mover.rate_bytes_per_s") ? a : "none", b);
	printf("lifecycle: %" PRIu64 " chunks moved cold, %" PRIu64
	       " objects expired\n", counter(cs, "lifecycle.cold_chunks"),
	       counter(cs, "lifecycle.expired_objects"));
	printf("prestaging: %" PRIu64 " hints, %" PRIu64 " plans active, %"
	       PRIu64 " objects staged\n", counter(cs, "prestage.hints"),
	       counter(cs, "prestage.plans"), counter(cs, "prestage.objects"));
	hits = counter(cs, "cache.hits");
	misses = counter(cs, "cache.misses");
	human(counter(cs, "cache.bytes"), a, sizeof(a));
	human(counter(cs, "cache.budget_bytes"), b, sizeof(b));
	printf("cache: %s of %s, hit ratio %.1f%% (%" PRIu64 " hits, %" PRIu64
	       " misses, %" PRIu64 " evictions)\n", a, b,
	       hits + misses ? 100.0 * (double)hits / (double)(hits + misses)
			     : 0.0, hits, misses,
	       counter(cs, "cache.evictions"));
	free(cs);
	return EXIT_OK;
}

/* ---- lifecycle ---- */

static int lifecycle(strata_client *c, const struct opts *o, char **args,
		     int n, struct url *up);

static int cmd_lifecycle(strata_client *c, const struct opts *o, char **args,
			 int n)
{
	struct url u = { 0 };
	int rc = lifecycle(c, o, args, n, &u);

	url_free(&u);
	return rc;
}

static int lifecycle(strata_client *c, const struct opts *o, char **args,
		     int n, struct url *up)
{
	struct strata_lifecycle_rule *rules = NULL, *nr;
	struct strata_lifecycle_rule r = { .action = 0 };
	const char *bucket, *prefix;
	size_t nrules = 0, keep = 0;
	bool every;
	int rc;

	if (n < 2)
		die_usage("%s", "lifecycle set|get|rm strata://BUCKET[/PREFIX]");
	parse_url(args[1], up);		/* exits on a bad URL */
	bucket = up->bucket;
	prefix = up->key;
	/* strata://BUCKET (no '/'): every rule; strata://BUCKET/ the rules
	 * for the empty prefix (every object), as lifecycle set names them. */
	every = !strchr(args[1] + strlen("strata://"), '/');
	if (!strcmp(args[0], "get") && (n != 2 || *prefix))
		die_usage("%s", "lifecycle get takes strata://BUCKET (it lists "
			  "every rule; there is no prefix filter)");
	if (!strcmp(args[0], "rm") && n != 2)
		die_usage("%s", "lifecycle rm takes strata://BUCKET[/PREFIX]");
	if (!strcmp(args[0], "set") && n != 4)
		die_usage("%s", "lifecycle set strata://BUCKET/[PREFIX] cold|delete AGE");
	if (strcmp(args[0], "set") && strcmp(args[0], "get") &&
	    strcmp(args[0], "rm"))
		die_usage("unknown lifecycle command: %s", args[0]);
	if (!strcmp(args[0], "set")) {
		if (!strcmp(args[2], "cold"))
			r.action = STRATA_LC_COLD;
		else if (!strcmp(args[2], "delete"))
			r.action = STRATA_LC_DELETE;
		else
			die_usage("lifecycle action is cold or delete, not %s",
				  args[2]);
		rc = args_age(args[3], &r.age_s);
		if (rc == -ERANGE)
			die_usage("age %s is over the limit of 36500d (%llu "
				  "seconds)", args[3], ARGS_MAX_AGE_S);
		if (rc)
			die_usage("bad age %s (like 30d, 12h, 3600)", args[3]);
		if (strlen(prefix) >= sizeof(r.prefix))
			die_usage("%s", "prefix too long");
		snprintf(r.prefix, sizeof(r.prefix), "%s", prefix);
	}
	rc = strata_lifecycle_get(c, bucket, &rules, &nrules);
	if (rc)
		return fail(bucket, rc);
	if (!strcmp(args[0], "get")) {
		for (size_t i = 0; i < nrules; i++) {
			const char *act = rules[i].action == STRATA_LC_COLD ?
					  "cold" : "delete";

			if (o->json) {
				printf("{\"prefix\":");
				json_str(stdout, rules[i].prefix);
				printf(",\"action\":\"%s\",\"age_s\":%" PRIu64
				       "}\n", act, rules[i].age_s);
			} else {
				printf("%-6s after %10" PRIu64 "s  ", act,
				       rules[i].age_s);
				if (*rules[i].prefix)
					text_out(stdout, rules[i].prefix);
				else
					fputs("(every object)", stdout);
				putchar('\n');
			}
		}
		strata_lifecycle_free(rules);
		return EXIT_OK;
	}
	if (!strcmp(args[0], "rm")) {
		for (size_t i = 0; i < nrules; i++)
			if (!every && strcmp(rules[i].prefix, prefix))
				rules[keep++] = rules[i];
		if (keep == nrules) {
			strata_lifecycle_free(rules);
			fprintf(stderr, "strata: %s: no lifecycle rule for %s\n",
				bucket, every ? "the bucket" : *prefix ? prefix :
				"the empty prefix (every object)");
			return EXIT_FAILED;
		}
		rc = strata_lifecycle_set(c, bucket, rules, keep);
		strata_lifecycle_free(rules);
		return rc ? fail(bucket, rc) : EXIT_OK;
	}
	/* set: replace the rule with this prefix and action, or add it. */
	{
		size_t i;

		for (i = 0; i < nrules; i++)
			if (!strcmp(rules[i].prefix, r.prefix) &&
			    rules[i].action == r.action)
				break;
		if (i == nrules) {
			nr = realloc(rules, (nrules + 1) * sizeof(*nr));
			if (!nr) {
				strata_lifecycle_free(rules);
				return fail(bucket, -ENOMEM);
			}
			rules = nr;
			nrules++;
		}
		rules[i] = r;
		rc = strata_lifecycle_set(c, bucket, rules, nrules);
		strata_lifecycle_free(rules);
		return rc ? fail(bucket, rc) : EXIT_OK;
	}
}

/* admin audit verify FILE: local, no node. */
static int cmd_audit_verify(const struct opts *o, const char *path)
{
	struct audit_verify v;
	char head[2 * AUDIT_HASH_LEN + 1];
	int rc = audit_verify_file(path, &v);

	if (rc && rc != STRATA_ECORRUPT) {
		fprintf(stderr, "strata: %s: %s\n", path, strerror(-rc));
		return EXIT_FAILED;
	}
	for (size_t i = 0; i < AUDIT_HASH_LEN; i++)
		snprintf(head + 2 * i, 3, "%02x", v.head[i]);
	if (o->json) {
		printf("{\"file\":");
		json_str(stdout, path);
		printf(",\"intact\":%s,\"records\":%" PRIu64 ",\"last_seq\":"
		       "%" PRIu64 ",\"head\":\"%s\",\"torn_tail\":%s",
		       rc ? "false" : "true", v.records, v.last_seq, head,
		       v.torn_tail ? "true" : "false");
		if (rc) {
			printf(",\"bad_line\":%" PRIu64 ",\"error\":",
			       v.bad_line);
			json_str(stdout, v.why);
		}
		puts("}");
	} else if (rc) {
		fprintf(stderr, "strata: %s: NOT intact: %s\n", path, v.why);
		printf("%s: %" PRIu64 " records intact before line %" PRIu64
		       "\n", path, v.records, v.bad_line);
	} else {
		printf("%s: intact: %" PRIu64 " records, last seq %" PRIu64
		       ", head %s%s\n", path, v.records, v.last_seq, head,
		       v.torn_tail ? " (a torn last line follows: a crash "
		       "in the middle of a write; stratad cuts it at its next "
		       "start)" : "");
	}
	return rc ? EXIT_FAILED : EXIT_OK;
}

/* Read a policy file (- for standard input) whole: at most 32 KiB. */
static char *read_policy(const char *path)
{
	enum { MAX = 32 << 10 };
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *buf;
	size_t n;

	if (!f) {
		fprintf(stderr, "strata: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(MAX + 2);
	n = buf ? fread(buf, 1, MAX + 1, f) : 0;
	if (buf && ferror(f)) {
		fprintf(stderr, "strata: %s: %s\n", path, strerror(errno));
		free(buf);
		buf = NULL;
	} else if (buf && n > MAX) {
		fprintf(stderr, "strata: %s: a policy is at most 32 KiB\n",
			path);
		free(buf);
		buf = NULL;
	} else if (buf && memchr(buf, 0, n)) {
		fprintf(stderr, "strata: %s: not a JSON document (NUL byte)\n",
			path);
		free(buf);
		buf = NULL;
	} else if (buf) {
		buf[n] = 0;
	}
	if (f != stdin)
		fclose(f);
	return buf;
}

static void print_key_info(const struct opts *o,
			   const struct strata_key_info *ki)
{
	char t[32];

	if (o->json) {
		printf("{\"access_key\":\"%s\",\"admin\":%s,"
		       "\"ctime_ms\":%" PRIu64 ",\"attributes\":{", ki->id,
		       ki->admin ? "true" : "false", ki->ctime_ms);
		for (size_t i = 0; i < ki->nattrs; i++) {
			if (i)
				putchar(',');
			json_str(stdout, ki->attrs[2 * i]);
			putchar(':');
			json_str(stdout, ki->attrs[2 * i + 1]);
		}
		fputs("},\"policy\":", stdout);
		if (ki->policy)
			json_str(stdout, ki->policy);
		else
			fputs("null", stdout);
		puts("}");
		return;
	}
	fmt_time(ki->ctime_ms, t, sizeof(t));
	printf("access_key: %s\nkind: %s\ncreated: %s\n", ki->id,
	       ki->admin ? "admin (may do everything; policies do not apply)"
			 : "user", t);
	for (size_t i = 0; i < ki->nattrs; i++) {
		fputs("attribute: ", stdout);
		text_out(stdout, ki->attrs[2 * i]);
		putchar('=');
		text_out(stdout, ki->attrs[2 * i + 1]);
		putchar('\n');
	}
	if (ki->policy) {
		fputs("policy:\n", stdout);
		fputs(ki->policy, stdout);
		if (!*ki->policy || ki->policy[strlen(ki->policy) - 1] != '\n')
			putchar('\n');
	} else if (!ki->admin) {
		puts("policy: none (the key may do nothing)");
	}
}

/* admin key create|set: the grant the options give (policy read). */
static int key_grant(const struct opts *o, struct strata_key_grant *g,
		     char **policy)
{
	memset(g, 0, sizeof(*g));
	*policy = NULL;
	if (o->policy_file) {
		*policy = read_policy(o->policy_file);
		if (!*policy)
			return EXIT_FAILED;
		/* Empty is not "no policy": that is --no-policy. */
		if (!(*policy)[strspn(*policy, " \t\r\n")]) {
			fprintf(stderr, "strata: %s: empty: not a policy "
				"document (strata-policy(7))\n",
				o->policy_file);
			free(*policy);
			*policy = NULL;
			return EXIT_FAILED;
		}
		g->policy = *policy;
	} else if (o->no_policy) {
		g->policy = "";
	}
	g->attrs = o->attrs;
	g->nattrs = o->nattrs / 2;
	g->set_attrs = o->nattrs || o->no_attrs;
	return EXIT_OK;
}

/* admin key create|list|delete|set|show, admin tiers (arguments checked
 * in main). */
static int cmd_admin(strata_client *c, const struct opts *o, char **args,
		     const char *self)
{
	char id[256], secret[256], *policy = NULL;
	struct strata_key_grant g;
	struct strata_key_info ki;
	int rc;

	if (!strcmp(args[0], "tiers"))
		return cmd_admin_tiers(c, o);
	if (!strcmp(args[1], "show")) {
		const char *who = args[2] ? args[2] : self;

		rc = strata_admin_key_info(c, who, &ki);
		if (rc == -ENOENT || rc == -EINVAL) {
			fputs("strata: ", stderr);
			text_out(stderr, who);
			fputs(": no such access key\n", stderr);
			return EXIT_FAILED;
		}
		if (rc)
			return fail(who, rc);
		print_key_info(o, &ki);
		strata_key_info_free(&ki);
		return EXIT_OK;
	}
	if (!strcmp(args[1], "set")) {
		rc = key_grant(o, &g, &policy);
		if (rc)
			return rc;
		rc = strata_admin_key_set(c, args[2], &g);
		free(policy);
		if (rc == -ENOENT || rc == -EINVAL) {
			fputs("strata: ", stderr);
			text_out(stderr, args[2]);
			fputs(": no such access key\n", stderr);
			return EXIT_FAILED;
		}
		return rc ? fail(args[2], rc) : EXIT_OK;
	}

	if (!strcmp(args[1], "list")) {
		rc = strata_admin_key_list(c, key_line, (void *)o);
		return rc ? fail("admin key list", rc) : EXIT_OK;
	}
	if (!strcmp(args[1], "delete")) {
		rc = strata_admin_key_delete(c, args[2]);
		if (rc == -EINVAL || rc == -ENOENT) {
			fputs("strata: ", stderr);
			text_out(stderr, args[2]);
			fprintf(stderr, ": %s\n", rc == -ENOENT ?
				"no such access key" :
				"not an access key id (AK and 18 hex digits)");
			return rc == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
		}
		return rc ? fail(args[2], rc) : EXIT_OK;
	}
	rc = key_grant(o, &g, &policy);
	if (rc)
		return rc;
	rc = strata_admin_key_create_ex(c, o->admin, &g, id, sizeof(id),
					secret, sizeof(secret));
	free(policy);
	if (rc)
		return fail("admin key create", rc);
	if (o->json)
		printf("{\"access_key\":\"%s\",\"secret_key\":\"%s\","
		       "\"admin\":%s}\n", id, secret,
		       o->admin ? "true" : "false");
	else
		printf("access_key = %s\nsecret_key = %s\n", id, secret);
	if (!o->admin && !o->policy_file)
		fprintf(stderr, "strata: note: the key has no access policy "
			"and may do nothing until it has one: strata admin "
			"key set %s --policy FILE (strata-policy(7))\n", id);
	if (o->admin && o->policy_file)
		fprintf(stderr, "strata: note: an admin key may do everything: "
			"its policy is kept but not applied\n");
	return EXIT_OK;
}

static int cmd_mb_rb(strata_client *c, bool make, char **args, int n)
{
	struct url u;
	int rc;

	if (n != 1)
		die_usage("%s takes one strata://BUCKET", make ? "mb" : "rb");
	parse_url(args[0], &u);
	if (*u.key)
		die_usage("not a bucket: %s", args[0]);
	rc = make ? strata_bucket_create(c, u.bucket) :
	     strata_bucket_delete(c, u.bucket);
	url_free(&u);
	return rc ? fail(args[0], rc) : EXIT_OK;
}

struct ls_ctx {
	const struct opts *o;
};

static int ls_bucket(void *arg, const char *bucket, uint64_t ctime)
{
	struct ls_ctx *l = arg;
	char t[32];

	if (l->o->json) {
		fputs("{\"bucket\":", stdout);
		json_str(stdout, bucket);
		printf(",\"ctime_ms\":%" PRIu64 "}\n", ctime);
	} else {
		fmt_time(ctime, t, sizeof(t));
		printf("%s  strata://%s\n", t, bucket);
	}
	return 0;
}

static int cmd_ls(strata_client *c, const struct opts *o, char **args, int n)
{
	struct ls_ctx l = { o };
	struct strata_list_opts lo = { 0 };
	const struct strata_list_entry *e;
	strata_list *it = NULL;
	struct url u;
	char etag[65], t[32];
	int rc;

	if (n > 1)
		die_usage("%s", "ls takes at most one strata:// URL");
	if (!n) {
		rc = strata_bucket_list(c, ls_bucket, &l);
		return rc ? fail("ls", rc) : EXIT_OK;
	}
	parse_url(args[0], &u);
	lo.prefix = u.key;
	lo.delimiter = o->recursive ? NULL : "/";
	rc = strata_list_new(c, u.bucket, &lo, &it);
	while (!rc && (rc = strata_list_next(it, &e)) == 1) {
		rc = 0;
		if (o->json) {
			fputs(e->key ? "{\"key\":" : "{\"prefix\":", stdout);
			json_str(stdout, e->key ? e->key : e->prefix);
			if (e->key) {
				hex(e->etag, 32, etag);
				printf(",\"size\":%" PRIu64 ",\"etag\":\"%s\","
				       "\"version\":%" PRIu64 ",\"mtime_ms\":%"
				       PRIu64, e->size, etag, e->version,
				       e->mtime_ms);
			}
			fputs("}\n", stdout);
		} else if (e->key) {
			fmt_time(e->mtime_ms, t, sizeof(t));
			printf("%s  %12" PRIu64 "  ", t, e->size);
			text_out(stdout, e->key);
			putchar('\n');
		} else {
			printf("%19s  %12s  ", "", "PRE");
			text_out(stdout, e->prefix);
			putchar('\n');
		}
	}
	strata_list_free(it);
	url_free(&u);
	return rc ? fail(args[0], rc) : EXIT_OK;
}

static int cmd_stat(strata_client *c, const struct opts *o, char **args,
		    int n)
{
	struct strata_stat *st;
	struct url u;
	char t[32], hs[32];
	int rc;

	if (n != 1)
		die_usage("%s", "stat takes one strata://BUCKET/KEY");
	parse_object_url(args[0], &u);
	rc = strata_object_stat(c, u.bucket, u.key, &st);
	if (rc) {
		url_free(&u);
		return fail(args[0], rc);
	}
	if (o->json) {
		printf("{\"bucket\":");
		json_str(stdout, u.bucket);
		printf(",\"key\":");
		json_str(stdout, u.key);
		printf(",\"size\":%" PRIu64 ",\"etag\":\"%s\",\"version\":%"
		       PRIu64 ",\"writer\":%u,\"mtime_ms\":%" PRIu64, st->size,
		       st->etag_hex, st->version, st->writer, st->mtime_ms);
		if (st->content_type) {
			printf(",\"content_type\":");
			json_str(stdout, st->content_type);
		}
		for (int k = 0; k < 2; k++) {
			const struct strata_kv *kv = k ? st->tags : st->meta;
			size_t nkv = k ? st->ntags : st->nmeta;

			printf(",\"%s\":{", k ? "tags" : "meta");
			for (size_t i = 0; i < nkv; i++) {
				if (i)
					putchar(',');
				json_str(stdout, kv[i].name);
				putchar(':');
				json_str(stdout, kv[i].value);
			}
			putchar('}');
		}
		printf(",\"chunk_size\":%u,\"chunks\":[", st->chunk_size);
		for (size_t i = 0; i < st->nchunks; i++)
			printf("%s{\"tier\":%u,\"raw\":%u,\"stored\":%u}",
			       i ? "," : "", st->chunks[i].tier,
			       st->chunks[i].raw_len, st->chunks[i].stored_len);
		printf("]}\n");
	} else {
		uint64_t raw = 0, stored = 0;

		human(st->size, hs, sizeof(hs));
		fmt_time(st->mtime_ms, t, sizeof(t));
		fputs("object:        ", stdout);
		text_out(stdout, args[0]);
		putchar('\n');
		printf("size:          %" PRIu64 " (%s)\n", st->size, hs);
		printf("etag:          %s\n", st->etag_hex);
		fputs("content-type:  ", stdout);
		text_out(stdout, st->content_type ? st->content_type : "-");
		putchar('\n');
		printf("version:       %" PRIu64 " (writer %u)\n", st->version,
		       st->writer);
		printf("modified:      %s\n", t);
		for (int k = 0; k < 2; k++) {
			const struct strata_kv *kv = k ? st->tags : st->meta;
			size_t nkv = k ? st->ntags : st->nmeta;

			for (size_t i = 0; i < nkv; i++) {
				fputs(k ? "tag:           " : "meta:          ",
				      stdout);
				text_out(stdout, kv[i].name);
				putchar('=');
				text_out(stdout, kv[i].value);
				putchar('\n');
			}
		}
		printf("chunks:        %zu of %u bytes\n", st->nchunks,
		       st->chunk_size);
		printf("  %5s  %5s  %12s  %12s\n", "#", "tier", "raw",
		       "stored");
		for (size_t i = 0; i < st->nchunks; i++) {
			/* Tier 255: a small object kept inline in the index. */
			static const char *const names[] = { "hot", "cold" };
			unsigned tier = st->chunks[i].tier;

			printf("  %5zu  %5s  %12u  %12u\n", i,
			       tier < 2 ? names[tier]
					: tier == 255 ? "index" : "?",
			       st->chunks[i].raw_len, st->chunks[i].stored_len);
			raw += st->chunks[i].raw_len;
			stored += st->chunks[i].stored_len;
		}
		if (raw)
			printf("stored/raw:    %.3f\n", (double)stored /
			       (double)raw);
	}
	strata_stat_free(st);
	url_free(&u);
	return EXIT_OK;
}

static int cmd_cat(strata_client *c, const struct opts *o, char **args, int n)
{
	uint64_t off = 0, len = STRATA_TO_END;
	struct strata_get_result res = { 0 };
	struct url u;
	int rc;

	if (n != 1)
		die_usage("%s", "cat takes one strata://BUCKET/KEY");
	if (o->range && args_range(o->range, &off, &len))
		die_usage("bad --range: %s (START-[END])", o->range);
	parse_object_url(args[0], &u);
	if (o->stdout_closed) {
		fputs("strata: standard output is closed\n", stderr);
		url_free(&u);
		return EXIT_FAILED;
	}
	rc = strata_object_get_fd(c, u.bucket, u.key, off, len, STDOUT_FILENO,
				  &res);
	url_free(&u);
	/* The reader went away (strata cat | head): nothing to report. */
	if (rc == -EPIPE)
		return EXIT_FAILED;
	if (rc)
		return fail(args[0], rc);
	/* The node serves START == size as 0 bytes; a range that starts at
	 * or after the end of a non-empty object is an error, as one past
	 * it is (then nothing was written). */
	if (o->range && res.size && off >= res.size) {
		fprintf(stderr, "strata: %s: %s (the object is %" PRIu64
			" bytes)\n", args[0], strata_strerror(STRATA_ERANGE),
			res.size);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

static int cmd_rm(strata_client *c, const struct opts *o, char **args, int n)
{
	struct xfer x = { .c = c, .o = o };
	struct remotes r = { 0 };
	struct url u;
	int rc;

	if (n != 1)
		die_usage("%s", "rm takes one strata://BUCKET/KEY");
	parse_url(args[0], &u);
	if (!o->recursive) {
		struct task *t;

		if (!*u.key)
			die_usage("no key in %s (rm -r for a prefix)", args[0]);
		t = task_add(&x, T_DELETE);
		t->bucket = u.bucket;
		t->key = u.key;
	} else {
		/* "rm -r strata://b/train" means train/..., never
		 * training/...: the prefix is a directory. */
		char *pfx = dir_prefix(u.key);

		rc = list_all(c, u.bucket, pfx, &r);
		free(pfx);
		if (rc) {
			url_free(&u);
			remotes_free(&r);
			return fail(args[0], rc);
		}
		for (size_t i = 0; i < r.n; i++) {
			struct task *t = task_add(&x, T_DELETE);

			t->bucket = xstrdup(u.bucket);
			t->key = r.r[i].key;
			r.r[i].key = NULL;
		}
		url_free(&u);
		remotes_free(&r);
	}
	pthread_mutex_init(&x.out_lock, NULL);
	return xfer_run(&x, "rm");
}

/* Plan cp and sync.  only_diff: skip what is already the same. */
static int plan_copy(strata_client *c, const struct opts *o, struct xfer *x,
		     const char *src, const char *dst, bool only_diff)
{
	bool rs = is_remote(src), rd = is_remote(dst);
	bool tree = o->recursive || only_diff;
	int rc = 0;

	if (!rs && !rd)
		die_usage("%s", "one side of cp must be a strata:// URL");
	if (!rs) {
		bool in = !strcmp(src, "-");
		struct url d;
		struct stat st;

		if (in && tree)
			die_usage("%s", "cannot copy a tree from standard input");
		parse_url(dst, &d);
		if (in && (!*d.key || d.key[strlen(d.key) - 1] == '/'))
			die_usage("cp -: the destination needs an object key "
				  "(strata://%s/%sKEY)", d.bucket, d.key);
		if (in && o->stdin_closed) {
			fputs("strata: standard input is closed\n", stderr);
			url_free(&d);
			return EXIT_FAILED;
		}
		if (!in && stat(src, &st) != 0) {
			local_fail(src, errno);
			url_free(&d);
			return EXIT_FAILED;
		}
		if (!in && !tree && S_ISDIR(st.st_mode))
			die_usage("%s is a directory (use -r)", src);
		if (!in && tree && !S_ISDIR(st.st_mode))
			die_usage("%s: %s is not a directory%s",
				  only_diff ? "sync" : "cp -r", src,
				  only_diff ? "" : " (copy a file without -r)");
		if (!tree) {
			struct task *t = task_add(x, T_UP);
			size_t kl = strlen(d.key);

			t->local = xstrdup(src);
			t->bucket = xstrdup(d.bucket);
			t->key = !kl || d.key[kl - 1] == '/' ?
				 xasprintf("%s%s", d.key, base_name(src)) :
				 xstrdup(d.key);
			t->size = in ? 0 : (uint64_t)st.st_size;
		} else {
			struct files f = { 0 };
			struct remotes r = { 0 };
			char *pfx = dir_prefix(d.key);

			/* A file that cannot be read fails alone: the
			 * others still go (and the summary counts it). */
			walk(src, "", &f, NULL);
			x->plan_failed = f.failed;
			if (only_diff) {
				rc = list_all(c, d.bucket, pfx, &r);
				if (r.n > 1)
					qsort(r.r, r.n, sizeof(*r.r),
					      cmp_remote);
			}
			for (size_t i = 0; !rc && i < f.n; i++) {
				char *key = xasprintf("%s%s", pfx, f.rel[i]);
				char *path = xasprintf("%s/%s", src, f.rel[i]);
				struct remote *m = only_diff ?
					remote_find(&r, key) : NULL;

				if (m && m->size == f.size[i] &&
				    same_content(c, d.bucket, m, path)) {
					free(key);
					free(path);
					continue;
				}
				struct task *t = task_add(x, T_UP);

				t->local = path;
				t->bucket = xstrdup(d.bucket);
				t->key = key;
				t->size = f.size[i];
			}
			if (rc)
				rc = fail(dst, rc);
			free(pfx);
			files_free(&f);
			remotes_free(&r);
		}
		url_free(&d);
		return rc;
	}

	struct url s, d = { 0 };
	struct remotes r = { 0 };

	parse_url(src, &s);
	if (rd)
		parse_url(dst, &d);
	if (!rd && !strcmp(dst, "-") && o->stdout_closed) {
		fputs("strata: standard output is closed\n", stderr);
		url_free(&s);
		return EXIT_FAILED;
	}
	if (!tree) {
		struct strata_stat *st;
		struct task *t;

		if (!*s.key)
			die_usage("no key in %s (use -r for a prefix)", src);
		/* The size sizes the progress bar and the copy's put. */
		rc = strata_object_stat(c, s.bucket, s.key, &st);
		if (rc) {
			url_free(&s);
			url_free(&d);
			return fail(src, rc);
		}
		t = task_add(x, rd ? T_COPY : T_DOWN);
		t->bucket = xstrdup(s.bucket);
		t->key = xstrdup(s.key);
		t->size = st->size;
		strata_stat_free(st);
		if (rd) {
			size_t kl = strlen(d.key);

			t->dbucket = xstrdup(d.bucket);
			t->dkey = !kl || d.key[kl - 1] == '/' ?
				  xasprintf("%s%s", d.key, base_name(s.key)) :
				  xstrdup(d.key);
		} else if (strcmp(dst, "-") && (is_dir(dst) ||
			   dst[strlen(dst) - 1] == '/')) {
			t->local = xasprintf("%s/%s", dst, base_name(s.key));
		} else {
			t->local = xstrdup(dst);
		}
		url_free(&s);
		url_free(&d);
		return EXIT_OK;
	}
	if (!rd && !strcmp(dst, "-"))
		die_usage("%s", "cannot copy a tree to standard output");
	if (!rd && !is_dir(dst) && access(dst, F_OK) == 0)
		die_usage("%s: %s is not a directory", only_diff ? "sync" :
			  "cp -r", dst);
	char *spfx = dir_prefix(s.key);

	rc = list_all(c, s.bucket, spfx, &r);
	for (size_t i = 0; !rc && i < r.n; i++) {
		const char *rel = r.r[i].key + strlen(spfx);
		struct task *t;

		if (!rd) {
			size_t rl = strlen(rel);
			bool marker = rl && rel[rl - 1] == '/';
			char *path;
			struct stat st;

			/* A key ending in '/' names a directory; only an
			 * empty one (a directory marker) can be one. */
			if (!safe_relpath(rel) || (marker && r.r[i].size)) {
				fputs("strata: skipping ", stderr);
				text_out(stderr, r.r[i].key);
				fputs(": not a safe local path\n", stderr);
				x->plan_failed++;
				continue;
			}
			path = xasprintf("%s/%s", dst, rel);
			if (marker) {
				int mrc = make_parents(path);

				if (mrc) {
					fputs("strata: ", stderr);
					text_out(stderr, path);
					fprintf(stderr, ": %s\n", strerror(-mrc));
					x->plan_failed++;
				}
				free(path);
				continue;
			}
			if (only_diff && stat(path, &st) == 0 &&
			    (uint64_t)st.st_size == r.r[i].size &&
			    same_content(c, s.bucket, &r.r[i], path)) {
				free(path);
				continue;
			}
			t = task_add(x, T_DOWN);
			t->local = path;
		} else {
			char *pfx = dir_prefix(d.key);

			t = task_add(x, T_COPY);
			t->dbucket = xstrdup(d.bucket);
			t->dkey = xasprintf("%s%s", pfx, rel);
			free(pfx);
		}
		t->bucket = xstrdup(s.bucket);
		t->key = xstrdup(r.r[i].key);
		t->size = r.r[i].size;
	}
	if (rc)
		rc = fail(src, rc);
	free(spfx);
	remotes_free(&r);
	url_free(&s);
	url_free(&d);
	return rc;
}

static int cmd_cp(strata_client *c, const struct opts *o, char **args, int n,
		  bool sync)
{
	struct xfer x = { .c = c, .o = o };
	int rc;

	if (n != 2)
		die_usage("%s takes SRC and DST", sync ? "sync" : "cp");
	if (sync && (!is_remote(args[0]) == !is_remote(args[1])))
		die_usage("%s", "sync copies between a local directory and a "
			  "strata:// prefix");
	pthread_mutex_init(&x.out_lock, NULL);
	rc = plan_copy(c, o, &x, args[0], args[1], sync);
	if (rc)
		return rc;
	return xfer_run(&x, sync ? "sync" : "cp");
}

/* ---- Main ---------------------------------------------------------------- */

static const struct cmd_help *find_help(const char *cmd)
{
	for (size_t i = 0; i < sizeof(cmd_helps) / sizeof(cmd_helps[0]); i++)
		if (!strcmp(cmd_helps[i].name, cmd))
			return &cmd_helps[i];
	return NULL;
}

enum { O_ENDPOINT = 256, O_ACCESS, O_SECRET, O_CA, O_JSON, O_JOBS,
       O_CTYPE, O_RANGE, O_VERSION, O_ADMIN, O_POLICY, O_NO_POLICY, O_ATTR,
       O_NO_ATTRS };

/* Overwrite the --secret-key argument once libstrata holds its copy:
 * anyone on the host reads command lines (ps(1), /proc/PID/cmdline). */
static void scrub_secret_arg(const char *arg)
{
	if (arg)
		memset((char *)arg, 'x', strlen(arg));
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "endpoint", required_argument, NULL, O_ENDPOINT },
		{ "access-key", required_argument, NULL, O_ACCESS },
		{ "secret-key", required_argument, NULL, O_SECRET },
		{ "ca", required_argument, NULL, O_CA },
		{ "json", no_argument, NULL, O_JSON },
		{ "jobs", required_argument, NULL, O_JOBS },
		{ "content-type", required_argument, NULL, O_CTYPE },
		{ "range", required_argument, NULL, O_RANGE },
		{ "admin", no_argument, NULL, O_ADMIN },
		{ "policy", required_argument, NULL, O_POLICY },
		{ "no-policy", no_argument, NULL, O_NO_POLICY },
		{ "attr", required_argument, NULL, O_ATTR },
		{ "no-attrs", no_argument, NULL, O_NO_ATTRS },
		{ "recursive", no_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->jobs = 4;
	while ((c = getopt_long(argc, argv, "rqhj:", longs, NULL)) != -1) {
		switch (c) {
		case O_ENDPOINT: o->endpoint = optarg; break;
		case O_ACCESS: o->access_key = optarg; break;
		case O_SECRET: o->secret_key = optarg; break;
		case O_CA: o->ca = optarg; break;
		case O_JSON: o->json = true; break;
		case O_CTYPE: o->content_type = optarg; break;
		case O_RANGE: o->range = optarg; break;
		case O_ADMIN: o->admin = true; break;
		case O_POLICY: o->policy_file = optarg; break;
		case O_NO_POLICY: o->no_policy = true; break;
		case O_NO_ATTRS: o->no_attrs = true; break;
		case O_ATTR: {
			char *eq = strchr(optarg, '=');

			if (!eq || eq == optarg)
				die_usage("--attr wants NAME=VALUE, not %s",
					  optarg);
			if (o->nattrs == sizeof(o->attrs) / sizeof(o->attrs[0]))
				die_usage("%s", "at most 64 --attr");
			*eq = 0;
			o->attrs[o->nattrs++] = optarg;
			o->attrs[o->nattrs++] = eq + 1;
			break;
		}
		case 'r': o->recursive = true; break;
		case 'q': o->quiet = true; break;
		case 'h': o->help = true; break;
		case 'j':
		case O_JOBS: {
			uint64_t v;

			/* Digits only: strtoul() took "-18446744073709551615"
			 * for 1. */
			if (args_u64(optarg, 1, MAX_JOBS, &v))
				die_usage("--jobs wants 1..256, not %s",
					  optarg);
			o->jobs = (unsigned)v;
			break;
		}
		case O_VERSION: o->version = true; break;
		default:
			fputs("Try 'strata --help'.\n", stderr);
			exit(EXIT_USAGE);
		}
	}
}

/*
 * Put /dev/null on each of fds 0-2 that is closed, so that no socket or
 * file opened later becomes one (a TLS socket as fd 1 would be sent the
 * object that cat writes there).  It is opened the wrong way round (0 for
 * writing, 1 and 2 for reading) so that using it fails with EBADF instead
 * of reading nothing or discarding output; o says which were closed.
 */
static void std_fds_open(struct opts *o)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		/* The lower ones are open: open() returns fd. */
		if (open("/dev/null", fd ? O_RDONLY : O_WRONLY) != fd)
			exit(EXIT_FAILED);
		if (fd == 0)
			o->stdin_closed = true;
		else if (fd == 1)
			o->stdout_closed = true;
	}
}

/* Standard output that could not be written fails the command. */
static int out_done(const struct opts *o, int rc)
{
	bool flushed = fflush(stdout) == 0;

	if (flushed && !ferror(stdout))
		return rc;
	if (rc)
		return rc;
	/* The reader went away (strata ls | head): nothing to report, as
	 * for strata cat. */
	if (errno == EPIPE)
		return EXIT_FAILED;
	if (o->stdout_closed)
		fputs("strata: standard output is closed\n", stderr);
	else
		fprintf(stderr, "strata: standard output: %s\n",
			flushed ? "write error" : strerror(errno));
	return EXIT_FAILED;
}

/* The CA bundle can be read and holds a PEM certificate: otherwise the
 * TLS layer's "Protocol error" would not say which file or why. */
static bool ca_file_ok(const char *path)
{
	STACK_OF(X509_INFO) *infos;
	/* O_NONBLOCK: a FIFO does not wait for a writer (it is refused:
	 * it would block the read below, and /dev/urandom never end it). */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	const char *why = NULL;
	struct stat st;
	int certs = 0;
	FILE *f = NULL;

	if (fd < 0 || fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (S_ISDIR(st.st_mode))
		why = strerror(EISDIR);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (fcntl(fd, F_SETFL, 0) != 0 || !(f = fdopen(fd, "r")))
		why = strerror(errno);
	if (why) {
		fprintf(stderr, "strata: CA file %s: %s\n", path, why);
		if (fd >= 0)
			close(fd);
		return false;
	}
	infos = PEM_X509_INFO_read(f, NULL, NULL, NULL);
	fclose(f);
	for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++)
		certs += sk_X509_INFO_value(infos, i)->x509 != NULL;
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	ERR_clear_error();
	if (!certs)
		fprintf(stderr, "strata: CA file %s: %s\n", path, infos ?
			"no certificate in it" : "not a PEM certificate bundle");
	return certs > 0;
}

/* The config file libstrata reads (strata_config_from_env()), or NULL. */
static char *config_file(void)
{
	const char *cf = getenv("STRATA_CONFIG");
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	if (cf && *cf)
		return xstrdup(cf);
	if (xdg && *xdg)
		return xasprintf("%s/strata/config", xdg);
	return home && *home ? xasprintf("%s/.config/strata/config", home) :
	       NULL;
}

/* A "secret_key = value" line with a value, as libstrata parses them. */
static bool holds_secret(FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	while (!found && getline(&line, &cap, f) >= 0) {
		char *s = line, *eq = strchr(line, '='), *e;

		while (isspace((unsigned char)*s))
			s++;
		if (!eq || *s == '#' || *s == ';' || *s == '[')
			continue;
		for (e = eq; e > s && isspace((unsigned char)e[-1]); e--)
			;
		if (e - s != 10 || strncmp(s, "secret_key", 10))
			continue;
		for (s = eq + 1; *s; s++)
			if (!isspace((unsigned char)*s) && *s != '"' &&
			    *s != '\'')
				found = true;
	}
	free(line);
	return found;
}

/*
 * A config file holding a secret key that its group or others may read:
 * say so once, as ssh does for a private key, but use it all the same.
 * A file libstrata refused has been reported already.
 */
static void config_mode_check(void)
{
	char *path = config_file();
	struct stat st;
	FILE *f;
	int fd;

	if (!path)
		return;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_mode & (S_IRGRP | S_IROTH)) && (f = fdopen(fd, "r"))) {
		fd = -1;
		if (holds_secret(f)) {
			fputs("strata: warning: ", stderr);
			text_out(stderr, path);
			fprintf(stderr, " holds a secret key and is "
				"readable by %s (mode %04o); make it private: "
				"chmod 600 ",
				st.st_mode & S_IRGRP ? st.st_mode & S_IROTH ?
				"its group and others" : "its group" :
				"others", (unsigned)(st.st_mode & 07777));
			text_out(stderr, path);
			fputc('\n', stderr);
		}
		fclose(f);
	}
	if (fd >= 0)
		close(fd);
	free(path);
}

/* strata_client_new() failed with rc: say why as exactly as we can. */
static int connect_fail(const char *ep, int rc)
{
	const char *why = strata_error_message();

	/* A node at its connection limit accepts, then closes at once. */
	if (rc == -EPIPE || rc == -ECONNRESET) {
		fprintf(stderr, "strata: connecting to %s: the node closed "
			"the connection during the handshake (%s); it may be "
			"at its connection limit\n", ep, strata_strerror(rc));
		return EXIT_FAILED;
	}
	/* libstrata's own words: a bad endpoint, a name that did not
	 * resolve. */
	if (rc == STRATA_ECONFIG && *why) {
		fprintf(stderr, "strata: %s\n", why);
		return EXIT_USAGE;
	}
	fprintf(stderr, "strata: connecting to %s: %s\n", ep,
		*why ? why : strata_strerror(rc));
	return rc == STRATA_ECONFIG ? EXIT_USAGE : EXIT_FAILED;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct strata_config cfg = { 0 };
	strata_client *c = NULL;
	const struct cmd_help *help;
	char err[512] = "";
	const char *cmd;
	char **args, self[256];
	int nargs, rc;

	/* First, before anything opens a file or a socket. */
	std_fds_open(&o);
	o.umask = umask(0);
	umask(o.umask);
	/* Writing to a closed pipe (strata cat | head) is an error return,
	 * not a death. */
	signal(SIGPIPE, SIG_IGN);
	catch_fatal_signals();
	parse_args(argc, argv, &o);
	if (o.version) {
		if (optind < argc)
			die_usage("--version takes no arguments, not %s",
				  argv[optind]);
		printf("strata %s\n", STRATA_VERSION_STRING);
		return out_done(&o, EXIT_OK);
	}
	if (optind >= argc) {
		fputs(usage_text, o.help ? stdout : stderr);
		return o.help ? out_done(&o, EXIT_OK) : EXIT_USAGE;
	}
	cmd = argv[optind];
	args = argv + optind + 1;
	nargs = argc - optind - 1;
	if (!strcmp(cmd, "help")) {
		if (nargs > 1)
			die_usage("%s", "help takes at most one command");
		help = nargs ? find_help(args[0]) : NULL;
		if (nargs && !help)
			die_usage("unknown command: %s", args[0]);
		fputs(help ? help->text : usage_text, stdout);
		return out_done(&o, EXIT_OK);
	}
	help = find_help(cmd);
	if (!help)
		die_usage("unknown command: %s", cmd);
	if (o.help) {
		fputs(help->text, stdout);
		return out_done(&o, EXIT_OK);
	}
	if (!strcmp(cmd, "admin") && nargs >= 1 && !strcmp(args[0], "audit")) {
		if (nargs != 3 || strcmp(args[1], "verify"))
			die_usage("%s", "admin audit verify FILE");
		return out_done(&o, cmd_audit_verify(&o, args[2]));
	}
	if (!strcmp(cmd, "admin") && nargs == 1 && !strcmp(args[0], "tiers"))
		;
	else if (!strcmp(cmd, "admin") &&
	    (nargs < 2 || strcmp(args[0], "key") ||
	     (strcmp(args[1], "create") && strcmp(args[1], "list") &&
	      strcmp(args[1], "delete") && strcmp(args[1], "set") &&
	      strcmp(args[1], "show")) ||
	     ((!strcmp(args[1], "delete") || !strcmp(args[1], "set")) &&
	      nargs != 3) ||
	     (!strcmp(args[1], "show") && nargs > 3) ||
	     ((!strcmp(args[1], "create") || !strcmp(args[1], "list")) &&
	      nargs != 2)))
		die_usage("%s", "admin key create|list|delete ID|set ID|show [ID], "
			  "admin tiers, or admin audit verify FILE");
	if (!strcmp(cmd, "admin") && nargs >= 2 && !strcmp(args[1], "set") &&
	    !o.policy_file && !o.no_policy && !o.nattrs && !o.no_attrs)
		die_usage("%s", "admin key set wants --policy FILE, --no-policy, "
			  "--attr NAME=VALUE or --no-attrs");
	if ((o.policy_file && o.no_policy) || (o.nattrs && o.no_attrs))
		die_usage("%s", "--policy and --no-policy, or --attr and "
			  "--no-attrs, do not go together");
	if ((o.policy_file || o.no_policy || o.nattrs || o.no_attrs) &&
	    (strcmp(cmd, "admin") || nargs < 2 ||
	     (strcmp(args[1], "create") && strcmp(args[1], "set"))))
		die_usage("%s", "--policy, --no-policy, --attr and --no-attrs "
			  "go with admin key create or set");

	cfg.endpoint = o.endpoint;
	cfg.access_key = o.access_key;
	cfg.secret_key = o.secret_key;
	cfg.ca_file = o.ca;
	cfg.pool_size = 2 * o.jobs;
	rc = strata_config_from_env(&cfg, err, sizeof(err));
	scrub_secret_arg(o.secret_key);
	if (rc) {
		fprintf(stderr, "strata: %s\n", *err ? err :
			strata_strerror(rc));
		return EXIT_USAGE;
	}
	config_mode_check();
	if (!cfg.endpoint || !cfg.access_key || !cfg.secret_key) {
		/* Name the file libstrata read (strata_config_from_env). */
		const char *cf = getenv("STRATA_CONFIG");
		const char *xdg = getenv("XDG_CONFIG_HOME");

		fprintf(stderr, "strata: no %s: give --%s, set STRATA_%s or "
			"put %s in %s%s\n",
			!cfg.endpoint ? "endpoint" : "credentials",
			!cfg.endpoint ? "endpoint" : "access-key/--secret-key",
			!cfg.endpoint ? "ENDPOINT" : "ACCESS_KEY/_SECRET_KEY",
			!cfg.endpoint ? "endpoint" : "access_key/secret_key",
			cf && *cf ? cf : xdg && *xdg ? xdg :
			"~/.config/strata/config",
			!(cf && *cf) && xdg && *xdg ? "/strata/config" : "");
		strata_config_release(&cfg);
		return EXIT_USAGE;
	}
	if (cfg.ca_file && !ca_file_ok(cfg.ca_file)) {
		strata_config_release(&cfg);
		return EXIT_USAGE;
	}
	rc = strata_client_new(&cfg, &c);
	if (rc) {
		rc = connect_fail(cfg.endpoint, rc);
		strata_config_release(&cfg);
		return rc;
	}
	snprintf(self, sizeof(self), "%s", cfg.access_key);
	strata_config_release(&cfg);

	if (!strcmp(cmd, "mb") || !strcmp(cmd, "rb"))
		rc = cmd_mb_rb(c, cmd[0] == 'm', args, nargs);
	else if (!strcmp(cmd, "ls"))
		rc = cmd_ls(c, &o, args, nargs);
	else if (!strcmp(cmd, "cp"))
		rc = cmd_cp(c, &o, args, nargs, false);
	else if (!strcmp(cmd, "sync"))
		rc = cmd_cp(c, &o, args, nargs, true);
	else if (!strcmp(cmd, "rm"))
		rc = cmd_rm(c, &o, args, nargs);
	else if (!strcmp(cmd, "cat"))
		rc = cmd_cat(c, &o, args, nargs);
	else if (!strcmp(cmd, "admin"))
		rc = cmd_admin(c, &o, args, self);
	else if (!strcmp(cmd, "lifecycle"))
		rc = cmd_lifecycle(c, &o, args, nargs);
	else
		rc = cmd_stat(c, &o, args, nargs);
	strata_client_free(c);
	return out_done(&o, rc);
}
