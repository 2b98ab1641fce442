//! A shard's hierarchical timer wheel: finds the entries whose deadline passed in amortized
//! constant time per entry, however many entries there are and however far time jumps.
//!
//! Hierarchical timing wheels are Varghese & Lauck's ("Hashed and Hierarchical Timing Wheels:
//! Data Structures for the Efficient Implementation of a Timer Facility", SOSP 1987); this one
//! has the shape Ben Manes gave them for cache expiration in Caffeine's `TimerWheel` (levels,
//! spans, bucket counts, re-filing on firing), written from scratch around the shard's slab.
//!
//! | level | bucket span | buckets | holds nodes due within |
//! |---|---|---|---|
//! | 0 | 2^30 ns ≈ 1.07 s (the tick) | 64 | 2^36 ns ≈ 69 s |
//! | 1 | 2^36 ns ≈ 69 s | 64 | 2^42 ns ≈ 73 min |
//! | 2 | 2^42 ns ≈ 73 min | 32 | 2^46 ns ≈ 19.5 h |
//! | 3 | 2^46 ns ≈ 19.5 h | 4 | 2^50 ns ≈ 13 days |
//! | 4 (overflow) | 2^50 ns ≈ 13 days | 1 | any time |
//!
//! A node due at `d` when the wheel's time is `t < d` is filed in the lowest level holding
//! `d - t`, in bucket `(d >> shift) & (buckets - 1)`; a node already due goes straight to the
//! *expired queue*; a node due [`NEVER`] is in no list (it costs nothing).
//! [`advance`](TimerWheel::advance) fires, level by level from 0 until a level's tick did
//! not change, the buckets of the ticks from the previous time's to `now`'s, each at most
//! once (a jump of days visits at most the 165 buckets). A fired bucket's nodes go to the
//! expired queue if their current deadline is `<= now`, and are re-filed otherwise.
//!
//! # Guarantees
//! - **Never early**: `pop_expired` returns only nodes due by the wheel's time.
//! - **At most one tick late**: after `advance(now)`, every node due by `now - TICK_NANOS`
//!   is in the expired queue; so advancing in steps, a node is popped at the latest after the
//!   first advance with `now >= deadline + TICK_NANOS`. (A node on level ≥ 1 fires at the
//!   latest when its deadline's tick of that level starts, ≤ its deadline, and is re-filed
//!   lower; a distance wrapping around the level, as level 3's up to 16 ticks over 4 buckets,
//!   only fires it earlier. A level-0 node fires at the latest with the first advance past
//!   its deadline's tick, and is then due.)
//! - `push`, `reschedule` and `swap_remove` are O(1); `advance` is amortized O(buckets fired
//!   + nodes moved): a node moves a bounded number of times (about twice per level).
//!
//! One 24-byte node per slab index, in a `Vec` mirroring the slab (same indices, same
//! `swap_remove`): two `u32` links of an intrusive circular doubly linked list, the deadline
//! and `cap`, 64 bits the shard keeps there. The wheel changes only under the shard's write
//! lock: a read that extends an entry's deadline changes the copy inline in the entry, and
//! the shard re-files the node with `reschedule` when it next holds the write lock. Link
//! values `>= 2^31` name the sentinels of the 166 lists (buckets, expired queue), `u32::MAX`
//! marks a node in no list and `u32::MAX - 1` one handed out by `pop_expired`.

/// The wheel's resolution, 2^30 ns ≈ 1.07 s: the span of a level-0 bucket and the most a
/// node is popped late.
pub(crate) const TICK_NANOS: u64 = 1 << 30;
/// The deadline of a node that never expires; such a node is in no list.
pub(crate) const NEVER: u64 = u64::MAX;

