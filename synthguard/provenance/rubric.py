"""The local signals of the C2PA Asset Signals Rubric, evaluated from the rubric's own YAML over a manifest store.

Source: the C2PA Asset Rubrics 1.0 (C2PA Conformance Task Force, 2026-08-06; ``asset-rubric-signals-local.yml`` in
``provenance/data``, CC BY 4.0). A rubric is YAML: an information block (metadata, ``$variables``, named
``_expressions``), then statements: an ``id``, a json-formula ``expression`` and its ``reportText``. The rubric
asks validators to use it unmodified, so it is evaluated, not re-implemented: a small json-formula interpreter
(``provenance.formula``) covers the subset the shipped rubrics use (fields, quoted identifiers, ``@``,
``$variables``, indexes, filter projections, ``|| && !``, comparisons, JSON and string literals, multi-select lists
and hashes, ``length``, ``contains``, ``startsWith`` and the rubric's own named expressions). Anything else is
refused when the rubric loads.

Evaluation is node-local, as in the C2PA's reference evaluator (``c2pa_signals_rubric_evaluator.py``): every
statement runs on each manifest of the crJSON alone, and a flat ingredient (no manifest) that declares a
``digitalSourceType`` becomes a pseudo manifest with one ``c2pa.created`` action of that type, asserted by the
manifest that lists it. A named expression called with arguments sees them as ``$args`` (``$args[0]`` the first)
and keeps the caller's ``@``, as the reference evaluator does and the YAML needs (the prose says argument 0 becomes
``@``). Where the YAML says more than the prose, it is evaluated as written:
- inception signals count ``c2pa.opened`` as well as ``c2pa.created`` actions;
- only the assertion labelled exactly ``c2pa.actions.v2`` is read: a manifest with v1 ``c2pa.actions`` has no
  inception signal and is ``ambiguousActions`` (its action list reads as empty);
- ``mediaUnknownProvenance`` reads the first ``c2pa.ingredient.v3`` only (not v1, v2 or ``c2pa.ingredient.v3__1``);
- ``perceptibleNonGenAI`` also holds for the "possibly GenAI" types (digitalArt, composite).
A statement that cannot be evaluated on a manifest (a type error on hostile data) has the value None and says why.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path

from synthguard.errors import InputError, one_line
from synthguard.provenance.formula import FUNCTIONS, FormulaError, Interpreter, check_names, compile_formula, json_type
from synthguard.provenance.products import Product

LOCAL_SIGNALS_FILE = "asset-rubric-signals-local.yml"
INTEGRITY_FILE = "asset-rubric-integrity.yml"
MAX_CRJSON_BYTES = 64 * 1024 * 1024  # crJSON of the c2pa-rs fixtures: 8-190 KB
MAX_RUBRIC_BYTES = 1024 * 1024
MAX_MANIFESTS = 1000
CAPTURE_SIGNALS = ("inception:signal_capturedMedia", "inception:signal_capturedMediaStitched")


# --- the rubric ----------------------------------------------------------------------------------------------------

class SignalCategory(str, Enum):
    INCEPTION = "inception"
    TRANSFORMATION = "transformation"
    VALIDATION = "validation"
    GENERAL = "general"


def _category(statement_id: str) -> SignalCategory:
    prefix = statement_id.partition(":")[0] if ":" in statement_id else None
    return next((c for c in SignalCategory if c.value == prefix), SignalCategory.GENERAL)


def _localised(text, language: str) -> str | None:
    if isinstance(text, str):
        return text.strip()
    if isinstance(text, dict):
        chosen = text.get(language, text.get("en", next(iter(text.values()), None)))
        return chosen.strip() if isinstance(chosen, str) else None
    return None


@dataclass(frozen=True)
class Statement:
    """One expression statement of a rubric."""

    id: str
    expression: str
    tree: tuple
    report_true: str | None
    report_false: str | None
    fail_if_matched: bool = False


@dataclass(frozen=True)
class Rubric:
    """A loaded asset rubric: metadata, variables, compiled named expressions and expression statements."""

    name: str
    version: str
    date: str
    issuer: str
    language: str
    variables: dict
    expressions: dict  # name -> syntax tree
    statements: tuple[Statement, ...]
    source: str

    @classmethod
    def from_text(cls, text: str, *, source: str) -> Rubric:
        if len(text) > MAX_RUBRIC_BYTES:
            raise InputError(f"the rubric {source} is over {MAX_RUBRIC_BYTES} bytes")
        import yaml  # noqa: PLC0415 (a rubric is parsed only when a manifest is evaluated against it)

        try:
            docs = list(yaml.safe_load_all(text))
        except (yaml.YAMLError, RecursionError) as exc:
            raise InputError(f"the rubric {source} is not valid YAML: {one_line(exc)}") from None
        info = docs[0] if docs and isinstance(docs[0], dict) else None
        meta = info.get("rubric_metadata") if info else None
        if not isinstance(meta, dict) or not all(meta.get(k) for k in ("name", "version", "date")):
            raise InputError(f"the rubric {source} has no rubric_metadata with a name, version and date")
        variables, named = info.get("variables") or {}, info.get("expressions") or {}
        for what, mapping, prefix in (("variables", variables, "$"), ("expressions", named, "_")):
            if not isinstance(mapping, dict) or not all(isinstance(k, str) and k.startswith(prefix) for k in mapping):
                raise InputError(f"the rubric {source}: {what} must be a mapping of names starting with {prefix!r}")
        language = str(meta.get("language") or "en")
        names = (set(FUNCTIONS) | set(named), set(variables) | {"$args"})
        expressions = {name: cls._compile(body, f"{source} expression {name}", names)
                       for name, body in named.items()}
        statements, seen = [], set()
        for doc in docs[1:]:
            for entry in doc if isinstance(doc, list) else [doc]:
                if not isinstance(entry, dict) or "block" in entry or "expression" not in entry:
                    continue  # data blocks and information statements evaluate nothing
                sid = entry.get("id")
                if not isinstance(sid, str) or not sid or sid in seen:
                    raise InputError(f"the rubric {source} has a statement with a missing or repeated id: {sid!r}")
                seen.add(sid)
                report = entry.get("reportText")
                if isinstance(report, dict) and {"true", "false"} & set(report):
                    when_true, when_false = report.get("true"), report.get("false")
                else:
                    when_true = when_false = report  # one text whatever the value
                statements.append(Statement(
                    sid, str(entry["expression"]).strip(), cls._compile(entry["expression"], f"{source} {sid}", names),
                    _localised(when_true, language), _localised(when_false, language),
                    entry.get("failIfMatched") is True))
        if not statements:
            raise InputError(f"the rubric {source} has no expression statements")
        return cls(str(meta["name"]), str(meta["version"]), str(meta["date"]), str(meta.get("issuer") or ""),
                   language, variables, expressions, tuple(statements), source)

    @staticmethod
    def _compile(body, where: str, names: tuple[set, set]) -> tuple:
        """The tree of one expression; its functions and variables must be known (``names``) when it loads."""
        try:
            tree = compile_formula(body)
            check_names(tree, *names)
        except (FormulaError, RecursionError) as exc:
            raise InputError(f"the rubric {where} cannot be evaluated here: {one_line(exc) or 'nested too deeply'}") \
                from None
        return tree

    @classmethod
    def from_file(cls, path: str | Path) -> Rubric:
        path = Path(path)
        try:
            if path.stat().st_size > MAX_RUBRIC_BYTES:
                raise InputError(f"the rubric {path} is over {MAX_RUBRIC_BYTES} bytes")
            return cls.from_text(path.read_text(encoding="utf-8"), source=str(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the rubric {path}: {one_line(exc)}") from None

    @classmethod
    @functools.cache
    def shipped(cls, file: str = LOCAL_SIGNALS_FILE) -> Rubric:
        """A rubric shipped in ``provenance/data`` (loaded once; the local signals one unless named)."""
        if file not in (LOCAL_SIGNALS_FILE, INTEGRITY_FILE):
            raise InputError(f"no shipped rubric is called {file!r}: {LOCAL_SIGNALS_FILE} or {INTEGRITY_FILE}")
        text = resources.files("synthguard.provenance").joinpath("data", file).read_text(encoding="utf-8")
        return cls.from_text(text, source=f"shipped {file}")

    def evaluate(self, statement: Statement, data) -> tuple[bool | None, str | None]:
        """(value, error) of one statement on one JSON value; value None when it cannot be evaluated."""
        try:
            raw = Interpreter(self.variables, self.expressions).run(statement.tree, data)
        except FormulaError as exc:
            return None, str(exc)
        except RecursionError:
            return None, "the data nest too deeply to evaluate"
        return _as_signal(raw) != statement.fail_if_matched, None


def _as_signal(value) -> bool:
    # The reference evaluator's reading of an expression's value as a signal: a list holds when it is non-empty, a
    # number when it is above 0, any other non-null value always.
    if isinstance(value, (list, bool)):
        return bool(value)
    return value > 0 if json_type(value) == "number" else value is not None


# --- results -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignalResult:
    id: str  # the rubric's statement id, e.g. "inception:signal_capturedMedia"
    category: SignalCategory
    value: bool | None  # None: could not be evaluated (error says why)
    report_text: str  # the rubric's own English text for the value
    error: str | None = None

    @property
    def name(self) -> str:
        """The signal's name as the Conforming Products List writes it ("capturedMedia")."""
        return self.id.rpartition(":")[2].removeprefix("signal_")

    def to_dict(self) -> dict:
        return {"id": self.id, "category": self.category.value, "value": self.value,
                "report_text": self.report_text, "error": self.error}


