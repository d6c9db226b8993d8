//! `panoptes bench`: the whole engine — the same assembly `serve` runs — on N file cameras playing
//! one clip, in a throwaway database on the configured PostgreSQL server, reporting what an operator
//! sizes a box by: frames each camera should have delivered and did, what was decoded and analysed,
//! capture→decision latency, CPU and memory per camera.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use panoptes::{Context, Engine, Settings};
use panoptes_actors::scheduler::{CameraReport, GetSchedulerStats};
use panoptes_api::process_stats::ProcessStats;

pub struct BenchArgs {
    pub cameras: usize,
    pub fps: f32,
    pub analysis_fps: f32,
    pub seconds: u64,
    pub workers: Option<usize>,
    pub video: PathBuf,
    /// Let the scheduler shed analysis rate under load (off: overload shows as latency and drops).
    pub shedding: bool,
}

/// A database of its own on the configured server, dropped at the end.
struct ThrowawayDatabase {
    admin_url: String,
    name: String,
}

impl ThrowawayDatabase {
    async fn create(server_url: &str) -> Result<(ThrowawayDatabase, String)> {
        let (client, conn) = tokio_postgres::connect(server_url, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("connecting to {}", panoptes::context::redact_url(server_url)))?;
        actix::spawn(async move {
            let _ = conn.await;
        });
        let name = format!("panoptes_bench_{}", std::process::id());
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .context("panoptes bench runs the engine in a throwaway database: it needs CREATE DATABASE rights")?;
        let url = with_database(server_url, &name)?;
        Ok((ThrowawayDatabase { admin_url: server_url.to_string(), name }, url))
    }

    async fn drop(self) {
        if let Ok((client, conn)) = tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls).await {
            actix::spawn(async move {
                let _ = conn.await;
            });
            if let Err(e) = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await {
                eprintln!("could not drop the benchmark database {}: {e}", self.name);
            }
        }
    }
}

/// `url` with its database name replaced (postgresql://…/name?params).
fn with_database(url: &str, name: &str) -> Result<String> {
    let mut config: tokio_postgres::Config = url.parse().context("database URL")?;
    config.dbname(name);
    let Some(scheme_end) = url.find("://") else { bail!("the benchmark needs a postgresql:// URL") };
    let (head, query) = url.split_once('?').map_or((url, None), |(h, q)| (h, Some(q)));
    let base = match head[scheme_end + 3..].find('/') {
        Some(slash) => &head[..scheme_end + 3 + slash],
        None => head,
    };
    Ok(match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    })
}

/// Per-camera counters at one moment (the start or the end of the measuring window).
#[derive(Default, Clone, Copy)]
struct Counts {
    received: u64,
    camera_dropped: u64,
    decoded: u64,
    sampled: u64,
    slot_dropped: u64,
    corrupt: u64,
}

fn counts(r: &CameraReport) -> Counts {
    let (s, d) = (r.status.clone().unwrap_or_else(idle_status), r.decoder.unwrap_or_default());
    Counts {
        received: s.frames_received,
        camera_dropped: s.frames_dropped,
        decoded: d.decoded,
        sampled: d.sampled,
        slot_dropped: d.dropped_for_inference,
        corrupt: d.corrupt,
    }
}

fn idle_status() -> panoptes_actors::camera::CameraStatus {
    panoptes_actors::camera::CameraStatus {
        state: panoptes_actors::camera::CameraState::Connecting,
        last_error: None,
        reconnects: 0,
        frames_received: 0,
        frames_dropped: 0,
        fps: 0.0,
    }
}

