"""The built-in workflows (issue #6): customer support, technical support, billing.

Each is a :class:`~domain.workflow.TicketWorkflow` with one ``step_<name>``
coroutine per step. A step reads the ticket and earlier results from its
:class:`~domain.workflow.WorkflowContext`, changes the ticket only through
the actions of its result, and reaches other systems only through
``context.integrations`` with the step's idempotency key.

A tenant tunes them in ``settings.workflows.options.<workflow_type>``; a
missing option, or one of the wrong type, takes the default below:

================================  ==========================================
``customer_support``
``min_title_length``              5 (characters a meaningful title has)
``technical_support``
``diagnostics_questions``         per kind of problem (``outage``,
                                  ``device``, ``general``) the question
                                  asked: ``domain.diagnostics``
``diagnostics_question``          none (older: one question for every
                                  kind the option above does not word)
``skip_diagnostics_for``          none (``priorities``, ``categories``
                                  whose tickets are not asked)
``diagnostics_min_length``        80 (a description this long is enough)
``escalation_team``               none (no escalation rule matches: the
                                  ticket's current team keeps it, and no
                                  escalation is recorded)
``auto_close_after_hours``        72 (quiet period after the resolution)
``billing``
``currency``                      ``"EUR"``
``approval_above``                100.0 (larger adjustments wait for a
                                  supervisor)
``active_account_statuses``       ``["active"]``
================================  ==========================================

Two rules every waiting step here follows, because of how the service
records a wait (``service.workflows``): a step waits again on every change
of the ticket, and a new wait is recorded (and the result's actions applied
again) only when its message, data or ``wake_at`` differ from the current
wait. So waiting data never holds ``now``, and a question to the customer
is asked only when the step does not find it on the ticket already.

How a failure is treated: the runtime turns an exception raised by a step
into a failed result, retried unless the exception says ``retryable`` is
False. The hook steps let another system's errors propagate (a system that
is down is a retried ``WorkflowStepFailed``, a refusal a final one).

A hook the tenant did not configure is not a failure: out of the box no
integration is configured, and the step hands itself to a person
(:func:`~domain.workflow.handed_to_a_person`). It waits, saying what to do
by hand, the data to complete it with through ``POST …/workflow/steps/
<step>/complete``, and the hook to configure under ``integrations`` to
automate it; once configured, the step calls it on the ticket's next
change. What a person completes a step with is read like the hook's
answer (``verify_account``: ``verified``, ``account_id``;
``review_billing_history``: ``disputed_amount``, ``currency``;
``apply_adjustment``: ``applied``, ``reference``; ``analyze``:
``complex``, ``summary``).

Pure: the standard library and other domain modules only.
"""

from __future__ import annotations

from dotmac.ticketing.domain.workflow import TicketWorkflow
from dotmac.ticketing.domain.workflows.billing import BillingWorkflow
from dotmac.ticketing.domain.workflows.common import (
    ACCOUNT_LOOKUP,
    APPLY_ADJUSTMENT,
    BILLING_HISTORY,
    DIAGNOSTICS,
)
from dotmac.ticketing.domain.workflows.customer_support import CustomerSupportWorkflow
from dotmac.ticketing.domain.workflows.technical_support import (
    TechnicalSupportWorkflow,
)

__all__ = [
    "ACCOUNT_LOOKUP",
    "APPLY_ADJUSTMENT",
    "BILLING_HISTORY",
    "BUILTIN_WORKFLOWS",
    "DIAGNOSTICS",
    "BillingWorkflow",
    "CustomerSupportWorkflow",
    "TechnicalSupportWorkflow",
]

#: The workflows every registry starts with (``service.workflows.registry_with``).
BUILTIN_WORKFLOWS: tuple[type[TicketWorkflow], ...] = (
    CustomerSupportWorkflow,
    TechnicalSupportWorkflow,
    BillingWorkflow,
)
