// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for uring.c: data round trips, batching past the ring size,
 * short transfers, injected errors, re-entrant callbacks, socket sends,
 * submitting at once, and closing.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "uring.h"
#include "testutil.h"
#include "banned.h"

/* Per-request outcome, hung off req->data. */
struct outcome {
	int calls;
	ssize_t res;
	int *done_counter;	/* bumped on each completion, if set */
};

static void record_cb(struct uring_req *req, ssize_t res)
{
	struct outcome *o = req->data;

	o->calls++;
	o->res = res;
	if (o->done_counter)
		(*o->done_counter)++;
}

static void never_cb(struct uring_req *req, ssize_t res)
{
	(void)req;
	ck_abort_msg("callback called with %zd", res);
}

/* A test's loop, ring and scratch file. */
struct fixture {
	uv_loop_t loop;
	struct uring *r;
	char *dir;
	char *path;
	int fd;
};

static void fx_open(struct fixture *fx, unsigned entries)
{
	int ret;

	ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
	ret = uring_new(&fx->loop, entries, &fx->r);
	ck_assert_msg(ret == 0, "uring_new: %s", strerror(-ret));
	fx->dir = tu_tmpdir("uring");
	ck_assert_int_ge(asprintf(&fx->path, "%s/data", fx->dir), 0);
	fx->fd = open(fx->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fx->fd, 0);
}

static void set_flag(void *arg)
{
	(*(int *)arg)++;
}

/* Close the ring, run the loop out, and check nothing was left behind. */
static void fx_close(struct fixture *fx)
{
	int closed = 0;

	uring_close(fx->r, set_flag, &closed);
	ck_assert_int_eq(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(closed, 1);
	ck_assert_int_eq(uv_loop_close(&fx->loop), 0);
	close(fx->fd);
	tu_rmrf(fx->dir);
	free(fx->path);
	free(fx->dir);
}

/* uv_run must come back by itself once nothing is in flight. */
static void run_idle(struct fixture *fx)
{
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	ck_assert_uint_eq(uring_inflight(fx->r), 0);
}

static off_t file_size(int fd)
{
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	return st.st_size;
}

/* Write len bytes at off through the ring and wait for it. */
static ssize_t ring_write(struct fixture *fx, const void *buf, size_t len,
			  uint64_t off)
{
	struct outcome o = { 0 };
	struct uring_req req = { .data = &o };

	ck_assert_int_eq(uring_write(fx->r, &req, fx->fd, buf, len, off,
				     record_cb), 0);
	run_idle(fx);
	ck_assert_int_eq(o.calls, 1);
	return o.res;
}

static ssize_t ring_read(struct fixture *fx, void *buf, size_t len,
			 uint64_t off)
{
	struct outcome o = { 0 };
	struct uring_req req = { .data = &o };

	ck_assert_int_eq(uring_read(fx->r, &req, fx->fd, buf, len, off,
				    record_cb), 0);
	run_idle(fx);
	ck_assert_int_eq(o.calls, 1);
	return o.res;
}

START_TEST(t_write_read)
{
	static const struct {
		uint64_t off;
		size_t len;
	} at[] = { { 0, 100 }, { 4096 + 13, 5000 }, { 1 << 20, 4096 },
		   { 3, 1 } };
	struct fixture fx;
	uint8_t *buf = tu_xmalloc(8192), *back = tu_xmalloc(8192);

	fx_open(&fx, 32);
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		tu_fill(buf, at[i].len, i + 1);
		ck_assert_int_eq(ring_write(&fx, buf, at[i].len, at[i].off),
				 (ssize_t)at[i].len);
		/* What the kernel has, read without the ring. */
		memset(back, 0, at[i].len);
		ck_assert_int_eq(pread(fx.fd, back, at[i].len,
				       (off_t)at[i].off), (ssize_t)at[i].len);
		ck_assert_mem_eq(back, buf, at[i].len);
		/* And back through the ring. */
		memset(back, 0, at[i].len);
		ck_assert_int_eq(ring_read(&fx, back, at[i].len, at[i].off),
				 (ssize_t)at[i].len);
		ck_assert_mem_eq(back, buf, at[i].len);
	}
	ck_assert_int_eq(file_size(fx.fd), (1 << 20) + 4096);
	fx_close(&fx);
	free(buf);
	free(back);
}
END_TEST

