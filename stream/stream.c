/*
 * stream.c - one tracked source (see vt_stream.h).
 *
 * Threaded mode hands frames from the ingest thread to the tracker thread through a mailbox of
 * three frame buffers: one being written by ingest, one published (the newest frame), one being
 * tracked. A live stream replaces an unconsumed published frame (counting it as skipped), unless
 * an object was given on that very frame; a lossless one makes ingest wait until the tracker has
 * taken it. Buffers are sized on the first frame (and again only if the source size changes),
 * so the steady state allocates nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <limits.h>

#include <libavutil/error.h>

#include "vt_base.h"
#include "vt_config.h"
#include "vt_stream.h"

/* The tracker keeps every label the protocol allows. */
_Static_assert(VT_PROTO_LABEL_MAX <= VT_LABEL_MAX, "VT_LABEL_MAX");
/* Every frame a source delivers fits the masks' RLE. */
_Static_assert(VT_SOURCE_MAX_SIDE <= VT_RLE_MAX_DIM, "VT_SOURCE_MAX_SIDE");

#define NBUF     3
#define CMD_MAX  (2 * VT_PROTO_OBJECTS_MAX)
#define LAT_RING 128

typedef struct frame_buf {
    vt_frame f;   /* metadata; f.rgb points into rgb (no processing-size copy: the tracker
                     resizes) */
    uint8_t *rgb; /* packed RGB24, 3*w per row */
    size_t rgb_cap;
} frame_buf;

typedef struct command {
    int untrack;
    int never_added; /* untrack of an object whose track command was still queued */
    uint32_t id;
    char label[VT_PROTO_LABEL_MAX + 1];
    int has_label;
    vt_shape shape; /* own copy (vt_shape_copy) */
    int64_t frame;
    int restored; /* its `added` event says `restored` (vt_stream_restore) */
} command;

struct vt_stream {
    vt_stream_config cfg;
    char *name, *url;
    vt_source *src;
    vt_tracker *trk;

    pthread_mutex_t lock; /* commands, ids, snapshot, mailbox */
    pthread_cond_t cond;  /* mailbox changes */
    command cmds[CMD_MAX];
    int ncmds;
    uint32_t ids[VT_PROTO_OBJECTS_MAX]; /* live or pending object ids */
    int nids;
    /* tracker thread: objects placed again (restored, or after a size change) whose `added`
     * event is not out yet, and why */
    struct {
        uint32_t id;
        const char *why; /* a constant or s->resize_why */
    } again[VT_PROTO_OBJECTS_MAX];
    int nagain;
    char resize_why[96];
    int trk_w, trk_h;             /* the frame size the tracker's state is in (0: none yet) */
    const vt_model *next_model;   /* under lock: vt_stream_set_model's, not taken yet (NULL) */
    const vt_model *model_in_use; /* under lock: the tracker's (cfg.model, read elsewhere) */
    int nlast;                    /* objects in pobj: the last tracked frame's */

    /* mailbox (threaded mode) */
    frame_buf bufs[NBUF];
    int published; /* index of the newest unconsumed frame, -1 none */
    int busy;      /* index held by the tracker, -1 none */
    int ended;     /* ingest finished; published may still hold a frame */
    int finished;  /* the end was reached and the queue dropped: commands are answered at once */
    int started, stopping;
    char end_reason[256];
    pthread_t th_ingest, th_track;

    /* tracking thread only */
    vt_proto_buf tail, tail_masks, evbuf;
    char *rle[VT_PROTO_OBJECTS_MAX];
    size_t rle_cap[VT_PROTO_OBJECTS_MAX];
    vt_proto_object pobj[VT_PROTO_OBJECTS_MAX];
    vt_stream_event frame_ev;

    /* snapshot (under lock) */
    vt_proto_stream_state state;
    int width, height;
    int64_t last_frame;
    int nobj_snap;
    vt_proto_object_info obj_snap[VT_PROTO_OBJECTS_MAX];
    char label_snap[VT_PROTO_OBJECTS_MAX][VT_PROTO_LABEL_MAX + 1];
    uint64_t frames_in, frames_tracked, skipped;
    double fps, lat_avg;
    int64_t last_track_us;
    double lat_ring[LAT_RING];
    int lat_n, lat_i;
    _Atomic int64_t heartbeat[2];
};

vt_proto_stream_state vt_stream_state_from_source(vt_source_state st) {
    switch (st) {
    case VT_SOURCE_STATE_UP:
        return VT_PROTO_STREAM_UP;
    case VT_SOURCE_STATE_STALLED:
        return VT_PROTO_STREAM_STALLED;
    case VT_SOURCE_STATE_BACKOFF:
        return VT_PROTO_STREAM_RECONNECTING;
    case VT_SOURCE_STATE_ENDED:
        return VT_PROTO_STREAM_ENDED;
    default:
        return VT_PROTO_STREAM_CONNECTING;
    }
}

vt_overlay_object vt_stream_overlay_object(const vt_object_result *o, int index) {
    vt_overlay_object v = {.index = (uint8_t)index,
                           .id = (int)o->id,
                           .label = o->label,
                           .box = {o->bbox[0], o->bbox[1], o->bbox[2], o->bbox[3]}};
    switch (o->state) { /* no default: -Wswitch names a state model/ adds */
    case VT_OBJECT_TRACKING:
        v.state = VT_OVERLAY_TRACKING;
        return v;
    case VT_OBJECT_OCCLUDED:
        v.state = VT_OVERLAY_OCCLUDED;
        return v;
    case VT_OBJECT_RECOVERED:
        v.state = VT_OVERLAY_RECOVERED;
        return v;
    case VT_OBJECT_LOST:
        v.state = VT_OVERLAY_LOST;
        return v;
    }
    v.state = VT_OVERLAY_OCCLUDED; /* unknown: present, not confidently seen (as proto_state) */
    return v;
}

