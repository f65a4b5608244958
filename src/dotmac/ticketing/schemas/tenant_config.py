"""The tenant settings document and its API models.

``PUT /api/v1/settings`` takes the whole document; sections left out get
their defaults. Validation is strict (unknown fields are refused
everywhere) and every error names the offending field, so an invalid
document is refused whole with a 422 that says where. The validated
document is normalised (any-of conditions become lists, absent optional
values are dropped) before it is stored, so equal settings compare equal.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dotmac.ticketing.domain.calendar import BusinessCalendar
from dotmac.ticketing.domain.defaults import (
    DEFAULT_COALESCE_SECONDS,
    DEFAULT_LOCALE,
    DEFAULT_SLA_MINUTES,
    DEFAULT_WORKFLOW,
    DEFAULT_WORKFLOW_BY_CATEGORY,
)
from dotmac.ticketing.domain.limits import CUSTOM_FIELD_VALUE_MAX, TAG_MAX
from dotmac.ticketing.schemas.enums import TicketCategory, TicketChannel, TicketPriority
from dotmac.ticketing.schemas.locales import canonical_locale
from dotmac.ticketing.schemas.notifications import WebhookUrl
from dotmac.ticketing.schemas.tickets import (
    CustomValue,
    Email,
    Identifier,
    Team,
    _Request,
    _strings,
)

# Ten years of minutes: anything longer is a typo, not a target.
MINUTES_MAX = 10 * 366 * 24 * 60
HOURS_MAX = 10 * 366 * 24
ANY_OF_MAX = 100
REGEX_MAX = 500
TEAMS_MAX = 200
AGENTS_MAX = 1_000
RULES_MAX = 500

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=REGEX_MAX)]
Skill = Annotated[str, StringConstraints(min_length=1, max_length=TAG_MAX)]
FieldKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    return value


def _integral(value: float) -> int | float:
    # 15.0 is stored and shown as 15: equal documents stay byte-equal.
    return int(value) if float(value).is_integer() else value


Minutes = Annotated[
    float,
    Field(gt=0, le=MINUTES_MAX, allow_inf_nan=False),
    BeforeValidator(_number),
    PlainSerializer(_integral, return_type=int | float),
]
Hours = Annotated[
    float,
    Field(gt=0, le=HOURS_MAX, allow_inf_nan=False),
    BeforeValidator(_number),
    PlainSerializer(_integral, return_type=int | float),
]


def _as_list(value: Any) -> Any:
    """Any-of conditions: one value means a list of one."""
    return [value] if value is not None and not isinstance(value, list) else value


def _any_of(item: Any) -> Any:
    return Annotated[
        list[item],
        Field(min_length=1, max_length=ANY_OF_MAX),
        BeforeValidator(_as_list),
    ]


class _Section(_Request):
    model_config = ConfigDict(extra="forbid")


# -- SLA targets --------------------------------------------------------------


class SLATarget(_Section):
    """First response, resolution and (optional) next reply, in business minutes.

    ``next_reply`` (from a public customer comment to the next public agent
    reply) defaults to the first-response target.
    """

    response: Minutes = Field(
        description="First response: from creation to the first public agent"
        " reply, in business minutes."
    )
    resolution: Minutes = Field(
        description="Resolution: from creation (or the last reopen) to the"
        " resolution, in business minutes."
    )
    next_reply: Minutes | None = Field(
        default=None,
        description="From a public customer comment to the next public agent"
        " reply, in business minutes; unset: the response target.",
    )


SLATargetName = Literal["first_response", "resolution", "next_reply"]
StatusName = Literal["new", "open", "in_progress", "pending", "on_hold"]
PauseOn = Annotated[
    dict[SLATargetName, Annotated[list[StatusName], Field(max_length=5)]],
    Field(
        description="Statuses that pause each target's clock "
        "(default: resolution pauses in pending)."
    ),
]
WarningPercent = Annotated[
    float,
    Field(gt=0, lt=100, allow_inf_nan=False),
    BeforeValidator(_number),
    PlainSerializer(_integral, return_type=int | float),
]


class PriorityTargets(_Section):
    """A narrowed policy's targets; priorities left out keep the defaults."""

    critical: SLATarget | None = Field(
        default=None, description="Targets of critical tickets."
    )
    urgent: SLATarget | None = Field(
        default=None, description="Targets of urgent tickets."
    )
    high: SLATarget | None = Field(default=None, description="Targets of high tickets.")
    normal: SLATarget | None = Field(
        default=None, description="Targets of normal tickets."
    )
    low: SLATarget | None = Field(default=None, description="Targets of low tickets.")


def _default_target(priority: str) -> Any:
    response, resolution = DEFAULT_SLA_MINUTES[priority]
    return Field(
        default_factory=lambda: SLATarget(response=response, resolution=resolution),
        description=f"Targets of {priority} tickets.",
    )


class SLAConfig(_Section):
    """Targets per priority; a priority left out keeps its default.

    ``policies`` narrow these by category, customer tier or any other
    condition: the first matching one is the ticket's policy.
    """

    critical: SLATarget = _default_target("critical")
    urgent: SLATarget = _default_target("urgent")
    high: SLATarget = _default_target("high")
    normal: SLATarget = _default_target("normal")
    low: SLATarget = _default_target("low")
    warning_percent: WarningPercent = Field(
        default=80,
        description="A running clock warns when this share of its target is"
        " used (the timers record SLAWarning).",
    )
    pause_on: PauseOn | None = Field(
        default=None,
        description="Statuses that pause each target's clock, by target; unset:"
        " the resolution clock pauses in pending.",
    )
    policies: Annotated[list[SLAPolicyConfig], Field(max_length=RULES_MAX)] = Field(
        default=[],
        description="Policies for the tickets their conditions match, tried in"
        " order: the first matching one is the ticket's policy.",
    )

    @field_validator("policies")
    @classmethod
    def _unique_policies(cls, policies: list[SLAPolicyConfig]) -> list[SLAPolicyConfig]:
        _unique("policy name", [p.name for p in policies])
        return policies