@dataclass(frozen=True)
class Subject:
    """The signing certificate's subject as the crJSON gives it."""

    common_name: str | None
    organization: str | None
    organizational_unit: str | None = None

    def __str__(self) -> str:
        return ", ".join(v for v in (self.common_name, self.organization) if v) or "unknown signer"

    def to_dict(self) -> dict:
        return {"CN": self.common_name, "O": self.organization, "OU": self.organizational_unit}


@dataclass(frozen=True)
class Ingredient:
    index: int | None  # the ingredient's manifest in RubricReport.manifests; None when not in the store
    relationship: str | None
    label: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ManifestSignals:
    """The local signals of one manifest (or pseudo manifest) of the store."""

    index: int
    label: str | None
    asserted_by: Subject | None
    format: str | None
    pseudo: bool  # a flat ingredient's declared source type, asserted by the manifest that lists it
    ingredients: tuple[Ingredient, ...]
    signals: tuple[SignalResult, ...]
    error: str | None = None  # the manifest could not be evaluated at all

    @property
    def true_signals(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.signals if s.value is True)

    @property
    def unevaluated(self) -> tuple[SignalResult, ...]:
        return tuple(s for s in self.signals if s.value is None)

    def claims_outside_scope(self, product: Product | None) -> tuple[str, ...]:
        """The signals true here that ``product`` may not claim (none when no product is known)."""
        if product is None:
            return ()
        return tuple(s for s in self.true_signals if not product.may_claim(s))

    def to_dict(self) -> dict:
        return {"index": self.index, "label": self.label, "pseudo": self.pseudo,
                "asserted_by": self.asserted_by.to_dict() if self.asserted_by else None, "format": self.format,
                "ingredients": [i.to_dict() for i in self.ingredients], "true_signals": list(self.true_signals),
                "signals": [s.to_dict() for s in self.signals], "error": self.error}

    def describe(self) -> tuple[str, ...]:
        kind = "declared source of a flat ingredient" if self.pseudo else "manifest"
        head = f"{kind} {self.index} ({self.asserted_by or 'unknown signer'})"
        if self.error:
            return (f"{head}: not evaluated: {self.error}",)
        texts = [s.report_text for s in self.signals if s.value is True]
        lines = [f"{head}: " + ("; ".join(texts) if texts else "no local signal")]
        lines += [f"  not evaluated: {s.id} ({s.error})" for s in self.unevaluated]
        return tuple(lines)


