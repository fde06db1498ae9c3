/*
 * rle.c - COCO run-length encoding with pycocotools' semantics (maskApi.c's rleEncode,
 * rleToString, rleFrString, rleArea, rleToBbox), for masks stored row-major by the caller.
 *
 * Encoding is the per-object, per-frame hot path, so it never walks the mask pixel by pixel in
 * column order (a cache miss per pixel on a 1920-wide frame). It takes strips of 8 columns, reads
 * each row of the strip as one 64-bit word, and records for every row which of the 8 columns
 * changed value from the row above (a byte of flags per row). Each column's transitions are then
 * found by scanning those flags 8 rows per word. Runs end exactly at the transitions, so the
 * counts (or the string) come out in column-major order without a transposed copy and without
 * any allocation: the flags live on the stack (VT_RLE_MAX_DIM + 8 bytes).
 *
 * Bound on the string length (vt_rle_string_max). Let a = h*w and c_0..c_{m-1} be the counts of
 * an encoded mask: they sum to a, m <= a + 1, and only c_0 can be 0. Let K(v) be the chars
 * needed for a value of magnitude <= v: K(v) = 1 for v <= 15, 2 for v <= 511, 3 for v <= 16383,
 * ... so K(v) - 1 <= v / 16 (in integers: <= floor(v/16)). Count i > 2 is written as the
 * difference d_i = c_i - c_{i-2}, |d_i| <= max(c_i, c_{i-2}), so its chars are at most
 * max(K(c_i), K(c_{i-2})) <= K(c_i) + K(c_{i-2}) - 1. Summing over i, the length is at most
 * sum K(c_i) + sum (K(c_i) - 1) = m + 2 * sum (K(c_i) - 1) <= a + 1 + 2 * floor(a / 16).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "proto_int.h"

/* ---------------------------------------------------------------------------------------------
 * Sizes
 * ------------------------------------------------------------------------------------------- */

static int dims_ok(int h, int w) {
    return h >= 1 && w >= 1 && h <= VT_RLE_MAX_DIM && w <= VT_RLE_MAX_DIM;
}

size_t vt_rle_counts_max(int h, int w) {
    return dims_ok(h, w) ? (size_t)h * (size_t)w + 1 : 0;
}

size_t vt_rle_string_max(int h, int w) {
    if (!dims_ok(h, w))
        return 0;
    size_t a = (size_t)h * (size_t)w;
    return a + 2 * (a / 16) + 2; /* + 1 for c_0, + 1 for the NUL */
}

/* ---------------------------------------------------------------------------------------------
 * Output sinks: counts into an array, or counts straight into the compressed string
 * ------------------------------------------------------------------------------------------- */

typedef struct rle_sink {
    uint32_t *counts; /* counts mode when not NULL */
    size_t cap;       /* counts mode: entries; string mode: chars including the NUL */
    char *s;
    size_t n;              /* counts emitted */
    size_t len;            /* string chars written */
    uint32_t prev1, prev2; /* counts n-1 and n-2, for the string's delta coding */
    bool full;
} rle_sink;

/* pycocotools' rleToString for one value: 5-bit groups, least significant first, '0' + group,
 * 0x20 = another group follows; the last group's 0x10 bit is the sign. Returns chars written. */
static inline size_t leb_put(char *o, int64_t x) {
    size_t k = 0;
    for (;;) {
        int c = (int)((uint64_t)x & 0x1f);
        x = (x - c) / 32; /* exact, and an arithmetic shift for negative x too */
        bool more = (c & 0x10) ? x != -1 : x != 0;
        o[k++] = (char)(48 + (more ? c | 0x20 : c));
        if (!more)
            return k;
    }
}

static inline void sink_put(rle_sink *k, uint32_t c) {
    if (k->counts) {
        if (k->n < k->cap)
            k->counts[k->n] = c;
        else
            k->full = true;
        k->n++;
        return;
    }
    int64_t x = c;
    if (k->n > 2)
        x -= k->prev2; /* pycocotools codes counts from index 3 on as deltas */
    k->prev2 = k->prev1;
    k->prev1 = c;
    k->n++;
    if (k->full)
        return;
    if (k->cap - k->len > 8) { /* room for the longest value (7 chars) and the NUL */
        k->len += leb_put(k->s + k->len, x);
        return;
    }
    char tmp[8];
    size_t m = leb_put(tmp, x);
    if (k->len + m + 1 > k->cap) {
        k->full = true;
        return;
    }
    memcpy(k->s + k->len, tmp, m);
    k->len += m;
}

/* ---------------------------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------------------------- */

