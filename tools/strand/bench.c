/*
 * bench.c — `strand bench MODEL [--threads N] [--batch B] [--intra-op T]
 * [--seconds S | --count N] [--batching MAX:DELAY_US] [--warmup S]
 * [--seed S] [--input NAME=FILE]... [--profile] [--json] [--quiet]`:
 * measures the throughput and latency of one model on one shared session,
 * and with --profile where the measured runs spent their time, by node.
 *
 * Every caller thread runs the same input tensors (made once, from a seeded
 * generator or from files) on the one session and receives fresh output
 * tensors, which it releases; the figures therefore include strand's own
 * per-run costs (checking inputs, making and releasing outputs) as a
 * caller would see them, and nothing of this program's making.
 *
 * The measured phase begins when every thread has finished its warm-up and
 * ends when the last thread returns: in --seconds mode no run starts after
 * the deadline, but the runs in flight finish and count, and the time they
 * take is counted too. Inferences per second = runs x batch / seconds.
 *
 * Exit status: 0 when every run succeeded and nothing was left alive after
 * the final release; 1 otherwise; 2 for a usage error.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "flags.h"
#include "inputs.h"
#include "json.h"
#include "latency.h"
#include "node_profile.h"
#include "strand.h"

#define MAX_THREADS 4096
#define MAX_OUTPUTS 64
#define MAX_GIVEN 64
#define DEFAULT_SECONDS 5.0
#define DEFAULT_WARMUP 1.0

static void usage(FILE *out) {
  fprintf(out,
          "usage: strand bench MODEL [--threads N] [--batch B] [--intra-op T]\n"
          "                    [--seconds S | --count N] [--batching MAX:DELAY_US]\n"
          "                    [--slice-rows N|off] [--warmup S] [--seed S]\n"
          "                    [--input NAME=FILE]... [--profile] [--json] [--quiet]\n\n"
          "Measures throughput and latency: N caller threads run MODEL on one shared\n"
          "session, all with the same inputs, for S seconds or N runs in total.\n\n"
          "  --threads N        caller threads (default 1)\n"
          "  --batch B          the value of the batch dimension (default 1)\n"
          "  --intra-op T       threads one run may use; 0: the CPU budget (default 0)\n"
          "  --seconds S        measure for S seconds (default %g)\n"
          "  --count N          measure N runs in total instead\n"
          "  --batching MAX:DELAY_US\n"
          "                     dynamic batching: stack up to MAX rows, the first run\n"
          "                     waiting at most DELAY_US microseconds (default: off)\n"
          "  --slice-rows N     run a batch as slices of N rows when its rows are proven\n"
          "                     independent; off: never; 0: strand picks (default 0)\n"
          "  --warmup S         seconds of unmeasured runs first; each thread makes at\n"
          "                     least one unless S is 0 (default %g)\n"
          "  --seed S           the seed of the random inputs (default 0)\n"
          "  --input NAME=FILE  the value of input NAME from a .npy or .pb file (FILE\n"
          "                     alone for a model with one input); its shape sets the batch\n"
          "  --profile          time every node of the measured runs and show the time\n"
          "                     by op type (and kernel, for Conv) and the slowest nodes\n"
          "                     (the time inside each node's kernel; fused nodes count in\n"
          "                     the node they joined)\n"
          "  --json             print one JSON object instead of the summary\n"
          "  --quiet            no progress line\n\n"
          "Inferences per second = runs x batch / seconds. The summary also gives\n"
          "latency percentiles, strand's peak native memory and the process's peak\n"
          "resident set (VmHWM). Exit status: 1 when a run fails, 2 for a usage error.\n",
          DEFAULT_SECONDS, DEFAULT_WARMUP);
}

/* ------------------------------------------------------------------------ */
/* Shared state                                                              */
/* ------------------------------------------------------------------------ */

