//! The record format: what the store holds under each key (see the crate docs, "Record
//! format").
//!
//! ```text
//! offset  size  field
//!      0     4  crc32 (IEEE, little-endian) of: key length (u64 LE) ‖ key ‖ bytes 4.. below
//!      4     1  format (1)
//!      5     8  expiry, unix milliseconds, little-endian (0 = none)
//!     13     8  sequence number of the write, little-endian
//!     21     n  payload (the value)
//! ```

/// The header's length in bytes.
pub(crate) const HEADER: usize = 21;

/// The format byte this build writes and reads.
pub(crate) const FORMAT: u8 = 1;

/// The header fields of a record, read without checking the checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Absolute expiry in unix milliseconds, 0 for none.
    pub(crate) expiry: u64,
    /// The sequence number of the write (the key of its insertion-order index entry).
    pub(crate) seq: u64,
}

impl Header {
    /// Whether a record with this header is expired at `now` (unix milliseconds).
    pub(crate) fn is_expired(self, now: u64) -> bool {
        self.expiry != 0 && self.expiry <= now
    }
}

/// A buffer holding `payload` after room for the header; [`seal`] fills the header in.
pub(crate) fn unsealed(payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER + payload.len());
    record.resize(HEADER, 0);
    record.extend_from_slice(payload);
    record
}

/// Writes the header of `record` (built by [`unsealed`]) for `key`: format, `expiry`, `seq`,
/// then the checksum over all of it.
pub(crate) fn seal(record: &mut [u8], key: &[u8], expiry: u64, seq: u64) {
    record[4] = FORMAT;
    record[5..13].copy_from_slice(&expiry.to_le_bytes());
    record[13..21].copy_from_slice(&seq.to_le_bytes());
    let crc = checksum(key, &record[4..]);
    record[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// A whole record for `key` (the tier builds records with [`unsealed`] and [`seal`] instead,
/// to copy the payload once).
#[cfg(test)]
pub(crate) fn encode(key: &[u8], expiry: u64, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut record = unsealed(payload);
    seal(&mut record, key, expiry, seq);
    record
}

/// The header of `record`, unchecked; `None` if it is too short or of another format.
pub(crate) fn header(record: &[u8]) -> Option<Header> {
    if record.len() < HEADER || record[4] != FORMAT {
        return None;
    }
    Some(Header {
        expiry: u64::from_le_bytes(record[5..13].try_into().ok()?),
        seq: u64::from_le_bytes(record[13..21].try_into().ok()?),
    })
}

/// The header and payload of `record` stored under `key` if its checksum matches; `None` if
/// it does not parse or does not match (a torn or corrupted record).
pub(crate) fn decode<'r>(key: &[u8], record: &'r [u8]) -> Option<(Header, &'r [u8])> {
    let header = header(record)?;
    let stored = u32::from_le_bytes(record[0..4].try_into().ok()?);
    (checksum(key, &record[4..]) == stored).then(|| (header, &record[HEADER..]))
}

fn checksum(key: &[u8], rest: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(rest);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = encode(b"key", 1234, 7, b"payload");
        assert_eq!(r.len(), HEADER + 7);
        let (h, p) = decode(b"key", &r).unwrap();
        assert_eq!(
            h,
            Header {
                expiry: 1234,
                seq: 7
            }
        );
        assert_eq!(p, b"payload");
        assert_eq!(header(&r), Some(h));
        let empty = encode(b"", 0, 0, b"");
        assert_eq!(
            decode(b"", &empty),
            Some((Header { expiry: 0, seq: 0 }, &b""[..]))
        );
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_refused() {
        let r = encode(b"key", 99, 3, b"some payload bytes");
        for i in 0..r.len() {
            for bit in 0..8 {
                let mut bad = r.clone();
                bad[i] ^= 1 << bit;
                assert_eq!(decode(b"key", &bad), None, "byte {i} bit {bit}");
            }
        }
        for len in 0..r.len() {
            assert_eq!(decode(b"key", &r[..len]), None, "truncated to {len}");
        }
        // The key is covered too: a record moved under another key does not check.
        assert_eq!(decode(b"kex", &r), None);
        assert_eq!(decode(b"ke", &r), None);
    }

    #[test]
    fn expiry_zero_means_never() {
        let h = Header { expiry: 0, seq: 1 };
        assert!(!h.is_expired(u64::MAX));
        let h = Header { expiry: 10, seq: 1 };
        assert!(!h.is_expired(9));
        assert!(h.is_expired(10));
    }
}