static inline uint64_t load_le64(const void *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Load n <= 8 mask bytes (byte j -> bits 8j..8j+7) and map each to 0x80 if nonzero, else 0. */
static inline uint64_t load_norm(const uint8_t *p, int n) {
    uint64_t v = 0;
    if (n == 8) {
        v = load_le64(p);
    } else {
        for (int j = 0; j < n; j++)
            v |= (uint64_t)p[j] << (8 * j);
    }
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL;
    return (((v & lo7) + lo7) | v) & ~lo7;
}

/* Gather the 0x80 bits of the 8 bytes into one byte: byte j -> bit j. The multiplier places
 * byte j's bit at 56 + j; the other partial products land on distinct lower bits (no carries). */
static inline uint8_t movemask8(uint64_t v) {
    return (uint8_t)(((v >> 7) * 0x0102040810204080ULL) >> 56);
}

static int encode_core(const uint8_t *mask, int h, int w, size_t stride, rle_sink *k) {
    if (!mask || !dims_ok(h, w) || stride < (size_t)w)
        return -EINVAL;
    uint8_t flags[VT_RLE_MAX_DIM + 8]; /* bit c of flags[y]: column c differs from row y-1 */
    const uint64_t a = (uint64_t)h * (uint64_t)w;
    uint64_t last = 0; /* column-major index where the current run started */
    int val = 0;       /* value of the current run: runs start with background */

    for (int x0 = 0; x0 < w; x0 += 8) {
        const int sw = w - x0 < 8 ? w - x0 : 8;
        uint64_t prev = load_norm(mask + x0, sw);
        flags[0] = 0;
        for (int y = 1; y < h; y++) {
            uint64_t cur = load_norm(mask + (size_t)y * stride + x0, sw);
            flags[y] = movemask8(cur ^ prev);
            prev = cur;
        }
        memset(flags + h, 0, 8); /* the word scan below reads up to 7 bytes past row h-1 */

        for (int c = 0; c < sw; c++) {
            const uint64_t base = (uint64_t)(x0 + c) * (uint64_t)h;
            /* The column's first pixel continues or breaks the run from the previous column. */
            if ((mask[x0 + c] != 0) != val) {
                sink_put(k, (uint32_t)(base - last));
                last = base;
                val ^= 1;
            }
            const uint64_t sel = 0x0101010101010101ULL << c;
            for (int y = 0; y < h; y += 8) {
                uint64_t f = load_le64(flags + y) & sel;
                while (f) {
                    uint64_t pos = base + (uint64_t)y + (uint64_t)(__builtin_ctzll(f) >> 3);
                    sink_put(k, (uint32_t)(pos - last));
                    last = pos;
                    val ^= 1;
                    f &= f - 1;
                }
            }
        }
    }
    sink_put(k, (uint32_t)(a - last));
    return 0;
}

int vt_rle_encode(const uint8_t *mask, int h, int w, size_t stride, uint32_t *counts, size_t cap,
                  size_t *n) {
    if (!counts || !n)
        return -EINVAL;
    rle_sink k = {.counts = counts, .cap = cap};
    int rc = encode_core(mask, h, w, stride, &k);
    if (rc < 0)
        return rc;
    *n = k.n;
    return k.full ? -ENOSPC : 0;
}

int vt_rle_encode_string(const uint8_t *mask, int h, int w, size_t stride, char *s, size_t cap,
                         size_t *len) {
    if (!s || !len || cap == 0)
        return -EINVAL;
    rle_sink k = {.s = s, .cap = cap};
    int rc = encode_core(mask, h, w, stride, &k);
    if (rc < 0)
        return rc;
    if (k.full) {
        s[0] = '\0';
        return -ENOSPC;
    }
    s[k.len] = '\0';
    *len = k.len;
    return 0;
}

int vt_rle_counts_to_string(const uint32_t *counts, size_t n, char *s, size_t cap, size_t *len) {
    if ((!counts && n) || !s || !len || cap == 0)
        return -EINVAL;
    rle_sink k = {.s = s, .cap = cap};
    for (size_t i = 0; i < n && !k.full; i++)
        sink_put(&k, counts[i]);
    if (k.full) {
        s[0] = '\0';
        return -ENOSPC;
    }
    s[k.len] = '\0';
    *len = k.len;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing the string form: one count at a time, validated, never reading past len
 * ------------------------------------------------------------------------------------------- */

typedef struct rle_reader {
    const char *s;
    size_t len, pos;
    uint64_t area, sum; /* h*w, and the sum of the counts so far */
    size_t i;           /* counts read */
    uint32_t prev1, prev2;
    char *err;
    size_t errlen;
} rle_reader;

static int reader_init(rle_reader *r, const char *s, size_t len, int h, int w, char *err,
                       size_t errlen) {
    *r = (rle_reader){.s = s, .len = len, .err = err, .errlen = errlen};
    if (!dims_ok(h, w)) {
        vt_fmt(err, errlen, "mask size %dx%d is outside 1..%d", h, w, VT_RLE_MAX_DIM);
        return -EINVAL;
    }
    if (!s && len) {
        vt_fmt(err, errlen, "no string");
        return -EINVAL;
    }
    r->area = (uint64_t)h * (uint64_t)w;
    return 0;
}

/* Returns 1 with the next count in *out, 0 at the end of a complete string, or -EINVAL. */
static int reader_next(rle_reader *r, uint32_t *out) {
    if (r->pos == r->len) {
        if (r->sum != r->area) {
            vt_fmt(r->err, r->errlen, "runs cover %llu pixels, the mask has %llu",
                   (unsigned long long)r->sum, (unsigned long long)r->area);
            return -EINVAL;
        }
        return 0;
    }
    int64_t x = 0;
    int k = 0, more = 1;
    while (more) {
        if (r->pos == r->len) {
            vt_fmt(r->err, r->errlen, "count %zu is cut off by the end of the string", r->i);
            return -EINVAL;
        }
        unsigned char ch = (unsigned char)r->s[r->pos];
        if (ch < '0' || ch > 'o') {
            vt_fmt(r->err, r->errlen, "bad character 0x%02x at offset %zu", ch, r->pos);
            return -EINVAL;
        }
        if (k == 7) { /* 35 bits: far beyond any count of a VT_RLE_MAX_DIM^2 mask */
            vt_fmt(r->err, r->errlen, "count %zu overflows at offset %zu", r->i, r->pos);
            return -EINVAL;
        }
        int c = ch - '0';
        x |= (int64_t)(c & 0x1f) << (5 * k);
        more = c & 0x20;
        r->pos++;
        k++;
        if (!more && (c & 0x10))
            x -= (int64_t)1 << (5 * k); /* sign-extend the 5k-bit value */
    }
    if (r->i > 2)
        x += r->prev2;
    if (x < 0) {
        vt_fmt(r->err, r->errlen, "count %zu is negative (%lld)", r->i, (long long)x);
        return -EINVAL;
    }
    if ((uint64_t)x > r->area - r->sum) {
        vt_fmt(r->err, r->errlen, "count %zu (%lld) runs past the mask's %llu pixels", r->i,
               (long long)x, (unsigned long long)r->area);
        return -EINVAL;
    }
    r->prev2 = r->prev1;
    r->prev1 = (uint32_t)x;
    r->i++;
    r->sum += (uint64_t)x;
    *out = (uint32_t)x;
    return 1;
}

int vt_rle_counts_from_string(const char *s, size_t len, int h, int w, uint32_t *counts, size_t cap,
                              size_t *n, char *err, size_t errlen) {
    rle_reader r;
    int rc = reader_init(&r, s, len, h, w, err, errlen);
    if (rc < 0)
        return rc;
    if (!n || (!counts && cap))
        return -EINVAL;
    uint32_t c;
    size_t m = 0;
    while ((rc = reader_next(&r, &c)) > 0) {
        if (m == cap) {
            vt_fmt(err, errlen, "more than %zu counts", cap);
            return -ENOSPC;
        }
        counts[m++] = c;
    }
    if (rc < 0)
        return rc;
    *n = m;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Decoding, area and bounding box
 * ------------------------------------------------------------------------------------------- */

int vt_rle_check(const uint32_t *counts, size_t n, int h, int w, char *err, size_t errlen) {
    if (!dims_ok(h, w)) {
        vt_fmt(err, errlen, "mask size %dx%d is outside 1..%d", h, w, VT_RLE_MAX_DIM);
        return -EINVAL;
    }
    if (!counts && n)
        return -EINVAL;
    uint64_t a = (uint64_t)h * (uint64_t)w, sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (counts[i] > a - sum) {
            vt_fmt(err, errlen, "count %zu (%u) runs past the mask's %llu pixels", i, counts[i],
                   (unsigned long long)a);
            return -EINVAL;
        }
        sum += counts[i];
    }
    if (sum != a) {
        vt_fmt(err, errlen, "runs cover %llu pixels, the mask has %llu", (unsigned long long)sum,
               (unsigned long long)a);
        return -EINVAL;
    }
    return 0;
}

static void zero_mask(uint8_t *mask, int h, int w, size_t stride) {
    if (stride == (size_t)w) {
        memset(mask, 0, (size_t)h * (size_t)w);
        return;
    }
    for (int y = 0; y < h; y++)
        memset(mask + (size_t)y * stride, 0, (size_t)w);
}

/* Set the object run [p, p + len) (column-major indices) in a row-major mask. */
static void fill_run(uint8_t *mask, int h, size_t stride, uint64_t p, uint64_t len) {
    uint64_t x = p / (uint64_t)h;
    int y = (int)(p % (uint64_t)h);
    while (len) {
        uint64_t k = (uint64_t)(h - y) < len ? (uint64_t)(h - y) : len;
        uint8_t *q = mask + (size_t)y * stride + x;
        for (uint64_t j = 0; j < k; j++, q += stride)
            *q = 1;
        len -= k;
        x++;
        y = 0;
    }
}

int vt_rle_decode(const uint32_t *counts, size_t n, int h, int w, uint8_t *mask, size_t stride) {
    if (!mask || stride < (size_t)w || vt_rle_check(counts, n, h, w, NULL, 0) < 0)
        return -EINVAL;
    zero_mask(mask, h, w, stride);
    uint64_t p = 0;
    for (size_t i = 0; i < n; i++) {
        if (i & 1)
            fill_run(mask, h, stride, p, counts[i]);
        p += counts[i];
    }
    return 0;
}

int vt_rle_decode_string(const char *s, size_t len, int h, int w, uint8_t *mask, size_t stride,
                         char *err, size_t errlen) {
    rle_reader r;
    int rc = reader_init(&r, s, len, h, w, err, errlen);
    if (rc < 0)
        return rc;
    if (!mask || stride < (size_t)w)
        return -EINVAL;
    zero_mask(mask, h, w, stride);
    uint64_t p = 0;
    uint32_t c;
    while ((rc = reader_next(&r, &c)) > 0) {
        /* reader_next has checked p + c <= h*w, so the fill stays inside the mask. */
        if ((r.i - 1) & 1)
            fill_run(mask, h, stride, p, c);
        p += c;
    }
    return rc;
}

uint64_t vt_rle_area(const uint32_t *counts, size_t n) {
    uint64_t a = 0;
    for (size_t i = 1; i < n; i += 2)
        a += counts[i];
    return a;
}

/* Bounding-box accumulator over object runs, shared by the counts and the string versions. */
typedef struct bbox_acc {
    uint64_t h, xs, xe, ys, ye;
    bool any;
} bbox_acc;

static void bbox_add(bbox_acc *b, uint64_t start, uint64_t len) {
    if (len == 0)
        return;
    uint64_t end = start + len - 1;
    uint64_t x0 = start / b->h, y0 = start % b->h, x1 = end / b->h, y1 = end % b->h;
    if (!b->any) {
        b->xs = x0;
        b->xe = x1;
        b->ys = y0;
        b->ye = y1;
        b->any = true;
    }
    b->xs = x0 < b->xs ? x0 : b->xs;
    b->xe = x1 > b->xe ? x1 : b->xe;
    if (x1 > x0) { /* wraps from a column's bottom to the next one's top: every row */
        b->ys = 0;
        b->ye = b->h - 1;
    } else {
        b->ys = y0 < b->ys ? y0 : b->ys;
        b->ye = y1 > b->ye ? y1 : b->ye;
    }
}

static void bbox_out(const bbox_acc *b, int bbox[4]) {
    if (!b->any) {
        bbox[0] = bbox[1] = bbox[2] = bbox[3] = 0;
        return;
    }
    bbox[0] = (int)b->xs;
    bbox[1] = (int)b->ys;
    bbox[2] = (int)(b->xe - b->xs + 1);
    bbox[3] = (int)(b->ye - b->ys + 1);
}

void vt_rle_bbox(const uint32_t *counts, size_t n, int h, int w, int bbox[4]) {
    (void)w; /* the box follows from h and the runs; w only bounds valid counts */
    bbox_acc b = {.h = h > 0 ? (uint64_t)h : 1};
    uint64_t p = 0;
    for (size_t i = 0; i < n; i++) {
        if (i & 1)
            bbox_add(&b, p, counts[i]);
        p += counts[i];
    }
    bbox_out(&b, bbox);
}

int vt_rle_string_measure(const char *s, size_t len, int h, int w, uint64_t *area, int bbox[4],
                          size_t *ncounts, char *err, size_t errlen) {
    rle_reader r;
    int rc = reader_init(&r, s, len, h, w, err, errlen);
    if (rc < 0)
        return rc;
    bbox_acc b = {.h = (uint64_t)h};
    uint64_t p = 0, a = 0;
    uint32_t c;
    while ((rc = reader_next(&r, &c)) > 0) {
        if ((r.i - 1) & 1) {
            bbox_add(&b, p, c);
            a += c;
        }
        p += c;
    }
    if (rc < 0)
        return rc;
    if (area)
        *area = a;
    if (bbox)
        bbox_out(&b, bbox);
    if (ncounts)
        *ncounts = r.i;
    return 0;
}
