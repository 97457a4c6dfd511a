// SPDX-License-Identifier: Apache-2.0
/* policy: see policy.h.  (Skeleton: replaced by the engine.) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata/error.h"
#include "policy.h"

struct policy {
	int unused;
};

int policy_parse(const char *json, size_t len, struct policy **out,
		 char *err, size_t errlen)
{
	(void)json;
	(void)len;
	*out = NULL;
	snprintf(err, errlen, "not implemented");
	return STRATA_EBADPOLICY;
}

void policy_free(struct policy *p)
{
	free(p);
}

enum policy_decision policy_eval(const struct policy *p,
				 const struct policy_request *r)
{
	(void)p;
	(void)r;
	return POLICY_DENY;
}

bool policy_may_allow_prefix(const struct policy *p,
			     const struct policy_request *r)
{
	(void)p;
	(void)r;
	return false;
}

bool policy_allows_all(const struct policy *p, uint32_t action)
{
	(void)p;
	(void)action;
	return false;
}

const char *policy_action_name(uint32_t action)
{
	(void)action;
	return NULL;
}

uint32_t policy_action_parse(const char *name)
{
	(void)name;
	return 0;
}
