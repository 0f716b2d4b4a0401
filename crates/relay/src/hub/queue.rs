//! The bounded queue that carries the hub's frames to one connection.
//!
//! A tokio `mpsc` channel allocates a block of 32 slots (about 1.3 KiB of
//! [`Outbound`](super::Outbound)s) and a cache-padded channel (0.5 KiB) when
//! it is created, which an idle connection pays for without ever using it.
//! This queue is a `VecDeque` under a mutex: nothing is allocated until the
//! first frame, and the whole queue is about 100 bytes.
//!
//! It has exactly one sender (the hub) and one receiver (the connection).
//! The lock is held only to push, pop or swap a waker, never across an
//! `.await`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

// The same errors as tokio's `mpsc` channel, which this queue replaces: the
// hub and the connections handle them as before.
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};

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
    capacity: usize,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// The receiver waiting for an item, woken by a push or a close.
    waiting: Option<Waker>,
    /// Either half was dropped.
    closed: bool,
}

/// A queue that holds at most `capacity` items.
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            waiting: None,
            closed: false,
        }),
        capacity,
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
    /// (every change is a single push, pop or assignment), so poisoning is
    /// ignored.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self) -> Option<Waker> {
        let mut state = self.lock();
        state.closed = true;
        state.waiting.take()
    }
}

impl<T> Sender<T> {
    /// Queues `item` without waiting: `Full` when `capacity` items wait
    /// already, `Closed` once the receiver is gone. Either way the item is
    /// handed back.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let mut state = self.shared.lock();
        if state.closed {
            return Err(TrySendError::Closed(item));
        }
        if state.items.len() >= self.shared.capacity {
            return Err(TrySendError::Full(item));
        }
        state.items.push_back(item);
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

impl<T> Receiver<T> {
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
        match state.items.pop_front() {
            Some(item) => Ok(item),
            None if state.closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.shared.lock();
        if let Some(item) = state.items.pop_front() {
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
        let items = std::mem::take(&mut self.shared.lock().items);
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    /// Counts how often the receiver was woken.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Wakes {
        fn count(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn poll<T>(receiver: &mut Receiver<T>, wakes: &Arc<Wakes>) -> Poll<Option<T>> {
        let waker = Waker::from(wakes.clone());
        receiver.poll_recv(&mut Context::from_waker(&waker))
    }

    #[test]
    fn holds_at_most_its_capacity_in_order() {
        let (sender, mut receiver) = channel(2);
        sender.try_send(1).expect("first");
        sender.try_send(2).expect("second");
        assert!(matches!(sender.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(receiver.try_recv(), Ok(1));
        sender.try_send(3).expect("room again after a receive");
        assert_eq!(receiver.try_recv(), Ok(2));
        assert_eq!(receiver.try_recv(), Ok(3));
        assert_eq!(receiver.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn allocates_nothing_until_the_first_item() {
        let (sender, receiver) = channel::<u32>(512);
        assert_eq!(receiver.shared.lock().items.capacity(), 0);
        sender.try_send(1).expect("send");
        assert!(receiver.shared.lock().items.capacity() < 512);
    }

    #[test]
    fn a_send_wakes_the_waiting_receiver() {
        let (sender, mut receiver) = channel(4);
        let wakes = Arc::new(Wakes::default());
        assert_eq!(poll(&mut receiver, &wakes), Poll::Pending);
        assert_eq!(wakes.count(), 0);
        sender.try_send(7).expect("send");
        assert_eq!(wakes.count(), 1, "woken by the send");
        assert_eq!(poll(&mut receiver, &wakes), Poll::Ready(Some(7)));
        // Nobody waits now: a send wakes nobody, and the item waits.
        sender.try_send(8).expect("send");
        assert_eq!(wakes.count(), 1);
        assert_eq!(poll(&mut receiver, &wakes), Poll::Ready(Some(8)));
    }

    #[test]
    fn a_dropped_sender_wakes_the_receiver_which_gets_the_rest_then_none() {
        let (sender, mut receiver) = channel::<u32>(4);
        let wakes = Arc::new(Wakes::default());
        assert_eq!(poll(&mut receiver, &wakes), Poll::Pending);
        drop(sender);
        assert_eq!(wakes.count(), 1, "woken by the close");
        assert_eq!(poll(&mut receiver, &wakes), Poll::Ready(None));

        let (sender, mut receiver) = channel(4);
        sender.try_send(1).expect("send");
        drop(sender);
        assert_eq!(poll(&mut receiver, &wakes), Poll::Ready(Some(1)));
        assert_eq!(poll(&mut receiver, &wakes), Poll::Ready(None));
        assert_eq!(receiver.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn sending_to_a_dropped_receiver_is_closed() {
        let (sender, receiver) = channel(4);
        sender.try_send(1).expect("send");
        drop(receiver);
        assert!(matches!(sender.try_send(2), Err(TrySendError::Closed(2))));
        assert_eq!(sender.shared.lock().items.len(), 0, "queued items freed");
    }

    #[tokio::test]
    async fn recv_waits_for_a_send_from_another_task() {
        let (sender, mut receiver) = channel(4);
        let received = tokio::spawn(async move { receiver.recv().await });
        tokio::task::yield_now().await;
        sender.try_send("frame").expect("send");
        assert_eq!(received.await.expect("receiver task"), Some("frame"));
    }
}
