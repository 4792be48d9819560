/* Temporary until info.c lands (issue 3); removed with it. */
#include <stdio.h>
#include "commands.h"
__attribute__((weak)) int strand_cmd_info(int argc, char **argv) {
  (void)argc; (void)argv;
  fprintf(stderr, "strand info: not built yet\n");
  return 1;
}
