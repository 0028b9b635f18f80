"""Read plans, pinned to mongoeco 4.11.0, that answer FieldSync's query shapes from an index
on the embedded SQLite engine (``docs/query-shapes.md`` lists the shapes).

mongoeco builds a physical SQLite index ``ON documents (db_name, coll_name, type(f1),
value(f1), type(f2), value(f2), ...)`` for every ordered index, but its planner reaches it
only for some filters: a range followed by a sort on the same field, ``{_id: {$in}}``,
and equality on a compound index's fields all scan the collection (and a sort first
counts every row's type, a scan repeated after each write). This patch plans these
shapes itself, in SQL that searches that physical index:

- ``{_id: v}`` / ``{_id: {$in: [...]}}`` with ``str`` ids: the primary key, by storage key
  (for a ``str`` the storage key is type-exact, see ``embedded_patches``);
- equalities (``v`` or ``{$in: [...]}``) on an index's leading fields, then at most one
  range (``$gt``/``$gte``/``$lt``/``$lte``) on the next field, optionally sorted on that
  field ascending, with a limit: values ``str``, or ``int`` for the range field;
- equality on an index's leading fields sorted ascending on the next one with no range
  (a GridFS file's chunks, ``{files_id}`` sorted by ``n``), when every document under
  the equality holds a plain number there (a probe checks; else mongoeco plans it);
- equality on a field with a single-field (multikey) index, whose documents may hold
  arrays: mongoeco's multikey entries find the arrays holding the value, the physical
  index the scalars equal to it, without sort or limit;
- ``$or`` of those, without sort or limit.

The collection is named in the SQL as literals (``db_name = 'fieldsync' AND coll_name = ...``),
as each physical index's ``WHERE`` names it (``embedded_partial_indexes``): SQLite re-prepares a
statement at every run when a bound value decides whether a partial index applies (~150-200 µs a
statement with FieldSync's ~40 indexes, against ~10 µs to run one of these probes), and a
literal namespace is decided once, when the statement is prepared and cached.

A plan that is exact and has one branch also projects in SQL when the find keeps top-level fields
(``{refs: 1}``, ``{_id: 0, owner: 1}``): each row is those members of the stored JSON, copied as they
are stored, so mongoeco decodes a small document instead of the whole one (a rep's outlet scope
reads ``refs`` of every record the rep owns), then projects it again to the same result.

Exactness: each returned row is checked in SQL to hold the queried JSON type at every
queried field, so it matches as MongoDB would match a scalar. MongoDB also matches an
array holding the value, and a tagged value (a date, an ``Int64``) compares by its own
rules; before using an index the plan probes it (two indexed lookups per field) and
falls back to mongoeco's own plan if any document under the queried prefix holds an
array or a tagged value at a queried field. Anything else also goes to mongoeco unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.store.embedded_partial_indexes import namespace_sql
from service.store.embedded_pin import apply_once

_ORIGINALS: dict[str, Any] = {}
_INT64 = 2**63
_RANGES = {"GreaterThanCondition": ">", "GreaterThanOrEqualCondition": ">=", "LessThanCondition": "<"}
_RANGES["LessThanOrEqualCondition"] = "<="


@dataclass(frozen=True)
class PlainTerms:
    equal: dict[str, tuple[Any, ...]]  # field -> accepted values (one for `v`, several for `$in`)
    ranges: dict[str, list[tuple[str, Any]]]  # field -> [(operator, value)]


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch_sqlite)


def _plain(value: Any, *, numeric: bool) -> bool:
    if type(value) is str:
        return "\x00" not in value
    return numeric and type(value) is int and -_INT64 <= value < _INT64


def plain_terms(plan: Any, qp: Any) -> PlainTerms | None:
    """The plan as equalities and ranges on top-level fields, or None for any other shape."""
    clauses = plan.clauses if isinstance(plan, qp.AndCondition) else (plan,)
    equal: dict[str, tuple[Any, ...]] = {}
    ranges: dict[str, list[tuple[str, Any]]] = {}
    for clause in clauses:
        field = getattr(clause, "field", None)
        if not isinstance(field, str) or "." in field or field.startswith("$") or field in equal:
            return None
        if isinstance(clause, qp.EqualsCondition) and not clause.null_matches_undefined:
            values: tuple[Any, ...] = (clause.value,)
        elif isinstance(clause, qp.InCondition) and not clause.null_matches_undefined and clause.values:
            values = tuple(clause.values)
        elif type(clause).__name__ in _RANGES and _plain(clause.value, numeric=True):
            ranges.setdefault(field, []).append((_RANGES[type(clause).__name__], clause.value))
            continue
        else:
            return None
        if field in ranges or not all(_plain(v, numeric=False) for v in values):
            return None
        equal[field] = values
    if len(ranges) > 1 or any(len({type(v) for _, v in r}) > 1 for r in ranges.values()):
        return None
    return PlainTerms(equal, ranges)


def _placeholders(values: tuple[Any, ...]) -> str:
    return ", ".join("?" * len(values))


class _Planner:
    """Builds index SQL for one collection of one engine."""

    def __init__(self, engine: Any, db_name: str, coll_name: str) -> None:
        from mongoeco.engines.sqlite_query import index_expressions_sql, json_path_for_field

        self.engine, self.db_name, self.coll_name = engine, db_name, coll_name
        self._expressions = index_expressions_sql
        self._path = json_path_for_field
        self.conn = engine._require_connection()
        self.namespace = namespace_sql(db_name, coll_name)

    def branch(self, plan: Any, qp: Any, sort: Any) -> tuple[str, list[Any], bool, bool] | None:
        """(WHERE clause, params, sorted by the index, exact) for one branch, or None.

        Not exact: the rows are a superset (the index covers only some terms); the
        caller then has mongoeco's matcher check the whole filter on each row."""
        terms = plain_terms(plan, qp)
        if terms is None:
            return None
        ids = terms.equal.get("_id")
        if ids is not None:
            if sort:
                return None
            keys = tuple(self.engine._storage_key(v) for v in ids)
            exact = len(terms.equal) == 1 and not terms.ranges
            return f"storage_key IN ({_placeholders(keys)})", list(keys), False, exact
        if not sort and (elements := self._array_elements(terms)) is not None:
            return elements
        range_field = next(iter(terms.ranges), None)
        sort_field = None
        if sort:
            if len(sort) != 1 or sort[0][1] != 1 or range_field not in (None, sort[0][0]):
                return None
            sort_field = sort[0][0]
            if any(len(values) > 1 for values in terms.equal.values()):
                return None  # several prefixes: rows would not come in index order
        found = self._index(terms, sort_field)
        if found is None:
            return None
        prefix, last = found
        where: list[str] = []
        params: list[Any] = []
        for field in prefix:
            type_sql, value_sql = self._expressions(field)
            values = terms.equal[field]
            where.append(f"{type_sql} = '' AND {value_sql} IN ({_placeholders(values)})")
            where.append(f"json_type(document, '{self._path(field)}') = 'text'")
            params += values
        if last is not None and last in terms.ranges:
            type_sql, value_sql = self._expressions(last)
            bounds = terms.ranges[last]
            numeric = type(bounds[0][1]) is int
            where.append(f"{type_sql} = ''")
            for operator, value in bounds:
                where.append(f"{value_sql} {operator} ?")
                params.append(value)
            # In SQLite numbers sort before text: bound the range to one storage class.
            where.append(f"{value_sql} < ''" if numeric else f"{value_sql} >= ''")
            kinds = "'integer', 'real'" if numeric else "'text'"
            where.append(f"json_type(document, '{self._path(last)}') IN ({kinds})")
        elif last is not None:  # sorted, no range: in index order when every row there holds a plain number
            if not self._numbers_only(prefix, last, terms):
                return None
            type_sql, _ = self._expressions(last)
            where.append(f"{type_sql} = ''")
        covered = set(prefix) | ({last} & set(terms.ranges))  # a sort-only field is no term
        exact = covered == set(terms.equal) | set(terms.ranges)
        if not self._scalar_only([*prefix, *([last] if last else [])], terms):
            return None
        return " AND ".join(where), params, sort_field is not None, exact

    def _array_elements(self, terms: PlainTerms) -> tuple[str, list[Any], bool, bool] | None:
        """Equality on a field with a single-field multikey index (it may hold arrays): the
        documents whose array holds the value (mongoeco's multikey entries) or whose scalar
        equals it (the physical index); a superset, checked by mongoeco's matcher."""
        for index in self.engine._load_indexes(self.db_name, self.coll_name):
            field = index["fields"][0]
            if len(index["fields"]) != 1 or not index.get("multikey") or field not in terms.equal:
                continue
            if index.get("sparse") or index.get("partial_filter_expression") is not None or index.get("collation"):
                continue
            collection_id = self.engine._lookup_collection_id(self.conn, self.db_name, self.coll_name)
            if collection_id is None:
                return None
            values = terms.equal[field]
            type_sql, value_sql = self._expressions(field)
            keys = (
                "SELECT storage_key FROM multikey_entries WHERE collection_id = ? AND index_name = ?"
                f" AND element_type = 'string' AND element_key IN ({_placeholders(values)})"
                f" UNION SELECT storage_key FROM documents WHERE {self.namespace}"
                f" AND {type_sql} = '' AND {value_sql} IN ({_placeholders(values)})"
            )
            params = [collection_id, index["name"], *values, *values]
            return f"storage_key IN ({keys})", params, False, False
        return None

    def _index(self, terms: PlainTerms, sort_field: str | None) -> tuple[list[str], str | None] | None:
        """The index serving the most terms: (equality prefix, range/sort field after it)."""
        best: tuple[list[str], str | None] | None = None
        range_field = sort_field or next(iter(terms.ranges), None)
        for index in self.engine._load_indexes(self.db_name, self.coll_name):
            if (
                not index.get("physical_name")
                or index.get("sparse")
                or index.get("hidden")
                or index.get("collation") is not None
                or index.get("partial_filter_expression") is not None
                or any(direction != 1 for _, direction in index["key"])
            ):
                continue
            fields = list(index["fields"])
            prefix: list[str] = []
            while len(prefix) < len(fields) and fields[len(prefix)] in terms.equal:
                prefix.append(fields[len(prefix)])
            after = fields[len(prefix)] if len(prefix) < len(fields) else None
            last = range_field if range_field is not None and after == range_field else None
            if sort_field is not None and last is None:
                continue
            if not prefix and last is None:
                continue
            if best is None or len(prefix) + (last is not None) > len(best[0]) + (best[1] is not None):
                best = (prefix, last)
        return best

    def _numbers_only(self, prefix: list[str], field: str, terms: PlainTerms) -> bool:
        """Every document under the equality prefix holds a plain (untagged) number at ``field``:
        then the index holds all of them, in MongoDB's order (a GridFS file's chunks by ``n``)."""
        where, params = [self.namespace], list[Any]()
        for equal in prefix:
            type_sql, value_sql = self._expressions(equal)
            where.append(f"{type_sql} = '' AND {value_sql} IN ({_placeholders(terms.equal[equal])})")
            params += terms.equal[equal]
        type_sql, _ = self._expressions(field)
        probe = (
            f"SELECT 1 FROM documents WHERE {' AND '.join(where)} AND NOT ({type_sql} = ''"
            f" AND json_type(document, '{self._path(field)}') IN ('integer', 'real')) LIMIT 1"
        )
        return self.conn.execute(probe, params).fetchone() is None

    def _scalar_only(self, fields: list[str], terms: PlainTerms) -> bool:
        """No document under the queried prefix holds an array or a tagged value at these fields.

        Two probes a field, each one range of the index (tagged values sort after plain ones, and an
        array's JSON text starts with ``[``): as one ``OR`` SQLite read every entry under the prefix."""
        prefix, params = [self.namespace], list[Any]()
        for field in fields:
            type_sql, value_sql = self._expressions(field)
            under = f"SELECT 1 FROM documents WHERE {' AND '.join(prefix)} AND "
            tagged = f"{under}{type_sql} > '' LIMIT 1"
            array = (
                f"{under}{type_sql} = '' AND {value_sql} >= '[' AND {value_sql} < '\\'"
                f" AND json_type(document, '{self._path(field)}') = 'array' LIMIT 1"
            )
            if any(self.conn.execute(probe, params).fetchone() is not None for probe in (tagged, array)):
                return False
            if field in terms.equal:
                prefix.append(f"{type_sql} = '' AND {value_sql} IN ({_placeholders(terms.equal[field])})")
                params += terms.equal[field]
        return True


