//! The `synthetic` component: deterministic retail transactions from known archetypes.
//!
//! Customers are generated in fixed chunks of [`CHUNK_CUSTOMERS`]; each chunk has its
//! own ChaCha8 random stream derived from `(seed, chunk index)`, so the rows are the
//! same whatever the thread count and however the stream is consumed, and any volume
//! streams in bounded memory (a few chunks at a time). Each customer's archetype comes
//! from a golden-ratio (Weyl) sequence over the customer index, so the archetype counts
//! match the configured shares to within one customer per archetype.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use rayon::prelude::*;
use segflow_sdk::arrow::array::{Date32Array, Float64Array, Int64Array, StringArray};
use segflow_sdk::arrow::error::ArrowError;
use segflow_sdk::config::IsoDate;
use segflow_sdk::ffi::HostHandle;
use segflow_sdk::prelude::*;
use std::collections::VecDeque;
use std::sync::Arc;

/// Customers per generated chunk (one record batch per chunk).
pub const CHUNK_CUSTOMERS: u64 = 4096;

/// Deterministic synthetic retail transactions for demos, tests and benchmarks. Each
/// customer follows one of a few behavioural archetypes (champions, loyal, new,
/// at_risk, big_spenders_occasional, hibernating, lost) in fixed shares, so a
/// segmentation can be checked for recovering them. Columns: customer_id, date, amount,
/// category, channel, region, and optionally the true archetype. About 10 transactions
/// per customer on average; the same seed gives the same rows whatever the thread count.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Synthetic {
    /// Number of customers (ids 1 to `customers`).
    #[serde(default = "default_customers")]
    #[schemars(range(min = 1))]
    pub customers: u64,
    /// Random seed: the same seed and config give the same rows.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// First day of the transaction window (YYYY-MM-DD).
    #[serde(default = "default_start")]
    pub start: IsoDate,
    /// Last day of the transaction window (YYYY-MM-DD), at least 180 days after `start`.
    #[serde(default = "default_end")]
    pub end: IsoDate,
    /// Override the archetype mix with weights per archetype (normalised to sum to 1;
    /// archetypes left out get none). Default: champions 0.10, loyal 0.18, new 0.12,
    /// at_risk 0.15, big_spenders_occasional 0.07, hibernating 0.20, lost 0.18.
    #[serde(default)]
    pub archetypes: Option<ArchetypeShares>,
    /// Add an `archetype` column with each customer's true archetype (for testing
    /// segmenters; a real source has no such column).
    #[serde(default)]
    pub label: bool,
}

fn default_customers() -> u64 {
    20_000
}
fn default_seed() -> u64 {
    42
}
fn default_start() -> IsoDate {
    IsoDate(chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap_or_default())
}
fn default_end() -> IsoDate {
    IsoDate(chrono::NaiveDate::from_ymd_opt(2024, 12, 31).unwrap_or_default())
}

/// Weights of the archetypes in `synthetic` (see each archetype's behaviour).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchetypeShares {
    /// Buy often (every ~3 weeks) until the end of the window, high baskets (~95).
    #[schemars(range(min = 0.0))]
    pub champions: Option<f64>,
    /// Buy regularly (about monthly), moderate baskets (~55).
    #[schemars(range(min = 0.0))]
    pub loyal: Option<f64>,
    /// First purchase in the last 60 days, 1 to 3 purchases (~45).
    #[schemars(range(min = 0.0))]
    pub new: Option<f64>,
    /// Bought often (every ~3.5 weeks), then stopped 20-45% of the window before its end
    /// (~70).
    #[schemars(range(min = 0.0))]
    pub at_risk: Option<f64>,
    /// 2 to 5 purchases spread over the window, very large baskets (~420).
    #[schemars(range(min = 0.0))]
    pub big_spenders_occasional: Option<f64>,
    /// 2 to 4 small purchases (~28) in the first 60% of the window.
    #[schemars(range(min = 0.0))]
    pub hibernating: Option<f64>,
    /// One small purchase (~25) in the first half of the window.
    #[schemars(range(min = 0.0))]
    pub lost: Option<f64>,
}

/// A customer archetype of `synthetic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Archetype {
    Champions,
    Loyal,
    New,
    AtRisk,
    BigSpendersOccasional,
    Hibernating,
    Lost,
}

