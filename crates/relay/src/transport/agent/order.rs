//! The order an agent's requests in flight keep: each about a conversation
//! starts once the one before it about the same conversation is answered.
//!
//! Waiting there, not in the connection's read loop, lets an agent
//! carrying hundreds of conversations keep the rest going: a reply and its
//! `read` to the same conversation used to stop the connection's reading
//! until the reply was committed.

use std::collections::{HashMap, VecDeque};

use futures_util::future::Shared;
use tokio::sync::oneshot;

/// Resolves once a request in flight is answered (or dropped).
pub(super) type Answered = Shared<oneshot::Receiver<()>>;

/// The conversation of each request in flight, oldest first, and for each
/// conversation the newest of its requests.
#[derive(Default)]
pub(super) struct InFlightOrder {
    about: VecDeque<Option<String>>,
    tails: HashMap<String, Tail>,
}

/// The requests in flight about one conversation.
struct Tail {
    /// Resolves when the newest of them is answered.
    newest: Answered,
    /// How many there are: the tail is forgotten when the last is answered.
    /// Counted rather than looked for in `about`, a scan of up to the
    /// agent's requests in flight for every answer.
    in_flight: usize,
}

impl InFlightOrder {
    /// A request was put in flight, about a conversation (with what
    /// resolves when it is answered) or about none. Returns what it waits
    /// for before it starts: the answer to the conversation's request
    /// before it, if that is still in flight.
    pub(super) fn started(&mut self, about: Option<(String, Answered)>) -> Option<Answered> {
        let Some((conversation_id, answered)) = about else {
            self.about.push_back(None);
            return None;
        };
        let earlier = match self.tails.get_mut(&conversation_id) {
            Some(tail) => {
                tail.in_flight += 1;
                Some(std::mem::replace(&mut tail.newest, answered))
            }
            None => {
                let tail = Tail {
                    newest: answered,
                    in_flight: 1,
                };
                self.tails.insert(conversation_id.clone(), tail);
                None
            }
        };
        self.about.push_back(Some(conversation_id));
        earlier
    }

    /// The oldest request in flight was answered (answers go out in the
    /// order the requests came).
    pub(super) fn oldest_answered(&mut self) {
        if let Some(Some(about)) = self.about.pop_front()
            && let Some(tail) = self.tails.get_mut(&about)
        {
            tail.in_flight -= 1;
            if tail.in_flight == 0 {
                self.tails.remove(&about);
            }
        }
    }

    /// Conversations with requests in flight.
    #[cfg(test)]
    fn conversations(&self) -> usize {
        self.tails.len()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    /// A request about `conversation_id`: the sender that answers it, and
    /// what `started` returned for it.
    fn start(
        order: &mut InFlightOrder,
        conversation_id: &str,
    ) -> (oneshot::Sender<()>, Option<Answered>) {
        let (done, answered) = oneshot::channel();
        let earlier = order.started(Some((conversation_id.to_owned(), answered.shared())));
        (done, earlier)
    }

    #[test]
    fn a_request_waits_for_the_one_before_it_about_the_same_conversation_only() {
        let mut order = InFlightOrder::default();
        let (first, none) = start(&mut order, "c1");
        assert!(none.is_none(), "nothing in flight about c1 before it");
        let (_second, earlier) = start(&mut order, "c1");
        let (_other, unrelated) = start(&mut order, "c2");
        assert!(unrelated.is_none(), "c2 waits for nothing about c1");
        assert!(order.started(None).is_none());

        let mut earlier = earlier.expect("the second waits for the first");
        assert!((&mut earlier).now_or_never().is_none(), "not yet answered");
        first.send(()).expect("waited for");
        assert!(
            earlier.now_or_never().is_some(),
            "starts once it is answered"
        );
    }

    #[test]
    fn a_conversation_is_forgotten_when_its_last_request_is_answered() {
        let mut order = InFlightOrder::default();
        let _answers = [
            start(&mut order, "c1"),
            start(&mut order, "c1"),
            start(&mut order, "c2"),
        ];
        order.started(None);
        let (_third, earlier) = start(&mut order, "c1");
        assert!(earlier.is_some(), "follows the second");
        assert_eq!(order.conversations(), 2);
        order.oldest_answered(); // c1's first
        order.oldest_answered(); // c1's second
        assert_eq!(order.conversations(), 2, "c1's third is in flight");
        order.oldest_answered(); // c2's
        assert_eq!(order.conversations(), 1);
        order.oldest_answered(); // the one about nothing
        order.oldest_answered(); // c1's third
        assert_eq!(order.conversations(), 0, "nothing left behind");
        order.oldest_answered(); // none in flight: nothing happens
        let (_, fresh) = start(&mut order, "c1");
        assert!(fresh.is_none(), "a new request about c1 waits for nothing");
    }
}
