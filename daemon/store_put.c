// SPDX-License-Identifier: Apache-2.0
/*
 * store_put: streamed puts (see store_int.h for how the store is split).
 *
 *   begin -> write* -> [chunk: encode (pool or inline) -> dedup lookup ->
 *   append (uring)] -> commit -> joins a group-commit round -> cb
 *
 * Small objects (one chunk up to inline_max) skip the segment: their record
 * rides in the object value, so the put costs one synced write.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "fault.h"
#include "index.h"
#include "keys.h"
#include "log.h"
#include "meta.h"
#include "record.h"
#include "segment.h"
#include "store.h"
#include "store_int.h"
#include "uring.h"
#include "strata/error.h"
#include "banned.h"

/* ---- puts ---- */

struct put_chunk {
	struct store_put *p;
	struct put_chunk *next;		/* pending queue */
	uint8_t *plain;
	size_t len, plaincap;
	uint8_t *rec;
	size_t reclen, reccap;
	uint8_t id[RECORD_ID_LEN];
	uint8_t hash[32];
	struct chunk_loc loc;
	struct segment *seg;		/* pinned until the put ends */
	bool inl;			/* record goes into the index value */
	bool direct;			/* written with O_DIRECT */
	bool counted;			/* plain counts against the budget */
	int status;
	uv_work_t work;
	struct uring_req req;
};

struct store_put {
	struct mutation mut;
	struct store *s;
	struct bucket *b;
	char *key;
	size_t keylen;
	char *ctype;
	size_t ctypelen;
	struct meta_kv *kvs;		/* nmeta user metadata, then ntags */
	uint16_t nmeta, ntags;
	uint8_t *kvbuf;
	uint8_t *cur;
	size_t curlen, curcap;
	struct put_chunk **chunks;
	uint32_t nchunks, capchunks;
	struct put_chunk *pend, **pend_tail;
	unsigned inflight;
	uint64_t size;
	int error;
	bool committing, aborted;
	bool busy, again;		/* put_progress re-entrancy guard */
	struct deferred fin;
	store_commit_cb cb;
	void *arg;
	void (*drain_cb)(void *arg);
	void *drain_arg;
	struct store_object_info info;
	struct xfer_wait xw;		/* waiting for the transfer budget */
};

static void put_progress(struct store_put *p);

static void put_wake(struct xfer_wait *w)
{
	put_progress(container_of(w, struct store_put, xw));
}

static void put_free(struct store_put *p)
{
	struct store *s = p->s;

	for (uint32_t i = 0; i < p->nchunks; i++) {
		struct put_chunk *c = p->chunks[i];

		if (c->seg)
			store__seg_unpin(s, c->seg);
		if (c->counted)
			store__xbuf_free(s, c->plain, c->plaincap);
		else
			store__buf_free(s, c->plain, c->plaincap);
		store__xbuf_free(s, c->rec, c->reccap);
		free(c);
	}
	store__xfer_cancel(s, &p->xw);
	store__bucket_unref(s, p->b);
	free(p->chunks);
	store__buf_free(s, p->cur, p->curcap);
	free(p->key);
	free(p->ctype);
	free(p->kvs);
	free(p->kvbuf);
	free(p);
	s->ops--;
	/* A dropped pin may free a doomed segment; the next GC pass does. */
	store__maybe_closed(s);
}

void store__etag_hex(const uint8_t etag[32], uint32_t nchunks, char out[72])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[etag[i] >> 4];
		out[2 * i + 1] = hex[etag[i] & 15];
	}
	out[64] = 0;
	if (nchunks > 1) {
		char num[12];
		int n = 0;

		/* nchunks <= META_CHUNKS_MAX: at most 7 digits */
		while (nchunks && n < 7) {
			num[n++] = (char)('0' + nchunks % 10);
			nchunks /= 10;
		}
		out[64] = '-';
		for (int i = 0; i < n; i++)
			out[65 + i] = num[n - 1 - i];
		out[65 + n] = 0;
	}
}

