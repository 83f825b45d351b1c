CREATE TABLE patients (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    given_name TEXT NOT NULL CHECK (length(trim(given_name)) > 0),
    family_name TEXT NOT NULL CHECK (length(trim(family_name)) > 0),
    search_name TEXT NOT NULL,
    date_of_birth DATE NOT NULL,
    email TEXT,
    phone TEXT,
    in_mental_health_treatment BOOLEAN NOT NULL DEFAULT FALSE,
    pain_referral_required BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE patient_indications (
    patient_id TEXT NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    code TEXT NOT NULL CHECK (code IN ('chronic_pain', 'migraine', 'depression', 'anxiety')),
    subtype TEXT CHECK (
        (code = 'chronic_pain' AND subtype IN ('crps', 'neuropathic', 'other'))
        OR (code <> 'chronic_pain' AND subtype IS NULL)
    ),
    PRIMARY KEY (patient_id, code)
);
