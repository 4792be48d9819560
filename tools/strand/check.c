/*
 * check.c — `strand check [OPTIONS] DIR...`: runs ONNX test-data directories
 * (model.onnx, test_data_set_N/input_K.pb, output_K.pb) through a session and
 * compares every output with the expected one, through the public API only.
 *
 * Each directory ends as one of:
 *   PASS         every output of every data set within tolerance;
 *   FAIL         an output with the wrong dtype or shape, or a value out of
 *                tolerance;
 *   UNSUPPORTED  the model does not load, or its session cannot be created,
 *                with STRAND_E_UNSUPPORTED (an op without a kernel, a type
 *                strand lacks), or a test file holds such a type;
 *   ERROR        any other failure: a malformed directory, a failing load,
 *                session or run (a run that fails with STRAND_E_UNSUPPORTED
 *                is an ERROR too: unsupported ops must be reported when the
 *                session is created, never mid-run).
 *
 * Exit status: 0 when no directory FAILs or ERRORs, 1 otherwise, 2 for a
 * usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "commands.h"
#include "json.h"
#include "strand.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: strand check [--rtol X] [--atol X] [--json] [--quiet] DIR...\n\n"
          "Runs ONNX test-data directories (DIR/model.onnx with\n"
          "DIR/test_data_set_N/input_K.pb and output_K.pb) and compares every output with\n"
          "the expected one. A DIR without model.onnx stands for each of its\n"
          "subdirectories that has one.\n\n"
          "Inputs are matched to the model's inputs by the TensorProto's name, or by\n"
          "position K when it has none. An output passes when dtype and shape are equal\n"
          "and every element a of it and e of the expected output has\n"
          "|a - e| <= atol + rtol * |e| (NaN equals NaN, infinities must be equal);\n"
          "integer and bool outputs must be equal. For float16 outputs rtol is at\n"
          "least 2^-10 and for bfloat16 at least 2^-6 (one and two units in the last\n"
          "place, as ONNX's own test runner allows).\n\n"
          "Each DIR prints PASS, FAIL, UNSUPPORTED (the model needs what strand lacks)\n"
          "or ERROR, then a summary line. Exit status: 0 when nothing FAILs or ERRORs,\n"
          "1 otherwise, 2 for a usage error.\n\n"
          "  --rtol X   relative tolerance (default 1e-4)\n"
          "  --atol X   absolute tolerance (default 1e-5)\n"
          "  --json     print one JSON object per directory (one line each); the\n"
          "             summary goes to stderr\n"
          "  --quiet    print only what does not pass, and the summary\n");
}

/* ---- results ----------------------------------------------------------- */

typedef enum { RESULT_PASS, RESULT_FAIL, RESULT_UNSUPPORTED, RESULT_ERROR } result_kind;

static const char *const result_names[] = {"PASS", "FAIL", "UNSUPPORTED", "ERROR"};

typedef struct {
  double rtol, atol;
  bool json, quiet;
} options;

typedef struct {
  result_kind kind;
  strand_status status;  /* the failing call's status (UNSUPPORTED, ERROR) */
  size_t data_sets;      /* data sets that ran to the end */
  double worst;          /* largest |a - e| of a float output over all data sets */
  char worst_output[256];
  char message[2048];
} result;

