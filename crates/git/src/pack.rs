//! Packs written without git: a version's new objects (blobs, trees, commits) as one pack
//! file and its version-2 index, exactly the format `git index-pack` produces for an
//! undeltified pack, so that every git reads them. Saves a `git fast-import` process per
//! publish (its start-up and its own syncs cost more than the whole write of a small plugin).
//!
//! Pack format (`Documentation/gitformat-pack.txt`): `PACK`, version 2, the object count, then
//! per object a type-and-size header and the zlib-deflated body, then the SHA-1 of all that.
//! Index v2: magic, version, a 256-entry fan-out table, the sorted object ids, a CRC-32 of each
//! object's packed bytes, 31-bit offsets (with a table of 64-bit ones for offsets past 2 GiB),
//! the pack's checksum, and the SHA-1 of the index itself.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::ZlibEncoder;
use sha1::{Digest, Sha1};

use crate::object::ObjectId;

/// An object's type, as the pack header codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Commit = 1,
    Tree = 2,
    Blob = 3,
}

/// One object to pack: its id (computed by the caller, trusted), type and raw body.
pub struct PackObject {
    pub id: ObjectId,
    pub kind: Kind,
    pub body: Vec<u8>,
}

/// A pack written under temporary names in `objects/pack`, its data synced to the disk. Nothing
/// reads it until [`StagedPack::install`] renames it into place; dropped before that, its files
/// are removed.
pub struct StagedPack {
    pack: tempfile::TempPath,
    idx: tempfile::TempPath,
    dir: PathBuf,
    name: String,
}

impl StagedPack {
    /// `pack-<checksum>`: the name git gives the pack.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the pack, then its index (the index is what makes a pack visible to git).
    pub fn install(self) -> std::io::Result<PathBuf> {
        let pack = self.dir.join(format!("{}.pack", self.name));
        let idx = self.dir.join(format!("{}.idx", self.name));
        self.pack.persist(&pack).map_err(|e| e.error)?;
        self.idx.persist(&idx).map_err(|e| e.error)?;
        Ok(pack)
    }
}

/// Writes `objects` (distinct ids) as a pack and its index in `pack_dir` under temporary
/// names, then syncs the file system once (`syncfs`: one journal commit for both files, where
/// git pays one `fsync` each). Blocking I/O and CPU (deflate).
pub fn stage(pack_dir: &Path, objects: &[PackObject]) -> std::io::Result<StagedPack> {
    let count = u32::try_from(objects.len()).map_err(|_| std::io::Error::other("too many objects for one pack"))?;
    let pack_tmp = tempfile::Builder::new().prefix("tmp_pack_").tempfile_in(pack_dir)?;
    let (pack_file, pack_path) = pack_tmp.into_parts();
    let mut out = HashingWriter::new(BufWriter::with_capacity(256 * 1024, pack_file));
    out.write_all(b"PACK")?;
    out.write_all(&2u32.to_be_bytes())?;
    out.write_all(&count.to_be_bytes())?;
    // (id, crc32, offset) per object, in pack order.
    let mut entries: Vec<(ObjectId, u32, u64)> = Vec::with_capacity(objects.len());
    let mut header = Vec::with_capacity(16);
    for object in objects {
        let offset = out.written;
        header.clear();
        object_header(object.kind, object.body.len() as u64, &mut header);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        out.write_all(&header)?;
        let mut z = ZlibEncoder::new(
            CrcWriter {
                inner: &mut out,
                crc: &mut crc,
            },
            Compression::default(),
        );
        z.write_all(&object.body)?;
        z.finish()?;
        entries.push((object.id, crc.finalize(), offset));
    }
    let checksum: [u8; 20] = out.hasher.clone().finalize().into();
    let mut file = out.inner.into_inner().map_err(|e| e.into_error())?;
    file.write_all(&checksum)?;
    drop(file);

    let idx_tmp = tempfile::Builder::new().prefix("tmp_idx_").tempfile_in(pack_dir)?;
    let (idx_file, idx_path) = idx_tmp.into_parts();
    let mut idx = HashingWriter::new(BufWriter::new(idx_file));
    write_index(&mut idx, &mut entries, &checksum)?;
    let idx_checksum: [u8; 20] = idx.hasher.clone().finalize().into();
    let mut file = idx.inner.into_inner().map_err(|e| e.into_error())?;
    file.write_all(&idx_checksum)?;
    rustix::fs::syncfs(&file)?;
    drop(file);
    Ok(StagedPack {
        pack: pack_path,
        idx: idx_path,
        dir: pack_dir.to_path_buf(),
        name: format!("pack-{}", hex::encode(checksum)),
    })
}

/// The type-and-size header: type in bits 4–6 of the first byte, the size in its low 4 bits and
/// then 7 bits per byte, low bits first, the high bit meaning "more follows".
fn object_header(kind: Kind, size: u64, out: &mut Vec<u8>) {
    let mut byte = ((kind as u8) << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
}

fn write_index(out: &mut impl Write, entries: &mut [(ObjectId, u32, u64)], pack_checksum: &[u8; 20]) -> std::io::Result<()> {
    entries.sort_unstable_by_key(|e| e.0);
    out.write_all(&[0xff, b't', b'O', b'c'])?;
    out.write_all(&2u32.to_be_bytes())?;
    let mut fanout = [0u32; 256];
    for (id, ..) in entries.iter() {
        fanout[id.as_bytes()[0] as usize] += 1;
    }
    let mut total = 0u32;
    for n in fanout {
        total += n;
        out.write_all(&total.to_be_bytes())?;
    }
    for (id, ..) in entries.iter() {
        out.write_all(id.as_bytes())?;
    }
    for (_, crc, _) in entries.iter() {
        out.write_all(&crc.to_be_bytes())?;
    }
    let mut large: Vec<u64> = Vec::new();
    for (.., offset) in entries.iter() {
        if *offset < 0x8000_0000 {
            out.write_all(&(*offset as u32).to_be_bytes())?;
        } else {
            out.write_all(&(0x8000_0000 | large.len() as u32).to_be_bytes())?;
            large.push(*offset);
        }
    }
    for offset in large {
        out.write_all(&offset.to_be_bytes())?;
    }
    out.write_all(pack_checksum)
}

/// Counts and hashes what goes through it (the pack and index trailers are SHA-1s of the bytes
/// before them).
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha1,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha1::new(),
            written: 0,
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Feeds the deflated bytes to the object's CRC-32 on their way to the pack.
struct CrcWriter<'a, W: Write> {
    inner: &'a mut W,
    crc: &'a mut crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let mut v = Vec::new();
        object_header(Kind::Blob, 5, &mut v);
        assert_eq!(v, [0x35]);
        v.clear();
        object_header(Kind::Commit, 300, &mut v);
        // 300 = 0b1_0010_1100: low nibble 0xc, then 0b10010 = 18.
        assert_eq!(v, [0x80 | 0x10 | 0x0c, 18]);
        v.clear();
        object_header(Kind::Tree, 16, &mut v);
        assert_eq!(v, [0x80 | 0x20, 1]);
    }
}
