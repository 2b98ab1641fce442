//! Writes the fuzz targets' seed inputs beside this crate's Cargo.toml:
//!
//! - `seeds/`: for the `envelope` target, valid records each prefixed with the target's
//!   input framing (one byte of key length, the key, then the record): version 2 envelopes
//!   made by `layercache::envelope::encode` / `encode_with` (with and without tags and a
//!   version), version 1 envelopes as older releases wrote them (`v1-*`), and a lease;
//! - `seeds/message/`: for the `message` target, one message of each action made by
//!   `layercache::message::encode`, as is.
//!
//! `cargo run --manifest-path crates/layercache/fuzz/Cargo.toml --example write_seeds`

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use layercache::envelope::{encode, encode_with, lease, Meta};
use layercache::message::{self, Action, Message};
use layercache_tier::StreamId;

/// A version 1 record (frozen format, uncompressed), as releases before version 2 wrote.
fn encode_v1(key: &[u8], payload: Option<&[u8]>, created: u64, expires: u64) -> Vec<u8> {
    let (flags, body) = payload.map_or((2, &[][..]), |p| (0, p));
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

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    std::fs::create_dir_all(dir.join("message"))?;
    let repeated = b"user:42 user:42 user:42 user:42 user:42 user:42 user:42 user:42 ".repeat(4);
    let tags: Vec<Arc<str>> = ["user:42", "team:7", "région"]
        .into_iter()
        .map(Arc::from)
        .collect();
    let tagged = Meta {
        created_ms: 1_700_000_000_000,
        expires_ms: Some(1_700_000_060_000),
        version: StreamId::new(1_699_999_999_990, 3),
        tags: &tags,
    };
    let seeds: Vec<(&str, &[u8], Vec<u8>)> = vec![
        // A short plain payload with an expiry.
        (
            "plain",
            b"k",
            encode(b"k", Some(b"hello"), 1, Some(2), 1024),
        ),
        // An empty payload, no expiry.
        (
            "empty",
            b"user:1",
            encode(b"user:1", Some(b""), 1_700_000_000_000, None, 1024),
        ),
        // A cached absence.
        (
            "absent",
            b"user:2",
            encode(
                b"user:2",
                None,
                1_700_000_000_000,
                Some(1_700_000_060_000),
                0,
            ),
        ),
        // An lz4-compressed payload (compressible, over the threshold).
        (
            "lz4",
            b"session:abc",
            encode(b"session:abc", Some(&repeated), 5, Some(9), 16),
        ),
        // A compressible payload stored plain (under the threshold).
        (
            "lz4-below-threshold",
            b"k",
            encode(b"k", Some(&repeated), 5, None, 4096),
        ),
        // An empty key.
        (
            "empty-key",
            b"",
            encode(b"", Some(b"\x00\x01\x02\x03"), 0, None, 0),
        ),
        // Tags and a backplane version: plain, compressed, an absence.
        (
            "tags",
            b"user:42",
            encode_with(b"user:42", Some(b"{\"name\":\"Ada\"}"), &tagged, 1024),
        ),
        (
            "tags-lz4",
            b"user:42",
            encode_with(b"user:42", Some(&repeated), &tagged, 16),
        ),
        (
            "tags-absent",
            b"user:43",
            encode_with(b"user:43", None, &tagged, 0),
        ),
        // Version 1 records, as older releases stored them.
        ("v1-plain", b"k", encode_v1(b"k", Some(b"hello"), 1, 2)),
        (
            "v1-absent",
            b"user:2",
            encode_v1(b"user:2", None, 1_700_000_000_000, 0),
        ),
        // A lease marker (someone is filling the key).
        ("lease", b"user:44", lease(0x5eed_0000_0000_0001)),
    ];
    for (name, key, record) in seeds {
        let mut input = vec![u8::try_from(key.len()).expect("short key")];
        input.extend_from_slice(key);
        input.extend_from_slice(&record);
        std::fs::write(dir.join(name), &input)?;
        println!("{name}: {} bytes", input.len());
    }

    let source = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
    let messages: [(&str, Action, &[u8]); 5] = [
        ("set", Action::Set, b"user:42"),
        ("remove", Action::Remove, b"\x00\x01binary key"),
        ("tag", Action::Tag, "région".as_bytes()),
        ("clear", Action::Clear, b""),
        ("hello", Action::Hello, b""),
    ];
    for (name, action, subject) in messages {
        let bytes = message::encode(&Message {
            action,
            source,
            subject: Cow::Borrowed(subject),
        });
        std::fs::write(dir.join("message").join(name), &bytes)?;
        println!("message/{name}: {} bytes", bytes.len());
    }
    Ok(())
}
