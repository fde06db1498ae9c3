/*
 * model.c - models (parameters, metadata, folding), loading and saving weights, the layer-table
 * executor and the public encoder.
 *
 * A model keeps two copies of its weights: the parameters exactly as in the weights file
 * (conv weight/bias and batch-norm gamma/beta/mean/var, what training updates and saves), and
 * the folded inference weights (BN folded into the conv, plus Winograd-domain weights for 3x3
 * stride-1 layers) that the executor uses.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "safetensors.h"

#define MAX_IMAGE_SIDE 16384

struct vt_model {
    const vt_arch *arch;
    vt_param *params;
    int nparams;
    /* Per layer: parameter indices (-1 when absent) and folded weights. */
    int pw[VT_ARCH_MAX_LAYERS], pb[VT_ARCH_MAX_LAYERS], pbn[VT_ARCH_MAX_LAYERS];
    float *fw[VT_ARCH_MAX_LAYERS], *fb[VT_ARCH_MAX_LAYERS], *wino_mem[VT_ARCH_MAX_LAYERS];
    vt_wino_layer wino[VT_ARCH_MAX_LAYERS]; /* F(4,3) of the folded weights (u NULL: none) */
    char **mkey, **mval;
    int nmeta;
    int lab; /* input colour space: 1 Lab, 0 RGB */
    float mean[3], std[3];
    vt_pad_mode pad;
};

static void known_archs(char *buf, size_t n) {
    buf[0] = 0;
    for (const char *const *a = vt_model_arch_names(); *a; a++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", a == vt_model_arch_names() ? "" : ", ",
                 *a);
}

/* ---------------------------------------------------------------------------------------------
 * Metadata
 * ------------------------------------------------------------------------------------------- */

const char *vt_model_meta(const vt_model *m, const char *key) {
    for (int i = 0; i < m->nmeta; i++)
        if (strcmp(m->mkey[i], key) == 0)
            return m->mval[i];
    return NULL;
}

int vtm_model_set_meta(vt_model *m, const char *key, const char *value) {
    for (int i = 0; i < m->nmeta; i++)
        if (strcmp(m->mkey[i], key) == 0) {
            if (!value) {
                free(m->mkey[i]);
                free(m->mval[i]);
                m->mkey[i] = m->mkey[m->nmeta - 1];
                m->mval[i] = m->mval[m->nmeta - 1];
                m->nmeta--;
                return 0;
            }
            char *v = strdup(value);
            if (!v)
                return -ENOMEM;
            free(m->mval[i]);
            m->mval[i] = v;
            return 0;
        }
    if (!value)
        return 0;
    char **k = realloc(m->mkey, sizeof *k * (m->nmeta + 1));
    if (!k)
        return -ENOMEM;
    m->mkey = k;
    char **v = realloc(m->mval, sizeof *v * (m->nmeta + 1));
    if (!v)
        return -ENOMEM;
    m->mval = v;
    if (!(m->mkey[m->nmeta] = strdup(key)))
        return -ENOMEM;
    if (!(m->mval[m->nmeta] = strdup(value))) {
        free(m->mkey[m->nmeta]);
        return -ENOMEM;
    }
    m->nmeta++;
    return 0;
}

int vt_model_set_meta(vt_model *m, const char *key, const char *value) {
    if (!key || !value)
        return -EINVAL;
    return vtm_model_set_meta(m, key, value);
}

static int parse3(const char *s, float v[3]) {
    char *end;
    for (int i = 0; i < 3; i++) {
        errno = 0;
        double d = strtod(s, &end);
        if (end == s || errno || !isfinite(d))
            return -1;
        v[i] = (float)d;
        s = end;
        while (*s == ' ')
            s++;
        if (i < 2) {
            if (*s != ',')
                return -1;
            s++;
        }
    }
    return *s == 0 ? 0 : -1;
}

static int set3(vt_model *m, const char *key, const float v[3]) {
    char buf[96];
    snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g", v[0], v[1], v[2]);
    return vtm_model_set_meta(m, key, buf);
}

/* Read vtrack.input / mean / std / padding (defaults from the architecture) and write the
 * values in force back, so a saved file is always self-describing. */