# -- business hours -------------------------------------------------------------


# Stands in for the other parts while one part of a calendar is checked.
_SOME_HOURS = {"mon": ["00:00", "24:00"]}


def _check_calendar(part: str, config: dict[str, Any]) -> None:
    try:
        BusinessCalendar.from_config(config)
    except ValueError as error:
        message = str(error)
        raise ValueError(
            message if message.startswith(part) else f"{part}: {message}"
        ) from None


class BusinessHours(_Section):
    """A time zone, the working hours of each weekday and holidays."""

    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="IANA time zone the hours are in, e.g. Europe/Berlin."
    )
    week: dict[str, Any] = Field(
        description="Working hours per weekday (mon … sun): one"
        ' ["HH:MM", "HH:MM"] pair or a list of them ("24:00" ends a day);'
        " days left out are closed."
    )
    holidays: Annotated[list[str], Field(max_length=1_000)] = Field(
        default=[], description="Closed days, as YYYY-MM-DD dates."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _check_calendar("timezone", {"timezone": value, "week": _SOME_HOURS})
        return value

    @field_validator("week")
    @classmethod
    def _valid_week(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_calendar("week", {"timezone": "UTC", "week": value})
        return value

    @field_validator("holidays")
    @classmethod
    def _valid_holidays(cls, value: list[str]) -> list[str]:
        _check_calendar(
            "holidays", {"timezone": "UTC", "week": _SOME_HOURS, "holidays": value}
        )
        return value


def _hours_kind(value: Any) -> str:
    return "24x7" if isinstance(value, str) else "calendar"


AlwaysOpen = Annotated[Literal["24x7"], BeforeValidator(lambda v: v.strip().lower())]
BusinessHoursConfig = Annotated[
    Annotated[AlwaysOpen, Tag("24x7")] | Annotated[BusinessHours, Tag("calendar")],
    Discriminator(_hours_kind),
]


# -- teams ------------------------------------------------------------------------


class Agent(_Section):
    """A person of a team: who tickets are assigned to and who is told."""

    id: Identifier = Field(
        description="The agent's user id (a token's sub), as tickets name assignees."
    )
    name: Name | None = Field(
        default=None,
        description='How e-mail names them ("Ada Lovelace commented"); unset:'
        " their id.",
    )
    email: Email | None = Field(default=None, description="Where e-mail reaches them.")
    phone: Annotated[str, StringConstraints(max_length=50)] | None = Field(
        default=None, description="Where SMS reaches them."
    )
    skills: Annotated[list[Skill], Field(max_length=100)] = Field(
        default=[],
        description="What the skills strategy matches against the ticket's tags"
        " and category.",
    )
    capacity: Annotated[int, Field(ge=0, le=10_000)] = Field(
        default=20,
        description="Open tickets the agent may hold at once; 0 takes no new ones.",
    )
    role: Literal["agent", "supervisor"] = Field(
        default="agent",
        description="Supervisors are told of escalations awaiting their approval"
        " (and of breaches, see sla_alerts).",
    )
    takes_assignments: bool | None = Field(
        default=None,
        description="Whether automatic assignment hands this person tickets;"
        " unset: agents take them and supervisors (the approvers) do not.",
    )
    away: bool = Field(
        default=False,
        description="Out of office: automatic assignment skips them until this"
        " is cleared.",
    )


class TeamConfig(_Section):
    """A team: its agents and, if they differ, its working hours.

    When teams are listed, assignments and escalations accept only these
    teams and their agents.
    """

    name: Team = Field(
        description="The team's name, as tickets, rules and escalations name it."
    )
    agents: Annotated[list[Agent], Field(max_length=AGENTS_MAX)] = Field(
        default=[], description="The team's people."
    )
    business_hours: BusinessHoursConfig | None = Field(
        default=None,
        description="The team's own working hours (escalation rules counted in"
        " business hours use them for its tickets); unset: the tenant's"
        " business_hours.",
    )

    @field_validator("agents")
    @classmethod
    def _unique_agents(cls, agents: list[Agent]) -> list[Agent]:
        _unique("agent id", [a.id for a in agents])
        return agents


def _unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} {name!r}")
        seen.add(name)


# -- conditions and rules ------------------------------------------------------------


def _compiles(patterns: list[str]) -> list[str]:
    for index, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"regex[{index}] does not compile: {error}") from None
    return patterns


class TextCondition(_Section):
    """Matches the title and description: any substring, or any regex."""

    contains: _any_of(Text) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="Text that occurs in the title or description"
        " (case-insensitive); one or a list, any of them.",
    )
    regex: _any_of(Text) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="Regular expressions searched in the title and description"
        " (case-insensitive); one or a list, any of them.",
    )

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _compiles(value)


CustomFieldValue = Annotated[
    CustomValue, Field(json_schema_extra={"maxLength": CUSTOM_FIELD_VALUE_MAX})
]


