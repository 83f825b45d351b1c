-- How full each session is: the planner and availability count the active
-- appointments of a date range. Cancelled and no-show rows, most of the table
-- in a busy clinic, stay out of this index.
CREATE INDEX appointments_active_slot_idx ON appointments (date, session)
    WHERE status IN ('scheduled', 'checked_in', 'completed');