void store__fill_info(struct store_object_info *info,
		      const struct meta_object *o)
{
	info->size = o->size;
	info->hlc = o->hlc;
	info->mtime_ms = o->mtime_ms;
	info->writer = o->writer;
	info->nchunks = o->nchunks;
	info->chunk_size = o->chunk_size;
	info->inline_obj = o->flags & META_OBJ_INLINE;
	memcpy(info->etag, o->etag, 32);
	store__etag_hex(o->etag, o->nchunks, info->etag_hex);
}

static int build_put(struct store *s, struct mutation *m,
		     struct index_batch *ib)
{
	struct store_put *p = container_of(m, struct store_put, mut);
	uint8_t okey[META_OBJKEY_MAX], *prevbuf = NULL, *enc = NULL;
	struct meta_object *prev = NULL, o = { 0 };
	struct meta_chunkref *refs = NULL;
	size_t oklen;
	int rc;

	rc = store__bucket_check(ib, p->b);
	if (rc)
		return rc;
	oklen = meta_objkey(p->b->id, p->key, p->keylen, okey);
	rc = store__object_get_batch(ib, okey, oklen, &prevbuf, &prev);
	if (rc)
		goto out;
	refs = malloc((p->nchunks ? p->nchunks : 1) * sizeof(*refs));
	if (!refs) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < p->nchunks; i++) {
		struct put_chunk *c = p->chunks[i];

		if (!c->inl) {
			rc = store__chunk_ref(s, ib, p->b->id, c->id, &c->loc);
			if (rc)
				goto out;
		}
		memcpy(refs[i].id, c->id, RECORD_ID_LEN);
		refs[i].raw_len = (uint32_t)c->len;
	}
	if (prev && !(prev->flags & (META_OBJ_TOMBSTONE | META_OBJ_INLINE))) {
		for (uint32_t i = 0; i < prev->nchunks; i++) {
			rc = store__chunk_unref(s, ib, p->b->id, prev->chunks[i].id);
			if (rc)
				goto out;
		}
	}
	o.size = p->size;
	o.hlc = store__hlc_next(s, prev ? prev->hlc : 0);
	o.writer = s->o.node_id;
	o.mtime_ms = store__clock_ms(s);
	o.chunk_size = s->o.chunk_size;
	memcpy(o.etag, p->info.etag, 32);
	o.ctype = p->ctype;
	o.ctypelen = (uint16_t)p->ctypelen;
	o.nmeta = p->nmeta;
	o.meta = p->kvs;
	o.ntags = p->ntags;
	o.tags = p->kvs ? p->kvs + p->nmeta : NULL;
	o.nchunks = p->nchunks;
	o.chunks = refs;
	if (p->nchunks == 1 && p->chunks[0]->inl) {
		o.flags = META_OBJ_INLINE;
		o.inl = p->chunks[0]->rec;
		o.inlen = (uint32_t)p->chunks[0]->reclen;
	}
	enc = malloc(meta_object_size(&o));
	if (!enc) {
		rc = -ENOMEM;
		goto out;
	}
	index_batch_put(ib, INDEX_CF_OBJECTS, okey, oklen, enc,
			meta_object_encode(&o, enc));
	store__fill_info(&p->info, &o);
out:
	free(enc);
	free(refs);
	meta_object_free(prev);
	free(prevbuf);
	return rc;
}

static void put_done(struct store *s, struct mutation *m)
{
	struct store_put *p = container_of(m, struct store_put, mut);

	if (!m->status) {
		s->st.puts++;
		s->st.bytes_in += p->size;
	}
	p->cb(p->arg, m->status, m->status ? NULL : &p->info);
	put_free(p);
}

/* All chunks are durable-bound: compute the etag and join a round. */
static void put_finish(struct store_put *p)
{
	struct store *s = p->s;
	int rc = p->error;

	if (!rc && p->aborted)
		rc = STRATA_EABORTED;
	if (rc) {
		if (p->cb)
			p->cb(p->arg, rc, NULL);
		put_free(p);
		return;
	}
	/* etag: one chunk -> SHA-256 of the object; several -> SHA-256 of
	 * the chunks' SHA-256s (S3-multipart style, "-N" in hex form). */
	if (p->nchunks == 1) {
		memcpy(p->info.etag, p->chunks[0]->hash, 32);
	} else {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned int olen = 32;

		if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
			EVP_MD_CTX_free(md);
			p->cb(p->arg, -ENOMEM, NULL);
			put_free(p);
			return;
		}
		for (uint32_t i = 0; i < p->nchunks; i++)
			EVP_DigestUpdate(md, p->chunks[i]->hash, 32);
		EVP_DigestFinal_ex(md, p->info.etag, &olen);
		EVP_MD_CTX_free(md);
	}
	p->mut.kind = MUT_PUT;
	p->mut.bid = p->b->id;
	p->mut.build = build_put;
	p->mut.done = put_done;
	store__mutation_queue(s, &p->mut);
}

