//! Where a map's inputs come from: read on the map's thread as it needs
//! them, or on a thread of their own that hands them over as they come,
//! so that an input that keeps the reader waiting (a pipe, a socket, a
//! person) never keeps a finished result from being handed out.

use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};

use crate::sched::completions::Completions;

pub(crate) enum Source<I: Iterator> {
    /// Read on the map's thread, each when it is wanted.
    Here(I),
    /// Read on a thread of their own ([`Source::read_in_background`]).
    Background(Arrivals<I::Item>),
}

pub(crate) struct Arrivals<T> {
    incoming: Receiver<T>,
    /// Inputs sent and not yet taken (below zero for a moment, when the
    /// map takes one before its thread counts it): the thread pokes the
    /// map only for an input that finds none waiting, so a fast pipe
    /// costs no wake-up per input.
    waiting: Arc<AtomicIsize>,
    ended: bool,
}

impl<I: Iterator> Source<I> {
    /// The next input, if one is at hand: an input read here always is,
    /// while there are any. `None` when there is none for now: whether
    /// more can come, [`Source::may_come`] says.
    pub(crate) fn fetch(&mut self) -> Option<I::Item> {
        match self {
            Source::Here(inputs) => inputs.next(),
            Source::Background(arrivals) if arrivals.ended => None,
            Source::Background(arrivals) => match arrivals.incoming.try_recv() {
                Ok(input) => {
                    arrivals.waiting.fetch_sub(1, Ordering::SeqCst);
                    Some(input)
                }
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => {
                    arrivals.ended = true;
                    None
                }
            },
        }
    }

    /// Whether an input may still come that is not at hand now: inputs
    /// read in the background that have not ended. Their thread pokes the
    /// map's completions as each comes, and when they end.
    pub(crate) fn may_come(&self) -> bool {
        matches!(self, Source::Background(arrivals) if !arrivals.ended)
    }

    /// Bounds on the inputs still to come, as an iterator's size hint.
    pub(crate) fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Source::Here(inputs) => inputs.size_hint(),
            Source::Background(arrivals) => (0, arrivals.ended.then_some(0)),
        }
    }
}

impl<I> Source<I>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    /// Moves the reading to a thread of its own, which reads up to
    /// `ahead` inputs before the map takes them and announces to
    /// `completions` each that finds none waiting, so that a map waiting
    /// for a task to finish wakes for an input too. The thread ends with the inputs, or at the first
    /// input read after the map is dropped.
    pub(crate) fn read_in_background(
        &mut self,
        ahead: usize,
        completions: &Arc<Completions>,
    ) -> std::io::Result<()> {
        let (sender, incoming) = mpsc::sync_channel(ahead.max(1));
        let waiting = Arc::new(AtomicIsize::new(0));
        let placeholder = Source::Background(Arrivals {
            incoming,
            waiting: Arc::clone(&waiting),
            ended: false,
        });
        let Source::Here(inputs) = std::mem::replace(self, placeholder) else {
            return Ok(());
        };
        let completions = Arc::clone(completions);
        let started = std::thread::Builder::new()
            .name("wasmpool-inputs".into())
            .spawn(move || {
                for input in inputs {
                    if sender.send(input).is_err() {
                        return;
                    }
                    // An input that finds others waiting finds the map
                    // poked already, or busy: it takes them all when it
                    // next fills.
                    if waiting.fetch_add(1, Ordering::SeqCst) == 0 {
                        completions.poke();
                    }
                }
                drop(sender);
                completions.poke();
            });
        started.map(drop)
    }
}
