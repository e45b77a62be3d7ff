//! Records the host did not take, kept on disk until a later run delivers them.
//!
//! One file per record, written under a temporary name and then renamed, so that hook
//! processes running side by side (Cursor runs hooks in parallel) never read half a record.
//! A sender claims a file by renaming it: only one process wins each rename, so two senders
//! never post the same record. A claim left by a process that died is taken over after a while.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Most records kept; past it the oldest are dropped, so a host that never comes back cannot
/// fill the disk.
pub const MAX_RECORDS: usize = 10_000;
/// A claim older than this belongs to a process that died.
const STALE: Duration = Duration::from_secs(300);
const PENDING: &str = ".json";
const CLAIMED: &str = ".sending-";
const BACKOFF_FILE: &str = "backoff-until";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The spool directory.
pub struct Spool {
    dir: PathBuf,
}

/// A spooled record this process has claimed.
pub struct Claimed {
    path: PathBuf,
    pending: PathBuf,
    pub record: Value,
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

impl Spool {
    pub fn new(dir: &Path) -> Self {
        Spool { dir: dir.to_path_buf() }
    }

    /// Keep a record for a later run.
    pub fn push(&self, record: &Value) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        self.trim()?;
        let name =
            format!("{:020}-{}-{}", now().as_nanos(), std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let temporary = self.dir.join(format!("{name}.tmp"));
        fs::write(&temporary, serde_json::to_vec(record)?)?;
        fs::rename(&temporary, self.dir.join(format!("{name}{PENDING}")))
    }

    /// The records waiting, oldest first (their names start with the time they were kept).
    fn pending(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.ends_with(PENDING) || (name.contains(CLAIMED) && is_stale(p))
            })
            .collect();
        paths.sort();
        paths
    }

    /// How many records wait.
    pub fn len(&self) -> usize {
        self.pending().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop the oldest records beyond `MAX_RECORDS - 1`, making room for one more.
    fn trim(&self) -> io::Result<()> {
        let pending = self.pending();
        let excess = (pending.len() + 1).saturating_sub(MAX_RECORDS);
        for path in pending.iter().take(excess) {
            fs::remove_file(path)?;
        }
        Ok(())
    }

    /// Claim the oldest records, up to `max_records` and about `max_bytes`.
    pub fn claim(&self, max_records: usize, max_bytes: u64) -> Vec<Claimed> {
        let mut claimed = Vec::new();
        let mut bytes = 0u64;
        let suffix = format!("{CLAIMED}{}", std::process::id());
        for path in self.pending() {
            if claimed.len() >= max_records {
                break;
            }
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let base = name.split(CLAIMED).next().unwrap_or(name);
            let pending = self.dir.join(base);
            let mine = self.dir.join(format!("{base}{suffix}"));
            // Someone else got it first: theirs to send.
            if fs::rename(&path, &mine).is_err() {
                continue;
            }
            let size = fs::metadata(&mine).map_or(0, |m| m.len());
            if !claimed.is_empty() && bytes + size > max_bytes {
                let _ = fs::rename(&mine, &pending);
                break;
            }
            match fs::read(&mine).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
                Some(record) => {
                    bytes += size;
                    claimed.push(Claimed { path: mine, pending, record });
                }
                // Unreadable: it would fail every later batch too.
                None => {
                    let _ = fs::remove_file(&mine);
                }
            }
        }
        claimed
    }

    /// Claimed records that were delivered (or refused for good): gone.
    pub fn finish(&self, claimed: Vec<Claimed>) {
        for c in claimed {
            let _ = fs::remove_file(&c.path);
        }
    }

    /// Claimed records that could not be sent: back in the queue.
    pub fn release(&self, claimed: Vec<Claimed>) {
        for c in claimed {
            let _ = fs::rename(&c.path, &c.pending);
        }
    }

    /// True while an earlier run's timeout says the host is slow: do not wait on it again yet.
    pub fn backing_off(&self) -> bool {
        fs::read_to_string(self.dir.join(BACKOFF_FILE))
            .ok()
            .and_then(|t| t.trim().parse::<u128>().ok())
            .is_some_and(|until| now().as_millis() < until)
    }

    pub fn back_off(&self, duration: Duration) {
        if duration.is_zero() {
            return;
        }
        let until = (now() + duration).as_millis();
        let _ = fs::create_dir_all(&self.dir);
        let _ = fs::write(self.dir.join(BACKOFF_FILE), until.to_string());
    }

    pub fn clear_backoff(&self) {
        let _ = fs::remove_file(self.dir.join(BACKOFF_FILE));
    }
}

fn is_stale(path: &Path) -> bool {
    fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age > STALE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_wait_in_order_and_claims_are_exclusive() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let spool = Spool::new(dir.path());
        assert!(spool.is_empty());
        for i in 0..3 {
            spool.push(&json!({ "n": i })).expect("spooled");
        }
        assert_eq!(spool.len(), 3);

        let first = spool.claim(2, u64::MAX);
        let numbers: Vec<&Value> = first.iter().map(|c| &c.record["n"]).collect();
        assert_eq!(numbers, [&json!(0), &json!(1)]);
        // What one claims, another does not see.
        let second = spool.claim(10, u64::MAX);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].record["n"], 2);

        spool.release(first);
        assert_eq!(spool.len(), 2);
        spool.finish(second);
        let rest = spool.claim(10, 1);
        assert_eq!(rest.len(), 1, "the byte bound still lets one record through");
        spool.finish(rest);
        assert_eq!(spool.len(), 1);
    }

    #[test]
    fn corrupt_records_are_dropped_and_backoff_expires() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let spool = Spool::new(dir.path());
        fs::write(dir.path().join("00000000000000000001-1-0.json"), b"{not json").expect("write");
        spool.push(&json!({ "ok": true })).expect("spooled");
        let claimed = spool.claim(10, u64::MAX);
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].record["ok"], true);
        spool.finish(claimed);
        assert!(spool.is_empty());

        assert!(!spool.backing_off());
        spool.back_off(Duration::from_secs(60));
        assert!(spool.backing_off());
        spool.clear_backoff();
        assert!(!spool.backing_off());
    }
}
