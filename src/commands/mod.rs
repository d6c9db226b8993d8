pub mod bench;
pub mod enroll;
pub mod eval;
pub mod eval_video;
pub mod identify;
pub mod persons;
pub mod serve;
