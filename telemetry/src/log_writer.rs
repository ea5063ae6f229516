//! Where log lines go: stdout, written in batches by a thread of their own.
//!
//! A request formats its line and appends it to a shared buffer (a lock
//! held for a copy); the first line into an empty buffer wakes a writer
//! thread, which lets a few milliseconds of lines gather and writes them
//! with one syscall. An idle process's writer sleeps without waking. Per request that saves the
//! `write` (a pipe or a file) and a thread wake-up, which together were
//! about a tenth of a cache-hit GetProduct's CPU under load (oms-bench,
//! [perf]). Nothing is dropped: a buffer that outgrows its bound is
//! written by the thread that filled it. Batches reach stdout in the order
//! their lines were logged. On shutdown (dropping the [`LogFlusher`]) the
//! rest is written; a killed process loses the last few milliseconds.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a line may wait for the writer thread.
const FLUSH_EVERY: Duration = Duration::from_millis(5);
/// How long an idle writer sleeps before looking anyway.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Past this many bytes waiting, the logging thread writes them itself.
const MAX_PENDING: usize = 1 << 20;

type Sink = Box<dyn Write + Send>;

/// What batches are written to, and the buffer the last one was written
/// from: it becomes the next batch's, so under load the buffer keeps its
/// size instead of growing from nothing (and being copied as it grows)
/// every few milliseconds.
struct Output {
    sink: Sink,
    spare: Vec<u8>,
}

/// A buffer's starting size, and the most a spare one keeps after a burst.
const BUFFER: usize = 64 * 1024;
const KEPT: usize = 4 * BUFFER;

struct Shared {
    pending: Mutex<Vec<u8>>,
    /// The writer thread, woken by the first line into an empty buffer.
    writer: std::sync::OnceLock<std::thread::Thread>,
    /// Held while a batch is taken and written, so batches are written in
    /// the order they were taken.
    output: Mutex<Output>,
    stopping: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding either lock leaves plain bytes behind: usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn append(&self, line: &[u8]) {
        let (first, overflowing) = {
            let mut pending = lock(&self.pending);
            let first = pending.is_empty();
            pending.extend_from_slice(line);
            (first, pending.len() >= MAX_PENDING)
        };
        if overflowing {
            self.write_pending();
        } else if first && let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }

    fn write_pending(&self) {
        let mut output = lock(&self.output);
        let Output { sink, spare } = &mut *output;
        std::mem::swap(&mut *lock(&self.pending), spare);
        if !spare.is_empty() {
            // Nowhere to report a failed log write; the next batch tries again.
            let _ = sink.write_all(spare);
            let _ = sink.flush();
            spare.clear();
            spare.shrink_to(KEPT);
        }
    }
}

/// The `MakeWriter` for the fmt layer: each line goes to the shared buffer.
#[derive(Clone)]
pub(crate) struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Writes out what is buffered, and stops the writer thread, when dropped.
#[must_use = "lines still buffered are lost if this is leaked"]
pub(crate) struct LogFlusher {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for LogFlusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFlusher").finish_non_exhaustive()
    }
}

/// A batched writer onto `sink` and the flusher that owns its thread; if
/// the thread cannot start, lines are written as they come.
pub(crate) fn batched(sink: impl Write + Send + 'static) -> (BatchedWriter, LogFlusher) {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Vec::with_capacity(BUFFER)),
        writer: std::sync::OnceLock::new(),
        output: Mutex::new(Output {
            sink: Box::new(sink),
            spare: Vec::with_capacity(BUFFER),
        }),
        stopping: AtomicBool::new(false),
    });
    let worker = shared.clone();
    let thread = std::thread::Builder::new()
        .name("oms-log-writer".to_owned())
        .spawn(move || {
            while !worker.stopping.load(Ordering::Acquire) {
                // Until a line arrives (or shutdown; at most a second, so
                // no lost wake-up can hold a line longer); then let the
                // lines of the next few milliseconds join it.
                if lock(&worker.pending).is_empty() {
                    std::thread::park_timeout(IDLE_CHECK);
                }
                std::thread::sleep(FLUSH_EVERY);
                worker.write_pending();
            }
            worker.write_pending();
        })
        .ok();
    if let Some(thread) = &thread {
        let _ = shared.writer.set(thread.thread().clone());
    }
    let writer = BatchedWriter {
        shared: shared.clone(),
    };
    if thread.is_none() {
        // No thread: every line is written at once.
        shared.stopping.store(true, Ordering::Release);
    }
    (writer, LogFlusher { shared, thread })
}

impl Drop for LogFlusher {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        self.shared.write_pending();
    }
}

impl Write for BatchedWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.shared.append(line);
        if self.shared.stopping.load(Ordering::Acquire) {
            // After shutdown (or without a thread) nobody else will write.
            self.shared.write_pending();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedWriter {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that keeps each write; with a gate, its first write waits
    /// until the gate opens (a slow stdout).
    #[derive(Clone, Default)]
    struct Captured {
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
        gate: Arc<Mutex<Option<std::sync::mpsc::Receiver<()>>>>,
    }

    impl Captured {
        fn writes(&self) -> Vec<Vec<u8>> {
            self.writes.lock().unwrap().clone()
        }
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let gate = self.gate.lock().unwrap().take();
            if let Some(gate) = gate {
                let _ = gate.recv();
            }
            self.writes.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_whole_in_order_and_in_few_writes() {
        let captured = Captured::default();
        // stdout is slow: the first batch's write waits until every line
        // is logged, so whatever the threads' timing, the lines logged
        // meanwhile must wait in one buffer, not in a write each.
        let (open, gate) = std::sync::mpsc::channel();
        *captured.gate.lock().unwrap() = Some(gate);
        let (writer, flusher) = batched(captured.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        writer
                            .write_all(format!("thread {t} line {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        open.send(()).unwrap();
        drop(flusher);
        let writes = captured.writes();
        let text = String::from_utf8(writes.concat()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8_000, "nothing lost");
        for t in 0..4 {
            let prefix = format!("thread {t} line ");
            let own: Vec<usize> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&prefix))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(
                own,
                (0..2_000).collect::<Vec<_>>(),
                "each thread's lines in order"
            );
        }
        // The gated batch, then everything logged behind it.
        assert!(
            writes.len() <= 2,
            "lines are batched: {} writes",
            writes.len()
        );
    }

    #[test]
    fn a_line_logged_after_shutdown_is_still_written() {
        let captured = Captured::default();
        let (mut writer, flusher) = batched(captured.clone());
        drop(flusher);
        writer.write_all(b"late\n").unwrap();
        assert_eq!(captured.writes().concat(), b"late\n");
    }
}
