//! The embedded servers' scratch folder: private to the user (0700, since
//! the store holds every message of the run), marked with the owning
//! harness's process id, and swept up if that process died without
//! removing it (SIGKILL leaves no chance to clean up).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

/// Every scratch folder's name starts with this.
pub const PREFIX: &str = "harness-nats-";
/// The file inside that names the owning process.
const OWNER: &str = "owner.pid";
/// A folder younger than this may belong to a harness still starting up,
/// before it wrote its owner file: left alone.
const GRACE: Duration = Duration::from_secs(60);

/// Creates a new scratch folder under the system's temporary folder, after
/// removing the ones whose owner is gone.
pub fn create() -> io::Result<TempDir> {
    let parent = std::env::temp_dir();
    let removed = sweep(&parent);
    if removed > 0 {
        tracing::info!(removed, "removed scratch folders of harness runs that died");
    }
    let dir = tempfile::Builder::new()
        .prefix(PREFIX)
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(&parent)?;
    fs::write(dir.path().join(OWNER), std::process::id().to_string())?;
    Ok(dir)
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
    match fs::read_to_string(dir.join(OWNER)) {
        Ok(text) => text.trim().parse::<i32>().is_ok_and(|pid| !alive(pid)),
        // A folder from before owner files, or one whose owner never wrote
        // it: stale once old enough.
        Err(_) => true,
    }
}

/// Whether a process with this id exists (signal 0 checks without sending).
fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
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
        // A process id far above pid_max's default never runs.
        let dead = make("harness-nats-dead", Some("999999999".into()));
        let live = make("harness-nats-live", Some(std::process::id().to_string()));
        let foreign = make("other-folder", Some("999999999".into()));
        let young = parent.path().join("harness-nats-young");
        fs::create_dir(&young).unwrap();
        assert_eq!(sweep(parent.path()), 1);
        assert!(!dead.exists(), "a dead owner's folder goes");
        assert!(live.exists(), "a running owner's folder stays");
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
        let dir = create().unwrap();
        let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let owner = fs::read_to_string(dir.path().join(OWNER)).unwrap();
        assert_eq!(owner, std::process::id().to_string());
    }
}
