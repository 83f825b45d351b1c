DROP TABLE patient_identifiers;
