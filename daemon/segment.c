// SPDX-License-Identifier: Apache-2.0
/*
 * segment: segment files and the in-memory table of them (see segment.h).
 *
 * The header is written with pwrite() when the file is created: 64 bytes
 * into the page cache, made durable by the same fdatasync that covers the
 * first records (plus a sync of the directory, done by the store's commit
 * round through io_uring).  Everything after the header goes through
 * io_uring.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "le.h"
#include "log.h"
#include "record.h"
#include "segment.h"
#include "strata/error.h"
#include "banned.h"

#define SEG_MAGIC "STRSEG01"

static size_t slot_of(const struct segtab *t, uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (t->nslots - 1);
}

static int grow(struct segtab *t)
{
	size_t n = t->nslots ? t->nslots * 2 : 64;
	struct segment **s = calloc(n, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < t->nslots; i++) {
		struct segment *seg = t->slots[i], *next;

		for (; seg; seg = next) {
			size_t j = (size_t)((seg->id * 0x9E3779B97F4A7C15ull) >> 32) & (n - 1);

			next = seg->hnext;
			seg->hnext = s[j];
			s[j] = seg;
		}
	}
	free(t->slots);
	t->slots = s;
	t->nslots = n;
	return 0;
}

static int insert(struct segtab *t, struct segment *seg)
{
	size_t i;

	if (t->count + 1 > t->nslots) {
		int rc = grow(t);
		if (rc)
			return rc;
	}
	i = slot_of(t, seg->id);
	seg->hnext = t->slots[i];
	t->slots[i] = seg;
	t->count++;
	return 0;
}

int segtab_init(struct segtab *t, const struct store_opts *o)
{
	int rc;

	memset(t, 0, sizeof(*t));
	for (int tier = 0; tier < STORE_TIERS; tier++)
		for (int d = 0; d < STORE_MAX_TIER_DIRS; d++)
			t->dirfds[tier][d] = -1;
	t->fault = o->fault;
	t->next_id = 1;
	if (o->ntier_dirs[STORE_TIER_HOT] == 0) {
		log_err("store", "no hot tier directory configured");
		return STRATA_ECONFIG;
	}
	for (int tier = 0; tier < STORE_TIERS; tier++) {
		if (o->ntier_dirs[tier] > STORE_MAX_TIER_DIRS) {
			log_err("store", "too many directories in tier %d (max %d)",
				tier, STORE_MAX_TIER_DIRS);
			rc = STRATA_ECONFIG;
			goto fail;
		}
		for (unsigned d = 0; d < o->ntier_dirs[tier]; d++) {
			const char *path = o->tier_dirs[tier][d];
			int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			if (fd < 0) {
				log_err("store", "tier directory %s: %s (create it, or mount the disk, first)",
					path, strerror(errno));
				rc = STRATA_ECONFIG;
				goto fail;
			}
			t->dirfds[tier][d] = fd;
			t->dirs[tier][d] = strdup(path);
			t->ndirs[tier] = d + 1;
			if (!t->dirs[tier][d]) {
				rc = -ENOMEM;
				goto fail;
			}
		}
	}
	rc = grow(t);
	if (rc)
		goto fail;
	return 0;
fail:
	segtab_release(t);
	return rc;
}

void segtab_release(struct segtab *t)
{
	for (size_t i = 0; i < t->nslots; i++) {
		struct segment *seg = t->slots[i], *next;

		for (; seg; seg = next) {
			next = seg->hnext;
			if (seg->fd >= 0)
				close(seg->fd);
			if (seg->dfd >= 0)
				close(seg->dfd);
			free(seg);
		}
	}
	free(t->slots);
	t->slots = NULL;
	t->nslots = t->count = 0;
	for (int tier = 0; tier < STORE_TIERS; tier++) {
		for (unsigned d = 0; d < STORE_MAX_TIER_DIRS; d++) {
			if (t->dirfds[tier][d] >= 0)
				close(t->dirfds[tier][d]);
			t->dirfds[tier][d] = -1;
			free(t->dirs[tier][d]);
			t->dirs[tier][d] = NULL;
		}
	}
}

static void seg_name(char *buf, size_t len, uint64_t id)
{
	snprintf(buf, len, "seg-%016" PRIx64 ".dat", id);
}

int segment_parse_name(const char *name, uint64_t *id)
{
	uint64_t v = 0;

	if (strncmp(name, "seg-", 4) != 0 || strlen(name) != 4 + 16 + 4 ||
	    strcmp(name + 20, ".dat") != 0)
		return -1;
	/* Not strtoull(): it takes a sign, blanks, "0x" and capitals, so
	 * "seg-000000000000000A.dat" was segment 10 too (and, short, removed
	 * as its orphan). */
	for (int i = 4; i < 20; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return -1;
	}
	if (v == 0 || v > SEGMENT_ID_MAX)
		return -1;
	*id = v;
	return 0;
}

