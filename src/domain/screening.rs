//! Contraindication screening ("Contraindication screening" in DOMAIN.md):
//! nine criteria, each answered explicitly; any true one makes the patient
//! ineligible. Lamotrigine among the medications raises a prescriber consult.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::FieldError;

/// The nine answers, each given explicitly by a clinician.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Criteria {
    /// Active substance abuse (alcohol, non-prescribed medications, etc.).
    pub active_substance_abuse: bool,
    /// History of psychosis.
    pub history_of_psychosis: bool,
    /// Undiagnosed mental health condition, not seeing a mental health provider.
    pub undiagnosed_mental_health_condition: bool,
    /// History of increased intracranial pressure.
    pub increased_intracranial_pressure: bool,
    /// Uncontrolled hypertension.
    pub uncontrolled_hypertension: bool,
    /// Acute or unstable cardiovascular disease.
    pub unstable_cardiovascular_disease: bool,
    /// Previous negative response to ketamine.
    pub previous_negative_ketamine_response: bool,
    /// History of ketamine abuse disorder.
    pub ketamine_abuse_disorder: bool,
    /// Current pregnancy.
    pub pregnant: bool,
}

/// The criteria's names, in the order of DOMAIN.md.
pub const CRITERIA: [&str; 9] = [
    "active_substance_abuse",
    "history_of_psychosis",
    "undiagnosed_mental_health_condition",
    "increased_intracranial_pressure",
    "uncontrolled_hypertension",
    "unstable_cardiovascular_disease",
    "previous_negative_ketamine_response",
    "ketamine_abuse_disorder",
    "pregnant",
];

impl Criteria {
    /// The answers in [`CRITERIA`] order.
    pub fn answers(&self) -> [bool; 9] {
        [
            self.active_substance_abuse,
            self.history_of_psychosis,
            self.undiagnosed_mental_health_condition,
            self.increased_intracranial_pressure,
            self.uncontrolled_hypertension,
            self.unstable_cardiovascular_disease,
            self.previous_negative_ketamine_response,
            self.ketamine_abuse_disorder,
            self.pregnant,
        ]
    }

    fn from_answers(a: [bool; 9]) -> Self {
        Criteria {
            active_substance_abuse: a[0],
            history_of_psychosis: a[1],
            undiagnosed_mental_health_condition: a[2],
            increased_intracranial_pressure: a[3],
            uncontrolled_hypertension: a[4],
            unstable_cardiovascular_disease: a[5],
            previous_negative_ketamine_response: a[6],
            ketamine_abuse_disorder: a[7],
            pregnant: a[8],
        }
    }

    /// Reads the criteria object, naming every missing, unknown or
    /// non-boolean answer at once (`field` is the object's path). A missing
    /// answer is never taken as `false`.
    pub fn parse(field: &str, value: &Value) -> Result<Self, Vec<FieldError>> {
        let Some(map) = value.as_object() else {
            return Err(vec![FieldError::new(
                field,
                "must be an object with the nine criteria, each true or false",
            )]);
        };
        Self::parse_map(field, map)
    }

    fn parse_map(field: &str, map: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut answers = [false; 9];
        for (i, name) in CRITERIA.iter().enumerate() {
            match map.get(*name) {
                Some(Value::Bool(b)) => answers[i] = *b,
                Some(_) => errors.push(FieldError::new(
                    format!("{field}.{name}"),
                    "must be true or false",
                )),
                None => errors.push(FieldError::new(
                    format!("{field}.{name}"),
                    "is required: answer true or false",
                )),
            }
        }
        for key in map.keys().filter(|k| !CRITERIA.contains(&k.as_str())) {
            errors.push(FieldError::new(
                format!("{field}.{key}"),
                "is not a screening criterion",
            ));
        }
        if errors.is_empty() {
            Ok(Self::from_answers(answers))
        } else {
            Err(errors)
        }
    }

    /// The criteria answered true: the reasons a patient is ineligible.
    pub fn reasons(&self) -> Vec<&'static str> {
        CRITERIA
            .iter()
            .zip(self.answers())
            .filter(|(_, answer)| *answer)
            .map(|(name, _)| *name)
            .collect()
    }

    pub fn outcome(&self) -> Outcome {
        if self.reasons().is_empty() {
            Outcome::Eligible
        } else {
            Outcome::Ineligible
        }
    }
}

/// What a screening decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Eligible,
    Ineligible,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Eligible => "eligible",
            Outcome::Ineligible => "ineligible",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Outcome::Eligible, Outcome::Ineligible]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// The flag a screening raises when lamotrigine is among the medications.
