CREATE TABLE `dead_letters` (
	`id` text PRIMARY KEY NOT NULL,
	`message_id` text NOT NULL,
	`topic` text NOT NULL,
	`subscriber_id` text NOT NULL,
	`attempts` integer NOT NULL,
	`last_status` integer,
	`last_error` text,
	`published_at` integer NOT NULL,
	`payload` text,
	`dead_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `dead_letters_topic_id_idx` ON `dead_letters` (`topic`,`id`);--> statement-breakpoint
CREATE INDEX `dead_letters_subscriber_id_idx` ON `dead_letters` (`subscriber_id`,`id`);--> statement-breakpoint
CREATE INDEX `dead_letters_dead_at_idx` ON `dead_letters` (`dead_at`);--> statement-breakpoint
CREATE TABLE `deliveries` (
	`message_id` text NOT NULL,
	`subscriber_id` text NOT NULL,
	`state` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_status` integer,
	`last_error` text,
	`last_attempt_at` integer,
	`next_attempt_at` integer,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`message_id`, `subscriber_id`)
);
--> statement-breakpoint
CREATE INDEX `deliveries_subscriber_state_idx` ON `deliveries` (`subscriber_id`,`state`);--> statement-breakpoint
CREATE INDEX `deliveries_created_at_idx` ON `deliveries` (`created_at`);--> statement-breakpoint
CREATE TABLE `idempotency_keys` (
	`topic` text NOT NULL,
	`key` text NOT NULL,
	`message_id` text NOT NULL,
	`payload_hash` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`topic`, `key`)
);
--> statement-breakpoint
CREATE INDEX `idempotency_keys_created_at_idx` ON `idempotency_keys` (`created_at`);--> statement-breakpoint
CREATE TABLE `messages` (
	`id` text PRIMARY KEY NOT NULL,
	`topic` text NOT NULL,
	`state` text DEFAULT 'queued' NOT NULL,
	`matched` integer,
	`filtered` integer,
	`payload` text,
	`published_at` integer NOT NULL,
	`available_at` integer
);
--> statement-breakpoint
CREATE INDEX `messages_published_at_idx` ON `messages` (`published_at`);--> statement-breakpoint
CREATE INDEX `messages_topic_state_idx` ON `messages` (`topic`,`state`);--> statement-breakpoint
CREATE TABLE `subscribers` (
	`id` text PRIMARY KEY NOT NULL,
	`topic` text NOT NULL,
	`url` text NOT NULL,
	`filter` text,
	`method` text DEFAULT 'POST' NOT NULL,
	`headers` text NOT NULL,
	`query` text NOT NULL,
	`timeout_ms` integer NOT NULL,
	`max_attempts` integer NOT NULL,
	`base_delay_seconds` integer NOT NULL,
	`max_delay_seconds` integer NOT NULL,
	`active` integer DEFAULT true NOT NULL,
	`description` text,
	`secret` text NOT NULL,
	`previous_secret` text,
	`previous_secret_expires_at` integer,
	`version` integer DEFAULT 1 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`topic`) REFERENCES `topics`(`name`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `subscribers_topic_id_idx` ON `subscribers` (`topic`,`id`);--> statement-breakpoint
CREATE TABLE `topics` (
	`name` text PRIMARY KEY NOT NULL,
	`description` text,
	`created_at` integer NOT NULL
);
