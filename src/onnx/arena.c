/*
 * arena.c — the arena that owns everything a loaded model holds.
 *
 * Small allocations come from 64 KiB chunks; a large one gets a chunk of its
 * own. Weight copies and file mappings are recorded as releases, made in the
 * arena itself, so that a failing load can free everything with one call. A
 * release record is always allocated before the resource it will release,
 * which is what makes every failure point leak-free.
 */
#include "onnx/onnx_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_SIZE ((size_t)64 * 1024)
#define LARGE_REQUEST (CHUNK_SIZE / 4)
#define ALIGN 16

struct onnx_arena_chunk {
  onnx_arena_chunk *next;
  size_t size; /* of the whole allocation, header included */
  /* data follows, aligned to ALIGN */
};

#define CHUNK_HEADER (((sizeof(onnx_arena_chunk) + ALIGN - 1) / ALIGN) * ALIGN)

typedef enum release_kind { RELEASE_NONE, RELEASE_WEIGHTS, RELEASE_MAPPING } release_kind;

struct onnx_arena_release {
  onnx_arena_release *next;
  release_kind kind;
  void *ptr;
  size_t size;
};

/* An empty file still needs a distinct, readable non-NULL pointer. */
static const uint8_t empty_file[1];

void onnx_arena_init(onnx_arena *arena) { memset(arena, 0, sizeof *arena); }

static strand_status new_chunk(onnx_arena *arena, size_t payload, unsigned char **data) {
  size_t total;
  if (!strand__size_add(payload, CHUNK_HEADER, &total))
    return strand__fail(STRAND_E_OUT_OF_MEMORY, "arena request of %zu bytes overflows", payload);
  void *block;
  strand_status st = strand__calloc(total, STRAND_MEMORY_OTHER, &block);
  if (st) return st;
  onnx_arena_chunk *chunk = block;
  chunk->size = total;
  chunk->next = arena->chunks;
  arena->chunks = chunk;
  arena->chunk_bytes += total;
  *data = (unsigned char *)block + CHUNK_HEADER;
  return STRAND_OK;
}

strand_status onnx_arena_alloc(onnx_arena *arena, size_t size, void **out) {
  size_t rounded;
  if (!strand__size_add(size, ALIGN - 1, &rounded))
    return strand__fail(STRAND_E_OUT_OF_MEMORY, "arena request of %zu bytes overflows", size);
  rounded &= ~(size_t)(ALIGN - 1);
  if (rounded == 0) rounded = ALIGN;
  if (rounded >= LARGE_REQUEST) {
    unsigned char *data;
    strand_status st = new_chunk(arena, rounded, &data);
    if (st) return st;
    *out = data;
    return STRAND_OK;
  }
  if ((size_t)(arena->limit - arena->next) < rounded) {
    unsigned char *data;
    strand_status st = new_chunk(arena, CHUNK_SIZE, &data);
    if (st) return st;
    arena->next = data;
    arena->limit = data + CHUNK_SIZE;
  }
  *out = arena->next;
  arena->next += rounded;
  return STRAND_OK;
}

strand_status onnx_arena_array(onnx_arena *arena, size_t count, size_t elem_size, void **out) {
  size_t size;
  if (!strand__size_mul(count, elem_size, &size))
    return strand__fail(STRAND_E_OUT_OF_MEMORY, "array of %zu elements of %zu bytes overflows",
                        count, elem_size);
  return onnx_arena_alloc(arena, size, out);
}

strand_status onnx_arena_string(onnx_arena *arena, const void *bytes, size_t size, char **out) {
  size_t total;
  if (!strand__size_add(size, 1, &total))
    return strand__fail(STRAND_E_OUT_OF_MEMORY, "string of %zu bytes overflows", size);
  void *copy;
  strand_status st = onnx_arena_alloc(arena, total, &copy);
  if (st) return st;
  if (size) memcpy(copy, bytes, size);
  ((char *)copy)[size] = '\0';
  *out = copy;
  return STRAND_OK;
}

static strand_status new_release(onnx_arena *arena, onnx_arena_release **out) {
  void *mem;
  strand_status st = onnx_arena_alloc(arena, sizeof(onnx_arena_release), &mem);
  if (st) return st;
  onnx_arena_release *r = mem;
  r->kind = RELEASE_NONE;
  r->next = arena->releases;
  arena->releases = r;
  *out = r;
  return STRAND_OK;
}

