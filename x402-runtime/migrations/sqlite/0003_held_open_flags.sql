-- Transitions that leave the indexes alone. SQLite rewrites a partial index's entry on every
-- UPDATE that sets a column its WHERE clause names, even when the row stays in the index with
-- the same key. The held-key, held-payment-id and open indexes were all conditioned on `state`,
-- so each of a payment's two transitions (settling, then settled) deleted and re-inserted three
-- index entries, one of them on a random page (the key is a hash).
--
-- Two flags now carry those conditions, each set once, when the record leaves the set:
-- - `held`: the record holds its key and payment id (every state but released and failed);
-- - `open`: reconciliation may still change it (verified, settling, unknown).
-- A CHECK ties each flag to `state`, so no write can set one without the other. The open index
-- is keyed by `seq`, which never changes: verified -> settling no longer touches it at all.
-- (Terminal states never move, so a flag never goes back to 1.)

DROP VIEW payment_records;

CREATE TABLE payments_flagged (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    payment_key         TEXT NOT NULL CHECK (payment_key <> ''),
    payment_id          TEXT,
    fingerprint         TEXT,
    route               TEXT NOT NULL,
    resource            TEXT NOT NULL,
    method              TEXT NOT NULL,
    payer               TEXT NOT NULL,
    pay_to              TEXT NOT NULL,
    amount              TEXT NOT NULL
                        CHECK (amount <> '' AND amount NOT GLOB '*[^0-9]*' AND length(amount) <= 78),
    settled_amount      TEXT
                        CHECK (settled_amount <> '' AND settled_amount NOT GLOB '*[^0-9]*' AND length(settled_amount) <= 78),
    asset               TEXT NOT NULL,
    network             TEXT NOT NULL,
    scheme              TEXT NOT NULL,
    x402_version        INTEGER NOT NULL,
    nonce               TEXT NOT NULL,
    valid_before        INTEGER,
    state               TEXT NOT NULL
                        CHECK (state = 'verified' OR state = 'settling' OR state = 'settled'
                               OR state = 'failed' OR state = 'unknown' OR state = 'released'),
    held                INTEGER NOT NULL DEFAULT 1
                        CHECK (held = (state <> 'released' AND state <> 'failed')),
    open                INTEGER NOT NULL DEFAULT 1
                        CHECK (open = (state = 'verified' OR state = 'settling' OR state = 'unknown')),
    reconciled          INTEGER NOT NULL DEFAULT 0 CHECK (reconciled IN (0, 1)),
    attempts            INTEGER NOT NULL DEFAULT 0,
    tx                  TEXT,
    error_reason        TEXT,
    error_message       TEXT,
    response_status     INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

INSERT INTO payments_flagged (seq, id, payment_key, payment_id, fingerprint, route, resource,
    method, payer, pay_to, amount, settled_amount, asset, network, scheme, x402_version, nonce,
    valid_before, state, held, open, reconciled, attempts, tx, error_reason, error_message,
    response_status, created_at, updated_at)
SELECT seq, id, payment_key, payment_id, fingerprint, route, resource, method, payer, pay_to,
    amount, settled_amount, asset, network, scheme, x402_version, nonce, valid_before, state,
    state <> 'released' AND state <> 'failed',
    state = 'verified' OR state = 'settling' OR state = 'unknown',
    reconciled, attempts, tx, error_reason, error_message, response_status, created_at, updated_at
FROM payments ORDER BY seq;

DROP TABLE payments;
ALTER TABLE payments_flagged RENAME TO payments;

-- 0002's indexes, with the flags as conditions.
CREATE UNIQUE INDEX payments_held_key ON payments (payment_key) WHERE held = 1;
CREATE UNIQUE INDEX payments_held_payment_id ON payments (payment_id)
    WHERE payment_id IS NOT NULL AND held = 1;
CREATE INDEX payments_key ON payments (payment_key, created_at);
CREATE INDEX payments_payment_id ON payments (payment_id, created_at) WHERE payment_id IS NOT NULL;
CREATE INDEX payments_created ON payments (created_at, id);
-- Open records are few (a payment is open for the length of its request, or until
-- reconciliation resolves it): reconciliation reads them all through this index and orders them
-- by `updated_at` itself.
CREATE INDEX payments_open ON payments (seq) WHERE open = 1;

CREATE VIEW payment_records AS
SELECT p.seq, p.id, p.payment_key, p.payment_id, p.fingerprint, p.route, p.resource, p.method,
    p.payer, p.pay_to, p.amount, p.settled_amount, p.asset, p.network, p.scheme, p.x402_version,
    p.nonce, p.valid_before, p.state, p.held, p.open, p.reconciled, p.attempts, p.tx,
    p.error_reason, p.error_message, p.response_status, r.headers AS response_headers,
    r.body AS response_body, q.facilitator_request, p.created_at, p.updated_at
FROM payments p
LEFT JOIN payment_requests q ON q.seq = p.seq
LEFT JOIN payment_responses r ON r.seq = p.seq;