def kept_fields(projection: Any) -> list[str] | None:
    """The top-level fields an inclusion projection keeps (``_id`` unless it is excluded), or None for any
    other projection (none, an exclusion, a dotted path, an operator)."""
    if not isinstance(projection, dict) or not projection:
        return None
    kept = []
    for field, value in projection.items():
        if type(value) not in (int, bool) or not isinstance(field, str) or "." in field or field.startswith("$"):
            return None
        if field != "_id" and not value:
            return None  # an exclusion
        if field != "_id":
            kept.append(field)
    if not kept:
        return None
    return [*kept, "_id"] if projection.get("_id", 1) else kept


def _selected(projection: Any) -> tuple[str, list[Any]]:
    """What a row selects: the stored document, or only the members a projection keeps (as stored)."""
    kept = kept_fields(projection)
    if kept is None:
        return "document", []
    members = "SELECT json_group_object(key, document -> fullkey) FROM json_each(document)"
    return f"({members} WHERE key IN ({_placeholders(tuple(kept))}))", kept


def _index_sql(engine: Any, db_name: str, coll_name: str, semantics: Any) -> tuple[str, tuple[Any, ...], bool] | None:
    from mongoeco.core import query_plan as qp
    from mongoeco.core.codec import DocumentCodec

    if (
        semantics.collation is not None
        or semantics.hint is not None
        or semantics.skip
        or semantics.text_query is not None
        or engine._codec is not DocumentCodec
    ):
        return None
    planner = _Planner(engine, db_name, coll_name)
    plan, sort = semantics.query_plan, semantics.sort
    branches = plan.clauses if isinstance(plan, qp.OrCondition) else (plan,)
    if len(branches) > 1 and (sort or semantics.limit is not None):
        return None
    wheres: list[str] = []
    params: list[Any] = []
    exact = True
    for branch in branches:
        built = planner.branch(branch, qp, sort)
        if built is None:
            return None
        where, branch_params, by_index, branch_exact = built
        if sort and not by_index:
            return None
        exact = exact and branch_exact
        wheres.append(where)
        params += branch_params
    if not exact and (semantics.limit is not None or sort):
        return None  # a limit must count matches, not candidates; mongoeco's residual check keeps no order
    # Several branches: UNION would merge documents whose kept members are equal, so they select whole ones.
    column, column_params = _selected(semantics.projection) if exact and len(wheres) == 1 else ("document", [])
    sql = " UNION ".join(f"SELECT {column} FROM documents WHERE {planner.namespace} AND {where}" for where in wheres)
    params = [*column_params, *params]
    if sort:
        _, value_sql = planner._expressions(sort[0][0])
        sql += f" ORDER BY {value_sql}"  # its type column is fixed by the WHERE clause
    if exact and semantics.limit is not None:
        sql += f" LIMIT {int(semantics.limit)}"
    return sql, tuple(params), exact


