DROP TABLE patient_indications;
DROP TABLE patients;
