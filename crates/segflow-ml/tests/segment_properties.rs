//! Property tests of the segmenters (proptest): k-means (every `algorithm` and `init`),
//! mini-batch k-means, Gaussian mixtures, RFM scoring and k-prototypes.
//!
//! - **Coverage**: every input row gets exactly one segment, a valid one (`< k`, or a
//!   segment of the map), and the reported sizes / costs add up over the rows.
//! - **Label permutation invariance** where the labels are arbitrary: starting from the
//!   same centres (k-means), labels (mixture) or prototypes (k-prototypes) in another
//!   order gives the same partition and the same inertia / likelihood / cost; the
//!   adjusted Rand index and NMI ignore label names. For RFM, where scores are not
//!   arbitrary labels, the property is row-order invariance: with `ties: shared`
//!   (or distinct values) a customer's scores do not depend on where its row is.
//! - **Determinism across thread counts**: the same seed gives bit-identical models on
//!   rayon pools of 1 and 3 threads; and k-means' Hamerly and Elkan iterations give
//!   Lloyd's result bit for bit.
//!
//! Inputs are small (at most 96 rows) and each property runs 64 cases (96 for the
//! metrics): the file runs in about half a second in a debug build (well under a
//! second; `PROPTEST_CASES=1500` takes about 12 s and found nothing). Data with many
//! repeated rows (values on a coarse grid) is used for coverage and determinism, where
//! k may exceed the distinct rows; continuous data for the permutation properties,
//! where exact ties between centres would make the choice between equals
//! order-dependent by design.

use proptest::prelude::*;
use segflow_ml::gmm::{self, Covariance, GmmInit, GmmParams};
use segflow_ml::kmeans::{self, Algorithm, Init, KMeansParams};
use segflow_ml::kprototypes::{self, KPrototypesInit, KPrototypesParams, MixedData};
use segflow_ml::metrics::{adjusted_rand_index, normalized_mutual_info};
use segflow_ml::minibatch::{self, MiniBatchParams};
use segflow_ml::rfm::{self, RfmParams, SegmentMap, Ties};
use std::collections::HashMap;
use std::sync::OnceLock;

fn pool(threads: usize) -> &'static rayon::ThreadPool {
    static POOLS: OnceLock<[rayon::ThreadPool; 2]> = OnceLock::new();
    let pools = POOLS.get_or_init(|| {
        [1, 3].map(|t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
        })
    });
    &pools[usize::from(threads != 1)]
}

/// `f` on 1 and on 3 threads: the results must be identical; returns one.
fn on_1_and_3_threads<T: PartialEq + std::fmt::Debug + Send>(f: impl Fn() -> T + Sync) -> T {
    let one = pool(1).install(&f);
    let three = pool(3).install(&f);
    assert_eq!(one, three, "1 thread vs 3 threads");
    one
}

/// Whether two labelings are the same partition (a bijection maps one onto the other).
fn same_partition(a: &[u32], b: &[u32]) -> bool {
    let mut ab = HashMap::new();
    let mut ba = HashMap::new();
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| *ab.entry(x).or_insert(y) == y && *ba.entry(y).or_insert(x) == x)
}

