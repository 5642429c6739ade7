//! End-to-end tests of the `postgres` collector: the real binary against a real
//! PostgreSQL server at `SEGFLOW_PG_DSN` (.ci/postgres.sh starts one and sets it).
//!
//! Without `SEGFLOW_PG_DSN` and with no server at the default DSN, the tests that need a
//! server print "skipped: no PostgreSQL (set SEGFLOW_PG_DSN)" and pass. With the variable
//! set, an unreachable server is a failure, so CI never skips silently.

mod common;
use arrow::array::Array;
use arrow::datatypes::{DataType, TimeUnit};
use common::*;
use std::path::{Path, PathBuf};

const DEFAULT_DSN: &str = "postgresql://segflow:segflow@127.0.0.1:54329/segflow";

/// A connection for setting up test tables, or `None` (after printing the skip line)
/// when no server is configured or reachable.
fn server() -> Option<(String, postgres::Client)> {
    let (dsn, explicit) = match std::env::var("SEGFLOW_PG_DSN") {
        Ok(d) if !d.trim().is_empty() => (d, true),
        _ => (DEFAULT_DSN.to_string(), false),
    };
    let mut config: postgres::Config = dsn.parse().expect("SEGFLOW_PG_DSN is a valid DSN");
    config.connect_timeout(std::time::Duration::from_secs(5));
    match config.connect(postgres::NoTls) {
        Ok(c) => Some((dsn, c)),
        Err(e) if explicit => panic!("SEGFLOW_PG_DSN is set but the server is unreachable: {e}"),
        Err(_) => {
            println!("skipped: no PostgreSQL (set SEGFLOW_PG_DSN)");
            None
        }
    }
}

/// A table name unique to this test process and `tag`, dropped when the guard goes.
struct TempTable {
    name: String,
    dsn: String,
}

impl TempTable {
    fn new(client: &mut postgres::Client, dsn: &str, tag: &str, ddl: &str) -> Self {
        let name = format!("segflow_test_{tag}_{}", std::process::id());
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} ({ddl})"
            ))
            .unwrap();
        TempTable {
            name,
            dsn: dsn.to_string(),
        }
    }
}

impl Drop for TempTable {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.dsn, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP TABLE IF EXISTS {}", self.name));
        }
    }
}

fn write_pipeline(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, yaml).unwrap();
    p
}

fn run_pipeline(dsn: &str, pipeline: &Path, out: &Path) -> Run {
    run(segflow()
        .env("PG_DSN", dsn)
        .arg("run")
        .arg(pipeline)
        .arg("--out")
        .arg(out))
}

fn facts(out: &Path, step: &str) -> serde_json::Value {
    read_json(&out.join(format!("steps/{step}/facts.json")))
}

