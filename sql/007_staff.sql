-- 007: staff accounts with roles, who made and last edited each activity
-- (four eyes: an approver does not approve their own draft), and the audit
-- log of every change made through the admin API.

-- A credential is kept as the SHA-256 of its token only.
CREATE TABLE IF NOT EXISTS staff (
  name       VARCHAR(64)  NOT NULL,
  role       VARCHAR(16)  NOT NULL,
  token_hash BINARY(32)   NOT NULL,
  created_at DATETIME(3)  NOT NULL,
  created_by VARCHAR(64)  NOT NULL,
  PRIMARY KEY (name),
  UNIQUE KEY uk_staff_token (token_hash)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

ALTER TABLE activities
  ADD COLUMN created_by VARCHAR(64) NOT NULL DEFAULT '' AFTER auto_open,
  ADD COLUMN updated_by VARCHAR(64) NOT NULL DEFAULT '' AFTER created_by;

-- Appended in the transaction of the change it tells of; read newest first,
-- by activity or by actor.
CREATE TABLE IF NOT EXISTS audit (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  at          DATETIME(3)     NOT NULL,
  actor       VARCHAR(64)     NOT NULL,
  role        VARCHAR(16)     NOT NULL,
  action      VARCHAR(32)     NOT NULL,
  activity_id BIGINT UNSIGNED NULL,
  target      VARCHAR(128)    NOT NULL DEFAULT '' COMMENT 'what the change is about besides an activity: a staff name, a token',
  before_json TEXT            NULL,
  after_json  TEXT            NULL,
  request_id  VARCHAR(64)     NOT NULL DEFAULT '',
  PRIMARY KEY (id),
  KEY idx_audit_activity (activity_id, id),
  KEY idx_audit_actor (actor, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Nothing edits or deletes an entry, this service included.
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the audit log is append-only';

CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the audit log is append-only';
