// SPDX-License-Identifier: Apache-2.0
/*
 * uring: io_uring completed on a libuv loop (see uring.h for the design).
 *
 * Invariants:
 *   - every request between uring_read/write/fdatasync and its callback is
 *     counted in r->inflight, and is in exactly one place: on the queue
 *     (r->qhead; waiting for an SQE, first time or resubmission) or in the
 *     kernel (counted in r->in_kernel; its SQE's user_data is the req);
 *   - r->in_kernel <= r->cap (the SQ size), so the kernel never holds more
 *     requests than the CQ (twice the SQ) has room for: CQEs cannot
 *     overflow, and the queue doubles as the overflow list;
 *   - the ring is touched only from the prepare callback (submit) and the
 *     poll callback (reap); completion callbacks and uring_read/write/
 *     fdatasync only link requests onto the queue, which is what makes it
 *     safe for a callback to queue the next request or close the ring;
 *   - the prepare handle is active iff there is something to submit, and
 *     the poll handle is referenced iff r->inflight > 0, so an idle ring
 *     does not keep uv_run(UV_RUN_DEFAULT) from returning;
 *   - memory is freed only in the last handle close callback (libuv rule).
 *
 * A short transfer or an -EINTR/-EAGAIN result puts the request back at the
 * head of the queue (QUEUED again, in uring.h's terms), so it waits for a
 * free slot like anything else.
 *
 * Ring lifecycle:
 *
 *   OPEN ------ uring_close [inflight > 0] ------> DRAINING
 *     |         (new requests: -ECANCELED)            |
 *     | uring_close [inflight == 0]                   | on_poll [inflight == 0]
 *     v                                               v
 *   CLOSING (close_handles: uv_close poll, prepare) <-+
 *     | on_handle_close [last handle]
 *     v
 *   FREED (ring exited, eventfd closed, r freed) -> close cb
 *
 * Submission is batched in the prepare callback only, never at the end of
 * the completion handler: libuv runs prepare handles right before it blocks
 * for I/O, so a request queued by a completion callback (a chained write,
 * a resubmitted short read) reaches the kernel in the next iteration without
 * waiting for any event, and together with everything else queued
 * meanwhile, in one io_uring_enter.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "uring.h"
#include "banned.h"

/*
 * Largest transfer handed to one SQE: the SQE length is 32 bits and the
 * kernel caps a single read/write near 2 GiB anyway; a larger request is
 * finished by the short-transfer path.
 */
#define URING_MAX_XFER ((size_t)1 << 30)

/* (uint64_t)-1 asks the kernel for the file position; resubmissions must
 * keep it rather than add the bytes done. */
#define URING_OFF_CUR UINT64_MAX

struct uring {
	struct io_uring ring;
	int efd;
	uv_poll_t poll;
	uv_prepare_t prepare;

	struct uring_req *qhead;	/* waiting for an SQE, FIFO */
	struct uring_req *qtail;
	unsigned inflight;		/* queued + in the kernel */
	unsigned in_kernel;		/* SQEs handed out, CQE not yet seen */
	unsigned cap;			/* max in_kernel: the SQ size */

	bool closing;			/* uring_close called */
	bool handles_closing;		/* uv_close issued on both handles */
	int open_handles;
	void (*close_cb)(void *arg);
	void *close_arg;
};

static void queue_push_back(struct uring *r, struct uring_req *req)
{
	req->next = NULL;
	if (r->qtail)
		r->qtail->next = req;
	else
		r->qhead = req;
	r->qtail = req;
}

/* Resubmissions go first: they are older than anything queued since. */
static void queue_push_front(struct uring *r, struct uring_req *req)
{
	req->next = r->qhead;
	r->qhead = req;
	if (!r->qtail)
		r->qtail = req;
}

static struct uring_req *queue_pop(struct uring *r)
{
	struct uring_req *req = r->qhead;

	if (req) {
		r->qhead = req->next;
		if (!r->qhead)
			r->qtail = NULL;
		req->next = NULL;
	}
	return req;
}

static void on_prepare(uv_prepare_t *h);

