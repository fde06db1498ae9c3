/* vtrack track - not built yet (see the open issues). */
#include <stdio.h>

#include "commands.h"

int vt_cmd_track(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "vtrack track: not available in this build yet\n");
    return 2;
}
