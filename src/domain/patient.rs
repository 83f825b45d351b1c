//! Patients: what they are treated for and which demographic values are
//! acceptable ("Patients and indications" in `docs/DOMAIN.md`).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::ValidateEmail;

use super::billing::PostalAddress;
use super::diagnosis::{self, Diagnosis};
use super::identifier::{check_identifiers, Identifier};
use super::values::Text;
use super::{valid, FieldError, Refusal};

/// Longest accepted given or family name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// A given or family name as requests send it.
pub type Name = Text<MAX_NAME_CHARS>;
/// Oldest accepted age, in years: an older date of birth is a typo.
pub const MAX_AGE_YEARS: i32 = 120;

/// What a patient is treated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndicationCode {
    ChronicPain,
    Migraine,
    Depression,
    Anxiety,
}

/// The category of an indication decides its referral rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndicationCategory {
    Pain,
    MentalHealth,
}

/// The kind of chronic pain; other indications have no subtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndicationSubtype {
    /// Complex regional pain syndrome: responds best.
    Crps,
    /// Neuropathic and nerve pain: does well.
    Neuropathic,
    Other,
}

impl IndicationCode {
    pub const ALL: [IndicationCode; 4] = [
        IndicationCode::ChronicPain,
        IndicationCode::Migraine,
        IndicationCode::Depression,
        IndicationCode::Anxiety,
    ];

    pub fn category(self) -> IndicationCategory {
        match self {
            IndicationCode::ChronicPain | IndicationCode::Migraine => IndicationCategory::Pain,
            IndicationCode::Depression | IndicationCode::Anxiety => {
                IndicationCategory::MentalHealth
            }
        }
    }

    /// Whether this indication takes a subtype (and then requires one).
    pub fn has_subtypes(self) -> bool {
        self == IndicationCode::ChronicPain
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IndicationCode::ChronicPain => "chronic_pain",
            IndicationCode::Migraine => "migraine",
            IndicationCode::Depression => "depression",
            IndicationCode::Anxiety => "anxiety",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl IndicationSubtype {
    pub const ALL: [IndicationSubtype; 3] =
        [IndicationSubtype::Crps, IndicationSubtype::Neuropathic, IndicationSubtype::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            IndicationSubtype::Crps => "crps",
            IndicationSubtype::Neuropathic => "neuropathic",
            IndicationSubtype::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One condition a patient is treated for. Its schema is written out below:
/// it says which codes take a subtype, which a derived schema cannot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indication {
    pub code: IndicationCode,
    /// Required for `chronic_pain` (`crps`, `neuropathic`, `other`); absent for the others.
    #[serde(default)]
    pub subtype: Option<IndicationSubtype>,
    /// The ICD-10-CM code a clinician chose for it: a billable code of the
    /// indication (`reference/icd10cm.csv`); `null` until coded.
    #[serde(default)]
    pub diagnosis: Option<Diagnosis>,
}

impl utoipa::PartialSchema for Indication {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
        let constant = |value: &str| {
            ObjectBuilder::new().schema_type(Type::String).enum_values(Some([value.to_owned()]))
        };
        let closed = || Some(AdditionalProperties::FreeForm(false));
        // One item per kind of indication: its code, its subtype where one
        // belongs, and the billable ICD-10-CM codes that may code it.
        let mut kinds = OneOfBuilder::new();
        for indication in Indication::KINDS {
            let codes: Vec<Option<&str>> = std::iter::once(None)
                .chain(diagnosis::billable_for(indication.key()).map(|e| Some(e.code)))
                .collect();
            let diagnosis = ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                    Type::String,
                    Type::Null,
                ]))
                .enum_values(Some(codes))
                .description(Some(
                    "The ICD-10-CM code a clinician chose (reference/icd10cm.csv): a billable \
                     code of this indication, or `null` until coded",
                ));
            let mut item = ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("code", constant(indication.code.as_str()))
                .required("code");
            item = match indication.subtype {
                Some(subtype) => {
                    item.property("subtype", constant(subtype.as_str())).required("subtype")
                }
                None => item.property("subtype", ObjectBuilder::new().schema_type(Type::Null)),
            };
            kinds =
                kinds.item(item.property("diagnosis", diagnosis).additional_properties(closed()));
        }
        kinds
            .description(Some(
                "One condition a patient is treated for: `chronic_pain` with its `subtype`, \
                 the others with none (absent or `null`); `diagnosis`, its ICD-10-CM code.",
            ))
            .examples([serde_json::json!({"code": "chronic_pain", "subtype": "crps", "diagnosis": "G90.50"})])
            .into()
    }
}

