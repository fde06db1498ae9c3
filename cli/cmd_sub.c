/* vtrack sub - subscribe to a running vtrackd and print its events, raw or one line each. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "client.h"
#include "commands.h"
#include "cli_util.h"
#include "vt_proto.h"

static const char usage_text[] =
    "usage: vtrack sub [HOST:PORT] [--stream NAME ...] [--masks] [--pretty] [--token TOKEN]\n"
    "                  [--count N] [--timeout SECONDS]\n"
    "\n"
    "Subscribes to vtrackd (default $VTRACK_ADDR, else 127.0.0.1:7878) and prints its events\n"
    "until interrupted: as the JSON lines it sends, or with --pretty one readable line each.\n"
    "\n"
    "  --stream NAME   only this stream (repeatable; default: every stream)\n"
    "  --masks         frame events carry each object's mask (COCO RLE)\n"
    "  --pretty        one human-readable line per event\n"
    "  --token TOKEN   the server's token (default $VTRACK_TOKEN when the server asks)\n"
    "  --count N       exit after N frame events\n"
    "  --timeout S     give up when nothing arrives for S seconds (default: wait forever)\n"
    "\n"
    "Exit status: 0 when interrupted or after --count, 1 when the connection fails or ends,\n"
    "2 for a usage error.\n";

static volatile sig_atomic_t g_stop;

static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static double num(const cJSON *o, const char *k, double dflt) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : dflt;
}

/* One line per event: "frame 123 cam 14:02:03.123  #1 left tracking 0.87 [x,y,w,h] ..." */
static void print_pretty(const char *line) {
    cJSON *j = cJSON_Parse(line);
    const char *type = str(j, "type");
    if (!type) {
        printf("%s\n", line);
        cJSON_Delete(j);
        return;
    }
    const char *stream = str(j, "stream");
    if (strcmp(type, "frame") == 0) {
        const char *wall = str(j, "wallclock");
        printf("frame %-6.0f %s %s", num(j, "frame", -1), stream ? stream : "?",
               wall && strlen(wall) > 11 ? wall + 11 : "");
        const cJSON *objs = cJSON_GetObjectItemCaseSensitive(j, "objects");
        if (!cJSON_GetArraySize(objs))
            printf("  (no objects)");
        for (const cJSON *o = objs ? objs->child : NULL; o; o = o->next) {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "bbox");
            double bx[4] = {0, 0, 0, 0};
            for (int k = 0; k < 4; k++)
                if (cJSON_IsNumber(cJSON_GetArrayItem(b, k)))
                    bx[k] = cJSON_GetArrayItem(b, k)->valuedouble;
            const char *label = str(o, "label"), *state = str(o, "state");
            printf("  #%.0f%s%s %s %.2f [%.0f,%.0f,%.0f,%.0f]", num(o, "id", 0), label ? " " : "",
                   label ? label : "", state ? state : "?", num(o, "score", 0), bx[0], bx[1], bx[2],
                   bx[3]);
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "mask");
            if (m)
                printf(" mask %zu B", strlen(str(m, "counts") ? str(m, "counts") : ""));
        }
        printf("\n");
    } else if (strcmp(type, "object") == 0) {
        const char *label = str(j, "label"), *reason = str(j, "reason");
        printf("object %s #%.0f%s%s %s", stream ? stream : "?", num(j, "object", 0),
               label ? " " : "", label ? label : "", str(j, "event") ? str(j, "event") : "?");
        if (num(j, "frame", -1) >= 0)
            printf(" at frame %.0f", num(j, "frame", -1));
        printf(reason ? " (%s)\n" : "\n", reason);
    } else if (strcmp(type, "stream") == 0) {
        const char *reason = str(j, "reason");
        printf("stream %s %s", stream ? stream : "?", str(j, "state") ? str(j, "state") : "?");
        if (num(j, "width", 0) > 0)
            printf(" %.0fx%.0f", num(j, "width", 0), num(j, "height", 0));
        printf(reason ? " (%s)\n" : "\n", reason);
    } else if (strcmp(type, "dropped") == 0) {
        printf("dropped %.0f frame events (this client reads too slowly)\n", num(j, "count", 0));
    } else if (strcmp(type, "error") == 0) {
        printf("error %s: %s\n", str(j, "code") ? str(j, "code") : "?",
               str(j, "message") ? str(j, "message") : "");
    } else {
        printf("%s\n", line);
    }
    cJSON_Delete(j);
}

