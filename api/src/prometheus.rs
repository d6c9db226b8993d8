//! `GET /metrics`: the Prometheus exposition. Histograms and event counters are recorded where things
//! happen (`panoptes_actors::instruments`, [`crate::http_metrics`]); the figures the engine already
//! keeps for the API (camera status, decoder, worker, matcher, sink, cache, pool, process) are
//! copied into the registry just before each render, so `/metrics` and `/api/v1` agree.
//! Every name is listed in docs/metrics.md; a test holds the two together.

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use metrics::{counter, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use panoptes_actors::camera::CameraState;
use panoptes_actors::instruments::{self, FaceOutcome};
use panoptes_actors::main_stream::StreamMode;
use panoptes_actors::matcher::GetMatcherStats;
use panoptes_actors::scheduler::GetSchedulerStats;
use panoptes_actors::sink::GetSinkStats;

use crate::error::ApiError;
use crate::process_stats::ProcessStats;
use crate::AppState;

/// Latency buckets (seconds): from a 1 ms HTTP answer to a 10 s stall.
const SECONDS_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Frames per inference batch (the default `max_batch` is 8).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0];
/// A series nobody has updated for this long (a removed camera's) leaves the exposition.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once; later calls return the same handle. `None` when another
/// recorder was installed first (metrics then go there, and `/metrics` says so).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_frames".into()), BATCH_BUCKETS))
                .map(|b| b.idle_timeout(MetricKindMask::ALL, Some(IDLE_TIMEOUT)));
            let handle = match builder.and_then(|b| b.install_recorder()) {
                Ok(h) => h,
                Err(e) => {
                    tracing::error!(error = %e, "cannot install the Prometheus recorder; /metrics is unavailable");
                    return None;
                }
            };
            // Histogram samples wait in the recorder until drained: drain them even when nobody scrapes.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread; histograms drain at scrapes only");
            }
            Some(handle)
        })
        .as_ref()
}

pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let handle = install().ok_or_else(|| ApiError::Unavailable("the metrics recorder is not installed".into()))?;
    collect(&state).await;
    let mut body = handle.render();
    // The process figures are rendered here: the recorder's counters hold integers only, and CPU
    // time is a counter of (fractional) seconds.
    if let Some(p) = ProcessStats::read() {
        body.push_str(&p.exposition());
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body))
}

