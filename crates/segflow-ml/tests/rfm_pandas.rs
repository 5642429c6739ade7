//! RFM scores and standard segments against pandas (fixtures/rfm_reference.json, made
//! by fixtures/make_rfm_fixture.py with `pd.qcut(s.rank(method="first"))`).

use segflow_ml::rfm::{quantile_bins, score, Measure, RfmParams, SegmentMap, Ties};

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rfm_reference.json"
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

fn small(v: &serde_json::Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u8)
        .collect()
}

#[test]
fn quantile_edges_match_qcut_for_every_size() {
    let r = reference();
    let edges = r["edges"].as_array().unwrap();
    assert!(edges.len() > 200);
    for e in edges {
        let bins = e["bins"].as_u64().unwrap() as u8;
        let n = e["n"].as_u64().unwrap() as usize;
        let ranks: Vec<f64> = (1..=n).map(|i| i as f64).collect();
        assert_eq!(
            quantile_bins(&ranks, bins, Ties::First),
            small(&e["bin"]),
            "bins={bins} n={n}"
        );
    }
}

#[test]
fn scores_and_segments_match_pandas_for_every_row() {
    let r = reference();
    let data = &r["data"];
    let (rec, freq, mon) = (
        floats(&data["recency"]),
        floats(&data["frequency"]),
        floats(&data["monetary"]),
    );
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for c in cases {
        let bins = c["bins"].as_u64().unwrap() as u8;
        let ties = match c["ties"].as_str().unwrap() {
            "first" => Ties::First,
            _ => Ties::Shared,
        };
        let what = format!("bins={bins} ties={ties:?} thresholds={}", c["thresholds"]);
        let mut p = RfmParams::new(bins).ties(ties);
        for m in Measure::ALL {
            if let Some(cuts) = c["thresholds"].get(m.name()) {
                p = p.thresholds(m, floats(cuts));
            }
        }
        let s = score(&rec, &freq, &mon, &p).unwrap();
        assert_eq!(s.recency.scores, small(&c["r_score"]), "{what}: R");
        assert_eq!(s.frequency.scores, small(&c["f_score"]), "{what}: F");
        assert_eq!(s.monetary.scores, small(&c["m_score"]), "{what}: M");
        assert_eq!(s.fm, small(&c["fm_score"]), "{what}: FM");
        for m in s.measures() {
            let key = format!("{}_cuts", m.measure.name());
            match c.get(&key) {
                Some(want) => {
                    let want: Vec<Option<f64>> = want
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64())
                        .collect();
                    assert_eq!(m.cuts, want, "{what}: {key}");
                }
                None => assert!(m.fixed, "{what}: {key}"),
            }
        }
        let map = SegmentMap::standard(bins).unwrap();
        let names = map.names();
        let want = c["segment"].as_array().unwrap();
        for i in 0..rec.len() {
            let got = names[map.assign(
                s.recency.scores[i],
                s.frequency.scores[i],
                s.monetary.scores[i],
            )];
            assert_eq!(got, want[i].as_str().unwrap(), "{what}: row {i}");
        }
    }
}
