//! `/v1/rooms`: the clinic's private treatment rooms.

use actix_web::web::Path;
use actix_web::{get, patch, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::calendar::{self, Room};
use crate::domain::values::{Id, Text};
use crate::store::rooms as store;

use super::auth::{AdminOnly, Ctx, Reply, Staff};
use super::extract::{Json, Query};
use super::openapi::{BodyErrors, CommonErrors, Conflict, NotFound, ValidationFailed};
use super::pagination::{Page, PageQuery, PageRequest};
use super::{ok, Answer, AppState};

/// A room's name: at most 100 characters, unique.
pub type RoomName = Text<100>;

/// A room with one reclining chair; only active rooms take bookings.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "019ac5a0-0000-7000-8000-000000000001", "name": "Room 1", "active": true,
    "created_at": "2026-11-26T19:00:00-05:00", "updated_at": "2026-11-26T19:00:00-05:00"
}))]
pub struct RoomResponse {
    #[serde(flatten)]
    pub room: Room,
    /// RFC 3339 in the clinic's offset.
    pub created_at: String,
    pub updated_at: String,
}

impl RoomResponse {
    fn new(state: &AppState, room: Room) -> Self {
        Self {
            created_at: state.local(room.created_at),
            updated_at: state.local(room.updated_at),
            room,
        }
    }
}

/// A new room.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Room 5"}))]
pub struct CreateRoom {
    /// Unique.
    pub name: RoomName,
    /// Defaults to `true`.
    #[serde(default = "yes")]
    pub active: bool,
}

/// `true`: what a new record's `active` is when not sent.
pub(super) fn yes() -> bool {
    true
}

/// Changes to a room. Deactivating a room that holds scheduled
/// appointments is refused with 409 naming them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"active": false}))]
pub struct UpdateRoom {
    /// Unique; `null` leaves it as it is.
    pub name: Option<RoomName>,
    pub active: Option<bool>,
}

/// List the rooms.
///
/// **Roles:** admin, clinician, scheduler.
#[utoipa::path(tag = "rooms", params(PageQuery),
    responses((status = 200, description = "A page of rooms", body = Page<RoomResponse>),
        CommonErrors, ValidationFailed))]
#[get("/rooms")]
pub async fn list_rooms(ctx: Ctx<Staff>, query: Query<PageQuery>) -> Answer {
    let Query(query) = query;
    let page = PageRequest::parse(query.limit, query.cursor)?;
    let at = page.rows();
    let rooms = ctx.db(move |conn| store::list(conn, &at)).await?;
    ok(page.shown(rooms, &ctx, RoomResponse::new))
}

/// Add a room.
///
/// **Roles:** admin.
#[utoipa::path(tag = "rooms", request_body = CreateRoom,
    responses(
        (status = 201, description = "Created", body = RoomResponse,
            headers(("location" = String, description = "The new room's URL"))),
        CommonErrors, BodyErrors, Conflict, ValidationFailed))]
#[post("/rooms")]
pub async fn create_room(ctx: Ctx<AdminOnly>, body: Json<CreateRoom>) -> Answer {
    let Json(body) = body;
    let now = ctx.now();
    ctx.write(
        move |tx| store::insert(tx, body.name.as_str(), body.active, now),
        |state, room| {
            Reply::created(format!("/v1/rooms/{}", room.id), &RoomResponse::new(state, room))
        },
    )
    .await
}

/// Rename, deactivate or reactivate a room.
///
/// **Roles:** admin.
#[utoipa::path(tag = "rooms", params(("id" = String, Path, description = "The room's id")),
    request_body = UpdateRoom,
    responses((status = 200, description = "The room after the change", body = RoomResponse),
        CommonErrors, BodyErrors, NotFound, Conflict, ValidationFailed))]
#[patch("/rooms/{id}")]
pub async fn update_room(ctx: Ctx<AdminOnly>, id: Path<Id>, body: Json<UpdateRoom>) -> Answer {
    let Json(body) = body;
    let name = body.name.map(Text::into_string);
    let (id, today, now) = (id.into_inner().into_string(), ctx.today(), ctx.now());
    let (precondition, state) = (ctx.precondition(), ctx.state());
    ctx.write(
        move |tx| {
            let deactivating = body.active == Some(false);
            let (room, held) = store::change_facts(tx, &id, deactivating, today)?;
            precondition.check(|| RoomResponse::new(&state, room.clone()))?;
            calendar::change_room(&room, body.active, held)?;
            store::update(tx, &id, name.as_deref(), body.active, now)
        },
        |state, room| Reply::ok(&RoomResponse::new(state, room)),
    )
    .await
}
