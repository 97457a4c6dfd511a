// SPDX-License-Identifier: Apache-2.0
/*
 * libstrata against a fake stratad: a thread running an OpenSSL TLS 1.3
 * server on 127.0.0.1 (port 0), with a CA and server certificate made in
 * process, speaking enough of PROTOCOL.md through proto/ (HELLO, AUTH with
 * the HMAC checked, buckets, PUT with early refusal and CANCEL, GET with
 * ranges and split frames, STAT, DELETE, LIST pages, BATCH_GET in reverse
 * order, errors mid-stream).  Knobs make it drop requests, close idle
 * connections and stall, for the pool's retry and timeout paths.
 *
 * Objects live in memory; each connection is served by its own thread.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "proto.h"
#include "strata/strata.h"
#include "args.h"
#include "tarcount.h"
#include "testutil.h"
#include "banned.h"

#define AK "AKTEST"
#define SK "s3cr3t-key"
#define MAX_OBJS 4096
#define MAX_CONNS 64
#define FAKE_CHUNK (64u * 1024)

struct obj {
	char bucket[PROTO_MAX_BUCKET_LEN + 1];
	char *key;
	uint8_t *data;
	size_t len;
	char *ctype;
	uint8_t *meta;		/* encoded list, as sent */
	size_t meta_len;
	uint32_t meta_count;
	uint8_t etag[32];
	uint64_t version;
};

struct fake {
	SSL_CTX *ctx;
	int lfd;
	uint16_t port;
	pthread_t accept_thr;
	atomic_bool stop;

	pthread_mutex_t lock;
	char buckets[64][PROTO_MAX_BUCKET_LEN + 1];
	int nbuckets;
	struct obj objs[MAX_OBJS];
	int nobjs;
	uint64_t clock;
	pthread_t conn_thr[MAX_CONNS];
	int nconn_thr;

	/* Knobs, set by tests before the client acts. */
	atomic_int drop_next;		/* close on the next N requests */
	atomic_bool close_idle;		/* close after every response */
	atomic_bool stall;		/* never answer object requests */
	atomic_bool stall_tls;		/* new connections: no TLS handshake
					 * while set */
	unsigned get_frame;		/* GET body bytes per frame */
	unsigned page_cap;		/* entries per LIST/BUCKET_LIST page */
	unsigned batch_frame;		/* BATCH_GET body bytes per frame */
	atomic_uint get_delay_ms;	/* each GET waits this long first */
	atomic_uint hint_delay_ms;	/* each HINT too (then EOPNOTSUPP) */
	atomic_bool goaway_next;	/* GOAWAY once, before the next GET's
					 * answer (and answer it still) */
	atomic_int evil;		/* answer the next object request with
					 * this kind of nonsense (enum evil) */

	/* What happened. */
	atomic_int accepted;
	atomic_int live;
	atomic_int max_live;
	atomic_int cancels;
	atomic_int requests;
	atomic_int gets_live, gets_max;	/* GETs being answered at once */
	atomic_int gets_done;
	atomic_int gets_max_first;	/* gets_max when the first was done */
};

static struct fake *F;
static char *tmpdir;
static char ca_path[512];
static char other_ca_path[512];
static strata_client *C;

/* ---- Certificates ------------------------------------------------------ */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
		       EVP_PKEY *issuer_key, long serial)
{
	X509 *x = X509_new();
	X509_NAME *n;

	ck_assert_ptr_nonnull(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	if (!issuer) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(x, x, NID_subject_key_identifier, "hash");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
		add_ext(x, issuer, NID_subject_alt_name,
			"DNS:localhost,IP:127.0.0.1");
		add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
	}
	ck_assert_int_gt(X509_sign(x, issuer_key ? issuer_key : key,
				   EVP_sha256()), 0);
	return x;
}

static void write_pem(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_X509(f, x), 1);
	fclose(f);
}

/* A CA (written to ca_path), a server certificate it signed (loaded into
 * ctx), and a second, unrelated CA (other_ca_path). */
static void make_pki(SSL_CTX *ctx)
{
	EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *srv_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *other_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *ca, *srv, *other;

	ck_assert_ptr_nonnull(ca_key);
	ck_assert_ptr_nonnull(srv_key);
	ck_assert_ptr_nonnull(other_key);
	ca = make_cert(ca_key, "strata test CA", NULL, NULL, 1);
	srv = make_cert(srv_key, "localhost", ca, ca_key, 2);
	other = make_cert(other_key, "another CA", NULL, NULL, 3);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
	snprintf(other_ca_path, sizeof(other_ca_path), "%s/other.pem",
		 tmpdir);
	write_pem(ca_path, ca);
	write_pem(other_ca_path, other);
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, srv), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, srv_key), 1);
	X509_free(ca);
	X509_free(srv);
	X509_free(other);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(other_key);
}

/* ---- Fake server: I/O --------------------------------------------------- */

struct sconn {
	struct fake *f;
	SSL *ssl;
	int fd;
	bool hello, authed;
	uint8_t nonce[PROTO_NONCE_LEN];
	uint64_t discard_id;	/* a refused PUT whose frames we skip */
	uint8_t fields[PROTO_MAX_FIELDS_LEN];
	uint8_t *body;		/* PROTO_MAX_BODY_LEN */
};

