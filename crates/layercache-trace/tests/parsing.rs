//! Readers on small inline samples, malformed input, corrupt compression and
//! format detection.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use layercache_trace::{read_all, Format, RecordUnit, Request, TraceError, TraceReader};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("layercache-trace-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes `bytes` to `name` (compressed according to its extension when
    /// `compress` is set) and returns the path.
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn compressed(&self, name: &str, bytes: &[u8]) -> PathBuf {
        self.file(name, &compress(name, bytes))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn compress(name: &str, bytes: &[u8]) -> Vec<u8> {
    let name = name.to_ascii_lowercase();
    if name.ends_with(".zst") {
        zstd::encode_all(bytes, 3).unwrap()
    } else if name.ends_with(".gz") {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    } else if name.ends_with(".xz") {
        let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    } else {
        bytes.to_vec()
    }
}

fn req(key: u64, size: u32) -> Request {
    Request { key, size }
}

/// Reads `path` and expects a `Malformed` error at `record`, returning its reason.
fn expect_malformed(path: &Path, format: Option<Format>, record: u64, unit: RecordUnit) -> String {
    let mut reader = TraceReader::open(path, format).unwrap();
    let err = reader
        .by_ref()
        .find_map(Result::err)
        .expect("expected an error");
    assert!(
        reader.next().is_none(),
        "the reader must stop after an error"
    );
    match &err {
        TraceError::Malformed {
            path: p,
            record: r,
            reason,
            unit: u,
        } => {
            assert_eq!(p, path);
            assert_eq!((*r, *u), (record, unit), "{err}");
            let prefix = format!("{}: {} {record}: ", path.display(), unit);
            assert_eq!(err.to_string(), format!("{prefix}{reason}"));
            reason.clone()
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn expect_io(path: &Path, format: Option<Format>) {
    let result = read_all(path, format);
    match result {
        Err(TraceError::Io { path: p, .. }) => assert_eq!(p, path),
        other => panic!(
            "expected an I/O error for {}, got {other:?}",
            path.display()
        ),
    }
}

#[test]
fn arc_expands_ranges_and_skips_blank_lines() {
    let dir = TempDir::new();
    let path = dir.file("t.lis", b"5 3 0 0\r\n\n10 0 0 1\n  7 1 0 2  \n");
    let got = read_all(&path, None).unwrap();
    assert_eq!(got, [req(5, 1), req(6, 1), req(7, 1), req(7, 1)]);
    let path = dir.file("max.lis", b"18446744073709551614 2 0 0\n");
    assert_eq!(
        read_all(&path, None).unwrap(),
        [req(u64::MAX - 1, 1), req(u64::MAX, 1)]
    );
}

#[test]
fn arc_malformed() {
    let dir = TempDir::new();
    let path = dir.file("trace.lis", b"1 1 0 0\n2 1\n");
    let reason = expect_malformed(&path, None, 2, RecordUnit::Line);
    assert_eq!(reason, "expected 4 fields, found 2");
    let err = read_all(&path, None).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("{}: line 2: expected 4 fields, found 2", path.display())
    );

    let path = dir.file("nan.lis", b"1 1 0 0\n\n1 x 0 0\n");
    let reason = expect_malformed(&path, None, 3, RecordUnit::Line);
    assert!(
        reason.contains("num_blocks") && reason.contains("`x`"),
        "{reason}"
    );
    let path = dir.file("neg.lis", b"-1 1 0 0\n");
    expect_malformed(&path, None, 1, RecordUnit::Line);
    let path = dir.file("five.lis", b"1 1 0 0 9\n");
    assert_eq!(
        expect_malformed(&path, None, 1, RecordUnit::Line),
        "expected 4 fields, found 5"
    );
    let path = dir.file("overflow.lis", b"18446744073709551615 2 0 0\n");
    assert!(expect_malformed(&path, None, 1, RecordUnit::Line).contains("overflows"));
    // The requests before the bad line are still yielded.
    let path = dir.file("late.lis", b"1 2 0 0\nbad\n");
    let items: Vec<_> = TraceReader::open(&path, None).unwrap().collect();
    assert_eq!(items.len(), 3);
    assert!(items[2].is_err());
}

#[test]
fn lirs_skips_comments_and_blank_lines() {
    let dir = TempDir::new();
    let path = dir.file("lirs/t.trace", b"*header\n1\r\n\n 2 \n*x\n-1\n");
    assert_eq!(
        read_all(&path, None).unwrap(),
        [req(1, 1), req(2, 1), req(u64::MAX, 1)]
    );
}

#[test]
fn lirs_malformed() {
    let dir = TempDir::new();
    let path = dir.file("lirs/a.trace", b"1\n*c\n\n12abc\n");
    assert!(expect_malformed(&path, None, 4, RecordUnit::Line).contains("12abc"));
    let path = dir.file("lirs/b.trace", b"1 2\n");
    expect_malformed(&path, None, 1, RecordUnit::Line);
    let path = dir.file("lirs/c.trace", b"1\n\xff\xfe\n");
    assert!(expect_malformed(&path, None, 2, RecordUnit::Line).contains("UTF-8"));
    // An over-long line (e.g. a binary file read as text) is malformed, not buffered whole.
    let path = dir.file("lirs/d.trace", &vec![b'7'; 100_000]);
    assert!(expect_malformed(&path, None, 1, RecordUnit::Line).contains("longer"));
}

#[test]
fn cache2k_reads_big_endian_i32() {
    let dir = TempDir::new();
    let mut bytes = Vec::new();
    for v in [0i32, 1, 0x0102_0304, -1, i32::MIN] {
        bytes.extend_from_slice(&v.to_be_bytes());
    }
    let path = dir.compressed("cache2k/t.trace.xz", &bytes);
    let keys: Vec<u64> = read_all(&path, None)
        .unwrap()
        .iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(keys, [0, 1, 0x0102_0304, 0xffff_ffff, 0x8000_0000]);
}

#[test]
fn cache2k_truncated_record() {
    let dir = TempDir::new();
    let path = dir.file("cache2k/t.trace", &[0, 0, 0, 1, 0, 0, 0, 2, 0]);
    let reason = expect_malformed(&path, None, 3, RecordUnit::Record);
    assert!(reason.contains("expected 4 bytes, found 1"), "{reason}");
    let path = dir.compressed("x.bin.gz", &[0, 0, 0, 1, 0, 0]);
    expect_malformed(&path, Some(Format::Cache2k), 2, RecordUnit::Record);
}

fn oracle_record(clock: u32, id: u64, size: u32, next: i64) -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&clock.to_le_bytes());
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&next.to_le_bytes());
    b
}

