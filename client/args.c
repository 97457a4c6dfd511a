// SPDX-License-Identifier: Apache-2.0
/*
 * args: command-line values of strata and strata-bench (see args.h).
 * Numbers are decimal digits only where the programs say so: strtoull()
 * alone would also take " 5", "+5" and "-5" (as 2^64 - 5).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "strata/strata.h"
#include "banned.h"

#define URL_SCHEME "strata://"

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

int args_url(const char *s, char **bucket, char **key)
{
	const char *b, *slash;

	*bucket = *key = NULL;
	if (strncmp(s, URL_SCHEME, strlen(URL_SCHEME)))
		return -EINVAL;
	b = s + strlen(URL_SCHEME);
	if (!*b || *b == '/')
		return -EINVAL;
	slash = strchr(b, '/');
	*bucket = slash ? strndup(b, (size_t)(slash - b)) : strdup(b);
	*key = strdup(slash ? slash + 1 : "");
	if (!*bucket || !*key) {
		free(*bucket);
		free(*key);
		*bucket = *key = NULL;
		return -ENOMEM;
	}
	return 0;
}

int args_age(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long n;
	uint64_t mul = 1;

	if (!digit(*s))
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	switch (*end) {
	case 0: case 's': break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	default: return -EINVAL;
	}
	if (*end && end[1])
		return -EINVAL;
	if (errno == ERANGE || n > ARGS_MAX_AGE_S / mul)
		return -ERANGE;
	*out = n * mul;
	return 0;
}

int args_range(const char *s, uint64_t *off, uint64_t *len)
{
	char *end, *e2;
	unsigned long long a, b;

	errno = 0;
	a = strtoull(s, &end, 10);
	if (errno || !digit(*s) || *end != '-')
		return -EINVAL;
	*off = a;
	*len = STRATA_TO_END;
	if (!end[1])
		return 0;
	b = strtoull(end + 1, &e2, 10);
	if (errno || !digit(end[1]) || *e2 || b < a)
		return -EINVAL;
	/* 0 to 2^64 - 1 is 2^64 bytes: every byte. */
	*len = b - a + 1 ? b - a + 1 : STRATA_TO_END;
	return 0;
}

int args_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!digit(*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int args_size(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!digit(*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	switch (*end) {
	case 'k': case 'K': mul = 1ull << 10; end++; break;
	case 'm': case 'M': mul = 1ull << 20; end++; break;
	case 'g': case 'G': mul = 1ull << 30; end++; break;
	case 't': case 'T': mul = 1ull << 40; end++; break;
	default: break;
	}
	if (mul > 1 && *end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (errno || *end || v > UINT64_MAX / mul)
		return -EINVAL;
	if (v * mul > max)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

int args_seconds(const char *s, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (errno || *end || end == s || !(d > 0) || d > 1e6)
		return -EINVAL;
	*out = d;
	return 0;
}

/*
 * Bytes from elsewhere (a key from the node, a tar member's name) for a
 * message: control bytes as \n, \t or \xNN and '\\' doubled, as
 * strata(1) shows keys, so that a name cannot split the line or reach the
 * terminal as an escape sequence; UTF-8 passes through.  Cut where out
 * (cap bytes) is full.
 */
const char *args_escape(const char *s, char *out, size_t cap)
{
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[8];
		int k;

		if (c == '\\')
			k = snprintf(e, sizeof(e), "\\\\");
		else if (c == '\n')
			k = snprintf(e, sizeof(e), "\\n");
		else if (c == '\t')
			k = snprintf(e, sizeof(e), "\\t");
		else if (c < 0x20 || c == 0x7f)
			k = snprintf(e, sizeof(e), "\\x%02x", c);
		else
			k = snprintf(e, sizeof(e), "%c", c);
		if (n + (size_t)k >= cap)
			break;
		memcpy(out + n, e, (size_t)k);
		n += (size_t)k;
	}
	out[n] = '\0';
	return out;
}
