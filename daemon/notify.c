/* notify.c - see notify.h. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"
#include "vt_config.h"

#if VT_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

int vtd_notify(const char *state) {
    return sd_notify(0, state);
}

uint64_t vtd_notify_watchdog_usec(void) {
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

int vtd_notify_listen_fds(void) {
    int n = sd_listen_fds(1);
    return n > 0 ? n : 0;
}

#else
/* The same protocols, spoken directly (see sd_notify(3), sd_listen_fds(3)). */

int vtd_notify(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0])
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
        return -EINVAL;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@')
        sa.sun_path[0] = 0; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
    int rc = w < 0 ? -errno : 1;
    close(fd);
    return rc;
}

static int for_us(const char *pidvar) {
    const char *p = getenv(pidvar);
    return !p || atol(p) == (long)getpid();
}

uint64_t vtd_notify_watchdog_usec(void) {
    const char *u = getenv("WATCHDOG_USEC");
    if (!u || !for_us("WATCHDOG_PID"))
        return 0;
    char *end;
    unsigned long long v = strtoull(u, &end, 10);
    return *end == 0 ? (uint64_t)v : 0;
}

int vtd_notify_listen_fds(void) {
    const char *n = getenv("LISTEN_FDS");
    int count = 0;
    if (n && getenv("LISTEN_PID") && atol(getenv("LISTEN_PID")) == (long)getpid())
        count = atoi(n);
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDNAMES");
    return count > 0 ? count : 0;
}
#endif
