-- Bids on one auction that wait together are decided together: one statement, one row lock, one
-- commit. Each request is `place_bid` as it would run alone, in its own subtransaction, in the
-- order given, so one request's refusal undoes only its own work and the next request sees the
-- auction as the previous ones left it.
--
-- The auction is locked first, then every bidder's accounts in id order: the order a release batch
-- takes them in (auctions, then accounts by id), so a batch and a release cannot deadlock over
-- the accounts of two bidders.
--
-- Returns one row per request, in order: `place_bid`'s answer, or the reason (and detail) it was
-- refused with, `insufficient_funds` included. Any other error fails the whole batch, and nothing
-- of it is kept.
CREATE FUNCTION place_bids(p_auction_id BIGINT, p_bidder_ids BIGINT[], p_amounts BIGINT[], p_max_amounts BIGINT[],
                           p_buy_nows BOOLEAN[], p_idempotency_keys TEXT[], p_request_hashes BYTEA[])
RETURNS TABLE (answer JSONB, refusal TEXT, refusal_detail TEXT) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM auctions WHERE id = p_auction_id FOR UPDATE;
    PERFORM FROM accounts WHERE user_id = ANY(p_bidder_ids) ORDER BY id FOR NO KEY UPDATE;
    FOR i IN 1 .. cardinality(p_bidder_ids) LOOP
        answer := NULL;
        refusal := NULL;
        refusal_detail := NULL;
        BEGIN
            answer := place_bid(p_auction_id, p_bidder_ids[i], p_amounts[i], p_max_amounts[i], p_buy_nows[i],
                                p_idempotency_keys[i], p_request_hashes[i]);
        EXCEPTION
            WHEN SQLSTATE 'NB001' THEN
                GET STACKED DIAGNOSTICS refusal = MESSAGE_TEXT, refusal_detail = PG_EXCEPTION_DETAIL;
            WHEN check_violation THEN
                -- A maximum beyond the bidder's available balance, as `place_bid` alone reports it.
                GET STACKED DIAGNOSTICS refusal = CONSTRAINT_NAME;
                IF refusal <> 'accounts_balance_non_negative' THEN
                    RAISE;
                END IF;
                refusal := 'insufficient_funds';
        END;
        RETURN NEXT;
    END LOOP;
END
$$;
