/*
 * vtrackd - the tracking daemon: live video in, tracked objects out as JSON lines over TCP.
 *
 * vtrackd.c: arguments and the start-up sequence (configuration, model, streams, listeners, then
 * the services of daemon.c and READY=1), and the teardown. See docs/DEPLOYMENT.md.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "daemon.h"
#include "log.h"
#include "notify.h"
#include "vt_config.h"

static const char usage_text[] =
    "usage: vtrackd [--config FILE] [--listen HOST:PORT] [--stream NAME=URL ...] [--model FILE]\n"
    "               [--state-dir DIR] [--log-level LEVEL] [--check] [--version] [--help]\n"
    "\n"
    "Tracks objects in live video and publishes them as JSON lines over TCP (see\n"
    "proto/PROTOCOL.md and docs/DEPLOYMENT.md).\n"
    "\n"
    "  --config FILE        JSON configuration (systemd/vtrackd.json documents every field)\n"
    "  --listen HOST:PORT   listen address (default 127.0.0.1:7878); replaces the config's\n"
    "  --stream NAME=URL    track a source (repeatable; local files allowed); replaces the URL\n"
    "                       of the config's stream NAME if there is one\n"
    "  --model FILE|lab     weights file, or the weight-free Lab features (default: $VT_MODEL,\n"
    "                       the shipped weights, else lab)\n"
    "  --state-dir DIR      keep streams and objects clients register across restarts here\n"
    "                       (default: the config's state_dir, else $STATE_DIRECTORY, else none)\n"
    "  --log-level LEVEL    error, warning, notice, info (default) or debug\n"
    "  --check              validate the configuration and the model, then exit\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the configuration.\n"
    "Exit status: 0 after a clean stop, 78 for a bad configuration, 1 for other failures.\n";

/* ---------------------------------------------------------------------------------------------
 * Start-up
 * ------------------------------------------------------------------------------------------- */

/* Every listen address must name a host this machine resolves (a typo is a configuration
 * error, which systemd does not retry, not a failure to retry forever). A resolver that cannot
 * answer now (EAI_AGAIN) is left to the bind, which fails with status 1 and is retried. */
