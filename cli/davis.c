/*
 * davis.c - the DAVIS semi-supervised metrics (see davis.h).
 *
 * The costly step is the boundary match. The official code dilates each boundary map with a
 * disk of radius r (8 at 480p: 197 offsets) and intersects it with the other map. Here
 * each boundary map is kept as its pixels' x coordinates, row by row (boundaries are sparse: a
 * few thousand pixels of 400k), and a boundary pixel (x, y) of one map is matched when some row
 * y +- k (k <= r) of the other map has a pixel within floor(sqrt(r^2 - k^2)) of x. That is the
 * same set of offsets as skimage's disk(r), so the result is exact; each row pair is a merge
 * of two sorted lists, so the cost is (2r + 1) x the boundary length, not r^2 x the image.
 */
#include "davis.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int vt_davis_bound_pix(int w, int h) {
    if (w < 1 || h < 1)
        return 0;
    /* Computed as numpy does: ceil(0.008 * norm((h, w))) in double precision. */
    double diag = sqrt((double)h * (double)h + (double)w * (double)w);
    return (int)ceil(0.008 * diag);
}

/*
 * The pixels a mask is made of: with label < 0 every non-zero byte of `map` (binary masks),
 * otherwise the bytes equal to `label` (one object of a label map). As a void selection, map
 * NULL means "no void".
 */
typedef struct sel {
    const uint8_t *map;
    int label;
} sel;

/*
 * These row loops run over every pixel of every mask, so they work on 8 pixels at a time in a
 * 64-bit word (GCC does not vectorise them at -O2). Per byte, with H = 0x7f in every byte:
 * ((x & H) + H) | x has its top bit set exactly when the byte is non-zero (the addition cannot
 * carry into the next byte), so the test yields 0/1 bytes without branches.
 */
#define ONES 0x0101010101010101ull
#define LOW7 0x7f7f7f7f7f7f7f7full

static inline uint64_t load8(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store8(uint8_t *p, uint64_t v) {
    memcpy(p, &v, sizeof v);
}

/* 0x01 in each byte of x that is non-zero, 0x00 elsewhere. */
static inline uint64_t nonzero8(uint64_t x) {
    return ((((x & LOW7) + LOW7) | x) >> 7) & ONES;
}

/* 0x01 in each byte of the 8 pixels at p that selection s takes, 0x00 elsewhere. */
static inline uint64_t in8(sel s, const uint8_t *p) {
    uint64_t x = load8(p);
    return s.label < 0 ? nonzero8(x) : nonzero8(x ^ (ONES * (uint8_t)s.label)) ^ ONES;
}

static inline int in1(sel s, uint8_t v) {
    return s.label < 0 ? v != 0 : v == s.label;
}

/* Row y of mask m with the pixels of void v cleared, as 0/1 bytes: what f_measure passes on to
 * _seg2bmap. */
static void select_row(sel m, sel v, int w, int y, uint8_t *out) {
    size_t o = (size_t)y * (size_t)w;
    int x = 0;
    for (; x + 8 <= w; x += 8) {
        uint64_t in = in8(m, m.map + o + x);
        if (v.map)
            in &= ~in8(v, v.map + o + x);
        store8(out + x, in);
    }
    for (; x < w; x++)
        out[x] = (uint8_t)(in1(m, m.map[o + x]) && !(v.map && in1(v, v.map[o + x])));
}

/* Overlap and union of masks g and p over the n pixels outside void v. */
static void overlap(sel g, sel p, sel v, size_t n, size_t *inter, size_t *uni) {
    size_t ni = 0, nu = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t a = in8(g, g.map + i), b = in8(p, p.map + i);
        uint64_t keep = v.map ? ~in8(v, v.map + i) & ONES : ONES;
        /* Multiplying 0/1 bytes by ONES sums them into the top byte. */
        ni += ((a & b & keep) * ONES) >> 56;
        nu += (((a | b) & keep) * ONES) >> 56;
    }
    for (; i < n; i++) {
        int keep = !(v.map && in1(v, v.map[i]));
        int a = in1(g, g.map[i]), b = in1(p, p.map[i]);
        ni += a & b & keep;
        nu += (a | b) & keep;
    }
    *inter = ni;
    *uni = nu;
}

