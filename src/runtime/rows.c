/*
 * rows.c — whether a session's batch rows are independent: whether running
 * a batch of B rows as runs of S rows each gives the same bytes.
 *
 * The proof is made per pair of plans, one for B rows ("whole") and one for
 * S rows ("part"), from the dims both plans recorded for every value. Each
 * value gets one of three states:
 *   rows     one axis holds the rows: it has outer x B x factor entries
 *            in the whole run and outer x S x factor in the part, entry
 *            (o, row, j) at (o x rows + row) x factor + j (outer > 1 when
 *            a reshape put the rows under another axis, as attention
 *            layers do; factor > 1 when it merged rows with heads), and
 *            the part's value equals the whole's entries of the part's
 *            rows (rows [r, r + S) for any r);
 *   same     no axis holds rows and the value is equal in both runs;
 *   differs  no axis holds rows but some elements (bits of `differs`, all
 *            bits for big tensors) may differ: shape data computed from
 *            dims that hold rows. Such values may only decide dims (the
 *            shape input of Reshape, Expand, ConstantOfShape), which the
 *            plans show; any other use makes the proof fail.
 * Graph inputs hold rows on axis 0; the proof holds when every requested
 * output does too, with outer and factor 1. Every op has a rule written for it below;
 * any other op, any other domain, or a case a rule does not cover fails
 * the proof: the session then runs the batch whole. The rules check the
 * dims both plans recorded, so a proof is exact for the row counts of its
 * two plans.
 */
#include "runtime/executor.h"

#include <string.h>

#define DIFFERS_ALL UINT32_MAX

/* With rows, the axis has outer x rows x factor entries: entry
 * (o, row, j) at (o x rows + row) x factor + j. */
typedef struct row_state {
  int axis;        /* -1: no rows */
  int64_t outer, factor;
  uint32_t differs;
} row_state;

typedef struct rows_proof {
  const strand_session *s;
  const graph *g;
  const plan *whole, *part;
  int64_t rows_whole, rows_part;
  row_state *state; /* per value */
} rows_proof;

/* ---- the batch symbol ------------------------------------------------------------ */

/* The symbol naming dimension 0 of v when it is a symbolic first dimension
 * used nowhere else in v, else NULL. */
static const char *first_symbol(const graph_value *v) {
  if (v->rank < 1 || v->dims[0].value >= 0 || !v->dims[0].param) return NULL;
  for (int32_t d = 1; d < v->rank; d++)
    if (v->dims[d].param && strcmp(v->dims[d].param, v->dims[0].param) == 0) return NULL;
  return v->dims[0].param;
}

const char *session_batch_symbol(const graph *g) {
  if (g->n_inputs == 0 || g->n_outputs == 0) return NULL;
  const char *symbol = first_symbol(&g->values[g->inputs[0]]);
  for (size_t j = 0; j < g->n_inputs && symbol; j++) {
    const char *other = first_symbol(&g->values[g->inputs[j]]);
    if (!other || strcmp(other, symbol) != 0) symbol = NULL;
  }
  for (size_t j = 0; j < g->n_outputs && symbol; j++) {
    const char *other = first_symbol(&g->values[g->outputs[j]]);
    if (!other || strcmp(other, symbol) != 0) symbol = NULL;
  }
  return symbol;
}

/* ---- dims and constants --------------------------------------------------------- */

/* The dims value v has in plan p (`whole` selects which); false when p did
 * not record them (a value p never computed). */
static bool dims_in(const rows_proof *r, int32_t v, bool whole, size_t *rank, const int64_t **dims) {
  const graph *g = r->g;
  const plan *p = whole ? r->whole : r->part;
  const graph_value *gv = &g->values[v];
  if (gv->flags & GRAPH_VALUE_CONSTANT) {
    const kernel_tensor *t = &r->s->templates[v];
    *rank = t->rank;
    *dims = t->dims;
    return true;
  }
  if (gv->flags & GRAPH_VALUE_INPUT) {
    size_t at = 0;
    for (size_t j = 0; j < g->n_inputs; j++) {
      size_t n = (size_t)p->key[at + 1];
      if (g->inputs[j] == v) {
        *rank = n;
        *dims = &p->key[at + 2];
        return true;
      }
      at += 2 + n;
    }
    return false;
  }
  const plan_value *pv = &p->values[v];
  if (pv->place == PLAN_NONE) return false;
  *rank = pv->rank;
  *dims = p->dims + pv->dims_at;
  return true;
}

