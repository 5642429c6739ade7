//! Choosing the number of k-means clusters ("auto-k").
//!
//! [`select_k`] fits k-means for every `k` of a range and scores each fit. To keep the
//! cost independent of the table size, the candidates are fitted on a seeded uniform
//! sample of at most `sample` rows (all rows when there are fewer), and every criterion
//! is computed on that same sample: the caller then fits the chosen `k` once on all
//! rows. With the defaults (20,000 rows, silhouette on 10,000 of them, k = 2..12) the
//! selection costs about a second on two cores whatever `n`, which keeps auto-k on 1M
//! rows within a small multiple of one full fit (`segflow-bench autok`).
//!
//! Criteria ([`Criterion`]):
//! - `Silhouette`: highest mean silhouette coefficient. Its cost is quadratic, so it
//!   is computed on a seeded subset of `silhouette_sample` rows of the sample (default
//!   10,000; the same rows for every k), which is scikit-learn's
//!   `silhouette_score(X, labels, sample_size=, random_state=)`.
//! - `CalinskiHarabasz`: highest variance ratio.
//! - `DaviesBouldin`: lowest Davies-Bouldin index.
//! - `Elbow`: the knee of the inertia curve by Kneedle (Satopää, Albrecht, Irwin &
//!   Raghavan 2011, "Finding a 'Kneedle' in a Haystack"), offline, sensitivity 1, no
//!   smoothing; see [`kneedle`].
//! - `Gap`: the gap statistic (Tibshirani, Walther & Hastie 2001): `B` reference data
//!   sets drawn uniformly from the bounding box of the sample's features (the paper's
//!   option (a)), each clustered for every `k`; `Gap(k) = mean_b log W*_kb − log W_k`
//!   and the smallest `k` with `Gap(k) >= Gap(k+1) − s(k+1)`,
//!   `s = sd_b(log W*) · sqrt(1 + 1/B)`; see [`gap_choice`]. Costs `B + 1` times the
//!   other criteria's fits.
//!
//! Whatever the criterion, every candidate's inertia, silhouette, Calinski-Harabasz
//! and Davies-Bouldin values are reported (the gap too when it was the criterion), so
//! the whole curve can be inspected. Deterministic for a seed at any thread count.

