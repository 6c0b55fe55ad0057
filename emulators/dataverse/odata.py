"""OData query options of the Dataverse Web API: ``$select``, ``$filter``, ``$orderby``, ``$top``,
``$expand``, ``$count``, ``$skiptoken`` and parameter aliases.

Sources (MicrosoftDocs/powerapps-docs, ``powerapps-docs/developer/data-platform/webapi/``):
``query/overview.md`` (option names are case-sensitive; ``$skip``/``$search``/``$format`` unsupported),
``query/filter-rows.md`` (operators, functions, ``''`` escaping, lookup navigation,
``Microsoft.Dynamics.CRM.In`` and other query functions, parameter aliases),
``query/page-results.md``; and Power Platform admin ``language-collations.md``: the default collation
of an English (1033) environment is ``_CI_AI``, so string comparison ignores case AND accents ("cafe" =
"Café"). SQL Server ``=`` also ignores trailing spaces.

Comparison follows SQL three-valued logic: a comparison with a null column value is *unknown*, so
``lastname ne 'x'`` does not match rows whose ``lastname`` is null (only ``eq null``/``ne null`` test
nulls), and ``not`` of unknown stays unknown.

The module is pure: no I/O, no knowledge of the schema. The caller (records/query code) supplies
``known_columns`` to reject unknown properties and a :data:`NavResolver` to follow lookups.

Over 400 lines on purpose: one grammar (the query options' parser and the expression tree that evaluates
them); split, the precedence rules and three-valued logic would span files.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AllHint",
    "AnyHint",
    "ContainsHint",
    "EqHint",
    "ExpandItem",
    "Expr",
    "Hint",
    "NavResolver",
    "ODataError",
    "QueryOptions",
    "Row",
    "escape_literal",
    "fold",
    "index_hint",
    "like_fold",
    "parse_filter",
    "parse_query",
    "sort_rows",
    "split_top_level",
]

Row = Mapping[str, Any]
NavResolver = Callable[[Row, str], Row | None]
KnownColumns = Callable[[str], bool]

# Error codes (includes/data-service-error-codes.md and observed responses).
CODE_QUERY_SYNTAX = "0x80060888"  # also "Could not find a property named ..."
CODE_NOT_SUPPORTED = CODE_QUERY_SYNTAX

SUPPORTED_OPTIONS = frozenset(
    {"$select", "$filter", "$orderby", "$top", "$expand", "$count", "$skiptoken", "$apply"}
)
REJECTED_OPTIONS = frozenset({"$skip", "$search", "$format"})


class ODataError(Exception):
    """A client error the Web API answers as ``{"error": {"code": ..., "message": ...}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def _bad(message: str, code: str = CODE_QUERY_SYNTAX) -> ODataError:
    return ODataError(400, code, message)


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------


# Non-ASCII spaces (NBSP, en/em/thin spaces, U+3000...) are distinct characters for SQL Server
# (``N'a' + NCHAR(160) + N'b' <> N'a b'``, and trailing NBSPs are not padding), but NFKD would turn them
# into U+0020: they are parked in the private-use area around the decomposition.
_SPACES = [chr(c) for c in range(0x80, 0x3001) if chr(c).isspace()]
_PARK_SPACES = str.maketrans({ch: chr(0xE000 + i) for i, ch in enumerate(_SPACES)})
_UNPARK_SPACES = str.maketrans({chr(0xE000 + i): ch for i, ch in enumerate(_SPACES)})


def _strip_accents(s: str) -> str:
    """Accents removed and compatibility forms (width, ligatures) folded, as the ``_CI_AI`` collation
    compares them; other whitespace stays distinct from a space."""
    if s.isascii():
        return s
    decomposed = unicodedata.normalize("NFKD", s.translate(_PARK_SPACES))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).translate(_UNPARK_SPACES)


def like_fold(value: str) -> str:
    """Case- and accent-insensitive form used by contains/startswith/endswith (SQL LIKE)."""
    return _strip_accents(value).casefold()


def fold(value: Any) -> Any:
    """Normalisation for equality and index keys under a ``_CI_AI`` collation.

    Strings: accents removed, case folded, trailing spaces ignored (SQL Server pads for ``=``).
    Everything else is returned unchanged (ints and floats that are equal hash equal).
    """
    if isinstance(value, str):
        return like_fold(value).rstrip(" ")
    return value


def escape_literal(s: str) -> str:
    """Escape a value for use inside a single-quoted OData string literal (``O'Bryan`` -> ``O''Bryan``)."""
    return s.replace("'", "''")


# --------------------------------------------------------------------------------------------
# Literal values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DateTimeValue:
    value: dt.datetime
    date_only: bool


_INT_RE = re.compile(r"[+-]?\d+\Z")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")


def _variants(literal: Any) -> frozenset[Any]:
    """Folded values a stored value may have (after :func:`fold`) to be *equal* to ``literal``.

    String literals also match numbers/booleans they spell, because ``In`` sends every value as a string
    (``PropertyValues=["0","1"]`` for ``statecode``).
    """
    if isinstance(literal, str):
        out: set[Any] = {fold(literal)}
        text = literal.strip()
        if _INT_RE.match(text):
            out.add(int(text))
        elif _FLOAT_RE.match(text):
            out.add(float(text))
        low = text.lower()
        if low == "true":
            out.add(True)
        elif low == "false":
            out.add(False)
        return frozenset(out)
    return frozenset({fold(literal)})


def _parse_datetime_value(text: str) -> dt.datetime | None:
    t = text.strip()
    if not t:
        return None
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(t)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, str):
        return _parse_datetime_value(value)
    return None


def _compare_key(value: Any) -> Any:
    if isinstance(value, str):
        return fold(value)
    return value


