//! `panoptes bench`: the full actor pipeline (file cameras → decoders → inference workers) on one
//! clip, with an in-memory gallery and no database, reporting what an operator sizes a box by.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::{bail, Context as _, Result};
use panoptes_actors::camera::{CameraActor, CameraConfig, GetStatus, StopCamera};
use panoptes_actors::decoder::{DecoderActor, GetDecoderStats};
use panoptes_actors::inference::{GetWorkerStats, InferenceWorker};
use panoptes_actors::messages::FaceObservation;
use panoptes_api::process_stats::ProcessStats;
use panoptes_engine::embed::EMBEDDING_DIM;
use panoptes_engine::gallery::Gallery;

use crate::context::load_pipeline;
use crate::settings::Settings;

pub struct BenchArgs {
    pub cameras: usize,
    pub fps: f32,
    pub analysis_fps: f32,
    pub seconds: u64,
    pub workers: usize,
    pub video: std::path::PathBuf,
}

/// Receives every face observation and records capture→decision latency per camera.
struct Collector {
    latencies: Vec<Duration>,
    per_camera: HashMap<i64, u64>,
}

impl Actor for Collector {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }
}

impl Handler<FaceObservation> for Collector {
    type Result = ();
    fn handle(&mut self, o: FaceObservation, _: &mut Self::Context) {
        self.latencies.push(o.received_at.elapsed());
        *self.per_camera.entry(o.camera_id).or_default() += 1;
    }
}

#[derive(Message)]
#[rtype(result = "(Vec<Duration>, HashMap<i64, u64>)")]
struct TakeResults;

impl Handler<TakeResults> for Collector {
    type Result = MessageResult<TakeResults>;
    fn handle(&mut self, _: TakeResults, _: &mut Self::Context) -> Self::Result {
        MessageResult((std::mem::take(&mut self.latencies), std::mem::take(&mut self.per_camera)))
    }
}

/// (user + system CPU seconds, resident set size in bytes) of this process, from /proc.
fn process_usage() -> Result<(f64, u64)> {
    let p = ProcessStats::read().context("cannot read this process's figures from /proc/self")?;
    Ok((p.cpu_seconds, p.resident_bytes))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub async fn run(settings: Settings, args: BenchArgs) -> Result<()> {
    if args.cameras == 0 || args.seconds == 0 {
        bail!("--cameras and --seconds must be at least 1");
    }
    if !Path::new(&args.video).is_file() {
        bail!(
            "video {} not found (an Annex-B .h264 file; scripts/setup.sh makes .local/demo/lobby.h264)",
            args.video.display()
        );
    }
    let mut pipelines = Vec::new();
    for _ in 0..args.workers.max(1) {
        pipelines.push(load_pipeline(&settings)?);
    }
    let model = pipelines[0].model().clone();
    let provider = pipelines[0].provider();
    let gallery = Arc::new(RwLock::new(Gallery::new(model, EMBEDDING_DIM)));
    let collector = Collector { latencies: Vec::new(), per_camera: HashMap::new() }.start();
    let mut arbiters = Vec::new();
    let mut workers = Vec::new();
    for p in pipelines {
        let arbiter = Arbiter::new();
        let (g, c) = (gallery.clone(), collector.clone().recipient());
        workers
            .push(InferenceWorker::start_in_arbiter(&arbiter.handle(), move |_| InferenceWorker::new(p, g, 0.55, c)));
        arbiters.push(arbiter);
    }
    let (cpu0, rss0) = process_usage()?;
    let mut cams = Vec::new();
    let mut decoders = Vec::new();
    for i in 0..args.cameras {
        let id = i as i64 + 1;
        let decoder = DecoderActor::new(id, args.analysis_fps, workers[i % workers.len()].clone().recipient()).start();
        let mut cfg = CameraConfig::new(id, args.video.to_string_lossy());
        cfg.file_fps = args.fps;
        cams.push(CameraActor::new(cfg, decoder.clone().recipient()).start());
        decoders.push(decoder);
    }
    let started = Instant::now();
    actix::clock::sleep(Duration::from_secs(args.seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu1, rss1) = process_usage()?;

    let (mut received, mut cam_dropped, mut decoded, mut sampled, mut slot_dropped, mut corrupt) = (0, 0, 0, 0, 0, 0);
    for c in &cams {
        let s = c.send(GetStatus).await?;
        received += s.frames_received;
        cam_dropped += s.frames_dropped;
        let _ = c.send(StopCamera).await;
    }
    // With the cameras stopped, a worker's answer comes after the wake-ups queued before it, so the
    // frame counts below are final and consistent (analysed ≤ sampled).
    for w in &workers {
        w.send(GetWorkerStats).await?;
    }
    let (mut lat, per_camera) = collector.send(TakeResults).await?;
    lat.sort();
    for d in &decoders {
        let s = d.send(GetDecoderStats).await?;
        decoded += s.decoded;
        sampled += s.sampled;
        slot_dropped += s.dropped_for_inference;
        corrupt += s.corrupt;
    }
    let (mut analysed, mut batches) = (0, 0);
    for w in &workers {
        let s = w.send(GetWorkerStats).await?;
        analysed += s.frames;
        batches += s.batches;
    }
    for a in arbiters {
        a.stop();
    }
    let n = args.cameras as f64;
    let cpu = cpu1 - cpu0;
    let fps_per_cam: Vec<f64> =
        (1..=args.cameras as i64).map(|id| *per_camera.get(&id).unwrap_or(&0) as f64 / elapsed).collect();
    println!(
        "panoptes bench: {} camera(s) × {} fps, analysis {} fps, {} {provider} worker(s), {:.1} s, {}",
        args.cameras,
        args.fps,
        args.analysis_fps,
        workers.len(),
        elapsed,
        args.video.display()
    );
    println!(
        "frames received {received}, decoded {decoded}, sampled {sampled}, analysed {analysed}, corrupt {corrupt}"
    );
    println!("frames dropped: camera→decoder {cam_dropped}, decoder→inference (latest wins) {slot_dropped}");
    println!(
        "inference batches {batches}, mean {:.2} frames per batch",
        if batches > 0 { analysed as f64 / batches as f64 } else { 0.0 }
    );
    println!(
        "analysis fps per camera (faces reported): min {:.2} mean {:.2} max {:.2}",
        fps_per_cam.iter().cloned().fold(f64::INFINITY, f64::min),
        fps_per_cam.iter().sum::<f64>() / n,
        fps_per_cam.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "capture→decision latency: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms ({} decisions)",
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.95).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.len()
    );
    println!(
        "CPU: {:.3} CPU-s per analysed frame, {:.1} % of one core per camera",
        if analysed > 0 { cpu / analysed as f64 } else { 0.0 },
        cpu / elapsed / n * 100.0
    );
    println!(
        "RSS: {:.0} MB total ({:.0} MB with models loaded before cameras), {:.1} MB per camera",
        rss1 as f64 / 1e6,
        rss0 as f64 / 1e6,
        (rss1.saturating_sub(rss0)) as f64 / 1e6 / n
    );
    Ok(())
}
