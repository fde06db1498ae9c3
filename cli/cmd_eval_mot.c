/*
 * vtrack eval --mot - box-registered multi-object tracking on MOTChallenge sequences.
 *
 * Every person of a sequence is registered by its ground-truth box on the first frame where it
 * is counted, as a camera user registers it, and followed from there by the tracker (through
 * the stream pipeline of `vtrack track`, every frame), by the identity baseline (the box kept),
 * or read from result files (--pred). The predictions are scored by cli/mot.c.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>
#include <libavutil/error.h>

#include "commands.h"
#include "mot.h"
#include "tracking.h"
#include "cli_util.h"
#include "vt_base.h"
#include "vt_stream.h"

#define MOT_PATH_MAX 4096
#define MOT_NAME_MAX 256
#define MOT_SEQS_MAX 256

void vt_eval_mot_usage(FILE *f) {
    fputs(
        "usage: vtrack eval --mot ROOT [--seq NAME ...] [--save DIR] [--csv FILE]\n"
        "                   [tracker options | --baseline identity | --pred DIR]\n"
        "\n"
        "Box-registered multi-object tracking, as a camera user does it: every person of a\n"
        "MOTChallenge sequence is registered by its ground-truth box on the first frame where it\n"
        "is counted, and followed from there. All the persons of a sequence are registered up\n"
        "front, each applied at its own frame, and the tracker runs through the stream pipeline\n"
        "of vtrack track on every frame.\n"
        "\n"
        "  --mot ROOT      a folder of MOTChallenge sequence folders, or one of them: "
        "SEQ/gt/gt.txt\n"
        "                  (frame,id,x,y,w,h,conf,...; frames from 1; only conf == 1 lines "
        "count),\n"
        "                  the frames as SEQ/SEQ.mp4 or else SEQ/img1/ numbered JPEGs, and\n"
        "                  optionally SEQ/seqinfo.ini (its seqLength bounds the frames)\n"
        "  --seq NAME      a sequence of ROOT; repeat for several (default: every folder of ROOT\n"
        "                  with a gt/gt.txt, in name order)\n"
        "  --baseline identity  no tracker: each person keeps its registration box on every\n"
        "                  later frame of the video\n"
        "  --pred DIR      no tracker: score the result files DIR/SEQ.txt (MOTChallenge format\n"
        "                  frame,id,x,y,w,h[,score,...]; a person's prediction has its id)\n"
        "  --save DIR      write the predictions as DIR/SEQ.txt, one line per person and frame\n"
        "                  with a box: frame,id,x,y,w,h,score,-1,-1,-1\n"
        "  --csv FILE      also write the table to FILE as CSV (all counts, 6 decimals)\n"
        "  --quiet         no progress bar (it is shown only on a terminal anyway)\n"
        "  --verbose       the tracker parameters, and every identity switch\n"
        "tracker options, as vtrack track (default: the default model, mast, "
        "accurate):\n" VT_CLI_TRACKER_HELP "\n"
        "Metrics, in percent (boxes x,y,w,h; a prediction with w or h <= 0 is no box):\n"
        "  pairs   (person, frame) with a counted ground-truth box after the registration frame\n"
        "  AO      mean over the pairs of the IoU of the person's predicted box (0 without one)\n"
        "  SR50    pairs with IoU >= 0.5\n"
        "  swaps   pairs whose predicted box has IoU >= 0.5 with another person's box and < 0.5\n"
        "          with its own (count, and percent of the pairs)\n"
        "  IDF1    Ristani et al. 2016 as TrackEval computes it on every frame (registration\n"
        "          frames too): one optimal matching of ground-truth and predicted trajectories,\n"
        "          a frame matching at IoU >= 0.5\n"
        "  IDSW, MOTA  CLEAR MOT as TrackEval: per frame, the optimal matching at IoU >= 0.5 that\n"
        "          keeps the previous frame's pairs; MOTA = 1 - (FN + FP + IDSW) / boxes\n"
        "  fps     frames per second of the tracking loop (decoding and tracking)\n"
        "The overall row pools the pairs of all sequences (AO, SR50, swaps) and sums the counts\n"
        "(IDF1, IDSW, MOTA). Last line: AO <x> SR50 <y> swaps <z>% IDF1 <w> IDSW <n>.\n"
        "Exit status: 0 done, 1 a file is missing, unreadable or malformed, or tracking failed,\n"
        "2 bad arguments.\n",
        f);
}

/* ---------------------------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------------------------- */

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* printf into a path buffer; 0, or -1 with a message when it does not fit. */
static int pathf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pathf(char *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, MOT_PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= MOT_PATH_MAX) {
        fprintf(stderr, "vtrack eval: a path is too long (%.60s...)\n", buf);
        return -1;
    }
    return 0;
}