def _cmp(op: str, left: Any, right: Any) -> bool | None:
    """Compare two operand values; None means SQL *unknown*."""
    if isinstance(right, _DateTimeValue) or isinstance(left, _DateTimeValue):
        return _cmp_datetime(op, left, right)
    if right is None or left is None:
        return None  # SQL: any comparison with NULL is unknown
    if op == "eq":
        return fold(left) in _variants(right)
    if op == "ne":
        return fold(left) not in _variants(right)
    a, b = _compare_key(left), _compare_key(right)
    if isinstance(a, str) != isinstance(b, str):
        # A number against a string that spells one.
        try:
            if isinstance(a, str):
                a = float(a)
            else:
                b = float(b)
        except ValueError:
            return None
    try:
        return _ordered(op, a, b)
    except TypeError:
        return None


def _cmp_datetime(op: str, left: Any, right: Any) -> bool | None:
    date_only = False
    values: list[dt.datetime | None] = []
    for side in (left, right):
        if isinstance(side, _DateTimeValue):
            date_only = date_only or side.date_only
            values.append(side.value)
        else:
            values.append(_as_datetime(side) if side is not None else None)
    a, b = values
    if a is None or b is None:
        return None
    if date_only:
        da, db = a.date(), b.date()
        return _ordered(op, da, db)
    return _ordered(op, a, b)


_ORDER_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def _ordered(op: str, a: Any, b: Any) -> bool:
    return bool(_ORDER_OPS[op](a, b))


# --------------------------------------------------------------------------------------------
# Expression tree
# --------------------------------------------------------------------------------------------


class Expr:
    """A parsed ``$filter`` expression."""

    def evaluate(self, row: Row, nav: NavResolver) -> bool:
        """True when the row matches (unknown counts as no match, like SQL WHERE)."""
        return self._eval3(row, nav) is True

    def _eval3(self, row: Row, nav: NavResolver) -> bool | None:
        raise NotImplementedError

    def columns(self) -> set[str]:
        """Columns the expression reads; lookup targets appear as ``"nav/column"``."""
        return set()


class _Operand:
    def value(self, row: Row, nav: NavResolver) -> Any:
        raise NotImplementedError

    def columns(self) -> set[str]:
        return set()


@dataclass
class _Literal(_Operand):
    literal: Any

    def value(self, row: Row, nav: NavResolver) -> Any:
        return self.literal


@dataclass
class _Path(_Operand):
    navigation: str | None
    column: str

    def value(self, row: Row, nav: NavResolver) -> Any:
        if self.navigation is None:
            return row.get(self.column)
        related = nav(row, self.navigation)
        if related is None:
            return None
        return related.get(self.column)

    def columns(self) -> set[str]:
        if self.navigation is None:
            return {self.column}
        return {f"{self.navigation}/{self.column}"}

    @property
    def name(self) -> str:
        return self.column if self.navigation is None else f"{self.navigation}/{self.column}"


@dataclass
class Comparison(Expr):
    op: str
    left: _Operand
    right: _Operand

    def _eval3(self, row: Row, nav: NavResolver) -> bool | None:
        left = self.left.value(row, nav)
        if isinstance(self.right, _Literal) and self.right.literal is None:
            # "col eq null" / "col ne null" are IS NULL / IS NOT NULL; other operators with null: unknown.
            if self.op == "eq":
                return left is None
            if self.op == "ne":
                return left is not None
            return None
        return _cmp(self.op, left, self.right.value(row, nav))

    def columns(self) -> set[str]:
        return self.left.columns() | self.right.columns()


@dataclass
class And(Expr):
    left: Expr
    right: Expr

    def _eval3(self, row: Row, nav: NavResolver) -> bool | None:
        a = self.left._eval3(row, nav)
        if a is False:
            return False
        b = self.right._eval3(row, nav)
        if b is False:
            return False
        if a is None or b is None:
            return None
        return True

    def columns(self) -> set[str]:
        return self.left.columns() | self.right.columns()


@dataclass
class Or(Expr):
    left: Expr
    right: Expr

    def _eval3(self, row: Row, nav: NavResolver) -> bool | None:
        a = self.left._eval3(row, nav)
        if a is True:
            return True
        b = self.right._eval3(row, nav)
        if b is True:
            return True
        if a is None or b is None:
            return None
        return False

    def columns(self) -> set[str]:
        return self.left.columns() | self.right.columns()


@dataclass
class Not(Expr):
    operand: Expr

    def _eval3(self, row: Row, nav: NavResolver) -> bool | None:
        v = self.operand._eval3(row, nav)
        return None if v is None else not v

    def columns(self) -> set[str]:
        return self.operand.columns()


_LIKE_WILDCARDS = frozenset("%_[")
_ESCAPED_WILDCARD = re.compile(r"\[([%_\[])\]")


def like_literal_text(pattern: str) -> str | None:
    """The plain text a LIKE pattern stands for when its only wildcards are escaped ones (``[%]``,
    ``[_]``, ``[[]``: what a client sends to search a value literally), ``None`` when it has a real
    wildcard. Such a pattern is a substring search, so it can use the q-gram index like any other.
    """
    if _LIKE_WILDCARDS.intersection(_ESCAPED_WILDCARD.sub("", pattern)):
        return None
    return _ESCAPED_WILDCARD.sub(r"\1", pattern)


def like_regex(pattern: str) -> re.Pattern[str] | None:
    """A T-SQL LIKE pattern's wildcards as a regex, ``None`` when it has none (a plain substring).

    Dataverse documents ``contains``/``startswith``/``endswith`` arguments as LIKE patterns: ``%`` any
    string, ``_`` one character, ``[abc]``/``[a-f]`` one of a set, ``[^...]`` none of it; a wildcard
    between brackets (``[%]``, ``[_]``, ``[[]``) is itself (powerapps-docs
    ``developer/data-platform/wildcard-characters.md``). An unclosed ``[`` is taken literally.
    """
    if not _LIKE_WILDCARDS.intersection(pattern):
        return None
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        close = pattern.find("]", i + 2) if ch == "[" else -1
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == "[" and close != -1:
            body = pattern[i + 1 : close]
            negated = body.startswith("^") and len(body) > 1
            members = body[1:] if negated else body
            escaped = "".join(
                "-" if c == "-" and 0 < k < len(members) - 1 else re.escape(c) for k, c in enumerate(members)
            )
            out.append(f"[{'^' if negated else ''}{escaped}]")
            i = close
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


