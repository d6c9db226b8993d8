//! A file source: plays an Annex-B H.264 file in real time at a given frame rate, looping at the end
//! (for demos and benchmarks, and as a camera that needs no network). The file is read from disk a
//! block at a time as it plays — a camera holds one block and the picture being assembled, however
//! long the file — and a frame delivered later than its due time is counted, so a source that falls
//! behind its own rate shows it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::annexb::{AccessUnit, AccessUnitSplitter};
use super::SourceError;

/// Read from disk at a time.
const BLOCK: usize = 64 * 1024;

pub struct FileSource {
    path: PathBuf,
    name: String,
    file: tokio::fs::File,
    splitter: AccessUnitSplitter,
    block: Vec<u8>,
    /// Units left over at the end of a pass, played before the file starts again.
    leftover: std::collections::VecDeque<AccessUnit>,
    looping: bool,
    finished: bool,
    /// Units delivered in this pass (an empty pass means the file holds no H.264).
    units_in_pass: u64,
    ticker: tokio::time::Interval,
    period: Duration,
    late: u64,
}

impl FileSource {
    pub async fn open(path: &Path, fps: f32, looping: bool) -> Result<FileSource, SourceError> {
        let name = path.display().to_string();
        if !(fps.is_finite() && fps > 0.0 && fps <= 240.0) {
            return Err(SourceError::File { path: name, detail: format!("frame rate {fps} outside 0..=240") });
        }
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| SourceError::File { path: name.clone(), detail: e.to_string() })?;
        let period = Duration::from_secs_f32(1.0 / fps);
        let mut ticker = tokio::time::interval(period);
        // A late consumer gets the next frame at once, then the schedule resumes: like a camera,
        // the file never bursts to catch up (the lateness is counted instead).
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(FileSource {
            path: path.to_path_buf(),
            name,
            file,
            splitter: AccessUnitSplitter::default(),
            block: vec![0; BLOCK],
            leftover: Default::default(),
            looping,
            finished: false,
            units_in_pass: 0,
            ticker,
            period,
            late: 0,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Frames delivered more than one frame interval after they were due (the reader fell behind).
    pub fn late_frames(&self) -> u64 {
        self.late
    }

    /// The next access unit at its due time; `Ok(None)` at the end of a non-looping file.
    pub async fn next_access_unit(&mut self) -> Result<Option<AccessUnit>, SourceError> {
        let Some(unit) = self.read_unit().await? else { return Ok(None) };
        let due = self.ticker.tick().await;
        if Instant::now().saturating_duration_since(due.into_std()) > self.period {
            self.late += 1;
        }
        Ok(Some(unit))
    }

    async fn read_unit(&mut self) -> Result<Option<AccessUnit>, SourceError> {
        loop {
            if let Some(u) = self.leftover.pop_front().or_else(|| self.splitter.next_unit()) {
                self.units_in_pass += 1;
                return Ok(Some(u));
            }
            if self.finished {
                if self.units_in_pass == 0 {
                    return Err(SourceError::File {
                        path: self.name.clone(),
                        detail: "no H.264 access unit found (not an Annex-B stream?)".into(),
                    });
                }
                if !self.looping {
                    return Ok(None);
                }
                self.restart().await?;
                continue;
            }
            let n = self.file.read(&mut self.block).await.map_err(|e| self.error(e))?;
            if n == 0 {
                self.finished = true;
                self.leftover.extend(self.splitter.finish());
            } else {
                self.splitter.push(&self.block[..n]);
            }
        }
    }

    async fn restart(&mut self) -> Result<(), SourceError> {
        self.file = tokio::fs::File::open(&self.path).await.map_err(|e| self.error(e))?;
        self.splitter = AccessUnitSplitter::default();
        self.finished = false;
        self.units_in_pass = 0;
        Ok(())
    }

    fn error(&self, e: std::io::Error) -> SourceError {
        SourceError::File { path: self.name.clone(), detail: e.to_string() }
    }
}
