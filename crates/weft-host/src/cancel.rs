//! A job's cancellation flag, shared by the engine, which sets it, and the plugin, which
//! reads it and waits on it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A job's cancellation: an atomic flag that the plugin reads, and waits on it that end as
/// soon as it is set.
///
/// On Linux a wait sleeps on the flag itself (a futex), so that setting a flag shared by a
/// thousand waiting jobs wakes them all with one system call and no lock for them to queue
/// on. Elsewhere a mutex and a condition variable do the same, more slowly.
#[derive(Debug, Default)]
pub struct CancelFlag {
    pub(crate) flag: AtomicU32,
    /// How many threads wait, so that setting a flag nobody waits on costs no system call.
    waiters: AtomicU32,
    #[cfg(not(target_os = "linux"))]
    sleep: portable::Sleep,
}

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag and wakes every wait on it.
    pub fn cancel(&self) {
        self.flag.store(1, Ordering::SeqCst);
        // A waiter counts itself before it reads the flag, and this reads the count after
        // setting it: one of the two sees the other.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.wake_all();
        }
    }

    /// Whether the flag is set.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire) != 0
    }

    /// Waits up to `timeout`; returns `true` as soon as the flag is set.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let cancelled = loop {
            if self.flag.load(Ordering::SeqCst) != 0 {
                break true;
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                break false;
            }
            self.sleep(left);
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        cancelled
    }

    /// Sleeps until woken, at most `left`, unless the flag is set already. It may return
    /// early for no reason; the caller checks again.
    #[cfg(target_os = "linux")]
    fn sleep(&self, left: Duration) {
        use rustix::thread::futex;
        let timeout = futex::Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        // Returns at once if the flag is no longer 0; an error (interrupted, timed out) is
        // only a reason to look again.
        let _ = futex::wait(&self.flag, futex::Flags::PRIVATE, 0, Some(&timeout));
    }

    #[cfg(target_os = "linux")]
    fn wake_all(&self) {
        use rustix::thread::futex;
        let _ = futex::wake(&self.flag, futex::Flags::PRIVATE, i32::MAX as u32);
    }

    #[cfg(not(target_os = "linux"))]
    fn sleep(&self, left: Duration) {
        self.sleep.sleep(&self.flag, left);
    }

    #[cfg(not(target_os = "linux"))]
    fn wake_all(&self) {
        self.sleep.wake_all();
    }
}

#[cfg(not(target_os = "linux"))]
mod portable {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Condvar, Mutex, PoisonError};
    use std::time::Duration;

    /// Sleeping on a flag with a mutex and a condition variable.
    #[derive(Debug, Default)]
    pub(super) struct Sleep {
        lock: Mutex<()>,
        wake: Condvar,
    }

    impl Sleep {
        pub(super) fn sleep(&self, flag: &AtomicU32, left: Duration) {
            let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            if flag.load(Ordering::SeqCst) == 0 {
                let _ = self.wake.wait_timeout(guard, left);
            }
        }

        pub(super) fn wake_all(&self) {
            // Taking the lock orders this after a sleeper's check of the flag.
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.wake.notify_all();
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
    fn one_cancel_wakes_every_wait_on_the_flag() {
        let flag = std::sync::Arc::new(CancelFlag::new());
        let waiters: Vec<_> = (0..16)
            .map(|_| {
                let flag = flag.clone();
                std::thread::spawn(move || flag.wait(Duration::from_secs(60)))
            })
            .collect();
        while flag.waiters.load(Ordering::SeqCst) < 16 {
            std::thread::yield_now();
        }

        flag.cancel();

        for waiter in waiters {
            assert!(waiter.join().unwrap());
        }
    }

    #[test]
    fn a_wait_on_a_set_flag_returns_at_once() {
        let flag = CancelFlag::new();
        flag.cancel();
        assert!(flag.wait(Duration::from_secs(60)));
    }

    #[test]
    fn a_wait_without_cancellation_times_out() {
        assert!(!CancelFlag::new().wait(Duration::from_millis(5)));
    }
}
