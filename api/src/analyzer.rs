//! Face analysis for API requests: a small pool of pipelines (each owns ONNX Runtime sessions),
//! used on the blocking thread pool so inference never stalls the HTTP workers.

use std::sync::{Mutex, TryLockError};

use actix_web::web;
use panoptes_engine::embed::ModelId;
use panoptes_engine::geometry::BBox;
use panoptes_engine::image_resize::fit_within;
use panoptes_engine::pipeline::{AnalyzedFace, FacePipeline};

use crate::error::ApiError;
use crate::AppState;

/// Uploaded photos (identify, verify, search) are analysed at most this large.
const PHOTO_MAX_SIDE: u32 = 1920;

pub struct Analyzer {
    pipelines: Vec<Mutex<FacePipeline>>,
}

impl Analyzer {
    pub fn new(pipelines: Vec<FacePipeline>) -> Option<Analyzer> {
        if pipelines.is_empty() {
            return None;
        }
        Some(Analyzer { pipelines: pipelines.into_iter().map(Mutex::new).collect() })
    }

    /// Runs `f` with a free pipeline (waiting for one when all are busy) that embeds with `model`,
    /// the gallery's model: after an embedder switch the pipeline loads the new one first. Call from
    /// a blocking thread.
    pub fn with_pipeline<T>(
        &self,
        model: &ModelId,
        f: impl FnOnce(&mut FacePipeline) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let run = |p: &mut FacePipeline| {
            p.follow(model).map_err(|e| {
                ApiError::Unavailable(format!("the gallery's embedder {model} cannot be loaded here: {e}"))
            })?;
            f(p)
        };
        for p in &self.pipelines {
            match p.try_lock() {
                Ok(mut guard) => return run(&mut guard),
                Err(TryLockError::Poisoned(poisoned)) => return run(&mut poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => continue,
            }
        }
        let mut guard = self.pipelines[0].lock().unwrap_or_else(|p| p.into_inner());
        run(&mut guard)
    }
}

/// Runs CPU-heavy analysis off the async executor.
pub async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    actix_web::web::block(f).await.map_err(|e| ApiError::Internal(format!("analysis task failed: {e}")))
}

/// Every face of an uploaded photo, embedded with `model`, and the scale the photo was analysed at
/// (at most `PHOTO_MAX_SIDE` large): boxes go back to the photo's own pixels with [`in_photo_pixels`].
pub async fn analyze_photo(
    state: &web::Data<AppState>,
    model: &ModelId,
    photo: Vec<u8>,
) -> Result<(Vec<AnalyzedFace>, f32), ApiError> {
    let st = state.clone();
    let model = model.clone();
    run_blocking(move || {
        let Some(analyzer) = &st.analyzer else {
            return Err(ApiError::Unavailable("face analysis is not loaded in this process".into()));
        };
        analyzer.with_pipeline(&model, |p| {
            let image = p.decode(&photo)?;
            let (small, scale) = fit_within(&image, PHOTO_MAX_SIDE).map_err(ApiError::Internal)?;
            Ok((p.analyze(&small)?, scale))
        })
    })
    .await?
}

/// A box found in a photo analysed at `scale`, in the photo's own pixels.
pub fn in_photo_pixels(b: BBox, scale: f32) -> BBox {
    BBox { x: b.x / scale, y: b.y / scale, width: b.width / scale, height: b.height / scale }
}