class Conditions(_Section):
    """All given conditions must hold; each list matches any of its values."""

    category: _any_of(TicketCategory) | None = Field(  # type: ignore[valid-type]
        default=None, description="The ticket's category is one of these."
    )
    priority: _any_of(TicketPriority) | None = Field(  # type: ignore[valid-type]
        default=None, description="The ticket's priority is one of these."
    )
    channel: _any_of(TicketChannel) | None = Field(  # type: ignore[valid-type]
        default=None, description="The ticket came in on one of these channels."
    )
    tags: _any_of(Skill) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="The ticket has one of these tags (case-insensitive).",
    )
    customer_tier: _any_of(Name) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="The ticket's custom_fields.customer_tier is one of these.",
    )
    custom_fields: (
        Annotated[
            dict[FieldKey, _any_of(CustomFieldValue)],  # type: ignore[valid-type]
            Field(max_length=50),
        ]
        | None
    ) = Field(
        default=None,
        description="Per custom field, the values it may have (equal in kind"
        ' and value: 5 is not "5"); a field the ticket lacks matches nothing.',
    )
    text: TextCondition | None = Field(
        default=None, description="The title or description matches."
    )


class SLAPolicyConfig(_Section):
    """An SLA policy for the tickets its conditions match."""

    name: Name = Field(
        description="The policy's name, recorded on the tickets measured by it."
    )
    conditions: Conditions = Field(
        default_factory=Conditions,
        description="Which tickets the policy is for; none given: every ticket.",
    )
    targets: PriorityTargets = Field(
        default_factory=PriorityTargets,
        description="Targets per priority; a priority left out keeps the"
        " sla_config one.",
    )
    warning_percent: WarningPercent | None = Field(
        default=None, description="Unset: the sla_config warning_percent."
    )
    pause_on: PauseOn | None = Field(
        default=None, description="Unset: the sla_config pause_on."
    )


SLAConfig.model_rebuild()


class AssignmentRule(_Section):
    """Route a new ticket its conditions match to a team, and pick its agent.

    The matching rule with the highest ``priority`` wins; its ``strategy``
    picks one of the team's agents that take assignments, within their
    capacity, or the ticket waits in the team's queue.
    """

    name: Name = Field(
        description="The rule's name, recorded in the assignment's reason."
    )
    conditions: Conditions = Field(
        default_factory=Conditions,
        description="Which tickets the rule routes; none given: every ticket.",
    )
    assigned_team: Team = Field(description="The team the ticket goes to.")
    priority: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] = Field(
        default=0, description="Rules are tried from the highest priority down."
    )
    strategy: Literal["round_robin", "least_loaded", "skills"] = Field(
        default="round_robin",
        description="round_robin: the team's agents in turn; least_loaded: the"
        " fewest open tickets; skills: the agents whose skills cover the"
        " ticket's tags and category, else the best partial match.",
    )


SignedHours = Annotated[
    float,
    Field(ge=-HOURS_MAX, le=HOURS_MAX, allow_inf_nan=False),
    BeforeValidator(_number),
    PlainSerializer(_integral, return_type=int | float),
]


class EscalationRule(_Section):
    """Escalate to a level and team when a ticket crosses a threshold.

    The threshold is ``escalation_time_hours`` after ``measured_from``: the
    creation, the last activity by a person, or an SLA due time (negative:
    before the breach). Wall-clock hours, or with ``business_hours`` hours
    of the ticket's team's calendar (else the tenant's).
    """

    name: Name = Field(
        description="The rule's name, recorded on the escalation it makes."
    )
    conditions: Conditions = Field(
        default_factory=Conditions,
        description="Which tickets the rule escalates; none given: every ticket.",
    )
    level: Annotated[int, Field(ge=1, le=10)] = Field(
        default=1,
        description="The escalation level the ticket reaches; a ticket at this"
        " level or above is left alone.",
    )
    # Before the hours, so that their check can see what they count from.
    measured_from: Literal[
        "created", "last_update", "first_response_due", "resolution_due"
    ] = Field(
        default="created",
        description="What the hours count from: the creation, the last thing a"
        " person did, or an SLA due time.",
    )
    business_hours: StrictBool = Field(
        default=False,
        description="Count the hours on the business calendar (the ticket's"
        " team's, else the tenant's) instead of the wall clock.",
    )
    escalation_time_hours: SignedHours = Field(
        description="Hours after measured_from; negative (before the breach)"
        " only when measured from an SLA due time, positive with"
        " business_hours."
    )
    escalate_to_team: Team = Field(
        description="The team the ticket goes to (its agent picked like an assignment)."
    )
    requires_approval: bool = Field(
        default=False,
        description="Ask the supervisors first (EscalationRequested); the"
        " escalation happens when one approves.",
    )

    @field_validator("escalation_time_hours")
    @classmethod
    def _positive_unless_due(cls, hours: float, info: ValidationInfo) -> float:
        relative_to_due = str(info.data.get("measured_from", "")).endswith("_due")
        if not relative_to_due and hours <= 0:
            raise ValueError(
                "must be greater than 0 unless measured from an SLA due time"
            )
        if info.data.get("business_hours") and hours <= 0:
            raise ValueError("business hours count forward: must be greater than 0")
        return hours


# -- workflows ----------------------------------------------------------------------

# Workflow types, hook names and option names are identifiers, not fixed
# lists: platform teams register workflows (and the hooks they call) of
# their own, and these names travel into events, logs and URLs.
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


