// SPDX-License-Identifier: Apache-2.0
/*
 * libstrata core: configuration, the client and its connection pool, the
 * connection handshake (HELLO + AUTH) and framing.  The requests themselves
 * live in objects.c.
 *
 * Pool invariants (all under c->lock):
 *   - nconns counts every connection that exists or is being opened, and
 *     never exceeds pool_size;
 *   - idle holds the connections no thread uses, each in state IDLE;
 *   - a thread that finds no idle connection and nconns == pool_size waits
 *     on c->cond, which is signalled whenever a connection is handed back
 *     or a slot is freed.
 * Connections are opened and checked outside the lock: opening one takes a
 * TCP + TLS + HELLO + AUTH round trip or three, which must not stall the
 * threads that only want to hand one back.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "client_int.h"
#include "tls.h"
#include "banned.h"

#define DEFAULT_POOL 4
#define DEFAULT_TIMEOUT_MS 30000
#define POOL_INTR_MS 100	/* strata_interrupt_set(): pool waits */
#define AGENT "libstrata/" STRATA_VERSION_STRING

struct strata_client {
	char *host;
	char *port;
	char *access_key;
	char *secret;
	unsigned pool_size;
	unsigned timeout_ms;
	struct tls_ctx *tls;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct conn *idle;
	unsigned nconns;
};

/* ---- Configuration ----------------------------------------------------- */

static void errf(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int parse_uint(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT_MAX)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* The config file's path, or NULL when there is no home to look in. */
static char *config_path(void)
{
	const char *p = getenv("STRATA_CONFIG");
	char *out = NULL;

	if (p && *p)
		return strdup(p);
	p = getenv("XDG_CONFIG_HOME");
	if (p && *p) {
		if (asprintf(&out, "%s/strata/config", p) < 0)
			return NULL;
		return out;
	}
	p = getenv("HOME");
	if (p && *p && asprintf(&out, "%s/.config/strata/config", p) < 0)
		return NULL;
	return out;
}

/* "~/x" -> "$HOME/x"; anything else copied. */
static char *expand_home(const char *v)
{
	const char *home = getenv("HOME");
	char *out;

	if (v[0] == '~' && v[1] == '/' && home) {
		if (asprintf(&out, "%s%s", home, v + 1) < 0)
			return NULL;
		return out;
	}
	return strdup(v);
}

enum { CF_ENDPOINT, CF_ACCESS, CF_SECRET, CF_CA, CF_N };

struct cfg_load {
	char *str[CF_N];
	unsigned pool_size;
	unsigned timeout_ms;
	bool has_pool, has_timeout;
};

/* A config file holds a few short lines; stratad.conf's limit. */
#define CONFIG_FILE_MAX (1 << 20)

/*
 * Open the config file for reading.  Only a regular file will do: a FIFO
 * would block the caller until someone writes to it, /dev/zero would be
 * read forever (one endless line), a directory says only "read error";
 * and one of at most CONFIG_FILE_MAX bytes: a log or a disk image named
 * by mistake would be read whole, a line without a newline into memory.
 * *rc: -errno, STRATA_ECONFIG for a file that is not regular, -EFBIG.
 */
static FILE *config_open(const char *path, int *rc)
{
	struct stat st;
	FILE *f;
	int fd;

	/* O_NONBLOCK: opening a FIFO for reading does not wait for a
	 * writer. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		*rc = -errno;
		return NULL;
	}
	if (fstat(fd, &st) != 0 || fcntl(fd, F_SETFL, 0) != 0)
		*rc = -errno;
	else if (!S_ISREG(st.st_mode))
		*rc = STRATA_ECONFIG;
	else if (st.st_size > CONFIG_FILE_MAX)
		*rc = -EFBIG;
	else if ((f = fdopen(fd, "r")))
		return f;
	else
		*rc = -errno;
	close(fd);
	return NULL;
}

static int read_config_file(struct cfg_load *ld, char *errbuf, size_t errlen)
{
	static const char *const names[CF_N] = {
		"endpoint", "access_key", "secret_key", "ca",
	};
	char *path = config_path();
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	FILE *f;
	int rc = 0;

	if (!path)
		return 0;
	f = config_open(path, &rc);
	if (!f) {
		if (rc == -ENOENT) {
			rc = 0;
		} else if (rc == STRATA_ECONFIG) {
			errf(errbuf, errlen, "%s: not a regular file", path);
		} else if (rc == -EFBIG) {
			errf(errbuf, errlen, "%s: over %d KiB: not a "
			     "configuration file", path, CONFIG_FILE_MAX >> 10);
			rc = STRATA_ECONFIG;
		} else {
			errf(errbuf, errlen, "%s: %s", path, strerror(-rc));
		}
		free(path);
		return rc;
	}
	while (getline(&line, &cap, f) >= 0) {
		char *s = trim(line), *eq, *k, *v;
		size_t vl;
		int i;

		lineno++;
		if (!*s || *s == '#' || *s == ';' || *s == '[')
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			errf(errbuf, errlen, "%s:%u: expected \"key = value\"",
			     path, lineno);
			rc = STRATA_ECONFIG;
			break;
		}
		*eq = '\0';
		k = trim(s);
		v = trim(eq + 1);
		vl = strlen(v);
		if (vl >= 2 && (v[0] == '"' || v[0] == '\'') &&
		    v[vl - 1] == v[0]) {
			v[vl - 1] = '\0';
			v++;
		}
		if (!strcmp(k, "pool_size") || !strcmp(k, "timeout_ms")) {
			bool pool = k[0] == 'p';

			if (parse_uint(v, pool ? &ld->pool_size :
				       &ld->timeout_ms) != 0) {
				errf(errbuf, errlen, "%s:%u: %s: not a number",
				     path, lineno, k);
				rc = STRATA_ECONFIG;
				break;
			}
			*(pool ? &ld->has_pool : &ld->has_timeout) = true;
			continue;
		}
		for (i = 0; i < CF_N; i++)
			if (!strcmp(k, names[i]))
				break;
		/* Unknown keys are skipped: a newer CLI may add some. */
		if (i == CF_N)
			continue;
		free(ld->str[i]);
		ld->str[i] = i == CF_CA ? expand_home(v) : strdup(v);
		if (!ld->str[i]) {
			rc = -ENOMEM;
			break;
		}
	}
	if (!rc && ferror(f)) {
		rc = -EIO;
		errf(errbuf, errlen, "%s: read error", path);
	}
	fclose(f);
	free(line);
	free(path);
	return rc;
}

