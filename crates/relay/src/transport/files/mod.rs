//! Files over HTTP: upload, a signed link, download.
//!
//! - `POST /api/files?name=N` (agents add `&conversation_id=C`), the raw
//!   bytes as body, `Authorization: Bearer` with the visitor's or the
//!   agent's token: read up to `max_file_bytes` (the upload is refused as
//!   soon as it passes it), typed from content, metadata stripped, put in
//!   the blob store (durable), then recorded; answers the `Attachment`.
//!   A `send` naming its id sends it.
//! - `GET /api/files/{id}/link`, same authorization: for who may read the
//!   file, a URL valid for [`LINK_LIFETIME`] that needs no header (an
//!   `<img src>`, a download chip).
//! - `GET /files/{id}?expires=T&sig=S`: the bytes, served so a browser
//!   never runs them (`nosniff`, a sandboxing CSP, `attachment` unless a
//!   raster image); `GET /files/{id}/thumbnail?…` with the same signature,
//!   its thumbnail (made at upload, see [`thumbnail`]) the same way.

mod content;
mod thumbnail;

pub(super) use thumbnail::DECODES_AT_ONCE;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::StreamExt as _;
use kefu_protocol::files::FileLink;
use kefu_protocol::{Attachment, AuthorKind, ErrorCode, ErrorFrame};
use serde::Deserialize;

use super::AppState;
use super::errors::{error_response, store_error};
use crate::auth::hash_agent_token;
use crate::blobs::BlobStore;
use crate::ids;
use crate::store::{FileOwner, FileReader, NewFile};

/// How long a download link works.
pub const LINK_LIFETIME: Duration = Duration::from_secs(300);
/// Longest file name kept, in characters.
const MAX_NAME_CHARS: usize = 200;
/// What a download may be used for: nothing but being shown or saved.
const DOWNLOAD_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

/// Who is calling, from `Authorization: Bearer`.
enum Caller {
    Visitor {
        visitor_id: String,
        conversation_id: Option<String>,
    },
    Agent {
        agent_id: String,
    },
}

impl Caller {
    fn reader(&self) -> FileReader<'_> {
        match self {
            Caller::Visitor {
                visitor_id,
                conversation_id,
            } => FileReader::Visitor {
                visitor_id,
                conversation_id: conversation_id.as_deref(),
            },
            Caller::Agent { agent_id } => FileReader::Agent { agent_id },
        }
    }

    fn owner(&self) -> FileOwner {
        match self {
            Caller::Visitor { visitor_id, .. } => FileOwner {
                kind: AuthorKind::Visitor,
                id: visitor_id.clone(),
            },
            Caller::Agent { agent_id } => FileOwner {
                kind: AuthorKind::Agent,
                id: agent_id.clone(),
            },
        }
    }
}

/// A refusal on its way out: boxed, as responses are large and most calls
/// succeed.
type Refusal = Box<Response>;

fn refuse(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Box::new(error_response(ErrorFrame::new(code, message)))
}

fn store_refusal(error: crate::store::StoreError, reference: &str) -> Refusal {
    Box::new(error_response(store_error(error, reference)))
}

/// Agent tokens start `kefu_`; anything else must be a visitor token.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, Refusal> {
    let unauthorized = || refuse(ErrorCode::Unauthorized, "a valid bearer token is required");
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    if token.starts_with("kefu_") {
        let agent = state
            .store
            .agent_by_token_hash(&hash_agent_token(token))
            .await
            .map_err(|error| store_refusal(error, ""))?
            .ok_or_else(unauthorized)?;
        return Ok(Caller::Agent { agent_id: agent.id });
    }
    let visitor_id = state
        .visitor_tokens
        .verify(token)
        .ok_or_else(unauthorized)?;
    let conversation_id = state
        .store
        .visitor_conversation(&visitor_id)
        .await
        .map_err(|error| store_refusal(error, ""))?;
    Ok(Caller::Visitor {
        visitor_id,
        conversation_id,
    })
}

fn blobs(state: &AppState) -> Result<&dyn BlobStore, Refusal> {
    state.blobs.as_deref().ok_or_else(|| {
        refuse(
            ErrorCode::NotFound,
            "this relay keeps no files (set files_dir)",
        )
    })
}

#[derive(Deserialize)]
pub struct UploadQuery {
    #[serde(default)]
    name: String,
    conversation_id: Option<String>,
}

pub async fn upload(
    State(state): State<AppState>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let admitted = match admit_upload(&state, &query, &headers).await {
        Ok(admitted) => admitted,
        Err(refusal) => {
            drain_declared(&state, &headers, body).await;
            return *refusal;
        }
    };
    match store_upload(&state, query, admitted, body).await {
        Ok(attachment) => (StatusCode::CREATED, Json(attachment)).into_response(),
        Err(response) => *response,
    }
}

