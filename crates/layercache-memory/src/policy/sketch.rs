//! A 4-bit count-min sketch with periodic halving: TinyLFU's frequency estimate.
//!
//! Layout as in Caffeine's `FrequencySketch`: the table is split into 64-byte blocks of eight
//! `u64` words; a key picks one block by its hash and one 4-bit counter in each of four
//! word pairs of that block, so an estimate or an increment touches one cache line. The
//! estimate is the minimum of the four counters (count-min). After `sample_size` increments
//! every counter is halved ("reset"), which ages the history so that the sketch follows a
//! changing workload (Einziger, Friedman & Manes, TinyLFU, ACM ToS 2017, section 3.3).
//!
//! Size: one word per 2 entries of capacity (8 counters per entry, 4 bytes per entry),
//! rounded up to a power of two, and at least [`FLOOR_WORDS`] (16 KiB) but never more than
//! [`FLOOR_FACTOR`] times the capacity's own table (1 KiB for a one-entry shard). A small
//! cache sees many more distinct keys than it holds, and at 8 counters per entry its few hundred counters
//! collide so often that the estimates stop telling a hot key from a cold one: on the 28 rows
//! of BENCHMARKS.md §1 the floor raises the mean margin from +0.43 to +0.63 (multi2@512 +1.6,
//! gli@250 +1.0, OLTP@250 +0.8, sprite@256 +0.2; multi2@1024 −0.2), and it costs nothing from
//! 4096 entries of shard capacity up (the builder splits a cache into shards only from 8192
//! entries). The aging period stays 10 × the capacity, not 10 × the table.

const RESET_MASK: u64 = 0x7777_7777_7777_7777;
const ONE_MASK: u64 = 0x1111_1111_1111_1111;
const MIN_WORDS: usize = 8;
/// The smallest table, in words (that of a 4096-entry capacity).
const FLOOR_WORDS: usize = 2048;
/// The floor grows a table at most this many times (so 16 KiB from 256 entries up).
const FLOOR_FACTOR: usize = 16;

/// One cache line of counters: 8 words of 16 four-bit counters.
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct Block([u64; 8]);

pub(crate) struct FrequencySketch {
    table: Vec<Block>,
    block_mask: u32,
    sample_size: u64,
    size: u64,
    /// The words a table sized for the capacity alone would have (the floor aside).
    sized_words: usize,
}

#[inline]
fn spread(mut x: u32) -> u32 {
    x ^= x >> 17;
    x = x.wrapping_mul(0xed5a_d4bb);
    x ^= x >> 11;
    x = x.wrapping_mul(0xac4c_1b51);
    x ^= x >> 15;
    x
}

#[inline]
fn rehash(mut x: u32) -> u32 {
    x = x.wrapping_mul(0x3184_8bab);
    x ^= x >> 14;
    x
}

impl FrequencySketch {
    /// An empty sketch; call [`FrequencySketch::ensure_capacity`] before use.
    pub(crate) fn new() -> Self {
        FrequencySketch {
            table: Vec::new(),
            block_mask: 0,
            sample_size: 0,
            size: 0,
            sized_words: 0,
        }
    }

    pub(crate) fn is_initialized(&self) -> bool {
        !self.table.is_empty()
    }

    /// The number of increments between two halvings (10 × the sized-for capacity).
    pub(crate) fn sample_size(&self) -> u64 {
        self.sample_size
    }

    /// Sizes the sketch for `entries` distinct keys; a no-op when already big enough. Growing
    /// the table forgets the counts gathered so far; growing within the floor only lengthens
    /// the aging period.
    pub(crate) fn ensure_capacity(&mut self, entries: u64) {
        let entries = entries.clamp(1, 1 << 30);
        let words = (entries as usize)
            .div_ceil(2)
            .next_power_of_two()
            .max(MIN_WORDS);
        if self.sized_words >= words {
            return;
        }
        self.sized_words = words;
        self.sample_size = 10 * entries;
        let blocks = words.max(FLOOR_WORDS.min(words * FLOOR_FACTOR)) / 8;
        if self.table.len() >= blocks {
            return;
        }
        self.table = vec![Block::default(); blocks];
        self.block_mask = (blocks - 1) as u32;
        self.size = 0;
    }

    /// The block of `hash` and the hash that picks its four counters.
    #[inline]
    fn slots(&self, hash: u32) -> (usize, u32) {
        let block_hash = spread(hash);
        ((block_hash & self.block_mask) as usize, rehash(block_hash))
    }

    /// Loads the block of `hash` (returns a word of it, for the caller to keep the load alive).
    #[inline]
    pub(crate) fn warm(&self, hash: u32) -> u32 {
        if self.table.is_empty() {
            return 0;
        }
        self.table[self.slots(hash).0].0[0] as u32
    }

