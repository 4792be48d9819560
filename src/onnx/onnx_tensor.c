/*
 * onnx_tensor.c — TensorProto: dims, element type and data, wherever the data
 * lives (raw_data, the typed repeated fields packed or not, or an external
 * file), plus the ONNX element-type table.
 *
 * What holds for every tensor this file produces: dims are >= 0 and their
 * product times the element size fits size_t and equals the bytes actually
 * present; `data` is aligned to the element size. Data points into the model
 * bytes or the external file's mapping whenever that alignment allows (zero
 * copy); otherwise it is copied or converted into WEIGHTS memory. Memory is
 * only ever allocated for elements that are present in the file.
 */
#include "onnx/onnx_internal.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_LITTLE_ENDIAN 0
#else
#define HOST_LITTLE_ENDIAN 1
#endif

/* ---- element types ----------------------------------------------------- */

bool onnx_dtype_from_onnx(int64_t onnx_type, strand_dtype *out) {
  switch (onnx_type) {
#define CASE_(name, value, size, text) \
  case value: *out = STRAND_DTYPE_##name; return true;
    STRAND_DTYPE_LIST(CASE_)
#undef CASE_
  default: return false;
  }
}

const char *onnx_dtype_onnx_name(int64_t onnx_type) {
  static const char *const names[] = {
      "undefined",   "float32",        "uint8",        "int8",          "uint16",
      "int16",       "int32",          "int64",        "string",        "bool",
      "float16",     "float64",        "uint32",       "uint64",        "complex64",
      "complex128",  "bfloat16",       "float8e4m3fn", "float8e4m3fnuz", "float8e5m2",
      "float8e5m2fnuz", "uint4",       "int4",         "float4e2m1",    "float8e8m0",
      "uint2",       "int2",           "float6e2m3",   "float6e3m2"};
  if (onnx_type >= 0 && (uint64_t)onnx_type < sizeof names / sizeof names[0])
    return names[onnx_type];
  return "unknown";
}

/* ---- external files ---------------------------------------------------- */

struct onnx_external {
  onnx_external *next;
  const char *path; /* resolved */
  const uint8_t *data;
  size_t size;
};

static strand_status map_external(onnx_parser *p, const char *location, onnx_external **out) {
  char *path;
  strand_status st = onnx_resolve_external(p->arena, p->dir, location, &path);
  if (st) return st;
  for (onnx_external *e = p->externals; e; e = e->next)
    if (strcmp(e->path, path) == 0) {
      *out = e;
      return STRAND_OK;
    }
  void *mem;
  st = onnx_arena_alloc(p->arena, sizeof(onnx_external), &mem);
  if (st) return st;
  onnx_external *e = mem;
  e->path = path;
  st = onnx_arena_map_file(p->arena, path, SIZE_MAX, "external data", true, &e->data, &e->size);
  if (st) return st;
  e->next = p->externals;
  p->externals = e;
  *out = e;
  return STRAND_OK;
}

/* A non-negative decimal integer with nothing else around it. */
static bool parse_decimal(const char *text, uint64_t *out) {
  if (!*text) return false;
  uint64_t v = 0;
  for (const char *c = text; *c; c++) {
    if (*c < '0' || *c > '9') return false;
    if (v > (UINT64_MAX - (uint64_t)(*c - '0')) / 10) return false;
    v = v * 10 + (uint64_t)(*c - '0');
  }
  *out = v;
  return true;
}

/* Reads one StringStringEntryProto; key and value are arena strings. */
static strand_status read_entry(onnx_parser *p, const pb_reader *r, char **key, char **value) {
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  *key = NULL;
  *value = NULL;
  while (pb_next(&in, &f, &st)) {
    if (f.number != 1 && f.number != 2) continue;
    st = pb_expect(&f, PB_WIRE_LEN, f.number == 1 ? "key" : "value");
    if (st) return st;
    if (memchr(f.data, 0, f.size))
      return strand__fail(STRAND_E_MALFORMED_MODEL, "external_data %s contains a NUL byte",
                          f.number == 1 ? "key" : "value");
    st = onnx_arena_string(p->arena, f.data, f.size, f.number == 1 ? key : value);
    if (st) return st;
  }
  return st;
}

