//! k-prototypes against the Python `kmodes` package (fixtures/kprototypes_reference.json,
//! made by fixtures/make_kprototypes_fixture.py with kmodes 0.12.2): from the same
//! starting prototypes, the same labels, passes, per-pass costs and prototypes; Cao's
//! start gives the same categorical prototypes; the default gamma agrees; and from
//! segflow's own random starts the converged cost is as low as kmodes' best of 10.

use arrow::array::{Int64Array, StringArray};
use segflow_ml::kprototypes::{
    cao_prototypes, default_gamma, encode_categorical, fit, Categories, GammaSource,
    KPrototypesInit, KPrototypesParams, MixedData,
};

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kprototypes_reference.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A data set: numeric matrix, the two categorical columns encoded as segflow encodes
/// Arrow columns, and their value lists.
struct Data {
    p: usize,
    numeric: Vec<f64>,
    codes: Vec<u32>,
    region: Categories,
    store: Categories,
}

impl Data {
    fn new(ds: &serde_json::Value) -> Data {
        let p = ds["p"].as_u64().unwrap() as usize;
        let region: Vec<&str> = ds["region"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let store: Vec<i64> = ds["store"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let region = encode_categorical(&StringArray::from(region)).unwrap();
        let store = encode_categorical(&Int64Array::from(store)).unwrap();
        let codes = region
            .codes
            .iter()
            .zip(&store.codes)
            .flat_map(|(&a, &b)| [a, b])
            .collect();
        Data {
            p,
            numeric: floats(&ds["numeric"]),
            codes,
            region,
            store,
        }
    }

    fn mixed(&self) -> MixedData<'_> {
        MixedData::new(&self.numeric, self.p, &self.codes, 2)
    }

    /// Raw `[region, store]` rows to codes.
    fn encode(&self, rows: &serde_json::Value) -> Vec<u32> {
        let code =
            |c: &Categories, v: String| c.values.iter().position(|x| *x == v).unwrap() as u32;
        rows.as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                [
                    code(&self.region, r[0].as_str().unwrap().to_string()),
                    code(&self.store, r[1].as_i64().unwrap().to_string()),
                ]
            })
            .collect()
    }
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn same_start_gives_kmodes_labels_cost_and_prototypes() {
    let r = reference();
    let mut worst_cost = 0.0f64;
    let mut worst_proto = 0.0f64;
    for ds in r["datasets"].as_array().unwrap() {
        let data = Data::new(ds);
        // np.unique order: text by code point, integers numerically.
        assert!(data.region.values.windows(2).all(|w| w[0] < w[1]));
        let stores: Vec<i64> = data
            .store
            .values
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(stores.windows(2).all(|w| w[0] < w[1]), "{stores:?}");
        for case in ds["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let k = case["k"].as_u64().unwrap() as usize;
            let gamma = case["gamma_given"].as_f64();
            let init = KPrototypesInit::Given {
                numeric: floats(&case["init_numeric"]),
                categorical: data.encode(&case["init_categorical"]),
            };
            let params = KPrototypesParams::new(k).gamma(gamma).init(init);
            let m = fit(&data.mixed(), &params).unwrap();
            let kg = case["gamma"].as_f64().unwrap();
            match gamma {
                Some(g) => assert_eq!(m.gamma, g),
                None => {
                    assert_eq!(m.gamma_source, GammaSource::Default);
                    assert!(
                        rel(m.gamma, kg) < 1e-12,
                        "{name}: gamma {} vs {kg}",
                        m.gamma
                    );
                }
            }
            let labels: Vec<u32> = case["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(m.labels, labels, "{name}: labels");
            assert_eq!(m.n_iter as u64, case["n_iter"].as_u64().unwrap(), "{name}");
            let epoch = floats(&case["epoch_costs"]);
            assert_eq!(m.epoch_costs.len(), epoch.len(), "{name}: passes");
            for (a, b) in m.epoch_costs.iter().zip(&epoch) {
                worst_cost = worst_cost.max(rel(*a, *b));
            }
            let cost = case["cost"].as_f64().unwrap();
            worst_cost = worst_cost.max(rel(m.cost, cost));
            assert!(
                rel(m.cost, cost) < 1e-12,
                "{name}: cost {} vs {cost}",
                m.cost
            );
            for (a, b) in m.numeric.iter().zip(floats(&case["numeric"])) {
                worst_proto = worst_proto.max((a - b).abs() / b.abs().max(1.0));
            }
            assert_eq!(
                m.categorical,
                data.encode(&case["categorical"]),
                "{name}: modes"
            );
            if let Some(cao) = case.get("cao_categorical") {
                let ours = cao_prototypes(&data.mixed(), k).unwrap();
                assert_eq!(ours, data.encode(cao), "{name}: Cao's start");
            }
            println!(
                "{name}: k = {k}, {} passes, cost {:.9} (kmodes {cost:.9})",
                m.n_iter, m.cost
            );
        }
    }
    println!("worst relative cost difference {worst_cost:.2e}, prototypes {worst_proto:.2e}");
    assert!(worst_cost < 1e-12);
    assert!(worst_proto < 1e-12);
}

#[test]
fn own_starts_reach_kmodes_best_cost() {
    let r = reference();
    let ds = &r["datasets"][0];
    let data = Data::new(ds);
    assert!(
        rel(
            default_gamma(&data.numeric, data.p),
            ds["kmodes_runs"][0]["gamma"].as_f64().unwrap()
        ) < 1e-12
    );
    for run in ds["kmodes_runs"].as_array().unwrap() {
        let init = match run["init"].as_str().unwrap() {
            "Huang" => KPrototypesInit::Huang,
            _ => KPrototypesInit::Cao,
        };
        let best = run["cost"].as_f64().unwrap();
        let m = fit(
            &data.mixed(),
            &KPrototypesParams::new(4)
                .init(init.clone())
                .n_init(10)
                .seed(1),
        )
        .unwrap();
        println!("{init:?}: segflow cost {:.6}, kmodes {best:.6}", m.cost);
        assert!(
            m.cost <= best * (1.0 + 1e-9),
            "{init:?}: {} > {best}",
            m.cost
        );
    }
}
