-- remit schema. Every statement ends with ';' at the end of a line: `remit migrate` splits on that.
-- Money is BIGINT minor units; every status is checked; ledger and audit rows are append-only.
-- Codes, statuses and types are ascii_bin: compared case-sensitively, so 'approved' fails the
-- CHECK that 'APPROVED' passes.

CREATE TABLE currencies (
  code CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  minor_unit TINYINT NOT NULL,
  CONSTRAINT currencies_code CHECK (code REGEXP '^[A-Z]{3}$'),
  CONSTRAINT currencies_minor CHECK (minor_unit BETWEEN 0 AND 4)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO currencies (code, minor_unit) VALUES
  ('USD', 2), ('EUR', 2), ('GBP', 2), ('CHF', 2), ('JPY', 0), ('CAD', 2), ('AUD', 2),
  ('SEK', 2), ('NOK', 2), ('DKK', 2), ('PLN', 2), ('CZK', 2), ('HUF', 2), ('INR', 2),
  ('CNY', 2), ('KWD', 3), ('BHD', 3), ('NZD', 2), ('SGD', 2), ('HKD', 2), ('MXN', 2),
  ('ZAR', 2), ('BRL', 2), ('KRW', 0), ('ISK', 0), ('OMR', 3), ('JOD', 3), ('TND', 3),
  ('RON', 2), ('TRY', 2), ('ILS', 2), ('AED', 2), ('SAR', 2), ('THB', 2), ('CLP', 0);

CREATE TABLE orgs (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(140) NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- roles is a bit set: 1 ADMIN, 2 CREATOR, 4 APPROVER, 8 TREASURER, 16 VIEWER.
CREATE TABLE users (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  email VARCHAR(254) NOT NULL,
  email_key VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  name VARCHAR(140) NOT NULL,
  roles TINYINT UNSIGNED NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY users_email (org_id, email_key),
  KEY users_org (org_id, id),
  CONSTRAINT users_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT users_roles CHECK (roles BETWEEN 1 AND 31)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE tokens (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  name VARCHAR(140) NULL,
  token_hash BINARY(32) NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  revoked_at DATETIME(3) NULL,
  UNIQUE KEY tokens_hash (token_hash),
  CONSTRAINT tokens_user_fk FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT tokens_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE approval_rules (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  position INT NOT NULL,
  currency CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  min_amount BIGINT NOT NULL,
  approvals TINYINT NOT NULL,
  UNIQUE KEY approval_rules_pos (org_id, position),
  CONSTRAINT approval_rules_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT approval_rules_currency_fk FOREIGN KEY (currency) REFERENCES currencies (code),
  CONSTRAINT approval_rules_min CHECK (min_amount >= 0),
  CONSTRAINT approval_rules_approvals CHECK (approvals BETWEEN 1 AND 10)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE batches (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  name VARCHAR(140) NOT NULL,
  description VARCHAR(1000) NOT NULL DEFAULT '',
  status VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'DRAFT',
  created_by BIGINT NOT NULL,
  submitted_by BIGINT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  submitted_at DATETIME(3) NULL,
  version INT NOT NULL DEFAULT 1,
  KEY batches_org (org_id, id),
  KEY batches_org_status (org_id, status, id),
  CONSTRAINT batches_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT batches_creator_fk FOREIGN KEY (created_by) REFERENCES users (id),
  CONSTRAINT batches_submitter_fk FOREIGN KEY (submitted_by) REFERENCES users (id),
  CONSTRAINT batches_status CHECK (status IN ('DRAFT', 'SUBMITTED', 'COMPLETED', 'CANCELLED')),
  CONSTRAINT batches_version CHECK (version >= 1),
  CONSTRAINT batches_submitted CHECK (
    (status = 'DRAFT' AND submitted_by IS NULL AND submitted_at IS NULL) OR
    (status IN ('SUBMITTED', 'COMPLETED') AND submitted_by IS NOT NULL AND submitted_at IS NOT NULL) OR
    status = 'CANCELLED')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE payment_requests (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  batch_id BIGINT NOT NULL,
  status VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'DRAFT',
  amount BIGINT NOT NULL,
  currency CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  beneficiary_name VARCHAR(140) NOT NULL,
  beneficiary_account VARCHAR(34) NOT NULL,
  purpose VARCHAR(140) NOT NULL DEFAULT '',
  created_by BIGINT NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  version INT NOT NULL DEFAULT 1,
  required_approvals TINYINT NULL,
  approval_count TINYINT NOT NULL DEFAULT 0,
  snapshot TEXT NULL,
  paid_at DATETIME(3) NULL,
  paid_by BIGINT NULL,
  payment_reference VARCHAR(35) NULL,
  KEY requests_org (org_id, id),
  KEY requests_batch (batch_id, id),
  KEY requests_batch_status (batch_id, status, currency),
  CONSTRAINT requests_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT requests_batch_fk FOREIGN KEY (batch_id) REFERENCES batches (id),
  CONSTRAINT requests_currency_fk FOREIGN KEY (currency) REFERENCES currencies (code),
  CONSTRAINT requests_creator_fk FOREIGN KEY (created_by) REFERENCES users (id),
  CONSTRAINT requests_payer_fk FOREIGN KEY (paid_by) REFERENCES users (id),
  CONSTRAINT requests_status CHECK (status IN
    ('DRAFT', 'PENDING_APPROVAL', 'APPROVED', 'PAID', 'REJECTED', 'CANCELLED')),
  CONSTRAINT requests_amount CHECK (amount > 0),
  CONSTRAINT requests_version CHECK (version >= 1),
  CONSTRAINT requests_required CHECK (required_approvals IS NULL OR required_approvals BETWEEN 1 AND 10),
  CONSTRAINT requests_submitted CHECK (
    (status IN ('DRAFT', 'CANCELLED') AND approval_count = 0) OR
    (required_approvals IS NOT NULL AND snapshot IS NOT NULL)),
  CONSTRAINT requests_approved CHECK (
    status NOT IN ('APPROVED', 'PAID') OR approval_count >= required_approvals),
  CONSTRAINT requests_paid CHECK (
    (status = 'PAID') = (paid_at IS NOT NULL AND paid_by IS NOT NULL))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE decisions (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  request_id BIGINT NOT NULL,
  approver_id BIGINT NOT NULL,
  decision VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  comment VARCHAR(500) NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY decisions_once (request_id, approver_id),
  CONSTRAINT decisions_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT decisions_request_fk FOREIGN KEY (request_id) REFERENCES payment_requests (id),
  CONSTRAINT decisions_approver_fk FOREIGN KEY (approver_id) REFERENCES users (id),
  CONSTRAINT decisions_decision CHECK (decision IN ('APPROVED', 'REJECTED'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE ledger_entries (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  request_id BIGINT NOT NULL,
  batch_id BIGINT NOT NULL,
  type VARCHAR(12) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  amount BIGINT NOT NULL,
  currency CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY ledger_once (request_id, type),
  KEY ledger_org (org_id, id),
  CONSTRAINT ledger_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT ledger_request_fk FOREIGN KEY (request_id) REFERENCES payment_requests (id),
  CONSTRAINT ledger_batch_fk FOREIGN KEY (batch_id) REFERENCES batches (id),
  CONSTRAINT ledger_currency_fk FOREIGN KEY (currency) REFERENCES currencies (code),
  CONSTRAINT ledger_type CHECK (type IN ('OBLIGATION', 'SETTLEMENT')),
  CONSTRAINT ledger_amount CHECK (amount > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger_entries FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'ledger entries are append-only';

CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger_entries FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'ledger entries are append-only';

-- The head of each organisation's audit hash chain; locking it serialises that chain's writers.
CREATE TABLE audit_heads (
  org_id BIGINT NOT NULL PRIMARY KEY,
  seq BIGINT NOT NULL DEFAULT 0,
  hash CHAR(64) CHARACTER SET ascii NOT NULL,
  CONSTRAINT audit_heads_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE audit_events (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  at DATETIME(3) NOT NULL,
  actor_id BIGINT NULL,
  action VARCHAR(40) CHARACTER SET ascii NOT NULL,
  object_type VARCHAR(20) CHARACTER SET ascii NOT NULL,
  object_id BIGINT NOT NULL,
  idempotency_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NULL,
  correlation_id VARCHAR(128) CHARACTER SET ascii NOT NULL,
  data TEXT NOT NULL,
  hash CHAR(64) CHARACTER SET ascii NOT NULL,
  prev_hash CHAR(64) CHARACTER SET ascii NOT NULL,
  UNIQUE KEY audit_chain (org_id, seq),
  KEY audit_org (org_id, id),
  KEY audit_object (org_id, object_id, id),
  CONSTRAINT audit_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit events are append-only';

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_events FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit events are append-only';

-- Idempotency records: the claim row is inserted first in the mutation's transaction and
-- carries the response when it commits, so a committed row always has one.
CREATE TABLE idempotency_keys (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT NOT NULL,
  idem_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  fingerprint BINARY(32) NOT NULL,
  status SMALLINT NULL,
  etag VARCHAR(24) CHARACTER SET ascii NULL,
  body MEDIUMTEXT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  expires_at DATETIME(3) NOT NULL,
  UNIQUE KEY idem_user_key (user_id, idem_key),
  KEY idem_expiry (expires_at),
  CONSTRAINT idem_user_fk FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT idem_status CHECK (status IS NULL OR status BETWEEN 200 AND 299)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
