-- Deleting a conversation asks, for each of its files' blobs, whether
-- another row still names it, as a file or as a thumbnail: by index, not
-- by reading every file row.
CREATE INDEX files_thumbnail_digest ON files (thumbnail_digest)
    WHERE thumbnail_digest IS NOT NULL;
