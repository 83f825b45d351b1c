//! Backend clients and the `jti`s of the assertions they exchanged for
//! tokens. Writes run in the caller's transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::access::Role;
use crate::domain::client::{Client, ClientKeys};
use crate::domain::scopes::Scopes;

use super::schema::{client_assertions, clients};
use super::{new_id, DbConnection, Found, Rows, StoreError};

#[derive(Queryable, Selectable)]
#[diesel(table_name = clients)]
struct ClientRow {
    id: String,
    name: String,
    role: String,
    jwks: Option<String>,
    jwks_url: Option<String>,
    scopes: String,
    disabled_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> Result<Client, StoreError> {
        let invalid = |what: &str| StoreError::Invalid(format!("client {}: {what}", row.id));
        let role = Role::parse(&row.role).ok_or_else(|| invalid("role"))?;
        let keys = match (&row.jwks, &row.jwks_url) {
            (Some(jwks), _) => {
                ClientKeys::Jwks(serde_json::from_str(jwks).map_err(|_| invalid("jwks"))?)
            }
            (None, Some(url)) => ClientKeys::Url(url.clone()),
            (None, None) => return Err(invalid("no keys")),
        };
        let scopes = Scopes::parse(&row.scopes).map_err(|_| invalid("scopes"))?;
        Ok(Client {
            id: row.id,
            name: row.name,
            role,
            keys,
            scopes,
            disabled_at: row.disabled_at.map(|at| at.and_utc()),
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        })
    }
}

/// A client's keys as stored: the JWKS's JSON, or the URL.
fn stored_keys(keys: &ClientKeys) -> Result<(Option<String>, Option<&str>), StoreError> {
    Ok(match keys {
        ClientKeys::Jwks(set) => (
            Some(serde_json::to_string(set).map_err(|e| StoreError::Invalid(e.to_string()))?),
            None,
        ),
        ClientKeys::Url(url) => (None, Some(url.as_str())),
    })
}

pub fn list(conn: &mut DbConnection, rows: &Rows) -> Result<Vec<Client>, StoreError> {
    let rows: Vec<ClientRow> = page!(clients, ClientRow::as_select(), rows).load(conn)?;
    rows.into_iter().map(Client::try_from).collect()
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Client, StoreError> {
    clients::table
        .find(id)
        .select(ClientRow::as_select())
        .get_result(conn)
        .found("client")?
        .try_into()
}

/// Registers a client; `client` names everything but its id and times.
pub fn insert(
    conn: &mut DbConnection,
    name: &str,
    role: Role,
    keys: &ClientKeys,
    scopes: &Scopes,
    now: DateTime<Utc>,
) -> Result<Client, StoreError> {
    let id = new_id();
    let now = now.naive_utc();
    let (jwks, jwks_url) = stored_keys(keys)?;
    diesel::insert_into(clients::table)
        .values((
            clients::id.eq(&id),
            clients::name.eq(name),
            clients::role.eq(role.as_str()),
            clients::jwks.eq(jwks),
            clients::jwks_url.eq(jwks_url),
            clients::scopes.eq(scopes.to_string()),
            clients::created_at.eq(now),
            clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    find(conn, &id)
}

/// The client, held until the transaction ends: a concurrent change
/// waits, then reads this one's result.
pub fn hold(conn: &mut DbConnection, id: &str) -> Result<Client, StoreError> {
    hold_row!(clients, id, conn)?;
    find(conn, id)
}

/// Stores `client` as decided: its name, keys, scopes and whether it is
/// disabled.
pub fn update(
    conn: &mut DbConnection,
    client: &Client,
    now: DateTime<Utc>,
) -> Result<Client, StoreError> {
    let (jwks, jwks_url) = stored_keys(&client.keys)?;
    diesel::update(clients::table.find(&client.id))
        .set((
            clients::name.eq(&client.name),
            clients::jwks.eq(jwks),
            clients::jwks_url.eq(jwks_url),
            clients::scopes.eq(client.scopes.to_string()),
            clients::disabled_at.eq(client.disabled_at.map(|at| at.naive_utc())),
            clients::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    find(conn, &client.id)
}

/// Takes the `jti` of `client_id`'s assertion, kept until `expires_at`:
/// `false` when it was taken already (a replay), in this process or any
/// other on the same database. A row is only ever deleted by
/// [`prune_assertions`], well after its assertion stopped passing.
pub fn take_jti(
    conn: &mut DbConnection,
    client_id: &str,
    jti: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    // The conflict is not an error: the transaction goes on, on both
    // backends, and the caller decides.
    let row = (
        client_assertions::client_id.eq(client_id),
        client_assertions::jti.eq(jti),
        client_assertions::expires_at.eq(expires_at.naive_utc()),
    );
    // `ON CONFLICT` per backend: diesel's MultiConnection has no upsert.
    let insert = diesel::insert_into(client_assertions::table).values(row);
    let inserted = match conn {
        DbConnection::Pg(pg) => insert.on_conflict_do_nothing().execute(pg)?,
        DbConnection::Sqlite(sqlite) => insert.on_conflict_do_nothing().execute(sqlite)?,
    };
    Ok(inserted == 1)
}

/// How long past its `expires_at` a `jti` is kept before pruning: room for
/// the clocks of several servers to disagree.
pub const PRUNE_MARGIN_MINUTES: i64 = 10;

/// Deletes the `jti`s kept past [`PRUNE_MARGIN_MINUTES`] after they
/// expired at `now`; how many.
pub fn prune_assertions(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let before = now - chrono::Duration::minutes(PRUNE_MARGIN_MINUTES);
    Ok(diesel::delete(client_assertions::table)
        .filter(client_assertions::expires_at.lt(before.naive_utc()))
        .execute(conn)?)
}
