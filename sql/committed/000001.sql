--! Previous: -
--! Hash: sha1:4392bc7a9603dc2aa2849e59125d984fa3116eed

-- The foundation: who this database is, where poison jobs go, and a table the ping task writes.

create table app_info (
  singleton boolean primary key default true check (singleton),
  instance_id uuid not null default gen_random_uuid(),
  installed_at timestamptz not null default now()
);
insert into app_info default values;

comment on table app_info is 'One row: this haat database''s identity, shown by haat db status.';

create table dead_letters (
  id bigint generated always as identity primary key,
  task text not null,
  job_id text not null,
  payload jsonb,
  error text not null,
  recorded_at timestamptz not null default now()
);

comment on table dead_letters is 'Jobs whose payload no schema accepts: recorded once, never retried.';

create table worker_pings (
  job_id text primary key,
  note text not null default '',
  pinged_at timestamptz not null default now()
);
