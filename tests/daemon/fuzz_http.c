/*
 * libFuzzer target: the HTTP request head parser and the target helpers (daemon/http_parse.h),
 * which read bytes from any client of the HTTP listener.
 *
 * Input: the bytes a client sent. A complete head's length lies within the input; an answer is
 * one of the documented statuses; the parsed path starts with '/', and every segment and query
 * value the server would look up decodes within its buffer or is refused.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "http_parse.h"

/* libFuzzer's entry point: called with each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static vtd_http_req req;
    const char *buf = (const char *)data;
    int n = vtd_http_parse(buf, size, 8192, &req);
    CHECK(n <= (int)size);
    if (n < 0) {
        static const int statuses[] = {400, 414, 431, 501, 505};
        int known = 0;
        for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
            known |= -n == statuses[i];
        CHECK(known);
        return 0;
    }
    if (n == 0)
        return 0;
    CHECK(req.path[0] == '/');
    CHECK(req.minor == 0 || req.minor == 1);
    int segs = vtd_http_nsegments(req.path);
    CHECK(segs >= 0);
    char out[256];
    for (int i = 0; i <= segs; i++) {
        int rc = vtd_http_segment(req.path, i, out, sizeof out);
        CHECK(rc >= -1 && rc <= 1 && (rc != 1 || strlen(out) < sizeof out));
        CHECK(i < segs || rc == 0);
    }
    static const char *const keys[] = {"token", "stream", "object", ""};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        int rc = vtd_http_query(req.query, keys[k], out, sizeof out);
        CHECK(rc >= -1 && rc <= 1 && (rc != 1 || strlen(out) < sizeof out));
    }
    return 0;
}
