//! Configuration: one TOML file (config/panoptes.toml by default) with environment overrides.

use std::path::{Path, PathBuf};

use panoptes_engine::enrollment::EnrollmentPolicy;
use panoptes_engine::pipeline::PipelineConfig;
use panoptes_engine::snapshot::SnapshotConfig;
use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub models: ModelSettings,
    pub pipeline: PipelineConfig,
    pub gallery: GallerySettings,
    pub enrollment: EnrollmentPolicy,
    pub api: panoptes_api::ApiConfig,
    pub streaming: StreamingSettings,
    pub motion: panoptes_engine::motion::MotionConfig,
    pub tracking: panoptes_engine::track::TrackConfig,
    pub snapshots: SnapshotConfig,
    /// Retention of detections (and their snapshots).
    pub storage: panoptes_engine::retention::RetentionConfig,
    pub mqtt: panoptes_api::mqtt::MqttConfig,
    /// The site's time zone and alert rules set in this file.
    pub alerts: panoptes_engine::alerts::AlertsConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamingSettings {
    /// Inference workers, each with its own models and thread. Two by default: on a 2-core box
    /// 8 cameras at 5 analysed fps run at p95 127 ms with two, and shed frames at p95 437 ms with
    /// one (BENCHMARKS.md); each worker holds ~21 MB of models. About one per core.
    pub inference_workers: usize,
    /// A person seen again on a camera within this many seconds is the same appearance.
    pub cooldown_secs: u64,
    /// Store detections of faces that match nobody.
    pub record_unknown: bool,
    /// Bounded buffer of detections waiting for the database.
    pub sink_capacity: usize,
    /// When this H.264 file exists and no camera is named "demo", one is added that plays it.
    pub demo_clip: String,
    /// Most frames (of different cameras) one worker analyses in one batch.
    pub max_batch: usize,
    /// Capture→decision latency target; analysis rates are shed before it is exceeded.
    pub latency_budget_ms: u64,
    /// Lower analysis rates of the busiest cameras when latency nears the budget.
    pub shedding: bool,
    /// Shedding never takes a camera below this analysis rate.
    pub min_fps: f32,
    /// This engine's name in the camera lease table; empty means `<hostname>-<pid>`.
    pub node_id: String,
    /// Another node takes a camera over when its lease has not been renewed for this long.
    pub lease_ttl_secs: u64,
    /// What this node can carry relative to the others sharing the database (cameras are shared in
    /// proportion); 0: its CPU cores. Raise it for a node with a GPU.
    pub node_capacity: f32,
    /// The rate a raw H.264 (Annex-B) file camera plays at: such files carry no timing of their own.
    pub file_fps: f32,
    /// Threads decoding video, cameras spread over them; 0: one per core.
    pub decoder_threads: usize,
    /// `libav` (FFmpeg's libavcodec) or `openh264`.
    pub decoder: panoptes_engine::decode::DecoderBackend,
    /// Decode every frame and analyse none: the cost of decoding alone (`panoptes bench --decode-only`).
    pub decode_only: bool,
}

