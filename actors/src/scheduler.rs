//! The scheduler: keeps the running camera pipelines equal to the enabled cameras in PostgreSQL that
//! this node holds a lease on, and keeps capture→decision latency under budget.
//!
//! Every `poll` (1 s) it re-reads the cameras table and synchronises leases (see
//! `panoptes_engine::storage::leases`), so a camera added, changed or removed there starts or stops
//! within about a second, and a dead node's cameras are taken over once its leases expire. New
//! cameras go to the worker with the lowest projected load (measured seconds per frame × assigned
//! frame rate), which favours faster (GPU) workers until they fill and then spills to the CPU.
//!
//! Load shedding: when a worker's p95 latency passes 80 % of the budget, or it is busy nearly all
//! the time, the scheduler lowers the analysis rate of its busiest camera by 30 % (never below
//! `min_fps`); when latency falls under 40 % of the budget with headroom it raises the most-shed
//! camera back by 25 % towards its configured rate.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use panoptes_engine::runtime::Provider;
use panoptes_engine::source::camera_url::redact;
use panoptes_engine::storage::{Camera, Store};
use serde::Serialize;

use crate::camera::{CameraActor, CameraConfig, CameraStatus, GetStatus, StopCamera};
use crate::control::{deliver, DeliveryError};
use crate::decoder::{
    DecoderActor, DecoderOptions, DecoderStats, GetDecoderStats, PairedStreams, SetAnalysisFps, SetMotionMask,
};
use crate::inference::{GetWorkerStats, InferenceWorker, WorkerStats};
use crate::instruments;
use crate::main_stream::TimeSource;
use crate::messages::StreamRole;
use crate::shedding::{decide, CameraRate, RateChange};

#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    pub poll: Duration,
    /// Target for capture→decision latency; shedding starts at 80 % of it.
    pub latency_budget: Duration,
    /// This engine's identity in the lease table (unique per running process).
    pub node_id: String,
    /// A lease not renewed for this long is free to take.
    pub lease_ttl: Duration,
    /// Shedding never lowers a camera below this rate.
    pub min_fps: f32,
    pub shedding: bool,
    /// The rate a raw H.264 file camera plays at (the file itself carries no timing).
    pub file_fps: f32,
    /// How cameras' decoders work (backend, motion gate); each camera adds its own motion mask.
    pub decoder: DecoderOptions,
    /// What this node can carry relative to the others (e.g. its cores): cameras are shared in
    /// proportion. While it sheds load it advertises less, so idle nodes take cameras from it.
    pub capacity: f32,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            latency_budget: Duration::from_millis(500),
            node_id: default_node_id(),
            lease_ttl: Duration::from_secs(15),
            min_fps: 0.5,
            capacity: 1.0,
            shedding: true,
            file_fps: 10.0,
            decoder: DecoderOptions::default(),
        }
    }
}

/// The threads camera pipelines run on: camera I/O (async, never blocked by decoding) and the
/// decoder threads, over which cameras are spread.
#[derive(Clone)]
pub struct PipelineThreads {
    pub io: ArbiterHandle,
    pub decoders: Vec<ArbiterHandle>,
}

impl PipelineThreads {
    /// Everything on the current thread (tests of one camera).
    pub fn current() -> PipelineThreads {
        PipelineThreads { io: Arbiter::current(), decoders: vec![Arbiter::current()] }
    }
}

/// `<hostname>-<pid>`: unique per process on one host, readable in the lease table.
pub fn default_node_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
        .unwrap_or_else(|| "panoptes".into());
    format!("{host}-{}", std::process::id())
}

struct Pipeline {
    config: Camera,
    /// The analysed stream's camera actor (the substream's, when the camera has one).
    camera: Addr<CameraActor>,
    /// The main stream's, when the camera detects on a substream.
    main_camera: Option<Addr<CameraActor>>,
    decoder: Addr<DecoderActor>,
    worker: usize,
    /// Which decoder thread.
    decoder_thread: usize,
    /// The analysis rate in force (the configured one unless shed).
    fps: f32,
}

