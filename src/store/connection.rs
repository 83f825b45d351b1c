//! One connection type over both backends, its pool, and write transactions
//! that do not fail with "database is locked" on SQLite.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{PgConnection, SqliteConnection};

use crate::config::DatabaseTarget;

use super::StoreError;

/// A connection to whichever backend `DATABASE_URL` names.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// How long a SQLite writer waits for the lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// A pool's SQLite writer turn: the writers that wait for it are served in
/// the order they came. A plain mutex's unlock lets the thread that just
/// committed take the turn again ahead of writers that have waited longer,
/// which lengthens the tail of the queue.
#[derive(Debug, Default)]
pub struct WriterTurn(parking_lot::Mutex<()>);

impl WriterTurn {
    fn wait(&self) -> Turn<'_> {
        Turn(Some(self.0.lock()))
    }
}

/// The turn while it is held; handed to the longest waiter when dropped.
struct Turn<'a>(Option<parking_lot::MutexGuard<'a, ()>>);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if let Some(guard) = self.0.take() {
            parking_lot::MutexGuard::unlock_fair(guard);
        }
    }
}

/// Opens connections of the backend the target names. The derived
/// `MultiConnection::establish` tries every backend and hides the real error;
/// this one reports what the chosen backend said.
#[derive(Debug)]
pub struct ConnectionManager {
    target: DatabaseTarget,
    /// The pool's SQLite writer turn: see [`write_transaction`].
    writer: Arc<WriterTurn>,
}

impl ConnectionManager {
    pub fn new(target: DatabaseTarget) -> Self {
        Self { target, writer: Arc::default() }
    }
}

/// A pooled connection, whether the work done on it last failed, and its
/// pool's writer turn. The pool pings a connection only after failed work,
/// as it takes it back, instead of on every check-out: a `SELECT 1` round
/// trip per request cost a third of the statements of a patient read on
/// PostgreSQL (`make bench`). A connection the server has dropped fails its
/// ping and is replaced.
pub struct Pooled {
    conn: DbConnection,
    suspect: bool,
    writer: Arc<WriterTurn>,
}

thread_local! {
    /// The writer turn of the pool whose connection this thread works on,
    /// set by [`Pooled::run`] for [`write_transaction`].
    static WRITER: RefCell<Option<Arc<WriterTurn>>> = const { RefCell::new(None) };
}

/// Puts back the thread's previous writer turn when [`Pooled::run`] ends,
/// even by a panic.
struct RestoreWriter(Option<Arc<WriterTurn>>);

impl Drop for RestoreWriter {
    fn drop(&mut self) {
        WRITER.with(|w| *w.borrow_mut() = self.0.take());
    }
}

impl Pooled {
    /// Asks for a ping before this connection is reused.
    pub fn mark_suspect(&mut self) {
        self.suspect = true;
    }

    /// Runs `work` on this connection, its write transactions taking turns
    /// with the other connections of the same pool (and no other pool's).
    pub fn run<T>(&mut self, work: impl FnOnce(&mut DbConnection) -> T) -> T {
        let previous = WRITER.with(|w| w.borrow_mut().replace(self.writer.clone()));
        let _restore = RestoreWriter(previous);
        work(&mut self.conn)
    }
}

impl std::ops::Deref for Pooled {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = Pooled;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Pooled, r2d2::Error> {
        self.open().map(|conn| Pooled { conn, suspect: false, writer: self.writer.clone() })
    }

    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), r2d2::Error> {
        pooled.conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        if pooled.conn.is_broken() {
            return true;
        }
        std::mem::take(&mut pooled.suspect) && pooled.conn.ping().is_err()
    }
}