#[test]
fn a_table_with_every_mapped_type_is_read() {
    let Some((dsn, mut c)) = server() else { return };
    let t = TempTable::new(
        &mut c,
        &dsn,
        "types",
        "i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, num numeric(12,3), t text, \
         vc varchar(10), bp char(3), b bool, d date, ts timestamp, tz timestamptz, u uuid, \
         j json, jb jsonb",
    );
    c.batch_execute(&format!(
        "INSERT INTO {} VALUES \
         (1, 100000, 9000000000, 1.5, 2.25, 1234.567, 'héllo', 'v', 'ab', true, \
          '2024-02-29', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05+02', \
          'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{\"a\": 1}}', '{{\"b\": [1, 2]}}'), \
         (-2, -5, -7, -0.5, -1e300, -0.001, '', 'w', 'xyz', false, \
          '1969-12-31', '1900-01-01 00:00:00', '1970-01-01 00:00:00+00', \
          '00000000-0000-0000-0000-000000000000', 'null', '\"s\"'), \
         (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
          NULL, NULL, NULL, NULL, NULL, NULL)",
        t.name
    ))
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let p = write_pipeline(
        tmp.path(),
        "types",
        &format!(
            "name: pg_types\nsteps:\n  - id: rows\n    stage: collect\n    plugin: postgres\n    \
             with: {{ dsn: \"${{PG_DSN}}\", table: {}, batch_size: 2 }}\n",
            t.name
        ),
    );
    let out = tmp.path().join("out");
    let r = run_pipeline(&dsn, &p, &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let b = parquet_table(&out.join("steps/rows/main.parquet"));
    assert_eq!(b.num_rows(), 3);
    let want = [
        ("i2", DataType::Int16),
        ("i4", DataType::Int32),
        ("i8", DataType::Int64),
        ("f4", DataType::Float32),
        ("f8", DataType::Float64),
        ("num", DataType::Float64),
        ("t", DataType::Utf8),
        ("vc", DataType::Utf8),
        ("bp", DataType::Utf8),
        ("b", DataType::Boolean),
        ("d", DataType::Date32),
        ("ts", DataType::Timestamp(TimeUnit::Microsecond, None)),
        (
            "tz",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        ),
        ("u", DataType::Utf8),
        ("j", DataType::Utf8),
        ("jb", DataType::Utf8),
    ];
    let schema = b.schema();
    let got: Vec<(String, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    let want: Vec<(String, DataType)> = want
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    assert_eq!(got, want);

    // Every value, as text: the third row is all nulls.
    let fmt = arrow::util::display::ArrayFormatter::try_new;
    let opts = arrow::util::display::FormatOptions::default().with_null("NULL");
    let row = |i: usize| -> Vec<String> {
        b.columns()
            .iter()
            .map(|c| fmt(c.as_ref(), &opts).unwrap().value(i).to_string())
            .collect()
    };
    assert_eq!(
        row(0),
        [
            "1",
            "100000",
            "9000000000",
            "1.5",
            "2.25",
            "1234.567",
            "héllo",
            "v",
            "ab ",
            "true",
            "2024-02-29",
            "2024-01-02T03:04:05.123456",
            "2024-01-02T01:04:05Z",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "{\"a\": 1}",
            "{\"b\": [1, 2]}",
        ]
    );
    assert_eq!(
        row(1),
        [
            "-2",
            "-5",
            "-7",
            "-0.5",
            "-1e300",
            "-0.001",
            "",
            "w",
            "xyz",
            "false",
            "1969-12-31",
            "1900-01-01T00:00:00",
            "1970-01-01T00:00:00Z",
            "00000000-0000-0000-0000-000000000000",
            "null",
            "\"s\"",
        ]
    );
    assert!(b.columns().iter().all(|c| c.is_null(2)));

    let f = facts(&out, "rows");
    assert_eq!(f["source"], t.name.as_str());
    assert_eq!(f["rows"], 3);
    assert_eq!(f["retries"], 0);
    assert!(f["bytes_read"].as_u64().unwrap() > 100);
    let text = std::fs::read_to_string(out.join("steps/rows/facts.json")).unwrap();
    assert!(
        !text.contains("postgresql://"),
        "facts hold the DSN: {text}"
    );
}

#[test]
fn unsupported_types_are_named_at_validate() {
    let Some((dsn, mut c)) = server() else { return };
    let t = TempTable::new(&mut c, &dsn, "unsupported", "id int4, spot point");
    let tmp = tempfile::tempdir().unwrap();
    let p = write_pipeline(
        tmp.path(),
        "unsupported",
        &format!(
            "name: pg_unsupported\nsteps:\n  - id: rows\n    stage: collect\n    plugin: postgres\n    \
             with: {{ dsn: \"${{PG_DSN}}\", table: {} }}\n",
            t.name
        ),
    );
    let r = run(segflow().env("PG_DSN", &dsn).arg("validate").arg(&p));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("`spot`") && r.stderr.contains("point"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_query_with_named_parameters_is_bound_server_side() {
    let Some((dsn, mut c)) = server() else { return };
    let t = TempTable::new(&mut c, &dsn, "params", "id int4, name text, day date");
    c.batch_execute(&format!(
        "INSERT INTO {} SELECT g, 'n' || g, DATE '2024-01-01' + g FROM generate_series(1, 200) g",
        t.name
    ))
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // `:min` is used twice; `'::text'` and `::date` are not parameters; the quote in
    // `skip` would break the SQL if it were pasted in.
    let p = write_pipeline(
        tmp.path(),
        "params",
        &format!(
            "name: pg_params\nsteps:\n  - id: rows\n    stage: collect\n    plugin: postgres\n    \
             with:\n      dsn: \"${{PG_DSN}}\"\n      query: >-\n        SELECT id, name, ':min' AS lit, \
             day::date AS day FROM {} WHERE id >= :min AND id < :min + 10 AND name <> :skip \
             AND day >= :from ORDER BY id\n      params: {{ min: 100, skip: \"n105' OR 'x'='x\", \
             from: \"2024-01-01\" }}\n      batch_size: 3\n",
            t.name
        ),
    );
    let out = tmp.path().join("out");
    let r = run_pipeline(&dsn, &p, &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let b = parquet_table(&out.join("steps/rows/main.parquet"));
    let ids = arrow::compute::cast(b.column(0), &DataType::Int64).unwrap();
    let ids = ids
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    assert_eq!(ids.values().to_vec(), (100..110).collect::<Vec<i64>>());
    let lit = b.column(2);
    assert_eq!(
        arrow::util::display::ArrayFormatter::try_new(lit.as_ref(), &Default::default())
            .unwrap()
            .value(0)
            .to_string(),
        ":min"
    );
    let f = facts(&out, "rows");
    assert_eq!(f["source"], "query");
    assert_eq!(f["rows"], 10);

    // The string that looks like an injection is a value: it matches no row.
    let p2 = write_pipeline(
        tmp.path(),
        "params2",
        &format!(
            "name: pg_params2\nsteps:\n  - id: rows\n    stage: collect\n    plugin: postgres\n    \
             with:\n      dsn: \"${{PG_DSN}}\"\n      query: SELECT id FROM {} WHERE name = :n\n      \
             params: {{ n: \"x' OR '1'='1\" }}\n",
            t.name
        ),
    );
    let out2 = tmp.path().join("out2");
    let r = run_pipeline(&dsn, &p2, &out2);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(facts(&out2, "rows")["rows"], 0);

    // A parameter without a value is a config error naming `query`.
    let p3 = write_pipeline(
        tmp.path(),
        "params3",
        &format!(
            "name: pg_params3\nsteps:\n  - id: rows\n    stage: collect\n    plugin: postgres\n    \
             with:\n      dsn: \"${{PG_DSN}}\"\n      query: SELECT id FROM {} WHERE id = :nope\n",
            t.name
        ),
    );
    let r = run(segflow().env("PG_DSN", &dsn).arg("validate").arg(&p3));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(":nope"), "{}", r.stderr);
}

/// Runs postgres → customer_features and postgres with `aggregate:` over the same table
/// and checks the two `main` outputs are identical.
fn compare_pushdown(dsn: &str, table: &str, key: &str, date: &str, amount: &str, as_of: &str) {
    compare_pushdown_with(dsn, table, key, date, amount, as_of, "");
}

/// `compare_pushdown` with more `aggregate:` settings (`extra`, starting with a comma);
/// returns the facts of the pushdown step.
fn compare_pushdown_with(
    dsn: &str,
    table: &str,
    key: &str,
    date: &str,
    amount: &str,
    as_of: &str,
    extra: &str,
) -> serde_json::Value {
    let tmp = tempfile::tempdir().unwrap();
    let local = write_pipeline(
        tmp.path(),
        "local",
        &format!(
            "name: pg_local\nsteps:\n  - id: tx\n    stage: collect\n    plugin: postgres\n    \
             with: {{ dsn: \"${{PG_DSN}}\", table: {table}, batch_size: 1000 }}\n  \
             - id: features\n    stage: clean\n    plugin: customer_features\n    needs: [tx]\n    \
             with: {{ key: {key}, date: {date}, amount: {amount}, as_of: \"{as_of}\" }}\n"
        ),
    );
    let pushed = write_pipeline(
        tmp.path(),
        "pushed",
        &format!(
            "name: pg_pushed\nsteps:\n  - id: features\n    stage: collect\n    plugin: postgres\n    \
             with:\n      dsn: \"${{PG_DSN}}\"\n      table: {table}\n      batch_size: 500\n      \
             aggregate: {{ key: {key}, date: {date}, amount: {amount}, as_of: \"{as_of}\"{extra} }}\n"
        ),
    );
    let out_l = tmp.path().join("local_out");
    let out_p = tmp.path().join("pushed_out");
    let r = run_pipeline(dsn, &local, &out_l);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run_pipeline(dsn, &pushed, &out_p);
    assert_eq!(r.code, 0, "{}", r.stderr);

    let a = parquet_table(&out_l.join("steps/features/main.parquet"));
    let b = parquet_table(&out_p.join("steps/features/main.parquet"));
    assert!(a.num_rows() > 100, "{} customers", a.num_rows());
    assert_eq!(a.schema(), b.schema());
    assert_eq!(a.num_rows(), b.num_rows());
    for (i, f) in a.schema().fields().iter().enumerate() {
        assert_eq!(
            a.column(i).to_data(),
            b.column(i).to_data(),
            "column {} differs",
            f.name()
        );
    }

    let fl = facts(&out_l, "features");
    let fp = facts(&out_p, "features");
    assert_eq!(fp["rows_in"], fl["rows_in"]);
    assert_eq!(fp["rows_used"], fl["rows_used"]);
    assert_eq!(fp["rows_excluded"], fl["rows_quarantined"]);
    assert_eq!(fp["excluded_reasons"], fl["quarantine_reasons"]);
    assert_eq!(fp["customers"], fl["customers"]);
    assert_eq!(fp["source"], table);
    fp
}

#[test]
fn aggregate_pushdown_equals_customer_features() {
    let Some((dsn, mut c)) = server() else { return };
    // Integer keys, date column, numeric amounts in quarters (sums are exact in any
    // order), with null keys, dates and amounts, a NaN, and rows after as_of.
    let t = TempTable::new(
        &mut c,
        &dsn,
        "agg_int",
        "customer_id int8, date date, amount numeric",
    );
    c.batch_execute(&format!(
        "INSERT INTO {t} \
         SELECT (g * 7919) % 1500, DATE '2023-01-01' + ((g * 104729) % 700), \
                ((g * 31) % 4000) / 4.0 - 100 \
         FROM generate_series(1, 20000) g; \
         INSERT INTO {t} VALUES (NULL, '2023-05-01', 1), (7, NULL, 1), (8, '2023-05-01', NULL), \
                (9, '2023-05-01', 'NaN'), (10, '2023-05-01', 'NaN')",
        t = t.name
    ))
    .unwrap();
    compare_pushdown(&dsn, &t.name, "customer_id", "date", "amount", "2024-06-30");

    // Text keys (sorted bytewise), timestamptz dates (UTC day), float8 amounts.
    let t2 = TempTable::new(
        &mut c,
        &dsn,
        "agg_text",
        "cust varchar(20), ts timestamptz, amt float8",
    );
    c.batch_execute(&format!(
        "INSERT INTO {t} \
         SELECT CASE WHEN g % 3 = 0 THEN 'Z' ELSE 'a' END || ((g * 7919) % 900)::text, \
                TIMESTAMPTZ '2023-01-01 00:00:00+00' + ((g * 104729) % 40000) * INTERVAL '37 minutes', \
                ((g * 13) % 800) * 0.5 \
         FROM generate_series(1, 15000) g; \
         INSERT INTO {t} VALUES ('é1', '2023-02-01 23:30:00-05', 3), ('b', NULL, 2), \
                ('b', '2023-02-01', 'Infinity')",
        t = t2.name
    ))
    .unwrap();
    compare_pushdown(&dsn, &t2.name, "cust", "ts", "amt", "2023-12-31");
}

#[test]
fn aggregate_pushdown_in_key_partitions_equals_customer_features() {
    let Some((dsn, mut c)) = server() else { return };
    // Parallel costs at zero, so that tables this small get the parallel plan too.
    let parts = ", partitions: 3, settings: { parallel_setup_cost: 0, parallel_tuple_cost: 0 }";
    // Negative keys, all the reasons to leave a row out, and customers whose every row
    // is left out (8, 9: absent from both outputs).
    let t = TempTable::new(
        &mut c,
        &dsn,
        "agg_parts",
        "customer_id int4, date date, amount float8",
    );
    c.batch_execute(&format!(
        "INSERT INTO {t} \
         SELECT (g * 7919) % 1500 - 700, DATE '2023-01-01' + ((g * 104729) % 700), \
                ((g * 31) % 4000) / 4.0 - 100 \
         FROM generate_series(1, 20000) g; \
         INSERT INTO {t} VALUES (NULL, '2023-05-01', 1), (7, NULL, 1), (7, '2023-05-01', NULL), \
                (8, '2023-05-01', 'NaN'), (8, '2025-05-01', 2), (9, '2023-05-01', '-Infinity'), \
                (9, NULL, NULL), (NULL, NULL, NULL)",
        t = t.name
    ))
    .unwrap();
    let f = compare_pushdown_with(
        &dsn,
        &t.name,
        "customer_id",
        "date",
        "amount",
        "2024-06-30",
        parts,
    );
    assert_eq!(f["partitions"], 3, "{f}");
    assert_eq!(f["excluded_reasons"]["null_key"], 2, "{f}");

    // When the server would not run the parts side by side, one statement does it all.
    let f = compare_pushdown_with(
        &dsn,
        &t.name,
        "customer_id",
        "date",
        "amount",
        "2024-06-30",
        ", partitions: 3, settings: { max_parallel_workers_per_gather: 0 }",
    );
    assert_eq!(f["partitions"], 1, "{f}");

    // Text keys (parts by hashtext, sorted bytewise), timestamptz dates.
    let t2 = TempTable::new(
        &mut c,
        &dsn,
        "agg_parts_text",
        "cust text, ts timestamptz, amt numeric",
    );
    c.batch_execute(&format!(
        "INSERT INTO {t} \
         SELECT CASE WHEN g % 3 = 0 THEN 'Z' ELSE 'a' END || ((g * 7919) % 900)::text, \
                TIMESTAMPTZ '2023-01-01 00:00:00+00' + ((g * 104729) % 40000) * INTERVAL '37 minutes', \
                ((g * 13) % 800) * 0.25 \
         FROM generate_series(1, 15000) g; \
         INSERT INTO {t} VALUES ('é1', '2023-02-01 23:30:00-05', 3), ('b', NULL, 2)",
        t = t2.name
    ))
    .unwrap();
    let f = compare_pushdown_with(&dsn, &t2.name, "cust", "ts", "amt", "2023-12-31", parts);
    assert_eq!(f["partitions"], 3, "{f}");

    // uuid keys (parts by uuid_hash), read as lower-case text by both.
    let t3 = TempTable::new(
        &mut c,
        &dsn,
        "agg_parts_uuid",
        "id uuid, day date, amount int4",
    );
    c.batch_execute(&format!(
        "INSERT INTO {t} \
         SELECT md5(((g * 7919) % 700)::text)::uuid, DATE '2023-01-01' + ((g * 104729) % 500), \
                (g * 31) % 400 \
         FROM generate_series(1, 10000) g",
        t = t3.name
    ))
    .unwrap();
    let f = compare_pushdown_with(&dsn, &t3.name, "id", "day", "amount", "2024-03-01", parts);
    assert_eq!(f["partitions"], 3, "{f}");
}

#[test]
fn a_refused_connection_fails_without_printing_the_password() {
    // Needs no server: nothing listens on port 1.
    let secret = format!("pw{}secret", std::process::id());
    let dsn = format!("postgresql://segflow:{secret}@127.0.0.1:1/segflow");
    let tmp = tempfile::tempdir().unwrap();
    let p = write_pipeline(
        tmp.path(),
        "refused",
        "name: pg_refused\nsteps:\n  - id: rows\n    stage: collect\n    plugin: postgres\n    \
         with: { dsn: \"${PG_DSN}\", table: orders, retries: 1 }\n",
    );
    let r = run(segflow().env("PG_DSN", &dsn).arg("validate").arg(&p));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("127.0.0.1:1"), "{}", r.stderr);
    assert!(r.stderr.contains("dsn"), "{}", r.stderr);
    assert!(
        !r.stderr.contains(&secret) && !r.stdout.contains(&secret),
        "{}",
        r.stderr
    );

    let out = tmp.path().join("out");
    let r = run_pipeline(&dsn, &p, &out);
    assert_eq!(
        r.code, 1,
        "a refused connection is a failed step: {}",
        r.stderr
    );
    assert!(
        !r.stderr.contains(&secret) && !r.stdout.contains(&secret),
        "{}",
        r.stderr
    );

    // The key=value form, written straight into the YAML, and a password with a
    // percent-encoded character.
    let kv = write_pipeline(
        tmp.path(),
        "refused_kv",
        "name: pg_refused_kv\nsteps:\n  - id: rows\n    stage: collect\n    plugin: postgres\n    \
         with: { dsn: \"${PG_DSN}\", table: orders, retries: 0 }\n",
    );
    let kv_dsn = format!("host=127.0.0.1 port=1 user=u password='{secret}' dbname=x");
    let r = run(segflow().env("PG_DSN", &kv_dsn).arg("validate").arg(&kv));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(!r.stderr.contains(&secret), "{}", r.stderr);
}

#[test]
fn a_missing_table_fails_validation_naming_it() {
    let Some((dsn, _c)) = server() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let p = write_pipeline(
        tmp.path(),
        "missing",
        "name: pg_missing\nsteps:\n  - id: rows\n    stage: collect\n    plugin: postgres\n    \
         with: { dsn: \"${PG_DSN}\", table: no_such_table_segflow }\n",
    );
    let r = run(segflow().env("PG_DSN", &dsn).arg("validate").arg(&p));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no_such_table_segflow"), "{}", r.stderr);
    assert!(r.stderr.contains("table"), "{}", r.stderr);
    if let Some(pw) = dsn_password_for_test(&dsn) {
        assert!(!r.stderr.contains(&pw), "{}", r.stderr);
    }
}

fn dsn_password_for_test(dsn: &str) -> Option<String> {
    let rest = dsn.split_once("://")?.1;
    let userinfo = rest.split('@').next()?;
    let pw = userinfo.split_once(':')?.1;
    (pw.len() >= 4).then(|| pw.to_string())
}

#[test]
fn a_query_failing_mid_stream_fails_the_run() {
    let Some((dsn, _c)) = server() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let p = write_pipeline(
        tmp.path(),
        "midstream",
        "name: pg_midstream\nsteps:\n  - id: rows\n    stage: collect\n    plugin: postgres\n    \
         with:\n      dsn: \"${PG_DSN}\"\n      query: SELECT 1 / (g - 5) AS x FROM generate_series(1, 10) g\n      \
         batch_size: 2\n",
    );
    let out = tmp.path().join("out");
    let r = run_pipeline(&dsn, &p, &out);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("division by zero"), "{}", r.stderr);
    if let Some(pw) = dsn_password_for_test(&dsn) {
        assert!(!r.stderr.contains(&pw), "{}", r.stderr);
    }
}
