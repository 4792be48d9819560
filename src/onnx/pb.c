/*
 * pb.c — a protobuf wire-format reader written for strand.
 *
 * Why not protobuf-c (or nanopb, or generated C++): strand reads model files
 * from strangers, so it needs total control of bounds. Every length, count and
 * offset must be checked against the bytes actually present; nesting must be
 * bounded; nothing may be allocated in proportion to a count the file merely
 * claims; and a failure must say which field at which byte. Generated
 * decoders allocate field by field, trust declared lengths further than we
 * like, and bring a dependency with its own release cycle. ONNX needs only the
 * wire format (varint, 64-bit, length-delimited, 32-bit), no descriptors or
 * reflection, so a reader of a few hundred lines that we own, fuzz and audit
 * is the smaller risk. It keeps strand free of dependencies.
 *
 * What holds here: a reader never looks outside [pos, end); a LEN payload is
 * always inside its parent's bounds; varints are at most 10 bytes and never
 * exceed 64 bits. Nesting depth is bounded by the callers (onnx_model.c),
 * since only they know which messages recurse.
 */
#include "onnx/onnx_internal.h"

#include <string.h>

void pb_reader_init(pb_reader *r, const uint8_t *data, size_t size) {
  r->base = data;
  r->pos = data;
  r->end = data + size;
}

pb_reader pb_reader_sub(const pb_reader *parent, const pb_field *field) {
  /* A field that is not length-delimited reads as an empty message. */
  if (field->wire != PB_WIRE_LEN || !field->data) {
    pb_reader empty = {parent->base, parent->pos, parent->pos};
    return empty;
  }
  pb_reader r = {parent->base, field->data, field->data + field->size};
  return r;
}

size_t pb_offset(const pb_reader *r) { return (size_t)(r->pos - r->base); }

bool pb_decode_varint(const uint8_t **pos, const uint8_t *end, uint64_t *out) {
  const uint8_t *p = *pos;
  uint64_t value = 0;
  for (unsigned i = 0; i < PB_MAX_VARINT_BYTES; i++) {
    if (p == end) return false;
    uint8_t byte = *p++;
    /* The tenth byte carries bit 63 only. */
    if (i == PB_MAX_VARINT_BYTES - 1 && byte > 1) return false;
    value |= (uint64_t)(byte & 0x7f) << (7 * i);
    if (!(byte & 0x80)) {
      *pos = p;
      *out = value;
      return true;
    }
  }
  return false;
}

/* Why a varint at p failed: truncated or too long. */
static const char *varint_problem(const uint8_t *p, const uint8_t *end) {
  for (unsigned i = 0; i < PB_MAX_VARINT_BYTES; i++, p++) {
    if (p == end) return "truncated varint";
    if (i == PB_MAX_VARINT_BYTES - 1 && *p > 1) return "varint overflows 64 bits";
    if (!(*p & 0x80)) break;
  }
  return "varint longer than 10 bytes";
}

bool pb_next(pb_reader *r, pb_field *field, strand_status *status) {
  *status = STRAND_OK;
  if (r->pos >= r->end) return false;
  const uint8_t *start = r->pos;
  size_t offset = (size_t)(start - r->base);
  const uint8_t *p = start;
  uint64_t tag;
  if (!pb_decode_varint(&p, r->end, &tag)) {
    *status = strand__fail(STRAND_E_MALFORMED_MODEL, "%s in field tag at byte %zu",
                           varint_problem(start, r->end), offset);
    return false;
  }
  uint64_t number = tag >> 3;
  unsigned wire = (unsigned)(tag & 7);
  if (number == 0 || number > 0x1fffffff) {
    *status = strand__fail(STRAND_E_MALFORMED_MODEL, "invalid field number %llu at byte %zu",
                           (unsigned long long)number, offset);
    return false;
  }
  field->number = (uint32_t)number;
  field->wire = (pb_wire)wire;
  field->offset = offset;
  field->value = 0;
  field->data = NULL;
  field->size = 0;
  switch (wire) {
  case PB_WIRE_VARINT: {
    const uint8_t *v = p;
    if (!pb_decode_varint(&p, r->end, &field->value)) {
      *status = strand__fail(STRAND_E_MALFORMED_MODEL, "field %u at byte %zu: %s",
                             field->number, offset, varint_problem(v, r->end));
      return false;
    }
    break;
  }
  case PB_WIRE_I64:
  case PB_WIRE_I32: {
    size_t width = wire == PB_WIRE_I64 ? 8 : 4;
    if ((size_t)(r->end - p) < width) {
      *status = strand__fail(STRAND_E_MALFORMED_MODEL,
                             "field %u at byte %zu: truncated %zu-byte value", field->number,
                             offset, width);
      return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++) v |= (uint64_t)p[i] << (8 * i);
    field->value = v;
    p += width;
    break;
  }
  case PB_WIRE_LEN: {
    const uint8_t *v = p;
    uint64_t length;
    if (!pb_decode_varint(&p, r->end, &length)) {
      *status = strand__fail(STRAND_E_MALFORMED_MODEL, "field %u at byte %zu: length: %s",
                             field->number, offset, varint_problem(v, r->end));
      return false;
    }
    size_t present = (size_t)(r->end - p);
    if (length > present) {
      *status = strand__fail(STRAND_E_MALFORMED_MODEL,
                             "field %u at byte %zu: truncated: %llu bytes claimed, %zu present",
                             field->number, offset, (unsigned long long)length, present);
      return false;
    }
    field->data = p;
    field->size = (size_t)length;
    p += length;
    break;
  }
  case PB_WIRE_START_GROUP:
  case PB_WIRE_END_GROUP:
    *status = strand__fail(STRAND_E_MALFORMED_MODEL,
                           "field %u at byte %zu: group wire types are not used by ONNX",
                           field->number, offset);
    return false;
  default:
    *status = strand__fail(STRAND_E_MALFORMED_MODEL, "field %u at byte %zu: invalid wire type %u",
                           field->number, offset, wire);
    return false;
  }
  r->pos = p;
  return true;
}

