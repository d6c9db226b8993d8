//! A one-frame "latest wins" hand-off between a camera's decoder and the inference workers: putting a
//! frame replaces (and counts as dropped) any frame still waiting, so a slow consumer sees the newest
//! picture and memory stays at one frame per camera however far inference falls behind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub struct LatestSlot<T> {
    slot: Mutex<Option<T>>,
    dropped: AtomicU64,
}

impl<T> Default for LatestSlot<T> {
    fn default() -> Self {
        Self { slot: Mutex::new(None), dropped: AtomicU64::new(0) }
    }
}

impl<T> LatestSlot<T> {
    /// Stores `value`; returns true when the slot was empty (the consumer needs a wake-up).
    pub fn put(&self, value: T) -> bool {
        let old = self.slot.lock().unwrap_or_else(|p| p.into_inner()).replace(value);
        if old.is_some() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        old.is_none()
    }

    pub fn take(&self) -> Option<T> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Frames replaced before anyone took them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_value_wins_and_replacements_are_counted() {
        let s = LatestSlot::default();
        assert!(s.put(1));
        assert!(!s.put(2));
        assert!(!s.put(3));
        assert_eq!(s.dropped(), 2);
        assert_eq!(s.take(), Some(3));
        assert_eq!(s.take(), None);
        assert!(s.put(4));
    }
}
