//! SMART v2 system scopes (`system/Patient.rs`): what a backend client may
//! ask for, and which scope each operation needs ("Scopes" in
//! `docs/API.md`). A token with scopes may do what both its role and its
//! scopes allow.

use std::fmt;

/// The kinds of resource scopes name, as FHIR R4 names what each of ours is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Patient,
    /// Referrals.
    ServiceRequest,
    /// Contraindication screenings.
    QuestionnaireResponse,
    /// Treatment attestations from a patient's mental health provider.
    DocumentReference,
    /// Prescriber consults.
    Encounter,
    Appointment,
    /// A protocol course: a series of appointments.
    CarePlan,
    /// Free sessions: availability, and planning a course.
    Slot,
    /// Rooms.
    Location,
    /// Closures of the clinic.
    Schedule,
    /// Protocols.
    PlanDefinition,
    /// The audit trail and a patient's access log.
    AuditEvent,
    /// Pain and PHQ-9 scores (FHIR only).
    Observation,
}

impl Resource {
    pub const ALL: [Resource; 13] = [
        Resource::Patient,
        Resource::ServiceRequest,
        Resource::QuestionnaireResponse,
        Resource::DocumentReference,
        Resource::Encounter,
        Resource::Appointment,
        Resource::CarePlan,
        Resource::Slot,
        Resource::Location,
        Resource::Schedule,
        Resource::PlanDefinition,
        Resource::AuditEvent,
        Resource::Observation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Patient => "Patient",
            Resource::ServiceRequest => "ServiceRequest",
            Resource::QuestionnaireResponse => "QuestionnaireResponse",
            Resource::DocumentReference => "DocumentReference",
            Resource::Encounter => "Encounter",
            Resource::Appointment => "Appointment",
            Resource::CarePlan => "CarePlan",
            Resource::Slot => "Slot",
            Resource::Location => "Location",
            Resource::Schedule => "Schedule",
            Resource::PlanDefinition => "PlanDefinition",
            Resource::AuditEvent => "AuditEvent",
            Resource::Observation => "Observation",
        }
    }

    fn parse(text: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// One of SMART v2's permissions, in the order they are written: create,
/// read, update, delete, search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Permission {
    const ORDER: [(char, Permission); 5] = [
        ('c', Permission::Create),
        ('r', Permission::Read),
        ('u', Permission::Update),
        ('d', Permission::Delete),
        ('s', Permission::Search),
    ];

    fn bit(self) -> u8 {
        match self {
            Permission::Create => 1,
            Permission::Read => 2,
            Permission::Update => 4,
            Permission::Delete => 8,
            Permission::Search => 16,
        }
    }

    pub fn letter(self) -> char {
        Self::ORDER.iter().find(|(_, p)| *p == self).map_or('?', |(c, _)| *c)
    }
}

/// A set of permissions, as the bits of [`Permission::bit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Permissions(u8);

impl Permissions {
    const ALL: Permissions = Permissions(31);