@dataclass
class StringFunction(Expr):
    """contains / startswith / endswith (SQL LIKE under the _CI_AI collation)."""

    name: str
    target: _Operand
    argument: str
    _like: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._text = like_literal_text(self.argument)
        self._like = like_regex(like_fold(self.argument)) if self._text is None else None

    @property
    def plain(self) -> bool:
        """No unescaped LIKE wildcard: the argument is a substring (what the merged OR chains may index)."""
        return self._like is None

    @property
    def text(self) -> str:
        """The substring a plain argument searches for (escaped wildcards as themselves)."""
        return self.argument if self._text is None else self._text

    def _eval3(self, row: Row, nav: NavResolver) -> bool | None:
        value = self.target.value(row, nav)
        if value is None:
            return None
        text = like_fold(str(value))
        if self._like is not None:
            if self.name == "contains":
                return self._like.search(text) is not None
            if self.name == "startswith":
                return self._like.match(text) is not None
            return any(self._like.fullmatch(text, start) for start in range(len(text) + 1))
        needle = like_fold(self.text)
        if self.name == "contains":
            return needle in text
        if self.name == "startswith":
            return text.startswith(needle)
        return text.endswith(needle)

    def columns(self) -> set[str]:
        return self.target.columns()


class ContainsAny(Expr):
    """``contains(col,'a') or contains(col,'b') or ...`` on one column, evaluated at once.

    Lookup queries OR hundreds of ``contains`` clauses (LinkedIn slugs, domains). Evaluated clause by
    clause that is (rows x clauses) folds and a 500-deep recursion per row; here the row value is folded
    once and only needles sharing a q-gram with it are tested. Same three-valued result as the OR chain.
    """

    def __init__(self, target: _Operand, needles: Sequence[str]) -> None:
        self.target = target
        self.needles = [like_fold(n) for n in needles]
        self.q = max(1, min(8, min(len(n) for n in self.needles)))
        self.by_gram: dict[str, list[str]] = {}
        for needle in self.needles:
            self.by_gram.setdefault(needle[-self.q :], []).append(needle)

    def _eval3(self, row: Row, nav: NavResolver) -> bool | None:
        value = self.target.value(row, nav)
        if value is None:
            return None
        text = like_fold(str(value))
        q, by_gram = self.q, self.by_gram
        for end in range(q, len(text) + 1):
            candidates = by_gram.get(text[end - q : end])
            if candidates and any(needle in text for needle in candidates):
                return True
        return False

    def columns(self) -> set[str]:
        return self.target.columns()


def _or_terms(expr: Expr) -> list[Expr]:
    """The operands of a (left-deep or nested) OR chain, iteratively (chains can be 1,000 long)."""
    terms: list[Expr] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Or):
            stack.append(node.right)
            stack.append(node.left)
        else:
            terms.append(node)
    return terms


def _merge_contains(expr: Expr, minimum: int = 8) -> Expr:
    """Rewrite OR chains made only of ``contains`` on one column into ``ContainsAny`` (also under AND)."""
    if isinstance(expr, And):
        return And(_merge_contains(expr.left, minimum), _merge_contains(expr.right, minimum))
    if not isinstance(expr, Or):
        return expr
    terms = _or_terms(expr)
    if not all(
        isinstance(t, StringFunction) and t.name == "contains" and t.plain and isinstance(t.target, _Path)
        for t in terms
    ):
        keyed = _keyed_or(terms, minimum)
        if keyed is not None:
            return keyed
        # An OR of other terms (``(contains(a,'x') and (contains(b,'y') or ...)) or ...``): merge inside each.
        merged = [_merge_contains(t, minimum) for t in terms]
        while len(merged) > 1:  # a balanced tree: evaluation recurses log(n) deep, not n
            pairs = [Or(merged[i], merged[i + 1]) for i in range(0, len(merged) - 1, 2)]
            merged = pairs + merged[len(merged) - len(merged) % 2 :]
        return merged[0]
    if len(terms) < minimum:
        return expr
    targets = {t.target.name for t in terms if isinstance(t, StringFunction) and isinstance(t.target, _Path)}
    if len(targets) != 1:
        return expr
    first = terms[0]
    assert isinstance(first, StringFunction)
    return ContainsAny(first.target, [t.text for t in terms if isinstance(t, StringFunction)])


class KeyedOr(Expr):
    """``(In(a,[...]) and <rest>) or (contains(a,'x') and <rest>) or ...`` on one column ``a``, evaluated
    at once.

    Lookup queries pair a value with the values of another column, hundreds of times per query. Evaluated
    term by term that is (rows x terms) folds; here the row's value is folded once, and only the terms
    whose key it holds (equal value, or a ``contains`` needle sharing a q-gram with it) evaluate their
    rest. Same three-valued result as the OR chain.
    """

    def __init__(self, target: _Path, terms: Sequence[tuple[Expr, Expr]]) -> None:
        self.target = target
        self.rests = [rest for _, rest in terms]
        self.equal: dict[Any, list[Expr]] = {}
        self.needles: dict[str, list[Expr]] = {}
        for key, rest in terms:
            if isinstance(key, InFunction):
                for value in key._folded:
                    self.equal.setdefault(value, []).append(rest)
            elif isinstance(key, StringFunction):
                self.needles.setdefault(like_fold(key.text), []).append(rest)
        self.q = max(1, min(8, min((len(n) for n in self.needles), default=1)))
        self.by_gram: dict[str, list[str]] = {}
        for needle in self.needles:
            self.by_gram.setdefault(needle[-self.q :], []).append(needle)

    def _eval3(self, row: Row, nav: NavResolver) -> bool | None:
        value = self.target.value(row, nav)
        if value is None:  # every key is unknown: (unknown and rest) is unknown unless rest is false
            return None if any(rest._eval3(row, nav) is not False for rest in self.rests) else False
        rests: list[Expr] = list(self.equal.get(fold(value), ()))
        if self.needles:
            text = like_fold(str(value))
            hit: set[str] = set()
            for end in range(self.q, len(text) + 1):
                for needle in self.by_gram.get(text[end - self.q : end], ()):
                    if needle not in hit and needle in text:
                        hit.add(needle)
                        rests += self.needles[needle]
        result: bool | None = False
        for rest in rests:
            outcome = rest._eval3(row, nav)
            if outcome is True:
                return True
            if outcome is None:
                result = None
        return result

    def columns(self) -> set[str]:
        return self.target.columns().union(*(rest.columns() for rest in self.rests))


