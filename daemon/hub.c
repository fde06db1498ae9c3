/* hub.c - see hub.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

/* ---------------------------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------------------------- */

vtd_msg *vtd_msg_new(vtd_hub *h, size_t len) {
    pthread_mutex_lock(&h->lock);
    vtd_msg *m = h->pool;
    if (m) {
        h->pool = m->next;
        h->npool--;
    }
    pthread_mutex_unlock(&h->lock);
    if (!m && !(m = calloc(1, sizeof *m)))
        return NULL;
    m->next = NULL;
    m->refs = 1;
    m->buf.len = 0;
    if (vt_proto_buf_reserve(&m->buf, len) < 0) {
        vt_proto_buf_free(&m->buf);
        free(m);
        return NULL;
    }
    return m;
}

int vtd_tail_object(vt_proto_buf *out, const char *tail, size_t len) {
    out->len = 0;
    if (vt_proto_buf_reserve(out, len + 1) < 0)
        return -ENOMEM;
    out->data[0] = '{';
    memcpy(out->data + 1, tail, len);
    out->len = len + 1;
    out->data[out->len] = 0;
    return 0;
}

vtd_msg *vtd_msg_copy(vtd_hub *h, const char *p, size_t n) {
    vtd_msg *m = vtd_msg_new(h, n);
    if (m) {
        memcpy(m->buf.data, p, n);
        m->buf.len = n;
        m->buf.data[n] = 0;
    }
    return m;
}