/*
 * One row of the official boundary map from the 0/1 rows `cur` and `next` (the row below; NULL
 * for the last row): a pixel differs from its right, lower or lower-right neighbour; in the
 * last row only the right one counts, in the last column only the lower one, and the
 * bottom-right pixel is cleared explicitly by the official code.
 */
static void bmap_row(const uint8_t *cur, const uint8_t *next, int w, uint8_t *b) {
    int x = 0;
    if (next) {
        for (; x + 9 <= w; x += 8) {
            uint64_t c = load8(cur + x);
            store8(b + x,
                   (c ^ load8(cur + x + 1)) | (c ^ load8(next + x)) | (c ^ load8(next + x + 1)));
        }
        for (; x < w - 1; x++)
            b[x] = (uint8_t)((cur[x] ^ cur[x + 1]) | (cur[x] ^ next[x]) | (cur[x] ^ next[x + 1]));
        b[w - 1] = cur[w - 1] ^ next[w - 1];
    } else {
        for (; x + 9 <= w; x += 8)
            store8(b + x, load8(cur + x) ^ load8(cur + x + 1));
        for (; x < w - 1; x++)
            b[x] = cur[x] ^ cur[x + 1];
        b[w - 1] = 0;
    }
}

long vt_davis_seg2bmap(const uint8_t *mask, const uint8_t *void_mask, int w, int h, uint8_t *bmap) {
    if (w < 1 || h < 1)
        return 0;
    uint8_t *rows = malloc(2 * (size_t)w);
    if (!rows)
        return -ENOMEM;
    uint8_t *cur = rows, *next = rows + w;
    long count = 0;
    sel m = {mask, -1}, v = {void_mask, -1};
    select_row(m, v, w, 0, cur);
    for (int y = 0; y < h; y++) {
        uint8_t *b = bmap + (size_t)y * (size_t)w;
        if (y + 1 < h)
            select_row(m, v, w, y + 1, next);
        bmap_row(cur, y + 1 < h ? next : NULL, w, b);
        for (int x = 0; x < w; x++)
            count += b[x];
        uint8_t *t = cur;
        cur = next;
        next = t;
    }
    free(rows);
    return count;
}

double vt_davis_iou(const uint8_t *gt, const uint8_t *pred, const uint8_t *void_mask, int w,
                    int h) {
    size_t n = (w > 0 && h > 0) ? (size_t)w * (size_t)h : 0, inter, uni;
    overlap((sel){gt, -1}, (sel){pred, -1}, (sel){void_mask, -1}, n, &inter, &uni);
    /* Both masks empty (outside void) count as a perfect match, as in db_eval_iou. */
    return uni == 0 ? 1.0 : (double)inter / (double)uni;
}

/* A boundary map as lists of x per row: row y holds xs[start[y] .. start[y+1] - 1], increasing. */
typedef struct bpoints {
    int *xs;    /* up to w*h entries */
    int *start; /* h + 1 entries */
    long n;
} bpoints;

/* The official boundary of mask m (void v cleared) as points; `rows` is scratch of 3 w bytes. */
static void boundary_points(sel m, sel v, int w, int h, uint8_t *rows, bpoints *p) {
    uint8_t *cur = rows, *next = rows + w, *b = rows + 2 * (size_t)w;
    long n = 0;
    select_row(m, v, w, 0, cur);
    for (int y = 0; y < h; y++) {
        p->start[y] = (int)n;
        if (y + 1 < h)
            select_row(m, v, w, y + 1, next);
        bmap_row(cur, y + 1 < h ? next : NULL, w, b);
        int x = 0;
        /* Boundaries are sparse: skip 8 pixels at a time where the row is clear. */
        for (; x + 8 <= w; x += 8) {
            uint64_t word;
            memcpy(&word, b + x, sizeof word);
            if (!word)
                continue;
            for (int k = 0; k < 8; k++)
                if (b[x + k])
                    p->xs[n++] = x + k;
        }
        for (; x < w; x++)
            if (b[x])
                p->xs[n++] = x;
        uint8_t *t = cur;
        cur = next;
        next = t;
    }
    p->start[h] = (int)n;
    p->n = n;
}

