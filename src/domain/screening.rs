//! Contraindication screening ("Contraindication screening" in `docs/DOMAIN.md`):
//! nine criteria, each answered explicitly; any true one makes the patient
//! ineligible. Lamotrigine among the medications raises a prescriber consult.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::values::Text;
use super::{FieldError, Refusal};

/// The nine answers, each given explicitly by a clinician.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ScreeningCriteria)]
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

/// The criteria's names, in the order of `docs/DOMAIN.md`.
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
                Some(_) => {
                    errors.push(FieldError::new(format!("{field}.{name}"), "must be true or false"))
                }
                None => errors.push(FieldError::new(
                    format!("{field}.{name}"),
                    "is required: answer true or false",
                )),
            }
        }
        for key in map.keys().filter(|k| !CRITERIA.contains(&k.as_str())) {
            errors.push(FieldError::new(format!("{field}.{key}"), "is not a screening criterion"));
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
#[schema(as = ScreeningOutcome)]
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
        [Outcome::Eligible, Outcome::Ineligible].into_iter().find(|o| o.as_str() == text)
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
    medication.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).any(|word| {
        let word = word.to_lowercase();
        LAMOTRIGINE_NAMES.iter().any(|name| {
            // "LamictalXR" and "LamictalODT" are written joined too.
            word == *name
                || word.strip_prefix(name).is_some_and(|rest| ["xr", "odt", "cd"].contains(&rest))
        })
    })
}

/// The flags a medication list raises.
pub fn flags(medications: &[Medication]) -> Vec<&'static str> {
    if medications.iter().any(|m| is_lamotrigine(m.name.as_str())) {
        vec![LAMOTRIGINE_FLAG]
    } else {
        Vec::new()
    }
}

/// A medication as written on the prescription: at most 200 characters.
pub type MedicationName = Text<200>;

/// Most medications one screening lists.
pub const MAX_MEDICATIONS: usize = 100;

/// One medication the patient takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Medication {
    /// As written on the prescription.
    pub name: MedicationName,
}

/// A screening as a clinician sends it: all nine criteria answered true or
/// false, and the current medications.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "criteria": {
        "active_substance_abuse": false, "history_of_psychosis": false,
        "undiagnosed_mental_health_condition": false, "increased_intracranial_pressure": false,
        "uncontrolled_hypertension": false, "unstable_cardiovascular_disease": false,
        "previous_negative_ketamine_response": false, "ketamine_abuse_disorder": false, "pregnant": false
    },
    "medications": [{"name": "Sertraline 50 mg"}, {"name": "Lamictal XR 100 mg"}]
}))]
pub struct ScreeningRequest {
    /// Every criterion, each `true` or `false`: a missing one is an error, never a default.
    #[schema(value_type = Criteria)]
    pub criteria: Value,
    /// May be empty; at most 100.
    #[schema(max_items = 100)]
    pub medications: Vec<Medication>,
}

/// A screening decided, to record as it is: never changed afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewScreening {
    pub criteria: Criteria,
    pub medications: Vec<Medication>,
    /// Lamotrigine is among the medications: a prescriber consult is due.
    pub lamotrigine: bool,
    /// Clinic-local date; it counts for the screening window.
    pub screened_on: NaiveDate,
}

/// The decision on a screening as sent: every answer present and boolean
/// (every bad one named), at most [`MAX_MEDICATIONS`] medications, and the
/// lamotrigine flag from them.
pub fn screen(request: ScreeningRequest, today: NaiveDate) -> Result<NewScreening, Refusal> {
    let mut errors = Vec::new();
    let criteria = Criteria::parse("criteria", &request.criteria).unwrap_or_else(|e| {
        errors.extend(e);
        Criteria::default()
    });
    if request.medications.len() > MAX_MEDICATIONS {
        errors
            .push(FieldError::new("medications", format!("at most {MAX_MEDICATIONS} medications")));
    }
    super::valid(errors)?;
    Ok(NewScreening {
        lamotrigine: !flags(&request.medications).is_empty(),
        criteria,
        medications: request.medications,
        screened_on: today,
    })
}

/// A screening as recorded. Its outcome follows from the criteria; the
/// reasons and flags the API shows follow from criteria and medications.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Screening {
    pub id: String,
    pub patient_id: String,
    pub criteria: Criteria,
    pub medications: Vec<Medication>,
    pub outcome: Outcome,
    #[serde(skip)]
    pub lamotrigine: bool,
    /// Clinic-local date of the screening; it counts for `SCREENING_VALID_DAYS`.
    pub screened_on: NaiveDate,
    /// `role:subject` of the clinician.
    pub screened_by: String,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
}

impl Screening {
    /// The criteria answered true.
    pub fn reasons(&self) -> Vec<String> {
        self.criteria.reasons().into_iter().map(str::to_owned).collect()
    }

    /// `lamotrigine_prescriber_consult` when lamotrigine is among the medications.
    pub fn flags(&self) -> Vec<String> {
        if self.lamotrigine {
            vec![LAMOTRIGINE_FLAG.to_owned()]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all_false() -> Value {
        Value::Object(CRITERIA.iter().map(|c| (c.to_string(), json!(false))).collect())
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
            vec!["history_of_psychosis", "uncontrolled_hypertension", "pregnant"]
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
        assert_eq!(Criteria::parse("criteria", &json!({})).unwrap_err().len(), 9);
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
        let meds = |names: &[&str]| -> Vec<Medication> {
            names.iter().map(|n| Medication { name: Text::parse(n).unwrap() }).collect()
        };
        assert_eq!(flags(&meds(&["Sertraline", "Lamictal XR"])), vec![LAMOTRIGINE_FLAG]);
        assert!(flags(&meds(&["Sertraline"])).is_empty());
        assert!(flags(&[]).is_empty());
    }

    #[test]
    fn a_screening_is_recorded_only_whole() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let all_false: Map<String, Value> =
            CRITERIA.iter().map(|c| (c.to_string(), json!(false))).collect();
        let request = |criteria: Value, medications: usize| ScreeningRequest {
            criteria,
            medications: vec![
                Medication { name: Text::parse("Lamictal 25 mg").unwrap() };
                medications
            ],
        };
        let recorded = screen(request(json!(all_false), 1), today).unwrap();
        assert!(recorded.lamotrigine);
        assert_eq!(recorded.criteria.outcome(), Outcome::Eligible);
        assert_eq!(recorded.screened_on, today);
        let Err(Refusal::Invalid(errors)) = screen(request(json!({"pregnant": true}), 101), today)
        else {
            panic!("eight answers missing and too many medications");
        };
        assert_eq!(errors.len(), 9);
        assert_eq!(errors[8].field, "medications");
    }
}
