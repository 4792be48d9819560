/* flags.h — what the subcommands share to read their flags' values, so that
 * a value is accepted or refused, and the refusal worded, alike in each. */
#ifndef STRAND_TOOL_FLAGS_H
#define STRAND_TOOL_FLAGS_H

#include <stdint.h>

/* Reads `text`, the value of `flag`, as a whole number from `min` to `max`
 * in decimal, without a sign. Returns 1 with the number in *out, or 0 with
 * *out untouched after printing on stderr
 *   strand COMMAND: FLAG wants a whole number from MIN to MAX, not "TEXT" */
int flags_parse_count(const char *command, const char *flag, const char *text, uint64_t min,
                      uint64_t max, uint64_t *out);

#endif
