//! The answers stored for requests sent with an `Idempotency-Key`, per
//! caller. [`remember`] runs in the transaction of the change it answers,
//! and finds an answer kept for the key already; [`find`] looks one up
//! outside it. Both ignore answers past their expiry, which [`prune`]
//! deletes.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::locks::KEY_LOCKS;
use super::schema::idempotency_keys as keys;
use super::{DbConnection, Prepared, Replanned, StoreError};

/// A stored answer, and what identifies the request it answered.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = keys, treat_none_as_default_value = false)]
pub struct StoredAnswer {
    pub caller: String,
    pub idempotency_key: String,
    pub fingerprint: String,
    pub status: i32,
    pub location: Option<String>,
    pub body: String,
    /// Space-separated patient ids the change touched.
    pub patient_ids: String,
    /// Space-separated records (`kind/id`) the change touched.
    pub records: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// The unexpired answer stored for `caller`'s `key`, if any.
pub fn find(
    conn: &mut DbConnection,
    caller: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<StoredAnswer>, StoreError> {
    // Planned on each execution: a plan cached while the table was nearly
    // empty scanned every kept answer for each keyed write, which took
    // `make bench`'s keyed booking from 800 to 600 req/s within a minute
    // (auto_explain showed the sequential scan).
    let found = Replanned(
        keys::table
            .find((caller, key))
            .filter(keys::expires_at.gt(now.naive_utc()))
            .select(StoredAnswer::as_select()),
    )
    .get_result(conn)
    .optional()?;
    Ok(found)
}

/// Takes, until the transaction ends, the lock of `caller`'s `key` (hashed
/// to `hash`), if no other transaction holds it: `false` when one does, that
/// is, when a request with the same key is being written by another
/// process. SQLite serializes writers already: always `true` there.
pub fn try_lock(conn: &mut DbConnection, hash: i32) -> Result<bool, StoreError> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    let DbConnection::Pg(pg) = conn else {
        return Ok(true);
    };
    // One text, the key bound: kept prepared.
    let locked: Locked = Prepared(
        diesel::sql_query(format!("SELECT pg_try_advisory_xact_lock({KEY_LOCKS}, $1) AS locked"))
            .bind::<diesel::sql_types::Integer, _>(hash),
    )
    .get_result(pg)?;
    Ok(locked.locked)
}

/// Stores `answer`, replacing an expired answer to the same key; or, when
/// the key has an unexpired answer, stores nothing and returns that answer
/// (the caller rolls its change back). One statement in the common case, a
/// key never answered: whether it was is learned from the insert, with no
/// lookup first.
pub fn remember(
    conn: &mut DbConnection,
    answer: &StoredAnswer,
) -> Result<Option<StoredAnswer>, StoreError> {
    // `ON CONFLICT` per backend: diesel's MultiConnection has none.
    let insert = diesel::insert_into(keys::table).values(answer).on_conflict_do_nothing();
    let stored = match conn {
        DbConnection::Pg(pg) => insert.execute(pg)?,
        DbConnection::Sqlite(sqlite) => insert.execute(sqlite)?,
    };
    if stored == 1 {
        return Ok(None);
    }
    let now = answer.created_at.and_utc();
    if let Some(kept) = find(conn, &answer.caller, &answer.idempotency_key, now)? {
        return Ok(Some(kept));
    }
    diesel::delete(keys::table.find((&answer.caller, &answer.idempotency_key)))
        .filter(keys::expires_at.le(answer.created_at))
        .execute(conn)?;
    diesel::insert_into(keys::table).values(answer).execute(conn)?;
    Ok(None)
}

/// Answers deleted by one [`prune`] at most: each batch is one short
/// write transaction, so a large backlog never holds SQLite's one writer
/// for long.
pub const PRUNE_BATCH: i64 = 500;

/// Deletes up to [`PRUNE_BATCH`] of the answers expired at `now`, in the
/// caller's transaction; how many. Called until it deletes none.
pub fn prune(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let expired: Vec<(String, String)> = keys::table
        .filter(keys::expires_at.le(now.naive_utc()))
        .select((keys::caller, keys::idempotency_key))
        .limit(PRUNE_BATCH)
        .load(conn)?;
    for (caller, key) in &expired {
        diesel::delete(keys::table.find((caller, key))).execute(conn)?;
    }
    Ok(expired.len())
}
