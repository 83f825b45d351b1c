ALTER TABLE patients DROP COLUMN address;
ALTER TABLE appointments DROP COLUMN infusion_minutes;
ALTER TABLE appointments DROP COLUMN clinician_id;
DROP TABLE payments;
DROP TABLE charges;
DROP TABLE fees;
DROP TABLE clinicians;
DROP TABLE billing_profile;
