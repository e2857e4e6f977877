//! In-file key index for `primaryKey` and `unique`: the first occurrence of a key wins and
//! later ones are rejected with the first one's line.
//!
//! Exact: single integer keys are stored as they are (the mixing is a bijection); text and
//! composite keys as a 64-bit keyed hash (SipHash) plus their typed bytes, compared on every
//! hash match, so two different keys never count as one, even if they collide in the hash.
//!
//! Memory: 12 bytes a slot, at most 85 % full (about 15 bytes a distinct integer key), plus the
//! bytes of text keys (their length + 5 bytes each). The table is sized once from the file's
//! estimated rows ([`KeyIndex::expect`], never past the budget: a padded file, whose first
//! chunk promises many rows, costs at most the budget, as its few keys spread over the table
//! touch most of its 2 MiB pages), then grows by half with the keys it has seen, while the table
//! (and the old one during a grow) stays within the index's budget
//! ([`crate::Limits::key_index_bytes`], shared by the file's indexes). Past the budget the index
//! spills: its keys are sorted and written to a run on disk (see [`spill`]), the table is emptied
//! and reused. A key is then looked up in the table and in the runs (a Bloom filter of 10 bits a
//! key and a fence a KiB, 1.45 bytes a key, stay in memory per run); after a spill the emptied
//! table is made as large as the rest of the budget allows. A spill that fails (disk full) is
//! kept as a [`KeyIndexError`] for the caller ([`KeyIndex::take_error`]); the keys stay in memory
//! meanwhile, so the answers stay right.
//!
//! Hostile keys: both the mixing and the text hash are keyed by a random seed per file, so keys
//! chosen to fall into one run of slots (which makes linear probing quadratic) cannot be
//! computed in advance; keys that collide (made with a test-only hash) are still told apart.

mod spill;

pub use spill::KeyIndexError;
use spill::{Run, SpillDir};
use std::path::PathBuf;

/// One slot: a mixed key (0 = empty) and, for integer keys, the line it was first seen on; for
/// text keys, where its line and bytes are in the arena. Packed to 12 bytes so that a lookup
/// touches one place in memory, not two arrays.
#[derive(Clone, Copy, Default)]
#[repr(C, packed(4))]
struct Slot {
    key: u64,
    val: u32,
}

/// Open-addressing table (linear probing), 12 bytes a slot, at most 85 % full, and the runs
/// spilled from it.
#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    len: usize,
    /// Text keys: per key its line (u32), its length (LEB128) and its bytes; a slot's `val` is
    /// where. Past `committed`, the key of the last vacant probe, until it is claimed.
    arena: Vec<u8>,
    committed: usize,
    runs: Vec<Run>,
}

impl Table {
    /// Memory held (table, arena, the runs' filters and fences).
    fn bytes(&self) -> usize {
        self.slots.capacity() * 12 + self.arena.capacity() + self.runs.iter().map(Run::bytes).sum::<usize>()
    }

    fn rehash(&mut self, cap: usize) {
        let mut slots = zeroed_slots(cap);
        advise_huge_pages(&mut slots);
        let old = std::mem::replace(&mut self.slots, slots);
        self.reinsert(&old);
    }

