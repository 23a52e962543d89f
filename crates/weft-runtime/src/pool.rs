//! The worker pool: the OS threads that run jobs, shared by every stage of every run in the
//! process.
//!
//! Jobs are blocking calls into native code, so they never run on the async runtime's
//! threads. The pool has two lanes: a fixed set of compute threads, and a waiting lane that
//! grows on demand (up to its limit) for jobs that mostly wait on a process, a socket or a
//! timer. Each lane has a bounded number of slots, handed out by a fair (first come, first
//! served) semaphore: a job holds a slot from the moment it is queued until it returns, so
//! the queue never holds more than the slots, and stages waiting for slots are served in
//! turn, so one wide fan-out does not starve another branch.
//!
//! The pool deals in batches, because per-job hand-offs cost more than a short job: a stage
//! takes as many free slots as it can use in one step ([`Pool::try_slots`]), queues its jobs
//! under one lock ([`Pool::submit`]), wakes only threads that are idle, and gives slots back
//! many at a time ([`Slots::release`]).
//!
//! # Abandoned jobs
//!
//! A cancelled job that does not return within the grace period is abandoned: its stage
//! gives its slot back at once and starts a thread in its place ([`Pool::replace_thread`]);
//! the stuck thread ends when the job finally returns, because its task says so. Abandoned
//! jobs never shrink the pool.
//!
//! A queued job that is cancelled before a thread takes it is dropped: its stage gives its
//! slot back at once, and the thread that later takes its task finds it dropped and goes on
//! to the next, without calling it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Jobs queued or running per compute thread: enough that a thread finds its next job
/// waiting when it finishes one, few enough that a fan-out holds little in memory.
const COMPUTE_SLOTS_PER_WORKER: usize = 64;

/// How many times an idle compute thread yields its core, looking for work, before it
/// sleeps.
const LINGER_YIELDS: usize = 64;

/// The size of the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Compute threads; the available cores by default.
    pub workers: usize,
    /// The most threads of the waiting lane (256 by default).
    pub wait_workers: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            wait_workers: 256,
        }
    }
}

/// Which lane a job runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// The fixed compute threads.
    Compute,
    /// The growing lane for jobs that mostly wait.
    Waiting,
}

/// Work that runs on a pool thread.
pub trait Work: Send + Sync {
    /// Runs the work. Returns whether its thread must retire: true when the work was
    /// abandoned while it ran, and a replacement took the thread's place.
    fn run(&self) -> bool;
}

/// A queued piece of work. It is shared, so that whoever queued it can still reach it (to
/// cancel or abandon it) while it runs, with no allocation besides its own.
pub type Task = Arc<dyn Work>;

/// The shared worker pool. Cloning it is cheap; every clone is the same pool.
#[derive(Clone)]
pub struct Pool {
    compute: Arc<LaneState>,
    waiting: Arc<LaneState>,
}

impl Pool {
    /// Starts the compute threads; the waiting lane starts empty.
    pub fn new(config: PoolConfig) -> Self {
        let workers = config.workers.max(1);
        let compute = LaneState::new(
            "weft-compute",
            workers,
            COMPUTE_SLOTS_PER_WORKER * workers,
            false,
        );
        let waiting = LaneState::new(
            "weft-wait",
            config.wait_workers.max(1),
            config.wait_workers.max(1),
            true,
        );
        for _ in 0..workers {
            compute.spawn_thread();
        }
        Self { compute, waiting }
    }

    fn lane(&self, lane: Lane) -> &Arc<LaneState> {
        match lane {
            Lane::Compute => &self.compute,
            Lane::Waiting => &self.waiting,
        }
    }

    /// How many jobs of a lane can be queued or running at once.
    pub fn slots(&self, lane: Lane) -> usize {
        self.lane(lane).slots
    }

    /// Waits for one slot in `lane`, fairly (first come, first served).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a future dropped before it completes holds no slot.
    pub async fn slot(&self, lane: Lane) -> Slots {
        let lane = self.lane(lane);
        lane.waiting.fetch_add(1, Ordering::SeqCst);
        let _counted = Counted(&lane.waiting);
        let permit = lane
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the pool's semaphores are never closed"));
        Slots {
            permit: Some(permit),
        }
    }

    /// Takes up to `most` slots of `lane` that are free now, without waiting; `None` when
    /// none is.
    ///
    /// While others wait in [`Pool::slot`], it takes only a share of the free slots, so that a
    /// stage giving slots back cannot take them all again before the waiting ones have theirs.
    pub fn try_slots(&self, lane: Lane, most: usize) -> Option<Slots> {
        let lane = self.lane(lane);
        let semaphore = &lane.semaphore;
        let free = semaphore.available_permits();
        let waiting = lane.waiting.load(Ordering::SeqCst);
        let share = if waiting == 0 {
            free
        } else {
            (free / (waiting + 1)).max(1)
        };
        let count = most.min(share);
        let count = u32::try_from(count).ok().filter(|count| *count > 0)?;
        let permit = semaphore.clone().try_acquire_many_owned(count).ok()?;
        Some(Slots {
            permit: Some(permit),
        })
    }

