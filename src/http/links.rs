//! OpenAPI `links`: from the answer that creates a record to the operations
//! on it, so that generated clients and stateful testers (schemathesis's
//! stateful phase) can follow ids from one call to the next. The handlers'
//! annotations say what each operation is; this table says how they chain,
//! in one place, and [`add`] writes it into the document.

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{OpenApi, RefOr};

/// The id of the record an answer is about.
const ID: &str = "$response.body#/id";
/// The patient an answer's record belongs to.
const PATIENT_ID: &str = "$response.body#/patient_id";
/// The first infusion of a booked course.
const FIRST_APPOINTMENT_ID: &str = "$response.body#/appointments/0/id";

/// What a patient's id opens: the record and everything kept under it.
const ON_A_PATIENT: &[&str] = &[
    "get_patient",
    "update_patient",
    "get_readiness",
    "create_referral",
    "list_referrals",
    "create_treatment_attestation",
    "list_treatment_attestations",
    "create_screening",
    "list_screenings",
    "create_prescriber_consult",
    "list_prescriber_consults",
    "list_patient_courses",
    "get_access_log",
    "list_charges",
    "create_charge",
    "list_payments",
    "create_payment",
    "get_balance",
    "get_superbill",
];

/// What an appointment's id opens: reading it and every action on it.
const ON_AN_APPOINTMENT: &[&str] = &[
    "get_appointment",
    "cancel_appointment",
    "reschedule_appointment",
    "check_in_appointment",
    "complete_appointment",
    "no_show_appointment",
];

/// What a backend client's id opens: reading it and every change to it.
const ON_A_CLIENT: &[&str] = &["get_client", "update_client", "disable_client", "enable_client"];

/// One group of links: from `source`'s `status` answer to each of
/// `targets`, whose parameter `parameter` is the value `expression` reads
/// from the answer. Each link is named after its target's operationId.
pub struct Links {
    pub source: &'static str,
    pub status: &'static str,
    pub targets: &'static [&'static str],
    pub parameter: &'static str,
    pub expression: &'static str,
}

/// Every link of the contract.
pub const LINKS: &[Links] = &[
    Links {
        source: "create_patient",
        status: "201",
        targets: ON_A_PATIENT,
        parameter: "id",
        expression: ID,
    },
    Links {
        source: "create_patient",
        status: "201",
        targets: &["list_appointments"],
        parameter: "patient_id",
        expression: ID,
    },
    Links {
        source: "create_referral",
        status: "201",
        targets: &["get_referral", "verify_referral", "reject_referral"],
        parameter: "id",
        expression: ID,
    },
    Links {
        source: "create_referral",
        status: "201",
        targets: &["get_patient", "get_readiness", "list_referrals"],
        parameter: "id",
        expression: PATIENT_ID,
    },
    Links {
        source: "create_treatment_attestation",
        status: "201",
        targets: &["get_readiness", "list_treatment_attestations"],
        parameter: "id",
        expression: PATIENT_ID,
    },
    Links {
        source: "create_screening",
        status: "201",
        targets: &["get_screening"],
        parameter: "id",
        expression: ID,
    },
    Links {
        source: "create_screening",
        status: "201",
        targets: &["get_readiness", "list_screenings"],
        parameter: "id",
        expression: PATIENT_ID,
    },
    Links {
        source: "create_prescriber_consult",
        status: "201",
        targets: &["get_readiness", "list_prescriber_consults"],
        parameter: "id",
        expression: PATIENT_ID,
    },
    Links {
        source: "create_webhook_endpoint",
        status: "201",
        targets: &[
            "get_webhook_endpoint",
            "update_webhook_endpoint",
            "disable_webhook_endpoint",
            "enable_webhook_endpoint",
            "rotate_webhook_secret",
            "delete_webhook_endpoint",
            "list_webhook_deliveries",
        ],
        parameter: "id",
        expression: ID,
    },
    Links {
        source: "register_client",
        status: "201",
        targets: ON_A_CLIENT,
        parameter: "id",
        expression: ID,
    },
    Links {
        source: "create_clinician",
        status: "201",
        targets: &["get_clinician", "update_clinician"],
        parameter: "id",
        expression: ID,
    },
    Links {
        source: "create_charge",
        status: "201",
        targets: &["get_charge", "void_charge"],
        parameter: "id",
        expression: ID,
    },
    Links {
        source: "create_charge",
        status: "201",
        targets: &["list_charges", "get_balance", "get_superbill"],
        parameter: "id",
        expression: PATIENT_ID,
    },
    Links {
        source: "create_payment",
        status: "201",
        targets: &["get_payment", "void_payment"],
        parameter: "id",
        expression: ID,
    },
    Links {
        source: "create_payment",
        status: "201",
        targets: &["list_payments", "get_balance", "get_superbill"],
        parameter: "id",
        expression: PATIENT_ID,
    },
    Links {
        source: "create_room",
        status: "201",
        targets: &["update_room"],
        parameter: "id",
        expression: ID,
    },
    Links {
        source: "create_closure",
        status: "201",
        targets: &["delete_closure"],
        parameter: "id",
        expression: ID,
    },
    Links {
        source: "book_appointment",
        status: "201",
        targets: ON_AN_APPOINTMENT,
        parameter: "id",
        expression: ID,
    },
    Links {
        source: "book_appointment",
        status: "201",
        targets: &["get_patient", "get_readiness"],
        parameter: "id",
        expression: PATIENT_ID,
    },
    Links {
        source: "book_appointment",
        status: "201",
        targets: &["list_appointments"],
        parameter: "patient_id",
        expression: PATIENT_ID,
    },
    Links {
        source: "book_course",
        status: "201",
        targets: &["get_course", "cancel_course"],
        parameter: "id",
        expression: ID,
    },
    Links {
        source: "book_course",
        status: "201",
        targets: ON_AN_APPOINTMENT,
        parameter: "id",
        expression: FIRST_APPOINTMENT_ID,
    },
    Links {
        source: "book_course",
        status: "201",
        targets: &["list_patient_courses"],
        parameter: "id",
        expression: PATIENT_ID,
    },
];

/// Writes [`LINKS`] into the responses of `api`. A link whose source
/// operation or status is not in the document is left out; a test holds
/// every link to an operation and parameter that exist.
pub fn add(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        let operations =
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            add_to(operation);
        }
    }
}

fn add_to(operation: &mut Operation) {
    let Some(id) = operation.operation_id.clone() else { return };
    for group in LINKS.iter().filter(|l| l.source == id) {
        let Some(RefOr::T(response)) = operation.responses.responses.get_mut(group.status) else {
            continue;
        };
        for target in group.targets {
            let link = LinkBuilder::new()
                .operation_id(*target)
                .parameter(group.parameter, group.expression)
                .build();
            response.links.insert((*target).to_owned(), RefOr::T(link));
        }
    }
}