void vtd_msg_unref(vtd_hub *h, vtd_msg *m) {
    /* refs is not atomic: only the loop shares a message; another thread may only drop the one
     * reference to a message it never published. */
    assert(!m || m->refs == 1 || pthread_equal(pthread_self(), h->d->loop_thread));
    if (!m || --m->refs > 0)
        return;
    /* Keep ordinary messages for reuse; a rare huge one (masks of a 4K frame) goes back to
     * the allocator so the pool's memory stays bounded. */
    if (m->buf.cap <= VTD_HUB_POOL_BIG) {
        pthread_mutex_lock(&h->lock);
        if (h->npool < VTD_HUB_POOL) {
            m->next = h->pool;
            h->pool = m;
            h->npool++;
            m = NULL;
        }
        pthread_mutex_unlock(&h->lock);
    }
    if (m) {
        vt_proto_buf_free(&m->buf);
        free(m);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The queue from the stream threads
 * ------------------------------------------------------------------------------------------- */

static void event_release(vtd_hub *h, vtd_event *ev) {
    vtd_msg_unref(h, ev->plain);
    vtd_msg_unref(h, ev->masks);
    if (ev->src)
        vtd_srec_unref(ev->src);
    memset(ev, 0, sizeof *ev);
}

void vtd_hub_push(vtd_hub *h, vtd_event *ev) {
    int frame = ev->kind == VT_STREAM_EVENT_FRAME;
    pthread_mutex_lock(&h->lock);
    int full = h->count >= VTD_HUB_QUEUE || (frame && h->nframes >= VTD_HUB_FRAMES);
    if (!full) {
        h->ring[(h->head + h->count) % VTD_HUB_QUEUE] = *ev;
        h->count++;
        h->nframes += frame;
    } else if (frame) {
        h->dropped_frames++;
    } else {
        h->lost_events++;
    }
    pthread_mutex_unlock(&h->lock);
    if (full) {
        /* The loop is far behind (or stopped). Messages that were never published can be freed
         * from this thread: nobody else holds them. */
        if (!frame)
            vtd_warn("hub: event queue full, a %s event of %s was lost",
                     ev->kind == VT_STREAM_EVENT_STATE ? "state" : "object",
                     ev->src ? ev->src->conf.name : "?");
        vt_proto_buf_free(&ev->plain->buf);
        free(ev->plain);
        if (ev->masks) {
            vt_proto_buf_free(&ev->masks->buf);
            free(ev->masks);
        }
        /* The reference taken for this event goes back at once. It is never the last one:
         * the stream's threads, which push, are joined before the daemon drops its own
         * reference (streams.c), so the record is not freed from here. */
        atomic_fetch_sub(&ev->src->refs, 1);
        return;
    }
    uv_async_send(&h->async);
}

static void dispatch(vtd_hub *h, vtd_event *ev) {
    vtd *d = h->d;
    vtd_srec *r = ev->src;
    if (atomic_load(&r->detached))
        return; /* removed: its subscribers already saw `ended` */
    if (ev->kind == VT_STREAM_EVENT_STATE) {
        r->state = ev->state;
        vtd_status_dirty(d);
    } else if (ev->kind == VT_STREAM_EVENT_FRAME) {
        vtd_persist_frame(d, r, ev->masks);
    } else if (ev->dropped_object) {
        vtd_persist_untrack(d, r->conf.name, ev->dropped_object);
    }
    vtd_mqtt_event(d->mqtt, r->conf.name, ev->plain, ev->masks);
    vtd_http_event(d->http, r, ev);
    int droppable = ev->kind == VT_STREAM_EVENT_FRAME;
    /* Sending may close c (hard limit, failed write), which unlinks it: step with the next
     * pointer taken before. */
    for (vtd_conn *c = d->conns, *next; c; c = next) {
        next = c->next;
        if (!c->subscribed || !vtd_conn_wants(c, r->conf.name))
            continue;
        vtd_conn_send(c, c->masks && ev->masks ? ev->masks : ev->plain, droppable);
    }
}

/* At most VTD_HUB_PER_TICK events per call; returns 1 if more are waiting. */
static int drain(vtd_hub *h, int cap) {
    vtd_event batch[64];
    int done = 0;
    for (;;) {
        int n = 0;
        pthread_mutex_lock(&h->lock);
        while (h->count > 0 && n < (int)(sizeof batch / sizeof batch[0]) && done + n < cap) {
            batch[n] = h->ring[h->head];
            h->nframes -= batch[n].kind == VT_STREAM_EVENT_FRAME;
            h->head = (h->head + 1) % VTD_HUB_QUEUE;
            h->count--;
            n++;
        }
        int more = h->count > 0;
        pthread_mutex_unlock(&h->lock);
        for (int i = 0; i < n; i++) {
            dispatch(h, &batch[i]);
            event_release(h, &batch[i]);
        }
        done += n;
        if (!more)
            return 0;
        if (done >= cap)
            return 1;
    }
}

static void on_async(uv_async_t *a) {
    vtd_hub *h = a->data;
    /* uv_async_send coalesces: drain what is there, but in bounded portions so that a burst
     * cannot starve the sockets; re-arm to continue on the next loop iteration. */
    if (drain(h, VTD_HUB_PER_TICK))
        uv_async_send(&h->async);
}

void vtd_hub_drain_all(vtd_hub *h) {
    VTD_ASSERT_LOOP(h->d);
    while (drain(h, VTD_HUB_PER_TICK))
        ;
}

void vtd_hub_publish(vtd_hub *h, const char *stream, vtd_msg *m) {
    VTD_ASSERT_LOOP(h->d);
    vtd_mqtt_event(h->d->mqtt, stream, m, NULL);
    vtd_http_publish(h->d->http, stream, m);
    for (vtd_conn *c = h->d->conns, *next; c; c = next) {
        next = c->next; /* sending may close and unlink c */
        if (c->subscribed && vtd_conn_wants(c, stream))
            vtd_conn_send(c, m, 0);
    }
    vtd_msg_unref(h, m);
}

int vtd_hub_init(vtd_hub *h, vtd *d) {
    memset(h, 0, sizeof *h);
    h->d = d;
    int rc = pthread_mutex_init(&h->lock, NULL);
    if (rc)
        return -rc;
    h->async.data = h;
    return uv_async_init(d->loop, &h->async, on_async);
}

void vtd_hub_close(vtd_hub *h) {
    VTD_ASSERT_LOOP(h->d);
    if (!uv_is_closing((uv_handle_t *)&h->async))
        uv_close((uv_handle_t *)&h->async, NULL);
}

void vtd_hub_free(vtd_hub *h) {
    VTD_ASSERT_LOOP(h->d);
    while (h->count > 0) {
        event_release(h, &h->ring[h->head]);
        h->head = (h->head + 1) % VTD_HUB_QUEUE;
        h->count--;
    }
    while (h->pool) {
        vtd_msg *m = h->pool;
        h->pool = m->next;
        vt_proto_buf_free(&m->buf);
        free(m);
    }
    h->npool = 0;
    pthread_mutex_destroy(&h->lock);
}
