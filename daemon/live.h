/*
 * live.h - a stream's latest frame for the live view: the tracker thread leaves a copy of a
 * frame (RGB and its frame event with masks) only when the HTTP side wants one and one is due
 * (at most one per interval), and never waits for it: it copies under a try-lock and skips the
 * frame when the slot is taken or being encoded. http.c encodes the copy to JPEG on libuv's
 * pool (one encoding per stream at a time) and keeps the result, so that the image and the
 * masks drawn over it are of the same frame.
 */
#ifndef VTD_LIVE_H
#define VTD_LIVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

#include "vt_stream.h"

struct vtd_msg;

typedef struct vtd_live {
    pthread_mutex_t lock;        /* the slot: rgb, w, h, index, json, fresh, busy, next_us */
    _Atomic int want;            /* set by the loop: frames are wanted */
    _Atomic int64_t interval_us; /* set by the loop: at most one copy per interval */
    int64_t next_us;             /* next copy due (CLOCK_MONOTONIC), a quarter interval early */
    int fresh;                   /* a copied frame waits for encoding */
    int busy;                    /* the copy is being encoded (the slot is not written) */
    uint8_t *rgb;                /* w*h*3, packed */
    size_t rgb_cap;
    int w, h;
    int64_t index;
    vt_proto_buf json; /* the frame event with masks, a JSON object */
    /* encoding (pool thread while busy; loop otherwise) */
    struct vt_jpeg *jpeg;
    int quality;
    uv_work_t work;
    struct vtd_msg *out; /* encoded: 4-byte big-endian JSON length, JSON, JPEG */
    char err[128];
    /* loop only: the latest encoded frame */
    struct vtd_msg *latest;
    int64_t latest_index, latest_us;
    size_t latest_jpeg_off;
} vtd_live;

/* 0 or a negative errno. */
int vtd_live_init(vtd_live *l);

/* Release everything (loop thread, no encoding running). */
struct vtd_hub;
void vtd_live_clear(vtd_live *l, struct vtd_hub *h);

/* Tracker thread: copy this frame event's frame if wanted and due. 1 when copied, else 0.
 * Never waits on a lock. */
int vtd_live_offer(vtd_live *l, const vt_stream_event *ev);

/* Pool thread: encode the copied frame into l->out (from the hub's pool). 0 or an error (in
 * l->err). */
int vtd_live_encode(vtd_live *l, struct vtd_hub *h);

#endif
