// SPDX-License-Identifier: Apache-2.0
/* audit_format: see audit_format.h.  (Skeleton: replaced.) */
#include <errno.h>
#include <string.h>

#include "strata/error.h"
#include "audit_format.h"

int audit_format(uint64_t seq, const uint8_t prev[AUDIT_HASH_LEN],
		 const struct audit_record *r, char **line, size_t *len,
		 uint8_t hash[AUDIT_HASH_LEN])
{
	(void)seq; (void)prev; (void)r; (void)line; (void)len; (void)hash;
	return -ENOSYS;
}

int audit_verify_buf(const uint8_t *buf, size_t len, struct audit_verify *v)
{
	(void)buf; (void)len;
	memset(v, 0, sizeof(*v));
	return STRATA_ECORRUPT;
}

int audit_verify_file(const char *path, struct audit_verify *v)
{
	(void)path;
	memset(v, 0, sizeof(*v));
	return STRATA_ECORRUPT;
}

int audit_parse_line(const char *line, size_t len, uint64_t *seq,
		     uint8_t hash[AUDIT_HASH_LEN])
{
	(void)line; (void)len; (void)seq; (void)hash;
	return STRATA_ECORRUPT;
}
