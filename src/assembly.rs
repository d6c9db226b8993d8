//! The one place where the engine is put together: the detection sink, the matcher and its snapshot
//! store, the inference workers on their own threads, the scheduler that starts camera pipelines, the
//! background loops (stored keys, gallery sync, retention of detections and snapshots, webhooks) and
//! the API state that reaches all of them. `panoptes serve`, `panoptes bench` and the integration
//! tests start the engine here, so a part that is configured is wired everywhere.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::web;
use panoptes_actors::decoder::DecoderOptions;
use panoptes_actors::inference::{EndAllTracks, InferenceWorker};
use panoptes_actors::latency_record::LatencyRecord;
use panoptes_actors::latest_frames::LatestFrames;
use panoptes_actors::matcher::{GetMatcherStats, MatcherActor, SinkLink};
use panoptes_actors::scheduler::{default_node_id, PipelineThreads, Scheduler, SchedulerConfig, StopScheduler};
use panoptes_actors::sink::{DetectionSink, Drain};
use panoptes_api::{AppState, EngineLink};
use panoptes_engine::alerts::{AlertsConfig, Grouped, LiveEvent, SharedRules};
use panoptes_engine::embed::{EmbedderCatalog, ModelId};
use panoptes_engine::gallery::Gallery;
use panoptes_engine::reembed::{PipelineLoader, Reembedder, SharedSwitchStatus};
use panoptes_engine::runtime::ModelError;
use panoptes_engine::search::sync::IndexSync;
use panoptes_engine::search::AppearanceIndex;
use panoptes_engine::snapshot::{SnapshotError, SnapshotStore};
use panoptes_engine::storage::{StorageError, Store};

