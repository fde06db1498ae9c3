/*
 * config_cli.c - vtrackd's command-line overrides (config.h, vtd_config_apply_cli): the flags of
 * the root table's rows (--listen, --log-level, --model, --state-dir) read their text as the
 * file's value would be read, and --stream NAME=URL replaces a configured stream's URL or adds a
 * stream with the defaults.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

/* Each row with a flag: the option's text, as a JSON string, through the row's reader; errors
 * are named by the flag ("--log-level: must be one of ..."). */
static int apply_flags(vtd_pctx *c, const vtd_cfg_field *table, const vtd_cli *cli,
                       vtd_config *cfg) {
    for (const vtd_cfg_field *f = table; f->type != VTD_CFG_END; f++) {
        if (!f->flag)
            continue;
        const char *text;
        memcpy(&text, (const char *)cli + f->flag_offset, sizeof text);
        if (!text)
            continue;
        snprintf(c->path, sizeof c->path, "%s", f->flag);
        cJSON *it = cJSON_CreateString(text);
        int rc = it ? vtd_cfg_read(c, NULL, f, it, cfg) : -ENOMEM;
        cJSON_Delete(it);
        if (rc < 0)
            return rc;
    }
    c->path[0] = 0;
    return 0;
}

/* --stream NAME=URL */
static int apply_stream(vtd_pctx *c, vtd_config *cfg, const vtd_cli *cli, int i) {
    snprintf(c->path, sizeof c->path, "--stream");
    const char *arg = cli->streams[i], *eq = strchr(arg, '=');
    char name[VT_PROTO_NAME_MAX + 1];
    size_t nl = eq ? (size_t)(eq - arg) : 0;
    if (!eq || nl == 0 || nl > VT_PROTO_NAME_MAX || !eq[1] || strlen(eq + 1) > VT_PROTO_URL_MAX ||
        !vtd_cfg_text_ok(eq + 1))
        return vtd_cfg_fail(c, "\"%s\" is not NAME=URL", arg);
    memcpy(name, arg, nl);
    name[nl] = 0;
    if (!vt_proto_stream_name_valid(name, nl))
        return vtd_cfg_fail(c, "\"%s\" is not a stream name (1..64 of A-Z a-z 0-9 _ . -)", name);
    for (int j = 0; j < i; j++)
        if (strncmp(cli->streams[j], arg, nl + 1) == 0)
            return vtd_cfg_fail(c, "stream %s is given twice", name);
    vtd_stream_conf *sc = NULL;
    for (int j = 0; j < cfg->nstreams; j++)
        if (strcmp(cfg->streams[j].name, name) == 0)
            sc = &cfg->streams[j];
    if (sc) {
        /* Same name as a config stream: the command line replaces its URL only. */
        free(sc->url);
        if (!(sc->url = strdup(eq + 1)))
            return -ENOMEM;
    } else {
        if (cfg->nstreams >= cfg->limits.streams)
            return vtd_cfg_fail(c, "more streams than limits.streams (%d)", cfg->limits.streams);
        vtd_stream_conf *ns = realloc(cfg->streams, sizeof *ns * (size_t)(cfg->nstreams + 1));
        if (!ns)
            return -ENOMEM;
        cfg->streams = ns;
        sc = &cfg->streams[cfg->nstreams++];
        memset(sc, 0, sizeof *sc);
        vtd_cfg_stream_defaults(cfg, sc);
        snprintf(sc->name, sizeof sc->name, "%s", name);
        if (!(sc->url = strdup(eq + 1)))
            return -ENOMEM;
    }
    sc->origin = VTD_ORIGIN_CLI;
    sc->allow_local = 1;
    vtd_cfg_stream_resolve(sc);
    free(sc->fingerprint);
    sc->fingerprint = NULL;
    return vtd_cfg_stream_fingerprint(sc, NULL, NULL);
}

int vtd_config_apply_cli(vtd_config *cfg, const vtd_cli *cli, char *err, size_t errlen) {
    vtd_pctx c = {.err = err, .errlen = errlen};
    int rc = apply_flags(&c, vtd_cfg_root, cli, cfg);
    for (int i = 0; rc >= 0 && i < cli->nstreams; i++)
        rc = apply_stream(&c, cfg, cli, i);
    return rc < 0 ? rc : 0;
}
