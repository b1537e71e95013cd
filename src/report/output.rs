//! Output files (reports, the metrics file): checked before a run starts,
//! so a bad path costs seconds instead of a whole run, and written whole.
//!
//! A file is first written under a random name in its target folder,
//! created exclusively (`O_EXCL`), then renamed over the target: a reader
//! never sees half a file, and a link planted under a predictable name
//! cannot redirect the write to somebody else's file.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Whether `path` can be written: not a folder, its folder exists (it is
/// created if missing) and takes new files.
pub fn check_writable(path: &Path) -> io::Result<()> {
    if path.as_os_str().is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
    }
    if path.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a folder; give a file name inside it",
        ));
    }
    let dir = folder(path);
    fs::create_dir_all(dir)?;
    temporary(dir, path).map(drop)
}

/// Writes `contents` to `path` through a temporary file in the same folder.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = folder(path);
    fs::create_dir_all(dir)?;
    let mut file = temporary(dir, path)?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path).map(drop).map_err(|e| e.error)
}

fn folder(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A new file with an unpredictable name next to `path`, readable like a
/// file the user wrote (0644 before the umask), removed if not persisted.
fn temporary(dir: &Path, path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let stem = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    tempfile::Builder::new()
        .prefix(&format!(".{stem}."))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_or_an_unwritable_place_is_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            check_writable(dir.path()).unwrap_err().kind(),
            io::ErrorKind::IsADirectory
        );
        assert!(check_writable(Path::new("/proc/harness-report.json")).is_err());
        let nested = dir.path().join("a/b/report.json");
        check_writable(&nested).unwrap();
        assert!(
            nested.parent().unwrap().is_dir(),
            "missing folders are made"
        );
        assert_eq!(
            fs::read_dir(nested.parent().unwrap()).unwrap().count(),
            0,
            "the check leaves no file behind"
        );
    }

    #[test]
    fn a_planted_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let report = dir.path().join("report.json");
        // The old scheme's predictable name, and the target itself, as links.
        std::os::unix::fs::symlink(&victim, dir.path().join("report.json.partial")).unwrap();
        std::os::unix::fs::symlink(&victim, &report).unwrap();
        write_atomically(&report, b"{}\n").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(fs::read_to_string(&report).unwrap(), "{}\n");
        assert!(!fs::symlink_metadata(&report).unwrap().is_symlink());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
