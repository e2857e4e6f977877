//! In-file key index for `primaryKey` and `unique`: the first occurrence of a key wins and
//! later ones are rejected with the first one's line.
//!
//! Memory: 12 bytes a slot, at most 85 % full: 15 bytes a distinct key, 150 MB for ten million
//! (and, while the table grows by half, the old table too). The table grows with the keys it
//! has seen, never from an estimate: a sparse or padded file cannot make it reserve more.
//!
//! Single integer keys are stored exactly (the mixing is a bijection); other keys as a 64-bit
//! keyed hash (SipHash) of their typed bytes, so two different keys collide with probability
//! about n²/2⁶⁵ (3·10⁻⁶ for ten million keys); a collision rejects a valid row into the
//! quarantine, where it is not lost.
//!
//! Hostile keys: both the mixing and the text hash are keyed by a random seed per file, so keys
//! chosen to fall into one run of slots (which makes linear probing quadratic) or to collide
//! cannot be computed in advance.

/// One slot: a mixed key (0 = empty) and the line it was first seen on. Packed to 12 bytes so
/// that a lookup touches one place in memory, not two arrays.
#[derive(Clone, Copy, Default)]
#[repr(C, packed(4))]
struct Slot {
    key: u64,
    line: u32,
}

/// Open-addressing table (linear probing) of mixed keys and first lines (a line past 4·10⁹ is
/// stored as `u32::MAX`), 12 bytes a slot, at most 85 % full, grown by half when full.
pub struct KeyIndex {
    slots: Vec<Slot>,
    len: usize,
    /// The key that mixes to 0 (the empty-slot marker) is kept aside.
    zero: Option<u32>,
    /// XORed into every key before mixing: where a key lands depends on a secret.
    seed: u64,
}

impl Default for KeyIndex {
    /// An empty index with a random seed.
    fn default() -> Self {
        use std::hash::BuildHasher;
        KeyIndex::with_seed(std::hash::RandomState::new().hash_one(0x676c_7565_6c65_7373_u64))
    }
}

/// Where a key is, or where it would go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Seen before, first on this line.
    Seen(u64),
    /// Not seen; [`KeyIndex::claim`] records it (valid until the next probe).
    Vacant { slot: usize, mixed: u64 },
}

impl KeyIndex {
    /// An empty index whose slots are chosen by `seed` (tests use a fixed one).
    pub fn with_seed(seed: u64) -> Self {
        KeyIndex { slots: Vec::new(), len: 0, zero: None, seed }
    }

    fn rehash(&mut self, cap: usize) {
        let mut slots = Vec::with_capacity(cap);
        advise_huge_pages(&mut slots);
        slots.resize(cap, Slot::default());
        let old = std::mem::replace(&mut self.slots, slots);
        for s in old {
            let k = s.key;
            if k != 0 {
                let mut i = slot(k, cap);
                while { self.slots[i].key } != 0 {
                    i = if i + 1 == cap { 0 } else { i + 1 };
                }
                self.slots[i] = s;
            }
        }
    }

