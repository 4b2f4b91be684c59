//! The projector's in-memory (run, metric key) → series map, with each series' latest value,
//! so a logged metric updates `latest_metrics` without reading DuckDB, and a history read
//! finds its series id without scanning `latest_metrics` (DuckDB uses no index for a
//! two-column equality). It is kept compact:
//! run ids and keys are interned once (keys repeat across runs), a series is a pair of small
//! indices. At the MLflow bench's 1.2 M series, a map of owned string pairs held ~240 MB.

use std::collections::HashMap;

use crate::events::MetricPoint;

/// Latest value of one metric series, ordered as MLflow does: step, then timestamp, then value
/// (NaN above every number).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    pub step: i64,
    pub timestamp: i64,
    pub value: f64,
}

impl Latest {
    pub fn of(m: &MetricPoint) -> Latest {
        Latest {
            step: m.step,
            timestamp: m.timestamp,
            value: m.value_f64(),
        }
    }

    pub fn newer_than(&self, other: &Latest) -> bool {
        let value_cmp = match (self.value.is_nan(), other.value.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => self.value.total_cmp(&other.value),
        };
        (self.step, self.timestamp)
            .cmp(&(other.step, other.timestamp))
            .then(value_cmp)
            .is_gt()
    }
}

/// Strings stored once, each named by its index.
#[derive(Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.into());
        self.ids.insert(s.into(), i);
        i
    }

    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
}

struct Entry {
    id: i64,
    run: u32,
    key: u32,
    latest: Latest,
}

/// A series as the projector writes it to `latest_metrics`.
pub struct SeriesRow<'a> {
    pub id: i64,
    pub run_id: &'a str,
    pub key: &'a str,
    pub latest: Latest,
}

/// Where [`SeriesMap::track`] put a value: the slot to pass to [`SeriesMap::row`] when the
/// series' latest value must be written.
pub type Slot = u32;

#[derive(Default)]
pub struct SeriesMap {
    runs: Interner,
    keys: Interner,
    slots: HashMap<(u32, u32), Slot>,
    entries: Vec<Entry>,
    next_id: i64,
}

impl SeriesMap {
    /// A series read back from `latest_metrics`.
    pub fn insert(&mut self, id: i64, run_id: &str, key: &str, latest: Latest) {
        let (run, key) = (self.runs.intern(run_id), self.keys.intern(key));
        let slot = self.entries.len() as Slot;
        self.entries.push(Entry {
            id,
            run,
            key,
            latest,
        });
        self.slots.insert((run, key), slot);
        self.next_id = self.next_id.max(id + 1);
    }

    /// Note a logged value: returns its series id, and the slot when the series is new or its
    /// latest value changed.
    pub fn track(&mut self, run_id: &str, m: &MetricPoint) -> (i64, Option<Slot>) {
        let candidate = Latest::of(m);
        let found = self
            .runs
            .get(run_id)
            .zip(self.keys.get(&m.key))
            .and_then(|k| self.slots.get(&k).copied());
        match found {
            Some(slot) => {
                let e = &mut self.entries[slot as usize];
                if candidate.newer_than(&e.latest) {
                    e.latest = candidate;
                    (e.id, Some(slot))
                } else {
                    (e.id, None)
                }
            }
            None => {
                let id = self.next_id;
                self.insert(id, run_id, &m.key, candidate);
                (id, Some(self.entries.len() as Slot - 1))
            }
        }
    }

    /// The id of the series of `key` in `run_id`, if anything was logged to it.
    pub fn id(&self, run_id: &str, key: &str) -> Option<i64> {
        let k = self.runs.get(run_id).zip(self.keys.get(key))?;
        self.slots
            .get(&k)
            .map(|&slot| self.entries[slot as usize].id)
    }

    pub fn row(&self, slot: Slot) -> SeriesRow<'_> {
        let e = &self.entries[slot as usize];
        SeriesRow {
            id: e.id,
            run_id: &self.runs.names[e.run as usize],
            key: &self.keys.names[e.key as usize],
            latest: e.latest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(key: &str, step: i64, value: f64) -> MetricPoint {
        serde_json::from_value(serde_json::json!({
            "key": key, "value": value, "timestamp": 1, "step": step
        }))
        .unwrap()
    }

    #[test]
    fn series_are_numbered_once_and_track_the_latest_value() {
        let mut m = SeriesMap::default();
        m.insert(7, "run-a", "loss", Latest::of(&point("loss", 3, 0.5)));
        // An older step: same series, nothing to write.
        assert_eq!(m.track("run-a", &point("loss", 2, 0.1)), (7, None));
        let (id, slot) = m.track("run-a", &point("loss", 4, 0.4));
        assert_eq!(id, 7);
        assert_eq!(m.row(slot.unwrap()).latest.step, 4);
        // New series continue after the highest id read back.
        let (id, slot) = m.track("run-b", &point("loss", 0, 1.0));
        assert_eq!(id, 8);
        let row = m.row(slot.unwrap());
        assert_eq!((row.id, row.run_id, row.key), (8, "run-b", "loss"));
        assert_eq!(m.track("run-a", &point("acc", 0, 1.0)).0, 9);
        assert_eq!(m.id("run-b", "loss"), Some(8));
        assert_eq!(m.id("run-b", "acc"), None);
        assert_eq!(m.id("run-c", "loss"), None);
    }
}
