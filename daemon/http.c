/* http.c - see http.h. */
#include <dirent.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>
#include <libavutil/base64.h>
#include <libavutil/mem.h>
#include <libavutil/sha.h>

#include "daemon.h"
#include "http.h"
#include "http_parse.h"
#include "log.h"
#include "metrics.h"
#include "vt_config.h"

#define LISTEN_BACKLOG 128
#define SWEEP_MS       200
#define FRAME_WAIT_MS  3000 /* a GET of frame.jpg waits this long for a first frame */
#define STATIC_MAX     32   /* files of the web page */
#define STATIC_BYTES   (1 << 20)
#define WS_IN_MAX      1024 /* payload of a frame from a viewer (only control frames matter) */
#define WS_GUID        "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define LISTENERS      4

enum { ST_READ, ST_WAIT_FRAME, ST_WRITE, ST_WS };

typedef struct sfile {
    char name[64];
    char *data;
    size_t len;
    const char *type;
} sfile;

typedef struct hconn {
    uv_tcp_t tcp;
    uv_write_t wreq;
    vtd_http *h;
    struct hconn *prev, *next;
    char peer[64];
    int state, closing, reading, keep_alive, close_after;
    int writing; /* wreq is in flight (until on_write): nothing else may be written */
    char *buf;   /* request bytes (or WebSocket input) */
    size_t len, cap;
    int64_t since_ms;    /* first byte of the request being read (0: none yet) */
    int64_t idle_ms;     /* last answer written (keep-alive idle) */
    int64_t deadline_ms; /* ST_WAIT_FRAME */
    int64_t write_ms;    /* ST_WRITE: since when */
    char stream[VT_PROTO_NAME_MAX + 1];
    /* one write in flight: a head we own, then a shared message (from msg_off) */
    char *out;
    vtd_msg *out_msg;
    size_t out_len;
    char wshdr[16];
    /* WebSocket viewer: events (text) and the newest frame not written yet */
    vtd_msg **evq;
    int evcap, evhead, evn;
    size_t evbytes;
    vtd_msg *frame_next, *inflight;
    int inflight_frame;
} hconn;

struct vtd_http {
    vtd *d;
    uv_tcp_t *lis[LISTENERS]; /* allocated: a reload binds new ones before closing these */
    int nlis;
    uv_timer_t sweep;
    hconn *conns;
    int nconns, nviewers;
    int pending_close; /* handles not closed yet */
    int stopping;
    sfile files[STATIC_MAX];
    int nfiles;
    uint64_t requests, frames_sent, frames_skipped, closed_slow;
};

static void conn_close(hconn *c);
static void start_reading(hconn *c);
static void ws_flush(hconn *c);

/* ---------------------------------------------------------------------------------------------
 * Static files
 * ------------------------------------------------------------------------------------------- */

const char *vtd_http_static_dir(const vtd_config *cfg, char *buf, size_t len) {
    if (cfg->http.static_dir)
        return cfg->http.static_dir;
    if (vt_stream_tree_file("web", "index.html", buf, len))
        return buf;
    snprintf(buf, len, "%s/web", VT_DATADIR);
    return buf;
}

static const char *mime_of(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot)
        return "application/octet-stream";
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".png") == 0)
        return "image/png";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    return "application/octet-stream";
}

static int safe_name(const char *s) {
    if (!s[0] || s[0] == '.' || strlen(s) >= sizeof((sfile *)0)->name)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

/* Read the regular files of dir (not its subfolders) into memory, once, at start. */
static void free_static(vtd_http *h) {
    for (int i = 0; i < h->nfiles; i++)
        free(h->files[i].data);
    h->nfiles = 0;
}

static void load_static(vtd_http *h, const char *dir) {
    DIR *dp = opendir(dir);
    if (!dp) {
        vtd_warn("http: static_dir %s: %s: the web page is not served", dir, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(dp)) && h->nfiles < STATIC_MAX) {
        if (!safe_name(e->d_name))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        FILE *f;
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_BYTES ||
            !(f = fopen(path, "rb")))
            continue;
        sfile *sf = &h->files[h->nfiles];
        sf->data = malloc((size_t)st.st_size + 1);
        sf->len = sf->data ? fread(sf->data, 1, (size_t)st.st_size, f) : 0;
        fclose(f);
        if (!sf->data)
            continue;
        memcpy(sf->name, e->d_name, strlen(e->d_name) + 1); /* safe_name: it fits */
        sf->type = mime_of(sf->name);
        h->nfiles++;
    }
    closedir(dp);
    vtd_info("http: %d file(s) of the web page from %s", h->nfiles, dir);
}

