// SPDX-License-Identifier: Apache-2.0
/*
 * libstrata requests: buckets, put, get, stat, delete, list, batch get.
 *
 * Each request is a call_fn run by client_call() on a pooled connection:
 * encode the fields into cn->out, send, read the response.  Encoding comes
 * before conn_begin(), so a bad name or key fails the call without touching
 * the connection.  Bodies stream through bounded buffers (one frame of at
 * most PROTO_MAX_BODY_LEN for puts and record bodies, 256 KiB for gets):
 * no object is ever held whole.
 *
 * Retry safety: a call sets *unsafe before it hands a byte to a caller
 * callback or takes one from a stream that cannot be rewound; client_call()
 * retries a broken connection only while it is still clear.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client_int.h"
#include "banned.h"

#define GET_BUFFER (256u * 1024)
#define BUCKET_PAGE 1000
#define LIST_PAGE 1000
/* Bounds on record bodies a response may make us buffer. */
#define MAX_RECORDS_BODY (256u << 20)
/* Keys list bytes per BATCH_GET: one field's value is at most 65535 bytes,
 * and the bucket and the field headers need room beside it. */
#define BATCH_LIST_MAX 65000u

static struct proto_str pstr(const char *s)
{
	struct proto_str p = { s, s ? strlen(s) : 0 };

	return p;
}

static bool etag_ok(const struct proto_bytes *b)
{
	return b->p && b->len == STRATA_ETAG_LEN;
}

/* ---- Buckets ----------------------------------------------------------- */

struct bucket_call {
	uint8_t op;
	const char *bucket;
};

static int bucket_fn(struct conn *cn, void *arg, bool *unsafe)
{
	struct bucket_call *bc = arg;
	struct proto_bucket_req m = { .bucket = pstr(bc->bucket) };
	struct resp r;
	size_t len;
	int rc;

	rc = proto_bucket_req_encode(&m, cn->out + PROTO_HEADER_LEN,
				     PROTO_MAX_FIELDS_LEN, &len);
	if (rc)
		return rc == -EINVAL ? STRATA_EBADBUCKET : rc;
	rc = req_call(cn, bc->op, len, &r);
	if (!rc && (rc = proto_empty_decode(cn->fields, r.fields_len)) != 0)
		conn_break(cn);
	return rc;
}

int strata_bucket_create(strata_client *c, const char *bucket)
{
	struct bucket_call bc = { PROTO_OP_BUCKET_CREATE, bucket };

	if (!c || !bucket)
		return -EINVAL;
	return client_call(c, bucket_fn, &bc);
}

int strata_bucket_delete(strata_client *c, const char *bucket)
{
	struct bucket_call bc = { PROTO_OP_BUCKET_DELETE, bucket };

	if (!c || !bucket)
		return -EINVAL;
	return client_call(c, bucket_fn, &bc);
}

struct blist_call {
	const char *start_after;
	bool truncated;
	uint32_t count;
	uint8_t *body;
	size_t body_len;
};

static int blist_fn(struct conn *cn, void *arg, bool *unsafe)
{
	struct blist_call *bl = arg;
	struct proto_bucket_list_req m = {
		.start_after = pstr(bl->start_after),
		.has_limit = true,
		.limit = BUCKET_PAGE,
	};
	struct proto_bucket_list_resp br;
	struct resp r;
	size_t len;
	int rc;

	rc = proto_bucket_list_req_encode(&m, cn->out + PROTO_HEADER_LEN,
					  PROTO_MAX_FIELDS_LEN, &len);
	if (rc)
		return rc;
	rc = req_call(cn, PROTO_OP_BUCKET_LIST, len, &r);
	if (rc)
		return rc;
	rc = proto_bucket_list_resp_decode(cn->fields, r.fields_len, &br);
	if (rc) {
		conn_break(cn);
		return rc;
	}
	bl->truncated = br.truncated;
	bl->count = br.count;
	free(bl->body);
	return resp_records(cn, &r, &bl->body, &bl->body_len,
			    MAX_RECORDS_BODY);
}

int strata_bucket_list(strata_client *c, strata_bucket_fn fn, void *arg)
{
	char last[PROTO_MAX_BUCKET_LEN + 1] = "";
	struct blist_call bl = { 0 };
	int rc;

	if (!c || !fn)
		return -EINVAL;
	do {
		struct proto_records it;
		struct proto_bytes rec;
		uint32_t n = 0;

		bl.start_after = last[0] ? last : NULL;
		rc = client_call(c, blist_fn, &bl);
		if (rc)
			break;
		proto_records_init(&it, bl.body, bl.body_len);
		while ((rc = proto_records_next(&it, &rec)) == 1) {
			struct proto_bucket_entry e;

			rc = proto_bucket_entry_decode(rec.p, rec.len, &e);
			if (!rc && (e.bucket.len >= sizeof(last) ||
				    !e.bucket.len))
				rc = STRATA_EPROTO;
			if (rc)
				break;
			memcpy(last, e.bucket.s, e.bucket.len);
			last[e.bucket.len] = '\0';
			n++;
			rc = fn(arg, last, e.ctime_ms);
			if (rc)
				break;
		}
		if (!rc && (n != bl.count || (bl.truncated && !n)))
			rc = STRATA_EPROTO;
	} while (!rc && bl.truncated);
	free(bl.body);
	return rc;
}

/* ---- Put --------------------------------------------------------------- */

struct put_call {
	const char *bucket;
	const char *key;
	const struct strata_put_opts *opts;
	struct proto_list meta;
	struct proto_list tags;
	strata_read_fn fn;
	void *arg;
	int (*rewind)(void *arg);	/* NULL: the stream is read once */
	bool has_size;
	uint64_t size;
	bool touched;			/* fn has been called */
	uint8_t *frame;			/* header room + one body frame */
	struct strata_put_result *res;
};

/* Give up on a put whose body cannot be finished: CANCEL it, read the
 * server's answer (STRATA_EABORTED) so the connection stays usable, and
 * return err.  The server's words are on the CANCEL, not on err: they
 * are not kept for strata_error_message(). */
static int put_abort(struct conn *cn, int err)
{
	struct resp r;

	if (cancel_fired())		/* interrupted: no waiting on */
		conn_break(cn);
	else if (!conn_cancel(cn, true) && !resp_start(cn, PROTO_OP_PUT, &r))
		conn_break(cn);		/* acknowledged a put without END? */
	client_message("%s", "");
	return err;
}

/* The server answered while the body was still going: an error decided
 * from the fields (no bucket, denied, full).  Returns 1 to send on (it was
 * only a GOAWAY), or the error, with the request ended by CANCEL. */
