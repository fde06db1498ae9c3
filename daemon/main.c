/* vtrackd - the tracking daemon. */
#include <stdio.h>
#include <string.h>

#include "vt_config.h"

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("vtrackd %s\n", VT_VERSION);
        return 0;
    }
    fprintf(argc > 1 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
            "usage: vtrackd [--config FILE] [--listen HOST:PORT] [--stream NAME=URL ...]\n");
    return argc > 1 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
