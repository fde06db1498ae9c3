/*
 * train_int.h - train/'s internal header: the random generator, the ops with backward passes
 * (train_ops.c), the training-mode executor of an architecture table (train_net.c), the batch
 * and the trainer's state (train.c, train_ckpt.c), and the steps of vt_trainer_step one by one.
 * Used by train/ and its tests only; other modules use vt_train.h.
 *
 * Built on model's internal interface (model/internal/nn.h and safetensors.h, through the meson
 * dependency vtmodel_internal_dep).
 * Conventions as nn.h: float32 NCHW; every function states its shapes. Backward functions
 * ACCUMULATE into the gradients they are given (callers zero them), which is what a graph
 * with fan-out (a block input feeding a conv and a residual) needs.
 */
#ifndef VT_TRAIN_INT_H
#define VT_TRAIN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "nn.h"
#include "vt_train.h"

/* ---------------------------------------------------------------------------------------------
 * Random numbers (xoshiro256**, seeded through splitmix64)
 * ------------------------------------------------------------------------------------------- */

typedef struct vt_rng {
    uint64_t s[4];
} vt_rng;

void vtt_rng_seed(vt_rng *r, uint64_t seed);
uint64_t vtt_rng_u64(vt_rng *r);
/* Uniform in [0, 1). */
double vtt_rng_unit(vt_rng *r);
/* Uniform integer in [lo, hi] (inclusive; hi >= lo). */
int vtt_rng_int(vt_rng *r, int lo, int hi);
/* A cached frame of d drawn uniformly over all of them (total = vt_train_data_frames(d) > 0):
 * video *v, position *j in it (train/train_data.c). */
void vtt_data_pick(vt_rng *r, const vt_train_data *d, int64_t total, int *v, int *j);

/* ---------------------------------------------------------------------------------------------
 * Ops with backward passes (train/train_ops.c). Shapes next to each; gradients accumulate.
 * ------------------------------------------------------------------------------------------- */

/* Scratch floats vtt_tr_conv_backward needs for one image of h x w (input size). */
size_t vtt_tr_conv_bwd_scratch(const vt_conv *cv, int h, int w);
/*
 * Backward of z = conv(x, w) + b (cv->relu must be 0; the epilogue's ReLU/residual are separate
 * ops in training). x (n, cin, h, w), dz (n, cout, oh, ow). Accumulates dw [cout][cin][k][k],
 * db [cout] (NULL: no bias) and dx (x's shape; NULL: not needed, e.g. the network input).
 * `scratch` holds vtt_tr_conv_bwd_scratch() floats.
 */
int vtt_tr_conv_backward(const vt_conv *cv, const vt_tensor *x, const vt_tensor *dz, float *dw,
                         float *db, vt_tensor *dx, float *scratch);

/*
 * Batch-norm in training mode over (n, h, w) per channel: y = (z - mean) * invstd * gamma + beta
 * with the batch's biased variance; saves mean[c], invstd[c]. When running_mean/var are not
 * NULL they are updated as PyTorch does: r = (1 - momentum) r + momentum * stat, with the
 * unbiased variance (M / (M - 1)) for running_var. z and y are (n, c, h, w); y may alias z.
 */
void vtt_tr_bn_forward(const vt_tensor *z, const float *gamma, const float *beta, float eps,
                       float momentum, float *running_mean, float *running_var, float *mean,
                       float *invstd, vt_tensor *y);
/* Backward of the above given the forward's input z and saved mean/invstd: accumulates
 * dgamma, dbeta [c] and WRITES dz (z's shape; may alias dy). */
void vtt_tr_bn_backward(const vt_tensor *z, const float *mean, const float *invstd,
                        const float *gamma, const vt_tensor *dy, float *dgamma, float *dbeta,
                        vt_tensor *dz);

/* ReLU backward in place: d[i] = 0 where y[i] <= 0 (y is the ReLU's output). n floats. */
void vtt_tr_relu_backward(const float *y, float *d, size_t n);

