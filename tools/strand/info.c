/*
 * info.c — `strand info [--json] MODEL`: what a model is, read through the
 * public API only: producer, IR version, opsets, inputs and outputs with
 * dtype and shape (symbolic dims by name), op types with counts, parameters,
 * and the ops strand cannot run yet.
 *
 * Exit status: 0 for a model that loads, 1 when it does not (one line on
 * stderr: `strand info: PATH: MESSAGE`), 2 for a usage error.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "json.h"
#include "strand.h"

static void usage(FILE *out) {
  fprintf(out, "usage: strand info [--json] MODEL\n\n"
               "Describes an ONNX model: producer, IR version, opsets, inputs and outputs\n"
               "(dtype and shape, symbolic dimensions by name), op types with counts,\n"
               "parameters, and the op types strand cannot run yet.\n\n"
               "  --json   print one JSON object instead of text\n");
}

/* ---- text -------------------------------------------------------------- */

static void print_shape(FILE *out, const strand_value_info *v) {
  if (!v->rank_known) {
    fputs("[?]", out);
    return;
  }
  fputc('[', out);
  for (size_t i = 0; i < v->rank; i++) {
    if (i) fputs(", ", out);
    if (v->dims[i] >= 0) fprintf(out, "%lld", (long long)v->dims[i]);
    else if (v->dim_names[i]) fputs(v->dim_names[i], out);
    else fputc('?', out);
  }
  fputc(']', out);
}

static const char *dtype_text(strand_dtype dtype) {
  return dtype == STRAND_DTYPE_UNDEFINED ? "?" : strand_dtype_name(dtype);
}

static void print_values(FILE *out, const strand_model *model, int outputs) {
  size_t n = 0, width = 0;
  if (outputs) strand_model_output_count(model, &n);
  else strand_model_input_count(model, &n);
  strand_value_info v;
  for (size_t i = 0; i < n; i++) {
    if (outputs) strand_model_output(model, i, &v);
    else strand_model_input(model, i, &v);
    if (strlen(v.name) > width) width = strlen(v.name);
  }
  fprintf(out, "%s\n", outputs ? "outputs" : "inputs");
  if (n == 0) fprintf(out, "  (none)\n");
  for (size_t i = 0; i < n; i++) {
    if (outputs) strand_model_output(model, i, &v);
    else strand_model_input(model, i, &v);
    fprintf(out, "  %-*s  %-8s ", (int)width, v.name, dtype_text(v.dtype));
    print_shape(out, &v);
    fputc('\n', out);
  }
}

static void print_bytes(FILE *out, uint64_t bytes) {
  static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double value = (double)bytes;
  size_t u = 0;
  while (value >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
    value /= 1024;
    u++;
  }
  if (u == 0) fprintf(out, "%llu bytes", (unsigned long long)bytes);
  else fprintf(out, "%.1f %s", value, units[u]);
}

static void print_text(FILE *out, const char *path, const strand_model *model) {
  const char *producer, *version, *graph;
  int64_t ir;
  strand_model_producer(model, &producer, &version);
  strand_model_ir_version(model, &ir);
  strand_model_graph_name(model, &graph);
  fprintf(out, "model       %s\n", path);
  fprintf(out, "producer    %s%s%s\n", producer[0] ? producer : "(none)", version[0] ? " " : "",
          version);
  fprintf(out, "ir version  %lld\n", (long long)ir);
  fprintf(out, "graph       %s\n", graph[0] ? graph : "(unnamed)");
  size_t opsets = 0;
  strand_model_opset_count(model, &opsets);
  fprintf(out, "opsets      ");
  for (size_t i = 0; i < opsets; i++) {
    const char *domain;
    int64_t v;
    strand_model_opset_at(model, i, &domain, &v);
    fprintf(out, "%s%s %lld", i ? ", " : "", domain[0] ? domain : "ai.onnx", (long long)v);
  }
  fprintf(out, "%s\n", opsets ? "" : "(none)");
  print_values(out, model, 0);
  print_values(out, model, 1);

  uint64_t params = 0, bytes = 0;
  strand_model_parameter_count(model, &params, &bytes);
  fprintf(out, "parameters  %llu (", (unsigned long long)params);
  print_bytes(out, bytes);
  fprintf(out, ")\n");

  size_t ops = 0;
  uint64_t nodes = 0;
  size_t width = 0, unsupported = 0;
  strand_model_op_count(model, &ops);
  strand_op_info op;
  for (size_t i = 0; i < ops; i++) {
    strand_model_op(model, i, &op);
    nodes += op.count;
    size_t w = strlen(op.op_type) + (op.domain[0] ? strlen(op.domain) + 1 : 0);
    if (w > width) width = w;
    unsupported += !op.supported;
  }
  fprintf(out, "ops         %llu node%s, %zu type%s\n", (unsigned long long)nodes,
          nodes == 1 ? "" : "s", ops, ops == 1 ? "" : "s");
  for (size_t i = 0; i < ops; i++) {
    strand_model_op(model, i, &op);
    char name[512];
    snprintf(name, sizeof name, "%s%s%s", op.domain, op.domain[0] ? "." : "", op.op_type);
    fprintf(out, "  %-*s  %llu\n", (int)width, name, (unsigned long long)op.count);
  }
  fprintf(out, "unsupported ");
  if (!unsupported) fprintf(out, "none: strand can run every op");
  for (size_t i = 0, listed = 0; i < ops; i++) {
    strand_model_op(model, i, &op);
    if (op.supported) continue;
    fprintf(out, "%s%s%s%s", listed++ ? ", " : "", op.domain, op.domain[0] ? "." : "",
            op.op_type);
  }
  fputc('\n', out);
}

