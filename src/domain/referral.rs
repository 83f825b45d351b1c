//! Referrals and what a patient's indications require ("Referrals" in
//! `docs/DOMAIN.md`), and the providers named on referrals, attestations and
//! prescriber consults.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::patient::{check_email, check_phone, contact, email_schema, phone_schema};
use super::values::{CalendarDate, Text};
use super::{not_after_today, valid, FieldError, Refusal};

/// A provider's name or practice: at most 200 characters.
pub type ProviderText = Text<200>;

/// Where a document is kept (an id or URL): at most 500 characters.
pub type DocumentReference = Text<500>;

/// Who wrote a referral.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferralKind {
    /// From the patient's treating mental health provider.
    MentalHealthProvider,
    /// From a pain management provider.
    PainManagement,
    /// A mental health evaluation.
    MentalHealthEvaluation,
}

impl ReferralKind {
    pub const ALL: [ReferralKind; 3] = [
        ReferralKind::MentalHealthProvider,
        ReferralKind::PainManagement,
        ReferralKind::MentalHealthEvaluation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReferralKind::MentalHealthProvider => "mental_health_provider",
            ReferralKind::PainManagement => "pain_management",
            ReferralKind::MentalHealthEvaluation => "mental_health_evaluation",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Where a referral stands. `expired` is not stored: it follows from the
/// date the letter was received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    Received,
    Verified,
    Rejected,
    Expired,
}

impl ReferralStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralStatus::Received => "received",
            ReferralStatus::Verified => "verified",
            ReferralStatus::Rejected => "rejected",
            ReferralStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            ReferralStatus::Received,
            ReferralStatus::Verified,
            ReferralStatus::Rejected,
            ReferralStatus::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Whether a letter received on `received_on` has expired by `today`.
pub fn is_expired(received_on: NaiveDate, today: NaiveDate, valid_days: u32) -> bool {
    today > expires_on(received_on, valid_days)
}

/// The status a referral shows on `today`: a rejection stands; otherwise an
/// old letter is `expired` whatever its stored status.
pub fn effective_status(
    stored: ReferralStatus,
    received_on: NaiveDate,
    today: NaiveDate,
    valid_days: u32,
) -> ReferralStatus {
    match stored {
        ReferralStatus::Rejected => ReferralStatus::Rejected,
        _ if is_expired(received_on, today, valid_days) => ReferralStatus::Expired,
        other => other,
    }
}

/// A clinician, practice or prescriber, with a way to reach them. Its
/// schema is written out below: it says "at least one of phone, fax or
/// email", which a derived schema cannot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub name: ProviderText,
    pub practice: ProviderText,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub fax: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// National Provider Identifier: 10 digits with a valid check digit.
    #[serde(default)]
    pub npi: Option<String>,
}

impl utoipa::PartialSchema for Provider {
    fn schema() -> RefOr<Schema> {
        let npi = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .pattern(Some(NPI_PATTERN))
            .format(Some(utoipa::openapi::SchemaFormat::Custom("npi".into())))
            .description(Some(
                "National Provider Identifier: 10 digits, the last a Luhn check digit \
                 (`null` or an empty string for none).",
            ));
        let fields = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("name", Ref::from_schema_name(ProviderText::name()))
            .property("practice", Ref::from_schema_name(ProviderText::name()))
            .property("phone", phone_schema())
            .property("fax", phone_schema())
            .property("email", email_schema())
            .property("npi", npi)
            .required("name")
            .required("practice")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        // A way to reach them: one of these present, neither null nor empty.
        let reachable =
            ["phone", "fax", "email"].into_iter().fold(AnyOfBuilder::new(), |any, name| {
                any.item(
                    ObjectBuilder::new()
                        .property(
                            name,
                            ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)),
                        )
                        .required(name),
                )
            });
        AllOfBuilder::new()
            .item(fields)
            .item(reachable)
            .description(Some(
                "A clinician, practice or prescriber, with at least one of `phone`, `fax` \
                 or `email`.",
            ))
            .examples([serde_json::json!({
                "name": "Dr. Jane Doe", "practice": "Riverside Psychiatry",
                "phone": "+1 555 010 3000", "fax": null, "email": "jdoe@riverside.example",
                "npi": "1234567893"
            })])
            .into()
    }
}

