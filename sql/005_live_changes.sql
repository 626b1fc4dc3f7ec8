-- 005: what staff and the lottery draw do with a live activity: open it by
-- schedule, and redeem each of its tokens once.

ALTER TABLE activities ADD COLUMN auto_open TINYINT(1) NOT NULL DEFAULT 0 AFTER end_at;

-- A token is redeemed once: the draw's UPDATE sets redeemed_at only where it
-- is still NULL, so of concurrent redeems one changes the row.
ALTER TABLE participations ADD COLUMN redeemed_at DATETIME(3) NULL AFTER status;
