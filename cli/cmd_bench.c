/*
 * vtrack bench - measure vtrack's components against their peers.
 *
 *   vtrack bench encoder --arch A --size WxH [--threads N] [--weights FILE] [--iters K]
 *                        [--warmup K] [--no-peer] [--peer-script PATH]
 *
 * Subcommands live in the table below (one function each), so others (e.g. `bench track`) are
 * one entry away.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "cli_util.h"
#include "vt_base.h"
#include "vt_model.h"

/* OpenBLAS's own thread control (cblas.h declares it too, but only in OpenBLAS's header). */
void openblas_set_num_threads(int n);

/* CPU time of the whole process (all threads): on a shared machine it is far less disturbed by
 * other people's jobs than wall time, so both are reported. */
static double cpu_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Where bench/encoder_peer.py is: --peer-script, $VT_SOURCE_ROOT/bench, or a bench/ directory
 * above the executable (a build directory inside the source tree). */
static const char *peer_script(const char *opt, char *buf, size_t n) {
    if (opt)
        return opt;
    const char *root = getenv("VT_SOURCE_ROOT");
    if (root) {
        snprintf(buf, n, "%s/bench/encoder_peer.py", root);
        return access(buf, R_OK) == 0 ? buf : NULL;
    }
    char exe[2048];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return NULL;
    exe[len] = 0;
    for (int up = 0; up < 5; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash)
            break;
        *slash = 0;
        snprintf(buf, n, "%s/bench/encoder_peer.py", exe);
        if (access(buf, R_OK) == 0)
            return buf;
    }
    return NULL;
}

static void encoder_usage(FILE *f) {
    fprintf(f, "usage: vtrack bench encoder --arch ARCH --size WxH [--threads N] "
               "[--weights FILE]\n"
               "                            [--iters K] [--warmup K] [--no-peer] "
               "[--peer-script PATH]\n\n"
               "Times one frame through the encoder (RGB in, features out: colour conversion\n"
               "included), median of K >= 10 runs after warm-up, and the same architecture and\n"
               "weights in PyTorch (bench/encoder_peer.py under /usr/bin/python3) in the same "
               "run.\n"
               "Without --weights the architecture's seeded random weights are used.\n"
               "ARCH: ");
    for (const char *const *a = vt_model_arch_names(); *a; a++)
        fprintf(f, "%s%s", *a, a[1] ? ", " : "\n");
}

/* What the C side ran and measured, for the comparison with the PyTorch peer. */
typedef struct bench_run {
    vt_model *m;
    const char *weights; /* NULL: the peer gets m saved to a temporary file */
    int w, h, threads, iters, warmup;
    uint8_t *rgb;  /* the frame, w x h RGB */
    vt_features f; /* the C side's features of it (borrowed from the encoder) */
    double macs, med, cpu_med;
} bench_run;

/* Time the encoder on a noise frame (written to b->rgb) and print the figures; fills b->f, macs,
 * med and cpu_med. ms and cpu hold b->iters values each. The exit status: 0 or 1. */
