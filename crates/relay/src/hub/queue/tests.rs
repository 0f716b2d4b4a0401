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

/// A frame of `bytes` bytes, a state snapshot of `key` if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Test {
    key: Option<Arc<str>>,
    value: u32,
    bytes: usize,
}

impl Item for Test {
    fn key(&self) -> Option<&Arc<str>> {
        self.key.as_ref()
    }

    fn bytes(&self) -> usize {
        self.bytes
    }
}

fn plain(value: u32) -> Test {
    Test {
        key: None,
        value,
        bytes: 10,
    }
}

fn keyed(key: &str, value: u32) -> Test {
    Test {
        key: Some(key.into()),
        value,
        bytes: 10,
    }
}

const ROOMY: Bounds = Bounds {
    max_wait: None,
    max_bytes: usize::MAX,
};

fn poll<T: Item>(receiver: &mut Receiver<T>, wakes: &Arc<Wakes>) -> Poll<Option<T>> {
    let waker = Waker::from(wakes.clone());
    receiver.poll_recv(&mut Context::from_waker(&waker))
}

fn values(receiver: &mut Receiver<Test>) -> Vec<u32> {
    std::iter::from_fn(|| receiver.try_recv().ok())
        .map(|item| item.value)
        .collect()
}

#[test]
fn items_come_out_in_order() {
    let (sender, mut receiver) = channel(ROOMY);
    let now = Instant::now();
    sender.try_send(plain(1), now).expect("first");
    sender.try_send(plain(2), now).expect("second");
    assert_eq!(receiver.try_recv().map(|t| t.value), Ok(1));
    sender.try_send(plain(3), now).expect("third");
    assert_eq!(values(&mut receiver), [2, 3]);
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn the_latest_keyed_item_wins_and_waits_behind_everything_sent_before_it() {
    let (sender, mut receiver) = channel(ROOMY);
    let now = Instant::now();
    // A conversation's message 1, its summary, message 2, its newer
    // summary: the older summary is dropped, the newer comes after both
    // messages, never before the message it counts.
    for item in [
        plain(1),
        keyed("k1", 10),
        keyed("k2", 20),
        plain(2),
        keyed("k1", 11),
        plain(3),
    ] {
        sender.try_send(item, now).expect("send");
    }
    assert_eq!(values(&mut receiver), [1, 20, 2, 11, 3]);

    // Once received, a key's next item is queued anew.
    sender.try_send(keyed("k1", 12), now).expect("send");
    assert_eq!(values(&mut receiver), [12]);
}

#[test]
fn a_burst_of_updates_to_one_key_holds_one_item() {
    let (sender, mut receiver) = channel(ROOMY);
    let now = Instant::now();
    for value in 0..10_000 {
        sender.try_send(keyed("k1", value), now).expect("send");
    }
    {
        let state = receiver.shared.lock();
        assert_eq!(state.items, 1);
        assert!(state.slots.len() <= 1 + HOLES_KEPT, "holes squeezed out");
    }
    // Holes behind an item that never leaves the front are squeezed too.
    sender.try_send(plain(1), now).expect("send");
    for value in 0..10_000 {
        sender.try_send(keyed("k2", value), now).expect("send");
    }
    let slots = receiver.shared.lock().slots.len();
    assert!(slots <= 2 * 3 + HOLES_KEPT, "{slots} slots for 3 items");
    assert_eq!(values(&mut receiver), [9_999, 1, 9_999]);
}

/// Random interleavings of sends and receives against a model: the items
/// received are the items sent, in order, minus each keyed item that a
/// newer one with its key replaced before it was received.
#[test]
fn received_is_sent_in_order_minus_superseded_keyed_items() {
    let mut seed: u64 = 0x5eed;
    let mut random = move |below: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) % below
    };
    for _ in 0..200 {
        let (sender, mut receiver) = channel(ROOMY);
        let now = Instant::now();
        let mut model: VecDeque<Test> = VecDeque::new();
        let mut received = Vec::new();
        let mut expected = Vec::new();
        for value in 0..300 {
            if random(3) == 0 {
                if let Ok(item) = receiver.try_recv() {
                    received.push(item);
                }
                expected.extend(model.pop_front());
            }
            let item = match random(3) {
                0 => plain(value),
                _ => keyed(["k1", "k2", "k3", "k4"][random(4) as usize], value),
            };
            if let Some(key) = &item.key {
                model.retain(|queued| queued.key.as_ref() != Some(key));
            }
            model.push_back(item.clone());
            sender.try_send(item, now).expect("send");
        }
        received.extend(std::iter::from_fn(|| receiver.try_recv().ok()));
        expected.extend(model);
        assert_eq!(received, expected);
        assert!(received.len() < 300, "some keyed items were superseded");
    }
}

