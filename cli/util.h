/* util.h - small helpers shared by the vtrack subcommands. */
#ifndef VT_CLI_UTIL_H
#define VT_CLI_UTIL_H

#include <stddef.h>

/* Print "vtrack CMD: <message>" and a hint to stderr; returns 2 (the usage-error status). */
int vt_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Parse a whole decimal integer within [min, max]. 0 or -1. */
int vt_cli_parse_long(const char *s, long min, long max, long *out);

/* Monotonic seconds. */
double vt_cli_now(void);

/*
 * The default model: $VT_MODEL if set, else the shipped weights next to the program
 * (<build>/../weights/default.safetensors in a build tree, or the installed data directory),
 * else "lab". Returns a pointer to `buf` or to a static string.
 */
const char *vt_cli_default_model(char *buf, size_t len);

#endif
