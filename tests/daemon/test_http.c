/*
 * test_http.c - vtrackd's HTTP API over real loopback sockets: every endpoint with and without
 * the token, commands with the TCP protocol's rules (conflicts, limits, bad shapes), the JPEG of
 * the latest frame, /metrics checked by a Prometheus text parser written here, a WebSocket viewer
 * receiving frames (frame event + JPEG), and bad requests (malformed, oversized head and body,
 * unsupported encodings and versions, slow clients) answered with the right status while
 * everyone else is still served.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testmain.h"
#include "dtest.h"
#include "vt_base.h"

#define TOKEN   "sekrit-123"
#define WAIT_MS 10000

static const char *video(void) {
    const char *v = dt_video("v160.mp4", 160, 120, 250, 25);
    ck_assert_msg(v != NULL, "ffmpeg could not make the test video");
    return v;
}

/* The configuration: a camera-paced stream "cam", the token `token`, and an "http" object with
 * `extra` (none when http is NULL). Static buffer. */
static const char *conf(const char *token, const char *extra) {
    static char buf[4096], http[1024];
    if (extra)
        snprintf(http, sizeof http, "\"http\":{\"listen\":\"127.0.0.1:@HTTP_PORT@\"%s%s},",
                 extra[0] ? "," : "", extra);
    snprintf(buf, sizeof buf,
             "{\"listen\":\"127.0.0.1:@PORT@\",\"model\":\"lab\",\"log_level\":\"debug\","
             "\"token\":\"%s\",\"limits\":{\"streams\":2},"
             "\"clients\":{\"allow_add_streams\":true,\"allow_local_urls\":true},%s"
             "\"streams\":[{\"name\":\"cam\",\"url\":\"%s\",\"pacing\":\"camera\"}]}",
             token, extra ? http : "", video());
    return buf;
}

/* A daemon on conf(TOKEN, extra). */
static void start(dt_daemon *d, const char *extra) {
    ck_assert_int_eq(dt_start(d, conf(TOKEN, extra), NULL), 0);
    ck_assert_msg(tu_wait_port(d->http_port, 10000) == 0, "the HTTP port does not open");
}

static void stop(dt_daemon *d) {
    int st = dt_stop(d, SIGTERM, 10000, NULL);
    if (st != 0)
        dt_log_dump(d);
    ck_assert_int_eq(st, 0);
}

/* ---------------------------------------------------------------------------------------------
 * A blocking HTTP client
 * ------------------------------------------------------------------------------------------- */

static int connect_port(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return; /* the server may close early (an error answer) */
        p += k;
        n -= (size_t)k;
    }
}

typedef struct resp {
    int status;
    char head[4096];
    char *body;
    size_t blen;
} resp;

