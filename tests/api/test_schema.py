"""The committed schema.graphql is the schema the code serves."""

from pathlib import Path

from service.api.schema import printed_schema

SCHEMA = Path(__file__).parents[2] / "schema.graphql"


def test_schema_graphql_matches_the_code():
    assert SCHEMA.read_text() == printed_schema(), "schema.graphql drifted: run `make schema`"


def test_the_protocol_names_are_in_the_schema():
    text = printed_schema()
    for name in (
        "pushChanges(input: PushInput!): PushResult!",
        "pull(deviceId: ID!, since: String = null, limit: Int = 500): PullResult!",
        "resolveConflict(input: ResolveConflictInput!): ResolveConflictResult!",
        "enum ChangeStatus",
        "input ChangeInput",
        "input WriteRecordInput",
        "input DeviceStatusInput",
        "input RefusalFilter",
        "refusalEvents(repId: ID = null): RefusalEvent!",
        "scalar Base64",
        "outOfScope: Boolean!",
    ):
        assert name in text, name