#[test]
fn oracle_general_records() {
    let dir = TempDir::new();
    let mut bytes = oracle_record(1, 42, 4096, 1);
    bytes.extend(oracle_record(2, 42, 4096, -1));
    bytes.extend(oracle_record(3, u64::MAX, 7, -1));
    let path = dir.compressed("t.oracleGeneral.zst", &bytes);
    assert_eq!(
        read_all(&path, None).unwrap(),
        [req(42, 4096), req(42, 4096), req(u64::MAX, 7)]
    );

    bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
    let path = dir.file("t.oracleGeneral.bin", &bytes);
    let reason = expect_malformed(&path, None, 4, RecordUnit::Record);
    assert!(reason.contains("expected 24 bytes, found 5"), "{reason}");
}

#[test]
fn libcachesim_csv_with_and_without_header() {
    let dir = TempDir::new();
    let text = "version,time,op,size,lbn\n1,100,0,4096,77\n1,101,1,512,78\r\n\n1,102,0,8,77\n";
    let path = dir.file("t.csv", text.as_bytes());
    let reader = TraceReader::open(&path, None).unwrap();
    assert_eq!(reader.format(), Format::LibCacheSimCsv);
    let got: Vec<Request> = reader.map(Result::unwrap).collect();
    assert_eq!(got, [req(77, 4096), req(78, 512), req(77, 8)]);

    let path = dir.compressed("noheader.csv.gz", b"1,100,0,4096,77\n1,101,1,512,78\n");
    assert_eq!(
        read_all(&path, None).unwrap(),
        [req(77, 4096), req(78, 512)]
    );

    // Columns are found by name when a header is present.
    let path = dir.file("reordered.csv", b"lbn,size\n5,10\n");
    assert_eq!(
        read_all(&path, Some(Format::LibCacheSimCsv)).unwrap(),
        [req(5, 10)]
    );
}

