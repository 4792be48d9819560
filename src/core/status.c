/* status.c — status names and texts, and the thread-local failure message. */
#include "core/core_internal.h"

#include <stdio.h>
#include <string.h>

#define MESSAGE_CAPACITY 1024

/* Each thread's last failure text. Valid until that thread's next failure. */
static _Thread_local char message[MESSAGE_CAPACITY];

const char *strand_strerror(strand_status status) {
  switch (status) {
#define CASE_(name, value, text) case STRAND_##name: return text;
    STRAND_STATUS_LIST(CASE_)
#undef CASE_
    default: return "unknown status";
  }
}

const char *strand_status_name(strand_status status) {
  switch (status) {
#define CASE_(name, value, text) case STRAND_##name: return "STRAND_" #name;
    STRAND_STATUS_LIST(CASE_)
#undef CASE_
    default: return "STRAND_E_UNKNOWN";
  }
}

const char *strand_errmsg(void) { return message; }

/* Messages are one line of text even when they quote names from hostile
 * files: control characters become '?'. */
static void make_printable(char *text) {
  for (unsigned char *p = (unsigned char *)text; *p; p++)
    if (*p < 0x20 || *p == 0x7f) *p = '?';
}

strand_status strand__failv(strand_status status, const char *fmt, va_list ap) {
  vsnprintf(message, sizeof message, fmt, ap);
  make_printable(message);
  return status;
}

strand_status strand__fail(strand_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  strand__failv(status, fmt, ap);
  va_end(ap);
  return status;
}

strand_status strand__fail_context(strand_status status, const char *fmt, ...) {
  char prefix[MESSAGE_CAPACITY];
  char inner[MESSAGE_CAPACITY];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(inner, message, sizeof inner);
  size_t n = strnlen(prefix, sizeof prefix - 1);
  if (n > sizeof message - 3) n = sizeof message - 3;
  memcpy(message, prefix, n);
  memcpy(message + n, ": ", 2);
  size_t room = sizeof message - n - 2;
  size_t m = strnlen(inner, room - 1);
  memcpy(message + n + 2, inner, m);
  message[n + 2 + m] = '\0';
  make_printable(message);
  return status;
}

const char *strand_version(void) { return STRAND_VERSION_STRING; }

uint32_t strand_version_number(void) { return STRAND_VERSION_NUMBER; }

size_t strand_dtype_size(strand_dtype dtype) {
  switch (dtype) {
#define CASE_(name, value, size, text) case STRAND_DTYPE_##name: return size;
    STRAND_DTYPE_LIST(CASE_)
#undef CASE_
    default: return 0;
  }
}

const char *strand_dtype_name(strand_dtype dtype) {
  switch (dtype) {
#define CASE_(name, value, size, text) case STRAND_DTYPE_##name: return text;
    STRAND_DTYPE_LIST(CASE_)
#undef CASE_
    default: return "undefined";
  }
}

const char *strand_kind_name(strand_kind kind) {
  switch (kind) {
#define CASE_(name, value, text) case STRAND_KIND_##name: return text;
    STRAND_KIND_LIST(CASE_)
#undef CASE_
    default: return "unknown";
  }
}
