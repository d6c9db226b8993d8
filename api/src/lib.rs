//! The actix-web control surface of Panoptes: `/healthz`, `/readyz`, and the versioned `/api/v1`
//! resources (cameras, persons, identify, detections, live events, admin), described by the OpenAPI
//! document it serves at `/api/v1/openapi.json`. Every error is `{"error": {"code", "message"}}`.

pub mod access;
pub mod admin;
pub mod alert_rules;
pub mod analyzer;
pub mod annotate;
pub mod api_keys;
pub mod auth;
pub mod cache;
pub mod cameras;
pub mod config;
pub mod console;
pub mod detections;
pub mod error;
pub mod events;
pub mod guard;
pub mod health;
pub mod http_metrics;
pub mod identify;
pub mod mqtt;
pub mod multipart;
pub mod openapi;
pub mod persons;
pub mod process_stats;
pub mod prometheus;
pub mod rate_limit;
pub mod review;
pub mod routes;
pub mod search;
pub mod tls;
pub mod unknowns;
pub mod verify;
pub mod webhooks;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use actix::Addr;
use panoptes_actors::matcher::MatcherActor;
use panoptes_actors::scheduler::Scheduler;
use panoptes_actors::sink::DetectionSink;
use panoptes_engine::alerts::{AlertsConfig, LiveEvent, SharedRules};
use panoptes_engine::embed::{Judgement, ModelId};
use panoptes_engine::enrollment::EnrollmentPolicy;
use panoptes_engine::gallery::Gallery;
use panoptes_engine::snapshot::SnapshotStore;
use panoptes_engine::storage::Store;

pub use config::ApiConfig;
pub use routes::configure;

/// Shared by every handler.
pub struct AppState {
    pub store: Store,
    pub gallery: Arc<RwLock<Gallery>>,
    pub config: ApiConfig,
    pub keys: auth::Keys,
    pub limiter: rate_limit::RateLimiter,
    pub caches: cache::Caches,
    /// Face analysis for enrollment and identify (absent: those routes answer 503).
    pub analyzer: Option<analyzer::Analyzer>,
    pub policy: EnrollmentPolicy,
    pub top_k: usize,
    /// The running streaming engine (absent when the API runs without one: no live status, no
    /// live snapshots, no engine figures).
    pub engine: Option<EngineLink>,
    pub events: tokio::sync::broadcast::Sender<LiveEvent>,
    /// The alert rules in force (`panoptes_engine::alerts`): what reaches each output.
    pub rules: SharedRules,
    /// `[alerts]`: the site's time zone and the config file's rules.
    pub alerts_config: AlertsConfig,
    /// Where detection snapshots are read from (absent: the snapshot routes answer 503).
    pub snapshots: Option<Arc<SnapshotStore>>,
    /// `config.media_root`, resolved at start (None: file cameras refused).
    pub media_root: Option<PathBuf>,
    pub webhooks: webhooks::WebhookCounters,
    pub mqtt: mqtt::MqttCounters,
    /// Where an embedder switch stands (absent without an engine).
    pub embedder_switch: Option<panoptes_engine::reembed::SharedSwitchStatus>,
    /// The search index of stored appearance faces (absent: `POST /search` answers 503).
    pub search: Option<Arc<RwLock<panoptes_engine::search::AppearanceIndex>>>,
    /// What retention has deleted (the engine's sweeps count here; `/metrics` reads it).
    pub retention: Arc<panoptes_engine::retention::RetentionCounters>,
}

/// The parts of the running engine the API reads. Only the engine assembly (`panoptes::assembly`)
/// builds one, from the parts it started, so a part that runs is reachable from every route.
#[derive(Clone)]
pub struct EngineLink {
    pub scheduler: Addr<Scheduler>,
    pub sink: Addr<DetectionSink>,
    pub matcher: Addr<MatcherActor>,
    /// Live camera status published by the scheduler.
    pub camera_status: panoptes_actors::scheduler::StatusBoard,
    /// Newest analysed frame per camera (live snapshots).
    pub latest_frames: panoptes_actors::latest_frames::LatestFrames,
}

/// A configuration the API cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ApiConfigError {
    #[error(transparent)]
    Keys(#[from] auth::KeyConfigError),
    #[error("{0}")]
    Webhooks(String),
}

impl AppState {
    /// The model the gallery is on now and its judgement: what a photo is embedded with and judged
    /// by (it changes when an embedder switch completes).
    pub fn serving(&self) -> (ModelId, Judgement) {
        let g = self.gallery.read().unwrap_or_else(|p| p.into_inner());
        (g.model().clone(), g.judgement())
    }

    /// State with no engine attached; attach parts with the public fields.
    pub fn new(store: Store, gallery: Arc<RwLock<Gallery>>, config: ApiConfig) -> Result<AppState, ApiConfigError> {
        let keys = auth::Keys::from_config(&config.keys)?.with_open_allowed(config.open_allowed());
        config.webhooks.validate().map_err(ApiConfigError::Webhooks)?;
        let limiter = rate_limit::RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst);
        let media_root =
            if config.media_root.is_empty() { None } else { std::fs::canonicalize(&config.media_root).ok() };
        let (events, _) = tokio::sync::broadcast::channel(config.events_buffer.max(16));
        Ok(AppState {
            store,
            gallery,
            keys,
            limiter,
            caches: cache::Caches::default(),
            analyzer: None,
            policy: EnrollmentPolicy::default(),
            top_k: 5,
            engine: None,
            events,
            rules: SharedRules::default(),
            alerts_config: AlertsConfig::default(),
            snapshots: None,
            media_root,
            webhooks: webhooks::WebhookCounters::default(),
            mqtt: mqtt::MqttCounters::default(),
            embedder_switch: None,
            search: None,
            retention: Arc::default(),
            config,
        })
    }
}
