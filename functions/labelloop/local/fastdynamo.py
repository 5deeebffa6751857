"""moto's DynamoDB with a request's cost independent of the table's size, answering the same.

Unpatched (moto 5.2), every request costs O(table) in slow Python: a query sorts the whole table
comparing `DynamoType`s through `cast_value` (a GSI query scans every item), each transaction
deep-copies every table it touches for its rollback, and each attribute of a response goes
through the generic serializer. With 20,000 samples in one function that is most of a second per
call, and the deep copies make memory grow with every concurrent transaction.

`install()` patches moto in this process (idempotent):
- parsed expressions: a condition or filter expression is parsed once per (expression, names,
  values) and its tree reused (evaluating a tree changes nothing in it), and so is the
  request layer's validating parse of every condition: a bulk import's transactions repeat
  one condition per item, and parsing was a third of moto's time;
- exact shortcuts: string/binary comparisons and begins_with skip `cast_value`; an item's size is
  kept until it is updated; a transaction snapshots only the items it names (restored if it
  fails, as moto's own rollback would); AttributeValues of the common kinds are serialized
  directly;
- indexes: per partition the sorted range keys, per GSI its hash key -> sorted index keys, both
  kept up to date by every put, update, delete and rollback, so that a query hands moto's own
  query code only the slice it will read (its key condition, its ExclusiveStartKey, its Limit
  plus the one item after, which decides LastEvaluatedKey). Indexes are derived data: built
  lazily and left out of pickles and copies.

EVAL_CAPTURE_VERIFY_MOTO=1 recomputes every shortcut the slow way and asserts the same result
(the conditional-write, transaction and capture tests pass under it).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import threading
import types
from bisect import bisect_left, bisect_right

_MAX_ITEM = 400 * 1024  # DynamoDB's item size limit
_DERIVED = ("_eval_sorted", "_fd_parts", "_fd_gsis")  # per-table state never pickled
_local = threading.local()  # the candidates moto's query reads, per thread


def _verify() -> bool:
    return os.environ.get("EVAL_CAPTURE_VERIFY_MOTO") == "1"


def install() -> None:
    """Patch moto's DynamoDB in this process; a second call does nothing."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    if getattr(DynamoType, "_eval_capture_fast", False):
        return
    DynamoType._eval_capture_fast = True
    _exact_shortcuts()
    _indexes()
    _parsed_conditions()
    _validated_conditions()


speed_up_moto = install  # the name scripts/ used


def _key_of(v):
    return None if v is None else v.cast_value


def _exact_shortcuts() -> None:
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb import models as backend
    from moto.dynamodb.models import table as tables
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    verify = _verify()
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

    # The table's items in key order (for scans), kept until an item is put or deleted; a
    # query reads the candidates its indexes chose instead.
    def all_items(self):
        chosen = getattr(_local, "candidates", None)
        if chosen is not None and chosen[0] is self:
            return list(chosen[1])
        cached = self.__dict__.get("_eval_sorted")
        if cached is None or verify:
            items = [i for h in self.items.values()
                     for i in (h.values() if self.range_key_attr else [h])]
            fresh = sorted(items, key=lambda x: (_key_of(x.hash_key), _key_of(x.range_key))
                           if x.range_key else _key_of(x.hash_key))
            assert cached is None or [id(i) for i in cached] == [id(i) for i in fresh]
            cached = self._eval_sorted = fresh
        return list(cached)

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
                _sync(table, h, r)
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

    Item.size = item_size

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
        if t == "BOOL" or t == "NULL":
            return {t: x} if x is True or x is False else None
        if t == "SS" or t == "NS":
            return {t: list(x)} if all(isinstance(i, str) for i in x) else None
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

    # An item (a map of AttributeValues) and a list of items (Query's Items) in one step: the
    # generic walk costs ~0.1 ms per attribute, most of a request with a page of items.
    serialize_map, serialize_list = (BaseJSONSerializer._serialize_type_map,
                                     BaseJSONSerializer._serialize_type_list)

    def item_of(value, shape):
        if shape.type_name != "map" or shape.value.name != "AttributeValue" or not isinstance(
                value, dict):
            return None
        out = {k: attribute_value(v) for k, v in value.items()}
        return None if any(v is None for v in out.values()) else out

    def fast_map(self, serialized, value, shape, key):
        out = item_of(value, shape)
        if out is None:
            return serialize_map(self, serialized, value, shape, key)
        if verify:
            expected: dict = {}
            serialize_map(self, expected, value, shape, key)
            assert expected == {self.get_serialized_name(shape, key): out}, (expected, out)
        self._default_serialize(serialized, out, shape, key)

    def fast_list(self, serialized, value, shape, key):
        items = [item_of(v, shape.member) for v in value] if isinstance(value, list) else [None]
        if any(i is None for i in items):
            return serialize_list(self, serialized, value, shape, key)
        if verify:
            expected: dict = {}
            serialize_list(self, expected, value, shape, key)
            assert expected == {self.get_serialized_name(shape, key): items}, (expected, items)
        self._default_serialize(serialized, items, shape, key)

    BaseJSONSerializer._serialize_type_map = fast_map
    BaseJSONSerializer._serialize_type_list = fast_list


