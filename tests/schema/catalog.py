"""What a database's schema is made of, read from the catalog, to compare two.

Names, columns (types, defaults, generated expressions, order), indexes,
constraints, composite types, functions, views, table options and the
library's tracking rows: two databases with equal catalogs behave alike.
Projection builds (``rm_*`` schemas, named at random per build) are left
out: they are created at run time, not by the migrations.
"""

from __future__ import annotations

from typing import Any

import psycopg

# Schemas of the server itself, and the random ones of projection builds.
_USER_SCHEMAS = """
    n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'
    AND n.nspname NOT LIKE 'rm\\_%'
"""

QUERIES = {
    "schemas": f"""
        SELECT n.nspname FROM pg_namespace n WHERE {_USER_SCHEMAS} ORDER BY 1
    """,
    "relations": f"""
        SELECT n.nspname, c.relname, c.relkind::text,
               coalesce(array_to_string(c.reloptions, ','), '')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {_USER_SCHEMAS} AND c.relkind IN ('r', 'v', 'm', 'S', 'c', 'p')
         ORDER BY 1, 2
    """,
    "columns": f"""
        SELECT n.nspname, c.relname, a.attnum, a.attname,
               format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attgenerated::text
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE {_USER_SCHEMAS} AND a.attnum > 0 AND NOT a.attisdropped
           AND c.relkind IN ('r', 'v', 'm', 'c', 'p')
         ORDER BY 1, 2, 3
    """,
    "indexes": f"""
        SELECT n.nspname, i.tablename, i.indexname, i.indexdef
          FROM pg_indexes i JOIN pg_namespace n ON n.nspname = i.schemaname
         WHERE {_USER_SCHEMAS} ORDER BY 1, 2, 3
    """,
    "constraints": f"""
        SELECT n.nspname, c.relname, k.conname, k.contype::text,
               pg_get_constraintdef(k.oid)
          FROM pg_constraint k
          JOIN pg_class c ON c.oid = k.conrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {_USER_SCHEMAS} ORDER BY 1, 2, 3
    """,
    "functions": f"""
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
               pg_get_functiondef(p.oid)
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE {_USER_SCHEMAS} ORDER BY 1, 2, 3
    """,
    "views": f"""
        SELECT n.nspname, v.viewname, v.definition
          FROM pg_views v JOIN pg_namespace n ON n.nspname = v.schemaname
         WHERE {_USER_SCHEMAS} ORDER BY 1, 2
    """,
    "triggers": f"""
        SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid)
          FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {_USER_SCHEMAS} AND NOT t.tgisinternal ORDER BY 1, 2, 3
    """,
}


def schema_catalog(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The schema's objects by kind, each a sorted list of rows."""
    with psycopg.connect(database_url) as conn:
        catalog = {
            kind: [tuple(row) for row in conn.execute(query).fetchall()]
            for kind, query in QUERIES.items()
        }
        present = conn.execute("SELECT to_regclass('public.relay_tracking')")
        if (row := present.fetchone()) is not None and row[0] is not None:
            # The library's marker row of a single-row tracking table.
            catalog["relay_tracking"] = [
                tuple(r)
                for r in conn.execute(
                    "SELECT application_name, notification_id FROM relay_tracking"
                    " WHERE application_name = '__migration__'"
                ).fetchall()
            ]
    return catalog


def catalog_differences(
    left: dict[str, list[tuple[Any, ...]]], right: dict[str, list[tuple[Any, ...]]]
) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    """Per kind, the rows only one side has (empty: the same schema)."""
    differences = {}
    for kind in sorted(set(left) | set(right)):
        a, b = set(left.get(kind, [])), set(right.get(kind, []))
        if a != b:
            differences[kind] = {
                "only_left": sorted(a - b, key=repr),
                "only_right": sorted(b - a, key=repr),
            }
    return differences
