/*
 * train_int.h - the trainer's state, shared by model/train.c (steps) and model/train_ckpt.c
 * (checkpoints and export). Internal to model/.
 */
#ifndef VT_TRAIN_INT_H
#define VT_TRAIN_INT_H

#include "train.h"

struct vt_trainer {
    vt_model *m; /* borrowed; parameters updated in place */
    vt_train_cfg cfg;
    vt_tnet *net;
    int B, S, st, fh, fw, N, C, V;
    float mean[3], std[3]; /* input normalisation in force */
    vt_rng rng;
    int64_t step;
    vt_train_batch batch;
    /* activations and gradients after the encoder */
    float *u, *nrm, *du; /* unit features [2B][C][N], norms [2B][N], their gradient */
    float *att;          /* [B][N][N] attention weights */
    float *y, *dy;       /* [B][V][N] reconstruction and its gradient */
    float *da;           /* [N][N] scratch */
    float *pool;         /* [3][N] cell means */
    /* sampling scratch */
    float *lab, *lab_in; /* [3][S][S] */
    uint8_t *jrgb;       /* [S][S][3] */
    float *jit;          /* [2B][4] jitter (contrast, brightness, saturation, on) */
    int *xi;
    float *xf;
    /* optimiser */
    float **am, **av; /* per parameter (NULL for running statistics) */
    float *losses;    /* [cfg.steps] */
    float colors[2 * VT_TRAIN_MAX_COLORS];
    int have_colors;
    double wall; /* seconds spent training, over every resumed run */
};

/* Validate a configuration; message in err. */
int vt_train_cfg_check(const vt_train_cfg *c, char *err, size_t errlen);

#endif
