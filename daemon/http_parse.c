/* http_parse.c - see http_parse.h. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "http_parse.h"

static int is_tchar(int c) {
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Field-value characters: visible ASCII, obs-text, space and tab. */
static int is_vchar(int c) {
    return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

static const char *find_end(const char *buf, size_t len) {
    for (size_t i = 0; i + 3 < len; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
            return buf + i + 4;
    return NULL;
}

/* Does a comma-separated header value hold `tok` (case-insensitive)? */
static int has_token(const char *v, size_t n, const char *tok) {
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

static int copy_value(char *out, size_t cap, const char *v, size_t n) {
    if (n >= cap)
        return -431;
    memcpy(out, v, n);
    out[n] = 0;
    return 0;
}

/* The vtrack_token cookie among "a=b; c=d". */
static int parse_cookie(vtd_http_req *r, const char *v, size_t n) {
    static const char key[] = "vtrack_token=";
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == ';'))
            i++;
        size_t s = i;
        while (i < n && v[i] != ';')
            i++;
        if (i - s > sizeof key - 1 && memcmp(v + s, key, sizeof key - 1) == 0) {
            r->has_cookie = 1;
            return copy_value(r->cookie, sizeof r->cookie, v + s + sizeof key - 1,
                              i - s - (sizeof key - 1));
        }
    }
    return 0;
}

static int parse_length(vtd_http_req *r, const char *v, size_t n) {
    if (r->content_length >= 0 || n == 0 || n > 15)
        return -400;
    long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -400;
        x = x * 10 + (v[i] - '0');
    }
    r->content_length = x;
    return 0;
}

static int header(vtd_http_req *r, const char *name, size_t nn, const char *v, size_t vn,
                  int *conn_close, int *conn_keep, int *conn_upgrade, int *upgrade_ws) {
#define IS(s) (nn == sizeof(s) - 1 && strncasecmp(name, s, nn) == 0)
    if (IS("content-length"))
        return parse_length(r, v, vn);
    if (IS("transfer-encoding"))
        return -501;
    if (IS("connection")) {
        *conn_close |= has_token(v, vn, "close");
        *conn_keep |= has_token(v, vn, "keep-alive");
        *conn_upgrade |= has_token(v, vn, "upgrade");
    } else if (IS("upgrade")) {
        *upgrade_ws |= has_token(v, vn, "websocket");
    } else if (IS("sec-websocket-key")) {
        if (copy_value(r->ws_key, sizeof r->ws_key, v, vn) < 0)
            return -400;
    } else if (IS("sec-websocket-version")) {
        r->ws_version = vn == 2 && isdigit((unsigned char)v[0]) && isdigit((unsigned char)v[1])
                            ? (v[0] - '0') * 10 + (v[1] - '0')
                            : -1;
    } else if (IS("authorization")) {
        if (vn > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
            r->has_bearer = 1;
            return copy_value(r->bearer, sizeof r->bearer, v + 7, vn - 7);
        }
    } else if (IS("cookie")) {
        return parse_cookie(r, v, vn);
    }
    return 0;
#undef IS
}

static int request_line(vtd_http_req *r, const char *p, const char *eol) {
    const char *sp = memchr(p, ' ', (size_t)(eol - p));
    if (!sp || sp == p || sp - p >= (long)sizeof r->method)
        return -400;
    for (const char *q = p; q < sp; q++)
        if (*q < 'A' || *q > 'Z')
            return -400;
    memcpy(r->method, p, (size_t)(sp - p));
    r->method[sp - p] = 0;
    const char *t = sp + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(eol - t));
    if (!sp2 || sp2 == t || *t != '/')
        return -400;
    if (sp2 - t > VTD_HTTP_TARGET_MAX)
        return -414;
    for (const char *q = t; q < sp2; q++)
        if (*q <= 0x20 || *q >= 0x7f || *q == '#')
            return -400;
    const char *qm = memchr(t, '?', (size_t)(sp2 - t));
    const char *pe = qm ? qm : sp2;
    memcpy(r->path, t, (size_t)(pe - t));
    r->path[pe - t] = 0;
    if (qm) {
        memcpy(r->query, qm + 1, (size_t)(sp2 - qm - 1));
        r->query[sp2 - qm - 1] = 0;
    }
    const char *v = sp2 + 1;
    if (eol - v != 8 || memcmp(v, "HTTP/", 5) != 0 || !isdigit((unsigned char)v[5]) ||
        v[6] != '.' || !isdigit((unsigned char)v[7]))
        return -400;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return -505;
    r->minor = v[7] - '0';
    return 0;
}

