/*
 * tensor.c - tensor shape checks and the workspace arena.
 */
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>

#include "nn.h"

int vtm_tensor_check(const vt_tensor *t, int n, int c, int h, int w) {
    if (!t || !t->data || t->n != n || t->c != c || t->h != h || t->w != w)
        return -EINVAL;
    return 0;
}

size_t vtm_arena_need(size_t n) {
    return (n + 15) & ~(size_t)15;
}

int vtm_arena_reserve(vt_arena *a, size_t floats) {
    if (a->base && a->cap >= floats) {
        a->used = 0;
        return 0;
    }
    free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
    if (floats == 0)
        return 0;
    /* 64-byte alignment keeps every slice on a cache line and lets the compiler use aligned
     * AVX-512 accesses; sizes are multiples of 16 floats by construction. */
    void *p = NULL;
    if (posix_memalign(&p, 64, vtm_arena_need(floats) * sizeof(float)) != 0)
        return -ENOMEM;
    a->base = p;
    a->cap = vtm_arena_need(floats);
    return 0;
}

float *vtm_arena_take(vt_arena *a, size_t n) {
    size_t need = vtm_arena_need(n);
    if (!a->base || a->used + need > a->cap)
        return NULL;
    float *p = a->base + a->used;
    a->used += need;
    return p;
}

void vtm_arena_reset(vt_arena *a) {
    a->used = 0;
}

void vtm_arena_free(vt_arena *a) {
    free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}