def _matching(pattern: str, message: str) -> Any:
    """A check of ``pattern`` that says what is wrong in words, not regex."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


Key = Annotated[
    str,
    Field(json_schema_extra={"pattern": KEY_PATTERN}),
    _matching(
        KEY_PATTERN,
        "must be an identifier: a lower-case letter, then lower-case letters,"
        " digits or _ (64 characters at most)",
    ),
]
WORKFLOW_TYPES_MAX = 100
OPTIONS_MAX = 50
# One workflow type's options as JSON: configuration, not a data store.
OPTIONS_BYTES_MAX = 16 * 1024
OPTION_DEPTH_MAX = 5


def _json_value(value: Any, depth: int = 1) -> None:
    """Refuse what JSON (and jsonb) cannot hold, and deep nesting."""
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite")
        return
    if not isinstance(value, list | dict):
        raise ValueError(f"expected a JSON value, not {type(value).__name__}")
    if depth >= OPTION_DEPTH_MAX:
        raise ValueError(f"nested deeper than {OPTION_DEPTH_MAX} levels")
    items = value.values() if isinstance(value, dict) else value
    if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
        raise ValueError("object keys must be strings")
    for item in items:
        _json_value(item, depth + 1)


def _option_value(value: Any) -> Any:
    _json_value(value)
    return value


def _bounded_options(options: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(options, ensure_ascii=False).encode())
    if size > OPTIONS_BYTES_MAX:
        raise ValueError(
            f"the options take {size} bytes as JSON; at most {OPTIONS_BYTES_MAX}"
        )
    return options


OptionValue = Annotated[
    Any,
    AfterValidator(_option_value),
    Field(
        description="An option the workflow defines: any JSON value (finite"
        f" numbers, nested at most {OPTION_DEPTH_MAX} levels)."
    ),
]
WorkflowOptions = Annotated[
    dict[Key, OptionValue],
    Field(
        max_length=OPTIONS_MAX,
        description="A workflow type's options, as that workflow defines them;"
        f" checked only as bounded JSON (at most {OPTIONS_BYTES_MAX} bytes).",
    ),
    AfterValidator(_bounded_options),
]


def _no_nul_in_extras(model: BaseModel) -> None:
    """The NUL check of every field, for the options a model does not name."""
    for path, text in _strings(model.__pydantic_extra__ or {}):
        if "\x00" in text:
            raise ValueError(f"NUL characters are not allowed ({path})")


QUESTION_MAX = 2_000
Question = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=QUESTION_MAX),
]


class DiagnosticsQuestions(_Section):
    """The diagnostic question asked for each kind of problem.

    The kind is chosen from the ticket (``domain.diagnostics``): ``outage``
    (a critical ticket, or one whose words say something is down),
    ``device`` (a device, its system or an app) or ``general``. A kind left
    out is asked in the built-in words.
    """

    outage: Question | None = Field(
        default=None, description="Asked when something is down."
    )
    device: Question | None = Field(
        default=None, description="Asked about a device, its system or an app."
    )
    general: Question | None = Field(
        default=None, description="Asked about anything else."
    )


class DiagnosticsSkip(_Section):
    """Tickets not asked the diagnostic question: the workflow goes on at once."""

    priorities: Annotated[
        list[TicketPriority], Field(max_length=ANY_OF_MAX), BeforeValidator(_as_list)
    ] = Field(default=[], description="Tickets of these priorities are not asked.")
    categories: Annotated[
        list[TicketCategory], Field(max_length=ANY_OF_MAX), BeforeValidator(_as_list)
    ] = Field(default=[], description="Tickets of these categories are not asked.")


class TechnicalSupportOptions(_Section):
    """The technical-support workflow's options.

    The diagnostics ones are checked here; the others
    (``domain.builtin_workflows``) only as bounded JSON, like every workflow's.
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[Key, OptionValue] = Field(init=False)

    diagnostics_questions: DiagnosticsQuestions | None = Field(
        default=None,
        description="The diagnostic question per kind of problem; unset: the"
        " built-in words.",
    )
    skip_diagnostics_for: DiagnosticsSkip | None = Field(
        default=None, description="Tickets not asked the diagnostic question."
    )

    @model_validator(mode="after")
    def _bounded(self) -> TechnicalSupportOptions:
        _no_nul_in_extras(self)
        options = self.model_dump(mode="json", exclude_none=True)
        if len(options) > OPTIONS_MAX:
            raise ValueError(f"at most {OPTIONS_MAX} options")
        _bounded_options(options)
        return self


