//! `panoptes bench`: the whole engine — the same assembly `serve` runs — on N file cameras playing
//! one clip, in a throwaway database on the configured PostgreSQL server, reporting what an operator
//! sizes a box by: frames each camera should have delivered and did, what was decoded and analysed,
//! capture→decision latency, CPU and memory per camera.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use panoptes::throwaway_database::ThrowawayDatabase;
use panoptes::{Context, Engine, Settings};
use panoptes_actors::scheduler::{CameraReport, GetSchedulerStats, ListCameraStatus};
use panoptes_actors::sink::GetSinkStats;
use panoptes_api::process_stats::ProcessStats;
use panoptes_engine::enrollment::enroll_photo;
use panoptes_engine::source::file::FileSource;

pub struct BenchArgs {
    pub cameras: usize,
    pub fps: f32,
    pub analysis_fps: f32,
    pub seconds: u64,
    /// Streaming before the window opens.
    pub warmup: u64,
    pub workers: Option<usize>,
    pub video: PathBuf,
    /// A substream of `video` that the cameras detect on (`video` is then read at its keyframes).
    pub detect_video: Option<PathBuf>,
    /// Let the scheduler shed analysis rate under load (off: overload shows as latency and drops).
    pub shedding: bool,
    /// Decode every frame and analyse none: the decoding floor of the same clip.
    pub decode_only: bool,
    /// Photos enrolled before the run, one person each.
    pub enroll: Vec<PathBuf>,
    /// Cameras switched on one after another over one pass of the clip.
    pub stagger: bool,
}

/// Per-camera counters at one moment (the start or the end of the measuring window).
#[derive(Default, Clone, Copy)]
struct Counts {
    received: u64,
    late: u64,
    camera_dropped: u64,
    decoded: u64,
    skipped: u64,
    sampled: u64,
    gated: u64,
    slot_dropped: u64,
    corrupt: u64,
    main_received: u64,
    main_keyframes: u64,
    main_idle: u64,
    main_embeddings: u64,
    mode_switches: u64,
}

