//! Pinning plugin libraries with a lock file, and refusing plugin files that other users
//! can write.
//!
//! `segflow lock PIPELINE.yaml` writes `PIPELINE.lock` next to the pipeline: a JSON
//! document listing every library the pipeline's steps resolve to, with its name,
//! version, path, sha256, SDK version and the components the pipeline uses from it.
//! When the lock exists, `segflow run` and `segflow validate` refuse a library whose
//! sha256 differs from its entry, and a used library the lock does not list. Libraries
//! are matched by *name*: the path is recorded for the reader (it differs between
//! machines), the sha256 is what is enforced.
//!
//! Trust (Unix only): a scanned plugin directory, or a library file, that users other
//! than the current one can write is refused at load. "Other users can write" means the
//! permission bits grant write to everyone (`o+w`), or to a group other than the
//! process's effective (primary) group (`g+w`). The owner is not checked, only the bits.
//! The directory holding a library file counts too, unless it is sticky (like `/tmp`),
//! where other users cannot replace files they do not own.

use crate::host::{Library, Registry, Resolution};
use crate::spec::PipelineSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Version of the lock file format.
pub const LOCK_VERSION: u32 = 1;

/// The contents of `PIPELINE.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFile {
    /// Format version ([`LOCK_VERSION`]).
    pub lock_version: u32,
    /// The pipeline's `name:`.
    pub pipeline: String,
    /// The segflow that wrote the lock.
    pub segflow_version: String,
    /// Every library the pipeline uses, sorted by name.
    pub libraries: Vec<LockedLibrary>,
}

/// One pinned library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedLibrary {
    pub name: String,
    pub version: String,
    /// Where the library was loaded from when the lock was written (informative).
    pub path: String,
    /// sha256 of the library file (hex): what is enforced.
    pub sha256: String,
    pub sdk_version: String,
    /// Components of this library the pipeline's steps use, sorted.
    pub components: Vec<String>,
}

/// A library a pipeline uses, and which of its components and steps.
#[derive(Debug, Clone)]
pub struct UsedLibrary {
    pub library: Arc<Library>,
    pub components: Vec<String>,
    pub steps: Vec<String>,
}

/// `pipelines/quickstart.yaml` → `pipelines/quickstart.lock`.
pub fn lock_path(pipeline: &Path) -> PathBuf {
    pipeline.with_extension("lock")
}

/// The libraries the steps of `spec` resolve to in `registry`, in order of first use.
/// Steps whose plugin is missing or ambiguous are skipped (validation reports them).
pub fn used_libraries(spec: &PipelineSpec, registry: &Registry) -> Vec<UsedLibrary> {
    let mut used: Vec<UsedLibrary> = Vec::new();
    for s in &spec.steps {
        let Resolution::Found(c) = registry.resolve(&s.plugin) else {
            continue;
        };
        let i = match used
            .iter()
            .position(|u| Arc::ptr_eq(&u.library, &c.library))
        {
            Some(i) => i,
            None => {
                used.push(UsedLibrary {
                    library: c.library.clone(),
                    components: Vec::new(),
                    steps: Vec::new(),
                });
                used.len() - 1
            }
        };
        let u = &mut used[i];
        if !u.components.contains(&c.name) {
            u.components.push(c.name.clone());
        }
        u.steps.push(s.id.clone());
    }
    for u in &mut used {
        u.components.sort();
    }
    used
}

/// The lock for `used`, as `segflow lock` writes it.
pub fn build(pipeline_name: &str, used: &[UsedLibrary]) -> LockFile {
    let mut libraries: Vec<LockedLibrary> = used
        .iter()
        .map(|u| {
            let path = u
                .library
                .path
                .canonicalize()
                .unwrap_or_else(|_| u.library.path.clone());
            LockedLibrary {
                name: u.library.name.clone(),
                version: u.library.version.clone(),
                path: path.display().to_string(),
                sha256: u.library.sha256().to_string(),
                sdk_version: u.library.sdk_version.clone(),
                components: u.components.clone(),
            }
        })
        .collect();
    libraries.sort_by(|a, b| a.name.cmp(&b.name).then(a.path.cmp(&b.path)));
    LockFile {
        lock_version: LOCK_VERSION,
        pipeline: pipeline_name.to_string(),
        segflow_version: env!("CARGO_PKG_VERSION").to_string(),
        libraries,
    }
}

/// Read a lock file: `Ok(None)` when there is none, `Err(message)` when it cannot be used.
pub fn read(path: &Path) -> Result<Option<LockFile>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read the lock file `{}`: {e}",
                path.display()
            ))
        }
    };
    let lock: LockFile = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "`{}` is not a segflow lock file ({e}); it is JSON written by `segflow lock`",
            path.display()
        )
    })?;
    if lock.lock_version > LOCK_VERSION {
        return Err(format!(
            "`{}` is a version {} lock file, newer than this segflow understands (version {LOCK_VERSION})",
            path.display(),
            lock.lock_version
        ));
    }
    Ok(Some(lock))
}