# -- indexes ------------------------------------------------------------------------------

class _Sorted:
    """Sort keys in order, each with the primary key (hash, range) of its item."""

    __slots__ = ("keys", "pks")

    def __init__(self):
        self.keys: list = []
        self.pks: list = []

    def add(self, key, pk) -> None:
        i = bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            self.pks[i] = pk
            return
        self.keys.insert(i, key)
        self.pks.insert(i, pk)

    def remove(self, key) -> None:
        i = bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i], self.pks[i]


def _partition(table, h) -> _Sorted | None:
    """The range keys of partition `h`, in order (built on first use)."""
    parts = table.__dict__.setdefault("_fd_parts", {})
    part = parts.get(h)
    if part is None:
        part = parts[h] = _Sorted()
        for r in table.items.get(h, {}):
            part.keys.append(_key_of(r))
            part.pks.append((h, r))
        order = sorted(range(len(part.keys)), key=part.keys.__getitem__)
        part.keys = [part.keys[i] for i in order]
        part.pks = [part.pks[i] for i in order]
    return part


def _gsi_entry(item, hash_attr, range_attr):
    hv = item.attrs.get(hash_attr)
    rv = item.attrs.get(range_attr)
    if not hv or not rv:
        return None
    return (_key_of(hv), (_key_of(rv), _key_of(item.hash_key), _key_of(item.range_key)))


class _Gsi:
    """One GSI (hash and range key): hash value -> sort keys in index order, and the entry of
    each item in it, so that a changed item can leave its old place."""

    def __init__(self, table, hash_attr: str, range_attr: str):
        self.hash_attr, self.range_attr = hash_attr, range_attr
        self.by_hash: dict = {}
        self.entry_of: dict = {}
        for h, part in table.items.items():
            for r, item in part.items():
                self.sync((h, r), item)

    def sync(self, pk, item) -> None:
        old = self.entry_of.pop(pk, None)
        if old is not None:
            self.by_hash[old[0]].remove(old[1])
        new = None if item is None else _gsi_entry(item, self.hash_attr, self.range_attr)
        if new is not None:
            self.entry_of[pk] = new
            self.by_hash.setdefault(new[0], _Sorted()).add(new[1], pk)


def _gsi(table, index_name: str) -> _Gsi | None:
    gsis = table.__dict__.setdefault("_fd_gsis", {})
    if index_name in gsis:
        return gsis[index_name]
    index = next((i for i in table.global_indexes or [] if i.name == index_name), None)
    hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"] if index else []
    ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"] if index else []
    if len(hashes) != 1 or len(ranges) != 1 or not table.range_key_attr:
        return None  # not worth indexing: moto's own query handles it
    gsis[index_name] = g = _Gsi(table, hashes[0], ranges[0])
    return g