def _keyed_or(terms: Sequence[Expr], minimum: int) -> KeyedOr | None:
    """A ``KeyedOr`` for an OR of ``(<In or contains on one column> and <rest>)`` terms, else None."""
    if len(terms) < minimum:
        return None
    pairs: list[tuple[Expr, Expr]] = []
    names: set[str] = set()
    for term in terms:
        if not isinstance(term, And):
            return None
        key = term.left
        if isinstance(key, InFunction) and not key.negated:
            names.add(key.target.name)
        elif (
            isinstance(key, StringFunction)
            and key.name == "contains"
            and key.plain
            and isinstance(key.target, _Path)
            and like_fold(key.text)
        ):
            names.add(key.target.name)
        else:
            return None
        pairs.append((key, _merge_contains(term.right)))
    if len(names) != 1:
        return None
    first = pairs[0][0]
    assert isinstance(first, InFunction | StringFunction) and isinstance(first.target, _Path)
    return KeyedOr(first.target, pairs)


@dataclass
class InFunction(Expr):
    """``Microsoft.Dynamics.CRM.In`` / ``NotIn``."""

    target: _Path
    values: list[Any]
    negated: bool = False
    _folded: frozenset[Any] = field(default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        folded: set[Any] = set()
        for v in self.values:
            folded |= _variants(v)
        self._folded = frozenset(folded)

    def _eval3(self, row: Row, nav: NavResolver) -> bool | None:
        value = self.target.value(row, nav)
        if value is None:
            return None
        hit = fold(value) in self._folded
        return not hit if self.negated else hit

    def columns(self) -> set[str]:
        return self.target.columns()


@dataclass
class BetweenFunction(Expr):
    """``Microsoft.Dynamics.CRM.Between`` / ``NotBetween`` (inclusive bounds)."""

    target: _Path
    low: Any
    high: Any
    negated: bool = False

    def _eval3(self, row: Row, nav: NavResolver) -> bool | None:
        value = self.target.value(row, nav)
        lo = _cmp("ge", value, self.low)
        hi = _cmp("le", value, self.high)
        if lo is None or hi is None:
            return None
        inside = lo and hi
        return not inside if self.negated else inside

    def columns(self) -> set[str]:
        return self.target.columns()


@dataclass
class BooleanOperand(Expr):
    """A bare boolean column or literal used as a condition (``donotemail`` / ``true``)."""

    operand: _Operand

    def _eval3(self, row: Row, nav: NavResolver) -> bool | None:
        value = self.operand.value(row, nav)
        if value is None:
            return None
        return bool(value)

    def columns(self) -> set[str]:
        return self.operand.columns()


# --------------------------------------------------------------------------------------------
# Lexer
# --------------------------------------------------------------------------------------------


@dataclass
class _Token:
    kind: str  # ident, string, dstring, number, guid, datetime, enum, punct, end
    text: str
    pos: int
    value: Any = None


_GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-])")
_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?(?![\w:.-])", re.IGNORECASE
)
_NUMBER_RE = re.compile(r"-?(\d+\.\d+|\d+)([eE][+-]?\d+)?[mMdDfFlL]?(?![\w.])")
_IDENT_RE = re.compile(r"[@$A-Za-z_][A-Za-z0-9_.]*")
_PUNCT = "(),/=[]:{}"


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
            continue
        if ch == "'":
            start = i
            i += 1
            buf: list[str] = []
            while True:
                if i >= n:
                    raise _bad(f"There is an unterminated literal at position {n} in '{text}'.")
                if text[i] == "'":
                    if i + 1 < n and text[i + 1] == "'":
                        buf.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(text[i])
                i += 1
            tokens.append(_Token("string", text[start:i], start, "".join(buf)))
            continue
        if ch == '"':
            start = i
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                raise _bad(f"There is an unterminated literal at position {n} in '{text}'.")
            i += 1
            try:
                val = json.loads(text[start:i])
            except json.JSONDecodeError as exc:
                raise _bad(f"Syntax error at position {start} in '{text}'.") from exc
            tokens.append(_Token("dstring", text[start:i], start, val))
            continue
        m = _GUID_RE.match(text, i)
        if m:
            tokens.append(_Token("guid", m.group(0), i, m.group(0).lower()))
            i = m.end()
            continue
        m = _DATETIME_RE.match(text, i)
        if m:
            raw = m.group(0)
            parsed = _parse_datetime_value(raw)
            if parsed is None:
                raise _bad(f"Syntax error at position {i} in '{text}'.")
            tokens.append(_Token("datetime", raw, i, _DateTimeValue(parsed, "T" not in raw.upper())))
            i = m.end()
            continue
        m = _NUMBER_RE.match(text, i)
        if m:
            raw = m.group(0)
            digits = raw.rstrip("mMdDfFlL")
            num: int | float = int(digits) if re.fullmatch(r"-?\d+", digits) else float(digits)
            tokens.append(_Token("number", raw, i, num))
            i = m.end()
            continue
        m = _IDENT_RE.match(text, i)
        if m:
            ident = m.group(0)
            end = m.end()
            if end < n and text[end] == "'" and "." in ident:
                # Enum literal: Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'
                close = text.find("'", end + 1)
                if close < 0:
                    raise _bad(f"There is an unterminated literal at position {n} in '{text}'.")
                tokens.append(_Token("enum", text[i : close + 1], i, text[end + 1 : close]))
                i = close + 1
                continue
            tokens.append(_Token("ident", ident, i))
            i = end
            continue
        if ch in _PUNCT:
            tokens.append(_Token("punct", ch, i))
            i += 1
            continue
        raise _bad(f"Syntax error: character '{ch}' is not valid at position {i} in '{text}'.")
    tokens.append(_Token("end", "", n))
    return tokens


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------

