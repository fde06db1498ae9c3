/* cli_util.h - small helpers shared by the vtrack subcommands. */
#ifndef VT_CLI_UTIL_H
#define VT_CLI_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Print "vtrack CMD: <message>" and a hint to stderr; returns 2 (the usage-error status). */
int vt_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The usage error for what getopt_long (with opterr = 0 and a ':' leading its short options)
 * returned as `c`: ':' an option without its value, anything else an unknown option; the
 * option is argv[optind - 1]. Returns 2. */
int vt_cli_option_error(const char *cmd, int c, char *const *argv);

/* Parse a whole decimal integer within [min, max]. 0 or -1. */
int vt_cli_parse_long(const char *s, long min, long max, long *out);
/* Parse a whole finite decimal number within [min, max]. 0 or -1. */
int vt_cli_parse_double(const char *s, double min, double max, double *out);

/* The names in folder `dir` that do not start with '.', sorted (strcmp), into *names (the
 * caller frees each and the array). How many, or -errno when the folder cannot be read (or
 * -ENOMEM). */
int vt_cli_list_dir(const char *dir, char ***names);

/* Make folder `path` and its missing parents (mode 0755), as mkdir -p. 0, or -errno (-ENOTDIR
 * when `path` exists and is not a folder; -ENAMETOOLONG past 4095 bytes). */
int vt_cli_mkdir_p(const char *path);

/* Sort v[0..n) ascending (benchmark samples). */
void vt_cli_sort(double *v, int n);

/* Median of v[0..n) (mean of the middle two for even n; 0 when empty); sorts v. */
double vt_cli_median(double *v, int n);

/*
 * Run argv[0] (a path) with argv, its stdout and stderr read through a pipe, no shell. Returns a
 * FILE to read them from, the child's pid in *pid; vt_cli_spawn_close() waits and returns its
 * exit status (-1 if it did not exit normally). NULL if the pipe or fork failed.
 */
FILE *vt_cli_spawn(char *const argv[], pid_t *pid);
int vt_cli_spawn_close(FILE *f, pid_t pid);

#endif
