// SPDX-License-Identifier: Apache-2.0
/*
 * audit_format: the audit log's record format, shared by stratad (which writes
 * it, daemon/audit.h) and `strata admin audit verify` (which checks it).
 *
 * The log is a text file of lines, one record each, every line a JSON
 * object whose first members are "seq" and "prev" and whose last is
 * "hash":
 *
 *   {"seq":7,"prev":"<64 hex>","time":"2026-11-28T04:40:00.123Z",
 *    "principal":"AK...","peer":"127.0.0.1:40312","op":"GET",
 *    "bucket":"b","key":"k","status":0,"in":0,"out":4096,
 *    "hash":"<64 hex>"}
 *
 * hash = SHA-256 of the line's bytes before `,"hash":` (so it covers seq,
 * prev and every field); prev = the previous record's hash (64 zeros for
 * seq 1); seq counts from 1 with no gap.  Editing a record breaks its hash;
 * removing or inserting one breaks the next record's prev and seq.
 *
 * Strings are JSON strings: '"' and '\' escaped; bytes below 0x20, 0x7f,
 * and bytes that are not part of a valid UTF-8 sequence as \u00XX, XX the
 * byte's value (valid UTF-8 is written as is, so \u0080..\u00ff in the
 * line's text always mean raw bytes of a name that is not UTF-8).  Each
 * string but the key takes at most 512 bytes so escaped, the key what is
 * left of AUDIT_LINE_MAX (at least 13,997 bytes: any key the protocol
 * carries, PROTO_MAX_KEY_LEN, fits escaped); a longer one is cut at a
 * character and ends in "...", so that the line, '\n' included, never
 * passes AUDIT_LINE_MAX.  "key" is left out when the record has none.
 *
 * The checker reads no JSON: it checks the fixed prefix
 * {"seq":N,"prev":"<64 hex>", (N without leading zeros), the fixed suffix
 * ,"hash":"<64 hex>"} (hex in lowercase), the hash, prev and seq, that no
 * line is longer than AUDIT_LINE_MAX and none holds a NUL byte.
 */
#ifndef STRATA_AUDIT_FORMAT_H
#define STRATA_AUDIT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_HASH_LEN 32
/* Longest line audit_format() makes, its '\n' included (keys are
 * escaped, at most 6 bytes per key byte), and the longest the verifier
 * accepts, its '\n' not counted. */
#define AUDIT_LINE_MAX (16u << 10)

struct audit_record {
	int64_t time_ms;		/* Unix time, ms (kept to 0..year 9999) */
	/* NUL-terminated; NULL is taken as "" */
	const char *principal;		/* access key id, or "-" */
	const char *peer;		/* "addr:port", or "-" */
	const char *op;			/* "GET", "PUT", "KEY_CREATE", ... */
	const char *bucket;		/* "" when none */
	const char *key;		/* NULL when none; any bytes but NUL */
	size_t keylen;
	int status;			/* 0, or the error code answered */
	uint64_t in, out;		/* body bytes received, sent */
};

/*
 * Format record seq (chained to prev) as one line ending in '\n'.
 *   [out] line  malloc'd, the caller frees it; *len bytes and a NUL after
 *               them (not counted); at most AUDIT_LINE_MAX bytes
 *   [out] hash  this record's hash (the next record's prev)
 * Returns 0 or -ENOMEM.
 */
int audit_format(uint64_t seq, const uint8_t prev[AUDIT_HASH_LEN],
		 const struct audit_record *r, char **line, size_t *len,
		 uint8_t hash[AUDIT_HASH_LEN]);

/* What a verification found. */
struct audit_verify {
	uint64_t records;		/* complete, intact records read */
	uint64_t last_seq;		/* seq of the last intact record */
	uint8_t head[AUDIT_HASH_LEN];	/* its hash (zeros when none) */
	uint64_t bad_line;		/* 1-based line of the first fault */
	bool torn_tail;			/* the file ends in a partial line */
	char why[256];			/* the first fault, for people */
};

/*
 * Check a chain held in memory: every line's hash, prev and seq; the
 * first line's seq must be 1 and its prev zeros.  A last line with no
 * newline is a torn write (crash): reported in torn_tail, not a fault
 * (unless longer than AUDIT_LINE_MAX), and not counted in records.  An
 * empty buffer is intact, with 0 records.  Checking stops at the first
 * fault; records, last_seq and head then describe the lines before it.
 * Returns 0 (intact; bad_line 0, why "") or STRATA_ECORRUPT (bad_line and
 * why, NUL-terminated, say where and what: "line 9: seq 11 follows 9
 * (records removed)").
 */
int audit_verify_buf(const uint8_t *buf, size_t len, struct audit_verify *v);

/*
 * The same over a file, read in 64 KiB pieces (any size, memory bounded;
 * the same answers as audit_verify_buf on the file's bytes).
 * Returns 0, STRATA_ECORRUPT, -ENOMEM, or -errno from open/read
 * (-EISDIR for a directory).
 */
int audit_verify_file(const char *path, struct audit_verify *v);

/*
 * Parse one complete line (without its '\n'): its seq and hash, checking
 * the hash.  The writer uses it on the log's last line to continue the
 * chain after a restart.  Returns 0 or STRATA_ECORRUPT.
 */
int audit_parse_line(const char *line, size_t len, uint64_t *seq,
		     uint8_t hash[AUDIT_HASH_LEN]);

#endif
