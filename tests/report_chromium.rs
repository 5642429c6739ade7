//! The HTML report in a real browser: run a pipeline that ends in a `report` step
//! through the real `segflow` binary, then load `report.html` in headless Chromium and
//! check that it renders with no console messages at all (no script errors, no failed
//! loads: the page fetches nothing), that the DOM Chromium built has every section the
//! run feeds, that a screenshot shows charts (not a blank page), and that it prints to
//! PDF.
//!
//! Chromium is looked up as `chromium`, `chromium-browser`, `google-chrome` and
//! `google-chrome-stable` on `PATH`. Without one the test prints a notice and passes,
//! unless `SEGFLOW_REQUIRE_CHROMIUM=1` (CI sets it after installing Debian's
//! `chromium`), where it fails.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BROWSERS: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

fn find_browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    BROWSERS.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The browser, or `None` after printing why the test is skipped.
fn browser_or_skip() -> Option<PathBuf> {
    match find_browser() {
        Some(b) => Some(b),
        None if std::env::var("SEGFLOW_REQUIRE_CHROMIUM").as_deref() == Ok("1") => panic!(
            "SEGFLOW_REQUIRE_CHROMIUM=1 but none of {BROWSERS:?} is on PATH: install Debian's `chromium` (apt-get install -y chromium)"
        ),
        None => {
            eprintln!(
                "SKIPPED report_chromium: no headless browser ({}) on PATH; install Debian's `chromium` to run it, or set SEGFLOW_REQUIRE_CHROMIUM=1 to make this a failure",
                BROWSERS.join(", ")
            );
            None
        }
    }
}

/// The pipeline to run: the quickstart once it ends in a report, else ours.
fn pipeline() -> &'static str {
    let quickstart = repo_root().join("pipelines/quickstart.yaml");
    let text = std::fs::read_to_string(&quickstart).unwrap_or_default();
    if text.contains("plugin: report") {
        "pipelines/quickstart.yaml"
    } else {
        "tests/pipelines/report.yaml"
    }
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Run the browser with `args`, killing it after two minutes.
fn chromium(browser: &Path, profile: &Path, args: &[String]) -> Output {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    // read the pipes on threads so a chatty browser cannot block on a full pipe
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for the browser") {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    assert!(
        status.is_some(),
        "{} did not finish within 120 s:\n{stderr}",
        browser.display()
    );
    Output {
        ok: status.is_some_and(|s| s.success()),
        stdout,
        stderr,
    }
}

/// Console messages (any level) and uncaught errors in the browser's log.
fn console_problems(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// Luminance statistics of an RGB(A) PNG: (width, height, variance, share of pixels that
/// are not near-white, number of distinct coarse colours).
fn png_stats(path: &Path) -> (u32, u32, f64, f64, usize) {
    let file = std::fs::File::open(path).unwrap();
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "8-bit screenshot");
    let px = &buf[..info.buffer_size()];
    let n = (info.width * info.height) as usize;
    let (mut sum, mut sum2, mut dark) = (0.0f64, 0.0f64, 0usize);
    let mut colours = std::collections::HashSet::new();
    for p in px.chunks_exact(channels) {
        let (r, g, b) = if channels >= 3 {
            (p[0], p[1], p[2])
        } else {
            (p[0], p[0], p[0])
        };
        let l = 0.2126 * r as f64 + 0.7152 * g as f64 + 0.0722 * b as f64;
        sum += l;
        sum2 += l * l;
        if l < 235.0 {
            dark += 1;
        }
        colours.insert((r >> 4, g >> 4, b >> 4));
    }
    let mean = sum / n as f64;
    (
        info.width,
        info.height,
        sum2 / n as f64 - mean * mean,
        dark as f64 / n as f64,
        colours.len(),
    )
}

#[test]
fn the_report_renders_in_headless_chromium() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    for lib in ["segflow_position", "segflow_evaluate", "segflow_segment"] {
        let p = plugin_dir().join(format!("lib{lib}.{}", std::env::consts::DLL_EXTENSION));
        assert!(
            p.exists(),
            "{} is missing: run `cargo build --workspace` before `cargo test`",
            p.display()
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let pipeline = pipeline();
    let r = run(segflow().args(["run", pipeline, "--out"]).arg(&out));
    assert_eq!(r.code, 0, "{pipeline}:\n{}\n{}", r.stdout, r.stderr);
    let report = out.join("report.html");
    let html = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (does {pipeline} end in a report step?)",
            report.display()
        )
    });
    assert!(
        html.len() > 20_000,
        "report.html is only {} bytes",
        html.len()
    );
    for bad in ["http://", "https://"] {
        assert!(!html.contains(bad), "report.html refers to `{bad}`");
    }
    let url = format!("file://{}", report.display());
    let profile = tmp.path().join("chromium-profile");

    // 1. the DOM Chromium built, and its console
    let dom = chromium(&browser, &profile, &["--dump-dom".into(), url.clone()]);
    assert!(dom.ok, "--dump-dom failed:\n{}", dom.stderr);
    let problems = console_problems(&dom.stderr);
    assert!(
        problems.is_empty(),
        "console output while loading the report:\n{}",
        problems.join("\n")
    );
    for heading in [
        "Pipeline",
        "Data quality and quarantine",
        "Segment sizes",
        "Profile heatmap",
        "RFM grid",
        "Positioning map",
        "Personas",
        "Playbook",
    ] {
        assert!(
            dom.stdout.contains(&format!("<h2>{heading}</h2>")),
            "the rendered DOM has no section {heading}"
        );
    }
    let charts = dom.stdout.matches("<svg class=\"chart\"").count();
    assert!(charts >= 5, "only {charts} charts in the rendered DOM");

    // 2. a screenshot that shows something
    let shot = tmp.path().join("report.png");
    let s = chromium(
        &browser,
        &profile,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
            url.clone(),
        ],
    );
    assert!(s.ok, "--screenshot failed:\n{}", s.stderr);
    let problems = console_problems(&s.stderr);
    assert!(
        problems.is_empty(),
        "console output while rendering:\n{}",
        problems.join("\n")
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 30_000, "the screenshot is only {size} bytes");
    let (w, h, variance, inked, colours) = png_stats(&shot);
    println!(
        "screenshot {w}x{h}, {size} bytes: luminance variance {variance:.0}, {:.1}% not white, {colours} colours",
        100.0 * inked
    );
    assert_eq!((w, h), (1280, 2000));
    assert!(
        variance > 200.0,
        "the screenshot looks blank (variance {variance})"
    );
    assert!(
        inked > 0.03,
        "only {:.1}% of the screenshot is drawn",
        100.0 * inked
    );
    assert!(
        colours > 40,
        "only {colours} colours: the charts did not render"
    );
    if let Ok(dir) = std::env::var("SEGFLOW_REPORT_SCREENSHOT") {
        let _ = std::fs::copy(&shot, Path::new(&dir).join("report.png"));
    }

    // 3. it prints
    let pdf = tmp.path().join("report.pdf");
    let p = chromium(
        &browser,
        &profile,
        &[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".into(),
            url,
        ],
    );
    assert!(p.ok, "--print-to-pdf failed:\n{}", p.stderr);
    let bytes = std::fs::read(&pdf).unwrap_or_default();
    assert!(bytes.starts_with(b"%PDF"), "no PDF written");
    assert!(
        bytes.len() > 50_000,
        "the PDF is only {} bytes",
        bytes.len()
    );
}
