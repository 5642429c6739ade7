//! `segflow cache stats|gc|clear`: look after the step cache.

use crate::{Failure, EXIT_INVALID};
use segflow_engine::cache::{self, Cache, Removed};
use segflow_engine::diag::Diagnostic;
use std::path::{Path, PathBuf};

/// `--cache-dir`, else `$SEGFLOW_CACHE_DIR`, else `.segflow/cache`.
pub fn cache_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("SEGFLOW_CACHE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(cache::DEFAULT_DIR))
}

pub fn stats(dir: &Path, verify: bool, json: bool) -> Result<u8, Failure> {
    let Some(cache) = Cache::existing(dir) else {
        if json {
            println!(
                "{}",
                serde_json::json!({"root": dir.display().to_string(), "entries": 0, "bytes": 0})
            );
        } else {
            println!(
                "no step cache at {} (it is created by the first run)",
                dir.display()
            );
        }
        return Ok(0);
    };
    let st = cache.stats(verify);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&st).expect("stats serialise")
        );
    } else {
        println!("cache      {}", st.root);
        println!("entries    {}", st.entries);
        println!("size       {}", human(st.bytes));
        if let (Some(o), Some(n)) = (&st.oldest_use, &st.newest_use) {
            println!("last used  {o} .. {n}");
        }
        if st.unfinished > 0 {
            println!(
                "unfinished {} (being written, or left by a process that died; gc removes those older than an hour)",
                st.unfinished
            );
        }
        if !st.by_step.is_empty() {
            println!();
            println!("{:<40} {:>8} {:>10}", "pipeline/step", "entries", "size");
            for (label, (n, bytes)) in &st.by_step {
                println!("{label:<40} {n:>8} {:>10}", human(*bytes));
            }
        }
        if verify {
            println!();
            if st.damaged.is_empty() {
                println!("verified: every file matches its checksum");
            } else {
                println!("damaged entries (the next run that needs one removes and rebuilds it):");
                for d in &st.damaged {
                    println!("  {d}");
                }
            }
        }
    }
    Ok(if st.damaged.is_empty() { 0 } else { 1 })
}

pub fn gc(dir: &Path, max_size: &str) -> Result<u8, Failure> {
    let max = cache::parse_size(max_size).map_err(|e| {
        Failure::one(
            EXIT_INVALID,
            Diagnostic::new("segflow::usage", format!("--max-size: {e}")),
        )
    })?;
    let Some(cache) = Cache::existing(dir) else {
        println!("no step cache at {}; nothing to do", dir.display());
        return Ok(0);
    };
    let removed = cache.gc(max);
    print_removed(&removed, &format!("to fit in {}", human(max)));
    Ok(0)
}

pub fn clear(dir: &Path) -> Result<u8, Failure> {
    let Some(cache) = Cache::existing(dir) else {
        println!("no step cache at {}; nothing to do", dir.display());
        return Ok(0);
    };
    let removed = cache.clear();
    print_removed(&removed, "");
    Ok(0)
}

fn print_removed(r: &Removed, why: &str) {
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" {why}")
    };
    println!(
        "removed {} entries ({}){why}; {} entries ({}) remain",
        r.entries,
        human(r.bytes),
        r.remaining_entries,
        human(r.remaining_bytes)
    );
    if r.busy > 0 {
        println!(
            "kept {} entries that a running pipeline is reading; run gc again later",
            r.busy
        );
    }
}

/// Bytes in powers of 1000, as `--max-size` reads them.
fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}
