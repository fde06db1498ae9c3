/*
 * notify.h - the service manager protocol (sd_notify, watchdog, socket activation).
 *
 * With libsystemd (VT_HAVE_SYSTEMD) these call sd_notify(), sd_watchdog_enabled() and
 * sd_listen_fds(); without it they speak the same small protocols directly (a datagram to
 * $NOTIFY_SOCKET; $WATCHDOG_USEC/$WATCHDOG_PID; $LISTEN_FDS/$LISTEN_PID), so a build without
 * libsystemd still runs as Type=notify. Outside systemd every call is a cheap no-op.
 */
#ifndef VTD_NOTIFY_H
#define VTD_NOTIFY_H

#include <stdint.h>

/* Send one notification ("READY=1", "STATUS=...", several lines allowed). Returns > 0 when
 * sent, 0 when no service manager listens, or a negative errno. */
int vtd_notify(const char *state);

/* The watchdog interval systemd expects pings within, in microseconds; 0 when disabled. */
uint64_t vtd_notify_watchdog_usec(void);

/* Sockets passed by socket activation: their count (they are fds 3, 4, ...); 0 when none.
 * Unsets the LISTEN_* variables so children do not inherit them. */
int vtd_notify_listen_fds(void);

#define VTD_LISTEN_FDS_START 3

#endif
