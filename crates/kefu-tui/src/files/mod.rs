//! Files beside the chat (issue 18): uploads from a path, downloads into
//! the download folder, and the desktop's opener — each in a task of its
//! own, reporting [`FileEvent`]s back over a bounded channel, so the UI
//! loop never waits for a disk, the relay or the opener.
//!
//! - `http`: the relay's file endpoints.
//! - `names`: a downloaded file's safe name, never overwriting.
//! - [`complete`]: Tab completion of `/attach`'s path (run on the UI loop:
//!   one folder listing, bounded).
//! - [`preview`]: images drawn in terminals with graphics.

pub mod complete;
mod http;
pub mod names;
pub mod preview;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Method, StatusCode};
use kefu_protocol::Attachment;
use kefu_protocol::files::FileLink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::app::{FileEvent, Preview};
use crate::config::FileSettings;
use crate::sanitize;
use http::{HttpError, Relay};

/// File events waiting for the UI; progress reports past it are dropped.
const EVENTS: usize = 64;
/// Bytes read from a file being uploaded at a time.
const CHUNK: usize = 64 * 1024;
/// How long the opener may take to say whether it could open the file
/// (`xdg-open` hands over and exits); one still running after it is left
/// to run, and counted as opened.
const OPENER_WAIT: Duration = Duration::from_secs(10);
/// How long an upload's body waits for the relay's `100 Continue`.
const CONTINUE_WAIT: Duration = Duration::from_secs(1);
/// How long an inline preview may take, fetched and encoded: it holds
/// one of the few places to load (`app::thumbnails::LOADING`).
const THUMBNAIL_WAIT: Duration = Duration::from_secs(30);

/// Starts transfers and hands their reports to the UI.
pub struct Files {
    relay: Arc<Relay>,
    settings: Arc<FileSettings>,
    home: Option<PathBuf>,
    events_tx: mpsc::Sender<FileEvent>,
    pub events: mpsc::Receiver<FileEvent>,
    /// The terminal's graphics, if it has any: images can be previewed.
    picker: Option<ratatui_image::picker::Picker>,
    /// Aborted with `Files`, so no transfer outlives the client.
    tasks: JoinSet<()>,
}

impl Files {
    pub fn new(
        agent_url: &str,
        token: String,
        tls: Option<Arc<rustls::ClientConfig>>,
        settings: FileSettings,
        picker: Option<ratatui_image::picker::Picker>,
    ) -> Files {
        let (events_tx, events) = mpsc::channel(EVENTS);
        Files {
            relay: Arc::new(Relay::new(agent_url, token, tls)),
            settings: Arc::new(settings),
            home: std::env::var_os("HOME").map(PathBuf::from),
            events_tx,
            events,
            picker,
            tasks: JoinSet::new(),
        }
    }

    /// Whether images can be shown in this terminal.
    pub fn previews(&self) -> bool {
        self.picker.is_some()
    }

    /// Fetches the image `attachment` and makes it ready to draw in at
    /// most `cells` (columns, rows); reports [`FileEvent::Preview`].
    pub fn preview(&mut self, attachment: Attachment, cells: (u16, u16)) {
        let Some(picker) = self.picker.clone() else {
            return;
        };
        let relay = self.relay.clone();
        let events = self.events_tx.clone();
        self.spawn(async move {
            let event = match preview_of(&relay, &attachment, picker, cells).await {
                Ok(image) => FileEvent::Preview { attachment, image },
                Err(error) => FileEvent::Failed {
                    what: format!("preview of {}", attachment.name),
                    error: error.to_string(),
                },
            };
            let _ = events.send(event).await;
        });
    }

