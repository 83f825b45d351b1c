-- pgbench's ceiling for `GET /v1/availability` over 4 weeks in `make bench`:
-- the SQL the API issues for one answer on PostgreSQL (read off the server's
-- log with log_statement = all), from a random day of the span the wrk
-- script draws its windows from (the first 60 clinic days from 3 days ahead:
-- 3 to about 89 days; here weekend starts as well, whose windows read as
-- many rows). Left out, as for the patient read: the batched audit record.
\set day random(3, 89)
SELECT NULL::date, 'capacity', COUNT(*) FROM "rooms" WHERE ("rooms"."active" = TRUE) UNION ALL SELECT "appointments"."date", "appointments"."session", COUNT(*) FROM "appointments" WHERE (("appointments"."date" BETWEEN CURRENT_DATE + :day::int AND CURRENT_DATE + :day::int + 27) AND appointments.status IN ('scheduled', 'checked_in', 'completed')) GROUP BY "appointments"."date", "appointments"."session" UNION ALL SELECT "closures"."date", 'closed', 0 FROM "closures" WHERE ("closures"."date" BETWEEN CURRENT_DATE + :day::int AND CURRENT_DATE + :day::int + 27) UNION ALL SELECT "appointments"."date", 'patient', 0 FROM "appointments" WHERE ((("appointments"."patient_id" = '') AND ("appointments"."date" BETWEEN CURRENT_DATE + :day::int AND CURRENT_DATE + :day::int + 27)) AND appointments.status IN ('scheduled', 'checked_in', 'completed'));