/* The whole file, NUL-terminated. 0, or -1 with the reason printed. */
static int read_text(const char *path, char **text, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "vtrack eval: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 0, n = 0;
    char *buf = NULL;
    int bad = 0;
    for (;;) {
        if (cap - n < 2) {
            char *more = realloc(buf, cap ? 2 * cap : 1 << 16);
            if (!more) {
                bad = ENOMEM;
                break;
            }
            buf = more, cap = cap ? 2 * cap : 1 << 16;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            bad = ferror(f) ? EIO : 0;
            break;
        }
    }
    fclose(f);
    if (bad) {
        fprintf(stderr, "vtrack eval: %s: %s\n", path, strerror(bad));
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Sequences
 * ------------------------------------------------------------------------------------------- */

typedef struct mot_seq {
    char name[MOT_NAME_MAX];
    char dir[MOT_PATH_MAX];
    long length; /* seqinfo.ini's seqLength, or -1 */
    vt_mot_boxes gt, pred;
    long frames;    /* frames tracked (or read by the identity baseline); -1 with --pred */
    double seconds; /* the tracking loop; < 0 when nothing was tracked */
    vt_mot_counts counts;
} mot_seq;

typedef struct mot_opts {
    const char *root, *pred, *save, *csv, *baseline;
    const char *seqs[MOT_SEQS_MAX];
    int nseqs;
    int quiet, verbose;
    vt_cli_tracker trk;
} mot_opts;

static int cmp_seq_names(const void *a, const void *b) {
    return strcmp(((const mot_seq *)a)->name, ((const mot_seq *)b)->name);
}

static int has_gt(const char *dir) {
    char path[MOT_PATH_MAX];
    return snprintf(path, sizeof path, "%s/gt/gt.txt", dir) < (int)sizeof path && is_file(path);
}

/*
 * The sequences to score: ROOT itself when it holds gt/gt.txt, else the --seq folders or every
 * folder of ROOT with a gt/gt.txt. Returns the count (> 0), -1 (runtime error) or -2 (usage
 * error), messages printed.
 */
static int find_sequences(const mot_opts *o, mot_seq **out) {
    mot_seq *v = calloc(MOT_SEQS_MAX, sizeof *v);
    int n = 0;
    if (!v) {
        fprintf(stderr, "vtrack eval: out of memory\n");
        return -1;
    }
    *out = v;
    if (has_gt(o->root)) {
        char copy[MOT_PATH_MAX];
        snprintf(copy, sizeof copy, "%s", o->root);
        size_t len = strlen(copy);
        while (len > 1 && copy[len - 1] == '/')
            copy[--len] = '\0';
        const char *base = strrchr(copy, '/');
        base = base ? base + 1 : copy;
        if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
            char cwd[MOT_PATH_MAX];
            if (realpath(copy, cwd) && strrchr(cwd, '/'))
                snprintf(copy, sizeof copy, "%s", cwd), base = strrchr(copy, '/') + 1;
        }
        for (int i = 0; i < o->nseqs; i++) {
            if (strcmp(o->seqs[i], base) != 0) {
                vt_cli_usage_error("eval",
                                   "--seq '%s': --mot %s is the one sequence '%s' (it holds "
                                   "gt/gt.txt)",
                                   o->seqs[i], o->root, base);
                return -2;
            }
        }
        /* base is one path component (at most NAME_MAX bytes): it fits */
        snprintf(v[0].name, sizeof v[0].name, "%.*s", (int)sizeof v[0].name - 1, base);
        snprintf(v[0].dir, sizeof v[0].dir, "%s", o->root);
        return 1;
    }
    if (o->nseqs) {
        for (int i = 0; i < o->nseqs; i++) {
            if (pathf(v[n].dir, "%s/%s", o->root, o->seqs[i]) < 0)
                return -1;
            if (!is_dir(v[n].dir)) {
                vt_cli_usage_error("eval", "--seq '%s': no folder %s", o->seqs[i], v[n].dir);
                return -2;
            }
            snprintf(v[n].name, sizeof v[n].name, "%s", o->seqs[i]);
            n++;
        }
        return n;
    }
    DIR *d = opendir(o->root);
    if (!d) {
        fprintf(stderr, "vtrack eval: --mot %s: %s\n", o->root, strerror(errno));
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= MOT_NAME_MAX)
            continue;
        char dir[MOT_PATH_MAX];
        if (snprintf(dir, sizeof dir, "%s/%s", o->root, e->d_name) >= (int)sizeof dir ||
            !is_dir(dir) || !has_gt(dir))
            continue;
        if (n == MOT_SEQS_MAX) {
            fprintf(stderr, "vtrack eval: --mot %s: more than %d sequences; choose with --seq\n",
                    o->root, MOT_SEQS_MAX);
            closedir(d);
            return -1;
        }
        snprintf(v[n].name, sizeof v[n].name, "%s", e->d_name);
        snprintf(v[n].dir, sizeof v[n].dir, "%s", dir);
        n++;
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr,
                "vtrack eval: --mot %s: no sequence in it (a folder with gt/gt.txt), and it is "
                "none itself\n",
                o->root);
        return -1;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_seq_names);
    return n;
}