    /// Fetches the thumbnail of the image `attachment` and makes it ready
    /// to draw inline in `cells` (columns, rows); reports
    /// [`FileEvent::Thumbnail`].
    pub fn thumbnail(&mut self, attachment: Attachment, cells: (u16, u16)) {
        let Some(picker) = self.picker.clone() else {
            return;
        };
        let relay = self.relay.clone();
        let events = self.events_tx.clone();
        self.spawn(async move {
            let fetched = tokio::time::timeout(
                THUMBNAIL_WAIT,
                thumbnail_of(&relay, &attachment, picker, cells),
            )
            .await;
            let image = match fetched {
                Ok(Ok(image)) => Ok(image),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err(HttpError::Timeout(THUMBNAIL_WAIT).to_string()),
            };
            if let Err(error) = &image {
                tracing::info!(%error, "no inline preview");
            }
            let id = attachment.id;
            let _ = events.send(FileEvent::Thumbnail { id, cells, image }).await;
        });
    }

    /// Uploads the file at `typed` (as the agent typed it: `~` is home)
    /// for `conversation_id`; reports [`FileEvent::Uploaded`].
    pub fn upload(&mut self, conversation_id: String, typed: &str) {
        let path = complete::expand(typed, self.home.as_deref());
        let relay = self.relay.clone();
        let events = self.events_tx.clone();
        let name = file_name(&path);
        self.spawn(async move {
            let event = match upload(&relay, &conversation_id, &path, &name, &events).await {
                Ok(attachment) => FileEvent::Uploaded {
                    conversation_id,
                    attachment,
                },
                Err(error) => FileEvent::UploadFailed {
                    conversation_id,
                    error: format!("{name}: {error}"),
                },
            };
            let _ = events.send(event).await;
        });
    }

    /// Downloads `attachment` into the download folder, then opens it with
    /// the opener; reports [`FileEvent::Saved`].
    pub fn download(&mut self, attachment: Attachment) {
        let relay = self.relay.clone();
        let settings = self.settings.clone();
        let events = self.events_tx.clone();
        self.spawn(async move {
            let what = format!("downloading {}", attachment.name);
            let event = match download(&relay, &attachment, &settings.download_dir, &events).await {
                Ok(path) => {
                    let opened = open(&settings.opener, &path).await;
                    FileEvent::Saved {
                        path: path.display().to_string(),
                        opened,
                    }
                }
                Err(error) => FileEvent::Failed {
                    what,
                    error: error.to_string(),
                },
            };
            let _ = events.send(event).await;
        });
    }

    /// Completes `/attach`'s path.
    pub fn complete(&self, partial: &str) -> complete::Completion {
        complete::complete(partial, self.home.as_deref())
    }

    /// The path in a paste, if the paste is just the path of an existing
    /// file (as a terminal pastes a file dropped on it: maybe quoted, maybe
    /// a `file://` URL).
    pub fn pasted_file(&self, text: &str) -> Option<String> {
        let text = text.trim();
        if text.contains('\n') || text.len() > 4096 {
            return None;
        }
        let unquoted = text
            .strip_prefix('\'')
            .and_then(|t| t.strip_suffix('\''))
            .or_else(|| text.strip_prefix('"').and_then(|t| t.strip_suffix('"')))
            .unwrap_or(text);
        let path = unquoted.strip_prefix("file://").unwrap_or(unquoted);
        let absolute = path.starts_with('/') || path.starts_with("~/");
        (absolute && complete::expand(path, self.home.as_deref()).is_file())
            .then(|| path.to_owned())
    }

    fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        // Forget the finished ones, so the set stays as small as what runs.
        while self.tasks.try_join_next().is_some() {}
        self.tasks.spawn(task);
    }
}

/// The name the relay is told: the file's own, cleaned of what could not
/// be shown.
fn file_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    sanitize::line(&name)
}

/// Reports progress without waiting: a full channel drops the report (the
/// next one, or the result, follows).
fn progress(events: &mpsc::Sender<FileEvent>, what: &str, done: u64, total: u64) {
    let _ = events.try_send(FileEvent::Progress {
        what: what.to_owned(),
        done,
        total,
    });
}