static void chunk_end(struct put_chunk *c)
{
	struct store_put *p = c->p;

	if (c->counted)
		store__xbuf_free(p->s, c->plain, c->plaincap);
	else
		store__buf_free(p->s, c->plain, c->plaincap);
	c->plain = NULL;
	if (!c->inl || c->status) {
		store__xbuf_free(p->s, c->rec, c->reccap);
		c->rec = NULL;
	}
	if (c->status && !p->error)
		p->error = c->status;
	p->inflight--;
	put_progress(p);
}

/* Large appends start their writeback at once (like RocksDB's
 * bytes_per_sync): the commit's fdatasync then finds little left to write,
 * and the disk works while later chunks are encoded. */
#define WRITEBACK_MIN (1u << 20)

static void writeback_done(struct uring_req *req, ssize_t res)
{
	(void)res;	/* advisory: fdatasync reports real failures */
	free(req);
}

static void start_writeback(struct store *s, struct segment *seg,
			    uint64_t off, size_t len)
{
	struct uring_req *req = calloc(1, sizeof(*req));

	if (!req)
		return;
	req->async = true;
	if (uring_writeback(s->ring, req, seg->fd, off, (uint32_t)len,
			    writeback_done))
		free(req);
}

static void chunk_write_cb(struct uring_req *req, ssize_t res)
{
	struct put_chunk *c = req->data;
	struct store *s = c->p->s;

	segment_write_done(c->seg);
	if (res < 0) {
		log_err("store", "segment %" PRIx64 " write: %s", c->seg->id,
			strerror((int)-res));
		c->status = (int)res;
		/* Append nothing more after a failed write. */
		segment_seal(c->seg);
		if (s->active[c->seg->tier] == c->seg)
			s->active[c->seg->tier] = NULL;
	} else {
		c->seg->dirty = true;
		s->st.chunks_written++;
		if (c->reclen >= WRITEBACK_MIN && !c->direct)
			start_writeback(s, c->seg, c->loc.off, c->reclen);
	}
	chunk_end(c);
}

/* The active segment of a tier with room for len more bytes. */
int store__active_segment(struct store *s, uint8_t tier, size_t len,
			  struct segment **out)
{
	struct segment *seg = s->active[tier];
	int rc;

	if (seg && seg->size + len > s->o.segment_size &&
	    seg->size > SEGMENT_HDR_LEN) {
		segment_seal(seg);
		s->active[tier] = seg = NULL;
	}
	if (!seg) {
		rc = segtab_create(&s->segs, tier, &seg);
		if (rc)
			return rc;
		s->active[tier] = seg;
	}
	*out = seg;
	return 0;
}