static int check_listen(const vtd_config *cfg) {
    for (int i = 0; i < cfg->nlisten; i++) {
        struct addrinfo *res;
        int gai;
        if (vtd_server_resolve(cfg->listen[i], &res, &gai) == 0) {
            freeaddrinfo(res);
        } else if (gai != 0 && gai != EAI_AGAIN) { /* (HOST:PORT itself the parser checked) */
            vtd_err("configuration: listen %s: %s", cfg->listen[i],
                    gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
            return -1;
        }
    }
    return 0;
}

static int parse_args(int argc, char **argv, vtd_cli *cli, int *check) {
    enum { O_CHECK = 256, O_VERSION, O_STATE_DIR };
    static const struct option lo[] = {
        {"config", required_argument, 0, 'c'},
        {"listen", required_argument, 0, 'l'},
        {"stream", required_argument, 0, 's'},
        {"model", required_argument, 0, 'm'},
        {"log-level", required_argument, 0, 'L'},
        {"state-dir", required_argument, 0, O_STATE_DIR},
        {"check", no_argument, 0, O_CHECK},
        {"version", no_argument, 0, O_VERSION},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    memset(cli, 0, sizeof *cli);
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 'c':
            cli->config_path = optarg;
            break;
        case 'l':
            cli->listen = optarg;
            break;
        case 's':
            if (cli->nstreams >= VTD_CLI_STREAMS_MAX) {
                fprintf(stderr, "vtrackd: at most %d --stream\n", VTD_CLI_STREAMS_MAX);
                return 2;
            }
            cli->streams[cli->nstreams++] = optarg;
            break;
        case 'm':
            cli->model = optarg;
            break;
        case 'L':
            cli->log_level = optarg;
            break;
        case O_STATE_DIR:
            cli->state_dir = optarg;
            break;
        case O_CHECK:
            *check = 1;
            break;
        case O_VERSION:
            printf("vtrackd %s\n", VT_VERSION);
            return -1;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        case ':':
            fprintf(stderr, "vtrackd: option '%s' needs a value\n%s", argv[optind - 1], usage_text);
            return 2;
        default:
            fprintf(stderr, "vtrackd: unknown option '%s'\n%s", argv[optind - 1], usage_text);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vtrackd: unexpected argument '%s'\n%s", argv[optind], usage_text);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    static vtd d;                   /* static: the loop's handles live in it until the very end */
    d.loop_thread = pthread_self(); /* the loop runs here; loop-only functions assert it */
    int check = 0;
    int rc = parse_args(argc, argv, &d.cli, &check);
    if (rc)
        return rc < 0 ? 0 : rc;
    vtd_log_init(VTD_LOG_INFO);
    char err[1024];
    if (vtd_config_load(&d.cli, &d.cfg, err, sizeof err) < 0) {
        vtd_err("configuration: %s", err);
        return VTD_EX_CONFIG;
    }
    vtd_log_set_level(d.cfg->log_level);
    openblas_set_num_threads(d.cfg->blas_threads);
    char mbuf[4096];
    if (vtd_model_load(vtd_model_name(d.cfg, mbuf, sizeof mbuf), &d.model, err, sizeof err) < 0) {
        vtd_err("model: %s", err);
        vtd_config_free(&d.cfg);
        return VTD_EX_CONFIG;
    }
    int exit_code = 0, nfds;
    uv_loop_t loop;
    d.loop = &loop;
    d.start_ms = vt_mono_us() / 1000;
    signal(SIGPIPE, SIG_IGN); /* a vanished client is an error code, not a signal */
    if ((rc = uv_loop_init(&loop)) < 0 || (rc = vtd_hub_init(&d.hub, &d)) < 0) {
        vtd_err("event loop: %s", uv_strerror(rc));
        return 1;
    }
    /* Streams are created (cheap, no I/O) before anything listens, so that a bad URL or
     * option is a configuration error before the service reports ready. */
    for (int i = 0; i < d.cfg->nstreams; i++) {
        vtd_srec *r;
        if (vtd_streams_add(&d, &d.cfg->streams[i], &r, err, sizeof err) < 0) {
            vtd_err("configuration: streams[%d] (%s): %s", i, d.cfg->streams[i].name, err);
            exit_code = VTD_EX_CONFIG;
            goto teardown;
        }
    }
    /* Sockets from systemd (socket activation): the configuration's `listen` does not apply. */
    nfds = vtd_notify_listen_fds();
    if (nfds == 0 && check_listen(d.cfg) < 0) {
        exit_code = VTD_EX_CONFIG;
        goto teardown;
    }
    char sbuf[4096];
    if (!check && vtd_persist_open(&d, vtd_config_state_dir(d.cfg, sbuf, sizeof sbuf)) < 0) {
        vtd_err("state: out of memory");
        exit_code = 1;
        goto teardown;
    }
    vtd_persist_restore(&d);
    if (check) {
        printf("vtrackd: configuration OK (%d streams, model %s)\n", d.nstreams, d.model->name);
        goto teardown;
    }
    if (vtd_server_listen(&d, nfds) < 0 ||
        (d.cfg->http.enabled && vtd_http_start(&d, &d.http) < 0)) {
        exit_code = 1;
        goto teardown;
    }
    for (vtd_srec *r = d.streams; r; r = r->next)
        if (vtd_streams_start(r) < 0) {
            vtd_err("stream %s: cannot start its threads", r->conf.name);
            exit_code = 1;
            goto teardown;
        }
    vtd_persist_start(&d);
    vtd_start_services(&d);
    uv_run(&loop, UV_RUN_DEFAULT);
    exit_code = d.exit_code;
    goto done;

teardown:
    /* Nothing ran yet: streams were never started; free them directly. */
    while (d.streams) {
        vtd_srec *r = d.streams;
        d.streams = r->next;
        vtd_srec_unref(r);
    }
    vtd_server_close_listeners(&d);
    vtd_http_stop(&d.http);
    vtd_hub_close(&d.hub);
    uv_run(&loop, UV_RUN_DEFAULT);
done:
    vtd_hub_free(&d.hub);
    vtd_persist_free(&d);
    if (uv_loop_close(&loop) != 0)
        vtd_warn("event loop: handles still open at exit");
    vtd_model_unref(&d.model);
    vtd_config_free(&d.cfg);
    vtd_log(exit_code ? VTD_LOG_ERROR : VTD_LOG_INFO, "exit %d", exit_code);
    return exit_code;
}
