//! Step-cache fingerprints of the collectors, from configs deserialised as the host does.

use segflow_collect::{
    CsvSource, JsonlSource, ParquetSource, PostgresSource, SqliteSource, Synthetic,
};
use segflow_sdk::{Component, Fingerprint};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, SystemTime};

fn fp<C: Component>(cfg: serde_json::Value) -> Fingerprint {
    let c: C = serde_json::from_value(cfg).unwrap();
    c.fingerprint().unwrap()
}

fn set_mtime(p: &Path, t: SystemTime) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn source(f: Fingerprint) -> serde_json::Value {
    match f {
        Fingerprint::Source(v) => v,
        other => panic!("expected Source, got {other:?}"),
    }
}

#[test]
fn synthetic_is_pure() {
    assert_eq!(fp::<Synthetic>(json!({"customers": 10})), Fingerprint::Pure);
}

#[test]
fn file_metadata_and_content() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    std::fs::write(&a, "x\n1\n").unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    set_mtime(&a, t0);
    let path = a.display().to_string();
    let meta = || fp::<CsvSource>(json!({"path": path}));
    let content = || fp::<CsvSource>(json!({"path": path, "fingerprint": "content"}));
    let (m0, c0) = (meta(), content());
    assert_eq!(m0, meta());
    assert_eq!(c0, content());
    let v = source(m0.clone());
    assert_eq!(v["files"][0]["bytes"], 4);
    assert_eq!(v["files"][0]["mtime_ns"], 1_700_000_000_000_000_000i64);
    assert!(source(c0.clone())["files"][0]["sha256"].is_string());

    // touching changes metadata, not content
    set_mtime(&a, t0 + Duration::from_secs(1));
    assert_ne!(meta(), m0);
    assert_eq!(content(), c0);
    assert!(source(c0.clone())["files"][0].get("mtime_ns").is_none());
    set_mtime(&a, t0);
    assert_eq!(meta(), m0);

    // same size and mtime, other bytes: only content sees it
    std::fs::write(&a, "x\n2\n").unwrap();
    set_mtime(&a, t0);
    assert_eq!(meta(), m0);
    assert_ne!(content(), c0);

    // appending a byte
    std::fs::write(&a, "x\n2\n3").unwrap();
    set_mtime(&a, t0);
    assert_ne!(meta(), m0);
}

#[test]
fn a_glob_gaining_a_file_changes_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p-1.jsonl"), "{\"a\":1}\n").unwrap();
    let pattern = dir.path().join("p-*.jsonl").display().to_string();
    let f0 = fp::<JsonlSource>(json!({"path": pattern}));
    assert_eq!(source(f0.clone())["files"].as_array().unwrap().len(), 1);
    std::fs::write(dir.path().join("p-2.jsonl"), "{\"a\":2}\n").unwrap();
    let f1 = fp::<JsonlSource>(json!({"path": pattern}));
    assert_eq!(source(f1.clone())["files"].as_array().unwrap().len(), 2);
    assert_ne!(f0, f1);
}

#[test]
fn a_missing_path_is_never() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("none-*.parquet").display().to_string();
    assert!(matches!(
        fp::<ParquetSource>(json!({"path": p})),
        Fingerprint::Never(_)
    ));
    let p = dir.path().join("none.csv").display().to_string();
    assert!(matches!(
        fp::<CsvSource>(json!({"path": p})),
        Fingerprint::Never(_)
    ));
}

#[test]
fn sqlite_fingerprint_query() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE orders (id INTEGER, amount REAL, note TEXT); INSERT INTO orders VALUES (1, 2.5, 'x');")
        .unwrap();
    let path = db.display().to_string();

    match fp::<SqliteSource>(json!({"path": path, "table": "orders"})) {
        Fingerprint::Never(why) => assert!(why.contains("fingerprint_query"), "{why}"),
        other => panic!("{other:?}"),
    }

    let q = "SELECT max(id), count(*), sum(amount), max(note) FROM orders";
    let cfg = json!({"path": path, "table": "orders", "fingerprint_query": q});
    let f0 = fp::<SqliteSource>(cfg.clone());
    let v = source(f0.clone());
    assert_eq!(v["query"], q);
    assert_eq!(v["rows"], json!([[1, 1, 2.5, "x"]]));
    assert!(v["file"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(f0, fp::<SqliteSource>(cfg.clone()));

    conn.execute("INSERT INTO orders VALUES (2, 1.0, 'y')", [])
        .unwrap();
    let f1 = fp::<SqliteSource>(cfg.clone());
    assert_ne!(f0, f1);
    assert_eq!(source(f1)["rows"], json!([[2, 2, 3.5, "y"]]));

    let bad = "SELECT nope FROM orders";
    let c: SqliteSource =
        serde_json::from_value(json!({"path": path, "table": "orders", "fingerprint_query": bad}))
            .unwrap();
    let e = c.fingerprint().unwrap_err().to_string();
    assert!(e.contains(bad), "{e}");
}

#[test]
fn postgres_without_fingerprint_query_is_never() {
    match fp::<PostgresSource>(json!({"dsn": "postgresql://u:secret@127.0.0.1:1/db", "table": "t"}))
    {
        Fingerprint::Never(why) => assert!(why.contains("fingerprint_query"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// Like tests/postgres.rs: skipped without a server unless `SEGFLOW_PG_DSN` is set.
#[test]
fn postgres_fingerprint_query() {
    let (dsn, explicit) = match std::env::var("SEGFLOW_PG_DSN") {
        Ok(d) if !d.trim().is_empty() => (d, true),
        _ => (
            "postgresql://segflow:segflow@127.0.0.1:54329/segflow".to_string(),
            false,
        ),
    };
    let mut config: postgres::Config = dsn.parse().unwrap();
    config.connect_timeout(Duration::from_secs(5));
    let mut client = match config.connect(postgres::NoTls) {
        Ok(c) => c,
        Err(e) if explicit => panic!("SEGFLOW_PG_DSN is set but the server is unreachable: {e}"),
        Err(_) => {
            println!("skipped: no PostgreSQL (set SEGFLOW_PG_DSN)");
            return;
        }
    };
    let table = format!("fp_orders_{}", std::process::id());
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int8, day date); \
             INSERT INTO {table} VALUES (1, '2024-01-02')"
        ))
        .unwrap();
    let q = format!("SELECT max(day), count(*), NULL::text FROM {table}");
    let cfg = json!({"dsn": dsn, "table": table, "fingerprint_query": q});
    let f0 = fp::<PostgresSource>(cfg.clone());
    assert_eq!(
        source(f0.clone())["rows"],
        json!([["2024-01-02", "1", null]])
    );
    assert_eq!(f0, fp::<PostgresSource>(cfg.clone()));
    client
        .batch_execute(&format!("INSERT INTO {table} VALUES (2, '2024-01-03')"))
        .unwrap();
    assert_ne!(f0, fp::<PostgresSource>(cfg.clone()));
    let bad = format!("SELECT nope FROM {table}");
    let c: PostgresSource =
        serde_json::from_value(json!({"dsn": dsn, "table": table, "fingerprint_query": bad}))
            .unwrap();
    let e = c.fingerprint().unwrap_err().to_string();
    assert!(e.contains(&bad), "{e}");
    client
        .batch_execute(&format!("DROP TABLE {table}"))
        .unwrap();
}