int vt_cmd_sub(int argc, char **argv) {
    static const struct option lo[] = {
        {"stream", required_argument, 0, 's'}, {"masks", no_argument, 0, 'm'},
        {"pretty", no_argument, 0, 'p'},       {"token", required_argument, 0, 't'},
        {"count", required_argument, 0, 'n'},  {"timeout", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    const char *streams[VT_PROTO_FILTER_MAX], *token = NULL, *addr = NULL;
    int nstreams = 0, masks = 0, pretty = 0;
    long count = -1, timeout = -1;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 's':
            if (nstreams >= VT_PROTO_FILTER_MAX)
                return vt_cli_usage_error("sub", "at most %d --stream", VT_PROTO_FILTER_MAX);
            streams[nstreams++] = optarg;
            break;
        case 'm':
            masks = 1;
            break;
        case 'p':
            pretty = 1;
            break;
        case 't':
            token = optarg;
            break;
        case 'n':
            if (vt_cli_parse_long(optarg, 1, 1L << 40, &count) < 0)
                return vt_cli_usage_error("sub", "--count '%s': want a positive integer", optarg);
            break;
        case 'T':
            if (vt_cli_parse_long(optarg, 1, 86400, &timeout) < 0)
                return vt_cli_usage_error("sub", "--timeout '%s': want 1..86400 seconds", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return vt_cli_option_error("sub", c, argv);
        }
    }
    if (optind < argc)
        addr = argv[optind++];
    if (optind < argc)
        return vt_cli_usage_error("sub", "unexpected argument '%s'", argv[optind]);

    struct sigaction sa = {.sa_handler = on_sigint}; /* no SA_RESTART: poll returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    vt_client cl;
    char err[512];
    if (vt_client_open(&cl, addr, token, 5000, err, sizeof err) < 0) {
        fprintf(stderr, "vtrack sub: %s\n", err);
        vt_client_close(&cl);
        return 1;
    }
    cJSON *cmd = cJSON_CreateObject();
    cJSON_AddStringToObject(cmd, "op", "subscribe");
    cJSON_AddStringToObject(cmd, "id", "sub");
    if (nstreams)
        cJSON_AddItemToObject(cmd, "streams", cJSON_CreateStringArray(streams, nstreams));
    cJSON_AddBoolToObject(cmd, "masks", masks);
    char *text = cJSON_PrintUnformatted(cmd);
    cJSON_Delete(cmd);
    int rc = text ? vt_client_send(&cl, text) : -1;
    free(text);
    int status = 1, subscribed = 0;
    long frames = 0;
    char *line;
    size_t len;
    if (rc < 0) {
        fprintf(stderr, "vtrack sub: send: %s\n", strerror(errno));
        goto done;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (!g_stop) {
        rc = vt_client_read(&cl, timeout > 0 ? (int)(timeout * 1000) : -1, &line, &len);
        if (rc == 0) {
            fprintf(stderr, "vtrack sub: the server closed the connection\n");
            break;
        }
        if (rc == -2) {
            fprintf(stderr, "vtrack sub: nothing received for %ld s\n", timeout);
            break;
        }
        if (rc < 0) {
            if (!g_stop)
                fprintf(stderr, "vtrack sub: %s\n", strerror(errno));
            break;
        }
        if (!subscribed) {
            /* The first answer is the subscribe's: an error ends here. */
            cJSON *j = cJSON_Parse(line);
            const char *type = str(j, "type");
            if (type && strcmp(type, "error") == 0) {
                fprintf(stderr, "vtrack sub: %s\n", str(j, "message") ? str(j, "message") : line);
                cJSON_Delete(j);
                break;
            }
            subscribed = type && strcmp(type, "reply") == 0;
            cJSON_Delete(j);
            if (subscribed)
                continue;
        }
        if (pretty)
            print_pretty(line);
        else
            printf("%s\n", line);
        if (ferror(stdout)) {
            /* nobody can read the events any more (a full disk): stop instead of dropping
             * them */
            fprintf(stderr, "vtrack sub: writing to standard output: %s\n", strerror(errno));
            status = 1;
            break;
        }
        if (count > 0 && strstr(line, "\"type\":\"frame\"") && ++frames >= count) {
            status = 0;
            break;
        }
    }
    if (g_stop)
        status = 0;
done:
    fflush(stdout);
    vt_client_close(&cl);
    return status;
}
