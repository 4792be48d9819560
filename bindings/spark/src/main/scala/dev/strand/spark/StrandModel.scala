package dev.strand.spark

import java.io.File
import java.nio.file.Path

import scala.jdk.CollectionConverters._

import dev.strand.{DType, Model, Session, StrandException, Tensor, ValueInfo}
import org.apache.spark.{SparkException, SparkFiles, TaskContext}
import org.apache.spark.ml.Transformer
import org.apache.spark.ml.linalg.SQLDataTypes.VectorType
import org.apache.spark.ml.param.{IntParam, Param, ParamMap, ParamValidators, StringArrayParam}
import org.apache.spark.ml.util.{DefaultParamsReadable, DefaultParamsWritable, Identifiable}
import org.apache.spark.sql.{DataFrame, Dataset, Encoders, Row}
import org.apache.spark.sql.types._

/**
 * A Spark ML stage that scores a DataFrame with an ONNX model through strand.
 *
 * Each input column (array<float>, array<double>, array<int>, array<bigint>
 * or an ML vector, one row per batch entry) feeds one model input; each
 * model output becomes an array column. Rows are scored in batches of
 * `batchSize` inside `mapPartitions`. Every executor JVM loads the model
 * once and shares one strand session among its task threads
 * ([[SessionCache]]).
 *
 * {{{
 * spark.sparkContext.addFile("/models/mlp.onnx")      // or a path every node reads
 * val scored = new StrandModel().setModelPath("mlp.onnx")
 *   .setInputCols(Array("features")).setOutputCols(Array("scores"))
 *   .transform(df)
 * }}}
 *
 * Errors are SparkExceptions: a model that cannot load or a column of the
 * wrong type names the column, input and strand's message; a row of the
 * wrong size or a failing row names its partition and its index there.
 */
class StrandModel(override val uid: String) extends Transformer with DefaultParamsWritable {

  def this() = this(Identifiable.randomUID("strand"))

  final val modelPath: Param[String] = new Param[String](this, "modelPath",
    "the ONNX model: a path every node can read, or the name of a file shipped with " +
      "SparkContext.addFile / spark-submit --files")

  final val inputCols: StringArrayParam = new StringArrayParam(this, "inputCols",
    "the columns feeding the model's inputs, one per input")

  final val modelInputs: StringArrayParam = new StringArrayParam(this, "modelInputs",
    "the model inputs that inputCols feed, in the same order (default: the model's inputs in order)")

  final val outputCols: StringArrayParam = new StringArrayParam(this, "outputCols",
    "the new columns, one per model output (default: the outputs' names)")

  final val modelOutputs: StringArrayParam = new StringArrayParam(this, "modelOutputs",
    "the model outputs written to outputCols, in the same order (default: every output in order)")

  final val batchSize: IntParam = new IntParam(this, "batchSize",
    "rows per strand run", ParamValidators.gt(0))

  final val intraOpThreads: IntParam = new IntParam(this, "intraOpThreads",
    "threads one run may keep busy, the task's own included; 0 means strand's CPU budget " +
      "(1 by default: Spark's task threads already fill the cores)", ParamValidators.gtEq(0))

  setDefault(modelInputs -> Array.empty[String], outputCols -> Array.empty[String],
    modelOutputs -> Array.empty[String], batchSize -> 1024, intraOpThreads -> 1)

  def setModelPath(value: String): this.type = set(modelPath, value)
  def setInputCols(value: Array[String]): this.type = set(inputCols, value)
  def setModelInputs(value: Array[String]): this.type = set(modelInputs, value)
  def setOutputCols(value: Array[String]): this.type = set(outputCols, value)
  def setModelOutputs(value: Array[String]): this.type = set(modelOutputs, value)
  def setBatchSize(value: Int): this.type = set(batchSize, value)
  def setIntraOpThreads(value: Int): this.type = set(intraOpThreads, value)

  def getModelPath: String = $(modelPath)
  def getInputCols: Array[String] = $(inputCols)
  def getModelInputs: Array[String] = $(modelInputs)
  def getOutputCols: Array[String] = $(outputCols)
  def getModelOutputs: Array[String] = $(modelOutputs)
  def getBatchSize: Int = $(batchSize)
  def getIntraOpThreads: Int = $(intraOpThreads)

  override def copy(extra: ParamMap): StrandModel = defaultCopy(extra)

  override def transformSchema(schema: StructType): StructType = {
    val (_, outs) = bind(schema)
    StructType(schema.fields ++ outs.map(o => StructField(o.column, StrandModel.arrayOf(o.kind), nullable = false)))
  }

