/*
 * control.c - the commands of the wire protocol (proto/PROTOCOL.md), on the loop thread.
 *
 * Every command gets exactly one answer, a reply or an error naming the field at fault. Nothing
 * here blocks: stream creation does no I/O, stopping a stream happens on the thread pool, and
 * track/untrack only queue a command for the stream's tracker thread.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>

#include "daemon.h"
#include "log.h"
#include "vt_config.h"

#define AUTH_FAILURES_MAX 5 /* wrong tokens before the connection is closed */

/* Where an answer goes: the connection's queue, or the HTTP request's slot (the first answer
 * only: every command gets exactly one). Consumes the caller's reference on m. */
static void ctl_answer(vtd_ctl *x, vtd_msg *m, vt_proto_code code) {
    if (x->c) {
        vtd_conn_send(x->c, m, 0);
    } else if (!x->answer) {
        m->refs++;
        x->answer = m;
        x->code = code;
    }
    vtd_msg_unref(&x->d->hub, m);
}

/* Lack of memory to answer: a connection is closed, an HTTP request answers 500. */
static void ctl_oom(vtd_ctl *x) {
    if (x->c)
        vtd_conn_close(x->c, "out of memory");
    else
        x->code = VT_PROTO_CODE_INTERNAL;
}

static void ctl_error(vtd_ctl *x, const vt_proto_err *e) {
    vtd_msg *m = vtd_msg_new(&x->d->hub, 256);
    if (!m || vt_proto_write_error(&m->buf, e) < 0) {
        vtd_msg_unref(&x->d->hub, m);
        ctl_oom(x);
        return;
    }
    ctl_answer(x, m, e->code);
}

static void send_msg_built(vtd_ctl *x, vtd_msg *m, int rc) {
    if (rc < 0) {
        vtd_msg_unref(&x->d->hub, m);
        vt_proto_err e = {.code = VT_PROTO_CODE_INTERNAL};
        snprintf(e.message, sizeof e.message, "the server failed to write its answer");
        ctl_error(x, &e);
        return;
    }
    ctl_answer(x, m, VT_PROTO_CODE_OK);
}

static void reply(vtd_ctl *x, const vt_proto_reply *r) {
    vtd_msg *m = vtd_msg_new(&x->d->hub, 256);
    if (!m) {
        ctl_oom(x);
        return;
    }
    send_msg_built(x, m, vt_proto_write_reply(&m->buf, r));
}

/* The command could not be answered for lack of memory; the connection stays usable. */
static void reply_oom(vtd_ctl *x, const vt_proto_cmd *cmd) {
    vt_proto_err e = {.code = VT_PROTO_CODE_INTERNAL, .op = cmd->op, .id = cmd->id};
    snprintf(e.message, sizeof e.message, "out of memory");
    ctl_error(x, &e);
}

static void reply_simple(vtd_ctl *x, const vt_proto_cmd *cmd) {
    vt_proto_reply r = {.op = cmd->op, .id = &cmd->id};
    reply(x, &r);
}

void vtd_control_hello(vtd_conn *c) {
    vtd *d = c->d;
    VTD_ASSERT_LOOP(d);
    vt_proto_hello h = {.server = "vtrackd " VT_VERSION,
                        .auth = d->cfg->token != NULL,
                        .max_line = d->cfg->limits.line_bytes};
    vtd_msg *m = vtd_msg_new(&d->hub, 128);
    if (!m) {
        vtd_conn_close(c, "out of memory");
        return;
    }
    vtd_ctl x = {.d = d, .c = c};
    send_msg_built(&x, m, vt_proto_write_hello(&m->buf, &h));
}

int vtd_token_equal(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    unsigned char diff = (unsigned char)(na != nb);
    for (size_t i = 0; i < na; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (nb ? nb : 1)]);
    return diff == 0;
}

