-- 004: the number of valid participation records of each activity, kept by
-- every statement that makes a record valid (in the same transaction), so
-- that the job and the stats read one row instead of counting records.

ALTER TABLE activities ADD COLUMN recorded INT UNSIGNED NOT NULL DEFAULT 0 AFTER surplus;

UPDATE activities a SET recorded =
  (SELECT COUNT(*) FROM participations p WHERE p.activity_id = a.id AND p.status = 'valid');