/* Max-pool backward (PyTorch semantics: the gradient goes to the first maximum of each window,
 * padding counts as -inf). x (n, c, h, w), dy (n, c, oh, ow); accumulates dx (x's shape). */
int vtt_tr_maxpool_backward(const vt_tensor *x, int k, int stride, int pad, const vt_tensor *dy,
                            vt_tensor *dx);

/* Channel L2 normalisation, F.normalize(dim=1, eps): y = x / max(||x||, eps) per pixel; saves
 * the norms nrm [n][h*w]. x, y (n, c, h, w), may not alias. */
void vtt_tr_l2norm_forward(const vt_tensor *x, float eps, vt_tensor *y, float *nrm);
/* Backward: accumulates dx from dy, given y and the saved norms. */
void vtt_tr_l2norm_backward(const vt_tensor *y, const float *nrm, float eps, const vt_tensor *dy,
                            vt_tensor *dx);

/*
 * Windowed attention of one target frame onto one reference frame, on an h x w cell grid
 * (N = h*w), features C x N (CHW; unit norm in use, not required), values V x N:
 *   s[q][p] = <ft[:, q], fr[:, p]> / T    for p in the window |py-qy| <= r, |px-qx| <= r
 *   a[q][:] = softmax(s[q][:]) over the window (exactly 0 outside); radius < 0: every cell
 *   y[:, q] = sum_p a[q][p] vals[:, p]
 * Writes a (N x N, kept for the backward) and y (V x N).
 */
void vtt_tr_attn_forward(const float *ft, const float *fr, int c, int h, int w, int radius,
                         float temperature, const float *vals, int v, float *a, float *y);
/* Backward: from dy (V x N) accumulates dft and dfr (C x N; either may be NULL). `da` is
 * N x N scratch. Values get no gradient (they are data). */
void vtt_tr_attn_backward(const float *ft, const float *fr, int c, int h, int w, float temperature,
                          const float *vals, int v, const float *a, const float *dy, float *da,
                          float *dft, float *dfr);

/* Smooth L1 (Huber) as F.smooth_l1_loss(scale*y, scale*t, beta=1, 'sum'): returns the sum over
 * n elements and writes dy = d(sum)/dy * gscale (gscale = 1/count for a mean). */
double vtt_tr_smoothl1(const float *y, const float *t, size_t n, float scale, float gscale,
                       float *dy);
/* Cross-entropy on probabilities: p is V x N (columns sum to 1), cls[N] the true class;
 * returns sum_q -log(p[cls[q]][q] + eps) and writes dp (V x N) = gradient * gscale. */
double vtt_tr_nll_prob(const float *p, const int32_t *cls, int v, int n, float eps, float gscale,
                       float *dp);

/* ---------------------------------------------------------------------------------------------
 * Training-mode executor of an architecture table (train/train_net.c)
 * ------------------------------------------------------------------------------------------- */

typedef struct vt_tnet vt_tnet;

/* A training executor for model m (borrowed, must outlive it). Parameters are read from and
 * running statistics written to the model's vt_param tensors. */
int vtt_tnet_new(vt_model *m, vt_tnet **out);
void vtt_tnet_free(vt_tnet **t);
/* Size every buffer for an input of (n, 3, h, w); allocation happens here only. */
int vtt_tnet_plan(vt_tnet *t, int n, int h, int w);
/*
 * Forward in training mode: BN normalises with the batch's statistics, and each running
 * statistic becomes (1 - momentum) * itself + momentum * the batch's (PyTorch's rule: the
 * unbiased variance); momentum 0 leaves them, 1/k after k batches keeps their plain mean.
 * x is (n, 3, h, w) as planned. *out borrows the output activation.
 */
