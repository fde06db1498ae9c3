/*
 * vtrack eval - score predicted masks with the DAVIS semi-supervised protocol (and, with --mot,
 * boxes with identities on MOTChallenge sequences: eval_mot.c).
 *
 * Follows the official evaluation (davisvideochallenge/davis2017-evaluation): the frames of a
 * sequence are its annotation PNGs in name order; the first and last are not scored; the
 * objects are the labels 1..N of the first annotation; J and F per frame and object (davis.c),
 * then mean, recall and decay per object, and the means over every object of every sequence.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "commands.h"
#include "davis.h"
#include "vt_base.h"
#include "vt_codec.h"

#define EVAL_PATH_MAX 4096

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: vtrack eval --davis ROOT --pred DIR [--seq NAME ...] [--csv FILE] [--res RES]\n"
        "                   [--void ignore|background]\n"
        "       vtrack eval --mot ROOT [options]     (boxes with identities: see below)\n"
        "\n"
        "Score predicted masks with the DAVIS semi-supervised metrics, as the official\n"
        "davis2017-evaluation code computes them: J (region IoU) and F (boundary F-measure,\n"
        "tolerance ceil(0.008 x image diagonal) pixels) per frame, the first and last frames\n"
        "excluded; per object their mean, recall (fraction of frames > 0.5) and decay (first\n"
        "quarter minus last quarter); then the means over all objects; J&F = (J + F) / 2.\n"
        "\n"
        "  --davis ROOT   DAVIS-style folder: ROOT/Annotations/RES/<seq>/<frame>.png is the\n"
        "                 ground truth (grey {0,255}: one object; palette: index = object id,\n"
        "                 255 = void). The objects are the labels of each sequence's first\n"
        "                 annotation. Required.\n"
        "  --pred DIR     predictions: DIR/<seq>/<frame>.png for every annotated frame but the\n"
        "                 first and the last (palette: index = object id, 255 = no object; or\n"
        "                 grey {0,255}), of the annotation's size. Required.\n"
        "  --seq NAME     score this sequence; repeat for several (default: every folder under\n"
        "                 ROOT/Annotations/RES, in name order)\n"
        "  --csv FILE     also write the table to FILE as CSV (values in percent)\n"
        "  --res RES      resolution folder under Annotations (default 480p)\n"
        "  --void MODE    ground-truth void pixels (label 255): 'ignore' leaves them out of J and\n"
        "                 F (default; the official metric functions given a void mask);\n"
        "                 'background' scores them as background, as the official evaluation\n"
        "                 script does (it passes no void mask). Identical without void pixels.\n"
        "  --help         this help\n"
        "\n"
        "Prints one row per sequence and object (values in percent; frames = scored frames),\n"
        "the means, and as the last line: J&F <x> J <y> F <z>.\n"
        "Exit status: 0 done, 1 a file is missing or unreadable, 2 bad arguments.\n"
        "\n");
    vt_eval_mot_usage(f);
}

/* ---------------------------------------------------------------------------------------------
 * Small helpers: paths, directory listings
 * ------------------------------------------------------------------------------------------- */