/* ------------------------------------------------------------------------------------------
 * Events
 * ---------------------------------------------------------------------------------------- */

static void emit(vt_stream *s, const vt_stream_event *ev) {
    if (s->cfg.on_event)
        s->cfg.on_event(s->cfg.opaque, ev);
}

static void emit_state(vt_stream *s, vt_proto_stream_state ps, const char *reason);
static void drop_pending(vt_stream *s);

/* Called by the codec on the reading thread. */
static void on_source_state(void *opaque, vt_source_state st, const char *reason) {
    vt_stream *s = opaque;
    if (st == VT_SOURCE_STATE_IDLE)
        return;
    vt_proto_stream_state ps = vt_stream_state_from_source(st);
    if (ps == VT_PROTO_STREAM_ENDED && s->started) {
        /* Threaded: frames may still wait in the mailbox; the tracker thread reports the end
         * after the last of them. */
        pthread_mutex_lock(&s->lock);
        vt_fmt(s->end_reason, sizeof s->end_reason, "%s", reason ? reason : "");
        pthread_mutex_unlock(&s->lock);
        return;
    }
    if (ps == VT_PROTO_STREAM_ENDED)
        drop_pending(s); /* stepped: this is the stepping thread, the one that tracks */
    emit_state(s, ps, reason);
}

static void emit_state(vt_stream *s, vt_proto_stream_state ps, const char *reason) {
    vt_source_info info;
    int w = 0, h = 0;
    if (ps == VT_PROTO_STREAM_UP && vt_source_get_info(s->src, &info) == 0)
        w = info.width, h = info.height;
    pthread_mutex_lock(&s->lock);
    s->state = ps;
    if (w)
        s->width = w, s->height = h;
    pthread_mutex_unlock(&s->lock);
    atomic_store(&s->heartbeat[0], vt_mono_us());

    /* State events are rare; a local buffer keeps this callback independent of the tracker
     * thread's buffers. */
    vt_proto_buf b = VT_PROTO_BUF_INIT;
    vt_proto_stream_event pe = {
        .stream = s->name, .state = ps, .reason = reason, .width = w, .height = h};
    if (vt_proto_write_stream_event(&b, &pe) == 0) {
        vt_stream_event ev = {.kind = VT_STREAM_EVENT_STATE,
                              .stream = s->name,
                              .tail = b.data,
                              .tail_len = b.len,
                              .state = ps,
                              .reason = reason};
        emit(s, &ev);
    }
    vt_proto_buf_free(&b);
}

/* An object event written into `buf` (the tracking thread's s->evbuf, or a caller's own). */
static void emit_object_in(vt_stream *s, vt_proto_buf *buf, uint32_t id, const char *label,
                           vt_proto_lifecycle what, int64_t frame, const char *reason) {
    buf->len = 0;
    vt_proto_object_event oe = {.stream = s->name,
                                .id = id,
                                .label = label && *label ? label : NULL,
                                .event = what,
                                .frame = frame,
                                .reason = reason};
    if (vt_proto_write_object_event(buf, &oe) < 0)
        return;
    vt_stream_event ev = {.kind = VT_STREAM_EVENT_OBJECT,
                          .stream = s->name,
                          .tail = buf->data,
                          .tail_len = buf->len,
                          .object = id,
                          .lifecycle = what,
                          .object_frame = frame,
                          .reason = reason};
    emit(s, &ev);
}

static void emit_object(vt_stream *s, uint32_t id, const char *label, vt_proto_lifecycle what,
                        int64_t frame, const char *reason) {
    emit_object_in(s, &s->evbuf, id, label, what, frame, reason);
}

/* ------------------------------------------------------------------------------------------
 * Lifetime
 * ---------------------------------------------------------------------------------------- */

int vt_stream_new(const vt_stream_config *cfg, vt_stream **out, char *err, size_t errlen) {
    *out = NULL;
    if (!cfg->name || !*cfg->name || strlen(cfg->name) > VT_PROTO_NAME_MAX || !cfg->url ||
        !cfg->model) {
        vt_fmt(err, errlen, "stream: a name (1..64 chars), a URL and a model are required");
        return AVERROR(EINVAL);
    }
    vt_stream *s = calloc(1, sizeof *s);
    if (!s)
        return AVERROR(ENOMEM);
    s->cfg = *cfg;
    s->name = strdup(cfg->name);
    s->url = strdup(cfg->url);
    s->published = s->busy = -1;
    s->last_frame = -1;
    s->model_in_use = cfg->model;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    vt_source_opts so = cfg->source;
    so.on_state = on_source_state;
    so.opaque = s;
    int rc;
    if (!s->name || !s->url) {
        rc = AVERROR(ENOMEM);
        goto fail;
    }
    if ((rc = vt_source_new(&s->src, cfg->url, &so, err, errlen)) < 0)
        goto fail;
    if ((rc = vt_tracker_new(cfg->model, &cfg->params, &s->trk, err, errlen)) < 0)
        goto fail;
    if (cfg->params.max_objects > VT_PROTO_OBJECTS_MAX) {
        vt_fmt(err, errlen, "stream: max_objects above the protocol's limit of 64");
        rc = AVERROR(EINVAL);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    vt_stream_free(&s);
    return rc;
}

static void cmd_clear(command *c) {
    vt_shape_clear(&c->shape);
}

void vt_stream_free(vt_stream **sp) {
    vt_stream *s = *sp;
    if (!s)
        return;
    vt_stream_stop(s);
    vt_source_free(&s->src);
    vt_tracker_free(&s->trk);
    for (int i = 0; i < s->ncmds; i++)
        cmd_clear(&s->cmds[i]);
    for (int i = 0; i < NBUF; i++)
        free(s->bufs[i].rgb);
    for (int i = 0; i < VT_PROTO_OBJECTS_MAX; i++)
        free(s->rle[i]);
    vt_proto_buf_free(&s->tail);
    vt_proto_buf_free(&s->tail_masks);
    vt_proto_buf_free(&s->evbuf);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s->name);
    free(s->url);
    free(s);
    *sp = NULL;
}

