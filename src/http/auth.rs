//! Bearer JWT authentication (RFC 7519, RFC 8725): our own HS256 tokens
//! (`JWT_SECRET`), our ES256 access tokens for backend clients
//! ([`Signer`]), and identity providers' tokens ([`Issuer`]); `sub`, `iss`,
//! `aud`, `exp` and `iat` required, a bounded lifetime, no critical header
//! extension and a JWT `typ`. Handlers take a [`Caller`] and declare the
//! roles they admit; a token with scopes is held to them too.

use std::collections::HashMap;
use std::future::{ready, Ready};

use std::marker::PhantomData;
use std::sync::Mutex;

use actix_web::http::{header, StatusCode};
use actix_web::{dev::Payload, web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::Settings;
use crate::domain::access::{self, Role};
use crate::domain::audit::AuditEvent;
use crate::domain::client::Client;
use crate::domain::events;
use crate::domain::scopes::{self, Scopes};
use crate::store::idempotency::StoredAnswer;
use crate::store::{self, retrying, write_transaction, DbConnection, StoreError};

use super::audit::{self, Note, Seen, Touched};
use super::conditional::{Precondition, Tags};
use super::error::ApiError;
use super::idempotency::{self, BadKey, Claim, Keyed, Repeat, Unkeyable};
use super::issuers::Issuer;
use super::signing::{self, Signer};
use super::{Answer, AppState};

/// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: u64 = 30;

/// Verified tokens remembered at most, before the memory starts afresh.
const VERIFIED_CACHE_SIZE: usize = 10_000;

/// Signs and checks tokens with the configured secret, issuer and audience.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    /// The longest a token may live, `exp` − `iat`, in seconds.
    max_lifetime_seconds: u64,
    /// Tokens that passed every check, with their `exp`: a client sends the
    /// same token on every request, and verifying it (base64, JSON, HMAC)
    /// was a sixth of a patient read's CPU (callgrind). A hit needs the
    /// whole token byte for byte, so it cannot be forged, and `exp` is
    /// checked again on every hit. Every other check holds for the token
    /// once it has passed: the header and the claims cannot change, and an
    /// `iat` that was not in the future stays so.
    /// A provider's token is remembered with its issuer and the generation
    /// of the issuer's key set it was verified under: once the set changes
    /// (a key withdrawn), it is verified again.
    verified: Mutex<HashMap<String, Verified>>,
    /// The identity providers whose tokens are taken (`TRUSTED_ISSUERS_FILE`).
    issuers: Vec<Issuer>,
    /// Our own signing key, for backend clients' access tokens; none when
    /// no `SIGNING_KEY_FILE` is set.
    signer: Option<Signer>,
    /// How long an access token lives, in seconds.
    access_token_lifetime: u64,
}

impl JwtKeys {
    pub fn new(settings: &Settings, signer: Option<Signer>) -> Self {
        let secret = settings.jwt_secret.expose().as_bytes();
        // Pinned to HS256: a token naming any other algorithm, `none`
        // included, fails before its signature is looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.jwt_issuer]);
        validation.set_audience(&[&settings.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            max_lifetime_seconds: u64::from(settings.jwt_max_lifetime_minutes) * 60,
            verified: Mutex::new(HashMap::new()),
            issuers: settings.trusted_issuers.iter().map(Issuer::new).collect(),
            signer,
            access_token_lifetime: u64::from(settings.access_token_lifetime_seconds),
        }
    }

    /// Our signing key, when access tokens are issued.
    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// An access token for `client`, scoped to `scopes` (within its own),
    /// and the seconds it lives; `None` when no signing key is set.
    pub fn issue_access_token(
        &self,
        client: &Client,
        scopes: &Scopes,
        now: DateTime<Utc>,
    ) -> Option<Result<(String, u64), jsonwebtoken::errors::Error>> {
        let signer = self.signer.as_ref()?;
        let iat = now.timestamp();
        let claims = AccessClaims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: &client.id,
            client_id: &client.id,
            role: client.role,
            scope: scopes.to_string(),
            iat,
            exp: iat.saturating_add_unsigned(self.access_token_lifetime),
            jti: uuid::Uuid::now_v7().to_string(),
        };
        Some(signer.sign(&claims).map(|token| (token, self.access_token_lifetime)))
    }

