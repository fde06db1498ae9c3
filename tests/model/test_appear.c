/*
 * Appearance banks and the nearest-neighbour object probability (model/appear.c) against
 * values computed by hand. Features are unit vectors in the plane of two axes e0 (the object)
 * and e1 (not the object): q(theta) = cos(theta) e0 + sin(theta) e1, so a cell's dot product
 * is cos(theta) with a positive row e0 and sin(theta) with a negative row e1, and the
 * probability over k matches with temperature T is the softmax share of the positives:
 *   all four rows (2 e0 + 2 e1) among the k = 4: p = 1 / (1 + exp((sin - cos) / T)).
 * Tolerance 1e-5: sgemm and the scores are float, the softmax is double.
 */
#include <math.h>
#include <stdlib.h>

#include "testmain.h"
#include "appear.h"

enum { C = 8, N = 40 };

static float feat[C * N];

static void set_cell(int j, double theta, int axis0, int axis1) {
    for (int ch = 0; ch < C; ch++)
        feat[ch * N + j] = 0.0f;
    feat[axis0 * N + j] = (float)cos(theta);
    feat[axis1 * N + j] = (float)sin(theta);
}

static float *new_appear(vt_appear *a) {
    float *store = malloc(vtm_appear_bytes(C));
    vtm_appear_init(a, C, store);
    return store;
}

static const double deg = 3.14159265358979323846 / 180.0;

/* Scores of cells 0..n-1 (scratch sized from the banks' capacities). */
static void score(const vt_appear *a, int n, int topk, float t, float *out) {
    static float gather[N * C], sims[N * (VT_APPEAR_POS + VT_APPEAR_NEG)];
    int cells[N];
    for (int i = 0; i < n; i++)
        cells[i] = i;
    vtm_appear_score(a, feat, N, cells, n, topk, t, gather, sims, out);
}

START_TEST(test_softmax_share) {
    vt_appear a;
    float *store = new_appear(&a);
    /* Banks from cells 30, 31 (e0) and 32, 33 (e1); the queries are cells 0..4. */
    set_cell(30, 0, 0, 1), set_cell(31, 0, 0, 1);
    set_cell(32, 90 * deg, 0, 1), set_cell(33, 90 * deg, 0, 1);
    const int pos[2] = {30, 31}, neg[2] = {32, 33};
    vtm_appear_add(&a, 1, feat, N, pos, 2, 1, 64);
    vtm_appear_add(&a, 0, feat, N, neg, 2, 1, 64);
    const double th[5] = {30, 10, 45, 60, 80};
    for (int i = 0; i < 5; i++)
        set_cell(i, th[i] * deg, 0, 1);
    float out[5];
    score(&a, 5, 4, 0.1f, out);
    /* 30 deg: 1 / (1 + exp((0.5 - 0.8660254) / 0.1)) = 0.9749193; 10 deg: sin - cos =
     * -0.8111595: 0.9997001; 45 deg: 0.5; 60 deg: 1 - 0.9749193 = 0.0250807; 80 deg:
     * 0.0002999. Near the positive direction > 0.5, near the negative < 0.5. */
    const double want[5] = {0.9749193, 0.9997001, 0.5, 0.0250807, 0.0002999};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(fabs(out[i] - want[i]) < 1e-5, "theta %g: %f want %f", th[i], out[i],
                      want[i]);
    ck_assert(out[0] > 0.5f && out[1] > 0.5f && out[3] < 0.5f && out[4] < 0.5f);
    free(store);
}
END_TEST

START_TEST(test_topk) {
    vt_appear a;
    float *store = new_appear(&a);
    /* 3 positive rows e0, 1 negative e1, k = 2. At 30 deg the two best are positives
     * (0.866 > 0.5): p = 1. At 60 deg they are the negative (0.866) and one positive (0.5):
     * p = 1 / (1 + exp(0.3660254 / 0.1)) = 0.0250807. */
    set_cell(30, 0, 0, 1), set_cell(31, 0, 0, 1), set_cell(32, 0, 0, 1);
    set_cell(33, 90 * deg, 0, 1);
    const int pos[3] = {30, 31, 32}, neg[1] = {33};
    vtm_appear_add(&a, 1, feat, N, pos, 3, 0, 64); /* rolling part this time */
    vtm_appear_add(&a, 0, feat, N, neg, 1, 1, 64);
    set_cell(0, 30 * deg, 0, 1);
    set_cell(1, 60 * deg, 0, 1);
    float out[2];
    score(&a, 2, 2, 0.1f, out);
    ck_assert_msg(fabs(out[0] - 1.0) < 1e-6, "30 deg: %f", out[0]);
    ck_assert_msg(fabs(out[1] - 0.0250807) < 1e-5, "60 deg: %f", out[1]);
    /* An empty negative bank: nothing to tell apart, every cell 1. */
    vtm_appear_reset(&a);
    vtm_appear_add(&a, 1, feat, N, pos, 3, 1, 64);
    score(&a, 2, 2, 0.1f, out);
    ck_assert(out[0] == 1.0f && out[1] == 1.0f); /* exact: the code writes 1.0f */
    free(store);
}
END_TEST