int vt_stream_get_source_info(vt_stream *s, vt_source_info *info) {
    return vt_source_get_info(s->src, info);
}

const char *vt_stream_name(const vt_stream *s) {
    return s->name;
}

const char *vt_stream_url(const vt_stream *s) {
    return s->url;
}

/* ------------------------------------------------------------------------------------------
 * Commands
 * ---------------------------------------------------------------------------------------- */

static int id_index(const vt_stream *s, uint32_t id) {
    for (int i = 0; i < s->nids; i++)
        if (s->ids[i] == id)
            return i;
    return -1;
}

static int queue_track(vt_stream *s, uint32_t id, const char *label, const vt_shape *shape,
                       int64_t frame, int restored, uint32_t *id_out, char *err, size_t errlen) {
    if (!shape) {
        vt_fmt(err, errlen, "no shape");
        return AVERROR(EINVAL);
    }
    if (label && strlen(label) > VT_PROTO_LABEL_MAX) {
        vt_fmt(err, errlen, "label longer than 64 bytes");
        return AVERROR(EINVAL);
    }
    command c = {.untrack = 0, .frame = frame < 0 ? -1 : frame, .restored = restored};
    if (label) {
        snprintf(c.label, sizeof c.label, "%s", label);
        c.has_label = 1;
    }
    int rc = vt_shape_copy(&c.shape, shape, err, errlen); /* -errno == AVERROR(errno) */
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->lock);
    if (id == 0) {
        /* the smallest free id (PROTOCOL.md); at most max_objects are taken */
        id = 1;
        while (id_index(s, id) >= 0)
            id++;
    }
    if (s->finished) {
        vt_fmt(err, errlen, "stream %s has ended: no frame will come to track the object on",
               s->name);
        rc = AVERROR_EOF;
    } else if (id_index(s, id) >= 0) {
        vt_fmt(err, errlen, "object %u exists already", id);
        rc = AVERROR(EEXIST);
    } else if (s->nids >= s->cfg.params.max_objects) {
        vt_fmt(err, errlen, "too many objects (at most %d)", s->cfg.params.max_objects);
        rc = AVERROR(ENOSPC);
    } else if (s->ncmds >= CMD_MAX) {
        vt_fmt(err, errlen, "too many commands waiting for stream %s: try again", s->name);
        rc = AVERROR(ENOSPC);
    } else {
        c.id = id;
        s->ids[s->nids++] = id;
        s->cmds[s->ncmds++] = c;
        if (id_out)
            *id_out = id;
    }
    pthread_mutex_unlock(&s->lock);
    if (rc < 0)
        cmd_clear(&c);
    return rc;
}

int vt_stream_track(vt_stream *s, uint32_t id, const char *label, const vt_shape *shape,
                    int64_t frame, uint32_t *id_out, char *err, size_t errlen) {
    return queue_track(s, id, label, shape, frame, 0, id_out, err, errlen);
}

int vt_stream_restore(vt_stream *s, uint32_t id, const char *label, const vt_shape *shape,
                      char *err, size_t errlen) {
    if (id == 0) {
        vt_fmt(err, errlen, "a restored object needs its id");
        return AVERROR(EINVAL);
    }
    return queue_track(s, id, label, shape, -1, 1, NULL, err, errlen);
}

/* Tracker thread: `id` is placed again for `why`; its next `added` event says so. */
static void mark_again(vt_stream *s, uint32_t id, const char *why) {
    if (s->nagain < VT_PROTO_OBJECTS_MAX) {
        s->again[s->nagain].id = id;
        s->again[s->nagain++].why = why;
    }
}

/* Tracker thread: why `id` was placed again (NULL: it is new); forgets it. */
static const char *take_again(vt_stream *s, uint32_t id) {
    for (int i = 0; i < s->nagain; i++)
        if (s->again[i].id == id) {
            const char *why = s->again[i].why;
            s->again[i] = s->again[--s->nagain];
            return why;
        }
    return NULL;
}

/* Forget object `id` (it was removed without an untrack command). */
static void drop_id(vt_stream *s, uint32_t id) {
    pthread_mutex_lock(&s->lock);
    int j = id_index(s, id);
    if (j >= 0)
        s->ids[j] = s->ids[--s->nids];
    pthread_mutex_unlock(&s->lock);
}

/* Drop object `id` from the list `list` shows (caller holds the lock); its label goes to
 * `label` (empty when it was not listed) unless that is NULL. */
