ALTER TABLE patient_indications DROP COLUMN diagnosis;
