package dev.strand.spark.example

import dev.strand.spark.{BatchEngine, InputBinding, Kind, OutputBinding, PartitionScorer, Source}
import org.apache.spark.TaskContext
import org.apache.spark.ml.Transformer
import org.apache.spark.ml.param.ParamMap
import org.apache.spark.ml.util.Identifiable
import org.apache.spark.sql.{DataFrame, Dataset, Encoders, Row}
import org.apache.spark.sql.types.{ArrayType, FloatType, StructField, StructType}

/**
 * The benchmark harness with no model: the same DataFrame, batching, packing
 * and unpacking as StrandModel, with an engine that returns zeros of the
 * output's width. Its rows per second bound what any engine can reach here.
 */
class HarnessOnly(inputCol: String, outputCol: String, width: Int, outputWidth: Int, batchSize: Int)
    extends Transformer {
  override val uid: String = Identifiable.randomUID("harness")

  override def copy(extra: ParamMap): HarnessOnly = new HarnessOnly(inputCol, outputCol, width, outputWidth, batchSize)

  override def transformSchema(schema: StructType): StructType =
    StructType(schema.fields :+ StructField(outputCol, ArrayType(FloatType, containsNull = false), nullable = false))

  override def transform(dataset: Dataset[_]): DataFrame = {
    val df = dataset.toDF()
    val binding = InputBinding(inputCol, df.schema.fieldNames.indexOf(inputCol), Source.ArrF32, "input", Kind.F32,
      Array(width.toLong), width)
    val output = OutputBinding("output", outputCol, Kind.F32)
    val (outWidth, batch) = (outputWidth, batchSize)
    df.mapPartitions { rows: Iterator[Row] =>
      val engine = new BatchEngine {
        override def run(n: Int, inputs: Array[AnyRef], tails: Array[Array[Long]]): Array[AnyRef] =
          Array[AnyRef](new Array[Float](n * outWidth))
      }
      val partition = Option(TaskContext.get()).map(_.partitionId()).getOrElse(-1)
      new PartitionScorer(partition, Array(binding), Array(output), batch, engine, _.toString).over(rows)
    }(Encoders.row(transformSchema(df.schema)))
  }
}
