package dev.strand.spark.example

import java.nio.file.Path

import dev.strand.{Strand, Tensor}
import dev.strand.spark.SessionCache
import org.apache.spark.SparkEnv
import org.apache.spark.sql.{DataFrame, SparkSession}

/** The checks shared by the test suite and the example. */
object Checks {

  /** Reads a float32 [rows, width] .npy file (the reference outputs) as one flat array. */
  def readNpy(path: Path): (Array[Float], Int) = {
    val t = Tensor.readNpy(path)
    try {
      require(t.rank == 2, s"$path: expected a [rows, width] array, got rank ${t.rank}")
      (t.toFloatArray, t.dim(1).toInt)
    } finally t.close()
  }

  /**
   * Compares column `output` (array<float>) of `scored` with row `id` of the
   * reference, bit for bit, on the executors. Returns the number of rows
   * compared and up to 5 descriptions of rows that differ.
   */
  def compare(spark: SparkSession, scored: DataFrame, output: String, reference: Array[Float],
              width: Int): (Long, Seq[String]) = {
    val ref = spark.sparkContext.broadcast(reference)
    val perPartition = scored.select("id", output).rdd.mapPartitions { rows =>
      val r = ref.value
      var n = 0L
      val bad = scala.collection.mutable.ArrayBuffer.empty[String]
      rows.foreach { row =>
        val id = row.getLong(0)
        val got = row.getSeq[Float](1)
        val want = r.slice((id * width).toInt, ((id + 1) * width).toInt)
        val same = got.length == width && got.indices.forall { j =>
          java.lang.Float.floatToRawIntBits(got(j)) == java.lang.Float.floatToRawIntBits(want(j))
        }
        if (!same && bad.size < 5) bad += s"row $id: got ${got.mkString("[", ", ", "]")}, " +
          s"expected ${want.mkString("[", ", ", "]")}"
        n += 1
      }
      Iterator((n, bad.toSeq))
    }.collect()
    ref.destroy()
    (perPartition.map(_._1).sum, perPartition.flatMap(_._2).take(5).toSeq)
  }

  /** What one executor JVM reports after closing its idle cached sessions. */
  final case class ExecutorReport(executor: String, sessionsCreated: Long, stillLeased: Int,
                                  openObjects: Long, leakCount: Long, nativeLeakSites: Int,
                                  liveNativeObjects: Long) {
    def clean: Boolean = stillLeased == 0 && openObjects == 0 && leakCount == 0 &&
      nativeLeakSites == 0 && liveNativeObjects == 0
  }

  /**
   * Runs `tasks` small tasks that close each executor's idle sessions and
   * read strand's leak figures there; one report per executor reached (a
   * task may not reach every executor; the caller checks which it saw).
   */
  def executorReports(spark: SparkSession, tasks: Int): Seq[ExecutorReport] = {
    spark.sparkContext.parallelize(0 until tasks, tasks).mapPartitions { _ =>
      val stillLeased = SessionCache.closeIdle()
      System.gc() // objects dropped without close() are counted as leaks once collected
      Thread.sleep(200)
      Iterator(ExecutorReport(
        executor = Option(SparkEnv.get).map(_.executorId).getOrElse("?"),
        sessionsCreated = SessionCache.sessionsCreated,
        stillLeased = stillLeased,
        openObjects = Strand.openObjects(),
        leakCount = Strand.leakCount(),
        nativeLeakSites = Strand.nativeLeakReport().size,
        liveNativeObjects = Strand.memoryStats().totalLiveObjects()))
    }.collect().groupBy(_.executor).map(_._2.last).toSeq.sortBy(_.executor)
  }
}