/* On the loop, after encoding: reuse an existing copy, or append. */
static void chunk_store(struct put_chunk *c)
{
	struct store_put *p = c->p;
	struct store *s = p->s;
	uint8_t key[META_CHUNKKEY_LEN], *val;
	struct meta_chunk mc;
	struct segment *seg;
	size_t vlen, wlen;
	bool direct;
	int rc;

	if (c->status || p->error || p->aborted || c->inl)
		goto end;
	meta_chunkkey(p->b->id, c->id, key);
	rc = index_get(s->ix, INDEX_CF_CHUNKS, key, sizeof(key), &val, &vlen);
	if (rc == 0) {
		rc = meta_chunk_decode(val, vlen, &mc);
		free(val);
		seg = rc ? NULL : segtab_find(&s->segs, mc.seg);
		if (seg && !seg->doomed && mc.raw_len == c->len &&
		    segment_unlinked(seg)) {
			/* The one copy went with its file: a put that
			 * shares it cannot be made durable. */
			log_err("store", "chunk of bucket %s is in segment "
				"%016" PRIx64 ", removed from its directory "
				"while in use; failing the put", p->b->name,
				seg->id);
			c->status = -EIO;
			goto end;
		}
		if (seg && !seg->doomed && mc.raw_len == c->len) {
			/* Dedup: the pin keeps those bytes until commit. */
			seg->pins++;
			c->seg = seg;
			c->loc = (struct chunk_loc){
				.seg = mc.seg, .off = mc.off,
				.rec_len = mc.rec_len, .raw_len = mc.raw_len,
				.tier = mc.tier,
			};
			s->st.dedup_hits++;
			goto end;
		}
	} else if (rc != -ENOENT) {
		c->status = rc;
		goto end;
	}
	{
		uint8_t tier;

		rc = store__put_tier(s, c->reclen + SEGMENT_DIO_ALIGN, &tier);
		if (!rc)
			rc = store__active_segment(s, tier, c->reclen, &seg);
	}
	if (rc) {
		c->status = rc;
		goto end;
	}
	c->seg = seg;
	seg->pins++;
	/* A large record in an aligned pool buffer goes around the page
	 * cache: padded to the alignment (zeros, never old buffer bytes) at
	 * an aligned offset.  The padding is dead space like any garbage. */
	direct = seg->dfd >= 0 && c->reclen >= WRITEBACK_MIN &&
		 c->reccap == s->bigsize;
	wlen = c->reclen;
	if (direct) {
		segment_grow(&s->segs, seg,
			     ((seg->size + SEGMENT_DIO_ALIGN - 1) &
			      ~(uint64_t)(SEGMENT_DIO_ALIGN - 1)) - seg->size);
		wlen = (c->reclen + SEGMENT_DIO_ALIGN - 1) &
		       ~(size_t)(SEGMENT_DIO_ALIGN - 1);
		memset(c->rec + c->reclen, 0, wlen - c->reclen);
	}
	c->loc = (struct chunk_loc){
		.seg = seg->id, .off = seg->size, .rec_len = (uint32_t)c->reclen,
		.raw_len = (uint32_t)c->len, .tier = seg->tier,
	};
	segment_grow(&s->segs, seg, wlen);
	seg->writes++;
	c->direct = direct;
	c->req.data = c;
	c->req.async = c->reclen > INLINE_CODEC_MAX;
	c->req.inject = fault_hit(s->o.fault, FAULT_SEG_WRITE);
	rc = uring_write(s->ring, &c->req, direct ? seg->dfd : seg->fd, c->rec,
			 wlen, c->loc.off, chunk_write_cb);
	if (rc) {
		segment_write_done(seg);
		c->status = rc;
		goto end;
	}
	return;
end:
	chunk_end(c);
}

static void chunk_encode(struct store *s, struct put_chunk *c,
			 struct record_codec *codec)
{
	const struct record_keys *k = &c->p->b->keys;

	(void)s;
	c->status = record_chunk_id(codec, k, c->plain, c->len, c->hash, c->id);
	if (c->status)
		return;
	c->status = record_encode(codec, k, c->id, c->plain, c->len,
				  s->o.zstd_level, c->rec, &c->reclen);
}

static void chunk_encode_work(uv_work_t *w)
{
	struct put_chunk *c = container_of(w, struct put_chunk, work);
	struct store *s = c->p->s;
	struct record_codec *codec = store__codec_get(s);

	if (!codec) {
		c->status = -ENOMEM;
		return;
	}
	chunk_encode(s, c, codec);
	store__codec_put(s, codec);
}

static void chunk_encode_done(uv_work_t *w, int status)
{
	struct put_chunk *c = container_of(w, struct put_chunk, work);

	if (status && !c->status)
		c->status = status;
	chunk_store(c);
}

