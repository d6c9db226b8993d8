//! The scheduler: keeps the running camera pipelines equal to the enabled cameras in PostgreSQL. It
//! re-reads the table every `poll` (1 s by default), so a camera added, changed or removed there is
//! started or stopped within about a second; new cameras go to the inference worker with the fewest
//! cameras. (Load-based shedding and multi-node leases build on this.)

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use panoptes_engine::source::camera_url::redact;
use panoptes_engine::storage::{Camera, Store};
use serde::Serialize;

use crate::camera::{CameraActor, CameraConfig, CameraStatus, GetStatus, StopCamera};
use crate::decoder::DecoderActor;
use crate::inference::InferenceWorker;

struct Pipeline {
    config: Camera,
    camera: Addr<CameraActor>,
    worker: usize,
}

pub struct Scheduler {
    store: Store,
    workers: Vec<Addr<InferenceWorker>>,
    running: HashMap<i64, Pipeline>,
    poll: Duration,
    reconciling: bool,
}

impl Scheduler {
    pub fn new(store: Store, workers: Vec<Addr<InferenceWorker>>, poll: Duration) -> Self {
        Self { store, workers, running: HashMap::new(), poll, reconciling: false }
    }

    fn reconcile(&mut self, ctx: &mut Context<Self>) {
        if self.reconciling {
            return;
        }
        self.reconciling = true;
        let store = self.store.clone();
        ctx.spawn(async move { store.list_cameras().await }.into_actor(self).map(|result, act, _| {
            act.reconciling = false;
            match result {
                Ok(cameras) => act.apply(cameras),
                // The running cameras keep running while the database is away.
                Err(e) => tracing::warn!(error = %e, "cannot read cameras; keeping the running set"),
            }
        }));
    }

    fn apply(&mut self, cameras: Vec<Camera>) {
        let wanted: HashMap<i64, Camera> = cameras.into_iter().filter(|c| c.enabled).map(|c| (c.id, c)).collect();
        let stale: Vec<i64> =
            self.running.iter().filter(|(id, r)| wanted.get(id) != Some(&r.config)).map(|(id, _)| *id).collect();
        for id in stale {
            if let Some(r) = self.running.remove(&id) {
                tracing::info!(camera_id = id, "stopping camera pipeline");
                let _ = r.camera.try_send(StopCamera);
            }
        }
        for (id, cam) in wanted {
            if self.running.contains_key(&id) || self.workers.is_empty() {
                continue;
            }
            let worker = (0..self.workers.len())
                .min_by_key(|w| self.running.values().filter(|r| r.worker == *w).count())
                .unwrap_or(0);
            tracing::info!(camera_id = id, url = %redact(&cam.url), worker, "starting camera pipeline");
            let decoder = DecoderActor::new(id, cam.analysis_fps, self.workers[worker].clone().recipient()).start();
            let camera = CameraActor::new(CameraConfig::new(id, cam.url.clone()), decoder.recipient()).start();
            self.running.insert(id, Pipeline { config: cam, camera, worker });
        }
    }
}

impl Actor for Scheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.reconcile(ctx);
        ctx.run_interval(self.poll, |act, ctx| act.reconcile(ctx));
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        for r in self.running.values() {
            let _ = r.camera.try_send(StopCamera);
        }
        Running::Stop
    }
}

/// Stops every camera and the scheduler (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopScheduler;

impl Handler<StopScheduler> for Scheduler {
    type Result = ();

    fn handle(&mut self, _: StopScheduler, ctx: &mut Self::Context) {
        ctx.stop();
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
    pub status: Option<CameraStatus>,
}

impl Handler<ListCameraStatus> for Scheduler {
    type Result = ResponseFuture<Vec<CameraReport>>;

    fn handle(&mut self, _: ListCameraStatus, _: &mut Self::Context) -> Self::Result {
        let cams: Vec<(i64, String, usize, Addr<CameraActor>)> =
            self.running.iter().map(|(id, r)| (*id, r.config.name.clone(), r.worker, r.camera.clone())).collect();
        Box::pin(async move {
            let mut out = Vec::with_capacity(cams.len());
            for (id, name, worker, addr) in cams {
                out.push(CameraReport { id, name, worker, status: addr.send(GetStatus).await.ok() });
            }
            out.sort_by_key(|c| c.id);
            out
        })
    }
}
