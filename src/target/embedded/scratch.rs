//! The embedded servers' scratch folder: private to the user (0700, since
//! the store holds every message of the run), and swept up by a later run
//! if the harness that made it died without removing it (SIGKILL leaves no
//! chance to clean up).
//!
//! The owner holds an exclusive `flock` on a file inside for as long as it
//! lives; the kernel drops the lock when the process dies, however it dies.
//! A lock, unlike a process id, means the same in every PID namespace that
//! shares the folder (containers sharing /tmp), and is never reused.

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

/// Every scratch folder's name starts with this.
pub const PREFIX: &str = "harness-nats-";
/// The file inside that the owner keeps locked (it holds the owner's
/// process id, for people).
const OWNER: &str = "owner.pid";
/// A folder younger than this may belong to a harness still starting up,
/// before it wrote its owner file: left alone.
const GRACE: Duration = Duration::from_secs(60);

/// A scratch folder, removed on drop, and the lock that marks it in use.
pub struct Scratch {
    // Declared first: unlocked before the folder goes.
    _owner: fs::File,
    pub dir: TempDir,
}

/// Creates a new scratch folder under the system's temporary folder, after
/// removing the ones whose owner is gone.
pub fn create() -> io::Result<Scratch> {
    let parent = std::env::temp_dir();
    let removed = sweep(&parent);
    if removed > 0 {
        tracing::info!(removed, "removed scratch folders of harness runs that died");
    }
    let dir = tempfile::Builder::new()
        .prefix(PREFIX)
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(&parent)?;
    let mut owner = fs::File::create(dir.path().join(OWNER))?;
    lock(&owner, libc::LOCK_EX)?;
    write!(owner, "{}", std::process::id())?;
    Ok(Scratch { _owner: owner, dir })
}

fn lock(file: &fs::File, operation: i32) -> io::Result<()> {
    // SAFETY: flock on a descriptor this File owns.
    if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Removes every scratch folder in `parent` whose owner process no longer
/// runs; returns how many. Errors are skipped: a folder of another user's,
/// or one removed meanwhile, is none of this run's business.
pub fn sweep(parent: &Path) -> usize {
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry.file_name().to_string_lossy().starts_with(PREFIX);
        if ours && is_stale(&path) && fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn is_stale(dir: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return false;
    };
    let old_enough = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= GRACE);
    if !meta.is_dir() || !old_enough {
        return false;
    }
    match fs::File::open(dir.join(OWNER)) {
        // Locked by nobody: its owner is gone.
        Ok(owner) => lock(&owner, libc::LOCK_EX | libc::LOCK_NB).is_ok(),
        // A folder whose owner never made the file: stale once old enough.
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aged(dir: &Path) {
        let old = SystemTime::now() - GRACE - Duration::from_secs(5);
        let file = fs::File::open(dir).unwrap();
        file.set_modified(old).unwrap();
    }

    #[test]
    fn folders_of_dead_owners_are_swept_and_live_ones_kept() {
        let parent = tempfile::tempdir().unwrap();
        let make = |name: &str, owner: Option<String>| {
            let dir = parent.path().join(name);
            fs::create_dir(&dir).unwrap();
            if let Some(owner) = owner {
                fs::write(dir.join(OWNER), owner).unwrap();
            }
            aged(&dir);
            dir
        };
        // Nobody holds the lock of this one's owner file.
        let dead = make("harness-nats-dead", Some("999999999".into()));
        let live = make("harness-nats-live", Some(std::process::id().to_string()));
        let held = fs::File::open(live.join(OWNER)).unwrap();
        lock(&held, libc::LOCK_EX).unwrap();
        let foreign = make("other-folder", Some("999999999".into()));
        let young = parent.path().join("harness-nats-young");
        fs::create_dir(&young).unwrap();
        assert_eq!(sweep(parent.path()), 1);
        assert!(!dead.exists(), "a dead owner's folder goes");
        assert!(live.exists(), "a folder whose owner holds its lock stays");
        assert!(
            foreign.exists(),
            "only the harness's own folders are touched"
        );
        assert!(
            young.exists(),
            "a folder may be too new to have its owner file yet"
        );
    }

    #[test]
    fn a_new_scratch_folder_is_private_and_owned() {
        let scratch = create().unwrap();
        let dir = scratch.dir.path();
        let mode = fs::metadata(dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let owner = fs::read_to_string(dir.join(OWNER)).unwrap();
        assert_eq!(owner, std::process::id().to_string());
        let other = fs::File::open(dir.join(OWNER)).unwrap();
        assert!(
            lock(&other, libc::LOCK_EX | libc::LOCK_NB).is_err(),
            "held while the scratch folder lives"
        );
    }
}