static int64_t product(const int64_t *dims, size_t from, size_t to) {
  int64_t n = 1;
  for (size_t d = from; d < to; d++) n *= dims[d];
  return n;
}

/* What the plans show of v: the one axis whose extent differs (-1 when
 * none does) and its entries per row. False when the dims differ in any
 * other way. */
static bool observe(const rows_proof *r, int32_t v, int *axis, int64_t *per) {
  size_t rw, rp;
  const int64_t *dw, *dp;
  if (!dims_in(r, v, true, &rw, &dw) || !dims_in(r, v, false, &rp, &dp) || rw != rp) return false;
  *axis = -1;
  *per = 0;
  for (size_t d = 0; d < rw; d++) {
    if (dw[d] == dp[d]) continue;
    if (*axis >= 0 || dp[d] % r->rows_part != 0) return false;
    int64_t n = dp[d] / r->rows_part;
    if (n < 1 || dw[d] != n * r->rows_whole) return false;
    *axis = (int)d;
    *per = n;
  }
  return true;
}

/* Up to `max` integers of constant v (int64 or int32); false otherwise. */
static bool const_ints(const rows_proof *r, int32_t v, int64_t *out, size_t max, size_t *n) {
  if (v < 0 || !(r->g->values[v].flags & GRAPH_VALUE_CONSTANT)) return false;
  const kernel_tensor *t = &r->s->templates[v];
  if (t->count > max) return false;
  for (size_t i = 0; i < t->count; i++) {
    if (t->dtype == STRAND_DTYPE_INT64) out[i] = ((const int64_t *)t->data)[i];
    else if (t->dtype == STRAND_DTYPE_INT32) out[i] = ((const int32_t *)t->data)[i];
    else return false;
  }
  *n = t->count;
  return true;
}

static int64_t attr_int(const graph_node *node, const char *name, int64_t fallback) {
  const onnx_attr *a = graph_node_attr(node, name);
  return a ? a->i : fallback;
}

/* axis normalized into [0, rank), or -1 when out of range. */
static int normal_axis(int64_t axis, size_t rank) {
  if (axis < 0) axis += (int64_t)rank;
  return axis >= 0 && axis < (int64_t)rank ? (int)axis : -1;
}

static bool op_is(const graph_node *node, const char *const *names) {
  for (size_t i = 0; names[i]; i++)
    if (strcmp(node->op_type, names[i]) == 0) return true;
  return false;
}

/* ---- values without rows (shape data) ------------------------------------------ */

static uint32_t bits_of(size_t count) {
  return count >= 32 ? DIFFERS_ALL : (((uint32_t)1 << count) - 1u);
}

/* The bits of output elements [0, n) that may differ when the node's
 * inputs (none of which holds rows) may: exact for the ops that shape
 * computations use, all bits otherwise. */
