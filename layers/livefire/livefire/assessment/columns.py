"""Probe samples as compact columns: one ``Series`` per (vantage, target), in send order (docs/architecture.md §7).

Assess reads a drill's samples chunk by chunk (``livefire.probing.chunks.read_chunks``) as plain JSON and appends
each chunk to the columns: numbers in ``array`` columns, flags in ``bytearray`` columns, and the few distinct
strings (error class, serving region, version) as small integer codes into tables shared by every series. That is
about 60 bytes a sample, where one pydantic ``Sample`` object per sample took about 1.4 KB.

The findings read a series as a sequence of ``Row`` views: a row is made when it is read and holds only its series
and its index, so no list of objects as long as the drill is ever kept. ``Probe`` is what both a ``Row`` and a
``Sample`` offer, the type every finding is written against.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from operator import itemgetter, lt, methodcaller
from typing import Any, Protocol, overload

from livefire.contracts import Sample

_NUMBERS = ("seq", "scheduled_ms", "sent_ms", "ended_ms", "latency_ms")
_FLAGS = ("ok", "burst")
_CODED = ("error", "served_by", "version")
_KEY = itemgetter("vantage", "target")


class Probe(Protocol):
    """One probe as the findings read it: a ``Row`` of the columns, or a ``Sample`` (the fields of ``Sample``)."""

    @property
    def target(self) -> str: ...
    @property
    def vantage(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def scheduled_ms(self) -> float: ...
    @property
    def sent_ms(self) -> float: ...
    @property
    def ended_ms(self) -> float: ...
    @property
    def ok(self) -> bool: ...
    @property
    def status(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def latency_ms(self) -> float: ...
    @property
    def served_by(self) -> str | None: ...
    @property
    def version(self) -> str | None: ...
    @property
    def burst(self) -> bool: ...


def served_label(region: str, version: str | None) -> str:
    """Who served an answer, as every view names it: ``region@version``, or the region alone when the answer
    named no version (each caller says what to show for an answer that named no region)."""
    return f"{region}@{version}" if version else region


class Codes(dict[str | None, int]):
    """A string table: code 0 is None, each distinct string gets the next code the first time it is looked up
    (``codes[name]``; a dict, so a column is coded at C speed: ``map(codes.__getitem__, names)``)."""

    def __init__(self) -> None:
        super().__init__({None: 0})
        self.names: list[str | None] = [None]

    def __missing__(self, name: str | None) -> int:
        if not isinstance(name, str):
            raise ValueError(f"expected a string or null, got {name!r}")
        code = self[name] = len(self.names)
        self.names.append(name)
        return code


class Tables:
    """The string tables every series of one drill shares."""

    def __init__(self) -> None:
        self.error, self.served_by, self.version = Codes(), Codes(), Codes()


class Series(Sequence["Row"]):
    """The samples of one (vantage, target), one column per field; in send order once ``SampleColumns`` sorted it.

    Columns: ``seq`` (array q); ``scheduled_ms``, ``sent_ms``, ``ended_ms``, ``latency_ms`` (array d, UTC epoch ms
    and ms); ``ok``, ``burst`` (bytearray, 0/1); ``status`` (array i, -1 for none); ``error``, ``served_by``,
    ``version`` (array I, codes into ``tables``, 0 for none)."""

    def __init__(self, vantage: str, target: str, tables: Tables) -> None:
        self.vantage, self.target, self.tables = vantage, target, tables
        self.seq = array("q")
        self.scheduled_ms, self.sent_ms, self.ended_ms, self.latency_ms = (array("d") for _ in range(4))
        self.ok, self.burst = bytearray(), bytearray()
        self.status = array("i")
        self.error, self.served_by, self.version = (array("I") for _ in range(3))
        self.in_order = True

    def __len__(self) -> int:
        return len(self.seq)

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return [Row(self, i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("series index out of range")
        return Row(self, index)

    def __iter__(self) -> Iterator[Row]:
        return (Row(self, i) for i in range(len(self)))

    def extend(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append decoded sample objects (the fields of ``Sample``); a missing field or a wrong type raises."""
        if not rows:
            return
        count = len(self)
        try:
            for name in _NUMBERS:
                getattr(self, name).extend(map(itemgetter(name), rows))
            self.ok.extend(map(_FLAG.__getitem__, map(itemgetter("ok"), rows)))
            self.burst.extend(map(_FLAG.__getitem__, map(methodcaller("get", "burst", False), rows)))
            statuses = list(map(methodcaller("get", "status"), rows))
            self.status.extend(map(_NO_STATUS.get, statuses, statuses))  # None -> -1, a status as it is
            for name in _CODED:
                table: Codes = getattr(self.tables, name)
                getattr(self, name).extend(map(table.__getitem__, map(methodcaller("get", name), rows)))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            self.truncate(count)
            raise ValueError(f"not a probe sample: {type(exc).__name__}: {exc}") from exc
        self.in_order = False

    def sort(self) -> None:
        """Put the series in send order: (sent, scheduled, seq), ties kept in the order they were read."""
        if self.in_order or _strictly_ascending(self.sent_ms):
            self.in_order = True
            return
        order = sorted(range(len(self)), key=self.seq.__getitem__)
        order.sort(key=self.scheduled_ms.__getitem__)
        order.sort(key=self.sent_ms.__getitem__)
        for name in (*_NUMBERS, "status", *_CODED):
            column = getattr(self, name)
            setattr(self, name, array(column.typecode, map(column.__getitem__, order)))
        for name in _FLAGS:
            column = getattr(self, name)
            setattr(self, name, bytearray(map(column.__getitem__, order)))
        self.in_order = True

    def truncate(self, count: int) -> None:
        """Keep the first ``count`` samples (as appended)."""
        for name in (*_NUMBERS, *_FLAGS, "status", *_CODED):
            del getattr(self, name)[count:]


