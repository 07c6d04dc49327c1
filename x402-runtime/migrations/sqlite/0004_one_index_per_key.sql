-- One index per payment key and per payment id instead of two.
--
-- Each was indexed twice: once, unique among the records holding it (`held = 1`), to refuse a
-- second admission; once with `created_at`, to find a key's records whatever their state. A
-- key is random (a nonce, a hash), so every admission inserted into two random leaf pages,
-- and each commit wrote both pages to the write-ahead log. Measured with the load harness
-- (`x402-bench run --rows paid_secp256k1,paid_sqlite`, three interleaved pairs), one index
-- instead of two took the paid rate with this journal from 0.45-0.47 to 0.49-0.50 of the rate
-- with the in-memory journal. The other indexes grow at their right edge and cost nothing
-- measurable there.
--
-- One index now does both. Its second column is 0 for a record that holds its key, and the
-- record's `seq` (unique) for one that gave it back: two holders of one key collide, released
-- and failed records never do. Lookups by key (or payment id) use the first column; the
-- second only changes when `held` does (a record leaving the held set), as the transitions of
-- migration 0003 set `held` only then. Existing rows satisfy it: the old unique index already
-- allowed one holder per key.

DROP INDEX payments_held_key;
DROP INDEX payments_key;
CREATE UNIQUE INDEX payments_key
    ON payments (payment_key, (CASE WHEN held = 1 THEN 0 ELSE seq END));

DROP INDEX payments_held_payment_id;
DROP INDEX payments_payment_id;
CREATE UNIQUE INDEX payments_payment_id
    ON payments (payment_id, (CASE WHEN held = 1 THEN 0 ELSE seq END))
    WHERE payment_id IS NOT NULL;