static void snap_remove(vt_stream *s, uint32_t id, char *label) {
    if (label)
        label[0] = 0;
    for (int k = 0; k < s->nobj_snap; k++) {
        if (s->obj_snap[k].id != id)
            continue;
        if (label)
            memcpy(label, s->label_snap[k], VT_PROTO_LABEL_MAX + 1);
        s->obj_snap[k] = s->obj_snap[--s->nobj_snap];
        memcpy(s->label_snap[k], s->label_snap[s->nobj_snap], sizeof s->label_snap[k]);
        return;
    }
}

int vt_stream_untrack(vt_stream *s, uint32_t id) {
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    int i = id_index(s, id);
    if (i >= 0 && s->finished) {
        /* Nothing will run a command: the object goes now, and its event is sent from here. */
        char label[VT_PROTO_LABEL_MAX + 1];
        s->ids[i] = s->ids[--s->nids];
        snap_remove(s, id, label);
        pthread_mutex_unlock(&s->lock);
        vt_proto_buf buf = VT_PROTO_BUF_INIT;
        emit_object_in(s, &buf, id, label, VT_PROTO_LIFECYCLE_REMOVED, -1, "untrack");
        vt_proto_buf_free(&buf);
        return 0;
    }
    if (i < 0) {
        rc = AVERROR(ENOENT);
    } else if (s->ncmds >= CMD_MAX) {
        rc = AVERROR(ENOSPC);
    } else {
        s->ids[i] = s->ids[--s->nids];
        /* Still queued: drop the track command; the untrack then only reports the removal. */
        int queued = 0;
        command un = {.untrack = 1, .id = id, .frame = -1};
        for (int j = 0; j < s->ncmds; j++) {
            if (!s->cmds[j].untrack && s->cmds[j].id == id) {
                memcpy(un.label, s->cmds[j].label, sizeof un.label);
                un.has_label = s->cmds[j].has_label;
                cmd_clear(&s->cmds[j]);
                memmove(&s->cmds[j], &s->cmds[j + 1], sizeof(command) * (s->ncmds - j - 1));
                s->ncmds--;
                queued = 1;
                break;
            }
        }
        un.never_added = queued;
        s->cmds[s->ncmds++] = un;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Apply the commands due at frame `index` (tracking thread). */
static void apply_commands(vt_stream *s, const vt_frame *fr) {
    command due[CMD_MAX];
    int ndue = 0;
    pthread_mutex_lock(&s->lock);
    int keep = 0;
    for (int i = 0; i < s->ncmds; i++) {
        const command *c = &s->cmds[i];
        if (c->untrack || c->frame <= fr->index) {
            if (!c->untrack && s->nobj_snap < VT_PROTO_OBJECTS_MAX) {
                /* listed as pending until this frame's result replaces the snapshot, so that a
                 * removal in between still reports it */
                int k = s->nobj_snap++;
                snprintf(s->label_snap[k], sizeof s->label_snap[k], "%s",
                         c->has_label ? c->label : "");
                s->obj_snap[k] = (vt_proto_object_info){.id = c->id, .state = VT_PROTO_OBJ_PENDING};
            }
            due[ndue++] = *c;
        } else {
            s->cmds[keep++] = *c;
        }
    }
    s->ncmds = keep;
    pthread_mutex_unlock(&s->lock);

    for (int i = 0; i < ndue; i++) {
        command *c = &due[i];
        if (c->untrack) {
            /* A tracked object's removal is reported by the tracker's next result; one that
             * never reached a frame is reported here, without a frame. */
            if (c->never_added || vt_tracker_remove_object(s->trk, c->id) < 0)
                emit_object(s, c->id, c->has_label ? c->label : NULL, VT_PROTO_LIFECYCLE_REMOVED,
                            -1, "untrack");
            continue;
        }
        char err[160];
        const char *why = NULL;
        if ((c->shape.kind == VT_SHAPE_MASK || c->shape.kind == VT_SHAPE_LABELS) &&
            (c->shape.w != fr->width || c->shape.h != fr->height)) {
            snprintf(err, sizeof err, "mask is %dx%d but the frame is %dx%d", c->shape.w,
                     c->shape.h, fr->width, fr->height);
            why = err;
        } else if ((c->shape.kind == VT_SHAPE_BOX || c->shape.kind == VT_SHAPE_POLYGON) &&
                   vt_shape_pixels(&c->shape, fr->width, fr->height) == 0) {
            snprintf(err, sizeof err, "the %s covers no pixel of the %dx%d frame",
                     c->shape.kind == VT_SHAPE_BOX ? "box" : "polygon", fr->width, fr->height);
            why = err;
        } else if (vt_tracker_add_object(s->trk, c->id, c->has_label ? c->label : NULL, &c->shape,
                                         err, sizeof err) < 0) {
            why = err;
        }
        if (!why && c->restored)
            mark_again(s, c->id, "restored");
        if (why) {
            drop_id(s, c->id);
            emit_object(s, c->id, c->label, VT_PROTO_LIFECYCLE_REMOVED, fr->index, why);
        }
        cmd_clear(c);
    }
}

/*
 * The source ended: the commands still queued will never meet their frame (tracking thread,
 * before the `ended` event). An object given for a later frame is removed with a reason that
 * says so, as PROTOCOL.md promises for pending objects; an untrack not applied yet reports its
 * removal, which the tracker's next result would have.
 */
static void drop_pending(vt_stream *s) {
    command left[CMD_MAX];
    pthread_mutex_lock(&s->lock);
    s->finished = 1; /* from now on, vt_stream_track and _untrack answer at once */
    int n = s->ncmds;
    memcpy(left, s->cmds, sizeof(command) * n);
    s->ncmds = 0;
    for (int i = 0; i < n; i++) {
        int j = left[i].untrack ? -1 : id_index(s, left[i].id);
        if (j >= 0)
            s->ids[j] = s->ids[--s->nids];
        if (left[i].untrack)
            snap_remove(s, left[i].id, NULL); /* no longer listed */
    }
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n; i++) {
        command *c = &left[i];
        char why[96];
        if (c->untrack)
            snprintf(why, sizeof why, "untrack");
        else if (c->frame >= 0)
            snprintf(why, sizeof why, "the stream ended before frame %lld", (long long)c->frame);
        else
            snprintf(why, sizeof why, "the stream ended before the object's first frame");
        emit_object(s, c->id, c->has_label ? c->label : NULL, VT_PROTO_LIFECYCLE_REMOVED, -1, why);
        cmd_clear(c);
    }
}

/* ------------------------------------------------------------------------------------------
 * Tracking one frame
 * ---------------------------------------------------------------------------------------- */

static int ensure_rle(vt_stream *s, int i, size_t need) {
    if (need <= s->rle_cap[i])
        return 0;
    char *p = realloc(s->rle[i], need);
    if (!p)
        return AVERROR(ENOMEM);
    s->rle[i] = p;
    s->rle_cap[i] = need;
    return 0;
}

static int encode_mask(vt_stream *s, int i, const uint8_t *mask, int w, int h, size_t *len) {
    /* Start at 16 KiB and grow on demand up to the worst case. */
    size_t cap = s->rle_cap[i] ? s->rle_cap[i] : 16384;
    for (;;) {
        int rc = ensure_rle(s, i, cap);
        if (rc < 0)
            return rc;
        rc = vt_rle_encode_string(mask, h, w, (size_t)w, s->rle[i], s->rle_cap[i], len);
        if (rc != -ENOSPC)
            return rc;
        size_t max = vt_rle_string_max(h, w);
        cap = s->rle_cap[i] * 2 > max ? max : s->rle_cap[i] * 2;
    }
}

/* The tracker's state and event on the wire. Switches without a default: a value model/ adds
 * makes -Wswitch name these functions. */
static vt_proto_obj_state proto_state(vt_object_state st) {
    switch (st) {
    case VT_OBJECT_TRACKING:
        return VT_PROTO_OBJ_TRACKING;
    case VT_OBJECT_OCCLUDED:
        return VT_PROTO_OBJ_OCCLUDED;
    case VT_OBJECT_RECOVERED:
        return VT_PROTO_OBJ_RECOVERED;
    case VT_OBJECT_LOST:
        return VT_PROTO_OBJ_LOST;
    }
    /* a state not mapped yet: what PROTOCOL.md tells clients to assume of an unknown one,
     * present but not confidently seen */
    return VT_PROTO_OBJ_OCCLUDED;
}

/* 1 with the lifecycle event that announces `ev`, 0 for none (an unknown event is left to the
 * frame event's state). */
static int proto_event(vt_object_event ev, vt_proto_lifecycle *out) {
    switch (ev) {
    case VT_OBJECT_EVENT_NONE:
        return 0;
    case VT_OBJECT_EVENT_ADDED:
        *out = VT_PROTO_LIFECYCLE_ADDED;
        return 1;
    case VT_OBJECT_EVENT_OCCLUDED:
        *out = VT_PROTO_LIFECYCLE_OCCLUDED;
        return 1;
    case VT_OBJECT_EVENT_LOST:
        *out = VT_PROTO_LIFECYCLE_LOST;
        return 1;
    case VT_OBJECT_EVENT_RECOVERED:
        *out = VT_PROTO_LIFECYCLE_RECOVERED;
        return 1;
    }
    return 0;
}

/* The tracker's box of the object clipped to the w x h frame, [0,0,0,0] when none of it is
 * inside: a predicted box may run past the edge, the protocol's stays in the frame. */
static void clip_bbox(const int in[4], int w, int h, int out[4]) {
    int64_t x0 = in[0], y0 = in[1], x1 = (int64_t)in[0] + in[2], y1 = (int64_t)in[1] + in[3];
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > w ? w : x1;
    y1 = y1 > h ? h : y1;
    if (in[2] <= 0 || in[3] <= 0 || x1 <= x0 || y1 <= y0) {
        memset(out, 0, 4 * sizeof *out);
        return;
    }
    out[0] = (int)x0, out[1] = (int)y0, out[2] = (int)(x1 - x0), out[3] = (int)(y1 - y0);
}

/*
 * The source changed its frame size (a camera switched its resolution): the tracker's memory and
 * every object's state are in the old frame's pixels. A new tracker starts on this frame, and
 * each object is placed again from its last box scaled to the new size, keeping its id and
 * label (its `added` event gives the reason); one with no box left is removed with the reason.
 */
static int restart_tracker(vt_stream *s, const vt_frame *fr, const vt_model *model,
                           const char *why) {
    char err[160];
    vt_tracker *nt;
    int rc = vt_tracker_new(model, &s->cfg.params, &nt, err, sizeof err);
    if (rc < 0)
        return rc;
    s->cfg.model = model;
    struct {
        uint32_t id;
        char label[VT_PROTO_LABEL_MAX + 1];
        int box[4];
    } last[VT_PROTO_OBJECTS_MAX];
    int n = s->nlast;
    for (int i = 0; i < n; i++) { /* pobj's labels belong to the old tracker */
        last[i].id = s->pobj[i].id;
        snprintf(last[i].label, sizeof last[i].label, "%s",
                 s->pobj[i].label ? s->pobj[i].label : "");
        memcpy(last[i].box, s->pobj[i].bbox, sizeof last[i].box);
    }
    vt_tracker_free(&s->trk);
    s->trk = nt;
    s->nlast = 0;
    if (why)
        snprintf(s->resize_why, sizeof s->resize_why, "%s", why);
    else
        snprintf(s->resize_why, sizeof s->resize_why, "the frame size changed from %dx%d to %dx%d",
                 s->trk_w, s->trk_h, fr->width, fr->height);
    if (!s->trk_w) /* nothing tracked yet: no object is in the tracker */
        return 0;
    double fx = (double)fr->width / s->trk_w, fy = (double)fr->height / s->trk_h;
    for (int i = 0; i < n; i++) {
        const char *label = last[i].label[0] ? last[i].label : NULL;
        vt_shape box = {.kind = VT_SHAPE_BOX,
                        .box = {(float)(last[i].box[0] * fx), (float)(last[i].box[1] * fy),
                                (float)(last[i].box[2] * fx), (float)(last[i].box[3] * fy)}};
        if (last[i].box[2] > 0 && last[i].box[3] > 0 &&
            vt_tracker_add_object(s->trk, last[i].id, label, &box, err, sizeof err) == 0) {
            mark_again(s, last[i].id, s->resize_why);
            continue;
        }
        drop_id(s, last[i].id);
        emit_object(s, last[i].id, label, VT_PROTO_LIFECYCLE_REMOVED, fr->index, s->resize_why);
    }
    return 0;
}

static int track_frame(vt_stream *s, const vt_frame *fr, const vt_stream_event **out) {
    int rc;
    pthread_mutex_lock(&s->lock);
    const vt_model *next = s->next_model;
    s->next_model = NULL;
    pthread_mutex_unlock(&s->lock);
    if (next && next != s->cfg.model) {
        const int sized = s->trk_w && (fr->width != s->trk_w || fr->height != s->trk_h);
        if ((rc = restart_tracker(s, fr, next, sized ? NULL : "the model changed")) < 0)
            return rc;
        pthread_mutex_lock(&s->lock);
        s->model_in_use = next;
        pthread_mutex_unlock(&s->lock);
    } else if (s->trk_w && (fr->width != s->trk_w || fr->height != s->trk_h) &&
               (rc = restart_tracker(s, fr, s->cfg.model, NULL)) < 0) {
        return rc;
    }
    s->trk_w = fr->width, s->trk_h = fr->height;
    apply_commands(s, fr);
    vt_image img = {.w = fr->width, .h = fr->height, .linesize = fr->linesize, .rgb = fr->rgb};
    const vt_track_result *r;
    rc = vt_tracker_step(s->trk, &img, NULL, &r);
    if (rc < 0)
        return rc;

    for (int i = 0; i < r->n_removed; i++)
        emit_object(s, r->removed[i], r->removed_labels[i][0] ? r->removed_labels[i] : NULL,
                    VT_PROTO_LIFECYCLE_REMOVED, fr->index, "untrack");
    for (int i = 0; i < r->n_objects; i++) {
        const vt_object_result *o = &r->objects[i];
        vt_proto_lifecycle what;
        if (proto_event(o->event, &what))
            emit_object(s, o->id, o->label, what, fr->index,
                        what == VT_PROTO_LIFECYCLE_ADDED ? take_again(s, o->id) : NULL);
    }

    int n = r->n_objects > VT_PROTO_OBJECTS_MAX ? VT_PROTO_OBJECTS_MAX : r->n_objects;
    for (int i = 0; i < n; i++) {
        const vt_object_result *o = &r->objects[i];
        size_t len = 0;
        if ((rc = encode_mask(s, i, o->mask, r->w, r->h, &len)) < 0)
            return rc;
        s->pobj[i] = (vt_proto_object){
            .id = o->id,
            .label = o->label[0] ? o->label : NULL,
            .area = (uint64_t)o->area,
            .score = o->score,
            .state = proto_state(o->state),
            .rle = s->rle[i],
            .rle_len = len,
        };
        clip_bbox(o->bbox, fr->width, fr->height, s->pobj[i].bbox);
    }
    s->nlast = n;
    vt_proto_frame pf = {
        .stream = s->name,
        .frame = fr->index,
        .pts = fr->pts,
        .tb_num = fr->tb_num > 0 ? fr->tb_num : 1,
        .tb_den = fr->tb_den > 0 ? fr->tb_den : 1,
        .wallclock_us = fr->arrival_realtime_us,
        .capture_us = fr->capture_realtime_us >= 0 ? fr->capture_realtime_us : VT_PROTO_NO_CLOCK,
        .width = fr->width,
        .height = fr->height,
        .objects = s->pobj,
        .nobjects = n,
    };
    s->tail.len = 0;
    s->tail_masks.len = 0;
    if ((rc = vt_proto_write_frame(&s->tail, &pf, 0)) < 0 ||
        (rc = vt_proto_write_frame(&s->tail_masks, &pf, 1)) < 0)
        return rc;
    s->frame_ev = (vt_stream_event){
        .kind = VT_STREAM_EVENT_FRAME,
        .stream = s->name,
        .tail = s->tail.data,
        .tail_len = s->tail.len,
        .tail_masks = s->tail_masks.data,
        .tail_masks_len = s->tail_masks.len,
        .frame = fr,
        .result = r,
        .arrival_mono_us = fr->arrival_mono_us,
    };
    emit(s, &s->frame_ev);

    /* Snapshot and statistics. */
    int64_t now = vt_mono_us();
    double lat = (now - fr->arrival_mono_us) / 1000.0;
    pthread_mutex_lock(&s->lock);
    s->frames_tracked++;
    s->last_frame = fr->index;
    s->width = fr->width, s->height = fr->height;
    if (s->last_track_us) {
        double inst = 1e6 / (double)(now - s->last_track_us + 1);
        s->fps = s->fps > 0 ? 0.9 * s->fps + 0.1 * inst : inst;
    }
    s->last_track_us = now;
    s->lat_avg = s->frames_tracked > 1 ? 0.9 * s->lat_avg + 0.1 * lat : lat;
    s->lat_ring[s->lat_i] = lat;
    s->lat_i = (s->lat_i + 1) % LAT_RING;
    if (s->lat_n < LAT_RING)
        s->lat_n++;
    s->nobj_snap = n; /* objects applied on this frame are in the result now, or were refused */
    for (int i = 0; i < n; i++) {
        snprintf(s->label_snap[i], sizeof s->label_snap[i], "%s", r->objects[i].label);
        s->obj_snap[i] = (vt_proto_object_info){
            .id = r->objects[i].id, .label = NULL, .state = proto_state(r->objects[i].state)};
    }
    pthread_mutex_unlock(&s->lock);
    atomic_store(&s->heartbeat[1], now);
    if (out)
        *out = &s->frame_ev;
    return 0;
}

int vt_stream_step(vt_stream *s, const vt_stream_event **out) {
    const vt_frame *fr;
    int rc = vt_source_read(s->src, &fr);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->lock);
    s->frames_in++;
    pthread_mutex_unlock(&s->lock);
    return track_frame(s, fr, out);
}

