//! Principal component analysis of a small dense matrix (a few points, a few dozen
//! features), as scikit-learn's `PCA`.
//!
//! The data are `k` points × `d` features, row-major. They are centred on the column
//! means (weighted means when weights are given), and the principal axes are the right
//! singular vectors of the centred matrix, found by one-sided Jacobi rotations
//! (Hestenes' method: rotate pairs of columns until all are orthogonal). Working on the
//! data rather than on the covariance keeps full precision in the small variances.
//!
//! - **Explained variance** of a component: the variance of the points along it, with
//!   `ddof = 1` (divided by `k − 1`) as scikit-learn's `explained_variance_`. With
//!   weights `w` it is the reliability-weighted variance `Σw·(x − μ)² · V₁ / (V₁² − V₂)`
//!   (`V₁ = Σw`, `V₂ = Σw²`), which is the unweighted `ddof = 1` variance when all
//!   weights are equal and does not change when every weight is scaled.
//! - **Explained variance ratio**: that variance over the total variance (the trace of
//!   the covariance, i.e. the sum over all components, not only the kept ones), as
//!   `explained_variance_ratio_`; 0 when the total is 0.
//! - **Coordinates**: the centred points projected on the kept components
//!   (`PCA.transform`).
//! - **Sign convention** (deterministic, unlike an SVD's arbitrary signs): every
//!   component's entry of largest absolute value is positive (the first such entry on
//!   an exact tie). scikit-learn's `svd_flip` uses another rule, so signs may differ
//!   from it component by component; values are equal up to that sign.
//! - **Degenerate data**: when all points are identical, every explained variance,
//!   ratio and coordinate is exactly 0 (no NaN) and the components are unit axes. A
//!   component beyond the rank of the data (e.g. the second of two points) has
//!   variance 0 (up to rounding) and an arbitrary direction orthogonal to the others.
//!
//! Tested against scikit-learn in `tests/pca_sklearn.rs` (fixtures from
//! `tests/fixtures/make_pca_fixture.py`).

/// Errors of [`fit`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PcaError {
    /// No features (`d == 0`).
    #[error("PCA needs at least one feature (d = 0)")]
    NoFeatures,
    /// The data length is not a multiple of `d`.
    #[error("data of length {len} is not a whole number of rows of {d} features")]
    Shape { len: usize, d: usize },
    /// Fewer than two points (or fewer than two with positive weight).
    #[error("PCA needs at least 2 points (with positive weight), got {points}")]
    TooFewPoints { points: usize },
    /// A NaN or infinite value.
    #[error("value {value} at row {row}, column {column} is not finite; PCA needs finite values")]
    NotFinite {
        row: usize,
        column: usize,
        value: f64,
    },
    /// `n_components` is 0 or more than `min(points, features)`.
    #[error(
        "n_components must be between 1 and min(points, features) = {max}, got {n_components}"
    )]
    BadComponents { n_components: usize, max: usize },
    /// The weights do not match the points, or one is negative or not finite.
    #[error("weights: {0}")]
    BadWeights(String),
}

/// Parameters of [`fit`]: the number of components and optional point weights.
#[derive(Debug, Clone, PartialEq)]
pub struct PcaParams {
    n_components: usize,
    weights: Option<Vec<f64>>,
}

impl PcaParams {
    /// Keep `n_components` components (between 1 and `min(k, d)`, checked by
    /// [`PcaParams::check`] and [`fit`]).
    pub fn new(n_components: usize) -> Self {
        PcaParams {
            n_components,
            weights: None,
        }
    }

    /// Weight the points (one finite, non-negative weight per point, at least two
    /// positive): weighted means and the reliability-weighted covariance.
    pub fn weights(mut self, weights: Vec<f64>) -> Self {
        self.weights = Some(weights);
        self
    }

    /// The number of components to keep.
    pub fn n_components(&self) -> usize {
        self.n_components
    }