/// Streams the file to `POST /api/files`, never holding it whole.
async fn upload(
    relay: &Relay,
    conversation_id: &str,
    path: &Path,
    name: &str,
    events: &mpsc::Sender<FileEvent>,
) -> Result<Attachment, HttpError> {
    let file = tokio::fs::File::open(path).await?;
    let metadata = file.metadata().await?;
    if !metadata.is_file() {
        return Err(HttpError::Io(std::io::Error::other("not a file")));
    }
    let total = metadata.len();
    let what = format!("uploading {name}");
    // The relay refuses what it can (too large by its length, too many
    // uploads, a bad token) before reading the body, and then closes: a
    // body already on its way would make the refusal a broken pipe. So
    // the body waits for the relay's `100 Continue` (or, through a proxy
    // that never says it, for a moment).
    let go = Arc::new(tokio::sync::Notify::new());
    let wait = Some(go.clone());
    let chunks = futures_util::stream::unfold(
        (file, 0u64, events.clone(), wait),
        move |(mut file, sent, events, wait)| {
            let what = what.clone();
            async move {
                if let Some(go) = wait {
                    let _ = tokio::time::timeout(CONTINUE_WAIT, go.notified()).await;
                }
                let mut chunk = vec![0; CHUNK];
                match file.read(&mut chunk).await {
                    Ok(0) => None,
                    Ok(read) => {
                        chunk.truncate(read);
                        let sent = sent + read as u64;
                        progress(&events, &what, sent, total);
                        Some((
                            Ok(Frame::data(Bytes::from(chunk))),
                            (file, sent, events, None),
                        ))
                    }
                    Err(error) => Some((Err(error), (file, sent, events, None))),
                }
            }
        },
    );
    let query = format!(
        "/api/files?name={}&conversation_id={}",
        http::encode(name),
        http::encode(conversation_id)
    );
    let mut request = relay
        .request(Method::POST, &query)
        .header(hyper::header::CONTENT_LENGTH, total)
        .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
        .header(hyper::header::EXPECT, "100-continue")
        .body(BodyExt::boxed(StreamBody::new(chunks)))?;
    hyper::ext::on_informational(&mut request, move |response| {
        if response.status() == StatusCode::CONTINUE {
            go.notify_one();
        }
    });
    let response = relay.send(request).await?;
    let attachment: Attachment = http::json(response, StatusCode::CREATED).await?;
    Ok(attachment)
}

/// The image in memory (bounded), then decoded and encoded for the
/// terminal in a blocking task.
async fn preview_of(
    relay: &Relay,
    attachment: &Attachment,
    picker: ratatui_image::picker::Picker,
    (columns, rows): (u16, u16),
) -> Result<Preview, HttpError> {
    if attachment.size > preview::MAX_BYTES {
        return Err(HttpError::Answer("too large to preview".into()));
    }
    let response = fetch(relay, attachment).await?;
    let bytes = collect(response.into_body(), attachment.size).await?;
    encoded(bytes, picker, (columns, rows)).await
}

/// The relay's thumbnail of the image `attachment` (bounded), decoded and
/// encoded for the terminal in a blocking task.
async fn thumbnail_of(
    relay: &Relay,
    attachment: &Attachment,
    picker: ratatui_image::picker::Picker,
    cells: (u16, u16),
) -> Result<Preview, HttpError> {
    let link = link(relay, attachment).await?;
    let url = link
        .thumbnail_url
        .ok_or_else(|| HttpError::Answer("no thumbnail".into()))?;
    let response = get(relay, &url).await?;
    let bytes = collect(response.into_body(), preview::MAX_THUMBNAIL_BYTES).await?;
    encoded(bytes, picker, cells).await
}

/// A body in memory, refused past `limit` bytes (the size announced).
async fn collect(mut body: hyper::body::Incoming, limit: u64) -> Result<Vec<u8>, HttpError> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if (bytes.len() + data.len()) as u64 > limit {
            return Err(HttpError::Answer(format!(
                "more than the {limit} bytes announced"
            )));
        }
        bytes.extend_from_slice(&data);
    }
    Ok(bytes)
}

