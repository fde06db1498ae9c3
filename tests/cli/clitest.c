/*
 * clitest.c - helpers for the tests that run the real `vtrack` binary: temporary directories,
 * file contents, and running a subcommand with its output captured.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clitest.h"

const char *vtrack;

const char *shipped_weights(char *buf, size_t len) {
    const char *slash = strrchr(vtrack, '/');
    snprintf(buf, len, "%.*s/../../weights/default.safetensors", slash ? (int)(slash - vtrack) : 1,
             slash ? vtrack : ".");
    ck_assert_msg(access(buf, R_OK) == 0, "no weights: %s", buf);
    return buf;
}

char *make_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char *dir = NULL;
    ck_assert_int_gt(asprintf(&dir, "%s/vt-eval-XXXXXX", base && *base ? base : "/tmp"), 0);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void rm_tree(char *dir) {
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

void check_fails(const char *tmp, const char *cmd, const char *const *args, int status,
                 const char *says) {
    run_result r = run_vtrack(tmp, cmd, args);
    ck_assert_msg(r.status == status, "exit %d, want %d (%s)", r.status, status, r.err);
    ck_assert_msg(strstr(r.err, says) != NULL, "stderr lacks '%s': %s", says, r.err);
    run_free(&r);
}

run_result run_help(const char *tmp, const char *cmd, const char *const *opts) {
    run_result r = run_vtrack(tmp, cmd, (const char *[]){"--help", NULL});
    ck_assert_int_eq(r.status, 0);
    for (int i = 0; opts[i]; i++)
        ck_assert_msg(strstr(r.out, opts[i]) != NULL, "--help lacks %s", opts[i]);
    return r;
}

void check_usage_errors(const char *tmp, const char *cmd, const usage_case *cases, size_t n,
                        const char *const *subst) {
    for (size_t i = 0; i < n; i++) {
        const char *args[8];
        for (int k = 0; k < 8; k++) {
            args[k] = cases[i].args[k];
            for (int s = 0; args[k] && subst[s]; s += 2)
                if (strcmp(args[k], subst[s]) == 0) {
                    args[k] = subst[s + 1];
                    break;
                }
        }
        run_result r = run_vtrack(tmp, cmd, args);
        ck_assert_msg(r.status == 2, "case %zu: exit %d (%s)", i, r.status, r.err);
        ck_assert_msg(strstr(r.err, cases[i].named) != NULL, "case %zu: stderr lacks '%s': %s", i,
                      cases[i].named, r.err);
        run_free(&r);
    }
}

char *tmp_dir;

void tmp_dir_make(void) {
    tmp_dir = make_tmpdir();
}

void tmp_dir_remove(void) {
    rm_tree(tmp_dir);
    tmp_dir = NULL;
}

void mkdirs(const char *fmt, ...) {
    char path[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    ck_assert_msg(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
}

char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s", path);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    int c;
    while ((c = fgetc(f)) != EOF)
        fputc(c, m);
    fclose(m);
    fclose(f);
    return buf;
}

void run_free(run_result *r) {
    free(r->out);
    free(r->err);
}

run_result run_vtrack(const char *tmp, const char *cmd, const char *const *args) {
    return run_vtrack_to(tmp, cmd, args, NULL);
}

run_result run_vtrack_to(const char *tmp, const char *cmd, const char *const *args,
                         const char *to) {
    char out_path[4096], err_path[4096];
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", tmp);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", tmp);
    const char *argv[64] = {vtrack, cmd};
    int n = 2;
    for (; args[n - 2]; n++) {
        ck_assert_int_lt(n, 63);
        argv[n] = args[n - 2];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fo = to ? open(to, O_WRONLY) : open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        execv(vtrack, (char *const *)argv);
        _exit(127);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st), "vtrack %s died (signal %d)", cmd, WTERMSIG(st));
    run_result r = {.status = WEXITSTATUS(st),
                    .out = to ? calloc(1, 1) : slurp(out_path),
                    .err = slurp(err_path)};
    return r;
}

/* The last non-empty line of `text` (a pointer into it; its newline replaced). */
const char *last_line(char *text) {
    size_t len = strlen(text);
    while (len && text[len - 1] == '\n')
        text[--len] = '\0';
    char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}
