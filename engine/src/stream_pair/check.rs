//! Do two streams show the same view? Cameras give their streams the same field of view at different
//! resolutions. A substream of another aspect ratio, or one that is a crop of the scene (some cameras
//! offer a "corridor" or digital-zoom stream), cannot have its boxes mapped by scale alone: such a
//! pair is refused with the reason, rather than producing faces cut from the wrong place.

use crate::frame::LumaView;

/// Thumbnail side (a 16:9 frame gives 64×36; other shapes keep their aspect).
const THUMB_WIDTH: usize = 64;
/// Aspect ratios may differ by this fraction (odd heights such as 1080 vs 360 → 16:9 both, 352×288
/// vs 704×576 exactly; 1920×1088 coded frames stay within it).
const ASPECT_TOLERANCE: f32 = 0.02;
/// Below this correlation of the two thumbnails they are not the same scene.
const MIN_SIMILARITY: f32 = 0.6;
/// Thumbnails flatter than this (standard deviation of luma) say nothing about the scene (a dark
/// night, a lens cap): only the aspect ratio is judged.
const MIN_CONTRAST: f32 = 3.0;

/// How a substream's pixels map to the main stream's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StreamScale {
    pub x: f32,
    pub y: f32,
}

impl StreamScale {
    pub fn between(main: (u32, u32), detect: (u32, u32)) -> StreamScale {
        StreamScale { x: main.0 as f32 / detect.0.max(1) as f32, y: main.1 as f32 / detect.1.max(1) as f32 }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PairError {
    #[error(
        "the detect stream is {detect_w}×{detect_h} (aspect {detect_aspect:.3}) and the main stream \
         {main_w}×{main_h} (aspect {main_aspect:.3}): a substream must show the same view at a lower resolution"
    )]
    Aspect { main_w: u32, main_h: u32, main_aspect: f32, detect_w: u32, detect_h: u32, detect_aspect: f32 },
    #[error(
        "the detect stream does not show the main stream's scene (similarity {similarity:.2}, at least \
         {MIN_SIMILARITY} expected): is it a crop, or another camera?"
    )]
    Scene { similarity: f32 },
}

/// A small box-averaged copy of a picture's luma, for comparing scenes whatever their resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Thumbnail {
    width: usize,
    height: usize,
    pixels: Vec<f32>,
}

impl Thumbnail {
    pub fn of(luma: LumaView<'_>) -> Thumbnail {
        let (w, h) = (luma.width as usize, luma.height as usize);
        let tw = THUMB_WIDTH;
        let th = ((tw * h) as f32 / w.max(1) as f32).round().max(1.0) as usize;
        let mut sums = vec![0f64; tw * th];
        let mut counts = vec![0u32; tw * th];
        for y in 0..h {
            let Some(row) = luma.row(y) else { break };
            let ty = (y * th / h.max(1)).min(th - 1);
            for (x, &v) in row.iter().enumerate() {
                let i = ty * tw + (x * tw / w.max(1)).min(tw - 1);
                sums[i] += v as f64;
                counts[i] += 1;
            }
        }
        let pixels = sums.iter().zip(&counts).map(|(s, &n)| if n == 0 { 0.0 } else { (s / n as f64) as f32 }).collect();
        Thumbnail { width: tw, height: th, pixels }
    }

    fn contrast(&self) -> f32 {
        let n = self.pixels.len() as f32;
        let mean = self.pixels.iter().sum::<f32>() / n;
        (self.pixels.iter().map(|p| (p - mean).powi(2)).sum::<f32>() / n).sqrt()
    }

    /// Zero-mean normalised cross-correlation with `other` (same shape), in −1..=1.
    fn similarity(&self, other: &Thumbnail) -> f32 {
        if self.width != other.width || self.height != other.height {
            return 0.0;
        }
        let n = self.pixels.len() as f32;
        let (ma, mb) = (self.pixels.iter().sum::<f32>() / n, other.pixels.iter().sum::<f32>() / n);
        let (mut ab, mut aa, mut bb) = (0f32, 0f32, 0f32);
        for (a, b) in self.pixels.iter().zip(&other.pixels) {
            let (a, b) = (a - ma, b - mb);
            ab += a * b;
            aa += a * a;
            bb += b * b;
        }
        if aa <= f32::EPSILON || bb <= f32::EPSILON {
            return 0.0;
        }
        ab / (aa * bb).sqrt()
    }
}

