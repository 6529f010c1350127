-- Reference digests kept at write time (spec/performance.md, "no-op"; spec/rematch.md rule 16).
--
-- Every rematch, a no-op included, compared its slice's recorded reference digests with digests it
-- computed over the whole reference tables. With the fixtures' 84 locations that cost nothing; a
-- table of 10,000 locations took 15 to 24 ms per digest, more than a no-op of 100,000 entries may
-- take in all. The digests are now computed when reference data change, by statement triggers, and
-- read by the rematch in one index probe. They are the same md5 expressions as before, so the states
-- recorded before this migration stay valid.
--
-- A trigger first takes a transaction lock per kind: two transactions writing the same kind take
-- turns, and the second computes its digest in a statement that starts after the first committed
-- (READ COMMITTED), so the digest it leaves covers both writes.
CREATE TABLE reference_digests (
  kind text NOT NULL CHECK (kind IN ('locations', 'rooms', 'rates')),
  -- The rates' year; 0 for the kinds that have none.
  year integer NOT NULL,
  digest text NOT NULL,
  PRIMARY KEY (kind, year)
);

-- Computes the digest of one kind again, under that kind's lock.
CREATE FUNCTION rematch_refresh_reference_digest(which text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF which = 'locations' THEN
    PERFORM pg_advisory_xact_lock(310001, 1);
    INSERT INTO reference_digests (kind, year, digest)
    SELECT 'locations', 0, md5(coalesce(string_agg(row(natural_key, transport_mode, name,
      iata_code, country_code, latitude, longitude)::text, e'\n' ORDER BY natural_key), ''))
    FROM locations
    ON CONFLICT (kind, year) DO UPDATE SET digest = excluded.digest;
  ELSIF which = 'rooms' THEN
    PERFORM pg_advisory_xact_lock(310001, 2);
    INSERT INTO reference_digests (kind, year, digest)
    SELECT 'rooms', 0, md5(coalesce(string_agg(row(building_name, room_name, room_type,
      room_surface_square_meter)::text, e'\n' ORDER BY building_name, room_name), ''))
    FROM building_rooms
    ON CONFLICT (kind, year) DO UPDATE SET digest = excluded.digest;
  ELSIF which = 'rates' THEN
    -- Every year again (a few currencies each): a year left without rates loses its row, and a
    -- reader takes the digest of no rows for it.
    PERFORM pg_advisory_xact_lock(310001, 3);
    DELETE FROM reference_digests WHERE kind = 'rates';
    INSERT INTO reference_digests (kind, year, digest)
    SELECT 'rates', year, md5(coalesce(string_agg(row(currency, eur_per_unit)::text, e'\n'
      ORDER BY currency), ''))
    FROM exchange_rates GROUP BY year;
  ELSE
    RAISE EXCEPTION 'unknown reference kind %', which;
  END IF;
END $$;

CREATE FUNCTION rematch_reference_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM rematch_refresh_reference_digest(TG_ARGV[0]);
  RETURN NULL;
END $$;

CREATE TRIGGER locations_digest AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON locations
  FOR EACH STATEMENT EXECUTE FUNCTION rematch_reference_changed('locations');
CREATE TRIGGER building_rooms_digest AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON building_rooms
  FOR EACH STATEMENT EXECUTE FUNCTION rematch_reference_changed('rooms');
CREATE TRIGGER exchange_rates_digest AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON exchange_rates
  FOR EACH STATEMENT EXECUTE FUNCTION rematch_reference_changed('rates');

-- The digests of the data already there.
SELECT rematch_refresh_reference_digest(kind) FROM unnest(ARRAY['locations', 'rooms', 'rates']) AS k(kind);
