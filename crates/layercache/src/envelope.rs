//! The envelope around every value stored in L2: a small versioned header, the entry's
//! coherence metadata (the backplane position its load started from, its tags), then the
//! (possibly compressed) payload the [`Codec`](crate::Codec) produced.
//!
//! # Format, version 2 (written; all integers little-endian)
//! | bytes | field |
//! |---|---|
//! | 0..2 | magic `b"LC"` |
//! | 2 | format version (`2`) |
//! | 3 | flags: bit 0 = payload is lz4 block-compressed with its decompressed size (u32) first; bit 1 = cached absence (no payload) |
//! | 4..8 | key check: CRC-32 of the full L2 key |
//! | 8..16 | created at, Unix milliseconds |
//! | 16..24 | expires at, Unix milliseconds (`0`: no expiry) |
//! | 24..32 | version: [`StreamId::ms`] the writer had applied when the load began (`0-0`: unknown) |
//! | 32..40 | version: [`StreamId::seq`] |
//! | 40 | tag count `t`, 0 to [`MAX_TAGS`] |
//! | 41..43 | tag section length in bytes (u16): the sum of `1 + len` over the tags |
//! | 43..47 | stored payload length in bytes (u32) |
//! | 47..51 | CRC-32 of every byte of the record but these four (0..47, then 51..) |
//! | 51.. | tag section: `t` times a length byte (1 to [`MAX_TAG_LEN`]) and that many bytes of UTF-8 |
//! | then | payload |
//!
//! # Format, version 1 (read only; [`Envelope::version`] is [`StreamId::ZERO`], no tags)
//! | bytes | field |
//! |---|---|
//! | 0..2 | magic `b"LC"` |
//! | 2 | format version (`1`) |
//! | 3 | flags, as in version 2 |
//! | 4..8 | key check: CRC-32 of the full L2 key |
//! | 8..16 | created at, Unix milliseconds |
//! | 16..24 | expires at, Unix milliseconds (`0`: no expiry) |
//! | 24..28 | stored payload length in bytes |
//! | 28..32 | CRC-32 of bytes 0..28 and the payload |
//! | 32.. | payload |
//!
//! [`decode`] accepts exactly those and nothing else: foreign bytes, another key's envelope,
//! a truncated or extended record, a flipped bit, a newer version, malformed tags, or a
//! payload that would decompress beyond the size cap are each a [`DecodeError`], never a
//! panic (checked by the `envelope` fuzz target, see `crates/layercache/fuzz`). In version 2
//! the checksum is verified before the tag section is parsed, so a changed tag byte is
//! [`DecodeError::Checksum`]; [`DecodeError::Tags`] means a writer that broke the format.
//!
//! A reader of version 1 only (a release before this format) sees a version 2 record as
//! [`DecodeError::Version`]`(2)`, a miss it deletes: during a rolling upgrade old and new
//! instances cost each other L2 hits, never a wrong value.
//!
//! # Leases
//! [`lease`] makes a record that is not an envelope: magic `b"LL"`, a version byte (`1`)
//! and an 8-byte token (11 bytes in all). It is the marker of memcache's leases (Nishtala
//! et al., *Scaling Memcache at Facebook*, NSDI 2013): a filler that missed a key takes it
//! by an `add` (set if absent) of a lease with a random token, loads the value, and
//! replaces the lease by the value's envelope with a compare-and-set against its own lease
//! bytes. A delete or set of the key in between (an invalidation) removes or replaces the
//! lease, so the late fill fails instead of writing a value older than the invalidation;
//! and other readers that find the lease know that someone is filling the key (they can
//! wait for the fill rather than load too). [`decode`] rejects a lease with
//! [`DecodeError::Lease`], which is neither corruption nor a value: the caller must not
//! delete it.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use layercache_tier::StreamId;