static const sfile *find_file(const vtd_http *h, const char *name) {
    for (int i = 0; i < h->nfiles; i++)
        if (strcmp(h->files[i].name, name) == 0)
            return &h->files[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Writing answers
 * ------------------------------------------------------------------------------------------- */

static const char *reason_of(int status) {
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Error";
}

static void on_write(uv_write_t *req, int status);

/* Write out[0..out_len) then, when set, msg[off..); the connection owns `out`. */
static void write_now(hconn *c, uv_buf_t *bufs, int nb) {
    assert(!c->writing); /* libuv owns wreq until on_write */
    c->wreq.data = c;
    c->writing = 1;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, (unsigned)nb, on_write);
    if (rc < 0) {
        c->writing = 0;
        conn_close(c);
    }
}

/* Read no more requests while an answer is on its way (or a WebSocket is set up), and make
 * head[0..n) then body[0..blen) the bytes to send, c->out. 0, or -1 when out of memory (the
 * connection is then closed). */
static int set_answer(hconn *c, const char *head, size_t n, const char *body, size_t blen) {
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    if (!(c->out = malloc(n + blen))) {
        conn_close(c);
        return -1;
    }
    memcpy(c->out, head, n);
    if (blen)
        memcpy(c->out + n, body, blen);
    c->out_len = n + blen;
    return 0;
}

/* Send a complete answer: status, type, body (copied), extra header lines ("K: V\r\n"...). */
static void respond(hconn *c, int status, const char *type, const char *body, size_t blen,
                    const char *extra) {
    if (c->closing)
        return;
    char head[768];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s\r\n",
                     status, reason_of(status), type, blen, extra ? extra : "",
                     c->keep_alive && !c->close_after ? "" : "Connection: close\r\n");
    if (n < 0 || (size_t)n >= sizeof head) {
        conn_close(c);
        return;
    }
    if (set_answer(c, head, (size_t)n, body, blen) < 0)
        return;
    c->state = ST_WRITE;
    c->write_ms = vt_mono_us() / 1000;
    uv_buf_t b = uv_buf_init(c->out, (unsigned)c->out_len);
    write_now(c, &b, 1);
}

/* An error answer: the protocol's error object as the body. */
static void respond_error(hconn *c, int status, vt_proto_code code, const char *field,
                          const char *msg, const char *extra) {
    vt_proto_err e;
    memset(&e, 0, sizeof e);
    vt_proto_err_set(&e, code, field, "%s", msg);
    vt_proto_buf b = VT_PROTO_BUF_INIT;
    if (vt_proto_write_error(&b, &e) < 0) {
        vt_proto_buf_free(&b);
        conn_close(c);
        return;
    }
    vt_proto_buf body = VT_PROTO_BUF_INIT;
    if (vtd_tail_object(&body, b.data, b.len) == 0)
        respond(c, status, "application/json", body.data, body.len, extra);
    else
        conn_close(c);
    vt_proto_buf_free(&body);
    vt_proto_buf_free(&b);
}

static int status_of(vt_proto_code code) {
    switch (code) {
    case VT_PROTO_CODE_OK:
        return 200;
    case VT_PROTO_CODE_LINE_TOO_LONG:
        return 413;
    case VT_PROTO_CODE_BAD_MASK:
        return 422;
    case VT_PROTO_CODE_UNAUTHORIZED:
        return 401;
    case VT_PROTO_CODE_FORBIDDEN:
        return 403;
    case VT_PROTO_CODE_NOT_FOUND:
        return 404;
    case VT_PROTO_CODE_CONFLICT:
        return 409;
    case VT_PROTO_CODE_LIMIT:
        return 429;
    case VT_PROTO_CODE_INTERNAL:
        return 500;
    default:
        return 400;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Closing
 * ------------------------------------------------------------------------------------------- */

static void h_maybe_free(vtd_http *h);
static void update_want(vtd_http *h, vtd_srec *r);

static void on_close(uv_handle_t *hd) {
    hconn *c = hd->data;
    vtd_http *h = c->h;
    vtd_hub *hub = &h->d->hub;
    for (int i = 0; i < c->evn; i++)
        vtd_msg_unref(hub, c->evq[(c->evhead + i) % c->evcap]);
    free(c->evq);
    vtd_msg_unref(hub, c->frame_next);
    vtd_msg_unref(hub, c->inflight);
    vtd_msg_unref(hub, c->out_msg);
    free(c->out);
    free(c->buf);
    free(c);
    h->pending_close--;
    h_maybe_free(h);
}

static void conn_close(hconn *c) {
    if (c->closing)
        return;
    c->closing = 1;
    vtd_http *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    h->nviewers -= c->state == ST_WS;
    h->pending_close++;
    uv_close((uv_handle_t *)&c->tcp, on_close);
    vtd_srec *r =
        c->state == ST_WS || c->state == ST_WAIT_FRAME ? vtd_streams_find(h->d, c->stream) : NULL;
    if (r && !h->stopping)
        update_want(h, r);
}

/* ---------------------------------------------------------------------------------------------
 * Commands through control.c
 * ------------------------------------------------------------------------------------------- */

/* The answer as the HTTP body: the reply or error object ("{" + the message's tail). When
 * `pick` is set, only streams[] entry named pick (and of it `member` when set). */
static void answer_ctl(hconn *c, vtd_ctl *x, const char *pick, const char *member) {
    if (!x->answer) {
        respond_error(c, 500, VT_PROTO_CODE_INTERNAL, NULL, "out of memory", NULL);
        return;
    }
    const vt_proto_buf *b = &x->answer->buf;
    vt_proto_buf body = VT_PROTO_BUF_INIT;
    if (vtd_tail_object(&body, b->data, b->len) < 0) {
        conn_close(c);
        return;
    }
    if (x->code != VT_PROTO_CODE_OK || !pick) {
        respond(c, status_of(x->code), "application/json", body.data, body.len, NULL);
        vt_proto_buf_free(&body);
        return;
    }
    cJSON *out = NULL, *j = cJSON_Parse(body.data);
    vt_proto_buf_free(&body);
    const cJSON *it, *list = j ? cJSON_GetObjectItemCaseSensitive(j, "streams") : NULL;
    cJSON_ArrayForEach(it, list) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "stream");
        if (cJSON_IsString(nm) && strcmp(nm->valuestring, pick) == 0)
            out = member ? cJSON_GetObjectItemCaseSensitive(it, member) : (cJSON *)it;
    }
    char *s = out ? cJSON_PrintUnformatted(out) : NULL;
    if (s)
        respond(c, 200, "application/json", s, strlen(s), NULL);
    else if (j && !out)
        respond_error(c, 404, VT_PROTO_CODE_NOT_FOUND, "stream", "no such stream", NULL);
    else
        respond_error(c, 500, VT_PROTO_CODE_INTERNAL, NULL, "out of memory", NULL);
    free(s);
    cJSON_Delete(j);
}

