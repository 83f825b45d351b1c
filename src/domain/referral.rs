//! Referrals and what a patient's indications require ("Referrals" in
//! DOMAIN.md), and the providers named on referrals, attestations and
//! prescriber consults.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use super::patient::{check_email, check_phone, contact, email_schema, phone_schema};
use super::{check_text, text_schema, FieldError};

/// Longest provider name or practice, in characters.
pub const MAX_PROVIDER_TEXT: usize = 200;

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
    received_on
        .checked_add_days(Days::new(u64::from(valid_days)))
        .is_some_and(|last| today > last)
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub name: String,
    pub practice: String,
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
            .property("name", text_schema::<MAX_PROVIDER_TEXT>())
            .property("practice", text_schema::<MAX_PROVIDER_TEXT>())
            .property("phone", phone_schema())
            .property("fax", phone_schema())
            .property("email", email_schema())
            .property("npi", npi)
            .required("name")
            .required("practice")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        // A way to reach them: one of these present, neither null nor empty.
        let reachable =
            ["phone", "fax", "email"]
                .into_iter()
                .fold(AnyOfBuilder::new(), |any, name| {
                    any.item(
                        ObjectBuilder::new()
                            .property(
                                name,
                                ObjectBuilder::new()
                                    .schema_type(Type::String)
                                    .min_length(Some(1)),
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

impl ToSchema for Provider {}

/// The JSON Schema `pattern` of an NPI, or of nothing at all; the check
/// digit is checked by [`is_valid_npi`].
pub const NPI_PATTERN: &str = "^(?:[0-9]{10})?$";

impl Provider {
    /// Name and practice, at least one of phone, fax or email, each in a
    /// valid form, and an NPI whose check digit holds. `at` is the path.
    /// Check before [`Self::normalized`]: the rules are about what the
    /// client sent; an empty contact or NPI is none.
    pub fn check(&self, at: &str) -> Vec<FieldError> {
        let f = |name: &str| format!("{at}.{name}");
        let (phone, fax, email) = (
            contact(&self.phone),
            contact(&self.fax),
            contact(&self.email),
        );
        let mut errors: Vec<FieldError> = [
            check_text(&f("name"), &self.name, MAX_PROVIDER_TEXT),
            check_text(&f("practice"), &self.practice, MAX_PROVIDER_TEXT),
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

    /// Trims every field; empty optional fields become none.
    pub fn normalized(self) -> Self {
        let tidy = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        Provider {
            name: self.name.trim().to_owned(),
            practice: self.practice.trim().to_owned(),
            phone: tidy(self.phone),
            fax: tidy(self.fax),
            email: tidy(self.email),
            npi: tidy(self.npi),
        }
    }
}

/// An NPI: 10 digits whose last is the Luhn check digit of the first nine
/// prefixed with 80840 (the NPI's issuer prefix).
pub fn is_valid_npi(npi: &str) -> bool {
    let digits: Vec<u32> = npi.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 10 || npi.chars().count() != 10 {
        return false;
    }
    // Luhn over "80840" + the first nine digits, doubling from the right.
    let body: Vec<u32> = [8, 0, 8, 4, 0]
        .into_iter()
        .chain(digits[..9].iter().copied())
        .collect();
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
        let received = date(2025, 12, 1);
        assert!(!is_expired(received, date(2026, 12, 1), 365));
        assert!(is_expired(received, date(2026, 12, 2), 365));
        assert_eq!(
            effective_status(ReferralStatus::Verified, received, date(2026, 12, 1), 365),
            ReferralStatus::Verified
        );
        assert_eq!(
            effective_status(ReferralStatus::Verified, received, date(2026, 12, 2), 365),
            ReferralStatus::Expired
        );
        assert_eq!(
            effective_status(ReferralStatus::Received, received, date(2026, 12, 2), 365),
            ReferralStatus::Expired
        );
        assert_eq!(
            effective_status(ReferralStatus::Rejected, received, date(2027, 12, 2), 365),
            ReferralStatus::Rejected
        );
    }

    #[test]
    fn providers_need_a_name_a_practice_and_a_way_to_reach_them() {
        let good = Provider {
            name: "Dr. Jane Doe".into(),
            practice: "Riverside".into(),
            email: Some("jdoe@example.org".into()),
            ..Provider::default()
        };
        assert!(good.check("provider").is_empty());
        let fields = |p: Provider| {
            p.check("provider")
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fields(Provider {
                email: None,
                ..good.clone()
            }),
            ["provider"]
        );
        assert_eq!(
            fields(Provider {
                name: " ".into(),
                ..good.clone()
            }),
            ["provider.name"]
        );
        assert_eq!(
            fields(Provider {
                fax: Some("fax me".into()),
                ..good.clone()
            }),
            ["provider.fax"]
        );
        assert_eq!(
            fields(Provider {
                npi: Some("1234567890".into()),
                ..good.clone()
            }),
            ["provider.npi"]
        );
        assert!(fields(Provider {
            npi: Some("1234567893".into()),
            ..good
        })
        .is_empty());
    }
}