use crate::context::{load_pipeline, Context};
use crate::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("loading the models")]
    Models(#[from] ModelError),
    #[error("the database")]
    Storage(#[from] StorageError),
    #[error("snapshot settings")]
    Snapshots(#[from] SnapshotError),
    #[error("API settings")]
    Api(#[from] panoptes_api::ApiConfigError),
    #[error("MQTT settings")]
    Mqtt(#[from] panoptes_api::mqtt::MqttConfigError),
    #[error("the demo clip {path}")]
    DemoClip {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A running engine. Dropping it leaves the actors running until the actix system stops; call
/// [`Engine::shutdown`] for an orderly stop.
pub struct Engine {
    store: Store,
    gallery: Arc<std::sync::RwLock<Gallery>>,
    scheduler: Addr<Scheduler>,
    sink: Addr<DetectionSink>,
    api: web::Data<AppState>,
    node_id: String,
    latencies: Arc<LatencyRecord>,
    workers: Vec<Addr<InferenceWorker>>,
    /// The inference workers' threads.
    arbiters: Vec<Arbiter>,
    /// Camera I/O and decoder threads.
    pipeline_arbiters: Vec<Arbiter>,
    /// The background loops (re-embedding, gallery sync, retention): stopped with the engine, so
    /// that none of them outlives the database pool it uses.
    background: Vec<tokio::task::JoinHandle<()>>,
}

/// What an orderly stop did.
#[derive(Debug)]
pub struct ShutdownReport {
    /// Detections still buffered at the stop and written then.
    pub flushed: Result<u64, String>,
}

impl Engine {
    /// Starts every part on the current actix system, from loaded models, database and gallery.
    pub async fn start(ctx: Context) -> Result<Engine, EngineError> {
        let Context { settings, configured, pipeline, store, gallery } = ctx;
        // Before any actor starts, so the first frames' latencies are recorded.
        panoptes_api::prometheus::install();
        offer_demo_camera(&store, &settings.streaming.demo_clip).await?;

        let s = &settings.streaming;
        let mut state = AppState::new(store.clone(), gallery.clone(), settings.api.clone())?;
        state.keys.reload(&store).await?;
        panoptes_api::auth::spawn_reload(state.keys.clone(), store.clone(), Duration::from_secs(5));
        let node_id = if s.node_id.is_empty() { default_node_id() } else { s.node_id.clone() };
        let (embedder_switch, reembedding) = start_embedder_switch(&store, &settings, &configured, &node_id).await?;
        let search_index = {
            let g = gallery.read().unwrap_or_else(|p| p.into_inner());
            Arc::new(std::sync::RwLock::new(AppearanceIndex::new(g.model().clone(), g.info().dim)))
        };
        state.search = Some(search_index.clone());
        state.alerts_config = settings.alerts.clone();
        state.rules = SharedRules::new(settings.alerts.load(&store).await?);
        let mut background = vec![
            reembedding,
            spawn_gallery_sync(store.clone(), gallery.clone(), pipeline.catalog().clone()),
            spawn_search_sync(store.clone(), gallery.clone(), search_index.clone()),
            spawn_grouping(store.clone(), gallery.clone(), search_index, state.events.clone(), state.rules.clone()),
            spawn_rules_reload(store.clone(), settings.alerts.clone(), state.rules.clone()),
        ];
        if state.keys.is_open() {
            tracing::warn!(listen = %settings.api.listen, "no API keys configured or stored: the API is open to anyone who can reach it");
        }

        let sink = DetectionSink::new(store.clone(), s.sink_capacity).with_events(state.events.clone()).start();
        // Snapshots already on disk stay readable when writing new ones is switched off.
        let snapshots = Arc::new(SnapshotStore::new(&settings.snapshots)?);
        let link = SinkLink {
            started: sink.clone().recipient(),
            updated: sink.clone().recipient(),
            closed: sink.clone().recipient(),
        };
        let mut matcher = MatcherActor::new(Duration::from_secs(s.cooldown_secs), s.record_unknown, link);
        if settings.snapshots.enabled {
            tracing::info!(dir = %snapshots.dir().display(), encrypted = snapshots.encrypted(), "writing detection snapshots");
            matcher = matcher.with_snapshots(snapshots.clone());
        }
        background.push(spawn_retention(
            store.clone(),
            snapshots.clone(),
            settings.storage.clone(),
            state.retention.clone(),
        ));
        let matcher = matcher.start();

        let mut pipelines = vec![pipeline];
        for _ in 1..s.inference_workers.max(1) {
            pipelines.push(load_pipeline(&settings)?);
        }
        let latest_frames = LatestFrames::default();
        let latencies = Arc::new(LatencyRecord::default());
        let mut arbiters = Vec::new();
        let mut workers = Vec::new();
        for (index, p) in pipelines.into_iter().enumerate() {
            let arbiter = Arbiter::new();
            let (g, m) = (gallery.clone(), matcher.clone().recipient());
            let (max_batch, latest, record) = (s.max_batch, latest_frames.clone(), latencies.clone());
            let tracking = settings.tracking.clone();
            workers.push(InferenceWorker::start_in_arbiter(&arbiter.handle(), move |_| {
                InferenceWorker::new(p, g, m)
                    .with_index(index)
                    .with_max_batch(max_batch)
                    .with_tracking(tracking)
                    .with_latest_frames(latest)
                    .with_latency_record(record)
            }));
            arbiters.push(arbiter);
        }
        // Each worker warms its models up as it starts; the engine is up once they all have.
        for w in &workers {
            let _ = w.send(panoptes_actors::inference::GetWorkerStats).await;
        }
        let scheduler_config = SchedulerConfig {
            latency_budget: Duration::from_millis(s.latency_budget_ms),
            node_id: node_id.clone(),
            lease_ttl: Duration::from_secs(s.lease_ttl_secs),
            min_fps: s.min_fps,
            shedding: s.shedding,
            file_fps: s.file_fps,
            decoder: DecoderOptions {
                backend: s.decoder,
                motion: settings.motion.clone(),
                decode_only: s.decode_only,
                ..DecoderOptions::default()
            },
            capacity: node_capacity(s.node_capacity),
            ..SchedulerConfig::default()
        };
        tracing::info!(%node_id, capacity = scheduler_config.capacity, "camera leases are held under this node id");
        // Camera I/O on a thread of its own, decoding on others: a saturated decoder never delays an
        // RTSP read, and neither delays the scheduler, matcher, sink or lease renewals (this thread).
        let io = Arbiter::new();
        let decoder_threads = match s.decoder_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let decoders: Vec<Arbiter> = (0..decoder_threads).map(|_| Arbiter::new()).collect();
        tracing::info!(decoder_threads, decoder = s.decoder.as_str(), "decoding on {decoder_threads} thread(s)");
        let threads = PipelineThreads { io: io.handle(), decoders: decoders.iter().map(|a| a.handle()).collect() };
        let pipeline_arbiters: Vec<Arbiter> = std::iter::once(io).chain(decoders).collect();
        let scheduler = Scheduler::new(store.clone(), workers.clone(), scheduler_config, threads);
        let camera_status = scheduler.status_board();
        let scheduler = scheduler.start();

        // The API analyses enrollment and identify photos with its own pipeline (own ONNX sessions).
        state.analyzer = panoptes_api::analyzer::Analyzer::new(vec![load_pipeline(&settings)?]);
        state.policy = settings.enrollment.clone();
        state.embedder_switch = Some(embedder_switch);
        state.top_k = settings.gallery.top_k;
        state.snapshots = Some(snapshots);
        state.engine = Some(EngineLink {
            scheduler: scheduler.clone(),
            sink: sink.clone(),
            matcher,
            camera_status,
            latest_frames,
        });
        let api = web::Data::new(state);
        panoptes_api::webhooks::spawn(api.clone());
        panoptes_api::mqtt::spawn(api.clone(), settings.mqtt.clone(), node_id.clone())?;
        Ok(Engine {
            store,
            gallery,
            scheduler,
            sink,
            api,
            node_id,
            latencies,
            workers,
            arbiters,
            pipeline_arbiters,
            background,
        })
    }

    /// The state every API route reads (serve it with `panoptes_api::configure`).
    pub fn api_state(&self) -> web::Data<AppState> {
        self.api.clone()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn gallery(&self) -> &Arc<std::sync::RwLock<Gallery>> {
        &self.gallery
    }

    pub fn scheduler(&self) -> &Addr<Scheduler> {
        &self.scheduler
    }

    pub fn sink(&self) -> &Addr<DetectionSink> {
        &self.sink
    }

    /// Capture→decision latency of every frame decided since the start.
    pub fn decision_latency(&self) -> &LatencyRecord {
        &self.latencies
    }

    /// This engine's identity in the camera lease table.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Stops the cameras, releases this node's leases (other nodes take the cameras at once), stops
    /// the workers and writes what the sink still holds (bounded by 5 s). A frame inside an inference
    /// worker at that moment is not waited for.
    pub async fn shutdown(self) -> ShutdownReport {
        for task in &self.background {
            task.abort();
        }
        let _ = self.scheduler.send(StopScheduler { release_leases: true }).await;
        // Appearances still on screen are completed (last seen, best face) before the sink drains.
        for w in &self.workers {
            let _ = tokio::time::timeout(Duration::from_secs(2), w.send(EndAllTracks)).await;
        }
        let matcher = self.api.engine.as_ref().map(|e| e.matcher.clone());
        if let Some(m) = matcher {
            // The matcher has taken the ended tracks once it answers; their snapshots take a moment.
            let _ = tokio::time::timeout(Duration::from_secs(2), m.send(GetMatcherStats)).await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while tokio::time::Instant::now() < deadline {
                match m.send(GetMatcherStats).await {
                    Ok(s) if s.snapshots_pending > 0 => tokio::time::sleep(Duration::from_millis(20)).await,
                    _ => break,
                }
            }
        }
        for a in self.arbiters.into_iter().chain(self.pipeline_arbiters) {
            a.stop();
        }
        let flushed = match tokio::time::timeout(Duration::from_secs(5), self.sink.send(Drain)).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(format!("the detection sink is gone: {e}")),
            Err(_) => Err("the detection sink did not flush within 5 s".into()),
        };
        ShutdownReport { flushed }
    }
}

/// Every 5 s, re-reads the gallery when the stored embeddings changed outside this engine's API (the
/// CLI, another engine); a database outage only postpones it.
/// Makes the configured embedder the gallery's target and keeps re-embedding the kept enrollment
/// photos for it in the background (one engine at a time) until the gallery serves with it.
async fn start_embedder_switch(
    store: &Store,
    settings: &Settings,
    configured: &ModelId,
    node_id: &str,
) -> Result<(SharedSwitchStatus, tokio::task::JoinHandle<()>), EngineError> {
    let state = store.aim_gallery_model(configured, node_id).await?;
    if state.switching() {
        tracing::info!(
            serving = %state.active,
            configured = %state.target,
            "the configured embedder differs from the one the gallery serves with: its kept photos are re-embedded in the background, and the gallery keeps serving meanwhile"
        );
    }
    let loader_settings = settings.clone();
    let loader: PipelineLoader = Arc::new(move || load_pipeline(&loader_settings));
    let reembedder = Reembedder::new(store.clone(), configured.clone(), loader, node_id);
    let status = reembedder.status();
    let task = actix::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(10));
        loop {
            every.tick().await;
            if let Err(e) = reembedder.pass(|_| {}).await {
                tracing::warn!(error = %e, "re-embedding the gallery for the configured embedder failed; will retry");
            }
        }
    });
    Ok((status, task))
}

fn spawn_gallery_sync(
    store: Store,
    gallery: Arc<std::sync::RwLock<Gallery>>,
    catalog: EmbedderCatalog,
) -> tokio::task::JoinHandle<()> {
    actix::spawn(async move {
        let mut sync = panoptes_engine::gallery_sync::GallerySync::new(catalog);
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            if let Err(e) = sync.refresh(&store, &gallery).await {
                tracing::debug!(error = %e, "could not compare the gallery with the database; will retry");
            }
        }
    })
}

/// Keeps the search index equal to the stored appearance faces of the gallery's model
/// (`panoptes_engine::search::sync`): a read of the faces written since the last one every 2 s.
fn spawn_search_sync(
    store: Store,
    gallery: Arc<std::sync::RwLock<Gallery>>,
    index: Arc<std::sync::RwLock<AppearanceIndex>>,
) -> tokio::task::JoinHandle<()> {
    actix::spawn(async move {
        let mut sync = IndexSync::new();
        let mut every = tokio::time::interval(Duration::from_secs(2));
        loop {
            every.tick().await;
            let model = gallery.read().unwrap_or_else(|p| p.into_inner()).info().clone();
            if let Err(e) = sync.refresh(&store, &index, &model).await {
                tracing::debug!(error = %e, "could not read new appearance faces for search; will retry");
            }
        }
    })
}

/// Groups ended unknown appearances into unknown identities every 2 s (`panoptes_engine::unknowns`),
/// when no other engine on the database is doing it.
fn spawn_grouping(
    store: Store,
    gallery: Arc<std::sync::RwLock<Gallery>>,
    index: Arc<std::sync::RwLock<AppearanceIndex>>,
    events: tokio::sync::broadcast::Sender<LiveEvent>,
    rules: SharedRules,
) -> tokio::task::JoinHandle<()> {
    actix::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(2));
        loop {
            every.tick().await;
            let (model, judgement) = {
                let g = gallery.read().unwrap_or_else(|p| p.into_inner());
                (g.model().clone(), g.judgement())
            };
            match panoptes_engine::unknowns::group_pending(&store, &index, &model, &judgement).await {
                Ok(p) if p.joined + p.created > 0 => {
                    tracing::info!(joined = p.joined, new = p.created, "unknown appearances grouped");
                    announce_grouped(&store, &events, &rules, &p.grouped).await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %panoptes_engine::error_chain::error_chain(&e), "grouping unknown appearances failed; will retry");
                }
            }
        }
    })
}

