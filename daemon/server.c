/* server.c - see server.h. */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "notify.h"

#define READ_BUF        (64 * 1024)
#define LISTEN_BACKLOG  511
#define KEEPALIVE_S     60
#define REJECT_FLUSH_MS 1000

/* Reads are handled completely inside the read callback (the NDJSON reader copies what it must
 * keep), so every connection can share one buffer. */
static char g_readbuf[READ_BUF];
static int g_readbuf_busy;

/* ---------------------------------------------------------------------------------------------
 * Closing
 * ------------------------------------------------------------------------------------------- */

static void on_close(uv_handle_t *hd) {
    vtd_conn *c = hd->data;
    vtd *d = c->d;
    for (int i = c->qhead; i < c->qtail; i++)
        vtd_msg_unref(&d->hub, c->q[i].msg);
    for (int i = 0; i < c->ninflight; i++)
        vtd_msg_unref(&d->hub, c->inflight[i]);
    free(c->q);
    free(c->names);
    vt_ndjson_reader_free(&c->rd);
    free(c);
    vtd_maybe_finish(d);
}

static void unlink_conn(vtd_conn *c) {
    vtd *d = c->d;
    if (c->prev)
        c->prev->next = c->next;
    else if (d->conns == c)
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    d->nconns--;
}

void vtd_conn_close(vtd_conn *c, const char *why) {
    VTD_ASSERT_LOOP(c->d);
    if (c->closing)
        return;
    c->closing = 1;
    vtd_log(why ? VTD_LOG_INFO : VTD_LOG_DEBUG, "client %llu (%s): closed%s%s",
            (unsigned long long)c->id, c->peer, why ? ": " : "", why ? why : "");
    unlink_conn(c);
    vtd_status_dirty(c->d);
    /* Pending writes complete with UV_ECANCELED before on_close runs. */
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void vtd_conn_close_after_flush(vtd_conn *c, int64_t timeout_ms) {
    VTD_ASSERT_LOOP(c->d);
    if (c->closing)
        return;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    if (!c->drain_close || vt_mono_us() / 1000 + timeout_ms < c->drain_deadline_ms)
        c->drain_deadline_ms = vt_mono_us() / 1000 + timeout_ms;
    c->drain_close = 1;
    if (!c->ninflight && c->qhead == c->qtail)
        vtd_conn_close(c, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status);

static void start_reading(vtd_conn *c);

static void conn_flush(vtd_conn *c) {
    if (c->closing || c->ninflight)
        return;
    vtd *d = c->d;
    uv_buf_t bufs[2 * (VTD_BATCH + 1)];
    int nb = 0, nm = 0;
    size_t bytes = 0;
#define ADD(m)                                                                                     \
    do {                                                                                           \
        size_t pn_ = vt_proto_seq_prefix(c->prefix[nm], c->seq++);                                 \
        bufs[nb++] = uv_buf_init(c->prefix[nm], (unsigned)pn_);                                    \
        bufs[nb++] = uv_buf_init((m)->buf.data, (unsigned)(m)->buf.len);                           \
        c->inflight[nm++] = (m);                                                                   \
        bytes += pn_ + (m)->buf.len;                                                               \
    } while (0)
    /* Announce drops before the next message, as the protocol promises. */
    if (c->dropped_pending && c->qhead < c->qtail) {
        vtd_msg *m = vtd_msg_new(&d->hub, 64);
        if (m && vt_proto_write_dropped(&m->buf, c->dropped_pending) == 0) {
            ADD(m);
            c->dropped_pending = 0;
        } else {
            vtd_msg_unref(&d->hub, m);
        }
    }
    while (c->qhead < c->qtail && nm < VTD_BATCH && bytes < VTD_BATCH_BYTES) {
        vtd_qent *e = &c->q[c->qhead++];
        if (!e->msg)
            continue;
        c->qbytes -= e->msg->buf.len;
        ADD(e->msg);
        e->msg = NULL;
    }
#undef ADD
    if (c->qhead == c->qtail)
        c->qhead = c->qtail = c->qscan = 0;
    if (nm == 0)
        return;
    c->ninflight = nm;
    c->inflight_bytes = bytes;
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, (unsigned)nb, on_write);
    if (rc < 0) {
        for (int i = 0; i < nm; i++)
            vtd_msg_unref(&d->hub, c->inflight[i]);
        c->ninflight = 0;
        c->inflight_bytes = 0;
        vtd_conn_close(c, uv_strerror(rc));
    }
}

static void on_write(uv_write_t *req, int status) {
    vtd_conn *c = req->data;
    vtd *d = c->d;
    for (int i = 0; i < c->ninflight; i++)
        vtd_msg_unref(&d->hub, c->inflight[i]);
    c->ninflight = 0;
    c->inflight_bytes = 0;
    if (c->closing)
        return;
    if (status < 0) {
        vtd_conn_close(c, uv_strerror(status));
        return;
    }
    c->behind_bytes = 0; /* the client took data: it is slow, not gone */
    conn_flush(c);
    if (c->ninflight)
        return;
    if (c->drain_close && c->qhead == c->qtail) {
        vtd_conn_close(c, NULL);
        return;
    }
    if (!c->reading && !c->eof && !c->drain_close &&
        c->qbytes < d->cfg->limits.soft_queue_bytes / 2)
        start_reading(c);
}

/* Replace the oldest queued frame event by a hole. 1 if one was dropped. */
static int drop_oldest(vtd_conn *c) {
    int i = c->qscan > c->qhead ? c->qscan : c->qhead;
    for (; i < c->qtail; i++) {
        vtd_qent *e = &c->q[i];
        if (e->msg && e->droppable) {
            size_t len = e->msg->buf.len;
            vtd_msg_unref(&c->d->hub, e->msg);
            e->msg = NULL;
            c->qbytes -= len;
            c->behind_bytes += len;
            c->dropped_pending++;
            c->dropped_total++;
            c->qscan = i + 1;
            return 1;
        }
    }
    c->qscan = c->qtail;
    return 0;
}

/* Room for one more entry: compact holes away, then grow. 0 or -ENOSPC/-ENOMEM. */
static int queue_room(vtd_conn *c) {
    if (c->qtail < c->qcap)
        return 0;
    int n = 0;
    for (int i = c->qhead; i < c->qtail; i++)
        if (c->q[i].msg)
            c->q[n++] = c->q[i];
    c->qhead = 0;
    c->qtail = n;
    c->qscan = 0;
    if (n < c->qcap)
        return 0;
    if (c->qcap >= VTD_QUEUE_MAX)
        return -ENOSPC;
    int cap = c->qcap ? 2 * c->qcap : 64;
    vtd_qent *q = realloc(c->q, sizeof *q * (size_t)cap);
    if (!q)
        return -ENOMEM;
    c->q = q;
    c->qcap = cap;
    return 0;
}

void vtd_conn_send(vtd_conn *c, vtd_msg *m, int droppable) {
    VTD_ASSERT_LOOP(c->d);
    if (c->closing)
        return;
    const vtd_limits *lim = &c->d->cfg->limits;
    size_t len = m->buf.len;
    if (droppable) {
        while (c->qbytes + c->inflight_bytes + len > lim->soft_queue_bytes && drop_oldest(c))
            ;
        if (c->qbytes + c->inflight_bytes + len > lim->soft_queue_bytes) {
            /* Nothing older to drop (the queue holds only replies and lifecycle events, or
             * one large write is in flight): this frame event goes instead. */
            c->behind_bytes += len;
            c->dropped_pending++;
            c->dropped_total++;
            m = NULL;
        }
    }
    if (m) {
        if (c->qbytes + len > lim->hard_queue_bytes) {
            vtd_conn_close(c, "its queue passed the hard limit (limits.hard_queue_bytes)");
            return;
        }
        if (queue_room(c) < 0) {
            vtd_conn_close(c, "too many queued messages");
            return;
        }
        m->refs++;
        c->q[c->qtail++] = (vtd_qent){m, droppable};
        c->qbytes += len;
    }
    if (c->behind_bytes + c->qbytes + c->inflight_bytes > lim->hard_queue_bytes) {
        vtd_conn_close(c, "fell behind by more than limits.hard_queue_bytes without reading");
        return;
    }
    if (!c->ninflight)
        conn_flush(c);
    /* A client that does not read its replies stops being read (no unbounded work for it). */
    if (c->reading && c->qbytes + c->inflight_bytes > lim->soft_queue_bytes) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

void vtd_conn_send_error(vtd_conn *c, const vt_proto_err *e) {
    VTD_ASSERT_LOOP(c->d);
    vtd_msg *m = vtd_msg_new(&c->d->hub, 256);
    if (!m || vt_proto_write_error(&m->buf, e) < 0) {
        vtd_msg_unref(&c->d->hub, m);
        vtd_conn_close(c, "out of memory");
        return;
    }
    vtd_conn_send(c, m, 0);
    vtd_msg_unref(&c->d->hub, m);
}

/* Send an error with a printf-style message (cut at VT_PROTO_MESSAGE_MAX by whole characters,
 * as vt_proto_err_set does). */
static void send_code(vtd_conn *c, vt_proto_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void send_code(vtd_conn *c, vt_proto_code code, const char *fmt, ...) {
    vt_proto_err e;
    memset(&e, 0, sizeof e);
    e.code = code;
    va_list ap;
    va_start(ap, fmt);
    vt_vfmt(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    vtd_conn_send_error(c, &e);
}

/* ---------------------------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf) {
    (void)hd;
    (void)suggested;
    /* One shared buffer: a second allocation before the first read is consumed cannot happen
     * (libuv reads one stream at a time), but guard anyway. */
    if (g_readbuf_busy) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    g_readbuf_busy = 1;
    *buf = uv_buf_init(g_readbuf, sizeof g_readbuf);
}

static void handle_chunk(vtd_conn *c, const char *p, size_t n) {
    const char *line;
    size_t len;
    int rc;
    while (!c->closing && !c->drain_close &&
           (rc = vt_ndjson_next(c->rd, &p, &n, &line, &len)) != 0) {
        if (rc > 0) {
            vtd_control_line(c, line, len);
        } else if (rc == -EMSGSIZE) {
            send_code(c, VT_PROTO_CODE_LINE_TOO_LONG, "line longer than %zu bytes",
                      c->d->cfg->limits.line_bytes);
            vtd_conn_close_after_flush(c, c->d->cfg->limits.shutdown_timeout_ms + 1000);
        } else if (rc == -EILSEQ) {
            size_t at = 0;
            vt_utf8_check(line, len, &at);
            send_code(c, VT_PROTO_CODE_BAD_UTF8, "invalid UTF-8 at byte %zu of the line", at);
        } else {
            send_code(c, VT_PROTO_CODE_INTERNAL, "out of memory reading the line");
        }
    }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    vtd_conn *c = st->data;
    if (buf->base == g_readbuf)
        g_readbuf_busy = 0;
    if (nread == 0 || c->closing)
        return;
    if (nread == UV_EOF) {
        /* Half-close: the last line may lack its "\n". Answer it; a subscriber keeps getting
         * events (it can still read), anyone else is done once the answers are out. */
        const char *line;
        size_t len;
        if (vt_ndjson_flush(c->rd, &line, &len) > 0)
            vtd_control_line(c, line, len);
        c->eof = 1;
        c->partial_since_ms = 0;
        if (c->reading && !c->closing) {
            uv_read_stop(st);
            c->reading = 0;
        }
        if (!c->closing && !c->subscribed)
            vtd_conn_close_after_flush(c, c->d->cfg->limits.shutdown_timeout_ms + 1000);
        return;
    }
    if (nread < 0) {
        vtd_conn_close(c, uv_strerror((int)nread));
        return;
    }
    int64_t now = vt_mono_us() / 1000;
    c->last_rx_ms = now;
    handle_chunk(c, buf->base, (size_t)nread);
    if (!c->closing)
        c->partial_since_ms =
            vt_ndjson_pending(c->rd) ? (c->partial_since_ms ? c->partial_since_ms : now) : 0;
}

static void start_reading(vtd_conn *c) {
    if (c->reading || c->closing)
        return;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0)
        vtd_conn_close(c, uv_strerror(rc));
    else
        c->reading = 1;
}

/* ---------------------------------------------------------------------------------------------
 * Accepting
 * ------------------------------------------------------------------------------------------- */

void vtd_peer_name(uv_tcp_t *tcp, char *out, size_t len) {
    struct sockaddr_storage ss;
    int n = sizeof ss;
    snprintf(out, len, "?");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &n) < 0)
        return;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        snprintf(out, len, "[%s]:%d", ip, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else if (ss.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        snprintf(out, len, "%s:%d", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
}

static void on_connection(uv_stream_t *server, int status) {
    vtd *d = server->data;
    if (status < 0) {
        vtd_warn("accept: %s", uv_strerror(status));
        return;
    }
    vtd_conn *c = calloc(1, sizeof *c);
    if (!c) {
        vtd_err("accept: out of memory");
        return;
    }
    c->d = d;
    c->id = ++d->next_conn_id;
    uv_tcp_init(d->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
        vt_ndjson_reader_new(d->cfg->limits.line_bytes, &c->rd) < 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    vtd_peer_name(&c->tcp, c->peer, sizeof c->peer);
    /* Small event lines should leave at once; dead peers are found by keepalive probes. */
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_S);
    if (d->cfg->limits.send_buffer_bytes > 0) {
        /* Bound the kernel's share too (it autotunes up to megabytes per socket). */
        int sz = d->cfg->limits.send_buffer_bytes;
        uv_send_buffer_size((uv_handle_t *)&c->tcp, &sz);
    }
    c->last_rx_ms = vt_mono_us() / 1000;
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->nconns++;
    c->authed = d->cfg->token == NULL;
    vtd_control_hello(c);
    if (d->stopping || d->nconns > d->cfg->limits.clients) {
        if (d->stopping)
            send_code(c, VT_PROTO_CODE_LIMIT, "the server is shutting down");
        else
            send_code(c, VT_PROTO_CODE_LIMIT, "too many clients (at most %d): try again later",
                      d->cfg->limits.clients);
        vtd_info("client %llu (%s): refused, %d clients connected", (unsigned long long)c->id,
                 c->peer, d->nconns - 1);
        vtd_conn_close_after_flush(c, REJECT_FLUSH_MS);
        return;
    }
    vtd_debug("client %llu (%s): connected", (unsigned long long)c->id, c->peer);
    vtd_status_dirty(d);
    start_reading(c);
}

static void listener_closed(uv_handle_t *h) {
    ((vtd_listener *)h)->state = VTD_LISTENER_FREE;
}

static void listener_close(vtd *d, vtd_listener *l) {
    if (l->state != VTD_LISTENER_OPEN)
        return;
    l->state = VTD_LISTENER_CLOSING;
    d->nlisteners--;
    uv_close((uv_handle_t *)&l->tcp, listener_closed);
}

static vtd_listener *listener_new(vtd *d, const char *spec, int round) {
    for (int i = 0; i < VTD_LISTENERS_MAX; i++) {
        vtd_listener *l = &d->listeners[i];
        if (l->state != VTD_LISTENER_FREE)
            continue;
        uv_tcp_init(d->loop, &l->tcp);
        l->tcp.data = d;
        l->state = VTD_LISTENER_OPEN;
        l->round = round;
        snprintf(l->spec, sizeof l->spec, "%s", spec);
        d->nlisteners++;
        return l;
    }
    return NULL;
}

int vtd_server_resolve(const char *spec, struct addrinfo **res, int *gai) {
    char host[256], service[8];
    int port;
    *res = NULL;
    *gai = 0;
    if (vtd_parse_hostport(spec, host, sizeof host, &port) < 0)
        return -EINVAL;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    snprintf(service, sizeof service, "%d", port);
    if ((*gai = getaddrinfo(host, service, &hints, res)) != 0) {
        *res = NULL;
        return -EADDRNOTAVAIL;
    }
    return 0;
}

static int bind_one(vtd *d, const char *spec, int round) {
    struct addrinfo *res;
    int gai, rc = vtd_server_resolve(spec, &res, &gai);
    if (rc == -EADDRNOTAVAIL)
        vtd_err("listen %s: %s", spec, gai_strerror(gai));
    if (rc < 0)
        return -EINVAL;
    /* Every address the name has (localhost: 127.0.0.1 and ::1), or the first error. */
    int bound = 0, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        vtd_listener *l = listener_new(d, spec, round);
        if (!l) {
            err = UV_EMFILE;
            break;
        }
        rc = uv_tcp_bind(&l->tcp, ai->ai_addr, ai->ai_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
        if (rc < 0) {
            listener_close(d, l);
            if (!err)
                err = rc;
            continue;
        }
        bound++;
    }
    freeaddrinfo(res);
    if (!bound) {
        vtd_err("listen %s: %s", spec, uv_strerror(err ? err : UV_EADDRNOTAVAIL));
        return err ? err : UV_EADDRNOTAVAIL;
    }
    vtd_notice("listening on %s", spec);
    return 0;
}

int vtd_server_listen(vtd *d, int n) {
    VTD_ASSERT_LOOP(d);
    if (n > 0) {
        /* Socket activation: systemd bound the address (vtrackd.socket); the config's `listen`
         * does not apply. */
        for (int i = 0; i < n && i < VTD_LISTEN_MAX; i++) {
            vtd_listener *l = listener_new(d, "", 0);
            int rc = uv_tcp_open(&l->tcp, VTD_LISTEN_FDS_START + i);
            if (rc == 0)
                rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
            if (rc < 0) {
                vtd_err("socket activation: fd %d: %s", VTD_LISTEN_FDS_START + i, uv_strerror(rc));
                listener_close(d, l);
                return rc;
            }
        }
        d->activated = 1;
        vtd_notice("listening on %d socket(s) from systemd (socket activation)", d->nlisteners);
        return 0;
    }
    return vtd_server_relisten(d, d->cfg->listen, d->cfg->nlisten);
}

static int serving(const vtd *d, const char *spec) {
    for (int i = 0; i < VTD_LISTENERS_MAX; i++)
        if (d->listeners[i].state == VTD_LISTENER_OPEN && strcmp(d->listeners[i].spec, spec) == 0)
            return 1;
    return 0;
}

int vtd_server_relisten(vtd *d, char *const *specs, int n) {
    VTD_ASSERT_LOOP(d);
    const int round = ++d->listen_round;
    for (int i = 0; i < n; i++) {
        if (serving(d, specs[i]))
            continue;
        int rc = bind_one(d, specs[i], round);
        if (rc < 0) {
            for (int j = 0; j < VTD_LISTENERS_MAX; j++)
                if (d->listeners[j].round == round)
                    listener_close(d, &d->listeners[j]);
            return rc;
        }
    }
    for (int j = 0; j < VTD_LISTENERS_MAX; j++) {
        vtd_listener *l = &d->listeners[j];
        int wanted = 0;
        for (int i = 0; i < n && !wanted; i++)
            wanted = strcmp(l->spec, specs[i]) == 0;
        if (l->state == VTD_LISTENER_OPEN && !wanted) {
            vtd_notice("no longer listening on %s", l->spec);
            listener_close(d, l);
        }
    }
    return 0;
}

void vtd_server_close_listeners(vtd *d) {
    VTD_ASSERT_LOOP(d);
    for (int i = 0; i < VTD_LISTENERS_MAX; i++)
        listener_close(d, &d->listeners[i]);
}

/* ---------------------------------------------------------------------------------------------
 * Subscriptions, deadlines, shutdown
 * ------------------------------------------------------------------------------------------- */

int vtd_conn_wants(const vtd_conn *c, const char *stream) {
    int listed = 0;
    for (int i = 0; i < c->nnames && !listed; i++)
        listed = strcmp(c->names[i], stream) == 0;
    return c->sub_all ? !listed : listed;
}

void vtd_server_sweep(vtd *d, int64_t now) {
    VTD_ASSERT_LOOP(d);
    const vtd_limits *lim = &d->cfg->limits;
    vtd_conn *next;
    for (vtd_conn *c = d->conns; c; c = next) {
        next = c->next; /* closing unlinks c */
        if (c->drain_close) {
            if (now >= c->drain_deadline_ms)
                vtd_conn_close(c, "not flushed in time");
            continue;
        }
        if (c->partial_since_ms && now - c->partial_since_ms > lim->line_timeout_ms) {
            /* Half a line and then silence (a stalled or malicious client). */
            send_code(c, VT_PROTO_CODE_LIMIT, "incomplete line for %.1f s: closing",
                      lim->line_timeout_ms / 1000.0);
            vtd_conn_close_after_flush(c, lim->shutdown_timeout_ms + 1000);
        } else if (!c->subscribed && !c->eof && now - c->last_rx_ms > lim->idle_timeout_ms) {
            send_code(c, VT_PROTO_CODE_LIMIT, "no command for %.1f s: closing",
                      lim->idle_timeout_ms / 1000.0);
            vtd_conn_close_after_flush(c, lim->shutdown_timeout_ms + 1000);
        }
    }
}

void vtd_server_shutdown(vtd *d) {
    VTD_ASSERT_LOOP(d);
    vtd_server_close_listeners(d);
    vtd_conn *next;
    for (vtd_conn *c = d->conns; c; c = next) {
        next = c->next;
        vtd_conn_close_after_flush(c, d->cfg->limits.shutdown_timeout_ms);
    }
}