static int s_read(struct sconn *s, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		size_t n;

		if (SSL_read_ex(s->ssl, p, len, &n) != 1)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static int s_frame(struct sconn *s, struct proto_header *h)
{
	uint8_t hb[PROTO_HEADER_LEN];

	if (s_read(s, hb, sizeof(hb)) ||
	    proto_header_decode(hb, sizeof(hb), h) != 0 ||
	    s_read(s, s->fields, h->fields_len) ||
	    s_read(s, s->body, h->body_len))
		return -1;
	return 0;
}

static int s_send(struct sconn *s, uint8_t op, uint16_t flags, uint64_t id,
		  const void *fields, size_t flen, const void *body,
		  size_t blen)
{
	struct proto_header h = {
		.opcode = op, .flags = flags | PROTO_F_RESPONSE, .id = id,
		.fields_len = (uint32_t)flen, .body_len = (uint32_t)blen,
	};
	uint8_t *buf = malloc(PROTO_HEADER_LEN + flen + blen);
	size_t n;
	int rc;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(proto_header_encode(&h, buf), 0);
	if (flen)
		memcpy(buf + PROTO_HEADER_LEN, fields, flen);
	if (blen)
		memcpy(buf + PROTO_HEADER_LEN + flen, body, blen);
	rc = SSL_write_ex(s->ssl, buf, PROTO_HEADER_LEN + flen + blen, &n) ==
	     1 ? 0 : -1;
	free(buf);
	return rc;
}

static int s_error(struct sconn *s, uint8_t op, uint64_t id, int code,
		   bool cont)
{
	struct proto_error e = { .code = code, .message = { "fake", 4 } };
	uint8_t buf[256];
	size_t len;

	ck_assert_int_eq(proto_error_encode(&e, buf, sizeof(buf), &len), 0);
	return s_send(s, op, PROTO_F_END | PROTO_F_ERROR |
		      (cont ? PROTO_F_CONT : 0), id, buf, len, NULL, 0);
}

/* ---- Fake server: store ------------------------------------------------ */

static bool has_bucket(struct fake *f, struct proto_str b)
{
	for (int i = 0; i < f->nbuckets; i++)
		if (strlen(f->buckets[i]) == b.len &&
		    !memcmp(f->buckets[i], b.s, b.len))
			return true;
	return false;
}

static struct obj *find_obj(struct fake *f, struct proto_str b,
			    struct proto_str k)
{
	for (int i = 0; i < f->nobjs; i++) {
		struct obj *o = &f->objs[i];

		if (strlen(o->bucket) == b.len && !memcmp(o->bucket, b.s, b.len) &&
		    strlen(o->key) == k.len && !memcmp(o->key, k.s, k.len))
			return o;
	}
	return NULL;
}

static void obj_clear(struct obj *o)
{
	free(o->key);
	free(o->data);
	free(o->ctype);
	free(o->meta);
}

static int cmp_obj(const void *a, const void *b)
{
	const struct obj *x = a, *y = b;
	int c = strcmp(x->bucket, y->bucket);

	return c ? c : strcmp(x->key, y->key);
}

/* The etag the engine computes: SHA-256 of one chunk, or of the chunks'
 * SHA-256s. */
static void fake_etag(const uint8_t *d, size_t len, uint8_t out[32])
{
	size_t n = len <= FAKE_CHUNK ? 1 : (len + FAKE_CHUNK - 1) / FAKE_CHUNK;

	if (n == 1) {
		SHA256(d, len, out);
	} else {
		uint8_t *h = malloc(32 * n);

		for (size_t i = 0; i < n; i++) {
			size_t l = len - i * FAKE_CHUNK;

			SHA256(d + i * FAKE_CHUNK, l < FAKE_CHUNK ? l :
			       FAKE_CHUNK, h + 32 * i);
		}
		SHA256(h, 32 * n, out);
		free(h);
	}
}

/* ---- Fake server: requests --------------------------------------------- */

static void fill_info(const struct obj *o, struct proto_object_info *in)
{
	memset(in, 0, sizeof(*in));
	in->size = o->len;
	if (o->ctype)
		in->content_type = (struct proto_str){ o->ctype,
						       strlen(o->ctype) };
	if (o->meta)
		in->meta = (struct proto_list){ o->meta, o->meta_len,
						o->meta_count };
	in->etag = (struct proto_bytes){ o->etag, 32 };
	in->version = o->version;
	in->writer = 7;
	in->has_mtime = true;
	in->mtime_ms = 1700000000000ull;
}

static int do_put(struct sconn *s, const struct proto_header *h)
{
	struct fake *f = s->f;
	struct proto_put_req m;
	struct proto_put_resp pr;
	struct obj o = { 0 };
	size_t cap = 0, len;
	struct proto_header ch;
	uint8_t out[256];
	int rc = proto_put_req_decode(s->fields, h->fields_len, &m);

	if (rc)
		return s_error(s, h->opcode, h->id, rc, false);
	pthread_mutex_lock(&f->lock);
	rc = has_bucket(f, m.bucket) ? 0 : STRATA_ENOBUCKET;
	pthread_mutex_unlock(&f->lock);
	if (rc) {
		/* Early refusal: the client CANCELs; skip its frames. */
		if (!(h->flags & PROTO_F_END))
			s->discard_id = h->id;
		return s_error(s, h->opcode, h->id, rc, false);
	}
	memcpy(o.bucket, m.bucket.s, m.bucket.len);
	o.key = strndup(m.key.s, m.key.len);
	if (m.content_type.s)
		o.ctype = strndup(m.content_type.s, m.content_type.len);
	if (m.meta.p) {
		o.meta = malloc(m.meta.len);
		memcpy(o.meta, m.meta.p, m.meta.len);
		o.meta_len = m.meta.len;
		o.meta_count = m.meta.count;
	}
	/* m points into s->fields, which the next frames overwrite. */
	bool has_size = m.has_size;
	uint64_t want = m.size;
	struct proto_header cur = *h;

	for (;;) {
		if (!o.data || o.len + cur.body_len > cap) {
			cap = (o.len + cur.body_len) * 2 + 1;
			o.data = realloc(o.data, cap);
		}
		memcpy(o.data + o.len, s->body, cur.body_len);
		o.len += cur.body_len;
		if (cur.flags & PROTO_F_END)
			break;
		if (s_frame(s, &ch))
			goto drop;
		if (ch.opcode == PROTO_OP_CANCEL && ch.id == h->id) {
			atomic_fetch_add(&f->cancels, 1);
			obj_clear(&o);
			return s_error(s, h->opcode, h->id, STRATA_EABORTED,
				       false);
		}
		ck_assert(ch.flags & PROTO_F_CONT);
		ck_assert_uint_eq(ch.id, h->id);
		cur = ch;
	}
	if (has_size && want != o.len) {
		obj_clear(&o);
		return s_error(s, h->opcode, h->id, STRATA_EPROTO, false);
	}
	fake_etag(o.data, o.len, o.etag);
	pthread_mutex_lock(&f->lock);
	o.version = ++f->clock;
	struct obj *old = find_obj(f, (struct proto_str){ o.bucket,
			strlen(o.bucket) }, (struct proto_str){ o.key,
			strlen(o.key) });
	if (old) {
		obj_clear(old);
		*old = o;
	} else {
		ck_assert_int_lt(f->nobjs, MAX_OBJS);
		f->objs[f->nobjs++] = o;
	}
	pr.size = o.len;
	pr.etag = (struct proto_bytes){ o.etag, 32 };
	pr.version = o.version;
	pr.writer = 7;
	pthread_mutex_unlock(&f->lock);
	ck_assert_int_eq(proto_put_resp_encode(&pr, out, sizeof(out), &len), 0);
	return s_send(s, h->opcode, PROTO_F_END, h->id, out, len, NULL, 0);
drop:
	obj_clear(&o);
	return -1;
}

static int do_get(struct sconn *s, const struct proto_header *h)
{
	struct fake *f = s->f;
	struct proto_get_req m;
	struct proto_get_resp gr;
	struct obj *o;
	uint8_t *copy = NULL, out[4096];
	uint64_t off, len;
	size_t flen;
	bool corrupt;
	int rc = proto_get_req_decode(s->fields, h->fields_len, &m);

	if (rc)
		return s_error(s, h->opcode, h->id, rc, false);
	pthread_mutex_lock(&f->lock);
	o = find_obj(f, m.bucket, m.key);
	rc = !has_bucket(f, m.bucket) ? STRATA_ENOBUCKET :
	     !o ? STRATA_ENOOBJECT : 0;
	if (!rc) {
		off = m.has_offset ? m.offset : 0;
		if (off > o->len)
			rc = STRATA_ERANGE;
	}
	if (rc) {
		pthread_mutex_unlock(&f->lock);
		return s_error(s, h->opcode, h->id, rc, false);
	}
	len = o->len - off;
	if (m.has_length && m.length < len)
		len = m.length;
	corrupt = !strcmp(o->key, "corrupt");
	{
		int live = atomic_fetch_add(&f->gets_live, 1) + 1;
		int max = atomic_load(&f->gets_max);

		while (live > max &&
		       !atomic_compare_exchange_weak(&f->gets_max, &max, live))
			;
	}
	fill_info(o, &gr.info);
	gr.offset = off;
	gr.length = len;
	/* Encode under the lock: the info points into the object. */
	ck_assert_int_eq(proto_get_resp_encode(&gr, out, sizeof(out), &flen),
			 0);
	copy = malloc(len + 1);
	if (len)
		memcpy(copy, o->data + off, len);
	pthread_mutex_unlock(&f->lock);
	if (atomic_load(&f->get_delay_ms))
		usleep(atomic_load(&f->get_delay_ms) * 1000u);

	/* The first frame: fields only; then the body in get_frame pieces. */
	rc = s_send(s, h->opcode, len ? 0 : PROTO_F_END, h->id, out, flen,
		    NULL, 0);
	for (uint64_t pos = 0; !rc && pos < len;) {
		size_t n = len - pos < f->get_frame ? len - pos : f->get_frame;

		if (corrupt && pos + n > len / 2) {
			rc = s_error(s, h->opcode, h->id, STRATA_ECORRUPT,
				     true);
			break;
		}
		rc = s_send(s, h->opcode, PROTO_F_CONT |
			    (pos + n == len ? PROTO_F_END : 0), h->id, NULL, 0,
			    copy + pos, n);
		pos += n;
	}
	free(copy);
	/* Done once the last byte is sent: the client cannot have it all
	 * before this. */
	if (atomic_fetch_add(&f->gets_done, 1) == 0)
		atomic_store(&f->gets_max_first, atomic_load(&f->gets_max));
	atomic_fetch_sub(&f->gets_live, 1);
	return rc;
}

static int do_stat(struct sconn *s, const struct proto_header *h)
{
	struct fake *f = s->f;
	struct proto_object_req m;
	struct proto_stat_resp sr;
	struct obj *o;
	uint8_t out[4096], *body;
	size_t flen, blen = 0;
	uint32_t n;
	int rc = proto_object_req_decode(s->fields, h->fields_len, &m);

	if (rc)
		return s_error(s, h->opcode, h->id, rc, false);
	pthread_mutex_lock(&f->lock);
	o = find_obj(f, m.bucket, m.key);
	if (!o) {
		pthread_mutex_unlock(&f->lock);
		return s_error(s, h->opcode, h->id, STRATA_ENOOBJECT, false);
	}
	fill_info(o, &sr.info);
	n = o->len <= FAKE_CHUNK ? 1 : (uint32_t)((o->len + FAKE_CHUNK - 1) /
						  FAKE_CHUNK);
	sr.count = n;
	sr.chunk_size = FAKE_CHUNK;
	ck_assert_int_eq(proto_stat_resp_encode(&sr, out, sizeof(out), &flen),
			 0);
	body = malloc(n * 64);
	for (uint32_t i = 0; i < n; i++) {
		size_t l = o->len - (size_t)i * FAKE_CHUNK, rl;
		struct proto_chunk_entry e = {
			.tier = (uint8_t)(i % 2),
			.raw_len = (uint32_t)(l < FAKE_CHUNK ? l : FAKE_CHUNK),
		};

		e.stored_len = e.raw_len / 2 + 40;
		ck_assert_int_eq(proto_chunk_entry_encode(&e, body + blen, 64,
							  &rl), 0);
		blen += rl;
	}
	pthread_mutex_unlock(&f->lock);
	rc = s_send(s, h->opcode, PROTO_F_END, h->id, out, flen, body, blen);
	free(body);
	return rc;
}

static int do_delete(struct sconn *s, const struct proto_header *h)
{
	struct fake *f = s->f;
	struct proto_object_req m;
	struct proto_delete_resp dr = { .has_version = true, .writer = 7 };
	struct obj *o;
	uint8_t out[64];
	size_t flen;
	int rc = proto_object_req_decode(s->fields, h->fields_len, &m);

	if (rc)
		return s_error(s, h->opcode, h->id, rc, false);
	pthread_mutex_lock(&f->lock);
	o = find_obj(f, m.bucket, m.key);
	if (o) {
		obj_clear(o);
		*o = f->objs[--f->nobjs];
		dr.version = ++f->clock;
	}
	pthread_mutex_unlock(&f->lock);
	if (!o)
		return s_error(s, h->opcode, h->id, STRATA_ENOOBJECT, false);
	ck_assert_int_eq(proto_delete_resp_encode(&dr, out, sizeof(out),
						  &flen), 0);
	return s_send(s, h->opcode, PROTO_F_END, h->id, out, flen, NULL, 0);
}

static int do_bucket(struct sconn *s, const struct proto_header *h)
{
	struct fake *f = s->f;
	struct proto_bucket_req m;
	int rc = proto_bucket_req_decode(s->fields, h->fields_len, &m);

	if (rc)
		return s_error(s, h->opcode, h->id, rc, false);
	pthread_mutex_lock(&f->lock);
	if (h->opcode == PROTO_OP_BUCKET_CREATE) {
		if (has_bucket(f, m.bucket)) {
			rc = STRATA_EBUCKETEXISTS;
		} else {
			memcpy(f->buckets[f->nbuckets], m.bucket.s,
			       m.bucket.len);
			f->buckets[f->nbuckets++][m.bucket.len] = '\0';
		}
	} else if (!has_bucket(f, m.bucket)) {
		rc = STRATA_ENOBUCKET;
	} else {
		for (int i = 0; i < f->nobjs; i++)
			if (strlen(f->objs[i].bucket) == m.bucket.len &&
			    !memcmp(f->objs[i].bucket, m.bucket.s, m.bucket.len))
				rc = STRATA_EBUCKETNOTEMPTY;
		for (int i = 0; !rc && i < f->nbuckets; i++)
			if (strlen(f->buckets[i]) == m.bucket.len &&
			    !memcmp(f->buckets[i], m.bucket.s, m.bucket.len)) {
				memcpy(f->buckets[i], f->buckets[--f->nbuckets],
				       sizeof(f->buckets[i]));
				break;
			}
	}
	pthread_mutex_unlock(&f->lock);
	if (rc)
		return s_error(s, h->opcode, h->id, rc, false);
	return s_send(s, h->opcode, PROTO_F_END, h->id, NULL, 0, NULL, 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int do_bucket_list(struct sconn *s, const struct proto_header *h)
{
	struct fake *f = s->f;
	struct proto_bucket_list_req m;
	struct proto_bucket_list_resp lr = { 0 };
	char names[64][PROTO_MAX_BUCKET_LEN + 1];
	uint8_t out[64], body[8192];
	size_t flen, blen = 0, rl;
	unsigned limit;
	int n, rc = proto_bucket_list_req_decode(s->fields, h->fields_len, &m);

	if (rc)
		return s_error(s, h->opcode, h->id, rc, false);
	limit = m.has_limit ? m.limit : 1000;
	if (limit > f->page_cap)
		limit = f->page_cap;
	pthread_mutex_lock(&f->lock);
	n = f->nbuckets;
	memcpy(names, f->buckets, sizeof(names));
	pthread_mutex_unlock(&f->lock);
	qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
	for (int i = 0; i < n; i++) {
		struct proto_bucket_entry e = {
			.bucket = { names[i], strlen(names[i]) },
			.ctime_ms = 1000 + (uint64_t)i,
		};

		if (m.start_after.s) {
			char *sa = strndup(m.start_after.s, m.start_after.len);
			bool skip = strcmp(names[i], sa) <= 0;

			free(sa);
			if (skip)
				continue;
		}
		if (lr.count == limit) {
			lr.truncated = true;
			break;
		}
		ck_assert_int_eq(proto_bucket_entry_encode(&e, body + blen,
				 sizeof(body) - blen, &rl), 0);
		blen += rl;
		lr.count++;
	}
	ck_assert_int_eq(proto_bucket_list_resp_encode(&lr, out, sizeof(out),
						       &flen), 0);
	return s_send(s, h->opcode, PROTO_F_END, h->id, out, flen, body, blen);
}

static int do_list(struct sconn *s, const struct proto_header *h)
{
	struct fake *f = s->f;
	struct proto_list_req m;
	struct proto_list_resp lr = { 0 };
	char *last = NULL, *sa = NULL, *pfx = NULL, *delim = NULL;
	uint8_t out[4096], *body = malloc(PROTO_MAX_BODY_LEN);
	size_t flen, blen = 0, rl;
	unsigned limit;
	int rc = proto_list_req_decode(s->fields, h->fields_len, &m);

	if (rc) {
		free(body);
		return s_error(s, h->opcode, h->id, rc, false);
	}
	limit = m.has_limit ? m.limit : 1000;
	if (limit > f->page_cap)
		limit = f->page_cap;
	if (m.start_after.s)
		sa = strndup(m.start_after.s, m.start_after.len);
	pfx = strndup(m.prefix.s ? m.prefix.s : "", m.prefix.len);
	if (m.delimiter.s)
		delim = strndup(m.delimiter.s, m.delimiter.len);
	pthread_mutex_lock(&f->lock);
	qsort(f->objs, (size_t)f->nobjs, sizeof(f->objs[0]), cmp_obj);
	for (int i = 0; i < f->nobjs; i++) {
		struct obj *o = &f->objs[i];
		struct proto_list_entry e = { 0 };
		char *d, *cp = NULL;

		if (strlen(o->bucket) != m.bucket.len ||
		    memcmp(o->bucket, m.bucket.s, m.bucket.len) ||
		    strncmp(o->key, pfx, strlen(pfx)))
			continue;
		if (sa && strcmp(o->key, sa) <= 0)
			continue;
		if (delim && (d = strstr(o->key + strlen(pfx), delim))) {
			cp = strndup(o->key, (size_t)(d - o->key) +
				     strlen(delim));
			if ((last && !strcmp(cp, last)) ||
			    (sa && strcmp(cp, sa) <= 0)) {
				free(cp);
				continue;
			}
		}
		if (lr.count == limit) {
			lr.truncated = true;
			free(cp);
			break;
		}
		if (cp) {
			e.prefix = (struct proto_str){ cp, strlen(cp) };
		} else {
			e.key = (struct proto_str){ o->key, strlen(o->key) };
			e.size = o->len;
			e.etag = (struct proto_bytes){ o->etag, 32 };
			e.version = o->version;
			e.mtime_ms = 1700000000000ull;
		}
		ck_assert_int_eq(proto_list_entry_encode(&e, body + blen,
				 PROTO_MAX_BODY_LEN - blen, &rl), 0);
		blen += rl;
		lr.count++;
		free(last);
		last = cp ? cp : strdup(o->key);
	}
	pthread_mutex_unlock(&f->lock);
	if (lr.truncated)
		lr.next_start_after = (struct proto_str){ last, strlen(last) };
	ck_assert_int_eq(proto_list_resp_encode(&lr, out, sizeof(out), &flen),
			 0);
	rc = s_send(s, h->opcode, PROTO_F_END, h->id, out, flen, body, blen);
	free(body);
	free(last);
	free(sa);
	free(pfx);
	free(delim);
	return rc;
}

/* Items in reverse key order, packed into batch_frame-byte frames; an
 * item's data may span frames, a sub-header never does. */
static int do_batch(struct sconn *s, const struct proto_header *h)
{
	struct fake *f = s->f;
	struct proto_keys_req m;
	struct proto_batch_resp br;
	struct proto_list_iter it;
	struct proto_str k, keys[PROTO_MAX_BATCH_KEYS];
	uint8_t out[64], *frame = malloc(f->batch_frame);
	size_t flen, fill = 0;
	uint32_t n = 0;
	int rc = proto_keys_req_decode(s->fields, h->fields_len, &m);

	if (rc) {
		free(frame);
		return s_error(s, h->opcode, h->id, rc, false);
	}
	pthread_mutex_lock(&f->lock);
	if (!has_bucket(f, m.bucket)) {
		pthread_mutex_unlock(&f->lock);
		free(frame);
		return s_error(s, h->opcode, h->id, STRATA_ENOBUCKET, false);
	}
	proto_list_iter_init(&it, &m.keys);
	while (proto_list_next(&it, &k) == 1)
		keys[n++] = k;
	br.count = n;
	ck_assert_int_eq(proto_batch_resp_encode(&br, out, sizeof(out), &flen),
			 0);
	rc = s_send(s, h->opcode, 0, h->id, out, flen, NULL, 0);
	for (uint32_t i = n; !rc && i-- > 0;) {
		struct obj *o = find_obj(f, m.bucket, keys[i]);
		struct proto_batch_item item = {
			.index = i,
			.status = o ? 0 : STRATA_ENOOBJECT,
			.size = o ? o->len : 0,
		};
		size_t pos = 0;

		if (f->batch_frame - fill < PROTO_BATCH_ITEM_LEN) {
			rc = s_send(s, h->opcode, PROTO_F_CONT, h->id, NULL, 0,
				    frame, fill);
			fill = 0;
		}
		ck_assert_int_eq(proto_batch_item_encode(&item, frame + fill),
				 0);
		fill += PROTO_BATCH_ITEM_LEN;
		while (!rc && o && pos < o->len) {
			size_t room = f->batch_frame - fill;
			size_t c = o->len - pos < room ? o->len - pos : room;

			memcpy(frame + fill, o->data + pos, c);
			fill += c;
			pos += c;
			if (fill == f->batch_frame) {
				rc = s_send(s, h->opcode, PROTO_F_CONT, h->id,
					    NULL, 0, frame, fill);
				fill = 0;
			}
		}
	}
	pthread_mutex_unlock(&f->lock);
	if (!rc)
		rc = s_send(s, h->opcode, PROTO_F_CONT | PROTO_F_END, h->id,
			    NULL, 0, frame, fill);
	free(frame);
	return rc;
}

/* What a hostile or broken server may answer instead of the truth. */
enum evil {
	EVIL_NONE,
	EVIL_WRONG_ID,		/* an answer to another request */
	EVIL_WRONG_OP,		/* an answer to another opcode */
	EVIL_GARBAGE,		/* bytes that are no frame */
	EVIL_CUT,		/* a frame cut short, then silence */
	EVIL_ERROR_CODE,	/* an ERROR whose code is not < 0 */
	EVIL_GET_LONG,		/* more GET body than its length */
	EVIL_GET_SHORT,		/* less GET body than its length */
	EVIL_GET_OFFSET,	/* a GET answer for another offset */
	EVIL_STAT_COUNT,	/* STAT: count 4G chunks, one record */
	EVIL_LIST_COUNT,	/* LIST: count 5, one record */
	EVIL_LIST_RECORD,	/* LIST: a record that is no entry */
	EVIL_BATCH_INDEX,	/* BATCH_GET: an item index past count */
	EVIL_BATCH_TWICE,	/* BATCH_GET: one index twice */
	EVIL_BATCH_SIZE,	/* BATCH_GET: an item bigger than its data */
	EVIL_BATCH_MISSING,	/* BATCH_GET: END before every item */
	EVIL_MAX
};

static int do_evil(struct sconn *s, const struct proto_header *h, int evil)
{
	uint8_t out[4096], body[256], etag[32] = { 1 };
	struct proto_get_resp gr = {
		.info = { .size = 10, .etag = { etag, 32 }, .version = 1,
			  .writer = 7 },
		.length = 10,
	};
	struct proto_stat_resp sr = { .info = gr.info, .count = UINT32_MAX,
				      .chunk_size = FAKE_CHUNK };
	struct proto_list_resp lr = { .count = 5 };
	struct proto_batch_resp br = { .count = 2 };
	struct proto_batch_item it = { .size = 3 };
	struct proto_chunk_entry ce = { .raw_len = 10, .stored_len = 10 };
	struct proto_list_entry le = {
		.key = { "k", 1 }, .size = 10, .etag = { etag, 32 },
		.version = 1,
	};
	size_t flen, blen = 0;
	uint8_t op = h->opcode;

	memset(body, 0xab, sizeof(body));
	switch (evil) {
	case EVIL_WRONG_ID:
	case EVIL_WRONG_OP:
	case EVIL_GET_LONG:
	case EVIL_GET_SHORT:
	case EVIL_GET_OFFSET:
		if (evil == EVIL_GET_OFFSET)
			gr.offset = 1;
		ck_assert_int_eq(proto_get_resp_encode(&gr, out, sizeof(out),
						       &flen), 0);
		return s_send(s, evil == EVIL_WRONG_OP ? PROTO_OP_STAT : op,
			      PROTO_F_END, h->id + (evil == EVIL_WRONG_ID),
			      out, flen, body,
			      evil == EVIL_GET_LONG ? 20 :
			      evil == EVIL_GET_SHORT ? 5 : 10);
	case EVIL_GARBAGE:
		return SSL_write(s->ssl, body, 64) == 64 ? 0 : -1;
	case EVIL_CUT:
		ck_assert_int_eq(proto_get_resp_encode(&gr, out, sizeof(out),
						       &flen), 0);
		/* The header and fields of a 10-byte body, and 3 bytes. */
		{
			struct proto_header rh = {
				.opcode = op, .id = h->id,
				.flags = PROTO_F_RESPONSE | PROTO_F_END,
				.fields_len = (uint32_t)flen, .body_len = 10,
			};
			uint8_t hb[PROTO_HEADER_LEN];

			ck_assert_int_eq(proto_header_encode(&rh, hb), 0);
			if (SSL_write(s->ssl, hb, sizeof(hb)) != sizeof(hb) ||
			    SSL_write(s->ssl, out, (int)flen) != (int)flen ||
			    SSL_write(s->ssl, body, 3) != 3)
				return -1;
		}
		return 0;
	case EVIL_ERROR_CODE:
		/* The encoder refuses it: code (tag 32, i32) = 5 by hand. */
		memcpy(out, "\x20\x00\x04\x04\x00\x05\x00\x00\x00", 9);
		return s_send(s, op, PROTO_F_END | PROTO_F_ERROR, h->id, out,
			      9, NULL, 0);
	case EVIL_STAT_COUNT:
		ck_assert_int_eq(proto_stat_resp_encode(&sr, out, sizeof(out),
							&flen), 0);
		ck_assert_int_eq(proto_chunk_entry_encode(&ce, body,
							  sizeof(body), &blen),
				 0);
		return s_send(s, op, PROTO_F_END, h->id, out, flen, body, blen);
	case EVIL_LIST_COUNT:
	case EVIL_LIST_RECORD:
		ck_assert_int_eq(proto_list_resp_encode(&lr, out, sizeof(out),
							&flen), 0);
		ck_assert_int_eq(proto_list_entry_encode(&le, body,
							 sizeof(body), &blen),
				 0);
		if (evil == EVIL_LIST_RECORD)
			body[2 + 3] = 0;	/* the key field's length */
		return s_send(s, op, PROTO_F_END, h->id, out, flen, body, blen);
	default:
		break;
	}
	/* BATCH_GET: two items (index 0 and 1) of 3 bytes, spoilt. */
	ck_assert_int_eq(proto_batch_resp_encode(&br, out, sizeof(out), &flen),
			 0);
	for (uint32_t i = 0; i < 2; i++) {
		it.index = i;
		if (evil == EVIL_BATCH_INDEX && i)
			it.index = 2;
		if (evil == EVIL_BATCH_TWICE)
			it.index = 0;
		if (evil == EVIL_BATCH_SIZE && i)
			it.size = UINT64_MAX / 2;
		ck_assert_int_eq(proto_batch_item_encode(&it, body + blen), 0);
		blen += PROTO_BATCH_ITEM_LEN + 3;
		if (evil == EVIL_BATCH_MISSING)
			break;
	}
	return s_send(s, op, PROTO_F_END, h->id, out, flen, body, blen);
}

static int do_hello(struct sconn *s, const struct proto_header *h)
{
	struct proto_hello_req m;
	struct proto_hello_resp r = {
		.version = 1, .max_requests = 16, .max_inflight = 8u << 20,
		.max_body = PROTO_MAX_BODY_LEN,
		.server = { "fake/0", 6 },
	};
	uint8_t out[256];
	size_t len;
	int rc = proto_hello_req_decode(s->fields, h->fields_len, &m);

	if (rc)
		return s_error(s, h->opcode, h->id, rc, false);
	ck_assert_uint_eq(m.version, 1);
	ck_assert(m.agent.s && !strncmp(m.agent.s, "libstrata/", 10));
	RAND_bytes(s->nonce, sizeof(s->nonce));
	r.nonce = (struct proto_bytes){ s->nonce, sizeof(s->nonce) };
	s->hello = true;
	ck_assert_int_eq(proto_hello_resp_encode(&r, out, sizeof(out), &len),
			 0);
	return s_send(s, h->opcode, PROTO_F_END, h->id, out, len, NULL, 0);
}

static int do_auth(struct sconn *s, const struct proto_header *h)
{
	struct proto_auth_req m;
	struct proto_auth_resp r = { .principal = { "tester", 6 } };
	uint8_t exporter[32], transcript[PROTO_AUTH_TRANSCRIPT_MAX];
	uint8_t mac[32], out[64];
	unsigned int mlen = 32;
	size_t tlen, len;
	int rc = proto_auth_req_decode(s->fields, h->fields_len, &m);

	if (rc)
		return s_error(s, h->opcode, h->id, rc, false);
	ck_assert(s->hello);
	ck_assert_int_eq(SSL_export_keying_material(s->ssl, exporter, 32,
		PROTO_EXPORTER_LABEL, strlen(PROTO_EXPORTER_LABEL), NULL, 0,
		0), 1);
	ck_assert_int_eq(proto_auth_transcript(s->nonce, exporter,
			 m.access_key_id.s, m.access_key_id.len, transcript,
			 sizeof(transcript), &tlen), 0);
	HMAC(EVP_sha256(), SK, (int)strlen(SK), transcript, tlen, mac, &mlen);
	if (m.access_key_id.len != strlen(AK) ||
	    memcmp(m.access_key_id.s, AK, strlen(AK)) ||
	    m.proof.len != 32 || CRYPTO_memcmp(mac, m.proof.p, 32))
		return s_error(s, h->opcode, h->id, STRATA_EAUTH, false);
	s->authed = true;
	ck_assert_int_eq(proto_auth_resp_encode(&r, out, sizeof(out), &len),
			 0);
	return s_send(s, h->opcode, PROTO_F_END, h->id, out, len, NULL, 0);
}

static int dispatch(struct sconn *s, const struct proto_header *h)
{
	struct fake *f = s->f;

	if (h->opcode == PROTO_OP_HELLO)
		return do_hello(s, h);
	if (h->opcode == PROTO_OP_AUTH)
		return do_auth(s, h);
	if (!s->authed)
		return s_error(s, h->opcode, h->id, -EACCES, false);
	atomic_fetch_add(&f->requests, 1);
	if (atomic_load(&f->drop_next) > 0) {
		atomic_fetch_sub(&f->drop_next, 1);
		return -1;
	}
	if (atomic_load(&f->stall))
		return 0;
	if (h->opcode >= PROTO_OP_GET && h->opcode <= PROTO_OP_BATCH_GET) {
		int evil = atomic_exchange(&f->evil, EVIL_NONE);

		if (evil)
			return do_evil(s, h, evil);
	}
	switch (h->opcode) {
	case PROTO_OP_BUCKET_CREATE:
	case PROTO_OP_BUCKET_DELETE:
		return do_bucket(s, h);
	case PROTO_OP_BUCKET_LIST:
		return do_bucket_list(s, h);
	case PROTO_OP_PUT:
		return do_put(s, h);
	case PROTO_OP_GET:
		if (atomic_exchange(&f->goaway_next, false)) {
			struct proto_error e = { .code = STRATA_ECLOSING };
			uint8_t gf[64];
			size_t gl;

			ck_assert_int_eq(proto_error_encode(&e, gf, sizeof(gf),
							    &gl), 0);
			if (s_send(s, PROTO_OP_GOAWAY, PROTO_F_END, 0, gf, gl,
				   NULL, 0))
				return -1;
		}
		return do_get(s, h);
	case PROTO_OP_STAT:
		return do_stat(s, h);
	case PROTO_OP_DELETE:
		return do_delete(s, h);
	case PROTO_OP_LIST:
		return do_list(s, h);
	case PROTO_OP_BATCH_GET:
		return do_batch(s, h);
	default:
		if (h->opcode == PROTO_OP_HINT &&
		    atomic_load(&f->hint_delay_ms))
			usleep(atomic_load(&f->hint_delay_ms) * 1000u);
		return s_error(s, h->opcode, h->id, -EOPNOTSUPP, false);
	}
}

static void *serve(void *arg)
{
	struct sconn *s = arg;
	struct fake *f = s->f;
	struct proto_header h;
	int live = atomic_fetch_add(&f->live, 1) + 1;
	int max = atomic_load(&f->max_live);

	while (live > max && !atomic_compare_exchange_weak(&f->max_live, &max,
							   live))
		;
	s->body = malloc(PROTO_MAX_BODY_LEN);
	while (atomic_load(&f->stall_tls) && !atomic_load(&f->stop))
		usleep(10 * 1000);
	if (SSL_accept(s->ssl) != 1)
		goto out;
	while (!s_frame(s, &h)) {
		if (h.opcode == PROTO_OP_CANCEL) {
			atomic_fetch_add(&f->cancels, 1);
			if (h.id == s->discard_id)
				s->discard_id = 0;
			continue;
		}
		if (h.id == s->discard_id && (h.flags & PROTO_F_CONT)) {
			if (h.flags & PROTO_F_END)
				s->discard_id = 0;
			continue;
		}
		if (dispatch(s, &h))
			break;
		if (atomic_load(&f->close_idle) && s->authed &&
		    h.opcode != PROTO_OP_AUTH)
			break;
	}
out:
	atomic_fetch_sub(&f->live, 1);
	SSL_free(s->ssl);
	close(s->fd);
	free(s->body);
	free(s);
	return NULL;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		   const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x08" PROTO_ALPN;

	if (SSL_select_next_proto((unsigned char **)out, outlen, ours,
				  sizeof(ours) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

static void *accept_loop(void *arg)
{
	struct fake *f = arg;

	while (!atomic_load(&f->stop)) {
		struct pollfd p = { .fd = f->lfd, .events = POLLIN };
		struct sconn *s;
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		s = calloc(1, sizeof(*s));
		s->f = f;
		s->fd = fd;
		s->ssl = SSL_new(f->ctx);
		SSL_set_fd(s->ssl, fd);
		atomic_fetch_add(&f->accepted, 1);
		pthread_mutex_lock(&f->lock);
		ck_assert_int_lt(f->nconn_thr, MAX_CONNS);
		pthread_create(&f->conn_thr[f->nconn_thr++], NULL, serve, s);
		pthread_mutex_unlock(&f->lock);
	}
	return NULL;
}

static struct fake *fake_start(void)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);

	ck_assert_ptr_nonnull(f);
	/* The fake server writes with OpenSSL's socket BIO: a client that
	 * hangs up mid-response must be an EPIPE for it, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&f->lock, NULL);
	f->get_frame = 100000;
	f->page_cap = 1000;
	f->batch_frame = 1000;
	f->ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(f->ctx);
	SSL_CTX_set_min_proto_version(f->ctx, TLS1_3_VERSION);
	SSL_CTX_set_num_tickets(f->ctx, 0);
	SSL_CTX_set_alpn_select_cb(f->ctx, alpn_cb, NULL);
	make_pki(f->ctx);
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(f->lfd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(f->lfd, 64), 0);
	ck_assert_int_eq(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	ck_assert_int_eq(pthread_create(&f->accept_thr, NULL, accept_loop, f),
			 0);
	return f;
}

/* After the client is freed (its connections closed), every connection
 * thread sees EOF and ends. */
static void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->accept_thr, NULL);
	for (int i = 0; i < f->nconn_thr; i++)
		pthread_join(f->conn_thr[i], NULL);
	close(f->lfd);
	for (int i = 0; i < f->nobjs; i++)
		obj_clear(&f->objs[i]);
	SSL_CTX_free(f->ctx);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* ---- Fixtures ----------------------------------------------------------- */

static char endpoint[64];

static struct strata_config config(void)
{
	struct strata_config cfg = {
		.endpoint = endpoint,
		.access_key = AK,
		.secret_key = SK,
		.ca_file = ca_path,
		.pool_size = 4,
		.timeout_ms = 5000,
	};

	return cfg;
}

static void setup(void)
{
	struct strata_config cfg;

	tmpdir = tu_tmpdir("client");
	F = fake_start();
	snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%u", F->port);
	cfg = config();
	ck_assert_int_eq(strata_client_new(&cfg, &C), 0);
	ck_assert_int_eq(strata_bucket_create(C, "data"), 0);
}

static void teardown(void)
{
	strata_client_free(C);
	C = NULL;
	fake_stop(F);
	F = NULL;
	tu_rmrf(tmpdir);
	free(tmpdir);
}

static uint8_t *pattern(size_t len, uint64_t seed)
{
	uint8_t *p = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(p);
	tu_fill(p, len, seed);
	return p;
}

struct sink {
	uint8_t *buf;
	size_t len, cap;
	int fail_after;		/* calls before returning an error; <0 never */
};

static int sink_write(void *arg, const void *buf, size_t len)
{
	struct sink *s = arg;

	if (s->fail_after == 0)
		return -ECANCELED;
	if (s->fail_after > 0)
		s->fail_after--;
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->buf = realloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

/* ---- Tests: connection -------------------------------------------------- */

START_TEST(test_connect_errors)
{
	struct strata_config cfg = config();
	strata_client *c = NULL;
	struct addrinfo *ai;

	cfg.secret_key = "wrong";
	ck_assert_int_eq(strata_client_new(&cfg, &c), STRATA_EAUTH);
	cfg = config();
	cfg.access_key = "AKOTHER";
	ck_assert_int_eq(strata_client_new(&cfg, &c), STRATA_EAUTH);
	cfg = config();
	cfg.ca_file = other_ca_path;
	ck_assert_int_eq(strata_client_new(&cfg, &c), STRATA_ECERT);
	cfg = config();
	cfg.ca_file = "/nonexistent/ca.pem";
	ck_assert_int_eq(strata_client_new(&cfg, &c), -ENOENT);
	cfg = config();
	cfg.endpoint = "127.0.0.1";
	ck_assert_int_eq(strata_client_new(&cfg, &c), STRATA_ECONFIG);
	cfg.endpoint = "127.0.0.1:99999";
	ck_assert_int_eq(strata_client_new(&cfg, &c), STRATA_ECONFIG);
	cfg = config();
	cfg.secret_key = NULL;
	ck_assert_int_eq(strata_client_new(&cfg, &c), STRATA_ECONFIG);
	ck_assert_ptr_null(c);

	/* The certificate names localhost too (DNS SAN).  Only where the
	 * name resolves: a bare chroot may have no /etc/hosts. */
	if (getaddrinfo("localhost", NULL, NULL, &ai) == 0) {
		char ep[64];

		freeaddrinfo(ai);
		snprintf(ep, sizeof(ep), "localhost:%u", F->port);
		cfg = config();
		cfg.endpoint = ep;
		/* localhost may resolve to ::1 first; the client tries every
		 * address. */
		ck_assert_int_eq(strata_client_new(&cfg, &c), 0);
		strata_client_free(c);
	}
}
END_TEST

/* A CA file that is a directory or a FIFO is refused, saying why; the
 * FIFO used to block strata_client_new() until someone wrote to it. */
START_TEST(test_ca_file_not_regular)
{
	struct strata_config cfg = config();
	strata_client *c = NULL;
	char fifo[512];

	alarm(20);	/* a blocked open ends the test (SIGALRM) */
	cfg.ca_file = tmpdir;
	ck_assert_int_eq(strata_client_new(&cfg, &c), -EISDIR);
	ck_assert_msg(strstr(strata_error_message(), "Is a directory"),
		      "%s", strata_error_message());
	snprintf(fifo, sizeof(fifo), "%s/ca.fifo", tmpdir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	cfg.ca_file = fifo;
	ck_assert_int_eq(strata_client_new(&cfg, &c), STRATA_ECONFIG);
	ck_assert_msg(strstr(strata_error_message(), "not a regular file"),
		      "%s", strata_error_message());
	ck_assert_ptr_null(c);
	alarm(0);
}
END_TEST

START_TEST(test_connect_refused)
{
	struct strata_config cfg = config();
	strata_client *c = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	char ep[64];

	/* A port that was just free: bound, never listened on. */
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(ep, sizeof(ep), "127.0.0.1:%u", ntohs(sa.sin_port));
	cfg.endpoint = ep;
	ck_assert_int_eq(strata_client_new(&cfg, &c), -ECONNREFUSED);
	close(fd);
}
END_TEST

START_TEST(test_config_from_env)
{
	struct strata_config cfg = { 0 };
	char path[600], err[256] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/config", tmpdir);
	f = fopen(path, "w");
	fputs("# strata client\n[default]\nendpoint = file:1\n"
	      "access_key=fileak\n  secret_key = \"file secret\"  \n"
	      "ca = ~/ca.pem\npool_size = 9\nfuture_key = x\n", f);
	fclose(f);
	setenv("STRATA_CONFIG", path, 1);
	setenv("HOME", "/home/t", 1);
	setenv("STRATA_ACCESS_KEY", "envak", 1);
	unsetenv("STRATA_ENDPOINT");
	unsetenv("STRATA_SECRET_KEY");
	unsetenv("STRATA_CA");
	cfg.endpoint = "flag:2";
	ck_assert_int_eq(strata_config_from_env(&cfg, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.endpoint, "flag:2");	/* flag wins */
	ck_assert_str_eq(cfg.access_key, "envak");	/* env over file */
	ck_assert_str_eq(cfg.secret_key, "file secret");
	ck_assert_str_eq(cfg.ca_file, "/home/t/ca.pem");
	ck_assert_uint_eq(cfg.pool_size, 9);
	ck_assert_uint_eq(cfg.timeout_ms, 0);
	strata_config_release(&cfg);
	ck_assert_ptr_null(cfg.endpoint);
	ck_assert_ptr_null(cfg.secret_key);

	f = fopen(path, "w");
	fputs("endpoint = a:1\nthis line is wrong\n", f);
	fclose(f);
	ck_assert_int_eq(strata_config_from_env(&cfg, err, sizeof(err)),
			 STRATA_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, ":2:"));
	ck_assert_ptr_null(cfg.access_key);

	/* Only a regular file: a FIFO would block (no writer), /dev/zero
	 * is one endless line, a directory is no file at all. */
	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	const char *odd[] = { path, "/dev/zero", tmpdir };

	for (size_t i = 0; i < 3; i++) {
		setenv("STRATA_CONFIG", odd[i], 1);
		err[0] = '\0';
		ck_assert_int_eq(strata_config_from_env(&cfg, err,
							sizeof(err)),
				 STRATA_ECONFIG);
		ck_assert_ptr_nonnull(strstr(err, odd[i]));
		ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
		ck_assert_ptr_null(cfg.access_key);
	}
	unlink(path);

	/* A regular file over 1 MiB (a log, a disk image, a sparse file of
	 * NULs without a newline) is no config file either: refused, not
	 * read whole into one line. */
	snprintf(path, sizeof(path), "%s/huge", tmpdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(ftruncate(fileno(f), 64 << 20), 0);
	fclose(f);
	setenv("STRATA_CONFIG", path, 1);
	err[0] = '\0';
	ck_assert_int_eq(strata_config_from_env(&cfg, err, sizeof(err)),
			 STRATA_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_ptr_nonnull(strstr(err, "over 1024 KiB"));
	ck_assert_ptr_null(cfg.access_key);
	unlink(path);

	/* No file at all: the environment alone. */
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	setenv("STRATA_CONFIG", path, 1);
	ck_assert_int_eq(strata_config_from_env(&cfg, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.access_key, "envak");
	ck_assert_ptr_null(cfg.endpoint);
	strata_config_release(&cfg);

	/* No configuration to complete: an error, not a crash. */
	ck_assert_int_eq(strata_config_from_env(NULL, err, sizeof(err)),
			 -EINVAL);
}
END_TEST

/* ---- Tests: buckets ----------------------------------------------------- */

struct names {
	char v[32][64];
	int n;
};

static int collect_bucket(void *arg, const char *bucket, uint64_t ctime)
{
	struct names *n = arg;

	ck_assert_int_lt(n->n, 32);
	snprintf(n->v[n->n++], 64, "%s", bucket);
	return 0;
}

static int stop_bucket(void *arg, const char *bucket, uint64_t ctime)
{
	return 42;
}

START_TEST(test_buckets)
{
	struct names n = { .n = 0 };
	char name[16];

	ck_assert_int_eq(strata_bucket_create(C, "data"), STRATA_EBUCKETEXISTS);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "b%02d", i);
		ck_assert_int_eq(strata_bucket_create(C, name), 0);
	}
	F->page_cap = 3;	/* three pages, the client follows them */
	ck_assert_int_eq(strata_bucket_list(C, collect_bucket, &n), 0);
	ck_assert_int_eq(n.n, 7);
	ck_assert_str_eq(n.v[0], "b00");
	ck_assert_str_eq(n.v[5], "b05");
	ck_assert_str_eq(n.v[6], "data");
	ck_assert_int_eq(strata_bucket_list(C, stop_bucket, NULL), 42);

	ck_assert_int_eq(strata_object_put_buf(C, "b00", "k", NULL, "x", 1,
					       NULL), 0);
	ck_assert_int_eq(strata_bucket_delete(C, "b00"),
			 STRATA_EBUCKETNOTEMPTY);
	ck_assert_int_eq(strata_bucket_delete(C, "b01"), 0);
	ck_assert_int_eq(strata_bucket_delete(C, "b01"), STRATA_ENOBUCKET);
	ck_assert_int_eq(strata_bucket_create(C, ""), STRATA_EBADBUCKET);
	/* Keys the node would refuse are refused here, as it would. */
	{
		static const char *const bad[] = { "", "\xff", "a\xc0\xaf\x62",
						   "\xed\xa0\x80" };
		struct strata_stat *st;
		size_t got;
		char buf[4];

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			ck_assert_int_eq(strata_object_put_buf(C, "b00", bad[i],
					 NULL, "x", 1, NULL), STRATA_EBADKEY);
			ck_assert_int_eq(strata_object_get_buf(C, "b00", bad[i],
					 0, STRATA_TO_END, buf, sizeof(buf),
					 &got, NULL), STRATA_EBADKEY);
			ck_assert_int_eq(strata_object_stat(C, "b00", bad[i],
					 &st), STRATA_EBADKEY);
			ck_assert_int_eq(strata_object_delete(C, "b00", bad[i],
					 NULL), STRATA_EBADKEY);
		}
	}
	/* One connection did all of it. */
	ck_assert_int_eq(atomic_load(&F->accepted), 1);
}
END_TEST

/* ---- Tests: put and get ------------------------------------------------- */

static void check_roundtrip(size_t len, uint64_t seed)
{
	uint8_t *data = pattern(len, seed), *back = malloc(len + 1), etag[32];
	struct strata_put_result pr;
	struct strata_get_result gr;
	size_t got = 99;
	char key[32];

	snprintf(key, sizeof(key), "obj-%zu", len);
	ck_assert_int_eq(strata_object_put_buf(C, "data", key, NULL, data, len,
					       &pr), 0);
	ck_assert_uint_eq(pr.size, len);
	fake_etag(data, len, etag);
	ck_assert_mem_eq(pr.etag, etag, 32);
	ck_assert_int_eq(strata_object_get_buf(C, "data", key, 0,
					       STRATA_TO_END, back, len + 1,
					       &got, &gr), 0);
	ck_assert_uint_eq(got, len);
	ck_assert_uint_eq(gr.size, len);
	ck_assert_uint_eq(gr.length, len);
	ck_assert_uint_eq(gr.version, pr.version);
	ck_assert_uint_eq(gr.mtime_ms, 1700000000000ull);
	if (len)
		ck_assert_mem_eq(back, data, len);
	free(data);
	free(back);
}

START_TEST(test_put_get_sizes)
{
	static const size_t sizes[] = {
		0, 1, 4095, PROTO_MAX_BODY_LEN, PROTO_MAX_BODY_LEN + 7,
		3 * PROTO_MAX_BODY_LEN + 12345,
	};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_roundtrip(sizes[i], i + 1);
	ck_assert_int_eq(atomic_load(&F->accepted), 1);
}
END_TEST

START_TEST(test_get_ranges)
{
	size_t len = 300000, got;
	uint8_t *data = pattern(len, 7), buf[1000];
	struct strata_get_result gr;
	struct sink s = { .fail_after = -1 };

	ck_assert_int_eq(strata_object_put_buf(C, "data", "r", NULL, data, len,
					       NULL), 0);
	ck_assert_int_eq(strata_object_get_buf(C, "data", "r", 1234, 1000, buf,
					       sizeof(buf), &got, &gr), 0);
	ck_assert_uint_eq(got, 1000);
	ck_assert_uint_eq(gr.offset, 1234);
	ck_assert_mem_eq(buf, data + 1234, 1000);
	/* Past the end is cut; at the end is empty; beyond is an error. */
	ck_assert_int_eq(strata_object_get_buf(C, "data", "r", len - 10, 500,
					       buf, sizeof(buf), &got, &gr), 0);
	ck_assert_uint_eq(got, 10);
	ck_assert_mem_eq(buf, data + len - 10, 10);
	ck_assert_int_eq(strata_object_get_buf(C, "data", "r", len, 5, buf,
					       sizeof(buf), &got, NULL), 0);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(strata_object_get_buf(C, "data", "r", len + 1, 5, buf,
					       sizeof(buf), &got, NULL),
			 STRATA_ERANGE);
	/* A range longer than the buffer: -ENOBUFS, the length reported,
	 * and the connection kept (the response is cancelled and drained). */
	ck_assert_int_eq(strata_object_get_buf(C, "data", "r", 0,
					       STRATA_TO_END, buf, sizeof(buf),
					       &got, &gr), -ENOBUFS);
	ck_assert_uint_eq(gr.length, len);
	/* Into a callback, across frames of 100000 bytes. */
	ck_assert_int_eq(strata_object_get(C, "data", "r", 5, STRATA_TO_END,
					   sink_write, &s, &gr), 0);
	ck_assert_uint_eq(s.len, len - 5);
	ck_assert_mem_eq(s.buf, data + 5, len - 5);
	ck_assert_int_eq(strata_object_get_buf(C, "data", "nope", 0, 1, buf,
					       sizeof(buf), &got, NULL),
			 STRATA_ENOOBJECT);
	ck_assert_int_eq(strata_object_get_buf(C, "nobucket", "r", 0, 1, buf,
					       sizeof(buf), &got, NULL),
			 STRATA_ENOBUCKET);
	ck_assert_int_eq(atomic_load(&F->accepted), 1);
	free(s.buf);
	free(data);
}
END_TEST

/* strata_object_get_alloc(): the range in a buffer of its size, across
 * frames; nothing handed over on an error (ASan: nothing leaked either,
 * a server that sends too much or too little included). */
START_TEST(test_get_alloc)
{
	static const size_t sizes[] = { 0, 1, 4095, 300000 };
	struct strata_get_result gr;
	void *p = (void *)1;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *data = pattern(sizes[i], 40 + i);
		char key[32];

		snprintf(key, sizeof(key), "a-%zu", sizes[i]);
		ck_assert_int_eq(strata_object_put_buf(C, "data", key, NULL,
						       data, sizes[i], NULL),
				 0);
		ck_assert_int_eq(strata_object_get_alloc(C, "data", key, 0,
							 STRATA_TO_END, &p,
							 &gr), 0);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq(gr.length, sizes[i]);
		if (sizes[i])
			ck_assert_mem_eq(p, data, sizes[i]);
		free(p);
		if (sizes[i] > 1000) {
			ck_assert_int_eq(strata_object_get_alloc(
				C, "data", key, 999, 1001, &p, &gr), 0);
			ck_assert_uint_eq(gr.length, 1001);
			ck_assert_mem_eq(p, data + 999, 1001);
			free(p);
		}
		free(data);
	}
	ck_assert_int_eq(strata_object_get_alloc(C, "data", "nope", 0, 1, &p,
						 &gr), STRATA_ENOOBJECT);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(strata_object_get_alloc(C, "data", "a-1", 0, 1, &p,
						 NULL), -EINVAL);
	ck_assert_int_eq(strata_object_get_alloc(C, "data", "a-1", 0, 1, NULL,
						 &gr), -EINVAL);
	for (int evil = EVIL_GET_LONG; evil <= EVIL_GET_SHORT; evil++) {
		p = (void *)1;
		atomic_store(&F->evil, evil);
		ck_assert_int_eq(strata_object_get_alloc(C, "data", "a-1", 0,
							 STRATA_TO_END, &p,
							 &gr), STRATA_EPROTO);
		ck_assert_ptr_null(p);
	}
	ck_assert_int_eq(strata_object_get_alloc(C, "data", "a-1", 0,
						 STRATA_TO_END, &p, &gr), 0);
	free(p);
}
END_TEST

START_TEST(test_get_abort_and_corrupt)
{
	size_t len = 500000;
	uint8_t *data = pattern(len, 8);
	struct sink s = { .fail_after = 1 };
	uint8_t buf[16];
	size_t got;

	ck_assert_int_eq(strata_object_put_buf(C, "data", "a", NULL, data, len,
					       NULL), 0);
	ck_assert_int_eq(strata_object_get(C, "data", "a", 0, STRATA_TO_END,
					   sink_write, &s, NULL), -ECANCELED);
	ck_assert_uint_eq(s.len, 100000);
	/* The error is the sink's: no words of the server's on it. */
	ck_assert_str_eq(strata_error_message(), "");
	/* A failure part way is the server's code, not data. */
	ck_assert_int_eq(strata_object_put_buf(C, "data", "corrupt", NULL,
					       data, len, NULL), 0);
	s.len = 0;
	s.fail_after = -1;
	ck_assert_int_eq(strata_object_get(C, "data", "corrupt", 0,
					   STRATA_TO_END, sink_write, &s,
					   NULL), STRATA_ECORRUPT);
	ck_assert_uint_lt(s.len, len);
	/* Both left the connection usable. */
	ck_assert_int_eq(strata_object_get_buf(C, "data", "a", 3, 16, buf,
					       sizeof(buf), &got, NULL), 0);
	ck_assert_mem_eq(buf, data + 3, 16);
	ck_assert_int_eq(atomic_load(&F->accepted), 1);
	free(s.buf);
	free(data);
}
END_TEST

struct dribble {
	const uint8_t *p;
	size_t len, pos, step;
	int fail_at;		/* offset at which to fail; -1 never */
};

static ssize_t dribble_read(void *arg, void *buf, size_t cap)
{
	struct dribble *d = arg;
	size_t n = d->len - d->pos;

	if (d->fail_at >= 0 && d->pos >= (size_t)d->fail_at)
		return -EIO;
	if (n > cap)
		n = cap;
	if (n > d->step)
		n = d->step;
	memcpy(buf, d->p + d->pos, n);
	d->pos += n;
	return (ssize_t)n;
}

START_TEST(test_put_stream)
{
	size_t len = 2 * PROTO_MAX_BODY_LEN + 333;
	uint8_t *data = pattern(len, 9), *back = malloc(len);
	struct dribble d = { data, len, 0, 70000, -1 };
	struct strata_put_opts o = { .has_size = true, .size = len };
	size_t got;

	/* Unknown size, small pieces. */
	ck_assert_int_eq(strata_object_put(C, "data", "s1", NULL, dribble_read,
					   &d, NULL), 0);
	ck_assert_int_eq(strata_object_get_buf(C, "data", "s1", 0,
					       STRATA_TO_END, back, len, &got,
					       NULL), 0);
	ck_assert_uint_eq(got, len);
	ck_assert_mem_eq(back, data, len);
	/* Exactly one full frame, size unknown: an empty END frame follows. */
	d = (struct dribble){ data, PROTO_MAX_BODY_LEN, 0, 1 << 20, -1 };
	ck_assert_int_eq(strata_object_put(C, "data", "s2", NULL, dribble_read,
					   &d, NULL), 0);
	/* Known size. */
	d = (struct dribble){ data, len, 0, 1 << 20, -1 };
	ck_assert_int_eq(strata_object_put(C, "data", "s3", &o, dribble_read,
					   &d, NULL), 0);
	/* The stream fails part way: cancelled, nothing stored, connection
	 * kept. */
	d = (struct dribble){ data, len, 0, 1 << 20, 1500000 };
	ck_assert_int_eq(strata_object_put(C, "data", "s4", NULL, dribble_read,
					   &d, NULL), -EIO);
	/* The error is the stream's: the server's words on the CANCEL are
	 * not given as if they were about it. */
	ck_assert_str_eq(strata_error_message(), "");
	/* The stream is shorter than its declared size. */
	d = (struct dribble){ data, len - 1, 0, 1 << 20, -1 };
	ck_assert_int_eq(strata_object_put(C, "data", "s5", &o, dribble_read,
					   &d, NULL), -EINVAL);
	ck_assert_str_eq(strata_error_message(), "");
	ck_assert_int_eq(strata_object_get_buf(C, "data", "s4", 0, 1, back,
					       len, &got, NULL),
			 STRATA_ENOOBJECT);
	ck_assert_int_eq(strata_object_get_buf(C, "data", "s5", 0, 1, back,
					       len, &got, NULL),
			 STRATA_ENOOBJECT);
	ck_assert_int_eq(atomic_load(&F->cancels), 2);
	ck_assert_int_eq(atomic_load(&F->accepted), 1);
	free(back);
	free(data);
}
END_TEST

START_TEST(test_put_refused_early)
{
	size_t len = 8 * PROTO_MAX_BODY_LEN;
	uint8_t *data = pattern(len, 10);

	/* The server refuses from the fields; the client stops sending and
	 * CANCELs, and the connection goes on. */
	ck_assert_int_eq(strata_object_put_buf(C, "nobucket", "k", NULL, data,
					       len, NULL), STRATA_ENOBUCKET);
	ck_assert_int_eq(strata_object_put_buf(C, "data", "k", NULL, data, 10,
					       NULL), 0);
	ck_assert_int_eq(atomic_load(&F->accepted), 1);
	ck_assert_int_ge(atomic_load(&F->cancels), 1);
	free(data);
}
END_TEST

struct pipe_feed {
	int fd;
	const uint8_t *d;
	size_t n;
};

static void *pipe_writer(void *a)
{
	struct pipe_feed *w = a;
	size_t off = 0;

	while (off < w->n) {
		ssize_t n = write(w->fd, w->d + off, w->n - off > 4096 ?
				  4096 : w->n - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(w->fd);
	return NULL;
}

START_TEST(test_put_get_fd)
{
	size_t len = 1500000;
	uint8_t *data = pattern(len, 11), *back = malloc(len);
	char path[600], out[600];
	int fd, p[2];
	pthread_t t;
	struct stat st;

	snprintf(path, sizeof(path), "%s/in", tmpdir);
	snprintf(out, sizeof(out), "%s/out", tmpdir);
	ck_assert_int_eq(tu_write_file(path, data, len, 0600), 0);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(lseek(fd, 100, SEEK_SET), 0);
	ck_assert_int_eq(strata_object_put_fd(C, "data", "f", NULL, fd, NULL),
			 0);
	close(fd);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_eq(strata_object_get_fd(C, "data", "f", 0, STRATA_TO_END,
					      fd, NULL), 0);
	close(fd);
	ck_assert_int_eq(stat(out, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)len - 100);
	fd = open(out, O_RDONLY);
	ck_assert_int_eq(read(fd, back, len), (ssize_t)len - 100);
	close(fd);
	ck_assert_mem_eq(back, data + 100, len - 100);

	/* A pipe is streamed (its size is unknown). */
	ck_assert_int_eq(pipe(p), 0);
	struct pipe_feed w = { p[1], data, len };

	ck_assert_int_eq(pthread_create(&t, NULL, pipe_writer, &w), 0);
	ck_assert_int_eq(strata_object_put_fd(C, "data", "pipe", NULL, p[0],
					      NULL), 0);
	pthread_join(t, NULL);
	close(p[0]);
	ck_assert_int_eq(strata_object_get_buf(C, "data", "pipe", 0,
					       STRATA_TO_END, back, len, NULL,
					       NULL), 0);
	ck_assert_mem_eq(back, data, len);
	free(back);
	free(data);
}
END_TEST

/* ---- Tests: stat, delete, metadata -------------------------------------- */

START_TEST(test_stat_delete)
{
	size_t len = 3 * FAKE_CHUNK + 5;
	uint8_t *data = pattern(len, 12), etag[32];
	struct strata_kv meta[] = { { "origin", "camera-7" },
				    { "mtime", "1700000000" } };
	struct strata_kv tags[] = { { "team", "vision" } };
	struct strata_put_opts o = {
		.content_type = "application/x-tar",
		.meta = meta, .nmeta = 2, .tags = tags, .ntags = 1,
	};
	struct strata_delete_result dr;
	struct strata_stat *st = NULL;
	char hex[80];

	ck_assert_int_eq(strata_object_put_buf(C, "data", "m", &o, data, len,
					       NULL), 0);
	ck_assert_int_eq(strata_object_stat(C, "data", "m", &st), 0);
	ck_assert_uint_eq(st->size, len);
	ck_assert_str_eq(st->content_type, "application/x-tar");
	ck_assert_uint_eq(st->nmeta, 2);
	ck_assert_str_eq(st->meta[0].name, "origin");
	ck_assert_str_eq(st->meta[0].value, "camera-7");
	ck_assert_str_eq(st->meta[1].name, "mtime");
	ck_assert_str_eq(st->meta[1].value, "1700000000");
	ck_assert_uint_eq(st->nchunks, 4);
	ck_assert_uint_eq(st->chunk_size, FAKE_CHUNK);
	ck_assert_uint_eq(st->chunks[0].tier, 0);
	ck_assert_uint_eq(st->chunks[1].tier, 1);
	ck_assert_uint_eq(st->chunks[3].raw_len, 5);
	ck_assert_uint_eq(st->chunks[3].stored_len, 42);
	fake_etag(data, len, etag);
	ck_assert_mem_eq(st->etag, etag, 32);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", etag[i]);
	snprintf(hex + 64, sizeof(hex) - 64, "-4");
	ck_assert_str_eq(st->etag_hex, hex);
	strata_stat_free(st);

	ck_assert_int_eq(strata_object_delete(C, "data", "m", &dr), 0);
	ck_assert(dr.has_version);
	ck_assert_uint_gt(dr.version, 0);
	ck_assert_int_eq(strata_object_delete(C, "data", "m", &dr),
			 STRATA_ENOOBJECT);
	ck_assert_int_eq(strata_object_stat(C, "data", "m", &st),
			 STRATA_ENOOBJECT);

	/* Metadata over the wire limits never leaves the client. */
	struct strata_kv big[PROTO_MAX_KV + 1];

	for (int i = 0; i <= PROTO_MAX_KV; i++)
		big[i] = (struct strata_kv){ "k", "v" };
	o.meta = big;
	o.nmeta = PROTO_MAX_KV + 1;
	ck_assert_int_eq(strata_object_put_buf(C, "data", "m", &o, data, 1,
					       NULL), STRATA_EBADMETA);
	ck_assert_int_eq(atomic_load(&F->accepted), 1);
	free(data);
}
END_TEST

/* ---- Tests: list -------------------------------------------------------- */

START_TEST(test_list)
{
	static const char *const keys[] = {
		"a/1", "a/2", "a/x/3", "b/1", "c", "d/1", "d/2",
	};
	const struct strata_list_entry *e;
	struct strata_list_opts o = { .page_size = 2 };
	strata_list *it;
	char got[16][32];
	int n = 0, rc;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ck_assert_int_eq(strata_object_put_buf(C, "data", keys[i], NULL,
				 keys[i], strlen(keys[i]), NULL), 0);
	/* Everything, two per page. */
	ck_assert_int_eq(strata_list_new(C, "data", &o, &it), 0);
	while ((rc = strata_list_next(it, &e)) == 1) {
		ck_assert_ptr_nonnull(e->key);
		ck_assert_uint_eq(e->size, strlen(e->key));
		snprintf(got[n++], 32, "%s", e->key);
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(n, 7);
	for (int i = 0; i < 7; i++)
		ck_assert_str_eq(got[i], keys[i]);
	ck_assert_int_eq(strata_list_next(it, &e), 0);
	strata_list_free(it);

	/* Rolled up at '/'. */
	o.delimiter = "/";
	ck_assert_int_eq(strata_list_new(C, "data", &o, &it), 0);
	n = 0;
	while ((rc = strata_list_next(it, &e)) == 1)
		snprintf(got[n++], 32, "%s%s", e->key ? "k:" : "p:",
			 e->key ? e->key : e->prefix);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(n, 4);
	ck_assert_str_eq(got[0], "p:a/");
	ck_assert_str_eq(got[1], "p:b/");
	ck_assert_str_eq(got[2], "k:c");
	ck_assert_str_eq(got[3], "p:d/");
	strata_list_free(it);

	/* Under a prefix, after a key. */
	o.prefix = "a/";
	o.start_after = "a/1";
	ck_assert_int_eq(strata_list_new(C, "data", &o, &it), 0);
	n = 0;
	while ((rc = strata_list_next(it, &e)) == 1)
		snprintf(got[n++], 32, "%s", e->key ? e->key : e->prefix);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(got[0], "a/2");
	ck_assert_str_eq(got[1], "a/x/");
	strata_list_free(it);

	/* A refused start leaves NULL, which strata_list_free() takes
	 * (the strata CLI freed a garbage pointer after a short name). */
	o = (struct strata_list_opts){ .page_size = PROTO_MAX_LIST_LIMIT + 1 };
	it = (strata_list *)&o;
	ck_assert_int_eq(strata_list_new(C, "data", &o, &it), -EINVAL);
	ck_assert_ptr_null(it);
	it = (strata_list *)&o;
	ck_assert_int_eq(strata_list_new(C, "b1", NULL, &it), STRATA_EBADBUCKET);
	ck_assert_ptr_null(it);
	strata_list_free(it);
	ck_assert_int_eq(strata_list_new(C, "nobucket", NULL, &it), 0);
	ck_assert_int_eq(strata_list_next(it, &e), 0);	/* fake: empty */
	strata_list_free(it);
}
END_TEST

/* ---- Tests: batch get --------------------------------------------------- */

struct batch_sink {
	size_t n;
	uint8_t **data;
	size_t *len;
	int *status;
	int *lasts;
};

static int batch_cb(void *arg, const struct strata_batch_piece *p)
{
	struct batch_sink *b = arg;

	ck_assert_uint_lt(p->index, b->n);
	b->status[p->index] = p->status;
	if (p->len) {
		ck_assert_uint_eq(p->offset, b->len[p->index]);
		b->data[p->index] = realloc(b->data[p->index],
					    b->len[p->index] + p->len);
		memcpy(b->data[p->index] + b->len[p->index], p->data, p->len);
		b->len[p->index] += p->len;
	}
	if (p->last) {
		ck_assert_uint_eq(b->len[p->index], p->status ? 0 : p->size);
		b->lasts[p->index]++;
	}
	return 0;
}

static void batch_sink_init(struct batch_sink *b, size_t n)
{
	b->n = n;
	b->data = calloc(n, sizeof(*b->data));
	b->len = calloc(n, sizeof(*b->len));
	b->status = calloc(n, sizeof(*b->status));
	b->lasts = calloc(n, sizeof(*b->lasts));
}

static void batch_sink_free(struct batch_sink *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->data[i]);
	free(b->data);
	free(b->len);
	free(b->status);
	free(b->lasts);
}

START_TEST(test_batch)
{
	const char *keys[] = { "x0", "missing", "x2", "x3", "x4" };
	size_t sizes[] = { 2500, 0, 0, 17, 3000 };
	uint8_t *data[5];
	struct batch_sink b;

	for (int i = 0; i < 5; i++) {
		data[i] = pattern(sizes[i], 20 + (uint64_t)i);
		if (i != 1)
			ck_assert_int_eq(strata_object_put_buf(C, "data",
					 keys[i], NULL, data[i], sizes[i],
					 NULL), 0);
	}
	batch_sink_init(&b, 5);
	ck_assert_int_eq(strata_batch_get(C, "data", keys, 5, batch_cb, &b),
			 0);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(b.lasts[i], 1);
		if (i == 1) {
			ck_assert_int_eq(b.status[i], STRATA_ENOOBJECT);
			continue;
		}
		ck_assert_int_eq(b.status[i], 0);
		ck_assert_uint_eq(b.len[i], sizes[i]);
		if (sizes[i])
			ck_assert_mem_eq(b.data[i], data[i], sizes[i]);
	}
	batch_sink_free(&b);
	ck_assert_int_eq(strata_batch_get(C, "nobucket", keys, 5, batch_cb,
					  &b), STRATA_ENOBUCKET);
	keys[2] = "";
	ck_assert_int_eq(strata_batch_get(C, "data", keys, 5, batch_cb, &b),
			 STRATA_EBADKEY);
	for (int i = 0; i < 5; i++)
		free(data[i]);
}
END_TEST

START_TEST(test_batch_split)
{
	size_t n = PROTO_MAX_BATCH_KEYS + 300;
	const char **keys = calloc(n, sizeof(*keys));
	char (*names)[16] = calloc(n, 16);
	struct batch_sink b;

	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], 16, "k%zu", i % 10);
		keys[i] = names[i];
	}
	for (int i = 0; i < 10; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		ck_assert_int_eq(strata_object_put_buf(C, "data", k, NULL, k,
						       strlen(k), NULL), 0);
	}
	batch_sink_init(&b, n);
	atomic_store(&F->requests, 0);
	ck_assert_int_eq(strata_batch_get(C, "data", keys, n, batch_cb, &b),
			 0);
	ck_assert_int_eq(atomic_load(&F->requests), 2);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(b.lasts[i], 1);
		ck_assert_uint_eq(b.len[i], 2);
		ck_assert_mem_eq(b.data[i], keys[i], 2);
	}
	batch_sink_free(&b);
	free(names);
	free(keys);
}
END_TEST

/* ---- Tests: pool, retries, timeouts ------------------------------------- */

START_TEST(test_retry_broken)
{
	uint8_t buf[8], *data = pattern(3 * PROTO_MAX_BODY_LEN, 30);
	struct dribble d = { data, 3 * PROTO_MAX_BODY_LEN, 0, 1 << 20, -1 };
	size_t got;
	int rc;

	ck_assert_int_eq(strata_object_put_buf(C, "data", "k", NULL, "payload",
					       7, NULL), 0);
	/* The server drops the connection on receiving the request: a get
	 * is repeated on a fresh connection. */
	atomic_store(&F->drop_next, 1);
	ck_assert_int_eq(strata_object_get_buf(C, "data", "k", 0, 7, buf,
					       sizeof(buf), &got, NULL), 0);
	ck_assert_mem_eq(buf, "payload", 7);
	ck_assert_int_eq(atomic_load(&F->accepted), 2);
	/* A buffer put can be replayed. */
	atomic_store(&F->drop_next, 1);
	ck_assert_int_eq(strata_object_put_buf(C, "data", "k2", NULL, data,
					       2 * PROTO_MAX_BODY_LEN, NULL), 0);
	ck_assert_int_eq(atomic_load(&F->accepted), 3);
	/* A stream cannot: once consumed, the failure is the caller's. */
	atomic_store(&F->drop_next, 1);
	rc = strata_object_put(C, "data", "k3", NULL, dribble_read, &d, NULL);
	ck_assert(rc == -ECONNRESET || rc == -EPIPE);
	ck_assert_int_eq(atomic_load(&F->accepted), 3);
	/* Twice in a row: retried once only. */
	atomic_store(&F->drop_next, 2);
	rc = strata_object_get_buf(C, "data", "k", 0, 7, buf, sizeof(buf),
				   &got, NULL);
	ck_assert_int_eq(rc, -ECONNRESET);
	ck_assert_int_eq(strata_object_get_buf(C, "data", "k", 0, 7, buf,
					       sizeof(buf), &got, NULL), 0);
	free(data);
}
END_TEST

START_TEST(test_idle_closed)
{
	uint8_t buf[8];
	size_t got;

	/* The server closes each connection after answering; the pool sees
	 * it before reuse and opens a new one. */
	atomic_store(&F->close_idle, true);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(strata_object_put_buf(C, "data", "k", NULL,
						       "abc", 3, NULL), 0);
		ck_assert_int_eq(strata_object_get_buf(C, "data", "k", 0, 3,
						       buf, sizeof(buf), &got,
						       NULL), 0);
	}
	ck_assert_int_ge(atomic_load(&F->accepted), 10);
}
END_TEST

START_TEST(test_timeout)
{
	struct strata_config cfg = config();
	strata_client *c;
	uint8_t buf[8];
	size_t got;

	cfg.timeout_ms = 300;
	ck_assert_int_eq(strata_client_new(&cfg, &c), 0);
	atomic_store(&F->stall, true);
	ck_assert_int_eq(strata_object_get_buf(c, "data", "k", 0, 3, buf,
					       sizeof(buf), &got, NULL),
			 -ETIMEDOUT);
	atomic_store(&F->stall, false);
	ck_assert_int_eq(strata_object_get_buf(c, "data", "k", 0, 3, buf,
					       sizeof(buf), &got, NULL),
			 STRATA_ENOOBJECT);
	strata_client_free(c);
}
END_TEST

/* A server that answers nonsense, each kind in turn: every call fails
 * with an error of its own (not the 5 s timeout, not a crash), and the
 * next call, on a new connection, works. */
START_TEST(test_hostile_server)
{
	const char *keys[] = { "k", "k" };
	uint8_t buf[64];
	struct strata_stat *st = NULL;
	strata_list *it = NULL;
	const struct strata_list_entry *le;
	struct batch_sink b;
	size_t got;

	ck_assert_int_eq(strata_object_put_buf(C, "data", "k", NULL,
					       "0123456789", 10, NULL), 0);
	for (int evil = EVIL_WRONG_ID; evil < EVIL_MAX; evil++) {
		uint64_t t0 = tu_now_ns();
		int rc;

		atomic_store(&F->evil, evil);
		switch (evil) {
		case EVIL_STAT_COUNT:
			rc = strata_object_stat(C, "data", "k", &st);
			break;
		case EVIL_LIST_COUNT:
		case EVIL_LIST_RECORD:
			rc = strata_list_new(C, "data", NULL, &it);
			while (!rc && (rc = strata_list_next(it, &le)) == 1)
				;
			strata_list_free(it);
			it = NULL;
			break;
		case EVIL_BATCH_INDEX:
		case EVIL_BATCH_TWICE:
		case EVIL_BATCH_SIZE:
		case EVIL_BATCH_MISSING:
			batch_sink_init(&b, 2);
			rc = strata_batch_get(C, "data", keys, 2, batch_cb, &b);
			batch_sink_free(&b);
			break;
		default:
			/* A buffer of just the announced length, too: the
			 * bytes past it must not go unnoticed. */
			rc = strata_object_get_buf(C, "data", "k", 0,
						   STRATA_TO_END, buf,
						   evil == EVIL_GET_LONG ? 10 :
						   sizeof(buf), &got, NULL);
			break;
		}
		ck_assert_msg(rc < 0, "evil %d: %d", evil, rc);
		ck_assert_msg(evil == EVIL_CUT || rc != -ETIMEDOUT,
			      "evil %d: timed out", evil);
		ck_assert_msg(evil == EVIL_CUT ||
			      tu_now_ns() - t0 < 2000000000ull,
			      "evil %d: took %llu ms", evil,
			      (unsigned long long)((tu_now_ns() - t0) / 1000000));
		ck_assert_ptr_null(st);
		ck_assert_int_eq(strata_object_get_buf(C, "data", "k", 0,
						       STRATA_TO_END, buf,
						       sizeof(buf), &got,
						       NULL), 0);
		ck_assert_uint_eq(got, 10);
	}
}
END_TEST

struct worker {
	int id;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 20; i++) {
		char key[32];
		size_t len = 1000 + (size_t)(w->id * 97 + i * 13) % 200000, got;
		uint8_t *d = pattern(len, (uint64_t)(w->id * 1000 + i));
		uint8_t *b = malloc(len);

		snprintf(key, sizeof(key), "t%d/%d", w->id, i);
		if (strata_object_put_buf(C, "data", key, NULL, d, len, NULL) ||
		    strata_object_get_buf(C, "data", key, 0, STRATA_TO_END, b,
					  len, &got, NULL) ||
		    got != len || memcmp(b, d, len))
			w->failures++;
		free(d);
		free(b);
	}
	return NULL;
}

