/*
 * conv.c - 2-D convolution on OpenBLAS: tiled im2col + sgemm (any geometry), a direct sgemm for
 * 1x1 stride-1 convolutions, and Winograd F(2x2, 3x3) and F(4x4, 3x3) for 3x3 stride-1 ones.
 *
 * Why several paths: im2col copies every input pixel k*k times, which for a 3x3 layer costs as
 * much memory traffic as the GEMM itself once the column matrix leaves the cache; tiling the
 * output rows keeps the column block in L2. A 1x1 stride-1 convolution is already a GEMM on the
 * NCHW input. Winograd computes each m x m output tile from an (m+2) x (m+2) input tile as
 * (m+2)^2 independent GEMMs (cout x cin times cin x tiles) in the transformed domain: F(2,3)
 * does 16 multiplies per 4 outputs and channel pair, F(4,3) 36 per 16, against 9 per output
 * directly (2.25x and 4x fewer). It is exact in real arithmetic; in float32 the whole reference
 * networks stay within about 1e-6 (F(2,3)) and 3e-6 (F(4,3)) of the output's magnitude of
 * PyTorch's direct convolution, far inside the 1e-4 tolerance. Models run F(4,3)
 * (faster on every layer measured, bench/model.md); F(2,3) stays for callers that want the
 * smaller error (the trainer's backward passes).
 *
 * The transforms are additions on strided data; they have AVX-512 versions (16 tiles at once)
 * chosen at run time, with portable loops for other CPUs and for the row tails.
 */
#include <cblas.h>
#include <errno.h>
#include <string.h>

#include "nn.h"

/* Column-block and Winograd tile-block sizes (floats / tiles): chosen by bench/ on this
 * machine's 2 MiB L2 so the working set of one GEMM stays in cache. */
#define IM2COL_BLOCK_FLOATS (1u << 19)
#define IM2COL_MIN_COLS     256
#define ONE_BY_ONE_COLS     2048
#define WINO_BLOCK_FLOATS   (1u << 20)
#define WINO_MIN_TILES      128
/* Readable floats past the end of each F(4,3) transform row (the SIMD loads overrun). */
#define WINO4_MARGIN 80

void vtm_conv_out_size(const vt_conv *cv, int h, int w, int *oh, int *ow) {
    int ext = cv->dil * (cv->k - 1) + 1;
    *oh = (h + 2 * cv->pad - ext) / cv->stride + 1;
    *ow = (w + 2 * cv->pad - ext) / cv->stride + 1;
    if (h + 2 * cv->pad < ext)
        *oh = 0;
    if (w + 2 * cv->pad < ext)
        *ow = 0;
}

int vtm_wino_fits(const vt_conv *cv) {
    return cv->k == 3 && cv->stride == 1 && cv->dil == 1;
}

vt_conv_algo vtm_conv_pick(const vt_conv *cv) {
    if (cv->k == 1 && cv->stride == 1 && cv->pad == 0)
        return VT_CONV_1X1;
    if (vtm_wino_fits(cv) && cv->wino4)
        return VT_CONV_WINO4;
    if (vtm_wino_fits(cv) && cv->wino)
        return VT_CONV_WINO;
    return VT_CONV_IM2COL;
}

/* How many rows of `len` units (columns, tiles) one block holds: as many as `budget` floats
 * allow at `per_unit` floats a unit, at least `min_units` units, at least one row, at most
 * `nrows`. */
static int block_rows(size_t budget, size_t per_unit, size_t min_units, int len, int nrows) {
    size_t units = budget / per_unit;
    if (units < min_units)
        units = min_units;
    int rows = (int)(units / (size_t)len);
    if (rows < 1)
        rows = 1;
    return rows < nrows ? rows : nrows;
}

int vtm_conv_im2col_rows(const vt_conv *cv, int oh, int ow) {
    return block_rows(IM2COL_BLOCK_FLOATS, (size_t)cv->cin * cv->k * cv->k, IM2COL_MIN_COLS, ow,
                      oh);
}

static int wino_tile_rows(const vt_conv *cv, int tw, int th, int comps) {
    return block_rows(WINO_BLOCK_FLOATS, comps * (size_t)(cv->cin + cv->cout), WINO_MIN_TILES, tw,
                      th);
}

void vtm_im2col(const vt_conv *cv, const float *x, int h, int w, int oy0, int oy1, float *col) {
    int oh, ow;
    vtm_conv_out_size(cv, h, w, &oh, &ow);
    const int k = cv->k, s = cv->stride, p = cv->pad, d = cv->dil;
    const size_t ncol = (size_t)(oy1 - oy0) * ow;
    for (int ci = 0; ci < cv->cin; ci++) {
        const float *xc = x + (size_t)ci * h * w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(ci * k + ky) * k + kx) * ncol;
                /* ox range whose source column is inside the image: 0 <= ox*s - p + kx*d < w */
                int off = kx * d - p, lo, hi;
                vtm_conv_inside(off, s, w, ow, &lo, &hi);
                for (int oy = oy0; oy < oy1; oy++, row += ow) {
                    int iy = vtm_pad_index(oy * s - p + ky * d, h, cv->pad_mode);
                    if (iy < 0) {
                        memset(row, 0, sizeof(float) * ow);
                        continue;
                    }
                    const float *xr = xc + (size_t)iy * w;
                    for (int ox = 0; ox < lo; ox++) {
                        int ix = vtm_pad_index(ox * s + off, w, cv->pad_mode);
                        row[ox] = ix < 0 ? 0.0f : xr[ix];
                    }
                    if (s == 1) {
                        if (hi > lo)
                            memcpy(row + lo, xr + lo + off, sizeof(float) * (hi - lo));
                    } else if (s == 2) { /* constant stride: the compiler vectorises it */
                        for (int ox = lo; ox < hi; ox++)
                            row[ox] = xr[2 * ox + off];
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            row[ox] = xr[ox * s + off];
                    }
                    for (int ox = hi; ox < ow; ox++) {
                        int ix = vtm_pad_index(ox * s + off, w, cv->pad_mode);
                        row[ox] = ix < 0 ? 0.0f : xr[ix];
                    }
                }
            }
        }
    }
}

