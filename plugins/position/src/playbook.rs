//! The `playbook` component.

use crate::profiles::{self, Profiles};
use segflow_ml::conditions::Condition;
use segflow_sdk::arrow::array::{Int32Array, StringArray};
use segflow_sdk::prelude::*;
use std::sync::Arc;

/// One row of the rule table: when the condition holds for a segment's profile, the
/// segment gets this action.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Play {
    /// The action, e.g. `retain`, `upsell`, `cross_sell`, `win_back`, `nurture`,
    /// `reactivate`, `deprioritise` (any text a CRM understands).
    pub action: String,
    /// Condition on the profile's columns, in the language of the `rules` segmenter:
    /// e.g. `segment in ['Champions', 'Loyal']` or `recency_days_z >= 0.5 and
    /// monetary_sum_z >= 0.5` (a feature `f`'s z-score is `f_z`, its index `f_index`).
    pub when: String,
    /// Why, in a sentence the CRM team reads.
    pub why: String,
    /// The offer or treatment, e.g. `exclusive offers` (專屬優惠), `trial` (試用).
    #[serde(default)]
    pub offer: Option<String>,
}

/// A recommended action per segment from an ordered rule table over its profile: the
/// first rule whose `when:` holds wins, otherwise `default`. Conditions see every
/// column of the `profiles` table (the segment label, sizes, revenue share, each
/// feature's `_mean`, `_index` and `_z`, ...).
///
/// The built-in table (used when `plays:` is not given) first matches the labels of
/// the `rfm` segmenter's standard grid and of `lifecycle`, then falls back to rules on
/// the z-scores of the `customer_features` columns; a built-in rule whose columns the
/// profile lacks is skipped. In order: Champions → retain; Loyal → upsell; Potential
/// Loyalist, New Customers, Promising → nurture; Need Attention, About to Sleep →
/// reactivate; At Risk, Can't Lose Them → win_back; Hibernating → reactivate; Lost →
/// deprioritise; lifecycle new → nurture, active → upsell, dormant → reactivate,
/// churned → win_back; then recency_days_z ≥ 0.5 and monetary_sum_z ≥ 0.5 → win_back
/// (lapsed big spenders); recency_days_z ≥ 0.5 and monetary_sum_z < 0 → deprioritise;
/// recency_days_z ≥ 0.5 → reactivate; tenure_days_z ≤ −0.5 → nurture;
/// monetary_sum_z ≥ 0.5 and frequency_z ≥ 0.5 → retain; frequency_z ≥ 0.5 → upsell;
/// monetary_mean_z ≥ 0.5 → cross_sell. `docs/position.md` prints the table with its
/// reasons and offers.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// The rule table, replacing the built-in one. Rules are checked against the
    /// profile's columns before any data is read.
    #[serde(default)]
    pub plays: Option<Vec<Play>>,
    /// Action for segments no rule matches.
    #[serde(default = "default_action")]
    pub default: String,
}

fn default_action() -> String {
    "cross_sell".into()
}

fn play(action: &str, when: &str, why: &str, offer: &str) -> Play {
    Play {
        action: action.into(),
        when: when.into(),
        why: why.into(),
        offer: Some(offer.into()),
    }
}

/// The built-in rule table.
pub fn builtin_plays() -> Vec<Play> {
    vec![
        play(
            "retain",
            "segment == 'Champions'",
            "best customers: bought recently, buy often and spend the most",
            "exclusive offers and early access (專屬優惠)",
        ),
        play(
            "upsell",
            "segment == 'Loyal'",
            "buy regularly and spend well: ready for higher-value products",
            "premium range, membership tier",
        ),
        play(
            "nurture",
            "segment in ['Potential Loyalist', 'New Customers', 'Promising']",
            "recent customers with room to grow",
            "onboarding series, trial offers (試用)",
        ),
        play(
            "reactivate",
            "segment in ['Need Attention', 'About to Sleep']",
            "purchases slowing down: remind them before they lapse",
            "limited-time offer, recommendations",
        ),
        play(
            "win_back",
            "segment in ['At Risk', \"Can't Lose Them\"]",
            "valuable customers who have not bought for a while",
            "personal outreach, win-back discount (挽回)",
        ),
        play(
            "reactivate",
            "segment == 'Hibernating'",
            "low activity for a long time",
            "reactivation campaign",
        ),
        play(
            "deprioritise",
            "segment == 'Lost'",
            "lowest recency and value: not worth much spend",
            "low-cost automated mail only",
        ),
        play(
            "nurture",
            "segment == 'new'",
            "lifecycle: new customers",
            "onboarding series, trial offers (試用)",
        ),
        play(
            "upsell",
            "segment == 'active'",
            "lifecycle: active customers",
            "premium range, bundles",
        ),
        play(
            "reactivate",
            "segment == 'dormant'",
            "lifecycle: dormant customers",
            "reactivation campaign",
        ),
        play(
            "win_back",
            "segment == 'churned'",
            "lifecycle: churned customers",
            "win-back discount (挽回)",
        ),
        play(
            "win_back",
            "recency_days_z >= 0.5 and monetary_sum_z >= 0.5",
            "lapsed big spenders: high value, not seen for a while",
            "personal outreach, win-back discount (挽回)",
        ),
        play(
            "deprioritise",
            "recency_days_z >= 0.5 and monetary_sum_z < 0",
            "lapsed and low value",
            "low-cost automated mail only",
        ),
        play(
            "reactivate",
            "recency_days_z >= 0.5",
            "not seen for a while",
            "reactivation campaign",
        ),
        play(
            "nurture",
            "tenure_days_z <= -0.5",
            "new to the brand",
            "onboarding series, trial offers (試用)",
        ),
        play(
            "retain",
            "monetary_sum_z >= 0.5 and frequency_z >= 0.5",
            "frequent, high-spending customers",
            "exclusive offers and early access (專屬優惠)",
        ),
        play(
            "upsell",
            "frequency_z >= 0.5",
            "buy often but not big: grow the basket",
            "bundles, volume discounts",
        ),
        play(
            "cross_sell",
            "monetary_mean_z >= 0.5",
            "big baskets but infrequent: add categories",
            "recommendations from other categories",
        ),
    ]
}