    fn reinsert(&mut self, old: &[Slot]) {
        let cap = self.slots.len();
        for &s in old {
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

    /// The line and bytes of the text key stored at `at` in the arena.
    fn entry(&self, at: u32) -> (u32, &[u8]) {
        let at = at as usize;
        let line = u32::from_le_bytes(self.arena[at..at + 4].try_into().expect("4 bytes"));
        let (n, used) = crate::leb128::read(&self.arena[at + 4..]);
        let n = n as usize;
        (line, &self.arena[at + 4 + used..at + 4 + used + n])
    }

    /// Writes the keys to a new run and empties the table (keeping its capacity). On failure
    /// the keys are put back, in a larger table.
    fn spill(&mut self, dir: &mut SpillDir, text: bool) -> std::io::Result<()> {
        let mut n = 0;
        for i in 0..self.slots.len() {
            if { self.slots[i].key } != 0 {
                self.slots[n] = self.slots[i];
                n += 1;
            }
        }
        self.slots[..n].sort_unstable_by_key(|s| s.key);
        let this = &*self;
        let entries = this.slots[..n].iter().map(|s| match text {
            true => {
                let (line, bytes) = this.entry(s.val);
                (s.key, line, bytes)
            }
            false => (s.key, s.val, &[][..]),
        });
        match Run::write(dir, text, n, entries) {
            Ok(run) => {
                self.runs.push(run);
                self.slots.fill(Slot::default());
                self.len = 0;
                self.arena.clear();
                self.committed = 0;
                Ok(())
            }
            Err(e) => {
                let cap = self.slots.len();
                let old = std::mem::replace(&mut self.slots, vec![Slot::default(); cap * 3 / 2]);
                self.reinsert(&old[..n]);
                Err(e)
            }
        }
    }
}

/// A key as the index sees it: an integer, or the hash and typed bytes of a text or composite key.
#[derive(Debug)]
pub enum Key {
    Int(u64),
    Bytes(u64, KeyBytes),
}

/// The typed bytes of a key, inline up to 48 bytes (no allocation for most keys).
#[derive(Debug, Clone)]
pub struct KeyBytes {
    len: usize,
    inline: [u8; 48],
    heap: Vec<u8>,
}

impl Default for KeyBytes {
    fn default() -> Self {
        KeyBytes { len: 0, inline: [0; 48], heap: Vec::new() }
    }
}

impl KeyBytes {
    fn push(&mut self, b: &[u8]) {
        if self.heap.is_empty() && self.len + b.len() <= self.inline.len() {
            self.inline[self.len..self.len + b.len()].copy_from_slice(b);
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline[..self.len]);
            }
            self.heap.extend_from_slice(b);
        }
        self.len += b.len();
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.heap.is_empty() { &self.inline[..self.len] } else { &self.heap }
    }
}

impl Key {
    /// A text key with a hash chosen by the caller (tests make keys collide with it).
    pub fn with_hash(hash: u64, bytes: &[u8]) -> Key {
        let mut b = KeyBytes::default();
        b.push(bytes);
        Key::Bytes(hash, b)
    }
}

/// The in-file index of one key: a table in memory and, past its budget, runs on disk.
pub struct KeyIndex {
    ints: Table,
    texts: Table,
    /// The integer key that mixes to 0 (the empty-slot marker) is kept aside.
    zero: Option<u32>,
    /// XORed into every key before mixing: where a key lands depends on a secret.
    seed: u64,
    /// Memory the index may hold, in bytes; past it, it spills.
    budget: usize,
    dir: SpillDir,
    /// Scratch space for one block of a run.
    block: Vec<u8>,
    error: Option<KeyIndexError>,
}

impl Default for KeyIndex {
    /// An empty index with a random seed and the default budget.
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
    Vacant { slot: usize, mixed: u64, text: bool },
}

impl KeyIndex {
    /// An empty index whose slots are chosen by `seed` (tests use a fixed one).
    pub fn with_seed(seed: u64) -> Self {
        KeyIndex {
            ints: Table::default(),
            texts: Table::default(),
            zero: None,
            seed,
            budget: crate::Limits::default().key_index_bytes,
            dir: SpillDir::default(),
            block: Vec::new(),
            error: None,
        }
    }

    /// Sets the memory the index may hold (in bytes) and where it spills (`None`: the OS temp
    /// dir). Keys already in memory stay until the next time the table is full.
    pub fn set_budget(&mut self, bytes: usize, spill_dir: Option<PathBuf>) {
        self.budget = bytes;
        self.dir.set_base(spill_dir);
    }