/* ---- JSON -------------------------------------------------------------- */


static void json_values(FILE *out, const strand_model *model, int outputs) {
  size_t n = 0;
  if (outputs) strand_model_output_count(model, &n);
  else strand_model_input_count(model, &n);
  fputc('[', out);
  for (size_t i = 0; i < n; i++) {
    strand_value_info v;
    if (outputs) strand_model_output(model, i, &v);
    else strand_model_input(model, i, &v);
    fprintf(out, "%s{\"name\": ", i ? ", " : "");
    json_string(out, v.name);
    fputs(", \"dtype\": ", out);
    if (v.dtype == STRAND_DTYPE_UNDEFINED) fputs("null", out);
    else json_string(out, strand_dtype_name(v.dtype));
    fputs(", \"shape\": ", out);
    if (!v.rank_known) {
      fputs("null", out);
    } else {
      fputc('[', out);
      for (size_t d = 0; d < v.rank; d++) {
        if (d) fputs(", ", out);
        if (v.dims[d] >= 0) fprintf(out, "%lld", (long long)v.dims[d]);
        else if (v.dim_names[d]) json_string(out, v.dim_names[d]);
        else fputs("null", out);
      }
      fputc(']', out);
    }
    fputc('}', out);
  }
  fputc(']', out);
}

static void print_json(FILE *out, const char *path, const strand_model *model) {
  const char *producer, *version, *graph;
  int64_t ir;
  strand_model_producer(model, &producer, &version);
  strand_model_ir_version(model, &ir);
  strand_model_graph_name(model, &graph);
  fputs("{\"path\": ", out);
  json_string(out, path);
  fputs(", \"producer\": {\"name\": ", out);
  json_string(out, producer);
  fputs(", \"version\": ", out);
  json_string(out, version);
  fprintf(out, "}, \"ir_version\": %lld, \"graph\": ", (long long)ir);
  json_string(out, graph);
  fputs(", \"opsets\": [", out);
  size_t opsets = 0;
  strand_model_opset_count(model, &opsets);
  for (size_t i = 0; i < opsets; i++) {
    const char *domain;
    int64_t v;
    strand_model_opset_at(model, i, &domain, &v);
    fprintf(out, "%s{\"domain\": ", i ? ", " : "");
    json_string(out, domain[0] ? domain : "ai.onnx");
    fprintf(out, ", \"version\": %lld}", (long long)v);
  }
  fputs("], \"inputs\": ", out);
  json_values(out, model, 0);
  fputs(", \"outputs\": ", out);
  json_values(out, model, 1);
  uint64_t params = 0, bytes = 0;
  strand_model_parameter_count(model, &params, &bytes);
  fprintf(out, ", \"parameters\": %llu, \"parameter_bytes\": %llu, \"ops\": [",
          (unsigned long long)params, (unsigned long long)bytes);
  size_t ops = 0;
  strand_model_op_count(model, &ops);
  strand_op_info op;
  for (size_t i = 0; i < ops; i++) {
    strand_model_op(model, i, &op);
    fprintf(out, "%s{\"op_type\": ", i ? ", " : "");
    json_string(out, op.op_type);
    fputs(", \"domain\": ", out);
    json_string(out, op.domain[0] ? op.domain : "ai.onnx");
    fprintf(out, ", \"opset\": %lld, \"count\": %llu, \"supported\": %s}", (long long)op.opset,
            (unsigned long long)op.count, op.supported ? "true" : "false");
  }
  fputs("], \"unsupported_ops\": [", out);
  for (size_t i = 0, listed = 0; i < ops; i++) {
    strand_model_op(model, i, &op);
    if (op.supported) continue;
    if (listed++) fputs(", ", out);
    char name[512];
    snprintf(name, sizeof name, "%s%s%s", op.domain, op.domain[0] ? "." : "", op.op_type);
    json_string(out, name);
  }
  fputs("]}\n", out);
}

/* ---- the command ------------------------------------------------------- */

int strand_cmd_info(int argc, char **argv) {
  int json = 0;
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "strand info: unknown option \"%s\"\n", argv[i]);
      usage(stderr);
      return 2;
    } else if (path) {
      fprintf(stderr, "strand info: one model at a time (got \"%s\" and \"%s\")\n", path, argv[i]);
      return 2;
    } else {
      path = argv[i];
    }
  }
  if (!path) {
    usage(stderr);
    return 2;
  }
  strand_model *model;
  strand_status st = strand_model_load(path, &model);
  if (st != STRAND_OK) {
    /* Messages about the file itself already quote its path. */
    if (strstr(strand_errmsg(), path))
      fprintf(stderr, "strand info: %s\n", strand_errmsg());
    else
      fprintf(stderr, "strand info: %s: %s\n", path, strand_errmsg());
    return 1;
  }
  if (json) print_json(stdout, path, model);
  else print_text(stdout, path, model);
  strand_model_release(model);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "strand info: cannot write the output\n");
    return 1;
  }
  return 0;
}
