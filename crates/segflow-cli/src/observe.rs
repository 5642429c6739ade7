//! Logging and progress: a tracing subscriber (text or JSON lines on stderr) and the
//! engine observer that shows step progress — indicatif bars on a terminal, plain lines
//! otherwise.

use crate::LogFormat;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use segflow_engine::host::{forward_log, Observer};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;
use tracing_subscriber::EnvFilter;

pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("SEGFLOW_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,segflow=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .compact()
            .init(),
    }
}

/// The most verbose plugin log level worth forwarding, from `SEGFLOW_LOG`.
pub fn max_plugin_level() -> u32 {
    match std::env::var("SEGFLOW_LOG")
        .unwrap_or_default()
        .to_lowercase()
    {
        s if s.contains("trace") => segflow_abi::LOG_TRACE,
        s if s.contains("debug") => segflow_abi::LOG_DEBUG,
        _ => segflow_abi::LOG_INFO,
    }
}

pub struct CliObserver {
    bars: Option<MultiProgress>,
    active: Mutex<HashMap<String, (ProgressBar, Instant)>>,
    json: bool,
}

impl CliObserver {
    pub fn new(format: LogFormat) -> Self {
        let tty = std::io::stderr().is_terminal() && format == LogFormat::Text;
        CliObserver {
            bars: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            active: Mutex::new(HashMap::new()),
            json: format == LogFormat::Json,
        }
    }
}

impl Observer for CliObserver {
    fn log(&self, step: &str, level: u32, target: &str, message: &str) {
        match &self.bars {
            Some(b) => b.suspend(|| forward_log(step, level, target, message)),
            None => forward_log(step, level, target, message),
        }
    }

    fn progress(&self, step: &str, done: u64, total: u64, unit: &str) {
        if let Some((bar, _)) = self.active.lock().unwrap().get(step) {
            if total > 0 {
                bar.set_length(total);
            }
            bar.set_position(done);
            bar.set_message(format!("{step} ({unit})"));
        }
    }

    fn step_started(&self, step: &str, threads: usize) {
        match &self.bars {
            Some(m) => {
                let bar = m.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg:30} {human_pos:>12} {elapsed:>5}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(step.to_string());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                self.active
                    .lock()
                    .unwrap()
                    .insert(step.to_string(), (bar, Instant::now()));
            }
            None => {
                self.active
                    .lock()
                    .unwrap()
                    .insert(step.to_string(), (ProgressBar::hidden(), Instant::now()));
                if !self.json {
                    eprintln!(
                        "[segflow] {step}: started ({threads} thread{})",
                        if threads == 1 { "" } else { "s" }
                    );
                } else {
                    tracing::info!(step, threads, event = "step_started");
                }
            }
        }
    }

    fn step_finished(&self, step: &str, status: &str, message: Option<&str>) {
        let entry = self.active.lock().unwrap().remove(step);
        let secs = entry
            .as_ref()
            .map_or(0.0, |(_, t)| t.elapsed().as_secs_f64());
        if let Some((bar, _)) = &entry {
            bar.finish_and_clear();
        }
        let line = match message {
            Some(m) if status == "skipped" => format!("[segflow] {step}: skipped ({m})"),
            Some(m) if status != "succeeded" => {
                format!("[segflow] {step}: {status} after {secs:.2}s: {m}")
            }
            _ => format!("[segflow] {step}: {status} in {secs:.2}s"),
        };
        if self.json {
            tracing::info!(step, status, seconds = secs, event = "step_finished");
        } else {
            match &self.bars {
                Some(m) => {
                    let _ = m.println(line);
                }
                None => eprintln!("{line}"),
            }
        }
    }
}
