//! Fuzzes `layercache::envelope::decode`, the decoder of every value read back from L2
//! (format version 2, version 1 records and lease markers).
//!
//! Input layout: byte 0 is the key length `n` (clamped to what is there), the next `n` bytes
//! are the L2 key, the rest is `bytes`. For each input the target checks:
//!
//! 1. **Arbitrary bytes**: `decode(key, bytes, CAP)` never panics, never allocates more than
//!    `CAP + HEADER_LEN` bytes plus the tag list (`MAX_TAGS` borrowed strings) in all, says
//!    `Lease` exactly for a `lease` record, and an accepted uncompressed or absent record is
//!    exactly what the encoder of its version writes for what it decoded to (`encode_with`
//!    for version 2, the frozen version 1 writer below for version 1): the decoder accepts
//!    nothing else.
//! 2. **Sealed bytes**: `bytes` with a version 1 and a version 2 header patched in (magic,
//!    version, key check, lengths, checksum; the tag section length is the fuzzer's, clamped)
//!    so that the integrity checks pass and the fuzzer reaches the flag handling, the tag
//!    parser and the lz4 decompressor with arbitrary contents: same checks as 1.
//! 3. **Round trip**: `bytes` as a payload, with tags cut from it (split at `,`, each made
//!    valid UTF-8 of 1 to 255 bytes, at most 64) and a version from the key, encoded plain
//!    and lz4-compressed, decodes to itself whenever it fits the cap, and to `TooLarge`
//!    otherwise (cap = 64 KiB, `len`, `len - 1`); a cached absence round-trips too, and so
//!    does a lease's token.
//! 4. **Corruption**: every single-byte change of those valid envelopes in the fixed header,
//!    at the first, last and one fuzzer-chosen byte of the tag section and of the payload, is
//!    an error, and the one the format gives: `Magic`, `Version`, `Flags` or `Length` where
//!    the change lands in that field and breaks it, else `Checksum` (CRC-32 catches every
//!    change of up to 32 bits in a row); a version byte turned to `1` is only required to
//!    fail. Every change of a lease's magic or version byte is `Magic`.
//!
//! Hangs are caught by libFuzzer's `-timeout`.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use layercache::envelope::{
    decode, encode_with, lease, lease_token, DecodeError, Envelope, Meta, HEADER_LEN, LEASE_LEN,
    MAX_TAGS, MAX_TAG_LEN, VERSION,
};
use layercache_tier::StreamId;
use libfuzzer_sys::fuzz_target;

/// The payload cap for decoding arbitrary bytes.
const CAP: usize = 64 * 1024;
/// The version 1 header length.
const V1_HEADER_LEN: usize = 32;

/// Counts the bytes allocated (and grown by `realloc`) while [`ARMED`] is set.
struct CountingAlloc;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

fn note(bytes: usize) {
    if ARMED.load(Ordering::Relaxed) {
        ALLOCATED.fetch_add(bytes, Ordering::Relaxed);
    }
}

// SAFETY: every call forwards to `System` with the caller's own arguments; the counter has
// no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size.saturating_sub(layout.size()));
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// `decode`, asserting that it allocated at most `max_payload + HEADER_LEN` bytes plus a
/// full tag list in all and that an accepted payload fits the cap.
fn decode_checked<'a>(
    key: &[u8],
    bytes: &'a [u8],
    max_payload: usize,
) -> Result<Envelope<'a>, DecodeError> {
    ALLOCATED.store(0, Ordering::Relaxed);
    ARMED.store(true, Ordering::Relaxed);
    let result = decode(key, bytes, max_payload);
    ARMED.store(false, Ordering::Relaxed);
    let allocated = ALLOCATED.load(Ordering::Relaxed);
    let bound = max_payload + HEADER_LEN + MAX_TAGS * std::mem::size_of::<Cow<'_, str>>();
    assert!(
        allocated <= bound,
        "decode allocated {allocated} bytes with max_payload {max_payload} ({result:?})"
    );
    if let Ok(Envelope {
        payload: Some(p), ..
    }) = &result
    {
        assert!(
            p.len() <= max_payload,
            "payload of {} bytes over the cap {max_payload}",
            p.len()
        );
    }
    result
}

