//! The audit trail at the edge: a [`Note`] follows each `/v1` request and
//! gathers who called, which operation, and the patients and records the
//! handler read or changed ([`Touched`]). A write's record is stored by
//! [`Ctx::write`](super::auth::Ctx::write) in the write's own transaction;
//! every other audited request (reads, refusals, 401 and 403) is queued on
//! the [`AuditLog`] and stored in batches within a second, and at shutdown.
//! `docs/ARCHITECTURE.md` says what a crash can lose.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::HttpMessage;
use chrono::{DateTime, Utc};

use crate::config::DatabaseTarget;
use crate::domain::appointment::Appointment;
use crate::domain::audit::{self, AuditEvent};
use crate::domain::calendar::{Closure, Room};
use crate::domain::clock;
use crate::domain::course::Course;
use crate::domain::events::Change;
use crate::domain::intake::Kept;
use crate::domain::patient::Patient;
use crate::domain::protocol::Protocol;
use crate::domain::referral::Referral;
use crate::domain::screening::Screening;
use crate::store::{self, write_transaction, DbConnection, DbPool, StoreError};

use super::auth::Caller;

/// What a request read or changed: patients, and records as `kind/id`;
/// for a write, the records it changed, whose events it writes.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    patients: Vec<String>,
    records: Vec<String>,
    changes: Vec<Change>,
}

impl Seen {
    /// A record of `kind` with `id`, of the patient `patient_id` if any:
    /// what a write returns, it changed.
    pub fn record(&mut self, kind: &str, id: &str, patient_id: Option<&str>) {
        self.read_only(kind, id, patient_id);
        self.changes.push(Change {
            kind: kind.to_owned(),
            id: id.to_owned(),
            patient_id: patient_id.map(str::to_owned),
        });
    }

    /// A record a write returns without having changed it (a course's
    /// appointments that its cancellation left as they were).
    pub fn read_only(&mut self, kind: &str, id: &str, patient_id: Option<&str>) {
        self.records.push(format!("{kind}/{id}"));
        if let Some(patient) = patient_id {
            self.patient(patient);
        }
    }

    /// What a write changed.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    pub fn patient(&mut self, id: &str) {
        if !self.patients.iter().any(|p| p == id) {
            self.patients.push(id.to_owned());
        }
    }

    /// What a stored answer touched, as [`Self::patients`] and
    /// [`Self::records`] gave it.
    pub fn of(patients: Vec<String>, records: Vec<String>) -> Self {
        Self { patients, records, changes: Vec::new() }
    }

    /// The patients, by id.
    pub fn patients(&self) -> &[String] {
        &self.patients
    }

    /// The records, as `kind/id`.
    pub fn records(&self) -> &[String] {
        &self.records
    }

    fn add(&mut self, other: Seen) {
        for patient in other.patients {
            self.patient(&patient);
        }
        self.records.extend(other.records);
        self.changes.extend(other.changes);
    }
}

/// What a handler's result says it read or changed, for the trail.
pub trait Touched {
    fn touched(&self, seen: &mut Seen);
}

impl<T: Touched> Touched for Vec<T> {
    fn touched(&self, seen: &mut Seen) {
        self.iter().for_each(|t| t.touched(seen));
    }
}

impl<T: Touched> Touched for Option<T> {
    fn touched(&self, seen: &mut Seen) {
        if let Some(t) = self {
            t.touched(seen);
        }
    }
}

impl<A: Touched, B: Touched> Touched for (A, B) {
    fn touched(&self, seen: &mut Seen) {
        self.0.touched(seen);
        self.1.touched(seen);
    }
}

impl Touched for () {
    fn touched(&self, _: &mut Seen) {}
}

impl Touched for Patient {
    fn touched(&self, seen: &mut Seen) {
        seen.record("patient", &self.id, Some(&self.id));
    }
}

impl Touched for Appointment {
    fn touched(&self, seen: &mut Seen) {
        seen.record("appointment", &self.id, Some(&self.patient_id));
    }
}

impl Touched for Course {
    fn touched(&self, seen: &mut Seen) {
        seen.record("course", &self.id, Some(&self.patient_id));
        self.appointments.touched(seen);
    }
}

impl Touched for Referral {
    fn touched(&self, seen: &mut Seen) {
        seen.record("referral", &self.id, Some(&self.patient_id));
    }
}

