/* streams.c - see streams.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>

#include "daemon.h"
#include "log.h"

/* ---------------------------------------------------------------------------------------------
 * Events from the stream threads
 * ------------------------------------------------------------------------------------------- */

/* Called on the stream's ingest or tracker thread: copy the event into shared messages and
 * queue it for the loop. Never blocks on the loop or on a client. */
static void on_stream_event(void *opaque, const vt_stream_event *ev) {
    vtd_srec *r = opaque;
    vtd_hub *h = &r->d->hub;
    if (atomic_load(&r->detached))
        return;
    if (ev->kind == VT_STREAM_EVENT_FRAME && r->ov)
        vtd_overlay_feed(r->ov, ev->frame, ev->result);
    if (ev->kind == VT_STREAM_EVENT_FRAME)
        vtd_live_offer(&r->live, ev);
    if (ev->kind == VT_STREAM_EVENT_FRAME && r->ad)
        vtd_adapt_frame(r, ev->frame, ev->result);
    if (ev->kind != VT_STREAM_EVENT_FRAME) {
        /* Rare and worth a line in the journal: the message itself says what happened. */
        size_t n = ev->tail_len && ev->tail[ev->tail_len - 1] == '\n' ? ev->tail_len - 1 : 0;
        vtd_log(ev->kind == VT_STREAM_EVENT_STATE ? VTD_LOG_NOTICE : VTD_LOG_INFO,
                "stream %s: {%.*s", r->conf.name, (int)(n > 900 ? 900 : n), ev->tail);
    }
    vtd_event e = {
        .src = r, .kind = ev->kind, .state = ev->state, .arrival_mono_us = ev->arrival_mono_us};
    /* An object the tracker removed on its own (an untrack command has done its part already) */
    if (ev->kind == VT_STREAM_EVENT_OBJECT && ev->lifecycle == VT_PROTO_LIFECYCLE_REMOVED &&
        !(ev->reason && strcmp(ev->reason, "untrack") == 0))
        e.dropped_object = ev->object;
    e.plain = vtd_msg_copy(h, ev->tail, ev->tail_len);
    if (ev->kind == VT_STREAM_EVENT_FRAME && e.plain)
        e.masks = vtd_msg_copy(h, ev->tail_masks, ev->tail_masks_len);
    if (!e.plain || (ev->kind == VT_STREAM_EVENT_FRAME && !e.masks)) {
        vtd_warn("stream %s: out of memory, an event was lost", r->conf.name);
        if (e.plain)
            vt_proto_buf_free(&e.plain->buf), free(e.plain);
        return;
    }
    atomic_fetch_add(&r->refs, 1);
    vtd_hub_push(h, &e);
}

/* ---------------------------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------------------------- */

static void srec_destroy(vtd_srec *r) {
    vtd_msg_unref(&r->d->hub, r->persist_msg);
    vt_stream_free(&r->s);
    vtd_live_clear(&r->live, &r->d->hub);
    vtd_overlay_free(&r->ov);
    vtd_adapt_stream_free(r);   /* after the stream: its tracker may use these models */
    vtd_model_unref(&r->model); /* after the stream: its tracker used the model */
    vtd_stream_conf_clear(&r->conf);
    free(r);
}

void vtd_srec_unref(vtd_srec *r) {
    if (atomic_fetch_sub(&r->refs, 1) == 1)
        srec_destroy(r);
}