struct WorkerSlot {
    addr: Addr<InferenceWorker>,
    stats: WorkerStats,
    /// Last shed or restore on this worker: changes wait for the latency window to see the last one.
    last_change: Option<Instant>,
}

/// The newest status of every running camera, republished by the scheduler after each tick, so that
/// readers (the API, at tens of thousands of requests a second) never message the scheduler.
#[derive(Clone, Default)]
pub struct StatusBoard(Arc<RwLock<Arc<Vec<CameraReport>>>>);

impl StatusBoard {
    pub fn get(&self) -> Arc<Vec<CameraReport>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, reports: Vec<CameraReport>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(reports);
    }
}

pub struct Scheduler {
    board: StatusBoard,
    store: Store,
    config: SchedulerConfig,
    threads: PipelineThreads,
    workers: Vec<WorkerSlot>,
    running: HashMap<i64, Pipeline>,
    /// Pipelines asked to stop whose stop has not been confirmed yet (retried every tick until it is).
    stopping_cameras: Vec<(i64, Addr<CameraActor>)>,
    /// Cameras whose stop has been sent and not yet acknowledged: their leases are kept until then.
    stops_in_flight: HashSet<i64>,
    ticking: bool,
    /// Set by `StopScheduler`: no more ticks start cameras.
    stopping: bool,
    live_nodes: i64,
    /// The share of its capacity this node advertises: follows, slowly, the share of its cameras
    /// running at their full analysis rate (1 when none is shed).
    load_factor: f32,
    sheds: u64,
    restores: u64,
}

impl Scheduler {
    pub fn new(
        store: Store,
        workers: Vec<Addr<InferenceWorker>>,
        config: SchedulerConfig,
        threads: PipelineThreads,
    ) -> Self {
        let workers = workers
            .into_iter()
            .map(|addr| WorkerSlot { addr, stats: WorkerStats::default(), last_change: None })
            .collect();
        Self {
            board: StatusBoard::default(),
            store,
            config,
            threads,
            workers,
            running: HashMap::new(),
            stopping_cameras: Vec::new(),
            stops_in_flight: HashSet::new(),
            ticking: false,
            stopping: false,
            live_nodes: 0,
            load_factor: 1.0,
            sheds: 0,
            restores: 0,
        }
    }

    /// Where this scheduler publishes camera status (take it before starting the actor).
    pub fn status_board(&self) -> StatusBoard {
        self.board.clone()
    }

