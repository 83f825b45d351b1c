//! `Idempotency-Key` (IETF draft-ietf-httpapi-idempotency-key-header): a
//! client that retries a write with the same key gets the first answer
//! again, marked `Idempotent-Replayed: true`, and nothing changes twice.
//!
//! The layer ([`guard`]) reads a keyed write's body and hands the handler a
//! [`Keyed`] request (or a [`BadKey`], or the body's [`Unkeyable`] error).
//! Once the caller's role is admitted, [`Ctx`](super::auth::Ctx) claims the
//! key in this process ([`admit`]: 409 while another request holds it).
//! The handler's write takes the key's lock (409 while another process
//! holds it) and stores the answer in the transaction of the change: when
//! an answer is kept for the key already, the transaction is rolled back
//! and that answer sent again (or 422 if it answered another request).
//! After a crash there is the change with its answer, or neither. An answer
//! that is an error changes nothing and is not stored: a retry is answered
//! afresh. A keyed request answered without its write deciding on the key
//! (a retry refused before it writes, as the change it repeats is made
//! already) is looked up after the handler ([`settled`]): the kept answer,
//! or 422, replaces the handler's.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::store::idempotency::{self as store, StoredAnswer};

use super::audit::{Note, Seen};
use super::auth;
use super::error::ApiError;
use super::State;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The longest key taken, in characters.
pub const MAX_KEY_LENGTH: usize = 255;

/// The keys [`parse_key`] takes, as a JSON Schema pattern: bare printable
/// ASCII without `"` and `\`, or the same with spaces in quotes.
pub const KEY_PATTERN: &str = r#"^(?:[!#-\[\]-~]{1,255}|"[ !#-\[\]-~]{1,255}")$"#;

/// Seconds a client is asked to wait before retrying a key in flight.
pub const IN_FLIGHT_RETRY_AFTER: u64 = 1;