def _sync(table, h, r) -> None:
    """Bring the indexes of `table` in line with its item (h, r) as it is now."""
    if r is None:
        return
    d = table.__dict__
    part = d.get("_fd_parts", {}).get(h)
    items = table.items.get(h)
    item = items.get(r) if items else None
    if part is not None:
        if item is None:
            part.remove(_key_of(r))
        else:
            part.add(_key_of(r), (h, r))
    for g in d.get("_fd_gsis", {}).values():
        if g is not None:
            g.sync((h, r), item)


def _bounds(keys: list, comparison: str | None, objs: list, key=None) -> tuple[int, int] | None:
    """The slice of sorted `keys` (compared by `key`) a key condition selects; None when not
    sure."""
    n = len(keys)
    if not comparison:
        return 0, n
    try:
        vals = [_key_of(o) for o in objs]
        first = None if not keys else keys[0] if key is None else key(keys[0])
        if keys and any(type(v) is not type(first) for v in vals):
            return None
        v = vals[0]
        if comparison == "EQ":
            return bisect_left(keys, v, key=key), bisect_right(keys, v, key=key)
        if comparison == "LT":
            return 0, bisect_left(keys, v, key=key)
        if comparison == "LE":
            return 0, bisect_right(keys, v, key=key)
        if comparison == "GT":
            return bisect_right(keys, v, key=key), n
        if comparison == "GE":
            return bisect_left(keys, v, key=key), n
        if comparison == "BETWEEN":
            return bisect_left(keys, v, key=key), bisect_right(keys, vals[1], key=key)
        if comparison == "BEGINS_WITH" and isinstance(v, str) and v and ord(v[-1]) < 0x10FFFF:
            # The strings starting with v are those from v up to v with its last code point
            # incremented.
            return (bisect_left(keys, v, key=key),
                    bisect_left(keys, v[:-1] + chr(ord(v[-1]) + 1), key=key))
    except (TypeError, IndexError):
        return None
    return None


def _first_of(keys: list, lo_hi, start, forward: bool, limit) -> tuple[int, int]:
    """The candidates' slice: matching keys after the start key, at most `limit` of them, and
    the one item after them in reading order (moto's loop stops on it: LastEvaluatedKey)."""
    lo, hi = lo_hi
    n = len(keys)
    if forward:
        if start is not None:
            lo = max(lo, bisect_right(keys, start))
        end = hi if limit is None else min(hi, lo + limit)
        return lo, min(n, max(end, lo) + 1)
    if start is not None:
        hi = min(hi, bisect_left(keys, start))
    begin = lo if limit is None else max(lo, hi - limit)
    return max(0, min(begin, hi) - 1), hi


