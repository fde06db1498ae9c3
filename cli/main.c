/* vtrack - the command-line tool: track, eval, train, bench, sub, ctl. */
#include <stdio.h>
#include <string.h>

#include "vt_config.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vtrack COMMAND [OPTIONS]\n"
               "\n"
               "commands:\n"
               "  --version   print the version\n"
               "  --help      this help\n");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("vtrack %s\n", VT_VERSION);
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
