//! Fuzzes `layercache::envelope::decode`, the decoder of every value read back from L2.
//!
//! Input layout: byte 0 is the key length `n` (clamped to what is there), the next `n` bytes
//! are the L2 key, the rest is `bytes`. For each input the target checks:
//!
//! 1. **Arbitrary bytes**: `decode(key, bytes, CAP)` never panics, never allocates more than
//!    `CAP + HEADER_LEN` bytes in all, and an accepted uncompressed or absent record is exactly
//!    what `encode` writes for what it decoded to (the decoder accepts nothing else).
//! 2. **Sealed bytes**: `bytes` with its header patched (magic, version, key check, length,
//!    checksum) so that the integrity checks pass and the fuzzer reaches the flag handling and
//!    the lz4 decompressor with arbitrary bodies and size prefixes: same checks as 1.
//! 3. **Round trip**: `bytes` as a payload, encoded plain and lz4-compressed, decodes to itself
//!    whenever it fits the cap, and to `TooLarge` otherwise (cap = 64 KiB, `len`, `len - 1`); a
//!    cached absence round-trips too.
//! 4. **Corruption**: every single-byte change of those valid envelopes in the header, and at
//!    the first, last and one fuzzer-chosen payload byte, is an error, and the one the format
//!    gives: `Magic`, `Version`, `Flags` or `Length` where the change lands in that field and
//!    breaks it, else `Checksum` (CRC-32 catches every change of up to 32 bits in a row).
//!
//! Hangs are caught by libFuzzer's `-timeout`.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use layercache::envelope::{decode, encode, DecodeError, Envelope, HEADER_LEN, VERSION};
use libfuzzer_sys::fuzz_target;

/// The payload cap for decoding arbitrary bytes.
const CAP: usize = 64 * 1024;

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

/// `decode`, asserting that it allocated at most `max_payload + HEADER_LEN` bytes in all and
/// that an accepted payload fits the cap.
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
    assert!(
        allocated <= max_payload + HEADER_LEN,
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

/// Checks 1 and 2 for one record.
fn check_any(key: &[u8], bytes: &[u8]) {
    let Ok(env) = decode_checked(key, bytes, CAP) else {
        return;
    };
    assert!(bytes.len() >= HEADER_LEN);
    let flags = bytes[3];
    match &env.payload {
        // Plain or absent: the decoder accepts exactly what the encoder writes.
        None => assert_eq!(
            encode(key, None, env.created_ms, env.expires_ms, 0),
            bytes,
            "accepted absence is not canonical"
        ),
        Some(p) if flags == 0 => {
            assert_eq!(&p[..], &bytes[HEADER_LEN..]);
            assert_eq!(
                encode(key, Some(p), env.created_ms, env.expires_ms, usize::MAX),
                bytes,
                "accepted plain record is not canonical"
            );
        }
        // Compressed: the decompressed payload round-trips through a fresh envelope.
        Some(p) => {
            let again = encode(key, Some(p), env.created_ms, env.expires_ms, 0);
            assert_eq!(decode_checked(key, &again, CAP), Ok(env.clone()));
        }
    }
}

/// `bytes` (at least a header long) with magic, version, key check, length and checksum set
/// so that `decode` gets past its integrity checks; flags, times and body stay the fuzzer's.
fn seal(key: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut sealed = bytes.to_vec();
    sealed[..2].copy_from_slice(b"LC");
    sealed[2] = VERSION;
    sealed[4..8].copy_from_slice(&crc32fast::hash(key).to_le_bytes());
    let body_len = u32::try_from(bytes.len() - HEADER_LEN).expect("fuzz inputs are small");
    sealed[24..28].copy_from_slice(&body_len.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&sealed[..28]);
    crc.update(&sealed[HEADER_LEN..]);
    sealed[28..32].copy_from_slice(&crc.finalize().to_le_bytes());
    sealed
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

    for compress_above in [0, payload.len() / 2, usize::MAX] {
        let e = encode(key, Some(payload), created_ms, expires_ms, compress_above);
        for cap in [CAP, payload.len(), payload.len().saturating_sub(1)] {
            let decoded = decode_checked(key, &e, cap);
            if payload.len() <= cap {
                let env = decoded.unwrap_or_else(|err| {
                    panic!("valid envelope rejected with cap {cap}: {err:?} ({e:02x?})")
                });
                assert_eq!(env.payload.as_deref(), Some(payload));
                assert_eq!(env.created_ms, created_ms);
                assert_eq!(env.expires_ms, expected_expiry);
            } else {
                assert_eq!(decoded, Err(DecodeError::TooLarge));
            }
        }
        check_corruptions(key, &e, pick, xor);
    }

    let absent = encode(key, None, created_ms, expires_ms, 0);
    let env = decode_checked(key, &absent, 0).expect("cached absence rejected");
    assert_eq!(env.payload, None);
    assert_eq!(env.created_ms, created_ms);
    assert_eq!(env.expires_ms, expected_expiry);
    check_corruptions(key, &absent, pick, xor);
}

/// The error for byte `at` of a valid envelope changed to `new`: fields are checked in the
/// order magic, version, flags, length, checksum, and the checksum covers all but its own
/// field, which then disagrees with it.
fn flip_error(at: usize, new: u8) -> DecodeError {
    match at {
        0 | 1 => DecodeError::Magic,
        2 => DecodeError::Version(new),
        // Bit 0 is lz4, bit 1 an absence; both at once or any other bit is not a flag set.
        3 if new & !3 != 0 || new == 3 => DecodeError::Flags(new),
        24..=27 => DecodeError::Length,
        _ => DecodeError::Checksum,
    }
}

/// Check 4: every single-byte change of the valid envelope `e` is the error `flip_error` says.
fn check_corruptions(key: &[u8], e: &[u8], pick: usize, xor: u8) {
    decode_checked(key, e, CAP).expect("valid envelope");
    let body = e.len() - HEADER_LEN;
    let mut positions: Vec<usize> = (0..HEADER_LEN).collect();
    if body > 0 {
        positions.extend([HEADER_LEN, e.len() - 1, HEADER_LEN + pick % body]);
    }
    let mut changed = e.to_vec();
    for at in positions {
        changed[at] ^= xor;
        assert_eq!(
            decode_checked(key, &changed, CAP),
            Err(flip_error(at, changed[at])),
            "byte {at} ^ {xor:#04x} of a valid envelope"
        );
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
    if bytes.len() >= HEADER_LEN {
        check_any(key, &seal(key, bytes));
    }
    // 3 and 4. The bytes as a payload.
    let pick = bytes.first().map_or(0, |&b| usize::from(b));
    let xor = if key_len == 0 { 0x80 } else { key_len };
    check_round_trip(key, bytes, pick, xor);
});
