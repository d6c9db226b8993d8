//! Face analysis for API requests: a small pool of pipelines (each owns ONNX Runtime sessions),
//! used on the blocking thread pool so inference never stalls the HTTP workers.

use std::sync::{Mutex, TryLockError};

use panoptes_engine::embed::ModelId;
use panoptes_engine::pipeline::FacePipeline;

use crate::error::ApiError;

pub struct Analyzer {
    pipelines: Vec<Mutex<FacePipeline>>,
    model: ModelId,
}

impl Analyzer {
    pub fn new(pipelines: Vec<FacePipeline>) -> Option<Analyzer> {
        let model = pipelines.first()?.model().clone();
        Some(Analyzer { pipelines: pipelines.into_iter().map(Mutex::new).collect(), model })
    }

    pub fn model(&self) -> &ModelId {
        &self.model
    }

    /// Runs `f` with a free pipeline (waiting for one when all are busy). Call from a blocking thread.
    pub fn with_pipeline<T>(&self, f: impl FnOnce(&mut FacePipeline) -> T) -> T {
        for p in &self.pipelines {
            match p.try_lock() {
                Ok(mut guard) => return f(&mut guard),
                Err(TryLockError::Poisoned(poisoned)) => return f(&mut poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => continue,
            }
        }
        let mut guard = self.pipelines[0].lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

/// Runs CPU-heavy analysis off the async executor.
pub async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    actix_web::web::block(f).await.map_err(|e| ApiError::Internal(format!("analysis task failed: {e}")))
}
