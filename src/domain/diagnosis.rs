//! ICD-10-CM diagnoses: the codes the clinic uses, in one table
//! (`reference/icd10cm.csv`: code, billable, the indication it may code,
//! description), which CI holds to a maintained ICD-10-CM package
//! (`.ci/icd10-check`). A clinician codes each of a patient's indications
//! with one of them; only billable codes (leaves of the classification) go
//! on a claim, so a category header such as `G90.5` is refused, naming the
//! billable codes under it.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// The table, as committed.
const TABLE_CSV: &str = include_str!("../../reference/icd10cm.csv");

/// One code of the table.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub code: &'static str,
    /// A leaf of ICD-10-CM: a code a claim may carry.
    pub billable: bool,
    /// The indication it may code (`Indication::key`): `depression`,
    /// `chronic_pain.crps`, … (`chronic_pain`: any chronic pain).
    pub indication: &'static str,
    pub description: String,
}

/// The table's rows, in its order; a row that cannot be read is left out
/// (a unit test holds every row readable).
static TABLE: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    TABLE_CSV.lines().filter(|line| !line.starts_with('#')).skip(1).filter_map(row).collect()
});

/// A row: `code,billable,indication,description` (the description maybe in
/// double quotes, with `""` for a quote).
fn row(line: &'static str) -> Option<Entry> {
    let mut cells = line.splitn(4, ',');
    let (code, billable, indication, description) =
        (cells.next()?, cells.next()?, cells.next()?, cells.next()?);
    let description = match description.strip_prefix('"').and_then(|d| d.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => description.to_owned(),
    };
    let billable = match billable {
        "true" => true,
        "false" => false,
        _ => return None,
    };
    Some(Entry { code, billable, indication, description })
}

/// Every code of the table.
pub fn table() -> &'static [Entry] {
    &TABLE
}

/// The billable codes that may code `indication` (`Indication::key`): its
/// own and, for a kind of chronic pain, chronic pain's.
pub fn billable_for(indication: &str) -> impl Iterator<Item = &'static Entry> + '_ {
    table().iter().filter(move |e| e.billable && codes(indication, e))
}

/// Whether `entry` may code `indication`.
fn codes(indication: &str, entry: &Entry) -> bool {
    entry.indication == indication
        || (entry.indication == "chronic_pain" && indication.starts_with("chronic_pain"))
}

/// An ICD-10-CM code of the table. Only a code the table holds can be one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Diagnosis(&'static Entry);

impl Diagnosis {
    /// The table's entry for `code` (exactly as ICD-10-CM writes it, with
    /// its dot).
    pub fn parse(code: &str) -> Option<Diagnosis> {
        table().iter().find(|e| e.code == code).map(Diagnosis)
    }

    /// A code stored with a patient's indication, read back: the table's
    /// entry, or `None` (the indication uncoded) when the table no longer
    /// holds it. A later ICD-10-CM release may delete a code that patients
    /// were coded with; they stay readable, and a clinician codes the
    /// indication again (no claim could carry the deleted code anyway).
    pub fn stored(code: &str) -> Option<Diagnosis> {
        Diagnosis::parse(code)
    }

    pub fn code(self) -> &'static str {
        self.0.code
    }

    pub fn description(self) -> &'static str {
        &self.0.description
    }

    /// Why this code may go on no claim, if it may not: a category header,
    /// with the billable codes under it.
    pub fn why_not_billable(self) -> Option<String> {
        let entry = self.0;
        if entry.billable {
            return None;
        }
        let under: Vec<&str> = table()
            .iter()
            .filter(|e| e.billable && e.code.starts_with(entry.code))
            .map(|e| e.code)
            .collect();
        let shown = under.iter().take(12).copied().collect::<Vec<_>>().join(", ");
        let more = if under.len() > 12 { ", …" } else { "" };
        Some(format!(
            "`{}` ({}) is a category, not a billable code: choose one under it ({shown}{more})",
            entry.code, entry.description
        ))
    }

    /// Why this code may not code `indication` (`Indication::key`), if it
    /// may not: a category header, or another indication's code.
    pub fn refused_for(self, indication: &str) -> Option<String> {
        let entry = self.0;
        if let Some(why) = self.why_not_billable() {
            return Some(why);
        }
        if !codes(indication, entry) {
            return Some(format!(
                "`{}` ({}) is not a code for {indication}",
                entry.code, entry.description
            ));
        }
        None
    }
}

