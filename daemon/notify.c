// SPDX-License-Identifier: Apache-2.0
/*
 * notify: sd_notify messages and the watchdog timer (see notify.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "log.h"
#include "notify.h"
#include "banned.h"

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	sd_notify(0, "WATCHDOG=1");
}

static void on_stall(uv_signal_t *h, int signum)
{
	struct notify *n = h->data;
	struct timespec ts = { .tv_sec = n->stall_ms / 1000,
			       .tv_nsec = (long)(n->stall_ms % 1000) * 1000000 };

	(void)signum;
	log_warn("notify", "STRATAD_TEST_STALL: stalling the loop for %u ms",
		 n->stall_ms);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	log_warn("notify", "STRATAD_TEST_STALL: the loop runs again");
}

int notify_init(struct notify *n, uv_loop_t *loop)
{
	const char *stall = getenv("STRATAD_TEST_STALL");
	uint64_t usec = 0;

	n->loop = loop;
	n->watchdog_usec = 0;
	n->stall_ms = 0;
	n->timer_init = n->stall_init = false;
	if (stall && *stall) {
		char *end;
		unsigned long ms;

		errno = 0;
		ms = strtoul(stall, &end, 10);
		if (errno || *end || !ms || ms > 600000) {
			log_err("notify", "STRATAD_TEST_STALL=%s: want 1 to 600000 "
				"(milliseconds)", stall);
			return -EINVAL;
		}
		n->stall_ms = (unsigned)ms;
		uv_signal_init(loop, &n->stall);
		n->stall.data = n;
		n->stall_init = true;
		uv_signal_start(&n->stall, on_stall, SIGUSR1);
		log_warn("notify", "test knob on: SIGUSR1 stalls the loop for %u ms",
			 n->stall_ms);
	}
	/* > 0: systemd wants pings (WATCHDOG_PID, if set, is ours). */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec) {
		uint64_t ms = usec / 2000;

		n->watchdog_usec = usec;
		uv_timer_init(loop, &n->watchdog);
		n->timer_init = true;
		uv_timer_start(&n->watchdog, on_watchdog, 0, ms ? ms : 1);
		/* The timer must not keep a stopping loop alive. */
		uv_unref((uv_handle_t *)&n->watchdog);
		log_info("notify", "systemd watchdog: %llu ms, pinging every %llu ms",
			 (unsigned long long)(usec / 1000),
			 (unsigned long long)(ms ? ms : 1));
	}
	return 0;
}

void notify_release(struct notify *n)
{
	if (n->timer_init && !uv_is_closing((uv_handle_t *)&n->watchdog))
		uv_close((uv_handle_t *)&n->watchdog, NULL);
	if (n->stall_init && !uv_is_closing((uv_handle_t *)&n->stall))
		uv_close((uv_handle_t *)&n->stall, NULL);
}

void notify_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void notify_reloading(void)
{
	struct timespec ts;

	/* MONOTONIC_USEC lets systemd (Type=notify-reload) tell this reload
	 * from an older one. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
		   (unsigned long long)ts.tv_sec * 1000000ull +
		   (unsigned long long)ts.tv_nsec / 1000);
}

void notify_stopping(const char *status)
{
	sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status);
}

void notify_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", buf);
}