int strata_config_from_env(struct strata_config *cfg, char *errbuf,
			   size_t errlen)
{
	static const char *const envs[CF_N] = {
		"STRATA_ENDPOINT", "STRATA_ACCESS_KEY", "STRATA_SECRET_KEY",
		"STRATA_CA",
	};
	const char **fields[CF_N];
	struct cfg_load file = { 0 };
	char *val[CF_N] = { 0 };
	int rc, i;

	if (!cfg)
		return -EINVAL;
	fields[CF_ENDPOINT] = &cfg->endpoint;
	fields[CF_ACCESS] = &cfg->access_key;
	fields[CF_SECRET] = &cfg->secret_key;
	fields[CF_CA] = &cfg->ca_file;
	rc = read_config_file(&file, errbuf, errlen);
	for (i = 0; !rc && i < CF_N; i++) {
		const char *env = getenv(envs[i]);
		const char *v = *fields[i];

		if (!v && env && *env)
			v = env;
		if (!v)
			v = file.str[i];
		if (v && !(val[i] = strdup(v)))
			rc = -ENOMEM;
	}
	if (rc) {
		for (i = 0; i < CF_N; i++)
			free(val[i]);
	} else {
		for (i = 0; i < CF_N; i++)
			*fields[i] = val[i];
		if (!cfg->pool_size && file.has_pool)
			cfg->pool_size = file.pool_size;
		if (!cfg->timeout_ms && file.has_timeout)
			cfg->timeout_ms = file.timeout_ms;
	}
	for (i = 0; i < CF_N; i++)
		free(file.str[i]);
	return rc;
}

