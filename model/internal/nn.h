/*
 * nn.h - model/'s internal neural-network layer: tensors, workspaces, ops, architecture tables,
 * parameter access and the layer-table executor. Not part of the public vt_model.h interface.
 *
 * One of the two headers of model/internal/, model's internal interface (the other is
 * safetensors.h): used by model/ itself, by the trainer (train/) and by the tests, which get
 * it through the meson dependency vtmodel_internal_dep. No other module may use it; their
 * vtmodel_dep sees model/include/ only.
 *
 * Conventions: float32, NCHW, row-major. Every op states its shapes; every op that takes an
 * output tensor expects the caller to have sized it (the op checks and returns -EINVAL on a
 * mismatch). No op allocates memory: scratch space comes from the caller (see vt_arena), so a
 * forward pass at a fixed input size allocates nothing after the first call.
 *
 * Architectures are data (vt_arch: a table of vt_layer_spec). The same table drives inference
 * (BN folded into the convolutions, vtm_net_forward) and is meant to drive training (unfolded
 * parameters from vtm_model_param(), forward with every activation kept, backward through
 * vtm_col2im and friends).
 */
#ifndef VT_NN_H
#define VT_NN_H

#include <stddef.h>
#include <stdint.h>

#include "vt_base.h"
#include "vt_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Tensors and workspaces
 * ------------------------------------------------------------------------------------------- */

/* A float32 NCHW tensor view. `data` is borrowed (arena, model or caller memory). */
typedef struct vt_tensor {
    int n, c, h, w;
    float *data;
} vt_tensor;

static inline size_t vtm_tensor_numel(const vt_tensor *t) {
    return (size_t)t->n * t->c * t->h * t->w;
}

/* 0 if t is non-NULL, has data and shape (n, c, h, w); else -EINVAL. */
int vtm_tensor_check(const vt_tensor *t, int n, int c, int h, int w);

/*
 * A bump allocator over one block of floats, 64-byte aligned slices. A user computes how many
 * floats a forward pass needs (vtm_arena_need adds one slice's rounded size), reserves once
 * (allocating only when the block is too small), then takes slices in the same order on every
 * pass. vtm_arena_reset() makes every slice available again without freeing.
 */
typedef struct vt_arena {
    float *base;
    size_t cap;  /* floats */
    size_t used; /* floats */
} vt_arena;

/* Floats a slice of n floats occupies (n rounded up to 16 floats = 64 bytes). */
size_t vtm_arena_need(size_t n);
/* Make the block hold at least `floats`; keeps it when big enough. 0 or -ENOMEM. */
int vtm_arena_reserve(vt_arena *a, size_t floats);
/* A slice of n floats, or NULL when the reservation was too small (a programming error). */
float *vtm_arena_take(vt_arena *a, size_t n);
void vtm_arena_reset(vt_arena *a);
/* Free the block; accepts an arena that never allocated. */
void vtm_arena_free(vt_arena *a);

/* ---------------------------------------------------------------------------------------------
 * Ops
 * ------------------------------------------------------------------------------------------- */

typedef enum vt_pad_mode {
    VT_PAD_ZEROS = 0,
    VT_PAD_REFLECT = 1, /* as torch's padding_mode='reflect' (CRW's encoder) */
} vt_pad_mode;

/* Index into a dimension of length n after padding: -1 for a zero, else the source index.
 * Reflection does not repeat the edge and is periodic, so any index lands inside. The rule of
 * conv.c's im2col and of its adjoint in train_ops.c's col2im. */
