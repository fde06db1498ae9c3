/*
 * bgmodel.c - the background of a fixed camera (see bgmodel.h).
 *
 * Per block: the background colour in 1/16 levels (so that the slow update of a learnt block
 * does not stall on integer rounding), its age in frames (0 = unknown), and a candidate colour
 * with the number of frames in a row it has been seen (for learning and relearning).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bgmodel.h"

/* One allocation: the struct, then its arrays (the 16-bit ones first). */
struct vt_bgmodel {
    int w, h, bw, bh, nb;
    uint16_t *mu;   /* [nb][3] background colour x16 */
    uint8_t *cand;  /* [nb][3] candidate colour */
    uint16_t *age;  /* [nb] frames the background has been known (saturating), 0 = unknown */
    uint8_t *ncand; /* [nb] frames in a row the candidate was seen (saturating) */
    uint8_t *cls;   /* [nb] classes of the last frame */
    uint8_t *cur;   /* [nb][3] the frame's block colours */
    uint8_t *prev;  /* [nb][3] the previous frame's */
    int have_prev;
    int tol; /* the noise tolerance of the frames before (0 before the first) */
    int64_t resets;
};

size_t vtm_bgmodel_bytes(int w, int h) {
    const size_t nb = (size_t)((w + 1) / 2) * ((h + 1) / 2);
    return sizeof(vt_bgmodel) + nb * (3 * 2 + 2 + 3 + 1 + 1 + 3 + 3);
}

int vtm_bgmodel_new(int w, int h, vt_bgmodel **out) {
    *out = NULL;
    if (w <= 0 || h <= 0)
        return -EINVAL;
    vt_bgmodel *b = calloc(1, vtm_bgmodel_bytes(w, h));
    if (!b)
        return -ENOMEM;
    b->w = w, b->h = h;
    b->bw = (w + 1) / 2, b->bh = (h + 1) / 2;
    b->nb = b->bw * b->bh;
    const size_t nb = (size_t)b->nb;
    b->mu = (uint16_t *)(b + 1);
    b->age = b->mu + nb * 3;
    b->cand = (uint8_t *)(b->age + nb);
    b->ncand = b->cand + nb * 3;
    b->cls = b->ncand + nb;
    b->cur = b->cls + nb;
    b->prev = b->cur + nb * 3;
    *out = b;
    return 0;
}

void vtm_bgmodel_free(vt_bgmodel **bp) {
    free(*bp);
    *bp = NULL;
}

void vtm_bgmodel_size(const vt_bgmodel *b, int *bw, int *bh) {
    *bw = b->bw;
    *bh = b->bh;
}

const uint8_t *vtm_bgmodel_classes(const vt_bgmodel *b) {
    return b->cls;
}

int64_t vtm_bgmodel_resets(const vt_bgmodel *b) {
    return b->resets;
}

/* Mean colour of each 2x2 block (fewer pixels at an odd edge). */
static void block_means(vt_bgmodel *b, const vt_image *img) {
    for (int by = 0; by < b->bh; by++) {
        const int y0 = 2 * by, ny = y0 + 1 < img->h ? 2 : 1;
        for (int bx = 0; bx < b->bw; bx++) {
            const int x0 = 2 * bx, nx = x0 + 1 < img->w ? 2 : 1;
            int acc[3] = {0, 0, 0};
            for (int y = y0; y < y0 + ny; y++) {
                const uint8_t *p = img->rgb + (size_t)y * img->linesize + 3 * x0;
                for (int x = 0; x < nx; x++)
                    for (int c = 0; c < 3; c++)
                        acc[c] += p[3 * x + c];
            }
            const int cnt = nx * ny;
            uint8_t *d = b->cur + 3 * ((size_t)by * b->bw + bx);
            for (int c = 0; c < 3; c++)
                d[c] = (uint8_t)((acc[c] + cnt / 2) / cnt);
        }
    }
}

static int absi(int v) {
    return v < 0 ? -v : v;
}

/* Largest channel difference between a block's colour and a background (x16) colour. */
static int diff16(const uint8_t *c, const uint16_t *mu) {
    int d = 0;
    for (int k = 0; k < 3; k++) {
        int e = absi(16 * c[k] - mu[k]);
        d = e > d ? e : d;
    }
    return (d + 8) / 16;
}

static int diff8(const uint8_t *a, const uint8_t *b) {
    int d = 0;
    for (int k = 0; k < 3; k++) {
        int e = absi(a[k] - b[k]);
        d = e > d ? e : d;
    }
    return d;
}

/* The background in shadow: darker by a factor 0.4..0.95, same chromaticity within tol. */
static int is_shadow(const uint8_t *c, const uint16_t *mu, int tol) {
    double mm = 0, cm = 0;
    for (int k = 0; k < 3; k++) {
        mm += (double)mu[k] * mu[k];
        cm += (double)c[k] * 16.0 * mu[k];
    }
    if (mm < 16.0 * 16.0 * 30 * 30) /* a dark background has no shadow to speak of */
        return 0;
    const double a = cm / mm;
    if (a < 0.4 || a > 0.95)
        return 0;
    for (int k = 0; k < 3; k++)
        if (absi((int)(c[k] - a * mu[k] / 16.0 + (c[k] >= a * mu[k] / 16.0 ? 0.5 : -0.5))) > tol)
            return 0;
    return 1;
}