static uint32_t differs_out(const rows_proof *r, const graph_node *node, int32_t out) {
  const row_state *st = r->state;
  uint32_t any = 0;
  for (size_t i = 0; i < node->n_inputs; i++)
    if (node->inputs[i] >= 0) any |= st[node->inputs[i]].differs;
  if (!any) return 0;
  size_t rank;
  const int64_t *dims;
  if (!dims_in(r, out, false, &rank, &dims)) return DIFFERS_ALL;
  size_t count = (size_t)product(dims, 0, rank);
  if (count > 31) return DIFFERS_ALL;
  int32_t in0 = node->inputs[0];
  static const char *const order_kept[] = {"Cast", "Identity", "Squeeze", "Unsqueeze", "Reshape",
                                           "Flatten", "Neg", "Abs", "Sqrt", "Floor", "Ceil", NULL};
  if (op_is(node, order_kept)) {
    for (size_t i = 1; i < node->n_inputs; i++)
      if (node->inputs[i] >= 0 && st[node->inputs[i]].differs) return DIFFERS_ALL;
    return st[in0].differs & bits_of(count);
  }
  if (strcmp(node->op_type, "Concat") == 0) {
    uint32_t bits = 0;
    size_t at = 0;
    for (size_t i = 0; i < node->n_inputs; i++) {
      size_t ri;
      const int64_t *di;
      if (node->inputs[i] < 0 || !dims_in(r, node->inputs[i], false, &ri, &di) || ri > 1)
        return DIFFERS_ALL;
      size_t n = (size_t)product(di, 0, ri);
      uint32_t b = st[node->inputs[i]].differs & bits_of(n);
      if (at + n > 31) return DIFFERS_ALL;
      bits |= b << at;
      at += n;
    }
    return bits;
  }
  int64_t idx[32];
  size_t n_idx;
  if (strcmp(node->op_type, "Gather") == 0 && node->n_inputs == 2 &&
      attr_int(node, "axis", 0) == 0 && !st[node->inputs[1]].differs &&
      const_ints(r, node->inputs[1], idx, 31, &n_idx) && n_idx == count) {
    size_t rd;
    const int64_t *dd;
    if (!dims_in(r, in0, false, &rd, &dd) || rd != 1 || dd[0] > 31) return DIFFERS_ALL;
    uint32_t bits = 0;
    for (size_t e = 0; e < n_idx; e++) {
      int64_t i = idx[e] < 0 ? idx[e] + dd[0] : idx[e];
      if (i < 0 || i >= dd[0]) return DIFFERS_ALL;
      if ((st[in0].differs >> i) & 1u) bits |= 1u << e;
    }
    return bits;
  }
  if (strcmp(node->op_type, "Slice") == 0 && node->n_inputs >= 3) {
    int64_t p[4][32];
    size_t np[4] = {0, 0, 0, 0};
    for (size_t i = 1; i < node->n_inputs && i < 5; i++) {
      if (node->inputs[i] >= 0 &&
          (st[node->inputs[i]].differs || !const_ints(r, node->inputs[i], p[i - 1], 31, &np[i - 1])))
        return DIFFERS_ALL;
    }
    size_t rd;
    const int64_t *dd;
    if (!dims_in(r, in0, false, &rd, &dd) || rd != 1 || np[0] != 1 || np[1] != 1 ||
        (node->n_inputs > 3 && node->inputs[3] >= 0 && (np[2] != 1 || normal_axis(p[2][0], 1) != 0)))
      return DIFFERS_ALL;
    int64_t n = dd[0], step = node->n_inputs > 4 && node->inputs[4] >= 0 && np[3] == 1 ? p[3][0] : 1;
    if (step <= 0 || n > 31) return DIFFERS_ALL; /* forward slices only */
    int64_t start = p[0][0] < 0 ? p[0][0] + n : p[0][0], end = p[1][0] < 0 ? p[1][0] + n : p[1][0];
    start = start < 0 ? 0 : start > n ? n : start;
    end = end < 0 ? 0 : end > n ? n : end;
    uint32_t bits = 0;
    size_t e = 0;
    for (int64_t i = start; i < end; i += step, e++)
      if ((st[in0].differs >> i) & 1u) bits |= 1u << e;
    return e == count ? bits : DIFFERS_ALL;
  }
  static const char *const elementwise[] = {"Add", "Sub", "Mul", "Div", "Mod", "Pow", "Max", "Min",
                                            "Equal", "Less", "Greater", "Where", NULL};
  if (op_is(node, elementwise)) {
    uint32_t bits = 0;
    for (size_t i = 0; i < node->n_inputs; i++) {
      size_t ri;
      const int64_t *di;
      if (node->inputs[i] < 0 || !dims_in(r, node->inputs[i], false, &ri, &di)) return DIFFERS_ALL;
      size_t n = (size_t)product(di, 0, ri);
      uint32_t b = st[node->inputs[i]].differs;
      if (n == 1) bits |= b & 1u ? bits_of(count) : 0;
      else if (n == count && ri <= 1) bits |= b & bits_of(count);
      else return DIFFERS_ALL;
    }
    return bits;
  }
  return DIFFERS_ALL;
}

/* ---- values with rows ---------------------------------------------------------- */

static bool computed_in_part(const rows_proof *r, int32_t v) {
  return v >= 0 && r->part->values[v].place != PLAN_NONE;
}

/* Whether the plans show output v as `want` says; records it. */
static bool expect(rows_proof *r, int32_t v, row_state want) {
  if (!computed_in_part(r, v)) return true;
  int axis;
  int64_t per;
  if (!observe(r, v, &axis, &per) || axis != want.axis || want.axis < 0 ||
      per != want.outer * want.factor)
    return false;
  want.differs = 0;
  r->state[v] = want;
  return true;
}

static bool expect_all(rows_proof *r, const graph_node *node, const int32_t *outputs,
                       row_state want) {
  for (size_t i = 0; i < node->n_outputs; i++)
    if (!expect(r, outputs[i], want)) return false;
  return true;
}

static row_state at_axis(row_state s, int axis) {
  s.axis = axis;
  return s;
}

static bool same_layout(const row_state *a, const row_state *b) {
  return a->outer == b->outer && a->factor == b->factor;
}