/* Bring both handles in line with the invariants above. */
static void update_handles(struct uring *r)
{
	bool submit;

	if (r->handles_closing)
		return;
	/* Unsubmitted SQEs (a failed io_uring_submit) also need a retry. */
	submit = (r->qhead && r->in_kernel < r->cap) ||
		 io_uring_sq_ready(&r->ring) > 0;
	if (submit)
		uv_prepare_start(&r->prepare, on_prepare);
	else
		uv_prepare_stop(&r->prepare);
	if (r->inflight)
		uv_ref((uv_handle_t *)&r->poll);
	else
		uv_unref((uv_handle_t *)&r->poll);
}

static void on_handle_close(uv_handle_t *h)
{
	struct uring *r = h->data;
	void (*cb)(void *arg);
	void *arg;

	if (--r->open_handles > 0)
		return;
	/* Both handles gone: nothing can reach the ring or the eventfd. */
	io_uring_queue_exit(&r->ring);
	close(r->efd);
	cb = r->close_cb;
	arg = r->close_arg;
	free(r);
	if (cb)
		cb(arg);
}

static void close_handles(struct uring *r)
{
	assert(r->inflight == 0);
	if (r->handles_closing)
		return;
	r->handles_closing = true;
	r->open_handles = 2;
	uv_close((uv_handle_t *)&r->poll, on_handle_close);
	uv_close((uv_handle_t *)&r->prepare, on_handle_close);
}

/* Fill one SQE for req's next (or only) transfer. */
static void prep_sqe(struct io_uring_sqe *sqe, struct uring_req *req)
{
	size_t n = req->len - req->done;
	uint64_t off = req->off;

	if (n > URING_MAX_XFER)
		n = URING_MAX_XFER;
	if (off != URING_OFF_CUR)
		off += req->done;

	/* An injected error takes the same asynchronous road as a real one. */
	if (req->inject) {
		io_uring_prep_nop(sqe);
	} else {
		switch (req->op) {
		case URING_READ:
			io_uring_prep_read(sqe, req->fd, req->buf + req->done,
					   (unsigned)n, off);
			break;
		case URING_WRITE:
			io_uring_prep_write(sqe, req->fd, req->buf + req->done,
					    (unsigned)n, off);
			break;
		case URING_FDATASYNC:
			io_uring_prep_fsync(sqe, req->fd, IORING_FSYNC_DATASYNC);
			break;
		case URING_WRITEBACK:
			io_uring_prep_sync_file_range(sqe, req->fd,
						      (unsigned)req->len,
						      req->off,
						      SYNC_FILE_RANGE_WRITE);
			break;
		case URING_SEND:
			/* Whole sends: the kernel itself carries on after a
			 * short one, as the socket drains (5.19+; before, the
			 * short-transfer path below does). */
			io_uring_prep_send(sqe, req->fd, req->buf + req->done,
					   n, MSG_NOSIGNAL |
					   (req->partial ? 0 : MSG_WAITALL));
			break;
		}
	}
	io_uring_sqe_set_data(sqe, req);
	if (req->async && !req->inject)
		io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
}

/* Move queued requests into SQEs (up to the cap) and submit them in one
 * system call. */
static void submit_queued(struct uring *r)
{
	int ret;

	while (r->qhead && r->in_kernel < r->cap) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

		if (!sqe)
			break;	/* SQ full of unsubmitted SQEs: next time */
		prep_sqe(sqe, queue_pop(r));
		r->in_kernel++;
	}
	do {
		ret = io_uring_submit(&r->ring);
	} while (ret == -EINTR);
	/*
	 * On another error (-EAGAIN, -EBUSY: the kernel is short of memory)
	 * the SQEs stay in the SQ and update_handles() keeps the prepare
	 * handle active.  Nothing in the kernel may be left to wake the loop,
	 * so signal our own eventfd: the loop goes round and retries.
	 */
	if (ret < 0)
		eventfd_write(r->efd, 1);
}

/* Runs once per loop iteration, just before libuv blocks. */
static void on_prepare(uv_prepare_t *h)
{
	struct uring *r = h->data;

	submit_queued(r);
	update_handles(r);
}