/// Number of levels.
const LEVELS: usize = 5;
/// Log2 of each level's bucket span, in nanoseconds.
const SHIFTS: [u32; LEVELS] = [TICK_NANOS.trailing_zeros(), 36, 42, 46, 50];
/// Buckets per level (powers of two).
const BUCKETS: [usize; LEVELS] = [64, 64, 32, 4, 1];
/// The list number of each level's first bucket.
const FIRST: [usize; LEVELS] = [0, 64, 128, 160, 164];
/// The list number of the expired queue.
const EXPIRED: usize = 165;
/// Number of lists: the buckets and the expired queue.
const LISTS: usize = EXPIRED + 1;
/// Link values from here on name sentinels (`SENTINEL + list`); node indices are below.
const SENTINEL: u32 = 1 << 31;
/// Nodes the wheel can link: indices must stay below the sentinels.
const MAX_NODES: usize = 1 << 31;
/// Link value of a node in no list.
const UNLINKED: u32 = u32::MAX;
/// Link value of a node returned by `pop_expired` and not yet removed or rescheduled.
const POPPED: u32 = u32::MAX - 1;

const _: () = assert!(std::mem::size_of::<Node>() == 24 && LEVELS == 5);
const _: () = assert!(FIRST[4] == FIRST[3] + BUCKETS[3] && EXPIRED == FIRST[4] + BUCKETS[4]);

/// A node's or a sentinel's neighbours in a circular doubly linked list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Links {
    /// The previous node, or a sentinel.
    prev: u32,
    /// The next node, or a sentinel.
    next: u32,
}

impl Links {
    /// A node in no list.
    const UNLINKED: Links = Links::new(UNLINKED, UNLINKED);
    /// A node handed out by `pop_expired`.
    const POPPED: Links = Links::new(POPPED, POPPED);

    /// Links to `prev` and `next`.
    const fn new(prev: u32, next: u32) -> Links {
        Links { prev, next }
    }

    /// The sentinel of an empty list.
    fn empty(list: usize) -> Links {
        Links::new(sentinel(list), sentinel(list))
    }

    /// Whether these are the links of a node in a list.
    fn is_linked(self) -> bool {
        self.prev < POPPED
    }
}

/// The link value naming `list`'s sentinel.
fn sentinel(list: usize) -> u32 {
    SENTINEL + list as u32
}

/// The list a node due at `deadline` belongs in when the wheel's time is `time < deadline`.
fn bucket_for(deadline: u64, time: u64) -> usize {
    let delta = deadline - time;
    (0..LEVELS - 1)
        .find(|&level| delta < 1 << SHIFTS[level + 1])
        .map_or(FIRST[LEVELS - 1], |level| {
            FIRST[level] + ((deadline >> SHIFTS[level]) as usize & (BUCKETS[level] - 1))
        })
}

/// A readable name of `list`, for [`TimerWheel::validate`]'s errors.
fn list_name(list: usize) -> String {
    match (0..LEVELS).rev().find(|&l| FIRST[l] <= list) {
        Some(l) if list < EXPIRED => format!("bucket {} of level {l}", list - FIRST[l]),
        _ => "the expired queue".to_string(),
    }
}

/// One slab index's timer (24 bytes).
struct Node {
    /// Neighbours in the node's list ([`Links::UNLINKED`] in none).
    links: Links,
    /// Nanoseconds on the cache's clock; [`NEVER`] for no deadline.
    deadline: u64,
    /// The shard's data, kept with the node.
    cap: u64,
}

/// A hierarchical timer wheel with one node per slab index of a shard (see the
/// [module docs](self)).
///
/// Methods taking `&mut self` run under the shard's write lock; `deadline` and `cap` may
/// also run under its shared lock, concurrently.
pub(crate) struct TimerWheel {
    /// One node per slab index.
    nodes: Vec<Node>,
    /// The sentinel of each list: the buckets of levels 0 to 4, then the expired queue.
    heads: [Links; LISTS],
    /// The time of the last advance, in nanoseconds.
    time: u64,
    /// Nodes in any list.
    linked: usize,
    /// For the tests' cost checks: buckets fired (empty ones too) and nodes they held.
    #[cfg(test)]
    stats: (usize, usize),
}

impl TimerWheel {
    /// An empty wheel whose time is `now` (nanoseconds).
    pub(crate) fn new(now: u64) -> Self {
        TimerWheel {
            nodes: Vec::new(),
            heads: std::array::from_fn(Links::empty),
            time: now,
            linked: 0,
            #[cfg(test)]
            stats: (0, 0),
        }
    }

