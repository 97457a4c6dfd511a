// SPDX-License-Identifier: Apache-2.0
/*
 * config: stratad.conf, one INI file (stratad.conf(5) documents every key).
 * Unknown sections and keys are errors, with a "did you mean" when a known
 * one is close: a typo must never silently fall back to a default.
 */
#ifndef STRATA_CONFIG_H
#define STRATA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "store.h"

/* A file or directory name, NUL included. */
#define CONFIG_PATH_MAX 1024
/*
 * Bytes in one line of the file, its newline (and a \r before it) not
 * counted: what inih's line buffer holds (INI_MAX_LINE, 200 in Debian's
 * build) less the "\n" and NUL that config.c's reader puts after the line.
 * config.c checks it against <ini.h>.  A longer path can be reached
 * through a symbolic link.
 */
#define CONFIG_LINE_MAX 198
/* Bytes in the whole file: far more than every key with a comment needs. */
#define CONFIG_FILE_MAX (1 << 20)

/* [store] index_write_buffer_size: 0 (no cap), or at least this. */
#define INDEX_WRITE_BUFFER_MIN ((uint64_t)4 << 20)

struct config {
	/* [node] */
	uint32_t node_id;
	char state_dir[CONFIG_PATH_MAX];	/* index, admin key */
	char listen_host[256];			/* an IP literal, no brackets */
	int listen_port;
	unsigned max_connections;
	uint64_t max_output_buffer;		/* all connections; 0: no cap */
	int io_threads;				/* -1: one per core (auto) */
	uint32_t shutdown_grace_ms;	/* SIGTERM: requests may finish */
	uint32_t send_timeout_ms;	/* a reader that reads nothing */
	uint32_t body_timeout_ms;	/* an upload that stopped */
	uint32_t auth_timeout_ms;	/* TLS done to AUTH accepted */
	uint64_t answer_cache_size;	/* anscache.h; 0: none */
	bool io_uring_sends;		/* net_server_set_uring */
	/* [tls] */
	char tls_cert[CONFIG_PATH_MAX];
	char tls_key[CONFIG_PATH_MAX];
	char tls_client_ca[CONFIG_PATH_MAX];	/* empty: none */
	/* [keys] */
	char master_key[CONFIG_PATH_MAX];
	/* [tiers]: comma-separated directory lists */
	char tier_dirs[STORE_TIERS][STORE_MAX_TIER_DIRS][CONFIG_PATH_MAX];
	unsigned ntier_dirs[STORE_TIERS];
	uint64_t tier_capacity[STORE_TIERS];	/* 0: the file systems' */
	uint32_t hot_high_pct, hot_low_pct;
	uint64_t mover_rate;			/* bytes/s, 0: no cap */
	uint32_t promote_reads;
	uint32_t promote_window_s;
	uint32_t prestage_ahead;
	uint32_t lifecycle_interval_s;
	bool accept_missing_dirs;	/* start without a lost disk's data */
	uint32_t tier_read_delay_us[STORE_TIERS];	/* test knobs */
	uint64_t tier_read_bw[STORE_TIERS];
	/* [store] */
	uint32_t chunk_size;
	int zstd_level;
	int32_t inline_max;
	uint64_t segment_size;
	uint64_t cache_size;			/* 0: no cache */
	uint64_t transfer_memory;		/* see config_auto_transfer */
	uint64_t index_cache_size;		/* RocksDB block cache */
	uint64_t index_write_buffer_size;	/* all memtables; 0: no cap */
	/* [log] */
	enum log_level log_level;
	bool log_access;			/* a line per request */
	/* [admin]: HTTP metrics and health; empty host: off */
	char admin_host[256];
	int admin_port;
	unsigned admin_max_connections;
	unsigned admin_timeout_ms;
	/* [audit]: fixed at start (a reload names them: restart to apply) */
	char audit_path[CONFIG_PATH_MAX];	/* empty: no audit log */
	uint32_t audit_sync_ms;		/* fdatasync this long after a write */
};

/* Defaults for every key. */
/* cache_size = auto (the default): a quarter of the memory this process
 * may use (its cgroup's limit, else the machine's), at least
 * CONFIG_CACHE_MIN. */
#define CONFIG_CACHE_MIN ((uint64_t)64 << 20)
uint64_t config_auto_cache(void);
/* transfer_memory's default: an eighth of that memory, between
 * CONFIG_CACHE_MIN and 1 GiB. */
uint64_t config_auto_transfer(void);

void config_defaults(struct config *c);

/*
 * Read path over the defaults.  On error, errbuf lists every problem found,
 * one per line ("FILE:LINE: [section] key: why"), not only the first; bytes
 * of the file that are not printable ASCII show as \xNN.
 * Checks the file only, never the machine, except that tier directories
 * that exist are compared by realpath() (one directory listed twice).
 * Returns 0, -errno (cannot read the file, -EISDIR included),
 * STRATA_ECONFIG (problems, or more than CONFIG_FILE_MAX bytes: /dev/zero
 * and the like end there, with that one line in errbuf).
 */
int config_load(struct config *c, const char *path, char *errbuf,
		size_t errlen);

/*
 * s for a message: bytes that are not printable ASCII as \xNN, so that a
 * binary file cannot send escape sequences to a terminal or the log; cut
 * with "..." where cap (at least 4) is short.  Returns buf.
 */
const char *config_esc(char *buf, size_t cap, const char *s);

/*
 * What only a starting daemon needs of the machine: every tier directory
 * exists, is a directory and is writable, and so is state_dir if it exists;
 * [audit] path's directory too (it may be missing only when it is
 * state_dir, which the daemon creates), and the path, if it exists, is a
 * regular file, not a symbolic link.
 * Problems go to errbuf as config_load's do.
 * Returns 0 or STRATA_ECONFIG.
 */
int config_check_dirs(const struct config *c, char *errbuf, size_t errlen);

/* Fill store options from the config (pointers into c). */
void config_store_opts(const struct config *c, struct store_opts *o,
		       const char *index_dir, const char *const *dirs[STORE_TIERS]);

#endif