_COMPARISON_OPS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_UNSUPPORTED_OPS = frozenset({"add", "sub", "mul", "div", "mod", "has"})
_STRING_FUNCTIONS = frozenset({"contains", "startswith", "endswith"})
_CRM_PREFIX = "Microsoft.Dynamics.CRM."


class _Parser:
    def __init__(
        self,
        text: str,
        aliases: Mapping[str, str],
        known_columns: KnownColumns | None,
        entity_type: str | None,
    ) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.i = 0
        self.aliases = aliases
        self.known_columns = known_columns
        self.entity_type = entity_type

    # -- token helpers -------------------------------------------------------------------
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def is_keyword(self, word: str) -> bool:
        return self.tok.kind == "ident" and self.tok.text == word

    def is_punct(self, ch: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == ch

    def expect_punct(self, ch: str) -> None:
        if not self.is_punct(ch):
            raise self.syntax_error()
        self.advance()

    def syntax_error(self, pos: int | None = None) -> ODataError:
        p = self.tok.pos if pos is None else pos
        return _bad(f"Syntax error at position {p} in '{self.text}'.")

    # -- grammar -------------------------------------------------------------------------
    def parse(self) -> Expr:
        expr = self.parse_or()
        if self.tok.kind != "end":
            raise self.syntax_error()
        return expr

    def parse_or(self) -> Expr:
        left = self.parse_and()
        while self.is_keyword("or"):
            self.advance()
            left = Or(left, self.parse_and())
        return left

    def parse_and(self) -> Expr:
        left = self.parse_unary()
        while self.is_keyword("and"):
            self.advance()
            left = And(left, self.parse_unary())
        return left

    def parse_unary(self) -> Expr:
        if self.is_keyword("not"):
            self.advance()
            return Not(self.parse_unary())
        return self.parse_comparison()

    def parse_comparison(self) -> Expr:
        if self.is_punct("("):
            self.advance()
            inner = self.parse_or()
            self.expect_punct(")")
            return inner
        start = self.tok
        if (
            start.kind == "ident"
            and self.tokens[self.i + 1].kind == "punct"
            and self.tokens[self.i + 1].text == "("
        ):
            return self.parse_function()
        left = self.parse_operand()
        if self.tok.kind == "ident" and self.tok.text in _COMPARISON_OPS:
            op = self.advance().text
            right = self.parse_operand()
            if isinstance(left, _Literal) and isinstance(right, _Literal):
                raise _bad(
                    f"Syntax error at position {start.pos} in '{self.text}'. "
                    "A comparison needs a property on one side."
                )
            if isinstance(left, _Literal):
                left, right, op = right, left, _MIRROR[op]
            return Comparison(op, left, right)
        if self.tok.kind == "ident" and self.tok.text in _UNSUPPORTED_OPS:
            raise _bad(
                f"The '{self.tok.text}' operator is not supported in the Dataverse Web API "
                f"(position {self.tok.pos} in '{self.text}')."
            )
        return BooleanOperand(left)

    def parse_operand(self) -> _Operand:
        t = self.tok
        if t.kind == "ident":
            if t.text == "null":
                self.advance()
                return _Literal(None)
            if t.text in ("true", "false"):
                self.advance()
                return _Literal(t.text == "true")
            if t.text.startswith("@"):
                self.advance()
                return self.resolve_alias_operand(t)
            return self.parse_path()
        if t.kind in ("string", "dstring", "number", "guid", "datetime", "enum"):
            self.advance()
            return _Literal(t.value)
        raise self.syntax_error()

    def resolve_alias_operand(self, t: _Token) -> _Operand:
        raw = self.alias_text(t)
        sub = _Parser(raw, {}, None, self.entity_type)
        operand = sub.parse_operand()
        if sub.tok.kind != "end":
            raise sub.syntax_error()
        if isinstance(operand, _Path):
            self.check_column(operand.name)
        return operand

    def alias_text(self, t: _Token) -> str:
        if t.text not in self.aliases:
            raise _bad(f"The parameter alias '{t.text}' is not defined in the request URI.")
        return self.aliases[t.text]

    def parse_path(self) -> _Path:
        first = self.advance()
        if first.kind != "ident" or first.text in _COMPARISON_OPS or first.text in ("and", "or", "not"):
            raise self.syntax_error(first.pos)
        if self.is_punct("/"):
            self.advance()
            second = self.advance()
            if second.kind != "ident":
                raise self.syntax_error(second.pos)
            if self.is_punct("/"):
                raise _bad(
                    "Only one level of navigation is supported in $filter "
                    f"(position {self.tok.pos} in '{self.text}')."
                )
            path = _Path(first.text, second.text)
        else:
            path = _Path(None, first.text)
        self.check_column(path.name)
        return path

    def check_column(self, name: str) -> None:
        if self.known_columns is not None and not self.known_columns(name):
            raise unknown_property(name, self.entity_type)

    def parse_function(self) -> Expr:
        name_tok = self.advance()
        name = name_tok.text
        self.expect_punct("(")
        if name in _STRING_FUNCTIONS:
            target = self.parse_operand()
            if isinstance(target, _Literal):
                raise self.syntax_error(name_tok.pos)
            self.expect_punct(",")
            arg = self.parse_operand()
            self.expect_punct(")")
            if not isinstance(arg, _Literal) or not isinstance(arg.literal, str):
                raise _bad(
                    f"The second argument of '{name}' must be a string literal (position {name_tok.pos} in "
                    f"'{self.text}')."
                )
            return StringFunction(name, target, arg.literal)
        if name.startswith(_CRM_PREFIX):
            return self.parse_crm_function(name_tok, name[len(_CRM_PREFIX) :])
        raise _bad(
            f"An unknown function with name '{name}' was found. This may also be a function import or a "
            "key lookup on a navigation property, which is not allowed."
        )

    def parse_crm_function(self, name_tok: _Token, fn: str) -> Expr:
        params: dict[str, Any] = {}
        while not self.is_punct(")"):
            key = self.advance()
            if key.kind != "ident":
                raise self.syntax_error(key.pos)
            self.expect_punct("=")
            params[key.text] = self.parse_param_value()
            if self.is_punct(","):
                self.advance()
            elif not self.is_punct(")"):
                raise self.syntax_error()
        self.advance()
        if fn in ("In", "NotIn"):
            column = self.require_param(params, "PropertyName", fn)
            values = self.require_param(params, "PropertyValues", fn)
            if not isinstance(column, str):
                raise _bad(f"PropertyName of Microsoft.Dynamics.CRM.{fn} must be a string.")
            if not isinstance(values, list):
                raise _bad(f"PropertyValues of Microsoft.Dynamics.CRM.{fn} must be a collection.")
            path = self.path_from_name(column)
            return InFunction(path, values, negated=fn == "NotIn")
        if fn in ("Between", "NotBetween"):
            column = self.require_param(params, "PropertyName", fn)
            values = self.require_param(params, "PropertyValues", fn)
            if not isinstance(column, str) or not isinstance(values, list) or len(values) != 2:
                raise _bad(f"Microsoft.Dynamics.CRM.{fn} needs PropertyName and two PropertyValues.")
            path = self.path_from_name(column)
            low, high = (_coerce_scalar(v) for v in values)
            return BetweenFunction(path, low, high, negated=fn == "NotBetween")
        raise _bad(
            f"The query function 'Microsoft.Dynamics.CRM.{fn}' is not supported by the emulator "
            f"(position {name_tok.pos} in '{self.text}')."
        )

    def require_param(self, params: Mapping[str, Any], key: str, fn: str) -> Any:
        if key not in params:
            raise _bad(f"Microsoft.Dynamics.CRM.{fn} is missing the parameter '{key}'.")
        return params[key]

    def path_from_name(self, column: str) -> _Path:
        nav, _, col = column.rpartition("/")
        path = _Path(nav or None, col)
        self.check_column(path.name)
        return path

    def parse_param_value(self) -> Any:
        t = self.tok
        if t.kind == "ident" and t.text.startswith("@"):
            self.advance()
            return _parse_param_text(self.alias_text(t), self.text)
        if self.is_punct("["):
            return self.parse_array()
        operand = self.parse_operand()
        if isinstance(operand, _Path):
            raise self.syntax_error(t.pos)
        assert isinstance(operand, _Literal)
        return operand.literal

    def parse_array(self) -> list[Any]:
        self.expect_punct("[")
        out: list[Any] = []
        while not self.is_punct("]"):
            t = self.advance()
            if t.kind in ("string", "dstring", "number", "guid"):
                out.append(t.value)
            elif t.kind == "datetime":
                out.append(t.text)
            elif t.kind == "ident" and t.text in ("true", "false", "null"):
                out.append({"true": True, "false": False, "null": None}[t.text])
            else:
                raise self.syntax_error(t.pos)
            if self.is_punct(","):
                self.advance()
            elif not self.is_punct("]"):
                raise self.syntax_error()
        self.advance()
        return out


_MIRROR = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}


