-- The bid engine in one statement, and proxy (maximum) bidding.
--
-- A bid or buy-now is one call of `place_bid`: it claims the Idempotency-Key, refuses a bid that is
-- too low from a plain read, locks the auction row, applies the rules, moves the money, records the
-- bids, events and follow-up jobs, and returns everything the response and the watchers need. Run
-- as a single statement, the auction's row lock is held for one round trip at most (none, in fact:
-- the statement commits on the server). The rules here are mirrored, for reading and for property
-- tests, by shared/src/auctions/rules.rs; the two must agree.
--
-- Proxy bidding (eBay's rules). A bidder's maximum is their open hold on the auction: the leader's
-- hold is the leader's maximum, held in full. When a bid arrives from someone else:
--   * its maximum M (max_amount, or the amount itself) beats the leader's maximum L: the newcomer
--     leads at max(amount, min(M, L + increment(L))); the old leader's hold is released;
--   * otherwise the newcomer's bid is recorded at M and the leader answers automatically (auto) at
--     min(L, M + increment(M)); equal maxima: the earlier leads. The newcomer's hold is released.
-- A leader's own new bid raises their maximum (only the difference is held); the visible price
-- does not move, since no one bids against themselves. A maximum that reaches the reserve lifts
-- the price to the reserve. Maxima are never shown to anyone but their owner.

ALTER TABLE bids
    ADD COLUMN auto BOOLEAN NOT NULL DEFAULT false,
    -- The maximum the bidder asked for with this bid (their own requests only; never shown to others).
    ADD COLUMN max_amount BIGINT CHECK (max_amount >= amount AND max_amount <= 1000000000000);

-- An auction as clients see it, with its seller, category, region and ready photos: the one
-- definition behind the API's reads (shared/src/auctions/store.rs) and the bid engine's answer.
CREATE VIEW auction_views AS
SELECT a.id, a.title, a.description, a.seller_id, s.username AS seller_username,
       a.category_id, c.slug AS category_slug, c.name AS category_name,
       a.region_id, r.name AS region_name, r.path AS region_path, a.national, a.condition, a.shipping_payer,
       a.status, a.start_price, a.current_price, a.buy_now_price, a.reserve_price, a.bid_increment, a.bid_count,
       a.leader_id, a.winner_id, a.watchers_count, a.starts_at, a.ends_at, a.soft_close_seconds, a.seq,
       a.created_at,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('id', p.id, 'position', p.position,
                'width', p.width, 'height', p.height, 'thumb_key', p.thumb_key,
                'large_key', p.large_key, 'created_at', p.created_at) ORDER BY p.position, p.id), '[]')
        FROM photos p WHERE p.auction_id = a.id AND p.status = 'ready' AND p.removed_at IS NULL) AS photos
FROM auctions a
JOIN users s ON s.id = a.seller_id
JOIN categories c ON c.id = a.category_id
JOIN regions r ON r.id = a.region_id;

-- The one way money moves: a transfer row and both cached balances. A paying account without
-- enough money fails the balance constraint; NULL when an account does not exist.
CREATE FUNCTION ledger_transfer(p_from BIGINT, p_to BIGINT, p_amount BIGINT, p_kind TEXT,
                                p_hold_id BIGINT, p_auction_id BIGINT, p_bid_id BIGINT)
RETURNS BIGINT LANGUAGE sql AS $$
    WITH moved AS (
        UPDATE accounts SET balance = balance + CASE WHEN id = p_to THEN p_amount ELSE -p_amount END
        WHERE id IN (p_from, p_to) RETURNING id)
    INSERT INTO transfers (from_account, to_account, amount, kind, hold_id, auction_id, bid_id)
    SELECT p_from, p_to, p_amount, p_kind, p_hold_id, p_auction_id, p_bid_id WHERE (SELECT count(*) FROM moved) = 2
    RETURNING id
$$;

