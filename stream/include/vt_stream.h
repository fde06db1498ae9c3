/*
 * vt_stream.h - one tracked source: codec source -> model tracker -> results -> events.
 *
 * A stream reads frames from a vt_source (codec/), tracks its objects with a vt_tracker
 * (model/), and turns every result into wire-ready protocol messages (proto/): one frame event
 * per tracked frame (serialised twice, with and without masks), object lifecycle events and
 * source state events. It knows no sockets and no event loop: the same pipeline runs
 *
 *   - step by step on the caller's thread (vt_stream_step: `vtrack track`, tests), or
 *   - on its own two threads (vt_stream_start: the daemon): an ingest thread that reads and
 *     decodes, and a tracker thread that takes frames from a mailbox (the newest frame wins for
 *     live streams; every frame for lossless ones) and tracks them.
 *
 * Events reach the owner through one callback (vt_stream_event_cb). In threaded mode it is called
 * from the stream's two threads (state events from the ingest thread, the rest, and the final
 * `ended`, from the tracker thread), and, once the stream has ended, from the thread that calls
 * vt_stream_untrack (its `removed` event), so it must be thread-safe, copy what it keeps and
 * return quickly.
 *
 * Commands (track, untrack) may be issued from any thread; they are applied by the tracking
 * thread before the frame they name.
 */
#ifndef VT_STREAM_H
#define VT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "vt_codec.h"
#include "vt_model.h"
#include "vt_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How frames flow from the ingest thread to the tracker thread (threaded mode). */
typedef enum vt_stream_mode {
    VT_STREAM_LIVE,     /* the tracker takes the newest frame; older ones are skipped, counted */
    VT_STREAM_LOSSLESS, /* every frame is tracked; the ingest thread waits for the tracker */
} vt_stream_mode;

typedef enum vt_stream_event_kind {
    VT_STREAM_EVENT_FRAME,  /* a tracked frame */
    VT_STREAM_EVENT_OBJECT, /* an object was added, lost, recovered or removed */
    VT_STREAM_EVENT_STATE,  /* the source changed state */
} vt_stream_event_kind;

/*
 * One event. `tail` is the protocol message without its `{"seq":N,` prefix (vt_proto.h), ending
 * in "\n"; for frame events `tail` has no masks and `tail_masks` has them. Everything is borrowed
 * for the duration of the callback.
 */
typedef struct vt_stream_event {
    vt_stream_event_kind kind;
    const char *stream;
    const char *tail;
    size_t tail_len;
    const char *tail_masks; /* FRAME only */
    size_t tail_masks_len;
    /* FRAME only: the decoded frame and the tracker's result (label map, masks, boxes). */
    const vt_frame *frame;
    const vt_track_result *result;
    /* FRAME: CLOCK_MONOTONIC microseconds at which the frame was decoded */
    int64_t arrival_mono_us;
    /* OBJECT: which object, what happened, and on which frame (-1: none, e.g. the removal of
     * an object whose frame never came); STATE: the new state */
    uint32_t object;
    vt_proto_lifecycle lifecycle;
    int64_t object_frame;
    /* OBJECT: why it was removed ("untrack", a refused shape); STATE: why (a source's error,
     * the end of a file); or NULL */
    const char *reason;
    vt_proto_stream_state state;
} vt_stream_event;

typedef void (*vt_stream_event_cb)(void *opaque, const vt_stream_event *ev);

typedef struct vt_stream_config {
    const char *name; /* 1..VT_PROTO_NAME_MAX chars (copied) */
    const char *url;  /* copied */
    /* Source options (copied; on_state/opaque are the stream's own and are overwritten). */
    vt_source_opts source;
    vt_stream_mode mode;
    const vt_model *model; /* shared, read-only; must outlive the stream */
    vt_tracker_params params;
    vt_proto_tracker tracker; /* for list replies */
    vt_proto_profile profile;
    vt_proto_pacing pacing;
    vt_stream_event_cb on_event;
    void *opaque;
} vt_stream_config;

typedef struct vt_stream vt_stream;

/* Create a stream (no I/O, no threads yet). *out owns it; free with vt_stream_free(). */
int vt_stream_new(const vt_stream_config *cfg, vt_stream **out, char *err, size_t errlen);

/* Stop (if started) and free; *s set to NULL; accepts NULL. */
void vt_stream_free(vt_stream **s);

/*
 * Offline mode: read the next frame, apply pending commands, track it and emit its events on this
 * thread. *out (may be NULL) receives the frame event (borrowed until the next step). Returns 0,
 * AVERROR_EOF at the end of the source, AVERROR_EXIT when cancelled, or the error.
 */
int vt_stream_step(vt_stream *s, const vt_stream_event **out);

/* Threaded mode: start the ingest and tracker threads. */
int vt_stream_start(vt_stream *s);

/* Threaded mode: cancel the source, wake and join both threads. Idempotent; safe if never
 * started. Pending commands are dropped. */
void vt_stream_stop(vt_stream *s);

