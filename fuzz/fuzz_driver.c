/*
 * fuzz_driver.c — runs a libFuzzer target without libFuzzer: each argument
 * is a file, or a directory whose files are run (one level). Lets any
 * compiler (gcc, with or without sanitizers) replay a corpus or a crash:
 *
 *   cc -Iinclude fuzz/fuzz_driver.c fuzz/fuzz_model_load.c libstrand.a -lpthread -ldl -lm
 *   ./a.out fuzz/corpus
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  size_t cap = 1 << 16, size = 0;
  uint8_t *data = malloc(cap);
  size_t n;
  while (data && (n = fread(data + size, 1, cap - size, f)) > 0) {
    size += n;
    if (size == cap) {
      uint8_t *grown = realloc(data, cap *= 2);
      if (!grown) free(data);
      data = grown;
    }
  }
  fclose(f);
  if (!data) {
    fprintf(stderr, "%s: out of memory\n", path);
    return 1;
  }
  LLVMFuzzerTestOneInput(data, size);
  free(data);
  return 0;
}

int main(int argc, char **argv) {
  int failures = 0, runs = 0;
  for (int i = 1; i < argc; i++) {
    struct stat info;
    if (stat(argv[i], &info) != 0) {
      perror(argv[i]);
      failures++;
      continue;
    }
    if (!S_ISDIR(info.st_mode)) {
      failures += run_file(argv[i]);
      runs++;
      continue;
    }
    DIR *dir = opendir(argv[i]);
    if (!dir) {
      perror(argv[i]);
      failures++;
      continue;
    }
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
      if (e->d_name[0] == '.') continue;
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
      if (stat(path, &info) == 0 && S_ISREG(info.st_mode)) {
        failures += run_file(path);
        runs++;
      }
    }
    closedir(dir);
  }
  printf("fuzz_driver: %d inputs, %d unreadable\n", runs, failures);
  return failures ? 1 : 0;
}
