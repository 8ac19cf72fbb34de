-- Title search (`q`) gets an index of its own table, so that bids no longer pay for it. A bid
-- changes the auction's price and bid count, which other indexes cover, so its update of the row is
-- never HOT and PostgreSQL adds the new row version to every index of `auctions`, the trigram index
-- of the title among them: every trigram of the title, again, at every bid (and, once its pending
-- list is full, the bid that finds it so merges the list into the index, holding the auction's row
-- lock meanwhile). No statement changes a title today, so a table of them is written once per
-- auction; the trigger keeps it right should one ever do (bids do not name the column, so it does not
-- fire for them).

CREATE TABLE auction_titles (
    auction_id BIGINT PRIMARY KEY REFERENCES auctions (id) ON DELETE CASCADE,
    title TEXT NOT NULL
);

-- Every way an auction is made (the API, seeds, tests) files its title here.
CREATE FUNCTION file_auction_title() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO auction_titles (auction_id, title) VALUES (NEW.id, NEW.title)
    ON CONFLICT (auction_id) DO UPDATE SET title = EXCLUDED.title;
    RETURN NULL;
END $$;

CREATE TRIGGER auction_titles_filed AFTER INSERT OR UPDATE OF title ON auctions
FOR EACH ROW EXECUTE FUNCTION file_auction_title();

INSERT INTO auction_titles (auction_id, title) SELECT id, title FROM auctions;
CREATE INDEX auction_titles_trgm_idx ON auction_titles USING gin (title gin_trgm_ops);
DROP INDEX auctions_title_trgm_idx;