use crate::kmeans::{fit, KMeansError, KMeansParams};
use crate::metrics::{sample_indices, silhouette_score_subset, summarize};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What chooses `k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    Silhouette,
    CalinskiHarabasz,
    DaviesBouldin,
    Elbow,
    Gap,
}

impl Criterion {
    /// The snake_case name used in config and facts.
    pub fn name(self) -> &'static str {
        match self {
            Criterion::Silhouette => "silhouette",
            Criterion::CalinskiHarabasz => "calinski_harabasz",
            Criterion::DaviesBouldin => "davies_bouldin",
            Criterion::Elbow => "elbow",
            Criterion::Gap => "gap",
        }
    }
}

/// Why auto-k cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AutoKError {
    #[error(
        "the k range {lo}..={hi} is empty or starts below 1; give [low, high] with 1 <= low < high"
    )]
    Range { lo: usize, hi: usize },
    #[error("the {criterion} criterion needs k >= 2 (the lower end of the range is {lo})")]
    NeedsTwo { criterion: &'static str, lo: usize },
    #[error("k = {k} (the top of the range) is more than the {rows} rows to choose on")]
    TooFewRows { k: usize, rows: usize },
    #[error("the sample must have at least 1 row and the silhouette sample at least 2")]
    ZeroSample,
    #[error("the gap statistic needs at least 1 reference data set")]
    ZeroReferences,
    #[error("no k in the range gave a usable {criterion} value (the data may have fewer distinct rows than k)")]
    NoCandidate { criterion: &'static str },
    #[error(transparent)]
    KMeans(#[from] KMeansError),
}

/// Auto-k settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoKParams {
    /// Smallest and largest `k` tried (inclusive).
    pub k_min: usize,
    pub k_max: usize,
    pub criterion: Criterion,
    /// Rows sampled (seeded, uniformly, without replacement) for the candidate fits and
    /// the criteria; all rows when there are at most this many.
    pub sample: usize,
    /// Rows of that sample the silhouette is computed on (its cost is quadratic): one
    /// seeded subset, the same for every k, as scikit-learn's
    /// `silhouette_score(sample_size=)`; the whole sample when it is smaller.
    pub silhouette_sample: usize,
    /// Reference data sets for the gap statistic (`B`).
    pub gap_references: usize,
    /// Settings of each candidate fit (`k` is replaced); its seed also seeds the sample
    /// and the gap's reference data.
    pub kmeans: KMeansParams,
}

impl AutoKParams {
    /// Defaults: k = 2..12, silhouette, 20,000-row sample, B = 10, k-means defaults.
    pub fn new() -> Self {
        AutoKParams {
            k_min: 2,
            k_max: 12,
            criterion: Criterion::Silhouette,
            sample: 20_000,
            silhouette_sample: 10_000,
            gap_references: 10,
            kmeans: KMeansParams::new(2),
        }
    }

    pub fn check(&self) -> Result<(), AutoKError> {
        if self.k_min < 1 || self.k_max <= self.k_min {
            return Err(AutoKError::Range {
                lo: self.k_min,
                hi: self.k_max,
            });
        }
        if self.k_min < 2
            && matches!(
                self.criterion,
                Criterion::Silhouette | Criterion::CalinskiHarabasz | Criterion::DaviesBouldin
            )
        {
            return Err(AutoKError::NeedsTwo {
                criterion: self.criterion.name(),
                lo: self.k_min,
            });
        }
        if self.sample == 0 || self.silhouette_sample < 2 {
            return Err(AutoKError::ZeroSample);
        }
        if self.criterion == Criterion::Gap && self.gap_references == 0 {
            return Err(AutoKError::ZeroReferences);
        }
        Ok(())
    }
}

impl Default for AutoKParams {
    fn default() -> Self {
        Self::new()
    }
}

/// One candidate `k` and its scores (on the sample). A metric is `None` where it is
/// undefined (fewer than 2 distinct clusters) or was not computed (the gap, unless it
/// is the criterion).
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePoint {
    pub k: usize,
    /// Within-cluster sum of squares of the fit on the sample.
    pub inertia: f64,
    pub silhouette: Option<f64>,
    pub calinski_harabasz: Option<f64>,
    pub davies_bouldin: Option<f64>,
    pub gap: Option<f64>,
    /// `s(k) = sd(log W*) · sqrt(1 + 1/B)`, with the gap.
    pub gap_s: Option<f64>,
}

/// The outcome of [`select_k`].
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub criterion: Criterion,
    pub curve: Vec<CurvePoint>,
    pub chosen: usize,
    /// Why `chosen` won, in a sentence.
    pub reason: String,
    /// Rows the candidates were fitted and scored on, and rows in all.
    pub sample_rows: usize,
    /// Rows of the sample the silhouette was computed on.
    pub silhouette_rows: usize,
    pub rows: usize,
}

/// Fit every `k` of the range on a sample of `data` (row-major, `d` features) and
/// choose one by `params.criterion`.
pub fn select_k(data: &[f64], d: usize, params: &AutoKParams) -> Result<Selection, AutoKError> {
    params.check()?;
    params.kmeans.check(d)?;
    let n = crate::kmeans::check_data(data, d)?;
    let idx = sample_indices(n, params.sample, params.kmeans.seed);
    let m = idx.len();
    if params.k_max > m {
        return Err(AutoKError::TooFewRows {
            k: params.k_max,
            rows: m,
        });
    }
    let sample: Vec<f64> = if m == n {
        data.to_vec()
    } else {
        idx.iter()
            .flat_map(|&i| data[i * d..(i + 1) * d].iter().copied())
            .collect()
    };
    // The silhouette's subset of the sample (a different stream from the sample's).
    let sil_idx = sample_indices(
        m,
        params.silhouette_sample,
        params.kmeans.seed ^ SILHOUETTE_STREAM,
    );
    let ks: Vec<usize> = (params.k_min..=params.k_max).collect();
    let mut curve = Vec::with_capacity(ks.len());
    for &k in &ks {
        let model = fit(&sample, d, &with_k(&params.kmeans, k))?;
        let summary = summarize(&sample, d, &model.labels).expect("checked data");
        let (silhouette, ch, db) = if summary.k() >= 2 && summary.k() < m {
            (
                silhouette_score_subset(&sample, d, &model.labels, &sil_idx).ok(),
                summary.calinski_harabasz().ok(),
                summary.davies_bouldin().ok(),
            )
        } else {
            (None, None, None)
        };
        curve.push(CurvePoint {
            k,
            inertia: model.inertia,
            silhouette,
            calinski_harabasz: ch,
            davies_bouldin: db,
            gap: None,
            gap_s: None,
        });
    }
    let where_ = if m < n {
        format!("on a {m}-row sample of {n} rows")
    } else {
        format!("on all {n} rows")
    };
    let range = format!("k = {}..{}", params.k_min, params.k_max);
    let best_by = |get: fn(&CurvePoint) -> Option<f64>, higher: bool| -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (i, p) in curve.iter().enumerate() {
            if let Some(v) = get(p) {
                let better = match best {
                    None => true,
                    Some((_, b)) => {
                        if higher {
                            v > b
                        } else {
                            v < b
                        }
                    }
                };
                if better {
                    best = Some((i, v));
                }
            }
        }
        best.map(|b| b.0)
    };
    let no = |c: Criterion| AutoKError::NoCandidate {
        criterion: c.name(),
    };
    let (chosen, reason) = match params.criterion {
        Criterion::Silhouette => {
            let i = best_by(|p| p.silhouette, true).ok_or(no(params.criterion))?;
            let v = curve[i].silhouette.unwrap_or(f64::NAN);
            let on = if sil_idx.len() < m {
                format!(" (silhouette on {} of those rows)", sil_idx.len())
            } else {
                String::new()
            };
            (
                i,
                format!("highest mean silhouette ({v:.4}) of {range}, {where_}{on}"),
            )
        }
        Criterion::CalinskiHarabasz => {
            let i = best_by(|p| p.calinski_harabasz, true).ok_or(no(params.criterion))?;
            let v = curve[i].calinski_harabasz.unwrap_or(f64::NAN);
            (
                i,
                format!("highest Calinski-Harabasz index ({v:.1}) of {range}, {where_}"),
            )
        }
        Criterion::DaviesBouldin => {
            let i = best_by(|p| p.davies_bouldin, false).ok_or(no(params.criterion))?;
            let v = curve[i].davies_bouldin.unwrap_or(f64::NAN);
            (
                i,
                format!("lowest Davies-Bouldin index ({v:.4}) of {range}, {where_}"),
            )
        }
        Criterion::Elbow => {
            let x: Vec<f64> = curve.iter().map(|p| p.k as f64).collect();
            let y: Vec<f64> = curve.iter().map(|p| p.inertia).collect();
            match kneedle(&x, &y, 1.0) {
                Knee::Found(i) => (
                    i,
                    format!(
                        "knee of the inertia curve over {range} by Kneedle (Satopää et al. 2011, sensitivity 1), {where_}"
                    ),
                ),
                Knee::Farthest(i) => (
                    i,
                    format!(
                        "no knee passed Kneedle's threshold (the inertia curve over {range} is close to straight); chose the point farthest below the chord, {where_}"
                    ),
                ),
                Knee::Flat => (
                    0,
                    format!("the inertia curve over {range} does not bend; chose the smallest k, {where_}"),
                ),
            }
        }
        Criterion::Gap => {
            let (gaps, s) = gap_statistic(&sample, d, &ks, &curve, params)?;
            for (p, (g, sv)) in curve.iter_mut().zip(gaps.iter().zip(&s)) {
                p.gap = Some(*g);
                p.gap_s = Some(*sv);
            }
            let b = params.gap_references;
            match gap_choice(&gaps, &s) {
                (i, true) => (
                    i,
                    format!(
                        "smallest k with Gap(k) >= Gap(k+1) - s(k+1) over {range} (Tibshirani et al. 2001, {b} uniform reference sets), {where_}"
                    ),
                ),
                (i, false) => (
                    i,
                    format!(
                        "no k in {range} met Gap(k) >= Gap(k+1) - s(k+1) (Tibshirani et al. 2001, {b} uniform reference sets); chose the largest gap, {where_}"
                    ),
                ),
            }
        }
    };
    Ok(Selection {
        criterion: params.criterion,
        chosen: curve[chosen].k,
        curve,
        reason,
        sample_rows: m,
        silhouette_rows: sil_idx.len(),
        rows: n,
    })
}

/// Mixed into the seed for the silhouette's subset.
const SILHOUETTE_STREAM: u64 = 0x5111_0e77_e5a3_91e5;

/// `Gap(k)` and `s(k)` for every `k` in `ks`, given the data's fits in `curve`.
fn gap_statistic(
    sample: &[f64],
    d: usize,
    ks: &[usize],
    curve: &[CurvePoint],
    params: &AutoKParams,
) -> Result<(Vec<f64>, Vec<f64>), AutoKError> {
    let m = sample.len() / d;
    let mut lo = vec![f64::INFINITY; d];
    let mut hi = vec![f64::NEG_INFINITY; d];
    for row in sample.chunks_exact(d) {
        for f in 0..d {
            lo[f] = lo[f].min(row[f]);
            hi[f] = hi[f].max(row[f]);
        }
    }
    let b = params.gap_references;
    // log W*_kb, per k, per reference set.
    let mut log_w = vec![vec![0.0; b]; ks.len()];
    #[allow(clippy::needless_range_loop)] // r indexes the inner vectors and the stream
    for r in 0..b {
        let mut rng = ChaCha8Rng::seed_from_u64(params.kmeans.seed);
        rng.set_stream(r as u64 + 1);
        let mut reference = Vec::with_capacity(m * d);
        for _ in 0..m {
            for f in 0..d {
                let u: f64 = rng.random();
                reference.push(lo[f] + u * (hi[f] - lo[f]));
            }
        }
        for (ki, &k) in ks.iter().enumerate() {
            let model = fit(&reference, d, &with_k(&params.kmeans, k))?;
            log_w[ki][r] = model.inertia.max(f64::MIN_POSITIVE).ln();
        }
    }
    let mut gaps = Vec::with_capacity(ks.len());
    let mut s = Vec::with_capacity(ks.len());
    for (ki, p) in curve.iter().enumerate() {
        let mean = log_w[ki].iter().sum::<f64>() / b as f64;
        let var = log_w[ki]
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .sum::<f64>()
            / b as f64;
        gaps.push(mean - p.inertia.max(f64::MIN_POSITIVE).ln());
        s.push(var.sqrt() * (1.0 + 1.0 / b as f64).sqrt());
    }
    Ok((gaps, s))
}

/// Tibshirani's rule: the first index `i` with `gap[i] >= gap[i+1] − s[i+1]`, and
/// `true`; when none qualifies, the index of the largest gap and `false`.
pub fn gap_choice(gap: &[f64], s: &[f64]) -> (usize, bool) {
    for i in 0..gap.len().saturating_sub(1) {
        if gap[i] >= gap[i + 1] - s[i + 1] {
            return (i, true);
        }
    }
    let mut best = 0;
    for i in 1..gap.len() {
        if gap[i] > gap[best] {
            best = i;
        }
    }
    (best, false)
}

/// The outcome of [`kneedle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knee {
    /// A knee at this index.
    Found(usize),
    /// No local maximum of the difference curve passed its threshold; this index is the
    /// largest difference (the point farthest below the chord).
    Farthest(usize),
    /// The difference curve is nowhere positive (a straight or concave curve).
    Flat,
}