    /// Check the parameters for `k` points of `d` features.
    pub fn check(&self, k: usize, d: usize) -> Result<(), PcaError> {
        if d == 0 {
            return Err(PcaError::NoFeatures);
        }
        if k < 2 {
            return Err(PcaError::TooFewPoints { points: k });
        }
        let max = k.min(d);
        if self.n_components == 0 || self.n_components > max {
            return Err(PcaError::BadComponents {
                n_components: self.n_components,
                max,
            });
        }
        if let Some(w) = &self.weights {
            if w.len() != k {
                return Err(PcaError::BadWeights(format!(
                    "{} weights for {k} points",
                    w.len()
                )));
            }
            if let Some((i, v)) = w
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite() || **v < 0.0)
            {
                return Err(PcaError::BadWeights(format!(
                    "weight {v} of point {i} is not a finite non-negative number"
                )));
            }
            let positive = w.iter().filter(|v| **v > 0.0).count();
            if positive < 2 {
                return Err(PcaError::TooFewPoints { points: positive });
            }
        }
        Ok(())
    }
}

/// A fitted PCA.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Number of features `d`.
    pub d: usize,
    /// Number of kept components.
    pub n_components: usize,
    /// The (weighted) column means the data were centred on, length `d`.
    pub mean: Vec<f64>,
    /// The loadings: `n_components` unit vectors of length `d`, row-major
    /// (`components[c * d + j]` is feature `j`'s loading on component `c`), as
    /// scikit-learn's `components_`, in decreasing order of explained variance.
    pub components: Vec<f64>,
    /// Variance along each kept component (`ddof = 1`).
    pub explained_variance: Vec<f64>,
    /// Each kept component's share of the total variance (0 when the total is 0).
    pub explained_variance_ratio: Vec<f64>,
    /// The total variance (trace of the covariance).
    pub total_variance: f64,
    /// The points' coordinates on the kept components: `k × n_components`, row-major.
    pub coordinates: Vec<f64>,
}

impl Pca {
    /// Loading of feature `j` on component `c`.
    pub fn loading(&self, c: usize, j: usize) -> f64 {
        self.components[c * self.d + j]
    }

    /// Component `c` (length `d`).
    pub fn component(&self, c: usize) -> &[f64] {
        &self.components[c * self.d..(c + 1) * self.d]
    }

    /// Project new points (row-major, `d` features each) on the kept components.
    pub fn transform(&self, data: &[f64]) -> Vec<f64> {
        let nc = self.n_components;
        let mut out = Vec::with_capacity(data.len() / self.d.max(1) * nc);
        for row in data.chunks_exact(self.d) {
            for c in 0..nc {
                out.push(
                    row.iter()
                        .zip(&self.mean)
                        .zip(self.component(c))
                        .map(|((x, m), v)| (x - m) * v)
                        .sum(),
                );
            }
        }
        out
    }
}

/// Most Jacobi sweeps; the method converges quadratically, in well under 20 sweeps for
/// the sizes it is meant for.
const MAX_SWEEPS: usize = 100;