void vtm_col2im(const vt_conv *cv, const float *col, int h, int w, float *x) {
    int oh, ow;
    vtm_conv_out_size(cv, h, w, &oh, &ow);
    const int k = cv->k, s = cv->stride, p = cv->pad, d = cv->dil;
    const size_t ncol = (size_t)oh * ow;
    for (int ci = 0; ci < cv->cin; ci++) {
        float *xc = x + (size_t)ci * h * w;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const float *row = col + ((size_t)(ci * k + ky) * k + kx) * ncol;
                for (int oy = 0; oy < oh; oy++, row += ow) {
                    int iy = vtm_pad_index(oy * s - p + ky * d, h, cv->pad_mode);
                    if (iy < 0)
                        continue;
                    float *xr = xc + (size_t)iy * w;
                    for (int ox = 0; ox < ow; ox++) {
                        int ix = vtm_pad_index(ox * s - p + kx * d, w, cv->pad_mode);
                        if (ix >= 0)
                            xr[ix] += row[ox];
                    }
                }
            }
    }
}

/* y[o][i] = act(y[o][i] + b[o] + res[o][i]) on one block of columns [c0, c0 + n) of planes of
 * `plane` floats. */
static void epilogue(const vt_conv *cv, float *y, const float *res, size_t plane, size_t c0,
                     size_t n) {
    for (int o = 0; o < cv->cout; o++) {
        float *yo = y + (size_t)o * plane + c0;
        const float *ro = res ? res + (size_t)o * plane + c0 : NULL;
        const float bo = cv->b ? cv->b[o] : 0.0f;
        if (ro)
            for (size_t i = 0; i < n; i++)
                yo[i] += bo + ro[i];
        else if (bo != 0.0f)
            for (size_t i = 0; i < n; i++)
                yo[i] += bo;
        if (cv->relu)
            for (size_t i = 0; i < n; i++)
                yo[i] = yo[i] > 0.0f ? yo[i] : 0.0f;
    }
}