/// Hands appearances just grouped to the outputs, with the days their identity has been seen on,
/// when a rule in force is about unknown identities (`panoptes_engine::alerts`).
async fn announce_grouped(
    store: &Store,
    events: &tokio::sync::broadcast::Sender<LiveEvent>,
    rules: &SharedRules,
    grouped: &[(i64, i64)],
) {
    let book = rules.current();
    if !book.wants_identities() {
        return;
    }
    for &(detection_id, unknown_id) in grouped {
        let read = async {
            let detection = store.get_detection(detection_id).await?;
            let seen = store.unknown_sightings(unknown_id).await?;
            Ok::<_, StorageError>(detection.map(|d| (d, book.days_among(&seen))))
        };
        match read.await {
            Ok(Some((d, days))) => {
                if let Some(event) = LiveEvent::grouped(d, Grouped { unknown_id, days }) {
                    let _ = events.send(event); // no subscriber is not an error
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(detection_id, unknown_id, error = %e, "grouped appearance not announced"),
        }
    }
}

/// Reads the alert rules again every 2 s, so that a change made through another engine is in force
/// here too (a change through this one is in force at once).
fn spawn_rules_reload(store: Store, config: AlertsConfig, rules: SharedRules) -> tokio::task::JoinHandle<()> {
    actix::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(2));
        loop {
            every.tick().await;
            if let Err(e) = rules.refresh(&config, &store).await {
                tracing::debug!(error = %e, "could not read the alert rules; the ones in force stay");
            }
        }
    })
}