/* Create a record and its (not started) stream; not registered. */
static int srec_create(vtd *d, const vtd_stream_conf *sc, vtd_srec **out, char *err,
                       size_t errlen) {
    *out = NULL;
    vtd_srec *r = calloc(1, sizeof *r);
    if (!r)
        return AVERROR(ENOMEM);
    r->d = d;
    r->model = vtd_model_ref(d->model);
    atomic_init(&r->refs, 1);
    atomic_init(&r->detached, 0);
    r->state = VT_PROTO_STREAM_CONNECTING;
    if (vtd_live_init(&r->live) < 0) {
        vtd_model_unref(&r->model);
        free(r);
        return AVERROR(ENOMEM);
    }
    int rc = vtd_stream_conf_copy(&r->conf, sc);
    if (rc < 0) {
        vtd_model_unref(&r->model);
        free(r);
        return AVERROR(ENOMEM);
    }
    if ((rc = vtd_adapt_stream_init(d, r, &r->model)) < 0) {
        rc = AVERROR(ENOMEM);
        goto fail;
    }
    vt_stream_config scfg;
    if ((rc = vtd_stream_conf_to_stream(&r->conf, r->model->m, &scfg, err, errlen)) < 0)
        goto fail;
    scfg.on_event = on_stream_event;
    scfg.opaque = r;
    if ((rc = vt_stream_new(&scfg, &r->s, err, errlen)) < 0)
        goto fail;
    for (int i = 0; i < r->conf.nobjects; i++) {
        const vtd_object_conf *o = &r->conf.objects[i];
        char e2[256];
        if ((rc = vt_stream_track(r->s, o->id, o->label, &o->shape, o->frame, NULL, e2,
                                  sizeof e2)) < 0) {
            snprintf(err, errlen, "stream %s: objects[%d]: %s", r->conf.name, i, e2);
            goto fail;
        }
    }
    if (r->conf.overlay_path && (rc = vtd_overlay_new(r->conf.name, r->conf.overlay_path,
                                                      r->conf.overlay_seconds, &r->ov)) < 0) {
        snprintf(err, errlen, "stream %s: cannot start the overlay writer", r->conf.name);
        goto fail;
    }
    *out = r;
    return 0;
fail:
    srec_destroy(r);
    return rc;
}

static void srec_register(vtd *d, vtd_srec *r) {
    /* Appended, so that list and stats show streams in the order they were configured. */
    vtd_srec **pp = &d->streams;
    while (*pp)
        pp = &(*pp)->next;
    *pp = r;
    r->next = NULL;
    d->nstreams++;
}

int vtd_streams_add(vtd *d, const vtd_stream_conf *sc, vtd_srec **out, char *err, size_t errlen) {
    int rc = srec_create(d, sc, out, err, errlen);
    if (rc == 0)
        srec_register(d, *out);
    return rc;
}

int vtd_streams_start(vtd_srec *r) {
    int rc = vt_stream_start(r->s);
    if (rc == 0) {
        r->started = 1;
        vtd_info("stream %s: started (%s, %s, %s/%s)", r->conf.name, r->conf.url,
                 vt_proto_pacing_name(r->conf.pacing), vt_proto_tracker_name(r->conf.tracker),
                 vt_proto_profile_name(r->conf.profile));
    }
    return rc;
}

vtd_srec *vtd_streams_find(vtd *d, const char *name) {
    for (vtd_srec *r = d->streams; r; r = r->next)
        if (strcmp(r->conf.name, name) == 0)
            return r;
    return NULL;
}

int vtd_streams_dying(const vtd *d) {
    return d->ndying;
}

/* Thread pool: joining the stream's threads waits for the frame being tracked. */
static void stop_work(uv_work_t *w) {
    vtd_srec *r = w->data;
    vt_stream_stop(r->s);
    vtd_overlay_free(&r->ov);
    vt_stream_free(&r->s);
}