static void set_result(result *r, result_kind kind, strand_status status, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void set_result(result *r, result_kind kind, strand_status status, const char *format,
                       ...) {
  r->kind = kind;
  r->status = status;
  va_list args;
  va_start(args, format);
  vsnprintf(r->message, sizeof r->message, format, args);
  va_end(args);
}

/* strand's message for the call that just failed, or the status's text. */
static const char *failure_text(strand_status status) {
  const char *m = strand_errmsg();
  return m[0] ? m : strand_strerror(status);
}

/* Records a failing strand call: UNSUPPORTED when the status says strand lacks
 * something and `unsupported_ok`, otherwise ERROR. */
static void set_failure(result *r, strand_status status, bool unsupported_ok, const char *where) {
  result_kind kind = unsupported_ok && status == STRAND_E_UNSUPPORTED ? RESULT_UNSUPPORTED
                                                                       : RESULT_ERROR;
  char text[1536];
  snprintf(text, sizeof text, "%s", failure_text(status));
  if (where && where[0]) set_result(r, kind, status, "%s: %s", where, text);
  else set_result(r, kind, status, "%s", text);
}

/* ---- element access ---------------------------------------------------- */

static double half_to_double(uint16_t h) {
  int exponent = (h >> 10) & 0x1f;
  int mantissa = h & 0x3ff;
  double v;
  if (exponent == 0) v = ldexp(mantissa, -24);
  else if (exponent == 31) v = mantissa ? NAN : INFINITY;
  else v = ldexp(mantissa | 0x400, exponent - 25);
  return (h & 0x8000) ? -v : v;
}

static double bfloat16_to_double(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static bool is_float(strand_dtype dtype) {
  return dtype == STRAND_DTYPE_FLOAT32 || dtype == STRAND_DTYPE_FLOAT64 ||
         dtype == STRAND_DTYPE_FLOAT16 || dtype == STRAND_DTYPE_BFLOAT16;
}

static bool is_signed(strand_dtype dtype) {
  return dtype == STRAND_DTYPE_INT8 || dtype == STRAND_DTYPE_INT16 ||
         dtype == STRAND_DTYPE_INT32 || dtype == STRAND_DTYPE_INT64;
}

static double float_at(strand_dtype dtype, const void *data, size_t i) {
  const unsigned char *p = data;
  switch (dtype) {
  case STRAND_DTYPE_FLOAT32: {
    float f;
    memcpy(&f, p + i * 4, 4);
    return f;
  }
  case STRAND_DTYPE_FLOAT64: {
    double d;
    memcpy(&d, p + i * 8, 8);
    return d;
  }
  case STRAND_DTYPE_FLOAT16:
  case STRAND_DTYPE_BFLOAT16: {
    uint16_t h;
    memcpy(&h, p + i * 2, 2);
    return dtype == STRAND_DTYPE_FLOAT16 ? half_to_double(h) : bfloat16_to_double(h);
  }
  default: return 0;
  }
}

static int64_t signed_at(strand_dtype dtype, const void *data, size_t i) {
  const unsigned char *p = data;
  switch (dtype) {
  case STRAND_DTYPE_INT8: return (int8_t)p[i];
  case STRAND_DTYPE_INT16: {
    int16_t v;
    memcpy(&v, p + i * 2, 2);
    return v;
  }
  case STRAND_DTYPE_INT32: {
    int32_t v;
    memcpy(&v, p + i * 4, 4);
    return v;
  }
  default: {
    int64_t v;
    memcpy(&v, p + i * 8, 8);
    return v;
  }
  }
}

static uint64_t unsigned_at(strand_dtype dtype, const void *data, size_t i) {
  const unsigned char *p = data;
  switch (dtype) {
  case STRAND_DTYPE_UINT8:
  case STRAND_DTYPE_BOOL: return p[i];
  case STRAND_DTYPE_UINT16: {
    uint16_t v;
    memcpy(&v, p + i * 2, 2);
    return v;
  }
  case STRAND_DTYPE_UINT32: {
    uint32_t v;
    memcpy(&v, p + i * 4, 4);
    return v;
  }
  default: {
    uint64_t v;
    memcpy(&v, p + i * 8, 8);
    return v;
  }
  }
}

/* The element as text: shortest form that reads back for its dtype. */
static void element_text(char *buf, size_t size, strand_dtype dtype, const void *data, size_t i) {
  if (is_float(dtype)) {
    double v = float_at(dtype, data, i);
    snprintf(buf, size, dtype == STRAND_DTYPE_FLOAT64 ? "%.17g" : "%.9g", v);
  } else if (dtype == STRAND_DTYPE_BOOL) {
    snprintf(buf, size, "%s", unsigned_at(dtype, data, i) ? "true" : "false");
  } else if (is_signed(dtype)) {
    snprintf(buf, size, "%lld", (long long)signed_at(dtype, data, i));
  } else {
    snprintf(buf, size, "%llu", (unsigned long long)unsigned_at(dtype, data, i));
  }
}

/* "[2,3]" into buf. */
static void shape_text(char *buf, size_t size, const int64_t *dims, size_t rank) {
  size_t used = 0;
  buf[0] = '\0';
  used += (size_t)snprintf(buf, size, "[");
  for (size_t d = 0; d < rank && used < size; d++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? "," : "", (long long)dims[d]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

/* The multi-index of flat element `flat` ("[1,0]"), for rank >= 2. */
static void index_text(char *buf, size_t size, const int64_t *dims, size_t rank, size_t flat) {
  int64_t index[STRAND_MAX_RANK];
  for (size_t d = rank; d-- > 0;) {
    int64_t n = dims[d] > 0 ? dims[d] : 1;
    index[d] = (int64_t)(flat % (uint64_t)n);
    flat /= (uint64_t)n;
  }
  shape_text(buf, size, index, rank);
}

/* ---- comparing one output ---------------------------------------------- */

/* Compares `got` with `expected`; on a mismatch fills r (FAIL) and returns
 * false. Updates r->worst with the largest error of a float output. */
static bool compare_output(result *r, const options *opt, const char *where, const char *name,
                           const strand_tensor *got, const strand_tensor *expected) {
  strand_dtype gd, ed;
  const int64_t *gdims, *edims;
  size_t grank, erank, count;
  void *gdata, *edata;
  strand_tensor_dtype(got, &gd);
  strand_tensor_dtype(expected, &ed);
  strand_tensor_shape(got, &gdims, &grank);
  strand_tensor_shape(expected, &edims, &erank);
  char gshape[256], eshape[256];
  shape_text(gshape, sizeof gshape, gdims, grank);
  shape_text(eshape, sizeof eshape, edims, erank);
  if (gd != ed) {
    set_result(r, RESULT_FAIL, STRAND_OK, "%soutput \"%s\" %s: dtype %s, expected %s", where,
               name, gshape, strand_dtype_name(gd), strand_dtype_name(ed));
    return false;
  }
  if (grank != erank || (grank && memcmp(gdims, edims, grank * sizeof *gdims) != 0)) {
    set_result(r, RESULT_FAIL, STRAND_OK, "%soutput \"%s\": shape %s, expected %s", where, name,
               gshape, eshape);
    return false;
  }
  strand_tensor_element_count(got, &count);
  strand_tensor_data(got, &gdata);
  strand_tensor_data(expected, &edata);

  double rtol = opt->rtol;
  if (gd == STRAND_DTYPE_FLOAT16 && rtol < 0x1p-10) rtol = 0x1p-10;
  if (gd == STRAND_DTYPE_BFLOAT16 && rtol < 0x1p-6) rtol = 0x1p-6;

  size_t bad = 0, first = 0;
  double first_err = 0, first_tol = 0, worst = 0;
  if (count && (!gdata || !edata)) count = 0; /* zero bytes: nothing to compare */
  for (size_t i = 0; i < count; i++) {
    bool ok;
    double err = 0, tol = 0;
    if (is_float(gd)) {
      double a = float_at(gd, gdata, i), e = float_at(gd, edata, i);
      if (isnan(a) || isnan(e)) {
        ok = isnan(a) && isnan(e);
        err = ok ? 0 : INFINITY;
      } else if (isinf(a) || isinf(e)) {
        ok = a == e;
        err = ok ? 0 : INFINITY;
      } else {
        err = fabs(a - e);
        tol = opt->atol + rtol * fabs(e);
        ok = err <= tol;
      }
      if (err > worst) worst = err;
    } else if (is_signed(gd)) {
      ok = signed_at(gd, gdata, i) == signed_at(gd, edata, i);
    } else {
      ok = unsigned_at(gd, gdata, i) == unsigned_at(gd, edata, i);
    }
    if (!ok && bad++ == 0) {
      first = i;
      first_err = err;
      first_tol = tol;
    }
  }
  if (worst > r->worst || r->worst_output[0] == '\0') {
    if (worst > r->worst) r->worst = worst;
    snprintf(r->worst_output, sizeof r->worst_output, "%s", name);
  }
  if (bad == 0) return true;

  char a[64], e[64], at[256] = "", why[128] = "";
  element_text(a, sizeof a, gd, gdata, first);
  element_text(e, sizeof e, gd, edata, first);
  if (grank >= 2) {
    at[0] = ' ';
    index_text(at + 1, sizeof at - 1, gdims, grank, first);
  }
  if (is_float(gd)) {
    if (isinf(first_err)) snprintf(why, sizeof why, " (not equal)");
    else snprintf(why, sizeof why, " (|err| %.2g > tol %.3g)", first_err, first_tol);
  }
  char more[96] = "";
  if (bad > 1) snprintf(more, sizeof more, "; %zu of %zu elements differ", bad, count);
  set_result(r, RESULT_FAIL, STRAND_OK, "%soutput \"%s\" %s: element %zu%s: got %s expected %s%s%s",
             where, name, gshape, first, at, a, e, why, more);
  return false;
}

/* ---- one directory ----------------------------------------------------- */

static bool is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Joins a and b with '/' into a new string (NULL when out of memory). */
static char *join(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  char *s = malloc(na + nb + 2);
  if (!s) return NULL;
  memcpy(s, a, na);
  s[na] = '/';
  memcpy(s + na + 1, b, nb + 1);
  return s;
}

static int compare_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

/* The N of every DIR/test_data_set_N, sorted. Returns false (r set) on
 * failure; *sets is malloc'd (or NULL when there are none). */
static bool list_data_sets(result *r, const char *dir, long **sets, size_t *n) {
  static const char prefix[] = "test_data_set_";
  *sets = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) {
    set_result(r, RESULT_ERROR, STRAND_E_IO, "cannot read directory: %s", strerror(errno));
    return false;
  }
  size_t capacity = 0;
  struct dirent *entry;
  while ((entry = readdir(d))) {
    if (strncmp(entry->d_name, prefix, sizeof prefix - 1) != 0) continue;
    const char *digits = entry->d_name + sizeof prefix - 1;
    char *end;
    errno = 0;
    long k = strtol(digits, &end, 10);
    if (!*digits || *end || errno || k < 0) continue;
    if (*n == capacity) {
      capacity = capacity ? capacity * 2 : 8;
      long *grown = realloc(*sets, capacity * sizeof *grown);
      if (!grown) {
        closedir(d);
        free(*sets);
        *sets = NULL;
        set_result(r, RESULT_ERROR, STRAND_E_OUT_OF_MEMORY, "out of memory");
        return false;
      }
      *sets = grown;
    }
    (*sets)[(*n)++] = k;
  }
  closedir(d);
  if (*n) qsort(*sets, *n, sizeof **sets, compare_long);
  return true;
}

/* The tensors of one data set, each slot a model input (or output). */
typedef struct {
  size_t count;           /* model inputs (outputs) */
  strand_tensor **tensor; /* count entries, NULL when no file gave one */
  const char **name;      /* borrowed from the model */
  size_t files;           /* files read */
  size_t *order;          /* files entries: the slot of file K */
} tensor_set;

static void tensor_set_free(tensor_set *s) {
  if (s->tensor)
    for (size_t i = 0; i < s->count; i++) strand_tensor_release(s->tensor[i]);
  free(s->tensor);
  free(s->name);
  free(s->order);
  memset(s, 0, sizeof *s);
}

/* Reads DIR/<stem>_K.pb for K = 0, 1, ... into the slots of the model's
 * inputs (outputs when `outputs`): by the TensorProto's name, or by K when
 * it has none. Returns false with r set on failure. */
static bool read_tensors(result *r, const strand_model *model, const char *set_dir, bool outputs,
                         tensor_set *s) {
  const char *stem = outputs ? "output" : "input";
  memset(s, 0, sizeof *s);
  if (outputs) strand_model_output_count(model, &s->count);
  else strand_model_input_count(model, &s->count);
  size_t slots = s->count ? s->count : 1;
  s->tensor = calloc(slots, sizeof *s->tensor);
  s->name = calloc(slots, sizeof *s->name);
  s->order = calloc(slots, sizeof *s->order);
  if (!s->tensor || !s->name || !s->order) {
    set_result(r, RESULT_ERROR, STRAND_E_OUT_OF_MEMORY, "out of memory");
    return false;
  }
  for (size_t i = 0; i < s->count; i++) {
    strand_value_info v;
    if (outputs) strand_model_output(model, i, &v);
    else strand_model_input(model, i, &v);
    s->name[i] = v.name;
  }
  const char *set_name = strrchr(set_dir, '/') ? strrchr(set_dir, '/') + 1 : set_dir;
  for (size_t k = 0;; k++) {
    char file[64];
    snprintf(file, sizeof file, "%s_%zu.pb", stem, k);
    char *path = join(set_dir, file);
    if (!path) {
      set_result(r, RESULT_ERROR, STRAND_E_OUT_OF_MEMORY, "out of memory");
      return false;
    }
    if (!is_file(path)) {
      free(path);
      break;
    }
    char where[160];
    snprintf(where, sizeof where, "%s/%s", set_name, file);
    if (k >= s->count) {
      free(path);
      set_result(r, RESULT_ERROR, STRAND_E_INVALID_ARGUMENT,
                 "%s: the model has only %zu %s%s", where, s->count, stem,
                 s->count == 1 ? "" : "s");
      return false;
    }
    strand_tensor *t = NULL;
    char name[4096];
    strand_status st = strand_tensor_read_pb(path, &t, name, sizeof name);
    free(path);
    if (st != STRAND_OK) {
      set_failure(r, st, true, where);
      return false;
    }
    size_t slot = k;
    if (name[0]) {
      size_t i = 0;
      while (i < s->count && strcmp(s->name[i], name) != 0) i++;
      if (i == s->count) {
        strand_tensor_release(t);
        set_result(r, RESULT_ERROR, STRAND_E_NOT_FOUND, "%s: \"%s\" is not an %s of the model",
                   where, name, stem);
        return false;
      }
      slot = i;
    }
    if (s->tensor[slot]) {
      strand_tensor_release(t);
      set_result(r, RESULT_ERROR, STRAND_E_INVALID_ARGUMENT, "%s: %s \"%s\" given twice", where,
                 stem, s->name[slot]);
      return false;
    }
    s->tensor[slot] = t;
    s->order[s->files++] = slot;
  }
  if (!outputs) {
    for (size_t i = 0; i < s->count; i++)
      if (!s->tensor[i]) {
        set_result(r, RESULT_ERROR, STRAND_E_INVALID_ARGUMENT, "%s: no file gives input \"%s\"",
                   set_name, s->name[i]);
        return false;
      }
  } else if (s->files == 0) {
    set_result(r, RESULT_ERROR, STRAND_E_INVALID_ARGUMENT, "%s: no output_0.pb", set_name);
    return false;
  }
  return true;
}

/* Runs one data set and compares its outputs. Returns false with r set. */
static bool run_data_set(result *r, const options *opt, strand_session *session,
                         const strand_model *model, const char *set_dir, const char *where) {
  tensor_set in, expected;
  strand_tensor **got = NULL;
  const char **wanted = NULL;
  bool ok = false;
  memset(&expected, 0, sizeof expected);
  if (!read_tensors(r, model, set_dir, false, &in)) goto done;
  if (!read_tensors(r, model, set_dir, true, &expected)) goto done;
  size_t n = expected.files;
  got = calloc(n, sizeof *got);
  wanted = calloc(n, sizeof *wanted);
  if (!got || !wanted) {
    set_result(r, RESULT_ERROR, STRAND_E_OUT_OF_MEMORY, "out of memory");
    goto done;
  }
  for (size_t k = 0; k < n; k++) wanted[k] = expected.name[expected.order[k]];
  strand_status st = strand_session_run(session, in.name, (const strand_tensor *const *)in.tensor,
                                        in.count, wanted, got, n);
  if (st != STRAND_OK) {
    char text[256];
    snprintf(text, sizeof text, "%srun", where);
    set_failure(r, st, false, text);
    goto done;
  }
  ok = true;
  for (size_t k = 0; k < n && ok; k++)
    ok = compare_output(r, opt, where, wanted[k], got[k], expected.tensor[expected.order[k]]);
done:
  if (got)
    for (size_t k = 0; k < expected.files; k++) strand_tensor_release(got[k]);
  free(got);
  free(wanted);
  tensor_set_free(&in);
  tensor_set_free(&expected);
  return ok;
}

static void check_dir(result *r, const options *opt, const char *dir) {
  memset(r, 0, sizeof *r);
  r->kind = RESULT_PASS;
  strand_model *model = NULL;
  strand_session *session = NULL;
  long *sets = NULL;
  size_t n_sets = 0;
  char *model_path = join(dir, "model.onnx");
  if (!model_path) {
    set_result(r, RESULT_ERROR, STRAND_E_OUT_OF_MEMORY, "out of memory");
    return;
  }
  if (!is_file(model_path)) {
    set_result(r, RESULT_ERROR, STRAND_E_IO, "no model.onnx");
    goto done;
  }
  if (!list_data_sets(r, dir, &sets, &n_sets)) goto done;
  if (n_sets == 0) {
    set_result(r, RESULT_ERROR, STRAND_E_IO, "no test_data_set_N directory");
    goto done;
  }
  strand_status st = strand_model_load(model_path, &model);
  if (st != STRAND_OK) {
    set_failure(r, st, true, "model.onnx");
    goto done;
  }
  st = strand_session_create(model, NULL, &session);
  if (st != STRAND_OK) {
    set_failure(r, st, true, NULL);
    goto done;
  }
  for (size_t i = 0; i < n_sets; i++) {
    char set_name[64], where[80] = "";
    snprintf(set_name, sizeof set_name, "test_data_set_%ld", sets[i]);
    if (n_sets > 1) snprintf(where, sizeof where, "%s: ", set_name);
    char *set_dir = join(dir, set_name);
    if (!set_dir) {
      set_result(r, RESULT_ERROR, STRAND_E_OUT_OF_MEMORY, "out of memory");
      goto done;
    }
    bool ok = run_data_set(r, opt, session, model, set_dir, where);
    free(set_dir);
    if (!ok) goto done;
    r->data_sets++;
  }
done:
  strand_session_release(session);
  strand_model_release(model);
  free(sets);
  free(model_path);
}

/* ---- output ------------------------------------------------------------ */


/* The directory's name: its last path component. */
static void dir_name(char *buf, size_t size, const char *dir) {
  size_t end = strlen(dir);
  while (end > 1 && dir[end - 1] == '/') end--;
  size_t start = end;
  while (start > 0 && dir[start - 1] != '/') start--;
  snprintf(buf, size, "%.*s", (int)(end - start), dir + start);
}

static void print_result(const options *opt, const char *dir, const result *r, double seconds) {
  char name[1024];
  dir_name(name, sizeof name, dir);
  if (opt->json) {
    fputs("{\"name\": ", stdout);
    json_string(stdout, name);
    fputs(", \"dir\": ", stdout);
    json_string(stdout, dir);
    printf(", \"result\": \"%s\", \"data_sets\": %zu, ", result_names[r->kind], r->data_sets);
    if (r->worst_output[0] && isfinite(r->worst)) {
      printf("\"worst_error\": %.3g, \"worst_output\": ", r->worst);
      json_string(stdout, r->worst_output);
    } else {
      fputs("\"worst_error\": null, \"worst_output\": null", stdout);
    }
    fputs(", \"status\": ", stdout);
    if (r->kind == RESULT_UNSUPPORTED || r->kind == RESULT_ERROR)
      json_string(stdout, strand_status_name(r->status));
    else fputs("null", stdout);
    fputs(", \"message\": ", stdout);
    json_string(stdout, r->message);
    printf(", \"seconds\": %.4f}\n", seconds);
  } else if (r->kind == RESULT_PASS) {
    if (!opt->quiet) {
      printf("PASS %s (%zu data set%s", name, r->data_sets, r->data_sets == 1 ? "" : "s");
      if (r->worst_output[0]) printf(", worst |err| %.2g in output \"%s\"", r->worst, r->worst_output);
      printf(")\n");
    }
  } else {
    printf("%s %s: %s\n", result_names[r->kind], name, r->message);
  }
  fflush(stdout);
}

/* ---- the command ------------------------------------------------------- */

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The subdirectories of `dir` that hold a model.onnx, sorted; NULL with *n 0
 * when there are none (or on failure). */
static char **model_subdirs(const char *dir, size_t *n) {
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return NULL;
  char **list = NULL;
  size_t capacity = 0;
  struct dirent *entry;
  while ((entry = readdir(d))) {
    if (entry->d_name[0] == '.') continue;
    char *sub = join(dir, entry->d_name);
    char *model = sub ? join(sub, "model.onnx") : NULL;
    bool keep = model && is_file(model);
    free(model);
    if (keep && *n == capacity) {
      capacity = capacity ? capacity * 2 : 64;
      char **grown = realloc(list, capacity * sizeof *grown);
      if (!grown) keep = false;
      else list = grown;
    }
    if (keep) list[(*n)++] = sub;
    else free(sub);
  }
  closedir(d);
  if (*n) qsort(list, *n, sizeof *list, compare_strings);
  return list;
}

static bool parse_tolerance(const char *flag, const char *text, double *out) {
  char *end;
  errno = 0;
  double v = text ? strtod(text, &end) : 0;
  if (!text || end == text || *end || errno || !(v >= 0) || isinf(v)) {
    fprintf(stderr, "strand check: %s needs a number >= 0, not \"%s\"\n", flag, text ? text : "");
    return false;
  }
  *out = v;
  return true;
}

static double now_seconds(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
  size_t counts[4];
} tally;

static void check_one(const options *opt, const char *dir, tally *t) {
  result *r = malloc(sizeof *r);
  if (!r) {
    fprintf(stderr, "strand check: out of memory\n");
    t->counts[RESULT_ERROR]++;
    return;
  }
  double start = now_seconds();
  check_dir(r, opt, dir);
  print_result(opt, dir, r, now_seconds() - start);
  t->counts[r->kind]++;
  free(r);
}

int strand_cmd_check(int argc, char **argv) {
  options opt = {.rtol = 1e-4, .atol = 1e-5, .json = false, .quiet = false};
  /* Options may come before or after the directories; "--" ends them. */
  const char **dirs = calloc((size_t)argc, sizeof *dirs);
  if (!dirs) {
    fprintf(stderr, "strand check: out of memory\n");
    return 1;
  }
  size_t n_dirs = 0;
  bool options_done = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool is_rtol = strncmp(a, "--rtol", 6) == 0, is_atol = strncmp(a, "--atol", 6) == 0;
    if (options_done || a[0] != '-' || !a[1]) {
      dirs[n_dirs++] = a;
    } else if (strcmp(a, "--") == 0) {
      options_done = true;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      free(dirs);
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--json") == 0) {
      opt.json = true;
    } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
      opt.quiet = true;
    } else if ((is_rtol || is_atol) && (a[6] == '\0' || a[6] == '=')) {
      const char *value = a[6] == '=' ? a + 7 : (i + 1 < argc ? argv[++i] : NULL);
      if (!parse_tolerance(is_rtol ? "--rtol" : "--atol", value, is_rtol ? &opt.rtol : &opt.atol)) {
        free(dirs);
        return 2;
      }
    } else {
      fprintf(stderr, "strand check: unknown option \"%s\"\n", a);
      free(dirs);
      usage(stderr);
      return 2;
    }
  }
  if (n_dirs == 0) {
    fprintf(stderr, "strand check: no directory given\n");
    free(dirs);
    usage(stderr);
    return 2;
  }

  tally t = {{0}};
  for (size_t i = 0; i < n_dirs; i++) {
    const char *dir = dirs[i];
    char *model = join(dir, "model.onnx");
    bool direct = !model || is_file(model) || !is_dir(dir);
    free(model);
    size_t n = 0;
    char **subdirs = direct ? NULL : model_subdirs(dir, &n);
    if (n == 0) {
      check_one(&opt, dir, &t);
    } else {
      for (size_t k = 0; k < n; k++) check_one(&opt, subdirs[k], &t);
    }
    for (size_t k = 0; k < n; k++) free(subdirs[k]);
    free(subdirs);
  }
  free(dirs);
  FILE *summary = opt.json ? stderr : stdout;
  fprintf(summary, "check: %zu passed, %zu failed, %zu unsupported", t.counts[RESULT_PASS],
          t.counts[RESULT_FAIL], t.counts[RESULT_UNSUPPORTED]);
  if (t.counts[RESULT_ERROR]) fprintf(summary, ", %zu errors", t.counts[RESULT_ERROR]);
  fputc('\n', summary);
  return t.counts[RESULT_FAIL] || t.counts[RESULT_ERROR] ? 1 : 0;
}
