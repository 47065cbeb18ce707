//! Awaits a set of futures of one type together, keeping their order: the engine depends on no async runtime, so
//! the few lines are written here rather than taken from a crate.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub(super) struct JoinAll<F: Future> {
    pending: Vec<Option<Pin<Box<F>>>>,
    outputs: Vec<Option<F::Output>>,
}

impl<F: Future> JoinAll<F> {
    pub(super) fn new(futures: Vec<F>) -> Self {
        let outputs = futures.iter().map(|_| None).collect();
        Self {
            pending: futures.into_iter().map(|f| Some(Box::pin(f))).collect(),
            outputs,
        }
    }
}

// Nothing is pinned in place: the futures are boxed and the outputs are moved out only once ready.
impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        for (slot, output) in this.pending.iter_mut().zip(this.outputs.iter_mut()) {
            if let Some(future) = slot
                && let Poll::Ready(value) = future.as_mut().poll(cx)
            {
                *output = Some(value);
                *slot = None;
            }
        }
        if this.pending.iter().any(Option::is_some) {
            return Poll::Pending;
        }
        Poll::Ready(this.outputs.iter_mut().filter_map(Option::take).collect())
    }
}
