//! The intake records that name a provider besides referrals: attestations
//! of ongoing mental health treatment, and consults with the Lamictal
//! prescriber ("Referrals" and "Contraindication screening" in
//! `docs/DOMAIN.md`). Each is sent as it is kept.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::referral::{dated, Provider};
use super::values::{CalendarDate, Text};
use super::Refusal;

/// A consult's agreed plan: at most 2000 characters.
pub type Plan = Text<2000>;

/// That the patient continues ongoing mental health treatment, as the
/// treating provider attested it; the latest one counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "provider": {"name": "Dr. Jane Doe", "practice": "Riverside Psychiatry", "email": "jdoe@riverside.example"},
    "attested_on": "2026-11-20"
}))]
pub struct Attestation {
    /// The treating mental health provider.
    pub provider: Provider,
    /// When the provider attested ongoing treatment; not in the future.
    pub attested_on: CalendarDate,
}

/// That the Lamictal prescriber was consulted and a dosing adjustment
/// agreed; it closes the `lamotrigine_prescriber_consult` item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "prescriber": {"name": "Dr. Sam Park", "practice": "Eastside Neurology", "phone": "+1 555 010 4400"},
    "consulted_on": "2026-11-25",
    "agreed_plan": "Hold the evening lamotrigine dose on infusion days"
}))]
pub struct Consult {
    /// Who prescribes the patient's lamotrigine.
    pub prescriber: Provider,
    /// Not in the future.
    pub consulted_on: CalendarDate,
    /// The dosing adjustment agreed.
    pub agreed_plan: Plan,
}

/// The decision on an attestation as sent: the provider's rules, and a
/// date not in the future.
pub fn attest(mut record: Attestation, today: NaiveDate) -> Result<Attestation, Refusal> {
    let on = ("attested_on", record.attested_on);
    record.provider = dated(record.provider, "provider", on, today)?;
    Ok(record)
}

/// The decision on a consult as sent: the prescriber's rules, and a date
/// not in the future.
pub fn consult(mut record: Consult, today: NaiveDate) -> Result<Consult, Refusal> {
    let on = ("consulted_on", record.consulted_on);
    record.prescriber = dated(record.prescriber, "prescriber", on, today)?;
    Ok(record)
}

/// An attestation or a consult as kept: whose it is, who recorded it, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept<T> {
    pub id: String,
    pub patient_id: String,
    pub record: T,
    /// `role:subject` of whoever recorded it.
    pub recorded_by: String,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FieldError;

    fn on(text: &str) -> CalendarDate {
        serde_json::from_value(serde_json::json!(text)).unwrap()
    }

    #[test]
    fn attestations_and_consults_are_dated_no_later_than_today() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let provider: Provider = serde_json::from_value(serde_json::json!(
            {"name": "Dr. Park", "practice": "Eastside", "email": "", "fax": " 555 010 4401 "}
        ))
        .unwrap();
        let attestation =
            |date: &str| Attestation { provider: provider.clone(), attested_on: on(date) };
        let kept = attest(attestation("2026-12-01"), today).unwrap();
        assert_eq!(kept.provider.email, None);
        assert_eq!(kept.provider.fax.as_deref(), Some("555 010 4401"));
        assert_eq!(
            attest(attestation("2026-12-02"), today),
            Err(FieldError::refusal("attested_on", "must not be in the future"))
        );
        let consultation = |date: &str| Consult {
            prescriber: provider.clone(),
            consulted_on: on(date),
            agreed_plan: Text::parse("Hold the evening dose").unwrap(),
        };
        assert!(consult(consultation("2026-11-30"), today).is_ok());
        assert_eq!(
            consult(consultation("2026-12-02"), today),
            Err(FieldError::refusal("consulted_on", "must not be in the future"))
        );
    }
}