START_TEST(test_threads)
{
	struct strata_config cfg = config();
	pthread_t t[8];
	struct worker w[8];

	strata_client_free(C);
	cfg.pool_size = 3;
	ck_assert_int_eq(strata_client_new(&cfg, &C), 0);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ .id = i };
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main,
						&w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
	/* The first client's one connection, then at most three. */
	ck_assert_int_le(atomic_load(&F->accepted), 4);
	ck_assert_int_le(atomic_load(&F->max_live), 4);
}
END_TEST

/*
 * An epoch iterator fetches its first piece alone, so that it comes at the
 * connection's whole speed (many loader workers start at once), and the
 * rest of its window in parallel after that.
 */
/* Drive one strata_conn get to its end with poll(), as an event loop
 * would; counts the waits. */
static int nb_get(strata_conn *a, const char *bucket, const char *key,
		  uint64_t off, uint64_t len, void *buf, size_t cap,
		  size_t *got, struct strata_get_result *res, int *waits)
{
	int rc = strata_conn_get_start(a, bucket, key, off, len, buf, cap);

	if (rc)
		return rc;
	for (;;) {
		struct pollfd p = { .fd = strata_conn_fd(a) };
		short ev = 0;

		rc = strata_conn_get_step(a, &ev, got, res);
		if (rc != -EAGAIN)
			return rc;
		ck_assert(ev == POLLIN || ev == POLLOUT);
		p.events = ev;
		ck_assert_int_eq(poll(&p, 1, 5000), 1);
		if (waits)
			(*waits)++;
	}
}