    /// Queues `tasks` on the threads of `lane`, in order. The caller holds a slot for each
    /// from before this call until the task returns (or is abandoned).
    pub fn submit(&self, lane: Lane, tasks: Vec<Task>) {
        if !tasks.is_empty() {
            self.lane(lane).push(tasks);
        }
    }

    /// Starts a thread in place of one stuck in an abandoned job. That thread ends when the
    /// job finally returns, as its task tells it to.
    pub fn replace_thread(&self, lane: Lane) {
        self.lane(lane).spawn_thread();
    }

    /// Threads alive in each lane, (compute, waiting), for tests and reports.
    pub fn threads(&self) -> (usize, usize) {
        (
            self.compute.alive.load(Ordering::SeqCst),
            self.waiting.alive.load(Ordering::SeqCst),
        )
    }
}

/// Takes one off a count when dropped.
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Slots of one lane: each is the right to queue one job. Dropped, they are free again.
#[derive(Default)]
pub struct Slots {
    permit: Option<OwnedSemaphorePermit>,
}

impl Slots {
    /// How many slots these are.
    pub fn count(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Adds `other`, which must be of the same lane.
    pub fn merge(&mut self, other: Slots) {
        match (&mut self.permit, other.permit) {
            (Some(permit), Some(other)) => permit.merge(other),
            (mine, other) => {
                if mine.is_none() {
                    *mine = other;
                }
            }
        }
    }

    /// Frees `count` of the slots (at most all of them) at once.
    pub fn release(&mut self, count: usize) {
        if count >= self.count() {
            self.permit = None;
        } else if let Some(permit) = &mut self.permit {
            drop(permit.split(count));
        }
    }
}

struct LaneState {
    name: &'static str,
    slots: usize,
    grows: bool,
    max_threads: usize,
    semaphore: Arc<Semaphore>,
    queue: Mutex<VecDeque<Task>>,
    ready: Condvar,
    alive: AtomicUsize,
    idle: AtomicUsize,
    /// Callers waiting in [`Pool::slot`].
    waiting: AtomicUsize,
    /// The queue's length, for a look without the lock.
    queued: AtomicUsize,
}

impl LaneState {
    fn new(name: &'static str, max_threads: usize, slots: usize, grows: bool) -> Arc<Self> {
        Arc::new(Self {
            name,
            slots,
            grows,
            max_threads,
            semaphore: Arc::new(Semaphore::new(slots)),
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            alive: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
        })
    }

    fn push(self: &Arc<Self>, tasks: Vec<Task>) {
        let added = tasks.len();
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.extend(tasks);
        self.queued.store(queue.len(), Ordering::Relaxed);
        let waiting = queue.len();
        // Read under the lock: a thread counts itself idle before it waits, holding the lock.
        let idle = self.idle.load(Ordering::SeqCst);
        drop(queue);

        // Waking a thread costs a system call: only as many as there are idle and new tasks.
        for _ in 0..idle.min(added) {
            self.ready.notify_one();
        }
        if self.grows {
            let mut missing = waiting.saturating_sub(idle);
            while missing > 0 && self.alive.load(Ordering::SeqCst) < self.max_threads {
                self.spawn_thread();
                missing -= 1;
            }
        }
    }

    /// Before a compute thread goes to sleep on an empty queue, it yields its core a few
    /// times while it looks for new work: the scheduler, woken by the result just left, often
    /// queues the next job within microseconds, and a thread that is still awake takes it
    /// without a wake-up through the kernel. Yielding leaves the core to any thread that
    /// needs it meanwhile.
    fn linger(&self) {
        for _ in 0..LINGER_YIELDS {
            if self.queued.load(Ordering::Relaxed) > 0 {
                return;
            }
            std::thread::yield_now();
        }
    }

