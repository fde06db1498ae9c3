/* utf8.c - vt_utf8_check, the UTF-8 validator (RFC 3629), and vt_utf8_lead_len. */
#include <errno.h>
#include <string.h>

#include "vt_base.h"

/* Bytes 0x80..0xBF continue a UTF-8 sequence. */
static inline int cont(unsigned char c) {
    return (c & 0xC0) == 0x80;
}

size_t vt_utf8_lead_len(unsigned char c) {
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

int vt_utf8_check(const char *str, size_t n, size_t *bad_at) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time (commands are mostly ASCII). */
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        size_t k;
        if (c < 0x80) {
            k = 1;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 4;
        } else {
            goto bad;
        }
        if (k > n - i)
            goto bad;
        for (size_t j = 1; j < k; j++)
            if (!cont(s[i + j]))
                goto bad;
        /* The second byte's range excludes overlong forms, surrogates and > U+10FFFF. */
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F) ||
            (c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))
            goto bad;
        i += k;
    }
    return 0;
bad:
    if (bad_at)
        *bad_at = i;
    return -EILSEQ;
}