START_TEST(t_writeback)
{
	struct fixture fx;
	uint8_t *buf = tu_xmalloc(1 << 20), *back = tu_xmalloc(1 << 20);
	struct outcome o = { 0 }, bad = { 0 };
	struct uring_req req = { .data = &o }, breq = { .data = &bad };

	fx_open(&fx, 8);
	tu_fill(buf, 1 << 20, 77);
	ck_assert_int_eq(ring_write(&fx, buf, 1 << 20, 4096), 1 << 20);
	/* Advisory writeback completes with 0 and changes no byte. */
	ck_assert_int_eq(uring_writeback(fx.r, &req, fx.fd, 4096, 1 << 20,
					 record_cb), 0);
	run_idle(&fx);
	ck_assert_int_eq(o.calls, 1);
	ck_assert_int_eq(o.res, 0);
	ck_assert_int_eq(ring_read(&fx, back, 1 << 20, 4096), 1 << 20);
	ck_assert_mem_eq(back, buf, 1 << 20);
	/* A bad fd is reported, not hidden. */
	ck_assert_int_eq(uring_writeback(fx.r, &breq, -1, 0, 4096, record_cb), 0);
	run_idle(&fx);
	ck_assert_int_eq(bad.calls, 1);
	ck_assert_int_eq(bad.res, -EBADF);
	fx_close(&fx);
	free(buf);
	free(back);
}
END_TEST

START_TEST(t_zero_length)
{
	struct fixture fx;
	uint8_t b = 0x5a;

	fx_open(&fx, 8);
	ck_assert_int_eq(ring_write(&fx, &b, 0, 0), 0);
	ck_assert_int_eq(ring_read(&fx, &b, 0, 0), 0);
	ck_assert_int_eq(b, 0x5a);
	ck_assert_int_eq(file_size(fx.fd), 0);
	fx_close(&fx);
}
END_TEST

enum { NCONC = 256, BLK = 4096 };

START_TEST(t_concurrent)
{
	struct fixture fx;
	struct uring_req *req = tu_xmalloc(NCONC * sizeof(*req));
	struct outcome *o = tu_xmalloc(NCONC * sizeof(*o));
	uint8_t *data = tu_xmalloc((size_t)NCONC * BLK);
	uint8_t *back = tu_xmalloc((size_t)NCONC * BLK);
	struct outcome so = { 0 };
	struct uring_req sreq = { .data = &so };
	int done = 0;

	fx_open(&fx, 64);
	tu_fill(data, (size_t)NCONC * BLK, 42);
	memset(back, 0, (size_t)NCONC * BLK);

	/* Queue in a scrambled order so offsets are not issued in sequence. */
	for (int i = 0; i < NCONC; i++) {
		int k = (i * 97) % NCONC;

		memset(&req[k], 0, sizeof(req[k]));
		o[k] = (struct outcome){ .done_counter = &done };
		req[k].data = &o[k];
		ck_assert_int_eq(uring_write(fx.r, &req[k], fx.fd,
					     data + (size_t)k * BLK, BLK,
					     (uint64_t)k * BLK, record_cb), 0);
	}
	ck_assert_uint_eq(uring_inflight(fx.r), NCONC);
	run_idle(&fx);
	ck_assert_int_eq(done, NCONC);
	for (int i = 0; i < NCONC; i++) {
		ck_assert_int_eq(o[i].calls, 1);
		ck_assert_int_eq(o[i].res, BLK);
	}

	ck_assert_int_eq(uring_fdatasync(fx.r, &sreq, fx.fd, record_cb), 0);
	run_idle(&fx);
	ck_assert_int_eq(so.calls, 1);
	ck_assert_int_eq(so.res, 0);

	done = 0;
	for (int i = 0; i < NCONC; i++) {
		o[i] = (struct outcome){ .done_counter = &done };
		ck_assert_int_eq(uring_read(fx.r, &req[i], fx.fd,
					    back + (size_t)i * BLK, BLK,
					    (uint64_t)i * BLK, record_cb), 0);
	}
	run_idle(&fx);
	ck_assert_int_eq(done, NCONC);
	for (int i = 0; i < NCONC; i++)
		ck_assert_int_eq(o[i].res, BLK);
	ck_assert_mem_eq(back, data, (size_t)NCONC * BLK);
	ck_assert_int_eq(file_size(fx.fd), (off_t)NCONC * BLK);

	fx_close(&fx);
	free(req);
	free(o);
	free(data);
	free(back);
}
END_TEST