def _candidates(table, hash_key, comparison, objs, limit, esk, forward, index_name,
                hash_conditions, range_conditions, filter_kwargs):
    """The items moto's query may read, in key order; None to let moto read the table."""
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT

    if filter_kwargs or (range_conditions and len(range_conditions) > 1):
        return None
    if index_name is None:
        if hash_key is None:
            return None
        if not table.range_key_attr:
            item = table.items.get(hash_key)
            return [] if item is None else [item]
        sorted_keys = _partition(table, hash_key)
        start = None
        if esk is not None:
            if table.range_key_attr not in esk:
                return None
            start = _key_of(DynamoType(esk[table.range_key_attr]))
        keys = sorted_keys.keys
    else:
        g = _gsi(table, index_name)
        if g is None or not hash_conditions or len(hash_conditions) != 1:
            return None
        attr, value = hash_conditions[0]
        if attr != g.hash_attr:
            return None
        if range_conditions and range_conditions[0][0] != g.range_attr:
            return None
        sorted_keys = g.by_hash.get(_key_of(value)) or _Sorted()
        start = None
        if esk is not None:
            try:
                start = (_key_of(DynamoType(esk[g.range_attr])),
                         _key_of(DynamoType(esk[table.hash_key_attr])),
                         _key_of(DynamoType(esk[table.range_key_attr])))
            except KeyError:
                return None
        keys = sorted_keys.keys
        lo_hi = _bounds(keys, comparison, objs, key=lambda k: k[0])
    if index_name is None:
        lo_hi = _bounds(keys, comparison, objs)
    if lo_hi is None:
        return None
    a, b = _first_of(keys, lo_hi, start, forward, limit)
    pks = sorted_keys.pks[a:b]
    items = [table.items[h][r] for h, r in pks]
    # moto also stops at 1 MB of results. Every candidate but the last in reading order
    # matches, so once their sizes pass 1 MB moto stops there; if they stay below 1 MB by an
    # item's maximum size, no item it would read after them can stop it either.
    reading = items if forward else items[::-1]
    total = 0
    for n, item in enumerate(reading, 1):
        total += item.size()
        if total > RESULT_SIZE_LIMIT:
            return reading[:n] if forward else reading[:n][::-1]
    if total + _MAX_ITEM <= RESULT_SIZE_LIMIT:
        return items
    # Close to 1 MB (a full capture buffer is): unless the count stops it first, moto goes on
    # past the matching items, and the first item whose size would take the results over 1 MB
    # stops it with a LastEvaluatedKey although it does not match. Hand moto that item too.
    lo, hi = lo_hi
    matched = [item for k, item in zip(range(a, b), items, strict=True) if lo <= k < hi]
    if limit is not None and len(matched) > limit:
        return items
    size = sum(item.size() for item in matched)
    for k in range(hi, len(keys)) if forward else range(lo - 1, -1, -1):
        h, r = sorted_keys.pks[k]
        item = table.items[h][r]
        if size + item.size() > RESULT_SIZE_LIMIT:
            return [*matched, item] if forward else [item, *matched]
    return items


def _same(a, b) -> bool:
    items_a, count_a, last_a = a
    items_b, count_b, last_b = b
    return ([i.to_json() for i in items_a] == [i.to_json() for i in items_b]
            and count_a == count_b and last_a == last_b)


def _indexes() -> None:
    from moto.dynamodb import models as backend
    from moto.dynamodb.models import table as tables
    from moto.dynamodb.models.dynamo_type import DynamoType

    verify = _verify()
    query = tables.Table.query

    def indexed_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                      scan_index_forward, projection_expressions, index_name=None,
                      consistent_read=False, filter_expression=None, hash_key_conditions=None,
                      range_key_conditions=None, **filter_kwargs):
        args = (hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                scan_index_forward, projection_expressions, index_name, consistent_read,
                filter_expression, hash_key_conditions, range_key_conditions)
        chosen = None
        if not consistent_read or index_name is None:
            chosen = _candidates(self, hash_key, range_comparison, range_objs, limit,
                                 exclusive_start_key, scan_index_forward is not False,
                                 index_name, hash_key_conditions, range_key_conditions,
                                 filter_kwargs)
        if chosen is None:
            return query(self, *args, **filter_kwargs)
        _local.candidates = (self, chosen)
        try:
            out = query(self, *args, **filter_kwargs)
        finally:
            _local.candidates = None
        if verify or _verify():
            slow = query(self, *args, **filter_kwargs)
            assert _same(out, slow), (index_name, range_comparison, limit)
        return out

    tables.Table.query = indexed_query

    def keys_of(table, attrs):
        h = DynamoType(attrs[table.hash_key_attr])
        r = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        return h, r

    put, delete = tables.Table.put_item, tables.Table.delete_item

    def put_item(self, item_attrs, *args, **kwargs):
        self.__dict__.pop("_eval_sorted", None)
        item = put(self, item_attrs, *args, **kwargs)
        _sync(self, item.hash_key, item.range_key)
        return item

    def delete_item(self, hash_key, range_key):
        self.__dict__.pop("_eval_sorted", None)
        try:
            return delete(self, hash_key, range_key)
        finally:
            _sync(self, hash_key, range_key)

    tables.Table.put_item, tables.Table.delete_item = put_item, delete_item

    update_item = backend.DynamoDBBackend.update_item

    def forget_size(self, table_name, key):
        """The item as it is after an update: its cached size dropped, indexes in line."""
        try:
            table = self.get_table(table_name)
            h, r = keys_of(table, key)
            item = table.get_item(h, r)
        except Exception:
            return
        if item is not None:
            item.__dict__.pop("_eval_size", None)
        _sync(table, h, r)

    def update_item_in_line(self, table_name, key, *args, **kwargs):
        forget_size(self, table_name, key)
        try:
            return update_item(self, table_name, key, *args, **kwargs)
        finally:
            forget_size(self, table_name, key)

    backend.DynamoDBBackend.update_item = update_item_in_line

    def getstate(self):
        state = dict(self.__dict__)
        for name in _DERIVED:
            state.pop(name, None)
        return state

    tables.Table.__getstate__ = getstate


