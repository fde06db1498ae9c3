/*
 * proto_int.h - helpers shared by proto/'s sources; not installed, not part of the API.
 */
#ifndef VT_PROTO_INT_H
#define VT_PROTO_INT_H

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

#endif /* VT_PROTO_INT_H */
