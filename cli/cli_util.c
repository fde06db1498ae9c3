/* cli_util.c - small helpers shared by the vtrack subcommands. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "vt_base.h"

int vt_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vtrack %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'vtrack %s --help'.\n", cmd);
    va_end(ap);
    return 2;
}

int vt_cli_option_error(const char *cmd, int c, char *const *argv) {
    const char *opt = argv[optind - 1];
    return c == ':' ? vt_cli_usage_error(cmd, "option '%s' needs a value", opt)
                    : vt_cli_usage_error(cmd, "unknown option '%s'", opt);
}

int vt_cli_parse_long(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int vt_cli_parse_double(const char *s, double min, double max, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void vt_cli_sort(double *v, int n) {
    if (n > 1)
        qsort(v, (size_t)n, sizeof *v, cmp_double);
}

double vt_cli_median(double *v, int n) {
    if (n <= 0)
        return 0;
    vt_cli_sort(v, n);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

FILE *vt_cli_spawn(char *const argv[], pid_t *pid) {
    int fd[2];
    if (pipe(fd) < 0)
        return NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t c = fork();
    if (c < 0) {
        close(fd[0]);
        close(fd[1]);
        return NULL;
    }
    if (c == 0) {
        dup2(fd[1], STDOUT_FILENO);
        dup2(fd[1], STDERR_FILENO);
        close(fd[0]);
        close(fd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    if (!f) {
        close(fd[0]);
        waitpid(c, NULL, 0);
        return NULL;
    }
    *pid = c;
    return f;
}

int vt_cli_spawn_close(FILE *f, pid_t pid) {
    char drain[512];
    while (fgets(drain, sizeof drain, f)) /* let the child finish writing */
        ;
    fclose(f);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int vt_cli_list_dir(const char *dir, char ***names) {
    *names = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int n = 0, cap = 0, rc = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char **nv = vt_grow(v, sizeof *v, n + 1, &cap, 32);
        if (!nv || !(nv[n] = strdup(e->d_name))) {
            v = nv ? nv : v;
            rc = -ENOMEM;
            break;
        }
        v = nv;
        n++;
    }
    closedir(d);
    if (rc < 0) {
        for (int i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *names = v;
    return n;
}

int vt_cli_mkdir_p(const char *path) {
    char buf[4096];
    if (strlen(path) >= sizeof buf)
        return -ENAMETOOLONG;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}
