/*
 * proto_int.h - helpers shared by proto/'s sources; not installed, not part of the API.
 */
#ifndef VT_PROTO_INT_H
#define VT_PROTO_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "vt_proto.h"

/* Append bytes, one char, a decimal integer, or a quoted and escaped JSON string to `b`.
 * All return 0 or -ENOMEM and keep data NUL-terminated. */
int vtp_buf_append(vt_proto_buf *b, const void *p, size_t n);
int vtp_buf_putc(vt_proto_buf *b, char c);
int vtp_buf_put_i64(vt_proto_buf *b, int64_t v);
int vtp_buf_put_u64(vt_proto_buf *b, uint64_t v);
int vtp_buf_put_json_string(vt_proto_buf *b, const char *s, size_t n);

/* Write v in decimal to out (at least 21 bytes), NUL-terminated; returns the length. */
size_t vtp_fmt_u64(char *out, uint64_t v);
size_t vtp_fmt_i64(char *out, int64_t v);

/*
 * Copy at most cap-1 bytes of s[0..n) to dst for use inside a human message: stops at a UTF-8
 * character boundary, replaces control characters with '?', appends "..." when it truncated,
 * NUL-terminates. Returns dst.
 */
char *vtp_excerpt(char *dst, size_t cap, const char *s, size_t n);

/* vsnprintf into dst[cap] without cutting a UTF-8 character in half. */
void vtp_vformat(char *dst, size_t cap, const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 0)))
#endif
    ;

/* Write err[errlen] like snprintf, when err is not NULL and errlen > 0. */
void vtp_seterr(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif /* VT_PROTO_INT_H */
