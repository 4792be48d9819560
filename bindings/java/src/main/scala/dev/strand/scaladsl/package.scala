package dev.strand

import scala.concurrent.{ExecutionContext, Future}
import scala.concurrent.duration.FiniteDuration
import scala.jdk.CollectionConverters._
import scala.jdk.DurationConverters._

/**
 * The Scala 2.13 facade: a `using` scope, tensors from Scala arrays and
 * collections, and Future-friendly prediction. The Java API does the work;
 * everything here is a thin, allocation-light layer over it, with the same
 * thread-safety (any thread, any time).
 *
 * {{{
 * import dev.strand._
 * import dev.strand.scaladsl._
 *
 * val model   = Model.load(java.nio.file.Path.of("mlp.onnx"))
 * val session = model.newSession()
 * val scores: Future[Array[Float]] =
 *   session.predictWith("input" -> Array.fill(16)(0.5f).toTensor(1, 16))(_("output").toFloatArray)
 * val y = using { _ => session.run("input" -> Seq(1f, 2f).toTensor(1, 2))("output").toFloatArray }
 * val z = using { _ => session.runWith(RunOptions.none.within(20.millis))("input" -> x)("output") }
 * }}}
 */
package object scaladsl {

  /**
   * Runs `body` in a [[ResourceScope]]: every strand object created on this
   * thread inside it is closed at its end, except a returned strand object
   * or [[Result]] (moved to the enclosing scope, or detached when there is
   * none) and whatever `body` detaches.
   */
  def using[T](body: ResourceScope => T): T =
    ResourceScope.`with`[T, RuntimeException](scope => body(scope))

  implicit final class FloatArrayTensor(private val a: Array[Float]) extends AnyVal {
    /** A float32 tensor holding a copy; without a shape, a vector. */
    def toTensor(shape: Long*): Tensor = Tensor.of(a, shape: _*)
  }

  implicit final class DoubleArrayTensor(private val a: Array[Double]) extends AnyVal {
    def toTensor(shape: Long*): Tensor = Tensor.of(a, shape: _*)
  }

  implicit final class IntArrayTensor(private val a: Array[Int]) extends AnyVal {
    def toTensor(shape: Long*): Tensor = Tensor.of(a, shape: _*)
  }

  implicit final class LongArrayTensor(private val a: Array[Long]) extends AnyVal {
    def toTensor(shape: Long*): Tensor = Tensor.of(a, shape: _*)
  }

  implicit final class ByteArrayTensor(private val a: Array[Byte]) extends AnyVal {
    def toTensor(shape: Long*): Tensor = Tensor.of(a, shape: _*)
  }

  implicit final class BooleanArrayTensor(private val a: Array[Boolean]) extends AnyVal {
    def toTensor(shape: Long*): Tensor = Tensor.of(a, shape: _*)
  }

  /** Tensors from Scala collections of numbers: `Seq(1f, 2f).toTensor(1, 2)`. */
  implicit final class FloatSeqTensor(private val s: Iterable[Float]) extends AnyVal {
    def toTensor(shape: Long*): Tensor = Tensor.of(s.toArray, shape: _*)
  }

  implicit final class DoubleSeqTensor(private val s: Iterable[Double]) extends AnyVal {
    def toTensor(shape: Long*): Tensor = Tensor.of(s.toArray, shape: _*)
  }

  implicit final class LongSeqTensor(private val s: Iterable[Long]) extends AnyVal {
    def toTensor(shape: Long*): Tensor = Tensor.of(s.toArray, shape: _*)
  }

  /** A matrix from rows of equal length: `Seq(Seq(1f, 2f), Seq(3f, 4f)).toTensor` is 2x2. */
  implicit final class FloatRowsTensor(private val rows: Iterable[Iterable[Float]]) extends AnyVal {
    def toTensor: Tensor = {
      val width = rows.headOption.map(_.size).getOrElse(0)
      require(rows.forall(_.size == width), "every row must have the same length")
      Tensor.of(rows.iterator.flatMap(_.iterator).toArray, rows.size.toLong, width.toLong)
    }
  }

  implicit final class TensorOps(private val t: Tensor) extends AnyVal {
    /** The shape as a Scala sequence. */
    def dims: IndexedSeq[Long] = t.shape().toIndexedSeq
  }

  implicit final class ResultOps(private val r: Result) extends AnyVal {
    /** The output named `name`. */
    def apply(name: String): Tensor = r.get(name)

    /** The outputs by name, in order (the tensors stay the result's). */
    def toMap: Map[String, Tensor] = r.asMap().asScala.toMap
  }

  implicit final class SessionOps(private val s: Session) extends AnyVal {
    /** Runs with named inputs (the caller keeps owning them); returns every output. */
    def run(inputs: (String, Tensor)*): Result = s.run(inputs.toMap.asJava)

    /**
     * Runs under `options` (a timeout, a deadline, a [[CancelToken]]); a run
     * they stop throws [[StrandException]] with CANCELED or DEADLINE.
     */
    def runWith(options: RunOptions)(inputs: (String, Tensor)*): Result =
      s.run(inputs.toMap.asJava, options)

    /** Runs on `ec`; the caller closes the result. */
    def predict(inputs: (String, Tensor)*)(implicit ec: ExecutionContext): Future[Result] =
      Future(s.run(inputs.toMap.asJava))

    /**
     * Runs on `ec`, applies `f` to the result and closes it; the future holds
     * what `f` returned (which must not keep the result's tensors).
     */
    def predictWith[T](inputs: (String, Tensor)*)(f: Result => T)(implicit ec: ExecutionContext): Future[T] =
      Future {
        val result = s.run(inputs.toMap.asJava)
        try f(result)
        finally result.close()
      }
  }

  implicit final class RunOptionsOps(private val o: RunOptions) extends AnyVal {
    /** The same options with a timeout given as a Scala duration. */
    def within(timeout: FiniteDuration): RunOptions = o.withTimeout(timeout.toJava)
  }

  implicit final class SessionOptionsOps(private val o: SessionOptions) extends AnyVal {
    /** Dynamic batching with the delay as a Scala duration (see SessionOptions.withBatching). */
    def batching(maxRows: Int, delay: FiniteDuration): SessionOptions =
      o.withBatching(maxRows, delay.toJava)
  }

  implicit final class DispatcherOps(private val d: Dispatcher) extends AnyVal {
    /** Runs `body` on the dispatcher's thread (inline when already there) and returns its value. */
    def apply[T](body: => T): T = d.run(() => body)
  }
}
