/*
 * run.c — `strand run MODEL [--input NAME=FILE]... [--random [--seed N]]
 * [--output-dir DIR]`: runs a model once, through the public API only.
 *
 * Inputs come from .npy or .pb (ONNX TensorProto) files; with --random the
 * inputs not given are filled from the seeded generator that bench and
 * stress use too (inputs.h; symbolic or unknown dimensions taken as 1).
 * Every output is summarized on stdout (name, dtype, shape, the first
 * values) and, with --output-dir, written to DIR/<name>.npy, the name made
 * safe for the file system.
 *
 * Exit status: 0 when the run succeeds, 1 when loading, reading or running
 * fails (one line on stderr naming what failed), 2 for a usage error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "commands.h"
#include "inputs.h"
#include "strand.h"

#define MAX_GIVEN 256

static void usage(FILE *out) {
  fprintf(out,
          "usage: strand run MODEL [--input NAME=FILE]... [--random [--seed N]]\n"
          "                  [--output-dir DIR]\n\n"
          "Runs an ONNX model once and prints each output's name, dtype, shape and\n"
          "first values.\n\n"
          "  --input NAME=FILE  the value of input NAME, from a .npy or .pb file\n"
          "                     (FILE alone when the model has one input)\n"
          "  --random           fill inputs not given with random values\n"
          "                     (symbolic dimensions taken as 1)\n"
          "  --seed N           the seed for --random (default 0)\n"
          "  --output-dir DIR   write each output to DIR/<name>.npy\n");
}

typedef struct given {
  const char *name; /* NULL: the model's only input */
  const char *path;
} given;

/* A tensor for input `v` filled from the generator whose state is *state. */
static strand_status random_tensor(const strand_value_info *v, uint64_t *state,
                                   strand_tensor **out) {
  int64_t dims[STRAND_MAX_RANK];
  size_t rank = v->rank_known ? v->rank : 0;
  for (size_t i = 0; i < rank; i++) dims[i] = v->dims[i] >= 0 ? v->dims[i] : 1;
  strand_dtype dtype = v->dtype == STRAND_DTYPE_UNDEFINED ? STRAND_DTYPE_FLOAT32 : v->dtype;
  return inputs_random_tensor(dtype, dims, rank, state, out);
}

/* The output's file name: characters other than letters, digits, '-', '_'
 * and '.' become '_'; a name that is empty or all dots gets a prefix. */
static void safe_name(const char *name, size_t index, char *buf, size_t size) {
  size_t n = 0, dots = 0;
  for (const char *p = name; *p && n + 1 < size; p++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_' || c == '.';
    buf[n++] = ok ? c : '_';
    dots += c == '.';
  }
  buf[n] = '\0';
  if (n == 0 || dots == n) snprintf(buf, size, "output_%zu", index);
}

static void print_shape(FILE *out, const int64_t *dims, size_t rank) {
  fputc('[', out);
  for (size_t i = 0; i < rank; i++) fprintf(out, "%s%lld", i ? ", " : "", (long long)dims[i]);
  fputc(']', out);
}