    /// A signed token for `role` and `subject`, valid until `expires`.
    pub fn issue(
        &self,
        role: Role,
        subject: &str,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: subject.to_owned(),
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now.timestamp(),
            exp: expires.timestamp(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The caller a token names, if the token is valid now.
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Ok(verified) = self.verified.lock() {
            if let Some((caller, exp, keys)) = verified.get(token) {
                // The library's own rule: expired once `exp` is more than
                // the leeway in the past.
                let current = keys.is_none_or(|(i, generation)| {
                    self.issuers.get(i).is_some_and(|issuer| issuer.generation() == generation)
                });
                if current && exp.saturating_add(self.validation.leeway) >= now {
                    return Ok(caller.clone());
                }
            }
        }
        let (caller, exp, keys) = self.verify_uncached(token)?;
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_CACHE_SIZE {
                verified.clear();
            }
            verified.insert(token.to_owned(), (caller.clone(), exp, keys));
        }
        Ok(caller)
    }

    /// [`Self::verify`] without its memory of verified tokens: what the
    /// first request with a token costs (`make bench` measures it).
    pub fn verify_fresh(&self, token: &str) -> Result<Caller, ApiError> {
        self.verify_uncached(token).map(|(caller, _, _)| caller)
    }

    /// Our own HS256 tokens with `JWT_SECRET`; any other algorithm from a
    /// trusted issuer, with its keys ([`Issuer`]). Then the checks every
    /// token gets.
    fn verify_uncached(&self, token: &str) -> Result<Verified, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::Unauthorized("the token is not valid"))?;
        check_header(&header)?;
        let mut access = false;
        let (claims, issuer) = if header.alg == Algorithm::HS256 {
            let data = decode::<Map<String, Value>>(token, &self.decoding, &self.validation)
                .map_err(invalid)?;
            (data.claims, None)
        } else {
            // Which issuer's keys to try: the `iss` the token claims, read
            // before its signature is checked, then checked with the keys.
            let claimed = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token)
                .map_err(|_| ApiError::Unauthorized("the token is not valid"))?;
            let name = claimed.claims.get("iss").and_then(Value::as_str).unwrap_or_default();
            if name == self.issuer {
                access = true;
                (self.verify_access_token(token, &header)?, None)
            } else {
                let (index, issuer) = self
                    .issuers
                    .iter()
                    .enumerate()
                    .find(|(_, issuer)| issuer.name() == name)
                    .ok_or(ApiError::Unauthorized(
                        "the token's issuer is not one this API trusts",
                    ))?;
                // The generation before verifying: a change meanwhile verifies again.
                let generation = issuer.generation();
                let claims = issuer.verify(token, &header, self.validation.leeway)?;
                (claims, Some((index, generation, issuer)))
            }
        };
        let keys = issuer.map(|(index, generation, _)| (index, generation));
        let issuer = issuer.map(|(_, _, issuer)| issuer);
        // The library has checked the signature, `exp`, `nbf`, and that
        // `iss` and `aud` name ours; it also takes an array for `iss`, and
        // knows nothing of `iat`.
        if !claims.get("iss").is_some_and(Value::is_string) {
            return Err(ApiError::Unauthorized("the token's `iss` must be a string"));
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(_)) => true,
            Some(Value::Array(items)) => items.iter().all(Value::is_string),
            _ => false,
        };
        if !audience_ok {
            return Err(ApiError::Unauthorized(
                "the token's `aud` must be a string or an array of strings",
            ));
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(ApiError::Unauthorized("the token's `exp` must be whole seconds"))?;
        let iat = match claims.get("iat") {
            None => return Err(ApiError::Unauthorized("the token has no `iat` (issued at)")),
            Some(iat) => iat
                .as_u64()
                .ok_or(ApiError::Unauthorized("the token's `iat` must be whole seconds"))?,
        };
        let now = jsonwebtoken::get_current_timestamp();
        if iat > now.saturating_add(self.validation.leeway) {
            return Err(ApiError::Unauthorized("the token's `iat` is in the future"));
        }
        if exp.saturating_sub(iat) > self.max_lifetime_seconds {
            return Err(ApiError::Unauthorized(
                "the token lives longer (`exp` - `iat`) than JWT_MAX_LIFETIME_MINUTES allows",
            ));
        }
        let role = match issuer {
            Some(issuer) => issuer.role(&claims)?,
            None => claims
                .get("role")
                .and_then(Value::as_str)
                .and_then(Role::parse)
                .ok_or(ApiError::Unauthorized("the token names an unknown role"))?,
        };
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|sub| !sub.trim().is_empty())
            .ok_or(ApiError::Unauthorized("the token has an empty subject"))?;
        let issuer = issuer.map(|issuer| issuer.name().to_owned());
        let (client_id, scopes) = if access {
            let scopes = claims
                .get("scope")
                .and_then(Value::as_str)
                .and_then(|scope| Scopes::parse(scope).ok())
                .ok_or(ApiError::Unauthorized("the access token's `scope` is not valid"))?;
            (Some(subject.to_owned()), Some(scopes))
        } else {
            (None, None)
        };
        let caller = Caller { subject: subject.to_owned(), role, issuer, client_id, scopes };
        Ok((caller, exp, keys))
    }

    /// Our own access token: ES256 with a key of ours (current or retired),
    /// `iss` and `aud` ours.
    fn verify_access_token(
        &self,
        token: &str,
        header: &Header,
    ) -> Result<Map<String, Value>, ApiError> {
        let signer = self
            .signer
            .as_ref()
            .ok_or(ApiError::Unauthorized("this server issues no access tokens"))?;
        if header.alg != signing::ALGORITHM {
            return Err(ApiError::Unauthorized(
                "the token's algorithm is not one its issuer may use",
            ));
        }
        // RFC 9068 §4: an access token says it is one.
        let typ = header.typ.as_deref().map(str::to_ascii_lowercase);
        let typ = typ.as_deref().map(|t| t.strip_prefix("application/").unwrap_or(t));
        if typ != Some(signing::ACCESS_TOKEN_TYPE) {
            return Err(ApiError::Unauthorized("an access token's `typ` must be `at+jwt`"));
        }
        let key =
            header.kid.as_deref().and_then(|kid| signer.key(kid)).ok_or(ApiError::Unauthorized(
                "the token's key (`kid`) is not one of this server's",
            ))?;
        let mut validation = self.validation.clone();
        validation.algorithms = vec![signing::ALGORITHM];
        let data = decode::<Map<String, Value>>(token, key, &validation).map_err(invalid)?;
        Ok(data.claims)
    }
}

