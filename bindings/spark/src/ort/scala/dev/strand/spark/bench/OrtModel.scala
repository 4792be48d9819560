package dev.strand.spark.bench

import java.nio.FloatBuffer

import scala.jdk.CollectionConverters._

import ai.onnxruntime.{OnnxTensor, OrtEnvironment, OrtSession}
import dev.strand.spark.{BatchEngine, InputBinding, Kind, OutputBinding, PartitionScorer, Source}
import org.apache.spark.TaskContext
import org.apache.spark.ml.Transformer
import org.apache.spark.ml.param.ParamMap
import org.apache.spark.ml.util.Identifiable
import org.apache.spark.sql.{DataFrame, Dataset, Encoders, Row}
import org.apache.spark.sql.types.{ArrayType, FloatType, StructField, StructType}

/**
 * The benchmark's other side: the same harness as StrandModel (the same
 * PartitionScorer packing rows into batches and unpacking outputs, one
 * session per executor JVM shared by the task threads), with ONNX Runtime's
 * Java API running the batches. One float32 [batch, n] input, one float32
 * output. Built only with `mvn -Port`.
 */
class OrtModel(modelPath: String, inputCol: String, outputCol: String, batchSize: Int, threads: Int)
    extends Transformer {
  override val uid: String = Identifiable.randomUID("ort")

  override def copy(extra: ParamMap): OrtModel = new OrtModel(modelPath, inputCol, outputCol, batchSize, threads)

  override def transformSchema(schema: StructType): StructType =
    StructType(schema.fields :+ StructField(outputCol, ArrayType(FloatType, containsNull = false), nullable = false))

  override def transform(dataset: Dataset[_]): DataFrame = {
    val df = dataset.toDF()
    val outSchema = transformSchema(df.schema)
    val index = df.schema.fieldNames.indexOf(inputCol)
    val (path, col, batch, n) = (modelPath, inputCol, batchSize, threads)
    df.mapPartitions { rows: Iterator[Row] =>
      val session = OrtModel.session(path, n)
      val input = session.getInputNames.iterator.next
      val output = session.getOutputNames.iterator.next
      val width = session.getInputInfo.get(input).getInfo.asInstanceOf[ai.onnxruntime.TensorInfo].getShape.drop(1)
      val binding = InputBinding(col, index, Source.ArrF32, input, Kind.F32, width, width.product.toInt)
      val engine = new OrtEngine(session, input)
      val partition = Option(TaskContext.get()).map(_.partitionId()).getOrElse(-1)
      new PartitionScorer(partition, Array(binding), Array(OutputBinding(output, outputCol, Kind.F32)), batch,
        engine, _.toString).over(rows)
    }(Encoders.row(outSchema))
  }
}

object OrtModel {
  private val sessions = new java.util.concurrent.ConcurrentHashMap[(String, Int), OrtSession]

  /** One session per model and thread count in this JVM (ORT sessions take concurrent runs). */
  def session(path: String, threads: Int): OrtSession = sessions.computeIfAbsent((path, threads), _ => {
    val resolved = dev.strand.spark.StrandModel.resolve(path)
    val options = new OrtSession.SessionOptions()
    options.setIntraOpNumThreads(math.max(threads, 1))
    options.setInterOpNumThreads(1)
    OrtEnvironment.getEnvironment.createSession(resolved, options)
  })
}

final class OrtEngine(session: OrtSession, input: String) extends BatchEngine {
  private val env = OrtEnvironment.getEnvironment

  override def run(batch: Int, inputs: Array[AnyRef], tails: Array[Array[Long]]): Array[AnyRef] = {
    val data = inputs(0).asInstanceOf[Array[Float]]
    val tensor = OnnxTensor.createTensor(env, FloatBuffer.wrap(data), batch.toLong +: tails(0))
    try {
      val result = session.run(Map(input -> tensor).asJava)
      try {
        val out = result.get(0).asInstanceOf[OnnxTensor].getFloatBuffer
        val flat = new Array[Float](out.remaining)
        out.get(flat)
        Array[AnyRef](flat)
      } finally result.close()
    } finally tensor.close()
  }
}
