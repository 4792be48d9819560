package dev.strand;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelTest {
  @Test
  void describesInputsAndOutputs() {
    try (Model m = Model.load(TestSupport.model("mlp_tiny.onnx"))) {
      List<ValueInfo> in = m.inputs();
      assertEquals(1, in.size());
      ValueInfo x = in.get(0);
      assertEquals("input", x.name());
      assertEquals(DType.FLOAT32, x.dtype());
      assertEquals(2, x.rank());
      assertEquals(-1, x.shape()[0]);
      assertEquals(16, x.shape()[1]);
      assertEquals(Optional.of("batch"), x.dimName(0));
      assertEquals(Optional.empty(), x.dimName(1));
      assertEquals("input: float32 [batch, 16]", x.toString());
      assertEquals("output: float32 [batch, 4]", m.output("output").toString());
      assertEquals("pytorch", m.producerName());
      assertFalse(m.producerVersion().isEmpty());
      assertEquals("main_graph", m.graphName());
      assertEquals(8, m.irVersion());
      assertEquals(Map.of("", 17L), m.opsets());
      assertEquals(1732, m.parameterCount());
      assertEquals(1732 * 4, m.parameterBytes());
      m.checkSupported();
      assertTrue(m.toString().startsWith("Model[") && m.toString().contains("mlp_tiny.onnx"));
      assertThrows(IllegalArgumentException.class, () -> m.input("nope"));
    }
  }

  @Test
  void loadsFromBytesAndBuffers() throws Exception {
    byte[] bytes = Files.readAllBytes(TestSupport.model("mlp_tiny.onnx"));
    try (Model a = Model.load(bytes)) {
      assertEquals("input", a.inputs().get(0).name());
      assertEquals("Model[" + bytes.length + " bytes]", a.toString());
    }
    ByteBuffer direct = ByteBuffer.allocateDirect(bytes.length + 3);
    direct.position(3);
    direct.put(bytes);
    direct.position(3);
    try (Model b = Model.load(direct);
        Model c = Model.load(ByteBuffer.wrap(bytes))) {
      assertEquals(b.outputs().get(0).name(), c.outputs().get(0).name());
    }
    byte[] padded = new byte[bytes.length + 10];
    System.arraycopy(bytes, 0, padded, 5, bytes.length);
    try (Model d = Model.load(padded, 5, bytes.length)) {
      assertEquals(1, d.outputs().size());
    }
    assertThrows(IllegalArgumentException.class, () -> Model.load(bytes, 5, bytes.length));
  }

  @Test
  void badModelsGiveStrandsStatusAndMessage(@TempDir Path dir) throws Exception {
    StrandException io = assertThrows(StrandException.class,
        () -> Model.load(dir.resolve("absent.onnx")));
    assertEquals(Status.IO, io.status());
    assertTrue(io.strandMessage().contains("absent.onnx"), io.getMessage());
    assertTrue(io.getMessage().startsWith("STRAND_E_IO: "), io.getMessage());

    StrandException bad = assertThrows(StrandException.class,
        () -> Model.load(new byte[] {0x0a, (byte) 0xff, 0x7f, 0x01}));
    assertEquals(Status.MALFORMED_MODEL, bad.status());
    assertFalse(bad.strandMessage().isEmpty());

    byte[] good = Files.readAllBytes(TestSupport.model("mlp_tiny.onnx"));
    Path truncated = dir.resolve("truncated.onnx");
    Files.write(truncated, java.util.Arrays.copyOf(good, good.length / 2));
    StrandException cut = assertThrows(StrandException.class, () -> Model.load(truncated));
    assertEquals(Status.MALFORMED_MODEL, cut.status());
  }

  @Test
  void useAfterClose() {
    Model m = Model.load(TestSupport.model("mlp_tiny.onnx"));
    String name = m.toString();
    m.close();
    IllegalStateException e = assertThrows(IllegalStateException.class, m::inputs);
    assertEquals(name + " is closed", e.getMessage());
    assertThrows(IllegalStateException.class, m::opsets);
    assertThrows(IllegalStateException.class, m::newSession);
  }

  @Test
  void sharedByManyThreads() throws Exception {
    try (Model m = Model.load(TestSupport.model("cnn_tiny.onnx"))) {
      Thread[] threads = new Thread[8];
      Throwable[] failures = new Throwable[threads.length];
      for (int i = 0; i < threads.length; i++) {
        int k = i;
        threads[i] = new Thread(() -> {
          try {
            for (int j = 0; j < 200; j++) {
              assertEquals(1, m.inputs().size());
              assertFalse(m.opsets().isEmpty());
              m.checkSupported();
            }
          } catch (Throwable t) {
            failures[k] = t;
          }
        });
        threads[i].start();
      }
      for (int i = 0; i < threads.length; i++) {
        threads[i].join();
        if (failures[i] != null) {
          throw new AssertionError(failures[i]);
        }
      }
    }
  }
}