@dataclass(frozen=True)
class RubricReport:
    """The local signals of every manifest of a store; ``manifests[0]`` is the active manifest."""

    rubric_name: str
    rubric_version: str
    rubric_date: str
    manifests: tuple[ManifestSignals, ...]
    problems: tuple[str, ...] = ()  # what of the store could not be evaluated

    @property
    def active(self) -> ManifestSignals | None:
        return self.manifests[0] if self.manifests and not self.manifests[0].pseudo else None

    @property
    def true_signals(self) -> tuple[str, ...]:
        """The ids of the signals that hold in the active manifest."""
        return self.active.true_signals if self.active else ()

    @property
    def complete(self) -> bool:
        return not self.problems and all(not m.error and not m.unevaluated for m in self.manifests)

    def to_dict(self) -> dict:
        return {"rubric": {"name": self.rubric_name, "version": self.rubric_version, "date": self.rubric_date},
                "true_signals": list(self.true_signals), "complete": self.complete,
                "manifests": [m.to_dict() for m in self.manifests], "problems": list(self.problems)}

    def describe(self) -> tuple[str, ...]:
        lines = [f"{self.rubric_name} {self.rubric_version} ({self.rubric_date[:10]}), local signals:"]
        for manifest in self.manifests:
            lines += ["  " + line for line in manifest.describe()]
        lines += [f"  not evaluated: {problem}" for problem in self.problems]
        return tuple(lines)


