//! Billing for a cash-pay clinic ("Billing" in `docs/DOMAIN.md`): the
//! clinic's billing profile, rendering clinicians, the fee schedule, the
//! charges a completed infusion creates, payments, the balance derived from
//! both, and the superbill a patient sends to an insurer. Money is integer
//! cents throughout; nothing is rounded.
//!
//! The codes and their time rules are CPT's and HCPCS's, as
//! `docs/DOMAIN.md` cites them: 96365 for an IV infusion's first hour (an
//! infusion of 15 minutes or less is not an infusion code), 96366 for each
//! additional hour past 30 minutes into it, and J3490 (unclassified drug)
//! for IV ketamine with its NDC.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use super::appointment::{self, Appointment, AppointmentStatus, Change, Request, Route};
use super::diagnosis::Diagnosis;
use super::patient::{check_phone, Indication};
use super::readiness::IntakeRecord;
use super::referral::is_valid_npi;
use super::values::Text;
use super::{Clinic, FieldError, Refusal};

/// A string of a fixed shape: parsed once into its canonical form, with a
/// schema that states the shape. `$check` takes the sent text and returns
/// the canonical text or what is wrong with it; the pattern states the same
/// rule, so that the contract and the server agree.
macro_rules! shaped {
    ($description:literal, $name:ident, pattern = $pattern:expr, example = $example:literal,
     $(format = $format:literal,)? $(max_length = $max:literal,)? check = $check:expr) => {
        #[doc = $description]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Applies the rule to `sent`: the canonical form, or what is wrong.
            pub fn parse(sent: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<String, String> = $check;
                check(sent).map(Self)
            }

            /// A value read back from storage, where it went only after
            /// [`Self::parse`].
            pub fn stored(text: String) -> Self {
                Self(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let sent = Cow::<str>::deserialize(d)?;
                Self::parse(&sent).map_err(serde::de::Error::custom)
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                #[expect(deprecated, reason = "`example` is what the contract uses throughout")]
                let schema = ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some($pattern))
                    .description(Some($description))
                    .example(Some($example.into()));
                $(let schema = schema.format(Some(SchemaFormat::Custom($format.into())));)?
                $(let schema = schema.max_length(Some($max));)?
                schema.into()
            }
        }

        impl ToSchema for $name {}
    };
}

shaped!(
    "A National Provider Identifier: 10 digits whose last is the Luhn check digit over the prefix 80840 and the first nine (CMS).",
    Npi,
    pattern = "^[0-9]{10}$",
    example = "1234567893",
    format = "npi",
    check = |sent| {
        if is_valid_npi(sent) {
            Ok(sent.to_owned())
        } else {
            Err("is not a valid NPI: 10 digits, the last a Luhn check digit".into())
        }
    }
);

shaped!(
    "An employer identification number (the clinic's tax id): nine digits, written `NN-NNNNNNN`; sent with or without the hyphen.",
    Ein,
    pattern = "^(0[1-9]|[1-9][0-9])-?[0-9]{7}$",
    example = "12-3456789",
    check = |sent| {
        let digits: String = sent.chars().filter(char::is_ascii_digit).collect();
        let shaped = sent.len() == 9 || (sent.len() == 10 && sent.as_bytes().get(2) == Some(&b'-'));
        if digits.len() != 9 || !shaped {
            return Err("must be an EIN: nine digits, `NN-NNNNNNN`".into());
        }
        if digits.starts_with("00") {
            return Err("is not a valid EIN: no EIN starts with 00".into());
        }
        Ok(format!("{}-{}", &digits[..2], &digits[2..]))
    }
);

shaped!(
    "A CMS place-of-service code: two digits; `11` is an office.",
    PlaceOfService,
    pattern = "^(0[1-9]|[1-9][0-9])$",
    example = "11",
    check = |sent| {
        if sent.len() == 2 && sent.chars().all(|c| c.is_ascii_digit()) && sent != "00" {
            Ok(sent.to_owned())
        } else {
            Err("must be a two-digit place-of-service code such as `11` (office)".into())
        }
    }
);

impl Default for PlaceOfService {
    fn default() -> Self {
        Self(OFFICE.to_owned())
    }
}

/// Place of service 11: office.
pub const OFFICE: &str = "11";

shaped!(
    "A National Drug Code in the 11-digit HIPAA form, `NNNNN-NNNN-NN` (5-4-2); sent with or without the hyphens.",
    Ndc,
    pattern = "^([0-9]{11}|[0-9]{5}-[0-9]{4}-[0-9]{2})$",
    example = "00409-2051-05",
    check = |sent| {
        let digits: String = sent.chars().filter(char::is_ascii_digit).collect();
        let hyphens: Vec<usize> = sent.match_indices('-').map(|(i, _)| i).collect();
        let shaped = (sent.len() == 11 && hyphens.is_empty())
            || (sent.len() == 13 && hyphens == [5, 10]);
        if digits.len() != 11 || !shaped {
            return Err("must be an 11-digit NDC, `NNNNN-NNNN-NN`".into());
        }
        Ok(format!("{}-{}-{}", &digits[..5], &digits[5..9], &digits[9..]))
    }
);

shaped!(
    "A quantity of a drug for its NDC line: a positive decimal with at most seven whole digits (no leading zero) and three places, such as `10`, `2.5` or `0.25`.",
    NdcQuantity,
    pattern = "^([1-9][0-9]{0,6}(\\.[0-9]{1,3})?|0\\.[0-9]{0,2}[1-9])$",
    example = "10",
    check = |sent| {
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        let (whole, fraction) = match sent.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (sent, None),
        };
        let fraction_ok = |f: &str| (1..=3).contains(&f.len()) && digits(f);
        let shaped = match (whole, fraction) {
            ("0", Some(f)) => fraction_ok(f) && f.ends_with(|c: char| matches!(c, '1'..='9')),
            (w, f) => {
                (1..=7).contains(&w.len())
                    && digits(w)
                    && !w.starts_with('0')
                    && f.is_none_or(fraction_ok)
            }
        };
        if shaped {
            Ok(sent.to_owned())
        } else {
            Err("must be a positive decimal such as `10`, `2.5` or `0.25`: at most seven whole digits, no leading zero, at most three places".into())
        }
    }
);

shaped!(
    "A U.S. state, district or territory, as its two-letter USPS code.",
    UsState,
    pattern = US_STATE_PATTERN,
    example = "CT",
    check = |sent| {
        if US_STATES.contains(&sent) {
            Ok(sent.to_owned())
        } else {
            Err("must be a two-letter USPS state or territory code such as `CT`".into())
        }
    }
);

/// [`US_STATES`] as a pattern.
const US_STATE_PATTERN: &str = "^(AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|AS|GU|MP|PR|VI|AA|AE|AP)$";

/// The USPS codes of the states, the District of Columbia, the territories
/// and the armed forces' addresses.
const US_STATES: [&str; 59] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY", "AS", "GU", "MP", "PR", "VI", "AA", "AE", "AP",
];

shaped!(
    "A ZIP code: five digits, or ZIP+4 as `NNNNN-NNNN`.",
    ZipCode,
    pattern = "^[0-9]{5}(-[0-9]{4})?$",
    example = "06510",
    check = |sent| {
        let shaped = match sent.len() {
            5 => sent.chars().all(|c| c.is_ascii_digit()),
            10 => {
                sent.char_indices().all(|(i, c)| if i == 5 { c == '-' } else { c.is_ascii_digit() })
            }
            _ => false,
        };
        if shaped {
            Ok(sent.to_owned())
        } else {
            Err("must be a ZIP code: `NNNNN` or `NNNNN-NNNN`".into())
        }
    }
);

shaped!(
    "A phone number: 7 to 15 digits, with spaces, dots, dashes and parentheses anywhere and an optional leading `+`; at most 30 characters.",
    Phone,
    pattern = "^\\+?(?:[ .()-]*[0-9]){7,15}[ .()-]*$",
    example = "+1 203 555 0100",
    max_length = 30,
    check = |sent| match check_phone("phone", sent) {
        None if sent.chars().count() <= 30 => Ok(sent.to_owned()),
        None => Err("must be at most 30 characters".into()),
        Some(e) => Err(e.message),
    }
);

/// A U.S. postal address, as a claim form holds one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"line1": "100 Church St", "line2": "Suite 200", "city": "New Haven",
    "state": "CT", "postal_code": "06510"}))]
