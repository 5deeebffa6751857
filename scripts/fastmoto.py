"""moto's DynamoDB, fast enough for benchmarks and evaluations at scale, answering the same.

Used by scripts/eval_capture.py and scripts/bench_batch.py; never by the app or its tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path


def speed_up_moto() -> None:
    """Make moto's DynamoDB usable at this scale without changing what it answers.

    Unpatched, every request costs O(table) in slow Python: each query sorts the whole table
    comparing `DynamoType`s through `cast_value` and sizes every item of the partition, each
    transaction deep-copies every table it touches for its rollback, and each attribute of a
    response goes through the generic serializer. With a few thousand items per function
    that is 0.1-0.5 s per call: hours per replay. Patched (moto 5.2): string/binary
    comparisons and begins_with skip `cast_value`; the table's key order is kept until an
    item is put or deleted, an item's size until it is updated; a transaction snapshots only
    the items it names (restored if it fails, as moto's own rollback would); AttributeValues
    of the common kinds are serialized directly. EVAL_CAPTURE_VERIFY_MOTO=1 recomputes each
    shortcut the slow way and asserts the same result (tests/ pass under it too)."""
    import base64
    import copy
    import types

    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb import models as backend
    from moto.dynamodb.models import table as tables
    from moto.dynamodb.models.dynamo_type import DynamoType

    if getattr(DynamoType, "_eval_capture_fast", False):
        return
    verify = os.environ.get("EVAL_CAPTURE_VERIFY_MOTO") == "1"  # check each shortcut
    DynamoType._eval_capture_fast = True
    eq, lt = DynamoType.__eq__, DynamoType.__lt__

    def fast_eq(self, other):
        t = self.type
        if (t == "S" or t == "B") and type(other) is DynamoType and other.type == t:
            return self.value == other.value
        return eq(self, other)

    def fast_lt(self, other):
        t = self.type
        if (t == "S" or t == "B") and type(other) is DynamoType and other.type == t:
            return self.value < other.value
        return lt(self, other)

    DynamoType.__eq__, DynamoType.__lt__ = fast_eq, fast_lt
    DynamoType.__ne__ = lambda self, other: not fast_eq(self, other)

    def key_of(v):
        return None if v is None else v.cast_value

    # The table's items in key order, kept until an item is put or deleted.
    def all_items(self):
        cached = self.__dict__.get("_eval_sorted")
        if cached is None or verify:
            items = [i for h in self.items.values()
                     for i in (h.values() if self.range_key_attr else [h])]
            fresh = sorted(items, key=lambda x: (key_of(x.hash_key), key_of(x.range_key))
                           if x.range_key else key_of(x.hash_key))
            assert cached is None or [id(i) for i in cached] == [id(i) for i in fresh]
            cached = self._eval_sorted = fresh
        return list(cached)

    def changes_keys(method):
        def wrapper(self, *args, **kwargs):
            self.__dict__.pop("_eval_sorted", None)
            return method(self, *args, **kwargs)
        return wrapper

    tables.Table.put_item = changes_keys(tables.Table.put_item)
    tables.Table.delete_item = changes_keys(tables.Table.delete_item)

    def sorted_items(self, hash_key_attrs, range_key_attrs, items):
        attrs = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        items.sort(key=lambda x: tuple(x.attrs[a].cast_value for a in attrs))
        return items

    tables.Table.all_items, tables.Table.sorted_items = all_items, sorted_items

    transact = backend.DynamoDBBackend.transact_write_items
    no_table_copy = types.SimpleNamespace(
        deepcopy=lambda x, memo=None: x if isinstance(x, tables.Table) else copy.deepcopy(
            x, memo), copy=copy.copy)

    def transact_write_items(self, transact_items):
        saved = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key") or op["Item"]
            h = DynamoType(key[table.hash_key_attr])
            r = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            old = table.items.get(h, {}).get(r) if r is not None else table.items.get(h)
            saved.append((table, h, r, copy.deepcopy(old)))
        backend.copy = no_table_copy
        try:
            return transact(self, transact_items)
        except Exception:
            for table, h, r, old in reversed(saved):
                table.__dict__.pop("_eval_sorted", None)
                if r is None:
                    table.items.pop(h, None) if old is None else table.items.__setitem__(h, old)
                elif old is None:
                    table.items[h].pop(r, None)
                else:
                    table.items[h][r] = old
            raise
        finally:
            backend.copy = copy

    backend.DynamoDBBackend.transact_write_items = transact_write_items

    size = DynamoType.size

    def fast_size(self):
        if self.type == "S" or self.type == "B":
            return len(self.value) if isinstance(self.value, bytes) else len(
                self.value.encode())
        return size(self)

    DynamoType.size = fast_size

    # An item's size, kept until it is updated in place (puts make new items).
    def item_size(self):
        cached = self.__dict__.get("_eval_size")
        if cached is not None and not verify:
            return cached
        n = 0
        for k, v in self.attrs.items():
            x = v.value
            n += len(k.encode()) + (len(x) if type(x) is bytes else len(x.encode()) if (
                v.type == "S" or v.type == "B") else v.size())
        assert cached is None or cached == n
        self._eval_size = n
        return n

    from moto.dynamodb.models.dynamo_type import Item
    Item.size = item_size
    update_item = backend.DynamoDBBackend.update_item

    def forget_size(self, table_name, key):
        try:
            table = self.get_table(table_name)
            h = DynamoType(key[table.hash_key_attr])
            r = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            item = table.get_item(h, r)
        except Exception:
            return
        if item is not None:
            item.__dict__.pop("_eval_size", None)

    def update_item_forgetting_size(self, table_name, key, *args, **kwargs):
        forget_size(self, table_name, key)
        try:
            return update_item(self, table_name, key, *args, **kwargs)
        finally:
            forget_size(self, table_name, key)

    backend.DynamoDBBackend.update_item = update_item_forgetting_size

    compare = DynamoType.compare

    def fast_compare(self, op, objs):
        if (op == "BEGINS_WITH" and self.type == "S" and len(objs) == 1
                and type(objs[0]) is DynamoType and objs[0].type == "S"):
            return self.value.startswith(objs[0].value)
        return compare(self, op, objs)

    DynamoType.compare = fast_compare

    # Responses: an AttributeValue of the common kinds serialized directly (the generic
    # serializer walks its ten members through alias lookups, ~50 us each, per attribute).
    structure = BaseJSONSerializer._serialize_type_structure

    def attribute_value(v):
        if not isinstance(v, dict) or len(v) != 1:
            return None
        ((t, x),) = v.items()
        if t in ("S", "N"):
            return {t: str(x)} if isinstance(x, str) else None
        if t == "B":
            return {t: base64.b64encode(x).decode()} if isinstance(x, bytes) else None
        if t == "M":
            m = {k: attribute_value(i) for k, i in x.items()}
            return None if any(i is None for i in m.values()) else {t: m}
        if t == "L":
            items = [attribute_value(i) for i in x]
            return None if any(i is None for i in items) else {t: items}
        return None

    def fast_structure(self, serialized, value, shape, key):
        if key and shape.name == "AttributeValue" and (out := attribute_value(value)) is not None:
            if verify:
                expected: dict = {}
                structure(self, expected, value, shape, key)
                assert expected == {key: out}, (expected, out)
            serialized[key] = out
            return
        structure(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = fast_structure


class MotoProcess:
    def __init__(self, endpoint: str, pid: int):
        self.endpoint, self.pid = endpoint, pid

    def cpu_seconds(self) -> float:
        """CPU time the server has used so far (Linux /proc): work AWS would do elsewhere."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def moto_process(fast: bool = True):
    """moto in server mode in a process of its own (a MotoProcess): its CPU time does not
    compete with the measured code for this process's GIL, as AWS's would not."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = ("import sys; sys.path.insert(0, {here!r}); import fastmoto; "
            "{patch}from moto.server import main; main(['-H', '127.0.0.1', '-p', '{port}'])"
            ).format(here=str(Path(__file__).parent), port=port,
                     patch="fastmoto.speed_up_moto(); " if fast else "")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        yield MotoProcess(endpoint, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
