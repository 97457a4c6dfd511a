// SPDX-License-Identifier: Apache-2.0
/*
 * cutcheck: a property check of anscache_cut, the I/O loops' frame cutter,
 * shared by its unit test (random descriptions) and its fuzz target (the
 * fuzzer's bytes as the description).
 *
 * A description builds a stream of frames (GETs it may answer, GETs it
 * must not, PUTs with bodies that hold whole GET frames, PINGs, and at
 * most one run of garbage, after which everything must pass through) and
 * the sizes of the pieces it is fed in.  The check: what the cutter
 * forwards is exactly the stream less the frames it answered; it is asked
 * to answer exactly the GET frames that may be answered, in order, each
 * with its own header and fields; the answer callback says yes to even
 * request ids.  Violations abort() (the fuzzer keeps the input; check
 * reports the signal).
 */
#ifndef STRATA_CUTCHECK_H
#define STRATA_CUTCHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "anscache.h"
#include "proto.h"

#define CUT_STREAM_MAX (256u << 10)
#define CUT_FAIL(why)							\
	do {								\
		fprintf(stderr, "cutcheck: %s (line %d)\n", why, __LINE__); \
		abort();						\
	} while (0)
#define CUT_ASKED_MAX 4096u

struct cut_state {
	uint8_t *stream;		/* what is sent */
	size_t slen;
	uint8_t *expect;		/* what must be forwarded */
	size_t elen;
	uint64_t asked[CUT_ASKED_MAX];	/* ids answer must be asked, in order */
	size_t asked_off[CUT_ASKED_MAX];	/* ... and where each frame is */
	size_t nasked;
	size_t at;			/* read position in desc */
	const uint8_t *desc;
	size_t dlen;
	/* what the cutter did */
	uint8_t *fwd;
	size_t flen;
	size_t nseen;			/* answer calls so far */
	bool garbage;			/* garbage sent: all passes after it */
	uint64_t rng;			/* frame contents */
};

static uint8_t cut_byte(struct cut_state *st)
{
	return st->at < st->dlen ? st->desc[st->at++] : 0;
}

static void cut_frame(struct cut_state *st, uint8_t op, uint16_t flags,
		      uint64_t id, size_t flen, size_t blen, bool askable)
{
	struct proto_header h = { .opcode = op, .flags = flags, .id = id,
				  .fields_len = (uint32_t)flen,
				  .body_len = (uint32_t)blen };
	size_t total = PROTO_HEADER_LEN + flen + blen;
	uint8_t *p;

	if (st->slen + total > CUT_STREAM_MAX)
		return;
	p = st->stream + st->slen;
	if (proto_header_encode(&h, p))
		CUT_FAIL("check");
	/* Contents from a generator the description seeds, so that a short
	 * description still makes a long stream. */
	for (size_t i = 0; i < flen + blen; i++) {
		st->rng ^= st->rng << 13;
		st->rng ^= st->rng >> 7;
		st->rng ^= st->rng << 17;
		p[PROTO_HEADER_LEN + i] = (uint8_t)st->rng;
	}
	/* A body that holds a whole GET frame, sent inside a PUT. */
	if (op == PROTO_OP_PUT && blen >= PROTO_HEADER_LEN + 40) {
		struct proto_header g = { .opcode = PROTO_OP_GET,
					  .flags = PROTO_F_END, .id = id + 2,
					  .fields_len = 40 };

		if (proto_header_encode(&g, p + PROTO_HEADER_LEN + flen))
			CUT_FAIL("check");
	}
	st->slen += total;
	/* Whether the cutter is asked: a candidate before any garbage.  The
	 * answer is yes for even ids: then it is not forwarded. */
	if (askable && !st->garbage) {
		if (st->nasked == CUT_ASKED_MAX)
			CUT_FAIL("check");
		st->asked_off[st->nasked] = st->slen - total;
		st->asked[st->nasked++] = id;
		if (!(id & 1))
			return;
	}
	memcpy(st->expect + st->elen, p, total);
	st->elen += total;
}