def _coerce_scalar(v: Any) -> Any:
    if isinstance(v, str):
        d = _DATETIME_RE.fullmatch(v.strip())
        if d:
            parsed = _parse_datetime_value(v)
            if parsed is not None:
                return _DateTimeValue(parsed, "T" not in v.upper())
        if _INT_RE.match(v.strip()):
            return int(v)
        if _FLOAT_RE.match(v.strip()):
            return float(v)
    return v


def _parse_param_text(raw: str, context: str) -> Any:
    """Value of a parameter alias used as a function argument: a literal or a JSON array."""
    text = raw.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            sub = _Parser(text, {}, None, None)
            value = sub.parse_array()
        if not isinstance(value, list):
            raise _bad(f"Syntax error in parameter value '{raw}' of '{context}'.")
        return value
    sub = _Parser(text, {}, None, None)
    operand = sub.parse_operand()
    if not isinstance(operand, _Literal) or sub.tok.kind != "end":
        raise _bad(f"Syntax error in parameter value '{raw}' of '{context}'.")
    return operand.literal


def unknown_property(name: str, entity_type: str | None) -> ODataError:
    """The Web API's answer to a column that does not exist on the table (web-api-client-errors.md)."""
    column = name.rsplit("/", 1)[-1]
    type_name = (
        f"Microsoft.Dynamics.CRM.{entity_type}" if entity_type else "Microsoft.Dynamics.CRM.crmbaseentity"
    )
    return ODataError(400, "0x80060888", f"Could not find a property named '{column}' on type '{type_name}'.")


