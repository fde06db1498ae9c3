/*
 * mot.c - metrics of box-registered multi-object tracking (mot.h): MOTChallenge file parsing,
 * box IoU, the registration metrics (AO, SR50, identity swaps), the identity metrics (IDF1) and
 * CLEAR MOT (IDSW, MOTA) as TrackEval computes them, and the Hungarian method they rely on.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mot.h"
#include "vt_base.h"

/* ---------------------------------------------------------------------------------------------
 * Box lists
 * ------------------------------------------------------------------------------------------- */

int vt_mot_boxes_add(vt_mot_boxes *l, const vt_mot_box *b) {
    vt_mot_box *v = vt_grow(l->v, sizeof *v, l->n + 1, &l->cap, 256);
    if (!v)
        return -ENOMEM;
    l->v = v;
    l->v[l->n++] = *b;
    return 0;
}

void vt_mot_boxes_free(vt_mot_boxes *l) {
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_frame_id(const void *pa, const void *pb) {
    const vt_mot_box *a = pa, *b = pb;
    if (a->frame != b->frame)
        return a->frame < b->frame ? -1 : 1;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return (a->line > b->line) - (a->line < b->line);
}

void vt_mot_boxes_sort(vt_mot_boxes *l) {
    if (l->n > 1)
        qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_frame_id);
}

/* A sorted copy of `l`, keeping only boxes with w, h > 0 when `boxes_only`. */
static int sorted_copy(const vt_mot_boxes *l, int boxes_only, vt_mot_boxes *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < l->n; i++) {
        if (boxes_only && !(l->v[i].w > 0 && l->v[i].h > 0))
            continue;
        if (vt_mot_boxes_add(out, &l->v[i]) < 0) {
            vt_mot_boxes_free(out);
            return -ENOMEM;
        }
    }
    vt_mot_boxes_sort(out);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------------------------- */

/*
 * Is s[0..n) a plain decimal number: [+-] digits [. digits] [e [+-] digits], at least one digit
 * before the exponent? (strtod alone would also take "inf", "nan" and hexadecimal.)
 */
static int is_decimal(const char *s, size_t n) {
    size_t i = 0, digits = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t exp_digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, exp_digits++;
        if (exp_digits == 0)
            return 0;
    }
    return i == n;
}

enum { F_FRAME, F_ID, F_X, F_Y, F_W, F_H, F_CONF };

static const char *field_name(int k, int is_gt, char *buf, size_t len) {
    static const char *const names[] = {"frame", "id", "x", "y", "w", "h"};
    if (k < F_CONF)
        return names[k];
    if (k == F_CONF)
        return is_gt ? "conf" : "score";
    snprintf(buf, len, "extra");
    return buf;
}

/*
 * Parse one non-blank line into *b (and the conf column into *conf for ground truth). Returns 0
 * or -EINVAL with the message.
 */
