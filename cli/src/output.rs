//! How results reach the user: JSON printing and the three displays of a
//! live execution (progress bar on a terminal, plain lines otherwise, JSON
//! lines with `--json`). Depends on [`crate::history`], never the reverse.

use std::io::Write;
use std::time::Duration;

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::error::Result;
use crate::history::{Ending, Note, Progress};
use crate::time::clock;

/// Pretty JSON and a newline.
pub fn print_json<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// One-line JSON (for JSON Lines streams).
pub fn print_json_line<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<()> {
    let text = serde_json::to_string(value).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// Where a live execution is shown.
pub trait LiveDisplay {
    fn note(&mut self, note: &Note) -> Result<()>;
    fn progress(&mut self, progress: &Progress) -> Result<()>;
    fn finish(&mut self, ending: &Ending) -> Result<()>;
}

/// One text line per loud note: `06:18:01  [Shift traffic] step 1/3: ...`.
pub fn note_line(note: &Note) -> String {
    let at = DateTime::from_str(&note.at, Format::DateTime)
        .map(clock)
        .unwrap_or_else(|_| note.at.clone());
    match &note.state {
        Some(s) => format!("{at}  [{s}] {}", note.text),
        None => format!("{at}  {}", note.text),
    }
}

/// Plain lines, for logs and pipes.
#[derive(Debug)]
pub struct PlainDisplay<W: Write> {
    out: W,
}

impl<W: Write> PlainDisplay<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> LiveDisplay for PlainDisplay<W> {
    fn note(&mut self, note: &Note) -> Result<()> {
        if note.loud {
            writeln!(self.out, "{}", note_line(note))?;
            self.out.flush()?;
        }
        Ok(())
    }

    fn progress(&mut self, _: &Progress) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self, _: &Ending) -> Result<()> {
        Ok(())
    }
}

/// Every note as one JSON object per line; the last line has `"kind": "ended"`.
#[derive(Debug)]
pub struct JsonDisplay<W: Write> {
    out: W,
}

impl<W: Write> JsonDisplay<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> LiveDisplay for JsonDisplay<W> {
    fn note(&mut self, note: &Note) -> Result<()> {
        print_json_line(&mut self.out, note)
    }

    fn progress(&mut self, _: &Progress) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self, _: &Ending) -> Result<()> {
        Ok(())
    }
}

/// A bar of canary steps under the story lines, on a terminal (a spinner
/// until the number of steps is known).
#[derive(Debug)]
pub struct BarDisplay {
    bar: ProgressBar,
    has_steps: bool,
}

impl BarDisplay {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        let spinner = ProgressStyle::with_template("{spinner} {elapsed_precise} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(spinner);
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            bar,
            has_steps: false,
        }
    }

    fn show_steps(&mut self) {
        let style = ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:24}] {pos}/{len} steps  {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("█▌ ");
        self.bar.set_style(style);
        self.has_steps = true;
    }
}

impl Default for BarDisplay {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveDisplay for BarDisplay {
    fn note(&mut self, note: &Note) -> Result<()> {
        if note.loud {
            self.bar.println(note_line(note));
        }
        Ok(())
    }

    fn progress(&mut self, p: &Progress) -> Result<()> {
        if p.steps > 0 {
            if !self.has_steps {
                self.show_steps();
            }
            self.bar.set_length(p.steps as u64);
            self.bar.set_position(p.reached as u64);
        }
        self.bar.set_message(p.message.clone());
        Ok(())
    }

    fn finish(&mut self, _: &Ending) -> Result<()> {
        // The ending is already a story line above the bar.
        self.bar.finish_and_clear();
        Ok(())
    }
}
