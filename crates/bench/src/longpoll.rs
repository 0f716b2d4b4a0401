//! Long-poll visitors: the same frames as JSON over plain HTTP/1.1, as the
//! visitor page falls back to when WebSockets are blocked.
//!
//! Like a browser, each visitor keeps two keep-alive connections: one
//! always holds a poll (`GET /api/visitor/events`), the other carries
//! `hello` and the `send`s, one request at a time.

use std::future::pending;
use std::net::IpAddr;
use std::sync::Arc;

use hyper::http::Method;
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use tokio::sync::watch;

use crate::config::Target;
use crate::http::{Answer, Http};
use crate::ledger::Direction;
use crate::net::{self, CONNECT_TIMEOUT, ConnectError, HttpError};
use crate::phase::{self, Phase};
use crate::report::Recorder;
use crate::traffic::{self, Schedule};

/// A long-poll visitor, welcomed.
pub struct Session {
    poll: Http,
    send: Http,
    token: String,
    session: String,
}

/// Opens both connections and says `hello`, within [`CONNECT_TIMEOUT`].
pub async fn connect(
    target: &Target,
    source: Option<IpAddr>,
    hello: &VisitorRequest,
) -> Result<Session, ConnectError> {
    let attempt = async {
        let poll = Http::open(target, source).await?;
        let mut send = Http::open(target, source).await?;
        let answer = send
            .request(Method::POST, "/api/visitor/hello", None, Some(hello))
            .await?;
        Ok::<_, HttpError>((poll, send, answer))
    };
    let (poll, send, answer) = tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| ConnectError::Timeout)?
        .map_err(ConnectError::LongPoll)?;
    match answer {
        Answer::Body(VisitorEvent::Welcome(welcome)) => Ok(Session {
            poll,
            send,
            token: welcome.token,
            session: welcome.session.ok_or_else(|| ConnectError::refused(None))?,
        }),
        Answer::Refused(error) => Err(ConnectError::refused(Some(&error))),
        Answer::Body(_) | Answer::Empty => Err(ConnectError::refused(None)),
    }
}

/// One long-poll visitor of a chat run: polls from the start, sends on its
/// schedule once sending starts.
pub async fn chat(
    session: Session,
    global: u32,
    schedule: Option<Schedule>,
    recorder: Arc<Recorder>,
    mut phase: watch::Receiver<Phase>,
) {
    let Session {
        mut poll,
        mut send,
        token,
        session,
    } = session;
    let polling = poll_events(&mut poll, &token, &session, global, &recorder);
    let sending = send_all(
        &mut send,
        (&token, &session),
        global,
        schedule,
        &recorder,
        phase.clone(),
    );
    tokio::select! {
        reason = polling => recorder.dropped(reason),
        reason = sending => recorder.dropped(reason),
        () = phase::stopped(&mut phase) => {}
    }
}

/// One long-poll visitor of an idle run: keeps polling until the run stops.
pub async fn hold(session: Session, recorder: Arc<Recorder>, mut phase: watch::Receiver<Phase>) {
    let Session {
        mut poll,
        token,
        session,
        ..
    } = session;
    // Idle visitors send nothing, so no message can be theirs.
    let polling = poll_events(&mut poll, &token, &session, u32::MAX, &recorder);
    tokio::select! {
        reason = polling => recorder.dropped(reason),
        () = phase::stopped(&mut phase) => {}
    }
}

/// Polls for events for good; returns why it had to stop.
async fn poll_events(
    http: &mut Http,
    token: &str,
    session: &str,
    global: u32,
    recorder: &Recorder,
) -> &'static str {
    let mut after_seq = 0;
    loop {
        let path = format!("/api/visitor/events?session={session}&after_seq={after_seq}");
        let events: Vec<VisitorEvent> = match http
            .request(Method::GET, &path, Some(token), None::<&()>)
            .await
        {
            Ok(Answer::Body(events)) => events,
            Ok(Answer::Empty) => Vec::new(),
            Ok(Answer::Refused(error)) => {
                recorder.error(error.code);
                return "long-poll: poll refused";
            }
            Err(error) => return error.label(),
        };
        for event in events {
            match event {
                VisitorEvent::Message(message) => {
                    // Polls return the visitor's own messages too; the
                    // highest seq held is what the next poll starts after.
                    after_seq = after_seq.max(message.seq);
                    traffic::on_message(&message, global, recorder);
                }
                VisitorEvent::Error(error) => recorder.error(error.code),
                VisitorEvent::Reconnect(reconnect) => return net::reconnect_label(&reconnect),
                _ => {}
            }
        }
    }
}

/// Sends on the schedule, each `send` answered before the next; pending
/// once done, so only a failure ends it.
async fn send_all(
    http: &mut Http,
    (token, session): (&str, &str),
    global: u32,
    schedule: Option<Schedule>,
    recorder: &Recorder,
    mut phase: watch::Receiver<Phase>,
) -> &'static str {
    let (Some(start), Some(schedule)) = (phase::sending_starts(&mut phase).await, schedule) else {
        return pending().await;
    };
    let path = format!("/api/visitor/send?session={session}");
    for at in schedule.times(start) {
        tokio::time::sleep_until(at).await;
        let send = VisitorRequest::Send {
            attachments: Vec::new(),
            client_id: recorder.send(Direction::ToAgent, global),
            text: traffic::TEXT.to_owned(),
        };
        match http
            .request(Method::POST, &path, Some(token), Some(&send))
            .await
        {
            Ok(Answer::Body(VisitorEvent::Ack(ack))) => recorder.ack(&ack.client_id),
            Ok(Answer::Refused(error)) => recorder.error(error.code),
            Ok(_) => {}
            Err(error) => return error.label(),
        }
    }
    pending().await
}
