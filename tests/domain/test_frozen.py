"""service.domain.frozen: ``evolve`` makes what ``dataclasses.replace`` makes, ``build`` what the constructor makes."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from datetime import UTC, datetime

import pytest

from service.domain.frozen import build, evolve
from service.domain.history import SyncEvent
from service.domain.outcomes import ChangeStatus, Outcome
from service.domain.record_types import RecordType
from service.domain.records import Record

EVOLVED = [Record, Outcome, SyncEvent]  # records get their seq, events their id, outcomes the stored record


@pytest.mark.parametrize("cls", EVOLVED)
def test_an_evolved_class_only_stores_its_fields(cls: type):
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert not hasattr(cls, "__post_init__")
    assert list(inspect.signature(cls).parameters) == [field.name for field in dataclasses.fields(cls)]  # no InitVar
    assert not [name for name, value in vars(cls).items() if isinstance(value, functools.cached_property)]


def test_evolve_makes_what_replace_makes():
    record = Record(RecordType.VISIT, "v1", 2, {"status": "PLANNED"}, datetime(2026, 11, 20, tzinfo=UTC))
    stored = evolve(record, seq=7)
    assert stored == dataclasses.replace(record, seq=7)
    assert (record.seq, stored.seq) == (0, 7)
    outcome = Outcome("off-1", ChangeStatus.APPLIED, record=record)
    assert evolve(outcome, record=stored) == dataclasses.replace(outcome, record=stored)


def test_evolve_refuses_a_field_the_class_does_not_have():
    record = Record(RecordType.VISIT, "v1", 2, {}, datetime(2026, 11, 20, tzinfo=UTC))
    with pytest.raises(AssertionError):
        evolve(record, sequence=7)


def test_build_makes_what_the_constructor_makes():
    record = Record(RecordType.VISIT, "v1", 2, {"status": "PLANNED"}, datetime(2026, 11, 20, tzinfo=UTC), "rep1", seq=9)
    fields = {field.name: getattr(record, field.name) for field in dataclasses.fields(Record)}
    assert build(Record, fields) == record
    with pytest.raises(AssertionError):  # every field is given: no default is applied
        build(Record, {name: value for name, value in fields.items() if name != "seq"})
