-- The tier a call was served and billed at (default, flex, priority, standard, batch): priced
-- with the provider's conditions, and a field to group cost by.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS service_tier VARCHAR;