impl Default for StreamingSettings {
    fn default() -> Self {
        Self {
            inference_workers: 2,
            cooldown_secs: 30,
            record_unknown: false,
            sink_capacity: 100_000,
            demo_clip: ".local/demo/lobby.h264".into(),
            max_batch: 8,
            latency_budget_ms: 500,
            shedding: true,
            min_fps: 0.5,
            node_id: String::new(),
            lease_ttl_secs: 15,
            node_capacity: 0.0,
            file_fps: 10.0,
            decoder_threads: 0,
            decoder: panoptes_engine::decode::DecoderBackend::default(),
            decode_only: false,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: usize,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: String::new(), pool_size: 16 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    pub dir: PathBuf,
    pub onnxruntime: PathBuf,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self { dir: "models/onnx".into(), onnxruntime: ".local/onnxruntime/libonnxruntime.so".into() }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GallerySettings {
    /// No longer read: each embedder has its own (`pipeline.embedders.<name>.match_threshold`). Kept
    /// so that an old file is refused with that advice rather than as an unknown key.
    pub match_threshold: Option<f32>,
    pub top_k: usize,
}

impl Default for GallerySettings {
    fn default() -> Self {
        Self { match_threshold: None, top_k: 5 }
    }
}

/// Why the configuration cannot be used; each names the file, key or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("reading config file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing config file {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid configuration (a key is unknown or a value has the wrong type)")]
    Shape(#[source] toml::de::Error),
    #[error("environment override {key}: {reason}")]
    Override { key: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("no database configured: set PANOPTES_DATABASE_URL (or database.url) or start the private cluster with scripts/pg start")]
    NoDatabase,
}

const DEFAULT_FILE: &str = "config/panoptes.toml";
const PRIVATE_CLUSTER_PORT: &str = ".local/pg/port";

impl Settings {
    /// Reads the file (explicit path, else $PANOPTES_CONFIG, else config/panoptes.toml when present,
    /// else built-in defaults), then applies environment overrides.
    pub fn load(explicit: Option<&Path>) -> Result<Settings, SettingsError> {
        let path = explicit
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("PANOPTES_CONFIG").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.is_file()));
        let mut doc: toml::Table = match &path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|source| SettingsError::Read { path: p.clone(), source })?;
                text.parse().map_err(|source| SettingsError::Parse { path: p.clone(), source })?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut doc, std::env::vars())?;
        let settings: Settings = toml::Value::Table(doc).try_into().map_err(SettingsError::Shape)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let bail = |m: String| Err(SettingsError::Invalid(m));
        if let Err(e) = self.mqtt.validate() {
            return bail(e.to_string());
        }
        if let Err(e) = self.alerts.validate() {
            return bail(panoptes_engine::error_chain::error_chain(&e));
        }
        // Checked here too, so a key too short stops every command before anything loads.
        if let Err(e) = panoptes_api::auth::Keys::from_config(&self.api.keys) {
            return bail(e.to_string());
        }
        if let Some(t) = self.gallery.match_threshold {
            return bail(format!(
                "gallery.match_threshold ({t}) is no longer used: each embedder has its own threshold; set pipeline.embedders.{}.match_threshold instead",
                self.pipeline.embedder
            ));
        }
        let p = &self.pipeline;
        for (name, entry) in std::iter::once((&p.embedder, p.embedders.get(&p.embedder)))
            .chain(p.embedders.iter().map(|(n, e)| (n, Some(e))))
        {
            if let Err(e) = panoptes_engine::embed::resolve_spec(name, entry) {
                return bail(e.to_string());
            }
        }
        if self.gallery.top_k == 0 {
            return bail("gallery.top_k must be at least 1".into());
        }
        if self.streaming.latency_budget_ms == 0 {
            return bail("streaming.latency_budget_ms must be at least 1".into());
        }
        if self.streaming.lease_ttl_secs < 3 {
            return bail("streaming.lease_ttl_secs must be at least 3 (leases are renewed every second)".into());
        }
        if !(self.streaming.file_fps.is_finite() && self.streaming.file_fps > 0.0 && self.streaming.file_fps <= 240.0) {
            return bail(format!("streaming.file_fps must be in (0, 240], got {}", self.streaming.file_fps));
        }
        let t = &self.tracking;
        if !(0.0..=1.0).contains(&t.low_score) || !(0.0..=1.0).contains(&t.high_score) || t.low_score > t.high_score {
            return bail(format!(
                "tracking.low_score ({}) and tracking.high_score ({}) must be in 0..=1 with low ≤ high",
                t.low_score, t.high_score
            ));
        }
        if t.max_embeddings == 0 || t.confirm_embeddings == 0 || t.confirm_embeddings > t.max_embeddings {
            return bail(format!(
                "tracking.confirm_embeddings ({}) must be between 1 and tracking.max_embeddings ({})",
                t.confirm_embeddings, t.max_embeddings
            ));
        }
        if !(self.motion.refresh_secs.is_finite() && self.motion.refresh_secs >= 0.0)
            || self.motion.block_threshold < 0.0
        {
            return bail("motion.refresh_secs and motion.block_threshold must be ≥ 0".into());
        }
        if !self.streaming.min_fps.is_finite() || self.streaming.min_fps <= 0.0 {
            return bail(format!("streaming.min_fps must be above 0, got {}", self.streaming.min_fps));
        }
        let r = &self.storage;
        if !(1..=100_000).contains(&r.retention_batch_rows) || r.retention_interval_secs == 0 {
            return bail(format!(
                "storage.retention_batch_rows must be 1 to 100000 (got {}) and storage.retention_interval_secs at least 1 (got {})",
                r.retention_batch_rows, r.retention_interval_secs
            ));
        }
        Ok(())
    }

    /// The database URL: configured, or the private cluster of scripts/pg (in `$PANOPTES_PG_DIR`,
    /// default .local/pg).
    pub fn database_url(&self) -> Result<String, SettingsError> {
        if !self.database.url.is_empty() {
            return Ok(self.database.url.clone());
        }
        let port_file = match std::env::var_os("PANOPTES_PG_DIR") {
            Some(dir) => PathBuf::from(dir).join("port"),
            None => PathBuf::from(PRIVATE_CLUSTER_PORT),
        };
        match std::fs::read_to_string(port_file) {
            Ok(port) => Ok(format!("postgresql://postgres@127.0.0.1:{}/panoptes", port.trim())),
            Err(_) => Err(SettingsError::NoDatabase),
        }
    }
}

