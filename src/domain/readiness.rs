//! The readiness checklist ("Readiness" in `docs/DOMAIN.md`): what must be done
//! before a patient's infusions can be booked, computed from what is stored.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{self, Role};
use super::patient::{IndicationCategory, PatientDetails};
use super::referral::{effective_status, ReferralKind, ReferralStatus};
use super::screening::Outcome;
use super::Refusal;

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
    /// The record as `role` may see it: why a screening found the patient
    /// ineligible is for clinicians ([`access::sees_screening_reasons`]);
    /// for everyone else readiness says only that it is ineligible.
    pub fn seen_by(mut self, role: Role) -> Self {
        if !access::sees_screening_reasons(role) {
            if let Some(s) = &mut self.latest_screening {
                s.reasons.clear();
            }
        }
        self
    }

    /// Whether the latest screening found a contraindication.
    pub fn latest_screening_ineligible(&self) -> bool {
        self.latest_screening.as_ref().is_some_and(|s| s.outcome == Outcome::Ineligible)
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
pub enum ReadinessItemStatus {
    Done,
    Open,
    NotRequired,
}

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReadinessItem {
    /// `screening`, `mental_health_provider_referral`,
    /// `ongoing_treatment_attestation`, `pain_management_referral`,
    /// `mental_health_evaluation` or `lamotrigine_prescriber_consult`.
    #[schema(example = "screening")]
    pub code: &'static str,
    pub status: ReadinessItemStatus,
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
    pub items: Vec<ReadinessItem>,
}

pub const CONSULT: &str = "lamotrigine_prescriber_consult";

/// What a readiness gate stands before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A new booking, single or a whole course: every blocking item must be
    /// done.
    Booking,
    /// Moving a booked appointment: it is not a new course, so the
    /// checklist's windows are not asked again, but a contraindication found
    /// since (the latest screening is ineligible) stops the move.
    Reschedule,
    /// An infusion's check-in: the patient was screened and the latest
    /// screening is not ineligible, every referral the current indications
    /// require was verified at some time (its expiry matters only for new
    /// courses), and the lamotrigine prescriber consult is done. No path
    /// leads to an infusion around the intake: not a booking made before
    /// the indications changed, nor data brought in from elsewhere.
    CheckIn,
}

impl Purpose {
    /// What the gate stands before, in words.
    pub fn refused(self) -> &'static str {
        match self {
            Purpose::Booking => "booking",
            Purpose::Reschedule => "rescheduling",
            Purpose::CheckIn => "check-in",
        }
    }

    /// Whether an open `item` stops this purpose for `record`.
    fn stopped_by(self, item: &ReadinessItem, record: &IntakeRecord) -> bool {
        let contraindicated = item.code == SCREENING && record.latest_screening_ineligible();
        let unscreened = item.code == SCREENING && record.latest_screening.is_none();
        let never_verified = REFERRALS.iter().any(|(code, kind)| {
            item.code == *code
                && !record
                    .referrals
                    .iter()
                    .any(|r| r.kind == *kind && r.status == ReferralStatus::Verified)
        });
        match self {
            Purpose::Booking => item.blocking,
            Purpose::Reschedule => contraindicated,
            Purpose::CheckIn => {
                contraindicated || unscreened || never_verified || item.code == CONSULT
            }
        }
    }
}

/// The readiness gate before `purpose`: `Ok` when nothing on the checklist
/// stops it, else `not_ready` naming the open items that do.
pub fn gate(
    record: &IntakeRecord,
    purpose: Purpose,
    today: NaiveDate,
    policy: IntakePolicy,
) -> Result<(), Refusal> {
    let items: Vec<ReadinessItem> = readiness(record, today, policy)
        .items
        .into_iter()
        .filter(|i| i.status == ReadinessItemStatus::Open && purpose.stopped_by(i, record))
        .collect();
    if items.is_empty() {
        Ok(())
    } else {
        Err(Refusal::NotReady { items, refused: purpose.refused() })
    }
}

const SCREENING: &str = "screening";

/// The checklist's referral items, and the kind of referral each needs.
const REFERRALS: [(&str, ReferralKind); 3] = [
    ("mental_health_provider_referral", ReferralKind::MentalHealthProvider),
    ("pain_management_referral", ReferralKind::PainManagement),
    ("mental_health_evaluation", ReferralKind::MentalHealthEvaluation),
];