static void op_hello(vtd_ctl *x, const vt_proto_cmd *cmd, vt_proto_err *e) {
    vtd *d = x->d;
    vtd_conn *c = x->c;
    if (cmd->hello.protocol && cmd->hello.protocol != VT_PROTO_VERSION) {
        vt_proto_err_set(e, VT_PROTO_CODE_BAD_VERSION, "protocol",
                         "protocol %d is not spoken here: this server speaks %d",
                         cmd->hello.protocol, VT_PROTO_VERSION);
        ctl_error(x, e);
        vtd_conn_close_after_flush(c, d->cfg->limits.shutdown_timeout_ms + 1000);
        return;
    }
    if (d->cfg->token) {
        if (!cmd->hello.token || !vtd_token_equal(cmd->hello.token, d->cfg->token)) {
            vt_proto_err_set(e, VT_PROTO_CODE_UNAUTHORIZED, "token",
                             cmd->hello.token ? "wrong token" : "this server needs a token");
            ctl_error(x, e);
            if (++c->bad_auth >= AUTH_FAILURES_MAX) {
                vtd_warn("client %llu (%s): %d wrong tokens, closing", (unsigned long long)c->id,
                         c->peer, c->bad_auth);
                vtd_conn_close_after_flush(c, 1000);
            }
            return;
        }
    }
    c->authed = x->authed = 1;
    reply_simple(x, cmd);
}

/* Check that every named stream exists; -1 after sending not_found. */
static int check_names(vtd_ctl *x, const vt_proto_cmd *cmd, vt_proto_err *e) {
    for (int i = 0; i < cmd->subscribe.nstreams; i++) {
        if (!vtd_streams_find(x->d, cmd->subscribe.streams[i])) {
            char field[32];
            snprintf(field, sizeof field, "streams[%d]", i);
            vt_proto_err_set(e, VT_PROTO_CODE_NOT_FOUND, field, "no stream named %s",
                             cmd->subscribe.streams[i]);
            ctl_error(x, e);
            return -1;
        }
    }
    return 0;
}

static int name_index(const vtd_conn *c, const char *name) {
    for (int i = 0; i < c->nnames; i++)
        if (strcmp(c->names[i], name) == 0)
            return i;
    return -1;
}

static int name_add(vtd_conn *c, const char *name) {
    if (name_index(c, name) >= 0)
        return 0;
    if (c->nnames >= VTD_SUB_NAMES_MAX)
        return -ENOSPC;
    if (!c->names && !(c->names = malloc(sizeof *c->names * VTD_SUB_NAMES_MAX)))
        return -ENOMEM;
    snprintf(c->names[c->nnames++], sizeof c->names[0], "%s", name);
    return 0;
}

static void name_del(vtd_conn *c, const char *name) {
    int i = name_index(c, name);
    if (i >= 0)
        memcpy(c->names[i], c->names[--c->nnames], sizeof c->names[0]);
}

static void op_subscribe(vtd_ctl *x, const vt_proto_cmd *cmd, vt_proto_err *e) {
    vtd_conn *c = x->c;
    if (check_names(x, cmd, e) < 0)
        return;
    int n = cmd->subscribe.nstreams;
    if (n == 0) {
        c->sub_all = 1;
        c->nnames = 0;
    } else if (c->subscribed && c->sub_all) {
        for (int i = 0; i < n; i++) /* names are exceptions: subscribing lifts them */
            name_del(c, cmd->subscribe.streams[i]);
    } else {
        if (!c->subscribed)
            c->nnames = 0;
        int saved = c->nnames;
        for (int i = 0; i < n; i++) {
            int rc = name_add(c, cmd->subscribe.streams[i]);
            if (rc < 0) {
                c->nnames = saved;
                vt_proto_err_set(e, rc == -ENOSPC ? VT_PROTO_CODE_LIMIT : VT_PROTO_CODE_INTERNAL,
                                 "streams", "a connection follows at most %d named streams",
                                 VTD_SUB_NAMES_MAX);
                ctl_error(x, e);
                return;
            }
        }
    }
    c->subscribed = 1;
    c->masks = cmd->subscribe.masks;
    vtd_status_dirty(x->d); /* STATUS= counts subscribers */
    reply_simple(x, cmd);
}