    /// Asks every running camera and decoder for its status.
    fn reports(&self) -> impl std::future::Future<Output = Vec<CameraReport>> + 'static {
        let cams: Vec<_> = self
            .running
            .iter()
            .map(|(id, r)| {
                (
                    *id,
                    r.config.name.clone(),
                    r.worker,
                    r.config.analysis_fps,
                    r.fps,
                    r.camera.clone(),
                    r.main_camera.clone(),
                    r.decoder.clone(),
                )
            })
            .collect();
        // Every camera asked at once: one after another, a node with hundreds of cameras spent its
        // status refresh waiting on each actor's turn in turn.
        let asked =
            cams.into_iter().map(|(id, name, worker, target_fps, analysis_fps, camera, main, decoder)| async move {
                let main_status = async {
                    match main {
                        Some(m) => m.send(GetStatus).await.ok(),
                        None => None,
                    }
                };
                let (status, main_status, decoder) =
                    futures::join!(camera.send(GetStatus), main_status, decoder.send(GetDecoderStats));
                CameraReport {
                    id,
                    name,
                    worker,
                    target_fps,
                    analysis_fps,
                    status: status.ok(),
                    main_status,
                    decoder: decoder.ok(),
                }
            });
        async move {
            let mut out = futures::future::join_all(asked).await;
            out.sort_by_key(|c| c.id);
            out
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.ticking || self.stopping {
            return;
        }
        self.ticking = true;
        let store = self.store.clone();
        self.load_factor = next_load_factor(self.load_factor, self.shed_fraction());
        let capacity = self.config.capacity * self.load_factor;
        let (node, ttl) = (self.config.node_id.clone(), self.config.lease_ttl);
        // Cameras this node runs or is stopping: their leases are not given up under them.
        let mut running: Vec<i64> = self
            .running
            .keys()
            .copied()
            .chain(self.stopping_cameras.iter().map(|(id, _)| *id))
            .chain(self.stops_in_flight.iter().copied())
            .collect();
        running.sort_unstable();
        running.dedup();
        let workers: Vec<Addr<InferenceWorker>> = self.workers.iter().map(|w| w.addr.clone()).collect();
        let work = async move {
            let started = Instant::now();
            let cameras = store.list_cameras().await;
            let leases = match &cameras {
                Ok(cams) => {
                    let enabled: Vec<i64> = cams.iter().filter(|c| c.enabled).map(|c| c.id).collect();
                    Some(store.sync_leases(&node, capacity, ttl, &enabled, &running).await)
                }
                Err(_) => None,
            };
            instruments::scheduler_tick("database", started.elapsed());
            let mut stats = Vec::with_capacity(workers.len());
            for w in &workers {
                stats.push(w.send(GetWorkerStats).await.ok());
            }
            (cameras, leases, stats)
        };
        ctx.spawn(work.into_actor(self).map(|(cameras, leases, stats), act, ctx| {
            act.ticking = false;
            if act.stopping {
                return;
            }
            for (slot, s) in act.workers.iter_mut().zip(stats) {
                if let Some(s) = s {
                    slot.stats = s;
                }
            }
            let started = Instant::now();
            match (cameras, leases) {
                (Ok(cameras), Some(Ok(sync))) => {
                    act.live_nodes = sync.live_nodes;
                    act.apply(cameras, &sync.held, ctx);
                }
                // The running cameras keep running while the database is away: no other node can
                // claim them either until it returns.
                (Err(e), _) | (_, Some(Err(e))) => {
                    tracing::warn!(error = %e, "cannot read cameras or leases; keeping the running set")
                }
                (Ok(_), None) => {}
            }
            act.stop_pending(ctx);
            if act.config.shedding {
                act.balance(ctx);
            }
            instruments::scheduler_tick("apply", started.elapsed());
            let board = act.board.clone();
            let reports = act.reports();
            actix::spawn(async move {
                let started = Instant::now();
                let reports = reports.await;
                instruments::scheduler_tick("status", started.elapsed());
                board.set(reports)
            });
        }));
    }

    /// The share of this node's cameras running below their configured analysis rate (shed).
    fn shed_fraction(&self) -> f32 {
        if self.running.is_empty() {
            return 0.0;
        }
        let shed = self.running.values().filter(|r| r.fps + 1e-3 < r.config.analysis_fps).count();
        shed as f32 / self.running.len() as f32
    }