/* ---- TensorProto ------------------------------------------------------- */

enum {
  T_DIMS = 1,
  T_DATA_TYPE = 2,
  T_SEGMENT = 3,
  T_FLOAT_DATA = 4,
  T_INT32_DATA = 5,
  T_STRING_DATA = 6,
  T_INT64_DATA = 7,
  T_NAME = 8,
  T_RAW_DATA = 9,
  T_DOUBLE_DATA = 10,
  T_UINT64_DATA = 11,
  T_EXTERNAL_DATA = 13,
  T_DATA_LOCATION = 14
};

typedef struct source {
  int field;           /* T_*_DATA holding the elements, or T_RAW_DATA, or 0 */
  const char *name;    /* the field's name for messages */
  pb_wire element;     /* for typed fields */
} source;

static const source typed_sources[] = {
    {T_FLOAT_DATA, "float_data", PB_WIRE_I32},
    {T_INT32_DATA, "int32_data", PB_WIRE_VARINT},
    {T_INT64_DATA, "int64_data", PB_WIRE_VARINT},
    {T_DOUBLE_DATA, "double_data", PB_WIRE_I64},
    {T_UINT64_DATA, "uint64_data", PB_WIRE_VARINT},
};

/* The typed field that may carry elements of `dtype`. */
static int typed_field_for(strand_dtype dtype) {
  switch (dtype) {
  case STRAND_DTYPE_FLOAT32: return T_FLOAT_DATA;
  case STRAND_DTYPE_INT32:
  case STRAND_DTYPE_INT16:
  case STRAND_DTYPE_INT8:
  case STRAND_DTYPE_UINT16:
  case STRAND_DTYPE_UINT8:
  case STRAND_DTYPE_BOOL:
  case STRAND_DTYPE_FLOAT16:
  case STRAND_DTYPE_BFLOAT16: return T_INT32_DATA;
  case STRAND_DTYPE_INT64: return T_INT64_DATA;
  case STRAND_DTYPE_FLOAT64: return T_DOUBLE_DATA;
  case STRAND_DTYPE_UINT32:
  case STRAND_DTYPE_UINT64: return T_UINT64_DATA;
  default: return 0;
  }
}

/* Stores one decoded typed element into dst[i], checking that it fits. */
static bool store_element(strand_dtype dtype, uint64_t raw, void *dst, size_t i) {
  int64_t s = (int64_t)raw;
  switch (dtype) {
  case STRAND_DTYPE_FLOAT32: {
    uint32_t bits = (uint32_t)raw;
    memcpy((char *)dst + 4 * i, &bits, 4);
    return true;
  }
  case STRAND_DTYPE_FLOAT64: memcpy((char *)dst + 8 * i, &raw, 8); return true;
  case STRAND_DTYPE_INT64: ((int64_t *)dst)[i] = s; return true;
  case STRAND_DTYPE_UINT64: ((uint64_t *)dst)[i] = raw; return true;
  case STRAND_DTYPE_UINT32:
    if (raw > UINT32_MAX) return false;
    ((uint32_t *)dst)[i] = (uint32_t)raw;
    return true;
  case STRAND_DTYPE_INT32:
    if (s < INT32_MIN || s > INT32_MAX) return false;
    ((int32_t *)dst)[i] = (int32_t)s;
    return true;
  case STRAND_DTYPE_INT16:
    if (s < INT16_MIN || s > INT16_MAX) return false;
    ((int16_t *)dst)[i] = (int16_t)s;
    return true;
  case STRAND_DTYPE_INT8:
    if (s < INT8_MIN || s > INT8_MAX) return false;
    ((int8_t *)dst)[i] = (int8_t)s;
    return true;
  case STRAND_DTYPE_UINT16:
  case STRAND_DTYPE_FLOAT16:
  case STRAND_DTYPE_BFLOAT16:
    /* 16-bit floats travel as their bit patterns. */
    if (s < 0 || s > UINT16_MAX) return false;
    ((uint16_t *)dst)[i] = (uint16_t)s;
    return true;
  case STRAND_DTYPE_UINT8:
    if (s < 0 || s > UINT8_MAX) return false;
    ((uint8_t *)dst)[i] = (uint8_t)s;
    return true;
  case STRAND_DTYPE_BOOL:
    if (s < 0 || s > 1) return false;
    ((uint8_t *)dst)[i] = (uint8_t)s;
    return true;
  default: return false;
  }
}

