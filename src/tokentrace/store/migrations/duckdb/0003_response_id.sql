-- The provider's response id: two instrumentations recording one call share it
-- (store/duplicates.py), even when they landed in different traces.
ALTER TABLE spans ADD COLUMN response_id VARCHAR;
