/*
 * proto_test.h - the suites of tests/proto/test_proto and the helpers they share.
 */
#ifndef PROTO_TEST_H
#define PROTO_TEST_H

#include <stddef.h>

#include "testmain.h"

Suite *ndjson_suite(void);
Suite *rle_suite(void);
Suite *cmd_suite(void);
Suite *event_suite(void);
Suite *doc_suite(void);

/*
 * Check one complete server line (without "\n") against PROTOCOL.md's field tables: valid JSON,
 * `seq` first and `type` second, every field documented for its type with the documented JSON
 * type, required ones present, enumerations in range, a bbox inside the frame, and a mask
 * consistent with the object's area. Returns 0, or -1 with the reason in why[cap].
 */
int check_server_line(const char *line, size_t len, char *why, size_t cap);

/* Deterministic PRNG for the tests (xorshift64*). */
unsigned long long test_rand(unsigned long long *state);

#endif
