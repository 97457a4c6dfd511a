// SPDX-License-Identifier: Apache-2.0
/*
 * segment: the table of segment files across the tier directories.
 *
 * A segment is an append-only file "seg-<id as 16 lowercase hex>.dat" in
 * one tier directory: a 64-byte header, then chunk records (record.h) back
 * to back.
 * Records are never rewritten in place; space comes back only when
 * compaction copies a segment's live records elsewhere and the file is
 * removed.
 *
 * The index (segments column family) is the truth about which segments
 * exist: a file without an index entry is an orphan of a crash (created, but
 * no commit ever referred to it) and is removed at open.
 *
 *   lifecycle:  (none) -> ACTIVE [segtab_create]         appends go here
 *               ACTIVE -> SEALED [size limit, reopen]    read-only
 *               SEALED -> DOOMED [index entry deleted]   no new pins
 *               DOOMED -> (none) [segtab_drop when pins == 0: unlink]
 *
 * A pin (reads in flight, dedup references awaiting commit) keeps a
 * segment's fd open and its index entry in place.
 */
#ifndef STRATA_SEGMENT_H
#define STRATA_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define SEGMENT_HDR_LEN 64
/* O_DIRECT alignment of offsets, lengths and buffers. */
#define SEGMENT_DIO_ALIGN 4096

struct fault;

struct segment {
	uint64_t id;
	uint8_t tier;
	uint16_t dir;
	int fd;
	int dfd;		/* O_DIRECT fd for large aligned appends, or -1
				 * (sealed segments, file systems without it) */
	uint64_t size;		/* bytes reserved, header included */
	unsigned pins;
	unsigned writes;	/* appends in flight */
	bool dirty;		/* appends completed since the last sync */
	bool dir_dirty;		/* new file: its directory needs a sync */
	bool sealed;
	bool doomed;		/* entry deleted (or being deleted) */
	bool doom_pending;	/* ... by the round in flight */
	bool compacting;	/* being compacted or moved to another tier */
	/* Heat for the tier mover: the store's clock (ms) at the last read
	 * of any chunk in it, or at creation; 0 for segments found at open
	 * (their ids order them: older is colder). */
	uint64_t atime_ms;
	struct segment *hnext;
};

#define SEGMENT_STORE_ID_LEN 16

struct segtab {
	struct segment **slots;
	size_t nslots;
	size_t count;
	char *dirs[STORE_TIERS][STORE_MAX_TIER_DIRS];
	int dirfds[STORE_TIERS][STORE_MAX_TIER_DIRS];
	unsigned ndirs[STORE_TIERS];
	unsigned rr[STORE_TIERS];
	uint64_t next_id;
	uint64_t used[STORE_TIERS];	/* bytes of segment files per tier */
	struct fault *fault;
	/* The store's id, written into every new segment's header and
	 * checked at scan: a file of another store is never taken for an
	 * orphan (and removed). */
	uint8_t store_id[SEGMENT_STORE_ID_LEN];
};

/* Reserve n more bytes at the end of an active segment. */
static inline void segment_grow(struct segtab *t, struct segment *seg,
				uint64_t n)
{
	seg->size += n;
	t->used[seg->tier] += n;
}

/* No more appends to seg.  Its O_DIRECT descriptor goes once no append
 * is in flight (here, or at the segment_write_done() of the last one):
 * kept, every segment written since the start held two descriptors. */
void segment_seal(struct segment *seg);
/* An append to seg ended (seg->writes was counted up for it). */
void segment_write_done(struct segment *seg);

/* Open the tier directories (each must exist).  Returns 0, STRATA_ECONFIG
 * (logged), -ENOMEM. */
int segtab_init(struct segtab *t, const struct store_opts *o);
/* Close every fd and free every segment (no unlinking). */
void segtab_release(struct segtab *t);

/*
 * Scan the tier directories.  For each segment file, known(arg, id) says
 * whether the index has it (1), not (0), or fails (< 0: the scan fails
 * with it, removing nothing more).  Known files are opened (sealed).  An
 * unknown file is an orphan, and removed, only when its header says it is
 * this store's (or it is shorter than a header: a create cut short);
 * a file with another store's id fails the scan with STRATA_ECONFIG (two
 * stores share a directory), and one whose header does not check is left
 * where it is, logged.  next_id ends past every id seen.
 */
int segtab_scan(struct segtab *t, int (*known)(void *arg, uint64_t id),
		void *arg);

/* Segment-named files in the tier directories (0 or more), or -errno. */
long segtab_count_files(struct segtab *t);

/*
 * Segment ids count up from 1; none comes near this, and a file named
 * with a larger one (seg-ffffffffffffffff.dat) must not wrap the next id.
 */
#define SEGMENT_ID_MAX (UINT64_C(1) << 62)

/* A segment file's name, "seg-" 16 lowercase hex digits ".dat" as the
 * store writes it, into its id (1 to SEGMENT_ID_MAX).  Returns 0, or -1 for
 * any other name (a file the store leaves alone). */
int segment_parse_name(const char *name, uint64_t *id);

struct segment *segtab_find(struct segtab *t, uint64_t id);

/* Create a new, empty active segment in `tier` (directories taken in
 * turn).  Returns 0, -errno, or an injected FAULT_SEG_CREATE error. */
int segtab_create(struct segtab *t, uint8_t tier, struct segment **out);

/* Remove a doomed, unpinned segment: unlink the file, free the struct. */
void segtab_drop(struct segtab *t, struct segment *seg);

/* Directory fd of a segment (for syncing a new file's entry). */
int segtab_dirfd(const struct segtab *t, const struct segment *seg);

/* Whether seg's file was removed from its directory while open (an rm of
 * the tier's files): its bytes are gone once the store closes. */
bool segment_unlinked(const struct segment *seg);

/* Visit every segment; fn may not add or drop segments. */
void segtab_foreach(struct segtab *t,
		    void (*fn)(void *arg, struct segment *seg), void *arg);

#endif
