ALTER TABLE patients DROP COLUMN family_key;
ALTER TABLE patients DROP COLUMN given_key;