static int parse_line(const char *line, size_t len, const char *name, int lineno, int is_gt,
                      vt_mot_box *b, double *conf, char *err, size_t errlen) {
    double v[F_CONF + 1] = {0};
    int k = 0;
    size_t pos = 0;
    for (;; k++) {
        size_t start = pos;
        while (pos < len && line[pos] != ',')
            pos++;
        size_t a = start, e = pos;
        while (a < e && (line[a] == ' ' || line[a] == '\t'))
            a++;
        while (e > a && (line[e - 1] == ' ' || line[e - 1] == '\t'))
            e--;
        char nb[32];
        const char *fname = field_name(k, is_gt, nb, sizeof nb);
        if (a == e) {
            vt_fmt(err, errlen, "%s:%d: field %d (%s) is empty", name, lineno, k + 1, fname);
            return -EINVAL;
        }
        if (!is_decimal(line + a, e - a)) {
            vt_fmt(err, errlen, "%s:%d: field %d (%s): '%.*s' is not a number", name, lineno, k + 1,
                   fname, (int)(e - a > 40 ? 40 : e - a), line + a);
            return -EINVAL;
        }
        char num[64];
        if (e - a >= sizeof num) {
            vt_fmt(err, errlen, "%s:%d: field %d (%s): number too long", name, lineno, k + 1,
                   fname);
            return -EINVAL;
        }
        memcpy(num, line + a, e - a);
        num[e - a] = '\0';
        double x = strtod(num, NULL);
        if (!isfinite(x)) {
            vt_fmt(err, errlen, "%s:%d: field %d (%s): %s is not finite", name, lineno, k + 1,
                   fname, num);
            return -EINVAL;
        }
        if (k == F_FRAME && !(x >= 1 && x <= INT_MAX && x == floor(x))) {
            vt_fmt(err, errlen,
                   "%s:%d: field 1 (frame): %s is not a frame number (an integer >= 1)", name,
                   lineno, num);
            return -EINVAL;
        }
        if (k == F_ID && !(x >= (is_gt ? 1 : INT_MIN) && x <= INT_MAX && x == floor(x))) {
            vt_fmt(err, errlen, "%s:%d: field 2 (id): %s is not an identity (an integer%s)", name,
                   lineno, num, is_gt ? " >= 1" : "");
            return -EINVAL;
        }
        if (is_gt && (k == F_W || k == F_H) && x < 0) {
            vt_fmt(err, errlen, "%s:%d: field %d (%s): %s is negative", name, lineno, k + 1, fname,
                   num);
            return -EINVAL;
        }
        if (k <= F_CONF)
            v[k] = x;
        if (pos >= len)
            break;
        pos++; /* the comma */
    }
    int want = is_gt ? F_CONF + 1 : F_H + 1;
    if (k + 1 < want) {
        vt_fmt(err, errlen, "%s:%d: %d field%s, want at least %d (%s)", name, lineno, k + 1,
               k ? "s" : "", want, is_gt ? "frame,id,x,y,w,h,conf" : "frame,id,x,y,w,h");
        return -EINVAL;
    }
    *b = (vt_mot_box){.frame = (int)v[F_FRAME],
                      .id = (int)v[F_ID],
                      .x = v[F_X],
                      .y = v[F_Y],
                      .w = v[F_W],
                      .h = v[F_H],
                      .score = is_gt || k < F_CONF ? 1.0 : v[F_CONF],
                      .line = lineno};
    *conf = v[F_CONF];
    return 0;
}

/* Refuse two boxes of the same frame and id, naming the later line. */
static int check_unique(const vt_mot_boxes *l, const char *name, char *err, size_t errlen) {
    vt_mot_boxes s;
    if (sorted_copy(l, 0, &s) < 0)
        return -ENOMEM;
    int ret = 0;
    for (int i = 1; i < s.n && ret == 0; i++) {
        const vt_mot_box *a = &s.v[i - 1], *b = &s.v[i];
        if (a->frame == b->frame && a->id == b->id) {
            vt_fmt(err, errlen, "%s:%d: frame %d, id %d is given twice (also on line %d)", name,
                   b->line, b->frame, b->id, a->line);
            ret = -EINVAL;
        }
    }
    vt_mot_boxes_free(&s);
    return ret;
}

static int parse_text(const char *text, size_t len, const char *name, int is_gt, vt_mot_boxes *out,
                      char *err, size_t errlen) {
    size_t pos = 0;
    int lineno = 0, first = out->n;
    while (pos < len) {
        size_t start = pos;
        while (pos < len && text[pos] != '\n')
            pos++;
        size_t end = pos;
        pos++;
        lineno++;
        if (end > start && text[end - 1] == '\r')
            end--;
        size_t a = start;
        while (a < end && (text[a] == ' ' || text[a] == '\t'))
            a++;
        if (a == end)
            continue; /* blank */
        vt_mot_box b;
        double conf;
        int ret =
            parse_line(text + start, end - start, name, lineno, is_gt, &b, &conf, err, errlen);
        if (ret < 0)
            return ret;
        if (is_gt && conf != 1)
            continue;
        if (vt_mot_boxes_add(out, &b) < 0)
            return -ENOMEM;
    }
    /* the boxes read here (out->v is NULL when there are none: no offset on it) */
    vt_mot_boxes mine = {
        .v = out->v ? out->v + first : NULL, .n = out->n - first, .cap = out->n - first};
    return check_unique(&mine, name, err, errlen);
}