/* Run op with the JSON body (an object, or none) plus the fields the path gives. */
static void run_op(hconn *c, const char *op, const char *body, size_t blen, const char *stream,
                   long long object, const char *pick, const char *member) {
    cJSON *j = blen ? cJSON_ParseWithLength(body, blen) : cJSON_CreateObject();
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        respond_error(c, 400, VT_PROTO_CODE_BAD_JSON, NULL, "the body must be a JSON object", NULL);
        return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(j, "op");
    cJSON_AddStringToObject(j, "op", op);
    if (stream) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, "stream");
        cJSON_AddStringToObject(j, "stream", stream);
    }
    if (object > 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, "object");
        cJSON_AddNumberToObject(j, "object", (double)object);
    }
    char *line = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!line) {
        respond_error(c, 500, VT_PROTO_CODE_INTERNAL, NULL, "out of memory", NULL);
        return;
    }
    char who[96];
    snprintf(who, sizeof who, "http client (%s)", c->peer);
    vtd_ctl x = {.d = c->h->d, .who = who, .authed = 1, .code = VT_PROTO_CODE_INTERNAL};
    vtd_control_run(&x, line, strlen(line));
    free(line);
    answer_ctl(c, &x, pick, member);
    vtd_msg_unref(&c->h->d->hub, x.answer);
}

/* ---------------------------------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------------------------------- */

static int64_t interval_us(const vtd_http *h) {
    return (int64_t)(1e6 / h->d->cfg->http.frame_rate);
}

/* Does anyone want frames of r: a viewer or a waiting GET? Tell its live slot. */
static void update_want(vtd_http *h, vtd_srec *r) {
    int want = 0;
    for (hconn *c = h->conns; c && !want; c = c->next)
        want = (c->state == ST_WS || c->state == ST_WAIT_FRAME) &&
               strcmp(c->stream, r->conf.name) == 0;
    atomic_store(&r->live.interval_us, interval_us(h));
    atomic_store(&r->live.want, want);
}

static void send_jpeg(hconn *c, vtd_live *l) {
    char extra[96];
    snprintf(extra, sizeof extra, "X-Frame-Index: %lld\r\n", (long long)l->latest_index);
    const vt_proto_buf *b = &l->latest->buf;
    respond(c, 200, "image/jpeg", b->data + l->latest_jpeg_off, b->len - l->latest_jpeg_off, extra);
}

static void deliver_frame(vtd_http *h, vtd_srec *r) {
    vtd_live *l = &r->live;
    for (hconn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (strcmp(c->stream, r->conf.name) != 0)
            continue;
        if (c->state == ST_WAIT_FRAME) {
            send_jpeg(c, l);
        } else if (c->state == ST_WS) {
            if (c->frame_next) {
                vtd_msg_unref(&h->d->hub, c->frame_next);
                h->frames_skipped++;
            }
            l->latest->refs++;
            c->frame_next = l->latest;
            ws_flush(c);
        }
    }
    update_want(h, r);
}

static void encode_work(uv_work_t *w) {
    vtd_srec *r = w->data;
    vtd_live_encode(&r->live, &r->d->hub);
}

static void after_encode(uv_work_t *w, int status) {
    vtd_srec *r = w->data;
    vtd_live *l = &r->live;
    vtd *d = r->d;
    vtd_msg *m = l->out;
    l->out = NULL;
    pthread_mutex_lock(&l->lock);
    l->busy = 0;
    int64_t index = l->index;
    size_t jlen = l->json.len;
    pthread_mutex_unlock(&l->lock);
    if (status == 0 && m && d->http && !atomic_load(&r->detached)) {
        vtd_msg_unref(&d->hub, l->latest);
        l->latest = m;
        l->latest_index = index;
        l->latest_us = vt_mono_us();
        l->latest_jpeg_off = 4 + jlen;
        deliver_frame(d->http, r);
    } else {
        if (status == 0 && !m)
            vtd_warn("stream %s: jpeg: %s", r->conf.name, l->err);
        vtd_msg_unref(&d->hub, m);
    }
    vtd_srec_unref(r);
}

