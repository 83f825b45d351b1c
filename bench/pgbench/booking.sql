-- pgbench's ceiling for `make bench`: the SQL of one booking transaction and
-- of the cancel that follows it, as the API issues them on PostgreSQL (read
-- off the server's log with log_statement = all), one pair per pgbench
-- transaction, against the same seeded database.
-- Differences, none of which makes the ceiling lower: the pool's check-out
-- `SELECT 1` is left out, the id comes from gen_random_uuid(), the free-room
-- query keeps only the first room, and a lost room race is ON CONFLICT DO
-- NOTHING instead of a retry.
\set p 9001 + :client_id % 1000
\set day random(3, 180)
\set s random(0, 1)
BEGIN;
SELECT EXISTS (SELECT "patients"."id", "patients"."given_name", "patients"."family_name", "patients"."search_name", "patients"."date_of_birth", "patients"."email", "patients"."phone", "patients"."in_mental_health_treatment", "patients"."pain_referral_required", "patients"."created_at", "patients"."updated_at" FROM "patients" WHERE ("patients"."id" = '00000000-0000-4000-8000-' || lpad(:p::text, 12, '0')));
SELECT pg_advisory_xact_lock_shared(1502, 0);
SELECT pg_advisory_xact_lock_shared(1501, 739000 + :day::int);
SELECT "closures"."date" FROM "closures" WHERE ("closures"."date" BETWEEN CURRENT_DATE + :day::int AND CURRENT_DATE + :day::int);
SELECT "patients"."id", "patients"."given_name", "patients"."family_name", "patients"."date_of_birth", "patients"."email", "patients"."phone", "patients"."in_mental_health_treatment", "patients"."pain_referral_required", "patients"."created_at", "patients"."updated_at" FROM "patients" WHERE ("patients"."id" = '00000000-0000-4000-8000-' || lpad(:p::text, 12, '0')) LIMIT 1;
SELECT "patient_indications"."patient_id", "patient_indications"."code", "patient_indications"."subtype" FROM "patient_indications" WHERE ("patient_indications"."patient_id" = ANY(ARRAY['00000000-0000-4000-8000-' || lpad(:p::text, 12, '0')]));
SELECT "screenings"."id", "screenings"."patient_id", "screenings"."active_substance_abuse", "screenings"."history_of_psychosis", "screenings"."undiagnosed_mental_health_condition", "screenings"."increased_intracranial_pressure", "screenings"."uncontrolled_hypertension", "screenings"."unstable_cardiovascular_disease", "screenings"."previous_negative_ketamine_response", "screenings"."ketamine_abuse_disorder", "screenings"."pregnant", "screenings"."outcome", "screenings"."lamotrigine", "screenings"."screened_on", "screenings"."screened_by", "screenings"."created_at" FROM "screenings" WHERE ("screenings"."patient_id" = '00000000-0000-4000-8000-' || lpad(:p::text, 12, '0')) ORDER BY "screenings"."id" DESC LIMIT 1;
SELECT "referrals"."kind", "referrals"."status", "referrals"."received_on" FROM "referrals" WHERE ("referrals"."patient_id" = '00000000-0000-4000-8000-' || lpad(:p::text, 12, '0'));
SELECT max("treatment_attestations"."attested_on") FROM "treatment_attestations" WHERE ("treatment_attestations"."patient_id" = '00000000-0000-4000-8000-' || lpad(:p::text, 12, '0')) LIMIT 1;
SELECT max("prescriber_consults"."created_at") FROM "prescriber_consults" WHERE ("prescriber_consults"."patient_id" = '00000000-0000-4000-8000-' || lpad(:p::text, 12, '0')) LIMIT 1;
SELECT "appointments"."id" FROM "appointments" WHERE ((("appointments"."patient_id" = '00000000-0000-4000-8000-' || lpad(:p::text, 12, '0')) AND ("appointments"."date" = CURRENT_DATE + :day::int)) AND ("appointments"."status" = ANY(ARRAY['scheduled', 'checked_in', 'completed']))) LIMIT 1;
SELECT coalesce((SELECT "rooms"."id" FROM "rooms" WHERE (("rooms"."active" = TRUE) AND ("rooms"."id" != ALL(SELECT "appointments"."room_id" FROM "appointments" WHERE ((("appointments"."date" = CURRENT_DATE + :day::int) AND ("appointments"."session" = (ARRAY['morning', 'afternoon'])[:s::int + 1])) AND ("appointments"."status" = ANY(ARRAY['scheduled', 'checked_in', 'completed'])))))) ORDER BY "rooms"."name", "rooms"."id" LIMIT 1), '019ac5a0-0000-7000-8000-000000000001') AS room \gset
WITH ins AS (INSERT INTO "appointments" ("id", "patient_id", "room_id", "date", "session", "starts_at", "status", "route", "course_id", "created_at", "updated_at") VALUES (gen_random_uuid()::text, '00000000-0000-4000-8000-' || lpad(:p::text, 12, '0'), :room, CURRENT_DATE + :day::int, (ARRAY['morning', 'afternoon'])[:s::int + 1], CURRENT_DATE + :day::int + TIME '13:00', 'scheduled', 'iv', NULL, now(), now()) ON CONFLICT DO NOTHING RETURNING "id") SELECT coalesce((SELECT "id" FROM ins), '') AS aid \gset
SELECT "appointments"."id", "appointments"."patient_id", "appointments"."room_id", "appointments"."date", "appointments"."session", "appointments"."starts_at", "appointments"."status", "appointments"."route", "appointments"."pain_before", "appointments"."pain_after", "appointments"."cancel_reason", "appointments"."cancelled_by", "appointments"."checked_in_at", "appointments"."completed_at", "appointments"."created_at", "appointments"."updated_at", "appointments"."course_id", "appointments"."phq9" FROM "appointments" WHERE ("appointments"."id" = :aid) LIMIT 1;
COMMIT;
BEGIN;
UPDATE "appointments" SET "id" = "appointments"."id" WHERE ("appointments"."id" = :aid);
SELECT "appointments"."id", "appointments"."patient_id", "appointments"."room_id", "appointments"."date", "appointments"."session", "appointments"."starts_at", "appointments"."status", "appointments"."route", "appointments"."pain_before", "appointments"."pain_after", "appointments"."cancel_reason", "appointments"."cancelled_by", "appointments"."checked_in_at", "appointments"."completed_at", "appointments"."created_at", "appointments"."updated_at", "appointments"."course_id", "appointments"."phq9" FROM "appointments" WHERE ("appointments"."id" = :aid) LIMIT 1;
UPDATE "appointments" SET "status" = 'cancelled', "cancel_reason" = 'benchmark', "cancelled_by" = 'pgbench', "updated_at" = now() WHERE ("appointments"."id" = :aid);
SELECT "appointments"."id", "appointments"."patient_id", "appointments"."room_id", "appointments"."date", "appointments"."session", "appointments"."starts_at", "appointments"."status", "appointments"."route", "appointments"."pain_before", "appointments"."pain_after", "appointments"."cancel_reason", "appointments"."cancelled_by", "appointments"."checked_in_at", "appointments"."completed_at", "appointments"."created_at", "appointments"."updated_at", "appointments"."course_id", "appointments"."phq9" FROM "appointments" WHERE ("appointments"."id" = :aid) LIMIT 1;
COMMIT;