#[test]
fn a_receiver_whose_oldest_item_waited_too_long_is_refused() {
    let bounds = Bounds {
        max_wait: Some(Duration::from_secs(5)),
        max_bytes: usize::MAX,
    };
    let (sender, mut receiver) = channel(bounds);
    let t0 = Instant::now();
    sender.try_send(plain(1), t0).expect("send");
    sender
        .try_send(plain(2), t0 + Duration::from_secs(5))
        .expect("waited exactly the bound");
    assert_eq!(
        sender.try_send(plain(3), t0 + Duration::from_secs(6)),
        Err(Refused::Waited(Duration::from_secs(6)))
    );
    // A receiver that reads is judged by what still waits.
    assert_eq!(receiver.try_recv().map(|t| t.value), Ok(1));
    sender
        .try_send(plain(3), t0 + Duration::from_secs(6))
        .expect("the oldest now waited 1 s");
    assert_eq!(values(&mut receiver), [2, 3]);
    sender
        .try_send(plain(4), t0 + Duration::from_secs(60))
        .expect("nothing waited");

    // No bound on the wait: a long-poll session between polls.
    let (sender, _receiver) = channel(ROOMY);
    sender.try_send(plain(1), t0).expect("send");
    sender
        .try_send(plain(2), t0 + Duration::from_secs(3600))
        .expect("no wait bound");
}

#[test]
fn a_receiver_with_too_many_bytes_waiting_is_refused() {
    let slot = size_of::<Slot<Test>>();
    let bounds = Bounds {
        max_wait: None,
        max_bytes: 3 * (10 + slot),
    };
    let (sender, mut receiver) = channel(bounds);
    let now = Instant::now();
    let big = Test {
        bytes: 1_000_000,
        ..plain(0)
    };
    sender.try_send(big, now).expect("alone, a big item passes");
    assert_eq!(
        sender.try_send(plain(1), now),
        Err(Refused::Bytes(1_000_000 + 10 + 2 * slot))
    );
    assert_eq!(values(&mut receiver), [0]);

    for value in 1..=3 {
        sender
            .try_send(plain(value), now)
            .expect("within the bound");
    }
    assert!(matches!(
        sender.try_send(plain(4), now),
        Err(Refused::Bytes(_))
    ));
    assert_eq!(receiver.try_recv().map(|t| t.value), Ok(1));
    sender.try_send(keyed("k1", 4), now).expect("room again");
    sender
        .try_send(keyed("k1", 5), now)
        .expect("superseding frees what it replaces");
    assert_eq!(values(&mut receiver), [2, 3, 5]);
    assert_eq!(receiver.shared.lock().bytes, 0);
}

#[test]
fn allocates_nothing_until_the_first_item() {
    let (sender, receiver) = channel::<Test>(ROOMY);
    {
        let state = receiver.shared.lock();
        assert_eq!(state.slots.capacity(), 0);
        assert!(state.keyed.is_none());
    }
    sender.try_send(plain(1), Instant::now()).expect("send");
    let state = receiver.shared.lock();
    assert!(state.slots.capacity() < 512);
    assert!(state.keyed.is_none(), "no keyed item yet");
}

#[test]
fn a_send_wakes_the_waiting_receiver() {
    let (sender, mut receiver) = channel(ROOMY);
    let wakes = Arc::new(Wakes::default());
    assert_eq!(poll(&mut receiver, &wakes), Poll::Pending);
    assert_eq!(wakes.count(), 0);
    sender.try_send(plain(7), Instant::now()).expect("send");
    assert_eq!(wakes.count(), 1, "woken by the send");
    assert_eq!(poll(&mut receiver, &wakes), Poll::Ready(Some(plain(7))));
    // Nobody waits now: a send wakes nobody, and the item waits.
    sender.try_send(plain(8), Instant::now()).expect("send");
    assert_eq!(wakes.count(), 1);
    assert_eq!(poll(&mut receiver, &wakes), Poll::Ready(Some(plain(8))));
}

#[test]
fn a_dropped_sender_wakes_the_receiver_which_gets_the_rest_then_none() {
    let (sender, mut receiver) = channel::<Test>(ROOMY);
    let wakes = Arc::new(Wakes::default());
    assert_eq!(poll(&mut receiver, &wakes), Poll::Pending);
    drop(sender);
    assert_eq!(wakes.count(), 1, "woken by the close");
    assert_eq!(poll(&mut receiver, &wakes), Poll::Ready(None));

    let (sender, mut receiver) = channel(ROOMY);
    sender.try_send(plain(1), Instant::now()).expect("send");
    drop(sender);
    assert_eq!(poll(&mut receiver, &wakes), Poll::Ready(Some(plain(1))));
    assert_eq!(poll(&mut receiver, &wakes), Poll::Ready(None));
    assert_eq!(receiver.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn sending_to_a_dropped_receiver_is_closed() {
    let (sender, receiver) = channel(ROOMY);
    sender
        .try_send(keyed("k1", 1), Instant::now())
        .expect("send");
    drop(receiver);
    assert_eq!(
        sender.try_send(plain(2), Instant::now()),
        Err(Refused::Closed)
    );
    let state = sender.shared.lock();
    assert_eq!(state.slots.len(), 0, "queued items freed");
    assert!(state.keyed.is_none());
}

#[tokio::test]
async fn recv_waits_for_a_send_from_another_task() {
    let (sender, mut receiver) = channel(ROOMY);
    let received = tokio::spawn(async move { receiver.recv().await });
    tokio::task::yield_now().await;
    sender.try_send(plain(9), Instant::now()).expect("send");
    assert_eq!(received.await.expect("receiver task"), Some(plain(9)));
}
