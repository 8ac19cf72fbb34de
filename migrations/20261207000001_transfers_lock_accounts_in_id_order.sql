-- A ledger transfer takes its two accounts in id order, the order every other transaction that
-- takes several accounts uses (a release batch, a settlement, a wallet read for update).
--
-- Its UPDATE ... WHERE id IN (from, to) locked the two rows in the order the scan met them: a bitmap
-- heap scan meets them in the heap's order, and an account's row moves in the heap whenever its
-- balance changes. After a deposit, a bidder's available account lies after their held one, so a
-- bid's hold locked the held account first, while a release batch freeing that bidder's other hold
-- had taken the available one and waited for the held one. PostgreSQL broke the deadlock after a
-- second by failing one of them: a bid answered with an error, or a release retried later.

CREATE OR REPLACE FUNCTION ledger_transfer(p_from BIGINT, p_to BIGINT, p_amount BIGINT, p_kind TEXT,
                                           p_hold_id BIGINT, p_auction_id BIGINT, p_bid_id BIGINT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    moved INTEGER;
    transfer_id BIGINT;
BEGIN
    UPDATE accounts c SET balance = c.balance + CASE WHEN c.id = p_to THEN p_amount ELSE -p_amount END
    FROM (SELECT id FROM accounts WHERE id IN (p_from, p_to) ORDER BY id FOR UPDATE) locked
    WHERE c.id = locked.id;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved <> 2 THEN
        RETURN NULL;
    END IF;
    INSERT INTO transfers (from_account, to_account, amount, kind, hold_id, auction_id, bid_id)
    VALUES (p_from, p_to, p_amount, p_kind, p_hold_id, p_auction_id, p_bid_id)
    RETURNING id INTO transfer_id;
    RETURN transfer_id;
END $$;
