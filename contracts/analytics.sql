-- The analytics database (PostgreSQL): hourly sensor rows and valve movements, as the devices report them.
-- Source of truth for eval_runner.contracts.ANALYTICS_DDL (the dataset build reads these tables) and
-- fieldsim.contracts.ANALYTICS_DDL (the simulator creates and fills them); tests compare both to this file
-- with comments and whitespace removed. An hour with no sensor_logs row is an hour the device was offline.
-- Counters are cumulative since the battery was installed and reset to 0 at a battery swap.
CREATE TABLE IF NOT EXISTS sensor_logs (
    device_id            text        NOT NULL,
    ts                   timestamptz NOT NULL,
    battery_mv           integer,              -- NULL when the reading failed; quantised by the device
    temperature_c        real,
    radio_tx             integer     NOT NULL, -- messages sent in the hour
    radio_rx             integer     NOT NULL,
    rssi_dbm             smallint,
    valve_travel_total   real        NOT NULL, -- cumulative valve travel in % since battery install
    PRIMARY KEY (device_id, ts)
);
CREATE TABLE IF NOT EXISTS valve_movements (
    device_id            text        NOT NULL,
    ts                   timestamptz NOT NULL,
    travel_pct           real        NOT NULL, -- absolute travel of this movement, % of full stroke
    motor_ms             integer     NOT NULL, -- motor run time of this movement
    PRIMARY KEY (device_id, ts)
);
