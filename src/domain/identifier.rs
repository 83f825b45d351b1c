//! A patient's identifiers in other systems ("Identifiers" in
//! `docs/DOMAIN.md`): an EHR's record number under the URI that names its
//! numbering, as FHIR's `Identifier.system` and `Identifier.value`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::values::Text;
use super::{FieldError, Refusal};

/// Most identifiers one patient may carry.
pub const MAX_IDENTIFIERS: usize = 10;

/// Longest accepted identifier system, in characters.
pub const MAX_SYSTEM_CHARS: usize = 255;

/// Longest accepted identifier value, in characters.
pub const MAX_VALUE_CHARS: usize = 100;

/// The value of an identifier: free text (`Text`) of at most
/// [`MAX_VALUE_CHARS`] characters, stored trimmed.
pub type IdentifierValue = Text<MAX_VALUE_CHARS>;

/// The JSON Schema `pattern` of [`IdentifierSystem`]: an RFC 3986 scheme,
/// a colon, and at least one character a URI may hold, a `%` only as the
/// start of a percent-encoded octet.
pub const SYSTEM_PATTERN: &str =
    r"^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=-]|%[0-9A-Fa-f]{2})+$";

/// The namespace of an identifier: an absolute URI (RFC 3986) of at most
/// [`MAX_SYSTEM_CHARS`] characters, such as `urn:oid:2.16.840.1.113883.3.4.5`
/// or `https://ehr.example.org/mrn`. Kept as sent and compared exactly.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IdentifierSystem(String);

impl IdentifierSystem {
    /// Applies the URI rule to `sent`; what breaks it, in words.
    pub fn parse(sent: &str) -> Result<Self, String> {
        if sent.chars().count() > MAX_SYSTEM_CHARS {
            return Err(format!("must be at most {MAX_SYSTEM_CHARS} characters"));
        }
        Self::syntax(sent)?;
        Ok(Self(sent.to_owned()))
    }

    /// The URI rule of [`Self::parse`] without its length.
    fn syntax(sent: &str) -> Result<(), String> {
        if sent.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain white space or control characters".into());
        }
        let Some((scheme, rest)) = sent.split_once(':') else {
            return Err("must be an absolute URI with a scheme, such as `urn:oid:…` or \
                        `https://…`"
                .into());
        };
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok || rest.is_empty() {
            return Err("must be an absolute URI with a scheme, such as `urn:oid:…` or \
                        `https://…`"
                .into());
        }
        let bytes = rest.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'%' {
                let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return Err("must write `%` only as a percent-encoded octet (`%2F`)".into());
                }
                i += 3;
                continue;
            }
            if !(b.is_ascii_alphanumeric() || b"._~:/?#[]@!$&'()*+,;=-".contains(&b)) {
                return Err(format!(
                    "must hold only the characters a URI may (RFC 3986), not `{}`",
                    rest[i..].chars().next().unwrap_or('?')
                ));
            }
            i += 1;
        }
        Ok(())
    }

    /// A system read back from storage, where it went only after [`Self::parse`].
    pub fn stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for IdentifierSystem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sent = Cow::<str>::deserialize(d)?;
        Self::parse(&sent).map_err(serde::de::Error::custom)
    }
}

impl PartialSchema for IdentifierSystem {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            // No `format: uri`: the pattern is the rule (a scheme and the
            // characters a URI may hold), looser than RFC 3986's grammar,
            // which validators of `uri` apply (`[` only around an IP).
            .min_length(Some(3))
            .max_length(Some(MAX_SYSTEM_CHARS))
            .pattern(Some(SYSTEM_PATTERN))
            .description(Some(format!(
                "The namespace of the identifier: an absolute URI (RFC 3986) of at most \
                 {MAX_SYSTEM_CHARS} characters naming the numbering, e.g. an EHR's OID \
                 (`urn:oid:…`) or a URL it publishes. Compared exactly."
            )))
            .examples(["urn:oid:2.16.840.1.113883.3.4.5"])
            .into()
    }
}

impl ToSchema for IdentifierSystem {}

/// One identifier of a patient in another system: its record number there.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"system": "urn:oid:2.16.840.1.113883.3.4.5", "value": "MRN-004211"}))]
pub struct Identifier {
    pub system: IdentifierSystem,
    /// The record number within `system`: 1 to 100 characters, no control
    /// characters; stored trimmed; compared exactly.
    pub value: IdentifierValue,
}

/// By `system`, then `value`: the order a patient's identifiers are shown in.
impl Ord for Identifier {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.system, self.value.as_str()).cmp(&(&other.system, other.value.as_str()))
    }
}

