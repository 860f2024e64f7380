-- Controls and hardening (issue 9). Statements end with ';' at the end of a line; a trigger
-- body keeps its inner ';' mid-line so `remit migrate` does not split it.

-- Makers (API §4): whoever created, changed (a PATCH that changed something) or submitted a
-- request. `made` is a bit set: 1 created, 2 changed, 4 submitted. A maker may neither decide
-- on the request nor mark it paid; "is the caller a maker" is one primary-key probe, so a
-- queue of what a user may act on is a cheap NOT EXISTS.
CREATE TABLE request_makers (
  request_id BIGINT NOT NULL,
  user_id BIGINT NOT NULL,
  made TINYINT UNSIGNED NOT NULL,
  PRIMARY KEY (request_id, user_id),
  KEY request_makers_user (user_id),
  CONSTRAINT request_makers_request_fk FOREIGN KEY (request_id) REFERENCES payment_requests (id)
    ON DELETE CASCADE,
  CONSTRAINT request_makers_user_fk FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT request_makers_made CHECK (made BETWEEN 1 AND 7)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Requests made before this migration: creators, submitters, and editors as the audit chain
-- recorded them.
INSERT INTO request_makers (request_id, user_id, made)
  SELECT id, created_by, 1 FROM payment_requests;
INSERT INTO request_makers (request_id, user_id, made)
  SELECT DISTINCT e.object_id, e.actor_id, 2 FROM audit_events e
  JOIN payment_requests r ON r.id = e.object_id AND r.org_id = e.org_id
  WHERE e.action = 'request.updated' AND e.object_type = 'request' AND e.actor_id IS NOT NULL
  ON DUPLICATE KEY UPDATE made = made | 2;
INSERT INTO request_makers (request_id, user_id, made)
  SELECT r.id, b.submitted_by, 4 FROM payment_requests r JOIN batches b ON b.id = r.batch_id
  WHERE b.submitted_by IS NOT NULL
  ON DUPLICATE KEY UPDATE made = made | 4;

-- The last line of defence for separation of duties: no decision and no payment by a maker.
-- Locking reads, so a maker committed after this transaction's snapshot still counts.
CREATE TRIGGER decisions_not_maker BEFORE INSERT ON decisions FOR EACH ROW
  IF EXISTS (SELECT 1 FROM request_makers m WHERE m.request_id = NEW.request_id AND m.user_id = NEW.approver_id LOCK IN SHARE MODE) THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a maker of a request may not decide on it'; END IF;

CREATE TRIGGER requests_paid_not_maker BEFORE UPDATE ON payment_requests FOR EACH ROW
  IF NEW.paid_by IS NOT NULL AND NOT (OLD.paid_by <=> NEW.paid_by) AND EXISTS (SELECT 1 FROM request_makers m WHERE m.request_id = NEW.id AND m.user_id = NEW.paid_by LOCK IN SHARE MODE) THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a maker of a request may not mark it paid'; END IF;

-- Emails compare as the contract says: lower-cased A-Z (done by the service), nothing else.
-- utf8mb4_bin is PAD SPACE, so 'p1@a.example ' equalled 'p1@a.example' in the unique key;
-- bytes compare exactly (254 characters of up to 4 bytes each).
ALTER TABLE users MODIFY email_key VARBINARY(1016) NOT NULL;

-- Least privilege (README "Database accounts"): the pool's user holds only the role
-- remit_app, and the role only what the domain needs. Ledger, audit and decision rows are
-- INSERT and SELECT only, so they stay immutable even without their triggers; nothing here
-- may ALTER, DROP or touch a trigger. A migration that creates a table grants it here, one
-- line: GRANT <verbs> ON <table> TO remit_app;
CREATE ROLE IF NOT EXISTS remit_app;
GRANT SELECT ON currencies TO remit_app;
GRANT SELECT, INSERT ON orgs TO remit_app;
GRANT SELECT, INSERT, UPDATE ON users TO remit_app;
GRANT SELECT, INSERT, UPDATE ON tokens TO remit_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON approval_rules TO remit_app;
GRANT SELECT, INSERT, UPDATE ON batches TO remit_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON payment_requests TO remit_app;
GRANT SELECT, INSERT ON decisions TO remit_app;
GRANT SELECT, INSERT ON ledger_entries TO remit_app;
GRANT SELECT, INSERT, UPDATE ON audit_heads TO remit_app;
GRANT SELECT, INSERT ON audit_events TO remit_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO remit_app;
GRANT SELECT, INSERT, UPDATE ON request_makers TO remit_app;
