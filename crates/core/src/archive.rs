//! Upload archives: a tar.gz of a folder, unpacked in memory with every check an untrusted
//! upload needs (no path leaving the tree, no devices or hard links, no symlink pointing out,
//! size, file-count and decompression-bomb limits, and the name rules of [`crate::names`]: nothing
//! that a macOS or Windows filesystem, or git, reads as something else), and the reverse for
//! downloads.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

/// How a file is stored: git knows exactly these three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileMode {
    Regular,
    Executable,
    /// The body is the link target.
    Symlink,
}

impl FileMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FileMode::Regular => "file",
            FileMode::Executable => "executable",
            FileMode::Symlink => "symlink",
        }
    }

    pub fn parse(s: &str) -> Option<FileMode> {
        match s {
            "file" => Some(FileMode::Regular),
            "executable" => Some(FileMode::Executable),
            "symlink" => Some(FileMode::Symlink),
            _ => None,
        }
    }

    /// The git tree entry mode.
    pub fn git_mode(self) -> &'static str {
        match self {
            FileMode::Regular => "100644",
            FileMode::Executable => "100755",
            FileMode::Symlink => "120000",
        }
    }
}

/// One file of an upload: a normalised relative path (`/`-separated, no `.`/`..`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFile {
    pub path: String,
    pub mode: FileMode,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Largest compressed upload.
    pub max_compressed_bytes: u64,
    /// Largest sum of unpacked file sizes.
    pub max_unpacked_bytes: u64,
    pub max_files: usize,
}

impl UploadLimits {
    /// The limits for a given `SKILL_POOL_MAX_UPLOAD_BYTES`: unpacked 4× that, 20,000 files.
    pub fn from_upload_limit(max_upload_bytes: u64) -> UploadLimits {
        UploadLimits {
            max_compressed_bytes: max_upload_bytes,
            max_unpacked_bytes: max_upload_bytes.saturating_mul(4),
            max_files: 20_000,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("the upload is larger than the {max} byte limit")]
    CompressedTooLarge { max: u64 },
    #[error("the upload unpacks to more than {max} bytes (the unpacked limit is 4× the upload limit)")]
    UnpackedTooLarge { max: u64 },
    #[error("the upload has more than {max} files")]
    TooManyFiles { max: usize },
    #[error("the upload is not a gzip-compressed tar archive: {0}")]
    NotGzip(String),
    #[error("the tar archive is corrupt: {0}")]
    CorruptTar(String),
    #[error("the upload holds no files")]
    Empty,
    #[error("`{0}`: a path in the upload is not UTF-8")]
    NotUtf8(String),
    #[error("`{0}`: absolute paths are not allowed: paths must be relative to the folder")]
    Absolute(String),
    #[error("`{0}`: `..` is not allowed in a path")]
    Traversal(String),
    #[error("`{0}`: Windows drive paths and `\\` separators are not allowed: use relative paths with `/`")]
    WindowsPath(String),
    #[error("`{0}`: a path has control characters")]
    ControlCharacters(String),
    #[error("`{0}`: `.git` folders cannot be uploaded (publish the working tree, not the repository)")]
    GitDir(String),
    #[error("`{0}`: this path is longer than {1} bytes")]
    PathTooLong(String, usize),
    /// A name that is unsafe on some filesystem or that git refuses, or a symlink leaving the tree.
    #[error(transparent)]
    Name(#[from] crate::names::NameError),
    #[error("`{0}` is a hard link: upload the file itself")]
    HardLink(String),
    #[error("`{path}` is a {kind}: only files, folders and symbolic links can be uploaded")]
    SpecialFile { path: String, kind: &'static str },
    #[error("`{0}` appears twice in the upload")]
    Duplicate(String),
    #[error("`{0}` is both a file and a folder in the upload")]
    FileAndFolder(String),
}

impl ArchiveError {
    /// The uploaded file at fault, when the refusal concerns one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::NotUtf8(p)
            | Self::Absolute(p)
            | Self::Traversal(p)
            | Self::WindowsPath(p)
            | Self::ControlCharacters(p)
            | Self::GitDir(p)
            | Self::PathTooLong(p, _)
            | Self::HardLink(p)
            | Self::Duplicate(p)
            | Self::FileAndFolder(p)
            | Self::SpecialFile { path: p, .. } => Some(p),
            Self::Name(e) => Some(e.path()),
            _ => None,
        }
    }

    /// Size and count limits (HTTP 413), as opposed to malformed input.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Self::CompressedTooLarge { .. } | Self::UnpackedTooLarge { .. } | Self::TooManyFiles { .. }
        )
    }
}