/* seqinfo.ini's seqLength into sq->length (-1 without the file or the key). 0 or -1. */
static int read_seqinfo(mot_seq *sq) {
    char path[MOT_PATH_MAX], *text, err[512];
    size_t len;
    sq->length = -1;
    if (pathf(path, "%s/seqinfo.ini", sq->dir) < 0)
        return -1;
    if (!is_file(path))
        return 0;
    if (read_text(path, &text, &len) < 0)
        return -1;
    int rc = vt_mot_parse_seqinfo(text, len, path, &sq->length, err, sizeof err);
    free(text);
    if (rc < 0) {
        fprintf(stderr, "vtrack eval: %s\n", err);
        return -1;
    }
    return 0;
}

/* Refuse boxes beyond seqinfo.ini's seqLength (as TrackEval does). 0 or -1. */
static int check_length(const mot_seq *sq, const vt_mot_boxes *l, const char *file) {
    if (sq->length < 0)
        return 0;
    for (int i = 0; i < l->n; i++) {
        if (l->v[i].frame > sq->length) {
            fprintf(stderr, "vtrack eval: %s:%d: frame %d is beyond the %ld frames of %s/%s\n",
                    file, l->v[i].line, l->v[i].frame, sq->length, sq->dir, "seqinfo.ini");
            return -1;
        }
    }
    return 0;
}

/* Read a ground-truth (is_gt) or result file into `out`. 0 or -1 (message printed). */
static int read_boxes(const char *path, int is_gt, vt_mot_boxes *out) {
    char *text, err[512];
    size_t len;
    if (read_text(path, &text, &len) < 0)
        return -1;
    int rc = is_gt ? vt_mot_parse_gt(text, len, path, out, err, sizeof err)
                   : vt_mot_parse_pred(text, len, path, out, err, sizeof err);
    free(text);
    if (rc < 0) {
        fprintf(stderr, "vtrack eval: %s\n", rc == -ENOMEM ? "out of memory" : err);
        return -1;
    }
    return 0;
}

