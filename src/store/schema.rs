// The portable schema shared by PostgreSQL and SQLite. Keep it in step with
// both folders under migrations/; a test compares all three.

diesel::table! {
    patients (id) {
        id -> Text,
        given_name -> Text,
        family_name -> Text,
        search_name -> Text,
        date_of_birth -> Date,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        in_mental_health_treatment -> Bool,
        pain_referral_required -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        address -> Nullable<Text>,
        given_key -> Nullable<Text>,
        family_key -> Nullable<Text>,
    }
}

diesel::table! {
    patient_indications (patient_id, code) {
        patient_id -> Text,
        code -> Text,
        subtype -> Nullable<Text>,
        diagnosis -> Nullable<Text>,
    }
}

diesel::joinable!(patient_indications -> patients (patient_id));

diesel::table! {
    patient_identifiers (system, value) {
        system -> Text,
        value -> Text,
        patient_id -> Text,
    }
}

diesel::joinable!(patient_identifiers -> patients (patient_id));

diesel::table! {
    rooms (id) {
        id -> Text,
        name -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    closures (id) {
        id -> Text,
        date -> Date,
        reason -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    appointments (id) {
        id -> Text,
        patient_id -> Text,
        room_id -> Text,
        date -> Date,
        session -> Text,
        starts_at -> Timestamp,
        status -> Text,
        route -> Text,
        pain_before -> Nullable<Integer>,
        pain_after -> Nullable<Integer>,
        cancel_reason -> Nullable<Text>,
        cancelled_by -> Nullable<Text>,
        checked_in_at -> Nullable<Timestamp>,
        completed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        course_id -> Nullable<Text>,
        phq9 -> Nullable<Integer>,
        clinician_id -> Nullable<Text>,
        infusion_minutes -> Nullable<Integer>,
    }
}

diesel::joinable!(appointments -> patients (patient_id));
diesel::joinable!(appointments -> rooms (room_id));

diesel::table! {
    referrals (id) {
        id -> Text,
        patient_id -> Text,
        kind -> Text,
        provider_name -> Text,
        provider_practice -> Text,
        provider_phone -> Nullable<Text>,
        provider_fax -> Nullable<Text>,
        provider_email -> Nullable<Text>,
        provider_npi -> Nullable<Text>,
        received_on -> Date,
        document_reference -> Text,
        status -> Text,
        reject_reason -> Nullable<Text>,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    treatment_attestations (id) {
        id -> Text,
        patient_id -> Text,
        provider_name -> Text,
        provider_practice -> Text,
        provider_phone -> Nullable<Text>,
        provider_fax -> Nullable<Text>,
        provider_email -> Nullable<Text>,
        provider_npi -> Nullable<Text>,
        attested_on -> Date,
        recorded_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    screenings (id) {
        id -> Text,
        patient_id -> Text,
        active_substance_abuse -> Bool,
        history_of_psychosis -> Bool,
        undiagnosed_mental_health_condition -> Bool,
        increased_intracranial_pressure -> Bool,
        uncontrolled_hypertension -> Bool,
        unstable_cardiovascular_disease -> Bool,
        previous_negative_ketamine_response -> Bool,
        ketamine_abuse_disorder -> Bool,
        pregnant -> Bool,
        outcome -> Text,
        lamotrigine -> Bool,
        screened_on -> Date,
        screened_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    screening_medications (screening_id, position) {
        screening_id -> Text,
        position -> Integer,
        name -> Text,
    }
}

diesel::table! {
    prescriber_consults (id) {
        id -> Text,
        patient_id -> Text,
        provider_name -> Text,
        provider_practice -> Text,
        provider_phone -> Nullable<Text>,
        provider_fax -> Nullable<Text>,
        provider_email -> Nullable<Text>,
        provider_npi -> Nullable<Text>,
        consulted_on -> Date,
        agreed_plan -> Text,
        recorded_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(referrals -> patients (patient_id));
diesel::joinable!(treatment_attestations -> patients (patient_id));
diesel::joinable!(screenings -> patients (patient_id));
diesel::joinable!(screening_medications -> screenings (screening_id));
diesel::joinable!(prescriber_consults -> patients (patient_id));

diesel::table! {
    protocols (code) {
        code -> Text,
        name -> Text,
        categories -> Text,
        spacing -> Text,
        infusions_min -> Integer,
        infusions_max -> Integer,
        per_week_min -> Nullable<Integer>,
        per_week_max -> Nullable<Integer>,
        weeks_min -> Nullable<Integer>,
        weeks_max -> Nullable<Integer>,
        min_gap_days -> Integer,
        preferred_start_weekday -> Nullable<Text>,
        response_check_infusion -> Nullable<Integer>,
        requires_completed_course -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    courses (id) {
        id -> Text,
        patient_id -> Text,
        protocol_code -> Text,
        session -> Text,
        allow_mixed_sessions -> Bool,
        infusions -> Integer,
        per_week -> Nullable<Integer>,
        weeks -> Nullable<Integer>,
        earliest_start -> Date,
        cancel_reason -> Nullable<Text>,
        cancelled_by -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(courses -> patients (patient_id));
diesel::joinable!(courses -> protocols (protocol_code));
diesel::joinable!(appointments -> courses (course_id));

diesel::allow_tables_to_appear_in_same_query!(
    patients,
    patient_indications,
    patient_identifiers,
    rooms,
    closures,
    appointments,
    referrals,
    treatment_attestations,
    screenings,
    screening_medications,
    prescriber_consults,
    protocols,
    courses
);

diesel::table! {
    audit_events (id) {
        id -> Text,
        occurred_at -> Timestamp,
        actor -> Nullable<Text>,
        actor_role -> Nullable<Text>,
        client_id -> Nullable<Text>,
        operation -> Text,
        method -> Text,
        path -> Text,
        status -> Integer,
        records -> Text,
        changed -> Text,
        source -> Nullable<Text>,
        patient_id -> Nullable<Text>,
    }
}

diesel::table! {
    audit_event_patients (patient_id, event_id) {
        patient_id -> Text,
        event_id -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(audit_events, audit_event_patients);

diesel::table! {
    idempotency_keys (caller, idempotency_key) {
        caller -> Text,
        idempotency_key -> Text,
        fingerprint -> Text,
        status -> Integer,
        location -> Nullable<Text>,
        body -> Text,
        patient_ids -> Text,
        records -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        role -> Text,
        jwks -> Nullable<Text>,
        jwks_url -> Nullable<Text>,
        scopes -> Text,
        disabled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    client_assertions (client_id, jti) {
        client_id -> Text,
        jti -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    events (seq) {
        seq -> Integer,
        tx -> BigInt,
        id -> Text,
        event_type -> Text,
        occurred_at -> Timestamp,
        resource_type -> Text,
        resource_id -> Text,
        patient_id -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        url -> Text,
        description -> Text,
        event_types -> Text,
        secret -> Text,
        disabled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<Timestamp>,
        failing_since -> Nullable<Timestamp>,
        disabled_reason -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        endpoint_id -> Text,
        event_id -> Text,
        event_type -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        leased_until -> Nullable<Timestamp>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_dispatch (name) {
        name -> Text,
        tx -> BigInt,
        seq -> Integer,
    }
}

diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::allow_tables_to_appear_in_same_query!(webhook_endpoints, webhook_deliveries);

diesel::table! {
    billing_profile (id) {
        id -> Text,
        legal_name -> Text,
        address -> Text,
        phone -> Text,
        tax_id -> Text,
        npi -> Text,
        place_of_service -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    clinicians (id) {
        id -> Text,
        name -> Text,
        credentials -> Text,
        npi -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    fees (code) {
        code -> Text,
        price_cents -> BigInt,
        ndc -> Nullable<Text>,
        ndc_unit -> Nullable<Text>,
        ndc_quantity -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    charges (id) {
        id -> Text,
        patient_id -> Text,
        appointment_id -> Nullable<Text>,
        clinician_id -> Text,
        date_of_service -> Date,
        code -> Text,
        modifiers -> Text,
        units -> Integer,
        unit_price_cents -> BigInt,
        ndc -> Nullable<Text>,
        ndc_unit -> Nullable<Text>,
        ndc_quantity -> Nullable<Text>,
        diagnoses -> Text,
        place_of_service -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        voided_at -> Nullable<Timestamp>,
        voided_by -> Nullable<Text>,
        void_reason -> Nullable<Text>,
    }
}

diesel::table! {
    payments (id) {
        id -> Text,
        patient_id -> Text,
        amount_cents -> BigInt,
        received_on -> Date,
        method -> Text,
        reference -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        voided_at -> Nullable<Timestamp>,
        voided_by -> Nullable<Text>,
        void_reason -> Nullable<Text>,
    }
}
