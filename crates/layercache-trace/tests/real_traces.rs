//! The readers and OPT against the shared real traces (figures from
//! `shared/traces/README.md`). Without the traces each test says it is skipped and passes,
//! unless `LAYERCACHE_REQUIRE_TRACES=1` (see `layercache_trace::shared_traces`);
//! `missing_traces_are_skipped_visibly_or_fail_when_required` checks that behaviour.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use layercache_trace::opt::Admission;
use layercache_trace::shared_traces::{self, for_test};
use layercache_trace::{read_all, Belady, Format, TraceReader};

/// Streams the trace, checking the detected format, and returns
/// `(requests, unique keys)`.
fn count(path: &Path, format: Format) -> (u64, usize) {
    let reader = TraceReader::open(path, None).unwrap();
    assert_eq!(reader.format(), format);
    assert_eq!(reader.path(), path);
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
    let Some([oltp]) = for_test(["arc/OLTP.lis.zst"]) else {
        return;
    };
    assert_eq!(count(&oltp, Format::Arc), (914_145, 186_880));
}

#[test]
fn arc_p3() {
    let Some([p3]) = for_test(["arc/P3.lis.zst"]) else {
        return;
    };
    assert_eq!(count(&p3, Format::Arc), (3_912_296, 762_543));
}

#[test]
fn lirs_traces() {
    let Some([looping, sprite, multi2, gli]) = for_test([
        "lirs/loop.trace.gz",
        "lirs/sprite.trace.gz",
        "lirs/multi2.trace.gz",
        "lirs/gli.trace.gz",
    ]) else {
        return;
    };
    assert_eq!(count(&looping, Format::Lirs), (505_500, 1_011));
    assert_eq!(count(&sprite, Format::Lirs), (133_996, 7_075));
    assert_eq!(count(&multi2, Format::Lirs), (26_311, 5_684));
    assert_eq!(count(&gli, Format::Lirs), (6_015, 2_529));
}

#[test]
fn cache2k_web07() {
    let Some([web07]) = for_test(["cache2k/web07.trace.xz"]) else {
        return;
    };
    assert_eq!(count(&web07, Format::Cache2k), (76_118, 20_484));
}

#[test]
fn oracle_general_cloudphysics() {
    let Some([cloud]) = for_test(["libcachesim/cloudPhysicsIO.oracleGeneral.bin"]) else {
        return;
    };
    assert_eq!(count(&cloud, Format::OracleGeneral), (113_872, 48_974));
    let first = TraceReader::open(&cloud, None)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert!(first.size > 0);
}

#[test]
fn explicit_format_overrides_detection() {
    // A LIRS file read as ARC is malformed at line 1 ("0" is one field).
    let Some([gli]) = for_test(["lirs/gli.trace.gz"]) else {
        return;
    };
    let mut r = TraceReader::open(&gli, Some(Format::Arc)).unwrap();
    let err = r.next().unwrap().unwrap_err().to_string();
    assert!(
        err.ends_with("gli.trace.gz: line 1: expected 4 fields, found 1"),
        "{err}"
    );
    assert!(r.next().is_none());
}

#[test]
fn opt_unit_oltp_exact_hits() {
    let Some([oltp]) = for_test(["arc/OLTP.lis.zst"]) else {
        return;
    };
    let requests = read_all(&oltp, None).unwrap();
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
    let table: [(&str, &[(u64, f64)]); 6] = [
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
    let Some(paths) = for_test(table.map(|(name, _)| name)) else {
        return;
    };
    for ((name, rows), path) in table.iter().zip(paths) {
        let opt = Belady::new(&read_all(&path, None).unwrap());
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
    let Some([cloud]) = for_test(["libcachesim/cloudPhysicsIO.oracleGeneral.bin"]) else {
        return;
    };
    let requests = read_all(&cloud, None).unwrap();
    let opt = Belady::new(&requests);
    let expected = [79256, 70724, 65481, 61594, 59645, 57599, 50873, 48974];
    for (i, misses) in expected.into_iter().enumerate() {
        let mib = 128 * (i as u64 + 1);
        let r = opt.simulate(mib << 20, true);
        assert_eq!((r.misses(), r.requests), (misses, 113_872), "{mib} MiB");
    }
}

/// Runs this test binary's test `name` alone in a child process with `LAYERCACHE_TRACES` set
/// to `dir` and `LAYERCACHE_REQUIRE_TRACES` to `require` (removed if `None`); returns whether
/// it passed and its standard output and error together.
fn run_alone(name: &str, dir: &str, require: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([name, "--exact", "--test-threads=1"])
        .env(shared_traces::DIR_VAR, dir);
    match require {
        Some(v) => cmd.env(shared_traces::REQUIRE_VAR, v),
        None => cmd.env_remove(shared_traces::REQUIRE_VAR),
    };
    let out = cmd.output().expect("run the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Without the traces, a trace test passes and prints exactly one "skipped" line naming the
/// missing file, visible although the harness captures a passing test's output; with
/// `LAYERCACHE_REQUIRE_TRACES=1` it fails, naming it. A relative `LAYERCACHE_TRACES` is taken
/// from the repository root.
#[test]
fn missing_traces_are_skipped_visibly_or_fail_when_required() {
    let nowhere = std::env::temp_dir().join(format!("layercache-no-traces-{}", std::process::id()));
    assert!(!nowhere.exists());
    let dir = nowhere.to_str().unwrap();
    let missing = nowhere.join("lirs/loop.trace.gz");
    let line = format!("skipped: traces not found at {}", missing.display());

    let (passed, out) = run_alone("lirs_traces", dir, None);
    assert!(passed, "{out}");
    assert_eq!(out.matches(&line).count(), 1, "{out}");
    assert!(out.contains("test lirs_traces ... ok"), "{out}");
    let (passed, out) = run_alone("lirs_traces", dir, Some("0"));
    assert!(passed && out.contains(&line), "{out}");

    let (passed, out) = run_alone("lirs_traces", dir, Some("1"));
    assert!(!passed, "{out}");
    assert!(
        out.contains(&format!("traces not found at {}", missing.display())),
        "{out}"
    );
    assert!(!out.contains("skipped:"), "{out}");

    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().and_then(Path::parent).unwrap();
    let relative = format!("no-traces-here-{}", std::process::id());
    let (passed, out) = run_alone("arc_p3", &relative, None);
    let want: PathBuf = root.join(&relative).join("arc/P3.lis.zst");
    assert!(passed, "{out}");
    assert!(
        out.contains(&format!("skipped: traces not found at {}", want.display())),
        "{out}"
    );
}
