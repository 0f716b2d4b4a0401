//! The two queues into a writer: visitors' writes, and everyone else's
//! (agents', the admin commands', the relay's own housekeeping). A writer
//! makes its batches from the second first.
//!
//! Why: a writer commits what it is given in batches, and with one queue
//! an agent's reply waits behind every visitor's write queued before it.
//! Under more load than the store commits, that is a backlog of visitors'
//! writes (up to `visitor_writes_in_flight`, `transport::limits`): at
//! 10,000 symmetric msg/s on SQLite, a third more than it commits, replies
//! reached their visitors in 0.4–0.8 s (p50) where visitors' messages took
//! seconds; with the lanes in 45–48 ms, the same carried
//! (docs/benchmarks.md). Agents' writes answer what is already stored, are
//! few and come from signed-in people; visitors' bring the new load and
//! may be a script's. So an agent's write waits for at most the batch
//! being committed, and when more is asked than the store commits,
//! visitors' writes are the ones that wait.
//!
//! Never wholly: while visitors have writes queued, a quarter of every
//! batch is theirs ([`Lanes::fill`]), so a busy agent connection (a bot
//! answering through an agent token) slows visitors but cannot stop them.
//!
//! Writes of one lane keep their order. Across lanes there is no order to
//! keep: a write is ordered after another only once that one is answered,
//! and a visitor's and an agent's are never waiting on each other.

use tokio::sync::mpsc::{self, error::TryRecvError};

/// Which queue a write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Written on behalf of an anonymous visitor.
    Visitor,
    /// Everything else: agents, admin commands, the relay itself.
    Staff,
}

/// The sending ends, each bounded.
pub struct LaneSenders<T> {
    staff: mpsc::Sender<T>,
    visitors: mpsc::Sender<T>,
}

impl<T> Clone for LaneSenders<T> {
    fn clone(&self) -> Self {
        LaneSenders {
            staff: self.staff.clone(),
            visitors: self.visitors.clone(),
        }
    }
}

impl<T> LaneSenders<T> {
    /// Queues `item` in `lane`, waiting for room; `Err` once the writer has
    /// stopped.
    pub async fn send(&self, lane: Lane, item: T) -> Result<(), mpsc::error::SendError<T>> {
        self.sender(lane).send(item).await
    }

    /// One lane's sender: for a weak handle to it, or a request that
    /// always goes in that lane (the SQLite writer's `Index` and `Stop`).
    pub fn sender(&self, lane: Lane) -> &mpsc::Sender<T> {
        match lane {
            Lane::Visitor => &self.visitors,
            Lane::Staff => &self.staff,
        }
    }
}

/// The writer's end.
pub struct Lanes<T> {
    staff: mpsc::Receiver<T>,
    visitors: mpsc::Receiver<T>,
}

/// Two queues of `capacity` each.
pub fn channel<T>(capacity: usize) -> (LaneSenders<T>, Lanes<T>) {
    let (staff, staff_queue) = mpsc::channel(capacity);
    let (visitors, visitors_queue) = mpsc::channel(capacity);
    (
        LaneSenders { staff, visitors },
        Lanes {
            staff: staff_queue,
            visitors: visitors_queue,
        },
    )
}

impl<T> Lanes<T> {
    /// The next write, staff's first; waits while both lanes are empty.
    /// `None` once both are closed and drained.
    pub async fn next(&mut self) -> Option<T> {
        tokio::select! {
            biased;
            Some(item) = self.staff.recv() => Some(item),
            Some(item) = self.visitors.recv() => Some(item),
            else => None,
        }
    }

    /// The next write if one is queued, staff's first.
    pub fn try_next(&mut self) -> Result<T, TryRecvError> {
        match self.staff.try_recv() {
            Ok(item) => Ok(item),
            Err(staff) => match self.visitors.try_recv() {
                Ok(item) => Ok(item),
                Err(TryRecvError::Empty) => Err(TryRecvError::Empty),
                Err(TryRecvError::Disconnected) => Err(staff),
            },
        }
    }

