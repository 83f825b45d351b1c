//! The audit trail's two tables: events (with their patient, when they
//! touched one), and the patients of the events that touched several.
//! Inserts run in the caller's transaction (a write's record commits with
//! the write); nothing here updates a row, and only [`prune`] deletes.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::access::Role;
use crate::domain::audit::AuditEvent;

use super::schema::{audit_event_patients, audit_events};
use super::{DbConnection, Rows, StoreError};

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
struct EventRow {
    id: String,
    occurred_at: NaiveDateTime,
    actor: Option<String>,
    actor_role: Option<String>,
    client_id: Option<String>,
    operation: String,
    method: String,
    path: String,
    status: i32,
    records: String,
    changed: String,
    source: Option<String>,
    patient_id: Option<String>,
}

/// The one patient `e` touched, if it touched exactly one.
fn sole_patient(e: &AuditEvent) -> Option<String> {
    match e.patient_ids.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// (patient, event) of the events that touched several patients.
fn shared(events: &[AuditEvent]) -> impl Iterator<Item = (&str, &str)> {
    events
        .iter()
        .filter(|e| e.patient_ids.len() > 1)
        .flat_map(|e| e.patient_ids.iter().map(move |p| (p.as_str(), e.id.as_str())))
}

/// Rows per multi-row INSERT: far below both backends' bound-parameter
/// limits (13 columns each).
const BATCH: usize = 500;

/// Stores `events` and the patients each touched.
pub fn insert(conn: &mut DbConnection, events: &[AuditEvent]) -> Result<(), StoreError> {
    match (&mut *conn, events) {
        // A write's own record: statements of a fixed text, which both
        // backends keep prepared.
        (_, [event]) => return insert_one(conn, event),
        (DbConnection::Pg(pg), _) => return insert_unnested(pg, events),
        _ => {}
    }
    for chunk in events.chunks(BATCH) {
        let rows: Vec<EventRow> = chunk.iter().map(row_of).collect();
        let events = diesel::insert_into(audit_events::table).values(&rows);
        // A multi-row INSERT is each backend's own: the connection enum
        // cannot build one.
        match conn {
            DbConnection::Pg(c) => events.execute(c)?,
            DbConnection::Sqlite(c) => events.execute(c)?,
        };
        let patients: Vec<_> = shared(chunk)
            .map(|(p, e)| {
                (audit_event_patients::patient_id.eq(p), audit_event_patients::event_id.eq(e))
            })
            .collect();
        for part in patients.chunks(BATCH) {
            let patients = diesel::insert_into(audit_event_patients::table).values(part);
            match conn {
                DbConnection::Pg(c) => patients.execute(c)?,
                DbConnection::Sqlite(c) => patients.execute(c)?,
            };
        }
    }
    Ok(())
}

/// PostgreSQL: each table in one statement of one array per column,
/// whatever the number of events. A multi-row VALUES list of 13 parameters
/// a row cost the flusher most of its time parsing and planning (`make bench`).
fn insert_unnested(
    conn: &mut diesel::PgConnection,
    events: &[AuditEvent],
) -> Result<(), StoreError> {
    use diesel::sql_types::{Array, Integer, Nullable, Text, Timestamp};
    if events.is_empty() {
        return Ok(());
    }
    let rows: Vec<EventRow> = events.iter().map(row_of).collect();
    let column = |f: fn(&EventRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let optional = |f: fn(&EventRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let (patients, ids): (Vec<&str>, Vec<&str>) = shared(events).unzip();
    // One statement, one round trip: the events, then their patients.
    diesel::sql_query(
        "WITH events AS (INSERT INTO audit_events (id, occurred_at, actor, actor_role, client_id, \
         operation, method, path, status, records, changed, source, patient_id) \
         SELECT * FROM unnest($1::text[], $2::timestamp[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::text[], $8::text[], $9::integer[], $10::text[], $11::text[], \
         $12::text[], $13::text[])) \
         INSERT INTO audit_event_patients (patient_id, event_id) \
         SELECT * FROM unnest($14::text[], $15::text[])",
    )
    .bind::<Array<Text>, _>(column(|r| r.id.clone()))
    .bind::<Array<Timestamp>, _>(rows.iter().map(|r| r.occurred_at).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(optional(|r| r.actor.clone()))
    .bind::<Array<Nullable<Text>>, _>(optional(|r| r.actor_role.clone()))
    .bind::<Array<Nullable<Text>>, _>(optional(|r| r.client_id.clone()))
    .bind::<Array<Text>, _>(column(|r| r.operation.clone()))
    .bind::<Array<Text>, _>(column(|r| r.method.clone()))
    .bind::<Array<Text>, _>(column(|r| r.path.clone()))
    .bind::<Array<Integer>, _>(rows.iter().map(|r| r.status).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(column(|r| r.records.clone()))
    .bind::<Array<Text>, _>(column(|r| r.changed.clone()))
    .bind::<Array<Nullable<Text>>, _>(optional(|r| r.source.clone()))
    .bind::<Array<Nullable<Text>>, _>(optional(|r| r.patient_id.clone()))
    .bind::<Array<Text>, _>(patients)
    .bind::<Array<Text>, _>(ids)
    .execute(conn)?;
    Ok(())
}

/// One event, and each patient it touched, in prepared statements.
fn insert_one(conn: &mut DbConnection, event: &AuditEvent) -> Result<(), StoreError> {
    let row = row_of(event);
    on_backend!(conn, |c| diesel::insert_into(audit_events::table).values(&row).execute(c))?;
    for (patient, _) in shared(std::slice::from_ref(event)) {
        on_backend!(conn, |c| diesel::insert_into(audit_event_patients::table)
            .values((
                audit_event_patients::patient_id.eq(patient),
                audit_event_patients::event_id.eq(event.id.as_str()),
            ))
            .execute(c))?;
    }
    Ok(())
}

fn row_of(e: &AuditEvent) -> EventRow {
    EventRow {
        id: e.id.clone(),
        occurred_at: e.occurred_at.naive_utc(),
        actor: e.actor.clone(),
        actor_role: e.actor_role.map(|r| r.as_str().to_owned()),
        client_id: e.client_id.clone(),
        operation: e.operation.clone(),
        method: e.method.clone(),
        path: e.path.clone(),
        status: i32::from(e.status),
        records: e.records.join(" "),
        changed: e.changed.join(" "),
        source: e.source.clone(),
        patient_id: sole_patient(e),
    }
}

/// The first or the last UUIDv7 of a millisecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bound {
    First,
    Last,
}

/// The smallest or largest id (a UUIDv7 as lower-case text, which sorts as
/// its time does) of the millisecond of `instant`: a time range of the
/// trail is a range of ids, read on the primary key.
fn id_at(instant: DateTime<Utc>, bound: Bound) -> String {
    const MAX_MS: i64 = (1 << 48) - 1;
    let ms = instant.timestamp_millis().clamp(0, MAX_MS);
    let rest = match bound {
        Bound::First => "0000-0000-000000000000",
        Bound::Last => "ffff-ffff-ffffffffffff",
    };
    format!("{:08x}-{:04x}-{rest}", ms >> 16, ms & 0xffff)
}

/// Which events a reader asks for.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub patient_id: Option<String>,
    pub actor: Option<String>,
    pub operation: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A page of events in id (time) order, with the patients each touched.
pub fn list(
    conn: &mut DbConnection,
    filter: &Filter,
    rows: &Rows,
) -> Result<Vec<AuditEvent>, StoreError> {
    let mut query = page!(audit_events, EventRow::as_select(), rows);
    if let Some(patient) = &filter.patient_id {
        query = query.filter(
            audit_events::patient_id.eq(patient.clone()).or(audit_events::id.eq_any(
                audit_event_patients::table
                    .filter(audit_event_patients::patient_id.eq(patient.clone()))
                    .select(audit_event_patients::event_id),
            )),
        );
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(audit_events::actor.eq(actor.clone()));
    }
    if let Some(operation) = &filter.operation {
        query = query.filter(audit_events::operation.eq(operation.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_events::id.ge(id_at(from, Bound::First)));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_events::id.le(id_at(to, Bound::Last)));
    }
    let found: Vec<EventRow> = query.load(conn)?;
    let ids: Vec<&str> =
        found.iter().filter(|e| e.patient_id.is_none()).map(|e| e.id.as_str()).collect();
    let touched: Vec<(String, String)> = audit_event_patients::table
        .filter(audit_event_patients::event_id.eq_any(&ids))
        .select((audit_event_patients::event_id, audit_event_patients::patient_id))
        .order((audit_event_patients::event_id, audit_event_patients::patient_id))
        .load(conn)?;
    found.into_iter().map(|row| event_of(row, &touched)).collect()
}

fn event_of(row: EventRow, touched: &[(String, String)]) -> Result<AuditEvent, StoreError> {
    let words = |text: &str| text.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let actor_role = match row.actor_role.as_deref() {
        None => None,
        Some(role) => Some(
            Role::parse(role)
                .ok_or_else(|| StoreError::Invalid(format!("audit event role `{role}`")))?,
        ),
    };
    let status = u16::try_from(row.status)
        .map_err(|_| StoreError::Invalid(format!("audit event status {}", row.status)))?;
    Ok(AuditEvent {
        patient_ids: match &row.patient_id {
            Some(one) => vec![one.clone()],
            None => touched
                .iter()
                .filter(|(event, _)| *event == row.id)
                .map(|(_, patient)| patient.clone())
                .collect(),
        },
        records: words(&row.records),
        changed: words(&row.changed),
        occurred_at: row.occurred_at.and_utc(),
        request_id: row.id.clone(),
        id: row.id,
        actor: row.actor,
        actor_role,
        client_id: row.client_id,
        operation: row.operation,
        method: row.method,
        path: row.path,
        status,
        source: row.source,
    })
}

/// Deletes the events that occurred before `before`, and their patients,
/// in one transaction (the caller's); returns how many events went. The
/// append-only triggers let this one delete through: PostgreSQL's by a
/// setting local to the transaction, SQLite's by being dropped and put back
/// within it.
pub fn prune(conn: &mut DbConnection, before: DateTime<Utc>) -> Result<usize, StoreError> {
    const SQLITE_TRIGGERS: [(&str, &str); 2] = [
        ("audit_events_no_delete", "audit_events"),
        ("audit_event_patients_no_delete", "audit_event_patients"),
    ];
    match conn {
        DbConnection::Pg(_) => {
            diesel::sql_query("SET LOCAL infusion.audit_prune = 'on'").execute(conn)?;
        }
        DbConnection::Sqlite(_) => {
            for (trigger, _) in SQLITE_TRIGGERS {
                diesel::sql_query(format!("DROP TRIGGER {trigger}")).execute(conn)?;
            }
        }
    }
    let before = id_at(before, Bound::First);
    let old =
        audit_events::table.filter(audit_events::id.lt(before.clone())).select(audit_events::id);
    diesel::delete(audit_event_patients::table.filter(audit_event_patients::event_id.eq_any(old)))
        .execute(conn)?;
    let pruned =
        diesel::delete(audit_events::table.filter(audit_events::id.lt(before))).execute(conn)?;
    if let DbConnection::Sqlite(_) = conn {
        for (trigger, table) in SQLITE_TRIGGERS {
            diesel::sql_query(format!(
                "CREATE TRIGGER {trigger} BEFORE DELETE ON {table} \
                 BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            ))
            .execute(conn)?;
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_range_is_an_id_range() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let instant = at("2026-11-29T16:57:09.123Z");
        let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            1_795_971_429,
            123_000_000,
        ))
        .to_string();
        assert!(id_at(instant, Bound::First) <= id && id <= id_at(instant, Bound::Last), "{id}");
        let later = id_at(at("2026-11-29T16:57:09.124Z"), Bound::First);
        assert!(id < later);
        let earlier = id_at(at("2026-11-29T16:57:09.122Z"), Bound::Last);
        assert!(earlier < id);
        assert_eq!(
            id_at(at("1969-12-31T23:59:59Z"), Bound::First),
            "00000000-0000-0000-0000-000000000000"
        );
    }
}
