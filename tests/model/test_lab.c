/*
 * Lab conversion against published CIE L*a*b* values of sRGB colours (D65), as scikit-image's
 * rgb2lab and OpenCV's float cvtColor give them. Tolerance 0.05: the references are quoted to
 * 3-4 decimals and OpenCV/skimage differ in the white point's 4th digit.
 */
#include <math.h>
#include <stdlib.h>

#include "testmain.h"
#include "vt_model.h"

static const struct {
    uint8_t rgb[3];
    float lab[3];
} cases[] = {
    {{255, 255, 255}, {100.0f, 0.0f, 0.0f}},
    {{0, 0, 0}, {0.0f, 0.0f, 0.0f}},
    {{255, 0, 0}, {53.2408f, 80.0925f, 67.2032f}},
    {{0, 255, 0}, {87.7347f, -86.1827f, 83.1793f}},
    {{0, 0, 255}, {32.2970f, 79.1875f, -107.8602f}},
    {{128, 128, 128}, {53.5850f, 0.0f, 0.0f}},
    {{255, 255, 0}, {97.1393f, -21.5537f, 94.4780f}},
    {{1, 1, 1}, {0.2742f, 0.0f, 0.0f}}, /* on the linear toe of f() */
};

START_TEST(test_lab_known_colours) {
    const int n = sizeof cases / sizeof cases[0];
    /* One row of n pixels, with row padding to exercise linesize. */
    uint8_t row[3 * 16 + 5];
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            row[3 * i + c] = cases[i].rgb[c];
    vt_image img = {.w = n, .h = 1, .linesize = (int)sizeof row, .rgb = row};
    float out[3 * 16];
    vt_lab_from_rgb(&img, out);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            ck_assert_msg(fabsf(out[c * n + i] - cases[i].lab[c]) < 0.05f,
                          "colour %d channel %d: got %f want %f", i, c, out[c * n + i],
                          cases[i].lab[c]);
}
END_TEST

START_TEST(test_lab_linesize) {
    /* Two rows with padding: the second row must be read from linesize, not 3*w. */
    uint8_t buf[2 * 8] = {0};
    buf[8 + 0] = 255, buf[8 + 1] = 255, buf[8 + 2] = 255; /* row 1, pixel 0: white */
    vt_image img = {.w = 2, .h = 2, .linesize = 8, .rgb = buf};
    float out[3 * 4];
    vt_lab_from_rgb(&img, out);
    ck_assert_float_eq_tol(out[0], 0.0f, 0.01f);
    ck_assert_float_eq_tol(out[2], 100.0f, 0.01f);
}
END_TEST

int main(void) {
    return tm_main("lab", 0, test_lab_known_colours, test_lab_linesize, NULL);
}
