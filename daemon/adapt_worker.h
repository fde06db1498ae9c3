/*
 * adapt_worker.h - per-camera adaptation (issue 17): a stream whose configuration has an "adapt"
 * object keeps a sample of its own frames (reservoir.h) and, when the machine is idle, has a
 * copy of its model fine-tuned on them; the copy replaces the stream's model only if an
 * unsupervised check on samples held back from the fine-tuning improves. Streams without it run
 * exactly as before: none of this is made for them.
 *
 * One run, on the daemon's one adaptation thread (lowest priority: SCHED_IDLE, else nice 19):
 * read the stream's samples; hold `hold` of them back (a seeded choice, new each run); load a
 * copy of the model the stream tracks with (its file, so the copy is private); fine-tune it
 * (train/: vt_train_cfg_from_model, vt_train_adapt; `steps` steps of the objective the weights
 * were trained with, lr `lr`, `batch` pairs per step, pairs within a sample's clip); score the
 * model in use and the copy on the held-back samples: the follow check when `hold` samples carry
 * objects (the held-back ones are then chosen among those), else vt_check_score's recon check.
 *   follow  a fresh tracker on the model is given the objects the live tracker had on a sample's
 *           first frame, by their boxes, and tracks them over the clip; on each later frame,
 *           the mean IoU of its boxes with the live tracker's (an object it lost: 0) is one
 *           score. The live tracker had the stream's whole history (memory, motion, the
 *           objects' masks) and is the teacher: a copy that tracks these scenes worse drifts
 *           from it, one that does better from a cold start comes closer.
 *   recon   the mast objective on the samples' consecutive pairs: the check that needs no
 *           object, for a stream that has tracked none.
 * Accept when the copy's mean gain over the held-back frames (or pairs) plus its worst one's gain
 * is above `margin` (the rule of
 * `vtrack track --adapt`, cli/adapt.c: the gain on average must outweigh the largest loss on any
 * one pair) and its scores are finite. An accepted copy is saved with its provenance as
 * <state_dir>/adapt/<stream>/model.safetensors and swapped in at a frame boundary
 * (vt_stream_set_model); a rejected one is discarded. Either way a log line and the stream's
 * `stats` say so; a swap is also a `model` event to the stream's subscribers.
 *
 * When: the loop's housekeeping tick starts a run for a stream whose reservoir has min_samples
 * samples, whose last run is interval_s ago, when no run is under way, and the machine is idle:
 * the 1-minute load average per CPU below max_load, or the local hour within `hours`.
 *
 * A stream with adaptation on starts with its saved model when there is one; reset_model (and
 * `vtrack ctl reset_model stream=NAME`) deletes it and swaps the shipped one back.
 *
 * Threads: everything here is the loop thread's, except vtd_adapt_frame (the stream's tracker
 * thread: the reservoir) and the worker thread's own state.
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
typedef struct vtd_adapter vtd_adapter;

#define VTD_ADAPT_RETIRED 4

/* A stream's adaptation state (vtd_srec.ad; NULL when off). Loop thread, except `res`. */
typedef struct vtd_srec_adapt {
    vtd_reservoir *res;
    char dir[4096];                        /* <state_dir>/adapt/<stream> */
    char model_path[4200];                 /* dir/model.safetensors */
    vtd_model *shipped;                    /* the daemon's model when the stream was made */
    vtd_model *retired[VTD_ADAPT_RETIRED]; /* swapped out, kept until the tracker lets go */
    int writing;                           /* a reservoir write is on the pool */
    uv_work_t write_work;
    int running;         /* a run of this stream is with the worker */
    unsigned gen;        /* bumped by a reset: a run under way then is discarded */
    int64_t last_run_ms; /* monotonic, when the last run ended (0: none) */
    uint64_t runs, accepted, rejected, failed;
    int checked;
    double before, after;
    char last[256]; /* the last outcome in words */
} vtd_srec_adapt;

/* A stream record being made (loop thread): open its reservoir, and load its saved model when
 * there is one (*model then replaced by it: the caller's reference is dropped). Adaptation
 * needs a state directory: without one it stays off with a warning. 0, or -ENOMEM. */
int vtd_adapt_stream_init(vtd *d, vtd_srec *r, vtd_model **model);

/* Free the stream's adaptation state (its models' references included). The stream's threads
 * must have stopped. */
void vtd_adapt_stream_free(vtd_srec *r);

/* The stream's tracker thread: every tracked frame, and what was tracked on it. */
void vtd_adapt_frame(vtd_srec *r, const vt_frame *f, const vt_track_result *res);

/* The loop's housekeeping: reservoir writes, retired models, and starting runs. */
void vtd_adapt_tick(vtd *d);

/* reset_model: delete the saved model, swap the shipped one back, discard a run under way.
 * 0, or -ENOENT when the stream has adaptation off (it always runs the shipped model). */
int vtd_adapt_reset(vtd_srec *r);

/* `stats`: fill *st (its strings are r's, valid until the loop changes the stream). */
void vtd_adapt_get_stats(vtd_srec *r, vt_proto_adapt_stats *st);

/* Stop the worker thread (a run under way finishes first; its result is dropped). */
void vtd_adapt_shutdown(vtd *d);

/* ---------------------------------------------------------------------------------------------
 * One run, without the daemon (the worker's body; tests call it directly)
 * ------------------------------------------------------------------------------------------- */

enum { VTD_CHECK_FOLLOW, VTD_CHECK_RECON };

/* "follow", "recon". */
const char *vtd_check_name(int check);

typedef struct vtd_adapt_run {
    /* in */
    char dir[4096];         /* the reservoir's folder */
    char model_path[4200];  /* the model to copy (a file) */
    char base[4096];        /* the server's model the stream started from (its name) */
    const vt_model *in_use; /* the model the stream tracks with (shared, read-only) */
    vtd_adapt_conf conf;
    vt_tracker_params params; /* the stream's tracker (the check's window and temperature) */
    char stream[VT_PROTO_NAME_MAX + 1];
    uint64_t run_seed; /* chooses the held-back samples */
    const char *save;  /* write an accepted copy there (NULL: no) */
    /* tests: called on the tuned copy before the check (a forced-bad update), or NULL */
    void (*after_tune)(vt_model *m, void *opaque);
    void *opaque;
    /* out */
    int rc; /* 0: the run went through (accepted or not); < 0: failed, see err */
    char err[256];
    int accepted;
    int checked;
    int check;            /* the check it used: VTD_CHECK_FOLLOW when `hold` samples have
                           * objects, else VTD_CHECK_RECON */
    double before, after; /* mean check scores, model in use and tuned copy */
    double worst;         /* the smallest gain over the held-back frames or pairs (tuned
                           * minus in use) */
    double loss[2];       /* the fine-tuning's first and last tenth */
    int samples, held, pairs;
    double seconds;
    char provenance[512];
    vt_model *tuned; /* accepted: the copy (the caller owns it); else NULL */
} vtd_adapt_run;

/* Run one adaptation as described above. Fills the out fields; never throws the model in use. */
void vtd_adapt_run_once(vtd_adapt_run *run);

#endif
