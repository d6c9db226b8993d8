//! Cameras as stored (configuration; live state lives in the camera actors).

use serde::Serialize;

use super::{StorageError, Store};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Camera {
    pub id: i64,
    pub name: String,
    /// As configured; callers redact credentials before showing it.
    pub url: String,
    pub analysis_fps: f32,
    pub enabled: bool,
}

impl Store {
    pub async fn create_camera(
        &self,
        name: &str,
        url: &str,
        analysis_fps: f32,
        enabled: bool,
    ) -> Result<Camera, StorageError> {
        let c = self.client().await?;
        let r = c
            .query_one(
                "INSERT INTO cameras (name, url, analysis_fps, enabled) VALUES ($1, $2, $3, $4)
                 RETURNING id, name, url, analysis_fps, enabled",
                &[&name, &url, &analysis_fps, &enabled],
            )
            .await
            .map_err(|source| StorageError::Query { context: "create camera", source })?;
        Ok(Camera { id: r.get(0), name: r.get(1), url: r.get(2), analysis_fps: r.get(3), enabled: r.get(4) })
    }
}
