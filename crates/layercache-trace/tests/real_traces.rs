//! The readers and OPT against the shared real traces (figures from
//! `shared/traces/README.md`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use layercache_trace::opt::Admission;
use layercache_trace::{read_all, Belady, Format, TraceReader};

fn trace(name: &str) -> PathBuf {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/traces"
    ))
    .join(name);
    assert!(path.exists(), "missing shared trace {}", path.display());
    path
}

/// Streams the trace, checking the detected format, and returns
/// `(requests, unique keys)`.
fn count(name: &str, format: Format) -> (u64, usize) {
    let reader = TraceReader::open(&trace(name), None).unwrap();
    assert_eq!(reader.format(), format);
    assert_eq!(reader.path(), trace(name));
    let mut keys = HashSet::new();
    let mut n = 0u64;
    for r in reader {
        let r = r.unwrap();
        if !format.has_sizes() {
            assert_eq!(r.size, 1);
        }
        keys.insert(r.key);
        n += 1;
    }
    (n, keys.len())
}

#[test]
fn arc_oltp() {
    assert_eq!(count("arc/OLTP.lis.zst", Format::Arc), (914_145, 186_880));
}

#[test]
fn arc_p3() {
    assert_eq!(count("arc/P3.lis.zst", Format::Arc), (3_912_296, 762_543));
}

#[test]
fn lirs_traces() {
    assert_eq!(count("lirs/loop.trace.gz", Format::Lirs), (505_500, 1_011));
    assert_eq!(
        count("lirs/sprite.trace.gz", Format::Lirs),
        (133_996, 7_075)
    );
    assert_eq!(count("lirs/multi2.trace.gz", Format::Lirs), (26_311, 5_684));
    assert_eq!(count("lirs/gli.trace.gz", Format::Lirs), (6_015, 2_529));
}

#[test]
fn cache2k_web07() {
    assert_eq!(
        count("cache2k/web07.trace.xz", Format::Cache2k),
        (76_118, 20_484)
    );
}

#[test]
fn oracle_general_cloudphysics() {
    let name = "libcachesim/cloudPhysicsIO.oracleGeneral.bin";
    assert_eq!(count(name, Format::OracleGeneral), (113_872, 48_974));
    let first = TraceReader::open(&trace(name), None)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert!(first.size > 0);
}

#[test]
fn explicit_format_overrides_detection() {
    // A LIRS file read as ARC is malformed at line 1 ("0" is one field).
    let mut r = TraceReader::open(&trace("lirs/gli.trace.gz"), Some(Format::Arc)).unwrap();
    let err = r.next().unwrap().unwrap_err().to_string();
    assert!(
        err.ends_with("gli.trace.gz: line 1: expected 4 fields, found 1"),
        "{err}"
    );
    assert!(r.next().is_none());
}

#[test]
fn opt_unit_oltp_exact_hits() {
    let requests = read_all(&trace("arc/OLTP.lis.zst"), None).unwrap();
    let opt = Belady::new(&requests);
    for (capacity, hits) in [
        (250, 351_350),
        (500, 424_319),
        (1000, 490_093),
        (2000, 552_149),
    ] {
        let r = opt.simulate(capacity, false);
        assert_eq!((r.hits, r.requests), (hits, 914_145), "capacity {capacity}");
    }
    // Allowing bypass is the true optimum: never worse, here strictly better.
    let bypass = opt.simulate_with(250, false, Admission::Bypass);
    assert_eq!(bypass.hits, 351_662);
}

/// The OPT column of the README's hit-ratio table (percent, 2 decimals).
#[test]
fn opt_unit_readme_hit_ratios() {
    let table: &[(&str, &[(u64, f64)])] = &[
        (
            "lirs/loop.trace.gz",
            &[(256, 25.22), (512, 50.54), (768, 75.81), (1024, 99.80)],
        ),
        (
            "lirs/sprite.trace.gz",
            &[(256, 75.06), (512, 88.20), (1024, 93.31), (2048, 94.62)],
        ),
        (
            "lirs/multi2.trace.gz",
            &[(512, 53.83), (1024, 62.52), (2048, 75.01)],
        ),
        (
            "lirs/gli.trace.gz",
            &[(250, 17.64), (500, 34.26), (1000, 53.13), (1500, 57.96)],
        ),
        (
            "cache2k/web07.trace.xz",
            &[(500, 59.16), (2000, 67.97), (8000, 73.09)],
        ),
        (
            "libcachesim/cloudPhysicsIO.oracleGeneral.bin",
            &[(1000, 23.58), (5000, 37.38), (20000, 54.47)],
        ),
    ];
    for (name, rows) in table {
        let opt = Belady::new(&read_all(&trace(name), None).unwrap());
        for &(capacity, percent) in *rows {
            let got = opt.simulate(capacity, false).hit_ratio() * 100.0;
            assert!(
                (got - percent).abs() < 0.005,
                "{name} @ {capacity}: {got:.4}% vs {percent}%"
            );
        }
    }
}

/// libCacheSim's Belady regression values (misses, byte capacities in MiB).
#[test]
fn opt_weighted_cloudphysics_matches_libcachesim() {
    let requests = read_all(&trace("libcachesim/cloudPhysicsIO.oracleGeneral.bin"), None).unwrap();
    let opt = Belady::new(&requests);
    let expected = [79256, 70724, 65481, 61594, 59645, 57599, 50873, 48974];
    for (i, misses) in expected.into_iter().enumerate() {
        let mib = 128 * (i as u64 + 1);
        let r = opt.simulate(mib << 20, true);
        assert_eq!((r.misses(), r.requests), (misses, 113_872), "{mib} MiB");
    }
}
