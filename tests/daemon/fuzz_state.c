/*
 * libFuzzer target: the saved state's parsers (daemon/persist.h), as vtrackd runs them at start.
 *
 * Input: a state file, then (after the first NUL byte, if any) journal lines. The state file is
 * parsed and checked; when it is not accepted an empty state stands in, as at start-up. Every
 * journal line is applied. Then every saved stream's add_stream and every object's track is
 * parsed as the network's commands are, and a track's shape built. Nothing may crash, leak or
 * read out of bounds; what the parsers accept must stay a valid state document.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "daemon.h"
#include "fuzz.h"

static const char empty[] = "{\"vtrackd_state\":1,\"journal\":0,\"streams\":[]}";

static void check_entries(const cJSON *doc) {
    const cJSON *s, *o;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(doc, "streams")) {
        vt_proto_err e;
        const cJSON *add = cJSON_GetObjectItemCaseSensitive(s, "add_stream");
        if (add) {
            vt_proto_cmd *cmd = vtd_persist_stored_cmd(add, VT_PROTO_OP_ADD_STREAM, &e);
            CHECK(cmd || e.message[0]);
            vt_proto_cmd_free(&cmd);
        }
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(s, "objects")) {
            vt_proto_cmd *cmd = vtd_persist_stored_cmd(cJSON_GetObjectItemCaseSensitive(o, "track"),
                                                       VT_PROTO_OP_TRACK, &e);
            uint8_t *mask = NULL;
            float *pts = NULL;
            vt_shape shape;
            if (cmd)
                (void)vtd_shape_from_track(cmd, &shape, &mask, &pts, &e);
            vt_proto_cmd_free(&cmd);
            free(mask);
            free(pts);
        }
    }
}

/* libFuzzer's entry point: called with each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    const char *nul = memchr(text, 0, size);
    size_t nstate = nul ? (size_t)(nul - text) : size;
    cJSON *doc;
    if (vtd_persist_parse(text, nstate, &doc)) {
        CHECK(doc == NULL);
        CHECK(vtd_persist_parse(empty, sizeof empty - 1, &doc) == NULL);
    }
    CHECK(doc != NULL);
    if (nul) {
        const char *p = nul + 1, *end = text + size;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            (void)vtd_persist_apply(doc, p, n);
            p += n + 1;
        }
    }
    /* what was applied is still a document the parser takes */
    char *out = cJSON_PrintUnformatted(doc);
    CHECK(out != NULL);
    cJSON *again;
    CHECK(vtd_persist_parse(out, strlen(out), &again) == NULL);
    cJSON_Delete(again);
    cJSON_free(out);
    check_entries(doc);
    cJSON_Delete(doc);
    return 0;
}
