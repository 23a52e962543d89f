//! A job's cancellation flag, shared by the engine, which sets it, and the plugin, which
//! reads it and waits on it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A job's cancellation: an atomic flag that the plugin reads, and a condition variable that
/// wakes the plugin's waits at once.
#[derive(Debug, Default)]
pub struct CancelFlag {
    pub(crate) flag: AtomicU32,
    lock: Mutex<()>,
    wake: Condvar,
}

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag and wakes every wait on it.
    pub fn cancel(&self) {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.flag.store(1, Ordering::Release);
        self.wake.notify_all();
    }

    /// Whether the flag is set.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire) != 0
    }

    /// Waits up to `timeout`; returns `true` as soon as the flag is set.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.is_cancelled() {
                return true;
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            guard = self
                .wake
                .wait_timeout(guard, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_returns_at_once_when_cancelled() {
        let flag = std::sync::Arc::new(CancelFlag::new());
        let waiter = {
            let flag = flag.clone();
            std::thread::spawn(move || flag.wait(Duration::from_secs(60)))
        };

        flag.cancel();

        assert!(waiter.join().unwrap());
    }

    #[test]
    fn a_wait_without_cancellation_times_out() {
        assert!(!CancelFlag::new().wait(Duration::from_millis(5)));
    }
}
