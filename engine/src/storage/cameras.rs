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

/// Fields to change on a camera (`None` keeps the stored value).
#[derive(Clone, Debug, Default)]
pub struct CameraPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub analysis_fps: Option<f32>,
    pub enabled: Option<bool>,
}

fn from_row(r: &tokio_postgres::Row) -> Camera {
    Camera { id: r.get(0), name: r.get(1), url: r.get(2), analysis_fps: r.get(3), enabled: r.get(4) }
}

impl Store {
    pub async fn list_cameras(&self) -> Result<Vec<Camera>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT id, name, url, analysis_fps, enabled FROM cameras ORDER BY id", &[])
            .await
            .map_err(|source| StorageError::Query { context: "list cameras", source })?;
        Ok(rows.iter().map(from_row).collect())
    }

    pub async fn camera(&self, id: i64) -> Result<Option<Camera>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt("SELECT id, name, url, analysis_fps, enabled FROM cameras WHERE id = $1", &[&id])
            .await
            .map_err(|source| StorageError::Query { context: "read camera", source })?;
        Ok(row.as_ref().map(from_row))
    }

    /// Changes the given fields; `None` when there is no such camera.
    pub async fn update_camera(&self, id: i64, patch: &CameraPatch) -> Result<Option<Camera>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "UPDATE cameras SET name = coalesce($2, name), url = coalesce($3, url),
                     analysis_fps = coalesce($4, analysis_fps), enabled = coalesce($5, enabled), updated_at = now()
                 WHERE id = $1 RETURNING id, name, url, analysis_fps, enabled",
                &[&id, &patch.name, &patch.url, &patch.analysis_fps, &patch.enabled],
            )
            .await
            .map_err(|source| StorageError::Query { context: "update camera", source })?;
        Ok(row.as_ref().map(from_row))
    }

    pub async fn delete_camera(&self, id: i64) -> Result<bool, StorageError> {
        let c = self.client().await?;
        let n = c
            .execute("DELETE FROM cameras WHERE id = $1", &[&id])
            .await
            .map_err(|source| StorageError::Query { context: "delete camera", source })?;
        Ok(n > 0)
    }

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
        Ok(from_row(&r))
    }
}
