//! The readiness checklist ("Readiness" in DOMAIN.md): what must be done
//! before a patient's infusions can be booked, computed from what is stored.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::patient::{IndicationCategory, PatientDetails};
use super::referral::{effective_status, ReferralKind, ReferralStatus};
use super::screening::Outcome;

/// The policy windows that readiness depends on (settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntakePolicy {
    pub screening_valid_days: u32,
    pub referral_valid_days: u32,
    pub attestation_valid_days: u32,
}

/// The latest screening, as readiness needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreeningSummary {
    pub screened_on: NaiveDate,
    pub outcome: Outcome,
    pub reasons: Vec<String>,
    pub lamotrigine: bool,
    pub recorded_at: DateTime<Utc>,
}

/// A referral, as readiness needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferralSummary {
    pub kind: ReferralKind,
    pub status: ReferralStatus,
    pub received_on: NaiveDate,
}

impl IntakeRecord {
    /// The record with the screening's reasons left out: readiness then says
    /// only that the screening is ineligible, for callers who are not
    /// clinicians.
    pub fn without_reasons(mut self) -> Self {
        if let Some(s) = &mut self.latest_screening {
            s.reasons.clear();
        }
        self
    }

    /// Whether the latest screening found a contraindication.
    pub fn latest_screening_ineligible(&self) -> bool {
        self.latest_screening
            .as_ref()
            .is_some_and(|s| s.outcome == Outcome::Ineligible)
    }
}

/// Everything stored about a patient's intake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntakeRecord {
    pub patient: PatientDetails,
    pub latest_screening: Option<ScreeningSummary>,
    pub referrals: Vec<ReferralSummary>,
    /// The date of the latest ongoing-treatment attestation.
    pub latest_attestation: Option<NaiveDate>,
    /// When the latest prescriber consult was recorded.
    pub latest_consult_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Done,
    Open,
    NotRequired,
}

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Item {
    /// `screening`, `mental_health_provider_referral`,
    /// `ongoing_treatment_attestation`, `pain_management_referral`,
    /// `mental_health_evaluation` or `lamotrigine_prescriber_consult`.
    #[schema(example = "screening")]
    pub code: &'static str,
    pub status: ItemStatus,
    /// Whether an open item stops booking. The lamotrigine consult does
    /// not: it stops the first infusion's check-in.
    pub blocking: bool,
    #[schema(example = "no screening recorded")]
    pub detail: String,
}

/// The checklist and its verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"ready": false, "items": [
    {"code": "screening", "status": "open", "blocking": true, "detail": "the latest screening (2026-11-20) is ineligible: pregnant"},
    {"code": "mental_health_provider_referral", "status": "done", "blocking": true, "detail": "verified referral received 2026-11-02"},
    {"code": "ongoing_treatment_attestation", "status": "done", "blocking": true, "detail": "attested 2026-11-02"},
    {"code": "pain_management_referral", "status": "not_required", "blocking": true, "detail": "no pain indication marked as needing one"},
    {"code": "mental_health_evaluation", "status": "not_required", "blocking": true, "detail": "no pain indication, or in mental health treatment"},
    {"code": "lamotrigine_prescriber_consult", "status": "not_required", "blocking": false, "detail": "no lamotrigine in the latest screening"}
]}))]
pub struct Readiness {
    /// True when every blocking item is done or not required.
    pub ready: bool,
    pub items: Vec<Item>,
}

impl Readiness {
    /// The open items that stop booking.
    pub fn open_blocking(&self) -> Vec<Item> {
        self.items
            .iter()
            .filter(|i| i.blocking && i.status == ItemStatus::Open)
            .cloned()
            .collect()
    }

    /// The lamotrigine consult item, if open: it stops check-ins.
    pub fn open_consult(&self) -> Option<Item> {
        self.items
            .iter()
            .find(|i| i.code == CONSULT && i.status == ItemStatus::Open)
            .cloned()
    }
}

pub const CONSULT: &str = "lamotrigine_prescriber_consult";

fn item(code: &'static str, blocking: bool, status: ItemStatus, detail: impl Into<String>) -> Item {
    Item {
        code,
        status,
        blocking,
        detail: detail.into(),
    }
}

