//! The `k` setting shared by the segmenters: a fixed number of segments or `auto`.

use segflow_sdk::prelude::*;

/// Number of segments: a whole number (at least 1), or `auto` to choose it from
/// `k_range` by `k_criterion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum KChoice {
    /// This many segments.
    Fixed(#[schemars(range(min = 1))] usize),
    /// Choose the number of segments from `k_range` by `k_criterion`.
    Auto(Auto),
}

/// The literal `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Auto {
    Auto,
}

impl KChoice {
    /// The fixed `k`, or `None` for `auto`.
    pub fn fixed(self) -> Option<usize> {
        match self {
            KChoice::Fixed(k) => Some(k),
            KChoice::Auto(_) => None,
        }
    }
}

/// Check `k` and `k_range` at plan time: `k` at least 1 and, with `k: auto`,
/// `min_low <= low < high` (`min_low` is the smallest low end the criterion allows).
/// Returns the range.
pub fn check_k(
    k: KChoice,
    k_range: [usize; 2],
    min_low: usize,
    criterion: &str,
) -> Result<[usize; 2]> {
    let [lo, hi] = k_range;
    match k {
        KChoice::Fixed(0) => Err(Error::config("k", "k must be at least 1, or `auto`")),
        KChoice::Fixed(_) => Ok(k_range),
        KChoice::Auto(_) if lo < min_low || hi <= lo => Err(Error::config(
            "k_range",
            format!(
                "k_range must be [low, high] with {min_low} <= low < high for the {criterion} criterion, got [{lo}, {hi}]"
            ),
        )),
        KChoice::Auto(_) => Ok(k_range),
    }
}

/// The default `k_range`.
pub fn default_k_range() -> [usize; 2] {
    DEFAULT_K_RANGE
}

/// The range tried by `k: auto` when `k_range` is not given.
pub const DEFAULT_K_RANGE: [usize; 2] = [2, 12];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_and_auto() {
        let k: KChoice = serde_json::from_value(serde_json::json!(4)).unwrap();
        assert_eq!(k, KChoice::Fixed(4));
        let k: KChoice = serde_json::from_value(serde_json::json!("auto")).unwrap();
        assert_eq!(k.fixed(), None);
        assert!(serde_json::from_value::<KChoice>(serde_json::json!("many")).is_err());
        assert!(serde_json::from_value::<KChoice>(serde_json::json!(-1)).is_err());
    }

    #[test]
    fn range_checks_name_the_field() {
        let auto = KChoice::Auto(Auto::Auto);
        let field = |r: Result<[usize; 2]>| r.unwrap_err().field().map(str::to_string);
        assert_eq!(check_k(auto, [2, 12], 2, "silhouette").unwrap(), [2, 12]);
        assert_eq!(
            field(check_k(auto, [1, 5], 2, "silhouette")).as_deref(),
            Some("k_range")
        );
        assert_eq!(
            field(check_k(auto, [5, 5], 1, "gap")).as_deref(),
            Some("k_range")
        );
        assert_eq!(check_k(auto, [1, 5], 1, "gap").unwrap(), [1, 5]);
        // A fixed k ignores the range.
        assert_eq!(
            check_k(KChoice::Fixed(3), [1, 1], 2, "silhouette").unwrap(),
            [1, 1]
        );
        assert_eq!(
            field(check_k(KChoice::Fixed(0), [2, 12], 2, "silhouette")).as_deref(),
            Some("k")
        );
    }
}
