//! Appointments: what a booking, a move or an action reads, and writing
//! what was decided, with a room assigned. Double booking is prevented by
//! two partial unique indexes (room and session; patient and day, over
//! active appointments): losing a room to a concurrent booking is
//! [`StoreError::LostRace`], to try again with another free room.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Date, Nullable, Text, Timestamp};

use crate::domain::appointment::{
    Appointment, AppointmentStatus, Change, Move, NewAppointment, PainScore, Phq9Score, Route,
    SlotFacts, SlotRequest,
};
use crate::domain::billing::InfusionMinutes;
use crate::domain::calendar::Session;
use crate::domain::protocol::Occupancy;
use crate::domain::Refusal;

use super::locks;
use super::schema::{appointments, closures as closure_rows, rooms};
use super::{
    closures, intake, is_unique_violation, new_id, DbConnection, Found, Prepared, Rows, StoreError,
    UnionAll,
};

/// `appointments.status IN ('scheduled', 'checked_in', 'completed')`: the
/// statuses that hold a room and a patient's day, written out as literals,
/// the same text as the predicate of the partial indexes in the migrations.
/// Bound as parameters, the list would hide from the query planners (SQLite,
/// and PostgreSQL's generic plans for prepared statements) that those
/// indexes apply, and every range query would read the cancelled rows too.
/// A type of its own rather than `diesel::dsl::sql`, whose statements diesel
/// never caches: PostgreSQL then parsed and planned them on every request.
#[derive(Debug, Clone, Copy, QueryId, ValidGrouping)]
pub(super) struct HoldsSlot;

const HOLDS_SLOT_SQL: &str = "appointments.status IN ('scheduled', 'checked_in', 'completed')";

impl Expression for HoldsSlot {
    type SqlType = diesel::sql_types::Bool;
}

impl<QS> AppearsOnTable<QS> for HoldsSlot where appointments::status: AppearsOnTable<QS> {}

impl<QS> SelectableExpression<QS> for HoldsSlot where appointments::status: SelectableExpression<QS> {}

impl<DB: diesel::backend::Backend> QueryFragment<DB> for HoldsSlot {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(HOLDS_SLOT_SQL);
        Ok(())
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = appointments)]
struct AppointmentRow {
    id: String,
    patient_id: String,
    room_id: String,
    date: NaiveDate,
    session: String,
    starts_at: NaiveDateTime,
    status: String,
    route: String,
    pain_before: Option<i32>,
    pain_after: Option<i32>,
    cancel_reason: Option<String>,
    cancelled_by: Option<String>,
    checked_in_at: Option<NaiveDateTime>,
    completed_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    course_id: Option<String>,
    phq9: Option<i32>,
    clinician_id: Option<String>,
    infusion_minutes: Option<i32>,
}

fn invalid(what: &str, value: &str) -> StoreError {
    StoreError::Invalid(format!("appointment {what} `{value}`"))
}

impl TryFrom<AppointmentRow> for Appointment {
    type Error = StoreError;

    fn try_from(row: AppointmentRow) -> Result<Self, StoreError> {
        let score = |v: Option<i32>| match v {
            None => Ok(None),
            Some(v) => {
                PainScore::new(v).map(Some).ok_or_else(|| invalid("pain score", &v.to_string()))
            }
        };
        Ok(Appointment {
            session: Session::parse(&row.session)
                .ok_or_else(|| invalid("session", &row.session))?,
            status: AppointmentStatus::parse(&row.status)
                .ok_or_else(|| invalid("status", &row.status))?,
            route: Route::parse(&row.route).ok_or_else(|| invalid("route", &row.route))?,
            pain_before: score(row.pain_before)?,
            pain_after: score(row.pain_after)?,
            phq9: row
                .phq9
                .map(|v| Phq9Score::new(v).ok_or_else(|| invalid("PHQ-9 score", &v.to_string())))
                .transpose()?,
            id: row.id,
            patient_id: row.patient_id,
            room_id: row.room_id,
            date: row.date,
            starts_at: row.starts_at.and_utc(),
            cancel_reason: row.cancel_reason,
            cancelled_by: row.cancelled_by,
            checked_in_at: row.checked_in_at.map(|t| t.and_utc()),
            completed_at: row.completed_at.map(|t| t.and_utc()),
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
            infusion_minutes: row
                .infusion_minutes
                .map(|v| {
                    InfusionMinutes::new(i64::from(v))
                        .ok_or_else(|| invalid("infusion minutes", &v.to_string()))
                })
                .transpose()?,
            course_id: row.course_id,
            clinician_id: row.clinician_id,
        })
    }
}