class WorkflowOptionsByType(_Section):
    """Each workflow type's options; the built-in technical support's checked."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[Key, WorkflowOptions] = Field(init=False)

    technical_support: TechnicalSupportOptions | None = Field(
        default=None, description="The technical-support workflow's options."
    )

    @model_validator(mode="after")
    def _bounded(self) -> WorkflowOptionsByType:
        _no_nul_in_extras(self)
        types = len(self.__pydantic_extra__ or {}) + (
            self.technical_support is not None
        )
        if types > WORKFLOW_TYPES_MAX:
            raise ValueError(f"options for at most {WORKFLOW_TYPES_MAX} workflow types")
        return self


class WorkflowsConfig(_Section):
    """Which workflow a ticket runs (chosen by its category), and options.

    ``by_category`` maps a category to a workflow type; a category it leaves
    out runs ``default``. ``options`` configures each workflow type: the
    workflow defines its options and their defaults (the built-in ones, for
    example, ``technical_support.auto_close_after_hours`` and
    ``billing.approval_above``); here they are only checked to be bounded
    JSON, except the technical-support workflow's diagnostics options
    (``technical_support.diagnostics_questions``,
    ``technical_support.skip_diagnostics_for``: unknown keys, priorities
    and categories refused). The service refuses a workflow type nobody
    installed (422 naming the field, ``workflows.by_category.<category>``,
    ``workflows.default`` or ``workflows.options.<type>``): deploy the code
    that registers a custom workflow before configuring it.
    """

    by_category: dict[TicketCategory, Key] = Field(
        default_factory=lambda: {
            TicketCategory(category): workflow_type
            for category, workflow_type in DEFAULT_WORKFLOW_BY_CATEGORY.items()
        },
        description="The workflow type each category runs; a map given here"
        " replaces the default one.",
    )
    default: Key = Field(
        default=DEFAULT_WORKFLOW,
        description="The workflow type of the categories by_category leaves out.",
    )
    options: WorkflowOptionsByType = Field(
        default_factory=WorkflowOptionsByType,
        description="Options per workflow type, as that workflow defines them.",
    )


# -- categorisation rules -----------------------------------------------------------

KEYWORD_MAX = 100
Keyword = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=KEYWORD_MAX),
]
Confidence = Annotated[
    float,
    Field(ge=0, le=1, allow_inf_nan=False),
    BeforeValidator(_number),
    PlainSerializer(_integral, return_type=int | float),
]


class CategorizationRule(_Section):
    """Suggests ``category`` for tickets whose title or description matches.

    A rule matches when any of its keywords occurs as a whole word or phrase
    (case-insensitive: ``refund`` matches "Refund!" but not "refunded"; the
    words of a phrase may be separated by any white space) or any of its
    regexes matches (case-insensitive, like a ``text`` condition's). Of the
    matching rules the one with the highest ``confidence`` wins, then the
    one with the most matched keywords and regexes, then the first listed
    (``domain.categorization``).
    """

    name: Name = Field(
        description="The rule's name, recorded with the category it suggests."
    )
    category: TicketCategory = Field(description="The category suggested.")
    keywords: Annotated[
        list[Keyword], Field(max_length=ANY_OF_MAX), BeforeValidator(_as_list)
    ] = Field(
        default=[],
        description="Words or phrases that occur as a whole in the title or"
        " description (case-insensitive); one or a list.",
    )
    regex: Annotated[
        list[Text],
        Field(max_length=ANY_OF_MAX),
        BeforeValidator(_as_list),
        AfterValidator(_compiles),
    ] = Field(
        default=[],
        description="Regular expressions searched in the title and description"
        " (case-insensitive); one or a list. A rule needs a keyword or a regex.",
    )
    confidence: Confidence = Field(
        default=0.8, description="Of the matching rules the most confident wins."
    )

    @model_validator(mode="after")
    def _matches_something(self) -> CategorizationRule:
        if not self.keywords and not self.regex:
            raise ValueError("a rule needs at least one keyword or regex")
        return self


# -- integration hooks --------------------------------------------------------------

HOOKS_MAX = 50
INTEGRATION_TIMEOUT_MAX = 60
SECRET_MAX = 4096
TimeoutSeconds = Annotated[
    float,
    Field(gt=0, le=INTEGRATION_TIMEOUT_MAX, allow_inf_nan=False),
    BeforeValidator(_number),
    PlainSerializer(_integral, return_type=int | float),
]
# Header-safe text: printable ASCII, so no value can split a request line.
_VISIBLE = r"[!-~]+"
Token = Annotated[
    str,
    StringConstraints(min_length=1, max_length=SECRET_MAX),
    Field(json_schema_extra={"pattern": f"^{_VISIBLE}$"}),
    _matching(_VISIBLE, "must be printable ASCII without spaces"),
]
# RFC 7617: a user-id must not contain a colon.
_USERNAME = r"[ -9;-~]+"
Username = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    Field(json_schema_extra={"pattern": f"^{_USERNAME}$"}),
    _matching(_USERNAME, "must be printable ASCII without a colon"),
]
_PRINTABLE = r"[ -~]*"
Password = Annotated[
    str,
    StringConstraints(max_length=SECRET_MAX),
    Field(json_schema_extra={"pattern": f"^{_PRINTABLE}$"}),
    _matching(_PRINTABLE, "must be printable ASCII"),
]
# RFC 9110 §5.1: a field name is a token.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
HeaderName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    Field(json_schema_extra={"pattern": f"^{_TOKEN}$"}),
    _matching(_TOKEN, "must be an HTTP header name (letters, digits, - and the like)"),
]
_FIELD_VALUE = r"[!-~]([ -~]*[!-~])?"
HeaderValue = Annotated[
    str,
    StringConstraints(min_length=1, max_length=SECRET_MAX),
    Field(json_schema_extra={"pattern": f"^{_FIELD_VALUE}$"}),
    _matching(
        _FIELD_VALUE,
        "must be printable ASCII, without leading or trailing spaces",
    ),
]
# Set by the service on every call (or by HTTP itself): not the admin's.
RESERVED_HEADERS = frozenset(
    {
        "accept",
        "connection",
        "content-length",
        "content-type",
        "host",
        "idempotency-key",
        "te",
        "transfer-encoding",
        "upgrade",
        "user-agent",
    }
)


class BearerAuth(_Section):
    """``Authorization: Bearer <token>``."""

    type: Literal["bearer"] = Field(description="Selects a bearer token.")
    token: Token = Field(description="The token sent.")


class BasicAuth(_Section):
    """HTTP basic authentication (RFC 7617)."""

    type: Literal["basic"] = Field(description="Selects basic authentication.")
    username: Username = Field(description="The user name sent.")
    password: Password = Field(description="The password sent.")


class HeaderAuth(_Section):
    """An API key in a header of its own, e.g. ``X-Api-Key: <value>``."""

    type: Literal["header"] = Field(description="Selects an API key in a header.")
    name: HeaderName = Field(
        description="The header's name; not one the service sets itself"
        " (Content-Type, Idempotency-Key, …)."
    )
    value: HeaderValue = Field(description="The header's value.")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"{name} is set by the service, not by the auth")
        return name


IntegrationAuth = Annotated[
    BearerAuth | BasicAuth | HeaderAuth, Field(discriminator="type")
]


class IntegrationConfig(_Section):
    """Where a workflow step's hook is called: POST JSON, answer JSON.

    The call carries an ``Idempotency-Key`` and the configured auth; an
    answer later than ``timeout_seconds`` counts as the system being down
    (``consumers.workflows.integrations``). Private and loopback addresses are
    refused when called unless ``TICKETING_INTEGRATIONS_ALLOW_PRIVATE``.
    """

    url: WebhookUrl = Field(
        description="Where the hook is called (http or https, no credentials)."
    )
    timeout_seconds: TimeoutSeconds = Field(
        default=5,
        description="An answer later than this counts as the system being down"
        " (the step is retried).",
    )
    auth: IntegrationAuth | None = Field(
        default=None,
        description="How the call authenticates: bearer, basic or header; unset:"
        " it does not.",
    )

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not contain credentials; use auth")
        return url


# -- customer replies ---------------------------------------------------------------


class CustomerRepliesConfig(_Section):
    """What the customer's answer (a public comment or an attachment) does.

    ``reopen_pending``: a ticket ``pending`` (waiting on the customer) goes
    back to ``open`` and its paused SLA clocks resume. ``reopen_on_hold``:
    the same for ``on_hold`` (off by default: on hold usually waits on a
    third party, not on the customer). The change is recorded as the
    ``customer-reply`` automation, caused by the answer
    (``domain.customer_replies``).
    """

    reopen_pending: StrictBool = Field(
        default=True,
        description="The customer's answer moves a pending ticket to open.",
    )
    reopen_on_hold: StrictBool = Field(
        default=False,
        description="The same for on_hold (off by default: on hold usually"
        " waits on a third party).",
    )
    reopen_resolved: StrictBool = Field(
        default=True,
        description="An answer on a resolved ticket reopens it within"
        " reopen_resolved_within_days of the resolution; later (and on a closed"
        " ticket) it opens a follow-up ticket linked to the old one. False: it"
        " stays a comment.",
    )
    reopen_resolved_within_days: Annotated[StrictInt, Field(ge=0, le=365)] = Field(
        default=7, description="How long after the resolution an answer reopens."
    )


class Contact(_Section):
    """A person told of SLA alerts who is not one of the teams' agents."""

    id: Identifier = Field(description="The person's user id.")
    name: Name | None = Field(
        default=None, description="How e-mail names them; unset: their id."
    )
    email: Email | None = Field(default=None, description="Where e-mail reaches them.")
    phone: Annotated[str, StringConstraints(max_length=50)] | None = Field(
        default=None, description="Where SMS reaches them."
    )


class SlaAlertsConfig(_Section):
    """Who hears of SLA warnings and breaches, besides the ticket's people.

    The assignee is told first, else the ticket's team (its queue). A
    breach also reaches the team's supervisors unless
    ``supervisors_on_breach`` is false. A ticket with no team reaches the
    ``admins`` listed here.
    """

    supervisors_on_breach: StrictBool = Field(
        default=True, description="A breach also reaches the team's supervisors."
    )
    admins: Annotated[list[Contact], Field(max_length=AGENTS_MAX)] = Field(
        default=[], description="Who hears of the alerts of tickets with no team."
    )


class MergesConfig(_Section):
    """Merging a ticket into another one (``POST /tickets/{id}/merge``).

    ``cross_customer``: ``confirm`` (the default) refuses a merge of two
    customers' tickets with 409 unless the request sends
    ``"confirm_cross_customer": true``; ``refuse`` never merges them
    (``domain.merging``).
    """

    cross_customer: Literal["confirm", "refuse"] = Field(
        default="confirm",
        description='confirm: a merge across customers needs "confirm_cross_'
        'customer": true; refuse: never (409 cross-customer-merge).',
    )


# -- how fast the tenant may call -----------------------------------------------

#: "<count>/<second|minute|hour>", e.g. "200/second".
RATE_PATTERN = r"^[1-9][0-9]{0,8}/(second|minute|hour)$"


class RateLimitsConfig(_Section):
    """Requests per period for the tenant as a whole and for each caller.

    Unset: the deployment's defaults (``TICKETING_RATE_LIMIT_TENANT`` and
    ``TICKETING_RATE_LIMIT_SUBJECT``). A change applies within seconds.
    """

    tenant: str | None = Field(
        default=None,
        pattern=RATE_PATTERN,
        description='All of the tenant\'s requests, e.g. "500/second"; unset: the'
        " deployment's default.",
    )
    subject: str | None = Field(
        default=None,
        pattern=RATE_PATTERN,
        description='Each token subject\'s requests, e.g. "50/second"; unset: the'
        " deployment's default.",
    )


# -- how the tenant's e-mail reads ---------------------------------------------------

COALESCE_SECONDS_MAX = 3600


def _known_locale(value: str) -> str:
    try:
        return canonical_locale(value)
    except ValueError as error:
        raise ValueError(str(error)) from None


Locale = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=35),
    AfterValidator(_known_locale),
]


