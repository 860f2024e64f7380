-- The bank's answer (API §9, v1.2): every pain.002 status report applied to a payment file,
-- kept with its exact bytes, who posted it and when. The UNIQUE key (file_id, message_id)
-- makes a report apply at most once per file, whatever its Idempotency-Key, worker or app
-- host: the database decides, also between two posts at the same moment.
CREATE TABLE payment_status_reports (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id BIGINT NOT NULL,
  file_id BIGINT NOT NULL,
  message_id VARCHAR(35) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  created_by BIGINT NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  body LONGBLOB NOT NULL,
  UNIQUE KEY status_reports_message (file_id, message_id),
  KEY status_reports_org (org_id, file_id, id),
  CONSTRAINT status_reports_org_fk FOREIGN KEY (org_id) REFERENCES orgs (id),
  CONSTRAINT status_reports_file_fk FOREIGN KEY (file_id) REFERENCES payment_files (id),
  CONSTRAINT status_reports_creator_fk FOREIGN KEY (created_by) REFERENCES users (id),
  CONSTRAINT status_reports_message_form CHECK (CHAR_LENGTH(message_id) BETWEEN 1 AND 35)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- A report is never applied to a VOIDED file, and a file the bank has answered is never
-- voided (the code says so first; this is the last line of defence).
CREATE TRIGGER status_reports_live_file BEFORE INSERT ON payment_status_reports FOR EACH ROW
  BEGIN
    IF (SELECT status FROM payment_files WHERE id = NEW.file_id) = 'VOIDED' THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a VOIDED payment file takes no status report';
    END IF;
  END;

CREATE TRIGGER payment_files_void_unanswered BEFORE UPDATE ON payment_files FOR EACH ROW
  BEGIN
    IF NEW.status = 'VOIDED' AND OLD.status <> 'VOIDED' AND OLD.reports_applied > 0 THEN
      SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the bank has answered for this file';
    END IF;
  END;

-- A status report is evidence: kept, never changed or deleted by the service.
GRANT SELECT, INSERT ON payment_status_reports TO remit_app;
