-- Deleting a conversation (`kefu-relay delete-conversation`, the retention
-- setting) removes its search rows; without this index each deletion would
-- read the whole table.
CREATE INDEX message_search_conversation ON message_search (conversation_id);
