/*
 * `vtrack eval --mot` end to end: the real binary on a synthetic MOTChallenge sequence made
 * here with the ffmpeg tool (two coloured boxes moving at known speeds over a fixed texture,
 * gt.txt written by the test, so the identity baseline's scores are known exactly), the tracker
 * run with the weight-free lab model, --save and --pred agreeing, and the errors and exit codes.
 *
 * usage: test_eval_mot VTRACK
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testmain.h"
#include "clitest.h"

/*
 * The sequence "synth": 320x240, 20 frames at 10 fps.
 *   person 1, red 40x60:  x = 20 + 4 (f - 1), y = 40, counted from frame 1
 *   person 2, blue 40x60: x = 260 - 4 (f - 1), y = 140; its lines on frames 1-4 have conf 0
 *                         (as a person too far to count), so it registers on frame 5
 * They never overlap (rows 40-99 and 140-199). A conf-0 line of a third id is ignored.
 */
enum { W = 320, H = 240, FRAMES = 20, BW = 40, BH = 60 };

static int red_x(int f) {
    return 20 + 4 * (f - 1);
}
static int blue_x(int f) {
    return 260 - 4 * (f - 1);
}

static void make_sequence(const char *root, int with_seqinfo) {
    char dir[4096], cmd[8192], path[4200];
    snprintf(dir, sizeof dir, "%s/synth", root);
    mkdirs("%s/gt", dir);
    snprintf(cmd, sizeof cmd,
             "ffmpeg -loglevel error -y -f lavfi -i "
             "\"color=c=gray:s=%dx%d:r=10:d=2,format=yuv444p,"
             "geq=lum='128+60*sin(X/7)*cos(Y/9)':cb=128:cr=128\" "
             "-f lavfi -i \"color=c=red:s=%dx%d:r=10:d=2\" "
             "-f lavfi -i \"color=c=blue:s=%dx%d:r=10:d=2\" "
             "-filter_complex \"[0][1]overlay=x='20+4*n':y=40:shortest=1[a];"
             "[a][2]overlay=x='260-4*n':y=140:shortest=1,format=yuv420p\" "
             "-c:v mpeg4 -q:v 2 '%s/synth.mp4'",
             W, H, BW, BH, BW, BH, dir);
    ck_assert_msg(system(cmd) == 0, "ffmpeg failed: %s", cmd);
    snprintf(path, sizeof path, "%s/gt/gt.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int fr = 1; fr <= FRAMES; fr++) {
        fprintf(f, "%d,1,%d,40,%d,%d,1,-1,-1,-1\n", fr, red_x(fr), BW, BH);
        fprintf(f, "%d,2,%d,140,%d,%d,%d,-1,-1,-1\n", fr, blue_x(fr), BW, BH, fr >= 5);
    }
    fprintf(f, "3,9,0,0,10,10,0,-1,-1,-1\n");
    ck_assert_int_eq(fclose(f), 0);
    if (with_seqinfo) {
        snprintf(path, sizeof path, "%s/seqinfo.ini", dir);
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "[Sequence]\nname=synth\nframeRate=10\nseqLength=%d\nimWidth=%d\n", FRAMES, W);
        ck_assert_int_eq(fclose(f), 0);
    }
}

/* The numbers of `key`'s CSV row: 19 after the name (ids ... MOTA), frames in v[19]. */
static void csv_values(const char *csv, const char *key, double v[20]) {
    char pat[64];
    snprintf(pat, sizeof pat, "\n%s,", key);
    const char *line = strstr(csv, pat);
    ck_assert_msg(line != NULL, "no row '%s' in CSV:\n%s", key, csv);
    line += strlen(pat);
    for (int i = 0; i < 20; i++) {
        char *end;
        v[i] = strtod(line, &end);
        ck_assert_msg(end != line || i == 19, "row %s: field %d unreadable", key, i + 2);
        line = *end == ',' ? end + 1 : end;
    }
}

enum { C_IDS, C_GT, C_PRED, C_PAIRS, C_AO, C_SR50, C_SWAPS, C_SWAP_PCT, C_IDF1 };
enum { C_IDSW = 17, C_MOTA = 18, C_FRAMES = 19 };

