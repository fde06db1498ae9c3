/*
 * alloc_count.h - counts heap allocations, for the "nothing allocated after warm-up" tests.
 *
 * Include from exactly one file of a test executable linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=posix_memalign (tests/model/meson.build);
 * n_alloc counts every call since the start.
 */
#ifndef VT_TESTS_ALLOC_COUNT_H
#define VT_TESTS_ALLOC_COUNT_H

#include <stddef.h>

static long n_alloc;
void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n);

void *__wrap_malloc(size_t n) {
    n_alloc++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t a, size_t b) {
    n_alloc++;
    return __real_calloc(a, b);
}
void *__wrap_realloc(void *p, size_t n) {
    n_alloc++;
    return __real_realloc(p, n);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n) {
    n_alloc++;
    return __real_posix_memalign(p, a, n);
}

#endif
