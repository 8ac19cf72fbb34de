-- 200 bidders with 10,000,000 KRW each, 100 unsold auctions, and a 1,000 KRW hold by every bidder on
-- every auction: 20,000 open holds, each with its hold transfer, balances to match.
INSERT INTO users (username, email, password_hash)
SELECT 'burst' || i, 'burst' || i || '@example.com', 'not-a-login-hash' FROM generate_series(0, 200) i;
INSERT INTO accounts (user_id, kind) SELECT id, k FROM users, unnest(ARRAY['available', 'held']) k WHERE username LIKE 'burst%';
INSERT INTO transfers (from_account, to_account, amount, kind)
SELECT 1, a.id, 10000000, 'deposit' FROM accounts a JOIN users u ON u.id = a.user_id
WHERE a.kind = 'available' AND u.username <> 'burst0';
UPDATE accounts SET balance = balance - (SELECT count(*) FROM users WHERE username LIKE 'burst%' AND username <> 'burst0') * 10000000 WHERE id = 1;
UPDATE accounts a SET balance = 10000000 FROM users u WHERE u.id = a.user_id AND a.kind = 'available' AND u.username LIKE 'burst%' AND u.username <> 'burst0';
INSERT INTO auctions (seller_id, title, description, category_id, region_id, national, condition, shipping_payer,
                      start_price, current_price, status, starts_at, ends_at, soft_close_seconds, ended_at)
SELECT (SELECT id FROM users WHERE username = 'burst0'), 'Burst ' || i, '', 1, 111, FALSE, 'good', 'buyer',
       1000, 1000, 'unsold', now() - interval '2 hours', now() - interval '1 hour', 0, now()
FROM generate_series(1, 100) i;
INSERT INTO holds (user_id, auction_id, amount)
SELECT u.id, a.id, 1000 FROM users u CROSS JOIN auctions a WHERE u.username LIKE 'burst%' AND u.username <> 'burst0' AND a.title LIKE 'Burst %';
INSERT INTO transfers (from_account, to_account, amount, kind, hold_id, auction_id)
SELECT av.id, he.id, h.amount, 'hold', h.id, h.auction_id
FROM holds h
JOIN accounts av ON av.user_id = h.user_id AND av.kind = 'available'
JOIN accounts he ON he.user_id = h.user_id AND he.kind = 'held';
UPDATE accounts a SET balance = balance - 100 * 1000 FROM users u WHERE u.id = a.user_id AND a.kind = 'available' AND u.username LIKE 'burst%' AND u.username <> 'burst0';
UPDATE accounts a SET balance = 100 * 1000 FROM users u WHERE u.id = a.user_id AND a.kind = 'held' AND u.username LIKE 'burst%' AND u.username <> 'burst0';