/* Read one response (head + Content-Length body) within timeout_ms: 0, or -1 (EOF/timeout). */
static int read_resp(int fd, resp *r, int timeout_ms) {
    static char buf[1 << 21];
    size_t len = 0;
    int64_t end = vt_mono_us() / 1000 + timeout_ms;
    memset(r, 0, sizeof *r);
    char *hend = NULL;
    size_t need = 0;
    for (;;) {
        if (!hend && (hend = memmem(buf, len, "\r\n\r\n", 4))) {
            size_t hl = (size_t)(hend - buf) + 4;
            snprintf(r->head, sizeof r->head, "%.*s", (int)hl, buf);
            sscanf(buf, "HTTP/1.1 %d", &r->status);
            const char *cl = strcasestr(r->head, "\r\nContent-Length:");
            need = hl + (cl ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (hend && len >= need) {
            size_t hl = (size_t)(hend - buf) + 4;
            r->blen = need - hl;
            r->body = malloc(r->blen + 1);
            memcpy(r->body, buf + hl, r->blen);
            r->body[r->blen] = 0;
            return 0;
        }
        int left = (int)(end - vt_mono_us() / 1000);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        ssize_t k = recv(fd, buf + len, sizeof buf - len, 0);
        if (k <= 0)
            return -1;
        len += (size_t)k;
    }
}

/* One request on a fresh connection: method, path, extra header lines, body (may be NULL). */
static resp *req(int port, const char *method, const char *path, const char *headers,
                 const char *body) {
    resp *r = calloc(1, sizeof *r);
    char head[4096];
    int fd = connect_port(port);
    snprintf(head, sizeof head,
             "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s"
             "Content-Length: %zu\r\n\r\n",
             method, path, headers ? headers : "", body ? strlen(body) : 0);
    send_all(fd, head, strlen(head));
    if (body)
        send_all(fd, body, strlen(body));
    int rc = read_resp(fd, r, WAIT_MS);
    close(fd);
    ck_assert_msg(rc == 0, "%s %s: no answer", method, path);
    return r;
}

#define AUTH "Authorization: Bearer " TOKEN "\r\n"

static void resp_free(resp *r) {
    free(r->body);
    free(r);
}

/* Status of a request, with the body in *json (parsed; the caller frees) when asked. */
static int call(int port, const char *method, const char *path, const char *body, cJSON **json) {
    resp *r = req(port, method, path, AUTH, body);
    int st = r->status;
    if (json) {
        *json = cJSON_Parse(r->body);
        ck_assert_msg(*json != NULL, "%s %s: not JSON: %s", method, path, r->body);
    }
    resp_free(r);
    return st;
}

/* call() for the status alone (the answer must still be JSON). */
static int call_status(int port, const char *method, const char *path, const char *body) {
    cJSON *j;
    int st = call(port, method, path, body, &j);
    cJSON_Delete(j);
    return st;
}

/* Track object `id` in the box (40, 30, 40, 40) of "cam". */
static void track_box(int port, int id) {
    char body[64];
    snprintf(body, sizeof body, "{\"object\":%d,\"box\":[40,30,40,40]}", id);
    ck_assert_int_eq(call_status(port, "POST", "/api/streams/cam/objects", body), 200);
}

/* Raw bytes on a fresh connection; the status of the answer (0: none within timeout). */
static int raw_status(int port, const char *data, size_t n) {
    int fd = connect_port(port);
    send_all(fd, data, n);
    resp r;
    int rc = read_resp(fd, &r, WAIT_MS);
    close(fd);
    free(r.body);
    return rc == 0 ? r.status : 0;
}

/* ---------------------------------------------------------------------------------------------
 * A Prometheus text parser (exposition format 0.0.4): HELP/TYPE lines, then samples of declared
 * families; names, label syntax, escapes and values checked; no series twice.
 * ------------------------------------------------------------------------------------------- */

static int name_ok(const char *s, size_t n) {
    if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return 0;
    return 1;
}

/* Check the exposition; on success the number of samples, else -1 with the line in why. */
static int prom_parse(const char *text, char *why, size_t wl) {
    char types[128][128];
    int ntypes = 0, nsamples = 0;
    static char seen[1024][300];
    int nseen = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (!eol) {
            snprintf(why, wl, "no newline at the end");
            return -1;
        }
        size_t n = (size_t)(eol - p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        p = eol + 1;
        if (!n)
            continue;
        if (line[0] == '#') {
            char kw[8], name[128], rest[512] = "";
            if (sscanf(line, "# %7s %127s %511[^\n]", kw, name, rest) < 2) {
                snprintf(why, wl, "bad comment: %.200s", line);
                return -1;
            }
            if (strcmp(kw, "TYPE") == 0) {
                if (strcmp(rest, "counter") && strcmp(rest, "gauge") && strcmp(rest, "untyped") &&
                    strcmp(rest, "histogram") && strcmp(rest, "summary")) {
                    snprintf(why, wl, "bad type: %.200s", line);
                    return -1;
                }
                for (int i = 0; i < ntypes; i++)
                    if (strcmp(types[i], name) == 0) {
                        snprintf(why, wl, "TYPE twice: %.200s", line);
                        return -1;
                    }
                if (ntypes < 128)
                    snprintf(types[ntypes++], sizeof types[0], "%s", name);
            }
            continue;
        }
        size_t nl = strcspn(line, "{ ");
        if (!name_ok(line, nl)) {
            snprintf(why, wl, "bad metric name: %.200s", line);
            return -1;
        }
        char metric[128];
        snprintf(metric, sizeof metric, "%.*s", (int)nl, line);
        int typed = 0;
        for (int i = 0; i < ntypes; i++)
            typed |= strcmp(types[i], metric) == 0;
        if (!typed) {
            snprintf(why, wl, "sample before its TYPE: %.200s", line);
            return -1;
        }
        const char *q = line + nl;
        if (*q == '{') {
            q++;
            while (*q != '}') {
                size_t ln = strcspn(q, "=");
                if (!name_ok(q, ln) || q[ln] != '=' || q[ln + 1] != '"') {
                    snprintf(why, wl, "bad label: %.200s", line);
                    return -1;
                }
                q += ln + 2;
                while (*q && *q != '"') {
                    if (*q == '\\') {
                        if (q[1] != '\\' && q[1] != '"' && q[1] != 'n') {
                            snprintf(why, wl, "bad escape: %.200s", line);
                            return -1;
                        }
                        q++;
                    }
                    q++;
                }
                if (*q != '"') {
                    snprintf(why, wl, "unterminated label value: %.200s", line);
                    return -1;
                }
                q++;
                if (*q == ',')
                    q++;
                else if (*q != '}') {
                    snprintf(why, wl, "bad label list: %.200s", line);
                    return -1;
                }
            }
            q++;
        }
        size_t series = (size_t)(q - line);
        if (*q != ' ') {
            snprintf(why, wl, "no value: %.200s", line);
            return -1;
        }
        char *end;
        double v = strtod(q + 1, &end);
        (void)v;
        if (end == q + 1 || (*end && *end != ' ')) {
            snprintf(why, wl, "bad value: %.200s", line);
            return -1;
        }
        for (int i = 0; i < nseen; i++)
            if (strncmp(seen[i], line, series) == 0 && seen[i][series] == 0) {
                snprintf(why, wl, "series twice: %.200s", line);
                return -1;
            }
        if (nseen < 1024)
            snprintf(seen[nseen++], sizeof seen[0], "%.*s", (int)series, line);
        nsamples++;
    }
    return nsamples;
}

/* The value of one series ("name{labels}") in the exposition, or NAN. */
static double prom_value(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------------- */

/* Wait until the stream has tracked a frame (its size is known). */
static void wait_up(int port) {
    int64_t end = vt_mono_us() / 1000 + WAIT_MS;
    for (;;) {
        cJSON *j;
        ck_assert_int_eq(call(port, "GET", "/api/streams/cam", NULL, &j), 200);
        double frame = dt_num(j, "frame", -1);
        cJSON_Delete(j);
        if (frame >= 0)
            return;
        ck_assert_msg(vt_mono_us() / 1000 < end, "the stream does not start");
        usleep(50000);
    }
}

/* start() and wait_up(): the daemon's HTTP port once it answers. */
static int start_up(dt_daemon *d, const char *extra) {
    start(d, extra);
    wait_up(d->http_port);
    return d->http_port;
}

START_TEST(test_endpoints) {
    dt_daemon d;
    start(&d, "");
    int hp = d.http_port;
    cJSON *j;
    resp *r = req(hp, "GET", "/healthz", NULL, NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_nonnull(strstr(r->body, "\"ok\""));
    resp_free(r);

    /* the token: none, wrong, Bearer, query, cookie */
    r = req(hp, "GET", "/api/streams", NULL, NULL);
    ck_assert_int_eq(r->status, 401);
    ck_assert_ptr_nonnull(strcasestr(r->head, "WWW-Authenticate: Bearer"));
    resp_free(r);
    r = req(hp, "GET", "/api/streams", "Authorization: Bearer nope\r\n", NULL);
    ck_assert_int_eq(r->status, 401);
    resp_free(r);
    r = req(hp, "GET", "/metrics?token=nope", NULL, NULL);
    ck_assert_int_eq(r->status, 401);
    resp_free(r);
    r = req(hp, "GET", "/api/streams?token=" TOKEN, NULL, NULL);
    ck_assert_int_eq(r->status, 200);
    resp_free(r);
    r = req(hp, "GET", "/api/stats", "Cookie: a=b; vtrack_token=" TOKEN "\r\n", NULL);
    ck_assert_int_eq(r->status, 200);
    resp_free(r);

    ck_assert_int_eq(call(hp, "GET", "/api/streams", NULL, &j), 200);
    ck_assert_str_eq(dt_str(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "streams"), 0), "stream"),
                     "cam");
    cJSON_Delete(j);
    wait_up(hp);
    ck_assert_int_eq(call_status(hp, "GET", "/api/streams/nope", NULL), 404);
    ck_assert_int_eq(call(hp, "GET", "/api/stats", NULL, &j), 200);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stats"), "streams"));
    cJSON_Delete(j);

    /* objects: the protocol's rules (a box covering no pixel is refused, ids conflict) */
    ck_assert_int_eq(call(hp, "POST", "/api/streams/cam/objects", "{\"box\":[500,500,10,10]}", &j),
                     422);
    ck_assert_str_eq(dt_str(j, "field"), "box");
    cJSON_Delete(j);
    ck_assert_int_eq(call_status(hp, "POST", "/api/streams/cam/objects", "[1,2]"), 400);
    ck_assert_int_eq(call_status(hp, "POST", "/api/streams/cam/objects", "{\"box\":[1,2"), 400);
    ck_assert_int_eq(call(hp, "POST", "/api/streams/cam/objects",
                          "{\"object\":7,\"label\":\"car\",\"box\":[40,30,40,40]}", &j),
                     200);
    ck_assert_int_eq((int)dt_num(j, "object", 0), 7);
    cJSON_Delete(j);
    ck_assert_int_eq(
        call_status(hp, "POST", "/api/streams/cam/objects", "{\"object\":7,\"box\":[40,30,40,40]}"),
        409);
    ck_assert_int_eq(call(hp, "GET", "/api/streams/cam/objects", NULL, &j), 200);
    ck_assert_int_eq(cJSON_GetArraySize(j), 1);
    ck_assert_int_eq((int)dt_num(cJSON_GetArrayItem(j, 0), "id", 0), 7);
    cJSON_Delete(j);
    ck_assert_int_eq(call_status(hp, "DELETE", "/api/streams/cam/objects/7", NULL), 200);
    ck_assert_int_eq(call_status(hp, "DELETE", "/api/streams/cam/objects/7", NULL), 404);
    ck_assert_int_eq(call_status(hp, "DELETE", "/api/streams/cam/objects/x", NULL), 404);

    /* streams: add (limits.streams is 2), conflict, limit, remove */
    char body[1024];
    snprintf(body, sizeof body, "{\"stream\":\"two\",\"url\":\"%s\",\"pacing\":\"camera\"}",
             video());
    ck_assert_int_eq(call_status(hp, "POST", "/api/streams", body), 200);
    ck_assert_int_eq(call_status(hp, "POST", "/api/streams", body), 409);
    snprintf(body, sizeof body, "{\"stream\":\"three\",\"url\":\"%s\"}", video());
    ck_assert_int_eq(call_status(hp, "POST", "/api/streams", body), 429);
    ck_assert_int_eq(call(hp, "POST", "/api/streams", "{\"stream\":\"x\"}", &j), 400);
    ck_assert_str_eq(dt_str(j, "field"), "url");
    cJSON_Delete(j);
    ck_assert_int_eq(call_status(hp, "DELETE", "/api/streams/two", NULL), 200);
    ck_assert_int_eq(call_status(hp, "DELETE", "/api/streams/two", NULL), 404);

    /* the latest frame as JPEG, with its index */
    r = req(hp, "GET", "/api/streams/cam/frame.jpg", AUTH, NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_nonnull(strcasestr(r->head, "Content-Type: image/jpeg"));
    ck_assert_ptr_nonnull(strcasestr(r->head, "X-Frame-Index: "));
    ck_assert_uint_gt(r->blen, 100);
    ck_assert_int_eq((unsigned char)r->body[0], 0xff);
    ck_assert_int_eq((unsigned char)r->body[1], 0xd8);
    ck_assert_int_eq((unsigned char)r->body[r->blen - 2], 0xff);
    ck_assert_int_eq((unsigned char)r->body[r->blen - 1], 0xd9);
    resp_free(r);

    /* unknown paths and methods; the page */
    ck_assert_int_eq(call_status(hp, "GET", "/api/nothing", NULL), 404);
    ck_assert_int_eq(call_status(hp, "PUT", "/api/streams", NULL), 405);
    ck_assert_int_eq(call_status(hp, "GET", "/../etc/passwd", NULL), 404);
    r = req(hp, "GET", "/", NULL, NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_nonnull(strcasestr(r->head, "Content-Type: text/html"));
    resp_free(r);
    stop(&d);
}
END_TEST

START_TEST(test_metrics) {
    dt_daemon d;
    int hp = start_up(&d, "");
    track_box(hp, 3);
    int64_t end = vt_mono_us() / 1000 + WAIT_MS;
    for (;;) {
        resp *r = req(hp, "GET", "/metrics", AUTH, NULL);
        ck_assert_int_eq(r->status, 200);
        ck_assert_ptr_nonnull(strcasestr(r->head, "Content-Type: text/plain; version=0.0.4"));
        char why[256] = "";
        int n = prom_parse(r->body, why, sizeof why);
        ck_assert_msg(n > 0, "/metrics is not Prometheus text: %s", why);
        double tracking =
            prom_value(r->body, "vtrack_stream_objects{stream=\"cam\",state=\"tracking\"}");
        double in = prom_value(r->body, "vtrack_stream_frames_in_total{stream=\"cam\"}");
        double fps = prom_value(r->body, "vtrack_stream_fps{stream=\"cam\"}");
        double rss = prom_value(r->body, "process_resident_memory_bytes");
        double cpu = prom_value(r->body, "process_cpu_seconds_total");
        ck_assert(!isnan(prom_value(r->body, "vtrack_sink_queued{sink=\"tcp\"}")));
        ck_assert(!isnan(prom_value(r->body, "vtrack_sink_dropped_total{sink=\"http\"}")));
        ck_assert(!isnan(prom_value(r->body, "vtrack_stream_lag_seconds{stream=\"cam\"}")));
        ck_assert(!isnan(prom_value(r->body, "vtrack_stream_reconnects_total{stream=\"cam\"}")));
        ck_assert(
            !isnan(prom_value(r->body, "vtrack_stream_frames_skipped_total{stream=\"cam\"}")));
        ck_assert(rss > 1e6 && cpu > 0 && in > 0);
        resp_free(r);
        if (tracking == 1 && fps > 0)
            break;
        ck_assert_msg(vt_mono_us() / 1000 < end, "object 3 never counted as tracking");
        usleep(100000);
    }
    stop(&d);
}
END_TEST

/* A bad request gets its status, and a healthy client is served meanwhile. */
static void bad(int hp, const char *data, size_t n, int status) {
    ck_assert_int_eq(raw_status(hp, data, n), status);
    resp *r = req(hp, "GET", "/healthz", NULL, NULL);
    ck_assert_int_eq(r->status, 200);
    resp_free(r);
}

START_TEST(test_bad_requests) {
    dt_daemon d;
    start(&d, "\"header_bytes\":2500,\"body_bytes\":4096,\"request_timeout_s\":1,\"clients\":8");
    int hp = d.http_port;
#define BAD(s, st) bad(hp, s, sizeof(s) - 1, st)
    BAD("GARBAGE\r\n\r\n", 400);
    BAD("get / HTTP/1.1\r\n\r\n", 400);
    BAD("GET / HTTP/2.0\r\n\r\n", 505);
    BAD("GET noslash HTTP/1.1\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
    BAD("POST /api/streams HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501);
    BAD("POST /api/streams HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413);
    BAD("GET /ws?stream=cam&token=" TOKEN " HTTP/1.1\r\n\r\n", 426);
    /* an oversized head, and a target too long */
    char big[8192];
    int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nX-Long: ");
    memset(big + n, 'a', 3000);
    memcpy(big + n + 3000, "\r\n\r\n", 5);
    bad(hp, big, strlen(big), 431);
    n = snprintf(big, sizeof big, "GET /");
    memset(big + n, 'a', 2100);
    snprintf(big + n + 2100, sizeof big - (size_t)n - 2100, " HTTP/1.1\r\n\r\n");
    bad(hp, big, strlen(big), 414);

    /* slow clients: a head that never ends gets 408 after request_timeout_s; one that does
     * not read at all is closed; others are served all along */
    int slow = connect_port(hp);
    send_all(slow, "GET /healthz HTTP/1.1\r\nHost: x\r\n", 31);
    int64_t t0 = vt_mono_us() / 1000;
    for (int i = 0; i < 5; i++) {
        resp *r = req(hp, "GET", "/healthz", NULL, NULL);
        ck_assert_int_eq(r->status, 200);
        resp_free(r);
    }
    ck_assert_int_lt(vt_mono_us() / 1000 - t0, 900);
    resp rs;
    ck_assert_int_eq(read_resp(slow, &rs, 5000), 0);
    ck_assert_int_eq(rs.status, 408);
    ck_assert_int_ge(vt_mono_us() / 1000 - t0, 900);
    free(rs.body);
    close(slow);

    /* too many clients: 503, and the others are still served when they leave */
    int fds[8];
    for (int i = 0; i < 8; i++)
        fds[i] = connect_port(hp);
    usleep(200000);
    ck_assert_int_eq(raw_status(hp, "GET /healthz HTTP/1.1\r\n\r\n", 25), 503);
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    usleep(200000);
    BAD("GET /nope HTTP/1.1\r\n\r\n", 404);
    /* keep-alive: two requests on one connection */
    int ka = connect_port(hp);
    for (int i = 0; i < 2; i++) {
        send_all(ka, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 35);
        ck_assert_int_eq(read_resp(ka, &rs, WAIT_MS), 0);
        ck_assert_int_eq(rs.status, 200);
        free(rs.body);
    }
    close(ka);
    stop(&d);
#undef BAD
}
END_TEST

/* Read one WebSocket frame from the server (unmasked): opcode, payload (malloc'd). */
static int ws_read(int fd, int *opcode, unsigned char **payload, size_t *len, int timeout_ms) {
    unsigned char h[10];
    int64_t end = vt_mono_us() / 1000 + timeout_ms;
    size_t need = 2, got = 0;
    unsigned char *p = NULL;
    for (int stage = 0; stage < 3;) {
        while (got < need) {
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            int left = (int)(end - vt_mono_us() / 1000);
            if (left <= 0 || poll(&pf, 1, left) <= 0)
                return -1;
            ssize_t k = recv(fd, stage < 2 ? h + got : p + got, need - got, 0);
            if (k <= 0)
                return -1;
            got += (size_t)k;
        }
        if (stage == 0) {
            *opcode = h[0] & 15;
            *len = h[1] & 127;
            stage = 1;
            need = *len == 126 ? 4 : *len == 127 ? 10 : 2;
        } else if (stage == 1) {
            if (need == 4)
                *len = (size_t)h[2] << 8 | h[3];
            else if (need == 10)
                for (int i = 0; i < 8; i++)
                    *len = (i ? *len << 8 : 0) | h[2 + i];
            p = malloc(*len + 1);
            need = *len;
            got = 0;
            stage = 2;
        } else {
            stage = 3;
        }
        if (stage == 2 && need == 0)
            break;
    }
    *payload = p;
    return 0;
}

static int port_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Rewrite the configuration, SIGHUP, wait for the reload to be applied. */
static void reload(dt_daemon *d, const char *json, int nth) {
    ck_assert_int_eq(dt_rewrite_config(d, json), 0);
    kill(d->pid, SIGHUP);
    /* each reload logs "configuration ... applied" once: wait for the nth */
    int64_t end = tu_now_ms() + WAIT_MS;
    for (;;) {
        FILE *f = fopen(d->log, "r");
        char line[1024];
        int n = 0;
        while (f && fgets(line, sizeof line, f))
            n += strstr(line, "reload: configuration") && strstr(line, "applied") ? 1 : 0;
        if (f)
            fclose(f);
        if (n >= nth)
            return;
        ck_assert_msg(tu_now_ms() < end, "reload %d not applied", nth);
        usleep(50000);
    }
}

/* Open a WebSocket viewer of "cam" on port: the socket, after the 101 answer (with the accept
 * key of RFC 6455's example key). */
static int ws_open(int port) {
    int fd = connect_port(port);
    const char *hs =
        "GET /ws?stream=cam&token=" TOKEN " HTTP/1.1\r\nHost: x\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    send_all(fd, hs, strlen(hs));
    char head[1024];
    size_t hl = 0;
    while (!memmem(head, hl, "\r\n\r\n", 4) && hl < sizeof head - 1) {
        ck_assert_int_eq(recv(fd, head + hl, 1, 0), 1);
        hl++;
    }
    head[hl] = 0;
    ck_assert_ptr_nonnull(strstr(head, "HTTP/1.1 101"));
    ck_assert_ptr_nonnull(strstr(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    return fd;
}

/* Read and discard until EOF: 1, or 0 when the socket is still open after timeout_ms. */
static int wait_eof(int fd, int timeout_ms) {
    int64_t end = tu_now_ms() + timeout_ms;
    char buf[65536];
    for (;;) {
        int left = (int)(end - tu_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return 0;
        if (recv(fd, buf, sizeof buf, 0) <= 0)
            return 1;
    }
}

/* SIGHUP applies the "http" section: another port (the old one closes, a keep-alive connection
 * and a viewer made there stay), a changed token (at once for requests; viewers closed), http
 * removed (its port closes) and added again; the TCP protocol's client stays connected
 * throughout. */
START_TEST(test_reload) {
    dt_daemon d;
    start(&d, "");
    int p1 = d.http_port;
    wait_up(p1);
    dt_conn c;
    ck_assert_int_eq(dt_hello(&c, d.port), 0);
    dt_expect_reply(
        dt_command(&c, "{\"op\":\"hello\",\"token\":\"" TOKEN "\",\"protocol\":1}\n", WAIT_MS),
        "hello");
    /* a keep-alive HTTP connection on the old port */
    int ka = connect_port(p1);
    const char *kreq = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(ka, kreq, strlen(kreq));
    resp r;
    ck_assert_int_eq(read_resp(ka, &r, WAIT_MS), 0);
    ck_assert_int_eq(r.status, 200);
    free(r.body);
    int viewer = ws_open(p1);

    /* another port */
    do
        d.http_port = tu_free_port();
    while (d.http_port == p1 || d.http_port == d.port);
    int p2 = d.http_port;
    reload(&d, conf(TOKEN, ""), 1);
    ck_assert_int_eq(tu_wait_port(p2, WAIT_MS), 0);
    ck_assert_int_eq(call(p2, "GET", "/api/streams/cam", NULL, NULL), 200);
    ck_assert_msg(!port_open(p1), "the old HTTP port still accepts");
    send_all(ka, kreq, strlen(kreq)); /* the connection made before is kept */
    ck_assert_int_eq(read_resp(ka, &r, WAIT_MS), 0);
    ck_assert_int_eq(r.status, 200);
    free(r.body);
    close(ka);
    ck_assert_msg(!wait_eof(viewer, 500), "the viewer was closed by a port change");
    dt_expect_reply(dt_command(&c, "{\"op\":\"list\"}\n", WAIT_MS), "list");

    /* another token: the old one is refused at once */
    reload(&d, conf("other-token", ""), 2);
    ck_assert_int_eq(call(p2, "GET", "/api/streams/cam", NULL, NULL), 401);
    resp *rr = req(p2, "GET", "/api/streams/cam", "Authorization: Bearer other-token\r\n", NULL);
    ck_assert_int_eq(rr->status, 200);
    resp_free(rr);
    ck_assert_msg(wait_eof(viewer, WAIT_MS), "the viewer stays after a token change");
    close(viewer);

    /* http removed: the port closes; the TCP client (authorised with the old token, so closed by
     * the token change) is replaced by one with the new token */
    dt_close(&c);
    ck_assert_int_eq(dt_hello(&c, d.port), 0);
    dt_expect_reply(
        dt_command(&c, "{\"op\":\"hello\",\"token\":\"other-token\",\"protocol\":1}\n", WAIT_MS),
        "hello");
    reload(&d, conf("other-token", NULL), 3);
    ck_assert_msg(!port_open(p2), "the HTTP port is still open without an http section");
    /* and added again */
    reload(&d, conf("other-token", ""), 4);
    ck_assert_int_eq(tu_wait_port(p2, WAIT_MS), 0);
    rr = req(p2, "GET", "/healthz", NULL, NULL);
    ck_assert_int_eq(rr->status, 200);
    resp_free(rr);
    dt_expect_reply(dt_command(&c, "{\"op\":\"list\"}\n", WAIT_MS), "list");
    dt_close(&c);
    stop(&d);
}
END_TEST

START_TEST(test_websocket) {
    dt_daemon d;
    int hp = start_up(&d, "\"frame_rate\":5");
    int fd = ws_open(hp); /* RFC 6455's example key and answer */
    track_box(hp, 5);
    int frames = 0, added = 0, with_mask = 0;
    int64_t last = -1, t0 = vt_mono_us() / 1000;
    while ((frames < 4 || !added || !with_mask) && vt_mono_us() / 1000 - t0 < WAIT_MS) {
        int op;
        unsigned char *p;
        size_t len;
        ck_assert_int_eq(ws_read(fd, &op, &p, &len, WAIT_MS), 0);
        if (op == 1) {
            p[len] = 0;
            cJSON *e = cJSON_Parse((char *)p);
            ck_assert_ptr_nonnull(e);
            added |= dt_str(e, "event") && strcmp(dt_str(e, "event"), "added") == 0;
            cJSON_Delete(e);
        } else {
            ck_assert_int_eq(op, 2);
            ck_assert_uint_gt(len, 4);
            size_t jl = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
            ck_assert_uint_lt(jl + 4, len);
            char *js = strndup((char *)p + 4, jl);
            cJSON *e = cJSON_Parse(js);
            ck_assert_msg(e != NULL, "bad frame JSON: %s", js);
            ck_assert_str_eq(dt_str(e, "type"), "frame");
            int64_t f = (int64_t)dt_num(e, "frame", -1);
            ck_assert_int_gt(f, last);
            last = f;
            const cJSON *objs = cJSON_GetObjectItem(e, "objects");
            const cJSON *o = cJSON_GetArrayItem(objs, 0);
            with_mask |= o && cJSON_GetObjectItem(o, "mask") != NULL;
            ck_assert_int_eq(p[4 + jl], 0xff);
            ck_assert_int_eq(p[5 + jl], 0xd8);
            cJSON_Delete(e);
            free(js);
            frames++;
        }
        free(p);
    }
    ck_assert_int_ge(frames, 4);
    ck_assert(added && with_mask);
    /* at most frame_rate (5/s) frames: the time taken bounds the count */
    ck_assert_int_le(frames, 5 * (vt_mono_us() / 1000 - t0) / 1000 + 3);
    unsigned char close_frame[6] = {0x88, 0x80, 1, 2, 3, 4};
    send_all(fd, (char *)close_frame, sizeof close_frame);
    close(fd);
    stop(&d);
}
END_TEST

/* Viewers connecting in crowds to a stream with a busy event flow: an event that came while the
 * handshake's answer was still being written once reused the connection's write request
 * (vtrackd crashed in libuv; found by bench/webview.sh with five pages connecting). Each round
 * opens 16 viewers at once; each reads its 101 and one message. */
START_TEST(test_websocket_many) {
    enum { ROUNDS = 6, AT_ONCE = 16 };
    dt_daemon d;
    int hp = start_up(&d, "\"frame_rate\":60");
    track_box(hp, 5);
    const char *hs =
        "GET /ws?stream=cam&token=" TOKEN " HTTP/1.1\r\nHost: x\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    for (int round = 0; round < ROUNDS; round++) {
        int fds[AT_ONCE];
        for (int i = 0; i < AT_ONCE; i++)
            fds[i] = connect_port(hp);
        for (int i = 0; i < AT_ONCE; i++)
            send_all(fds[i], hs, strlen(hs));
        for (int i = 0; i < AT_ONCE; i++) {
            char head[1024];
            size_t hl = 0;
            while (!memmem(head, hl, "\r\n\r\n", 4) && hl < sizeof head - 1) {
                ssize_t k = recv(fds[i], head + hl, 1, 0);
                ck_assert_msg(k == 1, "round %d viewer %d: no handshake answer", round, i);
                hl++;
            }
            ck_assert_msg(memmem(head, hl, "HTTP/1.1 101", 12), "viewer %d: not switched", i);
            int op;
            unsigned char *p;
            size_t len;
            ck_assert_msg(ws_read(fds[i], &op, &p, &len, WAIT_MS) == 0, "viewer %d: no message", i);
            free(p);
        }
        for (int i = 0; i < AT_ONCE; i++)
            close(fds[i]);
    }
    stop(&d); /* exit status 0: it did not crash */
}
END_TEST

static Suite *http_suite(void) {
    Suite *s = suite_create("http");
    tm_add_case(s, "http", 90, test_endpoints, test_metrics, test_bad_requests, test_websocket,
                test_websocket_many, test_reload, NULL);
    return s;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    int status = tm_run(http_suite());
    tu_cleanup();
    return status;
}