const MAGIC: &[u8; 2] = b"LC";
/// The envelope format version this crate writes ([`decode`] also reads version 1).
pub const VERSION: u8 = 2;
/// Fixed header bytes before the tag section (version 2): a record without tags has its
/// payload at this offset.
pub const HEADER_LEN: usize = 51;
/// The most tags an envelope carries.
pub const MAX_TAGS: usize = 64;
/// The longest tag, in bytes of UTF-8 (the shortest is 1 byte).
pub const MAX_TAG_LEN: usize = 255;
const V1: u8 = 1;
const V1_HEADER_LEN: usize = 32;
const FLAG_LZ4: u8 = 1;
const FLAG_ABSENT: u8 = 2;
const LEASE_MAGIC: &[u8; 2] = b"LL";
const LEASE_VERSION: u8 = 1;
/// Bytes of a [`lease`] record.
pub const LEASE_LEN: usize = 11;

/// A decoded envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Unix milliseconds when the value was written.
    pub created_ms: u64,
    /// Unix milliseconds when it expires (`None`: no expiry).
    pub expires_ms: Option<u64>,
    /// The backplane position the writer had applied when the value's load began
    /// ([`StreamId::ZERO`]: unknown, and always for a version 1 record).
    pub version: StreamId,
    /// The entry's tags, in the order written, borrowed from the record (empty in version 1).
    pub tags: Vec<Cow<'a, str>>,
    /// The codec's bytes, decompressed; `None` for a cached absence.
    pub payload: Option<Cow<'a, [u8]>>,
}

/// What [`encode_with`] writes besides the key check and the payload.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta<'a> {
    /// Unix milliseconds when the value was written.
    pub created_ms: u64,
    /// Unix milliseconds when it expires (`None`, or `Some(0)`, on the wire: no expiry).
    pub expires_ms: Option<u64>,
    /// The backplane position this instance had applied when the value's load began
    /// ([`StreamId::ZERO`] when unknown).
    pub version: StreamId,
    /// The entry's tags: at most [`MAX_TAGS`], each 1 to [`MAX_TAG_LEN`] bytes (see
    /// [`check_tags`]).
    pub tags: &'a [Arc<str>],
}

/// Why bytes are not a valid envelope for a key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the header, or the header's lengths disagree with the record's.
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
    /// The tag section (checksum intact) breaks the format: too many tags, an empty tag,
    /// not UTF-8, or not filling the section exactly.
    #[error("malformed tags")]
    Tags,
    /// A [`lease`] marker: someone is filling this key. Not corruption; do not delete it.
    #[error("a lease: the key is being filled")]
    Lease,
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
            DecodeError::Tags => "tags",
            DecodeError::Lease => "lease",
        }
    }
}

/// Tags an envelope cannot carry (see [`check_tags`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    /// More than [`MAX_TAGS`] tags.
    #[error("{count} tags, over the limit of {MAX_TAGS} per entry (envelope::MAX_TAGS)")]
    TooMany {
        /// How many tags were given.
        count: usize,
    },
    /// An empty tag.
    #[error("tag number {index} is empty; a tag is 1 to {MAX_TAG_LEN} bytes")]
    Empty {
        /// Its position in the list, from 0.
        index: usize,
    },
    /// A tag longer than [`MAX_TAG_LEN`] bytes.
    #[error(
        "tag {} is {} bytes of UTF-8, over the limit of {MAX_TAG_LEN} (envelope::MAX_TAG_LEN)",
        Preview(.tag), .tag.len()
    )]
    TooLong {
        /// The tag.
        tag: Arc<str>,
    },
}

/// A tag in an error message: quoted, cut after 40 characters.
struct Preview<'a>(&'a str);

impl fmt::Display for Preview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(40) {
            Some((cut, _)) => write!(f, "{:?}...", &self.0[..cut]),
            None => write!(f, "{:?}", self.0),
        }
    }
}