    /// The estimated frequency of `hash`, 0..=15.
    pub(crate) fn frequency(&self, hash: u32) -> u8 {
        if self.table.is_empty() {
            return 0;
        }
        let (block, counter_hash) = self.slots(hash);
        let words = &self.table[block].0;
        let mut min = 15u64;
        for i in 0..4u32 {
            let h = counter_hash >> (i << 3);
            let index = (h >> 1) & 15;
            let word = (h & 1) as usize + ((i as usize) << 1);
            min = min.min((words[word] >> (index << 2)) & 0xF);
        }
        min as u8
    }

    /// Counts one access of `hash`, halving all counters when the sample period is full.
    pub(crate) fn increment(&mut self, hash: u32) {
        if self.table.is_empty() {
            return;
        }
        let (block, counter_hash) = self.slots(hash);
        let words = &mut self.table[block].0;
        let mut added = false;
        for i in 0..4u32 {
            let h = counter_hash >> (i << 3);
            let index = (h >> 1) & 15;
            let word = (h & 1) as usize + ((i as usize) << 1);
            let shift = index << 2;
            if (words[word] >> shift) & 0xF != 0xF {
                words[word] += 1 << shift;
                added = true;
            }
        }
        if added {
            self.size += 1;
            if self.size >= self.sample_size {
                self.reset();
            }
        }
    }

    /// Halves every counter and the sample count (the odd counters' lost halves included).
    fn reset(&mut self) {
        let mut odd = 0u64;
        for w in self.table.iter_mut().flat_map(|b| b.0.iter_mut()) {
            odd += u64::from((*w & ONE_MASK).count_ones());
            *w = (*w >> 1) & RESET_MASK;
        }
        self.size = (self.size - (odd >> 2)) >> 1;
    }

    pub(crate) fn clear(&mut self) {
        self.table.iter_mut().for_each(|b| *b = Block::default());
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_one_cache_line() {
        assert_eq!(std::mem::align_of::<Block>(), 64);
        assert_eq!(std::mem::size_of::<Block>(), 64);
        let mut s = FrequencySketch::new();
        s.ensure_capacity(4096);
        assert_eq!(s.table.as_ptr() as usize % 64, 0);
    }

    #[test]
    fn a_small_capacity_gets_the_floor_but_its_own_aging_period() {
        let mut s = FrequencySketch::new();
        s.ensure_capacity(256);
        assert_eq!(s.table.len() * 8, FLOOR_WORDS);
        assert_eq!(s.sample_size(), 2560);
        // Growing within the floor keeps the table (and its counts) and lengthens the period.
        s.increment(42);
        s.ensure_capacity(1024);
        assert_eq!(s.table.len() * 8, FLOOR_WORDS);
        assert_eq!(s.sample_size(), 10240);
        assert_eq!(s.frequency(42), 1);
        // A tiny capacity gets at most FLOOR_FACTOR times its own table.
        let mut tiny = FrequencySketch::new();
        tiny.ensure_capacity(1);
        assert_eq!(tiny.table.len() * 8, MIN_WORDS * FLOOR_FACTOR);
        // Beyond the floor the table grows as before, and a new table starts empty.
        s.ensure_capacity(1 << 14);
        assert_eq!(s.table.len() * 8, 1 << 13);
        assert_eq!(s.sample_size(), 10 << 14);
        assert_eq!(s.frequency(42), 0);
        // Asking for less changes nothing.
        s.ensure_capacity(256);
        assert_eq!(s.table.len() * 8, 1 << 13);
        assert_eq!(s.sample_size(), 10 << 14);
    }

    #[test]
    fn counts_saturate_and_halve() {
        let mut s = FrequencySketch::new();
        s.ensure_capacity(512);
        assert_eq!(s.frequency(42), 0);
        for _ in 0..20 {
            s.increment(42);
        }
        assert_eq!(s.frequency(42), 15);
        s.reset();
        assert_eq!(s.frequency(42), 7);
    }

    #[test]
    fn estimates_are_never_below_true_counts() {
        let mut s = FrequencySketch::new();
        s.ensure_capacity(1024);
        for k in 0..1000u32 {
            for _ in 0..(k % 5) {
                s.increment(k);
            }
        }
        for k in 0..1000u32 {
            assert!(u32::from(s.frequency(k)) >= k % 5, "key {k}");
        }
    }

    #[test]
    fn ages_after_sample_period() {
        let mut s = FrequencySketch::new();
        s.ensure_capacity(8);
        for _ in 0..15 {
            s.increment(7);
        }
        // Fill the sample period with other keys: the hot key's count must be halved.
        for k in 100..100 + s.sample_size() as u32 {
            s.increment(k);
        }
        assert!(s.frequency(7) <= 7, "got {}", s.frequency(7));
    }
}
