-- 004: the number of valid participation records of each activity, kept by
-- every statement that makes a record valid (in the same transaction), so
-- that the job and the stats read one row instead of counting records; and
-- the indexes a rebuild reads by, so that it does not grow with the sale.

ALTER TABLE activities ADD COLUMN recorded INT UNSIGNED NOT NULL DEFAULT 0 AFTER surplus;

UPDATE activities a SET recorded =
  (SELECT COUNT(*) FROM participations p WHERE p.activity_id = a.id AND p.status = 'valid');

-- A rebuild reads an activity's valid records a page at a time, in slot
-- order; a rebuild reads the records in doubt of one epoch by slot and user.
ALTER TABLE participations
  ADD KEY idx_participations_valid (activity_id, status, slot, token),
  ADD KEY idx_participations_epoch_slot (activity_id, epoch, slot),
  ADD KEY idx_participations_epoch_user (activity_id, epoch, user_id);