# --- evaluation over a manifest store ------------------------------------------------------------------------------

def _load(crjson) -> dict:
    if isinstance(crjson, dict):
        return crjson
    if not isinstance(crjson, (str, bytes, bytearray)):
        raise InputError(f"the crJSON must be JSON text or a dict, not {type(crjson).__name__}")
    if len(crjson) > MAX_CRJSON_BYTES:
        raise InputError(f"the crJSON is {len(crjson)} long, over the {MAX_CRJSON_BYTES} byte limit")
    try:
        data = json.loads(crjson)  # bytes: UTF-8 (or -16/-32, as json detects)
    except RecursionError:
        raise InputError("the crJSON nests too deeply to read") from None
    except ValueError as exc:  # UnicodeDecodeError included
        raise InputError(f"the crJSON is not valid JSON: {one_line(exc)}") from None
    if not isinstance(data, dict):
        raise InputError(f"the crJSON must be a JSON object, not {json_type(data)}")
    return data


def _string(value) -> str | None:
    return value if isinstance(value, str) else None


def _object(value) -> dict:
    return value if isinstance(value, dict) else {}


def _subject(manifest: dict) -> Subject | None:
    subject = _object(_object(manifest.get("signature")).get("certificateInfo")).get("subject")
    if not isinstance(subject, dict):
        return None
    return Subject(_string(subject.get("CN")), _string(subject.get("O")), _string(subject.get("OU")))


def _parent_label(url: str) -> str:
    # self#jumbf=/c2pa/urn:c2pa:<uuid>[:<claim generator>]/... -> urn:c2pa:<uuid>[:...]
    start = url.find("urn:c2pa:")
    return url[start:].split("/")[0] if start >= 0 else url


def _opened_source_type(assertions: dict) -> str | None:
    for key, value in assertions.items():
        if key.startswith("c2pa.actions") and isinstance(value, dict) and isinstance(value.get("actions"), list):
            for action in value["actions"]:
                if isinstance(action, dict) and action.get("action") == "c2pa.opened":
                    dst = _string(action.get("digitalSourceType"))
                    if dst:
                        return dst
    return None


@dataclass
class _Node:
    manifest: dict
    label: str | None
    asserted_by: Subject | None
    format: str | None
    pseudo: bool = False
    ingredients: list = field(default_factory=list)
    error: str | None = None


