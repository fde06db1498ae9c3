/*
 * lab.c - sRGB (D65) to CIE L*a*b*, the colour space both self-supervised objectives work in.
 *
 * The formulas are the CIE ones that OpenCV (float path) and scikit-image implement: sRGB
 * gamma expansion, the sRGB -> XYZ matrix, normalisation by the D65 white point, and the cube
 * root with its linear toe below (6/29)^3.
 */
#include <math.h>
#include <pthread.h>

#include "vt_model.h"

/* sRGB 8-bit code -> linear light, computed once. */
static float srgb_lin[256];
static pthread_once_t lut_once = PTHREAD_ONCE_INIT;

static void lut_init(void) {
    for (int i = 0; i < 256; i++) {
        double c = i / 255.0;
        srgb_lin[i] = (float)(c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4));
    }
}

/*
 * Cube root for t in (0.008856, ~1.1]: an exponent-thirding bit trick (about 5% off), then two
 * Halley steps (cubic convergence: 5e-2 -> 1e-4 -> 1e-12, so float rounding is what is left).
 * libm's cbrtf was a sixth of the `lab` encoder's time.
 */
static inline float cbrt_pos(float t) {
    union {
        float f;
        uint32_t i;
    } u = {t};
    u.i = u.i / 3 + 709921077u;
    float y = u.f;
    for (int k = 0; k < 2; k++) {
        float y3 = y * y * y;
        y = y * (y3 + 2.0f * t) / (2.0f * y3 + t);
    }
    return y;
}

static inline float lab_f(float t) {
    /* (6/29)^3 and the linear toe's slope 1/(3 (6/29)^2) = 7.787. */
    return t > 0.008856f ? cbrt_pos(t) : 7.787037f * t + 16.0f / 116.0f;
}

void vt_lab_from_rgb(const vt_image *img, float *out) {
    pthread_once(&lut_once, lut_init);
    const int w = img->w, h = img->h;
    const size_t plane = (size_t)w * h;
    float *L = out, *A = out + plane, *B = out + 2 * plane;
    /* D65 reference white (X, Z; Y = 1). */
    const float xn = 1.0f / 0.950456f, zn = 1.0f / 1.088754f;
    for (int y = 0; y < h; y++) {
        const uint8_t *p = img->rgb + (size_t)y * img->linesize;
        for (int x = 0; x < w; x++, p += 3) {
            float r = srgb_lin[p[0]], g = srgb_lin[p[1]], b = srgb_lin[p[2]];
            float X = (0.412453f * r + 0.357580f * g + 0.180423f * b) * xn;
            float Y = 0.212671f * r + 0.715160f * g + 0.072169f * b;
            float Z = (0.019334f * r + 0.119193f * g + 0.950227f * b) * zn;
            float fx = lab_f(X), fy = lab_f(Y), fz = lab_f(Z);
            size_t i = (size_t)y * w + x;
            L[i] = 116.0f * fy - 16.0f;
            A[i] = 500.0f * (fx - fy);
            B[i] = 200.0f * (fy - fz);
        }
    }
}
