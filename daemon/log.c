/* log.c - see log.h. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "log.h"
#include "vt_base.h"

static _Atomic int g_level = VTD_LOG_INFO;
static int g_journal; /* stderr is connected to journald */

static const char *level_name(int level) {
    switch (level) {
    case VTD_LOG_ERROR:
        return "error";
    case VTD_LOG_WARNING:
        return "warning";
    case VTD_LOG_NOTICE:
        return "notice";
    case VTD_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

static void vlog(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void vlog(int level, const char *fmt, va_list ap) {
    if (level > atomic_load(&g_level))
        return;
    char line[2048];
    size_t n;
    if (g_journal) {
        n = (size_t)snprintf(line, sizeof line, "<%d>", level);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof line - n,
                              ".%03ld vtrackd %s: ", ts.tv_nsec / 1000000, level_name(level));
    }
    /* Cut by whole characters, one byte kept for the line end. */
    n += vt_vfmt(line + n, sizeof line - n - 1, fmt, ap);
    /* Strip trailing newlines from the message (FFmpeg's end in one), then add exactly one. */
    while (n > 0 && line[n - 1] == '\n')
        n--;
    line[n++] = '\n';
    /* One write per line: lines from different threads never interleave. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void vtd_log(vtd_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog((int)level, fmt, ap);
    va_end(ap);
}

static void av_log_cb(void *avcl, int level, const char *fmt, va_list ap) {
    /* FFmpeg's INFO is chatty (encoder banners, stream dumps): keep it for debug. */
    int ours = level <= AV_LOG_ERROR     ? VTD_LOG_WARNING
               : level <= AV_LOG_WARNING ? VTD_LOG_INFO
                                         : VTD_LOG_DEBUG;
    if (ours > atomic_load(&g_level) || level > AV_LOG_INFO)
        return;
    char msg[1024];
    int prefix = 1;
    av_log_format_line2(avcl, level, fmt, ap, msg, sizeof msg, &prefix);
    if (msg[0] && strcmp(msg, "\n") != 0)
        vtd_log((vtd_log_level)ours, "ffmpeg: %s", msg);
}

void vtd_log_init(vtd_log_level level) {
    atomic_store(&g_level, (int)level);
    const char *js = getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long long dev, ino;
    if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
        (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
        g_journal = 1;
    av_log_set_callback(av_log_cb);
}

void vtd_log_set_level(vtd_log_level level) {
    atomic_store(&g_level, (int)level);
}

static const char *const level_names[] = {
    [VTD_LOG_ERROR] = "error", [VTD_LOG_WARNING] = "warning", [VTD_LOG_NOTICE] = "notice",
    [VTD_LOG_INFO] = "info",   [VTD_LOG_DEBUG] = "debug",
};
_Static_assert(sizeof level_names / sizeof level_names[0] == VTD_LOG_DEBUG + 1,
               "a name for every log level");

const char *vtd_log_level_name(vtd_log_level level) {
    return level >= VTD_LOG_ERROR && level <= VTD_LOG_DEBUG ? level_names[level] : NULL;
}