START_TEST(t_large)
{
	const size_t len = 8u << 20;
	struct fixture fx;
	uint8_t *data = tu_xmalloc(len), *back = tu_xmalloc(len);

	fx_open(&fx, 8);
	tu_fill(data, len, 7);
	memset(back, 0, len);
	ck_assert_int_eq(ring_write(&fx, data, len, 4096), (ssize_t)len);
	ck_assert_int_eq(ring_read(&fx, back, len, 4096), (ssize_t)len);
	ck_assert_int_eq(memcmp(back, data, len), 0);
	ck_assert_int_eq(file_size(fx.fd), (off_t)(len + 4096));
	fx_close(&fx);
	free(data);
	free(back);
}
END_TEST

START_TEST(t_read_eof)
{
	struct fixture fx;
	uint8_t data[10000], back[8192];

	fx_open(&fx, 8);
	tu_fill(data, sizeof(data), 3);
	ck_assert_int_eq(ring_write(&fx, data, sizeof(data), 0),
			 (ssize_t)sizeof(data));

	/* Past end of file: completes short with what is there. */
	memset(back, 0, sizeof(back));
	ck_assert_int_eq(ring_read(&fx, back, sizeof(back), 4096),
			 10000 - 4096);
	ck_assert_mem_eq(back, data + 4096, 10000 - 4096);

	/* At and beyond end of file: 0, buffer untouched. */
	memset(back, 0xee, sizeof(back));
	ck_assert_int_eq(ring_read(&fx, back, sizeof(back), 10000), 0);
	ck_assert_int_eq(ring_read(&fx, back, sizeof(back), 1 << 20), 0);
	ck_assert_int_eq(back[0], 0xee);
	fx_close(&fx);
}
END_TEST

START_TEST(t_bad_fd)
{
	struct fixture fx;
	uint8_t buf[64] = { 0 };
	struct outcome o[4] = { { 0 } };
	struct uring_req req[4] = { { .data = &o[0] }, { .data = &o[1] },
				    { .data = &o[2] }, { .data = &o[3] } };
	int rdonly, unused;

	fx_open(&fx, 8);
	rdonly = open(fx.path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(rdonly, 0);
	unused = dup(rdonly);
	ck_assert_int_ge(unused, 0);
	close(unused);	/* a number that is certainly not open */

	ck_assert_int_eq(uring_read(fx.r, &req[0], -1, buf, sizeof(buf), 0,
				    record_cb), 0);
	ck_assert_int_eq(uring_write(fx.r, &req[1], unused, buf, sizeof(buf),
				     0, record_cb), 0);
	ck_assert_int_eq(uring_write(fx.r, &req[2], rdonly, buf, sizeof(buf),
				     0, record_cb), 0);
	ck_assert_int_eq(uring_fdatasync(fx.r, &req[3], unused, record_cb), 0);
	run_idle(&fx);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(o[i].calls, 1);
		ck_assert_int_eq(o[i].res, -EBADF);
	}
	ck_assert_int_eq(file_size(fx.fd), 0);
	close(rdonly);
	fx_close(&fx);
}
END_TEST