impl Touched for Screening {
    fn touched(&self, seen: &mut Seen) {
        seen.record("screening", &self.id, Some(&self.patient_id));
    }
}

impl<T> Touched for Kept<T> {
    fn touched(&self, seen: &mut Seen) {
        seen.record("intake_record", &self.id, Some(&self.patient_id));
    }
}

impl Touched for crate::domain::billing::Charge {
    fn touched(&self, seen: &mut Seen) {
        seen.record("charge", &self.id, Some(&self.patient_id));
    }
}

impl Touched for crate::domain::billing::Payment {
    fn touched(&self, seen: &mut Seen) {
        seen.record("payment", &self.id, Some(&self.patient_id));
    }
}

impl Touched for crate::domain::billing::Clinician {
    fn touched(&self, seen: &mut Seen) {
        seen.record("clinician", &self.id, None);
    }
}

impl Touched for Room {
    fn touched(&self, seen: &mut Seen) {
        seen.record("room", &self.id, None);
    }
}

impl Touched for crate::domain::client::Client {
    fn touched(&self, seen: &mut Seen) {
        seen.record("client", &self.id, None);
    }
}

impl Touched for Closure {
    fn touched(&self, seen: &mut Seen) {
        seen.record("closure", &self.id, None);
    }
}

/// The catalog is the clinic's: a protocol read touches no patient.
impl Touched for Protocol {
    fn touched(&self, _: &mut Seen) {}
}

/// A patient named by id, for reads that return something derived from
/// the patient's records (readiness).
pub struct PatientId<'a>(pub &'a str);

impl Touched for PatientId<'_> {
    fn touched(&self, seen: &mut Seen) {
        seen.patient(self.0);
    }
}

/// The operations of the API, by method and path template, from the
/// OpenAPI document: their ids and the status each answers on success.
pub struct Operations(HashMap<String, Vec<(Method, Operation)>>);

#[derive(Clone, Debug, Default)]
struct Operation {
    id: String,
    success: u16,
}

impl Operations {
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let mut operations = HashMap::new();
        for (path, item) in &api.paths.paths {
            let methods = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            for (method, operation) in methods {
                let Some(operation) = operation else { continue };
                let success = operation
                    .responses
                    .responses
                    .keys()
                    .filter_map(|status| status.parse::<u16>().ok())
                    .find(|status| (200..300).contains(status))
                    .unwrap_or(200);
                let id = operation.operation_id.clone().unwrap_or_else(|| path.clone());
                operations
                    .entry(path.clone())
                    .or_insert_with(Vec::new)
                    .push((method, Operation { id, success }));
            }
        }
        Self(operations)
    }

    fn find(&self, method: &Method, template: &str) -> Option<&Operation> {
        self.0.get(template)?.iter().find(|(m, _)| m == method).map(|(_, operation)| operation)
    }
}

/// What the trail gathers about one request, shared by the middleware and
/// the handler's [`Ctx`](super::auth::Ctx).
#[derive(Clone)]
pub struct Note(Rc<RefCell<Noted>>);

#[derive(Clone, Default)]
struct Noted {
    id: String,
    at: DateTime<Utc>,
    operation: Operation,
    method: Method,
    path: String,
    source: Option<String>,
    caller: Option<Caller>,
    seen: Seen,
    changed: Vec<String>,
    /// The write's transaction stored the record already.
    stored: bool,
}

impl Note {
    /// The note for `req`, when it is a request to a documented operation.
    pub fn begin(req: &ServiceRequest, request_id: &str) -> Option<Note> {
        let operations = req.app_data::<actix_web::web::Data<Operations>>()?;
        let template = req.match_pattern()?;
        // HEAD is answered by the GET operation of the same path.
        let looked_up = if req.method() == Method::HEAD { &Method::GET } else { req.method() };
        let operation = operations.find(looked_up, &template)?.clone();
        let note = Note(Rc::new(RefCell::new(Noted {
            id: request_id.to_owned(),
            // The wall clock, as the request id's (a UUIDv7) time: records
            // sort by id as they occurred.
            at: clock::to_micros(chrono::Utc::now()),
            operation,
            method: req.method().clone(),
            path: req.path().to_owned(),
            source: req.peer_addr().map(|a| a.ip().to_string()),
            caller: None,
            seen: Seen::default(),
            changed: Vec::new(),
            stored: false,
        })));
        req.extensions_mut().insert(note.clone());
        Some(note)
    }