/* A frame was dispatched: encode the copy the tracker left, if any and none is running. */
static void maybe_encode(vtd_http *h, vtd_srec *r) {
    vtd_live *l = &r->live;
    if (!atomic_load(&l->want))
        return;
    pthread_mutex_lock(&l->lock);
    int go = l->fresh && !l->busy;
    if (go) {
        l->fresh = 0;
        l->busy = 1;
    }
    pthread_mutex_unlock(&l->lock);
    if (!go)
        return;
    l->quality = h->d->cfg->http.jpeg_quality;
    l->work.data = r;
    atomic_fetch_add(&r->refs, 1);
    if (uv_queue_work(h->d->loop, &l->work, encode_work, after_encode) < 0) {
        pthread_mutex_lock(&l->lock);
        l->busy = 0;
        pthread_mutex_unlock(&l->lock);
        atomic_fetch_sub(&r->refs, 1);
    }
}

static void get_frame(hconn *c, vtd_srec *r) {
    vtd_live *l = &r->live;
    snprintf(c->stream, sizeof c->stream, "%s", r->conf.name);
    if (l->latest && vt_mono_us() - l->latest_us < interval_us(c->h)) {
        send_jpeg(c, l);
        return;
    }
    c->state = ST_WAIT_FRAME;
    c->deadline_ms = vt_mono_us() / 1000 + FRAME_WAIT_MS;
    update_want(c->h, r);
}

/* ---------------------------------------------------------------------------------------------
 * WebSocket
 * ------------------------------------------------------------------------------------------- */

