"""The shape of ``genba.toml``. Every setting has a default that works on a laptop."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    create_model,
    field_validator,
    model_validator,
)

from genba import plugins
from genba.alarms import AlarmRule, AlarmSettings
from genba.calendar import ShiftCalendar
from genba.config._production import (
    DEFAULT_REASONS,
    CalendarSettings,
    CostSettings,
    LineSettings,
    ProductSettings,
    ReasonSettings,
    SignalSettings,
)
from genba.config._sections import Section
from genba.config._storage import StoreSettings
from genba.errors import PatternError, QueryError
from genba.paths import check_asset_path, check_level, check_pattern
from genba.timeparse import parse_duration
from genba.types import TagSpec

T = TypeVar("T")


def _tag_filter(v: str) -> str:
    """A config value that is an MQTT-style tag filter, checked with the reason if it is not."""
    try:
        return check_pattern(v)
    except PatternError as e:
        raise ValueError(str(e)) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSettings(_Strict):
    """``[node]``: who this node is and where it keeps its data."""

    name: str = Field("genba", description="Name of this node, shown in the API and dashboard.")
    data_dir: Path = Field(
        Path("genba-data"), description="Where the node keeps its data; relative to the config."
    )
    http: str = Field(
        "127.0.0.1:8000",
        description="host:port the API and dashboard listen on (port 0: any free).",
    )

    max_body_mb: float = Field(
        64,
        gt=0,
        le=4096,
        description="Largest request body the API takes (POST /api/ingest); a larger one is "
        "refused with 413 before it is read.",
    )

    @field_validator("http")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"expected 'host:port' such as '127.0.0.1:8000', got {v!r}")
        return v

    @property
    def host(self) -> str:
        return self.http.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.http.rpartition(":")[2])


class ClockSettings(_Strict):
    """``[clock]``: real time, or simulated time running ``speed`` times faster."""

    kind: Literal["real", "simulated"] = Field("real", description="real or simulated.")
    start: datetime | None = Field(
        None,
        description="Simulated clock only: UTC start time (default: now, or just after the "
        "newest stored sample when that is later: a fast node resumes its history).",
    )
    speed: float = Field(1.0, gt=0, le=10_000, description="Simulated seconds per real second.")

    @field_validator("start")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            return v.replace(tzinfo=UTC)
        return v


class TagSettings(_Strict):
    """``[[machine.tag]]``: one tag of a machine, with its unit and engineering limits."""

    name: str = Field(description="Last level of the tag path, e.g. 'temperature'.")
    unit: str = Field("", description="Unit, UCUM style: degC, A, mm/s, 1/min, kWh, 1.")
    description: str = Field("", description="What the tag measures.")
    low: float | None = Field(None, description="Low engineering limit.")
    high: float | None = Field(None, description="High engineering limit.")

    @field_validator("name")
    @classmethod
    def _one_level(cls, v: str) -> str:
        return check_level(v, "tag name")

    @model_validator(mode="after")
    def _limits(self) -> TagSettings:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class MachineSettings(_Strict):
    """``[[machine]]``: a machine of the asset model (ISA-95 site/area/line/machine)."""

    path: str = Field(description="site/area/line/machine, e.g. 'berlin/packaging/line1/filler'.")
    description: str = Field("", description="What the machine is.")
    ideal_cycle_time_s: float | None = Field(
        None, gt=0, description="Fastest possible time for one part, in seconds."
    )
    ideal_cycle_time_s_by_product: dict[str, float] = Field(
        default_factory=dict,
        description="Ideal cycle per product name where it is not ideal_cycle_time_s × the "
        "product's cycle_factor.",
    )
    signals: SignalSettings = Field(
        default_factory=SignalSettings, description="How states and counts are read."
    )
    tag: list[TagSettings] = Field(default_factory=list, description="The machine's tags.")

    @field_validator("path")
    @classmethod
    def _isa95(cls, v: str) -> str:
        return check_asset_path(v, "machine")

    @property
    def line(self) -> str:
        return self.path.rpartition("/")[0]

    def tag_specs(self) -> list[TagSpec]:
        return [
            TagSpec(f"{self.path}/{t.name}", t.unit, t.description, t.low, t.high) for t in self.tag
        ]


class ConnectorSettings(BaseModel):
    """``[[connector]]``: ``kind`` picks the connector; the rest are that kind's options."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str = Field(description="Connector kind: one of the installed connector kinds.")
    name: str = Field("", description="Name in health reports (default: kind and position).")
    stale_after_s: float | None = Field(
        None,
        gt=0,
        le=31_536_000,
        description="Heartbeat timeout: when this connector has received nothing for this "
        "long, its tags are marked stale (their values no longer hold; docs/kpi.md). Default: "
        "none, for report-by-exception sources, which go stale only when the source says so "
        "(disconnect, Sparkplug death, bad status). Set it for sources that send cyclically.",
    )
    max_tags: int = Field(
        100_000,
        gt=0,
        le=10_000_000,
        description="Most tags this connector may create (and Sparkplug edge nodes it tracks); "
        "what would create more (a flood of new topics, say) is a dead letter naming this "
        "setting.",
    )

    writable: list[str] = Field(
        [],
        description="Tags genba may write through this connector (MQTT-style filters, e.g. "
        "['berlin/+/+/+/speed_sp']): POST /api/tags/{path}/write and `genba write`. Default: "
        "none - nothing is written to a device unless named here.",
    )
    write_timeout_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="How long a write may take: for the device to take it, and for its new "
        "value to be read back.",
    )

    _writable = field_validator("writable")(lambda cls, v: [_tag_filter(f) for f in v])

    def options(self) -> dict[str, object]:
        return dict(self.model_extra or {})


