package dev.strand.spark

import org.apache.spark.SparkException
import org.apache.spark.ml.linalg.{DenseVector, Vector => MLVector}
import org.apache.spark.sql.Row

/**
 * Element types that cross between DataFrame columns and model tensors. A
 * batch of one input or output is held as one flat primitive array in row
 * order (batch x width), the layout of a dense row-major tensor.
 */
sealed abstract class Kind(val name: String) extends Serializable {
  def alloc(n: Int): AnyRef
}
object Kind {
  case object F32 extends Kind("float32") { def alloc(n: Int): AnyRef = new Array[Float](n) }
  case object F64 extends Kind("float64") { def alloc(n: Int): AnyRef = new Array[Double](n) }
  case object I32 extends Kind("int32") { def alloc(n: Int): AnyRef = new Array[Int](n) }
  case object I64 extends Kind("int64") { def alloc(n: Int): AnyRef = new Array[Long](n) }
}

/** What a column holds: an ML vector, or an array of one element type. */
sealed abstract class Source(val name: String) extends Serializable
object Source {
  case object Vec extends Source("vector")
  case object ArrF32 extends Source("array<float>")
  case object ArrF64 extends Source("array<double>")
  case object ArrI32 extends Source("array<int>")
  case object ArrI64 extends Source("array<bigint>")
}

/**
 * One DataFrame column feeding one model input. `tail` is the input's shape
 * after the batch dimension; `width` its element count per row, or -1 when a
 * dimension is symbolic (then the input has rank 2 and each batch takes its
 * width from its first row).
 */
final case class InputBinding(column: String, columnIndex: Int, source: Source, input: String,
                              kind: Kind, tail: Array[Long], width: Int)

/** One model output written to one new column as an array. */
final case class OutputBinding(output: String, column: String, kind: Kind)

/**
 * Runs one batch: `inputs(i)` holds `batch` rows of input i (a primitive
 * array of its kind) with per-row shape `tails(i)`; returns one flat array
 * per output, `batch` rows of equal width, in the bindings' order.
 */
trait BatchEngine {
  def run(batch: Int, inputs: Array[AnyRef], tails: Array[Array[Long]]): Array[AnyRef]
}

/** A batch that failed inside the engine; the scorer names the row. */
final class BatchFailure(message: String, cause: Throwable) extends RuntimeException(message, cause)

/**
 * Scores one partition in batches of `batchSize` rows: packs the input
 * columns, runs the engine once per batch, and appends one array column per
 * output. Any failure is a SparkException naming the partition and the row's
 * index in it (counted from 0); a failing batch is rerun row by row to find
 * the row, so that the message names it and the engine's own message.
 */