static void put_dispatch(struct store_put *p)
{
	struct store *s = p->s;

	while (p->pend && p->inflight < s->o.put_window) {
		struct put_chunk *c = p->pend;
		bool failed = p->error || p->aborted;

		/* Its plaintext and record count from here: wait for room
		 * (small chunks never wait). */
		if (!failed && c->len > XFER_SMALL &&
		    !store__xfer_admit(s, &p->xw, c->plaincap +
				       record_bound(c->len))) {
			store__xfer_wait(s, &p->xw);
			break;
		}
		p->pend = c->next;
		if (!p->pend)
			p->pend_tail = &p->pend;
		p->inflight++;
		if (failed) {
			chunk_end(c);
			continue;
		}
		c->counted = true;
		s->xfer_used += c->plaincap;
		c->rec = store__xbuf_alloc(s, record_bound(c->len), &c->reccap);
		if (!c->rec) {
			c->status = -ENOMEM;
			chunk_end(c);
			continue;
		}
		if (c->len <= INLINE_CODEC_MAX) {
			chunk_encode(s, c, s->loop_codec);
			chunk_store(c);
		} else if (uv_queue_work(s->loop, &c->work, chunk_encode_work,
					 chunk_encode_done)) {
			c->status = -ENOMEM;
			chunk_end(c);
		}
	}
}

/*
 * Move a put along after any change: start pending chunks, then finish or
 * tell the producer it may write again.  Inline chunks complete inside
 * put_dispatch and call back here; the guard turns that recursion into
 * another turn of the loop below.  Finishing may free p, so it is last.
 */
static void put_progress(struct store_put *p)
{
	if (p->busy) {
		p->again = true;
		return;
	}
	p->busy = true;
	do {
		p->again = false;
		put_dispatch(p);
	} while (p->again);
	p->busy = false;
	if ((p->committing || p->aborted) && !p->inflight && !p->pend) {
		put_finish(p);
		return;
	}
	if (p->drain_cb && store_put_writable(p)) {
		void (*cb)(void *) = p->drain_cb;

		p->drain_cb = NULL;
		cb(p->drain_arg);
	}
}