/// `bytes` decoded and encoded for the terminal, in at most `cells`
/// (columns, rows), in a blocking task.
async fn encoded(
    bytes: Vec<u8>,
    picker: ratatui_image::picker::Picker,
    (columns, rows): (u16, u16),
) -> Result<Preview, HttpError> {
    let cells = ratatui::layout::Size::new(columns, rows);
    let encoded = tokio::task::spawn_blocking(move || preview::encode(&bytes, &picker, cells))
        .await
        .map_err(std::io::Error::other)?;
    encoded
        .map(|protocol| Preview(Arc::new(protocol)))
        .map_err(HttpError::Answer)
}

/// A signed link for `attachment`, then its download's answer (the body
/// still to read).
async fn fetch(
    relay: &Relay,
    attachment: &Attachment,
) -> Result<hyper::Response<hyper::body::Incoming>, HttpError> {
    let link = link(relay, attachment).await?;
    get(relay, &link.url).await
}

/// Signed links for `attachment` and its thumbnail.
async fn link(relay: &Relay, attachment: &Attachment) -> Result<FileLink, HttpError> {
    let link_path = format!("/api/files/{}/link", http::encode(&attachment.id));
    let request = relay.request(Method::GET, &link_path).body(http::empty())?;
    http::json(relay.send(request).await?, StatusCode::OK).await
}

/// The answer to a GET of `url`, a link the relay gave (the body still to
/// read).
async fn get(
    relay: &Relay,
    url: &str,
) -> Result<hyper::Response<hyper::body::Incoming>, HttpError> {
    // The link is relative to the relay; anything else is not followed.
    if !url.starts_with('/') || url.starts_with("//") {
        return Err(HttpError::Answer(format!("unexpected link {url:?}")));
    }
    let request = relay.request(Method::GET, url).body(http::empty())?;
    let response = relay.send(request).await?;
    if response.status() != StatusCode::OK {
        return Err(http::refused(response).await);
    }
    Ok(response)
}

/// The file streamed into a new file of the download folder; a partial
/// file is removed.
async fn download(
    relay: &Relay,
    attachment: &Attachment,
    folder: &Path,
    events: &mpsc::Sender<FileEvent>,
) -> Result<PathBuf, HttpError> {
    let response = fetch(relay, attachment).await?;
    let name = names::safe_name(&attachment.name);
    let folder = folder.to_owned();
    let (path, file) = tokio::task::spawn_blocking(move || names::create_unique(&folder, &name))
        .await
        .map_err(std::io::Error::other)??;
    let written = save(response.into_body(), file, attachment, events).await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&path).await;
    }
    written.map(|()| path)
}

/// Writes the body into `file`, refusing more bytes than the attachment
/// was said to have (a relay cannot fill the disk through a small file).
async fn save(
    mut body: hyper::body::Incoming,
    file: std::fs::File,
    attachment: &Attachment,
    events: &mpsc::Sender<FileEvent>,
) -> Result<(), HttpError> {
    let mut file = tokio::fs::File::from_std(file);
    let what = format!("downloading {}", attachment.name);
    let mut written = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        written += data.len() as u64;
        if written > attachment.size {
            return Err(HttpError::Answer(format!(
                "more than the {} bytes announced",
                attachment.size
            )));
        }
        file.write_all(&data).await?;
        progress(events, &what, written, attachment.size);
    }
    file.flush().await?;
    Ok(())
}

/// Hands `path` to the opener; `Err` says why it is not open (no opener
/// configured, none installed, or it failed).
async fn open(opener: &[String], path: &Path) -> Result<(), String> {
    let Some((program, args)) = opener.split_first() else {
        return Err("no opener configured".into());
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("no opener ({program} is not installed)"));
        }
        Err(error) => return Err(format!("{program} failed: {error}")),
    };
    match tokio::time::timeout(OPENER_WAIT, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("{program} failed ({status})")),
        Ok(Err(error)) => Err(format!("{program} failed: {error}")),
        // Still running: a viewer that does not hand over; it is open.
        Err(_) => Ok(()),
    }
}
