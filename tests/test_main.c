/* The harness behind test.h: registration, the zero-live-objects check after
 * every test, and the closing "N passed, N failed" line. */
#include "test.h"

#include <pthread.h>
#include <stdarg.h>

#define MAX_TESTS 1024

typedef struct {
  const char *name;
  test_fn fn;
  const char *file;
  int line;
} test_case;

static test_case cases[MAX_TESTS];
static int case_count;
static int current_failures;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

void test_register(const char *name, test_fn fn, const char *file, int line) {
  if (case_count == MAX_TESTS) {
    fprintf(stderr, "too many tests\n");
    exit(2);
  }
  cases[case_count++] = (test_case){name, fn, file, line};
}

void test_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  pthread_mutex_lock(&fail_lock);
  current_failures++;
  fprintf(stderr, "    %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  pthread_mutex_unlock(&fail_lock);
}

int test_failed_now(void) {
  pthread_mutex_lock(&fail_lock);
  int n = current_failures;
  pthread_mutex_unlock(&fail_lock);
  return n;
}

void test_run_threads(int n, void *(*fn)(void *), void *arg) {
  pthread_t *threads = calloc((size_t)n, sizeof *threads);
  if (!threads) abort();
  for (int i = 0; i < n; i++)
    if (pthread_create(&threads[i], NULL, fn, arg) != 0) abort();
  for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
  free(threads);
}

const char *test_source_path(const char *relative) {
  static __thread char buf[4][4096];
  static __thread int slot;
  char *b = buf[slot++ & 3];
#ifdef STRAND_SOURCE_DIR
  snprintf(b, 4096, "%s/%s", STRAND_SOURCE_DIR, relative);
#else
  snprintf(b, 4096, "%s", relative);
#endif
  return b;
}

static int selected(int argc, char **argv, const char *name) {
  if (argc < 2) return 1;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], name) == 0) return 1;
  return 0;
}

static void check_nothing_alive(const char *name) {
  strand_memory_stats st = {.struct_size = sizeof st};
  CHECK_OK(strand_memory_get_stats(&st));
  if (st.total_live_objects != 0 || st.total_live_bytes != 0) {
    test_fail(__FILE__, __LINE__, "%s left %llu live objects and %llu native bytes",
              name, (unsigned long long)st.total_live_objects,
              (unsigned long long)st.total_live_bytes);
    strand_leak_report_print(stderr, NULL);
  }
}

int main(int argc, char **argv) {
  int passed = 0, failed = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 0; i < case_count; i++) {
    if (!selected(argc, argv, cases[i].name)) continue;
    current_failures = 0;
    cases[i].fn();
    check_nothing_alive(cases[i].name);
    if (current_failures == 0) {
      passed++;
      printf("ok   %s\n", cases[i].name);
    } else {
      failed++;
      printf("FAIL %s (%s:%d)\n", cases[i].name, cases[i].file, cases[i].line);
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