static int put_early(struct conn *cn)
{
	struct resp r;
	int rc = resp_early(cn, PROTO_OP_PUT, &r);

	if (rc == 1)
		return 1;
	if (!rc) {
		conn_break(cn);
		return STRATA_EPROTO;	/* a success before the END */
	}
	if (!cn->broken)
		conn_cancel(cn, false);
	return rc;
}

/* Stream the body in CONT frames, the last with END.  Returns 0 when it
 * is all sent, or the put's final error. */
static int put_body(struct conn *cn, struct put_call *pc, bool *unsafe)
{
	uint8_t *body = pc->frame + PROTO_HEADER_LEN;
	uint64_t sent = 0;
	int rc;

	for (;;) {
		size_t fill = 0;
		bool eof = false;

		while (fill < cn->max_body) {
			size_t want = cn->max_body - fill;
			ssize_t n;

			if (pc->has_size) {
				uint64_t left = pc->size - sent - fill;

				if (!left)
					break;
				if (want > left)
					want = (size_t)left;
			}
			pc->touched = true;
			if (!pc->rewind)
				*unsafe = true;
			n = pc->fn(pc->arg, body + fill, want);
			if (n < 0 || (size_t)n > want ||
			    (n == 0 && pc->has_size))
				return put_abort(cn, n < 0 ? (int)n : -EINVAL);
			if (n == 0) {
				eof = true;
				break;
			}
			fill += (size_t)n;
		}
		if (pc->has_size && sent + fill == pc->size)
			eof = true;
		rc = frame_send(cn, PROTO_OP_PUT,
				PROTO_F_CONT | (eof ? PROTO_F_END : 0),
				pc->frame, 0, (uint32_t)fill);
		if (rc || eof)
			return rc;
		sent += fill;
		if (conn_answered(cn) && (rc = put_early(cn)) != 1)
			return rc;
	}
}

static int put_fn(struct conn *cn, void *arg, bool *unsafe)
{
	struct put_call *pc = arg;
	const struct strata_put_opts *o = pc->opts;
	struct proto_put_req m = {
		.bucket = pstr(pc->bucket),
		.key = pstr(pc->key),
		.has_size = pc->has_size,
		.size = pc->size,
		.content_type = pstr(o ? o->content_type : NULL),
		.meta = pc->meta,
		.tags = pc->tags,
	};
	struct proto_put_resp pr;
	struct resp r;
	bool empty = pc->has_size && !pc->size;
	size_t len;
	int rc;

	if (pc->touched) {
		/* Only reached with a rewind: client_call stops otherwise. */
		rc = pc->rewind(pc->arg);
		if (rc)
			return rc;
		pc->touched = false;
	}
	rc = proto_put_req_encode(&m, cn->out + PROTO_HEADER_LEN,
				  PROTO_MAX_FIELDS_LEN, &len);
	if (rc)
		return rc == -EINVAL || rc == -ENOSPC ? STRATA_EBADMETA : rc;
	conn_begin(cn);
	rc = req_send(cn, PROTO_OP_PUT, len, empty);
	if (!rc && !empty)
		rc = put_body(cn, pc, unsafe);
	if (!rc)
		rc = resp_start(cn, PROTO_OP_PUT, &r);
	if (rc)
		return rc;
	rc = proto_put_resp_decode(cn->fields, r.fields_len, &pr);
	if (!rc && !etag_ok(&pr.etag))
		rc = STRATA_EPROTO;
	if (rc) {
		conn_break(cn);
		return rc;
	}
	if (pc->res) {
		pc->res->size = pr.size;
		memcpy(pc->res->etag, pr.etag.p, STRATA_ETAG_LEN);
		pc->res->version = pr.version;
		pc->res->writer = pr.writer;
	}
	return 0;
}

/* Build a metadata or tag list: name, value, name, value, ... */
static int kv_list(const struct strata_kv *kv, size_t n, uint8_t **buf,
		   struct proto_list *out)
{
	struct proto_str elems[2 * PROTO_MAX_KV];
	size_t need = 0, i;
	int rc;

	*buf = NULL;
	memset(out, 0, sizeof(*out));
	if (!n)
		return 0;
	if (n > PROTO_MAX_KV || !kv)
		return STRATA_EBADMETA;
	for (i = 0; i < n; i++) {
		if (!kv[i].name || !kv[i].value)
			return STRATA_EBADMETA;
		elems[2 * i] = pstr(kv[i].name);
		elems[2 * i + 1] = pstr(kv[i].value);
		need += 4 + elems[2 * i].len + elems[2 * i + 1].len;
	}
	*buf = malloc(need);
	if (!*buf)
		return -ENOMEM;
	rc = proto_list_build(*buf, need, elems, 2 * n, out);
	return rc ? STRATA_EBADMETA : 0;
}

/* An object key the node would refuse: empty, over 1024 bytes, not
 * UTF-8 (or with a NUL).  Said before anything is sent, as the node would
 * say it. */
static int key_check(const char *key)
{
	size_t n = strlen(key);

	return n && n <= PROTO_MAX_KEY_LEN && proto_utf8_ok(key, n) ? 0 :
	       STRATA_EBADKEY;
}

static int put_common(strata_client *c, struct put_call *pc)
{
	const struct strata_put_opts *o = pc->opts;
	uint8_t *meta = NULL, *tags = NULL;
	int rc;

	if (!c || !pc->bucket || !pc->key)
		return -EINVAL;
	rc = key_check(pc->key);
	if (rc)
		return rc;
	rc = kv_list(o ? o->meta : NULL, o ? o->nmeta : 0, &meta, &pc->meta);
	if (!rc)
		rc = kv_list(o ? o->tags : NULL, o ? o->ntags : 0, &tags,
			     &pc->tags);
	if (!rc) {
		pc->frame = malloc(PROTO_HEADER_LEN + PROTO_MAX_BODY_LEN);
		rc = pc->frame ? client_call(c, put_fn, pc) : -ENOMEM;
	}
	free(pc->frame);
	free(meta);
	free(tags);
	return rc;
}

int strata_object_put(strata_client *c, const char *bucket, const char *key,
		      const struct strata_put_opts *opts, strata_read_fn fn,
		      void *arg, struct strata_put_result *res)
{
	struct put_call pc = {
		.bucket = bucket, .key = key, .opts = opts,
		.fn = fn, .arg = arg, .res = res,
		.has_size = opts && opts->has_size,
		.size = opts ? opts->size : 0,
	};

	if (!fn)
		return -EINVAL;
	return put_common(c, &pc);
}

