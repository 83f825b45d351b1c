-- pgbench's ceiling for `GET /v1/patients/{id}` in `make bench`: the SQL the
-- API issues for one read on PostgreSQL (read off the server's log with
-- log_statement = all), against the same seeded database, for a random
-- seeded patient. Left out, which makes the ceiling no lower: the read's
-- audit record, which the API writes in batches (many reads in one insert,
-- within a second).
\set p random(1, 10000)
SELECT "patients"."id", "patients"."given_name", "patients"."family_name", "patients"."date_of_birth", "patients"."email", "patients"."phone", "patients"."in_mental_health_treatment", "patients"."pain_referral_required", "patients"."created_at", "patients"."updated_at", "patients"."address", "patient_indications"."patient_id", "patient_indications"."code", "patient_indications"."subtype", "patient_indications"."diagnosis", "patient_identifiers"."patient_id", "patient_identifiers"."system", "patient_identifiers"."value" FROM (("patients" LEFT OUTER JOIN "patient_indications" ON ("patient_indications"."patient_id" = "patients"."id")) LEFT OUTER JOIN "patient_identifiers" ON ("patient_identifiers"."patient_id" = "patients"."id")) WHERE ("patients"."id" = '00000000-0000-4000-8000-' || lpad(:p::text, 12, '0'));