static void op_unsubscribe(vtd_ctl *x, const vt_proto_cmd *cmd, vt_proto_err *e) {
    vtd_conn *c = x->c;
    if (check_names(x, cmd, e) < 0)
        return;
    int n = cmd->subscribe.nstreams;
    if (n == 0) {
        c->subscribed = c->sub_all = 0;
        c->nnames = 0;
    } else if (c->subscribed && c->sub_all) {
        for (int i = 0; i < n; i++) {
            if (name_add(c, cmd->subscribe.streams[i]) < 0) {
                vt_proto_err_set(e, VT_PROTO_CODE_LIMIT, "streams",
                                 "a connection excludes at most %d named streams",
                                 VTD_SUB_NAMES_MAX);
                ctl_error(x, e);
                return;
            }
        }
    } else if (c->subscribed) {
        for (int i = 0; i < n; i++)
            name_del(c, cmd->subscribe.streams[i]);
        if (c->nnames == 0)
            c->subscribed = 0;
    }
    vtd_status_dirty(x->d);
    reply_simple(x, cmd);
    if (!c->subscribed && c->eof)
        vtd_conn_close_after_flush(c, x->d->cfg->limits.shutdown_timeout_ms + 1000);
}

static void op_list(vtd_ctl *x, const vt_proto_cmd *cmd) {
    vtd *d = x->d;
    int n = d->nstreams;
    vt_stream_snapshot *snaps = n ? malloc(sizeof *snaps * (size_t)n) : NULL;
    vt_proto_stream_info *info = n ? calloc((size_t)n, sizeof *info) : NULL;
    if (n && (!snaps || !info)) {
        free(snaps);
        free(info);
        reply_oom(x, cmd);
        return;
    }
    int i = 0;
    for (vtd_srec *r = d->streams; r && i < n; r = r->next, i++) {
        vt_stream_get_snapshot(r->s, &snaps[i]);
        info[i] = (vt_proto_stream_info){
            .name = r->conf.name,
            .url = r->conf.url,
            .state = snaps[i].state,
            .pacing = r->conf.pacing,
            .tracker = r->conf.tracker,
            .profile = r->conf.profile,
            .width = snaps[i].width,
            .height = snaps[i].height,
            .frame = snaps[i].frame,
            .objects = snaps[i].objects,
            .nobjects = snaps[i].nobjects,
        };
    }
    vt_proto_reply r = {.op = cmd->op, .id = &cmd->id, .streams = info, .nstreams = i};
    reply(x, &r);
    free(snaps);
    free(info);
}

static void op_stats(vtd_ctl *x, const vt_proto_cmd *cmd) {
    vtd *d = x->d;
    int n = d->nstreams;
    vt_proto_stream_stats *ss = n ? calloc((size_t)n, sizeof *ss) : NULL;
    vt_proto_adapt_stats *as = n ? calloc((size_t)n, sizeof *as) : NULL;
    vt_stream_snapshot *snap = malloc(sizeof *snap);
    if ((n && (!ss || !as)) || !snap) {
        free(ss);
        free(as);
        free(snap);
        reply_oom(x, cmd);
        return;
    }
    int i = 0;
    for (vtd_srec *r = d->streams; r && i < n; r = r->next, i++) {
        vt_stream_get_snapshot(r->s, snap);
        ss[i] = (vt_proto_stream_stats){.name = r->conf.name,
                                        .frames = snap->frames_tracked,
                                        .skipped = snap->skipped,
                                        .reconnects = snap->reconnects,
                                        .fps = snap->fps,
                                        .latency_ms = snap->latency_ms};
        if (r->ad) {
            vtd_adapt_get_stats(r, &as[i]);
            ss[i].adapt = &as[i];
        }
    }
    /* Subscribers: bounded by the client limit. */
    int nsub = 0;
    for (vtd_conn *o = d->conns; o; o = o->next)
        nsub += o->subscribed != 0;
    vt_proto_subscriber_stats *subs = nsub ? calloc((size_t)nsub, sizeof *subs) : NULL;
    int j = 0;
    for (vtd_conn *o = d->conns; subs && o && j < nsub; o = o->next) {
        if (!o->subscribed)
            continue;
        subs[j++] = (vt_proto_subscriber_stats){.peer = o->peer,
                                                .masks = o->masks,
                                                .queued_bytes = o->qbytes + o->inflight_bytes,
                                                .dropped = o->dropped_total};
    }
    vt_proto_state_stats pst;
    vt_proto_stats st = {.state = vtd_persist_stats(d, &pst),
                         .uptime_s = (vt_mono_us() / 1000 - d->start_ms) / 1000.0,
                         .clients = d->nconns,
                         .dropped = x->c ? x->c->dropped_total : 0,
                         .queued_bytes = x->c ? x->c->qbytes + x->c->inflight_bytes : 0,
                         .streams = ss,
                         .nstreams = i,
                         .subscribers = subs,
                         .nsubscribers = j};
    vt_proto_mqtt_stats mq;
    if (d->mqtt) {
        vtd_mqtt_get_stats(d->mqtt, &mq);
        st.mqtt = &mq;
    }
    vt_proto_reply r = {.op = cmd->op, .id = &cmd->id, .stats = &st};
    reply(x, &r);
    free(subs);
    free(ss);
    free(as);
    free(snap);
}