/* The frames of a sequence: SEQ/SEQ.mp4, else SEQ/img1/. 0 or -1 (message printed). */
static int video_of(const mot_seq *sq, char *url) {
    if (pathf(url, "%s/%s.mp4", sq->dir, sq->name) < 0)
        return -1;
    if (is_file(url))
        return 0;
    if (pathf(url, "%s/img1", sq->dir) < 0)
        return -1;
    if (is_dir(url))
        return 0;
    fprintf(stderr, "vtrack eval: %s: no video: neither %s/%s.mp4 nor the folder %s/img1\n",
            sq->name, sq->dir, sq->name, sq->dir);
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Predicting
 * ------------------------------------------------------------------------------------------- */

static void progress(const char *what, long done, long total, double t0) {
    double el = vt_mono_s() - t0, fps = el > 0 ? done / el : 0;
    if (total > 0)
        fprintf(stderr, "\r%s %ld/%ld frames, %.1f fps ", what, done, total, fps);
    else
        fprintf(stderr, "\r%s %ld frames, %.1f fps ", what, done, fps);
    fflush(stderr);
}

typedef struct run_ctx {
    const mot_seq *sq;
    const vt_mot_boxes *reg;
    char end_reason[256];
} run_ctx;

static void on_event(void *opaque, const vt_stream_event *ev) {
    run_ctx *c = opaque;
    if (ev->kind == VT_STREAM_EVENT_OBJECT && ev->lifecycle == VT_PROTO_LIFECYCLE_REMOVED &&
        ev->reason && strcmp(ev->reason, "untrack") != 0) {
        int f0 = 0;
        for (int i = 0; i < c->reg->n; i++)
            if ((uint32_t)c->reg->v[i].id == ev->object)
                f0 = c->reg->v[i].frame;
        fprintf(stderr,
                "vtrack eval: %s: person %u, registered on frame %d, refused: %s (its "
                "frames count as not found)\n",
                c->sq->name, ev->object, f0, ev->reason);
    }
    if (ev->kind == VT_STREAM_EVENT_STATE && ev->state == VT_PROTO_STREAM_ENDED && ev->reason)
        snprintf(c->end_reason, sizeof c->end_reason, "%s", ev->reason);
}

/* --adapt's check: the persons registered on the earliest registration frame, by their boxes
 * (0-based frame in *frame). */
static int check_shapes(const vt_mot_boxes *reg, vt_shape *out, int64_t *frame) {
    int first = INT_MAX, n = 0;
    for (int i = 0; i < reg->n; i++)
        if (reg->v[i].w > 0 && reg->v[i].h > 0 && reg->v[i].frame < first)
            first = reg->v[i].frame;
    *frame = first == INT_MAX ? 0 : first - 1;
    for (int i = 0; i < reg->n && n < VT_PROTO_OBJECTS_MAX; i++) {
        const vt_mot_box *b = &reg->v[i];
        if (b->frame == first && b->w > 0 && b->h > 0)
            out[n++] = (vt_shape){.kind = VT_SHAPE_BOX,
                                  .box = {(float)b->x, (float)b->y, (float)b->w, (float)b->h}};
    }
    return n;
}

/* Track sequence `sq` with every person registered; predictions into sq->pred. 0 or -1. */
static int track_sequence(mot_seq *sq, const vt_mot_boxes *reg, const vt_model *m,
                          const mot_opts *o) {
    char url[MOT_PATH_MAX], err[512];
    if (video_of(sq, url) < 0)
        return -1;
    vt_tracker_params p;
    vt_cli_tracker_params(&o->trk, m, o->verbose, &p);
    run_ctx c = {.sq = sq, .reg = reg};
    vt_stream *s = NULL;
    if (vt_cli_offline_stream(url, m, &p, on_event, &c, &s, err, sizeof err) < 0) {
        fprintf(stderr, "vtrack eval: %s: %s\n", sq->name, err);
        return -1;
    }
    const long total = sq->length;
    const int show = !o->quiet && isatty(2);
    const vt_stream_event *ev;
    double t0;
    int ret = -1, rc;
    for (int i = 0; i < reg->n; i++) {
        const vt_mot_box *b = &reg->v[i];
        if (!(b->w > 0 && b->h > 0)) {
            fprintf(stderr,
                    "vtrack eval: %s: person %d is registered on frame %d with an empty box "
                    "(%gx%g): not tracked, its frames count as not found\n",
                    sq->name, b->id, b->frame, b->w, b->h);
            continue;
        }
        vt_shape box = {.kind = VT_SHAPE_BOX,
                        .box = {(float)b->x, (float)b->y, (float)b->w, (float)b->h}};
        rc = vt_stream_track(s, (uint32_t)b->id, NULL, &box, b->frame - 1, NULL, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "vtrack eval: %s: person %d: %s%s\n", sq->name, b->id, err,
                    rc == AVERROR(ENOSPC) ? " (the sequence registers more persons: raise "
                                            "--param max_objects, at most 64)"
                                          : "");
            goto done;
        }
    }
    sq->frames = 0;
    t0 = vt_mono_s();
    while ((rc = vt_stream_step(s, &ev)) == 0) {
        const vt_track_result *r = ev->result;
        int frame = (int)ev->frame->index + 1;
        for (int i = 0; i < r->n_objects; i++) {
            const vt_object_result *ob = &r->objects[i];
            if (ob->bbox[2] <= 0 || ob->bbox[3] <= 0)
                continue; /* no mask, no box */
            vt_mot_box b = {.frame = frame,
                            .id = (int)ob->id,
                            .x = ob->bbox[0],
                            .y = ob->bbox[1],
                            .w = ob->bbox[2],
                            .h = ob->bbox[3],
                            .score = ob->score};
            if (vt_mot_boxes_add(&sq->pred, &b) < 0) {
                fprintf(stderr, "vtrack eval: out of memory\n");
                goto done;
            }
        }
        sq->frames++;
        if (show)
            progress(sq->name, sq->frames, total, t0);
    }
    sq->seconds = vt_mono_s() - t0;
    if (show)
        fputc('\n', stderr);
    if (rc != AVERROR_EOF) {
        if (c.end_reason[0])
            fprintf(stderr, "vtrack eval: %s: %s\n", sq->name, c.end_reason);
        else
            fprintf(stderr, "vtrack eval: %s: %s: %s\n", sq->name, url, av_err2str(rc));
        goto done;
    }
    ret = 0;
done:
    vt_stream_free(&s);
    return ret;
}