/// Write a lock file atomically (temporary name in the same directory, then rename).
pub fn write(path: &Path, lock: &LockFile) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(lock).map_err(std::io::Error::other)?;
    text.push('\n');
    crate::store::write_atomic(path, text.as_bytes())
}

/// Why a used library does not match the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The file's sha256 differs from the pinned one.
    Changed {
        name: String,
        path: PathBuf,
        locked_sha256: String,
        sha256: String,
        locked_version: String,
        version: String,
        steps: Vec<String>,
    },
    /// The lock has no entry for this library.
    Unlisted {
        name: String,
        path: PathBuf,
        sha256: String,
        version: String,
        steps: Vec<String>,
    },
}

impl Mismatch {
    /// One paragraph: what, where, what the hashes are.
    pub fn message(&self, lock_path: &Path) -> String {
        match self {
            Mismatch::Changed {
                name,
                path,
                locked_sha256,
                sha256,
                locked_version,
                version,
                steps,
            } => {
                let versions = if locked_version == version {
                    format!("its version is still {version}")
                } else {
                    format!("its version changed from {locked_version} to {version}")
                };
                format!(
                    "plugin library `{name}` at `{}` (used by {}) has changed since `{}` pinned it: its sha256 is {sha256}, but the lock pins {locked_sha256} ({versions}), so segflow refuses to run it",
                    path.display(),
                    steps_list(steps),
                    lock_path.display()
                )
            }
            Mismatch::Unlisted {
                name,
                path,
                sha256,
                version,
                steps,
            } => format!(
                "plugin library `{name}` {version} at `{}` (sha256 {sha256}, used by {}) is not listed in `{}`, so segflow refuses to run it",
                path.display(),
                steps_list(steps),
                lock_path.display()
            ),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Mismatch::Changed { name, .. } | Mismatch::Unlisted { name, .. } => name,
        }
    }
}

fn steps_list(steps: &[String]) -> String {
    let s: Vec<String> = steps.iter().map(|s| format!("`{s}`")).collect();
    format!(
        "step{} {}",
        if steps.len() == 1 { "" } else { "s" },
        s.join(", ")
    )
}

/// Every used library that does not match `lock`.
pub fn check(lock: &LockFile, used: &[UsedLibrary]) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for u in used {
        let lib = &u.library;
        let sha = lib.sha256().to_string();
        let entries: Vec<&LockedLibrary> = lock
            .libraries
            .iter()
            .filter(|l| l.name == lib.name)
            .collect();
        if entries.is_empty() {
            out.push(Mismatch::Unlisted {
                name: lib.name.clone(),
                path: lib.path.clone(),
                sha256: sha,
                version: lib.version.clone(),
                steps: u.steps.clone(),
            });
        } else if !entries.iter().any(|l| l.sha256 == sha) {
            out.push(Mismatch::Changed {
                name: lib.name.clone(),
                path: lib.path.clone(),
                locked_sha256: entries[0].sha256.clone(),
                sha256: sha,
                locked_version: entries[0].version.clone(),
                version: lib.version.clone(),
                steps: u.steps.clone(),
            });
        }
    }
    out
}

/// What changed between two locks, one line per library (for `--update-lock` and
/// `segflow lock` to report).
pub fn changes(old: &LockFile, new: &LockFile) -> Vec<String> {
    let mut out = Vec::new();
    for n in &new.libraries {
        match old.libraries.iter().find(|o| o.name == n.name) {
            None => out.push(format!("added `{}` {} ({})", n.name, n.version, n.sha256)),
            Some(o) if o.sha256 != n.sha256 => {
                let version = if o.version == n.version {
                    format!("version {} (unchanged)", n.version)
                } else {
                    format!("version {} -> {}", o.version, n.version)
                };
                out.push(format!(
                    "`{}`: sha256 {} -> {}, {version}",
                    n.name, o.sha256, n.sha256
                ))
            }
            Some(_) => {}
        }
    }
    for o in &old.libraries {
        if !new.libraries.iter().any(|n| n.name == o.name) {
            out.push(format!("removed `{}` {}", o.name, o.version));
        }
    }
    out
}

/// Why a scanned plugin directory must not be used, or `None` when only the current
/// user (and their primary group) can write it. Always `None` off Unix.
pub fn untrusted_dir(dir: &Path) -> Option<String> {
    writable_by_others(dir, false)
}

