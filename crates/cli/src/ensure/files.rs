//! Files under the Claude folder: what is there (by sha256), writing atomically with the right
//! mode, removing only what is unchanged. Paths are `/`-separated and relative to that folder;
//! they come from the server already normalised (no `..`, no absolute paths) and are checked
//! again here before anything touches the disk.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use skill_pool_core::archive::FileMode;

/// What is on disk at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnDisk {
    Missing,
    /// sha256 of the content (of the link target for a symlink).
    Present(String),
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `rel` joined under `root`, refusing anything that could leave it.
pub fn under(root: &Path, rel: &str) -> io::Result<PathBuf> {
    let ok = !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\\')
        && rel.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    if !ok {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("refusing the path `{rel}`")));
    }
    Ok(root.join(rel))
}

pub fn state(root: &Path, rel: &str) -> io::Result<OnDisk> {
    let path = under(root, rel)?;
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(OnDisk::Missing),
        Err(e) => Err(e),
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = std::fs::read_link(&path)?;
            Ok(OnDisk::Present(sha256_hex(target.to_string_lossy().as_bytes())))
        }
        Ok(meta) if meta.is_dir() => Ok(OnDisk::Present("(a folder)".into())),
        Ok(_) => Ok(OnDisk::Present(sha256_hex(&std::fs::read(&path)?))),
    }
}

/// Writes `data` at `rel` (a temporary file renamed into place), creating folders. Returns
/// the sha256 recorded in the lock.
pub fn write(root: &Path, rel: &str, mode: FileMode, data: &[u8]) -> io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = under(root, rel)?;
    let dir = path.parent().expect("a joined path has a parent");
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().expect("a joined path has a name").to_string_lossy().to_string();
    let tmp = dir.join(format!(".{name}.skill-pool-tmp"));
    let _ = std::fs::remove_file(&tmp);
    match mode {
        FileMode::Symlink => {
            let target = String::from_utf8_lossy(data).to_string();
            std::os::unix::fs::symlink(&target, &tmp)?;
        }
        FileMode::Regular | FileMode::Executable => {
            let mut file = std::fs::File::create(&tmp)?;
            let result = file.write_all(data).and_then(|()| file.sync_all());
            if let Err(e) = result {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            let bits = if mode == FileMode::Executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(bits))?;
        }
    }
    // A folder or a file of another kind in the way: only a file or a link is replaced.
    if let Ok(meta) = std::fs::symlink_metadata(&path)
        && meta.is_dir()
    {
        let _ = std::fs::remove_file(&tmp);
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} is a folder, not a file", path.display()),
        ));
    }
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(sha256_hex(data))
}

/// Removes `rel`, then every folder above it (up to `root`, exclusive) that became empty.
pub fn remove(root: &Path, rel: &str) -> io::Result<()> {
    let path = under(root, rel)?;
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) {
            break;
        }
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

/// True when the error means the disk (or a quota) is full.
pub fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.kind() == io::ErrorKind::QuotaExceeded || e.raw_os_error() == Some(28)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_state_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        assert_eq!(state(root, "skills/a/SKILL.md").unwrap(), OnDisk::Missing);
        let sha = write(root, "skills/a/SKILL.md", FileMode::Regular, b"hi").unwrap();
        assert_eq!(state(root, "skills/a/SKILL.md").unwrap(), OnDisk::Present(sha.clone()));
        let sha_x = write(root, "skills/a/run.sh", FileMode::Executable, b"#!/bin/sh\n").unwrap();
        let mode = std::fs::metadata(root.join("skills/a/run.sh")).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_ne!(sha, sha_x);
        write(root, "skills/a/link", FileMode::Symlink, b"SKILL.md").unwrap();
        assert_eq!(std::fs::read_link(root.join("skills/a/link")).unwrap(), Path::new("SKILL.md"));
        for rel in ["skills/a/SKILL.md", "skills/a/run.sh", "skills/a/link"] {
            remove(root, rel).unwrap();
        }
        assert!(!root.join("skills").exists(), "empty folders go too");
        assert!(root.exists());
        for bad in ["../x", "/etc/passwd", "a/../../x", "a\\b", ""] {
            assert!(write(root, bad, FileMode::Regular, b"x").is_err(), "{bad}");
        }
    }
}