class NotificationsConfig(_Section):
    """The language, the threading and the pace of the tenant's e-mail.

    ``locale`` words dates and times (``en``: "Monday, December 7, 2026,
    9:30 AM CET"; ``en_GB``: "Monday, 7 December 2026, 09:30 CET"), in the
    time zone of the tenant's ``business_hours`` (UTC when open 24x7).
    ``reply_to`` is where a recipient's answer goes (unset: the sender).
    ``email_coalesce_seconds``: e-mails to one person about one ticket
    within this many seconds of the first are sent as one mail listing
    the updates in order; 0 sends each at once (docs/notifications.md).
    """

    locale: Locale = Field(
        default=DEFAULT_LOCALE,
        description="The language dates and times are written in: a CLDR locale"
        " (en, en_GB, de, pt_BR, …; en-gb is stored as en_GB).",
    )
    reply_to: Email | None = Field(
        default=None,
        description="The Reply-To address of every mail; unset: the sender.",
    )
    email_coalesce_seconds: Annotated[
        StrictInt, Field(ge=0, le=COALESCE_SECONDS_MAX)
    ] = Field(
        default=DEFAULT_COALESCE_SECONDS,
        description="E-mails to one person about one ticket within this many"
        " seconds of the first are sent as one; 0 sends each at once.",
    )