    /// Number of nodes (equal to the slab's length).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Adds the node for index `len()` with `deadline` and `cap`, and schedules it: filed in
    /// a bucket, or straight in the expired queue if `deadline` is not after the wheel's
    /// time, or in no list if it is [`NEVER`]. O(1). A wheel holds fewer than 2^31 nodes
    /// (past that, a node is kept but never expires).
    pub(crate) fn push(&mut self, deadline: u64, cap: u64) {
        let i = self.nodes.len();
        debug_assert!(i < MAX_NODES, "a timer wheel holds fewer than 2^31 nodes");
        self.nodes.push(Node {
            links: Links::UNLINKED,
            deadline,
            cap,
        });
        if i < MAX_NODES {
            self.schedule(i as u32);
        }
    }

    /// Gives node `i` a new `deadline` and `cap` and schedules it as [`push`](Self::push)
    /// does, from whatever state it is in: filed, in the expired queue, popped, or in no
    /// list. O(1).
    pub(crate) fn reschedule(&mut self, i: u32, deadline: u64, cap: u64) {
        if self.node(i).is_some() {
            let node = &mut self.nodes[i as usize];
            (node.deadline, node.cap) = (deadline, cap);
            self.refile(i);
        }
    }

    /// Node `i`'s deadline ([`NEVER`] for an index out of range).
    #[inline]
    pub(crate) fn deadline(&self, i: u32) -> u64 {
        self.node(i).map_or(NEVER, |n| n.deadline)
    }

    /// Node `i`'s `cap` (0 for an index out of range).
    #[inline]
    pub(crate) fn cap(&self, i: u32) -> u64 {
        self.node(i).map_or(0, |n| n.cap)
    }

    /// Removes node `i` as `Vec::swap_remove` does: node `i` leaves its list, the last node
    /// moves to index `i` keeping its list and place, and its neighbours are repointed. O(1).
    pub(crate) fn swap_remove(&mut self, i: u32) {
        if self.node(i).is_none() {
            return;
        }
        self.unlink(i, Links::UNLINKED);
        self.nodes.swap_remove(i as usize);
        if let Some(&Node { links, .. }) = self.nodes.get(i as usize) {
            if links.is_linked() {
                self.links(links.prev).next = i;
                self.links(links.next).prev = i;
            }
        }
    }

    /// Moves the wheel's time to `now` and fires the buckets whose ticks elapsed: their
    /// nodes due by `now` go to the expired queue, the others are re-filed. A `now` not
    /// after the wheel's time moves nothing (time never goes back). Amortized O(buckets
    /// fired + nodes moved); each bucket fires at most once, however far `now` is.
    pub(crate) fn advance(&mut self, now: u64) {
        let prev = self.time;
        if now <= prev {
            return;
        }
        self.time = now;
        if self.linked == 0 {
            return;
        }
        for level in 0..LEVELS {
            let (from, to) = (prev >> SHIFTS[level], now >> SHIFTS[level]);
            if from == to {
                break;
            }
            let mask = BUCKETS[level] - 1;
            let steps = (to - from).min(mask as u64) as usize + 1;
            for k in 0..steps {
                self.fire(FIRST[level] + ((from as usize).wrapping_add(k) & mask));
            }
        }
    }

    /// The wheel's time: the latest `now` it was advanced to (another thread's clock
    /// reading may be ahead of the caller's).
    pub(crate) fn time(&self) -> u64 {
        self.time
    }

    /// Takes a node out of the expired queue and returns its index. The node is in no list
    /// but still in the wheel: the caller then removes it from slab and wheel
    /// (`swap_remove`), or reschedules it. Its deadline is `<=` the wheel's time: a node
    /// enters the queue only when due, the time only grows, and a deadline only changes
    /// through `reschedule`, which re-files the node.
    pub(crate) fn pop_expired(&mut self) -> Option<u32> {
        if !self.has_expired() {
            return None;
        }
        let i = self.heads[EXPIRED].next;
        debug_assert!(self.nodes[i as usize].deadline <= self.time);
        self.unlink(i, Links::POPPED);
        Some(i)
    }