static void print_values(FILE *out, const strand_tensor *t) {
  strand_dtype dtype;
  size_t n = 0;
  void *data = NULL;
  strand_tensor_dtype(t, &dtype);
  strand_tensor_element_count(t, &n);
  strand_tensor_data(t, &data);
  size_t shown = n < 6 ? n : 6;
  for (size_t i = 0; i < shown; i++) {
    fputs(i ? " " : "", out);
    switch (dtype) {
    case STRAND_DTYPE_FLOAT32: fprintf(out, "%.6g", (double)((const float *)data)[i]); break;
    case STRAND_DTYPE_FLOAT64: fprintf(out, "%.6g", ((const double *)data)[i]); break;
    case STRAND_DTYPE_INT64: fprintf(out, "%lld", (long long)((const int64_t *)data)[i]); break;
    case STRAND_DTYPE_INT32: fprintf(out, "%d", ((const int32_t *)data)[i]); break;
    case STRAND_DTYPE_INT16: fprintf(out, "%d", ((const int16_t *)data)[i]); break;
    case STRAND_DTYPE_INT8: fprintf(out, "%d", ((const int8_t *)data)[i]); break;
    case STRAND_DTYPE_UINT8: fprintf(out, "%u", ((const uint8_t *)data)[i]); break;
    case STRAND_DTYPE_UINT16: fprintf(out, "%u", ((const uint16_t *)data)[i]); break;
    case STRAND_DTYPE_UINT32: fprintf(out, "%u", ((const uint32_t *)data)[i]); break;
    case STRAND_DTYPE_UINT64: fprintf(out, "%llu", (unsigned long long)((const uint64_t *)data)[i]); break;
    case STRAND_DTYPE_BOOL: fputs(((const uint8_t *)data)[i] ? "true" : "false", out); break;
    default: fputs("?", out); break;
    }
  }
  if (n > shown) fprintf(out, " ... (%zu values)", n);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct run_state {
  strand_model *model;
  strand_session *session;
  size_t n_inputs, n_outputs;
  const char **input_names;
  strand_tensor **inputs;
  strand_tensor **outputs;
} run_state;

static void cleanup(run_state *r) {
  for (size_t i = 0; r->inputs && i < r->n_inputs; i++) strand_tensor_release(r->inputs[i]);
  for (size_t i = 0; r->outputs && i < r->n_outputs; i++) strand_tensor_release(r->outputs[i]);
  free(r->inputs);
  free(r->outputs);
  free(r->input_names);
  strand_session_release(r->session);
  strand_model_release(r->model);
}

static int fail(run_state *r, const char *what, const char *subject) {
  fprintf(stderr, "strand run: %s%s%s: %s\n", what, subject ? " " : "", subject ? subject : "",
          strand_errmsg());
  cleanup(r);
  return 1;
}

/* Native memory while everything is alive: weights, run memory, outputs. */
static void print_memory_and_leaks(const run_state *r) {
  (void)r;
  strand_memory_stats st = {.struct_size = sizeof st};
  strand_memory_get_stats(&st);
  printf("native memory: %llu bytes live, %llu peak (", (unsigned long long)st.total_live_bytes,
         (unsigned long long)st.total_peak_bytes);
  for (int c = 0; c < STRAND_MEMORY_CATEGORY_COUNT; c++)
    printf("%s%s %llu", c ? ", " : "", strand_memory_category_name((strand_memory_category)c),
           (unsigned long long)st.peak_bytes[c]);
  printf(" at peak)\n");
}

/* After the last release nothing may be left: says so, or prints the leak
 * report and fails. */
static int report_leftovers(void) {
  strand_memory_stats st = {.struct_size = sizeof st};
  strand_memory_get_stats(&st);
  if (st.total_live_objects == 0 && st.total_live_bytes == 0) {
    printf("after release: 0 objects, 0 bytes alive (no leaks)\n");
    return 0;
  }
  fprintf(stderr, "strand run: %llu objects and %llu bytes still alive after release:\n",
          (unsigned long long)st.total_live_objects, (unsigned long long)st.total_live_bytes);
  strand_leak_report_print(stderr, NULL);
  return 1;
}

static int write_outputs(run_state *r, const char *dir) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "strand run: cannot create %s: %s\n", dir, strerror(errno));
    return 1;
  }
  for (size_t i = 0; i < r->n_outputs; i++) {
    strand_value_info v;
    strand_model_output(r->model, i, &v);
    char name[200], path[4096];
    safe_name(v.name, i, name, sizeof name);
    /* Two names made the same by the clean-up get the output's index. */
    for (size_t j = 0; j < i; j++) {
      strand_value_info w;
      char other[200];
      strand_model_output(r->model, j, &w);
      safe_name(w.name, j, other, sizeof other);
      if (strcmp(other, name) == 0) {
        size_t len = strlen(name);
        snprintf(name + len, sizeof name - len, "_%zu", i);
        break;
      }
    }
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    if (strand_tensor_write_npy(r->outputs[i], path)) {
      fprintf(stderr, "strand run: writing %s: %s\n", path, strand_errmsg());
      return 1;
    }
  }
  return 0;
}

