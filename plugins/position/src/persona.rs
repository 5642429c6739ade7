//! The `persona` component.

use crate::profiles::{self, Profiles};
use segflow_sdk::arrow::array::{Int32Array, StringArray};
use segflow_sdk::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Words for a feature that is high or low in a segment.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Words {
    /// Descriptor when the segment's z-score is at least `threshold` (e.g. `frequent`).
    pub high: String,
    /// Descriptor when it is at most `-threshold` (e.g. `infrequent`).
    pub low: String,
}

/// Which persona section each feature or category belongs to.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sections {
    /// 基本屬性: who they are (e.g. `region`, `age`).
    #[serde(default)]
    pub demographics: Vec<String>,
    /// 消費特征: what and how much they buy (spend, basket, categories).
    #[serde(default)]
    pub spending: Vec<String>,
    /// 行為特征: how they buy (recency, frequency, tenure, channels).
    #[serde(default)]
    pub behaviour: Vec<String>,
}

/// A readable name and description for every segment, generated from its profile.
///
/// Rules: a feature whose z-score against the base (`<f>_z` in the profile) is at
/// least `threshold` gets its `high` word, at most `-threshold` its `low` word. The
/// name is the `max_descriptors` strongest descriptors (largest |z| first), joined
/// with commas and capitalised, e.g. `Recent, frequent, high spend`; a segment with
/// none is `Typical customers`. A name two segments would share gets the segment's
/// label appended in parentheses. `names:` overrides the name of any segment.
///
/// The persona's sections follow the usual customer-persona layout (客戶畫像):
/// `demographics` (基本屬性), `spending` (消費特征), `behaviour` (行為特征), and
/// `value` (價值: share of customers and revenue, CLV and churn when profiled).
/// Features and categories go to a section by name unless `sections:` places them:
/// names with `monetary`, `amount`, `spend`, `basket`, `revenue`, `clv` or
/// `category` are spending; `channel`, `recency`, `frequency`, `tenure`, `gap` and
/// `transactions` behaviour; other features behaviour, other categories demographics.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Persona {
    /// Least |z-score| that makes a feature a descriptor.
    #[serde(default = "default_threshold")]
    #[schemars(range(min = 0.0))]
    pub threshold: f64,
    /// Most descriptors in a name.
    #[serde(default = "default_max")]
    #[schemars(range(min = 1, max = 6))]
    pub max_descriptors: usize,
    /// Words per feature, added to or replacing the built-in ones (for the
    /// `customer_features` columns: recency_days recent/lapsed, frequency
    /// frequent/infrequent, n_transactions many orders/few orders, monetary_sum high
    /// spend/low spend, monetary_mean big baskets/small baskets, tenure_days
    /// long-standing/new, avg_gap_days slow to return/quick to return). Other features
    /// read `high <feature>` / `low <feature>`.
    #[serde(default)]
    pub words: BTreeMap<String, Words>,
    /// Features to leave out of descriptors (they still appear in the sections).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Names that replace the generated ones, by segment label (e.g.
    /// `{Champions: VIP 核心客戶}`), for every segmentation with that label.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    /// Least lift for a category value to be called out as distinctive in a section
    /// (otherwise the most common value is shown).
    #[serde(default = "default_lift")]
    #[schemars(range(min = 1.0))]
    pub min_lift: f64,
    /// Place features or categories in persona sections, overriding the name rules.
    #[serde(default)]
    pub sections: Sections,
}

fn default_threshold() -> f64 {
    0.5
}
fn default_max() -> usize {
    3
}
fn default_lift() -> f64 {
    1.2
}

