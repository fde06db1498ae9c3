/*
 * server.h - TCP listeners and client connections.
 *
 * Each connection reads NDJSON commands (bounded line length, a deadline for an unfinished line,
 * an idle deadline for a client that never subscribes) and has a bounded outgoing queue of shared
 * messages. Only one uv_write is in flight per connection; whatever queues meanwhile goes out as
 * the next batch, each message behind its own seq prefix (two uv_buf_t per message). Frame events
 * over the soft limit replace the oldest queued frame events (counted, then announced with one
 * `dropped`); a connection that falls more than the hard limit behind is disconnected.
 *
 * Loop thread only (asserted), except vtd_server_resolve and vtd_conn_wants.
 */
#ifndef VTD_SERVER_H
#define VTD_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "hub.h"
#include "vt_proto.h"

#define VTD_BATCH         64        /* messages per uv_write */
#define VTD_BATCH_BYTES   (1 << 20) /* bytes per uv_write (a larger single message still goes) */
#define VTD_QUEUE_MAX     65536     /* queued messages per connection */
#define VTD_SUB_NAMES_MAX 256       /* names in one connection's subscription */

typedef struct vtd_qent {
    vtd_msg *msg; /* NULL: dropped (a hole skipped when sending) */
    int droppable;
} vtd_qent;

typedef struct vtd_conn {
    uv_tcp_t tcp;
    uv_write_t wreq;
    vtd *d;
    struct vtd_conn *prev, *next;
    uint64_t id;
    char peer[64];
    vt_ndjson_reader *rd;
    uint64_t seq; /* next seq to send */
    int authed;
    int closing;     /* uv_close called */
    int eof;         /* the client half-closed its side */
    int drain_close; /* close once everything queued is written */
    int64_t drain_deadline_ms;
    int reading;
    int bad_auth; /* failed hellos */
    /* subscription: none, all (names = exceptions) or a list (names = included) */
    int subscribed, sub_all, masks;
    char (*names)[VT_PROTO_NAME_MAX + 1];
    int nnames;
    /* outgoing queue */
    vtd_qent *q;
    int qcap, qhead, qtail, qscan; /* live entries in [qhead, qtail); no droppable before qscan */
    size_t qbytes;                 /* bytes queued, not yet handed to libuv */
    size_t inflight_bytes;
    int ninflight;
    vtd_msg *inflight[VTD_BATCH + 1];
    char prefix[VTD_BATCH + 1][VT_PROTO_SEQ_PREFIX_MAX];
    uint64_t dropped_pending, dropped_total;
    size_t behind_bytes; /* bytes dropped since the client last accepted data */
    /* deadlines */
    int64_t last_rx_ms;
    int64_t partial_since_ms;
} vtd_conn;

/* Bind the configured addresses, or take the `nfds` sockets systemd passed (socket activation,
 * vtd_notify_listen_fds()). 0 or a negative error (logged). Loop thread, before the loop runs. */
int vtd_server_listen(vtd *d, int nfds);

/* Resolve a listen address "HOST:PORT" into *res (freeaddrinfo it): 0, -EINVAL when it is not
 * HOST:PORT, or -EADDRNOTAVAIL with getaddrinfo's error in *gai. */
struct addrinfo;
int vtd_server_resolve(const char *spec, struct addrinfo **res, int *gai);

/* Stop accepting and close the listeners. */
void vtd_server_close_listeners(vtd *d);

/* "ip:port" ("[ip6]:port") of a connected socket's peer into out, "?" when unknown. Used by
 * both listeners (this one and http.c's). */
void vtd_peer_name(uv_tcp_t *tcp, char *out, size_t len);

/* Listen on exactly `specs` (a reload): bind the addresses not served yet, then close those no
 * longer wanted; connections are untouched. When one cannot be bound (logged), the sockets of
 * this call are closed again and the running ones kept: a negative error. */
int vtd_server_relisten(vtd *d, char *const *specs, int n);

/* Queue a message on a connection; takes a new reference on `m` (the caller keeps its own). */
void vtd_conn_send(vtd_conn *c, vtd_msg *m, int droppable);

/* Queue the error message `e` (an `error` line, written into a fresh message); out of memory
 * closes the connection. */
void vtd_conn_send_error(vtd_conn *c, const vt_proto_err *e);

/* Close after flushing what is queued (bounded by `timeout_ms`). */
void vtd_conn_close_after_flush(vtd_conn *c, int64_t timeout_ms);

/* Close now, discarding what is queued. */
void vtd_conn_close(vtd_conn *c, const char *why);

/* Does connection `c` receive events of `stream`? */
int vtd_conn_wants(const vtd_conn *c, const char *stream);

/* Periodic checks (idle clients, unfinished lines, flush deadlines); from a loop timer. */
void vtd_server_sweep(vtd *d, int64_t now_ms);

/* Begin the end: every connection is closed once flushed, within the shutdown timeout. */
void vtd_server_shutdown(vtd *d);

#endif
