-- The three SQL-language functions that change rows, rewritten in PL/pgSQL with the same
-- signatures and results. PostgreSQL (before 18) cannot inline a SQL function whose body modifies
-- data, and parses and plans its body again on every call; PL/pgSQL keeps each statement's plan
-- for the session. A profile of the bid engine spent a third of its time in those re-plans
-- (`fmgr_sql`): ledger_transfer and record_bid run once or twice per bid, ledger_transfer again
-- for every release and capture, append_user_event for every notification.

-- The one way money moves: a transfer row and both cached balances. A paying account without
-- enough money fails the balance constraint; NULL when an account does not exist (and then the
-- caller rolls back, as before).
CREATE OR REPLACE FUNCTION ledger_transfer(p_from BIGINT, p_to BIGINT, p_amount BIGINT, p_kind TEXT,
                                           p_hold_id BIGINT, p_auction_id BIGINT, p_bid_id BIGINT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    moved INTEGER;
    transfer_id BIGINT;
BEGIN
    UPDATE accounts SET balance = balance + CASE WHEN id = p_to THEN p_amount ELSE -p_amount END
    WHERE id IN (p_from, p_to);
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved <> 2 THEN
        RETURN NULL;
    END IF;
    INSERT INTO transfers (from_account, to_account, amount, kind, hold_id, auction_id, bid_id)
    VALUES (p_from, p_to, p_amount, p_kind, p_hold_id, p_auction_id, p_bid_id)
    RETURNING id INTO transfer_id;
    RETURN transfer_id;
END $$;

-- Records one visible bid and returns it as the API's Bid.
CREATE OR REPLACE FUNCTION record_bid(p_auction_id BIGINT, p_bidder_id BIGINT, p_amount BIGINT, p_buy_now BOOLEAN,
                                      p_auto BOOLEAN, p_max_amount BIGINT)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    inserted bids%ROWTYPE;
BEGIN
    INSERT INTO bids (auction_id, bidder_id, amount, buy_now, auto, max_amount)
    VALUES (p_auction_id, p_bidder_id, p_amount, p_buy_now, p_auto, p_max_amount)
    RETURNING * INTO inserted;
    RETURN jsonb_build_object('id', inserted.id, 'auction_id', inserted.auction_id, 'bidder_id', inserted.bidder_id,
                              'bidder_username', (SELECT u.username FROM users u WHERE u.id = inserted.bidder_id),
                              'amount', inserted.amount, 'buy_now', inserted.buy_now, 'auto', inserted.auto,
                              'max_amount', inserted.max_amount, 'created_at', inserted.created_at);
END $$;

-- Appends an event to a user's own stream, advancing their gap-free `seq` under their row lock.
CREATE OR REPLACE FUNCTION append_user_event(p_user_id BIGINT, p_type TEXT, p_data JSONB)
RETURNS TABLE (user_id BIGINT, seq BIGINT, type TEXT, data JSONB, at TIMESTAMPTZ) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH bumped AS (UPDATE users SET event_seq = event_seq + 1 WHERE id = p_user_id RETURNING event_seq)
    INSERT INTO user_events (user_id, seq, type, data)
    SELECT p_user_id, bumped.event_seq, p_type, p_data FROM bumped
    RETURNING user_id, seq, type, data, at;
END $$;
