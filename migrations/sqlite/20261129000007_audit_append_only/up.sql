-- Nothing in the API updates or deletes an audit record. On SQLite the
-- triggers refuse every UPDATE and DELETE; `infusion-api audit prune` drops
-- the delete triggers inside its own transaction and puts them back before
-- it commits (SQLite's DDL is transactional, and its writers take turns).

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_event_patients_no_update BEFORE UPDATE ON audit_event_patients
BEGIN
    SELECT RAISE(ABORT, 'audit_event_patients is append-only');
END;
CREATE TRIGGER audit_event_patients_no_delete BEFORE DELETE ON audit_event_patients
BEGIN
    SELECT RAISE(ABORT, 'audit_event_patients is append-only');
END;
