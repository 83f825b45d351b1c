-- The protocol catalog, as data: admins may tune it.
CREATE TABLE protocols (
    code TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    categories TEXT NOT NULL,
    spacing TEXT NOT NULL CHECK (spacing IN ('consecutive_clinic_days', 'weekly')),
    infusions_min INTEGER NOT NULL,
    infusions_max INTEGER NOT NULL,
    per_week_min INTEGER,
    per_week_max INTEGER,
    weeks_min INTEGER,
    weeks_max INTEGER,
    min_gap_days INTEGER NOT NULL,
    preferred_start_weekday TEXT,
    response_check_infusion INTEGER,
    requires_completed_course BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (infusions_min >= 1 AND infusions_min <= infusions_max)
);

INSERT INTO protocols VALUES
    ('pain-5-day', 'Chronic pain, 5 days', 'pain', 'consecutive_clinic_days', 5, 5, NULL, NULL, NULL, NULL, 0, 'monday', 4, FALSE, '2026-11-27 00:00:00'),
    ('pain-8-10-day', 'Chronic pain, 8 to 10 days', 'pain', 'consecutive_clinic_days', 8, 10, NULL, NULL, NULL, NULL, 0, NULL, 4, FALSE, '2026-11-27 00:00:00'),
    ('mental-health', 'Depression and anxiety, 2 to 3 a week for 2 to 3 weeks', 'mental_health', 'weekly', 4, 9, 2, 3, 2, 3, 1, NULL, 3, FALSE, '2026-11-27 00:00:00'),
    ('maintenance', 'Maintenance, 1 or 2 days', 'pain,mental_health', 'consecutive_clinic_days', 1, 2, NULL, NULL, NULL, NULL, 0, NULL, NULL, TRUE, '2026-11-27 00:00:00');

-- A course: a patient's series of infusions under one protocol.
CREATE TABLE courses (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 36),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    protocol_code TEXT NOT NULL REFERENCES protocols (code),
    session TEXT NOT NULL CHECK (session IN ('morning', 'afternoon')),
    allow_mixed_sessions BOOLEAN NOT NULL,
    infusions INTEGER NOT NULL,
    per_week INTEGER,
    weeks INTEGER,
    earliest_start DATE NOT NULL,
    cancel_reason TEXT,
    cancelled_by TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX courses_patient_idx ON courses (patient_id, id);

ALTER TABLE appointments ADD COLUMN course_id TEXT REFERENCES courses (id);
ALTER TABLE appointments ADD COLUMN phq9 INTEGER CHECK (phq9 BETWEEN 0 AND 27);
CREATE INDEX appointments_course_idx ON appointments (course_id);