pub const LAMOTRIGINE_FLAG: &str = "lamotrigine_prescriber_consult";

/// Names under which lamotrigine is sold, matched as whole words of the
/// medication name: generic, Lamictal (with XR, ODT, CD), Subvenite.
const LAMOTRIGINE_NAMES: [&str; 3] = ["lamotrigine", "lamictal", "subvenite"];

/// Whether a medication name is lamotrigine under any of its names, in any
/// case. Whole words only, so Lamisil or lamivudine do not match.
pub fn is_lamotrigine(medication: &str) -> bool {
    medication
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .any(|word| {
            let word = word.to_lowercase();
            LAMOTRIGINE_NAMES.iter().any(|name| {
                // "LamictalXR" and "LamictalODT" are written joined too.
                word == *name
                    || word
                        .strip_prefix(name)
                        .is_some_and(|rest| ["xr", "odt", "cd"].contains(&rest))
            })
        })
}

/// The flags a medication list raises.
pub fn flags(medications: &[String]) -> Vec<&'static str> {
    if medications.iter().any(|m| is_lamotrigine(m)) {
        vec![LAMOTRIGINE_FLAG]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all_false() -> Value {
        Value::Object(
            CRITERIA
                .iter()
                .map(|c| (c.to_string(), json!(false)))
                .collect(),
        )
    }

    #[test]
    fn all_false_is_eligible() {
        let c = Criteria::parse("criteria", &all_false()).unwrap();
        assert_eq!(c.outcome(), Outcome::Eligible);
        assert!(c.reasons().is_empty());
    }

    #[test]
    fn each_criterion_alone_makes_the_patient_ineligible() {
        for name in CRITERIA {
            let mut v = all_false();
            v[name] = json!(true);
            let c = Criteria::parse("criteria", &v).unwrap();
            assert_eq!(c.outcome(), Outcome::Ineligible, "{name}");
            assert_eq!(c.reasons(), vec![name]);
        }
    }

    #[test]
    fn every_true_criterion_is_named() {
        let mut v = all_false();
        v["pregnant"] = json!(true);
        v["history_of_psychosis"] = json!(true);
        v["uncontrolled_hypertension"] = json!(true);
        let c = Criteria::parse("criteria", &v).unwrap();
        assert_eq!(
            c.reasons(),
            vec![
                "history_of_psychosis",
                "uncontrolled_hypertension",
                "pregnant"
            ]
        );
        let mut every = all_false();
        for name in CRITERIA {
            every[name] = json!(true);
        }
        assert_eq!(Criteria::parse("c", &every).unwrap().reasons().len(), 9);
    }

    #[test]
    fn missing_unknown_and_mistyped_answers_are_all_named() {
        let mut v = all_false();
        let map = v.as_object_mut().unwrap();
        map.remove("pregnant");
        map.remove("history_of_psychosis");
        map.insert("uncontrolled_hypertension".into(), json!("no"));
        map.insert("active_substance_abuse".into(), Value::Null);
        map.insert("smoker".into(), json!(true));
        let errors = Criteria::parse("criteria", &v).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "criteria.active_substance_abuse",
                "criteria.history_of_psychosis",
                "criteria.uncontrolled_hypertension",
                "criteria.pregnant",
                "criteria.smoker"
            ]
        );
        assert!(Criteria::parse("criteria", &json!([])).is_err());
        assert_eq!(
            Criteria::parse("criteria", &json!({})).unwrap_err().len(),
            9
        );
    }

    #[test]
    fn lamotrigine_under_every_name_and_case() {
        for name in [
            "lamotrigine",
            "Lamotrigine 100 mg",
            "LAMICTAL",
            "Lamictal XR",
            "lamictal-odt",
            "Lamictal CD 25mg",
            "LamictalXR",
            "Subvenite",
            "subvenite 50 mg tablet",
            "Lamotrigine ER (generic)",
        ] {
            assert!(is_lamotrigine(name), "{name}");
        }
    }

    #[test]
    fn no_false_positives_on_other_drugs() {
        for name in [
            "Lamisil",
            "lamivudine",
            "Lamprene",
            "sertraline",
            "lamotrigin",
            "Lamictalx",
            "Topamax",
            "",
            "levetiracetam",
        ] {
            assert!(!is_lamotrigine(name), "{name}");
        }
    }

    #[test]
    fn flags_come_from_the_medication_list() {
        assert_eq!(
            flags(&["Sertraline".into(), "Lamictal XR".into()]),
            vec![LAMOTRIGINE_FLAG]
        );
        assert!(flags(&["Sertraline".into()]).is_empty());
        assert!(flags(&[]).is_empty());
    }
}