/* Input i must be the same in both runs: no rows, nothing that differs. */
static bool same(const rows_proof *r, const graph_node *node, size_t i) {
  if (i >= node->n_inputs || node->inputs[i] < 0) return true;
  const row_state *st = &r->state[node->inputs[i]];
  return st->axis < 0 && !st->differs;
}

static bool all_same_from(const rows_proof *r, const graph_node *node, size_t first) {
  for (size_t i = first; i < node->n_inputs; i++)
    if (!same(r, node, i)) return false;
  return true;
}

/* Broadcasting ops: every input with rows has them on one output axis
 * (inputs aligned to the right) with one layout; every other input is the
 * same in both runs and has extent 1 on that axis (or does not reach it).
 * `skip` marks inputs that only give dims (bit i). */
static bool broadcast_rule(rows_proof *r, const graph_node *node, const int32_t *outputs,
                           uint32_t skip) {
  size_t out_rank;
  const int64_t *od;
  if (node->n_outputs != 1 || !dims_in(r, outputs[0], false, &out_rank, &od)) return false;
  row_state want = {-1, 0, 0, 0};
  for (size_t i = 0; i < node->n_inputs; i++) {
    int32_t v = node->inputs[i];
    if (v < 0 || ((skip >> i) & 1u) || r->state[v].axis < 0) continue;
    size_t rank;
    const int64_t *dims;
    if (!dims_in(r, v, false, &rank, &dims) || rank > out_rank) return false;
    row_state at = at_axis(r->state[v], r->state[v].axis + (int)(out_rank - rank));
    if (want.axis >= 0 && (want.axis != at.axis || !same_layout(&want, &at))) return false;
    want = at;
  }
  for (size_t i = 0; i < node->n_inputs; i++) {
    int32_t v = node->inputs[i];
    if (v < 0 || ((skip >> i) & 1u) || r->state[v].axis >= 0) continue;
    size_t rank;
    const int64_t *dims;
    if (r->state[v].differs || !dims_in(r, v, false, &rank, &dims) || rank > out_rank) return false;
    size_t shift = out_rank - rank;
    if ((size_t)want.axis >= shift && dims[(size_t)want.axis - shift] != 1) return false;
  }
  return expect(r, outputs[0], want);
}

/* Reshape and its kin: bytes keep their order. Input entries are
 * [before, outer, rows, factor x after]; the output's must be the same
 * with the rows on the axis whose extent differs. */
static bool reshape_rule(rows_proof *r, int32_t in, int32_t out_v) {
  const row_state *st = &r->state[in];
  size_t ri, ro;
  const int64_t *di, *dout;
  int axis;
  int64_t per;
  if (!dims_in(r, in, false, &ri, &di) || !dims_in(r, out_v, false, &ro, &dout) ||
      !observe(r, out_v, &axis, &per) || axis < 0)
    return false;
  size_t a = (size_t)st->axis, j = (size_t)axis;
  int64_t before = product(di, 0, a) * st->outer, after = st->factor * product(di, a + 1, ri);
  int64_t before_out = product(dout, 0, j), after_out = product(dout, j + 1, ro);
  if (!before_out || !after_out || before % before_out || after % after_out) return false;
  row_state want = {axis, before / before_out, after / after_out, 0};
  return expect(r, out_v, want);
}

/* MatMul: rows on A's M axis, B's N axis or one broadcast (leading) axis
 * of either or both; never the shared K axis. */
static bool matmul_rule(rows_proof *r, const graph_node *node, const int32_t *outputs) {
  if (node->n_inputs != 2) return false;
  int32_t va = node->inputs[0], vb = node->inputs[1];
  const row_state *sa = &r->state[va], *sb = &r->state[vb];
  size_t ra, rb, ro;
  const int64_t *da, *db, *dout;
  if (!dims_in(r, va, false, &ra, &da) || !dims_in(r, vb, false, &rb, &db) ||
      !dims_in(r, outputs[0], false, &ro, &dout) || ra < 2 || rb < 2 || sa->differs ||
      sb->differs)
    return false;
  size_t shift_a = ro - ra, shift_b = ro - rb;
  if (sa->axis >= 0 && sb->axis >= 0) {
    if ((size_t)sa->axis >= ra - 2 || (size_t)sb->axis >= rb - 2 ||
        (size_t)sa->axis + shift_a != (size_t)sb->axis + shift_b || !same_layout(sa, sb))
      return false;
    return expect(r, outputs[0], at_axis(*sa, sa->axis + (int)shift_a));
  }
  bool in_a = sa->axis >= 0;
  const row_state *s = in_a ? sa : sb;
  size_t rank = in_a ? ra : rb, shift = in_a ? shift_a : shift_b;
  const int64_t *other_dims = in_a ? db : da;
  size_t other_rank = in_a ? rb : ra, other_shift = in_a ? shift_b : shift_a;
  size_t axis = (size_t)s->axis;
  if (in_a ? axis == rank - 1 : axis == rank - 2) return false;
  size_t out_axis = axis + shift;
  /* A broadcast axis: the other input must have extent 1 there. */
  if (axis < rank - 2 && out_axis >= other_shift && out_axis - other_shift < other_rank - 2 &&
      other_dims[out_axis - other_shift] != 1)
    return false;
  return expect(r, outputs[0], at_axis(*s, (int)out_axis));
}

