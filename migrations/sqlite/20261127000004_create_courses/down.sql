DROP INDEX appointments_course_idx;
ALTER TABLE appointments DROP COLUMN phq9;
ALTER TABLE appointments DROP COLUMN course_id;
DROP TABLE courses;
DROP TABLE protocols;