START_TEST(test_conn_nb)
{
	size_t len = 300000, got = 0;
	uint8_t *data = pattern(len, 21), *buf = malloc(len);
	struct strata_get_result res;
	strata_conn *a, *b;
	short ev;
	int waits = 0;

	F->get_frame = 7000;		/* many frames per get */
	ck_assert_int_eq(strata_object_put_buf(C, "data", "big", NULL, data,
					       len, NULL), 0);
	ck_assert_int_eq(strata_object_put_buf(C, "data", "corrupt", NULL,
					       data, len, NULL), 0);
	ck_assert_int_eq(strata_object_put_buf(C, "data", "empty", NULL, "",
					       0, NULL), 0);
	ck_assert_int_eq(strata_conn_open(C, &a), 0);
	ck_assert_int_ge(strata_conn_fd(a), 0);
	/* Nothing under way. */
	ck_assert_int_eq(strata_conn_get_step(a, &ev, &got, NULL), -EINVAL);

	/* A whole object over many frames; a server that takes its time
	 * makes the get wait for the socket. */
	atomic_store(&F->get_delay_ms, 20);
	ck_assert_int_eq(nb_get(a, "data", "big", 0, STRATA_TO_END, buf, len,
				&got, &res, &waits), 0);
	atomic_store(&F->get_delay_ms, 0);
	ck_assert_uint_eq(got, len);
	ck_assert_mem_eq(buf, data, len);
	ck_assert_uint_eq(res.size, len);
	ck_assert_uint_eq(res.length, len);
	ck_assert_int_ge(waits, 1);
	/* A range, and an empty object. */
	ck_assert_int_eq(nb_get(a, "data", "big", 7001, 20000, buf, len, &got,
				&res, NULL), 0);
	ck_assert_uint_eq(got, 20000);
	ck_assert_uint_eq(res.offset, 7001);
	ck_assert_mem_eq(buf, data + 7001, 20000);
	got = 99;
	ck_assert_int_eq(nb_get(a, "data", "empty", 0, STRATA_TO_END, buf,
				len, &got, NULL, NULL), 0);
	ck_assert_uint_eq(got, 0);
	/* The server's errors, before the body and part way, end the get
	 * and leave the connection usable. */
	ck_assert_int_eq(nb_get(a, "data", "missing", 0, STRATA_TO_END, buf,
				len, &got, NULL, NULL), STRATA_ENOOBJECT);
	ck_assert_int_eq(nb_get(a, "nobucket", "k", 0, STRATA_TO_END, buf,
				len, &got, NULL, NULL), STRATA_ENOBUCKET);
	ck_assert_int_eq(nb_get(a, "data", "corrupt", 0, STRATA_TO_END, buf,
				len, &got, NULL, NULL), STRATA_ECORRUPT);
	/* One get at a time. */
	ck_assert_int_eq(strata_conn_get_start(a, "data", "big", 0, 10, buf,
					       len), 0);
	ck_assert_int_eq(strata_conn_get_start(a, "data", "big", 0, 10, buf,
					       len), -EBUSY);
	ck_assert_int_eq(nb_get(a, "data", "big", 0, 10, buf, len, &got,
				NULL, NULL), -EBUSY);
	for (;;) {
		struct pollfd p = { .fd = strata_conn_fd(a) };
		int rc = strata_conn_get_step(a, &p.events, &got, NULL);

		if (rc != -EAGAIN) {
			ck_assert_int_eq(rc, 0);
			break;
		}
		ck_assert_int_eq(poll(&p, 1, 5000), 1);
	}
	ck_assert_uint_eq(got, 10);
	/* Misuse. */
	ck_assert_int_eq(strata_conn_get_start(a, NULL, "k", 0, 1, buf, 1),
			 -EINVAL);
	ck_assert_int_eq(strata_conn_get_start(a, "data", "k", 0, 1, NULL, 1),
			 -EINVAL);
	ck_assert_int_eq(strata_conn_open(NULL, &b), -EINVAL);
	ck_assert_int_eq(strata_conn_fd(NULL), -EINVAL);
	/* A buffer too small breaks the connection. */
	ck_assert_int_eq(nb_get(a, "data", "big", 0, STRATA_TO_END, buf, 100,
				&got, &res, NULL), -ENOBUFS);
	ck_assert_uint_eq(res.length, len);
	ck_assert_int_eq(strata_conn_get_start(a, "data", "big", 0, 1, buf,
					       len), -ENOTCONN);
	strata_conn_close(a);

	/* A GOAWAY ahead of an answer: that get ends well, the next is
	 * refused at once (open another connection). */
	ck_assert_int_eq(strata_conn_open(C, &a), 0);
	atomic_store(&F->goaway_next, true);
	ck_assert_int_eq(nb_get(a, "data", "big", 5, 50, buf, len, &got, NULL,
				NULL), 0);
	ck_assert_uint_eq(got, 50);
	ck_assert_mem_eq(buf, data + 5, 50);
	ck_assert_int_eq(strata_conn_get_start(a, "data", "big", 0, 1, buf,
					       len), STRATA_ECLOSING);
	strata_conn_close(a);

	/* A server that closes after each answer: the next get on that
	 * connection fails, and a new connection works. */
	ck_assert_int_eq(strata_conn_open(C, &b), 0);
	atomic_store(&F->close_idle, true);
	ck_assert_int_eq(nb_get(b, "data", "big", 0, 100, buf, len, &got,
				NULL, NULL), 0);
	ck_assert_int_lt(nb_get(b, "data", "big", 0, 100, buf, len, &got,
				NULL, NULL), 0);
	strata_conn_close(b);
	ck_assert_int_eq(strata_conn_open(C, &b), 0);
	ck_assert_int_eq(nb_get(b, "data", "big", 0, 100, buf, len, &got,
				NULL, NULL), 0);
	ck_assert_mem_eq(buf, data, 100);
	strata_conn_close(b);
	strata_conn_close(NULL);
	free(buf);
	free(data);
}
END_TEST

