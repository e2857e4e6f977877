//! In-file key index for `primaryKey` and `unique`: the first occurrence of a key wins and
//! later ones are rejected with the first one's line.
//!
//! Memory: 12 bytes a slot, at most 80 % full: 15 bytes a distinct key, 150 MB for ten million.
//! Single integer keys are stored exactly (the mixing is a bijection); other keys as a 64-bit hash of their typed bytes,
//! so two different keys collide with probability about n²/2⁶⁵ (3·10⁻⁶ for ten million
//! keys); a collision rejects a valid row into the quarantine, where it is not lost.

use std::hash::Hasher;

/// Mixes an already well-spread u64 (an integer key or a hash) into a table slot.
#[derive(Default)]
pub struct Mix(u64);

impl Hasher for Mix {
    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Open-addressing table of mixed keys (u64) and first lines (u32; a line past 4·10⁹ is
/// stored as `u32::MAX`), 12 bytes a slot, at most 80 % full. Sized up front from the
/// expected row count when known ([`KeyIndex::reserve`]), so that a large file does not pay a
/// resize that briefly holds the old and the new table.
#[derive(Default)]
pub struct KeyIndex {
    keys: Vec<u64>,
    lines: Vec<u32>,
    len: usize,
    /// The key that mixes to 0 (the empty-slot marker) is kept aside.
    zero: Option<u32>,
}

impl KeyIndex {
    /// Makes room for `n` keys in total.
    pub fn reserve(&mut self, n: usize) {
        let want = (n as f64 / 0.8) as usize + 16;
        if want > self.keys.len() {
            self.rehash(want);
        }
    }

    fn rehash(&mut self, cap: usize) {
        let old_keys = std::mem::replace(&mut self.keys, vec![0; cap]);
        let old_lines = std::mem::replace(&mut self.lines, vec![0; cap]);
        for (k, l) in old_keys.into_iter().zip(old_lines) {
            if k != 0 {
                let mut i = slot(k, cap);
                while self.keys[i] != 0 {
                    i = if i + 1 == cap { 0 } else { i + 1 };
                }
                self.keys[i] = k;
                self.lines[i] = l;
            }
        }
    }

    /// The line where `key` was first recorded, if it was.
    pub fn get(&self, key: u64) -> Option<u64> {
        let k = mixed(key);
        if k == 0 {
            return self.zero.map(u64::from);
        }
        let cap = self.keys.len();
        if cap == 0 {
            return None;
        }
        let mut i = slot(k, cap);
        loop {
            match self.keys[i] {
                0 => return None,
                at if at == k => return Some(self.lines[i] as u64),
                _ => i = if i + 1 == cap { 0 } else { i + 1 },
            }
        }
    }

    /// Records `key` first seen on `line`; returns the earlier line if the key was seen.
    pub fn insert(&mut self, key: u64, line: u64) -> Option<u64> {
        let line32 = u32::try_from(line).unwrap_or(u32::MAX);
        let k = mixed(key);
        if k == 0 {
            return match self.zero {
                Some(l) => Some(l as u64),
                None => {
                    self.zero = Some(line32);
                    None
                }
            };
        }
        if (self.len + 1) * 5 > self.keys.len() * 4 {
            let cap = (self.keys.len() * 3 / 2).max(1024);
            self.rehash(cap);
        }
        let cap = self.keys.len();
        let mut i = slot(k, cap);
        loop {
            let at = self.keys[i];
            if at == 0 {
                self.keys[i] = k;
                self.lines[i] = line32;
                self.len += 1;
                return None;
            }
            if at == k {
                return Some(self.lines[i] as u64);
            }
            i = if i + 1 == cap { 0 } else { i + 1 };
        }
    }
}

fn mixed(key: u64) -> u64 {
    let mut m = Mix(0);
    m.write_u64(key);
    m.finish()
}

/// Maps a well-mixed key onto `0..cap` without a division (Lemire's fast range).
fn slot(k: u64, cap: usize) -> usize {
    ((k as u128 * cap as u128) >> 64) as usize
}

/// A 64-bit FNV-1a-then-mix hash over byte pieces, for composite and non-integer keys.
#[derive(Default)]
pub struct KeyHasher(u64, bool);

impl KeyHasher {
    pub fn piece(&mut self, bytes: &[u8]) {
        if !self.1 {
            self.0 = 0xCBF2_9CE4_8422_2325;
            self.1 = true;
        }
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
        // Separator so that ("ab","c") and ("a","bc") differ.
        self.0 = (self.0 ^ 0xFF).wrapping_mul(0x100_0000_01B3) ^ bytes.len() as u64;
    }
    pub fn finish(&self) -> u64 {
        let mut m = Mix(self.0);
        m.write_u64(self.0);
        m.finish()
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