impl ToSchema for Provider {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((ProviderText::name().into(), ProviderText::schema()));
    }
}

/// The JSON Schema `pattern` of an NPI, or of nothing at all; the check
/// digit is checked by [`is_valid_npi`].
pub const NPI_PATTERN: &str = "^(?:[0-9]{10})?$";

impl Provider {
    /// At least one of phone, fax or email, each in a valid form, and an
    /// NPI whose check digit holds (name and practice parsed as [`Text`]).
    /// `at` is the path. Check before [`Self::normalized`]: the rules are
    /// about what the client sent; an empty contact or NPI is none.
    pub fn check(&self, at: &str) -> Vec<FieldError> {
        let f = |name: &str| format!("{at}.{name}");
        let (phone, fax, email) = (contact(&self.phone), contact(&self.fax), contact(&self.email));
        let mut errors: Vec<FieldError> = [
            phone.and_then(|p| check_phone(&f("phone"), p)),
            fax.and_then(|p| check_phone(&f("fax"), p)),
            email.and_then(|e| check_email(&f("email"), e)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if phone.is_none() && fax.is_none() && email.is_none() {
            errors.push(FieldError::new(at, "needs a phone, a fax or an email"));
        }
        if let Some(npi) = contact(&self.npi) {
            if !is_valid_npi(npi) {
                errors.push(FieldError::new(
                    f("npi"),
                    "is not a valid NPI (10 digits with a check digit)",
                ));
            }
        }
        errors
    }

    /// Trims every contact; empty optional fields become none.
    pub fn normalized(self) -> Self {
        let tidy = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        Provider {
            name: self.name,
            practice: self.practice,
            phone: tidy(self.phone),
            fax: tidy(self.fax),
            email: tidy(self.email),
            npi: tidy(self.npi),
        }
    }
}

/// A referral letter as stored. `status` is the stored one: the API shows
/// [`effective_status`], so it is not serialized here, nor are the instants
/// (shown in the clinic's offset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Referral {
    pub id: String,
    pub patient_id: String,
    pub kind: ReferralKind,
    pub provider: Provider,
    pub received_on: NaiveDate,
    /// Where the letter is kept (a document id or URL).
    pub document_reference: String,
    #[serde(skip)]
    pub status: ReferralStatus,
    pub reject_reason: Option<String>,
    /// `role:subject` of the clinician who verified or rejected it.
    pub decided_by: Option<String>,
    #[serde(skip)]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub updated_at: DateTime<Utc>,
}

/// A referral letter as it arrives.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "mental_health_provider",
    "provider": {"name": "Dr. Jane Doe", "practice": "Riverside Psychiatry", "phone": "+1 555 010 3000", "npi": "1234567893"},
    "received_on": "2026-11-20",
    "document_reference": "ehr://documents/8841"
}))]
pub struct NewReferral {
    pub kind: ReferralKind,
    pub provider: Provider,
    /// When the letter arrived; not in the future.
    pub received_on: CalendarDate,
    /// Where the letter is kept (a document id or URL).
    pub document_reference: DocumentReference,
}

/// The decision on a letter as it arrives: its provider and its date, as
/// sent; stored with its contacts tidied, as `received`.
pub fn receive(mut letter: NewReferral, today: NaiveDate) -> Result<NewReferral, Refusal> {
    let on = ("received_on", letter.received_on);
    letter.provider = dated(letter.provider, "provider", on, today)?;
    Ok(letter)
}

