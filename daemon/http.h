/*
 * http.h - the HTTP API and live view: a second listener (the "http" object of vtrackd.json;
 * endpoints: docs/HTTP.md), served on the daemon's loop by a small HTTP/1.1 and WebSocket
 * server of its own (http.c; the request head is parsed by http_parse.c).
 *
 * Loop thread only, nothing blocks: requests are read into a buffer bounded by the head and body
 * limits and must arrive whole within request_timeout_s (else 408), answers go out in one
 * uv_write while the connection is not read (no pipelining), the web page's files are read into
 * memory at start. Commands go through control.c (vtd_control_run), so the protocol's rules and
 * limits apply unchanged. JPEG frames are encoded on libuv's pool only while someone asks (a GET
 * of frame.jpg, a WebSocket viewer), at most frame_rate per stream per second (live.h); each
 * viewer holds at most one frame not yet written and a newer one replaces it (counted as
 * skipped), and its queue of events is bounded by ws_queue_bytes (past it, it is closed).
 */
#ifndef VTD_HTTP_H
#define VTD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "hub.h"

typedef struct vtd_http vtd_http;

/* Bind d->cfg->http.listen, load the web page's files, start serving. 0 or a negative error
 * (logged). */
int vtd_http_start(vtd *d, vtd_http **out);

/* SIGHUP, before nc replaces d->cfg: start, stop or rebind d->http as nc's "http" section says
 * (a new listen address is bound before the old one closes; connections stay; if it cannot be
 * bound, the old one stays and nc is amended to say so), close the WebSocket viewers when the
 * token changed, reload the page's files. The other fields are read from d->cfg when used. */
void vtd_http_reload(vtd *d, vtd_config *nc);

/* Close the listener and every connection; freed once libuv has closed the handles. Accepts
 * NULL; sets *h to NULL. */
void vtd_http_stop(vtd_http **h);

/* An event dispatched by the hub (hub.c): frames may start an encoding for viewers, other
 * events go to the stream's WebSocket viewers. */
void vtd_http_event(vtd_http *h, vtd_srec *r, const vtd_event *ev);

/* An event built on the loop (vtd_hub_publish): to the stream's WebSocket viewers. */
void vtd_http_publish(vtd_http *h, const char *stream, vtd_msg *m);

typedef struct vtd_http_stats {
    int clients, viewers;
    uint64_t requests;
    size_t queued_bytes;     /* WebSocket viewers' queues */
    uint64_t frames_sent;    /* JPEG frames written to viewers */
    uint64_t frames_skipped; /* replaced by a newer one before they could be written */
    uint64_t closed_slow;    /* viewers closed for passing ws_queue_bytes */
} vtd_http_stats;

void vtd_http_get_stats(const vtd_http *h, vtd_http_stats *st);

/* Where the web page's files are: http.static_dir, else <root>/web for a program in a build
 * tree (<root>/<build>/daemon/vtrackd), else the installed data directory. */
const char *vtd_http_static_dir(const vtd_config *cfg, char *buf, size_t len);

#endif
