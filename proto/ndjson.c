/*
 * ndjson.c - newline-delimited JSON framing: the incremental line reader (every line passes
 * base/'s vt_utf8_check) and the line writer.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "proto_int.h"

struct vt_ndjson_reader {
    char *buf;  /* the partial line (no newline seen yet); at most max_line + 1 bytes */
    size_t len; /* bytes held in buf */
    size_t cap; /* bytes allocated for buf */
    size_t max_line;
    int discarding; /* an over-long line was reported: drop bytes up to the next '\n' */
};

int vt_ndjson_reader_new(size_t max_line, vt_ndjson_reader **out) {
    *out = NULL;
    if (max_line == 0)
        max_line = VT_PROTO_LINE_MAX;
    if (max_line > SIZE_MAX / 4)
        return -EINVAL;
    vt_ndjson_reader *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->max_line = max_line;
    *out = r;
    return 0;
}

void vt_ndjson_reader_free(vt_ndjson_reader **r) {
    if (!r || !*r)
        return;
    free((*r)->buf);
    free(*r);
    *r = NULL;
}

size_t vt_ndjson_pending(const vt_ndjson_reader *r) {
    return r->len;
}

/* Append to the partial line. The caller has checked that the result stays within
 * max_line + 1 bytes, so the buffer's growth is bounded by the limit, not by the input. */
static int reader_append(vt_ndjson_reader *r, const char *p, size_t n) {
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n)
            cap *= 2;
        if (cap > r->max_line + 1)
            cap = r->max_line + 1;
        char *nb = realloc(r->buf, cap);
        if (!nb)
            return -ENOMEM;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return 0;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    return 1;
}

/* A complete line (terminator removed): strip one '\r', then classify. Returns 1 (deliver),
 * 0 (blank: skip), -EMSGSIZE or -EILSEQ. */
static int finish_line(const vt_ndjson_reader *r, const char *l, size_t n, const char **line,
                       size_t *line_len) {
    if (n > 0 && l[n - 1] == '\r')
        n--;
    if (n > r->max_line)
        return -EMSGSIZE;
    if (is_blank(l, n))
        return 0;
    *line = l;
    *line_len = n;
    return vt_utf8_check(l, n, NULL) < 0 ? -EILSEQ : 1;
}

/* No newline in the rest of the chunk: keep it, unless the line is now provably too long.
 * max_line + 1 bytes are still fine when the last one is '\r' (it may be the "\r" of "\r\n"). */
static int keep_tail(vt_ndjson_reader *r, const char *p, size_t n) {
    size_t total = r->len + n;
    if (total > r->max_line + 1 || (total == r->max_line + 1 && p[n - 1] != '\r')) {
        r->len = 0;
        r->discarding = 1;
        return -EMSGSIZE;
    }
    int rc = reader_append(r, p, n);
    if (rc < 0) {
        r->len = 0;
        r->discarding = 1;
    }
    return rc;
}

int vt_ndjson_next(vt_ndjson_reader *r, const char **data, size_t *len, const char **line,
                   size_t *line_len) {
    *line = NULL;
    *line_len = 0;
    while (*len > 0) {
        const char *p = *data;
        size_t n = *len;
        const char *nl = memchr(p, '\n', n);
        if (!nl) {
            *data += n;
            *len = 0;
            if (r->discarding)
                return 0;
            return keep_tail(r, p, n);
        }
        size_t k = (size_t)(nl - p);
        *data += k + 1;
        *len -= k + 1;
        if (r->discarding) {
            r->discarding = 0; /* resynchronised: the next byte starts a new line */
            continue;
        }
        const char *l = p;
        size_t ll = k;
        if (r->len > 0) {
            /* The line started in an earlier chunk: complete it in the buffer. */
            if (r->len + k > r->max_line + 1) {
                r->len = 0;
                return -EMSGSIZE;
            }
            int rc = reader_append(r, p, k);
            if (rc < 0) {
                r->len = 0;
                return rc;
            }
            l = r->buf;
            ll = r->len;
            r->len = 0; /* buf stays intact until the next call appends */
        }
        int rc = finish_line(r, l, ll, line, line_len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int vt_ndjson_flush(vt_ndjson_reader *r, const char **line, size_t *line_len) {
    *line = NULL;
    *line_len = 0;
    if (r->discarding) {
        r->discarding = 0; /* already reported */
        return 0;
    }
    if (r->len == 0)
        return 0;
    size_t n = r->len;
    r->len = 0;
    return finish_line(r, r->buf, n, line, line_len);
}

/* Past 64 KiB, let cJSON size the text once instead of doubling blindly: an item that cannot be
 * printed at all (a raw item without text) would otherwise grow the buffer to the cap. */
static int write_large(vt_proto_buf *b, cJSON *obj) {
    size_t start = b->len;
    char *s = cJSON_PrintUnformatted(obj);
    if (!s)
        return -EINVAL;
    size_t n = strlen(s);
    int rc = n > (1u << 30) ? -EMSGSIZE : vt_proto_buf_reserve(b, n + 1);
    if (rc == 0) {
        memcpy(b->data + start, s, n);
        b->data[start + n] = '\n';
        b->len = start + n + 1;
        b->data[b->len] = '\0';
    }
    cJSON_free(s);
    return rc;
}

int vt_ndjson_write(vt_proto_buf *b, cJSON *obj) {
    if (!obj)
        return -EINVAL;
    const size_t start = b->len;
    /* Print into the room the buffer already has (at least 256 bytes); when cJSON says it does
     * not fit, double the room and retry. cJSON_PrintPreallocated wants 5 spare bytes beyond
     * the printed length, and we add the newline and the NUL. */
    size_t want = 256;
    for (;;) {
        if (b->cap < start + want + 7) {
            int rc = vt_proto_buf_reserve(b, want + 6);
            if (rc < 0)
                return rc;
        }
        size_t avail = b->cap - start - 1; /* keep one byte for the newline */
        if (avail > INT_MAX)
            avail = INT_MAX;
        if (cJSON_PrintPreallocated(obj, b->data + start, (int)avail, 0))
            break;
        b->data[start] = '\0';
        if (avail >= 65536)
            return write_large(b, obj);
        want = 2 * avail;
    }
    b->len = start + strlen(b->data + start);
    b->data[b->len++] = '\n';
    b->data[b->len] = '\0';
    return 0;
}

int vt_proto_text_check(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return -EINVAL;
    return vt_utf8_check(s, n, NULL);
}
