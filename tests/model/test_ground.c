/*
 * The ground plane of a fixed camera (model/ground.c) against lines computed by hand.
 *
 * The line of every case: height = 0.5 (bottom - 100), i.e. a = 0.5, y0 = 100, on a frame of
 * 480 rows. Boxes (x, y, w, h) with bottoms 200, 300, 400 and heights 50, 100, 150 lie on it
 * exactly; the least-squares fit in double gives a and y0 to rounding (1e-9).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "ground.h"
#include "testmain.h"

#define NEAR(got, want, tol)                                                                       \
    ck_assert_msg(fabs((double)(got) - (want)) <= (tol), "%s = %.9f, want %.9f (tol %g)", #got,    \
                  (double)(got), (double)(want), (double)(tol))

/* A box of the given bottom and height (width a third of the height). */
static void add(vt_ground *g, double bottom, double height) {
    const float box[4] = {10, (float)(bottom - height), (float)(height / 3), (float)height};
    vtm_ground_add(g, box, 480);
}

START_TEST(test_exact_line) {
    vt_ground g;
    vtm_ground_reset(&g);
    add(&g, 200, 50);
    add(&g, 300, 100);
    ck_assert_int_eq(g.ok, 0); /* two boxes are not enough */
    const float probe[4] = {0, 250, 20, 100};
    NEAR(vtm_ground_ratio(&g, probe), 0, 0);
    add(&g, 400, 150);
    ck_assert_int_eq(g.ok, 1);
    NEAR(g.a, 0.5, 1e-9);
    NEAR(g.y0, 100, 1e-9);
    /* bottom 350: the line says 125, the box is 100 tall */
    NEAR(vtm_ground_ratio(&g, probe), 0.8, 1e-9);
    /* ratio 1, centre at 250: h = 0.5 (250 + h/2 - 100) -> h = 75 / 0.75 = 100 */
    NEAR(vtm_ground_height(&g, 1.0, 250), 100, 1e-9);
    /* ratio 0.8: ka = 0.4, h = 0.4 * 150 / 0.8 = 75 */
    NEAR(vtm_ground_height(&g, 0.8, 250), 75, 1e-9);
    /* no height above the horizon, for ratio 0, or where ka >= 1.5 */
    NEAR(vtm_ground_height(&g, 1.0, 90), 0, 0);
    NEAR(vtm_ground_height(&g, 0.0, 250), 0, 0);
    NEAR(vtm_ground_height(&g, 3.0, 250), 0, 0);
}
END_TEST

/* Three boxes (bottom, height) from an empty store: is the line trusted? */
static int trusted(vt_ground *g, const double bh[3][2]) {
    vtm_ground_reset(g);
    for (int i = 0; i < 3; i++)
        add(g, bh[i][0], bh[i][1]);
    return g->ok;
}

START_TEST(test_untrusted_lines) {
    vt_ground g;
    /* bottoms within 20 rows of 480: a tenth of the frame (48) is needed */
    static const double close[3][2] = {{400, 150}, {410, 155}, {420, 160}};
    /* smaller further down: not a ground seen from above */
    static const double falling[3][2] = {{200, 150}, {300, 100}, {400, 50}};
    /* heights 50, 150, 100: a = 5000 / 20000 = 0.25, c = 100 - 0.25 * 300 = 25, residuals -25,
     * 50, -25: RMS sqrt(1250) = 35.4 > 15 % of the mean height (15) */
    static const double scattered[3][2] = {{200, 50}, {300, 150}, {400, 100}};
    ck_assert_int_eq(trusted(&g, close), 0);
    ck_assert_int_eq(trusted(&g, falling), 0);
    ck_assert_int_eq(trusted(&g, scattered), 0);
    NEAR(vtm_ground_height(&g, 1.0, 250), 0, 0);
}
END_TEST

START_TEST(test_ignored_boxes) {
    vt_ground g;
    vtm_ground_reset(&g);
    add(&g, 200, 50);
    add(&g, 300, 100);
    /* cut by the frame's bottom edge, by its top edge, or lying (wider than tall) */
    add(&g, 480, 190);
    const float top[4] = {10, 0, 10, 60};
    vtm_ground_add(&g, top, 480);
    const float lying[4] = {10, 250, 300, 150};
    vtm_ground_add(&g, lying, 480);
    ck_assert_int_eq(g.n, 2);
    ck_assert_int_eq(g.ok, 0);
}
END_TEST

START_TEST(test_oldest_replaced) {
    vt_ground g;
    vtm_ground_reset(&g);
    /* a full store on another line (height = 0.25 (bottom - 40)), then a full store on ours */
    for (int i = 0; i < VT_GROUND_MAX; i++)
        add(&g, 200 + 3 * i, 0.25 * (200 + 3 * i - 40));
    ck_assert_int_eq(g.ok, 1);
    NEAR(g.a, 0.25, 1e-9);
    for (int i = 0; i < VT_GROUND_MAX; i++)
        add(&g, 200 + 3 * i, 0.5 * (200 + 3 * i - 100));
    ck_assert_int_eq(g.n, VT_GROUND_MAX);
    NEAR(g.a, 0.5, 1e-9);
    NEAR(g.y0, 100, 1e-7);
}
END_TEST

int main(void) {
    return tm_main("ground", 0, test_exact_line, test_untrusted_lines, test_ignored_boxes,
                   test_oldest_replaced, NULL);
}
