// SPDX-License-Identifier: Apache-2.0
/*
 * http: the admin port's request parser (see http.h).
 *
 * Grammar accepted (RFC 9112, the subset a scraper or a probe sends):
 *   request-line = method SP request-target SP "HTTP/1." DIGIT CRLF
 *   header-field = name ":" OWS value OWS CRLF        (values ignored)
 *   end          = CRLF
 * Every line must end in CRLF; a request with Content-Length other than 0
 * or Transfer-Encoding carries a body, which the admin port refuses (400).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "banned.h"

static bool is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The end of the line starting at p (the CR of its CRLF), or NULL. */
static const char *line_end(const char *p, const char *end)
{
	const char *cr = memchr(p, '\r', (size_t)(end - p));

	return cr && cr + 1 < end ? cr : NULL;
}

static bool name_is(const char *p, size_t n, const char *want)
{
	return n == strlen(want) && strncasecmp(p, want, n) == 0;
}

int http_request_parse(const char *buf, size_t len, struct http_request *req,
		       size_t *used)
{
	const char *p = buf, *end, *eol, *sp1, *sp2, *q;
	size_t vlen, scan = len < HTTP_MAX_HEADER ? len : HTTP_MAX_HEADER;

	/* The head ends at the first blank line; what follows is not ours. */
	q = memmem(buf, scan, "\r\n\r\n", 4);
	end = q ? q + 4 : buf + scan;
	/* A bare LF anywhere in the head is malformed; so is a NUL. */
	for (q = buf; q < end; q++) {
		if (*q == '\n' && (q == buf || q[-1] != '\r'))
			return 400;
		if (*q == 0)
			return 400;
	}
	eol = line_end(p, end);
	if (!eol)
		return len >= HTTP_MAX_HEADER ? 431 : -EAGAIN;
	if (eol[1] != '\n')
		return 400;
	/* method SP target SP version */
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	if (!sp1 || sp1 == p)
		return 400;
	for (q = p; q < sp1; q++)
		if (!is_tchar((unsigned char)*q))
			return 400;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return 400;
	vlen = (size_t)(eol - sp2 - 1);
	if (vlen < 5 || memcmp(sp2 + 1, "HTTP/", 5) != 0)
		return 400;
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    sp2[8] < '0' || sp2[8] > '9')
		return 505;
	req->minor = sp2[8] - '0';
	if (sp1 - p == 3 && memcmp(p, "GET", 3) == 0)
		req->method = HTTP_GET;
	else if (sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0)
		req->method = HTTP_HEAD;
	else
		req->method = HTTP_OTHER;
	/* origin-form only: "/path[?query]", visible ASCII */
	if (sp1[1] != '/')
		return 400;
	for (q = sp1 + 1; q < sp2; q++)
		if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f)
			return 400;
	req->path = sp1 + 1;
	q = memchr(req->path, '?', (size_t)(sp2 - req->path));
	req->pathlen = (size_t)((q ? q : sp2) - req->path);
	if (req->pathlen > HTTP_MAX_PATH)
		return 414;
	/* header fields, until the empty line */
	p = eol + 2;
	for (;;) {
		const char *colon, *v, *ve;
		size_t nlen;

		eol = line_end(p, end);
		if (!eol)
			return len >= HTTP_MAX_HEADER ? 431 : -EAGAIN;
		if (eol[1] != '\n')
			return 400;
		if (eol == p)
			break;		/* the blank line */
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p)
			return 400;
		for (q = p; q < colon; q++)
			if (!is_tchar((unsigned char)*q))
				return 400;	/* also: space before ':' */
		for (q = colon + 1; q < eol; q++)
			if (((unsigned char)*q < ' ' && *q != '\t') ||
			    (unsigned char)*q == 0x7f)
				return 400;
		nlen = (size_t)(colon - p);
		v = colon + 1;
		ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (name_is(p, nlen, "transfer-encoding"))
			return 400;
		if (name_is(p, nlen, "content-length") &&
		    !(ve - v == 1 && *v == '0'))
			return 400;
		p = eol + 2;
	}
	*used = (size_t)(eol + 2 - buf);
	return 0;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}
