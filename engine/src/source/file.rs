//! A file source: plays an Annex-B H.264 file in real time at a given frame rate, looping at the end
//! (for demos and benchmarks, and as a camera that needs no network).

use std::path::Path;
use std::time::Duration;

use super::annexb::{access_units, AccessUnit};
use super::SourceError;

pub struct FileSource {
    name: String,
    units: Vec<AccessUnit>,
    next: usize,
    looping: bool,
    ticker: tokio::time::Interval,
}

impl FileSource {
    pub fn open(path: &Path, fps: f32, looping: bool) -> Result<FileSource, SourceError> {
        let name = path.display().to_string();
        let data = std::fs::read(path).map_err(|e| SourceError::File { path: name.clone(), detail: e.to_string() })?;
        let units = access_units(&data);
        if units.is_empty() {
            return Err(SourceError::File {
                path: name,
                detail: "no H.264 access unit found (not an Annex-B stream?)".into(),
            });
        }
        if !(fps.is_finite() && fps > 0.0 && fps <= 240.0) {
            return Err(SourceError::File { path: name, detail: format!("frame rate {fps} outside 0..=240") });
        }
        let mut ticker = tokio::time::interval(Duration::from_secs_f32(1.0 / fps));
        // A late consumer gets the next frame at once, then the schedule resumes: like a camera,
        // the file never bursts to catch up.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(FileSource { name, units, next: 0, looping, ticker })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next access unit at its due time; `None` at the end of a non-looping file.
    pub async fn next_access_unit(&mut self) -> Option<AccessUnit> {
        if self.next == self.units.len() {
            if !self.looping {
                return None;
            }
            self.next = 0;
        }
        self.ticker.tick().await;
        self.next += 1;
        Some(self.units[self.next - 1].clone())
    }
}
