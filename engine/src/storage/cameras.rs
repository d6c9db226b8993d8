//! Cameras as stored (configuration; live state lives in the camera actors).

use serde::{Deserialize, Serialize};

use super::{StorageError, Store};
use crate::motion::MaskRegion;
use crate::source::rtsp::RtspTransport;

/// A camera's own settings (the `options` column), beside those of the whole engine.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CameraOptions {
    /// Regions the motion gate ignores (a clock, a screen, trees in the wind), as fractions of the frame.
    pub motion_mask: Vec<MaskRegion>,
    /// Seconds without a frame after which the stream counts as stalled and is reconnected (default:
    /// the engine's, 10 s). A camera that sends a frame only on motion needs more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stall_timeout_secs: Option<f32>,
    /// File cameras: start again at the end of the file (default), or finish there.
    #[serde(rename = "loop", skip_serializing_if = "Option::is_none")]
    pub looping: Option<bool>,
    /// Days this camera's appearances are kept (default: `storage.detection_retention_days`). Unknown
    /// faces are kept no longer than `storage.unknown_retention_days` whatever this says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

impl CameraOptions {
    /// The stall timeout when none is set.
    pub const DEFAULT_STALL_TIMEOUT_SECS: f32 = 10.0;

    pub fn stall_timeout(&self) -> std::time::Duration {
        let secs = self.stall_timeout_secs.unwrap_or(Self::DEFAULT_STALL_TIMEOUT_SECS);
        std::time::Duration::try_from_secs_f32(secs).unwrap_or(std::time::Duration::from_secs(10))
    }

    pub fn looping(&self) -> bool {
        self.looping.unwrap_or(true)
    }

    /// The most days a camera's own retention may be (ten years).
    pub const MAX_RETENTION_DAYS: u32 = 3650;
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Camera {
    pub id: i64,
    pub name: String,
    /// As configured; callers redact credentials before showing it.
    pub url: String,
    pub analysis_fps: f32,
    pub enabled: bool,
    /// How RTP reaches us from an RTSP camera.
    pub transport: RtspTransport,
    pub options: CameraOptions,
    /// The substream that detection and tracking run on (same view, lower resolution); `url` is then
    /// the main stream, read at its keyframes for recognition and snapshots. As configured; callers
    /// redact credentials before showing it.
    pub detect_url: Option<String>,
}

impl Camera {
    /// Whether `other` is a different stream to connect to, or the same one read differently (not only
    /// other settings of the same one): only then must a running pipeline reconnect.
    pub fn stream_differs(&self, other: &Camera) -> bool {
        self.url != other.url
            || self.detect_url != other.detect_url
            || self.transport != other.transport
            || self.options.stall_timeout() != other.options.stall_timeout()
            || self.options.looping() != other.options.looping()
    }
}

/// A camera to add.
#[derive(Clone, Copy, Debug)]
pub struct NewCamera<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub analysis_fps: f32,
    pub enabled: bool,
    pub transport: RtspTransport,
    pub options: &'a CameraOptions,
    pub detect_url: Option<&'a str>,
}

/// Fields to change on a camera (`None` keeps the stored value).
#[derive(Clone, Debug, Default)]
pub struct CameraPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub analysis_fps: Option<f32>,
    pub enabled: Option<bool>,
    pub transport: Option<RtspTransport>,
    pub options: Option<CameraOptions>,
    /// `Some(None)` removes the substream.
    pub detect_url: Option<Option<String>>,
}

const COLUMNS: &str = "id, name, url, analysis_fps, enabled, transport, options, detect_url";

fn from_row(r: &tokio_postgres::Row) -> Camera {
    let transport: &str = r.get(5);
    Camera {
        id: r.get(0),
        name: r.get(1),
        url: r.get(2),
        analysis_fps: r.get(3),
        enabled: r.get(4),
        // The column's CHECK admits only the known names.
        transport: transport.parse().unwrap_or_default(),
        options: options_of(r),
        detect_url: r.get(7),
    }
}