impl ConnectionManager {
    fn open(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.target {
            DatabaseTarget::Postgres(url) => PgConnection::establish(url.expose())
                .map(DbConnection::Pg)
                .map_err(r2d2::Error::ConnectionError),
            DatabaseTarget::Sqlite(path) => {
                let path = path.to_string_lossy();
                let mut conn =
                    SqliteConnection::establish(&path).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON;
                     PRAGMA wal_autocheckpoint = 0;"
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

/// A connection of its own, outside any pool, to `target` (PostgreSQL): for
/// work that must not take a request's connection, such as storing the audit
/// queue.
pub fn connect_postgres(target: &DatabaseTarget) -> Result<DbConnection, StoreError> {
    match target {
        DatabaseTarget::Postgres(_) => ConnectionManager::new(target.clone())
            .open()
            .map_err(|e| StoreError::Unavailable(e.to_string())),
        DatabaseTarget::Sqlite(_) => {
            Err(StoreError::Unavailable("SQLite writers share the pool's turn".into()))
        }
    }
}

/// The connection pool.
pub type DbPool = r2d2::Pool<ConnectionManager>;

/// Builds the pool and opens its first connection, so a bad URL or a server
/// that is down fails at start with the backend's own message.
pub fn build_pool(target: &DatabaseTarget, size: u32) -> Result<DbPool, StoreError> {
    if let DatabaseTarget::Sqlite(path) = target {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
    }
    let manager = ConnectionManager::new(target.clone());
    // Probe once directly: r2d2 reports only a timeout, this gives the cause.
    manager.connect().map_err(|e| StoreError::Unavailable(e.to_string()))?;
    if let DatabaseTarget::Sqlite(_) = target {
        checkpoint_in_background(&manager)?;
    }
    r2d2::Pool::builder()
        .max_size(size)
        // Every connection opened up front: a burst of requests finds them
        // ready instead of queueing behind new connections.
        .min_idle(Some(size))
        // Checked as they come back, when the work on them failed: see `Pooled`.
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// How often a pool's checkpointer copies SQLite's write-ahead log into the
/// database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The log's length, in pages, from which the checkpointer copies what is
/// left within the writer turn, so that the next writer starts the log over
/// (32 MiB): the turn is held for milliseconds, at most every few tenths of
/// a second under `make bench`'s load.
const RESTART_AT_FRAMES: i32 = 8192;

/// What `PRAGMA wal_checkpoint` reports that the checkpointer reads: the
/// pages in the log.
#[derive(diesel::QueryableByName)]
struct Checkpoint {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
}

/// Copies SQLite's write-ahead log into the database file on a thread and a
/// connection of its own, every [`CHECKPOINT_EVERY`], for as long as the
/// pool of `manager` lives.
///
/// SQLite's own checkpoint runs in the commit that fills the log, within
/// the writer turn, so every queued writer waited for its copy and `fsync`,
/// several milliseconds each few thousand pages. Here the copy runs beside
/// the writers, and past [`RESTART_AT_FRAMES`] what they wrote meanwhile is
/// copied within the turn, so that the next writer finds the log all copied
/// and starts it over: the log stays near 32 MiB at most.
fn checkpoint_in_background(manager: &ConnectionManager) -> Result<(), StoreError> {
    let unavailable = |e: String| StoreError::Unavailable(format!("the checkpointer: {e}"));
    let DbConnection::Sqlite(mut conn) = manager.open().map_err(|e| unavailable(e.to_string()))?
    else {
        return Ok(());
    };
    let pool = Arc::downgrade(&manager.writer);
    let mut checkpoint = move || {
        diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result::<Checkpoint>(&mut conn)
    };
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            let Some(writer) = pool.upgrade() else { break };
            let done = checkpoint().and_then(|beside| {
                if beside.log >= RESTART_AT_FRAMES {
                    let _turn = writer.wait();
                    checkpoint()?;
                }
                Ok(())
            });
            if let Err(e) = done {
                log::warn!("SQLite checkpoint: {e}");
            }
        })
        .map(drop)
        .map_err(|e| unavailable(e.to_string()))
}

/// Runs `f` in a transaction that takes the write lock up front: `BEGIN
/// IMMEDIATE` on SQLite, so concurrent writers queue behind the busy timeout
/// instead of failing when a read lock cannot be upgraded; a plain `BEGIN` on
/// PostgreSQL. Commits when `f` returns `Ok`, rolls back otherwise.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    type Manager = <DbConnection as Connection>::TransactionManager;
    // SQLite admits one writer at a time; the others would wait in its busy
    // handler, which sleeps and polls, so a writer could wait far longer than
    // its turn (p99 of 860 ms for bookings at 16 connections, `make bench`).
    // Waiting for the pool's turn instead wakes the next writer as soon as
    // one commits. The turn is the pool's (one pool, one database file), so
    // pools on other files never wait for it; work run outside
    // `Pooled::run` has none and relies on the busy timeout alone.
    let writer = WRITER.with(|w| w.borrow().clone());
    let _turn = match conn {
        DbConnection::Sqlite(inner) => {
            let turn = writer.as_deref().map(WriterTurn::wait);
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
            turn
        }
        DbConnection::Pg(_) => {
            Manager::begin_transaction(conn)?;
            None
        }
    };
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            // The caller's error matters more than a failed rollback, which
            // leaves the connection marked broken for the pool to discard.
            let _ = Manager::rollback_transaction(conn);
            Err(error)
        }
    }
}

/// Attempts at a write that loses a room to a concurrent booking before
/// giving up: each lost race means another booking took a room, so this
/// bounds retries without bounding capacity.
const MAX_ATTEMPTS: usize = 16;

/// Runs `attempt` in a write transaction, and again in a new one each time
/// it ends in [`StoreError::LostRace`]; the last such error after
/// [`MAX_ATTEMPTS`]. Each attempt reads afresh, so a retried decision sees
/// the room the other booking took.
pub fn retrying<T>(
    conn: &mut DbConnection,
    mut attempt: impl FnMut(&mut DbConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    for _ in 1..MAX_ATTEMPTS {
        match write_transaction(conn, &mut attempt) {
            Err(StoreError::LostRace) => continue,
            other => return other,
        }
    }
    write_transaction(conn, attempt)
}
