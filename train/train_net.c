/*
 * train_net.c - the architecture table run in training mode: convolutions on the unfolded
 * weights, batch-norm with batch statistics, residual adds and ReLUs as separate steps whose
 * inputs are kept, and the backward pass through all of them.
 *
 * Per conv layer i of the table (nn.h, vt_layer_spec):
 *   z_i = conv(x_src, W) + b            (kept when the layer has BN: its backward needs z)
 *   h_i = BN_train(z_i) or z_i
 *   y_i = relu?(h_i + y_res)            (kept: the ReLU mask is y_i > 0, later layers read it)
 * Backward, last layer first, with g_i = dL/dy_i accumulated from every reader:
 *   g_i *= (y_i > 0);  g_res += g_i;  dz = BN_backward(g_i);  dW, db, g_src += conv^T(dz)
 *
 * Buffers for one (n, h, w) are planned once (vtt_tnet_plan); forward and backward allocate
 * nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_int.h"

struct vt_tnet {
    vt_model *m;
    const vt_arch *a;
    int L;
    int np;
    /* parameter indices per layer, -1 when absent */
    int pw[VT_ARCH_MAX_LAYERS], pb[VT_ARCH_MAX_LAYERS], pbn[VT_ARCH_MAX_LAYERS];
    float **grad; /* per parameter (NULL for running statistics) */
    float *grad_block;
    size_t grad_floats;
    int n, h, w; /* planned input */
    vt_tensor y[VT_ARCH_MAX_LAYERS], z[VT_ARCH_MAX_LAYERS], g[VT_ARCH_MAX_LAYERS];
    float *mean[VT_ARCH_MAX_LAYERS], *invstd[VT_ARCH_MAX_LAYERS];
    float *scratch, *dtmp;
    vt_tensor in; /* the last forward's input (borrowed: the caller keeps it until backward) */
    /* Winograd F(2,3) (model/conv.c's driver): forward weights and, where the layer allows,
     * the input gradient's */
    int wino;
    vt_wino_layer wl[VT_ARCH_MAX_LAYERS];
    vt_arena arena;
};

static int param_index(vt_model *m, const char *layer, const char *suffix) {
    char name[VT_NAME_MAX + 16];
    snprintf(name, sizeof name, "%s.%s", layer, suffix);
    vt_param *p = vtm_model_param_find(m, name);
    return p ? (int)(p - vtm_model_param(m, 0)) : -1;
}

int vtt_tnet_new(vt_model *m, vt_tnet **out) {
    *out = NULL;
    const vt_arch *a = vtm_model_spec(m);
    if (!a->learned)
        return -EINVAL;
    vt_tnet *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->m = m;
    t->a = a;
    t->L = a->n_layers;
    t->np = vtm_model_nparams(m);
    size_t off = 0;
    t->grad = calloc((size_t)t->np, sizeof *t->grad);
    if (!t->grad)
        goto oom;
    for (int i = 0; i < t->L; i++) {
        const vt_layer_spec *l = &a->layers[i];
        t->pw[i] = t->pb[i] = t->pbn[i] = -1;
        if (l->kind != VT_LAYER_CONV)
            continue;
        t->pw[i] = param_index(m, l->conv, "weight");
        if (l->bias)
            t->pb[i] = param_index(m, l->conv, "bias");
        if (l->bn[0])
            t->pbn[i] = param_index(m, l->bn, "weight");
        if (t->pw[i] < 0 || (l->bias && t->pb[i] < 0) || (l->bn[0] && t->pbn[i] < 0)) {
            vtt_tnet_free(&t);
            return -EINVAL;
        }
    }
    /* Gradients of the trainable tensors (not the running statistics) in one block. */
    for (int i = 0; i < t->np; i++) {
        const vt_param *p = vtm_model_param(m, i);
        if (!strstr(p->name, ".running_"))
            t->grad_floats += vtm_arena_need(p->numel);
    }
    if (posix_memalign((void **)&t->grad_block, 64, sizeof(float) * t->grad_floats) != 0) {
        t->grad_block = NULL;
        goto oom;
    }
    for (int i = 0; i < t->np; i++) {
        const vt_param *p = vtm_model_param(m, i);
        if (strstr(p->name, ".running_"))
            continue;
        t->grad[i] = t->grad_block + off;
        off += vtm_arena_need(p->numel);
    }
    vtt_tnet_zero_grad(t);
    *out = t;
    return 0;
oom:
    vtt_tnet_free(&t);
    return -ENOMEM;
}

void vtt_tnet_free(vt_tnet **pt) {
    if (!pt || !*pt)
        return;
    vt_tnet *t = *pt;
    free(t->grad);
    free(t->grad_block);
    vtm_arena_free(&t->arena);
    free(t);
    *pt = NULL;
}

void vtt_tnet_set_winograd(vt_tnet *t, int on) {
    if (t->wino != on)
        t->n = t->h = t->w = 0; /* re-plan: scratch sizes differ */
    t->wino = on;
}

/* The layer's geometry, without weights. */
static vt_conv layer_geom(const vt_tnet *t, int i) {
    return vtm_layer_geom(&t->a->layers[i], vtm_model_pad_mode(t->m));
}

