//! Paired timing for the examples that compare layercache with a peer: the two run in
//! alternating rounds in one process, which is steadier on a noisy machine than two
//! measurements taken apart (BENCHMARKS.md §2).

/// The median of `v` (sorts it; `v` must not be empty).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Medians over [`paired`]'s rounds: each side's time, and the per-round ratio of ours to
/// theirs (below 1 is ours faster).
pub(crate) struct Paired {
    pub(crate) ours: f64,
    pub(crate) theirs: f64,
    pub(crate) ratio: f64,
}

/// Runs `ours` and `theirs` (each returns its time, in any unit) once per round for
/// `rounds` rounds, alternating which goes first, and returns the medians.
pub(crate) fn paired(
    rounds: usize,
    mut ours: impl FnMut() -> f64,
    mut theirs: impl FnMut() -> f64,
) -> Paired {
    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = ours();
            (x, theirs())
        } else {
            let y = theirs();
            (ours(), y)
        };
        a.push(x);
        b.push(y);
        ratio.push(x / y);
    }
    Paired {
        ours: median(&mut a),
        theirs: median(&mut b),
        ratio: median(&mut ratio),
    }
}