/// Applies PANOPTES_A__B__C=value as a.b.c = value (value read as a TOML literal, else as a string).
fn apply_env(doc: &mut toml::Table, vars: impl Iterator<Item = (String, String)>) -> Result<(), SettingsError> {
    for (key, raw) in vars {
        let path: Vec<String> = if key == "PANOPTES_DATABASE_URL" {
            vec!["database".into(), "url".into()]
        } else if let Some(rest) = key.strip_prefix("PANOPTES_") {
            if !rest.contains("__") {
                continue; // PANOPTES_CONFIG, PANOPTES_PG_DIR, … are not settings
            }
            rest.split("__").map(|s| s.to_ascii_lowercase()).collect()
        } else {
            continue;
        };
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw.clone()));
        let Some((last, parents)) = path.split_last() else { continue };
        let mut table = &mut *doc;
        for p in parents {
            let entry = table.entry(p.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = match entry {
                toml::Value::Table(t) => t,
                _ => return Err(SettingsError::Override { key, reason: format!("{p} is not a section") }),
            };
        }
        table.insert(last.clone(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_reach_nested_keys_with_typed_values() {
        let mut doc: toml::Table = "[gallery]\ntop_k = 5\n".parse().unwrap();
        let vars = [
            ("PANOPTES_GALLERY__TOP_K".to_string(), "7".to_string()),
            ("PANOPTES_PIPELINE__EMBEDDERS__SFACE__MATCH_THRESHOLD".to_string(), "0.4".to_string()),
            ("PANOPTES_PIPELINE__DETECTOR__MODEL".to_string(), "back".to_string()),
            ("PANOPTES_DATABASE_URL".to_string(), "postgresql://x@h/db".to_string()),
            ("PANOPTES_PG_DIR".to_string(), "/tmp".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        apply_env(&mut doc, vars.into_iter()).unwrap();
        let s: Settings = toml::Value::Table(doc).try_into().unwrap();
        assert_eq!(s.gallery.top_k, 7);
        assert_eq!(s.pipeline.embedders["sface"].match_threshold, Some(0.4));
        assert_eq!(s.pipeline.detector.model, panoptes_engine::detect::DetectorModel::Back);
        assert_eq!(s.database.url, "postgresql://x@h/db");
    }

    #[test]
    fn the_shipped_config_file_parses_and_matches_the_defaults() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/panoptes.toml")).unwrap();
        let s: Settings = toml::from_str(&text).unwrap();
        let d = Settings::default();
        assert_eq!(s.gallery.top_k, d.gallery.top_k);
        assert_eq!(s.pipeline.embedder, d.pipeline.embedder);
        s.validate().unwrap();
        assert_eq!(s.api.listen, d.api.listen);
        assert_eq!(s.pipeline.detector.tiling.tile_size, d.pipeline.detector.tiling.tile_size);
        assert_eq!(s.storage, d.storage);
        assert_eq!(s.snapshots.retention_days, d.snapshots.retention_days);
        assert_eq!(s.api.allow_open, d.api.allow_open);
    }

    #[test]
    fn bad_retention_and_short_keys_are_refused_with_their_key() {
        let mut s = Settings::default();
        s.storage.retention_batch_rows = 0;
        assert!(s.validate().unwrap_err().to_string().contains("storage.retention_batch_rows"));
        let mut s = Settings::default();
        s.api.keys = vec![panoptes_api::config::ApiKeyConfig {
            name: "ops".into(),
            role: Some(panoptes_api::config::Role::Admin),
            key: "0123456789".into(),
            key_sha256: String::new(),
        }];
        assert!(s.validate().unwrap_err().to_string().contains("shorter than 16 characters"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Settings>("[gallery]\nmatch_treshold = 0.5\n").is_err());
    }

    #[test]
    fn an_old_global_threshold_is_refused_with_advice() {
        let s: Settings = toml::from_str("[gallery]\nmatch_threshold = 0.5\n").unwrap();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("pipeline.embedders.sface.match_threshold"), "{e}");
    }

    #[test]
    fn an_unknown_embedder_or_a_bad_threshold_is_named() {
        let s: Settings = toml::from_str("[pipeline]\nembedder = \"arcface\"\n").unwrap();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("arcface"), "{e}");
        let s: Settings = toml::from_str("[pipeline.embedders.sface]\nmatch_threshold = 1.5\n").unwrap();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("sface") && e.contains("match_threshold"), "{e}");
    }
}