fn within(date: NaiveDate, today: NaiveDate, days: u32) -> bool {
    date.checked_add_days(Days::new(u64::from(days)))
        .is_some_and(|last| today <= last)
}

/// The checklist for `record` on `today`.
pub fn readiness(record: &IntakeRecord, today: NaiveDate, policy: IntakePolicy) -> Readiness {
    let mental_health = record
        .patient
        .has_category(IndicationCategory::MentalHealth);
    let pain = record.patient.has_category(IndicationCategory::Pain);

    let screening = match &record.latest_screening {
        None => item("screening", true, ItemStatus::Open, "no screening recorded"),
        Some(s) if !within(s.screened_on, today, policy.screening_valid_days) => item(
            "screening",
            true,
            ItemStatus::Open,
            format!(
                "the latest screening ({}) is older than {} days: screen again",
                s.screened_on, policy.screening_valid_days
            ),
        ),
        Some(s) if s.outcome == Outcome::Ineligible && s.reasons.is_empty() => item(
            "screening",
            true,
            ItemStatus::Open,
            format!(
                "the latest screening ({}) is ineligible; a clinician can see why",
                s.screened_on
            ),
        ),
        Some(s) if s.outcome == Outcome::Ineligible => item(
            "screening",
            true,
            ItemStatus::Open,
            format!(
                "the latest screening ({}) is ineligible: {}",
                s.screened_on,
                s.reasons.join(", ")
            ),
        ),
        Some(s) => item(
            "screening",
            true,
            ItemStatus::Done,
            format!("eligible, screened {}", s.screened_on),
        ),
    };

    let referral = |code: &'static str, kind: ReferralKind, required: bool, why_not: &str| {
        if !required {
            return item(code, true, ItemStatus::NotRequired, why_not);
        }
        let statuses: Vec<(ReferralStatus, NaiveDate)> = record
            .referrals
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| {
                (
                    effective_status(r.status, r.received_on, today, policy.referral_valid_days),
                    r.received_on,
                )
            })
            .collect();
        if let Some((_, received)) = statuses
            .iter()
            .filter(|(s, _)| *s == ReferralStatus::Verified)
            .max_by_key(|(_, d)| *d)
        {
            return item(
                code,
                true,
                ItemStatus::Done,
                format!("verified referral received {received}"),
            );
        }
        let detail = if statuses.iter().any(|(s, _)| *s == ReferralStatus::Received) {
            "a referral was received and awaits a clinician's verification"
        } else if statuses.iter().any(|(s, _)| *s == ReferralStatus::Expired) {
            "the referral on file has expired: a new letter is needed"
        } else if statuses.iter().any(|(s, _)| *s == ReferralStatus::Rejected) {
            "the referral on file was rejected: a new letter is needed"
        } else {
            "no referral received"
        };
        item(code, true, ItemStatus::Open, detail)
    };

    let attestation = if !mental_health {
        item(
            "ongoing_treatment_attestation",
            true,
            ItemStatus::NotRequired,
            "no mental health indication",
        )
    } else {
        match record.latest_attestation {
            Some(on) if within(on, today, policy.attestation_valid_days) => item(
                "ongoing_treatment_attestation",
                true,
                ItemStatus::Done,
                format!("attested {on}"),
            ),
            Some(on) => item(
                "ongoing_treatment_attestation",
                true,
                ItemStatus::Open,
                format!(
                    "the latest attestation ({on}) is older than {} days",
                    policy.attestation_valid_days
                ),
            ),
            None => item(
                "ongoing_treatment_attestation",
                true,
                ItemStatus::Open,
                "no attestation of ongoing mental health treatment",
            ),
        }
    };

    let consult = match &record.latest_screening {
        Some(s) if s.lamotrigine => match record.latest_consult_at {
            Some(at) if at >= s.recorded_at => item(CONSULT, false, ItemStatus::Done, "the Lamictal prescriber was consulted"),
            _ => item(
                CONSULT,
                false,
                ItemStatus::Open,
                format!("lamotrigine listed in the screening of {}: consult the prescriber before the first infusion", s.screened_on),
            ),
        },
        _ => item(CONSULT, false, ItemStatus::NotRequired, "no lamotrigine in the latest screening"),
    };

    let items = vec![
        screening,
        referral(
            "mental_health_provider_referral",
            ReferralKind::MentalHealthProvider,
            mental_health,
            "no mental health indication",
        ),
        attestation,
        referral(
            "pain_management_referral",
            ReferralKind::PainManagement,
            pain && record.patient.pain_referral_required,
            "no pain indication marked as needing one",
        ),
        referral(
            "mental_health_evaluation",
            ReferralKind::MentalHealthEvaluation,
            pain && !record.patient.in_mental_health_treatment,
            "no pain indication, or in mental health treatment",
        ),
        consult,
    ];
    let ready = items
        .iter()
        .all(|i| !i.blocking || i.status != ItemStatus::Open);
    Readiness { ready, items }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::patient::{Indication, IndicationCode, IndicationSubtype};

    const POLICY: IntakePolicy = IntakePolicy {
        screening_valid_days: 30,
        referral_valid_days: 365,
        attestation_valid_days: 365,
    };

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn today() -> NaiveDate {
        date(2026, 12, 2)
    }

    fn patient(
        codes: &[IndicationCode],
        in_treatment: bool,
        pain_referral: bool,
    ) -> PatientDetails {
        PatientDetails {
            given_name: "A".into(),
            family_name: "B".into(),
            date_of_birth: date(1980, 1, 1),
            email: None,
            phone: None,
            indications: codes
                .iter()
                .map(|&code| Indication {
                    code,
                    subtype: code.has_subtypes().then_some(IndicationSubtype::Crps),
                })
                .collect(),
            in_mental_health_treatment: in_treatment,
            pain_referral_required: pain_referral,
        }
    }

    fn eligible(on: NaiveDate) -> Option<ScreeningSummary> {
        Some(ScreeningSummary {
            screened_on: on,
            outcome: Outcome::Eligible,
            reasons: vec![],
            lamotrigine: false,
            recorded_at: on.and_hms_opt(12, 0, 0).unwrap().and_utc(),
        })
    }

    fn verified(kind: ReferralKind, received_on: NaiveDate) -> ReferralSummary {
        ReferralSummary {
            kind,
            status: ReferralStatus::Verified,
            received_on,
        }
    }

    fn record(patient: PatientDetails) -> IntakeRecord {
        IntakeRecord {
            patient,
            latest_screening: eligible(today()),
            referrals: vec![],
            latest_attestation: None,
            latest_consult_at: None,
        }
    }

    fn status(r: &Readiness, code: &str) -> ItemStatus {
        r.items.iter().find(|i| i.code == code).unwrap().status
    }

    #[test]
    fn a_pain_patient_in_treatment_without_referral_flag_needs_only_a_screening() {
        let rec = record(patient(&[IndicationCode::ChronicPain], true, false));
        let r = readiness(&rec, today(), POLICY);
        assert!(r.ready, "{r:?}");
        assert_eq!(
            status(&r, "pain_management_referral"),
            ItemStatus::NotRequired
        );
        assert_eq!(
            status(&r, "mental_health_evaluation"),
            ItemStatus::NotRequired
        );
        let unscreened = IntakeRecord {
            latest_screening: None,
            ..rec
        };
        let r = readiness(&unscreened, today(), POLICY);
        assert!(!r.ready);
        assert_eq!(r.open_blocking()[0].code, "screening");
    }

    #[test]
    fn a_pain_patient_may_need_a_pain_referral_and_an_evaluation() {
        let mut rec = record(patient(&[IndicationCode::Migraine], false, true));
        let r = readiness(&rec, today(), POLICY);
        let open: Vec<&str> = r.open_blocking().iter().map(|i| i.code).collect();
        assert_eq!(
            open,
            ["pain_management_referral", "mental_health_evaluation"]
        );
        rec.referrals = vec![
            verified(ReferralKind::PainManagement, date(2026, 11, 1)),
            verified(ReferralKind::MentalHealthEvaluation, date(2026, 11, 1)),
        ];
        assert!(readiness(&rec, today(), POLICY).ready);
    }

    #[test]
    fn a_mental_health_patient_needs_a_verified_referral_and_a_recent_attestation() {
        let mut rec = record(patient(&[IndicationCode::Depression], true, false));
        let r = readiness(&rec, today(), POLICY);
        let open: Vec<&str> = r.open_blocking().iter().map(|i| i.code).collect();
        assert_eq!(
            open,
            [
                "mental_health_provider_referral",
                "ongoing_treatment_attestation"
            ]
        );

        rec.referrals = vec![ReferralSummary {
            kind: ReferralKind::MentalHealthProvider,
            status: ReferralStatus::Received,
            received_on: date(2026, 11, 1),
        }];
        rec.latest_attestation = Some(date(2026, 11, 1));
        let r = readiness(&rec, today(), POLICY);
        assert!(!r.ready);
        assert!(r.open_blocking()[0].detail.contains("awaits"));

        rec.referrals.push(verified(
            ReferralKind::MentalHealthProvider,
            date(2026, 11, 1),
        ));
        assert!(readiness(&rec, today(), POLICY).ready);
        // A referral of another kind does not count.
        rec.referrals = vec![verified(ReferralKind::PainManagement, date(2026, 11, 1))];
        assert!(!readiness(&rec, today(), POLICY).ready);
    }

    #[test]
    fn both_categories_add_up_their_requirements() {
        let rec = record(patient(
            &[IndicationCode::ChronicPain, IndicationCode::Anxiety],
            false,
            true,
        ));
        let open: Vec<&str> = readiness(&rec, today(), POLICY)
            .open_blocking()
            .iter()
            .map(|i| i.code)
            .collect();
        assert_eq!(
            open,
            [
                "mental_health_provider_referral",
                "ongoing_treatment_attestation",
                "pain_management_referral",
                "mental_health_evaluation"
            ]
        );
    }

    #[test]
    fn screenings_expire_after_the_window_and_ineligible_ones_name_why() {
        let mut rec = record(patient(&[IndicationCode::ChronicPain], true, false));
        // Screened 2 November: valid through 2 December (30 days).
        rec.latest_screening = eligible(date(2026, 11, 2));
        assert!(readiness(&rec, today(), POLICY).ready);
        assert!(!readiness(&rec, date(2026, 12, 3), POLICY).ready);
        rec.latest_screening = Some(ScreeningSummary {
            outcome: Outcome::Ineligible,
            reasons: vec!["pregnant".into()],
            ..eligible(today()).unwrap()
        });
        let r = readiness(&rec, today(), POLICY);
        assert!(!r.ready);
        assert!(
            r.open_blocking()[0]
                .detail
                .ends_with("ineligible: pregnant"),
            "{r:?}"
        );
    }

    #[test]
    fn referral_and_attestation_windows() {
        let mut rec = record(patient(&[IndicationCode::Depression], true, false));
        rec.referrals = vec![verified(
            ReferralKind::MentalHealthProvider,
            date(2025, 12, 2),
        )];
        rec.latest_attestation = Some(date(2025, 12, 2));
        assert!(readiness(&rec, today(), POLICY).ready);
        let r = readiness(&rec, date(2026, 12, 3), POLICY);
        let open: Vec<&str> = r.open_blocking().iter().map(|i| i.code).collect();
        assert_eq!(
            open,
            [
                "mental_health_provider_referral",
                "ongoing_treatment_attestation"
            ]
        );
        assert!(r.open_blocking()[0].detail.contains("expired"));
    }

    #[test]
    fn the_lamotrigine_consult_does_not_block_booking_and_closes_with_a_later_consult() {
        let mut rec = record(patient(&[IndicationCode::ChronicPain], true, false));
        let screened = ScreeningSummary {
            lamotrigine: true,
            ..eligible(today()).unwrap()
        };
        rec.latest_screening = Some(screened.clone());
        let r = readiness(&rec, today(), POLICY);
        assert!(r.ready);
        assert_eq!(r.open_consult().map(|i| i.code), Some(CONSULT));
        // A consult from before this screening does not count.
        rec.latest_consult_at = Some(screened.recorded_at - chrono::Duration::days(3));
        assert!(readiness(&rec, today(), POLICY).open_consult().is_some());
        rec.latest_consult_at = Some(screened.recorded_at + chrono::Duration::minutes(5));
        let r = readiness(&rec, today(), POLICY);
        assert!(r.open_consult().is_none());
        assert_eq!(status(&r, CONSULT), ItemStatus::Done);
    }
}
