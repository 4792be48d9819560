/*
 * message.c — context for errors that leave nested graphs.
 *
 * Each graph level names itself as an error unwinds ("graph "body" node 3
 * (Add): attribute ..."). Hostile nesting would push the cause out of the
 * thread's message buffer, so once the message is long, levels between the
 * innermost ones and the main graph are left out and marked "...". The
 * cause and the main graph's node are always kept.
 */
#include "onnx/onnx_internal.h"

#include <stdio.h>
#include <string.h>

#define LONG_MESSAGE 400

strand_status onnx_context(strand_status status, size_t depth, const char *fmt, ...) {
  char prefix[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  const char *message = strand_errmsg();
  if (depth == 0 || strlen(message) < LONG_MESSAGE)
    return strand__fail_context(status, "%s", prefix);
  if (strncmp(message, "...", 3) == 0) return status; /* already elided here */
  return strand__fail_context(status, "...");
}
