//! `layercache sim` end to end: the binary on the shared traces, checked against the exact
//! figures in `../shared/traces/README.md`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn traces() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/traces"
    ))
}

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_layercache"))
        .arg("sim")
        .args(args)
        .output()
        .expect("run layercache")
}

/// Runs `sim --json` and returns (policy, capacity, hits, requests) per line.
fn sim_json(args: &[&str]) -> Vec<(String, u64, u64, u64)> {
    let out = sim(&[args, &["--json"]].concat());
    assert!(
        out.status.success(),
        "sim failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            let ratio = v["hit_ratio"].as_f64().expect("hit_ratio");
            let (hits, requests) = (v["hits"].as_u64().unwrap(), v["requests"].as_u64().unwrap());
            assert!((ratio - hits as f64 / requests as f64).abs() < 1e-12);
            assert!(v["seconds"].as_f64().unwrap() >= 0.0);
            assert!(v["trace"].as_str().is_some());
            (
                v["policy"].as_str().unwrap().to_string(),
                v["capacity"].as_u64().unwrap(),
                hits,
                requests,
            )
        })
        .collect()
}

#[test]
fn oltp_lru_and_opt_hits_are_exact() {
    let trace = traces().join("arc/OLTP.lis.zst");
    let rows = sim_json(&[
        "--trace",
        trace.to_str().unwrap(),
        "--policy",
        "lru,opt",
        "--capacity",
        "1000",
    ]);
    assert_eq!(
        rows,
        vec![
            ("lru".to_string(), 1000, 300_122, 914_145),
            ("opt".to_string(), 1000, 490_093, 914_145),
        ]
    );
}

#[test]
fn weighted_cloudphysics_matches_libcachesim() {
    let trace = traces().join("libcachesim/cloudPhysicsIO.oracleGeneral.bin");
    let rows = sim_json(&[
        "--trace",
        trace.to_str().unwrap(),
        "--weighted",
        "--policy",
        "lru,fifo,sieve",
        "--capacity",
        "128MiB..1024MiB:128MiB",
    ]);
    let expected: [(&str, [u64; 8]); 3] = [
        (
            "lru",
            [93374, 89783, 83572, 81722, 72494, 72104, 71972, 71704],
        ),
        (
            "fifo",
            [93403, 89386, 84387, 84025, 72498, 72228, 72182, 72140],
        ),
        (
            "sieve",
            [91699, 86720, 78578, 76707, 69945, 66221, 64445, 64376],
        ),
    ];
    for (policy, misses) in expected {
        let got: Vec<u64> = rows
            .iter()
            .filter(|r| r.0 == policy)
            .map(|(_, _, hits, reqs)| reqs - hits)
            .collect();
        assert_eq!(got, misses, "{policy}");
    }
    let caps: Vec<u64> = rows.iter().filter(|r| r.0 == "lru").map(|r| r.1).collect();
    assert_eq!(
        caps,
        (1..=8).map(|i| i * 128 * 1024 * 1024).collect::<Vec<u64>>()
    );
}

#[test]
fn default_workload_runs_without_a_trace() {
    let out = sim(&["--policy", "lru,wtinylfu", "--capacity", "1000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("zipf"), "{table}");
    assert!(
        table.contains("wtinylfu") && table.contains("lru"),
        "{table}"
    );
}

#[test]
fn plot_is_written() {
    let dir = std::env::temp_dir().join(format!("layercache-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("out.svg");
    let trace = traces().join("lirs/gli.trace.gz");
    let out = sim(&[
        "--trace",
        trace.to_str().unwrap(),
        "--policy",
        "lru,opt",
        "--capacity",
        "250,500",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<svg") && text.contains("opt"),
        "not an SVG plot"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn malformed_trace_names_file_and_line() {
    let dir = std::env::temp_dir().join(format!("layercache-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.lis");
    std::fs::write(&bad, "1 2 0 0\n3 x 0 1\n").unwrap();
    let out = sim(&[
        "--trace",
        bad.to_str().unwrap(),
        "--policy",
        "lru",
        "--capacity",
        "10",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.lis") && err.contains("line 2"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_arguments_are_clear_errors() {
    let out = sim(&["--policy", "arc"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown eviction policy"));
    let out = sim(&["--capacity", "12 parsecs"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit"));
    let oltp = traces().join("arc/OLTP.lis.zst");
    let out = sim(&[
        "--trace",
        oltp.to_str().unwrap(),
        "--weighted",
        "--capacity",
        "1000",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--weighted needs object sizes") && err.contains("arc"),
        "{err}"
    );
    let out = sim(&["--trace", "/nonexistent/trace.lis"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/trace.lis"));
}