static bool reduce_rule(rows_proof *r, const graph_node *node, const int32_t *outputs) {
  static const char *const reduces[] = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
                                        "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
                                        "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin",
                                        NULL};
  const row_state *in0 = &r->state[node->inputs[0]];
  size_t ri;
  const int64_t *di;
  if (!op_is(node, reduces) || !dims_in(r, node->inputs[0], false, &ri, &di)) return false;
  int64_t axes[STRAND_MAX_RANK];
  size_t n_axes = 0;
  if (node->op_type[0] == 'A') {
    axes[0] = attr_int(node, "axis", 0);
    n_axes = 1;
  } else if (node->n_inputs > 1 && node->inputs[1] >= 0) {
    if (!same(r, node, 1) || !const_ints(r, node->inputs[1], axes, STRAND_MAX_RANK, &n_axes))
      return false;
  } else {
    const onnx_attr *a = graph_node_attr(node, "axes");
    if (a) {
      if (a->count > STRAND_MAX_RANK) return false;
      memcpy(axes, a->ints, a->count * sizeof(int64_t));
      n_axes = a->count;
    }
  }
  if (n_axes == 0) return false; /* every axis (or none, with noop_with_empty_axes) */
  int before = 0;
  for (size_t i = 0; i < n_axes; i++) {
    int axis = normal_axis(axes[i], ri);
    if (axis < 0 || axis == in0->axis) return false;
    if (axis < in0->axis) before++;
  }
  return expect_all(r, node, outputs,
                    at_axis(*in0, attr_int(node, "keepdims", 1) ? in0->axis : in0->axis - before));
}

static bool slice_rule(rows_proof *r, const graph_node *node, const int32_t *outputs) {
  /* Constant starts, ends, axes and steps; on the rows' axis the slice must
   * keep every entry, forward. */
  const row_state *in0 = &r->state[node->inputs[0]];
  size_t ri, ro;
  const int64_t *di, *dout;
  int64_t axes[STRAND_MAX_RANK], steps[STRAND_MAX_RANK];
  size_t n_axes = 0, n_steps = 0;
  if (!all_same_from(r, node, 1) || node->n_inputs < 3 ||
      !dims_in(r, node->inputs[0], false, &ri, &di) || !dims_in(r, outputs[0], false, &ro, &dout))
    return false;
  if (node->n_inputs > 3 && node->inputs[3] >= 0) {
    if (!const_ints(r, node->inputs[3], axes, STRAND_MAX_RANK, &n_axes)) return false;
  } else {
    int64_t starts[STRAND_MAX_RANK];
    if (!const_ints(r, node->inputs[1], starts, STRAND_MAX_RANK, &n_axes)) return false;
    for (size_t i = 0; i < n_axes; i++) axes[i] = (int64_t)i;
  }
  if (node->n_inputs > 4 && node->inputs[4] >= 0 &&
      (!const_ints(r, node->inputs[4], steps, STRAND_MAX_RANK, &n_steps) || n_steps != n_axes))
    return false;
  for (size_t i = 0; i < n_axes; i++)
    if (normal_axis(axes[i], ri) == in0->axis &&
        ((n_steps && steps[i] != 1) || ro != ri || dout[in0->axis] != di[in0->axis]))
      return false;
  return expect_all(r, node, outputs, *in0);
}