/*
 * How many points of `a` have a point of `b` within the disk of radius r: in row y +- k, a
 * point at most half[k] away along the row. `hit` is scratch of w bytes.
 */
static long count_matches(const bpoints *a, const bpoints *b, int h, int r, const int *half,
                          uint8_t *hit) {
    long matched = 0;
    for (int y = 0; y < h; y++) {
        int a0 = a->start[y], na = a->start[y + 1] - a0;
        if (na == 0)
            continue;
        const int *ax = a->xs + a0;
        memset(hit, 0, (size_t)na);
        for (int k = 0; k <= r; k++) {
            for (int side = -1; side <= 1; side += 2) {
                int yy = y + side * k;
                if ((k == 0 && side > 0) || yy < 0 || yy >= h)
                    continue;
                int j = b->start[yy], j1 = b->start[yy + 1];
                const int *bx = b->xs, hw = half[k];
                /* Both rows are sorted: one forward pass finds, for each x, the first point of
                 * the other row at or right of x - hw; it matches if it is also <= x + hw. */
                for (int i = 0; i < na && j < j1; i++) {
                    int x = ax[i];
                    while (j < j1 && bx[j] < x - hw)
                        j++;
                    if (j < j1 && bx[j] <= x + hw)
                        hit[i] = 1;
                }
            }
        }
        for (int i = 0; i < na; i++)
            matched += hit[i];
    }
    return matched;
}

/* f_measure on selected masks (see vt_davis_boundary_f). */
static int boundary_f(sel gt, sel pred, sel void_sel, int w, int h, int bound_pix,
                      vt_davis_boundary *out) {
    if (w < 1 || h < 1 || (size_t)w > SIZE_MAX / sizeof(int) / (size_t)h || (long)w * h > INT_MAX)
        return -EINVAL;
    size_t n = (size_t)w * (size_t)h;
    int r = bound_pix > 0 ? bound_pix : vt_davis_bound_pix(w, h);
    memset(out, 0, sizeof *out);
    out->bound_pix = r;
    /* No two pixels are w + h apart or more: a larger disk covers the image all the same. */
    if (r > w + h)
        r = w + h;

    int ret = 0;
    long n_gt, n_pred;
    /* The point lists are sized for the worst case (every pixel a boundary pixel); only the
     * pages actually used get touched. */
    bpoints pg = {.xs = malloc(n * sizeof(int)), .start = malloc(((size_t)h + 1) * sizeof(int))};
    bpoints pp = {.xs = malloc(n * sizeof(int)), .start = malloc(((size_t)h + 1) * sizeof(int))};
    uint8_t *scratch = malloc(3 * (size_t)w);
    int *half = malloc(((size_t)r + 1) * sizeof *half);
    if (!pg.xs || !pg.start || !pp.xs || !pp.start || !scratch || !half) {
        ret = -ENOMEM;
        goto done;
    }
    boundary_points(gt, void_sel, w, h, scratch, &pg);
    boundary_points(pred, void_sel, w, h, scratch, &pp);
    n_gt = pg.n, n_pred = pp.n;
    out->n_gt = n_gt;
    out->n_pred = n_pred;

    double precision, recall;
    if (n_pred == 0 && n_gt > 0) {
        precision = 1.0;
        recall = 0.0;
    } else if (n_pred > 0 && n_gt == 0) {
        precision = 0.0;
        recall = 1.0;
    } else if (n_pred == 0 && n_gt == 0) {
        precision = 1.0;
        recall = 1.0;
    } else {
        for (int k = 0; k <= r; k++) {
            long v = (long)r * r - (long)k * k;
            long m = (long)sqrt((double)v);
            while (m * m > v) /* sqrt's rounding must not decide which offsets are inside */
                m--;
            while ((m + 1) * (m + 1) <= v)
                m++;
            half[k] = (int)m;
        }
        out->gt_match = count_matches(&pg, &pp, h, r, half, scratch);
        out->pred_match = count_matches(&pp, &pg, h, r, half, scratch);
        precision = (double)out->pred_match / (double)n_pred;
        recall = (double)out->gt_match / (double)n_gt;
    }
    out->precision = precision;
    out->recall = recall;
    /* precision + recall is 0 only when neither boundary matched anything. */
    if (precision + recall > 0.0)
        out->f = 2.0 * precision * recall / (precision + recall);
    else
        out->f = 0.0;

done:
    free(pg.xs);
    free(pg.start);
    free(pp.xs);
    free(pp.start);
    free(scratch);
    free(half);
    return ret;
}

