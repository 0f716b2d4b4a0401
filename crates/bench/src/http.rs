//! One keep-alive HTTP/1.1 connection to the relay, as a browser on the
//! relay's own page holds: JSON frames for long-poll, raw bytes for file
//! uploads, and the relay's answer as a body, nothing, or an error frame.

use std::net::IpAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::http::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use kefu_protocol::ErrorFrame;
use kefu_protocol::visitor::VisitorEvent;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Target;
use crate::net::{self, HttpError};

/// What the relay answered.
pub enum Answer<T> {
    Body(T),
    /// HTTP 204: accepted, nothing to say.
    Empty,
    /// An error frame with an HTTP error status.
    Refused(ErrorFrame),
}

/// One keep-alive HTTP/1.1 connection to the relay; one anew, as a
/// browser opens, once the relay closed an idle one.
pub struct Http {
    sender: SendRequest<Full<Bytes>>,
    target: Target,
    source: Option<IpAddr>,
}

impl Http {
    pub async fn open(target: &Target, source: Option<IpAddr>) -> Result<Http, HttpError> {
        let stream = net::tcp(target, source).await.map_err(HttpError::Tcp)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // Ends when `sender` is dropped and the connection closes.
        tokio::spawn(connection);
        Ok(Http {
            sender,
            target: target.clone(),
            source,
        })
    }

    /// `body` as JSON, if any; the answer's body decoded as `T`.
    pub async fn request<T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&impl Serialize>,
    ) -> Result<Answer<T>, HttpError> {
        let body = match body {
            Some(frame) => Some(("application/json", Bytes::from(serde_json::to_vec(frame)?))),
            None => None,
        };
        self.send(method, path, token, body).await
    }

    /// `bytes` as the body, of type `content_type` (a file upload).
    pub async fn post_bytes<T: DeserializeOwned>(
        &mut self,
        path: &str,
        token: &str,
        content_type: &'static str,
        bytes: Bytes,
    ) -> Result<Answer<T>, HttpError> {
        self.send(Method::POST, path, Some(token), Some((content_type, bytes)))
            .await
    }

    async fn send<T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Answer<T>, HttpError> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.target.authority())
            // What a browser on the relay's own chat page sends.
            .header(header::ORIGIN, self.target.origin());
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some((content_type, bytes)) => {
                request = request.header(header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        // The relay closes a keep-alive connection idle past its header
        // timeout (a long-poll visitor's between two sends, an uploader's
        // after a pause); a browser then sends on a new one.
        if self.sender.is_closed() {
            *self = Http::open(&self.target, self.source).await?;
        }
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(request.body(Full::new(body))?)
            .await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if status == StatusCode::NO_CONTENT {
            return Ok(Answer::Empty);
        }
        if status.is_success() {
            return Ok(Answer::Body(serde_json::from_slice(&bytes)?));
        }
        match serde_json::from_slice(&bytes) {
            Ok(VisitorEvent::Error(error)) => Ok(Answer::Refused(error)),
            _ => Err(HttpError::Status(status)),
        }
    }
}