static bool gather_rule(rows_proof *r, const graph_node *node, const int32_t *outputs) {
  size_t rd, rx;
  const int64_t *dd, *dx;
  if (node->n_inputs != 2 || !dims_in(r, node->inputs[0], false, &rd, &dd) ||
      !dims_in(r, node->inputs[1], false, &rx, &dx))
    return false;
  int axis = normal_axis(attr_int(node, "axis", 0), rd);
  const row_state *sd = &r->state[node->inputs[0]], *sx = &r->state[node->inputs[1]];
  if (axis < 0) return false;
  if (sd->axis >= 0 && same(r, node, 1)) {
    if (sd->axis == axis) return false;
    return expect(r, outputs[0],
                  at_axis(*sd, sd->axis < axis ? sd->axis : sd->axis + (int)rx - 1));
  }
  if (sx->axis >= 0 && same(r, node, 0)) return expect(r, outputs[0], at_axis(*sx, axis + sx->axis));
  return false;
}

/* LSTM, GRU, RNN: X [seq, batch, in] (layout 0) or [batch, seq, in];
 * sequence_lens [batch]; initial states [dirs, batch, hidden] or [batch,
 * dirs, hidden]; the batch plain rows; weights the same in both runs. */
static bool recurrent_rule(rows_proof *r, const graph_node *node, const int32_t *outputs) {
  int layout = (int)attr_int(node, "layout", 0);
  int x_axis = layout ? 0 : 1, state_axis = layout ? 0 : 1, y_axis = layout ? 0 : 2;
  const row_state plain = {0, 1, 1, 0};
  const row_state *x = &r->state[node->inputs[0]];
  if (x->axis != x_axis || !same_layout(x, &plain) || !same(r, node, 1) || !same(r, node, 2) ||
      !same(r, node, 3))
    return false;
  bool lstm = strcmp(node->op_type, "LSTM") == 0;
  for (size_t i = 4; i < node->n_inputs && i <= (lstm ? 6u : 5u); i++) {
    if (node->inputs[i] < 0) continue;
    const row_state *st = &r->state[node->inputs[i]];
    if (st->axis != (i == 4 ? 0 : state_axis) || !same_layout(st, &plain)) return false;
  }
  if (lstm && !same(r, node, 7)) return false;
  for (size_t i = 0; i < node->n_outputs; i++)
    if (!expect(r, outputs[i], at_axis(plain, i == 0 ? y_axis : state_axis))) return false;
  return true;
}

/* The rule of one node with at least one input holding rows; records the
 * states of its outputs. */