    /// The note `req` carries, if it is audited.
    pub fn of(req: &actix_web::HttpRequest) -> Option<Note> {
        req.extensions().get::<Note>().cloned()
    }

    /// The id of the operation the request calls.
    pub fn operation_id(&self) -> String {
        self.0.borrow().operation.id.clone()
    }

    /// Notes what an answer sent again (an idempotency key's) touched.
    pub fn saw_again(&self, seen: Seen) {
        self.0.borrow_mut().seen.add(seen);
    }

    pub fn caller(&self, caller: &Caller) {
        self.0.borrow_mut().caller = Some(caller.clone());
    }

    pub fn saw(&self, value: &impl Touched) {
        value.touched(&mut self.0.borrow_mut().seen);
    }

    pub fn changed(&self, fields: Vec<String>) {
        self.0.borrow_mut().changed = fields;
    }

    /// The record of this request as its write will store it: answered with
    /// the operation's success status, touching what `seen` adds.
    pub fn for_write(&self) -> AuditEvent {
        let noted = self.0.borrow().clone();
        let success = noted.operation.success;
        noted.into_event(success)
    }

    /// The write's transaction has stored this request's record, touching
    /// what `seen` holds.
    pub fn stored(&self, seen: Seen) {
        let mut noted = self.0.borrow_mut();
        noted.seen.add(seen);
        noted.stored = true;
    }

    /// Queues the record of the answered request on `log`, unless its write
    /// stored it or the trail keeps none of it ([`audit::recorded`]).
    pub fn finish<B>(self, response: &ServiceResponse<B>, log: &AuditLog) {
        // The request is answered: its record's parts move out of the note.
        let noted = std::mem::take(&mut *self.0.borrow_mut());
        let status = response.status().as_u16();
        let reads_only = matches!(noted.method, Method::GET | Method::HEAD);
        if !noted.stored && audit::recorded(reads_only, status, !noted.seen.patients.is_empty()) {
            log.push(noted.into_event(status));
        }
    }
}

impl Noted {
    /// The record of the request, answered with `status`.
    fn into_event(self, status: u16) -> AuditEvent {
        let client_id = self.caller.as_ref().and_then(|c| c.client_id.clone());
        let (actor, actor_role) = self.caller.map(|c| (c.actor(), c.role)).unzip();
        AuditEvent {
            request_id: self.id.clone(),
            id: self.id,
            occurred_at: self.at,
            actor,
            actor_role,
            client_id,
            operation: self.operation.id,
            method: self.method.to_string(),
            path: self.path,
            status,
            patient_ids: self.seen.patients,
            records: self.seen.records,
            changed: self.changed,
            source: self.source,
        }
    }
}

/// Adds what `value` touched to `event`, for a write's own record.
pub fn touching(mut event: AuditEvent, value: &impl Touched) -> AuditEvent {
    let mut seen =
        Seen { patients: event.patient_ids, records: event.records, changes: Vec::new() };
    let mut more = Seen::default();
    value.touched(&mut more);
    seen.add(more);
    event.patient_ids = seen.patients;
    event.records = seen.records;
    event
}

/// How long queued records wait at most before they are stored: a quarter
/// of a second keeps each batch small, so that storing one never holds the
/// database long enough to show in the requests' p99.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// How long the flusher waits after the database refused a batch.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Queued records beyond which a flush starts at once.
const FLUSH_AT: usize = 1_000;

/// Records queued at most: beyond it (the database has been down for a
/// long while) the oldest are dropped, and each drop is logged.
const QUEUE_LIMIT: usize = 200_000;

/// The queue of records not stored with a write, and the thread that stores
/// them in batches.
pub struct AuditLog {
    shared: Arc<Shared>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Held from taking a batch off the queue until it is committed: a
    /// reader of the trail that stores the queue first waits for a batch
    /// the flusher took and has not committed yet, and then sees it.
    storing: Mutex<()>,
}

#[derive(Default)]
struct Queue {
    events: Vec<AuditEvent>,
    closing: bool,
}