/// Checks that `tags` fit an envelope: at most [`MAX_TAGS`], each 1 to [`MAX_TAG_LEN`]
/// bytes. Call it before [`encode_with`], which panics otherwise.
///
/// # Errors
/// The first limit broken, naming the tag.
pub fn check_tags(tags: &[Arc<str>]) -> Result<(), TagError> {
    if tags.len() > MAX_TAGS {
        return Err(TagError::TooMany { count: tags.len() });
    }
    for (index, tag) in tags.iter().enumerate() {
        if tag.is_empty() {
            return Err(TagError::Empty { index });
        }
        if tag.len() > MAX_TAG_LEN {
            return Err(TagError::TooLong { tag: tag.clone() });
        }
    }
    Ok(())
}

/// Wraps `payload` (`None`: a cached absence) for `key` in a version 2 envelope without tags
/// and with version [`StreamId::ZERO`]; see [`encode_with`].
pub fn encode(
    key: &[u8],
    payload: Option<&[u8]>,
    created_ms: u64,
    expires_ms: Option<u64>,
    compress_above: usize,
) -> Vec<u8> {
    let meta = Meta {
        created_ms,
        expires_ms,
        ..Meta::default()
    };
    encode_with(key, payload, &meta, compress_above)
}

/// Wraps `payload` (`None`: a cached absence) for `key` with `meta` in a version 2
/// envelope, compressing the payload with lz4 when it is longer than `compress_above` bytes
/// and compression makes it smaller.
///
/// # Panics
/// If `meta.tags` break the limits [`check_tags`] checks (a caller's bug: check first), or
/// the stored payload is 4 GiB or more.
pub fn encode_with(
    key: &[u8],
    payload: Option<&[u8]>,
    meta: &Meta<'_>,
    compress_above: usize,
) -> Vec<u8> {
    if let Err(e) = check_tags(meta.tags) {
        panic!("envelope::encode_with: {e}");
    }
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
    let tags_len: usize = meta.tags.iter().map(|t| 1 + t.len()).sum();
    let body_len = u32::try_from(body.len()).expect("an envelope payload under 4 GiB");
    let mut out = Vec::with_capacity(HEADER_LEN + tags_len + body.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(flags);
    out.extend_from_slice(&crc32fast::hash(key).to_le_bytes());
    out.extend_from_slice(&meta.created_ms.to_le_bytes());
    out.extend_from_slice(&meta.expires_ms.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&meta.version.ms.to_le_bytes());
    out.extend_from_slice(&meta.version.seq.to_le_bytes());
    // check_tags bounds both: at most 64 tags of at most 256 bytes with their length.
    out.push(meta.tags.len() as u8);
    out.extend_from_slice(&(tags_len as u16).to_le_bytes());
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    for tag in meta.tags {
        out.push(tag.len() as u8);
        out.extend_from_slice(tag.as_bytes());
    }
    out.extend_from_slice(body);
    let crc = v2_crc(&out);
    out[47..51].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The version 2 checksum of `record` (at least [`HEADER_LEN`] bytes long).
fn v2_crc(record: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&record[..47]);
    crc.update(&record[HEADER_LEN..]);
    crc.finalize()
}

/// A lease marker with `token` (see the [module docs](self#leases)): [`LEASE_LEN`] bytes
/// that [`decode`] rejects with [`DecodeError::Lease`].
pub fn lease(token: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEASE_LEN);
    out.extend_from_slice(LEASE_MAGIC);
    out.push(LEASE_VERSION);
    out.extend_from_slice(&token.to_le_bytes());
    out
}

