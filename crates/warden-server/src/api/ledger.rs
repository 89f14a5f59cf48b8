//! `/v1/ledger/…`: what an outside verifier needs: the public key, signed checkpoints, the raw
//! entries, and inclusion and consistency proofs. The key and checkpoints are public (they reveal
//! nothing but hashes); entries and proofs need an admin token.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use warden_core::Timestamp;
use warden_ledger::writer::with_stored_hashes;
use warden_ledger::{ConsistencyProof, Hash, InclusionProof};
use warden_store::StoredCheckpoint;

use super::extract::AdminCaller;
use super::problem::{ApiError, Problem};
use super::AppState;

const MAX_ENTRIES: u32 = 10_000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(key))
        .routes(routes!(latest_checkpoint))
        .routes(routes!(list_checkpoints))
        .routes(routes!(checkpoint_at))
        .routes(routes!(entries))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
        .routes(routes!(hash_value))
}

/// A value to hash.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HashRequest {
    /// The sensitive value, exactly as it would appear in an action.
    value: String,
}

/// Its keyed hash, as events store it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HashAnswer {
    /// `hmac-sha256:<hex>`
    pub hash: String,
}

/// The keyed hash that events store in place of a sensitive value, to search for it.
#[utoipa::path(post, path = "/v1/ledger/hash", tag = "ledger", request_body = HashRequest,
    responses((status = 200, body = HashAnswer)))]
async fn hash_value(
    State(app): State<AppState>,
    _who: AdminCaller,
    super::extract::ApiJson(req): super::extract::ApiJson<HashRequest>,
) -> Json<HashAnswer> {
    Json(HashAnswer {
        hash: app.redactor.hash(req.value.as_bytes()),
    })
}

fn note(cp: StoredCheckpoint) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        cp.note,
    )
}

/// The checkpoint signing key, as a signed-note verifier key string.
#[utoipa::path(get, path = "/v1/ledger/key", tag = "ledger", security(()),
    responses((status = 200, content_type = "text/plain", body = String)))]
async fn key(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", app.verifier.to_key_string()),
    )
}

/// The latest signed checkpoint (C2SP tlog-checkpoint signed note).
#[utoipa::path(get, path = "/v1/ledger/checkpoint", tag = "ledger", security(()),
    responses((status = 200, content_type = "text/plain", body = String), (status = 404, body = Problem)))]
async fn latest_checkpoint(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let cp = app
        .store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| ApiError::NotFound("signed checkpoint (none yet: one is signed every `ledger.checkpoint_every` entries or `ledger.checkpoint_interval`)".into()))?;
    Ok(note(cp))
}

/// A stored checkpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    /// Tree size it commits to.
    pub size: u64,
    /// The signed note.
    pub note: String,
    /// When it was signed.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// Every signed checkpoint, smallest first.
#[utoipa::path(get, path = "/v1/ledger/checkpoints", tag = "ledger", security(()),
    responses((status = 200, body = Vec<CheckpointView>)))]
async fn list_checkpoints(
    State(app): State<AppState>,
) -> Result<Json<Vec<CheckpointView>>, ApiError> {
    let all = app.store.checkpoints().await?;
    Ok(Json(
        all.into_iter()
            .map(|c| CheckpointView {
                size: c.size,
                note: c.note,
                created_at: c.created_at,
            })
            .collect(),
    ))
}

/// The checkpoint signed at exactly this tree size.
#[utoipa::path(get, path = "/v1/ledger/checkpoints/{size}", tag = "ledger", security(()),
    params(("size" = u64, Path, description = "Tree size")),
    responses((status = 200, content_type = "text/plain", body = String), (status = 404, body = Problem)))]
async fn checkpoint_at(
    State(app): State<AppState>,
    Path(size): Path<u64>,
) -> Result<impl IntoResponse, ApiError> {
    let cp = app
        .store
        .checkpoint(size)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("checkpoint at size {size}")))?;
    Ok(note(cp))
}

/// Paging through raw entries.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EntryRange {
    /// First position (default 0).
    from: Option<u64>,
    /// Page size (default and maximum 10000).
    limit: Option<u32>,
}

/// One ledger entry exactly as hashed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntryView {
    /// Position.
    pub seq: u64,
    /// The canonical bytes (UTF-8 JSON) whose leaf hash is in the tree.
    pub body: String,
    /// `SHA-256(0x00 || body)`, hex.
    pub leaf_hash: String,
    /// Whether retention removed the body (then `body` is empty; `leaf_hash` still verifies).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pruned: bool,
}

/// A page of raw entries.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntryPage {
    /// Entries in position order.
    pub entries: Vec<EntryView>,
    /// The `from` of the next page; absent at the end.
    pub next: Option<u64>,
}

