package dev.strand;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Finds and loads libstrand_jni. In order:
 * <ol>
 *   <li>the system property {@code strand.library.path}: the library file, or a
 *       directory holding it;
 *   <li>the jar's resource {@code /native/<os>-<arch>/libstrand_jni.so}, copied
 *       to a temporary file that is deleted as soon as it is loaded;
 *   <li>{@code java.library.path} ({@code System.loadLibrary("strand_jni")}).
 * </ol>
 */
final class NativeLoader {
  static final String LIBRARY = "strand_jni";

  private NativeLoader() {}

  static void load() {
    String override = System.getProperty("strand.library.path");
    if (override != null && !override.isBlank()) {
      Path path = Path.of(override);
      if (Files.isDirectory(path)) {
        path = path.resolve(System.mapLibraryName(LIBRARY));
      }
      if (!Files.isRegularFile(path)) {
        throw new UnsatisfiedLinkError("strand: -Dstrand.library.path=" + override + ": no "
            + System.mapLibraryName(LIBRARY) + " there");
      }
      System.load(path.toAbsolutePath().toString());
      return;
    }
    String resource = "/native/" + platform() + "/" + System.mapLibraryName(LIBRARY);
    try (InputStream in = NativeLoader.class.getResourceAsStream(resource)) {
      if (in != null) {
        loadCopy(in);
        return;
      }
    } catch (IOException e) {
      throw new UncheckedIOException("strand: reading " + resource + " from the jar", e);
    }
    try {
      System.loadLibrary(LIBRARY);
    } catch (UnsatisfiedLinkError e) {
      UnsatisfiedLinkError error = new UnsatisfiedLinkError(
          "strand: no native library for " + platform() + ": the jar has no " + resource
              + ", java.library.path has no " + System.mapLibraryName(LIBRARY)
              + ", and -Dstrand.library.path is not set");
      error.initCause(e);
      throw error;
    }
  }

  /** Copies the library out of the jar, loads it and deletes the copy (the
   * mapping stays valid). */
  private static void loadCopy(InputStream in) throws IOException {
    Path dir = Files.createTempDirectory("strand-jni");
    Path file = dir.resolve(System.mapLibraryName(LIBRARY));
    try {
      Files.copy(in, file);
      System.load(file.toAbsolutePath().toString());
    } finally {
      Files.deleteIfExists(file);
      Files.deleteIfExists(dir);
    }
  }

  /** "linux-x86_64", "linux-aarch64", "mac-aarch64", ... */
  static String platform() {
    String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
    String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
    if (os.startsWith("linux")) {
      os = "linux";
    } else if (os.startsWith("mac") || os.startsWith("darwin")) {
      os = "mac";
    } else if (os.startsWith("windows")) {
      os = "windows";
    }
    if (arch.equals("amd64") || arch.equals("x86_64")) {
      arch = "x86_64";
    } else if (arch.equals("arm64") || arch.equals("aarch64")) {
      arch = "aarch64";
    }
    return os + "-" + arch;
  }
}
