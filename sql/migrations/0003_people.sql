-- People sign in (API §7): passwords, sessions, invitations, deactivation, and the sign-in
-- throttle. Every statement ends with ';' at the end of a line: `remit migrate` splits on that.

-- password_hash is libsodium's crypto_pwhash_str text (Argon2id, "$argon2id$v=19$m=…"),
-- NULL until the user accepts an invitation. active = 0 is for good for every credential
-- that existed then (PATCH /users/{id} revokes them in the same transaction).
ALTER TABLE users
  ADD COLUMN active TINYINT NOT NULL DEFAULT 1,
  ADD COLUMN password_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL,
  ADD CONSTRAINT users_active CHECK (active IN (0, 1)),
  ADD CONSTRAINT users_password_hash CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%');

-- Sessions are bearer tokens of kind 'session' in the one tokens table, so the check of every
-- request stays one indexed lookup; only they expire.
ALTER TABLE tokens
  ADD COLUMN kind VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'token',
  ADD COLUMN expires_at DATETIME(3) NULL,
  ADD KEY tokens_user (user_id, kind, revoked_at),
  ADD CONSTRAINT tokens_kind CHECK (kind IN ('token', 'session')),
  ADD CONSTRAINT tokens_session_expires CHECK ((kind = 'session') = (expires_at IS NOT NULL));

-- One-time invitation secrets, stored as SHA-256 only. At most one usable per user: a new one
-- voids the others in its transaction.
CREATE TABLE invitations (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  token_hash BINARY(32) NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  voided_at DATETIME(3) NULL,
  UNIQUE KEY invitations_hash (token_hash),
  KEY invitations_user (user_id, used_at, voided_at),
  CONSTRAINT invitations_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT invitations_user_fk FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT invitations_once CHECK (used_at IS NULL OR voided_at IS NULL),
  CONSTRAINT invitations_expiry CHECK (expires_at > created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Consecutive failed sign-ins per (orgId as sent, email lower-cased A-Z), keyed by the
-- SHA-256 of both so that any orgId text, known or not, has a bounded key and unknown
-- accounts count exactly like known ones. Kept here, not in a worker, so every pool and
-- host sharing the database shares the count. A success deletes the row.
CREATE TABLE sign_in_throttle (
  key_hash BINARY(32) NOT NULL PRIMARY KEY,
  failures INT NOT NULL,
  locked_until DATETIME(3) NULL,
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  KEY sign_in_throttle_updated (updated_at),
  CONSTRAINT sign_in_throttle_failures CHECK (failures >= 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- What the pool may do to the new tables (0002_controls.sql, README "Database accounts"):
-- a success or an accepted invitation deletes its throttle row, and the purge idle ones.
GRANT SELECT, INSERT, UPDATE ON invitations TO remit_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON sign_in_throttle TO remit_app;
