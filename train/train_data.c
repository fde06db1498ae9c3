/*
 * train_data.c - the trainer's random numbers and its bounded in-memory frame cache.
 *
 * The cache holds packed RGB24 frames, already reduced to the training size by the caller
 * (cli/train_sources.c decodes and scales with codec/). Its byte cap is kept by thinning in
 * time: when a frame would not fit, the stride doubles and the frames off the new stride are
 * freed, so every video keeps evenly spaced frames and the sampler can still convert a gap in
 * source frames into a gap in cached frames.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_int.h"

/* ---------------------------------------------------------------------------------------------
 * xoshiro256** (Blackman & Vigna), seeded with splitmix64
 * ------------------------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void vtt_rng_seed(vt_rng *r, uint64_t seed) {
    uint64_t s = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&s);
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t vtt_rng_u64(vt_rng *r) {
    uint64_t *s = r->s;
    const uint64_t out = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double vtt_rng_unit(vt_rng *r) {
    return (vtt_rng_u64(r) >> 11) * 0x1.0p-53;
}

int vtt_rng_int(vt_rng *r, int lo, int hi) {
    uint64_t span = (uint64_t)((int64_t)hi - lo) + 1;
    return lo + (int)(vtt_rng_u64(r) % span); /* bias < span / 2^64: irrelevant here */
}

/* ---------------------------------------------------------------------------------------------
 * Frame cache
 * ------------------------------------------------------------------------------------------- */

void vtt_data_pick(vt_rng *r, const vt_train_data *d, int64_t total, int *v, int *j) {
    int64_t u = (int64_t)(vtt_rng_unit(r) * (double)total);
    if (u >= total)
        u = total - 1;
    int i = 0;
    while (u >= d->v[i].n)
        u -= d->v[i++].n;
    *v = i;
    *j = (int)u;
}

int vt_train_data_new(size_t cap_bytes, vt_train_data **out) {
    *out = NULL;
    vt_train_data *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->cap_bytes = cap_bytes;
    d->stride = 1;
    *out = d;
    return 0;
}

static void video_release(vt_train_video *v) {
    for (int i = 0; i < v->n; i++)
        free(v->rgb[i]);
    free(v->rgb);
    free(v->index);
}

void vt_train_data_free(vt_train_data **pd) {
    if (!pd || !*pd)
        return;
    vt_train_data *d = *pd;
    for (int i = 0; i < d->nv; i++)
        video_release(&d->v[i]);
    free(d->v);
    free(d);
    *pd = NULL;
}

int vt_train_data_add_video(vt_train_data *d, const char *name, int w, int h) {
    if (w < 1 || h < 1 || w > 16384 || h > 16384)
        return -EINVAL;
    if (d->nv == d->capv) {
        int cap = d->capv ? 2 * d->capv : 16;
        vt_train_video *v = realloc(d->v, sizeof *v * cap);
        if (!v)
            return -ENOMEM;
        d->v = v;
        d->capv = cap;
    }
    vt_train_video *v = &d->v[d->nv];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name ? name : "");
    v->w = w;
    v->h = h;
    return d->nv++;
}

static size_t frame_bytes(const vt_train_video *v) {
    return (size_t)3 * v->w * v->h;
}

/* Double the stride and free the frames off it. */
static void thin(vt_train_data *d) {
    d->stride *= 2;
    for (int i = 0; i < d->nv; i++) {
        vt_train_video *v = &d->v[i];
        int k = 0;
        for (int j = 0; j < v->n; j++) {
            if (v->index[j] % d->stride == 0) {
                v->rgb[k] = v->rgb[j];
                v->index[k] = v->index[j];
                k++;
            } else {
                free(v->rgb[j]);
                d->bytes -= frame_bytes(v);
            }
        }
        v->n = k;
    }
}

int vt_train_data_add_frame(vt_train_data *d, const uint8_t *rgb, int linesize, int64_t index) {
    if (d->nv == 0 || !rgb || index < 0)
        return -EINVAL;
    vt_train_video *v = &d->v[d->nv - 1];
    if (linesize < 3 * v->w)
        return -EINVAL;
    d->offered++;
    const size_t fb = frame_bytes(v);
    if (fb > d->cap_bytes)
        return -ENOMEM;
    for (;;) {
        if (index % d->stride != 0)
            return 1;
        if (d->bytes + fb <= d->cap_bytes)
            break;
        /* Thinning keeps every video's first frame: when those alone fill the cache, no stride
         * makes room (and doubling it forever would overflow). */
        if (d->stride > INT_MAX / 2)
            return -ENOSPC;
        thin(d);
    }
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 64;
        uint8_t **r = realloc(v->rgb, sizeof *r * cap);
        if (!r)
            return -ENOMEM;
        v->rgb = r;
        int64_t *ix = realloc(v->index, sizeof *ix * cap);
        if (!ix)
            return -ENOMEM;
        v->index = ix;
        v->cap = cap;
    }
    uint8_t *f = malloc(fb);
    if (!f)
        return -ENOMEM;
    for (int y = 0; y < v->h; y++)
        memcpy(f + (size_t)y * 3 * v->w, rgb + (size_t)y * linesize, (size_t)3 * v->w);
    v->rgb[v->n] = f;
    v->index[v->n] = index;
    v->n++;
    d->bytes += fb;
    return 0;
}

int64_t vt_train_data_finish(vt_train_data *d) {
    int k = 0;
    for (int i = 0; i < d->nv; i++) {
        if (d->v[i].n < 2) {
            d->bytes -= (size_t)d->v[i].n * frame_bytes(&d->v[i]);
            video_release(&d->v[i]);
            continue;
        }
        d->v[k++] = d->v[i];
    }
    d->nv = k;
    return vt_train_data_frames(d);
}

int64_t vt_train_data_frames(const vt_train_data *d) {
    int64_t n = 0;
    for (int i = 0; i < d->nv; i++)
        n += d->v[i].n;
    return n;
}
