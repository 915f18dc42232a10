//! The cooldown marker: after a failure of the environment (server unreachable, timeout, a
//! program killed by a signal) later runs within the window skip the network, so a hook that
//! runs on every session start costs one line instead of a retry each time. One run per window
//! still tries (each failed attempt moves the marker's time on), so a machine that recovers
//! recovers; a success removes the marker. The window is the running command's `--cooldown`.
//!
//! The marker lives in the user's cache folder (`$XDG_CACHE_HOME/skill-pool/ensure/`, else
//! `~/.cache/…`), one per manifest, so nothing is written into the project.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// Unix seconds of the failure: the window (`--cooldown`) counts from here.
    pub failed_at: i64,
    /// The failure's class (`unreachable`, `timeout`, `signal`).
    pub class: String,
    pub message: String,
}

/// The marker file of the manifest at `manifest` (an absolute path), if a cache folder is known.
pub fn marker_path(manifest: &Path) -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".cache"),
    };
    let key = hex::encode(&Sha256::digest(manifest.to_string_lossy().as_bytes())[..8]);
    Some(base.join("skill-pool").join("ensure").join(format!("{key}.cooldown.json")))
}

/// The marker, if there is a readable one (a broken marker counts as none).
pub fn read(path: &Path) -> Option<Marker> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The marker when it still holds at `now` for a window of `window_secs`.
pub fn active(path: &Path, now: i64, window_secs: u64) -> Option<Marker> {
    read(path).filter(|m| now < m.failed_at.saturating_add(window_secs as i64))
}

pub fn write(path: &Path, marker: &Marker) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().expect("the marker has a folder"))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(marker).expect("a marker serialises"))?;
    std::fs::rename(&tmp, path)
}

pub fn clear(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Unix seconds now: `SKILL_POOL_NOW` when set (tests move time without sleeping), else the clock.
pub fn now() -> i64 {
    if let Some(v) = std::env::var("SKILL_POOL_NOW").ok().and_then(|v| v.parse().ok()) {
        return v;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A unix time as `2026-12-01 14:03 UTC`.
pub fn show(at: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| at.to_string())
}

/// Parses `90s`, `30m`, `1h`, `2d` or plain seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 90s, 30m, 1h, 2d)"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}` is not a duration (e.g. 90s, 30m, 1h, 2d)")),
    };
    Ok(n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_window() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x/m.json");
        assert!(active(&path, 0, 3600).is_none());
        let m = Marker {
            failed_at: 1000,
            class: "unreachable".into(),
            message: "connection refused".into(),
        };
        write(&path, &m).unwrap();
        assert_eq!(active(&path, 1001, 3600), Some(m.clone()));
        assert_eq!(active(&path, 4600, 3600), None, "the window is over");
        assert_eq!(active(&path, 1100, 90), None, "a shorter window is over sooner");
        clear(&path);
        assert!(read(&path).is_none());
        std::fs::write(&path, "garbage").unwrap();
        assert!(active(&path, 0, 3600).is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap(), 3600);
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("30m").unwrap(), 1800);
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("h").is_err());
    }
}
