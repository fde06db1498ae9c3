/* vtrack - the command-line tool: track, eval, train, recalibrate, bench, sub, ctl. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "vt_config.h"

static const vt_cmd_entry commands[] = {
    {"track", vt_cmd_track, "track objects through a video, a camera or a DAVIS folder"},
    {"eval", vt_cmd_eval,
     "score masks (DAVIS), or track and score people registered by boxes (MOT)"},
    {"train", vt_cmd_train, "learn a correspondence model from unlabeled video"},
    {"recalibrate", vt_cmd_recalibrate,
     "take trained weights' batch-norm statistics again at the tracker's scale"},
    {"bench", vt_cmd_bench, "measure encoders and propagation against their peers"},
    {"sub", vt_cmd_sub, "subscribe to a running vtrackd and print its events"},
    {"ctl", vt_cmd_ctl, "send one command to a running vtrackd and print the reply"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: vtrack COMMAND [OPTIONS]    (vtrack COMMAND --help for its options)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n  --version  print the version\n  --help     this help\n");
}

/* What is still buffered must reach its file too: a full disk or a closed pipe is an error,
 * not a silent loss (a command that failed has said why already). */
static int finish(const char *cmd, int rc) {
    errno = 0;
    if ((fflush(stdout) != 0 || ferror(stdout)) && rc == 0) {
        fprintf(stderr, "vtrack%s%s: writing to standard output: %s\n", cmd ? " " : "",
                cmd ? cmd : "", strerror(errno ? errno : EIO));
        return 1;
    }
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("vtrack %s\n", VT_VERSION);
        return finish(NULL, 0);
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return finish(NULL, 0);
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return finish(argv[1], commands[i].run(argc - 1, argv + 1));
    fprintf(stderr, "vtrack: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
