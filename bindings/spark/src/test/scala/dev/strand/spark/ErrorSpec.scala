package dev.strand.spark

import java.nio.file.{Files, Path}

import dev.strand.{Model, StrandException, Tensor}
import dev.strand.spark.example.Synthetic
import org.apache.spark.SparkException
import org.apache.spark.sql.functions.{col, udf}
import org.scalatest.funsuite.AnyFunSuite

/**
 * The unhappy paths: each is a SparkException naming the culprit, and, for
 * a row, its partition and its index there, with strand's own message.
 * spark.range(0, 100, 1, 4) puts ids 25p .. 25p+24 in partition p, so id 60
 * is row 10 of partition 2.
 */
class ErrorSpec extends AnyFunSuite with LocalSpark {

  private def stage(path: String): StrandModel =
    new StrandModel().setModelPath(path).setInputCols(Array("features")).setOutputCols(Array("scores"))
      .setBatchSize(16)

  /** strand's message for loading `path`, straight from the Java API. */
  private def loadMessage(path: Path): String = {
    val e = intercept[StrandException](Model.load(path).close())
    e.getMessage
  }

  /** The job's failure message: Spark wraps the task's exception. */
  private def jobFailure(body: => Any): String = intercept[SparkException](body).getMessage

  test("a model file that does not exist: the driver names the path and strand's message") {
    val missing = Path.of("/nonexistent/strand/model.onnx")
    val e = intercept[SparkException](stage(missing.toString).transformSchema(Synthetic.frame(spark, 1, 1, 16, 1).schema))
    assert(e.getMessage == s"StrandModel: cannot load model '$missing': ${loadMessage(missing)}")
    assert(e.getMessage.contains("STRAND_E_IO"))
  }

  test("a file that is not a model: strand's parse error") {
    val junk = Files.writeString(Files.createTempFile("junk", ".onnx"), "not a protobuf at all")
    val e = intercept[SparkException](stage(junk.toString).transform(Synthetic.frame(spark, 1, 1, 16, 1)))
    assert(e.getMessage == s"StrandModel: cannot load model '$junk': ${loadMessage(junk)}")
    assert(e.getMessage.contains("STRAND_E_"))
  }

  test("a model that breaks between planning and the executors: the task names the partition") {
    val path = Files.createTempFile("breaks", ".onnx")
    Files.copy(mlpTiny, path, java.nio.file.StandardCopyOption.REPLACE_EXISTING)
    val scored = stage(path.toString).transform(Synthetic.frame(spark, 1, 100, 16, 4))
    Files.writeString(path, "truncated")
    val message = jobFailure(scored.collect())
    // Whichever of the 4 partitions fails first is the one reported.
    val expected = s"cannot load model '$path': ${loadMessage(path)}"
    assert(expected.contains("STRAND_E_"))
    assert((0 to 3).exists(p => message.contains(s"StrandModel: partition $p: $expected")), message)
  }

  test("a string column: the column, its type and what the input takes") {
    val df = spark.range(3).selectExpr("id", "cast(id as string) as features")
    val e = intercept[SparkException](stage(mlpTiny.toString).transform(df))
    assert(e.getMessage == "StrandModel: column 'features' is string; input 'input' (float32) takes " +
      "array<float>, array<double> or vector")
  }

  test("an integer array for a float input, and a missing column") {
    val ints = spark.range(3).selectExpr("id", "array(1, 2) as features")
    val e = intercept[SparkException](stage(mlpTiny.toString).transform(ints))
    assert(e.getMessage == "StrandModel: column 'features' is array<int>; input 'input' (float32) takes " +
      "array<float>, array<double> or vector")
    val none = intercept[SparkException](stage(mlpTiny.toString).transform(spark.range(3).toDF()))
    assert(none.getMessage == "StrandModel: no column 'features' (columns: id)")
  }

  test("a row of the wrong size: its partition and index, its size and the input's") {
    val features = udf((id: Long) => Synthetic.row(1, id, if (id == 60) 15 else 16))
    val df = spark.range(0, 100, 1, 4).select(col("id"), features(col("id")).as("features"))
    val message = jobFailure(stage(mlpTiny.toString).transform(df).collect())
    assert(message.contains("StrandModel: row 10 of partition 2: column 'features' holds 15 values; " +
      "input 'input' takes 16 per row (shape [batch, 16])"), message)
  }

  test("a null row and a null element") {
    val nullRow = udf((id: Long) => if (id == 28) null else Synthetic.row(1, id, 16))
    val df = spark.range(0, 100, 1, 4).select(col("id"), nullRow(col("id")).as("features"))
    val m1 = jobFailure(stage(mlpTiny.toString).transform(df).collect())
    assert(m1.contains("StrandModel: row 3 of partition 1: column 'features' is null"), m1)

    val nullElem = udf((id: Long) => Synthetic.row(1, id, 16).map(x => java.lang.Float.valueOf(x))
      .updated(5, if (id == 99) null else java.lang.Float.valueOf(0f)))
    val df2 = spark.range(0, 100, 1, 4).select(col("id"), nullElem(col("id")).as("features"))
    val m2 = jobFailure(stage(mlpTiny.toString).transform(df2).collect())
    assert(m2.contains("StrandModel: row 24 of partition 3: column 'features' holds a null at element 5"), m2)
  }

  test("a row whose run fails inside strand: the batch is retried row by row to name it") {
    val model = Files.write(Files.createTempFile("div", ".onnx"), TinyOnnx.divInt64(3))
    val divisors = udf((id: Long) => Array(1L, if (id == 60) 0L else id + 1, 2L))
    val dividends = udf((id: Long) => Array(id, id * 7, -id))
    val df = spark.range(0, 100, 1, 4)
      .select(col("id"), dividends(col("id")).as("a"), divisors(col("id")).as("b"))
    val div = new StrandModel().setModelPath(model.toString).setInputCols(Array("a", "b"))
      .setOutputCols(Array("y")).setBatchSize(16)

    // strand's message for that one row, straight from the Java API.
    val loaded = Model.load(model)
    val session = try loaded.newSession() finally loaded.close()
    val direct = try {
      val a = Tensor.of(Array(60L, 420L, -60L), 1, 3)
      val b = Tensor.of(Array(1L, 0L, 2L), 1, 3)
      try intercept[StrandException](session.run(java.util.Map.of("a", a, "b", b)).close()).getMessage
      finally { a.close(); b.close() }
    } finally session.close()
    assert(direct.contains("STRAND_E_"))

    val message = jobFailure(div.transform(df).collect())
    assert(message.contains(s"StrandModel: row 10 of partition 2: $direct"), message)

    // The rows that do not divide by zero score correctly (the kernel is not the code under test,
    // but the int64 packing and unpacking are).
    val ok = div.transform(df.filter(col("id") =!= 60)).select("id", "y").collect()
    assert(ok.length == 99)
    ok.foreach { r =>
      val id = r.getLong(0)
      assert(r.getSeq[Long](1) == Seq(id, id * 7 / (id + 1), -id / 2), s"row $id")
    }
  }

  test("parameter checks: batch size and thread count") {
    intercept[IllegalArgumentException](new StrandModel().setBatchSize(0))
    intercept[IllegalArgumentException](new StrandModel().setIntraOpThreads(-1))
  }

  test("leaves no strand objects: leak report empty after closing the cache") {
    assertNoStrandObjects()
  }
}