def _nodes(manifests: list) -> list[_Node]:
    """The evaluation nodes, as the reference evaluator builds them: each manifest, then pseudo manifests."""
    nodes = []
    for m in manifests:
        if not isinstance(m, dict):
            nodes.append(_Node({}, None, None, None, error=f"it is a JSON {json_type(m)}, not an object"))
            continue
        claim = _object(m.get("claim.v2") or m.get("claim"))
        nodes.append(_Node(m, _string(m.get("label")), _subject(m), _string(claim.get("dc:format"))))
    index_of = {node.label: i for i, node in enumerate(nodes) if node.label}
    for node in list(nodes):
        assertions = node.manifest.get("assertions")
        if not isinstance(assertions, dict):
            continue
        for key, value in assertions.items():
            if key.startswith("c2pa.thumbnail") and isinstance(value, dict) and node.format is None:
                node.format = _string(value.get("format"))
            if not key.startswith("c2pa.ingredient") or not isinstance(value, dict):
                continue
            url = _string(_object(value.get("activeManifest")).get("url"))
            relationship = _string(value.get("relationship"))
            if url:
                label = _parent_label(url)
                node.ingredients.append(Ingredient(index_of.get(label), relationship, label))
                continue
            dst = _string(value.get("digitalSourceType")) or _opened_source_type(assertions)
            if dst:
                pseudo = {"label": None, "assertions": {"c2pa.actions.v2": {
                    "allActionsIncluded": True, "actions": [{"action": "c2pa.created", "digitalSourceType": dst}]}}}
                node.ingredients.append(Ingredient(len(nodes), relationship, None))
                nodes.append(_Node(pseudo, None, node.asserted_by, _string(value.get("dc:format")), pseudo=True))
    return nodes


def _signal(rubric: Rubric, statement: Statement, data) -> SignalResult:
    value, error = rubric.evaluate(statement, data)
    if value is None:
        text = f"could not be evaluated: {error}"
    else:
        text = (statement.report_true if value else statement.report_false) or f"{statement.id}: {value}"
    return SignalResult(statement.id, _category(statement.id), value, text, error)


def evaluate_local_signals(crjson: dict | str | bytes, *, rubric: Rubric | None = None) -> RubricReport:
    """The C2PA local signals of every manifest of a store, from its crJSON (``c2pa.Reader.crjson()``).

    Bad input (not JSON, not a crJSON object, over the size limit) raises InputError; a manifest or a statement
    that cannot be evaluated is reported as such in the result.
    """
    rubric = rubric or Rubric.shipped()
    data = _load(crjson)
    manifests = data.get("manifests")
    if not isinstance(manifests, list):
        raise InputError("the crJSON has no 'manifests' list: it is not a C2PA crJSON manifest store")
    problems = []
    if not manifests:
        problems.append("the manifest store holds no manifest")
    if len(manifests) > MAX_MANIFESTS:
        problems.append(f"{len(manifests) - MAX_MANIFESTS} manifests past the first {MAX_MANIFESTS} were not "
                        "evaluated")
        manifests = manifests[:MAX_MANIFESTS]
    results = []
    for i, node in enumerate(_nodes(manifests)):
        signals = () if node.error else tuple(_signal(rubric, s, node.manifest) for s in rubric.statements)
        results.append(ManifestSignals(i, node.label, node.asserted_by, node.format, node.pseudo,
                                       tuple(node.ingredients), signals, node.error))
    return RubricReport(rubric.name, rubric.version, rubric.date, tuple(results), tuple(problems))


def claims_outside_scope(report: RubricReport, product: Product | None) -> tuple[str, ...]:
    """The signals true in the active manifest that its signer's product may not claim.

    With no product (the signer is not in the Conforming Products List, or not on the C2PA Trust List, where a
    list entry means nothing) there is no listed scope to check, so nothing is returned: the caller decides what
    an unlisted signer's claims are worth.
    """
    return report.active.claims_outside_scope(product) if report.active else ()
