//! The bounded queue that carries the hub's frames to one connection.
//!
//! A tokio `mpsc` channel allocates a block of 32 slots (about 1.3 KiB of
//! [`Outbound`](super::Outbound)s) and a cache-padded channel (0.5 KiB) when
//! it is created, which an idle connection pays for without ever using it.
//! This queue is a `VecDeque` under a mutex: nothing is allocated until the
//! first frame, and the whole queue is about 150 bytes.
//!
//! It has exactly one sender (the hub) and one receiver (the connection).
//! The lock is held only to push, pop or swap a waker, never across an
//! `.await`.
//!
//! # Bounds
//! The sender is refused — the hub then drops the connection, which tells
//! its client to resync — when the oldest item has waited longer than
//! [`Bounds::max_wait`], or when the items would hold more than
//! [`Bounds::max_bytes`]. Not a count of items: a burst the relay produces
//! itself (a thousand conversations opening within a second) queues
//! thousands of frames at once, which a client that reads takes in well
//! within the wait; a client that stops reading is still found out, by the
//! age of what waits for it.
//!
//! # Coalescing
//! An item may have a [key](Item::key). A keyed item supersedes the queued
//! item with the same key: that one is dropped, and the new one goes to the
//! back. What the receiver gets is therefore the sender's sequence with the
//! superseded items left out, in the sender's order; nothing unkeyed is ever
//! dropped or moved. At most one item per key waits, so a burst of N
//! updates to one key costs one item.
//!
//! A superseded item leaves a hole in the `VecDeque` (so that the others
//! keep their positions) until it reaches the front or the holes outnumber
//! the items, when they are squeezed out: the queue never holds more than
//! about twice its items.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::Instant;

/// What the queue needs to know of an item.
pub trait Item {
    /// Items with the same key supersede each other: only the latest waits.
    fn key(&self) -> Option<&Arc<str>>;
    /// The bytes the item holds, counted against [`Bounds::max_bytes`].
    fn bytes(&self) -> usize;
}

/// When the receiver counts as too slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// How long the oldest item may wait; `None`: as long as it takes (a
    /// long-poll session, whose items wait between polls by design).
    pub max_wait: Option<Duration>,
    /// What the queued items may hold, each counted as its bytes plus the
    /// queue's own cost per item. A single item above it is let in when
    /// nothing else waits.
    pub max_bytes: usize,
}

/// Why an item was not queued; the item is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The oldest queued item has waited this long, past the bound.
    Waited(Duration),
    /// The queue would hold this many bytes, past the bound.
    Bytes(usize),
    /// The receiver is gone.
    Closed,
}

/// The sending half; dropping it closes the queue.
#[derive(Debug)]
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half; dropping it closes the queue and frees what waits.
#[derive(Debug)]
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    bounds: Bounds,
}

#[derive(Debug)]
struct Slot<T> {
    /// `None` once a newer item with the same key superseded it.
    item: Option<T>,
    queued_at: Instant,
}

#[derive(Debug)]
struct State<T> {
    /// Oldest first. Never starts with a superseded slot, so the front is
    /// the oldest item.
    slots: VecDeque<Slot<T>>,
    /// The position of `slots[0]`, counted from the queue's first item.
    head: u64,
    /// The position of the queued item of each key. Boxed and made with the
    /// first keyed item: most connections (visitors) never get one.
    #[expect(
        clippy::box_collection,
        reason = "8 bytes in every idle connection's queue instead of a 48-byte empty map"
    )]
    keyed: Option<Box<HashMap<Arc<str>, u64>>>,
    /// Slots holding an item.
    items: usize,
    /// What the items hold, as counted by [`weight`].
    bytes: usize,
    /// The receiver waiting for an item, woken by a push or a close.
    waiting: Option<Waker>,
    /// Either half was dropped.
    closed: bool,
}

/// Holes squeezed out only past this many, so that a short queue is not
/// rebuilt for every superseded item.
const HOLES_KEPT: usize = 64;

/// An item's bytes plus what its slot costs.
fn weight<T: Item>(item: &T) -> usize {
    item.bytes() + size_of::<Slot<T>>()
}

/// A queue bounded by `bounds`.
pub fn channel<T>(bounds: Bounds) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            slots: VecDeque::new(),
            head: 0,
            keyed: None,
            items: 0,
            bytes: 0,
            waiting: None,
            closed: false,
        }),
        bounds,
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Shared<T> {
    /// A panic while holding the lock cannot leave the state inconsistent
    /// (the bookkeeping of a push or pop is done before anything that could
    /// panic), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self) -> Option<Waker> {
        let mut state = self.lock();
        state.closed = true;
        state.waiting.take()
    }
}