/// Fit a PCA on `data` (`k` points × `d` features, row-major).
pub fn fit(data: &[f64], d: usize, params: &PcaParams) -> Result<Pca, PcaError> {
    if d == 0 {
        return Err(PcaError::NoFeatures);
    }
    if !data.len().is_multiple_of(d) {
        return Err(PcaError::Shape { len: data.len(), d });
    }
    let k = data.len() / d;
    params.check(k, d)?;
    if let Some((i, &value)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(PcaError::NotFinite {
            row: i / d,
            column: i % d,
            value,
        });
    }
    let weights: Vec<f64> = params.weights.clone().unwrap_or_else(|| vec![1.0; k]);
    let v1: f64 = weights.iter().sum();
    let v2: f64 = weights.iter().map(|w| w * w).sum();
    // Covariance = Σ w·(x − μ)(x − μ)ᵀ · scale; equal weights give 1 / (k − 1).
    let scale = match &params.weights {
        None => 1.0 / (k as f64 - 1.0),
        Some(_) => v1 / (v1 * v1 - v2),
    };

    // Means shifted by the first row: identical points give exactly that row, so their
    // centred values are exactly 0.
    let first = &data[..d];
    let mut mean = vec![0.0; d];
    for (row, w) in data.chunks_exact(d).zip(&weights) {
        for ((m, x), f) in mean.iter_mut().zip(row).zip(first) {
            *m += w * (x - f);
        }
    }
    for (m, f) in mean.iter_mut().zip(first) {
        *m = f + *m / v1;
    }

    // Column-major centred data scaled so that YᵀY is the covariance.
    let mut y = vec![0.0; k * d];
    for (i, (row, w)) in data.chunks_exact(d).zip(&weights).enumerate() {
        let s = (w * scale).sqrt();
        for j in 0..d {
            y[j * k + i] = (row[j] - mean[j]) * s;
        }
    }
    let mut v = vec![0.0; d * d]; // column-major: column j is v[j * d..(j + 1) * d]
    for j in 0..d {
        v[j * d + j] = 1.0;
    }
    jacobi(&mut y, k, &mut v, d);

    let variance: Vec<f64> = (0..d)
        .map(|j| y[j * k..(j + 1) * k].iter().map(|a| a * a).sum())
        .collect();
    let total_variance: f64 = variance.iter().sum();
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| variance[b].total_cmp(&variance[a]).then(a.cmp(&b)));

    let nc = params.n_components;
    let mut components = Vec::with_capacity(nc * d);
    let mut explained_variance = Vec::with_capacity(nc);
    for &j in &order[..nc] {
        let col = &v[j * d..(j + 1) * d];
        let mut big = 0;
        for (i, a) in col.iter().enumerate() {
            if a.abs() > col[big].abs() {
                big = i;
            }
        }
        let sign = if col[big] < 0.0 { -1.0 } else { 1.0 };
        components.extend(col.iter().map(|a| a * sign));
        explained_variance.push(variance[j]);
    }
    let explained_variance_ratio = explained_variance
        .iter()
        .map(|e| {
            if total_variance > 0.0 {
                e / total_variance
            } else {
                0.0
            }
        })
        .collect();
    let mut pca = Pca {
        d,
        n_components: nc,
        mean,
        components,
        explained_variance,
        explained_variance_ratio,
        total_variance,
        coordinates: Vec::new(),
    };
    pca.coordinates = pca.transform(data);
    Ok(pca)
}

/// One-sided Jacobi: rotate pairs of the `d` columns (length `k`, column-major) of `y`
/// until they are mutually orthogonal, applying the same rotations to the columns of
/// `v` (`d × d`, column-major).
fn jacobi(y: &mut [f64], k: usize, v: &mut [f64], d: usize) {
    let tol = f64::EPSILON * k as f64;
    for _ in 0..MAX_SWEEPS {
        let mut rotated = false;
        for p in 0..d {
            for q in p + 1..d {
                let (mut alpha, mut beta, mut gamma) = (0.0, 0.0, 0.0);
                for i in 0..k {
                    let (a, b) = (y[p * k + i], y[q * k + i]);
                    alpha += a * a;
                    beta += b * b;
                    gamma += a * b;
                }
                if gamma == 0.0 || gamma.abs() <= tol * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                rotate(y, k, p, q, c, s);
                rotate(v, d, p, q, c, s);
            }
        }
        if !rotated {
            break;
        }
    }
}