struct buf_src {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

static ssize_t buf_read(void *arg, void *out, size_t cap)
{
	struct buf_src *b = arg;
	size_t n = b->len - b->pos < cap ? b->len - b->pos : cap;

	memcpy(out, b->p + b->pos, n);
	b->pos += n;
	return (ssize_t)n;
}

static int buf_rewind(void *arg)
{
	((struct buf_src *)arg)->pos = 0;
	return 0;
}

int strata_object_put_buf(strata_client *c, const char *bucket,
			  const char *key, const struct strata_put_opts *opts,
			  const void *buf, size_t len,
			  struct strata_put_result *res)
{
	struct buf_src b = { buf, len, 0 };
	struct put_call pc = {
		.bucket = bucket, .key = key, .opts = opts,
		.fn = buf_read, .arg = &b, .rewind = buf_rewind, .res = res,
		.has_size = true, .size = len,
	};

	if (!buf && len)
		return -EINVAL;
	return put_common(c, &pc);
}

struct fd_src {
	int fd;
	off_t start;
};

static ssize_t fd_read(void *arg, void *out, size_t cap)
{
	struct fd_src *f = arg;
	ssize_t n;

	do
		n = read(f->fd, out, cap);
	while (n < 0 && errno == EINTR && !client_interrupted());
	return n < 0 ? (errno == EINTR ? -ECANCELED : -errno) : n;
}

static int fd_rewind(void *arg)
{
	struct fd_src *f = arg;

	return lseek(f->fd, f->start, SEEK_SET) < 0 ? -errno : 0;
}

int strata_object_put_fd(strata_client *c, const char *bucket,
			 const char *key, const struct strata_put_opts *opts,
			 int fd, struct strata_put_result *res)
{
	struct fd_src f = { fd, 0 };
	struct put_call pc = {
		.bucket = bucket, .key = key, .opts = opts,
		.fn = fd_read, .arg = &f, .res = res,
	};
	struct stat st;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		f.start = lseek(fd, 0, SEEK_CUR);
		if (f.start < 0)
			return -errno;
		pc.has_size = true;
		pc.size = st.st_size > f.start ?
			  (uint64_t)(st.st_size - f.start) : 0;
		pc.rewind = fd_rewind;
	} else if (opts && opts->has_size) {
		pc.has_size = true;
		pc.size = opts->size;
	}
	return put_common(c, &pc);
}

/* ---- Get --------------------------------------------------------------- */

enum get_mode { GET_CB, GET_BUF, GET_FD, GET_ALLOC };

struct get_call {
	const char *bucket;
	const char *key;
	uint64_t offset;
	uint64_t length;
	enum get_mode mode;
	strata_write_fn fn;
	void *arg;
	uint8_t *buf;			/* GET_BUF: the caller's; GET_ALLOC:
					 * the range's, handed over; else
					 * ours */
	size_t cap;
	size_t got;
	struct strata_get_result *res;
};

/* Stop reading a response the caller no longer wants: CANCEL, then read
 * what the server still sends up to its END, so the connection stays
 * usable (PROTOCOL.md §8).  Returns err, without the server's words on
 * the CANCEL (as put_abort()). */
static int resp_abandon(struct conn *cn, struct resp *r, int err)
{
	/* Interrupted (strata_interrupt_set()): no reading on. */
	if (cancel_fired())
		conn_break(cn);
	else if (!conn_cancel(cn, false))
		resp_drain(cn, r);
	client_message("%s", "");
	return err;
}

int get_resp_parse(const uint8_t *fields, size_t len, uint64_t offset,
		   uint64_t length, struct strata_get_result *res)
{
	struct proto_get_resp gr;
	int rc = proto_get_resp_decode(fields, len, &gr);

	if (rc)
		return rc;
	if (!etag_ok(&gr.info.etag) || gr.offset != offset ||
	    (length != STRATA_TO_END && gr.length > length))
		return STRATA_EPROTO;
	res->size = gr.info.size;
	memcpy(res->etag, gr.info.etag.p, STRATA_ETAG_LEN);
	res->version = gr.info.version;
	res->writer = gr.info.writer;
	res->mtime_ms = gr.info.has_mtime ? gr.info.mtime_ms : 0;
	res->offset = gr.offset;
	res->length = gr.length;
	return 0;
}

static int get_fn(struct conn *cn, void *arg, bool *unsafe)
{
	struct get_call *gc = arg;
	struct proto_get_req m = {
		.bucket = pstr(gc->bucket),
		.key = pstr(gc->key),
		.has_offset = gc->offset != 0,
		.offset = gc->offset,
		.has_length = gc->length != STRATA_TO_END,
		.length = gc->length,
	};
	struct strata_get_result res;
	struct resp r;
	uint64_t total = 0;
	size_t len;
	bool into;			/* into a buffer, not through fn */
	int rc;

	rc = proto_get_req_encode(&m, cn->out + PROTO_HEADER_LEN,
				  PROTO_MAX_FIELDS_LEN, &len);
	if (rc)
		return rc;
	rc = req_call(cn, PROTO_OP_GET, len, &r);
	if (rc)
		return rc;
	rc = get_resp_parse(cn->fields, r.fields_len, gc->offset, gc->length,
			    &res);
	if (rc) {
		conn_break(cn);
		return rc;
	}
	if (gc->res)
		*gc->res = res;
	if (gc->mode == GET_ALLOC) {
		free(gc->buf);		/* a first attempt's */
		gc->cap = 0;
		gc->buf = res.length < SIZE_MAX ?
			  malloc(res.length ? (size_t)res.length : 1) : NULL;
		if (!gc->buf)
			return resp_abandon(cn, &r, -ENOMEM);
		gc->cap = (size_t)res.length;
	}
	into = gc->mode == GET_BUF || gc->mode == GET_ALLOC;
	if (into && res.length > gc->cap)
		return resp_abandon(cn, &r, -ENOBUFS);
	gc->got = 0;
	for (;;) {
		uint8_t *dst = into ? gc->buf + total : gc->buf;
		size_t cap = into ? gc->cap - total : gc->cap;
		uint8_t extra;

		/* A full buffer still reads a byte: one past the announced
		 * length is the server's error, not the end. */
		if (!cap) {
			dst = &extra;
			cap = 1;
		}
		rc = resp_read(cn, &r, dst, cap, &len);
		if (rc || !len)
			break;
		total += len;
		/* What landed in a caller buffer, even if the rest fails
		 * (client_get_into resumes after it). */
		if (into && total <= res.length)
			gc->got = (size_t)total;
		if (total > res.length) {
			rc = STRATA_EPROTO;
			break;
		}
		if (into)
			continue;
		*unsafe = true;
		rc = gc->fn(gc->arg, dst, len);
		if (rc)
			return resp_abandon(cn, &r, rc);
	}
	if (!rc && total != res.length)
		rc = STRATA_EPROTO;
	if (rc == STRATA_EPROTO)
		conn_break(cn);
	if (!into)		/* a buffer's is counted above */
		gc->got = (size_t)total;
	return rc;
}