class TierSettings(_Strict):
    """A downsampling tier of a ``[[retention]]`` rule: ``every``-long aggregates (count, sum,
    min, max, first, last per bucket) kept for ``keep_days`` (or forever)."""

    every: str = Field(description="Bucket size, e.g. '1m', '1h'.")
    keep_days: float | None = Field(None, gt=0, description="Delete older buckets (default never).")

    @field_validator("every")
    @classmethod
    def _duration(cls, v: str) -> str:
        try:
            parse_duration(v)
        except QueryError as e:
            raise ValueError(str(e)) from None
        return v

    @property
    def every_ns(self) -> int:
        return parse_duration(self.every)


class RetentionSettings(_Strict):
    """``[[retention]]``: how long raw samples of the matching tags are kept (applied at start
    and every hour). Rules are tried in order; the first whose ``tags`` matches a tag applies;
    tags no rule matches are kept forever."""

    tags: str = Field("#", description="Which tags (MQTT-style filter).")
    raw_days: float = Field(gt=0, description="Delete raw samples older than this many days.")
    tiers: list[TierSettings] = Field(
        [],
        description="Downsampling tiers, e.g. [{every = '1m', keep_days = 730}, {every = '1h'}]; "
        "queries reaching past raw_days read the finest tier that covers them.",
    )

    _tags = field_validator("tags")(lambda cls, v: _tag_filter(v))


class ForwardSettings(_Strict):
    """``[forward]``: also send this node's samples to an upstream genba node (an edge node
    feeding a line or site node), keeping them on disk while the upstream is away."""

    url: str = Field(description="The upstream node's address, e.g. 'http://site-node:8000'.")
    pattern: str = Field("#", description="Which tags to forward (MQTT-style filter).")
    batch_ms: int = Field(1000, gt=0, le=60_000, description="How often a batch goes up.")
    timeout_s: float = Field(10.0, gt=0, description="Wait this long for the upstream to answer.")
    spool_max_mb: int = Field(
        1024,
        ge=1,
        description="Most disk kept for samples the upstream has not taken; when full, newer "
        "samples are not forwarded (counted and logged) and local storage carries on.",
    )
    retry_max_s: float = Field(30.0, gt=0, description="Longest wait between tries.")

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// address, got {v!r}")
        return v.rstrip("/")

    _pattern = field_validator("pattern")(lambda cls, v: _tag_filter(v))