pub const MAX_PATH_BYTES: usize = 1024;

/// Normalises a path from an archive: strips `./` and empty parts; refuses absolute paths,
/// `..`, Windows paths, control characters and `.git`.
pub fn normalize_path(raw: &str) -> Result<String, ArchiveError> {
    if raw.starts_with('/') {
        return Err(ArchiveError::Absolute(raw.into()));
    }
    if raw.contains('\\') || (raw.len() >= 2 && raw.as_bytes()[1] == b':' && raw.as_bytes()[0].is_ascii_alphabetic()) {
        return Err(ArchiveError::WindowsPath(raw.into()));
    }
    if raw.chars().any(|c| c.is_control()) {
        return Err(ArchiveError::ControlCharacters(raw.escape_debug().to_string()));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(ArchiveError::Traversal(raw.into())),
            p if p.eq_ignore_ascii_case(".git") => return Err(ArchiveError::GitDir(raw.into())),
            p if p.contains(':') && p.len() == 2 => return Err(ArchiveError::WindowsPath(raw.into())),
            p => parts.push(p),
        }
    }
    let path = parts.join("/");
    if path.len() > MAX_PATH_BYTES {
        return Err(ArchiveError::PathTooLong(path, MAX_PATH_BYTES));
    }
    Ok(path)
}

/// Counts bytes read through it and fails past a limit: stops decompression bombs early.
struct Bounded<R> {
    inner: R,
    read: u64,
    max: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(std::io::Error::other(BOMB));
        }
        Ok(n)
    }
}

const BOMB: &str = "skill-pool: unpacked size limit";

