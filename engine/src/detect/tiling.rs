//! The views a frame is scanned in: the whole frame, plus (when enabled) overlapping square tiles so
//! that faces too small for the detector's input at full-frame scale are still found, plus the regions
//! where something moved (from the motion gate), seen closer: a small face walking into view is
//! scanned at near its own resolution for one detector run, not the frame's worth of tiles.

use serde::Deserialize;

/// A rectangle of the source image, in whole pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TilingConfig {
    /// Scan tiles in addition to the whole frame.
    pub enabled: bool,
    /// Side of a square tile, in source pixels. Frames no larger than this on both sides are not tiled.
    pub tile_size: u32,
    /// Fraction of a tile shared with its neighbour; a face smaller than tile_size × overlap always
    /// lies wholly inside some tile.
    pub overlap: f32,
}

impl Default for TilingConfig {
    fn default() -> Self {
        Self { enabled: false, tile_size: 480, overlap: 0.25 }
    }
}

/// Start offsets of tiles of `tile` px covering `len` px with `stride` px steps; the last is aligned to
/// the end so that no tile hangs over the edge.
fn offsets(len: u32, tile: u32, stride: u32) -> Vec<u32> {
    if len <= tile {
        return vec![0];
    }
    let mut out: Vec<u32> = (0..).map(|i| i * stride).take_while(|&o| o + tile < len).collect();
    out.push(len - tile);
    out
}

/// The whole frame first, then the tiles (none when tiling is off or the frame is small).
pub fn views(width: u32, height: u32, cfg: &TilingConfig) -> Vec<View> {
    let mut out = vec![View { x: 0, y: 0, width, height }];
    let tile = cfg.tile_size.max(16);
    if !cfg.enabled || (width <= tile && height <= tile) {
        return out;
    }
    let stride = ((tile as f32) * (1.0 - cfg.overlap.clamp(0.0, 0.9))).round().max(1.0) as u32;
    for y in offsets(height, tile, stride) {
        for x in offsets(width, tile, stride) {
            out.push(View { x, y, width: tile.min(width), height: tile.min(height) });
        }
    }
    out
}

/// A region of interest (where something moved) as a view seen close: grown by a quarter on each
/// side for context, made square, at least `min_side` (the detector's input side: a small face is
/// then scanned at its own resolution or larger), at most the frame's shorter side, kept inside the
/// frame. `None` when that is the whole frame (a square frame): the whole-frame view sees it already.
pub fn region_view(width: u32, height: u32, region: View, min_side: u32) -> Option<View> {
    let grow = region.width.max(region.height) / 4;
    let side = (region.width.max(region.height) + 2 * grow).max(min_side).min(width.min(height));
    if side == 0 || (side == width && side == height) {
        return None;
    }
    let centre = |start: u32, len: u32, limit: u32| {
        let c = start + len / 2;
        c.saturating_sub(side / 2).min(limit - side)
    };
    Some(View {
        x: centre(region.x, region.width, width),
        y: centre(region.y, region.height, height),
        width: side,
        height: side,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moving_region_is_seen_close_square_and_inside_the_frame() {
        // A 30 px face moving near the right edge of a 720p frame: a 192 px square around it.
        let v = region_view(1280, 720, View { x: 1240, y: 300, width: 30, height: 36 }, 192).unwrap();
        assert_eq!((v.width, v.height), (192, 192));
        assert!(v.x + v.width <= 1280 && v.x <= 1240 && v.y <= 300 && v.y + v.height >= 336, "{v:?}");
        // A larger region grows by a quarter on each side.
        let v = region_view(1280, 720, View { x: 400, y: 200, width: 200, height: 120 }, 192).unwrap();
        assert_eq!(v.width, 300);
        // A large region is at most the frame's shorter side: still closer than the whole frame.
        let v = region_view(1280, 720, View { x: 0, y: 0, width: 600, height: 500 }, 192).unwrap();
        assert_eq!((v.x, v.y, v.width, v.height), (0, 0, 720, 720));
        // In a square frame that is the whole frame, which is scanned anyway.
        assert_eq!(region_view(600, 600, View { x: 0, y: 0, width: 500, height: 500 }, 192), None);
    }

    #[test]
    fn disabled_or_small_frames_are_one_view() {
        let cfg = TilingConfig::default();
        assert_eq!(views(1920, 1080, &cfg).len(), 1);
        let on = TilingConfig { enabled: true, ..cfg };
        assert_eq!(views(400, 300, &on), vec![View { x: 0, y: 0, width: 400, height: 300 }]);
    }

    #[test]
    fn tiles_cover_a_1080p_frame_with_overlap_and_stay_inside() {
        let cfg = TilingConfig { enabled: true, tile_size: 480, overlap: 0.25 };
        let v = views(1920, 1080, &cfg);
        let tiles = &v[1..];
        // x: 0,360,720,1080,1440 ; y: 0,360,600
        assert_eq!(tiles.len(), 15);
        for t in tiles {
            assert!(t.x + t.width <= 1920 && t.y + t.height <= 1080);
        }
        assert!(tiles.iter().any(|t| t.x + t.width == 1920 && t.y + t.height == 1080));
    }
}
