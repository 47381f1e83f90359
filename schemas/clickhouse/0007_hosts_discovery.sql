-- What host lists filter on since the discovery domain: the cloud provider
-- the host runs on ("" until known) and whether it was deregistered (the
-- host keeps its row, deregistered = 1, until it registers again).
ALTER TABLE {database}.hosts ADD COLUMN IF NOT EXISTS provider String;
ALTER TABLE {database}.hosts ADD COLUMN IF NOT EXISTS deregistered UInt8;
