//! Who may do what ("Who may do what" in `docs/DOMAIN.md`). Handlers declare the
//! roles they admit with one of these sets.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The role a caller's token carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Clinician,
    Scheduler,
    Integration,
    Patient,
}

impl Role {
    pub const ALL: [Role; 5] =
        [Role::Admin, Role::Clinician, Role::Scheduler, Role::Integration, Role::Patient];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Clinician => "clinician",
            Role::Scheduler => "scheduler",
            Role::Integration => "integration",
            Role::Patient => "patient",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Clinic staff who manage patients' records: admin, clinician, scheduler.
pub const STAFF: &[Role] = &[Role::Admin, Role::Clinician, Role::Scheduler];

/// Clinical records: screenings, verdicts on referrals, consults, and the
/// patient flags that decide which referrals are required.
pub const CLINICAL: &[Role] = &[Role::Admin, Role::Clinician];

/// Staff, and a patient for what is its own.
pub const STAFF_AND_PATIENT: &[Role] =
    &[Role::Admin, Role::Clinician, Role::Scheduler, Role::Patient];

/// Clinicians and admins, and a patient for what is its own: a patient's
/// access log.
pub const CLINICAL_AND_PATIENT: &[Role] = &[Role::Admin, Role::Clinician, Role::Patient];

/// Administrators only: rooms, closures, protocols, settings.
pub const ADMIN: &[Role] = &[Role::Admin];

/// Administrators and EHR integrations: who follows the change feed.
pub const ADMIN_AND_INTEGRATION: &[Role] = &[Role::Admin, Role::Integration];

/// Staff plus EHR integrations: who may create and read patients.
pub const STAFF_AND_INTEGRATION: &[Role] =
    &[Role::Admin, Role::Clinician, Role::Scheduler, Role::Integration];

/// Staff, integrations, and a patient for its own record.
pub const ANY_ROLE: &[Role] = &Role::ALL;

/// Fields that record clinical judgements or outcomes: set by clinicians
/// and admins only. The referral flags and the indications decide which
/// referrals a patient needs; pain and PHQ-9 scores are outcomes.
pub const CLINICAL_FIELDS: &[&str] = &[
    "in_mental_health_treatment",
    "pain_referral_required",
    "indications",
    // An indication's ICD-10-CM code: a clinician's, also on a new patient.
    "diagnosis",
    "pain_before",
    "pain_after",
    "phq9",
];

/// Whether `role` may send the fields `sent` (the names of those present in
/// a request): `Err` names the first clinical one it may not. Registering a
/// patient names its indications whoever registers; changing them later is
/// clinical, so `registering` lets `indications` through.
pub fn may_set(role: Role, sent: &[&'static str], registering: bool) -> Result<(), &'static str> {
    if CLINICAL.contains(&role) {
        return Ok(());
    }
    match sent
        .iter()
        .find(|f| CLINICAL_FIELDS.contains(f) && !(registering && **f == "indications"))
    {
        Some(field) => Err(field),
        None => Ok(()),
    }
}

/// The fields of an appointment `viewer` does not see: an integration reads
/// the schedule, not the outcomes and reasons of the infusions.
pub fn withheld_appointment_fields(viewer: Role) -> &'static [&'static str] {
    match viewer {
        Role::Integration => &["pain_before", "pain_after", "phq9", "cancel_reason"],
        _ => &[],
    }
}

/// Who did something (`role:subject`), as `viewer` sees it: a patient sees
/// the role only, never a staff member's or a system's identity.
pub fn actor_seen_by(actor: &str, viewer: Role) -> String {
    match viewer {
        Role::Patient => actor.split_once(':').map_or(actor, |(role, _)| role).to_owned(),
        _ => actor.to_owned(),
    }
}

/// Whether `role` may see why a screening found a patient ineligible: the
/// criteria are clinical findings. Everyone else learns only that it did.
pub fn sees_screening_reasons(role: Role) -> bool {
    CLINICAL.contains(&role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn only_clinical_roles_set_clinical_fields() {
        // (role, fields sent, registering, refused field)
        #[rustfmt::skip]
        let table: [(Role, &[&str], bool, Option<&str>); 12] = [
            (Role::Scheduler, &["given_name", "date_of_birth"], false, None),
            (Role::Scheduler, &["indications"], true, None),
            (Role::Scheduler, &["indications"], false, Some("indications")),
            (Role::Scheduler, &["email", "pain_referral_required"], true, Some("pain_referral_required")),
            (Role::Integration, &["in_mental_health_treatment", "indications"], true, Some("in_mental_health_treatment")),
            (Role::Scheduler, &["route"], false, None),
            (Role::Scheduler, &["route", "pain_before"], false, Some("pain_before")),
            (Role::Scheduler, &["phq9"], false, Some("phq9")),
            (Role::Scheduler, &["pain_after"], false, Some("pain_after")),
            (Role::Clinician, &["indications", "pain_before", "phq9"], false, None),
            (Role::Admin, &["in_mental_health_treatment"], false, None),
            (Role::Patient, &["pain_before"], false, Some("pain_before")),
        ];
        for (role, sent, registering, refused) in table {
            assert_eq!(may_set(role, sent, registering).err(), refused, "{role:?} {sent:?}");
        }
    }

    #[test]
    fn integrations_do_not_see_outcomes_and_patients_see_roles_not_people() {
        for role in Role::ALL {
            let withheld = withheld_appointment_fields(role);
            assert_eq!(withheld.contains(&"pain_before"), role == Role::Integration, "{role:?}");
            let shown = actor_seen_by("scheduler:front-desk", role);
            let expected = if role == Role::Patient { "scheduler" } else { "scheduler:front-desk" };
            assert_eq!(shown, expected);
        }
        assert_eq!(actor_seen_by("legacy", Role::Patient), "legacy");
    }

    #[test]
    fn integrations_and_patients_are_not_staff() {
        assert!(!STAFF.contains(&Role::Integration));
        assert!(!STAFF.contains(&Role::Patient));
        assert!(!STAFF_AND_INTEGRATION.contains(&Role::Patient));
    }
}