static int get_common(strata_client *c, struct get_call *gc)
{
	int rc;

	if (!c || !gc->bucket || !gc->key)
		return -EINVAL;
	rc = key_check(gc->key);
	if (rc)
		return rc;
	if (gc->mode == GET_CB || gc->mode == GET_FD) {
		gc->cap = GET_BUFFER;
		gc->buf = malloc(gc->cap);
		if (!gc->buf)
			return -ENOMEM;
	}
	rc = client_call(c, get_fn, gc);
	if (gc->mode == GET_CB || gc->mode == GET_FD)
		free(gc->buf);
	return rc;
}

int strata_object_get(strata_client *c, const char *bucket, const char *key,
		      uint64_t offset, uint64_t length, strata_write_fn fn,
		      void *arg, struct strata_get_result *res)
{
	struct get_call gc = {
		.bucket = bucket, .key = key, .offset = offset,
		.length = length, .mode = GET_CB, .fn = fn, .arg = arg,
		.res = res,
	};

	if (!fn)
		return -EINVAL;
	return get_common(c, &gc);
}

int client_get_into(strata_client *c, const char *bucket, const char *key,
		    uint64_t offset, uint64_t length, void *buf, size_t cap,
		    size_t *got, struct strata_get_result *res)
{
	struct get_call gc = {
		.bucket = bucket, .key = key, .offset = offset,
		.length = length, .mode = GET_BUF, .buf = buf, .cap = cap,
		.res = res,
	};
	int rc;

	if (!buf && cap)
		return -EINVAL;
	rc = get_common(c, &gc);
	*got = gc.got;
	return rc;
}

int strata_object_get_alloc(strata_client *c, const char *bucket,
			    const char *key, uint64_t offset, uint64_t length,
			    void **data, struct strata_get_result *res)
{
	struct get_call gc = {
		.bucket = bucket, .key = key, .offset = offset,
		.length = length, .mode = GET_ALLOC, .res = res,
	};
	int rc;

	if (!data || !res)
		return -EINVAL;
	*data = NULL;
	rc = get_common(c, &gc);
	if (rc) {
		free(gc.buf);
		return rc;
	}
	*data = gc.buf;
	return 0;
}

int strata_object_get_buf(strata_client *c, const char *bucket,
			  const char *key, uint64_t offset, uint64_t length,
			  void *buf, size_t cap, size_t *got,
			  struct strata_get_result *res)
{
	struct get_call gc = {
		.bucket = bucket, .key = key, .offset = offset,
		.length = length, .mode = GET_BUF, .buf = buf, .cap = cap,
		.res = res,
	};
	int rc;

	if (!buf && cap)
		return -EINVAL;
	rc = get_common(c, &gc);
	if (got)
		*got = rc ? 0 : gc.got;
	return rc;
}

static int fd_write(void *arg, const void *buf, size_t len)
{
	int fd = *(int *)arg;
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR && !client_interrupted())
			continue;
		if (n < 0 && errno == EINTR)
			return -ECANCELED;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int strata_object_get_fd(strata_client *c, const char *bucket,
			 const char *key, uint64_t offset, uint64_t length,
			 int fd, struct strata_get_result *res)
{
	struct get_call gc = {
		.bucket = bucket, .key = key, .offset = offset,
		.length = length, .mode = GET_FD, .fn = fd_write, .arg = &fd,
		.res = res,
	};

	return get_common(c, &gc);
}

/* ---- Stat, delete ------------------------------------------------------ */

/* Copy n bytes to *pos as a C string; advances *pos. */
static const char *copy_str(char **pos, const char *s, size_t n)
{
	char *d = *pos;

	memcpy(d, s, n);
	d[n] = '\0';
	*pos += n + 1;
	return d;
}

/* Bytes the strings of a kv list need, or SIZE_MAX if malformed. */
static size_t kv_bytes(const struct proto_list *l)
{
	struct proto_list_iter it;
	struct proto_str e;
	size_t n = 0;

	if (!l->p)
		return 0;
	if (l->count % 2)
		return SIZE_MAX;
	proto_list_iter_init(&it, l);
	while (proto_list_next(&it, &e) == 1)
		n += e.len + 1;
	return n;
}

static void kv_fill(const struct proto_list *l, struct strata_kv *kv,
		    char **pos)
{
	struct proto_list_iter it;
	struct proto_str e;
	size_t i = 0;

	if (!l->p)
		return;
	proto_list_iter_init(&it, l);
	while (proto_list_next(&it, &e) == 1) {
		const char *s = copy_str(pos, e.s, e.len);

		if (i % 2)
			kv[i / 2].value = s;
		else
			kv[i / 2].name = s;
		i++;
	}
}

