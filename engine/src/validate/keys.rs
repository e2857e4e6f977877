//! In-file key index for `primaryKey` and `unique`: the first occurrence of a key wins and
//! later ones are rejected with the first one's line.
//!
//! Memory: 12 bytes a slot, at most 85 % full: 15 bytes a distinct key, 150 MB for ten million.
//! Single integer keys are stored exactly (the mixing is a bijection); other keys as a 64-bit hash of their typed bytes,
//! so two different keys collide with probability about n²/2⁶⁵ (3·10⁻⁶ for ten million
//! keys); a collision rejects a valid row into the quarantine, where it is not lost.

/// One slot: a mixed key (0 = empty) and the line it was first seen on. Packed to 12 bytes so
/// that a lookup touches one place in memory, not two arrays.
#[derive(Clone, Copy, Default)]
#[repr(C, packed(4))]
struct Slot {
    key: u64,
    line: u32,
}

/// Open-addressing table (linear probing) of mixed keys and first lines (a line past 4·10⁹ is
/// stored as `u32::MAX`), 12 bytes a slot, at most 85 % full. Sized up front from the expected
/// row count when known ([`KeyIndex::reserve`]), so that a large file does not pay a resize
/// that briefly holds the old and the new table.
#[derive(Default)]
pub struct KeyIndex {
    slots: Vec<Slot>,
    len: usize,
    /// The key that mixes to 0 (the empty-slot marker) is kept aside.
    zero: Option<u32>,
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
    /// Makes room for `n` keys in total.
    pub fn reserve(&mut self, n: usize) {
        let want = (n as f64 / 0.85) as usize + 16;
        if want > self.slots.len() {
            self.rehash(want);
        }
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
            let p = &self.slots[slot(mixed(key), self.slots.len())] as *const Slot as *const i8;
            // SAFETY: a prefetch is a hint; it never faults, and `p` points into `slots`.
            unsafe { std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = key;
    }

    /// Looks `key` up, making room first so that a vacant answer can be claimed.
    pub fn probe(&mut self, key: u64) -> Probe {
        let k = mixed(key);
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

/// A 64-bit FNV-1a-then-mix hash over byte pieces, for composite and non-integer keys.
pub struct KeyHasher(u64);

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher(0xCBF2_9CE4_8422_2325) // the FNV-1a offset basis
    }
}

impl KeyHasher {
    pub fn piece(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
        // Separator so that ("ab","c") and ("a","bc") differ.
        self.0 = (self.0 ^ 0xFF).wrapping_mul(0x100_0000_01B3) ^ bytes.len() as u64;
    }
    pub fn finish(&self) -> u64 {
        mixed(self.0)
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

    #[test]
    fn composite_pieces_do_not_run_together() {
        let h = |a: &[&[u8]]| {
            let mut k = KeyHasher::default();
            a.iter().for_each(|p| k.piece(p));
            k.finish()
        };
        assert_ne!(h(&[b"ab", b"c"]), h(&[b"a", b"bc"]));
        assert_eq!(h(&[b"ab", b"c"]), h(&[b"ab", b"c"]));
    }
}
