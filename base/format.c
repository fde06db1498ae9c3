/* format.c - vt_fmt, vt_vfmt: printf into a fixed-size buffer, cut by whole UTF-8 characters. */
#include <stdio.h>

#include "vt_base.h"

/* The length to keep of s[0..len) so that it does not end inside a character: drop a lead byte
 * and the continuation bytes after it when they are fewer than it announces. */
static size_t whole_chars(const char *s, size_t len) {
    size_t start = len;
    while (start > 0 && len - start < 3 && ((unsigned char)s[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return len;
    size_t lead = start - 1, k = vt_utf8_lead_len((unsigned char)s[lead]);
    return k > 1 && lead + k > len ? lead : len;
}

size_t vt_vfmt(char *dst, size_t cap, const char *fmt, va_list ap) {
    if (!dst || cap == 0)
        return 0;
    int n = vsnprintf(dst, cap, fmt, ap);
    if (n < 0) {
        dst[0] = '\0';
        return 0;
    }
    size_t len = (size_t)n < cap ? (size_t)n : cap - 1;
    len = whole_chars(dst, len);
    dst[len] = '\0';
    return len;
}

size_t vt_fmt(char *dst, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t len = vt_vfmt(dst, cap, fmt, ap);
    va_end(ap);
    return len;
}
