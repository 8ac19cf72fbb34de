-- Reference data, users and sessions.

CREATE TABLE regions (
    id        BIGINT PRIMARY KEY,
    name      TEXT NOT NULL,
    parent_id BIGINT REFERENCES regions (id),
    -- 0 = city, 1 = district, 2 = neighbourhood.
    depth     SMALLINT NOT NULL CHECK (depth BETWEEN 0 AND 2),
    -- Ids from the root down to this region, itself included: a subtree is `path @> ARRAY[id]`.
    path      BIGINT[] NOT NULL,
    CONSTRAINT regions_parent_depth CHECK ((parent_id IS NULL) = (depth = 0))
);
CREATE INDEX regions_path_idx ON regions USING GIN (path);

CREATE TABLE categories (
    id   BIGINT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL CHECK (username ~ '^[a-z0-9_]{3,30}$'),
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    region_id     BIGINT REFERENCES regions (id),
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE sessions (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Two cities with real districts and neighbourhoods.
INSERT INTO regions (id, name, parent_id, depth, path) VALUES
    (1,   '서울특별시', NULL, 0, '{1}'),
    (11,  '강남구', 1, 1, '{1,11}'),
    (111, '역삼동', 11, 2, '{1,11,111}'),
    (112, '삼성동', 11, 2, '{1,11,112}'),
    (113, '대치동', 11, 2, '{1,11,113}'),
    (114, '압구정동', 11, 2, '{1,11,114}'),
    (12,  '마포구', 1, 1, '{1,12}'),
    (121, '서교동', 12, 2, '{1,12,121}'),
    (122, '합정동', 12, 2, '{1,12,122}'),
    (123, '망원동', 12, 2, '{1,12,123}'),
    (124, '연남동', 12, 2, '{1,12,124}'),
    (13,  '종로구', 1, 1, '{1,13}'),
    (131, '삼청동', 13, 2, '{1,13,131}'),
    (132, '혜화동', 13, 2, '{1,13,132}'),
    (133, '평창동', 13, 2, '{1,13,133}'),
    (14,  '송파구', 1, 1, '{1,14}'),
    (141, '잠실동', 14, 2, '{1,14,141}'),
    (142, '가락동', 14, 2, '{1,14,142}'),
    (143, '문정동', 14, 2, '{1,14,143}'),
    (15,  '관악구', 1, 1, '{1,15}'),
    (151, '신림동', 15, 2, '{1,15,151}'),
    (152, '봉천동', 15, 2, '{1,15,152}'),
    (2,   '부산광역시', NULL, 0, '{2}'),
    (21,  '해운대구', 2, 1, '{2,21}'),
    (211, '우동', 21, 2, '{2,21,211}'),
    (212, '중동', 21, 2, '{2,21,212}'),
    (213, '좌동', 21, 2, '{2,21,213}'),
    (22,  '수영구', 2, 1, '{2,22}'),
    (221, '광안동', 22, 2, '{2,22,221}'),
    (222, '남천동', 22, 2, '{2,22,222}'),
    (23,  '부산진구', 2, 1, '{2,23}'),
    (231, '부전동', 23, 2, '{2,23,231}'),
    (232, '전포동', 23, 2, '{2,23,232}'),
    (3,   '대구광역시', NULL, 0, '{3}'),
    (31,  '수성구', 3, 1, '{3,31}'),
    (311, '범어동', 31, 2, '{3,31,311}'),
    (312, '만촌동', 31, 2, '{3,31,312}');

INSERT INTO categories (id, slug, name) VALUES
    (1,  'electronics', 'Electronics'),
    (2,  'home_appliances', 'Home appliances'),
    (3,  'furniture', 'Furniture & interior'),
    (4,  'kitchen', 'Kitchen'),
    (5,  'clothing', 'Clothing'),
    (6,  'beauty', 'Beauty'),
    (7,  'books', 'Books & tickets'),
    (8,  'sports', 'Sports & outdoors'),
    (9,  'kids', 'Kids & baby'),
    (10, 'games_hobbies', 'Games & hobbies'),
    (11, 'pets', 'Pet supplies'),
    (12, 'other', 'Other');