/// The token of the lease marker `bytes`, or `None` if they are not exactly a [`lease`].
pub fn lease_token(bytes: &[u8]) -> Option<u64> {
    match bytes {
        [b'L', b'L', LEASE_VERSION, token @ ..] if token.len() == 8 => Some(u64_at(token, 0)),
        _ => None,
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
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

/// Checks and opens the envelope `bytes` (version 1 or 2) stored under `key`; the
/// decompressed payload may be at most `max_payload` bytes.
///
/// # Errors
/// [`DecodeError::Lease`] for a [`lease`] marker (someone is filling the key); any other
/// [`DecodeError`] says what is wrong, and the caller treats the entry as a miss.
pub fn decode<'a>(
    key: &[u8],
    bytes: &'a [u8],
    max_payload: usize,
) -> Result<Envelope<'a>, DecodeError> {
    if lease_token(bytes).is_some() {
        return Err(DecodeError::Lease);
    }
    if bytes.len() < 2 {
        return Err(DecodeError::Length);
    }
    if &bytes[..2] != MAGIC {
        return Err(DecodeError::Magic);
    }
    let (header_len, tags_len, body_len) = match bytes.get(2) {
        None => return Err(DecodeError::Length),
        Some(&V1) if bytes.len() >= V1_HEADER_LEN => (V1_HEADER_LEN, 0, u32_at(bytes, 24)),
        Some(&VERSION) if bytes.len() >= HEADER_LEN => {
            (HEADER_LEN, u16_at(bytes, 41), u32_at(bytes, 43))
        }
        Some(&(V1 | VERSION)) => return Err(DecodeError::Length),
        Some(&v) => return Err(DecodeError::Version(v)),
    };
    let flags = bytes[3];
    if flags & !(FLAG_LZ4 | FLAG_ABSENT) != 0 || flags == FLAG_LZ4 | FLAG_ABSENT {
        return Err(DecodeError::Flags(flags));
    }
    let tags_len = usize::from(tags_len);
    if bytes.len() - header_len != tags_len + body_len as usize {
        return Err(DecodeError::Length);
    }
    let (crc, stored) = if header_len == V1_HEADER_LEN {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes[..28]);
        crc.update(&bytes[V1_HEADER_LEN..]);
        (crc.finalize(), u32_at(bytes, 28))
    } else {
        (v2_crc(bytes), u32_at(bytes, 47))
    };
    if crc != stored {
        return Err(DecodeError::Checksum);
    }
    if u32_at(bytes, 4) != crc32fast::hash(key) {
        return Err(DecodeError::KeyMismatch);
    }
    let created_ms = u64_at(bytes, 8);
    let expires_ms = Some(u64_at(bytes, 16)).filter(|&e| e != 0);
    let (version, tags) = if header_len == V1_HEADER_LEN {
        (StreamId::ZERO, Vec::new())
    } else {
        let version = StreamId::new(u64_at(bytes, 24), u64_at(bytes, 32));
        let section = &bytes[HEADER_LEN..HEADER_LEN + tags_len];
        (version, decode_tags(bytes[40], section)?)
    };
    let body = &bytes[header_len + tags_len..];
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
        version,
        tags,
        payload,
    })
}

