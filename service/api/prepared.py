"""Prepared operations: the hot documents (``pushChanges``, ``pull``) run without GraphQL execution.

A document that the general path has already validated (limits included) and that is exactly
one operation selecting one of ``FAST_FIELDS`` is prepared once:

- its variables are turned into the resolver's own input objects by converters compiled from
  the schema's types (each value parsed by the same scalar and enum functions GraphQL uses);
- the same resolver runs (authorization, limits and checks are the resolver's);
- its answer is serialized by a projection compiled from the selection set (aliases and
  ``__typename`` included), with the same scalar serializers.

Whatever a prepared operation does not cover goes the general way: documents with fragments,
directives, variable defaults or fields with resolvers of their own (``photos``, ``rep``, ...),
literal arguments other than built-in scalars, and any request whose variables do not convert
cleanly (GraphQL then answers with its own errors). Errors the resolver raises are located and
coded as the general path codes them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    DocumentNode,
    FieldNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLID,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    VariableNode,
    located_error,
    parse,
    specified_scalar_types,
    value_from_ast,
)
from graphql.utilities import type_from_ast
from strawberry.types.execution import ExecutionResult

from service.api.errors import client_error

FAST_FIELDS = {"mutation": {"pushChanges"}, "query": {"pull"}}
BACKREF = "strawberry-definition"  # strawberry's link from a GraphQL type or field to its definition

Convert = Callable[[Any], Any]


class NotCovered(Exception):
    """The document, or this request's variables, are the general path's to answer."""


@dataclass(frozen=True)
class Prepared:
    """One validated document, ready to run its single field without GraphQL execution."""

    response_key: str
    field: FieldNode
    resolver: Callable[..., Any]
    constants: dict[str, Any]  # arguments given as literals, converted
    variables: dict[str, tuple[str, Convert, bool]]  # argument -> (variable, converter, required)
    project: Convert
    operation_name: str | None

    async def execute(self, context: Any, variables: dict[str, Any] | None) -> ExecutionResult | None:
        """The result, or None when the variables are not this prepared operation's to convert."""
        variables = variables or {}
        try:
            arguments = dict(self.constants)
            for argument, (name, convert, required) in self.variables.items():
                if name in variables:
                    arguments[argument] = convert(variables[name])
                elif required:
                    return None
        except (NotCovered, GraphQLError, ValueError, TypeError):
            return None
        try:
            result = await self.resolver(_Info(context), **arguments)
        except Exception as error:
            located = located_error(error, [self.field], [self.response_key])
            return ExecutionResult(data=None, errors=[client_error(located, self.operation_name or "an operation")])
        return ExecutionResult(data={self.response_key: self.project(result)}, errors=None)


@dataclass(frozen=True)
class _Info:
    """What the resolvers read of strawberry's ``Info``: the context."""

    context: Any


class PreparedOperations:
    """Prepared operations by query text, learned from documents the general path executed."""

    MAX_QUERY_CHARS = 64 * 1024

    def __init__(self, schema: GraphQLSchema, size: int = 512) -> None:
        self._schema = schema
        self._size = size
        self._prepared: OrderedDict[str, Prepared | None] = OrderedDict()

    def get(self, query: str | None, operation_name: str | None) -> Prepared | None:
        prepared = self._prepared.get(query) if query is not None else None
        if prepared is None or operation_name not in (None, prepared.operation_name):
            return None
        self._prepared.move_to_end(query)  # type: ignore[arg-type]
        return prepared

    def learn(self, query: str | None) -> None:
        """``query`` passed validation: prepare it (or remember that it cannot be) once."""
        if query is None or query in self._prepared or len(query) > self.MAX_QUERY_CHARS:
            return
        try:
            self._prepared[query] = prepare(self._schema, parse(query))
        except NotCovered:
            self._prepared[query] = None
        if len(self._prepared) > self._size:
            self._prepared.popitem(last=False)


def prepare(schema: GraphQLSchema, document: DocumentNode) -> Prepared:
    if len(document.definitions) != 1 or not isinstance(document.definitions[0], OperationDefinitionNode):
        raise NotCovered
    operation = document.definitions[0]
    root = schema.get_root_type(operation.operation)
    field = _only_field(operation.selection_set)
    if root is None or operation.directives or field.name.value not in FAST_FIELDS.get(operation.operation.value, ()):
        raise NotCovered
    definition = root.fields[field.name.value]
    strawberry_field = definition.extensions[BACKREF]
    declared = {}
    for variable in operation.variable_definitions or ():
        if variable.default_value is not None or variable.directives:
            raise NotCovered
        declared[variable.variable.name.value] = cast(GraphQLInputType, type_from_ast(schema, variable.type))
    constants, variables = {}, {}
    for argument in field.arguments or ():
        graphql_argument = definition.args[argument.name.value]
        python_name = graphql_argument.extensions[BACKREF].python_name
        if isinstance(argument.value, VariableNode):
            type_ = declared[argument.value.name.value]
            variables[python_name] = (argument.value.name.value, _input(type_), isinstance(type_, GraphQLNonNull))
        elif _named(graphql_argument.type) in specified_scalar_types.values():
            constants[python_name] = value_from_ast(argument.value, graphql_argument.type)
            if constants[python_name] is Undefined:
                raise NotCovered
        else:
            raise NotCovered
    return Prepared(
        response_key=(field.alias or field.name).value,
        field=field,
        resolver=strawberry_field.base_resolver.wrapped_func,
        constants=constants,
        variables=variables,
        project=_output(definition.type, field.selection_set),
        operation_name=operation.name.value if operation.name else None,
    )