typedef struct bench {
  strand_session *session;
  model_inputs inputs;
  size_t n_outputs;
  uint64_t count;           /* --count; 0 in --seconds mode */
  uint64_t warmup_ns;       /* 0: no warm-up at all */
  uint64_t warmup_start_ns;

  _Atomic uint64_t next;    /* --count: the next run index to take */
  _Atomic uint64_t done;    /* measured runs finished */
  _Atomic uint64_t warm_runs;
  _Atomic uint64_t errors;
  _Atomic int stop;         /* no run starts once set */
  _Atomic int warming;      /* threads still warming up */
  _Atomic int running;      /* threads not yet returned */

  pthread_mutex_t lock;     /* guards go and first_error */
  pthread_cond_t go_signal;
  int go;
  char first_error[512];
} bench;

typedef struct worker {
  bench *b;
  latency_histogram latency; /* written by its thread only; read after the join */
  pthread_t thread;
} worker;

static void note_error(bench *b, strand_status st) {
  atomic_fetch_add_explicit(&b->errors, 1, memory_order_relaxed);
  atomic_store(&b->stop, 1);
  char text[400];
  snprintf(text, sizeof text, "%s: %s", strand_status_name(st), strand_errmsg());
  pthread_mutex_lock(&b->lock);
  if (!b->first_error[0]) snprintf(b->first_error, sizeof b->first_error, "%s", text);
  pthread_mutex_unlock(&b->lock);
}

/* One run; its latency goes into `h` when `h` is not NULL. */
static int run_once(bench *b, latency_histogram *h) {
  strand_tensor *outputs[MAX_OUTPUTS] = {0};
  uint64_t start = latency_now_ns();
  strand_status st = strand_session_run(b->session, b->inputs.names,
                                        (const strand_tensor *const *)b->inputs.tensors,
                                        b->inputs.count, NULL, outputs, b->n_outputs);
  uint64_t end = latency_now_ns();
  for (size_t k = 0; k < b->n_outputs; k++) strand_tensor_release(outputs[k]);
  if (st) {
    note_error(b, st);
    return 0;
  }
  if (h) latency_add(h, end - start);
  return 1;
}

static int take_run(bench *b) {
  if (atomic_load_explicit(&b->stop, memory_order_relaxed)) return 0;
  if (!b->count) return 1;
  return atomic_fetch_add_explicit(&b->next, 1, memory_order_relaxed) < b->count;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  bench *b = w->b;
  if (b->warmup_ns) {
    do {
      if (!run_once(b, NULL)) break;
      atomic_fetch_add_explicit(&b->warm_runs, 1, memory_order_relaxed);
    } while (latency_now_ns() - b->warmup_start_ns < b->warmup_ns &&
             !atomic_load_explicit(&b->stop, memory_order_relaxed));
  }
  atomic_fetch_sub(&b->warming, 1);
  pthread_mutex_lock(&b->lock);
  while (!b->go) pthread_cond_wait(&b->go_signal, &b->lock);
  pthread_mutex_unlock(&b->lock);
  while (take_run(b)) {
    if (!run_once(b, &w->latency)) break;
    atomic_fetch_add_explicit(&b->done, 1, memory_order_relaxed);
  }
  atomic_fetch_sub_explicit(&b->running, 1, memory_order_release);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Flags                                                                     */
/* ------------------------------------------------------------------------ */

static int parse_count(const char *flag, const char *text, uint64_t min, uint64_t max,
                       uint64_t *out) {
  return flags_parse_count("bench", flag, text, min, max, out);
}

/* Seconds: above 0, or from 0 when `zero_ok`; at most a million. */
static int parse_seconds(const char *flag, const char *text, int zero_ok, double *out) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || end == text || *end || !isfinite(v) || text[0] == '-' || v > 1e6 ||
      (zero_ok ? v < 0 : v <= 0)) {
    fprintf(stderr, "strand bench: %s wants seconds %s, not \"%s\"\n", flag,
            zero_ok ? "from 0 to 1000000" : "above 0, at most 1000000", text);
    return 0;
  }
  *out = v;
  return 1;
}

