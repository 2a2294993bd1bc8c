//! CPU time by thread, read from `/proc/self/task` (Linux): where a bench's work runs, when
//! several threads share the machine's two cores.

use std::collections::HashMap;
use std::time::Duration;

/// Time on the CPU of every thread of this process so far, summed by thread name (Linux
/// keeps the first 15 bytes of a name). Empty where `/proc/self/task` cannot be read.
#[derive(Debug, Clone)]
pub struct ThreadCpu {
    by_name: HashMap<String, Duration>,
}

impl ThreadCpu {
    /// Reads each thread's time on the CPU now (`/proc/self/task/*/schedstat`, in
    /// nanoseconds: finer than the clock ticks of `stat`).
    pub fn now() -> Self {
        let mut by_name = HashMap::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Self { by_name };
        };
        for task in tasks.flatten() {
            let dir = task.path();
            let (Ok(comm), Ok(schedstat)) = (
                std::fs::read_to_string(dir.join("comm")),
                std::fs::read_to_string(dir.join("schedstat")),
            ) else {
                // The thread ended between the listing and the reads.
                continue;
            };
            let Some(ns) = schedstat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            *by_name.entry(comm.trim_end().to_owned()).or_default() += Duration::from_nanos(ns);
        }
        Self { by_name }
    }

    /// The time every thread spent on the CPU since `earlier` (threads that ended since are
    /// not counted).
    pub fn since(&self, earlier: &Self) -> Duration {
        self.named_since("", earlier)
    }

    /// The time the threads whose names start with `prefix` spent on the CPU since
    /// `earlier`.
    pub fn named_since(&self, prefix: &str, earlier: &Self) -> Duration {
        self.by_name
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, t)| {
                t.saturating_sub(earlier.by_name.get(name).copied().unwrap_or_default())
            })
            .sum()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_is_counted_under_its_name() {
        let before = ThreadCpu::now();
        let start_of = before.clone();
        let spin = std::thread::Builder::new()
            .name("cpu-test-spin".to_owned())
            .spawn(move || {
                // Spins until its own counted time reaches 20 ms (or 5 s have passed).
                let start = std::time::Instant::now();
                loop {
                    for _ in 0..100_000 {
                        std::hint::black_box(0u64);
                    }
                    let now = ThreadCpu::now();
                    let spun = now.named_since("cpu-test-spin", &start_of);
                    if spun >= Duration::from_millis(20) || start.elapsed() > Duration::from_secs(5)
                    {
                        return (spun, now);
                    }
                }
            })
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let (spun, after) = spin.join().unwrap_or_else(|_| panic!("spin panicked"));
        assert!(spun >= Duration::from_millis(20), "{spun:?}");
        assert!(after.since(&before) >= spun);
        assert_eq!(after.named_since("no-such-thread", &before), Duration::ZERO);
    }
}
