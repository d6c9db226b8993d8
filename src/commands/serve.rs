//! `panoptes serve`: loads models, database and gallery, starts the streaming pipeline (scheduler,
//! inference workers, matcher, detection sink) and serves the HTTP API until SIGINT/SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, App, HttpServer};
use anyhow::{Context as _, Result};
use panoptes_actors::inference::InferenceWorker;
use panoptes_actors::matcher::MatcherActor;
use panoptes_actors::scheduler::{default_node_id, Scheduler, SchedulerConfig, StopScheduler};
use panoptes_actors::sink::{DetectionSink, Drain};
use panoptes_api::AppState;
use panoptes_engine::gallery::Gallery;
use panoptes_engine::snapshot::SnapshotStore;

use crate::context::{load_pipeline, Context};

pub async fn run(ctx: Context) -> Result<()> {
    let Context { settings, pipeline, store, gallery } = ctx;
    // Before any actor starts, so the first frames' latencies are recorded.
    panoptes_api::prometheus::install();
    add_demo_camera(&store, &settings.streaming.demo_clip).await?;

    let s = &settings.streaming;
    let mut state = AppState::new(store.clone(), gallery.clone(), settings.api.clone()).context("api settings")?;
    state.keys.reload(&store).await.context("reading API keys")?;
    panoptes_api::auth::spawn_reload(state.keys.clone(), store.clone(), Duration::from_secs(5));
    spawn_gallery_sync(store.clone(), gallery.clone());
    if state.keys.is_open() {
        tracing::warn!(listen = %settings.api.listen, "no API keys configured or stored: the API is open to anyone who can reach it");
    }
    let sink = DetectionSink::new(store.clone(), s.sink_capacity).with_events(state.events.clone()).start();
    let mut matcher =
        MatcherActor::new(Duration::from_secs(s.cooldown_secs), s.record_unknown, sink.clone().recipient());
    if settings.snapshots.enabled {
        let snapshots = Arc::new(SnapshotStore::new(&settings.snapshots).context("snapshot settings")?);
        tracing::info!(dir = %snapshots.dir().display(), encrypted = snapshots.encrypted(), "writing detection snapshots");
        spawn_snapshot_janitor(snapshots.clone());
        matcher = matcher.with_snapshots(snapshots);
    }
    let matcher = matcher.start();
    let mut pipelines = vec![pipeline];
    for _ in 1..s.inference_workers.max(1) {
        pipelines.push(load_pipeline(&settings)?);
    }
    let mut arbiters = Vec::new();
    let mut workers = Vec::new();
    let latest_frames = panoptes_actors::latest_frames::LatestFrames::default();
    state.latest_frames = Some(latest_frames.clone());
    for (index, p) in pipelines.into_iter().enumerate() {
        let arbiter = Arbiter::new();
        let (g, m, threshold) = (gallery.clone(), matcher.clone().recipient(), settings.gallery.match_threshold);
        let (max_batch, latest) = (s.max_batch, latest_frames.clone());
        workers.push(InferenceWorker::start_in_arbiter(&arbiter.handle(), move |_| {
            InferenceWorker::new(p, g, threshold, m)
                .with_index(index)
                .with_max_batch(max_batch)
                .with_latest_frames(latest)
        }));
        arbiters.push(arbiter);
    }
    let scheduler_config = SchedulerConfig {
        latency_budget: Duration::from_millis(s.latency_budget_ms),
        node_id: if s.node_id.is_empty() { default_node_id() } else { s.node_id.clone() },
        lease_ttl: Duration::from_secs(s.lease_ttl_secs),
        min_fps: s.min_fps,
        shedding: s.shedding,
        ..SchedulerConfig::default()
    };
    tracing::info!(node_id = %scheduler_config.node_id, "camera leases are held under this node id");
    let scheduler = Scheduler::new(store.clone(), workers, scheduler_config);
    state.camera_status = Some(scheduler.status_board());
    let scheduler = scheduler.start();

    // The API analyses enrollment and identify photos with its own pipeline (own ONNX sessions).
    state.analyzer = panoptes_api::analyzer::Analyzer::new(vec![load_pipeline(&settings)?]);
    state.policy = settings.enrollment.clone();
    state.match_threshold = settings.gallery.match_threshold;
    state.top_k = settings.gallery.top_k;
    state.scheduler = Some(scheduler.clone());
    state.sink = Some(sink.clone());
    state.matcher = Some(matcher.clone());
    let listen = settings.api.listen.clone();
    let json_limit = settings.api.json_limit_bytes;
    let cors_origins = settings.api.cors_origins.clone();
    let state = web::Data::new(state);
    panoptes_api::webhooks::spawn(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(panoptes_api::guard::guard))
            .wrap(actix_web::middleware::Condition::new(!cors_origins.is_empty(), cors(&cors_origins)))
            .wrap(actix_web::middleware::from_fn(panoptes_api::http_metrics::record))
            .configure(|cfg| panoptes_api::routes::configure_with_limit(cfg, json_limit))
    });
    let tls = panoptes_api::tls::server_config(&settings.api.tls_cert, &settings.api.tls_key).context("api TLS")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = match tls {
        Some(config) => server.bind_rustls_0_23(&listen, config),
        None => server.bind(&listen),
    }
    .with_context(|| format!("binding the API to {listen}"))?
    .shutdown_timeout(5)
    // Longer than any client pauses between requests on a kept-alive connection: a server that
    // closes first races the client's next request, which then fails (seen under locust at 5 s).
    .keep_alive(Duration::from_secs(75))
    .run();
    tracing::info!(%listen, scheme, "panoptes is serving; /healthz and /readyz are up");
    server.await.context("HTTP server")?;

    // Shutdown (SIGINT/SIGTERM): stop the cameras, then write what the sink still holds.
    let _ = scheduler.send(StopScheduler { release_leases: true }).await;
    for a in arbiters {
        a.stop();
    }
    match tokio::time::timeout(Duration::from_secs(5), sink.send(Drain)).await {
        Ok(Ok(Ok(n))) => tracing::info!(written = n, "detections flushed at shutdown"),
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "could not flush detections at shutdown"),
        _ => tracing::error!("the detection sink did not flush within 5 s"),
    }
    Ok(())
}

