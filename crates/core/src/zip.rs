//! Zip archives of a plugin version, for Claude Code's `archive` sources: deflated entries with
//! their unix modes (the client keeps them), a fixed timestamp so the same files always give the
//! same bytes (and so the same `sha256` in the catalogue). Symbolic links have no place here:
//! the client would turn them into regular files, so callers refuse them first.

use std::io::Write;

/// One file of the archive: its path (`/`-separated, relative), unix mode and body.
pub struct ZipFile<'a> {
    pub path: &'a str,
    /// `0o644` or `0o755`.
    pub mode: u32,
    pub data: &'a [u8],
}

/// 1980-01-01 00:00 in MS-DOS time and date.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// The archive's bytes (entries in the order given). Sizes past 4 GiB or 65,535 entries are not
/// supported (zip64): the upload limits keep a plugin far below them.
pub fn write_zip(files: &[ZipFile<'_>]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for f in files {
        let mut crc = flate2::Crc::new();
        crc.update(f.data);
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(f.data)?;
        let deflated = enc.finish()?;
        let (method, body): (u16, &[u8]) = if deflated.len() < f.data.len() {
            (8, &deflated)
        } else {
            (0, f.data)
        };
        let too_big = || std::io::Error::other("a file over 4 GiB cannot go into a zip without zip64");
        let offset = u32::try_from(out.len()).map_err(|_| too_big())?;
        let size = u32::try_from(body.len()).map_err(|_| too_big())?;
        let raw = u32::try_from(f.data.len()).map_err(|_| too_big())?;
        let name = f.path.as_bytes();
        let name_len = u16::try_from(name.len()).map_err(|_| std::io::Error::other("a path over 65,535 bytes"))?;
        // Local file header. Flag bit 11: the name is UTF-8.
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, 20);
        u16le(&mut out, 1 << 11);
        u16le(&mut out, method);
        u16le(&mut out, DOS_TIME);
        u16le(&mut out, DOS_DATE);
        u32le(&mut out, crc.sum());
        u32le(&mut out, size);
        u32le(&mut out, raw);
        u16le(&mut out, name_len);
        u16le(&mut out, 0);
        out.extend_from_slice(name);
        out.extend_from_slice(body);
        // Central directory entry: made by unix (3), the mode in the high half of the external
        // attributes, as a regular file (0o100000).
        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, (3 << 8) | 20);
        u16le(&mut central, 20);
        u16le(&mut central, 1 << 11);
        u16le(&mut central, method);
        u16le(&mut central, DOS_TIME);
        u16le(&mut central, DOS_DATE);
        u32le(&mut central, crc.sum());
        u32le(&mut central, size);
        u32le(&mut central, raw);
        u16le(&mut central, name_len);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u16le(&mut central, 0);
        u32le(&mut central, (0o100000 | (f.mode & 0o7777)) << 16);
        u32le(&mut central, offset);
        central.extend_from_slice(name);
    }
    let count = u16::try_from(files.len()).map_err(|_| std::io::Error::other("more than 65,535 files"))?;
    let cd_offset = u32::try_from(out.len()).map_err(|_| std::io::Error::other("an archive over 4 GiB"))?;
    let cd_size = u32::try_from(central.len()).map_err(|_| std::io::Error::other("an archive over 4 GiB"))?;
    out.extend_from_slice(&central);
    // End of central directory.
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, count);
    u16le(&mut out, count);
    u32le(&mut out, cd_size);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_well_formed() {
        let big = "hello ".repeat(1000);
        let files = [
            ZipFile {
                path: ".claude-plugin/plugin.json",
                mode: 0o644,
                data: br#"{"name":"p"}"#,
            },
            ZipFile {
                path: "bin/run.sh",
                mode: 0o755,
                data: big.as_bytes(),
            },
            ZipFile {
                path: "empty",
                mode: 0o644,
                data: b"",
            },
        ];
        let a = write_zip(&files).unwrap();
        assert_eq!(a, write_zip(&files).unwrap(), "same files, same bytes");
        assert_eq!(&a[..4], b"PK\x03\x04");
        let end = &a[a.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 3);
        // The deflated body is smaller than the text; the mode is kept in the central entry.
        assert!(a.len() < big.len());
        let cd = u32::from_le_bytes([end[16], end[17], end[18], end[19]]) as usize;
        let second = cd + 46 + ".claude-plugin/plugin.json".len();
        assert_eq!(&a[second..second + 4], b"PK\x01\x02");
        let attrs = u32::from_le_bytes([a[second + 38], a[second + 39], a[second + 40], a[second + 41]]);
        assert_eq!(attrs >> 16, 0o100755);
    }
}
