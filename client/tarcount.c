// SPDX-License-Identifier: Apache-2.0
/*
 * tarcount: the WebDataset samples of a tar shard, as its bytes arrive
 * (tarcount.h says how they are counted).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "tarcount.h"
#include "banned.h"

void tar_start(struct tar_count *t, size_t index)
{
	memset(t, 0, sizeof(*t));
	t->index = index;
}

/* A numeric field as GNU tar and Python's tarfile read it: octal digits
 * between blanks, or base-256 when the high bit of the first byte is
 * set; false when it is neither. */
static bool tar_number(const uint8_t *f, size_t len, uint64_t *v)
{
	size_t i = 0, end = len;

	*v = 0;
	if (f[0] & 0x80) {
		if (f[0] != 0x80)	/* negative or past 2^63 */
			return false;
		for (i = 1; i < len; i++) {
			if (*v >> 56)
				return false;
			*v = *v << 8 | f[i];
		}
		return true;
	}
	while (end > 0 && (f[end - 1] == '\0' || f[end - 1] == ' '))
		end--;
	while (i < end && f[i] == ' ')
		i++;
	for (; i < end; i++) {
		if (f[i] < '0' || f[i] > '7')
			return false;
		*v = *v << 3 | (uint64_t)(f[i] - '0');
	}
	return true;
}

static void tar_header(struct tar_count *t)
{
	const uint8_t *h = t->hdr;
	uint64_t want, size;
	unsigned sum = 0;
	size_t i, nl = 0;
	char cur[356], *base, *dot;

	for (i = 0; i < 512 && !h[i]; i++)
		;
	if (i == 512) {
		t->end = true;
		return;
	}
	for (i = 0; i < 512; i++)
		sum += i >= 148 && i < 156 ? ' ' : h[i];
	if (!tar_number(h + 148, 8, &want) || want != sum) {
		snprintf(t->err, sizeof(t->err), "header checksum mismatch at "
			 "byte %" PRIu64 "%s", t->hdr_at,
			 t->hdr_at ? "" : " (not a tar archive?)");
		return;
	}
	if (!tar_number(h + 124, 12, &size)) {
		snprintf(t->err, sizeof(t->err), "bad size field in the "
			 "header at byte %" PRIu64, t->hdr_at);
		return;
	}
	t->data = size;
	t->pad = (512 - size % 512) % 512;
	if (!memcmp(h + 257, "ustar", 5) && h[345]) {
		nl = strnlen((const char *)h + 345, 155);
		memcpy(cur, h + 345, nl);
		cur[nl++] = '/';
	}
	i = strnlen((const char *)h, 100);
	memcpy(cur + nl, h, i);
	cur[nl + i] = '\0';
	memcpy(t->name, cur, nl + i + 1);
	if (h[156] != '0' && h[156] != '\0' && h[156] != '7')
		return;
	base = strrchr(cur, '/');
	dot = strchr(base ? base + 1 : cur, '.');
	if (!dot)
		return;
	*dot = '\0';
	if (strcmp(cur, t->prev)) {
		t->samples++;
		memcpy(t->prev, cur, sizeof(t->prev));
	}
}

void tar_feed(struct tar_count *t, const uint8_t *p, size_t len)
{
	while (len && !t->end && !*t->err) {
		size_t n;

		if (t->data || t->pad) {
			uint64_t *left = t->data ? &t->data : &t->pad;

			n = *left < len ? (size_t)*left : len;
			*left -= n;
		} else {
			if (!t->have)
				t->hdr_at = t->at;
			n = 512 - t->have < len ? 512 - t->have : len;
			memcpy(t->hdr + t->have, p, n);
			t->have += n;
			if (t->have == 512) {
				t->have = 0;
				tar_header(t);
			}
		}
		p += n;
		len -= n;
		t->at += n;
	}
}

void tar_finish(struct tar_count *t)
{
	char name[sizeof(t->name)];	/* escaped, cut to the same size */
	bool partial = false;

	for (size_t i = 0; i < t->have; i++)
		partial |= t->hdr[i] != 0;
	if (*t->err || t->end)
		return;
	if (partial)
		snprintf(t->err, sizeof(t->err), "truncated header at byte %"
			 PRIu64 " (the shard ends at byte %" PRIu64 ")",
			 t->hdr_at, t->at);
	else if (t->data)
		snprintf(t->err, sizeof(t->err), "member %s runs past the "
			 "end (truncated: %" PRIu64 " of its bytes missing)",
			 args_escape(t->name, name, sizeof(name)), t->data);
}