/// Kneedle (Satopää et al. 2011), offline, for a decreasing convex curve such as
/// inertia against `k`: normalise `x` and `y` to [0, 1], turn the curve into a concave
/// increasing one (`y' = 1 − y`), take the difference curve `D = y' − x`, and return
/// the first local maximum of `D` after which `D` drops below
/// `D(max) − sensitivity · mean(Δx)` before the next local maximum (the same rule as
/// the `kneed` package with `curve="convex", direction="decreasing"`, `online=False`).
/// `x` must be increasing.
pub fn kneedle(x: &[f64], y: &[f64], sensitivity: f64) -> Knee {
    let m = x.len().min(y.len());
    if m < 3 {
        return Knee::Flat;
    }
    let (x0, x1) = (x[0], x[m - 1]);
    let ymin = y[..m].iter().copied().fold(f64::INFINITY, f64::min);
    let ymax = y[..m].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if x1 <= x0 || ymax <= ymin {
        return Knee::Flat;
    }
    // Differences this small are rounding, not a bend.
    const EPS: f64 = 1e-12;
    let xn: Vec<f64> = x[..m].iter().map(|v| (v - x0) / (x1 - x0)).collect();
    let diff: Vec<f64> = (0..m)
        .map(|i| (1.0 - (y[i] - ymin) / (ymax - ymin)) - xn[i])
        .collect();
    let step = xn.windows(2).map(|w| w[1] - w[0]).sum::<f64>() / (m - 1) as f64;
    // Local maxima (>= both neighbours), interior points only.
    let is_max = |i: usize| i > 0 && i + 1 < m && diff[i] >= diff[i - 1] && diff[i] >= diff[i + 1];
    let mut current: Option<(usize, f64)> = None;
    #[allow(clippy::needless_range_loop)] // i is also passed to is_max
    for i in 1..m {
        if is_max(i) && diff[i] > EPS {
            current = Some((i, diff[i] - sensitivity * step));
            continue;
        }
        if let Some((lm, threshold)) = current {
            if diff[i] < threshold {
                return Knee::Found(lm);
            }
        }
    }
    let (best, bv) =
        diff.iter().enumerate().fold(
            (0, f64::NEG_INFINITY),
            |b, (i, &v)| if v > b.1 { (i, v) } else { b },
        );
    if bv > EPS {
        Knee::Farthest(best)
    } else {
        Knee::Flat
    }
}