static size_t align_up(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

/* One allocation: the struct, the kv arrays, the chunks, the strings. */
static int stat_build(const struct proto_stat_resp *sr, const uint8_t *body,
		      size_t body_len, struct strata_stat **out)
{
	const struct proto_object_info *in = &sr->info;
	size_t nmeta = in->meta.p ? in->meta.count / 2 : 0;
	size_t ntags = in->tags.p ? in->tags.count / 2 : 0;
	size_t mb = kv_bytes(&in->meta), tb = kv_bytes(&in->tags);
	size_t off_kv, off_chunks, off_str, total, i;
	struct proto_records it;
	struct proto_bytes rec;
	struct strata_stat *st;
	struct strata_kv *kv;
	struct strata_chunk *ch;
	char *pos;
	int rc;

	/* count sizes an allocation: no more chunks than the body holds
	 * records (each has a 2-byte length at least). */
	if (mb == SIZE_MAX || tb == SIZE_MAX || !etag_ok(&in->etag) ||
	    sr->count > body_len / 2)
		return STRATA_EPROTO;
	off_kv = align_up(sizeof(*st), alignof(struct strata_kv));
	off_chunks = align_up(off_kv + (nmeta + ntags) * sizeof(*kv),
			      alignof(struct strata_chunk));
	off_str = off_chunks + (size_t)sr->count * sizeof(*ch);
	total = off_str + mb + tb + in->content_type.len + 1;
	st = calloc(1, total);
	if (!st)
		return -ENOMEM;
	kv = (struct strata_kv *)((char *)st + off_kv);
	ch = (struct strata_chunk *)((char *)st + off_chunks);
	pos = (char *)st + off_str;

	st->size = in->size;
	memcpy(st->etag, in->etag.p, STRATA_ETAG_LEN);
	for (i = 0; i < STRATA_ETAG_LEN; i++)
		snprintf(st->etag_hex + 2 * i, 3, "%02x", st->etag[i]);
	if (sr->count > 1)
		snprintf(st->etag_hex + 2 * STRATA_ETAG_LEN,
			 sizeof(st->etag_hex) - 2 * STRATA_ETAG_LEN, "-%u",
			 sr->count);
	st->version = in->version;
	st->writer = in->writer;
	st->mtime_ms = in->has_mtime ? in->mtime_ms : 0;
	if (in->content_type.s)
		st->content_type = copy_str(&pos, in->content_type.s,
					    in->content_type.len);
	st->meta = kv;
	st->nmeta = nmeta;
	kv_fill(&in->meta, kv, &pos);
	st->tags = kv + nmeta;
	st->ntags = ntags;
	kv_fill(&in->tags, kv + nmeta, &pos);
	st->chunk_size = sr->chunk_size;
	st->chunks = ch;

	proto_records_init(&it, body, body_len);
	while ((rc = proto_records_next(&it, &rec)) == 1) {
		struct proto_chunk_entry e;

		if (st->nchunks == sr->count) {
			rc = STRATA_EPROTO;
			break;
		}
		rc = proto_chunk_entry_decode(rec.p, rec.len, &e);
		if (rc)
			break;
		ch[st->nchunks].tier = e.tier;
		ch[st->nchunks].raw_len = e.raw_len;
		ch[st->nchunks].stored_len = e.stored_len;
		st->nchunks++;
	}
	if (!rc && st->nchunks != sr->count)
		rc = STRATA_EPROTO;
	if (rc) {
		free(st);
		return rc;
	}
	*out = st;
	return 0;
}

struct object_call {
	const char *bucket;
	const char *key;
	struct strata_stat *st;
	struct strata_delete_result *del;
};

static int object_send(struct conn *cn, struct object_call *oc, uint8_t op,
		       struct resp *r)
{
	struct proto_object_req m = {
		.bucket = pstr(oc->bucket),
		.key = pstr(oc->key),
	};
	size_t len;
	int rc;

	rc = proto_object_req_encode(&m, cn->out + PROTO_HEADER_LEN,
				     PROTO_MAX_FIELDS_LEN, &len);
	if (rc)
		return rc;
	return req_call(cn, op, len, r);
}

static int stat_fn(struct conn *cn, void *arg, bool *unsafe)
{
	struct object_call *oc = arg;
	struct proto_stat_resp sr;
	struct resp r;
	uint8_t *body;
	size_t body_len;
	int rc;

	rc = object_send(cn, oc, PROTO_OP_STAT, &r);
	if (rc)
		return rc;
	rc = proto_stat_resp_decode(cn->fields, r.fields_len, &sr);
	if (rc) {
		conn_break(cn);
		return rc;
	}
	/* sr points into cn->fields, which the body reads leave alone. */
	rc = resp_records(cn, &r, &body, &body_len, MAX_RECORDS_BODY);
	if (rc)
		return rc;
	rc = stat_build(&sr, body, body_len, &oc->st);
	free(body);
	return rc;
}

int strata_object_stat(strata_client *c, const char *bucket, const char *key,
		       struct strata_stat **out)
{
	struct object_call oc = { .bucket = bucket, .key = key };
	int rc;

	if (!c || !bucket || !key || !out)
		return -EINVAL;
	rc = key_check(key);
	if (rc)
		return rc;
	rc = client_call(c, stat_fn, &oc);
	if (!rc)
		*out = oc.st;
	return rc;
}

void strata_stat_free(struct strata_stat *st)
{
	free(st);
}

static int delete_fn(struct conn *cn, void *arg, bool *unsafe)
{
	struct object_call *oc = arg;
	struct proto_delete_resp dr;
	struct resp r;
	int rc;

	rc = object_send(cn, oc, PROTO_OP_DELETE, &r);
	if (rc)
		return rc;
	rc = proto_delete_resp_decode(cn->fields, r.fields_len, &dr);
	if (rc) {
		conn_break(cn);
		return rc;
	}
	if (oc->del) {
		oc->del->has_version = dr.has_version;
		oc->del->version = dr.has_version ? dr.version : 0;
		oc->del->writer = dr.has_version ? dr.writer : 0;
	}
	return 0;
}

int strata_object_delete(strata_client *c, const char *bucket,
			 const char *key, struct strata_delete_result *res)
{
	struct object_call oc = { .bucket = bucket, .key = key, .del = res };

	if (!c || !bucket || !key)
		return -EINVAL;
	if (key_check(key))
		return STRATA_EBADKEY;
	return client_call(c, delete_fn, &oc);
}

/* ---- Listing ----------------------------------------------------------- */

struct strata_list {
	strata_client *c;
	char *bucket;
	char *prefix;
	char *delimiter;
	char *start_after;		/* where the next page starts */
	unsigned page_size;
	bool done;			/* no page after the current one */
	bool has_page;
	uint8_t *page;			/* the current page's records */
	size_t page_len;
	struct proto_records recs;
	/* The entry handed out last, its strings NUL-terminated. */
	struct strata_list_entry cur;
	char name[PROTO_MAX_KEY_LEN + 1];
};

struct list_call {
	struct strata_list *it;
	bool truncated;
	char *next;			/* next_start_after, heap */
	uint8_t *body;
	size_t body_len;
};

static int list_fn(struct conn *cn, void *arg, bool *unsafe)
{
	struct list_call *lc = arg;
	struct strata_list *it = lc->it;
	struct proto_list_req m = {
		.bucket = pstr(it->bucket),
		.prefix = pstr(it->prefix),
		.delimiter = pstr(it->delimiter),
		.start_after = pstr(it->start_after),
		.has_limit = true,
		.limit = it->page_size,
	};
	struct proto_list_resp lr;
	struct proto_records recs;
	struct proto_bytes rec;
	struct resp r;
	uint32_t n = 0;
	size_t len;
	int rc;

	rc = proto_list_req_encode(&m, cn->out + PROTO_HEADER_LEN,
				   PROTO_MAX_FIELDS_LEN, &len);
	if (rc)
		return rc;
	rc = req_call(cn, PROTO_OP_LIST, len, &r);
	if (rc)
		return rc;
	rc = proto_list_resp_decode(cn->fields, r.fields_len, &lr);
	if (!rc && lr.truncated && !lr.next_start_after.s)
		rc = STRATA_EPROTO;
	if (rc) {
		conn_break(cn);
		return rc;
	}
	lc->truncated = lr.truncated;
	free(lc->next);
	lc->next = lr.truncated ? strndup(lr.next_start_after.s,
					  lr.next_start_after.len) : NULL;
	if (lr.truncated && !lc->next) {
		conn_break(cn);
		return -ENOMEM;
	}
	free(lc->body);
	rc = resp_records(cn, &r, &lc->body, &lc->body_len, MAX_RECORDS_BODY);
	if (rc)
		return rc;
	proto_records_init(&recs, lc->body, lc->body_len);
	while ((rc = proto_records_next(&recs, &rec)) == 1)
		n++;
	if (!rc && n != lr.count)
		rc = STRATA_EPROTO;
	return rc;
}

int strata_list_new(strata_client *c, const char *bucket,
		    const struct strata_list_opts *opts, strata_list **out)
{
	struct strata_list_opts o = { 0 };
	strata_list *it;

	if (out)
		*out = NULL;
	if (!c || !bucket || !out)
		return -EINVAL;
	if (opts)
		o = *opts;
	if (strlen(bucket) < 3 || strlen(bucket) > PROTO_MAX_BUCKET_LEN)
		return STRATA_EBADBUCKET;
	if (o.page_size > PROTO_MAX_LIST_LIMIT ||
	    (o.delimiter && strlen(o.delimiter) > PROTO_MAX_DELIMITER_LEN) ||
	    (o.prefix && strlen(o.prefix) > PROTO_MAX_KEY_LEN) ||
	    (o.start_after && strlen(o.start_after) > PROTO_MAX_KEY_LEN))
		return -EINVAL;
	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->c = c;
	it->page_size = o.page_size ? o.page_size : LIST_PAGE;
	it->bucket = strdup(bucket);
	it->prefix = o.prefix && *o.prefix ? strdup(o.prefix) : NULL;
	it->delimiter = o.delimiter && *o.delimiter ? strdup(o.delimiter) :
			NULL;
	it->start_after = o.start_after && *o.start_after ?
			  strdup(o.start_after) : NULL;
	if (!it->bucket || (o.prefix && *o.prefix && !it->prefix) ||
	    (o.delimiter && *o.delimiter && !it->delimiter) ||
	    (o.start_after && *o.start_after && !it->start_after)) {
		strata_list_free(it);
		return -ENOMEM;
	}
	*out = it;
	return 0;
}

/* Fill it->cur from one record. */
static int list_entry(strata_list *it, const struct proto_bytes *rec)
{
	struct proto_list_entry e;
	const struct proto_str *s;
	int rc = proto_list_entry_decode(rec->p, rec->len, &e);

	if (rc)
		return rc;
	s = e.key.s ? &e.key : &e.prefix;
	if (!s->s || s->len > PROTO_MAX_KEY_LEN ||
	    (e.key.s && e.etag.p && e.etag.len != STRATA_ETAG_LEN))
		return STRATA_EPROTO;
	memset(&it->cur, 0, sizeof(it->cur));
	memcpy(it->name, s->s, s->len);
	it->name[s->len] = '\0';
	if (e.key.s) {
		it->cur.key = it->name;
		it->cur.size = e.size;
		if (e.etag.p)
			memcpy(it->cur.etag, e.etag.p, STRATA_ETAG_LEN);
		it->cur.version = e.version;
		it->cur.mtime_ms = e.mtime_ms;
	} else {
		it->cur.prefix = it->name;
	}
	return 0;
}

int strata_list_next(strata_list *it, const struct strata_list_entry **e)
{
	struct proto_bytes rec;
	int rc;

	if (!it || !e)
		return -EINVAL;
	for (;;) {
		struct list_call lc = { .it = it };

		if (it->has_page) {
			rc = proto_records_next(&it->recs, &rec);
			if (rc == 1) {
				rc = list_entry(it, &rec);
				if (rc)
					return rc;
				*e = &it->cur;
				return 1;
			}
			if (rc)
				return rc;
			it->has_page = false;
		}
		if (it->done)
			return 0;
		rc = client_call(it->c, list_fn, &lc);
		if (rc) {
			free(lc.body);
			free(lc.next);
			return rc;
		}
		free(it->page);
		it->page = lc.body;
		it->page_len = lc.body_len;
		proto_records_init(&it->recs, it->page, it->page_len);
		it->has_page = true;
		if (lc.truncated) {
			/* A server that says "more" without moving on would
			 * loop us forever. */
			if (it->start_after &&
			    !strcmp(lc.next, it->start_after)) {
				free(lc.next);
				return STRATA_EPROTO;
			}
			free(it->start_after);
			it->start_after = lc.next;
		} else {
			it->done = true;
		}
	}
}

void strata_list_free(strata_list *it)
{
	if (!it)
		return;
	free(it->bucket);
	free(it->prefix);
	free(it->delimiter);
	free(it->start_after);
	free(it->page);
	free(it);
}

/* ---- Batch get --------------------------------------------------------- */

struct batch_call {
	const char *bucket;
	struct proto_list keys;		/* this request's keys */
	size_t first;			/* index of its first key */
	uint32_t n;
	strata_batch_fn fn;
	void *arg;
	uint8_t *body;			/* one frame's body */
};

static int batch_emit(struct batch_call *bc, struct strata_batch_piece *p,
		      bool *unsafe)
{
	*unsafe = true;
	return bc->fn(bc->arg, p);
}

static int batch_fn(struct conn *cn, void *arg, bool *unsafe)
{
	struct batch_call *bc = arg;
	struct proto_keys_req m = { .bucket = pstr(bc->bucket),
				    .keys = bc->keys };
	struct proto_batch_resp br;
	struct proto_batch_reader rd;
	struct strata_batch_piece cur = { 0 };
	struct resp r;
	size_t len;
	int rc;

	rc = proto_keys_req_encode(&m, cn->out + PROTO_HEADER_LEN,
				   PROTO_MAX_FIELDS_LEN, &len);
	if (rc)
		return rc;
	rc = req_call(cn, PROTO_OP_BATCH_GET, len, &r);
	if (rc)
		return rc;
	rc = proto_batch_resp_decode(cn->fields, r.fields_len, &br);
	if (!rc && br.count != bc->n)
		rc = STRATA_EPROTO;
	if (!rc)
		rc = proto_batch_reader_init(&rd, br.count) ? STRATA_EPROTO : 0;
	while (!rc) {
		const uint8_t *p = bc->body;
		struct proto_batch_event ev;

		rc = resp_frame(cn, &r, bc->body, &len);
		if (rc <= 0)
			break;
		while ((rc = proto_batch_next(&rd, &p, &len, &ev)) == 1) {
			if (ev.kind == PROTO_BATCH_ITEM) {
				cur.index = bc->first + ev.item.index;
				cur.status = ev.item.status;
				cur.size = ev.item.size;
				cur.offset = 0;
				cur.data = NULL;
				cur.len = 0;
				cur.last = ev.item.status < 0 ||
					   !ev.item.size;
				rc = cur.last ? batch_emit(bc, &cur, unsafe) :
					0;
			} else {
				cur.data = ev.data.p;
				cur.len = ev.data.len;
				cur.last = cur.offset + cur.len == cur.size;
				rc = batch_emit(bc, &cur, unsafe);
				cur.offset += cur.len;
			}
			if (rc)
				return resp_abandon(cn, &r, rc);
		}
	}
	if (!rc)
		rc = proto_batch_finish(&rd);
	if (rc)
		conn_break(cn);
	return rc;
}

int strata_batch_get(strata_client *c, const char *bucket,
		     const char *const *keys, size_t nkeys, strata_batch_fn fn,
		     void *arg)
{
	struct batch_call bc = { .bucket = bucket, .fn = fn, .arg = arg };
	struct proto_str *elems = NULL;
	struct proto_list *lists = NULL;
	uint8_t *enc = NULL;
	size_t need = 0, i, ngroups = 0, g, start;
	int rc = 0;

	if (!c || !bucket || (!keys && nkeys) || !fn)
		return -EINVAL;
	if (!nkeys)
		return 0;
	/* Cut the keys into requests and encode every list up front, so a
	 * bad key fails the call before any item is fetched. */
	elems = malloc(nkeys * sizeof(*elems));
	lists = malloc(nkeys * sizeof(*lists));
	for (i = 0; elems && i < nkeys; i++) {
		elems[i] = pstr(keys[i]);
		if (!keys[i] || !elems[i].len ||
		    elems[i].len > PROTO_MAX_KEY_LEN) {
			rc = STRATA_EBADKEY;
			goto out;
		}
		need += 2 + elems[i].len;
	}
	enc = malloc(need);
	bc.body = malloc(PROTO_MAX_BODY_LEN);
	if (!elems || !lists || !enc || !bc.body) {
		rc = -ENOMEM;
		goto out;
	}
	for (start = 0, need = 0; start < nkeys; ngroups++) {
		size_t bytes = 0;

		for (i = start; i < nkeys && i - start < PROTO_MAX_BATCH_KEYS &&
		     bytes + 2 + elems[i].len <= BATCH_LIST_MAX; i++)
			bytes += 2 + elems[i].len;
		rc = proto_list_build(enc + need, bytes, elems + start,
				      i - start, &lists[ngroups]);
		if (rc) {
			rc = STRATA_EBADKEY;
			goto out;
		}
		need += bytes;
		start = i;
	}
	for (g = 0, start = 0; g < ngroups && !rc; g++) {
		bc.keys = lists[g];
		bc.first = start;
		bc.n = lists[g].count;
		rc = client_call(c, batch_fn, &bc);
		start += bc.n;
	}
out:
	free(bc.body);
	free(enc);
	free(lists);
	free(elems);
	return rc;
}

/* ---- Access keys (admin) ------------------------------------------------ */

struct key_call {
	uint8_t op;
	bool admin;
	const char *id;			/* KEY_DELETE, KEY_SET, KEY_INFO */
	char *out_id, *out_secret;	/* KEY_CREATE */
	size_t idcap, seccap;
	uint8_t *body;			/* KEY_LIST records */
	size_t body_len;
	uint32_t count;
	const struct strata_key_grant *grant;	/* KEY_CREATE, KEY_SET */
	struct proto_list attrs;	/* the grant's, encoded */
	struct strata_key_info *info;	/* KEY_INFO */
};

/* The grant's attributes as a string list (kc->attrs; its bytes are
 * malloc'd into *buf). */
static int grant_attrs(struct key_call *kc, uint8_t **buf)
{
	const struct strata_key_grant *g = kc->grant;
	struct proto_str *e;
	int rc;

	*buf = NULL;
	if (!g || (!g->nattrs && !(kc->op == PROTO_OP_KEY_SET &&
				   g->set_attrs)))
		return 0;
	if (g->nattrs > PROTO_MAX_KV || (g->nattrs && !g->attrs))
		return -EINVAL;
	e = calloc(2 * g->nattrs + 1, sizeof(*e));
	*buf = malloc(PROTO_MAX_FIELDS_LEN);
	if (!e || !*buf) {
		free(e);
		return -ENOMEM;
	}
	for (size_t i = 0; i < 2 * g->nattrs; i++) {
		if (!g->attrs[i]) {
			free(e);
			return -EINVAL;
		}
		e[i] = pstr(g->attrs[i]);
	}
	rc = proto_list_build(*buf, PROTO_MAX_FIELDS_LEN, e, 2 * g->nattrs,
			      &kc->attrs);
	free(e);
	return rc == -ENOSPC ? -E2BIG : rc;
}

/* A grant's policy as the wire can carry it: at most 32 KiB of UTF-8
 * (a JSON document is UTF-8 text).  Returns 0, -E2BIG,
 * STRATA_EBADPOLICY. */
static int grant_policy_ok(const struct strata_key_grant *g)
{
	size_t n = g && g->policy ? strlen(g->policy) : 0;

	if (n > PROTO_MAX_POLICY_LEN)
		return -E2BIG;
	if (n && !proto_utf8_ok(g->policy, n))
		return STRATA_EBADPOLICY;
	return 0;
}

/* A KEY_INFO response into kc->info (policy and attributes copied). */
static int key_info_take(struct key_call *kc, const struct proto_key_info_resp *m)
{
	struct strata_key_info *ki = kc->info;
	struct proto_list_iter it;
	struct proto_str e;
	size_t i = 0;

	memset(ki, 0, sizeof(*ki));
	if (m->access_key_id.len >= sizeof(ki->id))
		return STRATA_EPROTO;
	memcpy(ki->id, m->access_key_id.s, m->access_key_id.len);
	ki->admin = m->admin;
	ki->ctime_ms = m->ctime_ms;
	if (m->policy.s && m->policy.len &&
	    !(ki->policy = strndup(m->policy.s, m->policy.len)))
		return -ENOMEM;
	if (!m->attrs.p || !m->attrs.count)
		return 0;
	/* Decoded lists of pairs have an even count. */
	ki->attrs = calloc(m->attrs.count, sizeof(*ki->attrs));
	if (!ki->attrs)
		return -ENOMEM;
	ki->nattrs = m->attrs.count / 2;	/* NULLs until copied */
	proto_list_iter_init(&it, &m->attrs);
	while (i < m->attrs.count && proto_list_next(&it, &e) == 1) {
		ki->attrs[i] = strndup(e.s, e.len);
		if (!ki->attrs[i++])
			return -ENOMEM;
	}
	return 0;
}

static int key_fn(struct conn *cn, void *arg, bool *unsafe)
{
	struct key_call *kc = arg;
	uint8_t *fields = cn->out + PROTO_HEADER_LEN;
	struct resp r;
	size_t len = 0;
	int rc = 0;

	(void)unsafe;
	if (kc->op == PROTO_OP_KEY_CREATE) {
		struct proto_key_create_req m = { .has_admin = true,
						  .admin = kc->admin };

		if (kc->grant) {
			m.policy = pstr(kc->grant->policy);
			m.attrs = kc->attrs;
		}
		rc = proto_key_create_req_encode(&m, fields,
						 PROTO_MAX_FIELDS_LEN, &len);
	} else if (kc->op == PROTO_OP_KEY_SET) {
		struct proto_key_set_req m = {
			.access_key_id = pstr(kc->id),
			.policy = pstr(kc->grant->policy),
			.has_attrs = kc->grant->set_attrs,
			.attrs = kc->attrs,
		};
		static const uint8_t none[1];

		if (m.has_attrs && !m.attrs.p)
			m.attrs.p = none;	/* an empty list */
		rc = proto_key_set_req_encode(&m, fields, PROTO_MAX_FIELDS_LEN,
					      &len);
	} else if (kc->op == PROTO_OP_KEY_DELETE ||
		   kc->op == PROTO_OP_KEY_INFO) {
		struct proto_key_req m = { .access_key_id = pstr(kc->id) };

		rc = proto_key_req_encode(&m, fields, PROTO_MAX_FIELDS_LEN,
					  &len);
	}
	if (rc)
		return rc;
	rc = req_call(cn, kc->op, len, &r);
	if (rc)
		return rc;
	if (kc->op == PROTO_OP_KEY_CREATE) {
		struct proto_key_create_resp m;

		rc = proto_key_create_resp_decode(cn->fields, r.fields_len, &m);
		if (!rc && (m.access_key_id.len >= kc->idcap ||
			    m.secret.len >= kc->seccap))
			rc = -ENOBUFS;
		if (!rc) {
			memcpy(kc->out_id, m.access_key_id.s, m.access_key_id.len);
			kc->out_id[m.access_key_id.len] = '\0';
			memcpy(kc->out_secret, m.secret.s, m.secret.len);
			kc->out_secret[m.secret.len] = '\0';
		}
	} else if (kc->op == PROTO_OP_KEY_DELETE ||
		   kc->op == PROTO_OP_KEY_SET) {
		rc = proto_empty_decode(cn->fields, r.fields_len);
	} else if (kc->op == PROTO_OP_KEY_INFO) {
		struct proto_key_info_resp m;

		rc = proto_key_info_resp_decode(cn->fields, r.fields_len, &m);
		if (!rc) {
			strata_key_info_free(kc->info);
			rc = key_info_take(kc, &m);
			if (rc == -ENOMEM) {
				strata_key_info_free(kc->info);
				return rc;
			}
		}
	} else {
		struct proto_key_list_resp m;

		rc = proto_key_list_resp_decode(cn->fields, r.fields_len, &m);
		if (!rc) {
			kc->count = m.count;
			free(kc->body);
			kc->body = NULL;
			return resp_records(cn, &r, &kc->body, &kc->body_len,
					    MAX_RECORDS_BODY);
		}
	}
	if (rc)
		conn_break(cn);
	return rc;
}

int strata_admin_key_create(strata_client *c, bool admin, char *id,
			    size_t idcap, char *secret, size_t seccap)
{
	struct key_call kc = { .op = PROTO_OP_KEY_CREATE, .admin = admin,
			       .out_id = id, .out_secret = secret,
			       .idcap = idcap, .seccap = seccap };

	if (!c || !id || !secret || !idcap || !seccap)
		return -EINVAL;
	return client_call(c, key_fn, &kc);
}

int strata_admin_key_create_ex(strata_client *c, bool admin,
			       const struct strata_key_grant *grant, char *id,
			       size_t idcap, char *secret, size_t seccap)
{
	struct key_call kc = { .op = PROTO_OP_KEY_CREATE, .admin = admin,
			       .out_id = id, .out_secret = secret,
			       .idcap = idcap, .seccap = seccap,
			       .grant = grant };
	uint8_t *buf = NULL;
	int rc;

	if (!c || !id || !secret || !idcap || !seccap)
		return -EINVAL;
	rc = grant_policy_ok(grant);
	if (!rc)
		rc = grant_attrs(&kc, &buf);
	if (!rc)
		rc = client_call(c, key_fn, &kc);
	free(buf);
	return rc;
}

int strata_admin_key_set(strata_client *c, const char *id,
			 const struct strata_key_grant *grant)
{
	struct key_call kc = { .op = PROTO_OP_KEY_SET, .id = id,
			       .grant = grant };
	uint8_t *buf = NULL;
	int rc;

	if (!c || !id || !grant || (!grant->policy && !grant->set_attrs))
		return -EINVAL;
	rc = grant_policy_ok(grant);
	if (!rc)
		rc = grant_attrs(&kc, &buf);
	if (!rc)
		rc = client_call(c, key_fn, &kc);
	free(buf);
	return rc;
}

int strata_admin_key_info(strata_client *c, const char *id,
			  struct strata_key_info *out)
{
	struct key_call kc = { .op = PROTO_OP_KEY_INFO, .id = id,
			       .info = out };
	int rc;

	if (!c || !id || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	rc = client_call(c, key_fn, &kc);
	if (rc)
		strata_key_info_free(out);
	return rc;
}

void strata_key_info_free(struct strata_key_info *ki)
{
	if (!ki)
		return;
	free(ki->policy);
	for (size_t i = 0; ki->attrs && i < 2 * ki->nattrs; i++)
		free(ki->attrs[i]);
	free(ki->attrs);
	memset(ki, 0, sizeof(*ki));
}

int strata_admin_key_delete(strata_client *c, const char *id)
{
	struct key_call kc = { .op = PROTO_OP_KEY_DELETE, .id = id };

	if (!c || !id)
		return -EINVAL;
	return client_call(c, key_fn, &kc);
}

int strata_admin_key_list(strata_client *c, strata_key_fn fn, void *arg)
{
	struct key_call kc = { .op = PROTO_OP_KEY_LIST };
	struct proto_records it;
	struct proto_bytes rec;
	uint32_t n = 0;
	int rc;

	if (!c || !fn)
		return -EINVAL;
	rc = client_call(c, key_fn, &kc);
	if (rc)
		goto out;
	proto_records_init(&it, kc.body, kc.body_len);
	while ((rc = proto_records_next(&it, &rec)) == 1) {
		struct proto_key_entry e;
		char id[PROTO_MAX_ACCESS_KEY_ID_LEN + 1];

		rc = proto_key_entry_decode(rec.p, rec.len, &e);
		if (rc)
			break;
		memcpy(id, e.access_key_id.s, e.access_key_id.len);
		id[e.access_key_id.len] = '\0';
		n++;
		rc = fn(arg, id, e.admin);
		if (rc)
			break;
	}
	if (!rc && n != kc.count)
		rc = STRATA_EPROTO;
out:
	free(kc.body);
	return rc;
}