/* The identity baseline: each person's registration box on its frame and every later frame of
 * the video (its frames are counted by decoding it). 0 or -1. */
static int identity_sequence(mot_seq *sq, const vt_mot_boxes *reg) {
    char url[MOT_PATH_MAX], err[512];
    if (video_of(sq, url) < 0)
        return -1;
    vt_source_opts so;
    vt_cli_offline_source(&so);
    vt_source *src = NULL;
    if (vt_source_new(&src, url, &so, err, sizeof err) < 0) {
        fprintf(stderr, "vtrack eval: %s: %s\n", sq->name, err);
        return -1;
    }
    const vt_frame *fr;
    int rc;
    sq->frames = 0;
    while ((rc = vt_source_read(src, &fr)) == 0)
        sq->frames++;
    if (rc != AVERROR_EOF) {
        fprintf(stderr, "vtrack eval: %s: %s\n", sq->name, vt_source_last_error(src));
        vt_source_free(&src);
        return -1;
    }
    vt_source_free(&src);
    sq->seconds = -1;
    for (int i = 0; i < reg->n; i++) {
        for (long f = reg->v[i].frame; f <= sq->frames; f++) {
            vt_mot_box b = reg->v[i];
            b.frame = (int)f;
            b.score = 1;
            b.line = 0;
            if (vt_mot_boxes_add(&sq->pred, &b) < 0) {
                fprintf(stderr, "vtrack eval: out of memory\n");
                return -1;
            }
        }
    }
    return 0;
}