/* Large weight copies are filled once and read for the model's life: huge
 * pages cut the page faults of filling them (thousands per model) and the
 * TLB misses of reading them. A hint only; where the system declines, normal
 * pages serve. */
static void ask_for_huge_pages(void *mem, size_t size) {
  const uintptr_t huge = (uintptr_t)2 << 20;
  uintptr_t start = ((uintptr_t)mem + huge - 1) & ~(huge - 1);
  uintptr_t end = ((uintptr_t)mem + size) & ~(huge - 1);
#ifdef MADV_HUGEPAGE
  if (end > start) madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
  (void)start;
  (void)end;
#endif
}

strand_status onnx_arena_weights(onnx_arena *arena, size_t size, void **out) {
  onnx_arena_release *r;
  strand_status st = new_release(arena, &r);
  if (st) return st;
  void *mem;
  st = strand__alloc_aligned(size, 64, STRAND_MEMORY_WEIGHTS, &mem);
  if (st) return st;
  ask_for_huge_pages(mem, size);
  r->kind = RELEASE_WEIGHTS;
  r->ptr = mem;
  r->size = size;
  arena->weight_bytes += size;
  *out = mem;
  return STRAND_OK;
}

const char *onnx_strerror(int error, char *buf, size_t size) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  return strerror_r(error, buf, size);
#else
  if (strerror_r(error, buf, size) != 0) snprintf(buf, size, "error %d", error);
  return buf;
#endif
}

strand_status onnx_arena_map_file(onnx_arena *arena, const char *path, size_t max_size,
                                  const char *what, bool no_follow, const uint8_t **data,
                                  size_t *size) {
  onnx_arena_release *r;
  strand_status st = new_release(arena, &r);
  if (st) return st;
  char why[128];
  int flags = O_RDONLY | O_CLOEXEC | (no_follow ? O_NOFOLLOW : 0);
  int fd = open(path, flags);
  if (fd < 0)
    return strand__fail(STRAND_E_IO, "%s \"%s\": %s", what, path,
                        onnx_strerror(errno, why, sizeof why));
  struct stat info;
  if (fstat(fd, &info) != 0) {
    int e = errno;
    close(fd);
    return strand__fail(STRAND_E_IO, "%s \"%s\": %s", what, path,
                        onnx_strerror(e, why, sizeof why));
  }
  if (!S_ISREG(info.st_mode)) {
    close(fd);
    return strand__fail(STRAND_E_IO, "%s \"%s\": not a regular file", what, path);
  }
  if ((uint64_t)info.st_size > (uint64_t)max_size) {
    close(fd);
    return strand__fail(STRAND_E_UNSUPPORTED, "%s \"%s\": %llu bytes is more than the limit of %zu",
                        what, path, (unsigned long long)info.st_size, max_size);
  }
  size_t length = (size_t)info.st_size;
  if (length == 0) {
    close(fd);
    *data = empty_file;
    *size = 0;
    return STRAND_OK;
  }
  void *map = mmap(NULL, length, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd);
  if (map == MAP_FAILED)
    return strand__fail(STRAND_E_IO, "%s \"%s\": cannot map %zu bytes: %s", what, path, length,
                        onnx_strerror(e, why, sizeof why));
  r->kind = RELEASE_MAPPING;
  r->ptr = map;
  r->size = length;
  arena->mapped_bytes += length;
  *data = map;
  *size = length;
  return STRAND_OK;
}

void onnx_arena_free(onnx_arena *arena) {
  /* Releases live in the chunks, so they go first. */
  for (onnx_arena_release *r = arena->releases; r; r = r->next) {
    if (r->kind == RELEASE_WEIGHTS)
      strand__free_aligned(r->ptr, r->size, STRAND_MEMORY_WEIGHTS);
    else if (r->kind == RELEASE_MAPPING)
      munmap(r->ptr, r->size);
  }
  onnx_arena_chunk *chunk = arena->chunks;
  while (chunk) {
    onnx_arena_chunk *next = chunk->next;
    strand__free(chunk, chunk->size, STRAND_MEMORY_OTHER);
    chunk = next;
  }
  memset(arena, 0, sizeof *arena);
}
