//! Idempotency: the ids of recently accepted events, so a retried batch is counted once.
//!
//! Memory is bounded: ids live in generations; when the newest generation is full the oldest
//! is dropped. Every id among the last `capacity * (GENERATIONS - 1) / GENERATIONS` accepted is
//! guaranteed to be recognised (about 25 bytes each).

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use parking_lot::Mutex;
use uuid::Uuid;

const GENERATIONS: usize = 4;
const SHARDS: usize = 16;

/// splitmix64's finaliser: every input bit affects every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fast hash of a 128-bit id. Ids are not trusted to be random: time-ordered UUIDs (v7)
/// and counter-made ids share most bits, which clusters a hash table that uses raw bits.
fn hash_id(v: u128) -> u64 {
    mix((v as u64) ^ mix((v >> 64) as u64))
}

#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = mix(self.0 ^ u64::from(*b));
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = hash_id(v);
    }
}

type IdSet = HashSet<u128, BuildHasherDefault<IdHasher>>;

struct Shard {
    generations: VecDeque<IdSet>,
    per_generation: usize,
}

impl Shard {
    fn contains(&self, id: u128) -> bool {
        self.generations.iter().any(|g| g.contains(&id))
    }

    fn insert(&mut self, id: u128) {
        if self
            .generations
            .back()
            .is_none_or(|g| g.len() >= self.per_generation)
        {
            if self.generations.len() == GENERATIONS {
                self.generations.pop_front();
            }
            self.generations.push_back(IdSet::default());
        }
        if let Some(g) = self.generations.back_mut() {
            g.insert(id);
        }
    }

    fn remove(&mut self, id: u128) {
        for g in &mut self.generations {
            g.remove(&id);
        }
    }
}

pub struct DedupeIndex {
    shards: Vec<Mutex<Shard>>,
}

impl DedupeIndex {
    /// Remember at least `window` recent ids.
    pub fn new(window: usize) -> DedupeIndex {
        let per_generation = (window / SHARDS / (GENERATIONS - 1)).max(1);
        DedupeIndex {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        generations: VecDeque::new(),
                        per_generation,
                    })
                })
                .collect(),
        }
    }

    fn shard(&self, id: u128) -> &Mutex<Shard> {
        // The top bits: the table inside the shard indexes by the low ones.
        &self.shards[(hash_id(id) >> 60) as usize % SHARDS]
    }

    /// Claim each id; returns, per id, whether it is new (seen neither before nor earlier in
    /// `ids`). Claimed ids count as seen until [`release`](Self::release)d.
    pub fn claim(&self, ids: &[Uuid]) -> Vec<bool> {
        ids.iter()
            .map(|id| {
                let v = id.as_u128();
                let mut shard = self.shard(v).lock();
                if shard.contains(v) {
                    false
                } else {
                    shard.insert(v);
                    true
                }
            })
            .collect()
    }

    /// Forget ids whose append failed, so a retry is accepted.
    pub fn release(&self, ids: &[Uuid]) {
        for id in ids {
            let v = id.as_u128();
            self.shard(v).lock().remove(v);
        }
    }

    /// Record ids read back from the log on start-up.
    pub fn remember(&self, id: Uuid) {
        let v = id.as_u128();
        let mut shard = self.shard(v).lock();
        if !shard.contains(v) {
            shard.insert(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_within_and_across_calls() {
        let idx = DedupeIndex::new(1000);
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert_eq!(idx.claim(&[a, b, a]), [true, true, false]);
        assert_eq!(idx.claim(&[b]), [false]);
        idx.release(&[b]);
        assert_eq!(idx.claim(&[b]), [true]);
    }

    #[test]
    fn structured_ids_spread_over_shards() {
        let idx = DedupeIndex::new(1_000_000);
        // Counter-made ids differ only in a few high bytes.
        let ids: Vec<Uuid> = (0..16_000u128).map(|i| Uuid::from_u128(i << 96)).collect();
        assert!(idx.claim(&ids).iter().all(|new| *new));
        let busiest = idx
            .shards
            .iter()
            .map(|s| s.lock().generations.iter().map(|g| g.len()).sum::<usize>())
            .max()
            .unwrap();
        assert!(busiest < 2 * 16_000 / SHARDS, "{busiest} ids in one shard");
    }

    #[test]
    fn the_window_is_bounded_but_keeps_recent_ids() {
        let window = 16 * 3 * 10;
        let idx = DedupeIndex::new(window);
        let ids: Vec<Uuid> = (0..10 * window).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            idx.remember(*id);
        }
        let recent = &ids[ids.len() - window / 4..];
        assert!(idx.claim(recent).iter().all(|new| !new));
        let total: usize = idx
            .shards
            .iter()
            .map(|s| s.lock().generations.iter().map(|g| g.len()).sum::<usize>())
            .sum();
        assert!(total <= window * GENERATIONS / (GENERATIONS - 1) + SHARDS);
    }
}