impl ToSchema for Indication {
    fn schemas(
        schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((IndicationSubtype::name().into(), IndicationSubtype::schema()));
        IndicationSubtype::schemas(schemas);
    }
}

/// The schema of the `indications` a request sends: one to four, each code
/// once. `uniqueItems` cannot say "each code once" (`chronic_pain` with two
/// subtypes is two distinct items); JSON Schema 2020-12 can, as "contains at
/// most one item with this code" (`contains` with `maxContains`) per code.
/// utoipa models neither keyword, so they go in through the schema's
/// extension map, which it writes out as it is.
pub fn indications_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::extensions::Extensions;
    use utoipa::openapi::schema::ArrayBuilder;
    use utoipa::openapi::Ref;
    let once: Vec<serde_json::Value> = IndicationCode::ALL
        .into_iter()
        .map(|code| {
            serde_json::json!({
                "contains": {"properties": {"code": {"const": code.as_str()}}, "required": ["code"]},
                "minContains": 0,
                "maxContains": 1
            })
        })
        .collect();
    let mut keywords = Extensions::default();
    keywords.insert("allOf".to_owned(), serde_json::Value::Array(once));
    ArrayBuilder::new()
        .items(Ref::from_schema_name("Indication"))
        .min_items(Some(1))
        .max_items(Some(IndicationCode::ALL.len()))
        .description(Some("At least one; each code once (at most one item per `code`)."))
        .extensions(Some(keywords))
        .build()
}

impl Indication {
    /// Every kind of indication: each code, chronic pain with each subtype.
    pub const KINDS: [Indication; 6] = [
        Indication::of(IndicationCode::ChronicPain, Some(IndicationSubtype::Crps)),
        Indication::of(IndicationCode::ChronicPain, Some(IndicationSubtype::Neuropathic)),
        Indication::of(IndicationCode::ChronicPain, Some(IndicationSubtype::Other)),
        Indication::of(IndicationCode::Migraine, None),
        Indication::of(IndicationCode::Depression, None),
        Indication::of(IndicationCode::Anxiety, None),
    ];

    /// An indication not coded yet.
    pub const fn of(code: IndicationCode, subtype: Option<IndicationSubtype>) -> Indication {
        Indication { code, subtype, diagnosis: None }
    }

    pub fn category(&self) -> IndicationCategory {
        self.code.category()
    }

    /// The kind as one key: `depression`, `chronic_pain.crps`; plain
    /// `chronic_pain` for its `other` subtype. Diagnosis codes and FHIR's
    /// reason codes name indications by it.
    pub fn key(&self) -> &'static str {
        match (self.code, self.subtype) {
            (IndicationCode::ChronicPain, Some(IndicationSubtype::Crps)) => "chronic_pain.crps",
            (IndicationCode::ChronicPain, Some(IndicationSubtype::Neuropathic)) => {
                "chronic_pain.neuropathic"
            }
            (code, _) => code.as_str(),
        }
    }
}