static bool rows_rule(rows_proof *r, const graph_node *node, const int32_t *outputs) {
  const row_state *in0 = &r->state[node->inputs[0]];
  const char *op = node->op_type;
  size_t out_rank;
  const int64_t *od;
  if (outputs[0] < 0 || !dims_in(r, outputs[0], false, &out_rank, &od)) return false;

  static const char *const elementwise[] = {
      "Abs", "Acos", "Acosh", "Add", "And", "Asin", "Asinh", "Atan", "Atanh", "BitShift", "Cast",
      "CastLike", "Ceil", "Celu", "Clip", "Cos", "Cosh", "Div", "Elu", "Equal", "Erf", "Exp",
      "Floor", "Gelu", "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "IsInf", "IsNaN",
      "LeakyRelu", "Less", "LessOrEqual", "Log", "Max", "Mean", "Min", "Mish", "Mod", "Mul",
      "Neg", "Not", "Or", "Pow", "PRelu", "Reciprocal", "Relu", "Round", "Selu", "Sigmoid",
      "Sign", "Sin", "Sinh", "Softplus", "Softsign", "Sqrt", "Sub", "Sum", "Tan", "Tanh",
      "ThresholdedRelu", "Where", "Xor", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot",
      NULL};
  if (op_is(node, elementwise)) return broadcast_rule(r, node, outputs, 0);
  if (strcmp(op, "Expand") == 0) return broadcast_rule(r, node, outputs, 1u << 1);

  /* Ops that treat each entry of axis 0 on its own. */
  static const char *const per_item[] = {
      "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool",
      "GlobalMaxPool", "GlobalLpPool", "BatchNormalization", "InstanceNormalization", "LRN",
      "DepthToSpace", "SpaceToDepth", NULL};
  if (op_is(node, per_item)) {
    if (in0->axis != 0 || !all_same_from(r, node, 1)) return false;
    if (strcmp(op, "BatchNormalization") == 0 && attr_int(node, "training_mode", 0)) return false;
    /* MaxPool's indices count across the whole tensor, items included. */
    if (strcmp(op, "MaxPool") == 0 && node->n_outputs > 1 && computed_in_part(r, outputs[1]))
      return false;
    return expect_all(r, node, outputs, *in0);
  }

  static const char *const same_order[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze",
                                           "Identity", "Dropout", NULL};
  if (op_is(node, same_order)) {
    if (in0->axis < 0) return false;
    if (strcmp(op, "Dropout") == 0 && (node->n_outputs > 1 || !same(r, node, 1) || !same(r, node, 2)))
      return false;
    return reshape_rule(r, node->inputs[0], outputs[0]);
  }

  if (strcmp(op, "Transpose") == 0) {
    if (in0->axis < 0) return false;
    const onnx_attr *perm = graph_node_attr(node, "perm");
    size_t j = perm ? 0 : out_rank - 1 - (size_t)in0->axis;
    if (perm) {
      while (j < perm->count && perm->ints[j] != in0->axis) j++;
      if (j == perm->count) return false;
    }
    return expect(r, outputs[0], at_axis(*in0, (int)j));
  }

  if (strcmp(op, "MatMul") == 0) return matmul_rule(r, node, outputs);

  if (strcmp(op, "Gemm") == 0) {
    /* Rows of A (as transA lays it out); B and C the same in both runs, C
     * with one row. */
    int a_rows = attr_int(node, "transA", 0) ? 1 : 0;
    if (in0->axis != a_rows || !same(r, node, 1) || !same(r, node, 2)) return false;
    if (node->n_inputs > 2 && node->inputs[2] >= 0) {
      size_t rc;
      const int64_t *dc;
      if (!dims_in(r, node->inputs[2], false, &rc, &dc) || (rc == 2 && dc[0] != 1)) return false;
    }
    return expect(r, outputs[0], at_axis(*in0, 0));
  }

  if (strcmp(op, "Softmax") == 0 || strcmp(op, "LogSoftmax") == 0 || strcmp(op, "Hardmax") == 0) {
    int axis = normal_axis(attr_int(node, "axis", node->opset >= 13 ? -1 : 1), out_rank);
    if (axis < 0 || in0->axis < 0) return false;
    bool ok = node->opset >= 13 ? in0->axis != axis : in0->axis < axis;
    return ok && expect(r, outputs[0], *in0);
  }

  if (strcmp(op, "LayerNormalization") == 0) {
    int axis = normal_axis(attr_int(node, "axis", -1), out_rank);
    if (axis < 0 || in0->axis < 0 || in0->axis >= axis || !all_same_from(r, node, 1)) return false;
    return expect_all(r, node, outputs, *in0);
  }

  if (strncmp(op, "Reduce", 6) == 0 || strcmp(op, "ArgMax") == 0 || strcmp(op, "ArgMin") == 0)
    return in0->axis >= 0 && reduce_rule(r, node, outputs);

  if (strcmp(op, "Concat") == 0 || strcmp(op, "Split") == 0) {
    if (in0->axis < 0) return false;
    int axis = normal_axis(attr_int(node, "axis", 0), out_rank);
    if (axis < 0 || axis == in0->axis) return false;
    if (op[0] == 'C') {
      for (size_t i = 0; i < node->n_inputs; i++) {
        const row_state *st = node->inputs[i] >= 0 ? &r->state[node->inputs[i]] : NULL;
        if (!st || st->axis != in0->axis || !same_layout(st, in0)) return false;
      }
    } else if (!all_same_from(r, node, 1)) {
      return false;
    }
    return expect_all(r, node, outputs, *in0);
  }

  if (strcmp(op, "Slice") == 0) return in0->axis >= 0 && slice_rule(r, node, outputs);
  if (strcmp(op, "Gather") == 0) return gather_rule(r, node, outputs);
  if (strcmp(op, "LSTM") == 0 || strcmp(op, "GRU") == 0 || strcmp(op, "RNN") == 0)
    return recurrent_rule(r, node, outputs);
  return false;
}

/* ---- the proof ---------------------------------------------------------------- */

