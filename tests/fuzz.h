/* fuzz.h - what the libFuzzer targets share (tests/<module>/fuzz_*.c). */
#ifndef VT_TESTS_FUZZ_H
#define VT_TESTS_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

/* An invariant of the code under test: a violation is a finding, reported like a crash. */
#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #x, __FILE__, __LINE__);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