START_TEST(t_inject)
{
	struct fixture fx;
	uint8_t data[4096], other[4096], back[4096];
	struct outcome o[3] = { { 0 } };
	struct uring_req req[3] = {
		{ .data = &o[0], .inject = -ENOSPC },
		{ .data = &o[1], .inject = -EIO },
		{ .data = &o[2], .inject = -EIO },
	};

	fx_open(&fx, 8);
	tu_fill(data, sizeof(data), 1);
	tu_fill(other, sizeof(other), 2);
	ck_assert_int_eq(ring_write(&fx, data, sizeof(data), 0), 4096);

	memset(back, 0xee, sizeof(back));
	ck_assert_int_eq(uring_write(fx.r, &req[0], fx.fd, other,
				     sizeof(other), 0, record_cb), 0);
	ck_assert_int_eq(uring_write(fx.r, &req[1], fx.fd, other,
				     sizeof(other), 4096, record_cb), 0);
	ck_assert_int_eq(uring_read(fx.r, &req[2], fx.fd, back, sizeof(back),
				    0, record_cb), 0);
	/* Asynchronous, like a real error: nothing happens before the loop. */
	ck_assert_int_eq(o[0].calls + o[1].calls + o[2].calls, 0);
	run_idle(&fx);
	ck_assert_int_eq(o[0].calls, 1);
	ck_assert_int_eq(o[0].res, -ENOSPC);
	ck_assert_int_eq(o[1].calls, 1);
	ck_assert_int_eq(o[1].res, -EIO);
	ck_assert_int_eq(o[2].calls, 1);
	ck_assert_int_eq(o[2].res, -EIO);

	/* No I/O was done: the buffer untouched, the file as before. */
	for (size_t i = 0; i < sizeof(back); i++)
		ck_assert_int_eq(back[i], 0xee);
	ck_assert_int_eq(file_size(fx.fd), 4096);
	ck_assert_int_eq(pread(fx.fd, back, sizeof(back), 0), 4096);
	ck_assert_mem_eq(back, data, sizeof(data));

	/* An injected fdatasync error, too. */
	req[0] = (struct uring_req){ .data = &o[0], .inject = -EIO };
	o[0] = (struct outcome){ 0 };
	ck_assert_int_eq(uring_fdatasync(fx.r, &req[0], fx.fd, record_cb), 0);
	run_idle(&fx);
	ck_assert_int_eq(o[0].calls, 1);
	ck_assert_int_eq(o[0].res, -EIO);
	fx_close(&fx);
}
END_TEST

enum { NMANY = 1000, SMALL = 64 };

START_TEST(t_more_than_ring)
{
	struct fixture fx;
	struct uring_req *req = tu_xmalloc(NMANY * sizeof(*req));
	struct outcome *o = tu_xmalloc(NMANY * sizeof(*o));
	uint8_t *data = tu_xmalloc((size_t)NMANY * SMALL);
	uint8_t *back = tu_xmalloc((size_t)NMANY * SMALL);
	int done = 0;

	fx_open(&fx, 8);
	tu_fill(data, (size_t)NMANY * SMALL, 9);
	for (int i = 0; i < NMANY; i++) {
		memset(&req[i], 0, sizeof(req[i]));
		o[i] = (struct outcome){ .done_counter = &done };
		req[i].data = &o[i];
		ck_assert_int_eq(uring_write(fx.r, &req[i], fx.fd,
					     data + (size_t)i * SMALL, SMALL,
					     (uint64_t)i * SMALL, record_cb),
				 0);
	}
	ck_assert_uint_eq(uring_inflight(fx.r), NMANY);
	run_idle(&fx);
	ck_assert_int_eq(done, NMANY);
	for (int i = 0; i < NMANY; i++) {
		ck_assert_int_eq(o[i].calls, 1);
		ck_assert_int_eq(o[i].res, SMALL);
	}
	ck_assert_int_eq(pread(fx.fd, back, (size_t)NMANY * SMALL, 0),
			 NMANY * SMALL);
	ck_assert_mem_eq(back, data, (size_t)NMANY * SMALL);
	fx_close(&fx);
	free(req);
	free(o);
	free(data);
	free(back);
}
END_TEST

/* A request whose callback issues the next one, reusing the same req. */
struct chain {
	struct uring_req req;
	struct uring *r;
	int fd;
	uint8_t *data;
	int next;
	int total;
	ssize_t err;
};

static void chain_cb(struct uring_req *req, ssize_t res)
{
	struct chain *c = req->data;
	int ret;

	if (res != SMALL) {
		c->err = res < 0 ? res : -EIO;
		return;
	}
	if (++c->next == c->total)
		return;
	ret = uring_write(c->r, &c->req, c->fd,
			  c->data + (size_t)c->next * SMALL, SMALL,
			  (uint64_t)c->next * SMALL, chain_cb);
	if (ret < 0)
		c->err = ret;
}