/* The states of a node's outputs when no input holds rows. */
static bool rowless_rule(rows_proof *r, const graph_node *node, const int32_t *outputs) {
  bool shape = strcmp(node->op_type, "Shape") == 0, size = strcmp(node->op_type, "Size") == 0;
  for (size_t i = 0; i < node->n_outputs; i++) {
    int32_t v = outputs[i];
    if (!computed_in_part(r, v)) continue;
    int axis;
    int64_t per;
    if (!observe(r, v, &axis, &per)) return false;
    row_state *o = &r->state[v];
    *o = (row_state){-1, 0, 0, 0};
    if (axis >= 0) {
      /* Rows made from dims: one value everywhere (ConstantOfShape), or
       * one broadcast (Expand of a value the same in both runs). */
      bool filled = strcmp(node->op_type, "ConstantOfShape") == 0 ||
                    (strcmp(node->op_type, "Expand") == 0 && same(r, node, 0));
      if (!filled) return false;
      *o = (row_state){axis, 1, per, 0};
    } else if (shape) {
      /* Its elements are the input's dims: those holding rows differ. */
      size_t rw, rp;
      const int64_t *dw, *dp;
      int32_t in = node->inputs[0];
      if (!dims_in(r, in, true, &rw, &dw) || !dims_in(r, in, false, &rp, &dp) || rw != rp)
        return false;
      int64_t n = (int64_t)rp, start = attr_int(node, "start", 0), end = attr_int(node, "end", n);
      start = start < 0 ? start + n : start;
      end = end < 0 ? end + n : end;
      start = start < 0 ? 0 : start > n ? n : start;
      end = end < 0 ? 0 : end > n ? n : end;
      for (int64_t d = start; d < end; d++)
        if (dw[d] != dp[d]) o->differs |= d - start < 32 ? 1u << (d - start) : DIFFERS_ALL;
    } else if (size) {
      o->differs = r->state[node->inputs[0]].axis >= 0 ? 1u : 0u;
    } else if (strcmp(node->op_type, "ConstantOfShape") != 0) {
      o->differs = differs_out(r, node, v);
    }
  }
  return true;
}

/* The rule of node k; records the states of its outputs. */
static bool node_rule(rows_proof *r, size_t k) {
  const graph_node *node = &r->g->nodes[k];
  const int32_t *outputs = r->s->nodes[k].outputs;
  bool wanted = false;
  for (size_t i = 0; i < node->n_outputs; i++) wanted |= computed_in_part(r, outputs[i]);
  if (!wanted) return true; /* the plans never run it */
  if (node->domain[0] || node->n_subgraphs) return false;
  bool rows_in = false;
  for (size_t i = 0; i < node->n_inputs; i++)
    if (node->inputs[i] >= 0 && r->state[node->inputs[i]].axis >= 0) rows_in = true;
  bool shape = strcmp(node->op_type, "Shape") == 0 || strcmp(node->op_type, "Size") == 0;
  return rows_in && !shape ? rows_rule(r, node, outputs) : rowless_rule(r, node, outputs);
}

rows_verdict session_rows_independent(const strand_session *s, const plan *whole,
                                      const plan *part, int64_t rows_whole, int64_t rows_part,
                                      const int32_t *slot_value, size_t n_slots) {
  const graph *g = s->graph;
  if (rows_part < 1 || rows_whole <= rows_part) return ROWS_MIXED;
  void *mem;
  if (strand__alloc(g->n_values * sizeof(row_state), STRAND_MEMORY_SCRATCH, &mem))
    return ROWS_UNPROVEN;
  rows_proof r = {s, g, whole, part, rows_whole, rows_part, mem};
  for (size_t v = 0; v < g->n_values; v++) r.state[v] = (row_state){-1, 0, 0, 0};
  const row_state plain = {0, 1, 1, 0};
  bool ok = true;
  for (size_t j = 0; j < g->n_inputs && ok; j++) {
    int axis;
    int64_t per;
    ok = observe(&r, g->inputs[j], &axis, &per) && axis == 0 && per == 1;
    r.state[g->inputs[j]] = plain;
  }
  for (size_t k = 0; k < g->n_nodes && ok; k++) {
    if (g->nodes[k].folded || !s->nodes[k].kernel) continue;
    ok = node_rule(&r, k);
    if (!ok && strand__log_enabled(STRAND_LOG_INFO))
      strand__log(STRAND_LOG_INFO, "session runs batches of %lld rows whole: node \"%s\" (%s) "
                  "may mix rows", (long long)rows_whole, g->nodes[k].name, g->nodes[k].op_type);
  }
  for (size_t i = 0; i < n_slots && ok; i++) {
    int32_t v = slot_value[i];
    const row_state *st = &r.state[v];
    ok = !(g->values[v].flags & GRAPH_VALUE_CONSTANT) && g->values[v].producer >= 0 &&
         st->axis == 0 && same_layout(st, &plain);
    if (!ok && strand__log_enabled(STRAND_LOG_INFO))
      strand__log(STRAND_LOG_INFO, "session runs batches of %lld rows whole: output \"%s\" "
                  "does not keep the rows on its first axis", (long long)rows_whole,
                  g->values[v].name);
  }
  strand__free(mem, g->n_values * sizeof(row_state), STRAND_MEMORY_SCRATCH);
  return ok ? ROWS_INDEPENDENT : ROWS_MIXED;
}
