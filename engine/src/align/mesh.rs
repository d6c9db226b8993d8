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
    /// corner on the image's left, other corner) and the head's yaw, or `None` when the mesh sees no
    /// face in the crop.
    pub fn refine(&mut self, image: &RgbImage, face: &Face) -> Result<Option<MeshFit>, ModelError> {
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
        let points = [at(33).midpoint(at(133)), at(362).midpoint(at(263)), at(1), at(61), at(291)];
        Ok(Some(MeshFit { points, yaw_degrees: yaw_degrees(&mesh) }))
    }
}

/// The mesh's alignment points and pose.
#[derive(Clone, Copy, Debug)]
pub struct MeshFit {
    pub points: [Point; 5],
    /// How far the head is turned left or right (0 facing the camera, ±90 in profile; see
    /// [`yaw_degrees`]).
    pub yaw_degrees: f32,
}

/// The head's yaw from the mesh, in the upright crop: where the nose tip (point 1) lies between the
/// face's outline at the cheeks (points 234 and 454). Facing the camera it is midway; turned by θ it
/// moves off the middle by about sin θ of the half-width (a head is roughly a cylinder there), so
/// θ ≈ asin(2r − 1). Approximate (±10° against a real head pose), enough to tell a face to embed from
/// one turned too far.
pub fn yaw_degrees(mesh: &[f32]) -> f32 {
    let x = |i: usize| mesh[3 * i];
    let (left, right, nose) = (x(234), x(454), x(1));
    let width = right - left;
    if !(width.is_finite() && width.abs() > 1e-3) {
        return 90.0;
    }
    let r = (nose - left) / width;
    (2.0 * r - 1.0).clamp(-1.0, 1.0).asin().to_degrees()
}