/// Copies the engine's own figures into the registry.
async fn collect(state: &AppState) {
    gauge!("panoptes_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    collect_cameras(state);
    if let Some(engine) = &state.engine {
        collect_engine(engine).await;
    }
    collect_api(state);
}

/// Figures of the engine's actors.
async fn collect_engine(engine: &crate::EngineLink) {
    if let Ok(s) = engine.scheduler.send(GetSchedulerStats).await {
        counter!("panoptes_scheduler_sheds_total").absolute(s.sheds);
        counter!("panoptes_scheduler_restores_total").absolute(s.restores);
        gauge!("panoptes_scheduler_cameras").set(s.cameras as f64);
        gauge!("panoptes_engine_nodes_live").set(s.live_nodes as f64);
        for (i, w) in s.workers.iter().enumerate() {
            let worker = i.to_string();
            let provider = w.provider.map(|p| p.as_str()).unwrap_or("none");
            gauge!("panoptes_worker_info", "worker" => worker.clone(), "provider" => provider).set(1.0);
            gauge!("panoptes_worker_cameras", "worker" => worker.clone()).set(w.cameras as f64);
            gauge!("panoptes_worker_utilisation_ratio", "worker" => worker.clone()).set(w.load.utilization);
            counter!("panoptes_inference_errors_total", "worker" => worker.clone()).absolute(w.errors);
            counter!("panoptes_embeddings_total", "worker" => worker.clone()).absolute(w.embeddings);
            counter!("panoptes_tracks_started_total", "worker" => worker.clone()).absolute(w.tracks_started);
            gauge!("panoptes_tracks_active", "worker" => worker.clone()).set(w.tracks_active as f64);
            counter!("panoptes_track_events_dropped_total", "worker" => worker).absolute(w.events_dropped);
        }
    }
    if let Ok(m) = engine.matcher.send(GetMatcherStats).await {
        counter!("panoptes_detection_events_dropped_total").absolute(m.events_dropped);
        for (outcome, n) in
            [("written", m.snapshots_written), ("failed", m.snapshots_failed), ("skipped", m.snapshots_skipped)]
        {
            counter!("panoptes_snapshots_total", "outcome" => outcome).absolute(n);
        }
        gauge!("panoptes_snapshot_writes_pending").set(m.snapshots_pending as f64);
        gauge!("panoptes_appearances_open").set(m.open_appearances as f64);
    }
    if let Ok(s) = engine.sink.send(GetSinkStats).await {
        gauge!("panoptes_sink_buffered_events").set(s.buffered as f64);
        gauge!("panoptes_sink_capacity_events").set(s.capacity as f64);
        counter!("panoptes_sink_written_total").absolute(s.written);
        counter!("panoptes_sink_updated_total").absolute(s.updated);
        counter!("panoptes_sink_overflow_total").absolute(s.overflow);
        counter!("panoptes_sink_write_failures_total").absolute(s.write_failures);
        counter!("panoptes_sink_dead_letters_total").absolute(s.dead_lettered);
    }
}

/// Figures the API keeps itself (gallery, caches, pool, subscribers, webhooks).
fn collect_api(state: &AppState) {
    let (gallery, model) = {
        let g = state.gallery.read().unwrap_or_else(|p| p.into_inner());
        (g.len(), g.model().clone())
    };
    gauge!("panoptes_gallery_embeddings").set(gallery as f64);
    gauge!("panoptes_gallery_model_info", "model" => model.name.clone(), "version" => model.version.clone()).set(1.0);
    if let Some(index) = &state.search {
        let (faces, bytes) = {
            let i = index.read().unwrap_or_else(|p| p.into_inner());
            (i.len(), i.heap_bytes())
        };
        gauge!("panoptes_search_index_faces").set(faces as f64);
        gauge!("panoptes_search_index_bytes").set(bytes as f64);
    }
    if let Some(switch) = &state.embedder_switch {
        let s = switch.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let switching = s.state.as_ref().is_some_and(|st| st.switching());
        gauge!("panoptes_embedder_switch_in_progress").set(if switching { 1.0 } else { 0.0 });
        if let Some(st) = &s.state {
            let target = st.target.to_string();
            for (kind, n) in
                [("embedded", s.target.embedded), ("failed", s.target.failed), ("pending", s.target.pending())]
            {
                gauge!("panoptes_reembed_photos", "model" => target.clone(), "state" => kind).set(n as f64);
            }
        }
    }
    for (cache, hm) in state.caches.by_cache() {
        counter!("panoptes_cache_requests_total", "cache" => cache, "result" => "hit").absolute(hm.hits);
        counter!("panoptes_cache_requests_total", "cache" => cache, "result" => "miss").absolute(hm.misses);
    }
    let pool = state.store.pool_status();
    gauge!("panoptes_db_pool_connections", "state" => "in_use").set(pool.in_use as f64);
    gauge!("panoptes_db_pool_connections", "state" => "idle").set(pool.idle as f64);
    gauge!("panoptes_db_pool_max_connections").set(pool.max_size as f64);
    gauge!("panoptes_db_pool_waiting_requests").set(pool.waiting as f64);
    gauge!("panoptes_live_event_subscribers").set(state.events.receiver_count() as f64);
    let w = state.webhooks.stats();
    for (outcome, n) in
        [("delivered", w.delivered), ("retried", w.retries), ("failed", w.failed), ("dropped", w.dropped)]
    {
        counter!("panoptes_webhook_deliveries_total", "outcome" => outcome).absolute(n);
    }
    let m = state.mqtt.stats();
    counter!("panoptes_mqtt_messages_total", "outcome" => "published").absolute(m.published);
    counter!("panoptes_mqtt_messages_total", "outcome" => "dropped").absolute(m.dropped);
    counter!("panoptes_mqtt_connections_total").absolute(m.connections);
    gauge!("panoptes_mqtt_connected").set(if m.connected { 1.0 } else { 0.0 });
    let r = state.retention.stats();
    for (kind, n) in [
        ("detections", r.detections),
        ("appearance_faces", r.appearance_faces),
        ("snapshots", r.snapshots),
        ("snapshot_days", r.snapshot_days),
        ("erased_leftovers", r.erased_leftovers),
    ] {
        counter!("panoptes_retention_deleted_total", "kind" => kind).absolute(n);
    }
    counter!("panoptes_retention_failures_total").absolute(r.failures);
    // Known restart counters start at zero, so a dashboard shows 0 rather than no data.
    for actor in instruments::RESTARTING_ACTORS {
        counter!(instruments::ACTOR_RESTARTS_TOTAL, "actor" => *actor).increment(0);
    }
    for message in instruments::CONTROL_MESSAGES {
        counter!(instruments::CONTROL_MESSAGES_FAILED_TOTAL, "message" => *message).increment(0);
    }
}

const STATES: [CameraState; 6] = [
    CameraState::Connecting,
    CameraState::Streaming,
    CameraState::Backoff,
    CameraState::Unsupported,
    CameraState::Finished,
    CameraState::Stopped,
];

const STREAM_MODES: [StreamMode; 5] =
    [StreamMode::Single, StreamMode::Paired, StreamMode::DetectOnly, StreamMode::MainOnly, StreamMode::Mismatch];

fn collect_cameras(state: &AppState) {
    let Some(board) = state.engine.as_ref().map(|e| &e.camera_status) else { return };
    for r in board.get().iter() {
        let camera = r.id.to_string();
        let c = || camera.clone();
        gauge!("panoptes_camera_info", "camera" => c(), "name" => r.name.clone(), "worker" => r.worker.to_string())
            .set(1.0);
        gauge!("panoptes_camera_target_analysis_fps", "camera" => c()).set(r.target_fps as f64);
        gauge!("panoptes_camera_analysis_fps", "camera" => c()).set(r.analysis_fps as f64);
        // Per-camera event counters start at zero with the camera.
        for outcome in [FaceOutcome::Matched, FaceOutcome::Unknown] {
            instruments::faces_detected(r.id, outcome, 0);
        }
        instruments::detection_events(r.id, 0);
        instruments::frames_analysed(r.id, 0);
        if let Some(s) = &r.status {
            for st in STATES {
                let on = if s.state == st { 1.0 } else { 0.0 };
                gauge!("panoptes_camera_state", "camera" => c(), "state" => st.as_str()).set(on);
            }
            gauge!("panoptes_camera_received_fps", "camera" => c()).set(s.fps as f64);
            counter!("panoptes_camera_reconnects_total", "camera" => c()).absolute(s.reconnects);
            counter!("panoptes_frames_received_total", "camera" => c()).absolute(s.frames_received);
            counter!("panoptes_frames_dropped_total", "camera" => c(), "stage" => "decode").absolute(s.frames_dropped);
            counter!("panoptes_frames_late_total", "camera" => c()).absolute(s.frames_late);
        }
        if let Some(d) = &r.decoder {
            counter!("panoptes_frames_decoded_total", "camera" => c()).absolute(d.decoded);
            counter!("panoptes_frames_sampled_total", "camera" => c()).absolute(d.sampled);
            counter!("panoptes_frames_skipped_total", "camera" => c()).absolute(d.skipped);
            counter!("panoptes_frames_gated_total", "camera" => c()).absolute(d.gated);
            counter!("panoptes_frames_skipped_after_loss_total", "camera" => c()).absolute(d.skipped_after_loss);
            counter!("panoptes_frames_corrupt_total", "camera" => c()).absolute(d.corrupt);
            counter!("panoptes_frames_dropped_total", "camera" => c(), "stage" => "inference")
                .absolute(d.dropped_for_inference);
            for mode in STREAM_MODES {
                let on = if d.stream_mode == mode { 1.0 } else { 0.0 };
                gauge!("panoptes_camera_stream_mode", "camera" => c(), "mode" => mode.as_str()).set(on);
            }
        }
        // Zero for a camera without a substream: one series per camera either way.
        let main = r.main_status.as_ref();
        let d = r.decoder.unwrap_or_default();
        counter!("panoptes_main_stream_frames_received_total", "camera" => c())
            .absolute(main.map_or(0, |m| m.frames_received));
        counter!("panoptes_main_stream_reconnects_total", "camera" => c()).absolute(main.map_or(0, |m| m.reconnects));
        counter!("panoptes_main_stream_keyframes_decoded_total", "camera" => c()).absolute(d.main_keyframes_decoded);
        counter!("panoptes_main_stream_embeddings_total", "camera" => c()).absolute(d.main_embeddings);
    }
}