/* MAX:DELAY_US, MAX from 2 rows. */
static int parse_batching(const char *text, uint64_t *rows, uint64_t *delay_us) {
  const char *colon = strchr(text, ':');
  char *end;
  unsigned long long r = 0, d = 0;
  int ok = colon && colon != text && colon[1] && text[0] != '-' && colon[1] != '-' &&
           text[0] != '+' && colon[1] != '+';
  if (ok) {
    errno = 0;
    r = strtoull(text, &end, 10);
    ok = !errno && end == colon && r >= 2 && r <= (1u << 20);
  }
  if (ok) {
    errno = 0;
    d = strtoull(colon + 1, &end, 10);
    ok = !errno && !*end && d <= 10000000;
  }
  if (!ok) {
    fprintf(stderr,
            "strand bench: --batching wants MAX:DELAY_US, MAX rows from 2 to 1048576 and "
            "DELAY_US from 0 to 10000000 microseconds, not \"%s\"\n",
            text);
    return 0;
  }
  *rows = r;
  *delay_us = d;
  return 1;
}

/* ------------------------------------------------------------------------ */
/* Reporting                                                                 */
/* ------------------------------------------------------------------------ */

/* VmHWM (peak) or VmRSS (now) of this process, in bytes; 0 if unknown. */
static uint64_t proc_status_bytes(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  size_t n = strlen(field);
  uint64_t kib = 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':') {
      kib = strtoull(line + n + 1, NULL, 10);
      break;
    }
  fclose(f);
  return kib * 1024;
}

