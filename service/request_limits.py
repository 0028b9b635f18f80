"""Limits on what a request may carry, checked before any of it reaches a resolver.

- ``BodySizeLimit``: request bodies larger than the configured maximum are refused
  (413) before they are read whole.
- ``strict_json``: the JSON of request bodies and WebSocket messages is standard JSON
  that every part of the service can hold: UTF-8, no NaN/Infinity, finite numbers,
  integers a JavaScript client can represent exactly, no lone UTF-16 surrogates,
  no object key holding the NUL character (MongoDB cannot store one), bounded nesting.
- ``CheckedDocuments``: an operation selecting too many fields once its fragments are
  expanded is refused before validation, whose rules grow exponentially with nested
  fragment spreads (a 1 KB "fragment bomb" would otherwise pin the event loop); then
  the document is validated with the limits' rules. Each distinct document that passes
  is parsed and validated once: clients repeat a handful of operations.
- ``SafeIntegerLiterals``: integer literals in the query text follow the same rule as
  integers in variables.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from graphql.validation import ASTValidationRule
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

log = logging.getLogger("fieldsync.api")

MAX_SAFE_INTEGER = 2**53 - 1
MAX_JSON_NESTING = 64
MAX_FRAGMENT_NESTING = 32
# JSON text decoded as UTF-8 holds no lone surrogate: parsed strings can only get one from an escape.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

# -- body size --------------------------------------------------------------


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt  # path prefixes with limits of their own (the upload channel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        message = f"request body exceeds {self.max_bytes} bytes"
        error = {"message": message, "extensions": {"code": "PAYLOAD_TOO_LARGE"}}
        try:
            await _record_push_refusal(scope, message)
        except Exception as failure:  # the store is down: the answer stays 413
            log.warning("could not record a push refusal (%s)", type(failure).__name__)
        body = json.dumps({"errors": [error]}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


async def _record_push_refusal(scope: Scope, message: str) -> None:
    """An oversized body sent to /graphql with a device token is a push turned away: record it."""
    from service.api.push_refusals import record_rejected_request

    services = scope["app"].state.fieldsync.get("services") if "app" in scope else None
    if services is None or scope.get("path") != "/graphql":
        return
    authorization = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
    await record_rejected_request(services, authorization, error_code="PAYLOAD_TOO_LARGE", message=message)


# -- strict JSON ------------------------------------------------------------


class UnacceptableJSON(json.JSONDecodeError):
    """JSON the service refuses; ``msg`` says why and never quotes the data."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "", 0)


def strict_json(data: str | bytes) -> object:
    """Parse request JSON, refusing what the stores and the CRDT library cannot hold."""
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as error:
            raise UnacceptableJSON(f"the body is not UTF-8 (invalid byte at offset {error.start})") from None
    else:
        text = data
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise UnacceptableJSON(f"JSON is nested deeper than {MAX_JSON_NESTING} levels") from None
    _check_text(text)
    _check_tree(value, strings=_SURROGATE_ESCAPE.search(text) is not None, nul_keys="\\u0000" in text)
    return value


def _constant(name: str) -> Any:
    raise UnacceptableJSON(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise UnacceptableJSON(f"the number {text[:30]} is out of range")
    return value


def _int(text: str) -> int:
    value = int(text) if len(text) <= 17 else None  # never convert thousands of digits
    if value is None or abs(value) > MAX_SAFE_INTEGER:
        raise UnacceptableJSON(f"integers must be within ±{MAX_SAFE_INTEGER}; got {text[:30]}")
    return value


def _check_tree(value: object, *, strings: bool, nul_keys: bool) -> None:
    """Nesting within bounds; when ``strings``, no string (key or value) that is not valid Unicode; when
    ``nul_keys`` (the text escapes a NUL, the only way JSON holds one), no key with a NUL."""
    containers = (dict, list, str) if strings else (dict, list)  # what the walk has to look into
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_NESTING:
            raise UnacceptableJSON(f"JSON is nested deeper than {MAX_JSON_NESTING} levels")
        if isinstance(item, dict):
            if strings:
                for key in item:
                    _check_text(key)
            if nul_keys and any("\x00" in key for key in item):
                raise UnacceptableJSON("an object key holds the NUL character (U+0000), which cannot be stored")
            stack.extend((child, depth + 1) for child in item.values() if isinstance(child, containers))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, containers))
        elif isinstance(item, str):
            _check_text(item)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise UnacceptableJSON(
            f"a string holds a lone UTF-16 surrogate (U+{ord(text[error.start]):04X}), which is not valid Unicode"
        ) from None


# -- query breadth ----------------------------------------------------------


def query_too_complex(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "QUERY_TOO_COMPLEX"})


