//! Idempotency: the ids of recently accepted events, so a retried batch is counted once.
//!
//! Memory is bounded: ids live in generations; when the newest generation is full the oldest
//! is dropped. Every id among the last `capacity * (GENERATIONS - 1) / GENERATIONS` accepted is
//! guaranteed to be recognised (about 25 bytes each).
//!
//! Each shard is one hash table whose entries carry their generation in the two low bits, so
//! an id that is not there (the usual case under ingest) costs one probe, not one per
//! generation. An entry is the id scrambled by a bijection with those two bits taken, so two
//! different ids share an entry only by a 2^-126 chance (and the ingest path stores SHA-256
//! prefixes, which no client can steer).

use hashbrown::HashTable;
use parking_lot::Mutex;
use uuid::Uuid;

const GENERATIONS: usize = 4;
const SHARDS: usize = 16;
/// The low bits of an entry that hold its generation (`GENERATIONS` is 4).
const GENERATION_BITS: u128 = 0b11;

/// splitmix64's finaliser: every input bit affects every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The id as the index keys it, generation bits clear. Three Feistel rounds over `mix` make a
/// bijection in which every id bit moves every bit of both halves: ids are not trusted to be
/// random (time-ordered UUIDs and counter-made ids share most bits). The high half is the
/// table's hash; low bits of the other pick the shard.
fn key(id: Uuid) -> u128 {
    let v = id.as_u128();
    let (hi, lo) = ((v >> 64) as u64, v as u64);
    let left = hi ^ mix(lo);
    let right = lo ^ mix(left);
    let left = left ^ mix(right);
    ((u128::from(left) << 64) | u128::from(right)) & !GENERATION_BITS
}

fn hash(entry: u128) -> u64 {
    (entry >> 64) as u64
}

/// Whether an entry holds `key`, whatever its generation.
fn holds(entry: u128, key: u128) -> bool {
    entry & !GENERATION_BITS == key
}

struct Shard {
    /// Ids, each tagged with the generation it was inserted in.
    ids: HashTable<u128>,
    /// How many generations are live (at most `GENERATIONS`).
    generations: usize,
    /// The tag of the newest generation, the one being filled.
    newest: u128,
    /// Ids in the newest generation.
    filled: usize,
    per_generation: usize,
}

impl Shard {
    fn contains(&self, key: u128) -> bool {
        self.ids.find(hash(key), |e| holds(*e, key)).is_some()
    }

    /// Inserts a key that is not there yet.
    fn insert(&mut self, key: u128) {
        if self.generations == 0 || self.filled >= self.per_generation {
            if self.generations == GENERATIONS {
                // The tag the new generation will reuse is the oldest's: drop its ids first.
                let oldest = (self.newest + 1) & GENERATION_BITS;
                self.ids.retain(|e| *e & GENERATION_BITS != oldest);
            } else {
                self.generations += 1;
            }
            self.newest = (self.newest + 1) & GENERATION_BITS;
            self.filled = 0;
        }
        self.ids
            .insert_unique(hash(key), key | self.newest, |e| hash(*e));
        self.filled += 1;
    }

    fn remove(&mut self, key: u128) {
        if let Ok(entry) = self.ids.find_entry(hash(key), |e| holds(*e, key)) {
            let (entry, _) = entry.remove();
            // Only the newest generation's count decides when to start another.
            if entry & GENERATION_BITS == self.newest {
                self.filled -= 1;
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.ids.len()
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
                        ids: HashTable::new(),
                        generations: 0,
                        newest: 0,
                        filled: 0,
                        per_generation,
                    })
                })
                .collect(),
        }
    }

    /// The shard is picked by low key bits; the table inside hashes the high half.
    fn shard(&self, key: u128) -> &Mutex<Shard> {
        &self.shards[(key >> 2) as usize % SHARDS]
    }

    /// Claim each id; returns, per id, whether it is new (seen neither before nor earlier in
    /// `ids`). Claimed ids count as seen until [`release`](Self::release)d.
    pub fn claim(&self, ids: &[Uuid]) -> Vec<bool> {
        ids.iter()
            .map(|id| {
                let k = key(*id);
                let mut shard = self.shard(k).lock();
                if shard.contains(k) {
                    false
                } else {
                    shard.insert(k);
                    true
                }
            })
            .collect()
    }

    /// Forget ids whose append failed, so a retry is accepted.
    pub fn release(&self, ids: &[Uuid]) {
        for id in ids {
            let k = key(*id);
            self.shard(k).lock().remove(k);
        }
    }

    /// Record ids read back from the log on start-up.
    pub fn remember(&self, id: Uuid) {
        let k = key(id);
        let mut shard = self.shard(k).lock();
        if !shard.contains(k) {
            shard.insert(k);
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
    fn ids_that_differ_only_in_their_low_bits_stay_apart() {
        // The entry's two low bits hold its generation; the key scrambles every id bit first.
        let idx = DedupeIndex::new(1_000_000);
        let ids: Vec<Uuid> = (0..100_000u128).map(Uuid::from_u128).collect();
        assert!(idx.claim(&ids).iter().all(|new| *new));
        assert!(idx.claim(&ids).iter().all(|new| !*new));
        idx.release(&ids[..4]);
        assert_eq!(
            idx.claim(&ids[..8]),
            [true, true, true, true, false, false, false, false]
        );
    }

    #[test]
    fn structured_ids_spread_over_shards() {
        let idx = DedupeIndex::new(1_000_000);
        // Counter-made ids differ only in a few high bytes.
        let ids: Vec<Uuid> = (0..16_000u128).map(|i| Uuid::from_u128(i << 96)).collect();
        assert!(idx.claim(&ids).iter().all(|new| *new));
        let busiest = idx.shards.iter().map(|s| s.lock().len()).max().unwrap();
        assert!(busiest < 2 * 16_000 / SHARDS, "{busiest} ids in one shard");
        // The table indexes by the hash's low bits: they must differ too.
        let buckets: std::collections::HashSet<u64> =
            ids.iter().map(|id| hash(key(*id)) & 0xfff).collect();
        assert!(
            buckets.len() > 4096 / 2,
            "{} of 4096 buckets used",
            buckets.len()
        );
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
        let total: usize = idx.shards.iter().map(|s| s.lock().len()).sum();
        assert!(total <= window * GENERATIONS / (GENERATIONS - 1) + SHARDS);
    }
}
