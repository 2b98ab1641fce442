//! The envelope around every value stored in L2: a small versioned header, then the
//! (possibly compressed) payload the [`Codec`](crate::Codec) produced.
//!
//! # Format, version 1 (all integers little-endian)
//! | bytes | field |
//! |---|---|
//! | 0..2 | magic `b"LC"` |
//! | 2 | format version (`1`) |
//! | 3 | flags: bit 0 = payload is lz4 block-compressed with its decompressed size (u32) first; bit 1 = cached absence (no payload) |
//! | 4..8 | key check: CRC-32 of the full L2 key |
//! | 8..16 | created at, Unix milliseconds |
//! | 16..24 | expires at, Unix milliseconds (`0`: no expiry) |
//! | 24..28 | stored payload length in bytes |
//! | 28..32 | CRC-32 of bytes 0..28 and the payload |
//! | 32.. | payload |
//!
//! [`decode`] accepts exactly that and nothing else: foreign bytes, another key's envelope,
//! a truncated or extended record, a flipped bit, a newer version, or a payload that would
//! decompress beyond the size cap are each a [`DecodeError`], never a panic (checked by the
//! `envelope` fuzz target, see `crates/layercache/fuzz`).

use std::borrow::Cow;

const MAGIC: &[u8; 2] = b"LC";
/// The envelope format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Header bytes before the payload.
pub const HEADER_LEN: usize = 32;
const FLAG_LZ4: u8 = 1;
const FLAG_ABSENT: u8 = 2;

/// A decoded envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Unix milliseconds when the value was written.
    pub created_ms: u64,
    /// Unix milliseconds when it expires (`None`: no expiry).
    pub expires_ms: Option<u64>,
    /// The codec's bytes, decompressed; `None` for a cached absence.
    pub payload: Option<Cow<'a, [u8]>>,
}

/// Why bytes are not a valid envelope for a key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the header, or the header's length disagrees with the record's.
    #[error("truncated or extended record")]
    Length,
    /// Not an envelope at all.
    #[error("bad magic")]
    Magic,
    /// An envelope of a format version this crate does not read.
    #[error("unsupported envelope version {0}")]
    Version(u8),
    /// Unknown flag bits.
    #[error("unknown flags {0:#04x}")]
    Flags(u8),
    /// The envelope of another key.
    #[error("envelope belongs to another key")]
    KeyMismatch,
    /// Bytes changed after writing.
    #[error("checksum mismatch")]
    Checksum,
    /// The payload is (or would decompress to) more than the size cap.
    #[error("payload over the size cap")]
    TooLarge,
    /// The compressed payload does not decompress.
    #[error("corrupt compressed payload")]
    Decompress,
}

impl DecodeError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Length => "length",
            DecodeError::Magic => "magic",
            DecodeError::Version(_) => "version",
            DecodeError::Flags(_) => "flags",
            DecodeError::KeyMismatch => "key_mismatch",
            DecodeError::Checksum => "checksum",
            DecodeError::TooLarge => "too_large",
            DecodeError::Decompress => "decompress",
        }
    }
}