    /// Starts loading `key`'s slot into the cache; a later [`KeyIndex::probe`] then waits less.
    #[inline]
    pub fn prefetch(&self, key: u64) {
        #[cfg(target_arch = "x86_64")]
        if !self.slots.is_empty() {
            let p = &self.slots[slot(mixed(key ^ self.seed), self.slots.len())] as *const Slot as *const i8;
            // SAFETY: a prefetch is a hint; it never faults, and `p` points into `slots`.
            unsafe { std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = key;
    }

    /// Looks `key` up, making room first so that a vacant answer can be claimed.
    pub fn probe(&mut self, key: u64) -> Probe {
        let k = mixed(key ^ self.seed);
        if k == 0 {
            return match self.zero {
                Some(l) => Probe::Seen(l as u64),
                None => Probe::Vacant { slot: usize::MAX, mixed: 0 },
            };
        }
        if (self.len + 1) * 20 > self.slots.len() * 17 {
            let cap = (self.slots.len() * 3 / 2).max(1024);
            self.rehash(cap);
        }
        let cap = self.slots.len();
        let mut i = slot(k, cap);
        loop {
            let Slot { key: at, line } = self.slots[i];
            if at == 0 {
                return Probe::Vacant { slot: i, mixed: k };
            }
            if at == k {
                return Probe::Seen(line as u64);
            }
            i = if i + 1 == cap { 0 } else { i + 1 };
        }
    }

    /// Records a key found vacant by the last [`KeyIndex::probe`].
    pub fn claim(&mut self, probe: Probe, line: u64) {
        let line = u32::try_from(line).unwrap_or(u32::MAX);
        if let Probe::Vacant { slot, mixed } = probe {
            if mixed == 0 {
                self.zero = Some(line);
            } else {
                self.slots[slot] = Slot { key: mixed, line };
                self.len += 1;
            }
        }
    }
}

/// Asks Linux to back a large table with 2 MiB pages before it is first touched: random probes
/// into a table of tens of megabytes otherwise miss the TLB on almost every row.
fn advise_huge_pages(v: &mut Vec<Slot>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_mut_ptr() as usize;
        let end = start + v.capacity() * std::mem::size_of::<Slot>();
        let (a, b) = ((start + HUGE - 1) & !(HUGE - 1), end & !(HUGE - 1));
        if b > a {
            // SAFETY: the range lies inside the vector's allocation; the advice changes no
            // contents and a failure (no THP support) is harmless.
            unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// Spreads a key over the table (the splitmix64 finalizer: a bijection, so integer keys stay
/// exact).
fn mixed(key: u64) -> u64 {
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps a well-mixed key onto `0..cap` without a division (Lemire's fast range).
fn slot(k: u64, cap: usize) -> usize {
    ((k as u128 * cap as u128) >> 64) as usize
}

/// A keyed 64-bit hash (SipHash-1-3, with the keys of `RandomState`) over byte pieces, for
/// composite and non-integer keys. An unkeyed hash (FNV) let anyone write keys that collide.
pub struct KeyHasher(std::hash::DefaultHasher);

impl KeyHasher {
    pub fn new(keys: &std::hash::RandomState) -> Self {
        KeyHasher(std::hash::BuildHasher::build_hasher(keys))
    }

    pub fn piece(&mut self, bytes: &[u8]) {
        use std::hash::Hasher;
        self.0.write(bytes);
        // The length after each piece, so that ("ab","c") and ("a","bc") differ.
        self.0.write_usize(bytes.len());
    }

    pub fn finish(&self) -> u64 {
        std::hash::Hasher::finish(&self.0)
    }
}

#[cfg(test)]
impl KeyIndex {
    /// The line where `key` was first recorded, if it was.
    pub fn get(&mut self, key: u64) -> Option<u64> {
        match self.probe(key) {
            Probe::Seen(l) => Some(l),
            Probe::Vacant { .. } => None,
        }
    }

    /// Records `key` first seen on `line`; returns the earlier line if the key was seen.
    pub fn insert(&mut self, key: u64, line: u64) -> Option<u64> {
        match self.probe(key) {
            Probe::Seen(l) => Some(l),
            p => {
                self.claim(p, line);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_growth_and_keeps_lines() {
        let mut k = KeyIndex::default();
        for i in 0..10_000u64 {
            assert_eq!(k.insert(i * 7919, i + 2), None);
        }
        for i in 0..10_000u64 {
            assert_eq!(k.get(i * 7919), Some(i + 2));
            assert_eq!(k.insert(i * 7919, 99), Some(i + 2));
        }
    }

    #[test]
    fn first_occurrence_wins() {
        let mut k = KeyIndex::default();
        assert_eq!(k.get(7), None);
        assert_eq!(k.insert(7, 2), None);
        assert_eq!(k.insert(8, 3), None);
        assert_eq!(k.insert(7, 9), Some(2));
    }

    /// The inverse of [`mixed`]: what an attacker who knows the mixing computes.
    fn unmixed(mut z: u64) -> u64 {
        fn inverse(a: u64) -> u64 {
            // Newton's iteration for the inverse of an odd number modulo 2⁶⁴.
            let mut x = a;
            for _ in 0..6 {
                x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
            }
            x
        }
        fn unshift(z: u64, s: u32) -> u64 {
            let mut x = z;
            for _ in 0..64 / s + 1 {
                x = z ^ (x >> s);
            }
            x
        }
        z = unshift(z, 31);
        z = unshift(z.wrapping_mul(inverse(0x94D0_49BB_1331_11EB)), 27);
        z = unshift(z.wrapping_mul(inverse(0xBF58_476D_1CE4_E5B9)), 30);
        z.wrapping_sub(0x9E37_79B9_7F4A_7C15)
    }

    /// The longest run of occupied slots: what a probe may have to walk.
    fn longest_run(k: &KeyIndex) -> usize {
        let (mut best, mut run) = (0, 0);
        for s in &k.slots {
            run = if { s.key } != 0 { run + 1 } else { 0 };
            best = best.max(run);
        }
        best
    }

    #[test]
    fn chosen_keys_do_not_pile_up_in_one_run_of_slots() {
        // Keys whose unseeded mixing is 1, 2, 3, ...: all land in the first slots of any table,
        // and each insert walks the whole run (150k of them took 11.8 s instead of 0.04 s).
        let n = 100_000u64;
        let keys: Vec<u64> = (1..=n).map(unmixed).collect();
        assert_eq!(mixed(keys[41]), 42, "the attacker's keys are right");
        let mut k = KeyIndex::default();
        for (i, &key) in keys.iter().enumerate() {
            assert_eq!(k.insert(key, i as u64 + 2), None);
        }
        assert!(longest_run(&k) < 2_000, "a run of {} slots", longest_run(&k));
        let mut unseeded = KeyIndex::with_seed(0);
        for &key in &keys[..5_000] {
            unseeded.insert(key, 2);
        }
        assert!(longest_run(&unseeded) >= 5_000, "without a seed, the keys do pile up");
    }

    #[test]
    fn two_indexes_place_the_same_keys_differently() {
        let (mut a, mut b) = (KeyIndex::default(), KeyIndex::default());
        assert_ne!(a.seed, b.seed);
        assert_eq!((a.insert(7, 2), b.insert(7, 3)), (None, None));
        assert_eq!((a.get(7), b.get(7)), (Some(2), Some(3)));
    }

    #[test]
    fn the_table_grows_with_the_keys_seen() {
        let mut k = KeyIndex::default();
        assert_eq!(k.slots.len(), 0, "nothing is reserved up front");
        for i in 0..2_000u64 {
            k.insert(i, 2);
        }
        assert!(k.slots.len() < 4_000, "{} slots for 2,000 keys", k.slots.len());
    }

    #[test]
    fn composite_pieces_do_not_run_together() {
        let keys = std::hash::RandomState::new();
        let h = |a: &[&[u8]]| {
            let mut k = KeyHasher::new(&keys);
            a.iter().for_each(|p| k.piece(p));
            k.finish()
        };
        assert_ne!(h(&[b"ab", b"c"]), h(&[b"a", b"bc"]));
        assert_eq!(h(&[b"ab", b"c"]), h(&[b"ab", b"c"]));
    }
}
