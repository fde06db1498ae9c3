/*
 * appear.c - an object's appearance banks and the nearest-neighbour object probability (see
 * appear.h). The scores of many cells against both banks are one sgemm.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "appear.h"

size_t vtm_appear_bytes(int c) {
    return sizeof(float) * (size_t)c * (VT_APPEAR_POS + VT_APPEAR_NEG);
}

void vtm_appear_init(vt_appear *a, int c, float *storage) {
    a->c = c;
    a->pos = (vt_appear_bank){.v = storage, .cap = VT_APPEAR_POS, .fixed = VT_APPEAR_POS / 2};
    a->neg = (vt_appear_bank){
        .v = storage + (size_t)c * VT_APPEAR_POS, .cap = VT_APPEAR_NEG, .fixed = VT_APPEAR_NEG / 2};
}

void vtm_appear_reset(vt_appear *a) {
    a->pos.nfixed = a->pos.nroll = a->pos.next = 0;
    a->neg.nfixed = a->neg.nroll = a->neg.next = 0;
}

void vtm_appear_add(vt_appear *a, int positive, const float *feat, int n, const int *cells,
                    int ncells, int fixed, int max_take) {
    vt_appear_bank *b = positive ? &a->pos : &a->neg;
    if (ncells <= 0 || max_take <= 0)
        return;
    const int roll = b->cap - b->fixed;
    const int room = fixed ? b->fixed - b->nfixed : roll;
    int take = ncells < max_take ? ncells : max_take;
    take = take < room ? take : room;
    for (int i = 0; i < take; i++) {
        /* evenly spread: the i-th of `take` picks over the list */
        const int cell = cells[(int)(((long long)i * ncells) / take)];
        int row;
        if (fixed) {
            row = b->nfixed++;
        } else {
            row = b->fixed + b->next;
            b->next = (b->next + 1) % roll;
            b->nroll += b->nroll < roll;
        }
        float *d = b->v + (size_t)row * a->c;
        for (int ch = 0; ch < a->c; ch++)
            d[ch] = feat[(size_t)ch * n + cell];
    }
}

/* Scores of the gathered cells against a bank's rows in use, into sims (row stride ld). */
static int bank_scores(const vt_appear_bank *b, int c, int ncells, const float *gather, float *sims,
                       int ld) {
    if (b->nfixed)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ncells, b->nfixed, c, 1.0f, gather, c,
                    b->v, c, 0.0f, sims, ld);
    if (b->nroll)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ncells, b->nroll, c, 1.0f, gather, c,
                    b->v + (size_t)b->fixed * c, c, 0.0f, sims + b->nfixed, ld);
    return b->nfixed + b->nroll;
}

void vtm_appear_score(const vt_appear *a, const float *feat, int n, const int *cells, int ncells,
                      int topk, float temperature, float *gather, float *sims, float *out) {
    const int c = a->c;
    const int np = a->pos.nfixed + a->pos.nroll, nn = a->neg.nfixed + a->neg.nroll;
    if (np == 0 || nn == 0) {
        for (int i = 0; i < ncells; i++)
            out[i] = 1.0f;
        return;
    }
    for (int i = 0; i < ncells; i++)
        for (int ch = 0; ch < c; ch++)
            gather[(size_t)i * c + ch] = feat[(size_t)ch * n + cells[i]];
    /* sims [ncells][np + nn]: positives first */
    const int ld = np + nn;
    bank_scores(&a->pos, c, ncells, gather, sims, ld);
    bank_scores(&a->neg, c, ncells, gather, sims + np, ld);
    const float inv_t = 1.0f / temperature;
    enum { KMAX = 16 };
    const int k = topk < 1 ? 1 : topk > KMAX ? KMAX : topk;
    for (int i = 0; i < ncells; i++) {
        const float *s = sims + (size_t)i * ld;
        float bs[KMAX];
        int bp[KMAX], nb = 0;
        for (int j = 0; j < ld; j++) {
            const int positive = j < np;
            if (nb < k) {
                bs[nb] = s[j], bp[nb++] = positive;
                continue;
            }
            int worst = 0;
            for (int u = 1; u < k; u++)
                worst = bs[u] < bs[worst] ? u : worst;
            if (s[j] > bs[worst])
                bs[worst] = s[j], bp[worst] = positive;
        }
        float smax = -FLT_MAX;
        for (int u = 0; u < nb; u++)
            smax = bs[u] > smax ? bs[u] : smax;
        double sw = 0, sp = 0;
        for (int u = 0; u < nb; u++) {
            const double e = exp((double)(bs[u] - smax) * inv_t);
            sw += e;
            sp += bp[u] ? e : 0.0;
        }
        out[i] = sw > 0 ? (float)(sp / sw) : 1.0f;
    }
}