/// Built-in words for the `customer_features` columns.
fn builtin_words(feature: &str) -> Option<(&'static str, &'static str)> {
    Some(match feature {
        "recency_days" => ("lapsed", "recent"),
        "frequency" => ("frequent", "infrequent"),
        "n_transactions" => ("many orders", "few orders"),
        "monetary_sum" => ("high spend", "low spend"),
        "monetary_mean" => ("big baskets", "small baskets"),
        "tenure_days" => ("long-standing", "new"),
        "avg_gap_days" => ("slow to return", "quick to return"),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Demographics,
    Spending,
    Behaviour,
}

impl Persona {
    fn check(&self, features: &[String]) -> Result<()> {
        if !self.threshold.is_finite() || self.threshold < 0.0 {
            return Err(Error::config(
                "threshold",
                "give a z-score of 0 or more, e.g. 0.5",
            ));
        }
        if self.max_descriptors == 0 {
            return Err(Error::config("max_descriptors", "give at least 1"));
        }
        for (f, w) in &self.words {
            if !features.contains(f) {
                return Err(Error::config(
                    &format!("words.{f}"),
                    format!(
                        "`{f}` is not a profiled feature; the profile has {}",
                        features.join(", ")
                    ),
                ));
            }
            if w.high.trim().is_empty() || w.low.trim().is_empty() {
                return Err(Error::config(
                    &format!("words.{f}"),
                    "the words must not be empty",
                ));
            }
        }
        for (i, f) in self.ignore.iter().enumerate() {
            if !features.contains(f) {
                return Err(Error::config(
                    &format!("ignore.{i}"),
                    format!("`{f}` is not a profiled feature"),
                ));
            }
        }
        Ok(())
    }

    fn words(&self, feature: &str) -> (String, String) {
        if let Some(w) = self.words.get(feature) {
            return (w.high.clone(), w.low.clone());
        }
        match builtin_words(feature) {
            Some((h, l)) => (h.to_string(), l.to_string()),
            None => (format!("high {feature}"), format!("low {feature}")),
        }
    }

    fn section(&self, name: &str, is_category: bool) -> Section {
        let s = &self.sections;
        if s.demographics.iter().any(|n| n == name) {
            return Section::Demographics;
        }
        if s.spending.iter().any(|n| n == name) {
            return Section::Spending;
        }
        if s.behaviour.iter().any(|n| n == name) {
            return Section::Behaviour;
        }
        let lower = name.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
        if has(&[
            "monetary", "amount", "spend", "basket", "revenue", "clv", "category",
        ]) {
            Section::Spending
        } else if has(&[
            "channel",
            "recency",
            "frequency",
            "tenure",
            "gap",
            "transactions",
        ]) {
            Section::Behaviour
        } else if is_category {
            Section::Demographics
        } else {
            Section::Behaviour
        }
    }
}

/// The categories of a profiles schema: every `c` with a `c_top` and `c_distinctive_lift`.
fn categories_of(schema: &Schema) -> Vec<String> {
    schema
        .fields()
        .iter()
        .filter_map(|f| f.name().strip_suffix("_top").map(str::to_string))
        .filter(|c| {
            profiles::CATEGORY_STATS
                .iter()
                .all(|s| schema.field_with_name(&format!("{c}_{s}")).is_ok())
        })
        .collect()
}

fn output_schema() -> SchemaRef {
    let mut fields = profiles::head_fields();
    for name in [
        "name",
        "description",
        "descriptors",
        "demographics",
        "spending",
        "behaviour",
        "value",
    ] {
        fields.push(Field::new(name, DataType::Utf8, false));
    }
    Arc::new(Schema::new(fields))
}

/// A number for a sentence: thousands separators for large values, 3 significant
/// digits below 100, at most one decimal in between.
pub fn readable(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let a = x.abs();
    if a >= 1000.0 {
        let s = format!("{:.0}", a);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if x < 0.0 {
            format!("-{out}")
        } else {
            out
        }
    } else if a >= 100.0 {
        format!("{:.0}", x)
    } else if a >= 10.0 {
        let s = format!("{:.1}", x);
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    } else if a == 0.0 {
        "0".into()
    } else {
        let digits = (2 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{:.*}", digits, x);
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

fn percent(x: f64) -> String {
    format!("{}%", readable(100.0 * x))
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

impl Component for Persona {
    const NAME: &'static str = "persona";
    const STAGE: Stage = Stage::Position;

    fn ports() -> Ports {
        Ports::new(Stage::Position, 1, 1)
            .inputs_doc("the `profiles` port of a `profile` step")
            .outputs(&[(
                "personas",
                "one row per segment: name, description, descriptors, and the demographics (基本屬性), spending (消費特征), behaviour (行為特征) and value (價值) sections",
            )])
    }

    fn plan(&self, inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        let inp = single(inputs)?;
        let features = profiles::check(inp, &inputs[0].name)?;
        self.check(&features)?;
        Ok(Outputs::new().port("personas", output_schema()))
    }

    fn run(&self, inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let p = Profiles::read(inputs)?;
        self.check(&p.features)?;
        let categories = categories_of(&p.batch.schema());
        let ids = p.ids()?;
        let labels = p.labels()?;
        let customers = p.customers()?;
        let cshare = p.f64("customer_share")?;
        let rshare = p.f64("revenue_share")?;
        let opt = |c: &str| -> Result<Option<Vec<Option<f64>>>> {
            if p.batch.schema().field_with_name(c).is_ok() {
                p.f64(c).map(Some)
            } else {
                Ok(None)
            }
        };
        let clv_mean = opt("clv_mean")?;
        let clv_share = opt("clv_share")?;
        let churn = opt("churn_rate")?;
        struct Feat {
            name: String,
            mean: Vec<Option<f64>>,
            index: Vec<Option<f64>>,
            z: Vec<Option<f64>>,
            words: (String, String),
            section: Section,
            describe: bool,
        }
        let feats: Vec<Feat> = p
            .features
            .iter()
            .map(|f| {
                Ok(Feat {
                    name: f.clone(),
                    mean: p.f64(&format!("{f}_mean"))?,
                    index: p.f64(&format!("{f}_index"))?,
                    z: p.f64(&format!("{f}_z"))?,
                    words: self.words(f),
                    section: self.section(f, false),
                    describe: !self.ignore.contains(f),
                })
            })
            .collect::<Result<_>>()?;
        struct Cat {
            name: String,
            top: Vec<Option<String>>,
            top_share: Vec<Option<f64>>,
            dist: Vec<Option<String>>,
            dist_share: Vec<Option<f64>>,
            dist_lift: Vec<Option<f64>>,
            section: Section,
        }
        let cats: Vec<Cat> = categories
            .iter()
            .map(|c| {
                Ok(Cat {
                    name: c.clone(),
                    top: p.text(&format!("{c}_top"))?,
                    top_share: p.f64(&format!("{c}_top_share"))?,
                    dist: p.text(&format!("{c}_distinctive"))?,
                    dist_share: p.f64(&format!("{c}_distinctive_share"))?,
                    dist_lift: p.f64(&format!("{c}_distinctive_lift"))?,
                    section: self.section(c, true),
                })
            })
            .collect::<Result<_>>()?;

        let n = ids.len();
        let mut out: [Vec<String>; 7] = Default::default();
        let mut facts = serde_json::Map::new();
        for (seg_name, rows) in &p.groups {
            let mut names: Vec<String> = Vec::new();
            let mut descriptor_lists: Vec<Vec<String>> = Vec::new();
            for &r in rows {
                // strongest first; ties keep feature order
                let mut hits: Vec<(f64, String)> = feats
                    .iter()
                    .filter(|f| f.describe)
                    .filter_map(|f| {
                        let z = f.z[r]?;
                        if z >= self.threshold && z > 0.0 {
                            Some((z.abs(), f.words.0.clone()))
                        } else if z <= -self.threshold && z < 0.0 {
                            Some((z.abs(), f.words.1.clone()))
                        } else {
                            None
                        }
                    })
                    .collect();
                hits.sort_by(|a, b| b.0.total_cmp(&a.0));
                let words: Vec<String> = hits.into_iter().map(|(_, w)| w).collect();
                let name = if words.is_empty() {
                    "Typical customers".to_string()
                } else {
                    capitalise(
                        &words
                            .iter()
                            .take(self.max_descriptors)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
                };
                names.push(name);
                descriptor_lists.push(words);
            }
            // overrides, then disambiguate repeated names with the label
            for (i, &r) in rows.iter().enumerate() {
                if let Some(o) = self.names.get(&labels[r]) {
                    names[i] = o.clone();
                }
            }
            let counts = names
                .iter()
                .fold(BTreeMap::<&str, usize>::new(), |mut m, n| {
                    *m.entry(n.as_str()).or_default() += 1;
                    m
                });
            let final_names: Vec<String> = rows
                .iter()
                .zip(&names)
                .map(|(&r, nm)| {
                    if counts[nm.as_str()] > 1 && !self.names.contains_key(&labels[r]) {
                        format!("{nm} ({})", labels[r])
                    } else {
                        nm.clone()
                    }
                })
                .collect();
            let mut seg_facts = serde_json::Map::new();
            for (i, &r) in rows.iter().enumerate() {
                let mut sections: [Vec<String>; 3] = Default::default();
                let slot = |s: Section| match s {
                    Section::Demographics => 0,
                    Section::Spending => 1,
                    Section::Behaviour => 2,
                };
                let mut sentences = Vec::new();
                for f in &feats {
                    let (Some(mean), index, z) = (f.mean[r], f.index[r], f.z[r]) else {
                        continue;
                    };
                    let mut frag = format!("{} {}", f.name, readable(mean));
                    if let Some(ix) = index {
                        frag.push_str(&format!(" (index {})", readable(ix)));
                    }
                    let word = z.and_then(|z| {
                        if z >= self.threshold && z > 0.0 {
                            Some(&f.words.0)
                        } else if z <= -self.threshold && z < 0.0 {
                            Some(&f.words.1)
                        } else {
                            None
                        }
                    });
                    if let (Some(w), true) = (word, f.describe) {
                        frag.push_str(&format!(": {w}"));
                        if let Some(ix) = index {
                            let versus = if ix >= 100.0 {
                                format!("{}× the base average", readable(ix / 100.0))
                            } else {
                                format!("{}% of the base average", readable(ix))
                            };
                            sentences.push(format!(
                                "{} averages {}, {versus} ({w}).",
                                f.name,
                                readable(mean)
                            ));
                        }
                    }
                    sections[slot(f.section)].push(frag);
                }
                for c in &cats {
                    let frag = match (&c.dist[r], c.dist_lift[r], c.dist_share[r]) {
                        (Some(v), Some(l), Some(s)) if l >= self.min_lift => format!(
                            "{}: {} over-represented ({} of the segment, lift {})",
                            c.name,
                            v,
                            percent(s),
                            readable(l)
                        ),
                        _ => match (&c.top[r], c.top_share[r]) {
                            (Some(v), Some(s)) => {
                                format!("{}: mostly {} ({})", c.name, v, percent(s))
                            }
                            _ => continue,
                        },
                    };
                    sections[slot(c.section)].push(frag);
                }
                let mut value = format!(
                    "{} customer{} ({})",
                    readable(customers[r] as f64),
                    if customers[r] == 1 { "" } else { "s" },
                    percent(cshare[r].unwrap_or(0.0))
                );
                if let Some(s) = rshare[r] {
                    value.push_str(&format!(", {} of revenue", percent(s)));
                }
                if let Some(m) = clv_mean.as_ref().and_then(|v| v[r]) {
                    value.push_str(&format!(", mean CLV {}", readable(m)));
                }
                if let Some(s) = clv_share.as_ref().and_then(|v| v[r]) {
                    value.push_str(&format!(" ({} of total CLV)", percent(s)));
                }
                if let Some(c) = churn.as_ref().and_then(|v| v[r]) {
                    value.push_str(&format!(", churn rate {}", percent(c)));
                }
                let mut description = format!("{value}.");
                for s in sentences.iter().take(self.max_descriptors.max(3)) {
                    description.push(' ');
                    description.push_str(s);
                }
                out[0].push(final_names[i].clone());
                out[1].push(description);
                out[2].push(descriptor_lists[i].join(", "));
                for (j, s) in sections.iter().enumerate() {
                    out[3 + j].push(s.join("; "));
                }
                out[6].push(value);
                seg_facts.insert(labels[r].clone(), final_names[i].clone().into());
            }
            facts.insert(seg_name.clone(), seg_facts.into());
        }
        ctx.fact("names", facts);
        let segs = p.text("segmentation")?;
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(
                segs.into_iter()
                    .map(Option::unwrap_or_default)
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Int32Array::from(ids)),
            Arc::new(StringArray::from(labels)),
        ];
        // rows were visited group by group; put them back in table order
        let order: Vec<usize> = p
            .groups
            .iter()
            .flat_map(|(_, r)| r.iter().copied())
            .collect();
        let mut pos = vec![0usize; n];
        for (i, &r) in order.iter().enumerate() {
            pos[r] = i;
        }
        for col in out {
            cols.push(Arc::new(StringArray::from(
                (0..n).map(|r| col[pos[r]].clone()).collect::<Vec<_>>(),
            )));
        }
        Ok(Outputs::new().port(
            "personas",
            Table::from_batch(RecordBatch::try_new(output_schema(), cols)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::readable;

    #[test]
    fn readable_numbers() {
        assert_eq!(readable(12345.6), "12,346");
        assert_eq!(readable(-1234.0), "-1,234");
        assert_eq!(readable(152.4), "152");
        assert_eq!(readable(24.36), "24.4");
        assert_eq!(readable(70.0), "70");
        assert_eq!(readable(4.56789), "4.57");
        assert_eq!(readable(0.0123), "0.0123");
        assert_eq!(readable(2.0), "2");
        assert_eq!(readable(0.0), "0");
    }
}