int strand_cmd_run(int argc, char **argv) {
  const char *model_path = NULL, *output_dir = NULL;
  given givens[MAX_GIVEN];
  size_t n_given = 0;
  int random_fill = 0;
  uint64_t seed = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--input") == 0 && i + 1 < argc) {
      if (n_given == MAX_GIVEN) {
        fprintf(stderr, "strand run: more than %d --input options\n", MAX_GIVEN);
        return 2;
      }
      char *spec = argv[++i], *eq = strchr(spec, '=');
      if (eq) {
        *eq = '\0';
        givens[n_given++] = (given){spec, eq + 1};
      } else {
        givens[n_given++] = (given){NULL, spec};
      }
    } else if (strcmp(a, "--random") == 0) {
      random_fill = 1;
    } else if (strcmp(a, "--seed") == 0 && i + 1 < argc) {
      char *end;
      seed = strtoull(argv[++i], &end, 10);
      if (*end) {
        fprintf(stderr, "strand run: --seed wants a number, not \"%s\"\n", argv[i]);
        return 2;
      }
    } else if (strcmp(a, "--output-dir") == 0 && i + 1 < argc) {
      output_dir = argv[++i];
    } else if (a[0] == '-' || model_path) {
      fprintf(stderr, "strand run: unexpected argument \"%s\"\n", a);
      usage(stderr);
      return 2;
    } else {
      model_path = a;
    }
  }
  if (!model_path) {
    usage(stderr);
    return 2;
  }

  run_state r;
  memset(&r, 0, sizeof r);
  if (strand_model_load(model_path, &r.model)) return fail(&r, "loading", model_path);
  if (strand_session_create(r.model, NULL, &r.session)) return fail(&r, "preparing", model_path);
  strand_model_input_count(r.model, &r.n_inputs);
  strand_model_output_count(r.model, &r.n_outputs);
  r.inputs = calloc(r.n_inputs + 1, sizeof *r.inputs);
  r.input_names = calloc(r.n_inputs + 1, sizeof *r.input_names);
  r.outputs = calloc(r.n_outputs + 1, sizeof *r.outputs);
  if (!r.inputs || !r.input_names || !r.outputs) {
    fprintf(stderr, "strand run: out of memory\n");
    cleanup(&r);
    return 1;
  }
  for (size_t g = 0; g < n_given; g++) {
    size_t index = 0;
    if (!givens[g].name) {
      if (r.n_inputs != 1) {
        fprintf(stderr, "strand run: --input %s needs NAME= (the model has %zu inputs)\n",
                givens[g].path, r.n_inputs);
        cleanup(&r);
        return 2;
      }
    } else if (strand_model_find_input(r.model, givens[g].name, &index)) {
      return fail(&r, "--input", givens[g].name);
    }
    strand_tensor_release(r.inputs[index]);
    r.inputs[index] = NULL;
    if (inputs_read_file(givens[g].path, &r.inputs[index]))
      return fail(&r, "reading", givens[g].path);
  }
  uint64_t state = inputs_mix(seed);
  for (size_t i = 0; i < r.n_inputs; i++) {
    strand_value_info v;
    strand_model_input(r.model, i, &v);
    r.input_names[i] = v.name;
    if (r.inputs[i]) continue;
    if (!random_fill) {
      fprintf(stderr, "strand run: input \"%s\" is not given (use --input %s=FILE, or --random)\n",
              v.name, v.name);
      cleanup(&r);
      return 2;
    }
    if (random_tensor(&v, &state, &r.inputs[i])) return fail(&r, "making input", v.name);
  }
  double start = now_ms();
  if (strand_session_run(r.session, r.input_names, (const strand_tensor *const *)r.inputs,
                         r.n_inputs, NULL, r.outputs, r.n_outputs))
    return fail(&r, "running", model_path);
  double elapsed = now_ms() - start;

  size_t width = 0;
  for (size_t i = 0; i < r.n_outputs; i++) {
    strand_value_info v;
    strand_model_output(r.model, i, &v);
    if (strlen(v.name) > width) width = strlen(v.name);
  }
  for (size_t i = 0; i < r.n_outputs; i++) {
    strand_value_info v;
    strand_dtype dtype;
    const int64_t *dims;
    size_t rank;
    strand_model_output(r.model, i, &v);
    strand_tensor_dtype(r.outputs[i], &dtype);
    strand_tensor_shape(r.outputs[i], &dims, &rank);
    printf("%-*s  %-8s ", (int)width, v.name, strand_dtype_name(dtype));
    print_shape(stdout, dims, rank);
    fputs("  ", stdout);
    print_values(stdout, r.outputs[i]);
    fputc('\n', stdout);
  }
  printf("ran in %.3f ms (first run: includes planning)\n", elapsed);
  int status = output_dir ? write_outputs(&r, output_dir) : 0;
  print_memory_and_leaks(&r);
  cleanup(&r);
  return status ? status : report_leftovers();
}