static void op_reset_model(vtd_ctl *x, const vt_proto_cmd *cmd, vt_proto_err *e) {
    const char *name = cmd->reset_model.stream;
    vtd_srec *r = vtd_streams_find(x->d, name);
    if (!r) {
        vt_proto_err_set(e, VT_PROTO_CODE_NOT_FOUND, "stream", "no stream named %s", name);
        ctl_error(x, e);
        return;
    }
    vtd_notice("stream %s: reset_model asked by %s", name, x->who);
    /* The reply goes first, the `model` event follows it. A stream without adaptation always
     * runs the shipped model: nothing to do. */
    vt_proto_reply rep = {.op = cmd->op, .id = &cmd->id, .stream = name};
    reply(x, &rep);
    vtd_adapt_reset(r);
}

static void op_add_stream(vtd_ctl *x, const vt_proto_cmd *cmd, const char *line, size_t len,
                          vt_proto_err *e) {
    vtd *d = x->d;
    const char *name = cmd->add_stream.stream;
    if (!d->cfg->allow_add_streams) {
        vt_proto_err_set(e, VT_PROTO_CODE_FORBIDDEN, NULL,
                         "this server does not let clients add streams "
                         "(clients.allow_add_streams)");
    } else if (vtd_streams_find(d, name)) {
        vt_proto_err_set(e, VT_PROTO_CODE_CONFLICT, "stream", "a stream named %s exists", name);
    } else if (d->nstreams >= d->cfg->limits.streams) {
        vt_proto_err_set(e, VT_PROTO_CODE_LIMIT, NULL, "at most %d streams (limits.streams)",
                         d->cfg->limits.streams);
    } else {
        vtd_stream_conf sc;
        char field[VT_PROTO_FIELD_MAX] = "", err[VT_PROTO_MESSAGE_MAX];
        vtd_srec *r = NULL;
        int rc = vtd_stream_conf_from_cmd(d->cfg, cmd, &sc, field, sizeof field, err, sizeof err);
        if (rc == 0) {
            rc = vtd_streams_add(d, &sc, &r, err, sizeof err);
            vtd_stream_conf_clear(&sc);
            if (rc < 0)
                snprintf(field, sizeof field, "%s", rc == AVERROR(EPERM) ? "url" : "options");
        }
        if (rc == 0 && (rc = vtd_streams_start(r)) < 0) {
            snprintf(err, sizeof err, "cannot start the stream's threads");
            vtd_streams_remove(r, "failed to start");
        }
        if (rc < 0) {
            vt_proto_err_set(e,
                             rc == AVERROR(EPERM)    ? VT_PROTO_CODE_FORBIDDEN
                             : rc == AVERROR(EINVAL) ? VT_PROTO_CODE_BAD_REQUEST
                                                     : VT_PROTO_CODE_INTERNAL,
                             field[0] ? field : NULL, "%s", err);
        } else {
            vtd_notice("stream %s: added by %s", name, x->who);
            vtd_persist_add_stream(d, line, len);
            vt_proto_reply rep = {.op = cmd->op, .id = &cmd->id, .stream = name};
            reply(x, &rep);
            return;
        }
    }
    ctl_error(x, e);
}

