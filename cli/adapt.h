/*
 * adapt.h - per-clip adaptation (`vtrack track --adapt STEPS`): fine-tune a copy of the
 * tracker's model on the clip's own frames with the self-supervised objective it was trained
 * with, before tracking the clip. No label is read: the frames are the only supervision. A
 * guard (`--adapt-check`) scores the original and the tuned copy on frames held back from the
 * fine-tuning (vt_check_score, model/check.c) and keeps the copy only if it scores higher.
 */
#ifndef VT_CLI_ADAPT_H
#define VT_CLI_ADAPT_H

#include <stdint.h>
#include <stdio.h>

#include "vt_model.h"

/* --adapt-check none: the tuned copy is kept unchecked, no frame is held back */
#define VT_ADAPT_CHECK_NONE (-1)

typedef struct vt_adapt_opts {
    int steps;        /* optimiser steps (0: no adaptation) */
    float lr;         /* peak learning rate of the fine-tuning */
    int batch;        /* frame pairs per step */
    int short_side;   /* frames are scaled to this short side, as in training */
    uint64_t seed;    /* the trainer's generator: a fixed seed gives bitwise the same model */
    FILE *log;        /* progress, NULL: quiet */
    const char *save; /* also write the adapted weights there (NULL: no) */
    int check;        /* a vt_check_kind, or VT_ADAPT_CHECK_NONE */
    double margin;    /* keep the tuned copy only if its mean gain over the check's horizons
                       * plus its worst horizon's gain exceeds this (0: the mean gain outweighs
                       * any loss; -2: every copy passes) */
    int hold_stride;  /* the check's frames: the objects' frame and every hold_stride-th after */
    int hold_count;   /* it, hold_count frames in all, none of them fine-tuned on */
} vt_adapt_opts;

/* The defaults of `--adapt`: lr 1e-4, batch 4, short side 256, seed 1; the cycle check with
 * margin 0 on 7 frames 2 apart. */
void vt_adapt_opts_default(vt_adapt_opts *o);

/* "cycle", "recon", "none" -> o->check; -EINVAL otherwise. */
int vt_adapt_check_parse(const char *s, int *check);

/* What the check is given: the objects given on one frame of the clip, and the tracker. */
typedef struct vt_adapt_given {
    int64_t frame; /* 0-based frame of the clip the shapes are given on */
    const vt_shape *shapes;
    int n;
    vt_tracker_params params; /* the parameters the clip will be tracked with */
} vt_adapt_given;

typedef struct vt_adapt_result {
    double loss[2];  /* mean loss of the first and of the last tenth of the steps */
    int checked;     /* the check ran (0: o->check is none, or it could not run: see why) */
    double score[2]; /* the check's score of the original and of the tuned copy */
    double worst;    /* the smallest gain over the check's horizons (tuned minus original) */
    int held;        /* frames held back for the check */
    double check_s;  /* seconds the check took (both scores, without decoding) */
    int accepted;    /* the tuned copy is to replace the original */
    char why[160];   /* when the check could not run: why (the original is then kept) */
} vt_adapt_result;

/*
 * Load the weights `model` (a path, or "lab" which cannot be adapted: -EINVAL), fine-tune them
 * for o->steps steps on the frames of `clip` (a video file or a folder of numbered frames),
 * and return the tuned model in *out (the caller frees it). With a check (o->check), the frames
 * `given->frame + k * o->hold_stride` (k < o->hold_count) are held back from the fine-tuning,
 * `orig` (the weights as loaded, the model tracked without adaptation) and the tuned copy are
 * scored on them, and res->accepted says whether the tuned copy passes (its mean gain over the
 * horizons, vt_check_score's per_h, plus its worst horizon's gain exceeds o->margin: on average
 * it gains more than it loses anywhere); a check that cannot run (too few frames, no object for
 * the cycle) rejects.
 * The tuned weights carry `vtrack.adapt` metadata saying how they were made, and, when the
 * check ran, `vtrack.adapt.check` with its scores and verdict; o->save writes them whatever the
 * verdict. 0 or a negative errno with a message in err.
 */
int vt_adapt_clip(const char *model, const char *clip, const vt_adapt_opts *o, const vt_model *orig,
                  const vt_adapt_given *given, vt_model **out, vt_adapt_result *res, char *err,
                  size_t errlen);

#endif