START_TEST(test_identity_baseline) {
    char csv[4096], save[4096], path[4200];
    make_sequence(tmp_dir, 1);
    snprintf(csv, sizeof csv, "%s/id.csv", tmp_dir);
    snprintf(save, sizeof save, "%s/saved", tmp_dir);
    run_result r = run_vtrack(tmp_dir, "eval",
                              (const char *[]){"--mot", tmp_dir, "--baseline", "identity", "--csv",
                                               csv, "--save", save, NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);

    /* By hand: a box of 40 shifted by d = 4m pixels along x has IoU (40 - d) / (40 + d) =
     * (10 - m) / (10 + m) with its old place (0 from m = 10 on). Person 1 is scored on frames
     * 2-20 (m = 1..19), person 2 on frames 6-20 (m = 1..15): 34 pairs, and
     *   AO = 2 S / 34 with S = sum over m = 1..9 of (10 - m) / (10 + m) = 3.37543 -> 19.856 %
     *   SR50: IoU >= 0.5 while m <= 3 (7/13 = 0.54; 6/14 = 0.43): 6 of 34 = 17.647 %
     *   no swap (the boxes are on different rows).
     * IDF1: 36 ground-truth boxes (20 + 16), 36 predicted (person 1 on frames 1-20, person 2 on
     *   5-20); each matches on its registration frame and m = 1..3: IDTP 8, IDFP = IDFN = 28,
     *   IDF1 = 16 / 72 = 22.22 %. CLEAR: TP 8, FP 28, FN 28, no switch: MOTA = -20/36. */
    double s = 0;
    for (int m = 1; m <= 9; m++)
        s += (10.0 - m) / (10.0 + m);
    double ao = 100.0 * 2 * s / 34;
    char *text = slurp(csv);
    double v[20];
    csv_values(text, "synth", v);
    ck_assert_int_eq((int)v[C_IDS], 2);
    ck_assert_int_eq((int)v[C_GT], 36);
    ck_assert_int_eq((int)v[C_PRED], 36);
    ck_assert_int_eq((int)v[C_PAIRS], 34);
    ck_assert_msg(fabs(v[C_AO] - ao) < 1e-5, "AO %.6f, by hand %.6f", v[C_AO], ao);
    ck_assert_msg(fabs(v[C_SR50] - 600.0 / 34) < 1e-5, "SR50 %.6f", v[C_SR50]);
    ck_assert_int_eq((int)v[C_SWAPS], 0);
    ck_assert_msg(fabs(v[C_IDF1] - 1600.0 / 72) < 1e-5, "IDF1 %.6f", v[C_IDF1]);
    ck_assert_int_eq((int)v[C_IDSW], 0);
    ck_assert_msg(fabs(v[C_MOTA] + 2000.0 / 36) < 1e-5, "MOTA %.6f", v[C_MOTA]);
    ck_assert_int_eq((int)v[C_FRAMES], FRAMES);
    free(text);
    /* The table: a row per sequence, the overall row, and the summary line. */
    ck_assert_ptr_nonnull(strstr(r.out, "\nsynth "));
    ck_assert_ptr_nonnull(strstr(r.out, "\noverall "));
    char want[128];
    snprintf(want, sizeof want, "AO %.1f SR50 17.6 swaps 0.0%% IDF1 22.2 IDSW 0", ao);
    ck_assert_str_eq(last_line(r.out), want);
    run_free(&r);

    /* --save wrote MOTChallenge result lines: person 2's first is on frame 5, its box. */
    snprintf(path, sizeof path, "%s/synth.txt", save);
    text = slurp(path);
    ck_assert_msg(strncmp(text, "1,1,20,40,40,60,1,-1,-1,-1\n", 27) == 0, "%.60s", text);
    ck_assert_ptr_nonnull(strstr(text, "\n5,2,244,140,40,60,1,-1,-1,-1\n"));
    ck_assert_ptr_null(strstr(text, "\n4,2,"));
    free(text);

    /* ... and --pred scores them the same; the sequence folder itself is a ROOT too. */
    char seqdir[4200];
    snprintf(seqdir, sizeof seqdir, "%s/synth", tmp_dir);
    r = run_vtrack(tmp_dir, "eval", (const char *[]){"--mot", seqdir, "--pred", save, NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_str_eq(last_line(r.out), want);
    run_free(&r);
}
END_TEST

START_TEST(test_tracker_lab) {
    char csv[4096], csv2[4096], save[4096];
    make_sequence(tmp_dir, 0); /* no seqinfo.ini: it is optional */
    snprintf(csv, sizeof csv, "%s/lab.csv", tmp_dir);
    snprintf(csv2, sizeof csv2, "%s/pred.csv", tmp_dir);
    snprintf(save, sizeof save, "%s/saved", tmp_dir);
    run_result r = run_vtrack(tmp_dir, "eval",
                              (const char *[]){"--mot", tmp_dir, "--model", "lab", "--csv", csv,
                                               "--save", save, "--quiet", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    printf("%s", r.out);
    double ao, sr, sw, idf1;
    int idsw;
    ck_assert_msg(sscanf(last_line(r.out), "AO %lf SR50 %lf swaps %lf%% IDF1 %lf IDSW %d", &ao, &sr,
                         &sw, &idf1, &idsw) == 5,
                  "last line: %s", r.out);
    /* Solid boxes on a texture: the tracker must beat the identity baseline (AO 19.9) by far. */
    ck_assert_msg(ao >= 60, "lab tracker AO %.1f", ao);
    char *text = slurp(csv);
    double v[20];
    csv_values(text, "synth", v);
    ck_assert_int_eq((int)v[C_FRAMES], FRAMES);
    ck_assert_int_eq((int)v[C_PAIRS], 34);
    /* the fps column is measured */
    ck_assert_msg(strstr(r.out, "\nsynth ") && !strstr(r.out, " -\n"), "%s", r.out);
    run_free(&r);

    /* The saved predictions scored with --pred: the same metrics, no fps. */
    r = run_vtrack(tmp_dir, "eval",
                   (const char *[]){"--mot", tmp_dir, "--pred", save, "--csv", csv2, NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    char *text2 = slurp(csv2);
    double v2[20];
    csv_values(text2, "synth", v2);
    for (int i = 0; i < 19; i++)
        ck_assert_msg(v[i] == v2[i], "column %d: tracked %.6f, from --save %.6f", i + 2, v[i],
                      v2[i]);
    free(text);
    free(text2);
    run_free(&r);
}
END_TEST

/* --adapt with eval --mot (issue 17): 0 steps score as a run without it; 2 steps with one seed
 * give the same table twice (the adapted copy is deterministic); lab cannot be adapted. */
START_TEST(test_adapt) {
    char model[4096], csv[3][4200];
    shipped_weights(model, sizeof model);
    make_sequence(tmp_dir, 0);
    const char *steps[3] = {NULL, "0", "2"};
    double v[4][20];
    for (int k = 0; k < 4; k++) {
        snprintf(csv[k % 3], sizeof csv[k % 3], "%s/run%d.csv", tmp_dir, k);
        const char *args[16] = {"--mot", tmp_dir, "--model", model, "--csv", csv[k % 3]};
        int n = 6;
        if (k > 0) {
            args[n++] = "--adapt";
            args[n++] = steps[k < 3 ? k : 2];
            args[n++] = "--seed";
            args[n++] = "3";
        }
        run_result r = run_vtrack(tmp_dir, "eval", args);
        ck_assert_msg(r.status == 0, "run %d: exit %d: %s", k, r.status, r.err);
        if (k >= 2)
            ck_assert_msg(strstr(r.err, "adapted: 2 steps"), "run %d: %s", k, r.err);
        char *text = slurp(csv[k % 3]);
        csv_values(text, "synth", v[k]);
        free(text);
        run_free(&r);
    }
    /* every column but the measured fps, as test_tracker_lab compares them */
    for (int i = 0; i < 19; i++) {
        ck_assert_msg(fabs(v[0][i] - v[1][i]) < 1e-9, "--adapt 0, column %d: %.6f vs %.6f", i,
                      v[0][i], v[1][i]);
        ck_assert_msg(fabs(v[2][i] - v[3][i]) < 1e-9, "--adapt 2 twice, column %d: %.6f vs %.6f", i,
                      v[2][i], v[3][i]);
    }
    check_fails(tmp_dir, "eval",
                (const char *[]){"--mot", tmp_dir, "--model", "lab", "--adapt", "2", NULL}, 1,
                "nothing to adapt");
}
END_TEST

START_TEST(test_errors) {
    char empty[4096], path[4200], bad[4096];
    make_sequence(tmp_dir, 1);
    snprintf(empty, sizeof empty, "%s/empty", tmp_dir);
    mkdirs("%s", empty);

    /* --help: both modes, every MOT option. */
    run_result r = run_help(tmp_dir, "eval",
                            (const char *[]){"--davis", "--mot", "--baseline", "--pred", "--save",
                                             "--csv", "--seq", "--model", "--tracker", "--param",
                                             "--threads", "IDF1", NULL});
    run_free(&r);

    /* Usage errors: exit 2, naming the argument at fault. */
    static const usage_case usage[] = {
        {{"--mot", NULL}, "--mot"},
        {{"--mot", "/nonexistent", NULL}, "/nonexistent"},
        {{"--mot", "ROOT", "--seq", "nosuch", NULL}, "nosuch"},
        {{"--mot", "ROOT", "--pred", "EMPTY", "--baseline", "identity", NULL}, "--pred"},
        {{"--mot", "ROOT", "--pred", "EMPTY", "--model", "lab", NULL}, "--pred"},
        {{"--mot", "ROOT", "--pred", "/nonexistent", NULL}, "/nonexistent"},
        {{"--mot", "ROOT", "--baseline", "identity", "--model", "lab", NULL}, "--baseline"},
        {{"--mot", "ROOT", "--baseline", "median", NULL}, "median"},
        {{"--mot", "ROOT", "--tracker", "sam", NULL}, "sam"},
        {{"--mot", "ROOT", "--param", "nope=1", NULL}, "nope"},
        {{"--mot", "ROOT", "--davis", "ROOT", NULL}, "--davis"},
        {{"--mot", "ROOT", "--frobnicate", NULL}, "--frobnicate"},
        {{"--mot", "ROOT", "--adapt", "x", NULL}, "--adapt"},
    };
    check_usage_errors(tmp_dir, "eval", usage, TM_LEN(usage),
                       (const char *[]){"ROOT", tmp_dir, "EMPTY", empty, NULL});

    /* Runtime errors: exit 1, naming the file. A missing result file: */
    snprintf(path, sizeof path, "%s/synth.txt", empty);
    r = run_vtrack(tmp_dir, "eval", (const char *[]){"--mot", tmp_dir, "--pred", empty, NULL});
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, path) != NULL, "stderr does not name %s: %s", path, r.err);
    run_free(&r);
    /* a result line beyond seqinfo.ini's 20 frames: */
    FILE *f = fopen(path, "w");
    fputs("1,1,20,40,40,60,1,-1,-1,-1\n21,1,20,40,40,60,1,-1,-1,-1\n", f);
    fclose(f);
    check_fails(tmp_dir, "eval", (const char *[]){"--mot", tmp_dir, "--pred", empty, NULL}, 1,
                "synth.txt:2: frame 21 is beyond the 20 frames");
    /* a malformed ground-truth line: */
    snprintf(bad, sizeof bad, "%s/bad", tmp_dir);
    mkdirs("%s/seq/gt", bad);
    snprintf(path, sizeof path, "%s/seq/gt/gt.txt", bad);
    f = fopen(path, "w");
    fputs("1,1,20,40,40,60,1,-1,-1,-1\n2,1,20,40,-40,60,1,-1,-1,-1\n", f);
    fclose(f);
    check_fails(tmp_dir, "eval", (const char *[]){"--mot", bad, "--baseline", "identity", NULL}, 1,
                "gt.txt:2: field 5 (w): -40 is negative");
    /* a sequence without its video: */
    f = fopen(path, "w");
    fputs("1,1,20,40,40,60,1,-1,-1,-1\n", f);
    fclose(f);
    check_fails(tmp_dir, "eval", (const char *[]){"--mot", bad, "--baseline", "identity", NULL}, 1,
                "no video");
    /* a folder without any sequence: */
    check_fails(tmp_dir, "eval", (const char *[]){"--mot", empty, "--baseline", "identity", NULL},
                1, "no sequence");
}
END_TEST

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s VTRACK\n", argv[0]);
        return 2;
    }
    vtrack = argv[1];
    if (system("ffmpeg -version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP: the ffmpeg tool is not installed (it makes the test's video)\n");
        return 77;
    }
    Suite *s = suite_create("eval_mot");
    TCase *tc = tm_add_case(s, "cli", 120, test_identity_baseline, test_tracker_lab, test_errors,
                            test_adapt, NULL);
    tcase_add_checked_fixture(tc, tmp_dir_make, tmp_dir_remove);
    return tm_run(s);
}