impl AuditLog {
    /// Starts the flusher, storing in `target`: on PostgreSQL through a
    /// connection of its own, so that it never keeps a request waiting for
    /// one of `pool`'s; on SQLite through `pool`, whose writers take turns.
    pub fn start(target: &DatabaseTarget, pool: DbPool) -> Self {
        let shared = Arc::new(Shared::default());
        let mut sink = match target {
            DatabaseTarget::Postgres(_) => Sink::Own { target: target.clone(), conn: None },
            DatabaseTarget::Sqlite(_) => Sink::Pool(pool),
        };
        let flusher = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("audit-flush".into())
                .spawn(move || flush_loop(&shared, &mut sink))
                .map_err(|e| log::error!("audit: cannot start the flusher thread: {e}"))
                .ok()
        };
        Self { shared, flusher: Mutex::new(flusher) }
    }

    pub fn push(&self, event: AuditEvent) {
        let mut queue = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.events.len() >= QUEUE_LIMIT {
            // The oldest hundredth at once: one move of the queue, not one a push.
            for dropped in queue.events.drain(..QUEUE_LIMIT / 100) {
                log::error!("audit: queue full, record {} dropped", dropped.id);
            }
        }
        queue.events.push(event);
        if queue.events.len() >= FLUSH_AT {
            self.shared.wake.notify_one();
        }
    }

    /// The queue, to flush from a database thread.
    pub fn queue(&self) -> AuditQueue {
        AuditQueue(self.shared.clone())
    }

    /// Stores what is queued and stops the flusher: at graceful shutdown.
    pub fn close(&self) {
        {
            let mut queue = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.closing = true;
        }
        self.shared.wake.notify_one();
        let handle = self.flusher.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                log::error!("audit: the flusher thread panicked");
            }
        }
    }
}

/// The queue of an [`AuditLog`], to be flushed where a connection is at hand.
pub struct AuditQueue(Arc<Shared>);

impl AuditQueue {
    /// Stores what is queued on `conn`, in one transaction, once a batch the
    /// flusher is storing has committed: a reader of the trail sees every
    /// request answered before it.
    pub fn flush_on(&self, conn: &mut DbConnection) -> Result<(), StoreError> {
        self.0.store_on(conn)
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// Takes what is queued and stores it on `conn` in one transaction,
    /// holding `storing` until it commits; on failure puts it back. Every
    /// caller has its connection before it takes `storing`, so whoever
    /// waits for `storing` holds nothing its holder needs to finish.
    fn store_on(&self, conn: &mut DbConnection) -> Result<(), StoreError> {
        let _storing = self.storing.lock().unwrap_or_else(PoisonError::into_inner);
        let events = self.take();
        if events.is_empty() {
            return Ok(());
        }
        write_transaction(conn, |tx| store::audit::insert(tx, &events)).inspect_err(|_| {
            self.put_back(events.clone());
        })
    }

    fn len(&self) -> usize {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).events.len()
    }

    fn take(&self) -> Vec<AuditEvent> {
        std::mem::take(&mut self.queue.lock().unwrap_or_else(PoisonError::into_inner).events)
    }

    fn put_back(&self, mut events: Vec<AuditEvent>) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        events.append(&mut queue.events);
        queue.events = events;
    }
}

/// Where the flusher stores.
enum Sink {
    Own { target: DatabaseTarget, conn: Option<DbConnection> },
    Pool(DbPool),
}

impl Sink {
    /// Stores what `shared` queues, on a connection taken first.
    fn store(&mut self, shared: &Shared) -> Result<(), StoreError> {
        match self {
            Sink::Own { target, conn } => {
                let c = match conn {
                    Some(c) => c,
                    None => conn.insert(store::connect_postgres(target)?),
                };
                let stored = shared.store_on(c);
                if stored.is_err() {
                    // Opened afresh next time: the server may have dropped it.
                    *conn = None;
                }
                stored
            }
            Sink::Pool(pool) => pool.get().map_err(StoreError::from)?.run(|c| shared.store_on(c)),
        }
    }
}

fn flush_loop(shared: &Shared, sink: &mut Sink) {
    loop {
        let closing = {
            let queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let (queue, _) = shared
                .wake
                .wait_timeout_while(queue, FLUSH_EVERY, |q| !q.closing && q.events.len() < FLUSH_AT)
                .unwrap_or_else(PoisonError::into_inner);
            queue.closing
        };
        if shared.len() > 0 {
            if let Err(error) = sink.store(shared) {
                log::error!("audit: {} records not stored yet: {error}", shared.len());
                if !closing {
                    // The database is away: wait before the next try.
                    std::thread::sleep(RETRY_AFTER);
                }
            }
        }
        if closing {
            return;
        }
    }
}
