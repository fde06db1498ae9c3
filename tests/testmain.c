/*
 * testmain.c - see testmain.h.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "testmain.h"

static TCase *add_case(Suite *s, const char *name, int timeout, va_list ap) {
    TCase *tc = tcase_create(name);
    if (timeout > 0)
        tcase_set_timeout(tc, timeout);
    for (const TTest *t; (t = va_arg(ap, const TTest *)) != NULL;)
        tcase_add_test(tc, t);
    suite_add_tcase(s, tc);
    return tc;
}

TCase *tm_add_case(Suite *s, const char *name, int timeout, ...) {
    va_list ap;
    va_start(ap, timeout);
    TCase *tc = add_case(s, name, timeout, ap);
    va_end(ap);
    return tc;
}

int tm_main(const char *name, int timeout, ...) {
    Suite *s = suite_create(name);
    va_list ap;
    va_start(ap, timeout);
    add_case(s, name, timeout, ap);
    va_end(ap);
    return tm_run(s);
}

int tm_run(Suite *s) {
    return tm_run_suites(&s, 1);
}

int tm_run_suites(Suite *const *suites, size_t n) {
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < n; i++)
        if (suites[i])
            srunner_add_suite(sr, suites[i]);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
