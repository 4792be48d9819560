package dev.strand.spark

import java.nio.file.{Files, Path}
import java.util.concurrent.TimeUnit

import dev.strand.spark.example.{Checks, Synthetic}
import org.apache.spark.SparkFiles
import org.apache.spark.ml.{Pipeline, PipelineModel}
import org.apache.spark.ml.linalg.Vectors
import org.apache.spark.sql.DataFrame
import org.apache.spark.sql.functions.{col, udf}
import org.scalatest.funsuite.AnyFunSuite

/**
 * local[4] scoring checked against the C library: the reference outputs come
 * from the `strand run` CLI (C, no JNI, no Spark, no batching, no session
 * cache) run once, single-threaded (STRAND_THREADS=1), over all the rows
 * written as one .npy file.
 */
class ScoringSpec extends AnyFunSuite with LocalSpark {
  private val seed = 20261126L
  private val rows = Integer.getInteger("strand.spark.rows", 1000000).intValue
  private val width = 16

  /** Runs the strand CLI on `inputs` and returns output.npy's rows. */
  private def strandRun(inputs: Path): (Array[Float], Int) = {
    val cli = Path.of(System.getProperty("strand.cli", repoRoot.resolve("build/release/strand").toString))
    assert(Files.isExecutable(cli), s"the strand CLI is not at $cli (set -Dstrand.cli)")
    val out = Files.createTempDirectory(scratch, "ref")
    val pb = new ProcessBuilder(cli.toString, "run", mlpTiny.toString, "--input", s"input=$inputs",
      "--output-dir", out.toString).redirectErrorStream(true).redirectOutput(out.resolve("log").toFile)
    pb.environment().put("STRAND_THREADS", "1")
    val p = pb.start()
    assert(p.waitFor(300, TimeUnit.SECONDS), "strand run took over 5 minutes")
    assert(p.exitValue == 0, s"strand run failed: ${Files.readString(out.resolve("log"))}")
    Checks.readNpy(out.resolve("output.npy"))
  }

  private def stage(batch: Int): StrandModel = new StrandModel().setModelPath(mlpTiny.toString)
    .setInputCols(Array("features")).setOutputCols(Array("scores")).setBatchSize(batch)

  private def scores(df: DataFrame): Map[Long, Seq[Float]] =
    df.select("id", "scores").collect().map(r => r.getLong(0) -> r.getSeq[Float](1).toSeq).toMap

  test(s"local[4] scores $rows rows, each equal bit for bit to the single-threaded C result") {
    val inputs = scratch.resolve("inputs.npy")
    Synthetic.writeNpy(inputs, seed, rows, width)
    val (reference, refWidth) = strandRun(inputs)
    assert(refWidth == 4 && reference.length == rows * 4)

    SessionCache.closeIdle() // whatever an earlier suite left: this test must load the model itself
    val before = SessionCache.sessionsCreated
    val scored = stage(1000).transform(Synthetic.frame(spark, seed, rows.toLong, width, 16))
    val (compared, bad) = Checks.compare(spark, scored, "scores", reference, refWidth)
    assert(bad.isEmpty, bad.mkString("\n"))
    assert(compared == rows)
    // 16 partitions on 4 task threads, one model load and one session in this JVM.
    assert(SessionCache.sessionsCreated - before == 1)
  }

  test("batch boundaries do not change a row's scores (batch 7 vs 1000 vs 1)") {
    val df = Synthetic.frame(spark, seed, 250, width, 3)
    val big = scores(stage(1000).transform(df))
    assert(big.size == 250)
    assert(scores(stage(7).transform(df)) == big)
    assert(scores(stage(1).transform(df)) == big)
  }

  test("array<double> and ML vector columns score like array<float>") {
    val df = Synthetic.frame(spark, seed, 100, width, 2)
    val expected = scores(stage(32).transform(df))
    val toDoubles = udf((f: Seq[Float]) => f.map(_.toDouble))
    val toVector = udf((f: Seq[Float]) => Vectors.dense(f.map(_.toDouble).toArray))
    val doubles = df.withColumn("features", toDoubles(col("features")))
    val vectors = df.withColumn("features", toVector(col("features")))
    assert(scores(stage(32).transform(doubles)) == expected)
    assert(scores(stage(32).transform(vectors)) == expected)
  }

  test("the output schema appends one non-null array<float> column per output") {
    val df = Synthetic.frame(spark, seed, 10, width, 1)
    val out = stage(4).transformSchema(df.schema)
    assert(out.fieldNames.toSeq == Seq("id", "features", "scores"))
    assert(out("scores").dataType.simpleString == "array<float>")
    // Default output column: the model's output name.
    val named = new StrandModel().setModelPath(mlpTiny.toString).setInputCols(Array("features"))
    assert(named.transformSchema(df.schema).fieldNames.last == "output")
  }

  test("a model shipped with addFile is found by its name (SparkFiles)") {
    val shipped = scratch.resolve("shipped_mlp.onnx")
    Files.copy(mlpTiny, shipped)
    spark.sparkContext.addFile(shipped.toString)
    // The bare name is no file in the working directory: it resolves through SparkFiles.
    assert(!Files.exists(Path.of("shipped_mlp.onnx")))
    assert(StrandModel.resolve("shipped_mlp.onnx") == SparkFiles.get("shipped_mlp.onnx"))
    val df = Synthetic.frame(spark, seed, 64, width, 2)
    val byName = new StrandModel().setModelPath("shipped_mlp.onnx").setInputCols(Array("features"))
      .setOutputCols(Array("scores")).transform(df)
    assert(scores(byName) == scores(stage(1024).transform(df)))
  }

  test("a Pipeline holding StrandModel saves and loads with its parameters") {
    val df = Synthetic.frame(spark, seed, 40, width, 2)
    val original = stage(5).setIntraOpThreads(2)
    val fitted = new Pipeline().setStages(Array(original)).fit(df)
    val dir = scratch.resolve("pipeline").toString
    fitted.write.overwrite().save(dir)
    val loaded = PipelineModel.load(dir)
    val s = loaded.stages.head.asInstanceOf[StrandModel]
    assert(s.uid == original.uid)
    assert(s.getModelPath == mlpTiny.toString && s.getBatchSize == 5 && s.getIntraOpThreads == 2)
    assert(s.getInputCols.toSeq == Seq("features") && s.getOutputCols.toSeq == Seq("scores"))
    assert(scores(loaded.transform(df)) == scores(original.transform(df)))
    // The stage alone, too.
    original.write.overwrite().save(scratch.resolve("stage").toString)
    assert(StrandModel.load(scratch.resolve("stage").toString).getBatchSize == 5)
  }

  test("the session cache shares one session per key and closes idle ones") {
    SessionCache.closeIdle()
    val key = SessionKey(mlpTiny.toString, 1)
    val a = SessionCache.acquire(key)
    val b = SessionCache.acquire(key)
    assert(a.session eq b.session)
    assert(SessionCache.openLeases == 2)
    a.close()
    a.close() // idempotent
    assert(SessionCache.closeIdle() == 1) // b still holds it
    assert(!b.session.isClosed)
    b.close()
    assert(SessionCache.closeIdle() == 0 && SessionCache.size == 0)
  }

  test("leaves no strand objects: leak report empty after closing the cache") {
    assertNoStrandObjects()
  }
}
