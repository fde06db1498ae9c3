/*
 * buf.c - the growable output buffer and the small text helpers every writer uses.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto_int.h"

int vt_proto_buf_reserve(vt_proto_buf *b, size_t extra) {
    if (extra > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t need = b->len + extra + 1; /* + NUL */
    if (need <= b->cap)
        return 0;
    /* Doubling keeps appends amortised O(1); 256 bytes covers every small message at once. */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

void vt_proto_buf_free(vt_proto_buf *b) {
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int vtp_buf_append(vt_proto_buf *b, const void *p, size_t n) {
    int rc = vt_proto_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int vtp_buf_putc(vt_proto_buf *b, char c) {
    return vtp_buf_append(b, &c, 1);
}

size_t vtp_fmt_u64(char *out, uint64_t v) {
    char tmp[21];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

size_t vtp_fmt_i64(char *out, int64_t v) {
    if (v >= 0)
        return vtp_fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
    return 1 + vtp_fmt_u64(out + 1, 0 - (uint64_t)v);
}

int vtp_buf_put_u64(vt_proto_buf *b, uint64_t v) {
    char tmp[24];
    return vtp_buf_append(b, tmp, vtp_fmt_u64(tmp, v));
}

int vtp_buf_put_i64(vt_proto_buf *b, int64_t v) {
    char tmp[24];
    return vtp_buf_append(b, tmp, vtp_fmt_i64(tmp, v));
}

int vtp_buf_put_json_string(vt_proto_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX: reserve once, then write without checks. */
    if (n > (SIZE_MAX - 2) / 6)
        return -ENOMEM;
    int rc = vt_proto_buf_reserve(b, 6 * n + 2);
    if (rc < 0)
        return rc;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *o++ = (char)c;
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default: /* other control characters: \u00XX */
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

char *vtp_excerpt(char *dst, size_t cap, const char *s, size_t n) {
    if (cap == 0)
        return dst;
    /* The copy has exactly n bytes (bad bytes become one '?' each), so it either fits whole or
     * leaves room for "..." after the last whole character that fits. */
    size_t room = cap - 1, limit = n <= room ? room : (room >= 3 ? room - 3 : 0);
    size_t o = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t k = vt_utf8_lead_len(c); /* 0: a stray or invalid byte */
        if (k == 0 || k > n - i || vt_utf8_check(s + i, k, NULL) < 0)
            k = 1; /* never copy a broken sequence into a message */
        if (o + k > limit)
            break;
        if (k == 1)
            dst[o] = (c < 0x20 || c == 0x7f || c >= 0x80) ? '?' : (char)c;
        else
            memcpy(dst + o, s + i, k);
        o += k;
        i += k;
    }
    if (i < n && o + 3 <= room) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
    return dst;
}