int vtd_http_parse(const char *buf, size_t len, size_t max_head, vtd_http_req *r) {
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    size_t scan = len < max_head ? len : max_head;
    const char *end = find_end(buf, scan);
    if (!end) {
        /* The request line alone tells a too-long target early. */
        const char *nl = memchr(buf, '\n', scan);
        if (!nl && scan > VTD_HTTP_TARGET_MAX + 32)
            return -414;
        return len >= max_head ? -431 : 0;
    }
    const char *eol = memchr(buf, '\r', (size_t)(end - buf));
    if (!eol || eol[1] != '\n')
        return -400;
    int rc = request_line(r, buf, eol);
    if (rc < 0)
        return rc;
    int conn_close = 0, conn_keep = 0, conn_upgrade = 0, upgrade_ws = 0, nh = 0;
    for (const char *p = eol + 2; p < end - 2; p = eol + 2) {
        eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol || eol[1] != '\n')
            return -400;
        if (++nh > VTD_HTTP_HEADERS_MAX)
            return -431;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return -400; /* also obs-fold: a line starting with white space */
        for (const char *q = p; q < colon; q++)
            if (!is_tchar((unsigned char)*q))
                return -400;
        const char *v = colon + 1, *ve = eol;
        for (const char *q = v; q < ve; q++)
            if (!is_vchar((unsigned char)*q))
                return -400;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        rc = header(r, p, (size_t)(colon - p), v, (size_t)(ve - v), &conn_close, &conn_keep,
                    &conn_upgrade, &upgrade_ws);
        if (rc < 0)
            return rc;
    }
    r->keep_alive = r->minor == 1 ? !conn_close : conn_keep && !conn_close;
    r->upgrade_ws = upgrade_ws && conn_upgrade;
    return (int)(end - buf);
}

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) into out; '+' means a space when plus. -1 on a bad escape, a NUL or
 * '/' (when noslash), or no room. */
static int decode(const char *s, size_t n, int plus, int noslash, char *out, size_t outlen) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int a = hexval((unsigned char)s[i + 1]), b = hexval((unsigned char)s[i + 2]);
            if (a < 0 || b < 0)
                return -1;
            c = a * 16 + b;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == 0 || (noslash && c == '/') || o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = 0;
    return 0;
}

int vtd_http_nsegments(const char *path) {
    int n = 0;
    for (const char *p = path; *p; p++)
        n += *p == '/';
    return strcmp(path, "/") == 0 ? 0 : n;
}

int vtd_http_segment(const char *path, int i, char *out, size_t outlen) {
    if (path[0] != '/' || i < 0)
        return -1;
    const char *p = path + 1;
    for (int k = 0; k < i; k++) {
        p = strchr(p, '/');
        if (!p)
            return 0;
        p++;
    }
    if (!*p && i >= vtd_http_nsegments(path))
        return 0;
    const char *e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == 0 || decode(p, n, 0, 1, out, outlen) < 0)
        return -1;
    return 1;
}

int vtd_http_query(const char *query, const char *key, char *out, size_t outlen) {
    size_t kl = strlen(key);
    for (const char *p = query; *p;) {
        const char *e = strchr(p, '&');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > kl && p[kl] == '=' && strncmp(p, key, kl) == 0)
            return decode(p + kl + 1, n - kl - 1, 1, 0, out, outlen) < 0 ? -1 : 1;
        p += n + (e ? 1 : 0);
    }
    return 0;
}