static int time_encoder(bench_run *b, vt_encoder *e, double *ms, double *cpu) {
    const int w = b->w, h = b->h, iters = b->iters;
    uint32_t s = 12345;
    for (size_t i = 0; i < (size_t)3 * w * h; i++) {
        s = s * 1664525u + 1013904223u;
        b->rgb[i] = (uint8_t)(s >> 24);
    }
    vt_image img = {w, h, 3 * w, b->rgb};
    vt_features *f = &b->f;
    double t0 = vt_mono_s() * 1e3;
    int r = vt_encoder_run(e, &img, f);
    double first = vt_mono_s() * 1e3 - t0;
    if (r < 0) {
        fprintf(stderr, "vtrack bench encoder: encoder failed at %dx%d: %s\n", w, h, strerror(-r));
        return 1;
    }
    for (int i = 1; i < b->warmup; i++)
        vt_encoder_run(e, &img, f);
    for (int i = 0; i < iters; i++) {
        double c0 = cpu_ms();
        t0 = vt_mono_s() * 1e3;
        vt_encoder_run(e, &img, f);
        ms[i] = vt_mono_s() * 1e3 - t0;
        cpu[i] = cpu_ms() - c0;
    }
    vt_cli_sort(ms, iters);
    vt_cli_sort(cpu, iters);
    const double med = ms[iters / 2], macs = vt_model_macs(b->m, w, h);
    printf("encoder %s at %dx%d, %d thread%s: features %dx%dx%d (stride %d)\n", vt_model_arch(b->m),
           w, h, b->threads, b->threads == 1 ? "" : "s", f->c, f->h, f->w, f->stride);
    printf("  MACs/frame       %.3f G (direct convolution count)\n", macs / 1e9);
    printf("  vtrack (C)       median %8.2f ms   min %8.2f ms   cpu %8.2f ms   %d runs (first "
           "%.0f ms)",
           med, ms[0], cpu[iters / 2], iters, first);
    if (macs > 0)
        printf("   %.1f GFLOP/s", 2 * macs / med / 1e6);
    printf("\n");
    b->med = med;
    b->macs = macs;
    b->cpu_med = cpu[iters / 2];
    return 0;
}

/* Write the peer's inputs: the frame to tmpi, an empty output file tmpo, and the weights to tmpw
 * when no weights file was given. The names are the mkstemp templates, filled in (each left ""
 * until made). 0 or -1. */
static int make_peer_files(const bench_run *b, char *tmpw, char *tmpi, char *tmpo, size_t n) {
    const size_t bytes = (size_t)3 * b->w * b->h;
    int fd;
    snprintf(tmpi, n, "/tmp/vt_bench_img.XXXXXX");
    if ((fd = mkstemp(tmpi)) < 0) {
        tmpi[0] = 0;
        return -1;
    }
    ssize_t wr = write(fd, b->rgb, bytes);
    close(fd);
    if (wr != (ssize_t)bytes)
        return -1;
    snprintf(tmpo, n, "/tmp/vt_bench_out.XXXXXX");
    if ((fd = mkstemp(tmpo)) < 0) {
        tmpo[0] = 0;
        return -1;
    }
    close(fd);
    if (!b->weights) {
        char err[512];
        snprintf(tmpw, n, "/tmp/vt_bench_w.XXXXXX");
        if ((fd = mkstemp(tmpw)) < 0) {
            tmpw[0] = 0;
            return -1;
        }
        close(fd);
        if (vt_model_save(b->m, tmpw, err, sizeof err) < 0) {
            fprintf(stderr, "vtrack bench encoder: %s\n", err);
            return -1;
        }
    }
    return 0;
}

/* Run the peer script on the files make_peer_files wrote and print its figures next to ours.
 * The exit status: 0, or 1 when the peer failed. */
