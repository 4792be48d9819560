/* model_load — how long strand takes to load a model and what it keeps
 * resident. Loads MODEL `--repeat N` times (each load released before the
 * next), prints one JSON line: median and best milliseconds, the resident
 * set growth while one load is held, and strand's counted bytes.
 *   bench_model_load MODEL [--repeat N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "strand.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Resident bytes of this process, from /proc/self/statm. */
static long long resident_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long long size = 0, resident = 0;
  if (!f) return -1;
  if (fscanf(f, "%lld %lld", &size, &resident) != 2) resident = -1;
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench_model_load MODEL [--repeat N]\n");
    return 2;
  }
  int repeat = 9;
  for (int i = 2; i + 1 < argc; i++)
    if (strcmp(argv[i], "--repeat") == 0) repeat = atoi(argv[++i]);
  if (repeat < 1 || repeat > 1000) repeat = 9;
  double *ms = calloc((size_t)repeat, sizeof *ms);
  long long rss_growth = 0;
  uint64_t counted = 0, params = 0, param_bytes = 0;
  for (int r = 0; r < repeat; r++) {
    long long before = resident_bytes();
    double t0 = now_ms();
    strand_model *model;
    if (strand_model_load(argv[1], &model) != STRAND_OK) {
      fprintf(stderr, "bench_model_load: %s\n", strand_errmsg());
      return 1;
    }
    ms[r] = now_ms() - t0;
    if (r == 0) {
      rss_growth = resident_bytes() - before;
      strand_memory_stats st = {.struct_size = sizeof st};
      strand_memory_get_stats(&st);
      counted = st.total_live_bytes;
      strand_model_parameter_count(model, &params, &param_bytes);
    }
    strand_model_release(model);
  }
  qsort(ms, (size_t)repeat, sizeof *ms, by_value);
  printf("{\"runtime\": \"strand\", \"model\": \"%s\", \"load_ms_median\": %.3f, "
         "\"load_ms_best\": %.3f, \"rss_growth_bytes\": %lld, \"counted_bytes\": %llu, "
         "\"parameter_bytes\": %llu}\n",
         argv[1], ms[repeat / 2], ms[0], rss_growth, (unsigned long long)counted,
         (unsigned long long)param_bytes);
  free(ms);
  return 0;
}
