// SPDX-License-Identifier: Apache-2.0
/* audit: see audit.h.  (Skeleton: replaced.) */
#include <errno.h>
#include <string.h>

#include "audit.h"

int audit_open(uv_loop_t *loop, const char *path, uint32_t sync_ms,
	       struct audit **out)
{
	(void)loop; (void)path; (void)sync_ms;
	*out = NULL;
	return -ENOSYS;
}

void audit_append(struct audit *a, const struct audit_record *r)
{
	(void)a; (void)r;
}

void audit_flush(struct audit *a)
{
	(void)a;
}

void audit_stats(const struct audit *a, struct audit_stats *st)
{
	(void)a;
	memset(st, 0, sizeof(*st));
}

void audit_close(struct audit *a, void (*cb)(void *arg), void *arg)
{
	(void)a;
	if (cb)
		cb(arg);
}
