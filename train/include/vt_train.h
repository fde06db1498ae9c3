/*
 * vt_train.h - the self-supervised trainer (train/, library vttrain): learns a vt_model's
 * encoder from unlabeled video with one of two objectives (MAST reconstruction, colorization),
 * AdamW with warm-up + cosine schedule and gradient clipping, a bounded in-memory frame cache
 * with pair sampling, atomic checkpoints with exact resume, and export of inference weights.
 *
 * The one public header of train/. Used by `vtrack train` (cli/cmd_train.c, which decodes the
 * video with codec/ and hands plain RGB frames to vt_train_data) and the tests. The executor,
 * the ops with backward passes and the batch internals are in train/train_int.h (tests only).
 *
 * Threading: a trainer, its model and a frame cache are used by one thread at a time.
 *
 * Determinism: given the same model, configuration, data and OpenBLAS thread count, every
 * step produces bitwise the same parameters: the only randomness is the trainer's own
 * xoshiro256** generator, whose state is part of the checkpoint.
 */
#ifndef VT_TRAIN_H
#define VT_TRAIN_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "vt_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Frame cache and sampling (train/train_data.c)
 * ------------------------------------------------------------------------------------------- */

/*
 * A bounded in-memory cache of RGB24 frames (packed rows, 3*w bytes) grouped by video. When
 * adding a frame would pass the byte cap, the cache halves its temporal density: the frame
 * stride doubles and every cached frame whose source index is not a multiple of it is freed,
 * so the kept frames stay evenly spaced in every video.
 */
typedef struct vt_train_video {
    char name[128];
    int w, h;
    int n, cap;
    uint8_t **rgb;  /* n frames of 3*w*h bytes */
    int64_t *index; /* source frame index of each */
} vt_train_video;

typedef struct vt_train_data {
    vt_train_video *v;
    int nv, capv;
    size_t cap_bytes, bytes;
    int stride;      /* kept frames are those with source index % stride == 0 */
    int64_t offered; /* frames offered to the cache */
} vt_train_data;

int vt_train_data_new(size_t cap_bytes, vt_train_data **out);
void vt_train_data_free(vt_train_data **d);
/* Start a new video of w x h frames; returns its index or a negative errno. */
int vt_train_data_add_video(vt_train_data *d, const char *name, int w, int h);
/* Offer frame `index` (0, 1, 2... within the video) of the last video added, rgb with rows of
 * `linesize` bytes (copied). 0 kept, 1 skipped (stride), -ENOMEM, -EINVAL (size). */
int vt_train_data_add_frame(vt_train_data *d, const uint8_t *rgb, int linesize, int64_t index);
/* Drop videos with fewer than two frames (no pair to sample). Returns the frames left. */
int64_t vt_train_data_finish(vt_train_data *d);
int64_t vt_train_data_frames(const vt_train_data *d);

/* ---------------------------------------------------------------------------------------------
 * Trainer (train/train.c)
 * ------------------------------------------------------------------------------------------- */

typedef enum vt_train_objective {
    VT_TRAIN_MAST = 0,     /* reconstruct the target's Lab from the reference's */
    VT_TRAIN_COLORIZE = 1, /* predict the target's quantised colour class */
} vt_train_objective;

#define VT_TRAIN_MAX_COLORS 64

typedef struct vt_train_cfg {
    vt_train_objective objective;
    int steps;          /* total optimiser steps (the schedule's length) */
    int batch;          /* pairs per step; the encoder sees 2*batch crops */
    int crop;           /* crop side in pixels (multiple of the stride) */
    float lr;           /* peak learning rate */
    float weight_decay; /* AdamW's decoupled decay, on convolution weights only */
    float beta1, beta2, adam_eps;
    int warmup;                 /* linear warm-up steps */
    float lr_min;               /* cosine floor, as a fraction of lr */
    float clip;                 /* global gradient-norm clip (0: off) */
    int radius;                 /* attention window radius in feature cells (< 0: global) */
    float temperature;          /* softmax temperature on unit-norm dot products */
    float huber_scale;          /* MAST: smooth_l1(scale*y, scale*t), MAST's published 20 */
    int gap_min, gap_max;       /* frame gap between reference and target (source frames) */
    float scale_min, scale_max; /* crop side as a fraction of the frame's short side */
    float jitter;               /* colour jitter strength on the input only (0: off) */
    int flip;                   /* random horizontal flips */
    int ncolors;                /* colorize: k-means clusters */
    float bn_momentum;
    uint64_t seed;
} vt_train_cfg;

/* Defaults of `vtrack train` for the objective (documented in docs/TRAINING.md). */
void vt_train_cfg_default(vt_train_cfg *c, vt_train_objective obj);
/* "mast" / "colorize" -> objective; -EINVAL otherwise. */
int vt_train_objective_parse(const char *s, vt_train_objective *obj);
const char *vt_train_objective_name(vt_train_objective obj);

typedef struct vt_train_step_info {
    int64_t step; /* steps done after this one */
    double loss;
    double grad_norm; /* before clipping */
    double lr;
} vt_train_step_info;

typedef struct vt_trainer vt_trainer;

/*
 * A trainer for model m (borrowed; its parameters are updated in place and it must outlive
 * the trainer). Allocates every buffer (optimiser state, activations at the crop size,
 * batch) now: steps allocate nothing. 0, -EINVAL (bad configuration, message in err) or
 * -ENOMEM.
 */
int vt_trainer_new(vt_model *m, const vt_train_cfg *cfg, vt_trainer **out, char *err,
                   size_t errlen);
void vt_trainer_free(vt_trainer **t);
const vt_train_cfg *vt_trainer_cfg(const vt_trainer *t);
vt_model *vt_trainer_model(vt_trainer *t);
/* Use Winograd F(2x2,3x3) for the 3x3 stride-1 convolutions (default on; numerically equal to
 * im2col within float rounding). */
