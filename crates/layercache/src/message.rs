//! The backplane message: what instances of one cache tell each other through the
//! [`Backplane`](layercache_tier::Backplane) stream, in a compact versioned binary form. The
//! stream gives each message its position ([`StreamId`](layercache_tier::StreamId)); the
//! message itself carries no clock.
//!
//! # Format, version 1 (all integers little-endian)
//! | bytes | field |
//! |---|---|
//! | 0..2 | magic `b"LM"` |
//! | 2 | format version (`1`) |
//! | 3 | action: `1` [`Set`](Action::Set), `2` [`Remove`](Action::Remove), `3` [`Tag`](Action::Tag), `4` [`Clear`](Action::Clear), `5` [`Hello`](Action::Hello) |
//! | 4..20 | source: the publishing instance's id (u128) |
//! | 20..24 | subject length `n` in bytes (u32), at most [`MAX_SUBJECT`] |
//! | 24..24+n | subject: the L2 key (`Set`, `Remove`), the tag's UTF-8 (`Tag`), nothing (`Clear`, `Hello`) |
//! | last 4 | CRC-32 of every byte before it |
//!
//! [`decode`] accepts exactly what [`encode`] writes and nothing else: it checks, in order,
//! the magic, version, action, subject length (against the cap, then against the record's
//! length), the checksum, and then the subject's shape for its action. Foreign or damaged
//! bytes are each a [`MessageError`], never a panic (checked by the `message` fuzz target,
//! see `crates/layercache/fuzz`).

use std::borrow::Cow;

const MAGIC: &[u8; 2] = b"LM";
/// The message format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Bytes of a message around its subject: the fixed header (24) and the checksum (4).
pub const OVERHEAD: usize = 28;
/// The longest subject, in bytes (64 KiB).
pub const MAX_SUBJECT: usize = 64 * 1024;

/// What a message says happened.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// The key (subject) was set by the source: other instances drop their L1 copy.
    Set,
    /// The key (subject) was removed.
    Remove,
    /// Every entry with the tag (subject) was invalidated.
    Tag,
    /// Every entry was invalidated (no subject).
    Clear,
    /// The source instance announces itself (no subject); the stream's id for it gives a
    /// starting cursor.
    Hello,
}

impl Action {
    fn to_byte(self) -> u8 {
        match self {
            Action::Set => 1,
            Action::Remove => 2,
            Action::Tag => 3,
            Action::Clear => 4,
            Action::Hello => 5,
        }
    }

    fn from_byte(b: u8) -> Option<Action> {
        Some(match b {
            1 => Action::Set,
            2 => Action::Remove,
            3 => Action::Tag,
            4 => Action::Clear,
            5 => Action::Hello,
            _ => return None,
        })
    }

    /// Whether the action takes a subject (`Set`, `Remove`, `Tag`; `Clear` and `Hello` have
    /// none).
    pub fn has_subject(self) -> bool {
        matches!(self, Action::Set | Action::Remove | Action::Tag)
    }
}

/// One backplane message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// What happened.
    pub action: Action,
    /// The publishing instance's id.
    pub source: u128,
    /// The L2 key bytes for `Set` and `Remove`, the tag's UTF-8 for `Tag`, empty for `Clear`
    /// and `Hello`; at most [`MAX_SUBJECT`] bytes. Borrowed from the bytes by [`decode`].
    pub subject: Cow<'a, [u8]>,
}

impl Message<'_> {
    /// Checks that [`encode`] can write the message: the subject fits [`MAX_SUBJECT`], is
    /// UTF-8 for a `Tag` and empty for `Clear` and `Hello`.
    ///
    /// # Errors
    /// [`MessageError::SubjectTooLong`], [`MessageError::TagNotUtf8`] or
    /// [`MessageError::UnexpectedSubject`]: the error [`decode`] would give for its bytes.
    pub fn check(&self) -> Result<(), MessageError> {
        if self.subject.len() > MAX_SUBJECT {
            return Err(MessageError::SubjectTooLong(self.subject.len()));
        }
        check_subject(self.action, &self.subject)
    }
}

fn check_subject(action: Action, subject: &[u8]) -> Result<(), MessageError> {
    match action {
        Action::Tag if std::str::from_utf8(subject).is_err() => Err(MessageError::TagNotUtf8),
        Action::Clear | Action::Hello if !subject.is_empty() => {
            Err(MessageError::UnexpectedSubject(action))
        }
        _ => Ok(()),
    }
}

/// Why bytes are not a valid backplane message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Not a message at all.
    #[error("bad magic")]
    Magic,
    /// A message of a format version this crate does not read.
    #[error("unsupported message version {0}")]
    Version(u8),
    /// An action byte this crate does not know.
    #[error("unknown action {0}")]
    Action(u8),
    /// Shorter than the header, or the subject length disagrees with the record's.
    #[error("truncated or extended message")]
    Length,
    /// Bytes changed after writing.
    #[error("checksum mismatch")]
    Checksum,
    /// The subject (length given) is over [`MAX_SUBJECT`].
    #[error("subject of {0} bytes, over the limit of {MAX_SUBJECT}")]
    SubjectTooLong(usize),
    /// A `Tag` message whose subject is not UTF-8.
    #[error("tag subject is not UTF-8")]
    TagNotUtf8,
    /// A `Clear` or `Hello` message with a subject.
    #[error("{0:?} message with a subject")]
    UnexpectedSubject(Action),
}

