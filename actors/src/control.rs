//! Control messages that must arrive — stop a camera, change its analysis rate. `try_send` loses them
//! when the mailbox is full (a busy decoder's mailbox often is); here they are sent with `send`, which
//! waits for room, each try bounded in time, retried, and counted and logged when they still fail, so
//! the sender can keep its own record true (retry later, or not record the change as applied).

use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::instruments;

/// How long one try may wait for room in the mailbox and for the answer.
pub const TRY_TIMEOUT: Duration = Duration::from_secs(2);
/// Tries before giving up.
pub const TRIES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The actor has stopped: a stop request has nothing left to do, any other message is moot.
    #[error("the actor has stopped")]
    Stopped,
    #[error("not delivered after {TRIES} tries of {TRY_TIMEOUT:?} (mailbox full or actor stalled)")]
    TimedOut,
}

/// Delivers `msg` to `addr` and waits for it to be handled; `what` names the message in logs and in
/// `panoptes_control_messages_failed_total`.
pub async fn deliver<A, M>(
    addr: &Addr<A>,
    msg: M,
    what: &'static str,
    camera_id: i64,
) -> Result<M::Result, DeliveryError>
where
    A: Actor + Handler<M>,
    A::Context: ToEnvelope<A, M>,
    M: Message + Clone + Send + 'static,
    M::Result: Send,
{
    for attempt in 1..=TRIES {
        match tokio::time::timeout(TRY_TIMEOUT, addr.send(msg.clone())).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(MailboxError::Closed)) => return Err(DeliveryError::Stopped),
            Ok(Err(MailboxError::Timeout)) | Err(_) => {
                tracing::warn!(camera_id, message = what, attempt, "control message not delivered yet; retrying");
            }
        }
    }
    instruments::control_message_failed(what);
    tracing::error!(camera_id, message = what, "control message could not be delivered");
    Err(DeliveryError::TimedOut)
}
