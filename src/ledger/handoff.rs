//! Events the ledger has just appended, handed to the projector still decoded.
//!
//! Decoding a large telemetry batch again from its JSON cost the projector a third of its
//! time, and under a burst the projector is what falls behind. An event enters only after
//! its append is durable and is the very value that was serialised, so projecting it equals
//! projecting the log; anything missing (after a restart, in a rebuild, or when the
//! projector is far behind and the handoff is full) is decoded from the log as before.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::events::Event;
use crate::log::Position;

/// Rows held at most (a telemetry record or a metric value is one row; any other event
/// counts as one): about 100 MB of decoded telemetry, a burst of well under a second.
const MAX_ROWS: usize = 250_000;

#[derive(Default)]
pub struct Handoff {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    events: BTreeMap<Position, (Arc<Event>, usize)>,
    rows: usize,
}

fn rows(event: &Event) -> usize {
    match event {
        Event::TelemetryIngested { events, .. } => events.len().max(1),
        Event::MetricsLogged { metrics, .. } => metrics.len().max(1),
        _ => 1,
    }
}

impl Handoff {
    /// Offer events durably appended at consecutive positions from `first`. Dropped when
    /// the handoff is full: the projector then decodes them from the log.
    pub fn offer(&self, first: Position, events: &[Arc<Event>]) {
        let mut inner = self.inner.lock();
        for (position, event) in (first..).zip(events) {
            let n = rows(event);
            if inner.rows + n > MAX_ROWS {
                return;
            }
            inner.rows += n;
            inner.events.insert(position, (event.clone(), n));
        }
    }

    /// The event at `position`, if it was handed off. Older entries are dropped: the
    /// projector never goes back (it decoded those from the log).
    pub fn take(&self, position: Position) -> Option<Arc<Event>> {
        let mut inner = self.inner.lock();
        while let Some(entry) = inner.events.first_entry() {
            if *entry.key() >= position {
                break;
            }
            let (_, n) = entry.remove();
            inner.rows -= n;
        }
        let (event, n) = inner.events.remove(&position)?;
        inner.rows -= n;
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: usize) -> Arc<Event> {
        Arc::new(Event::ExperimentTagDeleted {
            experiment_id: n as i64,
            key: "k".into(),
        })
    }

    #[test]
    fn takes_in_order_and_drops_what_was_passed() {
        let h = Handoff::default();
        h.offer(10, &[tag(0), tag(1), tag(2)]);
        assert!(h.take(9).is_none());
        assert_eq!(h.take(11), Some(tag(1)), "position 10 is passed over");
        assert!(h.take(10).is_none(), "dropped once passed");
        assert_eq!(h.take(12), Some(tag(2)));
        assert_eq!(h.inner.lock().rows, 0);
    }

    #[test]
    fn a_full_handoff_refuses_more() {
        let h = Handoff::default();
        let all: Vec<_> = (0..MAX_ROWS + 5).map(tag).collect();
        h.offer(0, &all);
        assert_eq!(h.inner.lock().rows, MAX_ROWS);
        assert!(h.take((MAX_ROWS - 1) as Position).is_some());
        assert!(h.take(MAX_ROWS as Position).is_none());
    }
}