static size_t ws_header(char *hdr, int opcode, size_t len) {
    hdr[0] = (char)(0x80 | opcode);
    if (len < 126) {
        hdr[1] = (char)len;
        return 2;
    }
    if (len < 65536) {
        hdr[1] = 126;
        hdr[2] = (char)(len >> 8);
        hdr[3] = (char)len;
        return 4;
    }
    hdr[1] = 127;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* Write the next event, else the newest frame; one write at a time (the handshake's answer
 * may still be in flight when the first event comes). */
static void ws_flush(hconn *c) {
    if (c->closing || c->state != ST_WS || c->writing)
        return;
    uv_buf_t b[3];
    if (c->evn) {
        vtd_msg *m = c->evq[c->evhead];
        c->evhead = (c->evhead + 1) % c->evcap;
        c->evn--;
        c->evbytes -= m->buf.len;
        size_t len = m->buf.len + 1; /* "{" + tail */
        size_t hn = ws_header(c->wshdr, 1, len);
        c->wshdr[hn] = '{';
        b[0] = uv_buf_init(c->wshdr, (unsigned)hn + 1);
        b[1] = uv_buf_init(m->buf.data, (unsigned)m->buf.len);
        c->inflight = m;
        c->inflight_frame = 0;
    } else if (c->frame_next) {
        vtd_msg *m = c->frame_next;
        c->frame_next = NULL;
        size_t hn = ws_header(c->wshdr, 2, m->buf.len);
        b[0] = uv_buf_init(c->wshdr, (unsigned)hn);
        b[1] = uv_buf_init(m->buf.data, (unsigned)m->buf.len);
        c->inflight = m;
        c->inflight_frame = 1;
    } else {
        return;
    }
    write_now(c, b, 2);
}

static void ws_queue(hconn *c, vtd_msg *m) {
    vtd_http *h = c->h;
    if (c->evbytes + m->buf.len > h->d->cfg->http.ws_queue_bytes) {
        vtd_info("http client (%s): closed: its event queue passed http.ws_queue_bytes", c->peer);
        h->closed_slow++;
        conn_close(c);
        return;
    }
    if (c->evn == c->evcap) {
        int cap = c->evcap ? 2 * c->evcap : 16;
        vtd_msg **q = malloc(sizeof *q * (size_t)cap);
        if (!q) {
            conn_close(c);
            return;
        }
        for (int i = 0; i < c->evn; i++)
            q[i] = c->evq[(c->evhead + i) % c->evcap];
        free(c->evq);
        c->evq = q;
        c->evcap = cap;
        c->evhead = 0;
    }
    m->refs++;
    c->evq[(c->evhead + c->evn++) % c->evcap] = m;
    c->evbytes += m->buf.len;
    ws_flush(c);
}

static void ws_event(vtd_http *h, const char *stream, vtd_msg *m) {
    for (hconn *c = h->conns, *next; c; c = next) {
        next = c->next; /* queueing may close c */
        if (c->state == ST_WS && strcmp(c->stream, stream) == 0)
            ws_queue(c, m);
    }
}

static int ws_accept_key(const char *key, char *out, size_t outlen) {
    struct AVSHA *sha = av_sha_alloc();
    if (!sha)
        return -ENOMEM;
    uint8_t digest[20];
    av_sha_init(sha, 160);
    av_sha_update(sha, (const uint8_t *)key, strlen(key));
    av_sha_update(sha, (const uint8_t *)WS_GUID, strlen(WS_GUID));
    av_sha_final(sha, digest);
    av_free(sha);
    return av_base64_encode(out, (int)outlen, digest, sizeof digest) ? 0 : -EINVAL;
}

static void ws_upgrade(hconn *c, const vtd_http_req *rq, vtd_srec *r) {
    char accept[64];
    if (rq->ws_version != 13 || strlen(rq->ws_key) != 24 ||
        ws_accept_key(rq->ws_key, accept, sizeof accept) < 0) {
        respond_error(c, 400, VT_PROTO_CODE_BAD_REQUEST, "Sec-WebSocket-Key",
                      "a WebSocket needs Sec-WebSocket-Version 13 and a 16-byte key", NULL);
        return;
    }
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    if (set_answer(c, head, (size_t)n, NULL, 0) < 0)
        return;
    snprintf(c->stream, sizeof c->stream, "%s", r->conf.name);
    c->state = ST_WS;
    c->len = 0;
    c->h->nviewers++;
    update_want(c->h, r);
    uv_buf_t b = uv_buf_init(c->out, (unsigned)n);
    /* inflight stays NULL: on_write sees the handshake through c->out */
    write_now(c, &b, 1);
    vtd_info("http client (%s): watching stream %s", c->peer, r->conf.name);
}

/* Frames from the viewer: only close matters (ping and data are read and ignored). */
static void ws_input(hconn *c) {
    while (c->len >= 2 && !c->closing) {
        const unsigned char *p = (const unsigned char *)c->buf;
        int opcode = p[0] & 15, masked = p[1] & 0x80;
        size_t len = p[1] & 127, hn = 2;
        if (!masked || len > 125) {
            conn_close(c); /* unmasked, or larger than any control frame we accept */
            return;
        }
        if (c->len < hn + 4 + len)
            return;
        size_t used = hn + 4 + len;
        if (opcode == 8) {
            conn_close(c);
            return;
        }
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Routing
 * ------------------------------------------------------------------------------------------- */

static int authorized(const vtd_http *h, const vtd_http_req *rq) {
    const char *tok = h->d->cfg->token;
    if (!tok)
        return 1;
    char q[VTD_HTTP_TOKEN_MAX + 1];
    if (rq->has_bearer && vtd_token_equal(rq->bearer, tok))
        return 1;
    if (rq->has_cookie && vtd_token_equal(rq->cookie, tok))
        return 1;
    return vtd_http_query(rq->query, "token", q, sizeof q) == 1 && vtd_token_equal(q, tok);
}

static int is(const vtd_http_req *rq, const char *m) {
    return strcmp(rq->method, m) == 0;
}

static void not_allowed(hconn *c, const char *allow) {
    char extra[64];
    snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
    respond_error(c, 405, VT_PROTO_CODE_BAD_REQUEST, NULL, "method not allowed here", extra);
}

static void serve_static(hconn *c, const vtd_http_req *rq, const char *name) {
    const sfile *f = find_file(c->h, name);
    if (!f) {
        respond_error(c, 404, VT_PROTO_CODE_NOT_FOUND, NULL, "no such page", NULL);
    } else if (!is(rq, "GET") && !is(rq, "HEAD")) {
        not_allowed(c, "GET, HEAD");
    } else {
        respond(c, 200, f->type, f->data, is(rq, "HEAD") ? 0 : f->len, NULL);
    }
}

static void serve_metrics(hconn *c) {
    vt_proto_buf b = VT_PROTO_BUF_INIT;
    if (vtd_metrics_write(c->h->d, &b) < 0)
        respond_error(c, 500, VT_PROTO_CODE_INTERNAL, NULL, "out of memory", NULL);
    else
        respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
    vt_proto_buf_free(&b);
}

/* /api/streams[/NAME[/objects[/ID] | /frame.jpg]] */
static void route_streams(hconn *c, const vtd_http_req *rq, const char *body, size_t blen) {
    int ns = vtd_http_nsegments(rq->path);
    char name[VT_PROTO_NAME_MAX + 1], sub[32], ids[24];
    if (ns == 2) {
        if (is(rq, "GET"))
            run_op(c, "list", NULL, 0, NULL, 0, NULL, NULL);
        else if (is(rq, "POST"))
            run_op(c, "add_stream", body, blen, NULL, 0, NULL, NULL);
        else
            not_allowed(c, "GET, POST");
        return;
    }
    if (vtd_http_segment(rq->path, 2, name, sizeof name) != 1) {
        respond_error(c, 404, VT_PROTO_CODE_NOT_FOUND, "stream", "no such stream", NULL);
        return;
    }
    if (ns == 3) {
        if (is(rq, "GET"))
            run_op(c, "list", NULL, 0, NULL, 0, name, NULL);
        else if (is(rq, "DELETE"))
            run_op(c, "remove_stream", NULL, 0, name, 0, NULL, NULL);
        else
            not_allowed(c, "GET, DELETE");
        return;
    }
    int rs = vtd_http_segment(rq->path, 3, sub, sizeof sub);
    if (rs == 1 && ns == 4 && strcmp(sub, "frame.jpg") == 0) {
        vtd_srec *r = vtd_streams_find(c->h->d, name);
        if (!is(rq, "GET"))
            not_allowed(c, "GET");
        else if (!r)
            respond_error(c, 404, VT_PROTO_CODE_NOT_FOUND, "stream", "no such stream", NULL);
        else
            get_frame(c, r);
        return;
    }
    if (rs != 1 || strcmp(sub, "objects") != 0 || ns > 5) {
        respond_error(c, 404, VT_PROTO_CODE_NOT_FOUND, NULL, "no such resource", NULL);
        return;
    }
    if (ns == 4) {
        if (is(rq, "GET"))
            run_op(c, "list", NULL, 0, NULL, 0, name, "objects");
        else if (is(rq, "POST"))
            run_op(c, "track", body, blen, name, 0, NULL, NULL);
        else
            not_allowed(c, "GET, POST");
        return;
    }
    char *end = NULL;
    long long id = vtd_http_segment(rq->path, 4, ids, sizeof ids) == 1 ? strtoll(ids, &end, 10) : 0;
    if (!end || *end || id < 1 || id > VT_PROTO_OBJECT_ID_MAX)
        respond_error(c, 404, VT_PROTO_CODE_NOT_FOUND, "object", "no such object", NULL);
    else if (!is(rq, "DELETE"))
        not_allowed(c, "DELETE");
    else
        run_op(c, "untrack", NULL, 0, name, id, NULL, NULL);
}

static void route(hconn *c, const vtd_http_req *rq, const char *body, size_t blen) {
    vtd_http *h = c->h;
    char seg[VT_PROTO_NAME_MAX + 1];
    h->requests++;
    if (strcmp(rq->path, "/healthz") == 0) {
        static const char ok[] = "{\"status\":\"ok\"}\n", stop[] = "{\"status\":\"stopping\"}\n";
        if (h->d->stopping)
            respond(c, 503, "application/json", stop, sizeof stop - 1, NULL);
        else
            respond(c, 200, "application/json", ok, sizeof ok - 1, NULL);
        return;
    }
    if (strcmp(rq->path, "/") == 0) {
        serve_static(c, rq, "index.html");
        return;
    }
    int api = strncmp(rq->path, "/api/", 5) == 0 || strcmp(rq->path, "/metrics") == 0 ||
              strcmp(rq->path, "/ws") == 0;
    if (!api) {
        if (vtd_http_nsegments(rq->path) == 1 && vtd_http_segment(rq->path, 0, seg, 64) == 1 &&
            safe_name(seg))
            serve_static(c, rq, seg);
        else
            respond_error(c, 404, VT_PROTO_CODE_NOT_FOUND, NULL, "no such page", NULL);
        return;
    }
    if (!authorized(h, rq)) {
        respond_error(c, 401, VT_PROTO_CODE_UNAUTHORIZED, "token",
                      "this server needs its token (Authorization: Bearer, or ?token=)",
                      "WWW-Authenticate: Bearer realm=\"vtrackd\"\r\n");
        return;
    }
    if (strcmp(rq->path, "/metrics") == 0) {
        if (is(rq, "GET"))
            serve_metrics(c);
        else
            not_allowed(c, "GET");
    } else if (strcmp(rq->path, "/ws") == 0) {
        vtd_srec *r = vtd_http_query(rq->query, "stream", seg, sizeof seg) == 1
                          ? vtd_streams_find(h->d, seg)
                          : NULL;
        if (!rq->upgrade_ws)
            respond_error(c, 426, VT_PROTO_CODE_BAD_REQUEST, NULL, "a WebSocket upgrade only",
                          "Upgrade: websocket\r\n");
        else if (!r)
            respond_error(c, 404, VT_PROTO_CODE_NOT_FOUND, "stream", "no such stream", NULL);
        else
            ws_upgrade(c, rq, r);
    } else if (strcmp(rq->path, "/api/stats") == 0) {
        if (is(rq, "GET"))
            run_op(c, "stats", NULL, 0, NULL, 0, NULL, NULL);
        else
            not_allowed(c, "GET");
    } else if (strcmp(rq->path, "/api/streams") == 0 ||
               strncmp(rq->path, "/api/streams/", 13) == 0) {
        route_streams(c, rq, body, blen);
    } else {
        respond_error(c, 404, VT_PROTO_CODE_NOT_FOUND, NULL, "no such resource", NULL);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Reading requests
 * ------------------------------------------------------------------------------------------- */

static void fail_request(hconn *c, int status, const char *msg) {
    c->close_after = 1;
    respond_error(c, status,
                  status == 413 ? VT_PROTO_CODE_LINE_TOO_LONG : VT_PROTO_CODE_BAD_REQUEST, NULL,
                  msg, NULL);
}

/* A whole request in c->buf? Handle it. */
static void try_request(hconn *c) {
    const vtd_http_conf *hc = &c->h->d->cfg->http;
    vtd_http_req rq;
    int n = vtd_http_parse(c->buf, c->len, hc->header_bytes, &rq);
    if (n == 0)
        return;
    if (n < 0) {
        fail_request(c, -n,
                     -n == 431   ? "request head too large (http.header_bytes)"
                     : -n == 414 ? "request target too long"
                     : -n == 501 ? "Transfer-Encoding is not supported: send Content-Length"
                     : -n == 505 ? "HTTP/1.0 or HTTP/1.1 only"
                                 : "malformed request");
        return;
    }
    if (rq.content_length > (long long)hc->body_bytes) {
        fail_request(c, 413, "request body too large (http.body_bytes)");
        return;
    }
    size_t blen = rq.content_length > 0 ? (size_t)rq.content_length : 0;
    if (c->len < (size_t)n + blen)
        return; /* the body is still coming */
    c->keep_alive = rq.keep_alive;
    c->since_ms = 0;
    /* What follows the request (pipelining) is not read: at most one request at a time. */
    c->len = 0;
    route(c, &rq, c->buf + n, blen);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
    hconn *c = hd->data;
    (void)suggested;
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    hconn *c = st->data;
    (void)buf;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    if (c->state == ST_WS) {
        ws_input(c);
        return;
    }
    if (c->state != ST_READ)
        return;
    if (!c->since_ms)
        c->since_ms = vt_mono_us() / 1000;
    try_request(c);
    if (!c->closing && c->state == ST_READ && c->len == c->cap)
        fail_request(c, 413, "request too large");
}

static void start_reading(hconn *c) {
    if (c->reading || c->closing)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
    else
        c->reading = 1;
}

/* The request is ours to free, also when closing the handle cancels it. */
static void on_shutdown(uv_shutdown_t *sd, int status) {
    (void)status;
    free(sd);
}

static void on_write(uv_write_t *req, int status) {
    hconn *c = req->data;
    c->writing = 0;
    free(c->out);
    c->out = NULL;
    if (c->inflight) {
        c->h->frames_sent += c->inflight_frame;
        vtd_msg_unref(&c->h->d->hub, c->inflight);
        c->inflight = NULL;
    }
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->state == ST_WS) {
        start_reading(c);
        ws_flush(c);
        return;
    }
    if (!c->keep_alive || c->close_after) {
        uv_shutdown_t *sd = malloc(sizeof *sd);
        if (!sd || uv_shutdown(sd, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
            free(sd);
        conn_close(c);
        return;
    }
    c->state = ST_READ;
    c->idle_ms = vt_mono_us() / 1000;
    start_reading(c);
}

/* ---------------------------------------------------------------------------------------------
 * Accepting, sweeping
 * ------------------------------------------------------------------------------------------- */

static void on_connection(uv_stream_t *server, int status) {
    vtd_http *h = server->data;
    if (status < 0 || h->stopping)
        return;
    const vtd_http_conf *hc = &h->d->cfg->http;
    hconn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->h = h;
    c->cap = hc->header_bytes + hc->body_bytes;
    uv_tcp_init(h->d->loop, &c->tcp);
    c->tcp.data = c;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || !(c->buf = malloc(c->cap))) {
        conn_close(c);
        return;
    }
    vtd_peer_name(&c->tcp, c->peer, sizeof c->peer);
    uv_tcp_nodelay(&c->tcp, 1);
    c->idle_ms = vt_mono_us() / 1000;
    if (h->nconns > hc->clients) {
        c->close_after = 1;
        respond_error(c, 503, VT_PROTO_CODE_LIMIT, NULL, "too many HTTP clients (http.clients)",
                      "Retry-After: 1\r\n");
        return;
    }
    start_reading(c);
}

static void on_sweep(uv_timer_t *t) {
    vtd_http *h = t->data;
    int64_t now = vt_mono_us() / 1000, limit = h->d->cfg->http.request_timeout_ms;
    for (hconn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == ST_READ && c->since_ms && now - c->since_ms > limit) {
            fail_request(c, 408, "the request did not arrive in time (http.request_timeout_s)");
        } else if (c->state == ST_READ && !c->since_ms && now - c->idle_ms > limit) {
            conn_close(c); /* an idle keep-alive connection */
        } else if (c->state == ST_WRITE && now - c->write_ms > limit) {
            vtd_info("http client (%s): closed: it does not read its answer", c->peer);
            conn_close(c);
        } else if (c->state == ST_WAIT_FRAME && now > c->deadline_ms) {
            respond_error(c, 503, VT_PROTO_CODE_NOT_FOUND, "stream",
                          "the stream has no frame to show yet", "Retry-After: 1\r\n");
            vtd_srec *r = vtd_streams_find(h->d, c->stream);
            if (r)
                update_want(h, r);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Life
 * ------------------------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *hd) {
    vtd_http *h = hd->data;
    h->pending_close--;
    h_maybe_free(h);
}

static void on_listener_closed(uv_handle_t *hd) {
    vtd_http *h = hd->data;
    free(hd);
    h->pending_close--;
    h_maybe_free(h);
}

static void h_maybe_free(vtd_http *h) {
    if (!h->stopping || h->pending_close > 0)
        return;
    free_static(h);
    free(h);
}

static void close_listeners(vtd_http *h, uv_tcp_t **lis, int n) {
    for (int i = 0; i < n; i++) {
        h->pending_close++;
        uv_close((uv_handle_t *)lis[i], on_listener_closed);
    }
}

/* Bind spec's addresses into lis (up to LISTENERS) and listen: 0 with *n > 0, or an error (all
 * of them closed again, logged). */
static int bind_listen(vtd_http *h, const char *spec, uv_tcp_t **lis, int *n) {
    struct addrinfo *res;
    int gai, rc = vtd_server_resolve(spec, &res, &gai);
    *n = 0;
    if (rc < 0) {
        vtd_err("http: listen %s: %s", spec, rc == -EADDRNOTAVAIL ? gai_strerror(gai) : "bad");
        return rc;
    }
    int err = 0;
    for (struct addrinfo *ai = res; ai && *n < LISTENERS; ai = ai->ai_next) {
        uv_tcp_t *l = malloc(sizeof *l);
        if (!l) {
            err = err ? err : UV_ENOMEM;
            continue;
        }
        uv_tcp_init(h->d->loop, l);
        l->data = h;
        rc = uv_tcp_bind(l, ai->ai_addr, ai->ai_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)l, LISTEN_BACKLOG, on_connection);
        if (rc < 0) {
            err = err ? err : rc;
            close_listeners(h, &l, 1);
            continue;
        }
        lis[(*n)++] = l;
    }
    freeaddrinfo(res);
    if (!*n) {
        vtd_err("http: listen %s: %s", spec, uv_strerror(err ? err : UV_EADDRNOTAVAIL));
        return err ? err : UV_EADDRNOTAVAIL;
    }
    vtd_notice("http: listening on %s", spec);
    return 0;
}

static int http_start(vtd *d, const vtd_config *cfg, vtd_http **out) {
    *out = NULL;
    vtd_http *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->d = d;
    int rc = bind_listen(h, cfg->http.listen, h->lis, &h->nlis);
    if (rc < 0) {
        /* Listeners that failed are closing: free once they are. */
        h->stopping = 1;
        h_maybe_free(h);
        return rc;
    }
    char dir[PATH_MAX];
    load_static(h, vtd_http_static_dir(cfg, dir, sizeof dir));
    uv_timer_init(d->loop, &h->sweep);
    h->sweep.data = h;
    uv_timer_start(&h->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    *out = h;
    return 0;
}

int vtd_http_start(vtd *d, vtd_http **out) {
    return http_start(d, d->cfg, out);
}

void vtd_http_stop(vtd_http **ph) {
    vtd_http *h = *ph;
    if (!h)
        return;
    *ph = NULL;
    h->stopping = 1;
    close_listeners(h, h->lis, h->nlis);
    h->nlis = 0;
    h->pending_close++;
    uv_close((uv_handle_t *)&h->sweep, on_handle_closed);
    while (h->conns)
        conn_close(h->conns);
    for (vtd_srec *r = h->d->streams; r; r = r->next)
        atomic_store(&r->live.want, 0);
}

void vtd_http_event(vtd_http *h, vtd_srec *r, const vtd_event *ev) {
    if (!h)
        return;
    if (ev->kind == VT_STREAM_EVENT_FRAME)
        maybe_encode(h, r);
    else
        ws_event(h, r->conf.name, ev->plain);
}

void vtd_http_publish(vtd_http *h, const char *stream, vtd_msg *m) {
    if (h)
        ws_event(h, stream, m);
}

void vtd_http_get_stats(const vtd_http *h, vtd_http_stats *st) {
    memset(st, 0, sizeof *st);
    if (!h)
        return;
    st->clients = h->nconns;
    st->viewers = h->nviewers;
    st->requests = h->requests;
    for (const hconn *c = h->conns; c; c = c->next)
        st->queued_bytes += c->evbytes;
    st->frames_sent = h->frames_sent;
    st->frames_skipped = h->frames_skipped;
    st->closed_slow = h->closed_slow;
}

/* Viewers were let in by the token in force when they connected: a changed token closes them
 * (the page reconnects with its own token, and is refused if that is no longer it). */
static int close_viewers(vtd_http *h) {
    int n = 0;
    for (hconn *c = h->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == ST_WS) {
            conn_close(c);
            n++;
        }
    }
    return n;
}

void vtd_http_reload(vtd *d, vtd_config *nc) {
    vtd_http_conf *was = &d->cfg->http, *now = &nc->http;
    vtd_http *h = d->http;
    if (!now->enabled) {
        if (h) {
            vtd_notice("reload: http removed: its listener and %d connection%s closed", h->nconns,
                       h->nconns == 1 ? "" : "s");
            vtd_http_stop(&d->http);
        }
        return;
    }
    if (!h) {
        if (http_start(d, nc, &d->http) < 0) {
            /* not running: the next reload tries again */
            vtd_err("reload: http: cannot listen on %s: the HTTP API stays off", now->listen);
            now->enabled = 0;
        } else {
            vtd_notice("reload: http started");
        }
        return;
    }
    const char *wt = d->cfg->token, *nt = nc->token;
    if ((wt || nt) && (!wt || !nt || strcmp(wt, nt) != 0)) {
        int n = close_viewers(h);
        if (n)
            vtd_notice("reload: token changed: %d live view%s closed", n, n == 1 ? "" : "s");
    }
    if (strcmp(was->listen, now->listen) != 0) {
        uv_tcp_t *lis[LISTENERS];
        int n;
        if (bind_listen(h, now->listen, lis, &n) < 0) {
            /* The old address still serves: the configuration in force says so. */
            vtd_err("reload: http.listen: keeping %s", was->listen);
            char *tmp = now->listen;
            now->listen = was->listen;
            was->listen = tmp;
        } else {
            close_listeners(h, h->lis, h->nlis);
            memcpy(h->lis, lis, sizeof lis[0] * (size_t)n);
            h->nlis = n;
            vtd_notice("reload: http: no longer listening on %s (%d connection%s kept)",
                       was->listen, h->nconns, h->nconns == 1 ? "" : "s");
        }
    }
    /* the page's files, in case they changed (static_dir, or an upgrade) */
    char dir[PATH_MAX];
    free_static(h);
    load_static(h, vtd_http_static_dir(nc, dir, sizeof dir));
}
