-- Per table of tradepipe's schemas: exact row count and an order-independent checksum of the
-- rows' text (sum of the first 60 bits of each row's md5), computed without sorting the table.
-- Partitions are counted through their parent. Used by scripts/backup (inside the snapshot it
-- dumps) and scripts/restore (to verify the restored database against the manifest).
SELECT 'table ' || t || ' ' || (x->>'n') || ' ' || coalesce(x->>'h', '0')
FROM (
  SELECT format('%I.%I', n.nspname, c.relname) AS t,
         (xpath('/row/j/text()', query_to_xml(format(
            'SELECT json_build_object(''n'', count(*), ''h'',
                    sum((''x'' || substr(md5(r::text), 1, 15))::bit(60)::bigint))::text AS j
             FROM %I.%I r', n.nspname, c.relname), false, true, '')))[1]::text::json AS x
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname IN ('public', 'auth', 'trading', 'content')
    AND c.relkind IN ('r', 'p') AND NOT c.relispartition
) s ORDER BY t;
