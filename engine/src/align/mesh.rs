//! Landmark refinement with MediaPipe's 468-point face mesh: an upright crop around the detection is
//! meshed, and the eye corners, nose tip and mouth corners give five precise alignment points. Far more
//! stable than the detector's keypoints on turned faces.

use std::path::Path;

use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;

use super::similarity::Similarity;
use super::warp::warp;
use crate::detect::Face;
use crate::geometry::Point;
use crate::runtime::{io_name, ModelError, Runtime, SessionSettings};

pub const MESH_FILE: &str = "face_landmark.onnx";
const SIDE: u32 = 192;
const POINTS: usize = 468;
const MODEL: &str = "face mesh";
/// Crop side relative to the detection box, as MediaPipe's face-landmark ROI.
const ROI_SCALE: f32 = 1.5;

pub struct MeshRefiner {
    session: Session,
    input: String,
    tensor: Vec<f32>,
}

impl MeshRefiner {
    pub fn load(runtime: &Runtime, models_dir: &Path, settings: &SessionSettings) -> Result<Self, ModelError> {
        let session = runtime.session(&models_dir.join(MESH_FILE), settings)?;
        let input = io_name(&session, false, 0, MODEL)?;
        Ok(Self { session, input, tensor: vec![0.0; (3 * SIDE * SIDE) as usize] })
    }

    /// Five alignment points in template order (eye on the image's left, other eye, nose tip, mouth
    /// corner on the image's left, other corner), or `None` when the mesh sees no face in the crop.
    pub fn refine(&mut self, image: &RgbImage, face: &Face) -> Result<Option<[Point; 5]>, ModelError> {
        let (l, r) = (face.keypoints[0], face.keypoints[1]);
        let angle = (r.y - l.y).atan2(r.x - l.x);
        let size = face.bbox.width.max(face.bbox.height) * ROI_SCALE;
        if !(size.is_finite() && size > 1.0) {
            return Ok(None);
        }
        let c = face.bbox.center();
        // crop → image: rotate by the eye angle, scale crop pixels to image pixels, centre on the box.
        let s = size / SIDE as f32;
        let half = SIDE as f32 / 2.0;
        let rot = Similarity::from_parts(s, angle, 0.0, 0.0);
        let off = rot.apply(Point::new(-half, -half));
        let crop_to_image = Similarity { tx: c.x + off.x, ty: c.y + off.y, ..rot };
        let crop = warp(image, &crop_to_image.inverse(), SIDE, SIDE);

        let plane = (SIDE * SIDE) as usize;
        for (i, p) in crop.pixels().enumerate() {
            self.tensor[i] = p[0] as f32 / 255.0;
            self.tensor[plane + i] = p[1] as f32 / 255.0;
            self.tensor[2 * plane + i] = p[2] as f32 / 255.0;
        }
        let err = |e: ort::Error| ModelError::Inference { model: MODEL, message: e.to_string() };
        let input =
            TensorRef::from_array_view(([1usize, 3, SIDE as usize, SIDE as usize], &self.tensor[..])).map_err(err)?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => input]).map_err(err)?;
        let mut mesh: Option<Vec<f32>> = None;
        let mut presence: Option<f32> = None;
        for (_, value) in outputs.iter() {
            let (_, data) = value.try_extract_tensor::<f32>().map_err(err)?;
            match data.len() {
                n if n == POINTS * 3 => mesh = Some(data.to_vec()),
                1 => presence = Some(data[0]),
                _ => {}
            }
        }
        let (Some(mesh), Some(logit)) = (mesh, presence) else {
            return Err(ModelError::Interface {
                model: MODEL.into(),
                message: "expected 1404 mesh values and a presence score".into(),
            });
        };
        if 1.0 / (1.0 + (-logit.clamp(-80.0, 80.0)).exp()) < 0.5 {
            return Ok(None);
        }
        let at = |i: usize| crop_to_image.apply(Point::new(mesh[3 * i], mesh[3 * i + 1]));
        Ok(Some([at(33).midpoint(at(133)), at(362).midpoint(at(263)), at(1), at(61), at(291)]))
    }
}
