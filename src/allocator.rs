//! The C allocator's arenas. glibc gives a thread that meets contention an arena of its own, up to
//! eight per core, and memory freed into one arena is not reused by another. Frames are allocated on
//! decoder threads and freed on inference threads, ONNX Runtime and FFmpeg allocate on theirs, so
//! with many arenas freed memory is stranded and the process grows: `panoptes serve` with 16 cameras
//! held 662 MB with glibc's default and 504 MB with two arenas, at the same CPU (BENCHMARKS.md).
//! `MALLOC_ARENA_MAX` in the environment still decides when it is set.

/// Arenas when the environment does not say.
const ARENAS: i32 = 2;

/// Limits glibc's arenas. Call first thing in `main`, before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt sets one allocator parameter; no other thread exists yet to race with it.
        // It returns 0 when the value is refused, which leaves glibc's default: nothing to handle.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}
