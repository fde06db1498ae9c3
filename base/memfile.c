/* memfile.c - vt_grow, vt_reserve, vt_write_all: growing arrays and buffers, whole writes. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "vt_base.h"

void *vt_grow(void *p, size_t size, int need, int *cap, int first) {
    if (need <= *cap)
        return p;
    int n = *cap == 0 ? first : *cap <= INT_MAX / 2 ? 2 * *cap : INT_MAX;
    if (n < need)
        n = need;
    if (size && (size_t)n > SIZE_MAX / size)
        return NULL;
    void *q = realloc(p, (size_t)n * size);
    if (q)
        *cap = n;
    return q;
}

int vt_reserve(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap)
        return 0;
    uint8_t *p = realloc(*buf, need);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = need;
    return 0;
}

int vt_write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}
