"""Reading, validating and saving a workspace's Dynamics configuration (optimistic concurrency).

HTTP ETags are ``"v<version>"``; ``"v0"`` is the ETag of the defaults returned before the first save.
Saving an existing configuration requires ``If-Match`` (``PreconditionRequired`` otherwise) naming the
current version (``PreconditionFailed`` otherwise, also for the loser of a concurrent save).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from core.adapters.storage.config_repository import ConfigConflict, ConfigRepository, StoredConfig
from core.domain.caller import Caller
from core.domain.catalog import PlatformField
from core.domain.config import DynamicsConfig, HistoryEntry, IntegrationUser, Step, diff_documents
from core.domain.config_validation import (
    MetadataCheck,
    Problem,
    Severity,
    problems_from_validation_error,
    validate_config,
)
from core.domain.etags import listed_etags

RECENT_WORKSPACES = 128
CustomFields = Callable[[str], Iterable[PlatformField]]
IntegrationUserLookup = Callable[[str], IntegrationUser | None]


class ConfigError(Exception):
    pass


class PreconditionRequired(ConfigError):
    def __init__(self, current_version: int) -> None:
        super().__init__("If-Match is required to change an existing configuration")
        self.current_version = current_version


class PreconditionFailed(ConfigError):
    def __init__(self, current_version: int) -> None:
        super().__init__(f"the configuration is at version {current_version}")
        self.current_version = current_version


class InvalidConfig(ConfigError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the configuration")
        self.problems = list(problems)


def etag_for(version: int) -> str:
    return f'"v{version}"'


def if_match_allows(header: str | None, version: int, exists: bool) -> bool:
    """RFC 9110 If-Match: ``*`` matches an existing resource; otherwise any listed ETag (W/ ignored)."""
    if header is None:
        return True
    tags = listed_etags(header)
    if "*" in tags:
        return exists
    return etag_for(version) in tags


@dataclass(frozen=True)
class ConfigView:
    config: DynamicsConfig
    version: int  # 0: nothing saved yet, these are the defaults
    saved_at: dt.datetime | None = None
    saved_by: str | None = None
    warnings: list[Problem] = field(default_factory=list)
    drift: list[Problem] = field(default_factory=list)

    @property
    def etag(self) -> str:
        return etag_for(self.version)


@dataclass(frozen=True)
class ValidationReport:
    errors: list[Problem]
    warnings: list[Problem]
    # Dynamics changed under steps the save leaves as they are (a mapped column deleted, a mapped user
    # disabled): reported, never a reason to refuse saving another step.
    drift: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


READ_ONLY_MEMBERS = ("warnings", "drift")


def without_read_only(data: Any) -> Any:
    """``data`` without the read-only ``warnings`` and ``drift`` members GET and PUT answer with: a client
    may send back what it was given."""
    if isinstance(data, dict) and any(isinstance(data.get(name), list | dict) for name in READ_ONLY_MEMBERS):
        return {k: v for k, v in data.items() if k not in READ_ONLY_MEMBERS}
    return data


def step_of(pointer: str) -> Step | None:
    """The step a JSON pointer into the configuration is in."""
    member = pointer.split("/")[1] if pointer.startswith("/") else ""
    return next((step for step in Step if step.member == member), None)


def unchanged_steps(before: DynamicsConfig, after: DynamicsConfig) -> set[Step]:
    return {step for step in Step if getattr(before, step.attribute) == getattr(after, step.attribute)}


def _merged(base: DynamicsConfig, parsed: Any, step: Step | None) -> DynamicsConfig:
    """The configuration a save of ``parsed`` (the whole document, or one step of it) would store."""
    config = parsed if step is None else base.model_copy(update={step.attribute: parsed})
    # The integration user is read-only: whatever the caller sent, keep what is stored.
    sync = config.sync_identifiers.model_copy(
        update={"integration_user": base.sync_identifiers.integration_user}
    )
    return config.model_copy(update={"sync_identifiers": sync})  # type: ignore[no-any-return]


def _unchanged(base: DynamicsConfig, config: DynamicsConfig, step: Step | None) -> set[Step]:
    """The steps a save leaves as they are: every other step of a step save; for the whole document,
    the steps whose sections equal the stored ones."""
    if step is not None:
        return set(Step) - {step}
    return unchanged_steps(base, config)


class ConfigService:
    def __init__(
        self,
        repository: ConfigRepository,
        metadata_checks: Sequence[MetadataCheck] | None = None,
        custom_fields: CustomFields | None = None,
        integration_user: IntegrationUserLookup | None = None,
    ) -> None:
        self._repo = repository
        self._recent: OrderedDict[str, StoredConfig] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._checks = list(metadata_checks or [])
        self._custom_fields = custom_fields
        self._integration_user = integration_user

    # --- reading ----------------------------------------------------------------------------------

    def _view(self, workspace_id: str, stored: StoredConfig | None) -> ConfigView:
        if stored is None:
            config = DynamicsConfig.default()
            view = ConfigView(config, 0)
        else:
            config = DynamicsConfig.model_validate(stored.document)
            view = ConfigView(config, stored.version, stored.saved_at, stored.saved_by)
        if self._integration_user is not None:
            user = self._integration_user(workspace_id)
            sync = view.config.sync_identifiers.model_copy(update={"integration_user": user})
            view = ConfigView(
                view.config.model_copy(update={"sync_identifiers": sync}),
                view.version,
                view.saved_at,
                view.saved_by,
            )
        return view

    def saved_version(self, workspace_id: str) -> tuple[int, dt.datetime, str] | None:
        """Version, when and by whom of the saved configuration; ``None`` before the first save."""
        stored = self._repo.load(workspace_id)
        return None if stored is None else (stored.version, stored.saved_at, stored.saved_by)

    def get(self, caller: Caller) -> ConfigView:
        """The configuration, with its drift: what no longer fits Dynamics (live metadata checks)."""
        stored = self._repo.load(caller.workspace_id)
        self._remember(caller.workspace_id, stored)
        view = self._view(caller.workspace_id, stored)
        if stored is None:
            return view  # the defaults name nothing in Dynamics
        drift = self.check(caller.workspace_id, view.config, unchanged=set(Step)).drift
        return ConfigView(view.config, view.version, view.saved_at, view.saved_by, drift=drift)

    # A small per-process memo of the last version seen per workspace saves the read before a PUT whose
    # If-Match names exactly that version. It is safe when stale: the save is conditional on the stored
    # ETag, so a version replaced elsewhere makes the save fail with 412, as it should.
    def _remember(self, workspace_id: str, stored: StoredConfig | None) -> None:
        with self._recent_lock:
            self._recent.pop(workspace_id, None)
            if stored is not None and stored.blob is None and stored.etag:
                self._recent[workspace_id] = stored
                while len(self._recent) > RECENT_WORKSPACES:
                    self._recent.popitem(last=False)

    def _recent_matching(self, workspace_id: str, if_match: str | None) -> StoredConfig | None:
        if if_match is None or "*" in if_match:
            return None
        with self._recent_lock:
            stored = self._recent.get(workspace_id)
        if stored is not None and if_match_allows(if_match, stored.version, exists=True):
            return stored
        return None

    def history(self, caller: Caller, limit: int = 50) -> list[HistoryEntry]:
        return self._repo.history(caller.workspace_id, limit)

    # --- validating -------------------------------------------------------------------------------

    @staticmethod
    def parse(data: Any, step: Step | None = None) -> Any:
        """The whole config (``step`` None) or one step's section from JSON; ``InvalidConfig`` if the
        shape is wrong (pointers are into the whole configuration document)."""
        model = DynamicsConfig if step is None else step.model
        prefix = () if step is None else (step.member,)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise InvalidConfig(problems_from_validation_error(data, exc, prefix)) from exc

    def check(
        self, workspace_id: str, config: DynamicsConfig, unchanged: Collection[Step] = ()
    ) -> ValidationReport:
        """Every problem of ``config``. Live-Dynamics errors inside the ``unchanged`` steps (as stored,
        not part of this save) are ``drift``: Dynamics changed under them, and they must not stop an
        admin from saving another step."""
        custom = list(self._custom_fields(workspace_id)) if self._custom_fields else []
        problems = validate_config(config, custom)
        drift: list[Problem] = []
        if not any(p.severity is Severity.ERROR for p in problems):
            for check in self._checks:
                for problem in check(workspace_id, config):
                    if problem.severity is Severity.ERROR and step_of(problem.pointer) in unchanged:
                        drift.append(problem)
                    else:
                        problems.append(problem)
        return ValidationReport(
            errors=[p for p in problems if p.severity is Severity.ERROR],
            warnings=[p for p in problems if p.severity is Severity.WARNING],
            drift=drift,
        )

    def validate(self, caller: Caller, data: Any, step: Step | None = None) -> ValidationReport:
        """Every problem of a proposed whole configuration, or of one proposed step in the saved
        configuration (what a PUT of that step would report; pointers into the whole document). Saves
        nothing."""
        try:
            parsed = self.parse(without_read_only(data), step)
        except InvalidConfig as exc:
            return ValidationReport(errors=exc.problems, warnings=[])
        stored = self._repo.load(caller.workspace_id)
        base = DynamicsConfig.model_validate(stored.document) if stored else DynamicsConfig.default()
        config = _merged(base, parsed, step)
        return self.check(caller.workspace_id, config, _unchanged(base, config, step))

    # --- saving -----------------------------------------------------------------------------------

    def save(self, caller: Caller, data: Any, if_match: str | None, step: Step | None = None) -> ConfigView:
        """Validate and store the whole configuration (``step`` None) or one step of it."""
        parsed = self.parse(without_read_only(data), step)
        if if_match is not None and not if_match.strip():
            if_match = None
        stored = self._recent_matching(caller.workspace_id, if_match) or self._repo.load(caller.workspace_id)
        current_version = stored.version if stored else 0
        if stored is not None and if_match is None:
            raise PreconditionRequired(current_version)
        if not if_match_allows(if_match, current_version, exists=stored is not None):
            raise PreconditionFailed(current_version)
        base = DynamicsConfig.model_validate(stored.document) if stored else DynamicsConfig.default()
        config = _merged(base, parsed, step)
        report = self.check(caller.workspace_id, config, _unchanged(base, config, step))
        if not report.valid:
            raise InvalidConfig(report.errors)
        document = config.to_json()
        old_document = stored.document if stored else DynamicsConfig.default().to_json()
        changes = diff_documents(old_document, document)
        try:
            saved = self._repo.save(
                caller.workspace_id,
                document,
                previous=stored,
                saved_by=caller.user_id,
                step=step.value if step else None,
                changes=changes,
            )
        except ConfigConflict as exc:
            self._remember(caller.workspace_id, None)
            raise PreconditionFailed(exc.current_version or 0) from exc
        self._remember(caller.workspace_id, saved)
        view = self._view(caller.workspace_id, saved)
        return ConfigView(
            view.config, view.version, view.saved_at, view.saved_by, report.warnings, report.drift
        )