    /// Makes the table of `text` or integer keys large enough for `keys` keys at once, within
    /// the budget (at most what the budget allows with the other table as it is), so that a
    /// file whose size says how many rows it holds does not grow its table by half a dozen
    /// times, each allocating, touching and refilling a larger one. Only grows; an estimate
    /// past the budget gives the largest table the budget allows, as a spill would, and for
    /// text keys a quarter of that: the rest is for their bytes, which grow by doubling (a table
    /// of the whole budget spilled a run of a few keys each time the bytes grew).
    pub fn expect(&mut self, keys: usize, text: bool) {
        let (t, other) = if text { (&self.texts, &self.ints) } else { (&self.ints, &self.texts) };
        let room = self.budget.saturating_sub(other.bytes() + t.arena.capacity()) / 12;
        let room = if text { room / 4 } else { room };
        let cap = (keys.saturating_add(1).saturating_mul(20) / 17 + 1).min(room);
        if cap > t.slots.len() && t.len == 0 && t.runs.is_empty() {
            let t = if text { &mut self.texts } else { &mut self.ints };
            t.slots = Vec::new();
            t.rehash(cap);
        }
    }

    /// The error of a spill that failed, once.
    pub fn take_error(&mut self) -> Option<KeyIndexError> {
        self.error.take()
    }

