//! Unsigned LEB128: 7 bits a byte, low bits first, the high bit set on every byte but the last.
//! The lengths in the key index's arena and hash, and the run headers of Parquet's RLE /
//! bit-packed hybrid (its ULEB128), are written with it.

/// Hands the bytes of `v` to `put`, low bits first.
#[inline]
pub(crate) fn write(mut v: u64, mut put: impl FnMut(u8)) {
    while v >= 0x80 {
        put(v as u8 | 0x80);
        v >>= 7;
    }
    put(v as u8);
}

/// The value at the start of `b`, and the bytes it took.
pub(crate) fn read(b: &[u8]) -> (u64, usize) {
    let (mut n, mut shift, mut i) = (0u64, 0, 0);
    loop {
        let byte = b[i];
        n |= u64::from(byte & 0x7f) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            return (n, i);
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_read_back_as_written_in_as_few_bytes_as_they_need() {
        for (v, len) in [(0u64, 1), (1, 1), (127, 1), (128, 2), (300, 2), (16_383, 2), (16_384, 3), (u64::MAX, 10)] {
            let mut out = Vec::new();
            super::write(v, |b| out.push(b));
            assert_eq!(out.len(), len, "{v}");
            out.push(0xff);
            assert_eq!(super::read(&out), (v, len), "{v}");
        }
    }
}
