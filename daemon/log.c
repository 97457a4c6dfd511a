// SPDX-License-Identifier: Apache-2.0
/*
 * log: formats a whole line into one buffer and writes it with one write(2),
 * so lines from threads never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "banned.h"

static atomic_int log_level = LOG_INFO;

static const char *const level_names[] = {
	[LOG_ERR] = "error", [LOG_WARN] = "warn",
	[LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_set_level(enum log_level lvl)
{
	atomic_store(&log_level, (int)lvl);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level);
}

const char *log_level_name(enum log_level lvl)
{
	return (unsigned)lvl <= LOG_DEBUG ? level_names[lvl] : "?";
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_msg(enum log_level lvl, const char *subsys, const char *fmt, ...)
{
	static const char hex[] = "0123456789abcdef";
	char line[1024], out[1024];
	va_list ap;
	size_t o = 0;
	int n, m;

	if ((int)lvl > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	n = snprintf(line, sizeof(line), "%s %s: ", level_names[lvl], subsys);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;	/* truncated: still one line */
	/*
	 * Never let a message break the one-line rule, nor carry control
	 * bytes (a client's access key id, a file name) to a terminal or
	 * the journal: they go out as \xNN.
	 */
	for (int i = 0; i < n && o + 5 < sizeof(out); i++) {
		unsigned char ch = (unsigned char)line[i];

		if (ch < 0x20 || ch == 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o++] = '\n';
	(void)!write(STDERR_FILENO, out, o);
}
