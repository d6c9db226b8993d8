//! The views a frame is scanned in: the whole frame, plus (when enabled) overlapping square tiles so
//! that faces too small for the detector's input at full-frame scale are still found.

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

#[cfg(test)]
mod tests {
    use super::*;

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
