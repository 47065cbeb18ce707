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
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

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
/// first polled. Dropping it without awaiting does not cancel anything: an activity still runs, and an external
/// event wait (for example the loser of a `when_any`) still takes the next event of that name, as in the other
/// Durable Task SDKs.
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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
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
                let Some(outcome) = poll_cell(state, *handle, cx) else {
                    return Poll::Pending;
                };
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

/// Takes a cell's outcome, or registers the waker to be woken when it arrives.
pub(crate) fn poll_cell(
    state: &Rc<RefCell<OrchState>>,
    handle: Handle,
    cx: &Context<'_>,
) -> Option<Outcome> {
    let mut st = state.borrow_mut();
    let cell = st.cells.get_mut(handle)?;
    match cell.outcome.take() {
        Some(outcome) => {
            let order = cell.order;
            drop(st);
            note_consumed(order);
            Some(outcome)
        }
        None => {
            if !cell.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                cell.waker = Some(cx.waker().clone());
            }
            None
        }
    }
}

/// Which children of a combinator were woken since its last poll. The engine polls the orchestration after every
/// completing event; without this, a `when_all` over N tasks would re-poll all N children each time (quadratic).
struct WakeSet {
    woken: Mutex<Vec<usize>>,
    parent: Mutex<Option<Waker>>,
}

struct ChildWaker {
    set: Arc<WakeSet>,
    index: usize,
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        lock(&self.set.woken).push(self.index);
        if let Some(parent) = lock(&self.set.parent).as_ref() {
            parent.wake_by_ref();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Per-child wakers plus the bookkeeping to poll only woken children.
struct Children {
    set: Arc<WakeSet>,
    wakers: Vec<Waker>,
    first: bool,
    scratch: Vec<usize>,
}

impl Children {
    fn new(n: usize) -> Self {
        let set = Arc::new(WakeSet {
            woken: Mutex::new(Vec::new()),
            parent: Mutex::new(None),
        });
        let wakers = (0..n)
            .map(|index| {
                Waker::from(Arc::new(ChildWaker {
                    set: set.clone(),
                    index,
                }))
            })
            .collect();
        Self {
            set,
            wakers,
            first: true,
            scratch: Vec::new(),
        }
    }

    /// The children to poll now: all of them the first time, then the woken ones.
    fn due(&mut self, parent: &Waker) -> Vec<usize> {
        {
            let mut slot = lock(&self.set.parent);
            if !slot.as_ref().is_some_and(|w| w.will_wake(parent)) {
                *slot = Some(parent.clone());
            }
        }
        if self.first {
            self.first = false;
            lock(&self.set.woken).clear();
            return (0..self.wakers.len()).collect();
        }
        let mut due = std::mem::take(&mut self.scratch);
        due.clear();
        std::mem::swap(&mut due, &mut *lock(&self.set.woken));
        due.sort_unstable();
        due.dedup();
        due
    }

    fn recycle(&mut self, buffer: Vec<usize>) {
        self.scratch = buffer;
    }
}

/// A boxed, non-`Send` future, the shape of composite durable tasks (e.g. calls with retry).
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Waits for all futures; the outputs keep the input order.
pub fn when_all<F>(futures: impl IntoIterator<Item = F>) -> WhenAll<F>
where
    F: Future,
{
    let slots: Vec<Slot<F>> = futures
        .into_iter()
        .map(|f| Slot::Pending(Box::pin(f)))
        .collect();
    WhenAll {
        remaining: slots.len(),
        children: Children::new(slots.len()),
        slots,
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
    children: Children,
    remaining: usize,
}

impl<F: Future> std::fmt::Debug for WhenAll<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhenAll")
            .field("len", &self.slots.len())
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl<F: Future> Unpin for WhenAll<F> {}

impl<F: Future> Future for WhenAll<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let due = this.children.due(cx.waker());
        for &index in &due {
            let Some(Slot::Pending(fut)) = this.slots.get_mut(index) else {
                continue;
            };
            let mut child_cx = Context::from_waker(&this.children.wakers[index]);
            if let Poll::Ready(out) = fut.as_mut().poll(&mut child_cx) {
                this.slots[index] = Slot::Done(Some(out));
                this.remaining -= 1;
            }
        }
        this.children.recycle(due);
        if this.remaining > 0 {
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
    let futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    WhenAny {
        children: Children::new(futures.len()),
        futures,
    }
}

/// Future of [`when_any`].
#[must_use = "futures do nothing unless awaited"]
pub struct WhenAny<F: Future> {
    futures: Vec<Pin<Box<F>>>,
    children: Children,
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
        let due = this.children.due(cx.waker());
        let mut best: Option<(u64, usize, F::Output)> = None;
        for &index in &due {
            let Some(fut) = this.futures.get_mut(index) else {
                continue;
            };
            CONSUMED_ORDER.with(|c| c.set(0));
            let mut child_cx = Context::from_waker(&this.children.wakers[index]);
            if let Poll::Ready(out) = fut.as_mut().poll(&mut child_cx) {
                let order = CONSUMED_ORDER.with(StdCell::get);
                if best.as_ref().is_none_or(|(o, _, _)| order < *o) {
                    best = Some((order, index, out));
                }
            }
        }
        this.children.recycle(due);
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
