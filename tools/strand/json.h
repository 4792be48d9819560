/* json.h — what the subcommands share to write JSON. */
#ifndef STRAND_TOOL_JSON_H
#define STRAND_TOOL_JSON_H

#include <stdio.h>

/* Writes `text` as a JSON string: quotes, backslashes and control
 * characters escaped; bytes that are not UTF-8 become U+FFFD. */
void json_string(FILE *out, const char *text);

#endif
