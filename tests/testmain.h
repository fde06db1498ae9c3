/*
 * testmain.h - what every Check program of tests/ shares: a test case from a list of tests, and
 * the run of suites to the program's exit status.
 */
#ifndef VT_TESTMAIN_H
#define VT_TESTMAIN_H

#include <check.h>
#include <stddef.h>

/* The number of elements of an array (not of a pointer). */
#define TM_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Add the case `name` to suite s with the tests that follow timeout (START_TEST's names, each a
 * `const TTest *`), in that order, up to a NULL; timeout in seconds, 0 for Check's default.
 * Returns the case, for fixtures and loop tests. */
TCase *tm_add_case(Suite *s, const char *name, int timeout, ...);

/* The whole main() of a program of one case: the suite and its case both named `name`, the
 * tests as for tm_add_case, run as tm_run does. */
int tm_main(const char *name, int timeout, ...);

/* Run suite s (output as CK_VERBOSITY says) and free it: EXIT_SUCCESS when every test passed,
 * else EXIT_FAILURE. */
int tm_run(Suite *s);

/* The same for the suites of suites[n], in that order, passing over NULL ones. */
int tm_run_suites(Suite *const *suites, size_t n);

#endif