/// A provider named on a dated record (a letter, an attestation, a
/// consult), and the record's date: the provider's rules ([`Provider::check`]
/// at `at`) and a date not in the future. The provider comes back tidied.
pub fn dated(
    provider: Provider,
    at: &str,
    (field, date): (&str, CalendarDate),
    today: NaiveDate,
) -> Result<Provider, Refusal> {
    let mut errors = provider.check(at);
    errors.extend(not_after_today(field, date.get(), today));
    valid(errors)?;
    Ok(provider.normalized())
}

/// A clinician's verdict on a referral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Verify,
    Reject { reason: String },
}

impl Verdict {
    fn action(&self) -> &'static str {
        match self {
            Verdict::Verify => "verify",
            Verdict::Reject { .. } => "reject",
        }
    }
}

/// What a decided verdict writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub status: ReferralStatus,
    pub reject_reason: Option<String>,
}

/// The decision on a verdict: only a referral that is `received` today (not
/// decided already, not expired) can be verified or rejected.
pub fn decide(
    current: &Referral,
    verdict: Verdict,
    today: NaiveDate,
    valid_days: u32,
) -> Result<Decision, Refusal> {
    let status = effective_status(current.status, current.received_on, today, valid_days);
    if status != ReferralStatus::Received {
        return Err(Refusal::InvalidTransition {
            from: status.as_str(),
            action: verdict.action(),
            why: Some(format!(
                "only a received referral can be decided; this one is {}",
                status.as_str()
            )),
        });
    }
    Ok(match verdict {
        Verdict::Verify => Decision { status: ReferralStatus::Verified, reject_reason: None },
        Verdict::Reject { reason } => {
            Decision { status: ReferralStatus::Rejected, reject_reason: Some(reason) }
        }
    })
}

/// The last day a letter received on `received_on` counts.
pub fn expires_on(received_on: NaiveDate, valid_days: u32) -> NaiveDate {
    received_on.checked_add_days(Days::new(u64::from(valid_days))).unwrap_or(NaiveDate::MAX)
}

