//! The values requests carry, parsed once where they enter ("Values" in
//! `docs/API.md`): ids, dates and free text. Each type's schema states the
//! rule its parser applies, so the contract and the server agree.

use std::borrow::Cow;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

/// A resource id: a UUID, kept in its canonical lower-case hyphenated form.
/// In a path, anything else is 404 (no such resource); in a body or query,
/// 422 naming the field.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(String);

impl Id {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(d)?;
        uuid::Uuid::try_parse(&text)
            .map(|id| Id(id.hyphenated().to_string()))
            .map_err(|_| serde::de::Error::custom("is not a valid id (a UUID)"))
    }
}

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid)))
            // No example: Swagger UI would fill it into every optional id
            // parameter (a `cursor` skipping to after it, a `patient_id`
            // filter naming nobody) of a first "Try it out".
            .description(Some("A resource's id: a UUID."))
            .into()
    }
}

impl ToSchema for Id {}

/// A calendar date as requests send it, `YYYY-MM-DD`, from 1900-01-01 to
/// 9999-12-31: chrono reads years far outside what PostgreSQL's `date`
/// holds, and bounding them here keeps such input a 422, never a database
/// error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CalendarDate(NaiveDate);

/// The years from 1900 to 9999, as a JSON Schema `pattern` on a `date`.
pub const YEAR_PATTERN: &str = "^(?:19|[2-9][0-9])[0-9]{2}-";

impl CalendarDate {
    pub fn get(self) -> NaiveDate {
        self.0
    }

    /// A date read back from storage, where it went only after parsing.
    pub fn stored(date: NaiveDate) -> Self {
        Self(date)
    }
}

/// A range of dates asked for: `to`, when given with `from`, is not before it.
pub fn dates_in_order(
    from: Option<CalendarDate>,
    to: Option<CalendarDate>,
) -> Result<(), super::Refusal> {
    match (from, to) {
        (Some(from), Some(to)) if to < from => {
            Err(super::FieldError::refusal("to", "must not be before `from`"))
        }
        _ => Ok(()),
    }
}

impl CalendarDate {
    /// Reads an RFC 3339 `full-date` and nothing else: four digits of year,
    /// two of month and two of day. chrono alone also reads a sign, more
    /// year digits and one-digit months or days (`+002020-1-1`), which the
    /// contract's `date` format and pattern refuse.
    pub fn parse(sent: &str) -> Result<Self, String> {
        let full_date = sent.len() == 10
            && sent.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        let date = NaiveDate::parse_from_str(sent, "%Y-%m-%d")
            .ok()
            .filter(|_| full_date)
            .ok_or_else(|| "must be a date as YYYY-MM-DD".to_owned())?;
        let first = NaiveDate::from_ymd_opt(1900, 1, 1);
        let last = NaiveDate::from_ymd_opt(9999, 12, 31);
        if first.is_some_and(|f| date >= f) && last.is_some_and(|l| date <= l) {
            Ok(CalendarDate(date))
        } else {
            Err("must be a date from 1900-01-01 to 9999-12-31".into())
        }
    }
}

impl<'de> Deserialize<'de> for CalendarDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sent = Cow::<str>::deserialize(d)?;
        Self::parse(&sent).map_err(serde::de::Error::custom)
    }
}

impl PartialSchema for CalendarDate {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Date)))
            .pattern(Some(YEAR_PATTERN))
            .description(Some(
                "A date, `YYYY-MM-DD`, from 1900-01-01 to 9999-12-31; clinic-local where it \
                 names a clinic day.",
            ))
            .into()
    }
}

impl ToSchema for CalendarDate {}

/// Free text of 1 to `MAX` characters, counted as sent: no control
/// character, no bidirectional override or isolate, and at least one
/// visible character. It holds the text trimmed of surrounding white space.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Text<const MAX: usize>(String);

/// A reason given for a decision (a cancellation, a rejection): at most
/// 500 characters.
pub type Reason = Text<500>;

impl<const MAX: usize> Text<MAX> {
    /// Applies the text rule to `sent`; what breaks it, in words.
    pub fn parse(sent: &str) -> Result<Self, String> {
        if sent.chars().any(char::is_control) {
            Err("must not contain control characters".into())
        } else if sent.chars().any(|c| within(&BIDI, c)) {
            Err("must not contain bidirectional override or isolate characters".into())
        } else if !sent.chars().any(is_visible) {
            Err("must contain a visible character".into())
        } else if sent.chars().count() > MAX {
            Err(format!("must be at most {MAX} characters"))
        } else {
            Ok(Self(sent.trim().to_owned()))
        }
    }

