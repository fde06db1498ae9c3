/*
 * adapt_worker.h - per-camera adaptation (issue 17): a stream whose configuration has an "adapt"
 * object keeps a sample of its own frames (reservoir.h), for fine-tuning a copy of its model on
 * them. Streams without it run exactly as before: none of this is made for them.
 *
 * This part: the stream's reservoir (opened in <state_dir>/adapt/<stream>, fed from the tracker
 * thread, written on libuv's pool from the housekeeping tick) and its figures in `stats`.
 *
 * Threads: everything here is the loop thread's, except vtd_adapt_frame (the stream's tracker
 * thread: the reservoir).
 */
#ifndef VTD_ADAPT_WORKER_H
#define VTD_ADAPT_WORKER_H

#include <stdint.h>

#include <uv.h>

#include "reservoir.h"
#include "vt_proto.h"

typedef struct vtd vtd;
typedef struct vtd_srec vtd_srec;
typedef struct vtd_model vtd_model;

/* A stream's adaptation state (vtd_srec.ad; NULL when off). Loop thread, except `res`. */
typedef struct vtd_srec_adapt {
    vtd_reservoir *res;
    char dir[4096]; /* <state_dir>/adapt/<stream> */
    int writing;    /* a reservoir write is on the pool */
    uv_work_t write_work;
} vtd_srec_adapt;

/* A stream record being made (loop thread): open its reservoir. Adaptation needs a state
 * directory and weights: without them it stays off with a warning. 0, or -ENOMEM. */
int vtd_adapt_stream_init(vtd *d, vtd_srec *r, vtd_model **model);

/* Free the stream's adaptation state. The stream's threads must have stopped. */
void vtd_adapt_stream_free(vtd_srec *r);

/* The stream's tracker thread: every tracked frame. */
void vtd_adapt_frame(vtd_srec *r, const vt_frame *f);

/* The loop's housekeeping: reservoir writes. */
void vtd_adapt_tick(vtd *d);

/* `stats`: fill *st. */
void vtd_adapt_get_stats(vtd_srec *r, vt_proto_adapt_stats *st);

#endif