/* Copies little-endian elements to an aligned buffer in host order. */
static void copy_little_endian(void *dst, const uint8_t *src, size_t count, size_t width) {
  if (HOST_LITTLE_ENDIAN || width == 1) {
    memcpy(dst, src, count * width);
    return;
  }
  unsigned char *d = dst;
  for (size_t i = 0; i < count; i++)
    for (size_t b = 0; b < width; b++) d[i * width + b] = src[i * width + width - 1 - b];
}

/* Gives back the resident pages of a private file mapping that lie wholly
 * inside [bytes, bytes + size): their contents now live in a copy, so the
 * model keeps no more resident memory than its weights. Pages shared with
 * neighbouring bytes stay. Only for read-only file mappings (path loads and
 * external data), where a later touch would simply read the file again. */
static void release_file_pages(const uint8_t *bytes, size_t size) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = ((uintptr_t)bytes + page - 1) & ~(page - 1);
  uintptr_t end = ((uintptr_t)bytes + size) & ~(page - 1);
  if (end > start) madvise((void *)start, end - start, MADV_DONTNEED);
}

/* Points `out` at little-endian bytes in a mapping, or copies them when they
 * are misaligned for the element type or the host is big-endian. */
static strand_status place_bytes(onnx_parser *p, onnx_tensor *out, const uint8_t *bytes) {
  size_t width = strand_dtype_size(out->dtype);
  if (out->byte_size == 0) {
    out->data = NULL;
    out->storage = ONNX_STORAGE_NONE;
    return STRAND_OK;
  }
  if ((HOST_LITTLE_ENDIAN || width == 1) && (uintptr_t)bytes % width == 0) {
    out->data = bytes;
    out->storage = ONNX_STORAGE_MAPPED;
    return STRAND_OK;
  }
  void *copy;
  strand_status st = onnx_arena_weights(p->arena, out->byte_size, &copy);
  if (st) return st;
  copy_little_endian(copy, bytes, out->count, width);
  out->data = copy;
  out->storage = ONNX_STORAGE_COPIED;
  if (p->dir) release_file_pages(bytes, out->byte_size);
  return STRAND_OK;
}

static strand_status read_external(onnx_parser *p, const pb_reader *r, onnx_tensor *out) {
  const char *location = NULL;
  uint64_t offset = 0, length = 0;
  bool has_length = false;
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  while (pb_next(&in, &f, &st)) {
    if (f.number != T_EXTERNAL_DATA) continue;
    st = pb_expect(&f, PB_WIRE_LEN, "external_data");
    if (st) return st;
    pb_reader entry = pb_reader_sub(&in, &f);
    char *key, *value;
    st = read_entry(p, &entry, &key, &value);
    if (st) return st;
    if (!key) continue;
    const char *v = value ? value : "";
    if (strcmp(key, "location") == 0) {
      location = v;
    } else if (strcmp(key, "offset") == 0) {
      if (!parse_decimal(v, &offset))
        return strand__fail(STRAND_E_MALFORMED_MODEL, "external_data offset \"%s\" is not a "
                            "non-negative integer", v);
    } else if (strcmp(key, "length") == 0) {
      if (!parse_decimal(v, &length))
        return strand__fail(STRAND_E_MALFORMED_MODEL, "external_data length \"%s\" is not a "
                            "non-negative integer", v);
      has_length = true;
    }
  }
  if (st) return st;
  if (!location)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "external data without a \"location\" entry");
  if (!p->dir)
    return strand__fail(STRAND_E_UNSUPPORTED,
                        "external data (\"%s\") needs a model loaded from a path", location);
  onnx_external *file;
  st = map_external(p, location, &file);
  if (st) return st;
  if (offset > file->size)
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "external data offset %llu is past the end of \"%s\" (%zu bytes)",
                        (unsigned long long)offset, location, file->size);
  if (!has_length) length = file->size - offset;
  if (length > file->size - offset)
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "external data offset %llu + length %llu is past the end of \"%s\" "
                        "(%zu bytes)",
                        (unsigned long long)offset, (unsigned long long)length, location,
                        file->size);
  if (length != out->byte_size)
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "external data in \"%s\" has %llu bytes, expected %zu (%zu %s elements)",
                        location, (unsigned long long)length, out->byte_size, out->count,
                        strand_dtype_name(out->dtype));
  out->external = true;
  return place_bytes(p, out, file->data + offset);
}