/// Wraps `payload` (`None`: a cached absence) for `key`, compressing it with lz4 when it is
/// longer than `compress_above` bytes and compression makes it smaller.
pub fn encode(
    key: &[u8],
    payload: Option<&[u8]>,
    created_ms: u64,
    expires_ms: Option<u64>,
    compress_above: usize,
) -> Vec<u8> {
    let mut flags = 0;
    let compressed;
    let body: &[u8] = match payload {
        None => {
            flags |= FLAG_ABSENT;
            &[]
        }
        Some(p) if p.len() > compress_above => {
            compressed = lz4_flex::compress_prepend_size(p);
            if compressed.len() < p.len() {
                flags |= FLAG_LZ4;
                &compressed
            } else {
                p
            }
        }
        Some(p) => p,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(flags);
    out.extend_from_slice(&crc32fast::hash(key).to_le_bytes());
    out.extend_from_slice(&created_ms.to_le_bytes());
    out.extend_from_slice(&expires_ms.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out[..28]);
    crc.update(body);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Checks and opens the envelope `bytes` stored under `key`; the decompressed payload may be
/// at most `max_payload` bytes.
///
/// # Errors
/// [`DecodeError`] saying what is wrong; the caller treats the entry as a miss.
pub fn decode<'a>(
    key: &[u8],
    bytes: &'a [u8],
    max_payload: usize,
) -> Result<Envelope<'a>, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(if bytes.starts_with(MAGIC) || bytes.len() < 2 {
            DecodeError::Length
        } else {
            DecodeError::Magic
        });
    }
    if &bytes[..2] != MAGIC {
        return Err(DecodeError::Magic);
    }
    if bytes[2] != VERSION {
        return Err(DecodeError::Version(bytes[2]));
    }
    let flags = bytes[3];
    if flags & !(FLAG_LZ4 | FLAG_ABSENT) != 0 || flags == FLAG_LZ4 | FLAG_ABSENT {
        return Err(DecodeError::Flags(flags));
    }
    let len = u32_at(bytes, 24) as usize;
    if bytes.len() - HEADER_LEN != len {
        return Err(DecodeError::Length);
    }
    let body = &bytes[HEADER_LEN..];
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[..28]);
    crc.update(body);
    if crc.finalize() != u32_at(bytes, 28) {
        return Err(DecodeError::Checksum);
    }
    if u32_at(bytes, 4) != crc32fast::hash(key) {
        return Err(DecodeError::KeyMismatch);
    }
    let created_ms = u64_at(bytes, 8);
    let expires_ms = Some(u64_at(bytes, 16)).filter(|&e| e != 0);
    let payload = if flags & FLAG_ABSENT != 0 {
        if !body.is_empty() {
            return Err(DecodeError::Length);
        }
        None
    } else if flags & FLAG_LZ4 != 0 {
        if body.len() < 4 || u32_at(body, 0) as usize > max_payload {
            return Err(DecodeError::TooLarge);
        }
        let out = lz4_flex::decompress_size_prepended(body).map_err(|_| DecodeError::Decompress)?;
        Some(Cow::Owned(out))
    } else {
        if body.len() > max_payload {
            return Err(DecodeError::TooLarge);
        }
        Some(Cow::Borrowed(body))
    };
    Ok(Envelope {
        created_ms,
        expires_ms,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_plain_compressed_and_absent() {
        let big = vec![7u8; 10_000];
        for (payload, compress_above) in
            [(&b"hello"[..], 100), (&big[..], 100), (&big[..], 1 << 20)]
        {
            let e = encode(b"k", Some(payload), 5, Some(9), compress_above);
            let d = decode(b"k", &e, 1 << 20).unwrap();
            assert_eq!(d.payload.as_deref(), Some(payload));
            assert_eq!((d.created_ms, d.expires_ms), (5, Some(9)));
        }
        assert!(
            encode(b"k", Some(&big), 0, None, 100).len() < 200,
            "compressible payloads shrink"
        );
        let e = encode(b"k", None, 1, None, 0);
        assert_eq!(decode(b"k", &e, 10).unwrap().payload, None);
    }

    #[test]
    fn rejects_what_is_not_its_own() {
        let e = encode(b"k", Some(b"value"), 1, None, 1000);
        assert_eq!(decode(b"other", &e, 100), Err(DecodeError::KeyMismatch));
        assert_eq!(
            decode(b"k", &e[..e.len() - 1], 100),
            Err(DecodeError::Length)
        );
        assert_eq!(decode(b"k", &e[..10], 100), Err(DecodeError::Length));
        assert_eq!(
            decode(b"k", b"{\"json\": true, \"padding\": 1234567}", 100),
            Err(DecodeError::Magic)
        );
        let mut flipped = e.clone();
        flipped[HEADER_LEN] ^= 1;
        assert_eq!(decode(b"k", &flipped, 100), Err(DecodeError::Checksum));
        let mut newer = e.clone();
        newer[2] = 2;
        assert_eq!(decode(b"k", &newer, 100), Err(DecodeError::Version(2)));
        assert_eq!(decode(b"k", &e, 3), Err(DecodeError::TooLarge));
        let bomb = encode(b"k", Some(&vec![0u8; 1 << 20]), 0, None, 0);
        assert_eq!(decode(b"k", &bomb, 1000), Err(DecodeError::TooLarge));
    }

    /// A valid envelope's inputs: key, payload (`None`: an absence), created, expires and
    /// `compress_above`.
    type Inputs = (Vec<u8>, Option<Vec<u8>>, u64, Option<u64>, usize);

    fn inputs() -> impl Strategy<Value = Inputs> {
        let payload = prop_oneof![
            Just(None),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Some),
            // Compressible: lz4 shrinks it, so it is stored compressed when over the limit.
            (any::<u8>(), 0usize..2000).prop_map(|(b, n)| Some(vec![b; n])),
        ];
        let compress_above = prop_oneof![Just(0), Just(usize::MAX), 0usize..300];
        (
            proptest::collection::vec(any::<u8>(), 0..40),
            payload,
            any::<u64>(),
            proptest::option::of(1..=u64::MAX),
            compress_above,
        )
    }

    /// One change to a record.
    #[derive(Clone, Debug)]
    enum Mutation {
        /// XOR one byte with a non-zero mask.
        Flip(prop::sample::Index, u8),
        /// Insert a byte before position `index` (of `len + 1` places).
        Insert(prop::sample::Index, u8),
        /// Remove one byte.
        Delete(prop::sample::Index),
        /// Keep only the first `index` bytes (of `len` choices: 0 to `len - 1`).
        Truncate(prop::sample::Index),
        /// Append bytes.
        Extend(Vec<u8>),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<prop::sample::Index>(), 1..=u8::MAX).prop_map(|(i, x)| Mutation::Flip(i, x)),
            (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
            any::<prop::sample::Index>().prop_map(Mutation::Delete),
            any::<prop::sample::Index>().prop_map(Mutation::Truncate),
            proptest::collection::vec(any::<u8>(), 1..40).prop_map(Mutation::Extend),
        ]
    }

    /// The error the format documented above gives for flipping byte `at` of a valid record
    /// to `new`: the fields are checked in order magic, version, flags, length, checksum, and
    /// the checksum covers every byte but its own field, which it must then disagree with.
    fn flip_error(at: usize, new: u8) -> DecodeError {
        match at {
            0 | 1 => DecodeError::Magic,
            2 => DecodeError::Version(new),
            3 if new & !(FLAG_LZ4 | FLAG_ABSENT) != 0 || new == FLAG_LZ4 | FLAG_ABSENT => {
                DecodeError::Flags(new)
            }
            24..=27 => DecodeError::Length,
            _ => DecodeError::Checksum,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every change to a valid envelope is rejected, with the error the format says: a
        /// record whose length no longer matches its header is `Length`, a changed byte is
        /// caught by the field it lands in or else by the checksum. (An insertion or
        /// deletion inside the header shifts the fields, so it is only required to fail.)
        #[test]
        fn every_change_to_a_valid_envelope_is_rejected(
            (key, payload, created, expires, compress_above) in inputs(),
            change in mutation(),
        ) {
            let e = encode(&key, payload.as_deref(), created, expires, compress_above);
            // The unchanged record opens to what was sealed.
            let env = decode(&key, &e, 1 << 20).expect("a valid envelope");
            prop_assert_eq!(env.payload.as_deref(), payload.as_deref());
            prop_assert_eq!((env.created_ms, env.expires_ms), (created, expires));

            let mut m = e.clone();
            let expected = match &change {
                Mutation::Flip(i, xor) => {
                    let at = i.index(e.len());
                    m[at] ^= xor;
                    Some(flip_error(at, m[at]))
                }
                Mutation::Insert(i, b) => {
                    let at = i.index(e.len() + 1);
                    m.insert(at, *b);
                    (at >= HEADER_LEN).then_some(DecodeError::Length)
                }
                Mutation::Delete(i) => {
                    let at = i.index(e.len());
                    m.remove(at);
                    (at >= HEADER_LEN).then_some(DecodeError::Length)
                }
                Mutation::Truncate(i) => {
                    m.truncate(i.index(e.len()));
                    Some(DecodeError::Length)
                }
                Mutation::Extend(more) => {
                    m.extend_from_slice(more);
                    Some(DecodeError::Length)
                }
            };
            let got = decode(&key, &m, 1 << 20);
            match expected {
                Some(err) => prop_assert_eq!(got, Err(err), "{:?} of {:02x?}", change, e),
                None => prop_assert!(got.is_err(), "{:?} of {:02x?} decoded: {:?}", change, e, got),
            }
        }

        /// A valid envelope read under another key is that key's miss.
        #[test]
        fn another_keys_envelope_is_rejected(
            (key, payload, created, expires, compress_above) in inputs(),
            other in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            prop_assume!(crc32fast::hash(&other) != crc32fast::hash(&key));
            let e = encode(&key, payload.as_deref(), created, expires, compress_above);
            prop_assert_eq!(decode(&other, &e, 1 << 20), Err(DecodeError::KeyMismatch));
        }
    }
}
