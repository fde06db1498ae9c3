/*
 * vtrack bench track - per-frame cost of tracking, split into stages (resize, encoder, affinity,
 * label update, upsampling + results), for every preset and profile.
 *
 * Frames are decoded into memory first so only the tracker is timed. Each configuration tracks
 * the same frames from the same first-frame mask; the first frames are warm-up (the memory fills
 * and the workspaces are sized) and are not counted. Figures are medians over the counted frames.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "commands.h"
#include "cli_util.h"
#include "vt_base.h"
#include "vt_stream.h"

#define WARMUP 8

static const char usage_text[] =
    "usage: vtrack bench track [INPUT] [--mask PNG | --box X,Y,W,H] [--model FILE|lab]\n"
    "                          [--frames N] [--threads N]\n"
    "\n"
    "Times vt_tracker_step() per stage for the presets mast and colorize in the profiles\n"
    "accurate and realtime (median ms per frame after 8 warm-up frames). INPUT defaults to the\n"
    "dev set's bear sequence ($VT_DATA or ../shared/data) with its first annotation, else\n"
    "opencv-doc's vtest.avi with a box.\n";

int vt_bench_track(int argc, char **argv) {
    static const struct option lo[] = {
        {"mask", required_argument, 0, 'm'},
        {"box", required_argument, 0, 'b'},
        {"model", required_argument, 0, 'M'},
        {"frames", required_argument, 0, 'n'},
        {"threads", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *mask = NULL, *model = NULL, *boxs = NULL;
    long frames = 40, threads = 1;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 'm':
            mask = optarg;
            break;
        case 'b':
            boxs = optarg;
            break;
        case 'M':
            model = optarg;
            break;
        case 'n':
            if (vt_cli_parse_long(optarg, WARMUP + 1, 100000, &frames) < 0)
                return vt_cli_usage_error("bench track", "--frames '%s': want %d..100000", optarg,
                                          WARMUP + 1);
            break;
        case 'T':
            if (vt_cli_parse_long(optarg, 1, 256, &threads) < 0)
                return vt_cli_usage_error("bench track", "--threads '%s': want 1..256", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return vt_cli_option_error("bench track", c, argv);
        }
    }
    char input[4096], maskbuf[4096];
    const char *data = getenv("VT_DATA") ? getenv("VT_DATA") : "../shared/data";
    if (optind < argc) {
        snprintf(input, sizeof input, "%s", argv[optind]);
    } else {
        snprintf(input, sizeof input, "%s/davis16-dev/JPEGImages/480p/bear", data);
        snprintf(maskbuf, sizeof maskbuf, "%s/davis16-dev/Annotations/480p/bear/00000.png", data);
        if (access(input, R_OK) == 0 && !mask && !boxs) {
            mask = maskbuf;
        } else {
            snprintf(input, sizeof input, "/usr/share/doc/opencv-doc/examples/data/vtest.avi");
            if (!mask && !boxs)
                boxs = "252,218,32,90";
        }
    }
    openblas_set_num_threads((int)threads);

    /* Decode the frames once. */
    char err[512];
    vt_source_opts so;
    vt_source_opts_default(&so);
    so.allow_local = 1;
    so.reconnect = 0;
    so.decoder_threads = 1;
    vt_source *src = NULL;
    if (vt_source_new(&src, input, &so, err, sizeof err) < 0) {
        fprintf(stderr, "vtrack bench track: %s\n", err);
        return 1;
    }
    uint8_t **rgb = calloc(frames, sizeof *rgb);
    int w = 0, h = 0, n = 0;
    const vt_frame *fr;
    while (n < frames && vt_source_read(src, &fr) == 0) {
        if (n > 0 && (fr->width != w || fr->height != h)) {
            /* a benchmark times one size: stop at the first frame of another */
            fprintf(stderr,
                    "vtrack bench track: %s: frame %d is %dx%d, not %dx%d: timing %d frames\n",
                    input, n, fr->width, fr->height, w, h, n);
            break;
        }
        w = fr->width, h = fr->height;
        rgb[n] = malloc((size_t)w * h * 3);
        if (!rgb[n] || vt_frame_copy_rgb(fr, 0, rgb[n]) < 0)
            break;
        n++;
    }
    vt_source_free(&src);
    if (n <= WARMUP) {
        fprintf(stderr, "vtrack bench track: %s: only %d frames\n", input, n);
        return 1;
    }
    vt_shape shape = {0};
    uint8_t *labels = NULL;
    if (mask) {
        int mw, mh, pal;
        if (vt_mask_read_png(mask, &mw, &mh, &labels, &pal, err, sizeof err) < 0) {
            fprintf(stderr, "vtrack bench track: %s\n", err);
            return 1;
        }
        shape = (vt_shape){.kind = VT_SHAPE_MASK, .w = mw, .h = mh, .data = labels};
    } else {
        float b[4];
        if (sscanf(boxs, "%f,%f,%f,%f", &b[0], &b[1], &b[2], &b[3]) != 4)
            return vt_cli_usage_error("bench track", "--box '%s': want X,Y,W,H", boxs);
        shape = (vt_shape){.kind = VT_SHAPE_BOX, .box = {b[0], b[1], b[2], b[3]}};
    }
    char path[4096];
    const char *mname = model ? model : vt_stream_default_model(path, sizeof path);
    vt_model *m = NULL;
    int rc = vt_model_load(mname, &m, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "vtrack bench track: %s\n", err);
        return 1;
    }
    printf("input %s (%dx%d, %d frames, %d warm-up), model %s (%s), %ld thread%s\n", input, w, h, n,
           WARMUP, mname, vt_model_arch(m), threads, threads > 1 ? "s" : "");
    printf("%-9s %-9s %9s %7s %8s %8s %7s %9s %7s\n", "tracker", "profile", "proc", "resize",
           "encoder", "affinity", "labels", "upsample", "total");
    static const char *const trackers[] = {"mast", "colorize"};
    static const char *const profiles[] = {"accurate", "realtime"};
    double *st[6];
    for (int i = 0; i < 6; i++)
        st[i] = malloc(sizeof(double) * n);
    int status = 0;
    for (int ti = 0; ti < 2 && !status; ti++) {
        for (int pi = 0; pi < 2 && !status; pi++) {
            vt_tracker_params p;
            vt_tracker_params_preset(&p, trackers[ti], profiles[pi], m);
            vt_tracker *t = NULL;
            if (vt_tracker_new(m, &p, &t, err, sizeof err) < 0 ||
                vt_tracker_add_object(t, 1, NULL, &shape, err, sizeof err) < 0) {
                fprintf(stderr, "vtrack bench track: %s\n", err);
                status = 1;
                vt_tracker_free(&t);
                break;
            }
            int pw, ph, k = 0;
            vt_tracker_proc_size(t, w, h, &pw, &ph);
            for (int f = 0; f < n; f++) {
                vt_image img = {.w = w, .h = h, .linesize = 3 * w, .rgb = rgb[f]};
                const vt_track_result *r;
                double t0 = vt_mono_s();
                int step_rc = vt_tracker_step(t, &img, NULL, &r);
                if (step_rc < 0) {
                    fprintf(stderr, "vtrack bench track: frame %d: %s\n", f, strerror(-step_rc));
                    status = 1;
                    break;
                }
                double total = 1000 * (vt_mono_s() - t0);
                if (f < WARMUP)
                    continue;
                st[0][k] = r->timing.resize, st[1][k] = r->timing.encode;
                st[2][k] = r->timing.affinity, st[3][k] = r->timing.labels;
                st[4][k] = r->timing.upsample, st[5][k] = total;
                k++;
            }
            char proc[32];
            snprintf(proc, sizeof proc, "%dx%d", pw, ph);
            double med[6];
            for (int i = 0; i < 6; i++)
                med[i] = vt_cli_median(st[i], k);
            printf("%-9s %-9s %9s %7.1f %8.1f %8.1f %7.1f %9.1f %7.1f\n", trackers[ti],
                   profiles[pi], proc, med[0], med[1], med[2], med[3], med[4], med[5]);
            fflush(stdout);
            vt_tracker_free(&t);
        }
    }
    for (int i = 0; i < 6; i++)
        free(st[i]);
    for (int f = 0; f < n; f++)
        free(rgb[f]);
    free(rgb);
    free(labels);
    vt_model_free(&m);
    return status;
}
