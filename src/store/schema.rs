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
    }
}

diesel::table! {
    patient_indications (patient_id, code) {
        patient_id -> Text,
        code -> Text,
        subtype -> Nullable<Text>,
    }
}

diesel::joinable!(patient_indications -> patients (patient_id));

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
    }
}

diesel::joinable!(appointments -> patients (patient_id));
diesel::joinable!(appointments -> rooms (room_id));

diesel::allow_tables_to_appear_in_same_query!(
    patients,
    patient_indications,
    rooms,
    closures,
    appointments
);
