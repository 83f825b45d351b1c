DROP TABLE prescriber_consults;
DROP TABLE screening_medications;
DROP TABLE screenings;
DROP TABLE treatment_attestations;
DROP TABLE referrals;
