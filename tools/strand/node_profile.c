/*
 * node_profile.c — see node_profile.h. Op types (with the kernel each node
 * runs on, where an op has several) are summed in the order they first
 * appear in the graph; nodes and op types are shown slowest
 * first, shares being of the sum of all nodes' times (the time inside
 * kernels, not the runs' wall time).
 */
#include "node_profile.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"

static char *copy(const char *s) {
  size_t n = strlen(s) + 1;
  char *c = malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

static void take(const strand_node_profile *node, void *context) {
  node_profile *p = context;
  if (p->failed || node->calls == 0) return;
  node_time *grown = realloc(p->nodes, (p->count + 1) * sizeof *grown);
  if (!grown) {
    p->failed = 1;
    return;
  }
  p->nodes = grown;
  node_time *t = &p->nodes[p->count];
  t->name = copy(node->name);
  t->op_type = copy(node->op_type);
  t->kernel = node->kernel ? node->kernel : "";
  t->calls = node->calls;
  t->ns = node->total_ns;
  p->count++; /* counted before the check: node_profile_free frees both copies */
  if (!t->name || !t->op_type) p->failed = 1;
  p->total_ns += node->total_ns;
}

void node_profile_free(node_profile *p) {
  for (size_t i = 0; i < p->count; i++) {
    free(p->nodes[i].name);
    free(p->nodes[i].op_type);
  }
  free(p->nodes);
  memset(p, 0, sizeof *p);
}

int node_profile_gather(strand_session *session, node_profile *out) {
  memset(out, 0, sizeof *out);
  if (strand_session_get_profile(session, take, out) != STRAND_OK) out->failed = 1;
  if (!out->failed) return 0;
  node_profile_free(out);
  return -1;
}

typedef struct op_total {
  const char *op_type, *kernel;
  uint64_t ns, calls;
  size_t nodes;
} op_total;

static int slower_node(const void *a, const void *b) {
  const node_time *x = *(node_time *const *)a, *y = *(node_time *const *)b;
  return (x->ns < y->ns) - (x->ns > y->ns);
}

static int slower_op(const void *a, const void *b) {
  const op_total *x = a, *y = b;
  return (x->ns < y->ns) - (x->ns > y->ns);
}

/* The totals of each op type and kernel, slowest first; NULL (and *n 0)
 * without memory. */
static op_total *by_op_type(const node_profile *p, size_t *n) {
  *n = 0;
  op_total *ops = calloc(p->count ? p->count : 1, sizeof *ops);
  if (!ops) return NULL;
  for (size_t i = 0; i < p->count; i++) {
    size_t k = 0;
    const node_time *t = &p->nodes[i];
    while (k < *n && (strcmp(ops[k].op_type, t->op_type) != 0 || strcmp(ops[k].kernel, t->kernel) != 0))
      k++;
    if (k == *n) {
      ops[k].op_type = t->op_type;
      ops[k].kernel = t->kernel;
      (*n)++;
    }
    ops[k].ns += p->nodes[i].ns;
    ops[k].calls += p->nodes[i].calls;
    ops[k].nodes++;
  }
  qsort(ops, *n, sizeof *ops, slower_op);
  return ops;
}

static double share(uint64_t ns, uint64_t total) { return total ? 100.0 * (double)ns / (double)total : 0; }

static double ms_per_run(uint64_t ns, uint64_t runs) {
  return runs ? (double)ns / 1e6 / (double)runs : 0;
}

void node_profile_print_text(FILE *out, const node_profile *p, uint64_t runs, size_t top) {
  size_t n_ops;
  op_total *ops = by_op_type(p, &n_ops);
  node_time **order = malloc((p->count ? p->count : 1) * sizeof *order);
  if (!ops || !order) {
    fprintf(out, "  profile        (out of memory)\n");
    free(ops);
    free(order);
    return;
  }
  fprintf(out, "  profile        %.3f ms per run inside kernels, by op type (and kernel):\n",
          ms_per_run(p->total_ns, runs));
  for (size_t k = 0; k < n_ops; k++) {
    char label[96];
    snprintf(label, sizeof label, ops[k].kernel[0] ? "%s (%s)" : "%s", ops[k].op_type, ops[k].kernel);
    fprintf(out, "    %5.1f%%  %9.3f ms  %-32s %zu node%s\n", share(ops[k].ns, p->total_ns),
            ms_per_run(ops[k].ns, runs), label, ops[k].nodes, ops[k].nodes == 1 ? "" : "s");
  }
  for (size_t i = 0; i < p->count; i++) order[i] = &p->nodes[i];
  qsort(order, p->count, sizeof *order, slower_node);
  if (top > p->count) top = p->count;
  fprintf(out, "                 the %zu slowest nodes (ms per run, calls):\n", top);
  for (size_t i = 0; i < top; i++)
    fprintf(out, "    %5.1f%%  %9.3f ms  %8llu  %s%s%s%s %s\n", share(order[i]->ns, p->total_ns),
            ms_per_run(order[i]->ns, runs), (unsigned long long)order[i]->calls,
            order[i]->op_type, order[i]->kernel[0] ? " (" : "", order[i]->kernel,
            order[i]->kernel[0] ? ")" : "", order[i]->name);
  free(ops);
  free(order);
}

void node_profile_print_json(FILE *out, const node_profile *p, uint64_t runs) {
  size_t n_ops;
  op_total *ops = by_op_type(p, &n_ops);
  fprintf(out, "\"profile\": {\"runs\": %llu, \"total_ms\": %.6f, \"op_types\": [",
          (unsigned long long)runs, (double)p->total_ns / 1e6);
  for (size_t k = 0; ops && k < n_ops; k++) {
    fprintf(out, "%s{\"op_type\": ", k ? ", " : "");
    json_string(out, ops[k].op_type);
    fprintf(out, ", \"kernel\": ");
    json_string(out, ops[k].kernel);
    fprintf(out, ", \"nodes\": %zu, \"calls\": %llu, \"total_ms\": %.6f}", ops[k].nodes,
            (unsigned long long)ops[k].calls, (double)ops[k].ns / 1e6);
  }
  fprintf(out, "], \"nodes\": [");
  for (size_t i = 0; i < p->count; i++) {
    fprintf(out, "%s{\"name\": ", i ? ", " : "");
    json_string(out, p->nodes[i].name);
    fprintf(out, ", \"op_type\": ");
    json_string(out, p->nodes[i].op_type);
    fprintf(out, ", \"kernel\": ");
    json_string(out, p->nodes[i].kernel);
    fprintf(out, ", \"calls\": %llu, \"total_ms\": %.6f}", (unsigned long long)p->nodes[i].calls,
            (double)p->nodes[i].ns / 1e6);
  }
  fprintf(out, "]}");
  free(ops);
}
