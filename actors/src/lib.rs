//! Supervised actix actors that wire the engine into the streaming pipeline. Today: the camera actor
//! (connect, stream, detect stalls, reconnect with backoff) and the decoder actor (decode, sample at
//! the analysis rate, latest-wins hand-off to inference). Decoder, inference, matcher and
//! scheduler actors build on the same messages.

pub mod camera;
pub mod decoder;
pub mod inference;
pub mod latest;
pub mod matcher;
pub mod messages;
pub mod scheduler;
pub mod sink;
