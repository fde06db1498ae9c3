/*
 * The propagation engine against an independent NumPy implementation of the same definition
 * (tests/reference/ref_prop.py): global, windowed and ROI-localised frames, top-k and all
 * candidates, objects unknown in some frames. Tolerance 1e-4 absolute on probabilities: the C
 * side accumulates float32 dot products of unit vectors (error ~1e-6) and the reference picks
 * cases where no top-k boundary or ROI rounding lies within 1e-4 of a tie.
 * Skips (exit 77) when /usr/bin/python3 with NumPy is not available.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testmain.h"
#include "prop.h"

static char dir[] = "/tmp/vt_prop_refXXXXXX";
static int ncases;

static void *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1);
    if (buf && fread(buf, 1, n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = 0;
    fclose(f);
    if (len)
        *len = n;
    return buf;
}

static float *load_f32(int ci, const char *name, size_t want) {
    char path[512];
    snprintf(path, sizeof path, "%s/case%d_%s.f32", dir, ci, name);
    size_t len;
    float *p = slurp(path, &len);
    ck_assert_msg(p != NULL, "missing %s", path);
    ck_assert_uint_eq(len, want * sizeof(float));
    return p;
}

static void run_case(int ci) {
    char path[512];
    snprintf(path, sizeof path, "%s/case%d.json", dir, ci);
    char *js = slurp(path, NULL);
    ck_assert_ptr_nonnull(js);
    cJSON *meta = cJSON_Parse(js);
    ck_assert_ptr_nonnull(meta);
    int h = cJSON_GetObjectItem(meta, "h")->valueint, w = cJSON_GetObjectItem(meta, "w")->valueint;
    int c = cJSON_GetObjectItem(meta, "c")->valueint;
    int nobj = cJSON_GetObjectItem(meta, "nobj")->valueint;
    const cJSON *frames = cJSON_GetObjectItem(meta, "frames");
    int nmem = cJSON_GetArraySize(frames), n = h * w, maxr = 0;

    vt_prop_frame mem[8];
    float *mfeat[8], *mlab[8];
    uint8_t known[8][8];
    for (int m = 0; m < nmem; m++) {
        const cJSON *fr = cJSON_GetArrayItem(frames, m);
        char name[32];
        snprintf(name, sizeof name, "m%d_feat", m);
        mfeat[m] = load_f32(ci, name, (size_t)n * c);
        snprintf(name, sizeof name, "m%d_labels", m);
        mlab[m] = load_f32(ci, name, (size_t)n * nobj);
        const cJSON *kn = cJSON_GetObjectItem(fr, "known");
        for (int o = 0; o < nobj; o++)
            known[m][o] = (uint8_t)cJSON_GetArrayItem(kn, o)->valueint;
        int radius = cJSON_GetObjectItem(fr, "radius")->valueint;
        mem[m] = (vt_prop_frame){
            .feat = mfeat[m],
            .labels = mlab[m],
            .known = known[m],
            .radius = radius < 0 ? VT_PROP_GLOBAL : radius,
            .roi_dilation = cJSON_GetObjectItem(fr, "dil")->valueint,
        };
        if (radius > maxr)
            maxr = radius;
    }
    vt_prop_cfg cfg = {
        .h = h,
        .w = w,
        .c = c,
        .max_objects = nobj,
        .max_frames = nmem,
        .max_radius = maxr,
        .topk = cJSON_GetObjectItem(meta, "topk")->valueint,
        .temperature = (float)cJSON_GetObjectItem(meta, "temp")->valuedouble,
        .roi_radius = cJSON_GetObjectItem(meta, "roi")->valueint,
    };
    vt_prop *p = NULL;
    ck_assert_int_eq(vtm_prop_new(&cfg, &p), 0);
    float *feat = load_f32(ci, "feat", (size_t)n * c);
    float *want = load_f32(ci, "out", (size_t)n * nobj);
    float *want_bg = load_f32(ci, "bg", n);
    float *got = malloc(sizeof(float) * n * nobj), *got_bg = malloc(sizeof(float) * n);
    ck_assert_int_eq(vtm_prop_run(p, feat, mem, nmem, nobj, got, got_bg, NULL), 0);
    double maxerr = 0;
    for (int i = 0; i < n * nobj; i++)
        maxerr = fmax(maxerr, fabs(got[i] - want[i]));
    for (int i = 0; i < n; i++)
        maxerr = fmax(maxerr, fabs(got_bg[i] - want_bg[i]));
    ck_assert_msg(maxerr < 1e-4, "case %d: max abs error %g", ci, maxerr);
    /* A second run gives the same bits (workspaces are reused, nothing carries over). */
    float *again = malloc(sizeof(float) * n * nobj);
    ck_assert_int_eq(vtm_prop_run(p, feat, mem, nmem, nobj, again, got_bg, NULL), 0);
    ck_assert_int_eq(memcmp(again, got, sizeof(float) * n * nobj), 0);
    free(again);
    vtm_prop_free(&p);
    ck_assert_ptr_null(p);
    for (int m = 0; m < nmem; m++) {
        free(mfeat[m]);
        free(mlab[m]);
    }
    free(feat), free(want), free(want_bg), free(got), free(got_bg);
    cJSON_Delete(meta);
    free(js);
}

START_TEST(test_prop_reference) {
    run_case(_i);
}
END_TEST

START_TEST(test_prop_bad_args) {
    vt_prop_cfg cfg = {
        .h = 2, .w = 2, .c = 4, .max_objects = 1, .max_frames = 1, .temperature = 0.0f};
    vt_prop *p = NULL;
    ck_assert_int_lt(vtm_prop_new(&cfg, &p), 0); /* zero temperature */
    cfg.temperature = 0.1f;
    ck_assert_int_eq(vtm_prop_new(&cfg, &p), 0);
    float feat[16] = {0}, out[4], bg[4], lab[4] = {0};
    uint8_t known[1] = {1};
    vt_prop_frame fr = {.feat = feat, .labels = lab, .known = known, .radius = 3};
    /* radius beyond the configured maximum and too many frames are refused */
    ck_assert_int_lt(vtm_prop_run(p, feat, &fr, 1, 1, out, bg, NULL), 0);
    fr.radius = 0;
    ck_assert_int_lt(vtm_prop_run(p, feat, &fr, 2, 1, out, bg, NULL), 0);
    ck_assert_int_eq(vtm_prop_run(p, feat, &fr, 1, 1, out, bg, NULL), 0);
    vtm_prop_free(&p);
    vtm_prop_free(&p); /* NULL is fine */
}
END_TEST

int main(void) {
    const char *src = getenv("VT_SOURCE_ROOT");
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) {
        fprintf(stderr, "SKIP: /usr/bin/python3 with NumPy is needed for the reference check "
                        "(apt-get install python3-numpy)\n");
        return 77;
    }
    if (!mkdtemp(dir))
        return 1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/reference/ref_prop.py %s > %s/n.txt",
             src ? src : ".", dir, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "ref_prop.py failed\n");
        return 1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/n.txt", dir);
    char *nt = slurp(path, NULL);
    ncases = nt ? atoi(nt) : 0;
    free(nt);

    Suite *s = suite_create("prop_reference");
    TCase *tc = tm_add_case(s, "core", 60, test_prop_bad_args, NULL);
    tcase_add_loop_test(tc, test_prop_reference, 0, ncases);
    int status = tm_run(s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return status;
}
