// SPDX-License-Identifier: Apache-2.0
/*
 * Fault injection points.
 *
 * Every I/O site of the engine (segment create/write/fsync/read, index
 * read/write) asks fault_hit() before doing the real work; a test arms a point
 * to make the next N operations there fail with a chosen errno, after letting
 * `skip` operations through.  As in SQLite, this is how tests reach every
 * error path without a broken disk.  An unarmed point costs one relaxed
 * atomic load.  Thread-safe: index writes run on worker threads.
 */
#ifndef STRATA_FAULT_H
#define STRATA_FAULT_H

#include <pthread.h>
#include <stdatomic.h>

enum fault_point {
	FAULT_SEG_CREATE,	/* creating a segment file */
	FAULT_SEG_WRITE,	/* appending a chunk record */
	FAULT_SEG_FSYNC,	/* fdatasync of a segment */
	FAULT_SEG_READ,		/* reading a chunk record */
	FAULT_INDEX_READ,	/* a RocksDB point read */
	FAULT_INDEX_WRITE,	/* a RocksDB write (batch commit or put_sync) */
	FAULT__COUNT
};

struct fault {
	atomic_int armed;	/* any point armed: the fast path */
	pthread_mutex_t lock;
	struct {
		unsigned long skip;	/* let this many through first */
		unsigned long count;	/* then fail this many */
		int err;		/* with this negative errno */
		unsigned long hits;	/* failures injected so far */
	} pt[FAULT__COUNT];
};

void fault_init(struct fault *f);
void fault_release(struct fault *f);

/*
 * Arm a point: after `skip` passing operations, the next `count` fail with
 * `err` (a negative errno such as -EIO or -ENOSPC).  count 0 disarms.
 */
void fault_arm(struct fault *f, enum fault_point p, unsigned long skip,
	       unsigned long count, int err);

/* Returns 0 (go ahead) or the armed negative errno (fail this operation).
 * f may be NULL (no fault points): always 0. */
int fault_hit(struct fault *f, enum fault_point p);

/* Failures injected at a point so far. */
unsigned long fault_hits(struct fault *f, enum fault_point p);

/* Parse "point:skip:count:errno,..." (e.g. "seg_write:3:1:ENOSPC") and arm
 * the points; used by the STRATA_FAULTS environment variable in tests.
 * Returns 0 or -EINVAL. */
int fault_arm_spec(struct fault *f, const char *spec);

#endif