/// `p` with `k` clusters.
fn with_k(p: &KMeansParams, k: usize) -> KMeansParams {
    let mut p = p.clone();
    p.k = k;
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `groups` Gaussian-ish blobs in 2-D, well apart.
    fn blobs(groups: usize, per: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut v = Vec::new();
        for g in 0..groups {
            let (cx, cy) = ((g % 3) as f64 * 12.0, (g / 3) as f64 * 12.0);
            for _ in 0..per {
                let (a, b): (f64, f64) = (rng.random(), rng.random());
                let r = (-2.0 * (1.0 - a).ln()).sqrt();
                v.push(cx + r * (std::f64::consts::TAU * b).cos());
                v.push(cy + r * (std::f64::consts::TAU * b).sin());
            }
        }
        v
    }

    #[test]
    fn every_criterion_finds_separated_blobs() {
        let x = blobs(5, 300, 1);
        for c in [
            Criterion::Silhouette,
            Criterion::CalinskiHarabasz,
            Criterion::DaviesBouldin,
            Criterion::Elbow,
            Criterion::Gap,
        ] {
            let p = AutoKParams {
                k_min: 2,
                k_max: 9,
                criterion: c,
                sample: 1000,
                silhouette_sample: 600,
                gap_references: 5,
                kmeans: KMeansParams::new(2).n_init(3).seed(4),
            };
            let s = select_k(&x, 2, &p).unwrap();
            assert_eq!(s.chosen, 5, "{}: {:?} {}", c.name(), s.curve, s.reason);
            assert_eq!(s.curve.len(), 8);
            assert_eq!(s.sample_rows, 1000);
            assert_eq!(s.curve[0].gap.is_some(), c == Criterion::Gap);
        }
    }

    #[test]
    fn same_selection_for_any_thread_count() {
        let x = blobs(4, 500, 2);
        let p = AutoKParams {
            k_max: 6,
            sample: 700,
            ..AutoKParams::new()
        };
        let run = |t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| select_k(&x, 2, &p).unwrap())
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn kneedle_follows_the_paper() {
        // A sharp elbow at x = 3.
        let x: Vec<f64> = (1..=10).map(f64::from).collect();
        let y = [100.0, 60.0, 20.0, 17.0, 15.0, 13.0, 11.5, 10.0, 9.0, 8.0];
        assert_eq!(kneedle(&x, &y, 1.0), Knee::Found(2));
        // 1/x: kneed finds the knee at x = 3 for x = 1..10 (S = 1).
        let y: Vec<f64> = x.iter().map(|v| 1.0 / v).collect();
        assert_eq!(kneedle(&x, &y, 1.0), Knee::Found(2));
        // A straight line has no knee.
        let y: Vec<f64> = x.iter().map(|v| 10.0 - v).collect();
        assert_eq!(kneedle(&x, &y, 1.0), Knee::Flat);
    }

    #[test]
    fn gap_rule() {
        assert_eq!(gap_choice(&[0.1, 0.5, 0.52, 0.4], &[0.05; 4]), (1, true));
        assert_eq!(gap_choice(&[0.1, 0.5, 0.52, 0.4], &[0.01; 4]), (2, true));
        assert_eq!(gap_choice(&[0.1, 0.2, 0.3], &[0.0; 3]), (2, false));
    }

    #[test]
    fn bad_settings_are_errors() {
        let x = blobs(2, 10, 1);
        let p = |lo, hi, c| AutoKParams {
            k_min: lo,
            k_max: hi,
            criterion: c,
            ..AutoKParams::new()
        };
        assert!(matches!(
            select_k(&x, 2, &p(3, 3, Criterion::Silhouette)),
            Err(AutoKError::Range { .. })
        ));
        assert!(matches!(
            select_k(&x, 2, &p(1, 4, Criterion::Silhouette)),
            Err(AutoKError::NeedsTwo { .. })
        ));
        assert!(matches!(
            select_k(&x, 2, &p(2, 30, Criterion::Elbow)),
            Err(AutoKError::TooFewRows { k: 30, rows: 20 })
        ));
        // k = 1 is allowed for the elbow and the gap.
        let s = select_k(&x, 2, &p(1, 4, Criterion::Gap)).unwrap();
        assert_eq!(s.curve[0].silhouette, None);
        assert!(s.curve[0].gap.is_some());
    }
}
