DROP TRIGGER audit_event_patients_append_only ON audit_event_patients;
DROP TRIGGER audit_events_append_only ON audit_events;
DROP FUNCTION audit_append_only();