/* Candidate colour seen again (within tol) or replaced; returns the frames in a row. */
static int candidate(vt_bgmodel *b, int i, const uint8_t *c, int tol) {
    uint8_t *cd = b->cand + 3 * (size_t)i;
    if (b->ncand[i] > 0 && diff8(c, cd) <= tol) {
        if (b->ncand[i] < 255)
            b->ncand[i]++;
    } else {
        memcpy(cd, c, 3);
        b->ncand[i] = 1;
    }
    return b->ncand[i];
}

double vtm_bgmodel_update(vt_bgmodel *b, const vt_image *img, const uint8_t *hold) {
    if (!img || img->w != b->w || img->h != b->h)
        return 0.0;
    block_means(b, img);
    const int nb = b->nb;
    /* The camera's noise: the median difference over the learnt blocks (most of them show the
     * background); 3 times that plus a margin for compression, within [8, 40] levels. The
     * blocks are classified with it (it follows the light and the encoder's noise frame by
     * frame); whether the view moved is judged with the tolerance of the frames before, which
     * follows it slowly: a frame whose view has moved (all its blocks differ) must not widen
     * the tolerance that decides whether it moved. */
    int hist[256] = {0}, known = 0;
    for (int i = 0; i < nb; i++) {
        if (!b->age[i])
            continue;
        int d = diff16(b->cur + 3 * (size_t)i, b->mu + 3 * (size_t)i);
        hist[d > 255 ? 255 : d]++;
        known++;
    }
    int med = 0;
    for (int acc = 0; med < 255 && 2 * (acc + hist[med]) < known; med++)
        acc += hist[med];
    int est = 3 * med + 6;
    est = est < 8 ? 8 : est > 40 ? 40 : est;
    const int tol = est, mtol = b->tol ? b->tol : est;

    /* A moving camera: most of the textured blocks (an edge within them: they change when the
     * view shifts, uniform ones do not) differ from the previous frame. Moving objects cover
     * far less of a fixed camera's view. */
    int textured = 0, changed = 0;
    if (b->have_prev) {
        for (int y = 0; y + 1 < b->bh; y++) {
            for (int x = 0; x + 1 < b->bw; x++) {
                const int i = y * b->bw + x;
                const uint8_t *c = b->cur + 3 * (size_t)i;
                if (diff8(c, c + 3) + diff8(c, c + 3 * (size_t)b->bw) < 24)
                    continue;
                textured++;
                changed += diff8(c, b->prev + 3 * (size_t)i) > mtol;
            }
        }
    }
    memcpy(b->prev, b->cur, (size_t)nb * 3);
    b->have_prev = 1;
    const int moved = textured >= nb / 50 && 2 * changed > textured;

    int matched = 0;
    for (int i = 0; i < nb; i++) {
        if (!b->age[i]) {
            b->cls[i] = VT_BG_UNKNOWN;
            continue;
        }
        const uint8_t *c = b->cur + 3 * (size_t)i;
        const uint16_t *mu = b->mu + 3 * (size_t)i;
        const int d = diff16(c, mu);
        const int bgnd = d <= tol || is_shadow(c, mu, tol);
        b->cls[i] = bgnd ? VT_BG_BACKGROUND : VT_BG_FOREGROUND;
        matched += mtol == tol ? bgnd : d <= mtol || is_shadow(c, mu, mtol);
    }
    if (moved || (known >= nb / 5 && 2 * matched < known)) {
        /* The camera moved, or the light changed at once: start again. */
        memset(b->age, 0, sizeof *b->age * nb);
        memset(b->ncand, 0, (size_t)nb);
        memset(b->cls, VT_BG_UNKNOWN, (size_t)nb);
        b->resets++;
        known = 0;
    } else if (known) {
        b->tol = mtol + (est - mtol) / 4;
    }

    for (int i = 0; i < nb; i++) {
        const uint8_t *c = b->cur + 3 * (size_t)i;
        uint16_t *mu = b->mu + 3 * (size_t)i;
        const int need = hold && hold[i] ? hold[i] : 0;
        if (b->age[i] && diff16(c, mu) <= tol) {
            /* The background, seen again: follow slow changes (time constant 16 frames). */
            for (int k = 0; k < 3; k++)
                mu[k] = (uint16_t)(mu[k] + (16 * c[k] - mu[k]) / 16);
            if (b->age[i] < UINT16_MAX)
                b->age[i]++;
            b->ncand[i] = 0;
            continue;
        }
        if (need == 255) {
            b->ncand[i] = 0; /* an object may be standing there: learn nothing */
            continue;
        }
        const int run = candidate(b, i, c, tol);
        const int base = b->age[i] ? VT_BG_RELEARN : VT_BG_LEARN;
        if (run >= (need > base ? need : base)) {
            for (int k = 0; k < 3; k++)
                mu[k] = (uint16_t)(16 * c[k]);
            if (!b->age[i])
                known++;
            b->age[i] = 1;
            b->ncand[i] = 0;
        }
    }
    return nb ? (double)known / nb : 0.0;
}
