/* init.c — reads the environment once, at the first call into strand. */
#include "core/core_internal.h"

#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void) {
  strand__log_init_from_env();
  strand__leak_init_from_env();
  strand__memory_init_from_env();
}

void strand__init(void) { pthread_once(&once, init_once); }
