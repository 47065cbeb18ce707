//! Collects what the operations of the current commit group touched, so the writer can publish it after commit.

use std::cell::RefCell;

use crate::store::Changes;

thread_local! {
    // Only the writer thread runs operations, so a thread-local is the group's own scratch space.
    static PENDING: RefCell<Changes> = RefCell::new(Changes::default());
}

pub(super) fn note_work(hub: &str) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if !p.work.contains(hub) {
            p.work.insert(hub.to_owned());
        }
    });
}

pub(super) fn note_instance(hub: &str, id: &str) {
    PENDING.with(|p| {
        p.borrow_mut()
            .instances
            .insert((hub.to_owned(), id.to_owned()));
    });
}

pub(super) fn take() -> Changes {
    PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()))
}