/// The claims of an access token we sign for a backend client (RFC 9068).
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    client_id: &'a str,
    role: Role,
    scope: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// An issuer, by its place in [`JwtKeys::issuers`], and the generation of
/// its key set.
type KeySet = (usize, u64);

/// A verified token's caller, `exp`, and the key set it was verified under
/// (none for our own tokens).
type Verified = (Caller, u64, Option<KeySet>);

/// A token the library refused: expired, or not valid.
pub(super) fn invalid(error: jsonwebtoken::errors::Error) -> ApiError {
    match error.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
            ApiError::Unauthorized("the token has expired")
        }
        _ => ApiError::Unauthorized("the token is not valid"),
    }
}

/// The header rules the library leaves to us: no critical extension (we
/// understand none, RFC 7515 §4.1.11), and a `typ`, when there is one, of
/// a JWT (RFC 7519 §5.1, RFC 9068 §2.1; the `application/` prefix may be
/// left out, and media types are case-insensitive, RFC 7515 §4.1.9).
fn check_header(header: &Header) -> Result<(), ApiError> {
    if header.crit.is_some() {
        return Err(ApiError::Unauthorized(
            "the token's `crit` header names extensions this server does not understand",
        ));
    }
    if let Some(typ) = &header.typ {
        let typ = typ.to_ascii_lowercase();
        let typ = typ.strip_prefix("application/").unwrap_or(&typ);
        if typ != "jwt" && typ != "at+jwt" {
            return Err(ApiError::Unauthorized("the token's `typ` must be `JWT` or `at+jwt`"));
        }
    }
    Ok(())
}

/// The claims we sign.
#[derive(Debug, Serialize)]
struct Claims {
    sub: String,
    role: Role,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// Who is calling, from a verified bearer token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: a staff member or system, or a patient's id.
    pub subject: String,
    pub role: Role,
    /// The identity provider that issued the token (its `iss`); `None` for
    /// our own tokens. Subjects are unique only within their issuer.
    pub issuer: Option<String>,
    /// For a backend client's access token: the client.
    pub client_id: Option<String>,
    /// For a backend client's access token: what it may do besides what
    /// its role allows. `None`: what the role allows.
    pub scopes: Option<Scopes>,
}