/* 3x3 stride-1 dilation-1 layers run in the Winograd domain when enabled; so does the input
 * gradient where it is the exact adjoint (vtm_wino_adjoint_fits) and needed (not the input). */
static int wino_fwd(const vt_tnet *t, int i) {
    const vt_layer_spec *l = &t->a->layers[i];
    vt_conv g = layer_geom(t, i);
    return t->wino && l->kind == VT_LAYER_CONV && vtm_wino_fits(&g);
}

static int wino_bwd(const vt_tnet *t, int i) {
    vt_conv g = layer_geom(t, i);
    return wino_fwd(t, i) && t->a->layers[i].src != VT_SRC_INPUT && vtm_wino_adjoint_fits(&g);
}

static vt_conv layer_conv(const vt_tnet *t, int i) {
    vt_conv cv = layer_geom(t, i);
    cv.w = vtm_model_param(t->m, t->pw[i])->data;
    cv.b = t->pb[i] >= 0 ? vtm_model_param(t->m, t->pb[i])->data : NULL;
    if (wino_fwd(t, i))
        vtm_wino_layer_attach(&t->wl[i], &cv);
    return cv;
}

int vtt_tnet_plan(vt_tnet *t, int n, int h, int w) {
    const vt_arch *a = t->a;
    if (n < 1 || h < 1 || w < 1)
        return -EINVAL;
    if (t->n == n && t->h == h && t->w == w)
        return 0;
    int ih[VT_ARCH_MAX_LAYERS], iw[VT_ARCH_MAX_LAYERS], hs[VT_ARCH_MAX_LAYERS],
        ws[VT_ARCH_MAX_LAYERS];
    size_t scratch = 0, dtmp = 0, total = 0;
    vtm_arch_shapes(a, h, w, ih, iw, hs, ws);
    for (int i = 0; i < t->L; i++) {
        const vt_layer_spec *l = &a->layers[i];
        if (hs[i] <= 0 || ws[i] <= 0)
            return -EINVAL;
        if (l->kind == VT_LAYER_CONV) {
            vt_conv cv = layer_geom(t, i);
            size_t s = vtm_conv_scratch(&cv, wino_fwd(t, i) ? VT_CONV_WINO : vtm_conv_pick(&cv),
                                        ih[i], iw[i]);
            size_t sb = vtt_tr_conv_bwd_scratch(&cv, ih[i], iw[i]);
            scratch = s > scratch ? s : scratch;
            scratch = sb > scratch ? sb : scratch;
            if (wino_bwd(t, i)) {
                size_t s2 = vtm_wino_adjoint_scratch(VT_CONV_WINO, l->cin, l->cout, hs[i], ws[i]);
                scratch = s2 > scratch ? s2 : scratch;
                size_t in = (size_t)n * l->cin * ih[i] * iw[i];
                dtmp = in > dtmp ? in : dtmp;
            }
        }
        size_t numel = (size_t)n * l->cout * hs[i] * ws[i];
        total += 2 * vtm_arena_need(numel); /* y, g */
        if (l->kind == VT_LAYER_CONV && l->bn[0])
            total += vtm_arena_need(numel) + 2 * vtm_arena_need(l->cout);
        if (wino_fwd(t, i))
            total += vtm_arena_need(
                vtm_wino_layer_floats(VT_CONV_WINO, l->cin, l->cout, wino_bwd(t, i)));
    }
    total += vtm_arena_need(scratch) + vtm_arena_need(dtmp);
    t->n = t->h = t->w = 0;
    int rc = vtm_arena_reserve(&t->arena, total);
    if (rc < 0)
        return rc;
    for (int i = 0; i < t->L; i++) {
        const vt_layer_spec *l = &a->layers[i];
        size_t numel = (size_t)n * l->cout * hs[i] * ws[i];
        t->y[i] = (vt_tensor){n, l->cout, hs[i], ws[i], vtm_arena_take(&t->arena, numel)};
        t->g[i] = (vt_tensor){n, l->cout, hs[i], ws[i], vtm_arena_take(&t->arena, numel)};
        t->z[i] = (vt_tensor){0};
        t->mean[i] = t->invstd[i] = NULL;
        if (l->kind == VT_LAYER_CONV && l->bn[0]) {
            t->z[i] = (vt_tensor){n, l->cout, hs[i], ws[i], vtm_arena_take(&t->arena, numel)};
            t->mean[i] = vtm_arena_take(&t->arena, l->cout);
            t->invstd[i] = vtm_arena_take(&t->arena, l->cout);
        }
        t->wl[i] = (vt_wino_layer){0};
        if (wino_fwd(t, i)) {
            int adj = wino_bwd(t, i);
            float *mem = vtm_arena_take(&t->arena,
                                        vtm_wino_layer_floats(VT_CONV_WINO, l->cin, l->cout, adj));
            vtm_wino_layer_init(&t->wl[i], VT_CONV_WINO, l->cin, l->cout, adj, mem);
        }
    }
    t->scratch = vtm_arena_take(&t->arena, scratch);
    t->dtmp = vtm_arena_take(&t->arena, dtmp);
    t->n = n;
    t->h = h;
    t->w = w;
    return 0;
}

