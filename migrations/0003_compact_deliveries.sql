-- What a delivery costs in rows written. Messages and deliveries become WITHOUT ROWID tables keyed
-- by their time-ordered ids, so that retention walks the primary key instead of a time index and
-- an insert writes one row instead of three or four. A message's row holds the compact record of
-- its deliveries (pending, and delivered at their first attempt); a delivery gets a row of its own
-- only when it needs a retry or fails. Idempotency keys move onto the message row, under a partial
-- index. Cancelling a subscriber's open deliveries becomes a mark on the subscriber
-- (deactivated_at) that every reader applies, instead of an update of each delivery.
CREATE TABLE `messages_new` (
	`id` text PRIMARY KEY NOT NULL,
	`topic` text NOT NULL,
	`state` text DEFAULT 'queued' NOT NULL,
	`matched` integer,
	`filtered` integer,
	`payload` text,
	`published_at` integer NOT NULL,
	`available_at` integer,
	`adopted` integer DEFAULT false NOT NULL,
	`idempotency_key` text,
	`payload_hash` text,
	`opened_at` integer,
	`delivery_record` text
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `messages_new` (`id`, `topic`, `state`, `matched`, `filtered`, `payload`, `published_at`, `available_at`, `adopted`)
SELECT `id`, `topic`, `state`, `matched`, `filtered`, `payload`, `published_at`, `available_at`, `adopted` FROM `messages`;
--> statement-breakpoint
UPDATE `messages_new` SET `idempotency_key` = k.`key`, `payload_hash` = k.`payload_hash`
FROM `idempotency_keys` AS k
WHERE `messages_new`.`id` = k.`message_id` AND `messages_new`.`topic` = k.`topic`;
--> statement-breakpoint
DROP TABLE `messages`;
--> statement-breakpoint
ALTER TABLE `messages_new` RENAME TO `messages`;
--> statement-breakpoint
CREATE INDEX `messages_topic_key_idx` ON `messages` (`topic`,`idempotency_key`) WHERE `idempotency_key` IS NOT NULL;
--> statement-breakpoint
DROP TABLE `idempotency_keys`;
--> statement-breakpoint
CREATE TABLE `deliveries_new` (
	`message_id` text NOT NULL,
	`subscriber_id` text NOT NULL,
	`state` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_status` integer,
	`last_error` text,
	`last_attempt_at` integer,
	`next_attempt_at` integer,
	`created_at` integer NOT NULL,
	`topic` text,
	PRIMARY KEY(`message_id`, `subscriber_id`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `deliveries_new` (`message_id`, `subscriber_id`, `state`, `attempts`, `last_status`, `last_error`, `last_attempt_at`, `next_attempt_at`, `created_at`)
SELECT `message_id`, `subscriber_id`, `state`, `attempts`, `last_status`, `last_error`, `last_attempt_at`, `next_attempt_at`, `created_at` FROM `deliveries`;
--> statement-breakpoint
DROP TABLE `deliveries`;
--> statement-breakpoint
ALTER TABLE `deliveries_new` RENAME TO `deliveries`;
--> statement-breakpoint
ALTER TABLE `subscribers` ADD `deactivated_at` integer;
--> statement-breakpoint
UPDATE `subscribers` SET `deactivated_at` = `updated_at` WHERE `active` = 0;
--> statement-breakpoint
ALTER TABLE `topics` ADD `recording` text DEFAULT 'full' NOT NULL;
--> statement-breakpoint
CREATE TABLE `idempotency_claims` (
	`day` integer NOT NULL,
	`topic` text NOT NULL,
	`key` text NOT NULL,
	`message_id` text NOT NULL,
	`payload_hash` text NOT NULL,
	`created_at` integer NOT NULL,
	`adopted` integer DEFAULT false NOT NULL,
	PRIMARY KEY(`day`, `topic`, `key`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `topic_counts` (
	`minute` integer NOT NULL,
	`topic` text NOT NULL,
	`delivered` integer DEFAULT 0 NOT NULL,
	`retried` integer DEFAULT 0 NOT NULL,
	`dead` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`minute`, `topic`)
) WITHOUT ROWID;
