// SPDX-License-Identifier: Apache-2.0
/*
 * Fault injection points (see fault.h).
 *
 * Invariants, all under f->lock:
 *   - a point is armed iff pt[p].count > 0; skip is meaningful only then;
 *   - f->armed != 0 iff some point is armed.  It is written only with the
 *     lock held and read without it on the fast path, so an unarmed engine
 *     pays one relaxed load per I/O.  A thread that races with fault_arm()
 *     may miss the arming by one operation; tests arm before starting the
 *     work (thread creation or a loop hand-off orders the two).
 *   - pt[p].hits counts failures injected since fault_init(); arming again
 *     does not reset it, so a test reads a delta or arms each point once.
 *
 * A point's life:
 *
 *   DISARMED --fault_arm [count > 0, skip > 0]--> SKIPPING
 *     ^   |                                           | fault_hit:
 *     |   |                                           | skip-- reaches 0
 *     |   |                                           v
 *     |   +--fault_arm [count > 0, skip == 0]----> FAILING ---+
 *     |                                           |  ^        | fault_hit:
 *     |                                           |  +--------+ count-- > 0
 *     +-------- fault_hit: count-- reaches 0 -----+
 *
 *   fault_arm [count == 0] takes any state back to DISARMED; any fault_arm
 *   replaces the point's skip, count and errno.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fault.h"
#include "banned.h"

/* Errno values above this are not errnos (the kernel's MAX_ERRNO). */
#define FAULT_MAX_ERRNO 4095

static const char *const point_names[FAULT__COUNT] = {
	[FAULT_SEG_CREATE] = "seg_create",
	[FAULT_SEG_WRITE] = "seg_write",
	[FAULT_SEG_FSYNC] = "seg_fsync",
	[FAULT_SEG_READ] = "seg_read",
	[FAULT_INDEX_READ] = "index_read",
	[FAULT_INDEX_WRITE] = "index_write",
};

static const struct {
	const char *name;
	int err;
} errno_names[] = {
	{ "EIO", EIO },
	{ "ENOSPC", ENOSPC },
	{ "EROFS", EROFS },
	{ "EDQUOT", EDQUOT },
	{ "EACCES", EACCES },
};

void fault_init(struct fault *f)
{
	memset(f->pt, 0, sizeof(f->pt));
	atomic_init(&f->armed, 0);
	pthread_mutex_init(&f->lock, NULL);
}

void fault_release(struct fault *f)
{
	pthread_mutex_destroy(&f->lock);
}

/* Recompute the fast-path flag.  Caller holds f->lock. */
static void update_armed(struct fault *f)
{
	int any = 0;

	for (int i = 0; i < FAULT__COUNT; i++) {
		if (f->pt[i].count) {
			any = 1;
			break;
		}
	}
	atomic_store_explicit(&f->armed, any, memory_order_release);
}

void fault_arm(struct fault *f, enum fault_point p, unsigned long skip,
	       unsigned long count, int err)
{
	assert((unsigned)p < FAULT__COUNT);
	/* A failing point must fail with an error, or fault_hit()'s caller
	 * would read "go ahead". */
	assert(count == 0 || err < 0);

	pthread_mutex_lock(&f->lock);
	f->pt[p].skip = count ? skip : 0;
	f->pt[p].count = count;
	f->pt[p].err = count ? err : 0;
	update_armed(f);
	pthread_mutex_unlock(&f->lock);
}

int fault_hit(struct fault *f, enum fault_point p)
{
	int ret = 0;

	assert((unsigned)p < FAULT__COUNT);
	if (!f || !atomic_load_explicit(&f->armed, memory_order_relaxed))
		return 0;

	pthread_mutex_lock(&f->lock);
	if (!f->pt[p].count)
		goto out;
	if (f->pt[p].skip) {
		f->pt[p].skip--;
		goto out;
	}
	ret = f->pt[p].err;
	f->pt[p].hits++;
	if (--f->pt[p].count == 0) {
		f->pt[p].err = 0;
		update_armed(f);
	}
out:
	pthread_mutex_unlock(&f->lock);
	return ret;
}

unsigned long fault_hits(struct fault *f, enum fault_point p)
{
	unsigned long n;

	assert((unsigned)p < FAULT__COUNT);
	pthread_mutex_lock(&f->lock);
	n = f->pt[p].hits;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/*
 * Spec parsing.  The spec comes from the environment, so every malformed
 * piece is an -EINVAL, never an assert; and nothing is armed unless the
 * whole spec parses, so a typo cannot leave a test half-configured.
 */

/* Does [s, s+n) equal the NUL-terminated word? */
static bool span_eq(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* A decimal number with no sign, no spaces, no overflow. */
static int parse_ulong(const char *s, size_t n, unsigned long *out)
{
	unsigned long v = 0;

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (~0UL - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_point(const char *s, size_t n, enum fault_point *out)
{
	for (int i = 0; i < FAULT__COUNT; i++) {
		if (span_eq(s, n, point_names[i])) {
			*out = (enum fault_point)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* An errno name from the table, or a decimal errno 1..4095; yields it
 * negated. */
static int parse_err(const char *s, size_t n, int *out)
{
	unsigned long v;

	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]);
	     i++) {
		if (span_eq(s, n, errno_names[i].name)) {
			*out = -errno_names[i].err;
			return 0;
		}
	}
	if (parse_ulong(s, n, &v) < 0 || v == 0 || v > FAULT_MAX_ERRNO)
		return -EINVAL;
	*out = -(int)v;
	return 0;
}

struct fault_spec_item {
	enum fault_point p;
	unsigned long skip;
	unsigned long count;
	int err;
};

/* Parse one "point:skip:count:err" item in [s, s+n). */
static int parse_item(const char *s, size_t n, struct fault_spec_item *it)
{
	const char *field[4];
	size_t len[4];
	const char *end = s + n;
	int nf = 0;

	/* Split on ':' into exactly four fields. */
	field[0] = s;
	for (const char *c = s; c < end; c++) {
		if (*c != ':')
			continue;
		if (nf == 3)
			return -EINVAL;
		len[nf] = (size_t)(c - field[nf]);
		field[++nf] = c + 1;
	}
	if (nf != 3)
		return -EINVAL;
	len[3] = (size_t)(end - field[3]);

	if (parse_point(field[0], len[0], &it->p) < 0 ||
	    parse_ulong(field[1], len[1], &it->skip) < 0 ||
	    parse_ulong(field[2], len[2], &it->count) < 0 ||
	    parse_err(field[3], len[3], &it->err) < 0)
		return -EINVAL;
	return 0;
}

/*
 * Walk the comma-separated items; with arm false only validate.  Two passes
 * (validate, then arm) keep the all-or-nothing promise without allocating.
 */
static int walk_spec(struct fault *f, const char *spec, bool arm)
{
	const char *s = spec;

	for (;;) {
		const char *comma = strchr(s, ',');
		size_t n = comma ? (size_t)(comma - s) : strlen(s);
		struct fault_spec_item it;

		if (parse_item(s, n, &it) < 0)
			return -EINVAL;
		/* When a point is named twice the later item wins. */
		if (arm)
			fault_arm(f, it.p, it.skip, it.count, it.err);
		if (!comma)
			return 0;
		s = comma + 1;
	}
}

int fault_arm_spec(struct fault *f, const char *spec)
{
	int ret;

	/* An empty spec (an empty STRATA_FAULTS) arms nothing. */
	if (!spec || !*spec)
		return 0;
	ret = walk_spec(f, spec, false);
	if (ret < 0)
		return ret;
	return walk_spec(f, spec, true);
}