def _only_field(selection_set: SelectionSetNode) -> FieldNode:
    (field,) = selection_set.selections if len(selection_set.selections) == 1 else (None,)
    if not isinstance(field, FieldNode) or field.directives:
        raise NotCovered
    return field


def _named(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


# -- variables into the resolver's input objects --------------------------------------------


def _input(type_: GraphQLInputType) -> Convert:
    """A converter of a JSON value into what strawberry would pass for ``type_``; raises to refuse."""
    if isinstance(type_, GraphQLNonNull):
        inner = _input(type_.of_type)

        def required(value: Any) -> Any:
            if value is None:
                raise NotCovered
            return inner(value)

        return required
    if isinstance(type_, GraphQLList):
        item = _input(type_.of_type)
        return lambda value: None if value is None else [item(v) for v in _list(value)]
    if isinstance(type_, GraphQLInputObjectType):
        return _input_object(type_)
    if isinstance(type_, GraphQLScalarType | GraphQLEnumType):
        parse_value = type_.parse_value

        def leaf(value: Any) -> Any:
            if value is None:
                return None
            parsed = parse_value(value)
            if parsed is Undefined:
                raise NotCovered
            return parsed

        return leaf
    raise NotCovered


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise NotCovered  # GraphQL would take a single value as a list of one: its way
    return value


def _input_object(type_: GraphQLInputObjectType) -> Convert:
    cls = type_.extensions[BACKREF].origin
    fields = {
        name: (field.extensions[BACKREF].python_name, _input(field.type), isinstance(field.type, GraphQLNonNull))
        for name, field in type_.fields.items()
    }
    required = {name for name, (_, _, non_null) in fields.items() if non_null}

    def input_object(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict) or not value.keys() <= fields.keys() or not required <= value.keys():
            raise NotCovered
        kwargs = {}
        for name, item in value.items():
            python_name, convert, _ = fields[name]
            kwargs[python_name] = convert(item)
        return cls(**kwargs)

    return input_object


# -- results along the selection set --------------------------------------------------------


def _output(type_: GraphQLOutputType, selection_set: SelectionSetNode | None) -> Convert:
    """A projection of a resolver's value of ``type_`` onto ``selection_set``, as GraphQL serializes it."""
    if isinstance(type_, GraphQLNonNull):
        return _output(type_.of_type, selection_set)
    if isinstance(type_, GraphQLList):
        item = _output(type_.of_type, selection_set)
        return lambda value: None if value is None else [item(v) for v in value]
    if isinstance(type_, GraphQLEnumType):  # strawberry's serialize searches the values: each member's name, once
        enum, names = type_, {m: type_.serialize(m) for m in getattr(type_, "wrapped_cls", ())}
        return lambda value: None if value is None else names.get(value) or enum.serialize(value)
    if isinstance(type_, GraphQLScalarType):
        return _scalar(type_)
    if isinstance(type_, GraphQLObjectType) and selection_set is not None:
        return _object(type_, selection_set)
    raise NotCovered


def _scalar(type_: GraphQLScalarType) -> Convert:
    """``type_``'s serializer; a value a built-in scalar serializes as itself (a ``str`` for String and
    ID, a ``bool`` for Boolean, an ``int`` in Int's 32 bits) is taken as it is, without the call."""
    serialize = type_.serialize
    if type_ is GraphQLInt:

        def int_(value: Any) -> Any:
            if type(value) is int and GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT:
                return value
            return None if value is None else serialize(value)

        return int_
    itself = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}.get(type_)
    if itself is not None:
        return lambda value: value if type(value) is itself else None if value is None else serialize(value)
    return lambda value: None if value is None else serialize(value)


def _object(type_: GraphQLObjectType, selection_set: SelectionSetNode) -> Convert:
    fields: list[tuple[str, str | None, Convert | None]] = []  # key, attribute (None: __typename), projection
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives or selection.arguments:
            raise NotCovered
        key, name = (selection.alias or selection.name).value, selection.name.value
        if key in (f[0] for f in fields):
            raise NotCovered  # merged fields: GraphQL's to merge
        if name == "__typename":
            fields.append((key, None, None))
            continue
        definition = type_.fields.get(name)
        strawberry_field = definition.extensions.get(BACKREF) if definition else None
        if strawberry_field is None or strawberry_field.base_resolver is not None:
            raise NotCovered  # a field with a resolver of its own (I/O): GraphQL runs it
        fields.append((key, strawberry_field.python_name, _output(definition.type, selection.selection_set)))
    type_name = type_.name

    def project(value: Any) -> Any:
        if value is None:
            return None
        return {
            key: type_name if attribute is None else projection(getattr(value, attribute))  # type: ignore[misc]
            for key, attribute, projection in fields
        }

    return project
