//! The progress bar: the only place that knows indicatif.

use crate::engine::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, IsTerminal};

/// Progress on standard error while a file is coded; silent when stderr is not a
/// terminal or `-q` was given.
pub struct Bar {
    bar: Option<ProgressBar>,
    /// Bytes the symbols stand for, to turn symbol counts into bytes.
    total_bytes: u64,
}

impl Bar {
    pub fn new(total_bytes: u64, quiet: bool) -> Bar {
        let bar = (!quiet && io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Bar { bar, total_bytes }
    }

    /// Shows a phase that has no progress of its own (the dictionary pass).
    pub fn phase(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
            bar.tick();
        }
    }

    /// The engine's callback.
    pub fn update(&self, p: &Progress) {
        let Some(bar) = &self.bar else { return };
        if p.symbols_total == 0 {
            return;
        }
        let bytes =
            (p.symbols_done as u128 * self.total_bytes as u128 / p.symbols_total as u128) as u64;
        bar.set_position(bytes);
        if p.bits > 0.0 && bytes > 0 {
            bar.set_message(format!("{:.3} bits/byte", p.bits / bytes as f64));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Whether a summary line should follow (the same rule as the bar).
    pub fn visible(&self) -> bool {
        self.bar.is_some()
    }
}
