// SPDX-License-Identifier: Apache-2.0
/*
 * strata_strerror(): one table for Strata's own error codes, strerror() for
 * the errno values.  Lives in proto/ because error codes travel on the wire
 * and both the daemon and the client link it.
 */
#include <string.h>

#include "strata/error.h"
#include "banned.h"

static const char *const strata_errors[] = {
	[-(STRATA_ECORRUPT - STRATA_E_FIRST)] = "stored data is corrupt",
	[-(STRATA_ENOBUCKET - STRATA_E_FIRST)] = "no such bucket",
	[-(STRATA_ENOOBJECT - STRATA_E_FIRST)] = "no such object",
	[-(STRATA_EBUCKETEXISTS - STRATA_E_FIRST)] = "bucket already exists",
	[-(STRATA_EBUCKETNOTEMPTY - STRATA_E_FIRST)] = "bucket is not empty",
	[-(STRATA_EBADBUCKET - STRATA_E_FIRST)] =
		"invalid bucket name (3-63 characters of a-z, 0-9, '.', '-', starting and ending with a letter or digit, no '..', not an IPv4 address)",
	[-(STRATA_EBADKEY - STRATA_E_FIRST)] =
		"invalid object key (1-1024 bytes of valid UTF-8, no NUL)",
	[-(STRATA_EMASTERKEY - STRATA_E_FIRST)] =
		"master key does not match this store",
	[-(STRATA_EKEYFILE - STRATA_E_FIRST)] =
		"bad key file (must be 32 raw bytes or 64 hex digits, mode 0600 or stricter)",
	[-(STRATA_ERANGE - STRATA_E_FIRST)] = "byte range outside the object",
	[-(STRATA_EINDEX - STRATA_E_FIRST)] = "index (RocksDB) error",
	[-(STRATA_ECLOSING - STRATA_E_FIRST)] = "store is closing",
	[-(STRATA_EABORTED - STRATA_E_FIRST)] = "operation aborted",
	[-(STRATA_EFORMAT - STRATA_E_FIRST)] =
		"unknown on-disk format version (written by a newer Strata?)",
	[-(STRATA_ECONFIG - STRATA_E_FIRST)] = "invalid configuration",
	[-(STRATA_EBADMETA - STRATA_E_FIRST)] =
		"invalid metadata (too many or too large entries)",
	[-(STRATA_EPROTO - STRATA_E_FIRST)] = "malformed protocol frame",
	[-(STRATA_EPROTOVERSION - STRATA_E_FIRST)] =
		"unsupported protocol version",
	[-(STRATA_EAUTH - STRATA_E_FIRST)] =
		"authentication failed (unknown access key or wrong secret)",
	[-(STRATA_ECERT - STRATA_E_FIRST)] =
		"server certificate not trusted (unknown CA, expired or not yet valid, or wrong host name)",
	[-(STRATA_ECHANGED - STRATA_E_FIRST)] =
		"the object changed (overwritten or deleted) while being read",
	[-(STRATA_EBADPOLICY - STRATA_E_FIRST)] =
		"invalid access policy document",
};

const char *strata_strerror(int err)
{
	if (err == 0)
		return "success";
	if (err <= STRATA_E_FIRST && err >= STRATA_E_LAST)
		return strata_errors[-(err - STRATA_E_FIRST)];
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}