void strata_config_release(struct strata_config *cfg)
{
	if (!cfg)
		return;
	/* The strings are ours (strata_config_from_env copied them), typed
	 * const only so that callers can point them at literals. */
	free((char *)cfg->endpoint);
	free((char *)cfg->access_key);
	if (cfg->secret_key)
		OPENSSL_cleanse((char *)cfg->secret_key,
				strlen(cfg->secret_key));
	free((char *)cfg->secret_key);
	free((char *)cfg->ca_file);
	cfg->endpoint = cfg->access_key = cfg->secret_key = NULL;
	cfg->ca_file = NULL;
}

int client_split_endpoint(const char *ep, char **host, char **port)
{
	const char *colon, *hs = ep, *he;

	if (ep[0] == '[') {
		hs = ep + 1;
		he = strchr(hs, ']');
		if (!he || he[1] != ':')
			return STRATA_ECONFIG;
		colon = he + 1;
	} else {
		colon = strrchr(ep, ':');
		if (!colon || memchr(ep, ':', (size_t)(colon - ep)))
			return STRATA_ECONFIG;
		he = colon;
	}
	if (he == hs || !colon[1] || strspn(colon + 1, "0123456789") !=
	    strlen(colon + 1) || strlen(colon + 1) > 5 ||
	    strtoul(colon + 1, NULL, 10) > 65535)
		return STRATA_ECONFIG;
	*host = strndup(hs, (size_t)(he - hs));
	*port = strdup(colon + 1);
	if (!*host || !*port) {
		free(*host);
		free(*port);
		return -ENOMEM;
	}
	return 0;
}

/* ---- Frames ------------------------------------------------------------ */

static int conn_fail(struct conn *cn, int rc)
{
	cn->broken = true;
	return rc;
}

void conn_begin(struct conn *cn)
{
	cn->id++;
	cn->sending = true;
}

int frame_send(struct conn *cn, uint8_t op, uint16_t flags, uint8_t *frame,
	       uint32_t fields_len, uint32_t body_len)
{
	struct proto_header h = {
		.opcode = op,
		.flags = flags,
		.id = cn->id,
		.fields_len = fields_len,
		.body_len = body_len,
	};
	int rc = proto_header_encode(&h, frame);

	if (rc)
		return conn_fail(cn, rc);
	rc = tls_conn_write(cn->tls, frame,
			    PROTO_HEADER_LEN + (size_t)fields_len + body_len);
	if (rc)
		return conn_fail(cn, rc);
	if (flags & PROTO_F_END) {
		cn->sending = false;
		cn->reading = true;
	}
	return 0;
}

int req_send(struct conn *cn, uint8_t op, size_t fields_len, bool end)
{
	return frame_send(cn, op, end ? PROTO_F_END : 0, cn->out,
			  (uint32_t)fields_len, 0);
}

static int conn_read(struct conn *cn, void *buf, size_t len)
{
	int rc = tls_conn_read(cn->tls, buf, len);

	return rc ? conn_fail(cn, rc) : 0;
}

/* Skip n bytes (a GOAWAY's fields) without touching cn->fields, which may
 * hold the fields of the response being read. */
