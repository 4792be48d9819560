/* node_profile.h — `strand bench --profile`: a session's per-node times
 * (strand_session_get_profile) gathered after the measured runs and shown
 * by op type and by node, as text or as JSON. */
#ifndef STRAND_TOOL_NODE_PROFILE_H
#define STRAND_TOOL_NODE_PROFILE_H

#include <stdint.h>
#include <stdio.h>

#include "strand.h"

typedef struct node_time {
  char *name, *op_type; /* copies */
  const char *kernel;   /* strand's static string */
  uint64_t calls, ns;
} node_time;

typedef struct node_profile {
  node_time *nodes; /* the nodes that were called, in graph order */
  size_t count;
  uint64_t total_ns; /* over all nodes */
  int failed;        /* out of memory while gathering: nothing to show */
} node_profile;

/* Reads the session's figures into *out (zeroed first). 0, or -1 with
 * *out empty when memory ran out. */
int node_profile_gather(strand_session *session, node_profile *out);
void node_profile_free(node_profile *p);

/* A table by op type and the `top` slowest nodes; `runs` (the measured
 * runs) turns totals into milliseconds per run. */
void node_profile_print_text(FILE *out, const node_profile *p, uint64_t runs, size_t top);

/* `"profile": {"op_types": [...], "nodes": [...]}` (no leading comma). */
void node_profile_print_json(FILE *out, const node_profile *p, uint64_t runs);

#endif /* STRAND_TOOL_NODE_PROFILE_H */