impl PartialOrd for Identifier {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Identifier {
    /// The identifier as `GET /v1/patients?identifier=` takes it, `system|value`.
    pub fn token(&self) -> String {
        format!("{}|{}", self.system.as_str(), self.value.as_str())
    }
}

/// A patient's identifiers: at most [`MAX_IDENTIFIERS`], each pair once;
/// every broken rule named by its path under `field`.
pub fn check_identifiers(field: &str, identifiers: &[Identifier]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if identifiers.len() > MAX_IDENTIFIERS {
        errors.push(FieldError::new(field, format!("must hold at most {MAX_IDENTIFIERS}")));
    }
    for (i, identifier) in identifiers.iter().enumerate() {
        if identifiers[..i].contains(identifier) {
            errors.push(FieldError::new(
                format!("{field}[{i}]"),
                format!("`{}` is listed more than once", identifier.token()),
            ));
        }
    }
    errors
}

/// The schema of a list of identifiers in a request: at most
/// [`MAX_IDENTIFIERS`], no item twice (values also compare trimmed, which
/// JSON Schema cannot say).
pub fn list_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::ArrayBuilder;
    use utoipa::openapi::Ref;
    ArrayBuilder::new()
        .items(Ref::from_schema_name("Identifier"))
        .max_items(Some(MAX_IDENTIFIERS))
        .unique_items(true)
        .description(Some(format!(
            "The patient's record numbers in other systems (an EHR's MRN): at most \
             {MAX_IDENTIFIERS}, each `system` and `value` pair once (values compared trimmed). \
             An identifier another patient holds is 409 `conflict` naming that patient \
             (`existing_patient_id`)."
        )))
        .build()
}

/// The refusal of an identifier another patient holds: a `conflict`
/// naming that patient.
pub fn taken(identifier: &Identifier, holder: String) -> Refusal {
    Refusal::IdentifierTaken { identifier: identifier.token(), patient_id: holder }
}

/// `GET /v1/patients?identifier=system|value`: the identifier to find.
/// Split at the first `|`, as FHIR's token search; the system and value
/// follow the rules of [`Identifier`].
/// A system or value longer than an identifier's may be is a search for
/// what no patient holds: an empty page, not an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentifierSearch {
    pub system: String,
    /// Trimmed, as values are stored.
    pub value: String,
}

impl IdentifierSearch {
    pub fn parse(sent: &str) -> Result<Self, String> {
        let (system, value) = sent
            .split_once('|')
            .ok_or_else(|| "must be `system|value`, e.g. `urn:oid:2.16.840.1|MRN-1`".to_owned())?;
        IdentifierSystem::syntax(system).map_err(|m| format!("system {m}"))?;
        let value = Text::<{ Self::MAX_CHARS }>::parse(value).map_err(|m| format!("value {m}"))?;
        Ok(Self { system: system.to_owned(), value: value.into_string() })
    }
}

impl IdentifierSearch {
    /// The longest search: a system, the bar and a value.
    pub const MAX_CHARS: usize = MAX_SYSTEM_CHARS + 1 + MAX_VALUE_CHARS;
}

/// The schema of the query parameter: the system's pattern, a `|`, and the
/// value's (free text's) pattern.
impl PartialSchema for IdentifierSearch {
    fn schema() -> RefOr<Schema> {
        let unanchored = |p: &str| p.trim_start_matches('^').trim_end_matches('$').to_owned();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(5))
            .max_length(Some(Self::MAX_CHARS))
            .pattern(Some(format!(
                "^{}\\|{}$",
                unanchored(SYSTEM_PATTERN),
                unanchored(&super::values::pattern())
            )))
            .into()
    }
}

impl ToSchema for IdentifierSearch {}

