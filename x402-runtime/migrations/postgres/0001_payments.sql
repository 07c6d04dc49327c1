-- The payment journal (x402-runtime `journal::PostgresJournal`): one row per admitted payment,
-- shared by every replica. Amounts are NUMERIC(78, 0), which holds any U256 exactly, so SUM is
-- exact. Times are unix milliseconds.
CREATE TABLE payments (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    payment_key         TEXT NOT NULL CHECK (payment_key <> ''),
    payment_id          TEXT,
    fingerprint         TEXT,
    route               TEXT NOT NULL,
    resource            TEXT NOT NULL,
    method              TEXT NOT NULL,
    payer               TEXT NOT NULL,
    pay_to              TEXT NOT NULL,
    amount              NUMERIC(78, 0) NOT NULL CHECK (amount >= 0),
    settled_amount      NUMERIC(78, 0) CHECK (settled_amount >= 0),
    asset               TEXT NOT NULL,
    network             TEXT NOT NULL,
    scheme              TEXT NOT NULL,
    x402_version        BIGINT NOT NULL,
    nonce               TEXT NOT NULL,
    valid_before        BIGINT,
    state               TEXT NOT NULL
                        CHECK (state IN ('verified', 'settling', 'settled', 'failed', 'unknown', 'released')),
    reconciled          BOOLEAN NOT NULL DEFAULT FALSE,
    attempts            BIGINT NOT NULL DEFAULT 0,
    tx                  TEXT,
    error_reason        TEXT,
    error_message       TEXT,
    response_status     BIGINT,
    -- The kept response: present when response_headers is not NULL (a JSON array of
    -- [name, value] pairs); the body may be absent when it was too large to keep.
    response_headers    TEXT,
    response_body       BYTEA,
    facilitator_request TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

-- Every record but a released or failed one holds its authorization's key and its payment id:
-- at most one such record per key and per id. A released or failed authorization (nothing was
-- charged) may be admitted again.
CREATE UNIQUE INDEX payments_held_key ON payments (payment_key) WHERE state NOT IN ('released', 'failed');
CREATE UNIQUE INDEX payments_held_payment_id ON payments (payment_id)
    WHERE payment_id IS NOT NULL AND state NOT IN ('released', 'failed');

CREATE INDEX payments_key ON payments (payment_key, created_at);
CREATE INDEX payments_payment_id ON payments (payment_id, created_at) WHERE payment_id IS NOT NULL;
CREATE INDEX payments_created ON payments (created_at, id);
CREATE INDEX payments_route ON payments (route, created_at);
CREATE INDEX payments_payer ON payments (payer, created_at);
CREATE INDEX payments_open ON payments (updated_at)
    WHERE state IN ('verified', 'settling', 'unknown');