/// Reads an appointment inside a write transaction, holding its row until
/// commit: a concurrent change (cancel racing check-in, say) waits and then
/// sees this one's result.
pub fn hold(conn: &mut DbConnection, id: &str) -> Result<Appointment, StoreError> {
    hold_row!(appointments, id, conn, AppointmentRow).found("appointment")?.try_into()
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Appointment, StoreError> {
    on_backend!(conn, |c| appointments::table
        .find(id)
        .select(AppointmentRow::as_select())
        .get_result(c))
    .found("appointment")?
    .try_into()
}

/// The appointments of these courses, in date and session order.
pub fn for_courses(
    conn: &mut DbConnection,
    course_ids: &[String],
) -> Result<Vec<Appointment>, StoreError> {
    on_backend!(conn, |c| appointments::table
        .filter(appointments::course_id.eq_any(course_ids))
        .order((appointments::date, appointments::starts_at))
        .select(AppointmentRow::as_select())
        .load(c))?
    .into_iter()
    .map(Appointment::try_from)
    .collect()
}

/// Which scores an appointment must have one of: pain (on arrival or at
/// discharge), PHQ-9.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scored {
    pub pain: bool,
    pub phq9: bool,
}

/// Filters of a listing; all optional.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub patient_id: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Any of these statuses; all when empty.
    pub statuses: Vec<AppointmentStatus>,
    /// Only appointments with a score of these kinds recorded.
    pub scored: Option<Scored>,
    /// Only ids from this one on (inclusive).
    pub id_from: Option<String>,
}

pub fn list(
    conn: &mut DbConnection,
    filter: &Filter,
    rows: &Rows,
) -> Result<Vec<Appointment>, StoreError> {
    let found = on_backend!(conn, |c| {
        let mut query = page!(appointments, AppointmentRow::as_select(), rows);
        if let Some(patient_id) = &filter.patient_id {
            query = query.filter(appointments::patient_id.eq(patient_id.clone()));
        }
        if let Some(from) = filter.from {
            query = query.filter(appointments::date.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(appointments::date.le(to));
        }
        match filter.statuses.as_slice() {
            [] => {}
            // One status bound as `=`, which the partial indexes' planner sees.
            [status] => query = query.filter(appointments::status.eq(status.as_str())),
            several => {
                let names: Vec<&str> = several.iter().map(|s| s.as_str()).collect();
                query = query.filter(appointments::status.eq_any(names));
            }
        }
        let pain =
            appointments::pain_before.is_not_null().or(appointments::pain_after.is_not_null());
        match filter.scored {
            None => {}
            Some(Scored { pain: true, phq9: true }) => {
                query = query.filter(pain.or(appointments::phq9.is_not_null()))
            }
            Some(Scored { pain: true, phq9: false }) => query = query.filter(pain),
            Some(Scored { pain: false, phq9: true }) => {
                query = query.filter(appointments::phq9.is_not_null())
            }
            // No kind at all: nothing.
            Some(Scored { pain: false, phq9: false }) => {
                query = query.filter(appointments::id.ne(appointments::id))
            }
        }
        if let Some(id) = &filter.id_from {
            query = query.filter(appointments::id.ge(id.clone()));
        }
        query.load(c)
    })?;
    found.into_iter().map(Appointment::try_from).collect()
}

/// The first free room of a session; `slot_full` if there is none.
fn first_free_room(
    conn: &mut DbConnection,
    date: NaiveDate,
    session: Session,
) -> Result<String, StoreError> {
    let room = FirstFreeRoom(date.into_sql::<Date>(), session.as_str().into_sql::<Text>());
    on_backend!(conn, |c| SelectFirstFreeRoom(room).get_result::<Option<String>>(c))?
        .ok_or(StoreError::Refused(Refusal::SlotFull))
}

/// `(SELECT rooms.id …)`: the first active room, in name order, free in the
/// session whose date and name the fragments `.0` and `.1` give (bound
/// values for a move, a `VALUES` row's columns for [`InsertBookings`]),
/// or NULL: the one rule by which a booking or a move takes its room.
struct FirstFreeRoom<D, S>(D, S);

impl<D, S, DB> QueryFragment<DB> for FirstFreeRoom<D, S>
where
    DB: diesel::backend::Backend,
    D: QueryFragment<DB>,
    S: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(
            "(SELECT rooms.id FROM rooms WHERE rooms.active = TRUE AND rooms.id NOT IN \
             (SELECT appointments.room_id FROM appointments WHERE appointments.date = ",
        );
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" AND appointments.session = ");
        self.1.walk_ast(out.reborrow())?;
        out.push_sql(" AND ");
        out.push_sql(HOLDS_SLOT_SQL);
        out.push_sql(") ORDER BY rooms.name, rooms.id LIMIT 1)");
        Ok(())
    }
}

