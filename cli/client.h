/* client.h - a small blocking client of vtrackd's protocol for `vtrack sub` and `vtrack ctl`. */
#ifndef VT_CLI_CLIENT_H
#define VT_CLI_CLIENT_H

#include <stddef.h>

#define VT_CLIENT_DEFAULT_ADDR "127.0.0.1:7878"
#define VT_CLIENT_LINE_MAX     (256u << 20) /* server lines have no limit; this client stops here */

typedef struct vt_client {
    int fd;
    char *buf; /* received bytes; [off, len) not yet returned */
    size_t len, off, cap;
    int auth; /* the greeting said auth:true */
} vt_client;

/* Connect to "HOST:PORT" ("[V6]:PORT"; NULL: $VTRACK_ADDR, else 127.0.0.1:7878) within
 * timeout_ms, read the greeting, and when `token` is given (or the server asks for one) send
 * hello with it and check the reply. 0, or -1 with a message in err. */
int vt_client_open(vt_client *c, const char *addr, const char *token, int timeout_ms, char *err,
                   size_t errlen);

/* Send one line (a newline is added). 0 or -1. */
int vt_client_send(vt_client *c, const char *line);

/* Next line without its newline, NUL-terminated, valid until the next call. Returns 1, 0 at
 * end of stream, -2 on timeout (timeout_ms < 0: wait forever), -1 on error (errno set). */
int vt_client_read(vt_client *c, int timeout_ms, char **line, size_t *len);

void vt_client_close(vt_client *c);

#endif