impl<T: Item> State<T> {
    /// The slot index of the queued item with `key`, if one waits.
    fn index_of(&self, key: &str) -> Option<usize> {
        let position = *self.keyed.as_ref()?.get(key)?;
        usize::try_from(position - self.head).ok()
    }

    /// Drops the item in slot `index`, leaving a hole.
    fn supersede(&mut self, index: usize) {
        if let Some(item) = self.slots[index].item.take() {
            self.items -= 1;
            self.bytes -= weight(&item);
        }
        self.drop_leading_holes();
    }

    fn push(&mut self, item: T, now: Instant) {
        if let Some(key) = item.key() {
            let position = self.head + self.slots.len() as u64;
            (self.keyed.get_or_insert_default()).insert(key.clone(), position);
        }
        self.items += 1;
        self.bytes += weight(&item);
        self.slots.push_back(Slot {
            item: Some(item),
            queued_at: now,
        });
        if self.slots.len() > 2 * self.items + HOLES_KEPT {
            self.squeeze();
        }
    }

    fn pop(&mut self) -> Option<T> {
        let item = self.slots.pop_front()?.item;
        self.head += 1;
        if let Some(item) = &item {
            self.items -= 1;
            self.bytes -= weight(item);
            if let (Some(key), Some(keyed)) = (item.key(), &mut self.keyed) {
                keyed.remove(key);
            }
        }
        self.drop_leading_holes();
        item
    }

    fn drop_leading_holes(&mut self) {
        while self.slots.front().is_some_and(|slot| slot.item.is_none()) {
            self.slots.pop_front();
            self.head += 1;
        }
    }

    /// Removes every hole, renumbering the keyed items.
    fn squeeze(&mut self) {
        self.slots.retain(|slot| slot.item.is_some());
        if let Some(keyed) = &mut self.keyed {
            for (index, slot) in self.slots.iter().enumerate() {
                if let Some(key) = slot.item.as_ref().and_then(Item::key)
                    && let Some(position) = keyed.get_mut(key)
                {
                    *position = self.head + index as u64;
                }
            }
        }
    }
}

impl<T: Item> Sender<T> {
    /// Queues `item` at `now` without waiting, superseding the queued item
    /// with its key. Refused when the receiver is too slow (see [`Bounds`])
    /// or gone.
    pub fn try_send(&self, item: T, now: Instant) -> Result<(), Refused> {
        let bounds = self.shared.bounds;
        let mut state = self.shared.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        if let (Some(max_wait), Some(oldest)) = (bounds.max_wait, state.slots.front()) {
            let waited = now.saturating_duration_since(oldest.queued_at);
            if waited > max_wait {
                return Err(Refused::Waited(waited));
            }
        }
        let superseded = item.key().and_then(|key| state.index_of(key));
        let freed = superseded
            .and_then(|index| state.slots[index].item.as_ref())
            .map_or(0, weight);
        let others = state.items - usize::from(superseded.is_some());
        let bytes = state.bytes - freed + weight(&item);
        if others > 0 && bytes > bounds.max_bytes {
            return Err(Refused::Bytes(bytes));
        }
        if let Some(index) = superseded {
            state.supersede(index);
        }
        state.push(item, now);
        let waiting = state.waiting.take();
        drop(state);
        if let Some(waker) = waiting {
            waker.wake();
        }
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(waker) = self.shared.close() {
            waker.wake();
        }
    }
}

impl<T: Item> Receiver<T> {
    /// The next item; `None` once the sender is gone and every item sent
    /// before was received. Cancel safe: an item is only taken when this
    /// resolves.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next item if one waits now: `Empty` if none does, `Disconnected`
    /// once the sender is gone and none is left.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.shared.lock();
        match state.pop() {
            Some(item) => Ok(item),
            None if state.closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.shared.lock();
        if let Some(item) = state.pop() {
            return Poll::Ready(Some(item));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        match &mut state.waiting {
            Some(waker) => waker.clone_from(cx.waker()),
            waiting => *waiting = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.close();
        // Frames nobody will read are freed now, not when the hub lets go.
        let (slots, keyed) = {
            let mut state = self.shared.lock();
            state.items = 0;
            state.bytes = 0;
            (std::mem::take(&mut state.slots), state.keyed.take())
        };
        drop((slots, keyed));
    }
}

#[cfg(test)]
mod tests;