/// Who uploads, to which conversation, as [`admit_upload`] found them.
struct Admitted<'a> {
    blobs: &'a dyn BlobStore,
    owner: FileOwner,
    conversation_id: Option<String>,
}

/// Everything checked before the body is read: the token, the
/// conversation, the rate, the declared size.
async fn admit_upload<'a>(
    state: &'a AppState,
    query: &UploadQuery,
    headers: &HeaderMap,
) -> Result<Admitted<'a>, Refusal> {
    let blobs = blobs(state)?;
    let caller = caller(state, headers).await?;
    let limits = &state.config.limits;
    let conversation_id = match &caller {
        Caller::Visitor {
            conversation_id, ..
        } => conversation_id.clone(),
        Caller::Agent { .. } => {
            let id = query.conversation_id.clone().ok_or_else(|| {
                refuse(
                    ErrorCode::BadRequest,
                    "an agent uploads to a conversation: add conversation_id",
                )
            })?;
            let found = match storable(&id) {
                Some(id) => state
                    .store
                    .conversation(id)
                    .await
                    .map_err(|error| store_refusal(error, id))?,
                None => None,
            };
            if found.is_none() {
                return Err(refuse(ErrorCode::NotFound, "conversation not found"));
            }
            Some(id)
        }
    };
    let owner = caller.owner();
    if !state.uploads.allow(&owner.id) {
        return Err(refuse(
            ErrorCode::RateLimited,
            format!(
                "at most {} uploads a minute; wait a little",
                limits.uploads_per_minute
            ),
        ));
    }
    if declared_length(headers).is_some_and(|length| length > limits.max_file_bytes as u64) {
        return Err(too_large(state));
    }
    Ok(Admitted {
        blobs,
        owner,
        conversation_id,
    })
}

/// A refusal made before the body was read must still reach a browser,
/// which sends all of the body before it reads the answer: closing on an
/// unread body resets the connection and loses the answer with it. So the
/// body is read and dropped when it is within the size any upload may
/// have (the relay's body timeout bounds how long that takes); a larger
/// one is not worth reading.
async fn drain_declared(state: &AppState, headers: &HeaderMap, body: Body) {
    let most = state.config.limits.max_file_bytes;
    if declared_length(headers).is_some_and(|length| length <= most as u64) {
        let _ = read_bounded(body, most).await;
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
}

fn too_large(state: &AppState) -> Refusal {
    refuse(
        ErrorCode::TooLarge,
        format!(
            "a file may be at most {} bytes",
            state.config.limits.max_file_bytes
        ),
    )
}

/// Reads the admitted upload, checks it, and stores it.
async fn store_upload(
    state: &AppState,
    query: UploadQuery,
    admitted: Admitted<'_>,
    body: Body,
) -> Result<Attachment, Refusal> {
    let Admitted {
        blobs,
        owner,
        conversation_id,
    } = admitted;
    let limits = &state.config.limits;
    let bytes = read_bounded(body, limits.max_file_bytes)
        .await?
        .ok_or_else(|| too_large(state))?;
    if bytes.is_empty() {
        return Err(refuse(ErrorCode::BadRequest, "the file is empty"));
    }
    let held = state
        .store
        .file_bytes(conversation_id.as_deref(), &owner)
        .await
        .map_err(|error| store_refusal(error, ""))?;
    if held + bytes.len() as u64 > limits.max_conversation_file_bytes as u64 {
        return Err(refuse(
            ErrorCode::TooLarge,
            format!(
                "this conversation holds its most files ({} bytes)",
                limits.max_conversation_file_bytes
            ),
        ));
    }
    let content = content::inspect(bytes).map_err(|refused| {
        let mut response = refuse(
            ErrorCode::BadRequest,
            format!("files of type {refused} are not accepted"),
        );
        *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        response
    })?;
    let made = thumbnail::make(&state.decoding, content.content_type, content.bytes.clone()).await;
    let attachment = Attachment {
        id: ids::new_id(),
        name: file_name(&query.name),
        size: content.bytes.len() as u64,
        content_type: content.content_type.to_owned(),
        width: content.width,
        height: content.height,
        thumbnail: made.as_ref().map(|made| made.thumbnail),
    };
    // The blobs are durable before their row exists: no row names a
    // missing blob.
    let digest = blobs.put(content.bytes).await.map_err(internal)?;
    let thumbnail_digest = match made {
        Some(made) => Some(blobs.put(made.bytes).await.map_err(internal)?),
        None => None,
    };
    // A visitor's upload is a visitor's write, in turn with the others.
    let _turn = match owner.kind {
        AuthorKind::Visitor => Some(state.visitor_writes.turn().await),
        AuthorKind::Agent | AuthorKind::System => None,
    };
    let file = NewFile {
        attachment: attachment.clone(),
        digest,
        thumbnail_digest,
        owner,
        conversation_id,
    };
    state
        .store
        .add_file(file)
        .await
        .map_err(|error| store_refusal(error, ""))?;
    Ok(attachment)
}

/// The body, or `None` as soon as it passes `most` bytes: never more than
/// that is held.
async fn read_bounded(body: Body, most: usize) -> Result<Option<Bytes>, Refusal> {
    let mut stream = body.into_data_stream();
    let mut bytes = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| refuse(ErrorCode::BadRequest, "the upload was cut off"))?;
        if bytes.len() + chunk.len() > most {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes.freeze()))
}

