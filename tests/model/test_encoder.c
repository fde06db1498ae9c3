/*
 * Encoders end to end: output geometry and MAC counts against hand arithmetic, no heap
 * allocation after the first run at a size (malloc & co. are wrapped and counted), the
 * executor's buffer reuse against keep-everything, Winograd against im2col on whole networks,
 * input normalisation and the `lab` features against hand-computed values.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testmain.h"
#include "nn.h"

#include "alloc_count.h"

static uint8_t *noise_image(int h, int linesize, uint32_t seed) {
    uint8_t *p = __real_malloc((size_t)linesize * h);
    for (size_t i = 0; i < (size_t)linesize * h; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
    return p;
}

static vt_model *new_model(const char *arch) {
    vt_model *m;
    char err[256] = "";
    ck_assert_msg(vt_model_new(arch, 1234, &m, err, sizeof err) == 0, "%s", err);
    return m;
}

static const struct {
    const char *arch;
    int c, stride;
    int fh97, fw131; /* feature size at 131x97 (hand arithmetic, see below) */
} geo[] = {
    /* compact: three 3x3/2 pad 1 convs: 97 -> 49 -> 25 -> 13, 131 -> 66 -> 33 -> 17 */
    {"compact-s8", 64, 8, 13, 17},
    /* r18: 7x7/2 pad 3 (49, 66), max-pool 3/2 pad 1 (25, 33), layer2 /2 (13, 17) */
    {"r18-s8", 256, 8, 13, 17},
    /* mast: 7x7/2 (49, 66), layer2 /2 (25, 33) */
    {"mast-r18", 64, 4, 25, 33},
    /* lab: ceil(97/8), ceil(131/8) */
    {"lab", 27, 8, 13, 17},
};

START_TEST(test_geometry_and_no_alloc) {
    const int w = 131, h = 97, ls = 3 * w + 7;
    uint8_t *rgb = noise_image(h, ls, 5);
    vt_image img = {w, h, ls, rgb};
    vt_model *m = new_model(geo[_i].arch);
    ck_assert_int_eq(vt_model_channels(m), geo[_i].c);
    ck_assert_int_eq(vt_model_stride(m), geo[_i].stride);
    vt_encoder *e;
    ck_assert_int_eq(vt_encoder_new(m, &e), 0);
    vt_features f;
    ck_assert_int_eq(vt_encoder_run(e, &img, &f), 0);
    ck_assert_int_eq(f.c, geo[_i].c);
    ck_assert_int_eq(f.h, geo[_i].fh97);
    ck_assert_int_eq(f.w, geo[_i].fw131);
    ck_assert_int_eq(f.stride, geo[_i].stride);
    const float *first = f.data;
    /* Same size again: no allocation at all, same buffer. */
    /* (Check's assertions allocate: count around the bare calls only.) */
    long before = n_alloc;
    int rc = 0;
    for (int r = 0; r < 3; r++)
        rc |= vt_encoder_run(e, &img, &f);
    long after = n_alloc;
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(after - before, 0);
    ck_assert_ptr_eq(f.data, first);
    /* Features are finite and not all equal (a live network). */
    double s = 0, s2 = 0;
    size_t n = (size_t)f.c * f.h * f.w;
    for (size_t i = 0; i < n; i++) {
        ck_assert(isfinite(f.data[i]));
        s += f.data[i];
        s2 += (double)f.data[i] * f.data[i];
    }
    ck_assert(s2 / n - (s / n) * (s / n) > 1e-8);
    /* Another size re-plans, then is allocation-free too. */
    img.w = 64, img.h = 40;
    ck_assert_int_eq(vt_encoder_run(e, &img, &f), 0);
    before = n_alloc;
    rc = vt_encoder_run(e, &img, &f);
    after = n_alloc;
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(after - before, 0);
    vt_encoder_free(&e);
    ck_assert_ptr_null(e);
    vt_encoder_free(&e);
    vt_model_free(&m);
    free(rgb);
}
END_TEST

START_TEST(test_macs) {
    /* compact-s8 at 448x256, by hand: conv1 3*9*32*128*224 + conv2 32*9*64*64*112 +
     * block1 2*64*9*64*64*112 + conv3 64*9*64*32*56 + blocks 2-3 4*64*9*64*32*56 +
     * head 64*64*32*56. */
    const double want = 3.0 * 9 * 32 * 128 * 224 + 32.0 * 9 * 64 * 64 * 112 +
                        2.0 * 64 * 9 * 64 * 64 * 112 + 64.0 * 9 * 64 * 32 * 56 +
                        4.0 * 64 * 9 * 64 * 32 * 56 + 64.0 * 64 * 32 * 56;
    vt_model *c = new_model("compact-s8"), *mr = new_model("mast-r18"), *r = new_model("r18-s8");
    vt_model *l = new_model("lab");
    ck_assert_double_eq(vt_model_macs(c, 448, 256), want);
    ck_assert_double_eq_tol(want, 1.023e9, 1e6);
    /* The compact encoder costs at most a tenth of MAST's at any size. */
    static const int sizes[][2] = {{448, 256}, {854, 480}, {424, 240}, {131, 97}};
    for (int i = 0; i < 4; i++)
        ck_assert(vt_model_macs(c, sizes[i][0], sizes[i][1]) * 10 <=
                  vt_model_macs(mr, sizes[i][0], sizes[i][1]));
    /* r18-s8 at 854x480: conv1 + layer1..3 (21.6 GMAC, the figure used in bench/model.md). */
    ck_assert_double_eq_tol(vt_model_macs(r, 854, 480) / 1e9, 21.6, 0.1);
    ck_assert_double_eq(vt_model_macs(l, 854, 480), 0.0);
    vt_model_free(&c), vt_model_free(&mr), vt_model_free(&r), vt_model_free(&l);
}
END_TEST

