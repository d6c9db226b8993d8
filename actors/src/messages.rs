//! Messages between pipeline actors.

use actix::Message;
use panoptes_engine::source::annexb::AccessUnit;

/// One encoded picture from a camera, stamped when it arrived.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct EncodedFrame {
    pub camera_id: i64,
    pub unit: AccessUnit,
    pub received_at: std::time::Instant,
}