/// The uploader's name for the file, bounded and without path or control
/// characters; "file" when nothing is left.
fn file_name(given: &str) -> String {
    let base = given.rsplit(['/', '\\']).next().unwrap_or("");
    let name: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." {
        "file".to_owned()
    } else {
        name.to_owned()
    }
}

/// `id` if a store could hold it: PostgreSQL's text cannot hold U+0000,
/// and an id from a query string or a path that has one names nothing.
fn storable(id: &str) -> Option<&str> {
    (!id.contains('\0')).then_some(id)
}

fn internal(error: impl std::fmt::Display) -> Refusal {
    tracing::error!(%error, "file storage failed");
    refuse(
        ErrorCode::Internal,
        "the relay could not store this file; retry later",
    )
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| now.as_secs())
}

pub async fn link(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&state, &headers).await {
        Ok(caller) => caller,
        Err(response) => return *response,
    };
    let file = match storable(&id) {
        Some(id) => match state.store.file(id).await {
            Ok(file) => file,
            Err(error) => return *store_refusal(error, id),
        },
        None => None,
    };
    // Another conversation's file is "not found": ids are not confirmed.
    let Some(file) = file.filter(|file| file.readable_by(caller.reader())) else {
        return *refuse(ErrorCode::NotFound, "file not found");
    };
    let expires_at = now_seconds() + LINK_LIFETIME.as_secs();
    let sig = state.file_links.sign(&id, expires_at);
    let signed = format!("expires={expires_at}&sig={sig}");
    Json(FileLink {
        url: format!("/files/{id}?{signed}"),
        expires_at,
        thumbnail_url: file
            .attachment
            .thumbnail
            .map(|_| format!("/files/{id}/thumbnail?{signed}")),
    })
    .into_response()
}

#[derive(Deserialize)]
pub struct DownloadQuery {
    expires: u64,
    sig: String,
}

pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    serve(&state, &id, &query, Part::File).await
}

pub async fn download_thumbnail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    serve(&state, &id, &query, Part::Thumbnail).await
}

/// Which blob of a file a link fetches.
#[derive(Clone, Copy)]
enum Part {
    File,
    Thumbnail,
}

async fn serve(state: &AppState, id: &str, query: &DownloadQuery, part: Part) -> Response {
    if !state
        .file_links
        .verify(id, query.expires, &query.sig, now_seconds())
    {
        return *refuse(
            ErrorCode::Forbidden,
            "this link is not valid or has expired; ask for a new one",
        );
    }
    let blobs = match blobs(state) {
        Ok(blobs) => blobs,
        Err(response) => return *response,
    };
    let file = match state.store.file(id).await {
        Ok(Some(file)) => file,
        Ok(None) => return *refuse(ErrorCode::NotFound, "file not found"),
        Err(error) => return *store_refusal(error, id),
    };
    let attachment = &file.attachment;
    let (digest, content_type, name) = match part {
        Part::File => (
            &file.digest,
            attachment.content_type.as_str(),
            attachment.name.clone(),
        ),
        Part::Thumbnail => match &file.thumbnail_digest {
            Some(digest) => (digest, "image/jpeg", format!("{}.jpg", attachment.name)),
            None => return *refuse(ErrorCode::NotFound, "this file has no thumbnail"),
        },
    };
    let bytes = match blobs.get(digest).await {
        Ok(bytes) => bytes,
        Err(error) => return *internal(error),
    };
    let disposition = content::disposition(content_type, &name);
    let mut response = Body::from(bytes).into_response();
    let headers = response.headers_mut();
    let mut set = |name, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    let content_type = match content_type {
        "text/plain" => "text/plain; charset=utf-8",
        other => other,
    };
    set(header::CONTENT_TYPE, content_type);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::CONTENT_SECURITY_POLICY, DOWNLOAD_CSP);
    set(header::CONTENT_DISPOSITION, &disposition);
    set(header::CACHE_CONTROL, "private, max-age=300");
    set(header::REFERRER_POLICY, "no-referrer");
    response
}
