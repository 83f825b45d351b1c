//! Webhook endpoints, their deliveries, and the dispatcher's place in the
//! change feed. Writes run in the caller's transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::webhooks::{self, Delivery, DeliveryStatus, Endpoint};

use super::events::{self, Filter, Position};
use super::schema::{
    webhook_deliveries as deliveries, webhook_dispatch, webhook_endpoints as endpoints,
};
use super::{new_id, DbConnection, Found, Rows, StoreError};

#[derive(Queryable, Selectable)]
#[diesel(table_name = endpoints)]
struct EndpointRow {
    id: String,
    url: String,
    description: String,
    event_types: String,
    secret: String,
    disabled_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    previous_secret: Option<String>,
    previous_secret_until: Option<NaiveDateTime>,
    failing_since: Option<NaiveDateTime>,
    disabled_reason: Option<String>,
}

impl From<EndpointRow> for Endpoint {
    fn from(row: EndpointRow) -> Endpoint {
        Endpoint {
            id: row.id,
            url: row.url,
            description: row.description,
            event_types: row.event_types.split_whitespace().map(str::to_owned).collect(),
            secret: row.secret,
            previous_secret: row.previous_secret,
            previous_secret_until: row.previous_secret_until.map(|at| at.and_utc()),
            disabled_at: row.disabled_at.map(|at| at.and_utc()),
            disabled_reason: row.disabled_reason,
            failing_since: row.failing_since.map(|at| at.and_utc()),
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = deliveries)]
struct DeliveryRow {
    id: String,
    endpoint_id: String,
    event_id: String,
    event_type: String,
    payload: String,
    status: String,
    attempts: i32,
    next_attempt_at: Option<NaiveDateTime>,
    last_status: Option<i32>,
    last_error: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;