START_TEST(t_chain)
{
	struct fixture fx;
	struct chain c = { .total = 200 };
	uint8_t *back = tu_xmalloc(200 * SMALL);

	fx_open(&fx, 4);
	c.r = fx.r;
	c.fd = fx.fd;
	c.data = tu_xmalloc(200 * SMALL);
	c.req.data = &c;
	tu_fill(c.data, 200 * SMALL, 11);
	ck_assert_int_eq(uring_write(fx.r, &c.req, fx.fd, c.data, SMALL, 0,
				     chain_cb), 0);
	run_idle(&fx);
	ck_assert_int_eq(c.err, 0);
	ck_assert_int_eq(c.next, c.total);
	ck_assert_int_eq(pread(fx.fd, back, 200 * SMALL, 0), 200 * SMALL);
	ck_assert_mem_eq(back, c.data, 200 * SMALL);
	fx_close(&fx);
	free(c.data);
	free(back);
}
END_TEST

/* Completion and close callbacks write their order here. */
struct order {
	int completions;
	int closed;
	int completions_at_close;
};

static void order_req_cb(struct uring_req *req, ssize_t res)
{
	struct order *ord = req->data;

	ck_assert_int_eq(res, SMALL);
	ck_assert_int_eq(ord->closed, 0);
	ord->completions++;
}

static void order_close_cb(void *arg)
{
	struct order *ord = arg;

	ord->closed++;
	ord->completions_at_close = ord->completions;
}

START_TEST(t_close_inflight)
{
	struct fixture fx;
	struct order ord = { 0 };
	struct uring_req req[64], late = { .data = &ord };
	uint8_t data[64 * SMALL], back[64 * SMALL];

	fx_open(&fx, 8);
	tu_fill(data, sizeof(data), 5);
	for (int i = 0; i < 64; i++) {
		req[i] = (struct uring_req){ .data = &ord };
		ck_assert_int_eq(uring_write(fx.r, &req[i], fx.fd,
					     data + i * SMALL, SMALL,
					     (uint64_t)i * SMALL,
					     order_req_cb), 0);
	}
	/* Get some of them into the kernel before closing. */
	uv_run(&fx.loop, UV_RUN_NOWAIT);
	uring_close(fx.r, order_close_cb, &ord);

	/* Closing: new requests are refused and their callback never runs. */
	ck_assert_int_eq(uring_read(fx.r, &late, fx.fd, back, SMALL, 0,
				    never_cb), -ECANCELED);
	ck_assert_int_eq(uring_write(fx.r, &late, fx.fd, data, SMALL, 0,
				     never_cb), -ECANCELED);
	ck_assert_int_eq(uring_fdatasync(fx.r, &late, fx.fd, never_cb),
			 -ECANCELED);

	ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(ord.completions, 64);
	ck_assert_int_eq(ord.closed, 1);
	ck_assert_int_eq(ord.completions_at_close, 64);
	ck_assert_int_eq(uv_loop_close(&fx.loop), 0);

	ck_assert_int_eq(pread(fx.fd, back, sizeof(back), 0),
			 (ssize_t)sizeof(back));
	ck_assert_mem_eq(back, data, sizeof(data));
	close(fx.fd);
	tu_rmrf(fx.dir);
	free(fx.path);
	free(fx.dir);
}
END_TEST

