//! CART trees against scikit-learn's `DecisionTreeClassifier(criterion="gini",
//! random_state=0)` (fixtures/cart_reference.json, made by
//! fixtures/make_cart_fixture.py, which checks that every split scikit-learn made is the
//! unique best one, so the tree does not depend on tie-breaking).

use segflow_ml::cart::{fit, CartParams, NodeKind};

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cart_reference.json"
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

fn uints(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn usize_of(v: &serde_json::Value) -> usize {
    v.as_u64().unwrap() as usize
}

#[test]
fn trees_match_sklearn() {
    let r = reference();
    let mut checked = 0;
    for ds in r["datasets"].as_array().unwrap() {
        let name = ds["name"].as_str().unwrap();
        let d = usize_of(&ds["d"]);
        let k = usize_of(&ds["n_classes"]);
        let data = floats(&ds["data"]);
        let labels = uints(&ds["labels"]);
        assert_eq!(data.len(), d * labels.len());
        for case in ds["cases"].as_array().unwrap() {
            let depth = usize_of(&case["max_depth"]);
            let leaf = usize_of(&case["min_samples_leaf"]);
            let what = format!("{name} depth {depth} min_samples_leaf {leaf}");
            let p = CartParams::new().max_depth(depth).min_samples_leaf(leaf);
            let t = fit(&data, d, &labels, k, &p).unwrap();

            let want = uints(&case["predictions"]);
            let got = t.predict(&data, d).unwrap();
            let wrong = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(wrong, 0, "{what}: {wrong} predictions differ");

            let acc = t.accuracy(&data, d, &labels).unwrap();
            assert!(
                (acc - case["accuracy"].as_f64().unwrap()).abs() < 1e-12,
                "{what}: accuracy {acc} vs {}",
                case["accuracy"]
            );

            let fi = t.feature_importances();
            for (j, (a, b)) in fi
                .iter()
                .zip(floats(&case["feature_importances"]))
                .enumerate()
            {
                assert!((a - b).abs() < 1e-9, "{what}: importance {j}: {a} vs {b}");
            }

            match t.nodes[0].kind {
                NodeKind::Split {
                    feature, threshold, ..
                } => {
                    assert_eq!(feature, usize_of(&case["root_feature"]), "{what}");
                    // scikit-learn's threshold is the midpoint of the gap, ours the
                    // shortest decimal in it: every row goes the same way
                    let sk = case["root_threshold"].as_f64().unwrap();
                    for row in data.chunks(d) {
                        assert_eq!(row[feature] <= threshold, row[feature] <= sk, "{what}");
                    }
                }
                NodeKind::Leaf => panic!("{what}: the root is a leaf"),
            }
            assert_eq!(t.n_leaves(), usize_of(&case["leaves"]), "{what}: leaves");
            assert_eq!(t.depth(), usize_of(&case["depth"]), "{what}: depth");

            // The rules partition the rows exactly as the tree does.
            let rules = t.rules();
            assert_eq!(rules.len(), t.n_leaves());
            assert_eq!(rules.iter().map(|r| r.samples).sum::<usize>(), labels.len());
            let leaves = t.apply(&data, d).unwrap();
            for (i, row) in data.chunks(d).enumerate() {
                let matching: Vec<usize> = rules
                    .iter()
                    .filter(|r| r.conditions.iter().all(|c| c.holds(row[c.feature])))
                    .map(|r| r.node)
                    .collect();
                assert_eq!(matching, [leaves[i]], "{what}: row {i}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 9);
}