def parse_filter(
    text: str,
    aliases: Mapping[str, str] | None = None,
    *,
    known_columns: KnownColumns | None = None,
    entity_type: str | None = None,
) -> Expr:
    """Parse a ``$filter`` value (already URL-decoded)."""
    if not text.strip():
        raise _bad("The $filter query option must not be empty.")
    return _merge_contains(_Parser(text, aliases or {}, known_columns, entity_type).parse())


# --------------------------------------------------------------------------------------------
# Query options
# --------------------------------------------------------------------------------------------


@dataclass
class ExpandItem:
    navigation: str
    select: list[str] | None = None


@dataclass
class QueryOptions:
    select: list[str] | None = None
    filter: Expr | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    top: int | None = None
    expand: list[ExpandItem] = field(default_factory=list)
    count: bool = False
    skiptoken: str | None = None


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses, brackets and quotes."""
    if "'" not in text and "(" not in text and "[" not in text:
        return text.split(sep)  # the common case, without a Python-level loop per character
    parts: list[str] = []
    depth = 0
    quote = False
    buf: list[str] = []
    for ch in text:
        if ch == "'":
            quote = not quote
        elif not quote:
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif ch == sep and depth == 0:
                parts.append("".join(buf))
                buf = []
                continue
        buf.append(ch)
    parts.append("".join(buf))
    return parts


_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _parse_select(value: str, check: Callable[[str], None]) -> list[str]:
    names = [p.strip() for p in value.split(",")]
    out: list[str] = []
    for name in names:
        if not name:
            raise _bad(f"Syntax error: empty property name in $select '{value}'.")
        if name == "*":
            continue
        if not _NAME_RE.match(name):
            raise _bad(f"Syntax error: '{name}' is not a valid property name in $select.")
        check(name)
        out.append(name)
    return out


def _parse_orderby(
    value: str, aliases: Mapping[str, str], check: Callable[[str], None]
) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for part in split_top_level(value):
        words = part.split()
        if not words or len(words) > 2:
            raise _bad(f"Syntax error in $orderby '{value}'.")
        name = words[0]
        if name.startswith("@"):
            if name not in aliases:
                raise _bad(f"The parameter alias '{name}' is not defined in the request URI.")
            name = aliases[name].strip().strip("'")
        descending = False
        if len(words) == 2:
            direction = words[1]
            if direction not in ("asc", "desc"):
                raise _bad(f"Syntax error at position {len(part)} in '{value}'.")
            descending = direction == "desc"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)?", name):
            raise _bad(f"Syntax error: '{name}' is not a valid property in $orderby.")
        check(name)
        out.append((name, descending))
    return out


def _parse_expand(
    value: str, known_columns_for: Callable[[str], KnownColumns | None] | None
) -> list[ExpandItem]:
    items: list[ExpandItem] = []
    for part in split_top_level(value):
        part = part.strip()
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?", part, re.DOTALL)
        if not m:
            raise _bad(f"Syntax error in $expand '{value}'.")
        nav, inner = m.group(1), m.group(2)
        select: list[str] | None = None
        if inner is not None and inner.strip():
            for opt in split_top_level(inner, ";"):
                key, eq, val = opt.partition("=")
                key = key.strip()
                if not eq:
                    raise _bad(f"Syntax error in $expand '{value}'.")
                if key == "$select":
                    checker = known_columns_for(nav) if known_columns_for else None

                    def check(name: str, checker: KnownColumns | None = checker) -> None:
                        if checker is not None and not checker(name):
                            raise unknown_property(name, None)

                    select = _parse_select(val, check)
                elif key in ("$filter", "$orderby", "$top", "$expand"):
                    # query/join-tables.md: Dataverse applies $filter/$orderby/$top inside $expand to
                    # collection-valued navigation properties and nests $expand; there is no service
                    # message to copy, since the service accepts them. This is the emulator's own limit.
                    raise _bad(
                        f"The query option '{key}' inside $expand of navigation property '{nav}' is not "
                        "supported by the emulator: only $select is."
                    )
                else:
                    raise _bad(f"The query parameter '{key}' is not supported in $expand.")
        items.append(ExpandItem(nav, select))
    return items


def parse_query(
    params: Mapping[str, str],
    *,
    known_columns: KnownColumns | None = None,
    entity_type: str | None = None,
    expand_columns: Callable[[str], KnownColumns | None] | None = None,
) -> QueryOptions:
    """Parse decoded query parameters (including ``@p`` aliases) into :class:`QueryOptions`.

    ``known_columns(name)`` is called for every property named in ``$select``, ``$filter`` and ``$orderby``
    (``"nav/col"`` for lookup navigation); returning False raises the Web API's 0x80060888 error naming
    ``entity_type``. It may also raise its own :class:`ODataError`. ``expand_columns(nav)`` returns the
    checker for ``$select`` inside ``$expand`` (or None).

    Raises ODataError 400 for unsupported options (``$skip``, ``$search``, ``$format``, ``$apply``) and for
    system options spelled in another case (``$Filter``): option names are case-sensitive.
    """
    aliases = {k: v for k, v in params.items() if k.startswith("@")}

    def check(name: str) -> None:
        if known_columns is not None and not known_columns(name):
            raise unknown_property(name, entity_type)

    for key in params:
        if not key.startswith("$"):
            continue
        if key in REJECTED_OPTIONS:
            raise _bad(f"The query parameter {key} is not supported")
        if key == "$apply":
            raise ODataError(
                400, CODE_NOT_SUPPORTED, "The query parameter $apply is not supported by the emulator"
            )
        if key not in SUPPORTED_OPTIONS:  # includes other spellings such as $Filter: names are case-sensitive
            raise _bad(f"The query parameter {key} is not supported")

    opts = QueryOptions()
    if "$select" in params:
        opts.select = _parse_select(params["$select"], check)
    if "$filter" in params:
        opts.filter = parse_filter(
            params["$filter"], aliases, known_columns=known_columns, entity_type=entity_type
        )
    if "$orderby" in params:
        opts.orderby = _parse_orderby(params["$orderby"], aliases, check)
    if "$top" in params:
        raw = params["$top"].strip()
        if not re.fullmatch(r"\d+", raw):
            raise _bad(
                f"Invalid value '{params['$top']}' for $top query option found. "
                "The $top query option requires a non-negative integer value."
            )
        opts.top = int(raw)
    if "$expand" in params:
        opts.expand = _parse_expand(params["$expand"], expand_columns)
    if "$count" in params:
        raw = params["$count"].strip()
        if raw not in ("true", "false"):
            raise _bad(f"'{params['$count']}' is not a valid count option.")
        opts.count = raw == "true"
    if "$skiptoken" in params:
        opts.skiptoken = params["$skiptoken"]
    return opts


# --------------------------------------------------------------------------------------------
# Index hint and ordering
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EqHint:
    """Every matching row has ``fold(row[column])`` in ``values``."""

    column: str
    values: frozenset[Any]


@dataclass(frozen=True)
class ContainsHint:
    """Every matching row's ``like_fold(str(row[column]))`` contains one of ``needles`` (already folded)."""

    column: str
    needles: tuple[str, ...]


