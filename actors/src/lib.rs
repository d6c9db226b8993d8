//! Actix actors that wire the engine into the streaming pipeline: camera (connect, stream, detect
//! stalls, reconnect with backoff) → decoder (decode, sample at the analysis rate, latest-wins hand-off)
//! → inference worker (batched detection and embedding, gallery search) → matcher (one event per
//! appearance, snapshots) → detection sink (bounded buffer, batched inserts), all started and balanced
//! by the scheduler, which also holds the node's camera leases.

pub mod camera;
pub mod control;
pub mod decoder;
#[cfg(feature = "fault-injection")]
pub mod fault_injection;
pub mod inference;
pub mod instruments;
pub mod latency_record;
pub mod latest;
pub mod latest_frames;
pub mod load;
pub mod main_stream;
pub mod matcher;
pub mod messages;
pub mod scheduler;
pub mod shedding;
pub mod sink;
