//! The motion gate: per camera, each sampled frame's luma, averaged over a grid of blocks, is compared
//! with a running background; when no block changed, nothing moved and the detector need not run.
//! Averaging over a block (~20×20 px at 720p) flattens sensor noise (σ 3 → 0.15 grey levels), so
//! noise never counts as motion while a face entering the scene changes dozens of blocks. Masked
//! regions (a clock, a screen, trees) are ignored. A frame is analysed anyway when the last
//! analysed one is older than the refresh interval, so a person standing still is seen again.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::frame::YuvFrame;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MotionConfig {
    /// Off: every sampled frame goes to the detector.
    pub enabled: bool,
    /// Blocks across the frame (rows follow the aspect ratio).
    pub grid_columns: u32,
    /// A block whose mean luma differs from the background by more than this (grey levels, 0–255)
    /// has changed. Lower is more sensitive.
    pub block_threshold: f32,
    /// Changed blocks needed to call it motion (1 = any).
    pub min_blocks: u32,
    /// How fast the background follows the scene (0–1; per sampled frame).
    pub background_rate: f32,
    /// Analyse a frame at least this often, moving or not.
    pub refresh_secs: f32,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            grid_columns: 64,
            block_threshold: 6.0,
            min_blocks: 2,
            background_rate: 0.1,
            refresh_secs: 2.0,
        }
    }
}

/// A region of the frame the gate ignores, in fractions of the frame (0–1).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaskRegion {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl MaskRegion {
    pub fn is_valid(&self) -> bool {
        let ok = |v: f32| v.is_finite() && (0.0..=1.0).contains(&v);
        ok(self.x) && ok(self.y) && ok(self.width) && ok(self.height) && self.width > 0.0 && self.height > 0.0
    }

    fn covers(&self, fx: f32, fy: f32) -> bool {
        fx >= self.x && fx < self.x + self.width && fy >= self.y && fy < self.y + self.height
    }
}

/// What the gate says of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Something moved: analyse it.
    Moved,
    /// Nothing moved, but the refresh interval has passed: analyse it.
    Refresh,
    /// Nothing moved: skip it.
    Still,
}

impl Verdict {
    pub fn analyse(self) -> bool {
        !matches!(self, Verdict::Still)
    }
}

pub struct MotionGate {
    config: MotionConfig,
    masks: Vec<MaskRegion>,
    /// Grid size and the frame size it was made for.
    grid: (u32, u32),
    frame_size: (u32, u32),
    background: Vec<f32>,
    /// Blocks ignored (masked).
    ignored: Vec<bool>,
    cells: Vec<f32>,
    last_analysed: Option<Instant>,
    /// The wait before the next refresh: `refresh_secs` shortened by up to a fifth at random, so
    /// cameras started together do not all refresh in the same instant every 2 s (a burst that
    /// showed as latency with 32 cameras on two workers).
    refresh_wait: Duration,
    rng: u32,
}