static int compare_peer(const bench_run *b, const char *py, const char *tmpw, const char *tmpi,
                        const char *tmpo) {
    char line[512] = "", size[32], nthreads[16], niters[16], nwarm[16];
    snprintf(size, sizeof size, "%dx%d", b->w, b->h);
    snprintf(nthreads, sizeof nthreads, "%d", b->threads);
    snprintf(niters, sizeof niters, "%d", b->iters);
    snprintf(nwarm, sizeof nwarm, "%d", b->warmup > 0 ? b->warmup : 1);
    /* no shell: the paths go to the peer as they are */
    char *const pargv[] = {"/usr/bin/python3",
                           (char *)py,
                           "--weights",
                           (char *)(b->weights ? b->weights : tmpw),
                           "--image",
                           (char *)tmpi,
                           "--size",
                           size,
                           "--threads",
                           nthreads,
                           "--iters",
                           niters,
                           "--warmup",
                           nwarm,
                           "--out",
                           (char *)tmpo,
                           NULL};
    pid_t pid = -1;
    FILE *p = vt_cli_spawn(pargv, &pid);
    double pmed = 0, pmin = 0, pcpu = 0;
    char ver[64] = "?";
    while (p && fgets(line, sizeof line, p))
        if (sscanf(line, "peer torch=%63s threads=%*d median_ms=%lf min_ms=%lf cpu_ms=%lf", ver,
                   &pmed, &pmin, &pcpu) == 4)
            break;
    int st = p ? vt_cli_spawn_close(p, pid) : -1;
    if (st != 0 || pmed <= 0) {
        printf("  PyTorch          failed: %s", line[0] ? line : "(no output)\n");
        return 1; /* no peer, no comparison: --no-peer says so on purpose */
    }
    /* Same weights, same frame: the features must agree (a wrong peer is no peer). */
    const vt_features *f = &b->f;
    size_t n = (size_t)f->c * f->h * f->w;
    float *peer_feat = malloc(n * sizeof *peer_feat);
    FILE *o = fopen(tmpo, "rb");
    double maxref = 0, maxerr = -1;
    if (peer_feat && o && fread(peer_feat, sizeof *peer_feat, n, o) == n) {
        maxerr = 0;
        for (size_t i = 0; i < n; i++) {
            maxref = fmax(maxref, fabs(peer_feat[i]));
            maxerr = fmax(maxerr, fabs(peer_feat[i] - f->data[i]));
        }
    }
    if (o)
        fclose(o);
    free(peer_feat);
    printf("  PyTorch %-8s median %8.2f ms   min %8.2f ms   cpu %8.2f ms   %d runs", ver, pmed,
           pmin, pcpu, b->iters);
    if (b->macs > 0)
        printf("                     %.1f GFLOP/s", 2 * b->macs / pmed / 1e6);
    printf("\n  ratio            C runs at %.2fx PyTorch's speed (median wall time; %.2fx in CPU "
           "time)\n",
           pmed / b->med, pcpu / b->cpu_med);
    if (maxerr >= 0)
        printf("  agreement        max |C - PyTorch| = %.3g (%.2g of max |feature|)\n", maxerr,
               maxref > 0 ? maxerr / maxref : 0.0);
    else
        printf("  agreement        PyTorch's features unreadable\n");
    return 0;
}

/* Run bench/encoder_peer.py on the same weights and frame and compare. The exit status. */
static int run_peer(const bench_run *b, const char *script) {
    char sbuf[4096];
    const char *py = peer_script(script, sbuf, sizeof sbuf);
    if (!py || access("/usr/bin/python3", X_OK) != 0) {
        printf("  PyTorch          unavailable (%s)\n",
               py ? "no /usr/bin/python3" : "bench/encoder_peer.py not found: set VT_SOURCE_ROOT");
        return 0;
    }
    /* The peer loads the very weights the C side runs: save them unless a file was given. */
    char tmpw[64] = "", tmpi[64] = "", tmpo[64] = "";
    int rc = 1;
    if (make_peer_files(b, tmpw, tmpi, tmpo, sizeof tmpw) == 0)
        rc = compare_peer(b, py, tmpw, tmpi, tmpo);
    if (tmpw[0])
        unlink(tmpw);
    if (tmpi[0])
        unlink(tmpi);
    if (tmpo[0])
        unlink(tmpo);
    return rc;
}

