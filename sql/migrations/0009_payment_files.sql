-- Money out (API §9, v1.2): the organisation's own accounts per currency, and payment files
-- that hand approved requests to the bank.

-- The accounts files are paid from, one per currency; replaced as a whole set (PUT).
CREATE TABLE debtor_accounts (
  org_id BIGINT NOT NULL,
  currency CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  position INT NOT NULL,
  name VARCHAR(70) NOT NULL,
  iban VARCHAR(34) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  bic VARCHAR(11) CHARACTER SET ascii COLLATE ascii_bin NULL,
  PRIMARY KEY (org_id, currency),
  CONSTRAINT debtor_accounts_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT debtor_accounts_currency_fk FOREIGN KEY (currency) REFERENCES currencies (code),
  CONSTRAINT debtor_accounts_bic CHECK (bic IS NULL OR CHAR_LENGTH(bic) IN (8, 11))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- A file keeps a copy of the debtor account it was made with, and the bytes of its
-- downloads (pain_001 is NULL when the file is not SEPA), so every download is
-- byte-identical whatever happens to the accounts, the requests or the file later.
-- message_id is set from the id in the creating transaction (REMIT-<id>).
CREATE TABLE payment_files (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  status VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'CREATED',
  currency CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  item_count INT NOT NULL,
  total DECIMAL(30, 0) NOT NULL,
  execution_date DATE NOT NULL,
  message_id VARCHAR(35) CHARACTER SET ascii COLLATE ascii_bin NULL,
  debtor_name VARCHAR(70) NOT NULL,
  debtor_iban VARCHAR(34) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  debtor_bic VARCHAR(11) CHARACTER SET ascii COLLATE ascii_bin NULL,
  created_by BIGINT NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  settled_at DATETIME(3) NULL,
  voided_by BIGINT NULL,
  voided_at DATETIME(3) NULL,
  void_reason VARCHAR(500) NULL,
  reports_applied INT NOT NULL DEFAULT 0,
  version INT NOT NULL DEFAULT 1,
  pain_001 LONGBLOB NULL,
  csv LONGBLOB NULL,
  UNIQUE KEY payment_files_message (org_id, message_id),
  KEY payment_files_org (org_id, id),
  KEY payment_files_org_status (org_id, status, id),
  CONSTRAINT payment_files_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT payment_files_currency_fk FOREIGN KEY (currency) REFERENCES currencies (code),
  CONSTRAINT payment_files_creator_fk FOREIGN KEY (created_by) REFERENCES users (id),
  CONSTRAINT payment_files_voider_fk FOREIGN KEY (voided_by) REFERENCES users (id),
  CONSTRAINT payment_files_status CHECK (status IN ('CREATED', 'SETTLED', 'VOIDED')),
  CONSTRAINT payment_files_count CHECK (item_count BETWEEN 1 AND 2000),
  CONSTRAINT payment_files_total CHECK (total > 0),
  CONSTRAINT payment_files_settled CHECK ((status = 'SETTLED') = (settled_at IS NOT NULL)),
  CONSTRAINT payment_files_voided CHECK ((status = 'VOIDED') =
    (voided_at IS NOT NULL AND voided_by IS NOT NULL AND void_reason IS NOT NULL)),
  CONSTRAINT payment_files_message_id CHECK (message_id IS NULL OR message_id REGEXP '^[A-Za-z0-9-]{1,35}$')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One item per request of a file, in the order given. live_request_id holds the request's
-- id exactly while the item is INCLUDED or PAID, under a UNIQUE key: the database, not the
-- code, decides that a request is in at most one live file, however many treasurers, tabs,
-- hosts or retries try at once. The text is the request's as filed; name_in_file is what the
-- pain.001 writes (SEPA character set).
CREATE TABLE payment_file_items (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  file_id BIGINT NOT NULL,
  position INT NOT NULL,
  request_id BIGINT NOT NULL,
  live_request_id BIGINT NULL,
  batch_id BIGINT NOT NULL,
  end_to_end_id VARCHAR(35) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  amount BIGINT NOT NULL,
  currency CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  beneficiary_name VARCHAR(140) NOT NULL,
  name_in_file VARCHAR(70) NOT NULL,
  beneficiary_account VARCHAR(34) NOT NULL,
  purpose VARCHAR(140) NOT NULL,
  status VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'INCLUDED',
  bank_status VARCHAR(4) CHARACTER SET ascii COLLATE ascii_bin NULL,
  reason_code VARCHAR(35) NULL,
  final_at DATETIME(3) NULL,
  UNIQUE KEY items_live (live_request_id),
  UNIQUE KEY items_end_to_end (org_id, end_to_end_id),
  UNIQUE KEY items_position (file_id, position),
  KEY items_request (request_id, id),
  CONSTRAINT items_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT items_file_fk FOREIGN KEY (file_id) REFERENCES payment_files (id),
  CONSTRAINT items_request_fk FOREIGN KEY (request_id) REFERENCES payment_requests (id),
  CONSTRAINT items_status CHECK (status IN ('INCLUDED', 'PAID', 'RETURNED', 'VOIDED')),
  CONSTRAINT items_live_state CHECK ((status IN ('INCLUDED', 'PAID')) = (live_request_id IS NOT NULL)
    AND (live_request_id IS NULL OR live_request_id = request_id)),
  CONSTRAINT items_amount CHECK (amount > 0),
  CONSTRAINT items_end_to_end_form CHECK (end_to_end_id REGEXP '^[A-Za-z0-9-]{1,35}$')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Only APPROVED requests go into a file.
CREATE TRIGGER items_approved_only BEFORE INSERT ON payment_file_items FOR EACH ROW
  BEGIN
    IF (SELECT status FROM payment_requests WHERE id = NEW.request_id) <> 'APPROVED' THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'only an APPROVED request goes into a payment file';
    END IF;
  END;

-- What an item was filed as never changes, and its status only leaves INCLUDED, once.
CREATE TRIGGER items_transitions BEFORE UPDATE ON payment_file_items FOR EACH ROW
  BEGIN
    IF NEW.request_id <> OLD.request_id OR NEW.file_id <> OLD.file_id
        OR NEW.amount <> OLD.amount OR NEW.end_to_end_id <> OLD.end_to_end_id
        OR NEW.beneficiary_account <> OLD.beneficiary_account
        OR NEW.beneficiary_name <> OLD.beneficiary_name THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a payment file item is immutable';
    END IF;
    IF NEW.status <> OLD.status AND OLD.status <> 'INCLUDED' THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a payment file item leaves INCLUDED only once';
    END IF;
  END;

-- A request in a live file is paid through that file: its item is PAID before the request
-- (confirm, and later the bank's report), so a hand-made payment of a filed request is
-- refused by the database too, whatever the code checks.
CREATE TRIGGER requests_paid_not_filed BEFORE UPDATE ON payment_requests FOR EACH ROW
  BEGIN
    IF NEW.status = 'PAID' AND OLD.status <> 'PAID' AND EXISTS (SELECT 1 FROM payment_file_items
        WHERE live_request_id = NEW.id AND status = 'INCLUDED') THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the request is in a live payment file';
    END IF;
  END;

GRANT SELECT, INSERT, DELETE ON debtor_accounts TO remit_app;
GRANT SELECT, INSERT, UPDATE ON payment_files TO remit_app;
GRANT SELECT, INSERT, UPDATE ON payment_file_items TO remit_app;