START_TEST(test_epoch_first_piece_alone)
{
	struct strata_epoch_opts o = { .prefetch = 4, .no_shuffle = true };
	struct strata_shard sh;
	strata_dataset *ds;
	strata_epoch *e;
	uint8_t *data = pattern(100000, 7);
	char key[32];
	int n = 0, rc;

	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "shard-%02d", i);
		ck_assert_int_eq(strata_object_put_buf(C, "data", key, NULL,
						       data, 100000, NULL), 0);
	}
	ck_assert_int_eq(strata_dataset_open(C, "data", "shard-", &ds), 0);
	ck_assert_uint_eq(strata_dataset_count(ds), 8);
	atomic_store(&F->get_delay_ms, 100);
	ck_assert_int_eq(strata_epoch_new(C, ds, &o, &e), 0);
	while ((rc = strata_epoch_next(e, &sh)) == 1) {
		ck_assert_uint_eq(sh.length, 100000);
		ck_assert_mem_eq(sh.data, data, 100000);
		strata_epoch_buf_free(e, sh.data, sh.length);
		n++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(n, 8);
	strata_epoch_free(e);
	strata_dataset_free(ds);
	free(data);
	/* Alone until the first was in, then several at once (the pool
	 * has 4 connections, the window is 4 pieces). */
	ck_assert_int_eq(atomic_load(&F->gets_max_first), 1);
	ck_assert_int_ge(atomic_load(&F->gets_max), 2);
}
END_TEST