/* DIR/SEQ.txt in MOTChallenge result format, in frame and id order. 0 or -1. */
static int save_predictions(const char *dir, mot_seq *sq) {
    char path[MOT_PATH_MAX];
    if (pathf(path, "%s/%s.txt", dir, sq->name) < 0)
        return -1;
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "vtrack eval: --save %s: %s\n", path, strerror(errno));
        return -1;
    }
    vt_mot_boxes_sort(&sq->pred);
    for (int i = 0; i < sq->pred.n; i++) {
        const vt_mot_box *b = &sq->pred.v[i];
        fprintf(f, "%d,%d,%.10g,%.10g,%.10g,%.10g,%.6g,-1,-1,-1\n", b->frame, b->id, b->x, b->y,
                b->w, b->h, b->score);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "vtrack eval: --save %s: write failed\n", path);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------------------------- */

typedef struct row {
    const char *name;
    const vt_mot_counts *c;
    long frames;
    double seconds;
} row;

static void print_row(const row *r, int width) {
    vt_mot_metrics m;
    vt_mot_metrics_of(r->c, &m);
    printf("%-*s %4d %6ld %6.1f %6.1f %6ld %6.1f %6.1f %5ld %7.1f", width, r->name, r->c->ids,
           r->c->pairs, m.ao, m.sr50, r->c->swaps, m.swap_pct, m.idf1, r->c->idsw, m.mota);
    if (r->seconds > 0)
        printf(" %7.1f\n", (double)r->frames / r->seconds);
    else
        printf(" %7s\n", "-");
}

static void csv_row(FILE *f, const row *r) {
    vt_mot_metrics m;
    vt_mot_metrics_of(r->c, &m);
    const vt_mot_counts *c = r->c;
    fprintf(f,
            "%s,%d,%ld,%ld,%ld,%.6f,%.6f,%ld,%.6f,%.6f,%.6f,%.6f,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%"
            ".6f,",
            r->name, c->ids, c->gt_boxes, c->pred_boxes, c->pairs, m.ao, m.sr50, c->swaps,
            m.swap_pct, m.idf1, m.idp, m.idr, c->idtp, c->idfp, c->idfn, c->tp, c->fp, c->fn,
            c->idsw, m.mota);
    if (r->seconds > 0)
        fprintf(f, "%ld,%.3f,%.3f\n", r->frames, r->seconds, (double)r->frames / r->seconds);
    else if (r->frames >= 0)
        fprintf(f, "%ld,,\n", r->frames);
    else
        fputs(",,\n", f);
}

static int write_csv(const char *path, const row *rows, int n) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "vtrack eval: --csv %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("sequence,ids,gt_boxes,pred_boxes,pairs,AO,SR50,swaps,swap_pct,IDF1,IDP,IDR,IDTP,IDFP,"
          "IDFN,TP,FP,FN,IDSW,MOTA,frames,seconds,fps\n",
          f);
    for (int i = 0; i < n; i++)
        csv_row(f, &rows[i]);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "vtrack eval: --csv %s: write failed\n", path);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Command line
 * ------------------------------------------------------------------------------------------- */

static int bad_name(const char *v) {
    return !*v || strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0;
}