/// Unpacks a tar.gz upload in memory. Directories are implied by file paths; empty folders
/// are dropped (git cannot hold them either).
pub fn unpack_tar_gz(data: &[u8], limits: &UploadLimits) -> Result<Vec<UploadFile>, ArchiveError> {
    if data.len() as u64 > limits.max_compressed_bytes {
        return Err(ArchiveError::CompressedTooLarge {
            max: limits.max_compressed_bytes,
        });
    }
    if data.len() < 2 || data[0] != 0x1f || data[1] != 0x8b {
        return Err(ArchiveError::NotGzip("it does not start with the gzip signature".into()));
    }
    // Tar headers and padding add to the file bodies: allow them room, then check bodies exactly.
    let max_stream = limits.max_unpacked_bytes.saturating_add(1024 * (limits.max_files as u64 + 16));
    let reader = Bounded {
        inner: GzDecoder::new(data),
        read: 0,
        max: max_stream,
    };
    let mut archive = tar::Archive::new(reader);
    let too_big = ArchiveError::UnpackedTooLarge {
        max: limits.max_unpacked_bytes,
    };
    let io_err = |e: std::io::Error, too_big: &ArchiveError| -> ArchiveError {
        if e.to_string().contains(BOMB) || e.get_ref().is_some_and(|r| r.to_string().contains(BOMB)) {
            too_big.clone()
        } else if e.kind() == std::io::ErrorKind::InvalidInput || e.to_string().contains("gzip") || e.to_string().contains("deflate") {
            ArchiveError::NotGzip(e.to_string())
        } else {
            ArchiveError::CorruptTar(e.to_string())
        }
    };
    let mut files: BTreeMap<String, UploadFile> = BTreeMap::new();
    let mut dirs: Vec<String> = Vec::new();
    let mut total: u64 = 0;
    let entries = archive.entries().map_err(|e| io_err(e, &too_big))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| io_err(e, &too_big))?;
        let raw_bytes = entry.path_bytes().into_owned();
        let raw = String::from_utf8(raw_bytes).map_err(|e| ArchiveError::NotUtf8(String::from_utf8_lossy(e.as_bytes()).into_owned()))?;
        let kind = entry.header().entry_type();
        let path = normalize_path(&raw)?;
        use tar::EntryType as T;
        let mode = match kind {
            T::Directory => {
                if !path.is_empty() {
                    dirs.push(path);
                }
                continue;
            }
            T::Regular | T::Continuous => {
                let m = entry.header().mode().unwrap_or(0o644);
                if m & 0o111 != 0 { FileMode::Executable } else { FileMode::Regular }
            }
            T::Symlink => FileMode::Symlink,
            T::Link => return Err(ArchiveError::HardLink(path)),
            T::Char => {
                return Err(ArchiveError::SpecialFile {
                    path,
                    kind: "character device",
                });
            }
            T::Block => {
                return Err(ArchiveError::SpecialFile {
                    path,
                    kind: "block device",
                });
            }
            T::Fifo => return Err(ArchiveError::SpecialFile { path, kind: "named pipe" }),
            // pax/GNU metadata entries are consumed by the tar reader; anything else is odd.
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink | T::GNUSparse => {
                return Err(ArchiveError::SpecialFile {
                    path,
                    kind: "sparse or unsupported tar entry",
                });
            }
            _ => {
                return Err(ArchiveError::SpecialFile {
                    path,
                    kind: "unsupported tar entry",
                });
            }
        };
        if path.is_empty() {
            return Err(ArchiveError::Absolute(raw));
        }
        let data = if mode == FileMode::Symlink {
            let target = entry
                .link_name_bytes()
                .map(|t| t.into_owned())
                .ok_or_else(|| ArchiveError::CorruptTar(format!("symbolic link `{path}` has no target")))?;
            String::from_utf8(target)
                .map_err(|_| ArchiveError::NotUtf8(path.clone()))?
                .into_bytes()
        } else {
            let size = entry.header().size().map_err(|e| ArchiveError::CorruptTar(e.to_string()))?;
            if total.saturating_add(size) > limits.max_unpacked_bytes {
                return Err(too_big);
            }
            let mut body = Vec::with_capacity(size.min(16 << 20) as usize);
            entry.by_ref().take(size).read_to_end(&mut body).map_err(|e| io_err(e, &too_big))?;
            body
        };
        total = total.saturating_add(data.len() as u64);
        if total > limits.max_unpacked_bytes {
            return Err(too_big);
        }
        if files.contains_key(&path) {
            return Err(ArchiveError::Duplicate(path));
        }
        if files.len() >= limits.max_files {
            return Err(ArchiveError::TooManyFiles { max: limits.max_files });
        }
        files.insert(path.clone(), UploadFile { path, mode, data });
    }
    if files.is_empty() {
        return Err(ArchiveError::Empty);
    }
    check_tree_shape(&files, &dirs)?;
    let files: Vec<UploadFile> = files.into_values().collect();
    crate::names::check_tree(&files)?;
    Ok(files)
}

/// No path may be a file and the parent of another path at once.
fn check_tree_shape(files: &BTreeMap<String, UploadFile>, dirs: &[String]) -> Result<(), ArchiveError> {
    for path in files.keys() {
        let mut parent = path.as_str();
        while let Some(i) = parent.rfind('/') {
            parent = &parent[..i];
            if files.contains_key(parent) {
                return Err(ArchiveError::FileAndFolder(parent.to_string()));
            }
        }
    }
    for d in dirs {
        if files.contains_key(d) {
            return Err(ArchiveError::FileAndFolder(d.clone()));
        }
    }
    Ok(())
}

/// Packs files into a deterministic tar.gz (sorted, mtime 0, owner 0).
pub fn pack_tar_gz(files: &[UploadFile]) -> Result<Vec<u8>, ArchiveError> {
    let mut sorted: Vec<&UploadFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let gz = GzEncoder::new(Vec::new(), Compression::default());
    let mut builder = tar::Builder::new(gz);
    let corrupt = |e: std::io::Error| ArchiveError::CorruptTar(e.to_string());
    for f in sorted {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match f.mode {
            FileMode::Symlink => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                // The target byte for byte: `append_link` would normalise it as a path
                // (`b/.` → `b`, `./x` → `x`), and a mirrored tree must keep its links exact.
                if f.data.len() < 100 {
                    header.set_link_name_literal(&f.data).map_err(corrupt)?;
                } else {
                    let mut long = tar::Header::new_gnu();
                    long.as_gnu_mut().expect("a GNU header").name[..13].copy_from_slice(b"././@LongLink");
                    long.set_entry_type(tar::EntryType::GNULongLink);
                    long.set_mode(0o644);
                    long.set_mtime(0);
                    long.set_uid(0);
                    long.set_gid(0);
                    long.set_size(f.data.len() as u64 + 1);
                    long.set_cksum();
                    builder.append(&long, f.data.chain(&[0u8][..])).map_err(corrupt)?;
                }
                builder.append_data(&mut header, &f.path, std::io::empty()).map_err(corrupt)?;
            }
            mode => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if mode == FileMode::Executable { 0o755 } else { 0o644 });
                header.set_size(f.data.len() as u64);
                builder.append_data(&mut header, &f.path, &f.data[..]).map_err(corrupt)?;
            }
        }
    }
    let gz = builder.into_inner().map_err(corrupt)?;
    let mut out = gz.finish().map_err(corrupt)?;
    out.flush().map_err(corrupt)?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // tables of test cases