/* Refresh the Winograd-domain copies of the current weights (they change every step). */
static void wino_refresh(vt_tnet *t) {
    for (int i = 0; i < t->L; i++) {
        if (wino_fwd(t, i))
            vtm_wino_layer_update(&t->wl[i], vtm_model_param(t->m, t->pw[i])->data);
    }
}

int vtt_tnet_forward(vt_tnet *t, const vt_tensor *x, float momentum, const vt_tensor **out) {
    if (!x || !x->data || x->c != 3)
        return -EINVAL;
    int rc = vtt_tnet_plan(t, x->n, x->h, x->w);
    if (rc < 0)
        return rc;
    if (t->wino)
        wino_refresh(t);
    t->in = *x;
    for (int i = 0; i < t->L; i++) {
        const vt_layer_spec *l = &t->a->layers[i];
        const vt_tensor *src = l->src == VT_SRC_INPUT ? x : &t->y[l->src];
        vt_tensor *y = &t->y[i];
        if (l->kind == VT_LAYER_MAXPOOL) {
            if ((rc = vtm_maxpool2d(src, l->k, l->stride, l->pad, y)) < 0)
                return rc;
            continue;
        }
        vt_conv cv = layer_conv(t, i);
        vt_tensor *z = l->bn[0] ? &t->z[i] : y;
        if ((rc = vtm_conv2d(&cv, VT_CONV_AUTO, src, NULL, z, t->scratch)) < 0)
            return rc;
        if (l->bn[0]) {
            vt_param *bn = vtm_model_param(t->m, t->pbn[i]);
            const int upd = momentum > 0.0f;
            vtt_tr_bn_forward(z, bn[0].data, bn[1].data, VT_BN_EPS, momentum,
                              upd ? bn[2].data : NULL, upd ? bn[3].data : NULL, t->mean[i],
                              t->invstd[i], y);
        }
        if (l->res >= 0 && (rc = vtm_add(y, &t->y[l->res], 0, y)) < 0)
            return rc;
        if (l->relu)
            vtm_relu(y);
    }
    *out = &t->y[t->L - 1];
    return 0;
}

vt_tensor *vtt_tnet_out_grad(vt_tnet *t) {
    return t->n ? &t->g[t->L - 1] : NULL;
}

void vtt_tnet_zero_grad(vt_tnet *t) {
    memset(t->grad_block, 0, sizeof(float) * t->grad_floats);
}

float *vtt_tnet_grad(vt_tnet *t, int i) {
    return i >= 0 && i < t->np ? t->grad[i] : NULL;
}

size_t vtt_tnet_bytes(const vt_tnet *t) {
    return (t->arena.cap + t->grad_floats) * sizeof(float);
}

int vtt_tnet_backward(vt_tnet *t) {
    if (!t->n)
        return -EINVAL;
    for (int i = 0; i < t->L - 1; i++)
        memset(t->g[i].data, 0, sizeof(float) * vtm_tensor_numel(&t->g[i]));
    for (int i = t->L - 1; i >= 0; i--) {
        const vt_layer_spec *l = &t->a->layers[i];
        vt_tensor *g = &t->g[i];
        vt_tensor *gsrc = l->src == VT_SRC_INPUT ? NULL : &t->g[l->src];
        int rc;
        if (l->kind == VT_LAYER_MAXPOOL) {
            if (!gsrc)
                continue;
            if ((rc = vtt_tr_maxpool_backward(&t->y[l->src], l->k, l->stride, l->pad, g, gsrc)) < 0)
                return rc;
            continue;
        }
        const size_t numel = vtm_tensor_numel(g);
        if (l->relu)
            vtt_tr_relu_backward(t->y[i].data, g->data, numel);
        if (l->res >= 0) {
            float *gr = t->g[l->res].data;
            for (size_t k = 0; k < numel; k++)
                gr[k] += g->data[k];
        }
        if (l->bn[0]) {
            vt_param *bn = vtm_model_param(t->m, t->pbn[i]);
            vtt_tr_bn_backward(&t->z[i], t->mean[i], t->invstd[i], bn[0].data, g,
                               t->grad[t->pbn[i]], t->grad[t->pbn[i] + 1], g);
        }
        /* g now holds dz */
        vt_conv cv = layer_conv(t, i);
        const vt_tensor *src = l->src == VT_SRC_INPUT ? &t->in : &t->y[l->src];
        float *db = t->pb[i] >= 0 ? t->grad[t->pb[i]] : NULL;
        if (gsrc && wino_bwd(t, i)) {
            if ((rc = vtt_tr_conv_backward(&cv, src, g, t->grad[t->pw[i]], db, NULL, t->scratch)) <
                0)
                return rc;
            if ((rc = vtm_wino_adjoint(&t->wl[i], g, gsrc, t->dtmp, t->scratch)) < 0)
                return rc;
        } else if ((rc = vtt_tr_conv_backward(&cv, src, g, t->grad[t->pw[i]], db, gsrc,
                                              t->scratch)) < 0) {
            return rc;
        }
    }
    return 0;
}
