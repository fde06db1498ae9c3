/*
 * reservoir.h - a stream's own frames, kept for per-camera adaptation (adapt_worker.h): a
 * bounded, uniform sample over the stream's whole life (Vitter's Algorithm R), on disk in the
 * state directory so that it survives restarts and spans days.
 *
 * Every `every_s` seconds the tracker thread starts a sample: the next `clip` tracked frames,
 * scaled to `short_side` (never up), copied into a buffer made on the first sample (again only
 * when the frame size changes). When the last frame is in, Algorithm R decides: the n-th sample
 * (n from 0) takes slot n while n < k, else slot j for j uniform in [0, n], kept when j < k.
 * k = reservoir_mb / the bytes of one sample, so the files never pass the budget. The chosen
 * sample is written by vtd_reservoir_write (libuv's pool, daemon/streams.c), one file per sample
 * (<dir>/frames/sNNNNN.ppm: `clip` binary PPM images one after the other, written to a
 * temporary name and renamed), then the reservoir's counters (<dir>/reservoir). A sample due
 * while the previous one is still being written is skipped (counted).
 *
 * A sample also keeps, for each of its frames, the ids and boxes of the objects the stream was
 * tracking on it (at most VTD_SAMPLE_BOXES, scaled with the frame): the check of a run compares
 * what a model started afresh on a held-back sample makes of them with what the live tracker
 * reported (adapt_worker.h). Each image's PPM header carries them as a comment line, "# vtrack
 * boxes id x y w h ...", padded to VTD_BOXES_LINE bytes so that every sample of a size has the
 * same bytes; a file without them (an older one) is a sample without objects.
 *
 * A change of the frame size (a camera switched its resolution) starts the sample again: the old
 * files are deleted with the first sample of the new size.
 *
 * Threads: vtd_reservoir_wants and _frame on the stream's tracker thread only (no I/O, no
 * allocation after the first sample, a mutex taken once per sample); vtd_reservoir_write on one
 * thread at a time (the pool); the stats from any thread.
 */
#ifndef VTD_RESERVOIR_H
#define VTD_RESERVOIR_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct vtd_reservoir vtd_reservoir;

/* Algorithm R: the slot of the n-th sample offered (n from 0) in a reservoir of k slots, or -1
 * when it is not kept. `rng` is the state of a splitmix64 generator. */
int vtd_reservoir_choose(uint64_t *rng, uint64_t n, int k);

/* Open the reservoir kept in `dir` (created if needed: <dir>/frames/), reading what an earlier
 * run left there. Blocking I/O (start-up, the loop creating a stream). 0 or a negative errno
 * with the message in err. */
int vtd_reservoir_open(const char *dir, const vtd_adapt_conf *a, vtd_reservoir **out, char *err,
                       size_t errlen);
void vtd_reservoir_free(vtd_reservoir **r);

/* The folder given to vtd_reservoir_open. */
const char *vtd_reservoir_dir(const vtd_reservoir *r);

#define VTD_SAMPLE_BOXES 16  /* objects kept per frame of a sample */
#define VTD_CLIP_MAX     16  /* frames of a sample, at most (adapt.clip) */
#define VTD_BOXES_LINE   600 /* "# vtrack boxes" and 16 ids and boxes (numbers <= 16384), padded */

/* An object on a frame: its id and box (x, y, w, h). */
typedef struct vtd_obj_box {
    uint32_t id;
    int box[4];
} vtd_obj_box;

/* The stream's tracker thread: 1 when the frame stamped mono_us would go into a sample (one is
 * under way, or the next is due), so that the caller gathers its objects only for those. */
int vtd_reservoir_wants(const vtd_reservoir *r, int64_t mono_us);

/* The stream's tracker thread: one tracked frame (packed RGB24 rows of `linesize` bytes) and
 * the objects tracked on it (boxes in its pixels, nboxes of them, the first VTD_SAMPLE_BOXES
 * kept). */
void vtd_reservoir_frame(vtd_reservoir *r, const uint8_t *rgb, int w, int h, int linesize,
                         int64_t mono_us, const vtd_obj_box *boxes, int nboxes);

/* 1 when a captured sample waits for vtd_reservoir_write. Any thread. */
int vtd_reservoir_due(vtd_reservoir *r);

/* Write the waiting sample and the counters (the pool). 1 written, 0 nothing waited, or a
 * negative errno (the sample is dropped; message in err). */
int vtd_reservoir_write(vtd_reservoir *r, char *err, size_t errlen);

typedef struct vtd_reservoir_stats {
    uint64_t offered;  /* samples Algorithm R has seen (n) */
    uint64_t skipped;  /* samples not taken: the previous one was still being written */
    uint64_t failures; /* samples that could not be written */
    int samples;       /* samples on disk */
    int capacity;      /* k: slots in the budget at the current frame size (0: none seen yet) */
    uint64_t bytes;    /* on disk */
    uint64_t budget;   /* reservoir_mb in bytes */
    int w, h;          /* the samples' frame size (0: none yet) */
} vtd_reservoir_stats;

void vtd_reservoir_get_stats(vtd_reservoir *r, vtd_reservoir_stats *st);

/* One sample as read back: n frames of w x h, packed RGB24, one after the other. */
typedef struct vtd_sample {
    int slot;
    int n, w, h;
    uint8_t *rgb;
    int nboxes[VTD_CLIP_MAX];                          /* objects on each frame */
    vtd_obj_box boxes[VTD_CLIP_MAX][VTD_SAMPLE_BOXES]; /* in the sample's pixels, inside it */
} vtd_sample;

/* Read every sample of <dir>/frames (in slot order) for the fine-tuning: *out (n of them) the
 * caller frees with vtd_samples_free. Files that do not parse are skipped. 0 or -ENOMEM /
 * -errno (the folder cannot be read). */
int vtd_samples_read(const char *dir, vtd_sample **out, int *n);
void vtd_samples_free(vtd_sample **s, int n);

#endif
