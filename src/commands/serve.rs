//! `panoptes serve`: loads models, database and gallery, starts the streaming pipeline (scheduler,
//! inference workers, matcher, detection sink) and serves the HTTP API until SIGINT/SIGTERM.

use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, App, HttpServer};
use anyhow::{Context as _, Result};
use panoptes_actors::inference::InferenceWorker;
use panoptes_actors::matcher::MatcherActor;
use panoptes_actors::scheduler::{Scheduler, StopScheduler};
use panoptes_actors::sink::{DetectionSink, Drain};
use panoptes_api::AppState;

use crate::context::{load_pipeline, Context};

pub async fn run(ctx: Context) -> Result<()> {
    let Context { settings, pipeline, store, gallery } = ctx;
    add_demo_camera(&store, &settings.streaming.demo_clip).await?;

    let s = &settings.streaming;
    let sink = DetectionSink::new(store.clone(), s.sink_capacity).start();
    let matcher =
        MatcherActor::new(Duration::from_secs(s.cooldown_secs), s.record_unknown, sink.clone().recipient()).start();
    let mut pipelines = vec![pipeline];
    for _ in 1..s.inference_workers.max(1) {
        pipelines.push(load_pipeline(&settings)?);
    }
    let mut arbiters = Vec::new();
    let mut workers = Vec::new();
    for p in pipelines {
        let arbiter = Arbiter::new();
        let (g, m, threshold) = (gallery.clone(), matcher.clone().recipient(), settings.gallery.match_threshold);
        workers.push(InferenceWorker::start_in_arbiter(&arbiter.handle(), move |_| {
            InferenceWorker::new(p, g, threshold, m)
        }));
        arbiters.push(arbiter);
    }
    let scheduler = Scheduler::new(store.clone(), workers, Duration::from_secs(1)).start();

    let listen = settings.api.listen.clone();
    let state = web::Data::new(AppState { store: store.clone(), gallery: gallery.clone() });
    let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(panoptes_api::configure))
        .bind(&listen)
        .with_context(|| format!("binding the API to {listen}"))?
        .shutdown_timeout(10)
        .run();
    tracing::info!(%listen, "panoptes is serving; /healthz and /readyz are up");
    server.await.context("HTTP server")?;

    // Shutdown (SIGINT/SIGTERM): stop the cameras, then write what the sink still holds.
    let _ = scheduler.send(StopScheduler).await;
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
