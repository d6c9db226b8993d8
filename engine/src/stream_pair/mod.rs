//! A camera's two streams of one scene: the substream that decoding, the motion gate, detection and
//! tracking run on, and the main stream that faces are cropped from for recognition and snapshots.
//!
//! - [`check`]: whether two streams show the same view (aspect ratio, then the scene itself), from
//!   their first pictures; what a camera is refused for at add time and reports at run time.
//! - [`first_picture`]: a stream's first keyframe, decoded, for that check at add time.
//! - [`placement`]: where a face tracked in the substream lies in a main-stream picture taken at
//!   another moment (scale, and the track's position at that moment).

pub mod check;
pub mod first_picture;
pub mod placement;

pub use check::{check_pair, PairError, StreamScale};
pub use placement::{main_face, position_at};