/// Whether pictures of `main` and `detect` size (width, height) have one aspect ratio: what can be
/// checked from the sizes alone (at run time, the first main keyframe against the substream).
pub fn check_aspect(main: (u32, u32), detect: (u32, u32)) -> Result<(), PairError> {
    let aspect = |(w, h): (u32, u32)| w as f32 / h.max(1) as f32;
    let (main_aspect, detect_aspect) = (aspect(main), aspect(detect));
    if (main_aspect - detect_aspect).abs() / detect_aspect > ASPECT_TOLERANCE {
        return Err(PairError::Aspect {
            main_w: main.0,
            main_h: main.1,
            main_aspect,
            detect_w: detect.0,
            detect_h: detect.1,
            detect_aspect,
        });
    }
    Ok(())
}

/// Whether `detect` (a substream's picture) shows the view of `main`; if so, how its pixels scale.
pub fn check_pair(main: LumaView<'_>, detect: LumaView<'_>) -> Result<StreamScale, PairError> {
    check_aspect((main.width, main.height), (detect.width, detect.height))?;
    let (a, b) = (Thumbnail::of(main), Thumbnail::of(detect));
    if a.contrast() >= MIN_CONTRAST || b.contrast() >= MIN_CONTRAST {
        let similarity = a.similarity(&b);
        if similarity < MIN_SIMILARITY {
            return Err(PairError::Scene { similarity });
        }
    }
    Ok(StreamScale::between((main.width, main.height), (detect.width, detect.height)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture with a bright disc and a dark bar, at any resolution (the same scene).
    fn scene(w: u32, h: u32, zoom: f32) -> Vec<u8> {
        let mut out = Vec::with_capacity((w * h) as usize);
        for y in 0..h {
            for x in 0..w {
                // normalised coordinates of the scene, zoomed about its centre (a crop when zoom > 1)
                let u = 0.5 + (x as f32 / w as f32 - 0.5) / zoom;
                let v = 0.5 + (y as f32 / h as f32 - 0.5) / zoom;
                let disc = ((u - 0.3).powi(2) + (v - 0.4).powi(2)).sqrt() < 0.15;
                let bar = (0.7..0.8).contains(&u);
                out.push(if disc {
                    220
                } else if bar {
                    20
                } else {
                    (60.0 + 80.0 * v) as u8
                });
            }
        }
        out
    }

    fn view(w: u32, h: u32, data: &[u8]) -> LumaView<'_> {
        LumaView { width: w, height: h, stride: w as usize, data }
    }

    #[test]
    fn renditions_of_one_view_pair_with_their_scale() {
        let (m, d) = (scene(1280, 720, 1.0), scene(640, 360, 1.0));
        let scale = check_pair(view(1280, 720, &m), view(640, 360, &d)).unwrap();
        assert_eq!(scale, StreamScale { x: 2.0, y: 2.0 });
    }

    #[test]
    fn another_aspect_ratio_is_refused_naming_both() {
        let (m, d) = (scene(1280, 720, 1.0), scene(640, 480, 1.0));
        let e = check_pair(view(1280, 720, &m), view(640, 480, &d)).unwrap_err();
        assert!(matches!(e, PairError::Aspect { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains("640×480") && text.contains("1280×720"), "{text}");
    }

    #[test]
    fn a_crop_of_the_scene_is_refused() {
        let (m, d) = (scene(1280, 720, 1.0), scene(640, 360, 2.0));
        let e = check_pair(view(1280, 720, &m), view(640, 360, &d)).unwrap_err();
        assert!(matches!(e, PairError::Scene { .. }), "{e}");
    }

    #[test]
    fn flat_pictures_are_judged_by_aspect_only() {
        let (m, d) = (vec![16u8; 1280 * 720], vec![17u8; 640 * 360]);
        assert!(check_pair(view(1280, 720, &m), view(640, 360, &d)).is_ok());
    }
}
