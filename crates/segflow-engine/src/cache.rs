//! The step cache: results of earlier steps, found by a key over everything a result
//! depends on, so an unchanged step is not run again.
//!
//! Layout under the cache root (default `.segflow/cache/`):
//! ```text
//! entries/<aa>/<key>/meta.json        what the entry is, with the sha256 of every file
//! entries/<aa>/<key>/facts.json       the step's facts
//! entries/<aa>/<key>/<port>.parquet   its ports (read-only, hard-linked when possible)
//! entries/<aa>/<key>/lock             readers hold it shared; gc takes it exclusively;
//!                                     its modification time is the entry's last use
//! tmp/                                entries being written (renamed into entries/)
//! trash/                              entries being deleted
//! ```
//! An entry appears by one `rename` of a complete directory, so a killed writer leaves
//! only a `tmp/` directory, never an entry that looks complete; two writers of the same
//! key race harmlessly (the second rename fails and its copy is dropped). Every file is
//! checked against its sha256 before use: a damaged entry is a miss and is removed.

use crate::host::hex;
use crate::store::PortDigest;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Bumped when the entry layout or the key material changes; older entries then miss.
pub const FORMAT: u32 = 1;

/// The cache root used when neither `--cache-dir` nor `SEGFLOW_CACHE_DIR` is given.
pub const DEFAULT_DIR: &str = ".segflow/cache";

/// A writer's `tmp/` directory older than this belongs to a process that died.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// One port of an entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortEntry {
    pub rows: u64,
    pub sha256: String,
    pub bytes: u64,
}

/// `meta.json` of an entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryMeta {
    pub format: u32,
    pub key: String,
    pub segflow_version: String,
    pub created_at: String,
    /// The step that produced it first (entries are shared by any step with the same key).
    pub pipeline: String,
    pub step: String,
    pub component: String,
    pub component_version: String,
    pub library_sha256: String,
    pub config_hash: String,
    pub ports: BTreeMap<String, PortEntry>,
    pub facts_sha256: String,
}

/// Everything a step's result depends on. The key is the sha256 of its canonical JSON.
#[derive(Debug, Clone, Serialize)]
pub struct KeyMaterial {
    pub format: u32,
    pub segflow_version: String,
    pub abi_version: u32,
    pub component: String,
    pub component_version: String,
    pub library_sha256: String,
    /// sha256 of the config after `${VAR}` interpolation: secrets enter only hashed.
    pub config_hash: String,
    /// The component's fingerprint of what it reads besides its inputs (a collector's
    /// files or query result); `null` when it is pure.
    pub fingerprint: Option<serde_json::Value>,
    /// Per input (as named in `needs:`): the content hash of the port it reads.
    pub inputs: Vec<(String, String)>,
    /// For steps that may run other components (evaluate): every loaded library.
    pub libraries: Vec<String>,
}

impl KeyMaterial {
    pub fn key(&self) -> String {
        let json = serde_json::to_string(self).expect("key material serialises");
        hex(&Sha256::digest(json.as_bytes()))
    }
}

/// The outcome of a lookup.
pub enum Lookup {
    Hit(Box<Hit>),
    Miss,
    /// There was an entry but a file did not match its checksum; it has been removed.
    Damaged(String),
}

/// A verified entry, held (shared lock) until dropped.
pub struct Hit {
    pub meta: EntryMeta,
    pub facts: serde_json::Map<String, serde_json::Value>,
    dir: PathBuf,
    _lock: File,
}

impl Hit {
    pub fn port_path(&self, port: &str) -> PathBuf {
        self.dir.join(format!("{port}.parquet"))
    }
}

/// A step cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// What a cache holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub root: String,
    pub entries: u64,
    pub bytes: u64,
    pub oldest_use: Option<String>,
    pub newest_use: Option<String>,
    /// Entries per `pipeline/step` that first stored them.
    pub by_step: BTreeMap<String, (u64, u64)>,
    /// Unfinished writes (a writer running now, or one that died).
    pub unfinished: u64,
    /// With `verify`: entries whose files do not match their checksums.
    pub damaged: Vec<String>,
}

/// What gc or clear removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Removed {
    pub entries: u64,
    pub bytes: u64,
    /// Entries left because a run was reading them.
    pub busy: u64,
    pub remaining_entries: u64,
    pub remaining_bytes: u64,
}

struct EntryInfo {
    key: String,
    dir: PathBuf,
    bytes: u64,
    used: SystemTime,
}

