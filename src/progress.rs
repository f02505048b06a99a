//! Progress of long CLI work (`troupe bench`, `troupe workflow check`) on
//! stderr: a bar (indicatif) on a terminal, plain lines otherwise, so a
//! log or CI output shows how far it got without control codes.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// The most plain lines one job prints (a line each step for a short
/// job, one per tenth for a long one).
const PLAIN_LINES: u64 = 20;

/// How far one job has got, shown on stderr.
pub struct Progress {
    what: &'static str,
    total: u64,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Progress of `what`, which takes `total` steps.
    pub fn new(what: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total).with_prefix(what);
            if let Ok(style) =
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed} {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Self { what, total, bar }
    }

    /// Step `done` (counting from 1) is starting or finished, doing `step`.
    pub fn step(&self, done: u64, step: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(step.to_owned());
            }
            None if self.plain_line(done) => {
                eprintln!("{}: [{done}/{}] {step}", self.what, self.total);
            }
            None => {}
        }
    }

    /// Whether step `done` gets a plain line: every step of a short job;
    /// the first, the last and one per tenth of a long one.
    fn plain_line(&self, done: u64) -> bool {
        let total = self.total.max(1);
        if total <= PLAIN_LINES || done <= 1 || done >= total {
            return true;
        }
        let tenth = |n: u64| n.saturating_mul(10) / total;
        tenth(done) != tenth(done - 1)
    }
}

impl Drop for Progress {
    /// Clears the bar, so only the result stays on the terminal.
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn a_long_job_prints_about_one_line_per_tenth() {
        let p = Progress {
            what: "check",
            total: 1000,
            bar: None,
        };
        let lines = (1..=1000).filter(|d| p.plain_line(*d)).count();
        assert_eq!(lines, 11, "the first step and one per tenth");
        let short = Progress {
            what: "bench",
            total: 12,
            bar: None,
        };
        assert!((1..=12).all(|d| short.plain_line(d)));
    }
}
