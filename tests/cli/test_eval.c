/*
 * `vtrack eval` end to end: the real binary on DAVIS-style folders written here (palette masks
 * through codec's vt_mask_write_png, grey ones through FFmpeg's PNG encoder), checked against
 * per-frame scores worked out by hand (the squares of test_davis.c); its errors and exit codes;
 * and, with ../shared/data, the dev set scored against itself and the identity baseline.
 *
 * usage: test_eval VTRACK {cli|data}
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>

#include "testmain.h"
#include "clitest.h"
#include "vt_base.h"
#include "vt_codec.h"

/* ------------------------------------------------------------------------------------------
 * Files and processes
 * ---------------------------------------------------------------------------------------- */

/* `vtrack eval ARGS...` with its output captured. */
static run_result run_eval(const char *tmp, const char *const *args) {
    return run_vtrack(tmp, "eval", args);
}

/* ------------------------------------------------------------------------------------------
 * Masks
 * ---------------------------------------------------------------------------------------- */

enum { W = 100, H = 100 }; /* tolerance ceil(0.008 * 141.4) = 2 pixels */

static void fill(uint8_t *m, int x0, int y0, int x1, int y1, uint8_t v) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            m[y * W + x] = v;
}

static void write_palette(const char *path, int w, int h, const uint8_t *labels) {
    char err[512] = "";
    int ret = vt_mask_write_png(path, w, h, labels, err, sizeof err);
    ck_assert_msg(ret == 0, "vt_mask_write_png %s: %s", path, err);
}

/* An 8-bit grey PNG (as DAVIS-2016 stores its masks), through FFmpeg's own PNG encoder. */
static void write_grey(const char *path, int w, int h, const uint8_t *px) {
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
    ck_assert_ptr_nonnull(codec);
    AVCodecContext *ctx = avcodec_alloc_context3(codec);
    AVFrame *frame = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    ck_assert(ctx && frame && pkt);
    ctx->width = w;
    ctx->height = h;
    ctx->pix_fmt = AV_PIX_FMT_GRAY8;
    ctx->time_base = (AVRational){1, 25};
    ck_assert_int_eq(avcodec_open2(ctx, codec, NULL), 0);
    frame->format = AV_PIX_FMT_GRAY8;
    frame->width = w;
    frame->height = h;
    ck_assert_int_eq(av_frame_get_buffer(frame, 0), 0);
    for (int y = 0; y < h; y++)
        memcpy(frame->data[0] + (size_t)y * (size_t)frame->linesize[0], px + (size_t)y * w,
               (size_t)w);
    ck_assert_int_eq(avcodec_send_frame(ctx, frame), 0);
    ck_assert_int_eq(avcodec_receive_packet(ctx, pkt), 0);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(pkt->data, 1, (size_t)pkt->size, f), (size_t)pkt->size);
    ck_assert_int_eq(fclose(f), 0);
    av_packet_free(&pkt);
    av_frame_free(&frame);
    avcodec_free_context(&ctx);
}

/*
 * ROOT/Annotations/480p/two (palette, 5 frames, objects 1 and 2, void in frames 1-3) and
 * ROOT/Annotations/480p/grey (grey {0,255}, 4 frames), with predictions in PRED/.
 *
 * Object 1 is the square A = [10,19]^2, object 2 the square B = [50,59]x[10,19] (see
 * test_davis.c for the boundary arithmetic). Scored frames and per-frame values:
 *   two, frame 1: exact, plus object 1 painted over the void [80,84]x[80,89]
 *                 void ignored: obj 1 J 1 F 1; as background: J 2/3, F 8/11. obj 2: J 1, F 1.
 *   two, frame 2: object 2 shifted right by 3: obj 2 J 7/13, F 0.6; obj 1 exact.
 *   two, frame 3: object 2 missing: obj 2 J 0, F 0; obj 1 exact.
 *   grey, frame 1 (palette prediction): exact: J 1, F 1.
 *   grey, frame 2 (grey {0,255} prediction): shifted right by 2: overlap 80, union 120,
 *                 J 2/3; every boundary pixel within the tolerance: F 1.
 */