impl Archetype {
    pub const ALL: [Archetype; 7] = [
        Archetype::Champions,
        Archetype::Loyal,
        Archetype::New,
        Archetype::AtRisk,
        Archetype::BigSpendersOccasional,
        Archetype::Hibernating,
        Archetype::Lost,
    ];

    /// The name used in config, facts and the `archetype` column.
    pub fn name(self) -> &'static str {
        match self {
            Archetype::Champions => "champions",
            Archetype::Loyal => "loyal",
            Archetype::New => "new",
            Archetype::AtRisk => "at_risk",
            Archetype::BigSpendersOccasional => "big_spenders_occasional",
            Archetype::Hibernating => "hibernating",
            Archetype::Lost => "lost",
        }
    }

    /// The default share of customers.
    pub fn default_share(self) -> f64 {
        match self {
            Archetype::Champions => 0.10,
            Archetype::Loyal => 0.18,
            Archetype::New => 0.12,
            Archetype::AtRisk => 0.15,
            Archetype::BigSpendersOccasional => 0.07,
            Archetype::Hibernating => 0.20,
            Archetype::Lost => 0.18,
        }
    }

    /// Median basket and log-scale spread of the amounts.
    fn basket(self) -> (f64, f64) {
        match self {
            Archetype::Champions => (95.0, 0.45),
            Archetype::Loyal => (55.0, 0.45),
            Archetype::New => (45.0, 0.5),
            Archetype::AtRisk => (70.0, 0.45),
            Archetype::BigSpendersOccasional => (420.0, 0.35),
            Archetype::Hibernating => (28.0, 0.5),
            Archetype::Lost => (25.0, 0.5),
        }
    }

    /// Weights of online, store, app.
    fn channels(self) -> [f64; 3] {
        match self {
            Archetype::Champions => [0.35, 0.25, 0.40],
            Archetype::New => [0.55, 0.25, 0.20],
            Archetype::BigSpendersOccasional => [0.50, 0.45, 0.05],
            _ => [0.40, 0.45, 0.15],
        }
    }
}

const CATEGORIES: [&str; 8] = [
    "grocery",
    "home",
    "electronics",
    "fashion",
    "beauty",
    "sports",
    "toys",
    "books",
];
const CATEGORY_WEIGHTS: [f64; 8] = [0.28, 0.14, 0.10, 0.16, 0.10, 0.08, 0.06, 0.08];
const BIG_CATEGORY_WEIGHTS: [f64; 8] = [0.04, 0.30, 0.40, 0.12, 0.04, 0.06, 0.02, 0.02];
const CHANNELS: [&str; 3] = ["online", "store", "app"];
const REGIONS: [&str; 5] = ["north", "south", "east", "west", "central"];
const REGION_WEIGHTS: [f64; 5] = [0.22, 0.20, 0.20, 0.18, 0.20];

fn pick<const N: usize>(rng: &mut ChaCha8Rng, weights: &[f64; N]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    N - 1
}

/// The validated generator parameters.
#[derive(Debug, Clone)]
struct Gen {
    customers: u64,
    seed: u64,
    /// Day 0 of the window (days since the epoch) and its length in days.
    start: i32,
    span: i32,
    /// Cumulative archetype thresholds on the 64-bit Weyl sequence.
    thresholds: [u64; 7],
    shares: [f64; 7],
    weyl_offset: u64,
    /// The archetype of the rare `u == u64::MAX`.
    last_archetype: usize,
    label: bool,
    schema: SchemaRef,
}