/// The options column; a value this version cannot read (written by hand, or by a newer version)
/// counts as no options, with a warning naming the camera.
fn options_of(r: &tokio_postgres::Row) -> CameraOptions {
    let raw: serde_json::Value = r.get(6);
    serde_json::from_value(raw).unwrap_or_else(|e| {
        let id: i64 = r.get(0);
        tracing::warn!(camera_id = id, error = %e, "cannot read the camera's options; using none");
        CameraOptions::default()
    })
}

impl Store {
    pub async fn list_cameras(&self) -> Result<Vec<Camera>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(&format!("SELECT {COLUMNS} FROM cameras ORDER BY id"), &[])
            .await
            .map_err(|source| StorageError::Query { context: "list cameras", source })?;
        Ok(rows.iter().map(from_row).collect())
    }

    pub async fn camera(&self, id: i64) -> Result<Option<Camera>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(&format!("SELECT {COLUMNS} FROM cameras WHERE id = $1"), &[&id])
            .await
            .map_err(|source| StorageError::Query { context: "read camera", source })?;
        Ok(row.as_ref().map(from_row))
    }

    /// Changes the given fields; `None` when there is no such camera.
    pub async fn update_camera(&self, id: i64, patch: &CameraPatch) -> Result<Option<Camera>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "UPDATE cameras SET name = coalesce($2, name), url = coalesce($3, url),
                         analysis_fps = coalesce($4, analysis_fps), enabled = coalesce($5, enabled),
                         transport = coalesce($6, transport), options = coalesce($7, options),
                         detect_url = CASE WHEN $8 THEN $9 ELSE detect_url END, updated_at = now()
                     WHERE id = $1 RETURNING {COLUMNS}"
                ),
                &[
                    &id,
                    &patch.name,
                    &patch.url,
                    &patch.analysis_fps,
                    &patch.enabled,
                    &patch.transport.map(|t| t.as_str()),
                    &patch.options.as_ref().map(|o| serde_json::to_value(o).unwrap_or_default()),
                    &patch.detect_url.is_some(),
                    &patch.detect_url.clone().flatten(),
                ],
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

    /// A camera with the default transport (TCP).
    pub async fn create_camera(
        &self,
        name: &str,
        url: &str,
        analysis_fps: f32,
        enabled: bool,
    ) -> Result<Camera, StorageError> {
        let options = CameraOptions::default();
        self.insert_camera(&NewCamera {
            name,
            url,
            analysis_fps,
            enabled,
            transport: RtspTransport::Tcp,
            options: &options,
            detect_url: None,
        })
        .await
    }

    pub async fn insert_camera(&self, cam: &NewCamera<'_>) -> Result<Camera, StorageError> {
        let c = self.client().await?;
        let r = c
            .query_one(
                &format!(
                    "INSERT INTO cameras (name, url, analysis_fps, enabled, transport, options, detect_url)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
                ),
                &[
                    &cam.name,
                    &cam.url,
                    &cam.analysis_fps,
                    &cam.enabled,
                    &cam.transport.as_str(),
                    &serde_json::to_value(cam.options).unwrap_or_default(),
                    &cam.detect_url,
                ],
            )
            .await
            .map_err(|source| StorageError::Query { context: "create camera", source })?;
        Ok(from_row(&r))
    }

    /// Adds the demo camera if this database has never offered it and never had a camera (its id
    /// sequence was never used): atomic, so
    /// engines starting together on one database add it once (the others find the flag taken), and a
    /// demo camera the operator deleted never comes back. `None` when nothing was added.
    pub async fn offer_demo_camera(
        &self,
        name: &str,
        url: &str,
        analysis_fps: f32,
    ) -> Result<Option<Camera>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "WITH flag AS (
                         INSERT INTO engine_flags (name) VALUES ('demo_camera_offered')
                         ON CONFLICT (name) DO NOTHING RETURNING name)
                     INSERT INTO cameras (name, url, analysis_fps, enabled)
                     SELECT $1, $2, $3, true FROM flag
                     WHERE NOT EXISTS (SELECT 1 FROM cameras) AND NOT (SELECT is_called FROM cameras_id_seq)
                     ON CONFLICT (name) DO NOTHING
                     RETURNING {COLUMNS}"
                ),
                &[&name, &url, &analysis_fps],
            )
            .await
            .map_err(|source| StorageError::Query { context: "offer the demo camera", source })?;
        Ok(row.as_ref().map(from_row))
    }
}