static void op_remove_stream(vtd_ctl *x, const vt_proto_cmd *cmd, vt_proto_err *e) {
    vtd *d = x->d;
    const char *name = cmd->remove_stream.stream;
    vtd_srec *r = vtd_streams_find(d, name);
    if (!d->cfg->allow_add_streams) {
        vt_proto_err_set(e, VT_PROTO_CODE_FORBIDDEN, NULL,
                         "this server does not let clients remove streams "
                         "(clients.allow_add_streams)");
    } else if (!r) {
        vt_proto_err_set(e, VT_PROTO_CODE_NOT_FOUND, "stream", "no stream named %s", name);
    } else {
        vtd_notice("stream %s: removed by %s", name, x->who);
        vtd_persist_remove_stream(d, name);
        /* The reply goes first: the `removed` and `ended` events follow it. */
        vt_proto_reply rep = {.op = cmd->op, .id = &cmd->id, .stream = name};
        reply(x, &rep);
        vtd_streams_remove(r, "removed");
        return;
    }
    ctl_error(x, e);
}

int vtd_shape_from_track(const vt_proto_cmd *cmd, vt_shape *shape, uint8_t **mask, float **pts,
                         vt_proto_err *e) {
    memset(shape, 0, sizeof *shape);
    switch (cmd->track.shape) {
    case VT_PROTO_SHAPE_MASK: {
        int mh = cmd->track.mask.h, mw = cmd->track.mask.w;
        if (!(*mask = malloc((size_t)mh * (size_t)mw))) {
            vt_proto_err_set(e, VT_PROTO_CODE_INTERNAL, NULL, "out of memory");
            return -ENOMEM;
        }
        if (vt_rle_decode(cmd->track.mask.counts, cmd->track.mask.ncounts, mh, mw, *mask,
                          (size_t)mw) < 0) {
            vt_proto_err_set(e, VT_PROTO_CODE_BAD_MASK, "mask.counts",
                             "mask.counts do not describe a %dx%d mask", mw, mh);
            return -EINVAL;
        }
        *shape = (vt_shape){.kind = VT_SHAPE_MASK, .w = mw, .h = mh, .data = *mask};
        return 0;
    }
    case VT_PROTO_SHAPE_BOX:
        shape->kind = VT_SHAPE_BOX;
        for (int k = 0; k < 4; k++)
            shape->box[k] = (float)cmd->track.box[k];
        return 0;
    case VT_PROTO_SHAPE_POLYGON: {
        int np = cmd->track.polygon.npoints;
        if (!(*pts = malloc(sizeof(float) * 2 * (size_t)np))) {
            vt_proto_err_set(e, VT_PROTO_CODE_INTERNAL, NULL, "out of memory");
            return -ENOMEM;
        }
        for (int i = 0; i < np; i++) {
            (*pts)[2 * i] = (float)cmd->track.polygon.points[i][0];
            (*pts)[2 * i + 1] = (float)cmd->track.polygon.points[i][1];
        }
        *shape = (vt_shape){.kind = VT_SHAPE_POLYGON, .points = *pts, .npoints = np};
        return 0;
    }
    }
    vt_proto_err_set(e, VT_PROTO_CODE_BAD_REQUEST, NULL, "no shape");
    return -EINVAL;
}

/* op_track once the stream is found and its snapshot taken: check the shape against the
 * stream's frames and register the object. The decoded shape's buffers go to *mask and *pts
 * (the caller frees them); e is set unless the reply was sent. */
