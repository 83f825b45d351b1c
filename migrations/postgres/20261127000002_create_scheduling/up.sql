-- Private treatment rooms, one recliner each: a session's capacity is the
-- number of active rooms.
CREATE TABLE rooms (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    name TEXT NOT NULL UNIQUE CHECK (length(trim(name)) > 0),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

INSERT INTO rooms (id, name, active, created_at, updated_at) VALUES
    ('019ac5a0-0000-7000-8000-000000000001', 'Room 1', TRUE, '2026-11-27 00:00:00', '2026-11-27 00:00:00'),
    ('019ac5a0-0000-7000-8000-000000000002', 'Room 2', TRUE, '2026-11-27 00:00:00', '2026-11-27 00:00:00'),
    ('019ac5a0-0000-7000-8000-000000000003', 'Room 3', TRUE, '2026-11-27 00:00:00', '2026-11-27 00:00:00'),
    ('019ac5a0-0000-7000-8000-000000000004', 'Room 4', TRUE, '2026-11-27 00:00:00', '2026-11-27 00:00:00');

-- Dates without slots: holidays, training days.
CREATE TABLE closures (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    date DATE NOT NULL UNIQUE,
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE appointments (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    room_id TEXT NOT NULL REFERENCES rooms (id),
    date DATE NOT NULL,
    session TEXT NOT NULL CHECK (session IN ('morning', 'afternoon')),
    starts_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'checked_in', 'completed', 'cancelled', 'no_show')),
    route TEXT NOT NULL CHECK (route IN ('iv', 'oral', 'topical', 'intranasal', 'intramuscular', 'intraosseous')),
    pain_before INTEGER CHECK (pain_before BETWEEN 0 AND 10),
    pain_after INTEGER CHECK (pain_after BETWEEN 0 AND 10),
    cancel_reason TEXT,
    cancelled_by TEXT,
    checked_in_at TIMESTAMP,
    completed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK ((status = 'cancelled') = (cancel_reason IS NOT NULL))
);

-- No double booking, decided by the database: one active appointment per
-- room and session, and one per patient and day.
CREATE UNIQUE INDEX appointments_room_slot_key ON appointments (room_id, date, session)
    WHERE status IN ('scheduled', 'checked_in', 'completed');
CREATE UNIQUE INDEX appointments_patient_day_key ON appointments (patient_id, date)
    WHERE status IN ('scheduled', 'checked_in', 'completed');
CREATE INDEX appointments_date_session_idx ON appointments (date, session);
CREATE INDEX appointments_patient_idx ON appointments (patient_id, id);