START_TEST(test_fixed_kept_rolling_wraps) {
    vt_appear a;
    float *store = new_appear(&a);
    /* Fixed positives: 3 cells of e0. Then 70 rolling positives, cell i = e2 scaled by i (not a
     * unit vector: only to tell the rows apart), added one by one: the rolling part (64 rows)
     * keeps the newest 64, rows fixed + (i % 64) for i = 6..69, and never touches the fixed. */
    for (int j = 0; j < 3; j++)
        set_cell(j, 0, 0, 1);
    const int fx[3] = {0, 1, 2};
    vtm_appear_add(&a, 1, feat, N, fx, 3, 1, 64);
    for (int i = 0; i < 70; i++) {
        for (int ch = 0; ch < C; ch++)
            feat[ch * N + 10] = ch == 2 ? (float)i : 0.0f;
        const int cell = 10;
        vtm_appear_add(&a, 1, feat, N, &cell, 1, 0, 16);
    }
    ck_assert_int_eq(a.pos.nfixed, 3);
    ck_assert_int_eq(a.pos.nroll, 64);
    ck_assert_int_eq(a.pos.next, 70 % 64);
    for (int r = 0; r < 3; r++) /* exact: copied, never computed */
        ck_assert(a.pos.v[r * C + 0] == 1.0f && a.pos.v[r * C + 2] == 0.0f);
    for (int i = 6; i < 70; i++)
        ck_assert_msg(a.pos.v[(a.pos.fixed + i % 64) * C + 2] == (float)i, "cell %d lost", i);
    /* The fixed rows still decide: one negative at 80 deg, query e0 (k = 4: the 3 fixed e0 rows
     * at dot 1 and the negative at cos 80 = 0.1736482 beat the rolling rows at dot 0):
     * p = 1 / (1 + exp((0.1736482 - 1) / 0.1) / 3) = 0.9999141. */
    const int ng = 20;
    set_cell(ng, 80 * deg, 0, 1);
    vtm_appear_add(&a, 0, feat, N, &ng, 1, 1, 64);
    set_cell(0, 0, 0, 1);
    float out[1];
    score(&a, 1, 4, 0.1f, out);
    ck_assert_msg(fabs(out[0] - 0.9999141) < 1e-5, "%f", out[0]);
    free(store);
}
END_TEST

START_TEST(test_take_spread_and_room) {
    vt_appear a;
    float *store = new_appear(&a);
    /* 10 cells, at most 5 taken: cells[i * 10 / 5] = list items 0, 2, 4, 6, 8. */
    int cells[10];
    for (int i = 0; i < 10; i++) {
        cells[i] = 39 - i;
        for (int ch = 0; ch < C; ch++)
            feat[ch * N + cells[i]] = ch == 0 ? (float)i : 0.0f;
    }
    vtm_appear_add(&a, 0, feat, N, cells, 10, 1, 5);
    ck_assert_int_eq(a.neg.nfixed, 5);
    for (int r = 0; r < 5; r++)
        ck_assert(a.neg.v[r * C] == (float)(2 * r));
    /* The fixed part has room for VT_APPEAR_NEG / 2 = 128 rows: 200 more fill it up to 128. */
    int many[200];
    for (int i = 0; i < 200; i++)
        many[i] = i % N;
    vtm_appear_add(&a, 0, feat, N, many, 200, 1, 200);
    ck_assert_int_eq(a.neg.nfixed, VT_APPEAR_NEG / 2);
    ck_assert_int_eq(a.neg.nroll, 0);
    ck_assert_int_eq(a.pos.nfixed + a.pos.nroll, 0);
    free(store);
}
END_TEST

int main(void) {
    return tm_main("appear", 0, test_softmax_share, test_topk, test_fixed_kept_rolling_wraps,
                   test_take_spread_and_room, NULL);
}