/* Cancel the source from any thread (a blocked read returns at once); steps then fail. */
void vt_stream_cancel(vt_stream *s);

/*
 * Track a new object from frame `frame` on (-1: the next frame tracked; a frame already passed
 * also means the next one). A live stream does not skip a frame an object is given on. `id` 0 lets
 * the stream choose a free id; the id used is stored in *id_out. The shape is copied. Mask shapes
 * must match the source size when applied; a mismatch then emits a `removed` event with a reason,
 * as does the end of the source before the frame comes ("the stream ended before frame N", with no
 * frame; then the `ended` state event). Returns -EEXIST (id in use), -ENOSPC (too many objects
 * or commands waiting), -EINVAL (bad shape), AVERROR_EOF (the stream has ended: no frame will
 * come), all with a message in err.
 */
int vt_stream_track(vt_stream *s, uint32_t id, const char *label, const vt_shape *shape,
                    int64_t frame, uint32_t *id_out, char *err, size_t errlen);

/* Track an object again after a restart (the daemon's saved state): like vt_stream_track with
 * its own `id` (not 0) on the next frame tracked, and its `added` event has the reason
 * "restored". */
int vt_stream_restore(vt_stream *s, uint32_t id, const char *label, const vt_shape *shape,
                      char *err, size_t errlen);

/* Stop tracking `id` before the next frame; a `removed` event follows (emitted before this
 * returns, without a frame, when the stream has ended). -ENOENT if unknown, -ENOSPC when too
 * many commands are waiting. */
int vt_stream_untrack(vt_stream *s, uint32_t id);

/*
 * Track with model `m` from the next frame on (the daemon's per-camera adaptation swaps in a
 * fine-tuned copy, or back to the shipped one). The tracker thread takes it at a frame
 * boundary: a new tracker on `m`, every object placed again from its last box with its id and
 * label, its `added` event giving the reason "the model changed" (as a frame-size change does).
 * Until then the stream keeps tracking with the model it has: both must outlive the swap;
 * vt_stream_model says which one the tracker uses, vt_stream_model_pending which one waits
 * (NULL: none). Setting the model in use again cancels a waiting swap. Any thread. 0 or
 * AVERROR(EINVAL) for NULL.
 */
int vt_stream_set_model(vt_stream *s, const vt_model *m);
const vt_model *vt_stream_model(vt_stream *s);
const vt_model *vt_stream_model_pending(vt_stream *s);

/* A snapshot for `list` and `stats` replies; strings and arrays are the snapshot's own. */
typedef struct vt_stream_snapshot {
    char name[VT_PROTO_NAME_MAX + 1];
    vt_proto_stream_state state;
    int width, height;
    int64_t frame; /* last tracked frame index, -1 before the first */
    int nobjects;
    vt_proto_object_info objects[VT_PROTO_OBJECTS_MAX];
    char labels[VT_PROTO_OBJECTS_MAX][VT_PROTO_LABEL_MAX + 1];
    uint64_t frames_in;      /* frames decoded */
    uint64_t frames_tracked; /* frames tracked */
    uint64_t skipped;        /* live frames not tracked because the tracker was busy */
    uint64_t reconnects;
    double fps;        /* tracked frames per second over the last seconds */
    double latency_ms; /* decode -> event, recent average */
    double latency_p95_ms;
    int64_t heartbeat_mono_us[2]; /* last sign of life of the ingest and tracker threads */
} vt_stream_snapshot;

void vt_stream_get_snapshot(vt_stream *s, vt_stream_snapshot *snap);

/* Facts about the source's current connection (vt_source_get_info); AVERROR(EAGAIN) before. */
int vt_stream_get_source_info(vt_stream *s, vt_source_info *info);

/* The stream's name and URL (owned by the stream). */
const char *vt_stream_name(const vt_stream *s);
const char *vt_stream_url(const vt_stream *s);

/*
 * The model to use when none is named: $VT_MODEL if set, else the shipped weights next to the
 * program (<root>/weights/default.safetensors for a program in <root>/<build dir>/<subdir>/, or
 * the installed data directory), else "lab". Returns `buf` or a string constant; pass the result
 * to vt_model_load().
 */
const char *vt_stream_default_model(char *buf, size_t len);

/* A file of the source tree for a program run from its build tree (<root>/<build dir>/<subdir>/
 * program): <root>/rel in buf when it (or, with `probe`, rel/probe) is readable, else NULL. */
const char *vt_stream_tree_file(const char *rel, const char *probe, char *buf, size_t len);

/* Map a codec state to the protocol's (IDLE maps to CONNECTING, BACKOFF to RECONNECTING). */
vt_proto_stream_state vt_stream_state_from_source(vt_source_state st);

/* How the overlay draws tracked object `o`, which is `index` in its result's label map (i + 1 for
 * objects[i]): its id, label (borrowed from `o`), state and box. */
vt_overlay_object vt_stream_overlay_object(const vt_object_result *o, int index);

#ifdef __cplusplus
}
#endif

#endif /* VT_STREAM_H */
