/* client.c - see client.h. Plain blocking sockets with poll() for timeouts: a client that
 * follows one connection needs nothing more. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "client.h"
#include "vt_base.h"

static int split(const char *addr, char *host, size_t hl, char *port, size_t pl) {
    const char *colon;
    size_t n;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return -1;
        n = (size_t)(close - addr - 1);
        addr++;
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return -1;
        n = (size_t)(colon - addr);
    }
    if (n == 0 || n >= hl || strlen(colon + 1) == 0 || strlen(colon + 1) >= pl)
        return -1;
    /* a port number 1..65535 (getaddrinfo would take 99999 modulo 65536, or a service name) */
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || p < 1 || p > 65535)
        return -1;
    memcpy(host, addr, n);
    host[n] = 0;
    strcpy(port, colon + 1);
    return 0;
}

static int connect_to(const char *addr, int timeout_ms, char *err, size_t errlen) {
    char host[256], port[16];
    if (split(addr, host, sizeof host, port, sizeof port) < 0) {
        snprintf(err, errlen, "'%s' is not HOST:PORT (port 1..65535)", addr);
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = -1, last = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            last = errno;
            close(fd);
            fd = -1;
            continue;
        }
        /* The socket stays non-blocking: reads and writes below poll first. */
        struct pollfd p = {fd, POLLOUT, 0};
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (poll(&p, 1, timeout_ms) <= 0)
            last = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
            break;
        else
            last = soerr ? soerr : errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot connect to %s: %s", addr, strerror(last));
    return fd;
}

int vt_client_read(vt_client *c, int timeout_ms, char **line, size_t *len) {
    long long deadline = timeout_ms >= 0 ? vt_mono_us() / 1000 + timeout_ms : 0;
    for (;;) {
        char *nl = c->len > c->off ? memchr(c->buf + c->off, '\n', c->len - c->off) : NULL;
        if (nl) {
            *line = c->buf + c->off;
            *len = (size_t)(nl - *line);
            if (*len && (*line)[*len - 1] == '\r')
                (*len)--;
            (*line)[*len] = 0;
            c->off = (size_t)(nl - c->buf) + 1;
            return 1;
        }
        if (c->off) { /* keep the partial line at the start */
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        if (c->len + 65536 + 1 > c->cap) {
            if (c->cap >= VT_CLIENT_LINE_MAX) {
                errno = EMSGSIZE;
                return -1;
            }
            size_t cap = c->cap ? 2 * c->cap : 131072;
            char *p = realloc(c->buf, cap);
            if (!p)
                return -1;
            c->buf = p;
            c->cap = cap;
        }
        struct pollfd p = {c->fd, POLLIN, 0};
        int wait = -1;
        if (timeout_ms >= 0) {
            long long left = deadline - vt_mono_us() / 1000;
            if (left <= 0)
                return -2;
            wait = (int)left;
        }
        int rc = poll(&p, 1, wait);
        if (rc < 0 && errno == EINTR)
            return -1;
        if (rc == 0)
            return -2;
        if (rc < 0)
            return -1;
        ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        c->len += (size_t)n;
    }
}

int vt_client_send(vt_client *c, const char *line) {
    size_t n = strlen(line);
    const char *parts[2] = {line, "\n"};
    size_t lens[2] = {n, 1};
    for (int i = 0; i < 2; i++) {
        size_t off = 0;
        while (off < lens[i]) {
            ssize_t w = send(c->fd, parts[i] + off, lens[i] - off, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                struct pollfd p = {c->fd, POLLOUT, 0};
                poll(&p, 1, 1000);
                continue;
            }
            if (w < 0)
                return -1;
            off += (size_t)w;
        }
    }
    return 0;
}

int vt_client_open(vt_client *c, const char *addr, const char *token, int timeout_ms, char *err,
                   size_t errlen) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
    if (!addr)
        addr = getenv("VTRACK_ADDR") && *getenv("VTRACK_ADDR") ? getenv("VTRACK_ADDR")
                                                               : VT_CLIENT_DEFAULT_ADDR;
    if ((c->fd = connect_to(addr, timeout_ms, err, errlen)) < 0)
        return -1;
    char *line;
    size_t len;
    int rc = vt_client_read(c, timeout_ms, &line, &len);
    if (rc <= 0) {
        snprintf(err, errlen, "%s: no greeting from the server (%s)", addr,
                 rc == 0    ? "connection closed"
                 : rc == -2 ? "timed out"
                            : strerror(errno));
        return -1;
    }
    cJSON *j = cJSON_Parse(line);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "hello") != 0) {
        snprintf(err, errlen, "%s: not a vtrackd greeting: %.200s", addr, line);
        cJSON_Delete(j);
        return -1;
    }
    c->auth = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "auth"));
    cJSON_Delete(j);
    if (!token && c->auth)
        token = getenv("VTRACK_TOKEN");
    if (!token)
        return 0;
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "op", "hello");
    cJSON_AddStringToObject(h, "id", "auth");
    cJSON_AddStringToObject(h, "token", token);
    cJSON_AddNumberToObject(h, "protocol", 1);
    char *text = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    rc = text ? vt_client_send(c, text) : -1;
    free(text);
    if (rc < 0 || (rc = vt_client_read(c, timeout_ms, &line, &len)) <= 0) {
        snprintf(err, errlen, "%s: hello failed (%s)", addr,
                 rc == 0    ? "connection closed"
                 : rc == -2 ? "timed out"
                            : strerror(errno));
        return -1;
    }
    j = cJSON_Parse(line);
    type = cJSON_GetObjectItemCaseSensitive(j, "type");
    int ok = cJSON_IsString(type) && strcmp(type->valuestring, "reply") == 0;
    if (!ok) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
        snprintf(err, errlen, "%s: %s", addr,
                 cJSON_IsString(m) ? m->valuestring : "the server refused the token");
    }
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

void vt_client_close(vt_client *c) {
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}
