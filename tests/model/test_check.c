/*
 * test_check.c - vt_check_score (model/check.c), the unsupervised check of per-clip
 * adaptation, on synthetic video: scores are deterministic and in range, the shipped weights
 * score higher than a copy whose weights are scrambled with noise (a forced-bad update) by
 * both mechanisms, and bad inputs are refused.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn.h"
#include "synth.h"
#include "vt_model.h"
#include "testmain.h"

enum { W = 320, H = 240, N = 7, GAP = 2 };

static const uint8_t RED[3] = {220, 40, 40}, ORANGE[3] = {250, 150, 30};
static const uint8_t BLUE[3] = {40, 60, 230}, CYAN[3] = {40, 200, 230};

/* Two objects crossing a textured background: frames 0, GAP, 2 GAP, ... as the check gets
 * them, and the first frame's labels. */
typedef struct clip {
    uint8_t *rgb[N];
    uint8_t *labels;
    vt_image im[N];
    vt_shape shapes[2];
} clip;

static void clip_make(clip *c) {
    synth s;
    synth_init(&s, W, H, 5);
    synth_add(&s, 1, 70, 110, 5.0, 0.5, 30, 24, 1.0, RED, ORANGE, 1);
    synth_add(&s, 0, 250, 130, -4.0, -0.5, 26, 30, 1.0, BLUE, CYAN, 2);
    uint8_t *lab = malloc((size_t)W * H);
    c->labels = malloc((size_t)W * H);
    ck_assert_ptr_nonnull(lab);
    ck_assert_ptr_nonnull(c->labels);
    for (int f = 0; f < N; f++) {
        c->rgb[f] = malloc((size_t)3 * W * H);
        ck_assert_ptr_nonnull(c->rgb[f]);
        synth_render(&s, f * GAP, c->rgb[f], f == 0 ? c->labels : lab);
        c->im[f] = (vt_image){.w = W, .h = H, .linesize = 3 * W, .rgb = c->rgb[f]};
    }
    for (int i = 0; i < 2; i++)
        c->shapes[i] =
            (vt_shape){.kind = VT_SHAPE_LABELS, .w = W, .h = H, .data = c->labels, .index = i + 1};
    free(lab);
    synth_free(&s);
}

static void clip_free(clip *c) {
    for (int f = 0; f < N; f++)
        free(c->rgb[f]);
    free(c->labels);
}

static double score(const vt_model *m, vt_check_kind kind, const clip *c) {
    vt_tracker_params p;
    ck_assert_int_eq(vt_tracker_params_preset(&p, "mast", "accurate", m), 0);
    double s = -1;
    char err[256] = "";
    int rc = vt_check_score(m, &p, kind, c->im, N, c->shapes, 2, &s, NULL, err, sizeof err);
    ck_assert_msg(rc == 0, "%s: %s", vt_check_name(kind), err);
    return s;
}

/* The shipped weights, or NULL when they are not in the source tree. */
static vt_model *shipped(void) {
    const char *root = getenv("VT_SOURCE_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/weights/default.safetensors", root ? root : ".");
    if (access(path, R_OK) != 0)
        return NULL;
    vt_model *m = NULL;
    char err[256];
    ck_assert_msg(vt_model_load(path, &m, err, sizeof err) == 0, "%s", err);
    return m;
}

/* The weight-free lab model. */
static vt_model *lab_model(void) {
    vt_model *m = NULL;
    char err[256];
    ck_assert_msg(vt_model_load("lab", &m, err, sizeof err) == 0, "%s", err);
    return m;
}

START_TEST(test_deterministic) {
    clip c;
    clip_make(&c);
    vt_model *m = lab_model();
    for (int k = 0; k < 2; k++) {
        const double a = score(m, (vt_check_kind)k, &c), b = score(m, (vt_check_kind)k, &c);
        printf("lab, %s: %.6f\n", vt_check_name((vt_check_kind)k), a);
        ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "%s: %.17g then %.17g",
                      vt_check_name((vt_check_kind)k), a, b);
        ck_assert_msg(a > 0.5 && a <= 1.0, "%s: %.4f", vt_check_name((vt_check_kind)k), a);
    }
    vt_model_free(&m);
    clip_free(&c);
}
END_TEST

/* A forced-bad update: every weight of the shipped model multiplied by (1 + noise) and
 * shifted, as a fine-tuning with a far too large learning rate leaves it. */
START_TEST(test_bad_update_scores_lower) {
    vt_model *good = shipped(), *bad = shipped();
    if (!good) {
        printf("SKIP-in-test: no weights/default.safetensors\n");
        return;
    }
    uint32_t rs = 12345;
    for (int i = 0; i < vtm_model_nparams(bad); i++) {
        vt_param *p = vtm_model_param(bad, i);
        if (strstr(p->name, "running"))
            continue;
        for (size_t k = 0; k < p->numel; k++)
            p->data[k] = p->data[k] * (float)(1.0 + 2.0 * (synth_unit(&rs) - 0.5)) +
                         (float)(0.05 * (synth_unit(&rs) - 0.5));
    }
    ck_assert_int_eq(vtm_model_refold(bad), 0);
    clip c;
    clip_make(&c);
    for (int k = 0; k < 2; k++) {
        const double g = score(good, (vt_check_kind)k, &c), b = score(bad, (vt_check_kind)k, &c);
        printf("%s: shipped %.4f, scrambled %.4f\n", vt_check_name((vt_check_kind)k), g, b);
        ck_assert_msg(g > b, "%s: shipped %.4f <= scrambled %.4f", vt_check_name((vt_check_kind)k),
                      g, b);
    }
    vt_model_free(&good);
    vt_model_free(&bad);
    clip_free(&c);
}
END_TEST

START_TEST(test_errors) {
    clip c;
    clip_make(&c);
    vt_model *m = lab_model();
    vt_tracker_params p;
    vt_tracker_params_preset(&p, "mast", "accurate", m);
    char err[256];
    double s;
    ck_assert_int_eq(
        vt_check_score(m, &p, VT_CHECK_CYCLE, c.im, 1, c.shapes, 2, &s, NULL, err, sizeof err),
        -EINVAL);
    ck_assert_msg(strstr(err, "two held-back frames"), "%s", err);
    ck_assert_int_eq(
        vt_check_score(m, &p, VT_CHECK_CYCLE, c.im, N, NULL, 0, &s, NULL, err, sizeof err),
        -EINVAL);
    ck_assert_msg(strstr(err, "objects"), "%s", err);
    /* recon needs no object */
    ck_assert_int_eq(
        vt_check_score(m, &p, VT_CHECK_RECON, c.im, N, NULL, 0, &s, NULL, err, sizeof err), 0);
    vt_image other[2] = {c.im[0], c.im[1]};
    other[1].w = W / 2;
    ck_assert_int_eq(
        vt_check_score(m, &p, VT_CHECK_RECON, other, 2, NULL, 0, &s, NULL, err, sizeof err),
        -EINVAL);
    ck_assert_msg(strstr(err, "held-back frame 1"), "%s", err);
    vt_model_free(&m);
    clip_free(&c);
}
END_TEST

int main(void) {
    return tm_main("check", 300, test_deterministic, test_bad_update_scores_lower, test_errors,
                   NULL);
}