static const char *wire_name(unsigned wire) {
  switch (wire) {
  case PB_WIRE_VARINT: return "varint";
  case PB_WIRE_I64: return "64-bit";
  case PB_WIRE_LEN: return "length-delimited";
  case PB_WIRE_I32: return "32-bit";
  default: return "group";
  }
}

strand_status pb_expect(const pb_field *field, pb_wire wire, const char *name) {
  if (field->wire == wire) return STRAND_OK;
  return strand__fail(STRAND_E_MALFORMED_MODEL, "field %s at byte %zu is %s, expected %s", name,
                      field->offset, wire_name(field->wire), wire_name(wire));
}

strand_status pb_get_int64(const pb_field *field, const char *name, int64_t *out) {
  strand_status st = pb_expect(field, PB_WIRE_VARINT, name);
  if (st) return st;
  *out = (int64_t)field->value;
  return STRAND_OK;
}

strand_status pb_get_int32(const pb_field *field, const char *name, int32_t *out) {
  int64_t v;
  strand_status st = pb_get_int64(field, name, &v);
  if (st) return st;
  /* int32 fields are sign-extended to 64 bits on the wire. */
  if (v < INT32_MIN || v > INT32_MAX)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "field %s at byte %zu: %lld is out of range",
                        name, field->offset, (long long)v);
  *out = (int32_t)v;
  return STRAND_OK;
}

strand_status pb_get_float(const pb_field *field, const char *name, float *out) {
  strand_status st = pb_expect(field, PB_WIRE_I32, name);
  if (st) return st;
  uint32_t bits = (uint32_t)field->value;
  memcpy(out, &bits, sizeof bits);
  return STRAND_OK;
}

strand_status pb_repeated_count(const pb_field *field, pb_wire element, const char *name,
                                size_t *count) {
  if (field->wire == element) {
    (*count)++;
    return STRAND_OK;
  }
  if (field->wire != PB_WIRE_LEN)
    return strand__fail(STRAND_E_MALFORMED_MODEL, "field %s at byte %zu is %s, expected %s",
                        name, field->offset, wire_name(field->wire), wire_name(element));
  size_t n = 0;
  if (element == PB_WIRE_VARINT) {
    const uint8_t *p = field->data, *end = field->data + field->size;
    while (p < end) {
      const uint8_t *v = p;
      uint64_t ignored;
      if (!pb_decode_varint(&p, end, &ignored))
        return strand__fail(STRAND_E_MALFORMED_MODEL, "field %s: %s in packed field at byte %zu",
                            name, varint_problem(v, end), field->offset);
      n++;
    }
  } else {
    size_t width = element == PB_WIRE_I64 ? 8 : 4;
    if (field->size % width)
      return strand__fail(STRAND_E_MALFORMED_MODEL,
                          "field %s: truncated packed field at byte %zu (%zu bytes is not a "
                          "multiple of %zu)",
                          name, field->offset, field->size, width);
    n = field->size / width;
  }
  *count += n;
  return STRAND_OK;
}

void pb_elements_init(pb_elements *it, const pb_field *field, pb_wire element) {
  it->element = element;
  if (field->wire == element) {
    it->single = true;
    it->value = field->value;
    it->pos = it->end = NULL;
  } else {
    it->single = false;
    it->value = 0;
    it->pos = field->data;
    it->end = field->data + field->size;
  }
}

bool pb_elements_next(pb_elements *it, uint64_t *out) {
  if (it->single) {
    it->single = false;
    it->element = PB_WIRE_LEN; /* spent */
    *out = it->value;
    return true;
  }
  if (!it->pos || it->pos >= it->end) return false;
  if (it->element == PB_WIRE_VARINT) return pb_decode_varint(&it->pos, it->end, out);
  size_t width = it->element == PB_WIRE_I64 ? 8 : 4;
  if ((size_t)(it->end - it->pos) < width) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < width; i++) v |= (uint64_t)it->pos[i] << (8 * i);
  it->pos += width;
  *out = v;
  return true;
}
