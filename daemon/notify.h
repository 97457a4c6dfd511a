// SPDX-License-Identifier: Apache-2.0
/*
 * notify: stratad's side of systemd's service protocol (sd_notify(3)).
 *
 *   start ----[notify_ready: READY=1]----> serving
 *   serving --[notify_reloading: RELOADING=1]--> reload --[notify_ready]--> serving
 *   serving --[notify_stopping: STOPPING=1]--> draining -> exit
 *   STATUS=... lines along the way (systemctl status shows the last one).
 *
 * Watchdog: when systemd asks for one ($WATCHDOG_USEC, WatchdogSec=), a
 * uv_timer on the daemon's loop sends WATCHDOG=1 every half period.  The
 * ping comes from the loop itself, so a loop that is wedged (a callback that
 * never returns) stops pinging and systemd restarts the service: the pings
 * say "the loop turns", not merely "the process exists".
 *
 * Without $NOTIFY_SOCKET (not under systemd) every call does nothing.
 *
 * Test knob: with STRATAD_TEST_STALL=MS in the environment, SIGUSR1 makes
 * the loop sleep MS milliseconds inside a callback (a deliberately wedged
 * loop, to show that the watchdog pings stop).  Unset, SIGUSR1 keeps its
 * default action and nothing is installed.
 */
#ifndef STRATA_NOTIFY_H
#define STRATA_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct notify {
	uv_loop_t *loop;
	uv_timer_t watchdog;
	uv_signal_t stall;
	uint64_t watchdog_usec;		/* 0: no watchdog */
	unsigned stall_ms;		/* 0: no test knob */
	bool timer_init, stall_init;
};

/* Start the watchdog timer (if systemd wants one) and the test knob (if
 * set).  Returns 0, or -EINVAL for an unusable STRATAD_TEST_STALL. */
int notify_init(struct notify *n, uv_loop_t *loop);
/* Close the handles (their memory is n's: keep n until the loop is done). */
void notify_release(struct notify *n);

void notify_ready(const char *status);
void notify_reloading(void);
void notify_stopping(const char *status);
__attribute__((format(printf, 1, 2)))
void notify_status(const char *fmt, ...);

#endif
