-- Controls, third round (issue 23). What an outside review found the pool's own database
-- account, or a race, could still do; API §7 (v1.2) has the contract. Stored programs and
-- multi-line triggers are indented, END included (src/migrate.c's statement rule).

-- Who made an API token through the API: its owner (/me/tokens) or an ADMIN
-- (/users/{id}/tokens); NULL for sessions and for the operator's bootstrap token. Accepting an
-- invitation ends the tokens a user made for themselves and keeps an ADMIN's, and every audit
-- event names the ADMIN behind a token made for someone else. Tokens made before: the audit
-- chain recorded who made each.
ALTER TABLE tokens ADD COLUMN minted_by BIGINT NULL,
  ADD CONSTRAINT tokens_minted_by_fk FOREIGN KEY (minted_by) REFERENCES users (id);
UPDATE tokens t JOIN audit_events e ON e.org_id = t.org_id AND e.object_type = 'token'
  AND e.object_id = t.id AND e.action = 'token.created'
  SET t.minted_by = e.actor_id WHERE e.actor_id IS NOT NULL;

-- Deactivation wins every race (API §7 v1.2): no credential is created for a user who is not
-- active. The shared lock on the user's row orders this INSERT with a PATCH that deactivates:
-- either the PATCH waits for this transaction and then revokes the new token with the rest,
-- or this waits for the PATCH and sees active = 0.
CREATE TRIGGER tokens_user_active BEFORE INSERT ON tokens FOR EACH ROW
  BEGIN
    IF (SELECT COUNT(*) FROM users u WHERE u.id = NEW.user_id AND u.active = 1 LOCK IN SHARE MODE) = 0 THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no credential for a deactivated user';
    END IF;
  END;

-- Reactivation does not bring back the old password (API §7 v1.2): deactivating forgets it,
-- so a reactivated user signs in only after accepting a new invitation.
CREATE TRIGGER users_deactivated_forget BEFORE UPDATE ON users FOR EACH ROW
  IF NEW.active = 0 THEN SET NEW.password_hash = NULL; END IF;
UPDATE users SET password_hash = NULL WHERE active = 0;

-- Makers only grow (separation of duties, API §4): the pool's account may no longer UPDATE
-- request_makers (it could move a maker to another user: `SET user_id = ...`); adding a maker
-- or a bit to what a maker made goes through the two procedures below, which run with their
-- definer's rights and can do nothing else. (MariaDB wants UPDATE on every inserted column for
-- INSERT ... ON DUPLICATE KEY UPDATE, so a grant of the column `made` alone would not do.) The
-- trigger holds for every account: a row never moves and its bit set never shrinks.
REVOKE UPDATE ON request_makers FROM remit_app;
CREATE TRIGGER request_makers_only_grow BEFORE UPDATE ON request_makers FOR EACH ROW
  IF NEW.request_id <> OLD.request_id OR NEW.user_id <> OLD.user_id OR (NEW.made | OLD.made) <> NEW.made THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a maker may not be moved or unmade'; END IF;

CREATE PROCEDURE maker_add(IN p_request BIGINT, IN p_user BIGINT, IN p_made TINYINT)
  SQL SECURITY DEFINER
  MODIFIES SQL DATA
  BEGIN
    INSERT INTO request_makers (request_id, user_id, made) VALUES (p_request, p_user, p_made)
      ON DUPLICATE KEY UPDATE made = made | p_made;
  END;

-- The submitter of a batch is a maker of each of its requests (4: submitted).
CREATE PROCEDURE makers_add_batch(IN p_user BIGINT, IN p_batch BIGINT)
  SQL SECURITY DEFINER
  MODIFIES SQL DATA
  BEGIN
    INSERT INTO request_makers (request_id, user_id, made)
      SELECT id, p_user, 4 FROM payment_requests WHERE batch_id = p_batch
      ON DUPLICATE KEY UPDATE made = made | 4;
  END;

GRANT EXECUTE ON PROCEDURE maker_add TO remit_app;
GRANT EXECUTE ON PROCEDURE makers_add_batch TO remit_app;

-- A request's status changes only as the lifecycle table allows (src/domain/lifecycle.c:
-- request_from; a batch's cancel ends DRAFT and PENDING_APPROVAL requests). A status that is
-- none of the lifecycle's is left to the CHECK constraint (0001), which names it.
CREATE TRIGGER requests_status_lifecycle BEFORE UPDATE ON payment_requests FOR EACH ROW
  BEGIN
    IF NEW.status <> OLD.status
        AND NEW.status IN ('DRAFT', 'PENDING_APPROVAL', 'APPROVED', 'PAID', 'REJECTED', 'CANCELLED')
        AND CONCAT(OLD.status, '>', NEW.status) NOT IN ('DRAFT>PENDING_APPROVAL', 'DRAFT>CANCELLED',
          'PENDING_APPROVAL>APPROVED', 'PENDING_APPROVAL>REJECTED', 'PENDING_APPROVAL>CANCELLED',
          'APPROVED>PAID') THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the lifecycle does not allow this status change';
    END IF;
  END;