int vt_mot_parse_gt(const char *text, size_t len, const char *name, vt_mot_boxes *out, char *err,
                    size_t errlen) {
    return parse_text(text, len, name, 1, out, err, errlen);
}

int vt_mot_parse_pred(const char *text, size_t len, const char *name, vt_mot_boxes *out, char *err,
                      size_t errlen) {
    return parse_text(text, len, name, 0, out, err, errlen);
}

static int is_blank(char c) {
    return c == ' ' || c == '\t';
}

int vt_mot_parse_seqinfo(const char *text, size_t len, const char *name, long *length, char *err,
                         size_t errlen) {
    static const char key[] = "seqLength";
    const long max = 100000000;
    *length = -1;
    size_t pos = 0;
    for (int lineno = 1; pos < len; lineno++) {
        size_t a = pos, end;
        while (pos < len && text[pos] != '\n')
            pos++;
        end = pos++;
        while (a < end && is_blank(text[a]))
            a++;
        if (end - a < sizeof key - 1 || memcmp(text + a, key, sizeof key - 1) != 0)
            continue;
        a += sizeof key - 1;
        while (a < end && is_blank(text[a]))
            a++;
        if (a == end || text[a] != '=')
            continue; /* another key, such as "seqLengthX" */
        a++;
        while (a < end && is_blank(text[a]))
            a++;
        while (end > a && (is_blank(text[end - 1]) || text[end - 1] == '\r'))
            end--;
        long v = 0;
        int ok = a < end;
        for (size_t i = a; ok && i < end; i++) {
            ok = text[i] >= '0' && text[i] <= '9';
            v = v > max ? v : 10 * v + (text[i] - '0'); /* past max it stays past max */
        }
        if (!ok || v < 1 || v > max) {
            vt_fmt(err, errlen, "%s:%d: seqLength '%.*s' is not a frame count (1..%ld)", name,
                   lineno, (int)(end - a > 40 ? 40 : end - a), text + a, max);
            return -EINVAL;
        }
        *length = v;
        return 0;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * IoU and registrations
 * ------------------------------------------------------------------------------------------- */

static double box_iou(const vt_mot_box *a, const vt_mot_box *b) {
    const double pa[4] = {a->x, a->y, a->w, a->h}, pb[4] = {b->x, b->y, b->w, b->h};
    return vt_box_iou(pa, pb);
}

static int cmp_id_frame(const void *pa, const void *pb) {
    const vt_mot_box *a = pa, *b = pb;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return (a->frame > b->frame) - (a->frame < b->frame);
}

int vt_mot_registrations(const vt_mot_boxes *gt, vt_mot_boxes *out) {
    vt_mot_boxes s;
    if (sorted_copy(gt, 0, &s) < 0)
        return -ENOMEM;
    if (s.n > 1)
        qsort(s.v, (size_t)s.n, sizeof *s.v, cmp_id_frame);
    int ret = 0;
    for (int i = 0; i < s.n && ret == 0; i++)
        if (i == 0 || s.v[i].id != s.v[i - 1].id)
            ret = vt_mot_boxes_add(out, &s.v[i]);
    vt_mot_boxes_free(&s);
    return ret;
}

/* ---------------------------------------------------------------------------------------------
 * The Hungarian method
 * ------------------------------------------------------------------------------------------- */

/*
 * Rows are assigned one at a time. For each new row, a Dijkstra-like search over columns
 * grows a tree of alternating paths in reduced costs (cost - u[row] - v[col] >= 0, the dual
 * potentials), until it reaches a free column; the potentials are raised along the way so that
 * the tree's edges stay tight, and the path is then flipped. After all rows, the assignment is
 * optimal (complementary slackness). Needs rows <= cols; O(rows^2 cols).
 *
 * Index 0 of the column arrays is a virtual column holding the row being inserted; rows and
 * columns are numbered from 1 inside.
 */
static int assign_wide(const double *cost, int rows, int cols, int transposed, int stride,
                       int *col_of_row) {
    double *u = calloc((size_t)rows + 1, sizeof *u);
    double *v = calloc((size_t)cols + 1, sizeof *v);
    double *dist = malloc(((size_t)cols + 1) * sizeof *dist);
    int *row_of = calloc((size_t)cols + 1, sizeof *row_of); /* row in column j, 0: free */
    int *prev = calloc((size_t)cols + 1, sizeof *prev);     /* previous column on the path */
    char *done = malloc((size_t)cols + 1);
    int ret = 0;
    if (!u || !v || !dist || !row_of || !prev || !done) {
        ret = -ENOMEM;
        goto out;
    }
#define COST(r, c) (transposed ? cost[(size_t)(c)*stride + (r)] : cost[(size_t)(r)*stride + (c)])
    for (int r = 1; r <= rows; r++) {
        row_of[0] = r;
        int j0 = 0;
        for (int j = 0; j <= cols; j++)
            dist[j] = INFINITY, done[j] = 0;
        do {
            done[j0] = 1;
            int r0 = row_of[j0], next = 0;
            double delta = INFINITY;
            for (int j = 1; j <= cols; j++) {
                if (done[j])
                    continue;
                double reduced = COST(r0 - 1, j - 1) - u[r0] - v[j];
                if (reduced < dist[j])
                    dist[j] = reduced, prev[j] = j0;
                if (dist[j] < delta)
                    delta = dist[j], next = j;
            }
            for (int j = 0; j <= cols; j++) {
                if (done[j])
                    u[row_of[j]] += delta, v[j] -= delta;
                else
                    dist[j] -= delta;
            }
            j0 = next;
        } while (row_of[j0] != 0);
        /* flip the path: each column takes the row of the column before it */
        while (j0) {
            int j1 = prev[j0];
            row_of[j0] = row_of[j1];
            j0 = j1;
        }
    }
#undef COST
    for (int r = 0; r < rows; r++)
        col_of_row[r] = -1;
    for (int j = 1; j <= cols; j++)
        if (row_of[j])
            col_of_row[row_of[j] - 1] = j - 1;
out:
    free(u);
    free(v);
    free(dist);
    free(row_of);
    free(prev);
    free(done);
    return ret;
}

int vt_mot_assign(const double *cost, int rows, int cols, int *match) {
    for (int r = 0; r < rows; r++)
        match[r] = -1;
    if (rows == 0 || cols == 0)
        return 0;
    if (rows <= cols)
        return assign_wide(cost, rows, cols, 0, cols, match);
    /* more rows than columns: assign the columns (the transposed problem) */
    int *row_of_col = malloc((size_t)cols * sizeof *row_of_col);
    if (!row_of_col)
        return -ENOMEM;
    int ret = assign_wide(cost, cols, rows, 1, cols, row_of_col);
    for (int c = 0; ret == 0 && c < cols; c++)
        if (row_of_col[c] >= 0)
            match[row_of_col[c]] = c;
    free(row_of_col);
    return ret;
}

/* ---------------------------------------------------------------------------------------------
 * Scoring
 * ------------------------------------------------------------------------------------------- */

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The distinct ids of a list, sorted. */
static int distinct_ids(const vt_mot_boxes *l, int **ids, int *n) {
    *n = 0;
    *ids = malloc(((size_t)l->n + 1) * sizeof **ids);
    if (!*ids)
        return -ENOMEM;
    for (int i = 0; i < l->n; i++)
        (*ids)[i] = l->v[i].id;
    qsort(*ids, (size_t)l->n, sizeof **ids, cmp_int);
    for (int i = 0; i < l->n; i++)
        if (i == 0 || (*ids)[i] != (*ids)[*n - 1])
            (*ids)[(*n)++] = (*ids)[i];
    return 0;
}

static int index_of(const int *ids, int n, int id) {
    const int *p = bsearch(&id, ids, (size_t)n, sizeof *ids, cmp_int);
    return p ? (int)(p - ids) : -1;
}

typedef struct scorer {
    vt_mot_boxes g, p; /* sorted by frame, id; p only boxes with w, h > 0 */
    int *gid, *pid, ng_ids, np_ids;
    int *f0;               /* registration frame per ground-truth identity */
    long *matches;         /* ng_ids x np_ids: frames where the pair has IoU >= 0.5 */
    int *last, *prev_step; /* CLEAR: last matched prediction, and the previous step's */
    double *iou, *cost;    /* per frame: ground truth x predictions */
    int *match;
    vt_mot_switch *sw;
    int nsw, capsw;
} scorer;

static void scorer_free(scorer *s) {
    vt_mot_boxes_free(&s->g);
    vt_mot_boxes_free(&s->p);
    free(s->gid);
    free(s->pid);
    free(s->f0);
    free(s->matches);
    free(s->last);
    free(s->prev_step);
    free(s->iou);
    free(s->cost);
    free(s->match);
    free(s->sw);
}

/* The registration metrics of one frame: G = s->g.v[ga..gb), P = s->p.v[pa..pb). */
static void frame_registration(scorer *s, int ga, int gb, int pa, int pb, vt_mot_counts *c) {
    int np = pb - pa;
    for (int i = ga; i < gb; i++) {
        const vt_mot_box *g = &s->g.v[i];
        if (g->frame <= s->f0[index_of(s->gid, s->ng_ids, g->id)])
            continue;
        c->pairs++;
        int j = pa;
        while (j < pb && s->p.v[j].id != g->id)
            j++;
        if (j == pb)
            continue; /* no box: IoU 0 */
        double own = s->iou[(size_t)(i - ga) * np + (j - pa)];
        c->iou_sum += own;
        if (own >= VT_MOT_IOU_MATCH) {
            c->success++;
            continue;
        }
        for (int k = ga; k < gb; k++) {
            if (k != i && s->iou[(size_t)(k - ga) * np + (j - pa)] >= VT_MOT_IOU_MATCH) {
                c->swaps++;
                break;
            }
        }
    }
}

/* CLEAR MOT on one frame, as TrackEval's CLEAR.eval_sequence steps through a timestep. */
static int frame_clear(scorer *s, int ga, int gb, int pa, int pb, vt_mot_counts *c) {
    int ng = gb - ga, np = pb - pa;
    if (ng == 0) {
        c->fp += np;
        return 0;
    }
    if (np == 0) {
        c->fn += ng;
        return 0;
    }
    /* maximise IoU + 1000 x (the pair was matched on the previous step), pairs >= 0.5 only */
    for (int i = 0; i < ng; i++) {
        int gi = index_of(s->gid, s->ng_ids, s->g.v[ga + i].id);
        for (int j = 0; j < np; j++) {
            double iou = s->iou[(size_t)i * np + j], score = 0;
            if (iou >= VT_MOT_IOU_MATCH)
                score = iou + (s->prev_step[gi] == index_of(s->pid, s->np_ids, s->p.v[pa + j].id)
                                   ? 1000.0
                                   : 0.0);
            s->cost[(size_t)i * np + j] = -score;
        }
    }
    if (vt_mot_assign(s->cost, ng, np, s->match) < 0)
        return -ENOMEM;
    int matched = 0;
    for (int i = 0; i < ng; i++) {
        int j = s->match[i];
        if (j < 0 || !(s->cost[(size_t)i * np + j] < 0))
            s->match[i] = -1; /* paired by the assignment, but not a match */
    }
    /* every identity not matched now loses its previous-step match, present here or not (a frame
     * without ground truth or without predictions changes nothing, as in TrackEval) */
    for (int k = 0; k < s->ng_ids; k++)
        s->prev_step[k] = -1;
    for (int i = 0; i < ng; i++) {
        int j = s->match[i];
        if (j < 0)
            continue;
        matched++;
        int gi = index_of(s->gid, s->ng_ids, s->g.v[ga + i].id);
        int pj = index_of(s->pid, s->np_ids, s->p.v[pa + j].id);
        if (s->last[gi] >= 0 && s->last[gi] != pj) {
            c->idsw++;
            vt_mot_switch *sw = vt_grow(s->sw, sizeof *sw, s->nsw + 1, &s->capsw, 16);
            if (!sw)
                return -ENOMEM;
            s->sw = sw;
            s->sw[s->nsw++] = (vt_mot_switch){.frame = s->g.v[ga + i].frame,
                                              .gt_id = s->gid[gi],
                                              .from_id = s->pid[s->last[gi]],
                                              .to_id = s->pid[pj]};
        }
        s->last[gi] = pj;
        s->prev_step[gi] = pj;
    }
    c->tp += matched;
    c->fn += ng - matched;
    c->fp += np - matched;
    return 0;
}

/* IDTP: the largest total of `matches` over a one-to-one pairing of trajectories. */
static int identity_tp(scorer *s, long *idtp) {
    *idtp = 0;
    if (s->ng_ids == 0 || s->np_ids == 0)
        return 0;
    size_t n = (size_t)s->ng_ids * s->np_ids;
    double *cost = malloc(n * sizeof *cost);
    int *match = malloc((size_t)s->ng_ids * sizeof *match);
    int ret = -ENOMEM;
    if (cost && match) {
        for (size_t k = 0; k < n; k++)
            cost[k] = -(double)s->matches[k];
        ret = vt_mot_assign(cost, s->ng_ids, s->np_ids, match);
        for (int i = 0; ret == 0 && i < s->ng_ids; i++)
            if (match[i] >= 0)
                *idtp += s->matches[(size_t)i * s->np_ids + match[i]];
    }
    free(cost);
    free(match);
    return ret;
}

int vt_mot_score(const vt_mot_boxes *gt, const vt_mot_boxes *pred, vt_mot_counts *out,
                 vt_mot_switch **switches, int *nswitches) {
    scorer s = {0};
    vt_mot_counts c = {0};
    int ret = -ENOMEM, ga = 0, pa = 0;
    size_t ng, np;
    if (switches)
        *switches = NULL, *nswitches = 0;
    if (sorted_copy(gt, 0, &s.g) < 0 || sorted_copy(pred, 1, &s.p) < 0 ||
        distinct_ids(&s.g, &s.gid, &s.ng_ids) < 0 || distinct_ids(&s.p, &s.pid, &s.np_ids) < 0)
        goto done;
    ng = (size_t)s.ng_ids, np = (size_t)s.np_ids;
    s.f0 = malloc((ng + 1) * sizeof *s.f0);
    s.matches = calloc(ng * np + 1, sizeof *s.matches);
    s.last = malloc((ng + 1) * sizeof *s.last);
    s.prev_step = malloc((ng + 1) * sizeof *s.prev_step);
    /* per-frame matrices: at most every identity of each side is on one frame */
    s.iou = malloc((ng * np + 1) * sizeof *s.iou);
    s.cost = malloc((ng * np + 1) * sizeof *s.cost);
    s.match = malloc((ng + 1) * sizeof *s.match);
    if (!s.f0 || !s.matches || !s.last || !s.prev_step || !s.iou || !s.cost || !s.match)
        goto done;
    for (size_t k = 0; k < ng; k++)
        s.f0[k] = INT_MAX, s.last[k] = s.prev_step[k] = -1;
    for (int i = 0; i < s.g.n; i++) {
        int k = index_of(s.gid, s.ng_ids, s.g.v[i].id);
        if (s.g.v[i].frame < s.f0[k])
            s.f0[k] = s.g.v[i].frame;
    }
    c.ids = s.ng_ids;
    c.gt_boxes = s.g.n;
    c.pred_boxes = s.p.n;

    /* Walk the frames that have a ground-truth or a predicted box, in order. */
    while (ga < s.g.n || pa < s.p.n) {
        int frame = ga < s.g.n ? s.g.v[ga].frame : INT_MAX;
        if (pa < s.p.n && s.p.v[pa].frame < frame)
            frame = s.p.v[pa].frame;
        int gb = ga, pb = pa;
        while (gb < s.g.n && s.g.v[gb].frame == frame)
            gb++;
        while (pb < s.p.n && s.p.v[pb].frame == frame)
            pb++;
        int nf = pb - pa;
        for (int i = ga; i < gb; i++) {
            int gi = index_of(s.gid, s.ng_ids, s.g.v[i].id);
            for (int j = pa; j < pb; j++) {
                double iou = box_iou(&s.g.v[i], &s.p.v[j]);
                s.iou[(size_t)(i - ga) * nf + (j - pa)] = iou;
                if (iou >= VT_MOT_IOU_MATCH)
                    s.matches[(size_t)gi * np + index_of(s.pid, s.np_ids, s.p.v[j].id)]++;
            }
        }
        frame_registration(&s, ga, gb, pa, pb, &c);
        if (frame_clear(&s, ga, gb, pa, pb, &c) < 0)
            goto done;
        ga = gb, pa = pb;
    }
    if (identity_tp(&s, &c.idtp) < 0)
        goto done;
    c.idfn = c.gt_boxes - c.idtp;
    c.idfp = c.pred_boxes - c.idtp;
    *out = c;
    if (switches) {
        *switches = s.sw, *nswitches = s.nsw;
        s.sw = NULL;
    }
    ret = 0;
done:
    scorer_free(&s);
    return ret;
}

void vt_mot_counts_add(vt_mot_counts *sum, const vt_mot_counts *c) {
    sum->ids += c->ids;
    sum->gt_boxes += c->gt_boxes;
    sum->pred_boxes += c->pred_boxes;
    sum->pairs += c->pairs;
    sum->iou_sum += c->iou_sum;
    sum->success += c->success;
    sum->swaps += c->swaps;
    sum->idtp += c->idtp;
    sum->idfp += c->idfp;
    sum->idfn += c->idfn;
    sum->tp += c->tp;
    sum->fp += c->fp;
    sum->fn += c->fn;
    sum->idsw += c->idsw;
}

static double pct(double num, double den) {
    return den > 0 ? 100.0 * num / den : 0.0;
}

void vt_mot_metrics_of(const vt_mot_counts *c, vt_mot_metrics *m) {
    m->ao = pct(c->iou_sum, (double)c->pairs);
    m->sr50 = pct((double)c->success, (double)c->pairs);
    m->swap_pct = pct((double)c->swaps, (double)c->pairs);
    m->idf1 = pct((double)c->idtp, c->idtp + 0.5 * (double)(c->idfp + c->idfn));
    m->idp = pct((double)c->idtp, (double)(c->idtp + c->idfp));
    m->idr = pct((double)c->idtp, (double)(c->idtp + c->idfn));
    /* TrackEval: (TP - FP - IDSW) / max(1, TP + FN) */
    double gtn = c->gt_boxes > 0 ? (double)c->gt_boxes : 1.0;
    m->mota = 100.0 * (double)(c->tp - c->fp - c->idsw) / gtn;
}
