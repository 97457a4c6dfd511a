// SPDX-License-Identifier: Apache-2.0
/*
 * log: one line per event on stderr, "<level> <subsystem>: message" (control
 * bytes in it written as \xNN, so that one line stays one line), which
 * journald keeps as is.  The level is the one process-wide setting Strata
 * allows itself (an atomic, set from config and SIGHUP): threading a logger
 * through every call would add noise for no safety.
 */
#ifndef STRATA_LOG_H
#define STRATA_LOG_H

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* "error", "warn", "info" or "debug". */
const char *log_level_name(enum log_level lvl);
/* Parses "error", "warn", "info", "debug"; returns -EINVAL otherwise. */
int log_parse_level(const char *s, enum log_level *out);

__attribute__((format(printf, 3, 4)))
void log_msg(enum log_level lvl, const char *subsys, const char *fmt, ...);

#define log_err(sub, ...) log_msg(LOG_ERR, sub, __VA_ARGS__)
#define log_warn(sub, ...) log_msg(LOG_WARN, sub, __VA_ARGS__)
#define log_info(sub, ...) log_msg(LOG_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...) log_msg(LOG_DEBUG, sub, __VA_ARGS__)

#endif