pub struct PostalAddress {
    pub line1: Text<100>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<Text<100>>,
    pub city: Text<60>,
    pub state: UsState,
    pub postal_code: ZipCode,
}

/// An amount of money in U.S. cents: a whole number from `MIN` to
/// 100,000,000 ($1,000,000.00). [`Cents`] may be nothing (a price);
/// [`PaidCents`] may not (a payment).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Amount<const MIN: i64>(i64);

/// A price or a total: 0 or more cents.
pub type Cents = Amount<0>;

/// A payment's amount: more than nothing.
pub type PaidCents = Amount<1>;

impl<const MIN: i64> Amount<MIN> {
    pub const MAX: i64 = 100_000_000;

    pub fn new(value: i64) -> Option<Self> {
        (MIN..=Self::MAX).contains(&value).then_some(Self(value))
    }

    /// A stored amount, checked when it was written.
    pub fn stored(value: i64) -> Self {
        Self(value)
    }

    pub fn value(self) -> i64 {
        self.0
    }

    /// The same amount as [`Cents`].
    pub fn cents(self) -> Cents {
        Amount(self.0)
    }
}

impl<'de, const MIN: i64> Deserialize<'de> for Amount<MIN> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(d)?;
        Self::new(value).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "must be a whole number of cents from {MIN} to {}",
                Self::MAX
            ))
        })
    }
}

impl<const MIN: i64> PartialSchema for Amount<MIN> {
    fn schema() -> RefOr<Schema> {
        #[expect(deprecated, reason = "`example` is what the contract uses throughout")]
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
            .minimum(Some(MIN))
            .maximum(Some(Self::MAX))
            .description(Some(format!("U.S. cents, a whole number from {MIN}: 45000 is $450.00.")))
            .example(Some(45000.into()))
            .into()
    }
}

impl<const MIN: i64> ToSchema for Amount<MIN> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(if MIN > 0 { "PaidCents" } else { "Cents" })
    }
}

/// Cents as a person reads them: `$1,234.56`, `-$12.00`.
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let (whole, part) = (cents.unsigned_abs() / 100, cents.unsigned_abs() % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}${grouped}.{part:02}")
}

/// The clinic as a claim names it: the billing provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"legal_name": "Infusion Therapeutix LLC",
    "address": {"line1": "100 Church St", "city": "New Haven", "state": "CT", "postal_code": "06510"},
    "phone": "+1 203 555 0100", "tax_id": "12-3456789", "npi": "1234567893",
    "place_of_service": "11"}))]
pub struct BillingProfile {
    pub legal_name: Text<200>,
    pub address: PostalAddress,
    pub phone: Phone,
    /// The clinic's EIN.
    pub tax_id: Ein,
    /// The organization's (type 2) NPI.
    pub npi: Npi,
    /// Defaults to `11`, office.
    #[serde(default)]
    pub place_of_service: PlaceOfService,
}

/// A clinician who gives infusions, named on the claim as the rendering
/// provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Clinician {
    pub id: String,
    /// As it is printed on the superbill: `Grace Hopper`.
    pub name: String,
    /// `MD`, `DO`, `CRNA`, `NP`…
    pub credentials: String,
    /// The clinician's individual (type 1) NPI; one clinician each.
    pub npi: String,
    /// Only an active clinician may be named on a new infusion or charge.
    pub active: bool,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub updated_at: DateTime<Utc>,
}

/// A code the fee schedule prices: the administration codes and the drug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum BillingCode {
    /// CPT 96365: IV infusion for therapy, initial, up to one hour.
    #[serde(rename = "96365")]
    InfusionFirstHour,
    /// CPT 96366: each additional hour.
    #[serde(rename = "96366")]
    InfusionAdditionalHour,
    /// HCPCS J3490: unclassified drug (IV ketamine), with its NDC.
    #[serde(rename = "J3490")]
    UnclassifiedDrug,
}

impl BillingCode {
    pub const ALL: [BillingCode; 3] = [
        BillingCode::InfusionFirstHour,
        BillingCode::InfusionAdditionalHour,
        BillingCode::UnclassifiedDrug,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BillingCode::InfusionFirstHour => "96365",
            BillingCode::InfusionAdditionalHour => "96366",
            BillingCode::UnclassifiedDrug => "J3490",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The code set: `CPT` or `HCPCS`.
    pub fn system(self) -> &'static str {
        match self {
            BillingCode::UnclassifiedDrug => "HCPCS",
            _ => "CPT",
        }
    }

    /// The code's short description, as the superbill prints it.
    pub fn description(self) -> &'static str {
        match self {
            BillingCode::InfusionFirstHour => "IV infusion, therapeutic, initial, up to 1 hour",
            BillingCode::InfusionAdditionalHour => "IV infusion, therapeutic, each additional hour",
            BillingCode::UnclassifiedDrug => "Unclassified drug: ketamine HCl",
        }
    }

    /// Whether the code is a drug's, carrying an NDC.
    pub fn is_drug(self) -> bool {
        self == BillingCode::UnclassifiedDrug
    }
}

/// A unit of measure of a drug's NDC quantity, as claims qualify it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum NdcUnit {
    /// Milliliter.
    #[serde(rename = "ML")]
    Milliliter,
    /// Milligram.
    #[serde(rename = "ME")]
    Milligram,
    /// Gram.
    #[serde(rename = "GR")]
    Gram,
    /// Unit.
    #[serde(rename = "UN")]
    Unit,
}

impl NdcUnit {
    pub const ALL: [NdcUnit; 4] =
        [NdcUnit::Milliliter, NdcUnit::Milligram, NdcUnit::Gram, NdcUnit::Unit];

    pub fn as_str(self) -> &'static str {
        match self {
            NdcUnit::Milliliter => "ML",
            NdcUnit::Milligram => "ME",
            NdcUnit::Gram => "GR",
            NdcUnit::Unit => "UN",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.as_str() == text)
    }
}

/// The drug a line bills: its NDC, and the quantity one unit of the line is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ndc": "00409-2051-05", "unit": "ML", "quantity": "10"}))]
pub struct DrugUnit {
    pub ndc: Ndc,
    pub unit: NdcUnit,
    pub quantity: NdcQuantity,
}

/// A code's price in the fee schedule, and for the drug its NDC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Fee {
    pub code: BillingCode,
    pub description: &'static str,
    /// Per unit.
    pub price_cents: Cents,
    /// The drug's NDC and quantity per unit (J3490 only).
    pub drug: Option<DrugUnit>,
    #[serde(skip)]
    pub updated_at: DateTime<Utc>,
}

/// A fee as an admin sets it: J3490 needs its drug; the others refuse one.
pub fn price(
    code: BillingCode,
    price_cents: Cents,
    drug: Option<DrugUnit>,
) -> Result<(Cents, Option<DrugUnit>), Refusal> {
    match (code.is_drug(), &drug) {
        (true, None) => Err(Refusal::Invalid(vec![FieldError::new(
            "drug",
            "is required for J3490: the NDC, its unit and quantity per billed unit",
        )])),
        (false, Some(_)) => Err(Refusal::Invalid(vec![FieldError::new(
            "drug",
            format!("is only for a drug's code (J3490), not {}", code.as_str()),
        )])),
        _ => Ok((price_cents, drug)),
    }
}

/// How long an infusion ran, in whole minutes: 1 to 480.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct InfusionMinutes(u16);

impl InfusionMinutes {
    pub const MAX: u16 = 480;

    pub fn new(value: i64) -> Option<Self> {
        u16::try_from(value).ok().filter(|m| (1..=Self::MAX).contains(m)).map(Self)
    }

    pub fn value(self) -> u16 {
        self.0
    }
}

impl<'de> Deserialize<'de> for InfusionMinutes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(d)?;
        InfusionMinutes::new(value)
            .ok_or_else(|| serde::de::Error::custom("must be a whole number of minutes, 1 to 480"))
    }
}

impl PartialSchema for InfusionMinutes {
    fn schema() -> RefOr<Schema> {
        #[expect(deprecated, reason = "`example` is what the contract uses throughout")]
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int32)))
            .minimum(Some(1))
            .maximum(Some(Self::MAX))
            .description(Some("How long the infusion ran, in whole minutes, 1 to 480."))
            .example(Some(100.into()))
            .into()
    }
}

impl ToSchema for InfusionMinutes {}