-- The credential that made each event (API §7 v1.2): NULL for operator commands and for
-- requests that carried none (sign-in, accepting an invitation).
ALTER TABLE audit_events
  ADD COLUMN cred_kind VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NULL,
  ADD COLUMN cred_id BIGINT NULL,
  ADD COLUMN cred_minted_by BIGINT NULL,
  ADD CONSTRAINT audit_cred_kind CHECK (cred_kind IS NULL OR cred_kind IN ('session', 'token')),
  ADD CONSTRAINT audit_cred_whole CHECK ((cred_kind IS NULL) = (cred_id IS NULL)
    AND (cred_minted_by IS NULL OR cred_kind IS NOT NULL));

-- The chain's heads move only through audit_append, which now runs with its definer's rights
-- (the schema's owner): the pool's account may create an organisation's head but never move
-- or delete one, so it cannot hide a chain from `remit verify-audit` by moving its head. The
-- credential joins the hash after the data, only when there is one, so every event written
-- before keeps its hash (src/audit.c: link_hash computes the same).
DROP PROCEDURE tx_finish;
DROP PROCEDURE audit_append;
REVOKE UPDATE ON audit_heads FROM remit_app;

CREATE PROCEDURE audit_append(IN p_org BIGINT, IN p_actor BIGINT, IN p_at VARCHAR(23),
    IN p_action VARCHAR(40), IN p_type VARCHAR(20), IN p_object BIGINT,
    IN p_key VARCHAR(255), IN p_corr VARCHAR(128), IN p_data TEXT CHARACTER SET utf8mb4,
    IN p_cred_kind VARCHAR(8), IN p_cred_id BIGINT, IN p_cred_minted BIGINT)
  SQL SECURITY DEFINER
  MODIFIES SQL DATA
  BEGIN
    DECLARE v_seq BIGINT;
    DECLARE v_prev, v_hash CHAR(64) CHARACTER SET ascii;
    SELECT seq + 1, hash INTO v_seq, v_prev FROM audit_heads WHERE org_id = p_org FOR UPDATE;
    SET v_hash = SHA2(CONCAT(p_org, '|', v_seq, '|', p_actor, '|', p_object, '|',
      LENGTH(v_prev), ':', v_prev, '|',
      LENGTH(p_at), ':', p_at, '|',
      LENGTH(p_action), ':', p_action, '|',
      LENGTH(p_type), ':', p_type, '|',
      LENGTH(COALESCE(p_key, '')), ':', COALESCE(p_key, ''), '|',
      LENGTH(p_corr), ':', p_corr, '|',
      LENGTH(p_data), ':', p_data,
      IF(p_cred_kind IS NULL, '', CONCAT('|', LENGTH(p_cred_kind), ':', p_cred_kind, '|',
        p_cred_id, '|', COALESCE(p_cred_minted, '')))), 256);
    INSERT INTO audit_events (org_id, seq, at, actor_id, action, object_type, object_id,
      idempotency_key, correlation_id, data, hash, prev_hash, cred_kind, cred_id,
      cred_minted_by)
      VALUES (p_org, v_seq, p_at, p_actor, p_action, p_type, p_object, p_key, p_corr, p_data,
      v_hash, v_prev, p_cred_kind, p_cred_id, p_cred_minted);
    UPDATE audit_heads SET seq = v_seq, hash = v_hash WHERE org_id = p_org;
  END;

-- As in 0005, with the last event's credential.
CREATE PROCEDURE tx_finish(IN p_key_row BIGINT, IN p_status SMALLINT,
    IN p_etag VARCHAR(24), IN p_body MEDIUMTEXT CHARACTER SET utf8mb4,
    IN p_org BIGINT, IN p_actor BIGINT, IN p_at VARCHAR(23),
    IN p_action VARCHAR(40), IN p_type VARCHAR(20), IN p_object BIGINT,
    IN p_key VARCHAR(255), IN p_corr VARCHAR(128), IN p_data TEXT CHARACTER SET utf8mb4,
    IN p_cred_kind VARCHAR(8), IN p_cred_id BIGINT, IN p_cred_minted BIGINT)
  SQL SECURITY INVOKER
  MODIFIES SQL DATA
  BEGIN
    IF p_key_row <> 0 THEN
      UPDATE idempotency_keys SET status = p_status, etag = p_etag, body = p_body
        WHERE id = p_key_row;
      IF ROW_COUNT() <> 1 THEN
        SIGNAL SQLSTATE '40001'
          SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'the transaction lost its idempotency key';
      END IF;
    END IF;
    IF p_action IS NOT NULL THEN
      CALL audit_append(p_org, p_actor, p_at, p_action, p_type, p_object, p_key, p_corr, p_data,
        p_cred_kind, p_cred_id, p_cred_minted);
    END IF;
    COMMIT;
  END;

GRANT EXECUTE ON PROCEDURE audit_append TO remit_app;
GRANT EXECUTE ON PROCEDURE tx_finish TO remit_app;
