-- Billing (docs/DOMAIN.md, "Billing"): the clinic's billing profile, the
-- clinicians who render services, the fee schedule, charges and payments.
-- Money is integer cents. A charge or payment is never edited: it is
-- voided with a reason, and a correction is a new one. A balance is
-- derived from both, never stored.

-- The clinic as claims name it: one row, set by an admin.
CREATE TABLE billing_profile (
    id TEXT NOT NULL PRIMARY KEY CHECK (id = 'clinic'),
    legal_name TEXT NOT NULL,
    -- The postal address, as JSON (line1, line2, city, state, postal_code).
    address TEXT NOT NULL,
    phone TEXT NOT NULL,
    tax_id TEXT NOT NULL,
    npi TEXT NOT NULL,
    place_of_service TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE clinicians (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    credentials TEXT NOT NULL,
    npi TEXT NOT NULL CONSTRAINT clinicians_npi_key UNIQUE,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- One price per code, per unit; the drug's NDC and quantity per unit.
CREATE TABLE fees (
    code TEXT NOT NULL PRIMARY KEY CHECK (code IN ('96365', '96366', 'J3490')),
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    ndc TEXT,
    ndc_unit TEXT,
    ndc_quantity TEXT,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE charges (
    id TEXT NOT NULL PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    appointment_id TEXT REFERENCES appointments (id),
    clinician_id TEXT NOT NULL REFERENCES clinicians (id),
    date_of_service DATE NOT NULL,
    code TEXT NOT NULL,
    -- Space-separated two-character modifiers.
    modifiers TEXT NOT NULL,
    units INTEGER NOT NULL CHECK (units > 0),
    -- The fee schedule's price when the charge was made.
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    ndc TEXT,
    ndc_unit TEXT,
    ndc_quantity TEXT,
    -- Space-separated ICD-10-CM codes the line points to.
    diagnoses TEXT NOT NULL,
    place_of_service TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    voided_at TIMESTAMP,
    voided_by TEXT,
    void_reason TEXT
);
CREATE INDEX charges_patient_idx ON charges (patient_id, date_of_service);
CREATE INDEX charges_appointment_idx ON charges (appointment_id);

CREATE TABLE payments (
    id TEXT NOT NULL PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    received_on DATE NOT NULL,
    method TEXT NOT NULL,
    reference TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    voided_at TIMESTAMP,
    voided_by TEXT,
    void_reason TEXT
);
CREATE INDEX payments_patient_idx ON payments (patient_id, received_on);

-- A completed infusion names the clinician who gave it and how long it ran.
-- No foreign key: SQLite cannot drop a column that has one (down.sql), and
-- clinicians are never deleted; the completion reads the clinician in its
-- transaction.
ALTER TABLE appointments ADD COLUMN clinician_id TEXT;
ALTER TABLE appointments ADD COLUMN infusion_minutes INTEGER;

-- The patient's postal address, as JSON, for the superbill.
ALTER TABLE patients ADD COLUMN address TEXT;
