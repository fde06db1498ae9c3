/* util.c - the wall clock, error strings and state names shared by the codec/ sources. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libavutil/error.h>

#include "codec_internal.h"
#include "vt_codec.h"

int64_t vtc_real_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int vtc_fail(int ret, char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vt_vfmt(err, errlen, fmt, ap);
    va_end(ap);
    return ret;
}

const char *vtc_averr(int errnum, char *buf, size_t buflen) {
    if (av_strerror(errnum, buf, buflen) < 0 || !buf[0])
        snprintf(buf, buflen, "error %d", errnum);
    return buf;
}

const char *vt_codec_strerror(int errnum, char *buf, size_t buflen) {
    if (!buf || !buflen)
        return "";
    return vtc_averr(errnum, buf, buflen);
}

const char *vt_source_state_name(vt_source_state state) {
    switch (state) {
    case VT_SOURCE_STATE_IDLE:
        return "idle";
    case VT_SOURCE_STATE_CONNECTING:
        return "connecting";
    case VT_SOURCE_STATE_UP:
        return "up";
    case VT_SOURCE_STATE_STALLED:
        return "stalled";
    case VT_SOURCE_STATE_BACKOFF:
        return "backoff";
    case VT_SOURCE_STATE_ENDED:
        return "ended";
    }
    return "unknown";
}

const char *vt_source_kind_name(vt_source_kind kind) {
    switch (kind) {
    case VT_SOURCE_KIND_FILE:
        return "file";
    case VT_SOURCE_KIND_IMAGES:
        return "images";
    case VT_SOURCE_KIND_DEVICE:
        return "device";
    case VT_SOURCE_KIND_RTSP:
        return "rtsp";
    case VT_SOURCE_KIND_HTTP:
        return "http";
    case VT_SOURCE_KIND_NETWORK:
        return "network";
    }
    return "unknown";
}
