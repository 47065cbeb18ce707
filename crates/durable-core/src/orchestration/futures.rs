//! The futures orchestrator code awaits, and the `when_all` / `when_any` combinators.
//!
//! The executor polls the orchestrator after every history event that completes something, so at each poll the
//! completed set is exactly "everything up to this point in history". `when_any` additionally compares the
//! history position of its ready children, so the winner is the earliest in history even when several children
//! were already complete by the time the combinator was first polled.

use std::cell::{Cell as StdCell, RefCell};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;

use super::state::{Handle, OrchState, Outcome};
use crate::errors::{TaskError, TaskKind};

thread_local! {
    /// The latest history position consumed by the futures polled since the last reset (see `when_any`).
    static CONSUMED_ORDER: StdCell<u64> = const { StdCell::new(0) };
}

fn note_consumed(order: u64) {
    CONSUMED_ORDER.with(|c| c.set(c.get().max(order)));
}

/// Decodes a JSON result text (absent or empty means `null`).
pub(crate) fn decode_json<T: DeserializeOwned>(text: Option<&str>) -> Result<T, serde_json::Error> {
    match text {
        Some(t) if !t.is_empty() => serde_json::from_str(t),
        _ => serde_json::from_str("null"),
    }
}

enum Source<T> {
    Cell {
        state: Rc<RefCell<OrchState>>,
        handle: Handle,
        kind: TaskKind,
        name: String,
    },
    Ready(Option<Result<T, TaskError>>),
}

/// A durable task: an activity, sub-orchestration, timer, external event or entity call.
///
/// The work is scheduled when the future is created (that is what fixes its sequence number), not when it is
/// first polled. Dropping it without awaiting does not cancel anything.
#[must_use = "the task is scheduled either way, but its result is lost unless awaited"]
pub struct DurableFuture<T> {
    source: Source<T>,
    _marker: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for DurableFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Cell { kind, name, .. } => f
                .debug_struct("DurableFuture")
                .field("kind", kind)
                .field("name", name)
                .finish(),
            Source::Ready(_) => f
                .debug_struct("DurableFuture")
                .field("ready", &true)
                .finish(),
        }
    }
}

// No pinned projections: the future only holds an Rc and plain data.
impl<T> Unpin for DurableFuture<T> {}

impl<T> DurableFuture<T> {
    pub(crate) fn from_cell(
        state: Rc<RefCell<OrchState>>,
        handle: Handle,
        kind: TaskKind,
        name: impl Into<String>,
    ) -> Self {
        Self {
            source: Source::Cell {
                state,
                handle,
                kind,
                name: name.into(),
            },
            _marker: PhantomData,
        }
    }

    pub(crate) fn ready(result: Result<T, TaskError>) -> Self {
        Self {
            source: Source::Ready(Some(result)),
            _marker: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Future for DurableFuture<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.source {
            Source::Ready(result) => match result.take() {
                Some(result) => Poll::Ready(result),
                None => Poll::Pending,
            },
            Source::Cell {
                state,
                handle,
                kind,
                name,
            } => {
                let (outcome, order) = {
                    let mut st = state.borrow_mut();
                    let Some(cell) = st.cells.get_mut(*handle) else {
                        return Poll::Pending;
                    };
                    match cell.outcome.take() {
                        Some(outcome) => (outcome, cell.order),
                        None => return Poll::Pending,
                    }
                };
                note_consumed(order);
                Poll::Ready(match outcome {
                    Outcome::Value(text) => {
                        decode_json(text.as_deref()).map_err(|e| TaskError::Decode {
                            kind: *kind,
                            name: name.clone(),
                            message: e.to_string(),
                        })
                    }
                    Outcome::Failed(error) => Err(error),
                    Outcome::Locked => Err(TaskError::InvalidOperation(
                        "a lock grant cannot be read as a value".into(),
                    )),
                })
            }
        }
    }
}

/// Polls a cell-backed lock future; shared with the entity lock future.
pub(crate) fn poll_cell(state: &Rc<RefCell<OrchState>>, handle: Handle) -> Option<Outcome> {
    let mut st = state.borrow_mut();
    let cell = st.cells.get_mut(handle)?;
    let outcome = cell.outcome.take()?;
    let order = cell.order;
    drop(st);
    note_consumed(order);
    Some(outcome)
}

/// A boxed, non-`Send` future, the shape of composite durable tasks (e.g. calls with retry).
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Waits for all futures; the outputs keep the input order.
pub fn when_all<F>(futures: impl IntoIterator<Item = F>) -> WhenAll<F>
where
    F: Future,
{
    WhenAll {
        slots: futures
            .into_iter()
            .map(|f| Slot::Pending(Box::pin(f)))
            .collect(),
    }
}

enum Slot<F: Future> {
    Pending(Pin<Box<F>>),
    Done(Option<F::Output>),
}

/// Future of [`when_all`].
#[must_use = "futures do nothing unless awaited"]
pub struct WhenAll<F: Future> {
    slots: Vec<Slot<F>>,
}

impl<F: Future> std::fmt::Debug for WhenAll<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhenAll")
            .field("len", &self.slots.len())
            .finish()
    }
}

impl<F: Future> Unpin for WhenAll<F> {}

impl<F: Future> Future for WhenAll<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut all_done = true;
        for slot in &mut this.slots {
            if let Slot::Pending(fut) = slot {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(out) => *slot = Slot::Done(Some(out)),
                    Poll::Pending => all_done = false,
                }
            }
        }
        if !all_done {
            return Poll::Pending;
        }
        Poll::Ready(
            this.slots
                .iter_mut()
                .filter_map(|slot| match slot {
                    Slot::Done(out) => out.take(),
                    Slot::Pending(_) => None,
                })
                .collect(),
        )
    }
}

/// Waits for the first future to complete, in history order; resolves to its index and output.
///
/// The other futures are dropped (their tasks stay scheduled; nothing is cancelled). An empty set never completes.
pub fn when_any<F>(futures: impl IntoIterator<Item = F>) -> WhenAny<F>
where
    F: Future,
{
    WhenAny {
        futures: futures.into_iter().map(Box::pin).collect(),
    }
}

/// Future of [`when_any`].
#[must_use = "futures do nothing unless awaited"]
pub struct WhenAny<F: Future> {
    futures: Vec<Pin<Box<F>>>,
}

impl<F: Future> std::fmt::Debug for WhenAny<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhenAny")
            .field("len", &self.futures.len())
            .finish()
    }
}

impl<F: Future> Unpin for WhenAny<F> {}

impl<F: Future> Future for WhenAny<F> {
    type Output = (usize, F::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let outer = CONSUMED_ORDER.with(StdCell::get);
        let mut best: Option<(u64, usize, F::Output)> = None;
        for (index, fut) in this.futures.iter_mut().enumerate() {
            CONSUMED_ORDER.with(|c| c.set(0));
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                let order = CONSUMED_ORDER.with(StdCell::get);
                if best.as_ref().is_none_or(|(o, _, _)| order < *o) {
                    best = Some((order, index, out));
                }
            }
        }
        let consumed = best.as_ref().map_or(0, |(o, _, _)| *o);
        CONSUMED_ORDER.with(|c| c.set(outer.max(consumed)));
        match best {
            Some((_, index, out)) => {
                this.futures.clear();
                Poll::Ready((index, out))
            }
            None => Poll::Pending,
        }
    }
}