/* Header offsets: magic 0, version 8, tier 12, id 16, store id 24 (zero
 * in files written before store ids), crc32c of 0..59 at 60. */
#define HDR_STORE_ID 24

enum hdr_state { HDR_SHORT, HDR_BAD, HDR_OURS, HDR_FOREIGN };

/* What the header of segment file `name` (id) says about its owner. */
static enum hdr_state check_header(const struct segtab *t, int dirfd,
				   const char *name, uint64_t id)
{
	static const uint8_t zero[SEGMENT_STORE_ID_LEN];
	uint8_t hdr[SEGMENT_HDR_LEN];
	ssize_t n;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return HDR_BAD;
	n = pread(fd, hdr, sizeof(hdr), 0);
	close(fd);
	if (n >= 0 && n < (ssize_t)sizeof(hdr))
		return HDR_SHORT;
	if (n != (ssize_t)sizeof(hdr) || memcmp(hdr, SEG_MAGIC, 8) != 0 ||
	    get_le32(hdr + 60) != record_crc32c(0, hdr, 60) ||
	    get_le64(hdr + 16) != id)
		return HDR_BAD;
	if (memcmp(hdr + HDR_STORE_ID, zero, sizeof(zero)) == 0 ||
	    memcmp(hdr + HDR_STORE_ID, t->store_id, sizeof(zero)) == 0)
		return HDR_OURS;
	return HDR_FOREIGN;
}

static int foreign(const struct segtab *t, int tier, unsigned d,
		   const char *name)
{
	log_err("store", "segment %s/%s belongs to another store (is this directory also another node's tier?): refusing to start",
		t->dirs[tier][d], name);
	return STRATA_ECONFIG;
}

/* An unknown segment file: remove it if it is our orphan.  Returns 0 or
 * STRATA_ECONFIG (another store's file). */
static int orphan(struct segtab *t, int tier, unsigned d, const char *name,
		  uint64_t id)
{
	switch (check_header(t, t->dirfds[tier][d], name, id)) {
	case HDR_SHORT:
	case HDR_OURS:
		/* Created, never committed to. */
		log_info("store", "removing orphan segment %s/%s",
			 t->dirs[tier][d], name);
		unlinkat(t->dirfds[tier][d], name, 0);
		return 0;
	case HDR_FOREIGN:
		return foreign(t, tier, d, name);
	case HDR_BAD:
	default:
		log_err("store", "%s/%s: not in the index and its header does not check: left in place",
			t->dirs[tier][d], name);
		return 0;
	}
}

/* A segment the index knows: refuse another store's, warn of a damaged
 * header (its records check themselves). */
static int known_header(struct segtab *t, int tier, unsigned d,
			const char *name, uint64_t id)
{
	switch (check_header(t, t->dirfds[tier][d], name, id)) {
	case HDR_FOREIGN:
		return foreign(t, tier, d, name);
	case HDR_OURS:
		return 0;
	default:
		log_err("store", "segment %s/%s: damaged header (its records are checked as they are read)",
			t->dirs[tier][d], name);
		return 0;
	}
}

