//! Records the host did not take, kept on disk until a later run delivers them.
//!
//! One file per record, written under a temporary name and then renamed, so that hook
//! processes running side by side (Cursor runs hooks in parallel) never read half a record.
//! A sender claims a file by renaming it: only one process wins each rename, so two senders
//! never post the same record. A claim left by a process that died is taken over after a while.
//!
//! The records hold prompts, commands and their output, so the directory is private: created
//! 0700, each file 0600, and an existing directory is used only when it is this user's and no one
//! else can write to it (see [`Spool::open`]); otherwise another local user could read the
//! records, or plant ones that the next post would send with this user's keys.

use std::fs;
use std::io::{self, Write as _};
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
    /// The spool at `dir`, created (mode 0700) if missing. An existing directory must belong to
    /// this user and be writable by no one else; if it is not, the error says why and nothing
    /// in it is read or written.
    pub fn open(dir: &Path) -> io::Result<Self> {
        create_private_dir(dir)?;
        check_private_dir(dir)?;
        Ok(Spool { dir: dir.to_path_buf() })
    }

    /// Keep a record for a later run.
    pub fn push(&self, record: &Value) -> io::Result<()> {
        self.trim()?;
        let name = unique_name();
        write_private(&self.dir.join(format!("{name}.tmp")), &serde_json::to_vec(record)?)?;
        fs::rename(self.dir.join(format!("{name}.tmp")), self.dir.join(format!("{name}{PENDING}")))
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
        let temporary = self.dir.join(format!("{}.tmp", unique_name()));
        if write_private(&temporary, until.to_string().as_bytes()).is_ok()
            && fs::rename(&temporary, self.dir.join(BACKOFF_FILE)).is_err()
        {
            let _ = fs::remove_file(&temporary);
        }
    }

    pub fn clear_backoff(&self) {
        let _ = fs::remove_file(self.dir.join(BACKOFF_FILE));
    }
}

fn is_stale(path: &Path) -> bool {
    fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age > STALE)
}

/// A name no other run uses: the time first, so names sort oldest first.
fn unique_name() -> String {
    format!("{:020}-{}-{}", now().as_nanos(), std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A new file only this user can read (0600 on Unix).
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// This user's directory, writable by no one else; then narrowed to 0700 if it was wider.
#[cfg(unix)]
fn check_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return refuse(format!("{} is not a directory", dir.display()));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return refuse(format!(
            "{} is writable by other users (mode {mode:o}); refusing to spool there",
            dir.display()
        ));
    }
    // The user this process runs as, without libc: the owner of a file it creates. A directory
    // this user cannot write to fails here already.
    let probe = dir.join(format!(".owner-check-{}", unique_name()));
    write_private(&probe, b"")?;
    let me = fs::metadata(&probe).map(|m| m.uid());
    let _ = fs::remove_file(&probe);
    let me = me?;
    if meta.uid() != me {
        return refuse(format!(
            "{} belongs to another user (uid {}, not {me}); refusing to spool there",
            dir.display(),
            meta.uid()
        ));
    }
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_dir(dir: &Path) -> io::Result<()> {
    if fs::metadata(dir)?.is_dir() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::Other, format!("{} is not a directory", dir.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_wait_in_order_and_claims_are_exclusive() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let spool = Spool::open(dir.path()).expect("spool");
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
        let spool = Spool::open(dir.path()).expect("spool");
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

    #[cfg(unix)]
    #[test]
    fn the_spool_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o7777;
        let root = tempfile::tempdir().expect("temporary directory");
        let dir = root.path().join("state").join("antenna").join("cursor-spool");
        let spool = Spool::open(&dir).expect("created");
        assert_eq!(mode(&dir), 0o700);
        spool.push(&json!({ "n": 1 })).expect("spooled");
        spool.back_off(Duration::from_secs(60));
        let files: Vec<PathBuf> = fs::read_dir(&dir).expect("list").map(|e| e.expect("entry").path()).collect();
        assert_eq!(files.len(), 2, "one record and the backoff mark, no probe left: {files:?}");
        for file in files {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }

        // An existing directory of this user's that others may read is narrowed to 0700.
        let readable = root.path().join("readable");
        fs::create_dir(&readable).expect("mkdir");
        fs::set_permissions(&readable, fs::Permissions::from_mode(0o755)).expect("chmod");
        Spool::open(&readable).expect("usable");
        assert_eq!(mode(&readable), 0o700);
    }

    #[cfg(unix)]
    #[test]
    fn a_spool_others_can_write_is_refused_and_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("temporary directory");
        for open_mode in [0o777, 0o770, 0o1777, 0o722] {
            let dir = root.path().join(format!("shared-{open_mode:o}"));
            fs::create_dir(&dir).expect("mkdir");
            fs::write(dir.join("00000000000000000001-1-0.json"), br#"{"planted":true}"#).expect("plant");
            fs::set_permissions(&dir, fs::Permissions::from_mode(open_mode)).expect("chmod");
            let error = Spool::open(&dir).err().expect("refused");
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied, "{open_mode:o}");
            assert!(error.to_string().contains("writable by other users"), "{error}");
            assert_eq!(fs::read_dir(&dir).expect("list").count(), 1, "nothing written or removed");
            assert_eq!(fs::metadata(&dir).expect("meta").permissions().mode() & 0o7777, open_mode, "not changed");
        }
        // Someone else's private directory: only root can make one here, and root can write into
        // it, so the check that matters is the owner's.
        let theirs = root.path().join("theirs");
        fs::create_dir(&theirs).expect("mkdir");
        fs::set_permissions(&theirs, fs::Permissions::from_mode(0o700)).expect("chmod");
        if std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).is_ok() {
            let error = Spool::open(&theirs).err().expect("refused");
            assert!(error.to_string().contains("belongs to another user"), "{error}");
            assert_eq!(fs::read_dir(&theirs).expect("list").count(), 0, "no probe left behind");
        }
        // A file where the directory should be.
        let file = root.path().join("file");
        fs::write(&file, b"").expect("file");
        assert!(Spool::open(&file).is_err());
    }
}
