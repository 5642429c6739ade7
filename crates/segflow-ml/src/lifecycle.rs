//! Customer lifecycle stages from recency and tenure thresholds: new, active, dormant
//! and churned (the 新客戶 / 活躍 / 沉睡 / 流失 stages).
//!
//! The stages are tested in order and the first that holds wins:
//!
//! 1. **new**: tenure (time since the first purchase) `<= new_max_tenure`;
//! 2. **active**: recency (time since the last purchase) `<= active_max_recency`;
//! 3. **dormant**: recency `<= dormant_max_recency`;
//! 4. **churned**: everyone else.
//!
//! The defaults are 90, 90 and 365 days. The thresholds are in the units of the
//! columns (days for `customer_features`).

/// A lifecycle stage, in test order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    New,
    Active,
    Dormant,
    Churned,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::New, Stage::Active, Stage::Dormant, Stage::Churned];

    /// The stage's English name, also its default label.
    pub fn name(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Active => "active",
            Stage::Dormant => "dormant",
            Stage::Churned => "churned",
        }
    }

    /// Position in [`Stage::ALL`] (the segment id).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why lifecycle staging cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LifecycleError {
    #[error("{name} must be a finite number >= 0, got {value}")]
    BadThreshold { name: &'static str, value: f64 },
    #[error("dormant_max_recency ({dormant}) must be greater than active_max_recency ({active}), or no one could be dormant")]
    Order { active: f64, dormant: f64 },
    #[error("the recency and tenure inputs have different lengths ({recency}, {tenure})")]
    Lengths { recency: usize, tenure: usize },
    #[error("{measure} is {value} at row {row}; lifecycle staging needs finite numbers")]
    NotFinite {
        measure: &'static str,
        row: usize,
        value: f64,
    },
}

/// Lifecycle thresholds, checked by [`LifecycleParams::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifecycleParams {
    /// Largest tenure that is still `new`.
    pub new_max_tenure: f64,
    /// Largest recency that is still `active`.
    pub active_max_recency: f64,
    /// Largest recency that is still `dormant`; beyond it, `churned`.
    pub dormant_max_recency: f64,
}

impl Default for LifecycleParams {
    /// 90 days new, 90 days active, 365 days dormant.
    fn default() -> Self {
        LifecycleParams {
            new_max_tenure: 90.0,
            active_max_recency: 90.0,
            dormant_max_recency: 365.0,
        }
    }
}

impl LifecycleParams {
    pub fn check(&self) -> Result<(), LifecycleError> {
        for (name, value) in [
            ("new_max_tenure", self.new_max_tenure),
            ("active_max_recency", self.active_max_recency),
            ("dormant_max_recency", self.dormant_max_recency),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(LifecycleError::BadThreshold { name, value });
            }
        }
        if self.dormant_max_recency <= self.active_max_recency {
            return Err(LifecycleError::Order {
                active: self.active_max_recency,
                dormant: self.dormant_max_recency,
            });
        }
        Ok(())
    }

    /// The stage of one customer.
    pub fn stage(&self, recency: f64, tenure: f64) -> Stage {
        if tenure <= self.new_max_tenure {
            Stage::New
        } else if recency <= self.active_max_recency {
            Stage::Active
        } else if recency <= self.dormant_max_recency {
            Stage::Dormant
        } else {
            Stage::Churned
        }
    }
}

/// The stage of every customer.
pub fn stages(
    recency: &[f64],
    tenure: &[f64],
    params: &LifecycleParams,
) -> Result<Vec<Stage>, LifecycleError> {
    params.check()?;
    if recency.len() != tenure.len() {
        return Err(LifecycleError::Lengths {
            recency: recency.len(),
            tenure: tenure.len(),
        });
    }
    for (measure, vals) in [("recency", recency), ("tenure", tenure)] {
        if let Some((row, &value)) = vals.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(LifecycleError::NotFinite {
                measure,
                row,
                value,
            });
        }
    }
    Ok(recency
        .iter()
        .zip(tenure)
        .map(|(&r, &t)| params.stage(r, t))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_in_order_with_inclusive_thresholds() {
        let p = LifecycleParams::default();
        // (recency, tenure)
        let cases = [
            ((10.0, 10.0), Stage::New),
            ((90.0, 90.0), Stage::New),
            ((5.0, 91.0), Stage::Active),
            ((90.0, 400.0), Stage::Active),
            ((90.5, 400.0), Stage::Dormant),
            ((365.0, 800.0), Stage::Dormant),
            ((366.0, 800.0), Stage::Churned),
        ];
        for ((r, t), want) in cases {
            assert_eq!(p.stage(r, t), want, "recency {r}, tenure {t}");
        }
        let got = stages(&[10.0, 200.0, 500.0], &[10.0, 300.0, 600.0], &p).unwrap();
        assert_eq!(got, [Stage::New, Stage::Dormant, Stage::Churned]);
    }

    #[test]
    fn thresholds_are_configurable_and_checked() {
        let p = LifecycleParams {
            new_max_tenure: 30.0,
            active_max_recency: 30.0,
            dormant_max_recency: 180.0,
        };
        assert_eq!(p.stage(40.0, 60.0), Stage::Dormant);
        assert_eq!(p.stage(200.0, 300.0), Stage::Churned);
        let bad = LifecycleParams {
            dormant_max_recency: 90.0,
            ..LifecycleParams::default()
        };
        assert!(matches!(bad.check(), Err(LifecycleError::Order { .. })));
        let neg = LifecycleParams {
            new_max_tenure: -1.0,
            ..LifecycleParams::default()
        };
        assert!(matches!(
            neg.check(),
            Err(LifecycleError::BadThreshold {
                name: "new_max_tenure",
                ..
            })
        ));
        assert!(matches!(
            stages(&[1.0, f64::NAN], &[1.0, 1.0], &LifecycleParams::default()),
            Err(LifecycleError::NotFinite {
                measure: "recency",
                row: 1,
                ..
            })
        ));
    }
}
