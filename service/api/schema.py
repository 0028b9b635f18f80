"""The schema: every operation, in one table, mapped to its resolver."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from service.api import anomalies as anomaly_api
from service.api import health, history, identity, refusals, subscriptions, sync
from service.api.scalars import SCALARS
from service.settings import Settings


@strawberry.type
class Query:
    me: identity.User = strawberry.field(resolver=identity.me)
    users: list[identity.User] = strawberry.field(resolver=identity.users)
    devices: list[identity.Device] = strawberry.field(resolver=identity.devices)
    pull: sync.PullResult = strawberry.field(resolver=sync.pull)
    record: sync.RecordEnvelope | None = strawberry.field(resolver=sync.record)
    conflicts: list[sync.Conflict] = strawberry.field(resolver=sync.conflicts)
    sync_health: health.SyncHealth = strawberry.field(resolver=health.sync_health)
    refusals: health.RefusalConnection = strawberry.field(resolver=health.refusals)
    sync_history: history.SyncEventConnection = strawberry.field(resolver=history.sync_history)
    sync_report: history.SyncReport = strawberry.field(resolver=history.sync_report)
    anomalies: anomaly_api.AnomalyConnection = strawberry.field(resolver=anomaly_api.anomalies)


@strawberry.type
class Mutation:
    create_user: identity.CreateUserResult = strawberry.mutation(resolver=identity.create_user)
    change_password: identity.User = strawberry.mutation(resolver=identity.change_password)
    register_device: identity.RegisterDeviceResult = strawberry.mutation(resolver=identity.register_device)
    issue_token: identity.IssueTokenResult = strawberry.mutation(resolver=identity.issue_token)
    revoke_token: identity.TokenInfo = strawberry.mutation(resolver=identity.revoke_token)
    revoke_device: identity.Device = strawberry.mutation(resolver=identity.revoke_device)
    push_changes: sync.PushResult = strawberry.mutation(resolver=sync.push_changes)
    resolve_conflict: sync.ResolveConflictResult = strawberry.mutation(resolver=sync.resolve_conflict)
    write_record: sync.WriteRecordResult = strawberry.mutation(resolver=sync.write_record)
    acknowledge_refusal: refusals.Refusal = strawberry.mutation(resolver=refusals.acknowledge_refusal)
    dismiss_refusal: refusals.Refusal = strawberry.mutation(resolver=refusals.dismiss_refusal)
    report_device_status: identity.Device = strawberry.mutation(resolver=health.report_device_status)
    review_anomaly: anomaly_api.Anomaly = strawberry.mutation(resolver=anomaly_api.review_anomaly)


@strawberry.type
class Subscription:
    refusal_events = strawberry.subscription(resolver=subscriptions.refusal_events)
    sync_status = strawberry.subscription(resolver=subscriptions.sync_status)
    anomaly_events = strawberry.subscription(resolver=subscriptions.anomaly_events)


class FieldSyncSchema(strawberry.Schema):
    """Errors are logged where they are given their codes (``service.api.errors.ErrorCodes``), once."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        return None


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    from service.api.errors import ErrorCodes
    from service.request_limits import CheckedDocuments, SafeIntegerLiterals, ValidDocuments

    settings = settings or Settings()
    # The limits' rules are built once, so that a document validated with them stays valid.
    rules = (
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
        SafeIntegerLiterals,
    )
    valid = ValidDocuments()
    extensions: list = [
        ErrorCodes,  # first: it sees every error the others add
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: CheckedDocuments(max_fields=settings.max_query_fields, rules=rules, valid=valid),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    return FieldSyncSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALARS),
    )


def printed_schema() -> str:
    return build_schema().as_str() + "\n"
