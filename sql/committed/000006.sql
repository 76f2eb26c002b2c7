--! Previous: sha1:b5008dd680949ff92b50796120fb10bd2e93a888
--! Hash: sha1:3e205185a64e20bfe2dbf4dd5b2a344e32133c06

-- Workers register and heartbeat here. A worker whose heartbeat is older than three intervals is
-- dead: any live worker unlocks its jobs (graphile_worker.force_unlock_workers) so others take them.
create table worker_heartbeats (
  worker_id text primary key,
  pid integer not null,
  host text not null,
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now()
);
