//! Treatment rooms.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::appointment::AppointmentStatus;
use crate::domain::Refusal;

use super::locks::{self, Guard, Mode};
use super::schema::{appointments, rooms};
use super::{is_unique_violation, new_id, write_transaction, DbConnection, StoreError};

/// A private room with one recliner.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = rooms)]
pub struct Room {
    pub id: String,
    pub name: String,
    pub active: bool,
    /// UTC.
    pub created_at: NaiveDateTime,
    /// UTC.
    pub updated_at: NaiveDateTime,
}

fn name_taken(name: &str) -> StoreError {
    StoreError::Refused(Refusal::Conflict {
        detail: format!("a room named `{name}` already exists"),
        appointment_ids: Vec::new(),
    })
}

pub fn list(
    conn: &mut DbConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Room>, StoreError> {
    let mut query = rooms::table
        .select(Room::as_select())
        .order(rooms::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(rooms::id.gt(after.to_owned()));
    }
    Ok(query.load(conn)?)
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Room, StoreError> {
    Ok(rooms::table
        .find(id)
        .select(Room::as_select())
        .get_result(conn)?)
}

pub fn insert(
    conn: &mut DbConnection,
    name: &str,
    active: bool,
    now: DateTime<Utc>,
) -> Result<Room, StoreError> {
    let id = new_id();
    let now = now.naive_utc();
    let result = write_transaction(conn, |conn| {
        diesel::insert_into(rooms::table)
            .values((
                rooms::id.eq(&id),
                rooms::name.eq(name),
                rooms::active.eq(active),
                rooms::created_at.eq(now),
                rooms::updated_at.eq(now),
            ))
            .execute(conn)?;
        find(conn, &id)
    });
    match result {
        Err(e) if is_unique_violation(&e, "rooms_name_key", "rooms.name") => Err(name_taken(name)),
        other => other,
    }
}

/// Renames or (de)activates a room. Deactivating a room that holds
/// scheduled appointments from `today` on is refused, naming them.
pub fn update(
    conn: &mut DbConnection,
    id: &str,
    name: Option<&str>,
    active: Option<bool>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Room, StoreError> {
    let result = write_transaction(conn, |conn| {
        if active == Some(false) {
            // Waits for bookings in flight, and holds new ones off.
            locks::lock(conn, Guard::Rooms, Mode::Exclusive)?;
        }
        let room = find(conn, id)?;
        if active == Some(false) && room.active {
            let held: Vec<String> = appointments::table
                .filter(appointments::room_id.eq(id))
                .filter(appointments::date.ge(today))
                .filter(appointments::status.eq(AppointmentStatus::Scheduled.as_str()))
                .order((appointments::date, appointments::session, appointments::id))
                .select(appointments::id)
                .load(conn)?;
            if !held.is_empty() {
                return Err(StoreError::Refused(Refusal::Conflict {
                    detail: format!(
                        "the room holds {} scheduled appointment(s); reschedule or cancel them first",
                        held.len()
                    ),
                    appointment_ids: held,
                }));
            }
        }
        diesel::update(rooms::table.find(id))
            .set((
                name.map(|n| rooms::name.eq(n)),
                active.map(|a| rooms::active.eq(a)),
                rooms::updated_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        find(conn, id)
    });
    match (result, name) {
        (Err(e), Some(name)) if is_unique_violation(&e, "rooms_name_key", "rooms.name") => {
            Err(name_taken(name))
        }
        (other, _) => other,
    }
}