#[test]
fn libcachesim_csv_malformed() {
    let dir = TempDir::new();
    let path = dir.file(
        "a.csv",
        b"version,time,op,size,lbn\n1,100,0,4096,77\n1,101,0,big,78\n",
    );
    assert!(expect_malformed(&path, None, 3, RecordUnit::Line).contains("`size`"));
    let path = dir.file("b.csv", b"1,100,0,4096,77\n1,101,0,4096\n");
    assert_eq!(
        expect_malformed(&path, None, 2, RecordUnit::Line),
        "expected 5 fields, found 4"
    );
    let path = dir.file("c.csv", b"version,time,op,size,lbn\n1,1,0,4294967296,1\n");
    expect_malformed(&path, None, 2, RecordUnit::Line);
    let path = dir.file("d.csv", b"a,b,c\n1,2,3\n");
    assert!(expect_malformed(&path, None, 1, RecordUnit::Line).contains("lbn"));
}

/// 64-bit FNV-1a, written out independently of the crate.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn twitter_csv_counts_gets_only() {
    let dir = TempDir::new();
    let text = "\
0,q:key1,10,100,1,get,0
1,q:key2,12,50,1,set,3600
2,q:key1,10,100,2,gets,0
3,q:key3,8,0,1,delete,0
4,q:key2,12,50,3,get,0
";
    let path = dir.file("cluster1.csv", text.as_bytes());
    let reader = TraceReader::open(&path, None).unwrap();
    assert_eq!(
        reader.format(),
        Format::TwitterCsv,
        "sniffed from the first line"
    );
    let got: Vec<Request> = reader.map(Result::unwrap).collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], got[1]);
    assert_eq!(got[0].size, 110);
    assert_eq!(got[2].size, 62);
    assert_ne!(got[0].key, got[2].key);
    // The key hash is fixed (FNV-1a), so it is the same in every run.
    assert_eq!(got[0].key, fnv1a(b"q:key1"));
    assert_eq!(got[2].key, fnv1a(b"q:key2"));

    let path = dir.compressed("cluster1.sort.zst", text.as_bytes());
    let explicit = read_all(&path, Some(Format::TwitterCsv)).unwrap();
    assert_eq!(explicit, got);
    // A header line is tolerated.
    let with_header = format!("timestamp,anon_key,key_size,value_size,client_id,op,ttl\n{text}");
    let path = dir.file("h.csv", with_header.as_bytes());
    assert_eq!(read_all(&path, Some(Format::TwitterCsv)).unwrap(), got);
}

#[test]
fn twitter_csv_malformed() {
    let dir = TempDir::new();
    let path = dir.file("t1.csv", b"0,k,1,2,1,get,0\n1,k,1,2,1,get\n");
    assert_eq!(
        expect_malformed(&path, Some(Format::TwitterCsv), 2, RecordUnit::Line),
        "expected 7 fields, found 6"
    );
    let path = dir.file("t2.csv", b"0,k,1,2,1,get,0\n1,k,x,2,1,set,0\n");
    assert!(
        expect_malformed(&path, Some(Format::TwitterCsv), 2, RecordUnit::Line).contains("key_size")
    );
    let path = dir.file("t3.csv", b"0,k,4294967295,1,1,get,0\n");
    assert!(
        expect_malformed(&path, Some(Format::TwitterCsv), 1, RecordUnit::Line)
            .contains("overflows")
    );
}

