-- Events out (issue 28, API §12). The audit chain is the outbox: nothing here copies an
-- event. Each endpoint keeps a cursor (the last chain seq it is done with); `remit deliver`
-- locks the endpoint's row (FOR UPDATE SKIP LOCKED), sends the next event after the
-- cursor, and moves the cursor and records the attempt in the transaction that holds the
-- lock. Two deliverers never hold one endpoint; a deliverer killed mid-send rolls back, and
-- the event is sent again with the same webhook-id.

CREATE TABLE webhook_endpoints (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  url VARCHAR(2048) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- audit action names, comma-separated ("*" for every one); the API shows an array
  events VARCHAR(2048) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  description VARCHAR(500) NOT NULL DEFAULT '',
  secret VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  active TINYINT NOT NULL DEFAULT 1,
  deleted TINYINT NOT NULL DEFAULT 0,
  created_by BIGINT NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  -- delivery state, moved only by `remit deliver` under the row's lock
  cursor_seq BIGINT NOT NULL,
  next_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  failures INT NOT NULL DEFAULT 0,
  failing_since DATETIME(3) NULL,
  KEY webhook_endpoints_org (org_id, id),
  KEY webhook_endpoints_due (active, next_at),
  CONSTRAINT webhook_endpoints_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT webhook_endpoints_creator_fk FOREIGN KEY (created_by) REFERENCES users (id),
  CONSTRAINT webhook_endpoints_url CHECK (url REGEXP '^https?://'),
  CONSTRAINT webhook_endpoints_secret CHECK (secret LIKE 'whsec\\_%'),
  CONSTRAINT webhook_endpoints_active CHECK (active IN (0, 1) AND deleted IN (0, 1)),
  CONSTRAINT webhook_endpoints_cursor CHECK (cursor_seq >= 0 AND failures >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per attempt; `status` the HTTP status received, NULL when none came.
CREATE TABLE webhook_deliveries (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  endpoint_id BIGINT NOT NULL,
  event_id BIGINT NOT NULL,
  attempt INT NOT NULL,
  status SMALLINT NULL,
  error VARCHAR(200) NULL,
  at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  duration_ms INT NOT NULL,
  KEY webhook_deliveries_endpoint (endpoint_id, id),
  CONSTRAINT webhook_deliveries_endpoint_fk FOREIGN KEY (endpoint_id)
    REFERENCES webhook_endpoints (id),
  CONSTRAINT webhook_deliveries_event_fk FOREIGN KEY (event_id) REFERENCES audit_events (id),
  CONSTRAINT webhook_deliveries_attempt CHECK (attempt >= 1 AND duration_ms >= 0),
  CONSTRAINT webhook_deliveries_status CHECK (status IS NULL OR status BETWEEN 100 AND 599)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

GRANT SELECT, INSERT, UPDATE ON webhook_endpoints TO remit_app;
GRANT SELECT, INSERT ON webhook_deliveries TO remit_app;

-- E-mail (API §12), when smtp_url is set: one cursor per organisation over the same chain,
-- claimed like an endpoint's. Organisations that exist now start at their head (no mail
-- for history); `remit deliver` adds the others at 0, so a new organisation's first
-- invitation is mailed.
CREATE TABLE mail_cursors (
  org_id BIGINT NOT NULL PRIMARY KEY,
  cursor_seq BIGINT NOT NULL,
  next_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  failures INT NOT NULL DEFAULT 0,
  CONSTRAINT mail_cursors_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT mail_cursors_cursor CHECK (cursor_seq >= 0 AND failures >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO mail_cursors (org_id, cursor_seq) SELECT org_id, seq FROM audit_heads;

-- The invitation link must carry the token, which remit otherwise keeps only as a hash:
-- with smtp_url set, the pool keeps the latest invitation's token here, in the
-- invitation's transaction, until the deliverer has mailed it (then deletes it).
CREATE TABLE invitation_mails (
  user_id BIGINT NOT NULL PRIMARY KEY,
  token VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  CONSTRAINT invitation_mails_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

GRANT SELECT, INSERT, UPDATE ON mail_cursors TO remit_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON invitation_mails TO remit_app;
