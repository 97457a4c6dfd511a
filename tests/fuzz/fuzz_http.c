// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for http.c, the admin port's request parser.
 *
 * Properties checked (abort() on violation, so libFuzzer keeps the input):
 *   - no read outside the buffer (ASan; the input is copied to a buffer of
 *     exactly its size);
 *   - the result is 0, -EAGAIN, or one of the statuses http.h lists;
 *   - -EAGAIN only while the input is shorter than HTTP_MAX_HEADER;
 *   - on 0: the head used lies within the input and ends in CRLF CRLF, the
 *     path lies within the head, starts with '/', has no byte <= ' ' or
 *     DEL, no '?', and is at most HTTP_MAX_PATH; minor is 0..9;
 *   - incrementality: parsing any prefix of a complete head gives -EAGAIN
 *     or an error, never a different complete head (checked at one split
 *     point the input chooses).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int status_ok(int rc)
{
	return rc == 0 || rc == -EAGAIN || rc == 400 || rc == 414 ||
	       rc == 431 || rc == 505;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request r, r2;
	size_t used = 0, used2 = 0, cut;
	char *buf = malloc(size ? size : 1);
	int rc, rc2;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	rc = http_request_parse(buf, size, &r, &used);
	if (!status_ok(rc))
		abort();
	if (rc == -EAGAIN && size >= HTTP_MAX_HEADER)
		abort();
	if (rc == 0) {
		if (used < 4 || used > size || used > HTTP_MAX_HEADER ||
		    memcmp(buf + used - 4, "\r\n\r\n", 4) != 0)
			abort();
		if (r.path < buf || r.path + r.pathlen > buf + used ||
		    r.pathlen == 0 || r.path[0] != '/' ||
		    r.pathlen > HTTP_MAX_PATH || r.minor < 0 || r.minor > 9 ||
		    (r.method != HTTP_GET && r.method != HTTP_HEAD &&
		     r.method != HTTP_OTHER))
			abort();
		for (size_t i = 0; i < r.pathlen; i++)
			if ((unsigned char)r.path[i] <= ' ' ||
			    (unsigned char)r.path[i] >= 0x7f || r.path[i] == '?')
				abort();
		/* A prefix short of the blank line is never complete. */
		cut = size ? data[0] % used : 0;
		rc2 = http_request_parse(buf, cut, &r2, &used2);
		if (rc2 == 0 || !status_ok(rc2))
			abort();
	}
	free(buf);
	return 0;
}