def selected_fields(document: DocumentNode, ceiling: int) -> dict[str, int]:
    """Fields each operation selects, fragment spreads expanded; counts stop at ``ceiling``.

    Linear in the document: each fragment is counted once and reused. Raises
    ``GraphQLError`` when fragments spread each other more than MAX_FRAGMENT_NESTING deep.
    """
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    direct = {name: _direct(fragment.selection_set) for name, fragment in fragments.items()}
    totals: dict[str, int] = {}

    def total(name: str) -> int:
        # iterative post-order over the spread graph; a cycle counts 0 here (validation rejects it)
        stack: list[tuple[str, int]] = [(name, 0)]
        on_path: set[str] = set()
        while stack:
            current, depth = stack[-1]
            if current in totals or current not in direct:
                totals.setdefault(current, 0)
                stack.pop()
                on_path.discard(current)
                continue
            if depth > MAX_FRAGMENT_NESTING:
                raise query_too_complex(f"fragments are nested more than {MAX_FRAGMENT_NESTING} deep")
            on_path.add(current)
            fields, spreads = direct[current]
            pending = [s for s in spreads if s not in totals and s not in on_path and s in direct]
            if pending:
                stack.extend((spread, depth + 1) for spread in pending)
                continue
            totals[current] = min(ceiling, fields + sum(totals.get(s, 0) for s in spreads))
            on_path.discard(current)
            stack.pop()
        return totals[name]

    counts: dict[str, int] = {}
    for index, definition in enumerate(document.definitions):
        if isinstance(definition, OperationDefinitionNode):
            fields, spreads = _direct(definition.selection_set)
            name = definition.name.value if definition.name else f"operation {index + 1}"
            counts[name] = min(ceiling, fields + sum(total(spread) for spread in spreads))
    return counts


def _direct(selection_set: SelectionSetNode) -> tuple[int, list[str]]:
    """Fields in a selection set and its nested sets, and the fragments it spreads (with repeats)."""
    fields = 0
    spreads: list[str] = []
    for selection in _selections(selection_set):
        if isinstance(selection, FieldNode):
            fields += 1
        elif isinstance(selection, FragmentSpreadNode):
            spreads.append(selection.name.value)
    return fields, spreads


def _selections(selection_set: SelectionSetNode) -> Iterator[object]:
    stack = [selection_set]
    while stack:
        for selection in stack.pop().selections:
            yield selection
            if isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                stack.append(selection.selection_set)


class ValidDocuments:
    """Parsed documents that passed validation, by query text and rules; the least recently used go first."""

    MAX_QUERY_CHARS = 64 * 1024  # longer texts (big inline literals) are checked every time, never kept

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._documents: OrderedDict[tuple[str, tuple[type[ASTValidationRule], ...]], DocumentNode] = OrderedDict()

    def get(self, query: str | None, rules: tuple[type[ASTValidationRule], ...]) -> DocumentNode | None:
        document = self._documents.get((query, rules)) if query is not None else None
        if document is not None:
            self._documents.move_to_end((query, rules))  # type: ignore[arg-type]
        return document

    def add(self, query: str, rules: tuple[type[ASTValidationRule], ...], document: DocumentNode) -> None:
        if len(query) <= self.MAX_QUERY_CHARS:
            self._documents[(query, rules)] = document
            if len(self._documents) > self.size:
                self._documents.popitem(last=False)


class CheckedDocuments(SchemaExtension):
    """Refuse an operation selecting more than ``max_fields`` fields, then validate with ``rules`` added.

    Documents that pass are kept in ``valid`` (shared by all requests: ``rules`` are the same
    classes every time), so a repeated query text is neither parsed nor validated again.
    """

    def __init__(self, *, max_fields: int, rules: tuple[type[ASTValidationRule], ...], valid: ValidDocuments) -> None:
        self.max_fields = max_fields
        self.rules = rules
        self.valid = valid
        self.known = False

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = context.validation_rules + self.rules
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        document = self.valid.get(context.query, context.validation_rules)
        if document is not None:
            context.graphql_document, self.known = document, True
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if self.known:
            context.pre_execution_errors = []
        elif document is not None and context.pre_execution_errors is None:
            errors = self._too_many_fields(document) or validate_document(
                context.schema._schema, document, context.validation_rules
            )
            context.pre_execution_errors = errors
            if not errors and context.query is not None:
                self.valid.add(context.query, context.validation_rules, document)
        yield

    def _too_many_fields(self, document: DocumentNode) -> list[GraphQLError]:
        try:
            counts = selected_fields(document, self.max_fields + 1)
        except GraphQLError as error:
            return [error]
        return [
            query_too_complex(
                f"{name} selects more than {self.max_fields} fields once fragments are expanded; "
                "ask for fewer fields or split the query"
            )
            for name, n in counts.items()
            if n > self.max_fields
        ]


class SafeIntegerLiterals(ValidationRule):
    """Integer literals beyond what JavaScript clients, BSON and Yjs all hold exactly are refused."""

    def enter_int_value(self, node: IntValueNode, *_: object) -> None:
        digits = node.value.lstrip("-")
        if len(digits) > 16 or int(digits) > MAX_SAFE_INTEGER:
            self.report_error(
                GraphQLError(
                    f"integers must be within ±{MAX_SAFE_INTEGER}; got {node.value[:30]}",
                    nodes=[node],
                    extensions={"code": "BAD_REQUEST"},
                )
            )
