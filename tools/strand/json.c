/* json.c — JSON text for the subcommands' --json output. */
#include "json.h"

#include <stdint.h>

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t utf8_length(const unsigned char *s) {
  size_t n;
  uint32_t min;
  if (s[0] < 0x80) return 1;
  if ((s[0] & 0xe0) == 0xc0) n = 2, min = 0x80;
  else if ((s[0] & 0xf0) == 0xe0) n = 3, min = 0x800;
  else if ((s[0] & 0xf8) == 0xf0) n = 4, min = 0x10000;
  else return 0;
  uint32_t cp = s[0] & (0x7f >> n);
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

/* A JSON string: quotes, backslashes and control characters escaped;
 * bytes that are not UTF-8 become U+FFFD. */
void json_string(FILE *out, const char *text) {
  const unsigned char *s = (const unsigned char *)text;
  fputc('"', out);
  while (*s) {
    if (*s == '"' || *s == '\\') {
      fputc('\\', out);
      fputc(*s++, out);
    } else if (*s < 0x20) {
      switch (*s) {
      case '\n': fputs("\\n", out); break;
      case '\r': fputs("\\r", out); break;
      case '\t': fputs("\\t", out); break;
      default: fprintf(out, "\\u%04x", *s); break;
      }
      s++;
    } else {
      size_t n = utf8_length(s);
      if (n == 0) {
        fputs("\\ufffd", out);
        s++;
      } else {
        fwrite(s, 1, n, out);
        s += n;
      }
    }
  }
  fputc('"', out);
}
