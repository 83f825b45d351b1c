-- pgbench's ceiling for `GET /v1/appointments?patient_id=` in `make bench`:
-- the SQL the API issues for one page (51 rows asked: 50 and one to know
-- whether another page follows) on PostgreSQL, read off the server's log
-- with log_statement = all, for a random seeded patient with history. Left
-- out, as for the patient read: the batched audit record.
\set p random(1, 9000)
SELECT "appointments"."id", "appointments"."patient_id", "appointments"."room_id", "appointments"."date", "appointments"."session", "appointments"."starts_at", "appointments"."status", "appointments"."route", "appointments"."pain_before", "appointments"."pain_after", "appointments"."cancel_reason", "appointments"."cancelled_by", "appointments"."checked_in_at", "appointments"."completed_at", "appointments"."created_at", "appointments"."updated_at", "appointments"."course_id", "appointments"."phq9", "appointments"."clinician_id", "appointments"."infusion_minutes" FROM "appointments" WHERE ("appointments"."patient_id" = '00000000-0000-4000-8000-' || lpad(:p::text, 12, '0')) ORDER BY "appointments"."id" LIMIT 51;
