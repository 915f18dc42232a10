//! Printing helpers shared by several commands: `--json` output and human-readable sizes.
//! Results go to stdout, progress and warnings to stderr.

use crate::failure::Outcome;

/// Prints `value` as pretty JSON on stdout (what `--json` shows).
pub fn print_json<T: serde::Serialize>(value: &T) -> Outcome {
    let text = serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?;
    println!("{text}");
    Ok(())
}

/// `512 B`, `1.5 KiB`, `2.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
    }
}
