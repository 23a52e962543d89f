//! The live jobs of a stage: those that started and have not ended.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;

use super::attempt::Attempt;
use crate::events::WorkerSpan;
use crate::state::{ErrorInfo, JobStatus};

/// A live job: its place in the stage's table of live jobs, and its item's index. The
/// index tells a job from a later one given the same place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Key {
    pub(super) place: usize,
    pub(super) index: usize,
}

/// A job that has started and not ended: in the pool, or waiting to retry.
pub(super) struct Live {
    pub(super) index: usize,
    pub(super) attempt: u32,
    /// When the current attempt was queued, when something needs to know.
    pub(super) started: Option<Instant>,
    /// The attempt in the pool; `None` while the job waits to retry.
    pub(super) running: Option<Arc<Attempt>>,
    pub(super) timed_out: bool,
    pub(super) cancelled: bool,
    /// The last failed attempt, which the job ends with if no other attempt follows.
    pub(super) last: Option<(JobStatus, ErrorInfo, Option<WorkerSpan>)>,
    /// The job's place under the workflow's `max_parallel`, held until it ends.
    pub(super) _permit: Option<OwnedSemaphorePermit>,
}

impl Live {
    pub(super) fn last_error(&self) -> Option<ErrorInfo> {
        self.last.as_ref().map(|(_, error, _)| error.clone())
    }
}

/// The live jobs of a stage, each in a numbered place that a later job reuses once it ends.
#[derive(Default)]
pub(super) struct Table {
    places: Vec<Option<Live>>,
    free: Vec<usize>,
    len: usize,
}

impl Table {
    pub(super) fn insert(&mut self, live: Live) -> Key {
        let index = live.index;
        let place = match self.free.pop() {
            Some(place) => {
                self.places[place] = Some(live);
                place
            }
            None => {
                self.places.push(Some(live));
                self.places.len() - 1
            }
        };
        self.len += 1;
        Key { place, index }
    }

    pub(super) fn get(&self, key: Key) -> Option<&Live> {
        self.places
            .get(key.place)?
            .as_ref()
            .filter(|live| live.index == key.index)
    }

    pub(super) fn get_mut(&mut self, key: Key) -> Option<&mut Live> {
        self.places
            .get_mut(key.place)?
            .as_mut()
            .filter(|live| live.index == key.index)
    }

    pub(super) fn remove(&mut self, key: Key) -> Option<Live> {
        self.get(key)?;
        self.len -= 1;
        self.free.push(key.place);
        self.places[key.place].take()
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.places.iter().enumerate().filter_map(|(place, live)| {
            live.as_ref().map(|live| Key {
                place,
                index: live.index,
            })
        })
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }
}
