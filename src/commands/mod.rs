pub mod bench;
pub mod enroll;
pub mod eval;
pub mod identify;
pub mod keys;
pub mod persons;
pub mod serve;