/// A patient as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patient {
    pub id: String,
    pub details: PatientDetails,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a patient record says, checked by [`PatientDetails::admitted`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct PatientDetails {
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: NaiveDate,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The postal address a superbill shows, if given.
    pub address: Option<PostalAddress>,
    pub indications: Vec<Indication>,
    /// Whether the patient is currently in mental health treatment: if not,
    /// a pain indication needs a mental health evaluation.
    pub in_mental_health_treatment: bool,
    /// Whether a clinician marked a pain-management referral as required.
    pub pain_referral_required: bool,
    /// The patient's record numbers in other systems (an EHR's MRN), each
    /// held by this patient alone; `[]` when none. In `system`, then
    /// `value` order.
    pub identifiers: Vec<Identifier>,
}

impl PatientDetails {
    /// The decision on a record as sent, new or after a change: every rule
    /// of [`Self::check`] on `today`, each broken one named; kept with names
    /// and contacts tidied.
    pub fn admitted(self, today: NaiveDate) -> Result<Self, Refusal> {
        valid(self.check(today))?;
        Ok(self.normalized())
    }

    /// Every rule a patient record must meet on `today` (clinic-local), each
    /// broken one named by its field. Check before [`Self::normalized`]: the
    /// rules are about what the client sent.
    pub fn check(&self, today: NaiveDate) -> Vec<FieldError> {
        let mut errors: Vec<FieldError> = [
            check_birth_date("date_of_birth", self.date_of_birth, today),
            contact(&self.email).and_then(|e| check_email("email", e)),
            contact(&self.phone).and_then(|p| check_phone("phone", p)),
        ]
        .into_iter()
        .flatten()
        .collect();
        errors.extend(check_indications("indications", &self.indications));
        errors.extend(check_identifiers("identifiers", &self.identifiers));
        errors
    }

    /// Trims names and contacts; an empty contact becomes none; the
    /// identifiers in the order they are stored and shown.
    pub fn normalized(mut self) -> Self {
        self.identifiers.sort();
        self.given_name = self.given_name.trim().to_owned();
        self.family_name = self.family_name.trim().to_owned();
        let tidy = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        self.email = tidy(self.email);
        self.phone = tidy(self.phone);
        self
    }

    /// Whether any indication is of `category`.
    pub fn has_category(&self, category: IndicationCategory) -> bool {
        self.indications.iter().any(|i| i.category() == category)
    }
}

/// A contact as sent: an empty string is no contact.
pub fn contact(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// At least one indication, each once, with a subtype exactly where one belongs.
pub fn check_indications(field: &str, indications: &[Indication]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if indications.is_empty() {
        errors.push(FieldError::new(field, "at least one indication is required"));
    }
    for (i, indication) in indications.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if indications[..i].iter().any(|o| o.code == indication.code) {
            errors.push(FieldError::new(
                format!("{at}.code"),
                format!("`{}` is listed more than once", indication.code.as_str()),
            ));
        }
        match (indication.code.has_subtypes(), indication.subtype) {
            (true, None) => errors.push(FieldError::new(
                format!("{at}.subtype"),
                "is required for chronic_pain: one of crps, neuropathic, other",
            )),
            (false, Some(_)) => errors.push(FieldError::new(
                format!("{at}.subtype"),
                format!("`{}` takes no subtype", indication.code.as_str()),
            )),
            _ => {}
        }
        if let Some(why) = indication.diagnosis.and_then(|d| d.refused_for(indication.key())) {
            errors.push(FieldError::new(format!("{at}.diagnosis"), why));
        }
    }
    errors
}

/// A date of birth is in the past and at most [`MAX_AGE_YEARS`] ago.
pub fn check_birth_date(field: &str, born: NaiveDate, today: NaiveDate) -> Option<FieldError> {
    if born >= today {
        return Some(FieldError::new(field, "must be in the past"));
    }
    let oldest = today
        .with_year(today.year() - MAX_AGE_YEARS)
        // 29 February has no twin MAX_AGE_YEARS earlier when that year is common.
        .or_else(|| (today - chrono::Days::new(1)).with_year(today.year() - MAX_AGE_YEARS))
        .unwrap_or(NaiveDate::MIN);
    if born < oldest {
        return Some(FieldError::new(field, format!("is more than {MAX_AGE_YEARS} years ago")));
    }
    None
}

/// Longest accepted email address, in characters (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// An email address as HTML forms accept it.
pub fn check_email(field: &str, email: &str) -> Option<FieldError> {
    if email.chars().count() > MAX_EMAIL_CHARS || !email.validate_email() {
        Some(FieldError::new(field, "is not a valid email address"))
    } else {
        None
    }
}

/// The schema of an optional email address: `null`, an empty string (no
/// email) or an address [`check_email`] accepts.
pub fn email_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaFormat, Type};
    let any = AnyOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some([""])))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::Custom("email".into())))
                .max_length(Some(MAX_EMAIL_CHARS)),
        )
        .description(Some("An email address (`null` or an empty string for none)."))
        .build();
    Schema::AnyOf(any)
}