/// The administration codes an IV infusion of `minutes` bills, with their
/// units: 96365 once past 15 minutes (15 or less is not an infusion code),
/// and 96366 for each further hour that runs more than 30 minutes into it
/// (91 minutes bills one, 151 two).
pub fn administration(minutes: InfusionMinutes) -> Vec<(BillingCode, u16)> {
    let m = minutes.value();
    let mut codes = Vec::new();
    if m > 15 {
        codes.push((BillingCode::InfusionFirstHour, 1));
    }
    if m > 90 {
        codes.push((BillingCode::InfusionAdditionalHour, (m - 90).div_ceil(60)));
    }
    codes
}

/// At most four diagnoses point from a line, as a claim's line holds.
pub const POINTERS_PER_LINE: usize = 4;

/// A charge as it is written: decided, never edited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCharge {
    pub patient_id: String,
    pub appointment_id: Option<String>,
    pub clinician_id: String,
    pub date_of_service: NaiveDate,
    pub code: BillingCode,
    pub modifiers: Vec<String>,
    pub units: u16,
    pub unit_price_cents: Cents,
    pub drug: Option<DrugUnit>,
    /// ICD-10-CM codes, at most [`POINTERS_PER_LINE`].
    pub diagnoses: Vec<String>,
    pub place_of_service: String,
}

/// A charge: one line of a bill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Charge {
    pub id: String,
    pub patient_id: String,
    /// The infusion it bills, if any.
    pub appointment_id: Option<String>,
    /// The rendering clinician.
    pub clinician_id: String,
    pub date_of_service: NaiveDate,
    pub code: BillingCode,
    /// Two-character CPT/HCPCS modifiers, at most four.
    pub modifiers: Vec<String>,
    pub units: u16,
    /// The fee schedule's price when the charge was made.
    pub unit_price_cents: Cents,
    /// `units` × `unit_price_cents`.
    pub amount_cents: i64,
    pub drug: Option<DrugUnit>,
    /// The patient's ICD-10-CM codes the line points to.
    pub diagnoses: Vec<String>,
    pub place_of_service: String,
    /// `role:subject` of whoever made it (a completion's: whoever completed
    /// the infusion).
    pub created_by: String,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
    /// Shown by the API with its time in the clinic's offset.
    #[serde(skip)]
    pub void: Option<Void>,
}

/// Why and by whom a charge or payment was voided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Void {
    pub reason: String,
    /// `role:subject`.
    pub by: String,
    #[serde(skip)]
    pub at: DateTime<Utc>,
}

/// The codes a patient's charges point to: the diagnoses coding its
/// indications, in their order, at most [`POINTERS_PER_LINE`].
pub fn diagnoses_of(indications: &[Indication]) -> Vec<String> {
    let mut codes: Vec<String> = Vec::new();
    for code in indications.iter().filter_map(|i| i.diagnosis.map(Diagnosis::code)) {
        if !codes.iter().any(|c| c == code) && codes.len() < POINTERS_PER_LINE {
            codes.push(code.to_owned());
        }
    }
    codes
}

/// What a completed infusion bills, as the fee schedule stands.
pub struct InfusionBilled<'a> {
    pub appointment: &'a Appointment,
    pub minutes: InfusionMinutes,
    pub clinician_id: &'a str,
    pub indications: &'a [Indication],
    pub fees: &'a [Fee],
    pub place_of_service: &'a str,
}

/// The charges of a completed IV infusion: its administration codes
/// ([`administration`]) and one unit of the drug, each at the fee
/// schedule's price, pointing to the patient's diagnoses. Another route
/// bills nothing by itself (the fee schedule holds IV codes only): staff
/// add its charges. A code the fee schedule does not price refuses the
/// completion, naming it, rather than bill it at nothing.
pub fn charges_of_infusion(billed: &InfusionBilled) -> Result<Vec<NewCharge>, Refusal> {
    let a = billed.appointment;
    if a.status != AppointmentStatus::Completed || a.route != Route::Iv {
        return Ok(Vec::new());
    }
    let mut lines = administration(billed.minutes);
    lines.push((BillingCode::UnclassifiedDrug, 1));
    let unpriced: Vec<&str> = lines
        .iter()
        .filter(|(code, _)| !billed.fees.iter().any(|f| f.code == *code))
        .map(|(code, _)| code.as_str())
        .collect();
    if !unpriced.is_empty() {
        return Err(Refusal::FeeScheduleIncomplete { codes: unpriced.join(", ") });
    }
    let diagnoses = diagnoses_of(billed.indications);
    Ok(lines
        .into_iter()
        .filter_map(|(code, units)| {
            let fee = billed.fees.iter().find(|f| f.code == code)?;
            Some(NewCharge {
                patient_id: a.patient_id.clone(),
                appointment_id: Some(a.id.clone()),
                clinician_id: billed.clinician_id.to_owned(),
                date_of_service: a.date,
                code,
                modifiers: Vec::new(),
                units,
                unit_price_cents: fee.price_cents,
                drug: fee.drug.clone(),
                diagnoses: diagnoses.clone(),
                place_of_service: billed.place_of_service.to_owned(),
            })
        })
        .collect())
}

shaped!(
    "A CPT/HCPCS modifier: two letters or digits, such as `JZ`.",
    Modifier,
    pattern = "^[A-Z0-9]{2}$",
    example = "JZ",
    check = |sent| {
        if sent.len() == 2 && sent.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
            Ok(sent.to_owned())
        } else {
            Err("must be a two-character modifier such as `JZ`".into())
        }
    }
);

/// Units on a line a person enters: 1 to 99.
pub const MAX_UNITS: u16 = 99;

/// A charge staff enter by hand (a correction, or a route the fee
/// schedule does not bill by itself), at the fee schedule's price.
pub struct ManualCharge<'a> {
    pub patient_id: &'a str,
    pub appointment: Option<&'a Appointment>,
    pub clinician: &'a Clinician,
    pub date_of_service: NaiveDate,
    pub code: BillingCode,
    pub units: u16,
    pub modifiers: Vec<Modifier>,
    /// `None`: the patient's own ([`diagnoses_of`]).
    pub diagnoses: Option<Vec<Diagnosis>>,
    pub indications: &'a [Indication],
    pub fees: &'a [Fee],
    pub place_of_service: &'a str,
    pub today: NaiveDate,
}

/// The decision on a hand-entered charge: its date of service is not in
/// the future and is its appointment's, if it names one (the patient's,
/// completed); its clinician is active; its code is priced; its modifiers
/// and diagnoses are at most four, each once.
pub fn manual_charge(m: ManualCharge) -> Result<NewCharge, Refusal> {
    let mut errors = Vec::new();
    if m.date_of_service > m.today {
        errors.push(FieldError::new("date_of_service", "must not be in the future"));
    }
    if !(1..=MAX_UNITS).contains(&m.units) {
        errors.push(FieldError::new("units", format!("must be from 1 to {MAX_UNITS}")));
    }
    if m.modifiers.len() > 4 {
        errors.push(FieldError::new("modifiers", "must be at most four"));
    }
    if !distinct(m.modifiers.iter().map(Modifier::as_str)) {
        errors.push(FieldError::new("modifiers", "must not repeat a modifier"));
    }
    if let Some(appointment) = m.appointment {
        if appointment.patient_id != m.patient_id {
            errors.push(FieldError::new("appointment_id", "is another patient's appointment"));
        } else if appointment.status != AppointmentStatus::Completed {
            errors.push(FieldError::new("appointment_id", "is not a completed appointment"));
        } else if appointment.date != m.date_of_service {
            errors.push(FieldError::new(
                "date_of_service",
                format!("must be the appointment's date, {}", appointment.date),
            ));
        }
    }
    if !m.clinician.active {
        errors.push(FieldError::new("clinician_id", "is not an active clinician"));
    }
    let diagnoses = match m.diagnoses {
        Some(codes) => {
            if codes.len() > POINTERS_PER_LINE {
                errors.push(FieldError::new("diagnoses", "must be at most four"));
            }
            if !distinct(codes.iter().map(|d| d.code())) {
                errors.push(FieldError::new("diagnoses", "must not repeat a code"));
            }
            for (i, code) in codes.iter().enumerate() {
                if let Some(why) = code.why_not_billable() {
                    errors.push(FieldError::new(format!("diagnoses[{i}]"), why));
                }
            }
            codes.iter().map(|d| d.code().to_owned()).collect()
        }
        None => diagnoses_of(m.indications),
    };
    super::valid(errors)?;
    let fee = m
        .fees
        .iter()
        .find(|f| f.code == m.code)
        .ok_or_else(|| Refusal::FeeScheduleIncomplete { codes: m.code.as_str().to_owned() })?;
    Ok(NewCharge {
        patient_id: m.patient_id.to_owned(),
        appointment_id: m.appointment.map(|a| a.id.clone()),
        clinician_id: m.clinician.id.clone(),
        date_of_service: m.date_of_service,
        code: m.code,
        modifiers: m.modifiers.iter().map(|x| x.as_str().to_owned()).collect(),
        units: m.units,
        unit_price_cents: fee.price_cents,
        drug: fee.drug.clone(),
        diagnoses,
        place_of_service: m.place_of_service.to_owned(),
    })
}

fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> bool {
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        if seen.contains(&item) {
            return false;
        }
        seen.push(item);
    }
    true
}

/// How a payment was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Cash,
    Card,
    Check,
    BankTransfer,
    Other,
}

impl PaymentMethod {
    pub const ALL: [PaymentMethod; 5] = [
        PaymentMethod::Cash,
        PaymentMethod::Card,
        PaymentMethod::Check,
        PaymentMethod::BankTransfer,
        PaymentMethod::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Cash => "cash",
            PaymentMethod::Card => "card",
            PaymentMethod::Check => "check",
            PaymentMethod::BankTransfer => "bank_transfer",
            PaymentMethod::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// A payment received from the patient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Payment {
    pub id: String,
    pub patient_id: String,
    pub amount_cents: PaidCents,
    pub received_on: NaiveDate,
    pub method: PaymentMethod,
    /// A check number, a card's last four digits, a transfer's id.
    pub reference: Option<String>,
    /// `role:subject` of whoever recorded it.
    pub created_by: String,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
    /// Shown by the API with its time in the clinic's offset.
    #[serde(skip)]
    pub void: Option<Void>,
}

/// A payment as it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPayment {
    pub patient_id: String,
    pub amount_cents: PaidCents,
    pub received_on: NaiveDate,
    pub method: PaymentMethod,
    pub reference: Option<String>,
}

/// The decision on a payment (more than nothing, [`PaidCents`]): received
/// by today.
pub fn payment(new: NewPayment, today: NaiveDate) -> Result<NewPayment, Refusal> {
    if new.received_on > today {
        return Err(FieldError::refusal("received_on", "must not be in the future"));
    }
    Ok(new)
}

/// Whether a charge or payment that stands may be voided: once only.
pub fn void(current: Option<&Void>, what: &'static str) -> Result<(), Refusal> {
    match current {
        None => Ok(()),
        Some(v) => Err(Refusal::AlreadyVoided { what, by: v.by.clone() }),
    }
}

/// A patient's account: what was charged and paid (voided lines left
/// out), and the difference. Derived each time; never stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"charged_cents": 60000, "paid_cents": 45000, "balance_cents": 15000}))]
pub struct Balance {
    pub charged_cents: i64,
    pub paid_cents: i64,
    /// `charged_cents` − `paid_cents`: negative when the patient paid ahead.
    pub balance_cents: i64,
}

impl Balance {
    pub fn of(charges: &[Charge], payments: &[Payment]) -> Self {
        let charged = charges.iter().filter(|c| c.void.is_none()).map(|c| c.amount_cents).sum();
        let paid =
            payments.iter().filter(|p| p.void.is_none()).map(|p| p.amount_cents.value()).sum();
        Self { charged_cents: charged, paid_cents: paid, balance_cents: charged - paid }
    }
}

/// A charge's amount: units × unit price, in cents.
pub fn amount(units: u16, unit_price: Cents) -> i64 {
    i64::from(units) * unit_price.value()
}

/// The patient as a superbill names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct BilledPatient {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: NaiveDate,
    pub address: Option<PostalAddress>,
}

/// A diagnosis on a superbill, with the letter its lines point to it by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct PointedDiagnosis {
    /// `A` to `L`, as a claim form letters them.
    pub pointer: String,
    pub code: String,
    pub description: String,
}

/// A line of a superbill: one charge that stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct BillLine {
    pub charge_id: String,
    pub date_of_service: NaiveDate,
    pub place_of_service: String,
    /// `CPT` or `HCPCS`.
    pub code_system: &'static str,
    pub code: BillingCode,
    pub description: &'static str,
    pub modifiers: Vec<String>,
    pub units: u16,
    pub unit_price_cents: Cents,
    pub amount_cents: i64,
    /// Letters of [`Superbill::diagnoses`].
    pub diagnosis_pointers: Vec<String>,
    pub drug: Option<DrugUnit>,
    pub rendering_clinician_id: String,
}

/// A payment on a superbill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct BillPayment {
    pub received_on: NaiveDate,
    pub method: PaymentMethod,
    pub reference: Option<String>,
    pub amount_cents: PaidCents,
}

/// A superbill: what a patient sends to an insurer to claim for services
/// it paid for, for the dates of service from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Superbill {
    /// The billing provider.
    pub clinic: BillingProfile,
    pub patient: BilledPatient,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The clinic-local day it was made.
    pub issued_on: NaiveDate,
    /// The rendering clinicians of its lines.
    pub clinicians: Vec<Clinician>,
    /// Every code its lines point to, lettered in order of first use.
    pub diagnoses: Vec<PointedDiagnosis>,
    /// By date of service; voided charges are not on it.
    pub lines: Vec<BillLine>,
    /// Payments received from `from` to `to`; voided ones are not on it.
    pub payments: Vec<BillPayment>,
    /// The lines' total.
    pub charged_cents: i64,
    /// The payments' total.
    pub paid_cents: i64,
    /// `charged_cents` − `paid_cents`: what remains of these services.
    pub balance_cents: i64,
    /// What the signature line certifies.
    pub attestation: &'static str,
}

/// What the provider signs on a superbill.
pub const ATTESTATION: &str =
    "I certify that the services listed above were medically indicated and rendered as shown.";

/// Claim forms letter diagnoses `A` to `L`: twelve at most.
const LETTERS: &str = "ABCDEFGHIJKL";

/// What a superbill is made from: the records as read.
pub struct BillFacts {
    pub clinic: BillingProfile,
    pub patient: BilledPatient,
    /// As asked; by default the period starts at [`first_dated`].
    pub from: Option<NaiveDate>,
    pub to: NaiveDate,
    pub issued_on: NaiveDate,
    /// The patient's charges from `from` (if given) to `to`, voided ones
    /// too.
    pub charges: Vec<Charge>,
    /// Its payments received from `from` (if given) to `to`, voided ones
    /// too.
    pub payments: Vec<Payment>,
    /// The clinicians the charges name.
    pub clinicians: Vec<Clinician>,
}

/// The day a superbill's period starts when none is asked: the first
/// standing date of service or payment (a deposit paid before the first
/// infusion is on it), or `to` when there is neither.
pub fn first_dated(charges: &[Charge], payments: &[Payment], to: NaiveDate) -> NaiveDate {
    let services = charges.iter().filter(|c| c.void.is_none()).map(|c| c.date_of_service);
    let paid = payments.iter().filter(|p| p.void.is_none()).map(|p| p.received_on);
    services.chain(paid).min().unwrap_or(to)
}

