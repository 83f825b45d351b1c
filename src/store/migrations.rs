//! Migrations embedded in the binary, one folder per backend.

use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::{patients, DbConnection, StoreError};

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Applies the pending migrations, then writes what SQL alone cannot (the
/// name keys of patients stored without them, [`patients::fill_name_keys`]),
/// and returns the versions applied.
pub fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let applied = match conn {
        DbConnection::Pg(c) => c.run_pending_migrations(POSTGRES),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE),
    }
    .map_err(|e| StoreError::Migration(e.to_string()))?;
    let applied = applied.into_iter().map(|v| v.to_string()).collect();
    let filled = patients::fill_name_keys(conn)?;
    if filled > 0 {
        log::info!("wrote the name keys of {filled} patients");
    }
    Ok(applied)
}
