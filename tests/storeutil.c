// SPDX-License-Identifier: Apache-2.0
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storeutil.h"
#include "testutil.h"
#include "banned.h"

void tenv_init(struct tenv *e, const char *root)
{
	memset(e, 0, sizeof(*e));
	uv_loop_init(&e->loop);
	fault_init(&e->fault);
	e->root = root ? strdup(root) : tu_tmpdir("store");
	snprintf(e->hot, sizeof(e->hot), "%s/hot", e->root);
	snprintf(e->cold, sizeof(e->cold), "%s/cold", e->root);
	snprintf(e->idx, sizeof(e->idx), "%s/index", e->root);
	snprintf(e->keyfile, sizeof(e->keyfile), "%s/master.key", e->root);
	mkdir(e->hot, 0700);
	mkdir(e->cold, 0700);
	for (int i = 0; i < 32; i++)
		e->master[i] = (uint8_t)(i * 7 + 1);
	e->hot_dirs[0] = e->hot;
	e->cold_dirs[0] = e->cold;
	e->o.index_dir = e->idx;
	e->o.master_key = e->master;
	e->o.tier_dirs[STORE_TIER_HOT] = e->hot_dirs;
	e->o.ntier_dirs[STORE_TIER_HOT] = 1;
	e->o.tier_dirs[STORE_TIER_COLD] = e->cold_dirs;
	e->o.ntier_dirs[STORE_TIER_COLD] = 1;
	e->o.chunk_size = 64 << 10;
	e->o.segment_size = 4 << 20;
	e->o.zstd_level = -1;
	e->o.gc_interval_ms = 3600 * 1000;
	e->o.fault = &e->fault;
}

int tenv_open(struct tenv *e)
{
	return store_open(&e->loop, &e->o, &e->s);
}

static void closed_cb(void *arg)
{
	*(int *)arg = 1;
}

void tenv_close(struct tenv *e)
{
	int done = 0;

	if (!e->s)
		return;
	store_close(e->s, closed_cb, &done);
	tu_run_until(&e->loop, &done, 60000);
	e->s = NULL;
}

void tenv_release(struct tenv *e, int remove_dir)
{
	tenv_close(e);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	uv_loop_close(&e->loop);
	fault_release(&e->fault);
	if (remove_dir)
		tu_rmrf(e->root);
	free(e->root);
}

struct waiter {
	int done;
	int status;
	struct store_object_info info;
	uint8_t *buf;
	size_t len, cap;
};

static void done_cb(void *arg, int status)
{
	struct waiter *w = arg;

	w->status = status;
	w->done = 1;
}

static int wait_for(struct tenv *e, int rc, struct waiter *w)
{
	if (rc)
		return rc;
	tu_run_until(&e->loop, &w->done, 120000);
	return w->status;
}

int tenv_mb(struct tenv *e, const char *bucket)
{
	struct waiter w = { 0 };

	return wait_for(e, store_bucket_create(e->s, bucket, NULL, 0, done_cb,
					       &w), &w);
}

int tenv_rb(struct tenv *e, const char *bucket)
{
	struct waiter w = { 0 };

	return wait_for(e, store_bucket_delete(e->s, bucket, done_cb, &w), &w);
}

static void commit_cb(void *arg, int status,
		      const struct store_object_info *info)
{
	struct waiter *w = arg;

	w->status = status;
	if (info)
		w->info = *info;
	w->done = 1;
}

int tenv_put(struct tenv *e, const char *bucket, const char *key,
	     const void *data, size_t len, struct store_object_info *info)
{
	struct waiter w = { 0 };
	struct store_put *p;
	int rc;

	rc = store_put_begin(e->s, bucket, key, strlen(key), NULL, &p);
	if (rc)
		return rc;
	rc = store_put_write(p, data, len);
	if (rc) {
		store_put_abort(p);
		return rc;
	}
	store_put_commit(p, commit_cb, &w);
	rc = wait_for(e, 0, &w);
	if (!rc && info)
		*info = w.info;
	return rc;
}

static int data_cb(void *arg, const void *buf, size_t len)
{
	struct waiter *w = arg;

	if (w->len + len > w->cap) {
		size_t n = (w->len + len) * 2;
		uint8_t *b = realloc(w->buf, n);

		if (!b)
			return -ENOMEM;
		w->buf = b;
		w->cap = n;
	}
	memcpy(w->buf + w->len, buf, len);
	w->len += len;
	return 0;
}

int tenv_get(struct tenv *e, const char *bucket, const char *key,
	     uint64_t off, uint64_t len, uint8_t **out, size_t *outlen)
{
	struct waiter w = { 0 };
	int rc;

	rc = store_get(e->s, bucket, key, strlen(key), off, len, NULL, data_cb,
		       done_cb, &w, NULL);
	rc = wait_for(e, rc, &w);
	if (rc) {
		free(w.buf);
		return rc;
	}
	*out = w.buf ? w.buf : malloc(1);
	*outlen = w.len;
	return 0;
}

int tenv_info(struct tenv *e, const char *bucket, const char *key,
	      struct store_object_info *info)
{
	struct waiter w = { 0 };
	int rc;

	rc = store_get(e->s, bucket, key, strlen(key), 0, UINT64_MAX, info,
		       data_cb, done_cb, &w, NULL);
	rc = wait_for(e, rc, &w);
	free(w.buf);
	return rc;
}

int tenv_rm(struct tenv *e, const char *bucket, const char *key)
{
	struct waiter w = { 0 };

	return wait_for(e, store_delete(e->s, bucket, key, strlen(key), done_cb,
					&w), &w);
}

int tenv_compact(struct tenv *e, unsigned pct)
{
	struct waiter w = { 0 };

	return wait_for(e, store_compact(e->s, pct, done_cb, &w), &w);
}

static uint64_t dir_bytes(const char *path)
{
	uint64_t total = 0;
	struct dirent *de;
	DIR *d = opendir(path);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char p[1024];
		struct stat st;

		if (strncmp(de->d_name, "seg-", 4))
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (stat(p, &st) == 0)
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

uint64_t tenv_disk_bytes(struct tenv *e)
{
	return dir_bytes(e->hot) + dir_bytes(e->cold);
}