@dataclass(frozen=True)
class AnyHint:
    """OR: every matching row satisfies one of ``parts``."""

    parts: tuple[Hint, ...]


@dataclass(frozen=True)
class AllHint:
    """AND: every matching row satisfies each of ``parts`` (the store uses the cheapest one)."""

    parts: tuple[Hint, ...]


Hint = EqHint | ContainsHint | AnyHint | AllHint


def index_hint(expr: Expr | None) -> Hint | None:
    """What the store's indexes can narrow ``expr`` to: a superset of the matching rows (rows may still fail
    other conditions: always re-evaluate). None means a full scan is needed.

    ``eq`` / ``In`` give an :class:`EqHint` (hash indexes), ``contains`` / ``startswith`` / ``endswith`` and
    their merged forms a :class:`ContainsHint` (q-gram indexes), ``or`` an :class:`AnyHint` when every branch
    has one, ``and`` an :class:`AllHint` of the branches that have one. Paths through a navigation property
    and comparisons with null have none.
    """
    if expr is None:
        return None
    if isinstance(expr, Comparison):
        if expr.op != "eq":
            return None
        left, right = expr.left, expr.right
        if isinstance(left, _Literal):
            left, right = right, left
        if not isinstance(left, _Path) or left.navigation is not None or not isinstance(right, _Literal):
            return None
        lit = right.literal
        if lit is None or isinstance(lit, _DateTimeValue):
            return None
        return EqHint(left.column, _variants(lit))
    if isinstance(expr, InFunction):
        if expr.negated or expr.target.navigation is not None:
            return None
        return EqHint(expr.target.column, expr._folded)
    if isinstance(expr, StringFunction):
        target = expr.target
        if not isinstance(target, _Path) or target.navigation is not None or not expr.plain:
            return None  # a LIKE pattern with wildcards is not a substring the q-gram index can look up
        needle = like_fold(expr.text)
        return ContainsHint(target.column, (needle,)) if needle else None
    if isinstance(expr, ContainsAny):
        target = expr.target
        if not isinstance(target, _Path) or target.navigation is not None or not all(expr.needles):
            return None
        return ContainsHint(target.column, tuple(expr.needles))
    if isinstance(expr, KeyedOr):
        # One part per term, each narrowed by its key AND by its rest when the rest has an index: a lookup
        # of (common last name, rare first name) pairs then touches the rare first names' rows only.
        target = expr.target
        if target.navigation is not None or not all(expr.needles):
            return None
        keyed: list[tuple[Hint, Expr]] = [
            (EqHint(target.column, frozenset({value})), rest)
            for value, rests in expr.equal.items()
            for rest in rests
        ]
        keyed += [
            (ContainsHint(target.column, (needle,)), rest)
            for needle, rests in expr.needles.items()
            for rest in rests
        ]
        parts: list[Hint] = []
        for key, rest in keyed:
            rest_hint = index_hint(rest)
            parts.append(key if rest_hint is None else AllHint((key, rest_hint)))
        return parts[0] if len(parts) == 1 else AnyHint(tuple(parts))
    if isinstance(expr, And):
        found = [h for h in (index_hint(expr.left), index_hint(expr.right)) if h is not None]
        if not found:
            return None
        return found[0] if len(found) == 1 else AllHint(tuple(found))
    if isinstance(expr, Or):
        parts_or = [index_hint(term) for term in _or_terms(expr)]
        if any(h is None for h in parts_or):
            return None
        return AnyHint(tuple(h for h in parts_or if h is not None))
    return None


class _SortKey:
    """Orders None first (SQL Server ascending), strings by their folded form, mixed types by type name."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value: tuple[int, Any]
        if isinstance(value, str):
            self.value = (2, fold(value))
        elif value is None:
            self.value = (0, 0)
        elif isinstance(value, bool | int | float):
            self.value = (1, value)
        else:
            self.value = (4, str(value))

    def __lt__(self, other: _SortKey) -> bool:
        a, b = self.value, other.value
        if a[0] != b[0]:
            return a[0] < b[0]
        return bool(a[1] < b[1])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SortKey) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def sort_rows(
    rows: Iterable[Row],
    orderby: Sequence[tuple[str, bool]],
    nav: NavResolver | None = None,
) -> list[Row]:
    """Rows ordered by ``$orderby`` (stable; nulls first ascending, last descending)."""
    out = list(rows)
    for column, descending in reversed(orderby):
        navigation, _, col = column.rpartition("/")

        def key(row: Row, navigation: str = navigation, col: str = col) -> _SortKey:
            if navigation:
                related = nav(row, navigation) if nav else None
                return _SortKey(related.get(col) if related else None)
            return _SortKey(row.get(col))

        out.sort(key=key, reverse=descending)
    return out
