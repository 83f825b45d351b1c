-- The name searches compare folded names (domain::patient::fold: lower case
-- in every alphabet, accents dropped), as FHIR's string search asks. Each
-- name's key is written with the name; the patients already stored get
-- theirs, and their search_name folded alike, right after the migrations
-- run (store::patients::fill_name_keys): SQL alone cannot fold. Null only
-- until then.
ALTER TABLE patients ADD COLUMN given_key TEXT;
ALTER TABLE patients ADD COLUMN family_key TEXT;