/* ------------------------------------------------------------------------------------------
 * Threaded mode
 * ---------------------------------------------------------------------------------------- */

static int buf_store(frame_buf *b, const vt_frame *f) {
    size_t n = (size_t)f->width * f->height * 3;
    if (n > b->rgb_cap) {
        uint8_t *p = realloc(b->rgb, n);
        if (!p)
            return AVERROR(ENOMEM);
        b->rgb = p;
        b->rgb_cap = n;
    }
    vt_frame_copy_rgb(f, 0, b->rgb);
    b->f = *f;
    b->f.rgb = b->rgb;
    b->f.linesize = f->width * 3;
    b->f.proc_rgb = NULL;
    b->f.proc_width = b->f.proc_height = b->f.proc_linesize = 0;
    return 0;
}

/*
 * Is the published frame one that an object was given on (a queued track for exactly its
 * index)? A live stream then keeps it for the tracker rather than replacing it with a newer
 * one: the shape describes that frame, and on a later one a moving object has left it.
 * Caller holds the lock.
 */
static int published_is_due(const vt_stream *s) {
    if (s->published < 0)
        return 0;
    const int64_t index = s->bufs[s->published].f.index;
    for (int i = 0; i < s->ncmds; i++)
        if (!s->cmds[i].untrack && s->cmds[i].frame == index)
            return 1;
    return 0;
}

