-- Each indication's ICD-10-CM code, chosen by a clinician from
-- reference/icd10cm.csv (the API checks it is billable and of the
-- indication); NULL until coded.
ALTER TABLE patient_indications ADD COLUMN diagnosis TEXT;