/// The superbill of `facts`: standing charges by date of service, their
/// diagnoses lettered in order of first use (a code past the twelfth
/// letter is left off the pointers, as a claim form has no room for it),
/// the clinicians they name, the standing payments, and the totals.
pub fn superbill(facts: BillFacts) -> Superbill {
    let from = facts.from.unwrap_or_else(|| first_dated(&facts.charges, &facts.payments, facts.to));
    let mut charges: Vec<Charge> = facts.charges.into_iter().filter(|c| c.void.is_none()).collect();
    charges.sort_by(|a, b| (a.date_of_service, &a.id).cmp(&(b.date_of_service, &b.id)));
    let mut diagnoses: Vec<PointedDiagnosis> = Vec::new();
    let mut lines = Vec::new();
    for c in &charges {
        let mut pointers = Vec::new();
        for code in &c.diagnoses {
            let at = match diagnoses.iter().position(|d| &d.code == code) {
                Some(at) => Some(at),
                None if diagnoses.len() < LETTERS.len() => {
                    let description =
                        Diagnosis::parse(code).map(Diagnosis::description).unwrap_or_default();
                    diagnoses.push(PointedDiagnosis {
                        pointer: LETTERS[diagnoses.len()..=diagnoses.len()].to_owned(),
                        code: code.clone(),
                        description: description.to_owned(),
                    });
                    Some(diagnoses.len() - 1)
                }
                None => None,
            };
            if let Some(at) = at {
                pointers.push(diagnoses[at].pointer.clone());
            }
        }
        lines.push(BillLine {
            charge_id: c.id.clone(),
            date_of_service: c.date_of_service,
            place_of_service: c.place_of_service.clone(),
            code_system: c.code.system(),
            code: c.code,
            description: c.code.description(),
            modifiers: c.modifiers.clone(),
            units: c.units,
            unit_price_cents: c.unit_price_cents,
            amount_cents: c.amount_cents,
            diagnosis_pointers: pointers,
            drug: c.drug.clone(),
            rendering_clinician_id: c.clinician_id.clone(),
        });
    }
    let payments: Vec<Payment> = facts.payments.into_iter().filter(|p| p.void.is_none()).collect();
    let balance = Balance::of(&charges, &payments);
    let mut clinicians: Vec<Clinician> = facts
        .clinicians
        .into_iter()
        .filter(|c| charges.iter().any(|charge| charge.clinician_id == c.id))
        .collect();
    clinicians.sort_by(|a, b| a.id.cmp(&b.id));
    clinicians.dedup_by(|a, b| a.id == b.id);
    let mut payments: Vec<BillPayment> = payments
        .into_iter()
        .map(|p| BillPayment {
            received_on: p.received_on,
            method: p.method,
            reference: p.reference,
            amount_cents: p.amount_cents,
        })
        .collect();
    payments.sort_by_key(|p| p.received_on);
    Superbill {
        clinic: facts.clinic,
        patient: facts.patient,
        from,
        to: facts.to,
        issued_on: facts.issued_on,
        clinicians,
        diagnoses,
        lines,
        payments,
        charged_cents: balance.charged_cents,
        paid_cents: balance.paid_cents,
        balance_cents: balance.balance_cents,
        attestation: ATTESTATION,
    }
}

/// What completing an infusion reads for its charges, beyond the
/// appointment.
#[derive(Clone, Debug)]
pub struct CompletionFacts {
    /// The clinician the completion names, if on record.
    pub clinician: Option<Clinician>,
    /// The patient's indications, with their diagnoses.
    pub indications: Vec<Indication>,
    pub fees: Vec<Fee>,
    /// The billing profile's, or office (`11`) until one is set.
    pub place_of_service: PlaceOfService,
}