/// `SELECT` [`FirstFreeRoom`]: the room alone.
struct SelectFirstFreeRoom<D, S>(FirstFreeRoom<D, S>);

impl<D, S> QueryId for SelectFirstFreeRoom<D, S> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<D, S> diesel::query_builder::Query for SelectFirstFreeRoom<D, S> {
    type SqlType = Nullable<Text>;
}

impl<D, S, Conn> RunQueryDsl<Conn> for SelectFirstFreeRoom<D, S> {}

impl<D, S, DB> QueryFragment<DB> for SelectFirstFreeRoom<D, S>
where
    DB: diesel::backend::Backend,
    FirstFreeRoom<D, S>: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        self.0.walk_ast(out.reborrow())
    }
}

/// A column of [`InsertBookings`]'s `VALUES` list, by name.
struct ValuesColumn(&'static str);

impl<DB: diesel::backend::Backend> QueryFragment<DB> for ValuesColumn {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(self.0);
        Ok(())
    }
}

/// Whether the patient holds an active appointment on `date`, other than `except`.
fn patient_booked_on(
    conn: &mut DbConnection,
    patient_id: &str,
    date: NaiveDate,
    except: Option<&str>,
) -> Result<bool, StoreError> {
    // No id is empty, so `""` excepts nothing.
    let query = appointments::table
        .filter(appointments::patient_id.eq(patient_id))
        .filter(appointments::date.eq(date))
        .filter(HoldsSlot)
        .filter(appointments::id.ne(except.unwrap_or("")));
    Ok(on_backend!(conn, |c| diesel::select(diesel::dsl::exists(query)).get_result(c))?)
}

/// What booking `slot` for the patient reads (or moving the appointment
/// `moving` there): the patient's intake record, the date's closures, and
/// whether the patient holds another appointment that day. Takes the date's
/// and the rooms' shared locks first, so the date cannot be closed nor a
/// room deactivated before commit, and the slot's own lock, so bookings of
/// one session take their rooms one after another.
pub fn slot_facts(
    conn: &mut DbConnection,
    patient_id: &str,
    slot: SlotRequest,
    moving: Option<&str>,
) -> Result<SlotFacts, StoreError> {
    locks::lock_slots(conn, [(slot.date, slot.session)])?;
    Ok(SlotFacts {
        intake: intake::intake_record(conn, patient_id)?,
        closures: closures::dates_between(conn, slot.date, slot.date)?,
        patient_busy: patient_booked_on(conn, patient_id, slot.date, moving)?,
    })
}

/// Writes a decided booking in the first free room of its session, as
/// stored. Refused with `slot_full` when no room is free, with
/// `patient_already_booked_that_day` when a concurrent booking took the
/// patient's day; [`StoreError::LostRace`] when one took the room.
pub fn insert(
    conn: &mut DbConnection,
    new: &NewAppointment,
    now: DateTime<Utc>,
) -> Result<Appointment, StoreError> {
    insert_all(conn, std::slice::from_ref(new), now)?
        .pop()
        .ok_or(StoreError::NotFound("appointment"))
}

