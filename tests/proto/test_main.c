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
    Suite *suites[] = {ndjson_suite(), rle_suite(), cmd_suite(), event_suite(), doc_suite()};
    return tm_run_suites(suites, TM_LEN(suites));
}
