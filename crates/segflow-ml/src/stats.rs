//! Small descriptive statistics on `f64` slices, with the conventions of numpy/pandas.
//!
//! - [`quantile`] is numpy's default (`method="linear"`, Hyndman & Fan type 7):
//!   position `h = (n - 1) q`, linear interpolation between the two neighbours.
//! - [`std_pop`] is the population standard deviation (`ddof = 0`), as
//!   `numpy.std`, `scipy.stats.zscore` and scikit-learn's `StandardScaler`.
//! - [`mad`] is the median absolute deviation from the median, unscaled; multiply by
//!   [`MAD_NORMAL_SCALE`] for a consistent estimator of the normal standard deviation
//!   (`scipy.stats.median_abs_deviation(scale="normal")` uses 1/Φ⁻¹(3/4) ≈ 1.482602).
//!
//! Every function takes the values to summarise (no nulls, no NaN: filter them first)
//! and returns `None` for an empty input.

/// The scale factor that makes the MAD a consistent estimator of σ for normal data, as
/// commonly rounded (`1.4826`).
pub const MAD_NORMAL_SCALE: f64 = 1.4826;

/// Arithmetic mean.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// Population standard deviation (`ddof = 0`), computed around the mean in two passes.
pub fn std_pop(values: &[f64]) -> Option<f64> {
    let m = mean(values)?;
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    Some((ss / values.len() as f64).sqrt())
}

/// Sort a copy of `values` ascending (total order; callers filter NaN out first).
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Quantile `q` in `[0, 1]` of already sorted values, numpy's default linear method.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let h = (n - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = h - lo as f64;
    Some(sorted[lo] + frac * (sorted[hi] - sorted[lo]))
}

/// Quantile `q` of unsorted values (numpy's default linear method).
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    quantile_sorted(&sorted(values), q)
}

/// Median: the middle value, or the mean of the two middle values (numpy, pandas;
/// the same arithmetic as [`quantile`] at 0.5). Linear time: selects rather than sorts.
pub fn median(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mut v = values.to_vec();
    let mid = n / 2;
    let (left, hi, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let hi = *hi;
    if n % 2 == 1 {
        return Some(hi);
    }
    let lo = left.iter().copied().max_by(f64::total_cmp).unwrap_or(hi);
    Some(lo + 0.5 * (hi - lo))
}

/// Median absolute deviation from the median, unscaled.
pub fn mad(values: &[f64]) -> Option<f64> {
    let m = median(values)?;
    let dev: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    median(&dev)
}

/// The most frequent value; ties go to the smallest value (as `pandas.Series.mode()[0]`).
pub fn mode(values: &[f64]) -> Option<f64> {
    let s = sorted(values);
    let mut best: Option<(f64, usize)> = None;
    let mut i = 0;
    while i < s.len() {
        let mut j = i + 1;
        while j < s.len() && s[j] == s[i] {
            j += 1;
        }
        if best.is_none_or(|(_, c)| j - i > c) {
            best = Some((s[i], j - i));
        }
        i = j;
    }
    best.map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_selects_as_the_sorted_quantile() {
        let mut x: Vec<f64> = (0..101)
            .map(|i| ((i * 37) % 101) as f64 * 0.37 - 3.0)
            .collect();
        for n in [1usize, 2, 3, 4, 10, 11, 100, 101] {
            let v = &x[..n];
            assert_eq!(median(v), quantile_sorted(&sorted(v), 0.5), "n = {n}");
        }
        x.clear();
        assert_eq!(median(&x), None);
    }

    #[test]
    fn numpy_linear_quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // numpy.quantile([1,2,3,4], [0.25, 0.5, 0.75]) == [1.75, 2.5, 3.25]
        assert_eq!(quantile(&v, 0.25), Some(1.75));
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&v, 0.75), Some(3.25));
        assert_eq!(quantile(&[7.0], 0.9), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&v, 1.5), None);
    }

    #[test]
    fn moments_and_mad() {
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&v), Some(5.0));
        assert_eq!(std_pop(&v), Some(2.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        // deviations from 4.5: 2.5 .5 .5 .5 .5 .5 2.5 4.5 -> median 0.5
        assert_eq!(mad(&v), Some(0.5));
        assert_eq!(mode(&v), Some(4.0));
        assert_eq!(mode(&[3.0, 1.0, 3.0, 1.0]), Some(1.0));
        assert_eq!(mode(&[]), None);
    }
}