# -- mail the tenant receives -------------------------------------------------------

MAILBOXES_MAX = 20
Hostname = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$",
    ),
]
Folder = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f*%]+$"),
]
Credential = Annotated[
    str, StringConstraints(min_length=1, max_length=500, pattern=r"^[\x20-\x7e]+$")
]


class MailboxConfig(_Section):
    """An IMAP mailbox whose mail becomes tickets and comments.

    The worker ``ticketing worker mail-in`` reads it (IDLE where the server
    has it, else polling) and flags each message ``$Ticketed`` (or moves it
    to ``processed_folder``) once its ticket event is stored.
    ``password`` is write-only: ``GET /api/v1/settings`` leaves it out, and
    a ``PUT`` without it keeps the stored password of the mailbox with the
    same ``name``.
    """

    name: Key = Field(description="The mailbox's name within the tenant (a key).")
    host: Hostname = Field(description="The IMAP server's host name.")
    port: Annotated[StrictInt, Field(ge=1, le=65535)] | None = Field(
        default=None, description="Unset: 993 for tls, 143 for starttls and plain."
    )
    security: Literal["tls", "starttls", "plain"] = Field(
        default="tls",
        description="tls: TLS from the start (IMAPS); starttls: upgraded before"
        " logging in; plain: no encryption, only to a server on a loopback or"
        " private address the deployment allows (TICKETING_MAIL_IN_ALLOW_PRIVATE).",
    )
    username: Credential = Field(description="The login name.")
    password: Credential | None = Field(
        default=None,
        description="The login password; write-only (never read back). Unset on"
        " a PUT: the stored one is kept.",
    )
    folder: Folder = Field(default="INBOX", description="The folder read.")
    processed_folder: Folder | None = Field(
        default=None,
        description="Where a processed message is moved; unset: it stays,"
        " flagged \\Seen and $Ticketed.",
    )

    def effective_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


class InboundEmailConfig(_Section):
    """The tenant's inbound e-mail: its mailboxes and what is held back."""

    mailboxes: Annotated[list[MailboxConfig], Field(max_length=MAILBOXES_MAX)] = Field(
        default=[], description="The IMAP mailboxes read."
    )
    max_messages_per_sender_per_minute: Annotated[StrictInt, Field(ge=1, le=10_000)] = (
        Field(
            default=20,
            description="More messages from one sender within a minute are held"
            " back (kept, and taken later at this pace).",
        )
    )
    own_addresses: Annotated[list[Email], Field(max_length=100)] = Field(
        default=[],
        description="Addresses the tenant's mail is sent from besides the"
        " deployment's TICKETING_SMTP_FROM: mail from them is never taken.",
    )

    @field_validator("mailboxes")
    @classmethod
    def _unique_mailboxes(cls, mailboxes: list[MailboxConfig]) -> list[MailboxConfig]:
        _unique("mailbox name", [m.name for m in mailboxes])
        return mailboxes


# -- how long personal data is kept --------------------------------------------------

# Ten years: a longer period is a typo, and "keep forever" is saying nothing.
RETENTION_DAYS_MAX = 3660
RetentionDays = Annotated[StrictInt, Field(ge=1, le=RETENTION_DAYS_MAX)]


class RetentionConfig(_Section):
    """How long closed tickets keep their customers' personal data.

    ``closed_days`` after a ticket is closed, the timers erase its personal
    data (its key is destroyed, ``SubjectErased`` recorded, every table
    scrubbed: ``domain.retention``), and record the erasure like a manual
    one (``GET /api/v1/privacy/requests``, reason ``retention``).
    ``categories`` gives some categories a period of their own. The
    ticket and its facts (states, times, SLA figures) stay.
    """

    closed_days: RetentionDays | None = Field(
        default=None,
        description="Days after closing a ticket's personal data is erased;"
        " unset: kept forever (except the categories listed).",
    )
    categories: dict[TicketCategory, RetentionDays] = Field(
        default={},
        description="Days per category, instead of closed_days (a category"
        " listed here is erased even when closed_days is unset).",
    )


# -- the document -------------------------------------------------------------------