final class PartitionScorer(partition: Int, inputs: Array[InputBinding], outputs: Array[OutputBinding],
                            batchSize: Int, engine: BatchEngine, engineMessage: Throwable => String)
    extends Iterator[Row] {
  private var source: Iterator[Row] = Iterator.empty
  private val rows = new Array[Row](batchSize)
  private var filled = 0 // rows in the current batch
  private var cursor = 0 // the next row of the batch to emit
  private var results: Array[AnyRef] = Array.empty
  private var widths: Array[Int] = Array.empty
  private var rowsBefore = 0L // rows of this partition in earlier batches

  def over(it: Iterator[Row]): this.type = { source = it; this }

  private def fail(row: Long, what: String, cause: Throwable = null): Nothing =
    throw new SparkException(s"StrandModel: row $row of partition $partition: $what", cause)

  override def hasNext: Boolean = cursor < filled || (fill() > 0)

  override def next(): Row = {
    if (!hasNext) throw new NoSuchElementException("no more rows")
    val row = rows(cursor)
    val width = row.length
    val values = new Array[Any](width + outputs.length)
    var c = 0
    while (c < width) { values(c) = row.get(c); c += 1 }
    var o = 0
    while (o < outputs.length) {
      values(width + o) = PartitionScorer.slice(outputs(o).kind, results(o), cursor, widths(o))
      o += 1
    }
    rows(cursor) = null
    cursor += 1
    Row.fromSeq(scala.collection.immutable.ArraySeq.unsafeWrapArray(values))
  }

  /** Reads and scores the next batch; returns its row count (0 at the end). */
  private def fill(): Int = {
    rowsBefore += filled
    filled = 0
    cursor = 0
    while (filled < batchSize && source.hasNext) {
      rows(filled) = source.next()
      filled += 1
    }
    if (filled > 0) score()
    filled
  }

  private def score(): Unit = {
    val n = filled
    val packed = new Array[AnyRef](inputs.length)
    val tails = new Array[Array[Long]](inputs.length)
    var i = 0
    while (i < inputs.length) {
      val b = inputs(i)
      val width = if (b.width >= 0) b.width else columnWidth(0, b)
      tails(i) = if (b.width >= 0) b.tail else Array(width.toLong)
      packed(i) = b.kind.alloc(n * width)
      var r = 0
      while (r < n) { pack(r, b, width, packed(i)); r += 1 }
      i += 1
    }
    results = try engine.run(n, packed, tails)
    catch {
      case e: Throwable if !fatal(e) => locate(n, packed, tails, e)
    }
    widths = new Array[Int](outputs.length)
    var o = 0
    while (o < outputs.length) {
      val elems = java.lang.reflect.Array.getLength(results(o))
      if (elems % n != 0) {
        throw new SparkException(s"StrandModel: rows $rowsBefore..${rowsBefore + n - 1} of partition " +
          s"$partition: output '${outputs(o).output}' has $elems elements for a batch of $n rows; " +
          "its first dimension must be the batch")
      }
      widths(o) = elems / n
      o += 1
    }
  }

  private def fatal(e: Throwable): Boolean = e.isInstanceOf[VirtualMachineError] || e.isInstanceOf[InterruptedException]

  /** The batch failed: find its first row that fails alone and report that. */
  private def locate(n: Int, packed: Array[AnyRef], tails: Array[Array[Long]], failure: Throwable): Nothing = {
    if (n > 1) {
      var r = 0
      while (r < n) {
        val one = new Array[AnyRef](inputs.length)
        var i = 0
        while (i < inputs.length) {
          val w = java.lang.reflect.Array.getLength(packed(i)) / n
          one(i) = inputs(i).kind.alloc(w)
          System.arraycopy(packed(i), r * w, one(i), 0, w)
          i += 1
        }
        try engine.run(1, one, tails)
        catch {
          case e: Throwable if !fatal(e) => fail(rowsBefore + r, engineMessage(e), e)
        }
        r += 1
      }
      throw new SparkException(s"StrandModel: rows $rowsBefore..${rowsBefore + n - 1} of partition " +
        s"$partition (a batch of $n; each row alone succeeds): ${engineMessage(failure)}", failure)
    }
    fail(rowsBefore, engineMessage(failure), failure)
  }

  private def value(r: Int, b: InputBinding): Any = {
    val v = rows(r).get(b.columnIndex)
    if (v == null) fail(rowsBefore + r, s"column '${b.column}' is null")
    v
  }

  private def columnWidth(r: Int, b: InputBinding): Int = value(r, b) match {
    case v: MLVector => v.size
    case s: scala.collection.Seq[_] => s.length
    case other => fail(rowsBefore + r, s"column '${b.column}' holds ${other.getClass.getName}, not ${b.source.name}")
  }

  /** Copies row r's column into rows r's slot of `dst`, converting to the input's kind. */
  private def pack(r: Int, b: InputBinding, width: Int, dst: AnyRef): Unit = {
    val got = columnWidth(r, b)
    if (got != width) {
      val expected = if (b.width >= 0) s"input '${b.input}' takes $width per row (shape [batch, ${b.tail.mkString(", ")}])"
                     else s"this batch's first row has $width"
      fail(rowsBefore + r, s"column '${b.column}' holds $got values; $expected")
    }
    val base = r * width
    value(r, b) match {
      case v: DenseVector => PartitionScorer.fromDoubles(v.values, dst, base, width)
      case v: MLVector => PartitionScorer.fromDoubles(v.toArray, dst, base, width)
      case s: scala.collection.Seq[_] =>
        val it = s.iterator
        var j = base
        try {
          dst match {
            case d: Array[Float] => while (it.hasNext) { d(j) = PartitionScorer.toFloat(it.next()); j += 1 }
            case d: Array[Double] => while (it.hasNext) { d(j) = PartitionScorer.toDouble(it.next()); j += 1 }
            case d: Array[Int] => while (it.hasNext) { d(j) = PartitionScorer.toInt(it.next()); j += 1 }
            case d: Array[Long] => while (it.hasNext) { d(j) = PartitionScorer.toLong(it.next()); j += 1 }
            case _ => throw new IllegalStateException("unknown batch array")
          }
        } catch {
          case _: PartitionScorer.NullElement.type =>
            fail(rowsBefore + r, s"column '${b.column}' holds a null at element ${j - base}")
          case _: ArithmeticException =>
            fail(rowsBefore + r, s"column '${b.column}' element ${j - base} does not fit int32")
        }
      case _ => throw new IllegalStateException("checked by columnWidth")
    }
  }
}

object PartitionScorer {
  /** A null array element (thrown without a stack: the caller reports the row). */
  private object NullElement extends RuntimeException(null, null, false, false)

  private def toFloat(x: Any): Float = x match {
    case f: Float => f
    case d: Double => d.toFloat
    case _ => throw NullElement
  }
  private def toDouble(x: Any): Double = x match {
    case f: Float => f.toDouble
    case d: Double => d
    case _ => throw NullElement
  }
  private def toInt(x: Any): Int = x match {
    case i: Int => i
    case l: Long => Math.toIntExact(l)
    case _ => throw NullElement
  }
  private def toLong(x: Any): Long = x match {
    case i: Int => i.toLong
    case l: Long => l
    case _ => throw NullElement
  }

  private def fromDoubles(src: Array[Double], dst: AnyRef, base: Int, width: Int): Unit = dst match {
    case d: Array[Float] => var j = 0; while (j < width) { d(base + j) = src(j).toFloat; j += 1 }
    case d: Array[Double] => System.arraycopy(src, 0, d, base, width)
    case _ => throw new IllegalStateException("vectors feed float inputs only")
  }

  /** Row r of a flat batch array, as the value of an array column. */
  private def slice(kind: Kind, flat: AnyRef, r: Int, width: Int): Any = {
    import scala.collection.immutable.ArraySeq
    kind match {
      case Kind.F32 => ArraySeq.unsafeWrapArray(java.util.Arrays.copyOfRange(flat.asInstanceOf[Array[Float]], r * width, (r + 1) * width))
      case Kind.F64 => ArraySeq.unsafeWrapArray(java.util.Arrays.copyOfRange(flat.asInstanceOf[Array[Double]], r * width, (r + 1) * width))
      case Kind.I32 => ArraySeq.unsafeWrapArray(java.util.Arrays.copyOfRange(flat.asInstanceOf[Array[Int]], r * width, (r + 1) * width))
      case Kind.I64 => ArraySeq.unsafeWrapArray(java.util.Arrays.copyOfRange(flat.asInstanceOf[Array[Long]], r * width, (r + 1) * width))
    }
  }
}