#[test]
fn every_compression_round_trips() {
    let dir = TempDir::new();
    let text = b"1 2 0 0\n9 1 0 1\n";
    let expected = [req(1, 1), req(2, 1), req(9, 1)];
    for name in ["a.lis", "a.lis.zst", "a.lis.gz", "a.lis.xz", "A.LIS.ZST"] {
        let path = dir.compressed(name, text);
        assert_eq!(read_all(&path, None).unwrap(), expected, "{name}");
    }
    // Multi-member gzip and concatenated xz streams are read to the end.
    for name in ["multi.lis.gz", "multi.lis.xz", "multi.lis.zst"] {
        let mut bytes = compress(name, b"1 1 0 0\n");
        bytes.extend(compress(name, b"2 1 0 0\n"));
        let path = dir.file(name, &bytes);
        assert_eq!(
            read_all(&path, None).unwrap(),
            [req(1, 1), req(2, 1)],
            "{name}"
        );
    }
}

#[test]
fn corrupt_or_truncated_compression_is_an_error() {
    let dir = TempDir::new();
    let text: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("{i} 1 0 {i}\n").into_bytes())
        .collect();
    for ext in ["zst", "gz", "xz"] {
        let name = format!("t.lis.{ext}");
        let garbage = dir.file(
            &format!("garbage.lis.{ext}"),
            b"this is not compressed at all",
        );
        expect_io(&garbage, None);
        let full = compress(&name, &text);
        let truncated = dir.file(&format!("trunc.lis.{ext}"), &full[..full.len() / 2]);
        expect_io(&truncated, None);
        let mut flipped = full.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        flipped[mid + 1] ^= 0x55;
        let flipped = dir.file(&format!("flip.lis.{ext}"), &flipped);
        assert!(
            read_all(&flipped, None).is_err(),
            "{ext}: a corrupted stream must fail"
        );
        let empty = dir.file(&format!("empty.lis.{ext}"), b"");
        let _ = read_all(&empty, None); // an error or nothing, but no panic
    }
}

#[test]
fn missing_file_and_unknown_format() {
    let dir = TempDir::new();
    let missing = dir.0.join("nope.lis");
    expect_io(&missing, None);
    let unknown = dir.file("t.bin", b"");
    match TraceReader::open(&unknown, None) {
        Err(e @ TraceError::UnknownFormat { .. }) => {
            assert_eq!(e.path(), Some(unknown.as_path()));
            assert!(e.to_string().contains("oracle-general"), "{e}");
        }
        other => panic!("expected UnknownFormat, got {other:?}"),
    }
    assert!(read_all(&unknown, Some(Format::OracleGeneral))
        .unwrap()
        .is_empty());
}

#[test]
fn trace_extension_is_sniffed_outside_known_directories() {
    let dir = TempDir::new();
    let text = dir.compressed("other/t.trace.gz", b"*c\n5\n6\n");
    assert_eq!(Format::from_path(&text), None);
    assert_eq!(Format::detect(&text).unwrap(), Format::Lirs);
    assert_eq!(read_all(&text, None).unwrap(), [req(5, 1), req(6, 1)]);
    let binary = dir.compressed("other/b.trace.xz", &[0, 0, 0, 5, 0, 0, 0, 6]);
    assert_eq!(Format::detect(&binary).unwrap(), Format::Cache2k);
    assert_eq!(read_all(&binary, None).unwrap(), [req(5, 1), req(6, 1)]);
}

/// Arbitrary bytes in any format give requests or an error, never a panic.
#[test]
fn random_bytes_never_panic() {
    let dir = TempDir::new();
    let mut state = 0x1234_5678_9abc_def0_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..40 {
        let len = (next() % 3000) as usize;
        let alphabet: &[u8] = b"0123456789 ,\n\r*-abcgets\xff\x00";
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = next();
                if round % 2 == 0 {
                    alphabet[(r % alphabet.len() as u64) as usize]
                } else {
                    r as u8
                }
            })
            .collect();
        let path = dir.file(&format!("r{round}.bin"), &bytes);
        for format in Format::ALL {
            for item in TraceReader::open(&path, Some(format)).unwrap() {
                if let Err(e) = item {
                    assert!(matches!(e, TraceError::Malformed { .. }), "{e:?}");
                }
            }
        }
        for ext in ["zst", "gz", "xz"] {
            let path = dir.file(&format!("r{round}.lis.{ext}"), &bytes);
            let _ = read_all(&path, None);
        }
    }
}
