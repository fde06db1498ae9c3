/*
 * libFuzzer target: whole configuration files through vtd_config_parse, the validator vtrackd
 * runs on its JSON file at start-up and on SIGHUP, then vtd_config_free.
 *
 * A configuration names files (mask PNGs of initial objects, token_file) and the parser reads
 * them. The target never lets it read the disk: it is linked with -Wl,--wrap=fopen64 (the name
 * <stdio.h> gives fopen under meson's large-file flags), and a file opened for reading is found
 * by its last path component in a table of two in-memory files made at start-up: "mask.png" (a
 * 4x3 palette mask with objects 1 and 2, written by vt_mask_write_png) and "token" (a token
 * line). Any other name fails with ENOENT, so the outcome depends on the input alone and no
 * input can read /etc/shadow or block on /dev/stdin. Opening for writing passes through.
 *
 * Invariants: a refused file leaves no configuration and a message. An accepted one holds no
 * NUL byte (not JSON, and cJSON would cut a string there), has 1..8 listen addresses that parse
 * and resolved defaults, its streams unique valid names and masks as large as the mask file,
 * and every stream deep-copies (same fingerprint) and converts to a vt_stream_config as the
 * daemon does before starting it.
 *
 * Seeds (tests/daemon/seeds/fuzz_config/): systemd/vtrackd.json and small valid and invalid
 * configurations, with objects of each shape.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

#define MASK_W 4
#define MASK_H 3
static const uint8_t mask_labels[MASK_W * MASK_H] = {0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 2};
static const char token_text[] = "fuzz-token\n";

/* The in-memory files: memfds, opened through /proc/self/fd/N. */
static struct {
    const char *name;
    char path[64];
} files[] = {{"mask.png", ""}, {"token", ""}};

FILE *__real_fopen64(const char *path, const char *mode);
FILE *__wrap_fopen64(const char *path, const char *mode);

FILE *__wrap_fopen64(const char *path, const char *mode) {
    if (mode[0] != 'r' || strchr(mode, '+'))
        return __real_fopen64(path, mode);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (files[i].path[0] && strcmp(base, files[i].name) == 0)
            return __real_fopen64(files[i].path, mode);
    errno = ENOENT;
    return NULL;
}

static void make_file(int i, const void *data, size_t len) {
    int fd = memfd_create(files[i].name, MFD_CLOEXEC);
    CHECK(fd >= 0);
    snprintf(files[i].path, sizeof files[i].path, "/proc/self/fd/%d", fd);
    if (data)
        CHECK(write(fd, data, len) == (ssize_t)len);
}

/* The files, and proof that the wrapper is what the parser's reads go through. */
static void setup(void) {
    char err[512];
    make_file(1, token_text, strlen(token_text));
    make_file(0, NULL, 0);
    CHECK(vt_mask_write_png(files[0].path, MASK_W, MASK_H, mask_labels, err, sizeof err) == 0);
    static const char probe[] = "{\"token_file\":\"/nowhere/token\",\"streams\":[{\"name\":\"a\","
                                "\"url\":\"x\",\"objects\":[{\"mask\":\"/nowhere/mask.png\"}]}]}";
    vtd_config *cfg = NULL;
    if (vtd_config_parse(probe, strlen(probe), "dir", &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_config: the fopen64 wrapper is not in effect: %s\n", err);
        abort();
    }
    CHECK(strcmp(cfg->token, "fuzz-token") == 0);
    CHECK(cfg->streams[0].objects[0].shape.w == MASK_W);
    vtd_config_free(&cfg);
}

static void check_stream(const vtd_config *cfg, const vtd_stream_conf *sc) {
    char err[512];
    CHECK(sc->name[0] && sc->url && sc->url[0] && sc->fingerprint);
    CHECK(vtd_config_find_stream(cfg, sc->name) == sc);
    CHECK(sc->pacing != VT_PROTO_PACING_DEFAULT && sc->tracker != VT_PROTO_TRACKER_DEFAULT &&
          sc->profile != VT_PROTO_PROFILE_DEFAULT);
    CHECK(sc->backoff_min_ms <= sc->backoff_max_ms);
    CHECK(sc->nobjects >= 0 && sc->nobjects <= VT_PROTO_OBJECTS_MAX);
    for (int i = 0; i < sc->nobjects; i++) {
        const vtd_object_conf *o = &sc->objects[i];
        switch (o->shape.kind) {
        case VT_SHAPE_BOX:
            CHECK(o->shape.box[2] > 0 && o->shape.box[3] > 0);
            break;
        case VT_SHAPE_POLYGON:
            CHECK(o->points && o->shape.points == o->points && o->shape.npoints >= 3);
            break;
        case VT_SHAPE_MASK: {
            CHECK(o->mask && o->shape.data == o->mask);
            CHECK(o->shape.w == MASK_W && o->shape.h == MASK_H);
            int area = 0;
            for (int k = 0; k < MASK_W * MASK_H; k++) {
                CHECK(o->mask[k] <= 1);
                area += o->mask[k];
            }
            CHECK(area > 0);
            break;
        }
        default:
            CHECK(!"object without a shape");
        }
    }
    vtd_stream_conf copy;
    CHECK(vtd_stream_conf_copy(&copy, sc) == 0);
    CHECK(strcmp(copy.fingerprint, sc->fingerprint) == 0 && copy.nobjects == sc->nobjects);
    vtd_stream_conf_clear(&copy);
    vt_stream_config out;
    CHECK(vtd_stream_conf_to_stream(sc, NULL, &out, err, sizeof err) == 0);
}

/* libFuzzer's entry point: called with each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    char err[512] = "";
    vtd_config *cfg = (vtd_config *)&ready; /* must be set to NULL on failure */
    int rc = vtd_config_parse((const char *)data, size, "dir", &cfg, err, sizeof err);
    if (rc < 0) {
        CHECK(rc == -EINVAL || rc == -ENOMEM);
        CHECK(cfg == NULL && err[0] != '\0');
        return 0;
    }
    CHECK(rc == 0 && cfg);
    /* JSON text has no NUL byte (RFC 8259: not whitespace, and escaped inside strings), and
     * cJSON would end a string at one: "ab<NUL>cd" would be "ab". */
    CHECK(memchr(data, 0, size) == NULL);
    CHECK(cfg->nlisten >= 1 && cfg->nlisten <= VTD_LISTEN_MAX);
    for (int i = 0; i < cfg->nlisten; i++) {
        char host[256];
        int port;
        CHECK(vtd_parse_hostport(cfg->listen[i], host, sizeof host, &port) == 0);
    }
    CHECK(cfg->limits.soft_queue_bytes <= cfg->limits.hard_queue_bytes);
    CHECK(cfg->nstreams <= cfg->limits.streams);
    for (int i = 0; i < cfg->nstreams; i++)
        check_stream(cfg, &cfg->streams[i]);
    vtd_config_free(&cfg);
    CHECK(cfg == NULL);
    return 0;
}
