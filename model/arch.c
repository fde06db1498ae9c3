/*
 * arch.c - the architectures as layer tables (see nn.h, vt_layer_spec).
 *
 * Tables are built once by small builders that mirror the published PyTorch module code, so
 * every parameter name is the state-dict key of the reference implementation (after the
 * converter strips wrapper prefixes such as `module.` or `feature_extraction.`):
 *
 *   mast-r18   MAST (Lai et al., CVPR 2020, zlai0/MAST models/submodule.py ResNet18 and
 *              models/mast.py): conv1 = 7x7/2 3->64 + BN + ReLU (no max-pool); layer1 64 x2,
 *              layer2 128 x2 (first block stride 2), layer3 256 x2, layer4 256 x2 (stride 1);
 *              ResidualBlock = left(3x3/s + BN + ReLU + 3x3 + BN) + shortcut(1x1/s + BN when the
 *              stride or width changes), then ReLU; post_convolution 3x3 256->64 with bias.
 *              Output stride 4. Input Lab: (L - 50)/50, a/127, b/127 (MAST's loaders).
 *   r18-s8     torchvision ResNet-18 through layer3 with layer3's stride set to 1 (CRW's test
 *              encoder, ajabri/videowalk code/resnet.py): conv1 7x7/2 + bn1 + ReLU, max-pool
 *              3/2 pad 1, layer1 64 x2, layer2 128 x2 (/2), layer3 256 x2 (/1, 1x1 downsample).
 *              Output stride 8, 256 channels. Input RGB in [0,1] with ImageNet mean/std.
 *   compact-s8 vtrack's real-time encoder: conv 3x3/2 3->32, conv 3x3/2 32->64, one BasicBlock
 *              at 64, conv 3x3/2 64->64, two BasicBlocks at 64 (BN + ReLU after each conv),
 *              then a 1x1 conv 64->64 with bias and no BN/ReLU. Output stride 8, 64 channels,
 *              about 1 GMAC at 448x256. Input Lab: (L - 50)/50, a/110, b/110.
 *   lab        no layers: pooled Lab patches (labfeat.c). Stride 8, 27 channels.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "nn.h"

static vt_arch arch_mast, arch_r18, arch_compact, arch_lab;
static pthread_once_t arch_once = PTHREAD_ONCE_INIT;

/* Append a layer of that geometry (dilation 1), the rest zero; the caller fills in the rest. */
static vt_layer_spec *add_layer(vt_arch *a, vt_layer_kind kind, int cin, int cout, int k,
                                int stride, int pad, int src, int res) {
    vt_layer_spec *l = &a->layers[a->n_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->cin = cin;
    l->cout = cout;
    l->k = k;
    l->stride = stride;
    l->pad = pad;
    l->dil = 1;
    l->src = src;
    l->res = res;
    return l;
}

/* Append a conv layer; returns its index. bn may be NULL. */
static int add_conv(vt_arch *a, const char *conv, const char *bn, int cin, int cout, int k,
                    int stride, int pad, int bias, int relu, int src, int res) {
    vt_layer_spec *l = add_layer(a, VT_LAYER_CONV, cin, cout, k, stride, pad, src, res);
    snprintf(l->conv, sizeof l->conv, "%s", conv);
    snprintf(l->bn, sizeof l->bn, "%s", bn ? bn : "");
    l->bias = bias;
    l->relu = relu;
    return a->n_layers - 1;
}

static int add_maxpool(vt_arch *a, int k, int stride, int pad, int cin, int src) {
    add_layer(a, VT_LAYER_MAXPOOL, cin, cin, k, stride, pad, src, VT_SRC_NONE);
    return a->n_layers - 1;
}

static int last(const vt_arch *a) {
    return a->n_layers - 1;
}

/* A residual block under prefix p (e.g. "layer2.0"): conv 3x3 (stride) + BN + ReLU, conv 3x3 + BN
 * added to the input, or where the shape changes to its 1x1 projection + BN, then ReLU. The
 * parameters are "<p>.<names[i]>": the first conv and its BN, the second's, the projection's. */
static void residual_block(vt_arch *a, const char *p, const char *const names[6], int cin, int cout,
                           int stride) {
    char n[6][64];
    for (int i = 0; i < 6; i++)
        snprintf(n[i], sizeof n[i], "%s.%s", p, names[i]);
    int in = last(a);
    int left = add_conv(a, n[0], n[1], cin, cout, 3, stride, 1, 0, 1, in, VT_SRC_NONE);
    int sc = in;
    if (stride != 1 || cin != cout)
        sc = add_conv(a, n[4], n[5], cin, cout, 1, stride, 0, 0, 0, in, VT_SRC_NONE);
    add_conv(a, n[2], n[3], cout, cout, 3, 1, 1, 0, 1, left, sc);
}

/* MAST's ResidualBlock. */
static void mast_block(vt_arch *a, const char *p, int cin, int cout, int stride) {
    static const char *const names[6] = {"left.0", "left.1",     "left.3",
                                         "left.4", "shortcut.0", "shortcut.1"};
    residual_block(a, p, names, cin, cout, stride);
}

/* torchvision's BasicBlock, its projection named `down`; also vtrack's compact blocks. */
static void basic_block(vt_arch *a, const char *p, int cin, int cout, int stride,
                        const char *down) {
    char d0[32], d1[32];
    snprintf(d0, sizeof d0, "%s.0", down);
    snprintf(d1, sizeof d1, "%s.1", down);
    const char *const names[6] = {"conv1", "bn1", "conv2", "bn2", d0, d1};
    residual_block(a, p, names, cin, cout, stride);
}

static void set_io(vt_arch *a, const char *name, const char *doc, const char *input, float m0,
                   float m1, float m2, float s0, float s1, float s2, int stride, int channels) {
    a->name = name;
    a->doc = doc;
    a->input = input;
    a->mean[0] = m0, a->mean[1] = m1, a->mean[2] = m2;
    a->std[0] = s0, a->std[1] = s1, a->std[2] = s2;
    a->stride = stride;
    a->channels = channels;
    a->learned = 1;
}

static void build(void) {
    char p[32];
    vt_arch *a = &arch_mast;
    set_io(a, "mast-r18", "MAST's ResNet-18 encoder (output stride 4, 64-d)", "lab", 50, 0, 0, 50,
           127, 127, 4, 64);
    add_conv(a, "conv1.0", "conv1.1", 3, 64, 7, 2, 3, 0, 1, VT_SRC_INPUT, VT_SRC_NONE);
    static const int mw[4] = {64, 128, 256, 256}, ms[4] = {1, 2, 1, 1};
    int cin = 64;
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < 2; b++) {
            snprintf(p, sizeof p, "layer%d.%d", l + 1, b);
            mast_block(a, p, cin, mw[l], b == 0 ? ms[l] : 1);
            cin = mw[l];
        }
    add_conv(a, "post_convolution", NULL, 256, 64, 3, 1, 1, 1, 0, last(a), VT_SRC_NONE);

    a = &arch_r18;
    set_io(a, "r18-s8", "torchvision ResNet-18 to layer3, layer3 stride 1 (output stride 8)", "rgb",
           0.485f, 0.456f, 0.406f, 0.229f, 0.224f, 0.225f, 8, 256);
    add_conv(a, "conv1", "bn1", 3, 64, 7, 2, 3, 0, 1, VT_SRC_INPUT, VT_SRC_NONE);
    add_maxpool(a, 3, 2, 1, 64, last(a));
    static const int rw[3] = {64, 128, 256}, rs[3] = {1, 2, 1};
    cin = 64;
    for (int l = 0; l < 3; l++)
        for (int b = 0; b < 2; b++) {
            snprintf(p, sizeof p, "layer%d.%d", l + 1, b);
            basic_block(a, p, cin, rw[l], b == 0 ? rs[l] : 1, "downsample");
            cin = rw[l];
        }

    a = &arch_compact;
    set_io(a, "compact-s8", "vtrack's compact real-time encoder (output stride 8, 64-d)", "lab", 50,
           0, 0, 50, 110, 110, 8, 64);
    add_conv(a, "conv1", "bn1", 3, 32, 3, 2, 1, 0, 1, VT_SRC_INPUT, VT_SRC_NONE);
    add_conv(a, "conv2", "bn2", 32, 64, 3, 2, 1, 0, 1, last(a), VT_SRC_NONE);
    basic_block(a, "block1", 64, 64, 1, "downsample");
    add_conv(a, "conv3", "bn3", 64, 64, 3, 2, 1, 0, 1, last(a), VT_SRC_NONE);
    basic_block(a, "block2", 64, 64, 1, "downsample");
    basic_block(a, "block3", 64, 64, 1, "downsample");
    add_conv(a, "head", NULL, 64, 64, 1, 1, 0, 1, 0, last(a), VT_SRC_NONE);

    a = &arch_lab;
    set_io(a, "lab", "pooled Lab patches, 3x3 neighbourhood of 8x8 cells (27-d, no weights)", "lab",
           0, 0, 0, 100, 128, 128, 8, 27);
    a->learned = 0;
}

