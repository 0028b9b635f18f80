"""Embedded store (mongoeco 4.11.0): MongoDB 8.0's ``bulkWrite`` command, writes to several collections in one.

A push's transaction writes receipts, records, baselines and history events: four commands, each a
round trip and ~100 µs of the service's CPU (``held_connection``), where MongoDB 8.0 takes them in one
``bulkWrite`` (``{bulkWrite: 1, ops: [{insert: <nsInfo index>, document}, {update: <index>, filter,
updateMods, upsert, multi}, {delete: <index>, filter, multi}], nsInfo: [{ns: "db.coll"}], ordered}`` on
``admin``). mongoeco does not know the command, so this runs it as the commands it stands for: each
run of inserts into one collection as one ``insert``, each update and each delete as an ``update`` or
``delete`` of its own (their replies give counts per command, a ``bulkWrite`` answers per operation),
through the executor as if sent one after another on the same session (so in its transaction, with
every other patch on the way). The reply is MongoDB's: one result per operation in the cursor's first
batch (``errorsOnly``: the failed ones only), an error carrying the operation's index; ordered, the
first error ends the command, as the ``insert`` it came from stops; unordered, every operation runs.
"""

from __future__ import annotations

from typing import Any

from service.store.embedded_pin import apply_once

COMMAND = "bulkWrite"
_SESSION_FIELDS = ("lsid", "txnNumber", "autocommit")  # what each command of the bulk write carries of its own
_ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def _patch() -> None:
    from mongoeco.wire.executor import WireCommandExecutor
    from mongoeco.wire.surface import WireSurface

    supports = _ORIGINALS["supports_command"] = WireSurface.supports_command
    execute = _ORIGINALS["execute_prepared"] = WireCommandExecutor.execute_prepared

    def supports_command(self: Any, command_name: str) -> bool:
        return command_name == COMMAND or supports(self, command_name)

    async def execute_prepared(self: Any, context: Any) -> dict[str, Any]:
        if context.command_name != COMMAND:
            return await execute(self, context)
        return await _bulk_write(self, context)

    WireSurface.supports_command = supports_command  # type: ignore[method-assign]
    WireCommandExecutor.execute_prepared = execute_prepared  # type: ignore[method-assign]


def commands(ops: list[dict[str, Any]], namespaces: list[str]) -> list[tuple[str, dict[str, Any], list[int]]]:
    """The commands ``ops`` stand for, in order: (database, command, the indexes of the ops it carries)."""
    runs: list[tuple[str, dict[str, Any], list[int]]] = []
    for index, op in enumerate(ops):
        kind = next(iter(op))
        database, _, collection = namespaces[op[kind]].partition(".")
        if kind == "insert":
            last = runs[-1] if runs else None
            if last is not None and last[0] == database and last[1].get("insert") == collection:
                last[1]["documents"].append(op["document"])
                last[2].append(index)
            else:
                runs.append((database, {"insert": collection, "documents": [op["document"]]}, [index]))
        elif kind == "update":
            update = {"q": op["filter"], "u": op["updateMods"], "multi": op.get("multi", False)}
            update |= {key: op[key] for key in ("upsert", "arrayFilters", "hint", "collation") if key in op}
            runs.append((database, {"update": collection, "updates": [update]}, [index]))
        elif kind == "delete":
            delete = {"q": op["filter"], "limit": 0 if op.get("multi") else 1}
            delete |= {key: op[key] for key in ("hint", "collation") if key in op}
            runs.append((database, {"delete": collection, "deletes": [delete]}, [index]))
        else:
            raise ValueError(f"bulkWrite: unknown operation {kind!r}")
    return runs


async def _bulk_write(executor: Any, context: Any) -> dict[str, Any]:
    body = context.command_document
    ordered = body.get("ordered", True)
    namespaces = [entry["ns"] for entry in body["nsInfo"]]
    session = {key: context.raw_body[key] for key in _SESSION_FIELDS if key in context.raw_body}
    results: list[dict[str, Any]] = []
    totals = dict.fromkeys(("nInserted", "nMatched", "nModified", "nUpserted", "nDeleted"), 0)
    for database, command, indexes in commands(body["ops"], namespaces):
        command = {**command, "ordered": ordered, "$db": database, **session}
        kind = next(iter(command))
        sub = executor._build_request_context(command, connection=context.connection, db_name=database)
        reply = await executor.execute_prepared(sub)
        if reply.get("ok") != 1:  # the command failed as a whole: so does the bulk write
            return reply
        errors = {error["index"]: error for error in reply.get("writeErrors", ())}
        upserted = reply.get("upserted", [])
        for position, index in enumerate(indexes):
            result: dict[str, Any]
            if position in errors:
                error = {key: value for key, value in errors[position].items() if key != "index"}
                results.append({"ok": 0.0, "idx": index, **error})
                continue
            if kind == "insert":
                result = {"ok": 1.0, "idx": index, "n": 1}
                totals["nInserted"] += 1
            elif kind == "update":
                result = {"ok": 1.0, "idx": index, "n": reply["n"], "nModified": reply["nModified"]}
                if upserted:
                    result["upserted"] = {"_id": upserted[0]["_id"]}
                    totals["nUpserted"] += 1
                else:
                    totals["nMatched"] += reply["n"]
                totals["nModified"] += reply["nModified"]
            else:
                result = {"ok": 1.0, "idx": index, "n": reply["n"]}
                totals["nDeleted"] += reply["n"]
            results.append(result)
        if errors and ordered:
            break
    failed = [result for result in results if result["ok"] != 1]
    batch = failed if body.get("errorsOnly") else results
    cursor = {"id": 0, "firstBatch": batch, "ns": "admin.$cmd.bulkWrite"}
    return {"ok": 1.0, "cursor": cursor, "nErrors": len(failed), **totals}