/// Why a library file must not be loaded: the file, or the directory holding it (unless
/// sticky), is writable by other users. Always `None` off Unix.
pub fn untrusted_library(path: &Path) -> Option<String> {
    if let Some(r) = writable_by_others(path, false) {
        return Some(r);
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    writable_by_others(parent, true)
}

#[cfg(unix)]
fn writable_by_others(path: &Path, sticky_ok: bool) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    extern "C" {
        fn getegid() -> u32;
    }
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.mode();
    if sticky_ok && meta.is_dir() && mode & 0o1000 != 0 {
        return None;
    }
    let shown = path.display();
    if mode & 0o002 != 0 {
        return Some(format!(
            "`{shown}` is writable by every user, so anyone could replace the code segflow runs; `chmod o-w {shown}`"
        ));
    }
    // SAFETY: getegid has no preconditions and cannot fail.
    let my_group = unsafe { getegid() };
    if mode & 0o020 != 0 && meta.gid() != my_group {
        return Some(format!(
            "`{shown}` is writable by group {} (not your primary group {my_group}), so its members could replace the code segflow runs; `chmod g-w {shown}`",
            meta.gid()
        ));
    }
    None
}

#[cfg(not(unix))]
fn writable_by_others(_path: &Path, _sticky_ok: bool) -> Option<String> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn world_and_foreign_group_writable_paths_are_untrusted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("plugins");
        std::fs::create_dir(&dir).unwrap();
        let lib = dir.join("libx.so");
        std::fs::write(&lib, b"x").unwrap();
        chmod(&dir, 0o755);
        chmod(&lib, 0o755);
        assert_eq!(untrusted_dir(&dir), None);
        assert_eq!(untrusted_library(&lib), None);

        chmod(&lib, 0o757);
        let r = untrusted_library(&lib).unwrap();
        assert!(
            r.contains("writable by every user") && r.contains("chmod o-w"),
            "{r}"
        );
        chmod(&lib, 0o755);

        chmod(&dir, 0o777);
        assert!(untrusted_dir(&dir).unwrap().contains("every user"));
        // A library in a world-writable directory could be replaced by a rename.
        assert!(untrusted_library(&lib).unwrap().contains("every user"));
        // Unless the directory is sticky (like /tmp): then only its scanning is refused.
        chmod(&dir, 0o1777);
        assert_eq!(untrusted_library(&lib), None);
        assert!(untrusted_dir(&dir).is_some());
        chmod(&dir, 0o755);

        // Group-writable with the process's own group is fine (user private groups).
        chmod(&lib, 0o775);
        assert_eq!(untrusted_library(&lib), None);
        // Group-writable with another group is not (only root can chown to any group).
        use std::os::unix::fs::MetadataExt;
        let gid = std::fs::metadata(&lib).unwrap().gid();
        if std::os::unix::fs::chown(&lib, None, Some(gid + 4242)).is_ok() {
            let r = untrusted_library(&lib).unwrap();
            assert!(
                r.contains(&format!("writable by group {}", gid + 4242)),
                "{r}"
            );
            assert!(r.contains("chmod g-w"), "{r}");
        }
    }

    #[test]
    fn lock_changes_are_listed() {
        let lib = |name: &str, sha: &str, v: &str| LockedLibrary {
            name: name.into(),
            version: v.into(),
            path: format!("/x/lib{name}.so"),
            sha256: sha.into(),
            sdk_version: "0.1.0".into(),
            components: vec!["c".into()],
        };
        let lock = |libs| LockFile {
            lock_version: 1,
            pipeline: "p".into(),
            segflow_version: "0".into(),
            libraries: libs,
        };
        let old = lock(vec![lib("a", "11", "1.0"), lib("b", "22", "1.0")]);
        let new = lock(vec![lib("a", "33", "1.1"), lib("c", "44", "2.0")]);
        let c = changes(&old, &new);
        assert_eq!(c.len(), 3, "{c:?}");
        assert!(c[0].contains("11 -> 33") && c[0].contains("1.0 -> 1.1"));
        let same_version = lock(vec![lib("a", "55", "1.0"), lib("b", "22", "1.0")]);
        assert!(changes(&old, &same_version)[0].contains("version 1.0 (unchanged)"));
        assert!(c[1].starts_with("added `c`"));
        assert!(c[2].starts_with("removed `b`"));
        assert!(changes(&old, &old).is_empty());
    }

    #[test]
    fn a_mismatch_names_the_library_both_hashes_and_a_version_change() {
        let m = Mismatch::Changed {
            name: "acme".into(),
            path: PathBuf::from("/opt/acme/libacme.so"),
            locked_sha256: "aaaa".into(),
            sha256: "bbbb".into(),
            locked_version: "1.0.0".into(),
            version: "1.1.0".into(),
            steps: vec!["km".into(), "score".into()],
        };
        let msg = m.message(Path::new("p.lock"));
        for want in [
            "`acme`",
            "`/opt/acme/libacme.so`",
            "steps `km`, `score`",
            "its sha256 is bbbb",
            "the lock pins aaaa",
            "changed from 1.0.0 to 1.1.0",
            "`p.lock`",
        ] {
            assert!(msg.contains(want), "{want}: {msg}");
        }
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn lock_path_sits_next_to_the_pipeline() {
        assert_eq!(
            lock_path(Path::new("pipelines/quickstart.yaml")),
            PathBuf::from("pipelines/quickstart.lock")
        );
    }
}