/// Writes decided bookings on distinct dates, each in the first free room of
/// its session, in one statement ([`InsertBookings`]), all or none: the
/// appointments as stored, in date order. Refused or lost as [`insert`];
/// lost as well when one of the dates is closed (the caller holds the
/// dates' locks: only a closure committed before it took them, after it
/// read the calendar, is seen here).
pub(super) fn insert_all(
    conn: &mut DbConnection,
    new: &[NewAppointment],
    now: DateTime<Utc>,
) -> Result<Vec<Appointment>, StoreError> {
    let rows: Vec<BookingRow> = new
        .iter()
        .map(|new| BookingRow {
            id: new_id(),
            patient_id: &new.patient_id,
            date: new.date,
            session: new.session.as_str(),
            starts_at: new.starts_at.naive_utc(),
            route: new.route.as_str(),
            course_id: new.course_id.as_deref(),
        })
        .collect();
    let Some(first) = new.first() else {
        return Ok(Vec::new());
    };
    let inserted = on_backend!(conn, |c| InsertBookings {
        rows: &rows,
        now: now.naive_utc(),
        room: FirstFreeRoom(ValuesColumn("b.column3"), ValuesColumn("b.column4")),
        returning: AppointmentRow::as_select(),
    }
    .load::<AppointmentRow>(c))
    .map_err(StoreError::from);
    let no_room = matches!(
        &inserted,
        Err(StoreError::Database(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::NotNullViolation,
            _
        )))
    );
    if no_room {
        return Err(Refusal::SlotFull.into());
    }
    // A taken patient day is named by the first date: a single booking's
    // own (a course takes any of its refusals as a lost race).
    let inserted = taken(inserted, first.date)?;
    if inserted.len() < rows.len() {
        return Err(StoreError::LostRace);
    }
    let mut stored =
        inserted.into_iter().map(Appointment::try_from).collect::<Result<Vec<_>, _>>()?;
    stored.sort_by_key(|a| a.starts_at);
    Ok(stored)
}

/// One row of [`InsertBookings`].
struct BookingRow<'a> {
    id: String,
    patient_id: &'a str,
    date: NaiveDate,
    session: &'static str,
    starts_at: NaiveDateTime,
    route: &'static str,
    course_id: Option<&'a str>,
}

/// `INSERT INTO appointments … SELECT … FROM (VALUES …) … RETURNING …`:
/// scheduled bookings, each in its session's [`FirstFreeRoom`] (a subquery
/// on the row's own date and session), and only on dates not closed; the
/// rows as stored.
/// One round trip however many rows: a five-infusion course was ten (a room
/// query and an insert each), then a closures query and two to read it back.
/// A session without a free room leaves its row's room NULL, which the
/// column refuses; a closed date inserts no row. The rows' dates must
/// differ (a patient's day holds one appointment): every subquery sees the
/// table as it was before the statement.
///
/// Both backends name a `VALUES` list's columns `column1`, `column2`, …
/// Its SQL depends only on the number of rows, so diesel prepares one
/// statement per count (the cache key is the text, as the query id is not
/// static).
struct InsertBookings<'a, S> {
    rows: &'a [BookingRow<'a>],
    now: NaiveDateTime,
    /// Each row's room.
    room: FirstFreeRoom<ValuesColumn, ValuesColumn>,
    /// The columns returned.
    returning: S,
}

impl<S> QueryId for InsertBookings<'_, S> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<S: Expression> diesel::query_builder::Query for InsertBookings<'_, S> {
    type SqlType = S::SqlType;
}

impl<S, Conn> RunQueryDsl<Conn> for InsertBookings<'_, S> {}