int vtt_tnet_forward(vt_tnet *t, const vt_tensor *x, float momentum, const vt_tensor **out);
/* The gradient buffer of the output, (out's shape): the caller writes dL/dout there. */
vt_tensor *vtt_tnet_out_grad(vt_tnet *t);
/* Backward through every layer; accumulates into the parameter gradients (see vtt_tnet_grad). */
int vtt_tnet_backward(vt_tnet *t);
/* Zero every parameter gradient. */
void vtt_tnet_zero_grad(vt_tnet *t);
/* Gradient of model parameter i (vtm_model_param order); NULL for running statistics. */
float *vtt_tnet_grad(vt_tnet *t, int i);
/* Use Winograd F(2x2,3x3) for 3x3 stride-1 convolutions (forward and input gradient). */
void vtt_tnet_set_winograd(vt_tnet *t, int on);
/* Bytes held by the executor's buffers. */
size_t vtt_tnet_bytes(const vt_tnet *t);

/* ---------------------------------------------------------------------------------------------
 * Batch-norm statistics (train/train_bnstats.c)
 * ------------------------------------------------------------------------------------------- */

/* vt_bn_stats's batch (train/train_bnstats.c): n crops of S x S pixels, each from a frame of d
 * drawn uniformly with r at a uniform position, converted as the encoder's input (in: n x 3 x
 * S x S floats). Every video of d must be at least S x S. */
void vtt_bn_stats_sample(const vt_model *m, const vt_train_data *d, vt_rng *r, int n, int S,
                         float *in);

/* ---------------------------------------------------------------------------------------------
 * The trainer's internals (train/train.c, train/train_ckpt.c)
 * ------------------------------------------------------------------------------------------- */

/*
 * One batch: pairs b = 0..B-1, encoder frames 0..B-1 the references and B..2B-1 the targets.
 * N = fh*fw feature cells, V = value channels (3 Lab for MAST, ncolors one-hot for colorize).
 */
typedef struct vt_train_batch {
    int B, S, fh, fw, V;
    float *input;     /* [2B][3][S][S] normalised network input (dropped channel / grey) */
    float *ref_val;   /* [B][V][N] reference values at feature resolution */
    float *tgt_val;   /* [B][3][N] MAST: the target's normalised Lab at feature resolution */
    int32_t *tgt_cls; /* [B][N] colorize: the target's colour class per cell */
    int32_t *ref_cls; /* [B][N] colorize: the reference's colour class per cell */
    int *drop;        /* [B] MAST: dropped channel (1 = a, 2 = b) */
    uint8_t *rgb;     /* [2B][S][S][3] clean crops (references then targets) */
} vt_train_batch;

/* The trainer's executor. */
vt_tnet *vtt_trainer_net(vt_trainer *t);
/* Colorize: set/get the centroids (ncolors x {a, b}, Lab units). */
int vtt_trainer_set_colors(vt_trainer *t, const float *ab, int k);
/* The trainer's batch buffers. */
vt_train_batch *vtt_trainer_batch(vt_trainer *t);
/* Draw the next batch from d with the trainer's generator (pairs, crops, flips, jitter). */
int vtt_trainer_sample(vt_trainer *t, const vt_train_data *d);
/*
 * Build a batch from given clean RGB crops: rgb [2B][S][S][3] (references then targets), one
 * drop channel per pair (MAST; NULL: draw them) and no jitter. For tests and references.
 */
int vtt_trainer_set_batch(vt_trainer *t, const uint8_t *rgb, const int *drop);
/* Forward and backward on the current batch: zeroes and fills the parameter gradients,
 * updates the BN running statistics, returns the loss. */
int vtt_trainer_forward_backward(vt_trainer *t, double *loss);
/* Clip, AdamW step at the scheduled learning rate, record the loss, step++. */
int vtt_trainer_update(vt_trainer *t, double loss, vt_train_step_info *info);
/* Learning rate of step s (0-based) under the schedule. */
double vtt_trainer_lr_at(const vt_trainer *t, int64_t s);

/* Optimiser state of parameter i (NULL for running statistics). */
float *vtt_trainer_adam_m(vt_trainer *t, int i);
float *vtt_trainer_adam_v(vt_trainer *t, int i);

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
int vtt_train_cfg_check(const vt_train_cfg *c, char *err, size_t errlen);

#endif /* VT_TRAIN_INT_H */