/// CORS for browser dashboards on other origins (`api.cors_origins`; "*" allows any). Preflight
/// requests are answered here, before the key check.
fn cors(origins: &[String]) -> actix_cors::Cors {
    let base = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
        .allowed_headers(["authorization", "x-api-key", "content-type"])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        return base.allow_any_origin();
    }
    origins.iter().fold(base, |c, o| c.allowed_origin(o))
}

/// Every 5 s, re-reads the gallery when the stored embeddings changed outside this engine's API (the
/// CLI, another engine); a database outage only postpones it.
fn spawn_gallery_sync(store: panoptes_engine::storage::Store, gallery: Arc<std::sync::RwLock<Gallery>>) {
    actix::spawn(async move {
        let mut sync = panoptes_engine::gallery_sync::GallerySync::default();
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            if let Err(e) = sync.refresh(&store, &gallery).await {
                tracing::debug!(error = %e, "could not compare the gallery with the database; will retry");
            }
        }
    });
}

/// Deletes expired snapshot days at start and then hourly, on the blocking pool.
fn spawn_snapshot_janitor(snapshots: Arc<SnapshotStore>) {
    actix::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            let s = snapshots.clone();
            match tokio::task::spawn_blocking(move || s.purge_expired(chrono::Utc::now().date_naive())).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(days = n, "deleted expired snapshot days"),
                Ok(Err(e)) => tracing::warn!(error = %e, "could not delete expired snapshots"),
                Err(e) => tracing::error!(error = %e, "snapshot janitor panicked"),
            }
        }
    });
}

/// The out-of-the-box demo: a looping clip as camera "demo", added once (the operator may delete it).
async fn add_demo_camera(store: &panoptes_engine::storage::Store, clip: &str) -> Result<()> {
    if clip.is_empty() {
        return Ok(());
    }
    let path = std::path::Path::new(clip);
    if !path.is_file() {
        return Ok(());
    }
    let cameras = store.list_cameras().await?;
    if cameras.iter().any(|c| c.name == "demo") {
        return Ok(());
    }
    let absolute = std::fs::canonicalize(path)?.to_string_lossy().into_owned();
    let cam = store.create_camera("demo", &absolute, 5.0, true).await?;
    tracing::info!(camera_id = cam.id, clip = %absolute, "added the demo camera");
    Ok(())
}