/// 2^64 / golden ratio: the Weyl sequence step with the lowest discrepancy.
const WEYL_STEP: u64 = 0x9e37_79b9_7f4a_7c15;

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(WEYL_STEP);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Synthetic {
    fn shares(&self) -> Result<[f64; 7]> {
        let Some(o) = &self.archetypes else {
            return Ok(Archetype::ALL.map(Archetype::default_share));
        };
        let given = [
            o.champions,
            o.loyal,
            o.new,
            o.at_risk,
            o.big_spenders_occasional,
            o.hibernating,
            o.lost,
        ];
        let mut w = [0.0; 7];
        for (i, (a, g)) in Archetype::ALL.iter().zip(given).enumerate() {
            let v = g.unwrap_or(0.0);
            if !v.is_finite() || v < 0.0 {
                return Err(Error::config(
                    &format!("archetypes.{}", a.name()),
                    format!("a share must be a number >= 0, got {v}"),
                ));
            }
            w[i] = v;
        }
        let total: f64 = w.iter().sum();
        if total <= 0.0 {
            return Err(Error::config(
                "archetypes",
                "give at least one archetype a share above 0",
            ));
        }
        Ok(w.map(|v| v / total))
    }

    fn generator(&self) -> Result<Gen> {
        if self.customers == 0 {
            return Err(Error::config("customers", "customers must be at least 1"));
        }
        let start = self.start.days();
        let span = self.end.days() - start + 1;
        if span < 180 {
            return Err(Error::config(
                "end",
                format!(
                    "the window {} to {} is {span} days; it must span at least 180 days",
                    self.start, self.end
                ),
            ));
        }
        let shares = self.shares()?;
        let mut thresholds = [u64::MAX; 7];
        let mut cum = 0.0;
        for (i, s) in shares.iter().enumerate() {
            cum += s;
            // 2^64 * cum, saturating; the last archetype with a share takes the rest.
            thresholds[i] = if cum >= 1.0 {
                u64::MAX
            } else {
                (cum * 18_446_744_073_709_551_616.0) as u64
            };
        }
        // The last archetype with a share takes whatever rounding left over.
        let last = shares.iter().rposition(|&s| s > 0.0).unwrap_or(6);
        for t in &mut thresholds[last..] {
            *t = u64::MAX;
        }
        Ok(Gen {
            customers: self.customers,
            seed: self.seed,
            start,
            span,
            thresholds,
            shares,
            weyl_offset: splitmix(self.seed),
            last_archetype: last,
            label: self.label,
            schema: self.schema(),
        })
    }

    fn schema(&self) -> SchemaRef {
        let mut fields = vec![
            Field::new("customer_id", DataType::Int64, false),
            Field::new("date", DataType::Date32, false),
            Field::new("amount", DataType::Float64, false),
            Field::new("category", DataType::Utf8, false),
            Field::new("channel", DataType::Utf8, false),
            Field::new("region", DataType::Utf8, false),
        ];
        if self.label {
            fields.push(Field::new("archetype", DataType::Utf8, false));
        }
        Arc::new(Schema::new(fields))
    }
}

impl Gen {
    fn archetype(&self, customer_index: u64) -> Archetype {
        let u = customer_index
            .wrapping_mul(WEYL_STEP)
            .wrapping_add(self.weyl_offset);
        // An archetype with no share has the previous threshold, so it is never picked.
        let i = self
            .thresholds
            .iter()
            .position(|&t| u < t)
            .unwrap_or(self.last_archetype);
        Archetype::ALL[i]
    }

    fn n_chunks(&self) -> u64 {
        self.customers.div_ceil(CHUNK_CUSTOMERS)
    }

    /// Purchase days (offsets into the window, sorted) of one customer.
    fn purchase_days(&self, a: Archetype, rng: &mut ChaCha8Rng, days: &mut Vec<i32>) {
        days.clear();
        let l = self.span;
        let frac = |f: f64| ((l as f64) * f) as i32;
        let uniform = |rng: &mut ChaCha8Rng, lo: i32, hi: i32| rng.random_range(lo..=hi.max(lo));
        let renewal =
            |rng: &mut ChaCha8Rng, days: &mut Vec<i32>, first: i32, stop: i32, mean: f64| {
                let gap = Exp::new(1.0 / mean).ok();
                let mut d = first;
                while d <= stop {
                    days.push(d);
                    let g = gap.as_ref().map_or(mean, |e| e.sample(rng));
                    d += 1 + g as i32;
                }
            };
        match a {
            Archetype::Champions => {
                let first = uniform(rng, 0, frac(0.3));
                renewal(rng, days, first, l - 1, 21.0);
            }
            Archetype::Loyal => {
                let first = uniform(rng, 0, frac(0.5));
                renewal(rng, days, first, l - 1, 36.0);
            }
            Archetype::AtRisk => {
                let first = uniform(rng, 0, frac(0.3));
                let stop = l - 1 - uniform(rng, frac(0.2), frac(0.45));
                renewal(rng, days, first, stop.max(first), 24.0);
            }
            Archetype::New => {
                let first = uniform(rng, l - 60, l - 1);
                days.push(first);
                let extra = pick(rng, &[0.5, 0.3, 0.2]);
                for _ in 0..extra {
                    days.push(uniform(rng, first, l - 1));
                }
            }
            Archetype::BigSpendersOccasional => {
                for _ in 0..uniform(rng, 2, 5) {
                    days.push(uniform(rng, 0, l - 1));
                }
            }
            Archetype::Hibernating => {
                for _ in 0..uniform(rng, 2, 4) {
                    days.push(uniform(rng, 0, frac(0.6)));
                }
            }
            Archetype::Lost => days.push(uniform(rng, 0, frac(0.5))),
        }
        days.sort_unstable();
    }

