/*
 * vt_base.h - the one leaf every module builds on: formatting into a fixed-size buffer without
 * cutting a UTF-8 character, the UTF-8 check, and the monotonic clock.
 *
 * libc only, no state: every function may be called from any thread. Errors are negative errno
 * values, as in proto/ and model/.
 */
#ifndef VT_BASE_H
#define VT_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define VT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define VT_PRINTF(f, a)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Formatting into fixed-size buffers
 *
 * The rule for every message that may hold outside text (URLs, labels, paths, FFmpeg's words):
 * what does not fit is dropped by whole characters. vt_fmt() writes like snprintf into
 * dst[cap], but when it cuts, the cut moves back to the start of the UTF-8 character it would
 * split, and nothing is appended (no partial sequence, no ellipsis). A string whose last
 * character is incomplete even before the cut loses that incomplete tail too, so valid UTF-8 in
 * gives valid UTF-8 out, however small cap is. dst is always NUL-terminated; with dst NULL or
 * cap 0 nothing is written ("err may be NULL" in the modules' conventions). An output error of
 * vsnprintf leaves "". Returns strlen(dst) (0 when nothing was written), so that a caller can
 * append after it.
 * ------------------------------------------------------------------------------------------- */

size_t vt_fmt(char *dst, size_t cap, const char *fmt, ...) VT_PRINTF(3, 4);
size_t vt_vfmt(char *dst, size_t cap, const char *fmt, va_list ap) VT_PRINTF(3, 0);

/* ---------------------------------------------------------------------------------------------
 * UTF-8
 * ------------------------------------------------------------------------------------------- */

/* Check that s[0..n) is valid UTF-8 (RFC 3629: no overlong forms, surrogates or values above
 * U+10FFFF; U+0000 is valid). Returns 0, or -EILSEQ with the offset of the first bad byte in
 * *bad_at (may be NULL): the start of the first sequence that is invalid or incomplete. */
int vt_utf8_check(const char *s, size_t n, size_t *bad_at);

/* ---------------------------------------------------------------------------------------------
 * Clock
 *
 * CLOCK_MONOTONIC, the one clock of every duration, deadline and timestamp named *_mono_* in the
 * tree (vt_frame.arrival_mono_us, vt_stream_snapshot.heartbeat_mono_us, ...): values from
 * different modules compare. Never decreases; not the wall clock.
 * ------------------------------------------------------------------------------------------- */

int64_t vt_mono_us(void); /* microseconds */
double vt_mono_s(void);   /* seconds, for measuring: benchmarks, timings, progress */

#ifdef __cplusplus
}
#endif

#endif /* VT_BASE_H */
