// SPDX-License-Identifier: Apache-2.0
/*
 * audit: stratad's audit log writer (the format: proto/audit_format.h).
 *
 * One record per request answered (who, from where, what, on which
 * bucket and key, the result, bytes in and out), appended to one file
 * ([audit] path) in the engine loop's thread.  Records are buffered and
 * written at the end of each loop iteration (after its I/O callbacks, and
 * before the loop next sleeps), or at once past 64 KiB; the file is
 * fdatasync'd sync_ms ([audit] sync_interval_ms) after the first write
 * not yet synced, and at close: a crash loses at most that much of the
 * tail.  After a restart the chain goes on from the file's last record; a
 * torn last line (a crash in the middle of a write) is cut off first,
 * with a warning.
 *
 * A write error is logged (the first of a run of them, and the success
 * that ends it) and counted; requests go on.  The records it loses stay
 * in the chain's count: the file shows a gap there (verify: "records
 * removed"), rather than a chain that closes over them unseen.  A write
 * cut short is cut back to its last complete line, so later records are
 * not glued to a torn one.
 */
#ifndef STRATA_AUDIT_H
#define STRATA_AUDIT_H

#include <stdint.h>
#include <uv.h>

#include "audit_format.h"

struct audit;

struct audit_stats {
	uint64_t records;		/* appended since open */
	uint64_t bytes;			/* written since open */
	uint64_t errors;		/* failed writes or syncs */
	uint64_t dropped;		/* records lost to write errors */
	uint64_t syncs;			/* fdatasyncs done */
	uint64_t seq;			/* the last record's seq */
};

/*
 * Open (create, mode 0600) the log at path and continue its chain; only
 * the file's last 32 KiB are read.  A symbolic link at path is not
 * followed.  Every error is logged ("audit: ..."), saying what to do.
 *   [in]  loop     the engine's loop: every later call runs in its thread
 *   [in]  path     the log file (copied)
 *   [in]  sync_ms  fdatasync this long after a write (> 0)
 *   [out] out      the writer, until audit_close; NULL on error
 * Errors: -EINVAL (empty path, sync_ms 0, or path is not a regular
 * file), -ENOMEM, -errno from open/fstat/read/ftruncate (-ELOOP: a
 * symbolic link); STRATA_ECORRUPT when the last complete line is not a
 * record, or the file ends in more than AUDIT_LINE_MAX bytes without a
 * newline (the file is not an audit log, or its tail was edited): the
 * node refuses to start rather than begin a new chain in it, and the
 * file is left as it was; the message says how to go on (move the file
 * aside).
 */
int audit_open(uv_loop_t *loop, const char *path, uint32_t sync_ms,
	       struct audit **out);
/* Buffer one record (loop thread only).  r's strings are copied (as the
 * formatted line) before it returns. */
void audit_append(struct audit *a, const struct audit_record *r);
/* Write what is buffered now (also done by the loop on its own). */
void audit_flush(struct audit *a);
void audit_stats(const struct audit *a, struct audit_stats *st);
/*
 * Flush, fdatasync, close the file, then the loop's handles; a is freed
 * and cb(arg) called (when cb is not NULL) once the last handle's close
 * callback has run, so the loop's uv_run ends only after.  a NULL: cb(arg)
 * at once.
 */
void audit_close(struct audit *a, void (*cb)(void *arg), void *arg);

#endif