/*
 * With pieces over 1 MiB, an epoch's first shard comes in growing pieces
 * (1 MiB, 2 MiB, ... up to piece_size) so that a parser can start on its
 * first MiB; the other shards in pieces of piece_size.  Every shard's
 * pieces are contiguous, marked last at its end, and hold its bytes.
 * Buffers of 2 MiB or more (the default allocator's) are 2 MiB aligned,
 * for transparent huge pages.
 */
static void epoch_pieces(uint64_t piece, const uint64_t *want, size_t nwant,
			 size_t size, const uint8_t *data)
{
	struct strata_epoch_opts o = { .prefetch = 2, .no_shuffle = true,
				       .piece_size = piece };
	struct strata_shard sh;
	strata_dataset *ds;
	strata_epoch *e;
	uint64_t off = 0;
	size_t n = 0;
	int rc;

	ck_assert_int_eq(strata_dataset_open(C, "data", "ramp-", &ds), 0);
	ck_assert_int_eq(strata_epoch_new(C, ds, &o, &e), 0);
	while ((rc = strata_epoch_next(e, &sh)) == 1) {
		ck_assert_uint_lt(n, nwant);
		ck_assert_uint_eq(sh.seq, n);
		ck_assert_uint_eq(sh.length, want[n]);
		ck_assert_uint_eq(sh.offset, off);
		ck_assert_mem_eq(sh.data, data + off, sh.length);
		if (sh.length >= (2u << 20))
			ck_assert_uint_eq((uintptr_t)sh.data % (2u << 20), 0);
		off += sh.length;
		ck_assert(sh.last == (off == size));
		if (sh.last)
			off = 0;
		strata_epoch_buf_free(e, sh.data, sh.length);
		n++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(n, nwant);
	strata_epoch_free(e);
	strata_dataset_free(ds);
}

START_TEST(test_epoch_ramp)
{
	const uint64_t M = 1u << 20;
	size_t size = 5 * M + 100;
	uint8_t *data = pattern(size, 9);
	char key[32];

	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "ramp-%d", i);
		ck_assert_int_eq(strata_object_put_buf(C, "data", key, NULL,
						       data, size, NULL), 0);
	}
	/* 4 MiB pieces: the first shard 1 + 2 + the rest (under 4 MiB),
	 * the others 4 MiB + the rest. */
	epoch_pieces(4 * M, (const uint64_t[]){ M, 2 * M, 2 * M + 100,
						4 * M, M + 100,
						4 * M, M + 100 },
		     7, size, data);
	/* 2 MiB: 1, then 2 MiB pieces. */
	epoch_pieces(2 * M, (const uint64_t[]){ M, 2 * M, 2 * M, 100,
						2 * M, 2 * M, M + 100,
						2 * M, 2 * M, M + 100 },
		     10, size, data);
	/* 1 MiB pieces and less: no ramp. */
	epoch_pieces(M, (const uint64_t[]){ M, M, M, M, M, 100,
					    M, M, M, M, M, 100,
					    M, M, M, M, M, 100 },
		     18, size, data);
	/* Whole shards, and pieces larger than the shards. */
	epoch_pieces(0, (const uint64_t[]){ size, size, size }, 3, size, data);
	epoch_pieces(64 * M, (const uint64_t[]){ M, 2 * M, 2 * M + 100,
						 size, size },
		     5, size, data);
	free(data);
}
END_TEST

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * strata_epoch_wait: 0 while the next piece is on its way, 1 once it is in
 * (next() then does not wait) and at the end of the plan.
 */