pub async fn run(mut settings: Settings, args: BenchArgs) -> Result<()> {
    if args.cameras == 0 || args.seconds == 0 {
        bail!("--cameras and --seconds must be at least 1");
    }
    if !(args.fps.is_finite() && args.fps > 0.0 && args.fps <= 240.0) {
        bail!("--fps must be in (0, 240]");
    }
    if !(args.analysis_fps.is_finite() && args.analysis_fps > 0.0 && args.analysis_fps <= 60.0) {
        bail!("--analysis-fps must be in (0, 60]");
    }
    let video = std::fs::canonicalize(&args.video).with_context(|| {
        format!(
            "video {} not found (an Annex-B .h264 file; scripts/setup.sh makes .local/demo/lobby.h264)",
            args.video.display()
        )
    })?;
    let (database, url) = ThrowawayDatabase::create(&settings.database_url()?).await?;
    let scratch = std::env::temp_dir().join(format!("panoptes-bench-{}", std::process::id()));
    settings.database.url = url;
    settings.streaming.demo_clip.clear();
    if let Some(w) = args.workers {
        settings.streaming.inference_workers = w.max(1);
    }
    settings.streaming.shedding = args.shedding;
    settings.streaming.file_fps = args.fps;
    settings.streaming.node_id = "bench".into();
    settings.snapshots.dir = scratch.join("snapshots").to_string_lossy().into_owned();
    settings.api.keys.clear();
    let result = measure(settings, &args, &video).await;
    database.drop().await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn measure(settings: Settings, args: &BenchArgs, video: &Path) -> Result<()> {
    let (_, rss0) = process_usage()?;
    let ctx = Context::open(settings).await?;
    for i in 0..args.cameras {
        ctx.store.create_camera(&format!("bench-{}", i + 1), &video.to_string_lossy(), args.analysis_fps, true).await?;
    }
    let engine = Engine::start(ctx).await?;
    // Before the scheduler's first tick starts a camera (nothing has yielded to it yet).
    let (_, rss_models) = process_usage()?;
    let provider = engine.scheduler().send(GetSchedulerStats).await?.workers.first().and_then(|w| w.provider);

    // The window opens once every camera streams, so connection set-up is not measured.
    let board = engine.api_state().engine.as_ref().map(|e| e.camera_status.clone()).context("engine link")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reports = board.get();
        let streaming = reports
            .iter()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.state == panoptes_actors::camera::CameraState::Streaming))
            .count();
        if streaming == args.cameras {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {streaming} of {} cameras streaming after 30 s", args.cameras);
        }
        actix::clock::sleep(Duration::from_millis(100)).await;
    }
    let before: Vec<Counts> = board.get().iter().map(counts).collect();
    let latency_before = engine.decision_latency().counts();
    let workers_before = engine.scheduler().send(GetSchedulerStats).await?.workers;
    let (cpu_start, _) = process_usage()?;
    let started = Instant::now();
    actix::clock::sleep(Duration::from_secs(args.seconds)).await;
    // The board is republished every second: wait for one taken after the window closed.
    actix::clock::sleep(Duration::from_millis(1100)).await;
    let elapsed = started.elapsed().as_secs_f64() - 1.1;
    let (cpu_end, rss_end) = process_usage()?;
    let after: Vec<Counts> = board.get().iter().map(counts).collect();
    let latency = engine.decision_latency().summary_since(&latency_before);
    let workers_after = engine.scheduler().send(GetSchedulerStats).await?.workers;
    let _ = engine.shutdown().await;

    let n = args.cameras as f64;
    let delta = |f: fn(&Counts) -> u64| -> Vec<u64> { after.iter().zip(&before).map(|(a, b)| f(a) - f(b)).collect() };
    let received = delta(|c| c.received);
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    let expected_each = (elapsed * f64::from(args.fps)).round() as u64;
    let (analysed, batches) = workers_after
        .iter()
        .zip(&workers_before)
        .fold((0, 0), |(f, b), (a, w)| (f + a.frames - w.frames, b + a.batches - w.batches));
    let cpu = cpu_end - cpu_start;
    let provider = provider.map(|p| p.as_str()).unwrap_or("cpu");
    println!(
        "panoptes bench: {} camera(s) × {} fps, analysis {} fps, {} {provider} worker(s), {:.1} s, {}",
        args.cameras,
        args.fps,
        args.analysis_fps,
        workers_after.len(),
        elapsed,
        video.display()
    );
    println!(
        "frames expected {} ({} per camera), received {} (per camera min {} max {})",
        expected_each * args.cameras as u64,
        expected_each,
        sum(&received),
        received.iter().min().unwrap_or(&0),
        received.iter().max().unwrap_or(&0)
    );
    println!(
        "frames decoded {}, sampled {}, analysed {analysed}, corrupt {}",
        sum(&delta(|c| c.decoded)),
        sum(&delta(|c| c.sampled)),
        sum(&delta(|c| c.corrupt))
    );
    println!(
        "frames dropped: camera→decoder {}, decoder→inference (latest wins) {}",
        sum(&delta(|c| c.camera_dropped)),
        sum(&delta(|c| c.slot_dropped))
    );
    println!(
        "inference batches {batches}, mean {:.2} frames per batch",
        if batches > 0 { analysed as f64 / batches as f64 } else { 0.0 }
    );
    println!(
        "capture→decision latency: p50 {} ms, p95 {} ms, p99 {} ms ({} decisions)",
        latency.p50_ms, latency.p95_ms, latency.p99_ms, latency.decisions
    );
    println!(
        "CPU: {:.3} CPU-s per analysed frame, {:.1} % of one core per camera",
        if analysed > 0 { cpu / analysed as f64 } else { 0.0 },
        cpu / elapsed / n * 100.0
    );
    println!(
        "RSS: {:.0} MB total ({:.0} MB with models loaded before cameras), {:.1} MB per camera (process before start {:.0} MB)",
        rss_end as f64 / 1e6,
        rss_models as f64 / 1e6,
        (rss_end.saturating_sub(rss_models)) as f64 / 1e6 / n,
        rss0 as f64 / 1e6,
    );
    Ok(())
}

/// (user + system CPU seconds, resident set size in bytes) of this process, from /proc.
fn process_usage() -> Result<(f64, u64)> {
    let p = ProcessStats::read().context("cannot read this process's figures from /proc/self")?;
    Ok((p.cpu_seconds, p.resident_bytes))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_and_parameters_kept() {
        assert_eq!(with_database("postgresql://u@h:5/panoptes", "b").unwrap(), "postgresql://u@h:5/b");
        assert_eq!(with_database("postgresql://u@h:5", "b").unwrap(), "postgresql://u@h:5/b");
        assert_eq!(
            with_database("postgresql://u@h/x?sslmode=disable", "b").unwrap(),
            "postgresql://u@h/b?sslmode=disable"
        );
    }
}
