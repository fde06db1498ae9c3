/*
 * davis_naive.h - the DAVIS boundary definitions written out literally, pixel by pixel, to check
 * cli/davis.c's word-at-a-time and row-merge versions against (test_davis.c, fuzz_davis.c).
 */
#ifndef VT_TESTS_DAVIS_NAIVE_H
#define VT_TESTS_DAVIS_NAIVE_H

#include <stdint.h>

/* The official _seg2bmap of the 0/1 mask m: a pixel differs from its right, lower or
 * lower-right neighbour (missing neighbours are 0); in the last row only the right one counts,
 * in the last column only the lower one; the bottom-right pixel never is. Returns the count. */
static inline long naive_seg2bmap(const uint8_t *m, int w, int h, uint8_t *b) {
    long n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int s = m[y * w + x] != 0;
            int right = x + 1 < w && m[y * w + x + 1];
            int down = y + 1 < h && m[(y + 1) * w + x];
            int diag = x + 1 < w && y + 1 < h && m[(y + 1) * w + x + 1];
            int v = (s ^ right) | (s ^ down) | (s ^ diag);
            if (y == h - 1)
                v = s ^ right;
            if (x == w - 1)
                v = s ^ down;
            if (x == w - 1 && y == h - 1)
                v = 0;
            b[y * w + x] = (uint8_t)v;
            n += v;
        }
    return n;
}

/* How many set pixels of `pts` have a set pixel of `other` within the disk of radius r
 * (dx^2 + dy^2 <= r^2): dilate with every disk offset, then intersect. */
static inline long naive_matches(const uint8_t *pts, const uint8_t *other, int w, int h, int r) {
    long n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (!pts[y * w + x])
                continue;
            int hit = 0;
            for (int dy = -r; dy <= r && !hit; dy++)
                for (int dx = -r; dx <= r && !hit; dx++) {
                    int xx = x + dx, yy = y + dy;
                    hit = dx * dx + dy * dy <= r * r && xx >= 0 && yy >= 0 && xx < w && yy < h &&
                          other[yy * w + xx];
                }
            n += hit;
        }
    return n;
}

#endif