static int apply_meta(vt_model *m, const char *file, char *err, size_t errlen) {
    const vt_arch *a = m->arch;
    const char *in = vt_model_meta(m, "vtrack.input");
    if (!in)
        in = a->input;
    if (strcmp(in, "lab") != 0 && strcmp(in, "rgb") != 0) {
        vt_fmt(err, errlen, "%s: metadata vtrack.input '%.32s' is not 'lab' or 'rgb'", file, in);
        return -EINVAL;
    }
    m->lab = strcmp(in, "lab") == 0;
    memcpy(m->mean, a->mean, sizeof m->mean);
    memcpy(m->std, a->std, sizeof m->std);
    const char *s = vt_model_meta(m, "vtrack.mean");
    if (s && parse3(s, m->mean) < 0) {
        vt_fmt(err, errlen, "%s: metadata vtrack.mean '%.64s' is not three numbers 'a,b,c'", file,
               s);
        return -EINVAL;
    }
    s = vt_model_meta(m, "vtrack.std");
    if (s && (parse3(s, m->std) < 0 || !(m->std[0] > 0 && m->std[1] > 0 && m->std[2] > 0))) {
        vt_fmt(err, errlen, "%s: metadata vtrack.std '%.64s' is not three positive numbers", file,
               s);
        return -EINVAL;
    }
    const char *p = vt_model_meta(m, "vtrack.padding");
    if (p && strcmp(p, "zeros") != 0 && strcmp(p, "reflect") != 0) {
        vt_fmt(err, errlen, "%s: metadata vtrack.padding '%.32s' is not 'zeros' or 'reflect'", file,
               p);
        return -EINVAL;
    }
    m->pad = p && strcmp(p, "reflect") == 0 ? VT_PAD_REFLECT : VT_PAD_ZEROS;
    /* The propagation settings the weights were trained with (track_params.c reads them). */
    static const struct {
        const char *key, *want;
        double lo, hi;
        int integer;
    } prop[] = {
        {"vtrack.prop.l2norm", "0 or 1", 0, 1, 1},
        {"vtrack.prop.temperature", "a number in (0, 1e6)", 0, 1e6, 0},
        {"vtrack.prop.topk", "an integer in [0, 4096]", 0, 4096, 1},
    };
    for (size_t i = 0; i < sizeof prop / sizeof prop[0]; i++) {
        const char *v = vt_model_meta(m, prop[i].key);
        if (!v)
            continue;
        char *end;
        int ok;
        if (prop[i].integer) {
            long l = strtol(v, &end, 10);
            ok = end != v && !*end && l >= (long)prop[i].lo && l <= (long)prop[i].hi;
        } else {
            double d = strtod(v, &end);
            ok = end != v && !*end && isfinite(d) && d > prop[i].lo && d < prop[i].hi;
        }
        if (!ok) {
            vt_fmt(err, errlen, "%s: metadata %s '%.32s' is not %s", file, prop[i].key, v,
                   prop[i].want);
            return -EINVAL;
        }
    }
    int rc = vtm_model_set_meta(m, "vtrack.arch", a->name);
    if (!rc)
        rc = vtm_model_set_meta(m, "vtrack.input", m->lab ? "lab" : "rgb");
    if (!rc)
        rc = set3(m, "vtrack.mean", m->mean);
    if (!rc)
        rc = set3(m, "vtrack.std", m->std);
    if (!rc)
        rc =
            vtm_model_set_meta(m, "vtrack.padding", m->pad == VT_PAD_REFLECT ? "reflect" : "zeros");
    if (rc) {
        vt_fmt(err, errlen, "%s: out of memory", file);
        return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Parameters and folding
 * ------------------------------------------------------------------------------------------- */

static int add_param(vt_model *m, const char *prefix, const char *suffix, int ndim, int d0, int d1,
                     int d2, int d3) {
    vt_param *p = &m->params[m->nparams];
    snprintf(p->name, sizeof p->name, "%s.%s", prefix, suffix);
    p->ndim = ndim;
    int d[4] = {d0, d1, d2, d3};
    p->numel = 1;
    for (int i = 0; i < 4; i++) {
        p->shape[i] = i < ndim ? d[i] : 1;
        p->numel *= (size_t)p->shape[i];
    }
    p->data = calloc(p->numel, sizeof(float));
    if (!p->data)
        return -ENOMEM;
    return m->nparams++;
}

static void model_release(vt_model *m) {
    for (int i = 0; i < m->nparams; i++)
        free(m->params[i].data);
    free(m->params);
    for (int i = 0; i < VT_ARCH_MAX_LAYERS; i++) {
        free(m->fw[i]);
        free(m->fb[i]);
        free(m->wino_mem[i]);
    }
    for (int i = 0; i < m->nmeta; i++) {
        free(m->mkey[i]);
        free(m->mval[i]);
    }
    free(m->mkey);
    free(m->mval);
}

void vt_model_free(vt_model **pm) {
    if (!pm || !*pm)
        return;
    model_release(*pm);
    free(*pm);
    *pm = NULL;
}

/* A model of architecture a with zeroed parameters (BN var = 1) and no metadata. */
static int model_alloc(const vt_arch *a, vt_model **out) {
    *out = NULL;
    vt_model *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->arch = a;
    m->params = calloc(6 * (size_t)(a->n_layers + 1), sizeof *m->params);
    if (!m->params) {
        free(m);
        return -ENOMEM;
    }
    for (int i = 0; i < a->n_layers; i++) {
        const vt_layer_spec *l = &a->layers[i];
        m->pw[i] = m->pb[i] = m->pbn[i] = -1;
        if (l->kind != VT_LAYER_CONV)
            continue;
        if ((m->pw[i] = add_param(m, l->conv, "weight", 4, l->cout, l->cin, l->k, l->k)) < 0)
            goto oom;
        if (l->bias && (m->pb[i] = add_param(m, l->conv, "bias", 1, l->cout, 1, 1, 1)) < 0)
            goto oom;
        if (l->bn[0]) {
            static const char *const bn[4] = {"weight", "bias", "running_mean", "running_var"};
            for (int j = 0; j < 4; j++) {
                int p = add_param(m, l->bn, bn[j], 1, l->cout, 1, 1, 1);
                if (p < 0)
                    goto oom;
                if (j == 0)
                    m->pbn[i] = p;
            }
            for (int o = 0; o < l->cout; o++) {
                m->params[m->pbn[i]].data[o] = 1.0f;
                m->params[m->pbn[i] + 3].data[o] = 1.0f;
            }
        }
    }
    *out = m;
    return 0;
oom:
    vt_model_free(&m);
    return -ENOMEM;
}

int vtm_model_refold(vt_model *m) {
    const vt_arch *a = m->arch;
    for (int i = 0; i < a->n_layers; i++) {
        const vt_layer_spec *l = &a->layers[i];
        if (l->kind != VT_LAYER_CONV)
            continue;
        size_t fan = (size_t)l->cin * l->k * l->k;
        if (!m->fw[i] && !(m->fw[i] = malloc(sizeof(float) * fan * l->cout)))
            return -ENOMEM;
        if (!m->fb[i] && !(m->fb[i] = malloc(sizeof(float) * l->cout)))
            return -ENOMEM;
        const float *w = m->params[m->pw[i]].data;
        const float *b = m->pb[i] >= 0 ? m->params[m->pb[i]].data : NULL;
        if (m->pbn[i] >= 0) {
            const vt_param *bn = &m->params[m->pbn[i]];
            vtm_bn_fold(w, b, l->cout, (int)fan, bn[0].data, bn[1].data, bn[2].data, bn[3].data,
                        VT_BN_EPS, m->fw[i], m->fb[i]);
        } else {
            memcpy(m->fw[i], w, sizeof(float) * fan * l->cout);
            for (int o = 0; o < l->cout; o++)
                m->fb[i][o] = b ? b[o] : 0.0f;
        }
        /* 3x3 stride-1 layers run Winograd F(4x4, 3x3) (conv.c's driver): its weights. */
        vt_conv geom = vtm_layer_geom(l, m->pad);
        if (vtm_wino_fits(&geom)) {
            if (!m->wino_mem[i]) {
                size_t n = vtm_wino_layer_floats(VT_CONV_WINO4, l->cin, l->cout, 0);
                if (!(m->wino_mem[i] = malloc(sizeof(float) * n)))
                    return -ENOMEM;
                vtm_wino_layer_init(&m->wino[i], VT_CONV_WINO4, l->cin, l->cout, 0, m->wino_mem[i]);
            }
            vtm_wino_layer_update(&m->wino[i], m->fw[i]);
        }
    }
    return 0;
}

const vt_arch *vtm_model_spec(const vt_model *m) {
    return m->arch;
}

int vtm_model_nparams(const vt_model *m) {
    return m->nparams;
}

vt_param *vtm_model_param(vt_model *m, int i) {
    return i >= 0 && i < m->nparams ? &m->params[i] : NULL;
}

vt_param *vtm_model_param_find(vt_model *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return &m->params[i];
    return NULL;
}

const char *vt_model_arch(const vt_model *m) {
    return m->arch->name;
}

int vt_model_stride(const vt_model *m) {
    return m->arch->stride;
}

int vt_model_channels(const vt_model *m) {
    return m->arch->channels;
}

double vt_model_macs(const vt_model *m, int w, int h) {
    return vtm_arch_macs(m->arch, h, w);
}

const char *vtm_model_input_space(const vt_model *m) {
    return m->lab ? "lab" : "rgb";
}

void vtm_model_norm(const vt_model *m, float mean[3], float std[3]) {
    memcpy(mean, m->mean, sizeof m->mean);
    memcpy(std, m->std, sizeof m->std);
}

vt_pad_mode vtm_model_pad_mode(const vt_model *m) {
    return m->pad;
}

/* ---------------------------------------------------------------------------------------------
 * Creating, loading, saving
 * ------------------------------------------------------------------------------------------- */

/* splitmix64: a tiny, well-mixed generator, so a seed gives the same weights everywhere. */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double next_normal(uint64_t *s) {
    /* Box-Muller on two uniforms in (0, 1]. */
    double u1 = ((next_u64(s) >> 11) + 1) * 0x1.0p-53, u2 = (next_u64(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

int vt_model_new(const char *arch, uint64_t seed, vt_model **out, char *err, size_t errlen) {
    *out = NULL;
    const vt_arch *a = vtm_arch_find(arch);
    if (!a) {
        char k[128];
        known_archs(k, sizeof k);
        vt_fmt(err, errlen, "unknown architecture '%.64s' (known: %s)", arch ? arch : "(null)", k);
        return -EINVAL;
    }
    vt_model *m;
    int rc = model_alloc(a, &m);
    if (rc < 0) {
        vt_fmt(err, errlen, "out of memory");
        return rc;
    }
    /* He et al. (2015) normal init, std = sqrt(2 / fan_in), keeps activation variance through
     * ReLU layers, so even the untrained network gives non-degenerate features; biases zero,
     * BN identity (gamma 1, beta 0, mean 0, var 1). */
    uint64_t s = seed;
    for (int i = 0; i < a->n_layers; i++) {
        if (m->pw[i] < 0)
            continue;
        vt_param *p = &m->params[m->pw[i]];
        double sd = sqrt(2.0 / (p->shape[1] * p->shape[2] * p->shape[3]));
        for (size_t j = 0; j < p->numel; j++)
            p->data[j] = (float)(sd * next_normal(&s));
    }
    char prov[96];
    snprintf(prov, sizeof prov, "random init: He normal (fan_in), BN identity, seed %llu",
             (unsigned long long)seed);
    if ((rc = vtm_model_set_meta(m, "vtrack.provenance", prov)) < 0 ||
        (rc = apply_meta(m, "new model", err, errlen)) < 0 || (rc = vtm_model_refold(m)) < 0) {
        if (rc == -ENOMEM)
            vt_fmt(err, errlen, "out of memory");
        vt_model_free(&m);
        return rc;
    }
    *out = m;
    return 0;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *s64, const int *s32) {
    size_t l = 0;
    l += snprintf(buf + l, n - l, "[");
    for (int i = 0; i < ndim && l < n; i++)
        l += snprintf(buf + l, n - l, "%s%lld", i ? "," : "",
                      s64 ? (long long)s64[i] : (long long)s32[i]);
    if (l < n)
        snprintf(buf + l, n - l, "]");
}

static int load_from(vt_st_file *f, vt_model **out, char *err, size_t errlen) {
    const char *fn = vtm_st_name(f);
    const char *an = vtm_st_meta(f, "vtrack.arch");
    char k[128];
    known_archs(k, sizeof k);
    if (!an) {
        vt_fmt(err, errlen, "%s: no vtrack.arch in __metadata__ (known architectures: %s)", fn, k);
        return -EINVAL;
    }
    const vt_arch *a = vtm_arch_find(an);
    if (!a) {
        vt_fmt(err, errlen, "%s: unknown architecture '%.64s' (known: %s)", fn, an, k);
        return -EINVAL;
    }
    vt_model *m;
    int rc = model_alloc(a, &m);
    if (rc < 0) {
        vt_fmt(err, errlen, "%s: out of memory", fn);
        return rc;
    }
    for (int i = 0; i < m->nparams; i++) {
        vt_param *p = &m->params[i];
        const vt_st_tensor *t = vtm_st_find(f, p->name);
        if (!t) {
            vt_fmt(err, errlen, "%s: tensor '%s' missing (%s has %d tensors)", fn, p->name, a->name,
                   m->nparams);
            rc = -EINVAL;
            goto fail;
        }
        int same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++)
            same = t->shape[d] == p->shape[d];
        if (!same) {
            char got[128], want[64];
            shape_str(got, sizeof got, t->ndim, t->shape, NULL);
            shape_str(want, sizeof want, p->ndim, NULL, p->shape);
            vt_fmt(err, errlen, "%s: tensor '%s' has shape %s, %s expects %s", fn, p->name, got,
                   a->name, want);
            rc = -EINVAL;
            goto fail;
        }
        if ((rc = vtm_st_read_f32(f, t, p->data, err, errlen)) < 0)
            goto fail;
        for (size_t j = 0; j < p->numel; j++)
            if (!isfinite(p->data[j])) {
                vt_fmt(err, errlen, "%s: tensor '%s' holds a NaN or infinity at element %zu", fn,
                       p->name, j);
                rc = -EINVAL;
                goto fail;
            }
        if (strstr(p->name, ".running_var"))
            for (size_t j = 0; j < p->numel; j++)
                if (p->data[j] < 0.0f) {
                    vt_fmt(err, errlen, "%s: tensor '%s' has a negative variance at element %zu",
                           fn, p->name, j);
                    rc = -EINVAL;
                    goto fail;
                }
    }
    for (int i = 0; i < vtm_st_count(f); i++) {
        const vt_st_tensor *t = vtm_st_get(f, i);
        if (!vtm_model_param_find(m, t->name)) {
            vt_fmt(err, errlen, "%s: unexpected tensor '%s' (not part of %s)", fn, t->name,
                   a->name);
            rc = -EINVAL;
            goto fail;
        }
    }
    for (int i = 0; i < vtm_st_meta_count(f); i++) {
        const char *key, *val;
        vtm_st_meta_get(f, i, &key, &val);
        if ((rc = vtm_model_set_meta(m, key, val)) < 0) {
            vt_fmt(err, errlen, "%s: out of memory", fn);
            goto fail;
        }
    }
    if ((rc = apply_meta(m, fn, err, errlen)) < 0)
        goto fail;
    if ((rc = vtm_model_refold(m)) < 0) {
        vt_fmt(err, errlen, "%s: out of memory", fn);
        goto fail;
    }
    *out = m;
    return 0;
fail:
    vt_model_free(&m);
    return rc;
}

int vt_model_load(const char *path, vt_model **out, char *err, size_t errlen) {
    *out = NULL;
    if (strcmp(path, "lab") == 0)
        return vt_model_new("lab", 0, out, err, errlen);
    vt_st_file *f;
    int rc = vtm_st_open(path, &f, err, errlen);
    if (rc < 0)
        return rc;
    rc = load_from(f, out, err, errlen);
    vtm_st_close(&f);
    return rc;
}

int vtm_model_load_mem(const uint8_t *buf, size_t size, const char *name, vt_model **out, char *err,
                       size_t errlen) {
    *out = NULL;
    vt_st_file *f;
    int rc = vtm_st_parse(buf, size, name, &f, err, errlen);
    if (rc < 0)
        return rc;
    rc = load_from(f, out, err, errlen);
    vtm_st_close(&f);
    return rc;
}

int vt_model_save(const vt_model *m, const char *path, char *err, size_t errlen) {
    int rc = -ENOMEM;
    vt_st_out *t = calloc(m->nparams ? m->nparams : 1, sizeof *t);
    int64_t(*shapes)[4] = calloc(m->nparams ? m->nparams : 1, sizeof *shapes);
    const char **meta = calloc(2 * (size_t)m->nmeta + 1, sizeof *meta);
    if (!t || !shapes || !meta) {
        vt_fmt(err, errlen, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < m->nparams; i++) {
        for (int d = 0; d < 4; d++)
            shapes[i][d] = m->params[i].shape[d];
        t[i] = (vt_st_out){m->params[i].name, m->params[i].ndim, shapes[i], m->params[i].data};
    }
    for (int i = 0; i < m->nmeta; i++) {
        meta[2 * i] = m->mkey[i];
        meta[2 * i + 1] = m->mval[i];
    }
    rc = vtm_st_write(path, t, m->nparams, meta, err, errlen);
done:
    free(t);
    free(shapes);
    free(meta);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Input conversion
 * ------------------------------------------------------------------------------------------- */

void vtm_model_preprocess(const vt_model *m, const vt_image *img, float *out) {
    const size_t plane = (size_t)img->w * img->h;
    if (m->lab) {
        vt_lab_from_rgb(img, out);
    } else {
        for (int y = 0; y < img->h; y++) {
            const uint8_t *p = img->rgb + (size_t)y * img->linesize;
            for (int x = 0; x < img->w; x++)
                for (int c = 0; c < 3; c++)
                    out[c * plane + (size_t)y * img->w + x] = p[3 * x + c] * (1.0f / 255.0f);
        }
    }
    for (int c = 0; c < 3; c++) {
        float *o = out + c * plane, mu = m->mean[c], inv = 1.0f / m->std[c];
        for (size_t i = 0; i < plane; i++)
            o[i] = (o[i] - mu) * inv;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Executor
 * ------------------------------------------------------------------------------------------- */

struct vt_net {
    const vt_model *m;
    int keep_all;
    int n, h, w;       /* the shape the workspace is planned for (0: none yet) */
    vt_conv_algo algo; /* the algorithm it was planned with */
    vt_arena arena;
    vt_tensor act[VT_ARCH_MAX_LAYERS];
    float *scratch;
};

int vtm_net_new(const vt_model *m, int keep_all, vt_net **out) {
    *out = NULL;
    if (!m || !m->arch->learned)
        return -EINVAL;
    vt_net *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    n->m = m;
    n->keep_all = keep_all;
    *out = n;
    return 0;
}

void vtm_net_free(vt_net **pn) {
    if (!pn || !*pn)
        return;
    vtm_arena_free(&(*pn)->arena);
    free(*pn);
    *pn = NULL;
}

static vt_conv layer_conv(const vt_model *m, int i) {
    vt_conv cv = vtm_layer_geom(&m->arch->layers[i], m->pad);
    cv.relu = m->arch->layers[i].relu;
    cv.w = m->fw[i];
    cv.b = m->fb[i];
    vtm_wino_layer_attach(&m->wino[i], &cv);
    return cv;
}

/* A forced algorithm where the layer allows it: the model holds F(4,3) weights only, so only
 * VT_CONV_IM2COL (allowed everywhere) changes anything. */
static vt_conv_algo resolve(const vt_conv *cv, vt_conv_algo forced) {
    if (forced == VT_CONV_IM2COL)
        return VT_CONV_IM2COL;
    return vtm_conv_pick(cv);
}

/*
 * Size the workspace for (n, h, w): every layer's output shape, then buffers. Without keep_all
 * an output's buffer is released after its last reader, and later outputs reuse released
 * buffers (best fit, growing one if none is big enough), so peak memory is a few activations.
 */
static int net_plan(vt_net *net, int n, int h, int w, vt_conv_algo algo) {
    const vt_arch *a = net->m->arch;
    const int L = a->n_layers;
    int ih[VT_ARCH_MAX_LAYERS], iw[VT_ARCH_MAX_LAYERS], hs[VT_ARCH_MAX_LAYERS],
        ws[VT_ARCH_MAX_LAYERS], last_use[VT_ARCH_MAX_LAYERS];
    int slot_of[VT_ARCH_MAX_LAYERS];
    size_t slot_cap[VT_ARCH_MAX_LAYERS];
    int slot_owner[VT_ARCH_MAX_LAYERS], nslots = 0; /* layer whose output a slot holds, -1 */
    size_t scratch = 0;
    vtm_arch_shapes(a, h, w, ih, iw, hs, ws);
    for (int i = 0; i < L; i++) {
        if (hs[i] <= 0 || ws[i] <= 0)
            return -EINVAL; /* input too small for the architecture */
        if (a->layers[i].kind == VT_LAYER_CONV) {
            vt_conv cv = layer_conv(net->m, i);
            size_t s = vtm_conv_scratch(&cv, resolve(&cv, algo), ih[i], iw[i]);
            scratch = s > scratch ? s : scratch;
        }
        last_use[i] = i == L - 1 ? L : i;
    }
    for (int i = 0; i < L; i++) {
        const vt_layer_spec *l = &a->layers[i];
        if (l->src >= 0 && last_use[l->src] < i)
            last_use[l->src] = i;
        if (l->res >= 0 && last_use[l->res] < i)
            last_use[l->res] = i;
    }
    for (int i = 0; i < L; i++) {
        size_t need = (size_t)n * a->layers[i].cout * hs[i] * ws[i];
        if (!net->keep_all) /* release buffers whose last reader came before layer i */
            for (int s = 0; s < nslots; s++)
                if (slot_owner[s] >= 0 && last_use[slot_owner[s]] < i)
                    slot_owner[s] = -1;
        int best = -1;
        for (int s = 0; s < nslots; s++)
            if (slot_owner[s] < 0 && slot_cap[s] >= need &&
                (best < 0 || slot_cap[s] < slot_cap[best]))
                best = s;
        if (best < 0)
            for (int s = 0; s < nslots; s++)
                if (slot_owner[s] < 0 && (best < 0 || slot_cap[s] > slot_cap[best]))
                    best = s;
        if (best < 0) {
            best = nslots++;
            slot_cap[best] = 0;
        }
        if (slot_cap[best] < need)
            slot_cap[best] = need;
        slot_owner[best] = i;
        slot_of[i] = best;
    }
    size_t total = vtm_arena_need(scratch);
    for (int s = 0; s < nslots; s++)
        total += vtm_arena_need(slot_cap[s]);
    int rc = vtm_arena_reserve(&net->arena, total);
    if (rc < 0)
        return rc;
    float *slot_ptr[VT_ARCH_MAX_LAYERS];
    for (int s = 0; s < nslots; s++)
        slot_ptr[s] = vtm_arena_take(&net->arena, slot_cap[s]);
    net->scratch = vtm_arena_take(&net->arena, scratch);
    for (int i = 0; i < L; i++)
        net->act[i] = (vt_tensor){n, a->layers[i].cout, hs[i], ws[i], slot_ptr[slot_of[i]]};
    net->n = n;
    net->h = h;
    net->w = w;
    net->algo = algo;
    return 0;
}

int vtm_net_forward(vt_net *net, const vt_tensor *x, vt_conv_algo algo, const vt_tensor **out) {
    const vt_arch *a = net->m->arch;
    if (!x || !x->data || x->c != 3 || x->n < 1 || x->h < 1 || x->w < 1)
        return -EINVAL;
    if (net->n != x->n || net->h != x->h || net->w != x->w || net->algo != algo) {
        int rc = net_plan(net, x->n, x->h, x->w, algo);
        if (rc < 0) {
            net->n = net->h = net->w = 0;
            return rc;
        }
    }
    for (int i = 0; i < a->n_layers; i++) {
        const vt_layer_spec *l = &a->layers[i];
        const vt_tensor *src = l->src == VT_SRC_INPUT ? x : &net->act[l->src];
        int rc;
        if (l->kind == VT_LAYER_MAXPOOL) {
            rc = vtm_maxpool2d(src, l->k, l->stride, l->pad, &net->act[i]);
        } else {
            vt_conv cv = layer_conv(net->m, i);
            const vt_tensor *res = l->res >= 0 ? &net->act[l->res] : NULL;
            rc = vtm_conv2d(&cv, resolve(&cv, algo), src, res, &net->act[i], net->scratch);
        }
        if (rc < 0)
            return rc;
    }
    *out = &net->act[a->n_layers - 1];
    return 0;
}

const vt_tensor *vtm_net_activation(const vt_net *net, int i) {
    const vt_arch *a = net->m->arch;
    if (i < 0 || i >= a->n_layers || !net->n)
        return NULL;
    if (!net->keep_all && i != a->n_layers - 1)
        return NULL;
    return &net->act[i];
}

size_t vtm_net_workspace_bytes(const vt_net *net) {
    return net->arena.cap * sizeof(float);
}

/* ---------------------------------------------------------------------------------------------
 * Public encoder
 * ------------------------------------------------------------------------------------------- */

struct vt_encoder {
    const vt_model *m;
    vt_net *net;
    vt_arena in; /* input planes (learned) or scratch + features (lab) */
    int h, w;
    float *input, *feat;
};

int vt_encoder_new(const vt_model *m, vt_encoder **out) {
    *out = NULL;
    if (!m)
        return -EINVAL;
    vt_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->m = m;
    if (m->arch->learned) {
        int rc = vtm_net_new(m, 0, &e->net);
        if (rc < 0) {
            free(e);
            return rc;
        }
    }
    *out = e;
    return 0;
}

void vt_encoder_free(vt_encoder **pe) {
    if (!pe || !*pe)
        return;
    vtm_net_free(&(*pe)->net);
    vtm_arena_free(&(*pe)->in);
    free(*pe);
    *pe = NULL;
}

int vt_encoder_run(vt_encoder *e, const vt_image *img, vt_features *out) {
    if (!e || !img || !out || !img->rgb || img->w < 1 || img->h < 1 || img->w > MAX_IMAGE_SIDE ||
        img->h > MAX_IMAGE_SIDE || img->linesize < 3 * img->w)
        return -EINVAL;
    const vt_model *m = e->m;
    const size_t plane = (size_t)img->w * img->h;
    int c, fh, fw;
    if (m->arch->learned) {
        c = m->arch->channels;
        vtm_arch_out_size(m->arch, img->h, img->w, &fh, &fw);
    } else {
        vtm_labfeat_size(img->h, img->w, &c, &fh, &fw);
    }
    if (fh < 1 || fw < 1)
        return -EINVAL;
    if (e->h != img->h || e->w != img->w) {
        size_t need = vtm_arena_need(3 * plane);
        if (!m->arch->learned)
            need = vtm_arena_need(vtm_labfeat_scratch(img->h, img->w)) +
                   vtm_arena_need((size_t)c * fh * fw);
        int rc = vtm_arena_reserve(&e->in, need);
        if (rc < 0) {
            e->h = e->w = 0;
            return rc;
        }
        if (m->arch->learned) {
            e->input = vtm_arena_take(&e->in, 3 * plane);
        } else {
            e->input = vtm_arena_take(&e->in, vtm_labfeat_scratch(img->h, img->w));
            e->feat = vtm_arena_take(&e->in, (size_t)c * fh * fw);
        }
        e->h = img->h;
        e->w = img->w;
    }
    if (!m->arch->learned) {
        vtm_labfeat(img, e->input, e->feat);
        *out = (vt_features){c, fh, fw, m->arch->stride, e->feat};
        return 0;
    }
    vtm_model_preprocess(m, img, e->input);
    vt_tensor x = {1, 3, img->h, img->w, e->input};
    const vt_tensor *y;
    int rc = vtm_net_forward(e->net, &x, VT_CONV_AUTO, &y);
    if (rc < 0)
        return rc;
    *out = (vt_features){y->c, y->h, y->w, m->arch->stride, y->data};
    return 0;
}
