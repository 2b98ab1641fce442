//! Fuzzes `layercache::message::decode`, the decoder of every backplane message an instance
//! reads from the stream.
//!
//! For each input the target checks:
//!
//! 1. **Arbitrary bytes**: `decode(data)` never panics, and an accepted message re-encodes to
//!    exactly `data` (the decoder accepts nothing but what `encode` writes).
//! 2. **Round trip**: a message built from the input (byte 0 picks the action, bytes 1..17
//!    the source, the rest the subject: as is for `Set` and `Remove`, made UTF-8 (lossy) for
//!    `Tag`, dropped for `Clear` and `Hello`; cut to `MAX_SUBJECT`) encodes to bytes that
//!    decode to it, borrowing the subject.
//! 3. **Corruption**: every single-byte change of those bytes in the header, in the checksum,
//!    and at the first, last and one fuzzer-chosen subject byte is an error, and the one the
//!    format gives (`Magic`, `Version`, `Action`, `SubjectTooLong` or `Length` where the
//!    change lands in that field and breaks it, else `Checksum`); so is every truncation
//!    and an extension by one byte.
//!
//! Hangs are caught by libFuzzer's `-timeout`.
#![no_main]

use std::borrow::Cow;

use layercache::message::{decode, encode, Action, Message, MessageError, MAX_SUBJECT, OVERHEAD};
use libfuzzer_sys::fuzz_target;

const ACTIONS: [Action; 5] = [
    Action::Set,
    Action::Remove,
    Action::Tag,
    Action::Clear,
    Action::Hello,
];

/// Check 2's message from `data`.
fn build(data: &[u8]) -> Message<'_> {
    let (&pick, rest) = data.split_first().unwrap_or((&0, &[]));
    let action = ACTIONS[usize::from(pick) % ACTIONS.len()];
    let (source_bytes, subject) = rest.split_at(rest.len().min(16));
    let mut source = [0; 16];
    source[..source_bytes.len()].copy_from_slice(source_bytes);
    let subject = &subject[..subject.len().min(MAX_SUBJECT)];
    let subject = match action {
        Action::Set | Action::Remove => Cow::Borrowed(subject),
        Action::Tag => match String::from_utf8_lossy(subject) {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => {
                // Replacement characters may have made it longer than the cap.
                let mut end = s.len().min(MAX_SUBJECT);
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                Cow::Owned(s.as_bytes()[..end].to_vec())
            }
        },
        Action::Clear | Action::Hello => Cow::Borrowed(&[][..]),
    };
    Message {
        action,
        source: u128::from_le_bytes(source),
        subject,
    }
}

/// The error for byte `at` of a valid message changed (`changed` is the whole changed
/// message): checks run magic, version, action, subject length (cap, then record length),
/// checksum.
fn flip_error(at: usize, changed: &[u8]) -> MessageError {
    let new = changed[at];
    match at {
        0 | 1 => MessageError::Magic,
        2 => MessageError::Version(new),
        3 if !(1..=5).contains(&new) => MessageError::Action(new),
        20..=23 => {
            let n = u32::from_le_bytes(changed[20..24].try_into().expect("4 bytes")) as usize;
            if n > MAX_SUBJECT {
                MessageError::SubjectTooLong(n)
            } else {
                MessageError::Length
            }
        }
        _ => MessageError::Checksum,
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. Arbitrary bytes.
    if let Ok(m) = decode(data) {
        assert_eq!(encode(&m), data, "accepted message is not canonical");
        assert!(matches!(m.subject, Cow::Borrowed(_)));
    }

    // 2. Round trip.
    let m = build(data);
    let bytes = encode(&m);
    assert_eq!(bytes.len(), OVERHEAD + m.subject.len());
    let got = decode(&bytes).unwrap_or_else(|e| panic!("valid message rejected: {e:?} ({m:?})"));
    assert_eq!(got, m);
    assert!(matches!(got.subject, Cow::Borrowed(_)));

    // 3. Corruption.
    let xor = data.last().copied().filter(|&b| b != 0).unwrap_or(0x80);
    let pick = data.first().map_or(0, |&b| usize::from(b));
    let n = m.subject.len();
    let mut positions: Vec<usize> = (0..24).chain(bytes.len() - 4..bytes.len()).collect();
    if n > 0 {
        positions.extend([24, 24 + n - 1, 24 + pick % n]);
    }
    let mut changed = bytes.clone();
    for at in positions {
        changed[at] ^= xor;
        assert_eq!(
            decode(&changed),
            Err(flip_error(at, &changed)),
            "byte {at} ^ {xor:#04x} of {bytes:02x?}"
        );
        changed[at] ^= xor;
    }
    for len in 0..bytes.len() {
        assert_eq!(
            decode(&bytes[..len]),
            Err(MessageError::Length),
            "cut to {len}"
        );
    }
    changed.push(xor);
    assert_eq!(decode(&changed), Err(MessageError::Length), "one byte more");
});
