-- Local development only (docker-compose.yml): one database per city, as each
-- city's deployment has its own PostgreSQL database in production.
-- Runs once, as the POSTGRES_USER (liandong), when the data volume is empty.
-- Idempotent (\gexec only creates what is missing) so it can be re-run by hand:
--   docker compose exec postgres psql -U liandong -d postgres -f /docker-entrypoint-initdb.d/init.sql
SELECT format('CREATE DATABASE %I', db)
FROM unnest(ARRAY[
    'liandong_taicang',
    'liandong_kunshan',
    'liandong_changshu',
    'liandong_jiading',
    'liandong_baoshan'
]) AS db
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = db)
\gexec
