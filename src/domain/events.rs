//! Change events ("Events" in `docs/DOMAIN.md`): what a write changed, one
//! event per resource it created or changed, written in the write's own
//! transaction and read by integrations from `GET /v1/events`. An event
//! names the resource and its patient, never what the resource holds: a
//! consumer reads that with its own token.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::Role;
use super::scopes::{Permission, Resource, Scopes};

/// A resource a write created or changed: its kind as the audit trail
/// names it (`appointment`, `intake_record`…), its id, and its patient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: String,
    pub id: String,
    pub patient_id: Option<String>,
}

/// One event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Event {
    /// Unique; a consumer that sees an id again has seen the event before.
    pub id: String,
    /// What happened, such as `appointment.booked` (the list is in the
    /// API description, "Events").
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip)]
    pub occurred_at: DateTime<Utc>,
    /// `patient`, `referral`, `screening`, `prescriber_consult`,
    /// `treatment_attestation`, `appointment`, `course`, `charge`,
    /// `payment`, `room`, `closure`, `client` or `webhook_endpoint`.
    pub resource_type: &'static str,
    pub resource_id: String,
    pub patient_id: Option<String>,
}

/// Which event each operation's change of a kind of resource is: the
/// operation, the kind as [`Change::kind`] names it, the event type and
/// the resource type events name. One table: `docs/API.md` lists it.
pub const EVENT_TYPES: &[(&str, &str, &str, &str)] = &[
    ("create_patient", "patient", "patient.created", "patient"),
    ("update_patient", "patient", "patient.updated", "patient"),
    ("create_referral", "referral", "referral.received", "referral"),
    ("verify_referral", "referral", "referral.verified", "referral"),
    ("reject_referral", "referral", "referral.rejected", "referral"),
    ("create_screening", "screening", "screening.recorded", "screening"),
    ("create_prescriber_consult", "intake_record", "consult.recorded", "prescriber_consult"),
    (
        "create_treatment_attestation",
        "intake_record",
        "attestation.recorded",
        "treatment_attestation",
    ),
    ("book_appointment", "appointment", "appointment.booked", "appointment"),
    ("reschedule_appointment", "appointment", "appointment.rescheduled", "appointment"),
    ("cancel_appointment", "appointment", "appointment.cancelled", "appointment"),
    ("check_in_appointment", "appointment", "appointment.checked_in", "appointment"),
    ("complete_appointment", "appointment", "appointment.completed", "appointment"),
    ("no_show_appointment", "appointment", "appointment.no_show", "appointment"),
    ("book_course", "course", "course.booked", "course"),
    ("book_course", "appointment", "appointment.booked", "appointment"),
    ("cancel_course", "course", "course.cancelled", "course"),
    ("cancel_course", "appointment", "appointment.cancelled", "appointment"),
    // Billing: the charges a completed infusion makes, and those added by
    // hand; payments; either voided.
    ("complete_appointment", "charge", "charge.created", "charge"),
    ("create_charge", "charge", "charge.created", "charge"),
    ("void_charge", "charge", "charge.voided", "charge"),
    ("create_payment", "payment", "payment.recorded", "payment"),
    ("void_payment", "payment", "payment.voided", "payment"),
    ("create_room", "room", "room.created", "room"),
    ("update_room", "room", "room.updated", "room"),
    ("create_closure", "closure", "closure.created", "closure"),
    ("delete_closure", "closure", "closure.deleted", "closure"),
    ("register_client", "client", "client.registered", "client"),
    ("update_client", "client", "client.updated", "client"),
    ("disable_client", "client", "client.disabled", "client"),
    ("enable_client", "client", "client.enabled", "client"),
    (
        "disable_webhook_endpoint",
        "webhook_endpoint",
        "webhook_endpoint.disabled",
        "webhook_endpoint",
    ),
    // The delivery worker's own change: an endpoint failing too long.
    (DELIVERIES, "webhook_endpoint", "webhook_endpoint.disabled", "webhook_endpoint"),
];

/// The operation the webhook worker's changes are written as.
pub const DELIVERIES: &str = "deliver_webhooks";

/// Every event type, each once, in the table's order.
pub fn types() -> Vec<&'static str> {
    distinct(|(_, _, kind, _)| kind)
}

/// Every resource type events name, each once, in the table's order.
pub fn resource_types() -> Vec<&'static str> {
    distinct(|(_, _, _, resource_type)| resource_type)
}

/// One column of [`EVENT_TYPES`], each value once, in the table's order.
fn distinct(
    column: impl Fn(&(&'static str, &'static str, &'static str, &'static str)) -> &'static str,
) -> Vec<&'static str> {
    let mut values: Vec<&'static str> = Vec::new();
    for row in EVENT_TYPES {
        let value = column(row);
        if !values.contains(&value) {
            values.push(value);
        }
    }
    values
}

/// The events of a write of `operation` at `at` that changed `changes`,
/// each with an id `new_id` makes; none for a change the table does not
/// list (a write that changes nothing integrations follow).
pub fn of_write(
    operation: &str,
    changes: &[Change],
    at: DateTime<Utc>,
    mut new_id: impl FnMut() -> String,
) -> Vec<Event> {
    changes
        .iter()
        .filter_map(|change| {
            let (_, _, kind, resource_type) =
                EVENT_TYPES.iter().find(|(op, of, _, _)| *op == operation && *of == change.kind)?;
            Some(Event {
                id: new_id(),
                kind,
                occurred_at: at,
                resource_type,
                resource_id: change.id.clone(),
                patient_id: change.patient_id.clone(),
            })
        })
        .collect()
}

