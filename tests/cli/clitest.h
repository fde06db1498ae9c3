/* clitest.h - helpers for the tests that run the real `vtrack` binary (tests/cli/clitest.c). */
#ifndef VT_CLITEST_H
#define VT_CLITEST_H

#include <stddef.h>

/* Path of the vtrack binary under test (set by main from argv). */
extern const char *vtrack;

/* The shipped weights (weights/default.safetensors of the source tree, where vtrack, built as
 * BUILD/cli/vtrack, finds them) into buf; aborts the test when they are missing. */
const char *shipped_weights(char *buf, size_t len);

/* A fresh directory under $TMPDIR (or /tmp); free it with rm_tree(). */
char *make_tmpdir(void);

/* Remove a directory tree and free the path. */
void rm_tree(char *dir);

/* Each test's own fresh directory: the checked fixture tmp_dir_make, tmp_dir_remove makes it
 * before the test and removes it after. */
extern char *tmp_dir;
void tmp_dir_make(void);
void tmp_dir_remove(void);

/* mkdir -p of a printf-style path. */
void mkdirs(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A file's whole contents, NUL-terminated (malloc'd). */
char *slurp(const char *path);

typedef struct run_result {
    int status;
    char *out, *err;
} run_result;

/* Run `vtrack CMD ARGS...` (NULL-terminated) with stdout and stderr captured in files of `tmp`. */
run_result run_vtrack(const char *tmp, const char *cmd, const char *const *args);

/* The same with standard output written to `out_path` (e.g. /dev/full); r.out is then empty. */
run_result run_vtrack_to(const char *tmp, const char *cmd, const char *const *args,
                         const char *out_path);
void run_free(run_result *r);

/* `vtrack CMD ARGS...` fails: exit `status`, and standard error says `says`. */
void check_fails(const char *tmp, const char *cmd, const char *const *args, int status,
                 const char *says);

/* `vtrack CMD --help`: exit 0, and each of opts (NULL-terminated) in its standard output. The
 * result is the caller's, to check more of it and run_free(). */
run_result run_help(const char *tmp, const char *cmd, const char *const *opts);

/* A usage error: the arguments (NULL-terminated) and what standard error must name. */
typedef struct usage_case {
    const char *args[8];
    const char *named;
} usage_case;

/* `vtrack CMD` with the arguments of each of cases[n] exits 2 naming the argument at fault. In
 * the arguments, each placeholder subst[2k] stands for subst[2k + 1] (subst NULL-terminated). */
void check_usage_errors(const char *tmp, const char *cmd, const usage_case *cases, size_t n,
                        const char *const *subst);

/* The last non-empty line of `text` (a pointer into it; its newline replaced). */
const char *last_line(char *text);

#endif
