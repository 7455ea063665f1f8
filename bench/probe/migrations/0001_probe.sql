-- Shaped like the broker's deliveries table, with the same indexes: a row written here costs what
-- a delivery row costs.
CREATE TABLE rows (
  message_id text NOT NULL,
  subscriber_id text NOT NULL,
  state text NOT NULL,
  attempts integer NOT NULL,
  created_at integer NOT NULL,
  PRIMARY KEY (message_id, subscriber_id)
);
CREATE INDEX rows_subscriber_state_idx ON rows (subscriber_id, state);
CREATE INDEX rows_created_at_idx ON rows (created_at);
