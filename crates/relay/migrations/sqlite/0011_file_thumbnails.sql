-- Thumbnails of raster images (issue 18), made by the relay at upload and
-- kept as a blob of their own beside the file's: `thumbnail_digest` names
-- it in the blob store (NULL when the image could not be decoded within
-- the relay's limits, or is no image). Like `digest`, it is written only
-- once its blob is durable, and the orphan sweep keeps the blobs either
-- column names.
ALTER TABLE files ADD COLUMN thumbnail_digest TEXT;
ALTER TABLE files ADD COLUMN thumbnail_width INTEGER;
ALTER TABLE files ADD COLUMN thumbnail_height INTEGER;