    /// Generate chunk `chunk`: its record batch and its customers per archetype.
    fn chunk(&self, chunk: u64) -> Result<(RecordBatch, [u64; 7]), ArrowError> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(chunk);
        let first = chunk * CHUNK_CUSTOMERS;
        let last = (first + CHUNK_CUSTOMERS).min(self.customers);
        let cap = ((last - first) * 11) as usize;
        let mut ids = Vec::with_capacity(cap);
        let mut dates = Vec::with_capacity(cap);
        let mut amounts = Vec::with_capacity(cap);
        let mut categories = Vec::with_capacity(cap);
        let mut channels = Vec::with_capacity(cap);
        let mut regions = Vec::with_capacity(cap);
        let mut labels = Vec::with_capacity(if self.label { cap } else { 0 });
        let mut counts = [0u64; 7];
        let mut days = Vec::new();
        for c in first..last {
            let a = self.archetype(c);
            counts[Archetype::ALL.iter().position(|x| *x == a).unwrap_or(0)] += 1;
            let region = REGIONS[pick(&mut rng, &REGION_WEIGHTS)];
            let (median, sigma) = a.basket();
            let basket = LogNormal::new(median.ln(), sigma)
                .map_err(|e| ArrowError::ComputeError(e.to_string()))?;
            let cat_weights = if a == Archetype::BigSpendersOccasional {
                &BIG_CATEGORY_WEIGHTS
            } else {
                &CATEGORY_WEIGHTS
            };
            let repeat_p = if a == Archetype::Champions {
                0.15
            } else {
                0.08
            };
            self.purchase_days(a, &mut rng, &mut days);
            for &d in &days {
                let n = 1 + usize::from(rng.random::<f64>() < repeat_p);
                for _ in 0..n {
                    let amount: f64 = basket.sample(&mut rng);
                    ids.push(c as i64 + 1);
                    dates.push(self.start + d);
                    amounts.push(((amount * 100.0).round() / 100.0).max(1.0));
                    categories.push(CATEGORIES[pick(&mut rng, cat_weights)]);
                    channels.push(CHANNELS[pick(&mut rng, &a.channels())]);
                    regions.push(region);
                    if self.label {
                        labels.push(a.name());
                    }
                }
            }
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(Date32Array::from(dates)),
            Arc::new(Float64Array::from(amounts)),
            Arc::new(StringArray::from_iter_values(categories)),
            Arc::new(StringArray::from_iter_values(channels)),
            Arc::new(StringArray::from_iter_values(regions)),
        ];
        if self.label {
            columns.push(Arc::new(StringArray::from_iter_values(labels)));
        }
        Ok((RecordBatch::try_new(self.schema.clone(), columns)?, counts))
    }
}

impl Component for Synthetic {
    const NAME: &'static str = "synthetic";
    const STAGE: Stage = Stage::Collect;

    fn ports() -> Ports {
        Ports::new(Stage::Collect, 0, 0).outputs(&[(
            "main",
            "transactions: customer_id, date, amount, category, channel, region \
             [, archetype]; grouped by customer, dates ascending within a customer",
        )])
    }

    /// The rows are a function of the config alone (the seed included).
    fn fingerprint(&self) -> Result<Fingerprint> {
        Ok(Fingerprint::Pure)
    }

    fn plan(&self, _inputs: &[Named<SchemaRef>]) -> Result<Outputs<SchemaRef>> {
        Ok(Outputs::main(self.generator()?.schema))
    }

