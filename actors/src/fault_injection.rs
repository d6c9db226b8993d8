//! Forced faults for the test suite (feature `fault-injection`): the actor that receives
//! `InjectPanic` panics inside its next unit of work, where a real decoder or ONNX Runtime panic would
//! arise, so the tests exercise the same recovery path.

use actix::prelude::*;

/// Panic inside the next decode (decoder) or batch (inference worker).
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

/// The panic itself; its message names the injection so logs are not mistaken for a real fault.
pub fn panic_now(what: &str) -> ! {
    panic!("fault injection: forced panic inside {what}")
}