static void complete(struct uring *r, struct uring_req *req, ssize_t res)
{
	r->inflight--;
	req->cb(req, res);	/* may queue requests, or uring_close */
}

/* One CQE: finish the request or send it back for the rest. */
static void on_cqe(struct uring *r, struct uring_req *req, int res)
{
	if (req->inject) {
		complete(r, req, req->inject);
		return;
	}
	/* Interrupted or would-block: nothing happened, try the same again. */
	if (res == -EINTR || res == -EAGAIN) {
		queue_push_front(r, req);
		return;
	}
	if (res < 0) {
		complete(r, req, res);
		return;
	}
	if (req->op == URING_FDATASYNC || req->op == URING_WRITEBACK) {
		complete(r, req, 0);
		return;
	}

	req->done += (size_t)res;
	if (req->done >= req->len || (req->partial && res > 0)) {
		complete(r, req, (ssize_t)req->done);
	} else if (res == 0) {
		/*
		 * A read at end of file completes with what it got.  A write
		 * that makes no progress would loop forever; the kernel does
		 * not do that to regular files, so call it an I/O error.
		 */
		if (req->op == URING_READ)
			complete(r, req, (ssize_t)req->done);
		else
			complete(r, req, -EIO);
	} else {
		queue_push_front(r, req);	/* short transfer */
	}
}

/*
 * Each CQE is consumed (cqe_seen) before its callback runs, and the
 * callback cannot touch the ring (it only links onto r->queue), so running
 * callbacks while reaping is safe.  Requests queued here are submitted by
 * the next on_prepare (or uring_submit).  Returns the CQEs handled.
 */
static unsigned reap(struct uring *r)
{
	struct io_uring_cqe *cqe;
	unsigned n = 0;

	while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
		struct uring_req *req = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&r->ring, cqe);
		r->in_kernel--;
		n++;
		on_cqe(r, req, res);
	}
	return n;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct uring *r = h->data;
	uint64_t n;

	(void)status;
	(void)events;
	/*
	 * Drain the eventfd before reaping, so a CQE posted after the last
	 * peek signals it again.  It is non-blocking: EAGAIN is fine.  A poll
	 * error (status < 0) cannot happen on an eventfd; reaping anyway is
	 * harmless.
	 */
	while (read(r->efd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	reap(r);
	if (r->closing && r->inflight == 0)
		close_handles(r);
	else
		update_handles(r);
}

int uring_new(uv_loop_t *loop, unsigned entries, struct uring **out)
{
	struct io_uring_params p;
	struct uring *r;
	bool ring_ok = false;
	int ret;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->efd = -1;

	/*
	 * COOP_TASKRUN (5.19+): completions do not interrupt the loop thread
	 * with an IPI while it runs; they are processed when it next enters
	 * the kernel, and a thread asleep in epoll_wait is still woken.  Older
	 * kernels reject the flag with -EINVAL: fall back to none.
	 */
	memset(&p, 0, sizeof(p));
#ifdef IORING_SETUP_COOP_TASKRUN
	p.flags = IORING_SETUP_COOP_TASKRUN;
	ret = io_uring_queue_init_params(entries, &r->ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(entries, &r->ring, &p);
	}
#else
	ret = io_uring_queue_init_params(entries, &r->ring, &p);
#endif
	if (ret < 0)
		goto out;
	ring_ok = true;
	r->cap = p.sq_entries;

	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0) {
		ret = -errno;
		goto out;
	}
	ret = io_uring_register_eventfd(&r->ring, r->efd);
	if (ret < 0)
		goto out;

	/* uv_poll_init leaves the handle untouched on failure, so until the
	 * prepare handle exists, freeing r directly is still allowed. */
	ret = uv_poll_init(loop, &r->poll, r->efd);
	if (ret < 0)
		goto out;
	uv_prepare_init(loop, &r->prepare);	/* cannot fail */
	r->poll.data = r;
	r->prepare.data = r;

	ret = uv_poll_start(&r->poll, UV_READABLE, on_poll);
	if (ret < 0) {
		/* Handles exist now: only their close callback may free r,
		 * when the caller next runs the loop. */
		r->closing = true;
		close_handles(r);
		return ret;
	}
	update_handles(r);
	*out = r;
	return 0;
out:
	if (r->efd >= 0)
		close(r->efd);
	if (ring_ok)
		io_uring_queue_exit(&r->ring);
	free(r);
	return ret;
}