static void cut_build(struct cut_state *st)
{
	uint64_t id = 1;

	while (st->at < st->dlen && st->slen < CUT_STREAM_MAX - 8192 &&
	       st->nasked < CUT_ASKED_MAX - 2) {
		uint8_t t = cut_byte(st), x = cut_byte(st);
		/* Every length a gathered GET may have, 0 to the most, and
		 * short ones most often (many frames per stream). */
		size_t flen = (t & 0x40) ? (size_t)(x & 63) :
			      ((size_t)(t >> 3) << 8 | x) %
			      (ANSCACHE_MAX_REQUEST - PROTO_HEADER_LEN + 1);

		switch (t % 8) {
		case 0:
		case 1:	/* a GET it may answer (yes to even ids) */
			cut_frame(st, PROTO_OP_GET, PROTO_F_END, id + (x & 1),
				  flen, 0, true);
			break;
		case 2:	/* a GET too long to gather */
			cut_frame(st, PROTO_OP_GET, PROTO_F_END, id,
				  ANSCACHE_MAX_REQUEST - PROTO_HEADER_LEN + 1 +
				  x, 0, false);
			break;
		case 3:	/* a PUT, its body in two frames */
			cut_frame(st, PROTO_OP_PUT, 0, id, flen / 8, 0, false);
			cut_frame(st, PROTO_OP_PUT, PROTO_F_CONT, id,
				  0, 1 + (size_t)x * 3, false);
			cut_frame(st, PROTO_OP_PUT, PROTO_F_CONT | PROTO_F_END,
				  id, 0, 100, false);
			break;
		case 4:	/* a response is not a request */
			cut_frame(st, PROTO_OP_GET,
				  PROTO_F_END | PROTO_F_RESPONSE, id, flen,
				  x, false);
			break;
		case 5:
			cut_frame(st, PROTO_OP_PING, PROTO_F_END, id, 0, 0,
				  false);
			break;
		case 6:	/* garbage, once: everything after passes through */
			if (!st->garbage && x > 250 && (t & 0x80)) {
				size_t n = 1 + x % 64;

				st->stream[st->slen] = 0;	/* never a magic */
				for (size_t i = 1; i < n; i++)
					st->stream[st->slen + i] =
						(uint8_t)(st->rng >> (i % 56));
				memcpy(st->expect + st->elen,
				       st->stream + st->slen, n);
				st->slen += n;
				st->elen += n;
				st->garbage = true;
				/* Enough behind it for a header to decode. */
				cut_frame(st, PROTO_OP_PING, PROTO_F_END, id,
					  0, 0, false);
			}
			break;
		default: /* a GET with no fields at all */
			cut_frame(st, PROTO_OP_GET, PROTO_F_END, id + (x & 1),
				  0, 0, true);
			break;
		}
		id += 4;
	}
}

static void cut_forward(void *arg, const uint8_t *p, size_t n)
{
	struct cut_state *st = arg;

	if (!n || st->flen + n > st->elen)
		CUT_FAIL("check");
	memcpy(st->fwd + st->flen, p, n);
	st->flen += n;
}

static bool cut_answer(void *arg, const struct proto_header *h,
		       const uint8_t *fields)
{
	struct cut_state *st = arg;
	struct proto_header back;
	const uint8_t *orig;
	size_t i = st->nseen;

	/* Asked in order, for the frames expected, with their own bytes. */
	if (i >= st->nasked || h->id != st->asked[i] ||
	    h->opcode != PROTO_OP_GET || h->flags != PROTO_F_END ||
	    h->body_len)
		CUT_FAIL("check");
	st->nseen++;
	if (proto_header_decode(st->stream + st->asked_off[i],
				st->slen - st->asked_off[i], &back))
		CUT_FAIL("check");
	orig = st->stream + st->asked_off[i] + PROTO_HEADER_LEN;
	if (back.id != h->id || back.fields_len != h->fields_len ||
	    memcmp(orig, fields, h->fields_len))
		CUT_FAIL("check");
	return !(h->id & 1);
}

/* Run one description; abort() on any violation. */
static void cut_check(const uint8_t *desc, size_t dlen)
{
	static const struct anscache_cut_ops ops = {
		.forward = cut_forward,
		.answer = cut_answer,
	};
	struct cut_state st = { .desc = desc, .dlen = dlen,
				.rng = 0x2545f4914f6cdd1dull ^ dlen };
	struct anscache_cutter *k = malloc(sizeof(*k));
	size_t pos = 0, piece_at = 0, q;

	st.stream = malloc(CUT_STREAM_MAX);
	st.expect = malloc(CUT_STREAM_MAX);
	st.fwd = malloc(CUT_STREAM_MAX);
	if (!k || !st.stream || !st.expect || !st.fwd)
		CUT_FAIL("check");
	/* The first quarter of the description cuts the pieces, used over
	 * and over: half of them 1 to 4 bytes, half up to 1 KiB. */
	q = dlen / 4;
	st.at = q;
	cut_build(&st);
	anscache_cutter_init(k);
	while (pos < st.slen) {
		uint8_t b = q ? desc[piece_at++ % q] : 0;
		size_t n = !q ? st.slen :
			   (b & 0x80) ? 1 + (size_t)(b & 0x7f) * 8 :
					1 + (size_t)(b & 3);

		if (n > st.slen - pos)
			n = st.slen - pos;
		anscache_cut(k, st.stream + pos, n, &ops, &st);
		pos += n;
		if (k->hlen > ANSCACHE_MAX_REQUEST)
			CUT_FAIL("held more than a request");
	}
	if (st.nseen != st.nasked || st.flen != st.elen ||
	    memcmp(st.fwd, st.expect, st.elen) || k->hlen || k->skip)
		CUT_FAIL("check");
	free(k);
	free(st.stream);
	free(st.expect);
	free(st.fwd);
}

#endif
