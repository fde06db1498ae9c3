/*
 * adapt.h - per-clip adaptation (`vtrack track --adapt STEPS`): fine-tune a copy of the
 * tracker's model on the clip's own frames with the self-supervised objective it was trained
 * with, before tracking the clip. No label is read: the frames are the only supervision.
 */
#ifndef VT_CLI_ADAPT_H
#define VT_CLI_ADAPT_H

#include <stdint.h>
#include <stdio.h>

#include "vt_model.h"

typedef struct vt_adapt_opts {
    int steps;        /* optimiser steps (0: no adaptation) */
    float lr;         /* peak learning rate of the fine-tuning */
    int batch;        /* frame pairs per step */
    int short_side;   /* frames are scaled to this short side, as in training */
    uint64_t seed;    /* the trainer's generator: a fixed seed gives bitwise the same model */
    FILE *log;        /* progress, NULL: quiet */
    const char *save; /* also write the adapted weights there (NULL: no) */
} vt_adapt_opts;

/* The defaults of `--adapt`: lr 1e-4, batch 4, short side 256, seed 1. */
void vt_adapt_opts_default(vt_adapt_opts *o);

/*
 * Load the weights `model` (a path, or "lab" which cannot be adapted: -EINVAL), fine-tune them
 * for o->steps steps on the frames of `clip` (a video file or a folder of numbered frames),
 * and return the adapted model in *out (the caller frees it). `loss` (may be NULL) receives
 * the mean loss of the first and of the last tenth of the steps. The adapted weights carry
 * `vtrack.adapt` metadata saying how they were made. 0 or a negative errno with a
 * message in err.
 */
int vt_adapt_clip(const char *model, const char *clip, const vt_adapt_opts *o, vt_model **out,
                  double loss[2], char *err, size_t errlen);

#endif
