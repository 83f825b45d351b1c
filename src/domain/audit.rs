//! The audit trail ("Audit trail" in `docs/DOMAIN.md`): who read or changed
//! what, when, from where, and with what answer. HIPAA's audit controls
//! (45 CFR 164.312(b)) ask for it; this module says which requests leave a
//! record and how long records are kept.

use chrono::{DateTime, Days, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::Role;

/// One audited request. It names records by id and fields by name, never
/// their values: the trail says who touched what, not what it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: String,
    /// Shown in the clinic's offset by the API.
    #[serde(skip)]
    pub occurred_at: DateTime<Utc>,
    /// The token's `sub`; `None` when no valid token was sent.
    pub actor: Option<String>,
    pub actor_role: Option<Role>,
    /// The OAuth client the token was issued to, once tokens carry one.
    pub client_id: Option<String>,
    /// The OpenAPI operation id, such as `book_appointment`.
    pub operation: String,
    pub method: String,
    /// The path without its query string (a name search is personal data).
    pub path: String,
    pub status: u16,
    /// The patients whose data the request read or changed.
    pub patient_ids: Vec<String>,
    /// The records it read or changed, as `kind/id`.
    pub records: Vec<String>,
    /// For a partial update, the names of the fields it changed.
    pub changed: Vec<String>,
    /// The request's `x-request-id`, which is also this record's `id`.
    pub request_id: String,
    /// The peer address the request came from.
    pub source: Option<String>,
}

/// Whether a request leaves a record: every request that changes something
/// or fails (a refused token, a forbidden role, a missing record: attempts
/// are what an audit looks for), and every read that reached a patient's
/// data. Only successful reads of the clinic's own setup (rooms, closures,
/// protocols, availability) leave none.
pub fn recorded(reads_only: bool, status: u16, touched_patients: bool) -> bool {
    !reads_only || status >= 400 || touched_patients
}

/// The instant before which records may be pruned, `retention_days` before
/// `now`. `None` when that is before the calendar's start: nothing is old
/// enough.
pub fn prune_before(now: DateTime<Utc>, retention_days: u32) -> Option<DateTime<Utc>> {
    now.checked_sub_days(Days::new(u64::from(retention_days)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_requests_leave_a_record() {
        // (reads only, status, touched a patient, recorded)
        #[rustfmt::skip]
        let table = [
            (true, 200, true, true),    // a patient read
            (true, 200, false, false),  // rooms, protocols, availability
            (true, 304, false, false),
            (true, 401, false, true),   // a refused token
            (true, 403, false, true),   // a forbidden role
            (true, 404, false, true),   // another patient's record, from a patient token
            (true, 422, false, true),
            (false, 201, true, true),   // a booking
            (false, 201, false, true),  // a room
            (false, 409, false, true),  // a refused booking
            (false, 500, false, true),
        ];
        for (reads_only, status, touched, expected) in table {
            assert_eq!(
                recorded(reads_only, status, touched),
                expected,
                "{reads_only} {status} {touched}"
            );
        }
    }

    #[test]
    fn records_older_than_the_retention_may_be_pruned() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z").unwrap().to_utc();
        let six_years = prune_before(now, 2190).unwrap();
        // Six years of 365 days: 2024 has a 29 February.
        assert_eq!(six_years.to_rfc3339(), "2020-11-30T12:00:00+00:00");
        assert_eq!(prune_before(now, 1).unwrap().to_rfc3339(), "2026-11-28T12:00:00+00:00");
    }
}
