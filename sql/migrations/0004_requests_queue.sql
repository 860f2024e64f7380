-- The queues of GET /api/v1/requests (v1.1) name a status within an organisation, newest
-- first: this index reads only that status's rows, in order, instead of every request of
-- the organisation.
CREATE INDEX requests_org_status ON payment_requests (org_id, status, id);
