/* flags.c — the flag values of flags.h. */
#include "flags.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int flags_parse_count(const char *command, const char *flag, const char *text, uint64_t min,
                      uint64_t max, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || end == text || *end || text[0] == '-' || text[0] == '+' || v < min || v > max) {
    fprintf(stderr, "strand %s: %s wants a whole number from %llu to %llu, not \"%s\"\n", command,
            flag, (unsigned long long)min, (unsigned long long)max, text);
    return 0;
  }
  *out = v;
  return 1;
}