static void conv_im2col(const vt_conv *cv, const float *x, int h, int w, const float *res, float *y,
                        float *col) {
    int oh, ow;
    vtm_conv_out_size(cv, h, w, &oh, &ow);
    const int kk = cv->cin * cv->k * cv->k;
    const size_t plane = (size_t)oh * ow;
    const int rows = vtm_conv_im2col_rows(cv, oh, ow);
    for (int oy0 = 0; oy0 < oh; oy0 += rows) {
        int oy1 = oy0 + rows < oh ? oy0 + rows : oh;
        int n = (oy1 - oy0) * ow;
        vtm_im2col(cv, x, h, w, oy0, oy1, col);
        /* y[:, block] (cout x n, ld plane) = W (cout x kk) * col (kk x n) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cv->cout, n, kk, 1.0f, cv->w, kk,
                    col, n, 0.0f, y + (size_t)oy0 * ow, (int)plane);
        epilogue(cv, y, res, plane, (size_t)oy0 * ow, (size_t)n);
    }
}

static void conv_1x1(const vt_conv *cv, const float *x, int h, int w, const float *res, float *y) {
    const size_t plane = (size_t)h * w;
    for (size_t c0 = 0; c0 < plane; c0 += ONE_BY_ONE_COLS) {
        size_t n = plane - c0 < ONE_BY_ONE_COLS ? plane - c0 : ONE_BY_ONE_COLS;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cv->cout, (int)n, cv->cin, 1.0f,
                    cv->w, cv->cin, x + c0, (int)plane, 0.0f, y + c0, (int)plane);
        epilogue(cv, y, res, plane, c0, n);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Winograd F(2x2, 3x3)
 *   Y = A^T [(G g G^T) . (B^T d B)] A, with
 *   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  A^T = [1 1 1 0; 0 1 -1 -1]
 * ------------------------------------------------------------------------------------------- */

size_t vtm_wino_size(int cin, int cout) {
    return 16 * (size_t)cin * cout;
}

void vtm_wino_weights(const float *w, int cin, int cout, float *u) {
    const size_t cc = (size_t)cin * cout;
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++) {
            const float *g = w + ((size_t)o * cin + i) * 9;
            float t[4][3]; /* G g */
            for (int c = 0; c < 3; c++) {
                t[0][c] = g[c];
                t[1][c] = 0.5f * (g[c] + g[3 + c] + g[6 + c]);
                t[2][c] = 0.5f * (g[c] - g[3 + c] + g[6 + c]);
                t[3][c] = g[6 + c];
            }
            for (int r = 0; r < 4; r++) { /* (G g) G^T */
                float v[4] = {t[r][0], 0.5f * (t[r][0] + t[r][1] + t[r][2]),
                              0.5f * (t[r][0] - t[r][1] + t[r][2]), t[r][2]};
                for (int c = 0; c < 4; c++)
                    u[(size_t)(r * 4 + c) * cc + (size_t)o * cin + i] = v[c];
            }
        }
}

/* Fill one padded input row: dst[j] = x_row(j - pad) for j in [0, wp), zero or reflected
 * outside; iy < 0 means a zero row. */
static void wino_row(const float *xc, int h, int w, int iy, int pad, vt_pad_mode mode, int wp,
                     float *dst) {
    int sy = vtm_pad_index(iy, h, mode);
    if (sy < 0) {
        memset(dst, 0, sizeof(float) * wp);
        return;
    }
    const float *src = xc + (size_t)sy * w;
    for (int j = 0; j < wp; j++) {
        int ix = j - pad;
        if ((unsigned)ix < (unsigned)w) {
            int n = w - ix < wp - j ? w - ix : wp - j;
            memcpy(dst + j, src + ix, sizeof(float) * n);
            j += n - 1;
            continue;
        }
        int sx = vtm_pad_index(ix, w, mode);
        dst[j] = sx < 0 ? 0.0f : src[sx];
    }
}

/* Input transform of tiles [tx0, tx1) of one tile row: r0..r3 are the 4 padded input rows
 * (tile tx starts at column 2*tx); component xi of tile tx goes to v[xi * xs + tx]. */
static void wino_in_row(const float *r0, const float *r1, const float *r2, const float *r3, int tx0,
                        int tx1, float *v, size_t xs) {
    for (int tx = tx0; tx < tx1; tx++) {
        const int j = 2 * tx;
        float t[4][4];
        for (int c = 0; c < 4; c++) { /* B^T d, down the columns */
            float d0 = r0[j + c], d1 = r1[j + c], d2 = r2[j + c], d3 = r3[j + c];
            t[0][c] = d0 - d2;
            t[1][c] = d1 + d2;
            t[2][c] = d2 - d1;
            t[3][c] = d1 - d3;
        }
        for (int r = 0; r < 4; r++) { /* (B^T d) B, along the rows */
            v[(size_t)(r * 4 + 0) * xs + tx] = t[r][0] - t[r][2];
            v[(size_t)(r * 4 + 1) * xs + tx] = t[r][1] + t[r][2];
            v[(size_t)(r * 4 + 2) * xs + tx] = t[r][2] - t[r][1];
            v[(size_t)(r * 4 + 3) * xs + tx] = t[r][1] - t[r][3];
        }
    }
}

/* Output transform of tiles [tx0, tx1) of one tile row: m[xi * xs + tx] -> the two output rows
 * o0, o1 at columns 2*tx, 2*tx + 1, plus bias. */
static void wino_out_row(const float *m, size_t xs, int tx0, int tx1, float bias, float *o0,
                         float *o1) {
    for (int tx = tx0; tx < tx1; tx++) {
        float s[4][2];
        for (int r = 0; r < 4; r++) {
            float a0 = m[(size_t)(r * 4 + 0) * xs + tx], a1 = m[(size_t)(r * 4 + 1) * xs + tx];
            float a2 = m[(size_t)(r * 4 + 2) * xs + tx], a3 = m[(size_t)(r * 4 + 3) * xs + tx];
            s[r][0] = a0 + a1 + a2;
            s[r][1] = a1 - a2 - a3;
        }
        for (int c = 0; c < 2; c++) {
            o0[2 * tx + c] = s[0][c] + s[1][c] + s[2][c] + bias;
            o1[2 * tx + c] = s[1][c] - s[2][c] - s[3][c] + bias;
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/*
 * AVX-512 versions, 16 tiles per step (the portable build targets baseline x86-64, so these are
 * compiled for AVX-512 separately and chosen at run time). The transforms are pure adds; done
 * one tile at a time they cost as much as the 16 GEMMs on 64-channel layers.
 */
#define WINO_SIMD 1
/* Next start of a 16-tile vector: full steps, then one last vector overlapping the previous
 * one so a row of tw >= 16 tiles needs no scalar tail (recomputed tiles get the same values). */
static inline int next16(int tx, int tw) {
    if (tx + 16 >= tw)
        return tw;
    return tx + 32 <= tw ? tx + 16 : tw - 16;
}
__attribute__((target("avx512f"))) static int wino_in_row16(const float *r0, const float *r1,
                                                            const float *r2, const float *r3,
                                                            int tw, float *v, size_t xs) {
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const float *rows[4] = {r0, r1, r2, r3};
    if (tw < 16)
        return 0;
    int tx = 0;
    /* Columns 2tx .. 2tx + 33 are read: inside the padded row while tx + 16 <= tw. */
    for (; tx < tw; tx = next16(tx, tw)) {
        __m512 d[4][4];
        for (int r = 0; r < 4; r++) {
            const float *p = rows[r] + 2 * tx;
            __m512 a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
            __m512 a2 = _mm512_loadu_ps(p + 2), b2 = _mm512_loadu_ps(p + 18);
            d[r][0] = _mm512_permutex2var_ps(a, ev, b);
            d[r][1] = _mm512_permutex2var_ps(a, od, b);
            d[r][2] = _mm512_permutex2var_ps(a2, ev, b2);
            d[r][3] = _mm512_permutex2var_ps(a2, od, b2);
        }
        __m512 t[4][4];
        for (int c = 0; c < 4; c++) {
            t[0][c] = _mm512_sub_ps(d[0][c], d[2][c]);
            t[1][c] = _mm512_add_ps(d[1][c], d[2][c]);
            t[2][c] = _mm512_sub_ps(d[2][c], d[1][c]);
            t[3][c] = _mm512_sub_ps(d[1][c], d[3][c]);
        }
        for (int r = 0; r < 4; r++) {
            _mm512_storeu_ps(v + (size_t)(r * 4 + 0) * xs + tx, _mm512_sub_ps(t[r][0], t[r][2]));
            _mm512_storeu_ps(v + (size_t)(r * 4 + 1) * xs + tx, _mm512_add_ps(t[r][1], t[r][2]));
            _mm512_storeu_ps(v + (size_t)(r * 4 + 2) * xs + tx, _mm512_sub_ps(t[r][2], t[r][1]));
            _mm512_storeu_ps(v + (size_t)(r * 4 + 3) * xs + tx, _mm512_sub_ps(t[r][1], t[r][3]));
        }
    }
    return tx;
}

__attribute__((target("avx512f"))) static int wino_out_row16(const float *m, size_t xs, int tw,
                                                             float bias, float *o0, float *o1) {
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi =
        _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const __m512 b = _mm512_set1_ps(bias);
    if (tw < 16)
        return 0;
    int tx = 0;
    for (; tx < tw; tx = next16(tx, tw)) {
        __m512 s[4][2];
        for (int r = 0; r < 4; r++) {
            __m512 a0 = _mm512_loadu_ps(m + (size_t)(r * 4 + 0) * xs + tx);
            __m512 a1 = _mm512_loadu_ps(m + (size_t)(r * 4 + 1) * xs + tx);
            __m512 a2 = _mm512_loadu_ps(m + (size_t)(r * 4 + 2) * xs + tx);
            __m512 a3 = _mm512_loadu_ps(m + (size_t)(r * 4 + 3) * xs + tx);
            s[r][0] = _mm512_add_ps(_mm512_add_ps(a0, a1), a2);
            s[r][1] = _mm512_sub_ps(_mm512_sub_ps(a1, a2), a3);
        }
        __m512 y[2][2];
        for (int c = 0; c < 2; c++) {
            y[0][c] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[0][c], s[1][c]), s[2][c]), b);
            y[1][c] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[1][c], s[2][c]), s[3][c]), b);
        }
        float *out[2] = {o0, o1};
        for (int r = 0; r < 2; r++) { /* interleave columns 0 and 1 of the 16 tiles */
            _mm512_storeu_ps(out[r] + 2 * tx, _mm512_permutex2var_ps(y[r][0], lo, y[r][1]));
            _mm512_storeu_ps(out[r] + 2 * tx + 16, _mm512_permutex2var_ps(y[r][0], hi, y[r][1]));
        }
    }
    return tx;
}

