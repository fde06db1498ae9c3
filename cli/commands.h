/* commands.h - the subcommands of `vtrack`, one source file each (cli/<name>.c). */
#ifndef VT_CLI_COMMANDS_H
#define VT_CLI_COMMANDS_H

#include <stdio.h>

/* Each takes the arguments after the command name (argv[0] is the command) and returns the
 * process exit status: 0 ok, 1 runtime failure, 2 usage error, 78 bad configuration. */
int vt_cmd_track(int argc, char **argv);
int vt_cmd_eval(int argc, char **argv);
int vt_cmd_train(int argc, char **argv);
int vt_cmd_recalibrate(int argc, char **argv);
int vt_cmd_bench(int argc, char **argv);
int vt_cmd_sub(int argc, char **argv);
int vt_cmd_ctl(int argc, char **argv);

/* `vtrack eval --mot` (cli/cmd_eval_mot.c), dispatched by vt_cmd_eval, and its help text. */
int vt_eval_mot(int argc, char **argv);
void vt_eval_mot_usage(FILE *f);

/* `vtrack bench track` (cli/cmd_bench_track.c), dispatched by vt_cmd_bench. */
int vt_bench_track(int argc, char **argv);

/* An entry of a table of commands (vtrack.c) or subcommands (vtrack bench): its name, what
 * runs it (as above) and its line of help. */
typedef struct vt_cmd_entry {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} vt_cmd_entry;

#endif