/// The decision on `request` for an appointment ([`appointment::decide`]),
/// and what it bills: completing one names an active clinician, and an IV
/// infusion's completion creates its charges ([`charges_of_infusion`]) in
/// the same decision, so that both are written or neither. The infusion
/// ran within its session. `facts` are read for [`Request::clinician`];
/// without them a completion is refused as naming no clinician on record.
pub fn decide(
    current: &Appointment,
    request: Request,
    intake: Option<&IntakeRecord>,
    facts: Option<&CompletionFacts>,
    clinic: &Clinic,
) -> Result<(Change, Vec<NewCharge>), Refusal> {
    let Request::Complete { clinician_id, minutes, .. } = &request else {
        return appointment::decide(current, request, intake, clinic).map(|c| (c, Vec::new()));
    };
    let (clinician_id, minutes) = (clinician_id.clone(), *minutes);
    let change = appointment::decide(current, request, intake, clinic)?;
    let session = clinic.calendar.ends_at(current.date, current.session)
        - clinic.calendar.starts_at(current.date, current.session);
    if i64::from(minutes.value()) > session.num_minutes() {
        return Err(FieldError::refusal(
            "infusion_minutes",
            format!("is longer than the session ({} minutes)", session.num_minutes()),
        ));
    }
    let unknown = || FieldError::refusal("clinician_id", "is not a clinician on record");
    let facts = facts.ok_or_else(unknown)?;
    match &facts.clinician {
        Some(c) if c.active => {}
        Some(_) => return Err(FieldError::refusal("clinician_id", "is not an active clinician")),
        None => return Err(unknown()),
    }
    let done = Appointment { status: change.status, ..current.clone() };
    let charges = charges_of_infusion(&InfusionBilled {
        appointment: &done,
        minutes,
        clinician_id: &clinician_id,
        indications: &facts.indications,
        fees: &facts.fees,
        place_of_service: facts.place_of_service.as_str(),
    })?;
    Ok((change, charges))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::patient::{IndicationCode, IndicationSubtype};
    use crate::domain::testing::{appointment, clinic, completion, date, wednesday_morning};

    fn cents(value: i64) -> Cents {
        Cents::new(value).unwrap()
    }

    fn minutes(value: i64) -> InfusionMinutes {
        InfusionMinutes::new(value).unwrap()
    }

    #[test]
    fn an_infusion_bills_96365_past_15_minutes_and_96366_per_hour_past_90() {
        use BillingCode::{InfusionAdditionalHour as Hour, InfusionFirstHour as First};
        let cases: [(i64, &[(BillingCode, u16)]); 11] = [
            (1, &[]),
            (15, &[]),
            (16, &[(First, 1)]),
            (60, &[(First, 1)]),
            (90, &[(First, 1)]),
            (91, &[(First, 1), (Hour, 1)]),
            (150, &[(First, 1), (Hour, 1)]),
            (151, &[(First, 1), (Hour, 2)]),
            (210, &[(First, 1), (Hour, 2)]),
            (211, &[(First, 1), (Hour, 3)]),
            (480, &[(First, 1), (Hour, 7)]),
        ];
        for (m, billed) in cases {
            assert_eq!(administration(minutes(m)), billed, "{m} minutes");
        }
        for outside in [0, -1, 481, i64::from(u16::MAX) + 1] {
            assert_eq!(InfusionMinutes::new(outside), None, "{outside}");
        }
    }

    #[test]
    fn identifiers_are_read_into_their_canonical_form() {
        let npi = |s: &str| Npi::parse(s).map(|v| v.as_str().to_owned());
        assert_eq!(npi("1234567893"), Ok("1234567893".into()));
        for refused in ["1234567890", "123456789", "12345678930", "123456789X", ""] {
            assert!(npi(refused).is_err(), "NPI {refused:?}");
        }

        let ein = |s: &str| Ein::parse(s).map(|v| v.as_str().to_owned());
        assert_eq!(ein("123456789"), Ok("12-3456789".into()));
        assert_eq!(ein("12-3456789"), Ok("12-3456789".into()));
        for refused in ["00-1234567", "001234567", "12-345678", "1-23", "123-456789", "12 3456789"]
        {
            assert!(ein(refused).is_err(), "EIN {refused:?}");
        }

        let ndc = |s: &str| Ndc::parse(s).map(|v| v.as_str().to_owned());
        assert_eq!(ndc("00409-2051-05"), Ok("00409-2051-05".into()));
        assert_eq!(ndc("00409205105"), Ok("00409-2051-05".into()));
        for refused in
            ["0409205105", "0409-2051-05", "00409-205-105", "00409--205105", "0040920510X"]
        {
            assert!(ndc(refused).is_err(), "NDC {refused:?}");
        }

        for zip in ["06510", "06510-1234"] {
            assert_eq!(ZipCode::parse(zip).map(|z| z.as_str().to_owned()), Ok(zip.to_owned()));
        }
        for refused in ["6510", "065100", "06510-123", "06510 1234", "0651O", "06510-12345"] {
            assert!(ZipCode::parse(refused).is_err(), "ZIP {refused:?}");
        }

        for state in ["CT", "NY", "DC", "PR", "AE"] {
            assert!(UsState::parse(state).is_ok(), "{state}");
        }
        for refused in ["XX", "ct", "Conn", "", "C"] {
            assert!(UsState::parse(refused).is_err(), "state {refused:?}");
        }

        for place in ["11", "02", "99"] {
            assert!(PlaceOfService::parse(place).is_ok(), "{place}");
        }
        for refused in ["00", "1", "111", "1a"] {
            assert!(PlaceOfService::parse(refused).is_err(), "place {refused:?}");
        }
        assert_eq!(PlaceOfService::default().as_str(), OFFICE);
    }

    #[test]
    fn an_ndc_quantity_is_a_positive_decimal_of_at_most_three_places() {
        for quantity in ["10", "2.5", "0.001", "1234567.125"] {
            assert!(NdcQuantity::parse(quantity).is_ok(), "{quantity}");
        }
        for refused in ["0", "0.000", "1.2345", "", ".5", "5.", "-1", "1e3", "12345678", "1,5"] {
            assert!(NdcQuantity::parse(refused).is_err(), "quantity {refused:?}");
        }
    }

    #[test]
    fn cents_are_whole_and_read_as_dollars() {
        for (value, shown) in [
            (0, "$0.00"),
            (5, "$0.05"),
            (123_456, "$1,234.56"),
            (-1200, "-$12.00"),
            (100_000, "$1,000.00"),
            (100_000_000, "$1,000,000.00"),
        ] {
            assert_eq!(dollars(value), shown, "{value}");
        }
        assert_eq!(Cents::new(-1), None);
        assert_eq!(Cents::new(Cents::MAX + 1), None);
        assert!(serde_json::from_str::<Cents>("45000").is_ok());
        for refused in ["-1", "12.5", "45000.0", "\"45000\"", "100000001"] {
            assert!(serde_json::from_str::<Cents>(refused).is_err(), "{refused}");
        }
        assert_eq!(amount(3, cents(16_667)), 50_001);
    }

    #[test]
    fn a_fee_carries_a_drug_for_j3490_and_for_nothing_else() {
        let drug = DrugUnit {
            ndc: Ndc::parse("00409-2051-05").unwrap(),
            unit: NdcUnit::Milliliter,
            quantity: NdcQuantity::parse("10").unwrap(),
        };
        assert!(price(BillingCode::UnclassifiedDrug, cents(7500), Some(drug.clone())).is_ok());
        assert!(price(BillingCode::InfusionFirstHour, cents(45000), None).is_ok());
        for (code, drug) in [
            (BillingCode::UnclassifiedDrug, None),
            (BillingCode::InfusionFirstHour, Some(drug.clone())),
            (BillingCode::InfusionAdditionalHour, Some(drug)),
        ] {
            let refused = price(code, cents(1), drug);
            assert!(
                matches!(&refused, Err(Refusal::Invalid(e)) if e[0].field == "drug"),
                "{code:?}"
            );
        }
    }

    fn coded(code: IndicationCode, subtype: Option<IndicationSubtype>, dx: &str) -> Indication {
        Indication { diagnosis: Diagnosis::parse(dx), ..Indication::of(code, subtype) }
    }

    fn clinician(id: &str, active: bool) -> Clinician {
        let at = wednesday_morning();
        Clinician {
            id: id.into(),
            name: "Grace Hopper".into(),
            credentials: "MD".into(),
            npi: "1003000126".into(),
            active,
            created_at: at,
            updated_at: at,
        }
    }

    fn fees() -> Vec<Fee> {
        let fee = |code: BillingCode, price: i64, drug: Option<DrugUnit>| Fee {
            code,
            description: code.description(),
            price_cents: cents(price),
            drug,
            updated_at: wednesday_morning(),
        };
        let drug = DrugUnit {
            ndc: Ndc::parse("00409-2051-05").unwrap(),
            unit: NdcUnit::Milliliter,
            quantity: NdcQuantity::parse("10").unwrap(),
        };
        vec![
            fee(BillingCode::InfusionFirstHour, 45000, None),
            fee(BillingCode::InfusionAdditionalHour, 15000, None),
            fee(BillingCode::UnclassifiedDrug, 7500, Some(drug)),
        ]
    }

    /// Patient `p-1`'s IV infusion on Wednesday 2 December, completed.
    fn completed() -> Appointment {
        let a = appointment("a-1", date(2026, 12, 2), wednesday_morning());
        Appointment { status: AppointmentStatus::Completed, ..a }
    }

    #[test]
    fn a_completed_iv_infusion_bills_its_codes_and_the_drug_at_the_fee_schedule() {
        let indications = [
            coded(IndicationCode::ChronicPain, Some(IndicationSubtype::Crps), "G90.50"),
            coded(IndicationCode::Depression, None, "F33.1"),
        ];
        let fees = fees();
        let done = completed();
        let billed = |a: &Appointment, m: i64, fees: &[Fee]| {
            charges_of_infusion(&InfusionBilled {
                appointment: a,
                minutes: minutes(m),
                clinician_id: "c-1",
                indications: &indications,
                fees,
                place_of_service: OFFICE,
            })
        };
        let charges = billed(&done, 151, &fees).unwrap();
        let lines: Vec<(BillingCode, u16, i64)> =
            charges.iter().map(|c| (c.code, c.units, c.unit_price_cents.value())).collect();
        assert_eq!(
            lines,
            [
                (BillingCode::InfusionFirstHour, 1, 45000),
                (BillingCode::InfusionAdditionalHour, 2, 15000),
                (BillingCode::UnclassifiedDrug, 1, 7500),
            ]
        );
        for c in &charges {
            assert_eq!(c.diagnoses, ["G90.50", "F33.1"]);
            assert_eq!((c.patient_id.as_str(), c.clinician_id.as_str()), ("p-1", "c-1"));
            assert_eq!(c.appointment_id.as_deref(), Some("a-1"));
            assert_eq!(c.date_of_service, date(2026, 12, 2));
            assert_eq!(c.drug.is_some(), c.code == BillingCode::UnclassifiedDrug);
        }

        // Not an IV infusion, or not completed: nothing.
        let oral = Appointment { route: Route::Oral, ..done.clone() };
        assert_eq!(billed(&oral, 100, &fees).unwrap(), []);
        let checked_in = Appointment { status: AppointmentStatus::CheckedIn, ..done.clone() };
        assert_eq!(billed(&checked_in, 100, &fees).unwrap(), []);

        // A code the schedule does not price refuses the whole completion.
        let no_drug: Vec<Fee> = fees.iter().filter(|f| !f.code.is_drug()).cloned().collect();
        assert_eq!(
            billed(&done, 100, &no_drug),
            Err(Refusal::FeeScheduleIncomplete { codes: "J3490".into() })
        );
        // A 15-minute infusion bills only the drug, so only its price matters.
        let drug_only: Vec<Fee> = fees.iter().filter(|f| f.code.is_drug()).cloned().collect();
        assert_eq!(billed(&done, 15, &drug_only).unwrap().len(), 1);
        assert_eq!(
            billed(&done, 16, &drug_only),
            Err(Refusal::FeeScheduleIncomplete { codes: "96365".into() })
        );
    }

    #[test]
    fn a_line_points_to_at_most_four_coded_indications_each_once() {
        let pain = IndicationCode::ChronicPain;
        let indications = [
            coded(pain, Some(IndicationSubtype::Crps), "G90.50"),
            Indication::of(IndicationCode::Migraine, None),
            coded(IndicationCode::Depression, None, "F33.1"),
            coded(IndicationCode::Anxiety, None, "F41.1"),
            coded(pain, Some(IndicationSubtype::Crps), "G90.50"),
            coded(pain, Some(IndicationSubtype::Neuropathic), "G89.4"),
            coded(pain, Some(IndicationSubtype::Other), "G89.29"),
        ];
        assert_eq!(diagnoses_of(&indications), ["G90.50", "F33.1", "F41.1", "G89.4"]);
        assert_eq!(diagnoses_of(&[]), Vec::<String>::new());
    }

    /// A hand-entered 96366 for patient `p-1`'s completed infusion, valid
    /// as it stands; each case changes one thing.
    struct Entered {
        appointment: Option<Appointment>,
        clinician: Clinician,
        date_of_service: NaiveDate,
        units: u16,
        modifiers: Vec<&'static str>,
        diagnoses: Option<Vec<&'static str>>,
    }

    impl Entered {
        fn new() -> Self {
            Entered {
                appointment: Some(completed()),
                clinician: clinician("c-1", true),
                date_of_service: date(2026, 12, 2),
                units: 1,
                modifiers: vec![],
                diagnoses: None,
            }
        }

        fn decide(&self) -> Result<NewCharge, Refusal> {
            let indications =
                [coded(IndicationCode::ChronicPain, Some(IndicationSubtype::Crps), "G90.50")];
            let fees = fees();
            manual_charge(ManualCharge {
                patient_id: "p-1",
                appointment: self.appointment.as_ref(),
                clinician: &self.clinician,
                date_of_service: self.date_of_service,
                code: BillingCode::InfusionAdditionalHour,
                units: self.units,
                modifiers: self.modifiers.iter().map(|m| Modifier::parse(m).unwrap()).collect(),
                diagnoses: self
                    .diagnoses
                    .as_ref()
                    .map(|codes| codes.iter().map(|c| Diagnosis::parse(c).unwrap()).collect()),
                indications: &indications,
                fees: &fees,
                place_of_service: OFFICE,
                today: date(2026, 12, 2),
            })
        }
    }

    fn refused_fields(result: Result<NewCharge, Refusal>) -> Vec<String> {
        match result {
            Err(Refusal::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("not a field refusal: {other:?}"),
        }
    }

    #[test]
    fn a_hand_entered_charge_is_checked_before_it_is_priced() {
        let made = Entered::new().decide().unwrap();
        assert_eq!((made.code, made.units), (BillingCode::InfusionAdditionalHour, 1));
        assert_eq!(made.unit_price_cents, cents(15000));
        assert_eq!(made.diagnoses, ["G90.50"], "the patient's own when none are given");
        assert_eq!(made.appointment_id.as_deref(), Some("a-1"));
        let with_codes = Entered {
            modifiers: vec!["JZ", "59"],
            diagnoses: Some(vec!["G90.59", "G89.29"]),
            ..Entered::new()
        };
        let made = with_codes.decide().unwrap();
        assert_eq!(
            (made.modifiers, made.diagnoses),
            (vec!["JZ".into(), "59".into()], vec!["G90.59".into(), "G89.29".into()])
        );

        let other_patients = Appointment { patient_id: "p-2".into(), ..completed() };
        let not_completed = Appointment { status: AppointmentStatus::CheckedIn, ..completed() };
        let cases: [(Entered, &[&str]); 10] = [
            (
                Entered { date_of_service: date(2026, 12, 3), appointment: None, ..Entered::new() },
                &["date_of_service"],
            ),
            (Entered { clinician: clinician("c-1", false), ..Entered::new() }, &["clinician_id"]),
            (Entered { diagnoses: Some(vec!["G90.5"]), ..Entered::new() }, &["diagnoses[0]"]),
            (
                Entered { diagnoses: Some(vec!["G90.50", "F41"]), ..Entered::new() },
                &["diagnoses[1]"],
            ),
            (
                Entered { diagnoses: Some(vec!["G90.50", "G90.50"]), ..Entered::new() },
                &["diagnoses"],
            ),
            (
                Entered { modifiers: vec!["JZ", "59", "XU", "GA", "25"], ..Entered::new() },
                &["modifiers"],
            ),
            (Entered { modifiers: vec!["JZ", "JZ"], ..Entered::new() }, &["modifiers"]),
            (Entered { appointment: Some(other_patients), ..Entered::new() }, &["appointment_id"]),
            (Entered { appointment: Some(not_completed), ..Entered::new() }, &["appointment_id"]),
            (
                Entered { date_of_service: date(2026, 12, 1), ..Entered::new() },
                &["date_of_service"],
            ),
        ];
        for (i, (entered, fields)) in cases.into_iter().enumerate() {
            assert_eq!(refused_fields(entered.decide()), fields, "case {i}");
        }
        for units in [0, MAX_UNITS + 1] {
            assert_eq!(refused_fields(Entered { units, ..Entered::new() }.decide()), ["units"]);
        }
        // Every refusal at once, not the first alone.
        let all_wrong = Entered {
            date_of_service: date(2026, 12, 3),
            appointment: None,
            clinician: clinician("c-1", false),
            modifiers: vec!["JZ", "JZ"],
            ..Entered::new()
        };
        assert_eq!(
            refused_fields(all_wrong.decide()),
            ["date_of_service", "modifiers", "clinician_id"]
        );
    }

    fn charge(id: &str, day: u32, code: BillingCode, units: u16, diagnoses: &[&str]) -> Charge {
        let price = fees().into_iter().find(|f| f.code == code).unwrap().price_cents;
        Charge {
            id: id.into(),
            patient_id: "p-1".into(),
            appointment_id: None,
            clinician_id: "c-1".into(),
            date_of_service: date(2026, 12, day),
            code,
            modifiers: vec![],
            units,
            unit_price_cents: price,
            amount_cents: amount(units, price),
            drug: None,
            diagnoses: diagnoses.iter().map(|d| (*d).to_owned()).collect(),
            place_of_service: OFFICE.into(),
            created_by: "clinician:dr-grey".into(),
            created_at: wednesday_morning(),
            void: None,
        }
    }

    fn voided() -> Option<Void> {
        Some(Void { reason: "Entered twice".into(), by: "admin:a".into(), at: wednesday_morning() })
    }

    fn paid(id: &str, day: u32, value: i64, void: Option<Void>) -> Payment {
        Payment {
            id: id.into(),
            patient_id: "p-1".into(),
            amount_cents: PaidCents::new(value).unwrap(),
            received_on: date(2026, 12, day),
            method: PaymentMethod::Card,
            reference: None,
            created_by: "scheduler:front-desk".into(),
            created_at: wednesday_morning(),
            void,
        }
    }

    fn facts(charges: Vec<Charge>, payments: Vec<Payment>) -> BillFacts {
        BillFacts {
            clinic: BillingProfile {
                legal_name: Text::parse("Infusion Therapeutix LLC").unwrap(),
                address: PostalAddress {
                    line1: Text::parse("100 Church St").unwrap(),
                    line2: None,
                    city: Text::parse("New Haven").unwrap(),
                    state: UsState::parse("CT").unwrap(),
                    postal_code: ZipCode::parse("06510").unwrap(),
                },
                phone: Phone::parse("+1 203 555 0100").unwrap(),
                tax_id: Ein::parse("12-3456789").unwrap(),
                npi: Npi::parse("1234567893").unwrap(),
                place_of_service: PlaceOfService::default(),
            },
            patient: BilledPatient {
                id: "p-1".into(),
                given_name: "Ada".into(),
                family_name: "Lovelace".into(),
                date_of_birth: date(1985, 12, 10),
                address: None,
            },
            from: Some(date(2026, 12, 1)),
            to: date(2026, 12, 31),
            issued_on: date(2026, 12, 31),
            charges,
            payments,
            clinicians: vec![clinician("c-1", true), clinician("c-2", true)],
        }
    }

    #[test]
    fn a_superbill_letters_diagnoses_by_first_use_and_leaves_voided_lines_off() {
        use BillingCode::{
            InfusionAdditionalHour as Hour, InfusionFirstHour as First, UnclassifiedDrug as Drug,
        };
        // Given out of date order; one line voided, pointing to a code no
        // standing line uses.
        let mut gone = charge("ch-5", 4, Hour, 1, &["F41.1"]);
        gone.void = voided();
        let mut other_clinician = charge("ch-6", 7, Drug, 1, &["G90.50"]);
        other_clinician.clinician_id = "c-2".into();
        let charges = vec![
            charge("ch-3", 7, First, 1, &["F33.1", "G89.29"]),
            charge("ch-1", 2, First, 1, &["G90.50"]),
            gone,
            charge("ch-2", 2, Hour, 2, &["G90.50", "F33.1"]),
            other_clinician,
        ];
        let payments = vec![
            paid("pa-2", 7, 30000, None),
            paid("pa-1", 2, 45000, None),
            paid("pa-3", 3, 99900, voided()),
        ];
        let bill = superbill(facts(charges, payments));

        let lettered: Vec<(&str, &str)> =
            bill.diagnoses.iter().map(|d| (d.pointer.as_str(), d.code.as_str())).collect();
        assert_eq!(lettered, [("A", "G90.50"), ("B", "F33.1"), ("C", "G89.29")]);
        assert!(bill.diagnoses.iter().all(|d| !d.description.is_empty()));
        let lines: Vec<(&str, Vec<&str>)> = bill
            .lines
            .iter()
            .map(|l| {
                (l.charge_id.as_str(), l.diagnosis_pointers.iter().map(String::as_str).collect())
            })
            .collect();
        assert_eq!(
            lines,
            [
                ("ch-1", vec!["A"]),
                ("ch-2", vec!["A", "B"]),
                ("ch-3", vec!["B", "C"]),
                ("ch-6", vec!["A"]),
            ]
        );
        assert_eq!(bill.charged_cents, 45000 + 2 * 15000 + 45000 + 7500);
        assert_eq!(bill.paid_cents, 75000);
        assert_eq!(bill.balance_cents, bill.charged_cents - 75000);
        let received: Vec<NaiveDate> = bill.payments.iter().map(|p| p.received_on).collect();
        assert_eq!(received, [date(2026, 12, 2), date(2026, 12, 7)]);
        let clinicians: Vec<&str> = bill.clinicians.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(clinicians, ["c-1", "c-2"]);
        assert_eq!(bill.attestation, ATTESTATION);
    }

    #[test]
    fn a_superbill_names_only_the_clinicians_of_its_standing_lines() {
        let mut gone = charge("ch-2", 3, BillingCode::InfusionFirstHour, 1, &["G90.50"]);
        (gone.clinician_id, gone.void) = ("c-2".into(), voided());
        let kept = charge("ch-1", 2, BillingCode::InfusionFirstHour, 1, &[]);
        let bill = superbill(facts(vec![kept, gone], vec![]));
        let clinicians: Vec<&str> = bill.clinicians.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(clinicians, ["c-1"]);
        assert_eq!(bill.diagnoses, []);
        assert_eq!(bill.lines[0].diagnosis_pointers, Vec::<String>::new());
        assert_eq!((bill.charged_cents, bill.paid_cents, bill.balance_cents), (45000, 0, 45000));
    }

    #[test]
    fn a_superbill_letters_twelve_diagnoses_at_most() {
        let codes = [
            "F32.0", "F32.1", "F32.2", "F32.3", "F32.4", "F32.5", "F33.0", "F33.1", "F33.2",
            "F33.3", "F33.8", "F33.9", "F41.1",
        ];
        let charges = codes
            .chunks(4)
            .enumerate()
            .map(|(i, four)| charge(&format!("ch-{i}"), 2, BillingCode::InfusionFirstHour, 1, four))
            .collect();
        let bill = superbill(facts(charges, vec![]));
        assert_eq!(bill.diagnoses.len(), 12);
        assert_eq!(bill.diagnoses[11].pointer, "L");
        assert_eq!(bill.lines[3].diagnosis_pointers, Vec::<String>::new(), "F41.1 has no letter");
    }

    #[test]
    fn a_balance_leaves_voided_charges_and_payments_out() {
        let mut gone = charge("ch-2", 2, BillingCode::InfusionAdditionalHour, 1, &[]);
        gone.void = voided();
        let charges = [charge("ch-1", 2, BillingCode::InfusionFirstHour, 1, &[]), gone];
        let payments = [paid("pa-1", 2, 50000, None), paid("pa-2", 2, 100, voided())];
        assert_eq!(
            Balance::of(&charges, &payments),
            Balance { charged_cents: 45000, paid_cents: 50000, balance_cents: -5000 }
        );
    }

    #[test]
    fn a_payment_is_more_than_nothing_received_by_today() {
        let new = |value: i64, day: u32| NewPayment {
            patient_id: "p-1".into(),
            amount_cents: PaidCents::new(value).unwrap(),
            received_on: date(2026, 12, day),
            method: PaymentMethod::Cash,
            reference: None,
        };
        let today = date(2026, 12, 2);
        assert!(payment(new(1, 2), today).is_ok());
        assert!(payment(new(1, 1), today).is_ok());
        let refused = payment(new(1, 3), today);
        assert!(matches!(&refused, Err(Refusal::Invalid(e)) if e[0].field == "received_on"));
        let paid = |sent: &str| serde_json::from_str::<PaidCents>(sent).map(|p| p.cents().value());
        assert_eq!(paid("1").ok(), Some(1));
        assert_eq!(paid("100000000").ok(), Some(Cents::MAX));
        for refused in ["0", "-5", "12.5", "\"45000\"", "100000001"] {
            assert!(paid(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_charge_or_payment_is_voided_once() {
        assert_eq!(void(None, "charge"), Ok(()));
        let already = voided();
        assert_eq!(
            void(already.as_ref(), "charge"),
            Err(Refusal::AlreadyVoided { what: "charge", by: "admin:a".into() })
        );
    }

    /// The period a superbill covers by default starts at the first
    /// standing date of service or payment: a voided line does not move it.
    #[test]
    fn a_superbill_starts_at_the_first_standing_service_or_payment() {
        use BillingCode::InfusionFirstHour as First;
        let mut stray = charge("x-0", 1, First, 1, &[]);
        stray.void = voided();
        let to = date(2026, 12, 31);
        let cases = [
            (vec![charge("x-1", 9, First, 1, &[])], vec![], 9),
            (vec![charge("x-1", 9, First, 1, &[])], vec![paid("y-1", 4, 100, None)], 4),
            (vec![stray.clone(), charge("x-1", 9, First, 1, &[])], vec![], 9),
            (vec![charge("x-1", 9, First, 1, &[])], vec![paid("y-1", 2, 100, voided())], 9),
            (vec![stray], vec![], 31),
        ];
        for (charges, payments, day) in cases {
            assert_eq!(first_dated(&charges, &payments, to), date(2026, 12, day));
            let bill = superbill(BillFacts { from: None, ..facts(charges, payments) });
            assert_eq!(bill.from, date(2026, 12, day));
        }
    }

    /// A completion's decision: the appointment's own first, then the
    /// infusion within its session, then an active clinician on record;
    /// its charges come with it. Other actions bill nothing.
    #[test]
    fn completing_an_infusion_decides_its_charges_with_it() {
        let date_of = date(2026, 12, 3);
        let starts =
            chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 12, 3, 13, 0, 0).unwrap();
        let checked_in = Appointment {
            status: AppointmentStatus::CheckedIn,
            ..appointment("a-1", date_of, starts)
        };
        let later = clinic(starts + chrono::Duration::hours(2));
        let known = |active: bool| CompletionFacts {
            clinician: Some(clinician("c-1", active)),
            indications: Vec::new(),
            fees: fees(),
            place_of_service: PlaceOfService::default(),
        };
        let pain = |v: i32| crate::domain::appointment::PainScore::new(v).unwrap();
        let with_minutes = |m: i64| match completion(pain(3), Some(pain(7)), None) {
            Request::Complete { pain_after, pain_before, phq9, clinician_id, .. } => {
                Request::Complete {
                    pain_after,
                    pain_before,
                    phq9,
                    clinician_id,
                    minutes: InfusionMinutes::new(m).unwrap(),
                }
            }
            other => other,
        };
        let codes = |r: Result<(Change, Vec<NewCharge>), Refusal>| {
            r.map(|(_, lines)| lines.iter().map(|l| (l.code.as_str(), l.units)).collect::<Vec<_>>())
        };
        let field = |r: Result<(Change, Vec<NewCharge>), Refusal>| match r {
            Err(Refusal::Invalid(e)) => e[0].field.clone(),
            other => format!("{other:?}"),
        };
        // The morning session is four hours.
        let ok = decide(&checked_in, with_minutes(100), None, Some(&known(true)), &later);
        assert_eq!(codes(ok), Ok(vec![("96365", 1), ("96366", 1), ("J3490", 1)]));
        let whole = decide(&checked_in, with_minutes(240), None, Some(&known(true)), &later);
        assert_eq!(codes(whole), Ok(vec![("96365", 1), ("96366", 3), ("J3490", 1)]));
        let long = decide(&checked_in, with_minutes(241), None, Some(&known(true)), &later);
        assert_eq!(field(long), "infusion_minutes");
        let inactive = decide(&checked_in, with_minutes(100), None, Some(&known(false)), &later);
        assert_eq!(field(inactive), "clinician_id");
        let unknown = CompletionFacts { clinician: None, ..known(true) };
        let nobody = decide(&checked_in, with_minutes(100), None, Some(&unknown), &later);
        assert_eq!(field(nobody), "clinician_id");
        assert_eq!(
            field(decide(&checked_in, with_minutes(100), None, None, &later)),
            "clinician_id"
        );
        // The state machine first: a scheduled appointment is not completed.
        let scheduled = appointment("a-1", date_of, starts);
        let early = decide(&scheduled, with_minutes(100), None, Some(&known(false)), &later);
        assert_eq!(early.map_err(|r| r.code()).err(), Some("invalid_transition"));
        // Another route bills nothing by itself.
        let oral = Appointment { route: Route::Oral, ..checked_in.clone() };
        assert_eq!(
            codes(decide(&oral, with_minutes(100), None, Some(&known(true)), &later)),
            Ok(vec![])
        );
        // Other actions bill nothing, and need no billing facts.
        let no_show = decide(&scheduled, Request::NoShow, None, None, &later);
        assert_eq!(codes(no_show), Ok(vec![]));
    }
}
