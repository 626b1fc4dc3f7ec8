-- 001: activities, participation records and server settings.

CREATE TABLE IF NOT EXISTS activities (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  name           VARCHAR(128)    NOT NULL,
  description    TEXT            NOT NULL,
  stock          INT UNSIGNED    NOT NULL,
  per_user_limit INT UNSIGNED    NOT NULL,
  begin_at       DATETIME(3)     NOT NULL,
  end_at         DATETIME(3)     NOT NULL,
  state          VARCHAR(16)     NOT NULL,
  surplus        INT             NOT NULL COMMENT 'stock snapshot: stock - claimed as of reconciled_at',
  reconciled_at  DATETIME(3)     NULL,
  created_at     DATETIME(3)     NOT NULL,
  updated_at     DATETIME(3)     NOT NULL,
  PRIMARY KEY (id),
  KEY idx_activities_state (state, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS participations (
  token       CHAR(54)        NOT NULL,
  activity_id BIGINT UNSIGNED NOT NULL,
  slot        INT UNSIGNED    NOT NULL,
  user_id     VARCHAR(64)     NOT NULL,
  claim_id    CHAR(16)        NOT NULL,
  issued_at   DATETIME(3)     NOT NULL,
  status      VARCHAR(8)      NOT NULL COMMENT 'pending until settled; valid when its claim was confirmed; void when it was given back',
  recorded_at DATETIME(3)     NOT NULL,
  PRIMARY KEY (token),
  KEY idx_participations_activity (activity_id, status),
  KEY idx_participations_status (status, recorded_at),
  KEY idx_participations_user (activity_id, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

CREATE TABLE IF NOT EXISTS settings (
  name  VARCHAR(64)    NOT NULL,
  value VARBINARY(255) NOT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;