static const vt_arch *all_archs(int i) {
    pthread_once(&arch_once, build);
    const vt_arch *t[] = {&arch_mast, &arch_r18, &arch_compact, &arch_lab};
    return i < 4 ? t[i] : NULL;
}

const vt_arch *vtm_arch_find(const char *name) {
    if (!name)
        return NULL;
    for (int i = 0; all_archs(i); i++)
        if (strcmp(all_archs(i)->name, name) == 0)
            return all_archs(i);
    return NULL;
}

const char *const *vt_model_arch_names(void) {
    static const char *const names[] = {"mast-r18", "r18-s8", "compact-s8", "lab", NULL};
    return names;
}

vt_conv vtm_layer_geom(const vt_layer_spec *l, vt_pad_mode pad) {
    return (vt_conv){.cin = l->cin,
                     .cout = l->cout,
                     .k = l->k,
                     .stride = l->stride,
                     .pad = l->pad,
                     .dil = l->dil,
                     .pad_mode = pad};
}

void vtm_arch_shapes(const vt_arch *a, int h, int w, int *ih, int *iw, int *oh, int *ow) {
    for (int i = 0; i < a->n_layers; i++) {
        const vt_layer_spec *l = &a->layers[i];
        int sh = l->src == VT_SRC_INPUT ? h : oh[l->src];
        int sw = l->src == VT_SRC_INPUT ? w : ow[l->src];
        if (ih)
            ih[i] = sh;
        if (iw)
            iw[i] = sw;
        if (l->kind == VT_LAYER_MAXPOOL) {
            oh[i] = vtm_pool_out(sh, l->k, l->stride, l->pad, 0);
            ow[i] = vtm_pool_out(sw, l->k, l->stride, l->pad, 0);
        } else {
            vt_conv cv = vtm_layer_geom(l, VT_PAD_ZEROS);
            vtm_conv_out_size(&cv, sh, sw, &oh[i], &ow[i]);
        }
        if (oh[i] < 0)
            oh[i] = 0;
        if (ow[i] < 0)
            ow[i] = 0;
    }
}

void vtm_arch_out_size(const vt_arch *a, int h, int w, int *oh, int *ow) {
    if (!a->learned) {
        int c;
        vtm_labfeat_size(h, w, &c, oh, ow);
        return;
    }
    int hs[VT_ARCH_MAX_LAYERS], ws[VT_ARCH_MAX_LAYERS];
    vtm_arch_shapes(a, h, w, NULL, NULL, hs, ws);
    *oh = hs[a->n_layers - 1];
    *ow = ws[a->n_layers - 1];
}

double vtm_arch_macs(const vt_arch *a, int h, int w) {
    if (!a->learned)
        return 0.0;
    int hs[VT_ARCH_MAX_LAYERS], ws[VT_ARCH_MAX_LAYERS];
    vtm_arch_shapes(a, h, w, NULL, NULL, hs, ws);
    double macs = 0.0;
    for (int i = 0; i < a->n_layers; i++) {
        const vt_layer_spec *l = &a->layers[i];
        if (l->kind == VT_LAYER_CONV)
            macs += (double)l->cout * l->cin * l->k * l->k * hs[i] * ws[i];
    }
    return macs;
}
