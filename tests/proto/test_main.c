/*
 * test_proto: Check suites for proto/ (framing, RLE, commands, events, PROTOCOL.md).
 */
#include <stdlib.h>

#include "proto_test.h"

unsigned long long test_rand(unsigned long long *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

int main(void) {
    SRunner *sr = srunner_create(ndjson_suite());
    srunner_add_suite(sr, rle_suite());
    srunner_add_suite(sr, cmd_suite());
    srunner_add_suite(sr, event_suite());
    srunner_add_suite(sr, doc_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
