-- A daskflow run store of schema version 4 (daskflow before artifacts), as its
-- schema code created it (sqlite3 .schema of a new store), with one recorded flow
-- run: tests/test_artifacts.py builds a SQLite file from it and opens it.
CREATE TABLE meta (
	"key" VARCHAR(64) NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY ("key")
);
CREATE TABLE flow_runs (
	id VARCHAR(64) NOT NULL,
	flow_name VARCHAR(255) NOT NULL,
	name VARCHAR(255) NOT NULL,
	parameters TEXT NOT NULL,
	parent_flow_run_id VARCHAR(64),
	version VARCHAR(255),
	created DOUBLE NOT NULL,
	heartbeat DOUBLE,
	resumed_from VARCHAR(64),
	entrypoint TEXT,
	scheduled_time DOUBLE,
	cancel_requested DOUBLE,
	state VARCHAR(16) NOT NULL,
	state_time DOUBLE,
	state_message TEXT NOT NULL,
	start_time DOUBLE,
	end_time DOUBLE,
	attempts INTEGER NOT NULL,
	worker VARCHAR(255),
	error_type VARCHAR(255),
	error_message TEXT,
	traceback TEXT,
	result TEXT,
	PRIMARY KEY (id)
);
CREATE INDEX ix_flow_runs_state ON flow_runs (state);
CREATE INDEX ix_flow_runs_flow_name ON flow_runs (flow_name, created);
CREATE INDEX ix_flow_runs_created ON flow_runs (created);
CREATE INDEX ix_flow_runs_parent ON flow_runs (parent_flow_run_id);
CREATE TABLE task_runs (
	seq INTEGER NOT NULL,
	id VARCHAR(64) NOT NULL,
	flow_run_id VARCHAR(64) NOT NULL,
	task_name VARCHAR(255) NOT NULL,
	name VARCHAR(255) NOT NULL,
	map_index INTEGER,
	tags TEXT NOT NULL,
	created DOUBLE NOT NULL,
	state VARCHAR(16) NOT NULL,
	state_time DOUBLE,
	state_message TEXT NOT NULL,
	start_time DOUBLE,
	end_time DOUBLE,
	attempts INTEGER NOT NULL,
	worker VARCHAR(255),
	error_type VARCHAR(255),
	error_message TEXT,
	traceback TEXT,
	result TEXT,
	PRIMARY KEY (seq),
	UNIQUE (id)
);
CREATE INDEX ix_task_runs_flow_seq ON task_runs (flow_run_id, seq);
CREATE INDEX ix_task_runs_flow_task_state ON task_runs (flow_run_id, task_name, state);
CREATE TABLE transitions (
	seq INTEGER NOT NULL,
	flow_run_id VARCHAR(64) NOT NULL,
	task_run_id VARCHAR(64),
	state VARCHAR(16) NOT NULL,
	timestamp DOUBLE NOT NULL,
	attempt INTEGER NOT NULL,
	worker VARCHAR(255),
	message TEXT NOT NULL,
	error_type VARCHAR(255),
	error_message TEXT,
	traceback TEXT,
	details TEXT NOT NULL,
	PRIMARY KEY (seq)
);
CREATE INDEX ix_transitions_run ON transitions (flow_run_id, task_run_id);
CREATE TABLE logs (
	seq INTEGER NOT NULL,
	flow_run_id VARCHAR(64) NOT NULL,
	task_run_id VARCHAR(64),
	timestamp DOUBLE NOT NULL,
	level INTEGER NOT NULL,
	logger VARCHAR(255) NOT NULL,
	message TEXT NOT NULL,
	PRIMARY KEY (seq)
);
CREATE INDEX ix_logs_flow_time ON logs (flow_run_id, timestamp);
CREATE TABLE replayed (
	id VARCHAR(64) NOT NULL,
	replayed DOUBLE NOT NULL,
	PRIMARY KEY (id)
);
INSERT INTO meta VALUES ('schema_version', '4');
INSERT INTO flow_runs (id, flow_name, name, parameters, created, heartbeat, entrypoint, state, state_time, state_message, start_time, end_time, attempts) VALUES ('4444444444444444444444444444aaaa', 'etl', 'etl-old', '{"n": 1}', 1700000000.0, 1700000001.0, 'etl.py:etl', 'COMPLETED', 1700000002.0, '', 1700000000.5, 1700000002.0, 1);
INSERT INTO task_runs (id, flow_run_id, task_name, name, map_index, tags, created, state, state_time, state_message, start_time, end_time, attempts, worker) VALUES ('4444444444444444444444444444bbbb', '4444444444444444444444444444aaaa', 'extract', 'extract-0', NULL, '[]', 1700000000.6, 'COMPLETED', 1700000001.5, '', 1700000000.7, 1700000001.5, 1, 'tcp://127.0.0.1:1');
INSERT INTO logs (flow_run_id, task_run_id, timestamp, level, logger, message) VALUES ('4444444444444444444444444444aaaa', '4444444444444444444444444444bbbb', 1700000001.0, 20, 'daskflow.runs.task_run', 'extracted 3 rows');
