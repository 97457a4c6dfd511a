// SPDX-License-Identifier: Apache-2.0
/* Blocking wrappers around the asynchronous store, for tests and benches. */
#ifndef STRATA_STOREUTIL_H
#define STRATA_STOREUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "fault.h"
#include "store.h"

struct tenv {
	uv_loop_t loop;
	struct store *s;
	struct fault fault;
	char *root;		/* owned temp dir (or the caller's) */
	char hot[512], cold[512], idx[512], keyfile[512];
	uint8_t master[32];
	struct store_opts o;
	const char *hot_dirs[1], *cold_dirs[1];
};

/* Make dirs under root (a fresh temp dir when root is NULL) and default
 * options (64 KiB chunks, 4 MiB segments); tests adjust e->o before
 * tenv_open(). */
void tenv_init(struct tenv *e, const char *root);
/* Open the store; returns store_open()'s code. */
int tenv_open(struct tenv *e);
/* Close the store and run the loop until it is closed. */
void tenv_close(struct tenv *e);
/* Close (if open) and remove the temp dir if we made it. */
void tenv_release(struct tenv *e, int remove_dir);

int tenv_mb(struct tenv *e, const char *bucket);
int tenv_rb(struct tenv *e, const char *bucket);
int tenv_put(struct tenv *e, const char *bucket, const char *key,
	     const void *data, size_t len, struct store_object_info *info);
/* *out malloc'd */
int tenv_get(struct tenv *e, const char *bucket, const char *key,
	     uint64_t off, uint64_t len, uint8_t **out, size_t *outlen);
/* What a get of the whole object reports (its bytes are dropped). */
int tenv_info(struct tenv *e, const char *bucket, const char *key,
	      struct store_object_info *info);
int tenv_rm(struct tenv *e, const char *bucket, const char *key);
int tenv_compact(struct tenv *e, unsigned pct);
/* Sum of the sizes of the segment files in every tier dir. */
uint64_t tenv_disk_bytes(struct tenv *e);

#endif
