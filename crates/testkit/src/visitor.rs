//! What a visitor does over a [`Client`]: say hello, send, read messages
//! and errors.

use kefu_protocol::visitor::{VisitorEvent, VisitorProfile, VisitorRequest, VisitorWelcome};
use kefu_protocol::{Ack, Message};

use crate::ws::Client;

impl Client<VisitorEvent> {
    /// Says hello without a profile; the relay's welcome.
    pub async fn hello(&mut self, token: Option<&str>, after_seq: Option<u64>) -> VisitorWelcome {
        self.hello_with_profile(token, after_seq, None).await
    }

    /// Says hello as the page would, with what it knows of the visitor.
    pub async fn hello_with_profile(
        &mut self,
        token: Option<&str>,
        after_seq: Option<u64>,
        profile: Option<VisitorProfile>,
    ) -> VisitorWelcome {
        self.send(&VisitorRequest::Hello {
            token: token.map(str::to_owned),
            after_seq,
            profile,
        })
        .await;
        match self.next().await {
            VisitorEvent::Welcome(welcome) => welcome,
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// Sends a message; its ack.
    pub async fn say(&mut self, client_id: &str, text: &str) -> Ack {
        self.say_noting_messages(client_id, text).await.0
    }

    /// Sends the uploaded files `ids` in a message without text; its ack.
    pub async fn send_files(&mut self, client_id: &str, ids: Vec<String>) -> Ack {
        self.send(&VisitorRequest::Send {
            attachments: ids,
            client_id: client_id.to_owned(),
            text: String::new(),
        })
        .await;
        self.ack_for(client_id).await
    }

    /// Skips frames until the ack for `client_id`; panics at an error.
    pub async fn ack_for(&mut self, client_id: &str) -> Ack {
        self.until(|event| match event {
            VisitorEvent::Ack(ack) if ack.client_id == client_id => Some(ack),
            VisitorEvent::Error(error) => panic!("send refused: {error:?}"),
            _ => None,
        })
        .await
    }

    /// Sends a message; its ack and the messages that came before it.
    pub async fn say_noting_messages(
        &mut self,
        client_id: &str,
        text: &str,
    ) -> (Ack, Vec<Message>) {
        self.send(&VisitorRequest::Send {
            attachments: Vec::new(),
            client_id: client_id.to_owned(),
            text: text.to_owned(),
        })
        .await;
        let mut before = Vec::new();
        let ack = self
            .until(|event| match event {
                VisitorEvent::Ack(ack) if ack.client_id == client_id => Some(ack),
                VisitorEvent::Message(message) => {
                    before.push(message);
                    None
                }
                VisitorEvent::Error(error) => panic!("send refused: {error:?}"),
                _ => None,
            })
            .await;
        (ack, before)
    }
}