_FLAG: dict[object, int] = {False: 0, True: 1}  # a flag is a JSON boolean (looked up: quick); others raise
_NO_STATUS: dict[int | None, int] = {None: -1}


def _strictly_ascending(sent: array[float]) -> bool:
    """Whether every send is later than the one before: the series is in send order (the common case)."""
    return all(map(lt, islice(sent, 0, len(sent) - 1), islice(sent, 1, None)))


class Row:
    """One sample of a ``Series``, read from its columns when a field is asked for (a ``Probe``)."""

    __slots__ = ("_index", "_series")

    def __init__(self, series: Series, index: int) -> None:
        self._series, self._index = series, index

    @property
    def target(self) -> str:
        return self._series.target

    @property
    def vantage(self) -> str:
        return self._series.vantage

    @property
    def seq(self) -> int:
        return self._series.seq[self._index]

    @property
    def scheduled_ms(self) -> float:
        return self._series.scheduled_ms[self._index]

    @property
    def sent_ms(self) -> float:
        return self._series.sent_ms[self._index]

    @property
    def ended_ms(self) -> float:
        return self._series.ended_ms[self._index]

    @property
    def ok(self) -> bool:
        return bool(self._series.ok[self._index])

    @property
    def status(self) -> int | None:
        status = self._series.status[self._index]
        return None if status < 0 else status

    @property
    def error(self) -> str | None:
        return self._series.tables.error.names[self._series.error[self._index]]

    @property
    def latency_ms(self) -> float:
        return self._series.latency_ms[self._index]

    @property
    def served_by(self) -> str | None:
        return self._series.tables.served_by.names[self._series.served_by[self._index]]

    @property
    def version(self) -> str | None:
        return self._series.tables.version.names[self._series.version[self._index]]

    @property
    def burst(self) -> bool:
        return bool(self._series.burst[self._index])


class Rows(Sequence[Row]):
    """Some samples of a series, by index (e.g. those of one phase): a view, rows made as they are read."""

    def __init__(self, series: Series, indices: array[int]) -> None:
        self._series, self._indices = series, indices

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return [Row(self._series, i) for i in self._indices[index]]
        return Row(self._series, self._indices[index])

    def __iter__(self) -> Iterator[Row]:
        series = self._series
        return (Row(series, i) for i in self._indices)


class SampleColumns:
    """Every sample of a window or a drill as one ``Series`` per (vantage, target); ``groups`` in send order."""

    def __init__(self) -> None:
        self.tables = Tables()
        self._series: dict[tuple[str, str], Series] = {}

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> SampleColumns:
        """Columns of samples already in memory (tests, tools)."""
        columns = cls()
        columns.add_rows([sample.model_dump() for sample in samples])
        return columns

    def add_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append decoded sample objects, e.g. the lines of one chunk, to their series: all of them, or (a line
        that is not a sample: ValueError) none."""
        by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
        try:
            for row in rows:
                by_key.setdefault(_KEY(row), []).append(row)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a probe sample: {type(exc).__name__}: {exc}") from exc
        if not all(isinstance(v, str) and isinstance(t, str) for v, t in by_key):
            raise ValueError("not a probe sample: vantage and target must be strings")
        added: list[tuple[Series, int]] = []
        try:
            for (vantage, target), group in by_key.items():
                series = self._series.get((vantage, target))
                if series is None:
                    series = self._series[(vantage, target)] = Series(vantage, target, self.tables)
                added.append((series, len(series)))
                series.extend(group)
        except ValueError:
            for series, count in added:  # the chunk is left out whole
                series.truncate(count)
                if not series:
                    del self._series[(series.vantage, series.target)]
            raise

    @property
    def groups(self) -> dict[tuple[str, str], Series]:
        """The series by (vantage, target), each in send order."""
        for series in self._series.values():
            series.sort()
        return self._series

    def __len__(self) -> int:
        return sum(len(series) for series in self._series.values())

    def span(self) -> tuple[float | None, float | None]:
        """(the first send, the last end) over every sample; (None, None) when there is none."""
        firsts = [min(s.sent_ms) for s in self._series.values() if len(s)]
        lasts = [max(s.ended_ms) for s in self._series.values() if len(s)]
        return min(firsts, default=None), max(lasts, default=None)