def _unique_alarm_keys(config: GenbaConfig) -> None:
    _unique([a.key for a in config.section(ALARM_RULES)], "alarm")


# The sections of genba's own components (genba.node); each component lists its own.
RETENTION: Section[list[RetentionSettings]] = Section(
    "retention", list[RetentionSettings], list, subtables=(("tiers", TierSettings),)
)
FORWARD: Section[ForwardSettings | None] = Section("forward", ForwardSettings | None, lambda: None)
ALARM_RULES: Section[list[AlarmRule]] = Section(
    "alarm", list[AlarmRule], list, check=_unique_alarm_keys
)
ALARMS: Section[AlarmSettings] = Section("alarms", AlarmSettings, AlarmSettings)


class LearntSettings(_Strict):
    """What every model learnt per machine shares: which machines, which of their tags, on
    what grid and history, normalised how (``[[model]]``, ``[[rul]]``)."""

    name: str = Field(description="The model's name, unique, e.g. 'pumps-pca'.")
    machines: str = Field("#", description="Which machines (MQTT-style filter over their paths).")
    tags: list[str] = Field(
        default_factory=list,
        description="Tag names under each machine, e.g. ['vibration', 'motor_current']; empty: "
        "every tag of the machine but its state, count, reason, product and energy signals and "
        "setpoints (names ending '_sp').",
    )
    train_days: float = Field(7.0, gt=0, description="Train on this many days before the end.")
    every_s: float = Field(
        10.0, gt=0, description="Rows every this many seconds (each tag's value then)."
    )
    retrain_days: float = Field(
        7.0,
        ge=0,
        description="The node trains a new version this often (days; 0: never), and trains a "
        "model with no version as soon as its data allows.",
    )
    holdout_days: float = Field(
        2.0,
        gt=0,
        description="A new version is trained on the data up to this many days ago and "
        "judged against the one in service on those days, which neither saw; it replaces it "
        "only when measurably better (docs/ai.md, 'Champion and challenger').",
    )
    drift_days: float = Field(
        1.0,
        ge=0,
        description="Every hour the node compares the newest this many days with what the "
        "version in service was trained on (PSI); drift trains a challenger at once (0: never).",
    )
    failure_reasons: list[str] = Field(
        default_factory=lambda: ["wear_out"],
        description="Reason names (of the reason tree) of the failures a model is about: a "
        "down period with one of them ends a part's life (RUL), and is what a detector should "
        "warn of (when a new version is judged).",
    )
    mode: str | None = Field(
        None,
        description="Tag whose value is the operating mode (normal is learnt per mode); "
        "unset: the machine's product signal, if it has that tag; '' for none.",
    )
    conditions: list[str] | None = Field(
        None,
        description="Tags the plan sets (e.g. ['speed']): each other signal is modelled as its "
        "residual from a straight line on them, per mode; unset: the machine's speed "
        "(speed_tag, or a tag named 'speed'), if it has one; [] for none.",
    )
    settle: float = Field(
        2.0,
        ge=0,
        description="After a stop, rows are neither trained on nor scored for this many times "
        "the stop's length (temperatures settle), at most settle_max_s.",
    )
    settle_max_s: float = Field(1800.0, ge=0, description="Longest settling time, seconds.")

    _machines = field_validator("machines")(lambda cls, v: _tag_filter(v))


class ModelSettings(LearntSettings):
    """``[[model]]``: an anomaly detector trained for each machine that ``machines`` matches,
    on its ``tags`` over the last ``train_days`` of running time (docs/ai.md)."""

    detector: str = Field(
        "pca", description="Detector kind: pca, mad, knn, hst, ae or iforest (genba.ai)."
    )
    running_only: bool = Field(
        True, description="Train on rows where the machine runs (its state timeline) only."
    )
    warning_h: float = Field(
        8.0,
        gt=0,
        description="Running hours before a failure (failure_reasons) in which an alarm is a "
        "hit, not a false one, when a new version is judged against the one in service.",
    )
    settings: dict[str, float | int | str] = Field(
        default_factory=dict,
        description="Detector settings over the plant rule (window = 180, stat = 'median', "
        "trim = 8) and the detector's defaults, e.g. {window = 90}.",
    )


