/* bench_decode.c - codec/'s decode + scale throughput on one thread, next to the ffmpeg tool
 * on the same files in the same run.
 *
 * For each size (480p, 720p, 1080p) it makes an H.264 clip (from opencv-doc's vtest.avi when
 * installed, else FFmpeg's testsrc2 pattern), then alternates, `runs` times each:
 *   ffmpeg -threads 1 ... -f null -                        decode only
 *   ffmpeg -threads 1 ... -vf format=rgb24 -f null -       decode + RGB24 at source size
 *   vt_source (decoder_threads=1)                          decode + RGB24 at source size
 *   vt_source with proc_width 640                          + a second RGB24 output at 640 wide
 * and prints the medians as a Markdown table: frames per CPU second (ffmpeg: utime + stime as
 * -benchmark reports them; ours: the process CPU clock from open to EOF), which shared machines
 * disturb least, and in brackets frames per wall second (ffmpeg: rtime; ours: open to EOF).
 *
 * usage: bench_decode [--runs N] [--frames N] [--dir DIR]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/error.h>

#include "vt_base.h"
#include "vt_codec.h"

#define VTEST "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

typedef struct size {
    const char *name;
    int w, h;
} size;

static const size sizes[] = {{"480p", 854, 480}, {"720p", 1280, 720}, {"1080p", 1920, 1080}};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run the ffmpeg tool with -benchmark; returns frames / rtime (wall) and sets *cpu_fps to
 * frames / (utime + stime); -1 on failure. */
static double ffmpeg_fps(const char *clip, const char *filter, int frames, double *cpu_fps) {
    char cmd[2048], line[512];
    double rtime = -1, cpu = -1;
    FILE *p;
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -hide_banner -nostdin -benchmark -threads 1 -i '%s' -sws_flags bilinear "
             "-filter_threads 1 %s%s -f null - 2>&1",
             clip, filter ? "-vf " : "", filter ? filter : "");
    p = popen(cmd, "r");
    if (!p)
        return -1;
    while (fgets(line, sizeof(line), p)) {
        const char *r = strstr(line, "rtime="), *st = strstr(line, "stime=");
        if (strncmp(line, "bench: utime=", 13) == 0 && r && st) {
            rtime = atof(r + 6);
            cpu = atof(line + 13) + atof(st + 6);
        }
    }
    if (pclose(p) != 0 || rtime <= 0 || cpu <= 0)
        return -1;
    *cpu_fps = frames / cpu;
    return frames / rtime;
}

/* Decode the whole clip with vt_source on one thread, from open to EOF; returns frames per wall
 * second and sets *cpu_fps to frames per CPU second; -1 on failure. */
static double ours_fps(const char *clip, int proc_width, int *frames, double *cpu_fps) {
    vt_source_opts o;
    vt_source *s = NULL;
    const vt_frame *f;
    char err[512];
    double t0 = vt_mono_s(), c0 = cpu_s();
    int n = 0, ret;
    unsigned sum = 0;

    vt_source_opts_default(&o);
    o.allow_local = 1;
    o.decoder_threads = 1;
    o.proc_width = proc_width;
    if (vt_source_new(&s, clip, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    while ((ret = vt_source_read(s, &f)) == 0) {
        sum += f->rgb[0]; /* touch the output */
        n++;
    }
    if (ret != AVERROR_EOF)
        fprintf(stderr, "%s: %s\n", clip, vt_source_last_error(s));
    vt_source_free(&s);
    if (frames)
        *frames = n;
    (void)sum;
    if (!n || ret != AVERROR_EOF)
        return -1;
    *cpu_fps = n / (cpu_s() - c0);
    return n / (vt_mono_s() - t0);
}

int main(int argc, char **argv) {
    int runs = 5, frames = 300;
    char dir[512] = "";
    int have_vtest = access(VTEST, R_OK) == 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            frames = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            snprintf(dir, sizeof(dir), "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--runs N] [--frames N] [--dir DIR]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 99 || frames < 10) {
        fprintf(stderr, "bench_decode: bad --runs %d or --frames %d\n", runs, frames);
        return 2;
    }
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/vtrack-bench-decode");
        mkdir(dir, 0755);
    }
    printf("Source: %s, %d frames, H.264 (libx264 -preset medium -crf 23, yuv420p); median of "
           "%d runs, 1 thread.\nEach cell: frames per CPU second (frames per wall second).\n\n",
           have_vtest ? "vtest.avi (opencv-doc) scaled" : "testsrc2", frames, runs);
    printf("| clip | ffmpeg decode only | ffmpeg decode + rgb24 | vt_source rgb24 | "
           "vt_source rgb24 + 640w |\n");
    printf("| --- | ---: | ---: | ---: | ---: |\n");
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        const size *sz = &sizes[k];
        char clip[700], cmd[2048];
        double a[99], b[99], c[99], d[99], ac[99], bc[99], cc[99], dc[99];
        int n = 0;
        struct stat sb;

        snprintf(clip, sizeof(clip), "%s/clip-%s.mp4", dir, sz->name);
        if (stat(clip, &sb) != 0) {
            if (have_vtest)
                snprintf(cmd, sizeof(cmd),
                         "ffmpeg -hide_banner -nostdin -loglevel error -y -i %s -vf "
                         "scale=%d:%d -frames:v %d -c:v libx264 -preset medium -crf 23 "
                         "-pix_fmt yuv420p '%s'",
                         VTEST, sz->w, sz->h, frames, clip);
            else
                snprintf(cmd, sizeof(cmd),
                         "ffmpeg -hide_banner -nostdin -loglevel error -y -f lavfi -i "
                         "testsrc2=size=%dx%d:rate=25 -frames:v %d -c:v libx264 -preset medium "
                         "-crf 23 -pix_fmt yuv420p '%s'",
                         sz->w, sz->h, frames, clip);
            if (system(cmd) != 0) {
                fprintf(stderr, "bench_decode: cannot make %s\n", clip);
                return 1;
            }
        }
        for (int r = 0; r < runs; r++) {
            a[r] = ffmpeg_fps(clip, NULL, frames, &ac[r]);
            b[r] = ffmpeg_fps(clip, "format=rgb24", frames, &bc[r]);
            c[r] = ours_fps(clip, 0, &n, &cc[r]);
            d[r] = ours_fps(clip, 640, NULL, &dc[r]);
            if (a[r] < 0 || b[r] < 0 || c[r] < 0 || d[r] < 0 || n != frames) {
                fprintf(stderr, "bench_decode: a run failed on %s (%d frames)\n", clip, n);
                return 1;
            }
        }
        printf("| %s %dx%d | %.0f (%.0f) | %.0f (%.0f) | %.0f (%.0f) | %.0f (%.0f) |\n", sz->name,
               sz->w, sz->h, median(ac, runs), median(a, runs), median(bc, runs), median(b, runs),
               median(cc, runs), median(c, runs), median(dc, runs), median(d, runs));
        fflush(stdout);
    }
    return 0;
}
