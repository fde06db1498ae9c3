/*
 * streams.h - the running streams: each a vt_stream (stream/, on its own ingest and tracker
 * threads) plus the daemon's record of it: its configuration, its loop-side state and, when
 * configured, an overlay video writer thread.
 *
 * Creating a stream is cheap and does no I/O (vt_stream_new), so it happens on the loop thread.
 * Stopping one joins its threads, which can take as long as one tracked frame, so it happens on
 * libuv's thread pool; the record lives on until its last queued event has been dispatched.
 */
#ifndef VTD_STREAMS_H
#define VTD_STREAMS_H

#include <stdatomic.h>

#include <uv.h>

#include "config.h"
#include "live.h"
#include "overlay_writer.h"

typedef struct vtd vtd;
typedef struct vtd_model vtd_model;

struct vtd_srec {
    vtd *d;
    struct vtd_srec *next; /* d->streams, or d->dying once removed */
    vtd_stream_conf conf;
    vt_stream *s;
    vtd_overlay *ov;
    vtd_model *model;            /* the model its tracker runs (a reference) */
    _Atomic int refs;            /* the registry + queued events */
    _Atomic int detached;        /* removed: its threads' events are discarded */
    vt_proto_stream_state state; /* loop thread's view, from state events */
    int started;
    int stopping;
    struct vtd_msg *persist_msg; /* newest frame (with masks) not yet sampled (persist.c) */
    vtd_live live;               /* the latest frame for the HTTP live view (live.h) */
    struct vtd_srec_adapt *ad;   /* per-camera adaptation (adapt_worker.h), NULL: off */
    uv_work_t work;
};

/*
 * Create (not start) a stream from `sc` (copied), register its initial objects, and add it to
 * d->streams. 0, or a negative error with a message in err (a bad URL, a bad option).
 */
int vtd_streams_add(vtd *d, const vtd_stream_conf *sc, vtd_srec **out, char *err, size_t errlen);

/* Start a created stream's threads. 0 or an error. */
int vtd_streams_start(vtd_srec *r);

/* Find a registered stream by name. */
vtd_srec *vtd_streams_find(vtd *d, const char *name);

/*
 * Remove a stream: unregister it, announce `removed` for its objects and `ended` (reason `why`)
 * to its subscribers, and stop and free it on the thread pool.
 */
void vtd_streams_remove(vtd_srec *r, const char *why);

/* Drop a reference (loop thread); the last frees the record. */
void vtd_srec_unref(vtd_srec *r);

/* Number of streams still being stopped. */
int vtd_streams_dying(const vtd *d);

/* Apply a new configuration's streams: add new ones, remove dropped ones, restart changed ones
 * (all of them when model_changed: they start again with d->model), leave the others alone.
 * Streams added by clients are untouched (they keep the model they started with). */
void vtd_streams_reload(vtd *d, const vtd_config *cfg, int model_changed);

#endif