static inline int vtm_pad_index(int i, int n, vt_pad_mode mode) {
    if ((unsigned)i < (unsigned)n)
        return i;
    if (mode == VT_PAD_ZEROS)
        return -1;
    if (n == 1)
        return 0;
    int period = 2 * (n - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - i;
}

/* The output columns [*lo, *hi) of a row of ow whose source column ox * s + off is inside
 * [0, w); outside them vtm_pad_index decides. The split of conv.c's im2col and of col2im. */
static inline void vtm_conv_inside(int off, int s, int w, int ow, int *lo, int *hi) {
    int l = off >= 0 ? 0 : (-off + s - 1) / s;
    int h = w - off <= 0 ? 0 : (w - off - 1) / s + 1;
    if (h > ow)
        h = ow;
    if (l > h)
        l = h;
    *lo = l, *hi = h;
}

/* Batch-norm epsilon of every architecture (torch.nn.BatchNorm2d's default). */
#define VT_BN_EPS 1e-5f

/*
 * One 2-D convolution with its epilogue: y = act(conv(x, w) + b + res).
 * w is [cout][cin][k][k] (PyTorch's layout), b [cout] or NULL, res NULL or y's shape, act ReLU
 * when relu != 0. `wino` and `wino4` optionally hold the weights in the Winograd domains of
 * F(2x2, 3x3) (vtm_wino_weights) and F(4x4, 3x3) (vtm_wino4_weights); they are used only when the
 * geometry allows (3x3, stride 1, dilation 1). Leave them NULL (designated initialisers) to get
 * im2col.
 */
typedef struct vt_conv {
    int cin, cout;
    int k, stride, pad, dil;
    vt_pad_mode pad_mode;
    int relu;
    const float *w;
    const float *b;
    const float *wino;
    const float *wino4;
} vt_conv;

/* Output size of cv on an h x w input (PyTorch's floor arithmetic); <= 0 when empty. */
void vtm_conv_out_size(const vt_conv *cv, int h, int w, int *oh, int *ow);
/* Output rows per im2col block: the block of columns (C_in x k x k x rows x out_w floats) is
 * sized to stay in L2; the backward pass (train_ops.c) blocks its col2im the same way. */
int vtm_conv_im2col_rows(const vt_conv *cv, int oh, int ow);

/* Algorithms vtm_conv2d picks from (exposed for tests and benchmarks). */
typedef enum vt_conv_algo {
    VT_CONV_AUTO = 0,
    VT_CONV_IM2COL, /* tiled im2col + sgemm; any geometry */
    VT_CONV_1X1,    /* 1x1, stride 1, no padding: sgemm straight on the input */
    VT_CONV_WINO,   /* Winograd F(2x2, 3x3) + sgemm; 3x3, stride 1, dilation 1, needs cv->wino */
    VT_CONV_WINO4,  /* Winograd F(4x4, 3x3): 4x fewer multiplies than direct, needs cv->wino4 */
} vt_conv_algo;

/* The algorithm VT_CONV_AUTO resolves to for cv: 1x1 for 1x1 stride-1 unpadded, else F(4,3)
 * when cv->wino4 is set, else F(2,3) when cv->wino is set, else im2col. */
vt_conv_algo vtm_conv_pick(const vt_conv *cv);

/* Scratch floats vtm_conv2d needs for one image of h x w with algorithm `algo`. */
size_t vtm_conv_scratch(const vt_conv *cv, vt_conv_algo algo, int h, int w);

/*
 * y = act(conv(x) + b + res). x (n, cin, h, w); y (n, cout, oh, ow); res NULL or y's shape and
 * may not alias y. `scratch` holds vtm_conv_scratch() floats. Returns 0, or -EINVAL on a shape
 * mismatch or an algorithm the geometry does not allow.
 */
int vtm_conv2d(const vt_conv *cv, vt_conv_algo algo, const vt_tensor *x, const vt_tensor *res,
               vt_tensor *y, float *scratch);

/* im2col for one image: x [cin][h][w] -> col [cin*k*k][oh*ow] for output rows [oy0, oy1). */
void vtm_im2col(const vt_conv *cv, const float *x, int h, int w, int oy0, int oy1, float *col);
/* The adjoint of vtm_im2col (for backward passes): x += col2im(col), all output rows. */
void vtm_col2im(const vt_conv *cv, const float *col, int h, int w, float *x);

/* Floats of Winograd-domain weights for a cin -> cout 3x3 convolution. */
size_t vtm_wino_size(int cin, int cout);
/* Transform 3x3 weights w [cout][cin][3][3] into u [16][cout][cin] (U = G g G^T). */
void vtm_wino_weights(const float *w, int cin, int cout, float *u);
/* The same for F(4x4, 3x3): 36 * cin * cout floats, u [36][cout][cin]. */
size_t vtm_wino4_size(int cin, int cout);
void vtm_wino4_weights(const float *w, int cin, int cout, float *u);

/*
 * Winograd layers: the one driver both the inference executor (model.c: F(4x4, 3x3) on the
 * BN-folded weights, computed once per refold) and the trainer (train/train_net.c: F(2x2, 3x3)
 * on the raw weights, recomputed every step, plus the input gradient) use. A vt_wino_layer
 * holds one 3x3 convolution's weights in a Winograd domain and, with `adjoint`, the flipped,
 * transposed kernel whose Winograd convolution with dz is the input gradient.
 */
/* 1 when cv's geometry runs in a Winograd domain: 3x3, stride 1, dilation 1. */
int vtm_wino_fits(const vt_conv *cv);
/* 1 when, besides, its input gradient is exactly a Winograd convolution of dz (pad 1, zero
 * padding: the flipped kernel's convolution is then the adjoint). */
int vtm_wino_adjoint_fits(const vt_conv *cv);

typedef struct vt_wino_layer {
    vt_conv_algo algo; /* VT_CONV_WINO (F(2,3)) or VT_CONV_WINO4 (F(4,3)) */
    int cin, cout;
    float *u;    /* forward weights in the domain; NULL: the layer runs without Winograd */
    float *flip; /* adjoint only (else NULL): flipped kernel [cin][cout][3][3] */
    float *ub;   /* adjoint only: flip in the domain */
} vt_wino_layer;

/* Floats of a layer's buffers (64-byte aligned slices, as vt_arena's). */
size_t vtm_wino_layer_floats(vt_conv_algo algo, int cin, int cout, int adjoint);
/* Lay the buffers out in mem (vtm_wino_layer_floats() floats, 64-byte aligned for speed). */
void vtm_wino_layer_init(vt_wino_layer *wl, vt_conv_algo algo, int cin, int cout, int adjoint,
                         float *mem);
/* Transform weights w [cout][cin][3][3] into the domain (and the adjoint's). */
void vtm_wino_layer_update(vt_wino_layer *wl, const float *w);
/* Point cv's wino (F(2,3)) or wino4 (F(4,3)) at the domain weights; nothing when wl is NULL or
 * was never initialised. */
void vtm_wino_layer_attach(const vt_wino_layer *wl, vt_conv *cv);
/* Scratch floats vtm_wino_adjoint needs for dz of h x w. */
size_t vtm_wino_adjoint_scratch(vt_conv_algo algo, int cin, int cout, int h, int w);
/* dx += conv^T(dz) as a Winograd convolution: dz (n, cout, h, w), dx (n, cin, h, w); `tmp` holds
 * dx's element count, `scratch` vtm_wino_adjoint_scratch() floats. -EINVAL without adjoint. */
int vtm_wino_adjoint(const vt_wino_layer *wl, const vt_tensor *dz, vt_tensor *dx, float *tmp,
                     float *scratch);

/*
 * Fold inference batch-norm into the preceding convolution: for each output channel o,
 * s = gamma/sqrt(var + eps); w_out = w * s; b_out = (b - mean) * s + beta (b may be NULL).
 * `fan` = cin*k*k. w_out/b_out may alias w/b.
 */
void vtm_bn_fold(const float *w, const float *b, int cout, int fan, const float *gamma,
                 const float *beta, const float *mean, const float *var, float eps, float *w_out,
                 float *b_out);

/* In place: x = max(x, 0). */
void vtm_relu(vt_tensor *x);
/* y = a + b (ReLU'd when relu); all one shape; y may alias a or b. */
int vtm_add(const vt_tensor *a, const vt_tensor *b, int relu, vt_tensor *y);
/* Max-pool, padding counts as -inf (PyTorch's MaxPool2d, floor mode; NaN is not propagated,
 * see ops.c). y (n, c, oh, ow). */
int vtm_maxpool2d(const vt_tensor *x, int k, int stride, int pad, vt_tensor *y);
/* Output size of a pooling window: floor or ceil mode as PyTorch (no padding). */
int vtm_pool_out(int in, int k, int stride, int pad, int ceil_mode);
/*
 * Average pool without padding. ceil_mode 0: floor output size; 1: ceil, the last partial
 * windows averaging only the pixels inside the input (PyTorch's avg_pool2d(ceil_mode=True)).
 */
int vtm_avgpool2d(const vt_tensor *x, int k, int stride, int ceil_mode, vt_tensor *y);
/* Bilinear resize to y's h x w, align_corners=False (F.interpolate). y (x.n, x.c, oh, ow). */
int vtm_resize_bilinear(const vt_tensor *x, vt_tensor *y);
/* In place, per pixel: x[:, p] /= max(||x[:, p]||_2, eps) (F.normalize(dim=1)). */
void vtm_l2norm_channels(vt_tensor *x, float eps);

/* ---------------------------------------------------------------------------------------------
 * Architectures
 * ------------------------------------------------------------------------------------------- */

/* Layer sources: an earlier layer's index, the network input, or nothing. */
#define VT_SRC_INPUT (-1)
#define VT_SRC_NONE  (-2)

typedef enum vt_layer_kind {
    VT_LAYER_CONV,    /* y = relu?(BN(conv(src)) + res): conv, optional BN, residual, ReLU */
    VT_LAYER_MAXPOOL, /* y = maxpool(src, k, stride, pad) */
} vt_layer_kind;

#define VT_NAME_MAX 64

/*
 * One layer. Its parameters are named by PyTorch's state-dict keys:
 *   "<conv>.weight" [cout][cin][k][k], "<conv>.bias" [cout] when bias,
 *   "<bn>.weight", "<bn>.bias", "<bn>.running_mean", "<bn>.running_var" [cout] when bn[0].
 * Evaluation order is the table order; `src` and `res` refer to earlier layers.
 */
typedef struct vt_layer_spec {
    vt_layer_kind kind;
    char conv[VT_NAME_MAX];
    char bn[VT_NAME_MAX];
    int cin, cout;
    int k, stride, pad, dil;
    int bias;
    int relu;
    int src; /* layer index or VT_SRC_INPUT */
    int res; /* layer index added after BN and before ReLU, or VT_SRC_NONE */
} vt_layer_spec;

#define VT_ARCH_MAX_LAYERS 32

typedef struct vt_arch {
    const char *name;
    const char *doc;       /* one line: what it is, where it comes from */
    const char *input;     /* "lab" or "rgb": colour space of the input */
    float mean[3], std[3]; /* default normalisation: (x - mean)/std, x in the colour space's
                              units (RGB in [0,1]; L in [0,100], a and b in about +-128) */
    int stride;            /* output stride */
    int channels;          /* output channels */
    int learned;           /* 0 for `lab`: no layers, no weights */
    int n_layers;          /* the last layer's output is the feature map */
    vt_layer_spec layers[VT_ARCH_MAX_LAYERS];
} vt_arch;

/* The table of a known architecture, or NULL. Static storage. */
const vt_arch *vtm_arch_find(const char *name);
/* Layer l's geometry as a convolution (channels, kernel, stride, padding, dilation) with padding
 * `pad`; no ReLU, no weights: the caller adds what it runs. */
vt_conv vtm_layer_geom(const vt_layer_spec *l, vt_pad_mode pad);
/* The one walk of a table's shapes at an h x w input: for every layer i its input size
 * ih[i] x iw[i] (either may be NULL) and output size oh[i] x ow[i] (0 when the input is too
 * small). Arrays of a->n_layers. */
void vtm_arch_shapes(const vt_arch *a, int h, int w, int *ih, int *iw, int *oh, int *ow);
/* Output size of the whole table for an h x w input. */
void vtm_arch_out_size(const vt_arch *a, int h, int w, int *oh, int *ow);
/* Multiply-accumulates of the table's convolutions (direct-convolution count) at h x w. */
double vtm_arch_macs(const vt_arch *a, int h, int w);

/* ---------------------------------------------------------------------------------------------
 * Model parameters (the unfolded, trainable tensors, as in the weights file)
 * ------------------------------------------------------------------------------------------- */

typedef struct vt_param {
    char name[VT_NAME_MAX + 16];
    int ndim;
    int shape[4];
    size_t numel;
    float *data; /* owned by the model */
} vt_param;

/* The architecture table of a model. */
const vt_arch *vtm_model_spec(const vt_model *m);
/* The model's parameters in table order (conv weight, conv bias, BN weight, bias, running
 * mean, running var per layer). Mutable: after changing them call vtm_model_refold(). */
int vtm_model_nparams(const vt_model *m);
vt_param *vtm_model_param(vt_model *m, int i);
vt_param *vtm_model_param_find(vt_model *m, const char *name);
/* Recompute the folded inference weights (and Winograd weights) from the parameters. No
 * encoder may be running meanwhile. 0 or -ENOMEM. */
int vtm_model_refold(vt_model *m);
/* Set (or with value NULL remove) a metadata entry, written by vt_model_save. 0 or -ENOMEM. */
int vtm_model_set_meta(vt_model *m, const char *key, const char *value);
/* The normalisation in force (from the metadata, else the architecture's default). */
const char *vtm_model_input_space(const vt_model *m);
void vtm_model_norm(const vt_model *m, float mean[3], float std[3]);
vt_pad_mode vtm_model_pad_mode(const vt_model *m);
/* vt_model_load from a safetensors image in memory (`name` labels the messages; the fuzz
 * target's entry). */
int vtm_model_load_mem(const uint8_t *buf, size_t size, const char *name, vt_model **out, char *err,
                       size_t errlen);

/*
 * Convert an RGB image into the model's normalised input planes out[3][h][w] (Lab or RGB,
 * (x - mean)/std). `out` holds 3*w*h floats.
 */
void vtm_model_preprocess(const vt_model *m, const vt_image *img, float *out);

/* ---------------------------------------------------------------------------------------------
 * Executor
 * ------------------------------------------------------------------------------------------- */

typedef struct vt_net vt_net;

/*
 * An executor of a learned model's layer table with its own workspace. keep_all = 0 reuses
 * activation buffers (inference); keep_all = 1 keeps every layer's output until the next
 * forward (for training's backward and for tests). The model must outlive the net.
 */
int vtm_net_new(const vt_model *m, int keep_all, vt_net **out);
void vtm_net_free(vt_net **net);
/*
 * Run the table on x (n, 3, h, w), already normalised (vtm_model_preprocess). *out borrows the
 * last layer's output until the next forward. The first call at a shape sizes the workspace;
 * later calls at that shape allocate nothing. algo forces one convolution algorithm where the
 * geometry allows it (VT_CONV_AUTO in production; tests compare algorithms).
 */
int vtm_net_forward(vt_net *net, const vt_tensor *x, vt_conv_algo algo, const vt_tensor **out);
/* The output of layer i of the last forward (keep_all nets; else only the last layer). */
const vt_tensor *vtm_net_activation(const vt_net *net, int i);
/* Bytes the workspace holds (for the allocation tests and the benchmark). */
size_t vtm_net_workspace_bytes(const vt_net *net);

/* ---------------------------------------------------------------------------------------------
 * `lab` features (model/labfeat.c)
 * ------------------------------------------------------------------------------------------- */

/* Feature size of the `lab` encoder at an h x w input. */
void vtm_labfeat_size(int h, int w, int *c, int *fh, int *fw);
/* Scratch floats vtm_labfeat needs at h x w. */
size_t vtm_labfeat_scratch(int h, int w);
/* out [27][fh][fw] from img; see labfeat.c for the definition. */
void vtm_labfeat(const vt_image *img, float *scratch, float *out);

#ifdef __cplusplus
}
#endif

#endif /* VT_NN_H */
