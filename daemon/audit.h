// SPDX-License-Identifier: Apache-2.0
/*
 * audit: stratad's audit log writer (the format: proto/audit_format.h).
 *
 * One record per request answered (who, from where, what, on which
 * bucket and key, the result, bytes in and out), appended to one file
 * ([audit] path) in the engine loop's thread.  Records are buffered and
 * written at the end of each loop iteration; the file is fdatasync'd
 * every [audit] sync_ms (and at close).  After a restart the chain goes
 * on from the file's last record; a torn last line (a crash in the middle
 * of a write) is cut off first, with a warning.
 *
 * A write error is logged (once per kind) and counted; requests go on.
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
	uint64_t seq;			/* the last record's seq */
};

/*
 * Open (create, mode 0600) the log at path and continue its chain.
 * Errors: -errno from open/read/ftruncate; STRATA_ECORRUPT when the last
 * complete line is not a record (the file is not an audit log, or its
 * tail was edited): the node refuses to start rather than break the
 * chain; the message says how to go on (move the file aside).
 */
int audit_open(uv_loop_t *loop, const char *path, uint32_t sync_ms,
	       struct audit **out);
/* Buffer one record (loop thread only). */
void audit_append(struct audit *a, const struct audit_record *r);
/* Write what is buffered now. */
void audit_flush(struct audit *a);
void audit_stats(const struct audit *a, struct audit_stats *st);
/* Flush, fdatasync, close the file and the loop's handles (cb after). */
void audit_close(struct audit *a, void (*cb)(void *arg), void *arg);

#endif
