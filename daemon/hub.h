/*
 * hub.h - events from the stream threads to the subscribers.
 *
 * Stream threads hand each event to the loop through a bounded, mutex-protected queue and
 * uv_async_send() (which coalesces, so the loop drains the queue fully, a bounded number per
 * callback). Every event's bytes are copied once into a reference-counted message (vtd_msg) that
 * all its subscribers share read-only: a frame event exists in two variants (with and without
 * masks) and each connection queues the one it asked for, behind its own `{"seq":N,` prefix.
 * Messages are recycled through a small pool, so the steady state does not allocate.
 */
#ifndef VTD_HUB_H
#define VTD_HUB_H

#include <pthread.h>
#include <stdint.h>

#include <uv.h>

#include "vt_stream.h"

typedef struct vtd vtd;
typedef struct vtd_srec vtd_srec;

/* A message tail (vt_proto.h), shared by the connections that queue it. */
typedef struct vtd_msg {
    struct vtd_msg *next; /* pool link */
    int refs;             /* loop thread only once published */
    vt_proto_buf buf;     /* the tail, "...}\n" */
} vtd_msg;

/* One event crossing from a stream thread to the loop. */
typedef struct vtd_event {
    vtd_srec *src; /* holds a reference on the stream record */
    vt_stream_event_kind kind;
    vt_proto_stream_state state; /* STATE events */
    int64_t arrival_mono_us;     /* FRAME: when the frame was decoded */
    uint32_t dropped_object;     /* OBJECT: an object the stream removed by itself, or 0 */
    vtd_msg *plain, *masks;      /* masks: FRAME only */
} vtd_event;

#define VTD_HUB_QUEUE    1024      /* events waiting for the loop */
#define VTD_HUB_FRAMES   256       /* of which frame events; newer ones are dropped beyond */
#define VTD_HUB_PER_TICK 256       /* events dispatched per loop callback */
#define VTD_HUB_POOL     512       /* idle messages kept for reuse */
#define VTD_HUB_POOL_BIG (1 << 20) /* a message larger than this is freed, not pooled */

typedef struct vtd_hub {
    vtd *d;
    uv_async_t async;
    pthread_mutex_t lock; /* ring, pool, counters */
    vtd_event ring[VTD_HUB_QUEUE];
    int head, count, nframes;
    vtd_msg *pool;
    int npool;
    uint64_t dropped_frames; /* frame events dropped because the loop fell behind */
    uint64_t lost_events;    /* other events lost the same way (should stay 0) */
} vtd_hub;

/* Set up the queue and its uv_async_t on d->loop. 0 or a UV error. */
int vtd_hub_init(vtd_hub *h, vtd *d);

/* Close the async handle (the loop must run once more to finish closing). Loop thread. */
void vtd_hub_close(vtd_hub *h);

/* Release queued events and the pool; after the loop has stopped, on its thread. */
void vtd_hub_free(vtd_hub *h);

/* A message of at least `len` bytes capacity with refs = 1, len 0. Any thread. NULL on OOM. */
vtd_msg *vtd_msg_new(vtd_hub *h, size_t len);

/* A message holding a copy of p[0..n). Any thread. NULL on OOM. */
vtd_msg *vtd_msg_copy(vtd_hub *h, const char *p, size_t n);

/* A message tail ("...}\n", the bytes after `{"seq":N,`) as the JSON object it ends: "{" +
 * tail[0..len), NUL-terminated, in *out (emptied first, its memory reused). Callers that want no
 * line end pass the length without it. Any thread. 0 or -ENOMEM. */
int vtd_tail_object(vt_proto_buf *out, const char *tail, size_t len);

/* Drop a reference; the last one returns the message to the pool. Loop thread (or before the
 * message was published). Accepts NULL. */
void vtd_msg_unref(vtd_hub *h, vtd_msg *m);

/* Queue an event from a stream thread; takes ownership of its messages and reference. A frame
 * event beyond VTD_HUB_FRAMES queued is dropped (counted). Thread-safe, never blocks long. */
void vtd_hub_push(vtd_hub *h, vtd_event *ev);

/* Process every queued event now (loop thread), e.g. before freeing a stream at shutdown. */
void vtd_hub_drain_all(vtd_hub *h);

/* Send an event built on the loop thread to the subscribers of `stream` (never dropped by the
 * hub; connections treat it as not droppable). Consumes the caller's reference on `m`. */
void vtd_hub_publish(vtd_hub *h, const char *stream, vtd_msg *m);

#endif