fn counts(r: &CameraReport) -> Counts {
    let d = r.decoder.unwrap_or_default();
    let mut c = Counts {
        decoded: d.decoded,
        skipped: d.skipped,
        sampled: d.sampled,
        gated: d.gated,
        slot_dropped: d.dropped_for_inference,
        corrupt: d.corrupt,
        main_keyframes: d.main_keyframes_decoded,
        main_idle: d.main_keyframes_idle,
        main_embeddings: d.main_embeddings,
        mode_switches: d.mode_switches,
        main_received: r.main_status.as_ref().map_or(0, |m| m.frames_received),
        ..Counts::default()
    };
    if let Some(s) = &r.status {
        (c.received, c.late, c.camera_dropped) = (s.frames_received, s.frames_late, s.frames_dropped);
    }
    c
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
            "video {} not found (a video file: MP4, MKV, MOV or raw H.264/H.265; scripts/setup.sh makes .local/demo/lobby.h264)",
            args.video.display()
        )
    })?;
    // Here rather than as every camera's error: a file the cameras could not play. A container plays
    // at its own rate, a raw file at --fps.
    let (info, pass) = FileSource::measure(&video, args.fps).await?;
    let detect_video = match &args.detect_video {
        Some(d) => {
            let d = std::fs::canonicalize(d).with_context(|| format!("detect video {} not found", d.display()))?;
            let (detect, detect_pass) = FileSource::measure(&d, args.fps).await?;
            // The two are paired by their position in the clip: they must be renditions of one clip.
            if detect.fps != info.fps || detect_pass.abs_diff(pass) > Duration::from_secs_f32(1.5 / info.fps) {
                bail!(
                    "{} ({:.1} fps, {:.2} s) is not a rendition of {} ({:.1} fps, {:.2} s)",
                    d.display(),
                    detect.fps,
                    detect_pass.as_secs_f64(),
                    video.display(),
                    info.fps,
                    pass.as_secs_f64()
                );
            }
            Some(d)
        }
        None => None,
    };
    let (database, url) = ThrowawayDatabase::create(&settings.database_url()?, "panoptes_bench").await?;
    let scratch = std::env::temp_dir().join(format!("panoptes-bench-{}", std::process::id()));
    settings.database.url = url;
    settings.streaming.demo_clip.clear();
    if let Some(w) = args.workers {
        settings.streaming.inference_workers = w.max(1);
    }
    settings.streaming.shedding = args.shedding;
    settings.streaming.decode_only = args.decode_only;
    settings.streaming.file_fps = args.fps;
    settings.streaming.node_id = "bench".into();
    settings.snapshots.dir = scratch.join("snapshots").to_string_lossy().into_owned();
    settings.api.keys.clear();
    let result = measure(settings, &args, &video, detect_video.as_deref(), info.fps).await;
    database.drop().await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn measure(settings: Settings, args: &BenchArgs, video: &Path, detect: Option<&Path>, fps: f32) -> Result<()> {
    let (_, rss0) = process_usage()?;
    let decoder = settings.streaming.decoder;
    let mut ctx = Context::open(settings).await?;
    for photo in &args.enroll {
        let bytes = std::fs::read(photo).with_context(|| format!("reading {}", photo.display()))?;
        let name = photo.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "person".into());
        let person = ctx.store.create_person(&name, &serde_json::json!({})).await?;
        enroll_photo(&mut ctx.pipeline, &ctx.store, &ctx.gallery, &ctx.settings.enrollment, person.id, &bytes)
            .await
            .with_context(|| format!("enrolling {}", photo.display()))?;
    }
    let store = ctx.store.clone();
    let create = |i: usize| {
        let store = store.clone();
        let url = video.to_string_lossy().into_owned();
        let detect_url = detect.map(|d| d.to_string_lossy().into_owned());
        async move {
            let options = panoptes_engine::storage::CameraOptions::default();
            let camera = panoptes_engine::storage::NewCamera {
                name: &format!("bench-{}", i + 1),
                url: &url,
                analysis_fps: args.analysis_fps,
                enabled: true,
                transport: Default::default(),
                options: &options,
                detect_url: detect_url.as_deref(),
            };
            store.insert_camera(&camera).await
        }
    };
    // Staggered cameras start one pass of the clip apart in all, one every pass / N.
    let spacing = match args.stagger {
        true => {
            let (_, pass) = FileSource::measure(video, args.fps).await?;
            pass / args.cameras as u32
        }
        false => Duration::ZERO,
    };
    if !args.stagger {
        for i in 0..args.cameras {
            create(i).await?;
        }
    }
    let engine = Engine::start(ctx).await?;
    // Before the scheduler's first tick starts a camera (nothing has yielded to it yet).
    let (_, rss_models) = process_usage()?;
    let provider = engine.scheduler().send(GetSchedulerStats).await?.workers.first().and_then(|w| w.provider);
    if args.stagger {
        for i in 0..args.cameras {
            create(i).await?;
            actix::clock::sleep(spacing).await;
        }
    }

    // The window opens `warmup` seconds after every camera streams, so connection set-up and the
    // start-up burst (every camera's first face at once) are not measured.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reports = engine.scheduler().send(ListCameraStatus).await?;
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
    actix::clock::sleep(Duration::from_secs(args.warmup)).await;
    let before: Vec<Counts> = engine.scheduler().send(ListCameraStatus).await?.iter().map(counts).collect();
    let latency_before = engine.decision_latency().counts();
    let workers_before = engine.scheduler().send(GetSchedulerStats).await?.workers;
    let rows_before = engine.sink().send(GetSinkStats).await?.written;
    let (cpu_start, _) = process_usage()?;
    let started = Instant::now();
    actix::clock::sleep(Duration::from_secs(args.seconds)).await;
    let after: Vec<Counts> = engine.scheduler().send(ListCameraStatus).await?.iter().map(counts).collect();
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu_end, rss_end) = process_usage()?;
    let latency = engine.decision_latency().summary_since(&latency_before);
    let workers_after = engine.scheduler().send(GetSchedulerStats).await?.workers;
    let rows = engine.sink().send(GetSinkStats).await?.written - rows_before;
    let store = engine.store().clone();
    let _ = engine.shutdown().await;
    // Before the throwaway database goes: its connections would otherwise be cut under the engine.
    store.close();

    let n = args.cameras as f64;
    let delta = |f: fn(&Counts) -> u64| -> Vec<u64> { after.iter().zip(&before).map(|(a, b)| f(a) - f(b)).collect() };
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    let received = delta(|c| c.received);
    let expected_each = (elapsed * f64::from(fps)).round() as u64;
    let worker = |f: fn(&panoptes_actors::inference::WorkerStats) -> u64| -> u64 {
        workers_after.iter().zip(&workers_before).map(|(a, b)| f(a) - f(b)).sum()
    };
    let (analysed, batches, embeddings, tracks) =
        (worker(|w| w.frames), worker(|w| w.batches), worker(|w| w.embeddings), worker(|w| w.tracks_started));
    let (sampled, gated) = (sum(&delta(|c| c.sampled)), sum(&delta(|c| c.gated)));
    // Every sampled frame got a decision: the detector's, or the motion gate's "nothing moved".
    let decided = analysed + gated;
    let cpu = cpu_end - cpu_start;
    let provider = provider.map(|p| p.as_str()).unwrap_or("cpu");
    let mode = if args.decode_only { "decode only" } else { "full pipeline" };
    let start = match args.stagger {
        true => format!("started {:.2} s apart", spacing.as_secs_f64()),
        false => "started together".into(),
    };
    println!(
        "panoptes bench ({mode}): {} camera(s) {start} × {} fps, analysis {} fps, {} {provider} worker(s), decoder {}, {:.1} s after {} s of warm-up, {}",
        args.cameras,
        fps,
        args.analysis_fps,
        workers_after.len(),
        decoder.as_str(),
        elapsed,
        args.warmup,
        video.display()
    );
    let late = delta(|c| c.late);
    let behind: Vec<usize> = (0..received.len())
        .filter(|&i| (received[i] as f64) < 0.98 * expected_each as f64 || late[i] > expected_each / 50)
        .collect();
    println!(
        "frames expected {} ({} per camera), received {} (per camera min {} max {}), late {}; cameras behind their rate: {}",
        expected_each * args.cameras as u64,
        expected_each,
        sum(&received),
        received.iter().min().unwrap_or(&0),
        received.iter().max().unwrap_or(&0),
        sum(&late),
        behind.len()
    );
    println!(
        "frames decoded {}, not decoded (non-reference, not due) {}, sampled {sampled}, gated by motion {gated}, analysed {analysed}, corrupt {}",
        sum(&delta(|c| c.decoded)),
        sum(&delta(|c| c.skipped)),
        sum(&delta(|c| c.corrupt))
    );
    if let Some(d) = detect {
        println!(
            "main stream {}: units received {}, keyframes decoded {}, keyframes not needed (no face) {}, faces embedded from it {}; stream mode switches {}",
            video.display(),
            sum(&delta(|c| c.main_received)),
            sum(&delta(|c| c.main_keyframes)),
            sum(&delta(|c| c.main_idle)),
            sum(&delta(|c| c.main_embeddings)),
            sum(&delta(|c| c.mode_switches))
        );
        println!("detect stream (decoded and analysed): {}", d.display());
    }
    let (cam_dropped, slot_dropped) = (sum(&delta(|c| c.camera_dropped)), sum(&delta(|c| c.slot_dropped)));
    println!("frames dropped: camera→decoder {cam_dropped}, decoder→inference (latest wins) {slot_dropped}");
    println!(
        "inference batches {batches}, mean {:.2} frames per batch; tracks started {tracks}, faces embedded {embeddings}, appearances recorded {rows}",
        if batches > 0 { analysed as f64 / batches as f64 } else { 0.0 }
    );
    println!(
        "capture→decision latency (analysed frames): p50 {} ms, p95 {} ms, p99 {} ms ({} decisions)",
        latency.p50_ms, latency.p95_ms, latency.p99_ms, latency.decisions
    );
    println!(
        "CPU: {:.4} CPU-s per decided frame ({decided} decided: analysed + gated), {:.1} % of one core per camera",
        if decided > 0 { cpu / decided as f64 } else { 0.0 },
        cpu / elapsed / n * 100.0
    );
    println!(
        "RSS: {:.0} MB total ({:.0} MB with models loaded before cameras), {:.1} MB per camera (process before start {:.0} MB)",
        rss_end as f64 / 1e6,
        rss_models as f64 / 1e6,
        (rss_end.saturating_sub(rss_models)) as f64 / 1e6 / n,
        rss0 as f64 / 1e6,
    );
    let mut why_not = Vec::new();
    if !behind.is_empty() {
        why_not.push(format!("{} camera(s) fell behind their rate", behind.len()));
    }
    if cam_dropped + slot_dropped > 0 {
        why_not.push(format!("{} frames dropped", cam_dropped + slot_dropped));
    }
    if latency.p95_ms > 500 {
        why_not.push(format!("p95 {} ms > 500 ms", latency.p95_ms));
    }
    match why_not.is_empty() {
        true => println!("sustained: yes"),
        false => println!("sustained: no ({})", why_not.join("; ")),
    }
    Ok(())
}

/// (user + system CPU seconds, resident set size in bytes) of this process, from /proc.
fn process_usage() -> Result<(f64, u64)> {
    let p = ProcessStats::read().context("cannot read this process's figures from /proc/self")?;
    Ok((p.cpu_seconds, p.resident_bytes))
}