START_TEST(test_epoch_wait)
{
	struct strata_epoch_opts o = { .prefetch = 1, .no_shuffle = true };
	struct strata_shard sh;
	strata_dataset *ds;
	strata_epoch *e;
	uint8_t *data = pattern(1000, 3);
	uint64_t t0;

	ck_assert_int_eq(strata_epoch_wait(NULL, 0), -EINVAL);
	for (int i = 0; i < 2; i++) {
		char key[32];

		snprintf(key, sizeof(key), "w-%d", i);
		ck_assert_int_eq(strata_object_put_buf(C, "data", key, NULL,
						       data, 1000, NULL), 0);
	}
	ck_assert_int_eq(strata_dataset_open(C, "data", "w-", &ds), 0);
	atomic_store(&F->get_delay_ms, 400);
	ck_assert_int_eq(strata_epoch_new(C, ds, &o, &e), 0);
	ck_assert_int_eq(strata_epoch_wait(e, 0), 0);
	ck_assert_int_eq(strata_epoch_wait(e, 50), 0);
	ck_assert_int_eq(strata_epoch_wait(e, 10000), 1);
	ck_assert_int_eq(strata_epoch_wait(e, 0), 1);	/* still there */
	t0 = mono_ms();
	ck_assert_int_eq(strata_epoch_next(e, &sh), 1);
	ck_assert_uint_lt(mono_ms() - t0, 100);		/* did not wait */
	ck_assert_mem_eq(sh.data, data, 1000);
	strata_epoch_buf_free(e, sh.data, sh.length);
	ck_assert_int_eq(strata_epoch_wait(e, 10000), 1);
	ck_assert_int_eq(strata_epoch_next(e, &sh), 1);
	strata_epoch_buf_free(e, sh.data, sh.length);
	ck_assert_int_eq(strata_epoch_wait(e, 0), 1);	/* the end */
	ck_assert_int_eq(strata_epoch_next(e, &sh), 0);
	strata_epoch_free(e);
	strata_dataset_free(ds);
	free(data);
}
END_TEST

/*
 * An iterator freed while its fetcher waits on the prestaging hint starts
 * no GET after it: the free waits for the hint only.
 */
START_TEST(test_epoch_free_during_hint)
{
	struct strata_epoch_opts o = { .prefetch = 1, .no_shuffle = true };
	strata_dataset *ds;
	strata_epoch *e;
	uint8_t *data = pattern(1000, 5);
	int gets, after;

	ck_assert_int_eq(strata_object_put_buf(C, "data", "h-0", NULL, data,
					       1000, NULL), 0);
	ck_assert_int_eq(strata_dataset_open(C, "data", "h-", &ds), 0);
	atomic_store(&F->hint_delay_ms, 400);
	gets = atomic_load(&F->gets_done);
	ck_assert_int_eq(strata_epoch_new(C, ds, &o, &e), 0);
	usleep(100 * 1000);		/* the hint is on its way */
	strata_epoch_free(e);
	after = atomic_load(&F->gets_done);
	ck_assert_int_eq(after, gets);
	strata_dataset_free(ds);
	free(data);
}
END_TEST

/* An epoch of "x-*" on c reads every piece whole: after a cancel, c's
 * pool serves new requests. */