    fn apply(&mut self, cameras: Vec<Camera>, held: &[i64], ctx: &mut Context<Self>) {
        let wanted: HashMap<i64, Camera> =
            cameras.into_iter().filter(|c| c.enabled && held.binary_search(&c.id).is_ok()).map(|c| (c.id, c)).collect();
        // Only a change of the stream itself (its URL or transport) needs a new connection; a new name
        // or analysis rate is applied to the running pipeline.
        let stale: Vec<i64> = self
            .running
            .iter()
            .filter(|(id, r)| wanted.get(id).is_none_or(|c| c.stream_differs(&r.config)))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(r) = self.running.remove(&id) {
                tracing::info!(camera_id = id, "stopping camera pipeline");
                self.stopping_cameras.push((id, r.camera));
                self.stopping_cameras.extend(r.main_camera.map(|m| (id, m)));
            }
        }
        for (id, cam) in &wanted {
            let Some(r) = self.running.get_mut(id) else { continue };
            if r.config.analysis_fps != cam.analysis_fps {
                tracing::info!(
                    camera_id = id,
                    from = r.config.analysis_fps,
                    to = cam.analysis_fps,
                    "new analysis rate"
                );
                // A shed camera starts again from its new configured rate.
                Self::set_rate(ctx, *id, r.decoder.clone(), cam.analysis_fps);
            }
            if r.config.options.motion_mask != cam.options.motion_mask {
                let (addr, mask, id) = (r.decoder.clone(), cam.options.motion_mask.clone(), *id);
                let send = async move { deliver(&addr, SetMotionMask(mask), "set_motion_mask", id).await };
                ctx.spawn(actix::fut::wrap_future::<_, Self>(send).map(|_, _, _| ()));
            }
            r.config = cam.clone();
        }
        self.stop_pending(ctx);
        let mut new: Vec<Camera> = wanted.into_values().filter(|c| !self.running.contains_key(&c.id)).collect();
        new.sort_by_key(|c| c.id);
        for cam in new {
            let Some(worker) = self.pick_worker(cam.analysis_fps) else { return };
            let id = cam.id;
            tracing::info!(camera_id = id, url = %redact(&cam.url), worker, "starting camera pipeline");
            let decoder_thread = self.pick_decoder_thread();
            let forward_all = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let paired = cam.detect_url.as_ref().map(|_| PairedStreams {
                forward_all: forward_all.clone(),
                clock: if cam.url.contains("://") { TimeSource::Rtcp } else { TimeSource::Pts },
            });
            let options =
                DecoderOptions { mask: cam.options.motion_mask.clone(), paired, ..self.config.decoder.clone() };
            let (fps, consumer) = (cam.analysis_fps, self.workers[worker].addr.clone().recipient());
            let decoder = DecoderActor::start_in_arbiter(&self.threads.decoders[decoder_thread], move |_| {
                DecoderActor::with_options(id, fps, consumer, options)
            });
            let stream = |url: &str, role: StreamRole| {
                let mut c = CameraConfig::new(id, url);
                c.transport = cam.transport;
                c.file_fps = self.config.file_fps;
                c.stall_timeout = cam.options.stall_timeout();
                c.looping = cam.options.looping();
                c.stream = role;
                c.forward_all = forward_all.clone();
                c
            };
            let start = |config: CameraConfig| {
                let frames = decoder.clone().recipient();
                CameraActor::start_in_arbiter(&self.threads.io, move |_| CameraActor::new(config, frames))
            };
            let (camera, main_camera) = match &cam.detect_url {
                Some(detect) => {
                    (start(stream(detect, StreamRole::Detect)), Some(start(stream(&cam.url, StreamRole::Main))))
                }
                None => (start(stream(&cam.url, StreamRole::Single)), None),
            };
            self.running
                .insert(id, Pipeline { config: cam, camera, main_camera, decoder, worker, decoder_thread, fps });
        }
    }

    /// Delivers `StopCamera` to every pipeline waiting to stop; one whose stop is not confirmed stays
    /// on the list for the next tick, so no camera keeps running unknown to the scheduler.
    fn stop_pending(&mut self, ctx: &mut Context<Self>) {
        for (id, camera) in std::mem::take(&mut self.stopping_cameras) {
            let addr = camera.clone();
            self.stops_in_flight.insert(id);
            let stop = async move { deliver(&addr, StopCamera, "stop_camera", id).await };
            ctx.spawn(stop.into_actor(self).map(move |result, act, _| {
                act.stops_in_flight.remove(&id);
                if let Err(DeliveryError::TimedOut) = result {
                    act.stopping_cameras.push((id, camera));
                }
            }));
        }
    }

    /// Delivers a new analysis rate to a camera's decoder; the rate is recorded as in force only once
    /// the decoder has it.
    fn set_rate(ctx: &mut Context<Self>, camera_id: i64, decoder: Addr<DecoderActor>, fps: f32) {
        let addr = decoder.clone();
        let send = async move { deliver(&addr, SetAnalysisFps(fps), "set_analysis_fps", camera_id).await };
        ctx.spawn(actix::fut::wrap_future::<_, Self>(send).map(move |result, act, _| {
            let Some(pipeline) = act.running.get_mut(&camera_id) else { return };
            // The camera may have been restarted meanwhile: only its own decoder's answer counts.
            if result.is_ok() && pipeline.decoder == decoder {
                pipeline.fps = fps;
            }
        }));
    }

    /// The decoder thread with the fewest cameras.
    fn pick_decoder_thread(&self) -> usize {
        (0..self.threads.decoders.len().max(1))
            .min_by_key(|t| self.running.values().filter(|r| r.decoder_thread == *t).count())
            .unwrap_or(0)
    }

    /// The worker whose projected utilisation after taking `fps` more frames per second is lowest;
    /// ties go to GPU workers.
    fn pick_worker(&self, fps: f32) -> Option<usize> {
        let projected = |w: usize| {
            let slot = &self.workers[w];
            // Before any measurement assume 50 ms per frame on CPU and 10 ms on GPU.
            let prior = if slot.stats.provider == Some(Provider::Cuda) { 0.01 } else { 0.05 };
            let per_frame = if slot.stats.load.frames > 0 { slot.stats.load.seconds_per_frame } else { prior };
            let assigned: f32 = self.running.values().filter(|r| r.worker == w).map(|r| r.fps).sum();
            f64::from(assigned + fps) * per_frame
        };
        (0..self.workers.len()).min_by(|a, b| {
            let gpu = |w: usize| self.workers[w].stats.provider == Some(Provider::Cuda);
            projected(*a).total_cmp(&projected(*b)).then(gpu(*b).cmp(&gpu(*a)))
        })
    }

    /// One shedding or restoring step per worker whose figures call for it.
    fn balance(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let budget_ms = self.config.latency_budget.as_secs_f64() * 1e3;
        for w in 0..self.workers.len() {
            if self.workers[w].last_change.is_some_and(|t| now.duration_since(t) < HOLD) {
                continue;
            }
            let load = self.workers[w].stats.load;
            let rates: Vec<CameraRate> = self
                .running
                .iter()
                .filter(|(_, r)| r.worker == w)
                .map(|(id, r)| CameraRate { camera_id: *id, fps: r.fps, target_fps: r.config.analysis_fps })
                .collect();
            let Some(change) = decide(&load, budget_ms, &rates, self.config.min_fps) else { continue };
            let (camera_id, fps, verb) = match change {
                RateChange::Shed { camera_id, fps } => {
                    self.sheds += 1;
                    (camera_id, fps, "shedding")
                }
                RateChange::Restore { camera_id, fps } => {
                    self.restores += 1;
                    (camera_id, fps, "restoring")
                }
            };
            if let Some(pipeline) = self.running.get(&camera_id) {
                tracing::info!(
                    camera_id,
                    from = pipeline.fps,
                    to = fps,
                    p95_ms = load.latency_p95_ms,
                    utilization = load.utilization,
                    "{verb} analysis rate"
                );
                Self::set_rate(ctx, camera_id, pipeline.decoder.clone(), fps);
            }
            self.workers[w].last_change = Some(now);
        }
    }
}

