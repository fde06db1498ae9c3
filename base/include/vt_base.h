/*
 * vt_base.h - the one leaf every module builds on: formatting into a fixed-size buffer without
 * cutting a UTF-8 character, the UTF-8 check, growing arrays, writing whole buffers, the
 * monotonic clock, and the IoU of two boxes.
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

/* Length of the sequence lead byte c announces (1 for ASCII, 2..4); 0 for a continuation byte
 * or a byte no valid sequence starts with. */
size_t vt_utf8_lead_len(unsigned char c);

/* ---------------------------------------------------------------------------------------------
 * Memory and files
 * ------------------------------------------------------------------------------------------- */

/* The array p of *cap elements of `size` bytes with room for at least `need`: p itself when it
 * has it, else p reallocated to twice *cap (`first` when *cap is 0) or to `need` if that is
 * more, and *cap updated. NULL when out of memory (or the size overflows): p and *cap are left as
 * they were. */
void *vt_grow(void *p, size_t size, int need, int *cap, int first);

/* Room for `need` bytes in the buffer *buf of *cap bytes: reallocated to exactly `need` when it
 * is smaller (frames of one size reuse it). 0, or -ENOMEM with *buf and *cap as they were. */
int vt_reserve(uint8_t **buf, size_t *cap, size_t need);

/* Write all of p[0..n) to fd, again after EINTR and short writes. 0 or -errno. */
int vt_write_all(int fd, const void *p, size_t n);

/* ---------------------------------------------------------------------------------------------
 * Clock
 *
 * CLOCK_MONOTONIC, the one clock of every duration, deadline and timestamp named *_mono_* in the
 * tree (vt_frame.arrival_mono_us, vt_stream_snapshot.heartbeat_mono_us, ...): values from
 * different modules compare. Never decreases; not the wall clock.
 * ------------------------------------------------------------------------------------------- */

int64_t vt_mono_us(void); /* microseconds */
double vt_mono_s(void);   /* seconds, for measuring: benchmarks, timings, progress */

/* ---------------------------------------------------------------------------------------------
 * Boxes
 * ------------------------------------------------------------------------------------------- */

/* IoU of two boxes {x, y, w, h}: intersection area over union area, with continuous
 * coordinates (a box covers [x, x+w) x [y, y+h)); 0 when either box has w or h <= 0. */
double vt_box_iou(const double a[4], const double b[4]);

#ifdef __cplusplus
}
#endif

#endif /* VT_BASE_H */
