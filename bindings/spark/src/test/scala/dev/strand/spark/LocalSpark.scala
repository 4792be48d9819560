package dev.strand.spark

import java.nio.file.{Files, Path}

import dev.strand.spark.example.Checks
import org.apache.spark.sql.SparkSession
import org.scalatest.{BeforeAndAfterAll, Suite}

/** A local[4] SparkSession for a suite, and the repository's files. */
trait LocalSpark extends BeforeAndAfterAll { self: Suite =>
  @transient protected var spark: SparkSession = _

  protected val repoRoot: Path = Path.of(System.getProperty("strand.repo.root", "../..")).toAbsolutePath.normalize
  protected val mlpTiny: Path = repoRoot.resolve("models/mlp_tiny.onnx")
  protected lazy val scratch: Path = Files.createTempDirectory("strand-spark-test")

  override protected def beforeAll(): Unit = {
    super.beforeAll()
    spark = SparkSession.builder().master("local[4]").appName(suiteName)
      .config("spark.ui.enabled", "false")
      .config("spark.sql.shuffle.partitions", "4")
      .getOrCreate()
  }

  override protected def afterAll(): Unit = {
    try if (spark != null) spark.stop()
    finally super.afterAll()
  }

  /** Closes the cached sessions and checks strand's leak figures in this (the executors') JVM. */
  protected def assertNoStrandObjects(): Unit = {
    val reports = Checks.executorReports(spark, 4)
    assert(reports.nonEmpty)
    reports.foreach(r => assert(r.clean, s"strand objects left: $r"))
  }
}