/// The version 1 writer as it was (frozen; no compression): what older instances stored.
fn encode_v1(key: &[u8], payload: Option<&[u8]>, created: u64, expires: Option<u64>) -> Vec<u8> {
    let (flags, body) = payload.map_or((2, &[][..]), |p| (0, p));
    let mut out = b"LC\x01".to_vec();
    out.push(flags);
    out.extend_from_slice(&crc32fast::hash(key).to_le_bytes());
    out.extend_from_slice(&created.to_le_bytes());
    out.extend_from_slice(&expires.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out);
    crc.update(body);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The tags of `env` as `encode_with` takes them.
fn owned_tags(env: &Envelope<'_>) -> Vec<Arc<str>> {
    env.tags.iter().map(|t| Arc::from(&**t)).collect()
}

/// Checks 1 and 2 for one record.
fn check_any(key: &[u8], bytes: &[u8]) {
    let result = decode_checked(key, bytes, CAP);
    assert_eq!(
        result == Err(DecodeError::Lease),
        lease_token(bytes).is_some(),
        "Lease exactly for a lease record"
    );
    if let Some(token) = lease_token(bytes) {
        assert_eq!(lease(token), bytes);
    }
    let Ok(env) = result else {
        return;
    };
    let flags = bytes[3];
    let tags = owned_tags(&env);
    let meta = Meta {
        created_ms: env.created_ms,
        expires_ms: env.expires_ms,
        version: env.version,
        tags: &tags,
    };
    if bytes[2] == 1 {
        assert!(bytes.len() >= V1_HEADER_LEN);
        assert_eq!((env.version, env.tags.len()), (StreamId::ZERO, 0));
        if flags != 1 {
            let again = encode_v1(key, env.payload.as_deref(), env.created_ms, env.expires_ms);
            assert_eq!(again, bytes, "accepted version 1 record is not canonical");
            return;
        }
    } else {
        assert_eq!(bytes[2], VERSION);
        assert!(bytes.len() >= HEADER_LEN);
    }
    match &env.payload {
        // Plain or absent: the decoder accepts exactly what the encoder writes.
        None => assert_eq!(
            encode_with(key, None, &meta, 0),
            bytes,
            "accepted absence is not canonical"
        ),
        Some(p) if flags == 0 => {
            assert_eq!(&p[..], &bytes[bytes.len() - p.len()..]);
            assert_eq!(
                encode_with(key, Some(p), &meta, usize::MAX),
                bytes,
                "accepted plain record is not canonical"
            );
        }
        // Compressed: the decompressed payload round-trips through a fresh envelope.
        Some(p) => {
            let again = encode_with(key, Some(p), &meta, 0);
            assert_eq!(decode_checked(key, &again, CAP), Ok(env.clone()));
        }
    }
}

/// `bytes` (at least a version 1 header long) made a version 1 record that gets past
/// `decode`'s integrity checks; flags, times and body stay the fuzzer's.
fn seal_v1(key: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut sealed = bytes.to_vec();
    sealed[..3].copy_from_slice(b"LC\x01");
    sealed[4..8].copy_from_slice(&crc32fast::hash(key).to_le_bytes());
    let body_len = u32::try_from(bytes.len() - V1_HEADER_LEN).expect("fuzz inputs are small");
    sealed[24..28].copy_from_slice(&body_len.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&sealed[..28]);
    crc.update(&sealed[V1_HEADER_LEN..]);
    sealed[28..32].copy_from_slice(&crc.finalize().to_le_bytes());
    sealed
}

/// `bytes` (at least a version 2 header long) made a version 2 record that gets past
/// `decode`'s integrity checks: the tag section length is the fuzzer's clamped to what is
/// there, the payload the rest; flags, times, version, tag count and contents stay the
/// fuzzer's.
fn seal_v2(key: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut sealed = bytes.to_vec();
    sealed[..3].copy_from_slice(&[b'L', b'C', VERSION]);
    sealed[4..8].copy_from_slice(&crc32fast::hash(key).to_le_bytes());
    let rest = bytes.len() - HEADER_LEN;
    let tags_len = usize::from(u16::from_le_bytes([bytes[41], bytes[42]])).min(rest);
    let body_len = u32::try_from(rest - tags_len).expect("fuzz inputs are small");
    sealed[41..43].copy_from_slice(&(tags_len as u16).to_le_bytes());
    sealed[43..47].copy_from_slice(&body_len.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&sealed[..47]);
    crc.update(&sealed[HEADER_LEN..]);
    sealed[47..51].copy_from_slice(&crc.finalize().to_le_bytes());
    sealed
}

/// Tags cut from `payload`: the pieces between `,`, as UTF-8 (lossy), cut to at most
/// `MAX_TAG_LEN` bytes on a character boundary, empty ones left out, at most `MAX_TAGS`.
fn tags_from(payload: &[u8]) -> Vec<Arc<str>> {
    payload
        .split(|&b| b == b',')
        .filter_map(|piece| {
            let s = String::from_utf8_lossy(piece);
            let mut end = s.len().min(MAX_TAG_LEN);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            (end > 0).then(|| Arc::from(&s[..end]))
        })
        .take(MAX_TAGS)
        .collect()
}

/// Checks 3 and 4 for `payload` under `key`.
fn check_round_trip(key: &[u8], payload: &[u8], pick: usize, xor: u8) {
    let created_ms = key
        .iter()
        .take(8)
        .fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    let expires_ms = (key.len() % 2 == 1).then(|| created_ms.wrapping_add(payload.len() as u64));
    // An expiry of 0 means "none" on the wire.
    let expected_expiry = expires_ms.filter(|&e| e != 0);
    let version = StreamId::new(created_ms.rotate_left(17), payload.len() as u64);
    let tags = tags_from(payload);

    for (compress_above, tags) in [
        (0, &tags[..]),
        (payload.len() / 2, &tags[..]),
        (usize::MAX, &tags[..]),
        (usize::MAX, &[][..]),
    ] {
        let meta = Meta {
            created_ms,
            expires_ms,
            version,
            tags,
        };
        let e = encode_with(key, Some(payload), &meta, compress_above);
        for cap in [CAP, payload.len(), payload.len().saturating_sub(1)] {
            let decoded = decode_checked(key, &e, cap);
            if payload.len() <= cap {
                let env = decoded.unwrap_or_else(|err| {
                    panic!("valid envelope rejected with cap {cap}: {err:?} ({e:02x?})")
                });
                assert_eq!(env.payload.as_deref(), Some(payload));
                assert_eq!(env.created_ms, created_ms);
                assert_eq!(env.expires_ms, expected_expiry);
                assert_eq!(env.version, version);
                assert_eq!(owned_tags(&env), tags);
            } else {
                assert_eq!(decoded, Err(DecodeError::TooLarge));
            }
        }
        check_corruptions(key, &e, pick, xor);
    }

    let meta = Meta {
        created_ms,
        expires_ms,
        version,
        tags: &tags,
    };
    let absent = encode_with(key, None, &meta, 0);
    let env = decode_checked(key, &absent, 0).expect("cached absence rejected");
    assert_eq!(env.payload, None);
    assert_eq!(env.created_ms, created_ms);
    assert_eq!(env.expires_ms, expected_expiry);
    assert_eq!(owned_tags(&env), tags);
    check_corruptions(key, &absent, pick, xor);

    // A version 1 record of the same.
    let old = encode_v1(key, Some(payload), created_ms, expires_ms);
    if payload.len() <= CAP {
        let env = decode_checked(key, &old, CAP).expect("version 1 record rejected");
        assert_eq!(env.payload.as_deref(), Some(payload));
        assert_eq!((env.version, env.tags.len()), (StreamId::ZERO, 0));
        check_corruptions(key, &old, pick, xor);
    }

    // A lease with a token from the input: `Lease`, whatever the key; its magic and version
    // byte changed is not an envelope either.
    let token = version.ms ^ version.seq;
    let l = lease(token);
    assert_eq!(l.len(), LEASE_LEN);
    assert_eq!(lease_token(&l), Some(token));
    assert_eq!(decode_checked(key, &l, CAP), Err(DecodeError::Lease));
    for at in 0..3 {
        let mut changed = l.clone();
        changed[at] ^= xor;
        assert_eq!(lease_token(&changed), None);
        // Byte 1 may turn the lease's `LL` into an envelope's `LC`, too short for one.
        let got = decode_checked(key, &changed, CAP);
        assert!(
            matches!(got, Err(DecodeError::Magic | DecodeError::Length)),
            "byte {at} ^ {xor:#04x} of a lease: {got:?}"
        );
    }
}

/// The error for byte `at` of a valid envelope of version `v` changed to `new`: fields are
/// checked in the order magic, version, flags, lengths, checksum, and the checksum covers all
/// but its own field, which then disagrees with it. `None`: only required to fail (the
/// version byte turned to the other version reads the record in another layout).
fn flip_error(v: u8, at: usize, new: u8) -> Option<DecodeError> {
    let lengths = if v == 1 { 24..28 } else { 41..47 };
    Some(match at {
        0 | 1 => DecodeError::Magic,
        2 if new == 1 || new == VERSION => return None,
        2 => DecodeError::Version(new),
        // Bit 0 is lz4, bit 1 an absence; both at once or any other bit is not a flag set.
        3 if new & !3 != 0 || new == 3 => DecodeError::Flags(new),
        _ if lengths.contains(&at) => DecodeError::Length,
        _ => DecodeError::Checksum,
    })
}

/// Check 4: every single-byte change of the valid envelope `e` is the error `flip_error` says.
fn check_corruptions(key: &[u8], e: &[u8], pick: usize, xor: u8) {
    let env = decode_checked(key, e, CAP).expect("valid envelope");
    let v = e[2];
    let header_len = if v == 1 { V1_HEADER_LEN } else { HEADER_LEN };
    let tags_len: usize = env.tags.iter().map(|t| 1 + t.len()).sum();
    let mut positions: Vec<usize> = (0..header_len).collect();
    for (start, len) in [
        (header_len, tags_len),
        (header_len + tags_len, e.len() - header_len - tags_len),
    ] {
        if len > 0 {
            positions.extend([start, start + len - 1, start + pick % len]);
        }
    }
    let mut changed = e.to_vec();
    for at in positions {
        changed[at] ^= xor;
        let got = decode_checked(key, &changed, CAP);
        match flip_error(v, at, changed[at]) {
            Some(err) => assert_eq!(got, Err(err), "byte {at} ^ {xor:#04x} of a valid envelope"),
            None => assert!(got.is_err(), "byte {at} ^ {xor:#04x} decoded: {got:?}"),
        }
        changed[at] ^= xor;
    }
    // Also another key's view of the same record.
    let mut other = key.to_vec();
    other.push(xor);
    if crc32fast::hash(&other) != crc32fast::hash(key) {
        assert_eq!(
            decode_checked(&other, e, CAP),
            Err(DecodeError::KeyMismatch)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&key_len, rest)) = data.split_first() else {
        return;
    };
    let (key, bytes) = rest.split_at(usize::from(key_len).min(rest.len()));

    // 1. Arbitrary bytes.
    check_any(key, bytes);
    // 2. The same bytes with a valid header around them.
    if bytes.len() >= V1_HEADER_LEN {
        check_any(key, &seal_v1(key, bytes));
    }
    if bytes.len() >= HEADER_LEN {
        check_any(key, &seal_v2(key, bytes));
    }
    // 3 and 4. The bytes as a payload.
    let pick = bytes.first().map_or(0, |&b| usize::from(b));
    let xor = if key_len == 0 { 0x80 } else { key_len };
    check_round_trip(key, bytes, pick, xor);
});
