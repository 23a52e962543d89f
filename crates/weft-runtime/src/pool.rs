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
//! # Abandoned jobs
//!
//! A cancelled job that does not return within the grace period is abandoned: its slot is
//! given back at once and a new thread replaces its own, which ends when the job finally
//! returns. Abandoned jobs never shrink the pool.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Jobs queued or running per compute thread: enough that a thread finds its next job
/// waiting when it finishes one, few enough that a fan-out holds little in memory.
const COMPUTE_SLOTS_PER_WORKER: usize = 64;

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

/// A queued job; it returns whether its thread must retire (its job was abandoned and a
/// replacement took the thread's place).
type Task = Box<dyn FnOnce() -> bool + Send>;

/// One job's place in the pool, from queueing to return (or abandonment).
pub struct Ticket {
    permit: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    abandoned: Arc<AtomicBool>,
    lane: Lane,
}

impl Ticket {
    /// Gives the slot back and replaces the thread the job is stuck on: called when a
    /// cancelled job did not return within the grace period.
    pub fn abandon(self, pool: &Pool) {
        self.abandoned.store(true, Ordering::SeqCst);
        self.permit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        pool.lane(self.lane).replace_thread();
    }
}

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

    /// Waits for a slot in `lane`, fairly (first come, first served).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a future dropped before it completes holds no slot.
    pub async fn slot(&self, lane: Lane) -> Slot {
        let permit = self
            .lane(lane)
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the pool's semaphores are never closed"));
        Slot { permit, lane }
    }

    /// Runs `task` on a thread of the slot's lane. The slot is held until the task returns or
    /// its [`Ticket`] is abandoned.
    pub fn run(&self, slot: Slot, task: impl FnOnce() + Send + 'static) -> Ticket {
        let permit = Arc::new(Mutex::new(Some(slot.permit)));
        let abandoned = Arc::new(AtomicBool::new(false));
        let ticket = Ticket {
            permit: permit.clone(),
            abandoned: abandoned.clone(),
            lane: slot.lane,
        };
        let lane = self.lane(slot.lane);
        lane.push(Box::new(move || {
            // A panic here is the engine's own bug, not the plugin's (the SDK catches those):
            // the thread survives it, and the job's result is lost, which its caller sees.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
            permit.lock().unwrap_or_else(PoisonError::into_inner).take();
            abandoned.load(Ordering::SeqCst)
        }));
        ticket
    }

    /// Threads alive in each lane, (compute, waiting), for tests and reports.
    pub fn threads(&self) -> (usize, usize) {
        (
            self.compute.alive.load(Ordering::SeqCst),
            self.waiting.alive.load(Ordering::SeqCst),
        )
    }
}

/// A slot in a lane: the right to queue one job.
pub struct Slot {
    permit: OwnedSemaphorePermit,
    lane: Lane,
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
        })
    }

    fn push(self: &Arc<Self>, task: Task) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.push_back(task);
        let waiting = queue.len();
        // Read under the lock: a thread counts itself idle before it waits, holding the lock.
        let idle = self.idle.load(Ordering::SeqCst);
        drop(queue);

        if self.grows && idle < waiting && self.alive.load(Ordering::SeqCst) < self.max_threads {
            self.spawn_thread();
        } else if idle > 0 {
            // Waking a thread costs a system call: only when one is waiting.
            self.ready.notify_one();
        }
    }

    fn replace_thread(self: &Arc<Self>) {
        self.spawn_thread();
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
            let task = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if let Some(task) = queue.pop_front() {
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
            if task() {
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

    #[test]
    fn tasks_run_on_pool_threads_and_give_their_slot_back() {
        let pool = Pool::new(PoolConfig {
            workers: 2,
            wait_workers: 4,
        });
        let (sender, receiver) = mpsc::channel();

        runtime().block_on(async {
            for value in 0..10 {
                let slot = pool.slot(Lane::Compute).await;
                let sender = sender.clone();
                pool.run(slot, move || sender.send(value).unwrap());
            }
        });

        let mut got: Vec<i32> = (0..10).map(|_| receiver.recv().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert_eq!(pool.threads().0, 2);
    }

    #[test]
    fn the_waiting_lane_grows_to_run_waiting_jobs_at_once() {
        let pool = Pool::new(PoolConfig {
            workers: 1,
            wait_workers: 8,
        });
        let (sender, receiver) = mpsc::channel();
        let barrier = Arc::new(std::sync::Barrier::new(8));

        runtime().block_on(async {
            for _ in 0..8 {
                let slot = pool.slot(Lane::Waiting).await;
                let (sender, barrier) = (sender.clone(), barrier.clone());
                pool.run(slot, move || {
                    barrier.wait();
                    sender.send(()).unwrap();
                });
            }
        });

        for _ in 0..8 {
            receiver
                .recv_timeout(Duration::from_secs(10))
                .expect("eight waiting jobs run at once");
        }
    }

    #[test]
    fn an_abandoned_job_is_replaced_and_its_thread_ends_when_it_returns() {
        let pool = Pool::new(PoolConfig {
            workers: 1,
            wait_workers: 1,
        });
        let (release, stuck) = mpsc::channel::<()>();
        let (done, finished) = mpsc::channel();

        let ticket = runtime().block_on(async {
            let slot = pool.slot(Lane::Compute).await;
            pool.run(slot, move || {
                let _ = stuck.recv();
            })
        });
        ticket.abandon(&pool);
        runtime().block_on(async {
            let slot = pool.slot(Lane::Compute).await;
            pool.run(slot, move || done.send(()).unwrap());
        });

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
