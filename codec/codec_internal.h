/* codec_internal.h - helpers shared by the codec/ sources; not installed, not public. */
#ifndef VT_CODEC_INTERNAL_H
#define VT_CODEC_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "vt_base.h"

/* The wall clock (CLOCK_REALTIME) in microseconds; the monotonic one is base/'s vt_mono_us. */
int64_t vtc_real_us(void);

/* vt_fmt into err (nothing if err is NULL or errlen 0: base/'s cut by whole UTF-8 characters)
 * and return `ret`, so that error paths read `return vtc_fail(ret, err, errlen, "...", ...)`. */
int vtc_fail(int ret, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* av_strerror into a caller buffer, never empty. */
const char *vtc_averr(int errnum, char *buf, size_t buflen);

/* 5x7 bitmap font: fills 7 row bitmasks (bit 4 = leftmost column) for `c`; characters without
 * a glyph draw as a hollow box. Lower case maps to upper case. */
void vtc_font_rows(int c, uint8_t rows[7]);
#define VTC_FONT_W 5
#define VTC_FONT_H 7

#endif