/// An NPI: 10 digits whose last is the Luhn check digit of the first nine
/// prefixed with 80840 (the NPI's issuer prefix).
pub fn is_valid_npi(npi: &str) -> bool {
    let digits: Vec<u32> = npi.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 10 || npi.chars().count() != 10 {
        return false;
    }
    // Luhn over "80840" + the first nine digits, doubling from the right.
    let body: Vec<u32> = [8, 0, 8, 4, 0].into_iter().chain(digits[..9].iter().copied()).collect();
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10 == digits[9]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn npi_check_digits() {
        // The example in the CMS NPI check-digit specification.
        assert!(is_valid_npi("1234567893"));
        assert!(!is_valid_npi("1234567890"));
        assert!(!is_valid_npi("123456789"));
        assert!(!is_valid_npi("12345678931"));
        assert!(!is_valid_npi("12345-7893"));
        assert!(!is_valid_npi("abcdefghij"));
    }

    #[test]
    fn referrals_expire_after_the_window() {
        use ReferralStatus::*;
        let received = date(2025, 12, 1);
        assert!(!is_expired(received, date(2026, 12, 1), 365));
        assert!(is_expired(received, date(2026, 12, 2), 365));
        // (stored, today, shown)
        for (stored, today, shown) in [
            (Verified, date(2026, 12, 1), Verified),
            (Verified, date(2026, 12, 2), Expired),
            (Received, date(2026, 12, 2), Expired),
            (Rejected, date(2027, 12, 2), Rejected),
        ] {
            assert_eq!(effective_status(stored, received, today, 365), shown);
        }
    }

    #[test]
    fn providers_need_a_name_a_practice_and_a_way_to_reach_them() {
        let good = Provider {
            name: Text::parse("Dr. Jane Doe").unwrap(),
            practice: Text::parse("Riverside").unwrap(),
            phone: None,
            fax: None,
            email: Some("jdoe@example.org".into()),
            npi: None,
        };
        assert!(good.check("provider").is_empty());
        let fields =
            |p: Provider| p.check("provider").into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(Provider { email: None, ..good.clone() }), ["provider"]);
        assert_eq!(
            fields(Provider { fax: Some("fax me".into()), ..good.clone() }),
            ["provider.fax"]
        );
        assert_eq!(
            fields(Provider { npi: Some("1234567890".into()), ..good.clone() }),
            ["provider.npi"]
        );
        assert!(fields(Provider { npi: Some("1234567893".into()), ..good }).is_empty());
    }

    fn referral(status: ReferralStatus, received_on: NaiveDate) -> Referral {
        let at = received_on.and_hms_opt(9, 0, 0).unwrap().and_utc();
        Referral {
            id: "r".into(),
            patient_id: "p".into(),
            kind: ReferralKind::MentalHealthProvider,
            provider: serde_json::from_value(serde_json::json!(
                {"name": "Dr. Jane Doe", "practice": "Riverside", "phone": "555 010 3000"}
            ))
            .unwrap(),
            received_on,
            document_reference: "ehr://1".into(),
            status,
            reject_reason: None,
            decided_by: None,
            decided_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// Which verdicts each referral takes on 1 December 2026 (365-day window).
    #[test]
    fn only_a_received_referral_that_has_not_expired_is_decided() {
        use ReferralStatus::*;
        let today = date(2026, 12, 1);
        let (fresh, old) = (date(2026, 11, 20), date(2025, 11, 30));
        let reject = || Verdict::Reject { reason: "unsigned".into() };
        #[rustfmt::skip]
        let table = [
            (Received, fresh, Verdict::Verify, Ok(Verified)),
            (Received, fresh, reject(), Ok(Rejected)),
            (Verified, fresh, Verdict::Verify, Err("verified")),
            (Verified, fresh, reject(), Err("verified")),
            (Rejected, fresh, Verdict::Verify, Err("rejected")),
            (Rejected, fresh, reject(), Err("rejected")),
            (Received, old, Verdict::Verify, Err("expired")),
            (Received, old, reject(), Err("expired")),
            (Verified, old, reject(), Err("expired")),
        ];
        for (stored, received_on, verdict, expected) in table {
            let decided = decide(&referral(stored, received_on), verdict.clone(), today, 365);
            match (decided, expected) {
                (Ok(decision), Ok(status)) => {
                    assert_eq!(decision.status, status);
                    assert_eq!(
                        decision.reject_reason.is_some(),
                        matches!(verdict, Verdict::Reject { .. })
                    );
                }
                (Err(Refusal::InvalidTransition { from, action, .. }), Err(shown)) => {
                    assert_eq!(from, shown);
                    assert_eq!(action, verdict.action());
                }
                (other, expected) => panic!("{stored:?} {verdict:?}: {other:?}, not {expected:?}"),
            }
        }
    }

    #[test]
    fn a_letter_is_received_only_as_sent_and_not_from_the_future() {
        let letter = |received_on: &str, phone: &str| -> NewReferral {
            serde_json::from_value(serde_json::json!({
                "kind": "pain_management", "received_on": received_on, "document_reference": "ehr://1",
                "provider": {"name": "Dr. Jane Doe", "practice": "Riverside", "phone": phone}
            }))
            .unwrap()
        };
        let today = date(2026, 12, 1);
        let received = receive(letter("2026-12-01", " +1 555 010 3000"), today).unwrap_err();
        assert_eq!(
            received,
            FieldError::refusal(
                "provider.phone",
                "is not a valid phone number (7 to 15 digits, optional leading +)"
            )
        );
        let stored = receive(letter("2026-12-01", "555 010 3000"), today).unwrap();
        assert_eq!(stored.provider.phone.as_deref(), Some("555 010 3000"));
        let Err(Refusal::Invalid(errors)) = receive(letter("2026-12-02", "x"), today) else {
            panic!("a letter from the future with a bad phone");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["provider.phone", "received_on"]);
    }
}