class RulSettings(LearntSettings):
    """``[[rul]]``: remaining useful life for each machine that ``machines`` matches — running
    hours to its next wear-out failure, learnt from the failures in its history (docs/ai.md)."""

    train_days: float = Field(
        90.0, gt=0, description="Learn from the failures of this many days before the end."
    )
    every_s: float = Field(
        60.0, gt=0, description="Rows every this many seconds (each tag's value then)."
    )
    holdout_days: float = Field(
        14.0,
        gt=0,
        description="A new version is trained on the data up to this many days ago and "
        "judged against the one in service on the failures of those days; it replaces it "
        "only when measurably better.",
    )
    horizon_h: float = Field(
        24.0, gt=0, description="The probability of a failure within this many running hours."
    )
    alarm_probability: float = Field(
        0.7,
        gt=0,
        lt=1,
        description="Raise an alarm when the probability of failing within horizon_h passes "
        "this; it clears under half of it.",
    )
    cap_h: float = Field(
        96.0,
        gt=0,
        description="Remaining lives longer than this many running hours are learnt as this "
        "(the usual piecewise cap: early life shows no wear to learn from).",
    )
    min_failures: int = Field(
        4, ge=2, description="Train a machine only once its history holds this many failures."
    )


class GenbaConfig(_Strict):
    """A whole node: the core sections ``[node]``, ``[clock]``, ``[store]``,
    ``[[connector]]``, ``[[machine]]`` and the production model, plus the sections of every
    registered component (:func:`config_model`; read one with :meth:`section`)."""

    node: NodeSettings = Field(default_factory=NodeSettings)
    clock: ClockSettings = Field(default_factory=ClockSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    connector: list[ConnectorSettings] = Field(default_factory=list)
    machine: list[MachineSettings] = Field(default_factory=list)
    calendar: list[CalendarSettings] = Field(default_factory=list)
    line: list[LineSettings] = Field(default_factory=list)
    product: list[ProductSettings] = Field(default_factory=list)
    costs: CostSettings = Field(default_factory=CostSettings)
    reason: list[ReasonSettings] = Field(default_factory=list)
    model: list[ModelSettings] = Field(default_factory=list)
    rul: list[RulSettings] = Field(default_factory=list)
    _source: Path | None = PrivateAttr(None)
    _environment: tuple[str, ...] = PrivateAttr(())

    @property
    def from_environment(self) -> tuple[str, ...]:
        """The ``GENBA_…`` environment variables that set values of this config."""
        return self._environment

    def with_environment(self, names: tuple[str, ...]) -> GenbaConfig:
        self._environment = names
        return self

    def section(self, section: Section[T]) -> T:
        """The validated settings of a component's ``section`` (its default when this config
        was not composed with it)."""
        extra = type(self).model_fields.get(section.key)
        return cast(T, getattr(self, section.key) if extra is not None else section.default())

    @property
    def source(self) -> Path | None:
        """The file this config was read from, if any."""
        return self._source

    def with_source(self, source: Path) -> GenbaConfig:
        self._source = source
        return self

    @model_validator(mode="after")
    def _unique(self) -> GenbaConfig:
        seen: set[str] = set()
        for m in self.machine:
            if m.path in seen:
                raise ValueError(f"machine {m.path!r} is declared twice")
            seen.add(m.path)
        _check_production(self)
        for section in registered_sections():
            if section.check is not None:
                section.check(self)
        return self

    @property
    def data_dir(self) -> Path:
        """``node.data_dir``, resolved against the config file's folder."""
        d = self.node.data_dir
        if not d.is_absolute() and self.source is not None:
            d = self.source.parent / d
        return d

    def machines_of(self, line: str) -> list[MachineSettings]:
        return [m for m in self.machine if m.line == line]

    def line_settings(self, path: str) -> LineSettings:
        """The ``[[line]]`` of ``path``, or its defaults when it has none."""
        for ln in self.line:
            if ln.path == path:
                return ln
        return LineSettings(path=path)

    def calendar_of(self, line: str) -> ShiftCalendar:
        """The shift calendar of ``line`` (24/7 UTC when it names none)."""
        name = self.line_settings(line).calendar
        for c in self.calendar:
            if c.name == name:
                return c.build()
        return ShiftCalendar([])

    def reasons(self) -> list[ReasonSettings]:
        """The reason tree: ``[[reason]]``, or the built-in one when there is none."""
        return list(self.reason) or list(DEFAULT_REASONS)

    def tag_specs(self) -> list[TagSpec]:
        return [s for m in self.machine for s in m.tag_specs()]


def _unique(items: list[str], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise ValueError(f"{what} {item!r} is declared twice")
        seen.add(item)


def _check_production(config: GenbaConfig) -> None:
    """Cross-references of the production settings: each names something that exists."""
    _unique([c.name for c in config.calendar], "calendar")
    _unique([ln.path for ln in config.line], "line")
    _unique([p.name for p in config.product], "product")
    _unique([str(p.code) for p in config.product], "product code")
    _unique([str(r.code) for r in config.reason], "reason code")
    _unique([m.name for m in [*config.model, *config.rul]], "model")
    reasons = {r.name for r in config.reasons()}
    for r in [*config.model, *config.rul]:
        unknown = [x for x in r.failure_reasons if x not in reasons]
        if unknown:
            section = "[[rul]]" if isinstance(r, RulSettings) else "[[model]]"
            raise ValueError(
                f"{section} {r.name!r}: failure_reasons {', '.join(unknown)} are not in the "
                f"reason tree; reasons: {', '.join(sorted(reasons))}"
            )
    calendars = {c.name for c in config.calendar}
    products = {p.name for p in config.product}
    for ln in config.line:
        if ln.calendar and ln.calendar not in calendars:
            raise ValueError(
                f"line {ln.path!r} names calendar {ln.calendar!r}, which is not defined; "
                f"calendars: {', '.join(sorted(calendars)) or '(none: add a [[calendar]])'}"
            )
        names = [m.path.rsplit("/", 1)[1] for m in config.machines_of(ln.path)]
        if ln.constraint and ln.constraint not in names:
            raise ValueError(
                f"line {ln.path!r}: constraint {ln.constraint!r} is not one of its machines "
                f"({', '.join(names) or 'none declared'})"
            )
    for m in config.machine:
        bad = sorted(set(m.ideal_cycle_time_s_by_product) - products)
        if bad:
            raise ValueError(
                f"machine {m.path!r}: ideal_cycle_time_s_by_product names unknown product "
                f"{bad[0]!r}; products: {', '.join(sorted(products)) or '(none declared)'}"
            )


@cache
def registered_sections() -> tuple[Section[Any], ...]:
    """The sections of every component under the ``genba.components`` entry point, in the
    components' order; a key claimed twice (or a core key) is an error naming both."""
    owners: dict[str, str] = dict.fromkeys(GenbaConfig.model_fields, "genba (core)")
    out: list[Section[Any]] = []
    for name, cls in plugins.components():
        for section in cls.sections:
            if section.key in owners:
                raise ValueError(
                    f"component {name!r} declares section [{section.key}], which "
                    f"{owners[section.key]} already has: rename one of them"
                )
            owners[section.key] = f"component {name!r}"
            out.append(section)
    return tuple(out)


@cache
def config_model() -> type[GenbaConfig]:
    """:class:`GenbaConfig` with a field for every registered component's section: what
    ``genba.toml`` is validated as."""
    fields: dict[str, Any] = {
        s.key: (s.annotation, Field(default_factory=s.default, description=s.description))
        for s in registered_sections()
    }
    return create_model("GenbaConfig", __base__=GenbaConfig, __module__=__name__, **fields)