class TenantSettingsDocument(_Request):
    """A tenant's whole configuration (``PUT /api/v1/settings``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "sla_config": {
                        "critical": {"response": 15, "resolution": 240},
                        "high": {"response": 240, "resolution": 1440},
                    },
                    "business_hours": {
                        "timezone": "Europe/Berlin",
                        "week": {"mon": ["08:00", "18:00"], "tue": ["08:00", "18:00"]},
                        "holidays": ["2026-12-25"],
                    },
                    "teams": [
                        {
                            "name": "Technical Support",
                            "agents": [
                                {
                                    "id": "agent-1",
                                    "email": "ada@example.com",
                                    "skills": ["vpn"],
                                    "capacity": 10,
                                }
                            ],
                        }
                    ],
                    "assignment_rules": [
                        {
                            "name": "technical_issues",
                            "conditions": {"category": "technical_support"},
                            "assigned_team": "Technical Support",
                            "priority": 10,
                            "strategy": "round_robin",
                        }
                    ],
                    "escalation_rules": [
                        {
                            "name": "critical_escalation",
                            "conditions": {"priority": "critical"},
                            "escalation_time_hours": 1,
                            "escalate_to_team": "Engineering",
                            "requires_approval": False,
                        }
                    ],
                    "workflows": {
                        "by_category": {
                            "technical_support": "technical_support",
                            "billing": "billing",
                        },
                        "default": "customer_support",
                        "options": {
                            "technical_support": {
                                "auto_close_after_hours": 72,
                                "skip_diagnostics_for": {"priorities": ["critical"]},
                            },
                            "billing": {"approval_above": 100, "currency": "EUR"},
                        },
                    },
                    "categorization_rules": [
                        {
                            "name": "billing_words",
                            "category": "billing",
                            "keywords": ["invoice", "refund", "credit card"],
                            "regex": [r"\border\s+#?\d{6,}\b"],
                            "confidence": 0.9,
                        }
                    ],
                    "integrations": {
                        "account_lookup": {
                            "url": "https://crm.example.com/hooks/account",
                            "timeout_seconds": 5,
                            "auth": {"type": "bearer", "token": "s3cret-token"},
                        }
                    },
                    "customer_replies": {
                        "reopen_pending": True,
                        "reopen_on_hold": False,
                        "reopen_resolved": True,
                        "reopen_resolved_within_days": 7,
                    },
                }
            ]
        },
    )

    sla_config: SLAConfig = Field(
        default_factory=SLAConfig,
        description="SLA targets per priority, the warning point, pauses and policies.",
    )
    business_hours: BusinessHoursConfig = Field(
        default="24x7",
        description='The calendar SLA clocks count on: "24x7" or a time zone'
        " with weekly hours and holidays.",
    )
    teams: Annotated[list[TeamConfig], Field(max_length=TEAMS_MAX)] = Field(
        default=[],
        description="Teams and their agents; none: assignments are not checked"
        " against a directory.",
    )
    assignment_rules: Annotated[list[AssignmentRule], Field(max_length=RULES_MAX)] = (
        Field(default=[], description="How new tickets are routed to teams.")
    )
    escalation_rules: Annotated[list[EscalationRule], Field(max_length=RULES_MAX)] = (
        Field(default=[], description="When tickets escalate, and to whom.")
    )
    workflows: WorkflowsConfig = Field(
        default_factory=WorkflowsConfig,
        description="Which workflow each category runs, and their options.",
    )
    categorization_rules: Annotated[
        list[CategorizationRule], Field(max_length=RULES_MAX)
    ] = Field(
        default=[],
        description="Suggest a category from a ticket's words (the"
        " auto_categorize step).",
    )
    integrations: Annotated[
        dict[Key, IntegrationConfig], Field(max_length=HOOKS_MAX)
    ] = Field(
        default={},
        description="The hooks workflow steps call, by name (account_lookup,"
        " billing_history, apply_adjustment, diagnostics, a custom workflow's).",
    )
    customer_replies: CustomerRepliesConfig = Field(
        default_factory=CustomerRepliesConfig,
        description="What the customer's answer does to a waiting or resolved ticket.",
    )
    sla_alerts: SlaAlertsConfig = Field(
        default_factory=SlaAlertsConfig,
        description="Who hears of SLA warnings and breaches.",
    )
    merges: MergesConfig = Field(
        default_factory=MergesConfig,
        description="Whether two customers' tickets may be merged.",
    )

    notifications: NotificationsConfig = Field(
        default_factory=NotificationsConfig,
        description="The language, threading and pace of the tenant's e-mail.",
    )
    inbound_email: InboundEmailConfig | None = Field(
        default=None,
        description="Mailboxes whose mail becomes tickets and comments; unset:"
        " none (the inbound endpoint still takes mail).",
    )
    rate_limits: RateLimitsConfig = Field(
        default_factory=RateLimitsConfig,
        description="How many requests the tenant, and each of its callers, may"
        " make (429 with Retry-After beyond).",
    )
    retention: RetentionConfig | None = Field(
        default=None,
        description="How long closed tickets keep their personal data; unset: forever.",
    )

    @field_validator("teams")
    @classmethod
    def _unique_teams(cls, teams: list[TeamConfig]) -> list[TeamConfig]:
        _unique("team name", [t.name for t in teams])
        return teams

    @field_validator("assignment_rules", "escalation_rules", "categorization_rules")
    @classmethod
    def _unique_rules(cls, rules: list[Any]) -> list[Any]:
        _unique("rule name", [r.name for r in rules])
        return rules

    def document(self) -> dict[str, Any]:
        """The normalised plain document, as stored and returned."""
        return self.model_dump(mode="json", exclude_none=True)


class TenantSettingsRead(BaseModel):
    """The tenant's current settings and their version (0: the defaults)."""

    version: int
    document: dict[str, Any]