typedef int (*seg_file_fn)(struct segtab *t, int tier, unsigned d,
			   const char *name, uint64_t id, void *arg);

/* fn for every segment-named file in the tier directories, until it
 * returns non-zero (which this returns). */
static int foreach_file(struct segtab *t, seg_file_fn fn, void *arg)
{
	for (int tier = 0; tier < STORE_TIERS; tier++) {
		for (unsigned d = 0; d < t->ndirs[tier]; d++) {
			int dfd = dup(t->dirfds[tier][d]), rc = 0;
			struct dirent *de;
			uint64_t id;
			DIR *dir;

			if (dfd < 0)
				return -errno;
			dir = fdopendir(dfd);
			if (!dir) {
				close(dfd);
				return -errno;
			}
			while (!rc && (de = readdir(dir)))
				if (!segment_parse_name(de->d_name, &id))
					rc = fn(t, tier, d, de->d_name, id, arg);
			closedir(dir);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int count_one(struct segtab *t, int tier, unsigned d,
		     const char *name, uint64_t id, void *arg)
{
	(void)t, (void)tier, (void)d, (void)name, (void)id;
	(*(long *)arg)++;
	return 0;
}

long segtab_count_files(struct segtab *t)
{
	long n = 0;
	int rc = foreach_file(t, count_one, &n);

	return rc ? rc : n;
}

struct scan {
	int (*known)(void *arg, uint64_t id);
	void *arg;
};

/* One file of segtab_scan(). */
static int scan_one(struct segtab *t, int tier, unsigned d, const char *name,
		    uint64_t id, void *arg)
{
	struct scan *sc = arg;
	struct segment *seg;
	struct stat st;
	int fd, is_known, rc;

	if (id >= t->next_id)
		t->next_id = id + 1;
	is_known = sc->known(sc->arg, id);
	if (is_known < 0) {
		log_err("store", "segment %s/%s: index: %s; refusing to start",
			t->dirs[tier][d], name, strata_strerror(is_known));
		return is_known;
	}
	rc = is_known ? known_header(t, tier, d, name, id) :
	     orphan(t, tier, d, name, id);
	if (rc || !is_known)
		return rc;
	if (segtab_find(t, id)) {
		log_err("store", "segment %" PRIx64 " found twice; keeping the first",
			id);
		return 0;
	}
	fd = openat(t->dirfds[tier][d], name, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;

		log_err("store", "segment %s/%s: %s", t->dirs[tier][d], name,
			strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	seg = calloc(1, sizeof(*seg));
	if (!seg) {
		close(fd);
		return -ENOMEM;
	}
	seg->id = id;
	seg->tier = (uint8_t)tier;
	seg->dir = (uint16_t)d;
	seg->fd = fd;
	seg->dfd = -1;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	seg->size = (uint64_t)st.st_size;
	t->used[tier] += seg->size;
	/* Never append after a crash's torn tail. */
	seg->sealed = true;
	if (insert(t, seg)) {
		t->used[tier] -= seg->size;
		close(fd);
		free(seg);
		return -ENOMEM;
	}
	return 0;
}

int segtab_scan(struct segtab *t, int (*known)(void *arg, uint64_t id),
		void *arg)
{
	struct scan sc = { known, arg };

	return foreach_file(t, scan_one, &sc);
}

struct segment *segtab_find(struct segtab *t, uint64_t id)
{
	struct segment *seg;

	if (!t->nslots)
		return NULL;
	for (seg = t->slots[slot_of(t, id)]; seg; seg = seg->hnext)
		if (seg->id == id)
			return seg;
	return NULL;
}

int segtab_create(struct segtab *t, uint8_t tier, struct segment **out)
{
	uint8_t hdr[SEGMENT_HDR_LEN] = { 0 };
	struct segment *seg;
	char name[32];
	unsigned d;
	int fd, rc;

	if (t->ndirs[tier] == 0)
		return -ENOENT;
	rc = fault_hit(t->fault, FAULT_SEG_CREATE);
	if (rc)
		return rc;
	d = t->rr[tier]++ % t->ndirs[tier];
	seg = calloc(1, sizeof(*seg));
	if (!seg)
		return -ENOMEM;
	seg->id = t->next_id++;
	seg_name(name, sizeof(name), seg->id);
	fd = openat(t->dirfds[tier][d], name,
		    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		log_err("store", "create segment %s/%s: %s", t->dirs[tier][d],
			name, strerror(-rc));
		free(seg);
		return rc;
	}
	memcpy(hdr, SEG_MAGIC, 8);
	put_le32(hdr + 8, 1);
	hdr[12] = tier;
	put_le64(hdr + 16, seg->id);
	memcpy(hdr + HDR_STORE_ID, t->store_id, SEGMENT_STORE_ID_LEN);
	put_le32(hdr + 60, record_crc32c(0, hdr, 60));
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
		rc = errno ? -errno : -EIO;
		log_err("store", "write segment header %s/%s: %s",
			t->dirs[tier][d], name, strerror(-rc));
		close(fd);
		unlinkat(t->dirfds[tier][d], name, 0);
		free(seg);
		return rc;
	}
	seg->tier = tier;
	seg->dir = (uint16_t)d;
	seg->fd = fd;
	/* Large records bypass the page cache: the copy into it (and its
	 * writeback) cost more CPU than hashing them.  Where the file
	 * system refuses O_DIRECT, everything stays buffered. */
	seg->dfd = openat(t->dirfds[tier][d], name,
			  O_WRONLY | O_DIRECT | O_CLOEXEC);
	/* Records are read whole: a wide read-ahead fills the cache in
	 * large pieces (and large folios, which copy faster). */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	seg->size = SEGMENT_HDR_LEN;
	t->used[tier] += seg->size;
	seg->dirty = true;
	seg->dir_dirty = true;
	rc = insert(t, seg);
	if (rc) {
		if (seg->dfd >= 0)
			close(seg->dfd);
		close(fd);
		unlinkat(t->dirfds[tier][d], name, 0);
		t->used[tier] -= seg->size;
		free(seg);
		return rc;
	}
	*out = seg;
	return 0;
}

static void drop_dfd(struct segment *seg)
{
	if (seg->sealed && !seg->writes && seg->dfd >= 0) {
		close(seg->dfd);
		seg->dfd = -1;
	}
}

void segment_seal(struct segment *seg)
{
	seg->sealed = true;
	drop_dfd(seg);
}

void segment_write_done(struct segment *seg)
{
	seg->writes--;
	drop_dfd(seg);
}

bool segment_unlinked(const struct segment *seg)
{
	struct stat st;

	return fstat(seg->fd, &st) == 0 && st.st_nlink == 0;
}

void segtab_drop(struct segtab *t, struct segment *seg)
{
	struct segment **pp;
	char name[32];

	for (pp = &t->slots[slot_of(t, seg->id)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == seg) {
			*pp = seg->hnext;
			t->count--;
			t->used[seg->tier] -= seg->size;
			break;
		}
	}
	seg_name(name, sizeof(name), seg->id);
	if (unlinkat(t->dirfds[seg->tier][seg->dir], name, 0) < 0 &&
	    errno != ENOENT)
		log_warn("store", "unlink segment %s: %s", name,
			 strerror(errno));
	if (seg->fd >= 0)
		close(seg->fd);
	if (seg->dfd >= 0)
		close(seg->dfd);
	free(seg);
}

int segtab_dirfd(const struct segtab *t, const struct segment *seg)
{
	return t->dirfds[seg->tier][seg->dir];
}

void segtab_foreach(struct segtab *t,
		    void (*fn)(void *arg, struct segment *seg), void *arg)
{
	for (size_t i = 0; i < t->nslots; i++)
		for (struct segment *seg = t->slots[i]; seg; seg = seg->hnext)
			fn(arg, seg);
}
