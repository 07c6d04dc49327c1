-- A narrow hot row. Every paid request writes its record three times (verified, settling,
-- settled); each write rewrote the whole ~2 KB row (the facilitator request and the kept
-- response) and the entries of eight indexes. The large, write-once fields now live in side
-- tables keyed by the record's integer key `seq` (their rows are only ever appended), so a
-- transition rewrites a few hundred bytes and many records share a page.
--
-- - `payments`: the record without its large fields; `seq` is an INTEGER PRIMARY KEY (kept by
--   VACUUM, unlike an implicit rowid), `id` stays the public key (UNIQUE).
-- - `payment_requests`: the facilitator request, written with the record.
-- - `payment_responses`: the kept response (present exactly when one was kept; the first one
--   stays). `payments.response_status` stays on the hot row, as before.
-- - `payment_records`: the record as one row again, in the columns of 0001's `payments`, for
--   every reader.

CREATE TABLE payments_narrow (
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
    -- Comparisons rather than `IN (…)`: SQLite evaluates a list of more than two constants
    -- through a temporary B-tree, built and dropped on every write that checks it.
    state               TEXT NOT NULL
                        CHECK (state = 'verified' OR state = 'settling' OR state = 'settled'
                               OR state = 'failed' OR state = 'unknown' OR state = 'released'),
    reconciled          INTEGER NOT NULL DEFAULT 0 CHECK (reconciled IN (0, 1)),
    attempts            INTEGER NOT NULL DEFAULT 0,
    tx                  TEXT,
    error_reason        TEXT,
    error_message       TEXT,
    response_status     INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE payment_requests (
    seq                 INTEGER PRIMARY KEY,
    facilitator_request TEXT NOT NULL
) STRICT;

-- `headers`: a JSON array of [name, value] pairs; the body may be absent when it was too large
-- to keep.
CREATE TABLE payment_responses (
    seq                 INTEGER PRIMARY KEY,
    headers             TEXT NOT NULL,
    body                BLOB
) STRICT;

INSERT INTO payments_narrow (id, payment_key, payment_id, fingerprint, route, resource, method,
    payer, pay_to, amount, settled_amount, asset, network, scheme, x402_version, nonce,
    valid_before, state, reconciled, attempts, tx, error_reason, error_message, response_status,
    created_at, updated_at)
SELECT id, payment_key, payment_id, fingerprint, route, resource, method, payer, pay_to, amount,
    settled_amount, asset, network, scheme, x402_version, nonce, valid_before, state, reconciled,
    attempts, tx, error_reason, error_message, response_status, created_at, updated_at
FROM payments ORDER BY created_at, id;

INSERT INTO payment_requests (seq, facilitator_request)
SELECT n.seq, p.facilitator_request FROM payments p JOIN payments_narrow n ON n.id = p.id;

INSERT INTO payment_responses (seq, headers, body)
SELECT n.seq, p.response_headers, p.response_body FROM payments p JOIN payments_narrow n ON n.id = p.id
WHERE p.response_headers IS NOT NULL;

DROP TABLE payments;
ALTER TABLE payments_narrow RENAME TO payments;

-- The indexes a write maintains, each for a reason (besides `id`'s own, for every lookup by id):
-- - held key / held payment id: at most one record holding an authorization's key and its
--   payment id (released and failed ones hold neither); also the insert's conflict lookup;
CREATE UNIQUE INDEX payments_held_key ON payments (payment_key) WHERE state NOT IN ('released', 'failed');
CREATE UNIQUE INDEX payments_held_payment_id ON payments (payment_id)
    WHERE payment_id IS NOT NULL AND state NOT IN ('released', 'failed');
-- - by key / by payment id: the latest record of a key or payment id, released ones included
--   (replay lookups);
CREATE INDEX payments_key ON payments (payment_key, created_at);
CREATE INDEX payments_payment_id ON payments (payment_id, created_at) WHERE payment_id IS NOT NULL;
-- - created_at: listings newest first and every time range; reports by route or payer scan
--   a time range (0001's route and payer indexes are gone: two fewer entries per insert);
CREATE INDEX payments_created ON payments (created_at, id);
-- - open records, oldest change first: reconciliation (its query repeats this condition
--   word for word, comparisons rather than `IN (…)` for the reason above).
CREATE INDEX payments_open ON payments (updated_at)
    WHERE (state = 'verified' OR state = 'settling' OR state = 'unknown');

-- A missing side row reads as NULL, which the journal reports as corrupt rather than hiding
-- the record.
CREATE VIEW payment_records AS
SELECT p.seq, p.id, p.payment_key, p.payment_id, p.fingerprint, p.route, p.resource, p.method,
    p.payer, p.pay_to, p.amount, p.settled_amount, p.asset, p.network, p.scheme, p.x402_version,
    p.nonce, p.valid_before, p.state, p.reconciled, p.attempts, p.tx, p.error_reason,
    p.error_message, p.response_status, r.headers AS response_headers, r.body AS response_body,
    q.facilitator_request, p.created_at, p.updated_at
FROM payments p
LEFT JOIN payment_requests q ON q.seq = p.seq
LEFT JOIN payment_responses r ON r.seq = p.seq;
