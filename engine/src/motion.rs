//! The motion gate: per camera, each sampled frame's luma, averaged over a grid of blocks, is compared
//! with a running background; when no block changed, nothing moved and the detector need not run.
//! Averaging over a block (~20×20 px at 720p) flattens sensor noise (σ 3 → 0.15 grey levels), so
//! noise never counts as motion while a face entering the scene changes dozens of blocks. Masked
//! regions (a clock, a screen, trees) are ignored. A frame is analysed anyway when the last
//! analysed one is older than the refresh interval, so a person standing still is seen again.
//! When most of the frame changes at once — a light switched on, the camera's switch to infrared,
//! the camera moved — the frame is analysed and becomes the background at once (Frigate's
//! "lightning threshold"): otherwise every frame after it would count as motion for the ~20 samples
//! the running background needs to catch up, and run the detector on an unchanging scene.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::frame::LumaView;
#[cfg(test)]
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
    /// When at least this fraction of the (unmasked) blocks changed at once, the whole scene changed:
    /// the frame is analysed and taken as the background at once. Above 1: never.
    pub scene_change_fraction: f32,
    /// Regions where something moved handed to the detector to look at closer, per frame (0: none).
    pub regions: u32,
    /// Changed blocks a region needs (fewer: sensor noise or a leaf, not a person).
    pub region_min_blocks: u32,
    /// When more than this fraction of the (unmasked) blocks changed, there are no regions: the
    /// camera pans or a crowd moves, the regions would be most of the frame, and looking closer at
    /// them would cost several detector runs per frame for little.
    pub region_max_moved_fraction: f32,
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
            scene_change_fraction: 0.8,
            regions: 3,
            region_min_blocks: 3,
            region_max_moved_fraction: 0.3,
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