-- The bid increment at `price`: the fixed one, or the documented table (rules.rs INCREMENT_TIERS).
CREATE FUNCTION bid_increment_at(price BIGINT, fixed BIGINT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(fixed, CASE WHEN price < 10000 THEN 500 WHEN price < 50000 THEN 1000
                                WHEN price < 100000 THEN 2000 WHEN price < 500000 THEN 5000
                                WHEN price < 1000000 THEN 10000 WHEN price < 5000000 THEN 50000
                                ELSE 100000 END)
$$;

-- The smallest acceptable next bid: the start price first, then the price plus the increment.
CREATE FUNCTION min_next_bid(start_price BIGINT, bid_count INTEGER, current_price BIGINT, fixed BIGINT)
RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN bid_count = 0 THEN start_price ELSE current_price + bid_increment_at(current_price, fixed) END
$$;

-- Refuses the request: the whole statement rolls back. SQLSTATE NB001 carries the reason code
-- (MESSAGE) and, for `too_low`, the minimum (DETAIL); shared/src/auctions/bidding.rs decodes it.
CREATE FUNCTION bid_refused(reason TEXT, detail TEXT DEFAULT '') RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'NB001', MESSAGE = reason, DETAIL = detail;
END
$$;

-- Records one visible bid and returns it as the API's Bid.
CREATE FUNCTION record_bid(p_auction_id BIGINT, p_bidder_id BIGINT, p_amount BIGINT, p_buy_now BOOLEAN,
                           p_auto BOOLEAN, p_max_amount BIGINT)
RETURNS jsonb LANGUAGE sql AS $$
    WITH inserted AS (
        INSERT INTO bids (auction_id, bidder_id, amount, buy_now, auto, max_amount)
        VALUES (p_auction_id, p_bidder_id, p_amount, p_buy_now, p_auto, p_max_amount)
        RETURNING id, auction_id, bidder_id, amount, buy_now, auto, max_amount, created_at)
    SELECT jsonb_build_object('id', i.id, 'auction_id', i.auction_id, 'bidder_id', i.bidder_id,
                              'bidder_username', u.username, 'amount', i.amount, 'buy_now', i.buy_now,
                              'auto', i.auto, 'max_amount', i.max_amount, 'created_at', i.created_at)
    FROM inserted i JOIN users u ON u.id = i.bidder_id
$$;

-- A bid (p_buy_now false: `p_amount`, with maximum `p_max_amount` or none) or a buy-now (p_buy_now
-- true) by `p_bidder_id`. Returns {"receipt": {"bid", "auction"}, "events": [...]}, or the stored
-- receipt and no events when `p_idempotency_key` was used before for the same request.
CREATE FUNCTION place_bid(p_auction_id BIGINT, p_bidder_id BIGINT, p_amount BIGINT, p_max_amount BIGINT,
                          p_buy_now BOOLEAN, p_idempotency_key TEXT, p_request_hash BYTEA)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    a auctions%ROWTYPE;
    at_ TIMESTAMPTZ;
    available_account BIGINT;
    held_account BIGINT;
    own_hold holds%ROWTYPE;
    leader_max BIGINT;
    maximum BIGINT := coalesce(p_max_amount, p_amount);
    -- What the request decides: the visible bids to record (bidder, amount, auto), the leader and
    -- their maximum, and the price.
    new_bidders BIGINT[] := '{}';
    new_amounts BIGINT[] := '{}';
    new_autos BOOLEAN[] := '{}';
    new_leader BIGINT;
    new_leader_max BIGINT;
    price BIGINT;
    ends TIMESTAMPTZ;
    hold_id BIGINT;
    own_total BIGINT;
    own_bid jsonb;
    bid jsonb;
    count_after INTEGER;
    happened jsonb[] := '{}';
    events jsonb;
    receipt jsonb;
    stored RECORD;
BEGIN
    IF p_max_amount < p_amount THEN
        PERFORM bid_refused('max_below_amount');
    END IF;
    IF p_idempotency_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES (p_bidder_id, p_idempotency_key, p_request_hash)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            SELECT request_hash, response INTO stored FROM idempotency_keys
            WHERE user_id = p_bidder_id AND key = p_idempotency_key;
            IF stored.request_hash <> p_request_hash OR stored.response IS NULL THEN
                PERFORM bid_refused('idempotency_key_reused');
            END IF;
            RETURN jsonb_build_object('receipt', stored.response, 'events', '[]'::jsonb);
        END IF;
    END IF;

    -- Too low refused from a plain read, without queueing for the row lock: the minimum never
    -- falls, so a bid too low now is too low at any later moment.
    SELECT * INTO a FROM auctions WHERE id = p_auction_id;
    IF NOT FOUND THEN
        PERFORM bid_refused('not_found');
    END IF;
    IF NOT p_buy_now AND p_amount < min_next_bid(a.start_price, a.bid_count, a.current_price, a.bid_increment) THEN
        PERFORM bid_refused('too_low', min_next_bid(a.start_price, a.bid_count, a.current_price, a.bid_increment)::text);
    END IF;

    SELECT * INTO a FROM auctions WHERE id = p_auction_id FOR UPDATE;
    at_ := clock_timestamp();
    IF a.seller_id = p_bidder_id THEN
        PERFORM bid_refused('own_auction');
    END IF;
    IF NOT (a.status IN ('scheduled', 'active') AND a.starts_at <= at_ AND at_ < a.ends_at) THEN
        PERFORM bid_refused('not_active');
    END IF;
    SELECT max(id) FILTER (WHERE kind = 'available'), max(id) FILTER (WHERE kind = 'held')
    INTO available_account, held_account FROM accounts WHERE user_id = p_bidder_id;
    IF held_account IS NULL THEN
        PERFORM bid_refused('no_wallet');
    END IF;
    -- Read after the lock is granted, each in a statement of its own (a fresh snapshot): holds of
    -- an auction change only under its row lock.
    SELECT * INTO own_hold FROM holds h WHERE h.user_id = p_bidder_id AND h.auction_id = p_auction_id AND h.status = 'open';
    SELECT amount INTO leader_max FROM holds h WHERE h.id = a.leader_hold_id;

    IF p_buy_now THEN
        IF a.buy_now_price IS NULL OR a.current_price >= a.buy_now_price THEN
            PERFORM bid_refused('buy_now_unavailable');
        END IF;
        price := a.buy_now_price;
        new_leader := p_bidder_id;
        new_leader_max := greatest(price, own_hold.amount);
        new_bidders := ARRAY[p_bidder_id];
        new_amounts := ARRAY[price];
        new_autos := ARRAY[false];
    ELSE
        IF p_amount < min_next_bid(a.start_price, a.bid_count, a.current_price, a.bid_increment) THEN
            PERFORM bid_refused('too_low', min_next_bid(a.start_price, a.bid_count, a.current_price, a.bid_increment)::text);
        END IF;
        IF a.leader_id IS NULL THEN
            -- The first bid.
            new_leader := p_bidder_id;
            new_leader_max := maximum;
            price := p_amount;
        ELSIF a.leader_id = p_bidder_id THEN
            -- The leader raises their maximum; the price stays.
            IF maximum <= leader_max THEN
                PERFORM bid_refused('maximum_not_raised', leader_max::text);
            END IF;
            new_leader := p_bidder_id;
            new_leader_max := maximum;
            price := a.current_price;
        ELSIF maximum > leader_max THEN
            -- The newcomer's maximum beats the leader's.
            new_leader := p_bidder_id;
            new_leader_max := maximum;
            price := greatest(p_amount, least(maximum, leader_max + bid_increment_at(leader_max, a.bid_increment)));
        ELSE
            -- The leader's maximum holds: the newcomer bids up to theirs, the leader answers.
            new_leader := a.leader_id;
            new_leader_max := leader_max;
            price := least(leader_max, maximum + bid_increment_at(maximum, a.bid_increment));
            new_bidders := ARRAY[p_bidder_id];
            new_amounts := ARRAY[maximum];
            new_autos := ARRAY[false];
        END IF;
        IF a.reserve_price IS NOT NULL AND new_leader_max >= a.reserve_price AND price < a.reserve_price THEN
            price := a.reserve_price;
        END IF;
        IF price <> a.current_price OR a.leader_id IS DISTINCT FROM new_leader OR a.bid_count = 0 THEN
            new_bidders := new_bidders || new_leader;
            new_amounts := new_amounts || price;
            new_autos := new_autos || (new_leader <> p_bidder_id);
        END IF;
    END IF;

    -- Visible bids, in order; the requester's own is the receipt's.
    count_after := a.bid_count;
    ends := a.ends_at;
    IF cardinality(new_bidders) > 0 AND a.soft_close_seconds > 0
       AND a.ends_at - at_ < make_interval(secs => a.soft_close_seconds) THEN
        ends := at_ + make_interval(secs => a.soft_close_seconds);
    END IF;
    FOR i IN 1 .. cardinality(new_bidders) LOOP
        bid := record_bid(p_auction_id, new_bidders[i], new_amounts[i], p_buy_now, new_autos[i],
                          CASE WHEN new_bidders[i] = p_bidder_id AND NOT new_autos[i] THEN p_max_amount END);
        count_after := count_after + 1;
        IF new_bidders[i] = p_bidder_id AND own_bid IS NULL THEN
            own_bid := bid;
        END IF;
        happened := happened || jsonb_build_object('type', 'bid_placed', 'data', jsonb_build_object(
            'bid_id', bid -> 'id', 'amount', new_amounts[i],
            'bidder', jsonb_build_object('id', bid -> 'bidder_id', 'username', bid -> 'bidder_username'),
            'buy_now', p_buy_now, 'auto', new_autos[i], 'bid_count', count_after,
            'min_next_bid', min_next_bid(a.start_price, count_after, new_amounts[i], a.bid_increment),
            'ends_at', ends));
    END LOOP;
    IF ends <> a.ends_at THEN
        happened := happened || jsonb_build_object('type', 'auction_extended', 'data', jsonb_build_object('ends_at', ends));
    END IF;
    IF p_buy_now THEN
        happened := happened || jsonb_build_object('type', 'auction_closed', 'data',
            jsonb_build_object('winner_id', p_bidder_id, 'price', price, 'buy_now', true));
    END IF;

    -- The requester's maximum is held in full (only what their open hold lacks moves); a buyer
    -- holds the buy-now price.
    own_total := CASE WHEN new_leader = p_bidder_id THEN greatest(maximum, price) ELSE maximum END;
    IF own_hold.id IS NULL THEN
        INSERT INTO holds (user_id, auction_id, amount) VALUES (p_bidder_id, p_auction_id, own_total)
        RETURNING id INTO hold_id;
        PERFORM ledger_transfer(available_account, held_account, own_total, 'hold', hold_id,
                                p_auction_id, (own_bid ->> 'id')::bigint);
    ELSE
        hold_id := own_hold.id;
        IF own_total > own_hold.amount THEN
            UPDATE holds SET amount = own_total WHERE id = hold_id;
            PERFORM ledger_transfer(available_account, held_account, own_total - own_hold.amount,
                                    'hold', hold_id, p_auction_id, (own_bid ->> 'id')::bigint);
        END IF;
    END IF;
    -- Whichever open hold no longer leads is released by the release queue.
    IF new_leader <> p_bidder_id THEN
        INSERT INTO outbox (kind, payload) VALUES ('release_hold', jsonb_build_object('hold_id', hold_id));
    ELSIF a.leader_hold_id IS NOT NULL AND a.leader_hold_id <> hold_id THEN
        INSERT INTO outbox (kind, payload) VALUES ('release_hold', jsonb_build_object('hold_id', a.leader_hold_id));
    END IF;

    UPDATE auctions SET current_price = price, leader_id = new_leader,
                        leader_hold_id = CASE WHEN new_leader = p_bidder_id THEN hold_id ELSE leader_hold_id END,
                        bid_count = count_after, ends_at = ends, seq = seq + cardinality(happened),
                        status = CASE WHEN p_buy_now THEN 'closed' WHEN cardinality(new_bidders) > 0 THEN 'active'
                                      ELSE status END,
                        winner_id = CASE WHEN p_buy_now THEN p_bidder_id END,
                        ended_at = CASE WHEN p_buy_now THEN at_ END
    WHERE id = p_auction_id;
    IF p_buy_now THEN
        INSERT INTO outbox (kind, payload) VALUES ('settle_auction', jsonb_build_object('auction_id', p_auction_id));
    END IF;

    WITH inserted AS (
        INSERT INTO auction_events (auction_id, seq, type, data)
        SELECT p_auction_id, a.seq + e.n, e.event ->> 'type', e.event -> 'data'
        FROM unnest(happened) WITH ORDINALITY AS e(event, n)
        RETURNING auction_id, seq, type, data, at)
    SELECT coalesce(jsonb_agg(jsonb_build_object('type', type, 'auction_id', auction_id, 'seq', seq, 'at', at,
                                                 'data', data) ORDER BY seq), '[]')
    INTO events FROM inserted;

    -- A leader who only raised their maximum made no visible bid: the receipt shows their standing
    -- one, with the new maximum (theirs alone to see).
    IF own_bid IS NULL THEN
        SELECT jsonb_build_object('id', b.id, 'auction_id', b.auction_id, 'bidder_id', b.bidder_id,
                                  'bidder_username', u.username, 'amount', b.amount, 'buy_now', b.buy_now,
                                  'auto', b.auto, 'max_amount', maximum, 'created_at', b.created_at)
        INTO own_bid FROM bids b JOIN users u ON u.id = b.bidder_id
        WHERE b.auction_id = p_auction_id AND b.bidder_id = p_bidder_id ORDER BY b.id DESC LIMIT 1;
    END IF;
    SELECT jsonb_build_object('bid', own_bid, 'auction', to_jsonb(v) - 'region_path')
    INTO receipt FROM auction_views v WHERE v.id = p_auction_id;
    IF p_idempotency_key IS NOT NULL THEN
        UPDATE idempotency_keys SET response = receipt WHERE user_id = p_bidder_id AND key = p_idempotency_key;
    END IF;
    RETURN jsonb_build_object('receipt', receipt, 'events', events);
END
$$;

-- The release_hold job (shared/src/auctions/release.rs) in one statement: releases hold `p_hold_id`
-- unless it leads its auction, which is still live or awaiting settlement. It locks the auction row
-- first, the order every bid takes, so it cannot deadlock with one, and ends the hold with the
-- conditional update, so a second delivery moves nothing. A hold released while its auction still
-- runs was outbid: its bidder is notified (once; the email follows through the outbox).
-- Returns 'released', 'already_ended', 'still_leading' or 'missing'.
CREATE FUNCTION release_hold(p_hold_id BIGINT) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    auction RECORD;
    hold holds%ROWTYPE;
    notification BIGINT;
BEGIN
    SELECT a.id, a.leader_hold_id, a.status IN ('scheduled', 'active', 'closed') AS running INTO auction
    FROM auctions a WHERE a.id = (SELECT h.auction_id FROM holds h WHERE h.id = p_hold_id) FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'missing';
    END IF;
    IF auction.running AND auction.leader_hold_id = p_hold_id THEN
        RETURN 'still_leading';
    END IF;
    UPDATE holds h SET status = 'released', ended_at = now() WHERE h.id = p_hold_id AND h.status = 'open'
    RETURNING * INTO hold;
    IF NOT FOUND THEN
        RETURN 'already_ended';
    END IF;
    PERFORM ledger_transfer(
        (SELECT id FROM accounts WHERE user_id = hold.user_id AND kind = 'held'),
        (SELECT id FROM accounts WHERE user_id = hold.user_id AND kind = 'available'),
        hold.amount, 'release', hold.id, hold.auction_id, NULL);
    IF auction.running THEN
        INSERT INTO notifications (kind, auction_id, recipient_id) VALUES ('outbid', auction.id, hold.user_id)
        ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING RETURNING id INTO notification;
        IF notification IS NOT NULL THEN
            INSERT INTO outbox (kind, payload) VALUES ('send_email', jsonb_build_object('notification_id', notification));
        END IF;
    END IF;
    RETURN 'released';
END $$;
