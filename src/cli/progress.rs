//! The progress bar: the only place that knows indicatif.

use crate::engine::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, IsTerminal};

/// Progress on standard error while data is coded; silent when stderr is not a
/// terminal or `-q` was given.
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    /// `total_bytes` is the input's size when known (a file), `None` for a stream.
    pub fn new(total_bytes: Option<u64>, quiet: bool) -> Bar {
        let bar = (!quiet && io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(total_bytes, ProgressDrawTarget::stderr());
            let template = if total_bytes.is_some() {
                "{spinner} {elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}"
            } else {
                "{spinner} {elapsed_precise} {bytes} {bytes_per_sec} {msg}"
            };
            let style = ProgressStyle::with_template(template).expect("valid template").progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Bar { bar }
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
        bar.set_position(p.bytes_done);
        if p.bits > 0.0 && p.bytes_done > 0 {
            bar.set_message(format!("{:.3} bits/byte", p.bits / p.bytes_done as f64));
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
