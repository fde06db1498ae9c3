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

/* The last non-empty line of `text` (a pointer into it; its newline replaced). */
const char *last_line(char *text);

#endif