impl<S, DB> QueryFragment<DB> for InsertBookings<'_, S>
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<Text>
        + diesel::sql_types::HasSqlType<Date>
        + diesel::sql_types::HasSqlType<Timestamp>,
    S: QueryFragment<DB>,
    str: ToSql<Text, DB>,
    String: ToSql<Text, DB>,
    NaiveDate: ToSql<Date, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO appointments (id, patient_id, room_id, date, session, starts_at, \
             status, route, course_id, created_at, updated_at) \
             SELECT b.column1, b.column2, ",
        );
        self.room.walk_ast(out.reborrow())?;
        out.push_sql(", b.column3, b.column4, b.column5, ");
        out.push_sql(&format!("'{}'", AppointmentStatus::Scheduled.as_str()));
        out.push_sql(", b.column6, b.column7, ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(" FROM (VALUES ");
        for (n, row) in self.rows.iter().enumerate() {
            out.push_sql(if n == 0 { "(" } else { ", (" });
            out.push_bind_param::<Text, _>(&row.id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(row.patient_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Date, _>(&row.date)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(row.session)?;
            out.push_sql(", ");
            out.push_bind_param::<Timestamp, _>(&row.starts_at)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(row.route)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&row.course_id)?;
            out.push_sql(")");
        }
        out.push_sql(
            ") AS b WHERE NOT EXISTS (SELECT 1 FROM closures WHERE closures.date = b.column3) \
             RETURNING ",
        );
        self.returning.walk_ast(out.reborrow())
    }
}

/// Moves the appointment where the decision says, in one statement: the old
/// slot is freed only if the new one is taken. Refused or lost as [`insert`].
pub fn move_to(
    conn: &mut DbConnection,
    current: &Appointment,
    to: &Move,
    now: DateTime<Utc>,
) -> Result<Appointment, StoreError> {
    let room_id = if to.keeps_room {
        current.room_id.clone()
    } else {
        first_free_room(conn, to.date, to.session)?
    };
    let moved = diesel::update(appointments::table.find(&current.id))
        .set((
            appointments::room_id.eq(&room_id),
            appointments::date.eq(to.date),
            appointments::session.eq(to.session.as_str()),
            appointments::starts_at.eq(to.starts_at.naive_utc()),
            appointments::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)
        .map_err(StoreError::from);
    taken(moved, to.date)?;
    find(conn, &current.id)
}

/// What a write that takes a slot means when an index refused it.
fn taken<T>(written: Result<T, StoreError>, date: NaiveDate) -> Result<T, StoreError> {
    match written {
        Err(e) if is_unique_violation(&e, "appointments_room_slot_key", "appointments.room_id") => {
            Err(StoreError::LostRace)
        }
        Err(e)
            if is_unique_violation(
                &e,
                "appointments_patient_day_key",
                "appointments.patient_id",
            ) =>
        {
            Err(Refusal::PatientAlreadyBookedThatDay(date).into())
        }
        other => other,
    }
}

/// What a decided change writes; `None` leaves a column as it is.
#[derive(AsChangeset)]
#[diesel(table_name = appointments)]
struct ChangeRow<'a> {
    status: &'static str,
    route: Option<&'static str>,
    pain_before: Option<i32>,
    pain_after: Option<i32>,
    phq9: Option<i32>,
    cancel_reason: Option<&'a str>,
    cancelled_by: Option<&'a str>,
    checked_in_at: Option<NaiveDateTime>,
    completed_at: Option<NaiveDateTime>,
    clinician_id: Option<&'a str>,
    infusion_minutes: Option<i32>,
    updated_at: NaiveDateTime,
}

/// Writes a decided action's change; the appointment as written, from the
/// same statement.
pub fn apply(
    conn: &mut DbConnection,
    id: &str,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<Appointment, StoreError> {
    let row = ChangeRow {
        status: change.status.as_str(),
        route: change.route.map(Route::as_str),
        pain_before: change.pain_before.map(PainScore::value),
        pain_after: change.pain_after.map(PainScore::value),
        phq9: change.phq9.map(Phq9Score::value),
        cancel_reason: change.cancel_reason.as_deref(),
        cancelled_by: change.cancelled_by.as_deref(),
        checked_in_at: change.checked_in_at.map(|t| t.naive_utc()),
        completed_at: change.completed_at.map(|t| t.naive_utc()),
        clinician_id: change.clinician_id.as_deref(),
        infusion_minutes: change.infusion_minutes.map(|m| i32::from(m.value())),
        updated_at: now.naive_utc(),
    };
    // One text per action (the columns it sets): kept prepared.
    on_backend!(conn, |c| Prepared(
        diesel::update(appointments::table.find(id))
            .set(row)
            .returning(AppointmentRow::as_select()),
    )
    .get_result::<AppointmentRow>(c))
    .found("appointment")?
    .try_into()
}

/// Cancels those of `ids` still scheduled, in one statement, with `reason`
/// and `by`; the appointments as written (the others are left as they were
/// and not returned). Kept prepared: one text (on SQLite, one per count of
/// ids).
pub(super) fn cancel_scheduled(
    conn: &mut DbConnection,
    ids: &[String],
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Appointment>, StoreError> {
    on_backend!(conn, |c| Prepared(
        diesel::update(
            appointments::table
                .filter(appointments::id.eq_any(ids))
                .filter(appointments::status.eq(AppointmentStatus::Scheduled.as_str())),
        )
        .set((
            appointments::status.eq(AppointmentStatus::Cancelled.as_str()),
            appointments::cancel_reason.eq(reason),
            appointments::cancelled_by.eq(by),
            appointments::updated_at.eq(now.naive_utc()),
        ))
        .returning(AppointmentRow::as_select()),
    )
    .load::<AppointmentRow>(c))?
    .into_iter()
    .map(Appointment::try_from)
    .collect()
}

/// What a row of [`occupancy`]'s one statement counts, by its second
/// column: a session's name, or one of these.
const CAPACITY: &str = "capacity";
const CLOSED: &str = "closed";
const PATIENT_BUSY: &str = "patient";

/// How full each session of `from`..=`to` is, the date's closures and the
/// days `patient` (if given) is already booked, in one statement whatever
/// the range's length: the active rooms' count, the active appointments
/// grouped by session, the closed dates and the patient's days, as the
/// branches of a `UNION ALL` tagged by their second column. (One round trip
/// where there were four; the room count costs nothing beside them, and
/// reading it here, in the caller's transaction, keeps it right however many
/// processes share the database, which a cache would not.)
pub fn occupancy(
    conn: &mut DbConnection,
    from: NaiveDate,
    to: NaiveDate,
    patient: Option<&str>,
) -> Result<Occupancy, StoreError> {
    use diesel::dsl::count_star;
    use diesel::sql_types::BigInt;
    let none = None::<NaiveDate>.into_sql::<Nullable<Date>>();
    let rooms = rooms::table.filter(rooms::active.eq(true)).select((
        none,
        CAPACITY.into_sql::<Text>(),
        count_star(),
    ));
    let sessions = appointments::table
        .filter(appointments::date.between(from, to))
        .filter(HoldsSlot)
        .group_by((appointments::date, appointments::session))
        .select((appointments::date.nullable(), appointments::session, count_star()));
    let closed = closure_rows::table.filter(closure_rows::date.between(from, to)).select((
        closure_rows::date.nullable(),
        CLOSED.into_sql::<Text>(),
        0_i64.into_sql::<BigInt>(),
    ));
    // No id is empty, so `""` matches no patient.
    let busy = appointments::table
        .filter(appointments::patient_id.eq(patient.unwrap_or("")))
        .filter(appointments::date.between(from, to))
        .filter(HoldsSlot)
        .select((
            appointments::date.nullable(),
            PATIENT_BUSY.into_sql::<Text>(),
            0_i64.into_sql::<BigInt>(),
        ));
    let rows: Vec<(Option<NaiveDate>, String, i64)> =
        on_backend!(conn, |c| UnionAll(UnionAll(UnionAll(rooms, sessions), closed), busy).load(c))?;
    let mut occupancy = Occupancy { known_until: Some(to), ..Occupancy::default() };
    for (date, kind, n) in rows {
        match (date, kind.as_str()) {
            (_, CAPACITY) => occupancy.capacity = n,
            (Some(date), CLOSED) => {
                occupancy.closures.insert(date);
            }
            (Some(date), PATIENT_BUSY) => {
                occupancy.patient_days.insert(date);
            }
            (Some(date), session) => {
                let session = Session::parse(session).ok_or_else(|| invalid("session", session))?;
                occupancy.booked.insert((date, session), n);
            }
            (None, other) => return Err(invalid("occupancy row", other)),
        }
    }
    Ok(occupancy)
}

#[cfg(test)]
mod tests {
    use super::{AppointmentStatus, HOLDS_SLOT_SQL};

    /// The planners use the partial indexes only when a query's predicate
    /// is the indexes' own: keep the texts the same, and the same as the
    /// domain's list of statuses that hold a slot.
    #[test]
    fn slot_predicate_is_the_partial_indexes_predicate() {
        let statuses: Vec<String> =
            AppointmentStatus::ACTIVE.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let predicate = format!("status IN ({})", statuses.join(", "));
        assert_eq!(HOLDS_SLOT_SQL, format!("appointments.{predicate}"));
        for (up, indexes) in [
            (include_str!("../../migrations/sqlite/20261127000002_create_scheduling/up.sql"), 2),
            (include_str!("../../migrations/postgres/20261127000002_create_scheduling/up.sql"), 2),
            (include_str!("../../migrations/sqlite/20261127000005_index_active_slots/up.sql"), 1),
            (include_str!("../../migrations/postgres/20261127000005_index_active_slots/up.sql"), 1),
        ] {
            let found = up.matches(&format!("WHERE {predicate}")).count();
            assert_eq!(found, indexes, "{predicate}");
        }
    }
}
