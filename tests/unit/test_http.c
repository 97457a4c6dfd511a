// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for http.c, the admin port's request parser: what parses, what
 * each kind of bad head is answered with, incomplete heads at every split
 * point, and the size bounds.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "banned.h"

static int parse(const char *s, struct http_request *r, size_t *used)
{
	return http_request_parse(s, strlen(s), r, used);
}

START_TEST(t_get)
{
	const char *s = "GET /metrics HTTP/1.1\r\nHost: localhost:9464\r\n"
			"User-Agent: Prometheus/2.45\r\nAccept: text/plain\r\n\r\n";
	struct http_request r;
	size_t used = 0;

	ck_assert_int_eq(parse(s, &r, &used), 0);
	ck_assert_int_eq(r.method, HTTP_GET);
	ck_assert_int_eq(r.minor, 1);
	ck_assert_uint_eq(r.pathlen, 8);
	ck_assert(memcmp(r.path, "/metrics", 8) == 0);
	ck_assert_uint_eq(used, strlen(s));
}
END_TEST

START_TEST(t_head_query_http10)
{
	struct http_request r;
	size_t used;

	ck_assert_int_eq(parse("HEAD /readyz?verbose=1 HTTP/1.0\r\n\r\n", &r,
			       &used), 0);
	ck_assert_int_eq(r.method, HTTP_HEAD);
	ck_assert_int_eq(r.minor, 0);
	ck_assert_uint_eq(r.pathlen, 7);	/* the query is not the path */
	ck_assert(memcmp(r.path, "/readyz", 7) == 0);
	ck_assert_int_eq(parse("POST /x HTTP/1.1\r\n\r\n", &r, &used), 0);
	ck_assert_int_eq(r.method, HTTP_OTHER);	/* the caller says 405 */
	ck_assert_int_eq(parse("get /x HTTP/1.1\r\n\r\n", &r, &used), 0);
	ck_assert_int_eq(r.method, HTTP_OTHER);	/* methods are case-sensitive */
	ck_assert_int_eq(parse("GET /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
			       &r, &used), 0);
}
END_TEST

static const struct { const char *in; int want; } bad[] = {
	{ "hello there\r\n\r\n", 400 },
	{ "GET\r\n\r\n", 400 },
	{ "GET /x\r\n\r\n", 400 },
	{ " GET /x HTTP/1.1\r\n\r\n", 400 },
	{ "GET  /x HTTP/1.1\r\n\r\n", 400 },
	{ "GET x HTTP/1.1\r\n\r\n", 400 },			/* not origin-form */
	{ "GET http://a/x HTTP/1.1\r\n\r\n", 400 },
	{ "GET /x HTTP/1.1 \r\n\r\n", 505 },
	{ "GET /x FTP/1.1\r\n\r\n", 400 },
	{ "GET /x HTTP/2.0\r\n\r\n", 505 },
	{ "GET /x HTTP/1.x\r\n\r\n", 505 },
	{ "GET /x HTTP/1.1\n\n", 400 },				/* bare LF */
	{ "GET /x HTTP/1.1\r\nHost: a\n\r\n", 400 },
	{ "GET /x HTTP/1.1\rX\r\n\r\n", 400 },			/* bare CR */
	{ "GET /x HTTP/1.1\r\nNo colon\r\n\r\n", 400 },
	{ "GET /x HTTP/1.1\r\n: empty name\r\n\r\n", 400 },
	{ "GET /x HTTP/1.1\r\nHost : a\r\n\r\n", 400 },		/* space before ':' */
	{ "GET /x HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400 },
	{ "GET /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400 },
	{ "GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
	{ "GET /a\x7f HTTP/1.1\r\n\r\n", 400 },
	{ "G(T /x HTTP/1.1\r\n\r\n", 400 },
};

START_TEST(t_bad)
{
	struct http_request r;
	size_t used;

	ck_assert_msg(parse(bad[_i].in, &r, &used) == bad[_i].want,
		      "case %d: got %d, want %d", _i,
		      parse(bad[_i].in, &r, &used), bad[_i].want);
}
END_TEST

START_TEST(t_nul_is_bad)
{
	static const char s[] = "GET /x HTTP/1.1\r\nX: a\0b\r\n\r\n";
	struct http_request r;
	size_t used;

	ck_assert_int_eq(http_request_parse(s, sizeof(s) - 1, &r, &used), 400);
}
END_TEST

/* Every prefix of a good head is incomplete, never an error. */
START_TEST(t_incomplete)
{
	const char *s = "GET /healthz HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
	struct http_request r;
	size_t used;

	for (size_t n = 0; n < strlen(s); n++)
		ck_assert_msg(http_request_parse(s, n, &r, &used) == -EAGAIN,
			      "prefix %zu", n);
	ck_assert_int_eq(http_request_parse(s, strlen(s), &r, &used), 0);
}
END_TEST

START_TEST(t_bounds)
{
	char *buf = malloc(HTTP_MAX_HEADER + 64);
	struct http_request r;
	size_t used, n;

	ck_assert_ptr_nonnull(buf);
	/* A head that does not end within HTTP_MAX_HEADER: 431. */
	n = (size_t)snprintf(buf, HTTP_MAX_HEADER + 64, "GET / HTTP/1.1\r\nX: ");
	memset(buf + n, 'a', HTTP_MAX_HEADER + 64 - n);
	ck_assert_int_eq(http_request_parse(buf, HTTP_MAX_HEADER - 1, &r, &used),
			 -EAGAIN);
	ck_assert_int_eq(http_request_parse(buf, HTTP_MAX_HEADER, &r, &used), 431);
	ck_assert_int_eq(http_request_parse(buf, HTTP_MAX_HEADER + 64, &r, &used),
			 431);
	/* A request line with no end: 431 too. */
	memset(buf, 'G', HTTP_MAX_HEADER);
	ck_assert_int_eq(http_request_parse(buf, HTTP_MAX_HEADER, &r, &used), 431);
	/* A path over HTTP_MAX_PATH: 414; at it: fine. */
	for (int over = 0; over < 2; over++) {
		size_t plen = HTTP_MAX_PATH + (size_t)over;

		memcpy(buf, "GET /", 5);
		memset(buf + 5, 'p', plen - 1);
		n = 4 + plen;
		n += (size_t)snprintf(buf + n, 64, " HTTP/1.1\r\n\r\n");
		ck_assert_int_eq(http_request_parse(buf, n, &r, &used),
				 over ? 414 : 0);
	}
	free(buf);
}
END_TEST

START_TEST(t_reason)
{
	ck_assert_str_eq(http_reason(200), "OK");
	ck_assert_str_eq(http_reason(431), "Request Header Fields Too Large");
	ck_assert_str_eq(http_reason(599), "Error");
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, t_get);
	tcase_add_test(tc, t_head_query_http10);
	tcase_add_loop_test(tc, t_bad, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, t_nul_is_bad);
	tcase_add_test(tc, t_incomplete);
	tcase_add_test(tc, t_bounds);
	tcase_add_test(tc, t_reason);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(http_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