/// Any billable code of the table: what a charge may point to.
impl utoipa::PartialSchema for Diagnosis {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let codes: Vec<&str> = table().iter().filter(|e| e.billable).map(|e| e.code).collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes))
            .description(Some(
                "A billable ICD-10-CM code of the clinic's table (reference/icd10cm.csv).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Diagnosis {}

impl Serialize for Diagnosis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.code)
    }
}

impl<'de> Deserialize<'de> for Diagnosis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Diagnosis::parse(&code).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{code}` is not an ICD-10-CM code the clinic uses (reference/icd10cm.csv)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_of_the_table_reads_and_each_code_is_there_once() {
        let rows = TABLE_CSV.lines().filter(|l| !l.starts_with('#')).skip(1).count();
        assert_eq!(table().len(), rows);
        for (i, entry) in table().iter().enumerate() {
            assert!(table()[..i].iter().all(|e| e.code != entry.code), "{} twice", entry.code);
            assert!(!entry.description.is_empty() && !entry.description.starts_with('"'));
        }
    }

    #[test]
    fn a_stored_code_the_table_no_longer_holds_reads_as_uncoded() {
        // (stored, read back as)
        let cases = [
            ("G90.50", Some("G90.50")),
            ("G90.5", Some("G90.5")),
            ("F33.9", Some("F33.9")),
            ("G90.5X", None),
            ("E11.40", None),
            ("", None),
        ];
        for (stored, read) in cases {
            assert_eq!(Diagnosis::stored(stored).map(Diagnosis::code), read, "{stored}");
        }
    }

    #[test]
    fn only_a_billable_code_of_the_indication_codes_it() {
        // (code, indication, refused because)
        let cases: [(&str, &str, Option<&str>); 10] = [
            ("G90.50", "chronic_pain.crps", None),
            ("G90.59", "chronic_pain.crps", None),
            ("G90.5", "chronic_pain.crps", Some("is a category")),
            ("G90.51", "chronic_pain.crps", Some("is a category")),
            ("G89.29", "chronic_pain.crps", None),
            ("G89.4", "chronic_pain.neuropathic", None),
            ("G90.50", "chronic_pain.neuropathic", Some("not a code for")),
            ("F33.9", "depression", None),
            ("F33.9", "anxiety", Some("not a code for")),
            ("F41", "anxiety", Some("is a category")),
        ];
        for (code, indication, refused) in cases {
            let diagnosis = Diagnosis::parse(code).unwrap_or_else(|| panic!("{code}"));
            let why = diagnosis.refused_for(indication);
            match refused {
                None => assert_eq!(why, None, "{code} for {indication}"),
                Some(part) => {
                    assert!(why.as_deref().is_some_and(|w| w.contains(part)), "{code}: {why:?}")
                }
            }
        }
        let why = Diagnosis::parse("G90.5").unwrap().refused_for("chronic_pain.crps").unwrap();
        assert!(why.contains("G90.50") && why.contains("G90.59"), "{why}");
        for unknown in ["G90.5X", "g90.50", "G9050", "", "E11.40"] {
            assert_eq!(Diagnosis::parse(unknown), None, "{unknown}");
        }
        // Each indication has billable codes to choose from.
        for indication in [
            "depression",
            "anxiety",
            "migraine",
            "chronic_pain",
            "chronic_pain.crps",
            "chronic_pain.neuropathic",
        ] {
            assert!(billable_for(indication).count() > 0, "{indication}");
        }
    }
}
