-- 002: epochs. An activity's Redis state is rebuilt from MySQL under a new
-- epoch after Redis lost it; claims, events and records carry the epoch they
-- were made in, so nothing from before the loss can count twice.

ALTER TABLE activities ADD COLUMN epoch INT UNSIGNED NOT NULL DEFAULT 1 AFTER surplus;

ALTER TABLE participations ADD COLUMN epoch INT UNSIGNED NOT NULL DEFAULT 1 AFTER claim_id;
