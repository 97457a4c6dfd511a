// SPDX-License-Identifier: Apache-2.0
/*
 * tarcount: strata-bench's count of the WebDataset samples in a tar
 * shard (--samples tar), counted as the shard's pieces arrive
 * (--piece-size cuts headers and members anywhere): regular members,
 * consecutive ones with the same path up to the first dot of the file
 * name being one sample (members without a dot are not sample fields), as
 * the Python binding's webdataset_samples() groups them.  GNU and pax long
 * names are not read: such members count by their ustar name.  The state
 * carried from piece to piece of one shard:
 *
 *   HEADER --[its 512th byte: a member]--> DATA --[data, pad passed]-->
 *   HEADER --[a zero block]--> END (the rest of the shard is not read)
 *   HEADER --[bad checksum or size]--> err (the rest is not read)
 *
 * A shard that ends inside a header or a member's data is truncated; one
 * that ends between members (no end-of-archive blocks) is not.  err is
 * printed as it is: a member's name in it is escaped.
 */
#ifndef STRATA_TARCOUNT_H
#define STRATA_TARCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tar_count {
	size_t index;			/* the shard's position, for its pieces */
	uint64_t at;			/* shard bytes seen */
	uint8_t hdr[512];
	size_t have;			/* bytes of hdr so far */
	uint64_t hdr_at;		/* where hdr starts in the shard */
	uint64_t data, pad;		/* member bytes, then padding, to pass */
	char name[356];			/* the member being passed */
	char prev[356];			/* the last member's sample key */
	uint64_t samples;		/* not yet added to the worker's */
	bool end;
	bool lost;			/* a piece failed: not counting it */
	char err[512];			/* what is wrong, "" while nothing */
};

/* Start counting the shard at position index. */
void tar_start(struct tar_count *t, size_t index);

/* The next len bytes of the shard. */
void tar_feed(struct tar_count *t, const uint8_t *p, size_t len);

/* The shard ended: is it truncated?  (t->err says what is wrong.) */
void tar_finish(struct tar_count *t);

#endif
