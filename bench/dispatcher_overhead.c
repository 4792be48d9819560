/* dispatcher_overhead — what strand_dispatcher_run costs around an empty
 * function: from another thread (the hand-over and back, with the
 * dispatcher awake, and with it asleep after a pause), inline on the
 * dispatcher's own thread, with several callers at once, and what a post
 * costs. Prints a table of medians and tails in microseconds.
 *   bench_dispatcher_overhead [calls] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "strand.h"

static long calls = 20000;

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double quantile(double *v, long n, double q) {
  long i = (long)(q * (double)(n - 1));
  return v[i];
}

static void print_row(const char *what, double *samples, long n) {
  qsort(samples, (size_t)n, sizeof *samples, compare);
  printf("| %-44s | %8.3f | %8.3f | %8.3f |\n", what, quantile(samples, n, 0.5),
         quantile(samples, n, 0.9), quantile(samples, n, 0.99));
}

static strand_status empty(void *arg) {
  (void)arg;
  return STRAND_OK;
}

static void empty_post(void *arg) { (void)arg; }

static void check(strand_status st) {
  if (st != STRAND_OK) {
    fprintf(stderr, "bench_dispatcher_overhead: %s: %s\n", strand_status_name(st), strand_errmsg());
    exit(1);
  }
}

typedef struct {
  strand_dispatcher *d;
  double *samples;
  long n;
} inline_ctx;

/* On the dispatcher's thread: inline runs, timed in batches of 100. */
static strand_status time_inline(void *arg) {
  inline_ctx *c = arg;
  for (long i = 0; i < c->n; i++) {
    double t0 = now_us();
    for (int k = 0; k < 100; k++) check(strand_dispatcher_run(c->d, empty, NULL));
    c->samples[i] = (now_us() - t0) / 100.0;
  }
  return STRAND_OK;
}

typedef struct {
  strand_dispatcher *d;
  double *samples;
  long n;
} caller_ctx;

static void *contended_caller(void *arg) {
  caller_ctx *c = arg;
  for (long i = 0; i < c->n; i++) {
    double t0 = now_us();
    check(strand_dispatcher_run(c->d, empty, NULL));
    c->samples[i] = now_us() - t0;
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1) calls = atol(argv[1]);
  if (calls < 100) calls = 100;
  double *samples = malloc(sizeof(double) * (size_t)calls * 4);
  if (!samples) return 1;
  strand_dispatcher *d;
  check(strand_dispatcher_create(NULL, &d));
  printf("strand %s, %ld calls per row, empty function\n\n", strand_version(), calls);
  printf("| %-44s | %8s | %8s | %8s |\n", "microseconds per call", "median", "p90", "p99");
  printf("|----------------------------------------------|----------|----------|----------|\n");

  /* A plain call through a function pointer, for scale (batches of 100). */
  strand_dispatcher_run_fn volatile direct = empty;
  for (long i = 0; i < calls; i++) {
    double t0 = now_us();
    for (int k = 0; k < 100; k++) direct(NULL);
    samples[i] = (now_us() - t0) / 100.0;
  }
  print_row("direct call (no dispatcher)", samples, calls);

  for (long i = 0; i < 1000; i++) check(strand_dispatcher_run(d, empty, NULL)); /* warm up */
  for (long i = 0; i < calls; i++) {
    double t0 = now_us();
    check(strand_dispatcher_run(d, empty, NULL));
    samples[i] = now_us() - t0;
  }
  print_row("run from another thread, back to back", samples, calls);

  long cold = calls / 20 < 200 ? calls / 20 : 200;
  for (long i = 0; i < cold; i++) {
    struct timespec pause = {0, 2000000}; /* 2 ms: the dispatcher goes to sleep */
    nanosleep(&pause, NULL);
    double t0 = now_us();
    check(strand_dispatcher_run(d, empty, NULL));
    samples[i] = now_us() - t0;
  }
  print_row("run from another thread, dispatcher asleep", samples, cold);

  inline_ctx ic = {d, samples, calls / 10};
  check(strand_dispatcher_run(d, time_inline, &ic));
  print_row("run inline (on the dispatcher's thread)", samples, ic.n);

  for (long i = 0; i < calls; i++) {
    double t0 = now_us();
    strand_status st;
    while ((st = strand_dispatcher_post(d, empty_post, NULL)) == STRAND_E_BUSY) {
    }
    check(st);
    samples[i] = now_us() - t0;
  }
  check(strand_dispatcher_run(d, empty, NULL));
  print_row("post (caller side)", samples, calls);

  enum { CALLERS = 4 };
  pthread_t threads[CALLERS];
  caller_ctx cc[CALLERS];
  for (int i = 0; i < CALLERS; i++) {
    cc[i] = (caller_ctx){d, samples + (size_t)i * (size_t)calls, calls / 4};
    pthread_create(&threads[i], NULL, contended_caller, &cc[i]);
  }
  for (int i = 0; i < CALLERS; i++) pthread_join(threads[i], NULL);
  for (int i = 1; i < CALLERS; i++)
    for (long k = 0; k < calls / 4; k++) samples[(size_t)i * (size_t)(calls / 4) + (size_t)k] =
        samples[(size_t)i * (size_t)calls + (size_t)k];
  print_row("run, 4 callers at once (round trip each)", samples, (calls / 4) * CALLERS);

  strand_dispatcher_stats s;
  check(strand_dispatcher_get_stats(d, &s));
  printf("\ndispatcher's own histograms: queue wait p50 %.2f p99 %.2f us, run time p50 %.3f us "
         "(%llu samples)\n", s.queue_wait.p50_us, s.queue_wait.p99_us, s.run_time.p50_us,
         (unsigned long long)s.run_time.count);
  strand_dispatcher_release(d);
  free(samples);
  return 0;
}