/// The JSON Schema `pattern` of [`check_phone`], or of nothing at all.
pub const PHONE_PATTERN: &str = r"^(?:\+?(?:[ .()-]*[0-9]){7,15}[ .()-]*)?$";

/// The schema of an optional phone number: `null`, an empty string (no
/// number) or a number [`check_phone`] accepts.
pub fn phone_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(PHONE_PATTERN))
        .description(Some(
            "7 to 15 digits, with spaces, dots, dashes and parentheses anywhere and an \
             optional leading `+` (`null` or an empty string for none).",
        ))
        .build()
}

/// A phone number: digits with an optional leading `+`, and spaces, dots,
/// dashes and parentheses anywhere; 7 to 15 digits (E.164's maximum).
pub fn check_phone(field: &str, phone: &str) -> Option<FieldError> {
    let allowed = phone.char_indices().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '(' | ')') || (c == '+' && i == 0)
    });
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if allowed && (7..=15).contains(&digits) {
        None
    } else {
        Some(FieldError::new(
            field,
            "is not a valid phone number (7 to 15 digits, optional leading +)",
        ))
    }
}

/// Part of a full name to search for, as sent: at most two names' worth of
/// characters. Blank searches for everyone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameSearch(String);

impl NameSearch {
    /// The longest search: a given and a family name.
    pub const MAX_CHARS: usize = 2 * MAX_NAME_CHARS;

    /// What to search for, trimmed; none when blank.
    pub fn term(self) -> Option<String> {
        Some(self.0.trim().to_owned()).filter(|t| !t.is_empty())
    }
}

