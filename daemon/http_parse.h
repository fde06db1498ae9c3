/*
 * http_parse.h - the HTTP/1.1 request head, parsed from bytes (no sockets, no allocation) for
 * http.c, and the helpers that pick a request target apart. Every field is bounded; anything
 * the server does not need (chunked bodies, obsolete line folding, absolute targets) is refused
 * with the status the server answers. Fuzzed by tests/daemon/fuzz_http.c.
 */
#ifndef VTD_HTTP_PARSE_H
#define VTD_HTTP_PARSE_H

#include <stddef.h>

#define VTD_HTTP_TARGET_MAX  2048 /* request target (path and query), bytes */
#define VTD_HTTP_HEADERS_MAX 64   /* header fields per request */
#define VTD_HTTP_TOKEN_MAX   256  /* a credential from Authorization or Cookie */

typedef struct vtd_http_req {
    char method[8];                      /* GET, HEAD, POST, DELETE, ... (upper case) */
    char path[VTD_HTTP_TARGET_MAX + 1];  /* as sent, still percent-encoded, no query */
    char query[VTD_HTTP_TARGET_MAX + 1]; /* after '?', "" when none */
    int minor;                           /* HTTP/1.minor: 0 or 1 */
    long long content_length;            /* -1: none given */
    int keep_alive;                      /* the connection may carry another request */
    int upgrade_ws;                      /* Upgrade: websocket with Connection: upgrade */
    int ws_version;                      /* Sec-WebSocket-Version */
    char ws_key[32];                     /* Sec-WebSocket-Key, "" when none */
    char bearer[VTD_HTTP_TOKEN_MAX + 1]; /* Authorization: Bearer <this> */
    char cookie[VTD_HTTP_TOKEN_MAX + 1]; /* Cookie: vtrack_token=<this> */
    int has_bearer, has_cookie;
} vtd_http_req;

/*
 * Parse the request head at the start of buf[0..len). Returns its length (> 0, through the
 * blank line) when complete; 0 when more bytes are needed; or minus the HTTP status to answer:
 * -400 (malformed: request line, header syntax, control characters, obs-fold, a bad or second
 * Content-Length), -414 (target longer than VTD_HTTP_TARGET_MAX), -431 (head longer than
 * max_head bytes, or more than VTD_HTTP_HEADERS_MAX fields or a credential too long), -501
 * (Transfer-Encoding), -505 (not HTTP/1.0 or 1.1).
 */
int vtd_http_parse(const char *buf, size_t len, size_t max_head, vtd_http_req *req);

/* Segment `i` (0-based) of a path "/a/b/c", percent-decoded into out. 1 when present, 0 when
 * the path has fewer segments, -1 when it is malformed, empty, decodes to a NUL or '/', or does
 * not fit. */
int vtd_http_segment(const char *path, int i, char *out, size_t outlen);

/* Number of segments of a path ("/" has 0, "/a/b" 2, "/a/" 2: the last is empty). */
int vtd_http_nsegments(const char *path);

/* The value of `key` in a query "a=1&b=2", percent-decoded ('+' is a space) into out. 1 when
 * present, 0 when absent, -1 when malformed or too long. */
int vtd_http_query(const char *query, const char *key, char *out, size_t outlen);

#endif