START_TEST(t_close_idle)
{
	uv_loop_t loop;
	struct uring *r;
	int closed = 0;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(uring_new(&loop, 16, &r), 0);
	uring_close(r, set_flag, &closed);
	ck_assert_int_eq(closed, 0);	/* only from the loop */
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(closed, 1);
	ck_assert_int_eq(uv_loop_close(&loop), 0);

	/* A NULL close callback is allowed. */
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(uring_new(&loop, 16, &r), 0);
	uring_close(r, NULL, NULL);
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* The last completion callback closes the ring. */
struct close_from_cb {
	struct uring *r;
	int pending;
	int closed;
};

static void closing_cb(struct uring_req *req, ssize_t res)
{
	struct close_from_cb *c = req->data;

	ck_assert_int_eq(res, SMALL);
	if (--c->pending == 0)
		uring_close(c->r, set_flag, &c->closed);
}

START_TEST(t_close_from_cb)
{
	struct fixture fx;
	struct close_from_cb c = { .pending = 10 };
	struct uring_req req[10];
	uint8_t data[SMALL] = { 0 };

	fx_open(&fx, 8);
	c.r = fx.r;
	for (int i = 0; i < 10; i++) {
		req[i] = (struct uring_req){ .data = &c };
		ck_assert_int_eq(uring_write(fx.r, &req[i], fx.fd, data, SMALL,
					     (uint64_t)i * SMALL, closing_cb),
				 0);
	}
	ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(c.pending, 0);
	ck_assert_int_eq(c.closed, 1);
	ck_assert_int_eq(uv_loop_close(&fx.loop), 0);
	close(fx.fd);
	tu_rmrf(fx.dir);
	free(fx.path);
	free(fx.dir);
}
END_TEST

START_TEST(t_idle_returns)
{
	struct fixture fx;
	uint64_t t0;
	uint8_t b[16] = { 0 };

	fx_open(&fx, 8);
	/* A fresh, idle ring does not keep the loop alive... */
	t0 = tu_now_ns();
	ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
	ck_assert_uint_lt(tu_now_ns() - t0, 1000000000ull);
	/* ... nor does one that has finished its work. */
	ck_assert_int_eq(ring_write(&fx, b, sizeof(b), 0), (ssize_t)sizeof(b));
	t0 = tu_now_ns();
	ck_assert_int_eq(uv_run(&fx.loop, UV_RUN_DEFAULT), 0);
	ck_assert_uint_lt(tu_now_ns() - t0, 1000000000ull);
	/* While something is in flight the loop is alive. */
	{
		struct outcome o = { 0 };
		struct uring_req req = { .data = &o };

		ck_assert_int_eq(uring_read(fx.r, &req, fx.fd, b, sizeof(b), 0,
					    record_cb), 0);
		ck_assert_int_ne(uv_loop_alive(&fx.loop), 0);
		tu_run_until(&fx.loop, &o.calls, 10000);
		ck_assert_int_eq(o.res, (ssize_t)sizeof(b));
		ck_assert_int_eq(uv_loop_alive(&fx.loop), 0);
	}
	fx_close(&fx);
}
END_TEST

START_TEST(t_new_bad_entries)
{
	uv_loop_t loop;
	struct uring *r = (struct uring *)&loop;	/* must be reset */

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(uring_new(&loop, 0, &r), -EINVAL);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/*
 * Pipes make short transfers happen on demand: a read returns what the
 * writer has put in so far, and a non-blocking write stops when the pipe
 * is full.
 */
struct pipe_peer {
	int fd;
	uint8_t *buf;
	size_t len;
	size_t split;		/* writer: pause after this many bytes */
	size_t got;		/* reader: bytes received */
};

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void *pipe_writer(void *arg)
{
	struct pipe_peer *p = arg;

	if (write(p->fd, p->buf, p->split) != (ssize_t)p->split)
		abort();
	sleep_ms(100);	/* let the ring see a short read */
	if (p->len > p->split &&
	    write(p->fd, p->buf + p->split, p->len - p->split) !=
	    (ssize_t)(p->len - p->split))
		abort();
	close(p->fd);
	return NULL;
}

START_TEST(t_pipe_short_read)
{
	struct fixture fx;
	uint8_t data[8192], back[8192 + 100];
	struct outcome o = { 0 };
	struct uring_req req = { .data = &o };
	struct pipe_peer peer;
	pthread_t tid;
	int pfd[2];

	/* Loop index 0: both halves arrive; 1: the writer quits early. */
	size_t sent = _i == 0 ? sizeof(data) : 3000;

	fx_open(&fx, 8);
	tu_fill(data, sizeof(data), 13);
	memset(back, 0, sizeof(back));
	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	peer = (struct pipe_peer){ .fd = pfd[1], .buf = data, .len = sent,
				   .split = _i == 0 ? 4096 : 1000 };
	ck_assert_int_eq(pthread_create(&tid, NULL, pipe_writer, &peer), 0);

	/* Ask for more than will come in the first write. */
	ck_assert_int_eq(uring_read(fx.r, &req, pfd[0], back,
				    _i == 0 ? sizeof(data) : sizeof(back),
				    0, record_cb), 0);
	run_idle(&fx);
	ck_assert_int_eq(pthread_join(tid, NULL), 0);
	ck_assert_int_eq(o.calls, 1);
	ck_assert_int_eq(o.res, (ssize_t)sent);
	ck_assert_mem_eq(back, data, sent);
	close(pfd[0]);
	fx_close(&fx);
}
END_TEST

static void *pipe_reader(void *arg)
{
	struct pipe_peer *p = arg;

	sleep_ms(50);	/* let the pipe fill so the ring's write comes up short */
	while (p->got < p->len) {
		size_t want = p->len - p->got < 1000 ? p->len - p->got : 1000;
		ssize_t n = read(p->fd, p->buf + p->got, want);

		if (n <= 0)
			break;
		p->got += (size_t)n;
		if (p->got < 8192)
			sleep_ms(10);
	}
	return NULL;
}

/*
 * len bytes written (or sent) through the ring to wfd, whose reader on rfd
 * (pipe_reader, on a thread) is slow: the callback comes once, with len,
 * and every byte arrives in order.  Closes both descriptors.
 */
static void to_slow_reader(int wfd, int rfd, size_t len, unsigned seed,
			   bool send)
{
	struct fixture fx;
	uint8_t *data = tu_xmalloc(len), *back = tu_xmalloc(len);
	struct outcome o = { 0 };
	struct uring_req req = { .data = &o };
	struct pipe_peer peer = { .fd = rfd, .buf = back, .len = len };
	pthread_t tid;

	fx_open(&fx, 8);
	tu_fill(data, len, seed);
	ck_assert_int_eq(fcntl(wfd, F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(pthread_create(&tid, NULL, pipe_reader, &peer), 0);
	if (send)
		ck_assert_int_eq(uring_send(fx.r, &req, wfd, data, len,
					    record_cb), 0);
	else
		ck_assert_int_eq(uring_write(fx.r, &req, wfd, data, len, 0,
					     record_cb), 0);
	run_idle(&fx);
	ck_assert_int_eq(o.calls, 1);
	ck_assert_int_eq(o.res, (ssize_t)len);
	close(wfd);	/* the reader's EOF, should it want more */
	ck_assert_int_eq(pthread_join(tid, NULL), 0);
	ck_assert_uint_eq(peer.got, len);
	ck_assert_int_eq(memcmp(back, data, len), 0);
	close(rfd);
	fx_close(&fx);
	free(data);
	free(back);
}

/* A small non-blocking pipe: writes come back short or EAGAIN. */
START_TEST(t_pipe_short_write)
{
	int pfd[2];

	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	fcntl(pfd[1], F_SETPIPE_SZ, 4096);
	to_slow_reader(pfd[1], pfd[0], 256 * 1024, 17, false);
}
END_TEST

/*
 * A send to a stream socket whose reader is slow: the kernel waits on the
 * full socket (O_NONBLOCK or not) and the rest of a short send follows.
 */
START_TEST(t_send_stream)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv), 0);
	to_slow_reader(sv[0], sv[1], 4 << 20, 23, true);
}
END_TEST

/*
 * uring_submit: sends to sockets with room complete within the call (their
 * callbacks have run when it returns, without the loop), and a send queued
 * by such a callback goes in the same call.  A send waiting on a full
 * socket is ended by shutdown(2) with -EPIPE, and no signal.
 */
struct chain2 {
	struct fixture *fx;
	struct uring_req next;
	struct outcome o2;
	int fd;
	uint8_t byte;
};

static void first_cb(struct uring_req *req, ssize_t res)
{
	struct chain2 *ch = req->data;

	ck_assert_int_eq(res, 1);
	ch->next.data = &ch->o2;
	ck_assert_int_eq(uring_send(ch->fx->r, &ch->next, ch->fd, &ch->byte,
				    1, record_cb), 0);
}

START_TEST(t_submit_now)
{
	static uint8_t fill[64 << 10];
	struct fixture fx;
	struct chain2 ch = { .fx = &fx, .byte = 'b' };
	struct uring_req first = { .data = &ch }, stuck = { 0 };
	struct outcome so = { 0 };
	uint8_t got[2];
	int sv[2], tv[2];

	fx_open(&fx, 8);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv), 0);
	ch.fd = sv[0];
	ck_assert(uring_can_send(fx.r));
	ck_assert_int_eq(uring_send(fx.r, &first, sv[0], "a", 1, first_cb), 0);
	ck_assert_uint_ge(uring_submit(fx.r), 2);
	ck_assert_int_eq(ch.o2.calls, 1);
	ck_assert_int_eq(ch.o2.res, 1);
	ck_assert_int_eq(uring_inflight(fx.r), 0);
	ck_assert_int_eq(read(sv[1], got, 2), 2);
	ck_assert_int_eq(memcmp(got, "ab", 2), 0);

	/* A full socket: the send waits in the kernel until shutdown. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    tv), 0);
	ck_assert_int_eq(fcntl(tv[0], F_SETFL, O_NONBLOCK), 0);
	while (write(tv[0], fill, sizeof(fill)) > 0)
		;
	stuck.data = &so;
	ck_assert_int_eq(uring_send(fx.r, &stuck, tv[0], fill, sizeof(fill),
				    record_cb), 0);
	ck_assert_uint_eq(uring_submit(fx.r), 0);
	uv_run(&fx.loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(so.calls, 0);
	ck_assert_int_eq(uring_inflight(fx.r), 1);
	ck_assert_int_eq(shutdown(tv[0], SHUT_RDWR), 0);
	run_idle(&fx);
	ck_assert_int_eq(so.calls, 1);
	ck_assert_int_eq(so.res, -EPIPE);
	close(sv[0]);
	close(sv[1]);
	close(tv[0]);
	close(tv[1]);
	fx_close(&fx);
}
END_TEST

static Suite *uring_suite(void)
{
	Suite *s = suite_create("uring");
	TCase *io = tcase_create("io");
	TCase *life = tcase_create("lifecycle");

	tcase_set_timeout(io, 60);
	tcase_add_test(io, t_write_read);
	tcase_add_test(io, t_writeback);
	tcase_add_test(io, t_zero_length);
	tcase_add_test(io, t_concurrent);
	tcase_add_test(io, t_large);
	tcase_add_test(io, t_read_eof);
	tcase_add_test(io, t_bad_fd);
	tcase_add_test(io, t_inject);
	tcase_add_test(io, t_more_than_ring);
	tcase_add_test(io, t_chain);
	tcase_add_loop_test(io, t_pipe_short_read, 0, 2);
	tcase_add_test(io, t_pipe_short_write);
	tcase_add_test(io, t_send_stream);
	tcase_add_test(io, t_submit_now);
	suite_add_tcase(s, io);

	tcase_set_timeout(life, 30);
	tcase_add_test(life, t_close_inflight);
	tcase_add_test(life, t_close_idle);
	tcase_add_test(life, t_close_from_cb);
	tcase_add_test(life, t_idle_returns);
	tcase_add_test(life, t_new_bad_entries);
	suite_add_tcase(s, life);
	return s;
}

/* Where io_uring is switched off (seccomp, io_uring_disabled) the suite
 * cannot say anything: report a skip (77) rather than a pass. */
static int uring_available(void)
{
	uv_loop_t loop;
	struct uring *r;
	int ret;

	if (uv_loop_init(&loop) != 0)
		return 1;
	ret = uring_new(&loop, 4, &r);
	if (ret == 0) {
		uring_close(r, NULL, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(&loop);
	if (ret == -ENOSYS || ret == -EPERM) {
		fprintf(stderr, "io_uring unavailable (%s): skipping\n",
			strerror(-ret));
		return 0;
	}
	return 1;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (!uring_available())
		return 77;
	sr = srunner_create(uring_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