/// Columns `p`, `q` (length `n`, column-major) ← `(c·p − s·q, s·p + c·q)`.
fn rotate(m: &mut [f64], n: usize, p: usize, q: usize, c: f64, s: f64) {
    for i in 0..n {
        let (a, b) = (m[p * n + i], m[q * n + i]);
        m[p * n + i] = c * a - s * b;
        m[q * n + i] = s * a + c * b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn a_line_has_one_component_with_all_the_variance() {
        // Points on the line (t, 2t): PC1 ∝ (1, 2), variance of t·√5 with ddof 1.
        let data = [0.0, 0.0, 1.0, 2.0, 2.0, 4.0, 3.0, 6.0];
        let p = fit(&data, 2, &PcaParams::new(2)).unwrap();
        let s5 = 5f64.sqrt();
        assert!(close(p.loading(0, 0), 1.0 / s5) && close(p.loading(0, 1), 2.0 / s5));
        // var(0,1,2,3) with ddof 1 is 5/3; along the line ×5.
        assert!(close(p.explained_variance[0], 25.0 / 3.0));
        assert!(p.explained_variance[1].abs() < 1e-12);
        assert!(close(p.explained_variance_ratio[0], 1.0));
        assert!(close(p.coordinates[0], -1.5 * s5));
        assert!(close(p.coordinates[6], 1.5 * s5));
    }

    #[test]
    fn identical_points_give_zeros_not_nan() {
        let data = [0.1, 0.7, 3.3, 0.1, 0.7, 3.3, 0.1, 0.7, 3.3];
        let p = fit(&data, 3, &PcaParams::new(2)).unwrap();
        assert_eq!(p.explained_variance, vec![0.0, 0.0]);
        assert_eq!(p.explained_variance_ratio, vec![0.0, 0.0]);
        assert!(p.coordinates.iter().all(|c| *c == 0.0));
        assert_eq!(p.components, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(p.total_variance, 0.0);
    }

    #[test]
    fn the_largest_loading_is_positive() {
        let data = [
            5.0, -1.0, 0.0, 3.0, -2.0, 1.0, 1.0, -7.0, 2.0, 0.5, 4.0, -3.0,
        ];
        let p = fit(&data, 3, &PcaParams::new(3)).unwrap();
        for c in 0..3 {
            let comp = p.component(c);
            let big = comp
                .iter()
                .copied()
                .fold(0.0f64, |m, a| if a.abs() > m.abs() { a } else { m });
            assert!(big > 0.0, "{comp:?}");
            let norm: f64 = comp.iter().map(|a| a * a).sum();
            assert!(close(norm, 1.0));
        }
        let ratio: f64 = p.explained_variance_ratio.iter().sum();
        assert!(close(ratio, 1.0));
    }

    #[test]
    fn equal_weights_are_unweighted_and_scale_free() {
        let data = [
            5.0, -1.0, 0.0, 3.0, -2.0, 1.0, 1.0, -7.0, 2.0, 0.5, 4.0, -3.0,
        ];
        let a = fit(&data, 3, &PcaParams::new(2)).unwrap();
        let b = fit(&data, 3, &PcaParams::new(2).weights(vec![3.0; 4])).unwrap();
        for (x, y) in a.explained_variance.iter().zip(&b.explained_variance) {
            assert!(close(*x, *y));
        }
        for (x, y) in a.coordinates.iter().zip(&b.coordinates) {
            assert!(close(*x, *y));
        }
    }

    #[test]
    fn integer_weights_are_repeated_points() {
        // Weight 2 on the first point = the point listed twice (frequency weights give
        // the same means and directions; variances differ by the ddof convention).
        let data = [0.0, 0.0, 4.0, 1.0, 1.0, 3.0];
        let w = fit(&data, 2, &PcaParams::new(2).weights(vec![2.0, 1.0, 1.0])).unwrap();
        let rep = [0.0, 0.0, 0.0, 0.0, 4.0, 1.0, 1.0, 3.0];
        let r = fit(&rep, 2, &PcaParams::new(2)).unwrap();
        for j in 0..2 {
            assert!(close(w.mean[j], r.mean[j]));
        }
        for (x, y) in w.components.iter().zip(&r.components) {
            assert!(close(*x, *y));
        }
        for (x, y) in w
            .explained_variance_ratio
            .iter()
            .zip(&r.explained_variance_ratio)
        {
            assert!(close(*x, *y));
        }
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(
            fit(&[1.0, 2.0], 2, &PcaParams::new(1)),
            Err(PcaError::TooFewPoints { points: 1 })
        );
        assert!(matches!(
            fit(&[1.0, 2.0, f64::NAN, 4.0], 2, &PcaParams::new(1)),
            Err(PcaError::NotFinite { row: 1, column: 0, value }) if value.is_nan()
        ));
        assert_eq!(
            fit(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, &PcaParams::new(3)),
            Err(PcaError::BadComponents {
                n_components: 3,
                max: 2
            })
        );
        assert_eq!(
            fit(&[1.0, 2.0, 3.0], 2, &PcaParams::new(1)),
            Err(PcaError::Shape { len: 3, d: 2 })
        );
        assert_eq!(
            fit(&[1.0, 2.0, 3.0, 4.0], 2, &PcaParams::new(0)),
            Err(PcaError::BadComponents {
                n_components: 0,
                max: 2
            })
        );
        assert!(matches!(
            fit(
                &[1.0, 2.0, 3.0, 4.0],
                2,
                &PcaParams::new(1).weights(vec![1.0, -1.0])
            ),
            Err(PcaError::BadWeights(_))
        ));
        assert_eq!(
            fit(
                &[1.0, 2.0, 3.0, 4.0],
                2,
                &PcaParams::new(1).weights(vec![1.0, 0.0])
            ),
            Err(PcaError::TooFewPoints { points: 1 })
        );
    }
}
