-- A visitor's page trail: the pages their browser reported, written only
-- once the visitor has a conversation (before that the relay holds them in
-- memory; a page view alone writes nothing). Only the newest 50 per visitor
-- are kept: every write deletes the older ones. `at` is when the relay
-- received the report (unix milliseconds, UTC).
CREATE TABLE page_views (
    id          INTEGER PRIMARY KEY,
    visitor_id  TEXT NOT NULL REFERENCES visitors (id),
    url         TEXT NOT NULL,
    title       TEXT,
    referrer    TEXT,
    at          INTEGER NOT NULL
);

CREATE INDEX page_views_visitor ON page_views (visitor_id, at, id);

-- An agent's link card ("open this page") is a message whose `link` holds
-- the card as JSON (kefu_protocol::trail::LinkCard); NULL for the others.
ALTER TABLE messages ADD COLUMN link TEXT;
