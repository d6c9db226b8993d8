//! The detection sink: buffers events (bounded; when full, the oldest is dropped and counted) and
//! writes them to PostgreSQL in batches. While the database is unreachable, events wait and are
//! written when it returns.

use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;
use panoptes_engine::storage::{NewDetection, Store};

use crate::messages::DetectionEvent;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    pub written: u64,
    pub buffered: u64,
    pub overflow: u64,
    pub write_failures: u64,
}

#[derive(Message)]
#[rtype(result = "SinkStats")]
pub struct GetSinkStats;

pub struct DetectionSink {
    store: Store,
    buffer: VecDeque<NewDetection>,
    capacity: usize,
    batch: usize,
    flushing: bool,
    stats: SinkStats,
}

impl DetectionSink {
    pub fn new(store: Store, capacity: usize) -> Self {
        Self {
            store,
            buffer: VecDeque::new(),
            capacity: capacity.max(1),
            batch: 500,
            flushing: false,
            stats: SinkStats::default(),
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.flushing || self.buffer.is_empty() {
            return;
        }
        self.flushing = true;
        let batch: Vec<NewDetection> = self.buffer.iter().take(self.batch).cloned().collect();
        let store = self.store.clone();
        let write = async move { store.insert_detections(&batch).await.map(|_| batch.len()) };
        ctx.spawn(write.into_actor(self).map(|result, act, _| {
            act.flushing = false;
            match result {
                Ok(n) => {
                    act.buffer.drain(..n);
                    act.stats.written += n as u64;
                }
                Err(e) => {
                    act.stats.write_failures += 1;
                    tracing::warn!(error = %e, buffered = act.buffer.len(), "cannot write detections; will retry");
                }
            }
        }));
    }
}

impl Actor for DetectionSink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        ctx.run_interval(Duration::from_millis(200), |act, ctx| act.flush(ctx));
    }
}

impl Handler<DetectionEvent> for DetectionSink {
    type Result = ();

    fn handle(&mut self, DetectionEvent(d): DetectionEvent, _: &mut Self::Context) {
        if self.buffer.len() >= self.capacity {
            self.buffer.pop_front();
            self.stats.overflow += 1;
            tracing::error!(capacity = self.capacity, "detection buffer full; oldest event dropped");
        }
        self.buffer.push_back(d);
    }
}

impl Handler<GetSinkStats> for DetectionSink {
    type Result = MessageResult<GetSinkStats>;

    fn handle(&mut self, _: GetSinkStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(SinkStats { buffered: self.buffer.len() as u64, ..self.stats })
    }
}