    fn run(&self, _inputs: Vec<Named<Table>>, ctx: &mut Context) -> Result<Outputs<Table>> {
        let g = self.generator()?;
        ctx.fact("source", "synthetic");
        ctx.fact("customers", g.customers);
        ctx.fact("seed", g.seed);
        ctx.fact("start", self.start.to_string());
        ctx.fact("end", self.end.to_string());
        let shares: serde_json::Map<String, serde_json::Value> = Archetype::ALL
            .iter()
            .zip(g.shares)
            .map(|(a, s)| (a.name().to_string(), s.into()))
            .collect();
        ctx.fact("archetype_shares", shares);
        let threads = ctx.threads();
        let pool = if threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("segflow-synthetic-{i}"))
                    .build()
                    .map_err(|e| Error::new(format!("starting worker threads: {e}")))?,
            )
        } else {
            None
        };
        let schema = g.schema.clone();
        let stream = SyntheticStream::new(g, pool, threads * 2, Some(ctx.handle()));
        Ok(Outputs::main(Table::from_iter(schema, stream)))
    }
}

/// Generates chunks lazily, a window of them at a time (in parallel with a pool).
pub(crate) struct SyntheticStream {
    gen: Arc<Gen>,
    pool: Option<rayon::ThreadPool>,
    window: usize,
    next_chunk: u64,
    ready: VecDeque<RecordBatch>,
    counts: [u64; 7],
    rows: u64,
    handle: Option<HostHandle>,
    finished: bool,
}

impl SyntheticStream {
    fn new(
        gen: Gen,
        pool: Option<rayon::ThreadPool>,
        window: usize,
        handle: Option<HostHandle>,
    ) -> Self {
        SyntheticStream {
            gen: Arc::new(gen),
            pool,
            window: window.max(1),
            next_chunk: 0,
            ready: VecDeque::new(),
            counts: [0; 7],
            rows: 0,
            handle,
            finished: false,
        }
    }

    fn refill(&mut self) -> Result<(), ArrowError> {
        let end = (self.next_chunk + self.window as u64).min(self.gen.n_chunks());
        let range = self.next_chunk..end;
        let gen = self.gen.clone();
        let made: Vec<Result<(RecordBatch, [u64; 7]), ArrowError>> = match &self.pool {
            Some(pool) => pool.install(|| range.into_par_iter().map(|c| gen.chunk(c)).collect()),
            None => range.map(|c| gen.chunk(c)).collect(),
        };
        self.next_chunk = end;
        for m in made {
            let (batch, counts) = m?;
            for (t, c) in self.counts.iter_mut().zip(counts) {
                *t += c;
            }
            self.ready.push_back(batch);
        }
        Ok(())
    }

    fn finish(&mut self) {
        self.finished = true;
        if let Some(h) = self.handle {
            h.fact("rows", self.rows);
            let counts: serde_json::Map<String, serde_json::Value> = Archetype::ALL
                .iter()
                .zip(self.counts)
                .map(|(a, c)| (a.name().to_string(), c.into()))
                .collect();
            h.fact("archetype_counts", counts);
        }
    }
}