static int have_avx512(void) {
    return __builtin_cpu_supports("avx512f");
}
#endif

/* The batched products of a Winograd block: M[xi] (cout x nt) = U[xi] (cout x cin) * V[xi]
 * (cin x nt) for each of the n transform components xi (16 for F(2,3), 36 for F(4,3)). */
static void wino_gemms(const float *u, int n, int cin, int cout, int nt, const float *V, float *M) {
    const size_t cc = (size_t)cin * cout;
    for (int xi = 0; xi < n; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout, nt, cin, 1.0f, u + xi * cc,
                    cin, V + (size_t)xi * cin * nt, nt, 0.0f, M + (size_t)xi * cout * nt, nt);
}

/* dst = act(src + res) for one output row (res may be NULL). */
static void store_row(const float *src, const float *rs, int relu, int n, float *dst) {
    if (rs && relu)
        for (int i = 0; i < n; i++) {
            float v = src[i] + rs[i];
            dst[i] = v > 0.0f ? v : 0.0f;
        }
    else if (rs)
        for (int i = 0; i < n; i++)
            dst[i] = src[i] + rs[i];
    else if (relu)
        for (int i = 0; i < n; i++)
            dst[i] = src[i] > 0.0f ? src[i] : 0.0f;
    else
        memcpy(dst, src, sizeof(float) * n);
}

/* The `rows` output rows of one row of tiles (ty) of channel o, from O[r], into y (oh x ow
 * planes) with the residual and ReLU; the rows past the image's bottom are dropped. */
static void store_tile_rows(const vt_conv *cv, float *const *O, int rows, int ty, int o, int oh,
                            int ow, const float *res, float *y) {
    const size_t plane = (size_t)oh * ow;
    for (int r = 0; r < rows; r++) {
        const int oy = rows * ty + r;
        if (oy >= oh)
            break;
        const size_t at = (size_t)o * plane + (size_t)oy * ow;
        store_row(O[r], res ? res + at : NULL, cv->relu, ow, y + at);
    }
}

/* The F(2,3) steps of one tile row, for the driver below (conv_wino_run). */
static void wino2_in_rows(float *const *R, float *const *T, int wp, int tw, float *v, size_t xs,
                          int simd) {
    (void)T, (void)wp, (void)simd;
    int done = 0;
#ifdef WINO_SIMD
    if (simd)
        done = wino_in_row16(R[0], R[1], R[2], R[3], tw, v, xs);
#endif
    wino_in_row(R[0], R[1], R[2], R[3], done, tw, v, xs);
}

static void wino2_out_rows(const float *m, size_t xs, int tw, float bias, float *const *O,
                           int simd) {
    (void)simd;
    int done = 0;
#ifdef WINO_SIMD
    if (simd)
        done = wino_out_row16(m, xs, tw, bias, O[0], O[1]);
#endif
    wino_out_row(m, xs, done, tw, bias, O[0], O[1]);
}

/* ---------------------------------------------------------------------------------------------
 * Winograd F(4x4, 3x3) (Lavin & Gray 2016): 6x6 input tiles, 4x4 output tiles, 36 GEMMs.
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
 *          0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * 36 multiplies per 16 outputs (2.25 per output against 9 direct and 4 for F(2,3)); the
 * larger transform constants cost about one more decimal digit of float32 accuracy than F(2,3),
 * still far inside the reference tolerance (tests/reference).
 * ------------------------------------------------------------------------------------------- */

size_t vtm_wino4_size(int cin, int cout) {
    return 36 * (size_t)cin * cout;
}

void vtm_wino4_weights(const float *w, int cin, int cout, float *u) {
    const size_t cc = (size_t)cin * cout;
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++) {
            const float *g = w + ((size_t)o * cin + i) * 9;
            double t[6][3]; /* G g, in double: the 1/6 and 1/24 factors round once at the end */
            for (int c = 0; c < 3; c++) {
                double g0 = g[c], g1 = g[3 + c], g2 = g[6 + c];
                t[0][c] = g0 / 4;
                t[1][c] = -(g0 + g1 + g2) / 6;
                t[2][c] = -(g0 - g1 + g2) / 6;
                t[3][c] = g0 / 24 + g1 / 12 + g2 / 6;
                t[4][c] = g0 / 24 - g1 / 12 + g2 / 6;
                t[5][c] = g2;
            }
            for (int r = 0; r < 6; r++) { /* (G g) G^T */
                double g0 = t[r][0], g1 = t[r][1], g2 = t[r][2];
                double v[6] = {g0 / 4,
                               -(g0 + g1 + g2) / 6,
                               -(g0 - g1 + g2) / 6,
                               g0 / 24 + g1 / 12 + g2 / 6,
                               g0 / 24 - g1 / 12 + g2 / 6,
                               g2};
                for (int c = 0; c < 6; c++)
                    u[(size_t)(r * 6 + c) * cc + (size_t)o * cin + i] = (float)v[c];
            }
        }
}

