//! `segflow plugin-host` (hidden): the child process of an isolated step.
//!
//! Reads a request and the step's inputs (Arrow IPC, mapped from the host's input file
//! or inline on stdin) from stdin, loads the component's library exactly as the host
//! does, calls the component's `run` as an in-process step would, and answers on the
//! protocol channel (the original stdout; fd 1 is pointed at stderr so a plugin's
//! prints cannot corrupt it): the outputs (Arrow IPC, into the answer file or inline),
//! the facts, or an error. Log events go to stderr as tagged lines. See
//! `segflow_engine::isolate`.

use segflow_engine::host::{CallOptions, HostServices, Registry, RegistryServices, Streams};
use segflow_engine::isolate::{self, StderrObserver};
use std::io::{BufReader, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Exit status when the request cannot be served at all (the host reports the
/// stderr text).
const EXIT_PROTOCOL: u8 = 3;

pub fn run() -> u8 {
    match serve() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("segflow plugin-host: {e}");
            EXIT_PROTOCOL
        }
    }
}

fn serve() -> Result<(), String> {
    let out = isolate::protocol_stdout()
        .map_err(|e| format!("cannot set up the protocol channel: {e}"))?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut input = BufReader::with_capacity(1 << 20, std::io::stdin());
    let req = isolate::read_request(&mut input)?;

    let mut registry = Registry::default();
    registry
        .load_file(&req.library)
        .map_err(|e| format!("cannot load `{}`: {}", req.library.display(), e.reason))?;
    let component = registry
        .components
        .iter()
        .find(|c| c.name == req.component)
        .cloned()
        .ok_or_else(|| {
            format!(
                "`{}` has no component `{}`",
                req.library.display(),
                req.component
            )
        })?;

    let mut call = CallOptions::new(&req.step_id);
    call.threads = req.threads;
    call.max_log_level = req.max_log_level;
    call.observer = Arc::new(StderrObserver);
    call.run_info = req.run_info.clone();
    call.services = Some(Arc::new(LazyServices {
        libraries: req.libraries.clone(),
        registry: OnceLock::new(),
    }));

    // SAFETY: the host made this descriptor for this process alone (`input_fd`).
    let input_file = req
        .input_fd
        .map(|fd| unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    let inputs = isolate::read_inputs(input, &req.inputs, input_file)?;
    // SAFETY: the host made this descriptor for this process alone (`answer_fd`).
    let mut answer_file = req
        .answer_fd
        .map(|fd| unsafe { isolate::AnswerFile::from_raw_fd(fd) });
    let io = |e: std::io::Error| format!("cannot write the answer: {e}");
    let protocol_fd = out.get_ref().as_raw_fd();
    match component.run(&call, &req.config, inputs) {
        Ok(output) => {
            // Tell the host the outputs begin (it times their transfer from here).
            out.write_all(b"B").and_then(|_| out.flush()).map_err(io)?;
            for (name, mut reader) in output.ports {
                if let Err(e) =
                    isolate::write_port(&mut out, answer_file.as_mut(), &name, reader.as_mut())
                {
                    let message = format!("output port `{name}` failed while streaming: {e}");
                    write_error(&mut out, &message, None, false)?;
                    isolate::exit_now(protocol_fd)
                }
            }
            let facts = serde_json::Value::Object(output.facts.get());
            isolate::write_frame(&mut out, b'F', facts.to_string().as_bytes()).map_err(io)?;
            out.write_all(b"D").map_err(io)?;
            out.flush().map_err(io)?;
            // Done: leave without freeing the step's tables one by one (the kernel takes
            // the whole address space back at once), so the host sees the exit sooner.
            isolate::exit_now(protocol_fd)
        }
        Err(e) => {
            write_error(&mut out, &e.message, e.field.as_deref(), e.panicked)?;
            isolate::exit_now(protocol_fd)
        }
    }
}

fn write_error(
    out: &mut impl Write,
    message: &str,
    field: Option<&str>,
    panicked: bool,
) -> Result<(), String> {
    let v = serde_json::json!({"message": message, "field": field, "panicked": panicked});
    isolate::write_frame(out, b'E', v.to_string().as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| format!("cannot write the answer: {e}"))
}

/// The host's `run_component` in the child: loads the other libraries on first use.
struct LazyServices {
    libraries: Vec<PathBuf>,
    registry: OnceLock<Arc<Registry>>,
}

impl HostServices for LazyServices {
    fn run_component(
        &self,
        caller: &CallOptions,
        name: &str,
        config: &serde_json::Value,
        inputs: Streams,
    ) -> Result<Streams, String> {
        let registry = self.registry.get_or_init(|| {
            let mut reg = Registry::default();
            for lib in &self.libraries {
                if let Err(e) = reg.load_file(lib) {
                    eprintln!(
                        "segflow plugin-host: cannot load `{}`: {}",
                        lib.display(),
                        e.reason
                    );
                }
            }
            Arc::new(reg)
        });
        RegistryServices {
            registry: registry.clone(),
        }
        .run_component(caller, name, config, inputs)
    }
}