/// A rectangle of the frame where something moved, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
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
    /// Blocks that changed in the frame last judged.
    moved: Vec<bool>,
    /// Per frame size: each block column's pixel range, and pixels summed per block.
    column_bounds: Vec<(usize, usize)>,
    counts: Vec<u32>,
    sums: Vec<u32>,
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
            moved: Vec::new(),
            column_bounds: Vec::new(),
            counts: Vec::new(),
            sums: Vec::new(),
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

    /// Judges a picture (its luma plane), sampled at `now`, and learns it into the background.
    pub fn judge<'a>(&mut self, picture: impl Into<LumaView<'a>>, now: Instant) -> Verdict {
        let frame: LumaView<'a> = picture.into();
        if !self.config.enabled {
            self.last_analysed = Some(now);
            return Verdict::Moved;
        }
        let first = self.frame_size != (frame.width, frame.height);
        if first {
            self.reset_for(frame.width, frame.height);
        }
        self.measure(&frame);
        self.moved.clear();
        self.moved.extend(
            self.cells
                .iter()
                .zip(&self.background)
                .zip(&self.ignored)
                .map(|((c, b), ignored)| !first && !*ignored && (c - b).abs() > self.config.block_threshold),
        );
        let changed = if first { u32::MAX } else { self.moved.iter().filter(|m| **m).count() as u32 };
        let watched = self.ignored.iter().filter(|i| !**i).count().max(1) as f32;
        let scene_changed = !first && changed as f32 >= self.config.scene_change_fraction * watched;
        if scene_changed || changed as f32 > self.config.region_max_moved_fraction * watched {
            // The whole picture changed, or most of it: no region of it is where something moved.
            self.moved.iter_mut().for_each(|m| *m = false);
        }
        let rate = if scene_changed { 1.0 } else { self.config.background_rate.clamp(0.0, 1.0) };
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

    /// Where something moved in the frame last judged: the bounding boxes of groups of changed blocks
    /// (touching or one block apart), in pixels, largest first, at most `max`. A group of fewer than
    /// `min_blocks` blocks is left out (sensor noise, a leaf); so is everything when more than
    /// `region_max_moved_fraction` of the scene moved, and after a change of the whole scene.
    pub fn moved_regions(&self, max: usize, min_blocks: usize) -> Vec<Region> {
        let (cols, rows) = (self.grid.0 as usize, self.grid.1 as usize);
        if self.moved.len() != cols * rows || max == 0 {
            return Vec::new();
        }
        let mut seen = vec![false; cols * rows];
        let mut groups: Vec<(usize, (usize, usize, usize, usize))> = Vec::new();
        for start in 0..self.moved.len() {
            if !self.moved[start] || seen[start] {
                continue;
            }
            // Flood fill over changed blocks up to two cells away (a face's blocks need not touch).
            let (mut count, mut bounds) = (0, (start % cols, start / cols, start % cols, start / cols));
            let mut stack = vec![start];
            seen[start] = true;
            while let Some(i) = stack.pop() {
                let (x, y) = (i % cols, i / cols);
                count += 1;
                bounds = (bounds.0.min(x), bounds.1.min(y), bounds.2.max(x), bounds.3.max(y));
                for ny in y.saturating_sub(2)..=(y + 2).min(rows - 1) {
                    for nx in x.saturating_sub(2)..=(x + 2).min(cols - 1) {
                        let j = ny * cols + nx;
                        if self.moved[j] && !seen[j] {
                            seen[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
            if count >= min_blocks.max(1) {
                groups.push((count, bounds));
            }
        }
        groups.sort_by_key(|g| std::cmp::Reverse((g.1 .2 - g.1 .0 + 1) * (g.1 .3 - g.1 .1 + 1)));
        let (w, h) = (self.frame_size.0 as usize, self.frame_size.1 as usize);
        groups
            .into_iter()
            .take(max)
            .map(|(_, (x0, y0, x1, y1))| {
                let (px0, py0) = (x0 * w / cols, y0 * h / rows);
                let (px1, py1) = ((x1 + 1) * w / cols, (y1 + 1) * h / rows);
                Region { x: px0 as u32, y: py0 as u32, width: (px1 - px0) as u32, height: (py1 - py0) as u32 }
            })
            .collect()
    }

    fn next_refresh_wait(&mut self) -> Duration {
        // xorshift32: plenty for spreading refreshes.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let fraction = 0.8 + 0.2 * (self.rng as f32 / u32::MAX as f32);
        Duration::from_secs_f32(self.config.refresh_secs.max(0.0) * fraction)
    }

    fn reset_for(&mut self, w: u32, h: u32) {
        let cols = self.config.grid_columns.clamp(4, w / 4);
        let rows = ((cols as f32 * h as f32 / w as f32).round() as u32).clamp(2, h / 4);
        self.grid = (cols, rows);
        self.frame_size = (w, h);
        let n = (cols * rows) as usize;
        self.cells = vec![0.0; n];
        self.column_bounds.clear();
        self.background = Vec::new();
        self.ignored = (0..n)
            .map(|i| {
                let (cx, cy) = ((i as u32 % cols) as f32 + 0.5, (i as u32 / cols) as f32 + 0.5);
                let (fx, fy) = (cx / cols as f32, cy / rows as f32);
                self.masks.iter().any(|m| m.covers(fx, fy))
            })
            .collect();
    }

    /// Block means of the luma, on every other row (plenty for a mean, half the reads). Each row is
    /// summed a block's run of pixels at a time, which the compiler turns into vector code: a lookup
    /// or a division per pixel cost several times more.
    fn measure(&mut self, frame: &LumaView<'_>) {
        let (w, h) = (frame.width as usize, frame.height as usize);
        let (cols, rows) = (self.grid.0 as usize, self.grid.1 as usize);
        if self.column_bounds.len() != cols {
            self.column_bounds = (0..cols).map(|c| (c * w / cols, (c + 1) * w / cols)).collect();
            self.counts = vec![0; cols * rows];
            for y in (0..h).step_by(2) {
                let row = (y * rows / h) * cols;
                for (c, (x0, x1)) in self.column_bounds.iter().enumerate() {
                    self.counts[row + c] += (x1 - x0) as u32;
                }
            }
        }
        self.sums.clear();
        self.sums.resize(cols * rows, 0);
        for y in (0..h).step_by(2) {
            let Some(line) = frame.row(y) else { break };
            let row = &mut self.sums[(y * rows / h) * cols..][..cols];
            for (sum, &(x0, x1)) in row.iter_mut().zip(&self.column_bounds) {
                *sum += line[x0..x1].iter().map(|&p| u32::from(p)).sum::<u32>();
            }
        }
        for ((c, s), n) in self.cells.iter_mut().zip(&self.sums).zip(&self.counts) {
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
    fn a_change_of_the_whole_scene_is_analysed_once_and_becomes_the_background() {
        let mut gate = MotionGate::new(MotionConfig::default(), Vec::new());
        let t0 = Instant::now();
        gate.judge(&scene(1, None), t0);
        let brighter = |seed: u32| {
            let mut f = scene(seed, None).to_rgb();
            for p in f.pixels_mut() {
                p.0 = p.0.map(|c| c.saturating_add(40));
            }
            YuvFrame::from_rgb(&f)
        };
        // The light goes on: that frame is looked at, the ones after it are the new still scene.
        assert_eq!(gate.judge(&brighter(2), t0 + Duration::from_millis(200)), Verdict::Moved);
        for i in 3..8 {
            let at = t0 + Duration::from_millis(200 * u64::from(i));
            assert_eq!(gate.judge(&brighter(i), at), Verdict::Still, "frame {i} after the light went on");
        }
        // With the scene change switched off, the background takes many frames to follow.
        let mut slow = MotionGate::new(MotionConfig { scene_change_fraction: 2.0, ..MotionConfig::default() }, vec![]);
        slow.judge(&scene(1, None), t0);
        let verdicts: Vec<Verdict> =
            (2..8).map(|i| slow.judge(&brighter(i), t0 + Duration::from_millis(200 * u64::from(i)))).collect();
        assert!(verdicts.iter().all(|v| *v == Verdict::Moved), "{verdicts:?}");
    }

    #[test]
    fn regions_are_where_things_moved_one_per_group_and_largest_first() {
        let mut gate = MotionGate::new(MotionConfig::default(), Vec::new());
        let t0 = Instant::now();
        gate.judge(&scene(1, None), t0);
        // Two objects appear: one 30×40 at (100, 60), one 30×40 at (250, 20) pasted twice side by side
        // to be larger.
        let mut img = scene(2, Some((100, 60))).to_rgb();
        for y in 20..60 {
            for x in 250..310 {
                img.put_pixel(x, y, image::Rgb([220, 180, 160]));
            }
        }
        assert_eq!(gate.judge(&YuvFrame::from_rgb(&img), t0 + Duration::from_millis(200)), Verdict::Moved);
        let regions = gate.moved_regions(4, 2);
        assert_eq!(regions.len(), 2, "{regions:?}");
        let contains = |r: &Region, x: u32, y: u32, w: u32, h: u32| {
            r.x <= x && r.y <= y && r.x + r.width >= x + w && r.y + r.height >= y + h && r.width <= w + 20
        };
        assert!(contains(&regions[0], 250, 20, 60, 40), "the larger first: {regions:?}");
        assert!(contains(&regions[1], 100, 60, 30, 40), "{regions:?}");
        assert_eq!(gate.moved_regions(1, 2).len(), 1);
        // A group smaller than asked for is left out; sensor noise alone makes none.
        assert!(gate.moved_regions(4, 1000).is_empty());
        let mut quiet = MotionGate::new(MotionConfig::default(), Vec::new());
        quiet.judge(&scene(5, None), t0);
        quiet.judge(&scene(6, None), t0 + Duration::from_millis(200));
        assert!(quiet.moved_regions(4, 1).is_empty(), "{:?}", quiet.moved_regions(4, 1));
    }

    #[test]
    fn no_regions_when_most_of_the_scene_moved() {
        // Half the frame changes (a pan, a crowd): below the scene-change fraction, so it is motion,
        // but above region_max_moved_fraction, so there is nothing to look at closer.
        let mut gate = MotionGate::new(MotionConfig::default(), Vec::new());
        let t0 = Instant::now();
        gate.judge(&scene(1, None), t0);
        let mut img = scene(2, None).to_rgb();
        let (w, h) = img.dimensions();
        for y in 0..h {
            for x in 0..w / 2 {
                img.put_pixel(x, y, image::Rgb([230, 230, 230]));
            }
        }
        assert_eq!(gate.judge(&YuvFrame::from_rgb(&img), t0 + Duration::from_millis(200)), Verdict::Moved);
        assert!(gate.moved_regions(3, 1).is_empty(), "{:?}", gate.moved_regions(3, 1));
        // The same change with the limit lifted is one region.
        let config = MotionConfig { region_max_moved_fraction: 1.0, ..MotionConfig::default() };
        let mut gate = MotionGate::new(config, Vec::new());
        gate.judge(&scene(1, None), t0);
        assert_eq!(gate.judge(&YuvFrame::from_rgb(&img), t0 + Duration::from_millis(200)), Verdict::Moved);
        assert_eq!(gate.moved_regions(3, 1).len(), 1);
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
