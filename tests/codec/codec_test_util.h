/* codec_test_util.h - helpers for codec/'s tests: a scratch folder, media made with the ffmpeg
 * tool, child processes (servers) and clocks. */
#ifndef CODEC_TEST_UTIL_H
#define CODEC_TEST_UTIL_H

#include <stdint.h>
#include <sys/types.h>

/* Create (once) and return a scratch folder under /tmp; tu_cleanup() removes it. */
const char *tu_dir(void);
void tu_cleanup(void);
/* tu_dir()/name in a static rotating buffer (8 slots). */
const char *tu_path(const char *name);

/* Run `ffmpeg -hide_banner -nostdin -loglevel error -y <args>`; returns its exit status. */
int tu_ffmpeg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whole-file helpers. */
long tu_file_size(const char *path);
int tu_truncate(const char *path, long size);
/* Overwrite `len` bytes at `offset` with deterministic garbage. */
int tu_scribble(const char *path, long offset, long len);
int tu_write_file(const char *path, const void *data, size_t len);

/* Spawn argv (argv[0] is a path) with stdout and stdin on pipes; returns the pid and sets
 * *out_fd (its stdout) and *in_fd (its stdin: our servers exit when it closes, so that they
 * die with the test process however it ends). */
pid_t tu_spawn(char *const argv[], int *out_fd, int *in_fd);
/* Read one line from fd within timeout_ms; returns its length or -1. */
int tu_read_line(int fd, char *buf, int len, int timeout_ms);
/* Kill with `sig`, and reap when sig is SIGKILL/SIGTERM. */
void tu_kill(pid_t pid, int sig);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int tu_free_port(void);
/* Wait until 127.0.0.1:port accepts a connection; 0 or -1 after timeout_ms. */
int tu_wait_port(int port, int timeout_ms);

int64_t tu_now_ms(void);
void tu_sleep_ms(int ms);

/* A call that blocks, cut short: fn(arg) runs on a thread of its own, cancel(arg) comes 300 ms
 * later, then the thread is joined. Returns how many ms after the cancel fn came back, by the
 * tu_now_ms() it stored in *done_ms as it returned. */
int64_t tu_cancel_blocked(void *(*fn)(void *), void (*cancel)(void *), void *arg,
                          const int64_t *done_ms);

/* Is the ffmpeg tool's encoder `name` available? */
int tu_have_encoder(const char *name);

#endif
