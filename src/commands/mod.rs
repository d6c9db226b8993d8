pub mod bench;
pub mod enroll;
pub mod identify;
pub mod persons;
pub mod serve;