/// Raw ledger entries, for export and independent verification.
#[utoipa::path(get, path = "/v1/ledger/entries", tag = "ledger", params(EntryRange),
    responses((status = 200, body = EntryPage)))]
async fn entries(
    State(app): State<AppState>,
    _who: AdminCaller,
    Query(range): Query<EntryRange>,
) -> Result<Json<EntryPage>, ApiError> {
    let limit = range.limit.unwrap_or(MAX_ENTRIES).clamp(1, MAX_ENTRIES);
    let entries = app.store.entries(range.from.unwrap_or(0), limit).await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq + 1))
        .flatten();
    Ok(Json(EntryPage {
        entries: entries
            .into_iter()
            .map(|e| EntryView {
                seq: e.seq,
                body: String::from_utf8_lossy(&e.body).into_owned(),
                leaf_hash: Hash(e.leaf_hash).to_hex(),
                pruned: e.pruned_at.is_some(),
            })
            .collect(),
        next,
    }))
}

/// Which inclusion proof.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The entry's position.
    seq: u64,
    /// Tree size to prove against (default: the latest checkpoint's).
    size: Option<u64>,
}

/// An inclusion proof with the checkpoint it is relative to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InclusionAnswer {
    /// The proof (RFC 9162 audit path).
    #[schema(value_type = Object)]
    pub proof: InclusionProof,
    /// The entry's leaf hash, hex.
    pub leaf_hash: String,
    /// The signed checkpoint at `proof.tree_size`, when one exists.
    pub checkpoint: Option<String>,
}

async fn size_or_latest(
    app: &AppState,
    size: Option<u64>,
) -> Result<(u64, Option<String>), ApiError> {
    match size {
        Some(s) => Ok((s, app.store.checkpoint(s).await?.map(|c| c.note))),
        None => {
            let cp = app
                .store
                .latest_checkpoint()
                .await?
                .ok_or_else(|| ApiError::NotFound("signed checkpoint (none yet: one is signed every `ledger.checkpoint_every` entries or `ledger.checkpoint_interval`)".into()))?;
            Ok((cp.size, Some(cp.note)))
        }
    }
}

/// How many entries the ledger holds.
pub(crate) async fn tree_size(app: &AppState) -> Result<u64, ApiError> {
    Ok(app.store.last_seq().await?.map_or(0, |s| s + 1))
}

fn out_of_range(field: &str, message: String) -> ApiError {
    ApiError::Validation {
        field: field.to_owned(),
        message,
    }
}

/// Proves that an entry is in the tree of a given size.
#[utoipa::path(get, path = "/v1/ledger/proof/inclusion", tag = "ledger", params(InclusionQuery),
    responses((status = 200, body = InclusionAnswer), (status = 400, body = Problem)))]
async fn inclusion(
    State(app): State<AppState>,
    _who: AdminCaller,
    Query(q): Query<InclusionQuery>,
) -> Result<Json<InclusionAnswer>, ApiError> {
    let (size, checkpoint) = size_or_latest(&app, q.size).await?;
    let stored = tree_size(&app).await?;
    if size > stored {
        return Err(out_of_range(
            "size",
            format!("the ledger has {stored} entries, not {size}"),
        ));
    }
    if q.seq >= size {
        return Err(out_of_range(
            "seq",
            format!("must be below the tree size {size}"),
        ));
    }
    let proof = with_stored_hashes(&*app.store, |r| InclusionProof::prove(q.seq, size, r)).await?;
    let leaf = app.store.leaf_hashes(&[q.seq]).await?;
    Ok(Json(InclusionAnswer {
        proof,
        leaf_hash: Hash(leaf[0]).to_hex(),
        checkpoint,
    }))
}

/// Which consistency proof.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older tree size.
    old: u64,
    /// The newer tree size (default: the latest checkpoint's).
    new: Option<u64>,
}

/// Proves that the tree of size `old` is a prefix of the tree of size `new`.
#[utoipa::path(get, path = "/v1/ledger/proof/consistency", tag = "ledger", params(ConsistencyQuery),
    responses((status = 200, body = Object), (status = 400, body = Problem)))]
async fn consistency(
    State(app): State<AppState>,
    _who: AdminCaller,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let (new, _) = size_or_latest(&app, q.new).await?;
    let stored = tree_size(&app).await?;
    if new > stored {
        return Err(out_of_range(
            "new",
            format!("the ledger has {stored} entries, not {new}"),
        ));
    }
    if q.old > new {
        return Err(out_of_range(
            "old",
            format!("must not exceed the newer size {new}"),
        ));
    }
    let proof = with_stored_hashes(&*app.store, |r| ConsistencyProof::prove(q.old, new, r)).await?;
    Ok(Json(proof))
}