impl Caller {
    /// Who acts: the subject, for a provider's token `@` its issuer, so
    /// that two issuers' equal subjects are two callers, and for a backend
    /// client's token `client:` its id.
    pub fn actor(&self) -> String {
        match (&self.client_id, &self.issuer) {
            (Some(client), _) => format!("client:{client}"),
            (None, None) => self.subject.clone(),
            (None, Some(issuer)) => format!("{}@{issuer}", self.subject),
        }
    }

    /// `role:actor`, as records name who did something, and the scope of a
    /// caller's idempotency keys.
    pub fn label(&self) -> String {
        format!("{}:{}", self.role.as_str(), self.actor())
    }

    /// `Ok` when the caller's scopes, if it has any, allow `operation`
    /// (by its `operationId`), else 403 `insufficient_scope` naming the
    /// scope it needs.
    pub fn require_scope(&self, operation: &str) -> Result<&Self, ApiError> {
        match &self.scopes {
            Some(held) if !scopes::permits(held, operation) => {
                Err(ApiError::InsufficientScope(scopes::required(operation).map(|s| s.to_string())))
            }
            _ => Ok(self),
        }
    }

    /// `Ok` when the caller's role is one of `roles`, else 403 `forbidden`.
    pub fn require(&self, roles: &[Role]) -> Result<&Self, ApiError> {
        if roles.contains(&self.role) {
            Ok(self)
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// For a patient's own record: a patient token may touch only its own;
    /// for another patient's id the answer is 404, so existence does not leak.
    pub fn require_own_patient(&self, patient_id: &str) -> Result<&Self, ApiError> {
        self.require_own(patient_id, "patient")
    }

    /// For a record `what` that belongs to the patient `patient_id`: a
    /// patient token reaches only its own; another's is 404 `what`.
    pub fn require_own(&self, patient_id: &str, what: &'static str) -> Result<&Self, ApiError> {
        if self.role == Role::Patient && self.subject != patient_id {
            Err(ApiError::NotFound(what))
        } else {
            Ok(self)
        }
    }
}

/// The roles an operation admits, as a type: `Ctx<Staff>` answers 403 to
/// every other role while the request is extracted, before its body is
/// parsed (a keyed write's is read, to fingerprint it, but judged only
/// after), so a refused caller learns nothing of the body's schema.
pub trait Admits: 'static {
    const ROLES: &'static [Role];
}

macro_rules! role_sets {
    ($($(#[$doc:meta])* $name:ident = $roles:path;)+) => {$(
        $(#[$doc])*
        pub struct $name;

        impl Admits for $name {
            const ROLES: &'static [Role] = $roles;
        }
    )+};
}

role_sets! {
    /// Admin, clinician, scheduler.
    Staff = access::STAFF;
    /// Admin and clinician.
    Clinical = access::CLINICAL;
    /// Staff, and a patient for what is its own.
    StaffAndPatient = access::STAFF_AND_PATIENT;
    /// Admin and clinician, and a patient for what is its own.
    ClinicalAndPatient = access::CLINICAL_AND_PATIENT;
    /// Admin only.
    AdminOnly = access::ADMIN;
    /// Staff and EHR integrations.
    StaffAndIntegration = access::STAFF_AND_INTEGRATION;
    /// Admin and EHR integrations.
    AdminAndIntegration = access::ADMIN_AND_INTEGRATION;
    /// Every role; a patient for what is its own.
    AnyRole = access::ANY_ROLE;
}

/// What a `/v1` handler starts from: the application, who calls it (a role
/// `A` admits), the request's audit [`Note`], its idempotency key and its
/// `If-Match`. It reads as the application ([`AppState`]), with the
/// verified [`Caller`] at hand.
pub struct Ctx<A: Admits> {
    state: web::Data<AppState>,
    pub caller: Caller,
    note: Option<Note>,
    keyed: Option<Keyed>,
    precondition: Precondition,
    /// The request's idempotency key, held in this process until answered.
    _claim: Option<Claim>,
    admits: PhantomData<A>,
}

/// An answer built inside the write's transaction, so that an idempotency
/// key stores it with the change: its status, `Location` and JSON body.
#[derive(Clone, Debug)]
pub struct Reply {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Reply {
    /// 201 Created at `location`, with `body`.
    pub fn created(location: String, body: &impl Serialize) -> Result<Self, StoreError> {
        Ok(Self { status: StatusCode::CREATED, location: Some(location), body: json(body)? })
    }

    /// 200 OK with `body`.
    pub fn ok(body: &impl Serialize) -> Result<Self, StoreError> {
        Ok(Self { status: StatusCode::OK, location: None, body: json(body)? })
    }

    /// 204 No Content.
    pub fn no_content() -> Result<Self, StoreError> {
        Ok(Self { status: StatusCode::NO_CONTENT, location: None, body: String::new() })
    }

    fn into_response(self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(location) = self.location {
            response.insert_header((header::LOCATION, location));
        }
        if self.body.is_empty() {
            return response.finish();
        }
        response.content_type("application/json").body(self.body)
    }
}

/// `value` as JSON, as `HttpResponse::json` writes it.
fn json(value: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// How a write ended: the change made and answered, or, rolled back, the
/// answer kept for the request's key sent again.
pub enum Outcome {
    Done(Reply, Seen),
    Replay(StoredAnswer),
}

impl Outcome {
    /// The outcome of a write's transaction, once it has ended: a key's
    /// kept answer ends it in an error, to roll it back
    /// ([`StoreError::KeyAnswered`]), and is the answer sent again.
    pub fn settled(result: Result<Outcome, StoreError>) -> Result<Outcome, StoreError> {
        match result {
            Err(StoreError::KeyAnswered(answer)) => Ok(Outcome::Replay(*answer)),
            other => other,
        }
    }
}

/// What accompanies a change in its transaction: the request's audit
/// record, and the answer its idempotency key keeps. Built by
/// [`Ctx::accompaniment`]; handlers that run their own transactions call
/// [`Self::claim`] first and [`Self::finish`] last in each.
#[derive(Clone)]
pub struct Accompaniment {
    state: web::Data<AppState>,
    event: Option<AuditEvent>,
    keyed: Option<Keyed>,
}

impl Accompaniment {
    /// For a keyed request: takes the key's lock until the transaction ends
    /// (another process writing it is 409 `idempotency_key_in_flight`).
    /// Whether the key was answered already, [`Self::finish`] learns.
    pub fn claim(&self, tx: &mut DbConnection) -> Result<(), StoreError> {
        match &self.keyed {
            Some(keyed) if !store::idempotency::try_lock(tx, keyed.lock())? => {
                Err(StoreError::KeyInFlight)
            }
            _ => Ok(()),
        }
    }

    /// Stores, in the transaction `tx` that wrote `value`, the request's
    /// audit record and, for a keyed request, the answer `reply` builds.
    /// When the key has an answer kept already (the request is a retry,
    /// and its change made twice), ends in an error that rolls the
    /// transaction back: [`StoreError::KeyAnswered`] to send that answer
    /// again ([`Outcome::settled`]), or `KeyReused` for another request's.
    pub fn finish<T: Touched>(
        &self,
        tx: &mut DbConnection,
        value: T,
        reply: impl FnOnce(&AppState, T) -> Result<Reply, StoreError>,
    ) -> Result<Outcome, StoreError> {
        let mut seen = Seen::default();
        value.touched(&mut seen);
        if let Some(event) = &self.event {
            store::audit::insert(tx, &[audit::touching(event.clone(), &value)])?;
            let changes =
                events::of_write(&event.operation, seen.changes(), self.state.now(), store::new_id);
            store::events::insert(tx, &changes)?;
        }
        let reply = reply(&self.state, value)?;
        if let Some(keyed) = &self.keyed {
            let words = |items: &[String]| items.join(" ");
            let now = self.state.now();
            let kept =
                chrono::Duration::hours(i64::from(self.state.settings.idempotency_key_ttl_hours));
            let answer = StoredAnswer {
                caller: keyed.caller.clone(),
                idempotency_key: keyed.key.clone(),
                fingerprint: keyed.fingerprint.clone(),
                status: i32::from(reply.status.as_u16()),
                location: reply.location.clone(),
                body: reply.body.clone(),
                patient_ids: words(seen.patients()),
                records: words(seen.records()),
                created_at: now.naive_utc(),
                expires_at: (now + kept).naive_utc(),
            };
            let kept = store::idempotency::remember(tx, &answer)?;
            keyed.decided();
            match idempotency::repeat(kept, &keyed.fingerprint) {
                Repeat::First => {}
                Repeat::Same(kept) => return Err(StoreError::KeyAnswered(Box::new(kept))),
                Repeat::Reused => return Err(StoreError::KeyReused),
            }
        }
        Ok(Outcome::Done(reply, seen))
    }

    /// [`Self::claim`], the change `work` makes, and [`Self::finish`].
    fn commit<T: Touched>(
        &self,
        tx: &mut DbConnection,
        work: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
        reply: impl FnOnce(&AppState, T) -> Result<Reply, StoreError>,
    ) -> Result<Outcome, StoreError> {
        self.claim(tx)?;
        let value = work(tx)?;
        self.finish(tx, value, reply)
    }
}

impl<A: Admits> Ctx<A> {
    /// Reads with `work`, noting on the trail what it returns.
    pub async fn read<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
        T: Touched + Send + 'static,
    {
        let value = self.state.db(work).await?;
        self.saw(&value);
        Ok(value)
    }

    /// Notes on the trail what `value`, read, holds.
    pub fn saw(&self, value: &impl Touched) {
        if let Some(note) = &self.note {
            note.saw(value);
        }
    }

    /// Notes on the trail the fields a partial update changes.
    pub fn changed(&self, fields: Vec<String>) {
        if let Some(note) = &self.note {
            note.changed(fields);
        }
    }

    /// The application, to move into a transaction's closure.
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// The request's `If-Match`, for the write to check against the
    /// resource it holds ([`Precondition::check`]).
    pub fn precondition(&self) -> Precondition {
        self.precondition.clone()
    }

    /// Makes the change `work` decides and writes, in one write transaction
    /// (`store::write_transaction`), and answers what `reply` builds of it. The
    /// request's audit record and, for a keyed request, its answer are
    /// stored in the same transaction: all commit, or none does.
    pub async fn write<T, F, R>(&self, work: F, reply: R) -> Answer
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
        R: FnOnce(&AppState, T) -> Result<Reply, StoreError> + Send + 'static,
        T: Touched + Send + 'static,
    {
        let accompaniment = self.accompaniment();
        let outcome = self
            .state
            .db(move |conn| {
                Outcome::settled(write_transaction(conn, |tx| {
                    accompaniment.commit(tx, work, reply)
                }))
            })
            .await?;
        self.state.written.notify_one();
        Ok(self.answer(outcome))
    }

    /// [`Self::write`], run again in a new transaction each time it loses a
    /// room to a concurrent booking ([`store::retrying`]).
    pub async fn write_retrying<T, F, R>(&self, mut work: F, reply: R) -> Answer
    where
        F: FnMut(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
        R: Fn(&AppState, T) -> Result<Reply, StoreError> + Send + 'static,
        T: Touched + Send + 'static,
    {
        let accompaniment = self.accompaniment();
        let outcome = self
            .state
            .db(move |conn| {
                Outcome::settled(retrying(conn, |tx| accompaniment.commit(tx, &mut work, &reply)))
            })
            .await?;
        self.state.written.notify_one();
        Ok(self.answer(outcome))
    }

    /// What must commit with this request's change, for writes that run
    /// their own transactions.
    pub fn accompaniment(&self) -> Accompaniment {
        Accompaniment {
            state: self.state.clone(),
            event: self.note.as_ref().map(Note::for_write),
            keyed: self.keyed.clone(),
        }
    }

    /// Notes on the trail what the change `answer` answered touched: an
    /// answer sent again discloses it as the first did.
    fn noted_replay(&self, answer: &StoredAnswer) {
        if let Some(note) = &self.note {
            note.saw_again(idempotency::seen_by(answer));
        }
    }

    /// The answer to a committed write: noted on the trail as stored with
    /// it, or the answer another process stored for the key, sent again.
    pub fn answer(&self, outcome: Outcome) -> HttpResponse {
        match outcome {
            Outcome::Done(reply, seen) => {
                if let Some(note) = &self.note {
                    note.stored(seen);
                }
                reply.into_response()
            }
            Outcome::Replay(answer) => {
                self.noted_replay(&answer);
                idempotency::replayed(&answer)
            }
        }
    }
}

impl<A: Admits> std::ops::Deref for Ctx<A> {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.state
    }
}

impl<A: Admits> FromRequest for Ctx<A> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ctx = app_state(req).and_then(|state| {
            let caller = authenticate(req, state)?;
            let note = Note::of(req);
            if let Some(note) = &note {
                note.caller(&caller);
            }
            caller.require(A::ROLES)?;
            if caller.scopes.is_some() {
                // Every /v1 operation is noted; one that is not cannot be
                // matched to a scope, and a scoped token may not call it.
                let operation = note.as_ref().map(Note::operation_id).unwrap_or_default();
                caller.require_scope(&operation)?;
            }
            // Authorization first, then the request's own fields.
            if req.extensions().get::<BadKey>().is_some() {
                return Err(ApiError::InvalidIdempotencyKey);
            }
            if let Some(Unkeyable(error)) = req.extensions().get::<Unkeyable>() {
                return Err(error.clone());
            }
            let keyed = req.extensions().get::<Keyed>().cloned();
            let claim = keyed
                .as_ref()
                .map(|keyed| idempotency::admit(&state.in_flight, keyed))
                .transpose()?;
            let precondition = Precondition::new(
                Tags::from_headers(req.headers(), &header::IF_MATCH),
                Tags::from_headers(req.headers(), &header::IF_NONE_MATCH),
                state.etag_key,
            );
            let state = state.clone();
            Ok(Ctx { state, caller, note, keyed, precondition, _claim: claim, admits: PhantomData })
        });
        ready(ctx)
    }
}

fn app_state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("application state is missing".into()))
}

/// The caller the request's bearer token names, verified with `state`'s keys.
pub(super) fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("send `Authorization: Bearer <token>`"))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized("the Authorization header must be `Bearer <token>`"))?;
    state.keys.verify(token)
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn keys() -> JwtKeys {
        let settings = Settings::from_lookup(|key| {
            (key == "JWT_SECRET").then(|| "k7Qw9zR2pL4xV8nB1mT6yH3cF5jD0sGe".to_owned())
        })
        .unwrap();
        JwtKeys::new(&settings, None)
    }

    #[test]
    fn a_remembered_token_is_accepted_again_until_it_expires() {
        let keys = keys();
        let now = Utc::now();
        let fresh = keys.issue(Role::Scheduler, "s-1", now, now + Duration::hours(1)).unwrap();
        assert_eq!(keys.verify(&fresh).unwrap().role, Role::Scheduler);
        assert_eq!(keys.verify(&fresh).unwrap().subject, "s-1");

        // A token remembered while valid whose `exp` has since passed (beyond
        // the leeway) is checked afresh, and refused as expired.
        let past = now - Duration::hours(2);
        let stale = keys.issue(Role::Admin, "a-1", past, past + Duration::hours(1)).unwrap();
        let caller = Caller {
            subject: "a-1".into(),
            role: Role::Admin,
            issuer: None,
            client_id: None,
            scopes: None,
        };
        let exp = (past + Duration::hours(1)).timestamp() as u64;
        keys.verified.lock().unwrap().insert(stale.clone(), (caller, exp, None));
        assert!(matches!(
            keys.verify(&stale),
            Err(ApiError::Unauthorized("the token has expired"))
        ));
    }

    #[test]
    fn a_token_of_the_longest_lifetime_is_accepted_and_a_second_more_is_not() {
        let keys = keys();
        let now = Utc::now();
        // What `make run` prints: 12 hours, the default maximum.
        let longest = keys.issue(Role::Admin, "dev-admin", now, now + Duration::hours(12)).unwrap();
        assert_eq!(keys.verify(&longest).unwrap().role, Role::Admin);
        let over = now + Duration::hours(12) + Duration::seconds(1);
        let too_long = keys.issue(Role::Admin, "dev-admin", now, over).unwrap();
        assert!(matches!(
            keys.verify(&too_long),
            Err(ApiError::Unauthorized(detail)) if detail.contains("JWT_MAX_LIFETIME_MINUTES")
        ));
    }
}
