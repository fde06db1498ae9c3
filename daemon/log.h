/* log.h - vtrackd's logger: one line per message on stderr, journald priorities under systemd. */
#ifndef VTD_LOG_H
#define VTD_LOG_H

/* Levels as syslog priorities, so they double as sd-daemon "<N>" prefixes. */
typedef enum vtd_log_level {
    VTD_LOG_ERROR = 3,
    VTD_LOG_WARNING = 4,
    VTD_LOG_NOTICE = 5,
    VTD_LOG_INFO = 6,
    VTD_LOG_DEBUG = 7,
} vtd_log_level;

/* Configure the logger: messages above `level` are discarded. When stderr is the journal
 * (systemd sets JOURNAL_STREAM to its device:inode) lines carry "<N>" priority prefixes instead
 * of timestamps. Also routes FFmpeg's log through this logger. Call before any thread starts. */
void vtd_log_init(vtd_log_level level);

/* Change the level at run time (config reload). Thread-safe. */
void vtd_log_set_level(vtd_log_level level);

/* "error", "warning", "notice", "info", "debug" (the config's names); NULL out of range. */
const char *vtd_log_level_name(vtd_log_level level);

/* Log one line (a trailing newline is added). Thread-safe: one write(2) per line. */
void vtd_log(vtd_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define vtd_err(...)    vtd_log(VTD_LOG_ERROR, __VA_ARGS__)
#define vtd_warn(...)   vtd_log(VTD_LOG_WARNING, __VA_ARGS__)
#define vtd_notice(...) vtd_log(VTD_LOG_NOTICE, __VA_ARGS__)
#define vtd_info(...)   vtd_log(VTD_LOG_INFO, __VA_ARGS__)
#define vtd_debug(...)  vtd_log(VTD_LOG_DEBUG, __VA_ARGS__)

#endif