/* t = B^T d for 6 values (rows or columns). */
static inline void bt6(const float d[6], float t[6]) {
    t[0] = 4 * d[0] - 5 * d[2] + d[4];
    t[1] = -4 * (d[1] + d[2]) + d[3] + d[4];
    t[2] = 4 * (d[1] - d[2]) - d[3] + d[4];
    t[3] = -2 * (d[1] - d[3]) - d[2] + d[4];
    t[4] = 2 * (d[1] - d[3]) - d[2] + d[4];
    t[5] = 4 * d[1] - 5 * d[3] + d[5];
}

/* y = A^T a for 6 values. */
static inline void at6(const float a[6], float y[4]) {
    float p = a[1] + a[2], m = a[1] - a[2], p2 = a[3] + a[4], m2 = a[3] - a[4];
    y[0] = a[0] + p + p2;
    y[1] = m + 2 * m2;
    y[2] = p + 4 * p2;
    y[3] = m + 8 * m2 + a[5];
}

/* Vertical half of the input transform on whole rows: T[r][j] = (B^T (R0..R5)[., j])[r]. */
static void wino4_vert(float *const R[6], float *const T[6], int wp) {
    for (int j = 0; j < wp; j++) {
        float d0 = R[0][j], d1 = R[1][j], d2 = R[2][j], d3 = R[3][j], d4 = R[4][j], d5 = R[5][j];
        T[0][j] = 4 * d0 - 5 * d2 + d4;
        T[1][j] = -4 * (d1 + d2) + d3 + d4;
        T[2][j] = 4 * (d1 - d2) - d3 + d4;
        T[3][j] = -2 * (d1 - d3) - d2 + d4;
        T[4][j] = 2 * (d1 - d3) - d2 + d4;
        T[5][j] = 4 * d1 - 5 * d3 + d5;
    }
}

/* Horizontal half for tiles [tx0, tx1): component r*6 + c of tile tx -> v[(r*6 + c)*xs + tx]. */
static void wino4_in_row(float *const T[6], int tx0, int tx1, float *v, size_t xs) {
    for (int tx = tx0; tx < tx1; tx++)
        for (int r = 0; r < 6; r++) {
            float o[6];
            bt6(T[r] + 4 * tx, o);
            for (int c = 0; c < 6; c++)
                v[(size_t)(r * 6 + c) * xs + tx] = o[c];
        }
}

/* Output transform for tiles [tx0, tx1): rows o[0..3] at columns 4*tx .. 4*tx + 3, + bias. */
static void wino4_out_row(const float *m, size_t xs, int tx0, int tx1, float bias,
                          float *const o[4]) {
    for (int tx = tx0; tx < tx1; tx++) {
        float s[6][4];
        for (int r = 0; r < 6; r++) {
            float a[6];
            for (int c = 0; c < 6; c++)
                a[c] = m[(size_t)(r * 6 + c) * xs + tx];
            at6(a, s[r]);
        }
        for (int c = 0; c < 4; c++) {
            float a[6] = {s[0][c], s[1][c], s[2][c], s[3][c], s[4][c], s[5][c]}, y[4];
            at6(a, y);
            for (int r = 0; r < 4; r++)
                o[r][4 * tx + c] = y[r] + bias;
        }
    }
}

#ifdef WINO_SIMD
/* Column c (c < 4) of 16 tiles of stride 4 starting at p: p[c], p[c + 4], ..., p[c + 60]. */
__attribute__((target("avx512f"))) static inline __m512 col4(const float *p, __m512i idx) {
    __m512 a = _mm512_permutex2var_ps(_mm512_loadu_ps(p), idx, _mm512_loadu_ps(p + 16));
    __m512 b = _mm512_permutex2var_ps(_mm512_loadu_ps(p + 32), idx, _mm512_loadu_ps(p + 48));
    return _mm512_shuffle_f32x4(a, b, 0x44); /* low 8 of a, low 8 of b */
}

__attribute__((target("avx512f"))) static int wino4_in_row16(float *const T[6], int tw, float *v,
                                                             size_t xs) {
    __m512i idx[4];
    for (int c = 0; c < 4; c++)
        idx[c] = _mm512_set_epi32(28 + c, 24 + c, 20 + c, 16 + c, 12 + c, 8 + c, 4 + c, c, 28 + c,
                                  24 + c, 20 + c, 16 + c, 12 + c, 8 + c, 4 + c, c);
    const __m512 four = _mm512_set1_ps(4), five = _mm512_set1_ps(5), two = _mm512_set1_ps(2);
    if (tw < 16)
        return 0;
    int tx = 0;
    /* Reads 4*tx .. 4*tx + 67: inside the row plus WINO4_MARGIN while tx + 16 <= tw. */
    for (; tx < tw; tx = next16(tx, tw))
        for (int r = 0; r < 6; r++) {
            const float *p = T[r] + 4 * tx;
            __m512 d0 = col4(p, idx[0]), d1 = col4(p, idx[1]), d2 = col4(p, idx[2]);
            __m512 d3 = col4(p, idx[3]), d4 = col4(p + 4, idx[0]), d5 = col4(p + 4, idx[1]);
            __m512 s12 = _mm512_add_ps(d1, d2), m12 = _mm512_sub_ps(d1, d2);
            __m512 m13 = _mm512_sub_ps(d1, d3), q = _mm512_sub_ps(d4, d2);
            __m512 o[6];
            o[0] = _mm512_add_ps(_mm512_fmsub_ps(four, d0, _mm512_mul_ps(five, d2)), d4);
            o[1] = _mm512_add_ps(_mm512_fnmadd_ps(four, s12, d3), d4);
            o[2] = _mm512_add_ps(_mm512_fmsub_ps(four, m12, d3), d4);
            o[3] = _mm512_fnmadd_ps(two, m13, q);
            o[4] = _mm512_fmadd_ps(two, m13, q);
            o[5] = _mm512_add_ps(_mm512_fmsub_ps(four, d1, _mm512_mul_ps(five, d3)), d5);
            for (int c = 0; c < 6; c++)
                _mm512_storeu_ps(v + (size_t)(r * 6 + c) * xs + tx, o[c]);
        }
    return tx;
}

