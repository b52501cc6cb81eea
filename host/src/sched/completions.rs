//! Where finished tasks announce themselves to whoever gathers them (a map,
//! `as_completed`): a list of tags and a condition variable that wakes the
//! gatherer once for a batch of completions rather than once per task.
//!
//! With tasks of a few microseconds, waking a sleeping thread per task
//! (a futex wake and wait, on both sides) cost more than the task itself.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a gatherer that already has a completion waits for more.
const LINGER: Duration = Duration::from_millis(1);

/// Where completions are announced: the list and the tag to push.
pub(crate) type Listener = (Arc<Completions>, usize);

pub(crate) struct Completions {
    ready: Mutex<Ready>,
    arrived: Condvar,
    /// How many ready tags are worth waking the gatherer for.
    wanted: AtomicUsize,
}

#[derive(Default)]
struct Ready {
    tags: Vec<usize>,
    /// Something besides a completion wants the gatherer awake (an input
    /// came): the next gather returns at once, perhaps with no tag.
    poked: bool,
}

impl Completions {
    pub(crate) fn new() -> Arc<Completions> {
        Arc::new(Completions {
            ready: Mutex::default(),
            arrived: Condvar::new(),
            wanted: AtomicUsize::new(1),
        })
    }

    /// Announces that the task tagged `tag` finished.
    pub(crate) fn push(&self, tag: usize) {
        let mut ready = self.lock();
        ready.tags.push(tag);
        if ready.tags.len() >= self.wanted.load(Ordering::Relaxed) {
            self.arrived.notify_one();
        }
    }

    /// Wakes the gatherer without a completion: its gather returns what is
    /// ready, perhaps nothing.
    pub(crate) fn poke(&self) {
        self.lock().poked = true;
        self.arrived.notify_one();
    }

    /// Moves finished tags into `into`: waits until at least one is ready
    /// (or `deadline` passes: then returns false), and then up to
    /// [`LINGER`] more (never past `deadline`) until `batch` are. `batch` must not exceed the number
    /// of tasks still to announce, or the wait would only end by lingering.
    /// A [`poke`](Completions::poke) ends the wait at once, with or without
    /// tags (returning true).
    pub(crate) fn gather(
        &self,
        batch: usize,
        deadline: Option<Instant>,
        into: &mut VecDeque<usize>,
    ) -> bool {
        let batch = batch.max(1);
        let mut ready = self.lock();
        self.wanted.store(batch, Ordering::Relaxed);
        let mut lingering_until = None;
        while ready.tags.len() < batch && !ready.poked {
            let now = Instant::now();
            let until = match (ready.tags.is_empty(), lingering_until) {
                (false, None) => {
                    let until = deadline.map_or(now + LINGER, |d| d.min(now + LINGER));
                    lingering_until = Some(until);
                    Some(until)
                }
                (false, Some(until)) if now >= until => break,
                (false, Some(until)) => Some(until),
                // Nothing yet, for one: every completion wakes it (a
                // gatherer waiting for an input to come sleeps until it
                // does, not in ticks).
                (true, _) if batch == 1 => deadline,
                // Nothing yet: a batch wake comes, or the linger tick shows
                // what arrived meanwhile.
                (true, _) => Some(deadline.map_or(now + LINGER, |d| d.min(now + LINGER))),
            };
            if ready.tags.is_empty() && deadline.is_some_and(|deadline| now >= deadline) {
                return false;
            }
            ready = match until {
                Some(until) => {
                    self.arrived
                        .wait_timeout(ready, until.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .arrived
                    .wait(ready)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
        ready.poked = false;
        into.extend(ready.tags.drain(..));
        true
    }

    fn lock(&self) -> MutexGuard<'_, Ready> {
        crate::data::lock(&self.ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_what_is_ready_and_times_out_on_nothing() {
        let completions = Completions::new();
        let mut into = VecDeque::new();
        let soon = Instant::now() + Duration::from_millis(5);
        assert!(!completions.gather(1, Some(soon), &mut into));
        completions.push(3);
        completions.push(1);
        assert!(completions.gather(8, None, &mut into));
        assert_eq!(into, [3, 1]);
    }

    #[test]
    fn a_poke_ends_a_wait_without_a_completion() {
        let completions = Completions::new();
        let poker = Arc::clone(&completions);
        let thread = std::thread::spawn(move || poker.poke());
        let mut into = VecDeque::new();
        // Without a deadline, only the poke can end this wait.
        assert!(completions.gather(1, None, &mut into));
        assert!(into.is_empty());
        thread.join().unwrap();
        // Seen once: the next gather waits for a completion again.
        let soon = Instant::now() + Duration::from_millis(5);
        assert!(!completions.gather(1, Some(soon), &mut into));
    }

    #[test]
    fn a_batch_wakes_a_waiting_gatherer() {
        let completions = Completions::new();
        let producer = Arc::clone(&completions);
        let thread = std::thread::spawn(move || {
            for tag in 0..4 {
                producer.push(tag);
            }
        });
        let mut into = VecDeque::new();
        while into.len() < 4 {
            assert!(completions.gather(4 - into.len(), None, &mut into));
        }
        thread.join().unwrap();
        assert_eq!(into, [0, 1, 2, 3]);
    }
}