    /// A text read back from storage, where it went only after [`Self::parse`]:
    /// not checked again, so that a rule tightened later never makes a
    /// stored record unreadable.
    pub fn stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sent = Cow::<str>::deserialize(d)?;
        Self::parse(&sent).map_err(serde::de::Error::custom)
    }
}

impl<const MAX: usize> PartialSchema for Text<MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX))
            .pattern(Some(pattern()))
            .description(Some(format!(
                "Free text: 1 to {MAX} characters, at least one of them visible; no control \
                 characters and no bidirectional overrides or isolates (U+202A–U+202E, \
                 U+2066–U+2069). Stored without surrounding white space."
            )))
            .into()
    }
}

impl<const MAX: usize> ToSchema for Text<MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Text{MAX}"))
    }
}

/// The control characters (Unicode category Cc, `char::is_control`).
const CONTROL: [(char, char); 2] = [('\u{0}', '\u{1f}'), ('\u{7f}', '\u{9f}')];

/// Bidirectional embeddings, overrides and isolates: they reorder how the
/// text around them is shown ("Trojan Source").
const BIDI: [(char, char); 2] = [('\u{202a}', '\u{202e}'), ('\u{2066}', '\u{2069}')];

/// The white space (`char::is_whitespace`) that is not a control character.
const BLANK: [(char, char); 8] = [
    (' ', ' '),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// Unicode's default-ignorable code points in the Basic Multilingual Plane
/// (DerivedCoreProperties.txt), which show nothing: zero-width spaces and
/// joiners, the byte order mark, variation selectors, Hangul fillers. The
/// astral ones (tags, shorthand format controls) are left out, because a
/// JSON Schema pattern cannot name them in a form every regular expression
/// engine reads alike; the contract and this check must say the same.
const INVISIBLE: [(char, char); 14] = [
    ('\u{ad}', '\u{ad}'),
    ('\u{34f}', '\u{34f}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{2060}', '\u{2065}'),
    ('\u{206a}', '\u{206f}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{ffa0}', '\u{ffa0}'),
    ('\u{fff0}', '\u{fff8}'),
];

fn within(ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(from, to)| (from..=to).contains(&c))
}

/// Whether `c` shows something: not a control, bidirectional, white-space
/// or default-ignorable character.
fn is_visible(c: char) -> bool {
    ![&CONTROL[..], &BIDI[..], &BLANK[..], &INVISIBLE[..]].iter().any(|ranges| within(ranges, c))
}

/// A regular expression character class of `ranges`, with `\uXXXX` escapes
/// that ECMA-262, Python and Rust regular expressions all read alike.
fn class(negated: bool, ranges: &[(char, char)]) -> String {
    let escape = |c: char| format!("\\u{:04X}", u32::from(c));
    let body: String = ranges
        .iter()
        .map(
            |&(from, to)| {
                if from == to {
                    escape(from)
                } else {
                    format!("{}-{}", escape(from), escape(to))
                }
            },
        )
        .collect();
    format!("[{}{body}]", if negated { "^" } else { "" })
}

/// The JSON Schema `pattern` of [`Text`]: no control or bidirectional
/// character anywhere, and at least one visible character.
pub fn pattern() -> String {
    let allowed = class(true, &[&CONTROL[..], &BIDI[..]].concat());
    let visible = class(true, &[&CONTROL[..], &BIDI[..], &BLANK[..], &INVISIBLE[..]].concat());
    format!("^{allowed}*{visible}{allowed}*$")
}

/// The parts of an absolute URL that decide where it goes: its scheme,
/// its authority (`[user@]host[:port]`) and its host (an IPv6 address
/// without its brackets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub scheme: &'a str,
    pub authority: &'a str,
    pub host: &'a str,
}

impl UrlParts<'_> {
    /// A host is named, and no user name or password is.
    pub fn has_plain_host(&self) -> bool {
        !self.authority.is_empty() && !self.authority.contains('@')
    }
}