/// Time between two rate changes on one worker (the latency window must see the last change).
const HOLD: Duration = Duration::from_secs(3);

impl Actor for Scheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
        self.tick(ctx);
        ctx.run_interval(self.config.poll, |act, ctx| act.tick(ctx));
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        // The system is going down: a camera that misses this stops with it.
        for r in self.running.values() {
            let _ = r.camera.try_send(StopCamera);
            if let Some(m) = &r.main_camera {
                let _ = m.try_send(StopCamera);
            }
        }
        Running::Stop
    }
}

/// Stops every camera and the scheduler. With `release_leases` (a graceful shutdown) other nodes take
/// the cameras over at once; without, they wait for the leases to expire (what a crash looks like).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopScheduler {
    pub release_leases: bool,
}

impl Handler<StopScheduler> for Scheduler {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: StopScheduler, _: &mut Self::Context) -> Self::Result {
        let mut cameras: Vec<(i64, Addr<CameraActor>)> = self
            .running
            .drain()
            .flat_map(|(id, r)| std::iter::once((id, r.camera)).chain(r.main_camera.map(|m| (id, m))))
            .collect();
        cameras.append(&mut self.stopping_cameras);
        self.stopping = true;
        let store = self.store.clone();
        let node = self.config.node_id.clone();
        let release = msg.release_leases;
        Box::pin(
            async move {
                // Every camera stopped before the leases go, so no other node starts one still running here.
                let stops = cameras.iter().map(|(id, c)| deliver(c, StopCamera, "stop_camera", *id));
                futures::future::join_all(stops).await;
                if release {
                    if let Err(e) = store.release_node(&node).await {
                        tracing::warn!(error = %e, "could not release camera leases at shutdown");
                    }
                }
            }
            .into_actor(self)
            .map(|_, _, ctx| ctx.stop()),
        )
    }
}