/* Fills out->data from the typed field `src` (n elements, already counted). */
static strand_status read_typed(onnx_parser *p, const pb_reader *r, const source *src, size_t n,
                                onnx_tensor *out) {
  /* A single packed occurrence of float_data or double_data holds exactly
   * the little-endian bytes raw_data would: use it in place. */
  pb_reader in = *r;
  pb_field f, only = {0};
  strand_status st;
  size_t occurrences = 0;
  while (pb_next(&in, &f, &st))
    if ((int)f.number == src->field) {
      occurrences++;
      only = f;
    }
  if (st) return st;
  if (occurrences == 1 && only.wire == PB_WIRE_LEN &&
      ((src->field == T_FLOAT_DATA && out->dtype == STRAND_DTYPE_FLOAT32) ||
       (src->field == T_DOUBLE_DATA && out->dtype == STRAND_DTYPE_FLOAT64)) &&
      only.size == out->byte_size)
    return place_bytes(p, out, only.data);

  void *dst;
  st = onnx_arena_weights(p->arena, out->byte_size ? out->byte_size : 1, &dst);
  if (st) return st;
  size_t i = 0;
  in = *r;
  while (pb_next(&in, &f, &st)) {
    if ((int)f.number != src->field) continue;
    pb_elements it;
    pb_elements_init(&it, &f, src->element);
    uint64_t raw;
    while (i < n && pb_elements_next(&it, &raw)) {
      if (!store_element(out->dtype, raw, dst, i))
        return strand__fail(STRAND_E_MALFORMED_MODEL,
                            "%s element %zu (%lld) does not fit element type %s", src->name, i,
                            (long long)raw, strand_dtype_name(out->dtype));
      i++;
    }
  }
  if (st) return st;
  out->data = dst;
  out->storage = ONNX_STORAGE_CONVERTED;
  return STRAND_OK;
}