void vt_trainer_set_winograd(vt_trainer *t, int on);
int64_t vt_trainer_steps_done(const vt_trainer *t);
/* Wall-clock seconds of training so far (kept in checkpoints; the caller adds its time). */
double vt_trainer_wall(const vt_trainer *t);
void vt_trainer_set_wall(vt_trainer *t, double seconds);
/* Loss of every step done (n = steps done), for the CSV/plot. */
const float *vt_trainer_losses(const vt_trainer *t, int64_t *n);

/* Colorize: fit k-means (cfg.ncolors clusters) to the ab colours of feature cells sampled
 * from the data (deterministic for the seed). Must run before the first step. */
int vt_trainer_fit_colors(vt_trainer *t, const vt_train_data *d, char *err, size_t errlen);
/* Colorize: the centroids (ncolors x {a, b}, Lab units), NULL before they are fitted. */
const float *vt_trainer_colors(const vt_trainer *t, int *k);

/* sample + forward_backward + update. */
int vt_trainer_step(vt_trainer *t, const vt_train_data *d, vt_train_step_info *info);

/*
 * Checkpoint: parameters (with running statistics), optimiser moments, generator state, step,
 * configuration, colours and loss history, as a safetensors file written atomically (temporary
 * file, fsync, rename). `data_desc` (may be NULL) is stored to warn when a resume uses other
 * data. 0 or -errno with a message naming the file.
 */
int vt_trainer_save(const vt_trainer *t, const char *path, const char *data_desc, char *err,
                    size_t errlen);
/*
 * Load a checkpoint: creates *m and *t as they were when saved (the caller frees both).
 * `data_desc` (may be NULL) receives the stored description (up to len bytes).
 */
int vt_trainer_load(const char *path, vt_model **m, vt_trainer **t, char *data_desc, size_t len,
                    char *err, size_t errlen);
/*
 * Write the inference weights (vt_model_load's format: parameters with the running
 * statistics, which the loader folds into the convolutions) with the training metadata:
 * vtrack.prop.temperature, vtrack.prop.l2norm, vtrack.train.*, and for colorize the
 * centroids. `sources` (may be NULL) is recorded as vtrack.train.data.
 */
int vt_trainer_export(vt_trainer *t, const char *path, const char *sources, char *err,
                      size_t errlen);

/* ---------------------------------------------------------------------------------------------
 * Fine-tuning trained weights (train/train_adapt.c): `vtrack track --adapt`
 * ------------------------------------------------------------------------------------------- */

/*
 * The training configuration the weights of m record (vtrack.train.objective, .radius, .crop,
 * vtrack.prop.temperature) over vt_train_cfg_default's: a fine-tuning continues the training
 * that made them. Only mast weights: -EINVAL (message in err) for others.
 */
int vt_train_cfg_from_model(const vt_model *m, vt_train_cfg *c, char *err, size_t errlen);

/*
 * Fine-tune m in place: cfg->steps trainer steps on d starting from m's own parameters, then
 * `provenance` (may be NULL) recorded as the vtrack.adapt metadata and the batch-norm folded
 * again, so m tracks with the new weights. `log` (may be NULL) gets a progress line; `loss`
 * (may be NULL) the mean loss of the first and of the last tenth of the steps. 0, or a
 * negative errno with the message in err (-EDOM: the loss became NaN/infinite).
 */
int vt_train_adapt(vt_model *m, const vt_train_data *d, const vt_train_cfg *cfg,
                   const char *provenance, FILE *log, double loss[2], char *err, size_t errlen);

/* ---------------------------------------------------------------------------------------------
 * Batch-norm statistics taken again (train/train_bnstats.c): `vtrack recalibrate`
 * ------------------------------------------------------------------------------------------- */

typedef struct vt_bn_stats_opts {
    int batch;     /* crops per batch (2 to 256); each batch is normalised with its own stats */
    int crop;      /* crop side in pixels, taken from the cached frames without resizing */
    int batches;   /* batches in all; the statistics are their mean */
    uint64_t seed; /* which frames and where: a fixed seed gives bitwise the same statistics */
} vt_bn_stats_opts;

/* batch 8, crop 256, 200 batches, seed 1 (docs/TRAINING.md says why). */
void vt_bn_stats_opts_default(vt_bn_stats_opts *o);
/* What vt_bn_stats checks before it reads a frame: m has batch-norm layers (not `lab`) and o's
 * settings are in range. 0 or -EINVAL with the message in err. */
int vt_bn_stats_check(const vt_model *m, const vt_bn_stats_opts *o, char *err, size_t errlen);

/*
 * Replace the running mean and variance of every batch-norm layer of m with those of the
 * frames of d, seen as the tracker sees a frame (d's frames at their cached size, converted as
 * the encoder's input is at inference): o->batches batches of o->batch crops of o->crop pixels,
 * each from a frame drawn uniformly from d at a uniform position; each layer's statistic is
 * the mean over the batches of the batch mean and of the unbiased batch variance, every layer
 * normalised with its batch's statistics (PyTorch's BatchNorm2d in training mode with
 * momentum=None). No other parameter changes. Records how in the vtrack.bn_stats metadata and
 * folds the batch-norm again, so m tracks with the new statistics. 0, or a negative errno with
 * the message in err (-EINVAL: `lab` features, bad settings, or a crop larger than a frame);
 * after a failure m's statistics are partly replaced: discard it.
 */
int vt_bn_stats(vt_model *m, const vt_train_data *d, const vt_bn_stats_opts *o, FILE *log,
                char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* VT_TRAIN_H */
