//! What an agent does over a [`Client`]: sign in, reply, claim, read
//! summaries, history and errors.

use kefu_protocol::agent::{
    AgentEvent, AgentRequest, AgentWelcome, ConversationStatus, ConversationSummary,
};
use kefu_protocol::{Ack, ErrorFrame, Message};

use crate::ws::Client;

impl Client<AgentEvent> {
    /// Says hello with `token`; the relay's welcome.
    pub async fn hello(&mut self, token: &str) -> AgentWelcome {
        self.send(&AgentRequest::Hello {
            token: token.to_owned(),
        })
        .await;
        match self.next().await {
            AgentEvent::Welcome(welcome) => welcome,
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    pub async fn reply(&mut self, conversation_id: &str, client_id: &str, text: &str) -> Ack {
        self.send_message(conversation_id, client_id, text, false)
            .await
            .unwrap_or_else(|error| panic!("reply refused: {error:?}"))
    }

    pub async fn send_message(
        &mut self,
        conversation_id: &str,
        client_id: &str,
        text: &str,
        internal: bool,
    ) -> Result<Ack, ErrorFrame> {
        self.send(&AgentRequest::Send {
            attachments: Vec::new(),
            conversation_id: conversation_id.to_owned(),
            client_id: client_id.to_owned(),
            text: text.to_owned(),
            internal,
            link: None,
        })
        .await;
        self.ack_for(client_id).await
    }

    /// Skips frames until the ack for `client_id`, or the error about it.
    pub async fn ack_for(&mut self, client_id: &str) -> Result<Ack, ErrorFrame> {
        self.until(|event| match event {
            AgentEvent::Ack(ack) if ack.client_id == client_id => Some(Ok(ack)),
            AgentEvent::Error(error) if error.reference.as_deref() == Some(client_id) => {
                Some(Err(error))
            }
            _ => None,
        })
        .await
    }

    /// Claims a conversation and waits until this agent sees it active.
    pub async fn claim(&mut self, conversation_id: &str) -> ConversationSummary {
        self.send(&AgentRequest::Claim {
            conversation_id: conversation_id.to_owned(),
        })
        .await;
        self.summary_where(conversation_id, |s| s.status == ConversationStatus::Active)
            .await
    }

    /// The next summary of `conversation_id` that satisfies `want`.
    pub async fn summary_where(
        &mut self,
        conversation_id: &str,
        want: impl Fn(&ConversationSummary) -> bool,
    ) -> ConversationSummary {
        self.until(|event| match event {
            AgentEvent::Conversation(frame)
                if frame.summary.id == conversation_id && want(&frame.summary) =>
            {
                Some(frame.summary)
            }
            _ => None,
        })
        .await
    }

    pub async fn history(
        &mut self,
        conversation_id: &str,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Vec<Message> {
        self.send(&AgentRequest::History {
            conversation_id: conversation_id.to_owned(),
            before_seq,
            limit: Some(limit),
        })
        .await;
        self.until(|event| match event {
            AgentEvent::History(page) if page.conversation_id == conversation_id => {
                Some(page.messages)
            }
            AgentEvent::Error(error) => panic!("history refused: {error:?}"),
            _ => None,
        })
        .await
    }
}