static void track_object(vtd_ctl *x, const vt_proto_cmd *cmd, vtd_srec *r,
                         const vt_stream_snapshot *snap, const char *line, size_t len,
                         uint8_t **mask, float **pts, vt_proto_err *e) {
    int w = snap->width, h = snap->height, known = w > 0 && h > 0;
    int64_t frame = cmd->track.frame;
    if (frame >= 0 && snap->frame >= 0 && frame <= snap->frame) {
        /* The server keeps no past frames: a shape drawn on one cannot be placed any more. */
        vt_proto_err_set(e, VT_PROTO_CODE_NOT_FOUND, "frame",
                         "frame %lld is no longer held (the stream is at frame %lld): give a "
                         "later frame, or none for the next one",
                         (long long)frame, (long long)snap->frame);
        return;
    }
    if (cmd->track.shape == VT_PROTO_SHAPE_MASK) {
        int mh = cmd->track.mask.h, mw = cmd->track.mask.w;
        if (known && (mh != h || mw != w)) {
            vt_proto_err_set(e, VT_PROTO_CODE_BAD_MASK, "mask.size",
                             "mask.size is [%d,%d] but the stream's frames are [%d,%d] "
                             "(height, width)",
                             mh, mw, h, w);
            return;
        }
        if (!known) {
            /* Nothing to check it against, and held unpacked until the stream is up. */
            vt_proto_err_set(e, VT_PROTO_CODE_BAD_MASK, "mask",
                             "the stream has no frame yet, so its size is not known: send the "
                             "mask once it is up (its `stream` event gives the size), or give a "
                             "box or a polygon");
            return;
        }
    }
    vt_shape shape;
    if (vtd_shape_from_track(cmd, &shape, mask, pts, e) < 0)
        return;
    if (known && shape.kind != VT_SHAPE_MASK && vt_shape_pixels(&shape, w, h) == 0) {
        if (shape.kind == VT_SHAPE_BOX) {
            const double *b = cmd->track.box;
            vt_proto_err_set(e, VT_PROTO_CODE_BAD_MASK, "box",
                             "box [%g,%g,%g,%g] covers no pixel (centre) of the %dx%d frame", b[0],
                             b[1], b[2], b[3], w, h);
        } else {
            vt_proto_err_set(e, VT_PROTO_CODE_BAD_MASK, "polygon",
                             "the polygon covers no pixel (centre) of the %dx%d frame", w, h);
        }
        return;
    }
    char err[VT_PROTO_MESSAGE_MAX];
    uint32_t id = 0;
    int rc = vt_stream_track(r->s, cmd->track.object, cmd->track.label, &shape, frame, &id, err,
                             sizeof err);
    if (rc == AVERROR(EEXIST)) {
        vt_proto_err_set(e, VT_PROTO_CODE_CONFLICT, "object", "object %u exists already",
                         cmd->track.object);
    } else if (rc == AVERROR(ENOSPC)) {
        vt_proto_err_set(e, VT_PROTO_CODE_LIMIT, NULL, "%s", err);
    } else if (rc == AVERROR_EOF) {
        vt_proto_err_set(e, VT_PROTO_CODE_NOT_FOUND, "stream", "%s", err);
    } else if (rc < 0) {
        vt_proto_err_set(e, rc == AVERROR(EINVAL) ? VT_PROTO_CODE_BAD_MASK : VT_PROTO_CODE_INTERNAL,
                         NULL, "%s", err);
    } else {
        vtd_info("stream %s: object %u%s%s registered by %s", r->conf.name, id,
                 cmd->track.label ? " " : "", cmd->track.label ? cmd->track.label : "", x->who);
        vtd_persist_track(x->d, id, line, len);
        vt_proto_reply rep = {
            .op = cmd->op, .id = &cmd->id, .stream = r->conf.name, .object = id, .frame = frame};
        reply(x, &rep);
        e->code = VT_PROTO_CODE_OK;
    }
}

static void op_track(vtd_ctl *x, const vt_proto_cmd *cmd, const char *line, size_t len,
                     vt_proto_err *e) {
    vtd_srec *r = vtd_streams_find(x->d, cmd->track.stream);
    if (!r) {
        vt_proto_err_set(e, VT_PROTO_CODE_NOT_FOUND, "stream", "no stream named %s",
                         cmd->track.stream);
        ctl_error(x, e);
        return;
    }
    vt_stream_snapshot *snap = malloc(sizeof *snap);
    uint8_t *mask = NULL;
    float *pts = NULL;
    if (!snap) {
        vt_proto_err_set(e, VT_PROTO_CODE_INTERNAL, NULL, "out of memory");
    } else {
        vt_stream_get_snapshot(r->s, snap);
        track_object(x, cmd, r, snap, line, len, &mask, &pts, e);
    }
    if (e->code != VT_PROTO_CODE_OK)
        ctl_error(x, e);
    free(snap);
    free(mask);
    free(pts);
}