    fn try_from(row: DeliveryRow) -> Result<Delivery, StoreError> {
        let status = DeliveryStatus::parse(&row.status)
            .ok_or_else(|| StoreError::Invalid(format!("delivery {}: status", row.id)))?;
        Ok(Delivery {
            id: row.id,
            endpoint_id: row.endpoint_id,
            event_id: row.event_id,
            event_type: row.event_type,
            payload: row.payload,
            status,
            attempts: u32::try_from(row.attempts).unwrap_or_default(),
            next_attempt_at: row.next_attempt_at.map(|at| at.and_utc()),
            last_status: row.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: row.last_error,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        })
    }
}

pub fn insert_endpoint(
    conn: &mut DbConnection,
    url: &str,
    description: &str,
    event_types: &[String],
    secret: &str,
    now: DateTime<Utc>,
) -> Result<Endpoint, StoreError> {
    let id = new_id();
    let now = now.naive_utc();
    diesel::insert_into(endpoints::table)
        .values((
            endpoints::id.eq(&id),
            endpoints::url.eq(url),
            endpoints::description.eq(description),
            endpoints::event_types.eq(event_types.join(" ")),
            endpoints::secret.eq(secret),
            endpoints::created_at.eq(now),
            endpoints::updated_at.eq(now),
        ))
        .execute(conn)?;
    find_endpoint(conn, &id)
}

pub fn find_endpoint(conn: &mut DbConnection, id: &str) -> Result<Endpoint, StoreError> {
    Ok(endpoints::table
        .find(id)
        .select(EndpointRow::as_select())
        .get_result(conn)
        .found("webhook endpoint")?
        .into())
}

pub fn list_endpoints(conn: &mut DbConnection, rows: &Rows) -> Result<Vec<Endpoint>, StoreError> {
    let found: Vec<EndpointRow> = page!(endpoints, EndpointRow::as_select(), rows).load(conn)?;
    Ok(found.into_iter().map(Endpoint::from).collect())
}

/// The endpoint, held until the transaction ends.
pub fn hold_endpoint(conn: &mut DbConnection, id: &str) -> Result<Endpoint, StoreError> {
    let row = hold_row!(endpoints, id, conn, EndpointRow).found("webhook endpoint")?;
    Ok(row.into())
}

/// Stores `endpoint` as decided.
pub fn update_endpoint(
    conn: &mut DbConnection,
    endpoint: &Endpoint,
    now: DateTime<Utc>,
) -> Result<Endpoint, StoreError> {
    let at = |t: Option<DateTime<Utc>>| t.map(|t| t.naive_utc());
    diesel::update(endpoints::table.find(&endpoint.id))
        .set((
            endpoints::url.eq(&endpoint.url),
            endpoints::description.eq(&endpoint.description),
            endpoints::event_types.eq(endpoint.event_types.join(" ")),
            endpoints::secret.eq(&endpoint.secret),
            endpoints::previous_secret.eq(&endpoint.previous_secret),
            endpoints::previous_secret_until.eq(at(endpoint.previous_secret_until)),
            endpoints::disabled_at.eq(at(endpoint.disabled_at)),
            endpoints::disabled_reason.eq(&endpoint.disabled_reason),
            endpoints::failing_since.eq(at(endpoint.failing_since)),
            endpoints::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    find_endpoint(conn, &endpoint.id)
}

/// Notes an attempt's outcome on its endpoint: failing since the first
/// failure in a row, or not failing. The endpoint as it is now; `None`
/// when it was deleted meanwhile.
pub fn note_outcome(
    conn: &mut DbConnection,
    endpoint_id: &str,
    delivered: bool,
    now: DateTime<Utc>,
) -> Result<Option<Endpoint>, StoreError> {
    if delivered {
        diesel::update(endpoints::table.find(endpoint_id))
            .set(endpoints::failing_since.eq(None::<NaiveDateTime>))
            .execute(conn)?;
    } else {
        diesel::update(endpoints::table.find(endpoint_id))
            .filter(endpoints::failing_since.is_null())
            .set(endpoints::failing_since.eq(Some(now.naive_utc())))
            .execute(conn)?;
    }
    Ok(endpoints::table
        .find(endpoint_id)
        .select(EndpointRow::as_select())
        .get_result::<EndpointRow>(conn)
        .optional()?
        .map(Endpoint::from))
}

/// The delivery `id` of `endpoint_id`.
pub fn find_delivery(
    conn: &mut DbConnection,
    endpoint_id: &str,
    id: &str,
) -> Result<Delivery, StoreError> {
    deliveries::table
        .find(id)
        .filter(deliveries::endpoint_id.eq(endpoint_id))
        .select(DeliveryRow::as_select())
        .get_result(conn)
        .found("delivery")?
        .try_into()
}

/// Makes a delivery due again `now`, with a new round of the schedule.
pub fn redeliver(
    conn: &mut DbConnection,
    endpoint_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Delivery, StoreError> {
    find_delivery(conn, endpoint_id, id)?;
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::status.eq(DeliveryStatus::Pending.as_str()),
            deliveries::attempts.eq(0),
            deliveries::next_attempt_at.eq(Some(now.naive_utc())),
            deliveries::leased_until.eq(None::<NaiveDateTime>),
            deliveries::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    find_delivery(conn, endpoint_id, id)
}

/// Deletes the endpoint and its deliveries; the endpoint as it was.
pub fn delete_endpoint(conn: &mut DbConnection, id: &str) -> Result<Endpoint, StoreError> {
    let endpoint = find_endpoint(conn, id)?;
    diesel::delete(deliveries::table.filter(deliveries::endpoint_id.eq(id))).execute(conn)?;
    diesel::delete(endpoints::table.find(id)).execute(conn)?;
    Ok(endpoint)
}

/// A page of the endpoint's deliveries, oldest first (ids are
/// time-ordered).
pub fn list_deliveries(
    conn: &mut DbConnection,
    endpoint_id: &str,
    rows: &Rows,
) -> Result<Vec<Delivery>, StoreError> {
    let found: Vec<DeliveryRow> = page!(deliveries, DeliveryRow::as_select(), rows)
        .filter(deliveries::endpoint_id.eq(endpoint_id.to_owned()))
        .load(conn)?;
    found.into_iter().map(Delivery::try_from).collect()
}

/// The events dispatched at most by one [`dispatch`].
pub const DISPATCH_BATCH: i64 = 500;

/// What a [`dispatch`] did: the events it read and passed, and how many
/// endpoints are active (none: no event needs sending soon, and the events
/// are passed unread).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dispatched {
    pub events: usize,
    pub active_endpoints: usize,
}

/// Moves the dispatcher along the feed: a delivery for each event after
/// its position and each endpoint that takes it, due `now`, and the new
/// position, in one transaction. With no endpoint active, the new position
/// only: the last ended event's, found without reading the events (an
/// endpoint added later is sent what the feed gets after it). The
/// position's row is held: two processes dispatch one after the other,
/// never the same event twice.
pub fn dispatch(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<Dispatched, StoreError> {
    hold_row!(webhook_dispatch.name, "feed", conn)?;
    let (tx, seq): (i64, i32) = webhook_dispatch::table
        .find("feed")
        .select((webhook_dispatch::tx, webhook_dispatch::seq))
        .get_result(conn)?;
    let active: Vec<Endpoint> = endpoints::table
        .filter(endpoints::disabled_at.is_null())
        .select(EndpointRow::as_select())
        .load::<EndpointRow>(conn)?
        .into_iter()
        .map(Endpoint::from)
        .collect();
    let position = Position { tx, seq };
    if active.is_empty() {
        // No endpoint to send them to: every ended transaction's events
        // are passed unread, in one step, as reading them would pass them.
        if let Some(last) = events::last_ended(conn, position)? {
            move_to(conn, last)?;
        }
        return Ok(Dispatched::default());
    }
    let filter = Filter { after: position, limit: DISPATCH_BATCH, ..Filter::default() };
    let fed = events::after(conn, &filter)?;
    let Some(last) = fed.last().map(|f| f.position) else {
        return Ok(Dispatched { events: 0, active_endpoints: active.len() });
    };
    let at = now.naive_utc();
    let rows: Vec<_> = fed
        .iter()
        .flat_map(|f| {
            active.iter().filter(|e| webhooks::dispatches(e, &f.event)).map(move |endpoint| {
                (
                    deliveries::id.eq(new_id()),
                    deliveries::endpoint_id.eq(endpoint.id.clone()),
                    deliveries::event_id.eq(f.event.id.clone()),
                    deliveries::event_type.eq(f.event.kind),
                    deliveries::payload.eq(webhooks::payload(&f.event)),
                    deliveries::status.eq(DeliveryStatus::Pending.as_str()),
                    deliveries::attempts.eq(0),
                    deliveries::next_attempt_at.eq(Some(at)),
                    deliveries::created_at.eq(at),
                    deliveries::updated_at.eq(at),
                )
            })
        })
        .collect();
    // One statement for a batch (within both backends' limits on bound
    // parameters: 10 a row, 3,200 rows at most a statement).
    for chunk in rows.chunks(INSERT_ROWS) {
        let insert = diesel::insert_into(deliveries::table).values(chunk);
        // Each backend's own multi-row INSERT (diesel's MultiConnection
        // has none of its own).
        match conn {
            DbConnection::Pg(pg) => insert.execute(pg)?,
            DbConnection::Sqlite(sqlite) => insert.execute(sqlite)?,
        };
    }
    move_to(conn, last)?;
    Ok(Dispatched { events: fed.len(), active_endpoints: active.len() })
}

/// Moves the dispatcher's position to `last`.
fn move_to(conn: &mut DbConnection, last: Position) -> Result<(), StoreError> {
    diesel::update(webhook_dispatch::table.find("feed"))
        .set((webhook_dispatch::tx.eq(last.tx), webhook_dispatch::seq.eq(last.seq)))
        .execute(conn)?;
    Ok(())
}

/// Deliveries one insert writes at most: 10 parameters each, under
/// SQLite's 32,766 and PostgreSQL's 65,535.
const INSERT_ROWS: usize = 3_200;

/// A delivery taken to be sent, with its endpoint (where, and how to sign it).
#[derive(Clone, Debug)]
pub struct Claimed {
    pub delivery: Delivery,
    pub endpoint: Endpoint,
}

/// The ids of the deliveries due `now` and not leased, of each active
/// endpoint: up to `limit` each, oldest due first. On PostgreSQL the rows
/// are locked until the transaction ends, and rows another transaction is
/// taking are skipped, not waited for.
pub fn due_by_endpoint(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Vec<String>>, StoreError> {
    let at = now.naive_utc();
    // Only active endpoints': a disabled endpoint's backlog would otherwise
    // be leased again and again.
    let active: Vec<String> = endpoints::table
        .filter(endpoints::disabled_at.is_null())
        .order(endpoints::id)
        .select(endpoints::id)
        .load(conn)?;
    let mut due = Vec::with_capacity(active.len());
    for endpoint_id in active {
        let query = deliveries::table
            .filter(deliveries::endpoint_id.eq(endpoint_id))
            .filter(deliveries::status.eq(DeliveryStatus::Pending.as_str()))
            .filter(deliveries::next_attempt_at.le(at))
            .filter(deliveries::leased_until.is_null().or(deliveries::leased_until.lt(at)))
            .order((deliveries::next_attempt_at, deliveries::id))
            .limit(limit)
            .select(deliveries::id);
        let ids: Vec<String> = match conn {
            DbConnection::Pg(pg) => query.for_update().skip_locked().load(pg)?,
            DbConnection::Sqlite(sqlite) => query.load(sqlite)?,
        };
        if !ids.is_empty() {
            due.push(ids);
        }
    }
    Ok(due)
}

/// Leases the deliveries `ids` until `lease_until` (no other worker takes
/// them before then; a worker killed while sending leaves them to be taken
/// again once the lease ends); those whose endpoint is still active, with
/// it, in the order of `ids`.
pub fn lease(
    conn: &mut DbConnection,
    ids: &[String],
    lease_until: DateTime<Utc>,
) -> Result<Vec<Claimed>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(deliveries::table.filter(deliveries::id.eq_any(ids)))
        .set(deliveries::leased_until.eq(Some(lease_until.naive_utc())))
        .execute(conn)?;
    let mut rows: Vec<(DeliveryRow, EndpointRow)> = deliveries::table
        .inner_join(endpoints::table)
        .filter(deliveries::id.eq_any(ids))
        .filter(endpoints::disabled_at.is_null())
        .select((DeliveryRow::as_select(), EndpointRow::as_select()))
        .load(conn)?;
    let order: std::collections::HashMap<&str, usize> =
        ids.iter().enumerate().map(|(at, id)| (id.as_str(), at)).collect();
    rows.sort_by_key(|(row, _)| order.get(row.id.as_str()).copied());
    rows.into_iter()
        .map(|(row, endpoint)| {
            Ok(Claimed { delivery: Delivery::try_from(row)?, endpoint: endpoint.into() })
        })
        .collect()
}

/// What an attempt made of a delivery, to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub id: String,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// Stores what a pass's attempts made of their deliveries, and ends their
/// leases (`lease`, this pass's): one statement for the deliveries that
/// came out alike (a pass that delivers everything writes one).
pub fn record_attempts(
    conn: &mut DbConnection,
    outcomes: &[Outcome],
    lease: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut alike: Vec<(&Outcome, Vec<&str>)> = Vec::new();
    for outcome in outcomes {
        let same = |(first, _): &&mut (&Outcome, Vec<&str>)| {
            (first.status, first.next_attempt_at, first.last_status, &first.last_error)
                == (
                    outcome.status,
                    outcome.next_attempt_at,
                    outcome.last_status,
                    &outcome.last_error,
                )
        };
        match alike.iter_mut().find(same) {
            Some((_, ids)) => ids.push(&outcome.id),
            None => alike.push((outcome, vec![&outcome.id])),
        }
    }
    for (outcome, ids) in alike {
        // Only under this pass's lease: a pass that outlived it leaves the
        // delivery to the process that took it over.
        diesel::update(
            deliveries::table
                .filter(deliveries::id.eq_any(ids))
                .filter(deliveries::leased_until.eq(Some(lease.naive_utc()))),
        )
        .set((
            deliveries::status.eq(outcome.status.as_str()),
            deliveries::attempts.eq(deliveries::attempts + 1),
            deliveries::next_attempt_at.eq(outcome.next_attempt_at.map(|at| at.naive_utc())),
            deliveries::leased_until.eq(None::<NaiveDateTime>),
            deliveries::last_status.eq(outcome.last_status.map(i32::from)),
            deliveries::last_error.eq(&outcome.last_error),
            deliveries::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    }
    Ok(())
}

/// Ends the leases (`lease`, this pass's) of deliveries a pass did not
/// attempt, without counting an attempt: due again at `due_at`, or when
/// they were due.
pub fn release(
    conn: &mut DbConnection,
    ids: &[String],
    lease: DateTime<Utc>,
    due_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let released = diesel::update(
        deliveries::table
            .filter(deliveries::id.eq_any(ids))
            .filter(deliveries::leased_until.eq(Some(lease.naive_utc()))),
    );
    match due_at {
        Some(at) => released
            .set((
                deliveries::leased_until.eq(None::<NaiveDateTime>),
                deliveries::next_attempt_at.eq(Some(at.naive_utc())),
            ))
            .execute(conn)?,
        None => released.set(deliveries::leased_until.eq(None::<NaiveDateTime>)).execute(conn)?,
    };
    Ok(())
}
