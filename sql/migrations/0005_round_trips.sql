-- Fewer round trips per mutation (issue 15). Half of what a mutation cost was waiting for
-- the database's answers, one statement at a time; the work itself was small. What every
-- mutation ends with, and what the database can do on its own, now runs server-side.
--
-- A stored program's body, END included, is indented: the migration runner ends a
-- statement only at a ';' closing a line that is not followed by an indented one
-- (src/migrate.c).

-- The audit chain: one event appended to an organisation's chain in one CALL instead of
-- three statements (lock the head, insert, move the head). The link's hash is computed here
-- exactly as src/audit.c's link_hash computes it when it verifies a chain: every field
-- length-prefixed (bytes), so no choice of contents can make two events hash alike.
-- SQL SECURITY INVOKER: the pool's role needs its own grants on the tables (0002).
CREATE PROCEDURE audit_append(IN p_org BIGINT, IN p_actor BIGINT, IN p_at VARCHAR(23),
    IN p_action VARCHAR(40), IN p_type VARCHAR(20), IN p_object BIGINT,
    IN p_key VARCHAR(255), IN p_corr VARCHAR(128), IN p_data TEXT CHARACTER SET utf8mb4)
  SQL SECURITY INVOKER
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
      LENGTH(p_data), ':', p_data), 256);
    INSERT INTO audit_events (org_id, seq, at, actor_id, action, object_type, object_id,
      idempotency_key, correlation_id, data, hash, prev_hash)
      VALUES (p_org, v_seq, p_at, p_actor, p_action, p_type, p_object, p_key, p_corr, p_data,
      v_hash, v_prev);
    UPDATE audit_heads SET seq = v_seq, hash = v_hash WHERE org_id = p_org;
  END;

-- The start of a mutation that carries an Idempotency-Key, in one CALL: the transaction
-- begins and the key is claimed for the user (src/idem.c); answers with the claim's row id.
-- A duplicate key fails the CALL as the INSERT would (1062), inside the open transaction.
CREATE PROCEDURE tx_claim(IN p_user BIGINT, IN p_key VARCHAR(255) CHARACTER SET ascii,
    IN p_fingerprint BINARY(32), IN p_retention INT)
  SQL SECURITY INVOKER
  MODIFIES SQL DATA
  BEGIN
    START TRANSACTION;
    INSERT INTO idempotency_keys (user_id, idem_key, fingerprint, expires_at)
      VALUES (p_user, p_key, p_fingerprint, NOW(3) + INTERVAL p_retention SECOND);
    SELECT LAST_INSERT_ID();
  END;

-- The end of a mutation, in one CALL: the answer stored under its Idempotency-Key's row
-- (p_key_row, 0 when it has none), the last audit event appended (when there is one: the
-- others went through audit_append), and COMMIT. The key row is this transaction's own claim; if the
-- UPDATE finds no row, a Galera node aborted the transaction under us and this ran on its
-- own: it fails as a deadlock would (1213), and src/tx.c runs the mutation again.
CREATE PROCEDURE tx_finish(IN p_key_row BIGINT, IN p_status SMALLINT,
    IN p_etag VARCHAR(24), IN p_body MEDIUMTEXT CHARACTER SET utf8mb4,
    IN p_org BIGINT, IN p_actor BIGINT, IN p_at VARCHAR(23),
    IN p_action VARCHAR(40), IN p_type VARCHAR(20), IN p_object BIGINT,
    IN p_key VARCHAR(255), IN p_corr VARCHAR(128), IN p_data TEXT CHARACTER SET utf8mb4)
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
      CALL audit_append(p_org, p_actor, p_at, p_action, p_type, p_object, p_key, p_corr, p_data);
    END IF;
    COMMIT;
  END;