static double mib(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* Rewrites the progress line on the terminal. */
static void progress(double elapsed, uint64_t runs, double rate, int warming) {
  if (warming)
    fprintf(stderr, "\r  warming up  %6.1f s  %10llu runs            ", elapsed,
            (unsigned long long)runs);
  else
    fprintf(stderr, "\r  %8.1f s  %10llu runs  %12.1f inferences/s   ", elapsed,
            (unsigned long long)runs, rate);
  fflush(stderr);
}

static void progress_clear(void) {
  fprintf(stderr, "\r%70s\r", "");
  fflush(stderr);
}

static void sleep_ns(uint64_t ns) {
  struct timespec nap = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  nanosleep(&nap, NULL);
}

typedef struct figures {
  const char *model;
  uint64_t threads, batch, intra_op, batch_rows, batch_delay_us, seed;
  int batching;
  double warmup_s, seconds, model_load_ms, session_ms;
  uint64_t warm_runs, runs;
  latency_histogram latency;
  strand_memory_stats memory;
  strand_session_stats session;
  int have_session_stats;
  uint64_t baseline_rss, peak_rss;
  int profiled;         /* --profile given */
  node_profile profile; /* when profiled: the measured runs' node times */
} figures;

static void print_json(const figures *f) {
  double ips = f->seconds > 0 ? (double)f->runs * (double)f->batch / f->seconds : 0;
  double rps = f->seconds > 0 ? (double)f->runs / f->seconds : 0;
  printf("{\"model\": ");
  json_string(stdout, f->model);
  printf(", \"strand_version\": ");
  json_string(stdout, strand_version());
  printf(", \"threads\": %llu, \"batch\": %llu, \"intra_op\": %llu, \"thread_budget\": %u",
         (unsigned long long)f->threads, (unsigned long long)f->batch,
         (unsigned long long)f->intra_op, strand_threads_get_budget());
  if (f->batching)
    printf(", \"batching\": {\"max_rows\": %llu, \"delay_us\": %llu}",
           (unsigned long long)f->batch_rows, (unsigned long long)f->batch_delay_us);
  else
    printf(", \"batching\": null");
  printf(", \"seed\": %llu, \"warmup_s\": %.3f, \"warmup_runs\": %llu", (unsigned long long)f->seed,
         f->warmup_s, (unsigned long long)f->warm_runs);
  printf(", \"runs\": %llu, \"seconds\": %.9f, \"runs_per_s\": %.3f, \"inferences_per_s\": %.3f",
         (unsigned long long)f->runs, f->seconds, rps, ips);
  printf(", \"latency_ms\": {\"p50\": %.6f, \"p90\": %.6f, \"p99\": %.6f, \"max\": %.6f, "
         "\"mean\": %.6f}",
         latency_quantile_ns(&f->latency, 0.50) / 1e6, latency_quantile_ns(&f->latency, 0.90) / 1e6,
         latency_quantile_ns(&f->latency, 0.99) / 1e6, (double)f->latency.max_ns / 1e6,
         latency_mean_ns(&f->latency) / 1e6);
  printf(", \"sliced_runs\": %llu, \"slices\": %llu",
         (unsigned long long)(f->have_session_stats ? f->session.sliced_runs : 0),
         (unsigned long long)(f->have_session_stats ? f->session.slices : 0));
  printf(", \"load_ms\": %.3f, \"model_load_ms\": %.3f, \"session_create_ms\": %.3f",
         f->model_load_ms + f->session_ms, f->model_load_ms, f->session_ms);
  printf(", \"peak_native_bytes\": %llu, \"peak_native_by_category\": {",
         (unsigned long long)f->memory.total_peak_bytes);
  for (int c = 0; c < STRAND_MEMORY_CATEGORY_COUNT; c++)
    printf("%s\"%s\": %llu", c ? ", " : "", strand_memory_category_name((strand_memory_category)c),
           (unsigned long long)f->memory.peak_bytes[c]);
  printf("}, \"peak_rss_bytes\": %llu, \"baseline_rss_bytes\": %llu",
         (unsigned long long)f->peak_rss, (unsigned long long)f->baseline_rss);
  if (f->have_session_stats)
    printf(", \"batches\": %llu, \"batched_runs\": %llu, \"batched_rows\": %llu",
           (unsigned long long)f->session.batches, (unsigned long long)f->session.batched_runs,
           (unsigned long long)f->session.batched_rows);
  if (f->profiled) {
    printf(", ");
    node_profile_print_json(stdout, &f->profile, f->runs);
  }
  printf("}\n");
}

static void print_summary(const figures *f) {
  double ips = f->seconds > 0 ? (double)f->runs * (double)f->batch / f->seconds : 0;
  double rps = f->seconds > 0 ? (double)f->runs / f->seconds : 0;
  printf("bench: %s\n", f->model);
  printf("  threads %llu, batch %llu, intra-op ", (unsigned long long)f->threads,
         (unsigned long long)f->batch);
  if (f->intra_op)
    printf("%llu", (unsigned long long)f->intra_op);
  else
    printf("the CPU budget");
  printf(" (budget %u), batching ", strand_threads_get_budget());
  if (f->batching)
    printf("up to %llu rows, %llu us\n", (unsigned long long)f->batch_rows,
           (unsigned long long)f->batch_delay_us);
  else
    printf("off\n");
  printf("  load           %.2f ms (model %.2f ms, session %.2f ms)\n",
         f->model_load_ms + f->session_ms, f->model_load_ms, f->session_ms);
  printf("  warm-up        %llu runs, %.2f s asked\n", (unsigned long long)f->warm_runs,
         f->warmup_s);
  printf("  runs           %llu in %.3f s\n", (unsigned long long)f->runs, f->seconds);
  printf("  throughput     %.1f inferences/s (%.1f runs/s)\n", ips, rps);
  printf("  latency        p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms, mean %.3f ms\n",
         latency_quantile_ns(&f->latency, 0.50) / 1e6, latency_quantile_ns(&f->latency, 0.90) / 1e6,
         latency_quantile_ns(&f->latency, 0.99) / 1e6, (double)f->latency.max_ns / 1e6,
         latency_mean_ns(&f->latency) / 1e6);
  if (f->have_session_stats && f->session.batches)
    printf("  batching       %llu stacked runs served %llu runs (mean %.1f), mean wait %.1f us\n",
           (unsigned long long)f->session.batches, (unsigned long long)f->session.batched_runs,
           (double)f->session.batched_runs / (double)f->session.batches,
           f->session.batched_runs
               ? (double)f->session.batch_wait_ns / (double)f->session.batched_runs / 1e3
               : 0.0);
  if (f->have_session_stats && f->session.sliced_runs)
    printf("  slicing        %llu runs made as %llu slices (%.1f rows each)\n",
           (unsigned long long)f->session.sliced_runs, (unsigned long long)f->session.slices,
           (double)(f->session.sliced_runs * f->batch) / (double)f->session.slices);
  printf("  peak native    %.1f MiB (", mib(f->memory.total_peak_bytes));
  for (int c = 0; c < STRAND_MEMORY_CATEGORY_COUNT; c++)
    printf("%s%s %.1f", c ? ", " : "", strand_memory_category_name((strand_memory_category)c),
           mib(f->memory.peak_bytes[c]));
  printf(")\n");
  printf("  peak RSS       %.1f MiB (%.1f MiB before loading)\n", mib(f->peak_rss),
         mib(f->baseline_rss));
  if (f->profiled) node_profile_print_text(stdout, &f->profile, f->runs, 10);
}

/* ------------------------------------------------------------------------ */
/* The command                                                               */
/* ------------------------------------------------------------------------ */

typedef struct given {
  const char *name; /* NULL: the model's only input */
  const char *path;
} given;

int strand_cmd_bench(int argc, char **argv) {
  const char *model_path = NULL;
  uint64_t threads = 1, batch = 1, intra_op = 0, count = 0, seed = 0, rows = 0, delay_us = 0;
  uint64_t slice_rows = 0;
  double seconds = DEFAULT_SECONDS, warmup = DEFAULT_WARMUP;
  int json = 0, quiet = 0, batching = 0, have_seconds = 0, have_batch = 0, profiled = 0;
  given inputs_given[MAX_GIVEN];
  size_t n_given = 0;
  char flag[64];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    char *value = NULL;
    /* --flag=value is --flag value */
    char *eq = strncmp(a, "--", 2) == 0 ? strchr(argv[i], '=') : NULL;
    if (eq && (size_t)(eq - a) < sizeof flag) {
      memcpy(flag, a, (size_t)(eq - a));
      flag[eq - a] = '\0';
      a = flag;
      value = eq + 1;
    }
    int wants_value = strcmp(a, "--threads") == 0 || strcmp(a, "--batch") == 0 ||
                      strcmp(a, "--intra-op") == 0 || strcmp(a, "--seconds") == 0 ||
                      strcmp(a, "--count") == 0 || strcmp(a, "--batching") == 0 ||
                      strcmp(a, "--warmup") == 0 || strcmp(a, "--seed") == 0 ||
                      strcmp(a, "--input") == 0 || strcmp(a, "--slice-rows") == 0;
    if (wants_value && !value) {
      if (i + 1 >= argc) {
        fprintf(stderr, "strand bench: %s needs a value\n", a);
        return 2;
      }
      value = argv[++i];
    } else if (!wants_value && value) {
      fprintf(stderr, "strand bench: %s takes no value\n", a);
      return 2;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--threads") == 0) {
      if (!parse_count(a, value, 1, MAX_THREADS, &threads)) return 2;
    } else if (strcmp(a, "--batch") == 0) {
      if (!parse_count(a, value, 1, 1 << 20, &batch)) return 2;
      have_batch = 1;
    } else if (strcmp(a, "--intra-op") == 0) {
      if (!parse_count(a, value, 0, 1024, &intra_op)) return 2;
    } else if (strcmp(a, "--seconds") == 0) {
      if (!parse_seconds(a, value, 0, &seconds)) return 2;
      have_seconds = 1;
    } else if (strcmp(a, "--count") == 0) {
      if (!parse_count(a, value, 1, UINT64_MAX / 2, &count)) return 2;
    } else if (strcmp(a, "--batching") == 0) {
      if (!parse_batching(value, &rows, &delay_us)) return 2;
      batching = 1;
    } else if (strcmp(a, "--slice-rows") == 0) {
      if (strcmp(value, "off") == 0) slice_rows = STRAND_SLICE_OFF;
      else if (!parse_count(a, value, 0, 1 << 20, &slice_rows)) return 2;
    } else if (strcmp(a, "--warmup") == 0) {
      if (!parse_seconds(a, value, 1, &warmup)) return 2;
    } else if (strcmp(a, "--seed") == 0) {
      if (!parse_count(a, value, 0, UINT64_MAX, &seed)) return 2;
    } else if (strcmp(a, "--input") == 0) {
      if (n_given == MAX_GIVEN) {
        fprintf(stderr, "strand bench: at most %d --input flags\n", MAX_GIVEN);
        return 2;
      }
      char *sep = strchr(value, '=');
      if (sep && sep != value) {
        *sep = '\0'; /* argv's strings are the program's to change */
        inputs_given[n_given++] = (given){value, sep + 1};
      } else if (!value[0]) {
        fprintf(stderr, "strand bench: --input wants NAME=FILE or FILE, not \"\"\n");
        return 2;
      } else {
        inputs_given[n_given++] = (given){NULL, value};
      }
    } else if (strcmp(a, "--json") == 0) {
      json = 1;
    } else if (strcmp(a, "--profile") == 0) {
      profiled = 1;
    } else if (strcmp(a, "--quiet") == 0) {
      quiet = 1;
    } else if (a[0] == '-' || model_path) {
      fprintf(stderr, "strand bench: unexpected argument \"%s\" (try --help)\n", argv[i]);
      return 2;
    } else {
      model_path = a;
    }
  }
  if (!model_path) {
    fprintf(stderr, "strand bench: no model given\n");
    usage(stderr);
    return 2;
  }
  if (count && have_seconds) {
    fprintf(stderr, "strand bench: --seconds and --count exclude each other\n");
    return 2;
  }
  int status = 1;

  bench *b = calloc(1, sizeof *b);
  worker *workers = calloc(threads, sizeof *workers);
  if (!b || !workers) {
    fprintf(stderr, "strand bench: out of memory\n");
    free(b);
    free(workers);
    return 1;
  }
  pthread_mutex_init(&b->lock, NULL);
  pthread_cond_init(&b->go_signal, NULL);
  b->count = count;
  b->warmup_ns = (uint64_t)(warmup * 1e9);

  figures f;
  memset(&f, 0, sizeof f);
  f.model = model_path;
  f.threads = threads;
  f.intra_op = intra_op;
  f.batching = batching;
  f.batch_rows = rows;
  f.batch_delay_us = delay_us;
  f.seed = seed;
  f.warmup_s = warmup;
  f.baseline_rss = proc_status_bytes("VmRSS");

  strand_model *model = NULL;
  size_t started = 0;
  char error[600];
  strand_session_options options = {.struct_size = sizeof options,
                                    .intra_op_threads = (unsigned)intra_op,
                                    .batch_max_rows = (unsigned)rows,
                                    .batch_delay_us = (uint32_t)delay_us,
                                    .slice_rows = (unsigned)slice_rows};
  uint64_t t0 = latency_now_ns();
  if (strand_model_load(model_path, &model)) {
    fprintf(stderr, "strand bench: loading %s: %s\n", model_path, strand_errmsg());
    goto done;
  }
  uint64_t t1 = latency_now_ns();
  if (strand_session_create(model, &options, &b->session)) {
    fprintf(stderr, "strand bench: preparing %s: %s\n", model_path, strand_errmsg());
    goto done;
  }
  uint64_t t2 = latency_now_ns();
  f.model_load_ms = (double)(t1 - t0) / 1e6;
  f.session_ms = (double)(t2 - t1) / 1e6;

  strand_model_output_count(model, &b->n_outputs);
  if (b->n_outputs > MAX_OUTPUTS) {
    fprintf(stderr, "strand bench: %s has %zu outputs; at most %d are supported here\n",
            model_path, b->n_outputs, MAX_OUTPUTS);
    goto done;
  }
  if (inputs_describe(model, batch, &b->inputs, error, sizeof error)) {
    fprintf(stderr, "strand bench: %s: %s\n", model_path, error);
    goto done;
  }
  for (size_t g = 0; g < n_given; g++) {
    const char *name = inputs_given[g].name;
    if (!name) {
      if (b->inputs.count != 1) {
        fprintf(stderr,
                "strand bench: --input %s names no input, but %s has %zu inputs: use "
                "--input NAME=FILE\n",
                inputs_given[g].path, model_path, b->inputs.count);
        status = 2;
        goto done;
      }
      name = b->inputs.names[0];
    }
    int read = inputs_read(&b->inputs, name, inputs_given[g].path, error, sizeof error);
    if (read) {
      fprintf(stderr, "strand bench: %s\n", error);
      if (read == -2) status = 2; /* a name the model lacks, or given twice */
      goto done;
    }
  }
  /* A file sets the batch; an explicit --batch must then agree with it. */
  for (size_t i = 0; i < b->inputs.count && n_given; i++) {
    int axis = b->inputs.batch_axis[i];
    if (!b->inputs.tensors[i] || axis < 0) continue;
    int64_t in_file = b->inputs.dims[i][axis];
    if (have_batch && (uint64_t)in_file != batch) {
      fprintf(stderr,
              "strand bench: --batch %llu, but input \"%s\" from a file has %lld rows in its "
              "batch dimension (%d)\n",
              (unsigned long long)batch, b->inputs.names[i], (long long)in_file, axis);
      status = 2;
      goto done;
    }
    batch = (uint64_t)in_file;
    have_batch = 1;
  }
  f.batch = batch;
  for (size_t i = 0; i < b->inputs.count; i++) /* the inputs still to make */
    if (!b->inputs.tensors[i] && b->inputs.batch_axis[i] >= 0)
      b->inputs.dims[i][b->inputs.batch_axis[i]] = (int64_t)batch;
  if (inputs_fill_random(&b->inputs, seed, error, sizeof error)) {
    fprintf(stderr, "strand bench: %s\n", error);
    goto done;
  }

  int terminal = !quiet && isatty(STDERR_FILENO);
  atomic_store(&b->warming, (int)threads);
  atomic_store(&b->running, (int)threads);
  b->warmup_start_ns = latency_now_ns();
  for (; started < threads; started++) {
    workers[started].b = b;
    if (pthread_create(&workers[started].thread, NULL, worker_main, &workers[started])) {
      fprintf(stderr, "strand bench: cannot start thread %zu\n", started);
      atomic_store(&b->stop, 1);
      atomic_fetch_sub(&b->warming, (int)(threads - started));
      atomic_fetch_sub(&b->running, (int)(threads - started));
      atomic_fetch_add(&b->errors, 1);
      break;
    }
  }
  uint64_t tick = 250000000u; /* the progress line's refresh: 4 times a second */
  uint64_t last_tick = b->warmup_start_ns;
  while (atomic_load(&b->warming) > 0) {
    sleep_ns(20000000u);
    uint64_t now = latency_now_ns();
    if (terminal && now - last_tick >= tick) {
      progress((double)(now - b->warmup_start_ns) / 1e9, atomic_load(&b->warm_runs), 0, 1);
      last_tick = now;
    }
  }

  /* The measured phase. Batching figures count from here (every thread now
   * waits for the signal, so the session is idle). */
  strand_session_stats before_stats = {.struct_size = sizeof before_stats};
  strand_session_get_stats(b->session, &before_stats);
  if (profiled &&
      (strand_session_set_profiling(b->session, 1) || strand_session_reset_profile(b->session))) {
    fprintf(stderr, "strand bench: --profile: %s\n", strand_errmsg());
    atomic_store(&b->stop, 1);
    atomic_fetch_add(&b->errors, 1);
  }
  uint64_t start = latency_now_ns(), deadline = start + (uint64_t)(seconds * 1e9);
  pthread_mutex_lock(&b->lock);
  b->go = 1;
  pthread_cond_broadcast(&b->go_signal);
  pthread_mutex_unlock(&b->lock);
  uint64_t last_runs = 0;
  last_tick = start;
  while (atomic_load_explicit(&b->running, memory_order_acquire) > 0) {
    uint64_t now = latency_now_ns(), wake = last_tick + tick;
    if (!count && !atomic_load(&b->stop)) {
      if (now >= deadline) {
        atomic_store(&b->stop, 1);
        continue;
      }
      if (deadline < wake) wake = deadline;
    }
    uint64_t nap = wake > now ? wake - now : 0;
    sleep_ns(nap < 20000000u ? nap : 20000000u);
    now = latency_now_ns();
    if (now - last_tick >= tick) {
      uint64_t runs = atomic_load_explicit(&b->done, memory_order_relaxed);
      double rate = (double)(runs - last_runs) * (double)batch / ((double)(now - last_tick) / 1e9);
      if (terminal) progress((double)(now - start) / 1e9, runs, rate, 0);
      last_runs = runs;
      last_tick = now;
    }
  }
  for (size_t t = 0; t < started; t++) pthread_join(workers[t].thread, NULL);
  f.seconds = (double)(latency_now_ns() - start) / 1e9;
  if (terminal) progress_clear();

  f.runs = atomic_load(&b->done);
  f.warm_runs = atomic_load(&b->warm_runs);
  for (size_t t = 0; t < started; t++) latency_merge(&f.latency, &workers[t].latency);
  f.memory.struct_size = sizeof f.memory;
  strand_memory_get_stats(&f.memory);
  f.session.struct_size = sizeof f.session;
  f.have_session_stats = strand_session_get_stats(b->session, &f.session) == STRAND_OK;
  f.session.batches -= before_stats.batches;
  f.session.batched_runs -= before_stats.batched_runs;
  f.session.batched_rows -= before_stats.batched_rows;
  f.session.batch_wait_ns -= before_stats.batch_wait_ns;
  f.session.sliced_runs -= before_stats.sliced_runs;
  f.session.slices -= before_stats.slices;
  f.peak_rss = proc_status_bytes("VmHWM");
  if (profiled) {
    f.profiled = 1;
    if (node_profile_gather(b->session, &f.profile)) {
      fprintf(stderr, "strand bench: --profile: out of memory gathering the node times\n");
      atomic_fetch_add(&b->errors, 1);
    }
  }
  if (atomic_load(&b->errors)) {
    fprintf(stderr, "strand bench: a run of %s failed: %s\n", model_path,
            b->first_error[0] ? b->first_error : "a thread could not start");
    goto done;
  }
  if (json)
    print_json(&f);
  else
    print_summary(&f);
  fflush(stdout);
  status = 0;

done:
  node_profile_free(&f.profile);
  inputs_release(&b->inputs);
  strand_session_release(b->session);
  strand_model_release(model);
  {
    strand_memory_stats after = {.struct_size = sizeof after};
    strand_memory_get_stats(&after);
    if (after.total_live_objects || after.total_live_bytes) {
      fprintf(stderr, "strand bench: %llu objects, %llu bytes left alive after release\n",
              (unsigned long long)after.total_live_objects,
              (unsigned long long)after.total_live_bytes);
      strand_leak_report_print(stderr, NULL);
      status = 1;
    }
  }
  pthread_cond_destroy(&b->go_signal);
  pthread_mutex_destroy(&b->lock);
  free(workers);
  free(b);
  return status;
}
