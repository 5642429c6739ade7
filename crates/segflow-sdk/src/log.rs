//! Routes the plugin's `tracing` events to the host's log callback.
//!
//! A cdylib carries its own copy of `tracing`, so the host's subscriber never sees the
//! plugin's events. The SDK installs a small global subscriber in the plugin that
//! forwards each event to the host of the call running on the current thread (a
//! thread-local set by the entry shims, by exported streams and by the step's pool).

use segflow_abi::SegflowHost;
use std::cell::Cell;
use std::ffi::CString;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Metadata, Subscriber};

thread_local! {
    static ROUTE: Cell<*const SegflowHost> = const { Cell::new(std::ptr::null()) };
}

/// Route this thread's events to `host` until the guard drops.
pub(crate) struct RouteGuard(*const SegflowHost);

impl RouteGuard {
    pub(crate) fn set(host: *const SegflowHost) -> Self {
        install();
        RouteGuard(ROUTE.with(|r| r.replace(host)))
    }
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        ROUTE.with(|r| r.set(self.0));
    }
}

pub(crate) fn build_pool(host: *const SegflowHost, threads: usize) -> rayon::ThreadPool {
    let addr = host as usize;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("segflow-plugin-{i}"))
        .start_handler(move |_| ROUTE.with(|r| r.set(addr as *const SegflowHost)))
        .build()
        .expect("building a thread pool")
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(HostSubscriber {
            next_id: AtomicU64::new(1),
        });
    });
}

fn level_to_abi(level: &Level) -> u32 {
    match *level {
        Level::ERROR => segflow_abi::LOG_ERROR,
        Level::WARN => segflow_abi::LOG_WARN,
        Level::INFO => segflow_abi::LOG_INFO,
        Level::DEBUG => segflow_abi::LOG_DEBUG,
        Level::TRACE => segflow_abi::LOG_TRACE,
    }
}

struct HostSubscriber {
    next_id: AtomicU64,
}

struct MessageVisitor {
    message: String,
    fields: String,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

impl Subscriber for HostSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let host = ROUTE.with(|r| r.get());
        if host.is_null() {
            return false;
        }
        // SAFETY: a route is only set while the host keeps the struct alive.
        let max = unsafe { (*host).max_log_level };
        level_to_abi(metadata.level()) <= max
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let host = ROUTE.with(|r| r.get());
        if host.is_null() {
            return;
        }
        let mut v = MessageVisitor {
            message: String::new(),
            fields: String::new(),
        };
        event.record(&mut v);
        let text = format!("{}{}", v.message, v.fields);
        let meta = event.metadata();
        let target = CString::new(meta.target()).unwrap_or_default();
        let msg = CString::new(text.replace('\0', " ")).unwrap_or_default();
        // SAFETY: as in `enabled`.
        unsafe {
            let h = &*host;
            (h.log)(
                h.ctx,
                level_to_abi(meta.level()),
                target.as_ptr(),
                msg.as_ptr(),
            );
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
