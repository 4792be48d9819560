package dev.strand.spark

import java.nio.file.Path

import dev.strand.{Model, Session, SessionOptions}

/** What makes two cached sessions the same: the model file and the session options. */
final case class SessionKey(path: String, intraOpThreads: Int) {
  def options: SessionOptions = SessionOptions.defaults().withIntraOpThreads(intraOpThreads)
}

/**
 * The JVM-wide session cache: every task thread of an executor that scores
 * with the same model file and options shares one strand Session (strand's
 * sessions take concurrent runs), so a model is loaded once per JVM, not
 * once per task or partition.
 *
 * What must hold:
 *  - at most one entry per key; its model is loaded by the first acquirer,
 *    while later acquirers of that key wait for it (other keys do not);
 *  - a session is closed only when no lease on it is open: by eviction (more
 *    than `maxIdle` unleased entries, least recently released first), by
 *    [[closeIdle]], or by the JVM's shutdown hook;
 *  - a failed load is not cached: the next acquire tries again.
 */
object SessionCache {

  /** Unleased sessions kept for reuse; `strand.spark.cache.maxIdle` overrides it. */
  val maxIdle: Int = Integer.getInteger("strand.spark.cache.maxIdle", 4).intValue

  final class Entry private[SessionCache] (val key: SessionKey) {
    @volatile private[SessionCache] var session: Session = _
    @volatile private[SessionCache] var failure: Throwable = _
    private[SessionCache] var leases = 0 // guarded by the cache's lock
    private[SessionCache] var lastReleased = 0L // guarded by the cache's lock
    private[SessionCache] var loaded = false // guarded by this entry's lock
  }

  /** A share of one cached session; close it once, when the partition is done. */
  final class Lease private[SessionCache] (entry: Entry) extends AutoCloseable {
    private var open = true
    def session: Session = entry.session
    def key: SessionKey = entry.key
    override def close(): Unit = synchronized {
      if (open) {
        open = false
        release(entry)
      }
    }
  }

  private val lock = new Object
  private val entries = new java.util.HashMap[SessionKey, Entry]
  private var releases = 0L // a clock for least-recently-released
  private var loads = 0L // sessions created, ever

  Runtime.getRuntime.addShutdownHook(new Thread(() => closeAll(), "strand-spark-session-cache"))

  /** Leases the session for `key`, loading the model when no entry has it. */
  def acquire(key: SessionKey): Lease = {
    val entry = lock.synchronized {
      val e = entries.computeIfAbsent(key, k => new Entry(k))
      e.leases += 1
      e
    }
    try {
      entry.synchronized {
        if (!entry.loaded) {
          entry.loaded = true
          try {
            val model = Model.load(Path.of(key.path))
            try entry.session = model.newSession(key.options)
            finally model.close()
            lock.synchronized(loads += 1)
          } catch {
            case t: Throwable => entry.failure = t
          }
        }
      }
      if (entry.failure != null) {
        // Not cached: the entry leaves the map, so the next acquire loads afresh.
        lock.synchronized {
          entry.leases -= 1
          if (entries.get(key) eq entry) entries.remove(key)
        }
        throw entry.failure
      }
      new Lease(entry)
    } catch {
      case t: Throwable if entry.failure == null =>
        release(entry)
        throw t
    }
  }

  private def release(entry: Entry): Unit = {
    val evicted = lock.synchronized {
      entry.leases -= 1
      releases += 1
      entry.lastReleased = releases
      val idle = new java.util.ArrayList[Entry]
      entries.values.forEach(e => if (e.leases == 0) idle.add(e))
      idle.sort((a, b) => java.lang.Long.compare(a.lastReleased, b.lastReleased))
      val out = new java.util.ArrayList[Entry]
      var i = 0
      while (idle.size - i > maxIdle) {
        val e = idle.get(i)
        entries.remove(e.key)
        out.add(e)
        i += 1
      }
      out
    }
    evicted.forEach(e => closeEntry(e))
  }

  private def closeEntry(e: Entry): Unit = e.synchronized {
    if (e.session != null) {
      e.session.close()
      e.session = null
    }
  }

  /** Closes every session with no open lease; returns how many stay leased. */
  def closeIdle(): Int = {
    val (idle, busy) = lock.synchronized {
      val idle = new java.util.ArrayList[Entry]
      var busy = 0
      entries.values.removeIf { e =>
        if (e.leases == 0) { idle.add(e); true } else { busy += 1; false }
      }
      (idle, busy)
    }
    idle.forEach(e => closeEntry(e))
    busy
  }

  /** Closes everything, leased or not: only at JVM exit, when no task runs any more. */
  private def closeAll(): Unit = {
    val all = lock.synchronized {
      val a = new java.util.ArrayList[Entry](entries.values)
      entries.clear()
      a
    }
    all.forEach(e => closeEntry(e))
  }

  /** Sessions cached now (leased or idle). */
  def size: Int = lock.synchronized(entries.size)

  /** Leases open now, over all entries. */
  def openLeases: Int = lock.synchronized {
    var n = 0
    entries.values.forEach(e => n += e.leases)
    n
  }

  /** Sessions created so far, ever (for tests: one per key while it stays cached). */
  def sessionsCreated: Long = lock.synchronized(loads)
}
