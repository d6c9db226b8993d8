//! Control messages (stop a camera, change its analysis rate) reach an actor whose mailbox is full:
//! `try_send`, which the scheduler used to send them with, loses them there.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use panoptes_actors::control::{deliver, DeliveryError, TRIES, TRY_TIMEOUT};

/// Like a decoder on a saturated thread: a one-message mailbox and handlers that block the thread.
struct Busy {
    rate: Arc<AtomicU32>,
}

impl Actor for Busy {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Work(Duration);

impl Handler<Work> for Busy {
    type Result = ();
    fn handle(&mut self, Work(d): Work, _: &mut Self::Context) {
        std::thread::sleep(d);
    }
}

#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
struct SetRate(u32);

impl Handler<SetRate> for Busy {
    type Result = ();
    fn handle(&mut self, SetRate(r): SetRate, _: &mut Self::Context) {
        self.rate.store(r, Ordering::SeqCst);
    }
}

#[actix_web::test]
async fn a_control_message_reaches_an_actor_whose_mailbox_is_full() {
    let arbiter = Arbiter::new();
    let rate = Arc::new(AtomicU32::new(5));
    let r = rate.clone();
    let busy = Busy::start_in_arbiter(&arbiter.handle(), move |_| Busy { rate: r });
    // One message being handled (1.5 s of work), one waiting: the mailbox is full.
    busy.try_send(Work(Duration::from_millis(1500))).unwrap();
    actix::clock::sleep(Duration::from_millis(100)).await;
    busy.try_send(Work(Duration::from_millis(10))).unwrap();
    assert!(busy.try_send(SetRate(2)).is_err(), "the old way: the rate change is lost");
    assert_eq!(rate.load(Ordering::SeqCst), 5);

    deliver(&busy, SetRate(2), "set_analysis_fps", 1).await.expect("delivered once there is room");
    assert_eq!(rate.load(Ordering::SeqCst), 2);
    arbiter.stop();
}

#[actix_web::test]
async fn an_actor_stalled_past_every_try_is_reported_and_a_stopped_one_is_told_apart() {
    let arbiter = Arbiter::new();
    let rate = Arc::new(AtomicU32::new(5));
    let r = rate.clone();
    let busy = Busy::start_in_arbiter(&arbiter.handle(), move |_| Busy { rate: r });
    let stall = TRY_TIMEOUT * (TRIES + 1);
    busy.try_send(Work(stall)).unwrap();
    actix::clock::sleep(Duration::from_millis(100)).await;
    busy.try_send(Work(Duration::from_millis(10))).unwrap();
    assert_eq!(deliver(&busy, SetRate(2), "set_analysis_fps", 1).await, Err(DeliveryError::TimedOut));
    arbiter.stop();
    let _ = arbiter.join();
    assert_eq!(deliver(&busy, SetRate(3), "set_analysis_fps", 1).await, Err(DeliveryError::Stopped));
}