/// `url`'s parts; `None` when it is not `scheme://…`.
pub fn url_parts(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.rsplit_once(':').map_or(host_port, |(host, _)| host),
    };
    Some(UrlParts { scheme, authority, host })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classes_are_the_characters_they_name() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(c.is_control(), within(&CONTROL, c), "{c:?}");
            assert_eq!(c.is_whitespace() && !c.is_control(), within(&BLANK, c), "{c:?}");
        }
        assert_eq!(
            pattern(),
            "^[^\\u0000-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]*\
             [^\\u0000-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069\
             \\u0020\\u00A0\\u1680\\u2000-\\u200A\\u2028-\\u2029\\u202F\\u205F\\u3000\
             \\u00AD\\u034F\\u061C\\u115F-\\u1160\\u17B4-\\u17B5\\u180B-\\u180F\\u200B-\\u200F\
             \\u2060-\\u2065\\u206A-\\u206F\\u3164\\uFE00-\\uFE0F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8]\
             [^\\u0000-\\u001F\\u007F-\\u009F\\u202A-\\u202E\\u2066-\\u2069]*$"
        );
    }

    #[test]
    fn dates_are_full_dates_within_the_years() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(CalendarDate::parse("2026-12-02").map(CalendarDate::get), Ok(day(2026, 12, 2)));
        assert_eq!(CalendarDate::parse("1900-01-01").map(CalendarDate::get), Ok(day(1900, 1, 1)));
        assert_eq!(CalendarDate::parse("9999-12-31").map(CalendarDate::get), Ok(day(9999, 12, 31)));
        for sent in [
            "+002020-01-01",
            "+2020-01-01",
            "-2020-01-01",
            "02020-01-01",
            "2020-1-01",
            "2020-01-1",
            " 2020-01-01",
            "2020-01-01 ",
            "2020-01-01\n",
            "2020-01-01T00:00",
            "20200101",
            "2020/01/01",
            "2020-02-30",
            "2020-13-01",
            "2020-00-10",
            "",
            "２０２０-01-01",
        ] {
            assert_eq!(
                CalendarDate::parse(sent),
                Err("must be a date as YYYY-MM-DD".into()),
                "{sent:?}"
            );
        }
        for sent in ["1899-12-31", "0001-01-01"] {
            assert!(CalendarDate::parse(sent).unwrap_err().contains("1900-01-01"), "{sent}");
        }
    }

    #[test]
    fn the_text_rule() {
        type Short = Text<7>;
        for (sent, held) in [
            ("  Ada  ", "Ada"),
            ("\u{3000}x", "x"),
            ("A\u{200b}da", "A\u{200b}da"),
            ("\u{1f6cf}", "\u{1f6cf}"),
            ("\u{200e}Ada", "\u{200e}Ada"),
        ] {
            assert_eq!(Short::parse(sent).map(Text::into_string), Ok(held.into()));
        }
        for (sent, message) in [
            ("", "must contain a visible character"),
            (" \u{a0}\u{2003}", "must contain a visible character"),
            ("\u{200b}\u{200b}", "must contain a visible character"),
            ("\u{feff}\u{2060} ", "must contain a visible character"),
            ("Ada\n", "must not contain control characters"),
            ("\tAda", "must not contain control characters"),
            ("A\u{85}da", "must not contain control characters"),
            ("Ada\u{202e}", "must not contain bidirectional override or isolate characters"),
            ("\u{2067}Ada", "must not contain bidirectional override or isolate characters"),
            ("  Ada   ", "must be at most 7 characters"),
        ] {
            assert_eq!(Short::parse(sent), Err(message.into()), "{sent:?}");
        }
    }

    #[test]
    fn a_text_parses_from_json_and_names_what_is_wrong() {
        let parsed: Text<10> = serde_json::from_str(r#"" Room 5 ""#).unwrap();
        assert_eq!(parsed.as_str(), "Room 5");
        let error = serde_json::from_str::<Text<10>>(r#""\u200b""#).unwrap_err();
        assert!(error.to_string().contains("visible"), "{error}");
        assert_eq!(Text::<10>::name(), "Text10");
    }

    #[test]
    fn a_urls_parts_are_its_scheme_authority_and_host() {
        // (url, (scheme, host, plain host)) or None
        let table = [
            ("https://ehr.example.org/hooks?x=1", Some(("https", "ehr.example.org", true))),
            ("http://127.0.0.1:9000/certs", Some(("http", "127.0.0.1", true))),
            ("https://[::1]:8443/", Some(("https", "::1", true))),
            ("https://user:pw@ehr.example.org/", Some(("https", "ehr.example.org", false))),
            ("https:///hooks", Some(("https", "", false))),
            ("ehr.example.org/hooks", None),
        ];
        for (url, expected) in table {
            let parts = url_parts(url).map(|p| (p.scheme, p.host, p.has_plain_host()));
            assert_eq!(parts, expected, "{url}");
        }
    }
}
