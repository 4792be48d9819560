/*
 * tensor_proto.c — ONNX TensorProto files (the input_0.pb / output_0.pb of
 * ONNX test data): reading one into a strand tensor, writing one.
 *
 * Reading goes through the same TensorProto parser as model initializers
 * (onnx_tensor.c), so the same bounds hold: nothing is allocated beyond what
 * the file holds. Writing emits what onnx's own serializer does for a dense
 * tensor: dims (unpacked, as proto2 defines them), data_type, name and
 * raw_data in little-endian order, fields in number order. The file is
 * written beside the target and renamed over it, so a reader never sees a
 * half-written tensor.
 */
#include "core/tensor_internal.h"
#include "onnx/onnx_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- reading ----------------------------------------------------------- */

static strand_status read_pb(const char *path, const void *site, strand_tensor **out, char *name,
                             size_t name_size) {
  static const char fn[] = "strand_tensor_read_pb";
  onnx_arena arena;
  onnx_arena_init(&arena);
  const uint8_t *bytes;
  size_t size;
  strand_status st =
      onnx_arena_map_file(&arena, path, ONNX_MAX_MODEL_BYTES, "tensor file", false, &bytes, &size);
  if (st) goto done;
  onnx_parser p = {&arena, bytes, size, NULL, NULL, 0};
  pb_reader r;
  pb_reader_init(&r, bytes, size);
  onnx_tensor t;
  st = onnx_parse_tensor(&p, &r, &t);
  if (st) {
    st = strand__fail_context(st, "tensor file \"%s\"", path);
    goto done;
  }
  size_t name_length = strlen(t.name);
  if (name && name_length >= name_size) {
    st = strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: the tensor's name \"%s\" needs %zu bytes, "
                      "name_size is %zu", fn, t.name, name_length + 1, name_size);
    goto done;
  }
  strand_tensor *tensor;
  st = strand__tensor_create_at(t.dtype, t.dims, t.rank, site, fn, true, &tensor);
  if (st) goto done;
  if (t.byte_size) memcpy(tensor->data, t.data, t.byte_size);
  if (name) memcpy(name, t.name, name_length + 1);
  *out = tensor;
done:
  onnx_arena_free(&arena);
  return st;
}

STRAND_NOINLINE strand_status strand_tensor_read_pb(const char *path, strand_tensor **out,
                                                    char *name, size_t name_size) {
  strand__init();
  if (!path) return strand__fail(STRAND_E_INVALID_ARGUMENT, "strand_tensor_read_pb: path is NULL");
  if (!out) return strand__fail(STRAND_E_INVALID_ARGUMENT, "strand_tensor_read_pb: out is NULL");
  return read_pb(path, __builtin_return_address(0), out, name, name_size);
}

/* ---- writing ----------------------------------------------------------- */

static void put_varint(FILE *f, uint64_t v) {
  while (v >= 0x80) {
    fputc((int)(v & 0x7f) | 0x80, f);
    v >>= 7;
  }
  fputc((int)v, f);
}

static void put_tag(FILE *f, uint32_t field, unsigned wire) {
  put_varint(f, (uint64_t)field << 3 | wire);
}

static void put_data(FILE *f, const strand_tensor *t) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  size_t width = strand_dtype_size(t->dtype);
  const unsigned char *p = t->data;
  for (size_t i = 0; i < t->element_count; i++)
    for (size_t b = 0; b < width; b++) fputc(p[i * width + width - 1 - b], f);
#else
  if (t->byte_size) fwrite(t->data, 1, t->byte_size, f);
#endif
}

strand_status strand_tensor_write_pb(const strand_tensor *tensor, const char *path,
                                     const char *name) {
  static const char fn[] = "strand_tensor_write_pb";
  strand__init();
  strand_status st = strand__object_check(tensor, STRAND_KIND_TENSOR, fn);
  if (st) return st;
  if (!path) return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: path is NULL", fn);
  char temp[4096];
  int n = snprintf(temp, sizeof temp, "%s.XXXXXX", path);
  if (n < 0 || (size_t)n >= sizeof temp)
    return strand__fail(STRAND_E_INVALID_ARGUMENT, "%s: path is too long", fn);
  char why[128];
  int fd = mkstemp(temp);
  if (fd < 0)
    return strand__fail(STRAND_E_IO, "tensor file \"%s\": %s", path,
                        onnx_strerror(errno, why, sizeof why));
  /* mkstemp makes the file private; a tensor file is ordinary data. */
  (void)fchmod(fd, 0644);
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    int e = errno;
    close(fd);
    unlink(temp);
    return strand__fail(STRAND_E_IO, "tensor file \"%s\": %s", path,
                        onnx_strerror(e, why, sizeof why));
  }
  for (size_t i = 0; i < tensor->rank; i++) {
    put_tag(f, 1, PB_WIRE_VARINT);
    put_varint(f, (uint64_t)tensor->dims[i]);
  }
  put_tag(f, 2, PB_WIRE_VARINT);
  put_varint(f, (uint64_t)tensor->dtype); /* strand's dtype numbers are ONNX's */
  if (name && name[0]) {
    put_tag(f, 8, PB_WIRE_LEN);
    put_varint(f, strlen(name));
    fputs(name, f);
  }
  put_tag(f, 9, PB_WIRE_LEN);
  put_varint(f, tensor->byte_size);
  put_data(f, tensor);
  int failed = ferror(f);
  int e = failed ? EIO : 0;
  if (fclose(f) != 0 && !failed) {
    failed = 1;
    e = errno;
  }
  if (!failed && rename(temp, path) != 0) {
    failed = 1;
    e = errno;
  }
  if (failed) {
    unlink(temp);
    return strand__fail(STRAND_E_IO, "tensor file \"%s\": %s", path,
                        onnx_strerror(e, why, sizeof why));
  }
  return STRAND_OK;
}
