package dev.strand.scaladsl

import java.nio.file.Path
import java.util.concurrent.Executors

import scala.concurrent.duration._
import scala.concurrent.{Await, ExecutionContext, Future}

import dev.strand._
import org.scalatest.BeforeAndAfterEach
import org.scalatest.funsuite.AnyFunSuite

class FacadeSpec extends AnyFunSuite with BeforeAndAfterEach {
  private val repo = Path.of(sys.props.getOrElse("strand.repo.root", "../..")).toAbsolutePath.normalize
  private def model(name: String) = repo.resolve("models").resolve(name)

  private lazy val sessionsWork: Boolean =
    try {
      using { _ =>
        val s = Model.load(model("mlp_tiny.onnx")).newSession()
        s.run("input" -> Tensor.zeros(DType.FLOAT32, 1, 16)).size == 1
      }
    } catch { case _: StrandException => false }

  /** Every test ends with zero live strand objects (after the GC has had its chance). */
  override def afterEach(): Unit = {
    val deadline = System.nanoTime() + 10.seconds.toNanos
    while (Strand.memoryStats().totalLiveObjects() != 0 && System.nanoTime() < deadline) {
      System.gc()
      Thread.sleep(10)
    }
    assert(Strand.memoryStats().totalLiveObjects() == 0, Strand.memoryStats().toString)
    super.afterEach()
  }

  test("using closes what was made inside and hands back its value") {
    var inner: Tensor = null
    val kept = using { _ =>
      inner = Array(1f, 2f, 3f).toTensor()
      Array(4L, 5L).toTensor(2, 1)
    }
    assert(inner.isClosed)
    assert(!kept.isClosed)
    assert(kept.dims == IndexedSeq(2L, 1L))
    assert(kept.toLongArray.toSeq == Seq(4L, 5L))
    kept.close()
  }

  test("tensors from Scala arrays and collections") {
    using { _ =>
      val m = Seq(Seq(1f, 2f), Seq(3f, 4f), Seq(5f, 6f)).toTensor
      assert(m.toString == "Tensor[float32, 3x2]")
      assert(m.toFloatArray.toSeq == Seq(1f, 2f, 3f, 4f, 5f, 6f))
      assert(Vector(1.5, 2.5).toTensor(2).dtype == DType.FLOAT64)
      assert(List(7L).toTensor(1, 1).toLongArray.toSeq == Seq(7L))
      assert(Array(true, false).toTensor().toBooleanArray.toSeq == Seq(true, false))
      assert(Array[Byte](1, 2).toTensor(2).dtype == DType.INT8)
      assert(Array(1, 2, 3).toTensor(3).toIntArray.sum == 6)
      assertThrows[IllegalArgumentException](Seq(Seq(1f), Seq(1f, 2f)).toTensor)
    }
  }

  test("a closed tensor names itself") {
    val t = Array(1f, 2f, 3f, 4f, 5f, 6f).toTensor(2, 3)
    t.close()
    val e = intercept[IllegalStateException](t.toFloatArray)
    assert(e.getMessage == "Tensor[float32, 2x3] is closed")
  }

  test("Future-friendly prediction") {
    assume(sessionsWork, "the native library cannot run sessions yet")
    val pool = Executors.newFixedThreadPool(4)
    implicit val ec: ExecutionContext = ExecutionContext.fromExecutorService(pool)
    try {
      using { _ =>
        val session = Model.load(model("mlp_tiny.onnx")).newSession()
        val input = Tensor.readNpy(model("mlp_tiny.input.npy"))
        val expected = Tensor.readNpy(model("mlp_tiny.expected.npy")).toFloatArray
        val futures = (1 to 32).map(_ => session.predictWith("input" -> input)(_("output").toFloatArray))
        val outputs = Await.result(Future.sequence(futures), 60.seconds)
        outputs.foreach { out =>
          out.zip(expected).foreach { case (g, w) => assert(math.abs(g - w) <= 1e-5 + 1e-4 * math.abs(w)) }
        }
        val result = Await.result(session.predict("input" -> input), 60.seconds)
        try assert(result.toMap.keySet == Set("output"))
        finally result.close()
      }
    } finally pool.shutdown()
  }

  test("run options and batching from Scala durations") {
    assume(sessionsWork, "the native library cannot run sessions yet")
    using { _ =>
      val o = SessionOptions.defaults().batching(8, 1500.micros)
      assert(o.batchMaxRows == 8 && o.batchDelayMicros == 1500)
      val session = Model.load(model("mlp_tiny.onnx")).newSession(o)
      val input = Tensor.readNpy(model("mlp_tiny.input.npy"))
      val plain = session.run("input" -> input)("output").toFloatArray
      val timed = session.runWith(RunOptions.none.within(1.minute))("input" -> input)("output").toFloatArray
      assert(timed.toSeq == plain.toSeq)
      val token = CancelToken.create("scala")
      token.cancel()
      val e = intercept[StrandException](session.runWith(RunOptions.cancel(token))("input" -> input))
      assert(e.status == Status.CANCELED)
      assert(e.strandMessage.contains("canceled by the run's token"), e.getMessage)
      assert(session.stats.runsCanceled == 1)
    }
  }

  test("dispatcher apply runs on its thread") {
    using { _ =>
      val d = Dispatcher.create("strand-scala")
      assert(d(Thread.currentThread().getName) == "strand-scala")
      assert(d(d(d.isCurrentThread)))
      val e = intercept[java.io.IOException](d(throw new java.io.IOException("boom")))
      assert(e.getMessage == "boom")
    }
  }
}