fn covers(labels: &[u32], n: usize, k: usize) {
    assert_eq!(labels.len(), n, "one label per row");
    assert!(labels.iter().all(|&l| (l as usize) < k), "labels < k = {k}");
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// `n × d` values on a coarse grid (many repeated rows) or continuous.
fn matrix(
    n: std::ops::RangeInclusive<usize>,
    d: std::ops::RangeInclusive<usize>,
    grid: bool,
) -> impl Strategy<Value = (usize, usize, Vec<f64>)> {
    (n, d).prop_flat_map(move |(n, d)| {
        let v = if grid {
            (-3i32..=3).prop_map(|v| v as f64).boxed()
        } else {
            (-100.0f64..100.0).boxed()
        };
        (Just(n), Just(d), prop::collection::vec(v, n * d))
    })
}

/// Continuous data, `k`, and `k` distinct row indices as starting centres, and a
/// permutation of `0..k`.
fn with_start() -> impl Strategy<Value = (usize, usize, Vec<f64>, Vec<usize>, Vec<usize>)> {
    (matrix(12..=96, 1..=4, false), 1usize..=5).prop_flat_map(|((n, d, x), k)| {
        let rows = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
        let perm = Just((0..k).collect::<Vec<_>>()).prop_shuffle();
        (Just(n), Just(d), Just(x), rows, perm)
            .prop_map(move |(n, d, x, rows, perm)| (n, d, x, rows[..k].to_vec(), perm))
    })
}

fn rows_of(x: &[f64], d: usize, idx: &[usize]) -> Vec<f64> {
    idx.iter()
        .flat_map(|&i| x[i * d..(i + 1) * d].to_vec())
        .collect()
}

fn permute<T: Clone>(v: &[T], width: usize, perm: &[usize]) -> Vec<T> {
    perm.iter()
        .flat_map(|&j| v[j * width..(j + 1) * width].to_vec())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every algorithm and start: every row once, inertia adds up, the same model on 1
    /// and 3 threads, and Hamerly / Elkan / auto equal to Lloyd bit for bit.
    #[test]
    fn kmeans_covers_and_is_deterministic(
        (n, d, x) in matrix(8..=96, 1..=4, true),
        k in 1usize..=6,
        seed in any::<u64>(),
        random in any::<bool>(),
    ) {
        let k = k.min(n);
        let init = if random { Init::Random } else { Init::KMeansPlusPlus };
        let mut lloyd: Option<kmeans::KMeansModel> = None;
        for algorithm in [Algorithm::Lloyd, Algorithm::Hamerly, Algorithm::Elkan, Algorithm::Auto] {
            let p = KMeansParams::new(k).init(init.clone()).n_init(2).seed(seed).algorithm(algorithm);
            let m = on_1_and_3_threads(|| kmeans::fit(&x, d, &p).unwrap());
            covers(&m.labels, n, k);
            let inertia: f64 = (0..n)
                .map(|i| {
                    let c = &m.centroids[m.labels[i] as usize * d..][..d];
                    x[i * d..(i + 1) * d].iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()
                })
                .sum();
            prop_assert!((m.inertia - inertia).abs() <= 1e-9 * inertia.max(1.0));
            match &lloyd {
                None => lloyd = Some(m),
                Some(l) => {
                    prop_assert_eq!(&m.labels, &l.labels, "{:?}", algorithm);
                    prop_assert_eq!(&m.centroids, &l.centroids);
                    prop_assert_eq!(m.inertia, l.inertia);
                    prop_assert_eq!(m.n_iter, l.n_iter);
                }
            }
        }
    }

    /// The same starting centres in another order: the same partition and inertia.
    #[test]
    fn kmeans_ignores_the_order_of_its_centres((n, d, x, rows, perm) in with_start()) {
        let k = rows.len();
        let c = rows_of(&x, d, &rows);
        for algorithm in [Algorithm::Lloyd, Algorithm::Hamerly, Algorithm::Elkan] {
            let fit = |c: Vec<f64>| {
                kmeans::fit(&x, d, &KMeansParams::new(k).init(Init::Given(c)).algorithm(algorithm)).unwrap()
            };
            let a = fit(c.clone());
            let b = fit(permute(&c, d, &perm));
            covers(&b.labels, n, k);
            prop_assert!(same_partition(&a.labels, &b.labels), "{:?}", algorithm);
            prop_assert!(rel(a.inertia, b.inertia) < 1e-12 || a.inertia == b.inertia);
        }
    }

    /// Mini-batch k-means: every row once, the same model on 1 and 3 threads.
    #[test]
    fn minibatch_covers_and_is_deterministic(
        (n, d, x) in matrix(8..=96, 1..=4, true),
        k in 1usize..=6,
        batch in 1usize..=40,
        seed in any::<u64>(),
    ) {
        let k = k.min(n);
        let p = MiniBatchParams::new(k).batch_size(batch).max_epochs(5).seed(seed);
        let m = on_1_and_3_threads(|| minibatch::fit(&x, d, &p).unwrap());
        covers(&m.labels, n, k);
        prop_assert!(m.inertia.is_finite() && m.inertia >= 0.0);
    }

    /// Gaussian mixtures: every row once with a probability in (0, 1], the same model
    /// on 1 and 3 threads; from the same starting labels renamed, the same partition
    /// and log-likelihood.
    #[test]
    fn gmm_covers_is_deterministic_and_ignores_label_names(
        (n, d, x) in matrix(20..=96, 1..=3, false),
        k in 1usize..=4,
        diag in any::<bool>(),
        seed in any::<u64>(),
        order in Just((0..96usize).collect::<Vec<_>>()).prop_shuffle(),
        perm in Just((0..4u32).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let cov = if diag { Covariance::Diag } else { Covariance::Full };
        let p = GmmParams::new(k).covariance(cov).n_init(2).seed(seed);
        let m = on_1_and_3_threads(|| gmm::fit(&x, d, &p));
        let m = m.unwrap();
        covers(&m.labels, n, k);
        prop_assert!(m.probability.iter().all(|&q| q > 0.0 && q <= 1.0 + 1e-12));
        prop_assert!(m.probability.iter().all(|&q| q >= 1.0 / k as f64 - 1e-12));
        // Starting labels: every component gets rows (row order[i] gets i mod k).
        let mut start = vec![0u32; n];
        for (i, &r) in order.iter().filter(|&&r| r < n).enumerate() {
            start[r] = (i % k) as u32;
        }
        // Rename the labels by a permutation of 0..k.
        let names: Vec<u32> = perm.iter().copied().filter(|&v| (v as usize) < k).collect();
        let renamed: Vec<u32> = start.iter().map(|&l| names[l as usize]).collect();
        let a = gmm::fit(&x, d, &GmmParams::new(k).covariance(cov).init(GmmInit::Labels(start)));
        let b = gmm::fit(&x, d, &GmmParams::new(k).covariance(cov).init(GmmInit::Labels(renamed)));
        match (a, b) {
            (Ok(a), Ok(b)) => {
                prop_assert!(same_partition(&a.labels, &b.labels));
                prop_assert_eq!(a.n_iter, b.n_iter);
                prop_assert!(rel(a.log_likelihood(), b.log_likelihood()) < 1e-9);
            }
            (Err(a), Err(b)) => prop_assert_eq!(
                std::mem::discriminant(&a), std::mem::discriminant(&b)
            ),
            (a, b) => prop_assert!(false, "one start failed: {:?} / {:?}", a.err(), b.err()),
        }
    }

    /// RFM: every customer one score per measure in 1..=bins and one segment of the
    /// map; scores depend on the values, not on row order (ties shared); the same on
    /// 1 and 3 threads.
    #[test]
    fn rfm_covers_and_ignores_row_order(
        values in prop::collection::vec((0i32..40, 1i32..12, 0i32..500), 1..=96),
        bins in 3u8..=5,
        shared in any::<bool>(),
        rotate in any::<prop::sample::Index>(),
    ) {
        let n = values.len();
        let r: Vec<f64> = values.iter().map(|v| v.0 as f64).collect();
        let f: Vec<f64> = values.iter().map(|v| v.1 as f64).collect();
        let m: Vec<f64> = values.iter().map(|v| v.2 as f64 * 1.5).collect();
        let ties = if shared { Ties::Shared } else { Ties::First };
        let p = RfmParams::new(bins).ties(ties);
        let s = on_1_and_3_threads(|| rfm::score(&r, &f, &m, &p).unwrap());
        let map = SegmentMap::standard(bins).unwrap();
        let mut per_segment = vec![0usize; map.names().len()];
        for i in 0..n {
            for ms in s.measures() {
                prop_assert!((1..=bins).contains(&ms.scores[i]));
            }
            per_segment[map.assign(s.recency.scores[i], s.frequency.scores[i], s.monetary.scores[i])] += 1;
        }
        prop_assert_eq!(per_segment.iter().sum::<usize>(), n);
        for ms in s.measures() {
            prop_assert_eq!(ms.per_score.iter().map(|st| st.count).sum::<u64>(), n as u64);
        }
        // Row-order invariance: rotate the rows.
        if shared {
            let by = rotate.index(n);
            let rot = |v: &[f64]| -> Vec<f64> { v[by..].iter().chain(&v[..by]).copied().collect() };
            let t = rfm::score(&rot(&r), &rot(&f), &rot(&m), &p).unwrap();
            for (a, b) in s.measures().iter().zip(t.measures()) {
                let expect: Vec<u8> = a.scores[by..].iter().chain(&a.scores[..by]).copied().collect();
                prop_assert_eq!(&b.scores, &expect);
            }
        }
    }

    /// k-prototypes (Huang and Cao starts): every row once, costs add up and are each
    /// row's dissimilarity to its prototype, the same model on 1 and 3 threads.
    #[test]
    fn kprototypes_covers_and_is_deterministic(
        (n, p, x) in matrix(8..=96, 1..=3, true),
        cats in prop::collection::vec((0u32..4, 0u32..3), 96),
        k in 1usize..=5,
        huang in any::<bool>(),
        gamma in prop::option::of(0.0f64..3.0),
        seed in any::<u64>(),
    ) {
        let k = k.min(n);
        let c: Vec<u32> = cats[..n].iter().flat_map(|&(a, b)| [a, b * 7]).collect();
        let data = MixedData::new(&x, p, &c, 2);
        let init = if huang { KPrototypesInit::Huang } else { KPrototypesInit::Cao };
        let params = KPrototypesParams::new(k).init(init).n_init(3).gamma(gamma).seed(seed);
        let fit = on_1_and_3_threads(|| kprototypes::fit(&data, &params));
        let m = match fit {
            Ok(m) => m,
            // Only possible with gamma = 0 and rows that differ in categories alone.
            Err(kprototypes::KPrototypesError::NoStart { .. }) => {
                prop_assume!(false);
                unreachable!()
            }
            Err(e) => panic!("{e}"),
        };
        prop_assert!(m.k <= k);
        prop_assert!(m.k == k || m.distinct_rows == Some(m.k));
        covers(&m.labels, n, m.k);
        let mut total = 0.0;
        for i in 0..n {
            let j = m.labels[i] as usize;
            let num: f64 = x[i * p..(i + 1) * p]
                .iter()
                .zip(&m.numeric[j * p..(j + 1) * p])
                .map(|(a, b)| (b - a) * (b - a))
                .sum();
            let mis = c[i * 2..i * 2 + 2].iter().zip(&m.categorical[j * 2..j * 2 + 2]).filter(|(a, b)| a != b).count();
            let want = num + m.gamma * mis as f64;
            prop_assert!((m.row_cost[i] - want).abs() <= 1e-9 * want.max(1.0));
            total += m.row_cost[i];
        }
        prop_assert_eq!(m.cost, total);
    }

    /// k-prototypes from the same prototypes in another order: the same partition and
    /// cost.
    #[test]
    fn kprototypes_ignores_the_order_of_its_prototypes(
        (n, p, x, rows, perm) in with_start(),
        cats in prop::collection::vec((0u32..4, 0u32..3), 96),
        gamma in 0.0f64..50.0,
    ) {
        let k = rows.len();
        let c: Vec<u32> = cats[..n].iter().flat_map(|&(a, b)| [a, b]).collect();
        let data = MixedData::new(&x, p, &c, 2);
        let pn = rows_of(&x, p, &rows);
        let pc: Vec<u32> = rows.iter().flat_map(|&i| c[i * 2..i * 2 + 2].to_vec()).collect();
        let fit = |numeric, categorical| {
            kprototypes::fit(
                &data,
                &KPrototypesParams::new(k)
                    .gamma(Some(gamma))
                    .init(KPrototypesInit::Given { numeric, categorical }),
            )
            .unwrap()
        };
        let a = fit(pn.clone(), pc.clone());
        let b = fit(permute(&pn, p, &perm), permute(&pc, 2, &perm));
        covers(&b.labels, n, k);
        prop_assert!(same_partition(&a.labels, &b.labels));
        prop_assert!(rel(a.cost, b.cost) < 1e-12 || a.cost == b.cost);
        prop_assert_eq!(a.n_iter, b.n_iter);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The comparison metrics ignore label names: renaming either labeling's segments
    /// leaves the adjusted Rand index and NMI unchanged, and a labeling against its own
    /// renaming scores 1.
    #[test]
    fn metrics_ignore_label_names(
        pairs in prop::collection::vec((0u32..6, 0u32..5), 1..=120),
        perm in Just((0..6u32).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let a: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let b: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        let renamed: Vec<u32> = a.iter().map(|&l| perm[l as usize] + 100).collect();
        let ari = adjusted_rand_index(&a, &b).unwrap();
        prop_assert!((-1.0..=1.0).contains(&ari));
        prop_assert_eq!(adjusted_rand_index(&renamed, &b).unwrap(), ari);
        prop_assert_eq!(adjusted_rand_index(&a, &renamed).unwrap(), 1.0);
        let nmi = normalized_mutual_info(&a, &b).unwrap();
        prop_assert!((normalized_mutual_info(&renamed, &b).unwrap() - nmi).abs() < 1e-12);
        prop_assert!((normalized_mutual_info(&a, &renamed).unwrap() - 1.0).abs() < 1e-12);
    }
}