__attribute__((target("avx512f"))) static inline void at6v(const __m512 a[6], __m512 y[4]) {
    const __m512 two = _mm512_set1_ps(2), four = _mm512_set1_ps(4), eight = _mm512_set1_ps(8);
    __m512 p = _mm512_add_ps(a[1], a[2]), m = _mm512_sub_ps(a[1], a[2]);
    __m512 p2 = _mm512_add_ps(a[3], a[4]), m2 = _mm512_sub_ps(a[3], a[4]);
    y[0] = _mm512_add_ps(_mm512_add_ps(a[0], p), p2);
    y[1] = _mm512_fmadd_ps(two, m2, m);
    y[2] = _mm512_fmadd_ps(four, p2, p);
    y[3] = _mm512_add_ps(_mm512_fmadd_ps(eight, m2, m), a[5]);
}

__attribute__((target("avx512f"))) static int wino4_out_row16(const float *m, size_t xs, int tw,
                                                              float bias, float *const o[4]) {
    const __m512 b = _mm512_set1_ps(bias);
    if (tw < 16)
        return 0;
    int tx = 0;
    for (; tx < tw; tx = next16(tx, tw)) {
        __m512 s[6][4];
        for (int r = 0; r < 6; r++) {
            __m512 a[6];
            for (int c = 0; c < 6; c++)
                a[c] = _mm512_loadu_ps(m + (size_t)(r * 6 + c) * xs + tx);
            at6v(a, s[r]);
        }
        __m512 y[4][4]; /* y[r][c]: output row r, column c of the 16 tiles */
        for (int c = 0; c < 4; c++) {
            __m512 a[6] = {s[0][c], s[1][c], s[2][c], s[3][c], s[4][c], s[5][c]}, t[4];
            at6v(a, t);
            for (int r = 0; r < 4; r++)
                y[r][c] = _mm512_add_ps(t[r], b);
        }
        /* Interleave the 4 columns of each row (a 4 x 16 -> 16 x 4 transpose): 128-bit lane L
         * of u_i holds tile 4L + i's four columns, then whole lanes are transposed. */
        for (int r = 0; r < 4; r++) {
            __m512 t0 = _mm512_unpacklo_ps(y[r][0], y[r][1]),
                   t1 = _mm512_unpackhi_ps(y[r][0], y[r][1]);
            __m512 t2 = _mm512_unpacklo_ps(y[r][2], y[r][3]),
                   t3 = _mm512_unpackhi_ps(y[r][2], y[r][3]);
            __m512 u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xee);
            __m512 u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xee);
            __m512 v0 = _mm512_shuffle_f32x4(u0, u1, 0x44), v1 = _mm512_shuffle_f32x4(u2, u3, 0x44);
            __m512 v2 = _mm512_shuffle_f32x4(u0, u1, 0xee), v3 = _mm512_shuffle_f32x4(u2, u3, 0xee);
            float *dst = o[r] + 4 * tx;
            _mm512_storeu_ps(dst, _mm512_shuffle_f32x4(v0, v1, 0x88));
            _mm512_storeu_ps(dst + 16, _mm512_shuffle_f32x4(v0, v1, 0xdd));
            _mm512_storeu_ps(dst + 32, _mm512_shuffle_f32x4(v2, v3, 0x88));
            _mm512_storeu_ps(dst + 48, _mm512_shuffle_f32x4(v2, v3, 0xdd));
        }
    }
    return tx;
}
#endif

/* The F(4,3) steps of one tile row, for the driver below. */
static void wino4_in_rows(float *const *R, float *const *T, int wp, int tw, float *v, size_t xs,
                          int simd) {
    (void)simd;
    wino4_vert(R, T, wp);
    int done = 0;
#ifdef WINO_SIMD
    if (simd)
        done = wino4_in_row16(T, tw, v, xs);
#endif
    wino4_in_row(T, done, tw, v, xs);
}

static void wino4_out_rows(const float *m, size_t xs, int tw, float bias, float *const *O,
                           int simd) {
    (void)simd;
    int done = 0;
#ifdef WINO_SIMD
    if (simd)
        done = wino4_out_row16(m, xs, tw, bias, O);
#endif
    wino4_out_row(m, xs, done, tw, bias, O);
}

/*
 * What tells F(2,3) from F(4,3) in the one driver: the output tile's side m (input tiles are
 * m + 2), the rows of scratch each tile row needs (the padded input rows, and for F(4,3) their
 * vertical transform too) with the floats readable past each, and the two transforms of a row
 * of tiles. Scratch: V (comps x cin x tiles), M (comps x cout x tiles), `in_rows` rows of
 * m * tw + 2 + margin, then m output rows of m * tw + out_pad.
 */
typedef struct wino_kind {
    int m, comps, in_rows, margin, out_pad;
    void (*in)(float *const *R, float *const *T, int wp, int tw, float *v, size_t xs, int simd);
    void (*out)(const float *m, size_t xs, int tw, float bias, float *const *O, int simd);
} wino_kind;