static void epoch_reads_all(strata_client *c, strata_dataset *ds,
			    const uint8_t *data, size_t len)
{
	struct strata_epoch_opts o = { .prefetch = 2, .no_shuffle = true };
	struct strata_shard sh;
	strata_epoch *e;
	size_t n = 0;
	int rc;

	ck_assert_int_eq(strata_epoch_new(c, ds, &o, &e), 0);
	while ((rc = strata_epoch_next(e, &sh)) == 1) {
		ck_assert_uint_eq(sh.length, len);
		ck_assert_mem_eq(sh.data, data, len);
		strata_epoch_buf_free(e, sh.data, sh.length);
		n++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(n, strata_dataset_count(ds));
	strata_epoch_free(e);
}

/* Start an epoch on c, let its fetches hang, free it: in well under the
 * client's timeout_ms (30 s). */
static void epoch_free_hung(strata_client *c, strata_dataset *ds,
			    bool no_hint)
{
	struct strata_epoch_opts o = {
		.prefetch = 2, .no_shuffle = true, .no_hint = no_hint,
	};
	strata_epoch *e;
	uint64_t t0;

	ck_assert_int_eq(strata_epoch_new(c, ds, &o, &e), 0);
	usleep(300 * 1000);		/* the requests are on their way */
	ck_assert_int_eq(strata_epoch_wait(e, 0), 0);
	t0 = mono_ms();
	strata_epoch_free(e);
	ck_assert_uint_lt(mono_ms() - t0, 2000);
}

/*
 * strata_epoch_free() on a node that accepts requests and never answers
 * (as a SIGSTOPped stratad): the fetch threads' requests are cut short
 * (their sockets shut down), whether a HINT, a GET, a TLS handshake or a
 * wait for a pool slot hangs, instead of each running to timeout_ms.  The
 * client then works: the cut connections were not pooled again.
 */
START_TEST(test_epoch_free_hung_node)
{
	struct strata_config cfg = config();
	strata_client *c, *c1;
	strata_dataset *ds;
	uint8_t *data = pattern(5000, 9), buf[5000];
	uint64_t t0;
	size_t got;
	int accepted;

	for (int i = 0; i < 4; i++) {
		char key[32];

		snprintf(key, sizeof(key), "x-%d", i);
		ck_assert_int_eq(strata_object_put_buf(C, "data", key, NULL,
						       data, 5000, NULL), 0);
	}
	ck_assert_int_eq(strata_dataset_open(C, "data", "x-", &ds), 0);
	cfg.timeout_ms = 30000;
	ck_assert_int_eq(strata_client_new(&cfg, &c), 0);

	/* The first request, a HINT, hangs; then a GET. */
	atomic_store(&F->stall, true);
	epoch_free_hung(c, ds, false);
	epoch_free_hung(c, ds, true);
	atomic_store(&F->stall, false);
	ck_assert_int_eq(strata_object_get_buf(c, "data", "x-0", 0, 5000, buf,
					       sizeof(buf), &got, NULL), 0);
	ck_assert_mem_eq(buf, data, 5000);
	epoch_reads_all(c, ds, data, 5000);

	/* The node drops the GET, and the new connection's TLS handshake
	 * hangs. */
	accepted = atomic_load(&F->accepted);
	atomic_store(&F->stall_tls, true);
	atomic_store(&F->drop_next, 1);
	epoch_free_hung(c, ds, true);
	ck_assert_int_gt(atomic_load(&F->accepted), accepted);
	atomic_store(&F->stall_tls, false);
	atomic_store(&F->drop_next, 0);
	epoch_reads_all(c, ds, data, 5000);
	strata_client_free(c);

	/* The only pool slot is held by another thread's hung GET (5 s):
	 * the fetch thread waiting for it does not wait it out. */
	cfg.timeout_ms = 5000;
	cfg.pool_size = 1;
	ck_assert_int_eq(strata_client_new(&cfg, &c1), 0);
	atomic_store(&F->stall, true);
	t0 = mono_ms();
	{
		struct strata_epoch_opts o = { .no_hint = true };
		strata_epoch *e, *e2;

		/* e's fetch thread takes the slot and hangs; e2's waits. */
		ck_assert_int_eq(strata_epoch_new(c1, ds, &o, &e), 0);
		usleep(200 * 1000);
		ck_assert_int_eq(strata_epoch_new(c1, ds, &o, &e2), 0);
		usleep(200 * 1000);
		strata_epoch_free(e2);
		ck_assert_uint_lt(mono_ms() - t0, 2500);
		strata_epoch_free(e);
		ck_assert_uint_lt(mono_ms() - t0, 3000);
	}
	atomic_store(&F->stall, false);
	epoch_reads_all(c1, ds, data, 5000);
	strata_client_free(c1);
	strata_dataset_free(ds);
	free(data);
}
END_TEST

/* ---- strata_interrupt_set() ---- */

static volatile sig_atomic_t intr_flag;	/* SIGUSR1 came */
static volatile sig_atomic_t intr_stop;	/* the hook says stop */

static void intr_handler(int sig)
{
	(void)sig;
	intr_flag = 1;
}

static int intr_hook(void)
{
	return intr_flag && intr_stop;
}

struct intr_kick {
	pthread_t target;
	unsigned after_ms;
	pthread_t thr;
};

static void *intr_kick_main(void *arg)
{
	struct intr_kick *k = arg;

	usleep(k->after_ms * 1000);
	pthread_kill(k->target, SIGUSR1);
	return NULL;
}

/* SIGUSR1 to the calling thread after_ms from now. */
static void intr_kick_start(struct intr_kick *k, unsigned after_ms)
{
	intr_flag = 0;
	k->target = pthread_self();
	k->after_ms = after_ms;
	ck_assert_int_eq(pthread_create(&k->thr, NULL, intr_kick_main, k), 0);
}

static void *hung_get_main(void *arg)
{
	uint8_t buf[8];
	size_t got;

	return (void *)(intptr_t)strata_object_get_buf(arg, "data", "k", 0, 3,
							buf, sizeof(buf), &got,
							NULL);
}

/* A signal cuts a call on a node that hangs short when the thread's hook
 * says so (-EINTR, at once rather than after timeout_ms), whatever the
 * call waits for: an answer, a TLS handshake, a free connection of the
 * pool.  A hook that says "go on" lets the wait go on, and the client is
 * sound afterwards. */
START_TEST(test_interrupt)
{
	struct sigaction sa = { .sa_handler = intr_handler };
	struct strata_config cfg = config();
	struct intr_kick k;
	strata_client *c, *c2;
	pthread_t other;
	uint8_t buf[8];
	uint64_t t0;
	size_t got;
	void *orc;

	ck_assert_int_eq(strata_object_put_buf(C, "data", "k", NULL, "abc", 3,
					       NULL), 0);
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	cfg.timeout_ms = 30000;
	ck_assert_int_eq(strata_client_new(&cfg, &c), 0);
	strata_interrupt_set(intr_hook);
	intr_stop = 1;

	/* The answer never comes. */
	atomic_store(&F->stall, true);
	t0 = mono_ms();
	intr_kick_start(&k, 200);
	ck_assert_int_eq(strata_object_get_buf(c, "data", "k", 0, 3, buf,
					       sizeof(buf), &got, NULL),
			 -EINTR);
	ck_assert_uint_lt(mono_ms() - t0, 3000);
	pthread_join(k.thr, NULL);
	atomic_store(&F->stall, false);
	ck_assert_int_eq(strata_object_get_buf(c, "data", "k", 0, 3, buf,
					       sizeof(buf), &got, NULL), 0);
	ck_assert_mem_eq(buf, "abc", 3);

	/* The TLS handshake of a new client never ends. */
	atomic_store(&F->stall_tls, true);
	t0 = mono_ms();
	intr_kick_start(&k, 200);
	ck_assert_int_eq(strata_client_new(&cfg, &c2), -EINTR);
	ck_assert_uint_lt(mono_ms() - t0, 3000);
	pthread_join(k.thr, NULL);
	atomic_store(&F->stall_tls, false);

	/* The pool's only connection hangs on another thread (no hook
	 * there: it waits its 2 s out). */
	cfg.pool_size = 1;
	cfg.timeout_ms = 2000;
	ck_assert_int_eq(strata_client_new(&cfg, &c2), 0);
	atomic_store(&F->stall, true);
	ck_assert_int_eq(pthread_create(&other, NULL, hung_get_main, c2), 0);
	usleep(200 * 1000);
	t0 = mono_ms();
	intr_kick_start(&k, 200);
	ck_assert_int_eq(strata_object_get_buf(c2, "data", "k", 0, 3, buf,
					       sizeof(buf), &got, NULL),
			 -EINTR);
	ck_assert_uint_lt(mono_ms() - t0, 1500);
	pthread_join(k.thr, NULL);
	pthread_join(other, &orc);
	ck_assert_int_eq((int)(intptr_t)orc, -ETIMEDOUT);

	/* A hook that says "go on": the call waits its timeout out. */
	intr_stop = 0;
	t0 = mono_ms();
	intr_kick_start(&k, 200);
	ck_assert_int_eq(strata_object_get_buf(c2, "data", "k", 0, 3, buf,
					       sizeof(buf), &got, NULL),
			 -ETIMEDOUT);
	ck_assert_uint_ge(mono_ms() - t0, 1900);
	ck_assert(intr_flag);
	pthread_join(k.thr, NULL);
	atomic_store(&F->stall, false);
	strata_interrupt_set(NULL);
	ck_assert_int_eq(strata_object_get_buf(c2, "data", "k", 0, 3, buf,
					       sizeof(buf), &got, NULL), 0);
	ck_assert_int_eq(strata_object_get_buf(c, "data", "k", 0, 3, buf,
					       sizeof(buf), &got, NULL), 0);
	strata_client_free(c2);
	strata_client_free(c);
}
END_TEST

struct intr_storm {
	pthread_t target;
	atomic_bool stop;
	pthread_t thr;
};

static void *intr_storm_main(void *arg)
{
	struct intr_storm *k = arg;

	while (!atomic_load(&k->stop)) {
		usleep(50 * 1000);
		pthread_kill(k->target, SIGUSR1);
	}
	return NULL;
}

/* Signals more frequent than timeout_ms (a profiler's, an interval
 * timer's), with no hook or one that says go on, do not keep a call on a
 * node that hangs waiting: it times out about when it would without them.
 * (Each interrupted recv() used to be called again, restarting the
 * socket's SO_RCVTIMEO: it waited as long as the signals came.) */
START_TEST(test_signals_keep_timeout)
{
	struct sigaction sa = { .sa_handler = intr_handler };
	struct strata_config cfg = config();
	struct intr_storm k = { .target = pthread_self() };
	strata_client *c;
	uint8_t buf[8];
	uint64_t t0, took[2];
	size_t got;

	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	cfg.timeout_ms = 500;
	ck_assert_int_eq(strata_client_new(&cfg, &c), 0);
	atomic_store(&F->stall, true);
	ck_assert_int_eq(pthread_create(&k.thr, NULL, intr_storm_main, &k), 0);
	for (int i = 0; i < 2; i++) {
		strata_interrupt_set(i ? intr_hook : NULL);
		intr_stop = 0;
		intr_flag = 0;
		t0 = mono_ms();
		ck_assert_int_eq(strata_object_get_buf(c, "data", "k", 0, 3,
						       buf, sizeof(buf), &got,
						       NULL), -ETIMEDOUT);
		took[i] = mono_ms() - t0;
		ck_assert(intr_flag);
	}
	atomic_store(&k.stop, true);
	pthread_join(k.thr, NULL);
	ck_assert_msg(took[0] < 1500 && took[1] < 1500,
		      "timed out after %llu and %llu ms (timeout_ms 500)",
		      (unsigned long long)took[0],
		      (unsigned long long)took[1]);
	atomic_store(&F->stall, false);
	strata_interrupt_set(NULL);
	ck_assert_int_eq(strata_object_get_buf(c, "data", "k", 0, 3, buf,
					       sizeof(buf), &got, NULL),
			 STRATA_ENOOBJECT);
	strata_client_free(c);
}
END_TEST

/* ---- strata-bench's tar sample count (client/tarcount.c) ---- */

/* A ustar header for a regular member: name, size, its checksum. */
static void tar_hdr(uint8_t h[512], const char *name, uint64_t size)
{
	unsigned sum = 0;

	memset(h, 0, 512);
	memcpy(h, name, strlen(name));
	memcpy(h + 100, "0000644", 7);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

/* A truncated member's name is shown escaped: it comes from the shard,
 * and strata-bench prints the message on the terminal. */
/* Keys from the node in strata-bench's error lines: no escape sequence
 * reaches the terminal, no line is split, and a long one is cut. */
START_TEST(test_args_escape)
{
	char out[16], big[64];

	ck_assert_str_eq(args_escape("a\x1b[2J\n\\\x7f\t\xc3\xa9", big,
				     sizeof(big)),
			 "a\\x1b[2J\\n\\\\\\x7f\\t\xc3\xa9");
	ck_assert_str_eq(args_escape("\xc3\xa9t\xc3\xa9", out, sizeof(out)),
			 "\xc3\xa9t\xc3\xa9");
	ck_assert_str_eq(args_escape("0123456789abcdefgh", out, sizeof(out)),
			 "0123456789abcde");
	ck_assert_str_eq(args_escape("\x01", out, 4), "");
}
END_TEST

START_TEST(test_tar_truncated_name_escaped)
{
	struct tar_count t;
	uint8_t h[512 + 10] = { 0 };

	tar_hdr(h, "s1\x1b]0;owned\x07\n.jpg", 1000);
	tar_start(&t, 0);
	tar_feed(&t, h, sizeof(h));
	ck_assert_uint_eq(t.samples, 1);
	ck_assert_str_eq(t.err, "");
	tar_finish(&t);
	ck_assert_str_eq(t.err, "member s1\\x1b]0;owned\\x07\\n.jpg runs "
			 "past the end (truncated: 990 of its bytes missing)");

	/* Printable names as they are; '\\' doubled. */
	tar_hdr(h, "d\\x/\xc3\xa9t\xc3\xa9.txt", 600);
	tar_start(&t, 0);
	tar_feed(&t, h, sizeof(h));
	tar_finish(&t);
	ck_assert_str_eq(t.err, "member d\\\\x/\xc3\xa9t\xc3\xa9.txt runs "
			 "past the end (truncated: 590 of its bytes missing)");
}
END_TEST

static Suite *client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("client");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_connect_errors);
	tcase_add_test(tc, test_ca_file_not_regular);
	tcase_add_test(tc, test_connect_refused);
	tcase_add_test(tc, test_config_from_env);
	tcase_add_test(tc, test_buckets);
	tcase_add_test(tc, test_put_get_sizes);
	tcase_add_test(tc, test_get_ranges);
	tcase_add_test(tc, test_get_abort_and_corrupt);
	tcase_add_test(tc, test_conn_nb);
	tcase_add_test(tc, test_put_stream);
	tcase_add_test(tc, test_put_refused_early);
	tcase_add_test(tc, test_put_get_fd);
	tcase_add_test(tc, test_stat_delete);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_batch);
	tcase_add_test(tc, test_batch_split);
	tcase_add_test(tc, test_retry_broken);
	tcase_add_test(tc, test_idle_closed);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_hostile_server);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_epoch_first_piece_alone);
	tcase_add_test(tc, test_epoch_ramp);
	tcase_add_test(tc, test_epoch_wait);
	tcase_add_test(tc, test_epoch_free_during_hint);
	tcase_add_test(tc, test_epoch_free_hung_node);
	tcase_add_test(tc, test_interrupt);
	tcase_add_test(tc, test_get_alloc);
	tcase_add_test(tc, test_signals_keep_timeout);
	suite_add_tcase(s, tc);

	/* Parsers of the programs: no fake server needed. */
	tc = tcase_create("parsers");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_tar_truncated_name_escaped);
	tcase_add_test(tc, test_args_escape);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(client_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