/* Cut the current buffer into a chunk and queue it. */
static int put_emit(struct store_put *p, bool inl)
{
	struct put_chunk *c;

	if (p->nchunks == p->capchunks) {
		uint32_t n = p->capchunks ? p->capchunks * 2 : 16;
		struct put_chunk **v;

		if (n > META_CHUNKS_MAX)
			return -EFBIG;
		v = realloc(p->chunks, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		p->chunks = v;
		p->capchunks = n;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->p = p;
	c->inl = inl;
	c->plain = p->cur;
	c->plaincap = p->curcap;
	c->len = p->curlen;
	p->cur = NULL;
	p->curlen = p->curcap = 0;
	p->chunks[p->nchunks++] = c;
	*p->pend_tail = c;
	p->pend_tail = &c->next;
	put_progress(p);
	return 0;
}

static int copy_kvs(struct store_put *p, const struct store_put_opts *o)
{
	size_t total = 0, n = (size_t)o->nmeta + o->ntags;
	uint8_t *w;

	if (o->nmeta > META_KV_MAX || o->ntags > META_KV_MAX)
		return STRATA_EBADMETA;
	for (size_t i = 0; i < n; i++) {
		const struct meta_kv *kv = i < o->nmeta ? &o->meta[i]
							: &o->tags[i - o->nmeta];

		if (!kv->keylen || kv->keylen > META_KV_KEY_MAX ||
		    kv->vallen > META_KV_VAL_MAX)
			return STRATA_EBADMETA;
		total += (size_t)kv->keylen + kv->vallen;
	}
	if (!n)
		return 0;
	p->kvs = calloc(n, sizeof(*p->kvs));
	p->kvbuf = malloc(total ? total : 1);
	if (!p->kvs || !p->kvbuf)
		return -ENOMEM;
	w = p->kvbuf;
	for (size_t i = 0; i < n; i++) {
		const struct meta_kv *kv = i < o->nmeta ? &o->meta[i]
							: &o->tags[i - o->nmeta];

		memcpy(w, kv->key, kv->keylen);
		p->kvs[i].key = (const char *)w;
		p->kvs[i].keylen = kv->keylen;
		w += kv->keylen;
		memcpy(w, kv->val, kv->vallen);
		p->kvs[i].val = (const char *)w;
		p->kvs[i].vallen = kv->vallen;
		w += kv->vallen;
	}
	p->nmeta = o->nmeta;
	p->ntags = o->ntags;
	return 0;
}

int store_put_begin(struct store *s, const char *bucket, const char *key,
		    size_t keylen, const struct store_put_opts *opts,
		    struct store_put **out)
{
	struct store_put *p;
	int rc;

	if (s->closing)
		return STRATA_ECLOSING;
	rc = meta_check_key(key, keylen);
	if (rc)
		return rc;
	/* Its commit would be refused: refused now, before its bytes take
	 * the room that deletes need on a file system the index shares. */
	rc = index_write_room(s->ix);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->s = s;
	p->pend_tail = &p->pend;
	p->xw.wake = put_wake;
	s->ops++;
	rc = store__bucket_get(s, bucket, &p->b);
	if (rc)
		goto fail;
	p->key = malloc(keylen + 1);
	if (!p->key) {
		rc = -ENOMEM;
		goto fail;
	}
	memcpy(p->key, key, keylen);
	p->key[keylen] = 0;
	p->keylen = keylen;
	if (opts && opts->ctype) {
		p->ctypelen = strlen(opts->ctype);
		if (p->ctypelen > META_CTYPE_MAX) {
			rc = STRATA_EBADMETA;
			goto fail;
		}
		p->ctype = strdup(opts->ctype);
		if (!p->ctype) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	if (opts) {
		rc = copy_kvs(p, opts);
		if (rc)
			goto fail;
	}
	*out = p;
	return 0;
fail:
	put_free(p);
	return rc;
}

int store_put_write(struct store_put *p, const void *buf, size_t len)
{
	const uint8_t *src = buf;
	size_t csz = p->s->o.chunk_size;

	if (p->error)
		return p->error;
	while (len) {
		size_t n;

		n = csz - p->curlen;
		if (n > len)
			n = len;
		if (p->curlen + n > p->curcap) {
			/* Grow geometrically; a small object never pays for a
			 * whole chunk buffer, a streamed one goes big early. */
			size_t cap = p->curcap * 2, ncap;
			uint8_t *nb;

			if (cap < (p->curlen + n) * 4)
				cap = (p->curlen + n) * 4;
			if (cap < 16384)
				cap = 16384;
			if (cap > csz)
				cap = csz;
			nb = store__buf_alloc(p->s, cap, &ncap);
			if (!nb)
				return p->error = -ENOMEM;
			if (p->curlen)
				memcpy(nb, p->cur, p->curlen);
			store__buf_free(p->s, p->cur, p->curcap);
			p->cur = nb;
			p->curcap = ncap;
		}
		memcpy(p->cur + p->curlen, src, n);
		p->curlen += n;
		p->size += n;
		src += n;
		len -= n;
		if (p->curlen == csz) {
			int rc = put_emit(p, false);
			if (rc)
				return p->error = rc;
		}
	}
	return 0;
}

int store_put_writable(const struct store_put *p)
{
	return !p->pend && p->inflight < p->s->o.put_window;
}

void store_put_on_drain(struct store_put *p, void (*cb)(void *arg), void *arg)
{
	p->drain_cb = cb;
	p->drain_arg = arg;
}

static void put_finish_deferred(void *arg)
{
	put_finish(arg);
}

void store_put_commit(struct store_put *p, store_commit_cb cb, void *arg)
{
	p->cb = cb;
	p->arg = arg;
	p->drain_cb = NULL;
	if (p->curlen && !p->error) {
		/* A small object is one chunk whose record rides in the index
		 * value: one synced write (the WAL) instead of two. */
		bool inl = !p->nchunks &&
			   p->curlen <= (size_t)p->s->o.inline_max;
		int rc = put_emit(p, inl);

		if (rc)
			p->error = rc;
	}
	/* Set only now, so that put_emit's inline work cannot finish the put
	 * (and call cb) inside this call. */
	p->committing = true;
	if (!p->inflight && !p->pend)
		store__defer(p->s, &p->fin, put_finish_deferred, p);
	/* else: the last chunk to complete finishes it. */
}

void store_put_abort(struct store_put *p)
{
	p->aborted = true;
	p->cb = NULL;
	p->drain_cb = NULL;
	if (!p->inflight && !p->pend)
		put_free(p);
	else if (!p->inflight)
		put_progress(p);	/* drops chunks waiting for room */
	/* else: the last chunk to finish frees it (put_finish). */
}