  override def transform(dataset: Dataset[_]): DataFrame = {
    val df = dataset.toDF()
    val (ins, outs) = bind(df.schema)
    val outSchema = StructType(df.schema.fields ++
      outs.map(o => StructField(o.column, StrandModel.arrayOf(o.kind), nullable = false)))
    val path = $(modelPath)
    val threads = $(intraOpThreads)
    val batch = $(batchSize)
    val inputNames = ins.map(_.input)
    val outputNames = outs.map(_.output)
    df.mapPartitions { rows: Iterator[Row] =>
      val partition = Option(TaskContext.get()).map(_.partitionId()).getOrElse(-1)
      if (!rows.hasNext) Iterator.empty
      else {
        val key = SessionKey(StrandModel.resolve(path), threads)
        val lease = try SessionCache.acquire(key)
        catch {
          case e: StrandException =>
            throw new SparkException(s"StrandModel: partition $partition: cannot load model " +
              s"'${key.path}': ${e.getMessage}", e)
        }
        // The lease ends with the task, even when its rows are not all read.
        val ctx = TaskContext.get()
        if (ctx != null) ctx.addTaskCompletionListener[Unit](_ => lease.close())
        val engine = new StrandEngine(lease.session, inputNames, outputNames, ins.map(_.kind))
        val scorer = new PartitionScorer(partition, ins, outs, batch, engine, StrandModel.message)
        val it = scorer.over(rows)
        if (ctx != null) it
        else it ++ { lease.close(); Iterator.empty } // outside a task (never in Spark)
      }
    }(Encoders.row(outSchema))
  }

  /** Checks the columns against the model (loaded on the driver for its signature). */
  private def bind(schema: StructType): (Array[InputBinding], Array[OutputBinding]) = {
    if (!isDefined(modelPath)) throw new SparkException("StrandModel: modelPath is not set")
    if (!isDefined(inputCols)) throw new SparkException("StrandModel: inputCols is not set")
    val path = StrandModel.resolve($(modelPath))
    val model = try Model.load(Path.of(path))
    catch {
      case e: StrandException =>
        throw new SparkException(s"StrandModel: cannot load model '$path': ${e.getMessage}", e)
    }
    try {
      val allIns = model.inputs().asScala.toIndexedSeq
      val allOuts = model.outputs().asScala.toIndexedSeq
      val cols = $(inputCols)
      val names = if ($(modelInputs).nonEmpty) $(modelInputs) else allIns.map(_.name).toArray
      if (names.length != cols.length) {
        throw new SparkException(s"StrandModel: ${cols.length} input columns (${cols.mkString(", ")}) for " +
          s"${names.length} model inputs (${names.mkString(", ")})")
      }
      val ins = cols.zip(names).map { case (col, name) =>
        val info = allIns.find(_.name == name).getOrElse(throw new SparkException(
          s"StrandModel: the model has no input '$name' (its inputs: ${allIns.map(_.name).mkString(", ")})"))
        inputBinding(schema, col, info)
      }
      val outNames = if ($(modelOutputs).nonEmpty) $(modelOutputs) else allOuts.map(_.name).toArray
      val outCols = if ($(outputCols).nonEmpty) $(outputCols) else outNames
      if (outCols.length != outNames.length) {
        throw new SparkException(s"StrandModel: ${outCols.length} output columns (${outCols.mkString(", ")}) " +
          s"for ${outNames.length} model outputs (${outNames.mkString(", ")})")
      }
      val outs = outCols.zip(outNames).map { case (col, name) =>
        val info = allOuts.find(_.name == name).getOrElse(throw new SparkException(
          s"StrandModel: the model has no output '$name' (its outputs: ${allOuts.map(_.name).mkString(", ")})"))
        if (schema.fieldNames.contains(col)) {
          throw new SparkException(s"StrandModel: output column '$col' already exists")
        }
        val kind = StrandModel.kindOf(info.dtype).getOrElse(throw new SparkException(
          s"StrandModel: output '$name' is ${info.dtype}; supported: float32, float64, int32, int64"))
        OutputBinding(name, col, kind)
      }
      (ins, outs)
    } finally model.close()
  }

