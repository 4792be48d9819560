package dev.strand.spark

import java.io.ByteArrayOutputStream

/**
 * Writes small ONNX models byte by byte (the protobuf wire format), for
 * tests that need a model the repository does not ship: here, an int64 Div
 * over [batch, n], which fails its run on a zero divisor.
 */
object TinyOnnx {
  private final class Msg {
    val out = new ByteArrayOutputStream
    private def varint(v0: Long): Unit = {
      var v = v0
      while ((v & ~0x7FL) != 0) { out.write(((v & 0x7F) | 0x80).toInt); v >>>= 7 }
      out.write(v.toInt)
    }
    def int(field: Int, v: Long): Msg = { varint((field << 3).toLong); varint(v); this }
    def bytes(field: Int, b: Array[Byte]): Msg = { varint(((field << 3) | 2).toLong); varint(b.length.toLong); out.write(b); this }
    def str(field: Int, s: String): Msg = bytes(field, s.getBytes("UTF-8"))
    def msg(field: Int, m: Msg): Msg = bytes(field, m.out.toByteArray)
  }

  private val Int64 = 7L

  /** A [batch, n] int64 tensor value named `name`. */
  private def value(name: String, n: Long): Msg = {
    val shape = new Msg().msg(1, new Msg().str(2, "batch")).msg(1, new Msg().int(1, n))
    val tensor = new Msg().int(1, Int64).msg(2, shape)
    new Msg().str(1, name).msg(2, new Msg().msg(1, tensor))
  }

  /** y = a / b, element-wise int64 over [batch, n]. */
  def divInt64(n: Long): Array[Byte] = {
    val node = new Msg().str(1, "a").str(1, "b").str(2, "y").str(3, "divide").str(4, "Div")
    val graph = new Msg().msg(1, node).str(2, "div_int64_batch")
      .msg(11, value("a", n)).msg(11, value("b", n)).msg(12, value("y", n))
    new Msg().int(1, 8).str(2, "strand-spark-tests").msg(7, graph)
      .msg(8, new Msg().str(1, "").int(2, 17)).out.toByteArray
  }
}
