-- A patient's record numbers in other systems (an EHR's MRN): `system` is
-- the URI naming the numbering, `value` the number in it.
--
-- One patient per identifier, decided by the database (the key's name is
-- what the store maps to the 409 naming the holder): two registrations
-- racing with one record number leave one holder. The key also serves
-- `GET /v1/patients?identifier=system|value`.
CREATE TABLE patient_identifiers (
    system TEXT NOT NULL CHECK (length(system) BETWEEN 3 AND 255),
    value TEXT NOT NULL CHECK (length(trim(value)) > 0 AND length(value) <= 100),
    patient_id TEXT NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    CONSTRAINT patient_identifiers_system_value_key PRIMARY KEY (system, value)
);

-- A patient's identifiers, read with the patient and replaced by a change.
CREATE INDEX patient_identifiers_patient_idx ON patient_identifiers (patient_id);