  private def inputBinding(schema: StructType, col: String, info: ValueInfo): InputBinding = {
    val index = schema.fieldNames.indexOf(col)
    if (index < 0) {
      throw new SparkException(s"StrandModel: no column '$col' (columns: ${schema.fieldNames.mkString(", ")})")
    }
    val kind = StrandModel.kindOf(info.dtype).getOrElse(throw new SparkException(
      s"StrandModel: input '${info.name}' is ${info.dtype}; supported: float32, float64, int32, int64"))
    val dataType = schema(index).dataType
    val source = dataType match {
      case VectorType => Source.Vec
      case ArrayType(FloatType, _) => Source.ArrF32
      case ArrayType(DoubleType, _) => Source.ArrF64
      case ArrayType(IntegerType, _) => Source.ArrI32
      case ArrayType(LongType, _) => Source.ArrI64
      case other => throw new SparkException(s"StrandModel: column '$col' is ${other.simpleString}; " +
        s"input '${info.name}' (${info.dtype}) takes ${StrandModel.accepted(kind)}")
    }
    val floats = kind == Kind.F32 || kind == Kind.F64
    val sourceFloats = source == Source.Vec || source == Source.ArrF32 || source == Source.ArrF64
    if (floats != sourceFloats) {
      throw new SparkException(s"StrandModel: column '$col' is ${dataType.simpleString}; " +
        s"input '${info.name}' (${info.dtype}) takes ${StrandModel.accepted(kind)}")
    }
    if (!info.rankKnown || info.rank < 1) {
      throw new SparkException(s"StrandModel: input '${info.name}' has no batch dimension (shape " +
        s"${info.shape.mkString("[", ", ", "]")}); StrandModel feeds [batch, ...] inputs")
    }
    val tail = info.shape.drop(1)
    val width = if (tail.forall(_ >= 0)) {
      val w = tail.product
      if (w > Int.MaxValue) throw new SparkException(s"StrandModel: input '${info.name}' rows are too large")
      w.toInt
    } else if (tail.length == 1) -1
    else {
      throw new SparkException(s"StrandModel: input '${info.name}' has symbolic dimensions after the " +
        s"batch (shape ${info.shape.mkString("[", ", ", "]")}); only [batch, n] may leave n open")
    }
    InputBinding(col, index, source, info.name, kind, tail, width)
  }
}

object StrandModel extends DefaultParamsReadable[StrandModel] {

  override def load(path: String): StrandModel = super.load(path)

  /** The local file for a model path: the path itself when it exists, else a SparkFiles name. */
  def resolve(path: String): String = {
    val file = new File(path)
    if (file.exists()) file.getAbsolutePath
    else {
      val shipped = try Some(new File(SparkFiles.get(path))) catch { case _: Exception => None }
      shipped.filter(_.exists()).map(_.getAbsolutePath).getOrElse(path)
    }
  }

  private[spark] def kindOf(dtype: DType): Option[Kind] = dtype match {
    case DType.FLOAT32 => Some(Kind.F32)
    case DType.FLOAT64 => Some(Kind.F64)
    case DType.INT32 => Some(Kind.I32)
    case DType.INT64 => Some(Kind.I64)
    case _ => None
  }

  private[spark] def arrayOf(kind: Kind): DataType = kind match {
    case Kind.F32 => ArrayType(FloatType, containsNull = false)
    case Kind.F64 => ArrayType(DoubleType, containsNull = false)
    case Kind.I32 => ArrayType(IntegerType, containsNull = false)
    case Kind.I64 => ArrayType(LongType, containsNull = false)
  }

  private def accepted(kind: Kind): String =
    if (kind == Kind.F32 || kind == Kind.F64) "array<float>, array<double> or vector"
    else "array<int> or array<bigint>"

  /** strand's status and message for an engine failure. */
  private[spark] def message(e: Throwable): String = e match {
    case s: StrandException => s.getMessage
    case other => other.toString
  }
}

/** Runs batches on a shared strand session (any number of task threads at once). */
final class StrandEngine(session: Session, inputs: Array[String], outputs: Array[String], kinds: Array[Kind])
    extends BatchEngine {
  private val outputList = java.util.List.of(outputs: _*)

  override def run(batch: Int, packed: Array[AnyRef], tails: Array[Array[Long]]): Array[AnyRef] = {
    val tensors = new Array[Tensor](inputs.length)
    try {
      val feed = new java.util.HashMap[String, Tensor]
      var i = 0
      while (i < inputs.length) {
        tensors(i) = Tensor.of(StrandEngine.dtype(kinds(i)), packed(i), (batch.toLong +: tails(i)): _*)
        feed.put(inputs(i), tensors(i))
        i += 1
      }
      val result = session.run(feed, outputList)
      try {
        val out = new Array[AnyRef](outputs.length)
        var o = 0
        while (o < outputs.length) {
          val t = result.get(o)
          out(o) = t.dtype match {
            case DType.FLOAT32 => t.toFloatArray
            case DType.FLOAT64 => t.toDoubleArray
            case DType.INT32 => t.toIntArray
            case DType.INT64 => t.toLongArray
            case other => throw new IllegalStateException(s"output '${outputs(o)}' is $other")
          }
          o += 1
        }
        out
      } finally result.close()
    } finally tensors.foreach(t => if (t != null) t.close())
  }
}

object StrandEngine {
  def dtype(kind: Kind): DType = kind match {
    case Kind.F32 => DType.FLOAT32
    case Kind.F64 => DType.FLOAT64
    case Kind.I32 => DType.INT32
    case Kind.I64 => DType.INT64
  }
}
