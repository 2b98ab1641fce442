//! Writes the `envelope` fuzz target's seed inputs into `seeds/` (beside this crate's
//! Cargo.toml): valid envelopes made by `layercache::envelope::encode`, each prefixed with the
//! target's input framing (one byte of key length, the key, then the record).
//!
//! `cargo run --manifest-path crates/layercache/fuzz/Cargo.toml --example write_seeds`

use std::path::Path;

use layercache::envelope::encode;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    std::fs::create_dir_all(&dir)?;
    let repeated = b"user:42 user:42 user:42 user:42 user:42 user:42 user:42 user:42 ".repeat(4);
    let seeds: [(&str, &[u8], Vec<u8>); 6] = [
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
    ];
    for (name, key, record) in seeds {
        let mut input = vec![u8::try_from(key.len()).expect("short key")];
        input.extend_from_slice(key);
        input.extend_from_slice(&record);
        std::fs::write(dir.join(name), &input)?;
        println!("{name}: {} bytes", input.len());
    }
    Ok(())
}