impl Cache {
    /// Open (creating) the cache at `root`.
    pub fn open(root: &Path) -> std::io::Result<Cache> {
        for d in ["entries", "tmp", "trash"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        Ok(Cache {
            root: root.to_path_buf(),
        })
    }

    /// Open the cache at `root` only if it exists (for stats/gc/clear).
    pub fn existing(root: &Path) -> Option<Cache> {
        root.join("entries").is_dir().then(|| Cache {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry_dir(&self, key: &str) -> PathBuf {
        let prefix = key.get(..2).unwrap_or("xx");
        self.root.join("entries").join(prefix).join(key)
    }

    /// Find and verify the entry for `key`.
    pub fn lookup(&self, key: &str) -> Lookup {
        let dir = self.entry_dir(key);
        let Ok(lock) = File::open(dir.join("lock")) else {
            return Lookup::Miss;
        };
        if lock.lock_shared().is_err() {
            return Lookup::Miss;
        }
        // gc may have moved the entry away while we waited for the lock.
        if !dir.join("meta.json").exists() {
            return Lookup::Miss;
        }
        match verify(&dir, key) {
            Ok((meta, facts)) => {
                let _ = lock.set_modified(SystemTime::now());
                Lookup::Hit(Box::new(Hit {
                    meta,
                    facts,
                    dir,
                    _lock: lock,
                }))
            }
            Err(why) => {
                drop(lock);
                self.remove(key);
                Lookup::Damaged(why)
            }
        }
    }

    /// Remove the entry for `key` unless a reader holds it. True when it is gone.
    pub fn remove(&self, key: &str) -> bool {
        let dir = self.entry_dir(key);
        let Ok(lock) = File::open(dir.join("lock")) else {
            return !dir.exists() || self.discard(&dir);
        };
        match lock.try_lock() {
            Ok(()) => {
                let gone = self.discard(&dir);
                drop(lock);
                gone
            }
            Err(_) => false,
        }
    }

    /// Move a directory to trash/ (one rename, so nobody sees it half-deleted), then
    /// delete it.
    fn discard(&self, dir: &Path) -> bool {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let trash = self.root.join("trash").join(format!(
            "{name}.{}.{}",
            std::process::id(),
            unique_suffix()
        ));
        if std::fs::rename(dir, &trash).is_err() {
            return false;
        }
        let _ = make_writable(&trash);
        let _ = std::fs::remove_dir_all(&trash);
        true
    }

    /// Store a finished step: `files` are its port files (hard-linked when on the same
    /// file system, else copied), with the digests computed while they were written.
    /// Returns false when an entry with this key appeared meanwhile (kept as it is).
    pub fn store(
        &self,
        meta: &EntryMeta,
        files: &[(String, PathBuf)],
        facts: &serde_json::Map<String, serde_json::Value>,
    ) -> std::io::Result<bool> {
        let tmp = self.root.join("tmp").join(format!(
            "{}.{}.{}",
            meta.key,
            std::process::id(),
            unique_suffix()
        ));
        std::fs::create_dir_all(&tmp)?;
        let result = (|| -> std::io::Result<bool> {
            for (port, src) in files {
                let dest = tmp.join(format!("{port}.parquet"));
                if std::fs::hard_link(src, &dest).is_err() {
                    std::fs::copy(src, &dest)?;
                }
                // Read-only: the run directory's hard link shares the file, and an
                // in-place edit there must not go unnoticed (it would fail the checksum).
                let mut perm = std::fs::metadata(&dest)?.permissions();
                perm.set_readonly(true);
                std::fs::set_permissions(&dest, perm)?;
            }
            let mut facts_json =
                serde_json::to_vec_pretty(&serde_json::Value::Object(facts.clone()))?;
            facts_json.push(b'\n');
            std::fs::write(tmp.join("facts.json"), &facts_json)?;
            let mut meta = meta.clone();
            meta.facts_sha256 = hex(&Sha256::digest(&facts_json));
            std::fs::write(tmp.join("lock"), b"")?;
            let mut meta_json = serde_json::to_vec_pretty(&meta)?;
            meta_json.push(b'\n');
            // No fsync: every file is checked against its sha256 before use, so one
            // that a power cut left incomplete is a miss, not a wrong result.
            std::fs::write(tmp.join("meta.json"), &meta_json)?;
            let dest = self.entry_dir(&meta.key);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match std::fs::rename(&tmp, &dest) {
                Ok(()) => Ok(true),
                Err(_) if dest.exists() => Ok(false),
                Err(e) => Err(e),
            }
        })();
        if tmp.exists() {
            let _ = make_writable(&tmp);
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    fn entries(&self) -> Vec<EntryInfo> {
        let mut out = Vec::new();
        let Ok(prefixes) = std::fs::read_dir(self.root.join("entries")) else {
            return out;
        };
        for p in prefixes.flatten() {
            let Ok(keys) = std::fs::read_dir(p.path()) else {
                continue;
            };
            for k in keys.flatten() {
                let dir = k.path();
                let bytes = dir_size(&dir);
                let used = std::fs::metadata(dir.join("lock"))
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                out.push(EntryInfo {
                    key: k.file_name().to_string_lossy().into_owned(),
                    dir,
                    bytes,
                    used,
                });
            }
        }
        out
    }

    /// What the cache holds; with `verify`, every file is checked against its sha256.
    pub fn stats(&self, verify_files: bool) -> Stats {
        let entries = self.entries();
        let mut st = Stats {
            root: self.root.display().to_string(),
            entries: entries.len() as u64,
            bytes: entries.iter().map(|e| e.bytes).sum(),
            ..Default::default()
        };
        let stamp = |t: SystemTime| {
            chrono::DateTime::<chrono::Utc>::from(t)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        st.oldest_use = entries.iter().map(|e| e.used).min().map(stamp);
        st.newest_use = entries.iter().map(|e| e.used).max().map(stamp);
        for e in &entries {
            let label = std::fs::read(e.dir.join("meta.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<EntryMeta>(&b).ok())
                .map(|m| format!("{}/{}", m.pipeline, m.step))
                .unwrap_or_else(|| "(unreadable meta.json)".into());
            let slot = st.by_step.entry(label).or_default();
            slot.0 += 1;
            slot.1 += e.bytes;
            if verify_files {
                if let Err(why) = verify(&e.dir, &e.key) {
                    st.damaged.push(format!("{}: {why}", e.key));
                }
            }
        }
        st.unfinished = std::fs::read_dir(self.root.join("tmp"))
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        st
    }

    /// Remove least recently used entries until the cache holds at most `max_bytes`,
    /// skipping entries a run is reading; also clears what dead writers left behind.
    pub fn gc(&self, max_bytes: u64) -> Removed {
        self.sweep_leftovers();
        let mut entries = self.entries();
        entries.sort_by(|a, b| a.used.cmp(&b.used).then(a.key.cmp(&b.key)));
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        let mut out = Removed::default();
        for e in &entries {
            if total <= max_bytes {
                break;
            }
            if self.remove(&e.key) {
                out.entries += 1;
                out.bytes += e.bytes;
                total -= e.bytes;
            } else if e.dir.exists() {
                out.busy += 1;
            }
        }
        let left = self.entries();
        out.remaining_entries = left.len() as u64;
        out.remaining_bytes = left.iter().map(|e| e.bytes).sum();
        out
    }

    /// Remove every entry not in use.
    pub fn clear(&self) -> Removed {
        self.gc(0)
    }

    fn sweep_leftovers(&self) {
        let now = SystemTime::now();
        if let Ok(d) = std::fs::read_dir(self.root.join("tmp")) {
            for e in d.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| now.duration_since(t).unwrap_or_default() > STALE_TMP)
                    .unwrap_or(false);
                if old {
                    let _ = make_writable(&e.path());
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        if let Ok(d) = std::fs::read_dir(self.root.join("trash")) {
            for e in d.flatten() {
                let _ = make_writable(&e.path());
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Check every file of the entry in `dir` against `meta.json`.
fn verify(
    dir: &Path,
    key: &str,
) -> Result<(EntryMeta, serde_json::Map<String, serde_json::Value>), String> {
    let meta: EntryMeta = std::fs::read(dir.join("meta.json"))
        .map_err(|e| format!("meta.json: {e}"))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("meta.json: {e}")))?;
    if meta.key != key || meta.format != FORMAT {
        return Err("meta.json describes another entry".into());
    }
    let facts_bytes =
        std::fs::read(dir.join("facts.json")).map_err(|e| format!("facts.json: {e}"))?;
    if hex(&Sha256::digest(&facts_bytes)) != meta.facts_sha256 {
        return Err("facts.json does not match its checksum".into());
    }
    let facts = match serde_json::from_slice(&facts_bytes) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return Err("facts.json is not a JSON object".into()),
    };
    for (port, p) in &meta.ports {
        let path = dir.join(format!("{port}.parquet"));
        let digest = file_digest(&path).map_err(|e| format!("{port}.parquet: {e}"))?;
        if digest.bytes != p.bytes || digest.sha256 != p.sha256 {
            return Err(format!(
                "{port}.parquet does not match its checksum ({} bytes, expected {})",
                digest.bytes, p.bytes
            ));
        }
    }
    Ok((meta, facts))
}

/// sha256 and size of a file.
pub fn file_digest(path: &Path) -> std::io::Result<PortDigest> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(PortDigest {
        sha256: hex(&hasher.finalize()),
        bytes,
    })
}

/// Hard-link `src` to `dest` (replacing it), or copy when linking is not possible.
pub fn link_or_copy(src: &Path, dest: &Path) -> std::io::Result<()> {
    if dest.exists() {
        std::fs::remove_file(dest)?;
    }
    if std::fs::hard_link(src, dest).is_ok() {
        return Ok(());
    }
    let tmp = crate::store::temp_name(dest);
    std::fs::copy(src, &tmp)?;
    std::fs::rename(&tmp, dest)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn make_writable(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)?.flatten() {
        if let Ok(m) = e.metadata() {
            let mut p = m.permissions();
            if p.readonly() {
                #[allow(clippy::permissions_set_readonly_false)]
                p.set_readonly(false);
                let _ = std::fs::set_permissions(e.path(), p);
            }
        }
    }
    Ok(())
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Parse a size such as `5GB`, `500MB`, `1.5G`, `0` (bytes; K/M/G/T are powers of 1000,
/// KiB/MiB/GiB/TiB of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write e.g. 5GB, 500MB or 1GiB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
            "unknown size unit `{other}` in `{text}`; use B, KB, MB, GB, TB or KiB, MiB, GiB, TiB"
        ))
        }
    };
    Ok((value * mult).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str, ports: &[(&str, &Path)]) -> EntryMeta {
        EntryMeta {
            format: FORMAT,
            key: key.into(),
            segflow_version: "test".into(),
            created_at: "now".into(),
            pipeline: "p".into(),
            step: "s".into(),
            component: "lib/c".into(),
            component_version: "1".into(),
            library_sha256: "00".into(),
            config_hash: "11".into(),
            ports: ports
                .iter()
                .map(|(p, f)| {
                    let d = file_digest(f).unwrap();
                    (
                        p.to_string(),
                        PortEntry {
                            rows: 3,
                            sha256: d.sha256,
                            bytes: d.bytes,
                        },
                    )
                })
                .collect(),
            facts_sha256: String::new(),
        }
    }

    fn facts() -> serde_json::Map<String, serde_json::Value> {
        match serde_json::json!({"k": 4, "inertia": 12.5}) {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    /// A cache with one stored entry whose port file holds `content`.
    fn stored(content: &[u8]) -> (tempfile::TempDir, Cache, String) {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        let src = tmp.path().join("main.parquet");
        std::fs::write(&src, content).unwrap();
        let key = "ab".repeat(32);
        let m = meta(&key, &[("main", &src)]);
        assert!(cache.store(&m, &[("main".into(), src)], &facts()).unwrap());
        (tmp, cache, key)
    }

    fn writable(p: &Path) {
        let mut perm = std::fs::metadata(p).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(p, perm).unwrap();
    }

    #[test]
    fn a_stored_entry_is_found_verified_and_read_only() {
        let (_tmp, cache, key) = stored(b"0123456789");
        let Lookup::Hit(hit) = cache.lookup(&key) else {
            panic!("expected a hit")
        };
        assert_eq!(hit.facts, facts());
        assert_eq!(hit.meta.ports["main"].bytes, 10);
        let path = hit.port_path("main");
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");
        assert!(std::fs::metadata(&path).unwrap().permissions().readonly());
        assert!(matches!(cache.lookup(&"cd".repeat(32)), Lookup::Miss));
    }

    #[test]
    fn a_truncated_or_garbled_port_is_a_miss_and_is_removed() {
        for damage in ["truncate", "garble", "facts", "meta"] {
            let (_tmp, cache, key) = stored(b"0123456789");
            let dir = cache.entry_dir(&key);
            let target = match damage {
                "facts" => dir.join("facts.json"),
                "meta" => dir.join("meta.json"),
                _ => dir.join("main.parquet"),
            };
            writable(&target);
            match damage {
                "truncate" => std::fs::write(&target, b"01234").unwrap(),
                "garble" => std::fs::write(&target, b"0123X56789").unwrap(),
                "facts" => std::fs::write(&target, b"{\"k\": 5, \"inertia\": 12.5}\n").unwrap(),
                _ => std::fs::write(&target, b"\x00\xffnot json").unwrap(),
            }
            match cache.lookup(&key) {
                Lookup::Damaged(why) => assert!(!why.is_empty(), "{damage}"),
                _ => panic!("{damage}: a damaged entry must not be used"),
            }
            assert!(!dir.exists(), "{damage}: the damaged entry is removed");
            assert!(matches!(cache.lookup(&key), Lookup::Miss));
        }
    }

    #[test]
    fn an_unfinished_write_is_not_an_entry_and_gc_sweeps_it() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        let key = "ef".repeat(32);
        // What a writer killed before its rename leaves behind.
        let partial = cache.root().join("tmp").join(format!("{key}.999.1-0"));
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::write(partial.join("main.parquet"), b"half").unwrap();
        assert!(matches!(cache.lookup(&key), Lookup::Miss));
        assert_eq!(cache.stats(true).entries, 0);
        assert_eq!(cache.stats(true).unfinished, 1);
        let old = SystemTime::now() - Duration::from_secs(2 * 3600);
        File::open(&partial).unwrap().set_modified(old).unwrap();
        cache.gc(u64::MAX);
        assert_eq!(cache.stats(false).unfinished, 0);
    }

    #[test]
    fn a_second_writer_of_the_same_key_keeps_the_first_entry() {
        let (tmp, cache, key) = stored(b"first");
        let src = tmp.path().join("again.parquet");
        std::fs::write(&src, b"first").unwrap();
        let m = meta(&key, &[("main", &src)]);
        assert!(!cache.store(&m, &[("main".into(), src)], &facts()).unwrap());
        assert!(matches!(cache.lookup(&key), Lookup::Hit(_)));
        assert!(std::fs::read_dir(cache.root().join("tmp"))
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn gc_removes_least_recently_used_first_and_skips_entries_in_use() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(&tmp.path().join("cache")).unwrap();
        let mut keys = Vec::new();
        for (i, c) in ["a1", "b2", "c3"].iter().enumerate() {
            let src = tmp.path().join(format!("{i}.parquet"));
            std::fs::write(&src, vec![b'x'; 1000]).unwrap();
            let key = c.repeat(32);
            cache
                .store(
                    &meta(&key, &[("main", &src)]),
                    &[("main".into(), src)],
                    &facts(),
                )
                .unwrap();
            // Last use: a1 oldest, c3 newest.
            let t = SystemTime::now() - Duration::from_secs(100 - 10 * i as u64);
            File::open(cache.entry_dir(&key).join("lock"))
                .unwrap()
                .set_modified(t)
                .unwrap();
            keys.push(key);
        }
        let one = cache.stats(false).bytes / 3;
        // Room for two: the oldest goes.
        let r = cache.gc(2 * one);
        assert_eq!((r.entries, r.remaining_entries), (1, 2));
        assert!(!cache.entry_dir(&keys[0]).exists());
        // A reader holds the middle one: gc to zero keeps it.
        let reading = match cache.lookup(&keys[1]) {
            Lookup::Hit(h) => h,
            _ => panic!("expected a hit"),
        };
        let r = cache.clear();
        assert_eq!((r.entries, r.busy, r.remaining_entries), (1, 1, 1));
        assert!(cache.entry_dir(&keys[1]).exists());
        drop(reading);
        assert_eq!(cache.clear().remaining_entries, 0);
    }

    #[test]
    fn the_key_changes_with_everything_it_covers() {
        let base = KeyMaterial {
            format: FORMAT,
            segflow_version: "0.1.0".into(),
            abi_version: 1,
            component: "segment/kmeans".into(),
            component_version: "0.1.0".into(),
            library_sha256: "aa".into(),
            config_hash: "cc".into(),
            fingerprint: None,
            inputs: vec![("features".into(), "sha256:ff".into())],
            libraries: vec![],
        };
        let k = base.key();
        assert_eq!(k, base.clone().key(), "deterministic");
        let variants: Vec<KeyMaterial> = vec![
            KeyMaterial {
                segflow_version: "0.2.0".into(),
                ..base.clone()
            },
            KeyMaterial {
                component_version: "0.1.1".into(),
                ..base.clone()
            },
            KeyMaterial {
                library_sha256: "ab".into(),
                ..base.clone()
            },
            KeyMaterial {
                config_hash: "cd".into(),
                ..base.clone()
            },
            KeyMaterial {
                fingerprint: Some(serde_json::json!({"bytes": 1})),
                ..base.clone()
            },
            KeyMaterial {
                inputs: vec![("features".into(), "sha256:fe".into())],
                ..base.clone()
            },
            KeyMaterial {
                libraries: vec!["x:1".into()],
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.key(), k, "{v:?}");
        }
    }

    #[test]
    fn sizes_parse_in_both_unit_systems() {
        assert_eq!(parse_size("5GB").unwrap(), 5_000_000_000);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("1.5G").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert!(parse_size("5 parsecs").unwrap_err().contains("unit"));
        assert!(parse_size("lots").is_err());
    }
}