static int conn_skip(struct conn *cn, size_t n)
{
	uint8_t tmp[512];

	while (n) {
		size_t k = n < sizeof(tmp) ? n : sizeof(tmp);
		int rc = conn_read(cn, tmp, k);

		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

/* The next frame header of the current response.  GOAWAY frames are
 * consumed on the way.  With idle set, returns 1 instead of waiting when
 * nothing but GOAWAY was there to read. */
static int resp_header(struct conn *cn, uint8_t op, struct proto_header *h,
		       bool idle)
{
	uint8_t hb[PROTO_HEADER_LEN];
	int rc;

	for (;;) {
		rc = conn_read(cn, hb, sizeof(hb));
		if (rc)
			return rc;
		rc = proto_header_decode(hb, sizeof(hb), h);
		if (rc)
			return conn_fail(cn, rc);
		if (h->opcode == PROTO_OP_GOAWAY) {
			/* The server finishes what is in flight and takes
			 * nothing new: read on, keep the connection no
			 * longer. */
			cn->broken = true;
			rc = conn_skip(cn, h->fields_len);
			if (rc)
				return rc;
			if (idle && !tls_conn_readable(cn->tls))
				return 1;
			continue;
		}
		if (!(h->flags & PROTO_F_RESPONSE) || h->id != cn->id ||
		    h->opcode != op)
			return conn_fail(cn, STRATA_EPROTO);
		return 0;
	}
}

/* The message of the last ERROR response this thread read in the call
 * under way (strata_error_message()). */
static _Thread_local char last_message[256];

const char *strata_error_message(void)
{
	return last_message;
}

void client_message(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
	va_end(ap);
}

/* An ERROR frame's fields are in cn->fields: its code; its message is
 * kept for strata_error_message(), printable ASCII only. */
int conn_error_code(struct conn *cn, const struct proto_header *h)
{
	struct proto_error e;
	int rc = proto_error_decode(cn->fields, h->fields_len, &e);
	size_t n = 0;

	cn->reading = false;
	if (rc)
		return conn_fail(cn, rc);
	if (e.code >= 0)
		return conn_fail(cn, STRATA_EPROTO);
	for (size_t i = 0; e.message.s && i < e.message.len &&
	     n < sizeof(last_message) - 1; i++) {
		unsigned char ch = (unsigned char)e.message.s[i];

		last_message[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	last_message[n] = '\0';
	return e.code;
}

static int resp_begin(struct conn *cn, uint8_t op, struct resp *r,
		      bool idle)
{
	struct proto_header h;
	int rc;

	rc = resp_header(cn, op, &h, idle);
	if (rc)
		return rc;
	if (h.flags & PROTO_F_CONT)
		return conn_fail(cn, STRATA_EPROTO);
	rc = conn_read(cn, cn->fields, h.fields_len);
	if (rc)
		return rc;
	if (h.flags & PROTO_F_ERROR)
		return conn_error_code(cn, &h);
	r->op = op;
	r->fields_len = h.fields_len;
	r->body_left = h.body_len;
	r->end = h.flags & PROTO_F_END;
	if (r->end && !r->body_left)
		cn->reading = false;
	return 0;
}

int req_call(struct conn *cn, uint8_t op, size_t fields_len, struct resp *r)
{
	int rc;

	conn_begin(cn);
	rc = req_send(cn, op, fields_len, true);
	return rc ? rc : resp_start(cn, op, r);
}

int resp_start(struct conn *cn, uint8_t op, struct resp *r)
{
	if (cn->sending)
		return conn_fail(cn, -EINVAL);
	return resp_begin(cn, op, r, false);
}

int resp_early(struct conn *cn, uint8_t op, struct resp *r)
{
	return resp_begin(cn, op, r, true);
}

/* Move to the next frame with body bytes; 1 when there is one, 0 at the
 * end of the message. */
static int resp_more(struct conn *cn, struct resp *r)
{
	struct proto_header h;
	int rc;

	while (!r->body_left) {
		if (r->end) {
			cn->reading = false;
			return 0;
		}
		rc = resp_header(cn, r->op, &h, false);
		if (rc)
			return rc;
		if (!(h.flags & PROTO_F_CONT))
			return conn_fail(cn, STRATA_EPROTO);
		if (h.flags & PROTO_F_ERROR) {
			/* fields_len <= PROTO_MAX_FIELDS_LEN (header check);
			 * the first frame's fields are no longer needed. */
			rc = conn_read(cn, cn->fields, h.fields_len);
			return rc ? rc : conn_error_code(cn, &h);
		}
		r->body_left = h.body_len;
		r->end = h.flags & PROTO_F_END;
	}
	return 1;
}

int resp_read(struct conn *cn, struct resp *r, void *buf, size_t cap,
	      size_t *got)
{
	size_t n;
	int rc = resp_more(cn, r);

	*got = 0;
	if (rc <= 0)
		return rc;
	n = cap < r->body_left ? cap : r->body_left;
	rc = conn_read(cn, buf, n);
	if (rc)
		return rc;
	r->body_left -= (uint32_t)n;
	*got = n;
	return 0;
}

int resp_frame(struct conn *cn, struct resp *r, uint8_t *buf, size_t *len)
{
	int rc = resp_more(cn, r);

	*len = 0;
	if (rc <= 0)
		return rc;
	rc = conn_read(cn, buf, r->body_left);
	if (rc)
		return rc;
	*len = r->body_left;
	r->body_left = 0;
	return 1;
}

int resp_records(struct conn *cn, struct resp *r, uint8_t **buf,
		 size_t *len, size_t max)
{
	size_t cap = *len = 0;
	int rc;

	*buf = NULL;
	for (;;) {
		rc = resp_more(cn, r);
		if (rc <= 0)
			break;
		if (*len + r->body_left > max) {
			rc = conn_fail(cn, STRATA_EPROTO);
			break;
		}
		if (*len + r->body_left > cap) {
			size_t ncap = cap ? cap : 64 * 1024;
			uint8_t *nb;

			while (ncap < *len + r->body_left)
				ncap *= 2;
			nb = realloc(*buf, ncap);
			if (!nb) {
				rc = conn_fail(cn, -ENOMEM);
				break;
			}
			*buf = nb;
			cap = ncap;
		}
		rc = conn_read(cn, *buf + *len, r->body_left);
		if (rc)
			break;
		*len += r->body_left;
		r->body_left = 0;
	}
	if (rc) {
		free(*buf);
		*buf = NULL;
		*len = 0;
	}
	return rc;
}

bool conn_answered(struct conn *cn)
{
	return tls_conn_readable(cn->tls);
}

int conn_cancel(struct conn *cn, bool expect_response)
{
	uint8_t frame[PROTO_HEADER_LEN];
	struct proto_header h = {
		.opcode = PROTO_OP_CANCEL,
		.flags = PROTO_F_END,
		.id = cn->id,
	};
	int rc = proto_header_encode(&h, frame);

	if (!rc)
		rc = tls_conn_write(cn->tls, frame, sizeof(frame));
	if (rc)
		return conn_fail(cn, rc);
	cn->sending = false;
	if (expect_response)
		cn->reading = true;
	return 0;
}

int resp_drain(struct conn *cn, struct resp *r)
{
	uint8_t tmp[16 * 1024];
	size_t got;
	int rc;

	do
		rc = resp_read(cn, r, tmp, sizeof(tmp), &got);
	while (!rc && got);
	return rc;
}

/* ---- Handshake --------------------------------------------------------- */

static int conn_hello(struct conn *cn, uint8_t nonce[PROTO_NONCE_LEN])
{
	struct proto_hello_req req = {
		.version = PROTO_VERSION,
		.agent = { AGENT, sizeof(AGENT) - 1 },
	};
	struct proto_hello_resp hr;
	struct resp r;
	size_t len;
	int rc;

	conn_begin(cn);
	rc = proto_hello_req_encode(&req, cn->out + PROTO_HEADER_LEN,
				    PROTO_MAX_FIELDS_LEN, &len);
	if (!rc)
		rc = req_send(cn, PROTO_OP_HELLO, len, true);
	if (!rc)
		rc = resp_start(cn, PROTO_OP_HELLO, &r);
	if (rc)
		return rc;
	rc = proto_hello_resp_decode(cn->fields, r.fields_len, &hr);
	if (rc)
		return conn_fail(cn, rc);
	if (hr.version != PROTO_VERSION)
		return conn_fail(cn, STRATA_EPROTOVERSION);
	if (hr.nonce.len != PROTO_NONCE_LEN)
		return conn_fail(cn, STRATA_EPROTO);
	memcpy(nonce, hr.nonce.p, PROTO_NONCE_LEN);
	cn->max_body = hr.max_body && hr.max_body < PROTO_MAX_BODY_LEN ?
		       hr.max_body : PROTO_MAX_BODY_LEN;
	return 0;
}

static int conn_auth(strata_client *c, struct conn *cn,
		     const uint8_t nonce[PROTO_NONCE_LEN])
{
	uint8_t exporter[PROTO_EXPORTER_LEN];
	uint8_t transcript[PROTO_AUTH_TRANSCRIPT_MAX];
	uint8_t proof[EVP_MAX_MD_SIZE];
	unsigned int proof_len = 0;
	size_t tlen, len;
	struct proto_auth_req req;
	struct proto_auth_resp ar;
	struct resp r;
	int rc;

	rc = tls_conn_export(cn->tls, PROTO_EXPORTER_LABEL, exporter,
			     sizeof(exporter));
	if (rc)
		return conn_fail(cn, rc);
	rc = proto_auth_transcript(nonce, exporter, c->access_key,
				   strlen(c->access_key), transcript,
				   sizeof(transcript), &tlen);
	if (rc)
		return conn_fail(cn, rc == -EINVAL ? STRATA_ECONFIG : rc);
	if (!HMAC(EVP_sha256(), c->secret, (int)strlen(c->secret),
		  transcript, tlen, proof, &proof_len) ||
	    proof_len != PROTO_PROOF_LEN)
		return conn_fail(cn, -ENOMEM);
	req.access_key_id.s = c->access_key;
	req.access_key_id.len = strlen(c->access_key);
	req.proof.p = proof;
	req.proof.len = PROTO_PROOF_LEN;
	conn_begin(cn);
	rc = proto_auth_req_encode(&req, cn->out + PROTO_HEADER_LEN,
				   PROTO_MAX_FIELDS_LEN, &len);
	if (!rc)
		rc = req_send(cn, PROTO_OP_AUTH, len, true);
	if (!rc)
		rc = resp_start(cn, PROTO_OP_AUTH, &r);
	if (!rc && (rc = proto_auth_resp_decode(cn->fields, r.fields_len,
						&ar)) != 0)
		conn_fail(cn, rc);
	return rc;
}

void conn_free(struct conn *cn)
{
	if (!cn)
		return;
	tls_conn_free(cn->tls);
	free(cn);
}

int conn_open(strata_client *c, struct conn **out)
{
	uint8_t nonce[PROTO_NONCE_LEN];
	struct conn *cn = malloc(sizeof(*cn));
	int rc;

	if (!cn)
		return -ENOMEM;
	cn->next = NULL;
	cn->id = 0;
	cn->broken = cn->sending = cn->reading = false;
	rc = tls_conn_open(c->tls, c->host, c->port, c->timeout_ms, &cn->tls);
	if (rc) {
		free(cn);
		return rc;
	}
	rc = conn_hello(cn, nonce);
	if (!rc)
		rc = conn_auth(c, cn, nonce);
	if (rc) {
		conn_free(cn);
		return rc;
	}
	*out = cn;
	return 0;
}

/* ---- Cancellation (client_int.h) ------------------------------------- */

/* The calling thread's membership: per thread as the requests it makes
 * are, so that the layers in between (pool, connect, TLS) need no cancel
 * passed down to them. */
static _Thread_local struct cancel_member *joined;

/* The thread's interrupt hook (strata_interrupt_set()), and whether it
 * ended the call under way. */
static _Thread_local strata_interrupt_fn intr_fn;
static _Thread_local bool intr_hit;

void strata_interrupt_set(strata_interrupt_fn fn)
{
	intr_fn = fn;
	intr_hit = false;
}

bool client_interrupted(void)
{
	if (!intr_hit && intr_fn && intr_fn())
		intr_hit = true;
	return cancel_fired();
}

void client_call_begin(void)
{
	last_message[0] = '\0';
	intr_hit = false;
}

int client_call_end(int rc)
{
	return intr_hit ? -EINTR : rc;
}

void cancel_init(struct cancel *k)
{
	pthread_mutex_init(&k->lock, NULL);
	atomic_init(&k->fired, false);
	k->members = NULL;
}

void cancel_release(struct cancel *k)
{
	pthread_mutex_destroy(&k->lock);
}

void cancel_join(struct cancel *k, struct cancel_member *m)
{
	m->k = k;
	m->fd = -1;
	pthread_mutex_lock(&k->lock);
	m->next = k->members;
	k->members = m;
	pthread_mutex_unlock(&k->lock);
	joined = m;
}

void cancel_leave(void)
{
	struct cancel_member **p;
	struct cancel *k;

	if (!joined)
		return;
	k = joined->k;
	pthread_mutex_lock(&k->lock);
	for (p = &k->members; *p; p = &(*p)->next)
		if (*p == joined) {
			*p = joined->next;
			break;
		}
	pthread_mutex_unlock(&k->lock);
	joined = NULL;
}

void cancel_fire(strata_client *c, struct cancel *k)
{
	pthread_mutex_lock(&k->lock);
	atomic_store(&k->fired, true);
	for (struct cancel_member *m = k->members; m; m = m->next)
		if (m->fd >= 0)
			shutdown(m->fd, SHUT_RDWR);
	pthread_mutex_unlock(&k->lock);
	/* Set before the broadcast, which pool_get() cannot miss: it looks
	 * at fired under c->lock, then waits. */
	pthread_mutex_lock(&c->lock);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

bool cancel_fired(void)
{
	return intr_hit || (joined && atomic_load(&joined->k->fired));
}

int cancel_watch(int fd)
{
	int rc = 0;

	if (!joined)
		return 0;
	pthread_mutex_lock(&joined->k->lock);
	if (atomic_load(&joined->k->fired))
		rc = -ECANCELED;
	else
		joined->fd = fd;
	pthread_mutex_unlock(&joined->k->lock);
	return rc;
}

bool cancel_unwatch(int fd)
{
	bool cut = false;

	if (!joined || joined->fd != fd)
		return false;
	pthread_mutex_lock(&joined->k->lock);
	joined->fd = -1;
	cut = atomic_load(&joined->k->fired);
	pthread_mutex_unlock(&joined->k->lock);
	return cut;
}

/* ---- Pool -------------------------------------------------------------- */

static void pool_put(strata_client *c, struct conn *cn);

/* A connection for one request: an idle one that is still sound (unless
 * fresh), else a new one once a slot is free; watched for the thread's
 * cancel (a new one from its first byte, in tls.c). */
static int pool_get(strata_client *c, bool fresh, struct conn **out)
{
	struct conn *cn = NULL;
	int rc;

	pthread_mutex_lock(&c->lock);
	while (!c->idle && c->nconns >= c->pool_size) {
		if (cancel_fired()) {
			/* Pass on a pool_put() signal this thread took. */
			pthread_cond_signal(&c->cond);
			pthread_mutex_unlock(&c->lock);
			return -ECANCELED;
		}
		if (intr_fn) {
			/* No signal interrupts this wait: the hook is asked
			 * every POOL_INTR_MS instead, outside the lock. */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += POOL_INTR_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&c->cond, &c->lock, &ts);
			pthread_mutex_unlock(&c->lock);
			client_interrupted();
			pthread_mutex_lock(&c->lock);
			continue;
		}
		pthread_cond_wait(&c->cond, &c->lock);
	}
	if (c->idle) {
		cn = c->idle;
		c->idle = cn->next;
	} else {
		c->nconns++;
	}
	pthread_mutex_unlock(&c->lock);

	/* The slot is ours now; whatever was idle in it may have been closed
	 * by the server meanwhile (idle timeout, restart, GOAWAY). */
	if (cn && (fresh || conn_answered(cn))) {
		conn_free(cn);
		cn = NULL;
	}
	if (cn) {
		rc = cancel_watch(tls_conn_fd(cn->tls));
		if (rc) {
			pool_put(c, cn);
			return rc;
		}
		*out = cn;
		return 0;
	}
	rc = conn_open(c, out);
	if (rc) {
		pthread_mutex_lock(&c->lock);
		c->nconns--;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
	}
	return rc;
}

static void pool_put(strata_client *c, struct conn *cn)
{
	bool keep;

	/* A cancel may have shut the socket down as the request ended. */
	if (cancel_unwatch(tls_conn_fd(cn->tls)))
		cn->broken = true;
	keep = !cn->broken && !cn->sending && !cn->reading;

	if (!keep)
		conn_free(cn);
	pthread_mutex_lock(&c->lock);
	if (keep) {
		cn->next = c->idle;
		c->idle = cn;
	} else {
		c->nconns--;
	}
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Failures after which a request was certainly not carried out, or not
 * acknowledged, because of the connection (on a broken connection only). */
static bool transport_error(int rc)
{
	return rc == -ECONNRESET || rc == -EPIPE || rc == -ECONNABORTED ||
	       rc == STRATA_ECLOSING;
}

int client_call(strata_client *c, call_fn fn, void *arg)
{
	bool unsafe = false;
	int attempt, rc = 0;

	client_call_begin();
	for (attempt = 0; attempt < 2; attempt++) {
		struct conn *cn;
		bool broken;

		rc = pool_get(c, attempt > 0, &cn);
		if (rc)
			break;
		rc = fn(cn, arg, &unsafe);
		broken = cn->broken;
		pool_put(c, cn);
		if (!rc || !broken || unsafe || !transport_error(rc) ||
		    cancel_fired())
			break;
	}
	/* A failure of a cancelled thread is the cancel's doing (a socket
	 * shut down reads as the peer's reset); an interrupted call says it
	 * was interrupted. */
	return client_call_end(rc && cancel_fired() ? -ECANCELED : rc);
}

/* ---- Client ------------------------------------------------------------ */

int strata_client_new(const struct strata_config *cfg, strata_client **out)
{
	strata_client *c;
	struct conn *cn;
	int rc;

	if (!cfg || !out)
		return -EINVAL;
	client_call_begin();
	if (!cfg->endpoint || !*cfg->endpoint || !cfg->access_key ||
	    !*cfg->access_key || !cfg->secret_key || !*cfg->secret_key)
		return STRATA_ECONFIG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->pool_size = cfg->pool_size ? cfg->pool_size : DEFAULT_POOL;
	c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	rc = client_split_endpoint(cfg->endpoint, &c->host, &c->port);
	if (rc == STRATA_ECONFIG)
		client_message("endpoint '%s': expected HOST:PORT or [IPV6-ADDRESS]:PORT",
			       cfg->endpoint);
	if (rc)
		goto fail;
	c->access_key = strdup(cfg->access_key);
	c->secret = strdup(cfg->secret_key);
	if (!c->access_key || !c->secret) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = tls_ctx_new(cfg->ca_file, &c->tls);
	if (rc && cfg->ca_file)
		client_message("CA file %s: %s", cfg->ca_file,
			       rc == -EPROTO ? "no PEM certificate in it" :
			       rc == STRATA_ECONFIG ? "not a regular file" :
			       strata_strerror(rc));
	if (rc)
		goto fail;
	rc = pool_get(c, false, &cn);
	if (rc)
		goto fail;
	pool_put(c, cn);
	*out = c;
	return 0;
fail:
	strata_client_free(c);
	return client_call_end(rc);
}

void strata_client_free(strata_client *c)
{
	if (!c)
		return;
	while (c->idle) {
		struct conn *cn = c->idle;

		c->idle = cn->next;
		conn_free(cn);
	}
	tls_ctx_free(c->tls);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c->host);
	free(c->port);
	free(c->access_key);
	if (c->secret) {
		OPENSSL_cleanse(c->secret, strlen(c->secret));
		free(c->secret);
	}
	free(c);
}
