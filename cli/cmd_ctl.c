/* vtrack ctl - send one command to a running vtrackd and print its answer. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "client.h"
#include "commands.h"
#include "cli_util.h"

static const char usage_text[] =
    "usage: vtrack ctl [HOST:PORT] OP [KEY=VALUE | JSON-OBJECT ...] [--token TOKEN]\n"
    "                  [--timeout SECONDS] [--pretty]\n"
    "       vtrack ctl [HOST:PORT] --raw '{\"op\":...}'\n"
    "\n"
    "Sends one command to vtrackd (default $VTRACK_ADDR, else 127.0.0.1:7878) and prints the\n"
    "answer, a reply or an error, as the JSON line the server sent (see proto/PROTOCOL.md).\n"
    "Arguments after OP are merged into the command: KEY=VALUE (VALUE is read as JSON when it\n"
    "is valid JSON, else taken as a string) or whole JSON objects. Examples:\n"
    "\n"
    "  vtrack ctl list\n"
    "  vtrack ctl stats --pretty\n"
    "  vtrack ctl track stream=cam1 label=person box=[252,218,32,90]\n"
    "  vtrack ctl add_stream '{\"stream\":\"cam2\",\"url\":\"rtsp://10.0.0.7/s1\"}'\n"
    "  vtrack ctl untrack stream=cam1 object=1\n"
    "  vtrack ctl forget                 (clear the server's saved state)\n"
    "  vtrack ctl reset_model stream=cam1  (back to the shipped model: per-camera adaptation)\n"
    "\n"
    "  --raw JSON      send this command line exactly\n"
    "  --token TOKEN   the server's token (default $VTRACK_TOKEN when the server asks)\n"
    "  --timeout S     wait at most S seconds for the answer (default 10)\n"
    "  --pretty        print the answer indented\n"
    "\n"
    "Exit status: 0 for a reply, 1 for an error answer or a failed connection, 2 for a usage\n"
    "error.\n";

/* Merge one argument into the command object. 0 or -1 (message printed). */
static int merge_arg(cJSON *cmd, const char *arg) {
    if (arg[0] == '{') {
        cJSON *o = cJSON_Parse(arg);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            vt_cli_usage_error("ctl", "'%s' is not a JSON object", arg);
            return -1;
        }
        while (o->child) {
            cJSON *it = cJSON_DetachItemViaPointer(o, o->child);
            cJSON_DeleteItemFromObjectCaseSensitive(cmd, it->string);
            cJSON_AddItemToObject(cmd, it->string, it);
        }
        cJSON_Delete(o);
        return 0;
    }
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        vt_cli_usage_error("ctl", "'%s' is neither KEY=VALUE nor a JSON object", arg);
        return -1;
    }
    char key[128];
    size_t n = (size_t)(eq - arg);
    if (n >= sizeof key) {
        vt_cli_usage_error("ctl", "key too long in '%s'", arg);
        return -1;
    }
    memcpy(key, arg, n);
    key[n] = 0;
    cJSON *v = cJSON_Parse(eq + 1);
    if (!v)
        v = cJSON_CreateString(eq + 1);
    cJSON_DeleteItemFromObjectCaseSensitive(cmd, key);
    cJSON_AddItemToObject(cmd, key, v);
    return 0;
}

int vt_cmd_ctl(int argc, char **argv) {
    static const struct option lo[] = {
        {"raw", required_argument, 0, 'r'},     {"token", required_argument, 0, 't'},
        {"timeout", required_argument, 0, 'T'}, {"pretty", no_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    const char *raw = NULL, *token = NULL, *addr = NULL;
    long timeout = 10;
    int pretty = 0;
    optind = 1;
    opterr = 0;
    int c;
    /* '+'-less getopt permutes, so options may follow the operands. */
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 'r':
            raw = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 'T':
            if (vt_cli_parse_long(optarg, 1, 86400, &timeout) < 0)
                return vt_cli_usage_error("ctl", "--timeout '%s': want 1..86400 seconds", optarg);
            break;
        case 'p':
            pretty = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return vt_cli_option_error("ctl", c, argv);
        }
    }
    int i = optind;
    if (i < argc && strchr(argv[i], ':') && !strchr(argv[i], '=') && argv[i][0] != '{')
        addr = argv[i++];
    char *text = NULL;
    if (raw) {
        if (i < argc)
            return vt_cli_usage_error("ctl", "--raw takes no OP or arguments ('%s')", argv[i]);
        if (strchr(raw, '\n'))
            return vt_cli_usage_error("ctl", "--raw: the command must be one line");
        text = strdup(raw);
    } else {
        if (i >= argc)
            return vt_cli_usage_error("ctl", "no OP given (list, stats, track, ...)");
        cJSON *cmd = cJSON_CreateObject();
        cJSON_AddStringToObject(cmd, "op", argv[i++]);
        cJSON_AddNumberToObject(cmd, "id", 1);
        for (; i < argc; i++)
            if (merge_arg(cmd, argv[i]) < 0) {
                cJSON_Delete(cmd);
                return 2;
            }
        text = cJSON_PrintUnformatted(cmd);
        cJSON_Delete(cmd);
    }
    if (!text)
        return 1;
    vt_client cl;
    char err[512];
    int status = 1;
    if (vt_client_open(&cl, addr, token, (int)(timeout * 1000), err, sizeof err) < 0) {
        fprintf(stderr, "vtrack ctl: %s\n", err);
        goto done;
    }
    if (vt_client_send(&cl, text) < 0) {
        fprintf(stderr, "vtrack ctl: send: %s\n", strerror(errno));
        goto done;
    }
    for (;;) {
        char *line;
        size_t len;
        int rc = vt_client_read(&cl, (int)(timeout * 1000), &line, &len);
        if (rc <= 0) {
            fprintf(stderr, "vtrack ctl: no answer (%s)\n",
                    rc == 0    ? "connection closed"
                    : rc == -2 ? "timed out"
                               : strerror(errno));
            break;
        }
        cJSON *j = cJSON_Parse(line);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
        int is_reply = cJSON_IsString(type) && strcmp(type->valuestring, "reply") == 0;
        int is_error = cJSON_IsString(type) && strcmp(type->valuestring, "error") == 0;
        if (is_reply || is_error) {
            char *out = pretty && j ? cJSON_Print(j) : NULL;
            printf("%s\n", out ? out : line);
            free(out);
            status = is_reply ? 0 : 1;
            cJSON_Delete(j);
            break;
        }
        cJSON_Delete(j); /* an event of an earlier subscription: not our answer */
    }
done:
    fflush(stdout);
    vt_client_close(&cl);
    free(text);
    return status;
}