/// The live status of every running camera.
#[derive(Message)]
#[rtype(result = "Vec<CameraReport>")]
pub struct ListCameraStatus;

#[derive(Clone, Debug, Serialize)]
pub struct CameraReport {
    pub id: i64,
    pub name: String,
    pub worker: usize,
    /// Configured analysis rate.
    pub target_fps: f32,
    /// Analysis rate in force (lower while shedding).
    pub analysis_fps: f32,
    /// The analysed stream's (the substream's, when the camera has one).
    pub status: Option<CameraStatus>,
    /// The main stream's, when the camera detects on a substream.
    pub main_status: Option<CameraStatus>,
    pub decoder: Option<DecoderStats>,
}

impl Handler<ListCameraStatus> for Scheduler {
    type Result = ResponseFuture<Vec<CameraReport>>;

    fn handle(&mut self, _: ListCameraStatus, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.reports())
    }
}

/// The advertised share of capacity after one more tick: it moves a twentieth of the way (about 20 s
/// at one tick a second) towards the share of cameras not shed, and never below a quarter, so a node
/// under a burst does not give its cameras away at once, nor its last ones.
pub fn next_load_factor(current: f32, shed_fraction: f32) -> f32 {
    let target = (1.0 - shed_fraction.clamp(0.0, 1.0)).max(0.25);
    (current + (target - current) * 0.05).clamp(0.25, 1.0)
}

/// Scheduler-wide figures.
#[derive(Message)]
#[rtype(result = "SchedulerStats")]
pub struct GetSchedulerStats;

#[derive(Clone, Debug, Serialize)]
pub struct SchedulerStats {
    pub node_id: String,
    pub live_nodes: i64,
    pub cameras: usize,
    pub sheds: u64,
    pub restores: u64,
    pub workers: Vec<WorkerStats>,
}

impl Handler<GetSchedulerStats> for Scheduler {
    type Result = MessageResult<GetSchedulerStats>;

    fn handle(&mut self, _: GetSchedulerStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(SchedulerStats {
            node_id: self.config.node_id.clone(),
            live_nodes: self.live_nodes,
            cameras: self.running.len(),
            sheds: self.sheds,
            restores: self.restores,
            workers: self.workers.iter().map(|w| w.stats).collect(),
        })
    }
}

#[cfg(test)]
mod load_factor_tests {
    use super::next_load_factor;

    #[test]
    fn a_saturated_node_advertises_less_slowly_and_recovers() {
        let mut f = 1.0;
        // One tick of shedding changes little: a burst does not move cameras.
        f = next_load_factor(f, 0.5);
        assert!(f > 0.97, "{f}");
        // Half the cameras shed for a minute: the node advertises about half its capacity.
        for _ in 0..60 {
            f = next_load_factor(f, 0.5);
        }
        assert!((0.5..0.6).contains(&f), "{f}");
        // Everything shed: never below a quarter.
        for _ in 0..600 {
            f = next_load_factor(f, 1.0);
        }
        assert!((f - 0.25).abs() < 1e-3, "{f}");
        // Load gone: back to full within a few minutes.
        for _ in 0..200 {
            f = next_load_factor(f, 0.0);
        }
        assert!(f > 0.99, "{f}");
    }
}