void uring_close(struct uring *r, void (*cb)(void *arg), void *arg)
{
	assert(!r->closing);
	r->closing = true;
	r->close_cb = cb;
	r->close_arg = arg;
	if (r->inflight == 0)
		close_handles(r);
	/* Otherwise the poll callback closes them when the last completes. */
}

static int queue_op(struct uring *r, struct uring_req *req, enum uring_op op,
		    int fd, void *buf, size_t len, uint64_t off, uring_cb cb)
{
	if (r->closing)
		return -ECANCELED;
	req->op = op;
	req->fd = fd;
	req->buf = buf;
	req->len = len;
	req->off = off;
	req->done = 0;
	req->cb = cb;
	queue_push_back(r, req);
	r->inflight++;
	update_handles(r);
	return 0;
}

int uring_read(struct uring *r, struct uring_req *req, int fd, void *buf,
	       size_t len, uint64_t off, uring_cb cb)
{
	return queue_op(r, req, URING_READ, fd, buf, len, off, cb);
}

int uring_write(struct uring *r, struct uring_req *req, int fd,
		const void *buf, size_t len, uint64_t off, uring_cb cb)
{
	/* The buffer is only read: the cast feeds the shared request field. */
	return queue_op(r, req, URING_WRITE, fd, (void *)buf, len, off, cb);
}

int uring_fdatasync(struct uring *r, struct uring_req *req, int fd,
		    uring_cb cb)
{
	return queue_op(r, req, URING_FDATASYNC, fd, NULL, 0, 0, cb);
}

int uring_writeback(struct uring *r, struct uring_req *req, int fd,
		    uint64_t off, uint32_t len, uring_cb cb)
{
	return queue_op(r, req, URING_WRITEBACK, fd, NULL, len, off, cb);
}

bool uring_can_send(struct uring *r)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(&r->ring);
	bool ok = p && io_uring_opcode_supported(p, IORING_OP_SEND);

	if (p)
		io_uring_free_probe(p);
	return ok;
}

int uring_send(struct uring *r, struct uring_req *req, int fd,
	       const void *buf, size_t len, uring_cb cb)
{
	return queue_op(r, req, URING_SEND, fd, (void *)buf, len, 0, cb);
}

/* Rounds of submit-and-reap in one uring_submit before it leaves the
 * rest to the next iteration (and wakes the loop for it). */
#define URING_SUBMIT_ROUNDS 4

unsigned uring_submit(struct uring *r)
{
	unsigned n = 0;

	for (int round = 0; round < URING_SUBMIT_ROUNDS; round++) {
		if (r->handles_closing || !r->qhead || r->in_kernel >= r->cap)
			break;
		/*
		 * Completions posted during the submission (ours to reap just
		 * below) need not signal the eventfd: that would cost the
		 * loop a wake-up and a read for nothing.  Only this thread
		 * completes socket sends (inline, or in its task work when
		 * the socket drains), so none is missed (uring.h); the fence
		 * orders re-enabling before the peek.
		 * Kernels before 5.8 have no such switch: then it signals.
		 */
		io_uring_cq_eventfd_toggle(&r->ring, false);
		submit_queued(r);
		io_uring_cq_eventfd_toggle(&r->ring, true);
		atomic_thread_fence(memory_order_seq_cst);
		n += reap(r);
	}
	if (r->qhead && !r->handles_closing)
		eventfd_write(r->efd, 1);	/* on_prepare takes the rest */
	if (r->closing && r->inflight == 0)
		close_handles(r);
	else
		update_handles(r);
	return n;
}

unsigned uring_inflight(const struct uring *r)
{
	return r->inflight;
}