mod tests {
    use super::*;

    fn limits() -> UploadLimits {
        UploadLimits::from_upload_limit(1 << 20)
    }

    /// A tar.gz built entry by entry with raw headers (so hostile names can be written).
    fn raw_tar(entries: &[(&str, tar::EntryType, &[u8], Option<&str>, u32)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        for (path, kind, body, link, mode) in entries {
            let mut h = tar::Header::new_gnu();
            {
                let name = &mut h.as_gnu_mut().unwrap().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
            }
            h.set_entry_type(*kind);
            h.set_mode(*mode);
            h.set_size(body.len() as u64);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            builder.append(&h, *body).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn file<'a>(path: &'a str, body: &'static [u8]) -> (&'a str, tar::EntryType, &'static [u8], Option<&'static str>, u32) {
        (path, tar::EntryType::Regular, body, None, 0o644)
    }

    #[test]
    fn round_trip_keeps_modes_and_bytes() {
        let files = vec![
            UploadFile {
                path: "SKILL.md".into(),
                mode: FileMode::Regular,
                data: b"hi".to_vec(),
            },
            UploadFile {
                path: "bin/run".into(),
                mode: FileMode::Executable,
                data: b"#!/bin/sh\n".to_vec(),
            },
            UploadFile {
                path: ".hidden".into(),
                mode: FileMode::Regular,
                data: Vec::new(),
            },
            UploadFile {
                path: "link".into(),
                mode: FileMode::Symlink,
                data: b"bin/run".to_vec(),
            },
            UploadFile {
                path: "blob.bin".into(),
                mode: FileMode::Regular,
                data: vec![0, 159, 146, 150, 255],
            },
        ];
        let packed = pack_tar_gz(&files).unwrap();
        assert_eq!(packed, pack_tar_gz(&files).unwrap(), "deterministic");
        let mut back = unpack_tar_gz(&packed, &limits()).unwrap();
        back.sort_by(|a, b| a.path.cmp(&b.path));
        let mut expected = files.clone();
        expected.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(back, expected);
    }

    /// Found by `tests/props.rs`: packing normalised link targets (`b/.` came back as `b`), so a
    /// mirrored tree (packed, then unpacked with the upload checks) changed its links.
    #[test]
    fn link_targets_round_trip_byte_for_byte() {
        let long = format!("{}/f", "d/..".repeat(40));
        for target in ["b/.", "./x", "a//b", "dir/", "x/./y", long.as_str()] {
            let files = vec![
                UploadFile {
                    path: "l".into(),
                    mode: FileMode::Symlink,
                    data: target.as_bytes().to_vec(),
                },
                UploadFile {
                    path: "d/f".into(),
                    mode: FileMode::Regular,
                    data: Vec::new(),
                },
            ];
            let back = unpack_tar_gz(&pack_tar_gz(&files).unwrap(), &limits()).unwrap();
            assert_eq!(back[1].data, target.as_bytes(), "{target}");
        }
    }

    #[test]
    fn refuses_hostile_paths() {
        use tar::EntryType as T;
        let cases: Vec<(Vec<u8>, fn(&ArchiveError) -> bool)> = vec![
            (raw_tar(&[file("../evil", b"x")]), |e| matches!(e, ArchiveError::Traversal(_))),
            (raw_tar(&[file("a/../../evil", b"x")]), |e| matches!(e, ArchiveError::Traversal(_))),
            (raw_tar(&[file("/etc/passwd", b"x")]), |e| matches!(e, ArchiveError::Absolute(_))),
            (raw_tar(&[file("C:/evil", b"x")]), |e| matches!(e, ArchiveError::WindowsPath(_))),
            (raw_tar(&[file("a\\b", b"x")]), |e| matches!(e, ArchiveError::WindowsPath(_))),
            (raw_tar(&[file(".git/config", b"x")]), |e| matches!(e, ArchiveError::GitDir(_))),
            (raw_tar(&[("l", T::Symlink, b"", Some("../outside"), 0o777)]), |e| {
                matches!(e, ArchiveError::Name(crate::names::NameError::Symlink { .. }))
            }),
            (raw_tar(&[("l", T::Symlink, b"", Some("/etc/passwd"), 0o777)]), |e| {
                matches!(e, ArchiveError::Name(crate::names::NameError::Symlink { .. }))
            }),
            (
                raw_tar(&[
                    ("a/up", T::Symlink, b"", Some(".."), 0o777),
                    ("b/x", T::Symlink, b"", Some("../a/up/.."), 0o777),
                ]),
                |e| matches!(e, ArchiveError::Name(crate::names::NameError::Symlink { .. })),
            ),
            (raw_tar(&[("loop", T::Symlink, b"", Some("loop"), 0o777)]), |e| {
                matches!(e, ArchiveError::Name(crate::names::NameError::Symlink { .. }))
            }),
            (raw_tar(&[file("a", b"x"), ("h", T::Link, b"", Some("a"), 0o644)]), |e| {
                matches!(e, ArchiveError::HardLink(_))
            }),
            (raw_tar(&[("dev", T::Char, b"", None, 0o644)]), |e| {
                matches!(e, ArchiveError::SpecialFile { .. })
            }),
            (raw_tar(&[("fifo", T::Fifo, b"", None, 0o644)]), |e| {
                matches!(e, ArchiveError::SpecialFile { .. })
            }),
            (raw_tar(&[file("a", b"x"), file("./a", b"y")]), |e| {
                matches!(e, ArchiveError::Duplicate(_))
            }),
            (raw_tar(&[file("a", b"x"), file("a/b", b"y")]), |e| {
                matches!(e, ArchiveError::FileAndFolder(_))
            }),
            (raw_tar(&[]), |e| matches!(e, ArchiveError::Empty)),
        ];
        for (i, (data, check)) in cases.into_iter().enumerate() {
            let err = unpack_tar_gz(&data, &limits()).unwrap_err();
            assert!(check(&err), "case {i}: {err:?}");
            assert!(!err.is_limit());
        }
        // A symlink inside the tree is fine.
        let ok = raw_tar(&[file("dir/f", b"x"), ("dir/l", T::Symlink, b"", Some("../dir/f"), 0o777)]);
        assert_eq!(unpack_tar_gz(&ok, &limits()).unwrap().len(), 2);
    }

    #[test]
    fn limits_and_bombs() {
        let small = UploadLimits {
            max_compressed_bytes: 1 << 20,
            max_unpacked_bytes: 1000,
            max_files: 2,
        };
        let big = vec![UploadFile {
            path: "zeros".into(),
            mode: FileMode::Regular,
            data: vec![0; 10 << 20],
        }];
        let bomb = pack_tar_gz(&big).unwrap();
        assert!(bomb.len() < 100_000, "compresses well");
        let err = unpack_tar_gz(&bomb, &small).unwrap_err();
        assert_eq!(err, ArchiveError::UnpackedTooLarge { max: 1000 });
        assert!(err.is_limit());

        let many: Vec<UploadFile> = (0..3)
            .map(|i| UploadFile {
                path: format!("f{i}"),
                mode: FileMode::Regular,
                data: vec![1],
            })
            .collect();
        assert_eq!(
            unpack_tar_gz(&pack_tar_gz(&many).unwrap(), &small).unwrap_err(),
            ArchiveError::TooManyFiles { max: 2 }
        );

        let tiny = UploadLimits {
            max_compressed_bytes: 10,
            ..small
        };
        assert!(unpack_tar_gz(&bomb, &tiny).unwrap_err().is_limit());
        assert!(matches!(
            unpack_tar_gz(b"not gzip at all", &limits()),
            Err(ArchiveError::NotGzip(_))
        ));
    }
}