    fn has(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    fn covers(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    /// `cruds`, or a subset of it in that order; SMART v1's `read`
    /// (`rs`), `write` (`cud`) and `*` (`cruds`).
    fn parse(text: &str) -> Option<Permissions> {
        match text {
            "read" => return Some(Permissions(2 | 16)),
            "write" => return Some(Permissions(1 | 4 | 8)),
            "*" => return Some(Permissions::ALL),
            "" => return None,
            _ => {}
        }
        let mut bits = 0;
        let mut letters = Permission::ORDER.iter();
        for c in text.chars() {
            // Each letter at most once, in the order c, r, u, d, s.
            let (_, permission) = letters.by_ref().find(|(letter, _)| *letter == c)?;
            bits |= permission.bit();
        }
        Some(Permissions(bits))
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (letter, permission) in Permission::ORDER {
            if self.has(permission) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// One scope: `system/<Resource>.<permissions>`, the resource `*` for all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    /// `None` for `*`.
    resource: Option<Resource>,
    permissions: Permissions,
}

impl Scope {
    /// `system/<Resource>.<cruds>` (or SMART v1's `.read`, `.write`, `.*`),
    /// with `*` for every resource; what is wrong with it otherwise.
    pub fn parse(text: &str) -> Result<Scope, String> {
        let refused = |why: &str| Err(format!("`{text}` {why}"));
        let Some(rest) = text.strip_prefix("system/") else {
            return refused(
                "is not a system scope: a backend client asks for `system/<Resource>.<cruds>`",
            );
        };
        if rest.contains('?') {
            return refused("narrows by search parameters, which this server does not support");
        }
        let Some((resource, permissions)) = rest.split_once('.') else {
            return refused("names no permissions: write `system/<Resource>.<cruds>`");
        };
        let resource = match resource {
            "*" => None,
            name => match Resource::parse(name) {
                Some(resource) => Some(resource),
                None => return refused("names a resource type this server does not serve"),
            },
        };
        let Some(permissions) = Permissions::parse(permissions) else {
            return refused("has permissions that are not some of `cruds`, in that order");
        };
        Ok(Scope { resource, permissions })
    }

    fn allows(&self, resource: Resource, permission: Permission) -> bool {
        self.resource.is_none_or(|r| r == resource) && self.permissions.has(permission)
    }

    /// Whether this scope grants everything `other` does.
    fn covers(&self, other: &Scope) -> bool {
        let resource = match (self.resource, other.resource) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => mine == theirs,
        };
        resource && self.permissions.covers(other.permissions)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resource = self.resource.map_or("*", Resource::as_str);
        write!(f, "system/{resource}.{}", self.permissions)
    }
}

/// The scopes a client holds or a token carries.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// A space-separated list of scopes (RFC 6749 §3.3); each problem.
    pub fn parse(text: &str) -> Result<Scopes, Vec<String>> {
        Self::parse_each(text.split(' ').filter(|s| !s.is_empty()))
    }

    /// Each of `items` a scope; each one that is not, with what is wrong.
    pub fn parse_each<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Scopes, Vec<String>> {
        let mut scopes = Vec::new();
        let mut errors = Vec::new();
        for item in items {
            match Scope::parse(item) {
                Ok(scope) if !scopes.contains(&scope) => scopes.push(scope),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Scopes(scopes))
        } else {
            Err(errors)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether some scope allows `permission` on `resource`.
    pub fn allows(&self, resource: Resource, permission: Permission) -> bool {
        self.0.iter().any(|scope| scope.allows(resource, permission))
    }

    /// The scopes of `requested` that none of these covers: a client may
    /// get no scope beyond those it was registered with.
    pub fn beyond(&self, requested: &Scopes) -> Vec<Scope> {
        requested.0.iter().filter(|r| !self.0.iter().any(|mine| mine.covers(r))).copied().collect()
    }

    /// Each scope as written canonically (`system/Patient.rs`).
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(Scope::to_string).collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

/// The scope each operation needs, by its `operationId`: one table, which
/// `docs/API.md` shows ("Scopes"). An operation not listed is refused to
/// every token that carries scopes.
pub const OPERATIONS: &[(&str, Resource, Permission)] = {
    use Permission::*;
    use Resource::*;
    &[
        ("create_patient", Patient, Create),
        ("list_patients", Patient, Search),
        ("get_patient", Patient, Read),
        ("update_patient", Patient, Update),
        ("get_readiness", Patient, Read),
        ("create_referral", ServiceRequest, Create),
        ("list_referrals", ServiceRequest, Search),
        ("get_referral", ServiceRequest, Read),
        ("verify_referral", ServiceRequest, Update),
        ("reject_referral", ServiceRequest, Update),
        ("create_screening", QuestionnaireResponse, Create),
        ("list_screenings", QuestionnaireResponse, Search),
        ("get_screening", QuestionnaireResponse, Read),
        ("create_treatment_attestation", DocumentReference, Create),
        ("list_treatment_attestations", DocumentReference, Search),
        ("create_prescriber_consult", Encounter, Create),
        ("list_prescriber_consults", Encounter, Search),
        ("book_appointment", Appointment, Create),
        ("list_appointments", Appointment, Search),
        ("get_appointment", Appointment, Read),
        ("reschedule_appointment", Appointment, Update),
        ("cancel_appointment", Appointment, Update),
        ("check_in_appointment", Appointment, Update),
        ("complete_appointment", Appointment, Update),
        ("no_show_appointment", Appointment, Update),
        ("book_course", CarePlan, Create),
        ("get_course", CarePlan, Read),
        ("list_patient_courses", CarePlan, Search),
        ("cancel_course", CarePlan, Update),
        ("get_availability", Slot, Search),
        ("plan_course", Slot, Search),
        ("list_rooms", Location, Search),
        ("create_room", Location, Create),
        ("update_room", Location, Update),
        ("list_closures", Schedule, Search),
        ("create_closure", Schedule, Create),
        ("delete_closure", Schedule, Delete),
        ("list_protocols", PlanDefinition, Search),
        ("get_protocol", PlanDefinition, Read),
        ("update_protocol", PlanDefinition, Update),
        ("list_audit_events", AuditEvent, Search),
        ("get_access_log", AuditEvent, Search),
        ("fhir_read_patient", Patient, Read),
        ("fhir_search_patient", Patient, Search),
        ("fhir_read_appointment", Appointment, Read),
        ("fhir_search_appointment", Appointment, Search),
        ("fhir_read_schedule", Schedule, Read),
        ("fhir_search_schedule", Schedule, Search),
        ("fhir_read_slot", Slot, Read),
        ("fhir_search_slot", Slot, Search),
        ("fhir_read_location", Location, Read),
        ("fhir_search_location", Location, Search),
        ("fhir_read_service_request", ServiceRequest, Read),
        ("fhir_search_service_request", ServiceRequest, Search),
        ("fhir_read_observation", Observation, Read),
        ("fhir_search_observation", Observation, Search),
    ]
};

/// Operations a token with any scope may call, answering with what its
/// scopes let it read: the change feed names resources of every kind.
pub const SCOPE_FILTERED: &[&str] = &["list_events"];

/// The scope `operation` needs, if a scoped token may call it at all.
pub fn required(operation: &str) -> Option<Scope> {
    OPERATIONS.iter().find(|(id, _, _)| *id == operation).map(|(_, resource, permission)| Scope {
        resource: Some(*resource),
        permissions: Permissions(permission.bit()),
    })
}

/// Whether `scopes` let a token call `operation`: the table's scope, held.
pub fn permits(scopes: &Scopes, operation: &str) -> bool {
    if SCOPE_FILTERED.contains(&operation) {
        return !scopes.is_empty();
    }
    OPERATIONS
        .iter()
        .find(|(id, _, _)| *id == operation)
        .is_some_and(|(_, resource, permission)| scopes.allows(*resource, *permission))
}

/// Whether a caller with `scopes` (`None`: a token without any) may see a
/// patient's own details where another resource carries them, as an
/// Appointment's reason carries the patient's indications: only if it may
/// read the Patient itself. A scope on the Appointment alone does not open
/// the patient's diagnoses.
pub fn sees_patient_details(scopes: Option<&Scopes>) -> bool {
    scopes.is_none_or(|held| held.allows(Resource::Patient, Permission::Read))
}

/// Per resource, every permission some operation needs: what a client can
/// usefully ask for (`scopes_supported` in the SMART configuration).
pub fn supported() -> Vec<String> {
    Resource::ALL
        .into_iter()
        .filter_map(|resource| {
            let bits = OPERATIONS
                .iter()
                .filter(|(_, r, _)| *r == resource)
                .fold(0, |bits, (_, _, p)| bits | p.bit());
            (bits != 0)
                .then_some(Scope { resource: Some(resource), permissions: Permissions(bits) })
                .map(|scope| scope.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_caller_that_reads_patients_sees_their_details_elsewhere() {
        // (scopes, or None for a token without any; sees the details)
        let table = [
            (None, true),
            (Some("system/Patient.r"), true),
            (Some("system/Patient.rs system/Appointment.rs"), true),
            (Some("system/*.rs"), true),
            (Some("system/Appointment.rs"), false),
            (Some("system/Patient.s system/Appointment.rs"), false),
            (Some("system/Patient.c"), false),
            (Some("system/*.s"), false),
        ];
        for (scopes, sees) in table {
            let parsed = scopes.map(|s| Scopes::parse(s).unwrap());
            assert_eq!(sees_patient_details(parsed.as_ref()), sees, "{scopes:?}");
        }
    }

    #[test]
    fn scopes_parse_as_smart_v2_writes_them_and_v1_maps_onto_them() {
        // (scope, canonical form, or None when refused)
        let table = [
            ("system/Patient.rs", Some("system/Patient.rs")),
            ("system/Appointment.cruds", Some("system/Appointment.cruds")),
            ("system/ServiceRequest.c", Some("system/ServiceRequest.c")),
            ("system/*.rs", Some("system/*.rs")),
            ("system/Patient.read", Some("system/Patient.rs")),
            ("system/Patient.write", Some("system/Patient.cud")),
            ("system/*.*", Some("system/*.cruds")),
            ("system/Patient.sr", None),
            ("system/Patient.rr", None),
            ("system/Patient.x", None),
            ("system/Patient.", None),
            ("system/Patient", None),
            ("system/Medication.rs", None),
            ("system/patient.rs", None),
            ("patient/Patient.rs", None),
            ("user/Appointment.cruds", None),
            ("system/Observation.rs?category=vital-signs", None),
            ("openid", None),
            ("launch", None),
        ];
        for (text, canonical) in table {
            let parsed = Scope::parse(text).ok().map(|s| s.to_string());
            assert_eq!(parsed.as_deref(), canonical, "{text}");
        }
    }

    #[test]
    fn a_list_is_space_separated_and_names_every_bad_scope() {
        let scopes = Scopes::parse("system/Patient.rs  system/Appointment.s system/Patient.rs")
            .expect("scopes");
        assert_eq!(scopes.names(), ["system/Patient.rs", "system/Appointment.s"]);
        let errors = Scopes::parse("system/Patient.rs openid system/Nope.r").unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(Scopes::parse("").expect("empty").is_empty());
    }

    #[test]
    fn a_request_may_narrow_the_registered_scopes_never_widen_them() {
        let registered = Scopes::parse("system/Patient.crus system/Appointment.rs").expect("ok");
        // (requested, beyond the registered ones)
        let table: [(&str, &[&str]); 6] = [
            ("system/Patient.rs", &[]),
            ("system/Patient.crus system/Appointment.r", &[]),
            ("system/Patient.d", &["system/Patient.d"]),
            ("system/Appointment.c system/Patient.r", &["system/Appointment.c"]),
            ("system/*.r", &["system/*.r"]),
            ("system/Slot.s", &["system/Slot.s"]),
        ];
        for (requested, beyond) in table {
            let requested = Scopes::parse(requested).expect("requested");
            let refused: Vec<String> =
                registered.beyond(&requested).iter().map(Scope::to_string).collect();
            assert_eq!(refused, beyond, "{requested}");
        }
        let everything = Scopes::parse("system/*.cruds").expect("ok");
        assert!(everything.beyond(&registered).is_empty());
    }

    #[test]
    fn an_operation_needs_the_scope_of_its_line() {
        let scopes = Scopes::parse("system/Patient.rs system/Appointment.s").expect("ok");
        // (operation, permitted)
        let table = [
            ("get_patient", true),
            ("list_patients", true),
            ("create_patient", false),
            ("update_patient", false),
            ("list_appointments", true),
            ("get_appointment", false),
            ("book_appointment", false),
            ("get_availability", false),
            ("list_audit_events", false),
            ("no_such_operation", false),
        ];
        for (operation, permitted) in table {
            assert_eq!(permits(&scopes, operation), permitted, "{operation}");
        }
        assert!(permits(&Scopes::parse("system/*.s").expect("ok"), "get_availability"));
        assert_eq!(
            required("book_course").map(|s| s.to_string()).as_deref(),
            Some("system/CarePlan.c")
        );
        assert_eq!(required("no_such_operation"), None);
    }

    #[test]
    fn the_docs_scope_table_is_this_table() {
        let docs = include_str!("../../docs/API.md");
        let rows: Vec<(String, String)> = docs
            .lines()
            .filter(|line| line.starts_with("| `system/"))
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let unquote = |cell: &str| cell.trim_matches('`').to_owned();
                Some((unquote(cells.get(4)?), unquote(cells.get(1)?)))
            })
            .collect();
        let code: Vec<(String, String)> = OPERATIONS
            .iter()
            .filter_map(|(id, _, _)| Some(((*id).to_owned(), required(id)?.to_string())))
            .collect();
        assert_eq!(rows, code, "docs/API.md's scope table differs from OPERATIONS");
    }

    #[test]
    fn the_supported_scopes_are_what_the_operations_need() {
        let supported = supported();
        assert!(supported.contains(&"system/Patient.crus".to_owned()), "{supported:?}");
        assert!(supported.contains(&"system/Schedule.crds".to_owned()), "{supported:?}");
        assert!(supported.contains(&"system/Slot.rs".to_owned()), "{supported:?}");
        assert_eq!(supported.len(), Resource::ALL.len());
    }
}