impl Iterator for SyntheticStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if self.ready.is_empty() {
            if self.next_chunk >= self.gen.n_chunks() {
                self.finish();
                return None;
            }
            if let Err(e) = self.refill() {
                self.finished = true;
                return Some(Err(e));
            }
        }
        let batch = self.ready.pop_front()?;
        self.rows += batch.num_rows() as u64;
        if let Some(h) = self.handle {
            let done = ((self.next_chunk - self.ready.len() as u64) * CHUNK_CUSTOMERS)
                .min(self.gen.customers);
            h.progress(done, self.gen.customers, "customers");
        }
        Some(Ok(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synth(customers: u64, label: bool) -> Synthetic {
        serde_json::from_value(serde_json::json!({"customers": customers, "label": label}))
            .expect("config")
    }

    fn all(stream: SyntheticStream) -> Vec<RecordBatch> {
        stream.map(|b| b.expect("batch")).collect()
    }

    #[test]
    fn same_rows_for_any_thread_count() {
        let s = synth(10_000, true);
        let one = all(SyntheticStream::new(s.generator().unwrap(), None, 1, None));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let three = all(SyntheticStream::new(
            s.generator().unwrap(),
            Some(pool),
            5,
            None,
        ));
        assert_eq!(one, three);
        assert_eq!(one.len(), 3); // 10_000 customers in chunks of 4096
    }

    #[test]
    fn shares_and_volume() {
        let g = synth(100_000, false).generator().unwrap();
        let mut s = SyntheticStream::new(g, None, 4, None);
        let rows: usize = s.by_ref().map(|b| b.unwrap().num_rows()).sum();
        let per_customer = rows as f64 / 100_000.0;
        assert!(
            (8.0..13.0).contains(&per_customer),
            "{per_customer} rows per customer"
        );
        for (a, c) in Archetype::ALL.iter().zip(s.counts) {
            let want = a.default_share() * 100_000.0;
            assert!(
                (c as f64 - want).abs() <= 2.0,
                "{}: {c} vs {want}",
                a.name()
            );
        }
    }

    #[test]
    fn archetypes_behave_as_documented() {
        let g = synth(20_000, true).generator().unwrap();
        let end = g.start + g.span - 1;
        let batches = all(SyntheticStream::new(g.clone(), None, 1, None));
        // last purchase and spend per customer, by archetype
        /// Last purchase day, total spend, transactions, archetype.
        type Summary = (i32, f64, u32, &'static str);
        let mut last: std::collections::HashMap<i64, Summary> = Default::default();
        for b in &batches {
            let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let dates = b.column(1).as_any().downcast_ref::<Date32Array>().unwrap();
            let amounts = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
            let labels = b.column(6).as_any().downcast_ref::<StringArray>().unwrap();
            for i in 0..b.num_rows() {
                assert!(dates.value(i) >= g.start && dates.value(i) <= end);
                assert_eq!((amounts.value(i) * 100.0).round() / 100.0, amounts.value(i));
                let a = Archetype::ALL
                    .iter()
                    .find(|a| a.name() == labels.value(i))
                    .unwrap()
                    .name();
                let e = last.entry(ids.value(i)).or_insert((i32::MIN, 0.0, 0, a));
                e.0 = e.0.max(dates.value(i));
                e.1 += amounts.value(i);
                e.2 += 1;
            }
        }
        let mean = |name: &str, f: &dyn Fn(&Summary) -> f64| {
            let v: Vec<f64> = last.values().filter(|x| x.3 == name).map(f).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let recency = |x: &Summary| f64::from(end - x.0);
        let count = |x: &Summary| f64::from(x.2);
        assert!(mean("champions", &recency) < 30.0);
        assert!(mean("new", &recency) < 60.0);
        assert!(mean("at_risk", &recency) > 120.0);
        assert!(mean("lost", &recency) > 300.0);
        assert!(mean("champions", &count) > 20.0);
        assert!(mean("lost", &count) < 1.2);
        let basket = |x: &Summary| x.1 / f64::from(x.2);
        assert!(mean("big_spenders_occasional", &basket) > 3.0 * mean("loyal", &basket));
    }

    #[test]
    fn config_errors_name_the_field() {
        let bad = |v: serde_json::Value| -> Error {
            let s: Synthetic = serde_json::from_value(v).unwrap();
            s.generator().unwrap_err()
        };
        assert_eq!(
            bad(serde_json::json!({"customers": 0})).field(),
            Some("customers")
        );
        assert_eq!(
            bad(serde_json::json!({"start": "2024-01-01", "end": "2024-02-01"})).field(),
            Some("end")
        );
        assert_eq!(
            bad(serde_json::json!({"archetypes": {"lost": -1.0}})).field(),
            Some("archetypes.lost")
        );
        assert_eq!(
            bad(serde_json::json!({"archetypes": {"lost": 0.0}})).field(),
            Some("archetypes")
        );
        // an override keeps only the listed archetypes
        let s: Synthetic = serde_json::from_value(
            serde_json::json!({"customers": 1000, "archetypes": {"champions": 1, "lost": 3}}),
        )
        .unwrap();
        let g = s.generator().unwrap();
        let mut st = SyntheticStream::new(g, None, 1, None);
        st.by_ref().for_each(drop);
        assert_eq!(st.counts.iter().sum::<u64>(), 1000);
        assert!((st.counts[0] as f64 - 250.0).abs() <= 1.0);
        assert!((st.counts[6] as f64 - 750.0).abs() <= 1.0);
        assert_eq!(st.counts[1..6].iter().sum::<u64>(), 0);
    }
}