static void *ingest_main(void *arg) {
    vt_stream *s = arg;
    int writing = 0;
    for (;;) {
        atomic_store(&s->heartbeat[0], vt_mono_us());
        const vt_frame *fr;
        int rc = vt_source_read(s->src, &fr);
        if (rc < 0)
            break;
        atomic_store(&s->heartbeat[0], vt_mono_us());
        pthread_mutex_lock(&s->lock);
        s->frames_in++;
        const int lossless = s->cfg.mode == VT_STREAM_LOSSLESS;
        while ((lossless ? s->published >= 0 : published_is_due(s)) && !s->stopping)
            pthread_cond_wait(&s->cond, &s->lock);
        int stop = s->stopping;
        pthread_mutex_unlock(&s->lock);
        if (stop)
            break;
        /* `writing` is neither published nor busy: only this thread touches it. */
        if (buf_store(&s->bufs[writing], fr) < 0)
            continue;
        pthread_mutex_lock(&s->lock);
        int old = s->published;
        if (old >= 0)
            s->skipped++;
        s->published = writing;
        /* next free buffer: not published, not busy */
        for (int i = 0; i < NBUF; i++)
            if (i != s->published && i != s->busy) {
                writing = i;
                break;
            }
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_lock(&s->lock);
    s->ended = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void *track_main(void *arg) {
    vt_stream *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->published < 0 && !s->ended && !s->stopping) {
            /* Wake twice a second to show the watchdog this thread is alive. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 500000000;
            if (ts.tv_nsec >= 1000000000)
                ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&s->cond, &s->lock, &ts);
            atomic_store(&s->heartbeat[1], vt_mono_us());
        }
        if (s->stopping || (s->published < 0 && s->ended))
            break;
        if (s->ended && s->end_reason[0] == 0)
            vt_fmt(s->end_reason, sizeof s->end_reason, "end of stream");
        s->busy = s->published;
        s->published = -1;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);

        int rc = track_frame(s, &s->bufs[s->busy].f, NULL);
        if (rc < 0) {
            pthread_mutex_lock(&s->lock);
            vt_fmt(s->end_reason, sizeof s->end_reason, "tracking failed: %s", av_err2str(rc));
            s->busy = -1;
            s->ended = 1;
            pthread_mutex_unlock(&s->lock);
            vt_source_cancel(s->src);
            pthread_mutex_lock(&s->lock);
            break;
        }
        pthread_mutex_lock(&s->lock);
        s->busy = -1;
    }
    int report = s->ended && !s->stopping;
    char reason[256];
    memcpy(reason, s->end_reason, sizeof reason);
    pthread_mutex_unlock(&s->lock);
    if (report) {
        drop_pending(s);
        emit_state(s, VT_PROTO_STREAM_ENDED, reason[0] ? reason : "end of stream");
    }
    return NULL;
}

int vt_stream_start(vt_stream *s) {
    if (s->started)
        return AVERROR(EINVAL);
    int64_t now = vt_mono_us();
    atomic_store(&s->heartbeat[0], now);
    atomic_store(&s->heartbeat[1], now);
    /* Set before the threads exist: a source that fails at once reports its end on the ingest
     * thread, and on_source_state must see a threaded stream there (the tracker thread reports
     * the end), not a stepped one that reports it itself. */
    s->started = 1;
    if (pthread_create(&s->th_ingest, NULL, ingest_main, s) != 0) {
        s->started = 0;
        return AVERROR(EAGAIN);
    }
    if (pthread_create(&s->th_track, NULL, track_main, s) != 0) {
        vt_source_cancel(s->src);
        pthread_join(s->th_ingest, NULL);
        s->started = 0;
        return AVERROR(EAGAIN);
    }
    return 0;
}

void vt_stream_cancel(vt_stream *s) {
    vt_source_cancel(s->src);
}

void vt_stream_stop(vt_stream *s) {
    if (!s->started)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    vt_source_cancel(s->src);
    pthread_join(s->th_ingest, NULL);
    pthread_join(s->th_track, NULL);
    s->started = 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int vt_stream_set_model(vt_stream *s, const vt_model *m) {
    if (!m)
        return AVERROR(EINVAL);
    pthread_mutex_lock(&s->lock);
    s->next_model = m == s->model_in_use ? NULL : m;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

const vt_model *vt_stream_model(vt_stream *s) {
    pthread_mutex_lock(&s->lock);
    const vt_model *m = s->model_in_use;
    pthread_mutex_unlock(&s->lock);
    return m;
}

const vt_model *vt_stream_model_pending(vt_stream *s) {
    pthread_mutex_lock(&s->lock);
    const vt_model *m = s->next_model;
    pthread_mutex_unlock(&s->lock);
    return m;
}

void vt_stream_get_snapshot(vt_stream *s, vt_stream_snapshot *snap) {
    double lat[LAT_RING];
    vt_source_stats st;
    vt_source_get_stats(s->src, &st);
    pthread_mutex_lock(&s->lock);
    memset(snap, 0, sizeof *snap);
    snprintf(snap->name, sizeof snap->name, "%s", s->name);
    snap->state = s->state;
    snap->width = s->width, snap->height = s->height;
    snap->frame = s->last_frame;
    snap->nobjects = s->nobj_snap;
    for (int i = 0; i < s->nobj_snap; i++) {
        snap->objects[i] = s->obj_snap[i];
        memcpy(snap->labels[i], s->label_snap[i], sizeof snap->labels[i]);
        snap->objects[i].label = snap->labels[i][0] ? snap->labels[i] : NULL;
    }
    /* Objects given for a frame that has not come yet: listed, and counted against the
     * limit. */
    for (int j = 0; j < s->ncmds && snap->nobjects < VT_PROTO_OBJECTS_MAX; j++) {
        const command *c = &s->cmds[j];
        if (c->untrack)
            continue;
        int i = snap->nobjects++;
        snprintf(snap->labels[i], sizeof snap->labels[i], "%s", c->has_label ? c->label : "");
        snap->objects[i] =
            (vt_proto_object_info){.id = c->id,
                                   .label = snap->labels[i][0] ? snap->labels[i] : NULL,
                                   .state = VT_PROTO_OBJ_PENDING};
    }
    snap->frames_in = s->frames_in;
    snap->frames_tracked = s->frames_tracked;
    snap->skipped = s->skipped;
    snap->reconnects = (uint64_t)st.reconnects;
    /* fps decays to zero when frames stop coming */
    int64_t idle = s->last_track_us ? vt_mono_us() - s->last_track_us : 0;
    snap->fps = idle > 2000000 ? 0.0 : s->fps;
    snap->latency_ms = s->lat_avg;
    int n = s->lat_n;
    memcpy(lat, s->lat_ring, sizeof(double) * n);
    pthread_mutex_unlock(&s->lock);
    snap->heartbeat_mono_us[0] = atomic_load(&s->heartbeat[0]);
    snap->heartbeat_mono_us[1] = atomic_load(&s->heartbeat[1]);
    if (n) {
        qsort(lat, n, sizeof(double), cmp_double);
        snap->latency_p95_ms = lat[(int)(0.95 * (n - 1))];
    }
}

const char *vt_stream_tree_file(const char *rel, const char *probe, char *buf, size_t len) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = n > 0 ? (exe[n] = 0, strrchr(exe, '/')) : NULL;
    if (!slash)
        return NULL;
    *slash = 0;
    snprintf(buf, len, "%s/../../%s", exe, rel);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s%s%s", buf, probe ? "/" : "", probe ? probe : "");
    return access(path, R_OK) == 0 ? buf : NULL;
}

const char *vt_stream_default_model(char *buf, size_t len) {
    const char *env = getenv("VT_MODEL");
    if (env && *env)
        return env;
    if (vt_stream_tree_file("weights/default.safetensors", NULL, buf, len))
        return buf;
    snprintf(buf, len, "%s/default.safetensors", VT_DATADIR);
    if (access(buf, R_OK) == 0)
        return buf;
    return "lab";
}