static strand_status parse_tensor(onnx_parser *p, const pb_reader *r, onnx_tensor *out) {
  pb_reader in = *r;
  pb_field f;
  strand_status st;
  size_t n_dims = 0;
  size_t typed_counts[T_UINT64_DATA + 1] = {0};
  int64_t data_type = 0;
  int64_t location = 0;
  bool has_raw = false, has_strings = false;
  pb_field raw = {0};

  /* First pass: counts and scalars, so that nothing is sized by a claim. */
  while (pb_next(&in, &f, &st)) {
    switch (f.number) {
    case T_DIMS: st = pb_repeated_count(&f, PB_WIRE_VARINT, "dims", &n_dims); break;
    case T_DATA_TYPE: st = pb_get_int64(&f, "data_type", &data_type); break;
    case T_SEGMENT:
      return strand__fail(STRAND_E_UNSUPPORTED, "segmented tensors (field segment) are not "
                                                "supported");
    case T_FLOAT_DATA:
    case T_INT32_DATA:
    case T_INT64_DATA:
    case T_DOUBLE_DATA:
    case T_UINT64_DATA:
      for (size_t k = 0; k < sizeof typed_sources / sizeof typed_sources[0]; k++)
        if (typed_sources[k].field == (int)f.number)
          st = pb_repeated_count(&f, typed_sources[k].element, typed_sources[k].name,
                                 &typed_counts[f.number]);
      break;
    case T_STRING_DATA: has_strings = true; break;
    case T_NAME:
      st = pb_expect(&f, PB_WIRE_LEN, "name");
      if (!st) {
        if (memchr(f.data, 0, f.size))
          return strand__fail(STRAND_E_MALFORMED_MODEL, "tensor name contains a NUL byte");
        char *name;
        st = onnx_arena_string(p->arena, f.data, f.size, &name);
        if (!st) out->name = name;
      }
      break;
    case T_RAW_DATA:
      st = pb_expect(&f, PB_WIRE_LEN, "raw_data");
      raw = f;
      has_raw = true;
      break;
    case T_DATA_LOCATION: st = pb_get_int64(&f, "data_location", &location); break;
    default: break; /* doc_string, external_data (read below), metadata_props, unknown */
    }
    if (st) return st;
  }
  if (st) return st;

  if (data_type == 0)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "data_type is missing");
  if (!onnx_dtype_from_onnx(data_type, &out->dtype))
    return strand__fail(STRAND_E_UNSUPPORTED, "element type %s (%lld) is not supported",
                        onnx_dtype_onnx_name(data_type), (long long)data_type);
  if (n_dims > STRAND_MAX_RANK)
    return strand__fail(STRAND_E_UNSUPPORTED, "rank %zu is more than strand's limit of %d",
                        n_dims, STRAND_MAX_RANK);
  if (location != 0 && location != 1)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "data_location %lld is neither DEFAULT (0) "
                        "nor EXTERNAL (1)", (long long)location);

  int64_t *dims = NULL;
  if (n_dims) {
    st = onnx_arena_array(p->arena, n_dims, sizeof *dims, (void **)&dims);
    if (st) return st;
  }
  size_t d = 0;
  in = *r;
  while (pb_next(&in, &f, &st)) {
    if (f.number != T_DIMS) continue;
    pb_elements it;
    pb_elements_init(&it, &f, PB_WIRE_VARINT);
    uint64_t v;
    while (d < n_dims && pb_elements_next(&it, &v)) dims[d++] = (int64_t)v;
  }
  if (st) return st;
  size_t count = 1;
  for (size_t i = 0; i < n_dims; i++) {
    if (dims[i] < 0)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "dimension %zu is negative (%lld)", i,
                          (long long)dims[i]);
    if ((uint64_t)dims[i] > SIZE_MAX || !strand__size_mul(count, (size_t)dims[i], &count))
      return strand__fail(STRAND_E_MALFORMED_MODEL, "element count overflows");
  }
  size_t width = strand_dtype_size(out->dtype);
  size_t bytes;
  if (!strand__size_mul(count, width, &bytes))
    return strand__fail(STRAND_E_MALFORMED_MODEL, "byte size overflows");
  out->rank = n_dims;
  out->dims = dims;
  out->count = count;
  out->byte_size = bytes;
  out->data = NULL;
  out->storage = ONNX_STORAGE_NONE;

  /* Exactly one source of elements. */
  const source *typed = NULL;
  size_t typed_n = 0;
  int sources = has_raw + (location == 1);
  for (size_t k = 0; k < sizeof typed_sources / sizeof typed_sources[0]; k++)
    if (typed_counts[typed_sources[k].field]) {
      sources++;
      typed = &typed_sources[k];
      typed_n = typed_counts[typed->field];
    }
  if (has_strings)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "string_data given for element type %s",
                        strand_dtype_name(out->dtype));
  if (sources > 1)
    return strand__fail(STRAND_E_MALFORMED_MODEL,
                        "more than one of raw_data, external data and the typed *_data fields "
                        "is given");
  if (location == 1) return read_external(p, r, out);
  if (has_raw) {
    if (raw.size != bytes)
      return strand__fail(STRAND_E_MALFORMED_MODEL,
                          "raw_data has %zu bytes, expected %zu (%zu %s elements) at byte %zu",
                          raw.size, bytes, count, strand_dtype_name(out->dtype), raw.offset);
    return place_bytes(p, out, raw.data);
  }
  if (typed) {
    if (typed_field_for(out->dtype) != typed->field)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "%s given for element type %s", typed->name,
                          strand_dtype_name(out->dtype));
    if (typed_n != count)
      return strand__fail(STRAND_E_MALFORMED_MODEL, "%s has %zu elements, expected %zu",
                          typed->name, typed_n, count);
    return read_typed(p, r, typed, typed_n, out);
  }
  if (count != 0)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "no data for %zu elements", count);
  return STRAND_OK;
}

strand_status onnx_parse_tensor(onnx_parser *p, const pb_reader *r, onnx_tensor *out) {
  memset(out, 0, sizeof *out);
  out->name = "";
  strand_status st = parse_tensor(p, r, out);
  if (st && out->name[0]) return strand__fail_context(st, "tensor \"%s\"", out->name);
  return st;
}