    /// Tops `batch` up to `max` with what is queued now, without waiting:
    /// staff's writes first but for a quarter of `max`, kept for
    /// visitors', then visitors', then staff's again if room is left.
    pub fn fill(&mut self, batch: &mut Vec<T>, max: usize) {
        let visitors_room = max.div_ceil(4);
        take(&mut self.staff, batch, max - visitors_room);
        take(&mut self.visitors, batch, max);
        take(&mut self.staff, batch, max);
    }

    /// Refuses new writes in both lanes; those queued are still received.
    pub fn close(&mut self) {
        self.staff.close();
        self.visitors.close();
    }
}

fn take<T>(queue: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, up_to: usize) {
    while batch.len() < up_to {
        match queue.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` writes named `prefix0`, `prefix1`, … queued in `lane`.
    async fn queue(senders: &LaneSenders<String>, lane: Lane, prefix: &str, count: usize) {
        for n in 0..count {
            senders
                .send(lane, format!("{prefix}{n}"))
                .await
                .expect("open");
        }
    }

    fn names(batch: &[String], prefix: &str) -> Vec<String> {
        (batch.iter())
            .filter(|name| name.starts_with(prefix))
            .cloned()
            .collect()
    }

    #[tokio::test]
    async fn an_agents_write_queued_behind_visitors_goes_in_the_next_batch() {
        let (senders, mut lanes) = channel(1024);
        queue(&senders, Lane::Visitor, "v", 600).await;
        queue(&senders, Lane::Staff, "a", 3).await;
        let mut batch = vec![lanes.next().await.expect("queued")];
        lanes.fill(&mut batch, 256);
        assert_eq!(batch.len(), 256);
        assert_eq!(&batch[..3], ["a0", "a1", "a2"], "staff's first, in order");
        let visitors = names(&batch, "v");
        let expected: Vec<String> = (0..253).map(|n| format!("v{n}")).collect();
        assert_eq!(visitors, expected, "then visitors', in order");
    }

    #[tokio::test]
    async fn visitors_keep_their_share_of_a_batch_however_busy_the_staff() {
        let (senders, mut lanes) = channel(1024);
        queue(&senders, Lane::Staff, "a", 600).await;
        queue(&senders, Lane::Visitor, "v", 100).await;
        let mut batch = Vec::new();
        lanes.fill(&mut batch, 256);
        assert_eq!(names(&batch, "v").len(), 64, "a quarter of 256");
        assert_eq!(names(&batch, "a").len(), 192);
        // With fewer visitors' writes than their share, staff's fill the rest.
        let mut batch = Vec::new();
        lanes.fill(&mut batch, 256);
        assert_eq!(names(&batch, "v").len(), 36, "the 100 less the 64 taken");
        assert_eq!(names(&batch, "a").len(), 220);
        assert_eq!(batch.last().map(String::as_str), Some("a411"), "in order");
    }

    #[tokio::test]
    async fn closed_lanes_hand_over_what_was_queued_then_end() {
        let (senders, mut lanes) = channel(8);
        queue(&senders, Lane::Visitor, "v", 2).await;
        queue(&senders, Lane::Staff, "a", 1).await;
        lanes.close();
        assert!(senders.send(Lane::Staff, "late".into()).await.is_err());
        assert!(senders.send(Lane::Visitor, "late".into()).await.is_err());
        assert_eq!(lanes.try_next().as_deref(), Ok("a0"));
        assert_eq!(lanes.next().await.as_deref(), Some("v0"));
        assert_eq!(lanes.next().await.as_deref(), Some("v1"));
        assert_eq!(lanes.next().await, None);
        assert_eq!(lanes.try_next(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn try_next_is_empty_while_either_lane_may_still_bring_writes() {
        let (senders, mut lanes) = channel::<String>(8);
        assert_eq!(lanes.try_next(), Err(TryRecvError::Empty));
        drop(senders);
        assert_eq!(lanes.try_next(), Err(TryRecvError::Disconnected));
    }
}