static const wino_kind WINO2 = {2, 16, 4, 0, 0, wino2_in_rows, wino2_out_rows};
static const wino_kind WINO4 = {4, 36, 12, WINO4_MARGIN, 16, wino4_in_rows, wino4_out_rows};

static size_t wino_kind_scratch(const wino_kind *k, const vt_conv *cv, int oh, int ow) {
    const int th = (oh + k->m - 1) / k->m, tw = (ow + k->m - 1) / k->m;
    const size_t nt = (size_t)wino_tile_rows(cv, tw, th, k->comps) * tw;
    const size_t wr = (size_t)k->m * tw + 2 + k->margin;
    return (size_t)k->comps * (cv->cin + cv->cout) * nt + k->in_rows * wr +
           k->m * ((size_t)k->m * tw + k->out_pad) + 64;
}

/* y = act(conv(x) + b + res) by Winograd F(m x m, 3 x 3), one block of tile rows at a time:
 * input transform, comps GEMMs, output transform clipped to oh x ow. */
static void conv_wino_run(const wino_kind *k, const float *u, const vt_conv *cv, const float *x,
                          int h, int w, const float *res, float *y, float *scratch) {
    int oh, ow;
    vtm_conv_out_size(cv, h, w, &oh, &ow);
    const int cin = cv->cin, cout = cv->cout, pad = cv->pad, m = k->m, n = m + 2;
    const int th = (oh + m - 1) / m, tw = (ow + m - 1) / m;
    const int rows = wino_tile_rows(cv, tw, th, k->comps);
    const size_t ntmax = (size_t)rows * tw;
    const int wp = m * tw + 2, wr = wp + k->margin;
    float *V = scratch;
    float *M = V + (size_t)k->comps * cin * ntmax;
    float *buf = M + (size_t)k->comps * cout * ntmax;
    float *R[6], *T[6], *O[4];
    for (int r = 0; r < n; r++) {
        R[r] = buf + (size_t)r * wr;
        T[r] = k->in_rows > n ? buf + (size_t)(n + r) * wr : NULL;
    }
    for (int r = 0; r < m; r++)
        O[r] = buf + (size_t)k->in_rows * wr + (size_t)r * (m * tw + k->out_pad);
    /* The SIMD column loads read up to `margin` floats past each row: keep them defined. */
    for (int r = 0; r < k->in_rows && k->margin > 0; r++)
        memset(buf + (size_t)r * wr + wp, 0, sizeof(float) * k->margin);
    int simd = 0;
#ifdef WINO_SIMD
    simd = have_avx512();
#endif

    for (int ty0 = 0; ty0 < th; ty0 += rows) {
        const int ty1 = ty0 + rows < th ? ty0 + rows : th;
        const int nt = (ty1 - ty0) * tw;
        const size_t xs_in = (size_t)cin * nt; /* stride between the transform's components */
        /* Input transform: V[xi][ci][t] = (B^T d B)[xi] for every tile t of the block. */
        for (int ci = 0; ci < cin; ci++) {
            const float *xc = x + (size_t)ci * h * w;
            for (int ty = ty0; ty < ty1; ty++) {
                for (int r = 0; r < n; r++)
                    wino_row(xc, h, w, m * ty - pad + r, pad, cv->pad_mode, wp, R[r]);
                k->in(R, T, wp, tw, V + (size_t)ci * nt + (size_t)(ty - ty0) * tw, xs_in, simd);
            }
        }
        wino_gemms(u, k->comps, cin, cout, nt, V, M);
        /* Output transform A^T m A, then bias, residual and ReLU, clipped to oh x ow. */
        const size_t xs = (size_t)cout * nt;
        for (int o = 0; o < cout; o++) {
            const float bo = cv->b ? cv->b[o] : 0.0f;
            for (int ty = ty0; ty < ty1; ty++) {
                k->out(M + (size_t)o * nt + (size_t)(ty - ty0) * tw, xs, tw, bo, O, simd);
                store_tile_rows(cv, O, m, ty, o, oh, ow, res, y);
            }
        }
    }
}
size_t vtm_conv_scratch(const vt_conv *cv, vt_conv_algo algo, int h, int w) {
    int oh, ow;
    vtm_conv_out_size(cv, h, w, &oh, &ow);
    if (oh <= 0 || ow <= 0)
        return 0;
    if (algo == VT_CONV_AUTO)
        algo = vtm_conv_pick(cv);
    switch (algo) {
    case VT_CONV_1X1:
        return 0;
    case VT_CONV_WINO:
        return wino_kind_scratch(&WINO2, cv, oh, ow);
    case VT_CONV_WINO4:
        return wino_kind_scratch(&WINO4, cv, oh, ow);
    default: {
        int rows = vtm_conv_im2col_rows(cv, oh, ow);
        return (size_t)cv->cin * cv->k * cv->k * rows * ow;
    }
    }
}

