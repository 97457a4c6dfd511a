// SPDX-License-Identifier: Apache-2.0
/*
 * cache: plaintext chunks in memory, bounded in bytes, scan-resistant.
 *
 * Epochs re-read the same shards; a hit skips the segment read, the crc,
 * the decryption and the decompression.  Chunk ids are content-derived and
 * never reused for other bytes, so an entry is never stale: it only ages
 * out.
 *
 * Policy: S3-FIFO (Yang et al., SOSP '23).  New chunks enter a small FIFO
 * (a tenth of the budget); one that is read again before it leaves moves
 * to the main FIFO, the rest are evicted and remembered in a ghost FIFO of
 * keys; a ghost that comes back goes straight to main.  Main evicts in FIFO
 * order, but gives entries read since their last pass another round.  A
 * single sequential pass over a big dataset therefore churns through the
 * small queue and leaves the re-read working set in main.
 *
 *   entry:  (none) -[cache_insert]-> SMALL -[read again, evicted]-> MAIN
 *           SMALL -[evicted unread]-> GHOST (key only) -[insert]-> MAIN
 *           MAIN -[evicted with freq 0]-> (none)
 *
 * Entries are reference counted: a reader pins an entry while it delivers
 * from it, and eviction only drops the cache's reference.  Loop thread
 * only: no locks.
 */
#ifndef STRATA_CACHE_H
#define STRATA_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_KEY_LEN 40	/* bucket id (8) || chunk id (32) */

struct cache;

struct cache_entry {
	const uint8_t *data;	/* the plaintext */
	size_t len;
	/* private */
	uint8_t key[CACHE_KEY_LEN];
	uint8_t *mem;		/* allocation holding data */
	size_t memcap;		/* what store__buf_free() wants back */
	unsigned refs;
	uint8_t freq;
	uint8_t queue;
	struct cache_entry *hnext, *qnext, *qprev;
	struct cache *owner;
};

struct cache_stats {
	uint64_t hits, misses, inserts, evictions;
	uint64_t bytes, budget;
	uint64_t entries;
};

/*
 * A cache of at most budget bytes (0: disabled; every lookup misses),
 * counting each entry's bookkeeping with its memory (cache_stats.bytes
 * too): a budget filled with small chunks holds fewer of them.
 * free_mem(arg, mem, memcap) releases an evicted entry's memory.
 */
struct cache *cache_new(size_t budget,
			void (*free_mem)(void *arg, uint8_t *mem, size_t cap),
			void *arg);
/* All entries must be released first. */
void cache_free(struct cache *c);

/* A pinned entry, or NULL (counted as a miss). Release with
 * cache_release(). */
struct cache_entry *cache_get(struct cache *c, const uint8_t key[CACHE_KEY_LEN]);
void cache_release(struct cache_entry *e);
/* Whether key has an entry now (not counted, not pinned: it may be gone
 * by the next cache_get()). */
bool cache_has(struct cache *c, const uint8_t key[CACHE_KEY_LEN]);
/* One more pin on an entry already pinned (each needs its release). */
void cache_ref(struct cache_entry *e);

/*
 * Offer a chunk: mem (capacity memcap, from the store's buffers) becomes
 * the cache's, data/len point into it.  Returns 1 if taken, 0 if not
 * (disabled, too big, already there): the caller keeps mem.
 */
int cache_insert(struct cache *c, const uint8_t key[CACHE_KEY_LEN],
		 uint8_t *mem, size_t memcap, const uint8_t *data, size_t len);

/* Change the budget (config reload); shrinking evicts at once. */
void cache_set_budget(struct cache *c, size_t budget);

void cache_get_stats(const struct cache *c, struct cache_stats *st);

#endif
