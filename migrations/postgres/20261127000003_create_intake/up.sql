-- Referral letters: received, then verified or rejected by a clinician.
-- `expired` is not stored; it follows from received_on.
CREATE TABLE referrals (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    kind TEXT NOT NULL CHECK (kind IN ('mental_health_provider', 'pain_management', 'mental_health_evaluation')),
    provider_name TEXT NOT NULL,
    provider_practice TEXT NOT NULL,
    provider_phone TEXT,
    provider_fax TEXT,
    provider_email TEXT,
    provider_npi TEXT,
    received_on DATE NOT NULL,
    document_reference TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('received', 'verified', 'rejected')),
    reject_reason TEXT,
    decided_by TEXT,
    decided_at TIMESTAMP,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK ((status = 'rejected') = (reject_reason IS NOT NULL)),
    CHECK (provider_phone IS NOT NULL OR provider_fax IS NOT NULL OR provider_email IS NOT NULL)
);
CREATE INDEX referrals_patient_idx ON referrals (patient_id, id);

-- Attestations that a mental health patient continues ongoing treatment.
CREATE TABLE treatment_attestations (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    provider_name TEXT NOT NULL,
    provider_practice TEXT NOT NULL,
    provider_phone TEXT,
    provider_fax TEXT,
    provider_email TEXT,
    provider_npi TEXT,
    attested_on DATE NOT NULL,
    recorded_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX treatment_attestations_patient_idx ON treatment_attestations (patient_id, id);

-- Contraindication screenings: immutable; a correction is a new screening.
CREATE TABLE screenings (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    active_substance_abuse BOOLEAN NOT NULL,
    history_of_psychosis BOOLEAN NOT NULL,
    undiagnosed_mental_health_condition BOOLEAN NOT NULL,
    increased_intracranial_pressure BOOLEAN NOT NULL,
    uncontrolled_hypertension BOOLEAN NOT NULL,
    unstable_cardiovascular_disease BOOLEAN NOT NULL,
    previous_negative_ketamine_response BOOLEAN NOT NULL,
    ketamine_abuse_disorder BOOLEAN NOT NULL,
    pregnant BOOLEAN NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('eligible', 'ineligible')),
    lamotrigine BOOLEAN NOT NULL,
    screened_on DATE NOT NULL,
    screened_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX screenings_patient_idx ON screenings (patient_id, id);

CREATE TABLE screening_medications (
    screening_id TEXT NOT NULL REFERENCES screenings (id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (screening_id, position)
);

-- Records that the Lamictal prescriber was consulted and a plan agreed.
CREATE TABLE prescriber_consults (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    provider_name TEXT NOT NULL,
    provider_practice TEXT NOT NULL,
    provider_phone TEXT,
    provider_fax TEXT,
    provider_email TEXT,
    provider_npi TEXT,
    consulted_on DATE NOT NULL,
    agreed_plan TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX prescriber_consults_patient_idx ON prescriber_consults (patient_id, id);
