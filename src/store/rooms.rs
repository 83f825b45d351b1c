//! Treatment rooms. Writes run in the caller's transaction.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::appointment::AppointmentStatus;
use crate::domain::calendar::Room;

use super::locks::{self, Guard, Mode};
use super::schema::{appointments, rooms};
use super::{new_id, unique_or_conflict, DbConnection, Found, Rows, StoreError};

#[derive(Queryable, Selectable)]
#[diesel(table_name = rooms)]
struct RoomRow {
    id: String,
    name: String,
    active: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl From<RoomRow> for Room {
    fn from(row: RoomRow) -> Room {
        Room {
            id: row.id,
            name: row.name,
            active: row.active,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        }
    }
}

/// The unique index on room names.
const NAME_KEY: (&str, &str) = ("rooms_name_key", "rooms.name");

fn name_taken(name: &str) -> impl FnOnce() -> String + '_ {
    move || format!("a room named `{name}` already exists")
}

pub fn list(conn: &mut DbConnection, rows: &Rows) -> Result<Vec<Room>, StoreError> {
    let rows: Vec<RoomRow> = page!(rooms, RoomRow::as_select(), rows).load(conn)?;
    Ok(rows.into_iter().map(Room::from).collect())
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Room, StoreError> {
    Ok(rooms::table.find(id).select(RoomRow::as_select()).get_result(conn).found("room")?.into())
}

pub fn insert(
    conn: &mut DbConnection,
    name: &str,
    active: bool,
    now: DateTime<Utc>,
) -> Result<Room, StoreError> {
    let id = new_id();
    let now = now.naive_utc();
    let inserted = diesel::insert_into(rooms::table)
        .values((
            rooms::id.eq(&id),
            rooms::name.eq(name),
            rooms::active.eq(active),
            rooms::created_at.eq(now),
            rooms::updated_at.eq(now),
        ))
        .execute(conn);
    unique_or_conflict(inserted, NAME_KEY, name_taken(name))?;
    find(conn, &id)
}

/// What changing a room reads: the room, held until commit (a concurrent
/// change waits, then reads this one's result), and when it is to be
/// deactivated the scheduled appointments it holds from `today` on, after
/// waiting for bookings in flight and holding new ones off.
pub fn change_facts(
    conn: &mut DbConnection,
    id: &str,
    deactivating: bool,
    today: NaiveDate,
) -> Result<(Room, Vec<String>), StoreError> {
    if deactivating {
        locks::lock(conn, Guard::Rooms, Mode::Exclusive)?;
    }
    hold_row!(rooms, id, conn)?;
    let room = find(conn, id)?;
    if !deactivating {
        return Ok((room, Vec::new()));
    }
    let held = appointments::table
        .filter(appointments::room_id.eq(id))
        .filter(appointments::date.ge(today))
        .filter(appointments::status.eq(AppointmentStatus::Scheduled.as_str()))
        .order((appointments::date, appointments::session, appointments::id))
        .select(appointments::id)
        .load(conn)?;
    Ok((room, held))
}

/// Renames or (de)activates a room, as decided.
pub fn update(
    conn: &mut DbConnection,
    id: &str,
    name: Option<&str>,
    active: Option<bool>,
    now: DateTime<Utc>,
) -> Result<Room, StoreError> {
    let updated = diesel::update(rooms::table.find(id))
        .set((
            name.map(|n| rooms::name.eq(n)),
            active.map(|a| rooms::active.eq(a)),
            rooms::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn);
    unique_or_conflict(updated, NAME_KEY, name_taken(name.unwrap_or_default()))?;
    find(conn, id)
}
