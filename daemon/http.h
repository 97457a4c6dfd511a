// SPDX-License-Identifier: Apache-2.0
/*
 * http: a bounded parser for the one kind of HTTP/1.x request the admin
 * port answers (GET or HEAD of a path; no body).  No I/O; fuzzed
 * (tests/fuzz/fuzz_http.c).
 *
 * The parser looks at the whole buffer each time (requests are tiny), never
 * past len, and never keeps pointers into it beyond the call except the
 * path, which points into buf.  Anything it does not understand is an
 * error status, not a guess.
 */
#ifndef STRATA_HTTP_H
#define STRATA_HTTP_H

#include <stddef.h>

#define HTTP_MAX_HEADER 8192		/* request line + headers */
#define HTTP_MAX_PATH 256

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_OTHER };

struct http_request {
	enum http_method method;
	const char *path;		/* into buf, not NUL-terminated; no query */
	size_t pathlen;
	int minor;			/* HTTP/1.minor */
};

/*
 * Parse the request head in buf[0..len).
 *   [out] req     valid when 0 is returned
 *   [out] used    bytes of the head, through its blank line
 * Returns 0 (a whole head), -EAGAIN (incomplete: read more, unless len has
 * reached HTTP_MAX_HEADER), or an HTTP status to answer with:
 *   400 malformed (bad request line, bare LF, control bytes, a body),
 *   414 path over HTTP_MAX_PATH, 431 head over HTTP_MAX_HEADER,
 *   505 not HTTP/1.0 or 1.1.
 * An unknown method parses (HTTP_OTHER): the caller answers 405.
 */
int http_request_parse(const char *buf, size_t len, struct http_request *req,
		       size_t *used);

/* "OK", "Not Found", ... for the statuses the admin port sends. */
const char *http_reason(int status);

#endif