int vt_davis_boundary_f(const uint8_t *gt, const uint8_t *pred, const uint8_t *void_mask, int w,
                        int h, int bound_pix, vt_davis_boundary *out) {
    return boundary_f((sel){gt, -1}, (sel){pred, -1}, (sel){void_mask, -1}, w, h, bound_pix, out);
}

int vt_davis_statistics(const double *values, int n, vt_davis_stats *out) {
    if (n < 1)
        return -EINVAL;
    double sum = 0.0;
    int above = 0;
    for (int i = 0; i < n; i++) {
        sum += values[i];
        above += values[i] > 0.5;
    }
    out->mean = sum / n;
    out->recall = (double)above / n;

    /*
     * Bin edges: round(linspace(1, n, 5) + 1e-10) - 1. The points are 1 + k (n-1) / 4, whose
     * fractional parts are multiples of 1/4; the 1e-10 makes numpy's half-to-even rounding
     * round halves up, so the edge is floor((k (n-1) + 2) / 4) exactly, in integers.
     */
    int edge[5];
    for (int k = 0; k < 5; k++)
        edge[k] = (int)(((long)k * (n - 1) + 2) / 4);
    double first = 0.0, last = 0.0;
    for (int i = edge[0]; i <= edge[1]; i++)
        first += values[i];
    for (int i = edge[3]; i <= edge[4]; i++)
        last += values[i];
    out->decay = first / (edge[1] - edge[0] + 1) - last / (edge[4] - edge[3] + 1);
    return 0;
}

int vt_davis_labels_from_png(uint8_t *labels, size_t n, int is_palette) {
    if (is_palette)
        return 0;
    /* Binary when every byte is 0 or 255: a byte that is neither has both x and ~x non-zero. */
    uint64_t other = 0, any = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = load8(labels + i);
        other |= nonzero8(x) & nonzero8(~x);
        any |= x;
    }
    for (; i < n; i++) {
        other |= labels[i] != 0 && labels[i] != 255;
        any |= labels[i];
    }
    if (other || !any)
        return 0;
    for (i = 0; i + 8 <= n; i += 8)
        store8(labels + i, nonzero8(load8(labels + i)));
    for (; i < n; i++)
        labels[i] = labels[i] != 0;
    return 1;
}

void vt_davis_labels_present(const uint8_t *labels, size_t n, uint8_t present[256]) {
    /* Plain stores, no read-modify-write chain: about as fast as reading the map. */
    memset(present, 0, 256);
    for (size_t i = 0; i < n; i++)
        present[labels[i]] = 1;
}

int vt_davis_max_label(const uint8_t *labels, size_t n) {
    uint8_t present[256];
    vt_davis_labels_present(labels, n, present);
    for (int k = VT_DAVIS_VOID - 1; k > 0; k--)
        if (present[k])
            return k;
    return 0;
}

int vt_davis_score_frame(const uint8_t *gt, const uint8_t *pred, int w, int h, int n_obj,
                         int ignore_void, double *j, double *f) {
    if (w < 1 || h < 1 || (size_t)w > SIZE_MAX / (size_t)h || n_obj < 0 || n_obj >= VT_DAVIS_VOID)
        return -EINVAL;
    size_t n = (size_t)w * (size_t)h;

    sel void_sel = {ignore_void ? gt : NULL, VT_DAVIS_VOID};
    for (int k = 1; k <= n_obj; k++) {
        size_t inter, uni;
        overlap((sel){gt, k}, (sel){pred, k}, void_sel, n, &inter, &uni);
        j[k - 1] = uni == 0 ? 1.0 : (double)inter / (double)uni;
        if (uni == 0) {
            /* Both masks are empty once void is cleared, so both boundaries are: F 1. */
            f[k - 1] = 1.0;
            continue;
        }
        vt_davis_boundary b;
        int ret = boundary_f((sel){gt, k}, (sel){pred, k}, void_sel, w, h, 0, &b);
        if (ret < 0)
            return ret;
        f[k - 1] = b.f;
    }
    return 0;
}