    /// Memory held, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.ints.bytes() + self.texts.bytes()
    }

    /// Bytes spilled to disk.
    pub fn disk_bytes(&self) -> u64 {
        self.ints.runs.iter().chain(&self.texts.runs).map(Run::disk_bytes).sum()
    }

    /// Starts loading `key`'s slot into the cache; a later [`KeyIndex::probe`] then waits less.
    #[inline]
    pub fn prefetch(&self, key: &Key) {
        #[cfg(target_arch = "x86_64")]
        {
            let (t, k) = match key {
                Key::Int(v) => (&self.ints, mixed(v ^ self.seed)),
                Key::Bytes(h, _) => (&self.texts, *h),
            };
            if !t.slots.is_empty() {
                let p = &t.slots[slot(k, t.slots.len())] as *const Slot as *const i8;
                // SAFETY: a prefetch is a hint; it never faults, and `p` points into `slots`.
                unsafe { std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = key;
    }

    /// Looks `key` up, making room first so that a vacant answer can be claimed.
    #[inline]
    pub fn probe(&mut self, key: Key) -> Probe {
        match key {
            Key::Int(v) => self.probe_int(v),
            Key::Bytes(h, b) => self.probe_text(h, b.as_slice()),
        }
    }

    #[inline]
    fn probe_int(&mut self, key: u64) -> Probe {
        let k = mixed(key ^ self.seed);
        if k == 0 {
            return match self.zero {
                Some(l) => Probe::Seen(l as u64),
                None => Probe::Vacant { slot: usize::MAX, mixed: 0, text: false },
            };
        }
        if (self.ints.len + 1) * 20 > self.ints.slots.len() * 17 {
            self.make_room(false, 0);
        }
        let t = &self.ints;
        let cap = t.slots.len();
        let mut i = slot(k, cap);
        loop {
            let Slot { key: at, val: line } = t.slots[i];
            if at == 0 {
                break;
            }
            if at == k {
                return Probe::Seen(line as u64);
            }
            i = if i + 1 == cap { 0 } else { i + 1 };
        }
        if !t.runs.is_empty()
            && let Some(line) = self.find_in_runs(false, k, &[])
        {
            return Probe::Seen(line as u64);
        }
        Probe::Vacant { slot: i, mixed: k, text: false }
    }

    fn probe_text(&mut self, hash: u64, bytes: &[u8]) -> Probe {
        // 0 marks an empty slot; the bytes tell keys apart anyway.
        let k = hash.max(1);
        let need = 4 + 10 + bytes.len();
        self.texts.arena.truncate(self.texts.committed);
        if (self.texts.len + 1) * 20 > self.texts.slots.len() * 17
            || self.texts.arena.len() + need > self.texts.arena.capacity()
        {
            self.make_room(true, need);
        }
        let t = &self.texts;
        let cap = t.slots.len();
        let mut i = slot(k, cap);
        loop {
            let Slot { key: at, val } = t.slots[i];
            if at == 0 {
                break;
            }
            if at == k {
                let (line, b) = t.entry(val);
                if b == bytes {
                    return Probe::Seen(line as u64);
                }
            }
            i = if i + 1 == cap { 0 } else { i + 1 };
        }
        if !t.runs.is_empty()
            && let Some(line) = self.find_in_runs(true, k, bytes)
        {
            return Probe::Seen(line as u64);
        }
        // The key goes after the claimed ones; `claim` sets its line and keeps it.
        let a = &mut self.texts.arena;
        a.extend_from_slice(&[0; 4]);
        crate::leb128::write(bytes.len() as u64, |b| a.push(b));
        a.extend_from_slice(bytes);
        Probe::Vacant { slot: i, mixed: k, text: true }
    }

    #[cold]
    fn find_in_runs(&mut self, text: bool, k: u64, bytes: &[u8]) -> Option<u32> {
        let t = if text { &self.texts } else { &self.ints };
        // Each run's filter is a cache miss: start them all before waiting for any.
        t.runs.iter().for_each(|r| r.prefetch(k));
        for run in &t.runs {
            match run.find(k, bytes, &mut self.block) {
                Ok(Some(line)) => return Some(line),
                Ok(None) => {}
                Err(e) => {
                    // The job stops on this error; meanwhile the key counts as new.
                    self.error.get_or_insert_with(|| KeyIndexError::new(&self.dir.location(), e));
                }
            }
        }
        None
    }

    /// Grows the table (or the arena) of text keys (`text`) or integer keys, or, if that would
    /// pass the budget, spills it.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, text: bool, need: usize) {
        let (t, other) = if text { (&self.texts, &self.ints) } else { (&self.ints, &self.texts) };
        let cap = t.slots.len();
        let grow = (t.len + 1) * 20 > cap * 17;
        let new_cap = if grow { (cap * 3 / 2).max(1024) } else { cap };
        let (used, have) = (t.arena.len(), t.arena.capacity());
        let new_arena = if used + need > have { (used + need).max(have * 2).max(4096) } else { have };
        // While growing, the old table (or arena) and the new one are both held.
        let peak = other.bytes()
            + t.bytes()
            + if grow { new_cap * 12 } else { 0 }
            + if new_arena > have { new_arena } else { 0 };
        let fits = peak <= self.budget && new_arena <= u32::MAX as usize;
        if !fits && t.len > 0 {
            let t = if text { &mut self.texts } else { &mut self.ints };
            match t.spill(&mut self.dir, text) {
                Ok(()) => {
                    if t.arena.capacity() < need {
                        t.arena.reserve_exact(need);
                    }
                    // The empty table is made as large as the budget now allows (the runs'
                    // filters take a share of it): the old one is freed first, so this holds
                    // no two tables at once, and fewer, longer runs make lookups cheaper.
                    let other = if text { self.ints.bytes() } else { self.texts.bytes() };
                    let t = if text { &mut self.texts } else { &mut self.ints };
                    let rest = other + t.bytes() - t.slots.capacity() * 12;
                    // At least half the budget, whatever the filters take: a table squeezed to
                    // nothing would spill every few keys and add a filter to check each time.
                    let cap = (self.budget.saturating_sub(rest) / 12).max(self.budget / 24).max(1024);
                    if cap != t.slots.len() {
                        t.slots = Vec::new();
                        t.rehash(cap);
                    }
                    return;
                }
                Err(e) => {
                    self.error.get_or_insert_with(|| KeyIndexError::new(&self.dir.location(), e));
                }
            }
        }
        let t = if text { &mut self.texts } else { &mut self.ints };
        if (t.len + 1) * 20 > t.slots.len() * 17 {
            t.rehash((t.slots.len() * 3 / 2).max(1024));
        }
        if t.arena.len() + need > t.arena.capacity() {
            t.arena.reserve_exact(new_arena.max(t.arena.len() + need) - t.arena.len());
        }
    }

    /// [`KeyIndex::probe`] and, if the key is new, [`KeyIndex::claim`] for `line` at once:
    /// `None` once claimed, or the line the key was first seen on. For a key whose row has
    /// passed everything else, where nothing can come between the probe and the claim. (A probe
    /// handed back to the caller and then to `claim` went through memory twice: a third of the
    /// time of the validator's key loop.)
    #[inline]
    pub fn claim_new(&mut self, key: Key, line: u64) -> Option<u64> {
        match self.probe(key) {
            Probe::Seen(first) => Some(first),
            vacant => {
                self.claim(vacant, line);
                None
            }
        }
    }

    /// Records a key found vacant by the last [`KeyIndex::probe`].
    #[inline]
    pub fn claim(&mut self, probe: Probe, line: u64) {
        let line = u32::try_from(line).unwrap_or(u32::MAX);
        match probe {
            Probe::Vacant { mixed: 0, text: false, .. } => self.zero = Some(line),
            Probe::Vacant { slot, mixed, text: false } => {
                self.ints.slots[slot] = Slot { key: mixed, val: line };
                self.ints.len += 1;
            }
            Probe::Vacant { slot, mixed, text: true } => {
                let t = &mut self.texts;
                let at = t.committed;
                t.arena[at..at + 4].copy_from_slice(&line.to_le_bytes());
                t.slots[slot] = Slot { key: mixed, val: at as u32 };
                t.len += 1;
                t.committed = t.arena.len();
            }
            Probe::Seen(_) => {}
        }
    }
}

/// `cap` empty slots, from memory the allocator hands out zeroed: a large table comes straight
/// from fresh pages that the kernel zeroes as keys land in them, with no pass writing zeros
/// first. (Keys land all over the table, so a file with few of them still touches most pages.)
fn zeroed_slots(cap: usize) -> Vec<Slot> {
    let layout = std::alloc::Layout::array::<Slot>(cap).expect("a table within its budget");
    if layout.size() == 0 {
        return Vec::new();
    }
    // SAFETY: the layout is that of `cap` slots, which the Vec frees with the same layout; a
    // slot is two integers, and all-zero bytes are a valid (empty) slot.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout) as *mut Slot;
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Vec::from_raw_parts(p, cap, cap)
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

/// Builds a composite or non-integer key from byte pieces: a keyed 64-bit hash (SipHash-1-3,
/// with the keys of `RandomState`; an unkeyed hash such as FNV let anyone write keys that
/// collide) and the pieces themselves, each after its length, which the index compares.
pub struct KeyHasher {
    hash: std::hash::DefaultHasher,
    bytes: KeyBytes,
}

impl KeyHasher {
    pub fn new(keys: &std::hash::RandomState) -> Self {
        KeyHasher { hash: std::hash::BuildHasher::build_hasher(keys), bytes: KeyBytes::default() }
    }

    pub fn piece(&mut self, bytes: &[u8]) {
        use std::hash::Hasher;
        self.hash.write(bytes);
        // The length with each piece, so that ("ab","c") and ("a","bc") differ.
        self.hash.write_usize(bytes.len());
        let (mut len, mut at) = ([0u8; 10], 0);
        crate::leb128::write(bytes.len() as u64, |b| {
            len[at] = b;
            at += 1;
        });
        self.bytes.push(&len[..at]);
        self.bytes.push(bytes);
    }

    pub fn finish(self) -> Key {
        Key::Bytes(std::hash::Hasher::finish(&self.hash), self.bytes)
    }
}

#[cfg(test)]
impl KeyIndex {
    /// The line where `key` was first recorded, if it was.
    pub fn get(&mut self, key: u64) -> Option<u64> {
        match self.probe(Key::Int(key)) {
            Probe::Seen(l) => Some(l),
            Probe::Vacant { .. } => None,
        }
    }

    /// Records `key` first seen on `line`; returns the earlier line if the key was seen.
    pub fn insert(&mut self, key: u64, line: u64) -> Option<u64> {
        self.claim_new(Key::Int(key), line)
    }
}

#[cfg(test)]
mod tests;