    /// Whether [`advance`](TimerWheel::advance)`(now)` and [`pop_expired`](TimerWheel::pop_expired)
    /// could find something to do: the expired queue holds a node, or the wheel holds nodes
    /// and `now` is in a later tick than the wheel's time (within one tick, `advance` fires
    /// no bucket). Lets readers of a read-only shard ask for maintenance at most about once a
    /// tick instead of on every batch of hits.
    #[inline]
    pub(crate) fn is_due(&self, now: u64) -> bool {
        self.has_expired()
            || (self.linked != 0 && now > self.time && now >> SHIFTS[0] != self.time >> SHIFTS[0])
    }

    /// Whether the expired queue holds a node.
    #[inline]
    pub(crate) fn has_expired(&self) -> bool {
        self.heads[EXPIRED].next != sentinel(EXPIRED)
    }

    /// Drops every node; the time stays.
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.heads = std::array::from_fn(Links::empty);
        self.linked = 0;
    }

    /// Checks the structure: each node with a finite deadline is in exactly one list (a
    /// bucket or the expired queue), links are mutual, nodes in no list have deadline
    /// [`NEVER`], no popped node was left behind, and the lists hold as many nodes as the
    /// wheel counts. The error says what is wrong.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let mut seen = vec![usize::MAX; self.nodes.len()];
        let mut total = 0;
        for (list, head) in self.heads.iter().enumerate() {
            let (s, name) = (sentinel(list), || list_name(list));
            let (mut prev, mut at) = (s, head.next);
            while at != s {
                let Some(node) = self.nodes.get(at as usize).filter(|_| at < SENTINEL) else {
                    return Err(format!("{} links to {at}, no node", name()));
                };
                let first = std::mem::replace(&mut seen[at as usize], list);
                if first != usize::MAX {
                    let first = list_name(first);
                    return Err(format!("node {at} is in {first} and in {}", name()));
                }
                if node.links.prev != prev {
                    let p = node.links.prev;
                    return Err(format!("node {at} in {} has prev {p}, not {prev}", name()));
                }
                total += 1;
                (prev, at) = (at, node.links.next);
            }
            if head.prev != prev {
                let last = head.prev;
                return Err(format!("{} ends at {prev}, not at {last}", name()));
            }
        }
        if total != self.linked {
            return Err(format!("{total} nodes in lists, {} counted", self.linked));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let (links, deadline) = (node.links, node.deadline);
            let problem = if links.is_linked() {
                (seen[i] == usize::MAX).then_some("has links but is in no list")
            } else if links == Links::POPPED {
                Some("was popped but not removed nor rescheduled")
            } else if links != Links::UNLINKED {
                Some("has broken links")
            } else {
                let lost = deadline != NEVER && i < MAX_NODES;
                lost.then_some("has a deadline but is in no list")
            };
            if let Some(problem) = problem {
                return Err(format!("node {i} {problem} ({links:?}, due {deadline})"));
            }
        }
        Ok(())
    }

    /// Node `i`, if it exists (debug builds panic if not: a caller bug).
    fn node(&self, i: u32) -> Option<&Node> {
        debug_assert!((i as usize) < self.nodes.len(), "no timer node {i}");
        self.nodes.get(i as usize)
    }

    /// The links of the node or sentinel that link value `at` names.
    fn links(&mut self, at: u32) -> &mut Links {
        match at.checked_sub(SENTINEL) {
            Some(list) => &mut self.heads[list as usize],
            None => &mut self.nodes[at as usize].links,
        }
    }

    /// Takes node `i` out of its list, if it is in one, and gives it links `to`.
    fn unlink(&mut self, i: u32, to: Links) {
        let links = std::mem::replace(&mut self.nodes[i as usize].links, to);
        if links.is_linked() {
            self.links(links.prev).next = links.next;
            self.links(links.next).prev = links.prev;
            self.linked -= 1;
        }
    }

    /// Files node `i`, which is in no list, by its deadline relative to the wheel's time.
    fn schedule(&mut self, i: u32) {
        let deadline = self.nodes[i as usize].deadline;
        if deadline == NEVER {
            return;
        }
        let list = if deadline <= self.time {
            EXPIRED
        } else {
            bucket_for(deadline, self.time)
        };
        let tail = self.heads[list].prev;
        self.nodes[i as usize].links = Links::new(tail, sentinel(list));
        self.links(tail).next = i;
        self.heads[list].prev = i;
        self.linked += 1;
    }

    /// Takes node `i` out of its list (or out of the popped state) and files it again.
    fn refile(&mut self, i: u32) {
        self.unlink(i, Links::UNLINKED);
        self.schedule(i);
    }

    /// Empties `list`, filing each of its nodes again relative to the wheel's time.
    fn fire(&mut self, list: usize) {
        #[cfg(test)]
        {
            self.stats.0 += 1;
        }
        // Detach the chain first: a node may be filed back into this very list.
        let mut at = std::mem::replace(&mut self.heads[list], Links::empty(list)).next;
        while at != sentinel(list) {
            let next = std::mem::replace(&mut self.nodes[at as usize].links, Links::UNLINKED).next;
            self.linked -= 1;
            self.schedule(at);
            #[cfg(test)]
            {
                self.stats.1 += 1;
            }
            at = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    const SEC: u64 = 1_000_000_000;
    const DAY: u64 = 86_400 * SEC;

    /// Whether a node due at `d` must be in the expired queue once the wheel is at `now`.
    fn due(d: u64, now: u64) -> bool {
        d != NEVER && d.checked_add(TICK_NANOS).is_some_and(|late| late <= now)
    }

    /// Which nodes are in the expired queue.
    fn queued(w: &TimerWheel) -> Vec<bool> {
        let (mut q, mut at) = (vec![false; w.len()], w.heads[EXPIRED].next);
        while at != sentinel(EXPIRED) {
            // A node is queued once: meeting one again is a cycle.
            assert!(!q[at as usize], "a cycle in the expired queue at {at}");
            q[at as usize] = true;
            at = w.nodes[at as usize].links.next;
        }
        q
    }

    /// Pops and removes every expired node, returning their caps in order.
    fn pop_caps(w: &mut TimerWheel) -> Vec<u64> {
        let (mut caps, nodes) = (Vec::new(), w.len());
        while let Some(i) = w.pop_expired() {
            assert!(caps.len() < nodes, "popped more than the {nodes} nodes");
            caps.push(w.cap(i));
            w.swap_remove(i);
        }
        w.validate().unwrap();
        caps
    }

    /// A wheel at `start` whose node `k` is due at `deadlines[k]`, with cap `k`.
    fn wheel(start: u64, deadlines: &[u64]) -> TimerWheel {
        let mut w = TimerWheel::new(start);
        (0..deadlines.len()).for_each(|k| w.push(deadlines[k], k as u64));
        w.validate().unwrap();
        w
    }

    /// Advances `wheel(start, deadlines)` by `step()` at a time until each finite deadline
    /// was popped, checking that no pop is early or comes after the first advance to reach
    /// its deadline + one tick.
    fn drive(start: u64, deadlines: &[u64], mut step: impl FnMut() -> u64) -> TimerWheel {
        let mut w = wheel(start, deadlines);
        let finite = || deadlines.iter().filter(|&&d| d != NEVER);
        let (mut now, mut left, last) = (start, finite().count(), finite().max().copied());
        // Bounded in time (the wheel's: the assert below) and in count: the drives here
        // take up to about 17,000 steps.
        let mut steps = 0u32;
        while left > 0 {
            assert!(steps < 1_000_000, "{steps} steps, {left} nodes left");
            steps += 1;
            let prev = now;
            assert!(!due(last.unwrap(), prev), "{left} nodes never expired");
            now = now.saturating_add(step());
            w.advance(now);
            while let Some(i) = w.pop_expired() {
                let d = deadlines[w.cap(i) as usize];
                assert!(
                    d <= now && !due(d, prev),
                    "due {d}, popped {now} (prev {prev})"
                );
                w.swap_remove(i);
                left = left.checked_sub(1).expect("popped more than were due");
            }
        }
        assert_eq!(w.len(), deadlines.len() - finite().count());
        w.validate().unwrap();
        w
    }

    /// A random step from 2^lo to 2^hi nanoseconds, spread evenly over bit lengths.
    fn step(rng: &mut StdRng, lo: u32, hi: u32) -> u64 {
        let bits = rng.gen_range(lo..hi);
        rng.gen_range(1 << bits..2 << bits)
    }

    #[test]
    fn files_pops_reschedules_and_removes_in_every_state() {
        let mut w = wheel(1, &[NEVER, 0, 9 * SEC, 2 * DAY, 1, 400 * DAY]);
        assert_eq!((w.nodes[0].links, w.linked), (Links::UNLINKED, 5));
        assert_eq!(w.pop_expired(), Some(1));
        assert!(w.validate().unwrap_err().contains("popped"));
        w.reschedule(1, NEVER, 11); // popped -> no list
        w.reschedule(0, 3 * SEC, 10); // no list -> filed
        w.reschedule(4, 8 * SEC, 14); // queued -> filed
        w.reschedule(3, 1, 13); // filed -> queued
        w.swap_remove(3); // the last node (filed far) moves to 3
        w.swap_remove(2); // the last node (filed) moves to 2
        w.validate().unwrap();
        w.advance(3 * SEC - 1);
        w.advance(1); // time never goes back
        assert_eq!((pop_caps(&mut w), w.time), (vec![], 3 * SEC - 1));
        for (at, cap) in [(3 * SEC, 10), (8 * SEC, 14), (400 * DAY, 5)] {
            w.advance(at + TICK_NANOS);
            assert_eq!(pop_caps(&mut w), [cap]);
        }
        w.advance(u64::MAX);
        assert_eq!((pop_caps(&mut w), w.len(), w.cap(0)), (vec![], 1, 11));
        w.push(5, 5);
        assert!(w.has_expired());
        w.clear();
        assert_eq!((w.len(), w.linked, w.has_expired()), (0, 0, false));
        assert_eq!(w.time, u64::MAX);
    }

    #[test]
    fn validate_names_what_is_wrong() {
        let broken = |f: fn(&mut TimerWheel)| {
            let mut w = wheel(0, &[1, 2, 3, 4]); // all in bucket 0 of level 0
            f(&mut w);
            w.validate().unwrap_err()
        };
        assert!(broken(|w| w.nodes[1].links.prev = 3).contains("has prev 3"));
        assert!(broken(|w| w.nodes[3].links.next = 1).contains("1 is in bucket 0 of level 0"));
        assert!(broken(|w| w.nodes[3].links.next = 9).contains("no node"));
        assert!(broken(|w| w.linked += 1).contains("counted"));
        assert!(broken(|w| w.unlink(2, Links::UNLINKED)).contains("in no list"));
        assert!(broken(|w| w.heads[0].prev = 2).contains("not at 2"));
    }

    /// Distances from 0 to 2^56 ns (2.3 years), spread evenly over bit lengths.
    fn distance() -> impl Strategy<Value = u64> {
        (0u32..57, any::<u64>()).prop_map(|(bits, x)| x.checked_shr(64 - bits).unwrap_or(0))
    }

    /// A deadline from `now`: kind 0 is [`NEVER`], 1 and 2 are `x` ago, others `x` ahead.
    fn at((kind, x): (u8, u64), now: u64) -> u64 {
        match kind {
            0 => NEVER,
            1 | 2 => now.saturating_sub(x),
            _ => now.saturating_add(x),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..Default::default() })]

        /// The wheel against a plain list of (deadline, cap), checking the guarantees. Each
        /// operation is (what, which node, a deadline or step).
        #[test]
        fn behaves_like_a_list_of_deadlines(
            start in prop_oneof![Just(0u64), any::<u64>(), distance().prop_map(|x| !x)],
            ops in proptest::collection::vec((0u8..16, any::<usize>(), (0u8..9, distance())), 1..200),
        ) {
            let mut w = TimerWheel::new(start);
            let (mut now, mut model, mut caps) = (start, Vec::<(u64, u64)>::new(), 0..);
            for (what, i, when) in ops {
                let (i, d) = (i % model.len().max(1), at(when, now));
                match what {
                    0..=4 => {
                        let cap = caps.next().unwrap();
                        w.push(d, cap);
                        model.push((d, cap));
                    }
                    5 | 6 if !model.is_empty() => {
                        let cap = caps.next().unwrap();
                        w.reschedule(i as u32, d, cap);
                        model[i] = (d, cap);
                    }
                    7..=9 if !model.is_empty() => {
                        // A new deadline, the same cap: how the shard re-files a read.
                        w.reschedule(i as u32, d, w.cap(i as u32));
                        model[i].0 = d;
                    }
                    10 if !model.is_empty() => {
                        w.swap_remove(i as u32);
                        model.swap_remove(i);
                    }
                    11..=14 => {
                        now = now.saturating_add(when.1);
                        // A wheel that is not due has nothing to fire or pop.
                        let was_due = w.is_due(now);
                        w.advance(now);
                        prop_assert!(was_due || !w.has_expired(), "not due at {}, yet queued", now);
                        let q = queued(&w);
                        for (i, &(d, _)) in model.iter().enumerate() {
                            prop_assert!(q[i] || !due(d, now), "{} due at {} at {}", i, d, now);
                        }
                    }
                    15 => {
                        while let Some(i) = w.pop_expired() {
                            let (d, cap) = model.swap_remove(i as usize);
                            prop_assert!(d <= now && d != NEVER, "popped {} at {}", d, now);
                            prop_assert_eq!(w.cap(i), cap);
                            w.swap_remove(i);
                        }
                        prop_assert!(!w.has_expired());
                        prop_assert!(model.iter().all(|&(d, _)| !due(d, now)));
                    }
                    _ => {}
                }
                w.validate().map_err(TestCaseError::fail)?;
                prop_assert_eq!(w.len(), model.len());
                for (i, &(d, cap)) in model.iter().enumerate() {
                    prop_assert_eq!((w.deadline(i as u32), w.cap(i as u32)), (d, cap));
                }
            }
        }
    }

    #[test]
    fn a_million_nodes_over_three_days() {
        let n = 1_000_000 / if cfg!(debug_assertions) { 10 } else { 1 };
        let mut rng = StdRng::seed_from_u64(1);
        let start = rng.gen_range(0..1 << 62);
        let mut deadlines: Vec<u64> = (0..n).map(|_| start + rng.gen_range(0..3 * DAY)).collect();
        deadlines.iter_mut().step_by(50).for_each(|d| *d = NEVER);
        let t = std::time::Instant::now();
        // Steps of 1 ms (2^20 ns) to 2 hours (2^43 ns).
        let w = drive(start, &deadlines, || step(&mut rng, 20, 43));
        let moved = w.stats.1 as f64 / n as f64;
        eprintln!("{n} nodes, {moved:.2} moves each, in {:?}", t.elapsed());
        assert!(moved < 8.0);
    }

    #[test]
    fn deadlines_around_level_boundaries() {
        let mut rng = StdRng::seed_from_u64(2);
        let far = u64::MAX - (1 << 58);
        for start in [0, 1, TICK_NANOS - 1, 77 << 36, (1 << 50) - 1, 1 << 62, far] {
            let mut deadlines = Vec::new();
            for shift in [0, 30, 36, 42, 46, 48, 50, 51] {
                for mult in [1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65] {
                    for base in [start, (start | (TICK_NANOS - 1)) + 1] {
                        let d = base + (mult << shift);
                        deadlines.extend([d - 1, d, d + 1]);
                    }
                }
            }
            drive(start, &deadlines, || step(&mut rng, 0, 48));
        }
    }

    #[test]
    fn jumps_of_a_month_are_cheap() {
        let mut rng = StdRng::seed_from_u64(3);
        let (n, start) = (20_000, 5 * DAY + 17);
        let deadlines: Vec<_> = (0..n)
            .map(|_| start + rng.gen_range(0..100 * DAY))
            .collect();
        // Four advances, each firing every bucket at most once and moving a node at most twice.
        let w = drive(start, &deadlines, || 30 * DAY);
        assert!(w.stats.0 <= 4 * EXPIRED && w.stats.1 <= 3 * n);
        // A wheel with one far node: any jump visits each bucket at most once.
        let (mut w, mut now) = (wheel(w.time, &[u64::MAX - 1]), w.time);
        for _ in 0..10_000 {
            w.stats = (0, 0);
            now = now.saturating_add(step(&mut rng, 20, 54));
            w.advance(now);
            assert!(w.stats.0 <= EXPIRED && w.stats.1 <= 2);
        }
        w.validate().unwrap();
    }
}
