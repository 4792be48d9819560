package dev.strand.spark.example

import java.nio.file.Path

import dev.strand.Tensor
import org.apache.spark.sql.{DataFrame, SparkSession}
import org.apache.spark.sql.functions.{col, udf}

/**
 * Inputs made from a seed: row `id` holds `width` floats in [-2, 2) drawn
 * from SplitMix64 of (seed, id, element), so that a Spark task and a plain
 * loop on the driver make the same row without shipping data.
 */
object Synthetic {

  private def mix(z0: Long): Long = {
    var z = z0 + 0x9E3779B97F4A7C15L
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL
    z ^ (z >>> 31)
  }

  /** The row's features. */
  def row(seed: Long, id: Long, width: Int): Array[Float] = {
    val out = new Array[Float](width)
    val base = mix(seed ^ mix(id))
    var j = 0
    while (j < width) {
      // 24 random bits: exact in a float.
      out(j) = ((mix(base + j) >>> 40).toFloat / (1 << 24).toFloat) * 4f - 2f
      j += 1
    }
    out
  }

  /** A DataFrame (id: bigint, features: array<float>) of `rows` rows in `partitions` partitions. */
  def frame(spark: SparkSession, seed: Long, rows: Long, width: Int, partitions: Int): DataFrame = {
    val features = udf((id: Long) => row(seed, id, width))
    spark.range(0, rows, 1, partitions).select(col("id"), features(col("id")).as("features"))
  }

  /** Writes rows 0 until `rows` as one float32 [rows, width] .npy file (no Spark). */
  def writeNpy(path: Path, seed: Long, rows: Int, width: Int): Unit = {
    val all = new Array[Float](rows * width)
    var i = 0
    while (i < rows) {
      System.arraycopy(row(seed, i.toLong, width), 0, all, i * width, width)
      i += 1
    }
    val t = Tensor.of(all, rows.toLong, width.toLong)
    try t.writeNpy(path) finally t.close()
  }
}