fn item(
    code: &'static str,
    blocking: bool,
    status: ReadinessItemStatus,
    detail: impl Into<String>,
) -> ReadinessItem {
    ReadinessItem { code, status, blocking, detail: detail.into() }
}

fn within(date: NaiveDate, today: NaiveDate, days: u32) -> bool {
    date.checked_add_days(Days::new(u64::from(days))).is_some_and(|last| today <= last)
}

/// The checklist for `record` on `today`.
pub fn readiness(record: &IntakeRecord, today: NaiveDate, policy: IntakePolicy) -> Readiness {
    let mental_health = record.patient.has_category(IndicationCategory::MentalHealth);
    let pain = record.patient.has_category(IndicationCategory::Pain);

    let screening = match &record.latest_screening {
        None => item(SCREENING, true, ReadinessItemStatus::Open, "no screening recorded"),
        Some(s) if !within(s.screened_on, today, policy.screening_valid_days) => item(
            SCREENING,
            true,
            ReadinessItemStatus::Open,
            format!(
                "the latest screening ({}) is older than {} days: screen again",
                s.screened_on, policy.screening_valid_days
            ),
        ),
        Some(s) if s.outcome == Outcome::Ineligible && s.reasons.is_empty() => item(
            SCREENING,
            true,
            ReadinessItemStatus::Open,
            format!(
                "the latest screening ({}) is ineligible; a clinician can see why",
                s.screened_on
            ),
        ),
        Some(s) if s.outcome == Outcome::Ineligible => item(
            SCREENING,
            true,
            ReadinessItemStatus::Open,
            format!(
                "the latest screening ({}) is ineligible: {}",
                s.screened_on,
                s.reasons.join(", ")
            ),
        ),
        Some(s) => item(
            SCREENING,
            true,
            ReadinessItemStatus::Done,
            format!("eligible, screened {}", s.screened_on),
        ),
    };

    let referral = |code: &'static str, kind: ReferralKind, required: bool, why_not: &str| {
        if !required {
            return item(code, true, ReadinessItemStatus::NotRequired, why_not);
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
        if let Some((_, received)) =
            statuses.iter().filter(|(s, _)| *s == ReferralStatus::Verified).max_by_key(|(_, d)| *d)
        {
            return item(
                code,
                true,
                ReadinessItemStatus::Done,
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
        item(code, true, ReadinessItemStatus::Open, detail)
    };

    let attestation = if !mental_health {
        item(
            "ongoing_treatment_attestation",
            true,
            ReadinessItemStatus::NotRequired,
            "no mental health indication",
        )
    } else {
        match record.latest_attestation {
            Some(on) if within(on, today, policy.attestation_valid_days) => item(
                "ongoing_treatment_attestation",
                true,
                ReadinessItemStatus::Done,
                format!("attested {on}"),
            ),
            Some(on) => item(
                "ongoing_treatment_attestation",
                true,
                ReadinessItemStatus::Open,
                format!(
                    "the latest attestation ({on}) is older than {} days",
                    policy.attestation_valid_days
                ),
            ),
            None => item(
                "ongoing_treatment_attestation",
                true,
                ReadinessItemStatus::Open,
                "no attestation of ongoing mental health treatment",
            ),
        }
    };

    let consult = match &record.latest_screening {
        Some(s) if s.lamotrigine => match record.latest_consult_at {
            Some(at) if at >= s.recorded_at => item(CONSULT, false, ReadinessItemStatus::Done, "the Lamictal prescriber was consulted"),
            _ => item(
                CONSULT,
                false,
                ReadinessItemStatus::Open,
                format!("lamotrigine listed in the screening of {}: consult the prescriber before the first infusion", s.screened_on),
            ),
        },
        _ => item(CONSULT, false, ReadinessItemStatus::NotRequired, "no lamotrigine in the latest screening"),
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
    let ready = items.iter().all(|i| !i.blocking || i.status != ReadinessItemStatus::Open);
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
            address: None,
            indications: codes
                .iter()
                .map(|&code| {
                    Indication::of(code, code.has_subtypes().then_some(IndicationSubtype::Crps))
                })
                .collect(),
            in_mental_health_treatment: in_treatment,
            pain_referral_required: pain_referral,
            identifiers: Vec::new(),
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
        ReferralSummary { kind, status: ReferralStatus::Verified, received_on }
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

    /// The codes of the open items that stop booking.
    fn open_codes(rec: &IntakeRecord, today: NaiveDate) -> Vec<&'static str> {
        open_blocking(&readiness(rec, today, POLICY)).iter().map(|i| i.code).collect()
    }

    fn open_blocking(r: &Readiness) -> Vec<ReadinessItem> {
        r.items
            .iter()
            .filter(|i| i.blocking && i.status == ReadinessItemStatus::Open)
            .cloned()
            .collect()
    }

    fn open_consult(r: &Readiness) -> Option<ReadinessItem> {
        r.items.iter().find(|i| i.code == CONSULT && i.status == ReadinessItemStatus::Open).cloned()
    }

    fn status(r: &Readiness, code: &str) -> ReadinessItemStatus {
        r.items.iter().find(|i| i.code == code).unwrap().status
    }

    #[test]
    fn a_pain_patient_in_treatment_without_referral_flag_needs_only_a_screening() {
        let rec = record(patient(&[IndicationCode::ChronicPain], true, false));
        let r = readiness(&rec, today(), POLICY);
        assert!(r.ready, "{r:?}");
        assert_eq!(status(&r, "pain_management_referral"), ReadinessItemStatus::NotRequired);
        assert_eq!(status(&r, "mental_health_evaluation"), ReadinessItemStatus::NotRequired);
        let unscreened = IntakeRecord { latest_screening: None, ..rec };
        let r = readiness(&unscreened, today(), POLICY);
        assert!(!r.ready);
        assert_eq!(open_blocking(&r)[0].code, "screening");
    }

    #[test]
    fn a_pain_patient_may_need_a_pain_referral_and_an_evaluation() {
        let mut rec = record(patient(&[IndicationCode::Migraine], false, true));
        assert_eq!(
            open_codes(&rec, today()),
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
        assert_eq!(
            open_codes(&rec, today()),
            ["mental_health_provider_referral", "ongoing_treatment_attestation"]
        );

        rec.referrals = vec![ReferralSummary {
            kind: ReferralKind::MentalHealthProvider,
            status: ReferralStatus::Received,
            received_on: date(2026, 11, 1),
        }];
        rec.latest_attestation = Some(date(2026, 11, 1));
        let r = readiness(&rec, today(), POLICY);
        assert!(!r.ready);
        assert!(open_blocking(&r)[0].detail.contains("awaits"));

        rec.referrals.push(verified(ReferralKind::MentalHealthProvider, date(2026, 11, 1)));
        assert!(readiness(&rec, today(), POLICY).ready);
        // A referral of another kind does not count.
        rec.referrals = vec![verified(ReferralKind::PainManagement, date(2026, 11, 1))];
        assert!(!readiness(&rec, today(), POLICY).ready);
    }

    #[test]
    fn both_categories_add_up_their_requirements() {
        let rec =
            record(patient(&[IndicationCode::ChronicPain, IndicationCode::Anxiety], false, true));
        let open: Vec<&str> =
            open_blocking(&readiness(&rec, today(), POLICY)).iter().map(|i| i.code).collect();
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
        assert!(open_blocking(&r)[0].detail.ends_with("ineligible: pregnant"), "{r:?}");
    }

    #[test]
    fn referral_and_attestation_windows() {
        let mut rec = record(patient(&[IndicationCode::Depression], true, false));
        rec.referrals = vec![verified(ReferralKind::MentalHealthProvider, date(2025, 12, 2))];
        rec.latest_attestation = Some(date(2025, 12, 2));
        assert!(readiness(&rec, today(), POLICY).ready);
        assert_eq!(
            open_codes(&rec, date(2026, 12, 3)),
            ["mental_health_provider_referral", "ongoing_treatment_attestation"]
        );
        let r = readiness(&rec, date(2026, 12, 3), POLICY);
        assert!(open_blocking(&r)[0].detail.contains("expired"));
    }

    #[test]
    fn the_lamotrigine_consult_does_not_block_booking_and_closes_with_a_later_consult() {
        let mut rec = record(patient(&[IndicationCode::ChronicPain], true, false));
        let screened = ScreeningSummary { lamotrigine: true, ..eligible(today()).unwrap() };
        rec.latest_screening = Some(screened.clone());
        let r = readiness(&rec, today(), POLICY);
        assert!(r.ready);
        assert_eq!(open_consult(&r).map(|i| i.code), Some(CONSULT));
        // A consult from before this screening does not count.
        rec.latest_consult_at = Some(screened.recorded_at - chrono::Duration::days(3));
        assert!(open_consult(&readiness(&rec, today(), POLICY)).is_some());
        rec.latest_consult_at = Some(screened.recorded_at + chrono::Duration::minutes(5));
        let r = readiness(&rec, today(), POLICY);
        assert!(open_consult(&r).is_none());
        assert_eq!(status(&r, CONSULT), ReadinessItemStatus::Done);
    }

    /// Which gate each state of the intake stops, and the items it names.
    #[test]
    fn each_gate_stops_on_its_own_items() {
        use Purpose::*;
        let pain = || record(patient(&[IndicationCode::ChronicPain], true, false));
        let screened = |outcome: Outcome, lamotrigine: bool, on: NaiveDate| ScreeningSummary {
            outcome,
            lamotrigine,
            reasons: if outcome == Outcome::Ineligible { vec!["pregnant".into()] } else { vec![] },
            ..eligible(on).unwrap()
        };
        let ready = pain();
        let unscreened = IntakeRecord { latest_screening: None, ..pain() };
        let stale = IntakeRecord {
            latest_screening: Some(screened(Outcome::Eligible, false, date(2026, 10, 1))),
            ..pain()
        };
        let contraindicated = IntakeRecord {
            latest_screening: Some(screened(Outcome::Ineligible, false, today())),
            ..pain()
        };
        let on_lamotrigine = IntakeRecord {
            latest_screening: Some(screened(Outcome::Eligible, true, today())),
            ..pain()
        };
        let unreferred = record(patient(&[IndicationCode::Depression], true, false));
        let expired_referral = IntakeRecord {
            referrals: vec![verified(ReferralKind::MentalHealthProvider, date(2025, 1, 2))],
            latest_attestation: Some(today()),
            ..unreferred.clone()
        };
        // (record, purpose, the items that stop it)
        #[rustfmt::skip]
        let table: [(&IntakeRecord, Purpose, &[&str]); 20] = [
            (&ready, Booking, &[]),
            (&ready, Reschedule, &[]),
            (&ready, CheckIn, &[]),
            (&unscreened, Booking, &["screening"]),
            (&unscreened, Reschedule, &[]),
            (&unscreened, CheckIn, &["screening"]),
            (&stale, Booking, &["screening"]),
            (&stale, Reschedule, &[]),
            (&stale, CheckIn, &[]),
            (&contraindicated, Booking, &["screening"]),
            (&contraindicated, Reschedule, &["screening"]),
            (&contraindicated, CheckIn, &["screening"]),
            (&on_lamotrigine, Booking, &[]),
            (&on_lamotrigine, Reschedule, &[]),
            (&on_lamotrigine, CheckIn, &[CONSULT]),
            (&unreferred, Booking, &[ "mental_health_provider_referral", "ongoing_treatment_attestation", ]),
            (&unreferred, Reschedule, &[]),
            (&unreferred, CheckIn, &["mental_health_provider_referral"]),
            (&expired_referral, Booking, &["mental_health_provider_referral"]),
            (&expired_referral, CheckIn, &[]),
        ];
        for (record, purpose, stopped) in table {
            let codes: Vec<&str> = match gate(record, purpose, today(), POLICY) {
                Ok(()) => vec![],
                Err(Refusal::NotReady { items, refused }) => {
                    assert_eq!(refused, purpose.refused());
                    items.iter().map(|i| i.code).collect()
                }
                Err(other) => panic!("{other:?}"),
            };
            assert_eq!(codes, stopped, "{purpose:?} {record:?}");
        }
    }

    #[test]
    fn only_clinical_roles_see_why_a_screening_failed() {
        let mut rec = record(patient(&[IndicationCode::ChronicPain], true, false));
        rec.latest_screening = Some(ScreeningSummary {
            outcome: Outcome::Ineligible,
            reasons: vec!["pregnant".into()],
            ..eligible(today()).unwrap()
        });
        for role in Role::ALL {
            let seen = rec.clone().seen_by(role);
            let detail = &readiness(&seen, today(), POLICY).items[0].detail;
            let clinical = matches!(role, Role::Admin | Role::Clinician);
            assert_eq!(detail.ends_with("ineligible: pregnant"), clinical, "{role:?}");
            assert_eq!(detail.contains("a clinician can see why"), !clinical, "{role:?}");
        }
    }
}
