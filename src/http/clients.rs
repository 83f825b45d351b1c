//! `/v1/clients`: backend clients (EHR systems) that sign assertions with
//! their own keys and get access tokens at `/oauth/token`. Admins only.

use actix_web::web::Path;
use actix_web::{get, patch, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::access::Role;
use crate::domain::client::{self, Client, ClientChange, ClientKeys};
use crate::domain::values::{Id, Text};
use crate::domain::FieldError;
use crate::store::clients as store;

use super::auth::{AdminOnly, Ctx, Reply};
use super::error::ApiError;
use super::extract::{Json, Query};
use super::openapi::{BodyErrors, CommonErrors, NotFound, ValidationFailed};
use super::pagination::{Page, PageQuery, PageRequest};
use super::{ok, Answer, AppState};

/// A client's name: at most 100 characters.
pub type ClientName = Text<100>;

/// The scopes a client is registered with when none are named: what the
/// `integration` role can do.
pub const DEFAULT_SCOPES: &[&str] = &[
    "system/Patient.crs",
    "system/ServiceRequest.c",
    "system/Appointment.rs",
    "system/Slot.s",
    "system/PlanDefinition.rs",
];

/// A backend client.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac5a0-0000-7000-8000-0000000000c1", "name": "Riverside EHR",
    "role": "integration", "jwks": null, "jwks_url": "https://ehr.riverside.example/.well-known/jwks.json",
    "scopes": ["system/Patient.crs", "system/Appointment.rs"], "status": "active", "disabled_at": null,
    "created_at": "2026-11-29T09:00:00-05:00", "updated_at": "2026-11-29T09:00:00-05:00"
}))]
pub struct ClientResponse {
    /// The `client_id`: the `iss` and `sub` of its assertions.
    pub id: String,
    pub name: String,
    /// What its tokens act as: `integration`, `scheduler` or `clinician`.
    pub role: Role,
    /// Its public keys, when registered with them.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// Where its public keys are, when registered by URL.
    pub jwks_url: Option<String>,
    /// The most its tokens may be scoped to.
    pub scopes: Vec<String>,
    /// `active`, or `disabled`: a disabled client gets no token.
    #[schema(example = "active")]
    pub status: &'static str,
    pub disabled_at: Option<String>,
    /// RFC 3339 in the clinic's offset.
    pub created_at: String,
    pub updated_at: String,
}

impl ClientResponse {
    fn new(state: &AppState, client: Client) -> Self {
        let (jwks, jwks_url) = match client.keys {
            ClientKeys::Jwks(set) => (serde_json::to_value(set).ok(), None),
            ClientKeys::Url(url) => (None, Some(url)),
        };
        Self {
            id: client.id,
            name: client.name,
            role: client.role,
            jwks,
            jwks_url,
            scopes: client.scopes.names(),
            status: if client.disabled_at.is_some() { "disabled" } else { "active" },
            disabled_at: client.disabled_at.map(|at| state.local(at)),
            created_at: state.local(client.created_at),
            updated_at: state.local(client.updated_at),
        }
    }
}

/// A new client: its public keys (a JWKS, or the https URL that serves
/// it) and the scopes its tokens may ever have.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Riverside EHR", "role": "integration",
    "jwks_url": "https://ehr.riverside.example/.well-known/jwks.json",
    "scopes": ["system/Patient.crs", "system/ServiceRequest.c", "system/Appointment.rs"]
}))]
pub struct RegisterClient {
    pub name: ClientName,
    /// `integration` (the default), `scheduler` or `clinician`; never
    /// `admin` or `patient`.
    pub role: Option<Role>,
    /// A JWKS of 1 to 10 public keys, each with a `kid`: RSA (2048 bits or
    /// more, for RS384) or EC P-384 (ES384). No private key material.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// Or the https URL the client publishes its JWKS at.
    pub jwks_url: Option<String>,
    /// SMART v2 system scopes (`system/Patient.rs`); by default what the
    /// `integration` role can do.
    #[schema(max_items = 50)]
    pub scopes: Option<Vec<String>>,
}

/// Changes to a client: a new name, new keys (a rotation), other scopes.
/// Tokens already issued keep their scopes until they expire.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"jwks_url": "https://ehr.riverside.example/keys/2026.json"}))]
pub struct UpdateClient {
    pub name: Option<ClientName>,
    /// New public keys, replacing the JWKS or URL it had.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// Or a new URL, replacing the JWKS or URL it had.
    pub jwks_url: Option<String>,
    #[schema(max_items = 50)]
    pub scopes: Option<Vec<String>>,
}

/// The most scopes a request names.
const MAX_SCOPES: usize = 50;

/// The scopes `items` name, checked; the default when `None`.
fn scopes_of(items: Option<Vec<String>>) -> Result<crate::domain::scopes::Scopes, Vec<FieldError>> {
    let items = items.unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
    if items.len() > MAX_SCOPES {
        return Err(vec![FieldError::new("scopes", format!("at most {MAX_SCOPES} scopes"))]);
    }
    client::registered_scopes(&items)
}

/// Register a backend client.
///
/// Its `id` is the `client_id` its assertions name at `/oauth/token`.
///
/// **Roles:** admin.
#[utoipa::path(tag = "clients", request_body = RegisterClient,
    responses(
        (status = 201, description = "Registered", body = ClientResponse,
            headers(("location" = String, description = "The new client's URL"))),
        CommonErrors, BodyErrors, ValidationFailed))]