static void op_untrack(vtd_ctl *x, const vt_proto_cmd *cmd, vt_proto_err *e) {
    vtd_srec *r = vtd_streams_find(x->d, cmd->untrack.stream);
    int rc = r ? vt_stream_untrack(r->s, cmd->untrack.object) : 0;
    if (!r) {
        vt_proto_err_set(e, VT_PROTO_CODE_NOT_FOUND, "stream", "no stream named %s",
                         cmd->untrack.stream);
    } else if (rc == AVERROR(ENOENT)) {
        vt_proto_err_set(e, VT_PROTO_CODE_NOT_FOUND, "object", "stream %s has no object %u",
                         cmd->untrack.stream, cmd->untrack.object);
    } else if (rc < 0) {
        vt_proto_err_set(e, VT_PROTO_CODE_LIMIT, NULL,
                         "too many commands waiting for stream %s: try again", cmd->untrack.stream);
    } else {
        vtd_persist_untrack(x->d, r->conf.name, cmd->untrack.object);
        vt_proto_reply rep = {
            .op = cmd->op, .id = &cmd->id, .stream = r->conf.name, .object = cmd->untrack.object};
        reply(x, &rep);
        return;
    }
    ctl_error(x, e);
}

static void op_forget(vtd_ctl *x, const vt_proto_cmd *cmd, vt_proto_err *e) {
    if (!x->d->persist.dir) {
        vt_proto_err_set(e, VT_PROTO_CODE_NOT_FOUND, NULL,
                         "this server saves no state (it has no state directory)");
        ctl_error(x, e);
        return;
    }
    vtd_notice("state: forget asked by %s", x->who);
    vtd_persist_forget(x->d);
    reply_simple(x, cmd);
}

void vtd_control_run(vtd_ctl *x, const char *line, size_t len) {
    VTD_ASSERT_LOOP(x->d);
    vt_proto_cmd *cmd = NULL;
    vt_proto_err e;
    memset(&e, 0, sizeof e);
    if (vt_proto_cmd_parse(line, len, &cmd, &e) < 0) {
        ctl_error(x, &e);
        return;
    }
    memset(&e, 0, sizeof e);
    e.op = cmd->op;
    e.id = cmd->id;
    if (!x->authed && cmd->op != VT_PROTO_OP_HELLO) {
        vt_proto_err_set(&e, VT_PROTO_CODE_UNAUTHORIZED, NULL,
                         "send hello with the server's token first");
        ctl_error(x, &e);
        vt_proto_cmd_free(&cmd);
        return;
    }
    switch (cmd->op) {
    case VT_PROTO_OP_HELLO:
    case VT_PROTO_OP_SUBSCRIBE:
    case VT_PROTO_OP_UNSUBSCRIBE:
        if (!x->c) {
            vt_proto_err_set(&e, VT_PROTO_CODE_BAD_REQUEST, "op", "%s needs a TCP connection",
                             vt_proto_op_name(cmd->op));
            ctl_error(x, &e);
        } else if (cmd->op == VT_PROTO_OP_HELLO) {
            op_hello(x, cmd, &e);
        } else if (cmd->op == VT_PROTO_OP_SUBSCRIBE) {
            op_subscribe(x, cmd, &e);
        } else {
            op_unsubscribe(x, cmd, &e);
        }
        break;
    case VT_PROTO_OP_LIST:
        op_list(x, cmd);
        break;
    case VT_PROTO_OP_STATS:
        op_stats(x, cmd);
        break;
    case VT_PROTO_OP_ADD_STREAM:
        op_add_stream(x, cmd, line, len, &e);
        break;
    case VT_PROTO_OP_REMOVE_STREAM:
        op_remove_stream(x, cmd, &e);
        break;
    case VT_PROTO_OP_TRACK:
        op_track(x, cmd, line, len, &e);
        break;
    case VT_PROTO_OP_UNTRACK:
        op_untrack(x, cmd, &e);
        break;
    case VT_PROTO_OP_FORGET:
        op_forget(x, cmd, &e);
        break;
    case VT_PROTO_OP_RESET_MODEL:
        op_reset_model(x, cmd, &e);
        break;
    default: {
        vt_proto_err_set(&e, VT_PROTO_CODE_BAD_REQUEST, "op", "unknown op");
        ctl_error(x, &e);
        break;
    }
    }
    vt_proto_cmd_free(&cmd);
}

void vtd_control_line(vtd_conn *c, const char *line, size_t len) {
    char who[96];
    snprintf(who, sizeof who, "client %llu (%s)", (unsigned long long)c->id, c->peer);
    vtd_ctl x = {.d = c->d, .c = c, .who = who, .authed = c->authed};
    vtd_control_run(&x, line, len);
}