impl MotionGate {
    pub fn new(config: MotionConfig, masks: Vec<MaskRegion>) -> MotionGate {
        MotionGate {
            config,
            masks: masks.into_iter().filter(MaskRegion::is_valid).collect(),
            grid: (0, 0),
            frame_size: (0, 0),
            background: Vec::new(),
            ignored: Vec::new(),
            cells: Vec::new(),
            last_analysed: None,
            refresh_wait: Duration::ZERO,
            rng: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9E37_79B9, |d| d.subsec_nanos() | 1),
        }
    }

    pub fn config(&self) -> &MotionConfig {
        &self.config
    }

    /// Judges `frame`, sampled at `now`, and learns it into the background.
    pub fn judge(&mut self, frame: &YuvFrame, now: Instant) -> Verdict {
        if !self.config.enabled {
            self.last_analysed = Some(now);
            return Verdict::Moved;
        }
        let first = self.frame_size != frame.dimensions();
        if first {
            self.reset_for(frame);
        }
        self.measure(frame);
        let changed = if first {
            u32::MAX
        } else {
            self.cells
                .iter()
                .zip(&self.background)
                .zip(&self.ignored)
                .filter(|((c, b), ignored)| !**ignored && (**c - **b).abs() > self.config.block_threshold)
                .count() as u32
        };
        let rate = self.config.background_rate.clamp(0.0, 1.0);
        for (b, c) in self.background.iter_mut().zip(&self.cells) {
            *b += (c - *b) * rate;
        }
        let verdict = if changed >= self.config.min_blocks.max(1) {
            Verdict::Moved
        } else if self.last_analysed.is_none_or(|t| now.duration_since(t) >= self.refresh_wait) {
            Verdict::Refresh
        } else {
            Verdict::Still
        };
        if verdict.analyse() {
            self.last_analysed = Some(now);
            self.refresh_wait = self.next_refresh_wait();
        }
        verdict
    }

    fn next_refresh_wait(&mut self) -> Duration {
        // xorshift32: plenty for spreading refreshes.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let fraction = 0.8 + 0.2 * (self.rng as f32 / u32::MAX as f32);
        Duration::from_secs_f32(self.config.refresh_secs.max(0.0) * fraction)
    }

    fn reset_for(&mut self, frame: &YuvFrame) {
        let (w, h) = frame.dimensions();
        let cols = self.config.grid_columns.clamp(4, w / 4);
        let rows = ((cols as f32 * h as f32 / w as f32).round() as u32).clamp(2, h / 4);
        self.grid = (cols, rows);
        self.frame_size = (w, h);
        let n = (cols * rows) as usize;
        self.cells = vec![0.0; n];
        self.background = Vec::new();
        self.ignored = (0..n)
            .map(|i| {
                let (cx, cy) = ((i as u32 % cols) as f32 + 0.5, (i as u32 / cols) as f32 + 0.5);
                let (fx, fy) = (cx / cols as f32, cy / rows as f32);
                self.masks.iter().any(|m| m.covers(fx, fy))
            })
            .collect();
    }

    /// Block means of the luma, on every other row and column (plenty for a mean, half the reads).
    fn measure(&mut self, frame: &YuvFrame) {
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let (cols, rows) = (self.grid.0 as usize, self.grid.1 as usize);
        let luma = frame.luma();
        let mut sums = vec![0u32; cols * rows];
        let mut counts = vec![0u32; cols * rows];
        for y in (0..h).step_by(2) {
            let row = (y * rows / h) * cols;
            let line = &luma[y * w..(y + 1) * w];
            for x in (0..w).step_by(2) {
                let cell = row + x * cols / w;
                sums[cell] += u32::from(line[x]);
                counts[cell] += 1;
            }
        }
        for ((c, s), n) in self.cells.iter_mut().zip(&sums).zip(&counts) {
            *c = *s as f32 / (*n).max(1) as f32;
        }
        if self.background.is_empty() {
            self.background = self.cells.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(noise_seed: u32, square: Option<(u32, u32)>) -> YuvFrame {
        let mut img = image::RgbImage::from_pixel(320, 180, image::Rgb([90, 110, 100]));
        let mut seed = noise_seed;
        for p in img.pixels_mut() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let n = ((seed >> 24) % 7) as i32 - 3; // sensor noise, ±3 levels
            for c in p.0.iter_mut() {
                *c = (i32::from(*c) + n).clamp(0, 255) as u8;
            }
        }
        if let Some((x0, y0)) = square {
            for y in y0..y0 + 40 {
                for x in x0..x0 + 30 {
                    img.put_pixel(x, y, image::Rgb([220, 180, 160]));
                }
            }
        }
        YuvFrame::from_rgb(&img)
    }

    #[test]
    fn noise_is_still_a_new_object_is_motion_and_refresh_comes_on_time() {
        let mut gate = MotionGate::new(MotionConfig::default(), Vec::new());
        let t0 = Instant::now();
        assert_eq!(gate.judge(&scene(1, None), t0), Verdict::Moved, "the first frame is always looked at");
        for i in 1..8 {
            let at = t0 + Duration::from_millis(200 * i);
            assert_eq!(gate.judge(&scene(i as u32 + 1, None), at), Verdict::Still, "noise alone, frame {i}");
        }
        // The refresh comes between 1.6 and 2 s (jittered so that cameras do not refresh together).
        let near_refresh: Vec<Verdict> =
            (8..11).map(|i| gate.judge(&scene(30 + i, None), t0 + Duration::from_millis(200 * u64::from(i)))).collect();
        assert!(
            near_refresh.contains(&Verdict::Refresh) && !near_refresh.contains(&Verdict::Moved),
            "{near_refresh:?}"
        );
        assert_eq!(gate.judge(&scene(41, Some((100, 60))), t0 + Duration::from_millis(2200)), Verdict::Moved);
        // It moves again: still motion; then it stands still and the background takes it in.
        assert_eq!(gate.judge(&scene(42, Some((130, 60))), t0 + Duration::from_millis(2400)), Verdict::Moved);
        let mut verdicts = Vec::new();
        for i in 0..30 {
            verdicts.push(
                gate.judge(&scene(50 + i, Some((130, 60))), t0 + Duration::from_millis(2600 + 100 * u64::from(i))),
            );
        }
        assert_eq!(verdicts.last(), Some(&Verdict::Still), "{verdicts:?}");
    }

    #[test]
    fn motion_inside_a_mask_is_ignored() {
        let mask = MaskRegion { x: 0.25, y: 0.25, width: 0.5, height: 0.5 };
        let mut gate = MotionGate::new(MotionConfig::default(), vec![mask]);
        let t0 = Instant::now();
        gate.judge(&scene(1, None), t0);
        assert_eq!(gate.judge(&scene(2, Some((120, 60))), t0 + Duration::from_millis(200)), Verdict::Still);
        assert_eq!(gate.judge(&scene(3, Some((10, 10))), t0 + Duration::from_millis(400)), Verdict::Moved);
        assert!(!MaskRegion { x: 0.5, y: 0.5, width: 0.0, height: 0.1 }.is_valid());
    }

    #[test]
    fn a_disabled_gate_passes_everything() {
        let mut gate = MotionGate::new(MotionConfig { enabled: false, ..MotionConfig::default() }, Vec::new());
        let t0 = Instant::now();
        for i in 0..5 {
            assert!(gate.judge(&scene(1, None), t0 + Duration::from_millis(100 * i)).analyse());
        }
    }
}
