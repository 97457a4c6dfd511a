// SPDX-License-Identifier: Apache-2.0
/*
 * audit: the audit log writer (audit.h), in the engine loop's thread.
 *
 * Invariants:
 *   - the file ends with a complete line, or is empty, whenever the loop
 *     runs: audit_open cuts a torn line a crash left, and a write that
 *     fails half way is cut back to its last complete line;
 *   - seq and head are those of the last record formatted, written or not:
 *     records lost to a failed write leave a gap that `strata admin audit
 *     verify` reports (records removed), which is the truth; the chain
 *     never silently closes over them;
 *   - buf holds whole lines only, at most FLUSH_AT + one line.
 *
 * A record's way out:
 *
 *   audit_append --> buf --[check: after this iteration's I/O callbacks,
 *                           prepare: before the loop next sleeps,
 *                           or at once past FLUSH_AT]--> audit_flush
 *     --> write(2) --[sync timer, sync_ms after the first unsynced
 *                     write]--> fdatasync in libuv's thread pool
 *                     (uv_fs_fdatasync: the loop never waits for a
 *                     disk sync; writes go on meanwhile and the next
 *                     sync takes them)
 *
 * The timer runs only while something is unsynced, so an idle node does
 * not wake up every sync_ms.  All three handles are unreferenced: the log
 * never keeps a loop alive on its own; audit_close writes what is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "keys.h"
#include "log.h"
#include "strata/error.h"
#include "banned.h"

/* Written as soon as buf holds this much, so one write (and one pass of
 * the loop blocked on it) stays small. */
#define FLUSH_AT (64u << 10)
/* audit_open reads this much of the file's end: a torn line and the
 * complete line before it, each at most AUDIT_LINE_MAX and its newline. */
#define TAIL_READ (2 * ((size_t)AUDIT_LINE_MAX + 1))

struct audit {
	uv_loop_t *loop;
	int fd;
	char *path;
	uint32_t sync_ms;
	uv_check_t check;
	uv_prepare_t prepare;
	uv_timer_t sync;
	char *buf;
	size_t len;
	uint64_t seq;			/* the last record's */
	uint8_t head[AUDIT_HASH_LEN];	/* its hash */
	bool dirty;			/* written since the last fdatasync */
	bool syncing;			/* sync_req in the thread pool */
	bool closing;			/* audit_close waits for it */
	uv_fs_t sync_req;
	bool oom_logged;
	off_t cut_to;			/* -1, or a torn line to cut first */
	/* Failures in a row, per kind: the first is logged, and the
	 * success after them. */
	uint64_t write_fails, sync_fails, lost;
	struct audit_stats st;
	int handles;			/* open, for audit_close */
	void (*close_cb)(void *arg);
	void *close_arg;
};

