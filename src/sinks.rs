//! Handing a run's events to several sinks at once: the events file, the progress display,
//! the trace and the summary's record of failures each take every event.

use std::sync::Arc;

use weft_runtime::{Event, EventSink};

/// Passes every event to each of its sinks, in order.
pub struct Tee {
    sinks: Vec<Arc<dyn EventSink>>,
}

impl Tee {
    /// One sink for all of `sinks`: `None` when there is none, the sink itself when there is
    /// one (no copy of each event), and a `Tee` otherwise.
    pub fn of(mut sinks: Vec<Arc<dyn EventSink>>) -> Option<Arc<dyn EventSink>> {
        match sinks.len() {
            0 => None,
            1 => sinks.pop(),
            _ => Some(Arc::new(Self { sinks })),
        }
    }
}

impl EventSink for Tee {
    fn emit(&self, event: Event) {
        let Some((last, first)) = self.sinks.split_last() else {
            return;
        };

        for sink in first {
            sink.emit(event.clone());
        }
        last.emit(event);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use weft_runtime::EventKind;

    use super::*;

    /// Keeps the kinds of the events it is given.
    #[derive(Default)]
    struct Kinds(Mutex<Vec<EventKind>>);

    impl EventSink for Kinds {
        fn emit(&self, event: Event) {
            self.0.lock().unwrap().push(event.kind);
        }
    }

    #[test]
    fn every_sink_of_a_tee_sees_every_event_in_order() {
        let (first, second) = (Arc::new(Kinds::default()), Arc::new(Kinds::default()));
        let tee = Tee::of(vec![first.clone(), second.clone()]).unwrap();
        let run: Arc<str> = Arc::from("r1");

        tee.emit(Event::new(EventKind::RunStarted, &run));
        tee.emit(Event::new(EventKind::RunFinished, &run));

        let expected = [EventKind::RunStarted, EventKind::RunFinished];
        assert_eq!(*first.0.lock().unwrap(), expected);
        assert_eq!(*second.0.lock().unwrap(), expected);
    }

    #[test]
    fn a_tee_of_no_sink_is_no_sink_and_of_one_is_that_sink() {
        let only: Arc<dyn EventSink> = Arc::new(Kinds::default());

        assert!(Tee::of(Vec::new()).is_none());
        assert!(Arc::ptr_eq(&Tee::of(vec![only.clone()]).unwrap(), &only));
    }
}
