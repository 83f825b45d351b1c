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

/// Administrators only: rooms, closures, protocols, settings.
pub const ADMIN: &[Role] = &[Role::Admin];

/// Staff plus EHR integrations: who may create and read patients.
pub const STAFF_AND_INTEGRATION: &[Role] =
    &[Role::Admin, Role::Clinician, Role::Scheduler, Role::Integration];

/// Staff, integrations, and a patient for its own record.
pub const ANY_ROLE: &[Role] = &Role::ALL;

/// Whether `role` may set the patient flags that decide which referrals are
/// required (in mental health treatment, pain referral required): they are
/// clinical records. `Err` names the first flag it may not set.
pub fn may_set_referral_flags(
    role: Role,
    in_mental_health_treatment: Option<bool>,
    pain_referral_required: Option<bool>,
) -> Result<(), &'static str> {
    if CLINICAL.contains(&role) {
        Ok(())
    } else if in_mental_health_treatment.is_some() {
        Err("in_mental_health_treatment")
    } else if pain_referral_required.is_some() {
        Err("pain_referral_required")
    } else {
        Ok(())
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
    fn only_clinical_roles_set_the_referral_flags() {
        for role in Role::ALL {
            let clinical = matches!(role, Role::Admin | Role::Clinician);
            assert_eq!(may_set_referral_flags(role, None, None), Ok(()));
            let first = if clinical { Ok(()) } else { Err("in_mental_health_treatment") };
            assert_eq!(may_set_referral_flags(role, Some(false), Some(true)), first);
            let second = if clinical { Ok(()) } else { Err("pain_referral_required") };
            assert_eq!(may_set_referral_flags(role, None, Some(false)), second);
        }
    }

    #[test]
    fn integrations_and_patients_are_not_staff() {
        assert!(!STAFF.contains(&Role::Integration));
        assert!(!STAFF.contains(&Role::Patient));
        assert!(!STAFF_AND_INTEGRATION.contains(&Role::Patient));
    }
}
