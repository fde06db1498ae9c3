/* dtest.h - helpers for vtrackd's tests: a daemon process with a generated configuration, and
 * blocking loopback clients that read its JSON lines. Built on tests/codec's test utilities
 * (scratch folder, ffmpeg-made media, child processes). */
#ifndef DTEST_H
#define DTEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cJSON.h>

#include "codec_test_util.h"

typedef struct dt_daemon {
    pid_t pid;
    int port;
    int http_port;    /* free too: "@HTTP_PORT@" in the configuration */
    char config[512]; /* path of its configuration file */
    char log[512];    /* its stderr */
} dt_daemon;

/* Path of a built program under VT_BUILD_ROOT ("daemon/vtrackd"); static buffer. */
const char *dt_build_path(const char *rel);

/* A small test video in the scratch folder (made once): testsrc2, H.264 or MPEG-4 in .mp4. */
const char *dt_video(const char *name, int w, int h, int frames, int fps);
/* The same in the container `format` names ("mpegts"; "" for the one of the name's suffix). */
const char *dt_video_as(const char *name, int w, int h, int frames, int fps, const char *format);

/* fork(), the child dying with the test process (PR_SET_PDEATHSIG) even when a failed assertion
 * ends it abruptly: in the child 0, else the child's pid or -1. */
pid_t dt_fork(void);

/* fork+exec argv with environment env (NULL: this one's), its standard error (and its standard
 * output when out_too, else /dev/null) written to the file `log`, its standard input /dev/null
 * when out_too is 0; the child dies with the test process (dt_fork). The child's pid, or -1. */
pid_t dt_spawn_logged(char *const argv[], char *const env[], const char *log, int out_too);

/* Write `json` (with every "@PORT@" replaced by a free port, "@HTTP_PORT@" by another) as the
 * daemon's configuration and start vtrackd on it with `extra_env` (NULL-terminated "K=V" list, may
 * be NULL) added to the environment. Waits until the port accepts connections (up to 20 s). 0 or -1
 * (the log is printed). */
int dt_start(dt_daemon *d, const char *json, char *const *extra_env);

/* Rewrite the configuration file (for SIGHUP tests); "@PORT@" becomes the daemon's port. */
int dt_rewrite_config(dt_daemon *d, const char *json);

/* Send `sig` and wait up to timeout_ms for the exit. Returns the exit status (0..255), 128+N
 * for death by signal N, or -1 on timeout (the daemon is then killed). *elapsed_ms may be NULL. */
int dt_stop(dt_daemon *d, int sig, int timeout_ms, int64_t *elapsed_ms);

/* Does the daemon's log contain `needle`? */
int dt_log_has(const dt_daemon *d, const char *needle);

/* Wait up to timeout_ms for a log line containing `needle`: 1 when it came, else 0. */
int dt_wait_log(const dt_daemon *d, const char *needle, int timeout_ms);

/* Print the daemon's log to stderr (on failures). */
void dt_log_dump(const dt_daemon *d);

typedef struct dt_conn {
    int fd;
    char *buf;
    size_t len, off, cap;
    uint64_t next_seq; /* the seq the next line must carry */
    int seq_gap;       /* a line arrived with a seq other than next_seq */
    char line[1];      /* unused */
} dt_conn;

/* Connect to 127.0.0.1:port (rcvbuf > 0 sets SO_RCVBUF first). 0 or -1. */
int dt_connect(dt_conn *c, int port, int rcvbuf);

/* Connect to [::1]:port. 0 or -1. */
int dt_connect6(dt_conn *c, int port);

/* 1 when this machine can bind [::1] (IPv6 loopback configured), else 0. */
int dt_have_ipv6_loopback(void);
void dt_close(dt_conn *c);

/* Send raw bytes. 0 or -1. */
int dt_send(dt_conn *c, const char *data);

/* Next line (NUL-terminated, without "\n", valid until the next call) within timeout_ms:
 * 1, 0 at EOF (or reset), -2 on timeout. Checks `seq` continuity as a side effect. */
int dt_read_line(dt_conn *c, int timeout_ms, char **line);

/* Next message parsed (the caller frees it), NULL on EOF/timeout. */
cJSON *dt_read_msg(dt_conn *c, int timeout_ms);

/* Skip messages until one of type `type` (and, if `field` is set, with that string field equal
 * to `value`); returns it (caller frees) or NULL on EOF/timeout. */
cJSON *dt_wait_type(dt_conn *c, const char *type, const char *field, const char *value,
                    int timeout_ms);

/* Send a command line and return the answer (reply or error; events before it are skipped). */
cJSON *dt_command(dt_conn *c, const char *line, int timeout_ms);

/* Wait for EOF (1), or 0 on timeout. Lines read meanwhile are discarded. */
int dt_wait_eof(dt_conn *c, int timeout_ms);

/* Connect and read the greeting (hello, protocol 1). 0 or -1. */
int dt_hello(dt_conn *c, int port);

/* Is j a message of type t? */
int dt_is_type(const cJSON *j, const char *t);

/* Assert (Check) that j is the reply to `op`; frees j. */
void dt_expect_reply(cJSON *j, const char *op);

/* String / number member helpers (NULL / dflt when absent). */
const char *dt_str(const cJSON *o, const char *k);
double dt_num(const cJSON *o, const char *k, double dflt);

/* CLOCK_REALTIME in milliseconds; RFC 3339 "...Z" with milliseconds to the same. */
int64_t dt_realtime_ms(void);
int64_t dt_parse_wallclock_ms(const char *s);

/* p-quantile (0..1) of n values (sorted in place). */
double dt_quantile(double *v, int n, double p);

#endif
