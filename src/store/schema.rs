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

diesel::allow_tables_to_appear_in_same_query!(patients, patient_indications);