#[post("/clients")]
pub async fn register_client(ctx: Ctx<AdminOnly>, body: Json<RegisterClient>) -> Answer {
    let Json(body) = body;
    let mut errors = Vec::new();
    let role = client::client_role(body.role.unwrap_or(Role::Integration))
        .map_err(|e| errors.push(e))
        .ok();
    let keys = client::keys(body.jwks.as_ref(), body.jwks_url.as_deref())
        .map_err(|e| errors.extend(e))
        .ok();
    let scopes = scopes_of(body.scopes).map_err(|e| errors.extend(e)).ok();
    let (Some(role), Some(keys), Some(scopes)) = (role, keys, scopes) else {
        return Err(ApiError::Validation(errors));
    };
    let now = ctx.now();
    ctx.write(
        move |tx| store::insert(tx, body.name.as_str(), role, &keys, &scopes, now),
        |state, client| {
            let location = format!("/v1/clients/{}", client.id);
            Reply::created(location, &ClientResponse::new(state, client))
        },
    )
    .await
}

/// List the backend clients.
///
/// **Roles:** admin.
#[utoipa::path(tag = "clients", params(PageQuery),
    responses((status = 200, description = "A page of clients", body = Page<ClientResponse>),
        CommonErrors, ValidationFailed))]
#[get("/clients")]
pub async fn list_clients(ctx: Ctx<AdminOnly>, query: Query<PageQuery>) -> Answer {
    let Query(query) = query;
    let page = PageRequest::parse(query.limit, query.cursor)?;
    let at = page.rows();
    let clients = ctx.read(move |conn| store::list(conn, &at)).await?;
    ok(page.shown(clients, &ctx, ClientResponse::new))
}

/// Get a backend client.
///
/// **Roles:** admin.
#[utoipa::path(tag = "clients", params(("id" = String, Path, description = "The client's id")),
    responses((status = 200, description = "The client", body = ClientResponse),
        CommonErrors, NotFound))]
#[get("/clients/{id}")]
pub async fn get_client(ctx: Ctx<AdminOnly>, id: Path<Id>) -> Answer {
    let id = id.into_inner().into_string();
    let client = ctx.read(move |conn| store::find(conn, &id)).await?;
    ok(ClientResponse::new(&ctx, client))
}

/// Rename a client, rotate its keys, or change its scopes.
///
/// **Roles:** admin.
#[utoipa::path(tag = "clients", params(("id" = String, Path, description = "The client's id")),
    request_body = UpdateClient,
    responses((status = 200, description = "The client after the change", body = ClientResponse),
        CommonErrors, BodyErrors, NotFound, ValidationFailed))]
#[patch("/clients/{id}")]
pub async fn update_client(ctx: Ctx<AdminOnly>, id: Path<Id>, body: Json<UpdateClient>) -> Answer {
    let Json(body) = body;
    let mut errors = Vec::new();
    let keys = match (&body.jwks, &body.jwks_url) {
        (None, None) => None,
        (jwks, url) => {
            client::keys(jwks.as_ref(), url.as_deref()).map_err(|e| errors.extend(e)).ok()
        }
    };
    let scopes = match body.scopes {
        None => None,
        Some(items) => scopes_of(Some(items)).map_err(|e| errors.extend(e)).ok(),
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let change =
        ClientChange { name: body.name.map(Text::into_string), keys, scopes, disabled: None };
    changed(ctx, id.into_inner().into_string(), change).await
}

/// Disable a client: it gets no token until enabled again.
///
/// Tokens it holds keep working until they expire
/// (`ACCESS_TOKEN_LIFETIME_SECONDS`, 5 minutes by default). Disabling a
/// disabled client changes nothing.
///
/// **Roles:** admin.
#[utoipa::path(tag = "clients", params(("id" = String, Path, description = "The client's id")),
    responses((status = 200, description = "The client, disabled", body = ClientResponse),
        CommonErrors, NotFound))]
#[post("/clients/{id}/disable")]
pub async fn disable_client(ctx: Ctx<AdminOnly>, id: Path<Id>) -> Answer {
    let change = ClientChange { disabled: Some(true), ..Default::default() };
    changed(ctx, id.into_inner().into_string(), change).await
}

/// Enable a disabled client again.
///
/// **Roles:** admin.
#[utoipa::path(tag = "clients", params(("id" = String, Path, description = "The client's id")),
    responses((status = 200, description = "The client, active", body = ClientResponse),
        CommonErrors, NotFound))]
#[post("/clients/{id}/enable")]
pub async fn enable_client(ctx: Ctx<AdminOnly>, id: Path<Id>) -> Answer {
    let change = ClientChange { disabled: Some(false), ..Default::default() };
    changed(ctx, id.into_inner().into_string(), change).await
}

/// Applies `change` to client `id` in one transaction, the row held.
async fn changed(ctx: Ctx<AdminOnly>, id: String, change: ClientChange) -> Answer {
    let now = ctx.now();
    ctx.write(
        move |tx| {
            let client = store::hold(tx, &id)?;
            store::update(tx, &client::change(client, change, now), now)
        },
        |state, client| Reply::ok(&ClientResponse::new(state, client)),
    )
    .await
}