static void after_stop(uv_work_t *w, int status) {
    (void)status;
    vtd_srec *r = w->data;
    vtd *d = r->d;
    for (vtd_srec **pp = &d->dying; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    d->ndying--;
    vtd_debug("stream %s: stopped", r->conf.name);
    vtd_srec_unref(r);
    vtd_maybe_finish(d);
}

static void publish_local(vtd *d, const char *stream, int (*write)(vt_proto_buf *, const void *),
                          const void *arg) {
    vtd_msg *m = vtd_msg_new(&d->hub, 256);
    if (!m)
        return;
    if (write(&m->buf, arg) < 0) {
        vtd_msg_unref(&d->hub, m);
        return;
    }
    vtd_hub_publish(&d->hub, stream, m);
}

static int write_object(vt_proto_buf *b, const void *p) {
    return vt_proto_write_object_event(b, p);
}

static int write_state(vt_proto_buf *b, const void *p) {
    return vt_proto_write_stream_event(b, p);
}

void vtd_streams_remove(vtd_srec *r, const char *why) {
    vtd *d = r->d;
    for (vtd_srec **pp = &d->streams; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            d->nstreams--;
            break;
        }
    r->next = d->dying;
    d->dying = r;
    d->ndying++;
    /* From now on the stream's own events are discarded: its subscribers get the end of its
     * objects and of the stream itself from here, last. */
    atomic_store(&r->detached, 1);
    vt_stream_cancel(r->s);
    vt_stream_snapshot *snap = malloc(sizeof *snap);
    if (snap) {
        vt_stream_get_snapshot(r->s, snap);
        for (int i = 0; i < snap->nobjects; i++) {
            vt_proto_object_event oe = {.stream = r->conf.name,
                                        .id = snap->objects[i].id,
                                        .label = snap->objects[i].label,
                                        .event = VT_PROTO_LIFECYCLE_REMOVED,
                                        .frame = snap->frame,
                                        .reason = "stream removed"};
            publish_local(d, r->conf.name, write_object, &oe);
        }
        free(snap);
    }
    vt_proto_stream_event se = {
        .stream = r->conf.name, .state = VT_PROTO_STREAM_ENDED, .reason = why};
    publish_local(d, r->conf.name, write_state, &se);
    vtd_mqtt_forget_stream(d->mqtt, r->conf.name);
    vtd_notice("stream %s: removed (%s)", r->conf.name, why);
    r->stopping = 1;
    r->work.data = r;
    if (uv_queue_work(d->loop, &r->work, stop_work, after_stop) < 0) {
        /* Cannot happen with a live loop; stop inline rather than leak the threads. */
        stop_work(&r->work);
        after_stop(&r->work, 0);
    }
    vtd_status_dirty(d);
}

void vtd_streams_reload(vtd *d, const vtd_config *cfg, int model_changed) {
    /* Streams of the old configuration (and command line) that are gone or changed end; new
     * and changed ones start (every configured one when the model changed); the others are not
     * touched, nor are client-added ones. All new streams are created first so that one that
     * fails leaves everything as it was. */
    vtd_srec *created[VTD_STREAMS_MAX];
    int ncreated = 0;
    char err[512];
    /* limits.streams counts the streams clients added too */
    int nclient = 0, nconf = 0;
    for (vtd_srec *r = d->streams; r; r = r->next)
        nclient += r->conf.origin == VTD_ORIGIN_CLIENT;
    for (int i = 0; i < cfg->nstreams; i++) {
        const vtd_srec *old = vtd_streams_find(d, cfg->streams[i].name);
        nconf += !old || old->conf.origin != VTD_ORIGIN_CLIENT;
    }
    if (nclient + nconf > cfg->limits.streams) {
        vtd_err("reload: %d configured streams and %d added by clients exceed limits.streams (%d): "
                "the streams are left as they are",
                nconf, nclient, cfg->limits.streams);
        return;
    }
    for (int i = 0; i < cfg->nstreams; i++) {
        const vtd_stream_conf *sc = &cfg->streams[i];
        vtd_srec *old = vtd_streams_find(d, sc->name);
        if (old && old->conf.origin == VTD_ORIGIN_CLIENT) {
            vtd_warn("reload: stream %s: a client added a stream of that name; the configured "
                     "one is not started",
                     sc->name);
            continue;
        }
        if (old && strcmp(old->conf.fingerprint, sc->fingerprint) == 0 && !model_changed)
            continue;
        if (srec_create(d, sc, &created[ncreated], err, sizeof err) < 0) {
            vtd_err("reload: %s: the new configuration is ignored", err);
            while (ncreated > 0)
                srec_destroy(created[--ncreated]);
            return;
        }
        ncreated++;
    }
    vtd_srec *next;
    for (vtd_srec *r = d->streams; r; r = next) {
        next = r->next;
        if (r->conf.origin == VTD_ORIGIN_CLIENT)
            continue;
        const vtd_stream_conf *sc = vtd_config_find_stream(cfg, r->conf.name);
        if (!sc) {
            vtd_persist_remove_stream(d, r->conf.name);
            vtd_streams_remove(r, "removed from the configuration");
        } else if (strcmp(sc->fingerprint, r->conf.fingerprint) != 0)
            vtd_streams_remove(r, "configuration changed");
        else if (model_changed)
            vtd_streams_remove(r, "model changed");
    }
    for (int i = 0; i < ncreated; i++) {
        srec_register(d, created[i]);
        if (vtd_streams_start(created[i]) < 0) {
            vtd_err("reload: stream %s: cannot start its threads", created[i]->conf.name);
            vtd_streams_remove(created[i], "failed to start");
        }
    }
}