int vtm_conv2d(const vt_conv *cv, vt_conv_algo algo, const vt_tensor *x, const vt_tensor *res,
               vt_tensor *y, float *scratch) {
    if (!cv || !x || !x->data || x->c != cv->cin || cv->k < 1 || cv->stride < 1 || cv->dil < 1 ||
        cv->pad < 0)
        return -EINVAL;
    int oh, ow;
    vtm_conv_out_size(cv, x->h, x->w, &oh, &ow);
    if (oh <= 0 || ow <= 0 || vtm_tensor_check(y, x->n, cv->cout, oh, ow) != 0)
        return -EINVAL;
    if (res && (vtm_tensor_check(res, x->n, cv->cout, oh, ow) != 0 || res->data == y->data))
        return -EINVAL;
    /* Reflection needs the padding to fit inside the image, as PyTorch requires. */
    if (cv->pad_mode == VT_PAD_REFLECT && (cv->pad >= x->h || cv->pad >= x->w))
        return -EINVAL;
    if (algo == VT_CONV_AUTO)
        algo = vtm_conv_pick(cv);
    if (algo == VT_CONV_1X1 && !(cv->k == 1 && cv->stride == 1 && cv->pad == 0))
        return -EINVAL;
    if (algo == VT_CONV_WINO && !(vtm_wino_fits(cv) && cv->wino))
        return -EINVAL;
    if (algo == VT_CONV_WINO4 && !(vtm_wino_fits(cv) && cv->wino4))
        return -EINVAL;
    const size_t xs = (size_t)cv->cin * x->h * x->w, ys = (size_t)cv->cout * oh * ow;
    for (int b = 0; b < x->n; b++) {
        const float *xb = x->data + b * xs;
        const float *rb = res ? res->data + b * ys : NULL;
        float *yb = y->data + b * ys;
        switch (algo) {
        case VT_CONV_1X1:
            conv_1x1(cv, xb, x->h, x->w, rb, yb);
            break;
        case VT_CONV_WINO:
            conv_wino_run(&WINO2, cv->wino, cv, xb, x->h, x->w, rb, yb, scratch);
            break;
        case VT_CONV_WINO4:
            conv_wino_run(&WINO4, cv->wino4, cv, xb, x->h, x->w, rb, yb, scratch);
            break;
        default:
            conv_im2col(cv, xb, x->h, x->w, rb, yb, scratch);
            break;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Winograd layers: the one driver of inference (model.c, F(4x4, 3x3) on the folded weights)
 * and training (train/train_net.c, F(2x2, 3x3) on the raw weights, with the input gradient)
 * ------------------------------------------------------------------------------------------- */

int vtm_wino_adjoint_fits(const vt_conv *cv) {
    return vtm_wino_fits(cv) && cv->pad == 1 && cv->pad_mode == VT_PAD_ZEROS;
}

static size_t domain_floats(vt_conv_algo algo, int cin, int cout) {
    return algo == VT_CONV_WINO4 ? vtm_wino4_size(cin, cout) : vtm_wino_size(cin, cout);
}

static void domain_weights(vt_conv_algo algo, const float *w, int cin, int cout, float *u) {
    if (algo == VT_CONV_WINO4)
        vtm_wino4_weights(w, cin, cout, u);
    else
        vtm_wino_weights(w, cin, cout, u);
}

size_t vtm_wino_layer_floats(vt_conv_algo algo, int cin, int cout, int adjoint) {
    size_t n = vtm_arena_need(domain_floats(algo, cin, cout));
    if (adjoint)
        n +=
            vtm_arena_need((size_t)9 * cin * cout) + vtm_arena_need(domain_floats(algo, cout, cin));
    return n;
}

void vtm_wino_layer_init(vt_wino_layer *wl, vt_conv_algo algo, int cin, int cout, int adjoint,
                         float *mem) {
    *wl = (vt_wino_layer){.algo = algo, .cin = cin, .cout = cout, .u = mem};
    if (!adjoint)
        return;
    wl->flip = mem + vtm_arena_need(domain_floats(algo, cin, cout));
    wl->ub = wl->flip + vtm_arena_need((size_t)9 * cin * cout);
}

void vtm_wino_layer_update(vt_wino_layer *wl, const float *w) {
    const int cin = wl->cin, cout = wl->cout;
    domain_weights(wl->algo, w, cin, cout, wl->u);
    if (!wl->flip)
        return;
    /* flip[ci][co][ky][kx] = w[co][ci][2-ky][2-kx] */
    for (int co = 0; co < cout; co++)
        for (int ci = 0; ci < cin; ci++)
            for (int k = 0; k < 9; k++)
                wl->flip[((size_t)ci * cout + co) * 9 + (8 - k)] =
                    w[((size_t)co * cin + ci) * 9 + k];
    domain_weights(wl->algo, wl->flip, cout, cin, wl->ub);
}

void vtm_wino_layer_attach(const vt_wino_layer *wl, vt_conv *cv) {
    if (!wl || !wl->u)
        return;
    if (wl->algo == VT_CONV_WINO4)
        cv->wino4 = wl->u;
    else
        cv->wino = wl->u;
}

/* The input-gradient convolution: cout -> cin with the flipped kernel, pad 1, zeros. */
static vt_conv adjoint_conv(vt_conv_algo algo, int cin, int cout, const float *flip,
                            const float *ub) {
    vt_conv cv = {.cin = cout,
                  .cout = cin,
                  .k = 3,
                  .stride = 1,
                  .pad = 1,
                  .dil = 1,
                  .pad_mode = VT_PAD_ZEROS,
                  .w = flip};
    if (algo == VT_CONV_WINO4)
        cv.wino4 = ub;
    else
        cv.wino = ub;
    return cv;
}

size_t vtm_wino_adjoint_scratch(vt_conv_algo algo, int cin, int cout, int h, int w) {
    vt_conv cv = adjoint_conv(algo, cin, cout, NULL, NULL);
    return vtm_conv_scratch(&cv, algo, h, w);
}

int vtm_wino_adjoint(const vt_wino_layer *wl, const vt_tensor *dz, vt_tensor *dx, float *tmp,
                     float *scratch) {
    if (!wl->flip)
        return -EINVAL;
    vt_conv cv = adjoint_conv(wl->algo, wl->cin, wl->cout, wl->flip, wl->ub);
    vt_tensor t = {dx->n, dx->c, dx->h, dx->w, tmp};
    int rc = vtm_conv2d(&cv, wl->algo, dz, NULL, &t, scratch);
    if (rc < 0)
        return rc;
    const size_t n = vtm_tensor_numel(dx);
    for (size_t k = 0; k < n; k++)
        dx->data[k] += tmp[k];
    return 0;
}