static void write_dataset(const char *root, const char *pred) {
    uint8_t gt[W * H], p[W * H];
    char path[4096];
    mkdirs("%s/Annotations/480p/two", root);
    mkdirs("%s/Annotations/480p/grey", root);
    mkdirs("%s/JPEGImages/480p/two", root);
    mkdirs("%s/two", pred);
    mkdirs("%s/grey", pred);

    for (int t = 0; t < 5; t++) {
        memset(gt, 0, sizeof gt);
        fill(gt, 10, 10, 19, 19, 1);
        fill(gt, 50, 10, 59, 19, 2);
        if (t >= 1 && t <= 3)
            fill(gt, 80, 80, 89, 89, 255);
        snprintf(path, sizeof path, "%s/Annotations/480p/two/%05d.png", root, t);
        write_palette(path, W, H, gt);
        if (t == 0 || t == 4)
            continue; /* not scored: no prediction needed */
        memset(p, 0, sizeof p);
        fill(p, 10, 10, 19, 19, 1);
        if (t == 1) {
            fill(p, 50, 10, 59, 19, 2);
            fill(p, 80, 80, 84, 89, 1);
        } else if (t == 2) {
            fill(p, 53, 10, 62, 19, 2);
        }
        snprintf(path, sizeof path, "%s/two/%05d.png", pred, t);
        write_palette(path, W, H, p);
    }
    for (int t = 0; t < 4; t++) {
        memset(gt, 0, sizeof gt);
        fill(gt, 10, 10, 19, 19, 255);
        snprintf(path, sizeof path, "%s/Annotations/480p/grey/%05d.png", root, t);
        write_grey(path, W, H, gt);
    }
    memset(p, 0, sizeof p);
    fill(p, 10, 10, 19, 19, 1);
    snprintf(path, sizeof path, "%s/grey/00001.png", pred);
    write_palette(path, W, H, p);
    memset(p, 0, sizeof p);
    fill(p, 12, 10, 21, 19, 255);
    snprintf(path, sizeof path, "%s/grey/00002.png", pred);
    write_grey(path, W, H, p);
}