/// The `count` tags of a version 2 tag `section`, borrowed.
fn decode_tags(count: u8, mut section: &[u8]) -> Result<Vec<Cow<'_, str>>, DecodeError> {
    let count = usize::from(count);
    if count > MAX_TAGS {
        return Err(DecodeError::Tags);
    }
    let mut tags = Vec::with_capacity(count);
    for _ in 0..count {
        let (&len, rest) = section.split_first().ok_or(DecodeError::Tags)?;
        let len = usize::from(len);
        if len == 0 || rest.len() < len {
            return Err(DecodeError::Tags);
        }
        let tag = std::str::from_utf8(&rest[..len]).map_err(|_| DecodeError::Tags)?;
        tags.push(Cow::Borrowed(tag));
        section = &rest[len..];
    }
    if !section.is_empty() {
        return Err(DecodeError::Tags);
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tags(names: &[&str]) -> Vec<Arc<str>> {
        names.iter().map(|&t| Arc::from(t)).collect()
    }

    /// The version 1 writer as it was (the format is frozen): what older instances stored.
    fn encode_v1(key: &[u8], payload: Option<&[u8]>, created: u64, expires: u64) -> Vec<u8> {
        let (flags, body) = payload.map_or((FLAG_ABSENT, &[][..]), |p| (0, p));
        let mut out = b"LC\x01".to_vec();
        out.push(flags);
        out.extend_from_slice(&crc32fast::hash(key).to_le_bytes());
        out.extend_from_slice(&created.to_le_bytes());
        out.extend_from_slice(&expires.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&out);
        crc.update(body);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    fn with_tags(tags: &[Arc<str>]) -> Meta<'_> {
        Meta {
            tags,
            ..Meta::default()
        }
    }

    /// `record` (version 2) with its checksum recomputed.
    fn reseal(mut record: Vec<u8>) -> Vec<u8> {
        let crc = v2_crc(&record);
        record[47..51].copy_from_slice(&crc.to_le_bytes());
        record
    }

    #[test]
    fn round_trips_plain_compressed_and_absent() {
        let big = vec![7u8; 10_000];
        let t = tags(&["user:42", "team:é", "x"]);
        let version = StreamId::new(1_700_000_000_123, 7);
        for (payload, compress_above) in
            [(&b"hello"[..], 100), (&big[..], 100), (&big[..], 1 << 20)]
        {
            let e = encode(b"k", Some(payload), 5, Some(9), compress_above);
            let d = decode(b"k", &e, 1 << 20).unwrap();
            assert_eq!(d.payload.as_deref(), Some(payload));
            assert_eq!((d.created_ms, d.expires_ms), (5, Some(9)));
            assert_eq!((d.version, d.tags.len()), (StreamId::ZERO, 0));

            let meta = Meta {
                created_ms: 5,
                expires_ms: None,
                version,
                tags: &t,
            };
            let e = encode_with(b"k", Some(payload), &meta, compress_above);
            let d = decode(b"k", &e, 1 << 20).unwrap();
            assert_eq!(d.payload.as_deref(), Some(payload));
            assert_eq!((d.created_ms, d.expires_ms, d.version), (5, None, version));
            assert_eq!(d.tags, ["user:42", "team:é", "x"]);
            assert!(d.tags.iter().all(|t| matches!(t, Cow::Borrowed(_))));
        }
        assert!(
            encode(b"k", Some(&big), 0, None, 100).len() < 200,
            "compressible payloads shrink"
        );
        let e = encode(b"k", None, 1, None, 0);
        assert_eq!(decode(b"k", &e, 10).unwrap().payload, None);
        let meta = with_tags(&t);
        let e = encode_with(b"k", None, &meta, 0);
        let d = decode(b"k", &e, 0).unwrap();
        assert_eq!((d.payload, d.tags.len()), (None, 3));
    }

    #[test]
    fn the_most_tags_of_the_longest_length_round_trip() {
        let t: Vec<Arc<str>> = (0..MAX_TAGS)
            .map(|i| Arc::from(format!("{i:0>width$}", width = MAX_TAG_LEN)))
            .collect();
        assert_eq!(check_tags(&t), Ok(()));
        let meta = with_tags(&t);
        let e = encode_with(b"k", Some(b"v"), &meta, 0);
        assert_eq!(e.len(), HEADER_LEN + MAX_TAGS * (1 + MAX_TAG_LEN) + 1);
        let d = decode(b"k", &e, 10).unwrap();
        assert!(d.tags.iter().map(|c| &**c).eq(t.iter().map(|a| &**a)));
    }

    #[test]
    fn tags_over_the_limits_are_named() {
        let long = "é".repeat(128);
        assert_eq!(
            check_tags(&tags(&["a"; MAX_TAGS + 1])),
            Err(TagError::TooMany { count: 65 })
        );
        assert_eq!(
            check_tags(&tags(&["a", ""])),
            Err(TagError::Empty { index: 1 })
        );
        let err = check_tags(&tags(&["a", &long])).unwrap_err();
        assert_eq!(err, TagError::TooLong { tag: long.into() });
        let msg = err.to_string();
        assert!(msg.contains("256 bytes") && msg.contains("255"), "{msg}");
        assert!(
            msg.contains(&"é".repeat(40)) && !msg.contains(&"é".repeat(41)),
            "{msg}"
        );
        assert!(TagError::TooMany { count: 65 }.to_string().contains("64"));
    }

    #[test]
    #[should_panic(expected = "over the limit of 64")]
    fn encode_with_panics_on_too_many_tags() {
        let t = tags(&["a"; MAX_TAGS + 1]);
        let meta = with_tags(&t);
        encode_with(b"k", None, &meta, 0);
    }

    #[test]
    fn version_1_records_still_decode() {
        for (payload, expires) in [(Some(&b"old value"[..]), 9), (Some(&b""[..]), 0), (None, 3)] {
            let e = encode_v1(b"k", payload, 5, expires);
            let d = decode(b"k", &e, 100).unwrap();
            assert_eq!(d.payload.as_deref(), payload);
            assert_eq!(
                (d.created_ms, d.expires_ms),
                (5, Some(expires).filter(|&e| e != 0))
            );
            assert_eq!((d.version, d.tags.len()), (StreamId::ZERO, 0));
            assert_eq!(decode(b"other", &e, 100), Err(DecodeError::KeyMismatch));
        }
        let e = encode_v1(b"k", Some(b"old value"), 5, 9);
        assert_eq!(decode(b"k", &e, 3), Err(DecodeError::TooLarge));
        let mut flipped = e.clone();
        flipped[V1_HEADER_LEN] ^= 1;
        assert_eq!(decode(b"k", &flipped, 100), Err(DecodeError::Checksum));
        assert_eq!(decode(b"k", &e[..20], 100), Err(DecodeError::Length));
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
        assert_eq!(decode(b"k", &e[..40], 100), Err(DecodeError::Length));
        assert_eq!(
            decode(b"k", b"{\"json\": true, \"padding\": 1234567}", 100),
            Err(DecodeError::Magic)
        );
        let mut flipped = e.clone();
        flipped[HEADER_LEN] ^= 1;
        assert_eq!(decode(b"k", &flipped, 100), Err(DecodeError::Checksum));
        let mut newer = e.clone();
        newer[2] = 3;
        assert_eq!(decode(b"k", &newer, 100), Err(DecodeError::Version(3)));
        assert_eq!(decode(b"k", &e, 4), Err(DecodeError::TooLarge));
        assert!(matches!(
            decode(b"k", &e, 5).unwrap().payload,
            Some(Cow::Borrowed(b"value"))
        ));
        for flags in [FLAG_LZ4 | FLAG_ABSENT, 4, 0x80] {
            let mut m = e.clone();
            m[3] = flags;
            assert_eq!(decode(b"k", &m, 100), Err(DecodeError::Flags(flags)));
        }
        let bomb = encode(b"k", Some(&vec![0u8; 1 << 20]), 0, None, 0);
        assert_eq!(decode(b"k", &bomb, 1000), Err(DecodeError::TooLarge));
    }

    #[test]
    fn a_lease_is_told_apart_from_corruption() {
        let l = lease(0xfeed_beef_0000_0001);
        assert_eq!(l.len(), LEASE_LEN);
        assert_eq!(decode(b"k", &l, 100), Err(DecodeError::Lease));
        assert_eq!(DecodeError::Lease.reason(), "lease");
        assert_eq!(lease_token(&l), Some(0xfeed_beef_0000_0001));
        assert_ne!(lease(1), lease(2));
        // Anything else is not a lease: shorter, longer, another version or magic.
        let mut other_version = l.clone();
        other_version[2] = 2;
        let mut longer = l.clone();
        longer.push(0);
        for not in [&l[..LEASE_LEN - 1], &longer, &other_version] {
            assert_eq!(lease_token(not), None);
            assert_eq!(decode(b"k", not, 100), Err(DecodeError::Magic));
        }
        assert_eq!(lease_token(&encode(b"k", None, 0, None, 0)), None);
    }

    #[test]
    fn a_malformed_tag_section_under_a_valid_checksum_is_rejected() {
        let t = tags(&["ab", "c"]);
        let meta = with_tags(&t);
        let e = encode_with(b"k", Some(b"v"), &meta, 0);
        assert_eq!(e[40], 2);
        assert_eq!(&e[HEADER_LEN..HEADER_LEN + 5], b"\x02ab\x01c");
        let with = |at: usize, byte: u8| {
            let mut m = e.clone();
            m[at] = byte;
            decode(b"k", &reseal(m), 10).map(drop)
        };
        assert!(with(HEADER_LEN + 1, b'x').is_ok(), "the reseal is sound");
        // Count: more tags than the section holds, fewer, over the limit.
        assert_eq!(with(40, 3), Err(DecodeError::Tags));
        assert_eq!(with(40, 1), Err(DecodeError::Tags));
        assert_eq!(with(40, MAX_TAGS as u8 + 1), Err(DecodeError::Tags));
        // One tag over the limit, the section otherwise well formed.
        let most = vec![Arc::<str>::from("t"); MAX_TAGS];
        let meta = with_tags(&most);
        let mut m = encode_with(b"k", None, &meta, 0);
        m.extend_from_slice(b"\x01u");
        m[40] += 1;
        m[41..43].copy_from_slice(&(2 * MAX_TAGS as u16 + 2).to_le_bytes());
        assert_eq!(decode(b"k", &reseal(m), 10), Err(DecodeError::Tags));
        // A tag length of 0, one running past the section, bytes that are not UTF-8.
        assert_eq!(with(HEADER_LEN + 3, 0), Err(DecodeError::Tags));
        let mut m = e.clone();
        m[40] = 3;
        m[HEADER_LEN + 3..HEADER_LEN + 5].copy_from_slice(&[0, 0]);
        assert_eq!(
            decode(b"k", &reseal(m), 10),
            Err(DecodeError::Tags),
            "empty tags"
        );
        assert_eq!(with(HEADER_LEN + 3, 2), Err(DecodeError::Tags));
        assert_eq!(with(HEADER_LEN + 1, 0xff), Err(DecodeError::Tags));
        assert_eq!(DecodeError::Tags.reason(), "tags");
    }

    /// A valid envelope's inputs: key, payload (`None`: an absence), created, expires,
    /// `compress_above`, version, tags, and whether to write the old version 1 format (then
    /// without compression, version or tags).
    #[derive(Clone, Debug)]
    struct Inputs {
        key: Vec<u8>,
        payload: Option<Vec<u8>>,
        created: u64,
        expires: Option<u64>,
        compress_above: usize,
        version: StreamId,
        tags: Vec<Arc<str>>,
        v1: bool,
    }

    impl Inputs {
        fn encode(&self) -> Vec<u8> {
            if self.v1 {
                let expires = self.expires.unwrap_or(0);
                return encode_v1(&self.key, self.payload.as_deref(), self.created, expires);
            }
            let meta = Meta {
                created_ms: self.created,
                expires_ms: self.expires,
                version: self.version,
                tags: &self.tags,
            };
            encode_with(
                &self.key,
                self.payload.as_deref(),
                &meta,
                self.compress_above,
            )
        }
    }

    fn inputs() -> impl Strategy<Value = Inputs> {
        let payload = prop_oneof![
            Just(None),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Some),
            // Compressible: lz4 shrinks it, so it is stored compressed when over the limit.
            (any::<u8>(), 0usize..2000).prop_map(|(b, n)| Some(vec![b; n])),
        ];
        let compress_above = prop_oneof![Just(0), Just(usize::MAX), 0usize..300];
        let version = prop_oneof![
            Just(StreamId::ZERO),
            (any::<u64>(), any::<u64>()).prop_map(|(ms, seq)| StreamId::new(ms, seq)),
        ];
        let tag = "\\PC{1,12}".prop_map(Arc::<str>::from);
        (
            (proptest::collection::vec(any::<u8>(), 0..40), payload),
            (
                any::<u64>(),
                proptest::option::of(1..=u64::MAX),
                compress_above,
            ),
            (
                version,
                proptest::collection::vec(tag, 0..6),
                proptest::bool::weighted(0.2),
            ),
        )
            .prop_map(
                |((key, payload), (created, expires, compress_above), (version, tags, v1))| {
                    Inputs {
                        key,
                        payload,
                        created,
                        expires,
                        compress_above,
                        version,
                        tags,
                        v1,
                    }
                },
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
    /// of format version `v` to `new`: the fields are checked in order magic, version,
    /// flags, lengths, checksum, and the checksum covers every byte but its own field, which
    /// it must then disagree with. `None`: only required to fail (the version byte turned to
    /// the other format's reads the record in a layout it was not written in).
    fn flip_error(v: u8, at: usize, new: u8) -> Option<DecodeError> {
        let lengths = if v == V1 { 24..28 } else { 41..47 };
        Some(match at {
            0 | 1 => DecodeError::Magic,
            2 if new == V1 || new == VERSION => return None,
            2 => DecodeError::Version(new),
            3 if new & !(FLAG_LZ4 | FLAG_ABSENT) != 0 || new == FLAG_LZ4 | FLAG_ABSENT => {
                DecodeError::Flags(new)
            }
            _ if lengths.contains(&at) => DecodeError::Length,
            _ => DecodeError::Checksum,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every change to a valid envelope (of either format version) is rejected, with the
        /// error the format says: a record whose length no longer matches its header is
        /// `Length`, a changed byte is caught by the field it lands in or else by the
        /// checksum. (An insertion or deletion inside the fixed header shifts the fields, so
        /// it is only required to fail.)
        #[test]
        fn every_change_to_a_valid_envelope_is_rejected(input in inputs(), change in mutation()) {
            let e = input.encode();
            let v = e[2];
            let header_len = if input.v1 { V1_HEADER_LEN } else { HEADER_LEN };
            // The unchanged record opens to what was sealed.
            let env = decode(&input.key, &e, 1 << 20).expect("a valid envelope");
            prop_assert_eq!(env.payload.as_deref(), input.payload.as_deref());
            prop_assert_eq!((env.created_ms, env.expires_ms), (input.created, input.expires));
            if input.v1 {
                prop_assert_eq!((env.version, env.tags.len()), (StreamId::ZERO, 0));
            } else {
                prop_assert_eq!(env.version, input.version);
                prop_assert!(env.tags.iter().map(|c| &**c).eq(input.tags.iter().map(|a| &**a)));
            }

            let mut m = e.clone();
            let expected = match &change {
                Mutation::Flip(i, xor) => {
                    let at = i.index(e.len());
                    m[at] ^= xor;
                    flip_error(v, at, m[at])
                }
                Mutation::Insert(i, b) => {
                    let at = i.index(e.len() + 1);
                    m.insert(at, *b);
                    (at >= header_len).then_some(DecodeError::Length)
                }
                Mutation::Delete(i) => {
                    let at = i.index(e.len());
                    m.remove(at);
                    (at >= header_len).then_some(DecodeError::Length)
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
            let got = decode(&input.key, &m, 1 << 20);
            match expected {
                Some(err) => prop_assert_eq!(got, Err(err), "{:?} of {:02x?}", change, e),
                None => prop_assert!(got.is_err(), "{:?} of {:02x?} decoded: {:?}", change, e, got),
            }
        }

        /// A valid envelope read under another key is that key's miss.
        #[test]
        fn another_keys_envelope_is_rejected(
            input in inputs(),
            other in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            prop_assume!(crc32fast::hash(&other) != crc32fast::hash(&input.key));
            let e = input.encode();
            prop_assert_eq!(decode(&other, &e, 1 << 20), Err(DecodeError::KeyMismatch));
        }
    }
}
