-- Timeline events (claim, transfer, resolve, reopen) are rows of `messages`
-- with author_kind 'system' and internal = 1, so they take a `seq` and come
-- back in order with the messages in history and resume. `event` holds the
-- event as JSON (kefu_protocol::TimelineEvent); NULL for a message.
ALTER TABLE messages ADD COLUMN event TEXT;