impl MessageError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            MessageError::Magic => "magic",
            MessageError::Version(_) => "version",
            MessageError::Action(_) => "action",
            MessageError::Length => "length",
            MessageError::Checksum => "checksum",
            MessageError::SubjectTooLong(_) => "subject_too_long",
            MessageError::TagNotUtf8 => "tag_utf8",
            MessageError::UnexpectedSubject(_) => "subject",
        }
    }
}

/// The bytes of `m` ([`OVERHEAD`] plus the subject's length).
///
/// # Panics
/// If [`Message::check`] fails: a subject over [`MAX_SUBJECT`], a `Tag` subject that is not
/// UTF-8, or a subject on `Clear` or `Hello` (a caller's bug: check first when unsure).
pub fn encode(m: &Message<'_>) -> Vec<u8> {
    if let Err(e) = m.check() {
        panic!("message::encode: {e}");
    }
    let mut out = Vec::with_capacity(OVERHEAD + m.subject.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(m.action.to_byte());
    out.extend_from_slice(&m.source.to_le_bytes());
    // check bounds it by MAX_SUBJECT.
    out.extend_from_slice(&(m.subject.len() as u32).to_le_bytes());
    out.extend_from_slice(&m.subject);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Checks and opens the message `bytes`; the subject is borrowed from them.
///
/// # Errors
/// [`MessageError`] saying what is wrong (the caller cannot tell what the message meant).
pub fn decode(bytes: &[u8]) -> Result<Message<'_>, MessageError> {
    if bytes.len() < 2 {
        return Err(MessageError::Length);
    }
    if &bytes[..2] != MAGIC {
        return Err(MessageError::Magic);
    }
    match bytes.get(2) {
        None => return Err(MessageError::Length),
        Some(&VERSION) => {}
        Some(&v) => return Err(MessageError::Version(v)),
    }
    let Some(&action) = bytes.get(3) else {
        return Err(MessageError::Length);
    };
    let action = Action::from_byte(action).ok_or(MessageError::Action(action))?;
    if bytes.len() < OVERHEAD {
        return Err(MessageError::Length);
    }
    let n = u32_at(bytes, 20) as usize;
    if n > MAX_SUBJECT {
        return Err(MessageError::SubjectTooLong(n));
    }
    if bytes.len() != OVERHEAD + n {
        return Err(MessageError::Length);
    }
    let (rest, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(rest) != u32_at(crc, 0) {
        return Err(MessageError::Checksum);
    }
    let subject = &rest[24..];
    check_subject(action, subject)?;
    let mut source = [0; 16];
    source.copy_from_slice(&bytes[4..20]);
    Ok(Message {
        action,
        source: u128::from_le_bytes(source),
        subject: Cow::Borrowed(subject),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ACTIONS: [Action; 5] = [
        Action::Set,
        Action::Remove,
        Action::Tag,
        Action::Clear,
        Action::Hello,
    ];

    fn msg(action: Action, subject: &[u8]) -> Message<'_> {
        Message {
            action,
            source: 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            subject: Cow::Borrowed(subject),
        }
    }

    /// `bytes` with the checksum recomputed.
    fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
        let at = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..at]);
        bytes[at..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    #[test]
    fn round_trips_each_action() {
        for (action, subject) in [
            (Action::Set, &b"user:1"[..]),
            (Action::Remove, b"\x00\xff"),
            (Action::Remove, b""),
            (Action::Tag, "team:é".as_bytes()),
            (Action::Clear, b""),
            (Action::Hello, b""),
        ] {
            let m = msg(action, subject);
            let bytes = encode(&m);
            assert_eq!(bytes.len(), OVERHEAD + subject.len());
            assert_eq!(&bytes[..4], &[b'L', b'M', 1, action.to_byte()]);
            let d = decode(&bytes).unwrap();
            assert_eq!(d, m);
            assert!(matches!(d.subject, Cow::Borrowed(_)));
        }
        let max = vec![b'k'; MAX_SUBJECT];
        assert_eq!(
            decode(&encode(&msg(Action::Set, &max))),
            Ok(msg(Action::Set, &max))
        );
    }

    #[test]
    fn rejects_what_is_not_a_message() {
        let good = encode(&msg(Action::Set, b"key"));
        assert_eq!(decode(b""), Err(MessageError::Length));
        assert_eq!(decode(b"L"), Err(MessageError::Length));
        assert_eq!(decode(b"LM"), Err(MessageError::Length));
        assert_eq!(decode(b"LM\x01"), Err(MessageError::Length));
        assert_eq!(decode(&good[..OVERHEAD - 1]), Err(MessageError::Length));
        assert_eq!(decode(&good[..good.len() - 1]), Err(MessageError::Length));
        assert_eq!(decode(b"LC\x02\x00 an envelope"), Err(MessageError::Magic));
        let mut m = good.clone();
        m[2] = 2;
        assert_eq!(decode(&m), Err(MessageError::Version(2)));
        for bad in [0, 6, 0xff] {
            m = good.clone();
            m[3] = bad;
            assert_eq!(decode(&m), Err(MessageError::Action(bad)));
        }
        m = good.clone();
        m[24] ^= 1;
        assert_eq!(decode(&m), Err(MessageError::Checksum));
        m = good.clone();
        m[20..24].copy_from_slice(&(MAX_SUBJECT as u32 + 1).to_le_bytes());
        assert_eq!(
            decode(&m),
            Err(MessageError::SubjectTooLong(MAX_SUBJECT + 1))
        );
        // Shapes that only a broken writer makes (checksum intact).
        m = good.clone();
        m[3] = Action::Tag.to_byte();
        m[24] = 0xff;
        assert_eq!(decode(&reseal(m)), Err(MessageError::TagNotUtf8));
        for action in [Action::Clear, Action::Hello] {
            m = good.clone();
            m[3] = action.to_byte();
            assert_eq!(
                decode(&reseal(m)),
                Err(MessageError::UnexpectedSubject(action))
            );
        }
        let reasons: Vec<_> = [
            MessageError::Magic,
            MessageError::Version(2),
            MessageError::Action(9),
            MessageError::Length,
            MessageError::Checksum,
            MessageError::SubjectTooLong(1),
            MessageError::TagNotUtf8,
            MessageError::UnexpectedSubject(Action::Clear),
        ]
        .iter()
        .map(MessageError::reason)
        .collect();
        let mut unique = reasons.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), reasons.len(), "{reasons:?}");
    }

    #[test]
    fn check_names_what_encode_refuses() {
        let long = vec![0; MAX_SUBJECT + 1];
        assert_eq!(
            msg(Action::Set, &long).check(),
            Err(MessageError::SubjectTooLong(MAX_SUBJECT + 1))
        );
        assert_eq!(
            msg(Action::Tag, b"\xff").check(),
            Err(MessageError::TagNotUtf8)
        );
        assert_eq!(
            msg(Action::Hello, b"x").check(),
            Err(MessageError::UnexpectedSubject(Action::Hello))
        );
        assert!(ACTIONS.iter().all(|&a| msg(a, b"").check().is_ok()));
    }

    #[test]
    #[should_panic(expected = "Clear message with a subject")]
    fn encode_panics_on_a_message_it_cannot_write() {
        encode(&msg(Action::Clear, b"x"));
    }

    fn message() -> impl Strategy<Value = Message<'static>> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..200);
        (
            prop::sample::select(&ACTIONS[..]),
            any::<u128>(),
            bytes,
            ".{0,30}",
        )
            .prop_map(|(action, source, key, tag)| Message {
                action,
                source,
                subject: match action {
                    Action::Set | Action::Remove => Cow::Owned(key),
                    Action::Tag => Cow::Owned(tag.into_bytes()),
                    Action::Clear | Action::Hello => Cow::Borrowed(&[]),
                },
            })
    }

    /// The error the format gives for byte `at` of a valid message of `len` bytes changed to
    /// `new`; checks run magic, version, action, subject length, checksum.
    fn flip_error(at: usize, len: usize, new: u8, bytes: &[u8]) -> MessageError {
        match at {
            0 | 1 => MessageError::Magic,
            2 => MessageError::Version(new),
            3 if Action::from_byte(new).is_none() => MessageError::Action(new),
            20..=23 => {
                let n = u32_at(bytes, 20) as usize;
                if n > MAX_SUBJECT {
                    MessageError::SubjectTooLong(n)
                } else {
                    debug_assert_ne!(n + OVERHEAD, len);
                    MessageError::Length
                }
            }
            _ => MessageError::Checksum,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every message round-trips, and every single-byte change to it, truncation or
        /// extension is the error the format says.
        #[test]
        fn round_trip_and_every_change_is_rejected(
            m in message(),
            at in any::<prop::sample::Index>(),
            xor in 1..=u8::MAX,
            cut in any::<prop::sample::Index>(),
            more in proptest::collection::vec(any::<u8>(), 1..10),
        ) {
            let bytes = encode(&m);
            prop_assert_eq!(decode(&bytes), Ok(m.clone()));

            let at = at.index(bytes.len());
            let mut flipped = bytes.clone();
            flipped[at] ^= xor;
            let expected = flip_error(at, bytes.len(), flipped[at], &flipped);
            prop_assert_eq!(decode(&flipped), Err(expected), "byte {} ^ {:#04x}", at, xor);

            prop_assert_eq!(decode(&bytes[..cut.index(bytes.len())]), Err(MessageError::Length));
            let mut longer = bytes.clone();
            longer.extend_from_slice(&more);
            prop_assert_eq!(decode(&longer), Err(MessageError::Length));
        }
    }
}
