//! Synthetic, reproducible workloads.
//!
//! Every generator is an infinite `Iterator<Item = Request>` (bound it with
//! [`Iterator::take`]) whose requests have size 1. Random generators take a
//! seed and use [`StdRng`], so a seed always gives the same sequence (with
//! the same `rand` version).
//!
//! ```
//! use layercache_trace::synth::{Mix, Scan, Zipf};
//! let hot = Zipf::new(1_000_000, 0.99, 42);
//! let scan = Scan::new(10_000);
//! let trace: Vec<_> = Mix::new(hot, scan, 0.9, 7).take(1000).collect();
//! assert_eq!(trace.len(), 1000);
//! ```

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::TraceError;
use crate::Request;

/// Zipf-distributed keys: key `k` in `0..n_keys` is drawn with probability
/// proportional to `1 / (k + 1)^s`, so key 0 is the most popular.
///
/// Sampling uses rejection-inversion (W. Hörmann and G. Derflinger,
/// "Rejection-inversion to generate variates from monotone discrete
/// distributions", ACM TOMACS 6(3), 1996), as in Apache Commons RNG's
/// `RejectionInversionZipfSampler`: `O(1)` time and memory per sample for any
/// `n_keys` up to 2^53 and any exponent `s >= 0` (including `s = 1`, where
/// the integral of `x^-s` is a logarithm; `s = 0` is uniform). Implemented
/// here rather than taken from `rand_distr` to pin down the algorithm and so
/// the sequence for a seed.
#[derive(Debug, Clone)]
pub struct Zipf {
    rng: StdRng,
    n: f64,
    exponent: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

impl Zipf {
    /// A Zipf generator over `n_keys` keys with exponent `s`.
    ///
    /// # Panics
    /// If `n_keys` is 0 or above 2^53, or `s` is negative or not finite; see
    /// [`Zipf::try_new`] for a fallible version.
    pub fn new(n_keys: u64, s: f64, seed: u64) -> Zipf {
        match Zipf::try_new(n_keys, s, seed) {
            Ok(z) => z,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Zipf::new`], but returns [`TraceError::InvalidParameter`] for
    /// bad parameters.
    pub fn try_new(n_keys: u64, s: f64, seed: u64) -> Result<Zipf, TraceError> {
        if n_keys == 0 || n_keys > 1 << 53 {
            return Err(TraceError::InvalidParameter {
                reason: format!("Zipf needs 1 <= n_keys <= 2^53, got {n_keys}"),
            });
        }
        if !(s.is_finite() && s >= 0.0) {
            return Err(TraceError::InvalidParameter {
                reason: format!("Zipf needs a finite exponent s >= 0, got {s}"),
            });
        }
        let n = n_keys as f64;
        let mut z = Zipf {
            rng: StdRng::seed_from_u64(seed),
            n,
            exponent: s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(n + 0.5);
        z.threshold = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        Ok(z)
    }

    /// The number of keys.
    pub fn n_keys(&self) -> u64 {
        self.n as u64
    }

    /// The exponent `s`.
    pub fn exponent(&self) -> f64 {
        self.exponent
    }

    /// Draws one 1-based rank in `1..=n`.
    fn sample_rank(&mut self) -> u64 {
        loop {
            let u: f64 = self.rng.gen();
            let u = self.h_integral_n + u * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    /// `h(x) = x^-s`.
    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    /// `H(x)`, an antiderivative of `h`: `(x^(1-s) - 1) / (1-s)`, or `ln x` for `s = 1`.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.exponent) * log_x) * log_x
    }

    /// The inverse of [`Zipf::h_integral`].
    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

impl Iterator for Zipf {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        Some(Request {
            key: self.sample_rank() - 1,
            size: 1,
        })
    }
}

/// A repeated sequential scan: `0, 1, .., n_keys - 1, 0, 1, ..`.
/// Empty if `n_keys` is 0.
#[derive(Debug, Clone)]
pub struct Scan {
    inner: Loop,
}

impl Scan {
    /// A scan over `0..n_keys`.
    pub fn new(n_keys: u64) -> Scan {
        Scan {
            inner: Loop::new(0, n_keys),
        }
    }
}

impl Iterator for Scan {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        self.inner.next()
    }
}

/// A loop over a key range: `first, first + 1, .., first + len - 1, first, ..`
/// (wrapping around `u64::MAX`). Empty if `len` is 0.
///
/// A loop slightly larger than the cache is LRU's worst case (0% hits).
#[derive(Debug, Clone)]
pub struct Loop {
    first: u64,
    len: u64,
    pos: u64,
}

impl Loop {
    /// A loop over `len` keys starting at `first`.
    pub fn new(first: u64, len: u64) -> Loop {
        Loop { first, len, pos: 0 }
    }
}

impl Iterator for Loop {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        if self.len == 0 {
            return None;
        }
        let key = self.first.wrapping_add(self.pos);
        self.pos += 1;
        if self.pos == self.len {
            self.pos = 0;
        }
        Some(Request { key, size: 1 })
    }
}

/// Interleaves two generators: each request comes from `a` with probability
/// `p_a` and from `b` otherwise. Ends when the chosen generator ends.
///
/// The generators draw from the same key space; to keep them apart, offset
/// one (e.g. a [`Loop`] starting at `1 << 40`).
#[derive(Debug, Clone)]
pub struct Mix<A, B> {
    a: A,
    b: B,
    p_a: f64,
    rng: StdRng,
}

impl<A, B> Mix<A, B>
where
    A: Iterator<Item = Request>,
    B: Iterator<Item = Request>,
{
    /// Mixes `a` (with probability `p_a`, clamped to `[0, 1]`; NaN counts as 0) and `b`.
    pub fn new(a: A, b: B, p_a: f64, seed: u64) -> Mix<A, B> {
        let p_a = if p_a.is_nan() {
            0.0
        } else {
            p_a.clamp(0.0, 1.0)
        };
        Mix {
            a,
            b,
            p_a,
            rng: StdRng::seed_from_u64(seed),
        }
    }
}

impl<A, B> Iterator for Mix<A, B>
where
    A: Iterator<Item = Request>,
    B: Iterator<Item = Request>,
{
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        if self.rng.gen::<f64>() < self.p_a {
            self.a.next()
        } else {
            self.b.next()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generalised harmonic number `H(n, s) = sum_{k=1}^{n} k^-s`.
    fn harmonic(n: u64, s: f64) -> f64 {
        (1..=n).map(|k| (k as f64).powf(-s)).sum()
    }

    fn frequencies(z: Zipf, samples: usize, track: usize) -> Vec<u64> {
        let mut counts = vec![0u64; track];
        for r in z.take(samples) {
            if let Some(c) = counts.get_mut(r.key as usize) {
                *c += 1;
            }
        }
        counts
    }

    #[test]
    fn zipf_matches_theory_for_top_ranks() {
        let samples = 200_000;
        for (n, s) in [
            (1_000_000u64, 0.99),
            (1_000_000, 1.0),
            (1000, 1.2),
            (100, 0.5),
        ] {
            let counts = frequencies(Zipf::new(n, s, 1), samples, 5);
            let h = harmonic(n, s);
            for (rank0, &c) in counts.iter().enumerate() {
                let p = ((rank0 + 1) as f64).powf(-s) / h;
                let expected = p * samples as f64;
                let sd = (samples as f64 * p * (1.0 - p)).sqrt();
                assert!(
                    (c as f64 - expected).abs() < 5.0 * sd + 1.0,
                    "n={n} s={s} rank {}: got {c}, expected {expected:.0} ± {sd:.0}",
                    rank0 + 1
                );
            }
        }
    }

    #[test]
    fn zipf_stays_in_range_and_is_uniform_at_zero() {
        let z = Zipf::new(10, 0.0, 3);
        let mut counts = [0u64; 10];
        for r in z.take(100_000) {
            counts[r.key as usize] += 1;
            assert_eq!(r.size, 1);
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert!(Zipf::new(1, 0.99, 0).take(100).all(|r| r.key == 0));
        assert!(Zipf::new(2, 5.0, 0).take(1000).all(|r| r.key < 2));
    }

    #[test]
    fn zipf_is_deterministic_by_seed() {
        let a: Vec<_> = Zipf::new(1 << 20, 0.99, 9).take(1000).collect();
        let b: Vec<_> = Zipf::new(1 << 20, 0.99, 9).take(1000).collect();
        let c: Vec<_> = Zipf::new(1 << 20, 0.99, 10).take(1000).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn zipf_rejects_bad_parameters() {
        assert!(Zipf::try_new(0, 1.0, 0).is_err());
        assert!(Zipf::try_new(10, -0.1, 0).is_err());
        assert!(Zipf::try_new(10, f64::NAN, 0).is_err());
        assert!(Zipf::try_new(10, f64::INFINITY, 0).is_err());
        let z = Zipf::try_new(10, 0.99, 0).unwrap();
        assert_eq!((z.n_keys(), z.exponent()), (10, 0.99));
    }

    #[test]
    #[should_panic(expected = "n_keys")]
    fn zipf_new_panics_on_zero_keys() {
        let _ = Zipf::new(0, 1.0, 0);
    }

    #[test]
    fn scan_and_loop() {
        let keys: Vec<u64> = Scan::new(3).take(7).map(|r| r.key).collect();
        assert_eq!(keys, [0, 1, 2, 0, 1, 2, 0]);
        let keys: Vec<u64> = Loop::new(10, 2).take(5).map(|r| r.key).collect();
        assert_eq!(keys, [10, 11, 10, 11, 10]);
        let keys: Vec<u64> = Loop::new(u64::MAX, 2).take(3).map(|r| r.key).collect();
        assert_eq!(keys, [u64::MAX, 0, u64::MAX]);
        assert_eq!(Scan::new(0).next(), None);
        assert_eq!(Loop::new(5, 0).next(), None);
    }

    #[test]
    fn mix_proportions_and_determinism() {
        let mix = || Mix::new(Loop::new(0, 1), Loop::new(1 << 40, 1), 0.25, 5);
        let from_a = mix().take(40_000).filter(|r| r.key == 0).count();
        assert!((9_000..11_000).contains(&from_a), "{from_a}");
        assert!(mix().take(100).eq(mix().take(100)));
        assert!(Mix::new(Scan::new(1), Scan::new(0), 1.0, 0)
            .take(10)
            .all(|r| r.key == 0));
        assert_eq!(
            Mix::new(Scan::new(1), Scan::new(0), f64::NAN, 0).next(),
            None
        );
    }
}