/* The CSV row of (seq, obj): its 8 numbers after the object column. */
static void csv_row(const char *csv, const char *key, double v[8]) {
    const char *line = strstr(csv, key);
    ck_assert_msg(line != NULL, "no row '%s' in CSV:\n%s", key, csv);
    int n = sscanf(line + strlen(key), "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]);
    ck_assert_int_eq(n, 8);
}

#define assert_pct(got, want)                                                                      \
    ck_assert_msg(fabs((got)-100.0 * (want)) < 1e-5, "%s = %.6f, want %.6f", #got, (got),          \
                  100.0 * (want))

/* ------------------------------------------------------------------------------------------
 * cli: tiny folders
 * ---------------------------------------------------------------------------------------- */

START_TEST(test_eval_scores) {
    char root[1024], pred[1024], csv[1024];
    snprintf(root, sizeof root, "%s/davis", tmp_dir);
    snprintf(pred, sizeof pred, "%s/pred", tmp_dir);
    snprintf(csv, sizeof csv, "%s/table.csv", tmp_dir);
    write_dataset(root, pred);

    run_result r =
        run_eval(tmp_dir, (const char *[]){"--davis", root, "--pred", pred, "--csv", csv, NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    char *text = slurp(csv);
    double v[8];

    /* grey/1: J = [1, 2/3]: mean 5/6, recall 1, decay (2 frames: v0 - v1) 1/3; F = [1, 1]. */
    csv_row(text, "grey,1,", v);
    assert_pct(v[0], 5.0 / 6.0);
    assert_pct(v[1], 1.0);
    assert_pct(v[2], 1.0 / 3.0);
    assert_pct(v[3], 1.0);
    assert_pct(v[4], 1.0);
    assert_pct(v[5], 0.0);
    assert_pct(v[6], (5.0 / 6.0 + 1.0) / 2);
    ck_assert_int_eq((int)v[7], 2);
    /* two/1 (void ignored): all exact. */
    csv_row(text, "two,1,", v);
    assert_pct(v[0], 1.0);
    assert_pct(v[3], 1.0);
    ck_assert_int_eq((int)v[7], 3);
    /* two/2: J = [1, 7/13, 0]: mean 20/39; recall 2/3 (7/13 > 0.5); 3 frames: bins [0..1] and
     * [2..2]: decay (1 + 7/13)/2 - 0 = 10/13. F = [1, 0.6, 0]: mean 1.6/3, recall 2/3, decay
     * 0.8. */
    csv_row(text, "two,2,", v);
    assert_pct(v[0], 20.0 / 39.0);
    assert_pct(v[1], 2.0 / 3.0);
    assert_pct(v[2], 10.0 / 13.0);
    assert_pct(v[3], 1.6 / 3.0);
    assert_pct(v[4], 2.0 / 3.0);
    assert_pct(v[5], 0.8);
    /* Means over the 3 objects: J (5/6 + 1 + 20/39)/3, F (1 + 1 + 1.6/3)/3; 3 + 2 frames. */
    double jm = (5.0 / 6.0 + 1.0 + 20.0 / 39.0) / 3, fm = (2.0 + 1.6 / 3.0) / 3;
    csv_row(text, "mean,3,", v);
    assert_pct(v[0], jm);
    assert_pct(v[3], fm);
    assert_pct(v[6], (jm + fm) / 2);
    ck_assert_int_eq((int)v[7], 5);
    free(text);

    /* The table on stdout: a row per object, and exactly this last line (J&F 81.3). */
    ck_assert_ptr_nonnull(strstr(r.out, "two "));
    ck_assert_ptr_nonnull(strstr(r.out, "grey "));
    ck_assert_str_eq(last_line(r.out), "J&F 81.3 J 78.2 F 84.4");
    run_free(&r);

    /* --void background: object 1 of "two" now pays for the pixels painted over void:
     * J = [2/3, 1, 1]: mean 8/9, decay (2/3 + 1)/2 - 1 = -1/6; F = [8/11, 1, 1]: mean 10/11. */
    r = run_eval(tmp_dir, (const char *[]){"--davis", root, "--pred", pred, "--seq", "two", "--csv",
                                           csv, "--void", "background", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    text = slurp(csv);
    csv_row(text, "two,1,", v);
    assert_pct(v[0], 8.0 / 9.0);
    assert_pct(v[1], 1.0);
    assert_pct(v[2], -1.0 / 6.0);
    assert_pct(v[3], 10.0 / 11.0);
    ck_assert_ptr_null(strstr(text, "grey"));
    free(text);
    run_free(&r);

    /* --seq picks sequences: grey alone is J 5/6, F 1: J&F 91.7. The '=' form works too. */
    r = run_eval(tmp_dir, (const char *[]){"--davis", root, "--pred", pred, "--seq=grey", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_str_eq(last_line(r.out), "J&F 91.7 J 83.3 F 100.0");
    ck_assert_ptr_null(strstr(r.out, "two"));
    run_free(&r);
    /* a sequence named twice counts once (it counted twice in the means) */
    r = run_eval(tmp_dir, (const char *[]){"--davis", root, "--pred", pred, "--seq", "grey",
                                           "--seq", "grey", "--seq", "two", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_str_eq(last_line(r.out), "J&F 81.3 J 78.2 F 84.4");
    run_free(&r);

    /* The ground truth scored against itself: 100 everywhere. */
    char ann[4096];
    snprintf(ann, sizeof ann, "%s/Annotations/480p", root);
    r = run_eval(tmp_dir, (const char *[]){"--davis", root, "--pred", ann, NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_str_eq(last_line(r.out), "J&F 100.0 J 100.0 F 100.0");
    run_free(&r);
}
END_TEST

START_TEST(test_eval_file_errors) {
    char root[1024], pred[1024], path[4096];
    snprintf(root, sizeof root, "%s/davis", tmp_dir);
    snprintf(pred, sizeof pred, "%s/pred", tmp_dir);
    write_dataset(root, pred);
    uint8_t p[W * H] = {0};

    /* A missing prediction frame: exit 1, naming the file. */
    snprintf(path, sizeof path, "%s/two/00002.png", pred);
    ck_assert_int_eq(unlink(path), 0);
    run_result r = run_eval(tmp_dir, (const char *[]){"--davis", root, "--pred", pred, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, path) != NULL, "stderr does not name %s: %s", path, r.err);
    run_free(&r);

    /* A prediction of another size: exit 1, naming the file. */
    write_palette(path, W / 2, H, p);
    r = run_eval(tmp_dir, (const char *[]){"--davis", root, "--pred", pred, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, path) != NULL, "stderr does not name %s: %s", path, r.err);
    ck_assert_ptr_nonnull(strstr(r.err, "50x100"));
    run_free(&r);

    /* A label beyond the sequence's objects (3 in a 2-object sequence): exit 1. */
    fill(p, 0, 0, 4, 4, 3);
    write_palette(path, W, H, p);
    r = run_eval(tmp_dir, (const char *[]){"--davis", root, "--pred", pred, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, path) != NULL && strstr(r.err, "label 3"), "stderr: %s", r.err);
    run_free(&r);

    /* Not a PNG: exit 1, naming the file. */
    FILE *f = fopen(path, "w");
    fputs("not a png\n", f);
    fclose(f);
    r = run_eval(tmp_dir, (const char *[]){"--davis", root, "--pred", pred, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, path) != NULL, "stderr does not name %s: %s", path, r.err);
    run_free(&r);

    /* A sequence with fewer than 3 annotations has nothing to score. */
    mkdirs("%s/Annotations/480p/short", root);
    snprintf(path, sizeof path, "%s/Annotations/480p/short/00000.png", root);
    write_palette(path, W, H, p);
    r = run_eval(tmp_dir,
                 (const char *[]){"--davis", root, "--pred", pred, "--seq", "short", NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "at least 3"));
    run_free(&r);
}
END_TEST

START_TEST(test_eval_usage) {
    char root[1024], pred[1024];
    snprintf(root, sizeof root, "%s/davis", tmp_dir);
    snprintf(pred, sizeof pred, "%s/pred", tmp_dir);
    write_dataset(root, pred);

    /* --help documents every option, on stdout, exit 0. */
    run_result r =
        run_help(tmp_dir, "eval",
                 (const char *[]){"--davis", "--pred", "--seq", "--csv", "--res", "--void", NULL});
    run_free(&r);

    /* Usage errors: exit 2, naming the argument at fault. */
    static const usage_case bad[] = {
        {{NULL}, "--davis"},
        {{"--davis", "ROOT", NULL}, "--pred"},
        {{"--davis", "ROOT", "--pred", "PRED", "--frobnicate", NULL}, "--frobnicate"},
        {{"--davis", "ROOT", "--pred", "PRED", "--seq", "nosuch", NULL}, "nosuch"},
        {{"--davis", "ROOT", "--pred", "PRED", "--void", "maybe", NULL}, "maybe"},
        {{"--davis", "ROOT", "--pred", "PRED", "--res", "1080p", NULL}, "1080p"},
        {{"--davis", "ROOT", "--pred", "PRED", "--csv", NULL}, "--csv"},
        {{"--davis", "/nonexistent", "--pred", "PRED", NULL}, "/nonexistent"},
        {{"--davis", "ROOT", "--pred", "/nonexistent", NULL}, "/nonexistent"},
    };
    check_usage_errors(tmp_dir, "eval", bad, TM_LEN(bad),
                       (const char *[]){"ROOT", root, "PRED", pred, NULL});
}
END_TEST

/* ------------------------------------------------------------------------------------------
 * data: the dev set
 * ---------------------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The PNG names of `dir`, sorted (at most `max`). */
static int list_pngs(const char *dir, char **names, int max) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls -1 '%s'", dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, p) && n < max) {
        line[strcspn(line, "\n")] = '\0';
        size_t len = strlen(line);
        if (len > 4 && strcmp(line + len - 4, ".png") == 0)
            names[n++] = strdup(line);
    }
    pclose(p);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    return n;
}

static double parse_jf(const char *line) {
    double jf, j, f;
    ck_assert_msg(sscanf(line, "J&F %lf J %lf F %lf", &jf, &j, &f) == 3, "last line: '%s'", line);
    return jf;
}

START_TEST(test_eval_dev_set) {
    const char *data = getenv("VT_DATA");
    char root[1024];
    snprintf(root, sizeof root, "%s/davis16-dev", data ? data : "");
    struct stat st;
    if (!data || stat(root, &st) != 0) {
        fprintf(stderr, "SKIP test_eval_dev_set: %s not found (set VT_DATA to ../shared/data)\n",
                root);
        return;
    }
    char ann[1100], pred[1100];
    snprintf(ann, sizeof ann, "%s/Annotations/480p", root);
    snprintf(pred, sizeof pred, "%s/identity", tmp_dir);

    /* The ground truth against itself: 100 everywhere. */
    double t0 = vt_mono_s();
    run_result r = run_eval(tmp_dir, (const char *[]){"--davis", root, "--pred", ann, NULL});
    double t1 = vt_mono_s();
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_str_eq(last_line(r.out), "J&F 100.0 J 100.0 F 100.0");
    fprintf(stderr, "dev set, ground truth vs itself: %.2f s\n", t1 - t0);
    run_free(&r);

    /* The identity baseline: every frame predicted as the first annotation (labels as read:
     * grey {0,255} becomes object 1 in the palette output). */
    static const char *const seqs[] = {"bear",        "boat",   "dance-jump",      "dog-agility",
                                       "drift-turn",  "hockey", "motocross-bumps", "motorbike",
                                       "rollerblade", "surf",   "swing",           "tennis"};
    for (size_t s = 0; s < sizeof seqs / sizeof seqs[0]; s++) {
        char dir[1200], path[4096];
        snprintf(dir, sizeof dir, "%s/%s", ann, seqs[s]);
        char *names[512];
        int n = list_pngs(dir, names, 512);
        ck_assert_int_ge(n, 3);
        int w, h, pal;
        uint8_t *labels = NULL;
        char err[512] = "";
        snprintf(path, sizeof path, "%s/%s", dir, names[0]);
        ck_assert_msg(vt_mask_read_png(path, &w, &h, &labels, &pal, err, sizeof err) == 0, "%s",
                      err);
        for (int i = 0; i < w * h; i++)
            labels[i] = labels[i] ? 1 : 0;
        mkdirs("%s/%s", pred, seqs[s]);
        for (int t = 0; t < n; t++) {
            snprintf(path, sizeof path, "%s/%s/%s", pred, seqs[s], names[t]);
            write_palette(path, w, h, labels);
            free(names[t]);
        }
        free(labels);
    }
    t0 = vt_mono_s();
    r = run_eval(tmp_dir, (const char *[]){"--davis", root, "--pred", pred, NULL});
    t1 = vt_mono_s();
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    fprintf(stderr, "dev set, identity baseline (%.2f s):\n%s\n", t1 - t0, r.out);
    /* The official DAVIS evaluation code scores the identity baseline 21.8 on this set
     * (docs/RESULTS.md). */
    double jf = parse_jf(last_line(r.out));
    ck_assert_msg(fabs(jf - 21.8) <= 0.1 + 1e-9, "identity J&F %.1f, official 21.8", jf);
    run_free(&r);
}
END_TEST

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[2], "cli") != 0 && strcmp(argv[2], "data") != 0)) {
        fprintf(stderr, "usage: %s VTRACK {cli|data}\n", argv[0]);
        return 2;
    }
    vtrack = argv[1];
    if (strcmp(argv[2], "data") == 0) {
        /* Without the data set, say why and report "skipped" to meson (exit 77). */
        const char *data = getenv("VT_DATA");
        char root[4096];
        struct stat st;
        snprintf(root, sizeof root, "%s/davis16-dev", data ? data : "(VT_DATA unset)");
        if (!data || stat(root, &st) != 0) {
            fprintf(stderr, "SKIP: %s not found; the dev-set test needs ../shared/data\n", root);
            return 77;
        }
    }
    Suite *s = suite_create("eval");
    TCase *tc;
    if (strcmp(argv[2], "cli") == 0)
        tc = tm_add_case(s, argv[2], 60, test_eval_scores, test_eval_file_errors, test_eval_usage,
                         NULL);
    else
        tc = tm_add_case(s, argv[2], 850, test_eval_dev_set, NULL);
    tcase_add_checked_fixture(tc, tmp_dir_make, tmp_dir_remove);
    return tm_run(s);
}