static float max_abs(const float *a, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(a[i]));
    return m;
}

START_TEST(test_executor_modes) {
    /* Buffer reuse (inference) vs every activation kept; Winograd vs im2col everywhere. */
    static const char *const archs[] = {"compact-s8", "r18-s8", "mast-r18"};
    for (int a = 0; a < 3; a++) {
        vt_model *m = new_model(archs[a]);
        const int h = 37, w = 45;
        float *x = __real_malloc(sizeof(float) * 2 * 3 * h * w);
        uint32_t s = 9;
        for (int i = 0; i < 2 * 3 * h * w; i++) {
            s = s * 1664525u + 1013904223u;
            x[i] = (float)(s >> 8) / (1 << 24) * 2 - 1;
        }
        vt_tensor tx = {2, 3, h, w, x};
        vt_net *inf, *all;
        ck_assert_int_eq(vtm_net_new(m, 0, &inf), 0);
        ck_assert_int_eq(vtm_net_new(m, 1, &all), 0);
        const vt_tensor *yi, *ya;
        ck_assert_int_eq(vtm_net_forward(inf, &tx, VT_CONV_AUTO, &yi), 0);
        ck_assert_int_eq(vtm_net_forward(all, &tx, VT_CONV_AUTO, &ya), 0);
        size_t n = vtm_tensor_numel(yi);
        ck_assert_int_eq(memcmp(yi->data, ya->data, n * 4), 0);
        ck_assert_uint_lt(vtm_net_workspace_bytes(inf), vtm_net_workspace_bytes(all));
        /* Every kept activation is available; an inference net only has the output. */
        const vt_arch *sp = vtm_model_spec(m);
        for (int i = 0; i < sp->n_layers; i++)
            ck_assert_ptr_nonnull(vtm_net_activation(all, i));
        ck_assert_ptr_null(vtm_net_activation(inf, 0));
        /* Batch item 1 equals running it alone. */
        vt_tensor one = {1, 3, h, w, x + 3 * h * w};
        const vt_tensor *y1;
        float *copy = __real_malloc(n * 4);
        memcpy(copy, yi->data, n * 4);
        ck_assert_int_eq(vtm_net_forward(inf, &one, VT_CONV_AUTO, &y1), 0);
        ck_assert_int_eq(memcmp(y1->data, copy + n / 2, n / 2 * 4), 0);
        /* Winograd (AUTO) vs im2col for every 3x3 layer. */
        const vt_tensor *yc;
        ck_assert_int_eq(vtm_net_forward(all, &tx, VT_CONV_IM2COL, &yc), 0);
        float mx = max_abs(copy, n), err = 0;
        for (size_t i = 0; i < n; i++)
            err = fmaxf(err, fabsf(copy[i] - yc->data[i]));
        ck_assert_msg(err <= 1e-4f * mx, "%s: winograd vs im2col %g (max %g)", archs[a], err, mx);
        free(copy);
        vtm_net_free(&inf);
        vtm_net_free(&all);
        free(x);
        vt_model_free(&m);
    }
}
END_TEST

