package dev.strand.spark.example

import java.nio.file.Path

import dev.strand.spark.StrandModel
import org.apache.spark.ml.Transformer
import org.apache.spark.sql.SparkSession

/**
 * Scores a generated DataFrame with an ONNX model and prints rows per second.
 *
 * {{{
 * spark-submit --class dev.strand.spark.example.ScoreExample \
 *   --jars strand-0.1.0.jar --files models/mlp_tiny.onnx strand-spark_2.13-0.1.0.jar \
 *   --model mlp_tiny.onnx --rows 1000000 [--reference expected.npy] [--executors 2]
 * }}}
 *
 * Options:
 *   --model PATH|NAME   the model: a path every node reads, or a --files name (required)
 *   --rows N            rows to score (default 1000000)
 *   --partitions N      partitions of the generated DataFrame (default 8)
 *   --seed N            the inputs' seed (default 7; see Synthetic)
 *   --width N           features per row (default 16, mlp_tiny's input)
 *   --batch N           rows per run (default 1024)
 *   --threads N         intra-op threads per run (default 1)
 *   --repeat N          timed runs after one warm-up run; the median is printed (default 1)
 *   --reference FILE    a float32 [rows, width] .npy of the expected outputs (from `strand run`):
 *                       every row must match it bit for bit
 *   --executors N       the leak check must hear from at least N executors (default 0)
 *   --engine E          strand (default), ort (ONNX Runtime; built with -Port only) or
 *                       none (the harness alone: zeros, no model; for the benchmark)
 *   --write-inputs FILE write the inputs as a float32 [rows, width] .npy and exit (no Spark)
 *   --cache             generate the inputs once, cached in memory, before the timed runs
 *
 * Exits 1 when a check fails.
 */
object ScoreExample {

  final case class Options(model: String = "", rows: Long = 1000000L, partitions: Int = 8, seed: Long = 7L,
                           width: Int = 16, batch: Int = 1024, threads: Int = 1, repeat: Int = 1,
                           reference: Option[String] = None, executors: Int = 0, engine: String = "strand",
                           writeInputs: Option[String] = None, cache: Boolean = false)

  def parse(args: List[String], o: Options = Options()): Options = args match {
    case Nil => o
    case "--model" :: v :: rest => parse(rest, o.copy(model = v))
    case "--rows" :: v :: rest => parse(rest, o.copy(rows = v.toLong))
    case "--partitions" :: v :: rest => parse(rest, o.copy(partitions = v.toInt))
    case "--seed" :: v :: rest => parse(rest, o.copy(seed = v.toLong))
    case "--width" :: v :: rest => parse(rest, o.copy(width = v.toInt))
    case "--batch" :: v :: rest => parse(rest, o.copy(batch = v.toInt))
    case "--threads" :: v :: rest => parse(rest, o.copy(threads = v.toInt))
    case "--repeat" :: v :: rest => parse(rest, o.copy(repeat = v.toInt))
    case "--reference" :: v :: rest => parse(rest, o.copy(reference = Some(v)))
    case "--executors" :: v :: rest => parse(rest, o.copy(executors = v.toInt))
    case "--engine" :: v :: rest => parse(rest, o.copy(engine = v))
    case "--write-inputs" :: v :: rest => parse(rest, o.copy(writeInputs = Some(v)))
    case "--cache" :: rest => parse(rest, o.copy(cache = true))
    case other :: _ => throw new IllegalArgumentException(s"unknown or incomplete option '$other'")
  }

  /** The scoring stage for an engine; ONNX Runtime's comes from the -Port build. */
  def scorer(o: Options): Transformer = o.engine match {
    case "strand" =>
      new StrandModel().setModelPath(o.model).setInputCols(Array("features"))
        .setOutputCols(Array("scores")).setBatchSize(o.batch).setIntraOpThreads(o.threads)
    case "ort" =>
      Class.forName("dev.strand.spark.bench.OrtModel")
        .getConstructor(classOf[String], classOf[String], classOf[String], classOf[Int], classOf[Int])
        .newInstance(o.model, "features", "scores", Int.box(o.batch), Int.box(o.threads))
        .asInstanceOf[Transformer]
    case "none" => new HarnessOnly("features", "scores", o.width, 4, o.batch)
    case other => throw new IllegalArgumentException(s"unknown engine '$other' (strand, ort or none)")
  }

  def main(args: Array[String]): Unit = {
    val o = parse(args.toList)
    o.writeInputs match {
      case Some(file) =>
        Synthetic.writeNpy(Path.of(file), o.seed, o.rows.toInt, o.width)
        println(s"example: wrote ${o.rows} rows x ${o.width} to $file")
        return
      case None =>
    }
    require(o.model.nonEmpty, "--model is required")
    val spark = SparkSession.builder().appName("strand-spark example").getOrCreate()
    val ok = try run(spark, o) finally spark.stop()
    if (!ok) {
      println("example: FAILED")
      sys.exit(1)
    }
    println("example: PASSED")
  }

  /** Scores, times, checks; true when every check passed. */
  def run(spark: SparkSession, o: Options): Boolean = {
    val stage = scorer(o)
    val generated = Synthetic.frame(spark, o.seed, o.rows, o.width, o.partitions)
    val input = if (o.cache) generated.cache() else generated
    if (o.cache) require(input.count() == o.rows)
    val scored = stage.transform(input)
    val master = spark.sparkContext.master

    // One warm-up run (model loads, JIT), then the timed runs; the noop sink
    // computes every row and writes nothing.
    scored.limit(math.min(o.rows, 50000L).toInt).write.format("noop").mode("overwrite").save()
    val seconds = (1 to o.repeat).map { _ =>
      val t0 = System.nanoTime()
      scored.write.format("noop").mode("overwrite").save()
      (System.nanoTime() - t0) / 1e9
    }.sorted
    val median = seconds(seconds.size / 2)
    println(f"example: engine=${o.engine} master=$master rows=${o.rows} partitions=${o.partitions} " +
      f"batch=${o.batch} threads=${o.threads} cached=${o.cache} runs=${o.repeat} median_seconds=$median%.3f " +
      f"rows_per_second=${o.rows / median}%.0f")

    var ok = true
    o.reference.foreach { file =>
      val (reference, width) = Checks.readNpy(Path.of(file))
      val (compared, bad) = Checks.compare(spark, scored, "scores", reference, width)
      println(s"example: compared $compared rows with $file bit for bit: ${bad.size} differ in the first shown")
      bad.foreach(b => println(s"example:   $b"))
      if (compared != o.rows || bad.nonEmpty || reference.length.toLong != o.rows * width) {
        println(s"example: reference check FAILED (rows ${o.rows}, compared $compared, reference rows " +
          s"${reference.length / width})")
        ok = false
      }
    }
    if (o.engine == "strand") {
      val reports = Checks.executorReports(spark, math.max(8, 8 * o.executors))
      reports.foreach(r => println(s"example: executor $r"))
      val executors = reports.count(_.executor != "driver")
      if (!reports.forall(_.clean)) {
        println("example: leak check FAILED: an executor has live strand objects or leaks")
        ok = false
      }
      if (executors < o.executors) {
        println(s"example: leak check FAILED: heard from $executors executors, expected ${o.executors}")
        ok = false
      }
    }
    ok
  }
}
