/*
 * labfeat.c - the weight-free `lab` encoder: pooled Lab colour with its neighbourhood.
 *
 * Definition (kept in this one function so it can be tuned for tracking without touching the
 * learned encoders):
 *   1. Lab from sRGB (vt_lab_from_rgb), scaled to about [-1, 1]: L/100, a/128, b/128.
 *   2. Average over stride x stride cells (stride 8); the last row/column of cells may be
 *      partial when the size is not a multiple of 8 and averages only the pixels it covers
 *      (avg_pool2d with ceil_mode=True), so the map is ceil(h/8) x ceil(w/8), like the stride-8
 *      learned encoders.
 *   3. Each cell's feature is the 3x3 neighbourhood of pooled cells around it (edge cells
 *      replicated at the border): channel ((dy + 1) * 3 + (dx + 1)) * 3 + c holds colour c of
 *      cell (y + dy, x + dx). 27 channels. The neighbourhood makes matching prefer cells whose
 *      surroundings agree, not just their own colour.
 */
#include "nn.h"

#define LAB_STRIDE 8

static const float lab_scale[3] = {1.0f / 100.0f, 1.0f / 128.0f, 1.0f / 128.0f};

void vtm_labfeat_size(int h, int w, int *c, int *fh, int *fw) {
    *c = 27;
    *fh = (h + LAB_STRIDE - 1) / LAB_STRIDE;
    *fw = (w + LAB_STRIDE - 1) / LAB_STRIDE;
}

size_t vtm_labfeat_scratch(int h, int w) {
    int c, fh, fw;
    vtm_labfeat_size(h, w, &c, &fh, &fw);
    return 3 * (size_t)h * w + 3 * (size_t)fh * fw;
}

void vtm_labfeat(const vt_image *img, float *scratch, float *out) {
    const int h = img->h, w = img->w;
    int c, fh, fw;
    vtm_labfeat_size(h, w, &c, &fh, &fw);
    float *lab = scratch;                      /* [3][h][w] */
    float *pool = scratch + 3 * (size_t)h * w; /* [3][fh][fw] */
    vt_lab_from_rgb(img, lab);
    vt_tensor x = {1, 3, h, w, lab}, p = {1, 3, fh, fw, pool};
    vtm_avgpool2d(&x, LAB_STRIDE, LAB_STRIDE, 1, &p);
    const size_t fp = (size_t)fh * fw;
    for (int ch = 0; ch < 3; ch++)
        for (size_t i = 0; i < fp; i++)
            pool[ch * fp + i] *= lab_scale[ch];
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
            for (int ch = 0; ch < 3; ch++) {
                float *o = out + (size_t)(((dy + 1) * 3 + (dx + 1)) * 3 + ch) * fp;
                const float *src = pool + ch * fp;
                for (int y = 0; y < fh; y++) {
                    int sy = y + dy < 0 ? 0 : (y + dy >= fh ? fh - 1 : y + dy);
                    for (int x2 = 0; x2 < fw; x2++) {
                        int sx = x2 + dx < 0 ? 0 : (x2 + dx >= fw ? fw - 1 : x2 + dx);
                        o[(size_t)y * fw + x2] = src[(size_t)sy * fw + sx];
                    }
                }
            }
}
