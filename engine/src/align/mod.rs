//! Alignment of a detected face to the 112×112 ArcFace template that the embedder expects.

pub mod mesh;
pub mod similarity;
pub mod warp;

use std::path::Path;

use image::RgbImage;
use serde::Deserialize;

use self::mesh::MeshRefiner;
use self::similarity::Similarity;
use crate::detect::Face;
use crate::geometry::Point;
use crate::runtime::{ModelError, Runtime, SessionSettings};

pub const ALIGNED_SIDE: u32 = 112;

/// ArcFace's five reference points in the 112×112 crop: eyes, nose tip, mouth corners.
pub const TEMPLATE: [Point; 5] = [
    Point::new(38.2946, 51.6963),
    Point::new(73.5318, 51.5014),
    Point::new(56.0252, 71.7366),
    Point::new(41.5493, 92.3655),
    Point::new(70.7299, 92.2041),
];

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlignConfig {
    /// Refine the detector's keypoints with the 468-point mesh (≈5 ms per face on CPU).
    pub mesh_refinement: bool,
    /// A video face turned further than this (degrees of yaw, from the mesh) is not embedded, and an
    /// enrollment photo so turned is refused: its embedding says little of who it is. 0: no limit.
    pub max_yaw_degrees: f32,
}

impl Default for AlignConfig {
    fn default() -> Self {
        Self { mesh_refinement: true, max_yaw_degrees: 50.0 }
    }
}

#[derive(Clone, Debug)]
pub struct AlignedFace {
    /// 112×112 RGB crop.
    pub image: RgbImage,
    /// The transform from source image to crop.
    pub transform: Similarity,
    /// Whether the mesh supplied the alignment points.
    pub refined: bool,
    /// How far the head is turned (degrees, from the mesh; `None` without mesh refinement).
    pub yaw_degrees: Option<f32>,
}

pub struct Aligner {
    mesh: Option<MeshRefiner>,
}

impl Aligner {
    pub fn load(
        runtime: &Runtime,
        models_dir: &Path,
        config: &AlignConfig,
        settings: &SessionSettings,
    ) -> Result<Self, ModelError> {
        let mesh = if config.mesh_refinement { Some(MeshRefiner::load(runtime, models_dir, settings)?) } else { None };
        Ok(Self { mesh })
    }

    /// Detector keypoints only: no model needed.
    pub fn keypoints_only() -> Self {
        Self { mesh: None }
    }

    pub fn align(&mut self, image: &RgbImage, face: &Face) -> Result<Option<AlignedFace>, ModelError> {
        if let Some(mesh) = self.mesh.as_mut() {
            if let Some(fit) = mesh.refine(image, face)? {
                if let Some(t) = Similarity::fit(&fit.points, &TEMPLATE) {
                    return Ok(Some(AlignedFace {
                        image: warp::warp(image, &t, ALIGNED_SIDE, ALIGNED_SIDE),
                        transform: t,
                        refined: true,
                        yaw_degrees: Some(fit.yaw_degrees),
                    }));
                }
            }
        }
        Ok(align_with_keypoints(image, face))
    }
}

/// Alignment from the detector's eyes, nose tip and mouth centre (matched to the template's mouth-corner
/// midpoint). `None` for degenerate keypoints.
pub fn align_with_keypoints(image: &RgbImage, face: &Face) -> Option<AlignedFace> {
    let k = &face.keypoints;
    let src = [k[0], k[1], k[2], k[3]];
    let dst = [TEMPLATE[0], TEMPLATE[1], TEMPLATE[2], TEMPLATE[3].midpoint(TEMPLATE[4])];
    let t = Similarity::fit(&src, &dst)?;
    Some(AlignedFace {
        image: warp::warp(image, &t, ALIGNED_SIDE, ALIGNED_SIDE),
        transform: t,
        refined: false,
        yaw_degrees: None,
    })
}