/// Deletes expired detections with their snapshots, and expired snapshot days, at start and then
/// every `storage.retention_interval_secs` (`panoptes_engine::retention`). A sweep that fails (the
/// database away) is counted and tried again at the next.
fn spawn_retention(
    store: Store,
    snapshots: Arc<SnapshotStore>,
    config: panoptes_engine::retention::RetentionConfig,
    counters: Arc<panoptes_engine::retention::RetentionCounters>,
) -> tokio::task::JoinHandle<()> {
    actix::spawn(async move {
        let mut every = tokio::time::interval(config.interval());
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let started = std::time::Instant::now();
            match panoptes_engine::retention::sweep(&store, Some(&snapshots), &config, chrono::Utc::now(), &counters)
                .await
            {
                Ok(r) if r == Default::default() => {}
                Ok(r) => tracing::info!(
                    detections = r.detections,
                    appearance_faces = r.appearance_faces,
                    snapshots = r.snapshots,
                    snapshot_days = r.snapshot_days,
                    erased_leftovers = r.erased_leftovers,
                    seconds = started.elapsed().as_secs_f64(),
                    "deleted expired detections and snapshots"
                ),
                Err(e) => {
                    counters.count_failure();
                    tracing::warn!(error = %panoptes_engine::error_chain::error_chain(&e), "retention sweep failed; will retry");
                }
            }
        }
    })
}

/// `streaming.node_capacity`, or (0) the CPU cores this process may use.
fn node_capacity(configured: f32) -> f32 {
    if configured > 0.0 {
        return configured;
    }
    std::thread::available_parallelism().map(|n| n.get() as f32).unwrap_or(1.0)
}

/// The out-of-the-box demo: a looping clip as camera "demo", offered once in the database's life —
/// engines starting together add it once, and a demo camera the operator deleted does not come back.
async fn offer_demo_camera(store: &Store, clip: &str) -> Result<(), EngineError> {
    if clip.is_empty() || !std::path::Path::new(clip).is_file() {
        return Ok(());
    }
    let absolute = std::fs::canonicalize(clip)
        .map_err(|source| EngineError::DemoClip { path: clip.to_string(), source })?
        .to_string_lossy()
        .into_owned();
    if let Some(cam) = store.offer_demo_camera("demo", &absolute, 5.0).await? {
        tracing::info!(camera_id = cam.id, clip = %absolute, "added the demo camera");
    }
    Ok(())
}
