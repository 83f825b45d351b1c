//! SMART Backend Services (SMART App Launch 2, client-confidential-
//! asymmetric): the token endpoint a registered client signs an assertion
//! for, the discovery document, and our public keys. Its errors are OAuth's
//! (RFC 6749 §5.2), not problem documents: OAuth clients read `error`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::domain::client::{self, Client, ClientKeys, ASSERTION_ALGORITHMS};
use crate::domain::scopes::{self, Scopes};
use crate::store::{self, clients as store_clients, StoreError};

use super::audit::{Note, Seen};
use super::auth::Caller;
use super::error::ApiError;
use super::extract::Form;
use super::issuers::{self, Source};
use super::openapi::{NotFound, PayloadTooLarge, RequestTimeout, TooManyRequests};
use super::State;

/// The one grant type served.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// The client authentication served (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The path of the token endpoint, under `PUBLIC_URL`.
pub const TOKEN_PATH: &str = "/oauth/token";

/// Seconds of clock skew tolerated on an assertion's `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: u64 = 30;

/// An RFC 6749 §5.2 error.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "error": "invalid_client",
    "error_description": "the assertion's `jti` was used before: sign a new assertion for each request"
}))]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_scope` or `unsupported_grant_type`.
    error: &'static str,
    /// What went wrong, for the client's developer.
    error_description: String,
}

/// How a token request failed: its RFC 6749 code and description.
#[derive(Debug)]
enum Refused {
    InvalidRequest(String),
    /// Client authentication failed: unknown or disabled client, a bad or
    /// replayed assertion (RFC 7523 §3.2).
    InvalidClient(String),
    InvalidScope(String),
    UnsupportedGrantType,
    /// Not the request's fault: the database.
    Failed(ApiError),
}

impl Refused {
    fn response(self) -> HttpResponse {
        let (error, description) = match self {
            Refused::InvalidRequest(d) => ("invalid_request", d),
            Refused::InvalidClient(d) => ("invalid_client", d),
            Refused::InvalidScope(d) => ("invalid_scope", d),
            Refused::UnsupportedGrantType => (
                "unsupported_grant_type",
                format!("the grant type is `{CLIENT_CREDENTIALS}` (SMART Backend Services)"),
            ),
            Refused::Failed(error) => return actix_web::ResponseError::error_response(&error),
        };
        let mut response = HttpResponse::BadRequest();
        no_store(&mut response);
        let mut response = response.json(OAuthError { error, error_description: description });
        if error == "invalid_client" {
            // Counted as a failed authentication by `http::limits`.
            response.extensions_mut().insert(FailedClientAuthentication);
        }
        response
    }
}

impl From<StoreError> for Refused {
    fn from(error: StoreError) -> Self {
        Refused::Failed(error.into())
    }
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        Refused::Failed(error)
    }
}

/// Marks an answer that refused a client's authentication.
pub struct FailedClientAuthentication;

/// RFC 6749 §5.1: token answers are not to be cached.
fn no_store(response: &mut actix_web::HttpResponseBuilder) {
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    response.insert_header((header::PRAGMA, "no-cache"));
}

/// A token request, as the form sends it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenRequest {
    /// `client_credentials`.
    #[schema(example = "client_credentials")]
    grant_type: String,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    #[schema(example = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")]
    client_assertion_type: String,
    /// A JWT signed RS384 or ES384 with a key of the client's JWKS (`kid`
    /// in its header): `iss` and `sub` the client's id, `aud` this token
    /// endpoint's URL, `exp` at most 5 minutes ahead, a `jti` never used
    /// before.
    #[schema(
        example = "eyJhbGciOiJFUzM4NCIsImtpZCI6ImVoci0xIiwidHlwIjoiSldUIn0.eyJpc3MiOiIwMTlhYzVhMC0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwYzEifQ.c2lnbmF0dXJl"
    )]
    client_assertion: String,
    /// Space-separated SMART v2 system scopes, within the client's own.
    #[schema(example = "system/Patient.rs system/Appointment.rs")]
    scope: String,
}

/// A token.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "access_token": "eyJhbGciOiJFUzI1NiIsImtpZCI6Ii4uLiIsInR5cCI6ImF0K2p3dCJ9.e30.c2ln",
    "token_type": "bearer", "expires_in": 300, "scope": "system/Patient.rs system/Appointment.rs"
}))]
pub struct TokenResponse {
    /// An ES256 JWT (`typ: at+jwt`) to send as `Authorization: Bearer`.
    access_token: String,
    /// `bearer`.
    token_type: &'static str,
    /// Seconds until it expires (`ACCESS_TOKEN_LIFETIME_SECONDS`, 300 by default).
    expires_in: u64,
    /// The scopes granted: those asked for.
    scope: String,
}

/// The JWKS of clients registered by URL, read when they ask for a token.
#[derive(Default)]
pub struct ClientJwks(Mutex<HashMap<String, Arc<Source>>>);

impl ClientJwks {
    /// The key `kid` names at `url` for `alg`: the JWKS read again when it
    /// is 10 minutes old, or (at most once a minute) when it lacks `kid`.
    /// Blocks: run it off the async workers.
    fn key(&self, url: &str, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
        let source = {
            let mut sources = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            sources
                .entry(url.to_owned())
                .or_insert_with(|| {
                    Arc::new(Source::new(format!("client JWKS {url}"), None, Some(url.to_owned())))
                })
                .clone()
        };
        source.refresh();
        // What registration checks of a JWKS, checked of the keys served.
        source.key_where(kid, alg, |jwk| client::verifies_assertions(jwk).is_ok())
    }
}

/// Get an access token (SMART Backend Services).
///
/// A registered client authenticates with a JWT it signs (RFC 7523,
/// `private_key_jwt`) and gets an ES256 access token for its role, limited
/// to the scopes asked for, which must be within those it was registered
/// with. Errors are RFC 6749 §5.2 JSON, status 400: `invalid_request`,
/// `invalid_client` (unknown or disabled client, bad signature, wrong
/// `aud`, expired or too long-lived, replayed `jti`), `invalid_scope`,
/// `unsupported_grant_type`. No bearer token.
#[utoipa::path(tag = "smart", security(),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The access token; `Cache-Control: no-store`", body = TokenResponse),
        (status = 400, description = "RFC 6749 section 5.2: the request, the client's authentication or the scope is refused", body = OAuthError),
        RequestTimeout, PayloadTooLarge, NotFound, TooManyRequests))]
#[post("/oauth/token")]
pub async fn request_token(
    req: HttpRequest,
    state: State,
    form: Result<Form, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let Some(endpoint) = token_endpoint(&state) else {
        return Err(ApiError::NotFound("token endpoint (no SIGNING_KEY_FILE is set)"));
    };
    Ok(match token(&req, &state, form, &endpoint).await {
        Ok(response) => response,
        Err(refused) => refused.response(),
    })
}

/// The token endpoint's URL, when tokens are issued.
pub(super) fn token_endpoint(state: &super::AppState) -> Option<String> {
    state.keys.signer()?;
    let base = state.settings.public_url.as_ref()?;
    Some(format!("{base}{TOKEN_PATH}"))
}

async fn token(
    req: &HttpRequest,
    state: &State,
    form: Result<Form, ApiError>,
    endpoint: &str,
) -> Result<HttpResponse, Refused> {
    let Form(pairs) = form.map_err(|e| match e {
        ApiError::UnsupportedMediaType => Refused::InvalidRequest(
            "send the request as `application/x-www-form-urlencoded`".into(),
        ),
        ApiError::Malformed(detail) => Refused::InvalidRequest(detail),
        other => Refused::Failed(other),
    })?;
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for (name, value) in &pairs {
        if fields.insert(name, value).is_some() {
            return Err(Refused::InvalidRequest(format!("`{name}` is sent more than once")));
        }
    }
    // A blank value is as good as none (RFC 6749 §3.1: "treated as if
    // omitted" for an empty one; spaces alone name no scope either).
    let field = |name: &str| fields.get(name).copied().filter(|v| !v.trim().is_empty());
    match field("grant_type") {
        None => return Err(Refused::InvalidRequest("`grant_type` is missing".into())),
        Some(CLIENT_CREDENTIALS) => {}
        Some(_) => return Err(Refused::UnsupportedGrantType),
    }
    if req.headers().contains_key(header::AUTHORIZATION) {
        return Err(Refused::InvalidClient(
            "authenticate with `client_assertion` only, without an Authorization header".into(),
        ));
    }
    if field("client_assertion_type") != Some(JWT_BEARER) {
        return Err(Refused::InvalidClient(format!(
            "`client_assertion_type` must be `{JWT_BEARER}`"
        )));
    }
    let assertion = field("client_assertion")
        .ok_or_else(|| Refused::InvalidClient("`client_assertion` is missing".into()))?;
    let requested = field("scope").ok_or_else(|| {
        Refused::InvalidRequest("`scope` is missing: ask for system scopes".into())
    })?;

    let (client, claims) = authenticate(state, assertion, endpoint).await?;
    let now = state.now();
    let checked = client::check_assertion(&claims, now.timestamp().max(0) as u64, LEEWAY_SECONDS)
        .map_err(|why| Refused::InvalidClient(why.into()))?;
    let scopes = Scopes::parse(requested).map_err(|e| Refused::InvalidScope(e.join("; ")))?;
    within(&client, &scopes)?;

    let note = Note::of(req);
    if let Some(note) = &note {
        note.caller(&Caller {
            subject: client.id.clone(),
            role: client.role,
            issuer: None,
            client_id: Some(client.id.clone()),
            scopes: Some(scopes.clone()),
        });
    }
    let event = note.as_ref().map(Note::for_write);
    // Kept until the assertion can no longer pass: a replay finds it.
    let expires_at = chrono::DateTime::from_timestamp(checked.kept_until as i64, 0)
        .ok_or_else(|| Refused::InvalidClient("the assertion's `exp` is not a time".into()))?;
    let written = state.clone();
    let issued = state
        .write(move |tx| {
            if !store_clients::take_jti(tx, &client.id, &checked.jti, expires_at)? {
                return Ok(Err(Refused::InvalidClient(
                    "the assertion's `jti` was used before: sign a new assertion for each request"
                        .into(),
                )));
            }
            // Disabled, or its scopes narrowed, meanwhile: as it is now.
            let current = store_clients::find(tx, &client.id)?;
            if let Err(why) = client::may_get_token(current.disabled_at.is_some()) {
                return Ok(Err(Refused::InvalidClient(why.into())));
            }
            if let Err(refused) = within(&current, &scopes) {
                return Ok(Err(refused));
            }
            if let Some(event) = event {
                let mut event = event;
                event.records = vec![format!("client/{}", current.id)];
                store::audit::insert(tx, &[event])?;
            }
            match written.keys.issue_access_token(&current, &scopes, now) {
                Some(Ok(token)) => Ok(Ok((token, scopes))),
                _ => Err(StoreError::Invalid("the access token could not be signed".into())),
            }
        })
        .await?;
    let ((access_token, expires_in), scopes) = issued?;
    if let Some(note) = &note {
        note.stored(Seen::default());
    }
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    Ok(response.json(TokenResponse {
        access_token,
        token_type: "bearer",
        expires_in,
        scope: scopes.to_string(),
    }))
}

/// `Ok` when `client` was registered for every scope of `scopes`.
fn within(client: &Client, scopes: &Scopes) -> Result<(), Refused> {
    let beyond = client.scopes.beyond(scopes);
    if beyond.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = beyond.iter().map(ToString::to_string).collect();
    Err(Refused::InvalidScope(format!("the client was not registered for {}", names.join(" "))))
}

/// The client an assertion names, and its claims once its signature,
/// `iss`, `sub`, `aud`, `exp` and `nbf` are verified with the client's key.
async fn authenticate(
    state: &State,
    assertion: &str,
    endpoint: &str,
) -> Result<(Client, Map<String, Value>), Refused> {
    let refuse = |why: &str| Refused::InvalidClient(why.into());
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|_| refuse("the assertion is not a JWT"))?;
    if !ASSERTION_ALGORITHMS.contains(&header.alg) {
        return Err(refuse("the assertion must be signed RS384 or ES384"));
    }
    if header.crit.is_some() {
        return Err(refuse(
            "the assertion's `crit` header names extensions this server does not understand",
        ));
    }
    if header.typ.as_deref().is_some_and(|typ| !typ.eq_ignore_ascii_case("JWT")) {
        return Err(refuse("the assertion's `typ` must be `JWT`"));
    }
    let kid = header.kid.clone().ok_or_else(|| refuse("the assertion names no key (`kid`)"))?;
    let claimed = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(assertion)
        .map_err(|_| refuse("the assertion is not a JWT"))?;
    let client_id =
        claimed.claims.get("iss").and_then(Value::as_str).unwrap_or_default().to_owned();
    if client_id.is_empty() || claimed.claims.get("sub").and_then(Value::as_str) != Some(&client_id)
    {
        return Err(refuse("the assertion's `iss` and `sub` must both be the client's id"));
    }
    let id = client_id.clone();
    let client = match state.db(move |conn| store_clients::find(conn, &id)).await {
        Ok(client) => client,
        Err(ApiError::NotFound(_)) => return Err(refuse("no client is registered with that id")),
        Err(other) => return Err(other.into()),
    };
    // SMART: a `jku` names the registered JWKS URL, or the assertion is
    // refused; keys are never fetched from where an assertion points.
    if let Some(jku) = &header.jku {
        if !matches!(&client.keys, ClientKeys::Url(url) if url == jku) {
            return Err(refuse("the assertion's `jku` is not the client's registered JWKS URL"));
        }
    }
    let alg = header.alg;
    let key = match &client.keys {
        ClientKeys::Jwks(set) => issuers::key_in(set, &kid, alg),
        ClientKeys::Url(url) => {
            let (url, state) = (url.clone(), state.clone());
            web::block(move || state.client_jwks.key(&url, &kid, alg))
                .await
                .map_err(ApiError::from)?
        }
    }
    .ok_or_else(|| {
        refuse("the assertion's key (`kid`) is not in the client's JWKS for its algorithm")
    })?;
    let mut validation = Validation::new(alg);
    // `exp` is checked by `client::check_assertion`, with the clock that
    // dates the `jti` it keeps.
    validation.validate_exp = false;
    validation.set_issuer(&[&client_id]);
    validation.set_audience(&[endpoint]);
    validation.sub = Some(client_id.clone());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_nbf = true;
    let data =
        jsonwebtoken::decode::<Map<String, Value>>(assertion, &key, &validation).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidAudience => Refused::InvalidClient(
                    format!("the assertion's `aud` must be this token endpoint's URL, {endpoint}"),
                ),
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                    refuse("the assertion is not valid yet (`nbf`)")
                }
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_) => {
                    refuse("the assertion lacks `exp`, `iss`, `sub` or `aud`")
                }
                _ => refuse("the assertion's signature or claims are not valid"),
            }
        })?;
    // Only the key's holder learns that the client is disabled.
    client::may_get_token(client.disabled_at.is_some()).map_err(refuse)?;
    Ok((client, data.claims))
}

/// SMART's discovery document (SMART App Launch 2, section 2.9).
///
/// Where the token endpoint is and what it takes. No bearer token.
#[utoipa::path(tag = "smart", security(),
    responses(
        (status = 200, description = "The SMART configuration", body = Object, example = json!({
            "issuer": "infusion-api",
            "jwks_uri": "https://api.clinic.example/.well-known/jwks.json",
            "token_endpoint": "https://api.clinic.example/oauth/token",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "scopes_supported": ["system/Patient.crus", "system/Appointment.crus"],
            "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"]
        })),
        NotFound))]
#[get("/.well-known/smart-configuration")]
pub async fn get_smart_configuration(state: State) -> Result<HttpResponse, ApiError> {
    let Some(endpoint) = token_endpoint(&state) else {
        return Err(ApiError::NotFound("SMART configuration (no SIGNING_KEY_FILE is set)"));
    };
    let base = state.settings.public_url.clone().unwrap_or_default();
    let algorithms: Vec<String> = ASSERTION_ALGORITHMS.iter().map(|a| format!("{a:?}")).collect();
    Ok(HttpResponse::Ok().json(json!({
        "issuer": state.settings.jwt_issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": endpoint,
        "grant_types_supported": [CLIENT_CREDENTIALS],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": algorithms,
        "scopes_supported": scopes::supported(),
        "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"],
    })))
}

/// The public keys that verify this server's access tokens.
///
/// The current signing key first, then the keys a rotation retired, which
/// verify until their tokens expire. No bearer token.
#[utoipa::path(tag = "smart", security(),
    responses(
        (status = 200, description = "A JWKS (RFC 7517)", body = Object, example = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "kid": "3kT0cX8oZ2b1m9QeR4vW7yN6pL5sH8dF2gJ1aK0uE3c",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})),
        NotFound))]
#[get("/.well-known/jwks.json")]
pub async fn get_jwks(state: State) -> Result<HttpResponse, ApiError> {
    let signer =
        state.keys.signer().ok_or(ApiError::NotFound("JWKS (no SIGNING_KEY_FILE is set)"))?;
    let mut response = HttpResponse::Ok();
    // Verifiers may keep it five minutes: one that meets a `kid` it lacks
    // (a rotation signs with the new key at once) reads it again.
    response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("max-age=300")));
    Ok(response.json(signer.published()))
}
