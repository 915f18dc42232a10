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

/// A byte progress bar on stderr for an upload of `len` bytes (drawn only on a terminal), and
/// the callback that moves it.
pub fn upload_bar(len: u64, what: &str) -> (indicatif::ProgressBar, skill_pool_client::UploadProgress) {
    let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}") {
        bar.set_style(style);
    }
    bar.set_message(format!("uploading {what}"));
    let moved = bar.clone();
    let progress: skill_pool_client::UploadProgress = std::sync::Arc::new(move |sent| {
        moved.set_position(sent);
        if sent >= len {
            moved.set_message("processing on the server");
        }
    });
    (bar, progress)
}