/// The key a header value carries, or `None` when it is not one. The draft
/// makes the field a Structured Field String (`"…"`); a bare key is taken
/// too, as most clients send it. Printable ASCII, 1 to [`MAX_KEY_LENGTH`]
/// characters, without the escapes a quoted string may carry.
pub fn parse_key(value: &[u8]) -> Option<String> {
    let value = value.trim_ascii();
    let (key, allowed): (&[u8], fn(u8) -> bool) = match value {
        [b'"', inner @ .., b'"'] => {
            (inner, |b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        }
        bare => (bare, |b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
    };
    if key.is_empty() || key.len() > MAX_KEY_LENGTH || !key.iter().all(|&b| allowed(b)) {
        return None;
    }
    String::from_utf8(key.to_vec()).ok()
}

/// What a request sent with a key is, given the answer stored for the key.
#[derive(Debug, PartialEq, Eq)]
pub enum Repeat {
    /// Never answered (or the answer expired): the request runs.
    First,
    /// The same request again: answered with the stored answer.
    Same(StoredAnswer),
    /// The key answered a different request: 422 `idempotency_key_reused`.
    Reused,
}

/// Compares the request's `fingerprint` with the answer stored for its key.
pub fn repeat(stored: Option<StoredAnswer>, fingerprint: &str) -> Repeat {
    match stored {
        None => Repeat::First,
        Some(answer) if answer.fingerprint == fingerprint => Repeat::Same(answer),
        Some(_) => Repeat::Reused,
    }
}

/// SHA-256, hex, of who sent what where: the caller, the method, the path
/// with its query, and the body.
pub fn fingerprint(caller: &str, method: &Method, path: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [caller.as_bytes(), method.as_str().as_bytes(), path.as_bytes()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update(body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A request sent with a valid key, as the layer hands it to the handler.
#[derive(Clone, Debug)]
pub struct Keyed {
    pub caller: String,
    pub key: String,
    pub fingerprint: String,
    /// How far the request got, shared by the handler's clones.
    progress: Arc<Progress>,
}

/// How far a keyed request got: its key claimed once its role was
/// admitted, and decided on by its write's transaction (answered first, or
/// found answered already).
#[derive(Debug, Default)]
struct Progress {
    admitted: AtomicBool,
    decided: AtomicBool,
}

impl Keyed {
    fn new(caller: String, key: String, fingerprint: String) -> Self {
        Self { caller, key, fingerprint, progress: Arc::default() }
    }

    /// The write's transaction has decided on the key: it stored its answer
    /// with the change, or found one kept for the key already.
    pub fn decided(&self) {
        self.progress.decided.store(true, Ordering::Relaxed);
    }

    /// Whether the request's answer must be checked against the answer kept
    /// for its key: its role was admitted, and its write did not decide.
    fn undecided(&self) -> bool {
        self.progress.admitted.load(Ordering::Relaxed)
            && !self.progress.decided.load(Ordering::Relaxed)
    }

    /// The key of the PostgreSQL advisory lock this key's writers share.
    pub fn lock(&self) -> i32 {
        let digest = Sha256::new().chain_update(&self.caller).chain_update(&self.key).finalize();
        i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
    }
}

/// A request whose `Idempotency-Key` is not a key: the handler answers 400
/// once the caller's role is admitted (authorization before validation).
#[derive(Clone, Copy, Debug)]
pub struct BadKey;

/// A keyed request whose body could not be read whole (too large, too
/// slow): the handler answers this error once the role is admitted, rather
/// than make the change with no answer kept for a retry.
#[derive(Clone, Debug)]
pub struct Unkeyable(pub ApiError);

/// The operations that change nothing and keep no answer: a key sent to
/// them is ignored.
pub const DRY_RUNS: &[&str] = &["plan_course"];

/// The keys this process is answering now, per caller.
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashSet<(String, String)>>);

impl InFlight {
    /// Claims `caller`'s `key` until the [`Claim`] is dropped; `None` while
    /// another request holds it.
    pub fn claim(self: &Arc<Self>, caller: &str, key: &str) -> Option<Claim> {
        let id = (caller.to_owned(), key.to_owned());
        let inserted = self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone());
        // Built only when taken: a dropped claim releases its key.
        inserted.then(|| Claim { keys: self.clone(), id })
    }
}

/// A key this process is answering; released when dropped.
#[derive(Debug)]
pub struct Claim {
    keys: Arc<InFlight>,
    id: (String, String),
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.keys.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

/// The status of a stored answer.
pub fn status_of(answer: &StoredAnswer) -> StatusCode {
    u16::try_from(answer.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK)
}

/// The answer stored for a key, sent again.
pub fn replayed(answer: &StoredAnswer) -> HttpResponse {
    let mut response = HttpResponse::build(status_of(answer));
    response.insert_header((IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")));
    if let Some(location) = &answer.location {
        response.insert_header((header::LOCATION, location.as_str()));
    }
    if answer.body.is_empty() {
        return response.finish();
    }
    response.content_type("application/json").body(answer.body.clone())
}

/// What the change a stored answer answered touched, for the audit record
/// of the answer sent again.
pub fn seen_by(answer: &StoredAnswer) -> Seen {
    let words = |text: &str| text.split_whitespace().map(str::to_owned).collect();
    Seen::of(words(&answer.patient_ids), words(&answer.records))
}

/// Claims the key of `keyed`, whose caller's role is admitted, until the
/// request is answered: 409 while another request of this process holds it.
pub fn admit(in_flight: &Arc<InFlight>, keyed: &Keyed) -> Result<Claim, ApiError> {
    let claim = in_flight
        .claim(&keyed.caller, &keyed.key)
        .ok_or(ApiError::IdempotencyKeyInFlight { retry_after: IN_FLIGHT_RETRY_AFTER })?;
    keyed.progress.admitted.store(true, Ordering::Relaxed);
    Ok(claim)
}

/// The answer to a keyed request whose write did not decide on its key
/// (see the module's documentation): the handler's `response`, unless the
/// key has an answer kept, sent again in its place (noted on the trail as
/// the first answer's disclosure), or 422 when it answered another request.
/// A request that fails before its write, or whose write is refused, costs
/// this one lookup; a write that commits costs none.
async fn settled(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let keyed = response.request().extensions().get::<Keyed>().cloned();
    let Some(keyed) = keyed.filter(Keyed::undecided) else {
        return response;
    };
    let Some(state) = response.request().app_data::<State>().cloned() else {
        return response;
    };
    let (caller, key, now) = (keyed.caller.clone(), keyed.key.clone(), state.now());
    let stored = match state.db(move |conn| store::find(conn, &caller, &key, now)).await {
        Ok(stored) => stored,
        Err(error) => {
            // The handler's answer stands: it changed nothing.
            log::warn!("could not look up the answer kept for an idempotency key: {error}");
            return response;
        }
    };
    let kept = match repeat(stored, &keyed.fingerprint) {
        Repeat::First => return response,
        Repeat::Same(answer) => {
            if let Some(note) = Note::of(response.request()) {
                note.saw_again(seen_by(&answer));
            }
            replayed(&answer)
        }
        Repeat::Reused => ApiError::IdempotencyKeyReused.error_response(),
    };
    response.into_response(kept)
}

/// The layer: see the module's documentation.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let writes =
        matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    // Only an operation of the contract (the audit trail notes each) that
    // changes something: elsewhere the key is ignored, and a path or method
    // with no operation is answered 404 or 405, key or not.
    let operation = Note::of(req.request()).map(|note| note.operation_id());
    let keyed_operation = operation.is_some_and(|id| !DRY_RUNS.contains(&id.as_str()));
    if !writes || !keyed_operation || !req.headers().contains_key(IDEMPOTENCY_KEY) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let mut sent = req.headers().get_all(IDEMPOTENCY_KEY);
    let key = match (sent.next(), sent.next()) {
        (Some(value), None) => parse_key(value.as_bytes()),
        _ => None,
    };
    let Some(key) = key else {
        req.extensions_mut().insert(BadKey);
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let Some(state) = req.app_data::<State>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // A request without a valid token is the handler's to refuse (401).
    let Ok(caller) = auth::authenticate(req.request(), &state) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let limit = state.settings.max_body_bytes;
    match read_body(&mut req, limit, state.settings.body_timeout).await {
        Ok(body) => {
            let path = req.uri().path_and_query().map_or_else(|| req.path(), |p| p.as_str());
            let fingerprint = fingerprint(&caller.label(), req.method(), path, &body);
            req.extensions_mut().insert(Keyed::new(caller.label(), key, fingerprint));
        }
        Err(error) => {
            req.extensions_mut().insert(Unkeyable(error));
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
    }
    Ok(settled(next.call(req).await?.map_into_boxed_body()).await)
}

/// Deletes the expired answers now and then every hour, for as long as the
/// server runs; a failure is logged and tried again at the next hour.
pub async fn prune_hourly(state: State) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        let now = state.now();
        let pruned = state
            .db(move |conn| crate::store::write_transaction(conn, |tx| store::prune(tx, now)))
            .await;
        match pruned {
            Ok(0) => {}
            Ok(n) => log::info!("deleted {n} expired idempotency key answers"),
            Err(e) => log::warn!("could not delete expired idempotency key answers: {e}"),
        }
        let pruned = state
            .db(move |conn| {
                crate::store::write_transaction(conn, |tx| {
                    crate::store::clients::prune_assertions(tx, now)
                })
            })
            .await;
        if let Err(e) = pruned {
            log::warn!("could not delete the `jti`s of expired client assertions: {e}");
        }
    }
}

/// Reads the whole request body, and puts it back for the handler (what
/// was read ahead of the rest). An error, as the handler's `Json` would
/// answer it, when the body is declared or found longer than `limit`, has
/// not arrived within `timeout`, or cannot be read.
async fn read_body(
    req: &mut ServiceRequest,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk
                .map_err(|_| ApiError::Malformed("the request body could not be read".into()))?;
            body.extend_from_slice(&chunk);
            if body.len() > limit {
                return Err(ApiError::PayloadTooLarge(limit));
            }
        }
        Ok(())
    };
    let read = match tokio::time::timeout(timeout, read).await {
        Ok(read) => read,
        Err(_elapsed) => Err(ApiError::RequestTimeout(timeout)),
    };
    let body = body.freeze();
    let ahead = futures_util::stream::once(std::future::ready(Ok::<_, PayloadError>(body.clone())));
    let rest: Payload = payload;
    req.set_payload(Payload::Stream { payload: Box::pin(ahead.chain(rest)) });
    read.map(|()| body)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDateTime;

    use super::*;

    #[test]
    fn which_header_values_are_keys() {
        let long = "k".repeat(MAX_KEY_LENGTH);
        let too_long = "k".repeat(MAX_KEY_LENGTH + 1);
        #[rustfmt::skip]
        let table: [(&str, Option<&str>); 12] = [
            ("8e03978e-40d5-43e8-bc93-6894a57f9324", Some("8e03978e-40d5-43e8-bc93-6894a57f9324")),
            ("\"8e03978e-40d5\"", Some("8e03978e-40d5")),   // the draft's sf-string
            ("  order-17  ", Some("order-17")),              // optional whitespace around
            ("\"a key with spaces\"", Some("a key with spaces")),
            ("a key with spaces", None),                    // bare: no spaces
            ("", None),
            ("\"\"", None),
            ("\"a\\\"b\"", None),                           // escapes are not taken
            ("caf\u{e9}", None),                            // ASCII only
            ("tab\there", None),
            (long.as_str(), Some(long.as_str())),
            (too_long.as_str(), None),
        ];
        for (value, expected) in table {
            assert_eq!(parse_key(value.as_bytes()).as_deref(), expected, "{value:?}");
        }
    }

    fn answer(fingerprint: &str) -> StoredAnswer {
        let at = NaiveDateTime::default();
        StoredAnswer {
            caller: "scheduler:s-1".into(),
            idempotency_key: "k".into(),
            fingerprint: fingerprint.into(),
            status: 201,
            location: Some("/v1/patients/p".into()),
            body: "{}".into(),
            patient_ids: String::new(),
            records: String::new(),
            created_at: at,
            expires_at: at,
        }
    }

    #[test]
    fn a_key_in_flight_is_claimed_once_until_released() {
        let in_flight = Arc::new(InFlight::default());
        let first = in_flight.claim("scheduler:s-1", "k");
        assert!(first.is_some());
        // Refused, and the refusal does not release the first claim.
        assert!(in_flight.claim("scheduler:s-1", "k").is_none());
        assert!(in_flight.claim("scheduler:s-1", "k").is_none());
        assert!(in_flight.claim("scheduler:s-2", "k").is_some());
        drop(first);
        assert!(in_flight.claim("scheduler:s-1", "k").is_some());
    }

    #[test]
    fn a_key_is_first_repeated_or_reused() {
        assert_eq!(repeat(None, "f1"), Repeat::First);
        assert_eq!(repeat(Some(answer("f1")), "f1"), Repeat::Same(answer("f1")));
        assert_eq!(repeat(Some(answer("f1")), "f2"), Repeat::Reused);
    }

    #[test]
    fn the_fingerprint_tells_apart_caller_method_path_and_body() {
        let base = fingerprint("scheduler:s-1", &Method::POST, "/v1/patients", b"{}");
        assert_eq!(base, fingerprint("scheduler:s-1", &Method::POST, "/v1/patients", b"{}"));
        for other in [
            fingerprint("scheduler:s-2", &Method::POST, "/v1/patients", b"{}"),
            fingerprint("scheduler:s-1", &Method::PATCH, "/v1/patients", b"{}"),
            fingerprint("scheduler:s-1", &Method::POST, "/v1/rooms", b"{}"),
            fingerprint("scheduler:s-1", &Method::POST, "/v1/patients", b"{ }"),
            // Parts are length-prefixed: moving a byte from one to the next differs.
            fingerprint("scheduler:s-1/", &Method::POST, "v1/patients", b"{}"),
        ] {
            assert_ne!(base, other);
        }
    }
}
