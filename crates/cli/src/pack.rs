//! Packing a folder for upload: every file as it is on disk (hidden, empty and binary files,
//! the executable bit, symbolic links), deterministic, without a top-level `.git`.

use std::path::Path;

use skill_pool_core::archive::{FileMode, UploadFile, pack_tar_gz};

/// A folder read for upload.
#[derive(Debug)]
pub struct PackedFolder {
    pub files: Vec<UploadFile>,
    /// Entries left out, with the reason.
    pub skipped: Vec<String>,
}

impl PackedFolder {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.data.len() as u64).sum()
    }

    pub fn tar_gz(&self) -> anyhow::Result<Vec<u8>> {
        pack_tar_gz(&self.files).map_err(|e| anyhow::anyhow!("packing the folder: {e}"))
    }
}

/// Folders bigger than this are refused locally (the server's default limit is far lower).
const LOCAL_LIMIT: u64 = 1 << 30;

/// Reads every file under `root`.
pub fn read_folder(root: &Path) -> anyhow::Result<PackedFolder> {
    let meta = std::fs::metadata(root).map_err(|e| anyhow::anyhow!("{}: {e}", root.display()))?;
    if !meta.is_dir() {
        anyhow::bail!("{} is not a folder", root.display());
    }
    let mut out = PackedFolder {
        files: Vec::new(),
        skipped: Vec::new(),
    };
    let mut total = 0u64;
    walk(root, "", &mut out, &mut total)?;
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut PackedFolder, total: &mut u64) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            anyhow::bail!("{}: file names must be UTF-8", entry.path().display());
        };
        let rel = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let kind = meta.file_type();
        if name == ".git" {
            out.skipped.push(format!("{rel} (git metadata is not part of the plugin)"));
            continue;
        }
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let target = target
                .to_str()
                .ok_or_else(|| anyhow::anyhow!("{}: the link target is not UTF-8", path.display()))?;
            out.files.push(UploadFile {
                path: rel,
                mode: FileMode::Symlink,
                data: target.as_bytes().to_vec(),
            });
        } else if kind.is_dir() {
            walk(&path, &rel, out, total)?;
        } else if kind.is_file() {
            *total += meta.len();
            if *total > LOCAL_LIMIT {
                anyhow::bail!("the folder holds more than {} bytes: that is not a plugin", LOCAL_LIMIT);
            }
            let data = std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                FileMode::Executable
            } else {
                FileMode::Regular
            };
            out.files.push(UploadFile { path: rel, mode, data });
        } else {
            anyhow::bail!(
                "{} is not a file, folder or symbolic link (a socket, pipe or device cannot be uploaded)",
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keeps_everything_but_git() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::fs::write(root.join(".git/HEAD"), "ref").unwrap();
        std::fs::write(root.join(".hidden"), "").unwrap();
        std::fs::write(root.join("bin/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(root.join("bin/tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(root.join("data.bin"), [0u8, 255, 7]).unwrap();
        std::os::unix::fs::symlink("bin/tool", root.join("link")).unwrap();
        let packed = read_folder(root).unwrap();
        let paths: Vec<(&str, FileMode)> = packed.files.iter().map(|f| (f.path.as_str(), f.mode)).collect();
        assert_eq!(
            paths,
            [
                (".hidden", FileMode::Regular),
                ("bin/tool", FileMode::Executable),
                ("data.bin", FileMode::Regular),
                ("link", FileMode::Symlink)
            ]
        );
        assert_eq!(packed.skipped.len(), 1);
        let gz = packed.tar_gz().unwrap();
        let back =
            skill_pool_core::archive::unpack_tar_gz(&gz, &skill_pool_core::archive::UploadLimits::from_upload_limit(1 << 20)).unwrap();
        assert_eq!(back, packed.files);
    }
}
