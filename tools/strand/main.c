/* main.c — the strand program: dispatches to one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "strand.h"
#include "commands.h"

typedef struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
    {"demo", strand_cmd_demo,
     "objects made and released across threads, with the memory and leak report"},
    {"info", strand_cmd_info, "describe a model: inputs, outputs, opsets, ops, parameters"},
    {"run", strand_cmd_run, "run a model once on inputs from files or random values"},
    {"check", strand_cmd_check, "run ONNX test-data directories and compare outputs"},
    {"stress", strand_cmd_stress, "run a model from many threads, checking every output bit for bit"},
    {"bench", strand_cmd_bench, "measure a model's throughput, latency and memory on one session"},
};

static void usage(FILE *out) {
  fprintf(out, "strand %s — a prediction-only neural-network runtime\n\nusage: strand COMMAND [ARGS]\n\n",
          strand_version());
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\n'strand COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("strand %s\n", strand_version());
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "strand: unknown command \"%s\"\n", argv[1]);
  usage(stderr);
  return 2;
}
