/* log.c — levels, the host's callback, stderr by default. */
#include "core/core_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int log_level = STRAND_LOG_WARN;
/* The callback and its context change together, under this lock; it is never
 * held while the callback runs. */
static pthread_mutex_t callback_lock = PTHREAD_MUTEX_INITIALIZER;
static strand_log_fn callback;
static void *callback_context;

static const char *const level_names[] = {"off", "error", "warn", "info", "debug", "trace"};

const char *strand_log_level_name(strand_log_level level) {
  if ((unsigned)level > STRAND_LOG_TRACE) return "unknown";
  return level_names[level];
}

strand_status strand_log_set_level(strand_log_level level) {
  strand__init();
  if ((unsigned)level > STRAND_LOG_TRACE)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "strand_log_set_level: %d is not a log level",
                        (int)level);
  atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
  return STRAND_OK;
}

strand_log_level strand_log_get_level(void) {
  strand__init();
  return (strand_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

void strand_log_set_callback(strand_log_fn fn, void *context) {
  strand__init();
  pthread_mutex_lock(&callback_lock);
  callback = fn;
  callback_context = context;
  pthread_mutex_unlock(&callback_lock);
}

bool strand__log_enabled(strand_log_level level) {
  return level != STRAND_LOG_OFF &&
         (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void strand__log(strand_log_level level, const char *fmt, ...) {
  if (!strand__log_enabled(level)) return;
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&callback_lock);
  strand_log_fn fn = callback;
  void *context = callback_context;
  pthread_mutex_unlock(&callback_lock);
  if (fn) {
    fn(level, text, context);
    return;
  }
  char line[1100];
  int n = snprintf(line, sizeof line, "strand [%s] %s\n", level_names[level], text);
  if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
  /* One write per line so that lines from several threads do not interleave. */
  fwrite(line, 1, (size_t)n, stderr);
}

void strand__log_init_from_env(void) {
  const char *text = getenv("STRAND_LOG");
  if (!text || !*text) return;
  for (int i = 0; i <= STRAND_LOG_TRACE; i++)
    if (strcmp(text, level_names[i]) == 0) {
      atomic_store_explicit(&log_level, i, memory_order_relaxed);
      return;
    }
  strand__log(STRAND_LOG_WARN, "STRAND_LOG=%s ignored: expected off, error, warn, info, debug "
              "or trace", text);
}
