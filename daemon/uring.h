// SPDX-License-Identifier: Apache-2.0
/*
 * uring: io_uring, completed on a libuv loop.
 *
 * One ring per loop.  The ring's eventfd (io_uring_register_eventfd) is
 * watched by a uv_poll_t; when it fires, completions are reaped and each
 * request's callback runs on the loop thread.  Submissions made during a
 * loop iteration are batched and handed to the kernel once, from a
 * uv_prepare_t, just before the loop blocks (one io_uring_submit per
 * iteration, not per request).  When the submission queue is full, requests
 * wait on an overflow list and go in as completions free slots.
 *
 * Requests are caller-allocated (libuv style) and must stay valid until
 * their callback has run.  A read or write is completed in full: short
 * transfers are resubmitted for the remainder; a read that meets end of file
 * completes with the bytes it got.
 *
 * A request may carry an injected error (req->inject, from fault_hit()): it
 * then goes through the ring as a NOP and completes with that error, so
 * injected failures take exactly the asynchronous path real ones do.
 *
 *   req states:  IDLE -> QUEUED [uring_read/write/fdatasync]
 *                QUEUED -> SUBMITTED [prepare callback]
 *                SUBMITTED -> SUBMITTED [short transfer, resubmit]
 *                SUBMITTED -> IDLE [completion: cb(req, res)]
 */
#ifndef STRATA_URING_H
#define STRATA_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct uring;
struct uring_req;

/* res: bytes transferred (reads/writes), 0 (fdatasync), or a negative errno. */
typedef void (*uring_cb)(struct uring_req *req, ssize_t res);

enum uring_op { URING_READ, URING_WRITE, URING_FDATASYNC, URING_WRITEBACK,
		URING_SEND };

struct uring_req {
	/* public: set by the caller */
	void *data;
	int inject;		/* 0, or a negative errno to complete with */
	/* Hand the transfer to the kernel's io-wq workers (IOSQE_ASYNC)
	 * instead of trying it inline during submission: for large
	 * page-cache reads, the copy then runs off the loop thread. */
	bool async;
	/* Complete a send or write with what a short transfer moved (res
	 * may then be less than len) instead of sending the rest: the
	 * caller sees progress as it happens, and queues the rest itself. */
	bool partial;
	/* private */
	enum uring_op op;
	int fd;
	uint8_t *buf;
	size_t len;
	uint64_t off;
	size_t done;
	uring_cb cb;
	struct uring_req *next;
};

/*
 * Create a ring of `entries` slots bound to `loop`.
 * Returns 0, -ENOMEM, or the negative errno of io_uring_queue_init (e.g.
 * -ENOSYS, -EPERM where io_uring is disabled).
 */
int uring_new(uv_loop_t *loop, unsigned entries, struct uring **out);

/*
 * Start closing: no new requests are accepted (uring_read/write/fdatasync
 * return -ECANCELED and do not call the callback); in-flight ones, queued
 * or in the kernel, complete normally; once all have completed and the
 * poll/prepare handles are closed, the ring is freed and `cb` (may be NULL)
 * runs on the loop.  The loop must keep running until then.
 */
void uring_close(struct uring *r, void (*cb)(void *arg), void *arg);

/* Queue operations.  Return 0, or -ECANCELED if the ring is closing (the
 * callback is then not called). */
int uring_read(struct uring *r, struct uring_req *req, int fd, void *buf,
	       size_t len, uint64_t off, uring_cb cb);
int uring_write(struct uring *r, struct uring_req *req, int fd,
		const void *buf, size_t len, uint64_t off, uring_cb cb);
int uring_fdatasync(struct uring *r, struct uring_req *req, int fd,
		    uring_cb cb);

/*
 * Start writeback of [off, off+len) without waiting for it
 * (sync_file_range SYNC_FILE_RANGE_WRITE): a later fdatasync then has little
 * left to do, and the disk works while the CPU encodes the next chunks.
 * Durability still comes only from uring_fdatasync.  res: 0 or -errno.
 */
int uring_writeback(struct uring *r, struct uring_req *req, int fd,
		    uint64_t off, uint32_t len, uring_cb cb);

/*
 * Send len bytes to a connected stream socket (IORING_OP_SEND, with
 * MSG_NOSIGNAL), all of them: a short send is resubmitted for the rest
 * (unless req->partial).
 * A socket whose buffer is full is waited on by the kernel (its poll
 * wakes the send), whatever O_NONBLOCK says.  Only the caller's own
 * socket: the fd must stay open until the callback (shutdown(2) ends a
 * send that waits: it completes with -EPIPE).
 */
int uring_send(struct uring *r, struct uring_req *req, int fd,
	       const void *buf, size_t len, uring_cb cb);

/* Whether this kernel's io_uring has IORING_OP_SEND (5.6+). */
bool uring_can_send(struct uring *r);

/*
 * Submit what is queued now, in one system call, and run the callbacks
 * of what completed during it (a send to a socket with room completes
 * there), without waiting for the next loop iteration.  For callers that
 * queue requests from a prepare callback of their own, which may run
 * after the ring's in the same iteration: anything queued then would wait
 * for the loop's next wake-up.  Callbacks run from here may queue more;
 * that too is submitted before this returns (or the loop is woken for
 * it).  Returns the number of completions handled.  The eventfd is muted
 * during the submission: meant for requests that complete on the calling
 * thread (inline, or in its task work: socket sends), not for ones the
 * kernel's io-wq workers may complete (IOSQE_ASYNC, most file I/O), whose
 * completion could then go unsignalled.
 */
unsigned uring_submit(struct uring *r);

/* Requests queued or in the kernel (for metrics and tests). */
unsigned uring_inflight(const struct uring *r);

#endif
