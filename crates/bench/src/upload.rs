//! Uploaders: visitors that upload one image after another while a chat
//! runs, as a visitor sends a screenshot: `POST /api/files` with the
//! visitor's token, then a `send` naming the stored file, which the
//! owning agent receives and answers like any message (loss-checked).
//!
//! Uploads are one at a time per uploader (closed loop), back to back or
//! with a pause after each answer, on a keep-alive HTTP connection of its
//! own beside the WebSocket: what the relay sustains is the throughput,
//! and what that costs the chat shows in the chat's latencies.

use std::future::{Future, pending};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Bytes;
use kefu_protocol::Attachment;
use kefu_protocol::visitor::{VisitorEvent, VisitorRequest};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::Target;
use crate::http::{Answer, Http};
use crate::ledger::Direction;
use crate::net::{self, HttpError, Ws};
use crate::phase::{self, Phase};
use crate::png;
use crate::report::Recorder;
use crate::tally::Uploads;
use crate::visitor::{self, Connection};

/// The text of a message carrying an upload.
const TEXT: &str = "Here is a screenshot of the error.";

/// One uploader and where it uploads.
pub struct Uploader {
    pub target: Target,
    pub source: Option<IpAddr>,
    pub global: u32,
    /// Bytes of each image.
    pub bytes: usize,
    /// No upload starts later than this after sending starts.
    pub until: Duration,
    /// Between one upload's answer and the next upload.
    pub pause: Duration,
    /// Before the first upload: uploaders that pause are spread over the
    /// pause, as visitors' screenshots are, rather than all at once.
    pub offset: Duration,
}

/// An upload finished: the connection back (for the next one), when it
/// started, its size and the relay's answer.
struct Done {
    http: Http,
    started: std::time::Instant,
    bytes: usize,
    answer: Result<Answer<Attachment>, HttpError>,
}

type InFlight = Pin<Box<dyn Future<Output = Done> + Send>>;

impl Uploader {
    /// Uploads until `until`, sends each stored file, and records acks and
    /// replies until the run stops.
    pub async fn run(
        self,
        connection: Connection,
        recorder: Arc<Recorder>,
        uploads: Arc<Uploads>,
        mut phase: watch::Receiver<Phase>,
    ) {
        // Uploaders are WebSocket visitors (spawned with no long-poll share).
        let Connection::WebSocket(mut ws, token) = connection else {
            return;
        };
        let Some(start) = phase::sending_starts(&mut phase).await else {
            return net::close(ws).await;
        };
        let http = match Http::open(&self.target, self.source).await {
            Ok(http) => http,
            Err(error) => return recorder.dropped(error.label()),
        };
        // With the chat's first messages, not before.
        tokio::time::sleep_until(start).await;
        let end = start + self.until;
        let token: Arc<str> = token.into();
        let mut in_flight: Option<InFlight> =
            Some(self.upload(http, token.clone(), 0, self.offset));
        for n in 1.. {
            tokio::select! {
                done = finished(&mut in_flight) => {
                    in_flight = None;
                    let http = match self.on_done(done, &mut ws, &recorder, &uploads).await {
                        Ok(http) => http,
                        Err(reason) => return recorder.dropped(reason),
                    };
                    if Instant::now() + self.pause < end {
                        in_flight = Some(self.upload(http, token.clone(), n, self.pause));
                    }
                }
                event = net::recv::<VisitorEvent>(&mut ws) => {
                    if let Err(reason) = visitor::on_event(event, self.global, &recorder) {
                        return recorder.dropped(reason);
                    }
                }
                () = phase::stopped(&mut phase) => break,
            }
        }
        net::close(ws).await;
    }

    /// The `n`-th upload of this uploader, after `pause`: a new image (the
    /// relay keeps files by content, so each must differ), made off the
    /// runtime.
    fn upload(&self, mut http: Http, token: Arc<str>, n: u64, pause: Duration) -> InFlight {
        let (bytes, seed) = (self.bytes, (u64::from(self.global) << 32) | n);
        let name = format!("/api/files?name=screenshot-{}-{n}.png", self.global);
        Box::pin(async move {
            // After a pause the relay may have closed the idle connection:
            // `Http` then uploads on a new one, as a browser does.
            tokio::time::sleep(pause).await;
            let image = tokio::task::spawn_blocking(move || png::image(bytes, seed))
                .await
                .unwrap_or_default();
            let bytes = image.len();
            let started = std::time::Instant::now();
            let answer = http
                .post_bytes(&name, &token, "image/png", Bytes::from(image))
                .await;
            Done {
                http,
                started,
                bytes,
                answer,
            }
        })
    }

    /// Counts a finished upload and sends a stored file; the connection
    /// for the next upload, or why this uploader cannot go on.
    async fn on_done(
        &self,
        done: Done,
        ws: &mut Ws,
        recorder: &Recorder,
        uploads: &Uploads,
    ) -> Result<Http, &'static str> {
        match done.answer {
            Ok(Answer::Body(attachment)) => {
                uploads.stored(done.started, done.bytes);
                let send = VisitorRequest::Send {
                    client_id: recorder.send(Direction::ToAgent, self.global),
                    text: TEXT.to_owned(),
                    attachments: vec![attachment.id],
                };
                net::send(ws, &send).await.map_err(|error| error.label())?;
                Ok(done.http)
            }
            Ok(Answer::Refused(error)) => {
                uploads.refused(format!("refused: {}", error.code.as_str()));
                Ok(done.http)
            }
            Ok(Answer::Empty) => {
                uploads.refused("no attachment in the answer".to_owned());
                Ok(done.http)
            }
            Err(error) => {
                // The connection may be broken: the next upload gets a new one.
                uploads.refused(error.to_string());
                Http::open(&self.target, self.source)
                    .await
                    .map_err(|_| "upload: cannot reconnect")
            }
        }
    }
}

/// The upload in flight, once done; never while none is.
async fn finished(in_flight: &mut Option<InFlight>) -> Done {
    match in_flight {
        Some(upload) => upload.await,
        None => pending().await,
    }
}