static int join(char *buf, const char *a, const char *b, const char *c) {
    int n = snprintf(buf, EVAL_PATH_MAX, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    return n > 0 && n < EVAL_PATH_MAX ? 0 : -ENAMETOOLONG;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

typedef struct names {
    char **v;
    int n, cap;
} names;

static void names_free(names *l) {
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int names_add(names *l, const char *s, size_t len) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    l->v[l->n++] = copy;
    return 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * List `dir` in byte order: its sub-folders (want_dirs) or its "*.png" files with the extension
 * removed (the frame ids, as the official code derives them).
 */
static int list_dir(const char *dir, int want_dirs, names *out) {
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int ret = 0;
    struct dirent *e;
    char path[EVAL_PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        size_t len = strlen(e->d_name);
        if (want_dirs) {
            if (join(path, dir, e->d_name, NULL) < 0 || !is_dir(path))
                continue;
            ret = names_add(out, e->d_name, len);
        } else {
            if (len <= 4 || strcmp(e->d_name + len - 4, ".png") != 0)
                continue;
            ret = names_add(out, e->d_name, len - 4);
        }
        if (ret < 0)
            break;
    }
    closedir(d);
    if (ret == 0 && out->n > 1)
        qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_names);
    return ret;
}

/* ---------------------------------------------------------------------------------------------
 * Results
 * ------------------------------------------------------------------------------------------- */

typedef struct object_row {
    char *seq;
    int obj;
    int frames;
    vt_davis_stats j, f;
} object_row;

typedef struct results {
    object_row *rows;
    int n, cap;
} results;

static void results_free(results *r) {
    for (int i = 0; i < r->n; i++)
        free(r->rows[i].seq);
    free(r->rows);
    memset(r, 0, sizeof *r);
}

static int results_add(results *r, const char *seq, int obj, int frames, const vt_davis_stats *j,
                       const vt_davis_stats *f) {
    object_row *rows = vt_grow(r->rows, sizeof *rows, r->n + 1, &r->cap, 32);
    if (!rows)
        return -ENOMEM;
    r->rows = rows;
    char *copy = strdup(seq);
    if (!copy)
        return -ENOMEM;
    r->rows[r->n++] = (object_row){.seq = copy, .obj = obj, .frames = frames, .j = *j, .f = *f};
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * One sequence
 * ------------------------------------------------------------------------------------------- */

/* Read one mask PNG as a label map (see vt_davis_labels_from_png). Prints the error. */
static int read_labels(const char *path, int *w, int *h, uint8_t **labels) {
    char err[512] = "";
    int is_palette = 0;
    int ret = vt_mask_read_png(path, w, h, labels, &is_palette, err, sizeof err);
    if (ret < 0) {
        if (err[0])
            fprintf(stderr, "vtrack eval: %s\n", err);
        else
            fprintf(stderr, "vtrack eval: %s: cannot read (error %d)\n", path, ret);
        return ret;
    }
    vt_davis_labels_from_png(*labels, (size_t)*w * (size_t)*h, is_palette);
    return 0;
}

/*
 * The first label above max_label in a prediction, or 0. 255 (void) is let through as "no
 * object": the official script would refuse it, but it costs nothing to score a ground truth
 * with void against itself.
 */
static int label_above(const uint8_t *labels, size_t n, int max_label) {
    uint8_t present[256];
    vt_davis_labels_present(labels, n, present);
    for (int k = max_label + 1; k < VT_DAVIS_VOID; k++)
        if (present[k])
            return k;
    return 0;
}

/* Score sequence `seq`: append one row per object to `res`. Returns 0 or -1 (error printed). */
static int eval_sequence(const char *ann_root, const char *pred_root, const char *seq,
                         int ignore_void, results *res) {
    char ann_dir[EVAL_PATH_MAX], path[EVAL_PATH_MAX], first_path[EVAL_PATH_MAX];
    char name[EVAL_PATH_MAX];
    names frames = {0};
    uint8_t *first = NULL, *gt = NULL, *pred = NULL;
    double *jv = NULL, *fv = NULL, *jf = NULL, *ff = NULL;
    int ret = -1, r, w0, h0, n_obj, n_scored;
    size_t npx;

    if (join(ann_dir, ann_root, seq, NULL) < 0) {
        fprintf(stderr, "vtrack eval: path too long for sequence '%s'\n", seq);
        goto done;
    }
    r = list_dir(ann_dir, 0, &frames);
    if (r < 0) {
        fprintf(stderr, "vtrack eval: %s: %s\n", ann_dir, strerror(-r));
        goto done;
    }
    if (frames.n < 3) {
        fprintf(stderr,
                "vtrack eval: %s: %d annotated frame(s); the protocol scores all but the first "
                "and the last, so it needs at least 3\n",
                ann_dir, frames.n);
        goto done;
    }

    /* The objects are those of the first annotation, as the official code counts them. */
    snprintf(name, sizeof name, "%s.png", frames.v[0]);
    if (join(first_path, ann_dir, name, NULL) < 0) {
        fprintf(stderr, "vtrack eval: path too long for %s/%s\n", seq, name);
        goto done;
    }
    if (read_labels(first_path, &w0, &h0, &first) < 0)
        goto done;
    npx = (size_t)w0 * (size_t)h0;
    n_obj = vt_davis_max_label(first, npx);
    if (n_obj == 0) {
        fprintf(stderr, "vtrack eval: %s: the first annotation has no object to track\n",
                first_path);
        goto done;
    }

    n_scored = frames.n - 2;
    jv = malloc((size_t)n_obj * (size_t)n_scored * sizeof *jv);
    fv = malloc((size_t)n_obj * (size_t)n_scored * sizeof *fv);
    jf = malloc((size_t)n_obj * sizeof *jf);
    ff = malloc((size_t)n_obj * sizeof *ff);
    if (!jv || !fv || !jf || !ff) {
        fprintf(stderr, "vtrack eval: out of memory\n");
        goto done;
    }

    for (int t = 0; t < n_scored; t++) {
        char gt_path[EVAL_PATH_MAX];
        int gw, gh, pw, ph;
        snprintf(name, sizeof name, "%s.png", frames.v[t + 1]);
        if (join(gt_path, ann_dir, name, NULL) < 0 || join(path, pred_root, seq, name) < 0) {
            fprintf(stderr, "vtrack eval: path too long for %s/%s\n", seq, name);
            goto done;
        }
        free(gt);
        free(pred);
        gt = pred = NULL;
        if (read_labels(gt_path, &gw, &gh, &gt) < 0)
            goto done;
        if (gw != w0 || gh != h0) {
            fprintf(stderr, "vtrack eval: %s is %dx%d but %s is %dx%d\n", gt_path, gw, gh,
                    first_path, w0, h0);
            goto done;
        }
        struct stat st;
        if (stat(path, &st) != 0) {
            fprintf(stderr, "vtrack eval: missing prediction %s (for %s): %s\n", path, gt_path,
                    strerror(errno));
            goto done;
        }
        if (read_labels(path, &pw, &ph, &pred) < 0)
            goto done;
        if (pw != gw || ph != gh) {
            fprintf(stderr,
                    "vtrack eval: %s is %dx%d but its ground truth %s is %dx%d; predictions "
                    "must have the annotation's size\n",
                    path, pw, ph, gt_path, gw, gh);
            goto done;
        }
        int bad = label_above(pred, npx, n_obj);
        if (bad) {
            fprintf(stderr,
                    "vtrack eval: %s has label %d but the sequence has %d object(s) (labels of "
                    "%s)\n",
                    path, bad, n_obj, first_path);
            goto done;
        }
        r = vt_davis_score_frame(gt, pred, gw, gh, n_obj, ignore_void, jf, ff);
        if (r < 0) {
            fprintf(stderr, "vtrack eval: %s: %s\n", path, strerror(-r));
            goto done;
        }
        for (int k = 0; k < n_obj; k++) {
            jv[(size_t)k * (size_t)n_scored + (size_t)t] = jf[k];
            fv[(size_t)k * (size_t)n_scored + (size_t)t] = ff[k];
        }
    }

    for (int k = 0; k < n_obj; k++) {
        vt_davis_stats js, fs;
        vt_davis_statistics(jv + (size_t)k * (size_t)n_scored, n_scored, &js);
        vt_davis_statistics(fv + (size_t)k * (size_t)n_scored, n_scored, &fs);
        if (results_add(res, seq, k + 1, n_scored, &js, &fs) < 0) {
            fprintf(stderr, "vtrack eval: out of memory\n");
            goto done;
        }
    }
    ret = 0;

done:
    names_free(&frames);
    free(first);
    free(gt);
    free(pred);
    free(jv);
    free(fv);
    free(jf);
    free(ff);
    return ret;
}

/* ---------------------------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------------------------- */

typedef struct means {
    vt_davis_stats j, f;
    int frames;
} means;

/* The official summary: plain means over objects (every object of every sequence counts once). */
static means mean_over_objects(const results *res) {
    means m = {0};
    for (int i = 0; i < res->n; i++) {
        const object_row *o = &res->rows[i];
        m.j.mean += o->j.mean;
        m.j.recall += o->j.recall;
        m.j.decay += o->j.decay;
        m.f.mean += o->f.mean;
        m.f.recall += o->f.recall;
        m.f.decay += o->f.decay;
        if (o->obj == 1) /* count each sequence's frames once */
            m.frames += o->frames;
    }
    double n = res->n;
    m.j.mean /= n, m.j.recall /= n, m.j.decay /= n;
    m.f.mean /= n, m.f.recall /= n, m.f.decay /= n;
    return m;
}

static void print_table(const results *res, const means *m) {
    int width = 8;
    for (int i = 0; i < res->n; i++) {
        int len = (int)strlen(res->rows[i].seq);
        if (len > width)
            width = len;
    }
    printf("%-*s %4s %7s %9s %8s %7s %9s %8s %7s %7s\n", width, "sequence", "obj", "J-mean",
           "J-recall", "J-decay", "F-mean", "F-recall", "F-decay", "J&F", "frames");
    for (int i = 0; i < res->n; i++) {
        const object_row *o = &res->rows[i];
        printf("%-*s %4d %7.1f %9.1f %8.1f %7.1f %9.1f %8.1f %7.1f %7d\n", width, o->seq, o->obj,
               100 * o->j.mean, 100 * o->j.recall, 100 * o->j.decay, 100 * o->f.mean,
               100 * o->f.recall, 100 * o->f.decay, 50 * (o->j.mean + o->f.mean), o->frames);
    }
    printf("%-*s %4d %7.1f %9.1f %8.1f %7.1f %9.1f %8.1f %7.1f %7d\n", width, "mean", res->n,
           100 * m->j.mean, 100 * m->j.recall, 100 * m->j.decay, 100 * m->f.mean, 100 * m->f.recall,
           100 * m->f.decay, 50 * (m->j.mean + m->f.mean), m->frames);
}

/* Write a CSV field, quoted when it holds a separator, a quote or a line break. */
static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_values(FILE *f, const vt_davis_stats *j, const vt_davis_stats *fs, int frames) {
    fprintf(f, ",%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%d\n", 100 * j->mean, 100 * j->recall,
            100 * j->decay, 100 * fs->mean, 100 * fs->recall, 100 * fs->decay,
            50 * (j->mean + fs->mean), frames);
}

static int write_csv(const char *path, const results *res, const means *m) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "vtrack eval: --csv %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("sequence,object,J_mean,J_recall,J_decay,F_mean,F_recall,F_decay,JF_mean,frames\n", f);
    for (int i = 0; i < res->n; i++) {
        const object_row *o = &res->rows[i];
        csv_field(f, o->seq);
        fprintf(f, ",%d", o->obj);
        csv_values(f, &o->j, &o->f, o->frames);
    }
    /* The summary row: "mean" with the number of objects averaged in the object column. */
    fprintf(f, "mean,%d", res->n);
    csv_values(f, &m->j, &m->f, m->frames);
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

int vt_cmd_eval(int argc, char **argv) {
    const char *davis = NULL, *pred = NULL, *csv = NULL, *res_name = "480p";
    int ignore_void = 1;
    names seqs = {0};
    results res = {0};
    means m;
    int status = 2;

    /* The MOT protocol has its own options and file (eval_mot.c). */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--mot") == 0 || strncmp(argv[i], "--mot=", 6) == 0)
            return vt_eval_mot(argc, argv);

    enum { O_DAVIS = 256, O_PRED, O_CSV, O_RES, O_SEQ, O_VOID };
    static const struct option lo[] = {{"davis", required_argument, 0, O_DAVIS},
                                       {"pred", required_argument, 0, O_PRED},
                                       {"csv", required_argument, 0, O_CSV},
                                       {"res", required_argument, 0, O_RES},
                                       {"seq", required_argument, 0, O_SEQ},
                                       {"void", required_argument, 0, O_VOID},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        const char *v = optarg;
        if (v && !*v) {
            status =
                vt_cli_usage_error("eval", "option '%s' needs a non-empty value", argv[optind - 1]);
            goto done;
        }
        switch (c) {
        case 'h':
            usage(stdout);
            status = 0;
            goto done;
        case O_DAVIS:
            davis = v;
            break;
        case O_PRED:
            pred = v;
            break;
        case O_CSV:
            csv = v;
            break;
        case O_RES:
            if (strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
                fprintf(stderr, "vtrack eval: --res '%s': a folder name such as 480p\n", v);
                goto done;
            }
            res_name = v;
            break;
        case O_SEQ: {
            if (strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
                fprintf(stderr, "vtrack eval: --seq '%s': a sequence folder name\n", v);
                goto done;
            }
            int dup = 0; /* a sequence named twice would count twice in the means */
            for (int k = 0; k < seqs.n && !dup; k++)
                dup = strcmp(seqs.v[k], v) == 0;
            if (!dup && names_add(&seqs, v, strlen(v)) < 0) {
                status = 1;
                goto done;
            }
            break;
        }
        case O_VOID:
            if (strcmp(v, "ignore") == 0) {
                ignore_void = 1;
            } else if (strcmp(v, "background") == 0) {
                ignore_void = 0;
            } else {
                fprintf(stderr, "vtrack eval: --void '%s': expected 'ignore' or 'background'\n", v);
                goto done;
            }
            break;
        default:
            status = vt_cli_option_error("eval", c, argv);
            goto done;
        }
    }
    if (optind < argc) {
        status = vt_cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
        goto done;
    }
    if (!davis || !pred) {
        fprintf(stderr, "vtrack eval: %s is required (see vtrack eval --help)\n",
                !davis ? "--davis ROOT (or --mot ROOT)" : "--pred DIR");
        goto done;
    }

    char ann_root[EVAL_PATH_MAX], path[EVAL_PATH_MAX];
    if (join(ann_root, davis, "Annotations", res_name) < 0 || !is_dir(ann_root)) {
        fprintf(stderr, "vtrack eval: --davis '%s': no folder %s/Annotations/%s\n", davis, davis,
                res_name);
        goto done;
    }
    if (!is_dir(pred)) {
        fprintf(stderr, "vtrack eval: --pred '%s': not a folder\n", pred);
        goto done;
    }
    if (seqs.n == 0) {
        int r = list_dir(ann_root, 1, &seqs);
        if (r < 0) {
            fprintf(stderr, "vtrack eval: %s: %s\n", ann_root, strerror(-r));
            status = 1;
            goto done;
        }
        if (seqs.n == 0) {
            fprintf(stderr, "vtrack eval: --davis '%s': no sequence folder in %s\n", davis,
                    ann_root);
            status = 1;
            goto done;
        }
    } else {
        for (int i = 0; i < seqs.n; i++) {
            if (join(path, ann_root, seqs.v[i], NULL) < 0 || !is_dir(path)) {
                fprintf(stderr, "vtrack eval: --seq '%s': no folder %s/%s\n", seqs.v[i], ann_root,
                        seqs.v[i]);
                goto done;
            }
        }
    }

    status = 1;
    for (int i = 0; i < seqs.n; i++)
        if (eval_sequence(ann_root, pred, seqs.v[i], ignore_void, &res) < 0)
            goto done;

    m = mean_over_objects(&res);
    print_table(&res, &m);
    if (csv && write_csv(csv, &res, &m) < 0)
        goto done;
    printf("J&F %.1f J %.1f F %.1f\n", 50 * (m.j.mean + m.f.mean), 100 * m.j.mean, 100 * m.f.mean);
    fflush(stdout);
    status = 0;

done:
    names_free(&seqs);
    results_free(&res);
    return status;
}