_PARSED_MAX = 1024  # distinct expressions kept (most carry no per-item values)


def _expression_key(expr, names, values) -> tuple:
    """What decides a parse, as a dict key. Binary values arrive as bytes, which JSON does
    not take: a key that raised there failed moto's request (a 500 to the caller)."""
    return (expr, json.dumps(names, sort_keys=True),
            json.dumps(values, sort_keys=True, default=_bytes_as_json))


def _bytes_as_json(value):
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": value.hex()}
    raise TypeError(f"{type(value).__name__} in an expression's values")


def _remember(memo: dict, key: tuple, make):
    """`memo[key]`, made once; a full memo starts over (most expressions carry no per-item
    values, so there are few)."""
    hit = memo.get(key)
    if hit is None:
        if len(memo) >= _PARSED_MAX:
            memo.clear()
        hit = memo[key] = make()
    return hit


def _parsed_conditions() -> None:
    from moto.dynamodb import models as backend
    from moto.dynamodb.models import table as tables

    parse = tables.get_filter_expression
    verify = _verify()
    parsed: dict[tuple, object] = {}

    class Checked:
        """EVAL_CAPTURE_VERIFY_MOTO: the reused tree and a fresh parse answer alike."""

        def __init__(self, reused, fresh):
            self._reused, self._fresh = reused, fresh

        def expr(self, item):
            out = self._reused.expr(item)
            assert out == self._fresh.expr(item)
            return out

    def get_filter_expression(expr, names, values):
        if expr is None:
            return parse(expr, names, values)
        op = _remember(parsed, _expression_key(expr, names, values),
                       lambda: parse(expr, names, values))
        return Checked(op, parse(expr, names, values)) if verify or _verify() else op

    tables.get_filter_expression = backend.get_filter_expression = get_filter_expression


def _validated_conditions() -> None:
    """moto's request layer parses every condition once more before the backend does, only to
    validate it and list the names and values it uses (a transaction: every item's). That
    parse is done once per (expression, names, values); each call gets its own lists, which
    moto's callers extend."""
    from moto.dynamodb import comparisons, responses

    done: dict[tuple, tuple] = {}

    def fresh(*args) -> tuple:  # an invalid expression raises here, and is not kept
        parser = comparisons.ConditionExpressionParser(*args)
        tree = parser.parse()
        return tree, tuple(parser.expr_attr_names_found), tuple(parser.expr_attr_values_found)

    class Parser(comparisons.ConditionExpressionParser):
        def parse(self):
            args = (self.condition_expression, self.expression_attribute_names,
                    self.expression_attribute_values)
            tree, names, values = _remember(done, _expression_key(*args), lambda: fresh(*args))
            if _verify():
                assert (names, values) == fresh(*args)[1:]
            self.expr_attr_names_found, self.expr_attr_values_found = list(names), list(values)
            return tree

    responses.create_condition_expression_parser = Parser