static int bench_encoder(int argc, char **argv) {
    const char *arch = NULL, *weights = NULL, *script = NULL;
    int w = 0, h = 0, threads = 1, iters = 10, warmup = 3, peer = 1;
    enum {
        O_ARCH = 256,
        O_WEIGHTS,
        O_PEER_SCRIPT,
        O_SIZE,
        O_THREADS,
        O_ITERS,
        O_WARMUP,
        O_NO_PEER
    };
    static const struct option lo[] = {{"arch", required_argument, 0, O_ARCH},
                                       {"weights", required_argument, 0, O_WEIGHTS},
                                       {"peer-script", required_argument, 0, O_PEER_SCRIPT},
                                       {"size", required_argument, 0, O_SIZE},
                                       {"threads", required_argument, 0, O_THREADS},
                                       {"iters", required_argument, 0, O_ITERS},
                                       {"warmup", required_argument, 0, O_WARMUP},
                                       {"no-peer", no_argument, 0, O_NO_PEER},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int c, idx;
    for (idx = -1; (c = getopt_long(argc, argv, ":h", lo, &idx)) != -1; idx = -1) {
        const char *v = optarg;
        switch (c) {
        case 'h':
            encoder_usage(stdout);
            return 0;
        case O_NO_PEER:
            peer = 0;
            break;
        case O_ARCH:
            arch = v;
            break;
        case O_WEIGHTS:
            weights = v;
            break;
        case O_PEER_SCRIPT:
            script = v;
            break;
        case O_SIZE:
            if (sscanf(v, "%dx%d", &w, &h) != 2 || w < 8 || h < 8 || w > 8192 || h > 8192)
                return vt_cli_usage_error("bench encoder", "--size '%s' is not WxH (8..8192)", v);
            break;
        case O_THREADS:
        case O_ITERS:
        case O_WARMUP: {
            const int min = c == O_WARMUP ? 0 : c == O_ITERS ? 10 : 1;
            long n;
            if (vt_cli_parse_long(v, min, 10000, &n))
                return vt_cli_usage_error("bench encoder",
                                          "--%s '%s' must be an integer in [%d, "
                                          "10000]",
                                          lo[idx].name, v, min);
            *(c == O_THREADS ? &threads : c == O_ITERS ? &iters : &warmup) = (int)n;
            break;
        }
        default:
            return vt_cli_option_error("bench encoder", c, argv);
        }
    }
    if (optind < argc)
        return vt_cli_usage_error("bench encoder", "unexpected argument '%s'", argv[optind]);
    if ((!arch && !weights) || !w) {
        encoder_usage(stderr);
        return 2;
    }

    char err[512];
    vt_model *m = NULL;
    if (weights) {
        if (vt_model_load(weights, &m, err, sizeof err) < 0) {
            fprintf(stderr, "vtrack bench encoder: %s\n", err);
            return 1;
        }
        if (arch && strcmp(arch, vt_model_arch(m))) {
            int st = vt_cli_usage_error("bench encoder", "%s holds %s, not --arch %s", weights,
                                        vt_model_arch(m), arch);
            vt_model_free(&m);
            return st;
        }
    } else if (vt_model_new(arch, 1, &m, err, sizeof err) < 0) {
        fprintf(stderr, "vtrack bench encoder: %s\n", err);
        return 2;
    }
    openblas_set_num_threads(threads);

    bench_run b = {.m = m,
                   .weights = weights,
                   .w = w,
                   .h = h,
                   .threads = threads,
                   .iters = iters,
                   .warmup = warmup};
    /* Noise frame: convolution cost does not depend on content; the peer reads the same. */
    b.rgb = malloc((size_t)3 * w * h);
    double *ms = calloc(iters, sizeof *ms), *cpu = calloc(iters, sizeof *cpu);
    vt_encoder *e = NULL;
    int rc = 1;
    if (b.rgb && ms && cpu && vt_encoder_new(m, &e) == 0) {
        rc = time_encoder(&b, e, ms, cpu);
        if (rc == 0 && peer)
            rc = run_peer(&b, script);
    }
    free(ms);
    free(cpu);
    free(b.rgb);
    vt_encoder_free(&e);
    vt_model_free(&m);
    return rc;
}

static const vt_cmd_entry subcommands[] = {
    {"encoder", bench_encoder, "time an encoder against the same model in PyTorch"},
    {"track", vt_bench_track, "time tracking per stage for every preset and profile"},
};

int vt_cmd_bench(int argc, char **argv) {
    const size_t n = sizeof subcommands / sizeof subcommands[0];
    if (argc >= 2)
        for (size_t i = 0; i < n; i++)
            if (!strcmp(argv[1], subcommands[i].name))
                return subcommands[i].run(argc - 1, argv + 1);
    FILE *f = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? stdout : stderr;
    if (argc >= 2 && f == stderr)
        fprintf(stderr, "vtrack bench: unknown benchmark '%s'\n", argv[1]);
    fprintf(f, "usage: vtrack bench BENCHMARK [OPTIONS]   (vtrack bench BENCHMARK --help)\n\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].help);
    return f == stdout ? 0 : 2;
}