def _patch_sqlite() -> None:
    from mongoeco.engines import sqlite
    from mongoeco.engines.sqlite_planner import SQLiteReadExecutionPlan

    engine_cls = sqlite.SQLiteEngine

    def plan_for(self: Any, db_name: str, coll_name: str, semantics: Any) -> Any:
        built = _index_sql(self, db_name, coll_name, semantics)
        if built is None:
            return None
        sql, params, exact = built
        return SQLiteReadExecutionPlan(
            semantics=semantics,
            strategy="sql",
            execution_lineage=(),
            physical_plan=(),
            use_sql=True,
            sql=sql,
            params=params,
            apply_python_residual=not exact,
            residual_query_plan=None if exact else semantics.query_plan,
        )

    original_compile = engine_cls.__dict__["_compile_read_execution_plan"]
    original_plan = engine_cls.__dict__["_plan_find_semantics_sync"]

    def _compile_read_execution_plan(self, db_name, coll_name, semantics, *, select_clause="document", hint=None):
        if select_clause == "document" and hint is None:
            planned = plan_for(self, db_name, coll_name, semantics)
            if planned is not None:
                return planned
        return original_compile(self, db_name, coll_name, semantics, select_clause=select_clause, hint=hint)

    def _plan_find_semantics_sync(self, db_name, coll_name, semantics):
        return plan_for(self, db_name, coll_name, semantics) or original_plan(self, db_name, coll_name, semantics)

    _ORIGINALS["_compile_read_execution_plan"] = original_compile
    _ORIGINALS["_plan_find_semantics_sync"] = original_plan
    engine_cls._compile_read_execution_plan = _compile_read_execution_plan  # type: ignore[method-assign]
    engine_cls._plan_find_semantics_sync = _plan_find_semantics_sync  # type: ignore[method-assign]