impl<'de> Deserialize<'de> for IdentifierSearch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sent = Cow::<str>::deserialize(d)?;
        Self::parse(&sent).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(system: &str, value: &str) -> Identifier {
        Identifier {
            system: IdentifierSystem::parse(system).unwrap(),
            value: IdentifierValue::parse(value).unwrap(),
        }
    }

    #[test]
    fn systems_are_absolute_uris() {
        let long = format!("urn:x:{}", "a".repeat(MAX_SYSTEM_CHARS - 6));
        let too_long = format!("{long}a");
        for (sent, accepted) in [
            ("urn:oid:2.16.840.1.113883.3.4.5", true),
            ("https://ehr.example.org/mrn", true),
            ("http://hl7.org/fhir/sid/us-npi", true),
            ("urn:uuid:019a6b1e-7c2d-7f00-8a11-3c4d5e6f7a8b", true),
            ("https://ehr.example.org/ids?kind=mrn#main", true),
            ("https://ehr.example.org/caf%C3%A9", true),
            ("x-ehr+v2.1:mrn", true),
            (long.as_str(), true),
            (too_long.as_str(), false),
            ("", false),
            ("mrn", false),
            ("ehr.example.org/mrn", false),
            (":mrn", false),
            ("1urn:oid:1", false),
            ("urn:", false),
            ("ur n:oid:1", false),
            ("urn:oid:1 ", false),
            (" urn:oid:1", false),
            ("urn:oid:1\n", false),
            ("urn:oid:1\u{0}", false),
            ("urn:oid:1|2", false),
            ("https://ehr.example.org/café", false),
            ("https://ehr.example.org/50%", false),
            ("https://ehr.example.org/%zz", false),
            ("https://ehr.example.org/<mrn>", false),
        ] {
            assert_eq!(IdentifierSystem::parse(sent).is_ok(), accepted, "{sent:?}");
        }
    }

    #[test]
    fn values_follow_the_text_rule_and_are_trimmed() {
        for (sent, held) in [("MRN-004211", Some("MRN-004211")), ("  42 ", Some("42"))] {
            assert_eq!(
                IdentifierValue::parse(sent).ok().map(Text::into_string),
                held.map(Into::into)
            );
        }
        for sent in ["", "   ", "4\t2", "4\u{202e}2", &"9".repeat(MAX_VALUE_CHARS + 1)] {
            assert!(IdentifierValue::parse(sent).is_err(), "{sent:?}");
        }
    }

    #[test]
    fn a_list_holds_at_most_ten_each_pair_once() {
        let a = id("urn:oid:1.2", "A1");
        let b = id("urn:oid:1.2", "B2");
        let a_elsewhere = id("https://ehr.example.org/mrn", "A1");
        let eleven: Vec<_> = (0..11).map(|n| id("urn:oid:1.2", &n.to_string())).collect();
        let ten = &eleven[..10];
        #[rustfmt::skip]
        let table: Vec<(Vec<Identifier>, Vec<&str>)> = vec![
            (vec![], vec![]),
            (vec![a.clone(), b.clone(), a_elsewhere.clone()], vec![]),
            (ten.to_vec(), vec![]),
            (eleven.clone(), vec!["identifiers"]),
            (vec![a.clone(), b.clone(), a.clone()], vec!["identifiers[2]"]),
            (vec![b.clone(), b.clone(), b.clone()], vec!["identifiers[1]", "identifiers[2]"]),
        ];
        for (list, fields) in table {
            let errors = check_identifiers("identifiers", &list);
            let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(named, fields, "{list:?}");
        }
    }

    const LONG_SEARCH_SYSTEM: &str = concat!(
        "urn:x:", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "|A1"
    );
    const LONG_SEARCH_VALUE: &str = concat!(
        "urn:x|", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    );

    #[test]
    fn a_search_is_system_bar_value() {
        assert!(LONG_SEARCH_SYSTEM.len() - 3 > MAX_SYSTEM_CHARS);
        assert!(LONG_SEARCH_VALUE.len() - 6 > MAX_VALUE_CHARS);
        #[rustfmt::skip]
        let table = [
            ("urn:oid:1.2|A1", Ok(("urn:oid:1.2", "A1"))),
            ("urn:oid:1.2|A|1", Ok(("urn:oid:1.2", "A|1"))),
            ("urn:oid:1.2| A1 ", Ok(("urn:oid:1.2", "A1"))),
            ("urn:oid:1.2", Err("must be `system|value`")),
            ("A1", Err("must be `system|value`")),
            ("|A1", Err("system must be an absolute URI")),
            ("mrn|A1", Err("system must be an absolute URI")),
            ("urn:oid:1.2|", Err("value must contain a visible character")),
            ("urn:oid:1.2|  ", Err("value must contain a visible character")),
            // Longer than an identifier may be: a search that finds no one.
            (LONG_SEARCH_SYSTEM, Ok((&LONG_SEARCH_SYSTEM[..LONG_SEARCH_SYSTEM.len() - 3], "A1"))),
            (LONG_SEARCH_VALUE, Ok(("urn:x", &LONG_SEARCH_VALUE[6..]))),
        ];
        for (sent, expected) in table {
            match (IdentifierSearch::parse(sent), expected) {
                (Ok(found), Ok((system, value))) => {
                    assert_eq!((found.system.as_str(), found.value.as_str()), (system, value));
                }
                (Err(message), Err(start)) => assert!(message.starts_with(start), "{message}"),
                (got, expected) => panic!("{sent:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn an_identifier_in_use_is_a_conflict_naming_its_patient() {
        let refusal = taken(&id("urn:oid:1.2", "A1"), "p-1".into());
        assert_eq!(refusal.code(), "conflict");
        assert!(refusal.detail().contains("urn:oid:1.2|A1"), "{}", refusal.detail());
        assert!(refusal.detail().contains("p-1"), "{}", refusal.detail());
    }
}
