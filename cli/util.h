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

/* Sort v[0..n) ascending (benchmark samples). */
void vt_cli_sort(double *v, int n);

/* Median of v[0..n) (mean of the middle two for even n; 0 when empty); sorts v. */
double vt_cli_median(double *v, int n);

#endif