/* 0 ok, -1 --help shown, 2 usage error (printed). */
static int parse_args(int argc, char **argv, mot_opts *o) {
    static const struct option lo[] = {
        {"mot", required_argument, 0, 'R'},
        {"seq", required_argument, 0, 's'},
        {"baseline", required_argument, 0, 'B'},
        {"pred", required_argument, 0, 'p'},
        {"save", required_argument, 0, 'S'},
        {"csv", required_argument, 0, 'c'},
        {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'V'},
        {"help", no_argument, 0, 'h'},
        {"davis", required_argument, 0, 'D'},
        VT_CLI_TRACKER_LONGOPTS,
        {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    vt_cli_tracker_init(&o->trk);
    int c;
    while ((c = vt_cli_tracker_getopt(&o->trk, "eval", argc, argv, lo)) != -1) {
        switch (c) {
        case VT_CLI_OPT_USAGE:
            return 2;
        case 'R':
            o->root = optarg;
            break;
        case 's': {
            if (bad_name(optarg))
                return vt_cli_usage_error("eval", "--seq '%s': a sequence folder name", optarg);
            int dup = 0; /* named twice: scored once */
            for (int k = 0; k < o->nseqs && !dup; k++)
                dup = strcmp(o->seqs[k], optarg) == 0;
            if (dup)
                break;
            if (o->nseqs == MOT_SEQS_MAX)
                return vt_cli_usage_error("eval", "more than %d --seq", MOT_SEQS_MAX);
            o->seqs[o->nseqs++] = optarg;
            break;
        }
        case 'B':
            if (strcmp(optarg, "identity") != 0)
                return vt_cli_usage_error("eval", "--baseline '%s': only 'identity' exists",
                                          optarg);
            o->baseline = optarg;
            break;
        case 'p':
            o->pred = optarg;
            break;
        case 'S':
            o->save = optarg;
            break;
        case 'c':
            o->csv = optarg;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'V':
            o->verbose = 1;
            break;
        case 'h':
            vt_eval_mot_usage(stdout);
            return -1;
        case 'D':
            return vt_cli_usage_error("eval", "--davis and --mot are two modes: give one");
        default:
            return vt_cli_option_error("eval", c, argv);
        }
    }
    if (optind < argc)
        return vt_cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!o->root)
        return vt_cli_usage_error("eval", "--mot needs a folder: --mot ROOT");
    if (o->pred && (o->baseline || o->save || o->trk.given))
        return vt_cli_usage_error("eval", "--pred scores result files: --baseline, --save and "
                                          "tracker options do not go with it");
    if (o->baseline && o->trk.given)
        return vt_cli_usage_error("eval", "--baseline identity runs no tracker: tracker options "
                                          "do not go with it");
    if (!is_dir(o->root))
        return vt_cli_usage_error("eval", "--mot '%s': not a folder", o->root);
    if (o->pred && !is_dir(o->pred))
        return vt_cli_usage_error("eval", "--pred '%s': not a folder", o->pred);
    return 0;
}

int vt_eval_mot(int argc, char **argv) {
    mot_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    mot_seq *seqs = NULL;
    vt_model *m = NULL;
    row *rows = NULL;
    vt_mot_boxes reg = {0};
    vt_mot_counts all = {0};
    long all_frames = 0;
    double all_seconds = 0;
    int status = 1, width = 8;
    const int tracking = !o.pred && !o.baseline;
    int n = find_sequences(&o, &seqs);
    if (n < 0) {
        status = n == -2 ? 2 : 1;
        goto done;
    }
    if (o.save) {
        int r = vt_cli_mkdir_p(o.save);
        if (r < 0) {
            fprintf(stderr, "vtrack eval: --save %s: %s\n", o.save, strerror(-r));
            goto done;
        }
    }
    if (tracking) {
        openblas_set_num_threads(o.trk.threads);
        /* with --adapt each sequence loads its own copy */
        if (!o.trk.adapt.steps && vt_cli_tracker_model(&o.trk, "eval", o.verbose, &m) < 0)
            goto done;
    }

    for (int i = 0; i < n; i++) {
        mot_seq *sq = &seqs[i];
        char path[MOT_PATH_MAX];
        sq->frames = -1;
        sq->seconds = -1;
        if (read_seqinfo(sq) < 0 || pathf(path, "%s/gt/gt.txt", sq->dir) < 0 ||
            read_boxes(path, 1, &sq->gt) < 0 || check_length(sq, &sq->gt, path) < 0)
            goto done;
        reg.n = 0;
        if (vt_mot_registrations(&sq->gt, &reg) < 0) {
            fprintf(stderr, "vtrack eval: out of memory\n");
            goto done;
        }
        if (o.pred) {
            if (pathf(path, "%s/%s.txt", o.pred, sq->name) < 0 ||
                read_boxes(path, 0, &sq->pred) < 0 || check_length(sq, &sq->pred, path) < 0)
                goto done;
        } else if (o.baseline) {
            if (identity_sequence(sq, &reg) < 0)
                goto done;
        } else if (o.trk.adapt.steps > 0) {
            /* --adapt: a copy of the model fine-tuned on this sequence's frames */
            char url[MOT_PATH_MAX];
            vt_model *am = NULL;
            vt_shape shapes[VT_PROTO_OBJECTS_MAX];
            int64_t f0;
            const int ns = check_shapes(&reg, shapes, &f0);
            int arc = video_of(sq, url) < 0 ||
                      vt_cli_adapted_model(&o.trk, "eval", url, sq->name, NULL, o.quiet, shapes, ns,
                                           f0, &am) < 0 ||
                      track_sequence(sq, &reg, am, &o) < 0;
            vt_model_free(&am);
            if (arc)
                goto done;
        } else if (track_sequence(sq, &reg, m, &o) < 0) {
            goto done;
        }
        if (sq->frames >= 0 && reg.n > 0) {
            int last = 0;
            for (int k = 0; k < sq->gt.n; k++)
                last = sq->gt.v[k].frame > last ? sq->gt.v[k].frame : last;
            if (sq->frames < last)
                fprintf(stderr,
                        "vtrack eval: %s: warning: the video has %ld frames, the ground truth "
                        "goes to frame %d\n",
                        sq->name, sq->frames, last);
        }
        if (o.save && save_predictions(o.save, sq) < 0)
            goto done;
        vt_mot_switch *sw = NULL;
        int nsw = 0;
        if (vt_mot_score(&sq->gt, &sq->pred, &sq->counts, o.verbose ? &sw : NULL, &nsw) < 0) {
            fprintf(stderr, "vtrack eval: out of memory\n");
            goto done;
        }
        for (int k = 0; k < nsw; k++)
            fprintf(stderr, "%s: frame %d: person %d switches from prediction %d to %d\n", sq->name,
                    sw[k].frame, sw[k].gt_id, sw[k].from_id, sw[k].to_id);
        free(sw);
        vt_mot_counts_add(&all, &sq->counts);
        if (sq->seconds > 0)
            all_frames += sq->frames, all_seconds += sq->seconds;
    }

    rows = calloc((size_t)n + 1, sizeof *rows);
    if (!rows) {
        fprintf(stderr, "vtrack eval: out of memory\n");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        rows[i] = (row){seqs[i].name, &seqs[i].counts, seqs[i].frames, seqs[i].seconds};
        int len = (int)strlen(seqs[i].name);
        width = len > width ? len : width;
    }
    rows[n] = (row){"overall", &all, all_seconds > 0 ? all_frames : -1,
                    all_seconds > 0 ? all_seconds : -1};
    printf("%-*s %4s %6s %6s %6s %6s %6s %6s %5s %7s %7s\n", width, "sequence", "ids", "pairs",
           "AO", "SR50", "swaps", "swap%", "IDF1", "IDSW", "MOTA", "fps");
    for (int i = 0; i <= n; i++)
        print_row(&rows[i], width);
    if (o.csv && write_csv(o.csv, rows, n + 1) < 0)
        goto done;
    vt_mot_metrics mm;
    vt_mot_metrics_of(&all, &mm);
    printf("AO %.1f SR50 %.1f swaps %.1f%% IDF1 %.1f IDSW %ld\n", mm.ao, mm.sr50, mm.swap_pct,
           mm.idf1, all.idsw);
    fflush(stdout);
    status = 0;

done:
    for (int i = 0; seqs && i < n; i++) {
        vt_mot_boxes_free(&seqs[i].gt);
        vt_mot_boxes_free(&seqs[i].pred);
    }
    free(seqs);
    free(rows);
    vt_mot_boxes_free(&reg);
    vt_model_free(&m);
    return status;
}