START_TEST(test_preprocess_rgb_and_refold) {
    vt_model *m = new_model("r18-s8");
    uint8_t px[3] = {255, 0, 128};
    vt_image img = {1, 1, 3, px};
    float out[3];
    vtm_model_preprocess(m, &img, out);
    ck_assert_float_eq_tol(out[0], (1.0f - 0.485f) / 0.229f, 1e-5f);
    ck_assert_float_eq_tol(out[1], (0.0f - 0.456f) / 0.224f, 1e-5f);
    ck_assert_float_eq_tol(out[2], (128.0f / 255.0f - 0.406f) / 0.225f, 1e-5f);
    vt_model_free(&m);

    /* Changing a parameter changes the output only after vtm_model_refold(). */
    m = new_model("compact-s8");
    vt_encoder *e;
    ck_assert_int_eq(vt_encoder_new(m, &e), 0);
    uint8_t *rgb = noise_image(24, 96, 3);
    vt_image im = {32, 24, 96, rgb};
    vt_features f;
    ck_assert_int_eq(vt_encoder_run(e, &im, &f), 0);
    float before = f.data[5];
    vt_param *hb = vtm_model_param_find(m, "head.bias");
    ck_assert_ptr_nonnull(hb);
    hb->data[0] += 1.0f;
    ck_assert_int_eq(vt_encoder_run(e, &im, &f), 0);
    ck_assert_float_eq(f.data[5], before);
    ck_assert_int_eq(vtm_model_refold(m), 0);
    ck_assert_int_eq(vt_encoder_run(e, &im, &f), 0);
    ck_assert_float_eq_tol(f.data[5], before + 1.0f, 1e-5f);
    /* Bad images are refused. */
    im.linesize = 10;
    ck_assert_int_eq(vt_encoder_run(e, &im, &f), -EINVAL);
    im.linesize = 96;
    im.w = 0;
    ck_assert_int_eq(vt_encoder_run(e, &im, &f), -EINVAL);
    vt_encoder_free(&e);
    free(rgb);
    vt_model_free(&m);

    /* Reflection padding (CRW) needs every padded layer's input larger than its padding. */
    m = new_model("r18-s8");
    ck_assert_int_eq(vtm_model_set_meta(m, "vtrack.padding", "reflect"), 0);
    char err[128];
    /* The metadata is applied at load: save and reload. */
    ck_assert_int_eq(vt_model_save(m, "/tmp/vt_test_encoder_reflect.safetensors", err, sizeof err),
                     0);
    vt_model_free(&m);
    ck_assert_int_eq(vt_model_load("/tmp/vt_test_encoder_reflect.safetensors", &m, err, sizeof err),
                     0);
    unlink("/tmp/vt_test_encoder_reflect.safetensors");
    ck_assert_int_eq(vtm_model_pad_mode(m), VT_PAD_REFLECT);
    ck_assert_int_eq(vt_encoder_new(m, &e), 0);
    uint8_t tiny[3 * 2 * 2] = {0};
    vt_image t = {2, 2, 6, tiny};
    ck_assert_int_eq(vt_encoder_run(e, &t, &f), -EINVAL); /* 7x7 pad 3 on 2x2 */
    rgb = noise_image(32, 120, 1);
    vt_image ok = {40, 32, 120, rgb};
    ck_assert_int_eq(vt_encoder_run(e, &ok, &f), 0);
    vt_encoder_free(&e);
    free(rgb);
    vt_model_free(&m);
}
END_TEST

START_TEST(test_labfeat) {
    /* Uniform red: every channel of every cell is red's Lab (53.2408, 80.0925, 67.2032)
     * scaled by 1/100, 1/128, 1/128. */
    vt_model *m = new_model("lab");
    vt_encoder *e;
    ck_assert_int_eq(vt_encoder_new(m, &e), 0);
    enum { W = 20, H = 9 };
    uint8_t rgb[3 * W * H];
    for (int i = 0; i < W * H; i++)
        rgb[3 * i] = 255, rgb[3 * i + 1] = 0, rgb[3 * i + 2] = 0;
    vt_image img = {W, H, 3 * W, rgb};
    vt_features f;
    ck_assert_int_eq(vt_encoder_run(e, &img, &f), 0);
    ck_assert_int_eq(f.c, 27);
    ck_assert_int_eq(f.h, 2); /* ceil(9/8) */
    ck_assert_int_eq(f.w, 3); /* ceil(20/8) */
    const float red[3] = {53.2408f / 100, 80.0925f / 128, 67.2032f / 128};
    for (int c = 0; c < 27; c++)
        for (int i = 0; i < 6; i++)
            ck_assert_float_eq_tol(f.data[c * 6 + i], red[c % 3], 2e-3f);
    /* Black except the last 4 columns white: cell column 2 covers only those 4 columns (a
     * partial cell averages what it covers), so it is pure white (L = 1), the others L = 0.
     * Channel ((dy+1)*3 + (dx+1))*3 holds L of cell (y+dy, x+dx), edges replicated. */
    memset(rgb, 0, sizeof rgb);
    for (int y = 0; y < H; y++)
        for (int x = 16; x < W; x++)
            rgb[3 * (y * W + x)] = rgb[3 * (y * W + x) + 1] = rgb[3 * (y * W + x) + 2] = 255;
    ck_assert_int_eq(vt_encoder_run(e, &img, &f), 0);
    const int fw = 3, plane = 6;
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int sx = x + dx < 0 ? 0 : (x + dx > 2 ? 2 : x + dx);
                    float want = sx == 2 ? 1.0f : 0.0f;
                    int ch = ((dy + 1) * 3 + (dx + 1)) * 3;
                    ck_assert_float_eq_tol(f.data[ch * plane + y * fw + x], want, 1e-3f);
                }
    vt_encoder_free(&e);
    vt_model_free(&m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("encoder");
    TCase *tc = tm_add_case(s, "core", 120, test_macs, test_executor_modes,
                            test_preprocess_rgb_and_refold, test_labfeat, NULL);
    tcase_add_loop_test(tc, test_geometry_and_no_alloc, 0, (int)TM_LEN(geo));
    return tm_run(s);
}