    fn spawn_thread(self: &Arc<Self>) {
        self.alive.fetch_add(1, Ordering::SeqCst);
        let lane = self.clone();
        let spawned = std::thread::Builder::new()
            .name(self.name.to_owned())
            .spawn(move || lane.work());
        if spawned.is_err() {
            // The system refused a thread: the lane goes on with those it has.
            self.alive.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn work(self: Arc<Self>) {
        loop {
            if !self.grows {
                self.linger();
            }
            let task = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if let Some(task) = queue.pop_front() {
                        self.queued.store(queue.len(), Ordering::Relaxed);
                        break task;
                    }
                    self.idle.fetch_add(1, Ordering::SeqCst);
                    queue = self
                        .ready
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                    self.idle.fetch_sub(1, Ordering::SeqCst);
                }
            };
            // A panic here is the engine's own bug, not the plugin's (the SDK catches those):
            // the thread survives it.
            let retire = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run()))
                .unwrap_or(false);
            drop(task);
            if retire {
                self.alive.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Work from a closure, run once; it returns whether its thread retires.
    struct Once<F>(Mutex<Option<F>>);

    impl<F: FnOnce() -> bool + Send> Work for Once<F> {
        fn run(&self) -> bool {
            let job = self.0.lock().unwrap().take();
            job.is_some_and(|job| job())
        }
    }

    fn retiring(job: impl FnOnce() -> bool + Send + 'static) -> Task {
        Arc::new(Once(Mutex::new(Some(job))))
    }

    fn task(job: impl FnOnce() + Send + 'static) -> Task {
        retiring(move || {
            job();
            false
        })
    }

    #[test]
    fn tasks_run_on_pool_threads() {
        let pool = Pool::new(PoolConfig {
            workers: 2,
            wait_workers: 4,
        });
        let (sender, receiver) = mpsc::channel();

        let tasks = (0..10)
            .map(|value| {
                let sender = sender.clone();
                task(move || sender.send(value).unwrap())
            })
            .collect();
        pool.submit(Lane::Compute, tasks);

        let mut got: Vec<i32> = (0..10).map(|_| receiver.recv().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert_eq!(pool.threads().0, 2);
    }

    #[test]
    fn slots_are_taken_without_waiting_up_to_what_is_free_and_come_back_when_released() {
        let pool = Pool::new(PoolConfig {
            workers: 1,
            wait_workers: 3,
        });

        let mut held = pool.try_slots(Lane::Waiting, 2).unwrap();
        held.merge(pool.try_slots(Lane::Waiting, 5).unwrap());
        assert_eq!(held.count(), 3);
        assert!(pool.try_slots(Lane::Waiting, 1).is_none());

        held.release(2);
        assert_eq!(held.count(), 1);
        assert_eq!(pool.try_slots(Lane::Waiting, 5).unwrap().count(), 2);
        held.release(1);
        assert_eq!(held.count(), 0);
        let one = runtime().block_on(pool.slot(Lane::Waiting));
        assert_eq!(one.count(), 1);
    }

    #[test]
    fn while_a_stage_waits_for_a_slot_the_others_take_only_a_share_of_the_free_ones() {
        let pool = Pool::new(PoolConfig {
            workers: 1,
            wait_workers: 8,
        });
        let runtime = runtime();
        let mut all = pool.try_slots(Lane::Waiting, 8).unwrap();

        let waiter = {
            let pool = pool.clone();
            runtime.spawn(async move { pool.slot(Lane::Waiting).await })
        };
        runtime.block_on(tokio::task::yield_now());
        assert_eq!(pool.lane(Lane::Waiting).waiting.load(Ordering::SeqCst), 1);

        // The stage that gave slots back asks for them again before the waiter has run: one
        // of the five went to the waiter, and of the four left it gets half.
        all.release(5);
        let again = pool.try_slots(Lane::Waiting, 8).unwrap();
        assert_eq!(again.count(), 2);

        let served = runtime.block_on(waiter).unwrap();
        assert_eq!(served.count(), 1, "the waiter is served first");
        assert_eq!(pool.lane(Lane::Waiting).waiting.load(Ordering::SeqCst), 0);
        assert_eq!(pool.try_slots(Lane::Waiting, 8).unwrap().count(), 2);
    }

    #[test]
    fn the_waiting_lane_grows_to_run_waiting_jobs_at_once() {
        let pool = Pool::new(PoolConfig {
            workers: 1,
            wait_workers: 8,
        });
        let (sender, receiver) = mpsc::channel();
        let barrier = Arc::new(std::sync::Barrier::new(8));

        for _ in 0..8 {
            let (sender, barrier) = (sender.clone(), barrier.clone());
            let job = task(move || {
                barrier.wait();
                sender.send(()).unwrap();
            });
            pool.submit(Lane::Waiting, vec![job]);
        }

        for _ in 0..8 {
            receiver
                .recv_timeout(Duration::from_secs(10))
                .expect("eight waiting jobs run at once");
        }
    }

    #[test]
    fn a_replaced_thread_ends_when_its_task_returns() {
        let pool = Pool::new(PoolConfig {
            workers: 1,
            wait_workers: 1,
        });
        let (release, stuck) = mpsc::channel::<()>();
        let (done, finished) = mpsc::channel();

        pool.submit(
            Lane::Compute,
            vec![retiring(move || {
                let _ = stuck.recv();
                true
            })],
        );
        pool.replace_thread(Lane::Compute);
        pool.submit(Lane::Compute, vec![task(move || done.send(()).unwrap())]);

        finished
            .recv_timeout(Duration::from_secs(10))
            .expect("the replacement thread runs the next job");
        assert_eq!(pool.threads().0, 2);
        release.send(()).unwrap();
        for _ in 0..100 {
            if pool.threads().0 == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            pool.threads().0,
            1,
            "the stuck thread retires once its job returns"
        );
    }
}