/// A parsed rule and where it came from.
struct Compiled {
    play: Play,
    condition: Condition,
    /// Position in the table (built-in or `plays:`).
    index: usize,
}

impl Playbook {
    /// Parse the rules against the profiles schema. A user rule that does not type-check
    /// is an error naming `plays.N.when`; a built-in rule whose columns are missing is
    /// skipped.
    fn compile(&self, schema: &Schema) -> Result<Vec<Compiled>> {
        if self.default.trim().is_empty() {
            return Err(Error::config("default", "the default action is empty"));
        }
        match &self.plays {
            Some(plays) => {
                if plays.is_empty() {
                    return Err(Error::config(
                        "plays",
                        "list at least one rule, or leave `plays:` out for the built-in table",
                    ));
                }
                plays
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        if p.action.trim().is_empty() {
                            return Err(Error::config(
                                &format!("plays.{i}.action"),
                                "the action is empty",
                            ));
                        }
                        let condition = Condition::new(&p.when, schema).map_err(|e| {
                            Error::config(
                                &format!("plays.{i}.when"),
                                format!("{e} (in `{}`)", p.when),
                            )
                        })?;
                        Ok(Compiled {
                            play: p.clone(),
                            condition,
                            index: i,
                        })
                    })
                    .collect()
            }
            None => Ok(builtin_plays()
                .into_iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    Condition::new(&p.when, schema)
                        .ok()
                        .map(|condition| Compiled {
                            play: p,
                            condition,
                            index: i,
                        })
                })
                .collect()),
        }
    }
}

fn output_schema() -> SchemaRef {
    let mut fields = profiles::head_fields();
    fields.extend([
        Field::new("action", DataType::Utf8, false),
        Field::new("why", DataType::Utf8, false),
        Field::new("offer", DataType::Utf8, true),
        Field::new("rule", DataType::Utf8, false),
        Field::new("rule_index", DataType::Int32, true),
        Field::new("customers", DataType::Int64, false),
        Field::new("revenue_share", DataType::Float64, true),
    ]);
    Arc::new(Schema::new(fields))
}

impl Component for Playbook {
    const NAME: &'static str = "playbook";
    const STAGE: Stage = Stage::Position;

    fn ports() -> Ports {
        Ports::new(Stage::Position, 1, 1)
            .inputs_doc("the `profiles` port of a `profile` step")
            .outputs(&[(
                "playbook",
                "one row per segment: action, why, offer, the rule that matched (`default` when none), customers and revenue share",
            )])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let schema = single(inputs)?;
        profiles::check(schema, &inputs[0].name)?;
        self.compile(schema)?;
        Ok(Outputs::new().port("playbook", output_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let p = Profiles::read(inputs)?;
        let rules = self.compile(&p.batch.schema())?;
        let n = p.batch.num_rows();
        let mut chosen: Vec<Option<usize>> = vec![None; n];
        for (r, rule) in rules.iter().enumerate() {
            let m = rule.condition.matches(&p.batch).map_err(|e| {
                let field = match &self.plays {
                    Some(_) => format!("plays.{}.when", rule.index),
                    None => "plays".into(),
                };
                Error::config(&field, e.to_string())
            })?;
            for (c, hit) in chosen.iter_mut().zip(m) {
                if c.is_none() && hit {
                    *c = Some(r);
                }
            }
        }
        let ids = p.ids()?;
        let labels = p.labels()?;
        let segs: Vec<String> = p
            .text("segmentation")?
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let get = |r: usize| chosen[r].map(|i| &rules[i]);
        let action: Vec<String> = (0..n)
            .map(|r| get(r).map_or(self.default.clone(), |c| c.play.action.clone()))
            .collect();
        let mut counts = serde_json::Map::new();
        for (r, a) in action.iter().enumerate() {
            let seg = counts
                .entry(segs[r].clone())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let serde_json::Value::Object(m) = seg {
                m.insert(labels[r].clone(), a.clone().into());
            }
        }
        ctx.fact("actions", counts);
        ctx.fact(
            "rules",
            rules
                .iter()
                .map(|c| c.play.when.clone())
                .collect::<Vec<_>>(),
        );
        let batch = RecordBatch::try_new(
            output_schema(),
            vec![
                Arc::new(StringArray::from(segs)),
                Arc::new(Int32Array::from(ids)),
                Arc::new(StringArray::from(labels)),
                Arc::new(StringArray::from(action)),
                Arc::new(StringArray::from(
                    (0..n)
                        .map(|r| {
                            get(r).map_or("no rule matched".to_string(), |c| c.play.why.clone())
                        })
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    (0..n)
                        .map(|r| get(r).and_then(|c| c.play.offer.clone()))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    (0..n)
                        .map(|r| get(r).map_or("default".to_string(), |c| c.play.when.clone()))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(Int32Array::from(
                    (0..n)
                        .map(|r| get(r).map(|c| c.index as i32))
                        .collect::<Vec<_>>(),
                )),
                crate::inputs::int64(p.customers()?),
                profiles::float64(p.f64("revenue_share")?),
            ],
        )?;
        Ok(Outputs::new().port("playbook", Table::from_batch(batch)))
    }
}
