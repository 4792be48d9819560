/*
 * test.h — the tiny test harness every strand test program uses.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_OK(strand_tensor_create(...)); }
 *
 * Each TEST runs in registration order. After each one the harness checks
 * that no strand object is alive and no native byte is counted (the registry
 * proves every test cleans up); a test that leaves anything behind fails.
 * The program ends with "N passed, N failed" and exits non-zero on failure.
 * `prog NAME...` runs only the named tests.
 */
#ifndef STRAND_TEST_H
#define STRAND_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strand.h"

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn, const char *file, int line);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int test_failed_now(void);

#define TEST(name)                                                             \
  static void name(void);                                                      \
  __attribute__((constructor)) static void test_reg_##name(void) {             \
    test_register(#name, name, __FILE__, __LINE__);                            \
  }                                                                            \
  static void name(void)

/* Records a failure and continues. */
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);            \
  } while (0)

/* Records a failure and returns from the test. */
#define REQUIRE(cond)                                                          \
  do {                                                                         \
    if (!(cond)) {                                                             \
      test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                     \
      return;                                                                  \
    }                                                                          \
  } while (0)

#define CHECK_STATUS(expected, expr)                                           \
  do {                                                                         \
    strand_status st_ = (expr);                                                \
    if (st_ != (expected))                                                     \
      test_fail(__FILE__, __LINE__, "%s gave %s (%s), expected %s", #expr,     \
                strand_status_name(st_), strand_errmsg(), strand_status_name(expected)); \
  } while (0)

#define CHECK_OK(expr) CHECK_STATUS(STRAND_OK, expr)

#define REQUIRE_OK(expr)                                                       \
  do {                                                                         \
    strand_status st_ = (expr);                                                \
    if (st_ != STRAND_OK) {                                                    \
      test_fail(__FILE__, __LINE__, "%s gave %s: %s", #expr,                   \
                strand_status_name(st_), strand_errmsg());                     \
      return;                                                                  \
    }                                                                          \
  } while (0)

/* The calling thread's message contains `needle`. */
#define CHECK_MSG(needle)                                                      \
  do {                                                                         \
    if (!strstr(strand_errmsg(), (needle)))                                    \
      test_fail(__FILE__, __LINE__, "message \"%s\" lacks \"%s\"",             \
                strand_errmsg(), (needle));                                    \
  } while (0)

/* Runs fn(arg) on n threads at once and joins them. */
void test_run_threads(int n, void *(*fn)(void *), void *arg);

/* Path of a file under the source tree (static buffer per call slot). */
const char *test_source_path(const char *relative);

#endif