/// The scope resource a token must read to see events of `resource_type`;
/// `None` for what no scope reaches (billing, clients, webhook endpoints).
pub fn scope_resource(resource_type: &str) -> Option<Resource> {
    Some(match resource_type {
        "patient" => Resource::Patient,
        "referral" => Resource::ServiceRequest,
        "screening" => Resource::QuestionnaireResponse,
        "prescriber_consult" => Resource::Encounter,
        "treatment_attestation" => Resource::DocumentReference,
        "appointment" => Resource::Appointment,
        "course" => Resource::CarePlan,
        "room" => Resource::Location,
        "closure" => Resource::Schedule,
        _ => return None,
    })
}

/// Whether a reader of the feed, of `role` and with `scopes` if its token
/// carries any, sees the events of `resource_type`. With scopes: those of
/// the resources they let it read or search. Without: an admin every
/// event; an EHR integration those of the resources a scope reaches
/// ([`scope_resource`]), so never billing's (charges and payments are read
/// by staff and the patient, not by integrations), nor the API clients' or
/// the webhook endpoints' (admins').
pub fn followed_by(role: Role, scopes: Option<&Scopes>, resource_type: &str) -> bool {
    let resource = scope_resource(resource_type);
    match scopes {
        Some(scopes) => resource.is_some_and(|r| {
            scopes.allows(r, Permission::Read) || scopes.allows(r, Permission::Search)
        }),
        None => role == Role::Admin || resource.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: &str, id: &str, patient: Option<&str>) -> Change {
        Change { kind: kind.into(), id: id.into(), patient_id: patient.map(Into::into) }
    }

    #[test]
    fn a_write_makes_an_event_per_change_the_table_lists() {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 30, 14, 0, 0).unwrap();
        let mut n = 0;
        let mut ids = || {
            n += 1;
            format!("e{n}")
        };
        // (operation, changes, event types)
        let table: [(&str, Vec<Change>, Vec<&str>); 5] = [
            (
                "book_appointment",
                vec![change("appointment", "a1", Some("p1"))],
                vec!["appointment.booked"],
            ),
            (
                "book_course",
                vec![
                    change("course", "c1", Some("p1")),
                    change("appointment", "a1", Some("p1")),
                    change("appointment", "a2", Some("p1")),
                ],
                vec!["course.booked", "appointment.booked", "appointment.booked"],
            ),
            (
                "create_prescriber_consult",
                vec![change("intake_record", "k1", Some("p1"))],
                vec!["consult.recorded"],
            ),
            ("update_protocol", vec![change("protocol", "pain-5-day", None)], vec![]),
            ("get_patient", vec![change("patient", "p1", Some("p1"))], vec![]),
        ];
        for (operation, changes, expected) in table {
            let events = of_write(operation, &changes, at, &mut ids);
            let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
            assert_eq!(kinds, expected, "{operation}");
        }
        let events = of_write(
            "create_treatment_attestation",
            &[change("intake_record", "k2", Some("p2"))],
            at,
            &mut ids,
        );
        assert_eq!(events[0].resource_type, "treatment_attestation");
        assert_eq!(events[0].patient_id.as_deref(), Some("p2"));
        assert_eq!(events[0].occurred_at, at);
    }

    #[test]
    fn every_resource_type_but_admins_own_has_a_scope_and_types_are_listed_once() {
        for resource_type in resource_types() {
            let admins_only =
                matches!(resource_type, "client" | "webhook_endpoint" | "charge" | "payment");
            assert_eq!(scope_resource(resource_type).is_none(), admins_only, "{resource_type}");
        }
        let types = types();
        assert_eq!(types.len(), EVENT_TYPES.len() - 4, "four rows repeat a type");
        assert!(types.contains(&"appointment.no_show"));
    }

    #[test]
    fn admins_follow_every_event_integrations_what_a_scope_reaches() {
        let scoped = |text: &str| Scopes::parse(text).unwrap();
        let appointments = scoped("system/Appointment.rs");
        let patients = scoped("system/Patient.r");
        // (role, scopes, resource type, followed)
        let table = [
            (Role::Admin, None, "charge", true),
            (Role::Admin, None, "client", true),
            (Role::Admin, None, "appointment", true),
            (Role::Integration, None, "appointment", true),
            (Role::Integration, None, "patient", true),
            (Role::Integration, None, "charge", false),
            (Role::Integration, None, "payment", false),
            (Role::Integration, None, "client", false),
            (Role::Integration, None, "webhook_endpoint", false),
            (Role::Integration, Some(&appointments), "appointment", true),
            (Role::Integration, Some(&appointments), "patient", false),
            (Role::Integration, Some(&patients), "patient", true),
            (Role::Integration, Some(&appointments), "charge", false),
            (Role::Admin, Some(&appointments), "charge", false),
        ];
        for (role, scopes, resource_type, followed) in table {
            assert_eq!(
                followed_by(role, scopes, resource_type),
                followed,
                "{role:?} {scopes:?} {resource_type}"
            );
        }
        // Every resource type events name is decided, one way or the other.
        for resource_type in resource_types() {
            assert!(followed_by(Role::Admin, None, resource_type), "{resource_type}");
        }
    }
}