impl<'de> Deserialize<'de> for NameSearch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sent = String::deserialize(d)?;
        if sent.chars().count() > Self::MAX_CHARS {
            return Err(serde::de::Error::custom(format!(
                "must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        Ok(Self(sent))
    }
}

/// A name as the name searches compare it: lower case in every alphabet,
/// and without accents, as FHIR's string search asks ("normalized by case
/// and accent"): the compatibility decomposition (NFKD), its combining marks
/// dropped. `É` is `e` and `ö` is `o`; a letter Unicode does not decompose
/// is a letter of its own (`ł`, `ø`, `đ`, `ß` stay as they are). The
/// searched terms are folded alike.
pub fn fold(text: &str) -> String {
    unaccented(text).to_lowercase()
}

/// `text` without its accents: its compatibility decomposition (NFKD), the
/// combining marks dropped. `É` is `E`, `ễ` is `e`, `ﬁ` is `fi`; a letter
/// Unicode does not decompose stays as it is (`Ł`).
pub fn unaccented(text: &str) -> String {
    use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};
    text.nfkd().filter(|c| !is_combining_mark(*c)).collect()
}

/// What the name searches run on, stored beside the name: "given family",
/// for `name` (any part), and each name alone, for FHIR's `given` and
/// `family` (how it starts); each [`fold`]ed.
#[derive(Debug, PartialEq, Eq)]
pub struct NameKeys {
    pub search: String,
    pub given: String,
    pub family: String,
}

impl NameKeys {
    pub fn of(given_name: &str, family_name: &str) -> Self {
        let (given, family) = (fold(given_name.trim()), fold(family_name.trim()));
        Self { search: format!("{given} {family}"), given, family }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn ind(code: IndicationCode, subtype: Option<IndicationSubtype>) -> Indication {
        Indication::of(code, subtype)
    }

    #[test]
    fn categories_follow_the_table() {
        use IndicationCategory::*;
        assert_eq!(IndicationCode::ChronicPain.category(), Pain);
        assert_eq!(IndicationCode::Migraine.category(), Pain);
        assert_eq!(IndicationCode::Depression.category(), MentalHealth);
        assert_eq!(IndicationCode::Anxiety.category(), MentalHealth);
    }

    #[test]
    fn indications_need_one_each_once_with_the_right_subtype() {
        use IndicationCode::*;
        use IndicationSubtype::*;
        assert_eq!(check_indications("i", &[])[0].message, "at least one indication is required");
        assert!(check_indications("i", &[ind(ChronicPain, Some(Crps)), ind(Depression, None)])
            .is_empty());
        let errs = check_indications("i", &[ind(ChronicPain, None)]);
        assert_eq!(errs[0].field, "i[0].subtype");
        let errs = check_indications("i", &[ind(Migraine, Some(Other))]);
        assert_eq!(errs[0].field, "i[0].subtype");
        let errs = check_indications("i", &[ind(Anxiety, None), ind(Anxiety, None)]);
        assert_eq!(errs, vec![FieldError::new("i[1].code", "`anxiety` is listed more than once")]);
    }

    #[test]
    fn birth_dates_are_past_and_plausible() {
        let today = date(2026, 11, 27);
        assert!(check_birth_date("d", date(1980, 5, 1), today).is_none());
        assert!(check_birth_date("d", today, today).is_some());
        assert!(check_birth_date("d", date(2027, 1, 1), today).is_some());
        assert!(check_birth_date("d", date(1906, 11, 27), today).is_none());
        assert!(check_birth_date("d", date(1906, 11, 26), today).is_some());
        // A leap day today still has a limit.
        assert!(check_birth_date("d", date(1900, 1, 1), date(2028, 2, 29)).is_some());
    }

    #[test]
    fn emails_and_phones() {
        assert!(check_email("e", "ada@example.org").is_none());
        assert!(check_email("e", "not-an-email").is_some());
        assert!(check_phone("p", "+1 (555) 010-2030").is_none());
        assert!(check_phone("p", "555.010.2030").is_none());
        assert!(check_phone("p", "12345").is_some());
        assert!(check_phone("p", "555-CALL-NOW").is_some());
        assert!(check_phone("p", "1+5550102030").is_some());
    }

    #[test]
    fn name_keys_are_the_trimmed_names_folded() {
        let keys = NameKeys::of(" Émile ", "Łukasiewicz ");
        assert_eq!(
            keys,
            NameKeys {
                search: "emile łukasiewicz".into(),
                given: "emile".into(),
                family: "łukasiewicz".into()
            }
        );
    }

    #[test]
    fn folding_drops_case_and_accents_and_keeps_letters_of_their_own() {
        for (name, folded) in [
            ("Ada", "ada"),
            ("José", "jose"),
            ("JOSÉ", "jose"),
            // é as e and a combining acute accent (NFD), as some systems send it
            ("Jose\u{301}", "jose"),
            ("François", "francois"),
            ("Ødegård", "ødegard"),
            ("Łukasiewicz", "łukasiewicz"),
            ("Müller-Lüdenscheidt", "muller-ludenscheidt"),
            ("Straße", "straße"),
            ("Nguyễn", "nguyen"),
            ("Ольга", "ольга"),
            ("Йован", "иован"),
            ("Ａｄａ", "ada"), // full-width letters (compatibility decomposition)
            ("", ""),
        ] {
            assert_eq!(fold(name), folded, "{name}");
        }
    }
}