static ssize_t pread_all(int fd, char *buf, size_t len, off_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static const char *last_nl(const char *s, size_t n)
{
	while (n--)
		if (s[n] == '\n')
			return s + n;
	return NULL;
}

/*
 * The chain so far, from the file's last complete line (size bytes, > 0);
 * a torn line after it is cut off, but only once that line proved to be
 * a record: a file that is refused is left as it was.
 */
static int load_tail(struct audit *a, off_t size)
{
	size_t n = (size_t)size < TAIL_READ ? (size_t)size : TAIL_READ;
	off_t base = size - (off_t)n;
	const char *nl, *start;
	size_t end, torn;
	ssize_t got;
	char *t;
	int rc = 0;

	t = malloc(n);
	if (!t)
		return -ENOMEM;
	got = pread_all(a->fd, t, n, base);
	if (got < 0 || (size_t)got != n) {
		rc = got < 0 ? (int)got : -EIO;
		log_err("audit", "%s: cannot read its end: %s", a->path,
			strerror(-rc));
		goto out;
	}
	end = n;
	if (t[n - 1] != '\n') {
		nl = last_nl(t, n);
		end = nl ? (size_t)(nl - t) + 1 : 0;
	}
	torn = n - end;
	if (torn > AUDIT_LINE_MAX) {
		log_err("audit", "%s: its last %zu bytes have no newline: "
			"longer than any audit record, so not one a crash cut "
			"short; this is not an audit log, or it was edited.  "
			"Move it aside (strata admin audit verify tells what "
			"is wrong with it) and start again", a->path, torn);
		rc = STRATA_ECORRUPT;
		goto out;
	}
	if (end) {
		nl = last_nl(t, end - 1);
		start = nl ? nl + 1 : t;
		/* Without a newline before it in TAIL_READ bytes (past the
		 * file's start), the line is longer than any record and
		 * audit_parse_line says so. */
		if (audit_parse_line(start, (size_t)(t + end - 1 - start),
				     &a->seq, a->head)) {
			log_err("audit", "%s: its last line is not an audit "
				"record: this is not an audit log, or its end "
				"was edited.  A new chain will not be started "
				"in it: move it aside (strata admin audit "
				"verify tells what is wrong with it) and "
				"start again", a->path);
			rc = STRATA_ECORRUPT;
			goto out;
		}
	}
	if (torn) {
		if (ftruncate(a->fd, base + (off_t)end) < 0) {
			rc = -errno;
			log_err("audit", "%s: cannot cut off its torn last "
				"line: %s", a->path, strerror(errno));
			goto out;
		}
		log_warn("audit", "%s: cut off a torn last line (%zu bytes, "
			 "a write that a crash interrupted); the chain goes "
			 "on after seq %" PRIu64, a->path, torn, a->seq);
	}
out:
	free(t);
	return rc;
}

static int open_file(struct audit *a)
{
	struct stat st;
	int flags, rc;

	/*
	 * O_NOFOLLOW: as for key files, the daemon writes where the config
	 * says and nowhere a link planted there points.  O_NONBLOCK: a FIFO
	 * at the path must not hang the start; fstat refuses it.
	 */
	a->fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC |
		     O_NOFOLLOW | O_NONBLOCK, 0600);
	if (a->fd < 0) {
		rc = -errno;
		if (rc == -ELOOP)
			log_err("audit", "%s is a symbolic link, which is not "
				"followed: name the log file itself", a->path);
		else
			log_err("audit", "%s: %s", a->path, strerror(-rc));
		return rc;
	}
	if (fstat(a->fd, &st) < 0) {
		rc = -errno;
		log_err("audit", "%s: %s", a->path, strerror(-rc));
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("audit", "%s is not a regular file", a->path);
		return -EINVAL;
	}
	flags = fcntl(a->fd, F_GETFL);
	if (flags < 0 || fcntl(a->fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		return -errno;
	if (st.st_mode & 077)
		log_warn("audit", "%s is mode %04o: others than its owner may "
			 "read who did what (chmod 600 %s)", a->path,
			 (unsigned)(st.st_mode & 07777), a->path);
	if (st.st_size)
		return load_tail(a, st.st_size);
	/* Perhaps created just now. */
	/* A new file's name must survive a crash as its records do. */
	rc = keys_fsync_parent(a->path);
	if (rc)
		log_warn("audit", "%s: cannot sync its directory: %s", a->path,
			 strerror(-rc));
	return 0;
}

static void on_check(uv_check_t *h)
{
	audit_flush(h->data);
}

static void on_prepare(uv_prepare_t *h)
{
	audit_flush(h->data);
}

/* A sync's outcome (err: 0 or an errno), counted and logged once per
 * run of failures. */
static void sync_result(struct audit *a, int err)
{
	if (err) {
		a->st.errors++;
		if (!a->sync_fails++)
			log_err("audit", "%s: fdatasync: %s (records written "
				"since the last sync may be lost in a crash)",
				a->path, strerror(err));
		return;
	}
	a->st.syncs++;
	if (a->sync_fails) {
		log_warn("audit", "%s: fdatasync works again, after %" PRIu64
			 " failures", a->path, a->sync_fails);
		a->sync_fails = 0;
	}
}

static void close_now(struct audit *a);
static void on_sync(uv_timer_t *h);

static void on_synced(uv_fs_t *req)
{
	struct audit *a = req->data;
	ssize_t res = req->result;

	uv_fs_req_cleanup(req);
	a->syncing = false;
	sync_result(a, res < 0 ? (int)-res : 0);
	if (a->closing) {
		close_now(a);
		return;
	}
	/* Written while it synced: the next sync in sync_ms. */
	if (a->dirty && !uv_is_active((uv_handle_t *)&a->sync))
		uv_timer_start(&a->sync, on_sync, a->sync_ms, 0);
}

static void on_sync(uv_timer_t *h)
{
	struct audit *a = h->data;
	int rc;

	if (!a->dirty || a->syncing)
		return;		/* on_synced re-arms if written meanwhile */
	a->dirty = false;
	a->sync_req.data = a;
	rc = uv_fs_fdatasync(a->loop, &a->sync_req, a->fd, on_synced);
	if (rc < 0) {
		sync_result(a, -rc);
		return;
	}
	a->syncing = true;
}

int audit_open(uv_loop_t *loop, const char *path, uint32_t sync_ms,
	       struct audit **out)
{
	struct audit *a;
	int rc;

	*out = NULL;
	if (!path || !*path || !sync_ms)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->fd = -1;
	a->cut_to = -1;
	a->loop = loop;
	a->sync_ms = sync_ms;
	a->path = strdup(path);
	a->buf = malloc(FLUSH_AT + AUDIT_LINE_MAX);
	if (!a->path || !a->buf) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = open_file(a);
	if (rc)
		goto fail;
	a->st.seq = a->seq;
	uv_check_init(loop, &a->check);
	uv_prepare_init(loop, &a->prepare);
	uv_timer_init(loop, &a->sync);
	a->check.data = a->prepare.data = a->sync.data = a;
	uv_unref((uv_handle_t *)&a->check);
	uv_unref((uv_handle_t *)&a->prepare);
	uv_unref((uv_handle_t *)&a->sync);
	log_info("audit", "%s: %s at seq %" PRIu64, path,
		 a->seq ? "the chain goes on" : "a new chain begins",
		 a->seq + 1);
	*out = a;
	return 0;
fail:
	if (a->fd >= 0)
		close(a->fd);
	free(a->buf);
	free(a->path);
	free(a);
	return rc;
}

static void arm_flush(struct audit *a)
{
	if (uv_is_active((uv_handle_t *)&a->check))
		return;
	uv_check_start(&a->check, on_check);
	uv_prepare_start(&a->prepare, on_prepare);
}

void audit_append(struct audit *a, const struct audit_record *r)
{
	uint8_t hash[AUDIT_HASH_LEN];
	char *line;
	size_t n;

	if (audit_format(a->seq + 1, a->head, r, &line, &n, hash)) {
		/* Not formatted, so not in the chain: no gap. */
		a->st.errors++;
		a->st.dropped++;
		if (!a->oom_logged)
			log_err("audit", "%s: out of memory: a record is lost "
				"(counted, logged once)", a->path);
		a->oom_logged = true;
		return;
	}
	memcpy(a->buf + a->len, line, n);
	a->len += n;
	free(line);
	a->seq++;
	memcpy(a->head, hash, AUDIT_HASH_LEN);
	a->st.records++;
	a->st.seq = a->seq;
	if (a->len >= FLUSH_AT)
		audit_flush(a);
	else
		arm_flush(a);
}

static uint64_t count_lines(const char *s, size_t n)
{
	uint64_t k = 0;

	for (const char *p = s; (p = memchr(p, '\n', n - (size_t)(p - s)));
	     p++)
		k++;
	return k;
}

/*
 * A write failed after done of a->len bytes: keep the complete lines it
 * wrote, cut the rest (a torn line in the middle of the file would fail
 * every later verification), drop what was not written.
 */
static void write_failed(struct audit *a, size_t done, int err)
{
	const char *nl = last_nl(a->buf, done);
	size_t keep = nl ? (size_t)(nl - a->buf) + 1 : 0;
	uint64_t lost = count_lines(a->buf + keep, a->len - keep);
	off_t end;

	a->st.errors++;
	a->st.bytes += keep;
	a->st.dropped += lost;
	a->lost += lost;
	if (keep)
		a->dirty = true;
	if (done > keep) {
		/* O_APPEND wrote at the file's end, whatever it is now.  Cut
		 * now; if that fails too, before the next write. */
		end = lseek(a->fd, 0, SEEK_END);
		if (end >= (off_t)(done - keep) &&
		    ftruncate(a->fd, end - (off_t)(done - keep)) < 0)
			a->cut_to = end - (off_t)(done - keep);
	}
	if (!a->write_fails++)
		log_err("audit", "%s: write: %s: %" PRIu64 " records lost "
			"(the chain shows them missing); requests go on",
			a->path, strerror(err), lost);
}

void audit_flush(struct audit *a)
{
	size_t done = 0;
	int err = 0;

	uv_check_stop(&a->check);
	uv_prepare_stop(&a->prepare);
	if (!a->len)
		return;
	if (a->cut_to >= 0) {
		if (ftruncate(a->fd, a->cut_to) < 0) {
			write_failed(a, 0, errno);
			a->len = 0;
			return;
		}
		a->cut_to = -1;
	}
	while (done < a->len) {
		ssize_t n = write(a->fd, a->buf + done, a->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			break;
		}
		done += (size_t)n;
	}
	if (err) {
		write_failed(a, done, err);
	} else {
		a->st.bytes += a->len;
		a->dirty = true;
		if (a->write_fails) {
			log_warn("audit", "%s: writes work again, after %"
				 PRIu64 " failures and %" PRIu64 " records "
				 "lost", a->path, a->write_fails, a->lost);
			a->write_fails = a->lost = 0;
		}
	}
	a->len = 0;
	if (a->dirty && !uv_is_active((uv_handle_t *)&a->sync))
		uv_timer_start(&a->sync, on_sync, a->sync_ms, 0);
}

void audit_stats(const struct audit *a, struct audit_stats *st)
{
	*st = a->st;
}

static void on_closed(uv_handle_t *h)
{
	struct audit *a = h->data;
	void (*cb)(void *arg) = a->close_cb;
	void *arg = a->close_arg;

	if (--a->handles)
		return;
	free(a->buf);
	free(a->path);
	free(a);
	if (cb)
		cb(arg);
}

void audit_close(struct audit *a, void (*cb)(void *arg), void *arg)
{
	if (!a) {
		if (cb)
			cb(arg);
		return;
	}
	audit_flush(a);
	uv_timer_stop(&a->sync);
	a->close_cb = cb;
	a->close_arg = arg;
	if (a->syncing) {
		a->closing = true;	/* on_synced goes on */
		return;
	}
	close_now(a);
}

/* The last sync, on the loop (the node is stopping), then the file and
 * the handles. */
static void close_now(struct audit *a)
{
	if (a->dirty) {
		a->dirty = false;
		sync_result(a, fdatasync(a->fd) < 0 ? errno : 0);
	}
	if (close(a->fd) < 0) {
		a->st.errors++;
		log_err("audit", "%s: close: %s", a->path, strerror(errno));
	}
	a->fd = -1;
	a->handles = 3;
	uv_close((uv_handle_t *)&a->check, on_closed);
	uv_close((uv_handle_t *)&a->prepare, on_closed);
	uv_close((uv_handle_t *)&a->sync, on_closed);
}