-- POST /api/v1/batches/{id}/requests in one CALL (src/domain/requests.c): the batch is found
-- in the caller's organisation without a lock (tenancy before locks: src/domain/lock.h),
-- then locked and its version bumped if it is a DRAFT with room for one more request; the
-- request is inserted (its maker and the batch's count by the triggers below) and read back
-- with the columns of REQUEST_COLS (src/domain/repr.h), in that order. No result: nothing was
-- added, and the caller's locking path tells why (404, 409).
CREATE PROCEDURE request_add(IN p_org BIGINT, IN p_batch BIGINT, IN p_max INT,
    IN p_amount BIGINT, IN p_currency CHAR(3) CHARACTER SET ascii,
    IN p_name VARCHAR(140) CHARACTER SET utf8mb4, IN p_account VARCHAR(34) CHARACTER SET utf8mb4,
    IN p_purpose VARCHAR(140) CHARACTER SET utf8mb4, IN p_user BIGINT)
  SQL SECURITY INVOKER
  MODIFIES SQL DATA
  BEGIN
    -- A SELECT of its own: a subquery in IF would read with a shared lock (InnoDB locks what
    -- a statement other than SELECT reads) and wait for another organisation's locked batch.
    DECLARE v_found INT;
    SELECT COUNT(*) INTO v_found FROM batches WHERE id = p_batch AND org_id = p_org;
    IF v_found = 1 THEN
      UPDATE batches SET version = version + 1, updated_at = NOW(3)
        WHERE id = p_batch AND status = 'DRAFT' AND request_count < p_max;
      IF ROW_COUNT() = 1 THEN
        INSERT INTO payment_requests (org_id, batch_id, amount, currency, beneficiary_name,
          beneficiary_account, purpose, created_by)
          VALUES (p_org, p_batch, p_amount, p_currency, p_name, p_account, p_purpose, p_user);
        SELECT r.id, r.batch_id, r.status, r.amount, r.currency, r.beneficiary_name,
          r.beneficiary_account, r.purpose, r.created_by, r.created_at, r.updated_at, r.version,
          r.required_approvals, r.approval_count, r.snapshot, r.paid_at, r.paid_by,
          r.payment_reference, cu.minor_unit
          FROM payment_requests r JOIN currencies cu ON cu.code = r.currency
          WHERE r.id = LAST_INSERT_ID();
      END IF;
    END IF;
  END;

-- Who created a request is recorded by the INSERT itself (maker-checker, 0002): one
-- statement less for an add, and no request can exist without its creator as a maker.
CREATE TRIGGER requests_maker_created AFTER INSERT ON payment_requests FOR EACH ROW
  INSERT INTO request_makers (request_id, user_id, made) VALUES (NEW.id, NEW.created_by, 1);

-- A batch's number of requests, kept by the database: the 5,000-request cap (409
-- BATCH_FULL) is then read from the batch row the add already locks, instead of counting.
ALTER TABLE batches ADD COLUMN request_count INT NOT NULL DEFAULT 0,
  ADD CONSTRAINT batches_request_count CHECK (request_count >= 0);
UPDATE batches b SET request_count = (SELECT COUNT(*) FROM payment_requests r WHERE r.batch_id = b.id);
CREATE TRIGGER requests_count_insert AFTER INSERT ON payment_requests FOR EACH ROW
  UPDATE batches SET request_count = request_count + 1 WHERE id = NEW.batch_id;
CREATE TRIGGER requests_count_delete AFTER DELETE ON payment_requests FOR EACH ROW
  UPDATE batches SET request_count = request_count - 1 WHERE id = OLD.batch_id;

-- A request belongs to its batch's organisation, by construction: a request found in the
-- caller's organisation has its batch there too, and locking that batch needs no tenancy
-- read of its own (src/domain/lock.c: request_lock). The composite key replaces the one on
-- batch_id alone, and the batch's index gains org_id (which its lists filter on anyway), so
-- an INSERT checks one key and maintains as many indexes as before.
ALTER TABLE batches ADD KEY batches_id_org (id, org_id);
ALTER TABLE payment_requests DROP FOREIGN KEY requests_batch_fk, DROP KEY requests_batch,
  ADD KEY requests_batch (batch_id, org_id, id),
  ADD CONSTRAINT requests_batch_org_fk FOREIGN KEY (batch_id, org_id) REFERENCES batches (id, org_id);

GRANT EXECUTE ON PROCEDURE tx_claim TO remit_app;
GRANT EXECUTE ON PROCEDURE audit_append TO remit_app;
GRANT EXECUTE ON PROCEDURE tx_finish TO remit_app;
GRANT EXECUTE ON PROCEDURE request_add TO remit_app;
